/* Mackey-Glass (tau = 17) time-series prediction, 84 steps ahead.
 *
 * The series, as in Jaeger & Haas 2004 ("Harnessing nonlinearity", Science 304,
 * supplementary material):
 *   dx/dt = 0.2 x(t - 17) / (1 + x(t - 17)^10) - 0.1 x(t),
 *   discretised with Euler steps of 1/10 (the delay is exactly 170 steps), the
 *   history x = 1.2 before t = 0, subsampled every 10 steps (one sample per time
 *   unit), the first 1000 samples discarded as the transient, then squashed as
 *   y = tanh(x - 1) (Jaeger & Haas's transform; every number below is in x units).
 * Training: the next 1000 samples are a washout (unused, as the ESN's washout), then
 *   3000 samples are the training series. An LSTM (1 layer, --hidden cells, a linear
 *   head on every step) learns next-value prediction on windows of --window steps
 *   cut at random places from those 3000, by BPTT, with Adam (global-norm clip 1) and
 *   a cosine schedule. Each window starts from the state left by a burn-in run over
 *   the --burn samples before it (a forward with carried state, no gradient), so the
 *   loss is not spent on the transient of a zero state.
 * Test (NRMSE84): 100 trials on a second series of its own (another start, x = 0.9
 *   history, the same transient), each at a different place: the model reads
 *   --warmup true samples (teacher forcing), then runs free for 84 steps on its own
 *   output. NRMSE84 = sqrt(mean over trials of (x_pred(84) - x(84))^2 / var(x)), var
 *   the variance of the test series. Jaeger & Haas averaged over 100 independent
 *   runs of the whole experiment; here one trained network is tested 100 times.
 * Writes --out/mackey_glass.csv (trial 0: t = steps ahead of the last true sample
 *   read, truth, prediction; t <= 0 is one-step prediction while reading true samples) and --out/mackey_glass.png (gnuplot, when installed).
 *
 *   mackey_glass [--hidden 64] [--steps 8000] [--batch 32] [--window 100] [--burn 50]
 *                [--warmup 200] [--lr 5e-3] [--seed 1] [--out runs/examples]
 *                [--threads N] [--smoke]
 *
 * Reference (not a bar: not gradient-trained): Evolino, NRMSE84 ~ 1.9e-3 (Schmidhuber,
 * Wierstra & Gomez 2005); the ESN of Jaeger & Haas reached 10^-4.2. --smoke trains for
 * a few seconds and exits non-zero unless the training loss fell by 10x. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "recur.h"

#define TRANSIENT 1000
#define WASHOUT 1000
#define NTRAIN 3000
#define HORIZON 84
#define TRIALS 100

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

/* n samples (one per time unit) after the transient; x0 is the constant history. */
static double *mackey_glass(int n, double x0)
{
    const int sub = 10, delay = 170;   /* step 1/10; tau = 17 = 170 steps */
    long total = (long)(TRANSIENT + n) * sub + 1;
    double *h = malloc(sizeof(double) * (size_t)total), *out = malloc(sizeof(double) * (size_t)n);
    if (!h || !out) {
        free(h), free(out);
        return NULL;
    }
    h[0] = x0;
    for (long i = 0; i + 1 < total; i++) {
        double xd = i >= delay ? h[i - delay] : x0, x = h[i];
        h[i + 1] = x + 0.1 * (0.2 * xd / (1.0 + pow(xd, 10.0)) - 0.1 * x);
    }
    for (int k = 0; k < n; k++) out[k] = h[(long)(TRANSIENT + k) * sub];
    free(h);
    return out;
}

static float squash(double x) { return (float)tanh(x - 1.0); }
static double unsquash(float y)
{
    double v = y > 0.999999f ? 0.999999 : y < -0.999999f ? -0.999999 : y;
    return atanh(v) + 1.0;
}

typedef struct opts {
    int hidden, steps, batch, window, warmup, burn, threads, smoke;
    double lr;
    unsigned long long seed;
    const char *out;
} opts;

static int mkdirs(const char *path)
{
    char p[1024];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            mkdir(p, 0777);
            *s = '/';
        }
    mkdir(p, 0777);
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* Free-running test: NRMSE84 over TRIALS starts; trial 0 is written to csv (column t:
 * steps ahead of the last true sample; t <= 0 is teacher forced, one step ahead). */
static double test_nrmse(rc_model *m, const double *xs, int n, int warmup, FILE *csv, double *nrmse_y)
{
    double mean = 0, var = 0, vy = 0, my = 0;
    for (int i = 0; i < n; i++) mean += xs[i], my += squash(xs[i]);
    mean /= n, my /= n;
    for (int i = 0; i < n; i++) var += (xs[i] - mean) * (xs[i] - mean), vy += (squash(xs[i]) - my) * (squash(xs[i]) - my);
    var /= n, vy /= n;
    /* steps 0..warmup-1 read true samples; the output at step t predicts sample t+1,
     * which is (t + 2 - warmup) steps ahead of the last true sample read; the 84th
     * prediction is the output of step warmup + 82, for sample warmup + 83 */
    int span = warmup + HORIZON - 1, stride = (n - span - 1) / TRIALS;
    float x[TRIALS], pred[TRIALS];
    double se = 0, sey = 0;
    if (stride < 1 || rc_model_stream_reset(m, TRIALS) != RC_OK) return NAN;
    const float *out = NULL;
    for (int t = 0; t < span; t++) {
        for (int j = 0; j < TRIALS; j++) x[j] = t < warmup ? squash(xs[j * stride + t]) : pred[j];
        if (rc_model_stream_step(m, x, NULL, &out) != RC_OK) return NAN;
        for (int j = 0; j < TRIALS; j++) pred[j] = out[j];
        if (csv && t + 2 - warmup >= -50)
            fprintf(csv, "%d,%.6f,%.6f\n", t + 2 - warmup, xs[t + 1], unsquash(pred[0]));
    }
    for (int j = 0; j < TRIALS; j++) {
        double d = xs[j * stride + span] - unsquash(pred[j]);
        double dy = squash(xs[j * stride + span]) - pred[j];
        se += d * d;
        sey += dy * dy;
    }
    *nrmse_y = sqrt(sey / TRIALS / vy);
    return sqrt(se / TRIALS / var);
}

static int usage(void)
{
    fprintf(stderr, "usage: mackey_glass [--hidden H] [--steps N] [--batch N] [--window N] [--burn N] [--warmup N]\n"
                    "                    [--lr X] [--seed N] [--out DIR] [--threads N] [--smoke]\n");
    return 2;
}

int main(int argc, char **argv)
{
    opts op = { .hidden = 64, .steps = 8000, .batch = 32, .window = 100, .warmup = 200, .burn = 50, .lr = 5e-3, .seed = 1,
                .out = "runs/examples" };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--smoke")) { op.smoke = 1; continue; }
        if (!v) return usage();
        i++;
        if (!strcmp(a, "--hidden")) op.hidden = atoi(v);
        else if (!strcmp(a, "--steps")) op.steps = atoi(v);
        else if (!strcmp(a, "--batch")) op.batch = atoi(v);
        else if (!strcmp(a, "--window")) op.window = atoi(v);
        else if (!strcmp(a, "--warmup")) op.warmup = atoi(v);
        else if (!strcmp(a, "--burn")) op.burn = atoi(v);
        else if (!strcmp(a, "--lr")) op.lr = atof(v);
        else if (!strcmp(a, "--seed")) op.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--out")) op.out = v;
        else if (!strcmp(a, "--threads")) op.threads = atoi(v);
        else return usage();
    }
    if (op.smoke) {
        op.hidden = 16;
        op.steps = 1000;
        op.window = 50;
        op.burn = 20;
    }
    if (op.hidden < 1 || op.steps < 1 || op.batch < 1 || op.window < 2 || op.burn < 0 || op.window + op.burn >= NTRAIN || op.warmup < 1 ||
        !(op.lr > 0))
        return usage();
    if (op.threads > 0) rc_set_num_threads(op.threads);
    if (rc_blas_check() != RC_OK) fprintf(stderr, "mackey_glass: warning: OpenBLAS is not its OpenMP build\n");
    int ntest = 4000;
    double *train = mackey_glass(WASHOUT + NTRAIN, 1.2), *test = mackey_glass(ntest, 0.9);
    rc_cell *cell = rc_cell_lstm(op.hidden, NULL);
    rc_model_opts mo = rc_model_defaults();
    mo.input_size = 1;
    mo.output_size = 1;
    mo.head = RC_HEAD_LINEAR;
    mo.seed = op.seed;
    rc_model *m = cell ? rc_model_new(cell, &mo) : NULL;
    rc_cell_free(cell);
    if (!train || !test || !m || rc_model_status(m) != RC_OK) {
        fprintf(stderr, "mackey_glass: %s\n", m ? rc_model_error(m) : "out of memory");
        return 1;
    }
    rc_optim_opts oo = rc_optim_defaults(RC_OPT_ADAM);
    oo.clip_norm = 1.0f;
    rc_optim *opt = rc_optim_new(m, &oo);
    rc_schedule sch = { .kind = RC_SCHED_COSINE, .lr = (float)op.lr, .min_frac = 0.02f };
    int T = op.window, B = op.batch;
    float *x = malloc(sizeof(float) * (size_t)T * B), *y = malloc(sizeof(float) * (size_t)T * B);
    float *bx = malloc(sizeof(float) * (size_t)(op.burn + 1) * B), *by = malloc(sizeof(float) * (size_t)(op.burn + 1) * B);
    if (!opt || !x || !y || !bx || !by || B > 1024) {
        fprintf(stderr, "mackey_glass: out of memory\n");
        return 1;
    }
    const double *ser = train + WASHOUT;
    printf("Mackey-Glass tau 17: LSTM %d cells, %zu parameters; %d training samples, windows of %d, batch %d, "
           "Adam lr %g (cosine), %d updates\n",
           op.hidden, rc_model_param_total(m), NTRAIN, T, B, op.lr, op.steps);
    fflush(stdout);
    rng r = { op.seed * 31337ull };
    double t0 = now(), acc = 0, first = NAN, last = NAN;
    int nacc = 0;
    for (int step = 1; step <= op.steps; step++) {
        int s0[1024];
        for (int j = 0; j < B && j < 1024; j++) s0[j] = op.burn + rng_int(&r, NTRAIN - T - op.burn);
        rc_model_reset_state(m);
        if (op.burn > 0) {   /* burn-in: run the preceding samples, keep the final state */
            for (int j = 0; j < B; j++)
                for (int t = 0; t < op.burn; t++) {
                    bx[t * B + j] = squash(ser[s0[j] - op.burn + t]);
                    by[t * B + j] = squash(ser[s0[j] - op.burn + t + 1]);
                }
            rc_batch bb = { .T = op.burn, .B = B, .x = bx, .y = by };
            rc_model_set_carry(m, 1);
            if (rc_model_forward(m, &bb, NULL) != RC_OK) {
                fprintf(stderr, "mackey_glass: burn-in: %s\n", rc_model_error(m));
                return 1;
            }
            rc_model_set_carry(m, 0);
        }
        for (int j = 0; j < B; j++)
            for (int t = 0; t < T; t++) {
                x[t * B + j] = squash(ser[s0[j] + t]);
                y[t * B + j] = squash(ser[s0[j] + t + 1]);
            }
        rc_batch b = { .T = T, .B = B, .x = x, .y = y };
        double loss;
        float lr = rc_schedule_lr(&sch, 1, (double)(step - 1) / op.steps);
        if (rc_model_forward(m, &b, &loss) != RC_OK || rc_model_backward(m) != RC_OK || rc_optim_step(opt, lr) != RC_OK) {
            fprintf(stderr, "mackey_glass: step %d: %s\n", step, rc_model_error(m));
            return 1;
        }
        acc += loss;
        nacc++;
        if (step % 100 == 0 || step == op.steps) {
            last = acc / nacc;
            if (isnan(first)) first = last;
            if (step % 500 == 0 || step == op.steps)
                printf("  step %5d  train MSE (squashed units) %.3e  lr %.2e  %.0f s\n", step, last, lr, now() - t0);
            fflush(stdout);
            acc = 0;
            nacc = 0;
        }
    }
    double train_secs = now() - t0;
    char path[1200], png[1200];
    FILE *csv = NULL;
    if (mkdirs(op.out) == 0) {
        snprintf(path, sizeof path, "%s/mackey_glass.csv", op.out);
        csv = fopen(path, "w");
        if (csv) fprintf(csv, "t,truth,prediction\n");
    }
    double ny = NAN, nrmse = test_nrmse(m, test, ntest, op.warmup, csv, &ny);
    if (csv) fclose(csv);
    printf("\nNRMSE84 over %d trials: %.3e (in tanh-squashed units: %.3e); training %.1f s\n", TRIALS, nrmse, ny,
           train_secs);
    printf("reference: Evolino (Schmidhuber et al. 2005) ~1.9e-3; ESN (Jaeger & Haas 2004) 10^-4.2 = 6.3e-5\n");
    if (csv && !op.smoke) {
        snprintf(png, sizeof png, "%s/mackey_glass.png", op.out);
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "gnuplot -e \"set terminal pngcairo size 900,400; set output '%s'; set datafile separator ','; "
                 "set key top left; set xlabel 'steps ahead of the last true input (t <= 0: one-step predictions)'; set ylabel 'x(t)'; "
                 "set title 'Mackey-Glass tau=17: LSTM free run, NRMSE84 = %.2e'; set arrow from %d, graph 0 to %d, graph 1 nohead dt 2; "
                 "plot '%s' every ::1 using 1:2 with lines lw 3 lc rgb '#999999' title 'truth', '' every ::1 using 1:3 with lines lw 1 lc rgb '#c00000' title 'LSTM'\" 2>/dev/null",
                 png, nrmse, HORIZON, HORIZON, path);
        if (system(cmd) == 0) printf("wrote %s and %s\n", path, png);
        else printf("wrote %s (gnuplot not available: no PNG)\n", path);
    }
    int fail = 0;
    if (op.smoke) {
        fail = !(last < 0.1 * first) || !isfinite(nrmse);
        printf("smoke: train MSE %.3e -> %.3e: %s\n", first, last, fail ? "FAILED" : "ok");
    }
    free(x), free(y), free(bx), free(by), free(train), free(test);
    rc_optim_free(opt);
    rc_model_free(m);
    return fail;
}
