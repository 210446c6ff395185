/* Internal: the pieces of the printed-line generator (rc_gen_line_*, rc_gen_lines in
 * recur.h). gen/ sits on base/ alone.
 *
 *   fonts.c       the faces recur knows (Debian's DejaVu, Liberation, FreeFont, URW
 *                 base35 files) and font lists ("DejaVuSans,P052,/path/x.ttf")
 *   text_render.c FreeType: glyph coverage of a line of text on a float canvas
 *   degrade.c     warps (affine, elastic), blur, ink and paper levels, noise, binarisation
 *   line_gen.c    one line image: render, warp and crop, degrade, resize to the height
 *   line_text.c   the text: corpus files cut into lines of a length range
 *   line_set.c    a data set: train, valid, test, test-fonts folders of PNG + .gt.txt
 *
 * Errors follow data.h: 0, or -1 with a message in err. */
#ifndef RC_GEN_LINE_GEN_H
#define RC_GEN_LINE_GEN_H

#include <stddef.h>
#include <stdint.h>
#include "recur.h"
#include "gen_io.h"
#include "rng.h"

/* The message of a build without FreeType. */
const char *gen_freetype_missing(void);

/* ---- fonts (fonts.c) ---------------------------------------------------------------- */

typedef struct font_list {
    int n;
    char **name;        /* [n] face names (a font file's base name when given by path) */
    char **path;        /* [n] font files */
} font_list;

void font_list_free(font_list *l);
/* The faces a list names (NULL or "": every usual face; "none": no face), each entry
 * a face name, a family (the name's part before '-': "P052" is P052-Roman, P052-Bold,
 * ...), "all" (every known installed face) or a font file path (holding '/'); faces
 * in `minus` are left out. An unknown name, a face not installed (naming its
 * package) or an unreadable file is an error. Duplicates are dropped, order kept. */
int font_list_parse(font_list *l, const char *spec, const font_list *minus, char *err, size_t errlen);

/* ---- rendering (text_render.c) ------------------------------------------------------ */

/* A gray float image; for rendered text, ink coverage 0..1 (1 = ink). */
typedef struct canvas {
    int w, h;
    float *v;               /* [h*w], row-major */
    double top, bottom;     /* the line box: the font's ascender and descender rows, grown to
                               the ink's first row and one past its last */
    double left, right;     /* the ink's first column and one past its last */
} canvas;

void canvas_free(canvas *c);
/* A canvas of w x h zeros. */
int canvas_alloc(canvas *c, int w, int h, char *err, size_t errlen);

typedef struct tr_font tr_font;

/* Opens a font file for rendering. */
int tr_open(tr_font **f, const char *path, char *err, size_t errlen);
void tr_close(tr_font *f);
/* 1 when the font maps code point cp to a glyph (FT_Get_Char_Index), else 0. */
int tr_has(tr_font *f, uint32_t cp);
/* Renders code points cp[0..n) at em size px (pixels), letters spaced by `track` em
 * more than the font says, on a canvas with `pad` pixels around the line box. Every
 * character must have a glyph (tr_has); a line without ink is an error. */
int tr_render(tr_font *f, const uint32_t *cp, int n, double px, double track, double pad, canvas *c,
              char *err, size_t errlen);
/* "FreeType X.Y.Z" of the linked library, for the record of a data set. */
void tr_version(char *buf, size_t len);

/* ---- degradations (degrade.c) ------------------------------------------------------- */

typedef struct warp_params {
    double rot;             /* rotation, radians (positive: counter-clockwise on the page) */
    double shear;           /* x shifted by shear * (baseline - y): > 0 leans right like italics */
    double sx, sy;          /* scales */
    double elastic_amp;     /* largest displacement of the elastic field, pixels (0: none) */
    double elastic_sigma;   /* its smoothness: the Gaussian that smooths white noise, pixels */
    double margin_l, margin_r, margin_t, margin_b;   /* paper around the warped line box, pixels */
} warp_params;

/* The warped line: the line box of `in` (top..bottom rows, left..right ink columns)
 * transformed about its centre, bounded, widened by the margins; *out is that region
 * (a new canvas), each pixel sampled bilinearly from `in` through the inverse
 * transform plus the elastic displacement (zero outside `in`). */
int warp_line(const canvas *in, const warp_params *p, rng_t *r, canvas *out, char *err, size_t errlen);
/* Gaussian blur in place (sigma in pixels; <= 0: nothing). */
int blur_gauss(float *v, int w, int h, double sigma);
/* Smoothed white noise: v[h*w] of N(0,1) values blurred by sigma and scaled so the
 * largest magnitude is amp. */
int smooth_noise(float *v, int w, int h, double sigma, double amp, rng_t *r);

/* ---- text (line_text.c) ----------------------------------------------------------- */

typedef struct text_pool {
    int n;
    char **line;            /* [n] distinct lines, UTF-8 */
} text_pool;

void text_pool_free(text_pool *p);
/* Lines of min_chars..max_chars characters cut at spaces from a text file or a folder
 * of them (hidden files, symbolic links and fortune index files *.dat skipped), whose
 * characters all pass ok(ctx, cp): paragraphs (separated by blank lines or fortune's
 * "%" lines) with white space runs made one space, cut into lines of target lengths
 * drawn by `seed`; a paragraph with invalid UTF-8 or control characters is skipped, a
 * character failing ok ends a line there. Duplicates are dropped; the order is shuffled
 * by `seed`. An error when the text gives no line. */
int text_pool_load(text_pool *p, const char *path, int min_chars, int max_chars, uint64_t seed,
                   int (*ok)(void *ctx, uint32_t cp), void *ctx, char *err, size_t errlen);
/* The code point at s (UTF-8, NUL-terminated and valid): its bytes count. */
int gen_utf8(const char *s, uint32_t *cp);

/* ---- the generator (line_gen.c) --------------------------------------------------- */

struct rc_line_gen {
    int nfonts;
    tr_font **font;
    char **name;
    rc_line_gen_opts o;
};

/* The degradations of a sample drawn from r, or none when o->clean. */
typedef struct line_style {
    double px;              /* em size, pixels */
    double track;           /* extra letter spacing, em */
    warp_params warp;
    double blur;            /* Gaussian sigma at render scale, pixels */
    double ink, paper;      /* gray levels, 0..1 */
    double noise;           /* additive Gaussian noise sigma after resizing, gray levels */
    double threshold;       /* binarisation: a fraction of the way from the darkest pixel (after blur and
                               resizing) to the paper, or < 0: none */
} line_style;

#endif
