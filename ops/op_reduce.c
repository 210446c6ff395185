/* Row-wise reductions and normalisations along the last axis, and whole-tensor
 * sum/mean. Rows are independent, so they split across threads; within a row the
 * order is fixed. Accumulators are double. */
#include <math.h>
#include "kernels.h"

#define ROW_SETUP(t) size_t cols = (size_t)tensor_cols(t), rows = (t)->size / cols

FWD_FN(fwd_row_sum)
{
    (void)msg;
    const float *a = it->in[0]->data;
    float *o = it->out->data;
    ROW_SETUP(it->in[0]);
    PAR_FOR(rows * cols >= OP_PAR_MIN, r, rows,
        double s = 0;
        for (size_t c = 0; c < cols; c++) s += a[r * cols + c];
        o[r] = (float)s;
    );
    return 0;
}

BWD_FN(bwd_row_sum)
{
    float *ga = it->gin[0];
    const float *g = it->gout;
    ROW_SETUP(it->in[0]);
    if (!ga) return;
    PAR_FOR(rows * cols >= OP_PAR_MIN, r, rows,
        float d = g[r];
        for (size_t c = 0; c < cols; c++) ga[r * cols + c] += d;
    );
}

FWD_FN(fwd_row_mean)
{
    (void)msg;
    const float *a = it->in[0]->data;
    float *o = it->out->data;
    ROW_SETUP(it->in[0]);
    PAR_FOR(rows * cols >= OP_PAR_MIN, r, rows,
        double s = 0;
        for (size_t c = 0; c < cols; c++) s += a[r * cols + c];
        o[r] = (float)(s / (double)cols);
    );
    return 0;
}

BWD_FN(bwd_row_mean)
{
    float *ga = it->gin[0];
    const float *g = it->gout;
    ROW_SETUP(it->in[0]);
    if (!ga) return;
    PAR_FOR(rows * cols >= OP_PAR_MIN, r, rows,
        float d = g[r] / (float)cols;
        for (size_t c = 0; c < cols; c++) ga[r * cols + c] += d;
    );
}

static double row_mean(const float *x, size_t cols)
{
    double s = 0;
    for (size_t c = 0; c < cols; c++) s += x[c];
    return s / (double)cols;
}

FWD_FN(fwd_row_var)
{
    (void)msg;
    const float *a = it->in[0]->data;
    float *o = it->out->data;
    ROW_SETUP(it->in[0]);
    PAR_FOR(rows * cols >= OP_PAR_MIN, r, rows,
        const float *x = a + r * cols;
        double m = row_mean(x, cols), s = 0;
        for (size_t c = 0; c < cols; c++) s += (x[c] - m) * (x[c] - m);
        o[r] = (float)(s / (double)cols);
    );
    return 0;
}

BWD_FN(bwd_row_var)
{
    const float *a = it->in[0]->data, *g = it->gout;
    float *ga = it->gin[0];
    ROW_SETUP(it->in[0]);
    if (!ga) return;
    PAR_FOR(rows * cols >= OP_PAR_MIN, r, rows,
        const float *x = a + r * cols;
        double m = row_mean(x, cols);
        float k = 2.0f * g[r] / (float)cols;
        for (size_t c = 0; c < cols; c++) ga[r * cols + c] += k * (float)(x[c] - m);
    );
}

/* log(sum(exp(x))) of one row, shifted by its maximum so no exp overflows. */
static double row_lse(const float *x, size_t cols)
{
    float mx = x[0];
    for (size_t c = 1; c < cols; c++) mx = x[c] > mx ? x[c] : mx;
    double s = 0;
    for (size_t c = 0; c < cols; c++) s += exp((double)(x[c] - mx));
    return mx + log(s);
}

FWD_FN(fwd_softmax)
{
    (void)msg;
    const float *a = it->in[0]->data;
    float *o = it->out->data;
    ROW_SETUP(it->in[0]);
    PAR_FOR(rows * cols >= OP_PAR_MIN, r, rows,
        double l = row_lse(a + r * cols, cols);
        for (size_t c = 0; c < cols; c++) o[r * cols + c] = (float)exp(a[r * cols + c] - l);
    );
    return 0;
}

BWD_FN(bwd_softmax)
{
    const float *y = it->out->data, *g = it->gout;
    float *ga = it->gin[0];
    ROW_SETUP(it->in[0]);
    if (!ga) return;
    PAR_FOR(rows * cols >= OP_PAR_MIN, r, rows,
        double dot = 0;
        for (size_t c = 0; c < cols; c++) dot += (double)g[r * cols + c] * y[r * cols + c];
        for (size_t c = 0; c < cols; c++)
            ga[r * cols + c] += y[r * cols + c] * (float)(g[r * cols + c] - dot);
    );
}

FWD_FN(fwd_log_softmax)
{
    (void)msg;
    const float *a = it->in[0]->data;
    float *o = it->out->data;
    ROW_SETUP(it->in[0]);
    PAR_FOR(rows * cols >= OP_PAR_MIN, r, rows,
        double l = row_lse(a + r * cols, cols);
        for (size_t c = 0; c < cols; c++) o[r * cols + c] = (float)(a[r * cols + c] - l);
    );
    return 0;
}

BWD_FN(bwd_log_softmax)
{
    const float *y = it->out->data, *g = it->gout;
    float *ga = it->gin[0];
    ROW_SETUP(it->in[0]);
    if (!ga) return;
    PAR_FOR(rows * cols >= OP_PAR_MIN, r, rows,
        double s = 0;
        for (size_t c = 0; c < cols; c++) s += g[r * cols + c];
        for (size_t c = 0; c < cols; c++)
            ga[r * cols + c] += g[r * cols + c] - expf(y[r * cols + c]) * (float)s;
    );
}

static double total(const tensor *t)
{
    const float *a = t->data;
    double s = 0;
    for (size_t i = 0; i < t->size; i++) s += a[i];
    return s;
}

FWD_FN(fwd_sum)
{
    (void)msg;
    ((float *)it->out->data)[0] = (float)total(it->in[0]);
    return 0;
}

BWD_FN(bwd_sum)
{
    float *ga = it->gin[0], d = it->gout[0];
    size_t n = it->in[0]->size;
    if (ga) for (size_t i = 0; i < n; i++) ga[i] += d;
}

FWD_FN(fwd_mean)
{
    (void)msg;
    ((float *)it->out->data)[0] = (float)(total(it->in[0]) / (double)it->in[0]->size);
    return 0;
}

BWD_FN(bwd_mean)
{
    float *ga = it->gin[0], d = it->gout[0] / (float)it->in[0]->size;
    size_t n = it->in[0]->size;
    if (ga) for (size_t i = 0; i < n; i++) ga[i] += d;
}

FLOPS_FN(flops_in_size) { return (double)it->in[0]->size; }
