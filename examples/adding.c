/* The adding problem (Hochreiter & Schmidhuber 1997, experiment 4), in the form used
 * by Bai, Kolter & Koltun 2018 ("An empirical evaluation of generic convolutional and
 * recurrent networks for sequence modeling", Table 1):
 *
 *   input   T steps of two channels: a value drawn from U[0, 1] and a marker that is 1
 *           at exactly two steps (one in each half of the sequence) and 0 elsewhere;
 *   target  the sum of the two marked values, read at the last step;
 *   loss    mean squared error. Predicting the mean (1) gives 2/12 = 0.167.
 *
 * A GRU and an LSTM of about 70K parameters each (the hidden size H is picked so the
 * parameter count is the nearest to --params), a linear head on the last step
 * (last_step_only + RC_HEAD_LINEAR), Adam, gradient-norm clipping. The test set is a
 * fixed set of --test sequences (rounded down to a multiple of --batch) drawn once from
 * a generator of its own, the same for every cell and seed.
 *
 *   adding [--cell gru|lstm|both] [--T 200] [--steps 3000] [--batch 32] [--lr 2e-3]
 *          [--clip 1] [--params 70000] [--hidden H] [--seed 1] [--eval-every 100]
 *          [--stop-at 0] [--time-limit 0] [--threads 0] [--smoke]
 *
 * Published (Bai et al. 2018, Table 1, T = 600, MSE): GRU 5.3e-5, LSTM 0.164.
 * --smoke trains tiny models on T = 20 for a few seconds and exits non-zero unless
 * each one's test MSE fell below half of its start and half of the 0.167 baseline. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "recur.h"

typedef struct { unsigned long long s; } rng;

static unsigned long long rng_next(rng *r)   /* splitmix64 */
{
    unsigned long long z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unif(rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }
static int rng_int(rng *r, int n) { return (int)(rng_unif(r) * n); }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* B sequences of length T, time-major: x[(t*B + b)*2 + {0: value, 1: marker}], y[b]. */
static void make_batch(rng *r, int T, int B, float *x, float *y)
{
    for (int b = 0; b < B; b++) {
        int half = T / 2;
        int p1 = rng_int(r, half), p2 = half + rng_int(r, T - half);
        double sum = 0;
        for (int t = 0; t < T; t++) {
            float v = (float)rng_unif(r), mk = (t == p1 || t == p2) ? 1.0f : 0.0f;
            x[((size_t)t * B + b) * 2] = v;
            x[((size_t)t * B + b) * 2 + 1] = mk;
            if (mk > 0) sum += v;
        }
        y[b] = (float)sum;
    }
}

static rc_cell *make_cell(const char *kind, int H)
{
    if (!strcmp(kind, "gru")) return rc_cell_gru(H, RC_GRU_RESET_AFTER);
    if (!strcmp(kind, "lstm")) return rc_cell_lstm(H, NULL);
    return NULL;
}

static rc_model *make_model(const char *kind, int H, unsigned long long seed)
{
    rc_cell *c = make_cell(kind, H);
    if (!c) return NULL;
    rc_model_opts o = rc_model_defaults();
    o.input_size = 2;
    o.output_size = 1;
    o.head = RC_HEAD_LINEAR;
    o.last_step_only = 1;
    o.seed = seed;
    rc_model *m = rc_model_new(c, &o);
    rc_cell_free(c);
    if (m && rc_model_status(m) != RC_OK) {
        fprintf(stderr, "adding: model: %s\n", rc_model_error(m));
        rc_model_free(m);
        return NULL;
    }
    return m;
}

/* The hidden size whose model has the parameter count nearest to `target`. */
static int pick_hidden(const char *kind, long target)
{
    int best = 1;
    long bestd = -1;
    for (int H = 4; H <= 1024; H++) {
        rc_model *m = make_model(kind, H, 1);
        if (!m) return -1;
        long n = (long)rc_model_param_total(m), d = labs(n - target);
        rc_model_free(m);
        if (bestd < 0 || d < bestd) {
            bestd = d;
            best = H;
        }
        if (n > target) break;
    }
    return best;
}

typedef struct opts {
    const char *cell;
    int T, steps, batch, hidden, eval_every, test, threads, smoke;
    long params;
    double lr, clip, stop_at, time_limit;
    unsigned long long seed;
} opts;

/* Test MSE over n sequences, in chunks of the training batch B (which reuses the
 * training plan: one graph per (T, B)). n is a multiple of B. */
static double evaluate(rc_model *m, const float *tx, const float *ty, int T, int n, int B)
{
    double sum = 0;
    rc_model_set_training(m, 0);
    for (int c = 0; c < n / B; c++) {
        /* chunk c: sequences c*B .. c*B+B-1, stored time-major per chunk */
        rc_batch b = { .T = T, .B = B, .x = tx + (size_t)c * T * B * 2, .y = ty + (size_t)c * B };
        double loss;
        if (rc_model_forward(m, &b, &loss) != RC_OK) {
            fprintf(stderr, "adding: eval: %s\n", rc_model_error(m));
            sum = NAN;
            break;
        }
        sum += loss * B;
    }
    rc_model_set_training(m, 1);
    return sum / n;
}

/* Trains one cell; returns 0 and the final/best test MSE, or -1. */
static int run(const opts *op, const char *kind, double *final_mse, double *best_mse, double *first_mse, int *done)
{
    int H = op->hidden > 0 ? op->hidden : pick_hidden(kind, op->params);
    rc_model *m = H > 0 ? make_model(kind, H, op->seed) : NULL;
    if (!m) return fprintf(stderr, "adding: cannot make the %s model\n", kind), -1;
    rc_optim_opts oo = rc_optim_defaults(RC_OPT_ADAM);
    oo.clip_norm = (float)op->clip;
    rc_optim *opt = rc_optim_new(m, &oo);
    if (!opt) {
        fprintf(stderr, "adding: optimiser: %s\n", rc_model_error(m));
        rc_model_free(m);
        return -1;
    }
    int T = op->T, B = op->batch, NT = op->test / op->batch * op->batch;
    float *x = malloc(sizeof(float) * (size_t)T * B * 2), *y = malloc(sizeof(float) * (size_t)B);
    float *tx = malloc(sizeof(float) * (size_t)T * NT * 2), *ty = malloc(sizeof(float) * (size_t)NT);
    if (!x || !y || !tx || !ty) {
        fprintf(stderr, "adding: out of memory\n");
        free(x), free(y), free(tx), free(ty);
        rc_optim_free(opt);
        rc_model_free(m);
        return -1;
    }
    rng tr = { op->seed * 7919 + 17 }, te = { 0xadd1ull + (unsigned long long)T };
    for (int c = 0; c < NT / B; c++) make_batch(&te, T, B, tx + (size_t)c * T * B * 2, ty + (size_t)c * B);
    printf("%s: H = %d, %zu parameters, T = %d, batch %d, Adam lr %g, clip %g\n", kind, H, rc_model_param_total(m), T, B,
           op->lr, op->clip);
    fflush(stdout);
    double t0 = now(), loss_acc = 0;
    int nacc = 0, rc = 0;
    *first_mse = evaluate(m, tx, ty, T, NT, B);
    *best_mse = *final_mse = *first_mse;
    printf("  step %6d  test MSE %.6f\n", 0, *first_mse);
    *done = 0;
    for (int step = 1; step <= op->steps; step++) {
        *done = step;
        make_batch(&tr, T, B, x, y);
        rc_batch b = { .T = T, .B = B, .x = x, .y = y };
        double loss;
        if (rc_model_forward(m, &b, &loss) != RC_OK || rc_model_backward(m) != RC_OK) {
            fprintf(stderr, "adding: step %d: %s\n", step, rc_model_error(m));
            rc = -1;
            break;
        }
        if (rc_optim_step(opt, (float)op->lr) != RC_OK) {
            fprintf(stderr, "adding: step %d: the gradient is not finite\n", step);
            rc = -1;
            break;
        }
        loss_acc += loss;
        nacc++;
        int last = step == op->steps || (op->time_limit > 0 && now() - t0 > op->time_limit);
        if (step % op->eval_every == 0 || last) {
            double mse = evaluate(m, tx, ty, T, NT, B);
            *final_mse = mse;
            if (mse < *best_mse) *best_mse = mse;
            printf("  step %6d  train MSE %.6f  test MSE %.6f  %.0f s\n", step, loss_acc / nacc, mse, now() - t0);
            fflush(stdout);
            loss_acc = 0;
            nacc = 0;
            if (op->stop_at > 0 && mse < op->stop_at) {
                printf("  test MSE below --stop-at %g: stopping\n", op->stop_at);
                break;
            }
        }
        if (last) break;
    }
    printf("%s: final test MSE %.6g (best %.6g) after %d updates, %.1f s\n", kind, *final_mse, *best_mse, *done,
           now() - t0);
    free(x), free(y), free(tx), free(ty);
    rc_optim_free(opt);
    rc_model_free(m);
    return rc;
}

static int usage(void)
{
    fprintf(stderr, "usage: adding [--cell gru|lstm|both] [--T N] [--steps N] [--batch N] [--lr X] [--clip X]\n"
                    "              [--params N | --hidden H] [--seed N] [--eval-every N] [--test N]\n"
                    "              [--stop-at MSE] [--time-limit S] [--threads N] [--smoke]\n");
    return 2;
}

int main(int argc, char **argv)
{
    opts op = { .cell = "both", .T = 200, .steps = 3000, .batch = 32, .eval_every = 100, .test = 1024,
                .params = 70000, .lr = 2e-3, .clip = 1.0, .seed = 1 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--smoke")) { op.smoke = 1; continue; }
        if (!v) return usage();
        i++;
        if (!strcmp(a, "--cell")) op.cell = v;
        else if (!strcmp(a, "--T")) op.T = atoi(v);
        else if (!strcmp(a, "--steps")) op.steps = atoi(v);
        else if (!strcmp(a, "--batch")) op.batch = atoi(v);
        else if (!strcmp(a, "--lr")) op.lr = atof(v);
        else if (!strcmp(a, "--clip")) op.clip = atof(v);
        else if (!strcmp(a, "--params")) op.params = atol(v);
        else if (!strcmp(a, "--hidden")) op.hidden = atoi(v);
        else if (!strcmp(a, "--seed")) op.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--eval-every")) op.eval_every = atoi(v);
        else if (!strcmp(a, "--test")) op.test = atoi(v);
        else if (!strcmp(a, "--stop-at")) op.stop_at = atof(v);
        else if (!strcmp(a, "--time-limit")) op.time_limit = atof(v);
        else if (!strcmp(a, "--threads")) op.threads = atoi(v);
        else return usage();
    }
    if (op.smoke) {   /* seconds, not minutes: the loss must fall, nothing more */
        op.T = 20;
        op.steps = 500;
        op.hidden = 16;
        op.batch = 32;
        op.eval_every = 100;
        op.test = 256;
        op.lr = 1e-2;
    }
    if (op.T < 2 || op.steps < 1 || op.batch < 1 || op.eval_every < 1 || op.test < op.batch || !(op.lr > 0)) return usage();
    if (strcmp(op.cell, "gru") && strcmp(op.cell, "lstm") && strcmp(op.cell, "both")) return usage();
    if (op.threads > 0) rc_set_num_threads(op.threads);
    if (rc_blas_check() != RC_OK) fprintf(stderr, "adding: warning: OpenBLAS is not its OpenMP build\n");
    const char *kinds[2] = { "gru", "lstm" };
    double fin[2] = { NAN, NAN }, best[2] = { NAN, NAN }, first[2] = { NAN, NAN };
    int ran[2] = { 0, 0 }, done[2] = { 0, 0 }, fail = 0;
    for (int k = 0; k < 2; k++) {
        if (strcmp(op.cell, "both") && strcmp(op.cell, kinds[k])) continue;
        if (run(&op, kinds[k], &fin[k], &best[k], &first[k], &done[k]) != 0) return 1;
        ran[k] = 1;
    }
    printf("\nadding problem, T = %d, batch %d (trivial baseline 0.167):\n", op.T, op.batch);
    printf("  %-5s %8s %12s %12s   %s\n", "cell", "updates", "test MSE", "best", "Bai et al. 2018 (T=600)");
    for (int k = 0; k < 2; k++)
        if (ran[k]) {
            printf("  %-5s %8d %12.3g %12.3g   %s\n", kinds[k], done[k], fin[k], best[k], k == 0 ? "5.3e-5" : "0.164");
            if (op.smoke && !(fin[k] < 0.5 * first[k] && fin[k] < 0.5 * 0.1667)) {
                fprintf(stderr, "adding: smoke: %s test MSE %.4f (start %.4f) is not below half the baseline 0.167\n",
                        kinds[k], fin[k], first[k]);
                fail = 1;
            }
        }
    if (op.smoke) printf(fail ? "smoke: FAILED\n" : "smoke: ok\n");
    return fail;
}
