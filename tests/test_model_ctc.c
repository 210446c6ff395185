/* The model's CTC head (suite "model_ctc"): its loss and gradient are rc_ctc's on the
 * head's outputs for every normalisation, rc_gradcheck through a bidirectional model,
 * a sample in a mixed-length batch scores as it does alone, plans are not rebuilt for
 * narrower labels, bad batches and options fail naming what was wrong and lose
 * nothing, and a BLSTM learns a toy transcription task (greedy decoding inside). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"   /* model_last_plan, model_last_param, model_plan_builds */
#include "recur.h"

static uint64_t rng_next(uint64_t *s)   /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int rng_int(uint64_t *s, int n) { return (int)(rng_next(s) % (uint64_t)n); }
static float rng_unif(uint64_t *s) { return (float)((double)(rng_next(s) >> 11) * (2.0 / 9007199254740992.0) - 1.0); }

static rc_model_opts ctc_opts(int input, int bidir, int classes, rc_loss_norm norm)
{
    rc_model_opts o = rc_model_defaults();
    o.input_size = input;
    o.bidirectional = bidir;
    o.head = RC_HEAD_CTC;
    o.output_size = classes;
    o.norm = norm;
    return o;
}

static rc_model *new_model(int hidden, const rc_model_opts *o)
{
    rc_cell *cell = rc_cell_lstm(hidden, NULL);
    cr_assert_not_null(cell);
    rc_model *m = rc_model_new(cell, o);
    rc_cell_free(cell);
    cr_assert_not_null(m, "rc_model_new returned NULL");
    cr_assert_eq(rc_model_status(m), RC_OK, "rc_model_new: %s", rc_model_error(m));
    return m;
}

static double must_forward(rc_model *m, const rc_batch *b)
{
    double loss = NAN;
    rc_status s = rc_model_forward(m, b, &loss);
    cr_assert_eq(s, RC_OK, "forward: %s (%s)", rc_status_name(s), rc_model_error(m));
    return loss;
}

static int close_to(double a, double b, double rel) { return fabs(a - b) <= rel * (1 + fabs(b)); }

/* A batch owned by the test: random inputs in [-1, 1], labels of the given lengths
 * drawn from the classes other than `blank`, rows S wide (padded with -7, which
 * nothing may read). */
typedef struct cbatch {
    rc_batch b;
    float *x;
    int32_t *len, *lab, *llen;
} cbatch;

static void cbatch_make(cbatch *d, int T, int B, int I, int A, int blank, int S, const int32_t *len,
                        const int32_t *llen, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    uint64_t s = seed;
    d->x = malloc((size_t)T * B * I * sizeof *d->x);
    d->lab = malloc((size_t)(B * S > 0 ? B * S : 1) * sizeof *d->lab);
    d->llen = malloc((size_t)B * sizeof *d->llen);
    cr_assert(d->x && d->lab && d->llen);
    for (int i = 0; i < T * B * I; i++) d->x[i] = rng_unif(&s);
    for (int i = 0; i < B * S; i++) d->lab[i] = -7;
    for (int j = 0; j < B; j++) {
        d->llen[j] = llen[j];
        for (int k = 0; k < llen[j]; k++) {
            int c = rng_int(&s, A - 1);
            d->lab[j * S + k] = c < blank ? c : c + 1;
        }
    }
    if (len) {
        d->len = malloc((size_t)B * sizeof *d->len);
        cr_assert_not_null(d->len);
        memcpy(d->len, len, (size_t)B * sizeof *d->len);
    }
    d->b = (rc_batch){ .T = T, .B = B, .x = d->x, .lengths = d->len, .labels = d->lab, .label_lengths = d->llen,
                       .S = S };
}

static void cbatch_free(cbatch *d)
{
    free(d->x);
    free(d->len);
    free(d->lab);
    free(d->llen);
    memset(d, 0, sizeof *d);
}

/* Sample j of src alone: B = 1, T = its length, its labels in a row of their own width. */
static void cbatch_alone(const cbatch *src, int I, int j, cbatch *d)
{
    int B = src->b.B, T = src->len ? src->len[j] : src->b.T, L = src->llen[j];
    memset(d, 0, sizeof *d);
    d->x = malloc((size_t)T * I * sizeof *d->x);
    d->lab = malloc((size_t)(L > 0 ? L : 1) * sizeof *d->lab);
    d->llen = malloc(sizeof *d->llen);
    cr_assert(d->x && d->lab && d->llen);
    for (int t = 0; t < T; t++) memcpy(d->x + t * I, src->x + (t * B + j) * I, (size_t)I * sizeof *d->x);
    memcpy(d->lab, src->lab + j * src->b.S, (size_t)L * sizeof *d->lab);
    d->llen[0] = L;
    d->b = (rc_batch){ .T = T, .B = 1, .x = d->x, .labels = d->lab, .label_lengths = d->llen, .S = L };
}

/* ---- the loss is rc_ctc's on the head's outputs --------------------------------------- */

/* rc_ctc by hand on the model's last outputs, with the reduction its norm stands for:
 * the loss to *loss, the per-sample losses (RC_CTC_NONE) to per[], and sum over rows
 * of d loss / d logits (= the gradient of out.b) to gb[A]. */
static void ctc_by_hand(const rc_model *m, const rc_batch *bt, double *loss, float *per, double *gb)
{
    rc_model_opts o = rc_model_options(m);
    int T = bt->T, B = bt->B, N = T * B, A = o.output_size, S = bt->S;
    const float *logits = rc_model_output(m);
    cr_assert_not_null(logits);
    float *mask = malloc((size_t)N * sizeof *mask);
    cr_assert_not_null(mask);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < B; j++) mask[t * B + j] = !bt->lengths || t < bt->lengths[j] ? 1.0f : 0.0f;
    rc_ctc_reduction red = o.norm == RC_NORM_STEPS ? RC_CTC_MEAN_LABEL : o.norm == RC_NORM_SEQUENCES ?
                           RC_CTC_MEAN_BATCH : RC_CTC_SUM;
    for (int pass = 0; pass < 2; pass++) {   /* the model's reduction, then per sample */
        rc_graph *g = rc_graph_new();
        rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){ N, A });
        rc_node *lab = rc_input(g, "labels", RC_I32, 2, (int[]){ B, S });
        rc_node *ll = rc_input(g, "label_lengths", RC_I32, 1, &B);
        rc_node *mk = rc_input(g, "mask", RC_F32, 2, (int[]){ N, 1 });
        cr_assert_eq(rc_requires_grad(x, 1), RC_OK);
        rc_ctc_opts co = { .blank = o.ctc_blank, .reduction = pass ? RC_CTC_NONE : red,
                           .zero_infeasible = o.ctc_zero_infeasible };
        rc_node *l = rc_ctc(g, x, lab, ll, mk, &co);
        rc_plan *p = l ? rc_plan_new(g, 1, &l) : NULL;
        cr_assert_not_null(p, "%s", rc_graph_error(g));
        cr_assert_eq(rc_plan_feed(p, x, logits, (size_t)N * A), RC_OK);
        cr_assert_eq(rc_plan_feed(p, lab, bt->labels, (size_t)B * S), RC_OK);
        cr_assert_eq(rc_plan_feed(p, ll, bt->label_lengths, (size_t)B), RC_OK);
        cr_assert_eq(rc_plan_feed(p, mk, mask, (size_t)N), RC_OK);
        cr_assert_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
        const float *v = rc_plan_value(p, l);
        if (pass) {
            memcpy(per, v, (size_t)B * sizeof *per);
        } else {
            *loss = v[0];
            cr_assert_eq(rc_plan_backward(p, l), RC_OK, "%s", rc_plan_error(p));
            const float *gx = rc_plan_grad(p, x);
            for (int a = 0; a < A; a++) gb[a] = 0;
            for (int r = 0; r < N; r++)
                for (int a = 0; a < A; a++) gb[a] += gx[r * A + a];
        }
        rc_plan_free(p);
        rc_graph_free(g);
    }
    free(mask);
}

/* Every normalisation, a blank other than 0, a masked bidirectional model: the loss,
 * the per-sample losses, the stats and the head's bias gradient against rc_ctc. */
Test(model_ctc, loss_is_rc_ctc_on_the_outputs)
{
    enum { T = 7, B = 5, I = 3, A = 5, S = 6 };
    const int32_t len[B] = { 7, 3, 5, 4, 6 }, llen[B] = { 3, 1, 0, 2, 3 };
    const rc_loss_norm norms[3] = { RC_NORM_STEPS, RC_NORM_SEQUENCES, RC_NORM_SUM };
    for (int k = 0; k < 3; k++) {
        rc_model_opts o = ctc_opts(I, 1, A, norms[k]);
        o.ctc_blank = k == 1 ? 3 : 0;
        rc_model *m = new_model(4, &o);
        cbatch d;
        cbatch_make(&d, T, B, I, A, o.ctc_blank, S, len, llen, 40 + (uint64_t)k);
        double loss = must_forward(m, &d.b);
        cr_assert_eq(rc_model_backward(m), RC_OK, "%s", rc_model_error(m));
        double want = NAN, gb[A] = { 0 };
        float per[B];
        ctc_by_hand(m, &d.b, &want, per, gb);
        cr_expect(close_to(loss, want, 1e-5), "norm %d: model loss %.9g, rc_ctc %.9g", (int)norms[k], loss, want);
        const float *mine = rc_model_ctc_losses(m);
        cr_assert_not_null(mine);
        double sum = 0, count = 0, total = 0;
        for (int j = 0; j < B; j++) {
            cr_expect(close_to(mine[j], per[j], 1e-6), "norm %d: sample %d loss %.9g, rc_ctc %.9g", (int)norms[k], j,
                      (double)mine[j], (double)per[j]);
            total += per[j];
        }
        rc_model_last_stats(m, &sum, &count);
        cr_expect(close_to(sum, total, 1e-6), "stats sum %.9g, samples' losses %.9g", sum, total);
        cr_expect_eq(count, 3 + 1 + 0 + 2 + 3, "stats count %g is not the number of labels", count);
        const float *g = rc_model_grad(m, "out.b");
        cr_assert_not_null(g);
        double gmax = 0;
        for (int a = 0; a < A; a++) gmax = fmax(gmax, fabs(gb[a]));
        cr_expect(gmax > 1e-3, "the bias gradient is ~0: nothing compared");
        for (int a = 0; a < A; a++)
            cr_expect(fabs(g[a] - gb[a]) <= 1e-5 * (1 + gmax), "norm %d: d loss / d out.b[%d] = %.7g, by hand %.7g",
                      (int)norms[k], a, (double)g[a], gb[a]);
        cbatch_free(&d);
        rc_model_free(m);
    }
}

/* ---- gradients -------------------------------------------------------------------------- */

/* rc_gradcheck on every parameter of a bidirectional one-layer model with the CTC
 * head, through its own plan (masks and reversal indices as the model feeds them). */
Test(model_ctc, gradcheck_bidirectional)
{
    enum { T = 6, B = 3, I = 3, A = 4, S = 3 };
    const int32_t len[B] = { 6, 4, 5 }, llen[B] = { 3, 1, 2 };
    rc_model_opts o = ctc_opts(I, 1, A, RC_NORM_SUM);
    rc_model *m = new_model(3, &o);
    /* larger recurrent and input weights make every parameter matter */
    for (int i = 0; i < rc_model_param_count(m); i++) {
        int nd = 0, sh[RC_MAX_DIMS] = { 0 };
        const char *name = rc_model_param_name(m, i);
        float *w = rc_model_param(m, name, &nd, sh);
        size_t n = 1;
        for (int k = 0; k < nd; k++) n *= (size_t)sh[k];
        if (strstr(name, ".W_"))
            for (size_t k = 0; k < n; k++) w[k] *= 3.0f;
    }
    cbatch d;
    cbatch_make(&d, T, B, I, A, 0, S, len, llen, 7);
    must_forward(m, &d.b);
    rc_node *loss = NULL;
    rc_plan *p = model_last_plan(m, &loss);
    cr_assert(p && loss);
    int n = rc_model_param_count(m);
    rc_node **wrt = calloc((size_t)n, sizeof *wrt);
    rc_gradcheck_report *rep = calloc((size_t)n, sizeof *rep);
    cr_assert(wrt && rep);
    for (int i = 0; i < n; i++) {
        wrt[i] = model_last_param(m, i);
        cr_assert_not_null(wrt[i], "no node for parameter %s", rc_model_param_name(m, i));
    }
    rc_gradcheck_opts go = { .eps = 1e-2f, .max_entries = 12 };
    cr_assert_eq(rc_gradcheck_ex(p, loss, n, wrt, &go, rep), RC_OK, "%s", rc_plan_error(p));
    for (int i = 0; i < n; i++) {
        cr_expect(rep[i].verdict != RC_GC_WRONG && rep[i].err <= 2e-3 + 4 * rep[i].noise,
                  "%s: verdict %d, err %.3g (noise %.3g), at [%zu] g %.6g numerical %.6g", rc_model_param_name(m, i),
                  (int)rep[i].verdict, rep[i].err, rep[i].noise, rep[i].worst, rep[i].worst_g, rep[i].worst_num);
        cr_expect(rep[i].checked > 0, "%s: nothing checked", rc_model_param_name(m, i));
    }
    free(wrt);
    free(rep);
    cbatch_free(&d);
    rc_model_free(m);
}

/* ---- masks: a sample in a mixed batch is the sample alone ----------------------------------- */

/* Per-sample losses of a mixed-length batch (bidirectional: each sequence reversed
 * within its own length) equal each sample run alone, and with RC_NORM_SUM the
 * batch's gradient is the sum of the samples' gradients. */
Test(model_ctc, mixed_lengths_are_each_sample_alone)
{
    enum { T = 8, B = 5, I = 3, A = 4, S = 5 };
    const int32_t len[B] = { 8, 3, 5, 1, 6 }, llen[B] = { 4, 2, 0, 1, 3 };
    rc_model_opts o = ctc_opts(I, 1, A, RC_NORM_SUM);
    rc_model *m = new_model(5, &o);
    cbatch d;
    cbatch_make(&d, T, B, I, A, 0, S, len, llen, 99);
    double loss = must_forward(m, &d.b);
    cr_assert_eq(rc_model_backward(m), RC_OK, "%s", rc_model_error(m));
    float per[B];
    memcpy(per, rc_model_ctc_losses(m), sizeof per);
    int np = rc_model_param_count(m);
    float **gsum = calloc((size_t)np, sizeof *gsum), **gbatch = calloc((size_t)np, sizeof *gbatch);
    size_t *sz = calloc((size_t)np, sizeof *sz);
    cr_assert(gsum && gbatch && sz);
    for (int i = 0; i < np; i++) {
        int nd = 0, sh[RC_MAX_DIMS] = { 0 };
        rc_model_param(m, rc_model_param_name(m, i), &nd, sh);
        sz[i] = 1;
        for (int k = 0; k < nd; k++) sz[i] *= (size_t)sh[k];
        gsum[i] = calloc(sz[i], sizeof **gsum);
        gbatch[i] = malloc(sz[i] * sizeof **gbatch);
        cr_assert(gsum[i] && gbatch[i]);
        memcpy(gbatch[i], rc_model_grad(m, rc_model_param_name(m, i)), sz[i] * sizeof **gbatch);
    }
    double total = 0;
    for (int j = 0; j < B; j++) {
        cbatch a;
        cbatch_alone(&d, I, j, &a);
        double l = must_forward(m, &a.b);
        cr_assert_eq(rc_model_backward(m), RC_OK, "%s", rc_model_error(m));
        cr_expect(close_to(per[j], l, 1e-5), "sample %d (length %d, %d labels): %.8g in the batch, %.8g alone", j,
                  len[j], llen[j], (double)per[j], l);
        total += l;
        for (int i = 0; i < np; i++) {
            const float *g = rc_model_grad(m, rc_model_param_name(m, i));
            for (size_t k = 0; k < sz[i]; k++) gsum[i][k] += g[k];
        }
        cbatch_free(&a);
    }
    cr_expect(close_to(loss, total, 1e-5), "batch loss %.8g, samples alone %.8g", loss, total);
    for (int i = 0; i < np; i++) {
        double mx = 0, diff = 0;
        for (size_t k = 0; k < sz[i]; k++) {
            mx = fmax(mx, fabs(gsum[i][k]));
            diff = fmax(diff, fabs(gsum[i][k] - gbatch[i][k]));
        }
        cr_expect(diff <= 1e-4 * (1 + mx), "%s: batch gradient differs from the samples' sum by %.3g (max %.3g)",
                  rc_model_param_name(m, i), diff, mx);
        free(gsum[i]);
        free(gbatch[i]);
    }
    free(gsum);
    free(gbatch);
    free(sz);
    cbatch_free(&d);
    rc_model_free(m);
}

/* ---- plans and the labels' width ------------------------------------------------------- */

/* A plan is built once per (T, B) for labels up to its width (the longest rounded up
 * to 8) and widened only when a batch needs more; the batch's own row width S does
 * not matter; a narrower batch on a wide plan scores as on a fresh narrow one. */
Test(model_ctc, label_width_does_not_rebuild_plans)
{
    enum { T = 40, B = 3, I = 2, A = 4, S = 20 };
    rc_model_opts o = ctc_opts(I, 0, A, RC_NORM_STEPS);
    rc_model *m = new_model(4, &o), *fresh = new_model(4, &o);
    struct { int32_t llen[B]; int S; int rebuild; } steps[] = {
        { { 3, 1, 2 }, 3, 1 },     /* first plan: width 8 */
        { { 2, 7, 0 }, 20, 0 },    /* wider rows, same longest bucket */
        { { 8, 1, 1 }, 8, 0 },     /* 8 still fits width 8 */
        { { 9, 1, 1 }, 9, 1 },     /* widened to 16 */
        { { 2, 2, 2 }, 2, 0 },     /* narrower: the wide plan serves */
        { { 16, 0, 3 }, 16, 0 },
    };
    uint64_t before = model_plan_builds(m);
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        cbatch d;
        cbatch_make(&d, T, B, I, A, 0, steps[k].S, NULL, steps[k].llen, 3 + k);
        double loss = must_forward(m, &d.b);
        uint64_t now = model_plan_builds(m);
        cr_expect_eq(now - before, (uint64_t)steps[k].rebuild, "batch %zu (S %d): %llu plans built, expected %d", k,
                     steps[k].S, (unsigned long long)(now - before), steps[k].rebuild);
        before = now;
        if (k == 4) {   /* on the 16-wide plan, and on a fresh model's 8-wide one */
            double want = must_forward(fresh, &d.b);
            cr_expect(close_to(loss, want, 1e-6), "wide plan %.9g, narrow plan %.9g", loss, want);
        }
        cbatch_free(&d);
    }
    rc_model_free(m);
    rc_model_free(fresh);
}

/* Without transcripts (every label length 0, S = 0, labels NULL) a forward gives the
 * same outputs, for decoding. */
Test(model_ctc, outputs_without_transcripts)
{
    enum { T = 9, B = 3, I = 2, A = 4, S = 3 };
    const int32_t len[B] = { 9, 4, 7 }, llen[B] = { 3, 2, 1 }, none[B] = { 0, 0, 0 };
    rc_model_opts o = ctc_opts(I, 1, A, RC_NORM_STEPS);
    rc_model *m = new_model(4, &o);
    cbatch d;
    cbatch_make(&d, T, B, I, A, 0, S, len, llen, 8);
    must_forward(m, &d.b);
    float out[T * B * A];
    memcpy(out, rc_model_output(m), sizeof out);
    rc_batch b = d.b;
    b.labels = NULL;
    b.label_lengths = none;
    b.S = 0;
    double loss = must_forward(m, &b);
    cr_expect(isfinite(loss) && loss > 0, "loss of the blank paths %g", loss);
    cr_expect(memcmp(out, rc_model_output(m), sizeof out) == 0, "the outputs changed without transcripts");
    cbatch_free(&d);
    rc_model_free(m);
}

/* ---- bad batches and options ------------------------------------------------------------ */

static void expect_fails(rc_model *m, const rc_batch *b, const char *what, const char *part1, const char *part2)
{
    double loss = 123;
    rc_status s = rc_model_forward(m, b, &loss);
    cr_expect_neq(s, RC_OK, "%s: the forward succeeded", what);
    cr_expect_eq(rc_model_status(m), s, "%s: status not recorded", what);
    const char *e = rc_model_error(m);
    cr_expect(strstr(e, part1) && (!part2 || strstr(e, part2)), "%s: message '%s' lacks '%s' / '%s'", what, e, part1,
              part2 ? part2 : "");
    cr_expect(!strstr(e, "forward: forward"), "%s: message '%s' says forward twice", what, e);
    cr_expect_eq(loss, 123, "%s: the loss was written", what);
    cr_expect_null(rc_model_ctc_losses(m), "%s: losses of a failed forward", what);
    cr_expect_eq(rc_model_ctc_infeasible(m, NULL, 0), -1, "%s: infeasible count of a failed forward", what);
}

Test(model_ctc, bad_batches_name_the_sample)
{
    enum { T = 6, B = 5, I = 2, A = 5, S = 4 };
    const int32_t len[B] = { 6, 6, 4, 6, 3 }, llen[B] = { 2, 3, 1, 3, 1 };
    rc_model_opts o = ctc_opts(I, 1, A, RC_NORM_STEPS);
    rc_model *m = new_model(3, &o);
    cbatch d;
    cbatch_make(&d, T, B, I, A, 0, S, len, llen, 5);
    double good = must_forward(m, &d.b);
    rc_batch b = d.b;

    b.labels = NULL;
    expect_fails(m, &b, "no labels", "batch.labels is NULL", NULL);
    b = d.b;
    b.label_lengths = NULL;
    expect_fails(m, &b, "no label lengths", "batch.label_lengths is NULL", NULL);
    b = d.b;
    b.S = -1;
    expect_fails(m, &b, "negative S", "batch.S = -1", NULL);

    int32_t save = d.lab[2 * S];
    d.lab[2 * S] = A;   /* sample 2's first label: one past the classes */
    expect_fails(m, &d.b, "label = A", "sample 2", "not a class of 5");
    d.lab[2 * S] = -1;
    expect_fails(m, &d.b, "negative label", "sample 2", "not a class of 5");
    d.lab[2 * S] = 0;   /* the blank */
    expect_fails(m, &d.b, "label = blank", "sample 2", "blank");
    d.lab[2 * S] = save;

    d.llen[3] = S + 1;
    expect_fails(m, &d.b, "label length > S", "sample 3", "outside 0..4");
    d.llen[3] = -1;
    expect_fails(m, &d.b, "negative label length", "sample 3", "outside 0..4");
    d.llen[3] = 3;

    /* more labels than the batch has steps (the row is wide enough) */
    int32_t wide[B * 8] = { 0 }, wl[B] = { 1, 1, 1, 1, 7 };
    for (int i = 0; i < B * 8; i++) wide[i] = 1 + i % (A - 1);
    b = d.b;
    b.labels = wide;
    b.label_lengths = wl;
    b.S = 8;
    expect_fails(m, &b, "label length > T", "sample 4", "cannot fit in the 6 steps");

    /* feasible for T, not for sample 4's 3 steps: the op's check, naming it */
    int32_t sl[B] = { 1, 1, 1, 1, 4 };
    b.label_lengths = sl;
    expect_fails(m, &b, "infeasible", "sample 4", "infeasible");

    /* nothing was lost: the good batch scores as before */
    double again = must_forward(m, &d.b);
    cr_expect_eq(again, good, "after the errors: loss %.9g, before %.9g", again, good);
    cbatch_free(&d);
    rc_model_free(m);
}

/* zero_infeasible: the short sample counts 0 with no gradient and is reported; the
 * others are unchanged. */
Test(model_ctc, zero_infeasible_reports_the_sample)
{
    enum { T = 6, B = 3, I = 2, A = 4, S = 4 };
    const int32_t len[B] = { 6, 2, 5 }, llen[B] = { 2, 3, 1 };   /* sample 1: 3 labels in 2 steps */
    rc_model_opts o = ctc_opts(I, 1, A, RC_NORM_SEQUENCES);
    o.ctc_zero_infeasible = 1;
    rc_model *m = new_model(3, &o);
    cbatch d;
    cbatch_make(&d, T, B, I, A, 0, S, len, llen, 17);
    double loss = must_forward(m, &d.b);
    cr_assert_eq(rc_model_backward(m), RC_OK, "%s", rc_model_error(m));
    const float *per = rc_model_ctc_losses(m);
    cr_assert_not_null(per);
    cr_expect_eq(per[1], 0.0f, "the infeasible sample's loss is %g", (double)per[1]);
    cr_expect(per[0] > 0 && per[2] > 0, "feasible samples' losses %g, %g", (double)per[0], (double)per[2]);
    cr_expect(close_to(loss, ((double)per[0] + per[2]) / B, 1e-6), "loss %.9g is not the batch mean", loss);
    int32_t which[4] = { -1, -1, -1, -1 };
    cr_expect_eq(rc_model_ctc_infeasible(m, which, 4), 1);
    cr_expect_eq(which[0], 1);
    for (int i = 0; i < rc_model_param_count(m); i++) {
        int nd = 0, sh[RC_MAX_DIMS] = { 0 };
        const char *name = rc_model_param_name(m, i);
        rc_model_param(m, name, &nd, sh);
        size_t n = 1;
        for (int k = 0; k < nd; k++) n *= (size_t)sh[k];
        const float *g = rc_model_grad(m, name);
        for (size_t k = 0; k < n; k++) cr_assert(isfinite(g[k]), "%s[%zu] = %g", name, k, (double)g[k]);
    }
    cbatch_free(&d);
    rc_model_free(m);
}

/* Another head has no CTC reports, and ignores a batch's labels. */
Test(model_ctc, other_heads_have_no_ctc_reports)
{
    enum { T = 3, B = 2, I = 2 };
    rc_model_opts o = ctc_opts(I, 0, 3, RC_NORM_STEPS);
    o.head = RC_HEAD_SOFTMAX;
    rc_model *m = new_model(3, &o);
    float x[T * B * I] = { 0 };
    int32_t tg[T * B] = { 0, 1, 2, 0, 1, 2 }, bad[B] = { -5, 99 };
    rc_batch b = { .T = T, .B = B, .x = x, .targets = tg, .label_lengths = bad, .S = -3 };
    must_forward(m, &b);
    cr_expect_null(rc_model_ctc_losses(m));
    cr_expect_eq(rc_model_ctc_infeasible(m, NULL, 0), -1);
    rc_model_free(m);
}

Test(model_ctc, options_refused)
{
    struct { const char *what, *msg; int out, blank, last; rc_loss_norm norm; } bad[] = {
        { "one class", "output_size >= 2", 1, 0, 0, RC_NORM_STEPS },
        { "blank = A", "ctc_blank 4 is not a class", 4, 4, 0, RC_NORM_STEPS },
        { "negative blank", "ctc_blank -1 is not a class", 4, -1, 0, RC_NORM_STEPS },
        { "last step only", "last_step_only must be 0", 4, 0, 1, RC_NORM_STEPS },
        { "unknown norm", "bad options", 4, 0, 0, (rc_loss_norm)3 },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        rc_model_opts o = ctc_opts(2, 0, bad[k].out, bad[k].norm);
        o.ctc_blank = bad[k].blank;
        o.last_step_only = bad[k].last;
        rc_cell *cell = rc_cell_lstm(3, NULL);
        rc_model *m = rc_model_new(cell, &o);
        rc_cell_free(cell);
        cr_assert_not_null(m);
        cr_expect_eq(rc_model_status(m), RC_ERR_ARG, "%s: status %d", bad[k].what, (int)rc_model_status(m));
        cr_expect(strstr(rc_model_error(m), bad[k].msg), "%s: message '%s' lacks '%s'", bad[k].what,
                  rc_model_error(m), bad[k].msg);
        rc_model_free(m);
    }
}

/* Carry is refused: on records an error, forwards fail while it is on, off again works. */
Test(model_ctc, carry_refused)
{
    enum { T = 4, B = 2, I = 2, A = 3, S = 2 };
    const int32_t llen[B] = { 2, 1 };
    rc_model_opts o = ctc_opts(I, 0, A, RC_NORM_STEPS);
    rc_model *m = new_model(3, &o);
    cbatch d;
    cbatch_make(&d, T, B, I, A, 0, S, NULL, llen, 1);
    double good = must_forward(m, &d.b);
    rc_model_set_carry(m, 1);
    cr_expect_eq(rc_model_status(m), RC_ERR_STATE);
    cr_expect(strstr(rc_model_error(m), "carry"), "message '%s'", rc_model_error(m));
    expect_fails(m, &d.b, "carry on", "CTC head", "turn carry off");
    rc_model_set_carry(m, 0);
    cr_expect_eq(must_forward(m, &d.b), good, "after carry off");
    cbatch_free(&d);
    rc_model_free(m);
}

/* ---- a toy transcription task is learnt ------------------------------------------------ */

/* K symbols (classes 1..K, blank 0) shown as one-hot frames (feature s-1), each held
 * for 1..3 frames, with 0..2 noise frames (feature K: blank-like) before each symbol
 * and after the last; small noise on every feature. The transcript is the symbol
 * sequence (neighbours differ), 1..5 long. */
enum { TOY_K = 4, TOY_T = 28, TOY_LMAX = 5 };

static void toy_batch(cbatch *d, int B, uint64_t *s)
{
    int I = TOY_K + 1, T = TOY_T;
    memset(d, 0, sizeof *d);
    d->x = calloc((size_t)T * B * I, sizeof *d->x);
    d->len = malloc((size_t)B * sizeof *d->len);
    d->lab = malloc((size_t)B * TOY_LMAX * sizeof *d->lab);
    d->llen = malloc((size_t)B * sizeof *d->llen);
    cr_assert(d->x && d->len && d->lab && d->llen);
    for (int j = 0; j < B; j++) {
        int L = 1 + rng_int(s, TOY_LMAX), t = 0;
        for (int k = 0; k <= L; k++) {
            for (int n = rng_int(s, 3); n > 0; n--) d->x[(t++ * B + j) * I + TOY_K] = 1;
            if (k == L) break;
            int c;
            do c = 1 + rng_int(s, TOY_K);
            while (k > 0 && c == d->lab[j * TOY_LMAX + k - 1]);
            d->lab[j * TOY_LMAX + k] = c;
            for (int n = 1 + rng_int(s, 3); n > 0; n--) d->x[(t++ * B + j) * I + c - 1] = 1;
        }
        d->len[j] = t;
        d->llen[j] = L;
    }
    for (int i = 0; i < T * B * I; i++) d->x[i] += 0.1f * rng_unif(s);
    d->b = (rc_batch){ .T = T, .B = B, .x = d->x, .lengths = d->len, .labels = d->lab, .label_lengths = d->llen,
                       .S = TOY_LMAX };
}

/* Greedy decoding of sample j: the argmax class of each of its frames, repeats merged,
 * blanks dropped; returns the number of labels written to out. */
static int greedy(const float *logits, int B, int A, int blank, int j, int len, int32_t *out, int cap)
{
    int n = 0, prev = -1;
    for (int t = 0; t < len; t++) {
        const float *r = logits + (size_t)(t * B + j) * A;
        int best = 0;
        for (int a = 1; a < A; a++) best = r[a] > r[best] ? a : best;
        if (best != prev && best != blank && n < cap) out[n++] = best;
        prev = best;
    }
    return n;
}

Test(model_ctc, blstm_learns_toy_transcription, .timeout = 60)
{
    enum { B = 16, STEPS = 250, TEST_B = 100 };
    rc_model_opts o = ctc_opts(TOY_K + 1, 1, TOY_K + 1, RC_NORM_STEPS);
    o.seed = 3;
    rc_model *m = new_model(16, &o);
    rc_optim_opts oo = rc_optim_defaults(RC_OPT_ADAM);
    rc_optim *opt = rc_optim_new(m, &oo);
    cr_assert_not_null(opt, "%s", rc_model_error(m));
    uint64_t s = 1234;
    double first = 0, last = 0;
    for (int step = 0; step < STEPS; step++) {
        cbatch d;
        toy_batch(&d, B, &s);
        double loss = must_forward(m, &d.b);
        cr_assert(isfinite(loss), "step %d: loss %g", step, loss);
        cr_assert_eq(rc_model_backward(m), RC_OK, "%s", rc_model_error(m));
        cr_assert_eq(rc_optim_step(opt, 0.01f), RC_OK, "%s", rc_optim_error(opt));
        if (step < 10) first += loss / 10;
        if (step >= STEPS - 10) last += loss / 10;
        cbatch_free(&d);
    }
    /* held-out sequences, evaluation mode */
    rc_model_set_training(m, 0);
    uint64_t ts = 98765;
    cbatch d;
    toy_batch(&d, TEST_B, &ts);
    must_forward(m, &d.b);
    double sum, count;
    rc_model_last_stats(m, &sum, &count);
    const float *logits = rc_model_output(m);
    int right = 0;
    for (int j = 0; j < TEST_B; j++) {
        int32_t got[TOY_T];
        int n = greedy(logits, TEST_B, TOY_K + 1, 0, j, d.len[j], got, TOY_T);
        right += n == d.llen[j] && memcmp(got, d.lab + j * TOY_LMAX, (size_t)n * sizeof *got) == 0;
    }
    cr_expect(last < 0.25 * first, "training loss per label %.4f -> %.4f", first, last);
    cr_expect(sum / count < 0.1, "held-out loss per label %.4f", sum / count);
    cr_expect(right >= 90, "greedy decoding: %d of %d held-out transcripts exact", right, TEST_B);
    cbatch_free(&d);
    rc_optim_free(opt);
    rc_model_free(m);
}
