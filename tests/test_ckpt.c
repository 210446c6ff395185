/* Tests of train/ckpt.c: the checkpoint container.
 *
 * Round trips of every type (compared byte for byte), the exact file layout against
 * bytes built by hand, the CRC against a bitwise reference, errors of ckpt_add, and
 * damaged files: every truncation and every single-byte change of a small file, wrong
 * magic and version, trailing bytes, huge length fields (with the CRC recomputed so the
 * structural checks themselves are exercised), missing files and directories. Each bad
 * read must give -1, a message naming the file, and an output left empty. Crash safety:
 * a child rewriting a 50 MB checkpoint in a loop is SIGKILLed at several moments, and
 * the file must still read as a complete version. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ckpt.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* ---- fixtures and helpers -------------------------------------------------- */

static char tmpdir[256];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/recur_ckpt_XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp failed");
}

static void teardown(void) { tu_remove_tree(tmpdir); }

TestSuite(ckpt, .init = setup, .fini = teardown);

/* A path in the test's temporary directory (a static buffer per slot). */
static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ % 4];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

static void put_bytes(const char *path, const void *buf, size_t n)
{
    /* Overwritten in place and cut to size: truncating a file to 0 bytes and rewriting
     * it makes ext4 flush it on close, which is slow when done thousands of times. */
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    cr_assert_geq(fd, 0, "cannot create %s", path);
    const unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, p + done, n - done, (off_t)done);
        cr_assert_gt(w, 0, "cannot write %s", path);
        done += (size_t)w;
    }
    cr_assert_eq(ftruncate(fd, (off_t)n), 0);
    cr_assert_eq(close(fd), 0);
}

/* A whole file in a malloc'd buffer of *n bytes. */
static unsigned char *get_bytes(const char *path, size_t *n)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "cannot stat %s", path);
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    cr_assert_not_null(buf);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    *n = fread(buf, 1, (size_t)st.st_size + 1, f);
    fclose(f);
    cr_assert_eq(*n, (size_t)st.st_size);
    return buf;
}

/* Names in tmpdir other than "." and "..", sorted, joined by ' ' into out. */
static int list_dir(char *out, size_t len)
{
    DIR *d = opendir(tmpdir);
    cr_assert_not_null(d);
    char names[32][256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        cr_assert_lt(n, 32);
        snprintf(names[n++], 256, "%s", e->d_name);
    }
    closedir(d);
    for (int i = 1; i < n; i++)       /* insertion sort */
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char t[256];
            memcpy(t, names[j], 256);
            memcpy(names[j], names[j - 1], 256);
            memcpy(names[j - 1], t, 256);
        }
    out[0] = 0;
    size_t k = 0;
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(out + k, len - k, i ? " %s" : "%s", names[i]);
    return n;
}

/* Bitwise CRC-32 (reflected 0xEDB88320, as zlib), independent of the library's tables. */
static uint32_t ref_crc(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++) c = c & 1 ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return ~c;
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static void wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void wr64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Recomputes the trailer's CRC (at size - 12) over the bytes before the trailer. */
static void fix_crc(unsigned char *b, size_t n)
{
    cr_assert_geq(n, 36);
    wr32(b + n - 12, ref_crc(b, n - 20));
}

/* Offsets of the fields of entry i (walking the format independently of the library). */
typedef struct field_offs {
    size_t name_len, name, type, ndim, dims, payload_len, payload, end;
} field_offs;

static field_offs entry_at(const unsigned char *b, size_t n, int i)
{
    size_t off = 16;
    field_offs f = { 0 };
    for (int k = 0; k <= i; k++) {
        cr_assert_lt(off + 2, n);
        f.name_len = off;
        f.name = off + 2;
        f.type = f.name + (b[off] | (size_t)b[off + 1] << 8);
        f.ndim = f.type + 1;
        f.dims = f.ndim + 1;
        f.payload_len = f.dims + 4 * (size_t)b[f.ndim];
        f.payload = f.payload_len + 8;
        f.end = f.payload + (size_t)rd64(b + f.payload_len);
        cr_assert_leq(f.end, n);
        off = f.end;
    }
    return f;
}

/* Reads path, which must fail: -1, a message naming the file (and containing want,
 * when not NULL, and not "out of memory"), and an output still empty. */
static void expect_reject(const char *path, const char *want, const char *what)
{
    ckpt c;
    ckpt_init(&c);
    char err[512];
    strcpy(err, "");
    int rc = ckpt_read(path, &c, err, sizeof err);
    cr_assert_eq(rc, -1, "%s: read succeeded", what);
    cr_assert_neq(err[0], 0, "%s: empty message", what);
    cr_assert_not_null(strstr(err, path), "%s: message does not name the file: %s", what, err);
    if (want) cr_assert_not_null(strstr(err, want), "%s: expected \"%s\" in: %s", what, want, err);
    cr_assert_null(strstr(err, "out of memory"), "%s: %s", what, err);
    cr_assert_eq(c.n, 0, "%s", what);
    cr_assert_null(c.e, "%s", what);
    ckpt_free(&c);
}

/* Writes b (n bytes) to a scratch file and expects ckpt_read to refuse it. */
static void expect_reject_bytes(const unsigned char *b, size_t n, const char *want,
                                const char *what)
{
    const char *p = tpath("bad.ckpt");
    put_bytes(p, b, n);
    expect_reject(p, want, what);
}

static float f32_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Entries of every type, rank 1..4, special values, empty arrays and texts, a name of
 * the longest length. */
static void build_sample(ckpt *c)
{
    char err[256];
    float w[3][4];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) w[i][j] = (float)(i * 4 + j) * 0.25f - 1.0f;
    cr_assert_eq(ckpt_add(c, "l0.W_xh", CKPT_F32, 2, (int[]){ 3, 4 }, w, err, sizeof err), 0,
                 "%s", err);
    float sp[7] = { f32_bits(0x7fc12345u), f32_bits(0x80000000u), f32_bits(0x7f800000u),
                    f32_bits(0xff800000u), f32_bits(0x00000001u), f32_bits(0x7f7fffffu),
                    f32_bits(0xffbadbadu) };
    cr_assert_eq(ckpt_add(c, "special", CKPT_F32, 1, (int[]){ 7 }, sp, err, sizeof err), 0);
    float f4[12];
    for (int i = 0; i < 12; i++) f4[i] = (float)i / 3.0f;
    cr_assert_eq(ckpt_add(c, "f4", CKPT_F32, 4, (int[]){ 2, 1, 3, 2 }, f4, err, sizeof err), 0);
    int32_t iv[8] = { INT32_MIN, INT32_MAX, -1, 0, 1, 123456789, -987654321, 42 };
    cr_assert_eq(ckpt_add(c, "ints", CKPT_I32, 3, (int[]){ 2, 2, 2 }, iv, err, sizeof err), 0);
    uint64_t uv[5] = { 0, 1, UINT64_MAX, 0x0123456789abcdefull, 1ull << 63 };
    cr_assert_eq(ckpt_add_u64(c, "optim.steps_rng", uv, 5, err, sizeof err), 0, "%s", err);
    uint64_t u2[4] = { 7, 8, 9, 10 };
    cr_assert_eq(ckpt_add(c, "u2", CKPT_U64, 2, (int[]){ 2, 2 }, u2, err, sizeof err), 0);
    cr_assert_eq(ckpt_add_text(c, "config", "hidden=128\nlr=0.001 \xe2\x9c\x93", err,
                               sizeof err), 0);
    cr_assert_eq(ckpt_add_text(c, "empty text", "", err, sizeof err), 0);
    cr_assert_eq(ckpt_add(c, "nul text", CKPT_TEXT, 1, (int[]){ 5 }, "a\0b\0c", err,
                          sizeof err), 0);
    cr_assert_eq(ckpt_add(c, "no floats", CKPT_F32, 2, (int[]){ 3, 0 }, NULL, err, sizeof err),
                 0, "%s", err);
    char longname[CKPT_NAME_MAX + 1];
    memset(longname, 'n', CKPT_NAME_MAX);
    longname[CKPT_NAME_MAX] = 0;
    cr_assert_eq(ckpt_add(c, longname, CKPT_I32, 1, (int[]){ 1 }, (int32_t[]){ -7 }, err,
                          sizeof err), 0, "%s", err);
}

static size_t elem_bytes(ckpt_type t)
{
    return t == CKPT_U64 ? 8 : t == CKPT_TEXT ? 1 : 4;
}

static void assert_same(const ckpt *a, const ckpt *b)
{
    cr_assert_eq(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        const ckpt_entry *x = &a->e[i], *y = &b->e[i];
        cr_assert_str_eq(x->name, y->name, "entry %d", i);
        cr_assert_eq(x->type, y->type, "entry %s", x->name);
        cr_assert_eq(x->ndim, y->ndim, "entry %s", x->name);
        for (int d = 0; d < x->ndim; d++) cr_assert_eq(x->shape[d], y->shape[d]);
        cr_assert_eq(ckpt_count(x), ckpt_count(y));
        cr_assert_not_null(y->data, "entry %s", x->name);
        cr_assert_eq(memcmp(x->data, y->data, ckpt_count(x) * elem_bytes(x->type)), 0,
                     "entry %s differs", x->name);
    }
}

/* The sample written to name; its bytes in *b (malloc'd), *n. */
static const char *write_sample(const char *name, unsigned char **b, size_t *n)
{
    ckpt c;
    ckpt_init(&c);
    build_sample(&c);
    const char *p = tpath(name);
    char err[256] = "";
    cr_assert_eq(ckpt_write(p, &c, err, sizeof err), 0, "%s", err);
    ckpt_free(&c);
    if (b) *b = get_bytes(p, n);
    return p;
}

/* ---- round trips and the layout -------------------------------------------- */

Test(ckpt, round_trip_every_type)
{
    ckpt c, r;
    ckpt_init(&c);
    ckpt_init(&r);
    build_sample(&c);
    const char *p = tpath("a.ckpt");
    char err[256] = "";
    cr_assert_eq(ckpt_write(p, &c, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ckpt_read(p, &r, err, sizeof err), 0, "%s", err);
    assert_same(&c, &r);
    /* Texts come back NUL-terminated; counts are products of the shapes. */
    const ckpt_entry *t = ckpt_find(&r, "config");
    cr_assert_not_null(t);
    cr_assert_str_eq((const char *)t->data, "hidden=128\nlr=0.001 \xe2\x9c\x93");
    cr_assert_eq(((const char *)ckpt_find(&r, "empty text")->data)[0], 0);
    cr_assert_eq(ckpt_count(ckpt_find(&r, "nul text")), 5);
    cr_assert_eq(((const char *)ckpt_find(&r, "nul text")->data)[5], 0);
    cr_assert_eq(ckpt_count(ckpt_find(&r, "f4")), 12);
    cr_assert_eq(ckpt_count(ckpt_find(&r, "no floats")), 0);
    cr_assert_eq(((const uint64_t *)ckpt_find(&r, "optim.steps_rng")->data)[2], UINT64_MAX);
    cr_assert_eq(((const int32_t *)ckpt_find(&r, "ints")->data)[0], INT32_MIN);
    /* Writing what was read gives the same bytes. */
    size_t n1, n2;
    unsigned char *b1 = get_bytes(p, &n1);
    cr_assert_eq(ckpt_write(tpath("b.ckpt"), &r, err, sizeof err), 0, "%s", err);
    unsigned char *b2 = get_bytes(tpath("b.ckpt"), &n2);
    cr_assert_eq(n1, n2);
    cr_assert_eq(memcmp(b1, b2, n1), 0);
    free(b1);
    free(b2);
    ckpt_free(&c);
    ckpt_free(&r);
    ckpt_free(&r);   /* twice is harmless */
    ckpt_free(NULL);
}

Test(ckpt, round_trip_empty)
{
    ckpt c, r;
    ckpt_init(&c);
    ckpt_init(&r);
    const char *p = tpath("e.ckpt");
    char err[256] = "";
    cr_assert_eq(ckpt_write(p, &c, err, sizeof err), 0, "%s", err);
    size_t n;
    unsigned char *b = get_bytes(p, &n);
    cr_assert_eq(n, 36);
    free(b);
    cr_assert_eq(ckpt_read(p, &r, err, sizeof err), 0, "%s", err);
    cr_assert_eq(r.n, 0);
    ckpt_free(&r);
}

Test(ckpt, round_trip_large_entry)
{
    /* Several write-buffer flushes (1 MiB each), odd sizes. */
    ckpt c, r;
    ckpt_init(&c);
    ckpt_init(&r);
    int n = 700001;
    float *f = malloc((size_t)n * sizeof *f);
    uint64_t *u = malloc(100003 * sizeof *u);
    cr_assert(f && u);
    for (int i = 0; i < n; i++) f[i] = (float)i * 1.5f - 7.0f;
    for (int i = 0; i < 100003; i++) u[i] = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    char err[256] = "";
    cr_assert_eq(ckpt_add(&c, "big", CKPT_F32, 1, &n, f, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ckpt_add_text(&c, "t", "x", err, sizeof err), 0);
    cr_assert_eq(ckpt_add_u64(&c, "u", u, 100003, err, sizeof err), 0);
    free(f);
    free(u);
    const char *p = tpath("big.ckpt");
    cr_assert_eq(ckpt_write(p, &c, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ckpt_read(p, &r, err, sizeof err), 0, "%s", err);
    assert_same(&c, &r);
    size_t sz;
    unsigned char *b = get_bytes(p, &sz);
    cr_assert_eq(rd32(b + sz - 12), ref_crc(b, sz - 20));
    free(b);
    ckpt_free(&c);
    ckpt_free(&r);
}

Test(ckpt, exact_layout)
{
    ckpt c;
    ckpt_init(&c);
    char err[256] = "";
    cr_assert_eq(ckpt_add(&c, "w", CKPT_F32, 1, (int[]){ 2 }, (float[]){ 1.0f, -2.0f }, err,
                          sizeof err), 0);
    cr_assert_eq(ckpt_add_text(&c, "t", "hi", err, sizeof err), 0);
    cr_assert_eq(ckpt_add(&c, "i", CKPT_I32, 2, (int[]){ 1, 1 }, (int32_t[]){ -2 }, err,
                          sizeof err), 0);
    cr_assert_eq(ckpt_add_u64(&c, "u", (uint64_t[]){ 0x0102030405060708ull }, 1, err,
                              sizeof err), 0);
    const char *p = tpath("layout.ckpt");
    cr_assert_eq(ckpt_write(p, &c, err, sizeof err), 0, "%s", err);
    ckpt_free(&c);

    static const unsigned char body[] = {
        'R', 'E', 'C', 'U', 'R', 'C', 'K', 'P', 1, 0, 0, 0, 4, 0, 0, 0,
        /* "w": F32 [2] */
        1, 0, 'w', 1, 1, 2, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0,
        0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0,
        /* "t": TEXT "hi" */
        1, 0, 't', 4, 1, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 'h', 'i',
        /* "i": I32 [1, 1] */
        1, 0, 'i', 2, 2, 1, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff,
        /* "u": U64 [1] */
        1, 0, 'u', 3, 1, 1, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1,
    };
    size_t n;
    unsigned char *b = get_bytes(p, &n);
    cr_assert_eq(n, sizeof body + 20);
    cr_assert_eq(memcmp(b, body, sizeof body), 0);
    cr_assert_eq(rd64(b + sizeof body), sizeof body);
    cr_assert_eq(rd32(b + sizeof body + 8), ref_crc(body, sizeof body));
    cr_assert_eq(memcmp(b + sizeof body + 12, "RECUREND", 8), 0);
    free(b);
}

Test(ckpt, crc32_matches_zlib)
{
    cr_assert_eq(ckpt_crc32(0, "123456789", 9), 0xCBF43926u);
    cr_assert_eq(ckpt_crc32(0, "", 0), 0);
    cr_assert_eq(ckpt_crc32(0, "a", 1), 0xE8B7BE43u);
    cr_assert_eq(ckpt_crc32(0, "The quick brown fox jumps over the lazy dog", 43), 0x414FA339u);
    unsigned char buf[1000];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        s = s * 1103515245u + 12345u;
        buf[i] = (unsigned char)(s >> 16);
    }
    for (size_t start = 0; start < 9; start++)
        for (size_t len = 0; len + start <= sizeof buf; len += 37) {
            cr_assert_eq(ckpt_crc32(0, buf + start, len), ref_crc(buf + start, len));
            /* Chaining, as zlib: crc(a ++ b) = crc32(crc32(0, a), b). */
            size_t h = len / 3;
            cr_assert_eq(ckpt_crc32(ckpt_crc32(0, buf + start, h), buf + start + h, len - h),
                         ref_crc(buf + start, len));
        }
}

/* ---- the in-memory list ---------------------------------------------------- */

Test(ckpt, find_and_count)
{
    ckpt c;
    ckpt_init(&c);
    cr_assert_null(ckpt_find(&c, "x"));
    build_sample(&c);
    const ckpt_entry *e = ckpt_find(&c, "ints");
    cr_assert_not_null(e);
    cr_assert_eq(e, &c.e[3]);
    cr_assert_eq(e->type, CKPT_I32);
    cr_assert_eq(ckpt_count(e), 8);
    cr_assert_eq(ckpt_count(ckpt_find(&c, "config")), strlen("hidden=128\nlr=0.001 \xe2\x9c\x93"));
    cr_assert_eq(ckpt_find(&c, "l0.W_xh"), &c.e[0]);
    cr_assert_null(ckpt_find(&c, "l0.W_x"));
    cr_assert_null(ckpt_find(&c, "l0.W_xhh"));
    cr_assert_null(ckpt_find(&c, ""));
    cr_assert_null(ckpt_find(&c, NULL));
    cr_assert_null(ckpt_find(NULL, "ints"));
    cr_assert_eq(ckpt_count(NULL), 0);
    /* Many entries: the list grows, order is kept. */
    char err[256], name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "p%d", i);
        cr_assert_eq(ckpt_add(&c, name, CKPT_F32, 1, (int[]){ 1 }, (float[]){ (float)i }, err,
                              sizeof err), 0, "%s", err);
    }
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "p%d", i);
        e = ckpt_find(&c, name);
        cr_assert_not_null(e);
        cr_assert_eq(*(const float *)e->data, (float)i);
        cr_assert_eq(e, &c.e[c.n - 100 + i]);
    }
    ckpt_free(&c);
    cr_assert_eq(c.n, 0);
    cr_assert_null(c.e);
}

/* ckpt_add must fail with a message containing want, leaving c at n entries. */
static void expect_add_error(ckpt *c, const char *name, ckpt_type t, int ndim,
                             const int *shape, const void *data, const char *want)
{
    int n = c->n;
    char err[256] = "";
    cr_assert_eq(ckpt_add(c, name, t, ndim, shape, data, err, sizeof err), -1,
                 "ckpt_add(%s) succeeded", name ? name : "NULL");
    cr_assert_not_null(strstr(err, want), "expected \"%s\" in: %s", want, err);
    cr_assert_eq(c->n, n);
}

Test(ckpt, add_errors)
{
    ckpt c;
    ckpt_init(&c);
    float f[4] = { 1, 2, 3, 4 };
    char err[256];
    cr_assert_eq(ckpt_add(&c, "w", CKPT_F32, 1, (int[]){ 4 }, f, err, sizeof err), 0);
    expect_add_error(&c, "w", CKPT_F32, 1, (int[]){ 4 }, f, "duplicate");
    expect_add_error(&c, "w", CKPT_I32, 1, (int[]){ 1 }, f, "\"w\"");
    expect_add_error(&c, "x", CKPT_F32, 0, (int[]){ 4 }, f, "ndim 0");
    expect_add_error(&c, "x", CKPT_F32, 5, (int[]){ 1, 1, 1, 1, 4 }, f, "ndim 5");
    expect_add_error(&c, "x", CKPT_F32, -1, (int[]){ 4 }, f, "ndim -1");
    expect_add_error(&c, "x", CKPT_TEXT, 2, (int[]){ 2, 2 }, "abcd", "TEXT");
    expect_add_error(&c, "x", CKPT_F32, 2, (int[]){ 2, -2 }, f, "dim 1 is -2");
    expect_add_error(&c, "x", (ckpt_type)0, 1, (int[]){ 4 }, f, "type 0");
    expect_add_error(&c, "x", (ckpt_type)5, 1, (int[]){ 4 }, f, "type 5");
    expect_add_error(&c, "x", CKPT_F32, 1, NULL, f, "shape");
    expect_add_error(&c, "x", CKPT_F32, 1, (int[]){ 4 }, NULL, "NULL");
    expect_add_error(&c, "x", CKPT_U64, 4, (int[]){ INT_MAX, INT_MAX, INT_MAX, INT_MAX }, f,
                     "too many");
    expect_add_error(&c, "", CKPT_F32, 1, (int[]){ 4 }, f, "empty");
    char longname[CKPT_NAME_MAX + 2];
    memset(longname, 'a', CKPT_NAME_MAX + 1);
    longname[CKPT_NAME_MAX + 1] = 0;
    expect_add_error(&c, longname, CKPT_F32, 1, (int[]){ 4 }, f, "128 bytes long, at most 127");
    longname[CKPT_NAME_MAX] = 0;   /* 127 bytes: fine */
    cr_assert_eq(ckpt_add(&c, longname, CKPT_F32, 1, (int[]){ 4 }, f, err, sizeof err), 0,
                 "%s", err);
    expect_add_error(&c, longname, CKPT_F32, 1, (int[]){ 4 }, f, "duplicate");
    cr_assert_eq(ckpt_add_text(&c, "t", NULL, err, sizeof err), -1);
    cr_assert_eq(ckpt_add_u64(&c, "u", NULL, -1, err, sizeof err), -1);
    cr_assert_eq(ckpt_add(NULL, "x", CKPT_F32, 1, (int[]){ 4 }, f, err, sizeof err), -1);
    cr_assert_eq(ckpt_add(&c, NULL, CKPT_F32, 1, (int[]){ 4 }, f, err, sizeof err), -1);
    /* No message buffer, or a tiny one: still -1, and the message is cut, terminated. */
    cr_assert_eq(ckpt_add(&c, "w", CKPT_F32, 1, (int[]){ 4 }, f, NULL, 0), -1);
    char small[8];
    memset(small, 'z', sizeof small);
    cr_assert_eq(ckpt_add(&c, "w", CKPT_F32, 1, (int[]){ 4 }, f, small, sizeof small), -1);
    cr_assert_lt(strlen(small), sizeof small);
    /* The data were copied. */
    f[0] = 99;
    cr_assert_eq(((const float *)ckpt_find(&c, "w")->data)[0], 1.0f);
    cr_assert_eq(c.n, 2);
    ckpt_free(&c);
}

Test(ckpt, write_checks_entries)
{
    /* Entries edited in place are checked before anything is created. */
    ckpt c;
    ckpt_init(&c);
    char err[256] = "";
    build_sample(&c);
    const char *p = tpath("a.ckpt");
    cr_assert_eq(ckpt_write(p, &c, err, sizeof err), 0, "%s", err);
    ckpt_type t = c.e[1].type;
    c.e[1].type = (ckpt_type)9;
    cr_assert_eq(ckpt_write(p, &c, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "type 9"), "%s", err);
    cr_assert_not_null(strstr(err, "special"), "%s", err);
    c.e[1].type = t;
    memcpy(c.e[2].name, c.e[0].name, sizeof c.e[0].name);
    cr_assert_eq(ckpt_write(p, &c, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "same name"), "%s", err);
    memset(c.e[2].name, 'x', sizeof c.e[2].name);
    cr_assert_eq(ckpt_write(p, &c, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "NUL"), "%s", err);
    c.e[2].name[0] = 0;
    cr_assert_eq(ckpt_write(p, &c, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "empty"), "%s", err);
    cr_assert_eq(ckpt_write(NULL, &c, err, sizeof err), -1);
    cr_assert_eq(ckpt_write("", &c, err, sizeof err), -1);
    cr_assert_eq(ckpt_write(p, NULL, err, sizeof err), -1);
    snprintf(c.e[2].name, sizeof c.e[2].name, "f4");
    /* The file from the first write is intact; no temporary file was left. */
    ckpt r;
    ckpt_init(&r);
    cr_assert_eq(ckpt_read(p, &r, err, sizeof err), 0, "%s", err);
    assert_same(&c, &r);
    char names[256];
    cr_assert_eq(list_dir(names, sizeof names), 1, "%s", names);
    ckpt_free(&c);
    ckpt_free(&r);
}

/* ---- damaged files ---------------------------------------------------------- */

Test(ckpt, truncated_at_every_offset)
{
    size_t n;
    unsigned char *b;
    write_sample("a.ckpt", &b, &n);
    char what[64];
    for (size_t k = 0; k < n; k++) {
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", k, n);
        expect_reject_bytes(b, k, "truncated", what);
    }
    free(b);
}

Test(ckpt, every_byte_change_is_detected)
{
    size_t n;
    unsigned char *b;
    char p[512];
    snprintf(p, sizeof p, "%s", write_sample("a.ckpt", &b, &n));
    static const unsigned char masks[] = { 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80,
                                           0xff, 0x5a };
    char what[64];
    for (size_t k = 0; k < n; k++) {
        /* The magic and the version are checked first; any other change before the
         * trailer is damage the CRC reports; the trailer's fields are checked one by one. */
        const char *want = k < 8 ? "not a recur checkpoint"
                         : k < 12 ? "this build reads version 1"
                         : k < n - 20 ? "checksum mismatch: the file is corrupted"
                         : k < n - 12 ? "records"
                         : k < n - 8 ? "checksum mismatch: the file is corrupted"
                         : "end marker \"RECUREND\"";
        for (size_t m = 0; m < sizeof masks; m++) {
            b[k] ^= masks[m];
            snprintf(what, sizeof what, "byte %zu of %zu ^ 0x%02x", k, n, masks[m]);
            expect_reject_bytes(b, n, want, what);
            b[k] ^= masks[m];
        }
    }
    /* The original still reads. */
    ckpt c;
    ckpt_init(&c);
    char err[256] = "";
    cr_assert_eq(ckpt_read(p, &c, err, sizeof err), 0, "%s", err);
    ckpt_free(&c);
    free(b);
}

Test(ckpt, wrong_magic)
{
    size_t n;
    unsigned char *b;
    write_sample("a.ckpt", &b, &n);
    b[0] = 'X';
    fix_crc(b, n);
    expect_reject_bytes(b, n, "not a recur checkpoint: expected magic \"RECURCKP\"", "magic");
    expect_reject_bytes((const unsigned char *)"hello, world\n", 13, "found \"hello, w\"", "text");
    expect_reject_bytes((const unsigned char *)"\x93NUMPY\x01\x00", 8, "found \"\\x93NUMPY\\x01\\x00\"",
                        "npy");
    expect_reject_bytes((const unsigned char *)"", 0, "truncated", "empty file");
    free(b);
}

Test(ckpt, wrong_version)
{
    size_t n;
    unsigned char *b;
    const char *p = write_sample("a.ckpt", &b, &n);
    /* The patching itself is sound: a recomputed CRC of unchanged bytes reads. */
    fix_crc(b, n);
    put_bytes(p, b, n);
    ckpt c;
    ckpt_init(&c);
    char err[256] = "";
    cr_assert_eq(ckpt_read(p, &c, err, sizeof err), 0, "%s", err);
    ckpt_free(&c);
    /* Only the version differs, so the version check must be what refuses it. */
    wr32(b + 8, 2);
    fix_crc(b, n);
    expect_reject_bytes(b, n, "version 2, this build reads version 1", "version 2");
    wr32(b + 8, 0);
    fix_crc(b, n);
    expect_reject_bytes(b, n, "version 0, this build reads version 1", "version 0");
    wr32(b + 8, 0xFFFFFFFFu);
    fix_crc(b, n);
    expect_reject_bytes(b, n, "version 4294967295, this build reads version 1", "version max");
    free(b);
}

Test(ckpt, trailing_garbage)
{
    size_t n;
    unsigned char *b;
    write_sample("a.ckpt", &b, &n);
    unsigned char *g = malloc(2 * n + 8);
    cr_assert_not_null(g);
    memcpy(g, b, n);
    g[n] = 0;
    expect_reject_bytes(g, n + 1, "1 bytes of unexpected data after the trailer", "1 byte");
    memcpy(g + n, "garbage!", 8);
    expect_reject_bytes(g, n + 8, "8 bytes of unexpected data after the trailer", "8 bytes");
    memcpy(g + n, b, n);   /* two checkpoints back to back */
    expect_reject_bytes(g, 2 * n, "unexpected data after the trailer", "twice");
    free(g);
    free(b);
}

Test(ckpt, huge_lengths_fail_cleanly)
{
    /* Outside ASan (which refuses huge allocations by itself), cap the address space so
     * that an allocation driven by a corrupted length would fail and show up as an
     * "out of memory" message, which expect_reject() refuses. */
    struct rlimit old;
    int capped = 0;
    if (!UNDER_ASAN && getrlimit(RLIMIT_AS, &old) == 0) {
        long pages = 0, page = sysconf(_SC_PAGESIZE);
        FILE *f = fopen("/proc/self/statm", "r");
        if (f) {
            if (fscanf(f, "%ld", &pages) != 1) pages = 0;
            fclose(f);
        }
        if (pages > 0 && page > 0) {
            struct rlimit lim = old;
            lim.rlim_cur = (rlim_t)pages * (rlim_t)page + ((rlim_t)256 << 20);
            if (old.rlim_cur == RLIM_INFINITY || lim.rlim_cur < old.rlim_cur)
                capped = setrlimit(RLIMIT_AS, &lim) == 0;
        }
    }
    size_t n;
    unsigned char *b;
    write_sample("a.ckpt", &b, &n);
    unsigned char *w = malloc(n);
    cr_assert_not_null(w);
    char what[64];
    int entries = (int)rd32(b + 12);
    for (int i = 0; i < entries; i++) {
        field_offs f = entry_at(b, n, i);
        static const uint64_t huge[] = { 1ull << 60, UINT64_MAX, 1ull << 32, 1ull << 31 };
        for (size_t h = 0; h < sizeof huge / sizeof huge[0]; h++) {
            memcpy(w, b, n);
            wr64(w + f.payload_len, huge[h]);
            fix_crc(w, n);
            snprintf(what, sizeof what, "entry %d payload length %llu", i,
                     (unsigned long long)huge[h]);
            expect_reject_bytes(w, n, "payload", what);
        }
        /* Dims that multiply past 2^64 (or just past the file). */
        memcpy(w, b, n);
        for (size_t d = f.dims; d < f.payload_len; d += 4) wr32(w + d, 0x7FFFFFFFu);
        fix_crc(w, n);
        snprintf(what, sizeof what, "entry %d huge dims", i);
        expect_reject_bytes(w, n, NULL, what);
        /* A name length past the limit. */
        memcpy(w, b, n);
        w[f.name_len] = 0xFF;
        w[f.name_len + 1] = 0xFF;
        fix_crc(w, n);
        snprintf(what, sizeof what, "entry %d name length 65535", i);
        expect_reject_bytes(w, n, "name length 65535", what);
    }
    /* An entry count far beyond what the file holds. */
    memcpy(w, b, n);
    wr32(w + 12, 0x7FFFFFFFu);
    fix_crc(w, n);
    expect_reject_bytes(w, n, NULL, "count 2^31-1");
    wr32(w + 12, 0xFFFFFFFFu);
    fix_crc(w, n);
    expect_reject_bytes(w, n, "entry count 4294967295", "count 2^32-1");
    /* A trailer whose length field is huge. */
    memcpy(w, b, n);
    wr64(w + n - 20, 1ull << 60);
    expect_reject_bytes(w, n, "the trailer", "trailer length");
    if (capped) setrlimit(RLIMIT_AS, &old);
    free(w);
    free(b);
}

Test(ckpt, structure_errors_behind_a_valid_crc)
{
    size_t n;
    unsigned char *b;
    write_sample("a.ckpt", &b, &n);
    unsigned char *w = malloc(n);
    cr_assert_not_null(w);
    field_offs f0 = entry_at(b, n, 0), f1 = entry_at(b, n, 1), ft = entry_at(b, n, 6);
    cr_assert_eq(b[ft.type], CKPT_TEXT);
#define PATCH(stmt, want, what)        \
    do {                               \
        memcpy(w, b, n);               \
        stmt;                          \
        fix_crc(w, n);                 \
        expect_reject_bytes(w, n, want, what); \
    } while (0)
    PATCH(w[f0.name + 2] = 0, "contains a NUL byte", "NUL in a name");
    PATCH(w[f0.name_len] = 0, "name length 0", "empty name");
    PATCH(w[f0.name_len] = 128, "name length 128", "name length 128");
    PATCH(w[f0.type] = 0, "type 0", "type 0");
    PATCH(w[f0.type] = 5, "type 5", "type 5");
    PATCH(w[f0.ndim] = 0, "ndim 0", "ndim 0");
    PATCH(w[f0.ndim] = 5, "ndim 5", "ndim 5");
    PATCH(w[ft.ndim] = 2, "ndim 2", "TEXT ndim 2");
    PATCH(wr32(w + f0.dims, 0x80000000u), "dim 0 is 2147483648", "dim > INT_MAX");
    /* "l0.W_xh" is F32 [3, 4]: 48 bytes. */
    PATCH(wr64(w + f0.payload_len, 44), "payload length 44", "short payload length");
    PATCH(wr64(w + f0.payload_len, 44), "expected 48 for F32 [3, 4]", "expected vs found");
    PATCH(wr32(w + f0.dims, 4), "expected 64", "dims disagree with the payload");
    /* Names made equal: "l0.W_xh" and "special" (7 bytes each). */
    PATCH(memcpy(w + f1.name, "l0.W_xh", 7), "entries 0 and 1 have the same name \"l0.W_xh\"",
          "duplicate names");
    PATCH(wr32(w + 12, rd32(b + 12) + 1), NULL, "one entry too many");
    PATCH(wr32(w + 12, rd32(b + 12) - 1), "end marker", "one entry too few");
    PATCH(wr32(w + 12, 0), "end marker", "no entries");
#undef PATCH
    /* The trailer is not covered by the CRC; its fields are checked one by one. */
    memcpy(w, b, n);
    wr64(w + n - 20, rd64(b + n - 20) - 1);
    expect_reject_bytes(w, n, "records", "trailer length");
    memcpy(w, b, n);
    w[n - 1] = 'X';
    expect_reject_bytes(w, n, "end marker \"RECUREND\"", "end magic");
    memcpy(w, b, n);
    w[n - 12] ^= 1;
    expect_reject_bytes(w, n, "checksum mismatch", "stored CRC");
    free(w);
    free(b);
}

Test(ckpt, missing_file_and_directory)
{
    expect_reject(tpath("does-not-exist.ckpt"), "No such file", "missing");
    expect_reject(tmpdir, "directory", "directory");
    cr_assert_eq(mkdir(tpath("sub"), 0700), 0);
    expect_reject(tpath("sub"), "directory", "subdirectory");
    ckpt c;
    ckpt_init(&c);
    char err[256];
    cr_assert_eq(ckpt_read(NULL, &c, err, sizeof err), -1);
    cr_assert_eq(ckpt_read("", &c, err, sizeof err), -1);
    cr_assert_eq(ckpt_read(tpath("x"), NULL, err, sizeof err), -1);
    cr_assert_eq(ckpt_read(tpath("x"), &c, NULL, 0), -1);
}

Test(ckpt, read_into_a_non_empty_ckpt)
{
    const char *p = write_sample("a.ckpt", NULL, NULL);
    ckpt c;
    ckpt_init(&c);
    char err[256] = "";
    cr_assert_eq(ckpt_add_text(&c, "mine", "keep", err, sizeof err), 0);
    cr_assert_eq(ckpt_read(p, &c, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "not empty"), "%s", err);
    cr_assert_eq(c.n, 1);
    cr_assert_str_eq((const char *)ckpt_find(&c, "mine")->data, "keep");
    ckpt_free(&c);
    /* A freed list reads again. */
    cr_assert_eq(ckpt_read(p, &c, err, sizeof err), 0, "%s", err);
    cr_assert_eq(c.n, 11);
    ckpt_free(&c);
}

/* ---- writing ----------------------------------------------------------------- */

Test(ckpt, write_into_missing_directory)
{
    ckpt c;
    ckpt_init(&c);
    build_sample(&c);
    char err[512] = "";
    const char *p = tpath("no/such/dir/a.ckpt");
    cr_assert_eq(ckpt_write(p, &c, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, p), "%s", err);
    cr_assert_not_null(strstr(err, "No such file"), "%s", err);
    char names[256];
    cr_assert_eq(list_dir(names, sizeof names), 0, "%s", names);
    ckpt_free(&c);
}

Test(ckpt, no_temporary_files_left)
{
    ckpt c;
    ckpt_init(&c);
    build_sample(&c);
    char err[256] = "";
    const char *p = tpath("a.ckpt");
    for (int i = 0; i < 5; i++) cr_assert_eq(ckpt_write(p, &c, err, sizeof err), 0, "%s", err);
    char names[256];
    cr_assert_eq(list_dir(names, sizeof names), 1, "%s", names);
    cr_assert_str_eq(names, "a.ckpt");
    /* Renaming over a non-empty directory fails: the temporary file goes away. */
    cr_assert_eq(mkdir(tpath("d"), 0700), 0);
    put_bytes(tpath("d/x"), "x", 1);
    cr_assert_eq(ckpt_write(tpath("d"), &c, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "cannot rename"), "%s", err);
    cr_assert_eq(list_dir(names, sizeof names), 2, "%s", names);
    cr_assert_str_eq(names, "a.ckpt d");
    ckpt_free(&c);
}

/* ckpt_remove_stale_temps: "<path>.tmp.<pid>" of a dead process and of this one go; a
 * live process's file and every other name stay; a missing folder is nothing to do. */
Test(ckpt, stale_temporary_files_are_removed)
{
    pid_t dead = fork();   /* a pid no process has any more */
    cr_assert_geq(dead, 0);
    if (dead == 0) _exit(0);
    cr_assert_eq(waitpid(dead, NULL, 0), dead);
    pid_t live = fork();   /* a live process other than this one */
    cr_assert_geq(live, 0);
    if (live == 0) {
        pause();
        _exit(0);
    }
    char gone[2][64], kept[7][64], path[512];
#define IN_TMP(name) (snprintf(path, sizeof path, "%s/%.64s", tmpdir, (name)), path)
    snprintf(gone[0], 64, "a.ckpt.tmp.%ld", (long)dead);
    snprintf(gone[1], 64, "a.ckpt.tmp.%ld", (long)getpid());
    snprintf(kept[0], 64, "a.ckpt.tmp.%ld", (long)live);
    snprintf(kept[1], 64, "a.ckpt.tmp.%ldx", (long)dead);
    snprintf(kept[2], 64, "a.ckpt.tmp.0%ld", (long)dead);
    snprintf(kept[3], 64, "b.ckpt.tmp.%ld", (long)dead);
    snprintf(kept[4], 64, "a.ckpt.tmp.-%ld", (long)dead);
    snprintf(kept[5], 64, "xa.ckpt.tmp.%ld", (long)dead);
    snprintf(kept[6], 64, "a.ckpt.tmp.");
    for (int i = 0; i < 2; i++) put_bytes(IN_TMP(gone[i]), "x", 1);
    for (int i = 0; i < 7; i++) put_bytes(IN_TMP(kept[i]), "x", 1);
    char err[256] = "";
    int n = ckpt_remove_stale_temps(tpath("a.ckpt"), err, sizeof err);
    int again = ckpt_remove_stale_temps(tpath("a.ckpt"), err, sizeof err);
    kill(live, SIGKILL);
    waitpid(live, NULL, 0);
    cr_assert_eq(n, 2, "%s", err);
    cr_assert_eq(again, 0, "%s", err);
    for (int i = 0; i < 2; i++) cr_assert_neq(access(IN_TMP(gone[i]), F_OK), 0, "%s is still there", gone[i]);
    for (int i = 0; i < 7; i++) cr_assert_eq(access(IN_TMP(kept[i]), F_OK), 0, "%s was removed", kept[i]);
    cr_assert_eq(ckpt_remove_stale_temps(tpath("no/such/a.ckpt"), err, sizeof err), 0, "%s", err);
#undef IN_TMP
}

Test(ckpt, failed_write_keeps_the_old_file)
{
    /* A write that fails midway (the file size limit, EFBIG) leaves the previous file
     * as it was and removes its temporary file. */
    ckpt small, big, r;
    ckpt_init(&small);
    ckpt_init(&big);
    ckpt_init(&r);
    char err[512] = "";
    cr_assert_eq(ckpt_add_text(&small, "v", "old", err, sizeof err), 0);
    int n = 1 << 16;
    float *f = calloc((size_t)n, sizeof *f);
    cr_assert_not_null(f);
    cr_assert_eq(ckpt_add(&big, "w", CKPT_F32, 1, &n, f, err, sizeof err), 0);
    free(f);
    const char *p = tpath("a.ckpt");
    cr_assert_eq(ckpt_write(p, &small, err, sizeof err), 0, "%s", err);

    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = ckpt_write(p, &big, err, sizeof err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    cr_assert_eq(rc, -1);
    cr_assert_not_null(strstr(err, "cannot write"), "%s", err);
    cr_assert_not_null(strstr(err, ".tmp."), "%s", err);

    char names[256];
    cr_assert_eq(list_dir(names, sizeof names), 1, "%s", names);
    cr_assert_eq(ckpt_read(p, &r, err, sizeof err), 0, "%s", err);
    assert_same(&small, &r);
    ckpt_free(&small);
    ckpt_free(&big);
    ckpt_free(&r);
}

/* ---- crash safety ------------------------------------------------------------- */

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

Test(ckpt, killed_writer_leaves_a_complete_file, .timeout = 60)
{
    /* 50 MB of floats; 16 MB under ASan, whose writes are several times slower, so that
     * a write lasts about as long (~100 ms) and the kills still land inside writes. */
    enum { BIG = UNDER_ASAN ? 16 << 20 : 50 << 20 };
    int count = BIG / 4;
    float *f = malloc((size_t)BIG);
    cr_assert_not_null(f);
    for (int i = 0; i < count; i++) f[i] = (float)(i % 100003) * 0.5f;
    ckpt c;
    ckpt_init(&c);
    char err[512] = "";
    cr_assert_eq(ckpt_add_u64(&c, "gen", (uint64_t[]){ 0 }, 1, err, sizeof err), 0);
    cr_assert_eq(ckpt_add(&c, "big", CKPT_F32, 1, &count, f, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ckpt_add_text(&c, "tail", "end", err, sizeof err), 0);
    const char *p = tpath("live.ckpt");
    static const long delays[] = { 0, 45, 120, 200 };
    for (size_t round = 0; round < sizeof delays / sizeof delays[0]; round++) {
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            /* The writer: generation after generation, one byte on the pipe after each. */
            close(fds[0]);
            uint64_t *gen = c.e[0].data;
            char e2[256];
            for (;;) {
                ++*gen;
                if (ckpt_write(p, &c, e2, sizeof e2) != 0) _exit(2);
                if (write(fds[1], "w", 1) != 1) _exit(3);
            }
        }
        close(fds[1]);
        /* Wait for a first complete version from this writer, then let it run on. */
        struct pollfd pf = { fds[0], POLLIN, 0 };
        int ready = poll(&pf, 1, 30000);
        char ch;
        long done = 0;
        if (ready == 1 && read(fds[0], &ch, 1) == 1) {
            done = 1;
            sleep_ms(delays[round]);
        }
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        while (read(fds[0], &ch, 1) == 1) done++;
        close(fds[0]);
        cr_assert_eq(ready, 1, "round %zu: the writer produced nothing", round);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                  "round %zu: the writer stopped by itself (status %d)", round, st);

        ckpt r;
        ckpt_init(&r);
        cr_assert_eq(ckpt_read(p, &r, err, sizeof err), 0, "round %zu: %s", round, err);
        cr_assert_eq(r.n, 3);
        uint64_t g = *(const uint64_t *)ckpt_find(&r, "gen")->data;
        /* The last generation reported, or the next one when the kill fell between the
         * rename and the report. */
        cr_assert(g == (uint64_t)done || g == (uint64_t)done + 1,
                  "round %zu: generation %llu after %ld reported writes", round,
                  (unsigned long long)g, done);
        const ckpt_entry *e = ckpt_find(&r, "big");
        cr_assert_eq(ckpt_count(e), (size_t)count);
        cr_assert_eq(memcmp(e->data, f, (size_t)BIG), 0, "round %zu: data differ", round);
        cr_assert_str_eq((const char *)ckpt_find(&r, "tail")->data, "end");
        ckpt_free(&r);
    }
    /* Only killed writers leave temporary files behind, one at most each. */
    char names[1024];
    int n = list_dir(names, sizeof names);
    cr_assert(n >= 1 && n <= 1 + (int)(sizeof delays / sizeof delays[0]), "%s", names);
    ckpt_free(&c);
    free(f);
}
