/* Tests of the level scheduler (graph/schedule.c): with two threads, plans run
 * independent instances side by side, with results bitwise those of the plain tape
 * order (RC_PLAN_NO_SCHEDULE).
 *
 * Suite `schedule`:
 *  - two_chains_bitwise: two independent unrolled LSTMs (as the two directions of a
 *    bidirectional layer) summed into one loss; forward and backward have parallel
 *    levels; loss, outputs and every gradient bitwise equal.
 *  - tied_chains_bitwise: the same with both chains on one set of parameters, whose
 *    gradients both add into from the same levels.
 *  - inference_shared_values: the same in an RC_PLAN_NO_GRAD plan, whose values share
 *    memory (the scheduler must order reuses of a buffer).
 *  - recompute_keeps_tape_order: RC_PLAN_RECOMPUTE plans have no schedule (segments
 *    are runs of the tape) and give the same results with two threads.
 *  - one_thread_same_bits: a scheduled plan on one thread (level order, no region)
 *    gives the bits of two threads. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"
#include "param_grads.h"
#include "plan.h"

typedef struct net { rc_graph *g; rc_plan *p; rc_node *x[2], *out[2], *loss; } net;

static int shared_prefix;   /* both chains use one set of parameters */

static void build(net *n, unsigned flags)
{
    enum { T = 12, B = 8, I = 16, H = 64 };
    memset(n, 0, sizeof *n);
    n->g = rc_graph_new();
    rc_cell *cell = rc_cell_lstm(H, NULL);
    const char *pre[2] = { "fw.", "bw." };
    for (int d = 0; d < 2; d++) {
        n->x[d] = rc_input(n->g, d ? "xb" : "xf", RC_F32, 2, (int[]){ T * B, I });
        rc_requires_grad(n->x[d], 1);
        rc_unroll_opts o = { .prefix = shared_prefix ? "tied." : pre[d] };
        cr_assert_eq(rc_unroll(n->g, cell, n->x[d], T, &o, &n->out[d], NULL), RC_OK, "%s", rc_graph_error(n->g));
    }
    rc_cell_free(cell);
    n->loss = rc_add(n->g, rc_mean(n->g, rc_mul(n->g, n->out[0], n->out[0])), rc_mean(n->g, rc_tanh(n->g, n->out[1])));
    rc_graph_init_params(n->g, 9);
    rc_node *roots[3] = { n->loss, n->out[0], n->out[1] };
    n->p = rc_plan_new_ex(n->g, 3, roots, flags);
    cr_assert_not_null(n->p, "%s", rc_graph_error(n->g));
    uint64_t s = 12;
    for (int d = 0; d < 2; d++) {
        float x[T * B * I];
        for (int i = 0; i < T * B * I; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            x[i] = (float)((s >> 40) & 0xffff) / 32768.0f - 1.0f;
        }
        cr_assert_eq(rc_plan_feed(n->p, n->x[d], x, T * B * I), RC_OK);
    }
    cr_assert_eq(rc_plan_forward(n->p), RC_OK, "%s", rc_plan_error(n->p));
    if (!(flags & RC_PLAN_NO_GRAD)) cr_assert_eq(rc_plan_backward(n->p, n->loss), RC_OK, "%s", rc_plan_error(n->p));
}

static void drop(net *n)
{
    rc_plan_free(n->p);
    rc_graph_free(n->g);
}

static void same(net *a, net *b, int grads)
{
    for (int d = 0; d < 2; d++)
        cr_expect_eq(memcmp(rc_plan_value(a->p, a->out[d]), rc_plan_value(b->p, b->out[d]),
                            rc_node_size(a->out[d]) * sizeof(float)), 0, "outputs %d differ", d);
    if (!grads) return;
    cr_expect_eq(memcmp(rc_plan_value(a->p, a->loss), rc_plan_value(b->p, b->loss), sizeof(float)), 0);
    for (int d = 0; d < 2; d++)
        cr_expect_eq(memcmp(rc_plan_grad(a->p, a->x[d]), rc_plan_grad(b->p, b->x[d]),
                            rc_node_size(a->x[d]) * sizeof(float)), 0, "input gradient %d differs", d);
    expect_param_grads_bitwise(a->g, a->p, b->g, b->p, "scheduled");
}

static void compare(unsigned flags, int want_bwd_levels, int want_sched)
{
    int before = rc_num_threads();
    rc_set_num_threads(2);
    net a, b;
    build(&a, flags);
    build(&b, flags | RC_PLAN_NO_SCHEDULE);
    if (!want_sched) cr_expect_null(a.p->fsched.order, "a schedule in the recompute mode");
    else cr_expect_gt(a.p->fsched.npar, 0, "no forward level runs side by side");
    if (want_bwd_levels) cr_expect_gt(a.p->bsched.npar, 0, "no backward level runs side by side");
    cr_expect_null(b.p->fsched.order);
    same(&a, &b, !(flags & RC_PLAN_NO_GRAD));
    drop(&b);
    build(&b, flags);   /* and a rerun is bitwise the same */
    same(&a, &b, !(flags & RC_PLAN_NO_GRAD));
    drop(&a);
    drop(&b);
    rc_set_num_threads(before);
}

Test(schedule, two_chains_bitwise) { compare(0, 1, 1); }
/* the chains add into the same parameter gradients from one level: kept in order */
Test(schedule, tied_chains_bitwise)
{
    shared_prefix = 1;
    compare(0, 0, 1);   /* (the shared sums serialise the reverse sweep: fine, not required) */
    shared_prefix = 0;
}
Test(schedule, inference_shared_values) { compare(RC_PLAN_NO_GRAD, 0, 1); }
Test(schedule, recompute_keeps_tape_order) { compare(RC_PLAN_RECOMPUTE, 0, 0); }

Test(schedule, one_thread_same_bits)
{
    int before = rc_num_threads();
    rc_set_num_threads(1);
    net a, b;
    build(&a, 0);
    rc_set_num_threads(2);
    build(&b, 0);
    rc_set_num_threads(before);
    cr_expect_not_null(a.p->fsched.order);
    same(&a, &b, 1);
    drop(&a);
    drop(&b);
}
