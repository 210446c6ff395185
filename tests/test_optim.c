/* Tests of train/optim.c (suite `optim`).
 *
 * Each update is checked against a reference computed here in double from the
 * formulas (PyTorch's torch.optim forms), on a tiny Elman RNN model with a linear head
 * whose weights are set to known values: the test records the weights and the
 * gradients the model's backward produced, computes the expected new weights, and
 * compares with |a - b| <= 1e-6 * (1 + |b|). Multi-step cases recompute the gradients
 * at the new weights, so momentum, moments and accumulators are exercised.
 *
 * Also: clipping (clips / does not clip, the reported norm), weight noise (its
 * statistics, no stacking, the update applied to the clean weights), a non-finite
 * gradient (RC_ERR_STATE, nothing changed), the messages in rc_optim_error, invalid
 * options, schedules, the state round trip that checkpoints rely on, and bitwise
 * determinism across thread counts.
 *
 * Checks use cr_expect (non-fatal) so every test frees what it made: the suite runs
 * under AddressSanitizer's leak checker. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim.h"
#include "recur.h"

#define TT 3
#define BB 2

/* ---- helpers ------------------------------------------------------------------- */

/* An Elman RNN (tanh) of `hidden` units, input 1, output 1, linear head, with every
 * weight set to a known non-zero value (biases included). */
static rc_model *tiny_model(int hidden)
{
    rc_cell *c = rc_cell_rnn(hidden, RC_ACT_TANH);
    cr_assert_not_null(c);
    rc_model_opts mo = rc_model_defaults();
    mo.input_size = 1;
    mo.output_size = 1;
    mo.head = RC_HEAD_LINEAR;
    mo.seed = 7;
    rc_model *m = rc_model_new(c, &mo);
    rc_cell_free(c);
    cr_assert_not_null(m);
    cr_assert_eq(rc_model_status(m), RC_OK, "%s", rc_model_error(m));
    size_t k = 0;
    for (int i = 0; i < rc_model_param_count(m); i++) {
        int nd, sh[RC_MAX_DIMS];
        float *w = rc_model_param(m, rc_model_param_name(m, i), &nd, sh);
        size_t n = 1;
        for (int d = 0; d < nd; d++) n *= (size_t)sh[d];
        for (size_t j = 0; j < n; j++, k++) w[j] = (float)(0.4 * sin(1.7 * (double)k + 0.4)) / (float)sqrt(hidden);
    }
    return m;
}

/* Parameter i's storage and size. */
static float *param(rc_model *m, int i, size_t *n)
{
    int nd, sh[RC_MAX_DIMS];
    float *w = rc_model_param(m, rc_model_param_name(m, i), &nd, sh);
    *n = 1;
    for (int d = 0; d < nd; d++) *n *= (size_t)sh[d];
    return w;
}

/* One forward and backward on a fixed batch (x[0] replaced by x0 when not 0). */
static void fwd_bwd(rc_model *m, float x0)
{
    float x[TT * BB] = {0.5f, -1.0f, 0.25f, 0.8f, -0.3f, 1.2f};
    float y[TT * BB] = {0.3f, -0.2f, 0.9f, 0.1f, -0.7f, 0.4f};
    if (x0 != 0.0f) x[0] = x0;
    rc_batch b = {.T = TT, .B = BB, .x = x, .y = y};
    double loss;
    cr_assert_eq(rc_model_forward(m, &b, &loss), RC_OK, "%s", rc_model_error(m));
    cr_assert_eq(rc_model_backward(m), RC_OK, "%s", rc_model_error(m));
}

/* All weights (or gradients), flattened in parameter order, as double. */
static void snap_w(rc_model *m, double *out)
{
    size_t k = 0, n;
    for (int i = 0; i < rc_model_param_count(m); i++) {
        float *w = param(m, i, &n);
        for (size_t j = 0; j < n; j++) out[k++] = w[j];
    }
}

static void snap_g(rc_model *m, double *out)
{
    size_t k = 0, n;
    for (int i = 0; i < rc_model_param_count(m); i++) {
        param(m, i, &n);
        const float *g = rc_model_grad(m, rc_model_param_name(m, i));
        cr_assert_not_null(g);
        for (size_t j = 0; j < n; j++) out[k++] = g[j];
    }
}

/* Raw float copies, for bitwise comparisons. */
static void copy_w(rc_model *m, float *out)
{
    size_t k = 0, n;
    for (int i = 0; i < rc_model_param_count(m); i++) {
        float *w = param(m, i, &n);
        memcpy(out + k, w, n * sizeof *w);
        k += n;
    }
}

static void set_w(rc_model *m, const float *in)
{
    size_t k = 0, n;
    for (int i = 0; i < rc_model_param_count(m); i++) {
        float *w = param(m, i, &n);
        memcpy(w, in + k, n * sizeof *w);
        k += n;
    }
}

static void copy_g(rc_model *m, float *out)
{
    size_t k = 0, n;
    for (int i = 0; i < rc_model_param_count(m); i++) {
        param(m, i, &n);
        memcpy(out + k, rc_model_grad(m, rc_model_param_name(m, i)), n * sizeof(float));
        k += n;
    }
}

static int close_to(double a, double b) { return fabs(a - b) <= 1e-6 * (1.0 + fabs(b)); }

/* Expects every weight to be close to exp[]; reports the first miss and the count. */
static void expect_weights(rc_model *m, const double *exp, size_t total, const char *what)
{
    double *w = malloc(total * sizeof *w);
    snap_w(m, w);
    size_t bad = 0, first = 0;
    for (size_t k = 0; k < total; k++)
        if (!close_to(w[k], exp[k]) && bad++ == 0) first = k;
    cr_expect_eq(bad, 0, "%s: %zu of %zu weights differ, first #%zu: %.9g, expected %.9g", what, bad, total,
                 first, w[first], exp[first]);
    free(w);
}

/* ---- the reference: one step in double, from the formulas ----------------------- */

typedef struct ref_state {
    double *s1, *s2;   /* SGD v / Adam m / RMSprop s / Adagrad s; Adam v */
} ref_state;

/* Updates w[] in place with gradients g[] at step t; returns the pre-clip norm. */
static double ref_step(const rc_optim_opts *o, int t, double lr, double *w, const double *g, ref_state *r,
                       size_t n)
{
    double sq = 0;
    for (size_t j = 0; j < n; j++) sq += g[j] * g[j];
    double norm = sqrt(sq), c = 1.0, wd = o->weight_decay;
    if (o->clip_norm > 0 && norm > o->clip_norm) c = o->clip_norm / norm;
    double mu = o->momentum, b1 = o->beta1, b2 = o->beta2, rho = o->rho, eps = o->eps;
    for (size_t j = 0; j < n; j++) {
        double gj = g[j] * c;
        if (wd > 0 && !o->decoupled) gj += wd * w[j];
        if (wd > 0 && o->decoupled) w[j] -= lr * wd * w[j];
        switch (o->kind) {
        case RC_OPT_SGD:
            if (mu == 0) {
                w[j] -= lr * gj;
            } else {
                r->s1[j] = mu * r->s1[j] + gj;
                w[j] -= lr * (o->nesterov ? gj + mu * r->s1[j] : r->s1[j]);
            }
            break;
        case RC_OPT_ADAM:
            r->s1[j] = b1 * r->s1[j] + (1 - b1) * gj;
            r->s2[j] = b2 * r->s2[j] + (1 - b2) * gj * gj;
            w[j] -= lr * (r->s1[j] / (1 - pow(b1, t))) / (sqrt(r->s2[j] / (1 - pow(b2, t))) + eps);
            break;
        case RC_OPT_RMSPROP:
            r->s1[j] = rho * r->s1[j] + (1 - rho) * gj * gj;
            w[j] -= lr * gj / (sqrt(r->s1[j]) + eps);
            break;
        case RC_OPT_ADAGRAD:
            r->s1[j] += gj * gj;
            w[j] -= lr * gj / (sqrt(r->s1[j]) + eps);
            break;
        }
    }
    return norm;
}

/* Runs `steps` steps of optimiser `o` with learning rate lr on a tiny model, each
 * after a fresh forward/backward, and checks the weights, the norm, the step count,
 * and that the gradient buffers were not written. */
static void check_steps(rc_optim_opts o, float lr, int steps, const char *what)
{
    rc_model *m = tiny_model(3);
    size_t total = rc_model_param_total(m);
    rc_optim *opt = rc_optim_new(m, &o);
    cr_assert_not_null(opt, "%s: rc_optim_new: %s", what, optim_opts_error(&o));
    double *w = calloc(total, sizeof *w), *g = calloc(total, sizeof *g);
    ref_state r = {calloc(total, sizeof(double)), calloc(total, sizeof(double))};
    float *g0 = malloc(total * sizeof *g0), *g1 = malloc(total * sizeof *g1);
    for (int t = 1; t <= steps; t++) {
        fwd_bwd(m, 0.0f);
        snap_w(m, w);
        snap_g(m, g);
        copy_g(m, g0);
        double norm = ref_step(&o, t, lr, w, g, &r, total);
        cr_expect_eq(rc_optim_step(opt, lr), RC_OK, "%s: step %d", what, t);
        char buf[96];
        snprintf(buf, sizeof buf, "%s, step %d", what, t);
        expect_weights(m, w, total, buf);
        cr_expect(fabs(rc_optim_grad_norm(opt) - norm) <= 1e-12 * norm, "%s: norm %.17g, expected %.17g", buf,
                  rc_optim_grad_norm(opt), norm);
        cr_expect_eq(rc_optim_steps(opt), (uint64_t)t, "%s", buf);
        copy_g(m, g1);
        cr_expect(memcmp(g0, g1, total * sizeof *g0) == 0, "%s: the gradient buffers were written", buf);
    }
    free(w);
    free(g);
    free(r.s1);
    free(r.s2);
    free(g0);
    free(g1);
    rc_optim_free(opt);
    rc_model_free(m);
}

/* ---- the updates ---------------------------------------------------------------- */

Test(optim, defaults)
{
    rc_optim_opts o = rc_optim_defaults(RC_OPT_ADAM);
    cr_expect_eq(o.kind, RC_OPT_ADAM);
    cr_expect_eq(o.momentum, 0.0f);
    cr_expect_eq(o.nesterov, 0);
    cr_expect_eq(o.beta1, 0.9f);
    cr_expect_eq(o.beta2, 0.999f);
    cr_expect_eq(o.rho, 0.99f);
    cr_expect_eq(o.eps, 1e-8f);
    cr_expect_eq(o.weight_decay, 0.0f);
    cr_expect_eq(o.decoupled, 0);
    cr_expect_eq(o.clip_norm, 0.0f);
    cr_expect_eq(o.weight_noise, 0.0f);
    cr_expect_eq(o.seed, 1);
    for (int k = RC_OPT_SGD; k <= RC_OPT_ADAGRAD; k++) {
        rc_optim_opts d = rc_optim_defaults((rc_optim_kind)k);
        cr_expect_null(optim_opts_error(&d), "defaults of kind %d rejected: %s", k, optim_opts_error(&d));
    }
}

Test(optim, sgd_plain) { check_steps(rc_optim_defaults(RC_OPT_SGD), 0.1f, 1, "sgd"); }

Test(optim, sgd_momentum)
{
    rc_optim_opts o = rc_optim_defaults(RC_OPT_SGD);
    o.momentum = 0.9f;
    check_steps(o, 0.1f, 3, "momentum");
}

Test(optim, sgd_nesterov)
{
    rc_optim_opts o = rc_optim_defaults(RC_OPT_SGD);
    o.momentum = 0.9f;
    o.nesterov = 1;
    check_steps(o, 0.1f, 3, "nesterov");
}

Test(optim, adam) { check_steps(rc_optim_defaults(RC_OPT_ADAM), 0.01f, 3, "adam"); }

Test(optim, adam_betas)
{
    rc_optim_opts o = rc_optim_defaults(RC_OPT_ADAM);
    o.beta1 = 0.5f;
    o.beta2 = 0.75f;
    o.eps = 1e-3f;
    check_steps(o, 0.05f, 3, "adam (0.5, 0.75, eps 1e-3)");
}

Test(optim, rmsprop) { check_steps(rc_optim_defaults(RC_OPT_RMSPROP), 0.01f, 3, "rmsprop"); }

Test(optim, adagrad) { check_steps(rc_optim_defaults(RC_OPT_ADAGRAD), 0.1f, 3, "adagrad"); }

Test(optim, l2_decay)
{
    rc_optim_opts o = rc_optim_defaults(RC_OPT_SGD);
    o.momentum = 0.5f;
    o.weight_decay = 0.1f;
    check_steps(o, 0.1f, 2, "sgd + L2");
    o = rc_optim_defaults(RC_OPT_ADAM);
    o.weight_decay = 0.05f;
    check_steps(o, 0.01f, 2, "adam + L2");
}

Test(optim, adamw)
{
    rc_optim_opts o = rc_optim_defaults(RC_OPT_ADAM);
    o.weight_decay = 0.1f;
    o.decoupled = 1;
    check_steps(o, 0.01f, 3, "adamw");
    o = rc_optim_defaults(RC_OPT_SGD);
    o.weight_decay = 0.2f;
    o.decoupled = 1;
    check_steps(o, 0.1f, 2, "sgd + decoupled decay");
}

/* Plain SGD: the displacement / lr is the clipped gradient, of norm clip_norm. */
Test(optim, clipping)
{
    rc_model *m = tiny_model(3);
    size_t total = rc_model_param_total(m);
    double *g = malloc(total * sizeof *g), *w0 = malloc(total * sizeof *w0), *w1 = malloc(total * sizeof *w1);
    fwd_bwd(m, 0.0f);
    snap_g(m, g);
    double sq = 0;
    for (size_t k = 0; k < total; k++) sq += g[k] * g[k];
    double norm = sqrt(sq);
    cr_assert(norm > 1e-3, "gradient too small to test clipping: %g", norm);

    rc_optim_opts o = rc_optim_defaults(RC_OPT_SGD);
    o.clip_norm = (float)(norm * 0.25);   /* clips */
    check_steps(o, 0.1f, 2, "sgd clipped");
    o.momentum = 0.9f;
    check_steps(o, 0.1f, 2, "momentum clipped");
    o = rc_optim_defaults(RC_OPT_ADAM);
    o.clip_norm = (float)(norm * 0.5);
    o.weight_decay = 0.01f;
    check_steps(o, 0.01f, 2, "adam + L2 clipped");
    o = rc_optim_defaults(RC_OPT_SGD);
    o.clip_norm = (float)(norm * 4.0);    /* does not clip */
    check_steps(o, 0.1f, 1, "sgd not clipped");

    /* the update's norm */
    o = rc_optim_defaults(RC_OPT_SGD);
    o.clip_norm = (float)(norm * 0.25);
    rc_optim *opt = rc_optim_new(m, &o);
    cr_assert_not_null(opt);
    snap_w(m, w0);
    cr_expect_eq(rc_optim_step(opt, 0.5f), RC_OK);
    snap_w(m, w1);
    double d = 0;
    for (size_t k = 0; k < total; k++) d += (w1[k] - w0[k]) * (w1[k] - w0[k]);
    d = sqrt(d) / 0.5;
    cr_expect(fabs(d - o.clip_norm) <= 1e-5 * o.clip_norm, "clipped step norm %.9g, expected %.9g", d,
              (double)o.clip_norm);
    cr_expect(fabs(rc_optim_grad_norm(opt) - norm) <= 1e-12 * norm, "grad norm %.17g, expected %.17g (pre-clip)",
              rc_optim_grad_norm(opt), norm);
    rc_optim_free(opt);

    free(g);
    free(w0);
    free(w1);
    rc_model_free(m);
}

Test(optim, global_norm)
{
    float a[2] = {3.0f, 0.0f}, b[1] = {4.0f}, c[2] = {1.0f, INFINITY}, d[1] = {NAN};
    const float *ab[3] = {a, NULL, b};
    size_t sab[3] = {2, 7, 1};
    cr_expect_eq(optim_global_norm(3, ab, sab), 5.0);
    const float *ac[2] = {a, c};
    size_t s2[2] = {2, 2};
    cr_expect(isinf(optim_global_norm(2, ac, s2)));
    const float *ad[2] = {a, d};
    size_t s3[2] = {2, 1};
    cr_expect(isnan(optim_global_norm(2, ad, s3)));
    float big[2] = {3e38f, 3e38f};   /* squares overflow float, not double */
    const float *pb[1] = {big};
    size_t sb[1] = {2};
    cr_expect(close_to(optim_global_norm(1, pb, sb), sqrt(2.0) * (double)3e38f), "%g", optim_global_norm(1, pb, sb));
}

/* ---- weight noise ------------------------------------------------------------------ */

static void noise_stats(rc_model *m, const float *clean, size_t total, double sigma, const char *what)
{
    float *w = malloc(total * sizeof *w);
    copy_w(m, w);
    double s = 0, s2 = 0;
    size_t same = 0;
    for (size_t k = 0; k < total; k++) {
        double d = (double)w[k] - clean[k];
        s += d;
        s2 += d * d;
        same += w[k] == clean[k];
    }
    double mean = s / (double)total, sd = sqrt(s2 / (double)total - mean * mean);
    cr_expect(fabs(mean) < 4.0 * sigma / sqrt((double)total), "%s: noise mean %g", what, mean);
    cr_expect(fabs(sd / sigma - 1.0) < 0.06, "%s: noise std %g, expected %g", what, sd, sigma);
    cr_expect(same < total / 100, "%s: %zu of %zu weights unchanged", what, same, total);
    free(w);
}

Test(optim, weight_noise)
{
    rc_model *m = tiny_model(60);   /* 60*60 + 60 + 60 + 60 + 1 = 3781 weights */
    size_t total = rc_model_param_total(m);
    cr_assert_gt(total, 3000);
    float *clean = malloc(total * sizeof *clean), *noisy1 = malloc(total * sizeof *noisy1),
          *w = malloc(total * sizeof *w), *g = malloc(total * sizeof *g);
    double *exp = malloc(total * sizeof *exp);
    copy_w(m, clean);

    rc_optim_opts o = rc_optim_defaults(RC_OPT_SGD);
    o.weight_noise = 0.01f;
    o.seed = 42;
    rc_optim *opt = rc_optim_new(m, &o);
    cr_assert_not_null(opt);

    cr_expect_eq(rc_optim_begin(opt), RC_OK);
    noise_stats(m, clean, total, 0.01, "first begin");
    copy_w(m, noisy1);
    /* a second begin restores first: the noise does not stack */
    cr_expect_eq(rc_optim_begin(opt), RC_OK);
    noise_stats(m, clean, total, 0.01, "second begin");
    copy_w(m, w);
    cr_expect(memcmp(w, noisy1, total * sizeof *w) != 0, "the second begin drew the same noise");

    /* the gradient at the noisy point, applied to the clean weights */
    fwd_bwd(m, 0.0f);
    copy_g(m, g);
    float lr = 0.1f;
    for (size_t k = 0; k < total; k++) exp[k] = (double)clean[k] - (double)lr * g[k];
    cr_expect_eq(rc_optim_step(opt, lr), RC_OK);
    expect_weights(m, exp, total, "noisy step");
    copy_w(m, w);
    size_t exact = 0;
    for (size_t k = 0; k < total; k++) exact += w[k] == clean[k] - lr * g[k];
    cr_expect_eq(exact, total, "%zu of %zu weights are not clean - lr * g in float", total - exact, total);

    /* begin, step with lr 0: the weights come back bitwise clean */
    copy_w(m, clean);
    cr_expect_eq(rc_optim_begin(opt), RC_OK);
    fwd_bwd(m, 0.0f);
    cr_expect_eq(rc_optim_step(opt, 0.0f), RC_OK);
    copy_w(m, w);
    cr_expect(memcmp(w, clean, total * sizeof *w) == 0, "lr 0 after noise did not restore the clean weights");

    /* without noise, begin changes nothing */
    rc_optim_opts q = rc_optim_defaults(RC_OPT_SGD);
    rc_optim *plain = rc_optim_new(m, &q);
    cr_assert_not_null(plain);
    cr_expect_eq(rc_optim_begin(plain), RC_OK);
    copy_w(m, w);
    cr_expect(memcmp(w, clean, total * sizeof *w) == 0, "begin without noise changed the weights");
    rc_optim_free(plain);

    rc_optim_free(opt);
    free(clean);
    free(noisy1);
    free(w);
    free(g);
    free(exp);
    rc_model_free(m);
}

/* The same seed gives the same noise; another seed another. */
Test(optim, weight_noise_seeded)
{
    rc_model *m = tiny_model(8);
    size_t total = rc_model_param_total(m);
    float *clean = malloc(total * sizeof *clean), *a = malloc(total * sizeof *a), *b = malloc(total * sizeof *b);
    copy_w(m, clean);
    rc_optim_opts o = rc_optim_defaults(RC_OPT_ADAM);
    o.weight_noise = 0.05f;
    o.seed = 9;
    rc_optim *p = rc_optim_new(m, &o), *q = rc_optim_new(m, &o);
    o.seed = 10;
    rc_optim *r = rc_optim_new(m, &o);
    cr_assert(p && q && r);
    rc_optim_begin(p);
    copy_w(m, a);
    set_w(m, clean);
    rc_optim_begin(q);
    copy_w(m, b);
    cr_expect(memcmp(a, b, total * sizeof *a) == 0, "same seed, different noise");
    set_w(m, clean);
    rc_optim_begin(r);
    copy_w(m, b);
    cr_expect(memcmp(a, b, total * sizeof *a) != 0, "different seeds, same noise");
    set_w(m, clean);
    rc_optim_free(p);
    rc_optim_free(q);
    rc_optim_free(r);
    free(clean);
    free(a);
    free(b);
    rc_model_free(m);
}

/* ---- non-finite gradients and misuse ------------------------------------------------- */

Test(optim, nonfinite_gradient)
{
    rc_model *m = tiny_model(3);
    size_t total = rc_model_param_total(m);
    float *before = malloc(total * sizeof *before), *after = malloc(total * sizeof *after),
          *g = malloc(total * sizeof *g);
    rc_optim_opts o = rc_optim_defaults(RC_OPT_SGD);
    o.momentum = 0.9f;
    rc_optim *opt = rc_optim_new(m, &o);
    cr_assert_not_null(opt);

    /* a NaN input makes every gradient that depends on it NaN */
    copy_w(m, before);
    fwd_bwd(m, NAN);
    copy_g(m, g);
    size_t bad = 0;
    for (size_t k = 0; k < total; k++) bad += !isfinite(g[k]);
    cr_assert_gt(bad, 0, "no non-finite gradient provoked");
    cr_expect_eq(rc_optim_step(opt, 0.1f), RC_ERR_STATE);
    copy_w(m, after);
    cr_expect(memcmp(before, after, total * sizeof *after) == 0, "weights changed on a non-finite gradient");
    cr_expect_eq(rc_optim_steps(opt), 0);
    cr_expect(!isfinite(rc_optim_grad_norm(opt)));
    for (int i = 0; i < optim_state_count(opt); i++) {
        size_t n;
        float *s = optim_state_data(opt, i, &n);
        for (size_t j = 0; j < n; j++) cr_expect_eq(s[j], 0.0f, "state %s changed", optim_state_name(opt, i));
    }
    rc_optim_free(opt);

    /* with weight noise: the clean weights come back, nothing else changes */
    o.weight_noise = 0.1f;
    opt = rc_optim_new(m, &o);
    cr_assert_not_null(opt);
    cr_expect_eq(rc_optim_begin(opt), RC_OK);
    copy_w(m, after);
    cr_expect(memcmp(before, after, total * sizeof *after) != 0, "no noise");
    fwd_bwd(m, NAN);
    cr_expect_eq(rc_optim_step(opt, 0.1f), RC_ERR_STATE);
    copy_w(m, after);
    cr_expect(memcmp(before, after, total * sizeof *after) == 0, "clean weights not restored on failure");
    cr_expect_eq(rc_optim_steps(opt), 0);
    /* a good step afterwards works */
    fwd_bwd(m, 0.0f);
    cr_expect_eq(rc_optim_step(opt, 0.1f), RC_OK);
    cr_expect_eq(rc_optim_steps(opt), 1);
    cr_expect(isfinite(rc_optim_grad_norm(opt)));
    rc_optim_free(opt);

    free(before);
    free(after);
    free(g);
    rc_model_free(m);
}

Test(optim, misuse)
{
    rc_model *m = tiny_model(2);
    rc_optim_opts o = rc_optim_defaults(RC_OPT_SGD);
    rc_optim *opt = rc_optim_new(m, &o);
    cr_assert_not_null(opt);
    /* no backward yet: no gradients */
    cr_expect_eq(rc_optim_step(opt, 0.1f), RC_ERR_STATE);
    cr_expect_eq(rc_optim_steps(opt), 0);
    fwd_bwd(m, 0.0f);
    cr_expect_eq(rc_optim_step(opt, -0.1f), RC_ERR_ARG);
    cr_expect_eq(rc_optim_step(opt, NAN), RC_ERR_ARG);
    cr_expect_eq(rc_optim_step(opt, INFINITY), RC_ERR_ARG);
    cr_expect_eq(rc_optim_steps(opt), 0);
    rc_optim_free(opt);

    cr_expect_eq(rc_optim_step(NULL, 0.1f), RC_ERR_ARG);
    cr_expect_eq(rc_optim_begin(NULL), RC_ERR_ARG);
    cr_expect_eq(rc_optim_steps(NULL), 0);
    cr_expect_eq(rc_optim_grad_norm(NULL), 0.0);
    rc_optim_free(NULL);
    cr_expect_null(rc_optim_new(NULL, &o));
    cr_expect_null(rc_optim_new(m, NULL));
    cr_expect_eq(optim_state_count(NULL), 0);
    cr_expect_null(optim_state_name(NULL, 0));
    size_t n = 5;
    cr_expect_null(optim_state_data(NULL, 0, &n));
    cr_expect_eq(n, 0);
    rc_model_free(m);
}

Test(optim, invalid_options)
{
    rc_model *m = tiny_model(2);
    rc_optim_opts bad[16];
    int nb = 0;
#define BAD(kind, field, value)                                                        \
    do {                                                                               \
        bad[nb] = rc_optim_defaults(kind);                                             \
        bad[nb].field = value;                                                         \
        nb++;                                                                          \
    } while (0)
    BAD(RC_OPT_SGD, kind, (rc_optim_kind)7);
    BAD(RC_OPT_SGD, momentum, -0.5f);
    BAD(RC_OPT_SGD, momentum, NAN);
    BAD(RC_OPT_SGD, nesterov, 1);   /* without momentum */
    BAD(RC_OPT_ADAM, beta1, 1.0f);
    BAD(RC_OPT_ADAM, beta2, -0.1f);
    BAD(RC_OPT_ADAM, eps, 0.0f);
    BAD(RC_OPT_RMSPROP, rho, 1.5f);
    BAD(RC_OPT_ADAGRAD, eps, -1e-8f);
    BAD(RC_OPT_SGD, weight_decay, -0.1f);
    BAD(RC_OPT_ADAM, weight_decay, INFINITY);
    BAD(RC_OPT_SGD, clip_norm, -1.0f);
    BAD(RC_OPT_SGD, clip_norm, NAN);
    BAD(RC_OPT_SGD, weight_noise, -0.01f);
#undef BAD
    for (int i = 0; i < nb; i++) {
        const char *e = optim_opts_error(&bad[i]);
        cr_expect_not_null(e, "case %d accepted", i);
        rc_optim *opt = rc_optim_new(m, &bad[i]);
        cr_expect_null(opt, "case %d (%s): an optimiser was made", i, e ? e : "");
        rc_optim_free(opt);
    }
    /* fields of other kinds are not checked */
    rc_optim_opts ok = rc_optim_defaults(RC_OPT_SGD);
    ok.beta1 = 5.0f;
    ok.rho = -1.0f;
    ok.eps = 0.0f;
    rc_optim *opt = rc_optim_new(m, &ok);
    cr_expect_not_null(opt, "%s", optim_opts_error(&ok));
    rc_optim_free(opt);
    rc_model_free(m);
}

/* Every failed begin/step leaves a message in the optimiser's own slot, naming what
 * was wrong; a successful call clears it. A failing rc_optim_new reports on the model. */
Test(optim, error_messages)
{
    rc_model *m = tiny_model(3);
    rc_optim_opts o = rc_optim_defaults(RC_OPT_SGD);
    o.weight_noise = 0.01f;
    rc_optim *opt = rc_optim_new(m, &o);
    cr_assert_not_null(opt);
    cr_expect_str_eq(rc_optim_error(opt), "");

    /* no backward yet */
    cr_expect_eq(rc_optim_step(opt, 0.1f), RC_ERR_STATE);
    cr_expect(strstr(rc_optim_error(opt), "rc_optim_step") && strstr(rc_optim_error(opt), "no parameter has a gradient"),
              "message: \"%s\"", rc_optim_error(opt));
    /* a successful begin clears it */
    cr_expect_eq(rc_optim_begin(opt), RC_OK);
    cr_expect_str_eq(rc_optim_error(opt), "");

    /* a bad learning rate: the value is said */
    fwd_bwd(m, 0.0f);
    cr_expect_eq(rc_optim_step(opt, -0.25f), RC_ERR_ARG);
    cr_expect(strstr(rc_optim_error(opt), "learning rate -0.25"), "message: \"%s\"", rc_optim_error(opt));
    cr_expect_eq(rc_optim_step(opt, NAN), RC_ERR_ARG);
    cr_expect(strstr(rc_optim_error(opt), "learning rate nan") || strstr(rc_optim_error(opt), "learning rate -nan"),
              "message: \"%s\"", rc_optim_error(opt));
    cr_expect_eq(rc_optim_step(opt, 0.1f), RC_OK, "%s", rc_optim_error(opt));
    cr_expect_str_eq(rc_optim_error(opt), "");

    /* a non-finite gradient: the first parameter (in order) holding one is named */
    fwd_bwd(m, NAN);
    const char *first = NULL;
    size_t n;
    for (int i = 0; i < rc_model_param_count(m) && !first; i++) {
        param(m, i, &n);
        const float *g = rc_model_grad(m, rc_model_param_name(m, i));
        for (size_t j = 0; g && j < n && !first; j++)
            if (!isfinite(g[j])) first = rc_model_param_name(m, i);
    }
    cr_assert_not_null(first, "no non-finite gradient provoked");
    char want[128];
    snprintf(want, sizeof want, "gradient of parameter \"%s\" is not finite", first);
    cr_expect_eq(rc_optim_step(opt, 0.1f), RC_ERR_STATE);
    cr_expect(strstr(rc_optim_error(opt), want), "message: \"%s\", expected \"%s\" in it", rc_optim_error(opt), want);
    rc_optim_free(opt);

    cr_expect_str_eq(rc_optim_error(NULL), "no optimiser (NULL)");
    /* a constructor's failure is reported on its parent: the model */
    o = rc_optim_defaults(RC_OPT_SGD);
    o.momentum = -1.0f;
    cr_expect_null(rc_optim_new(m, &o));
    cr_expect(strstr(rc_model_error(m), "momentum"), "model message: \"%s\"", rc_model_error(m));
    rc_model_free(m);
}

/* ---- schedules -------------------------------------------------------------------- */

Test(optim, schedules)
{
    rc_schedule c = {.kind = RC_SCHED_CONSTANT, .lr = 0.3f};
    for (int e = 1; e <= 20; e++) cr_expect_eq(rc_schedule_lr(&c, e, e / 20.0), 0.3f);

    rc_schedule s = {.kind = RC_SCHED_STEP, .lr = 1.0f, .start = 5, .factor = 0.5f};
    for (int e = 1; e <= 4; e++) cr_expect_eq(rc_schedule_lr(&s, e, 0.0), 1.0f, "epoch %d", e);
    cr_expect_eq(rc_schedule_lr(&s, 5, 0.0), 0.5f);
    cr_expect_eq(rc_schedule_lr(&s, 6, 0.0), 0.25f);
    cr_expect_eq(rc_schedule_lr(&s, 10, 0.0), 1.0f / 64.0f);
    s.lr = 0.1f;
    cr_expect(close_to(rc_schedule_lr(&s, 4, 0.0), 0.1), "%g", (double)rc_schedule_lr(&s, 4, 0.0));
    cr_expect(close_to(rc_schedule_lr(&s, 5, 0.0), 0.05), "%g", (double)rc_schedule_lr(&s, 5, 0.0));
    cr_expect(close_to(rc_schedule_lr(&s, 6, 0.0), 0.025), "%g", (double)rc_schedule_lr(&s, 6, 0.0));

    rc_schedule k = {.kind = RC_SCHED_COSINE, .lr = 2.0f, .min_frac = 0.1f};
    cr_expect(close_to(rc_schedule_lr(&k, 1, 0.0), 2.0));
    cr_expect(close_to(rc_schedule_lr(&k, 1, 0.5), 2.0 * (0.1 + 0.9 * 0.5)), "%g", (double)rc_schedule_lr(&k, 1, 0.5));
    cr_expect(close_to(rc_schedule_lr(&k, 1, 1.0), 0.2), "%g", (double)rc_schedule_lr(&k, 1, 1.0));
    cr_expect(close_to(rc_schedule_lr(&k, 1, 0.25), 2.0 * (0.1 + 0.9 * (1 + cos(3.14159265358979323846 / 4)) / 2)));
    k.min_frac = 0.0f;
    cr_expect(fabs(rc_schedule_lr(&k, 1, 1.0)) <= 1e-7);
    cr_expect_eq(rc_schedule_lr(NULL, 1, 0.0), 0.0f);
}

/* ---- state for checkpoints -------------------------------------------------------- */

Test(optim, state_names)
{
    rc_model *m = tiny_model(2);
    int np = rc_model_param_count(m);
    rc_optim_opts o = rc_optim_defaults(RC_OPT_ADAM);
    rc_optim *a = rc_optim_new(m, &o);
    cr_assert_not_null(a);
    cr_expect_eq(optim_state_count(a), 2 * np);
    for (int i = 0; i < np; i++) {
        char e[128];
        size_t n, pn;
        param(m, i, &pn);
        snprintf(e, sizeof e, "adam.m/%s", rc_model_param_name(m, i));
        cr_expect_str_eq(optim_state_name(a, 2 * i), e);
        snprintf(e, sizeof e, "adam.v/%s", rc_model_param_name(m, i));
        cr_expect_str_eq(optim_state_name(a, 2 * i + 1), e);
        cr_expect_not_null(optim_state_data(a, 2 * i + 1, &n));
        cr_expect_eq(n, pn);
    }
    cr_expect_null(optim_state_name(a, 2 * np));
    cr_expect_null(optim_state_name(a, -1));
    rc_optim_free(a);

    static const struct { rc_optim_kind k; float mu; int per; const char *prefix; } kinds[] = {
        {RC_OPT_SGD, 0.0f, 0, ""}, {RC_OPT_SGD, 0.9f, 1, "sgd.v/"},
        {RC_OPT_RMSPROP, 0.0f, 1, "rmsprop.s/"}, {RC_OPT_ADAGRAD, 0.0f, 1, "adagrad.s/"}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        o = rc_optim_defaults(kinds[k].k);
        o.momentum = kinds[k].mu;
        a = rc_optim_new(m, &o);
        cr_assert_not_null(a);
        cr_expect_eq(optim_state_count(a), kinds[k].per * np);
        if (kinds[k].per) {
            char e[128];
            snprintf(e, sizeof e, "%s%s", kinds[k].prefix, rc_model_param_name(m, 0));
            cr_expect_str_eq(optim_state_name(a, 0), e);
        }
        rc_optim_free(a);
    }
    rc_model_free(m);
}

/* One training step: begin, forward, backward, step. */
static void train_step(rc_model *m, rc_optim *o, float lr)
{
    cr_expect_eq(rc_optim_begin(o), RC_OK);
    fwd_bwd(m, 0.0f);
    cr_expect_eq(rc_optim_step(o, lr), RC_OK);
}

/* Two steps on (m1, a); a copy (m2, b) is made from m1's weights and a's state; two
 * further steps on both give bitwise equal weights and states. */
static void round_trip(rc_optim_opts o, const char *what)
{
    rc_model *m1 = tiny_model(4), *m2 = tiny_model(4);
    size_t total = rc_model_param_total(m1);
    rc_optim *a = rc_optim_new(m1, &o);
    cr_assert_not_null(a);
    train_step(m1, a, 0.01f);
    train_step(m1, a, 0.01f);

    /* save: weights and the optimiser's state into plain buffers */
    float *w = malloc(total * sizeof *w), *w2 = malloc(total * sizeof *w2);
    copy_w(m1, w);
    int ns = optim_state_count(a);
    float **saved = calloc((size_t)(ns ? ns : 1), sizeof *saved);
    char **names = calloc((size_t)(ns ? ns : 1), sizeof *names);
    for (int i = 0; i < ns; i++) {
        size_t n;
        const float *d = optim_state_data(a, i, &n);
        saved[i] = malloc(n * sizeof(float));
        memcpy(saved[i], d, n * sizeof(float));
        names[i] = strdup(optim_state_name(a, i));
    }
    uint64_t steps, rng[4];
    optim_get_scalars(a, &steps, rng);
    cr_expect_eq(steps, 2);

    /* restore into a fresh optimiser of a fresh model */
    set_w(m2, w);
    rc_optim *b = rc_optim_new(m2, &o);
    cr_assert_not_null(b);
    cr_expect_eq(optim_state_count(b), ns);
    for (int i = 0; i < ns; i++) {
        size_t n;
        float *d = optim_state_data(b, i, &n);
        cr_expect_str_eq(optim_state_name(b, i), names[i]);
        memcpy(d, saved[i], n * sizeof(float));
    }
    optim_set_scalars(b, steps, rng);
    cr_expect_eq(rc_optim_steps(b), 2);

    for (int k = 0; k < 2; k++) {
        train_step(m1, a, 0.01f);
        train_step(m2, b, 0.01f);
    }
    copy_w(m1, w);
    copy_w(m2, w2);
    cr_expect(memcmp(w, w2, total * sizeof *w) == 0, "%s: resumed weights differ", what);
    for (int i = 0; i < ns; i++) {
        size_t n;
        float *da = optim_state_data(a, i, &n), *db = optim_state_data(b, i, &n);
        cr_expect(memcmp(da, db, n * sizeof(float)) == 0, "%s: state %s differs", what, names[i]);
    }
    uint64_t s1, s2, r1[4], r2[4];
    optim_get_scalars(a, &s1, r1);
    optim_get_scalars(b, &s2, r2);
    cr_expect_eq(s1, 4);
    cr_expect_eq(s2, 4);
    cr_expect(memcmp(r1, r2, sizeof r1) == 0, "%s: generators differ", what);

    /* control: without the state, the continuation differs */
    if (ns > 0) {
        rc_model *m3 = tiny_model(4);
        set_w(m3, w);
        rc_optim *c = rc_optim_new(m3, &o);
        rc_optim *d = rc_optim_new(m1, &o);
        cr_assert(c && d);
        for (int i = 0; i < ns; i++) {   /* state of a into d only */
            size_t n;
            float *dst = optim_state_data(d, i, &n);
            memcpy(dst, optim_state_data(a, i, &n), n * sizeof(float));
        }
        optim_get_scalars(a, &steps, rng);
        optim_set_scalars(d, steps, rng);
        train_step(m1, d, 0.01f);
        train_step(m3, c, 0.01f);
        copy_w(m1, w);
        copy_w(m3, w2);
        cr_expect(memcmp(w, w2, total * sizeof *w) != 0, "%s: the state made no difference", what);
        rc_optim_free(c);
        rc_optim_free(d);
        rc_model_free(m3);
    }

    for (int i = 0; i < ns; i++) {
        free(saved[i]);
        free(names[i]);
    }
    free(saved);
    free(names);
    free(w);
    free(w2);
    rc_optim_free(a);
    rc_optim_free(b);
    rc_model_free(m1);
    rc_model_free(m2);
}

Test(optim, state_round_trip)
{
    rc_optim_opts o = rc_optim_defaults(RC_OPT_ADAM);
    o.weight_noise = 0.02f;
    o.clip_norm = 0.5f;
    o.weight_decay = 0.01f;
    o.decoupled = 1;
    round_trip(o, "adamw + noise + clip");
    o = rc_optim_defaults(RC_OPT_SGD);
    o.momentum = 0.9f;
    o.nesterov = 1;
    o.weight_noise = 0.01f;
    round_trip(o, "nesterov + noise");
    round_trip(rc_optim_defaults(RC_OPT_RMSPROP), "rmsprop");
    round_trip(rc_optim_defaults(RC_OPT_ADAGRAD), "adagrad");
}

/* ---- determinism ---------------------------------------------------------------------- */

/* A step is bitwise the same with 1 thread and with 4 (a 40000-element matrix takes
 * the parallel path), and the same step repeated gives the same weights. */
Test(optim, deterministic_threads)
{
    rc_model *m = tiny_model(200);
    size_t total = rc_model_param_total(m);
    float *w0 = malloc(total * sizeof *w0), *wa = malloc(total * sizeof *wa), *wb = malloc(total * sizeof *wb);
    fwd_bwd(m, 0.0f);
    copy_w(m, w0);
    rc_optim_opts o = rc_optim_defaults(RC_OPT_ADAM);
    o.clip_norm = 0.1f;
    o.weight_decay = 0.01f;
    for (int rep = 0; rep < 2; rep++) {
        int threads = rep == 0 ? 1 : 4;
        rc_set_num_threads(threads);
        set_w(m, w0);
        rc_optim *opt = rc_optim_new(m, &o);
        cr_assert_not_null(opt);
        cr_expect_eq(rc_optim_step(opt, 0.01f), RC_OK);
        cr_expect_eq(rc_optim_step(opt, 0.01f), RC_OK);   /* same gradients, moved moments */
        copy_w(m, rep == 0 ? wa : wb);
        rc_optim_free(opt);
    }
    rc_set_num_threads(0);
    cr_expect(memcmp(wa, wb, total * sizeof *wa) == 0, "1 and 4 threads give different weights");
    cr_expect(memcmp(wa, w0, total * sizeof *wa) != 0, "no update");
    free(w0);
    free(wa);
    free(wb);
    rc_model_free(m);
}
