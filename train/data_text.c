/* Text corpora, vocabularies and B-stream batching: see data.h.
 *
 * A corpus is read whole into memory. Word corpora are scanned twice in effect: the
 * training words get provisional ids (first-appearance order) and counts, the counter
 * is finished into the final, frequency-ordered vocabulary, and the provisional ids
 * are remapped in place. Valid and test words are looked up in the final vocabulary. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "data.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

/* ---- shared helpers ---------------------------------------------------------------- */

int data_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return -1;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (k < 0) err[0] = 0;
    return -1;
}

int data_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    char eb[128];
    if (!path) return data_fail(err, errlen, "(null path): no file name given");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return data_fail(err, errlen, "%s: cannot open: %s", path, file_errstr(e, eb, sizeof eb));
    }
    struct stat st;
    int have_st = fstat(fd, &st) == 0;
    if (have_st && S_ISDIR(st.st_mode)) {
        close(fd);
        return data_fail(err, errlen, "%s: is a directory", path);
    }
    size_t cap = (have_st && S_ISREG(st.st_mode) && st.st_size > 0 && (uintmax_t)st.st_size < SIZE_MAX / 2)
                     ? (size_t)st.st_size + 1 : 65536;
    size_t n = 0;
    char *b = malloc(cap);
    if (!b) {
        close(fd);
        return data_fail(err, errlen, "%s: out of memory", path);
    }
    for (;;) {
        char probe[4096];
        int full = n + 1 >= cap;   /* then read into probe: grow only when more comes */
        size_t want = full ? sizeof probe : cap - 1 - n;
        if (want > (size_t)1 << 30) want = (size_t)1 << 30;
        ssize_t r = read(fd, full ? probe : b + n, want);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(b);
            close(fd);
            return data_fail(err, errlen, "%s: read error: %s", path, file_errstr(e, eb, sizeof eb));
        }
        if (r == 0) break;
        if (full) {
            size_t nc = cap * 2 > n + 1 + (size_t)r ? cap * 2 : n + 1 + (size_t)r;
            char *nb = nc > cap ? realloc(b, nc) : NULL;
            if (!nb) {
                free(b);
                close(fd);
                return data_fail(err, errlen, "%s: out of memory", path);
            }
            b = nb;
            cap = nc;
            memcpy(b + n, probe, (size_t)r);
        }
        n += (size_t)r;
    }
    close(fd);
    if (n == 0) {
        free(b);
        return data_fail(err, errlen, "%s: empty file", path);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

/* Writes len bytes to path + ".tmp", then renames it over path. */
static int write_file_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    char eb[128];
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    if (!tmp) return data_fail(err, errlen, "%s: out of memory", path);
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return data_fail(err, errlen, "%s: cannot create: %s", path, file_errstr(e, eb, sizeof eb));
    }
    size_t done = 0;
    while (done < len) {
        size_t want = len - done > (size_t)1 << 30 ? (size_t)1 << 30 : len - done;
        ssize_t w = write(fd, data + done, want);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            unlink(tmp);
            free(tmp);
            return data_fail(err, errlen, "%s: write error: %s", path, file_errstr(e, eb, sizeof eb));
        }
        done += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return data_fail(err, errlen, "%s: write error: %s", path, file_errstr(e, eb, sizeof eb));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return data_fail(err, errlen, "%s: cannot rename the temporary file: %s", path,
                         file_errstr(e, eb, sizeof eb));
    }
    free(tmp);
    return 0;
}

/* A growing array of int32. */
typedef struct ivec { int32_t *v; size_t n, cap; } ivec;

static int ivec_push(ivec *a, int32_t x)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 1024;
        int32_t *nv = realloc(a->v, nc * sizeof *nv);
        if (!nv) return -1;
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = x;
    return 0;
}

/* ---- vocabularies ---------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

void vocab_free(vocab *v)
{
    if (!v) return;
    for (int i = 0; i < v->n; i++) free(v->tok[i]);
    free(v->tok);
    free(v->len);
    free(v->slot);
    memset(v, 0, sizeof *v);
}

int vocab_find(const vocab *v, const char *s, size_t len)
{
    if (!v || v->nslot == 0 || !s) return -1;
    size_t mask = (size_t)v->nslot - 1;
    for (size_t h = (size_t)hash_bytes(s, len) & mask;; h = (h + 1) & mask) {
        int32_t id = v->slot[h];
        if (id < 0) return -1;
        if ((size_t)v->len[id] == len && memcmp(v->tok[id], s, len) == 0) return id;
    }
}

int vocab_id(const vocab *v, const char *s)
{
    return s ? vocab_find(v, s, strlen(s)) : -1;
}

const char *vocab_token(const vocab *v, int id, size_t *len)
{
    if (!v || id < 0 || id >= v->n) return NULL;
    if (len) *len = (size_t)v->len[id];
    return v->tok[id];
}

/* Rebuilds the hash table with nslot slots. */
static int vocab_rehash(vocab *v, int nslot)
{
    int32_t *slot = malloc((size_t)nslot * sizeof *slot);
    if (!slot) return -1;
    for (int i = 0; i < nslot; i++) slot[i] = -1;
    size_t mask = (size_t)nslot - 1;
    for (int id = 0; id < v->n; id++) {
        size_t h = (size_t)hash_bytes(v->tok[id], (size_t)v->len[id]) & mask;
        while (slot[h] >= 0) h = (h + 1) & mask;
        slot[h] = id;
    }
    free(v->slot);
    v->slot = slot;
    v->nslot = nslot;
    return 0;
}

int vocab_add(vocab *v, const char *s, size_t len, char *err, size_t errlen)
{
    if (!v || !s || len == 0) return data_fail(err, errlen, "vocabulary: an empty token");
    if (len > (size_t)INT32_MAX) return data_fail(err, errlen, "vocabulary: a token is too long");
    int id = vocab_find(v, s, len);
    if (id >= 0) return id;
    if (v->n >= (1 << 28)) return data_fail(err, errlen, "vocabulary: too many tokens");
    if (v->n == v->cap) {
        int nc = v->cap ? v->cap * 2 : 64;
        char **nt = realloc(v->tok, (size_t)nc * sizeof *nt);
        if (!nt) return data_fail(err, errlen, "vocabulary: out of memory");
        v->tok = nt;
        int *nl = realloc(v->len, (size_t)nc * sizeof *nl);
        if (!nl) return data_fail(err, errlen, "vocabulary: out of memory");
        v->len = nl;
        v->cap = nc;
    }
    if ((size_t)(v->n + 1) * 2 > (size_t)v->nslot) {
        if (vocab_rehash(v, v->nslot ? v->nslot * 2 : 128) != 0)
            return data_fail(err, errlen, "vocabulary: out of memory");
    }
    char *t = malloc(len + 1);
    if (!t) return data_fail(err, errlen, "vocabulary: out of memory");
    memcpy(t, s, len);
    t[len] = 0;
    id = v->n++;
    v->tok[id] = t;
    v->len[id] = (int)len;
    size_t mask = (size_t)v->nslot - 1;
    size_t h = (size_t)hash_bytes(s, len) & mask;
    while (v->slot[h] >= 0) h = (h + 1) & mask;
    v->slot[h] = id;
    return id;
}

int vocab_copy(vocab *dst, const vocab *src, char *err, size_t errlen)
{
    vocab v;
    memset(&v, 0, sizeof v);
    for (int i = 0; i < src->n; i++) {
        if (vocab_add(&v, src->tok[i], (size_t)src->len[i], err, errlen) < 0) {
            vocab_free(&v);
            return -1;
        }
    }
    v.chars = src->chars;
    *dst = v;
    return 0;
}

int vocab_to_text(const vocab *v, char **out, size_t *outlen, char *err, size_t errlen)
{
    size_t cap = 1;
    for (int i = 0; i < v->n; i++) cap += (size_t)v->len[i] * 4 + 1;
    char *b = malloc(cap);
    if (!b) return data_fail(err, errlen, "vocabulary: out of memory");
    size_t k = 0;
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < v->n; i++) {
        for (int j = 0; j < v->len[i]; j++) {
            unsigned char c = (unsigned char)v->tok[i][j];
            switch (c) {
            case '\\': b[k++] = '\\'; b[k++] = '\\'; break;
            case '\n': b[k++] = '\\'; b[k++] = 'n'; break;
            case '\t': b[k++] = '\\'; b[k++] = 't'; break;
            case '\r': b[k++] = '\\'; b[k++] = 'r'; break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    b[k++] = '\\';
                    b[k++] = 'x';
                    b[k++] = hex[c >> 4];
                    b[k++] = hex[c & 15];
                } else {
                    b[k++] = (char)c;
                }
            }
        }
        b[k++] = '\n';
    }
    b[k] = 0;
    *out = b;
    *outlen = k;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int vocab_from_text(vocab *v, const char *text, size_t len, const char *name,
                    char *err, size_t errlen)
{
    if (!name) name = "vocabulary";
    vocab r;
    memset(&r, 0, sizeof r);
    char *tok = malloc(len + 1);
    if (!tok) {
        memset(v, 0, sizeof *v);
        return data_fail(err, errlen, "%s: out of memory", name);
    }
    size_t i = 0;
    long line = 0;
    int all1 = 1;
    while (i < len) {
        line++;
        size_t k = 0;
        long col = 0;
        while (i < len && text[i] != '\n') {
            unsigned char c = (unsigned char)text[i++];
            col++;
            if (c != '\\') {
                tok[k++] = (char)c;
                continue;
            }
            if (i >= len || text[i] == '\n') {
                data_fail(err, errlen, "%s:%ld:%ld: a backslash ends the line", name, line, col);
                goto fail;
            }
            char e = text[i++];
            col++;
            if (e == '\\') tok[k++] = '\\';
            else if (e == 'n') tok[k++] = '\n';
            else if (e == 't') tok[k++] = '\t';
            else if (e == 'r') tok[k++] = '\r';
            else if (e == 'x') {
                int h1 = i < len ? hexval((unsigned char)text[i]) : -1;
                int h2 = i + 1 < len ? hexval((unsigned char)text[i + 1]) : -1;
                if (h1 < 0 || h2 < 0) {
                    data_fail(err, errlen, "%s:%ld:%ld: \\x needs two hex digits", name, line, col - 1);
                    goto fail;
                }
                tok[k++] = (char)(h1 * 16 + h2);
                i += 2;
                col += 2;
            } else {
                data_fail(err, errlen, "%s:%ld:%ld: unknown escape '\\%c'", name, line, col - 1,
                          (e >= 0x20 && e < 0x7f) ? e : '?');
                goto fail;
            }
        }
        if (i < len) i++; /* the '\n' */
        if (k == 0) {
            data_fail(err, errlen, "%s:%ld: an empty line (no token)", name, line);
            goto fail;
        }
        if (vocab_find(&r, tok, k) >= 0) {
            tok[k] = 0;
            data_fail(err, errlen, "%s:%ld: duplicate token '%s'", name, line, tok);
            goto fail;
        }
        if (vocab_add(&r, tok, k, err, errlen) < 0) goto fail;
        if (k != 1) all1 = 0;
    }
    if (r.n == 0) {
        data_fail(err, errlen, "%s: no tokens", name);
        goto fail;
    }
    free(tok);
    r.chars = all1;
    *v = r;
    return 0;
fail:
    free(tok);
    vocab_free(&r);
    memset(v, 0, sizeof *v);
    return -1;
}

int vocab_save(const vocab *v, const char *path, char *err, size_t errlen)
{
    char *t;
    size_t n;
    if (vocab_to_text(v, &t, &n, err, errlen) != 0) return -1;
    int rc = write_file_atomic(path, t, n, err, errlen);
    free(t);
    return rc;
}

int vocab_load(vocab *v, const char *path, char *err, size_t errlen)
{
    char *b;
    size_t n;
    if (data_read_file(path, &b, &n, err, errlen) != 0) {
        memset(v, 0, sizeof *v);
        return -1;
    }
    int rc = vocab_from_text(v, b, n, path, err, errlen);
    free(b);
    return rc;
}

int vocab_decode(const vocab *v, const int32_t *ids, size_t n, char **out, size_t *outlen,
                 char *err, size_t errlen)
{
    int eos = v->chars ? -1 : vocab_id(v, DATA_EOS);
    size_t cap = 1;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= v->n)
            return data_fail(err, errlen, "decode: id %d at %zu is outside the vocabulary (0..%d)",
                             (int)ids[i], i, v->n - 1);
        cap += (size_t)v->len[ids[i]] + 1;
    }
    char *b = malloc(cap);
    if (!b) return data_fail(err, errlen, "decode: out of memory");
    size_t k = 0;
    int line_start = 1;
    for (size_t i = 0; i < n; i++) {
        int id = ids[i];
        if (v->chars) {
            memcpy(b + k, v->tok[id], (size_t)v->len[id]);
            k += (size_t)v->len[id];
        } else if (id == eos) {
            b[k++] = '\n';
            line_start = 1;
        } else {
            if (!line_start) b[k++] = ' ';
            memcpy(b + k, v->tok[id], (size_t)v->len[id]);
            k += (size_t)v->len[id];
            line_start = 0;
        }
    }
    b[k] = 0;
    *out = b;
    *outlen = k;
    return 0;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A scanner of words and line ends. */
typedef struct wscan { const char *b; size_t n, i; int on_line; } wscan;

/* 1: a word in (*w, *wl); 2: a line end; 0: the end. A last line without '\n' that held
 * a word gives a line end too. */
static int wscan_next(wscan *s, const char **w, size_t *wl)
{
    for (;;) {
        if (s->i >= s->n) {
            if (s->on_line) {
                s->on_line = 0;
                return 2;
            }
            return 0;
        }
        unsigned char c = (unsigned char)s->b[s->i];
        if (c == '\n') {
            s->i++;
            s->on_line = 0;
            return 2;
        }
        if (is_space(c)) {
            s->i++;
            continue;
        }
        size_t a = s->i;
        while (s->i < s->n && s->b[s->i] != '\n' && !is_space((unsigned char)s->b[s->i])) s->i++;
        *w = s->b + a;
        *wl = s->i - a;
        s->on_line = 1;
        return 1;
    }
}

int vocab_encode(const vocab *v, const char *text, size_t len, int32_t **ids, size_t *n,
                 char *err, size_t errlen)
{
    ivec a = {0};
    if (v->chars) {
        for (size_t i = 0; i < len; i++) {
            int id = vocab_find(v, text + i, 1);
            if (id < 0) {
                free(a.v);
                unsigned char c = (unsigned char)text[i];
                return data_fail(err, errlen, "encode: byte 0x%02x ('%c') at offset %zu is not in the vocabulary",
                                 c, (c >= 0x20 && c < 0x7f) ? c : '?', i);
            }
            if (ivec_push(&a, id) != 0) goto oom;
        }
    } else {
        int eos = vocab_id(v, DATA_EOS), unk = vocab_id(v, DATA_UNK);
        wscan s = {text, len, 0, 0};
        const char *w;
        size_t wl;
        int k;
        while ((k = wscan_next(&s, &w, &wl)) != 0) {
            if (k == 2) {
                /* only a real '\n' gives <eos> when encoding a prime */
                if (eos >= 0 && s.i > 0 && text[s.i - 1] == '\n' && ivec_push(&a, eos) != 0) goto oom;
                continue;
            }
            int id = vocab_find(v, w, wl);
            if (id < 0) id = unk;
            if (id < 0) {
                free(a.v);
                return data_fail(err, errlen, "encode: word '%.*s' at offset %zu is not in the vocabulary, which has no %s",
                                 (int)(wl > 64 ? 64 : wl), w, (size_t)(w - text), DATA_UNK);
            }
            if (ivec_push(&a, id) != 0) goto oom;
        }
    }
    *ids = a.v;
    *n = a.n;
    return 0;
oom:
    free(a.v);
    return data_fail(err, errlen, "encode: out of memory");
}

/* ---- counting --------------------------------------------------------------------- */

int counter_add(vocab_counter *c, const char *s, size_t len, char *err, size_t errlen)
{
    int id = vocab_add(&c->seen, s, len, err, errlen);
    if (id < 0) return -1;
    if (id >= c->cap) {
        int nc = c->cap ? c->cap * 2 : 256;
        while (nc <= id) nc *= 2;
        size_t *ncount = realloc(c->count, (size_t)nc * sizeof *ncount);
        if (!ncount) return data_fail(err, errlen, "vocabulary: out of memory");
        memset(ncount + c->cap, 0, (size_t)(nc - c->cap) * sizeof *ncount);
        c->count = ncount;
        c->cap = nc;
    }
    c->count[id]++;
    return id;
}

void counter_free(vocab_counter *c)
{
    if (!c) return;
    vocab_free(&c->seen);
    free(c->count);
    memset(c, 0, sizeof *c);
}

typedef struct centry { const char *s; size_t len, count; int id; } centry;

static int cmp_bytes(const centry *a, const centry *b)
{
    size_t m = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, m);
    if (c) return c;
    return (a->len > b->len) - (a->len < b->len);
}

static int cmp_freq(const void *pa, const void *pb)
{
    const centry *a = pa, *b = pb;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return cmp_bytes(a, b);
}

static int cmp_sorted(const void *pa, const void *pb)
{
    return cmp_bytes(pa, pb);
}

/* Decimal integers by value: by length, then bytes (all tokens are digit strings). */
static int cmp_numeric(const void *pa, const void *pb)
{
    const centry *a = pa, *b = pb;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return cmp_bytes(a, b);
}

int counter_finish(const vocab_counter *c, vocab_order order, int max_vocab, vocab *out,
                   int32_t *remap, int *unk, char *err, size_t errlen)
{
    int n = c->seen.n;
    vocab v;
    memset(&v, 0, sizeof v);
    centry *e = malloc((size_t)(n > 0 ? n : 1) * sizeof *e);
    if (!e) return data_fail(err, errlen, "vocabulary: out of memory");
    int numeric = 1;
    for (int i = 0; i < n; i++) {
        e[i].s = c->seen.tok[i];
        e[i].len = (size_t)c->seen.len[i];
        e[i].count = c->count[i];
        e[i].id = i;
        for (size_t j = 0; j < e[i].len && numeric; j++)
            if (e[i].s[j] < '0' || e[i].s[j] > '9') numeric = 0;
    }
    if (n > 1)
        qsort(e, (size_t)n, sizeof *e,
              order == VOCAB_BY_FREQ ? cmp_freq : numeric ? cmp_numeric : cmp_sorted);
    int keep = n, add_unk = 0;
    if (max_vocab > 0 && n > max_vocab) {
        int upos = -1;
        for (int i = 0; i < max_vocab; i++)
            if (e[i].len == strlen(DATA_UNK) && memcmp(e[i].s, DATA_UNK, e[i].len) == 0) upos = i;
        if (upos >= 0) {
            keep = max_vocab;
        } else {
            keep = max_vocab - 1;
            add_unk = 1;
        }
    }
    for (int i = 0; i < keep; i++)
        if (vocab_add(&v, e[i].s, e[i].len, err, errlen) < 0) goto fail;
    if (add_unk && vocab_add(&v, DATA_UNK, strlen(DATA_UNK), err, errlen) < 0) goto fail;
    int u = vocab_id(&v, DATA_UNK);
    if (remap) {
        for (int i = 0; i < n; i++) remap[e[i].id] = i < keep ? i : u;
    }
    free(e);
    *out = v;
    if (unk) *unk = u;
    return 0;
fail:
    free(e);
    vocab_free(&v);
    return -1;
}

/* ---- corpora ---------------------------------------------------------------------- */

void corpus_free(corpus *c)
{
    if (!c) return;
    vocab_free(&c->voc);
    for (int k = 0; k < 3; k++) free(c->ids[k]);
    memset(c, 0, sizeof *c);
    c->unk = c->eos = -1;
}

static int check_fracs(const char *path, double vf, double tf, char *err, size_t errlen)
{
    if (!(vf >= 0 && vf < 1) || !(tf >= 0 && tf < 1) || !(vf + tf < 1))
        return data_fail(err, errlen,
                         "%s: split fractions valid %g and test %g must be in [0, 1) with a sum below 1",
                         path ? path : "(null path)", vf, tf);
    return 0;
}

/* floor(n * f), tolerant to decimal fractions such as 0.05 * 20. */
static size_t frac_count(size_t n, double f)
{
    double x = floor((double)n * f + 1e-9);
    if (x < 0) return 0;
    if (x > (double)n) return n;
    return (size_t)x;
}

int corpus_char(corpus *c, const char *path, double valid_frac, double test_frac,
                char *err, size_t errlen)
{
    corpus r;
    memset(&r, 0, sizeof r);
    r.unk = r.eos = -1;
    memset(c, 0, sizeof *c);
    c->unk = c->eos = -1;
    if (check_fracs(path, valid_frac, test_frac, err, errlen) != 0) return -1;
    char *b;
    size_t n;
    if (data_read_file(path, &b, &n, err, errlen) != 0) return -1;
    size_t nv = frac_count(n, valid_frac), nt = frac_count(n, test_frac);
    if (nv + nt >= n) {
        free(b);
        return data_fail(err, errlen, "%s: %zu bytes leave no training part after the valid and test fractions",
                         path, n);
    }
    size_t cnt[256] = {0};
    for (size_t i = 0; i < n; i++) cnt[(unsigned char)b[i]]++;
    int32_t map[256];
    for (int ch = 0; ch < 256; ch++) {
        map[ch] = -1;
        if (!cnt[ch]) continue;
        char t = (char)ch;
        map[ch] = vocab_add(&r.voc, &t, 1, err, errlen);
        if (map[ch] < 0) goto fail;
    }
    r.voc.chars = 1;
    size_t part[3] = {n - nv - nt, nv, nt}, at = 0;
    for (int k = 0; k < 3; k++) {
        r.n[k] = part[k];
        if (part[k] == 0) continue;
        r.ids[k] = malloc(part[k] * sizeof *r.ids[k]);
        if (!r.ids[k]) {
            data_fail(err, errlen, "%s: out of memory", path);
            goto fail;
        }
        for (size_t i = 0; i < part[k]; i++) r.ids[k][i] = map[(unsigned char)b[at + i]];
        at += part[k];
    }
    free(b);
    *c = r;
    return 0;
fail:
    free(b);
    corpus_free(&r);
    return -1;
}

/* The word corpus of three buffers (NULL buffer: empty part). */
static int words_from_buffers(corpus *c, const char *const buf[3], const size_t len[3],
                              const char *const name[3], int max_vocab, char *err, size_t errlen)
{
    corpus r;
    memset(&r, 0, sizeof r);
    r.unk = r.eos = -1;
    vocab_counter cnt;
    memset(&cnt, 0, sizeof cnt);
    ivec a = {0};
    int32_t *remap = NULL;
    const char *w;
    size_t wl;
    int k;
    wscan s = {buf[0], len[0], 0, 0};
    while ((k = wscan_next(&s, &w, &wl)) != 0) {
        int id = k == 1 ? counter_add(&cnt, w, wl, err, errlen)
                        : counter_add(&cnt, DATA_EOS, strlen(DATA_EOS), err, errlen);
        if (id < 0) goto fail;
        if (ivec_push(&a, id) != 0) goto oom;
    }
    if (a.n == 0) {
        data_fail(err, errlen, "%s: no words in the training text", name[0]);
        goto fail;
    }
    remap = malloc((size_t)cnt.seen.n * sizeof *remap);
    if (!remap) goto oom;
    if (counter_finish(&cnt, VOCAB_BY_FREQ, max_vocab, &r.voc, remap, &r.unk, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < a.n; i++) a.v[i] = remap[a.v[i]];
    r.ids[0] = a.v;
    r.n[0] = a.n;
    a.v = NULL;
    a.n = a.cap = 0;
    r.eos = vocab_id(&r.voc, DATA_EOS);
    for (int part = 1; part < 3; part++) {
        if (!buf[part]) continue;
        wscan t = {buf[part], len[part], 0, 0};
        while ((k = wscan_next(&t, &w, &wl)) != 0) {
            /* <eos> dropped from a truncated vocabulary maps to <unk> like any word */
            int id = k == 1 ? vocab_find(&r.voc, w, wl) : r.eos;
            if (id < 0) {
                if (r.unk < 0) {
                    r.unk = vocab_add(&r.voc, DATA_UNK, strlen(DATA_UNK), err, errlen);
                    if (r.unk < 0) goto fail;
                }
                id = r.unk;
            }
            if (ivec_push(&a, id) != 0) goto oom;
        }
        r.ids[part] = a.v;
        r.n[part] = a.n;
        a.v = NULL;
        a.n = a.cap = 0;
    }
    free(remap);
    counter_free(&cnt);
    *c = r;
    return 0;
oom:
    data_fail(err, errlen, "%s: out of memory", name[0]);
fail:
    free(a.v);
    free(remap);
    counter_free(&cnt);
    corpus_free(&r);
    return -1;
}

int corpus_words(corpus *c, const char *train, const char *valid, const char *test,
                 int max_vocab, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->unk = c->eos = -1;
    if (max_vocab < 0) return data_fail(err, errlen, "%s: max_vocab %d < 0", train ? train : "(null)", max_vocab);
    const char *path[3] = {train, valid, test};
    char *buf[3] = {NULL, NULL, NULL};
    size_t len[3] = {0, 0, 0};
    int rc = -1;
    for (int k = 0; k < 3; k++) {
        if (k > 0 && !path[k]) continue;
        if (data_read_file(path[k], &buf[k], &len[k], err, errlen) != 0) goto done;
    }
    rc = words_from_buffers(c, (const char *const *)buf, len, path, max_vocab, err, errlen);
done:
    for (int k = 0; k < 3; k++) free(buf[k]);
    return rc;
}

int corpus_words_split(corpus *c, const char *path, double valid_frac, double test_frac,
                       int max_vocab, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->unk = c->eos = -1;
    if (max_vocab < 0) return data_fail(err, errlen, "%s: max_vocab %d < 0", path ? path : "(null)", max_vocab);
    if (check_fracs(path, valid_frac, test_frac, err, errlen) != 0) return -1;
    char *b;
    size_t n;
    if (data_read_file(path, &b, &n, err, errlen) != 0) return -1;
    size_t lines = 0;
    for (size_t i = 0; i < n; i++) lines += b[i] == '\n';
    if (b[n - 1] != '\n') lines++;
    size_t nv = frac_count(lines, valid_frac), nt = frac_count(lines, test_frac);
    if (nv + nt >= lines) {
        free(b);
        return data_fail(err, errlen, "%s: %zu lines leave no training part after the valid and test fractions",
                         path, lines);
    }
    /* byte offsets where line (lines - nv - nt) and line (lines - nt) start */
    size_t want1 = lines - nv - nt, want2 = lines - nt, l = 0, o1 = n, o2 = n;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != '\n') continue;
        l++;
        if (l == want1) o1 = i + 1;
        if (l == want2) o2 = i + 1;
    }
    const char *bufs[3] = {b, nv ? b + o1 : NULL, nt ? b + o2 : NULL};
    size_t lens[3] = {o1, o2 - o1, n - o2};
    char *names[3];
    size_t pl = strlen(path) + 16;
    char *nb = malloc(3 * pl);
    if (!nb) {
        free(b);
        return data_fail(err, errlen, "%s: out of memory", path);
    }
    for (int k = 0; k < 3; k++) {
        names[k] = nb + (size_t)k * pl;
        snprintf(names[k], pl, "%s%s", path, k == 0 ? "" : k == 1 ? " (valid)" : " (test)");
    }
    int rc = words_from_buffers(c, bufs, lens, (const char *const *)names, max_vocab, err, errlen);
    free(nb);
    free(b);
    return rc;
}

/* ---- B-stream batching -------------------------------------------------------------- */

int stream_init(lm_stream *s, const int32_t *ids, size_t n, int B, int T, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (B < 1 || T < 1) return data_fail(err, errlen, "stream: batch %d and steps %d must be >= 1", B, T);
    if (!ids && n > 0) return data_fail(err, errlen, "stream: no ids");
    size_t bl = n / (size_t)B;
    size_t count = bl >= 1 ? (bl - 1) / (size_t)T : 0;
    if (count == 0)
        return data_fail(err, errlen,
                         "stream: %zu tokens in %d streams of %zu give no batch of %d steps (need at least %zu tokens)",
                         n, B, bl, T, (size_t)B * ((size_t)T + 1));
    s->ids = ids;
    s->n = n;
    s->B = B;
    s->T = T;
    s->batch_len = bl;
    s->count = count;
    s->pos = 0;
    return 0;
}

size_t stream_count(const lm_stream *s)
{
    return s->count;
}

static void stream_fill(const lm_stream *s, size_t i, int32_t *tokens, int32_t *targets)
{
    int B = s->B, T = s->T;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            size_t at = (size_t)b * s->batch_len + i * (size_t)T + (size_t)t;
            if (tokens) tokens[t * B + b] = s->ids[at];
            if (targets) targets[t * B + b] = s->ids[at + 1];
        }
}

int stream_get(const lm_stream *s, size_t i, int32_t *tokens, int32_t *targets,
               char *err, size_t errlen)
{
    if (i >= s->count)
        return data_fail(err, errlen, "stream: batch %zu out of range (%zu per epoch)", i, s->count);
    stream_fill(s, i, tokens, targets);
    return 0;
}

int stream_next(lm_stream *s, int32_t *tokens, int32_t *targets)
{
    if (s->pos >= s->count) return 0;
    stream_fill(s, s->pos, tokens, targets);
    s->pos++;
    return 1;
}

size_t stream_pos(const lm_stream *s)
{
    return s->pos;
}

int stream_set_pos(lm_stream *s, size_t pos, char *err, size_t errlen)
{
    if (pos > s->count)
        return data_fail(err, errlen, "stream: position %zu out of range (0..%zu)", pos, s->count);
    s->pos = pos;
    return 0;
}
