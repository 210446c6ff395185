/* Context-free and context-sensitive languages with a peephole LSTM (Gers &
 * Schmidhuber 2001, "LSTM recurrent networks learn simple context-free and
 * context-sensitive languages", IEEE TNN 12(6)).
 *
 * Strings are S a^n b^n T (a context-free language) or S a^n b^n c^n T (context
 * sensitive). The network reads the string one symbol at a time (S, a, b, c as one-hot
 * inputs) and at every step predicts the SET of symbols that may legally come next:
 * four sigmoid outputs a, b, c, T, trained with the summed binary cross-entropy
 * (RC_HEAD_SIGMOID, a multi-label head). For a^n b^n:
 *
 *   after S            {a, T}    (the empty string S T is in the language)
 *   after an a         {a, b}
 *   after the k-th b   {b} for k < n, {T} for k = n
 *
 * and for a^n b^n c^n the n-th b allows {c}, the c's count down in the same way and
 * the n-th c allows {T}. A string is accepted only when every output of every step,
 * thresholded at 0.5, is right; so the network must count.
 *
 * Training: strings with n drawn uniformly from 1..--train-max (10), --batch of them
 * per update padded to the longest with a length mask, BPTT over whole strings, Adam
 * (lr 1e-2, cosine decay to 1e-4, global-norm clip 1) with Gaussian weight noise of
 * std 0.01 (Graves 2011), --steps updates, 2 memory cells (Gers & Schmidhuber used
 * one block of one cell for a^n b^n and two for a^n b^n c^n). Every --check-every
 * updates the training set n = 1..10 is tested and the first update from which it
 * stays solved is reported; --hold N stops N updates after that (as Gers &
 * Schmidhuber stopped once the training set was solved; default: run all --steps).
 * Then n = 1..--test-max is tested (200 for a^n b^n, 100 for a^n b^n c^n) and the
 * program reports, per seed, the largest N such that every n in 1..N is accepted.
 * --show n prints the per-step predictions for the string of n after training.
 *
 *   anbn [--lang anbn|anbncn|both] [--seeds 5] [--seed 1] [--hidden 2] [--steps 20000]
 *        [--batch 16] [--lr 1e-2] [--cosine 1] [--weight-noise 0.01] [--weight-decay 0]
 *        [--forget-bias 1] [--train-max 10] [--test-max N] [--check-every 100]
 *        [--hold N] [--show n] [--threads N] [--smoke]
 *
 * Published (Gers & Schmidhuber 2001, one memory block / one or two cells, online
 * training): generalisation to n = 1..1000 (a^n b^n) and 1..500 (a^n b^n c^n) for the
 * best runs. Our bar: every n in 1..100 (a^n b^n) and 1..50 (a^n b^n c^n) in at least
 * 3 of 5 seeds. --smoke runs one seed per language for a few seconds and exits
 * non-zero unless the training loss fell below a tenth of its start. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "recur.h"

enum { IN_S, IN_A, IN_B, IN_C, NIN };      /* input symbols */
enum { OUT_A, OUT_B, OUT_C, OUT_T, NOUT }; /* predicted next symbols */

typedef struct { unsigned long long s; } rng;

static unsigned long long rng_next(rng *r)   /* splitmix64 */
{
    unsigned long long z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static int rng_int(rng *r, int n) { return (int)((double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0) * n); }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The input symbols of the string for n (S a^n b^n [c^n], without the final T, which
 * is only ever predicted) and the legal-next sets; returns the length. */
static int make_string(int ncounts, int n, int *sym, unsigned char (*next)[NOUT])
{
    int L = 0;
    sym[L] = IN_S;
    memset(next[L], 0, NOUT);
    next[L][OUT_A] = next[L][OUT_T] = 1;
    L++;
    for (int i = 0; i < n; i++, L++) {
        sym[L] = IN_A;
        memset(next[L], 0, NOUT);
        next[L][OUT_A] = next[L][OUT_B] = 1;
    }
    for (int part = 1; part < ncounts; part++)   /* the b's, then the c's */
        for (int k = 1; k <= n; k++, L++) {
            sym[L] = part == 1 ? IN_B : IN_C;
            memset(next[L], 0, NOUT);
            if (k < n) next[L][part == 1 ? OUT_B : OUT_C] = 1;
            else next[L][part + 1 < ncounts ? OUT_C : OUT_T] = 1;
        }
    return L;
}

typedef struct opts {
    int ncounts;         /* 2: a^n b^n, 3: a^n b^n c^n */
    int hidden, steps, batch, train_max, test_max, check_every, hold, seeds, smoke, show;
    double lr, wd, forget_bias, noise;
    int cosine;
    unsigned long long seed;
} opts;

/* Streams the strings for n = 1..nmax through the model (B = nmax streams) and
 * writes ok[n-1] = 1 when every step's thresholded prediction is right. */
static int test_range(rc_model *m, int ncounts, int nmax, unsigned char *ok)
{
    int Lmax = 1 + ncounts * nmax, rc = 0;
    int *sym = malloc(sizeof(int) * (size_t)Lmax * nmax);
    unsigned char (*next)[NOUT] = malloc(sizeof *next * (size_t)Lmax * nmax);
    int *len = malloc(sizeof(int) * (size_t)nmax);
    float *x = malloc(sizeof(float) * (size_t)nmax * NIN);
    if (!sym || !next || !len || !x) {
        rc = -1;
        goto done;
    }
    for (int j = 0; j < nmax; j++) {
        len[j] = make_string(ncounts, j + 1, sym + (size_t)j * Lmax, next + (size_t)j * Lmax);
        ok[j] = 1;
    }
    if (rc_model_stream_reset(m, nmax) != RC_OK) {
        rc = -1;
        goto done;
    }
    for (int t = 0; t < Lmax; t++) {
        memset(x, 0, sizeof(float) * (size_t)nmax * NIN);
        for (int j = 0; j < nmax; j++)
            if (t < len[j]) x[j * NIN + sym[(size_t)j * Lmax + t]] = 1.0f;
        const float *out;
        if (rc_model_stream_step(m, x, NULL, &out) != RC_OK) {
            rc = -1;
            goto done;
        }
        for (int j = 0; j < nmax; j++) {
            if (t >= len[j] || !ok[j]) continue;
            for (int k = 0; k < NOUT; k++)
                if ((out[j * NOUT + k] > 0.0f) != (next[(size_t)j * Lmax + t][k] != 0)) ok[j] = 0;
        }
    }
done:
    if (rc) fprintf(stderr, "anbn: test: %s\n", rc_model_error(m));
    free(sym), free(next), free(len), free(x);
    return rc;
}

/* Prints the outputs (probabilities of a, b, c, T) and cell states at each step of
 * the string for n, marking the steps whose thresholded prediction is wrong. */
static void show_string(rc_model *m, int ncounts, int n)
{
    int L = 1 + ncounts * n;
    int *sym = malloc(sizeof(int) * (size_t)L);
    unsigned char (*next)[NOUT] = malloc(sizeof *next * (size_t)L);
    if (!sym || !next || rc_model_stream_reset(m, 1) != RC_OK) goto done;
    make_string(ncounts, n, sym, next);
    printf("    n = %d: step input  P(a) P(b) P(c) P(T)   [legal]\n", n);
    for (int t = 0; t < L; t++) {
        float x[NIN] = { 0 };
        x[sym[t]] = 1.0f;
        const float *out;
        if (rc_model_stream_step(m, x, NULL, &out) != RC_OK) break;
        int bad = 0;
        for (int k = 0; k < NOUT; k++) bad |= (out[k] > 0.0f) != (next[t][k] != 0);
        printf("    %4d %c  %.3f %.3f %.3f %.3f   [%s%s%s%s]%s\n", t, "SabcT"[sym[t]], 1 / (1 + exp(-out[0])),
               1 / (1 + exp(-out[1])), 1 / (1 + exp(-out[2])), 1 / (1 + exp(-out[3])), next[t][0] ? "a" : "",
               next[t][1] ? "b" : "", next[t][2] ? "c" : "", next[t][3] ? "T" : "", bad ? "  <- wrong" : "");
    }
done:
    free(sym), free(next);
}

/* The largest N such that every n in 1..N is accepted. */
static int largest_run(const unsigned char *ok, int nmax)
{
    int N = 0;
    while (N < nmax && ok[N]) N++;
    return N;
}

typedef struct result { int N, accepted, solved_at, steps; double first_loss, last_loss, secs; } result;

static int run_seed(const opts *op, unsigned long long seed, result *res)
{
    rc_lstm_opts lo = rc_lstm_defaults();
    lo.peepholes = 1;
    lo.forget_bias = (float)op->forget_bias;
    rc_cell *cell = rc_cell_lstm(op->hidden, &lo);
    rc_model_opts mo = rc_model_defaults();
    mo.input_size = NIN;
    mo.output_size = NOUT;
    mo.head = RC_HEAD_SIGMOID;
    mo.seed = seed;
    rc_model *m = cell ? rc_model_new(cell, &mo) : NULL;
    rc_cell_free(cell);
    if (!m || rc_model_status(m) != RC_OK) {
        fprintf(stderr, "anbn: model: %s\n", m ? rc_model_error(m) : "out of memory");
        rc_model_free(m);
        return -1;
    }
    rc_optim_opts oo = rc_optim_defaults(RC_OPT_ADAM);
    oo.clip_norm = 1.0f;
    oo.weight_decay = (float)op->wd;
    oo.decoupled = 1;
    oo.weight_noise = (float)op->noise;
    oo.seed = seed + 99;
    rc_optim *opt = rc_optim_new(m, &oo);
    int B = op->batch, Tmax = 1 + op->ncounts * op->train_max, rc = 0;
    float *x = malloc(sizeof(float) * (size_t)Tmax * B * NIN), *y = malloc(sizeof(float) * (size_t)Tmax * B * NOUT);
    int32_t *lengths = malloc(sizeof(int32_t) * (size_t)B);
    int *ns = malloc(sizeof(int) * (size_t)B);
    int *sym = malloc(sizeof(int) * (size_t)Tmax);
    unsigned char (*next)[NOUT] = malloc(sizeof *next * (size_t)Tmax);
    unsigned char *ok = malloc((size_t)(op->test_max > op->train_max ? op->test_max : op->train_max));
    if (!opt || !x || !y || !lengths || !ns || !sym || !next || !ok) {
        fprintf(stderr, "anbn: out of memory\n");
        rc = -1;
        goto done;
    }
    rng r = { seed * 1000003ull + (unsigned long long)op->ncounts };
    double t0 = now(), acc = 0, first = NAN;
    int nacc = 0, solved_since = -1;
    memset(res, 0, sizeof *res);
    res->solved_at = -1;
    int step;
    for (step = 1; step <= op->steps; step++) {
        int T = 0;
        for (int j = 0; j < B; j++) {   /* lengths first: the batch is padded to the longest */
            ns[j] = 1 + rng_int(&r, op->train_max);
            lengths[j] = 1 + op->ncounts * ns[j];
            if (lengths[j] > T) T = lengths[j];
        }
        memset(x, 0, sizeof(float) * (size_t)T * B * NIN);
        memset(y, 0, sizeof(float) * (size_t)T * B * NOUT);
        for (int j = 0; j < B; j++) {   /* time-major: row t*B + j is step t of string j */
            int L = make_string(op->ncounts, ns[j], sym, next);
            for (int t = 0; t < L; t++) {
                x[((size_t)t * B + j) * NIN + sym[t]] = 1.0f;
                for (int k = 0; k < NOUT; k++) y[((size_t)t * B + j) * NOUT + k] = next[t][k];
            }
        }
        rc_batch b = { .T = T, .B = B, .x = x, .y = y, .lengths = lengths };
        double loss;
        rc_schedule sch = { .kind = op->cosine ? RC_SCHED_COSINE : RC_SCHED_CONSTANT, .lr = (float)op->lr, .min_frac = 0.01f };
        float lr = rc_schedule_lr(&sch, 1, (double)(step - 1) / op->steps);
        if (rc_optim_begin(opt) != RC_OK || rc_model_forward(m, &b, &loss) != RC_OK || rc_model_backward(m) != RC_OK ||
            rc_optim_step(opt, lr) != RC_OK) {
            fprintf(stderr, "anbn: step %d: %s\n", step, rc_model_error(m));
            rc = -1;
            goto done;
        }
        if (step <= 20) first = step == 1 ? loss / 20 : first + loss / 20;
        acc += loss;
        nacc++;
        if (step % op->check_every == 0 || step == op->steps) {
            if (test_range(m, op->ncounts, op->train_max, ok) != 0) {
                rc = -1;
                goto done;
            }
            int solved = largest_run(ok, op->train_max) == op->train_max;
            if (solved && solved_since < 0) solved_since = step;
            if (!solved) solved_since = -1;
            res->last_loss = acc / nacc;
            acc = 0;
            nacc = 0;
            if (op->hold >= 0 && solved_since >= 0 && step - solved_since >= op->hold) break;
        }
    }
    res->steps = step > op->steps ? op->steps : step;
    res->solved_at = solved_since;
    res->first_loss = first;
    if (test_range(m, op->ncounts, op->test_max, ok) != 0) {
        rc = -1;
        goto done;
    }
    res->N = largest_run(ok, op->test_max);
    for (int j = 0; j < op->test_max; j++) res->accepted += ok[j];
    if (op->show > 0) show_string(m, op->ncounts, op->show);
    res->secs = now() - t0;
done:
    free(x), free(y), free(lengths), free(ns), free(sym), free(next), free(ok);
    rc_optim_free(opt);
    rc_model_free(m);
    return rc;
}

static int run_lang(const opts *op, int *passed_seeds, int *smoke_fail)
{
    const char *name = op->ncounts == 2 ? "a^n b^n" : "a^n b^n c^n";
    int bar = op->ncounts == 2 ? 100 : 50;
    printf("%s: peephole LSTM, %d cells, Adam lr %g, batch %d, train n = 1..%d, test n = 1..%d\n", name, op->hidden,
           op->lr, op->batch, op->train_max, op->test_max);
    printf("  %-5s %8s %10s %10s %10s %12s %8s\n", "seed", "updates", "solved at", "loss", "largest N", "accepted", "secs");
    fflush(stdout);
    *passed_seeds = 0;
    for (int s = 0; s < op->seeds; s++) {
        result res;
        unsigned long long seed = op->seed + (unsigned long long)s;
        if (run_seed(op, seed, &res) != 0) return -1;
        char solved[32];
        if (res.solved_at >= 0) snprintf(solved, sizeof solved, "%d", res.solved_at);
        else snprintf(solved, sizeof solved, "never");
        printf("  %-5llu %8d %10s %10.4f %10d %7d/%-4d %8.1f\n", seed, res.steps, solved, res.last_loss, res.N,
               res.accepted, op->test_max, res.secs);
        fflush(stdout);
        if (res.N >= bar) (*passed_seeds)++;
        if (op->smoke && !(res.last_loss < 0.1 * res.first_loss)) {
            fprintf(stderr, "anbn: smoke: %s seed %llu: loss %.4f did not fall below a tenth of its start %.4f\n", name,
                    seed, res.last_loss, res.first_loss);
            *smoke_fail = 1;
        }
    }
    if (!op->smoke)
        printf("  %s: %d of %d seeds accept every n in 1..%d (bar: 3 of 5)\n", name, *passed_seeds, op->seeds, bar);
    printf("\n");
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: anbn [--lang anbn|anbncn|both] [--seeds N] [--seed N] [--hidden H] [--steps N]\n"
                    "            [--batch N] [--lr X] [--train-max N] [--test-max N] [--check-every N]\n"
                    "            [--hold N] [--threads N] [--smoke]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *lang = "both";
    opts op = { .hidden = 2, .steps = 20000, .batch = 16, .train_max = 10, .test_max = 0, .check_every = 100,
                .hold = -1, .seeds = 5, .lr = 1e-2, .forget_bias = 1.0, .noise = 0.01, .cosine = 1, .seed = 1 };
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--smoke")) { op.smoke = 1; continue; }
        if (!v) return usage();
        i++;
        if (!strcmp(a, "--lang")) lang = v;
        else if (!strcmp(a, "--seeds")) op.seeds = atoi(v);
        else if (!strcmp(a, "--seed")) op.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--hidden")) op.hidden = atoi(v);
        else if (!strcmp(a, "--steps")) op.steps = atoi(v);
        else if (!strcmp(a, "--batch")) op.batch = atoi(v);
        else if (!strcmp(a, "--lr")) op.lr = atof(v);
        else if (!strcmp(a, "--show")) op.show = atoi(v);
        else if (!strcmp(a, "--cosine")) op.cosine = atoi(v);
        else if (!strcmp(a, "--weight-noise")) op.noise = atof(v);
        else if (!strcmp(a, "--forget-bias")) op.forget_bias = atof(v);
        else if (!strcmp(a, "--weight-decay")) op.wd = atof(v);
        else if (!strcmp(a, "--train-max")) op.train_max = atoi(v);
        else if (!strcmp(a, "--test-max")) op.test_max = atoi(v);
        else if (!strcmp(a, "--check-every")) op.check_every = atoi(v);
        else if (!strcmp(a, "--hold")) op.hold = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else return usage();
    }
    if (op.smoke) {
        op.seeds = 1;
        op.steps = 1500;
        op.check_every = 100;
        op.hold = -1;
    }
    if (strcmp(lang, "anbn") && strcmp(lang, "anbncn") && strcmp(lang, "both")) return usage();
    if (op.seeds < 1 || op.steps < 1 || op.batch < 1 || op.train_max < 1 || op.check_every < 1 ||
        op.hidden < 1 || op.test_max < 0 || !(op.lr > 0) || op.noise < 0)
        return usage();
    /* one thread: the nets are tiny, so threads only add synchronisation */
    rc_set_num_threads(threads > 0 ? threads : 1);
    int fail = 0, smoke_fail = 0, passed[2] = { 0, 0 };
    for (int k = 2; k <= 3; k++) {
        if (!strcmp(lang, k == 2 ? "anbncn" : "anbn")) continue;
        opts o = op;
        o.ncounts = k;
        if (!o.test_max) o.test_max = op.smoke ? 30 : k == 2 ? 200 : 100;
        if (run_lang(&o, &passed[k - 2], &smoke_fail) != 0) fail = 1;
    }
    if (op.smoke) printf(smoke_fail ? "smoke: FAILED\n" : "smoke: ok\n");
    return fail || smoke_fail;
}
