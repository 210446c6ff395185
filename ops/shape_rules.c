/* Shape rules shared by several ops. Each fills `out` or writes why not into msg. */
#include <string.h>
#include "kernels.h"

static void shp(const tensor *t, char *buf) { tensor_shape_str(t, buf, 64); }

static int need_float(int nin, tensor *const *in, char *msg)
{
    for (int k = 0; k < nin; k++)
        if (in[k]->dt != RC_F32) {
            msgf(msg, OP_MSG, "operand %d must be float32, it is int32", k);
            return -1;
        }
    return 0;
}

SHAPE_FN(shape_same)
{
    (void)par;
    if (need_float(nin, in, msg)) return -1;
    *out = *in[0];
    return 0;
}

SHAPE_FN(shape_binary_same)
{
    (void)par;
    if (need_float(nin, in, msg)) return -1;
    if (!tensor_same_shape(in[0], in[1])) {
        char a[64], b[64];
        shp(in[0], a);
        shp(in[1], b);
        msgf(msg, OP_MSG, "shapes %s and %s differ", a, b);
        return -1;
    }
    *out = *in[0];
    return 0;
}

/* Which broadcast a binary op's second operand uses, from the two shapes. */
int bcast_mode(const tensor *a, const tensor *b)
{
    if (tensor_same_shape(a, b)) return 0;                      /* elementwise */
    if (b->size == 1) return 3;                                 /* scalar */
    if (b->ndim == 1 && b->shape[0] == tensor_cols(a)) return 1; /* row vector over rows */
    if (b->ndim == a->ndim && b->shape[b->ndim - 1] == 1) {     /* one value per row */
        for (int d = 0; d + 1 < a->ndim; d++)
            if (a->shape[d] != b->shape[d]) return -1;
        return 2;
    }
    return -1;
}

SHAPE_FN(shape_binary_bcast)
{
    (void)par;
    if (need_float(nin, in, msg)) return -1;
    if (bcast_mode(in[0], in[1]) < 0) {
        char a[64], b[64];
        shp(in[0], a);
        shp(in[1], b);
        msgf(msg, OP_MSG,
             "shapes %s and %s do not agree: the second operand must have the first's shape, "
             "be a vector of its last dimension (%d), one value per row ([...,1]) or a scalar",
             a, b, tensor_cols(in[0]));
        return -1;
    }
    *out = *in[0];
    return 0;
}

SHAPE_FN(shape_row_reduce_keep)
{
    (void)par;
    if (need_float(nin, in, msg)) return -1;
    *out = *in[0];
    out->shape[out->ndim - 1] = 1;
    out->size = tensor_rows(in[0]);
    return 0;
}

SHAPE_FN(shape_scalar)
{
    (void)par;
    if (need_float(nin, in, msg)) return -1;
    int one = 1;
    out->dt = RC_F32;
    tensor_set_shape(out, 1, &one);
    return 0;
}
