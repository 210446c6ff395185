/* Helpers shared by the test files: see test_util.h. */
#include "test_util.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef RECUR_EXE
#define RECUR_EXE "/work/main/build/tools/recur"
#endif

void tu_make_temp_dir(char *dir, size_t cap, const char *prefix)
{
    snprintf(dir, cap, "%sXXXXXX", prefix);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

void tu_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            size_t n = strlen(path) + strlen(e->d_name) + 2;
            char *sub = malloc(n);
            if (!sub) break;
            snprintf(sub, n, "%s/%s", path, e->d_name);
            tu_remove_tree(sub);
            free(sub);
        }
        if (d) closedir(d);
        rmdir(path);
    } else unlink(path);
}

double tu_monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void tu_sleep_seconds(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

void tu_child_redirect(const char *out_path, const char *err_path)
{
    int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || in < 0) _exit(126);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    close(in);
    close(o);
    close(e);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

int tu_wait_child(pid_t pid, pid_t kill_target, double t0, double timeout, double poll, int *status)
{
    for (;;) {
        pid_t w = waitpid(pid, status, WNOHANG);
        if (w == pid) return 0;
        cr_assert(w == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
        if (tu_monotonic_seconds() - t0 > timeout) {
            kill(kill_target, SIGKILL);
            waitpid(pid, status, 0);
            return 1;
        }
        tu_sleep_seconds(poll);
    }
}

const char *tu_recur_exe(void)
{
    const char *e = getenv("RECUR_TEST_EXE");
    return e && e[0] ? e : RECUR_EXE;
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0, k;
    char *b = malloc(cap);
    while (b && (k = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (n + 1 == cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) free(b);
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!b) return NULL;
    b[n] = 0;
    if (len) *len = n;
    return b;
}

uint32_t tu_lcg_next(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

void tu_write_word_text(const char *path, size_t bytes, uint32_t seed, int upper, int final_newline)
{
    static const char *words[] = { "abba", "cab", "bad", "dab", "ace", "be", "a", "bed", "dead", "fade" };
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    size_t n = 0;
    for (int col = 1; n < bytes; col++) {
        const char *w = words[tu_lcg_next(&seed) % 10];
        for (const char *c = w; *c; c++) fputc(upper ? *c - 'a' + 'A' : *c, f);
        fputc(col % 8 ? ' ' : '\n', f);
        n += strlen(w) + 1;
    }
    if (final_newline) fputc('\n', f);
    cr_assert_eq(fclose(f), 0);
}

void tu_write_tag_lines(const char *path, int lines, uint32_t seed)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < lines; i++) {
        int len = 3 + (int)(tu_lcg_next(&seed) % 6);
        for (int t = 0; t < len; t++) {
            char c = (char)('a' + tu_lcg_next(&seed) % 5);
            fprintf(f, "%c/%c%s", c, c - 'a' + 'A', t + 1 < len ? " " : "\n");
        }
    }
    cr_assert_eq(fclose(f), 0);
}

void tu_write_music_json(const char *path, uint32_t seed, int n_train, int n_valid)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "{\"train\": [");
    for (int part = 0; part < 2; part++) {
        int n = part ? n_valid : n_train;
        if (part) fprintf(f, "],\n \"valid\": [");
        for (int s = 0; s < n; s++) {
            int len = 6 + (int)(tu_lcg_next(&seed) % 7), base = 60 + (int)(tu_lcg_next(&seed) % 8);
            fprintf(f, "%s[", s ? ",\n  " : "");
            for (int t = 0; t < len; t++) {
                if (t % 5 == 4) fprintf(f, "%s[]", t ? ", " : "");
                else fprintf(f, "%s[%d, %d]", t ? ", " : "", 36 + base % 12, base + 4 * (t % 3));
            }
            fprintf(f, "]");
        }
    }
    fprintf(f, "]}\n");
    cr_assert_eq(fclose(f), 0);
}

#ifdef RC_TEST_LSAN_MPI
/* Appends ":add" to the environment variable `name` (or sets it). */
static void env_add(const char *name, const char *add)
{
    const char *old = getenv(name);
    int has = old && old[0];
    size_t n = (has ? strlen(old) + 1 : 0) + strlen(add) + 1;
    char *buf = malloc(n);
    cr_assert_not_null(buf, "out of memory");
    snprintf(buf, n, "%s%s%s", has ? old : "", has ? ":" : "", add);
    setenv(name, buf, 1);
    free(buf);
}
#endif

void tu_mpi_child_env(void)
{
#ifdef RC_TEST_LSAN_MPI
    setenv("OMPI_MCA_mca_base_component_disable_dlclose", "1", 1);
    env_add("LSAN_OPTIONS", "suppressions=" RC_TEST_LSAN_MPI ":print_suppressions=0");
    env_add("ASAN_OPTIONS", "fast_unwind_on_malloc=0");
#endif
}

void tu_write_pen_sample(const char *dir, const char *name, const char *text)
{
    size_t L = strlen(text);
    char *pen = malloc(64 + L * 3 * 32), path[4096];
    cr_assert_not_null(pen);
    size_t k = (size_t)sprintf(pen, "#pen 1 x y end\n");
    double x = 0, y = 0;
    for (size_t j = 0; j < L; j++)
        for (int p = 0; p < 3; p++) {   /* 'a' right, 'b' up, anything else (' ', 'c') down-right */
            x += text[j] == 'a' ? 1.0 : text[j] == 'b' ? 0.0 : 0.5;
            y += text[j] == 'a' ? 0.0 : text[j] == 'b' ? 1.0 : -0.5;
            k += (size_t)sprintf(pen + k, "%.2f %.2f %d\n", x, y, p == 2);
        }
    snprintf(path, sizeof path, "%s/%s.pen", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f && fputs(pen, f) >= 0 && fclose(f) == 0, "%s", path);
    free(pen);
    snprintf(path, sizeof path, "%s/%s.gt.txt", dir, name);
    f = fopen(path, "w");
    cr_assert(f && fprintf(f, "%s\n", text) > 0 && fclose(f) == 0, "%s", path);
}

int tu_write_pen_dir(const char *dir, int n, uint32_t seed)
{
    cr_assert_eq(mkdir(dir, 0777), 0, "%s: %s", dir, strerror(errno));
    const char *alpha = "ab c";
    int total = 0;
    for (int i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        int L = 2 + (int)(seed >> 16) % 5;
        char text[16], name[16];
        for (int j = 0; j < L; j++) {
            seed = seed * 1103515245u + 12345u;
            int c = (int)(seed >> 16) % 4;
            text[j] = (j == 0 || j == L - 1) && c == 2 ? 'a' : alpha[c];   /* no space at either end */
        }
        text[L] = '\0';
        total += L;
        snprintf(name, sizeof name, "s%03d", i);
        tu_write_pen_sample(dir, name, text);
    }
    return total;
}
