/* Internal: the tensor descriptor shared by ops, graph and plan. */
#ifndef RC_TENSOR_H
#define RC_TENSOR_H

#include <stddef.h>
#include "recur.h"

typedef struct tensor {
    rc_dtype dt;
    int ndim;
    int shape[RC_MAX_DIMS];
    size_t size;          /* number of elements */
    void *data;           /* float* or int32_t*; NULL until a plan places it */
} tensor;

/* Sets ndim/shape/size; returns 0, or -1 when a dimension is < 1 or ndim is out of range. */
int tensor_set_shape(tensor *t, int ndim, const int *shape);
/* The last dimension (the feature axis). */
static inline int tensor_cols(const tensor *t) { return t->shape[t->ndim - 1]; }
/* The product of all but the last dimension. */
static inline size_t tensor_rows(const tensor *t) { return t->size / (size_t)tensor_cols(t); }
/* Writes "[d0,d1,..]" into buf. */
void tensor_shape_str(const tensor *t, char *buf, size_t len);
/* 1 when both tensors have the same rank and dims. */
int tensor_same_shape(const tensor *a, const tensor *b);
/* Formats into a fixed-size message buffer. */
void msgf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline float *tensor_f(const tensor *t) { return (float *)t->data; }

#endif
