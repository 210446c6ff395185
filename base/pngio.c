/* PNG files as 8-bit gray images through libpng: see pngio.h.
 *
 * libpng reports errors by calling an error function that must not return; ours
 * writes the message into the reader's state and longjmps back to the setjmp of the
 * function that called libpng. Everything that must be freed afterwards lives in a
 * heap object (png_in, png_out), never in a local variable changed after setjmp
 * (whose value would be indeterminate after the jump). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "pngio.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fileio.h"
#include "memlimit.h"

int png_available(void)
{
#ifdef RC_HAVE_PNG
    return 1;
#else
    return 0;
#endif
}

const char *png_missing_message(void)
{
    return "recur was built without libpng: install libpng-dev and reconfigure (meson setup --reconfigure)";
}

#ifdef RC_HAVE_PNG
#include <png.h>
#include <setjmp.h>
#include <sys/stat.h>

/* deflate's largest expansion: its longest match (258 bytes) takes at least 2 bits
 * (a 1-bit length code and a 1-bit distance code), so n bytes inflate to at most
 * 1032 n bytes (zlib's technical notes). */
#define DEFLATE_MAX_RATIO 1032u

struct png_in {
    FILE *f;
    png_structp png;
    png_infop info;
    unsigned char *buf;     /* the decoded rows */
    png_bytep *rows;
    const char *path;       /* the caller's (for messages; not owned) */
    char msg[256];          /* libpng's error, after its last warning (which often says why) */
    char warn[128];         /* libpng's last warning */
    jmp_buf jb;
};

static void on_error(png_structp png, png_const_charp msg)
{
    struct png_in *r = png_get_error_ptr(png);
    snprintf(r->msg, sizeof r->msg, "%s%s%s%s", msg ? msg : "libpng error", r->warn[0] ? " (" : "", r->warn,
             r->warn[0] ? ")" : "");
    longjmp(r->jb, 1);
}

/* Kept for the message of an error that follows; the library never prints. */
static void on_read_warning(png_structp png, png_const_charp msg)
{
    struct png_in *r = png_get_error_ptr(png);
    snprintf(r->warn, sizeof r->warn, "%s", msg ? msg : "");
}

static void on_warning(png_structp png, png_const_charp msg)
{
    (void)png;   /* the library never prints; a warning changes nothing we return */
    (void)msg;
}

void png_in_close(png_in *r)
{
    if (!r) return;
    if (r->png) png_destroy_read_struct(&r->png, r->info ? &r->info : NULL, NULL);
    if (r->f) fclose(r->f);
    free(r->buf);
    free(r->rows);
    free(r);
}

/* The header, read under the reader's setjmp: 0, or -1 with r->msg. */
static int read_header(png_in *r, png_uint_32 *w, png_uint_32 *h, int *bits_per_pixel)
{
    if (setjmp(r->jb)) return -1;
    png_set_sig_bytes(r->png, 8);
    /* PNG's own limit (2^31 - 1), not libpng's default of 10^6: the caller's memory
     * bound decides what is too large, with a message giving the size. */
    png_set_user_limits(r->png, 0x7fffffffu, 0x7fffffffu);
    png_read_info(r->png, r->info);
    *w = png_get_image_width(r->png, r->info);
    *h = png_get_image_height(r->png, r->info);
    *bits_per_pixel = png_get_bit_depth(r->png, r->info) * png_get_channels(r->png, r->info);
    return 0;
}

int png_in_open(png_in **out, const char *path, int *w, int *h, size_t *work, char *err, size_t errlen)
{
    *out = NULL;
    char eb[128];
    png_in *r = calloc(1, sizeof *r);
    if (!r) {
        file_fail(err, errlen, path, "out of memory");
        return -1;
    }
    r->path = path;
    r->f = fopen(path, "rb");
    if (!r->f) {
        int e = errno;
        file_fail(err, errlen, path, "cannot open: %s", file_errstr(e, eb, sizeof eb));
        png_in_close(r);
        return -1;
    }
    struct stat st;
    int have_st = fstat(fileno(r->f), &st) == 0;
    long long fsize = have_st && S_ISREG(st.st_mode) ? (long long)st.st_size : -1;   /* -1: a pipe, no bound */
    if (have_st && S_ISDIR(st.st_mode)) {
        file_fail(err, errlen, path, "is a directory");
        png_in_close(r);
        return -1;
    }
    unsigned char sig[8];
    size_t got = fread(sig, 1, sizeof sig, r->f);
    if (got < sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
        file_fail(err, errlen, path, got == 0 ? "not a PNG file (the file is empty)"
                                              : "not a PNG file (it does not start with the PNG signature)");
        png_in_close(r);
        return -1;
    }
    r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, r, on_error, on_read_warning);
    if (r->png) r->info = png_create_info_struct(r->png);
    if (!r->png || !r->info) {
        file_fail(err, errlen, path, "out of memory");
        png_in_close(r);
        return -1;
    }
    png_init_io(r->png, r->f);
    png_uint_32 pw = 0, ph = 0;
    int bpp = 0;
    if (read_header(r, &pw, &ph, &bpp) != 0) {
        file_fail(err, errlen, path, "not a valid PNG: %s", r->msg);
        png_in_close(r);
        return -1;
    }
    if (pw == 0 || ph == 0) {   /* libpng refuses these itself; kept for any other build of it */
        file_fail(err, errlen, path, "the image is %lu x %lu pixels (zero width or height)", (unsigned long)pw,
                  (unsigned long)ph);
        png_in_close(r);
        return -1;
    }
    /* The pixels' bits, a lower bound of what the compressed stream must inflate to. */
    double raw = (double)pw * (double)ph * (double)bpp / 8.0;
    if (fsize >= 0 && raw > (double)DEFLATE_MAX_RATIO * (double)fsize) {
        file_fail(err, errlen, path,
                  "claims %lu x %lu pixels (%.0f bytes of pixel data), more than its %lld bytes can hold "
                  "(deflate expands at most %u:1): the file is truncated or corrupt",
                  (unsigned long)pw, (unsigned long)ph, raw, fsize, DEFLATE_MAX_RATIO);
        png_in_close(r);
        return -1;
    }
    /* Decoded rows: at most 4 channels of 8 bits after the transforms png_in_gray asks for. */
    double wk = (double)pw * 4.0 * (double)ph + (double)ph * (double)sizeof(png_bytep);
    *w = (int)pw;
    *h = (int)ph;
    *work = wk >= (double)SIZE_MAX ? SIZE_MAX : (size_t)wk;
    *out = r;
    return 0;
}

/* Decodes under the reader's setjmp into r->buf: 0 with the channel count, or -1. */
static int decode(png_in *r, int *channels, size_t *rowbytes)
{
    if (setjmp(r->jb)) return -1;
    png_structp png = r->png;
    png_infop info = r->info;
    png_set_expand(png);        /* palette -> RGB, gray < 8 bits -> 8, tRNS -> alpha */
#ifdef PNG_READ_SCALE_16_TO_8_SUPPORTED
    png_set_scale_16(png);      /* 16 -> 8 bits, rounded */
#else
    png_set_strip_16(png);
#endif
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    png_uint_32 h = png_get_image_height(png, info);
    size_t rb = png_get_rowbytes(png, info);
    *channels = png_get_channels(png, info);
    *rowbytes = rb;
    if (png_get_bit_depth(png, info) != 8 || *channels < 1 || *channels > 4 || rb == 0 || rb > SIZE_MAX / h)
        png_error(png, "unexpected layout after conversion");
    r->buf = malloc(rb * h);
    r->rows = malloc(h * sizeof *r->rows);
    if (!r->buf || !r->rows) png_error(png, "out of memory for the decoded rows");
    for (png_uint_32 y = 0; y < h; y++) r->rows[y] = r->buf + (size_t)y * rb;
    png_read_image(png, r->rows);
    return 0;
}

/* The gray value of a composited (value, alpha) pair over white, rounded. */
static unsigned char over_white(unsigned v, unsigned a)
{
    return (unsigned char)((v * a + 255u * (255u - a) + 127u) / 255u);
}

static unsigned char luma(unsigned r, unsigned g, unsigned b)
{
    return (unsigned char)((299u * r + 587u * g + 114u * b + 500u) / 1000u);
}

int png_in_gray(png_in *r, unsigned char *px, char *err, size_t errlen)
{
    int ch = 0;
    size_t rb = 0;
    if (decode(r, &ch, &rb) != 0) {
        file_fail(err, errlen, r->path, "cannot decode the PNG: %s", r->msg);
        return -1;
    }
    size_t w = png_get_image_width(r->png, r->info), h = png_get_image_height(r->png, r->info);
    for (size_t y = 0; y < h; y++) {
        const unsigned char *s = r->rows[y];
        unsigned char *d = px + y * w;
        for (size_t x = 0; x < w; x++, s += ch) {
            switch (ch) {
            case 1: d[x] = s[0]; break;
            case 2: d[x] = over_white(s[0], s[1]); break;
            case 3: d[x] = luma(s[0], s[1], s[2]); break;
            default: d[x] = over_white(luma(s[0], s[1], s[2]), s[3]); break;
            }
        }
    }
    return 0;
}

int png_read_gray(const char *path, size_t max_bytes, unsigned char **px, int *w, int *h, char *err,
                  size_t errlen)
{
    *px = NULL;
    png_in *r;
    size_t work;
    if (png_in_open(&r, path, w, h, &work, err, errlen) != 0) return -1;
    if (max_bytes == 0) max_bytes = mem_limit_bytes();
    double need = (double)*w * (double)*h + (double)work;
    if (need > (double)max_bytes) {
        file_fail(err, errlen, path, "a %d x %d image needs %.0f bytes to decode, more than the %zu bytes allowed",
                  *w, *h, need, max_bytes);
        png_in_close(r);
        return -1;
    }
    unsigned char *p = malloc((size_t)*w * (size_t)*h);
    if (!p) {
        file_fail(err, errlen, path, "out of memory for a %d x %d image", *w, *h);
        png_in_close(r);
        return -1;
    }
    if (png_in_gray(r, p, err, errlen) != 0) {
        free(p);
        png_in_close(r);
        return -1;
    }
    png_in_close(r);
    *px = p;
    return 0;
}

/* ---- writing --------------------------------------------------------------------------- */

struct png_out {
    FILE *f;
    png_structp png;
    png_infop info;
    char msg[256];
    jmp_buf jb;
};

static void on_write_error(png_structp png, png_const_charp msg)
{
    struct png_out *o = png_get_error_ptr(png);
    snprintf(o->msg, sizeof o->msg, "%s", msg ? msg : "libpng error");
    longjmp(o->jb, 1);
}

static int encode(struct png_out *o, const unsigned char *px, int w, int h)
{
    if (setjmp(o->jb)) return -1;
    png_init_io(o->png, o->f);
    png_set_IHDR(o->png, o->info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(o->png, o->info);
    for (int y = 0; y < h; y++) png_write_row(o->png, (png_const_bytep)(px + (size_t)y * (size_t)w));
    png_write_end(o->png, NULL);
    return 0;
}

int png_write_gray(const char *path, const unsigned char *px, int w, int h, char *err, size_t errlen)
{
    char eb[128];
    if (w < 1 || h < 1) {
        file_fail(err, errlen, path, "cannot write a %d x %d image", w, h);
        return -1;
    }
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    struct png_out *o = calloc(1, sizeof *o);
    if (!tmp || !o) {
        free(tmp);
        free(o);
        file_fail(err, errlen, path, "out of memory");
        return -1;
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    int rc = -1;
    o->f = fopen(tmp, "wb");
    if (!o->f) {
        int e = errno;
        file_fail(err, errlen, path, "cannot create %s: %s", tmp, file_errstr(e, eb, sizeof eb));
        goto done;
    }
    o->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, o, on_write_error, on_warning);
    if (o->png) o->info = png_create_info_struct(o->png);
    if (!o->png || !o->info) {
        file_fail(err, errlen, path, "out of memory");
        goto done;
    }
    if (encode(o, px, w, h) != 0) {
        file_fail(err, errlen, path, "cannot write the PNG: %s", o->msg);
        goto done;
    }
    FILE *f = o->f;
    o->f = NULL;
    if (fflush(f) != 0 || ferror(f)) {
        int e = errno;
        fclose(f);
        file_fail(err, errlen, path, "write error: %s", file_errstr(e, eb, sizeof eb));
        goto done;
    }
    if (fclose(f) != 0) {
        int e = errno;
        file_fail(err, errlen, path, "write error: %s", file_errstr(e, eb, sizeof eb));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        file_fail(err, errlen, path, "cannot rename %s to it: %s", tmp, file_errstr(e, eb, sizeof eb));
        goto done;
    }
    rc = 0;
done:
    if (o->png) png_destroy_write_struct(&o->png, o->info ? &o->info : NULL);
    if (o->f) fclose(o->f);
    if (rc != 0) remove(tmp);
    free(tmp);
    free(o);
    return rc;
}

#else /* !RC_HAVE_PNG */

struct png_in { int unused; };

int png_in_open(png_in **r, const char *path, int *w, int *h, size_t *work, char *err, size_t errlen)
{
    *r = NULL;
    *w = *h = 0;
    *work = 0;
    file_fail(err, errlen, path, "%s", png_missing_message());
    return -1;
}

int png_in_gray(png_in *r, unsigned char *px, char *err, size_t errlen)
{
    (void)r;
    (void)px;
    file_fail(err, errlen, NULL, "%s", png_missing_message());
    return -1;
}

void png_in_close(png_in *r)
{
    (void)r;
}

int png_read_gray(const char *path, size_t max_bytes, unsigned char **px, int *w, int *h, char *err,
                  size_t errlen)
{
    (void)max_bytes;
    *px = NULL;
    *w = *h = 0;
    file_fail(err, errlen, path, "%s", png_missing_message());
    return -1;
}

int png_write_gray(const char *path, const unsigned char *px, int w, int h, char *err, size_t errlen)
{
    (void)px;
    (void)w;
    (void)h;
    file_fail(err, errlen, path, "%s", png_missing_message());
    return -1;
}

#endif
