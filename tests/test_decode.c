/* Tests of the decode layer (decode/): best-path decoding, the prefix beam search
 * with and without a language model (and the adapter of a recur model as one), forced
 * alignment, edit distances and error rates; and the stream-row access of rc_model
 * that the adapter uses.
 *
 * References: brute force over every path of T <= 6 steps (the probability of each
 * labelling as the sum over its alignments; the best alignment as the maximum), plain
 * full-matrix edit distances, hand-computed values. Checks use cr_expect (non-fatal)
 * where a test must still free what it made (the suite runs under LeakSanitizer). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"

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

/* Random logits [T*B*A] in [-scale, scale]. */
static float *random_logits(int T, int B, int A, double scale)
{
    float *x = malloc((size_t)T * B * A * sizeof *x);
    cr_assert(x);
    for (size_t i = 0; i < (size_t)T * B * A; i++) x[i] = (float)rng_unif(-scale, scale);
    return x;
}

/* Sample b's log-probabilities [Tb][A] in double. */
static double *logp_of(const float *x, int B, int A, int b, int Tb)
{
    double *lp = malloc(((size_t)Tb * A + 1) * sizeof *lp);
    cr_assert(lp);
    for (int t = 0; t < Tb; t++) {
        const float *r = x + ((size_t)t * B + b) * A;
        double m = r[0], s = 0;
        for (int a = 1; a < A; a++) m = r[a] > m ? r[a] : m;
        for (int a = 0; a < A; a++) s += exp((double)r[a] - m);
        for (int a = 0; a < A; a++) lp[(size_t)t * A + a] = (double)r[a] - m - log(s);
    }
    return lp;
}

/* ---- brute force over every path (T <= 6) ------------------------------------------- */

#define BF_MAXT 6
typedef struct labelling { int n; int lab[BF_MAXT]; double p; double best; } labelling;

/* Every labelling with its probability (sum over its paths) and its best path's
 * log-probability; returns how many (at most A^T). */
static int brute_labellings(const double *lp, int T, int A, int blank, labelling *out)
{
    int path[BF_MAXT] = { 0 }, nl = 0;
    for (;;) {
        labelling l = { 0 };
        double lq = 0;
        int prev = -1;
        for (int t = 0; t < T; t++) {
            lq += lp[t * A + path[t]];
            if (path[t] != blank && path[t] != prev) l.lab[l.n++] = path[t];
            prev = path[t];
        }
        int k = 0;
        for (; k < nl; k++)
            if (out[k].n == l.n && memcmp(out[k].lab, l.lab, (size_t)l.n * sizeof(int)) == 0) break;
        if (k == nl) {
            out[nl] = l;
            out[nl].p = 0;
            out[nl].best = -INFINITY;
            nl++;
        }
        out[k].p += exp(lq);
        if (lq > out[k].best) out[k].best = lq;
        int t = 0;
        while (t < T && ++path[t] == A) path[t++] = 0;
        if (t == T) break;
    }
    return nl;
}

static int ipow(int a, int n) { int r = 1; while (n-- > 0) r *= a; return r; }

/* ---- best path ----------------------------------------------------------------------- */

/* Logits of one sample whose argmax at step t is cls[t] (others 0, the argmax 1). */
static float *onehot_logits(const int *cls, int T, int A)
{
    float *x = calloc((size_t)T * A, sizeof *x);
    cr_assert(x);
    for (int t = 0; t < T; t++) x[t * A + cls[t]] = 1.0f;
    return x;
}

Test(decode, greedy_hand)
{
    /* steps: blank a a blank a b b blank -> a a b, emitted at 1, 4, 5 */
    int cls[8] = { 0, 1, 1, 0, 1, 2, 2, 0 };
    float *x = onehot_logits(cls, 8, 3);
    int32_t lab[8], fr[8], n = -1;
    char err[256];
    cr_expect_eq(rc_ctc_greedy(x, 8, 1, 3, NULL, 0, lab, fr, &n, err, sizeof err), RC_OK, "%s", err);
    cr_expect_eq(n, 3);
    int32_t want[3] = { 1, 1, 2 }, wantf[3] = { 1, 4, 5 };
    for (int k = 0; k < 3 && n == 3; k++) {
        cr_expect_eq(lab[k], want[k], "label %d", k);
        cr_expect_eq(fr[k], wantf[k], "frame %d", k);
    }
    /* blank 2: the b's are blanks now and class 0 a label: 0 1 0 1 0 */
    cr_expect_eq(rc_ctc_greedy(x, 8, 1, 3, NULL, 2, lab, NULL, &n, err, sizeof err), RC_OK, "%s", err);
    int32_t want2[5] = { 0, 1, 0, 1, 0 };
    cr_expect_eq(n, 5);
    for (int k = 0; k < 5 && n == 5; k++) cr_expect_eq(lab[k], want2[k], "blank 2: label %d", k);
    free(x);
}

Test(decode, greedy_tie_lowest_index)
{
    float x[3] = { 0.5f, 2.0f, 2.0f };   /* classes 1 and 2 tie: 1 wins */
    int32_t lab[1], n;
    cr_expect_eq(rc_ctc_greedy(x, 1, 1, 3, NULL, 0, lab, NULL, &n, NULL, 0), RC_OK);
    cr_expect(n == 1 && lab[0] == 1);
}

/* Batched with lengths = each sample alone; rows past a sample's length are NaN (so
 * reading one would be refused). */
Test(decode, greedy_batch_lengths)
{
    rng_state = 11;
    int T = 9, B = 4, A = 5;
    int32_t len[4] = { 9, 0, 4, 7 };
    float *x = random_logits(T, B, A, 3);
    for (int b = 0; b < B; b++)
        for (int t = len[b]; t < T; t++)
            for (int a = 0; a < A; a++) x[((size_t)t * B + b) * A + a] = NAN;
    int32_t lab[36], fr[36], n[4];
    char err[256];
    cr_assert_eq(rc_ctc_greedy(x, T, B, A, len, 0, lab, fr, n, err, sizeof err), RC_OK, "%s", err);
    for (int b = 0; b < B; b++) {
        float *one = malloc(((size_t)len[b] * A + 1) * sizeof *one);
        for (int t = 0; t < len[b]; t++) memcpy(one + t * A, x + ((size_t)t * B + b) * A, (size_t)A * sizeof *one);
        int32_t l1[9], f1[9], n1 = -1;
        if (len[b] > 0) {
            cr_expect_eq(rc_ctc_greedy(one, len[b], 1, A, NULL, 0, l1, f1, &n1, err, sizeof err), RC_OK, "%s", err);
        } else {
            n1 = 0;
        }
        cr_expect_eq(n[b], n1, "sample %d", b);
        for (int k = 0; k < n1 && k < n[b]; k++) {
            cr_expect_eq(lab[b * T + k], l1[k], "sample %d label %d", b, k);
            cr_expect_eq(fr[b * T + k], f1[k], "sample %d frame %d", b, k);
        }
        free(one);
    }
    free(x);
}

Test(decode, greedy_errors)
{
    float x[6] = { 0, 1, 2, 0, NAN, 1 };
    int32_t lab[2], n[1], bad_len[1] = { 3 };
    char err[256];
    cr_expect_eq(rc_ctc_greedy(x, 2, 1, 3, NULL, 0, lab, NULL, n, err, sizeof err), RC_ERR_ARG);
    cr_expect(strstr(err, "sample 0, step 1: class 1 is NaN"), "%s", err);
    x[4] = INFINITY;
    cr_expect_eq(rc_ctc_greedy(x, 2, 1, 3, NULL, 0, lab, NULL, n, err, sizeof err), RC_ERR_ARG);
    cr_expect(strstr(err, "+inf"), "%s", err);
    x[3] = x[4] = x[5] = -INFINITY;
    cr_expect_eq(rc_ctc_greedy(x, 2, 1, 3, NULL, 0, lab, NULL, n, err, sizeof err), RC_ERR_ARG);
    cr_expect(strstr(err, "every class is -inf"), "%s", err);
    cr_expect_eq(rc_ctc_greedy(x, 1, 1, 3, NULL, 3, lab, NULL, n, err, sizeof err), RC_ERR_ARG);
    cr_expect(strstr(err, "blank 3"), "%s", err);
    cr_expect_eq(rc_ctc_greedy(x, 1, 1, 3, bad_len, 0, lab, NULL, n, err, sizeof err), RC_ERR_ARG);
    cr_expect(strstr(err, "input length 3"), "%s", err);
    cr_expect_eq(rc_ctc_greedy(x, 1, 1, 3, NULL, 0, NULL, NULL, n, err, sizeof err), RC_ERR_ARG);
    cr_expect_eq(rc_ctc_greedy(NULL, 1, 1, 3, NULL, 0, lab, NULL, n, err, sizeof err), RC_ERR_ARG);
    cr_expect_eq(rc_ctc_greedy(x, 0, 1, 3, NULL, 0, lab, NULL, n, err, sizeof err), RC_ERR_ARG);
}

/* ---- beam search ------------------------------------------------------------------------ */

static rc_ctc_beam *beam_new(int A, const rc_ctc_beam_opts *o)
{
    char err[256];
    rc_ctc_beam *d = rc_ctc_beam_new(A, o, err, sizeof err);
    cr_assert_not_null(d, "rc_ctc_beam_new: %s", err);
    return d;
}

/* Width 1 keeps the single most probable prefix, which is the best path's when every
 * step's most probable class has probability >= 0.95 (with flatter steps the prefix's
 * summed probability can favour another labelling than the best path's: prefix search
 * is not best-path decoding). Logits: N(0,1)-like noise, the argmax lifted so that its
 * probability is at least 0.95. */
Test(decode, beam_width1_equals_greedy)
{
    rc_ctc_beam_opts o = rc_ctc_beam_defaults();
    o.width = 1;
    for (int seed = 1; seed <= 300; seed++) {
        rng_state = (uint64_t)seed * 7919;
        int T = 1 + rng_below(60), B = 1 + rng_below(4), A = 2 + rng_below(11);
        o.blank = rng_below(A);
        float *x = random_logits(T, B, A, 1.0);
        for (int r = 0; r < T * B; r++) {
            int c = rng_below(4) == 0 ? o.blank : rng_below(A);   /* blanks often, as in real outputs */
            x[(size_t)r * A + c] = 3.0f + logf(19.0f * (float)A) ;  /* p >= 19A e^3 / (19A e^3 + A e) > 0.95 */
        }
        int32_t *len = malloc((size_t)B * sizeof *len), *lab = malloc((size_t)T * B * sizeof *lab), *n = malloc((size_t)B * sizeof *n);
        for (int b = 0; b < B; b++) len[b] = rng_below(T + 1);
        char err[256];
        cr_assert_eq(rc_ctc_greedy(x, T, B, A, len, o.blank, lab, NULL, n, err, sizeof err), RC_OK, "%s", err);
        rc_ctc_beam *d = beam_new(A, &o);
        cr_assert_eq(rc_ctc_beam_decode(d, x, T, B, len), RC_OK, "%s", rc_ctc_beam_error(d));
        for (int b = 0; b < B; b++) {
            const rc_ctc_hyp *h = rc_ctc_beam_hyp(d, b, 0);
            cr_assert_not_null(h, "seed %d sample %d: no hypothesis", seed, b);
            cr_expect_eq(h->length, n[b], "seed %d sample %d: length %d, greedy %d", seed, b, h->length, n[b]);
            for (int k = 0; k < n[b] && k < h->length; k++)
                cr_expect_eq(h->labels[k], lab[b * T + k], "seed %d sample %d label %d", seed, b, k);
        }
        rc_ctc_beam_free(d);
        free(x); free(len); free(lab); free(n);
    }
}

/* Why the test above lifts the argmax: on a flat input width 1 is not best path.
 * Step 0: a 0.7, blank 0.3; step 1: b 0.4, a 0.3, blank 0.3. The best path is a b
 * (0.28); width 1 keeps the prefix a after step 0 (the empty prefix, 0.3, goes), and
 * after step 1 a (0.7*0.3 + 0.7*0.3 = 0.42, the alignments it kept) beats a b (0.28). */
Test(decode, beam_width1_not_best_path)
{
    float x[6] = { logf(0.3f), logf(0.7f), -30.0f, logf(0.3f), logf(0.3f), logf(0.4f) };
    int32_t lab[2], n;
    cr_assert_eq(rc_ctc_greedy(x, 2, 1, 3, NULL, 0, lab, NULL, &n, NULL, 0), RC_OK);
    cr_expect(n == 2 && lab[0] == 1 && lab[1] == 2, "best path: a b");
    rc_ctc_beam_opts o = rc_ctc_beam_defaults();
    o.width = 1;
    rc_ctc_beam *d = beam_new(3, &o);
    cr_assert_eq(rc_ctc_beam_decode(d, x, 2, 1, NULL), RC_OK);
    const rc_ctc_hyp *h = rc_ctc_beam_hyp(d, 0, 0);
    cr_expect(h->length == 1 && h->labels[0] == 1, "width 1: a");
    cr_expect(fabs(h->logp_ctc - log(0.42)) < 1e-6, "logp %g", h->logp_ctc);
    rc_ctc_beam_free(d);
}

/* Wide beam, small cases: the best prefix is the most probable labelling, and the
 * n-best are the n most probable labellings with their exact log-probabilities. */
Test(decode, beam_exact_small)
{
    labelling *all = malloc(4096 * sizeof *all);
    cr_assert(all);
    for (int seed = 1; seed <= 60; seed++) {
        rng_state = (uint64_t)seed * 104729;
        int T = 1 + rng_below(BF_MAXT), A = 2 + rng_below(3), blank = rng_below(A);
        float *x = random_logits(T, 1, A, 2.0);
        double *lp = logp_of(x, 1, A, 0, T);
        int nl = brute_labellings(lp, T, A, blank, all);
        rc_ctc_beam_opts o = rc_ctc_beam_defaults();
        o.width = ipow(A, T) + 1;   /* more than the labellings: nothing is ever dropped */
        o.nbest = nl < 5 ? nl : 5;
        o.blank = blank;
        rc_ctc_beam *d = beam_new(A, &o);
        cr_assert_eq(rc_ctc_beam_decode(d, x, T, 1, NULL), RC_OK, "%s", rc_ctc_beam_error(d));
        cr_expect_eq(rc_ctc_beam_count(d, 0), o.nbest, "seed %d", seed);
        double total = 0;
        for (int k = 0; k < nl; k++) total += all[k].p;
        cr_expect(fabs(total - 1) < 1e-9, "seed %d: brute force total %g", seed, total);
        for (int r = 0; r < rc_ctc_beam_count(d, 0); r++) {
            /* the r-th most probable labelling by brute force */
            int best = -1;
            for (int k = 0; k < nl; k++) {
                int taken = 0;
                for (int q = 0; q < r; q++) {
                    const rc_ctc_hyp *hq = rc_ctc_beam_hyp(d, 0, q);
                    int same = hq->length == all[k].n;
                    for (int i = 0; same && i < hq->length; i++) same = hq->labels[i] == all[k].lab[i];
                    taken |= same;
                }
                if (!taken && (best < 0 || all[k].p > all[best].p)) best = k;
            }
            const rc_ctc_hyp *h = rc_ctc_beam_hyp(d, 0, r);
            int same = h->length == all[best].n;
            for (int i = 0; same && i < h->length; i++) same = h->labels[i] == all[best].lab[i];
            cr_expect(same, "seed %d: rank %d is not the brute force's (p %g)", seed, r, all[best].p);
            cr_expect(fabs(h->logp_ctc - log(all[best].p)) < 1e-9, "seed %d rank %d: logp %.12f, exact %.12f", seed,
                      r, h->logp_ctc, log(all[best].p));
            cr_expect_eq(h->score, h->logp_ctc, "no LM, beta 0: score = logp_ctc");
            cr_expect_eq(h->logp_lm, 0.0);
        }
        rc_ctc_beam_free(d);
        free(x);
        free(lp);
    }
    free(all);
}

/* A narrow beam keeps only some alignments: each hypothesis's logp_ctc is at most its
 * labelling's exact log-probability. */
Test(decode, beam_narrow_is_lower_bound)
{
    labelling *all = malloc(4096 * sizeof *all);
    for (int seed = 1; seed <= 40; seed++) {
        rng_state = (uint64_t)seed * 31337;
        int T = 2 + rng_below(BF_MAXT - 1), A = 3 + rng_below(2);
        float *x = random_logits(T, 1, A, 1.0);
        double *lp = logp_of(x, 1, A, 0, T);
        int nl = brute_labellings(lp, T, A, 0, all);
        rc_ctc_beam_opts o = rc_ctc_beam_defaults();
        o.width = 2;
        o.nbest = 2;
        rc_ctc_beam *d = beam_new(A, &o);
        cr_assert_eq(rc_ctc_beam_decode(d, x, T, 1, NULL), RC_OK);
        for (int r = 0; r < rc_ctc_beam_count(d, 0); r++) {
            const rc_ctc_hyp *h = rc_ctc_beam_hyp(d, 0, r);
            int k = 0;
            for (; k < nl; k++) {
                int same = h->length == all[k].n;
                for (int i = 0; same && i < h->length; i++) same = h->labels[i] == all[k].lab[i];
                if (same) break;
            }
            cr_assert(k < nl);
            cr_expect(h->logp_ctc <= log(all[k].p) + 1e-12, "seed %d: %g > exact %g", seed, h->logp_ctc, log(all[k].p));
        }
        rc_ctc_beam_free(d);
        free(x);
        free(lp);
    }
    free(all);
}

/* Pruning: top_k = A - 1 (every non-blank class) changes nothing; pruning classes whose
 * probability is 0 in double (logits 300 below the rest) changes nothing either; a
 * min_logp above every class leaves only the blank and repeats, so nothing new starts. */
Test(decode, beam_pruning)
{
    rng_state = 5;
    int T = 30, A = 8;
    float *x = random_logits(T, 1, A, 2.0);
    for (int t = 0; t < T; t++) x[t * A + 6] = x[t * A + 7] = -1000.0f;
    rc_ctc_beam_opts o = rc_ctc_beam_defaults();
    o.width = 8;
    o.nbest = 3;
    rc_ctc_beam *ref = beam_new(A, &o);
    cr_assert_eq(rc_ctc_beam_decode(ref, x, T, 1, NULL), RC_OK);
    rc_ctc_beam_opts p1 = o, p2 = o, p3 = o;
    p1.top_k = A - 1;
    p2.top_k = 5;            /* classes 6 and 7 are never in a step's top 5 */
    p3.min_logp = -500.0f;   /* nor above this */
    rc_ctc_beam_opts *ps[3] = { &p1, &p2, &p3 };
    for (int i = 0; i < 3; i++) {
        rc_ctc_beam *d = beam_new(A, ps[i]);
        cr_assert_eq(rc_ctc_beam_decode(d, x, T, 1, NULL), RC_OK);
        cr_expect_eq(rc_ctc_beam_count(d, 0), rc_ctc_beam_count(ref, 0));
        for (int r = 0; r < rc_ctc_beam_count(d, 0); r++) {
            const rc_ctc_hyp *a = rc_ctc_beam_hyp(d, 0, r), *b = rc_ctc_beam_hyp(ref, 0, r);
            cr_expect(a->length == b->length && memcmp(a->labels, b->labels, (size_t)a->length * 4) == 0,
                      "pruning %d rank %d: another labelling", i, r);
            cr_expect(fabs(a->logp_ctc - b->logp_ctc) < 1e-12, "pruning %d rank %d: %.15g vs %.15g", i, r,
                      a->logp_ctc, b->logp_ctc);
        }
        rc_ctc_beam_free(d);
    }
    rc_ctc_beam_opts p4 = o;
    p4.min_logp = 1.0f;   /* no log-probability is above 0 */
    rc_ctc_beam *d = beam_new(A, &p4);
    cr_assert_eq(rc_ctc_beam_decode(d, x, T, 1, NULL), RC_OK);
    cr_expect_eq(rc_ctc_beam_count(d, 0), 1);
    cr_expect_eq(rc_ctc_beam_hyp(d, 0, 0)->length, 0);
    rc_ctc_beam_free(d);
    rc_ctc_beam_free(ref);
    free(x);
}

/* An empty sample (length 0) has one hypothesis: the empty labelling, probability 1. */
Test(decode, beam_empty_sample)
{
    rng_state = 3;
    float *x = random_logits(4, 2, 3, 1.0);
    int32_t len[2] = { 0, 4 };
    rc_ctc_beam_opts o = rc_ctc_beam_defaults();
    rc_ctc_beam *d = beam_new(3, &o);
    cr_assert_eq(rc_ctc_beam_decode(d, x, 4, 2, len), RC_OK, "%s", rc_ctc_beam_error(d));
    cr_expect_eq(rc_ctc_beam_count(d, 0), 1);
    const rc_ctc_hyp *h = rc_ctc_beam_hyp(d, 0, 0);
    cr_expect(h && h->length == 0 && h->logp_ctc == 0.0);
    cr_expect_eq(rc_ctc_beam_count(d, 1), 1);
    cr_expect_eq(rc_ctc_beam_count(d, 2), -1);
    cr_expect_null(rc_ctc_beam_hyp(d, 1, 1));
    cr_expect_null(rc_ctc_beam_hyp(d, -1, 0));
    rc_ctc_beam_free(d);
    free(x);
}

/* Samples across threads: the same results as on one thread, bit for bit. */
Test(decode, beam_threads_same)
{
    rng_state = 77;
    int T = 80, B = 8, A = 12;
    float *x = random_logits(T, B, A, 2.0);
    int32_t len[8];
    for (int b = 0; b < B; b++) len[b] = 40 + rng_below(41);
    rc_ctc_beam_opts o = rc_ctc_beam_defaults();
    o.width = 6;
    o.nbest = 3;
    o.beta = 0.5f;
    rc_ctc_beam *d1 = beam_new(A, &o), *d2 = beam_new(A, &o);
    int old = rc_num_threads();
    rc_set_num_threads(1);
    cr_assert_eq(rc_ctc_beam_decode(d1, x, T, B, len), RC_OK);
    rc_set_num_threads(2);
    cr_assert_eq(rc_ctc_beam_decode(d2, x, T, B, len), RC_OK);
    rc_set_num_threads(old);
    for (int b = 0; b < B; b++) {
        cr_expect_eq(rc_ctc_beam_count(d1, b), rc_ctc_beam_count(d2, b));
        for (int r = 0; r < rc_ctc_beam_count(d1, b); r++) {
            const rc_ctc_hyp *p = rc_ctc_beam_hyp(d1, b, r), *q = rc_ctc_beam_hyp(d2, b, r);
            cr_expect(p->length == q->length && memcmp(p->labels, q->labels, (size_t)p->length * 4) == 0);
            cr_expect(p->score == q->score && p->logp_ctc == q->logp_ctc, "sample %d rank %d", b, r);
        }
    }
    rc_ctc_beam_free(d1);
    rc_ctc_beam_free(d2);
    free(x);
}

/* ---- a bigram LM through the callbacks ---------------------------------------------------- */

typedef struct bigram {
    int V;
    float *logp;     /* [(V + 1) * V]: row 0 the start, row 1 + v after label v */
    int calls, fail_at, max_n;
    char err[64];
} bigram;

static rc_status bg_start(void *user, void *state, float *logp)
{
    bigram *g = user;
    int32_t s = -1;
    memcpy(state, &s, sizeof s);
    memcpy(logp, g->logp, (size_t)g->V * sizeof *logp);
    return RC_OK;
}

static rc_status bg_extend(void *user, int n, const void *const *in, const int32_t *labels, void *const *out,
                           float *const *out_logp)
{
    bigram *g = user;
    (void)in;
    if (++g->calls == g->fail_at) {
        snprintf(g->err, sizeof g->err, "bigram told to fail");
        return RC_ERR_STATE;
    }
    if (n > g->max_n) g->max_n = n;
    for (int i = 0; i < n; i++) {
        memcpy(out[i], &labels[i], sizeof labels[i]);
        memcpy(out_logp[i], g->logp + (size_t)(1 + labels[i]) * g->V, (size_t)g->V * sizeof(float));
    }
    return RC_OK;
}

static const char *bg_error(void *user) { return ((bigram *)user)->err; }

/* A random bigram over V labels (each row normalised). */
static bigram bigram_random(int V)
{
    bigram g = { .V = V };
    g.logp = malloc((size_t)(V + 1) * V * sizeof *g.logp);
    cr_assert(g.logp);
    for (int r = 0; r <= V; r++) {
        double s = 0, z[32];
        for (int v = 0; v < V; v++) s += exp(z[v] = rng_unif(-2, 2));
        for (int v = 0; v < V; v++) g.logp[r * V + v] = (float)(z[v] - log(s));
    }
    return g;
}

static rc_lm bigram_iface(bigram *g, int max_batch)
{
    rc_lm lm = { .vocab = g->V, .state_bytes = sizeof(int32_t), .max_batch = max_batch, .user = g,
                 .start = bg_start, .extend = bg_extend, .error = bg_error };
    return lm;
}

/* log P_lm of a labelling of classes (map: class a -> LM label a), eos added when >= 0. */
static double bigram_logp(const bigram *g, const int *lab, int n, int eos)
{
    double s = 0;
    int prev = -1;
    for (int k = 0; k < n; k++) {
        s += g->logp[(size_t)(1 + prev) * g->V + lab[k]];
        prev = lab[k];
    }
    if (eos >= 0) s += g->logp[(size_t)(1 + prev) * g->V + eos];
    return s;
}

/* Shallow fusion, exactly: with a beam that drops nothing, the best hypothesis is the
 * labelling maximising log p_ctc + alpha * log P_lm + beta * length over all of them,
 * with that score; max_batch 2 makes the decoder split its extend calls. */
Test(decode, beam_lm_fusion_exact)
{
    labelling *all = malloc(4096 * sizeof *all);
    for (int seed = 1; seed <= 40; seed++) {
        rng_state = (uint64_t)seed * 65537;
        int T = 1 + rng_below(BF_MAXT), A = 2 + rng_below(3);
        float *x = random_logits(T, 1, A, 2.0);
        double *lp = logp_of(x, 1, A, 0, T);
        int nl = brute_labellings(lp, T, A, 0, all);
        bigram g = bigram_random(A);   /* LM labels = classes; label 0 (the blank's) serves as the end */
        rc_lm lm = bigram_iface(&g, 2);
        int32_t map[8];
        for (int a = 0; a < A; a++) map[a] = a;
        rc_ctc_beam_opts o = rc_ctc_beam_defaults();
        o.width = ipow(A, T) + 1;
        o.lm = &lm;
        o.lm_map = map;
        o.alpha = (float)rng_unif(0.2, 2.0);
        o.beta = (float)rng_unif(-1.0, 1.0);
        o.lm_eos = seed % 2 ? 0 : -1;
        int best = 0;
        double bs = -INFINITY;
        for (int k = 0; k < nl; k++) {
            double s = log(all[k].p) + o.alpha * bigram_logp(&g, all[k].lab, all[k].n, o.lm_eos) + o.beta * all[k].n;
            if (s > bs) { bs = s; best = k; }
        }
        rc_ctc_beam *d = beam_new(A, &o);
        cr_assert_eq(rc_ctc_beam_decode(d, x, T, 1, NULL), RC_OK, "%s", rc_ctc_beam_error(d));
        const rc_ctc_hyp *h = rc_ctc_beam_hyp(d, 0, 0);
        cr_assert_not_null(h);
        int same = h->length == all[best].n;
        for (int i = 0; same && i < h->length; i++) same = h->labels[i] == all[best].lab[i];
        cr_expect(same, "seed %d: not the fused best labelling", seed);
        cr_expect(fabs(h->score - bs) < 1e-5, "seed %d: score %.9f, brute force %.9f", seed, h->score, bs);
        cr_expect(fabs(h->logp_ctc - log(all[best].p)) < 1e-9, "seed %d", seed);
        cr_expect(fabs(h->logp_lm - bigram_logp(&g, all[best].lab, all[best].n, o.lm_eos)) < 1e-5, "seed %d", seed);
        cr_expect(g.max_n <= 2, "extend got %d prefixes, max_batch 2", g.max_n);
        rc_ctc_beam_free(d);
        free(g.logp);
        free(x);
        free(lp);
    }
    free(all);
}

/* alpha = beta = 0 with an LM: the same hypotheses and scores as without. */
Test(decode, beam_lm_zero_weights_is_no_lm)
{
    rng_state = 99;
    int T = 40, B = 3, A = 6;
    float *x = random_logits(T, B, A, 2.0);
    bigram g = bigram_random(A);
    for (int v = 0; v < A; v++) g.logp[3 * A + v] = -INFINITY;   /* an LM that forbids everything after label 2 */
    rc_lm lm = bigram_iface(&g, 16);
    int32_t map[6] = { 0, 1, 2, 3, 4, 5 };
    rc_ctc_beam_opts o = rc_ctc_beam_defaults();
    o.width = 5;
    o.nbest = 3;
    rc_ctc_beam *plain = beam_new(A, &o);
    o.lm = &lm;
    o.lm_map = map;
    rc_ctc_beam *fused = beam_new(A, &o);
    cr_assert_eq(rc_ctc_beam_decode(plain, x, T, B, NULL), RC_OK);
    cr_assert_eq(rc_ctc_beam_decode(fused, x, T, B, NULL), RC_OK, "%s", rc_ctc_beam_error(fused));
    for (int b = 0; b < B; b++) {
        cr_expect_eq(rc_ctc_beam_count(plain, b), rc_ctc_beam_count(fused, b));
        for (int r = 0; r < rc_ctc_beam_count(plain, b); r++) {
            const rc_ctc_hyp *p = rc_ctc_beam_hyp(plain, b, r), *q = rc_ctc_beam_hyp(fused, b, r);
            cr_expect(p->length == q->length && memcmp(p->labels, q->labels, (size_t)p->length * 4) == 0);
            cr_expect(p->score == q->score && p->logp_ctc == q->logp_ctc, "sample %d rank %d: %g vs %g", b, r,
                      p->score, q->score);
        }
    }
    rc_ctc_beam_free(plain);
    rc_ctc_beam_free(fused);
    free(g.logp);
    free(x);
}

/* An LM that strongly prefers one label turns an acoustically ambiguous step into it:
 * step 1 is class 1 (p 0.55) or class 2 (p 0.45); the LM gives label 2 log 0 and
 * every other -20. */
Test(decode, beam_lm_prefers_label)
{
    int T = 3, A = 3;
    float x[9];
    float p[3][3] = { { 0.98f, 0.01f, 0.01f }, { 0.0001f, 0.55f, 0.4499f }, { 0.98f, 0.01f, 0.01f } };
    for (int t = 0; t < T; t++)
        for (int a = 0; a < A; a++) x[t * A + a] = logf(p[t][a]);
    bigram g = { .V = A };
    g.logp = malloc((size_t)(A + 1) * A * sizeof *g.logp);
    for (int r = 0; r <= A; r++)
        for (int v = 0; v < A; v++) g.logp[r * A + v] = v == 2 ? 0.0f : -20.0f;
    rc_lm lm = bigram_iface(&g, 4);
    int32_t map[3] = { 0, 1, 2 };
    rc_ctc_beam_opts o = rc_ctc_beam_defaults();
    o.width = 4;
    rc_ctc_beam *plain = beam_new(A, &o);
    o.lm = &lm;
    o.lm_map = map;
    o.alpha = 0.5f;
    rc_ctc_beam *fused = beam_new(A, &o);
    cr_assert_eq(rc_ctc_beam_decode(plain, x, T, 1, NULL), RC_OK);
    cr_assert_eq(rc_ctc_beam_decode(fused, x, T, 1, NULL), RC_OK, "%s", rc_ctc_beam_error(fused));
    const rc_ctc_hyp *a = rc_ctc_beam_hyp(plain, 0, 0), *b = rc_ctc_beam_hyp(fused, 0, 0);
    cr_expect(a->length == 1 && a->labels[0] == 1, "without LM: label 1");
    cr_expect(b->length == 1 && b->labels[0] == 2, "with the LM: label 2");
    cr_expect(fabs(b->logp_lm) < 1e-6, "the LM's log-probability of [2] is 0, got %g", b->logp_lm);
    cr_expect(fabs(b->score - (b->logp_ctc + 0.5 * b->logp_lm)) < 1e-9);
    /* a large beta lengthens: with beta 30 the labelling 1 2 (or 2 1) beats a single label */
    rc_ctc_beam_free(plain);
    o.lm = NULL;
    o.beta = 30.0f;
    plain = beam_new(A, &o);
    cr_assert_eq(rc_ctc_beam_decode(plain, x, T, 1, NULL), RC_OK);
    a = rc_ctc_beam_hyp(plain, 0, 0);
    cr_expect(a->length >= 2, "beta 30: the longest labelling wins, got length %d", a->length);
    cr_expect(fabs(a->score - (a->logp_ctc + 30.0 * a->length)) < 1e-9);
    rc_ctc_beam_free(plain);
    rc_ctc_beam_free(fused);
    free(g.logp);
}

Test(decode, beam_errors)
{
    char err[256];
    rc_ctc_beam_opts o = rc_ctc_beam_defaults();
    o.width = 0;
    cr_expect_null(rc_ctc_beam_new(4, &o, err, sizeof err));
    cr_expect(strstr(err, "width 0"), "%s", err);
    o = rc_ctc_beam_defaults();
    o.nbest = 11;
    cr_expect_null(rc_ctc_beam_new(4, &o, err, sizeof err));
    cr_expect(strstr(err, "nbest 11"), "%s", err);
    o = rc_ctc_beam_defaults();
    o.blank = 4;
    cr_expect_null(rc_ctc_beam_new(4, &o, err, sizeof err));
    cr_expect(strstr(err, "blank 4"), "%s", err);
    o = rc_ctc_beam_defaults();
    o.top_k = -1;
    cr_expect_null(rc_ctc_beam_new(4, &o, err, sizeof err));
    o = rc_ctc_beam_defaults();
    o.alpha = NAN;
    cr_expect_null(rc_ctc_beam_new(4, &o, err, sizeof err));
    cr_expect(strstr(err, "finite"), "%s", err);
    bigram g = { .V = 3 };
    g.logp = calloc(12, sizeof *g.logp);
    rc_lm lm = bigram_iface(&g, 4);
    o = rc_ctc_beam_defaults();
    o.lm = &lm;
    cr_expect_null(rc_ctc_beam_new(4, &o, err, sizeof err));
    cr_expect(strstr(err, "lm_map"), "%s", err);
    int32_t map[4] = { -7, 0, 1, 3 };   /* the blank's entry is not read; 3 is outside 0..2 */
    o.lm_map = map;
    cr_expect_null(rc_ctc_beam_new(4, &o, err, sizeof err));
    cr_expect(strstr(err, "lm_map[3] = 3"), "%s", err);
    map[3] = 2;
    o.lm_eos = 3;
    cr_expect_null(rc_ctc_beam_new(4, &o, err, sizeof err));
    cr_expect(strstr(err, "lm_eos 3"), "%s", err);
    o.lm_eos = -1;
    lm.extend = NULL;
    cr_expect_null(rc_ctc_beam_new(4, &o, err, sizeof err));
    lm.extend = bg_extend;
    /* an LM's failure is the decode's, with its message, and no results */
    g.fail_at = 2;
    rc_ctc_beam *d = beam_new(4, &o);
    rng_state = 1;
    float *x = random_logits(10, 1, 4, 1.0);
    cr_expect_eq(rc_ctc_beam_decode(d, x, 10, 1, NULL), RC_ERR_STATE);
    cr_expect(strstr(rc_ctc_beam_error(d), "bigram told to fail"), "%s", rc_ctc_beam_error(d));
    cr_expect_eq(rc_ctc_beam_count(d, 0), -1);
    int32_t len[1] = { 11 };
    cr_expect_eq(rc_ctc_beam_decode(d, x, 10, 1, len), RC_ERR_ARG);
    cr_expect(strstr(rc_ctc_beam_error(d), "input length 11"), "%s", rc_ctc_beam_error(d));
    g.fail_at = 0;
    cr_expect_eq(rc_ctc_beam_decode(d, x, 10, 1, NULL), RC_OK, "%s", rc_ctc_beam_error(d));
    cr_expect_str_eq(rc_ctc_beam_error(d), "");
    rc_ctc_beam_free(d);
    free(x);
    free(g.logp);
}

/* ---- a recur model as the LM ------------------------------------------------------------ */

static rc_model *char_lm(int V, int H, int layers)
{
    rc_model_opts o = rc_model_defaults();
    o.input_size = 5;
    o.vocab = V;
    o.layers = layers;
    o.output_size = V;
    o.seed = 42;
    rc_cell *c = rc_cell_lstm(H, NULL);
    rc_model *m = rc_model_new(c, &o);
    rc_cell_free(c);
    cr_assert(m && rc_model_status(m) == RC_OK, "%s", m ? rc_model_error(m) : "NULL");
    return m;
}

/* log P of labels after bos by a fresh one-row stream, with the log-probabilities of
 * the label after them in next[V] (may be NULL). */
static double stream_logp(rc_model *m, int V, int bos, const int32_t *lab, int n, float *next)
{
    cr_assert_eq(rc_model_stream_reset(m, 1), RC_OK);
    const float *out;
    int32_t tok = bos;
    double s = 0;
    for (int k = 0; k <= n; k++) {
        cr_assert_eq(rc_model_stream_step(m, NULL, &tok, &out), RC_OK, "%s", rc_model_error(m));
        double mx = out[0], z = 0;
        for (int v = 1; v < V; v++) mx = out[v] > mx ? out[v] : mx;
        for (int v = 0; v < V; v++) z += exp((double)out[v] - mx);
        if (k < n) {
            s += (double)out[lab[k]] - mx - log(z);
            tok = lab[k];
        } else if (next) {
            for (int v = 0; v < V; v++) next[v] = (float)((double)out[v] - mx - log(z));
        }
    }
    return s;
}

/* Stream rows: a row's state copied into another row continues identically there, the
 * same as a one-row stream fed that row's tokens; misuse is an error. */
Test(decode, model_stream_rows)
{
    int V = 6;
    rc_model *m = char_lm(V, 7, 2);
    size_t n = rc_model_stream_state_size(m);
    cr_expect_eq(n, 2u * 2u * 7u, "2 layers x (h, c) x 7");
    float *row = malloc(n * sizeof *row), *row2 = malloc(n * sizeof *row2);
    cr_expect_eq(rc_model_stream_get_row(m, 0, row), RC_ERR_STATE, "before any stream");
    cr_expect(strstr(rc_model_error(m), "rc_model_stream_reset"), "%s", rc_model_error(m));
    cr_assert_eq(rc_model_stream_reset(m, 3), RC_OK);
    int32_t toks[3][4] = { { 1, 2, 3, 4 }, { 5, 5, 0, 1 }, { 2, 2, 2, 2 } };
    const float *out;
    for (int t = 0; t < 3; t++) {
        int32_t tk[3] = { toks[0][t], toks[1][t], toks[2][t] };
        cr_assert_eq(rc_model_stream_step(m, NULL, tk, &out), RC_OK);
    }
    cr_assert_eq(rc_model_stream_get_row(m, 0, row), RC_OK);
    cr_assert_eq(rc_model_stream_set_row(m, 2, row), RC_OK);
    cr_assert_eq(rc_model_stream_get_row(m, 2, row2), RC_OK);
    cr_expect(memcmp(row, row2, n * sizeof *row) == 0);
    int32_t tk[3] = { 4, 1, 4 };
    cr_assert_eq(rc_model_stream_step(m, NULL, tk, &out), RC_OK);
    float o0[6], o2[6];
    memcpy(o0, out, sizeof o0);
    memcpy(o2, out + 2 * V, sizeof o2);
    for (int v = 0; v < V; v++) cr_expect(fabsf(o0[v] - o2[v]) < 1e-6f, "row 2 continues row 0: %g vs %g", o0[v], o2[v]);
    cr_expect(fabsf(out[V] - o0[0]) > 0 || fabsf(out[V + 1] - o0[1]) > 0, "row 1 differs");
    /* the same as a one-row stream of row 0's tokens */
    cr_assert_eq(rc_model_stream_reset(m, 1), RC_OK);
    for (int t = 0; t < 4; t++) cr_assert_eq(rc_model_stream_step(m, NULL, &toks[0][t], &out), RC_OK);
    for (int v = 0; v < V; v++) cr_expect(fabsf(out[v] - o0[v]) < 1e-5f, "one-row stream: %g vs %g", out[v], o0[v]);
    cr_expect_eq(rc_model_stream_get_row(m, 1, row), RC_ERR_ARG);
    cr_expect(strstr(rc_model_error(m), "row 1 is outside the stream's 1 rows"), "%s", rc_model_error(m));
    cr_expect_eq(rc_model_stream_set_row(m, -1, row), RC_ERR_ARG);
    cr_expect_eq(rc_model_stream_set_row(m, 0, NULL), RC_ERR_ARG);
    free(row);
    free(row2);
    rc_model_free(m);
}

/* A stream continues where it was after forwards of other shapes pushed its plan out
 * of the model's cache (before the fix its state silently went back to zeros). */
Test(decode, model_stream_survives_eviction)
{
    int V = 5;
    rc_model *a = char_lm(V, 6, 1), *b = char_lm(V, 6, 1);
    cr_assert_eq(rc_model_stream_reset(a, 2), RC_OK);
    cr_assert_eq(rc_model_stream_reset(b, 2), RC_OK);
    const float *oa, *ob;
    int32_t tk[2] = { 1, 3 };
    cr_assert_eq(rc_model_stream_step(a, NULL, tk, &oa), RC_OK);
    cr_assert_eq(rc_model_stream_step(b, NULL, tk, &ob), RC_OK);
    rc_model_set_training(b, 0);
    for (int T = 2; T < 12; T++) {   /* 10 shapes: more than the cache holds */
        int32_t *tok = calloc((size_t)T * 2, sizeof *tok), *tgt = calloc((size_t)T * 2, sizeof *tgt);
        rc_batch bt = { .T = T, .B = 2, .tokens = tok, .targets = tgt };
        cr_assert_eq(rc_model_forward(b, &bt, NULL), RC_OK, "%s", rc_model_error(b));
        free(tok);
        free(tgt);
    }
    tk[0] = 2;
    tk[1] = 4;
    cr_assert_eq(rc_model_stream_step(a, NULL, tk, &oa), RC_OK);
    cr_assert_eq(rc_model_stream_step(b, NULL, tk, &ob), RC_OK, "%s", rc_model_error(b));
    for (int v = 0; v < 2 * V; v++) cr_expect(fabsf(oa[v] - ob[v]) < 1e-6f, "output %d: %g vs %g", v, oa[v], ob[v]);
    rc_model_free(a);
    rc_model_free(b);
}

/* The adapter: start and extend give exactly what a fresh stream of the prefix gives,
 * also when states are moved between rows (a beam of 3 extends different prefixes). */
Test(decode, model_lm_matches_stream)
{
    int V = 5, bos = 0;
    rc_model *m = char_lm(V, 8, 2);
    char err[256];
    rc_model_lm *l = rc_model_lm_new(m, bos, 3, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    const rc_lm *lm = rc_model_lm_iface(l);
    cr_expect_eq(lm->vocab, V);
    size_t sb = lm->state_bytes;
    unsigned char *st = malloc(6 * sb);
    float lp[6][5], want[5];
    cr_assert_eq(lm->start(lm->user, st, lp[0]), RC_OK);
    /* prefixes [1], [3] from the start, then [1 2], [3 3], [1 4] from those */
    const void *in[3] = { st, st, NULL };
    void *out[3] = { st + sb, st + 2 * sb, NULL };
    float *olp[3] = { lp[1], lp[2], NULL };
    int32_t labs[3] = { 1, 3, 0 };
    cr_assert_eq(lm->extend(lm->user, 2, in, labs, out, olp), RC_OK, "%s", lm->error(lm->user));
    in[0] = st + sb; in[1] = st + 2 * sb; in[2] = st + sb;
    out[0] = st + 3 * sb; out[1] = st + 4 * sb; out[2] = st + 5 * sb;
    olp[0] = lp[3]; olp[1] = lp[4]; olp[2] = lp[5];
    labs[0] = 2; labs[1] = 3; labs[2] = 4;
    cr_assert_eq(lm->extend(lm->user, 3, in, labs, out, olp), RC_OK, "%s", lm->error(lm->user));
    int32_t pre[6][2] = { { 0 }, { 1 }, { 3 }, { 1, 2 }, { 3, 3 }, { 1, 4 } };
    int plen[6] = { 0, 1, 1, 2, 2, 2 };
    for (int i = 0; i < 6; i++) {   /* fresh one-row streams (the adapter's stream is reset by this) */
        stream_logp(m, V, bos, pre[i], plen[i], want);
        for (int v = 0; v < V; v++)
            cr_expect(fabsf(lp[i][v] - want[v]) < 1e-5f, "prefix %d, label %d: %g vs %g", i, v, lp[i][v], want[v]);
    }
    cr_expect_eq(lm->extend(lm->user, 4, in, labs, out, olp), RC_ERR_ARG, "more than max_batch");
    free(st);
    /* what does not fit */
    rc_model_lm_free(l);
    cr_expect_null(rc_model_lm_new(m, V, 3, err, sizeof err));
    cr_expect(strstr(err, "bos 5"), "%s", err);
    cr_expect_null(rc_model_lm_new(m, 0, 0, err, sizeof err));
    rc_model_opts o = rc_model_defaults();
    o.input_size = 3;
    o.output_size = 4;
    rc_cell *c = rc_cell_gru(4, RC_GRU_RESET_AFTER);
    rc_model *x = rc_model_new(c, &o);
    rc_cell_free(c);
    cr_expect_null(rc_model_lm_new(x, 0, 3, err, sizeof err));
    cr_expect(strstr(err, "token inputs"), "%s", err);
    rc_model_free(x);
    rc_model_free(m);
}

/* The beam search with the recur model as LM: each hypothesis's logp_lm is the model's
 * log-probability of its labels (through the map), computed by a fresh stream. */
Test(decode, beam_with_model_lm)
{
    int V = 5, A = 4, T = 25;
    rc_model *m = char_lm(V, 8, 1);
    char err[256];
    rc_model_lm *l = rc_model_lm_new(m, 4, 4, err, sizeof err);
    cr_assert_not_null(l, "%s", err);
    int32_t map[4] = { 0, 1, 2, 3 };   /* class a -> LM label a; LM label 4 is bos */
    rc_ctc_beam_opts o = rc_ctc_beam_defaults();
    o.width = 4;
    o.nbest = 4;
    o.lm = rc_model_lm_iface(l);
    o.lm_map = map;
    o.alpha = 0.8f;
    o.beta = 0.3f;
    rc_ctc_beam *d = beam_new(A, &o);
    rng_state = 2024;
    float *x = random_logits(T, 2, A, 2.0);
    int32_t len[2] = { T, 17 };
    cr_assert_eq(rc_ctc_beam_decode(d, x, T, 2, len), RC_OK, "%s", rc_ctc_beam_error(d));
    for (int b = 0; b < 2; b++) {
        cr_expect(rc_ctc_beam_count(d, b) >= 2);
        for (int r = 0; r < rc_ctc_beam_count(d, b); r++) {
            const rc_ctc_hyp *h = rc_ctc_beam_hyp(d, b, r);
            double want = stream_logp(m, V, 4, h->labels, h->length, NULL);
            cr_expect(fabs(h->logp_lm - want) < 1e-4 * (1 + fabs(want)), "sample %d rank %d: %g vs %g", b, r,
                      h->logp_lm, want);
            cr_expect(fabs(h->score - (h->logp_ctc + (double)0.8f * h->logp_lm + (double)0.3f * h->length)) < 1e-9);
            if (r > 0) cr_expect(h->score <= rc_ctc_beam_hyp(d, b, r - 1)->score, "best first");
        }
    }
    rc_ctc_beam_free(d);
    rc_model_lm_free(l);
    rc_model_free(m);
    free(x);
}

/* ---- forced alignment ------------------------------------------------------------------- */

/* The class of each step of sample b's path and its log-probability. */
static double path_logp(const double *lp, int A, int Tb, const int32_t *fl, const int32_t *lab, int blank, int *cls)
{
    double s = 0;
    for (int t = 0; t < Tb; t++) {
        cls[t] = fl[t] < 0 ? blank : lab[fl[t]];
        s += lp[t * A + cls[t]];
    }
    return s;
}

/* Brute force: the best alignment's score is the maximum over every path that
 * collapses to the transcript; the path returned has that score, collapses to the
 * transcript, and its frames are monotone and inside the input. */
Test(decode, align_brute_force)
{
    labelling *all = malloc(4096 * sizeof *all);
    int checked = 0;
    for (int seed = 1; seed <= 120; seed++) {
        rng_state = (uint64_t)seed * 15485863;
        int T = 1 + rng_below(BF_MAXT), A = 2 + rng_below(3), blank = rng_below(A);
        float *x = random_logits(T, 1, A, 2.0);
        double *lp = logp_of(x, 1, A, 0, T);
        int nl = brute_labellings(lp, T, A, blank, all);
        const labelling *l = &all[rng_below(nl)];   /* a feasible transcript */
        int32_t lab[BF_MAXT], first[BF_MAXT], last[BF_MAXT], fl[BF_MAXT], L = l->n;
        for (int k = 0; k < L; k++) lab[k] = l->lab[k];
        double score = 0;
        char err[256];
        cr_assert_eq(rc_ctc_align(x, T, 1, A, NULL, lab, BF_MAXT, &L, blank, first, last, fl, &score, err, sizeof err),
                     RC_OK, "seed %d: %s", seed, err);
        cr_expect(fabs(score - l->best) < 1e-9, "seed %d: score %.12f, best by brute force %.12f", seed, score, l->best);
        int cls[BF_MAXT], n = 0, prev = -1;
        double s = path_logp(lp, A, T, fl, lab, blank, cls);
        cr_expect(fabs(s - score) < 1e-9, "seed %d: the path's log-probability %.12f", seed, s);
        for (int t = 0; t < T; t++) {
            if (cls[t] != blank && cls[t] != prev) {
                cr_expect(n < L && cls[t] == lab[n], "seed %d: the path does not collapse to the transcript", seed);
                n++;
            }
            prev = cls[t];
        }
        cr_expect_eq(n, L, "seed %d", seed);
        for (int k = 0; k < L; k++) {
            cr_expect(0 <= first[k] && first[k] <= last[k] && last[k] < T, "seed %d label %d: %d..%d", seed, k,
                      first[k], last[k]);
            if (k > 0) cr_expect(last[k - 1] < first[k], "seed %d: labels %d and %d overlap", seed, k - 1, k);
            for (int t = first[k]; t <= last[k]; t++) cr_expect_eq(fl[t], k, "seed %d: step %d", seed, t);
        }
        checked += L > 0;
        free(x);
        free(lp);
    }
    cr_expect(checked > 60, "most transcripts were not empty (%d)", checked);
    free(all);
}

/* A hand case: a a needs a blank between; the steps say where. Then batched with
 * lengths = each alone, and padding past T_b is -2. */
Test(decode, align_hand_and_batch)
{
    /* 6 steps, classes: blank a a blank a blank (one-hot-ish) */
    int cls[6] = { 0, 1, 1, 0, 1, 0 };
    float *x = onehot_logits(cls, 6, 2);
    int32_t lab[2] = { 1, 1 }, L = 2, first[2], last[2], fl[6];
    double score;
    char err[256];
    cr_assert_eq(rc_ctc_align(x, 6, 1, 2, NULL, lab, 2, &L, 0, first, last, fl, &score, err, sizeof err), RC_OK, "%s", err);
    cr_expect(first[0] == 1 && last[0] == 2 && first[1] == 4 && last[1] == 4, "%d..%d, %d..%d", first[0], last[0],
              first[1], last[1]);
    int32_t want[6] = { -1, 0, 0, -1, 1, -1 };
    for (int t = 0; t < 6; t++) cr_expect_eq(fl[t], want[t], "step %d", t);
    free(x);

    rng_state = 8;
    int T = 7, B = 3, A = 4, S = 3;
    x = random_logits(T, B, A, 2.0);
    int32_t len[3] = { 7, 3, 5 }, labs[9] = { 1, 2, 3, 3, 0, 0, 2, 2, 0 }, ll[3] = { 3, 1, 2 };
    int32_t bf[9], bl[9], bfl[21];
    double bs[3];
    cr_assert_eq(rc_ctc_align(x, T, B, A, len, labs, S, ll, 0, bf, bl, bfl, bs, err, sizeof err), RC_OK, "%s", err);
    for (int b = 0; b < B; b++) {
        float *one = malloc((size_t)len[b] * A * sizeof *one);
        for (int t = 0; t < len[b]; t++) memcpy(one + t * A, x + ((size_t)t * B + b) * A, (size_t)A * sizeof *one);
        int32_t f1[3], l1[3], fl1[7];
        double s1;
        cr_assert_eq(rc_ctc_align(one, len[b], 1, A, NULL, labs + b * S, S, &ll[b], 0, f1, l1, fl1, &s1, err, sizeof err),
                     RC_OK, "%s", err);
        cr_expect_eq(bs[b], s1, "sample %d", b);
        for (int k = 0; k < ll[b]; k++) cr_expect(bf[b * S + k] == f1[k] && bl[b * S + k] == l1[k]);
        for (int t = 0; t < T; t++) cr_expect_eq(bfl[b * T + t], t < len[b] ? fl1[t] : -2, "sample %d step %d", b, t);
        free(one);
    }
    free(x);
}

Test(decode, align_errors)
{
    rng_state = 4;
    float *x = random_logits(3, 1, 3, 1.0);
    int32_t lab[3] = { 1, 1, 2 }, L = 3;
    char err[256];
    /* a a b needs 4 steps */
    cr_expect_eq(rc_ctc_align(x, 3, 1, 3, NULL, lab, 3, &L, 0, NULL, NULL, NULL, NULL, err, sizeof err), RC_ERR_ARG);
    cr_expect(strstr(err, "sample 0: its 3 steps cannot hold its 3 labels (1 of them repeats"), "%s", err);
    lab[1] = 0;
    cr_expect_eq(rc_ctc_align(x, 3, 1, 3, NULL, lab, 3, &L, 0, NULL, NULL, NULL, NULL, err, sizeof err), RC_ERR_ARG);
    cr_expect(strstr(err, "label 1 is 0"), "%s", err);
    lab[1] = 3;
    cr_expect_eq(rc_ctc_align(x, 3, 1, 3, NULL, lab, 3, &L, 0, NULL, NULL, NULL, NULL, err, sizeof err), RC_ERR_ARG);
    L = 4;
    cr_expect_eq(rc_ctc_align(x, 3, 1, 3, NULL, lab, 3, &L, 0, NULL, NULL, NULL, NULL, err, sizeof err), RC_ERR_ARG);
    cr_expect(strstr(err, "label length 4"), "%s", err);
    /* class 2 impossible at every step: b cannot be aligned */
    for (int t = 0; t < 3; t++) x[t * 3 + 2] = -INFINITY;
    lab[0] = 1; lab[1] = 2; L = 2;
    int32_t first[2] = { 99, 99 };
    cr_expect_eq(rc_ctc_align(x, 3, 1, 3, NULL, lab, 3, &L, 0, first, NULL, NULL, NULL, err, sizeof err), RC_ERR_ARG);
    cr_expect(strstr(err, "probability 0"), "%s", err);
    cr_expect(first[0] == 99 && first[1] == 99, "no output written on an error");
    /* an empty transcript: all blank */
    L = 0;
    int32_t fl[3];
    double sc;
    cr_expect_eq(rc_ctc_align(x, 3, 1, 3, NULL, NULL, 0, &L, 0, NULL, NULL, fl, &sc, err, sizeof err), RC_OK, "%s", err);
    cr_expect(fl[0] == -1 && fl[1] == -1 && fl[2] == -1);
    free(x);
}

/* ---- edit distances and error rates ------------------------------------------------------- */

static rc_edit_stats utf8_stats(const char *r, const char *h)
{
    rc_edit_stats s;
    char err[128];
    cr_assert_eq(rc_edit_distance_utf8(r, h, &s, err, sizeof err), RC_OK, "%s", err);
    return s;
}

Test(decode, edit_hand)
{
    rc_edit_stats s = utf8_stats("kitten", "sitting");
    cr_expect(s.distance == 3 && s.substitutions == 2 && s.insertions == 1 && s.deletions == 0);
    cr_expect(s.ref_length == 6 && s.hyp_length == 7);
    cr_expect(fabs(rc_error_rate(&s) - 0.5) < 1e-15);
    s = utf8_stats("sitting", "kitten");
    cr_expect(s.distance == 3 && s.substitutions == 2 && s.deletions == 1 && s.insertions == 0);
    s = utf8_stats("flaw", "lawn");   /* delete f, insert n */
    cr_expect(s.distance == 2 && s.deletions == 1 && s.insertions == 1 && s.substitutions == 0);
    s = utf8_stats("abc", "abc");
    cr_expect(s.distance == 0 && rc_error_rate(&s) == 0.0);
    /* empty references: 0 when both are empty; +inf with something inserted */
    s = utf8_stats("", "");
    cr_expect(s.distance == 0 && rc_error_rate(&s) == 0.0);
    s = utf8_stats("", "abc");
    cr_expect(s.distance == 3 && s.insertions == 3 && isinf(rc_error_rate(&s)) && rc_error_rate(&s) > 0);
    s = utf8_stats("abc", "");
    cr_expect(s.distance == 3 && s.deletions == 3 && rc_error_rate(&s) == 1.0);
    cr_expect(isnan(rc_error_rate(NULL)));
    /* by code point: é is one character (two bytes) */
    s = utf8_stats("caf\xc3\xa9", "cafe");
    cr_expect(s.distance == 1 && s.substitutions == 1 && s.ref_length == 4, "%lld", (long long)s.distance);
    s = utf8_stats("\xe2\x82\xac\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80");   /* euro, emoji vs emoji */
    cr_expect(s.distance == 1 && s.deletions == 1 && s.ref_length == 2);
    int32_t a[5] = { 1, 2, 3, 4, 5 }, b[3] = { 2, 9, 4 };
    char err[128];
    cr_assert_eq(rc_edit_distance(a, 5, b, 3, &s, err, sizeof err), RC_OK);
    cr_expect(s.distance == 3 && s.substitutions == 1 && s.deletions == 2);
    cr_assert_eq(rc_edit_distance(NULL, 0, b, 3, &s, err, sizeof err), RC_OK);
    cr_expect(s.distance == 3 && s.insertions == 3);
    cr_expect_eq(rc_edit_distance(NULL, 2, b, 3, &s, err, sizeof err), RC_ERR_ARG);
    cr_expect_eq(rc_edit_distance(a, -1, b, 3, &s, err, sizeof err), RC_ERR_ARG);
}

Test(decode, edit_words_and_totals)
{
    rc_edit_stats s, tot = { 0 };
    char err[128];
    cr_assert_eq(rc_edit_distance_words("the cat sat on the mat", " the\tcat  sit on mat\n", &s, err, sizeof err), RC_OK);
    cr_expect(s.distance == 2 && s.substitutions == 1 && s.deletions == 1 && s.ref_length == 6 && s.hyp_length == 5);
    cr_expect(fabs(rc_error_rate(&s) - 2.0 / 6.0) < 1e-15);
    rc_edit_stats_add(&tot, &s);
    cr_assert_eq(rc_edit_distance_words("", "   ", &s, err, sizeof err), RC_OK);
    cr_expect(s.distance == 0 && s.ref_length == 0);
    cr_assert_eq(rc_edit_distance_words("a b", "a b c d", &s, err, sizeof err), RC_OK);
    cr_expect(s.distance == 2 && s.insertions == 2);
    rc_edit_stats_add(&tot, &s);
    /* words are bytes: "Cat" is not "cat"; "ab" is one word */
    cr_assert_eq(rc_edit_distance_words("cat a b", "Cat ab", &s, err, sizeof err), RC_OK);
    cr_expect(s.distance == 3 && s.substitutions == 2 && s.deletions == 1, "%lld", (long long)s.distance);
    rc_edit_stats_add(&tot, &s);
    /* a corpus's rate is its total edits over its total reference words: (2 + 2 + 3) / (6 + 2 + 3) */
    cr_expect(tot.distance == 7 && tot.ref_length == 11);
    cr_expect(fabs(rc_error_rate(&tot) - 7.0 / 11.0) < 1e-15);
    /* an empty reference line in a corpus is fine: it adds its insertions */
    cr_assert_eq(rc_edit_distance_utf8("", "xy", &s, err, sizeof err), RC_OK);
    rc_edit_stats_add(&tot, &s);
    cr_expect(fabs(rc_error_rate(&tot) - 9.0 / 11.0) < 1e-15);
}

Test(decode, edit_bad_utf8)
{
    rc_edit_stats s;
    char err[128];
    const char *bad[] = { "ab\xc3", "\xc0\xaf", "x\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80", "\xe2\x82" };
    size_t at[] = { 2, 0, 1, 0, 0, 0 };
    for (int i = 0; i < 6; i++) {
        cr_expect_eq(rc_edit_distance_utf8("ok", bad[i], &s, err, sizeof err), RC_ERR_FORMAT, "case %d", i);
        char want[64];
        snprintf(want, sizeof want, "hypothesis is not valid UTF-8 at byte %zu", at[i]);
        cr_expect(strstr(err, want), "case %d: %s", i, err);
    }
    cr_expect_eq(rc_edit_distance_utf8(bad[0], "ok", &s, err, sizeof err), RC_ERR_FORMAT);
    cr_expect(strstr(err, "reference"), "%s", err);
    cr_expect_eq(rc_edit_distance_utf8(NULL, "ok", &s, err, sizeof err), RC_ERR_ARG);
}

/* Random sequences against a plain full-matrix distance; the counts agree with the
 * lengths (hyp = ref - deletions + insertions) and add up to the distance. */
Test(decode, edit_random_vs_matrix)
{
    rng_state = 12345;
    int D[41][41];
    for (int it = 0; it < 300; it++) {
        int n = rng_below(41), m = rng_below(41), k = 1 + rng_below(4);
        int32_t a[40], b[40];
        for (int i = 0; i < n; i++) a[i] = rng_below(k);
        for (int j = 0; j < m; j++) b[j] = rng_below(k);
        for (int i = 0; i <= n; i++) D[i][0] = i;
        for (int j = 0; j <= m; j++) D[0][j] = j;
        for (int i = 1; i <= n; i++)
            for (int j = 1; j <= m; j++) {
                int v = D[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
                if (D[i - 1][j] + 1 < v) v = D[i - 1][j] + 1;
                if (D[i][j - 1] + 1 < v) v = D[i][j - 1] + 1;
                D[i][j] = v;
            }
        rc_edit_stats s;
        cr_assert_eq(rc_edit_distance(a, n, b, m, &s, NULL, 0), RC_OK);
        cr_expect_eq(s.distance, D[n][m], "case %d", it);
        cr_expect_eq(s.substitutions + s.insertions + s.deletions, s.distance);
        cr_expect_eq(s.hyp_length, s.ref_length - s.deletions + s.insertions);
    }
}
