/* Tests of cells/npy.c: round trips, files written by NumPy (tests/data/, made with
 * numpy 1.24 np.save / np.lib.format.write_array), and malformed files, each of which
 * must give -1, a message naming the file and the fault, and untouched outputs.
 *
 * The fixtures are found through $RECUR_TEST_DATA, else -DNPY_TEST_DATA_DIR="...",
 * else the data/ directory next to this source file (__FILE__, which is relative to
 * the build directory under meson, where both compiler and tests run). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "npy.h"

/* ---- fixtures and helpers -------------------------------------------------- */

static char tmpdir[256];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/recur_npy_XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp failed");
}

static void teardown(void)
{
    DIR *d = opendir(tmpdir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        if (unlink(p) != 0) rmdir(p);
    }
    closedir(d);
    rmdir(tmpdir);
}

TestSuite(npy, .init = setup, .fini = teardown);

/* A path in the test's temporary directory (a static buffer per slot). */
static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int slot;
    char *b = buf[slot++ % 4];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

/* A path of a committed fixture under tests/data/. */
static const char *dpath(const char *name)
{
    static char buf[1024];
    const char *env = getenv("RECUR_TEST_DATA");
#ifdef NPY_TEST_DATA_DIR
    const char *dir = env && *env ? env : NPY_TEST_DATA_DIR;
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
#else
    if (env && *env) {
        snprintf(buf, sizeof buf, "%s/%s", env, name);
    } else {
        const char *f = __FILE__, *slash = strrchr(f, '/');
        int n = slash ? (int)(slash - f) + 1 : 0;
        snprintf(buf, sizeof buf, "%.*sdata/%s", n, f, name);
    }
#endif
    cr_assert_eq(access(buf, R_OK), 0, "fixture %s not found (set RECUR_TEST_DATA)", buf);
    return buf;
}

static void put_bytes(const char *path, const void *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "cannot create %s", path);
    cr_assert_eq(fwrite(buf, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* Reads a whole file into a malloc'd buffer (*n bytes). */
static unsigned char *get_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    unsigned char *buf = malloc(1 << 16);
    cr_assert_not_null(buf);
    *n = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

static void copy_file(const char *from, const char *to, size_t keep, const void *extra,
                      size_t nextra)
{
    size_t n;
    unsigned char *b = get_bytes(from, &n);
    if (keep > n) keep = n;
    b = realloc(b, keep + nextra + 1);
    cr_assert_not_null(b);
    if (nextra) memcpy(b + keep, extra, nextra);
    put_bytes(to, b, keep + nextra);
    free(b);
}

static long long file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return (long long)st.st_size;
}

/* Writes an .npy file by hand: magic, version major.minor, the dict padded with spaces
 * and a '\n' to a multiple of align (align 0: no padding and no newline), then
 * data_bytes bytes of float32 values 0, 1, 2, ... (little-endian). */
static void craft(const char *path, int major, int minor, const char *dict, size_t align,
                  size_t data_bytes)
{
    size_t lenbytes = major == 1 ? 2 : 4, pre = 8 + lenbytes, dl = strlen(dict);
    size_t total = pre + dl;
    if (align) {
        total += 1;
        total += (align - total % align) % align;
    }
    size_t hlen = total - pre;
    unsigned char *b = calloc(1, total + data_bytes + 4);
    cr_assert_not_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = (unsigned char)minor;
    for (size_t i = 0; i < lenbytes; i++) b[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(b + pre, dict, dl);
    if (align) {
        memset(b + pre + dl, ' ', total - pre - dl);
        b[total - 1] = '\n';
    }
    for (size_t i = 0; i < data_bytes; i++) {
        float v = (float)(i / 4);
        uint32_t u;
        memcpy(&u, &v, 4);
        b[total + i] = (unsigned char)(u >> (8 * (i % 4)));
    }
    put_bytes(path, b, total + data_bytes);
    free(b);
}

#define DICT(shape) "{'descr': '<f4', 'fortran_order': False, 'shape': " shape ", }"

/* npy_read_header must fail with a message naming path and containing word, leaving
 * its outputs alone; npy_read_f32 must fail too, leaving data alone. */
static void expect_error(const char *path, size_t count, const char *word)
{
    char err[512];
    memset(err, 0, sizeof err);
    int nd = -7, sh[4] = { -7, -7, -7, -7 };
    cr_assert_eq(npy_read_header(path, &nd, sh, err, sizeof err), -1,
                 "npy_read_header accepted %s", path);
    cr_assert(err[0], "empty message for %s", path);
    cr_assert_not_null(strstr(err, word), "message \"%s\" lacks \"%s\"", err, word);
    cr_assert_not_null(strstr(err, path), "message \"%s\" does not name the file", err);
    cr_assert_eq(nd, -7);
    for (int d = 0; d < 4; d++) cr_assert_eq(sh[d], -7);

    float data[64];
    for (int i = 0; i < 64; i++) data[i] = 42.0f;
    memset(err, 0, sizeof err);
    cr_assert_eq(npy_read_f32(path, data, count, err, sizeof err), -1,
                 "npy_read_f32 accepted %s", path);
    cr_assert(err[0]);
    cr_assert_not_null(strstr(err, word), "message \"%s\" lacks \"%s\"", err, word);
    for (int i = 0; i < 64; i++) cr_assert_eq(data[i], 42.0f, "data[%d] was touched", i);
}

/* Writes, checks the preamble, reads back header and data bit for bit. */
static void round_trip(int ndim, const int *shape)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    cr_assert(a && b);
    for (size_t i = 0; i < n; i++) a[i] = (float)i * 0.37f - 3.0f;
    if (n > 4) {
        a[0] = -0.0f;
        a[1] = INFINITY;
        a[2] = NAN;
        a[3] = 1e-45f;   /* denormal */
    }
    const char *p = tpath("rt.npy");
    char err[256] = "";
    cr_assert_eq(npy_write_f32(p, ndim, shape, a, err, sizeof err), 0, "%s", err);

    long long sz = file_size(p);
    cr_assert_gt(sz, 0);
    cr_assert_eq(access(tpath("rt.npy.tmp"), F_OK), -1, "the .tmp file was left behind");
    size_t len;
    unsigned char *raw = get_bytes(p, &len);
    cr_assert_eq(memcmp(raw, "\x93NUMPY\x01\x00", 8), 0);
    size_t pre = 10 + (size_t)(raw[8] | raw[9] << 8);
    cr_assert_eq(pre % 64, 0, "preamble %zu not 64-aligned", pre);
    cr_assert_eq(raw[pre - 1], '\n');
    cr_assert_eq((size_t)sz, pre + 4 * n);
    if (n > 4) {   /* -0.0f little-endian: 00 00 00 80 */
        cr_assert_eq(raw[pre], (unsigned char)0x00);
        cr_assert_eq(raw[pre + 3], (unsigned char)0x80);
    }
    free(raw);

    int nd = 0, sh[4] = { -1, -1, -1, -1 };
    cr_assert_eq(npy_read_header(p, &nd, sh, err, sizeof err), 0, "%s", err);
    cr_assert_eq(nd, ndim);
    for (int d = 0; d < 4; d++) cr_assert_eq(sh[d], d < ndim ? shape[d] : 0);
    memset(b, 0xab, n * sizeof *b);
    cr_assert_eq(npy_read_f32(p, b, n, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(a, b, n * sizeof *a), 0, "data differ after a round trip");
    free(a);
    free(b);
}

/* ---- round trips -------------------------------------------------------------- */

Test(npy, round_trip_1d) { round_trip(1, (int[]){ 5 }); round_trip(1, (int[]){ 1 }); }
Test(npy, round_trip_2d) { round_trip(2, (int[]){ 3, 4 }); }
Test(npy, round_trip_3d) { round_trip(3, (int[]){ 2, 3, 5 }); }
Test(npy, round_trip_4d) { round_trip(4, (int[]){ 2, 1, 3, 7 }); }
Test(npy, round_trip_large) { round_trip(2, (int[]){ 300, 70 }); }   /* several chunks */
Test(npy, round_trip_wide_dims) { round_trip(4, (int[]){ 1, 1, 1, 100003 }); }

Test(npy, write_replaces_existing_file)
{
    const char *p = tpath("w.npy");
    put_bytes(p, "old contents", 12);
    float a[3] = { 1, 2, 3 }, b[3];
    char err[256];
    cr_assert_eq(npy_write_f32(p, 1, (int[]){ 3 }, a, err, sizeof err), 0, "%s", err);
    cr_assert_eq(npy_read_f32(p, b, 3, err, sizeof err), 0, "%s", err);
    cr_assert_eq(memcmp(a, b, sizeof a), 0);
}

Test(npy, written_header_text)
{
    const char *p = tpath("h.npy");
    float a[12] = { 0 };
    char err[256];
    cr_assert_eq(npy_write_f32(p, 2, (int[]){ 3, 4 }, a, err, sizeof err), 0, "%s", err);
    size_t n;
    unsigned char *raw = get_bytes(p, &n);
    const char *want = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    cr_assert_eq(memcmp(raw + 10, want, strlen(want)), 0);
    free(raw);
    cr_assert_eq(npy_write_f32(p, 1, (int[]){ 5 }, a, err, sizeof err), 0, "%s", err);
    raw = get_bytes(p, &n);
    want = "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }";
    cr_assert_eq(memcmp(raw + 10, want, strlen(want)), 0);
    free(raw);
}

/* ---- files written by NumPy --------------------------------------------------- */

Test(npy, numpy_2d)
{
    const char *p = dpath("f32_3x4.npy");
    int nd, sh[4];
    float a[12];
    char err[256];
    cr_assert_eq(npy_read_header(p, &nd, sh, err, sizeof err), 0, "%s", err);
    cr_assert_eq(nd, 2);
    cr_assert(sh[0] == 3 && sh[1] == 4 && sh[2] == 0 && sh[3] == 0);
    cr_assert_eq(npy_read_f32(p, a, 12, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 12; i++) cr_assert_eq(a[i], (float)i);
}

Test(npy, numpy_vector)
{
    const char *p = dpath("f32_5.npy");
    int nd, sh[4];
    float a[5];
    char err[256];
    cr_assert_eq(npy_read_header(p, &nd, sh, err, sizeof err), 0, "%s", err);
    cr_assert(nd == 1 && sh[0] == 5);
    cr_assert_eq(npy_read_f32(p, a, 5, err, sizeof err), 0, "%s", err);
    const float want[5] = { 1.5f, -2.25f, 0.0f, 3e38f, -1e-38f };
    cr_assert_eq(memcmp(a, want, sizeof a), 0);
}

Test(npy, numpy_scalar_reads_as_vector_of_one)
{
    const char *p = dpath("f32_scalar.npy");
    int nd, sh[4];
    float a[1];
    char err[256];
    cr_assert_eq(npy_read_header(p, &nd, sh, err, sizeof err), 0, "%s", err);
    cr_assert(nd == 1 && sh[0] == 1);
    cr_assert_eq(npy_read_f32(p, a, 1, err, sizeof err), 0, "%s", err);
    cr_assert_eq(a[0], 7.5f);
}

Test(npy, numpy_version_2)
{
    const char *p = dpath("f32_v2_2x3.npy");
    int nd, sh[4];
    float a[6];
    char err[256];
    cr_assert_eq(npy_read_header(p, &nd, sh, err, sizeof err), 0, "%s", err);
    cr_assert(nd == 2 && sh[0] == 2 && sh[1] == 3);
    cr_assert_eq(npy_read_f32(p, a, 6, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 6; i++) cr_assert_eq(a[i], 0.5f * (float)i);
}

Test(npy, numpy_float64_rejected) { expect_error(dpath("f64_3x4.npy"), 12, "dtype"); }
Test(npy, numpy_fortran_order_rejected) { expect_error(dpath("f32_fortran_2x3.npy"), 6, "fortran"); }

/* ---- tolerant parsing ------------------------------------------------------- */

static void expect_shape(const char *dict, int major, size_t align, int ndim, const int *shape)
{
    const char *p = tpath("ok.npy");
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
    craft(p, major, 0, dict, align, 4 * n);
    int nd = 0, sh[4];
    char err[256] = "";
    cr_assert_eq(npy_read_header(p, &nd, sh, err, sizeof err), 0, "%s: %s", dict, err);
    cr_assert_eq(nd, ndim, "%s", dict);
    for (int d = 0; d < ndim; d++) cr_assert_eq(sh[d], shape[d], "%s", dict);
    float a[64];
    cr_assert_eq(npy_read_f32(p, a, n, err, sizeof err), 0, "%s: %s", dict, err);
    for (size_t i = 0; i < n; i++) cr_assert_eq(a[i], (float)i);
}

Test(npy, tolerant_header)
{
    expect_shape(DICT("(3, 4)"), 1, 64, 2, (int[]){ 3, 4 });
    expect_shape(DICT("(3, 4)"), 1, 16, 2, (int[]){ 3, 4 });        /* older NumPy */
    expect_shape(DICT("(3, 4)"), 3, 64, 2, (int[]){ 3, 4 });        /* version 3.0 */
    expect_shape(DICT("(5,)"), 1, 64, 1, (int[]){ 5 });
    expect_shape(DICT("()"), 1, 64, 1, (int[]){ 1 });
    expect_shape(DICT("(2,3,)"), 1, 64, 2, (int[]){ 2, 3 });
    expect_shape(DICT("( 2 , 1 , 2 , 3 )"), 1, 64, 4, (int[]){ 2, 1, 2, 3 });
    expect_shape(DICT("(3L, 4L)"), 1, 64, 2, (int[]){ 3, 4 });      /* Python 2 NumPy */
    expect_shape("{'shape': (2, 2), 'fortran_order': False, 'descr': '<f4'}", 1, 64,
                 2, (int[]){ 2, 2 });
    expect_shape("{\"descr\":\"<f4\",\"fortran_order\":False,\"shape\":(4,)}", 1, 64,
                 1, (int[]){ 4 });
    expect_shape("  {  'descr' :  '<f4' ,\t'fortran_order' : False , 'shape' : ( 6 , ) , }  ",
                 1, 64, 1, (int[]){ 6 });
}

/* ---- error cases ---------------------------------------------------------------- */

Test(npy, missing_file) { expect_error(tpath("nope.npy"), 1, "open"); }

Test(npy, empty_file)
{
    put_bytes(tpath("e.npy"), "", 0);
    expect_error(tpath("e.npy"), 1, "empty");
}

Test(npy, bad_magic)
{
    static const char zip[] = "PK\x03\x04 this is a zip file, not npy";
    put_bytes(tpath("m.npy"), zip, sizeof zip - 1);
    expect_error(tpath("m.npy"), 1, "magic");
    put_bytes(tpath("m2.npy"), "\x93NUM", 4);
    expect_error(tpath("m2.npy"), 1, "magic");
    craft(tpath("m3.npy"), 1, 0, DICT("(3, 4)"), 64, 48);
    size_t n;
    unsigned char *b = get_bytes(tpath("m3.npy"), &n);
    memcpy(b, "\x93numpy", 6);   /* the right length, the wrong case */
    put_bytes(tpath("m4.npy"), b, n);
    free(b);
    expect_error(tpath("m4.npy"), 12, "magic");
}

Test(npy, directory_rejected) { expect_error(tmpdir, 1, "regular"); }

Test(npy, truncated_header)
{
    const char *src = dpath("f32_3x4.npy");
    const size_t cuts[] = { 7, 9, 40, 127 };
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        copy_file(src, tpath("th.npy"), cuts[i], NULL, 0);
        expect_error(tpath("th.npy"), 12, "truncated");
    }
}

Test(npy, truncated_data)
{
    copy_file(dpath("f32_3x4.npy"), tpath("td.npy"), 176 - 4, NULL, 0);
    expect_error(tpath("td.npy"), 12, "truncated");
    copy_file(dpath("f32_3x4.npy"), tpath("td2.npy"), 128, NULL, 0);   /* no data at all */
    expect_error(tpath("td2.npy"), 12, "truncated");
}

Test(npy, trailing_garbage)
{
    copy_file(dpath("f32_3x4.npy"), tpath("tg.npy"), 1000, "\0\0\0\0", 4);
    expect_error(tpath("tg.npy"), 12, "trailing");
    copy_file(dpath("f32_3x4.npy"), tpath("tg2.npy"), 1000, "x", 1);
    expect_error(tpath("tg2.npy"), 12, "trailing");
}

Test(npy, header_length_past_end)
{
    size_t n;
    unsigned char *b = get_bytes(dpath("f32_3x4.npy"), &n);
    b[8] = 0xff;
    b[9] = 0xff;
    put_bytes(tpath("hl.npy"), b, n);
    expect_error(tpath("hl.npy"), 12, "past the end");
    /* a version 2 length field of 4 GiB - 1 */
    craft(tpath("hl2.npy"), 2, 0, DICT("(3, 4)"), 64, 48);
    free(b);
    b = get_bytes(tpath("hl2.npy"), &n);
    memset(b + 8, 0xff, 4);
    put_bytes(tpath("hl2.npy"), b, n);
    expect_error(tpath("hl2.npy"), 12, "past the end");
    free(b);
}

Test(npy, float64_dtype)
{
    craft(tpath("d.npy"), 1, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
          64, 24);
    expect_error(tpath("d.npy"), 3, "dtype");
}

Test(npy, other_dtypes)
{
    static const char *dicts[] = {
        "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }",
        "{'descr': '|u1', 'fortran_order': False, 'shape': (12,), }",
        "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }",
    };
    for (size_t i = 0; i < sizeof dicts / sizeof *dicts; i++) {
        craft(tpath("dt.npy"), 1, 0, dicts[i], 64, 12);
        expect_error(tpath("dt.npy"), 3, "dtype");
    }
}

Test(npy, fortran_order_true)
{
    craft(tpath("f.npy"), 1, 0, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
          64, 24);
    expect_error(tpath("f.npy"), 6, "fortran");
}

Test(npy, rank_5)
{
    craft(tpath("r.npy"), 1, 0, DICT("(1, 2, 1, 2, 2)"), 64, 32);
    expect_error(tpath("r.npy"), 8, "rank");
    craft(tpath("r2.npy"), 1, 0,
          DICT("(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, "
               "1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, "
               "1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)"), 64, 4);
    expect_error(tpath("r2.npy"), 1, "rank");
}

Test(npy, unsupported_version)
{
    craft(tpath("v.npy"), 4, 0, DICT("(3,)"), 64, 12);
    expect_error(tpath("v.npy"), 3, "version");
    craft(tpath("v2.npy"), 1, 1, DICT("(3,)"), 64, 12);
    expect_error(tpath("v2.npy"), 3, "version");
    craft(tpath("v3.npy"), 0, 0, DICT("(3,)"), 64, 12);
    expect_error(tpath("v3.npy"), 3, "version");
}

Test(npy, misaligned_preamble)
{
    craft(tpath("a.npy"), 1, 0, DICT("(3,)"), 0, 12);   /* no padding at all */
    expect_error(tpath("a.npy"), 3, "multiple of 16");
}

Test(npy, zero_length_axis)
{
    craft(tpath("z.npy"), 1, 0, DICT("(3, 0)"), 64, 0);
    expect_error(tpath("z.npy"), 0, "length 0");
}

Test(npy, malformed_headers)
{
    static const char *dicts[] = {
        "",
        "   ",
        "{",
        "}",
        "not a dict at all",
        "{'descr': '<f4'",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,)",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,) }}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), } x",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': 3}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': [3]}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-3,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3.0,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3 4)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2147483648,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 65536, 65536, 65536)}",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (3,)}",
        "{'descr': '<f4', 'fortran_order': false, 'shape': (3,)}",
        "{'descr': '<f4', 'fortran_order': False}",
        "{'descr': '<f4', 'shape': (3,)}",
        "{'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), 'extra': 1}",
        "{'descr: '<f4', 'fortran_order': False, 'shape': (3,)}",
        "{'descr' '<f4', 'fortran_order': False, 'shape': (3,)}",
        "{'descr': <f4, 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<f4\xff', 'fortran_order': False, 'shape': (3,)}",
        "{'descraaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa': '<f4'}",
        "{'descr': '<f4', 'fortran_order': Faaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaalse}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\x01",
    };
    for (size_t i = 0; i < sizeof dicts / sizeof *dicts; i++) {
        craft(tpath("mh.npy"), 1, 0, dicts[i], 64, 12);
        char err[512] = "";
        int nd = -7, sh[4] = { -7, -7, -7, -7 };
        cr_assert_eq(npy_read_header(tpath("mh.npy"), &nd, sh, err, sizeof err), -1,
                     "accepted header %zu: %s", i, dicts[i]);
        cr_assert(err[0]);
        cr_assert(strstr(err, "malformed") || strstr(err, "dtype") || strstr(err, "rank"),
                  "header %zu: message \"%s\"", i, err);
        cr_assert_eq(nd, -7);
        cr_assert_eq(sh[0], -7);
    }
    /* a header with a NUL byte inside */
    craft(tpath("nul.npy"), 1, 0, DICT("(3,)"), 64, 12);
    size_t n;
    unsigned char *b = get_bytes(tpath("nul.npy"), &n);
    b[12] = 0;
    put_bytes(tpath("nul.npy"), b, n);
    free(b);
    expect_error(tpath("nul.npy"), 3, "malformed");
}

/* Every prefix of a good file and every single-byte corruption of its header must give
 * 0 or -1 (with a message), never a crash or an out-of-bounds read (run under ASan). */
Test(npy, fuzz_prefixes_and_bytes)
{
    size_t n;
    unsigned char *good = get_bytes(dpath("f32_3x4.npy"), &n);
    char err[256];
    int nd, sh[4];
    float a[12];
    for (size_t k = 0; k < n; k++) {
        put_bytes(tpath("fz.npy"), good, k);
        err[0] = 0;
        cr_assert_eq(npy_read_header(tpath("fz.npy"), &nd, sh, err, sizeof err), -1);
        cr_assert(err[0]);
    }
    static const unsigned char vals[] = { 0, ' ', '\'', '"', '(', ')', ',', '}', '{', ':',
                                          '9', 'L', 0x80, 0xff };
    unsigned char *b = malloc(n);
    cr_assert_not_null(b);
    for (size_t k = 0; k < 128; k++)
        for (size_t v = 0; v < sizeof vals; v++) {
            memcpy(b, good, n);
            b[k] = vals[v];
            put_bytes(tpath("fz.npy"), b, n);
            err[0] = 0;
            int rc = npy_read_header(tpath("fz.npy"), &nd, sh, err, sizeof err);
            cr_assert(rc == 0 || (rc == -1 && err[0]));
            if (rc == 0 && nd >= 1 && nd <= 4) {
                size_t c = 1;
                for (int d = 0; d < nd; d++) c *= (size_t)sh[d];
                if (c <= 12) cr_assert_eq(npy_read_f32(tpath("fz.npy"), a, c, err, sizeof err), 0);
            }
        }
    free(b);
    free(good);
}

Test(npy, count_mismatch)
{
    float a[64];
    for (int i = 0; i < 64; i++) a[i] = 42.0f;
    char err[256] = "";
    cr_assert_eq(npy_read_f32(dpath("f32_3x4.npy"), a, 11, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "count"), "%s", err);
    cr_assert_eq(npy_read_f32(dpath("f32_3x4.npy"), a, 13, err, sizeof err), -1);
    cr_assert_eq(npy_read_f32(dpath("f32_3x4.npy"), NULL, 12, err, sizeof err), -1);
    for (int i = 0; i < 64; i++) cr_assert_eq(a[i], 42.0f);
}

Test(npy, null_and_small_error_buffers)
{
    const char *p = tpath("nope.npy");
    int nd, sh[4];
    float a[1];
    cr_assert_eq(npy_read_header(p, &nd, sh, NULL, 0), -1);
    cr_assert_eq(npy_read_f32(p, a, 1, NULL, 0), -1);
    cr_assert_eq(npy_write_f32(NULL, 1, (int[]){ 1 }, a, NULL, 0), -1);
    char small[8];
    memset(small, 'z', sizeof small);
    cr_assert_eq(npy_read_header(p, &nd, sh, small, sizeof small), -1);
    cr_assert_eq(small[7], 0, "message not terminated inside the buffer");
    char one[1] = { 'z' };
    cr_assert_eq(npy_read_header(p, &nd, sh, one, 1), -1);
    cr_assert_eq(one[0], 0);
    char err[64];
    cr_assert_eq(npy_read_header(NULL, &nd, sh, err, sizeof err), -1);
    cr_assert(err[0]);
    cr_assert_eq(npy_read_header(dpath("f32_3x4.npy"), NULL, sh, err, sizeof err), -1);
    cr_assert_eq(npy_read_header(dpath("f32_3x4.npy"), &nd, NULL, err, sizeof err), -1);
}

/* The lowest free descriptor: unchanged after a batch of calls means none leaked. */
static int next_fd(void)
{
    int fd = open("/dev/null", O_RDONLY);
    cr_assert_geq(fd, 0);
    close(fd);
    return fd;
}

Test(npy, no_descriptor_leaks)
{
    int before = next_fd();
    float a[12];
    int nd, sh[4];
    char err[256];
    craft(tpath("ok.npy"), 1, 0, DICT("(3, 4)"), 64, 48);
    craft(tpath("bad.npy"), 1, 0, DICT("(3, 4"), 64, 48);
    craft(tpath("short.npy"), 1, 0, DICT("(3, 4)"), 64, 40);
    const char *paths[] = { tpath("ok.npy"), tpath("bad.npy"), tpath("short.npy"),
                            tpath("missing.npy"), tmpdir };
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        npy_read_header(paths[i], &nd, sh, err, sizeof err);
        npy_read_f32(paths[i], a, 12, err, sizeof err);
        npy_read_f32(paths[i], a, 11, err, sizeof err);
    }
    npy_write_f32(tpath("w.npy"), 2, (int[]){ 3, 4 }, a, err, sizeof err);
    npy_write_f32(tpath("no/dir/w.npy"), 2, (int[]){ 3, 4 }, a, err, sizeof err);
    cr_assert_eq(next_fd(), before, "a file descriptor leaked");
}

/* ---- writer errors ----------------------------------------------------------- */

static void expect_write_error(const char *p, int ndim, const int *shape, const float *data,
                               const char *word)
{
    char err[512] = "";
    cr_assert_eq(npy_write_f32(p, ndim, shape, data, err, sizeof err), -1);
    cr_assert(err[0]);
    cr_assert_not_null(strstr(err, word), "message \"%s\" lacks \"%s\"", err, word);
    cr_assert_eq(access(p, F_OK), -1, "%s was created", p);
}

Test(npy, write_errors)
{
    float a[8] = { 0 };
    expect_write_error(tpath("w0.npy"), 0, (int[]){ 1 }, a, "rank");
    expect_write_error(tpath("w5.npy"), 5, (int[]){ 1, 1, 1, 1, 1 }, a, "rank");
    expect_write_error(tpath("wn.npy"), 2, (int[]){ 2, -1 }, a, "axis 1");
    expect_write_error(tpath("wz.npy"), 2, (int[]){ 0, 2 }, a, "axis 0");
    expect_write_error(tpath("wd.npy"), 1, (int[]){ 2 }, NULL, "NULL");
    expect_write_error(tpath("ws.npy"), 1, NULL, a, "NULL");
    expect_write_error(tpath("no/such/dir/w.npy"), 1, (int[]){ 2 }, a, "create");
    /* renaming over a directory fails; the .tmp file must be removed */
    cr_assert_eq(mkdir(tpath("adir"), 0755), 0);
    char err[512] = "";
    cr_assert_eq(npy_write_f32(tpath("adir"), 1, (int[]){ 2 }, a, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "rename"), "%s", err);
    cr_assert_eq(access(tpath("adir.tmp"), F_OK), -1, "the .tmp file was left behind");
}
