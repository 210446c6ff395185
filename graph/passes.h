/* Internal: graph passes, run by rc_plan_new on the part of the graph a plan needs.
 * Each rewrites nodes in place into cheaper equivalent ones; the rewritten graph
 * computes the same values, and the reverse sweep needs nothing special, because
 * every rewritten node is an ordinary op of the table. */
#ifndef RC_PASSES_H
#define RC_PASSES_H

#include "graph.h"

enum { PASS_NONE = 0, PASS_TIME_BATCH = 1, PASS_GEMM_FUSION = 2, PASS_EW_FUSION = 3 };

/* Matmuls op(row_slice(X, s, B)) @ W of one X and one W become one GEMM over all of
 * X, whose rows the old nodes then slice (a projection of every time step at once).
 * Cost rule: when the pack-once kernel serves per-step products (flags without
 * RC_PLAN_NO_PACKED_GEMM), only thin steps (B < 8 rows) are batched, unless
 * RC_PLAN_FORCE_TIME_BATCH. Returns the number of GEMMs made, or -1 (recorded on g). */
int pass_time_batch(rc_graph *g, unsigned flags);
/* Matmuls A @ W_k of one A and several parameter (or constant) matrices W_k become one
 * GEMM against the concatenated weights, whose columns the old nodes then slice.
 * The concatenation of a set of weights is built once and shared by all time steps.
 * Returns the number of GEMMs made, or -1. */
int pass_gemm_fusion(rc_graph *g);
/* Groups of elementwise ops (gate nonlinearities, a cell update) with one result, on
 * the part of the graph the roots need, become one OP_FUSED node each, which runs the
 * group as one loop over cache-sized tiles forward and backward (ops/fused.h); roots
 * are never fused away. flags: the plan's (RC_PLAN_NO_GRAD: keep nothing for a
 * reverse sweep). Returns the number of fused nodes made, or -1. */
int pass_ew_fusion(rc_graph *g, int n_roots, rc_node *const *roots, unsigned flags);
/* The name of a pass. */
const char *pass_name(int pass);

#endif
