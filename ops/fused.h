/* Internal: the program of a fused elementwise node (OP_FUSED). The elementwise-fusion
 * pass (graph/pass_fuse.c) turns a group of elementwise op nodes with one result into
 * one node whose inputs are the group's external operands and whose parameters point
 * at a fused_prog; ops/op_fused.c runs it over cache-sized tiles, forward and
 * backward, so the group's intermediates never reach the arena (only the results of
 * transcendentals are kept, in the node's scratch, for the reverse sweep). */
#ifndef RC_FUSED_H
#define RC_FUSED_H

#include "op.h"

/* Largest number of instructions of one program (a group stops growing there). */
#define FZ_MAX_INS 48

/* An external operand: input k of the fused node, seen with broadcast mode `mode`
 * (bcast_mode against the node's shape: 0 same shape, 1 row vector, 2 one value per
 * row, 3 scalar). It may be a window of its node, the row_slice / slice ops the pass
 * looked through: with the node's flattened rows and its last axis as columns, the
 * operand's element (r, c) is in[k][(roff + r) * cols(in[k]) + coff + c] (r = 0 for
 * modes 1 and 3, c = 0 for modes 2 and 3). */
typedef struct fz_ext {
    int mode;
    int roff, coff;
    int whole;          /* the program's windows of this node cover it exactly once and each
                           is one instruction's operand: its gradient can be stored, not added */
} fz_ext;

/* Operand references: r >= 0 is the result of instruction r; r < 0 is external -(r + 1). */
#define FZ_EXT(k) (-(k) - 1)

typedef struct fz_ins {
    int op;             /* an op of elementwise_ops.def (fused_op_ok) */
    int a, b;           /* operands; b is unused by unary ops */
    float c;            /* scale's constant */
    int save;           /* slot of the node's scratch that keeps the result for the reverse
                           sweep (transcendentals), or -1: recomputed there from the inputs */
    unsigned char first_a, first_b; /* the reverse sweep's first gradient into register a / b */
} fz_ins;

typedef struct fused_prog {
    int nins;           /* the last instruction's result is the node's value */
    int next;           /* external operands = the node's inputs */
    fz_ins *ins;
    fz_ext *ext;
    int nsave;          /* saved results (0 in programs made for a plan without gradients) */
    int serial;         /* two windows of one node overlap differently: one thread only */
    int partials;       /* the scratch has room for per-tile partial sums of broadcast
                           gradients, so the reverse sweep may use threads */
    tensor shape;       /* the node's shape (data NULL) */
} fused_prog;

/* The op table's entries for OP_FUSED (op_fused.c). */
int shape_fused(int nin, tensor *const *in, const op_params *par, tensor *out, char *msg);
size_t aux_fused(const op_inst *it);
int fwd_fused(op_inst *it, char *msg);
void bwd_fused(op_inst *it);
double flops_fused(const op_inst *it);
unsigned overwrites_fused(const op_inst *it);

/* Frees a program (NULL is fine). Called by node_free for OP_FUSED nodes. */
void fused_prog_free(fused_prog *p);
/* 1 when op can be an instruction of a fused program. */
int fused_op_ok(int op);

#endif
