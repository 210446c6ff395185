/* Losses, per row (reduce them with sum or mean, weight them with mul):
 * softmax cross-entropy against int32 targets, sigmoid binary cross-entropy
 * summed over the last axis, mean squared error over the last axis. */
#include <math.h>
#include <string.h>
#include "fastmath.h"
#include "kernels.h"

/* The shape of t without its last axis ([1] for a vector). */
static void drop_last(const tensor *t, tensor *out)
{
    int one = 1;
    out->dt = RC_F32;
    if (t->ndim == 1) tensor_set_shape(out, 1, &one);
    else tensor_set_shape(out, t->ndim - 1, t->shape);
}

SHAPE_FN(shape_xent)
{
    (void)nin;
    (void)par;
    const tensor *x = in[0], *y = in[1];
    tensor want = {0};
    if (x->dt != RC_F32 || y->dt != RC_I32) {
        msgf(msg, OP_MSG, "logits must be float32 and targets int32");
        return -1;
    }
    drop_last(x, &want);
    if (!tensor_same_shape(&want, y)) {
        char a[64], b[64];
        tensor_shape_str(x, a, sizeof a);
        tensor_shape_str(y, b, sizeof b);
        msgf(msg, OP_MSG, "targets %s must have the shape of logits %s without the class axis", b, a);
        return -1;
    }
    *out = want;
    return 0;
}

AUX_FN(aux_xent) { return it->in[0]->size * sizeof(float); }

FWD_FN(fwd_xent)
{
    const float *x = it->in[0]->data;
    const int32_t *y = it->in[1]->data;
    float *o = it->out->data, *p = it->aux;
    size_t cols = (size_t)tensor_cols(it->in[0]), rows = it->in[0]->size / cols;
    for (size_t r = 0; r < rows; r++)
        if (y[r] >= (int32_t)cols) {
            msgf(msg, OP_MSG, "target %d of row %zu is not a class of %zu", y[r], r, cols);
            return -1;
        }
PAR_FOR(rows * cols >= OP_PAR_MIN, r, rows,
        const float *xr = x + r * cols;
        float *pr = p + r * cols, mx = xr[0], s = 0;
        for (size_t c = 1; c < cols; c++) mx = xr[c] > mx ? xr[c] : mx;
        /* exp(x - max) once, kept; normalised in place (vectorised, no overflow) */
        for (size_t c = 0; c < cols; c++) {
            pr[c] = fm_exp(xr[c] - mx);
            s += pr[c];
        }
        float inv = 1.0f / s;
        for (size_t c = 0; c < cols; c++) pr[c] *= inv;
        o[r] = y[r] < 0 ? 0.0f : (float)((double)mx + log((double)s) - xr[y[r]]);
    );
    return 0;
}

BWD_FN(bwd_xent)
{
    const int32_t *y = it->in[1]->data;
    const float *p = it->aux, *g = it->gout;
    float *gx = it->gin[0];
    size_t cols = (size_t)tensor_cols(it->in[0]), rows = it->in[0]->size / cols;
    if (!gx) return;
PAR_FOR(rows * cols >= OP_PAR_MIN, r, rows,
        if (y[r] < 0) continue;   /* padding */
        for (size_t c = 0; c < cols; c++) gx[r * cols + c] += g[r] * p[r * cols + c];
        gx[r * cols + (size_t)y[r]] -= g[r];
    );
}

SHAPE_FN(shape_row_loss)
{
    if (shape_binary_same(nin, in, par, out, msg)) return -1;
    drop_last(in[0], out);
    return 0;
}

FWD_FN(fwd_bce)
{
    (void)msg;
    const float *x = it->in[0]->data, *y = it->in[1]->data;
    float *o = it->out->data;
    size_t cols = (size_t)tensor_cols(it->in[0]), rows = it->in[0]->size / cols;
PAR_FOR(rows * cols >= OP_PAR_MIN, r, rows,
        double s = 0;
        for (size_t c = 0; c < cols; c++) {
            float v = x[r * cols + c], t = y[r * cols + c];
            /* -[t log s(v) + (1-t) log(1-s(v))] without overflow for any v */
            s += fmaxf(v, 0.0f) - v * t + log1pf(expf(-fabsf(v)));
        }
        o[r] = (float)s;
    );
    return 0;
}

static inline float sig(float v)
{
    if (v >= 0) return 1.0f / (1.0f + expf(-v));
    float e = expf(v);
    return e / (1.0f + e);
}

BWD_FN(bwd_bce)
{
    const float *x = it->in[0]->data, *y = it->in[1]->data, *g = it->gout;
    float *gx = it->gin[0], *gy = it->gin[1];
    size_t cols = (size_t)tensor_cols(it->in[0]), rows = it->in[0]->size / cols;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            size_t i = r * cols + c;
            if (gx) gx[i] += g[r] * (sig(x[i]) - y[i]);
            if (gy) gy[i] -= g[r] * x[i];
        }
}

FWD_FN(fwd_mse)
{
    (void)msg;
    const float *a = it->in[0]->data, *b = it->in[1]->data;
    float *o = it->out->data;
    size_t cols = (size_t)tensor_cols(it->in[0]), rows = it->in[0]->size / cols;
    for (size_t r = 0; r < rows; r++) {
        double s = 0;
        for (size_t c = 0; c < cols; c++) {
            double d = (double)a[r * cols + c] - b[r * cols + c];
            s += d * d;
        }
        o[r] = (float)(s / (double)cols);
    }
    return 0;
}

BWD_FN(bwd_mse)
{
    const float *a = it->in[0]->data, *b = it->in[1]->data, *g = it->gout;
    float *ga = it->gin[0], *gb = it->gin[1];
    size_t cols = (size_t)tensor_cols(it->in[0]), rows = it->in[0]->size / cols;
    for (size_t r = 0; r < rows; r++) {
        float k = 2.0f * g[r] / (float)cols;
        for (size_t c = 0; c < cols; c++) {
            size_t i = r * cols + c;
            float d = k * (a[i] - b[i]);
            if (ga) ga[i] += d;
            if (gb) gb[i] -= d;
        }
    }
}
