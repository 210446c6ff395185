/* Internal: the elementwise ops of elementwise_ops.def as code. For each op <name>
 *
 *   ew_f_<name>(x, y, c)       its value
 *   ew_da_<name>(x, y, o, c)   d value / d x, given the value o
 *   ew_db_<name>(x, y, o, c)   d value / d y (0 for one operand)
 *
 * (y unused by one-operand ops, c by all but scale), the only place its formulas
 * become code: the plain kernels (op_elementwise.c), the fused program (op_fused.c)
 * and the cell language's constant folding all call these. They have no calls into
 * libm unless the entry says so (vec 0), so the loops calling them vectorise.
 * And per op id: whether it is in the list, its operands, what its derivatives read,
 * its cost, and whether the fusion pass keeps its value for the reverse sweep. */
#ifndef RC_ELEMENTWISE_H
#define RC_ELEMENTWISE_H

#include <math.h>
#include "fastmath.h"
#include "op.h"

/* What an op's derivatives read: the first operand x, the second y, the value o. */
enum { R_X = 1, R_Y = 2, R_O = 4 };
/* Ops costing this many FLOPs per element or more (transcendentals) have their values
 * kept by a fused node for the reverse sweep instead of being recomputed there. */
#define EW_KEEP_COST 4

#define EW_ARITY_U 1
#define EW_ARITY_UC 1
#define EW_ARITY_B 2

#define EW(ID, name, form, shape, F, DA, DB, reads, cost, vec, bka, bkb, lang)                   \
    static inline float ew_f_##name(float x, float y, float c)                                 \
    {                                                                                          \
        (void)x; (void)y; (void)c;                                                             \
        return (F);                                                                            \
    }                                                                                          \
    static inline float ew_da_##name(float x, float y, float o, float c)                       \
    {                                                                                          \
        (void)x; (void)y; (void)o; (void)c;                                                    \
        return (DA);                                                                           \
    }                                                                                          \
    static inline float ew_db_##name(float x, float y, float o, float c)                       \
    {                                                                                          \
        (void)x; (void)y; (void)o; (void)c;                                                    \
        return (DB);                                                                           \
    }
#include "elementwise_ops.def"
#undef EW

/* 1 when op is an elementwise op of the list (and so may be fused). */
static inline int ew_is(int op)
{
    switch (op) {
#define EW(ID, ...) case OP_##ID:
#include "elementwise_ops.def"
#undef EW
        return 1;
    default:
        return 0;
    }
}

/* Number of operands (1 or 2) of an op of the list; 0 for other ops. */
static inline int ew_arity(int op)
{
    switch (op) {
#define EW(ID, name, form, ...) case OP_##ID: return EW_ARITY_##form;
#include "elementwise_ops.def"
#undef EW
    default:
        return 0;
    }
}

/* What the derivatives of an op of the list read (R_X, R_Y, R_O); 0 for other ops. */
static inline unsigned ew_reads(int op)
{
    switch (op) {
#define EW(ID, name, form, shape, F, DA, DB, reads, ...) case OP_##ID: return (unsigned)(reads);
#include "elementwise_ops.def"
#undef EW
    default:
        return 0;
    }
}

/* Forward FLOPs per element of an op of the list; 0 for other ops. */
static inline int ew_cost(int op)
{
    switch (op) {
#define EW(ID, name, form, shape, F, DA, DB, reads, cost, ...) case OP_##ID: return cost;
#include "elementwise_ops.def"
#undef EW
    default:
        return 0;
    }
}

/* 1 when a fused node keeps the op's value for the reverse sweep. */
static inline int ew_keep(int op) { return ew_cost(op) >= EW_KEEP_COST; }

#endif
