/* Tests of the gradient check (autodiff/gradcheck*.c, README "Gradient checking"),
 * suite `gradcheck`:
 *
 *  - rare_ops_cell_passes: a cell in the cell language using softplus, abs, sqrt, exp,
 *    log, min, max, division, softmax and a skip connection, unrolled over T = 12 at
 *    batch 12 under a loss near 3e3 (its float rounding, 2e-4, is what a step of 1e-2
 *    sees of a small gradient entry; abs, min and max have a kink within that step of
 *    most entries). Every tensor passes (RC_GC_OK, and rc_gradcheck's error below
 *    2e-3). At T = B = 16 (loss 6e3) a float64 reference agrees with these gradients
 *    to 6e-7, where the check of before reported 0.046 on W_xa and 0.10 on x.
 *  - wrong_by_one_percent_fails: the same cell with a gradient made wrong on purpose
 *    (through gc_test_tamper): scaled by 1.01, or the largest or the second largest
 *    entry off by 1% of the largest: every tensor RC_GC_WRONG; and the softplus backward 1% off (a real
 *    kernel, swapped in the op table): some tensor WRONG.
 *  - kinks_at_the_kink: relu, abs, minimum and maximum at exactly their kinks and
 *    within a step of them, plain and fused: no false failure (the central
 *    difference alone reports 0.5 at relu(0)).
 *  - large_loss_tail: a loss of 4e4 made of scaled sums (a fused scalar tail) is
 *    recomputed in double: the check passes where float rounding alone would not.
 *  - not_finite_skipped: entries whose step leaves log's domain are skipped and
 *    counted, not failed.
 *  - sampled_entries, bad_arguments: max_entries, and errors as values. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"
#include "gradcheck.h"   /* gc_test_tamper */
#include "op.h"          /* op_table: the softplus backward swap */

static uint64_t rnd_next(uint64_t *s)   /* splitmix64 */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rnd_unit(uint64_t *s) { return (float)((double)(rnd_next(s) >> 11) * 0x1.0p-53 * 2.0 - 1.0); }

static int is_param(const rc_node *n) { return strcmp(rc_node_op(n), "param") == 0; }

/* ---- the rare-ops cell ---------------------------------------------------------------- */

static const char *RARE =
    "cell rare (x) -> h, c\n"
    "  hidden 8\n"
    "  a = W_xa @ x + W_ha @ h + b_a\n"
    "  p = softmax(a)\n"
    "  q = softplus(a) - abs(a) / 2 + sqrt(exp(-a * a) + 1)\n"
    "  r = log(1 + p) + min(q, 1.5) - max(a, -1) / (2 + abs(c))\n"
    "  c' = 0.5 * c + tanh(r)\n"
    "  h' = tanh(W_hh @ r + b_h) + h        # the skip connection\n";

enum { RT = 12, RB = 12, RI = 5, RH = 8 };

typedef struct rare {
    rc_cell *cell;
    rc_graph *g;
    rc_plan *p;
    rc_node *x, *loss;
    rc_node *wrt[8];
    int n;
} rare;

/* The cell unrolled, loss = sum over rows of the mean squared error against targets
 * around -3, so a loss of thousands; every parameter and x in wrt. */
static void rare_build(rare *r)
{
    memset(r, 0, sizeof *r);
    char err[512] = "";
    r->cell = rc_cell_parse(RARE, strlen(RARE), "rare.cell", 0, err, sizeof err);
    cr_assert_not_null(r->cell, "%s", err);
    r->g = rc_graph_new();
    int xs[2] = { RT * RB, RI }, ys[2] = { RT * RB, RH };
    r->x = rc_input(r->g, "x", RC_F32, 2, xs);
    rc_requires_grad(r->x, 1);
    rc_node *out = NULL, *fin[2];
    cr_assert_eq(rc_unroll(r->g, r->cell, r->x, RT, NULL, &out, fin), RC_OK, "%s", rc_graph_error(r->g));
    rc_node *y = rc_input(r->g, "y", RC_F32, 2, ys);
    r->loss = rc_sum(r->g, rc_mse(r->g, out, y));
    cr_assert_eq(rc_graph_init_params(r->g, 3), RC_OK);
    r->p = rc_plan_new(r->g, 1, &r->loss);
    cr_assert_not_null(r->p, "%s", rc_graph_error(r->g));
    uint64_t s = 12345;
    float *xd = malloc(sizeof *xd * RT * RB * RI), *yd = malloc(sizeof *yd * RT * RB * RH);
    cr_assert(xd && yd);
    for (int i = 0; i < RT * RB * RI; i++) xd[i] = rnd_unit(&s);
    for (int i = 0; i < RT * RB * RH; i++) yd[i] = 3 * rnd_unit(&s) - 3;
    cr_assert_eq(rc_plan_feed(r->p, r->x, xd, RT * RB * RI), RC_OK);
    cr_assert_eq(rc_plan_feed(r->p, y, yd, RT * RB * RH), RC_OK);
    free(xd);
    free(yd);
    cr_assert_eq(rc_plan_forward(r->p), RC_OK, "%s", rc_plan_error(r->p));
    for (int i = 0; i < rc_graph_node_count(r->g); i++)
        if (is_param(rc_graph_node(r->g, i))) r->wrt[r->n++] = rc_graph_node(r->g, i);
    r->wrt[r->n++] = r->x;
    cr_assert_eq(r->n, 6, "W_xa, W_ha, b_a, W_hh, b_h and x");
}

static void rare_free(rare *r)
{
    rc_plan_free(r->p);
    rc_graph_free(r->g);
    rc_cell_free(r->cell);
}

Test(gradcheck, rare_ops_cell_passes)
{
    rare r;
    rare_build(&r);
    double L = rc_plan_value(r.p, r.loss)[0];
    cr_expect(L > 1e3, "the loss is %g: meant to be thousands", L);
    rc_gradcheck_report rep[6];
    cr_assert_eq(rc_gradcheck_ex(r.p, r.loss, r.n, r.wrt, NULL, rep), RC_OK, "%s", rc_plan_error(r.p));
    for (int k = 0; k < r.n; k++) {
        cr_expect_eq(rep[k].verdict, RC_GC_OK, "%s: verdict %d, error %.3g, noise %.3g, along directions %.3g (%.3g)",
                     rc_node_name(r.wrt[k]), rep[k].verdict, rep[k].err, rep[k].noise, rep[k].dir_err, rep[k].dir_noise);
        cr_expect_eq(rep[k].checked, rep[k].size, "%s: every entry compared", rc_node_name(r.wrt[k]));
        cr_expect_eq(rep[k].directions, 3);
    }
    /* the old interface: the documented bound */
    double err = 1;
    cr_expect_eq(rc_gradcheck(r.p, r.loss, 3, r.wrt, 1e-2f, &err), RC_OK, "%s", rc_plan_error(r.p));
    cr_expect(err < 2e-3, "rc_gradcheck error %.3g", err);
    /* the plan is left as a forward and backward leave it */
    cr_expect_float_eq(rc_plan_value(r.p, r.loss)[0], (float)L, 1e-6f * (float)L);
    rare_free(&r);
}

/* ---- a gradient wrong by 1% ------------------------------------------------------------- */

static int tamper_mode;

static void tamper(const rc_node *x, float *g, size_t n)
{
    (void)x;
    if (tamper_mode == 1) {
        for (size_t i = 0; i < n; i++) g[i] *= 1.01f;
        return;
    }
    size_t at = 0, second = n > 1;
    float mx = 0;
    for (size_t i = 0; i < n; i++)
        if (fabsf(g[i]) > mx) mx = fabsf(g[i]), at = i;
    for (size_t i = 0; i < n; i++)
        if (i != at && fabsf(g[i]) > fabsf(g[second])) second = i;
    g[tamper_mode == 3 ? second : at] += 0.01f * mx;
}

static void (*saved_softplus_backward)(op_inst *);

/* The true softplus backward with its contribution scaled by 1.01. */
static void softplus_backward_1pct_off(op_inst *it)
{
    float *ga = it->gin[0];
    size_t n = it->in[0]->size;
    float *before = ga ? malloc(n * sizeof *before) : NULL;
    if (!before) {
        saved_softplus_backward(it);
        return;
    }
    memcpy(before, ga, n * sizeof *before);   /* backward accumulates with += */
    saved_softplus_backward(it);
    for (size_t i = 0; i < n; i++) ga[i] = before[i] + 1.01f * (ga[i] - before[i]);
    free(before);
}

Test(gradcheck, wrong_by_one_percent_fails)
{
    rare r;
    rare_build(&r);
    /* 16 entries of each tensor, the 8 of largest |g| among them */
    rc_gradcheck_opts o = { .max_entries = 16 };
    static const char *const what[4] = { "", "all scaled by 1.01", "the largest entry off by 1%",
                                         "the second largest off by 1% of the largest" };
    for (tamper_mode = 1; tamper_mode <= 3; tamper_mode++) {
        rc_gradcheck_report rep[6];
        gc_test_tamper = tamper;
        rc_status st = rc_gradcheck_ex(r.p, r.loss, r.n, r.wrt, &o, rep);
        gc_test_tamper = NULL;
        cr_assert_eq(st, RC_OK, "%s", rc_plan_error(r.p));
        for (int k = 0; k < r.n; k++) {
            cr_expect_eq(rep[k].verdict, RC_GC_WRONG, "%s, %s: verdict %d, error %.3g, noise %.3g", what[tamper_mode],
                         rc_node_name(r.wrt[k]), rep[k].verdict, rep[k].err, rep[k].noise);
            cr_expect(rep[k].err > 5e-3 || rep[k].dir_err > 5e-3, "%s, %s: error %.3g", what[tamper_mode],
                      rc_node_name(r.wrt[k]), rep[k].err);
        }
    }
    /* a real kernel 1% off: softplus's backward, which every gradient here goes through */
    rc_gradcheck_report rep[6];
    saved_softplus_backward = op_table[OP_SOFTPLUS].backward;
    op_table[OP_SOFTPLUS].backward = softplus_backward_1pct_off;
    rc_status st = rc_gradcheck_ex(r.p, r.loss, r.n, r.wrt, &o, rep);
    op_table[OP_SOFTPLUS].backward = saved_softplus_backward;
    cr_assert_eq(st, RC_OK, "%s", rc_plan_error(r.p));
    int wrong = 0;
    for (int k = 0; k < r.n; k++) wrong += rep[k].verdict == RC_GC_WRONG;
    cr_expect_gt(wrong, 0, "softplus backward 1%% off went unnoticed (W_xa: error %.3g, noise %.3g)", rep[0].err,
                 rep[0].noise);
    /* and restored, the same check passes */
    cr_assert_eq(rc_gradcheck_ex(r.p, r.loss, r.n, r.wrt, &o, rep), RC_OK);
    for (int k = 0; k < r.n; k++)
        cr_expect_eq(rep[k].verdict, RC_GC_OK, "restored, %s: verdict %d", rc_node_name(r.wrt[k]), rep[k].verdict);
    rare_free(&r);
}

/* ---- kinks ---------------------------------------------------------------------------- */

/* loss = sum(w * (relu(a) + abs(a) + min(a, b) + max(a, b) + relu(b))) over values at
 * and near the kinks: a has zeros, entries within the step of zero, and entries equal
 * to b's. */
static void kinks(unsigned flags)
{
    enum { R = 4, C = 6, N = R * C };
    rc_graph *g = rc_graph_new();
    int sh[2] = { R, C };
    rc_node *a = rc_input(g, "a", RC_F32, 2, sh), *b = rc_input(g, "b", RC_F32, 2, sh);
    rc_requires_grad(a, 1);
    rc_requires_grad(b, 1);
    float w[N], av[N], bv[N];
    uint64_t s = 77;
    for (int i = 0; i < N; i++) {
        w[i] = 1.0f + 0.5f * rnd_unit(&s);
        bv[i] = 0.5f * rnd_unit(&s);
        switch (i % 4) {
        case 0: av[i] = 0.0f; break;                   /* relu and abs at their kink */
        case 1: av[i] = bv[i]; break;                  /* minimum and maximum at a tie */
        case 2: av[i] = 0.003f * (float)(i % 3 - 1); break;   /* within the step of 0 */
        default: av[i] = bv[i] + 0.004f; break;         /* within the step of a tie */
        }
    }
    rc_node *sum = rc_add(g, rc_add(g, rc_relu(g, a), rc_abs(g, a)), rc_minimum(g, a, b));
    sum = rc_add(g, rc_add(g, sum, rc_maximum(g, a, b)), rc_relu(g, b));
    rc_node *loss = rc_sum(g, rc_mul(g, sum, rc_const(g, 2, sh, w)));
    rc_plan *p = rc_plan_new_ex(g, 1, &loss, flags);
    cr_assert_not_null(p, "%s", rc_graph_error(g));
    int fused = 0;
    for (int i = 0; i < rc_graph_node_count(g); i++) fused += strcmp(rc_node_op(rc_graph_node(g, i)), "fused") == 0;
    cr_expect_eq(fused > 0, !(flags & RC_PLAN_NO_EW_FUSION), "the kinks %s fused", flags ? "are not" : "are");
    cr_assert_eq(rc_plan_feed(p, a, av, N), RC_OK);
    cr_assert_eq(rc_plan_feed(p, b, bv, N), RC_OK);
    cr_assert_eq(rc_plan_forward(p), RC_OK);
    rc_node *wrt[2] = { a, b };
    rc_gradcheck_report rep[2];
    cr_assert_eq(rc_gradcheck_ex(p, loss, 2, wrt, NULL, rep), RC_OK, "%s", rc_plan_error(p));
    for (int k = 0; k < 2; k++)
        cr_expect_eq(rep[k].verdict, RC_GC_OK, "%s (flags %u): verdict %d, error %.3g at entry %zu (g %g, numerical %g)",
                     k ? "b" : "a", flags, rep[k].verdict, rep[k].err, rep[k].worst, rep[k].worst_g, rep[k].worst_num);
    double err = 1;
    cr_expect_eq(rc_gradcheck(p, loss, 2, wrt, 1e-2f, &err), RC_OK);
    cr_expect(err < 2e-3, "rc_gradcheck error %.3g (flags %u)", err, flags);
    /* the check leaves the values as they were: the kinks still at the kinks */
    const float *pa = rc_plan_value(p, a);
    cr_assert_not_null(pa);
    cr_expect_eq(memcmp(pa, av, sizeof av), 0);
    rc_plan_free(p);
    rc_graph_free(g);
}

Test(gradcheck, kinks_at_the_kink) { kinks(0); }
Test(gradcheck, kinks_at_the_kink_unfused) { kinks(RC_PLAN_NO_PASSES); }

/* ---- the loss in double ---------------------------------------------------------------- */

/* loss = 3 * sum(tanh(U)^2 ...) + 0.5 * sum(...) + 1e4: a scalar tail the fusion pass
 * turns into one fused node; its float value near 4e4 rounds by 2e-3. */
Test(gradcheck, large_loss_tail)
{
    enum { R = 64, C = 16, N = R * C };
    rc_graph *g = rc_graph_new();
    int sh[2] = { R, C }, one = 1;
    rc_node *u = rc_input(g, "u", RC_F32, 2, sh);
    rc_requires_grad(u, 1);
    rc_node *t = rc_tanh(g, u);
    rc_node *s1 = rc_sum(g, rc_mul(g, t, t)), *s2 = rc_sum(g, rc_exp(g, u));
    float big = 3e4f;
    rc_node *loss = rc_add(g, rc_add(g, rc_scale(g, s1, 3.0f), rc_scale(g, s2, 0.5f)), rc_const(g, 1, &one, &big));
    rc_plan *p = rc_plan_new(g, 1, &loss);
    cr_assert_not_null(p, "%s", rc_graph_error(g));
    int fused_scalar = 0;
    for (int i = 0; i < rc_graph_node_count(g); i++) {
        rc_node *n = rc_graph_node(g, i);
        fused_scalar += strcmp(rc_node_op(n), "fused") == 0 && rc_node_size(n) == 1;
    }
    cr_expect_gt(fused_scalar, 0, "the scalar tail is fused");
    float uv[N];
    uint64_t s = 5;
    for (int i = 0; i < N; i++) uv[i] = 1.5f * rnd_unit(&s);
    cr_assert_eq(rc_plan_feed(p, u, uv, N), RC_OK);
    cr_assert_eq(rc_plan_forward(p), RC_OK);
    cr_expect(rc_plan_value(p, loss)[0] > 3e4f);
    rc_gradcheck_report rep;
    cr_assert_eq(rc_gradcheck_ex(p, loss, 1, &u, NULL, &rep), RC_OK, "%s", rc_plan_error(p));
    cr_expect_eq(rep.verdict, RC_GC_OK, "verdict %d, error %.3g, noise %.3g", rep.verdict, rep.err, rep.noise);
    cr_expect(rep.err < 2e-3, "error %.3g", rep.err);
    rc_plan_free(p);
    rc_graph_free(g);
}

/* ---- entries the step cannot check ---------------------------------------------------- */

Test(gradcheck, not_finite_skipped)
{
    enum { N = 8 };
    rc_graph *g = rc_graph_new();
    int sh[1] = { N };
    rc_node *x = rc_input(g, "x", RC_F32, 1, sh);
    rc_requires_grad(x, 1);
    rc_node *loss = rc_sum(g, rc_log(g, x));
    rc_plan *p = rc_plan_new(g, 1, &loss);
    cr_assert_not_null(p);
    float xv[N] = { 0.5f, 1.0f, 2.0f, 3.0f, 1e-9f, 1.5f, 0.75f, 1e-9f };   /* two entries at 0+ */
    cr_assert_eq(rc_plan_feed(p, x, xv, N), RC_OK);
    cr_assert_eq(rc_plan_forward(p), RC_OK);
    rc_gradcheck_report rep;
    rc_gradcheck_opts o = { .directions = -1 };   /* every direction leaves the domain too */
    cr_assert_eq(rc_gradcheck_ex(p, loss, 1, &x, &o, &rep), RC_OK, "%s", rc_plan_error(p));
    cr_expect_eq(rep.skipped, 2, "skipped %zu", rep.skipped);
    cr_expect_eq(rep.checked, N - 2);
    cr_expect_neq(rep.verdict, RC_GC_WRONG, "error %.3g", rep.err);
    rc_plan_free(p);
    rc_graph_free(g);
}

/* ---- sampling and errors ---------------------------------------------------------------- */

Test(gradcheck, sampled_entries)
{
    enum { N = 200 };
    rc_graph *g = rc_graph_new();
    int sh[1] = { N };
    rc_node *x = rc_input(g, "x", RC_F32, 1, sh);
    rc_requires_grad(x, 1);
    rc_node *loss = rc_sum(g, rc_mul(g, rc_sigmoid(g, x), x));
    rc_plan *p = rc_plan_new(g, 1, &loss);
    float xv[N];
    uint64_t s = 9;
    for (int i = 0; i < N; i++) xv[i] = 2 * rnd_unit(&s);
    cr_assert_eq(rc_plan_feed(p, x, xv, N), RC_OK);
    rc_gradcheck_report rep;
    rc_gradcheck_opts o = { .max_entries = 10, .directions = 1, .seed = 4 };
    cr_assert_eq(rc_gradcheck_ex(p, loss, 1, &x, &o, &rep), RC_OK, "%s", rc_plan_error(p));
    cr_expect_eq(rep.checked, 10);
    cr_expect_eq(rep.directions, 2);
    cr_expect_eq(rep.verdict, RC_GC_OK, "verdict %d, error %.3g", rep.verdict, rep.err);
    rc_plan_free(p);
    rc_graph_free(g);
}

Test(gradcheck, bad_arguments)
{
    rc_graph *g = rc_graph_new();
    int sh[1] = { 3 };
    rc_node *x = rc_input(g, "x", RC_F32, 1, sh), *c = rc_input(g, "c", RC_F32, 1, sh);
    rc_requires_grad(x, 1);
    rc_node *loss = rc_sum(g, rc_mul(g, x, c));
    rc_plan *p = rc_plan_new(g, 1, &loss);
    float v[3] = { 1, 2, 3 };
    rc_plan_feed(p, x, v, 3);
    rc_plan_feed(p, c, v, 3);
    rc_gradcheck_report rep;
    rc_gradcheck_opts bad = { .eps = -1 };
    cr_expect_eq(rc_gradcheck_ex(p, loss, 1, &x, NULL, NULL), RC_ERR_ARG);
    cr_expect_eq(rc_gradcheck_ex(p, loss, 1, &x, &bad, &rep), RC_ERR_ARG);
    cr_expect(strstr(rc_plan_error(p), "gradcheck") != NULL, "%s", rc_plan_error(p));
    cr_expect_eq(rc_gradcheck_ex(p, loss, 1, &c, NULL, &rep), RC_ERR_ARG, "c has no gradient");
    cr_expect(strstr(rc_plan_error(p), "'c'") != NULL, "%s", rc_plan_error(p));
    cr_expect_eq(rc_gradcheck_ex(NULL, loss, 1, &x, NULL, &rep), RC_ERR_ARG);
    double err;
    cr_expect_eq(rc_gradcheck(p, loss, 1, &x, 0.0f, &err), RC_ERR_ARG);
    cr_expect_eq(rc_gradcheck(p, loss, 1, &x, 1e-2f, &err), RC_OK);
    cr_expect(err < 2e-3, "error %.3g", err);
    rc_plan_free(p);
    rc_graph_free(g);
}
