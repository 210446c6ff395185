/* Whole files and text folders for the generators: see gen_io.h. */
#include "gen_io.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fileio.h"

char *gen_read_file(const char *path, size_t *len, const char *hint, char *err, size_t errlen)
{
    char eb[128];
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        file_fail(err, errlen, path, "cannot open: %s%s", file_errstr(e, eb, sizeof eb),
                  e == ENOENT && hint ? hint : "");
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n + 1 >= cap) {
            char *nb = cap < SIZE_MAX / 2 ? realloc(b, cap * 2) : NULL;
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - 1 - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!b) {
        file_fail(err, errlen, path, "out of memory");
        return NULL;
    }
    if (bad) {
        free(b);
        file_fail(err, errlen, path, "read error");
        return NULL;
    }
    b[n] = 0;
    *len = n;
    return b;
}

void gen_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int gen_text_files(const char *path, char ***names, size_t *n, char *err, size_t errlen)
{
    *names = NULL;
    *n = 0;
    char eb[128];
    struct stat st;
    if (stat(path, &st) != 0) {
        file_fail(err, errlen, path, "cannot read: %s", file_errstr(errno, eb, sizeof eb));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        char **one = malloc(sizeof *one);
        char *s = one ? strdup(path) : NULL;
        if (!s) {
            free(one);
            file_fail(err, errlen, path, "out of memory");
            return -1;
        }
        one[0] = s;
        *names = one;
        *n = 1;
        return 0;
    }
    DIR *d = opendir(path);
    if (!d) {
        file_fail(err, errlen, path, "cannot read the folder: %s", file_errstr(errno, eb, sizeof eb));
        return -1;
    }
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    int ok = 1;
    struct dirent *e;
    while (ok && (e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        size_t l = strlen(nm);
        if (nm[0] == '.' || (l > 4 && !strcmp(nm + l - 4, ".dat"))) continue;
        size_t pl = strlen(path) + l + 2;
        char *full = malloc(pl);
        if (!full) {
            ok = 0;
            break;
        }
        snprintf(full, pl, "%s/%s", path, nm);
        struct stat fs;
        if (lstat(full, &fs) != 0 || !S_ISREG(fs.st_mode)) {
            free(full);
            continue;
        }
        if (cnt == cap) {
            size_t nc = cap ? 2 * cap : 64;
            char **nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                free(full);
                ok = 0;
                break;
            }
            v = nv;
            cap = nc;
        }
        v[cnt++] = full;
    }
    closedir(d);
    if (!ok) {
        gen_free_names(v, cnt);
        file_fail(err, errlen, path, "out of memory");
        return -1;
    }
    if (cnt == 0) {
        free(v);
        file_fail(err, errlen, path, "the folder holds no text files (hidden files, symbolic links and .dat "
                                     "files are skipped)");
        return -1;
    }
    qsort(v, cnt, sizeof *v, by_name);
    *names = v;
    *n = cnt;
    return 0;
}

int gen_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return -1;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (k < 0) err[0] = 0;
    return -1;
}
