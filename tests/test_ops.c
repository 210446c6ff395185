/* Tests of the primitive ops of recur.h.
 *
 * For every op: forward values against references computed here with plain loops
 * or closed forms in double precision (including numerically hard inputs), and
 * gradients by rc_gradcheck on random inputs of two shapes. Also: a deliberately
 * wrong backward is caught by the gradient check, dropout's mask and its backward,
 * run-time index errors, and FLOP counts. Suite ops_list: the op list itself
 * (ops/op_list.def, ops/elementwise_ops.def): complete table rows, a builder per
 * elementwise op, and derivatives that read only what their entry declares. softsign
 * is the op added through the list alone (values, gradients with and without fusion).
 *
 * Checks use cr_expect (non-fatal) so that every test frees its graph and plan
 * even when a check fails (the suite runs under AddressSanitizer's leak checker).
 * Set RC_TEST_VERBOSE=1 to print every gradient-check error. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"
#include "elementwise.h"   /* the op list's formulas: ops_list/reads_declared */
#include "fused.h"         /* fused_op_ok: ops_list/table_rows */
#include "op.h"

/* Central-difference step and the largest accepted gradient-check error: a
 * backward off by 1% gives an error near 1e-2, five times this tolerance. */
#define GC_EPS 1e-2f
#define GC_TOL 2e-3
/* Relative tolerance of forward values: |got - want| <= RTOL * (1 + |want|). */
#define RTOL 1e-5

/* ---- a small deterministic PRNG (splitmix64) ---------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_u64(rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static double rng_unif(rng *r, double lo, double hi)
{
    return lo + (hi - lo) * (double)(rng_u64(r) >> 11) * 0x1.0p-53;
}

static int rng_below(rng *r, int n)
{
    return (int)(rng_u64(r) % (uint64_t)n);
}

/* A sampling range; values with |x| < minabs are drawn again (kinks at 0). */
typedef struct range {
    double lo, hi, minabs;
} range;

static const range R_WIDE = {-3.0, 3.0, 0.0};
static const range R_UNIT = {-1.0, 1.0, 0.0};
static const range R_KINK = {-2.0, 2.0, 0.05};   /* relu, abs */
static const range R_POS = {0.5, 2.0, 0.0};      /* sqrt, log, a divisor's magnitude */
static const range R_WEIGHT = {-1.0, 1.0, 0.1};  /* loss weights */

static float rng_sample(rng *r, range rg)
{
    for (;;) {
        double x = rng_unif(r, rg.lo, rg.hi);
        if (fabs(x) >= rg.minabs) return (float)x;
    }
}

static void rng_fill(rng *r, float *x, size_t n, range rg)
{
    for (size_t i = 0; i < n; i++) x[i] = rng_sample(r, rg);
}

/* ---- shapes ---------------------------------------------------------------------- */

typedef struct shape {
    int ndim;
    int d[RC_MAX_DIMS];
} shape;

/* The two shapes every op is checked on: rows of a matrix and of a 3-D tensor. */
static const shape SHAPES[2] = {{2, {3, 5, 0, 0}}, {3, {2, 3, 4, 0}}};

static size_t shape_size(shape s)
{
    size_t n = 1;
    for (int i = 0; i < s.ndim; i++) n *= (size_t)s.d[i];
    return n;
}

static int shape_cols(shape s)
{
    return s.d[s.ndim - 1];
}

static shape shape1(int n)
{
    shape s = {1, {n, 0, 0, 0}};
    return s;
}

static shape shape2(int a, int b)
{
    shape s = {2, {a, b, 0, 0}};
    return s;
}

static shape shape3(int a, int b, int c)
{
    shape s = {3, {a, b, c, 0}};
    return s;
}

/* s with its last axis set to n. */
static shape shape_last(shape s, int n)
{
    s.d[s.ndim - 1] = n;
    return s;
}

/* s without its last axis. */
static shape shape_drop_last(shape s)
{
    s.d[s.ndim - 1] = 0;
    s.ndim--;
    return s;
}

static shape node_shape(const rc_node *n)
{
    shape s = {0, {0, 0, 0, 0}};
    s.ndim = rc_node_ndim(n);
    for (int i = 0; i < s.ndim && i < RC_MAX_DIMS; i++) s.d[i] = rc_node_dim(n, i);
    return s;
}

static void shape_str(shape s, char *buf, size_t len)
{
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < s.ndim && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, i ? ",%d" : "%d", s.d[i]);
    if (k < len) snprintf(buf + k, len - k, "]");
}

static void expect_shape(const char *what, const rc_node *n, shape want)
{
    shape got = node_shape(n);
    int same = got.ndim == want.ndim;
    for (int i = 0; same && i < want.ndim; i++) same = got.d[i] == want.d[i];
    if (!same) {
        char a[64], b[64];
        shape_str(got, a, sizeof a);
        shape_str(want, b, sizeof b);
        cr_expect_fail("%s: output shape %s, expected %s", what, a, b);
    }
}

/* ---- a test context: one graph, its fed inputs, one plan --------------------------- */

#define MAX_FEEDS 8
#define MAX_OWNED 16

typedef struct feed {
    rc_node *node;
    void *data;
    size_t n;
} feed;

typedef struct tctx {
    const char *what;     /* names the case in messages */
    rc_graph *g;
    rng r;
    int nfeed;
    feed feeds[MAX_FEEDS];
    int nowned;
    void *owned[MAX_OWNED];
    rc_plan *p;
    unsigned flags;       /* rc_plan_new_ex flags of its plans (0: every pass) */
} tctx;

static void ctx_init(tctx *c, const char *what, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->what = what;
    c->r.s = seed;
    c->g = rc_graph_new();
    cr_assert_not_null(c->g, "rc_graph_new failed");
}

static void ctx_free_plan(tctx *c)
{
    if (c->p) rc_plan_free(c->p);
    c->p = NULL;
}

static void ctx_free(tctx *c)
{
    ctx_free_plan(c);
    rc_graph_free(c->g);
    for (int i = 0; i < c->nfeed; i++) free(c->feeds[i].data);
    for (int i = 0; i < c->nowned; i++) free(c->owned[i]);
    memset(c, 0, sizeof *c);
}

/* A buffer freed with the context. */
static void *ctx_alloc(tctx *c, size_t bytes)
{
    cr_assert(c->nowned < MAX_OWNED, "too many buffers");
    void *p = calloc(1, bytes ? bytes : 1);
    cr_assert_not_null(p);
    c->owned[c->nowned++] = p;
    return p;
}

static float *ctx_floats(tctx *c, size_t n)
{
    return ctx_alloc(c, n * sizeof(float));
}

/* A float input fed with vals (copied), or with random values in rg when vals is
 * NULL. *data (when given) receives the values it is fed with. */
static rc_node *ctx_input(tctx *c, const char *name, shape s, const float *vals, range rg,
                          float **data)
{
    cr_assert(c->nfeed < MAX_FEEDS, "too many inputs");
    rc_node *n = rc_input(c->g, name, RC_F32, s.ndim, s.d);
    cr_expect_not_null(n, "%s: rc_input(%s): %s", c->what, name, rc_graph_error(c->g));
    size_t sz = shape_size(s);
    float *d = malloc(sz * sizeof(float));
    cr_assert_not_null(d);
    if (vals) memcpy(d, vals, sz * sizeof(float));
    else rng_fill(&c->r, d, sz, rg);
    c->feeds[c->nfeed++] = (feed){n, d, sz};
    if (data) *data = d;
    return n;
}

/* An int32 input fed with vals (copied). */
static rc_node *ctx_input_i32(tctx *c, const char *name, shape s, const int32_t *vals)
{
    cr_assert(c->nfeed < MAX_FEEDS, "too many inputs");
    rc_node *n = rc_input(c->g, name, RC_I32, s.ndim, s.d);
    cr_expect_not_null(n, "%s: rc_input(%s): %s", c->what, name, rc_graph_error(c->g));
    size_t sz = shape_size(s);
    int32_t *d = malloc(sz * sizeof(int32_t));
    cr_assert_not_null(d);
    memcpy(d, vals, sz * sizeof(int32_t));
    c->feeds[c->nfeed++] = (feed){n, d, sz};
    return n;
}

/* A float input whose gradient is asked for. */
static rc_node *ctx_input_grad(tctx *c, const char *name, shape s, const float *vals, range rg,
                               float **data)
{
    rc_node *n = ctx_input(c, name, s, vals, rg, data);
    if (n) cr_expect_eq(rc_requires_grad(n, 1), RC_OK, "%s: rc_requires_grad", c->what);
    return n;
}

/* A parameter holding vals, or random values in rg when vals is NULL. */
static rc_node *ctx_param(tctx *c, const char *name, shape s, const float *vals, range rg,
                          float **data)
{
    rc_node *n = rc_param(c->g, name, s.ndim, s.d);
    cr_expect_not_null(n, "%s: rc_param(%s): %s", c->what, name, rc_graph_error(c->g));
    if (!n) return NULL;
    float *d = rc_param_data(n);
    cr_expect_not_null(d, "%s: rc_param_data(%s)", c->what, name);
    if (!d) return n;
    size_t sz = shape_size(s);
    if (vals) memcpy(d, vals, sz * sizeof(float));
    else rng_fill(&c->r, d, sz, rg);
    if (data) *data = d;
    return n;
}

/* sum(out * w) for a random constant w of out's shape (so that errors of either
 * sign cannot cancel). *wdata (when given) receives a copy of w. */
static rc_node *ctx_weighted_sum(tctx *c, rc_node *out, const float **wdata)
{
    if (!out) return NULL;
    shape s = node_shape(out);
    size_t sz = shape_size(s);
    float *w = ctx_floats(c, sz);
    rng_fill(&c->r, w, sz, R_WEIGHT);
    rc_node *k = rc_const(c->g, s.ndim, s.d, w);
    rc_node *loss = rc_sum(c->g, rc_mul(c->g, out, k));
    cr_expect_not_null(loss, "%s: building the loss: %s", c->what, rc_graph_error(c->g));
    if (wdata) *wdata = w;
    return loss;
}

/* Builds the plan of root (freeing a previous one) and feeds every input. */
static int ctx_plan(tctx *c, rc_node *root)
{
    ctx_free_plan(c);
    if (!root) {
        cr_expect_fail("%s: graph error: %s", c->what, rc_graph_error(c->g));
        return 0;
    }
    c->p = rc_plan_new_ex(c->g, 1, &root, c->flags);
    if (!c->p) {
        cr_expect_fail("%s: rc_plan_new: %s", c->what, rc_graph_error(c->g));
        return 0;
    }
    for (int i = 0; i < c->nfeed; i++) {
        rc_status st = rc_plan_feed(c->p, c->feeds[i].node, c->feeds[i].data, c->feeds[i].n);
        if (st != RC_OK) {
            cr_expect_fail("%s: rc_plan_feed(%s): %s: %s", c->what,
                           rc_node_name(c->feeds[i].node), rc_status_name(st),
                           rc_plan_error(c->p));
            return 0;
        }
    }
    return 1;
}

/* Plans root and runs it forward. */
static int ctx_run(tctx *c, rc_node *root)
{
    if (!ctx_plan(c, root)) return 0;
    rc_status st = rc_plan_forward(c->p);
    if (st != RC_OK) {
        cr_expect_fail("%s: rc_plan_forward: %s: %s", c->what, rc_status_name(st),
                       rc_plan_error(c->p));
        return 0;
    }
    return 1;
}

/* Plans loss, runs it forward and backward. */
static int ctx_run_backward(tctx *c, rc_node *loss)
{
    if (!ctx_run(c, loss)) return 0;
    rc_status st = rc_plan_backward(c->p, loss);
    if (st != RC_OK) {
        cr_expect_fail("%s: rc_plan_backward: %s: %s", c->what, rc_status_name(st),
                       rc_plan_error(c->p));
        return 0;
    }
    return 1;
}

/* rc_gradcheck of loss in a fresh plan; the error, or INFINITY on failure. */
static double ctx_gradcheck_loss(tctx *c, rc_node *loss, int n, rc_node *const *wrt, float eps)
{
    double err = INFINITY;
    if (!ctx_plan(c, loss)) return err;
    rc_status st = rc_gradcheck(c->p, loss, n, wrt, eps, &err);
    if (st != RC_OK) {
        cr_expect_fail("%s: rc_gradcheck: %s: %s", c->what, rc_status_name(st),
                       rc_plan_error(c->p));
        err = INFINITY;
    }
    ctx_free_plan(c);
    if (getenv("RC_TEST_VERBOSE")) fprintf(stderr, "gradcheck %-28s err %.3g\n", c->what, err);
    return err;
}

/* Gradient check of the weighted sum of out with respect to the n nodes of wrt. */
static void ctx_expect_grad(tctx *c, rc_node *out, int n, rc_node *const *wrt, float eps)
{
    for (int i = 0; i < n; i++)
        if (!wrt[i]) {
            cr_expect_fail("%s: an operand is NULL: %s", c->what, rc_graph_error(c->g));
            return;
        }
    rc_node *loss = ctx_weighted_sum(c, out, NULL);
    if (!loss) return;
    double err = ctx_gradcheck_loss(c, loss, n, wrt, eps);
    cr_expect(err < GC_TOL, "%s: gradient check error %.3g (tolerance %.3g)", c->what, err,
              GC_TOL);
}

/* Compares n values with a double reference; one message for the worst mismatch. */
static int expect_close(const char *what, const float *got, const double *want, size_t n,
                        double rtol)
{
    if (!got) {
        cr_expect_fail("%s: no value", what);
        return 0;
    }
    size_t bad = n;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        double lim = rtol * (1.0 + fabs(want[i]));
        if (isfinite(got[i]) && d <= lim) continue;
        double q = isfinite(got[i]) && lim > 0 ? d / lim : INFINITY;
        if (bad == n || q > worst) {
            bad = i;
            worst = q;
        }
    }
    if (bad != n) {
        cr_expect_fail("%s: element %zu of %zu is %.9g, expected %.9g", what, bad, n,
                       (double)got[bad], want[bad]);
        return 0;
    }
    return 1;
}

static int expect_all_finite(const char *what, const float *v, size_t n)
{
    if (!v) {
        cr_expect_fail("%s: no value", what);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            cr_expect_fail("%s: element %zu is not finite (%g)", what, i, (double)v[i]);
            return 0;
        }
    return 1;
}

static double *dalloc(size_t n)
{
    double *d = calloc(n ? n : 1, sizeof(double));
    cr_assert_not_null(d);
    return d;
}

static int verbose(void)
{
    return getenv("RC_TEST_VERBOSE") != NULL;
}

/* ---- references ---------------------------------------------------------------- */

static double ref_sigmoid(double x)
{
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}
static double ref_tanh(double x) { return tanh(x); }
static double ref_relu(double x) { return x > 0 ? x : 0.0; }
static double ref_softplus(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}
static double ref_abs(double x) { return fabs(x); }
static double ref_sqrt(double x) { return sqrt(x); }
static double ref_exp(double x) { return exp(x); }
static double ref_log(double x) { return log(x); }
static double ref_one_minus(double x) { return 1.0 - x; }
static double ref_softsign(double x) { return x / (1.0 + fabs(x)); }
static double ref_scale(double x) { return -0.7 * x; }

static double ref_add(double a, double b) { return a + b; }
static double ref_sub(double a, double b) { return a - b; }
static double ref_mul(double a, double b) { return a * b; }
static double ref_div(double a, double b) { return a / b; }
static double ref_min(double a, double b) { return a < b ? a : b; }
static double ref_max(double a, double b) { return a > b ? a : b; }

static void ref_row_sum(const double *x, int n, double *out)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    out[0] = s;
}

static void ref_row_mean(const double *x, int n, double *out)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    out[0] = s / n;
}

static void ref_row_var(const double *x, int n, double *out)
{
    double m;
    ref_row_mean(x, n, &m);
    double s = 0;
    for (int i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    out[0] = s / n;
}

/* log(sum(exp(x))) by the max shift. */
static double ref_lse(const double *x, int n)
{
    double m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    double s = 0;
    for (int i = 0; i < n; i++) s += exp(x[i] - m);
    return m + log(s);
}

static void ref_softmax(const double *x, int n, double *out)
{
    double l = ref_lse(x, n);
    for (int i = 0; i < n; i++) out[i] = exp(x[i] - l);
}

static void ref_log_softmax(const double *x, int n, double *out)
{
    double l = ref_lse(x, n);
    for (int i = 0; i < n; i++) out[i] = x[i] - l;
}

/* ---- generic drivers ------------------------------------------------------------- */

typedef rc_node *(*unary_fn)(rc_graph *, rc_node *);
typedef rc_node *(*binary_fn)(rc_graph *, rc_node *, rc_node *);
typedef double (*ref1_fn)(double);
typedef double (*ref2_fn)(double, double);
typedef void (*rowref_fn)(const double *x, int n, double *out);

static rc_node *op_scale(rc_graph *g, rc_node *a) { return rc_scale(g, a, -0.7f); }

/* Forward of an elementwise unary op on both shapes and on the hard values. */
static void unary_forward(const char *what, unary_fn f, ref1_fn ref, range rg, const float *hard,
                          int nhard)
{
    for (int k = 0; k < 3; k++) {
        if (k == 2 && nhard == 0) break;
        tctx c;
        ctx_init(&c, what, 1000u + (unsigned)k);
        shape s = k < 2 ? SHAPES[k] : shape1(nhard);
        float *x = NULL;
        rc_node *a = ctx_input(&c, "a", s, k < 2 ? NULL : hard, rg, &x);
        rc_node *y = f(c.g, a);
        if (ctx_run(&c, y)) {
            expect_shape(what, y, s);
            size_t n = shape_size(s);
            double *want = dalloc(n);
            for (size_t i = 0; i < n; i++) want[i] = ref(x[i]);
            expect_close(what, rc_plan_value(c.p, y), want, n, RTOL);
            free(want);
        }
        ctx_free(&c);
    }
}

/* Gradient check of a unary op on both shapes: a parameter, then an input. */
static void unary_grad(const char *what, unary_fn f, range rg, float eps)
{
    for (int k = 0; k < 2; k++) {
        tctx c;
        ctx_init(&c, what, 2000u + (unsigned)k);
        rc_node *a = k == 0 ? ctx_param(&c, "a", SHAPES[k], NULL, rg, NULL)
                            : ctx_input_grad(&c, "a", SHAPES[k], NULL, rg, NULL);
        rc_node *y = f(c.g, a);
        ctx_expect_grad(&c, y, 1, &a, eps);
        ctx_free(&c);
    }
}

/* Operands of a binary op: a of shape s, b of s or (bcast) of its last dim; with
 * |a - b| >= gap elementwise when not broadcasting; b's magnitude from rb. */
static void binary_data(rng *r, shape s, int bcast, range ra, range rb, double gap, float *a,
                        float *b)
{
    size_t n = shape_size(s);
    size_t nb = bcast ? (size_t)shape_cols(s) : n;
    rng_fill(r, a, n, ra);
    for (size_t i = 0; i < nb; i++) {
        do b[i] = rng_sample(r, rb);
        while (!bcast && fabs((double)a[i] - b[i]) < gap);
    }
}

static void binary_forward(const char *what, binary_fn f, ref2_fn ref, int bcast, range ra,
                           range rb, double gap)
{
    for (int k = 0; k < 2; k++) {
        tctx c;
        ctx_init(&c, what, 3000u + (unsigned)k);
        shape s = SHAPES[k];
        shape sb = bcast ? shape1(shape_cols(s)) : s;
        size_t n = shape_size(s);
        float *a = ctx_floats(&c, n), *b = ctx_floats(&c, n);
        binary_data(&c.r, s, bcast, ra, rb, gap, a, b);
        rc_node *na = ctx_input(&c, "a", s, a, ra, NULL);
        rc_node *nb = ctx_input(&c, "b", sb, b, rb, NULL);
        rc_node *y = f(c.g, na, nb);
        if (ctx_run(&c, y)) {
            expect_shape(what, y, s);
            double *want = dalloc(n);
            int cols = shape_cols(s);
            for (size_t i = 0; i < n; i++) want[i] = ref(a[i], b[bcast ? i % (size_t)cols : i]);
            expect_close(what, rc_plan_value(c.p, y), want, n, RTOL);
            free(want);
        }
        ctx_free(&c);
    }
}

/* Gradient check with respect to both operands: a is a parameter; b is a
 * parameter on the first shape and an input marked rc_requires_grad on the second. */
static void binary_grad(const char *what, binary_fn f, int bcast, range ra, range rb, double gap,
                        float eps)
{
    for (int k = 0; k < 2; k++) {
        tctx c;
        ctx_init(&c, what, 4000u + (unsigned)k);
        shape s = SHAPES[k];
        shape sb = bcast ? shape1(shape_cols(s)) : s;
        size_t n = shape_size(s);
        float *a = ctx_floats(&c, n), *b = ctx_floats(&c, n);
        binary_data(&c.r, s, bcast, ra, rb, gap, a, b);
        rc_node *wrt[2];
        wrt[0] = ctx_param(&c, "a", s, a, ra, NULL);
        wrt[1] = k == 0 ? ctx_param(&c, "b", sb, b, rb, NULL)
                        : ctx_input_grad(&c, "b", sb, b, rb, NULL);
        rc_node *y = f(c.g, wrt[0], wrt[1]);
        ctx_expect_grad(&c, y, 2, wrt, eps);
        ctx_free(&c);
    }
}

/* A row-wise op: out_per_row is 1 (reductions to [.., 1]) or 0 (same shape). */
static void row_check_one(const char *what, unary_fn f, rowref_fn ref, int out_per_row, shape s,
                          const float *vals, range rg, uint64_t seed)
{
    tctx c;
    ctx_init(&c, what, seed);
    float *x = NULL;
    rc_node *a = ctx_input(&c, "a", s, vals, rg, &x);
    rc_node *y = f(c.g, a);
    if (ctx_run(&c, y)) {
        int cols = shape_cols(s);
        size_t rows = shape_size(s) / (size_t)cols;
        int ocols = out_per_row ? 1 : cols;
        expect_shape(what, y, shape_last(s, ocols));
        double *xd = dalloc((size_t)cols), *want = dalloc(rows * (size_t)ocols);
        for (size_t r = 0; r < rows; r++) {
            for (int j = 0; j < cols; j++) xd[j] = x[r * (size_t)cols + (size_t)j];
            ref(xd, cols, want + r * (size_t)ocols);
        }
        const float *got = rc_plan_value(c.p, y);
        expect_all_finite(what, got, rows * (size_t)ocols);
        expect_close(what, got, want, rows * (size_t)ocols, RTOL);
        free(xd);
        free(want);
    }
    ctx_free(&c);
}

static void row_forward(const char *what, unary_fn f, rowref_fn ref, int out_per_row, range rg)
{
    row_check_one(what, f, ref, out_per_row, SHAPES[0], NULL, rg, 5000);
    row_check_one(what, f, ref, out_per_row, SHAPES[1], NULL, rg, 5001);
    row_check_one(what, f, ref, out_per_row, shape1(6), NULL, rg, 5002);
    row_check_one(what, f, ref, out_per_row, shape2(4, 1), NULL, rg, 5003);
}

/* Logits around +-1000: softmax and friends must not overflow. */
static const float HARD_LOGITS[12] = {
    1000.f, 999.f, -1000.f, 0.f,
    -1000.f, -1000.f, -999.f, -1000.f,
    1000.f, -1000.f, 1000.f, -1000.f,
};

/* ---- forward: elementwise unary ops ------------------------------------------------ */

Test(ops_fwd, sigmoid)
{
    static const float hard[] = {100.f, -100.f, 30.f, -30.f, 0.f, 1e-3f, -88.f, 88.f};
    unary_forward("sigmoid", rc_sigmoid, ref_sigmoid, R_WIDE, hard, 8);
}

Test(ops_fwd, tanh)
{
    static const float hard[] = {20.f, -20.f, 100.f, -100.f, 0.f, 1e-4f};
    unary_forward("tanh", rc_tanh, ref_tanh, R_WIDE, hard, 6);
}

Test(ops_fwd, relu)
{
    static const float hard[] = {0.f, -1e-6f, 1e-6f, 1e6f, -1e6f};
    unary_forward("relu", rc_relu, ref_relu, R_WIDE, hard, 5);
}

Test(ops_fwd, softplus)
{
    static const float hard[] = {100.f, -100.f, 20.f, -20.f, 0.f, 1e-3f, 1000.f, -1000.f};
    unary_forward("softplus", rc_softplus, ref_softplus, R_WIDE, hard, 8);
}

Test(ops_fwd, abs)
{
    static const float hard[] = {0.f, -1e6f, 1e6f, -1e-6f};
    unary_forward("abs", rc_abs, ref_abs, R_WIDE, hard, 4);
}

Test(ops_fwd, sqrt)
{
    static const float hard[] = {0.f, 1e-6f, 1e4f, 4.f};
    unary_forward("sqrt", rc_sqrt, ref_sqrt, R_POS, hard, 4);
}

Test(ops_fwd, exp)
{
    static const float hard[] = {0.f, -100.f, 20.f, -20.f};
    unary_forward("exp", rc_exp, ref_exp, R_WIDE, hard, 4);
}

Test(ops_fwd, log)
{
    static const float hard[] = {1.f, 1e-6f, 1e6f, 2.7182817f};
    unary_forward("log", rc_log, ref_log, R_POS, hard, 4);
}

Test(ops_fwd, one_minus)
{
    static const float hard[] = {0.f, 1.f, -1e3f};
    unary_forward("one_minus", rc_one_minus, ref_one_minus, R_WIDE, hard, 3);
}

Test(ops_fwd, scale)
{
    unary_forward("scale", op_scale, ref_scale, R_WIDE, NULL, 0);
}

/* ---- forward: the ends of exp, sigmoid and tanh (IEEE behaviour) ------------------- */

typedef rc_node *(*unary_builder)(rc_graph *, rc_node *);
static rc_node *exp_then_scale(rc_graph *g, rc_node *a) { return rc_scale(g, rc_exp(g, a), 1.0f); }

/* f over 64 copies of vals (so vectorised loops see them, not only their
 * remainders), with and without the fusion pass; got[i] for vals[i], both ways. */
static void ends_run(const char *what, unary_builder f, const float *vals, int nv, float *got, float *got_fused)
{
    enum { REP = 64 };
    int n = nv * REP;
    float *x = malloc((size_t)n * sizeof *x);
    cr_assert(x);
    for (int i = 0; i < n; i++) x[i] = vals[i % nv];
    for (int fused = 0; fused < 2; fused++) {
        float *out = fused ? got_fused : got;
        for (int i = 0; i < nv; i++) out[i] = -12345.f;
        rc_graph *g = rc_graph_new();
        rc_node *a = rc_input(g, "x", RC_F32, 1, &n);
        rc_node *y = f(g, a);
        rc_plan *p = rc_plan_new_ex(g, 1, &y, RC_PLAN_NO_GRAD | (fused ? 0u : RC_PLAN_NO_EW_FUSION));
        cr_expect(p, "%s: %s", what, rc_graph_error(g));
        if (p && rc_plan_feed(p, a, x, (size_t)n) == RC_OK && rc_plan_forward(p) == RC_OK) {
            const float *v = rc_plan_value(p, y);
            for (int i = 0; i < n; i++) {
                float o = v[i], w = v[i % nv];
                cr_expect(memcmp(&o, &w, sizeof o) == 0, "%s: element %d differs from its first copy", what, i);
            }
            for (int i = 0; i < nv; i++) out[i] = v[i];
        } else {
            cr_expect(0, "%s: %s", what, p ? rc_plan_error(p) : "no plan");
        }
        rc_plan_free(p);
        rc_graph_free(g);
    }
    free(x);
}

/* got is want: both NaN, both the same infinity, or within rel of it (abs for 0). */
static void expect_end(const char *what, float x, float got, double want, double rel)
{
    if (isnan(want)) {
        cr_expect(isnan(got), "%s(%g) = %g, expected NaN", what, (double)x, (double)got);
    } else if (isinf(want)) {
        cr_expect(isinf(got) && (got > 0) == (want > 0), "%s(%g) = %g, expected %g", what, (double)x,
                  (double)got, want);
    } else {
        cr_expect(!isnan(got) && fabs((double)got - want) <= rel * fabs(want) + 1e-45,
                  "%s(%g) = %.9g, expected %.9g", what, (double)x, (double)got, want);
    }
}

Test(ops_fwd, exp_sigmoid_tanh_ieee_ends)
{
    /* exp: overflow to inf above ln(FLT_MAX) ~ 88.7228, subnormal results near
     * -87.5 and -100, NaN through */
    static const float ex[] = {100.f, 88.7f, 89.f, 88.72f, -100.f, -87.5f, -87.f, NAN, INFINITY,
                               -INFINITY, -104.f, 0.f, 1.f};
    enum { NE = sizeof ex / sizeof *ex };
    float got[NE], gotf[NE];
    ends_run("exp", rc_exp, ex, NE, got, gotf);
    for (int i = 0; i < NE; i++) {
        double w = exp((double)ex[i]);
        /* subnormal results carry fewer bits: 1.5 units of 2^-149 there */
        double rel = fabs(w) < 1.2e-38 && w > 0 ? 1.5 * 0x1p-149 / w : 1e-6;
        if (w > 3.4028234663852886e38) w = INFINITY;
        expect_end("exp", ex[i], got[i], w, rel);
    }
    ends_run("exp (then scale, fused)", exp_then_scale, ex, NE, got, gotf);
    for (int i = 0; i < NE; i++) {
        double w = exp((double)ex[i]);
        double rel = fabs(w) < 1.2e-38 && w > 0 ? 1.5 * 0x1p-149 / w : 1e-6;
        if (w > 3.4028234663852886e38) w = INFINITY;
        expect_end("exp fused", ex[i], gotf[i], w, rel);
    }
    static const float sx[] = {100.f, -100.f, 89.f, -89.f, 1000.f, -1000.f, NAN, 0.f};
    enum { NS = sizeof sx / sizeof *sx };
    float sg[NS], sgf[NS], th[NS], thf[NS];
    ends_run("sigmoid", rc_sigmoid, sx, NS, sg, sgf);
    ends_run("tanh", rc_tanh, sx, NS, th, thf);
    for (int i = 0; i < NS; i++) {
        double x = sx[i];
        double ws = isnan(x) ? NAN : 1.0 / (1.0 + exp(-x));
        double wt = tanh(x);
        /* sigmoid(-100) is 3.7e-44: 0 or that subnormal, never NaN */
        double srel = x <= -89 ? 1.0 : 1e-6;
        expect_end("sigmoid", sx[i], sg[i], ws, srel);
        expect_end("sigmoid fused", sx[i], sgf[i], ws, srel);
        expect_end("tanh", sx[i], th[i], wt, 1e-6);
        expect_end("tanh fused", sx[i], thf[i], wt, 1e-6);
    }
    cr_expect(sg[0] == 1.0f && th[0] == 1.0f && th[1] == -1.0f, "sigmoid(100) %g tanh(+-100) %g %g",
              (double)sg[0], (double)th[0], (double)th[1]);
}

/* ---- forward: elementwise binary ops ------------------------------------------------- */

Test(ops_fwd, add)
{
    binary_forward("add", rc_add, ref_add, 0, R_WIDE, R_WIDE, 0);
}

Test(ops_fwd, add_row_broadcast)
{
    binary_forward("add_bcast", rc_add, ref_add, 1, R_WIDE, R_WIDE, 0);
}

Test(ops_fwd, sub)
{
    binary_forward("sub", rc_sub, ref_sub, 0, R_WIDE, R_WIDE, 0);
}

Test(ops_fwd, mul)
{
    binary_forward("mul", rc_mul, ref_mul, 0, R_WIDE, R_WIDE, 0);
}

Test(ops_fwd, mul_row_broadcast)
{
    binary_forward("mul_bcast", rc_mul, ref_mul, 1, R_WIDE, R_WIDE, 0);
}

Test(ops_fwd, div)
{
    range rb = {-2.0, 2.0, 0.5};
    binary_forward("div", rc_div, ref_div, 0, R_WIDE, rb, 0);
}

Test(ops_fwd, minimum)
{
    binary_forward("minimum", rc_minimum, ref_min, 0, R_WIDE, R_WIDE, 0);
}

Test(ops_fwd, maximum)
{
    binary_forward("maximum", rc_maximum, ref_max, 0, R_WIDE, R_WIDE, 0);
}

/* ---- forward: matmul -------------------------------------------------------------------- */

static const int MM_SIZES[2][3] = {{3, 4, 5}, {2, 7, 3}};  /* M, K, N */

/* op(a) @ op(b) for the stored a ([M,K], or [K,M] when ta) and b ([K,N] or [N,K]). */
static void ref_matmul(const float *a, const float *b, int M, int K, int N, int ta, int tb,
                       double *out)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) {
                double av = ta ? a[k * M + i] : a[i * K + k];
                double bv = tb ? b[j * K + k] : b[k * N + j];
                s += av * bv;
            }
            out[i * N + j] = s;
        }
}

static void matmul_forward_case(int M, int K, int N, int ta, int tb, int plain)
{
    char what[64];
    snprintf(what, sizeof what, "matmul%s ta=%d tb=%d [%d,%d,%d]", plain ? "(plain)" : "_t", ta,
             tb, M, K, N);
    tctx c;
    ctx_init(&c, what, 6000u + (unsigned)(M * 100 + ta * 2 + tb));
    float *a = NULL, *b = NULL;
    rc_node *na = ctx_input(&c, "a", ta ? shape2(K, M) : shape2(M, K), NULL, R_WIDE, &a);
    rc_node *nb = ctx_input(&c, "b", tb ? shape2(N, K) : shape2(K, N), NULL, R_WIDE, &b);
    rc_node *y = plain ? rc_matmul(c.g, na, nb) : rc_matmul_t(c.g, na, nb, ta, tb);
    if (ctx_run(&c, y)) {
        expect_shape(what, y, shape2(M, N));
        double *want = dalloc((size_t)(M * N));
        ref_matmul(a, b, M, K, N, ta, tb, want);
        expect_close(what, rc_plan_value(c.p, y), want, (size_t)(M * N), RTOL);
        free(want);
    }
    ctx_free(&c);
}

Test(ops_fwd, matmul)
{
    for (int s = 0; s < 2; s++) {
        const int *d = MM_SIZES[s];
        matmul_forward_case(d[0], d[1], d[2], 0, 0, 1);
        for (int t = 0; t < 4; t++) matmul_forward_case(d[0], d[1], d[2], t >> 1, t & 1, 0);
    }
}

/* ---- forward: row-wise ops ----------------------------------------------------------------- */

Test(ops_fwd, row_sum)
{
    row_forward("row_sum", rc_row_sum, ref_row_sum, 1, R_WIDE);
}

Test(ops_fwd, row_mean)
{
    row_forward("row_mean", rc_row_mean, ref_row_mean, 1, R_WIDE);
}

Test(ops_fwd, row_var)
{
    row_forward("row_var", rc_row_var, ref_row_var, 1, R_WIDE);
    /* Rows with a large common offset: a one-pass E[x^2]-E[x]^2 loses them. */
    static const float off[8] = {1000.f, 1001.f, 1002.f, 1003.f, -500.f, -500.5f, -501.f, -499.f};
    row_check_one("row_var offset", rc_row_var, ref_row_var, 1, shape2(2, 4), off, R_WIDE, 5010);
}

Test(ops_fwd, softmax)
{
    row_forward("softmax", rc_softmax, ref_softmax, 0, R_WIDE);
    row_check_one("softmax +-1000", rc_softmax, ref_softmax, 0, shape2(3, 4), HARD_LOGITS, R_WIDE,
                  5011);
}

Test(ops_fwd, log_softmax)
{
    row_forward("log_softmax", rc_log_softmax, ref_log_softmax, 0, R_WIDE);
    row_check_one("log_softmax +-1000", rc_log_softmax, ref_log_softmax, 0, shape2(3, 4),
                  HARD_LOGITS, R_WIDE, 5012);
}

/* Gradients at +-1000 against the closed forms: for L = sum(w * y),
 * softmax: dL/dx = s * (w - sum(w*s)); log_softmax: dL/dx = w - s * sum(w). */
static void softmax_hard_grad(int log_form)
{
    const char *what = log_form ? "log_softmax grad +-1000" : "softmax grad +-1000";
    tctx c;
    ctx_init(&c, what, 5020u + (unsigned)log_form);
    shape s = shape2(3, 4);
    rc_node *x = ctx_input_grad(&c, "x", s, HARD_LOGITS, R_WIDE, NULL);
    rc_node *y = log_form ? rc_log_softmax(c.g, x) : rc_softmax(c.g, x);
    const float *w = NULL;
    rc_node *loss = ctx_weighted_sum(&c, y, &w);
    if (ctx_run_backward(&c, loss)) {
        const float *gx = rc_plan_grad(c.p, x);
        double want[12], sm[4], xd[4];
        for (int r = 0; r < 3; r++) {
            for (int j = 0; j < 4; j++) xd[j] = HARD_LOGITS[r * 4 + j];
            ref_softmax(xd, 4, sm);
            double ws = 0, wsum = 0;
            for (int j = 0; j < 4; j++) {
                ws += w[r * 4 + j] * sm[j];
                wsum += w[r * 4 + j];
            }
            for (int j = 0; j < 4; j++)
                want[r * 4 + j] = log_form ? w[r * 4 + j] - sm[j] * wsum
                                           : sm[j] * (w[r * 4 + j] - ws);
        }
        expect_all_finite(what, gx, 12);
        expect_close(what, gx, want, 12, RTOL);
    }
    ctx_free(&c);
}

Test(ops_fwd, softmax_hard_backward)
{
    softmax_hard_grad(0);
    softmax_hard_grad(1);
}

/* ---- forward: layout ops ------------------------------------------------------------------- */

/* Concatenation of n parts of shape base with last dims widths[]. */
static void concat_forward_case(const char *what, shape base, int n, const int *widths)
{
    tctx c;
    ctx_init(&c, what, 7000u + (unsigned)n);
    rc_node *parts[4];
    float *data[4];
    int total = 0;
    char name[16];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "p%d", i);
        parts[i] = ctx_input(&c, name, shape_last(base, widths[i]), NULL, R_WIDE, &data[i]);
        total += widths[i];
    }
    rc_node *y = rc_concat(c.g, n, parts);
    if (ctx_run(&c, y)) {
        shape so = shape_last(base, total);
        expect_shape(what, y, so);
        size_t rows = shape_size(base) / (size_t)shape_cols(base);
        double *want = dalloc(rows * (size_t)total);
        for (size_t r = 0; r < rows; r++) {
            int off = 0;
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < widths[i]; j++)
                    want[r * (size_t)total + (size_t)(off + j)] =
                        data[i][r * (size_t)widths[i] + (size_t)j];
                off += widths[i];
            }
        }
        expect_close(what, rc_plan_value(c.p, y), want, rows * (size_t)total, 0);
        free(want);
    }
    ctx_free(&c);
}

Test(ops_fwd, concat)
{
    static const int w2[2] = {2, 3}, w3[3] = {1, 2, 3};
    concat_forward_case("concat 2 parts", SHAPES[0], 2, w2);
    concat_forward_case("concat 3 parts", SHAPES[1], 3, w3);
    concat_forward_case("concat 3 parts 2-D", SHAPES[0], 3, w3);
}

static void slice_forward_case(const char *what, shape s, int start, int len)
{
    tctx c;
    ctx_init(&c, what, 7100u + (unsigned)start);
    float *x = NULL;
    rc_node *a = ctx_input(&c, "a", s, NULL, R_WIDE, &x);
    rc_node *y = rc_slice(c.g, a, start, len);
    if (ctx_run(&c, y)) {
        expect_shape(what, y, shape_last(s, len));
        int cols = shape_cols(s);
        size_t rows = shape_size(s) / (size_t)cols;
        double *want = dalloc(rows * (size_t)len);
        for (size_t r = 0; r < rows; r++)
            for (int j = 0; j < len; j++)
                want[r * (size_t)len + (size_t)j] = x[r * (size_t)cols + (size_t)(start + j)];
        expect_close(what, rc_plan_value(c.p, y), want, rows * (size_t)len, 0);
        free(want);
    }
    ctx_free(&c);
}

Test(ops_fwd, slice)
{
    slice_forward_case("slice [3,5] 1:4", SHAPES[0], 1, 3);
    slice_forward_case("slice [2,3,4] 2:4", SHAPES[1], 2, 2);
    slice_forward_case("slice [3,5] 0:1", SHAPES[0], 0, 1);
    slice_forward_case("slice [2,3,4] 0:4", SHAPES[1], 0, 4);
}

/* ---- forward: reductions ------------------------------------------------------------------- */

static void total_forward(const char *what, unary_fn f, int mean)
{
    for (int k = 0; k < 3; k++) {
        tctx c;
        ctx_init(&c, what, 7200u + (unsigned)k);
        shape s = k < 2 ? SHAPES[k] : shape1(7);
        float *x = NULL;
        rc_node *a = ctx_input(&c, "a", s, NULL, R_WIDE, &x);
        rc_node *y = f(c.g, a);
        if (ctx_run(&c, y)) {
            expect_shape(what, y, shape1(1));
            double want = 0;
            size_t n = shape_size(s);
            for (size_t i = 0; i < n; i++) want += x[i];
            if (mean) want /= (double)n;
            expect_close(what, rc_plan_value(c.p, y), &want, 1, RTOL);
        }
        ctx_free(&c);
    }
}

Test(ops_fwd, sum)
{
    total_forward("sum", rc_sum, 0);
}

Test(ops_fwd, mean)
{
    total_forward("mean", rc_mean, 1);
}

/* ---- forward: embedding --------------------------------------------------------------------- */

#define EMB_V 5
#define EMB_D 3
static const int32_t EMB_IDX1[4] = {1, 3, 1, 4};          /* shape [4], row 1 twice */
static const int32_t EMB_IDX2[6] = {0, 4, 4, 2, 0, 4};    /* shape [2,3], 0 twice, 4 thrice */

static void embedding_forward_case(const char *what, shape is, const int32_t *idx)
{
    tctx c;
    ctx_init(&c, what, 7300u + (unsigned)is.ndim);
    float *t = NULL;
    rc_node *table = ctx_input(&c, "table", shape2(EMB_V, EMB_D), NULL, R_WIDE, &t);
    rc_node *ix = ctx_input_i32(&c, "idx", is, idx);
    rc_node *y = rc_embedding(c.g, table, ix);
    if (ctx_run(&c, y)) {
        shape so = is;
        so.d[so.ndim++] = EMB_D;
        expect_shape(what, y, so);
        size_t np = shape_size(is);
        double *want = dalloc(np * EMB_D);
        for (size_t p = 0; p < np; p++)
            for (int d = 0; d < EMB_D; d++) want[p * EMB_D + (size_t)d] = t[idx[p] * EMB_D + d];
        expect_close(what, rc_plan_value(c.p, y), want, np * EMB_D, 0);
        free(want);
    }
    ctx_free(&c);
}

Test(ops_fwd, embedding)
{
    embedding_forward_case("embedding [4]", shape1(4), EMB_IDX1);
    embedding_forward_case("embedding [2,3]", shape2(2, 3), EMB_IDX2);
}

/* ---- forward: losses ------------------------------------------------------------------------ */

/* Per row: lse(x) - x[t], 0 where t < 0. */
static void ref_xent(const float *x, const int32_t *t, size_t rows, int C, double *out)
{
    double xd[64];
    for (size_t r = 0; r < rows; r++) {
        for (int j = 0; j < C; j++) xd[j] = x[r * (size_t)C + (size_t)j];
        out[r] = t[r] < 0 ? 0.0 : ref_lse(xd, C) - xd[t[r]];
    }
}

static void xent_forward_case(const char *what, shape s, const float *logits, const int32_t *tg)
{
    tctx c;
    ctx_init(&c, what, 7400u + (unsigned)s.ndim);
    float *x = NULL;
    rc_node *lg = ctx_input(&c, "logits", s, logits, R_WIDE, &x);
    shape st = shape_drop_last(s);
    rc_node *tn = ctx_input_i32(&c, "targets", st, tg);
    rc_node *y = rc_softmax_xent(c.g, lg, tn);
    if (ctx_run(&c, y)) {
        expect_shape(what, y, st);
        size_t rows = shape_size(st);
        double *want = dalloc(rows);
        ref_xent(x, tg, rows, shape_cols(s), want);
        const float *got = rc_plan_value(c.p, y);
        expect_all_finite(what, got, rows);
        expect_close(what, got, want, rows, RTOL);
        for (size_t r = 0; got && r < rows; r++)
            if (tg[r] < 0)
                cr_expect(got[r] == 0.0f, "%s: padding row %zu loses %g, expected 0", what, r,
                          (double)got[r]);
        free(want);
    }
    ctx_free(&c);
}

static const int32_t XENT_T1[3] = {1, -1, 4};              /* [3,5] */
static const int32_t XENT_T2[6] = {0, 3, -1, 2, 2, 1};     /* [2,3,4] */

Test(ops_fwd, softmax_xent)
{
    xent_forward_case("softmax_xent [3,5]", SHAPES[0], NULL, XENT_T1);
    xent_forward_case("softmax_xent [2,3,4]", SHAPES[1], NULL, XENT_T2);
    static const int32_t th[3] = {2, 0, 1};
    xent_forward_case("softmax_xent +-1000", shape2(3, 4), HARD_LOGITS, th);
    static const int32_t th2[3] = {0, -1, 3};
    xent_forward_case("softmax_xent +-1000 pad", shape2(3, 4), HARD_LOGITS, th2);
}

/* d(sum w_r * xent_r)/dx = w_r * (softmax(x_r) - onehot(t_r)), 0 on padding rows. */
Test(ops_fwd, softmax_xent_backward_closed_form)
{
    static const int32_t tg[3] = {2, -1, 1};
    const char *what = "softmax_xent grad +-1000";
    tctx c;
    ctx_init(&c, what, 7410);
    shape s = shape2(3, 4);
    rc_node *x = ctx_input_grad(&c, "x", s, HARD_LOGITS, R_WIDE, NULL);
    rc_node *t = ctx_input_i32(&c, "t", shape1(3), tg);
    const float *w = NULL;
    rc_node *loss = ctx_weighted_sum(&c, rc_softmax_xent(c.g, x, t), &w);
    if (ctx_run_backward(&c, loss)) {
        const float *gx = rc_plan_grad(c.p, x);
        double want[12], xd[4], sm[4];
        for (int r = 0; r < 3; r++) {
            for (int j = 0; j < 4; j++) xd[j] = HARD_LOGITS[r * 4 + j];
            ref_softmax(xd, 4, sm);
            for (int j = 0; j < 4; j++)
                want[r * 4 + j] = tg[r] < 0 ? 0.0 : w[r] * (sm[j] - (j == tg[r] ? 1.0 : 0.0));
        }
        expect_all_finite(what, gx, 12);
        expect_close(what, gx, want, 12, RTOL);
        for (int j = 0; gx && j < 4; j++)
            cr_expect(gx[4 + j] == 0.0f, "%s: padding row gets gradient %g", what,
                      (double)gx[4 + j]);
    }
    ctx_free(&c);
}

/* Per row: sum_k softplus(x) - t*x. */
static void ref_bce(const float *x, const float *t, size_t rows, int K, double *out)
{
    for (size_t r = 0; r < rows; r++) {
        double s = 0;
        for (int k = 0; k < K; k++) {
            double xv = x[r * (size_t)K + (size_t)k], tv = t[r * (size_t)K + (size_t)k];
            s += ref_softplus(xv) - tv * xv;
        }
        out[r] = s;
    }
}

static void bce_forward_case(const char *what, shape s, const float *logits, const float *tgt)
{
    tctx c;
    ctx_init(&c, what, 7500u + (unsigned)s.ndim);
    size_t n = shape_size(s);
    float *t = ctx_floats(&c, n);
    if (tgt) memcpy(t, tgt, n * sizeof(float));
    else
        for (size_t i = 0; i < n; i++) t[i] = (float)rng_below(&c.r, 2);
    float *x = NULL;
    rc_node *lg = ctx_input(&c, "logits", s, logits, R_WIDE, &x);
    rc_node *tn = ctx_input(&c, "targets", s, t, R_WIDE, NULL);
    rc_node *y = rc_sigmoid_bce(c.g, lg, tn);
    if (ctx_run(&c, y)) {
        shape so = shape_drop_last(s);
        expect_shape(what, y, so);
        size_t rows = shape_size(so);
        double *want = dalloc(rows);
        ref_bce(x, t, rows, shape_cols(s), want);
        const float *got = rc_plan_value(c.p, y);
        expect_all_finite(what, got, rows);
        expect_close(what, got, want, rows, RTOL);
        free(want);
    }
    ctx_free(&c);
}

static const float BCE_HARD_X[8] = {100.f, -100.f, 100.f, -100.f, 100.f, 100.f, -100.f, -100.f};
static const float BCE_HARD_T[8] = {1.f, 0.f, 0.f, 1.f, 1.f, 0.f, 0.f, 1.f};

Test(ops_fwd, sigmoid_bce)
{
    bce_forward_case("sigmoid_bce [3,5]", SHAPES[0], NULL, NULL);
    bce_forward_case("sigmoid_bce [2,3,4]", SHAPES[1], NULL, NULL);
    bce_forward_case("sigmoid_bce +-100", shape2(4, 2), BCE_HARD_X, BCE_HARD_T);
}

/* d(sum w_r * bce_r)/dx = w_r * (sigmoid(x) - t), finite at +-100. */
Test(ops_fwd, sigmoid_bce_backward_closed_form)
{
    const char *what = "sigmoid_bce grad +-100";
    tctx c;
    ctx_init(&c, what, 7510);
    shape s = shape2(4, 2);
    rc_node *x = ctx_input_grad(&c, "x", s, BCE_HARD_X, R_WIDE, NULL);
    rc_node *t = ctx_input(&c, "t", s, BCE_HARD_T, R_WIDE, NULL);
    const float *w = NULL;
    rc_node *loss = ctx_weighted_sum(&c, rc_sigmoid_bce(c.g, x, t), &w);
    if (ctx_run_backward(&c, loss)) {
        const float *gx = rc_plan_grad(c.p, x);
        double want[8];
        for (int i = 0; i < 8; i++)
            want[i] = w[i / 2] * (ref_sigmoid(BCE_HARD_X[i]) - BCE_HARD_T[i]);
        expect_all_finite(what, gx, 8);
        expect_close(what, gx, want, 8, RTOL);
    }
    ctx_free(&c);
}

/* d softplus(x)/dx = sigmoid(x), finite at +-100. */
Test(ops_fwd, softplus_backward_closed_form)
{
    static const float hx[6] = {100.f, -100.f, 30.f, -30.f, 0.f, 1000.f};
    const char *what = "softplus grad hard";
    tctx c;
    ctx_init(&c, what, 7520);
    rc_node *x = ctx_input_grad(&c, "x", shape1(6), hx, R_WIDE, NULL);
    const float *w = NULL;
    rc_node *loss = ctx_weighted_sum(&c, rc_softplus(c.g, x), &w);
    if (ctx_run_backward(&c, loss)) {
        const float *gx = rc_plan_grad(c.p, x);
        double want[6];
        for (int i = 0; i < 6; i++) want[i] = w[i] * ref_sigmoid(hx[i]);
        expect_all_finite(what, gx, 6);
        expect_close(what, gx, want, 6, RTOL);
    }
    ctx_free(&c);
}

static void mse_forward_case(const char *what, shape s)
{
    tctx c;
    ctx_init(&c, what, 7600u + (unsigned)s.ndim);
    float *a = NULL, *b = NULL;
    rc_node *na = ctx_input(&c, "pred", s, NULL, R_WIDE, &a);
    rc_node *nb = ctx_input(&c, "target", s, NULL, R_WIDE, &b);
    rc_node *y = rc_mse(c.g, na, nb);
    if (ctx_run(&c, y)) {
        shape so = shape_drop_last(s);
        expect_shape(what, y, so);
        int K = shape_cols(s);
        size_t rows = shape_size(so);
        double *want = dalloc(rows);
        for (size_t r = 0; r < rows; r++) {
            double sum = 0;
            for (int k = 0; k < K; k++) {
                double d = (double)a[r * (size_t)K + (size_t)k] - b[r * (size_t)K + (size_t)k];
                sum += d * d;
            }
            want[r] = sum / K;
        }
        expect_close(what, rc_plan_value(c.p, y), want, rows, RTOL);
        free(want);
    }
    ctx_free(&c);
}

Test(ops_fwd, mse)
{
    mse_forward_case("mse [3,5]", SHAPES[0]);
    mse_forward_case("mse [2,3,4]", SHAPES[1]);
}

/* ---- gradients ----------------------------------------------------------------------------- */

Test(ops_grad, matmul)
{
    for (int s = 0; s < 2; s++)
        for (int t = -1; t < 4; t++) {
            const int M = MM_SIZES[s][0], K = MM_SIZES[s][1], N = MM_SIZES[s][2];
            int ta = t < 0 ? 0 : t >> 1, tb = t < 0 ? 0 : t & 1;
            char what[64];
            snprintf(what, sizeof what, "matmul%s ta=%d tb=%d [%d,%d,%d]",
                     t < 0 ? "(plain)" : "_t", ta, tb, M, K, N);
            tctx c;
            ctx_init(&c, what, 8000u + (unsigned)(s * 10 + t + 1));
            rc_node *wrt[2];
            wrt[0] = ctx_param(&c, "a", ta ? shape2(K, M) : shape2(M, K), NULL, R_UNIT, NULL);
            /* b is an input with requires_grad on the second size */
            shape sb = tb ? shape2(N, K) : shape2(K, N);
            wrt[1] = s == 0 ? ctx_param(&c, "b", sb, NULL, R_UNIT, NULL)
                            : ctx_input_grad(&c, "b", sb, NULL, R_UNIT, NULL);
            rc_node *y = t < 0 ? rc_matmul(c.g, wrt[0], wrt[1])
                               : rc_matmul_t(c.g, wrt[0], wrt[1], ta, tb);
            ctx_expect_grad(&c, y, 2, wrt, GC_EPS);
            ctx_free(&c);
        }
}

Test(ops_grad, add)
{
    binary_grad("add", rc_add, 0, R_WIDE, R_WIDE, 0, GC_EPS);
}

Test(ops_grad, add_row_broadcast)
{
    binary_grad("add_bcast", rc_add, 1, R_WIDE, R_WIDE, 0, GC_EPS);
}

Test(ops_grad, sub)
{
    binary_grad("sub", rc_sub, 0, R_WIDE, R_WIDE, 0, GC_EPS);
}

Test(ops_grad, mul)
{
    binary_grad("mul", rc_mul, 0, R_WIDE, R_WIDE, 0, GC_EPS);
}

Test(ops_grad, mul_row_broadcast)
{
    binary_grad("mul_bcast", rc_mul, 1, R_WIDE, R_WIDE, 0, GC_EPS);
}

Test(ops_grad, div)
{
    range ra = {-2.0, 2.0, 0.0}, rb = {-2.0, 2.0, 0.5};
    binary_grad("div", rc_div, 0, ra, rb, 0, 5e-3f);
}

Test(ops_grad, minimum)
{
    binary_grad("minimum", rc_minimum, 0, R_WIDE, R_WIDE, 0.05, GC_EPS);
}

Test(ops_grad, maximum)
{
    binary_grad("maximum", rc_maximum, 0, R_WIDE, R_WIDE, 0.05, GC_EPS);
}

Test(ops_grad, scale)
{
    unary_grad("scale", op_scale, R_WIDE, GC_EPS);
}

Test(ops_grad, one_minus)
{
    unary_grad("one_minus", rc_one_minus, R_WIDE, GC_EPS);
}

Test(ops_grad, sigmoid)
{
    unary_grad("sigmoid", rc_sigmoid, R_WIDE, GC_EPS);
}

Test(ops_grad, tanh)
{
    unary_grad("tanh", rc_tanh, R_WIDE, GC_EPS);
}

Test(ops_grad, relu)
{
    unary_grad("relu", rc_relu, R_KINK, GC_EPS);
}

Test(ops_grad, softplus)
{
    unary_grad("softplus", rc_softplus, R_WIDE, GC_EPS);
}

Test(ops_grad, abs)
{
    unary_grad("abs", rc_abs, R_KINK, GC_EPS);
}

Test(ops_grad, sqrt)
{
    unary_grad("sqrt", rc_sqrt, R_POS, 5e-3f);
}

Test(ops_grad, exp)
{
    range r = {-2.0, 2.0, 0.0};
    unary_grad("exp", rc_exp, r, GC_EPS);
}

Test(ops_grad, log)
{
    unary_grad("log", rc_log, R_POS, 5e-3f);
}

Test(ops_grad, row_sum)
{
    unary_grad("row_sum", rc_row_sum, R_WIDE, GC_EPS);
}

Test(ops_grad, row_mean)
{
    unary_grad("row_mean", rc_row_mean, R_WIDE, GC_EPS);
}

Test(ops_grad, row_var)
{
    unary_grad("row_var", rc_row_var, R_WIDE, GC_EPS);
}

Test(ops_grad, softmax)
{
    unary_grad("softmax", rc_softmax, R_WIDE, GC_EPS);
}

Test(ops_grad, log_softmax)
{
    unary_grad("log_softmax", rc_log_softmax, R_WIDE, GC_EPS);
}

Test(ops_grad, sum)
{
    unary_grad("sum", rc_sum, R_WIDE, GC_EPS);
}

Test(ops_grad, mean)
{
    unary_grad("mean", rc_mean, R_WIDE, GC_EPS);
}

static void concat_grad_case(const char *what, shape base, int n, const int *widths, int inputs)
{
    tctx c;
    ctx_init(&c, what, 8100u + (unsigned)n);
    rc_node *parts[4];
    char name[16];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "p%d", i);
        shape s = shape_last(base, widths[i]);
        parts[i] = inputs && i == 1 ? ctx_input_grad(&c, name, s, NULL, R_WIDE, NULL)
                                    : ctx_param(&c, name, s, NULL, R_WIDE, NULL);
    }
    rc_node *y = rc_concat(c.g, n, parts);
    ctx_expect_grad(&c, y, n, parts, GC_EPS);
    ctx_free(&c);
}

Test(ops_grad, concat)
{
    static const int w2[2] = {2, 3}, w3[3] = {1, 2, 3};
    concat_grad_case("concat 2 parts [3,*]", SHAPES[0], 2, w2, 0);
    concat_grad_case("concat 3 parts [2,3,*]", SHAPES[1], 3, w3, 1);
    concat_grad_case("concat 2 parts [2,3,*]", SHAPES[1], 2, w2, 0);
    concat_grad_case("concat 3 parts [3,*]", SHAPES[0], 3, w3, 1);
}

static void slice_grad_case(const char *what, shape s, int start, int len, int input)
{
    tctx c;
    ctx_init(&c, what, 8200u + (unsigned)start);
    rc_node *a = input ? ctx_input_grad(&c, "a", s, NULL, R_WIDE, NULL)
                       : ctx_param(&c, "a", s, NULL, R_WIDE, NULL);
    rc_node *y = rc_slice(c.g, a, start, len);
    ctx_expect_grad(&c, y, 1, &a, GC_EPS);
    ctx_free(&c);
}

Test(ops_grad, slice)
{
    slice_grad_case("slice [3,5] 1:4", SHAPES[0], 1, 3, 0);
    slice_grad_case("slice [2,3,4] 2:4", SHAPES[1], 2, 2, 1);
}

static void embedding_grad_case(const char *what, shape is, const int32_t *idx)
{
    tctx c;
    ctx_init(&c, what, 8300u + (unsigned)is.ndim);
    rc_node *table = ctx_param(&c, "table", shape2(EMB_V, EMB_D), NULL, R_WIDE, NULL);
    rc_node *ix = ctx_input_i32(&c, "idx", is, idx);
    rc_node *y = rc_embedding(c.g, table, ix);
    ctx_expect_grad(&c, y, 1, &table, GC_EPS);

    /* The scatter-add by hand: a row picked several times sums its gradients;
     * a row never picked gets 0. */
    const float *w = NULL;
    rc_node *loss = ctx_weighted_sum(&c, y, &w);
    if (ctx_run_backward(&c, loss)) {
        double want[EMB_V * EMB_D] = {0};
        size_t np = shape_size(is);
        for (size_t p = 0; p < np; p++)
            for (int d = 0; d < EMB_D; d++) want[idx[p] * EMB_D + d] += w[p * EMB_D + (size_t)d];
        expect_close(what, rc_plan_grad(c.p, table), want, EMB_V * EMB_D, RTOL);
    }
    ctx_free(&c);
}

Test(ops_grad, embedding)
{
    embedding_grad_case("embedding [4] repeated", shape1(4), EMB_IDX1);
    embedding_grad_case("embedding [2,3] repeated", shape2(2, 3), EMB_IDX2);
}

static void xent_grad_case(const char *what, shape s, const int32_t *tg, int input)
{
    tctx c;
    ctx_init(&c, what, 8400u + (unsigned)s.ndim);
    rc_node *x = input ? ctx_input_grad(&c, "logits", s, NULL, R_WIDE, NULL)
                       : ctx_param(&c, "logits", s, NULL, R_WIDE, NULL);
    rc_node *t = ctx_input_i32(&c, "targets", shape_drop_last(s), tg);
    rc_node *y = rc_softmax_xent(c.g, x, t);
    ctx_expect_grad(&c, y, 1, &x, GC_EPS);
    ctx_free(&c);
}

Test(ops_grad, softmax_xent)
{
    xent_grad_case("softmax_xent [3,5]", SHAPES[0], XENT_T1, 0);
    xent_grad_case("softmax_xent [2,3,4]", SHAPES[1], XENT_T2, 1);
}

static void bce_grad_case(const char *what, shape s, int input)
{
    tctx c;
    ctx_init(&c, what, 8500u + (unsigned)s.ndim);
    size_t n = shape_size(s);
    float *t = ctx_floats(&c, n);
    for (size_t i = 0; i < n; i++) t[i] = (float)rng_below(&c.r, 2);
    rc_node *wrt[2];
    wrt[0] = input ? ctx_input_grad(&c, "logits", s, NULL, R_WIDE, NULL)
                   : ctx_param(&c, "logits", s, NULL, R_WIDE, NULL);
    /* the loss is linear in the targets (d/dt = -x): checked too */
    wrt[1] = input ? ctx_param(&c, "targets", s, t, R_WIDE, NULL)
                   : ctx_input_grad(&c, "targets", s, t, R_WIDE, NULL);
    rc_node *y = rc_sigmoid_bce(c.g, wrt[0], wrt[1]);
    ctx_expect_grad(&c, y, 2, wrt, GC_EPS);
    ctx_free(&c);
}

Test(ops_grad, sigmoid_bce)
{
    bce_grad_case("sigmoid_bce [3,5]", SHAPES[0], 0);
    bce_grad_case("sigmoid_bce [2,3,4]", SHAPES[1], 1);
}

Test(ops_grad, mse)
{
    /* with respect to both the prediction and the target */
    binary_grad("mse", rc_mse, 0, R_WIDE, R_WIDE, 0, GC_EPS);
}

/* ---- a wrong backward is caught ----------------------------------------------------------------- */

static void (*real_backward)(op_inst *);
static int wrapped_calls;

/* The real backward, with its contribution to every input gradient scaled by 1.01
 * (gin is accumulated into, so only the new part is scaled). */
static void backward_off_by_1pct(op_inst *I)
{
    float *old[8] = {0};
    int nin = I->nin < 8 ? I->nin : 8;
    for (int k = 0; k < nin; k++)
        if (I->gin && I->gin[k]) {
            size_t n = I->in[k]->size;
            old[k] = malloc(n * sizeof(float));
            cr_assert_not_null(old[k]);
            memcpy(old[k], I->gin[k], n * sizeof(float));
        }
    real_backward(I);
    for (int k = 0; k < nin; k++)
        if (old[k]) {
            size_t n = I->in[k]->size;
            for (size_t i = 0; i < n; i++)
                I->gin[k][i] = old[k][i] + 1.01f * (I->gin[k][i] - old[k][i]);
            free(old[k]);
        }
    wrapped_calls++;
}

/* Gradient check of loss with the correct backward, with a 1%-off one swapped
 * into op_table[op] (a fresh plan each time, in case plans copy the pointer),
 * and again after restoring it. */
static void check_wrong_backward_caught(tctx *c, int op, rc_node *loss, int n, rc_node *const *wrt)
{
    double ok = ctx_gradcheck_loss(c, loss, n, wrt, GC_EPS);

    real_backward = op_table[op].backward;
    cr_assert_not_null(real_backward, "%s: op_table has no backward", c->what);
    wrapped_calls = 0;
    op_table[op].backward = backward_off_by_1pct;
    double bad = ctx_gradcheck_loss(c, loss, n, wrt, GC_EPS);
    op_table[op].backward = real_backward;
    int calls = wrapped_calls;

    double ok2 = ctx_gradcheck_loss(c, loss, n, wrt, GC_EPS);
    if (verbose()) fprintf(stderr, "%s: ok %.3g, 1%% off %.3g, restored %.3g\n", c->what, ok, bad, ok2);

    cr_expect(ok < GC_TOL, "%s: the correct backward fails the check (%.3g)", c->what, ok);
    cr_expect(calls > 0, "%s: the swapped backward was never called", c->what);
    cr_expect(bad > GC_TOL, "%s: a backward off by 1%% passes the check (%.3g < %.3g)", c->what,
              bad, GC_TOL);
    /* the documented error measure gives about 0.01 for a 1% scaling */
    cr_expect(bad > 0.007 && bad < 0.013, "%s: error %.3g for a 1%% scaling, expected ~0.01",
              c->what, bad);
    cr_expect(ok2 < GC_TOL, "%s: after restoring, the check fails (%.3g)", c->what, ok2);
}

Test(ops_check, wrong_sigmoid_backward_caught)
{
    tctx c;
    ctx_init(&c, "sigmoid 1% off", 9000);
    rc_node *a = ctx_param(&c, "a", SHAPES[0], NULL, R_WIDE, NULL);
    rc_node *loss = ctx_weighted_sum(&c, rc_sigmoid(c.g, a), NULL);
    if (loss) check_wrong_backward_caught(&c, OP_SIGMOID, loss, 1, &a);
    ctx_free(&c);
}

Test(ops_check, wrong_matmul_backward_caught)
{
    tctx c;
    ctx_init(&c, "matmul 1% off", 9001);
    rc_node *wrt[2];
    wrt[0] = ctx_param(&c, "a", shape2(3, 4), NULL, R_UNIT, NULL);
    wrt[1] = ctx_param(&c, "b", shape2(4, 5), NULL, R_UNIT, NULL);
    rc_node *loss = ctx_weighted_sum(&c, rc_matmul(c.g, wrt[0], wrt[1]), NULL);
    if (loss) check_wrong_backward_caught(&c, OP_MATMUL, loss, 2, wrt);
    ctx_free(&c);
}

/* ---- dropout ------------------------------------------------------------------------------------ */

#define DROP_P 0.3f

/* Copies the dropout mask (1 kept, 0 dropped) of one forward run of c.p into m. */
static void dropout_mask(const float *y, size_t n, unsigned char *m)
{
    for (size_t i = 0; i < n; i++) m[i] = y[i] != 0.0f;
}

Test(ops_dropout, training_statistics_and_scaling)
{
    const char *what = "dropout training";
    tctx c;
    ctx_init(&c, what, 9100);
    shape s = shape2(40, 50);
    size_t n = shape_size(s);
    range pos = {0.5, 1.5, 0.0};
    float *x = NULL;
    rc_node *a = ctx_input(&c, "x", s, NULL, pos, &x);
    rc_node *y = rc_dropout(c.g, a, DROP_P, 1234);
    for (int run = 0; run < 2 && ctx_run(&c, y); run++) {
        expect_shape(what, y, s);
        const float *v = rc_plan_value(c.p, y);
        if (!v) break;
        size_t zeros = 0, bad = n;
        for (size_t i = 0; i < n; i++) {
            if (v[i] == 0.0f) zeros++;
            else if (fabs(v[i] - x[i] / (1.0 - DROP_P)) > RTOL * (1.0 + fabs(x[i] / (1.0 - DROP_P))))
                bad = i;
        }
        double frac = (double)zeros / (double)n;
        /* the standard deviation of frac is about 0.01 */
        cr_expect(frac > DROP_P - 0.05 && frac < DROP_P + 0.05,
                  "%s: dropped fraction %.3f, expected about %.2f", what, frac, (double)DROP_P);
        if (bad != n)
            cr_expect_fail("%s: kept element %zu is %g, expected x/(1-p) = %g", what, bad,
                           (double)v[bad], x[bad] / (1.0 - DROP_P));
    }
    ctx_free(&c);
}

/* One forward of a fresh plan of a graph holding dropout(x, p, seed); m gets its mask.
 * extra_nodes puts other nodes first so that node ids differ between graphs. */
static int dropout_first_mask(uint64_t seed, int extra_nodes, const float *x, shape s,
                              unsigned char *m)
{
    tctx c;
    ctx_init(&c, "dropout mask", 9200);
    for (int i = 0; i < extra_nodes; i++) rc_fill(c.g, 1, (int[]){3}, 1.0f);
    rc_node *a = ctx_input(&c, "x", s, x, R_WIDE, NULL);
    rc_node *y = rc_dropout(c.g, a, DROP_P, seed);
    int ok = ctx_run(&c, y);
    const float *v = ok ? rc_plan_value(c.p, y) : NULL;
    if (v) dropout_mask(v, shape_size(s), m);
    ctx_free(&c);
    return v != NULL;
}

static size_t mask_diff(const unsigned char *a, const unsigned char *b, size_t n)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += a[i] != b[i];
    return d;
}

Test(ops_dropout, mask_depends_on_seed_and_run_only)
{
    const char *what = "dropout determinism";
    shape s = shape2(20, 30);
    size_t n = shape_size(s);
    float *x = malloc(n * sizeof(float));
    unsigned char *m1 = calloc(n, 1), *m2 = calloc(n, 1), *m3 = calloc(n, 1), *m4 = calloc(n, 1);
    cr_assert(x && m1 && m2 && m3 && m4);
    rng r = {77};
    range pos = {0.5, 1.5, 0.0};
    rng_fill(&r, x, n, pos);

    int ok = dropout_first_mask(42, 0, x, s, m1) && dropout_first_mask(42, 5, x, s, m2) &&
             dropout_first_mask(43, 0, x, s, m3);
    if (ok) {
        cr_expect(mask_diff(m1, m2, n) == 0,
                  "%s: same seed, first run, another graph: %zu of %zu mask entries differ", what,
                  mask_diff(m1, m2, n), n);
        cr_expect(mask_diff(m1, m3, n) > 0, "%s: seeds 42 and 43 give the same mask", what);
    }

    /* one plan: a second run draws another mask; a new plan of the same graph
     * starts again from the first mask */
    tctx c;
    ctx_init(&c, what, 9201);
    rc_node *a = ctx_input(&c, "x", s, x, R_WIDE, NULL);
    rc_node *y = rc_dropout(c.g, a, DROP_P, 42);
    if (ok && ctx_run(&c, y)) {
        dropout_mask(rc_plan_value(c.p, y), n, m2);
        cr_expect(mask_diff(m1, m2, n) == 0, "%s: first runs of two plans differ", what);
        if (rc_plan_forward(c.p) == RC_OK) {
            dropout_mask(rc_plan_value(c.p, y), n, m4);
            cr_expect(mask_diff(m1, m4, n) > 0, "%s: the second run reuses the first mask", what);
        } else {
            cr_expect_fail("%s: second forward: %s", what, rc_plan_error(c.p));
        }
        if (ctx_run(&c, y)) { /* a fresh plan */
            dropout_mask(rc_plan_value(c.p, y), n, m3);
            cr_expect(mask_diff(m1, m3, n) == 0, "%s: a fresh plan of the same graph differs",
                      what);
        }
    }
    ctx_free(&c);
    free(x);
    free(m1);
    free(m2);
    free(m3);
    free(m4);
}

Test(ops_dropout, eval_mode_is_identity)
{
    const char *what = "dropout eval";
    tctx c;
    ctx_init(&c, what, 9300);
    shape s = SHAPES[1];
    size_t n = shape_size(s);
    float *x = NULL;
    rc_node *a = ctx_input_grad(&c, "x", s, NULL, R_WIDE, &x);
    rc_node *y = rc_dropout(c.g, a, 0.5f, 99);
    const float *w = NULL;
    rc_node *loss = ctx_weighted_sum(&c, y, &w);
    if (ctx_plan(&c, loss)) {
        rc_plan_set_training(c.p, 0);
        for (int run = 0; run < 2; run++) {
            if (rc_plan_forward(c.p) != RC_OK || rc_plan_backward(c.p, loss) != RC_OK) {
                cr_expect_fail("%s: run failed: %s", what, rc_plan_error(c.p));
                break;
            }
            double *want = dalloc(n), *gwant = dalloc(n);
            for (size_t i = 0; i < n; i++) {
                want[i] = x[i];
                gwant[i] = w[i];
            }
            expect_close(what, rc_plan_value(c.p, y), want, n, 0);
            expect_close("dropout eval grad", rc_plan_grad(c.p, a), gwant, n, RTOL);
            free(want);
            free(gwant);
        }
    }
    ctx_free(&c);
}

/* The backward by hand: with the mask of the last forward, dL/dx = w * mask / (1-p),
 * over several runs (each forward advances the run counter and draws a new mask). */
static void dropout_backward_case(const char *what, shape s, int input)
{
    tctx c;
    ctx_init(&c, what, 9400u + (unsigned)s.ndim);
    size_t n = shape_size(s);
    range pos = {0.5, 1.5, 0.0};
    float *x = NULL;
    rc_node *a = input ? ctx_input_grad(&c, "x", s, NULL, pos, &x)
                       : ctx_param(&c, "x", s, NULL, pos, &x);
    rc_node *y = rc_dropout(c.g, a, DROP_P, 5);
    const float *w = NULL;
    rc_node *loss = ctx_weighted_sum(&c, y, &w);
    if (ctx_plan(&c, loss)) {
        size_t dropped = 0;
        for (int run = 0; run < 3; run++) {
            if (rc_plan_forward(c.p) != RC_OK || rc_plan_backward(c.p, loss) != RC_OK) {
                cr_expect_fail("%s: run failed: %s", what, rc_plan_error(c.p));
                break;
            }
            const float *v = rc_plan_value(c.p, y), *gx = rc_plan_grad(c.p, a);
            if (!v || !gx) {
                cr_expect_fail("%s: no value or gradient", what);
                break;
            }
            double *want = dalloc(n);
            for (size_t i = 0; i < n; i++) {
                int kept = v[i] != 0.0f;
                dropped += !kept;
                want[i] = kept ? w[i] / (1.0 - DROP_P) : 0.0;
            }
            expect_close(what, gx, want, n, RTOL);
            free(want);
        }
        cr_expect(dropped > 0, "%s: nothing was dropped in three runs", what);
    }
    ctx_free(&c);
}

/* rc_gradcheck evaluates the plan at one run counter, so dropout's masks stay
 * fixed across its evaluations and the check applies too. */
Test(ops_dropout, gradcheck_with_fixed_run)
{
    for (int k = 0; k < 2; k++) {
        tctx c;
        ctx_init(&c, k ? "dropout gradcheck [2,3,4]" : "dropout gradcheck [3,5]", 9450u + (unsigned)k);
        rc_node *a = k ? ctx_input_grad(&c, "x", SHAPES[k], NULL, R_WIDE, NULL)
                       : ctx_param(&c, "x", SHAPES[k], NULL, R_WIDE, NULL);
        rc_node *y = rc_dropout(c.g, a, DROP_P, 11);
        ctx_expect_grad(&c, y, 1, &a, GC_EPS);
        ctx_free(&c);
    }
}

Test(ops_dropout, backward_uses_the_mask)
{
    dropout_backward_case("dropout backward [6,7]", shape2(6, 7), 0);
    dropout_backward_case("dropout backward [2,3,4]", shape3(2, 3, 4), 1);
}

/* ---- run-time errors ----------------------------------------------------------------------------- */

/* Feeds idx and runs forward; returns the status. */
static rc_status feed_and_run(rc_plan *p, rc_node *n, const int32_t *idx, size_t count)
{
    rc_status st = rc_plan_feed(p, n, idx, count);
    cr_expect_eq(st, RC_OK, "rc_plan_feed: %s", rc_plan_error(p));
    return rc_plan_forward(p);
}

Test(ops_errors, embedding_index_out_of_range)
{
    const char *what = "embedding bad index";
    tctx c;
    ctx_init(&c, what, 9500);
    rc_node *table = ctx_param(&c, "table", shape2(EMB_V, EMB_D), NULL, R_WIDE, NULL);
    static const int32_t good[4] = {0, 4, 2, 4};
    rc_node *ix = ctx_input_i32(&c, "idx", shape1(4), good);
    rc_node *y = rc_embedding(c.g, table, ix);
    if (ctx_plan(&c, y)) {
        static const int32_t too_big[4] = {0, EMB_V, 1, 2};
        static const int32_t negative[4] = {0, 1, -1, 2};
        static const int32_t huge[4] = {INT32_MAX, 0, 0, 0};
        const int32_t *bad[3] = {too_big, negative, huge};
        for (int b = 0; b < 3; b++) {
            rc_status st = feed_and_run(c.p, ix, bad[b], 4);
            cr_expect(st != RC_OK, "%s: case %d: forward succeeded", what, b);
            cr_expect_eq(st, RC_ERR_ARG, "%s: case %d: status %s, expected RC_ERR_ARG", what, b,
                         rc_status_name(st));
            cr_expect(strlen(rc_plan_error(c.p)) > 0, "%s: case %d: empty rc_plan_error", what, b);
        }
        /* the plan is still usable */
        rc_status st = feed_and_run(c.p, ix, good, 4);
        cr_expect_eq(st, RC_OK, "%s: good indices after an error: %s", what, rc_plan_error(c.p));
    }
    ctx_free(&c);
}

Test(ops_errors, softmax_xent_target_out_of_range)
{
    const char *what = "softmax_xent bad target";
    tctx c;
    ctx_init(&c, what, 9501);
    rc_node *lg = ctx_param(&c, "logits", shape2(3, 4), NULL, R_WIDE, NULL);
    static const int32_t good[3] = {0, -1, 3};
    rc_node *t = ctx_input_i32(&c, "t", shape1(3), good);
    rc_node *y = rc_softmax_xent(c.g, lg, t);
    if (ctx_plan(&c, y)) {
        static const int32_t eq_c[3] = {0, 4, 1};
        static const int32_t big[3] = {1000, 0, 1};
        const int32_t *bad[2] = {eq_c, big};
        for (int b = 0; b < 2; b++) {
            rc_status st = feed_and_run(c.p, t, bad[b], 3);
            cr_expect(st != RC_OK, "%s: case %d: forward succeeded", what, b);
            cr_expect_eq(st, RC_ERR_ARG, "%s: case %d: status %s, expected RC_ERR_ARG", what, b,
                         rc_status_name(st));
            cr_expect(strlen(rc_plan_error(c.p)) > 0, "%s: case %d: empty rc_plan_error", what, b);
        }
        rc_status st = feed_and_run(c.p, t, good, 3);
        cr_expect_eq(st, RC_OK, "%s: good targets after an error: %s", what, rc_plan_error(c.p));
    }
    ctx_free(&c);
}

/* ---- FLOP counts ------------------------------------------------------------------------------------ */

Test(ops_flops, matmul)
{
    for (int s = 0; s < 2; s++)
        for (int t = 0; t < 4; t++) {
            const int M = MM_SIZES[s][0], K = MM_SIZES[s][1], N = MM_SIZES[s][2];
            int ta = t >> 1, tb = t & 1;
            tctx c;
            ctx_init(&c, "matmul flops", 9600);
            rc_node *a = ctx_input(&c, "a", ta ? shape2(K, M) : shape2(M, K), NULL, R_UNIT, NULL);
            rc_node *b = ctx_input(&c, "b", tb ? shape2(N, K) : shape2(K, N), NULL, R_UNIT, NULL);
            rc_node *y = rc_matmul_t(c.g, a, b, ta, tb);
            if (ctx_plan(&c, y)) {
                double f = rc_plan_flops(c.p);
                cr_expect(f == 2.0 * M * K * N, "matmul [%d,%d]@[%d,%d] ta=%d tb=%d: %g FLOPs, "
                          "expected %d", M, K, K, N, ta, tb, f, 2 * M * K * N);
                cr_expect_eq(rc_plan_length(c.p), 1, "a single matmul's tape has %d ops",
                             rc_plan_length(c.p));
            }
            ctx_free(&c);
        }
}

/* Batch-1 products take the matrix-vector path: forward against loops, backward by
 * gradient check, for a single row and a single column in every transpose variant. */
Test(ops_grad, matmul_vector_shapes)
{
    const int cases[4][3] = { { 1, 6, 5 }, { 4, 6, 1 }, { 1, 3, 1 }, { 1, 1, 7 } };
    for (int c = 0; c < 4; c++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = cases[c][0], K = cases[c][1], N = cases[c][2];
                int as[2] = { ta ? K : M, ta ? M : K }, bs[2] = { tb ? N : K, tb ? K : N };
                rc_graph *g = rc_graph_new();
                rc_node *a = rc_param(g, "a", 2, as), *b = rc_param(g, "b", 2, bs);
                rc_node *y = rc_matmul_t(g, a, b, ta, tb);
                float w[64];
                for (int i = 0; i < M * N; i++) w[i] = 0.3f + 0.1f * (float)i;
                rc_node *loss = rc_sum(g, rc_mul(g, y, rc_const(g, 2, (int[]){ M, N }, w)));
                cr_assert_not_null(loss, "%s", rc_graph_error(g));
                float *pa = rc_param_data(a), *pb = rc_param_data(b);
                for (int i = 0; i < M * K; i++) pa[i] = 0.5f - 0.13f * (float)i;
                for (int i = 0; i < K * N; i++) pb[i] = -0.4f + 0.07f * (float)i;
                rc_plan *p = rc_plan_new(g, 2, (rc_node *[]){ loss, y });
                cr_assert_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
                const float *yv = rc_plan_value(p, y);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double s = 0;
                        for (int k = 0; k < K; k++)
                            s += (double)(ta ? pa[k * M + i] : pa[i * K + k]) * (tb ? pb[j * K + k] : pb[k * N + j]);
                        cr_expect(fabs(yv[i * N + j] - s) <= 1e-5 * (1 + fabs(s)), "case %d ta %d tb %d: y[%d,%d] %g vs %g",
                                  c, ta, tb, i, j, yv[i * N + j], s);
                    }
                double err = 1;
                cr_expect_eq(rc_gradcheck(p, loss, 2, (rc_node *[]){ a, b }, 1e-2f, &err), RC_OK);
                cr_expect(err < 2e-3, "case %d ta %d tb %d: gradient error %g", c, ta, tb, err);
                rc_plan_free(p);
                rc_graph_free(g);
            }
}

/* row_slice and row_concat (how rc_unroll takes step t out of [T*B, I] and stacks the
 * step outputs): forward against the rows themselves, backward by gradient check. */
Test(ops_grad, row_slice_and_row_concat)
{
    rc_graph *g = rc_graph_new();
    rc_node *a = rc_param(g, "a", 2, (int[]){ 6, 4 }), *b = rc_param(g, "b", 2, (int[]){ 2, 4 });
    rc_node *s1 = rc_row_slice(g, a, 1, 3), *s2 = rc_row_slice(g, a, 4, 2);
    rc_node *cat = rc_row_concat(g, 3, (rc_node *[]){ s2, b, s1 });   /* [2+2+3, 4] */
    float w[28];
    for (int i = 0; i < 28; i++) w[i] = 0.2f + 0.05f * (float)i;
    rc_node *loss = rc_sum(g, rc_mul(g, cat, rc_const(g, 2, (int[]){ 7, 4 }, w)));
    cr_assert_not_null(loss, "%s", rc_graph_error(g));
    float *pa = rc_param_data(a), *pb = rc_param_data(b);
    for (int i = 0; i < 24; i++) pa[i] = (float)i * 0.1f - 1.0f;
    for (int i = 0; i < 8; i++) pb[i] = (float)i * -0.3f + 0.5f;
    rc_plan *p = rc_plan_new(g, 2, (rc_node *[]){ loss, cat });
    cr_assert_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
    const float *c = rc_plan_value(p, cat);
    for (int j = 0; j < 4; j++) {
        for (int r = 0; r < 2; r++) cr_expect_eq(c[r * 4 + j], pa[(4 + r) * 4 + j]);
        for (int r = 0; r < 2; r++) cr_expect_eq(c[(2 + r) * 4 + j], pb[r * 4 + j]);
        for (int r = 0; r < 3; r++) cr_expect_eq(c[(4 + r) * 4 + j], pa[(1 + r) * 4 + j]);
    }
    double err = 1;
    cr_expect_eq(rc_gradcheck(p, loss, 2, (rc_node *[]){ a, b }, 1e-2f, &err), RC_OK);
    cr_expect(err < 2e-3, "gradient error %g", err);
    const float *ga = rc_plan_grad(p, a);   /* row 0 is in no slice: its gradient is 0 */
    for (int j = 0; j < 4; j++) cr_expect_eq(ga[j], 0.0f);
    rc_plan_free(p);
    /* a slice outside the rows and parts of other widths are errors */
    cr_expect_null(rc_row_slice(g, a, 5, 2));
    rc_graph_clear_error(g);
    cr_expect_null(rc_row_concat(g, 2, (rc_node *[]){ a, rc_param(g, "c", 2, (int[]){ 2, 3 }) }));
    cr_expect(strstr(rc_graph_error(g), "row_concat") != NULL, "%s", rc_graph_error(g));
    rc_graph_free(g);
}

/* ---- softsign: the op added through the op list only (ops/elementwise_ops.def) ------- */

Test(ops_fwd, softsign)
{
    static const float hard[] = { 0.0f, 1e-30f, -1e-30f, 1e30f, -1e30f, 3e38f, -3e38f, 1.0f };
    unary_forward("softsign", rc_softsign, ref_softsign, R_WIDE, hard, 8);
}

Test(ops_grad, softsign) { unary_grad("softsign", rc_softsign, R_KINK, GC_EPS); }

static int count_fused(rc_graph *g)
{
    int n = 0;
    for (int i = 0; i < rc_graph_node_count(g); i++) n += strcmp(rc_node_op(rc_graph_node(g, i)), "fused") == 0;
    return n;
}

/* softsign inside a chain the fusion pass turns into one fused node (its result a
 * register the reverse sweep recomputes, its operand one too), gradient-checked with
 * the pass and without it. |a| >= 0.05 and b >= 0.5 keep a and a*b off the kink at 0
 * by more than the difference step moves them. */
Test(ops_grad, softsign_fused_and_not)
{
    for (int fuse = 0; fuse < 2; fuse++)
        for (int k = 0; k < 2; k++) {
            tctx c;
            ctx_init(&c, fuse ? "softsign fused" : "softsign not fused", 2100u + (unsigned)k);
            c.flags = fuse ? 0u : RC_PLAN_NO_EW_FUSION;
            rc_node *a = ctx_input_grad(&c, "a", SHAPES[k], NULL, R_KINK, NULL);
            rc_node *b = ctx_param(&c, "b", SHAPES[k], NULL, R_POS, NULL);
            rc_node *y = rc_add(c.g, rc_mul(c.g, rc_softsign(c.g, a), b), rc_softsign(c.g, rc_mul(c.g, b, a)));
            rc_node *wrt[2] = { a, b };
            ctx_expect_grad(&c, y, 2, wrt, GC_EPS);
            if (fuse) cr_expect_geq(count_fused(c.g), 1, "%s: no fused node", c.what);
            else cr_expect_eq(count_fused(c.g), 0, "%s: a fused node", c.what);
            ctx_free(&c);
        }
}

/* ---- the op list (ops/op_list.def, ops/elementwise_ops.def) ---------------------------- */

/* Every row of the op table is complete, names are unique, and an elementwise op's
 * descriptor agrees with its entry in the list. */
Test(ops_list, table_rows)
{
    for (int op = 0; op < OP_COUNT; op++) {
        const op_desc *d = &op_table[op];
        cr_expect(d->name && d->shape && d->forward && d->backward && d->flops, "op %d: incomplete row", op);
        if (!d->name) continue;
        for (int q = 0; q < op; q++) cr_expect_str_neq(op_table[q].name, d->name, "ops %d and %d", q, op);
        if (!ew_is(op)) continue;
        cr_expect(d->flags & OPF_ELEMENTWISE, "%s: not flagged elementwise", d->name);
        cr_expect_eq(d->arity, ew_arity(op), "%s: arity", d->name);
        cr_expect_eq(!!(d->flags & OPF_NEEDS_OUT), !!(ew_reads(op) & R_O), "%s: OPF_NEEDS_OUT", d->name);
        cr_expect(fused_op_ok(op), "%s: not fusable", d->name);
    }
}

/* Each elementwise op's builder makes a node of that op, named as in the list. */
typedef struct listed_op {
    int op;
    const char *name;
    rc_node *(*u)(rc_graph *, rc_node *);
    rc_node *(*uc)(rc_graph *, rc_node *, float);
    rc_node *(*b)(rc_graph *, rc_node *, rc_node *);
} listed_op;
#define LISTED_U(ID, name) { OP_##ID, #name, rc_##name, NULL, NULL },
#define LISTED_UC(ID, name) { OP_##ID, #name, NULL, rc_##name, NULL },
#define LISTED_B(ID, name) { OP_##ID, #name, NULL, NULL, rc_##name },
static const listed_op LISTED[] = {
#define EW(ID, name, form, ...) LISTED_##form(ID, name)
#include "elementwise_ops.def"
#undef EW
};

Test(ops_list, builders)
{
    int n = 0;
    for (int op = 0; op < OP_COUNT; op++) n += ew_is(op);
    cr_expect_eq(n, (int)(sizeof LISTED / sizeof LISTED[0]));
    for (size_t k = 0; k < sizeof LISTED / sizeof LISTED[0]; k++) {
        const listed_op *l = &LISTED[k];
        rc_graph *g = rc_graph_new();
        int sh[2] = { 2, 3 };
        rc_node *a = rc_input(g, "a", RC_F32, 2, sh), *b = rc_input(g, "b", RC_F32, 2, sh);
        rc_node *y = l->u ? l->u(g, a) : l->uc ? l->uc(g, a, 0.5f) : l->b(g, a, b);
        cr_expect_not_null(y, "rc_%s: %s", l->name, rc_graph_error(g));
        if (y) cr_expect_str_eq(rc_node_op(y), l->name);
        cr_expect_str_eq(op_table[l->op].name, l->name);
        rc_graph_free(g);
    }
}

/* What an op's derivatives read (the list's reads) is all they read: with every
 * other argument NaN they give the same values. The fused backward computes only the
 * declared values, so an op reading more would see garbage there. */
static void expect_reads(const char *name, unsigned r, float (*da)(float, float, float, float),
                         float (*db)(float, float, float, float), float (*f)(float, float, float))
{
    static const float xs[] = { -2.5f, -0.7f, 0.3f, 1.9f }, ys[] = { 1.3f, -0.4f, 0.8f, 2.2f };
    const float c = 0.7f, nan = NAN;
    for (int i = 0; i < 4; i++) {
        float x = xs[i], y = ys[i], o = f(x, y, c);
        float xr = (r & R_X) ? x : nan, yr = (r & R_Y) ? y : nan, orr = (r & R_O) ? o : nan;
        float want[2] = { da(x, y, o, c), db(x, y, o, c) }, got[2] = { da(xr, yr, orr, c), db(xr, yr, orr, c) };
        for (int j = 0; j < 2; j++)
            cr_expect((isnan(want[j]) && isnan(got[j])) || want[j] == got[j],
                      "%s: derivative %d at x = %g, y = %g reads more than declared (%g with the others NaN, %g)",
                      name, j, (double)x, (double)y, (double)got[j], (double)want[j]);
    }
}

Test(ops_list, reads_declared)
{
#define EW(ID, name, form, shape, F, DA, DB, reads, ...) \
    expect_reads(#name, (unsigned)(reads), ew_da_##name, ew_db_##name, ew_f_##name);
#include "elementwise_ops.def"
#undef EW
}
