/* Elementwise ops: the kernels of every op of elementwise_ops.def (binary maps with
 * broadcast of the second operand, unary maps; the formulas are elementwise.h's),
 * and dropout. Loops over large tensors are split across OpenMP threads with a
 * static schedule, so each element is computed the same way for any thread count. */
#include <math.h>
#include "elementwise.h"
#include "kernels.h"


/* Strides of b over (row, col) for each broadcast mode of bcast_mode(). */
static void bstrides(int mode, size_t cols, size_t *sr, size_t *sc)
{
    static const size_t r[4] = { 1, 0, 1, 0 }, c[4] = { 1, 1, 0, 0 };
    *sr = mode == 0 ? cols : r[mode];
    *sc = c[mode];
}

/* F: value of (x, y); DA, DB: partial derivatives given x, y and output o. */
#define BINARY(NAME, F, DA, DB)                                                       \
FWD_FN(fwd_##NAME)                                                                    \
{                                                                                     \
    (void)msg;                                                                        \
    const tensor *A = it->in[0], *B = it->in[1];                                        \
    const float *a = A->data, *b = B->data;                                           \
    float *o = it->out->data;                                                          \
    size_t n = A->size, cols = (size_t)tensor_cols(A), rows = n / cols, sr, sc;       \
    int mode = bcast_mode(A, B);                                                      \
    if (mode == 0) {                                                                  \
        PAR_FOR(n >= OP_PAR_MIN, i, n,  float x = a[i], y = b[i]; o[i] = (F);); \
        return 0;                                                                     \
    }                                                                                 \
    bstrides(mode, cols, &sr, &sc);                                                   \
    for (size_t r = 0; r < rows; r++)                                                 \
        for (size_t c = 0; c < cols; c++) {                                           \
            float x = a[r * cols + c], y = b[r * sr + c * sc];                        \
            o[r * cols + c] = (F);                                                    \
        }                                                                             \
    return 0;                                                                         \
}                                                                                     \
BWD_FN(bwd_##NAME)                                                                    \
{                                                                                     \
    const tensor *A = it->in[0], *B = it->in[1];                                        \
    const float *a = A->data, *b = B->data, *g = it->gout, *oo = it->out->data;         \
    float *ga = it->gin[0], *gb = it->gin[1];                                           \
    size_t n = A->size, cols = (size_t)tensor_cols(A), rows = n / cols, sr, sc;       \
    int mode = bcast_mode(A, B);                                                      \
    (void)oo;                                                                         \
    if (mode == 0) {                                                                  \
        if (ga) PAR_FOR(n >= OP_PAR_MIN, i, n,                                  \
            float x = a[i], y = b[i], o = oo[i]; (void)x; (void)y; (void)o;           \
            ga[i] += g[i] * (DA);                                                     \
        );                                                                             \
        if (gb) PAR_FOR(n >= OP_PAR_MIN, i, n,                                  \
            float x = a[i], y = b[i], o = oo[i]; (void)x; (void)y; (void)o;           \
            gb[i] += g[i] * (DB);                                                     \
        );                                                                             \
        return;                                                                       \
    }                                                                                 \
    bstrides(mode, cols, &sr, &sc);                                                   \
    for (size_t r = 0; r < rows; r++)                                                 \
        for (size_t c = 0; c < cols; c++) {                                           \
            size_t i = r * cols + c;                                                  \
            float x = a[i], y = b[r * sr + c * sc], o = oo[i];                        \
            (void)x; (void)y; (void)o;                                                \
            if (ga) ga[i] += g[i] * (DA);                                             \
            if (gb) gb[r * sr + c * sc] += g[i] * (DB);                               \
        }                                                                             \
}

#define UNARY(NAME, F, D)                                                             \
FWD_FN(fwd_##NAME)                                                                    \
{                                                                                     \
    (void)msg;                                                                        \
    const float *a = it->in[0]->data;                                                  \
    float *out = it->out->data;                                                        \
    const float c = it->par->f[0];                                                     \
    size_t n = it->out->size;                                                          \
    (void)c;                                                                          \
    PAR_FOR(n >= OP_PAR_MIN, i, n,  float x = a[i]; out[i] = (F););            \
    return 0;                                                                         \
}                                                                                     \
BWD_FN(bwd_##NAME)                                                                    \
{                                                                                     \
    const float *a = it->in[0]->data, *oo = it->out->data, *g = it->gout;                \
    float *ga = it->gin[0];                                                            \
    const float c = it->par->f[0];                                                     \
    size_t n = it->out->size;                                                          \
    (void)c;                                                                          \
    if (!ga) return;                                                                  \
    PAR_FOR(n >= OP_PAR_MIN, i, n,                                              \
        float x = a[i], o = oo[i]; (void)x; (void)o;                                  \
        ga[i] += g[i] * (D);                                                          \
    );                                                                                 \
}

/* The kernels of each op of the list, from its formulas; FLOPs: its cost per element. */
#define EW_KERNELS_B(name)                                                                 \
    BINARY(name, ew_f_##name(x, y, 0.0f), ew_da_##name(x, y, o, 0.0f), ew_db_##name(x, y, o, 0.0f))
#define EW_KERNELS_U(name) UNARY(name, ew_f_##name(x, 0.0f, c), ew_da_##name(x, 0.0f, o, c))
#define EW_KERNELS_UC(name) EW_KERNELS_U(name)
#define EW(ID, name, form, shape, F, DA, DB, reads, cost, ...)                                \
    EW_KERNELS_##form(name)                                                                \
    FLOPS_FN(flops_##name) { return (double)(cost) * (double)it->out->size; }
#include "elementwise_ops.def"
#undef EW

FLOPS_FN(flops_size) { return (double)it->out->size; }
FLOPS_FN(flops_size4) { return 4.0 * (double)it->out->size; }

/* ---- dropout: the mask is a hash of (seed, run, element), so the reverse sweep
 * recomputes it instead of storing it, and any thread computes any element. */

static inline uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline int dropout_keep(uint64_t seed, uint64_t run, size_t i, float p)
{
    uint64_t h = mix64(seed ^ mix64(run ^ mix64((uint64_t)i)));
    float u = (float)(h >> 40) * (1.0f / 16777216.0f);
    return u >= p;
}

SHAPE_FN(shape_dropout)
{
    if (shape_same(nin, in, par, out, msg)) return -1;
    if (!(par->f[0] >= 0.0f && par->f[0] < 1.0f)) {
        msgf(msg, OP_MSG, "drop probability %g is outside [0, 1)", (double)par->f[0]);
        return -1;
    }
    return 0;
}

FWD_FN(fwd_dropout)
{
    (void)msg;
    const float *a = it->in[0]->data;
    float *o = it->out->data;
    size_t n = it->out->size;
    float p = it->par->f[0], s = 1.0f / (1.0f - p);
    uint64_t seed = it->par->seed, run = it->run;
    if (!it->training || p == 0.0f) {
        PAR_FOR(n >= OP_PAR_MIN, i, n, o[i] = a[i];);
        return 0;
    }
    PAR_FOR(n >= OP_PAR_MIN, i, n, o[i] = dropout_keep(seed, run, i, p) ? a[i] * s : 0.0f;);
    return 0;
}

BWD_FN(bwd_dropout)
{
    const float *g = it->gout;
    float *ga = it->gin[0];
    size_t n = it->out->size;
    float p = it->par->f[0], s = 1.0f / (1.0f - p);
    uint64_t seed = it->par->seed, run = it->run;
    if (!ga) return;
    if (!it->training || p == 0.0f) {
        PAR_FOR(n >= OP_PAR_MIN, i, n, ga[i] += g[i];);
        return;
    }
    PAR_FOR(n >= OP_PAR_MIN, i, n, ga[i] += dropout_keep(seed, run, i, p) ? g[i] * s : 0.0f;);
}
