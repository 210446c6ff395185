/* Internal: the few POSIX I/O loops every file format of recur needs (NumPy files,
 * checkpoints): full reads and writes that survive signals and short counts, and the
 * directory fsync that makes a rename durable. */
#ifndef RC_FILEIO_H
#define RC_FILEIO_H

#include <stddef.h>

/* Reads up to n bytes, retrying after signals and short reads. Returns the count read
 * (less than n only at the end of the file), or -1 with errno set. */
long long file_read_full(int fd, void *buf, size_t n);
/* Writes all n bytes, retrying after signals and short writes. 0, or -1 with errno. */
int file_write_full(int fd, const void *buf, size_t n);
/* fsync of the directory holding path, so a rename into it is durable. Best effort:
 * some file systems refuse fsync on directories, and the data are already safe. */
void file_sync_dir(const char *path);
/* "path: message" into err (just "message" when path is NULL), when there is room. */
void file_fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* strerror(e) into buf, thread-safely; returns the text. */
const char *file_errstr(int e, char *buf, size_t len);

#endif
