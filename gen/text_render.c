/* A line of text rendered with FreeType: see line_gen.h.
 *
 * Layout in two passes: the first loads each glyph for its unhinted advance
 * (linearHoriAdvance) and the font's pair kerning, placing glyphs at fractional pen
 * positions; the second renders each glyph shifted by its position's fraction of a
 * pixel (FT_Set_Transform), with light hinting (vertical only, which keeps those
 * fractional positions), into 8-bit coverage, and takes the maximum with what is on
 * the canvas (overlapping glyphs do not add up beyond full ink). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "line_gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void canvas_free(canvas *c)
{
    free(c->v);
    memset(c, 0, sizeof *c);
}

int canvas_alloc(canvas *c, int w, int h, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (w < 1 || h < 1 || (size_t)w > SIZE_MAX / sizeof(float) / (size_t)h)
        return gen_fail(err, errlen, "a %d x %d image cannot be allocated", w, h);
    c->v = calloc((size_t)w * (size_t)h, sizeof *c->v);
    if (!c->v) return gen_fail(err, errlen, "out of memory for a %d x %d image", w, h);
    c->w = w;
    c->h = h;
    return 0;
}

#ifdef RC_HAVE_FREETYPE
#include <ft2build.h>
#include FT_FREETYPE_H

struct tr_font {
    FT_Library lib;
    FT_Face face;
};

void tr_close(tr_font *f)
{
    if (!f) return;
    if (f->face) FT_Done_Face(f->face);
    if (f->lib) FT_Done_FreeType(f->lib);
    free(f);
}

int tr_open(tr_font **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    tr_font *f = calloc(1, sizeof *f);
    if (!f) return gen_fail(err, errlen, "%s: out of memory", path);
    FT_Error e = FT_Init_FreeType(&f->lib);
    if (e) {
        tr_close(f);
        return gen_fail(err, errlen, "%s: FreeType cannot start (error %d)", path, (int)e);
    }
    e = FT_New_Face(f->lib, path, 0, &f->face);
    if (e) {
        f->face = NULL;
        tr_close(f);
        return gen_fail(err, errlen, "%s: FreeType cannot read this font (error %d)", path, (int)e);
    }
    if (!FT_IS_SCALABLE(f->face)) {
        tr_close(f);
        return gen_fail(err, errlen, "%s: not a scalable font", path);
    }
    if (FT_Select_Charmap(f->face, FT_ENCODING_UNICODE)) {
        tr_close(f);
        return gen_fail(err, errlen, "%s: the font has no Unicode character map", path);
    }
    *out = f;
    return 0;
}

int tr_has(tr_font *f, uint32_t cp)
{
    return FT_Get_Char_Index(f->face, cp) != 0;
}

void tr_version(char *buf, size_t len)
{
    FT_Library lib;
    FT_Int a = 0, b = 0, c = 0;
    if (FT_Init_FreeType(&lib) == 0) {
        FT_Library_Version(lib, &a, &b, &c);
        FT_Done_FreeType(lib);
    }
    snprintf(buf, len, "FreeType %d.%d.%d", (int)a, (int)b, (int)c);
}

int tr_render(tr_font *f, const uint32_t *cp, int n, double px, double track, double pad, canvas *c,
              char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    FT_Face face = f->face;
    if (n < 1) return gen_fail(err, errlen, "nothing to render");
    if (!(px >= 2 && px <= 4096)) return gen_fail(err, errlen, "font size %g pixels is outside 2..4096", px);
    if (FT_Set_Char_Size(face, 0, (FT_F26Dot6)lround(px * 64), 72, 72))
        return gen_fail(err, errlen, "the font cannot be set to %g pixels", px);
    double upem = face->units_per_EM ? face->units_per_EM : 1000;
    double asc = face->ascender * px / upem, desc = -face->descender * px / upem;
    if (!(asc > 0)) asc = 0.8 * px;
    if (!(desc >= 0)) desc = 0.2 * px;
    double *pos = malloc((size_t)n * sizeof *pos);
    FT_UInt *gi = malloc((size_t)n * sizeof *gi);
    if (!pos || !gi) {
        free(pos);
        free(gi);
        return gen_fail(err, errlen, "out of memory");
    }
    /* pass 1: pen positions */
    FT_Set_Transform(face, NULL, NULL);
    double x = 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        gi[i] = FT_Get_Char_Index(face, cp[i]);
        if (!gi[i]) {
            rc = gen_fail(err, errlen, "the font has no glyph for U+%04X", (unsigned)cp[i]);
            break;
        }
        if (i > 0 && FT_HAS_KERNING(face)) {
            FT_Vector k;
            if (FT_Get_Kerning(face, gi[i - 1], gi[i], FT_KERNING_UNSCALED, &k) == 0) x += k.x * px / upem;
        }
        pos[i] = x;
        if (FT_Load_Glyph(face, gi[i], FT_LOAD_NO_BITMAP | FT_LOAD_NO_HINTING)) {
            rc = gen_fail(err, errlen, "the font cannot load the glyph of U+%04X", (unsigned)cp[i]);
            break;
        }
        x += face->glyph->linearHoriAdvance / 65536.0 + track * px;
    }
    /* the canvas: the advance width and the line box with pad all round (glyphs that
       reach beyond their advance or the ascender land in the pad; beyond it, clipped) */
    int w = (int)ceil(x + 2 * pad + px), h = (int)ceil(asc + desc + 2 * pad);
    if (rc == 0) rc = canvas_alloc(c, w, h, err, errlen);
    double x0 = pad + 0.0, base = floor(pad + asc + 0.5);
    int ink_l = w, ink_r = -1, ink_t = h, ink_b = -1;
    for (int i = 0; i < n && rc == 0; i++) {
        double gx = x0 + pos[i], fx = floor(gx);
        FT_Vector delta = {(FT_Pos)lround((gx - fx) * 64), 0};
        FT_Set_Transform(face, NULL, &delta);
        if (FT_Load_Glyph(face, gi[i], FT_LOAD_NO_BITMAP | FT_LOAD_TARGET_LIGHT) ||
            FT_Render_Glyph(face->glyph, FT_RENDER_MODE_NORMAL)) {
            rc = gen_fail(err, errlen, "the font cannot render the glyph of U+%04X", (unsigned)cp[i]);
            break;
        }
        const FT_Bitmap *bm = &face->glyph->bitmap;
        if (bm->pixel_mode != FT_PIXEL_MODE_GRAY && bm->rows > 0) {
            rc = gen_fail(err, errlen, "the glyph of U+%04X rendered in pixel mode %d, not gray", (unsigned)cp[i],
                          (int)bm->pixel_mode);
            break;
        }
        int ox = (int)fx + face->glyph->bitmap_left, oy = (int)base - face->glyph->bitmap_top;
        float scale = bm->num_grays > 1 ? 1.0f / (float)(bm->num_grays - 1) : 1.0f;
        for (unsigned r = 0; r < bm->rows; r++) {
            int y = oy + (int)r;
            if (y < 0 || y >= h) continue;
            const unsigned char *src = bm->buffer + (long)r * bm->pitch;
            float *dst = c->v + (size_t)y * (size_t)w;
            for (unsigned k = 0; k < bm->width; k++) {
                int xx = ox + (int)k;
                if (xx < 0 || xx >= w || !src[k]) continue;
                float v = src[k] * scale;
                if (v > dst[xx]) dst[xx] = v;
                if (xx < ink_l) ink_l = xx;
                if (xx > ink_r) ink_r = xx;
                if (y < ink_t) ink_t = y;
                if (y > ink_b) ink_b = y;
            }
        }
    }
    FT_Set_Transform(face, NULL, NULL);
    free(pos);
    free(gi);
    if (rc == 0 && ink_r < 0) rc = gen_fail(err, errlen, "the text has no ink (only spaces?)");
    if (rc != 0) {
        canvas_free(c);
        return -1;
    }
    /* the font's line box, grown to the ink (accents above the ascender, descenders below
       the descender: P052's g, hinting's rounding) */
    c->top = fmin(base - asc, ink_t);
    c->bottom = fmax(base + desc, ink_b + 1);
    c->left = ink_l;
    c->right = ink_r + 1;
    return 0;
}

#else /* !RC_HAVE_FREETYPE */

struct tr_font { int unused; };

int tr_open(tr_font **f, const char *path, char *err, size_t errlen)
{
    *f = NULL;
    return gen_fail(err, errlen, "%s: %s", path, gen_freetype_missing());
}

void tr_close(tr_font *f)
{
    (void)f;
}

int tr_has(tr_font *f, uint32_t cp)
{
    (void)f;
    (void)cp;
    return 0;
}

void tr_version(char *buf, size_t len)
{
    snprintf(buf, len, "no FreeType");
}

int tr_render(tr_font *f, const uint32_t *cp, int n, double px, double track, double pad, canvas *c,
              char *err, size_t errlen)
{
    (void)f, (void)cp, (void)n, (void)px, (void)track, (void)pad;
    memset(c, 0, sizeof *c);
    return gen_fail(err, errlen, "%s", gen_freetype_missing());
}

#endif
