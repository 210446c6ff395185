/* Tests of buffer planning (graph/memplan.c, graph/plan_layout.c).
 *
 * Suite `memplan`:
 *  - no_overlap_when_alive_together: random lifetimes and sizes; any two buffers
 *    alive at a common step get disjoint ranges, and reuse does happen.
 *  - training_plan_shares_gradients: an unrolled LSTM's arena is smaller with buffer
 *    planning; parameter and input gradients agree bitwise with the unplanned plan;
 *    a per-step gradient is NULL (its memory reused), readable without planning.
 *  - inference_plan_shares_values: an RC_PLAN_NO_GRAD plan of the same LSTM keeps
 *    its roots (equal to the training plan's) in a smaller arena; intermediates NULL.
 *  - fresh_gradients_shared_operands: x @ x and x feeding several ops: gradcheck (a
 *    fresh gradient stored where contributions must add would fail). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"
#include "param_grads.h"
#include "memplan.h"

Test(memplan, no_overlap_when_alive_together)
{
    enum { N = 300 };
    memplan_item it[N];
    uint64_t s = 77;
    size_t sum = 0;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        int b = (int)((s >> 33) % 200), len = (int)((s >> 20) % 30);
        size_t size = 64 * (1 + (size_t)((s >> 45) % 50));
        it[i] = (memplan_item){ size, b, b + len, 0 };
        sum += size;
    }
    size_t total = 0;
    cr_assert_eq(memplan_assign(N, it, &total), 0);
    cr_expect_lt(total, sum / 2, "planned %zu bytes of %zu: little reuse", total, sum);
    for (int i = 0; i < N; i++) {
        cr_expect_leq(it[i].offset + it[i].size, total);
        for (int j = i + 1; j < N; j++) {
            int together = it[i].birth <= it[j].death && it[j].birth <= it[i].death;
            int disjoint = it[i].offset + it[i].size <= it[j].offset || it[j].offset + it[j].size <= it[i].offset;
            if (together) cr_expect(disjoint, "buffers %d [%d,%d] and %d [%d,%d] overlap in memory", i, it[i].birth,
                                    it[i].death, j, it[j].birth, it[j].death);
        }
    }
}

typedef struct net { rc_graph *g; rc_plan *p; rc_node *x, *out, *loss, *h[8]; } net;

static void build(net *n, unsigned flags)
{
    enum { T = 8, B = 3, I = 5, H = 16 };
    memset(n, 0, sizeof *n);
    n->g = rc_graph_new();
    n->x = rc_input(n->g, "x", RC_F32, 2, (int[]){ T * B, I });
    rc_requires_grad(n->x, 1);
    rc_cell *cell = rc_cell_lstm(H, NULL);
    rc_node *states[T * 2];
    rc_unroll_opts o = { .prefix = "l0.", .states = states };
    cr_assert_eq(rc_unroll(n->g, cell, n->x, T, &o, &n->out, NULL), RC_OK, "%s", rc_graph_error(n->g));
    for (int t = 0; t < T; t++) n->h[t] = states[t * 2];
    rc_cell_free(cell);
    n->loss = rc_mean(n->g, rc_mul(n->g, n->out, n->out));
    rc_graph_init_params(n->g, 3);
    rc_node *roots[2] = { n->loss, n->out };
    n->p = (flags & RC_PLAN_NO_GRAD) ? rc_plan_new_ex(n->g, 1, &n->out, flags) : rc_plan_new_ex(n->g, 2, roots, flags);
    cr_assert_not_null(n->p, "%s", rc_graph_error(n->g));
    float x[T * B * I];
    uint64_t s = 5;
    for (int i = 0; i < T * B * I; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 40) & 0xffff) / 32768.0f - 1.0f;
    }
    cr_assert_eq(rc_plan_feed(n->p, n->x, x, T * B * I), RC_OK);
    cr_assert_eq(rc_plan_forward(n->p), RC_OK, "%s", rc_plan_error(n->p));
    if (!(flags & RC_PLAN_NO_GRAD)) cr_assert_eq(rc_plan_backward(n->p, n->loss), RC_OK, "%s", rc_plan_error(n->p));
}

static void drop(net *n)
{
    rc_plan_free(n->p);
    rc_graph_free(n->g);
}

Test(memplan, training_plan_shares_gradients)
{
    net a, b;
    build(&a, 0);
    build(&b, RC_PLAN_NO_BUFFER_PLAN);
    cr_expect_lt(rc_plan_arena_bytes(a.p), rc_plan_arena_bytes(b.p), "arena %zu with planning, %zu without",
                 rc_plan_arena_bytes(a.p), rc_plan_arena_bytes(b.p));
    size_t nx = rc_node_size(a.x);
    cr_expect_eq(memcmp(rc_plan_grad(a.p, a.x), rc_plan_grad(b.p, b.x), nx * sizeof(float)), 0);
    expect_param_grads_bitwise(a.g, a.p, b.g, b.p, "training plan");
    cr_expect_null(rc_plan_grad(a.p, a.h[3]), "a per-step gradient's memory is reused: NULL expected");
    cr_expect_not_null(rc_plan_grad(b.p, b.h[3]));
    drop(&a);
    drop(&b);
}

Test(memplan, inference_plan_shares_values)
{
    net a, b, t;
    build(&a, RC_PLAN_NO_GRAD);
    build(&b, RC_PLAN_NO_GRAD | RC_PLAN_NO_BUFFER_PLAN);
    build(&t, 0);
    cr_expect_lt(rc_plan_arena_bytes(a.p), rc_plan_arena_bytes(b.p), "arena %zu with planning, %zu without",
                 rc_plan_arena_bytes(a.p), rc_plan_arena_bytes(b.p));
    size_t no = rc_node_size(a.out);
    cr_expect_eq(memcmp(rc_plan_value(a.p, a.out), rc_plan_value(b.p, b.out), no * sizeof(float)), 0);
    cr_expect_eq(memcmp(rc_plan_value(a.p, a.out), rc_plan_value(t.p, t.out), no * sizeof(float)), 0);
    cr_expect_null(rc_plan_value(a.p, a.h[2]), "an intermediate's memory is reused: NULL expected");
    drop(&a);
    drop(&b);
    drop(&t);
}

/* Operands used twice by one op: a fresh gradient must not be stored twice (x @ x),
 * nor by two instances in one sweep (tanh(x) + x @ w): the gradient check catches a
 * store where an add belongs. */
Test(memplan, fresh_gradients_shared_operands)
{
    rc_graph *g = rc_graph_new();
    rc_node *x = rc_param(g, "x", 2, (int[]){ 4, 4 }), *w = rc_param(g, "w", 2, (int[]){ 4, 4 });
    rc_node *v = rc_param(g, "v", 2, (int[]){ 4, 4 });
    rc_node *y = rc_add(g, rc_matmul(g, x, x), rc_add(g, rc_tanh(g, x), rc_matmul(g, x, w)));
    rc_node *vv = rc_matmul(g, v, v);   /* v's only use: its first contribution is both operands' */
    rc_node *loss = rc_add(g, rc_sum(g, rc_mul(g, y, y)), rc_sum(g, rc_mul(g, vv, vv)));
    rc_graph_init_params(g, 3);
    rc_plan *p = rc_plan_new(g, 1, &loss);
    cr_assert_not_null(p, "%s", rc_graph_error(g));
    rc_node *wrt[3] = { x, w, v };
    double err = 1;
    cr_assert_eq(rc_gradcheck(p, loss, 3, wrt, 1e-2f, &err), RC_OK, "%s", rc_plan_error(p));
    cr_expect_leq(err, 5e-3, "gradient error %g", err);
    rc_plan_free(p);
    rc_graph_free(g);
}
