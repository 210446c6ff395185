#include "tensor.h"
#include <stdio.h>
#include <stdarg.h>
#include <string.h>

int tensor_set_shape(tensor *t, int ndim, const int *shape)
{
    if (ndim < 1 || ndim > RC_MAX_DIMS || !shape) return -1;
    size_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1) return -1;
        n *= (size_t)shape[d];
    }
    t->ndim = ndim;
    memset(t->shape, 0, sizeof t->shape);
    memcpy(t->shape, shape, (size_t)ndim * sizeof(int));
    t->size = n;
    return 0;
}

void tensor_shape_str(const tensor *t, char *buf, size_t len)
{
    size_t k = 0;
    if (len == 0) return;
    buf[0] = 0;
    k += (size_t)snprintf(buf + k, len - k, "[");
    for (int d = 0; d < t->ndim && k < len; d++)
        k += (size_t)snprintf(buf + k, len - k, d ? ",%d" : "%d", t->shape[d]);
    if (k < len) snprintf(buf + k, len - k, "]");
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
