/* One printed line image: render the text (text_render.c), warp and crop it with its
 * margins (degrade.c), blur, put ink and paper levels on it, resize it to the height
 * (base/resample.c), add noise, sometimes binarise, quantise to 8 bits. Every random
 * choice comes from one generator seeded by the caller's seed, drawn in a fixed order
 * whether a degradation is used or not, so a seed always means the same image.
 *
 * The ranges (in em, the font size, or in output pixels, so they mean the same at any
 * rendering size) follow ocropus-linegen and Tesseract's DegradeImage: a few degrees of
 * rotation at most (less on long lines: the ends move by at most a quarter of the line
 * box), shear up to 0.08, scales 0.9-1.1, an elastic field of 1-4% of an em smoothed
 * over 0.15-0.5 em (half the lines), blur of 0.1-0.9 output pixels (70%), ink 0-0.3 and
 * paper 0.7-1 (so the contrast is at least 0.4), noise of 1-10% (60%), binarisation at
 * 30-60% of the way from the darkest pixel to the paper (20%, with blur of at most
 * 0.5 pixels: more joins letters into blobs; from the darkest pixel left after blur and
 * resizing, not the ink level, so thin strokes are not erased). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "line_gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "pngio.h"
#include "resample.h"

#define DEFAULT_HEIGHT 32
#define MIN_HEIGHT 8
#define MAX_HEIGHT 256

int gen_utf8(const char *s, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[0];
    if (c < 0x80) {
        *cp = c;
        return c ? 1 : 0;
    }
    int n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    if (n == 0) return 0;
    uint32_t v = c & (0x7fu >> n);
    for (int i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (u[i] & 0x3fu);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[n] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return n;
}

void rc_gen_line_free(rc_line_gen *g)
{
    if (!g) return;
    for (int i = 0; i < g->nfonts; i++) {
        tr_close(g->font[i]);
        free(g->name[i]);
    }
    free(g->font);
    free(g->name);
    free(g);
}

/* The file of a face name (or the path itself). */
static const char *font_file(const char *spec, char *err, size_t errlen)
{
    if (strchr(spec, '/')) return spec;
    const char *name, *path, *pkg;
    for (int k = 0; (name = rc_gen_line_face(k, &path, &pkg, NULL)) != NULL; k++)
        if (!strcmp(name, spec)) {
            if (!path) gen_fail(err, errlen, "font %s is not installed (apt-get install %s)", spec, pkg);
            return path;
        }
    gen_fail(err, errlen, "unknown font '%s' (rc_gen_line_face lists the faces; a font file is given by its path)",
             spec);
    return NULL;
}

rc_status rc_gen_line_new(rc_line_gen **out, const char *const *fonts, int nfonts, const rc_line_gen_opts *o,
                          char *err, size_t errlen)
{
    *out = NULL;
    rc_line_gen_opts op = {0};
    if (o) op = *o;
    if (op.height == 0) op.height = DEFAULT_HEIGHT;
    if (op.height < MIN_HEIGHT || op.height > MAX_HEIGHT) {
        gen_fail(err, errlen, "line height %d is outside %d..%d", op.height, MIN_HEIGHT, MAX_HEIGHT);
        return RC_ERR_ARG;
    }
    if (!fonts || nfonts < 1) {
        gen_fail(err, errlen, "no fonts given");
        return RC_ERR_ARG;
    }
#ifndef RC_HAVE_FREETYPE
    gen_fail(err, errlen, "%s", gen_freetype_missing());
    return RC_ERR_STATE;
#endif
    if (!png_available()) {
        gen_fail(err, errlen, "%s", png_missing_message());
        return RC_ERR_STATE;
    }
    rc_line_gen *g = calloc(1, sizeof *g);
    if (g) g->font = calloc((size_t)nfonts, sizeof *g->font);
    if (g && g->font) g->name = calloc((size_t)nfonts, sizeof *g->name);
    if (!g || !g->font || !g->name) {
        rc_gen_line_free(g);
        gen_fail(err, errlen, "out of memory");
        return RC_ERR_NOMEM;
    }
    g->o = op;
    g->nfonts = nfonts;
    for (int i = 0; i < nfonts; i++) {
        const char *path = fonts[i] ? font_file(fonts[i], err, errlen) : NULL;
        if (!fonts[i]) gen_fail(err, errlen, "font %d is NULL", i);
        if (!path || tr_open(&g->font[i], path, err, errlen) != 0 || !(g->name[i] = strdup(fonts[i]))) {
            if (path && g->font[i] && !g->name[i]) gen_fail(err, errlen, "out of memory");
            rc_gen_line_free(g);
            return RC_ERR_ARG;
        }
    }
    *out = g;
    return RC_OK;
}

int rc_gen_line_has_char(const rc_line_gen *g, int font, uint32_t cp)
{
    if (!g || font < 0 || font >= g->nfonts) return 0;
    return tr_has(g->font[font], cp);
}

/* A sample's style, every value drawn whether used or not (see the top of the file). */
static void draw_style(line_style *s, double *rot_u, double *elastic_u, int H, int clean, rng_t *r)
{
    double u[16];
    for (int i = 0; i < 16; i++) u[i] = rng_float(r);
    memset(s, 0, sizeof *s);
    warp_params *w = &s->warp;
    w->sx = w->sy = 1;
    *rot_u = 0;
    *elastic_u = 0;
    if (clean) {
        s->px = H;
        s->ink = 0;
        s->paper = 1;
        s->threshold = -1;
        return;
    }
    s->px = H * (0.75 + 1.25 * u[0]);
    s->track = -0.03 + 0.11 * u[1];
    *rot_u = 2 * u[2] - 1;
    w->shear = u[3] < 0.5 ? 0.16 * u[4] - 0.08 : 0;
    w->sx = 0.9 + 0.2 * u[5];
    w->sy = 0.92 + 0.16 * u[6];
    *elastic_u = u[7] < 0.5 ? u[8] : -1;   /* < 0: no elastic field */
    s->blur = u[9] < 0.7 ? 0.1 + 0.8 * u[10] : 0;   /* output pixels */
    s->ink = 0.3 * u[11];
    s->paper = 0.7 + 0.3 * u[12];
    s->noise = u[13] < 0.6 ? 0.01 + 0.09 * u[14] : 0;
    s->threshold = u[15] < 0.2 ? 1 : -1;   /* the level is drawn below, when used */
    if (s->threshold >= 0 && s->blur > 0.5) s->blur = 0.5;   /* more, binarised, joins letters into blobs */
}

/* Margins and the elastic field in pixels at the rendering size, from the rendered box. */
static void draw_geometry(line_style *s, const canvas *c, double rot_u, double elastic_u, int clean, rng_t *r)
{
    double em = s->px, boxh = c->bottom - c->top, inkw = c->right - c->left;
    double u[6];
    for (int i = 0; i < 6; i++) u[i] = rng_float(r);
    warp_params *w = &s->warp;
    if (clean) {
        w->margin_l = w->margin_r = 0.25 * em;
        w->margin_t = w->margin_b = 0.1 * em;
        return;
    }
    double max_rot = 0.25 * boxh / (inkw > 1 ? inkw : 1);
    w->rot = rot_u * (max_rot < 0.035 ? max_rot : 0.035);   /* 0.035 rad = 2 degrees */
    if (elastic_u >= 0) {
        w->elastic_amp = (0.01 + 0.03 * elastic_u) * em;
        w->elastic_sigma = (0.15 + 0.35 * u[0]) * em;
    }
    w->margin_l = (0.05 + 0.75 * u[1]) * em;
    w->margin_r = (0.05 + 0.75 * u[2]) * em;
    w->margin_t = 0.2 * u[3] * boxh;
    w->margin_b = 0.2 * u[4] * boxh;
    /* the elastic field moves ink by up to its amplitude, bilinear sampling by a pixel */
    double least = w->elastic_amp + 1;
    w->margin_l = fmax(w->margin_l, least);
    w->margin_r = fmax(w->margin_r, least);
    w->margin_t = fmax(w->margin_t, least);
    w->margin_b = fmax(w->margin_b, least);
    if (s->threshold >= 0) s->threshold = 0.3 + 0.3 * u[5];   /* a fraction: the level is set after resizing */
}

rc_status rc_gen_line_render(rc_line_gen *g, int font, const char *text, uint64_t seed, unsigned char **pixels,
                             int *width, int *height, char *err, size_t errlen)
{
    *pixels = NULL;
    *width = *height = 0;
    if (!g || font < 0 || font >= g->nfonts || !text) {
        gen_fail(err, errlen, "rc_gen_line_render: %s", !g ? "no generator" : !text ? "no text" : "bad font index");
        return RC_ERR_ARG;
    }
    size_t len = strlen(text);
    uint32_t *cp = malloc((len ? len : 1) * sizeof *cp);
    if (!cp) {
        gen_fail(err, errlen, "out of memory");
        return RC_ERR_NOMEM;
    }
    int n = 0;
    for (size_t i = 0; i < len; n++) {
        int k = gen_utf8(text + i, &cp[n]);
        if (k == 0) {
            free(cp);
            gen_fail(err, errlen, "bad UTF-8 at byte %zu of the text", i + 1);
            return RC_ERR_ARG;
        }
        if (!tr_has(g->font[font], cp[n])) {
            gen_fail(err, errlen, "font %s has no glyph for '%.*s' (U+%04X)", g->name[font], k, text + i,
                     (unsigned)cp[n]);
            free(cp);
            return RC_ERR_ARG;
        }
        i += (size_t)k;
    }
    int H = g->o.height, clean = g->o.clean;
    rng_t r;
    rng_seed(&r, seed);
    line_style s;
    double rot_u, elastic_u;
    draw_style(&s, &rot_u, &elastic_u, H, clean, &r);
    canvas c = {0}, wc = {0};
    float *img = NULL;
    unsigned char *px = NULL;
    rc_status st = RC_ERR_ARG;
    if (tr_render(g->font[font], cp, n, s.px, s.track, 0.5 * s.px, &c, err, errlen) != 0) goto done;
    draw_geometry(&s, &c, rot_u, elastic_u, clean, &r);
    if (warp_line(&c, &s.warp, &r, &wc, err, errlen) != 0) goto done;
    double scale = (double)wc.h / H;   /* rendering pixels per output pixel */
    st = RC_ERR_NOMEM;
    if (blur_gauss(wc.v, wc.w, wc.h, s.blur * scale) != 0) {
        gen_fail(err, errlen, "out of memory");
        goto done;
    }
    size_t nin = (size_t)wc.w * (size_t)wc.h;
    for (size_t i = 0; i < nin; i++) {
        float v = wc.v[i] > 1 ? 1 : wc.v[i];
        wc.v[i] = (float)(s.paper + (s.ink - s.paper) * v);
    }
    int W = (int)resample_width(wc.w, wc.h, H);
    img = malloc((size_t)W * (size_t)H * sizeof *img);
    px = malloc((size_t)W * (size_t)H);
    if (!img || !px || resample_f32(wc.v, wc.w, wc.h, img, W, H) != 0) {
        gen_fail(err, errlen, "out of memory for a %d x %d image", W, H);
        goto done;
    }
    if (s.threshold >= 0) {   /* between the darkest ink that survived blur and resizing and the paper */
        float lo = 1;
        for (size_t i = 0; i < (size_t)W * (size_t)H; i++) lo = img[i] < lo ? img[i] : lo;
        s.threshold = lo + (s.paper - lo) * s.threshold;
    }
    for (size_t i = 0; i < (size_t)W * (size_t)H; i++) {
        double v = img[i];
        if (s.noise > 0) v += s.noise * rng_normal(&r);
        if (s.threshold >= 0) v = v < s.threshold ? 0 : 1;
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        px[i] = (unsigned char)lrint(v * 255);
    }
    *pixels = px;
    *width = W;
    *height = H;
    px = NULL;
    st = RC_OK;
done:
    free(cp);
    canvas_free(&c);
    canvas_free(&wc);
    free(img);
    free(px);
    return st;
}

rc_status rc_gen_line_write_png(const char *path, const unsigned char *pixels, int width, int height, char *err,
                                size_t errlen)
{
    if (!png_available()) {
        gen_fail(err, errlen, "%s", png_missing_message());
        return RC_ERR_STATE;
    }
    if (!path || !pixels) {
        gen_fail(err, errlen, "rc_gen_line_write_png: no %s", path ? "pixels" : "path");
        return RC_ERR_ARG;
    }
    return png_write_gray(path, pixels, width, height, err, errlen) == 0 ? RC_OK : RC_ERR_IO;
}

rc_status rc_gen_line_read_png(const char *path, unsigned char **pixels, int *width, int *height, char *err,
                               size_t errlen)
{
    *pixels = NULL;
    *width = *height = 0;
    if (!png_available()) {
        gen_fail(err, errlen, "%s", png_missing_message());
        return RC_ERR_STATE;
    }
    if (!path) {
        gen_fail(err, errlen, "rc_gen_line_read_png: no path");
        return RC_ERR_ARG;
    }
    FILE *f = fopen(path, "rb");
    int opened = f != NULL;
    if (f) fclose(f);
    if (png_read_gray(path, 0, pixels, width, height, err, errlen) == 0) return RC_OK;
    return opened ? RC_ERR_FORMAT : RC_ERR_IO;
}
