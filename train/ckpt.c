/* The checkpoint file container: see ckpt.h for the format and the conventions.
 *
 * Reading loads the whole file, then walks it twice. The first walk allocates
 * nothing: it checks the header, the CRC (first, when the file ends in an intact
 * trailer, so that damage is reported as such), every entry against the bytes left in
 * the file, and the trailer, so a corrupted length can only produce a message. The
 * second walk fills the entry list (whose size is now known to be backed by the
 * file), names are checked for uniqueness, and only then are payloads allocated and
 * decoded. Values are assembled from little-endian bytes with shifts, so the code
 * does not depend on the host's byte order.
 *
 * Writing streams the entries through a buffer that feeds the CRC, into
 * "<path>.tmp.<pid>", then fsync, rename over path, fsync of the directory. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L   /* fsync, O_CLOEXEC, strerror_r, getpid, kill */
#endif
#include "ckpt.h"
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

#define MAGIC "RECURCKP"
#define END_MAGIC "RECUREND"
#define MAGIC_LEN 8
#define HEADER_LEN 16                    /* magic, version, count */
#define TRAILER_LEN 20                   /* length, CRC, end magic */
/* Size of the write buffer. */
#define WBUF_LEN ((size_t)1 << 20)

/* ---- messages ------------------------------------------------------------- */


/* Bytes for a message: printable ASCII as is, anything else (and '\\', '"') as \xNN;
 * "..." when out (at least 8 bytes) is too small. Returns out. */
static const char *show(const void *p, size_t n, char *out, size_t outlen)
{
    const unsigned char *s = p;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned ch = s[i];
        int plain = ch >= 0x20 && ch <= 0x7e && ch != '\\' && ch != '"';
        size_t w = plain ? 1 : 4;
        if (k + w + 4 > outlen) {          /* room for "..." and the NUL */
            memcpy(out + k, "...", 4);
            return out;
        }
        if (plain) out[k++] = (char)ch;
        else k += (size_t)snprintf(out + k, outlen - k, "\\x%02x", ch);
    }
    out[k] = 0;
    return out;
}

/* Output buffer of show() for an entry name (up to 127 bytes, shown up to ~90 chars). */
#define SHOW_LEN 96

static const char *type_name(unsigned t)
{
    switch (t) {
    case CKPT_F32: return "F32";
    case CKPT_I32: return "I32";
    case CKPT_U64: return "U64";
    case CKPT_TEXT: return "TEXT";
    default: return "?";
    }
}

/* Bytes per element of a type, 0 for an unknown type. */
static size_t elem_size(unsigned t)
{
    switch (t) {
    case CKPT_F32: return 4;
    case CKPT_I32: return 4;
    case CKPT_U64: return 8;
    case CKPT_TEXT: return 1;
    default: return 0;
    }
}

/* "[3, 4]" into buf. */
static const char *show_dims(int ndim, const uint32_t *dims, char *buf, size_t len)
{
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < ndim && k < len; d++)
        k += (size_t)snprintf(buf + k, len - k, d ? ", %lu" : "%lu", (unsigned long)dims[d]);
    if (k < len) snprintf(buf + k, len - k, "]");
    return buf;
}

/* ---- CRC-32 (IEEE 802.3, reflected, as zlib) ------------------------------ */

typedef struct crc_tab {
    uint32_t t[8][256];
} crc_tab;

/* t[0] is the classic byte table; t[k][n] is the CRC of byte n followed by k zero
 * bytes, which lets crc_update() consume 8 bytes per step (slicing by 8). */
static void crc_tab_init(crc_tab *k)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int b = 0; b < 8; b++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
        k->t[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = k->t[0][n];
        for (int s = 1; s < 8; s++) {
            c = k->t[0][c & 0xff] ^ (c >> 8);
            k->t[s][n] = c;
        }
    }
}

/* Advances the raw CRC register (pre- and post-inversion are the caller's). */
static uint32_t crc_update(const crc_tab *k, uint32_t c, const unsigned char *p, size_t n)
{
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
                           | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16
                    | (uint32_t)p[7] << 24;
        c = k->t[7][lo & 0xff] ^ k->t[6][(lo >> 8) & 0xff] ^ k->t[5][(lo >> 16) & 0xff]
          ^ k->t[4][lo >> 24] ^ k->t[3][hi & 0xff] ^ k->t[2][(hi >> 8) & 0xff]
          ^ k->t[1][(hi >> 16) & 0xff] ^ k->t[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = k->t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c;
}

uint32_t ckpt_crc32(uint32_t crc, const void *buf, size_t len)
{
    if (!buf) return crc;
    crc_tab k;
    crc_tab_init(&k);
    return ~crc_update(&k, ~crc, buf, len);
}

/* ---- little-endian fields ------------------------------------------------- */

static uint32_t get_u16(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void put_u16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)(v >> 8 & 0xff);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i) & 0xff);
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i) & 0xff);
}

/* ---- the in-memory list --------------------------------------------------- */

void ckpt_init(ckpt *c)
{
    if (!c) return;
    c->n = 0;
    c->cap = 0;
    c->e = NULL;
}

void ckpt_free(ckpt *c)
{
    if (!c) return;
    if (c->e)
        for (int i = 0; i < c->n; i++) free(c->e[i].data);
    free(c->e);
    ckpt_init(c);
}

const ckpt_entry *ckpt_find(const ckpt *c, const char *name)
{
    if (!c || !name || !c->e) return NULL;
    for (int i = 0; i < c->n; i++)
        if (strncmp(c->e[i].name, name, sizeof c->e[i].name) == 0) return &c->e[i];
    return NULL;
}

size_t ckpt_count(const ckpt_entry *e)
{
    if (!e || e->ndim < 1 || e->ndim > CKPT_MAX_DIMS) return 0;
    if (e->type == CKPT_TEXT) return e->shape[0] > 0 ? (size_t)e->shape[0] : 0;
    size_t n = 1;
    for (int d = 0; d < e->ndim; d++) {
        if (e->shape[d] <= 0) return 0;
        n *= (size_t)e->shape[d];
    }
    return n;
}

/* Why a type, rank and shape cannot make an entry (a static or buf message), or NULL
 * when they can, with the payload size in *bytes. */
static const char *shape_error(int t, int ndim, const int *shape, size_t *bytes,
                               char *buf, size_t len)
{
    size_t es = elem_size((unsigned)t);
    if (es == 0) {
        snprintf(buf, len, "unknown type %d (expected 1..4: F32, I32, U64, TEXT)", t);
        return buf;
    }
    if (t == CKPT_TEXT && ndim != 1) {
        snprintf(buf, len, "a TEXT entry has ndim %d, expected 1", ndim);
        return buf;
    }
    if (ndim < 1 || ndim > CKPT_MAX_DIMS) {
        snprintf(buf, len, "ndim %d, expected 1..%d", ndim, CKPT_MAX_DIMS);
        return buf;
    }
    if (!shape) return "shape is NULL";
    /* Element count, then bytes, kept below SIZE_MAX (one byte is spare for the
     * NUL after a text) and below 2^63 (the file's u64 field, with room to spare). */
    uint64_t limit = (uint64_t)1 << 62;
    if ((uint64_t)SIZE_MAX / 2 < limit) limit = (uint64_t)SIZE_MAX / 2;
    uint64_t n = 1;
    int zero = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) {
            snprintf(buf, len, "dim %d is %d (must be >= 0)", d, shape[d]);
            return buf;
        }
        if (shape[d] == 0) zero = 1;
        else if (!zero && n > limit / (uint64_t)shape[d]) n = limit + 1;
        else if (!zero) n *= (uint64_t)shape[d];
    }
    if (zero) n = 0;
    if (n > limit / es) return "too many elements";
    *bytes = (size_t)(n * es);
    return NULL;
}

/* A fresh copy of a payload (never NULL on success, even for 0 bytes; a NUL follows
 * a text). NULL when memory is short. */
static void *copy_payload(const void *data, size_t bytes)
{
    unsigned char *p = malloc(bytes + 1);
    if (!p) return NULL;
    if (bytes) memcpy(p, data, bytes);
    p[bytes] = 0;
    return p;
}

/* Room for one more entry. 0, or -1 when memory is short (c unchanged). */
static int grow(ckpt *c)
{
    if (c->n < c->cap) return 0;
    if (c->cap > INT_MAX / 2) return -1;
    int cap = c->cap ? c->cap * 2 : 16;
    if ((size_t)cap > SIZE_MAX / sizeof(ckpt_entry)) return -1;
    ckpt_entry *e = realloc(c->e, (size_t)cap * sizeof *e);
    if (!e) return -1;
    c->e = e;
    c->cap = cap;
    return 0;
}

int ckpt_add(ckpt *c, const char *name, ckpt_type t, int ndim, const int *shape,
             const void *data, char *err, size_t errlen)
{
    char nb[SHOW_LEN], why[128];
    if (!c || !name) {
        file_fail(err, errlen, NULL, "ckpt_add: the checkpoint or the name is NULL");
        return -1;
    }
    if (c->n < 0 || c->cap < c->n || (c->cap > 0 && !c->e)) {
        file_fail(err, errlen, NULL, "ckpt_add: the checkpoint is not initialised (n %d, cap %d)",
             c->n, c->cap);
        return -1;
    }
    size_t nl = strlen(name);
    if (nl == 0) {
        file_fail(err, errlen, NULL, "entry name is empty");
        return -1;
    }
    if (nl > CKPT_NAME_MAX) {
        file_fail(err, errlen, NULL, "entry name \"%s\" is %zu bytes long, at most %d",
             show(name, nl, nb, sizeof nb), nl, CKPT_NAME_MAX);
        return -1;
    }
    show(name, nl, nb, sizeof nb);
    const ckpt_entry *dup = ckpt_find(c, name);
    if (dup) {
        file_fail(err, errlen, NULL, "entry \"%s\": duplicate name (entry %d has it already)", nb,
             (int)(dup - c->e));
        return -1;
    }
    size_t bytes = 0;
    const char *bad = shape_error((int)t, ndim, shape, &bytes, why, sizeof why);
    if (bad) {
        file_fail(err, errlen, NULL, "entry \"%s\": %s", nb, bad);
        return -1;
    }
    if (!data && bytes) {
        file_fail(err, errlen, NULL, "entry \"%s\": data is NULL for %zu bytes", nb, bytes);
        return -1;
    }
    if (c->n == INT_MAX) {
        file_fail(err, errlen, NULL, "entry \"%s\": the checkpoint is full (%d entries)", nb, c->n);
        return -1;
    }
    void *copy = copy_payload(data, bytes);
    if (!copy || grow(c) != 0) {
        free(copy);
        file_fail(err, errlen, NULL, "entry \"%s\": out of memory (%zu bytes)", nb, bytes);
        return -1;
    }
    ckpt_entry *e = &c->e[c->n++];
    memset(e, 0, sizeof *e);
    memcpy(e->name, name, nl + 1);
    e->type = t;
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++) e->shape[d] = shape[d];
    e->data = copy;
    return 0;
}

int ckpt_add_text(ckpt *c, const char *name, const char *text, char *err, size_t errlen)
{
    char nb[SHOW_LEN];
    if (!text) {
        file_fail(err, errlen, NULL, "entry \"%s\": text is NULL",
             name ? show(name, strlen(name), nb, sizeof nb) : "(null)");
        return -1;
    }
    size_t n = strlen(text);
    if (n > (size_t)INT_MAX) {
        file_fail(err, errlen, NULL, "entry \"%s\": text of %zu bytes is too long (at most %d)",
             name ? show(name, strlen(name), nb, sizeof nb) : "(null)", n, INT_MAX);
        return -1;
    }
    int shape[1] = { (int)n };
    return ckpt_add(c, name, CKPT_TEXT, 1, shape, text, err, errlen);
}

int ckpt_add_u64(ckpt *c, const char *name, const uint64_t *v, int count, char *err,
                 size_t errlen)
{
    int shape[1] = { count };
    return ckpt_add(c, name, CKPT_U64, 1, shape, v, err, errlen);
}

/* ---- writing -------------------------------------------------------------- */

/* A buffered writer whose flushed bytes feed the CRC. */
typedef struct wbuf {
    int fd;
    unsigned char *buf;
    size_t len;
    uint64_t off;          /* bytes flushed so far */
    uint32_t crc;          /* raw CRC register over the flushed bytes */
    const crc_tab *tab;
} wbuf;

/* 0, or -1 with errno. */
static int wb_flush(wbuf *w)
{
    if (w->len == 0) return 0;
    w->crc = crc_update(w->tab, w->crc, w->buf, w->len);
    if (file_write_full(w->fd, w->buf, w->len) != 0) return -1;
    w->off += w->len;
    w->len = 0;
    return 0;
}

/* At least k (<= WBUF_LEN) free bytes at w->buf + w->len. 0, or -1 with errno. */
static int wb_room(wbuf *w, size_t k)
{
    return WBUF_LEN - w->len < k ? wb_flush(w) : 0;
}

static int wb_bytes(wbuf *w, const void *p, size_t n)
{
    const unsigned char *s = p;
    while (n > 0) {
        if (w->len == WBUF_LEN && wb_flush(w) != 0) return -1;
        size_t k = WBUF_LEN - w->len < n ? WBUF_LEN - w->len : n;
        memcpy(w->buf + w->len, s, k);
        w->len += k;
        s += k;
        n -= k;
    }
    return 0;
}

/* The payload of e, element by element in little-endian order. 0, or -1 with errno. */
static int wb_payload(wbuf *w, const ckpt_entry *e, size_t count)
{
    const unsigned char *src = e->data;
    if (e->type == CKPT_TEXT) return wb_bytes(w, src, count);
    size_t es = elem_size((unsigned)e->type);
    size_t i = 0;
    while (i < count) {
        if (wb_room(w, es) != 0) return -1;
        size_t k = (WBUF_LEN - w->len) / es;
        if (k > count - i) k = count - i;
        unsigned char *dst = w->buf + w->len;
        if (es == 4) {
            for (size_t j = 0; j < k; j++) {
                uint32_t v;
                memcpy(&v, src + 4 * (i + j), 4);
                put_u32(dst + 4 * j, v);
            }
        } else {
            for (size_t j = 0; j < k; j++) {
                uint64_t v;
                memcpy(&v, src + 8 * (i + j), 8);
                put_u64(dst + 8 * j, v);
            }
        }
        w->len += k * es;
        i += k;
    }
    return 0;
}

/* Header, entries and trailer of c into fd. 0, or -1 with errno. */
static int write_body(int fd, const ckpt *c, unsigned char *buf, const crc_tab *tab)
{
    wbuf w = { fd, buf, 0, 0, 0xFFFFFFFFu, tab };
    unsigned char h[HEADER_LEN];
    memcpy(h, MAGIC, MAGIC_LEN);
    put_u32(h + 8, CKPT_VERSION);
    put_u32(h + 12, (uint32_t)c->n);
    if (wb_bytes(&w, h, sizeof h) != 0) return -1;
    for (int i = 0; i < c->n; i++) {
        const ckpt_entry *e = &c->e[i];
        size_t nl = strlen(e->name), count = ckpt_count(e);
        unsigned char f[2 + CKPT_NAME_MAX + 2 + 4 * CKPT_MAX_DIMS + 8];
        size_t k = 0;
        put_u16(f, (uint32_t)nl);
        memcpy(f + 2, e->name, nl);
        k = 2 + nl;
        f[k++] = (unsigned char)e->type;
        f[k++] = (unsigned char)e->ndim;
        for (int d = 0; d < e->ndim; d++, k += 4) put_u32(f + k, (uint32_t)e->shape[d]);
        put_u64(f + k, (uint64_t)count * elem_size((unsigned)e->type));
        k += 8;
        if (wb_bytes(&w, f, k) != 0 || wb_payload(&w, e, count) != 0) return -1;
    }
    if (wb_flush(&w) != 0) return -1;
    unsigned char t[TRAILER_LEN];
    put_u64(t, w.off);
    put_u32(t + 8, ~w.crc);
    memcpy(t + 12, END_MAGIC, MAGIC_LEN);
    return file_write_full(fd, t, sizeof t);
}

/* Orders pointers to entries by name, then by position (a total order for qsort). */
static int cmp_entry_name(const void *a, const void *b)
{
    const ckpt_entry *x = *(const ckpt_entry *const *)a, *y = *(const ckpt_entry *const *)b;
    int r = strcmp(x->name, y->name);
    return r ? r : (x < y ? -1 : x > y);
}

/* Checks the entries of c as ckpt_add would, and their names for uniqueness. 0, or -1
 * with a message. */
static int check_for_write(const char *path, const ckpt *c, char *err, size_t errlen)
{
    char nb[SHOW_LEN], why[128];
    if (!c || c->n < 0 || (c->n > 0 && !c->e)) {
        file_fail(err, errlen, path, "the checkpoint is NULL or not initialised");
        return -1;
    }
    for (int i = 0; i < c->n; i++) {
        const ckpt_entry *e = &c->e[i];
        const char *z = memchr(e->name, 0, sizeof e->name);
        if (!z) {
            file_fail(err, errlen, path, "entry %d: the name is not NUL-terminated", i);
            return -1;
        }
        size_t nl = (size_t)(z - e->name);
        if (nl == 0) {
            file_fail(err, errlen, path, "entry %d: the name is empty", i);
            return -1;
        }
        show(e->name, nl, nb, sizeof nb);
        size_t bytes = 0;
        const char *bad = shape_error((int)e->type, e->ndim, e->shape, &bytes, why, sizeof why);
        if (bad) {
            file_fail(err, errlen, path, "entry %d \"%s\": %s", i, nb, bad);
            return -1;
        }
        if (!e->data && bytes) {
            file_fail(err, errlen, path, "entry %d \"%s\": data is NULL for %zu bytes", i, nb, bytes);
            return -1;
        }
    }
    if (c->n < 2) return 0;
    const ckpt_entry **ix = malloc((size_t)c->n * sizeof *ix);
    if (!ix) {
        file_fail(err, errlen, path, "out of memory (%d entries)", c->n);
        return -1;
    }
    for (int i = 0; i < c->n; i++) ix[i] = &c->e[i];
    qsort(ix, (size_t)c->n, sizeof *ix, cmp_entry_name);
    for (int i = 1; i < c->n; i++)
        if (strcmp(ix[i - 1]->name, ix[i]->name) == 0) {
            file_fail(err, errlen, path, "entries %d and %d have the same name \"%s\"",
                 (int)(ix[i - 1] - c->e), (int)(ix[i] - c->e),
                 show(ix[i]->name, strlen(ix[i]->name), nb, sizeof nb));
            free(ix);
            return -1;
        }
    free(ix);
    return 0;
}

int ckpt_write(const char *path, const ckpt *c, char *err, size_t errlen)
{
    char eb[128];
    if (!path || !*path) {
        file_fail(err, errlen, NULL, "ckpt_write: the path is NULL or empty");
        return -1;
    }
    if (check_for_write(path, c, err, errlen) != 0) return -1;

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    unsigned char *buf = malloc(WBUF_LEN);
    crc_tab *tab = malloc(sizeof *tab);
    if (!tmp || !buf || !tab) {
        file_fail(err, errlen, path, "out of memory");
        free(tmp);
        free(buf);
        free(tab);
        return -1;
    }
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    crc_tab_init(tab);

    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        file_fail(err, errlen, path, "cannot create the temporary file %s: %s", tmp,
             file_errstr(errno, eb, sizeof eb));
        goto done;   /* nothing was created */
    }
    if (write_body(fd, c, buf, tab) != 0) {
        file_fail(err, errlen, path, "cannot write %s: %s", tmp, file_errstr(errno, eb, sizeof eb));
        goto remove;
    }
    if (fsync(fd) != 0) {
        file_fail(err, errlen, path, "cannot fsync %s: %s", tmp, file_errstr(errno, eb, sizeof eb));
        goto remove;
    }
    int cr = close(fd);
    fd = -1;
    if (cr != 0) {
        file_fail(err, errlen, path, "cannot close %s: %s", tmp, file_errstr(errno, eb, sizeof eb));
        goto remove;
    }
    if (rename(tmp, path) != 0) {
        file_fail(err, errlen, path, "cannot rename %s over it: %s", tmp,
             file_errstr(errno, eb, sizeof eb));
        goto remove;
    }
    file_sync_dir(path);
    rc = 0;
    goto done;

remove:
    if (fd >= 0) close(fd);
    unlink(tmp);
done:
    free(tmp);
    free(buf);
    free(tab);
    return rc;
}

/* ---- reading -------------------------------------------------------------- */

/* The whole file into a fresh buffer (*buf, *size). 0, or -1 with a message. */
static int load_file(const char *path, unsigned char **buf, size_t *size, char *err,
                     size_t errlen)
{
    char eb[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        file_fail(err, errlen, path, "cannot open: %s", file_errstr(errno, eb, sizeof eb));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        file_fail(err, errlen, path, "cannot stat: %s", file_errstr(errno, eb, sizeof eb));
        close(fd);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        file_fail(err, errlen, path, "is a directory, not a checkpoint file");
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        file_fail(err, errlen, path, "is not a regular file");
        close(fd);
        return -1;
    }
    if (st.st_size < 0 || (uintmax_t)st.st_size > (uintmax_t)(SIZE_MAX - 1)) {
        file_fail(err, errlen, path, "is too large to read (%jd bytes)", (intmax_t)st.st_size);
        close(fd);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    /* One spare byte, to notice a file that grew since fstat. */
    unsigned char *b = malloc(n + 1);
    if (!b) {
        file_fail(err, errlen, path, "out of memory reading %zu bytes", n);
        close(fd);
        return -1;
    }
    long long got = file_read_full(fd, b, n + 1);
    int e = errno;
    close(fd);
    if (got < 0) {
        file_fail(err, errlen, path, "cannot read: %s", file_errstr(e, eb, sizeof eb));
        free(b);
        return -1;
    }
    if ((unsigned long long)got != n) {
        file_fail(err, errlen, path, "the file changed size while being read (%zu bytes, then %s%lld)",
             n, (unsigned long long)got > n ? "more than " : "", got);
        free(b);
        return -1;
    }
    *buf = b;
    *size = n;
    return 0;
}

/* Compares the CRC recorded at b + body + 8 with the CRC of b[0, body). 0, or -1
 * with a message. */
static int check_crc(const char *path, const unsigned char *b, size_t body, char *err,
                     size_t errlen)
{
    crc_tab *tab = malloc(sizeof *tab);
    if (!tab) {
        file_fail(err, errlen, path, "out of memory");
        return -1;
    }
    crc_tab_init(tab);
    uint32_t crc = ~crc_update(tab, 0xFFFFFFFFu, b, body);
    free(tab);
    uint32_t stored = get_u32(b + body + 8);
    if (crc != stored) {
        file_fail(err, errlen, path, "checksum mismatch: the file is corrupted (CRC-32 0x%08lx "
             "recorded at offset %zu, 0x%08lx computed over the %zu bytes before the trailer)",
             (unsigned long)stored, body + 8, (unsigned long)crc, body);
        return -1;
    }
    return 0;
}

/* A position in a loaded file, for the walk: the bytes, where the walk is, and where
 * messages go. */
typedef struct cursor {
    const char *path;
    const unsigned char *b;
    size_t size, off;
    char *err;
    size_t errlen;
} cursor;

static int need(const cursor *c, uint64_t k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* 0 when k more bytes are in the file at c->off; otherwise -1 with a message naming
 * what (printf-style) was being read there. */
static int need(const cursor *c, uint64_t k, const char *fmt, ...)
{
    if ((uint64_t)(c->size - c->off) >= k) return 0;
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    file_fail(c->err, c->errlen, c->path, "truncated: %s at offset %zu: %llu bytes needed, %zu "
              "left (file is %zu bytes)", what, c->off, (unsigned long long)k, c->size - c->off, c->size);
    return -1;
}

/* The header: magic, length, version; then (check_crc_first) the CRC when the file
 * ends in an intact trailer (*crc_done = 1), and the entry count into *n. Leaves the
 * cursor after the header. 0, or -1 with a message. */
static int walk_header(cursor *c, int check_crc_first, uint32_t *n, int *crc_done)
{
    char nb[SHOW_LEN];
    const unsigned char *b = c->b;
    size_t size = c->size;
    size_t m = size < MAGIC_LEN ? size : MAGIC_LEN;
    if (memcmp(b, MAGIC, m) != 0) {
        file_fail(c->err, c->errlen, c->path,
             "not a recur checkpoint: expected magic \"" MAGIC "\" at offset 0, found \"%s\"",
             show(b, m, nb, sizeof nb));
        return -1;
    }
    if (size < HEADER_LEN) {
        file_fail(c->err, c->errlen, c->path, "truncated: the file is %zu bytes, shorter than the %d-byte "
             "header (a checkpoint has at least %d bytes)", size, HEADER_LEN,
             HEADER_LEN + TRAILER_LEN);
        return -1;
    }
    uint32_t version = get_u32(b + 8);
    if (version != CKPT_VERSION) {
        file_fail(c->err, c->errlen, c->path, "version %lu, this build reads version %d",
             (unsigned long)version, CKPT_VERSION);
        return -1;
    }
    /* A file that ends in an intact trailer (end marker, and a length that matches) is
     * complete as written: a CRC mismatch then means damage, which is said first. Other
     * files are truncated or have bytes appended, which the walk pins down. */
    *crc_done = 0;
    if (check_crc_first && size >= HEADER_LEN + TRAILER_LEN
        && memcmp(b + size - MAGIC_LEN, END_MAGIC, MAGIC_LEN) == 0
        && get_u64(b + size - TRAILER_LEN) == (uint64_t)(size - TRAILER_LEN)) {
        if (check_crc(c->path, b, size - TRAILER_LEN, c->err, c->errlen) != 0) return -1;
        *crc_done = 1;
    }
    *n = get_u32(b + 12);
    if (*n > (uint32_t)INT_MAX) {
        file_fail(c->err, c->errlen, c->path, "entry count %lu at offset 12 is too large (at most %d)",
             (unsigned long)*n, INT_MAX);
        return -1;
    }
    c->off = HEADER_LEN;
    return 0;
}

/* The name of entry i of n: its length and bytes, checked (1..CKPT_NAME_MAX bytes, no
 * NUL). *name points into the file, *nl is its length, nb receives it for messages.
 * 0, or -1 with a message. */
static int walk_name(cursor *c, uint32_t i, uint32_t n, const unsigned char **name, size_t *nl,
                     char *nb, size_t nblen)
{
    unsigned long ui = (unsigned long)i, un = (unsigned long)n;
    if (need(c, 2, "the name length of entry %lu of %lu", ui, un) != 0) return -1;
    *nl = get_u16(c->b + c->off);
    if (*nl == 0 || *nl > CKPT_NAME_MAX) {
        file_fail(c->err, c->errlen, c->path, "entry %lu of %lu: name length %zu at offset %zu, "
             "expected 1..%d", ui, un, *nl, c->off, CKPT_NAME_MAX);
        return -1;
    }
    c->off += 2;
    if (need(c, *nl, "the name of entry %lu of %lu", ui, un) != 0) return -1;
    *name = c->b + c->off;
    show(*name, *nl, nb, nblen);
    if (memchr(*name, 0, *nl)) {
        file_fail(c->err, c->errlen, c->path, "entry %lu of %lu: the name \"%s\" at offset %zu "
             "contains a NUL byte", ui, un, nb, c->off);
        return -1;
    }
    c->off += *nl;
    return 0;
}

/* The type, ndim and dims of the entry named nb: *t, *nd, dims[*nd], and the payload
 * length they call for in *want (*overflow when it exceeds 2^64 bytes). 0, or -1 with
 * a message. */
static int walk_shape(cursor *c, const char *nb, unsigned *t, unsigned *nd, uint32_t *dims,
                      uint64_t *want, int *overflow)
{
    if (need(c, 2, "the type and ndim of entry \"%s\"", nb) != 0) return -1;
    *t = c->b[c->off];
    *nd = c->b[c->off + 1];
    if (elem_size(*t) == 0) {
        file_fail(c->err, c->errlen, c->path, "entry \"%s\": type %u at offset %zu, expected 1..4 "
             "(F32, I32, U64, TEXT)", nb, *t, c->off);
        return -1;
    }
    if (*nd < 1 || *nd > CKPT_MAX_DIMS || (*t == CKPT_TEXT && *nd != 1)) {
        file_fail(c->err, c->errlen, c->path, "entry \"%s\": ndim %u at offset %zu, expected %s", nb, *nd,
             c->off + 1, *t == CKPT_TEXT ? "1 for TEXT" : "1..4");
        return -1;
    }
    c->off += 2;
    if (need(c, 4 * (size_t)*nd, "the dims of entry \"%s\"", nb) != 0) return -1;
    uint64_t elems = 1;
    int over = 0, zero = 0;
    for (unsigned d = 0; d < *nd; d++, c->off += 4) {
        dims[d] = get_u32(c->b + c->off);
        if (dims[d] > (uint32_t)INT_MAX) {
            file_fail(c->err, c->errlen, c->path, "entry \"%s\": dim %u is %lu at offset %zu, at most %d",
                 nb, d, (unsigned long)dims[d], c->off, INT_MAX);
            return -1;
        }
        if (dims[d] == 0) zero = 1;
        else if (elems > UINT64_MAX / dims[d]) over = 1;
        else elems *= dims[d];
    }
    if (zero) {
        over = 0;
        elems = 0;
    }
    size_t es = elem_size(*t);
    if (elems > UINT64_MAX / es) over = 1;
    *want = over ? 0 : elems * es;
    *overflow = over;
    return 0;
}

/* The payload length of the entry named nb, which must be `want` (its shape's bytes)
 * and fit in the file; leaves the cursor at the payload, its length in *plen. 0, or
 * -1 with a message. */
static int walk_payload_len(cursor *c, const char *nb, unsigned t, unsigned nd, const uint32_t *dims,
                            uint64_t want, int overflow, uint64_t *plen)
{
    char db[64];
    if (need(c, 8, "the payload length of entry \"%s\"", nb) != 0) return -1;
    *plen = get_u64(c->b + c->off);
    if (*plen > (uint64_t)(c->size - c->off - 8)) {
        file_fail(c->err, c->errlen, c->path, "entry \"%s\": payload length %llu at offset %zu, but only "
             "%zu bytes follow (the file is truncated or corrupted, %zu bytes)", nb,
             (unsigned long long)*plen, c->off, c->size - c->off - 8, c->size);
        return -1;
    }
    if (overflow || *plen != want) {
        char wb[32];
        if (overflow) snprintf(wb, sizeof wb, "more than 2^64");
        else snprintf(wb, sizeof wb, "%llu", (unsigned long long)want);
        file_fail(c->err, c->errlen, c->path, "entry \"%s\": payload length %llu at offset %zu, expected "
             "%s for %s %s (%zu bytes each)", nb, (unsigned long long)*plen, c->off, wb,
             type_name(t), show_dims((int)nd, dims, db, sizeof db), elem_size(t));
        return -1;
    }
    c->off += 8;
    return 0;
}

/* Entry i of n: name, shape, payload length; with e, fills it (name, type, shape) and
 * *poff (the payload's offset). Leaves the cursor after the payload. 0, or -1 with a
 * message. */
static int walk_entry(cursor *c, uint32_t i, uint32_t n, ckpt_entry *e, size_t *poff)
{
    char nb[SHOW_LEN];
    const unsigned char *name;
    size_t nl;
    unsigned t, nd;
    uint32_t dims[CKPT_MAX_DIMS];
    uint64_t want, plen;
    int overflow;
    if (walk_name(c, i, n, &name, &nl, nb, sizeof nb) != 0) return -1;
    if (walk_shape(c, nb, &t, &nd, dims, &want, &overflow) != 0) return -1;
    if (walk_payload_len(c, nb, t, nd, dims, want, overflow, &plen) != 0) return -1;
    if (e) {
        memcpy(e->name, name, nl);
        e->name[nl] = 0;
        e->type = (ckpt_type)t;
        e->ndim = (int)nd;
        for (unsigned d = 0; d < nd; d++) e->shape[d] = (int)dims[d];
        *poff = c->off;
    }
    c->off += (size_t)plen;
    return 0;
}

/* The trailer after n entries: end marker, the recorded length, nothing after it.
 * 0, or -1 with a message. */
static int walk_trailer(cursor *c, uint32_t n)
{
    char nb[SHOW_LEN];
    size_t off = c->off;
    if (need(c, TRAILER_LEN, "the trailer") != 0) return -1;
    if (memcmp(c->b + off + 12, END_MAGIC, MAGIC_LEN) != 0) {
        file_fail(c->err, c->errlen, c->path, "expected the end marker \"" END_MAGIC "\" at offset %zu after "
             "%lu entries, found \"%s\" (the entry count or a length is corrupted)", off + 12,
             (unsigned long)n, show(c->b + off + 12, MAGIC_LEN, nb, sizeof nb));
        return -1;
    }
    uint64_t tlen = get_u64(c->b + off);
    if (tlen != off) {
        file_fail(c->err, c->errlen, c->path, "the trailer at offset %zu records %llu bytes before it, "
             "but %zu precede it", off, (unsigned long long)tlen, off);
        return -1;
    }
    if (c->size - off > TRAILER_LEN) {
        file_fail(c->err, c->errlen, c->path, "%zu bytes of unexpected data after the trailer, at offset %zu",
             c->size - off - TRAILER_LEN, off + TRAILER_LEN);
        return -1;
    }
    return 0;
}

/* Walks the entries of a loaded file. Without out, validates everything but name
 * uniqueness (header, entries, trailer, CRC) and sets *count, allocating nothing.
 * With out (count entries) and poff (count offsets), fills the names, types and
 * shapes and the payloads' offsets, on a file that has passed the first walk.
 * 0, or -1 with a message. */
static int walk(const char *path, const unsigned char *b, size_t size, uint32_t *count,
                ckpt_entry *out, size_t *poff, char *err, size_t errlen)
{
    cursor c = { path, b, size, 0, err, errlen };
    uint32_t n;
    int crc_done;
    if (walk_header(&c, !out, &n, &crc_done) != 0) return -1;
    for (uint32_t i = 0; i < n; i++)
        if (walk_entry(&c, i, n, out ? &out[i] : NULL, out ? &poff[i] : NULL) != 0) return -1;
    if (walk_trailer(&c, n) != 0) return -1;
    /* Reached only with an intact trailer, whose CRC was checked above. */
    if (!out && !crc_done && check_crc(path, b, c.off, err, errlen) != 0) return -1;
    *count = n;
    return 0;
}

/* Decodes a payload of count elements of type t from little-endian bytes into a fresh
 * buffer (a NUL follows, for texts). NULL when memory is short. */
static void *decode_payload(unsigned t, const unsigned char *p, size_t count)
{
    size_t es = elem_size(t), bytes = count * es;
    unsigned char *d = malloc(bytes + 1);
    if (!d) return NULL;
    d[bytes] = 0;
    if (t == CKPT_TEXT) {
        memcpy(d, p, bytes);
    } else if (es == 4) {
        for (size_t i = 0; i < count; i++) {
            uint32_t v = get_u32(p + 4 * i);
            memcpy(d + 4 * i, &v, 4);
        }
    } else {
        for (size_t i = 0; i < count; i++) {
            uint64_t v = get_u64(p + 8 * i);
            memcpy(d + 8 * i, &v, 8);
        }
    }
    return d;
}

/* Everything after the load: validate, then build *c (empty, on success only). */
static int parse(const char *path, const unsigned char *b, size_t size, ckpt *c, char *err,
                 size_t errlen)
{
    char nb[SHOW_LEN];
    uint32_t n = 0;
    if (walk(path, b, size, &n, NULL, NULL, err, errlen) != 0) return -1;
    if (n == 0) return 0;
    /* The walk found n entries in the file, each of at least 17 bytes. */
    ckpt_entry *e = calloc(n, sizeof *e);
    size_t *poff = malloc(n * sizeof *poff);
    const ckpt_entry **ix = malloc(n * sizeof *ix);
    if (!e || !poff || !ix) {
        file_fail(err, errlen, path, "out of memory (%lu entries)", (unsigned long)n);
        goto bad;
    }
    uint32_t again = 0;
    if (walk(path, b, size, &again, e, poff, err, errlen) != 0) goto bad;

    for (uint32_t i = 0; i < n; i++) ix[i] = &e[i];
    qsort(ix, n, sizeof *ix, cmp_entry_name);
    for (uint32_t i = 1; i < n; i++)
        if (strcmp(ix[i - 1]->name, ix[i]->name) == 0) {
            file_fail(err, errlen, path, "entries %d and %d have the same name \"%s\"",
                 (int)(ix[i - 1] - e), (int)(ix[i] - e),
                 show(ix[i]->name, strlen(ix[i]->name), nb, sizeof nb));
            goto bad;
        }

    for (uint32_t i = 0; i < n; i++) {
        size_t count = ckpt_count(&e[i]);
        e[i].data = decode_payload((unsigned)e[i].type, b + poff[i], count);
        if (!e[i].data) {
            file_fail(err, errlen, path, "out of memory: entry \"%s\" needs %zu bytes",
                 show(e[i].name, strlen(e[i].name), nb, sizeof nb),
                 count * elem_size((unsigned)e[i].type));
            goto bad;
        }
    }
    free(poff);
    free(ix);
    c->e = e;
    c->n = (int)n;
    c->cap = (int)n;
    return 0;

bad:
    if (e)
        for (uint32_t i = 0; i < n; i++) free(e[i].data);
    free(e);
    free(poff);
    free(ix);
    return -1;
}

int ckpt_read(const char *path, ckpt *c, char *err, size_t errlen)
{
    if (!path || !*path) {
        file_fail(err, errlen, NULL, "ckpt_read: the path is NULL or empty");
        return -1;
    }
    if (!c) {
        file_fail(err, errlen, path, "the output checkpoint is NULL");
        return -1;
    }
    if (c->n != 0) {
        file_fail(err, errlen, path, "the output checkpoint is not empty (%d entries)", c->n);
        return -1;
    }
    unsigned char *b = NULL;
    size_t size = 0;
    if (load_file(path, &b, &size, err, errlen) != 0) return -1;
    ckpt out;
    ckpt_init(&out);
    int rc = parse(path, b, size, &out, err, errlen);
    free(b);
    if (rc != 0) return -1;
    free(c->e);   /* an empty list may still hold its array */
    *c = out;
    return 0;
}

/* The pid of a temporary file's name when it is "<base>.tmp.<pid>" as ckpt_write
 * writes it (decimal, no sign, no leading zero), else 0. */
static long temp_pid(const char *name, const char *base)
{
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".tmp.", 5) != 0) return 0;
    const char *d = name + bl + 5;
    if (*d < '1' || *d > '9') return 0;
    errno = 0;
    char *end;
    long pid = strtol(d, &end, 10);
    return *end || errno || pid <= 0 || (long)(pid_t)pid != pid ? 0 : pid;
}

int ckpt_remove_stale_temps(const char *path, char *err, size_t errlen)
{
    char eb[128];
    if (!path || !*path) {
        file_fail(err, errlen, NULL, "ckpt_remove_stale_temps: the path is NULL or empty");
        return -1;
    }
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) : 0;
    char *dir = malloc(dl + 2), *file = NULL;
    if (!dir) {
        file_fail(err, errlen, path, "out of memory");
        return -1;
    }
    if (slash && dl == 0) strcpy(dir, "/");
    else if (slash) {
        memcpy(dir, path, dl);
        dir[dl] = 0;
    } else strcpy(dir, ".");
    const char *base = slash ? slash + 1 : path;
    DIR *d = opendir(dir);
    int removed = 0;
    if (!d) {
        int e = errno;
        free(dir);
        if (e == ENOENT) return 0;
        file_fail(err, errlen, path, "cannot read its folder to remove stale temporary files: %s",
                  file_errstr(e, eb, sizeof eb));
        return -1;
    }
    for (struct dirent *e; removed >= 0 && (e = readdir(d)) != NULL;) {
        long pid = temp_pid(e->d_name, base);
        if (!pid) continue;
        /* kill(pid, 0): ESRCH is no such process; EPERM is a live one of another user */
        if (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
        size_t fl = strlen(dir) + strlen(e->d_name) + 2;
        char *g = realloc(file, fl);
        if (!g) {
            file_fail(err, errlen, path, "out of memory");
            removed = -1;
            break;
        }
        file = g;
        snprintf(file, fl, "%s/%s", dir, e->d_name);
        if (unlink(file) == 0) removed++;
        else if (errno != ENOENT) {
            file_fail(err, errlen, path, "cannot remove the stale temporary file %s: %s", file,
                      file_errstr(errno, eb, sizeof eb));
            removed = -1;
        }
    }
    closedir(d);
    free(file);
    free(dir);
    return removed;
}
