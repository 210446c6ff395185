/* Shared by the file-loader fuzz harnesses (tests/fuzz/fuzz_*.c): the loaders take
 * paths, so each input is written to a temporary file of a fixed per-process name
 * (in $TMPDIR, else /dev/shm when writable, else /tmp), removed at exit. */
#ifndef RC_FUZZ_FILE_H
#define RC_FUZZ_FILE_H
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_MAX_FILES 4
static char fuzz_paths[FUZZ_MAX_FILES][512];

static void fuzz_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz: %s: %s\n", what, detail ? detail : "");
    abort();
}

static void fuzz_cleanup(void)
{
    for (int i = 0; i < FUZZ_MAX_FILES; i++)
        if (fuzz_paths[i][0]) unlink(fuzz_paths[i]);
}

/* The path of temporary file k (0..FUZZ_MAX_FILES-1) of this process. */
static const char *fuzz_path(int k, const char *tag)
{
    if (!fuzz_paths[k][0]) {
        const char *dir = getenv("TMPDIR");
        if (!dir || !*dir) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_paths[k], sizeof fuzz_paths[k], "%s/recur-fuzz-%s-%ld-%d", dir, tag, (long)getpid(), k);
        static int registered;
        if (!registered) registered = atexit(fuzz_cleanup) == 0;
    }
    return fuzz_paths[k];
}

/* Writes n bytes into temporary file k and returns its path. */
static const char *fuzz_write(int k, const char *tag, const void *data, size_t n)
{
    const char *path = fuzz_path(k, tag);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) fuzz_die("cannot create", path);
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) fuzz_die("cannot write", path);
        p += w;
        n -= (size_t)w;
    }
    if (close(fd) != 0) fuzz_die("cannot close", path);
    return path;
}

/* A message must be non-empty and name the file it is about. */
static void fuzz_check_msg(const char *msg, const char *path)
{
    if (!msg[0]) fuzz_die("failure without a message", path);
    if (path && !strstr(msg, path)) fuzz_die("message does not name the file", msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif
