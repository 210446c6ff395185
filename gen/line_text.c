/* The text of generated lines: a corpus cut into distinct lines of a length range; see
 * line_gen.h. A paragraph is read whole, its white space runs made single spaces, then
 * cut greedily at spaces: each line takes words while it stays within a target length
 * drawn from [min, max], and is kept when it has at least min characters. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "line_gen.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fileio.h"

void text_pool_free(text_pool *p)
{
    for (int i = 0; i < p->n; i++) free(p->line[i]);
    free(p->line);
    memset(p, 0, sizeof *p);
}

/* The lines being collected, with a hash set to drop duplicates. */
typedef struct collect {
    text_pool *p;
    int cap;
    int *slot;              /* [nslot] indices into p->line, -1 empty */
    size_t nslot;
    int min, max;
    rng_t r;
    int (*ok)(void *, uint32_t);
    void *ctx;
} collect;

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int grow_set(collect *c)
{
    size_t ns = c->nslot ? 2 * c->nslot : 1024;
    int *s = malloc(ns * sizeof *s);
    if (!s) return -1;
    for (size_t i = 0; i < ns; i++) s[i] = -1;
    for (int k = 0; k < c->p->n; k++) {
        size_t i = fnv(c->p->line[k], strlen(c->p->line[k])) & (ns - 1);
        while (s[i] >= 0) i = (i + 1) & (ns - 1);
        s[i] = k;
    }
    free(c->slot);
    c->slot = s;
    c->nslot = ns;
    return 0;
}

/* Adds line s[0..n) unless it is there already. */
static int keep(collect *c, const char *s, size_t n)
{
    if (2 * ((size_t)c->p->n + 1) > c->nslot && grow_set(c) != 0) return -1;
    size_t i = fnv(s, n) & (c->nslot - 1);
    for (; c->slot[i] >= 0; i = (i + 1) & (c->nslot - 1)) {
        const char *o = c->p->line[c->slot[i]];
        if (strlen(o) == n && !memcmp(o, s, n)) return 0;
    }
    if (c->p->n == c->cap) {
        int nc = c->cap ? 2 * c->cap : 1024;
        char **nl = realloc(c->p->line, (size_t)nc * sizeof *nl);
        if (!nl) return -1;
        c->p->line = nl;
        c->cap = nc;
    }
    char *d = malloc(n + 1);
    if (!d) return -1;
    memcpy(d, s, n);
    d[n] = 0;
    c->slot[i] = c->p->n;
    c->p->line[c->p->n++] = d;
    return 0;
}

/* Cuts a run of words (single spaces between, every character usable; nchars its
 * characters) into lines. */
static int cut(collect *c, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        int target = c->min + (int)(rng_float(&c->r) * (float)(c->max - c->min + 1));
        if (target > c->max) target = c->max;
        size_t start = i, end = i;
        int chars = 0;
        while (end < n) {   /* the next word: [end, we) */
            size_t we = end;
            int wc = 0;
            while (we < n && s[we] != ' ') {
                uint32_t cp;
                we += (size_t)gen_utf8(s + we, &cp);
                wc++;
            }
            int add = wc + (end > start);
            if (chars + add > target) break;
            chars += add;
            end = we;
            if (end < n) end++;   /* past the space (not counted until the next word) */
        }
        size_t stop = end > start && s[end - 1] == ' ' ? end - 1 : end;
        if (stop == start) {   /* the next word alone is longer than the target: skip it */
            while (i < n && s[i] != ' ') i++;
            if (i < n) i++;
            continue;
        }
        if (chars >= c->min && keep(c, s + start, stop - start) != 0) return -1;
        i = end;
    }
    return 0;
}

/* A paragraph: checked, spaces collapsed, split at unusable characters, then cut. */
static int paragraph(collect *c, const char *s, size_t n, char *buf)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int nb = gen_utf8(s + i, &cp);
        if (nb == 0 || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7f) return 0;   /* skip it */
        i += (size_t)nb;
    }
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int nb = gen_utf8(s + i, &cp);
        if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') {
            if (k > 0 && buf[k - 1] != ' ') buf[k++] = ' ';
        } else if (!c->ok(c->ctx, cp)) {   /* a character no font has: lines stop here */
            while (k > 0 && buf[k - 1] == ' ') k--;
            if (k && cut(c, buf, k) != 0) return -1;
            k = 0;
        } else {
            memcpy(buf + k, s + i, (size_t)nb);
            k += (size_t)nb;
        }
        i += (size_t)nb;
    }
    while (k > 0 && buf[k - 1] == ' ') k--;
    return k ? cut(c, buf, k) : 0;
}

/* A blank line or fortune's "%" line ends a paragraph. */
static int is_break(const char *l, size_t n)
{
    size_t i = 0;
    while (i < n && (l[i] == ' ' || l[i] == '\t' || l[i] == '\r')) i++;
    return i == n || (n - i >= 1 && l[i] == '%' && (n - i == 1 || l[i + 1] == '\r'));
}

static int load_file(collect *c, const char *path, char *err, size_t errlen)
{
    char eb[128];
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return gen_fail(err, errlen, "%s: cannot open: %s", path, file_errstr(e, eb, sizeof eb));
    }
    char *text = NULL, *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = 0;
    for (;;) {   /* the whole file */
        if (n + 65536 + 1 > cap) {
            size_t nc = cap ? 2 * cap : 1 << 20;
            char *t = realloc(text, nc);
            if (!t) {
                rc = gen_fail(err, errlen, "%s: out of memory", path);
                break;
            }
            text = t;
            cap = nc;
        }
        size_t r = fread(text + n, 1, 65536, f);
        n += r;
        if (r < 65536) break;
    }
    if (rc == 0 && ferror(f)) rc = gen_fail(err, errlen, "%s: read error", path);
    fclose(f);
    if (rc == 0) {
        text[n] = 0;
        buf = malloc(n + 1);
        if (!buf) rc = gen_fail(err, errlen, "%s: out of memory", path);
    }
    size_t para = 0;
    for (size_t i = 0; rc == 0 && i <= n;) {
        const char *nl = i < n ? memchr(text + i, '\n', n - i) : NULL;
        size_t e = nl ? (size_t)(nl - text) : n;
        if (i == n || is_break(text + i, e - i)) {
            if (i > para && paragraph(c, text + para, i - para, buf) != 0)
                rc = gen_fail(err, errlen, "%s: out of memory", path);
            para = e + 1;
        }
        if (i == n) break;
        i = e < n ? e + 1 : n;
    }
    free(text);
    free(buf);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files of a folder as task.c takes them: no hidden files, symbolic links or
 * fortune index files (*.dat), in byte order of the names. */
static int load_dir(collect *c, const char *dir, char *err, size_t errlen)
{
    char eb[128];
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        return gen_fail(err, errlen, "%s: cannot open: %s", dir, file_errstr(e, eb, sizeof eb));
    }
    char **names = NULL;
    size_t nn = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || (l > 4 && !strcmp(e->d_name + l - 4, ".dat"))) continue;
        if (nn == cap) {
            size_t ncap = cap ? 2 * cap : 64;
            char **t = realloc(names, ncap * sizeof *t);
            if (!t) {
                rc = gen_fail(err, errlen, "%s: out of memory", dir);
                break;
            }
            names = t;
            cap = ncap;
        }
        if (!(names[nn] = malloc(strlen(dir) + l + 2))) {
            rc = gen_fail(err, errlen, "%s: out of memory", dir);
            break;
        }
        sprintf(names[nn], "%s/%s", dir, e->d_name);
        nn++;
    }
    closedir(d);
    if (rc == 0) qsort(names, nn, sizeof *names, cmp_str);
    for (size_t i = 0; rc == 0 && i < nn; i++) {
        struct stat st;
        if (lstat(names[i], &st) == 0 && S_ISREG(st.st_mode)) rc = load_file(c, names[i], err, errlen);
    }
    for (size_t i = 0; i < nn; i++) free(names[i]);
    free(names);
    return rc;
}

int text_pool_load(text_pool *p, const char *path, int min_chars, int max_chars, uint64_t seed,
                   int (*ok)(void *ctx, uint32_t cp), void *ctx, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (min_chars < 1 || max_chars < min_chars)
        return gen_fail(err, errlen, "line lengths %d..%d: need 1 <= min <= max", min_chars, max_chars);
    collect c = {.p = p, .min = min_chars, .max = max_chars, .ok = ok, .ctx = ctx};
    rng_seed(&c.r, seed);
    struct stat st;
    char eb[128];
    int rc;
    if (stat(path, &st) != 0) {
        int e = errno;
        rc = gen_fail(err, errlen, "%s: cannot read the text: %s", path, file_errstr(e, eb, sizeof eb));
    } else {
        rc = S_ISDIR(st.st_mode) ? load_dir(&c, path, err, errlen) : load_file(&c, path, err, errlen);
    }
    free(c.slot);
    if (rc == 0 && p->n == 0)
        rc = gen_fail(err, errlen, "%s: no line of %d to %d characters the fonts can render", path, min_chars,
                      max_chars);
    if (rc != 0) {
        text_pool_free(p);
        return -1;
    }
    for (int i = p->n - 1; i > 0; i--) {   /* Fisher-Yates */
        int j = (int)(rng_next(&c.r) % (uint64_t)(i + 1));
        char *t = p->line[i];
        p->line[i] = p->line[j];
        p->line[j] = t;
    }
    return 0;
}
