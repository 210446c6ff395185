/* Tests of line images for OCR: PNG files as gray (base/pngio.c), resizing
 * (base/resample.c), the PNG + .gt.txt loader (train/data_lines.c) and the printed-line
 * generator (gen/, rc_gen_line_*, rc_gen_lines).
 *
 * Every input is made here in a temporary folder: PNGs of each colour type and bit
 * depth written with libpng, hand-made broken files (with correct chunk CRCs, so the
 * fault is the one meant), and generated data sets. The generator's tests need FreeType
 * and the fonts-dejavu-core and fortunes packages (./do.sh installs them) and skip with
 * the reason when any is missing; the loader's need libpng. In a build without them the
 * functions' error is checked instead. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "data.h"
#include "data_lines.h"
#include "line_gen.h"   /* gen/: tr_render, warp_line (line_box_holds_the_ink) */
#include "pngio.h"
#include "recur.h"
#include "resample.h"
#ifdef RC_HAVE_PNG
#include <png.h>
#include <setjmp.h>
#endif

/* ---- fixtures ------------------------------------------------------------------------ */

static char tmpdir[256];

/* Removes a folder and everything in it (one level of subfolders: the data sets). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/recur_lines_XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp failed");
}

static void teardown(void)
{
    remove_tree(tmpdir);
}

TestSuite(lines, .init = setup, .fini = teardown);
TestSuite(genlines, .init = setup, .fini = teardown, .timeout = 120);

/* A path in the temporary folder (a static buffer per slot). */
static const char *tpath(const char *name)
{
    static char buf[8][512];
    static int slot;
    char *b = buf[slot++ % 8];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

static const char *wbytes(const char *name, const void *data, size_t len)
{
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f, "cannot write %s", p);
    if (len) cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    return p;
}

static const char *wtext(const char *name, const char *text)
{
    return wbytes(name, text, strlen(text));
}

static void make_subdir(const char *name)
{
    cr_assert_eq(mkdir(tpath(name), 0777), 0, "mkdir %s", name);
}

#define ASSERT_ERR(err, ...)                                                            \
    do {                                                                                \
        const char *frags_[] = {__VA_ARGS__};                                           \
        for (size_t i_ = 0; i_ < sizeof frags_ / sizeof frags_[0]; i_++)                \
            cr_assert_not_null(strstr((err), frags_[i_]), "error \"%s\" lacks \"%s\"", \
                               (err), frags_[i_]);                                      \
    } while (0)

#define NEED_PNG()                                                                      \
    do {                                                                                \
        if (!png_available()) cr_skip_test("%s", png_missing_message());                \
    } while (0)

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* ---- resampling ---------------------------------------------------------------------- */

/* Same size: a copy; 2x down: each output row a symmetric weighting of 4 input rows, so
 * a linear ramp stays the same ramp sampled at the output rows' centres. */
Test(lines, resample_identity_and_ramp)
{
    enum { W = 7, H = 64 };
    float in[W * H], out[W * H];
    uint32_t s = 5;
    for (int i = 0; i < W * H; i++) in[i] = (float)(lcg(&s) % 1000) / 999.0f;
    cr_assert_eq(resample_f32(in, W, H, out, W, H), 0);
    for (int i = 0; i < W * H; i++) cr_assert_eq(out[i], in[i], "pixel %d changed", i);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) in[y * W + x] = (float)y / (H - 1);
    cr_assert_eq(resample_f32(in, W, H, out, W, H / 2), 0);
    for (int o = 1; o < H / 2 - 1; o++) {   /* rows away from the edges */
        float want = (2 * o + 0.5f) / (H - 1);
        for (int x = 0; x < W; x++)
            cr_assert_float_eq(out[o * W + x], want, 1e-5, "row %d: %g, expected %g", o, out[o * W + x], want);
    }
    cr_assert_eq(resample_width(100, 64, 32), 50.0);
    cr_assert_eq(resample_width(1, 1000, 32), 1.0, "never zero frames");
}

/* ---- PNG: writing, reading, every colour type ----------------------------------------- */

Test(lines, png_round_trip)
{
    NEED_PNG();
    int w = 37, h = 11;
    unsigned char *px = malloc((size_t)w * h), *back = NULL;
    uint32_t s = 9;
    for (int i = 0; i < w * h; i++) px[i] = (unsigned char)lcg(&s);
    char err[512] = "";
    const char *p = tpath("rt.png");
    cr_assert_eq(rc_gen_line_write_png(p, px, w, h, err, sizeof err), RC_OK, "%s", err);
    int rw, rh;
    cr_assert_eq(rc_gen_line_read_png(p, &back, &rw, &rh, err, sizeof err), RC_OK, "%s", err);
    cr_assert_eq(rw, w);
    cr_assert_eq(rh, h);
    cr_expect_eq(memcmp(back, px, (size_t)w * h), 0, "pixels changed in the round trip");
    free(back);
    /* the same pixels give the same bytes */
    const char *q = tpath("rt2.png");
    cr_assert_eq(rc_gen_line_write_png(q, px, w, h, err, sizeof err), RC_OK, "%s", err);
    size_t n1, n2;
    FILE *f1 = fopen(p, "rb"), *f2 = fopen(q, "rb");
    char b1[8192], b2[8192];
    n1 = fread(b1, 1, sizeof b1, f1);
    n2 = fread(b2, 1, sizeof b2, f2);
    fclose(f1);
    fclose(f2);
    cr_expect(n1 == n2 && memcmp(b1, b2, n1) == 0, "two writes of the same pixels differ");
    cr_expect_eq(access(tpath("rt.png.tmp"), F_OK), -1, "the temporary file was left behind");
    free(px);
}

#ifdef RC_HAVE_PNG
/* Writes a PNG of any colour type / bit depth with libpng: rows given as packed bytes
 * (rowbytes each), palette and tRNS optional. */
typedef struct png_spec {
    int w, h, depth, color, interlace;
    const unsigned char *rows;   /* h * rowbytes */
    const png_color *pal;
    int npal;
    const unsigned char *trns;   /* palette alphas */
    int ntrns;
    const png_color_16 *trns_color;
} png_spec;

static jmp_buf test_jb;
static void test_png_error(png_structp png, png_const_charp msg)
{
    (void)png;
    fprintf(stderr, "libpng: %s\n", msg);
    longjmp(test_jb, 1);
}

static const char *write_png_spec(const char *name, const png_spec *sp)
{
    const char *p = tpath(name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, test_png_error, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(test_jb)) cr_assert_fail("libpng failed writing %s", name);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)sp->w, (png_uint_32)sp->h, sp->depth, sp->color, sp->interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (sp->pal) png_set_PLTE(png, info, sp->pal, sp->npal);
    if (sp->trns || sp->trns_color) png_set_tRNS(png, info, sp->trns, sp->ntrns, sp->trns_color);
    png_write_info(png, info);
    png_size_t rb = png_get_rowbytes(png, info);
    png_bytep *rows = malloc((size_t)sp->h * sizeof *rows);
    for (int y = 0; y < sp->h; y++) rows[y] = (png_bytep)(sp->rows + (size_t)y * rb);
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    fclose(f);
    return p;
}

static void expect_gray(const char *path, const unsigned char *want, int w, int h, const char *what)
{
    unsigned char *px;
    int rw, rh;
    char err[512] = "";
    cr_assert_eq(png_read_gray(path, 0, &px, &rw, &rh, err, sizeof err), 0, "%s: %s", what, err);
    cr_assert(rw == w && rh == h, "%s: %d x %d, expected %d x %d", what, rw, rh, w, h);
    for (int i = 0; i < w * h; i++)
        cr_expect_eq(px[i], want[i], "%s: pixel %d is %d, expected %d", what, i, px[i], want[i]);
    free(px);
}

static unsigned char luma601(int r, int g, int b)
{
    return (unsigned char)((299 * r + 587 * g + 114 * b + 500) / 1000);
}

static unsigned char over_white(int v, int a)
{
    return (unsigned char)((v * a + 255 * (255 - a) + 127) / 255);
}
#endif

/* Gray of 1, 2, 4, 8 and 16 bits, gray + alpha, RGB(A) of 8 and 16 bits, palettes of 1
 * to 8 bits with transparent entries, a transparent gray value, Adam7 interlacing: each
 * read as the documented 8-bit gray. */
Test(lines, png_every_colour_type)
{
    NEED_PNG();
#ifdef RC_HAVE_PNG
    enum { W = 16, H = 3 };
    unsigned char want[W * H], rows[W * H * 8];
    for (int depth = 1; depth <= 16; depth *= 2) {   /* gray */
        int maxv = (1 << depth) - 1;
        memset(rows, 0, sizeof rows);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int v = (x * 7 + y * 5) % (maxv + 1);
                if (depth == 16) v = (x * 4099 + y * 13001) % 65536;
                if (depth < 8) {
                    int per = 8 / depth, rb = (W * depth + 7) / 8;
                    rows[y * rb + x / per] |= (unsigned char)(v << (8 - depth * (x % per + 1)));
                } else if (depth == 8) {
                    rows[y * W + x] = (unsigned char)v;
                } else {
                    rows[(y * W + x) * 2] = (unsigned char)(v >> 8);
                    rows[(y * W + x) * 2 + 1] = (unsigned char)v;
                }
                want[y * W + x] = (unsigned char)lround(v * 255.0 / maxv);
            }
        char name[32];
        snprintf(name, sizeof name, "gray%d.png", depth);
        png_spec sp = {.w = W, .h = H, .depth = depth, .color = PNG_COLOR_TYPE_GRAY, .rows = rows};
        expect_gray(write_png_spec(name, &sp), want, W, H, name);
        if (depth == 8) {   /* the same, interlaced */
            sp.interlace = PNG_INTERLACE_ADAM7;
            expect_gray(write_png_spec("gray8i.png", &sp), want, W, H, "gray8 interlaced");
            /* a transparent gray value reads as paper (white) */
            png_color_16 tc = {.gray = 7};
            sp.interlace = PNG_INTERLACE_NONE;
            sp.trns_color = &tc;
            unsigned char want2[W * H];
            for (int i = 0; i < W * H; i++) want2[i] = rows[i] == 7 ? 255 : want[i];
            expect_gray(write_png_spec("gray8t.png", &sp), want2, W, H, "gray8 with tRNS");
        }
    }
    for (int depth = 8; depth <= 16; depth *= 2)   /* RGB, RGBA */
        for (int alpha = 0; alpha < 2; alpha++) {
            int ch = 3 + alpha, bps = depth / 8;
            for (int i = 0; i < W * H; i++) {
                int c[4] = {(i * 37) % 256, (i * 91 + 20) % 256, (i * 53 + 100) % 256, (i * 71) % 256};
                for (int k = 0; k < ch; k++) {
                    unsigned char *d = rows + ((size_t)i * ch + k) * bps;
                    d[0] = (unsigned char)c[k];
                    if (bps == 2) d[1] = (unsigned char)c[k];   /* v * 257: exactly c at 8 bits */
                }
                unsigned char l = luma601(c[0], c[1], c[2]);
                want[i] = alpha ? over_white(l, c[3]) : l;
            }
            char name[32];
            snprintf(name, sizeof name, "rgb%s%d.png", alpha ? "a" : "", depth);
            png_spec sp = {.w = W, .h = H, .depth = depth,
                           .color = alpha ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB, .rows = rows};
            expect_gray(write_png_spec(name, &sp), want, W, H, name);
        }
    {   /* gray + alpha, 8 bits */
        for (int i = 0; i < W * H; i++) {
            int g = (i * 29) % 256, a = (i * 47 + 3) % 256;
            rows[2 * i] = (unsigned char)g;
            rows[2 * i + 1] = (unsigned char)a;
            want[i] = over_white(g, a);
        }
        png_spec sp = {.w = W, .h = H, .depth = 8, .color = PNG_COLOR_TYPE_GRAY_ALPHA, .rows = rows};
        expect_gray(write_png_spec("ga8.png", &sp), want, W, H, "gray+alpha 8");
    }
    for (int depth = 1; depth <= 8; depth *= 2) {   /* palettes with transparency */
        int n = 1 << depth;
        png_color pal[256];
        unsigned char trns[256];
        for (int k = 0; k < n; k++) {
            pal[k].red = (png_byte)((k * 67 + 11) % 256);
            pal[k].green = (png_byte)((k * 151 + 3) % 256);
            pal[k].blue = (png_byte)((k * 29 + 200) % 256);
            trns[k] = (unsigned char)(k % 3 == 0 ? 255 : (k * 83) % 256);
        }
        memset(rows, 0, sizeof rows);
        int per = 8 / depth, rb = (W * depth + 7) / 8;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int k = (x + 3 * y) % n;
                rows[y * rb + x / per] |= (unsigned char)(k << (8 - depth * (x % per + 1)));
                want[y * W + x] = over_white(luma601(pal[k].red, pal[k].green, pal[k].blue), trns[k]);
            }
        char name[32];
        snprintf(name, sizeof name, "pal%d.png", depth);
        png_spec sp = {.w = W, .h = H, .depth = depth, .color = PNG_COLOR_TYPE_PALETTE, .rows = rows,
                       .pal = pal, .npal = n, .trns = trns, .ntrns = n};
        expect_gray(write_png_spec(name, &sp), want, W, H, name);
    }
#endif
}

/* ---- hand-made broken PNGs -------------------------------------------------------------- */

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static size_t put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return 4;
}

/* A chunk with its length and CRC at p; returns its size. */
static size_t put_chunk(unsigned char *p, const char *type, const unsigned char *data, uint32_t len)
{
    size_t k = put_be32(p, len);
    memcpy(p + k, type, 4);
    if (len) memcpy(p + k + 4, data, len);
    k += 4 + len;
    k += put_be32(p + k, crc32_of(p + 4, 4 + len));
    return k;
}

/* The signature and an IHDR of w x h, 8-bit gray, then an IDAT of `idat` bytes
 * (a stored zlib block of zeros when they fit: not enough data for the image) and IEND. */
static size_t header_only_png(unsigned char *p, uint32_t w, uint32_t h)
{
    static const unsigned char sig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
    memcpy(p, sig, 8);
    size_t k = 8;
    unsigned char ihdr[13];
    put_be32(ihdr, w);
    put_be32(ihdr + 4, h);
    ihdr[8] = 8;
    ihdr[9] = 0;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    k += put_chunk(p + k, "IHDR", ihdr, 13);
    static const unsigned char z[] = {0x78, 0x01, 0x01, 0x04, 0x00, 0xfb, 0xff, 0, 0, 0, 0, 0, 0x04, 0x00, 0x01};
    k += put_chunk(p + k, "IDAT", z, sizeof z);
    k += put_chunk(p + k, "IEND", NULL, 0);
    return k;
}

/* Not a PNG, empty, truncated, zero width, zero height, a header claiming more than
 * the file can hold, an image over the memory bound: each an error naming the file. */
Test(lines, png_bad_files)
{
    NEED_PNG();
    char err[512];
    unsigned char *px = (unsigned char *)"untouched";
    int w, h;
    struct { const char *name; const void *data; size_t len; const char *frag; } cases[] = {
        {"text.png", "hello, not an image\n", 20, "not a PNG file"},
        {"empty.png", "", 0, "the file is empty"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const char *p = wbytes(cases[c].name, cases[c].data, cases[c].len);
        err[0] = 0;
        cr_assert_eq(png_read_gray(p, 0, &px, &w, &h, err, sizeof err), -1, "%s was accepted", cases[c].name);
        cr_assert_null(px);
        ASSERT_ERR(err, p, cases[c].frag);
    }
    /* truncated: a real image cut in the middle of its data */
    int W = 64, H = 32;
    unsigned char *img = malloc((size_t)W * H);
    uint32_t s = 3;
    for (int i = 0; i < W * H; i++) img[i] = (unsigned char)lcg(&s);   /* incompressible */
    const char *full = tpath("full.png");
    cr_assert_eq(png_write_gray(full, img, W, H, err, sizeof err), 0, "%s", err);
    free(img);
    size_t n;
    FILE *f = fopen(full, "rb");
    unsigned char buf[8192];
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    cr_assert_gt(n, 1000);
    const char *cut = wbytes("cut.png", buf, n / 2);
    cr_assert_eq(png_read_gray(cut, 0, &px, &w, &h, err, sizeof err), -1);
    ASSERT_ERR(err, cut, "cannot decode");
    /* zero width, zero height */
    unsigned char hb[256];
    const char *zw = wbytes("zw.png", hb, header_only_png(hb, 0, 5));
    cr_assert_eq(png_read_gray(zw, 0, &px, &w, &h, err, sizeof err), -1);
    ASSERT_ERR(err, zw, "width");
    const char *zh = wbytes("zh.png", hb, header_only_png(hb, 5, 0));
    cr_assert_eq(png_read_gray(zh, 0, &px, &w, &h, err, sizeof err), -1);
    ASSERT_ERR(err, zh, "height");
    /* 100000 x 100000 pixels in 70 bytes: refused before any allocation */
    const char *huge = wbytes("huge.png", hb, header_only_png(hb, 100000, 100000));
    cr_assert_eq(png_read_gray(huge, 0, &px, &w, &h, err, sizeof err), -1);
    ASSERT_ERR(err, huge, "100000 x 100000", "more than its", "truncated or corrupt");
    /* 10 x 10 of zeros declared, 5 bytes given: passes the size checks, fails decoding */
    const char *short_data = wbytes("short.png", hb, header_only_png(hb, 10, 10));
    cr_assert_eq(png_read_gray(short_data, 0, &px, &w, &h, err, sizeof err), -1);
    ASSERT_ERR(err, short_data, "cannot decode");
    /* a sound image over the caller's memory bound */
    cr_assert_eq(png_read_gray(full, 1000, &px, &w, &h, err, sizeof err), -1);
    ASSERT_ERR(err, full, "64 x 32", "1000 bytes allowed");
    cr_assert_null(px);
    /* a missing file, a folder */
    cr_assert_eq(png_read_gray(tpath("nope.png"), 0, &px, &w, &h, err, sizeof err), -1);
    ASSERT_ERR(err, "nope.png", "cannot open");
}

/* ---- the loader ------------------------------------------------------------------------ */

/* Writes dir/name.png: w x h of gray value `bg` with a dark vertical bar at column bar
 * (when >= 0). */
static void put_image(const char *dir, const char *name, int w, int h, int bg, int bar)
{
    unsigned char *px = malloc((size_t)w * h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) px[y * w + x] = (unsigned char)(x == bar ? 0 : bg);
    char p[600], err[512];
    snprintf(p, sizeof p, "%s/%s.png", dir, name);
    cr_assert_eq(png_write_gray(p, px, w, h, err, sizeof err), 0, "%s", err);
    free(px);
}

static void put_text(const char *dir, const char *name, const char *text)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* Heights and frame counts, inversion, labels in code-point order (multi-byte
 * characters too), the OCRopus name form, the alphabet file, eval with a given alphabet. */
Test(lines, load_folder)
{
    NEED_PNG();
    make_subdir("tr");
    const char *d = tpath("tr");
    char dir[512];
    snprintf(dir, sizeof dir, "%s", d);
    put_image(dir, "b", 100, 64, 200, -1);        /* 2x down: 50 frames */
    put_text(dir, "b.gt.txt", "ab\n");
    put_image(dir, "a", 30, 16, 255, 10);         /* 2x up: 60 frames, the bar around frames 20-21 */
    put_text(dir, "a.gt.txt", "\xef\xbb\xbf  z\xc3\xa9\xe2\x82\xac a \r\n");   /* BOM, spaces, CRLF */
    put_image(dir, "c.bin", 40, 32, 0, -1);       /* same height: 40 frames */
    put_text(dir, "c.gt.txt", "ba");              /* OCRopus: c.bin.png + c.gt.txt */
    put_text(dir, "notes.txt", "ignored");
    lines_opts o = {.height = 32, .invert = 1};
    lineset s;
    vocab a;
    memset(&a, 0, sizeof a);
    char err[512] = "";
    cr_assert_eq(lines_load(&s, dir, &a, &o, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s.n, 3);
    cr_assert_eq(s.frames.F, 32);
    /* alphabet: ' ', 'a', 'b', 'z', 'é', '€' (code-point order) */
    const char *want_alpha[] = {" ", "a", "b", "z", "\xc3\xa9", "\xe2\x82\xac"};
    cr_assert_eq(a.n, 6);
    for (int i = 0; i < 6; i++) cr_expect_str_eq(vocab_token(&a, i, NULL), want_alpha[i], "alphabet %d", i);
    /* images in name order: a, b, c.bin */
    cr_expect_eq(seqset_len(&s.frames, 0), 60);
    cr_expect_eq(seqset_len(&s.frames, 1), 50);
    cr_expect_eq(seqset_len(&s.frames, 2), 40);
    cr_expect(strstr(s.paths[2], "c.bin.png") != NULL);
    int32_t la[] = {3, 4, 5, 0, 1}, lb[] = {1, 2}, lc[] = {2, 1};
    const int32_t *wl[] = {la, lb, lc};
    size_t wn[] = {5, 2, 2};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(s.loff[i + 1] - s.loff[i], wn[i], "image %d: %zu labels", i, s.loff[i + 1] - s.loff[i]);
        for (size_t k = 0; k < wn[i]; k++) cr_expect_eq(s.lab[s.loff[i] + k], wl[i][k], "image %d label %zu", i, k);
    }
    /* values: inverted, so paper 255 -> 0, gray 200 -> 55/255, black -> 1 */
    const float *x = s.frames.x;
    float v0 = x[s.frames.off[1] * 32 + 5];
    cr_expect_float_eq(v0, 1 - 200 / 255.0f, 1e-6, "gray 200 inverted: %g", v0);
    cr_expect_float_eq(x[s.frames.off[2] * 32 + 7], 1.0f, 1e-6);
    float bar = 0;
    int at = -1;
    for (int t = 0; t < 60; t++)
        if (x[(size_t)t * 32 + 16] > bar) bar = x[(size_t)t * 32 + 16], at = t;
    cr_expect(at == 20 || at == 21, "the bar at column 10 of 30 is at frame %d of 60", at);
    cr_expect_float_eq(x[5 * 32 + 16], 0.0f, 1e-6, "paper away from the bar");
    /* the alphabet round trip through its file, and eval with it */
    const char *ap = tpath("alphabet.txt");
    cr_assert_eq(vocab_save(&a, ap, err, sizeof err), 0, "%s", err);
    vocab b;
    cr_assert_eq(lines_alphabet_load(&b, ap, err, sizeof err), 0, "%s", err);
    cr_assert_eq(b.n, a.n);
    for (int i = 0; i < a.n; i++) cr_expect_str_eq(vocab_token(&b, i, NULL), vocab_token(&a, i, NULL));
    lineset s2;
    o.invert = 0;
    cr_assert_eq(lines_load(&s2, dir, &b, &o, err, sizeof err), 0, "%s", err);
    cr_expect_eq(b.n, 6, "a given alphabet is kept");
    cr_expect_float_eq(s2.frames.x[s2.frames.off[1] * 32 + 5], 200 / 255.0f, 1e-6, "not inverted");
    lineset_free(&s2);
    vocab_free(&b);
    lineset_free(&s);
    vocab_free(&a);
    /* an alphabet file with a token of two characters is refused */
    cr_assert_eq(lines_alphabet_load(&b, wtext("bad_alpha.txt", "a\nbc\n"), err, sizeof err), -1);
    ASSERT_ERR(err, "bad_alpha.txt:2", "one UTF-8 character");
}

/* One folder per bad case, each refused with a message naming the file, the set empty. */
static void expect_load_error(const char *sub, const vocab *alpha, int height, const char *frag1, const char *frag2)
{
    char dir[512], err[512] = "";
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, sub);
    lines_opts o = {.height = height, .invert = 1};
    lineset s;
    vocab a;
    memset(&a, 0, sizeof a);
    if (alpha) cr_assert_eq(vocab_copy(&a, alpha, err, sizeof err), 0);
    cr_assert_eq(lines_load(&s, dir, &a, &o, err, sizeof err), -1, "%s: loaded", sub);
    cr_expect_eq(s.n, 0);
    cr_expect_null(s.frames.x);
    cr_expect_null(s.lab);
    cr_expect_eq(a.n, alpha ? alpha->n : 0, "%s: the alphabet changed on error", sub);
    ASSERT_ERR(err, frag1, frag2);
    vocab_free(&a);
}

Test(lines, load_errors)
{
    NEED_PNG();
    char d[512];
#define CASE_DIR(name) (make_subdir(name), snprintf(d, sizeof d, "%s/%s", tmpdir, name), d)
    put_image(CASE_DIR("missing_gt"), "x", 40, 32, 255, 3);
    expect_load_error("missing_gt", NULL, 32, "missing_gt/x.png", "no transcript");
    put_image(CASE_DIR("empty_gt"), "x", 40, 32, 255, 3);
    put_text(d, "x.gt.txt", " \t\n");
    expect_load_error("empty_gt", NULL, 32, "empty_gt/x.gt.txt", "empty transcript");
    put_image(CASE_DIR("zero_gt"), "x", 40, 32, 255, 3);
    put_text(d, "x.gt.txt", "");
    expect_load_error("zero_gt", NULL, 32, "zero_gt/x.gt.txt", "empty");
    put_image(CASE_DIR("utf8"), "x", 40, 32, 255, 3);
    put_text(d, "x.gt.txt", "ab\xc3(d");
    expect_load_error("utf8", NULL, 32, "utf8/x.gt.txt", "bad UTF-8 at byte 3");
    put_image(CASE_DIR("overlong"), "x", 40, 32, 255, 3);
    put_text(d, "x.gt.txt", "a\xc0\xafz");
    expect_load_error("overlong", NULL, 32, "overlong/x.gt.txt", "bad UTF-8");
    put_image(CASE_DIR("two_lines"), "x", 40, 32, 255, 3);
    put_text(d, "x.gt.txt", "one\ntwo\n");
    expect_load_error("two_lines", NULL, 32, "two_lines/x.gt.txt", "more than one line");
    put_image(CASE_DIR("control"), "x", 40, 32, 255, 3);
    put_text(d, "x.gt.txt", "a\tb");
    expect_load_error("control", NULL, 32, "control/x.gt.txt", "control character U+0009 at column 2");
    CASE_DIR("not_png");
    put_text(d, "x.png", "GIF89a...");
    put_text(d, "x.gt.txt", "abc");
    expect_load_error("not_png", NULL, 32, "not_png/x.png", "not a PNG");
    /* "aab" needs 4 frames (a blank between the a's); 3 columns at height 32 give 3 */
    put_image(CASE_DIR("narrow"), "x", 3, 32, 255, 1);
    put_text(d, "x.gt.txt", "aab");
    expect_load_error("narrow", NULL, 32, "narrow/x.png", "3 frames");
    expect_load_error("narrow", NULL, 32, "the 4 its transcript needs", "1 adjacent repeats");
    CASE_DIR("empty_dir");
    expect_load_error("empty_dir", NULL, 32, "empty_dir", "no line images");
    expect_load_error("no_such_dir", NULL, 32, "no_such_dir", "cannot open");
    /* eval: a character the training alphabet lacks */
    put_image(CASE_DIR("unknown"), "x", 40, 32, 255, 3);
    put_text(d, "x.gt.txt", "ab\xc3\xa9");
    vocab a;
    memset(&a, 0, sizeof a);
    char err[256];
    cr_assert_eq(vocab_add(&a, "a", 1, err, sizeof err), 0);
    cr_assert_eq(vocab_add(&a, "b", 1, err, sizeof err), 1);
    expect_load_error("unknown", &a, 32, "unknown/x.gt.txt", "'\xc3\xa9' (U+00E9) at column 3 is not in the alphabet");
    vocab_free(&a);
    /* a bad height */
    put_image(CASE_DIR("height"), "x", 40, 32, 255, 3);
    put_text(d, "x.gt.txt", "ab");
    expect_load_error("height", NULL, 4, "line height 4", "outside");
    /* one good image, then a broken one: nothing is kept */
    put_image(CASE_DIR("second_bad"), "a", 40, 32, 255, 3);
    put_text(d, "a.gt.txt", "ab");
    unsigned char hb[256];
    size_t n = header_only_png(hb, 100000, 100000);
    char p[600];
    snprintf(p, sizeof p, "%s/b.png", d);
    FILE *f = fopen(p, "wb");
    fwrite(hb, 1, n, f);
    fclose(f);
    put_text(d, "b.gt.txt", "ab");
    expect_load_error("second_bad", NULL, 32, "second_bad/b.png", "truncated or corrupt");
#undef CASE_DIR
}

/* The memory bound covers the resized frames: a 1-pixel-high line 3000 wide becomes
 * 96000 frames of 32 at height 32, refused under a 1 MB bound, accepted at 64 MB. */
Test(lines, image_memory_bound)
{
    NEED_PNG();
    put_image(tmpdir, "thin", 3000, 1, 255, 5);
    lines_opts o = {.height = 32, .invert = 1, .max_bytes = 1 << 20};
    float *x;
    int frames;
    char err[512] = "";
    const char *p = tpath("thin.png");
    cr_assert_eq(lines_image(p, &o, &x, &frames, err, sizeof err), -1);
    ASSERT_ERR(err, p, "3000 x 1", "resized to height 32", "1048576 bytes allowed");
    cr_assert_null(x);
    o.max_bytes = 64 << 20;
    cr_assert_eq(lines_image(p, &o, &x, &frames, err, sizeof err), 0, "%s", err);
    cr_expect_eq(frames, 96000);
    free(x);
}

Test(lines, min_frames)
{
    int32_t a[] = {1, 1, 2, 2, 2, 3};
    cr_expect_eq(lines_min_frames(a, 6), 9);
    cr_expect_eq(lines_min_frames(a, 1), 1);
    cr_expect_eq(lines_min_frames(a, 0), 0);
}

/* ---- the generator ------------------------------------------------------------------------ */

#define FONT_FILE "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

static void need_gen(void)
{
#ifndef RC_HAVE_FREETYPE
    cr_skip_test("recur was built without FreeType (meson -Dfreetype=auto found none)");
#endif
    NEED_PNG();
    if (access(FONT_FILE, R_OK) != 0) cr_skip_test("%s is missing (apt-get install fonts-dejavu-core)", FONT_FILE);
}

static void need_gen_set(void)
{
    need_gen();
    const char *faces[] = {"/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
                           "/usr/share/fonts/truetype/freefont/FreeMono.ttf", "/usr/share/games/fortunes/fortunes"};
    for (size_t i = 0; i < sizeof faces / sizeof *faces; i++)
        if (access(faces[i], R_OK) != 0)
            cr_skip_test("%s is missing (apt-get install fonts-liberation fonts-freefont-ttf fortunes)", faces[i]);
}

/* The columns holding ink (a pixel darker than mid gray), as runs. */
static int ink_runs(const unsigned char *px, int w, int h, int *first, int *last)
{
    int runs = 0, prev = 0;
    *first = -1;
    *last = -1;
    for (int x = 0; x < w; x++) {
        int ink = 0;
        for (int y = 0; y < h; y++) ink |= px[y * w + x] < 128;
        if (ink && !prev) runs++;
        if (ink) {
            if (*first < 0) *first = x;
            *last = x;
        }
        prev = ink;
    }
    return runs;
}

/* Clean renderings show the text: "I I ... I" has one ink run per I, and the ink of a
 * text twice as long is about twice as wide. */
Test(genlines, clean_rendering_matches_text)
{
    need_gen();
    const char *fonts[] = {"DejaVuSans"};
    rc_line_gen_opts o = {.height = 32, .clean = 1};
    rc_line_gen *g;
    char err[512] = "";
    cr_assert_eq(rc_gen_line_new(&g, fonts, 1, &o, err, sizeof err), RC_OK, "%s", err);
    for (int k = 1; k <= 9; k += 2) {
        char text[64] = "";
        for (int i = 0; i < k; i++) strcat(text, i ? " I" : "I");
        unsigned char *px;
        int w, h, first, last;
        cr_assert_eq(rc_gen_line_render(g, 0, text, 7, &px, &w, &h, err, sizeof err), RC_OK, "%s", err);
        cr_expect_eq(h, 32);
        cr_expect_eq(ink_runs(px, w, h, &first, &last), k, "\"%s\": %d ink runs", text, ink_runs(px, w, h, &first, &last));
        free(px);
    }
    int span[2];
    const char *texts[] = {"abcdefghij", "abcdefghijabcdefghij"};
    for (int i = 0; i < 2; i++) {
        unsigned char *px;
        int w, h, first, last;
        cr_assert_eq(rc_gen_line_render(g, 0, texts[i], 7, &px, &w, &h, err, sizeof err), RC_OK, "%s", err);
        ink_runs(px, w, h, &first, &last);
        span[i] = last - first + 1;
        free(px);
    }
    double ratio = (double)span[1] / span[0];
    cr_expect(ratio > 1.9 && ratio < 2.1, "ink spans %d and %d: ratio %.3f, expected about 2", span[0], span[1], ratio);
    rc_gen_line_free(g);
}

/* A seed fixes the image; another seed changes it; the height is the one asked for. */
Test(genlines, render_reproducible)
{
    need_gen();
    const char *fonts[] = {"DejaVuSans", FONT_FILE};
    rc_line_gen_opts o = {.height = 40};
    rc_line_gen *g;
    char err[512] = "";
    cr_assert_eq(rc_gen_line_new(&g, fonts, 2, &o, err, sizeof err), RC_OK, "%s", err);
    unsigned char *a, *b, *c;
    int wa, ha, wb, hb, wc, hc;
    const char *text = "The quick brown fox, 1234.";
    cr_assert_eq(rc_gen_line_render(g, 0, text, 42, &a, &wa, &ha, err, sizeof err), RC_OK, "%s", err);
    cr_assert_eq(rc_gen_line_render(g, 1, text, 42, &b, &wb, &hb, err, sizeof err), RC_OK, "%s", err);
    cr_assert_eq(rc_gen_line_render(g, 0, text, 43, &c, &wc, &hc, err, sizeof err), RC_OK, "%s", err);
    cr_expect_eq(ha, 40);
    cr_expect(wa == wb && memcmp(a, b, (size_t)wa * ha) == 0, "seed 42 gave two images");
    cr_expect(wa != wc || memcmp(a, c, (size_t)wa * ha) != 0, "seeds 42 and 43 gave the same image");
    free(a);
    free(b);
    free(c);
    /* errors: a missing glyph, bad UTF-8, no ink, a bad font index */
    cr_expect_eq(rc_gen_line_render(g, 0, "a\xe4\xb8\xad", 1, &a, &wa, &ha, err, sizeof err), RC_ERR_ARG);
    ASSERT_ERR(err, "no glyph", "U+4E2D");
    cr_expect_null(a);
    cr_expect_eq(rc_gen_line_render(g, 0, "a\xff", 1, &a, &wa, &ha, err, sizeof err), RC_ERR_ARG);
    ASSERT_ERR(err, "bad UTF-8 at byte 2");
    cr_expect_eq(rc_gen_line_render(g, 0, "   ", 1, &a, &wa, &ha, err, sizeof err), RC_ERR_ARG);
    ASSERT_ERR(err, "no ink");
    cr_expect_eq(rc_gen_line_render(g, 2, "x", 1, &a, &wa, &ha, err, sizeof err), RC_ERR_ARG);
    rc_gen_line_free(g);
    /* errors of the constructor */
    const char *unknown[] = {"NoSuchFace"}, *file[] = {"/nonexistent/x.ttf"};
    cr_expect_eq(rc_gen_line_new(&g, unknown, 1, NULL, err, sizeof err), RC_ERR_ARG);
    ASSERT_ERR(err, "unknown font 'NoSuchFace'");
    cr_expect_null(g);
    cr_expect_eq(rc_gen_line_new(&g, file, 1, NULL, err, sizeof err), RC_ERR_ARG);
    ASSERT_ERR(err, "/nonexistent/x.ttf");
    o.height = 300;
    cr_expect_eq(rc_gen_line_new(&g, fonts, 1, &o, err, sizeof err), RC_ERR_ARG);
    ASSERT_ERR(err, "height 300");
}

/* Pixels darker than halfway between the image's darkest and lightest. */
static size_t dark_pixels(const unsigned char *px, int w, int h)
{
    int lo = 255, hi = 0;
    for (int i = 0; i < w * h; i++) lo = px[i] < lo ? px[i] : lo, hi = px[i] > hi ? px[i] : hi;
    size_t n = 0;
    for (int i = 0; i < w * h; i++) n += 2 * px[i] < lo + hi;
    return n;
}

/* No degradation erases the text: every rendering of many seeds keeps at least a
 * quarter of the clean rendering's ink (binarising a blurred small line at a level set
 * from the ink colour once left two dots of "aa bb" at height 16). */
Test(genlines, degradations_keep_the_text)
{
    need_gen();
    const char *fonts[] = {"DejaVuSans"};
    char err[512] = "";
    for (int H = 16; H <= 32; H += 16) {
        rc_line_gen *clean, *g;
        rc_line_gen_opts oc = {.height = H, .clean = 1}, od = {.height = H};
        cr_assert_eq(rc_gen_line_new(&clean, fonts, 1, &oc, err, sizeof err), RC_OK, "%s", err);
        cr_assert_eq(rc_gen_line_new(&g, fonts, 1, &od, err, sizeof err), RC_OK, "%s", err);
        unsigned char *px;
        int w, h;
        cr_assert_eq(rc_gen_line_render(clean, 0, "aa bb", 1, &px, &w, &h, err, sizeof err), RC_OK, "%s", err);
        double ink = (double)dark_pixels(px, w, h) / ((double)w * h);
        free(px);
        for (uint64_t seed = 1; seed <= 200; seed++) {
            cr_assert_eq(rc_gen_line_render(g, 0, "aa bb", seed, &px, &w, &h, err, sizeof err), RC_OK, "%s", err);
            double f = (double)dark_pixels(px, w, h) / ((double)w * h);
            cr_expect_geq(f, ink / 4, "height %d, seed %llu: %.3f of the pixels are ink, the clean line has %.3f", H,
                          (unsigned long long)seed, f, ink);
            free(px);
        }
        rc_gen_line_free(clean);
        rc_gen_line_free(g);
    }
}

/* The line box a rendering reports holds all its ink, in every usual face (P052's g
 * reaches below the font's descender; hinting rounds tops up), and a warp cropped to
 * the warped box with no margin keeps that ink: the crop never cuts a glyph. */
Test(genlines, line_box_holds_the_ink)
{
    need_gen();
    const char *text = "\xc3\x89gjlQ|_(\xc3\x85";   /* ÉgjlQ|_(Å */
    uint32_t all[16];
    int n = 0;
    for (const char *s = text; *s; n++) s += gen_utf8(s, &all[n]);
    const char *name, *path;
    int usual, faces = 0;
    char err[512] = "";
    for (int k = 0; (name = rc_gen_line_face(k, &path, NULL, &usual)) != NULL; k++) {
        if (!usual || !path) continue;
        faces++;
        tr_font *f;
        cr_assert_eq(tr_open(&f, path, err, sizeof err), 0, "%s", err);
        uint32_t cp[16];
        int m = 0;
        for (int i = 0; i < n; i++)
            if (tr_has(f, all[i])) cp[m++] = all[i];
        canvas c;
        cr_assert_eq(tr_render(f, cp, m, 40, 0, 20, &c, err, sizeof err), 0, "%s: %s", name, err);
        double mass = 0;
        for (int y = 0; y < c.h; y++)
            for (int x = 0; x < c.w; x++) {
                float v = c.v[y * c.w + x];
                mass += v;
                if (v > 0)
                    cr_expect(y >= floor(c.top) && y < ceil(c.bottom) && x >= c.left && x < c.right,
                              "%s: ink at (%d, %d) outside the box %g..%g x %g..%g", name, x, y, c.left, c.right,
                              c.top, c.bottom);
            }
        warp_params wp = {.rot = 0.03, .shear = 0.08, .sx = 1, .sy = 1};
        rng_t r;
        rng_seed(&r, 1);
        canvas o;
        cr_assert_eq(warp_line(&c, &wp, &r, &o, err, sizeof err), 0, "%s", err);
        double kept = 0;
        for (int i = 0; i < o.w * o.h; i++) kept += o.v[i];
        cr_expect_geq(kept, 0.995 * mass, "%s: the warp kept %.1f of %.1f units of ink", name, kept, mass);
        canvas_free(&o);
        canvas_free(&c);
        tr_close(f);
    }
    cr_expect_gt(faces, 0, "no usual face is installed");
}

/* Reads every file of a folder tree into one buffer in name order (for comparing sets). */
static void read_tree(const char *dir, char **buf, size_t *len)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    cr_assert_geq(n, 0, "cannot list %s", dir);
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, nm);
        struct stat st;
        if (nm[0] != '.' && stat(p, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                read_tree(p, buf, len);
            } else {
                FILE *f = fopen(p, "rb");
                cr_assert_not_null(f);
                *buf = realloc(*buf, *len + (size_t)st.st_size + strlen(nm) + 1);
                memcpy(*buf + *len, nm, strlen(nm) + 1);
                *len += strlen(nm) + 1;
                *len += fread(*buf + *len, 1, (size_t)st.st_size, f);
                fclose(f);
            }
        }
        free(names[i]);
    }
    free(names);
}

static rc_gen_lines_opts small_set(const char *out, uint64_t seed)
{
    rc_gen_lines_opts o;
    rc_gen_lines_defaults(&o);
    o.out = out;
    o.count = 30;
    o.valid = 5;
    o.test = 6;
    o.seed = seed;
    o.fonts = "DejaVuSans,LiberationSerif-Regular";
    o.hold_out = "FreeMono";
    return o;
}

/* The same options give the same bytes (every image, transcript and list); another
 * seed gives other images. */
Test(genlines, data_set_reproducible)
{
    need_gen_set();
    char err[1024] = "";
    rc_gen_lines_opts o1 = small_set(tpath("s1"), 11), o2 = small_set(tpath("s2"), 11), o3 = small_set(tpath("s3"), 12);
    cr_assert_eq(rc_gen_lines(&o1, err, sizeof err), RC_OK, "%s", err);
    cr_assert_eq(rc_gen_lines(&o2, err, sizeof err), RC_OK, "%s", err);
    cr_assert_eq(rc_gen_lines(&o3, err, sizeof err), RC_OK, "%s", err);
    char *b1 = NULL, *b2 = NULL, *b3 = NULL;
    size_t n1 = 0, n2 = 0, n3 = 0;
    read_tree(o1.out, &b1, &n1);
    read_tree(o2.out, &b2, &n2);
    read_tree(o3.out, &b3, &n3);
    cr_expect_gt(n1, 10000);
    cr_expect(n1 == n2 && memcmp(b1, b2, n1) == 0, "seed 11 twice gave different data sets");
    cr_expect(n1 != n3 || memcmp(b1, b3, n1) != 0, "seeds 11 and 12 gave the same data set");
    free(b1);
    free(b2);
    free(b3);
    /* an existing data set is not overwritten */
    cr_expect_eq(rc_gen_lines(&o1, err, sizeof err), RC_ERR_IO);
    ASSERT_ERR(err, "already holds files");
}

/* Splits: sizes, held-out text disjoint from the training text and within its
 * characters, test-fonts in the held-out face only, the loader reads each split with
 * the training alphabet, frames at the asked height. */
Test(genlines, data_set_splits_and_loader)
{
    need_gen_set();
    char err[1024] = "";
    rc_gen_lines_opts o = small_set(tpath("set"), 5);
    o.line.height = 36;
    cr_assert_eq(rc_gen_lines(&o, err, sizeof err), RC_OK, "%s", err);
    const char *splits[] = {"train", "valid", "test", "test-fonts"};
    int counts[] = {30, 5, 6, 6};
    lineset s[4];
    vocab a;
    memset(&a, 0, sizeof a);
    lines_opts lo = {.height = 36, .invert = 1};
    for (int k = 0; k < 4; k++) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s/%s", o.out, splits[k]);
        cr_assert_eq(lines_load(&s[k], dir, &a, &lo, err, sizeof err), 0, "%s: %s", splits[k], err);
        cr_expect_eq(s[k].n, counts[k], "%s: %d lines", splits[k], s[k].n);
        cr_expect_eq(s[k].frames.F, 36);
        for (int i = 0; i < s[k].n; i++)
            cr_expect_geq((size_t)seqset_len(&s[k].frames, i),
                          lines_min_frames(s[k].lab + s[k].loff[i], s[k].loff[i + 1] - s[k].loff[i]));
    }
    /* texts: no held-out line is a training line; test-fonts shows the test lines */
    char *tr_text[30], *t;
    size_t tl;
    for (int i = 0; i < 30; i++) {
        char p[700];
        snprintf(p, sizeof p, "%s/train/%06d.gt.txt", o.out, i);
        cr_assert_eq(lines_read_transcript(p, &tr_text[i], &tl, err, sizeof err), 0, "%s", err);
        cr_expect_geq(strlen(tr_text[i]), 1);
    }
    for (int k = 1; k < 4; k++)
        for (int i = 0; i < counts[k]; i++) {
            char p[700];
            snprintf(p, sizeof p, "%s/%s/%06d.gt.txt", o.out, splits[k], i);
            cr_assert_eq(lines_read_transcript(p, &t, &tl, err, sizeof err), 0, "%s", err);
            for (int j = 0; j < 30; j++) cr_expect_str_neq(t, tr_text[j], "%s line %d is training line %d", splits[k], i, j);
            if (k == 3) {
                char *u;
                snprintf(p, sizeof p, "%s/test/%06d.gt.txt", o.out, i);
                cr_assert_eq(lines_read_transcript(p, &u, &tl, err, sizeof err), 0, "%s", err);
                cr_expect_str_eq(t, u, "test-fonts line %d is not test line %d", i, i);
                free(u);
            }
            free(t);
        }
    for (int i = 0; i < 30; i++) free(tr_text[i]);
    /* the fonts of each split, from lines.tsv */
    for (int k = 0; k < 4; k++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s/lines.tsv", o.out, splits[k]);
        FILE *f = fopen(p, "r");
        cr_assert_not_null(f);
        char line[256];
        int rows = 0;
        while (fgets(line, sizeof line, f)) {
            if (rows++ == 0) continue;
            int held = strstr(line, "\tFreeMono\n") != NULL;
            cr_expect_eq(held, k == 3, "%s: %s", splits[k], line);
        }
        fclose(f);
        cr_expect_eq(rows, counts[k] + 1);
    }
    for (int k = 0; k < 4; k++) lineset_free(&s[k]);
    vocab_free(&a);
}

/* Bad options of a data set: each refused with a message. */
Test(genlines, data_set_errors)
{
    need_gen_set();
    char err[1024] = "";
    rc_gen_lines_opts o = small_set(tpath("e1"), 1);
    o.fonts = "NoSuchFamily";
    cr_expect_eq(rc_gen_lines(&o, err, sizeof err), RC_ERR_ARG);
    ASSERT_ERR(err, "unknown font 'NoSuchFamily'");
    o = small_set(tpath("e2"), 1);
    o.fonts = "FreeMono";   /* all held out */
    cr_expect_eq(rc_gen_lines(&o, err, sizeof err), RC_ERR_ARG);
    ASSERT_ERR(err, "no training fonts");
    o = small_set(tpath("e3"), 1);
    o.text = wtext("tiny.txt", "just a few words here\n");
    cr_expect_eq(rc_gen_lines(&o, err, sizeof err), RC_ERR_ARG);
    ASSERT_ERR(err, "tiny.txt", "distinct lines");
    o = small_set(tpath("e4"), 1);
    o.min_chars = 50;
    o.max_chars = 20;
    cr_expect_eq(rc_gen_lines(&o, err, sizeof err), RC_ERR_ARG);
    ASSERT_ERR(err, "50..20");
    cr_expect_eq(access(tpath("e1"), F_OK), -1, "a refused data set left a folder");
}

/* A few training lines still find held-out lines within their characters (the whole
 * rest of the text is searched), and a used --out is refused before the text is read
 * (here a text too small would be the other error). */
Test(genlines, small_sets_and_used_out)
{
    need_gen_set();
    char err[1024] = "";
    rc_gen_lines_opts o = small_set(tpath("few"), 3);
    o.count = 3;
    o.valid = 2;
    o.test = 2;
    cr_assert_eq(rc_gen_lines(&o, err, sizeof err), RC_OK, "%s", err);
    o.text = wtext("tiny.txt", "just a few words here\n");
    cr_expect_eq(rc_gen_lines(&o, err, sizeof err), RC_ERR_IO);
    ASSERT_ERR(err, "few/train already holds files");
}

/* ---- a build without FreeType or libpng: the functions say what to install ---------- */

Test(genlines, missing_dependencies_say_so)
{
#if defined(RC_HAVE_FREETYPE) && defined(RC_HAVE_PNG)
    cr_skip_test("recur was built with FreeType and libpng");
#else
    const char *fonts[] = {FONT_FILE};
    rc_line_gen *g = (rc_line_gen *)1;
    char err[512] = "";
    cr_expect_eq(rc_gen_line_new(&g, fonts, 1, NULL, err, sizeof err), RC_ERR_STATE);
    cr_expect_null(g);
    cr_expect(strstr(err, "recur was built without") && strstr(err, "install"), "%s", err);
#ifndef RC_HAVE_PNG
    unsigned char px[4] = {0};
    cr_expect_eq(rc_gen_line_write_png(tpath("x.png"), px, 2, 2, err, sizeof err), RC_ERR_STATE);
    ASSERT_ERR(err, "without libpng", "libpng-dev");
    lines_opts o = {.height = 32};
    float *x;
    int frames;
    cr_expect_eq(lines_image(tpath("x.png"), &o, &x, &frames, err, sizeof err), -1);
    ASSERT_ERR(err, "without libpng");
#endif
#endif
}
