/* Ops that move data without arithmetic: concat and slice along the last axis,
 * and embedding lookup (gather rows; its gradient scatter-adds). */
#include <limits.h>
#include <string.h>
#include "kernels.h"

SHAPE_FN(shape_concat)
{
    (void)par;
    const tensor *a = in[0];
    long long cols = 0;
    for (int k = 0; k < nin; k++) {
        const tensor *t = in[k];
        if (t->dt != RC_F32) {
            msgf(msg, OP_MSG, "part %d must be float32", k);
            return -1;
        }
        int same = t->ndim == a->ndim;
        for (int d = 0; same && d + 1 < a->ndim; d++) same = t->shape[d] == a->shape[d];
        if (!same) {
            char s0[64], sk[64];
            tensor_shape_str(a, s0, sizeof s0);
            tensor_shape_str(t, sk, sizeof sk);
            msgf(msg, OP_MSG, "part %d has shape %s, part 0 has %s: all but the last axis must agree",
                 k, sk, s0);
            return -1;
        }
        cols += tensor_cols(t);
    }
    if (cols > INT_MAX) {
        msgf(msg, OP_MSG, "the parts' last axes add up to %lld, more than %d", cols, INT_MAX);
        return -1;
    }
    int shape[RC_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[a->ndim - 1] = (int)cols;
    out->dt = RC_F32;
    return tensor_set_shape_msg(out, a->ndim, shape, msg, OP_MSG);
}

FWD_FN(fwd_concat)
{
    (void)msg;
    float *o = it->out->data;
    size_t oc = (size_t)tensor_cols(it->out), rows = tensor_rows(it->out), off = 0;
    for (int k = 0; k < it->nin; k++) {
        const float *a = it->in[k]->data;
        size_t c = (size_t)tensor_cols(it->in[k]);
        for (size_t r = 0; r < rows; r++) memcpy(o + r * oc + off, a + r * c, c * sizeof(float));
        off += c;
    }
    return 0;
}

BWD_FN(bwd_concat)
{
    const float *g = it->gout;
    size_t oc = (size_t)tensor_cols(it->out), rows = tensor_rows(it->out), off = 0;
    for (int k = 0; k < it->nin; k++) {
        float *ga = it->gin[k];
        size_t c = (size_t)tensor_cols(it->in[k]);
        if (ga)
            for (size_t r = 0; r < rows; r++)
                for (size_t j = 0; j < c; j++) ga[r * c + j] += g[r * oc + off + j];
        off += c;
    }
}

SHAPE_FN(shape_slice)
{
    (void)nin;
    const tensor *a = in[0];
    int start = par->i[0], len = par->i[1], cols = tensor_cols(a);
    if (a->dt != RC_F32) {
        msgf(msg, OP_MSG, "operand must be float32");
        return -1;
    }
    if (start < 0 || len < 1 || start > cols - len) {
        msgf(msg, OP_MSG, "columns [%d, %lld) are not inside the last axis of size %d",
             start, (long long)start + len, cols);
        return -1;
    }
    *out = *a;
    out->shape[out->ndim - 1] = len;
    out->size = tensor_rows(a) * (size_t)len;
    return 0;
}

FWD_FN(fwd_slice)
{
    (void)msg;
    const float *a = it->in[0]->data;
    float *o = it->out->data;
    size_t ac = (size_t)tensor_cols(it->in[0]), rows = tensor_rows(it->in[0]);
    size_t start = (size_t)it->par->i[0], len = (size_t)it->par->i[1];
    for (size_t r = 0; r < rows; r++) memcpy(o + r * len, a + r * ac + start, len * sizeof(float));
    return 0;
}

BWD_FN(bwd_slice)
{
    float *ga = it->gin[0];
    const float *g = it->gout;
    size_t ac = (size_t)tensor_cols(it->in[0]), rows = tensor_rows(it->in[0]);
    size_t start = (size_t)it->par->i[0], len = (size_t)it->par->i[1];
    if (!ga) return;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < len; j++) ga[r * ac + start + j] += g[r * len + j];
}

/* Rows of a 2-D tensor: how an unrolled graph takes step t's [B, I] block out of
 * a [T*B, I] sequence, and stacks T step outputs back into one [T*B, H] block. */
SHAPE_FN(shape_row_slice)
{
    (void)nin;
    const tensor *a = in[0];
    int start = par->i[0], len = par->i[1];
    if (a->dt != RC_F32 || a->ndim != 2) {
        msgf(msg, OP_MSG, "operand must be a 2-D float tensor");
        return -1;
    }
    if (start < 0 || len < 1 || start > a->shape[0] - len) {
        msgf(msg, OP_MSG, "rows [%d, %lld) are not inside the %d rows", start, (long long)start + len, a->shape[0]);
        return -1;
    }
    int shape[2] = { len, a->shape[1] };
    out->dt = RC_F32;
    return tensor_set_shape_msg(out, 2, shape, msg, OP_MSG);
}

FWD_FN(fwd_row_slice)
{
    (void)msg;
    size_t cols = (size_t)it->in[0]->shape[1];
    memcpy(it->out->data, (const float *)it->in[0]->data + (size_t)it->par->i[0] * cols,
           it->out->size * sizeof(float));
    return 0;
}

BWD_FN(bwd_row_slice)
{
    float *ga = it->gin[0];
    const float *g = it->gout;
    size_t cols = (size_t)it->in[0]->shape[1], n = it->out->size;
    if (!ga) return;
    ga += (size_t)it->par->i[0] * cols;
    for (size_t i = 0; i < n; i++) ga[i] += g[i];
}

SHAPE_FN(shape_row_concat)
{
    (void)par;
    long long rows = 0;
    int cols = in[0]->ndim == 2 ? in[0]->shape[1] : 0;
    for (int k = 0; k < nin; k++) {
        const tensor *t = in[k];
        if (t->dt != RC_F32 || t->ndim != 2 || t->shape[1] != cols) {
            char s0[64], sk[64];
            tensor_shape_str(in[0], s0, sizeof s0);
            tensor_shape_str(t, sk, sizeof sk);
            msgf(msg, OP_MSG, "part %d has shape %s, part 0 has %s: parts must be 2-D float with equal columns",
                 k, sk, s0);
            return -1;
        }
        rows += t->shape[0];
    }
    if (rows > INT_MAX) {
        msgf(msg, OP_MSG, "the parts' rows add up to %lld, more than %d", rows, INT_MAX);
        return -1;
    }
    int shape[2] = { (int)rows, cols };
    out->dt = RC_F32;
    return tensor_set_shape_msg(out, 2, shape, msg, OP_MSG);
}

FWD_FN(fwd_row_concat)
{
    (void)msg;
    char *o = it->out->data;
    for (int k = 0; k < it->nin; k++) {
        size_t b = it->in[k]->size * sizeof(float);
        memcpy(o, it->in[k]->data, b);
        o += b;
    }
    return 0;
}

BWD_FN(bwd_row_concat)
{
    const float *g = it->gout;
    for (int k = 0; k < it->nin; k++) {
        float *ga = it->gin[k];
        size_t n = it->in[k]->size;
        if (ga)
            for (size_t i = 0; i < n; i++) ga[i] += g[i];
        g += n;
    }
}

SHAPE_FN(shape_embedding)
{
    (void)nin;
    (void)par;
    const tensor *tab = in[0], *idx = in[1];
    if (tab->dt != RC_F32 || tab->ndim != 2) {
        msgf(msg, OP_MSG, "the table must be a 2-D float tensor [vocabulary, dim]");
        return -1;
    }
    if (idx->dt != RC_I32) {
        msgf(msg, OP_MSG, "the indices must be int32");
        return -1;
    }
    if (idx->ndim + 1 > RC_MAX_DIMS) {
        msgf(msg, OP_MSG, "indices of rank %d give a result of rank %d > %d", idx->ndim,
             idx->ndim + 1, RC_MAX_DIMS);
        return -1;
    }
    int shape[RC_MAX_DIMS];
    memcpy(shape, idx->shape, (size_t)idx->ndim * sizeof(int));
    shape[idx->ndim] = tab->shape[1];
    out->dt = RC_F32;
    return tensor_set_shape_msg(out, idx->ndim + 1, shape, msg, OP_MSG);
}

FWD_FN(fwd_embedding)
{
    const float *tab = it->in[0]->data;
    const int32_t *idx = it->in[1]->data;
    float *o = it->out->data;
    size_t n = it->in[1]->size, d = (size_t)it->in[0]->shape[1];
    int32_t v = it->in[0]->shape[0];
    for (size_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= v) {
            msgf(msg, OP_MSG, "index %d at position %zu is outside the table's %d rows", idx[i], i, v);
            return -1;
        }
        memcpy(o + i * d, tab + (size_t)idx[i] * d, d * sizeof(float));
    }
    return 0;
}

BWD_FN(bwd_embedding)
{
    float *gt = it->gin[0];
    const int32_t *idx = it->in[1]->data;
    const float *g = it->gout;
    size_t n = it->in[1]->size, d = (size_t)it->in[0]->shape[1];
    if (!gt) return;
    /* Serial over positions: a repeated index sums its rows in a fixed order. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) gt[(size_t)idx[i] * d + j] += g[i * d + j];
}

FLOPS_FN(flops_zero) { (void)it; return 0.0; }
