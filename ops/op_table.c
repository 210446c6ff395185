/* The op table: one descriptor per primitive op (see op.h), a row per entry of
 * op_list.def (the elementwise ops: elementwise_ops.def), in op_id order. */
#include "elementwise.h"
#include "fused.h"
#include "kernels.h"

/* An elementwise op's flags: backward reads the output when its derivatives do. */
#define EW_FLAGS(reads) (OPF_ELEMENTWISE | (((reads) & R_O) ? OPF_NEEDS_OUT : 0u))

op_desc op_table[] = {
#define OP(ID, name, arity, flags, shape, aux, fwd, bwd, flops, overwrites, ...) \
    { #name, arity, flags, shape, aux, fwd, bwd, flops, overwrites },
#define EW(ID, name, form, shape, F, DA, DB, reads, ...) \
    { #name, EW_ARITY_##form, EW_FLAGS(reads), shape, NULL, fwd_##name, bwd_##name, flops_##name, NULL },
#include "op_list.def"
#undef OP
#undef EW
};
_Static_assert(sizeof op_table / sizeof op_table[0] == OP_COUNT, "one op_table row per op id");
