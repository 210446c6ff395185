/* Internal: shape rules and kernels referenced by the op table (op_table.c). */
#ifndef RC_KERNELS_H
#define RC_KERNELS_H

#include "op.h"

#define SHAPE_FN(name) int name(int nin, tensor *const *in, const op_params *par, tensor *out, char *msg)
#define FWD_FN(name) int name(op_inst *it, char *msg)
#define BWD_FN(name) void name(op_inst *it)
#define FLOPS_FN(name) double name(const op_inst *it)
#define AUX_FN(name) size_t name(const op_inst *it)

/* Shared shape rules. */
SHAPE_FN(shape_same);          /* unary: out = in[0] */
SHAPE_FN(shape_binary_bcast);  /* b same shape, [cols], [rows..,1] or [1] */
SHAPE_FN(shape_binary_same);   /* b same shape */
SHAPE_FN(shape_row_reduce_keep);   /* [.., n] -> [.., 1] */
SHAPE_FN(shape_scalar);        /* anything -> [1] */
/* Broadcast of a binary op's second operand: 0 same shape, 1 vector over rows,
 * 2 one value per row, 3 scalar, -1 none. */
int bcast_mode(const tensor *a, const tensor *b);

/* op_matmul.c */
SHAPE_FN(shape_matmul); FWD_FN(fwd_matmul); BWD_FN(bwd_matmul); FLOPS_FN(flops_matmul);
unsigned overwrites_matmul(const op_inst *it);

/* op_elementwise.c: the kernels and FLOP counts of the ops of elementwise_ops.def */
#define EW(ID, name, ...) FWD_FN(fwd_##name); BWD_FN(bwd_##name); FLOPS_FN(flops_##name);
#include "elementwise_ops.def"
#undef EW
FLOPS_FN(flops_size);          /* one FLOP per output element */
FLOPS_FN(flops_size4);         /* about four (transcendentals) */
SHAPE_FN(shape_dropout); FWD_FN(fwd_dropout); BWD_FN(bwd_dropout);

/* op_reduce.c */
FWD_FN(fwd_row_sum); BWD_FN(bwd_row_sum);
FWD_FN(fwd_row_mean); BWD_FN(bwd_row_mean);
FWD_FN(fwd_row_var); BWD_FN(bwd_row_var);
FWD_FN(fwd_softmax); BWD_FN(bwd_softmax);
FWD_FN(fwd_log_softmax); BWD_FN(bwd_log_softmax);
FWD_FN(fwd_sum); BWD_FN(bwd_sum);
FWD_FN(fwd_mean); BWD_FN(bwd_mean);
FLOPS_FN(flops_in_size);       /* one FLOP per input element */

/* op_layout.c */
SHAPE_FN(shape_concat); FWD_FN(fwd_concat); BWD_FN(bwd_concat);
SHAPE_FN(shape_slice); FWD_FN(fwd_slice); BWD_FN(bwd_slice);
SHAPE_FN(shape_row_slice); FWD_FN(fwd_row_slice); BWD_FN(bwd_row_slice);
SHAPE_FN(shape_row_concat); FWD_FN(fwd_row_concat); BWD_FN(bwd_row_concat);
SHAPE_FN(shape_embedding); FWD_FN(fwd_embedding); BWD_FN(bwd_embedding);
FLOPS_FN(flops_zero);

/* op_loss.c */
SHAPE_FN(shape_xent); AUX_FN(aux_xent); FWD_FN(fwd_xent); BWD_FN(bwd_xent);
SHAPE_FN(shape_row_loss); FWD_FN(fwd_bce); BWD_FN(bwd_bce);
FWD_FN(fwd_mse); BWD_FN(bwd_mse);

/* op_ctc.c */
SHAPE_FN(shape_ctc); AUX_FN(aux_ctc); FWD_FN(fwd_ctc); BWD_FN(bwd_ctc); FLOPS_FN(flops_ctc);
unsigned overwrites_ctc(const op_inst *it);
/* The samples of a ctc instance's last forward that had no feasible alignment (too
 * short for their labels, or probability 0 in float): their count, and up to max of
 * their indices in samples (may be NULL). */
int ctc_report(const op_inst *it, int32_t *samples, int max);

#endif
