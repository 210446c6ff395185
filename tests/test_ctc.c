/* Tests of the CTC loss op (rc_ctc, ops/op_ctc.c).
 *
 * Values: warp-ctc's published CPU fixtures (baidu-research/warp-ctc,
 * tests/test_cpu.cpp: small_test, options_test, inf_test), brute-force enumeration of
 * every alignment for T <= 6 (loss and exact gradient), a plain double-precision
 * forward-backward for long sequences. Structure: batched = one sequence at a time,
 * padded = unpadded, [T, B, A] = [T*B, A], the reductions' exact meaning, 1 thread =
 * 2 threads bit for bit. Gradients: rc_gradcheck on the logits (every reduction, a
 * mask, repeats, logits shared with another op) and through an unrolled RNN with a
 * head, as a model will use it; a second backward equal to the first; an
 * rc_log_softmax in front changes nothing; a deliberately wrong backward is caught. Errors:
 * infeasible samples (an error naming the sample, or zero loss counted by
 * rc_plan_ctc_infeasible), impossible labels without NaN, each refused input with its
 * message.
 *
 * Checks use cr_expect (non-fatal) so that every test frees what it made (the suite
 * runs under AddressSanitizer's leak checker). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"
#include "fastmath.h"   /* ctc/fm_log */
#include "logaddexp.h"  /* ctc/logaddexp: the kernel's log-add-exp */
#include "op.h"         /* ctc/wrong_backward_caught swaps op_table[OP_CTC].backward */

/* Gradient check: step and tolerance as in test_ops.c (1% off gives ~1e-2). */
#define GC_EPS 1e-2f
#define GC_TOL 2e-3

/* ---- a small deterministic PRNG (splitmix64) ------------------------------------ */

static uint64_t rng_state;
static uint64_t rng_u64(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double rng_unif(double lo, double hi) { return lo + (hi - lo) * (double)(rng_u64() >> 11) * 0x1.0p-53; }
static int rng_below(int n) { return (int)(rng_u64() % (uint64_t)n); }

/* ---- one CTC problem and running it ----------------------------------------------- */

typedef struct ccase {
    int T, B, A, S;
    float *x;          /* [T*B*A] logits, row t*B+b */
    int32_t *lab;      /* [B*S] labels, padded */
    int32_t *len;      /* [B] label lengths */
    int32_t *tlen;     /* [B] input lengths fed as a mask, or NULL (no mask) */
    rc_ctc_opts o;
    int three_d;       /* logits as [T, B, A] */
} ccase;

typedef struct cres {
    rc_status st;      /* of the whole run (build, plan, forward, backward) */
    char err[600];
    float *out;        /* [B] (RC_CTC_NONE) or [1] */
    float *grad;       /* [T*B*A]: d sum(out) / d logits */
    int ninf;          /* rc_plan_ctc_infeasible */
    int32_t which[64];
} cres;

static ccase case_new(int T, int B, int A, int S)
{
    ccase c = { .T = T, .B = B, .A = A, .S = S, .o = rc_ctc_defaults() };
    c.x = calloc((size_t)T * B * A, sizeof *c.x);
    c.lab = calloc((size_t)B * S, sizeof *c.lab);
    c.len = calloc((size_t)B, sizeof *c.len);
    cr_assert(c.x && c.lab && c.len);
    return c;
}

static void case_free(ccase *c)
{
    free(c->x);
    free(c->lab);
    free(c->len);
    free(c->tlen);
}

static void res_free(cres *r)
{
    free(r->out);
    free(r->grad);
}

/* The mask [T*B, 1] of input lengths tlen. */
static float *mask_of(const ccase *c)
{
    float *m = malloc((size_t)c->T * c->B * sizeof *m);
    cr_assert(m);
    for (int t = 0; t < c->T; t++)
        for (int b = 0; b < c->B; b++) m[t * c->B + b] = t < c->tlen[b] ? 1.0f : 0.0f;
    return m;
}

/* The graph of a case: logits input (gradient asked), labels, lengths, the mask. */
typedef struct cgraph {
    rc_graph *g;
    rc_node *x, *lab, *len, *mask, *y;
    float *mdata;
} cgraph;

static int graph_of(const ccase *c, cgraph *q)
{
    memset(q, 0, sizeof *q);
    q->g = rc_graph_new();
    cr_assert(q->g);
    int xs3[3] = { c->T, c->B, c->A }, xs2[2] = { c->T * c->B, c->A }, ls[2] = { c->B, c->S };
    int ms[2] = { c->T * c->B, 1 };
    q->x = c->three_d ? rc_input(q->g, "logits", RC_F32, 3, xs3) : rc_input(q->g, "logits", RC_F32, 2, xs2);
    rc_requires_grad(q->x, 1);
    q->lab = rc_input(q->g, "labels", RC_I32, 2, ls);
    q->len = rc_input(q->g, "label_lengths", RC_I32, 1, &c->B);
    if (c->tlen) {
        q->mask = rc_input(q->g, "mask", RC_F32, 2, ms);
        q->mdata = mask_of(c);
    }
    q->y = rc_ctc(q->g, q->x, q->lab, q->len, q->mask, &c->o);
    return q->y != NULL;
}

static rc_status feed_all(const ccase *c, const cgraph *q, rc_plan *p)
{
    size_t n = (size_t)c->T * c->B;
    rc_status s = rc_plan_feed(p, q->x, c->x, n * (size_t)c->A);
    if (s == RC_OK) s = rc_plan_feed(p, q->lab, c->lab, (size_t)c->B * c->S);
    if (s == RC_OK) s = rc_plan_feed(p, q->len, c->len, (size_t)c->B);
    if (s == RC_OK && q->mask) s = rc_plan_feed(p, q->mask, q->mdata, n);
    return s;
}

/* Forward and backward of sum(out); the outputs, the gradient, the infeasible ones. */
static void run_case(const ccase *c, cres *r)
{
    memset(r, 0, sizeof *r);
    cgraph q;
    rc_plan *p = NULL;
    if (!graph_of(c, &q)) {
        r->st = rc_graph_status(q.g);
        snprintf(r->err, sizeof r->err, "%s", rc_graph_error(q.g));
        goto out;
    }
    rc_node *loss = rc_sum(q.g, q.y);
    p = rc_plan_new(q.g, 1, &loss);
    cr_assert(p, "%s", rc_graph_error(q.g));
    r->st = feed_all(c, &q, p);
    if (r->st == RC_OK) r->st = rc_plan_forward(p);
    if (r->st == RC_OK) r->st = rc_plan_backward(p, loss);
    r->ninf = rc_plan_ctc_infeasible(p, q.y, r->which, 64);
    if (r->st != RC_OK) {
        snprintf(r->err, sizeof r->err, "%s", rc_plan_error(p));
        goto out;
    }
    size_t no = rc_node_size(q.y), ng = (size_t)c->T * c->B * c->A;
    r->out = malloc(no * sizeof *r->out);
    r->grad = malloc(ng * sizeof *r->grad);
    cr_assert(r->out && r->grad);
    memcpy(r->out, rc_plan_value(p, q.y), no * sizeof *r->out);
    memcpy(r->grad, rc_plan_grad(p, q.x), ng * sizeof *r->grad);
out:
    rc_plan_free(p);
    free(q.mdata);
    rc_graph_free(q.g);
}

/* rc_gradcheck of sum(w * out) (random w for RC_CTC_NONE) with respect to the logits. */
static double gradcheck_case(const ccase *c)
{
    cgraph q;
    double err = INFINITY;
    if (!graph_of(c, &q)) {
        cr_expect_fail("graph: %s", rc_graph_error(q.g));
        rc_graph_free(q.g);
        return err;
    }
    rc_node *loss = q.y;
    float w[64];
    if (c->o.reduction == RC_CTC_NONE) {
        for (int b = 0; b < c->B; b++) w[b] = (float)rng_unif(0.5, 1.5);
        loss = rc_sum(q.g, rc_mul(q.g, q.y, rc_const(q.g, 1, &c->B, w)));
    }
    rc_plan *p = rc_plan_new(q.g, 1, &loss);
    cr_assert(p, "%s", rc_graph_error(q.g));
    rc_status s = feed_all(c, &q, p);
    if (s == RC_OK) s = rc_gradcheck(p, loss, 1, &q.x, GC_EPS, &err);
    cr_expect_eq(s, RC_OK, "gradcheck: %s", rc_plan_error(p));
    rc_plan_free(p);
    free(q.mdata);
    rc_graph_free(q.g);
    return err;
}

/* ---- references ----------------------------------------------------------------------- */

static void log_softmax_d(const float *x, int A, double *lp)
{
    double m = x[0], s = 0;
    for (int a = 1; a < A; a++) m = x[a] > m ? x[a] : m;
    for (int a = 0; a < A; a++) s += exp((double)x[a] - m);
    for (int a = 0; a < A; a++) lp[a] = (double)x[a] - m - log(s);
}

/* Sample b's log-probabilities [T_b][A] in double. */
static double *logp_of(const ccase *c, int b, int Tb)
{
    double *lp = malloc(((size_t)Tb * c->A + 1) * sizeof *lp);
    cr_assert(lp);
    for (int t = 0; t < Tb; t++) log_softmax_d(c->x + ((size_t)t * c->B + b) * c->A, c->A, lp + (size_t)t * c->A);
    return lp;
}

/* Brute force: every path of Tb steps over A classes, collapsed (repeats merged,
 * blanks dropped) and compared with the labels. Returns p(labels); occ[t*A+a] gets
 * sum over matching paths of P(path) [path_t = a]. */
static double brute_force(const double *lp, int Tb, int A, const int32_t *lab, int L, int blank, double *occ)
{
    int path[8] = { 0 };
    double p = 0;
    memset(occ, 0, (size_t)Tb * A * sizeof *occ);
    for (;;) {
        int out[8], n = 0, prev = -1;
        double lq = 0;
        for (int t = 0; t < Tb; t++) {
            lq += lp[t * A + path[t]];
            if (path[t] != blank && path[t] != prev) out[n++] = path[t];
            prev = path[t];
        }
        int match = n == L;
        for (int k = 0; match && k < L; k++) match = out[k] == lab[k];
        if (match) {
            double q = exp(lq);
            p += q;
            for (int t = 0; t < Tb; t++) occ[t * A + path[t]] += q;
        }
        int t = 0;   /* the next path, as a base-A counter */
        while (t < Tb && ++path[t] == A) path[t++] = 0;
        if (t == Tb) break;
    }
    return p;
}

static double lse2(double a, double b)
{
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    double m = a > b ? a : b;
    return m + log(exp(a - m) + exp(b - m));
}

/* Plain forward-backward in double over every state (no band, no shifts): the
 * log-likelihood, and grad[t*A+a] = softmax - occupation. */
static double ref_ctc(const double *lp, int Tb, int A, const int32_t *lab, int L, int blank, double *grad)
{
    int Sp = 2 * L + 1;
    double *al = malloc((size_t)Tb * Sp * sizeof *al), *be = malloc((size_t)Tb * Sp * sizeof *be);
    cr_assert(al && be);
#define LBL(s) ((s) & 1 ? lab[(s) >> 1] : blank)
#define SKIP(s) ((s) >= 3 && ((s) & 1) && lab[(s) >> 1] != lab[((s) >> 1) - 1])
    for (int s = 0; s < Sp; s++) al[s] = s < 2 ? lp[LBL(s)] : -INFINITY;
    for (int t = 1; t < Tb; t++)
        for (int s = 0; s < Sp; s++) {
            double v = al[(t - 1) * Sp + s];
            if (s >= 1) v = lse2(v, al[(t - 1) * Sp + s - 1]);
            if (SKIP(s)) v = lse2(v, al[(t - 1) * Sp + s - 2]);
            al[t * Sp + s] = v + lp[t * A + LBL(s)];
        }
    for (int s = 0; s < Sp; s++) be[(Tb - 1) * Sp + s] = s >= Sp - 2 ? 0 : -INFINITY;
    for (int t = Tb - 2; t >= 0; t--)
        for (int s = 0; s < Sp; s++) {
            double v = be[(t + 1) * Sp + s] + lp[(t + 1) * A + LBL(s)];
            if (s + 1 < Sp) v = lse2(v, be[(t + 1) * Sp + s + 1] + lp[(t + 1) * A + LBL(s + 1)]);
            if (s + 2 < Sp && SKIP(s + 2)) v = lse2(v, be[(t + 1) * Sp + s + 2] + lp[(t + 1) * A + LBL(s + 2)]);
            be[t * Sp + s] = v;
        }
    double ll = al[(Tb - 1) * Sp + Sp - 1];
    if (Sp > 1) ll = lse2(ll, al[(Tb - 1) * Sp + Sp - 2]);
    for (int t = 0; grad && t < Tb; t++) {
        for (int a = 0; a < A; a++) grad[t * A + a] = exp(lp[t * A + a]);
        for (int s = 0; s < Sp; s++) grad[t * A + LBL(s)] -= exp(al[t * Sp + s] + be[t * Sp + s] - ll);
    }
#undef LBL
#undef SKIP
    free(al);
    free(be);
    return ll;
}

/* |got - want| <= rtol * (1 + |want|) for n values; one message for the worst. */
static void expect_close_d(const char *what, const float *got, const double *want, size_t n, double rtol)
{
    size_t worst = n;
    double wq = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]), lim = rtol * (1 + fabs(want[i]));
        double q = isfinite(got[i]) ? d / lim : INFINITY;
        if (q > 1 && q > wq) wq = q, worst = i;
    }
    if (worst < n)
        cr_expect_fail("%s: element %zu is %.9g, want %.9g (tolerance %.3g)", what, worst, (double)got[worst],
                       want[worst], rtol);
}

/* Random labels for sample b: L of the non-blank classes, with repeats now and then. */
static void random_labels(ccase *c, int b, int L)
{
    for (int k = 0; k < c->S; k++) c->lab[b * c->S + k] = k < L ? -1 : 1000 + k;   /* padding: garbage */
    for (int k = 0; k < L; k++) {
        int v;
        if (k > 0 && rng_below(4) == 0) v = c->lab[b * c->S + k - 1];
        else do v = rng_below(c->A); while (v == c->o.blank);
        c->lab[b * c->S + k] = v;
    }
    c->len[b] = L;
}

static int repeats(const int32_t *lab, int L)
{
    int r = 0;
    for (int k = 1; k < L; k++) r += lab[k] == lab[k - 1];
    return r;
}

static void random_logits(ccase *c, double scale)
{
    for (size_t i = 0; i < (size_t)c->T * c->B * c->A; i++) c->x[i] = (float)rng_unif(-scale, scale);
}

/* ---- warp-ctc's fixtures -------------------------------------------------------------- */

/* small_test: exp(-loss) is the product of the two labels' softmax probabilities. */
Test(ctc, warpctc_small_test)
{
    ccase c = case_new(2, 1, 5, 2);
    const float x[10] = { 0.1f, 0.6f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f, 0.6f, 0.1f, 0.1f };
    memcpy(c.x, x, sizeof x);
    c.lab[0] = 1;
    c.lab[1] = 2;
    c.len[0] = 2;
    c.o.reduction = RC_CTC_SUM;
    cres r;
    run_case(&c, &r);
    cr_expect_eq(r.st, RC_OK, "%s", r.err);
    if (r.out) {
        double s0 = 0, s1 = 0;
        for (int a = 0; a < 5; a++) s0 += exp(x[a]), s1 += exp(x[5 + a]);
        double want = exp(x[1]) / s0 * exp(x[7]) / s1;
        cr_expect(fabs(exp(-(double)r.out[0]) - want) < 1e-6, "exp(-loss) %.9g, want %.9g", exp(-(double)r.out[0]),
                  want);
    }
    res_free(&r);
    case_free(&c);
}

/* options_test: the probabilities p, fed as log p; blank 5. */
static const double OPT_P[5][2][6] = {
    { { 0.633766, 0.221185, 0.0917319, 0.0129757, 0.0142857, 0.0260553 },
      { 0.30176, 0.28562, 0.0831517, 0.0862751, 0.0816851, 0.161508 } },
    { { 0.111121, 0.588392, 0.278779, 0.0055756, 0.00569609, 0.010436 },
      { 0.24082, 0.397533, 0.0557226, 0.0546814, 0.0557528, 0.19549 } },
    { { 0.0357786, 0.633813, 0.321418, 0.00249248, 0.00272882, 0.0037688 },
      { 0.230246, 0.450868, 0.0389607, 0.038309, 0.0391602, 0.202456 } },
    { { 0.0663296, 0.643849, 0.280111, 0.00283995, 0.0035545, 0.00331533 },
      { 0.280884, 0.429522, 0.0326593, 0.0339046, 0.0326856, 0.190345 } },
    { { 0.458235, 0.396634, 0.123377, 0.00648837, 0.00903441, 0.00623107 },
      { 0.423286, 0.315517, 0.0338439, 0.0393744, 0.0339315, 0.154046 } },
};
static const double OPT_GRAD[5][2][6] = {
    { { -0.366234, 0.221185, 0.0917319, 0.0129757, 0.0142857, 0.0260553 },
      { -0.69824, 0.28562, 0.0831517, 0.0862751, 0.0816851, 0.161508 } },
    { { 0.111121, -0.411608, 0.278779, 0.0055756, 0.00569609, 0.010436 },
      { 0.24082, -0.602467, 0.0557226, 0.0546814, 0.0557528, 0.19549 } },
    { { 0.0357786, 0.633813, -0.678582, 0.00249248, 0.00272882, 0.0037688 },
      { 0.230246, 0.450868, 0.0389607, 0.038309, 0.0391602, -0.797544 } },
    { { 0.0663296, -0.356151, 0.280111, 0.00283995, 0.0035545, 0.00331533 },
      { 0.280884, -0.570478, 0.0326593, 0.0339046, 0.0326856, 0.190345 } },
    { { -0.541765, 0.396634, 0.123377, 0.00648837, 0.00903441, 0.00623107 },
      { -0.576714, 0.315517, 0.0338439, 0.0393744, 0.0339315, 0.154046 } },
};

static ccase options_case(void)
{
    ccase c = case_new(5, 2, 6, 5);
    for (int t = 0; t < 5; t++)
        for (int n = 0; n < 2; n++)
            for (int a = 0; a < 6; a++) c.x[(t * 2 + n) * 6 + a] = (float)log(OPT_P[t][n][a]);
    const int32_t l0[5] = { 0, 1, 2, 1, 0 }, l1[4] = { 0, 1, 1, 0 };
    memcpy(c.lab, l0, sizeof l0);
    memcpy(c.lab + 5, l1, sizeof l1);
    c.lab[9] = 3;   /* padding */
    c.len[0] = 5;
    c.len[1] = 4;
    c.o.blank = 5;
    c.o.reduction = RC_CTC_NONE;
    return c;
}

Test(ctc, warpctc_options_test)
{
    ccase c = options_case();
    cres r;
    run_case(&c, &r);
    cr_expect_eq(r.st, RC_OK, "%s", r.err);
    if (r.out) {
        double want0 = -log(OPT_P[0][0][0] * OPT_P[1][0][1] * OPT_P[2][0][2] * OPT_P[3][0][1] * OPT_P[4][0][0]);
        cr_expect(fabs(r.out[0] - want0) < 1e-4, "score 0: %.6f, want %.6f", (double)r.out[0], want0);
        cr_expect(fabs(r.out[1] - 5.42262) < 1e-4, "score 1: %.6f, want 5.42262", (double)r.out[1]);
        for (int i = 0; i < 60; i++) {
            double want = (&OPT_GRAD[0][0][0])[i];
            cr_expect(fabs(r.grad[i] - want) < 1e-4, "gradient t%d n%d a%d: %.6f, want %.6f", i / 12, i / 6 % 2,
                      i % 6, (double)r.grad[i], want);
        }
    }
    res_free(&r);
    case_free(&c);
}

/* inf_test: class 2 at -1e30 at every step and labels[0] = 2. In log space that
 * label's probability is e^-1e30, not 0: the loss is finite and astronomical (warp-ctc,
 * working with probabilities, reports +inf) and the gradient is finite: every row sums
 * to 0. With -inf instead, the likelihood is 0: loss +inf, gradient 0, counted. */
static ccase inf_case(float v)
{
    ccase c = case_new(50, 1, 15, 10);
    c.o.reduction = RC_CTC_SUM;
    random_logits(&c, 1.0);
    for (int k = 0; k < 10; k++) {
        int l;
        do l = rng_below(15); while (l == 0);
        c.lab[k] = k == 0 ? 2 : l;
    }
    c.len[0] = 10;
    for (int t = 0; t < 50; t++) c.x[t * 15 + 2] = v;
    return c;
}

static void expect_no_nan(const char *what, const float *g, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(g[i]) || isinf(g[i])) {
            cr_expect_fail("%s: gradient element %zu is %g", what, i, (double)g[i]);
            return;
        }
}

Test(ctc, warpctc_inf_test)
{
    rng_state = 15;
    ccase c = inf_case(-1e30f);
    cres r;
    run_case(&c, &r);
    cr_expect_eq(r.st, RC_OK, "%s", r.err);
    if (r.out) {
        cr_expect(r.out[0] >= 1e29f, "loss %g, want about 1e30", (double)r.out[0]);
        expect_no_nan("-1e30", r.grad, 50 * 15);
        for (int t = 0; t < 50; t++) {
            double s = 0;
            for (int a = 0; a < 15; a++) s += r.grad[t * 15 + a];
            cr_expect(fabs(s) < 1e-5, "row %d of the gradient sums to %g", t, s);
        }
        cr_expect_eq(r.ninf, 0);
    }
    res_free(&r);
    for (int z = 0; z < 2; z++) {
        for (int t = 0; t < 50; t++) c.x[t * 15 + 2] = -INFINITY;
        c.o.zero_infeasible = z;
        run_case(&c, &r);
        cr_expect_eq(r.st, RC_OK, "%s", r.err);
        if (r.out) {
            if (z) cr_expect_eq(r.out[0], 0.0f, "zeroed loss %g", (double)r.out[0]);
            else cr_expect(isinf(r.out[0]) && r.out[0] > 0, "loss %g, want +inf", (double)r.out[0]);
            expect_no_nan("-inf", r.grad, 50 * 15);
            for (int i = 0; i < 50 * 15; i++)
                if (r.grad[i] != 0.0f) {
                    cr_expect_fail("-inf: gradient element %d is %g, want 0", i, (double)r.grad[i]);
                    break;
                }
            cr_expect_eq(r.ninf, 1);
            cr_expect_eq(r.which[0], 0);
        }
        res_free(&r);
    }
    case_free(&c);
}

/* A valid step without a distribution (NaN, +inf, all -inf) makes its sample's loss and
 * the valid rows of its gradient NaN; the other samples and the steps past T_b are
 * untouched (recur.h). */
Test(ctc, bad_logits_nan)
{
    rng_state = 16;
    ccase c = case_new(6, 4, 5, 2);
    c.o.reduction = RC_CTC_NONE;
    c.tlen = malloc(4 * sizeof *c.tlen);
    random_logits(&c, 2.0);
    for (int b = 0; b < 4; b++) {
        random_labels(&c, b, 2);
        c.tlen[b] = b == 3 ? 4 : 6;
    }
    c.x[(2 * 4 + 0) * 5 + 1] = NAN;        /* sample 0, step 2 */
    c.x[(5 * 4 + 1) * 5 + 3] = INFINITY;   /* sample 1, step 5 */
    for (int a = 0; a < 5; a++) c.x[(0 * 4 + 2) * 5 + a] = -INFINITY;   /* sample 2, step 0 */
    c.x[(5 * 4 + 3) * 5 + 0] = NAN;        /* sample 3, step 5: past its 4 steps */
    cres r;
    run_case(&c, &r);
    cr_expect_eq(r.st, RC_OK, "%s", r.err);
    for (int b = 0; r.out && b < 4; b++) {
        cr_expect(b < 3 ? isnan(r.out[b]) : isfinite(r.out[b]), "sample %d: loss %g", b, (double)r.out[b]);
        for (int t = 0; t < 6; t++)
            for (int a = 0; a < 5; a++) {
                float g = r.grad[(t * 4 + b) * 5 + a];
                int want_nan = b < 3;
                if (b == 3) cr_expect(t < 4 ? isfinite(g) : g == 0.0f, "sample 3 step %d: gradient %g", t, (double)g);
                else cr_expect(want_nan == isnan(g), "sample %d step %d: gradient %g", b, t, (double)g);
            }
    }
    cr_expect_eq(r.ninf, 0, "NaN samples are not infeasible ones");
    res_free(&r);
    case_free(&c);
}

/* ---- brute force -------------------------------------------------------------------- */

/* Random problems with T <= 6: every sample's loss and gradient against the sum over
 * all A^T_b paths; infeasible samples (zeroed here) have probability 0 there too. */
Test(ctc, brute_force)
{
    rng_state = 2006;
    int feasible = 0, infeasible = 0, empty = 0;
    for (int it = 0; it < 60; it++) {
        int T = 1 + rng_below(6), B = 1 + rng_below(3), A = 2 + rng_below(3), S = 1 + rng_below(4);
        ccase c = case_new(T, B, A, S);
        c.o.blank = rng_below(A);
        c.o.reduction = RC_CTC_NONE;
        c.o.zero_infeasible = 1;
        c.three_d = it & 1;
        random_logits(&c, 2.0);
        int masked = rng_below(2);
        if (masked) c.tlen = malloc((size_t)B * sizeof *c.tlen);
        for (int b = 0; b < B; b++) {
            int L = rng_below((S < T ? S : T) + 1);
            random_labels(&c, b, L);
            if (masked) c.tlen[b] = rng_below(T + 1);
        }
        cres r;
        run_case(&c, &r);
        cr_expect_eq(r.st, RC_OK, "case %d: %s", it, r.err);
        for (int b = 0; r.out && b < B; b++) {
            int Tb = masked ? c.tlen[b] : T, L = c.len[b];
            const int32_t *lab = c.lab + b * S;
            double *lp = logp_of(&c, b, Tb), *occ = malloc(((size_t)Tb * A + 1) * sizeof *occ);
            cr_assert(occ);
            double p = brute_force(lp, Tb, A, lab, L, c.o.blank, occ);
            char what[96];
            snprintf(what, sizeof what, "case %d (T %d of %d, A %d, L %d) sample %d", it, Tb, T, A, L, b);
            double *want = calloc((size_t)T * A, sizeof *want);
            float *got = malloc((size_t)T * A * sizeof *got);
            cr_assert(want && got);
            for (int t = 0; t < T; t++) memcpy(got + t * A, r.grad + ((size_t)t * B + b) * A, (size_t)A * sizeof *got);
            if (L + repeats(lab, L) > Tb) {
                infeasible++;
                cr_expect_eq(p, 0.0, "%s: infeasible, yet %g", what, p);
                cr_expect_eq(r.out[b], 0.0f, "%s: zeroed loss %g", what, (double)r.out[b]);
            } else {
                feasible++;
                empty += Tb == 0;
                double want_loss = -log(p);
                expect_close_d(what, &r.out[b], &want_loss, 1, 2e-6);
                for (int t = 0; t < Tb; t++)
                    for (int a = 0; a < A; a++) want[t * A + a] = exp(lp[t * A + a]) - occ[t * A + a] / p;
            }
            expect_close_d(what, got, want, (size_t)T * A, 2e-6);   /* 0 past T_b, and when zeroed */
            free(want);
            free(got);
            free(lp);
            free(occ);
        }
        int nz = 0;
        for (int b = 0; b < B; b++) nz += c.len[b] + repeats(c.lab + b * S, c.len[b]) > (masked ? c.tlen[b] : T);
        cr_expect_eq(r.ninf, nz, "case %d: %d infeasible reported, %d expected", it, r.ninf, nz);
        res_free(&r);
        case_free(&c);
    }
    cr_expect(feasible > 40 && infeasible > 3, "the cases cover too little: %d feasible, %d infeasible", feasible,
              infeasible);
}

/* Long sequences against a plain double-precision forward-backward: the log-likelihood
 * of 2000 steps needs its shifts summed in double (float would be ~1e-5 off). */
Test(ctc, long_sequences_double_reference)
{
    rng_state = 77;
    ccase c = case_new(2000, 2, 10, 120);
    c.o.reduction = RC_CTC_NONE;
    random_logits(&c, 3.0);
    random_labels(&c, 0, 120);
    random_labels(&c, 1, 37);
    cres r;
    run_case(&c, &r);
    cr_expect_eq(r.st, RC_OK, "%s", r.err);
    for (int b = 0; r.out && b < 2; b++) {
        double *lp = logp_of(&c, b, c.T), *g = malloc((size_t)c.T * c.A * sizeof *g);
        float *got = malloc((size_t)c.T * c.A * sizeof *got);
        cr_assert(g && got);
        double want = -ref_ctc(lp, c.T, c.A, c.lab + b * c.S, c.len[b], c.o.blank, g);
        char what[64];
        snprintf(what, sizeof what, "T 2000 sample %d loss", b);
        expect_close_d(what, &r.out[b], &want, 1, 1e-7);
        for (int t = 0; t < c.T; t++) memcpy(got + t * c.A, r.grad + ((size_t)t * 2 + b) * c.A, (size_t)c.A * 4);
        snprintf(what, sizeof what, "T 2000 sample %d gradient", b);
        expect_close_d(what, got, g, (size_t)c.T * c.A, 2e-5);
        free(lp);
        free(g);
        free(got);
    }
    res_free(&r);
    case_free(&c);
}

/* ---- structure ------------------------------------------------------------------------ */

/* A batch with a mask equals each sample run alone with its own T_b steps, no mask. */
Test(ctc, batched_equals_one_at_a_time)
{
    rng_state = 5;
    int T = 12, B = 6, A = 7, S = 5;
    ccase c = case_new(T, B, A, S);
    c.o.reduction = RC_CTC_NONE;
    c.tlen = malloc((size_t)B * sizeof *c.tlen);
    random_logits(&c, 2.0);
    for (int b = 0; b < B; b++) {
        random_labels(&c, b, rng_below(S + 1));
        c.tlen[b] = c.len[b] + repeats(c.lab + b * S, c.len[b]) + rng_below(T - 7) + 1;
        if (c.tlen[b] > T) c.tlen[b] = T;
    }
    cres r;
    run_case(&c, &r);
    cr_expect_eq(r.st, RC_OK, "%s", r.err);
    for (int b = 0; r.out && b < B; b++) {
        int Tb = c.tlen[b];
        ccase one = case_new(Tb, 1, A, S);
        one.o = c.o;
        for (int t = 0; t < Tb; t++) memcpy(one.x + t * A, c.x + ((size_t)t * B + b) * A, (size_t)A * 4);
        memcpy(one.lab, c.lab + b * S, (size_t)S * 4);
        one.len[0] = c.len[b];
        cres r1;
        run_case(&one, &r1);
        cr_expect_eq(r1.st, RC_OK, "%s", r1.err);
        if (r1.out) {
            cr_expect(fabsf(r.out[b] - r1.out[0]) <= 1e-6f * (1 + fabsf(r1.out[0])), "sample %d: %.9g alone %.9g", b,
                      (double)r.out[b], (double)r1.out[0]);
            for (int t = 0; t < T; t++)
                for (int a = 0; a < A; a++) {
                    float got = r.grad[((size_t)t * B + b) * A + a], want = t < Tb ? r1.grad[t * A + a] : 0.0f;
                    if (!(fabsf(got - want) <= 1e-6f)) {
                        cr_expect_fail("sample %d step %d class %d: gradient %.9g, alone %.9g", b, t, a, (double)got,
                                       (double)want);
                        t = T;
                        break;
                    }
                }
        }
        res_free(&r1);
        case_free(&one);
    }
    res_free(&r);
    case_free(&c);
}

/* Padding in time (garbage logits past the mask) and in the labels (garbage past the
 * length) changes nothing; the padded steps' gradient is exactly 0. */
Test(ctc, padded_equals_unpadded)
{
    rng_state = 11;
    int T = 9, A = 6, L = 4;
    ccase c = case_new(T, 1, A, L);
    c.o.reduction = RC_CTC_SUM;
    random_logits(&c, 2.0);
    random_labels(&c, 0, L);
    ccase pd = case_new(T + 4, 1, A, L + 3);
    pd.o = c.o;
    pd.tlen = malloc(sizeof *pd.tlen);
    pd.tlen[0] = T;
    memcpy(pd.x, c.x, (size_t)T * A * 4);
    for (int i = T * A; i < (T + 4) * A; i++) pd.x[i] = (float)rng_unif(-50, 50);
    memcpy(pd.lab, c.lab, (size_t)L * 4);
    pd.lab[L] = -3;
    pd.lab[L + 1] = 1000;
    pd.lab[L + 2] = 0;   /* the blank */
    pd.len[0] = L;
    cres r, rp;
    run_case(&c, &r);
    run_case(&pd, &rp);
    cr_expect_eq(r.st, RC_OK, "%s", r.err);
    cr_expect_eq(rp.st, RC_OK, "%s", rp.err);
    if (r.out && rp.out) {
        cr_expect_eq(r.out[0], rp.out[0], "loss %.9g padded %.9g", (double)r.out[0], (double)rp.out[0]);
        cr_expect(memcmp(r.grad, rp.grad, (size_t)T * A * 4) == 0, "the gradients of the valid steps differ");
        for (int i = T * A; i < (T + 4) * A; i++)
            if (rp.grad[i] != 0.0f) {
                cr_expect_fail("padded step %d: gradient %g", i / A, (double)rp.grad[i]);
                break;
            }
    }
    res_free(&r);
    res_free(&rp);
    case_free(&c);
    case_free(&pd);
}

/* [T, B, A] logits give what [T*B, A] give. */
Test(ctc, three_d_logits)
{
    rng_state = 12;
    ccase c = case_new(7, 3, 5, 3);
    c.o.reduction = RC_CTC_NONE;
    random_logits(&c, 2.0);
    for (int b = 0; b < 3; b++) random_labels(&c, b, 1 + b);
    cres r2, r3;
    run_case(&c, &r2);
    c.three_d = 1;
    run_case(&c, &r3);
    cr_expect_eq(r2.st, RC_OK, "%s", r2.err);
    cr_expect_eq(r3.st, RC_OK, "%s", r3.err);
    if (r2.out && r3.out) {
        cr_expect(memcmp(r2.out, r3.out, 3 * 4) == 0);
        cr_expect(memcmp(r2.grad, r3.grad, 7 * 3 * 5 * 4) == 0);
    }
    res_free(&r2);
    res_free(&r3);
    case_free(&c);
}

/* The reductions are what recur.h says, values and gradients, and PyTorch's 'mean'
 * is RC_CTC_NONE divided by the lengths, then averaged. */
Test(ctc, reductions)
{
    rng_state = 21;
    int T = 10, B = 4, A = 6, S = 4;
    ccase c = case_new(T, B, A, S);
    random_logits(&c, 2.0);
    int Ls[4] = { 4, 0, 2, 3 };
    for (int b = 0; b < B; b++) random_labels(&c, b, Ls[b]);
    c.o.reduction = RC_CTC_NONE;
    cres rn;
    run_case(&c, &rn);
    cr_expect_eq(rn.st, RC_OK, "%s", rn.err);
    double sum = 0, torch_mean = 0;
    for (int b = 0; rn.out && b < B; b++) {
        sum += rn.out[b];
        torch_mean += rn.out[b] / (Ls[b] > 1 ? Ls[b] : 1) / B;
    }
    const struct { rc_ctc_reduction red; double div; const char *name; } R[3] = {
        { RC_CTC_SUM, 1.0, "sum" }, { RC_CTC_MEAN_BATCH, B, "mean over the batch" }, { RC_CTC_MEAN_LABEL, 9.0, "mean per label" } };
    for (int k = 0; rn.out && k < 3; k++) {
        c.o.reduction = R[k].red;
        cres r;
        run_case(&c, &r);
        cr_expect_eq(r.st, RC_OK, "%s", r.err);
        if (r.out) {
            double want = sum / R[k].div;
            expect_close_d(R[k].name, r.out, &want, 1, 1e-6);
            double *g = malloc((size_t)T * B * A * sizeof *g);
            cr_assert(g);
            for (int i = 0; i < T * B * A; i++) g[i] = rn.grad[i] / R[k].div;
            expect_close_d(R[k].name, r.grad, g, (size_t)T * B * A, 1e-6);
            free(g);
        }
        res_free(&r);
    }
    /* PyTorch's 'mean' from the per-sample losses, in a graph */
    if (rn.out) {
        c.o.reduction = RC_CTC_NONE;
        cgraph q;
        cr_assert(graph_of(&c, &q));
        float lens[4];
        for (int b = 0; b < B; b++) lens[b] = (float)(Ls[b] > 1 ? Ls[b] : 1);
        rc_node *m = rc_mean(q.g, rc_div(q.g, q.y, rc_const(q.g, 1, &B, lens)));
        rc_plan *p = rc_plan_new(q.g, 1, &m);
        cr_assert(p, "%s", rc_graph_error(q.g));
        cr_expect_eq(feed_all(&c, &q, p), RC_OK);
        cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
        expect_close_d("PyTorch's mean", rc_plan_value(p, m), &torch_mean, 1, 1e-6);
        rc_plan_free(p);
        rc_graph_free(q.g);
    }
    res_free(&rn);
    case_free(&c);
}

/* One thread and two give the same bits (samples and rows split across threads). */
Test(ctc, threads_bitwise)
{
    rng_state = 31;
    /* above both parallel thresholds of op_ctc.c: 100*8*80 logits, and ~24000
     * state-steps (sum of T_b (2 L_b + 1)) for the samples split across threads */
    ccase c = case_new(100, 8, 80, 30);
    c.o.reduction = RC_CTC_MEAN_LABEL;
    c.tlen = malloc(8 * sizeof *c.tlen);
    random_logits(&c, 3.0);
    for (int b = 0; b < 8; b++) {
        random_labels(&c, b, 10 + 2 * b);
        c.tlen[b] = 70 + 4 * b;
    }
    cres r1, r2;
    rc_set_num_threads(1);
    run_case(&c, &r1);
    rc_set_num_threads(2);
    run_case(&c, &r2);
    cr_expect_eq(r1.st, RC_OK, "%s", r1.err);
    cr_expect_eq(r2.st, RC_OK, "%s", r2.err);
    if (r1.out && r2.out) {
        cr_expect_eq(r1.out[0], r2.out[0], "%.9g vs %.9g", (double)r1.out[0], (double)r2.out[0]);
        cr_expect(memcmp(r1.grad, r2.grad, (size_t)100 * 8 * 80 * 4) == 0, "gradients differ");
    }
    res_free(&r1);
    res_free(&r2);
    case_free(&c);
}

/* Fewer samples than threads: the rows' log-sum-exp and softmax run in a row-parallel
 * pass of their own (op_ctc.c rows_apart) and must give what one thread gives. */
Test(ctc, threads_bitwise_rows_apart)
{
    rng_state = 33;
    ccase c = case_new(100, 1, 400, 30);   /* 40000 logits: above OP_PAR_MIN */
    c.o.reduction = RC_CTC_SUM;
    random_logits(&c, 3.0);
    random_labels(&c, 0, 30);
    cres r1, r2;
    rc_set_num_threads(1);
    run_case(&c, &r1);
    rc_set_num_threads(2);
    run_case(&c, &r2);
    cr_expect_eq(r1.st, RC_OK, "%s", r1.err);
    cr_expect_eq(r2.st, RC_OK, "%s", r2.err);
    if (r1.out && r2.out) {
        cr_expect_eq(r1.out[0], r2.out[0], "%.9g vs %.9g", (double)r1.out[0], (double)r2.out[0]);
        cr_expect(memcmp(r1.grad, r2.grad, (size_t)100 * 400 * 4) == 0, "gradients differ");
    }
    res_free(&r1);
    res_free(&r2);
    case_free(&c);
}

/* A second backward of the same plan gives the same gradient: the op stores into a
 * fresh gradient (it declares that it writes it whole), it does not add to what the
 * last sweep left there. */
Test(ctc, backward_twice)
{
    rng_state = 32;
    ccase c = case_new(8, 3, 6, 3);
    c.o.reduction = RC_CTC_SUM;
    random_logits(&c, 2.0);
    for (int b = 0; b < 3; b++) random_labels(&c, b, b + 1);
    cgraph q;
    cr_assert(graph_of(&c, &q));
    rc_plan *p = rc_plan_new(q.g, 1, &q.y);
    cr_assert(p, "%s", rc_graph_error(q.g));
    size_t n = (size_t)8 * 3 * 6;
    float first[8 * 3 * 6];
    rc_status s = feed_all(&c, &q, p);
    for (int k = 0; k < 2 && s == RC_OK; k++) {
        s = rc_plan_forward(p);
        if (s == RC_OK) s = rc_plan_backward(p, q.y);
        const float *g = rc_plan_grad(p, q.x);
        if (s != RC_OK || !g) break;
        if (k == 0) memcpy(first, g, sizeof first);
        else cr_expect(memcmp(first, g, n * sizeof *g) == 0, "the second backward's gradient differs");
    }
    cr_expect_eq(s, RC_OK, "%s", rc_plan_error(p));
    rc_plan_free(p);
    rc_graph_free(q.g);
    case_free(&c);
}

/* ---- gradients ------------------------------------------------------------------------- */

/* rc_gradcheck on the logits: every reduction, with and without a mask, repeats. */
Test(ctc, gradcheck_logits)
{
    rng_state = 41;
    const rc_ctc_reduction reds[4] = { RC_CTC_SUM, RC_CTC_MEAN_BATCH, RC_CTC_MEAN_LABEL, RC_CTC_NONE };
    for (int k = 0; k < 8; k++) {
        ccase c = case_new(6, 3, 5, 3);
        c.o.reduction = reds[k % 4];
        c.o.blank = k % 5;
        random_logits(&c, 2.0);
        for (int b = 0; b < 3; b++) random_labels(&c, b, b + 1);
        if (k >= 4) {
            c.tlen = malloc(3 * sizeof *c.tlen);
            for (int b = 0; b < 3; b++) c.tlen[b] = 6 - b;
        }
        c.lab[2 * 3 + 1] = c.lab[2 * 3];   /* a repeat: needs a blank between */
        double err = gradcheck_case(&c);
        cr_expect(err < GC_TOL, "reduction %d blank %d mask %d: gradient check error %.3g", c.o.reduction,
                  c.o.blank, k >= 4, err);
        case_free(&c);
    }
}

/* Logits also used by another op: the CTC gradient is added, not stored over it. */
Test(ctc, gradcheck_shared_logits)
{
    rng_state = 42;
    ccase c = case_new(5, 2, 4, 2);
    c.o.reduction = RC_CTC_SUM;
    random_logits(&c, 2.0);
    for (int b = 0; b < 2; b++) random_labels(&c, b, 2);
    cgraph q;
    cr_assert(graph_of(&c, &q));
    rc_node *other = rc_sum(q.g, rc_mul(q.g, q.x, q.x));
    rc_node *loss = rc_add(q.g, q.y, other);
    rc_plan *p = rc_plan_new(q.g, 1, &loss);
    cr_assert(p, "%s", rc_graph_error(q.g));
    double err = INFINITY;
    rc_status s = feed_all(&c, &q, p);
    if (s == RC_OK) s = rc_gradcheck(p, loss, 1, &q.x, GC_EPS, &err);
    cr_expect_eq(s, RC_OK, "%s", rc_plan_error(p));
    cr_expect(err < GC_TOL, "gradient check error %.3g", err);
    rc_plan_free(p);
    rc_graph_free(q.g);
    case_free(&c);
}

/* As a model will use it: an RNN unrolled over masked sequences, a head over the
 * stacked outputs [T*B, H] -> [T*B, A], the CTC loss on that with the same mask;
 * gradients of the head's weight and of the input. */
Test(ctc, gradcheck_through_unrolled_rnn)
{
    rng_state = 43;
    int T = 5, B = 2, I = 3, H = 4, A = 4;
    rc_graph *g = rc_graph_new();
    rc_cell *cell = rc_cell_rnn(H, RC_ACT_TANH);
    cr_assert(g && cell);
    int xs[2] = { T * B, I }, ms[2] = { T * B, 1 }, ws[2] = { A, H }, ls[2] = { B, 2 };
    rc_node *x = rc_input(g, "x", RC_F32, 2, xs), *mask = rc_input(g, "mask", RC_F32, 2, ms);
    rc_requires_grad(x, 1);
    rc_unroll_opts uo = { .mask = mask };
    rc_node *outs = NULL;
    cr_assert_eq(rc_unroll(g, cell, x, T, &uo, &outs, NULL), RC_OK, "%s", rc_graph_error(g));
    rc_node *W = rc_param(g, "out.W", 2, ws);
    rc_node *logits = rc_add(g, rc_matmul_t(g, outs, W, 0, 1), rc_param(g, "out.b", 1, &A));
    rc_node *lab = rc_input(g, "labels", RC_I32, 2, ls), *len = rc_input(g, "label_lengths", RC_I32, 1, &B);
    rc_ctc_opts o = rc_ctc_defaults();
    rc_node *loss = rc_ctc(g, logits, lab, len, mask, &o);
    cr_assert(loss, "%s", rc_graph_error(g));
    rc_graph_init_params(g, 7);
    rc_plan *p = rc_plan_new(g, 1, &loss);
    cr_assert(p, "%s", rc_graph_error(g));
    float xv[5 * 2 * 3], mv[5 * 2];
    for (int i = 0; i < T * B * I; i++) xv[i] = (float)rng_unif(-1, 1);
    for (int t = 0; t < T; t++) mv[t * B] = 1.0f, mv[t * B + 1] = t < 3 ? 1.0f : 0.0f;
    const int32_t lv[4] = { 1, 2, 3, 3 }, nv[2] = { 2, 1 };
    rc_plan_feed(p, x, xv, (size_t)T * B * I);
    rc_plan_feed(p, mask, mv, (size_t)T * B);
    rc_plan_feed(p, lab, lv, 4);
    rc_plan_feed(p, len, nv, 2);
    double err = INFINITY;
    rc_node *wrt[2] = { W, x };
    rc_status s = rc_gradcheck(p, loss, 2, wrt, GC_EPS, &err);
    cr_expect_eq(s, RC_OK, "%s", rc_plan_error(p));
    cr_expect(err < GC_TOL, "gradient check error %.3g", err);
    rc_plan_free(p);
    rc_cell_free(cell);
    rc_graph_free(g);
}

/* A backward 1% off is caught by the gradient check above (the check can fail). */
static void (*real_backward)(op_inst *);
static void backward_off_by_1pct(op_inst *it)
{
    real_backward(it);
    size_t n = it->in[0]->size;
    for (size_t i = 0; it->gin[0] && i < n; i++) it->gin[0][i] *= 1.01f;
}

Test(ctc, wrong_backward_caught)
{
    rng_state = 44;
    ccase c = case_new(6, 2, 5, 3);
    c.o.reduction = RC_CTC_SUM;
    random_logits(&c, 2.0);
    for (int b = 0; b < 2; b++) random_labels(&c, b, 2);
    double ok = gradcheck_case(&c);
    real_backward = op_table[OP_CTC].backward;
    op_table[OP_CTC].backward = backward_off_by_1pct;
    double bad = gradcheck_case(&c);
    op_table[OP_CTC].backward = real_backward;
    cr_expect(ok < GC_TOL, "the real backward: error %.3g", ok);
    cr_expect(bad > 3 * GC_TOL, "a backward 1%% off passes: error %.3g", bad);
    case_free(&c);
}

/* An rc_log_softmax in front changes neither the loss nor the gradient with respect to
 * the logits (recur.h: value and gradient are of one function for any input). */
Test(ctc, log_softmax_in_front)
{
    rng_state = 45;
    ccase c = case_new(7, 2, 5, 3);
    c.o.reduction = RC_CTC_SUM;
    random_logits(&c, 3.0);
    for (int b = 0; b < 2; b++) random_labels(&c, b, 2 + b);
    cres r;
    run_case(&c, &r);
    cr_expect_eq(r.st, RC_OK, "%s", r.err);
    cgraph q;
    cr_assert(graph_of(&c, &q));
    rc_node *y = rc_ctc(q.g, rc_log_softmax(q.g, q.x), q.lab, q.len, NULL, &c.o);
    rc_plan *p = y ? rc_plan_new(q.g, 1, &y) : NULL;
    cr_assert(p, "%s", rc_graph_error(q.g));
    rc_status s = feed_all(&c, &q, p);
    if (s == RC_OK) s = rc_plan_forward(p);
    if (s == RC_OK) s = rc_plan_backward(p, y);
    cr_expect_eq(s, RC_OK, "%s", rc_plan_error(p));
    if (s == RC_OK && r.out) {
        double want = r.out[0], *g = malloc(7 * 2 * 5 * sizeof *g);
        cr_assert(g);
        for (int i = 0; i < 70; i++) g[i] = r.grad[i];
        expect_close_d("loss through log_softmax", rc_plan_value(p, y), &want, 1, 1e-6);
        expect_close_d("gradient through log_softmax", rc_plan_grad(p, q.x), g, 70, 1e-6);
        free(g);
    }
    rc_plan_free(p);
    rc_graph_free(q.g);
    res_free(&r);
    case_free(&c);
}

/* ---- infeasible samples and refused inputs ------------------------------------------------ */

/* Sample 1 has 3 labels with a repeat (needs 4 steps) and only 3: an error naming it,
 * or (zero_infeasible) loss 0 and gradient 0 for it, counted. */
Test(ctc, infeasible_sample)
{
    rng_state = 51;
    ccase c = case_new(6, 3, 4, 3);
    c.o.reduction = RC_CTC_NONE;
    c.tlen = malloc(3 * sizeof *c.tlen);
    random_logits(&c, 1.0);
    const int32_t lab[9] = { 1, 2, 0, 1, 1, 2, 3, 0, 0 }, len[3] = { 2, 3, 1 }, tl[3] = { 6, 3, 4 };
    memcpy(c.lab, lab, sizeof lab);
    memcpy(c.len, len, sizeof len);
    memcpy(c.tlen, tl, sizeof tl);
    cres r;
    run_case(&c, &r);
    cr_expect_eq(r.st, RC_ERR_ARG);
    cr_expect(strstr(r.err, "sample 1 is infeasible") && strstr(r.err, "at least 4 steps") &&
                  strstr(r.err, "its input has 3") && strstr(r.err, "1 of 3 samples"),
              "message: %s", r.err);
    cr_expect_eq(r.ninf, -1, "no successful forward: %d", r.ninf);
    res_free(&r);
    c.o.zero_infeasible = 1;
    run_case(&c, &r);
    cr_expect_eq(r.st, RC_OK, "%s", r.err);
    if (r.out) {
        cr_expect_eq(r.out[1], 0.0f);
        cr_expect(r.out[0] > 0 && r.out[2] > 0 && isfinite(r.out[0]) && isfinite(r.out[2]));
        for (int t = 0; t < 6; t++)
            for (int a = 0; a < 4; a++) cr_expect_eq(r.grad[(t * 3 + 1) * 4 + a], 0.0f);
        cr_expect_eq(r.ninf, 1);
        cr_expect_eq(r.which[0], 1);
    }
    res_free(&r);
    case_free(&c);
}

/* A run-time error for a case changed by `edit`; its message must contain `want`. */
static void expect_refused(void (*edit)(ccase *), const char *want)
{
    ccase c = case_new(4, 2, 5, 3);
    c.tlen = malloc(2 * sizeof *c.tlen);
    c.tlen[0] = 4;
    c.tlen[1] = 3;
    const int32_t lab[6] = { 1, 2, 3, 4, 4, 0 }, len[2] = { 3, 1 };
    memcpy(c.lab, lab, sizeof lab);
    memcpy(c.len, len, sizeof len);
    edit(&c);
    cres r;
    run_case(&c, &r);
    cr_expect_eq(r.st, RC_ERR_ARG, "%s: status %d", want, r.st);
    cr_expect(strstr(r.err, want) != NULL, "want \"%s\" in: %s", want, r.err);
    res_free(&r);
    case_free(&c);
}

static void label_too_big(ccase *c) { c->lab[3] = 5; }
static void label_negative(ccase *c) { c->lab[1] = -1; }
static void label_blank(ccase *c) { c->o.blank = 3; }
static void length_negative(ccase *c) { c->len[1] = -2; }
static void length_past_padding(ccase *c) { c->len[0] = 4; }
static void length_past_T(ccase *c)
{
    free(c->lab);
    c->S = 6;
    c->lab = calloc(12, sizeof *c->lab);
    for (int k = 0; k < 12; k++) c->lab[k] = 1 + k % 4;
    c->len[1] = 5;
}

Test(ctc, refused_inputs)
{
    expect_refused(label_too_big, "sample 1: label 0 is 5, not a class of 5 (0..4)");
    expect_refused(label_negative, "sample 0: label 1 is -1, not a class of 5");
    expect_refused(label_blank, "sample 0: label 2 is the blank (3)");
    expect_refused(length_negative, "sample 1: label length -2 is negative");
    expect_refused(length_past_padding, "sample 0: label length 4 exceeds the labels' padding 3");
    expect_refused(length_past_T, "sample 1: label length 5 exceeds the 4 steps of the batch");
}

/* Masks that are not 1s then 0s are refused, naming the sample and step. */
Test(ctc, refused_masks)
{
    const struct { float v[2]; const char *want; } M[2] = {
        { { 0.5f, 1.0f }, "sample 1: mask value 0.5 at step 1 (must be 0 or 1)" },
        { { 0.0f, 1.0f }, "sample 1: mask is 1 at step 2 after 0 at step 1" } };
    for (int k = 0; k < 2; k++) {
        ccase c = case_new(4, 2, 5, 3);
        const int32_t lab[6] = { 1, 2, 3, 4, 4, 0 }, len[2] = { 3, 1 };
        memcpy(c.lab, lab, sizeof lab);
        memcpy(c.len, len, sizeof len);
        cgraph q;
        int ms[2] = { 8, 1 };
        cr_assert(graph_of(&c, &q));
        rc_node *mask = rc_input(q.g, "mask", RC_F32, 2, ms);
        rc_node *y = rc_ctc(q.g, q.x, q.lab, q.len, mask, NULL);
        cr_assert(y, "%s", rc_graph_error(q.g));
        rc_plan *p = rc_plan_new(q.g, 1, &y);
        cr_assert(p, "%s", rc_graph_error(q.g));
        float mv[8] = { 1, 1, 1, M[k].v[0], 1, M[k].v[1], 1, 0 };
        cr_expect_eq(feed_all(&c, &q, p), RC_OK);
        cr_expect_eq(rc_plan_feed(p, mask, mv, 8), RC_OK);
        cr_expect_eq(rc_plan_forward(p), RC_ERR_ARG);
        cr_expect(strstr(rc_plan_error(p), M[k].want) != NULL, "want \"%s\" in: %s", M[k].want, rc_plan_error(p));
        rc_plan_free(p);
        rc_graph_free(q.g);
        case_free(&c);
    }
}

/* Shapes, dtypes and options are refused when the node is built, with a message. */
Test(ctc, refused_shapes)
{
    rc_graph *g = rc_graph_new();
    cr_assert(g);
    int xs[2] = { 12, 5 }, ls[2] = { 3, 2 }, l2[2] = { 5, 2 }, ms[2] = { 10, 1 };
    int n3 = 3, n5 = 5;
    rc_node *x = rc_input(g, "x", RC_F32, 2, xs), *lab = rc_input(g, "lab", RC_I32, 2, ls);
    rc_node *len = rc_input(g, "len", RC_I32, 1, &n3), *flab = rc_input(g, "flab", RC_F32, 2, ls);
    rc_node *lab5 = rc_input(g, "lab5", RC_I32, 2, l2), *badmask = rc_input(g, "m", RC_F32, 2, ms);
    rc_node *ilog = rc_input(g, "ilog", RC_I32, 2, xs), *len5 = rc_input(g, "len5", RC_I32, 1, &n5);
    const struct { rc_node *x, *lab, *len, *mask; rc_ctc_opts o; const char *want; } C[] = {
        { x, flab, len, NULL, rc_ctc_defaults(), "labels [3,2] must be int32" },
        { ilog, lab, len, NULL, rc_ctc_defaults(), "logits [12,5] must be float32" },
        { x, lab5, len5, NULL, rc_ctc_defaults(), "logits [12,5] do not hold B = 5 samples per step" },
        { x, lab, lab, NULL, rc_ctc_defaults(), "label lengths [3,2] must be int32 [3]" },
        { x, lab, len, badmask, rc_ctc_defaults(), "mask [10,1] must be float32 [12, 1]" },
        { x, lab, len, NULL, { .blank = 5 }, "blank 5 is not a class of 5 (0..4)" },
        { x, lab, len, NULL, { .blank = -1 }, "blank -1 is not a class of 5" },
        { x, lab, len, NULL, { .reduction = (rc_ctc_reduction)7 }, "unknown reduction 7" },
    };
    for (size_t k = 0; k < sizeof C / sizeof C[0]; k++) {
        rc_graph_clear_error(g);
        rc_node *y = rc_ctc(g, C[k].x, C[k].lab, C[k].len, C[k].mask, &C[k].o);
        cr_expect_null(y, "case %zu built", k);
        cr_expect_eq(rc_graph_status(g), RC_ERR_SHAPE, "case %zu", k);
        cr_expect(strstr(rc_graph_error(g), C[k].want) != NULL, "want \"%s\" in: %s", C[k].want, rc_graph_error(g));
    }
    rc_graph_clear_error(g);
    cr_expect_null(rc_ctc(g, x, lab, NULL, NULL, NULL));
    cr_expect_eq(rc_graph_status(g), RC_ERR_ARG);
    rc_graph_clear_error(g);
    rc_node *ok = rc_ctc(g, x, lab, len, NULL, NULL);
    cr_expect_not_null(ok, "%s", rc_graph_error(g));
    cr_expect_eq(rc_node_size(ok), 1u);
    rc_ctc_opts none = { .reduction = RC_CTC_NONE };
    rc_node *per = rc_ctc(g, x, lab, len, NULL, &none);
    cr_expect_eq(rc_node_size(per), 3u);
    cr_expect_eq(rc_plan_ctc_infeasible(NULL, ok, NULL, 0), -1);
    rc_graph_free(g);
}

/* fm_log (fastmath.h) against libm. */
Test(ctc, fm_log)
{
    double worst = 0;
    for (int i = 0; i <= 200000; i++) {
        float x = (float)(1.0 + 2.0 * i / 200000.0);   /* the kernel's range [1, 3] */
        double d = fabs((double)fm_log(x) - log((double)x));
        worst = fmax(worst, d);
    }
    cr_expect(worst < 2.5e-7, "fm_log on [1, 3]: worst absolute error %.3g", worst);
    worst = 0;
    for (int e = -120; e <= 120; e++)
        for (int k = 0; k < 50; k++) {
            float x = ldexpf(1.0f + k / 50.0f, e);
            double want = log((double)x), d = fabs((double)fm_log(x) - want) / fmax(1.0, fabs(want));
            worst = fmax(worst, d);
        }
    cr_expect(worst < 2.5e-7, "fm_log over normal floats: worst relative error %.3g", worst);
}

/* The kernel's log-add-exp and its parts (logaddexp.h) against libm: exp relative,
 * log1p and log-add-exp absolute (what a log value carries into the sums), the ends. */
Test(ctc, logaddexp)
{
    double worst = 0;
    for (int i = 0; i <= 400000; i++) {
        float x = -87.3f + 175.3f * (float)i / 400000.0f;   /* normal results up to 88 */
        double want = exp((double)x);
        worst = fmax(worst, fabs((double)la_exp(x) - want) / want);
    }
    cr_expect(worst < 3e-7, "la_exp: worst relative error %.3g", worst);
    cr_expect(la_exp(-88.0f) == 0.0f && la_exp_lo(-INFINITY) == 0.0f && la_exp_lo(NAN) == 0.0f);
    cr_expect(isnan(la_exp_any(NAN)) && la_exp_any(-INFINITY) == 0.0f && la_exp_any(0.0f) == 1.0f);
    worst = 0;
    for (int i = 0; i <= 400000; i++) {
        float u = (float)i / 400000.0f;
        worst = fmax(worst, fabs((double)la_log1p01(u) - log1p((double)u)));
    }
    cr_expect(worst < 2.5e-7, "la_log1p01 on [0, 1]: worst absolute error %.3g", worst);
    worst = 0;
    const double base[3] = { 0.0, -312.25, 4096.5 };
    for (int k = 0; k < 3; k++)
        for (int i = 0; i <= 400000; i++) {
            double a = base[k], b = a - 100.0 * i / 400000.0, want = a + log1p(exp(b - a));
            worst = fmax(worst, fabs(logaddexp(a, b) - want));
            cr_assert(logaddexp(a, b) == logaddexp(b, a), "logaddexp(%.17g, %.17g) is not symmetric", a, b);
        }
    cr_expect(worst < 2.5e-7, "logaddexp: worst absolute error %.3g", worst);
    cr_expect(logaddexp(-INFINITY, -INFINITY) == -INFINITY);
    cr_expect(logaddexp(-3.5, -INFINITY) == -3.5 && logaddexp(-INFINITY, 7.25) == 7.25);
    cr_expect(logaddexp(-2000.0, -1000.0) == -1000.0, "a term e^-1000 below the other adds nothing");
}
