/* OP_FUSED: a group of elementwise ops run as one loop (see fused.h).
 *
 * The node's value is cut into tiles of whole rows (or, for wide rows, blocks of a
 * few rows by a column chunk) small enough that the registers of the program, one
 * tile buffer per instruction, stay in cache. Forward evaluates the instructions one
 * after another over a tile, reading the external operands in place (windows and
 * broadcasts by strides) and writing only the result, plus the results of
 * transcendentals when the reverse sweep will want them (the node's scratch).
 * Backward, per tile, recomputes from the inputs the cheap values the derivatives
 * read (the kept ones and the result are read back), then runs the instructions in
 * reverse, accumulating register gradients in tile buffers and adding
 * into the external operands' gradients; a broadcast operand's gradient is reduced per
 * tile and the tiles' sums are added in tile order, whether the tiles ran on one
 * thread or several, so results do not depend on the thread count.
 *
 * The formulas are elementwise.h's, as in op_elementwise.c, and the instruction
 * cases are made from elementwise_ops.def. When a test swaps a kernel of the op
 * table (to prove that the gradient check notices), a program using that op runs
 * through the table's kernels tile by tile instead, so the swap still takes effect. */
/* fastmath.h's exp, sigmoid and tanh clamp with conditionals, which GCC turns into
 * vector selects only when it need not preserve floating-point exception flags;
 * the values computed are the same either way. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "elementwise.h"
#include "fused.h"
#include "kernels.h"

/* Bytes of register tiles one program may use per thread in forward (twice that in
 * backward); the tile size follows from it and the number of instructions. */
#ifndef FZ_TILE_BYTES
#define FZ_TILE_BYTES (32 * 1024)
#endif
/* Elements from which a fused loop is split across threads: a fused step is several
 * passes of transcendentals over its elements, worth two threads from a few thousand
 * (measured, 2 threads: LSTM 50x32x128x128 10.4 -> 9.4-9.7 ms per training step with
 * 4096 or 2048 instead of OP_PAR_MIN; 2048 also splits 35x20x200x200's 4000-element steps). */
#ifndef FZ_PAR_MIN
#define FZ_PAR_MIN 2048
#endif

void fused_prog_free(fused_prog *p)
{
    if (!p) return;
    free(p->ins);
    free(p->ext);
    free(p);
}

int fused_op_ok(int op) { return ew_is(op); }

static int is_binary(int op) { return ew_arity(op) == 2; }

/* ---- geometry ------------------------------------------------------------------- */

typedef struct geom {
    size_t R, C, N;      /* rows, columns, elements of the value */
    size_t tr, tc;       /* tile rows, tile columns */
    size_t nrb, ncb, ntiles;
    size_t T;            /* elements of a tile buffer (tr * tc) */
} geom;

static geom geometry(const fused_prog *P, const tensor *out)
{
    geom g;
    g.N = out->size;
    g.C = (size_t)tensor_cols(out);
    g.R = g.N / g.C;
    size_t t = FZ_TILE_BYTES / (sizeof(float) * (size_t)(P->nins + 1));
    t = t / 16 * 16;
    if (t < 64) t = 64;
    if (t > 2048) t = 2048;
    if (g.C <= t) {
        g.tc = g.C;
        g.tr = t / g.C;
    } else {
        g.tc = t / 4;
        g.tr = 4;
    }
    if (g.tr > g.R) g.tr = g.R;
    g.nrb = (g.R + g.tr - 1) / g.tr;
    g.ncb = (g.C + g.tc - 1) / g.tc;
    g.ntiles = g.nrb * g.ncb;
    g.T = g.tr * g.tc;
    return g;
}

/* Floats of one tile's partial sum of a broadcast operand's gradient. */
static size_t partial_len(int mode, const geom *g)
{
    return mode == 1 ? g->tc : mode == 2 ? g->tr : 1;
}

/* Whether the scratch holds per-tile partial sums (and the reverse sweep may use threads). */
static int uses_partials(const fused_prog *P, const geom *g)
{
    return P->partials && !P->serial && g->N >= FZ_PAR_MIN && g->ntiles > 1;
}

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Float offset of each broadcast operand's partial sums in the scratch (after the
 * saved results); returns the total floats. */
static size_t scratch_layout(const fused_prog *P, const geom *g, size_t *poff)
{
    size_t off = (size_t)P->nsave * align16(g->N);
    int part = uses_partials(P, g);
    for (int k = 0; k < P->next; k++) {
        poff[k] = off;
        if (part && P->ext[k].mode != 0) off += align16(g->ntiles * partial_len(P->ext[k].mode, g));
    }
    return off;
}

SHAPE_FN(shape_fused)
{
    (void)nin;
    (void)in;
    if (!par || !par->fused) {
        msgf(msg, OP_MSG, "fused nodes are made by the elementwise-fusion pass only");
        return -1;
    }
    *out = par->fused->shape;
    out->data = NULL;
    return 0;
}

AUX_FN(aux_fused)
{
    const fused_prog *P = it->par->fused;
    geom g = geometry(P, it->out);
    size_t poff[P->next > 0 ? P->next : 1];
    return scratch_layout(P, &g, poff) * sizeof(float);
}

FLOPS_FN(flops_fused)
{
    const fused_prog *P = it->par->fused;
    double f = 0;
    for (int i = 0; i < P->nins; i++) f += op_table[P->ins[i].op].flops(it);
    return f;
}

/* ---- views -------------------------------------------------------------------------
 * An operand over one tile: element (r, c) of the tile is p[r * ld + c] when vec, and
 * p[r * ld] (one value per row) otherwise. */

typedef struct view {
    float *p;
    ptrdiff_t ld;
    int vec;
} view;

/* The tile at (r0, c0) of external operand k, over base (its value or its gradient):
 * the window (roff, coff) of the node's rows and columns, seen with the operand's
 * broadcast mode. */
static view ext_view(const fz_ext *e, const tensor *t, float *base, size_t r0, size_t c0)
{
    size_t ld = (size_t)tensor_cols(t);
    float *w = base + (size_t)e->roff * ld + (size_t)e->coff;
    view v;
    switch (e->mode) {
    case 0: v.p = w + r0 * ld + c0; v.ld = (ptrdiff_t)ld; v.vec = 1; break;
    case 1: v.p = w + c0; v.ld = 0; v.vec = 1; break;
    case 2: v.p = w + r0 * ld; v.ld = (ptrdiff_t)ld; v.vec = 0; break;
    default: v.p = w; v.ld = 0; v.vec = 0; break;
    }
    return v;
}

/* ---- forward of one instruction over a tile ---------------------------------------- */

#define SIMD _Pragma("omp simd")
#define NOSIMD

/* o = F(x) for every element; a is always a full (vec) operand. */
#define MAP1(VEC, F)                                                                  \
    for (size_t r = 0; r < nr; r++) {                                                 \
        const float *restrict A_ = a.p + (ptrdiff_t)r * a.ld;                         \
        float *restrict O_ = o.p + (ptrdiff_t)r * o.ld;                               \
        VEC for (size_t j = 0; j < nc; j++) { float x = A_[j]; O_[j] = (F); }         \
    }
/* o = F(x, y), y a full operand or one value per row. */
#define MAP2(VEC, F)                                                                  \
    for (size_t r = 0; r < nr; r++) {                                                 \
        const float *restrict A_ = a.p + (ptrdiff_t)r * a.ld;                         \
        float *restrict O_ = o.p + (ptrdiff_t)r * o.ld;                               \
        if (b.vec) {                                                                  \
            const float *restrict B_ = b.p + (ptrdiff_t)r * b.ld;                     \
            VEC for (size_t j = 0; j < nc; j++) { float x = A_[j], y = B_[j]; O_[j] = (F); } \
        } else {                                                                      \
            const float y = b.p[(ptrdiff_t)r * b.ld];                                 \
            VEC for (size_t j = 0; j < nc; j++) { float x = A_[j]; O_[j] = (F); }     \
        }                                                                             \
    }

/* The loop of each op of the list: SIMD when its forward is call-free (vec). */
#define FZ_VEC_1 SIMD
#define FZ_VEC_0 NOSIMD
#define FZ_RUN_U(VEC, name) MAP1(VEC, ew_f_##name(x, 0.0f, c))
#define FZ_RUN_UC FZ_RUN_U
#define FZ_RUN_B(VEC, name) MAP2(VEC, ew_f_##name(x, y, c))

static void run_ins(const fz_ins *q, view a, view b, view o, size_t nr, size_t nc)
{
    const float c = q->c;
    switch (q->op) {
#define EW(ID, name, form, shape, F, DA, DB, reads, cost, vec, ...) \
    case OP_##ID: FZ_RUN_##form(FZ_VEC_##vec, name) break;
#include "elementwise_ops.def"
#undef EW
    default: break;
    }
}

/* ---- backward of one instruction over a tile ----------------------------------------
 * A gradient target: a register tile written (the first contribution) or added to, an
 * external gradient added to (full operand: its window of the gradient; row-vector
 * operand: the tile's partial sum, ld 0, so rows add up), or reduced per row into a
 * partial sum (one value per row, ld 1; scalar, ld 0). */

enum { K_NONE, K_SET, K_ADD, K_RED };
typedef struct target {
    int kind;
    float *p;
    ptrdiff_t ld;
} target;

/* The contribution g * D to target t; x, y, o are the instruction's operands and
 * result at the element. YEXPR reads y. */
#define DELIVER_Y(VEC, D, YDECL, YEXPR)                                               \
    switch (t.kind) {                                                                 \
    case K_SET:                                                                       \
        for (size_t r = 0; r < nr; r++) {                                             \
            const float *restrict A_ = a.p + (ptrdiff_t)r * a.ld;                     \
            const float *restrict O_ = ov.p + (ptrdiff_t)r * ov.ld;                   \
            const float *restrict G_ = gv.p + (ptrdiff_t)r * gv.ld;                   \
            float *restrict T_ = t.p + (ptrdiff_t)r * t.ld;                           \
            YDECL                                                                     \
            VEC for (size_t j = 0; j < nc; j++) {                                     \
                float x = A_[j], y = (YEXPR), o = O_[j];                              \
                (void)x; (void)y; (void)o;                                            \
                T_[j] = G_[j] * (D);                                                  \
            }                                                                         \
        }                                                                             \
        break;                                                                        \
    case K_ADD:                                                                       \
        for (size_t r = 0; r < nr; r++) {                                             \
            const float *restrict A_ = a.p + (ptrdiff_t)r * a.ld;                     \
            const float *restrict O_ = ov.p + (ptrdiff_t)r * ov.ld;                   \
            const float *restrict G_ = gv.p + (ptrdiff_t)r * gv.ld;                   \
            float *restrict T_ = t.p + (ptrdiff_t)r * t.ld;                           \
            YDECL                                                                     \
            VEC for (size_t j = 0; j < nc; j++) {                                     \
                float x = A_[j], y = (YEXPR), o = O_[j];                              \
                (void)x; (void)y; (void)o;                                            \
                T_[j] += G_[j] * (D);                                                 \
            }                                                                         \
        }                                                                             \
        break;                                                                        \
    case K_RED:                                                                       \
        for (size_t r = 0; r < nr; r++) {                                             \
            const float *restrict A_ = a.p + (ptrdiff_t)r * a.ld;                     \
            const float *restrict O_ = ov.p + (ptrdiff_t)r * ov.ld;                   \
            const float *restrict G_ = gv.p + (ptrdiff_t)r * gv.ld;                   \
            YDECL                                                                     \
            float s_ = 0.0f;                                                          \
            for (size_t j = 0; j < nc; j++) {                                         \
                float x = A_[j], y = (YEXPR), o = O_[j];                              \
                (void)x; (void)y; (void)o;                                            \
                s_ += G_[j] * (D);                                                    \
            }                                                                         \
            t.p[(ptrdiff_t)r * t.ld] += s_;                                           \
        }                                                                             \
        break;                                                                        \
    default:                                                                          \
        break;                                                                        \
    }

#define DELIVER(VEC, D)                                                               \
    do {                                                                              \
        if (b.vec) {                                                                  \
            DELIVER_Y(VEC, D, const float *restrict B_ = b.p + (ptrdiff_t)r * b.ld;, B_[j]) \
        } else {                                                                      \
            DELIVER_Y(VEC, D, const float ys_ = b.p[(ptrdiff_t)r * b.ld];, ys_)       \
        }                                                                             \
    } while (0)

/* The contribution to operand a of instruction q; ov is its result, gv its gradient. */
static void back_a(const fz_ins *q, view a, view b, view ov, view gv, target t, size_t nr, size_t nc)
{
    const float c = q->c;
    (void)c;
    switch (q->op) {
#define EW(ID, name, ...) case OP_##ID: DELIVER(SIMD, ew_da_##name(x, y, o, c)); break;
#include "elementwise_ops.def"
#undef EW
    default: break;
    }
}

/* The contribution to operand b (binary ops only). */
#define FZ_BACK_B_U(ID, name)
#define FZ_BACK_B_UC(ID, name)
#define FZ_BACK_B_B(ID, name) case OP_##ID: DELIVER(SIMD, ew_db_##name(x, y, o, c)); break;
static void back_b(const fz_ins *q, view a, view b, view ov, view gv, target t, size_t nr, size_t nc)
{
    const float c = q->c;
    (void)c;
    switch (q->op) {
#define EW(ID, name, form, ...) FZ_BACK_B_##form(ID, name)
#include "elementwise_ops.def"
#undef EW
    default: break;
    }
}

/* Which of x, y and the result o an op's derivatives read (R_X, R_Y, R_O). */
static unsigned reads(int op) { return ew_reads(op); }

/* ---- the fast path -------------------------------------------------------------------- */

typedef struct ctx {
    const fused_prog *P;
    op_inst *it;
    geom g;
    float *aux;
    size_t poff[FZ_MAX_INS * 2 + 1];
} ctx;

/* The tile of operand reference ref, given the tile's register views. */
static view operand(const ctx *x, int ref, const view *val, size_t r0, size_t c0)
{
    if (ref >= 0) return val[ref];
    int k = -ref - 1;
    return ext_view(&x->P->ext[k], x->it->in[k], x->it->in[k]->data, r0, c0);
}

/* Evaluates the program over tile (r0, c0, nr, nc) into val[]. Registers go to buf
 * (tile buffers of T floats), saved results to the scratch when `save`, the last to
 * the output. In backward (want not NULL) the output is read back, and so are saved
 * results when `reuse`; of the others, only those marked in want are computed. */
static void tile_values(const ctx *x, size_t r0, size_t c0, size_t nr, size_t nc, float *buf, view *val,
                        int save, int reuse, const unsigned char *want)
{
    const fused_prog *P = x->P;
    size_t C = x->g.C, N = x->g.N;
    float *out = x->it->out->data;
    for (int i = 0; i < P->nins; i++) {
        const fz_ins *q = &P->ins[i];
        view o;
        int have = 0;
        if (i == P->nins - 1) {
            o = (view){ out + r0 * C + c0, (ptrdiff_t)C, 1 };
            have = want != NULL;
        } else if (q->save >= 0 && (want ? reuse : save)) {
            o = (view){ x->aux + (size_t)q->save * align16(N) + r0 * C + c0, (ptrdiff_t)C, 1 };
            have = reuse;
        } else {
            o = (view){ buf + (size_t)i * x->g.T, (ptrdiff_t)nc, 1 };
        }
        if (!have && (!want || want[i])) {
            view a = operand(x, q->a, val, r0, c0);
            view b = is_binary(q->op) ? operand(x, q->b, val, r0, c0) : a;
            run_ins(q, a, b, o, nr, nc);
        }
        val[i] = o;
    }
}

static void tile_bounds(const geom *g, size_t t, size_t *r0, size_t *c0, size_t *nr, size_t *nc)
{
    size_t rb = t / g->ncb, cb = t % g->ncb;
    *r0 = rb * g->tr;
    *c0 = cb * g->tc;
    *nr = g->R - *r0 < g->tr ? g->R - *r0 : g->tr;
    *nc = g->C - *c0 < g->tc ? g->C - *c0 : g->tc;
}

/* Adds one tile's partial sum of broadcast operand k's gradient into its gradient. */
static void commit_partial(const fz_ext *e, const tensor *t, float *gin, const float *part, size_t r0, size_t c0,
                           size_t nr, size_t nc)
{
    view v = ext_view(e, t, gin, r0, c0);
    if (e->mode == 1)
        for (size_t j = 0; j < nc; j++) v.p[j] += part[j];
    else if (e->mode == 2)
        for (size_t r = 0; r < nr; r++) v.p[(ptrdiff_t)r * v.ld] += part[r];
    else
        v.p[0] += part[0];
}

static int table_swapped(const fused_prog *P);
static int table_forward(ctx *x, char *msg);
static void table_backward(ctx *x);

static void ctx_init(ctx *x, op_inst *it)
{
    x->P = it->par->fused;
    x->it = it;
    x->g = geometry(x->P, it->out);
    x->aux = it->aux;
    scratch_layout(x->P, &x->g, x->poff);
}

/* Tiles [t0, t1) of the forward loop. */
static void fwd_tiles(ctx *x, int save, size_t t0, size_t t1)
{
    const fused_prog *P = x->P;
    float regs[(size_t)P->nins * x->g.T];
    view val[P->nins];
    for (size_t t = t0; t < t1; t++) {
        size_t r0, c0, nr, nc;
        tile_bounds(&x->g, t, &r0, &c0, &nr, &nc);
        tile_values(x, r0, c0, nr, nc, regs, val, save, 0, NULL);
    }
}

FWD_FN(fwd_fused)
{
    ctx x;
    ctx_init(&x, it);
    const fused_prog *P = x.P;
    if (table_swapped(P)) return table_forward(&x, msg);
    (void)msg;
    int save = it->gout != NULL && P->nsave > 0 && it->aux != NULL;
    size_t ntiles = x.g.ntiles;
    /* A serial loop never enters an OpenMP region: even an if(0) region costs the
     * runtime a team set-up (about a microsecond), the whole cost of a small step. */
    if (x.g.N >= FZ_PAR_MIN && ntiles > 1 && op_threads() > 1) {
#pragma omp parallel
        {
            size_t t0, t1;
            op_thread_range(ntiles, &t0, &t1);
            fwd_tiles(&x, save, t0, t1);
        }
    } else {
        fwd_tiles(&x, save, 0, ntiles);
    }
    return 0;
}

/* The gradient target of operand reference ref of an instruction. */
static target target_of(const ctx *x, int ref, int first, const unsigned char *need, float *gbuf, size_t nc,
                        float *bp, size_t bpstride, size_t r0, size_t c0)
{
    target t = { K_NONE, NULL, 0 };
    if (ref >= 0) {
        if (!need[ref]) return t;
        t.kind = first ? K_SET : K_ADD;
        t.p = gbuf + (size_t)ref * x->g.T;
        t.ld = (ptrdiff_t)nc;
        return t;
    }
    int k = -ref - 1;
    float *gin = x->it->gin[k];
    if (!gin) return t;
    const fz_ext *e = &x->P->ext[k];
    if (e->mode == 0) {
        view v = ext_view(e, x->it->in[k], gin, r0, c0);
        t.kind = k < 32 && (x->it->gfresh >> k & 1u) ? K_SET : K_ADD;   /* see overwrites_fused */
        t.p = v.p;
        t.ld = v.ld;
    } else {
        t.p = bp + (size_t)k * bpstride;
        t.kind = e->mode == 1 ? K_ADD : K_RED;
        t.ld = e->mode == 2 ? 1 : 0;
    }
    return t;
}

/* What the backward tile loop reads, shared by the threads running it. */
typedef struct bwd_job {
    ctx *x;
    const unsigned char *need, *want;
    int n, last, part, reuse, nbc;
    size_t bpstride;
} bwd_job;

/* Tiles [t0, t1) of the backward loop. */
static void bwd_tiles(const bwd_job *j, size_t t0, size_t t1)
{
    ctx *x = j->x;
    op_inst *it = x->it;
    const fused_prog *P = x->P;
    const unsigned char *need = j->need, *want = j->want;
    int n = j->n, last = j->last, part = j->part, reuse = j->reuse, nbc = j->nbc;
    size_t bpstride = j->bpstride;
    float regs[(size_t)n * x->g.T], gbuf[(size_t)n * x->g.T];
    float bp[(size_t)(P->next > 0 ? P->next : 1) * bpstride];
    view val[n];
    for (size_t t = t0; t < t1; t++) {
        size_t r0, c0, nr, nc;
        tile_bounds(&x->g, t, &r0, &c0, &nr, &nc);
        tile_values(x, r0, c0, nr, nc, regs, val, 0, reuse, want);
        if (nbc)
            for (int k = 0; k < P->next; k++)
                if (P->ext[k].mode != 0 && it->gin[k])
                    memset(bp + (size_t)k * bpstride, 0, partial_len(P->ext[k].mode, &x->g) * sizeof(float));
        for (int i = last; i >= 0; i--) {
            if (!need[i]) continue;
            const fz_ins *q = &P->ins[i];
            view gv = i == last ? (view){ it->gout + r0 * x->g.C + c0, (ptrdiff_t)x->g.C, 1 }
                                : (view){ gbuf + (size_t)i * x->g.T, (ptrdiff_t)nc, 1 };
            view a = operand(x, q->a, val, r0, c0);
            int bin = is_binary(q->op);
            view b = bin ? operand(x, q->b, val, r0, c0) : a;
            target ta = target_of(x, q->a, q->first_a, need, gbuf, nc, bp, bpstride, r0, c0);
            if (ta.kind != K_NONE) back_a(q, a, b, val[i], gv, ta, nr, nc);
            if (bin) {
                target tb = target_of(x, q->b, q->first_b, need, gbuf, nc, bp, bpstride, r0, c0);
                if (tb.kind != K_NONE) back_b(q, a, b, val[i], gv, tb, nr, nc);
            }
        }
        if (nbc)
            for (int k = 0; k < P->next; k++) {
                int mode = P->ext[k].mode;
                if (mode == 0 || !it->gin[k]) continue;
                float *src = bp + (size_t)k * bpstride;
                if (part) {
                    size_t len = partial_len(mode, &x->g);
                    memcpy(x->aux + x->poff[k] + t * len, src, len * sizeof(float));
                } else {
                    commit_partial(&P->ext[k], it->in[k], it->gin[k], src, r0, c0, nr, nc);
                }
            }
    }
}

unsigned overwrites_fused(const op_inst *it)
{
    const fused_prog *P = it->par->fused;
    if (!P) return 0;
    unsigned m = 0;
    for (int k = 0; k < P->next && k < 32; k++)
        if (P->ext[k].whole) m |= 1u << k;
    return m;
}

BWD_FN(bwd_fused)
{
    ctx x;
    ctx_init(&x, it);
    const fused_prog *P = x.P;
    if (table_swapped(P)) {
        /* the table's kernels add: give them cleared buffers where the sweep left them fresh */
        for (int k = 0; k < P->next && k < 32; k++)
            if ((it->gfresh >> k & 1u) && it->gin[k]) memset(it->gin[k], 0, it->in[k]->size * sizeof(float));
        table_backward(&x);
        return;
    }
    int n = P->nins, last = n - 1;
    unsigned char need[FZ_MAX_INS];
    for (int i = 0; i < n; i++) {
        const fz_ins *q = &P->ins[i];
        int nd = 0;
        int refs[2] = { q->a, is_binary(q->op) ? q->b : q->a };
        for (int s = 0; s < 2; s++) {
            int ref = refs[s];
            nd |= ref >= 0 ? need[ref] : it->gin[-ref - 1] != NULL;
        }
        need[i] = (unsigned char)nd;
    }
    if (!need[last]) return;
    int part = uses_partials(P, &x.g);
    int reuse = P->nsave > 0 && it->aux != NULL;
    /* the values the derivatives read, and what computing them needs */
    unsigned char want[FZ_MAX_INS] = { 0 };
    for (int i = last; i >= 0; i--) {
        const fz_ins *q = &P->ins[i];
        if (need[i]) {
            unsigned u = reads(q->op);
            if (u & R_O) want[i] = 1;
            if ((u & R_X) && q->a >= 0) want[q->a] = 1;
            if ((u & R_Y) && is_binary(q->op) && q->b >= 0) want[q->b] = 1;
        }
        if (want[i] && i != last && !(reuse && q->save >= 0)) {
            if (q->a >= 0) want[q->a] = 1;
            if (is_binary(q->op) && q->b >= 0) want[q->b] = 1;
        }
    }
    size_t ntiles = x.g.ntiles, bpstride = x.g.tr > x.g.tc ? x.g.tr : x.g.tc;
    int nbc = 0;
    for (int k = 0; k < P->next; k++) nbc += P->ext[k].mode != 0 && it->gin[k];
    bwd_job job = { &x, need, want, n, last, part, reuse, nbc, bpstride };
    /* tiles write disjoint gradient windows unless windows overlap (serial); broadcast
     * operands' sums need per-tile partials (part; a program made for an inference plan
     * has no room for them) to keep their order */
    int par = !P->serial && x.g.N >= FZ_PAR_MIN && x.g.ntiles > 1 && (part || nbc == 0);
    if (par && op_threads() > 1) {
#pragma omp parallel
        {
            size_t t0, t1;
            op_thread_range(ntiles, &t0, &t1);
            bwd_tiles(&job, t0, t1);
        }
    } else {
        bwd_tiles(&job, 0, ntiles);
    }
    if (part && nbc)
        for (size_t t = 0; t < ntiles; t++) {
            size_t r0, c0, nr, nc;
            tile_bounds(&x.g, t, &r0, &c0, &nr, &nc);
            for (int k = 0; k < P->next; k++) {
                int mode = P->ext[k].mode;
                if (mode == 0 || !it->gin[k]) continue;
                size_t len = partial_len(mode, &x.g);
                commit_partial(&P->ext[k], it->in[k], it->gin[k], x.aux + x.poff[k] + t * len, r0, c0, nr, nc);
            }
        }
}

/* ---- the table path -------------------------------------------------------------------
 * Each instruction is an op_inst over dense tile tensors, run by op_table's kernels. */

static const struct builtin {
    int (*fwd)(op_inst *, char *);
    void (*bwd)(op_inst *);
} builtins[OP_COUNT] = {
#define EW(ID, name, ...) [OP_##ID] = { fwd_##name, bwd_##name },
#include "elementwise_ops.def"
#undef EW
};

static int table_swapped(const fused_prog *P)
{
    for (int i = 0; i < P->nins; i++) {
        int op = P->ins[i].op;
        if (op_table[op].forward != builtins[op].fwd || op_table[op].backward != builtins[op].bwd) return 1;
    }
    return 0;
}

static void dense(tensor *t, float *data, size_t nr, size_t nc)
{
    int shape[2] = { (int)nr, (int)nc };
    memset(t, 0, sizeof *t);
    t->dt = RC_F32;
    tensor_set_shape(t, 2, shape);
    t->data = data;
}

/* The tile tensor of operand reference ref: registers and full operands dense (full
 * operands copied into `scr`), broadcast operands as [nc], [nr, 1] or [1] in place. */
static void tile_tensor(const ctx *x, int ref, float *vals, float *scr, size_t r0, size_t c0, size_t nr, size_t nc,
                        tensor *t)
{
    if (ref >= 0) {
        dense(t, vals + (size_t)ref * x->g.T, nr, nc);
        return;
    }
    int k = -ref - 1;
    const fz_ext *e = &x->P->ext[k];
    view v = ext_view(e, x->it->in[k], x->it->in[k]->data, r0, c0);
    memset(t, 0, sizeof *t);
    t->dt = RC_F32;
    if (e->mode == 0) {
        for (size_t r = 0; r < nr; r++) memcpy(scr + r * nc, v.p + (ptrdiff_t)r * v.ld, nc * sizeof(float));
        dense(t, scr, nr, nc);
    } else if (e->mode == 1) {
        int s = (int)nc;
        tensor_set_shape(t, 1, &s);
        t->data = v.p;
    } else if (e->mode == 2) {
        int s[2] = { (int)nr, 1 };
        tensor_set_shape(t, 2, s);
        for (size_t r = 0; r < nr; r++) scr[r] = v.p[(ptrdiff_t)r * v.ld];
        t->data = scr;
    } else {
        int s = 1;
        tensor_set_shape(t, 1, &s);
        t->data = v.p;
    }
}

/* Runs the program over one tile with the table's forward kernels into vals. */
static int table_tile_values(const ctx *x, size_t r0, size_t c0, size_t nr, size_t nc, float *vals, float *scr,
                             char *msg)
{
    const fused_prog *P = x->P;
    for (int i = 0; i < P->nins; i++) {
        const fz_ins *q = &P->ins[i];
        int nin = is_binary(q->op) ? 2 : 1;
        tensor tin[2], tout, *pin[2] = { &tin[0], &tin[1] };
        tile_tensor(x, q->a, vals, scr, r0, c0, nr, nc, &tin[0]);
        if (nin == 2) tile_tensor(x, q->b, vals, scr + x->g.T, r0, c0, nr, nc, &tin[1]);
        dense(&tout, vals + (size_t)i * x->g.T, nr, nc);
        op_params par = { .f = { q->c, 0 } };
        op_inst ii = { .op = q->op, .nin = nin, .par = &par, .in = pin, .out = &tout,
                       .run = x->it->run, .training = x->it->training };
        if (op_table[q->op].forward(&ii, msg) != 0) return -1;
    }
    return 0;
}

static int table_forward(ctx *x, char *msg)
{
    const fused_prog *P = x->P;
    size_t T = x->g.T, C = x->g.C;
    float *vals = malloc(((size_t)P->nins + 2) * T * sizeof(float));
    if (!vals) {
        msgf(msg, OP_MSG, "out of memory running a fused node through the op table");
        return -1;
    }
    float *scr = vals + (size_t)P->nins * T, *out = x->it->out->data;
    int save = x->it->gout != NULL && P->nsave > 0 && x->aux != NULL;
    for (size_t t = 0; t < x->g.ntiles; t++) {
        size_t r0, c0, nr, nc;
        tile_bounds(&x->g, t, &r0, &c0, &nr, &nc);
        if (table_tile_values(x, r0, c0, nr, nc, vals, scr, msg) != 0) {
            free(vals);
            return -1;
        }
        const float *res = vals + (size_t)(P->nins - 1) * T;
        for (size_t r = 0; r < nr; r++) memcpy(out + (r0 + r) * C + c0, res + r * nc, nc * sizeof(float));
        /* keep what the fast backward reads, should the table be restored before it */
        for (int i = 0; save && i < P->nins - 1; i++)
            if (P->ins[i].save >= 0)
                for (size_t r = 0; r < nr; r++)
                    memcpy(x->aux + (size_t)P->ins[i].save * align16(x->g.N) + (r0 + r) * C + c0,
                           vals + (size_t)i * T + r * nc, nc * sizeof(float));
    }
    free(vals);
    return 0;
}

static void table_backward(ctx *x)
{
    const fused_prog *P = x->P;
    op_inst *it = x->it;
    int n = P->nins, last = n - 1;
    size_t T = x->g.T, C = x->g.C;
    /* values, gradients, two value copies, two gradient buffers */
    float *vals = malloc(((size_t)2 * n + 4) * T * sizeof(float));
    if (!vals) return;   /* a backward cannot fail; the table path is a test aid */
    float *grads = vals + (size_t)n * T, *scr = grads + (size_t)n * T, *gscr = scr + 2 * T;
    unsigned char need[FZ_MAX_INS];
    for (int i = 0; i < n; i++) {
        const fz_ins *q = &P->ins[i];
        int refs[2] = { q->a, is_binary(q->op) ? q->b : q->a }, nd = 0;
        for (int s = 0; s < 2; s++) nd |= refs[s] >= 0 ? need[refs[s]] : it->gin[-refs[s] - 1] != NULL;
        need[i] = (unsigned char)nd;
    }
    char msg[OP_MSG];
    for (size_t t = 0; t < x->g.ntiles && need[last]; t++) {
        size_t r0, c0, nr, nc;
        tile_bounds(&x->g, t, &r0, &c0, &nr, &nc);
        if (table_tile_values(x, r0, c0, nr, nc, vals, scr, msg) != 0) break;
        memset(grads, 0, (size_t)n * T * sizeof(float));
        for (size_t r = 0; r < nr; r++)
            memcpy(grads + (size_t)last * T + r * nc, it->gout + (r0 + r) * C + c0, nc * sizeof(float));
        for (int i = last; i >= 0; i--) {
            if (!need[i]) continue;
            const fz_ins *q = &P->ins[i];
            int nin = is_binary(q->op) ? 2 : 1, refs[2] = { q->a, q->b };
            tensor tin[2], tout, *pin[2] = { &tin[0], &tin[1] };
            float *gin[2] = { NULL, NULL };
            for (int s = 0; s < nin; s++) {
                tile_tensor(x, refs[s], vals, scr + (size_t)s * T, r0, c0, nr, nc, &tin[s]);
                int ref = refs[s];
                if (ref >= 0) {
                    gin[s] = need[ref] ? grads + (size_t)ref * T : NULL;
                } else if (it->gin[-ref - 1]) {
                    gin[s] = gscr + (size_t)s * T;
                    memset(gin[s], 0, T * sizeof(float));
                }
            }
            dense(&tout, vals + (size_t)i * T, nr, nc);
            op_params par = { .f = { q->c, 0 } };
            op_inst ii = { .op = q->op, .nin = nin, .par = &par, .in = pin, .gin = gin, .out = &tout,
                           .gout = grads + (size_t)i * T, .run = it->run, .training = it->training };
            op_table[q->op].backward(&ii);
            for (int s = 0; s < nin; s++) {
                int ref = refs[s];
                if (ref >= 0 || !gin[s]) continue;
                int k = -ref - 1;
                const fz_ext *e = &P->ext[k];
                if (e->mode == 0) {
                    view v = ext_view(e, it->in[k], it->gin[k], r0, c0);
                    for (size_t r = 0; r < nr; r++)
                        for (size_t j = 0; j < nc; j++) v.p[(ptrdiff_t)r * v.ld + (ptrdiff_t)j] += gin[s][r * nc + j];
                } else {
                    commit_partial(e, it->in[k], it->gin[k], gin[s], r0, c0, nr, nc);
                }
            }
        }
    }
    free(vals);
}
