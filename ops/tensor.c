#include "tensor.h"
#include <stdio.h>
#include <stdarg.h>
#include <string.h>

int tensor_set_shape(tensor *t, int ndim, const int *shape)
{
    if (ndim < 1 || ndim > RC_MAX_DIMS || !shape) return -1;
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 1) return -1;
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        if (__builtin_mul_overflow(n, (size_t)shape[d], &n) || n > TENSOR_MAX_SIZE) return -2;
    t->ndim = ndim;
    memset(t->shape, 0, sizeof t->shape);
    memcpy(t->shape, shape, (size_t)ndim * sizeof(int));
    t->size = n;
    return 0;
}

int tensor_set_shape_msg(tensor *t, int ndim, const int *shape, char *msg, size_t len)
{
    int rc = tensor_set_shape(t, ndim, shape);
    if (rc == 0) return 0;
    if (ndim < 1 || ndim > RC_MAX_DIMS || !shape) {
        msgf(msg, len, "the result would have rank %d, outside 1..%d", ndim, RC_MAX_DIMS);
        return -1;
    }
    char sh[16 * RC_MAX_DIMS];
    tensor_dims_str(ndim, shape, sh, sizeof sh);
    if (rc == -2)
        msgf(msg, len, "the result %s would have more than %zu elements (its size overflows)", sh,
             (size_t)TENSOR_MAX_SIZE);
    else
        msgf(msg, len, "the result %s would have a dimension < 1", sh);
    return -1;
}

void tensor_dims_str(int ndim, const int *shape, char *buf, size_t len)
{
    size_t k = 0;
    if (len == 0) return;
    buf[0] = 0;
    k += (size_t)snprintf(buf + k, len - k, "[");
    for (int d = 0; d < ndim && k < len; d++)
        k += (size_t)snprintf(buf + k, len - k, d ? ",%d" : "%d", shape[d]);
    if (k < len) snprintf(buf + k, len - k, "]");
}

void tensor_shape_str(const tensor *t, char *buf, size_t len)
{
    tensor_dims_str(t->ndim, t->shape, buf, len);
}

int tensor_same_shape(const tensor *a, const tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

void msgf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}
