/* The op table: one descriptor per primitive op (see op.h). */
#include "kernels.h"
#include "fused.h"

#define EW OPF_ELEMENTWISE
op_desc op_table[OP_COUNT] = {
    /*               name           arity flags              shape                  aux       forward          backward         flops */
    [OP_MATMUL]      = { "matmul",       2, 0,               shape_matmul,          NULL,     fwd_matmul,      bwd_matmul,      flops_matmul, overwrites_matmul },
    [OP_ADD]         = { "add",          2, EW,              shape_binary_bcast,    NULL,     fwd_add,         bwd_add,         flops_size },
    [OP_SUB]         = { "sub",          2, EW,              shape_binary_bcast,    NULL,     fwd_sub,         bwd_sub,         flops_size },
    [OP_MUL]         = { "mul",          2, EW,              shape_binary_bcast,    NULL,     fwd_mul,         bwd_mul,         flops_size },
    [OP_DIV]         = { "div",          2, EW,              shape_binary_bcast,    NULL,     fwd_div,         bwd_div,         flops_size },
    [OP_SCALE]       = { "scale",        1, EW,              shape_same,            NULL,     fwd_scale,       bwd_scale,       flops_size },
    [OP_ONE_MINUS]   = { "one_minus",    1, EW,              shape_same,            NULL,     fwd_one_minus,   bwd_one_minus,   flops_size },
    [OP_SIGMOID]     = { "sigmoid",      1, EW|OPF_NEEDS_OUT,shape_same,            NULL,     fwd_sigmoid,     bwd_sigmoid,     flops_size4 },
    [OP_TANH]        = { "tanh",         1, EW|OPF_NEEDS_OUT,shape_same,            NULL,     fwd_tanh,        bwd_tanh,        flops_size4 },
    [OP_RELU]        = { "relu",         1, EW,              shape_same,            NULL,     fwd_relu,        bwd_relu,        flops_size },
    [OP_SOFTPLUS]    = { "softplus",     1, EW,              shape_same,            NULL,     fwd_softplus,    bwd_softplus,    flops_size4 },
    [OP_ABS]         = { "abs",          1, EW,              shape_same,            NULL,     fwd_abs,         bwd_abs,         flops_size },
    [OP_SQRT]        = { "sqrt",         1, EW|OPF_NEEDS_OUT,shape_same,            NULL,     fwd_sqrt,        bwd_sqrt,        flops_size4 },
    [OP_EXP]         = { "exp",          1, EW|OPF_NEEDS_OUT,shape_same,            NULL,     fwd_exp,         bwd_exp,         flops_size4 },
    [OP_LOG]         = { "log",          1, EW,              shape_same,            NULL,     fwd_log,         bwd_log,         flops_size4 },
    [OP_MIN]         = { "minimum",      2, EW,              shape_binary_same,     NULL,     fwd_min,         bwd_min,         flops_size },
    [OP_MAX]         = { "maximum",      2, EW,              shape_binary_same,     NULL,     fwd_max,         bwd_max,         flops_size },
    [OP_ROW_MEAN]    = { "row_mean",     1, 0,               shape_row_reduce_keep, NULL,     fwd_row_mean,    bwd_row_mean,    flops_in_size },
    [OP_ROW_VAR]     = { "row_var",      1, 0,               shape_row_reduce_keep, NULL,     fwd_row_var,     bwd_row_var,     flops_in_size },
    [OP_SOFTMAX]     = { "softmax",      1, OPF_NEEDS_OUT,   shape_same,            NULL,     fwd_softmax,     bwd_softmax,     flops_size4 },
    [OP_LOG_SOFTMAX] = { "log_softmax",  1, OPF_NEEDS_OUT,   shape_same,            NULL,     fwd_log_softmax, bwd_log_softmax, flops_size4 },
    [OP_CONCAT]      = { "concat",      -1, 0,               shape_concat,          NULL,     fwd_concat,      bwd_concat,      flops_zero },
    [OP_SLICE]       = { "slice",        1, 0,               shape_slice,           NULL,     fwd_slice,       bwd_slice,       flops_zero },
    [OP_ROW_SLICE]   = { "row_slice",    1, 0,               shape_row_slice,       NULL,     fwd_row_slice,   bwd_row_slice,   flops_zero },
    [OP_ROW_CONCAT]  = { "row_concat",  -1, 0,               shape_row_concat,      NULL,     fwd_row_concat,  bwd_row_concat,  flops_zero },
    [OP_SUM]         = { "sum",          1, 0,               shape_scalar,          NULL,     fwd_sum,         bwd_sum,         flops_in_size },
    [OP_MEAN]        = { "mean",         1, 0,               shape_scalar,          NULL,     fwd_mean,        bwd_mean,        flops_in_size },
    [OP_EMBEDDING]   = { "embedding",    2, 0,               shape_embedding,       NULL,     fwd_embedding,   bwd_embedding,   flops_zero },
    [OP_DROPOUT]     = { "dropout",      1, EW,              shape_dropout,         NULL,     fwd_dropout,     bwd_dropout,     flops_size },
    [OP_SOFTMAX_XENT]= { "softmax_xent", 2, OPF_LOSS,        shape_xent,            aux_xent, fwd_xent,        bwd_xent,        flops_in_size },
    [OP_SIGMOID_BCE] = { "sigmoid_bce",  2, OPF_LOSS,        shape_row_loss,        NULL,     fwd_bce,         bwd_bce,         flops_in_size },
    [OP_MSE]         = { "mse",          2, OPF_LOSS,        shape_row_loss,        NULL,     fwd_mse,         bwd_mse,         flops_in_size },
    [OP_FUSED]       = { "fused",       -1, OPF_NEEDS_OUT,   shape_fused,           aux_fused,fwd_fused,       bwd_fused,       flops_fused, overwrites_fused },
};
