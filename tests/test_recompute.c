/* Tests of the recompute mode (RC_PLAN_RECOMPUTE, graph/plan_recompute.c).
 *
 * The mode implies RC_PLAN_NO_TIME_BATCH, so each comparison is against a plan with
 * that flag alone: the same ops in the same order, hence bitwise-equal results.
 *
 * Suite `recompute`:
 *  - lstm_bitwise / gru_masked_bitwise: an unrolled cell (T = 30: segments of 6 steps)
 *    with the same loss, outputs, input and parameter gradients; activation bytes cut
 *    at least 2x here (tiny sizes; the benchmark measures T = 1000); the first backward recomputes, a second backward after the same
 *    forward gives the same gradients again.
 *  - model_stacked_bidirectional_dropout: a 2-layer bidirectional rc_model with
 *    dropout and sequences of different lengths, plan_flags with and without the mode:
 *    same loss and parameter gradients (dropout masks are recomputed identically). */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"
#include "param_grads.h"

static float urand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

typedef struct net { rc_graph *g; rc_plan *p; rc_node *x, *mask, *out, *loss; } net;

static void build(net *n, rc_cell *cell, int T, int B, int I, int masked, unsigned flags)
{
    memset(n, 0, sizeof *n);
    n->g = rc_graph_new();
    n->x = rc_input(n->g, "x", RC_F32, 2, (int[]){ T * B, I });
    rc_requires_grad(n->x, 1);
    if (masked) n->mask = rc_input(n->g, "mask", RC_F32, 2, (int[]){ T * B, 1 });
    rc_unroll_opts o = { .prefix = "l0.", .mask = n->mask };
    cr_assert_eq(rc_unroll(n->g, cell, n->x, T, &o, &n->out, NULL), RC_OK, "%s", rc_graph_error(n->g));
    n->loss = rc_mean(n->g, rc_mul(n->g, rc_tanh(n->g, n->out), n->out));
    rc_graph_init_params(n->g, 17);
    rc_node *roots[1] = { n->loss };
    n->p = rc_plan_new_ex(n->g, 1, roots, flags);
    cr_assert_not_null(n->p, "%s", rc_graph_error(n->g));
    uint64_t s = 23;
    size_t nx = (size_t)T * B * I;
    float *x = malloc(nx * sizeof *x), *m = malloc((size_t)T * B * sizeof *m);
    cr_assert(x && m);
    for (size_t i = 0; i < nx; i++) x[i] = urand(&s);
    cr_assert_eq(rc_plan_feed(n->p, n->x, x, nx), RC_OK);
    if (masked) {
        for (int t = 0; t < T; t++)
            for (int b = 0; b < B; b++) m[t * B + b] = t < T - 7 * b ? 1.0f : 0.0f;
        cr_assert_eq(rc_plan_feed(n->p, n->mask, m, (size_t)T * B), RC_OK);
    }
    free(x);
    free(m);
}

static void run(net *n)
{
    cr_assert_eq(rc_plan_forward(n->p), RC_OK, "%s", rc_plan_error(n->p));
    cr_assert_eq(rc_plan_backward(n->p, n->loss), RC_OK, "%s", rc_plan_error(n->p));
}

static void same_grads(net *a, net *b, const char *what)
{
    cr_expect_eq(memcmp(rc_plan_value(a->p, a->loss), rc_plan_value(b->p, b->loss), sizeof(float)), 0,
                 "%s: losses differ", what);
    cr_expect_eq(memcmp(rc_plan_grad(a->p, a->x), rc_plan_grad(b->p, b->x), rc_node_size(a->x) * sizeof(float)), 0,
                 "%s: input gradients differ", what);
    expect_param_grads_bitwise(a->g, a->p, b->g, b->p, what);
}

static void check(rc_cell *cell, int masked, const char *what)
{
    enum { T = 30, B = 3, I = 6 };
    net a, b;
    build(&a, cell, T, B, I, masked, RC_PLAN_RECOMPUTE);
    build(&b, cell, T, B, I, masked, RC_PLAN_NO_TIME_BATCH);
    run(&a);
    run(&b);
    same_grads(&a, &b, what);
    size_t ra = rc_plan_activation_bytes(a.p), rb = rc_plan_activation_bytes(b.p);
    cr_expect_gt(rb, 0);
    cr_expect_leq(2 * ra, rb, "%s: activations %zu bytes with recompute, %zu without", what, ra, rb);
    cr_assert_eq(rc_plan_backward(a.p, a.loss), RC_OK, "%s", rc_plan_error(a.p));   /* again, same forward */
    same_grads(&a, &b, what);
    rc_plan_free(a.p); rc_graph_free(a.g);
    rc_plan_free(b.p); rc_graph_free(b.g);
}

Test(recompute, lstm_bitwise)
{
    rc_cell *c = rc_cell_lstm(10, NULL);
    check(c, 0, "lstm");
    rc_cell_free(c);
}

Test(recompute, gru_masked_bitwise)
{
    rc_cell *c = rc_cell_gru(9, RC_GRU_RESET_AFTER);
    check(c, 1, "gru, masked");
    rc_cell_free(c);
}

/* One forward + backward of a 2-layer bidirectional LSTM model; returns the loss. */
static double model_step(unsigned flags, float **grads, int *ngrads)
{
    enum { T = 16, B = 3, I = 4 };
    rc_cell *cell = rc_cell_lstm(7, NULL);
    rc_model_opts o = rc_model_defaults();
    o.input_size = I;
    o.layers = 2;
    o.bidirectional = 1;
    o.dropout = 0.3f;
    o.head = RC_HEAD_SOFTMAX;
    o.output_size = 5;
    o.seed = 4;
    o.plan_flags = flags;
    rc_model *m = rc_model_new(cell, &o);
    rc_cell_free(cell);
    cr_assert_eq(rc_model_status(m), RC_OK, "%s", rc_model_error(m));
    float x[T * B * I];
    int32_t tgt[T * B], len[B] = { T, T - 5, 9 };
    uint64_t s = 8;
    for (int i = 0; i < T * B * I; i++) x[i] = urand(&s);
    for (int i = 0; i < T * B; i++) tgt[i] = (int32_t)((urand(&s) + 1.0f) * 2.4f);
    rc_batch b = { .T = T, .B = B, .x = x, .lengths = len, .targets = tgt };
    double loss = 0;
    cr_assert_eq(rc_model_forward(m, &b, &loss), RC_OK, "%s", rc_model_error(m));
    cr_assert_eq(rc_model_backward(m), RC_OK, "%s", rc_model_error(m));
    *ngrads = rc_model_param_count(m);
    for (int i = 0; i < *ngrads; i++) {
        int nd, shape[RC_MAX_DIMS];
        const char *name = rc_model_param_name(m, i);
        rc_model_param(m, name, &nd, shape);
        size_t n = 1;
        for (int d = 0; d < nd; d++) n *= (size_t)shape[d];
        grads[i] = malloc(n * sizeof(float) + sizeof(size_t));
        cr_assert_not_null(grads[i]);
        memcpy(grads[i], &n, sizeof n);
        memcpy((char *)grads[i] + sizeof n, rc_model_grad(m, name), n * sizeof(float));
    }
    rc_model_free(m);
    return loss;
}

Test(recompute, model_stacked_bidirectional_dropout)
{
    float *ga[64], *gb[64];
    int na = 0, nb = 0;
    double la = model_step(RC_PLAN_RECOMPUTE, ga, &na), lb = model_step(RC_PLAN_NO_TIME_BATCH, gb, &nb);
    cr_expect_eq(la, lb, "losses differ: %.9g vs %.9g", la, lb);
    cr_assert_eq(na, nb);
    cr_assert_gt(na, 0);
    for (int i = 0; i < na; i++) {
        size_t n;
        memcpy(&n, ga[i], sizeof n);
        cr_expect_eq(memcmp((char *)ga[i] + sizeof n, (char *)gb[i] + sizeof n, n * sizeof(float)), 0,
                     "parameter %d: gradients differ", i);
        free(ga[i]);
        free(gb[i]);
    }
}
