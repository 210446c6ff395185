/* Tests of the elementwise-fusion pass (graph/pass_fuse.c) and its fused op
 * (ops/op_fused.c). Every comparison builds two graphs with identical weights and
 * data (the passes rewrite a graph in place): one planned with all passes, one with
 * none (RC_PLAN_NO_PASSES) or without this pass only, and asks for
 * |a - b| <= 1e-5 (1 + |b|) on values and on every gradient.
 *
 * Suite `fuse`:
 *  - cell_*: every built-in cell (RNN tanh / relu, LSTM default, peepholes and each
 *    ablation, GRU both forms, MUT1-3) and a cell written here, unrolled with and
 *    without a mask: outputs, final states, loss, parameter, input and initial-state
 *    gradients; the fused tape is shorter.
 *  - lstm_step_is_three_ops: a fused LSTM step is one GEMM and two fused nodes; the
 *    FLOP count is unchanged and the arena smaller.
 *  - model_bidirectional_variable_lengths: a 2-layer bidirectional rc_model (LSTM,
 *    GRU, LSTM with peepholes) with sequences of different lengths.
 *  - broadcasts: row-vector, per-row [.., 1] and scalar operands, small and large
 *    (threaded tiles with per-tile partial sums of the broadcast gradients).
 *  - broadcast_windows: such operands sliced out of larger nodes, read in place.
 *  - every_op: one chain through every fusable op.
 *  - each_listed_op: every op of ops/elementwise_ops.def, one at a time, inside a fused
 *    chain (its operands and its value registers of the program), against the unfused
 *    graph and through rc_gradcheck with the pass.
 *  - shared_intermediate: a value used outside its chain (by a matmul, and a root)
 *    is computed and kept, not fused away.
 *  - overlapping_windows: two different row windows of one node.
 *  - no_grad_then_grad: a graph fused for inference, planned again for training.
 *  - threads_bitwise: 1 and 2 threads give identical bits with fusion on.
 *  - table_path_matches: with a kernel of the op table swapped (as gradient-check
 *    tests do) a fused node runs through the table's kernels; same results.
 *  - off_switch: RC_PLAN_NO_EW_FUSION makes no fused node. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"
#include "op.h"   /* op_table: table_path_matches swaps a backward */

#define TOL 1e-5

static uint64_t rnd_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rnd_unif(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(rnd_next(s) >> 11) * 0x1.0p-53);
}

static void rnd_fill(uint64_t *s, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = rnd_unif(s, lo, hi);
}

/* Largest violation of |a - b| <= TOL (1 + |b|), as a multiple of the bound (<= 1 passes). */
static double worst(const float *a, const float *b, size_t n, size_t *at)
{
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / (TOL * (1.0 + fabs((double)b[i])));
        if (!(d <= w)) {
            w = isnan(d) ? INFINITY : d;
            if (at) *at = i;
        }
    }
    return w;
}

static void expect_close(const float *a, const float *b, size_t n, const char *what, const char *name)
{
    cr_expect(a && b, "%s: %s missing (fused %p, reference %p)", what, name, (void *)a, (void *)b);
    if (!a || !b) return;
    size_t at = 0;
    double w = worst(a, b, n, &at);
    cr_expect(w <= 1.0, "%s: %s[%zu] fused %.9g, reference %.9g (%.3g x tolerance)", what, name, at,
              (double)a[at], (double)b[at], w);
}

static int count_op(rc_graph *g, const char *op)
{
    int k = 0;
    for (int i = 0; i < rc_graph_node_count(g); i++) k += strcmp(rc_node_op(rc_graph_node(g, i)), op) == 0;
    return k;
}

/* ---- unrolled cells ---------------------------------------------------------------- */

/* A user-defined cell: a minimal gated unit with a leaky second state and a softplus /
 * relu / division mix, only to exercise what built-in cells do not.
 *   f  = sigmoid(W_xf x + W_hf h + b_f)
 *   n  = tanh(W_xn x + W_hn (f * h) + b_n)
 *   h' = (1 - f) * h + f * n
 *   s' = 0.5 * s + relu(n) / (1 + softplus(h'))   (second state, also an output) */
static rc_status custom_step(rc_step *s, void *user)
{
    (void)user;
    rc_graph *g = rc_step_graph(s);
    int H = rc_step_hidden(s);
    rc_node *x = rc_step_input(s), *h = rc_step_state(s, "h"), *st = rc_step_state(s, "s");
    rc_node *f = rc_sigmoid(g, rc_add(g, rc_add(g, rc_step_linear(s, "W_xf", x, H), rc_step_linear(s, "W_hf", h, H)),
                                      rc_step_bias(s, "b_f", H)));
    rc_node *n = rc_tanh(g, rc_add(g, rc_add(g, rc_step_linear(s, "W_xn", x, H),
                                             rc_step_linear(s, "W_hn", rc_mul(g, f, h), H)),
                                   rc_step_bias(s, "b_n", H)));
    rc_node *h2 = rc_add(g, rc_mul(g, rc_one_minus(g, f), h), rc_mul(g, f, n));
    rc_node *one = rc_fill(g, 1, (int[]){1}, 1.0f);
    rc_node *s2 = rc_add(g, rc_scale(g, st, 0.5f), rc_div(g, rc_relu(g, n), rc_add(g, rc_softplus(g, h2), one)));
    rc_step_set_state(s, "s", s2);
    return rc_step_set_state(s, "h", h2);
}

static rc_cell *custom_cell(int H)
{
    rc_cell *c = rc_cell_new("custom", H, custom_step, NULL);
    if (c && (rc_cell_add_state(c, "h", H) != RC_OK || rc_cell_add_state(c, "s", H) != RC_OK)) {
        rc_cell_free(c);
        return NULL;
    }
    return c;
}

enum { C_RNN_TANH, C_RNN_RELU, C_LSTM, C_LSTM_PEEP, C_LSTM_NO_F, C_LSTM_NO_I, C_LSTM_NO_O, C_GRU_A, C_GRU_B,
       C_MUT1, C_MUT2, C_MUT3, C_CUSTOM };

static rc_cell *make_cell(int kind, int H)
{
    rc_lstm_opts o = rc_lstm_defaults();
    switch (kind) {
    case C_RNN_TANH: return rc_cell_rnn(H, RC_ACT_TANH);
    case C_RNN_RELU: return rc_cell_rnn(H, RC_ACT_RELU);
    case C_LSTM: return rc_cell_lstm(H, NULL);
    case C_LSTM_PEEP: o.peepholes = 1; return rc_cell_lstm(H, &o);
    case C_LSTM_NO_F: o.no_forget_gate = 1; return rc_cell_lstm(H, &o);
    case C_LSTM_NO_I: o.no_input_gate = 1; return rc_cell_lstm(H, &o);
    case C_LSTM_NO_O: o.no_output_gate = 1; return rc_cell_lstm(H, &o);
    case C_GRU_A: return rc_cell_gru(H, RC_GRU_RESET_AFTER);
    case C_GRU_B: return rc_cell_gru(H, RC_GRU_RESET_BEFORE);
    case C_MUT1: return rc_cell_mut(1, H);
    case C_MUT2: return rc_cell_mut(2, H);
    case C_MUT3: return rc_cell_mut(3, H);
    default: return custom_cell(H);
    }
}

#define MAXS 4
typedef struct net {
    rc_graph *g;
    rc_plan *p;
    rc_node *x, *mask, *init[MAXS], *out, *fin[MAXS], *loss;
    int ns, T, B, I, H;
} net;

/* Unrolls cell over T steps of B sequences (I inputs), with given initial states
 * (inputs with gradients) and optionally a mask; loss = mean(out * out) + the mean
 * of each final state. Parameters from seed; the plan built with flags. */
static int net_build(net *n, const rc_cell *cell, int T, int B, int I, int masked, uint64_t seed, unsigned flags)
{
    memset(n, 0, sizeof *n);
    n->T = T; n->B = B; n->I = I; n->H = rc_cell_hidden(cell);
    n->ns = rc_cell_state_count(cell);
    n->g = rc_graph_new();
    rc_graph *g = n->g;
    n->x = rc_input(g, "x", RC_F32, 2, (int[]){T * B, I});
    rc_requires_grad(n->x, 1);
    for (int i = 0; i < n->ns; i++) {
        char name[32];
        snprintf(name, sizeof name, "init%d", i);
        n->init[i] = rc_input(g, name, RC_F32, 2, (int[]){B, rc_cell_state_size(cell, i)});
        rc_requires_grad(n->init[i], 1);
    }
    if (masked) n->mask = rc_input(g, "mask", RC_F32, 2, (int[]){T * B, 1});
    rc_unroll_opts o = { .prefix = "l0.", .mask = n->mask, .init = n->init };
    if (rc_unroll(g, cell, n->x, T, &o, &n->out, n->fin) != RC_OK) return -1;
    rc_node *loss = rc_mean(g, rc_mul(g, n->out, n->out));
    for (int i = 0; i < n->ns; i++) loss = rc_add(g, loss, rc_mean(g, n->fin[i]));
    n->loss = loss;
    if (rc_graph_status(g) != RC_OK) return -1;
    rc_graph_init_params(g, seed);
    /* bias vectors start at 0; give them (and peepholes) values too */
    uint64_t s = seed ^ 0xB1A5ull;
    for (int i = 0; i < rc_graph_node_count(g); i++) {
        rc_node *v = rc_graph_node(g, i);
        if (strcmp(rc_node_op(v), "param") == 0 && rc_node_ndim(v) == 1)
            rnd_fill(&s, rc_param_data(v), rc_node_size(v), -0.5f, 0.5f);
    }
    rc_node *roots[2 + MAXS] = { n->loss, n->out };
    for (int i = 0; i < n->ns; i++) roots[2 + i] = n->fin[i];
    n->p = rc_plan_new_ex(g, 2 + n->ns, roots, flags);
    return n->p ? 0 : -1;
}

static void net_free(net *n)
{
    rc_plan_free(n->p);
    rc_graph_free(n->g);
}

/* Feeds data from seed (lengths from T down to about T/2 when masked), runs forward and backward. */
static int net_run(net *n, uint64_t seed)
{
    int T = n->T, B = n->B;
    uint64_t s = seed;
    float *x = malloc((size_t)T * B * n->I * sizeof *x), *m = malloc((size_t)T * B * sizeof *m);
    int ok = x && m;
    if (ok) {
        rnd_fill(&s, x, (size_t)T * B * n->I, -1.5f, 1.5f);
        ok = rc_plan_feed(n->p, n->x, x, (size_t)T * B * n->I) == RC_OK;
    }
    for (int i = 0; ok && i < n->ns; i++) {
        size_t k = (size_t)B * (size_t)rc_node_dim(n->init[i], 1);
        float *v = malloc(k * sizeof *v);
        ok = v != NULL;
        if (ok) {
            rnd_fill(&s, v, k, -0.8f, 0.8f);
            ok = rc_plan_feed(n->p, n->init[i], v, k) == RC_OK;
        }
        free(v);
    }
    if (ok && n->mask) {
        for (int b = 0; b < B; b++) {
            int len = T - (b * (T / 2)) / (B > 1 ? B - 1 : 1);
            for (int t = 0; t < T; t++) m[t * B + b] = t < len ? 1.0f : 0.0f;
        }
        ok = rc_plan_feed(n->p, n->mask, m, (size_t)T * B) == RC_OK;
    }
    free(x);
    free(m);
    if (ok) ok = rc_plan_forward(n->p) == RC_OK;
    cr_expect(ok, "forward: %s", rc_plan_error(n->p));
    if (ok) ok = rc_plan_backward(n->p, n->loss) == RC_OK;
    cr_expect(ok, "backward: %s", rc_plan_error(n->p));
    return ok ? 0 : -1;
}

/* Values and gradients of a against b (same construction, other plan flags). */
static void net_compare(net *a, net *b, const char *what)
{
    expect_close(rc_plan_value(a->p, a->loss), rc_plan_value(b->p, b->loss), 1, what, "loss");
    expect_close(rc_plan_value(a->p, a->out), rc_plan_value(b->p, b->out), rc_node_size(a->out), what, "outputs");
    for (int i = 0; i < a->ns; i++) {
        expect_close(rc_plan_value(a->p, a->fin[i]), rc_plan_value(b->p, b->fin[i]), rc_node_size(a->fin[i]), what,
                     "final state");
        expect_close(rc_plan_grad(a->p, a->init[i]), rc_plan_grad(b->p, b->init[i]), rc_node_size(a->init[i]), what,
                     "initial state gradient");
    }
    expect_close(rc_plan_grad(a->p, a->x), rc_plan_grad(b->p, b->x), rc_node_size(a->x), what, "input gradient");
    int np = 0;
    for (int i = 0; i < rc_graph_node_count(b->g); i++) {
        rc_node *pb = rc_graph_node(b->g, i);
        if (strcmp(rc_node_op(pb), "param") != 0) continue;
        rc_node *pa = rc_param_find(a->g, rc_node_name(pb));
        cr_expect_not_null(pa, "%s: parameter %s missing", what, rc_node_name(pb));
        if (!pa) continue;
        char name[96];
        snprintf(name, sizeof name, "d/d %s", rc_node_name(pb));
        expect_close(rc_plan_grad(a->p, pa), rc_plan_grad(b->p, pb), rc_node_size(pb), what, name);
        np++;
    }
    cr_expect_gt(np, 0, "%s: no parameters compared", what);
}

static void check_cell(int kind, const char *label)
{
    enum { T = 6, B = 5, H = 12 };
    int I = (kind == C_MUT1 || kind == C_MUT2) ? H : 7;
    for (int masked = 0; masked <= 1; masked++) {
        char what[96];
        snprintf(what, sizeof what, "%s%s", label, masked ? " (masked)" : "");
        rc_cell *cell = make_cell(kind, H);
        cr_assert_not_null(cell);
        net a, b;
        int ra = net_build(&a, cell, T, B, I, masked, 42, 0);
        int rb = net_build(&b, cell, T, B, I, masked, 42, RC_PLAN_NO_PASSES);
        cr_expect_eq(ra, 0, "%s: fused build: %s", what, rc_graph_error(a.g));
        cr_expect_eq(rb, 0, "%s: reference build: %s", what, rc_graph_error(b.g));
        if (ra == 0 && rb == 0 && net_run(&a, 7) == 0 && net_run(&b, 7) == 0) {
            net_compare(&a, &b, what);
            int la = rc_plan_length(a.p), lb = rc_plan_length(b.p);
            cr_expect_lt(la, lb, "%s: fused tape %d ops, unfused %d", what, la, lb);
            cr_expect_gt(count_op(a.g, "fused"), 0, "%s: nothing was fused", what);
            if (getenv("RC_TEST_VERBOSE"))
                fprintf(stderr, "%-24s tape %4d -> %4d ops (%d per step -> %d)\n", what, lb, la, lb / T, la / T);
        }
        net_free(&a);
        net_free(&b);
        rc_cell_free(cell);
    }
}

Test(fuse, cell_rnn_tanh) { check_cell(C_RNN_TANH, "rnn tanh"); }
Test(fuse, cell_rnn_relu) { check_cell(C_RNN_RELU, "rnn relu"); }
Test(fuse, cell_lstm) { check_cell(C_LSTM, "lstm"); }
Test(fuse, cell_lstm_peepholes) { check_cell(C_LSTM_PEEP, "lstm peepholes"); }
Test(fuse, cell_lstm_no_forget_gate) { check_cell(C_LSTM_NO_F, "lstm no forget gate"); }
Test(fuse, cell_lstm_no_input_gate) { check_cell(C_LSTM_NO_I, "lstm no input gate"); }
Test(fuse, cell_lstm_no_output_gate) { check_cell(C_LSTM_NO_O, "lstm no output gate"); }
Test(fuse, cell_gru_reset_after) { check_cell(C_GRU_A, "gru reset after"); }
Test(fuse, cell_gru_reset_before) { check_cell(C_GRU_B, "gru reset before"); }
Test(fuse, cell_mut1) { check_cell(C_MUT1, "mut1"); }
Test(fuse, cell_mut2) { check_cell(C_MUT2, "mut2"); }
Test(fuse, cell_mut3) { check_cell(C_MUT3, "mut3"); }
Test(fuse, cell_custom) { check_cell(C_CUSTOM, "custom cell"); }

/* The fused LSTM step: one GEMM of h against the four gates' weights and two fused
 * nodes (the cell update c', and h' = o * tanh(c')); the slices of the GEMMs are read
 * in place. */
Test(fuse, lstm_step_is_three_ops)
{
    enum { T = 8, B = 4, H = 6, I = 5 };
    rc_cell *cell = rc_cell_lstm(H, NULL);
    net a, b;
    cr_assert_eq(net_build(&a, cell, T, B, I, 0, 3, 0), 0, "%s", rc_graph_error(a.g));
    cr_assert_eq(net_build(&b, cell, T, B, I, 0, 3, RC_PLAN_NO_EW_FUSION), 0, "%s", rc_graph_error(b.g));
    int la = rc_plan_length(a.p), lb = rc_plan_length(b.p);
    /* per step: matmul + 2 fused, plus a constant number outside the steps */
    cr_expect_leq(la, 3 * T + 12, "fused LSTM tape: %d ops for %d steps", la, T);
    cr_expect_geq(lb - la, 20 * (T - 1), "fusion removed only %d of %d ops", lb - la, lb);
    /* the fused nodes count the FLOPs of the ops they replace */
    double fa = rc_plan_flops(a.p), fb = rc_plan_flops(b.p);
    cr_expect(fabs(fa - fb) <= 1e-9 * fb, "FLOPs fused %.0f, unfused %.0f", fa, fb);
    /* and the arena shrinks: no intermediates, no slice copies */
    cr_expect_lt(rc_plan_arena_bytes(a.p), rc_plan_arena_bytes(b.p));
    net_free(&a);
    net_free(&b);
    rc_cell_free(cell);
}

/* ---- a model --------------------------------------------------------------------------- */

Test(fuse, model_bidirectional_variable_lengths)
{
    enum { T = 7, B = 4, E = 5, O = 3 };
    const int kinds[3] = { C_LSTM, C_GRU_A, C_LSTM_PEEP };
    for (int c = 0; c < 3; c++) {
        rc_cell *cell = make_cell(kinds[c], 8);
        rc_model_opts o = rc_model_defaults();
        o.input_size = E;
        o.layers = 2;
        o.bidirectional = 1;
        o.output_size = O;
        o.head = RC_HEAD_SOFTMAX;
        o.seed = 5;
        rc_model_opts o2 = o;
        o2.plan_flags = RC_PLAN_NO_PASSES;
        rc_model *ma = rc_model_new(cell, &o), *mb = rc_model_new(cell, &o2);
        cr_assert(ma && mb);
        cr_expect_eq(rc_model_status(ma), RC_OK, "%s", rc_model_error(ma));
        cr_expect_eq(rc_model_status(mb), RC_OK, "%s", rc_model_error(mb));
        uint64_t s = 99;
        float x[T * B * E];
        rnd_fill(&s, x, T * B * E, -1, 1);
        int32_t lengths[B] = { 7, 3, 5, 1 }, targets[T * B];
        for (int i = 0; i < T * B; i++) targets[i] = (int32_t)(rnd_next(&s) % O);
        rc_batch bt = { .T = T, .B = B, .x = x, .lengths = lengths, .targets = targets };
        double la = 0, lb = 0;
        cr_expect_eq(rc_model_forward(ma, &bt, &la), RC_OK, "%s", rc_model_error(ma));
        cr_expect_eq(rc_model_forward(mb, &bt, &lb), RC_OK, "%s", rc_model_error(mb));
        cr_expect_eq(rc_model_backward(ma), RC_OK, "%s", rc_model_error(ma));
        cr_expect_eq(rc_model_backward(mb), RC_OK, "%s", rc_model_error(mb));
        float fa = (float)la, fb = (float)lb;
        expect_close(&fa, &fb, 1, rc_cell_name(cell), "loss");
        expect_close(rc_model_output(ma), rc_model_output(mb), (size_t)T * B * O, rc_cell_name(cell), "outputs");
        int np = rc_model_param_count(mb);
        cr_expect_gt(np, 8);
        for (int i = 0; i < np; i++) {
            const char *name = rc_model_param_name(mb, i);
            int nd, sh[RC_MAX_DIMS];
            size_t size = 1;
            if (!rc_model_param(mb, name, &nd, sh)) continue;
            for (int d = 0; d < nd; d++) size *= (size_t)sh[d];
            expect_close(rc_model_grad(ma, name), rc_model_grad(mb, name), size, rc_cell_name(cell), name);
        }
        rc_model_free(ma);
        rc_model_free(mb);
        rc_cell_free(cell);
    }
}

/* ---- hand-built graphs ------------------------------------------------------------------- */

/* A graph builder called twice (fused and reference); fills roots[0] = loss. */
typedef int (*build_fn)(rc_graph *g, rc_node **roots, int *nroots, void *ctx);

typedef struct hand {
    rc_graph *g;
    rc_plan *p;
    rc_node *roots[8];
    int nroots;
} hand;

/* Called between forward and backward when set (table_path_matches). */
static void (*between_passes)(void);

static int hand_make(hand *h, build_fn fn, void *ctx, unsigned flags, uint64_t seed)
{
    memset(h, 0, sizeof *h);
    h->g = rc_graph_new();
    if (fn(h->g, h->roots, &h->nroots, ctx) != 0 || rc_graph_status(h->g) != RC_OK) return -1;
    /* every parameter and input from seed, in creation order */
    uint64_t s = seed;
    for (int i = 0; i < rc_graph_node_count(h->g); i++) {
        rc_node *v = rc_graph_node(h->g, i);
        if (strcmp(rc_node_op(v), "param") == 0) rnd_fill(&s, rc_param_data(v), rc_node_size(v), -1.0f, 1.0f);
    }
    h->p = rc_plan_new_ex(h->g, h->nroots, h->roots, flags);
    if (!h->p) return -1;
    s = seed ^ 0x5EEDull;
    for (int i = 0; i < rc_graph_node_count(h->g); i++) {
        rc_node *v = rc_graph_node(h->g, i);
        if (strcmp(rc_node_op(v), "input") != 0 || !rc_plan_value(h->p, v)) continue;
        size_t n = rc_node_size(v);
        float *d = malloc(n * sizeof *d);
        if (!d) return -1;
        rnd_fill(&s, d, n, -1.0f, 1.0f);
        rc_status st = rc_plan_feed(h->p, v, d, n);
        free(d);
        if (st != RC_OK) return -1;
    }
    if (rc_plan_forward(h->p) != RC_OK) return -1;
    if (between_passes) between_passes();
    if (rc_plan_backward(h->p, h->roots[0]) != RC_OK) return -1;
    return 0;
}

static void hand_free(hand *h)
{
    rc_plan_free(h->p);
    rc_graph_free(h->g);
}

/* Every root's value and every parameter's and input's gradient of a against b. */
static void hand_compare(hand *a, hand *b, const char *what, int bitwise)
{
    for (int r = 0; r < b->nroots; r++) {
        const float *va = rc_plan_value(a->p, a->roots[r]), *vb = rc_plan_value(b->p, b->roots[r]);
        size_t n = rc_node_size(b->roots[r]);
        if (bitwise) cr_expect(va && vb && memcmp(va, vb, n * sizeof *va) == 0, "%s: root %d differs", what, r);
        else expect_close(va, vb, n, what, "root value");
    }
    for (int i = 0; i < rc_graph_node_count(b->g); i++) {
        rc_node *vb = rc_graph_node(b->g, i), *va = rc_graph_node(a->g, i);
        const float *gb = rc_plan_grad(b->p, vb);
        if (!gb || (strcmp(rc_node_op(vb), "param") != 0 && strcmp(rc_node_op(vb), "input") != 0)) continue;
        const float *ga = rc_plan_grad(a->p, va);
        char name[64];
        snprintf(name, sizeof name, "gradient of node #%d", i);
        if (bitwise) cr_expect(ga && memcmp(ga, gb, rc_node_size(vb) * sizeof *ga) == 0, "%s: %s differs", what, name);
        else expect_close(ga, gb, rc_node_size(vb), what, name);
    }
}

static void check_hand(build_fn fn, void *ctx, const char *what, unsigned ref_flags, int expect_fused)
{
    hand a, b;
    int ra = hand_make(&a, fn, ctx, 0, 11), rb = hand_make(&b, fn, ctx, ref_flags, 11);
    cr_expect_eq(ra, 0, "%s: fused: %s / %s", what, rc_graph_error(a.g), a.p ? rc_plan_error(a.p) : "");
    cr_expect_eq(rb, 0, "%s: reference: %s / %s", what, rc_graph_error(b.g), b.p ? rc_plan_error(b.p) : "");
    if (ra == 0 && rb == 0) {
        hand_compare(&a, &b, what, 0);
        if (expect_fused) {
            cr_expect_geq(count_op(a.g, "fused"), expect_fused, "%s: %d fused nodes", what, count_op(a.g, "fused"));
            cr_expect_lt(rc_plan_length(a.p), rc_plan_length(b.p), "%s: tape %d vs %d", what,
                         rc_plan_length(a.p), rc_plan_length(b.p));
        }
    }
    hand_free(&a);
    hand_free(&b);
}

typedef struct dims { int R, C; } dims;

/* y = tanh(x * w + bias) * rowscale - k, z = sigmoid(y / (1 + |rowscale|)) + scalar * y;
 * x, w [R, C]; bias [C]; rowscale [R, 1]; k, scalar [1]. */
static int build_broadcasts(rc_graph *g, rc_node **roots, int *nroots, void *ctx)
{
    const dims *d = ctx;
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){d->R, d->C});
    rc_requires_grad(x, 1);
    rc_node *w = rc_param(g, "w", 2, (int[]){d->R, d->C});
    rc_node *bias = rc_param(g, "bias", 1, (int[]){d->C});
    rc_node *rs = rc_param(g, "rowscale", 2, (int[]){d->R, 1});
    rc_node *k = rc_param(g, "k", 1, (int[]){1});
    rc_node *sc = rc_input(g, "scalar", RC_F32, 1, (int[]){1});
    rc_requires_grad(sc, 1);
    rc_node *y = rc_sub(g, rc_mul(g, rc_tanh(g, rc_add(g, rc_mul(g, x, w), bias)), rs), k);
    rc_node *one = rc_fill(g, 2, (int[]){d->R, 1}, 1.0f);
    rc_node *z = rc_add(g, rc_sigmoid(g, rc_div(g, y, rc_add(g, rc_abs(g, rs), one))), rc_mul(g, y, sc));
    roots[0] = rc_sum(g, rc_mul(g, z, z));
    roots[1] = z;
    *nroots = 2;
    return 0;
}

/* Broadcast operands that are windows of larger nodes: per-row values row_slice'd from
 * a [3R, 1] column (as rc_unroll slices a mask), a row vector sliced from a [2C]
 * vector, a scalar sliced from a [4] vector. */
static int build_bcast_windows(rc_graph *g, rc_node **roots, int *nroots, void *ctx)
{
    const dims *d = ctx;
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){d->R, d->C});
    rc_requires_grad(x, 1);
    rc_node *M = rc_param(g, "M", 2, (int[]){3 * d->R, 1}), *V = rc_param(g, "V", 1, (int[]){2 * d->C});
    rc_node *S = rc_param(g, "S", 1, (int[]){4});
    rc_node *m = rc_row_slice(g, M, d->R, d->R), *v = rc_slice(g, V, d->C, d->C), *s = rc_slice(g, S, 2, 1);
    rc_node *y = rc_sub(g, rc_add(g, rc_tanh(g, rc_mul(g, x, m)), v), s);
    y = rc_mul(g, rc_sigmoid(g, rc_mul(g, y, v)), rc_row_slice(g, M, 2 * d->R, d->R));
    roots[0] = rc_sum(g, rc_mul(g, y, y));
    roots[1] = y;
    *nroots = 2;
    return 0;
}

Test(fuse, broadcast_windows)
{
    dims small = { 5, 7 }, large = { 300, 257 }, wide = { 9, 5000 };
    check_hand(build_bcast_windows, &small, "broadcast windows 5x7", RC_PLAN_NO_PASSES, 1);
    check_hand(build_bcast_windows, &large, "broadcast windows 300x257", RC_PLAN_NO_PASSES, 1);
    check_hand(build_bcast_windows, &wide, "broadcast windows 9x5000", RC_PLAN_NO_PASSES, 1);
    /* the slices are read in place: none is left on the tape */
    hand a;
    cr_assert_eq(hand_make(&a, build_bcast_windows, &small, 0, 2), 0);
    cr_expect_eq(rc_plan_length(a.p), 3, "tape: fused, mul, sum; got %d ops", rc_plan_length(a.p));
    hand_free(&a);
}

Test(fuse, broadcasts)
{
    dims small = { 5, 7 }, large = { 300, 257 }, wide = { 9, 5000 };
    check_hand(build_broadcasts, &small, "broadcasts 5x7", RC_PLAN_NO_PASSES, 1);
    check_hand(build_broadcasts, &large, "broadcasts 300x257", RC_PLAN_NO_PASSES, 1);
    check_hand(build_broadcasts, &wide, "broadcasts 9x5000", RC_PLAN_NO_PASSES, 1);
}

/* One chain through every fusable op, arguments of sqrt and log kept positive. */
static int build_every_op(rc_graph *g, rc_node **roots, int *nroots, void *ctx)
{
    const dims *d = ctx;
    int sh[2] = { d->R, d->C };
    rc_node *a = rc_input(g, "a", RC_F32, 2, sh), *b = rc_param(g, "b", 2, sh);
    rc_requires_grad(a, 1);
    rc_node *t = rc_add(g, rc_tanh(g, a), rc_sigmoid(g, b));
    t = rc_sub(g, t, rc_scale(g, rc_relu(g, b), 0.7f));
    t = rc_mul(g, t, rc_one_minus(g, rc_abs(g, a)));
    rc_node *pos = rc_add(g, rc_softplus(g, t), rc_exp(g, rc_scale(g, b, 0.3f)));
    t = rc_div(g, rc_sqrt(g, pos), rc_add(g, rc_log(g, rc_add(g, pos, rc_fill(g, 1, (int[]){1}, 1.5f))), rc_abs(g, b)));
    t = rc_add(g, rc_maximum(g, t, a), rc_minimum(g, b, t));
    /* a register and an external operand each used twice by one instruction */
    rc_node *q = rc_sigmoid(g, t);
    t = rc_sub(g, rc_add(g, rc_mul(g, q, q), t), rc_scale(g, rc_mul(g, a, a), 0.25f));
    roots[0] = rc_sum(g, rc_mul(g, t, t));
    roots[1] = t;
    *nroots = 2;
    return 0;
}

Test(fuse, every_op)
{
    dims d = { 6, 11 }, big = { 200, 200 };
    check_hand(build_every_op, &d, "every op", RC_PLAN_NO_PASSES, 1);
    check_hand(build_every_op, &big, "every op 200x200", RC_PLAN_NO_PASSES, 1);
}

/* Each op of the list (ops/elementwise_ops.def) by its builder, in a chain the pass
 * fuses: u = 1.5 + a/2 in [1, 2] and v = 2.5 + b/4 in [2.25, 2.75] (inside every op's
 * domain, and apart: off every kink, min and max included), y = OP(u[, v]) (scale:
 * OP(u, 0.7)), t = y * u + v; loss = sum(t * w), w fixed weights of either sign (few
 * elements and a loss linear in t keep the central differences accurate in float). */
typedef struct listed_op {
    const char *name;
    rc_node *(*u)(rc_graph *, rc_node *);
    rc_node *(*uc)(rc_graph *, rc_node *, float);
    rc_node *(*b)(rc_graph *, rc_node *, rc_node *);
} listed_op;
#define LISTED_U(name) { #name, rc_##name, NULL, NULL },
#define LISTED_UC(name) { #name, NULL, rc_##name, NULL },
#define LISTED_B(name) { #name, NULL, NULL, rc_##name },
static const listed_op LISTED[] = {
#define EW(ID, name, form, ...) LISTED_##form(name)
#include "elementwise_ops.def"
#undef EW
};

static int build_listed(rc_graph *g, rc_node **roots, int *nroots, void *ctx)
{
    const listed_op *l = ctx;
    int sh[2] = { 3, 4 }, one = 1;
    static const float w[12] = { 0.9f, -0.4f, 0.7f, -1.0f, 0.3f, 0.8f, -0.6f, 0.5f, -0.2f, 1.0f, -0.8f, 0.6f };
    rc_node *a = rc_input(g, "a", RC_F32, 2, sh), *b = rc_param(g, "b", 2, sh);
    rc_requires_grad(a, 1);
    rc_node *u = rc_add(g, rc_scale(g, a, 0.5f), rc_fill(g, 1, &one, 1.5f));
    rc_node *v = rc_add(g, rc_scale(g, b, 0.25f), rc_fill(g, 1, &one, 2.5f));
    rc_node *y = l->u ? l->u(g, u) : l->uc ? l->uc(g, u, 0.7f) : l->b(g, u, v);
    rc_node *t = rc_add(g, rc_mul(g, y, u), v);
    roots[0] = rc_sum(g, rc_mul(g, t, rc_const(g, 2, sh, w)));
    *nroots = 1;
    return 0;
}

Test(fuse, each_listed_op)
{
    for (size_t k = 0; k < sizeof LISTED / sizeof LISTED[0]; k++) {
        const listed_op *l = &LISTED[k];
        check_hand(build_listed, (void *)l, l->name, RC_PLAN_NO_EW_FUSION, 1);
        /* the gradient check through the fused node */
        rc_graph *g = rc_graph_new();
        rc_node *roots[1];
        int nroots = 0;
        build_listed(g, roots, &nroots, (void *)l);
        uint64_t s = 7 + k;
        rc_node *a = rc_graph_node(g, 0), *b = rc_graph_node(g, 1);
        rnd_fill(&s, rc_param_data(b), rc_node_size(b), -1.0f, 1.0f);
        rc_plan *p = rc_plan_new(g, 1, roots);
        cr_assert_not_null(p, "%s: %s", l->name, rc_graph_error(g));
        float x[12];
        rnd_fill(&s, x, 12, -1.0f, 1.0f);
        cr_expect_eq(rc_plan_feed(p, a, x, 12), RC_OK);
        rc_node *wrt[2] = { a, b };
        double err = 1;
        cr_expect_eq(rc_gradcheck(p, roots[0], 2, wrt, 1e-2f, &err), RC_OK, "%s: %s", l->name, rc_plan_error(p));
        cr_expect_lt(err, 2e-3, "%s: gradient check error %g with the fusion pass", l->name, err);
        cr_expect_geq(count_op(g, "fused"), 1, "%s: not fused", l->name);
        rc_plan_free(p);
        rc_graph_free(g);
    }
}

/* u = tanh(x + b) is used by the chain and by a matmul; v = sigmoid(u) * u is a root
 * and also feeds the rest of the chain. Both must be computed and kept. */
static rc_node *shared_u, *shared_v;
static int build_shared(rc_graph *g, rc_node **roots, int *nroots, void *ctx)
{
    (void)ctx;
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){4, 6});
    rc_node *b = rc_param(g, "b", 1, (int[]){6}), *W = rc_param(g, "W", 2, (int[]){6, 3});
    rc_node *u = rc_tanh(g, rc_add(g, x, b));
    rc_node *v = rc_mul(g, rc_sigmoid(g, u), u);
    rc_node *w = rc_exp(g, rc_scale(g, rc_sub(g, v, u), 0.5f));
    rc_node *m = rc_matmul(g, u, W);
    roots[0] = rc_add(g, rc_sum(g, w), rc_sum(g, rc_mul(g, m, m)));
    roots[1] = v;
    *nroots = 2;
    shared_u = u;
    shared_v = v;
    return 0;
}

Test(fuse, shared_intermediate)
{
    check_hand(build_shared, NULL, "shared intermediate", RC_PLAN_NO_PASSES, 1);
    hand a;
    /* (without buffer planning, so that an intermediate gradient stays readable) */
    cr_assert_eq(hand_make(&a, build_shared, NULL, RC_PLAN_NO_BUFFER_PLAN, 3), 0, "%s", rc_graph_error(a.g));
    /* u feeds a matmul: it is a fused node's result, with its value and gradient */
    cr_expect_str_eq(rc_node_op(shared_u), "fused");
    cr_expect_not_null(rc_plan_value(a.p, shared_u));
    cr_expect_not_null(rc_plan_grad(a.p, shared_u));
    /* v is a root: kept, though its only consumer is in a chain */
    cr_expect_str_eq(rc_node_op(shared_v), "fused");
    cr_expect_not_null(rc_plan_value(a.p, shared_v));
    hand_free(&a);
}

/* y = row_slice(X, 0, R-1) * row_slice(X, 1, R-1) + tanh(row_slice(X, 1, R-1)):
 * two windows of X that overlap differently. */
static int build_windows(rc_graph *g, rc_node **roots, int *nroots, void *ctx)
{
    const dims *d = ctx;
    rc_node *X = rc_param(g, "X", 2, (int[]){d->R, d->C});
    rc_node *lo = rc_row_slice(g, X, 0, d->R - 1), *hi = rc_row_slice(g, X, 1, d->R - 1);
    rc_node *y = rc_add(g, rc_mul(g, lo, hi), rc_tanh(g, rc_slice(g, hi, 0, d->C)));
    roots[0] = rc_sum(g, rc_mul(g, y, y));
    *nroots = 1;
    return 0;
}

Test(fuse, overlapping_windows)
{
    dims small = { 5, 4 }, large = { 400, 129 };
    check_hand(build_windows, &small, "windows 5x4", RC_PLAN_NO_PASSES, 1);
    check_hand(build_windows, &large, "windows 400x129", RC_PLAN_NO_PASSES, 1);
}

Test(fuse, no_grad_then_grad)
{
    /* fused for inference first (nothing kept for a reverse sweep), then planned for
     * training on the same graph: the backward recomputes everything */
    dims d = { 200, 300 };
    hand b;
    cr_assert_eq(hand_make(&b, build_broadcasts, &d, RC_PLAN_NO_PASSES, 11), 0);
    rc_graph *g = rc_graph_new();
    rc_node *roots[8];
    int nr = 0;
    build_broadcasts(g, roots, &nr, &d);
    uint64_t s = 11;
    for (int i = 0; i < rc_graph_node_count(g); i++) {
        rc_node *v = rc_graph_node(g, i);
        if (strcmp(rc_node_op(v), "param") == 0) rnd_fill(&s, rc_param_data(v), rc_node_size(v), -1.0f, 1.0f);
    }
    rc_plan *p0 = rc_plan_new_ex(g, nr, roots, RC_PLAN_NO_GRAD);
    cr_expect_not_null(p0, "%s", rc_graph_error(g));
    cr_expect_gt(count_op(g, "fused"), 0);
    rc_plan_free(p0);
    hand a = { .g = g, .nroots = nr };
    memcpy(a.roots, roots, sizeof roots);
    a.p = rc_plan_new(g, nr, roots);
    cr_assert_not_null(a.p, "%s", rc_graph_error(g));
    s = 11 ^ 0x5EEDull;
    for (int i = 0; i < rc_graph_node_count(g); i++) {
        rc_node *v = rc_graph_node(g, i);
        if (strcmp(rc_node_op(v), "input") != 0 || !rc_plan_value(a.p, v)) continue;
        size_t n = rc_node_size(v);
        float *x = malloc(n * sizeof *x);
        rnd_fill(&s, x, n, -1.0f, 1.0f);
        rc_plan_feed(a.p, v, x, n);
        free(x);
    }
    cr_expect_eq(rc_plan_forward(a.p), RC_OK);
    cr_expect_eq(rc_plan_backward(a.p, roots[0]), RC_OK);
    hand_compare(&a, &b, "no grad then grad", 0);
    hand_free(&a);
    hand_free(&b);
}

Test(fuse, threads_bitwise)
{
    /* sizes above the threading threshold, broadcast operands included */
    dims d = { 300, 257 }, w = { 9, 5000 }, win = { 400, 129 };
    struct { build_fn fn; dims *d; const char *what; } cases[] = {
        { build_broadcasts, &d, "broadcasts" }, { build_broadcasts, &w, "wide broadcasts" },
        { build_every_op, &d, "every op" }, { build_windows, &win, "windows" },
        { build_bcast_windows, &d, "broadcast windows" }, { build_bcast_windows, &w, "wide broadcast windows" },
    };
    int saved = rc_num_threads();
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        hand a, b;
        rc_set_num_threads(1);
        int ra = hand_make(&a, cases[c].fn, cases[c].d, 0, 5);
        rc_set_num_threads(2);
        int rb = hand_make(&b, cases[c].fn, cases[c].d, 0, 5);
        cr_expect(ra == 0 && rb == 0, "%s: %s", cases[c].what, rc_graph_error(ra ? a.g : b.g));
        if (ra == 0 && rb == 0) hand_compare(&a, &b, cases[c].what, 1);
        hand_free(&a);
        hand_free(&b);
    }
    /* and an LSTM whose gate blocks are above the threshold: B = 64, H = 512 */
    rc_cell *cell = rc_cell_lstm(512, NULL);
    net a, b;
    rc_set_num_threads(1);
    int ra = net_build(&a, cell, 3, 64, 16, 1, 8, 0) == 0 && net_run(&a, 4) == 0;
    rc_set_num_threads(2);
    int rb = net_build(&b, cell, 3, 64, 16, 1, 8, 0) == 0 && net_run(&b, 4) == 0;
    cr_expect(ra && rb);
    if (ra && rb) {
        const float *va = rc_plan_value(a.p, a.out), *vb = rc_plan_value(b.p, b.out);
        cr_expect(memcmp(va, vb, rc_node_size(a.out) * sizeof *va) == 0, "lstm outputs differ across threads");
        for (int i = 0; i < rc_graph_node_count(b.g); i++) {
            rc_node *pb = rc_graph_node(b.g, i);
            if (strcmp(rc_node_op(pb), "param") != 0) continue;
            const float *ga = rc_plan_grad(a.p, rc_param_find(a.g, rc_node_name(pb))), *gb = rc_plan_grad(b.p, pb);
            cr_expect(ga && gb && memcmp(ga, gb, rc_node_size(pb) * sizeof *ga) == 0,
                      "lstm gradient of %s differs across threads", rc_node_name(pb));
        }
    }
    net_free(&a);
    net_free(&b);
    rc_cell_free(cell);
    rc_set_num_threads(saved);
}

/* The table's tanh backward, called through a wrapper (so the table entry differs). */
static void (*real_tanh_backward)(op_inst *);
static int wrapper_calls;
static void tanh_backward_wrapper(op_inst *it)
{
    wrapper_calls++;
    real_tanh_backward(it);
}
static void restore_tanh_backward(void) { op_table[OP_TANH].backward = real_tanh_backward; }

Test(fuse, table_path_matches)
{
    dims d = { 40, 37 };
    struct { build_fn fn; const char *what; } cases[] = {
        { build_broadcasts, "broadcasts (table path)" }, { build_every_op, "every op (table path)" },
        { build_windows, "windows (table path)" }, { build_bcast_windows, "broadcast windows (table path)" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        hand a, b;
        cr_assert_eq(hand_make(&b, cases[c].fn, &d, 0, 9), 0);   /* the fast path */
        real_tanh_backward = op_table[OP_TANH].backward;
        op_table[OP_TANH].backward = tanh_backward_wrapper;
        wrapper_calls = 0;
        int ra = hand_make(&a, cases[c].fn, &d, 0, 9);
        op_table[OP_TANH].backward = real_tanh_backward;
        cr_expect_eq(ra, 0);
        cr_expect_gt(wrapper_calls, 0, "%s: the swapped backward was never called", cases[c].what);
        if (ra == 0) hand_compare(&a, &b, cases[c].what, 0);
        hand_free(&a);
        /* forward through the table, backward on the fast path (restored in between) */
        op_table[OP_TANH].backward = tanh_backward_wrapper;
        between_passes = restore_tanh_backward;
        ra = hand_make(&a, cases[c].fn, &d, 0, 9);
        between_passes = NULL;
        op_table[OP_TANH].backward = real_tanh_backward;
        cr_expect_eq(ra, 0);
        if (ra == 0) hand_compare(&a, &b, cases[c].what, 0);
        hand_free(&a);
        hand_free(&b);
    }
}

Test(fuse, off_switch)
{
    dims d = { 5, 7 };
    hand a;
    cr_assert_eq(hand_make(&a, build_broadcasts, &d, RC_PLAN_NO_EW_FUSION, 1), 0);
    cr_expect_eq(count_op(a.g, "fused"), 0);
    hand_free(&a);
    cr_assert_eq(hand_make(&a, build_broadcasts, &d, 0, 1), 0);
    cr_expect_gt(count_op(a.g, "fused"), 0);
    hand_free(&a);
}
