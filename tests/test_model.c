/* The model API (suite "model"): parameter inventory, gradients against central
 * differences, variable lengths, carry (truncated BPTT), given initial states,
 * streams, dropout, npy import/export, errors, and a small training run. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "recur.h"

/* ---- helpers ------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)   /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int rng_int(uint64_t *s, int n) { return (int)(rng_next(s) % (uint64_t)n); }
static float rng_unif(uint64_t *s) { return (float)((double)(rng_next(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0); }

static rc_model_opts mk_opts(int input, int vocab, int layers, int bidir, rc_head head, int out)
{
    rc_model_opts o = rc_model_defaults();
    o.input_size = input;
    o.vocab = vocab;
    o.layers = layers;
    o.bidirectional = bidir;
    o.head = head;
    o.output_size = out;
    return o;
}

/* A model of `cell` (which is freed here); asserts it is usable. */
static rc_model *new_model(rc_cell *cell, const rc_model_opts *o)
{
    cr_assert_not_null(cell, "cell constructor returned NULL");
    rc_model *m = rc_model_new(cell, o);
    rc_cell_free(cell);
    cr_assert_not_null(m, "rc_model_new returned NULL");
    cr_assert_eq(rc_model_status(m), RC_OK, "rc_model_new: %s", rc_model_error(m));
    return m;
}

static size_t param_size(rc_model *m, const char *name, float **data)
{
    int nd = 0, sh[RC_MAX_DIMS] = { 0 };
    float *p = rc_model_param(m, name, &nd, sh);
    if (data) *data = p;
    if (!p) return 0;
    size_t n = 1;
    for (int d = 0; d < nd; d++) n *= (size_t)sh[d];
    return n;
}

/* Batch data owned by the test. Time-major: row t*B+j is step t of sequence j. */
typedef struct bdata {
    rc_batch b;
    int32_t *tok, *len, *tgt;
    float *x, *y;
    int R, O, I;
} bdata;

static void bdata_alloc(bdata *d, const rc_model_opts *o, int T, int B, const int32_t *lengths)
{
    memset(d, 0, sizeof *d);
    int N = T * B;
    d->b.T = T;
    d->b.B = B;
    d->R = o->last_step_only ? B : N;
    d->O = o->output_size;
    d->I = o->input_size;
    if (o->vocab > 0) d->b.tokens = d->tok = calloc((size_t)N, sizeof *d->tok);
    else d->b.x = d->x = calloc((size_t)N * (size_t)d->I, sizeof *d->x);
    if (lengths) {
        d->b.lengths = d->len = malloc((size_t)B * sizeof *d->len);
        memcpy(d->len, lengths, (size_t)B * sizeof *d->len);
    }
    if (o->head == RC_HEAD_SOFTMAX) d->b.targets = d->tgt = calloc((size_t)d->R, sizeof *d->tgt);
    else d->b.y = d->y = calloc((size_t)d->R * (size_t)d->O, sizeof *d->y);
}

/* Random tokens or inputs, targets (classes, 0/1 labels or reals). */
static void bdata_make(bdata *d, const rc_model_opts *o, int T, int B, const int32_t *lengths, uint64_t seed)
{
    bdata_alloc(d, o, T, B, lengths);
    uint64_t s = seed;
    int N = T * B;
    if (d->tok)
        for (int i = 0; i < N; i++) d->tok[i] = rng_int(&s, o->vocab);
    if (d->x)
        for (int i = 0; i < N * d->I; i++) d->x[i] = rng_unif(&s);
    if (d->tgt)
        for (int r = 0; r < d->R; r++) d->tgt[r] = rng_int(&s, d->O);
    if (d->y)
        for (int i = 0; i < d->R * d->O; i++)
            d->y[i] = o->head == RC_HEAD_SIGMOID ? (float)(rng_next(&s) & 1) : rng_unif(&s);
}

/* Sequence j of src alone: B = 1, T = its length. */
static void bdata_slice(const bdata *src, const rc_model_opts *o, int j, bdata *d)
{
    int B = src->b.B, L = src->len ? src->len[j] : src->b.T;
    bdata_alloc(d, o, L, 1, NULL);
    for (int t = 0; t < L; t++) {
        if (d->tok) d->tok[t] = src->tok[t * B + j];
        if (d->x) memcpy(d->x + (size_t)t * (size_t)d->I, src->x + (size_t)(t * B + j) * (size_t)d->I,
                         (size_t)d->I * sizeof(float));
    }
    for (int r = 0; r < d->R; r++) {
        int sr = o->last_step_only ? j : r * B + j;
        if (d->tgt) d->tgt[r] = src->tgt[sr];
        if (d->y) memcpy(d->y + (size_t)r * (size_t)d->O, src->y + (size_t)sr * (size_t)d->O,
                         (size_t)d->O * sizeof(float));
    }
}

static void bdata_free(bdata *d)
{
    free(d->tok);
    free(d->len);
    free(d->tgt);
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}

static double must_forward(rc_model *m, const rc_batch *b)
{
    double loss = NAN;
    rc_status s = rc_model_forward(m, b, &loss);
    cr_assert_eq(s, RC_OK, "forward: %s (%s)", rc_status_name(s), rc_model_error(m));
    return loss;
}

static void must_backward(rc_model *m)
{
    rc_status s = rc_model_backward(m);
    cr_assert_eq(s, RC_OK, "backward: %s (%s)", rc_status_name(s), rc_model_error(m));
}

/* The normalisation denominator of the last forward. */
static double last_den(const rc_model *m, int B)
{
    double sum, count;
    rc_model_last_stats(m, &sum, &count);
    rc_loss_norm n = rc_model_options(m).norm;
    return n == RC_NORM_STEPS ? count : n == RC_NORM_SEQUENCES ? (double)B : 1.0;
}

/* A copy of n floats. */
static float *fdup(const float *p, size_t n)
{
    float *c = malloc((n ? n : 1) * sizeof *c);
    cr_assert_not_null(c);
    memcpy(c, p, n * sizeof *c);
    return c;
}

/* Every parameter's values (or gradients) by index, with the storage pointers. */
typedef struct snap {
    int n;
    float **data, **ptr;
    size_t *size;
} snap;

static void snap_take(rc_model *m, snap *s, int grads)
{
    s->n = rc_model_param_count(m);
    s->data = calloc((size_t)s->n, sizeof *s->data);
    s->ptr = calloc((size_t)s->n, sizeof *s->ptr);
    s->size = calloc((size_t)s->n, sizeof *s->size);
    for (int i = 0; i < s->n; i++) {
        const char *name = rc_model_param_name(m, i);
        cr_assert_not_null(name);
        s->size[i] = param_size(m, name, &s->ptr[i]);
        const float *src = grads ? rc_model_grad(m, name) : s->ptr[i];
        cr_assert_not_null(src, "no %s for parameter '%s'", grads ? "gradient" : "storage", name);
        s->data[i] = fdup(src, s->size[i]);
    }
}

static void snap_free(snap *s)
{
    for (int i = 0; i < s->n; i++) free(s->data[i]);
    free(s->data);
    free(s->ptr);
    free(s->size);
    memset(s, 0, sizeof *s);
}

/* 1 when the storage still holds exactly the snapshot. */
static int snap_unchanged(const snap *s)
{
    for (int i = 0; i < s->n; i++)
        if (memcmp(s->ptr[i], s->data[i], s->size[i] * sizeof(float)) != 0) return 0;
    return 1;
}

/* Copies every parameter of src into dst by name (same architecture). */
static void copy_params(rc_model *dst, rc_model *src)
{
    cr_assert_eq(rc_model_param_count(dst), rc_model_param_count(src));
    for (int i = 0; i < rc_model_param_count(src); i++) {
        const char *name = rc_model_param_name(src, i);
        float *a, *b;
        size_t na = param_size(src, name, &a), nb = param_size(dst, name, &b);
        cr_assert(na == nb && na > 0, "parameter '%s' differs between models", name);
        memcpy(b, a, na * sizeof(float));
    }
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

/* ---- 1. parameter inventory ---------------------------------------------------- */

static void expect_param(rc_model *m, const char *name, int nd, int d0, int d1)
{
    int ndim = -1, shape[RC_MAX_DIMS] = { 0 };
    float *p = rc_model_param(m, name, &ndim, shape);
    cr_expect_not_null(p, "parameter '%s' is missing", name);
    if (!p) return;
    cr_expect_eq(ndim, nd, "'%s': rank %d, expected %d", name, ndim, nd);
    cr_expect_eq(shape[0], d0, "'%s': dim 0 is %d, expected %d", name, shape[0], d0);
    if (nd == 2) cr_expect_eq(shape[1], d1, "'%s': dim 1 is %d, expected %d", name, shape[1], d1);
}

static void inventory_case(int bidir)
{
    const int V = 7, E = 5, H = 6, O = 4, L = 2, D = bidir ? 2 : 1;
    rc_model_opts o = mk_opts(E, V, L, bidir, RC_HEAD_SOFTMAX, O);
    rc_model *m = new_model(rc_cell_lstm(H, NULL), &o);
    static const char *gates[4] = { "i", "f", "g", "o" };
    int count = rc_model_param_count(m);
    cr_expect_eq(count, 1 + L * D * 12 + 2, "bidir %d: %d parameter tensors, expected %d", bidir, count,
                 1 + L * D * 12 + 2);
    expect_param(m, "embed", 2, V, E);
    size_t total = (size_t)V * E;
    for (int l = 0; l < L; l++)
        for (int d = 0; d < D; d++) {
            int in = l == 0 ? E : D * H;
            for (int k = 0; k < 4; k++) {
                char name[64];
                snprintf(name, sizeof name, "l%d%s.W_x%s", l, d ? "r" : "", gates[k]);
                expect_param(m, name, 2, H, in);
                snprintf(name, sizeof name, "l%d%s.W_h%s", l, d ? "r" : "", gates[k]);
                expect_param(m, name, 2, H, H);
                snprintf(name, sizeof name, "l%d%s.b_%s", l, d ? "r" : "", gates[k]);
                expect_param(m, name, 1, H, 0);
            }
            total += (size_t)4 * ((size_t)H * in + (size_t)H * H + (size_t)H);
        }
    expect_param(m, "out.W", 2, O, D * H);
    expect_param(m, "out.b", 1, O, 0);
    total += (size_t)O * D * H + (size_t)O;
    cr_expect_eq(rc_model_param_total(m), total, "bidir %d: param_total %zu, expected %zu", bidir,
                 rc_model_param_total(m), total);
    /* every listed name is one of the above, once */
    for (int i = 0; i < count; i++) {
        const char *n = rc_model_param_name(m, i);
        cr_assert_not_null(n);
        int ok = !strcmp(n, "embed") || !strcmp(n, "out.W") || !strcmp(n, "out.b");
        for (int l = 0; l < L && !ok; l++) {
            char p0[16], p1[16];
            snprintf(p0, sizeof p0, "l%d.", l);
            snprintf(p1, sizeof p1, "l%dr.", l);
            ok = !strncmp(n, p0, strlen(p0)) || (bidir && !strncmp(n, p1, strlen(p1)));
        }
        cr_expect(ok, "unexpected parameter name '%s'", n);
        for (int j = 0; j < i; j++)
            cr_expect(strcmp(n, rc_model_param_name(m, j)) != 0, "parameter '%s' listed twice", n);
    }
    cr_expect_null(rc_model_param_name(m, count));
    cr_expect_null(rc_model_param_name(m, -1));
    cr_expect_null(rc_model_param(m, "l9.W_xi", NULL, NULL));
    cr_expect_null(rc_model_param(m, NULL, NULL, NULL));
    cr_expect_null(rc_model_grad(m, "out.W"), "a gradient before any backward");
    /* initial values: forget bias 1, other biases 0, out.W in U(-1/sqrt(F), 1/sqrt(F)) */
    float *bf, *bi, *W;
    size_t nbf = param_size(m, "l0.b_f", &bf), nbi = param_size(m, "l0.b_i", &bi), nw = param_size(m, "out.W", &W);
    for (size_t i = 0; i < nbf; i++) cr_expect_eq(bf[i], 1.0f, "l0.b_f[%zu] = %g, expected the forget bias 1", i, bf[i]);
    for (size_t i = 0; i < nbi; i++) cr_expect_eq(bi[i], 0.0f, "l0.b_i[%zu] = %g", i, bi[i]);
    double lim = 1.0 / sqrt((double)(D * H)) + 1e-6, wmax = 0;
    for (size_t i = 0; i < nw; i++) wmax = fmax(wmax, fabs(W[i]));
    cr_expect(wmax <= lim && wmax > 0, "out.W max |w| = %g, limit %g", wmax, lim);
    rc_model_opts back = rc_model_options(m);
    cr_expect(back.layers == L && back.vocab == V && back.bidirectional == bidir && back.output_size == O);
    rc_model_free(m);
}

Test(model, param_inventory)
{
    inventory_case(0);
    inventory_case(1);
    /* learned initial states add "l<k>.init_<state>" [H] */
    rc_model_opts o = mk_opts(3, 0, 2, 0, RC_HEAD_LINEAR, 2);
    o.learned_init = 1;
    rc_model *m = new_model(rc_cell_lstm(4, NULL), &o);
    expect_param(m, "l0.init_h", 1, 4, 0);
    expect_param(m, "l0.init_c", 1, 4, 0);
    expect_param(m, "l1.init_h", 1, 4, 0);
    cr_expect_eq(rc_model_param_count(m), 2 * 12 + 2 * 2 + 2);
    rc_model_free(m);
    /* GRU (reset after): W_x{r,z,n}, W_h{r,z,n}, b_r, b_z, b_xn, b_hn */
    o = mk_opts(3, 0, 1, 0, RC_HEAD_LINEAR, 2);
    m = new_model(rc_cell_gru(5, RC_GRU_RESET_AFTER), &o);
    expect_param(m, "l0.W_xr", 2, 5, 3);
    expect_param(m, "l0.W_hn", 2, 5, 5);
    expect_param(m, "l0.b_xn", 1, 5, 0);
    expect_param(m, "l0.b_hn", 1, 5, 0);
    cr_expect_eq(rc_model_param_total(m), (size_t)(3 * (15 + 25) + 4 * 5 + 2 * 5 + 2));
    rc_model_free(m);
}

/* ---- 2. gradients against central differences -------------------------------------- */

/* The loss of one forward, from the double-precision sum of per-target losses. */
static double eval_loss(rc_model *m, const rc_batch *b)
{
    double loss = must_forward(m, b), sum, count;
    rc_model_last_stats(m, &sum, &count);
    double l = sum / last_den(m, b->B);
    cr_assert(fabs(l - loss) <= 1e-5 * (1 + fabs(l)), "forward's loss %.9g != stats sum / norm %.9g", loss, l);
    return l;
}

/* Compares rc_model_grad for several elements of every parameter with Richardson-
 * extrapolated central differences (eps 1e-2). */
static void gradcheck(rc_model *m, const rc_batch *b, const char *tag)
{
    /* larger recurrent and input weights make every parameter matter: the gradients
     * then stand well above the float32 rounding noise of the loss */
    for (int i = 0; i < rc_model_param_count(m); i++) {
        const char *nm = rc_model_param_name(m, i);
        if (!strstr(nm, ".W_")) continue;
        float *w;
        size_t n = param_size(m, nm, &w);
        for (size_t k = 0; k < n; k++) w[k] *= 3.0f;
    }
    must_forward(m, b);
    must_backward(m);
    snap g;
    snap_take(m, &g, 1);
    const double h = 1e-2;
    double overall = 0;
    for (int i = 0; i < g.n; i++) {
        const char *name = rc_model_param_name(m, i);
        float *p = g.ptr[i];
        size_t n = g.size[i], K = n < 6 ? n : 6, stride = n / K;
        double maxd = 0, maxn = 0, worst_g = 0, worst_n = 0;
        size_t worst = 0;
        for (size_t k = 0; k < K; k++) {
            size_t idx = k * stride + (k * 3) % stride;
            float orig = p[idx];
            double D[2];
            for (int r = 0; r < 2; r++) {
                double e = r ? h / 2 : h;
                float xp = (float)(orig + e), xm = (float)(orig - e);
                p[idx] = xp;
                double fp = eval_loss(m, b);
                p[idx] = xm;
                double fm = eval_loss(m, b);
                p[idx] = orig;
                D[r] = (fp - fm) / ((double)xp - (double)xm);
            }
            double num = (4 * D[1] - D[0]) / 3, diff = fabs(num - g.data[i][idx]);
            maxn = fmax(maxn, fabs(num));
            if (diff > maxd) {
                maxd = diff;
                worst = idx;
                worst_g = g.data[i][idx];
                worst_n = num;
            }
        }
        overall = fmax(overall, maxn);
        double tol = fmax(2e-3 * maxn, 1e-5);
        cr_expect(maxd <= tol, "%s: '%s' max|g - num| = %.3g > %.3g (max|num| %.3g; at [%zu] g = %.6g, num = %.6g)",
                  tag, name, maxd, tol, maxn, worst, worst_g, worst_n);
    }
    cr_expect(overall > 1e-3, "%s: all numerical gradients are ~0 (%g): the check is vacuous", tag, overall);
    snap_free(&g);
}

Test(model, gradients_softmax)
{
    rc_model_opts o = mk_opts(3, 5, 2, 1, RC_HEAD_SOFTMAX, 3);
    rc_model *m = new_model(rc_cell_lstm(4, NULL), &o);
    const int32_t len[8] = { 5, 3, 2, 5, 4, 1, 5, 3 };
    bdata d;
    bdata_make(&d, &o, 5, 8, len, 11);
    d.tgt[3] = -1;   /* an ignored target at a valid step */
    gradcheck(m, &d.b, "softmax, bidirectional LSTM");
    bdata_free(&d);
    rc_model_free(m);
}

Test(model, gradients_sigmoid)
{
    rc_model_opts o = mk_opts(3, 0, 2, 1, RC_HEAD_SIGMOID, 2);
    rc_model *m = new_model(rc_cell_lstm(4, NULL), &o);
    const int32_t len[8] = { 2, 5, 4, 5, 1, 3, 5, 4 };
    bdata d;
    bdata_make(&d, &o, 5, 8, len, 12);
    gradcheck(m, &d.b, "sigmoid, bidirectional LSTM");
    bdata_free(&d);
    rc_model_free(m);
}

Test(model, gradients_linear)
{
    rc_model_opts o = mk_opts(3, 6, 2, 1, RC_HEAD_LINEAR, 2);
    o.norm = RC_NORM_SEQUENCES;
    rc_model *m = new_model(rc_cell_lstm(4, NULL), &o);
    const int32_t len[8] = { 4, 5, 1, 5, 2, 3, 5, 4 };
    bdata d;
    bdata_make(&d, &o, 5, 8, len, 13);
    gradcheck(m, &d.b, "linear, bidirectional LSTM");
    bdata_free(&d);
    rc_model_free(m);
}

Test(model, gradients_last_step_only)
{
    rc_model_opts o = mk_opts(3, 5, 2, 1, RC_HEAD_SOFTMAX, 3);
    o.last_step_only = 1;
    rc_model *m = new_model(rc_cell_lstm(4, NULL), &o);
    const int32_t len[8] = { 3, 5, 2, 5, 1, 4, 5, 2 };
    bdata d;
    bdata_make(&d, &o, 5, 8, len, 14);
    gradcheck(m, &d.b, "last step only, softmax, bidirectional LSTM");
    bdata_free(&d);
    rc_model_free(m);

    o = mk_opts(3, 0, 2, 1, RC_HEAD_LINEAR, 2);
    o.last_step_only = 1;
    o.norm = RC_NORM_SEQUENCES;
    m = new_model(rc_cell_lstm(4, NULL), &o);
    bdata_make(&d, &o, 5, 8, len, 15);
    gradcheck(m, &d.b, "last step only, linear, bidirectional LSTM");
    bdata_free(&d);
    rc_model_free(m);
}

Test(model, gradients_gru_learned_init)
{
    rc_model_opts o = mk_opts(3, 5, 2, 0, RC_HEAD_SOFTMAX, 4);
    o.learned_init = 1;
    rc_model *m = new_model(rc_cell_gru(4, RC_GRU_RESET_AFTER), &o);
    /* learned initial states start at zero: move them so their gradient paths matter */
    float *ih;
    size_t n = param_size(m, "l0.init_h", &ih);
    cr_assert(n == 4, "l0.init_h missing");
    for (size_t i = 0; i < n; i++) ih[i] = 0.3f * (float)i - 0.4f;
    const int32_t len[6] = { 4, 3, 1, 4, 2, 4 };
    bdata d;
    bdata_make(&d, &o, 4, 6, len, 16);
    gradcheck(m, &d.b, "GRU, learned initial states");
    bdata_free(&d);
    rc_model_free(m);
}

/* ---- loss against the head's outputs --------------------------------------------- */

static double softplus(double z) { return fmax(z, 0) + log1p(exp(-fabs(z))); }

/* The loss recomputed from rc_model_output, the batch and the documented rules. */
static void check_loss_case(rc_model_opts o, uint64_t seed)
{
    rc_model *m = new_model(rc_cell_lstm(4, NULL), &o);
    const int32_t len[3] = { 4, 2, 3 };
    bdata d;
    bdata_make(&d, &o, 4, 3, len, seed);
    if (d.tgt) d.tgt[1] = -1;
    double loss = must_forward(m, &d.b), sum = 0, count = 0, s2, c2;
    const float *z = rc_model_output(m);
    cr_assert_not_null(z);
    int B = 3, O = o.output_size;
    for (int r = 0; r < d.R; r++) {
        int j = r % B, t = r / B;
        if (!o.last_step_only && t >= len[j]) continue;
        const float *zr = z + (size_t)r * O;
        double l = 0;
        if (o.head == RC_HEAD_SOFTMAX) {
            if (d.tgt[r] < 0) continue;
            double mx = zr[0], se = 0;
            for (int k = 1; k < O; k++) mx = fmax(mx, zr[k]);
            for (int k = 0; k < O; k++) se += exp(zr[k] - mx);
            l = mx + log(se) - zr[d.tgt[r]];
        } else if (o.head == RC_HEAD_SIGMOID) {
            for (int k = 0; k < O; k++) l += softplus(zr[k]) - d.y[r * O + k] * zr[k];
        } else {
            for (int k = 0; k < O; k++) l += (zr[k] - d.y[r * O + k]) * (zr[k] - d.y[r * O + k]);
            l /= O;
        }
        sum += l;
        count += 1;
    }
    double want = sum / (o.norm == RC_NORM_STEPS ? count : o.norm == RC_NORM_SEQUENCES ? B : 1);
    rc_model_last_stats(m, &s2, &c2);
    cr_expect_eq(c2, count, "head %d last_step_only %d: count %g, expected %g", o.head, o.last_step_only, c2, count);
    cr_expect(fabs(s2 - sum) <= 1e-5 * (1 + sum), "head %d: sum %.8g, expected %.8g", o.head, s2, sum);
    cr_expect(fabs(loss - want) <= 1e-5 * (1 + want), "head %d norm %d last_step_only %d: loss %.8g, expected %.8g",
              o.head, o.norm, o.last_step_only, loss, want);
    bdata_free(&d);
    rc_model_free(m);
}

Test(model, loss_matches_outputs)
{
    for (int head = 0; head < 3; head++)
        for (int norm = 0; norm < 3; norm++)
            for (int lso = 0; lso < 2; lso++) {
                rc_model_opts o = mk_opts(3, head == 1 ? 0 : 6, 1, lso, (rc_head)head, 3);
                o.norm = (rc_loss_norm)norm;
                o.last_step_only = lso;
                check_loss_case(o, 100 + (uint64_t)(head * 6 + norm * 2 + lso));
            }
}

/* ---- 3. variable lengths ---------------------------------------------------------- */

static void varlen_case(rc_model_opts o, rc_cell *cell, const char *tag)
{
    enum { T = 6, B = 3 };
    const int32_t len[B] = { 6, 2, 4 };
    rc_model *m = new_model(cell, &o);
    int O = o.output_size;
    bdata d;
    bdata_make(&d, &o, T, B, len, 21);
    must_forward(m, &d.b);
    must_backward(m);
    double sum_p, count_p, den_p = last_den(m, B);
    rc_model_last_stats(m, &sum_p, &count_p);
    float *out_p = fdup(rc_model_output(m), (size_t)d.R * O);
    snap gp;
    snap_take(m, &gp, 1);
    double **acc = calloc((size_t)gp.n, sizeof *acc);
    for (int i = 0; i < gp.n; i++) acc[i] = calloc(gp.size[i], sizeof **acc);
    double sum_s = 0, count_s = 0;
    for (int j = 0; j < B; j++) {
        bdata s;
        bdata_slice(&d, &o, j, &s);
        must_forward(m, &s.b);
        must_backward(m);
        double sj, cj, den = last_den(m, 1);
        rc_model_last_stats(m, &sj, &cj);
        sum_s += sj;
        count_s += cj;
        const float *out = rc_model_output(m);
        for (int r = 0; r < s.R; r++) {
            int pr = o.last_step_only ? j : r * B + j;
            double dd = max_abs_diff(out + (size_t)r * O, out_p + (size_t)pr * O, (size_t)O);
            cr_expect(dd <= 1e-5, "%s: sequence %d row %d: padded output differs by %g from the lone run", tag, j, r, dd);
        }
        for (int i = 0; i < gp.n; i++) {
            const float *gj = rc_model_grad(m, rc_model_param_name(m, i));
            cr_assert_not_null(gj);
            for (size_t k = 0; k < gp.size[i]; k++) acc[i][k] += (double)gj[k] * den;
        }
        bdata_free(&s);
    }
    cr_expect_eq(count_p, count_s, "%s: padded count %g, sum of lone counts %g", tag, count_p, count_s);
    cr_expect(fabs(sum_p - sum_s) <= 1e-5 * (1 + fabs(sum_s)), "%s: padded loss sum %.8g, lone runs %.8g", tag, sum_p,
              sum_s);
    for (int i = 0; i < gp.n; i++) {
        double maxd = 0, maxr = 0;
        for (size_t k = 0; k < gp.size[i]; k++) {
            maxd = fmax(maxd, fabs(gp.data[i][k] * den_p - acc[i][k]));
            maxr = fmax(maxr, fabs(acc[i][k]));
        }
        cr_expect(maxd <= 1e-4 * maxr + 1e-6, "%s: gradient of loss sum for '%s' differs by %g (max %g)", tag,
                  rc_model_param_name(m, i), maxd, maxr);
        free(acc[i]);
    }
    free(acc);
    snap_free(&gp);
    free(out_p);
    bdata_free(&d);
    rc_model_free(m);
}

Test(model, variable_lengths)
{
    rc_model_opts o = mk_opts(3, 5, 2, 0, RC_HEAD_SOFTMAX, 4);
    o.norm = RC_NORM_SEQUENCES;
    varlen_case(o, rc_cell_lstm(4, NULL), "unidirectional LSTM, per-sequence norm");
}

Test(model, variable_lengths_bidirectional)
{
    rc_model_opts o = mk_opts(3, 5, 2, 1, RC_HEAD_SOFTMAX, 4);
    varlen_case(o, rc_cell_lstm(4, NULL), "bidirectional LSTM, per-step norm");
    o = mk_opts(3, 0, 2, 1, RC_HEAD_LINEAR, 2);
    o.last_step_only = 1;
    varlen_case(o, rc_cell_gru(4, RC_GRU_RESET_AFTER), "bidirectional GRU, last step only");
}

/* ---- 4. carry (truncated BPTT) --------------------------------------------------------- */

static void expect_zero_states(rc_model *m, int L, const char *when)
{
    static const char *st[2] = { "h", "c" };
    for (int l = 0; l < L; l++)
        for (int s = 0; s < 2; s++) {
            int B = 0;
            const float *v = rc_model_get_state(m, l, 0, st[s], &B);
            cr_assert_not_null(v, "%s: no state %d %s", when, l, st[s]);
            for (int i = 0; i < B * 5; i++) cr_expect_eq(v[i], 0.0f, "%s: state l%d.%s[%d] = %g", when, l, st[s], i, v[i]);
        }
}

Test(model, carry_truncated_bptt)
{
    enum { T = 12, W = 4, B = 2, O = 3, H = 5 };
    rc_model_opts o = mk_opts(4, 6, 2, 0, RC_HEAD_SOFTMAX, O);
    rc_model *m = new_model(rc_cell_lstm(H, NULL), &o);
    bdata d;
    bdata_make(&d, &o, T, B, NULL, 31);
    must_forward(m, &d.b);
    float *full = fdup(rc_model_output(m), (size_t)T * B * O);
    expect_zero_states(m, 2, "carry off");   /* without carry the states are left alone */

    rc_model_set_carry(m, 1);
    rc_model_reset_state(m);
    for (int w = 0; w < T / W; w++) {
        rc_batch wb = { .T = W, .B = B, .tokens = d.tok + w * W * B, .targets = d.tgt + w * W * B };
        must_forward(m, &wb);
        double dd = max_abs_diff(rc_model_output(m), full + (size_t)w * W * B * O, (size_t)W * B * O);
        cr_expect(dd <= 1e-5, "window %d: carried outputs differ from the T=%d run by %g", w, T, dd);
    }
    float *hw[2], *cw[2];
    for (int l = 0; l < 2; l++) {
        int sb = 0;
        const float *v = rc_model_get_state(m, l, 0, "h", &sb);
        cr_assert(v && sb == B, "get_state after a carried forward: %p B=%d", (const void *)v, sb);
        hw[l] = fdup(v, (size_t)B * H);
        cw[l] = fdup(rc_model_get_state(m, l, 0, "c", NULL), (size_t)B * H);
    }
    /* reset: zero states, and the first window again gives the fresh outputs */
    rc_model_reset_state(m);
    expect_zero_states(m, 2, "after reset");
    rc_batch w0 = { .T = W, .B = B, .tokens = d.tok, .targets = d.tgt };
    must_forward(m, &w0);
    cr_expect(max_abs_diff(rc_model_output(m), full, (size_t)W * B * O) <= 1e-5, "after reset the first window differs");
    /* the final states of one carried T=12 forward equal those after the windows */
    rc_model_reset_state(m);
    must_forward(m, &d.b);
    for (int l = 0; l < 2; l++) {
        double dh = max_abs_diff(rc_model_get_state(m, l, 0, "h", NULL), hw[l], (size_t)B * H);
        double dc = max_abs_diff(rc_model_get_state(m, l, 0, "c", NULL), cw[l], (size_t)B * H);
        cr_expect(dh <= 1e-5 && dc <= 1e-5, "layer %d: final state after windows differs from T=12 (h %g, c %g)", l, dh, dc);
        free(hw[l]);
        free(cw[l]);
    }
    /* the carried state is used: a second T=12 forward differs from the first */
    must_forward(m, &d.b);
    cr_expect(max_abs_diff(rc_model_output(m), full, (size_t)T * B * O) > 1e-4, "carry had no effect");
    free(full);
    bdata_free(&d);
    rc_model_free(m);
}

/* ---- 5. given initial states -------------------------------------------------------- */

Test(model, set_state)
{
    enum { T = 5, B = 2, O = 3, H = 4 };
    rc_model_opts o = mk_opts(3, 0, 2, 0, RC_HEAD_LINEAR, O);
    rc_model *m = new_model(rc_cell_lstm(H, NULL), &o);
    bdata d;
    bdata_make(&d, &o, T, B, NULL, 41);
    must_forward(m, &d.b);
    float *base = fdup(rc_model_output(m), (size_t)T * B * O);
    float st[B * H], zeros[B * H];
    uint64_t s = 5;
    for (int i = 0; i < B * H; i++) {
        st[i] = rng_unif(&s);
        zeros[i] = 0;
    }
    static const struct { int layer; const char *name; } cases[] = { { 0, "h" }, { 0, "c" }, { 1, "h" }, { 1, "c" } };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        cr_assert_eq(rc_model_set_state(m, cases[c].layer, 0, cases[c].name, B, st), RC_OK, "%s", rc_model_error(m));
        int gb = 0;
        const float *g = rc_model_get_state(m, cases[c].layer, 0, cases[c].name, &gb);
        cr_expect(g && gb == B && memcmp(g, st, sizeof st) == 0, "get_state does not return the state set");
        must_forward(m, &d.b);
        double dd = max_abs_diff(rc_model_output(m), base, (size_t)T * B * O);
        cr_expect(dd > 1e-4, "setting l%d %s did not change the outputs (%g)", cases[c].layer, cases[c].name, dd);
        cr_assert_eq(rc_model_set_state(m, cases[c].layer, 0, cases[c].name, B, zeros), RC_OK);
        must_forward(m, &d.b);
        dd = max_abs_diff(rc_model_output(m), base, (size_t)T * B * O);
        cr_expect(dd == 0, "zero states do not restore the outputs (%g)", dd);
    }
    free(base);
    bdata_free(&d);
    rc_model_free(m);
}

Test(model, set_state_bad_arguments)
{
    rc_model_opts o = mk_opts(3, 0, 2, 0, RC_HEAD_LINEAR, 2);
    float st[8] = { 0 };
    struct { int layer, dir; const char *name; int B; const float *data; } bad[] = {
        { 2, 0, "h", 2, st }, { -1, 0, "h", 2, st }, { 0, 1, "h", 2, st }, { 0, 0, "q", 2, st },
        { 0, 0, NULL, 2, st }, { 0, 0, "h", 0, st }, { 0, 0, "h", 2, NULL },
    };
    for (size_t c = 0; c < sizeof bad / sizeof *bad; c++) {
        rc_model *m = new_model(rc_cell_lstm(4, NULL), &o);
        rc_status s = rc_model_set_state(m, bad[c].layer, bad[c].dir, bad[c].name, bad[c].B, bad[c].data);
        cr_expect_eq(s, RC_ERR_ARG, "case %zu: set_state returned %s", c, rc_status_name(s));
        cr_expect(strlen(rc_model_error(m)) > 0, "case %zu: no message", c);
        if (c < 5)   /* no such slot */
            cr_expect_null(rc_model_get_state(m, bad[c].layer, bad[c].dir, bad[c].name ? bad[c].name : "zz", NULL),
                           "case %zu: get_state found a state", c);
        /* the model still takes a good state */
        cr_expect_eq(rc_model_set_state(m, 1, 0, "c", 2, st), RC_OK, "case %zu: after the bad call: %s", c,
                     rc_model_error(m));
        rc_model_free(m);
    }
}

/* ---- 6. streams ------------------------------------------------------------------------ */

static void stream_case(rc_model *m, const rc_model_opts *o, int B, uint64_t seed)
{
    enum { T = 7 };
    int O = o->output_size;
    bdata d;
    bdata_make(&d, o, T, B, NULL, seed);
    rc_model_set_training(m, 0);
    must_forward(m, &d.b);
    float *full = fdup(rc_model_output(m), (size_t)T * B * O);
    for (int pass = 0; pass < 2; pass++) {
        rc_model_set_training(m, pass);   /* streams are inference: training mode must not matter */
        rc_status s = rc_model_stream_reset(m, B);
        cr_assert_eq(s, RC_OK, "stream_reset(%d): %s", B, rc_model_error(m));
        for (int t = 0; t < T; t++) {
            const float *out = NULL;
            s = rc_model_stream_step(m, d.x ? d.x + (size_t)t * B * o->input_size : NULL, d.tok ? d.tok + t * B : NULL,
                                     &out);
            cr_assert_eq(s, RC_OK, "stream_step t=%d: %s", t, rc_model_error(m));
            cr_assert_not_null(out);
            double dd = max_abs_diff(out, full + (size_t)t * B * O, (size_t)B * O);
            cr_expect(dd <= 1e-5, "B=%d pass %d step %d: stream output differs from forward by %g", B, pass, t, dd);
        }
    }
    free(full);
    bdata_free(&d);
}

Test(model, stream_matches_forward)
{
    rc_model_opts o = mk_opts(4, 6, 2, 0, RC_HEAD_SOFTMAX, 5);
    o.dropout = 0.25f;
    rc_model *m = new_model(rc_cell_lstm(6, NULL), &o);
    stream_case(m, &o, 1, 51);
    stream_case(m, &o, 3, 52);
    stream_case(m, &o, 1, 53);   /* back to B = 1 after B = 3 */
    rc_model_free(m);

    o = mk_opts(3, 0, 1, 0, RC_HEAD_LINEAR, 2);
    m = new_model(rc_cell_gru(5, RC_GRU_RESET_BEFORE), &o);
    stream_case(m, &o, 1, 54);
    stream_case(m, &o, 3, 55);
    rc_model_free(m);

    o = mk_opts(3, 5, 1, 1, RC_HEAD_SOFTMAX, 2);
    m = new_model(rc_cell_lstm(4, NULL), &o);
    cr_expect_eq(rc_model_stream_reset(m, 1), RC_ERR_STATE, "a bidirectional model must refuse streams");
    cr_expect(strlen(rc_model_error(m)) > 0);
    rc_model_free(m);
}

/* A last-step-only model streamed: at each step, the head applied to that step. */
Test(model, stream_last_step_only)
{
    enum { T = 4, B = 3, O = 3 };
    rc_model_opts o = mk_opts(3, 5, 1, 0, RC_HEAD_SOFTMAX, O);
    o.last_step_only = 1;
    rc_model *m = new_model(rc_cell_lstm(4, NULL), &o);
    rc_model_set_training(m, 0);
    bdata d;
    bdata_make(&d, &o, T, B, NULL, 56);
    for (int sb = 1; sb <= B; sb += B - 1) {
        cr_assert_eq(rc_model_stream_reset(m, sb), RC_OK, "stream_reset(%d): %s", sb, rc_model_error(m));
        for (int t = 0; t < T; t++) {
            int32_t tk[B];
            for (int j = 0; j < sb; j++) tk[j] = d.tok[t * B + j];
            const float *out = NULL;
            rc_status s = rc_model_stream_step(m, NULL, tk, &out);
            cr_assert_eq(s, RC_OK, "B=%d stream_step t=%d on a last-step-only model: %s", sb, t, rc_model_error(m));
            float *so = fdup(out, (size_t)sb * O);
            /* forward over steps 0..t: its [B, O] output is the last step's */
            int32_t *tok = malloc(sizeof(int32_t) * (size_t)(t + 1) * sb);
            for (int u = 0; u <= t; u++)
                for (int j = 0; j < sb; j++) tok[u * sb + j] = d.tok[u * B + j];
            rc_batch fb = { .T = t + 1, .B = sb, .tokens = tok, .targets = d.tgt };
            must_forward(m, &fb);
            double dd = max_abs_diff(rc_model_output(m), so, (size_t)sb * O);
            cr_expect(dd <= 1e-5, "B=%d step %d: stream differs from the last-step forward by %g", sb, t, dd);
            free(tok);
            free(so);
        }
    }
    bdata_free(&d);
    rc_model_free(m);
}

/* ---- 7. dropout --------------------------------------------------------------------------- */

Test(model, dropout_modes)
{
    enum { T = 6, B = 3, O = 4 };
    rc_model_opts o = mk_opts(5, 7, 2, 1, RC_HEAD_SOFTMAX, O);
    o.dropout = 0.3f;
    o.seed = 5;
    rc_model *m = new_model(rc_cell_lstm(6, NULL), &o);
    rc_model_opts o0 = o;
    o0.dropout = 0;
    o0.seed = 99;
    rc_model *m0 = new_model(rc_cell_lstm(6, NULL), &o0);
    copy_params(m0, m);
    const int32_t len[B] = { 6, 4, 5 };
    bdata d;
    bdata_make(&d, &o, T, B, len, 61);
    size_t n = (size_t)T * B * O;

    double l1 = must_forward(m, &d.b);
    float *o1 = fdup(rc_model_output(m), n);
    must_backward(m);
    double l2 = must_forward(m, &d.b);
    cr_expect(l1 != l2, "training: two forwards give the same loss %g (masks did not advance)", l1);
    cr_expect(max_abs_diff(rc_model_output(m), o1, n) > 1e-4, "training: two forwards give the same outputs");
    double l0 = must_forward(m0, &d.b);
    cr_expect(l1 != l0 && l2 != l0, "training mode equals the dropout-free model");

    rc_model_set_training(m, 0);
    double e1 = must_forward(m, &d.b);
    float *oe = fdup(rc_model_output(m), n);
    double e2 = must_forward(m, &d.b);
    cr_expect(e1 == e2 && memcmp(rc_model_output(m), oe, n * sizeof(float)) == 0, "eval: two forwards differ");
    cr_expect(fabs(e1 - l0) <= 1e-6 * (1 + l0), "eval loss %.8g != dropout-free %.8g", e1, l0);
    double dd = max_abs_diff(rc_model_output(m), rc_model_output(m0), n);
    cr_expect(dd <= 1e-6, "eval outputs differ from the dropout-free model by %g", dd);

    /* the masks depend on the seed and the run count only: a twin model repeats them */
    rc_model *twin = new_model(rc_cell_lstm(6, NULL), &o);
    double t1 = must_forward(twin, &d.b), t2 = must_forward(twin, &d.b);
    cr_expect(t1 == l1 && t2 == l2, "a model with the same seed gives other dropout losses (%g %g vs %g %g)", t1, t2,
              l1, l2);
    free(o1);
    free(oe);
    bdata_free(&d);
    rc_model_free(twin);
    rc_model_free(m0);
    rc_model_free(m);
}

/* ---- 8. npy ------------------------------------------------------------------------------- */

static void rm_dir(const char *dir)
{
    DIR *dp = opendir(dir);
    if (dp) {
        struct dirent *e;
        char path[4096];
        while ((e = readdir(dp)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(dp);
    }
    rmdir(dir);
}

static void copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    cr_assert(in && out, "copy %s -> %s", src, dst);
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0) cr_assert_eq(fwrite(buf, 1, k, out), k);
    fclose(in);
    fclose(out);
}

/* A fresh directory holding copies of every parameter file of m from src. */
static void copy_params_dir(rc_model *m, const char *src, char *dst)
{
    strcpy(dst, "/tmp/recur-model-XXXXXX");
    cr_assert_not_null(mkdtemp(dst));
    for (int i = 0; i < rc_model_param_count(m); i++) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/%s.npy", src, rc_model_param_name(m, i));
        snprintf(b, sizeof b, "%s/%s.npy", dst, rc_model_param_name(m, i));
        copy_file(a, b);
    }
}

/* A valid float32 npy file of shape [d0, d1]. */
static void write_npy(const char *path, int d0, int d1)
{
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", d0, d1);
    int hl = n + 1;
    while ((10 + hl) % 64) hl++;
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 255), (unsigned char)(hl >> 8) };
    fwrite(pre, 1, 10, f);
    fwrite(dict, 1, (size_t)n, f);
    for (int i = n; i < hl - 1; i++) fputc(' ', f);
    fputc('\n', f);
    float v = 0.5f;
    for (int i = 0; i < d0 * d1; i++) fwrite(&v, sizeof v, 1, f);
    fclose(f);
}

/* Loading from bad_dir fails naming `file`, and changes no parameter. */
static void expect_load_fails(const rc_model_opts *o, const char *bad_dir, const char *file, const char *what)
{
    rc_model_opts o7 = *o;
    o7.seed = 7;
    rc_model *m = new_model(rc_cell_lstm(4, NULL), &o7);
    snap before;
    snap_take(m, &before, 0);
    rc_status s = rc_model_load_npy(m, bad_dir);
    cr_expect_neq(s, RC_OK, "%s: load_npy succeeded", what);
    cr_expect(strstr(rc_model_error(m), file) != NULL, "%s: the message does not name %s: \"%s\"", what, file,
              rc_model_error(m));
    cr_expect(snap_unchanged(&before), "%s: a failed load changed parameters", what);
    snap_free(&before);
    rc_model_free(m);
}

Test(model, npy_save_load)
{
    enum { T = 5, B = 2 };
    rc_model_opts o = mk_opts(3, 6, 2, 1, RC_HEAD_SOFTMAX, 3);
    rc_model *m = new_model(rc_cell_lstm(4, NULL), &o);
    char dir[64] = "/tmp/recur-model-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(rc_model_save_npy(m, dir), RC_OK, "save_npy: %s", rc_model_error(m));

    rc_model_opts o2 = o;
    o2.seed = 12345;
    rc_model *m2 = new_model(rc_cell_lstm(4, NULL), &o2);
    bdata d;
    bdata_make(&d, &o, T, B, NULL, 71);
    must_forward(m, &d.b);
    float *ref = fdup(rc_model_output(m), (size_t)T * B * 3);
    must_forward(m2, &d.b);
    cr_expect(max_abs_diff(rc_model_output(m2), ref, (size_t)T * B * 3) > 0, "another seed gives the same model");
    cr_assert_eq(rc_model_load_npy(m2, dir), RC_OK, "load_npy: %s", rc_model_error(m2));
    for (int i = 0; i < rc_model_param_count(m); i++) {
        const char *name = rc_model_param_name(m, i);
        float *a, *b;
        size_t na = param_size(m, name, &a), nb = param_size(m2, name, &b);
        cr_expect(na == nb && memcmp(a, b, na * sizeof(float)) == 0, "'%s' differs after load", name);
    }
    must_forward(m2, &d.b);
    cr_expect(memcmp(rc_model_output(m2), ref, (size_t)T * B * 3 * sizeof(float)) == 0, "outputs differ after load");

    /* a wrong shape (out.W) */
    char bad1[64], bad2[64], bad3[64], path[4096];
    copy_params_dir(m, dir, bad1);
    snprintf(path, sizeof path, "%s/out.W.npy", bad1);
    write_npy(path, 3, 9);
    expect_load_fails(&o, bad1, "out.W.npy", "wrong shape");
    /* a truncated file: the last parameter, so every other file was read first */
    const char *lastp = rc_model_param_name(m, rc_model_param_count(m) - 1);
    char lastfile[256];
    snprintf(lastfile, sizeof lastfile, "%s.npy", lastp);
    copy_params_dir(m, dir, bad2);
    snprintf(path, sizeof path, "%s/%s", bad2, lastfile);
    struct stat sb;
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(truncate(path, sb.st_size - 6), 0);
    expect_load_fails(&o, bad2, lastfile, "truncated file");
    /* a missing file */
    copy_params_dir(m, dir, bad3);
    snprintf(path, sizeof path, "%s/l1r.W_hg.npy", bad3);
    cr_assert_eq(unlink(path), 0);
    expect_load_fails(&o, bad3, "l1r.W_hg.npy", "missing file");
    /* saving into a directory that does not exist */
    rc_model *m3 = new_model(rc_cell_lstm(4, NULL), &o);
    snprintf(path, sizeof path, "%s/no/such/dir", dir);
    cr_expect_neq(rc_model_save_npy(m3, path), RC_OK);
    cr_expect(strlen(rc_model_error(m3)) > 0);
    rc_model_free(m3);

    rm_dir(bad1);
    rm_dir(bad2);
    rm_dir(bad3);
    rm_dir(dir);
    free(ref);
    bdata_free(&d);
    rc_model_free(m2);
    rc_model_free(m);
}

/* ---- 9. errors ------------------------------------------------------------------------------ */

/* Every call on a model that failed to build fails cleanly. */
static void expect_dead(rc_model *m, const char *what)
{
    int32_t tok[2] = { 0, 1 }, tgt[2] = { 0, 0 };
    float x[64] = { 0 };
    rc_batch b = { .T = 1, .B = 2, .tokens = tok, .x = x, .targets = tgt, .y = x };
    double loss = 0;
    const float *out = NULL;
    cr_expect_neq(rc_model_status(m), RC_OK, "%s: status OK", what);
    cr_expect(strlen(rc_model_error(m)) > 0, "%s: no message", what);
    cr_expect_neq(rc_model_forward(m, &b, &loss), RC_OK, "%s: forward", what);
    cr_expect_neq(rc_model_backward(m), RC_OK, "%s: backward", what);
    cr_expect_eq(rc_model_param_count(m), 0, "%s: param_count", what);
    cr_expect_null(rc_model_param_name(m, 0), "%s: param_name", what);
    cr_expect_null(rc_model_param(m, "out.W", NULL, NULL), "%s: param", what);
    cr_expect_null(rc_model_grad(m, "out.W"), "%s: grad", what);
    cr_expect_eq(rc_model_param_total(m), 0, "%s: param_total", what);
    cr_expect_null(rc_model_output(m), "%s: output", what);
    cr_expect_neq(rc_model_init(m, 3), RC_OK, "%s: init", what);
    cr_expect_neq(rc_model_save_npy(m, "/tmp"), RC_OK, "%s: save_npy", what);
    cr_expect_neq(rc_model_load_npy(m, "/tmp"), RC_OK, "%s: load_npy", what);
    cr_expect_neq(rc_model_stream_reset(m, 1), RC_OK, "%s: stream_reset", what);
    cr_expect_neq(rc_model_stream_step(m, x, tok, &out), RC_OK, "%s: stream_step", what);
    cr_expect_neq(rc_model_set_state(m, 0, 0, "h", 1, x), RC_OK, "%s: set_state", what);
    cr_expect_null(rc_model_get_state(m, 0, 0, "h", NULL), "%s: get_state", what);
    rc_model_reset_state(m);
    rc_model_set_training(m, 0);
    rc_model_set_carry(m, 1);
    double s = -1, c = -1;
    rc_model_last_stats(m, &s, &c);
    cr_expect(s == 0 && c == 0, "%s: last_stats", what);
}

Test(model, errors_bad_options)
{
    struct { const char *what; rc_model_opts o; } cases[4];
    for (int i = 0; i < 4; i++) cases[i].o = mk_opts(3, 0, 1, 0, RC_HEAD_SOFTMAX, 2);
    cases[0].what = "input_size 0";
    cases[0].o.input_size = 0;
    cases[1].what = "layers 0";
    cases[1].o.layers = 0;
    cases[2].what = "dropout 1.0";
    cases[2].o.dropout = 1.0f;
    cases[3].what = "output_size 0";
    cases[3].o.output_size = 0;
    for (int i = 0; i < 4; i++) {
        rc_cell *c = rc_cell_lstm(4, NULL);
        rc_model *m = rc_model_new(c, &cases[i].o);
        rc_cell_free(c);
        cr_assert_not_null(m, "%s: rc_model_new returned NULL", cases[i].what);
        expect_dead(m, cases[i].what);
        rc_model_free(m);
    }
    rc_model_opts o = mk_opts(3, 0, 1, 0, RC_HEAD_SOFTMAX, 2);
    rc_model *m = rc_model_new(NULL, &o);
    cr_assert_not_null(m);
    cr_expect_eq(rc_model_status(m), RC_ERR_ARG);
    expect_dead(m, "NULL cell");
    rc_model_free(m);
    /* a NULL model */
    cr_expect_eq(rc_model_status(NULL), RC_ERR_ARG);
    cr_expect_not_null(rc_model_error(NULL));
    cr_expect_neq(rc_model_forward(NULL, NULL, NULL), RC_OK);
    cr_expect_neq(rc_model_backward(NULL), RC_OK);
    cr_expect_eq(rc_model_param_count(NULL), 0);
    cr_expect_null(rc_model_output(NULL));
    cr_expect_neq(rc_model_stream_reset(NULL, 1), RC_OK);
    rc_model_free(NULL);
}

typedef enum { E_NULL_TOKENS, E_TOKEN_RANGE, E_TOKEN_NEG, E_LEN0, E_LEN_BIG, E_TARGET, E_NULL_TARGETS, E_NULL_BATCH,
               E_T0, E_COUNT } err_case;

Test(model, errors_batch)
{
    enum { T = 4, B = 2 };
    static const char *names[E_COUNT] = { "NULL tokens", "token >= vocab", "token < 0", "length 0", "length > T",
                                          "target >= output_size", "NULL targets", "NULL batch", "T = 0" };
    static const char *words[E_COUNT] = { "tokens", "token", "token", "length", "length", "target", "targets",
                                          "batch", "T" };
    rc_model_opts o = mk_opts(3, 5, 1, 0, RC_HEAD_SOFTMAX, 3);
    bdata d;
    const int32_t len[B] = { 4, 3 };
    bdata_make(&d, &o, T, B, len, 81);
    for (int c = 0; c < E_COUNT; c++) {
        rc_model *m = new_model(rc_cell_lstm(4, NULL), &o);
        double good = must_forward(m, &d.b);
        bdata e;
        bdata_make(&e, &o, T, B, len, 81);
        rc_batch *bp = &e.b;
        switch ((err_case)c) {
        case E_NULL_TOKENS: e.b.tokens = NULL; break;
        case E_TOKEN_RANGE: e.tok[5] = 5; break;
        case E_TOKEN_NEG: e.tok[2] = -1; break;
        case E_LEN0: e.len[1] = 0; break;
        case E_LEN_BIG: e.len[0] = T + 1; break;
        case E_TARGET: e.tgt[3] = 3; break;
        case E_NULL_TARGETS: e.b.targets = NULL; break;
        case E_NULL_BATCH: bp = NULL; break;
        case E_T0: e.b.T = 0; break;
        case E_COUNT: break;
        }
        double loss = -7;
        rc_status s = rc_model_forward(m, bp, &loss);
        cr_expect_eq(s, RC_ERR_ARG, "%s: forward returned %s", names[c], rc_status_name(s));
        cr_expect(strstr(rc_model_error(m), words[c]) != NULL, "%s: the message does not say '%s': \"%s\"", names[c],
                  words[c], rc_model_error(m));
        /* nothing of the previous batch is left to read or to run backward on */
        cr_expect_null(rc_model_output(m), "%s: the previous batch's output is still offered", names[c]);
        cr_expect_eq(rc_model_backward(m), RC_ERR_STATE, "%s: backward ran after the rejected forward", names[c]);
        /* the model still works */
        double again = NAN;
        s = rc_model_forward(m, &d.b, &again);
        cr_expect_eq(s, RC_OK, "%s: after the rejected batch a good forward returns %s (\"%s\")", names[c],
                     rc_status_name(s), rc_model_error(m));
        cr_expect(again == good, "%s: loss after the rejected batch %g, before %g", names[c], again, good);
        bdata_free(&e);
        rc_model_free(m);
    }
    bdata_free(&d);
    /* float-input and regression models: NULL x, NULL y */
    rc_model_opts ox = mk_opts(3, 0, 1, 0, RC_HEAD_LINEAR, 2);
    for (int c = 0; c < 2; c++) {
        rc_model *m = new_model(rc_cell_gru(4, RC_GRU_RESET_AFTER), &ox);
        bdata e;
        bdata_make(&e, &ox, T, B, NULL, 82);
        if (c == 0) e.b.x = NULL;
        else e.b.y = NULL;
        cr_expect_eq(rc_model_forward(m, &e.b, NULL), RC_ERR_ARG, "NULL %s accepted", c ? "y" : "x");
        cr_expect(strstr(rc_model_error(m), c ? "y" : "x") != NULL, "message: %s", rc_model_error(m));
        bdata_free(&e);
        rc_model_free(m);
    }
}

Test(model, errors_backward_before_forward)
{
    rc_model_opts o = mk_opts(3, 0, 1, 0, RC_HEAD_LINEAR, 2);
    rc_model *m = new_model(rc_cell_lstm(4, NULL), &o);
    cr_expect_eq(rc_model_backward(m), RC_ERR_STATE);
    cr_expect(strlen(rc_model_error(m)) > 0);
    cr_expect_null(rc_model_output(m));
    rc_model_free(m);
}

Test(model, errors_mut_input_size)
{
    rc_model_opts o = mk_opts(3, 0, 1, 0, RC_HEAD_LINEAR, 2);
    rc_cell *c = rc_cell_mut(1, 5);
    cr_assert_not_null(c);
    rc_model *m = rc_model_new(c, &o);
    rc_cell_free(c);
    cr_assert_not_null(m);
    cr_expect_neq(rc_model_status(m), RC_OK, "MUT1 with input 3 != hidden 5 was accepted");
    cr_expect(strstr(rc_model_error(m), "input size") != NULL, "message: \"%s\"", rc_model_error(m));
    cr_expect_eq(rc_model_param_count(m), 0);
    rc_model_free(m);
    /* fine when equal, and MUT3 takes any input size */
    o.input_size = 5;
    m = new_model(rc_cell_mut(1, 5), &o);
    rc_model_free(m);
    o.input_size = 3;
    m = new_model(rc_cell_mut(3, 5), &o);
    rc_model_free(m);
    /* a 2-layer MUT2 over an embedding of the hidden size */
    o = mk_opts(5, 4, 2, 0, RC_HEAD_SOFTMAX, 4);
    m = new_model(rc_cell_mut(2, 5), &o);
    rc_model_free(m);
}

/* ---- many shapes: the plan cache ---------------------------------------------------------- */

/* More distinct (T, B) than the cache holds: old plans are evicted, the parameters
 * (owned by the model) must survive and results must not change. */
Test(model, plan_cache_many_shapes)
{
    enum { B = 2, O = 3 };
    rc_model_opts o = mk_opts(3, 5, 1, 0, RC_HEAD_SOFTMAX, O);
    rc_model *m = new_model(rc_cell_lstm(4, NULL), &o);
    snap before;
    snap_take(m, &before, 0);
    bdata d;
    bdata_make(&d, &o, 12, B, NULL, 91);
    rc_batch b3 = { .T = 3, .B = B, .tokens = d.tok, .targets = d.tgt };
    double l3 = must_forward(m, &b3);
    float *o3 = fdup(rc_model_output(m), (size_t)3 * B * O);
    for (int T = 1; T <= 12; T++) {
        rc_batch bt = { .T = T, .B = B, .tokens = d.tok, .targets = d.tgt };
        must_forward(m, &bt);
        must_backward(m);
    }
    cr_expect(snap_unchanged(&before), "parameters changed after the plan cache turned over");
    double l3b = must_forward(m, &b3);
    cr_expect(l3b == l3 && memcmp(rc_model_output(m), o3, sizeof(float) * 3 * B * O) == 0,
              "T=3 after many shapes: loss %.8g, before %.8g", l3b, l3);
    const float *out;
    cr_expect_eq(rc_model_stream_reset(m, 1), RC_OK);
    cr_expect_eq(rc_model_stream_step(m, NULL, d.tok, &out), RC_OK, "%s", rc_model_error(m));
    free(o3);
    snap_free(&before);
    bdata_free(&d);
    rc_model_free(m);
}

/* ---- 10. training ---------------------------------------------------------------------------- */

/* A 1-layer GRU learns to output the previous token; returns the losses. */
static void train_prev_token(double *losses, int steps)
{
    enum { V = 4, T = 10, B = 8 };
    rc_model_opts o = mk_opts(8, V, 1, 0, RC_HEAD_SOFTMAX, V);
    o.seed = 3;
    rc_model *m = new_model(rc_cell_gru(16, RC_GRU_RESET_AFTER), &o);
    int32_t tok[T * B], tgt[T * B];
    rc_batch b = { .T = T, .B = B, .tokens = tok, .targets = tgt };
    uint64_t s = 42;
    const float lr = 1.0f;
    for (int it = 0; it < steps; it++) {
        for (int i = 0; i < T * B; i++) tok[i] = rng_int(&s, V);
        for (int i = 0; i < T * B; i++) tgt[i] = i < B ? -1 : tok[i - B];
        losses[it] = must_forward(m, &b);
        must_backward(m);
        for (int i = 0; i < rc_model_param_count(m); i++) {
            const char *name = rc_model_param_name(m, i);
            float *p;
            size_t n = param_size(m, name, &p);
            const float *g = rc_model_grad(m, name);
            cr_assert_not_null(g, "no gradient for '%s'", name);
            for (size_t k = 0; k < n; k++) p[k] -= lr * g[k];
        }
    }
    rc_model_free(m);
}

Test(model, training_lowers_loss)
{
    enum { STEPS = 300 };
    double a[STEPS], b[STEPS];
    train_prev_token(a, STEPS);
    double end = 0;
    for (int i = STEPS - 10; i < STEPS; i++) end += a[i] / 10;
    cr_expect(end < 0.3 * a[0], "loss %.4f -> %.4f (mean of the last 10 steps): not below 30%%", a[0], end);
    train_prev_token(b, STEPS);
    cr_expect(memcmp(a, b, sizeof a) == 0, "the same seed gave different losses");
}

/* ---- many final states: every (layer, direction, state) is a root -------------------------- */

/* A cell of 9 states in 64 layers: 576 final states, more than the 2 + 16*2*16 roots the
 * model once had room for. Carrying them (a forward with carry, a stream step) must find
 * every final state computed, down to the last layer's last state. */
Test(model, carry_many_states_deep)
{
    enum { L = 64, NS = 9, H = 2, I = 3, T = 2, B = 2, O = 3 };
    char text[1024], err[512] = "";
    int k = snprintf(text, sizeof text, "cell many (x) -> h");
    for (int s = 1; s < NS; s++) k += snprintf(text + k, sizeof text - (size_t)k, ", s%d", s);
    k += snprintf(text + k, sizeof text - (size_t)k, "\n  h' = tanh(W_xh @ x + W_hh @ h + b_h)\n");
    for (int s = 1; s < NS; s++) k += snprintf(text + k, sizeof text - (size_t)k, "  s%d' = tanh(s%d + h')\n", s, s);
    cr_assert_lt(k, (int)sizeof text);
    rc_cell *cell = rc_cell_parse(text, strlen(text), "many", H, err, sizeof err);
    cr_assert_not_null(cell, "parse: %s", err);
    cr_assert_eq(rc_cell_state_count(cell), NS);
    rc_model_opts o = mk_opts(I, 0, L, 0, RC_HEAD_LINEAR, O);
    rc_model *m = new_model(cell, &o);
    float x[T * B * I], y[T * B * O];
    uint64_t s = 5;
    for (int i = 0; i < T * B * I; i++) x[i] = rng_unif(&s);
    for (int i = 0; i < T * B * O; i++) y[i] = rng_unif(&s);
    rc_batch b = { .T = T, .B = B, .x = x, .y = y };
    rc_model_set_carry(m, 1);
    double loss = 0;
    cr_assert_eq(rc_model_forward(m, &b, &loss), RC_OK, "%s", rc_model_error(m));
    /* the last layer's last state after T steps of s' = tanh(s + h'), from s = 0 */
    int gotB = 0;
    const float *st = rc_model_get_state(m, L - 1, 0, "s8", &gotB);
    cr_assert_not_null(st);
    cr_assert_eq(gotB, B);
    int nonzero = 0;
    for (int i = 0; i < B * H; i++) nonzero |= st[i] != 0.0f && isfinite(st[i]);
    cr_expect(nonzero, "layer %d's state s8 was not carried (all zero)", L - 1);
    /* a second forward from the carried state, then a stream */
    cr_assert_eq(rc_model_forward(m, &b, &loss), RC_OK, "%s", rc_model_error(m));
    cr_assert_eq(rc_model_stream_reset(m, 1), RC_OK, "%s", rc_model_error(m));
    const float *out = NULL;
    for (int t = 0; t < 3; t++) cr_assert_eq(rc_model_stream_step(m, x, NULL, &out), RC_OK, "%s", rc_model_error(m));
    cr_assert_not_null(out);
    for (int i = 0; i < O; i++) cr_expect(isfinite(out[i]));
    rc_model_free(m);
}
