/* Text as a pen trajectory in a Hershey face, in a random style (rc_gen_pen_render).
 *
 * The way through, in font units until the last step:
 *  1. layout: each glyph's strokes placed by its left/right bounds (strokes that start
 *     where the previous one ended are one stroke; strokes retracing another, as the
 *     complex faces draw thick lines, are dropped); in a connected face the letters of
 *     a word form one pen-down chain: each letter's entry stroke (its first stroke that
 *     is not a dot) joined from the previous letter's exit stroke (the one ending
 *     furthest right) by a straight stroke, its other strokes (i-dots, t-bars) written after the letter or after the word;
 *     elsewhere the pen lifts between strokes;
 *  2. densify every stroke to points 0.5 apart and smooth the corners a little;
 *  3. deform: elastic field, baseline drift, rotation, slant;
 *  4. resample each stroke at a varying point spacing (the pen's speed: a random
 *     profile along the stroke, slower in curves), then scale.
 * Every draw comes from one generator seeded by the caller's seed, in a fixed order. */
#include "hershey.h"
#include "gen_io.h"
#include "pen_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rng.h"

#define PI 3.14159265358979323846
#define DENSE_STEP 0.5      /* font units between the points of step 2 */
#define MARK_SIZE 4.0       /* a stroke whose box diagonal is below this is a mark (a dot) */
#define JOIN_MAX 40.0       /* longer joins lift the pen (about two capitals' height) */
#define ELASTIC_WAVES 3

/* ---- a growable set of strokes of double points ---------------------------------------- */

typedef struct dpt { double x, y; } dpt;
typedef struct path {
    dpt *p;
    size_t n, cap;
    size_t *start;      /* [ns + 1] stroke k is p[start[k], start[k + 1]) */
    size_t ns, scap;
    int open;           /* the last stroke may still grow */
    int oom;
} path;

static void path_free(path *a)
{
    free(a->p);
    free(a->start);
    memset(a, 0, sizeof *a);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem) return -1;
        nc *= 2;
    }
    void *q = realloc(*p, nc * elem);
    if (!q) return -1;
    *p = q;
    *cap = nc;
    return 0;
}

/* Ends the open stroke (a stroke without points is dropped). */
static void path_end(path *a)
{
    if (!a->open) return;
    a->open = 0;
    if (a->start[a->ns] == a->n) return;
    a->ns++;
    if (grow((void **)&a->start, &a->scap, a->ns + 1, sizeof *a->start)) {
        a->oom = 1;
        a->ns--;
        a->n = a->start[a->ns];
        return;
    }
    a->start[a->ns] = a->n;
}

/* Starts a new stroke (ending the open one). */
static void path_begin(path *a)
{
    path_end(a);
    if (grow((void **)&a->start, &a->scap, a->ns + 1, sizeof *a->start)) {
        a->oom = 1;
        return;
    }
    a->start[a->ns] = a->n;
    a->open = 1;
}

static void path_add(path *a, double x, double y)
{
    if (!a->open) path_begin(a);
    if (a->oom || grow((void **)&a->p, &a->cap, a->n + 1, sizeof *a->p)) {
        a->oom = 1;
        return;
    }
    a->p[a->n++] = (dpt){ x, y };
}

static dpt path_last(const path *a) { return a->p[a->n - 1]; }
static size_t stroke_len(const path *a, size_t k) { return a->start[k + 1] - a->start[k]; }

/* ---- the style of one sample --------------------------------------------------------- */

typedef struct draw {
    double slant, rotate, scale, aspect, spacing, word_space, size_var;
    double drift_amp, drift_k, drift_phase;
    double ew_amp[ELASTIC_WAVES][2], ew_k[ELASTIC_WAVES][2], ew_phase[ELASTIC_WAVES];
    double step, speed_var, speed_k[2], speed_phase[2];
    double defer;
} draw;

static double uni(rng_t *r, const float lim[2]) { return lim[0] + (lim[1] - lim[0]) * (double)rng_float(r); }
static double uni2(rng_t *r, double lo, double hi) { return lo + (hi - lo) * (double)rng_float(r); }

static void draw_style(draw *d, const rc_pen_style *s, rng_t *r)
{
    d->slant = uni(r, s->slant) * PI / 180;
    d->rotate = uni2(r, -s->rotate, s->rotate) * PI / 180;
    d->scale = uni(r, s->scale);
    d->aspect = uni(r, s->aspect);
    d->spacing = uni(r, s->spacing);
    d->word_space = uni(r, s->word_space);
    d->size_var = s->size_var;
    d->drift_amp = uni2(r, 0, s->drift);
    d->drift_k = 2 * PI / uni2(r, 150, 400);
    d->drift_phase = uni2(r, 0, 2 * PI);
    for (int k = 0; k < ELASTIC_WAVES; k++) {
        double dir = uni2(r, 0, 2 * PI), wdir = uni2(r, 0, 2 * PI), amp = s->jitter * uni2(r, 0.3, 1.0);
        double lambda = uni2(r, 12, 40);
        d->ew_amp[k][0] = amp * cos(dir);
        d->ew_amp[k][1] = amp * sin(dir);
        d->ew_k[k][0] = 2 * PI / lambda * cos(wdir);
        d->ew_k[k][1] = 2 * PI / lambda * sin(wdir);
        d->ew_phase[k] = uni2(r, 0, 2 * PI);
    }
    d->step = uni(r, s->step);
    d->speed_var = s->speed_var;
    for (int k = 0; k < 2; k++) {
        d->speed_k[k] = 2 * PI / uni2(r, 15, 60);
        d->speed_phase[k] = uni2(r, 0, 2 * PI);
    }
    d->defer = s->defer;
}

/* ---- 1. layout ------------------------------------------------------------------------- */

typedef struct gstroke { size_t a, b; } gstroke;   /* vertex range [a, b) of a glyph stroke */

/* The strokes of glyph g: vertex ranges, a stroke starting where the previous one
 * ended merged with it. Returns the count (at most the glyph's vertex count). */
static int glyph_strokes(const hershey_glyph *g, gstroke *out)
{
    int m = 0;
    size_t k = 1, n = (size_t)g->n;
    while (k < n) {
        while (k < n && g->xy[2 * k] == RC_HERSHEY_PEN_UP) k++;
        if (k >= n) break;
        size_t a = k;
        while (k < n && g->xy[2 * k] != RC_HERSHEY_PEN_UP) k++;
        if (m > 0 && out[m - 1].b > out[m - 1].a && g->xy[2 * (out[m - 1].b - 1)] == g->xy[2 * a] &&
            g->xy[2 * (out[m - 1].b - 1) + 1] == g->xy[2 * a + 1]) {
            /* continues the previous stroke: keep one list (the shared vertex is drawn twice,
               harmless once densified) */
            out[m - 1].b = k;
            continue;
        }
        out[m++] = (gstroke){ a, k };
    }
    return m;
}

/* Distance from (x, y) to the segments of stroke s of glyph g (glyph coordinates). */
static double dist_to_stroke(const hershey_glyph *g, gstroke s, double x, double y)
{
    double best = INFINITY;
    int have = 0;
    double px = 0, py = 0;
    for (size_t k = s.a; k < s.b; k++) {
        if (g->xy[2 * k] == RC_HERSHEY_PEN_UP) continue;
        double qx = g->xy[2 * k], qy = g->xy[2 * k + 1];
        if (!have) best = hypot(x - qx, y - qy);
        else {
            double dx = qx - px, dy = qy - py, l2 = dx * dx + dy * dy;
            double u = l2 > 0 ? ((x - px) * dx + (y - py) * dy) / l2 : 0;
            u = u < 0 ? 0 : u > 1 ? 1 : u;
            best = fmin(best, hypot(x - (px + u * dx), y - (py + u * dy)));
        }
        have = 1;
        px = qx;
        py = qy;
    }
    return best;
}

/* Drops the strokes that only retrace earlier ones: the complex faces (scriptc, the
 * duplex and triplex faces, the gothic ones) draw a thick line as several parallel
 * strokes, which a pen writes once. A stroke is a retrace when each of its points
 * (every half unit along it) lies within SHADOW units of a stroke kept before it.
 * Returns the strokes kept, in order. */
#define SHADOW 1.6
static int drop_retraces(const hershey_glyph *g, gstroke *st, int m)
{
    int kept = 0;
    for (int i = 0; i < m; i++) {
        int retrace = kept > 0;
        int have = 0;
        double px = 0, py = 0;
        for (size_t k = st[i].a; k < st[i].b && retrace; k++) {
            if (g->xy[2 * k] == RC_HERSHEY_PEN_UP) continue;
            double qx = g->xy[2 * k], qy = g->xy[2 * k + 1];
            int steps = have ? (int)ceil(hypot(qx - px, qy - py) / 0.5) : 0;
            for (int j = have ? 1 : 0; j <= steps && retrace; j++) {
                double u = steps ? (double)j / steps : 1, x = px + u * (qx - px), y = py + u * (qy - py);
                double best = INFINITY;
                for (int q = 0; q < kept; q++) best = fmin(best, dist_to_stroke(g, st[q], x, y));
                retrace = best <= SHADOW;
            }
            have = 1;
            px = qx;
            py = qy;
        }
        if (!retrace) st[kept++] = st[i];
    }
    return kept;
}

/* Merged strokes are no longer contiguous in the vertex list: walk the vertices of a
 * stroke range skipping pen lifts. */
typedef struct placer {
    const hershey_glyph *g;
    double ox, base, sy;    /* x offset, baseline and height scale of this letter */
} placer;

static dpt place(const placer *pl, size_t k)
{
    double x = pl->g->xy[2 * k], y = pl->g->xy[2 * k + 1];
    return (dpt){ pl->ox + x, pl->base + (y - pl->base) * pl->sy };
}

static void add_stroke(path *a, const placer *pl, gstroke s)
{
    for (size_t k = s.a; k < s.b; k++)
        if (pl->g->xy[2 * k] != RC_HERSHEY_PEN_UP) {
            dpt q = place(pl, k);
            path_add(a, q.x, q.y);
        }
}

static dpt stroke_first(const placer *pl, gstroke s) { return place(pl, s.a); }
static dpt stroke_last(const placer *pl, gstroke s) { return place(pl, s.b - 1); }

static int is_mark(const placer *pl, gstroke s)
{
    double x0 = 1e9, x1 = -1e9, y0 = 1e9, y1 = -1e9;
    for (size_t k = s.a; k < s.b; k++) {
        if (pl->g->xy[2 * k] == RC_HERSHEY_PEN_UP) continue;
        dpt q = place(pl, k);
        x0 = fmin(x0, q.x);
        x1 = fmax(x1, q.x);
        y0 = fmin(y0, q.y);
        y1 = fmax(y1, q.y);
    }
    return hypot(x1 - x0, y1 - y0) < MARK_SIZE;
}

static int is_letter(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* A stroke kept for after the word, with the placement of its letter. */
typedef struct later_stroke { gstroke s; placer pl; } later_stroke;

/* The state of the chain of one word in a connected face. */
typedef struct chain {
    int down;            /* the open stroke is the word's pen-down chain */
    int resume;          /* the pen comes down again at `at` before the next join */
    dpt at;
    later_stroke *later; /* strokes written after the word */
    size_t nlater, cap_later;
    int defer;           /* this word writes its marks after the word */
} chain;

/* Joins the pen-down chain to point q: a straight stroke from where the pen is, or a
 * lift when that is too far. */
static void join_to(path *a, chain *ch, dpt q)
{
    if (ch->resume) {
        path_begin(a);
        path_add(a, ch->at.x, ch->at.y);
        ch->resume = 0;
        ch->down = 1;
    }
    if (!ch->down || !a->open) {
        path_begin(a);
        ch->down = 1;
        return;
    }
    dpt p = path_last(a);
    if (hypot(q.x - p.x, q.y - p.y) > JOIN_MAX) path_begin(a);
}

/* Ends the word: the chain's stroke, then the strokes kept for after the word. */
static void end_word(path *a, chain *ch)
{
    path_end(a);
    for (size_t i = 0; i < ch->nlater; i++) {
        path_begin(a);
        add_stroke(a, &ch->later[i].pl, ch->later[i].s);
        path_end(a);
    }
    ch->nlater = 0;
    ch->down = ch->resume = 0;
}

static void keep_later(path *a, chain *ch, const placer *pl, gstroke s)
{
    if (grow((void **)&ch->later, &ch->cap_later, ch->nlater + 1, sizeof *ch->later)) {
        a->oom = 1;
        return;
    }
    ch->later[ch->nlater++] = (later_stroke){ s, *pl };
}

/* One letter of a connected face. Its chain: the entry stroke (the first that is not
 * a mark: the glyphs list strokes in writing order, and an i's dot may come first), then
 * in order the strokes up to the exit stroke (the one ending furthest right) that start
 * within JOIN_NEAR of where the pen is (the scripts faces restart a stroke on the line
 * just drawn, as in m and n), and the exit itself, each joined with the pen down. Its
 * other strokes (i-dots, t-bars, the cross of an x) are written after the letter or
 * after the word. on[m] is scratch. */
#define JOIN_NEAR 5.0
static void connected_letter(path *a, chain *ch, const placer *pl, const gstroke *st, int m, unsigned char *on)
{
    int entry = -1, exit = -1;
    for (int pass = 0; pass < 2 && entry < 0; pass++)   /* marks only when nothing else */
        for (int i = 0; i < m; i++) {
            if (pass == 0 && is_mark(pl, st[i])) continue;
            if (entry < 0) entry = i;
            if (exit < 0 || stroke_last(pl, st[i]).x >= stroke_last(pl, st[exit]).x) exit = i;
        }
    memset(on, 0, (size_t)m);
    join_to(a, ch, stroke_first(pl, st[entry]));
    add_stroke(a, pl, st[entry]);
    on[entry] = 1;
    for (int i = entry + 1; i <= exit; i++) {
        dpt p = path_last(a), q = stroke_first(pl, st[i]);
        double gap = hypot(q.x - p.x, q.y - p.y);
        if (i != exit && (gap > JOIN_NEAR || is_mark(pl, st[i]))) continue;
        if (gap > JOIN_MAX) path_begin(a);
        add_stroke(a, pl, st[i]);
        on[i] = 1;
    }
    dpt out = path_last(a);
    int after = 0;
    for (int i = 0; i < m; i++) {
        if (on[i]) continue;
        if (ch->defer) keep_later(a, ch, pl, st[i]);
        else {
            if (!after) path_end(a);
            after = 1;
            path_begin(a);
            add_stroke(a, pl, st[i]);
            path_end(a);
        }
    }
    if (after) {   /* the pen comes back down at the letter's exit for the next join */
        ch->down = 0;
        ch->resume = 1;
        ch->at = out;
    }
}

/* Lays out text in font units into a. */
static void layout(path *a, const rc_hershey_font *f, const char *text, const draw *d, rng_t *r)
{
    size_t len = strlen(text);
    gstroke *st = NULL;
    unsigned char *on = NULL;
    size_t st_cap = 0, on_cap = 0;
    chain ch;
    memset(&ch, 0, sizeof ch);
    double cursor = 0;
    int in_word = 0;
    for (size_t i = 0; i < len && !a->oom; i++) {
        int c = (unsigned char)text[i];
        const hershey_glyph *g = hershey_get(f, c);
        double advance = g->right - g->left;
        if (c == ' ') {
            if (in_word) end_word(a, &ch);
            in_word = 0;
            cursor += advance * d->word_space;
            continue;
        }
        if (!in_word) ch.defer = rng_float(r) < d->defer;
        in_word = 1;
        placer pl = { g, cursor - g->left, 9.0, 1.0 + d->size_var * rng_normal(r) };
        if (grow((void **)&st, &st_cap, (size_t)g->n, sizeof *st) || grow((void **)&on, &on_cap, (size_t)g->n, 1)) {
            a->oom = 1;
            break;
        }
        int m = drop_retraces(g, st, glyph_strokes(g, st));
        if (f->connected && is_letter(c) && m > 0) connected_letter(a, &ch, &pl, st, m, on);
        else {
            if (f->connected) end_word(a, &ch);   /* digits and punctuation stand apart */
            for (int k = 0; k < m; k++) {
                path_begin(a);
                add_stroke(a, &pl, st[k]);
                path_end(a);
            }
        }
        cursor += advance + d->spacing + 0.5 * rng_normal(r);
    }
    end_word(a, &ch);
    free(st);
    free(on);
    free(ch.later);
}

/* ---- 2. densify and smooth; 3. deform ---------------------------------------------------- */

static void densify(const path *in, path *out)
{
    for (size_t k = 0; k < in->ns && !out->oom; k++) {
        const dpt *p = in->p + in->start[k];
        size_t n = stroke_len(in, k);
        path_begin(out);
        path_add(out, p[0].x, p[0].y);
        for (size_t i = 1; i < n; i++) {
            double dx = p[i].x - p[i - 1].x, dy = p[i].y - p[i - 1].y, l = hypot(dx, dy);
            if (l == 0) continue;
            int m = (int)ceil(l / DENSE_STEP);
            for (int j = 1; j <= m; j++) path_add(out, p[i - 1].x + dx * j / m, p[i - 1].y + dy * j / m);
        }
        path_end(out);
    }
}

/* Two passes of a [1 2 1]/4 filter inside each stroke (its ends stay). */
static void smooth(path *a)
{
    for (size_t k = 0; k < a->ns; k++) {
        dpt *p = a->p + a->start[k];
        size_t n = stroke_len(a, k);
        for (int pass = 0; pass < 2 && n > 2; pass++) {
            dpt prev = p[0];
            for (size_t i = 1; i + 1 < n; i++) {
                dpt cur = p[i];
                p[i].x = 0.25 * prev.x + 0.5 * cur.x + 0.25 * p[i + 1].x;
                p[i].y = 0.25 * prev.y + 0.5 * cur.y + 0.25 * p[i + 1].y;
                prev = cur;
            }
        }
    }
}

static void deform(path *a, const draw *d)
{
    double cr = cos(d->rotate), sr = sin(d->rotate), sh = tan(d->slant);
    for (size_t i = 0; i < a->n; i++) {
        double x = a->p[i].x, y = a->p[i].y, ex = 0, ey = 0;
        for (int k = 0; k < ELASTIC_WAVES; k++) {
            double w = sin(d->ew_k[k][0] * x + d->ew_k[k][1] * y + d->ew_phase[k]);
            ex += d->ew_amp[k][0] * w;
            ey += d->ew_amp[k][1] * w;
        }
        x += ex;
        y += ey + d->drift_amp * sin(d->drift_k * x + d->drift_phase);
        double rx = cr * x - sr * y, ry = sr * x + cr * y;
        a->p[i] = (dpt){ rx - ry * sh, ry };
    }
}

/* ---- 4. resample at the pen's speed, scale ---------------------------------------------- */

static double step_at(const draw *d, double s)
{
    double v = (sin(d->speed_k[0] * s + d->speed_phase[0]) + sin(d->speed_k[1] * s + d->speed_phase[1])) / sqrt(2.0);
    return d->step * exp(d->speed_var * v);
}

/* v rounded to hundredths as the float a reader of its two-decimal text gets: q / 100
 * in float arithmetic is correctly rounded, like strtof, while q fits a float exactly. */
static float round2(double v)
{
    double q = nearbyint(v * 100.0);
    if (fabs(q) < 16777216.0) return (float)q / 100.0f;
    return (float)(q / 100.0);
}

static int emit(rc_pen_traj *t, double x, double y, int end)
{
    if (t->n == t->cap) {
        size_t nc = t->cap ? 2 * t->cap : 256;
        if (nc > SIZE_MAX / sizeof *t->pts) return -1;
        rc_pen_point *np = realloc(t->pts, nc * sizeof *np);
        if (!np) return -1;
        t->pts = np;
        t->cap = nc;
    }
    t->pts[t->n++] = (rc_pen_point){ round2(x), round2(y), end };
    return 0;
}

/* The pen slows down in curves: speed ~ curvature^(-1/3) (the two-thirds power law of
 * Lacquaniti, Terzuolo & Viviani 1983), as a factor in [0.3, 1] of the point spacing at
 * dense point i of a stroke of n points (1 where the radius of curvature, measured
 * over 2 units either side, is 4 units or more). */
static double slow_down(const dpt *p, size_t n, size_t i)
{
    if (i < 2 || i + 2 >= n) return 1;
    double ax = p[i].x - p[i - 2].x, ay = p[i].y - p[i - 2].y, bx = p[i + 2].x - p[i].x, by = p[i + 2].y - p[i].y;
    double la = hypot(ax, ay), lb = hypot(bx, by);
    if (la == 0 || lb == 0) return 1;
    double c = (ax * bx + ay * by) / (la * lb);
    double kappa = acos(c < -1 ? -1 : c > 1 ? 1 : c) / (0.5 * (la + lb));
    if (kappa <= 0.25) return 1;
    double f = pow(4 * kappa, -1.0 / 3);
    return f < 0.3 ? 0.3 : f;
}

/* Walks each stroke's polyline putting the next point step_at(arc length) further
 * (times the stroke's own random speed and the slow-down in curves where the pen is),
 * always keeping the stroke's first and last points. */
static int resample(const path *a, const draw *d, rng_t *r, rc_pen_traj *t)
{
    double sc = d->scale, sx = d->scale * d->aspect, arc0 = 0;
    for (size_t k = 0; k < a->ns; k++) {
        const dpt *p = a->p + a->start[k];
        size_t n = stroke_len(a, k);
        double own = exp(0.5 * d->speed_var * rng_normal(r));
        if (emit(t, p[0].x * sx, p[0].y * sc, n == 1)) return -1;
        if (n == 1) continue;
        double s = 0, next = step_at(d, arc0) * own, last = 0;
        for (size_t i = 1; i < n; i++) {
            double dx = p[i].x - p[i - 1].x, dy = p[i].y - p[i - 1].y, l = hypot(dx, dy);
            while (l > 0 && s + l >= last + next) {   /* a point inside this segment */
                double u = (last + next - s) / l;
                if (emit(t, (p[i - 1].x + dx * u) * sx, (p[i - 1].y + dy * u) * sc, 0)) return -1;
                last += next;
                next = step_at(d, arc0 + last) * own * slow_down(p, n, i);
            }
            s += l;
        }
        /* the stroke's end: replaces a point just before it, else is added */
        if (last > 0 && s - last < 0.3 * next) t->n--;
        if (emit(t, p[n - 1].x * sx, p[n - 1].y * sc, 1)) return -1;
        arc0 += s;
    }
    return 0;
}

/* ---- the public functions ------------------------------------------------------------ */

void rc_pen_traj_free(rc_pen_traj *t)
{
    if (!t) return;
    free(t->pts);
    memset(t, 0, sizeof *t);
}

rc_pen_style rc_gen_pen_style_default(void)
{
    rc_pen_style s = {
        .slant = { -15, 15 },
        .rotate = 2,
        .scale = { 0.8, 1.6 },
        .aspect = { 0.8, 1.25 },
        .spacing = { -1, 3 },
        .word_space = { 0.6, 1.1 },
        .size_var = 0.06f,
        .drift = 3,
        .jitter = 1.2f,
        .step = { 3, 6 },
        .speed_var = 0.35f,
        .defer = 0.5f,
    };
    return s;
}

/* A range [lo, hi] with lo <= hi, both finite, and lo >= min. */
static int bad_range(const float v[2], double min) { return !(isfinite(v[0]) && isfinite(v[1]) && v[0] <= v[1] && v[0] >= min); }

int pen_style_check(const rc_pen_style *s, char *err, size_t errlen)
{
    const char *what = NULL;
    if (bad_range(s->slant, -60) || s->slant[1] > 60) what = "slant (degrees, within -60..60)";
    else if (!(s->rotate >= 0 && s->rotate <= 45)) what = "rotate (degrees, 0..45)";
    else if (bad_range(s->scale, 0) || !(s->scale[0] > 0)) what = "scale (> 0)";
    else if (bad_range(s->aspect, 0) || !(s->aspect[0] > 0)) what = "aspect (> 0)";
    else if (bad_range(s->spacing, -20) || s->spacing[1] > 100) what = "spacing (font units, -20..100)";
    else if (bad_range(s->word_space, 0) || s->word_space[1] > 100) what = "word_space (0..100)";
    else if (!(s->size_var >= 0 && s->size_var <= 0.5)) what = "size_var (0..0.5)";
    else if (!(s->drift >= 0 && s->drift <= 100)) what = "drift (font units, 0..100)";
    else if (!(s->jitter >= 0 && s->jitter <= 20)) what = "jitter (font units, 0..20)";
    else if (bad_range(s->step, 0.05) || s->step[1] > 100) what = "step (font units, 0.05..100)";
    else if (!(s->speed_var >= 0 && s->speed_var <= 2)) what = "speed_var (0..2)";
    else if (!(s->defer >= 0 && s->defer <= 1)) what = "defer (a probability)";
    if (!what) return 0;
    gen_fail(err, errlen, "pen style: bad %s", what);
    return -1;
}

rc_status rc_gen_pen_render(const rc_hershey_font *f, const char *text, const rc_pen_style *s, uint64_t seed,
                            rc_pen_traj *out, char *err, size_t errlen)
{
    if (!out) {
        gen_fail(err, errlen, "rc_gen_pen_render: no trajectory to fill");
        return RC_ERR_ARG;
    }
    rc_pen_traj_free(out);
    if (!f || !text) {
        gen_fail(err, errlen, "rc_gen_pen_render: %s", !f ? "no face" : "no text");
        return RC_ERR_ARG;
    }
    rc_pen_style def = rc_gen_pen_style_default();
    if (!s) s = &def;
    if (pen_style_check(s, err, errlen)) return RC_ERR_ARG;
    int drawn = 0;
    for (size_t i = 0; text[i]; i++) {
        int c = (unsigned char)text[i];
        if (!hershey_get(f, c)) {
            if (c >= 0x20 && c < 0x7f)
                gen_fail(err, errlen, "text \"%.60s\": the face %s has no glyph for '%c' (character %zu)", text, f->name,
                     c, i + 1);
            else
                gen_fail(err, errlen, "text \"%.60s\": the face %s has no glyph for byte 0x%02x (character %zu; the "
                     "Hershey faces draw ASCII)", text, f->name, (unsigned)c, i + 1);
            return RC_ERR_ARG;
        }
        drawn |= c != ' ';
    }
    if (!drawn) {
        gen_fail(err, errlen, "text \"%.60s\": nothing to write (empty, or only spaces)", text);
        return RC_ERR_ARG;
    }
    rng_t r;
    rng_seed(&r, seed);
    draw d;
    draw_style(&d, s, &r);
    path laid = { 0 }, dense = { 0 };
    layout(&laid, f, text, &d, &r);
    if (!laid.oom) densify(&laid, &dense);
    int oom = laid.oom || dense.oom;
    path_free(&laid);
    if (!oom) {
        smooth(&dense);
        deform(&dense, &d);
        oom = resample(&dense, &d, &r, out) != 0;
    }
    path_free(&dense);
    if (oom) {
        rc_pen_traj_free(out);
        gen_fail(err, errlen, "rc_gen_pen_render: out of memory");
        return RC_ERR_NOMEM;
    }
    return RC_OK;
}
