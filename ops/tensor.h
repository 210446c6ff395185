/* Internal: the tensor descriptor shared by ops, graph and plan. */
#ifndef RC_TENSOR_H
#define RC_TENSOR_H

#include <stddef.h>
#include <stdint.h>
#include "recur.h"

typedef struct tensor {
    rc_dtype dt;
    int ndim;
    int shape[RC_MAX_DIMS];
    size_t size;          /* number of elements */
    void *data;           /* float* or int32_t*; NULL until a plan places it */
} tensor;

/* The largest element count of a tensor: its bytes (4 per element) fit a ptrdiff_t,
 * so byte counts and pointer offsets of any tensor cannot overflow. */
#define TENSOR_MAX_SIZE ((size_t)PTRDIFF_MAX / 4)

/* Sets ndim/shape/size; returns 0, -1 when a dimension is < 1 or ndim is out of
 * range, -2 when the element count exceeds TENSOR_MAX_SIZE (t is left unchanged). */
int tensor_set_shape(tensor *t, int ndim, const int *shape);
/* tensor_set_shape for a result: 0, or -1 with why in msg (len bytes), naming the
 * shape ("[65536,65536,65536,65536]"). */
int tensor_set_shape_msg(tensor *t, int ndim, const int *shape, char *msg, size_t len);
/* Writes "[d0,d1,..]" of ndim dims (any values) into buf. */
void tensor_dims_str(int ndim, const int *shape, char *buf, size_t len);
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
