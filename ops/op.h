/* Internal: the op table. Every primitive op is one descriptor: name, arity, shape
 * rule, forward kernel, backward kernel (vector-Jacobian product), FLOP count.
 * The ops are listed once, in op_list.def (the elementwise ones in
 * elementwise_ops.def): the op ids and the table are made from that list. */
#ifndef RC_OP_H
#define RC_OP_H

#include <stdint.h>
#include "tensor.h"

/* OP_MATMUL, OP_ADD, ..., OP_FUSED (a group of elementwise ops made by the fusion
 * pass, ops/fused.h), in the order of op_list.def. */
typedef enum op_id {
#define OP(ID, ...) OP_##ID,
#define EW(ID, ...) OP_##ID,
#include "op_list.def"
#undef OP
#undef EW
    OP_COUNT
} op_id;

/* Op flags, read by passes and the scheduler. */
enum {
    OPF_ELEMENTWISE = 1u << 0, /* out[i] depends on in[k][i] only (after broadcast) */
    OPF_LOSS        = 1u << 1,
    OPF_NEEDS_OUT   = 1u << 2  /* backward reads the output value */
};

/* Per-node constants of an op. */
typedef struct op_params {
    int i[4];        /* matmul: ta, tb; slice, row_slice: start, len */
    float f[2];      /* scale: c; dropout: p */
    uint64_t seed;   /* dropout */
    struct fused_prog *fused; /* OP_FUSED: its program (ops/fused.h), owned by the node */
} op_params;

#define OP_MSG 256

/* One op instance on the tape: where its operands, result and gradients live. */
typedef struct op_inst {
    int op;
    int nin;
    const op_params *par;
    tensor **in;          /* input values */
    float **gin;          /* input gradients, NULL entries where none is needed */
    tensor *out;          /* output value */
    float *gout;          /* output gradient (NULL when the reverse sweep skips it) */
    void *aux;            /* scratch kept from forward to backward (aux_bytes) */
    uint64_t run;         /* the plan's run counter (dropout masks) */
    uint64_t epoch;       /* forward runs of the plan so far: packed weights are fresh if stamped with it */
    struct gemm_pack *pack[2]; /* matmul: op(B) packed for forward, op(B)^T for dA (gemm_small.h), or NULL */
    unsigned gwhole;      /* op_desc.overwrites of this instance, taken when the plan is built */
    unsigned gfresh;      /* backward: bit j set when gin[j] holds nothing yet in this sweep and the
                             op writes it whole (gwhole): store into it, do not add */
    int training;
} op_inst;

typedef struct op_desc {
    const char *name;
    int arity;            /* number of inputs; -1: one or more */
    unsigned flags;
    /* Fills out->dt/ndim/shape/size from the input descriptors; 0, or -1 with msg. */
    int (*shape)(int nin, tensor *const *in, const op_params *par, tensor *out, char *msg);
    /* Bytes of scratch the instance needs between forward and backward (may be NULL). */
    size_t (*aux_bytes)(const op_inst *it);
    /* Computes out; 0, or -1 with msg (a bad index at run time). */
    int (*forward)(op_inst *it, char *msg);
    /* Adds the vector-Jacobian product of gout into every non-NULL gin. */
    void (*backward)(op_inst *it);
    /* Forward FLOPs of the instance. */
    double (*flops)(const op_inst *it);
    /* The operands (bit j for gin[j], j < 32) whose gradient backward writes whole, each
     * element exactly once, so that a fresh gradient buffer need not be cleared first
     * (the sweep sets it->gfresh); NULL: none, backward always adds. */
    unsigned (*overwrites)(const op_inst *it);
} op_desc;

/* The table, indexed by op_id, OP_COUNT rows (op_table.c asserts it). Tests may swap a
 * backward in and out to prove that the gradient check catches a wrong one; nothing
 * else writes it. */
extern op_desc op_table[];

/* Number of elements above which elementwise loops are split across threads. */
#define OP_PAR_MIN 32768

/* Packs a matmul instance's weight for this run if it uses a packed copy (forward's,
 * or dA's when backward), so that instances can then run side by side; a no-op for
 * other ops. */
void matmul_prepare(op_inst *it, int backward);

/* Threads a loop may use here: 1 inside a parallel region or with one thread set. */
int op_threads(void);
/* Inside a parallel region: the team's size and this thread's number (1 and 0 outside). */
int op_team_size(void);
int op_team_id(void);
/* This thread's share [t0, t1) of n items, in contiguous blocks (OpenMP's static
 * schedule), inside a parallel region. */
void op_thread_range(size_t n, size_t *t0, size_t *t1);
/* for (size_t i = 0; i < n; i++) { body }, split across threads (static schedule)
 * when cond holds and more than one thread is available; otherwise a plain loop
 * outside any OpenMP region. */
#define PAR_FOR(cond, i, n, ...)                                                  \
    do {                                                                          \
        if ((cond) && op_threads() > 1) {                                         \
            _Pragma("omp parallel for schedule(static)")                          \
            for (size_t i = 0; i < (n); i++) { __VA_ARGS__ }                      \
        } else {                                                                  \
            for (size_t i = 0; i < (n); i++) { __VA_ARGS__ }                      \
        }                                                                         \
    } while (0)

#endif
