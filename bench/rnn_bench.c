/* rnn_bench — the time of one RNN training step in recur, measured the way the peer
 * benchmarks of ../shared/bench (oneDNN, PyTorch, the OpenBLAS sgemm floor) measure it.
 *
 * One training step (the same everywhere):
 *   forward over T steps of ONE layer, h0 = c0 = 0 (rc_unroll of the cell over
 *   x [T*B, I], x marked rc_requires_grad so the input gradient is computed too),
 *   loss = mean(out^2), the reverse sweep, and a plain SGD update w -= lr * g of every
 *   parameter (a loop in this file). Feeding x is done before the clock starts.
 *
 * Cells: lstm (rc_cell_lstm), gru (rc_cell_gru RESET_AFTER, the form of oneDNN's
 * LBR-GRU and PyTorch's nn.GRU), mut1 (rc_cell_mut(1, H), needs I == H), custom
 * (the LSTM written here as a user would: rc_cell_new and rc_step_linear per gate).
 *
 * GFLOP/s counts GEMM work only, as the peers: 3 * T * 2*B*G*(I+H) per step, with
 * G = 4H (lstm, custom), 3H (gru), 2H (mut1: W_xz, W_xr on x, W_hr, W_hh on h).
 * The second figure, "opGF/s", is 3 x rc_plan_flops (the op table's forward FLOPs of
 * every op, GEMM or not) over the same time.
 *
 * usage: rnn_bench [--threads N] [--reps R] [--warmup W] [--budget S]
 *                  [--cells lstm,gru,mut1,custom] [--configs s128,s512,l256,ptb,tiny]
 *                  [--passes all|none|each] [--T T --B B --I I --H H]
 *                  [--sweep-T] [--threads-compare] [--no-peak] [--tsv FILE]
 * See rnn_bench --help. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <cblas.h>
#undef I /* complex.h, pulled in by some cblas.h, defines I */
#include "recur.h"

#define LR 1e-4f
#define MAX_ITEMS 16
#define MAX_REPS 1000

/* ---- configurations, cells, pass settings ---------------------------------------- */

typedef struct { const char *name; int T, B, I, H; } config;

static const config CONFIGS[] = {
    { "s128", 50, 32, 128, 128 },
    { "s512", 50, 32, 512, 512 },
    { "l256", 100, 64, 256, 256 },
    { "ptb", 35, 20, 200, 200 },
    { "tiny", 50, 1, 32, 32 },
};
#define NCONFIGS (int)(sizeof CONFIGS / sizeof CONFIGS[0])

static const char *const CELLS[] = { "lstm", "gru", "mut1", "custom" };
#define NCELLS (int)(sizeof CELLS / sizeof CELLS[0])

typedef struct { const char *name; unsigned flags; } pass_set;

static const pass_set PASS_ALL = { "all-on", 0u };
static const pass_set PASS_NONE = { "all-off", RC_PLAN_NO_PASSES };
static const pass_set PASS_EACH[] = {
    { "all-on", 0u },
    { "all-off", RC_PLAN_NO_PASSES },
    { "-time_batch", RC_PLAN_NO_TIME_BATCH },
    { "-gemm_fusion", RC_PLAN_NO_GEMM_FUSION },
    { "-ew_fusion", RC_PLAN_NO_EW_FUSION },
    { "-buffer_plan", RC_PLAN_NO_BUFFER_PLAN },
    { "-packed_gemm", RC_PLAN_NO_PACKED_GEMM },
    { "-schedule", RC_PLAN_NO_SCHEDULE },
    { "+force_tb", RC_PLAN_FORCE_TIME_BATCH },                  /* batch even wide steps */
    { "+recompute", RC_PLAN_RECOMPUTE },                     /* an opt-in mode, not a pass */
};
#define NPASS_EACH (int)(sizeof PASS_EACH / sizeof PASS_EACH[0])

/* Gate rows G of the nominal GEMM FLOP count 2*B*G*(I+H) per time step. */
static int gate_rows(const char *cell, int H)
{
    if (!strcmp(cell, "gru")) return 3 * H;
    if (!strcmp(cell, "mut1")) return 2 * H;
    return 4 * H;
}

/* ---- the LSTM written as a custom cell --------------------------------------------
 *   i = sigmoid(W_xi x + W_hi h + b_i)    f = sigmoid(W_xf x + W_hf h + b_f)
 *   g = tanh(W_xg x + W_hg h + b_g)       o = sigmoid(W_xo x + W_ho h + b_o)
 *   c' = f * c + i * g                    h' = o * tanh(c')
 * Separate weight matrices per gate, exactly as a user writes it. The parameters are
 * made in the built-in cell's order with its names and forget bias (1.0), so with the
 * same seed the first-step loss equals the built-in LSTM's: a check of both. */

static rc_node *custom_gate(rc_step *s, const char *wx, const char *wh, const char *b, rc_node *x, rc_node *h)
{
    rc_graph *g = rc_step_graph(s);
    int H = rc_step_hidden(s);
    return rc_add(g, rc_add(g, rc_step_linear(s, wx, x, H), rc_step_linear(s, wh, h, H)), rc_step_bias(s, b, H));
}

static rc_status custom_lstm_step(rc_step *s, void *user)
{
    (void)user;
    rc_graph *g = rc_step_graph(s);
    rc_node *x = rc_step_input(s), *h = rc_step_state(s, "h"), *c = rc_step_state(s, "c");
    rc_node *gg = rc_tanh(g, custom_gate(s, "W_xg", "W_hg", "b_g", x, h));
    rc_node *i = rc_sigmoid(g, custom_gate(s, "W_xi", "W_hi", "b_i", x, h));
    rc_node *f = rc_sigmoid(g, custom_gate(s, "W_xf", "W_hf", "b_f", x, h));
    rc_node *c2 = rc_add(g, rc_mul(g, f, c), rc_mul(g, i, gg));
    rc_node *o = rc_sigmoid(g, custom_gate(s, "W_xo", "W_ho", "b_o", x, h));
    rc_param_set_init(rc_step_bias(s, "b_f", rc_step_hidden(s)), RC_INIT_CONST, 1.0f); /* forget bias 1 */
    rc_step_set_state(s, "c", c2);
    return rc_step_set_state(s, "h", rc_mul(g, o, rc_tanh(g, c2)));
}

static rc_cell *make_cell(const char *name, int H)
{
    if (!strcmp(name, "lstm")) return rc_cell_lstm(H, NULL);
    if (!strcmp(name, "gru")) return rc_cell_gru(H, RC_GRU_RESET_AFTER);
    if (!strcmp(name, "mut1")) return rc_cell_mut(1, H);
    if (!strcmp(name, "custom")) {
        rc_cell *c = rc_cell_new("custom_lstm", H, custom_lstm_step, NULL);
        if (c && (rc_cell_add_state(c, "h", H) != RC_OK || rc_cell_add_state(c, "c", H) != RC_OK)) {
            rc_cell_free(c);
            return NULL;
        }
        return c;
    }
    return NULL;
}

/* ---- small utilities ------------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float uniform_pm1(void) /* U(-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

/* Peak resident memory (kB) of the process since the last reset_hwm(), from VmHWM;
 * -1 when /proc is not readable. */
static long read_hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) {
            kb = atol(line + 6);
            break;
        }
    fclose(f);
    return kb;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0); returns 0 on success. */
static int reset_hwm(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static long maxrss_kb(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

/* ---- OpenBLAS sgemm peak ------------------------------------------------------------ */

#define PEAK_N 2048
#define PEAK_REPS 5

/* Median and best GFLOP/s of a 2048^3 cblas_sgemm at `threads` threads (one warm-up). */
static void sgemm_peak(int threads, double *med, double *best)
{
    const int n = PEAK_N;
    size_t sz = (size_t)n * n;
    float *a = malloc(sz * sizeof *a), *b = malloc(sz * sizeof *b), *c = malloc(sz * sizeof *c);
    *med = *best = 0;
    if (!a || !b || !c) {
        free(a); free(b); free(c);
        return;
    }
    for (size_t i = 0; i < sz; i++) {
        a[i] = uniform_pm1();
        b[i] = uniform_pm1();
        c[i] = 0;
    }
    rc_set_num_threads(threads);
    double g[PEAK_REPS], flop = 2.0 * n * n * (double)n;
    for (int r = -1; r < PEAK_REPS; r++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = now() - t0;
        if (r >= 0) g[r] = flop / dt * 1e-9;
    }
    *med = median(g, PEAK_REPS);
    *best = g[PEAK_REPS - 1];
    free(a); free(b); free(c);
}

/* Measures the peaks in a child process, so the 48 MB of the 2048^3 GEMM stay out of
 * this process's peak memory. Must run before this process enters any OpenMP parallel
 * region (libgomp does not survive fork after that); falls back to measuring here. */
static void measure_peaks(int n, const int *threads, double *med, double *best)
{
    int fd[2];
    if (pipe(fd) == 0) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            close(fd[0]);
            for (int i = 0; i < n; i++) {
                double v[2];
                sgemm_peak(threads[i], &v[0], &v[1]);
                if (write(fd[1], v, sizeof v) != (ssize_t)sizeof v) _exit(1);
            }
            _exit(0);
        }
        close(fd[1]);
        int got = 0;
        if (pid > 0) {
            for (; got < n; got++) {
                double v[2];
                size_t have = 0;
                while (have < sizeof v) {
                    ssize_t k = read(fd[0], (char *)v + have, sizeof v - have);
                    if (k <= 0) break;
                    have += (size_t)k;
                }
                if (have != sizeof v) break;
                med[got] = v[0];
                best[got] = v[1];
            }
            waitpid(pid, NULL, 0);
        }
        close(fd[0]);
        if (got == n) return;
    }
    for (int i = 0; i < n; i++) sgemm_peak(threads[i], &med[i], &best[i]);
}

/* ---- one measurement ------------------------------------------------------------- */

typedef struct {
    int threads, warmup, reps_req; /* reps_req 0: adaptive */
    int bidir;                     /* two independent chains on x (a bidirectional layer's work) */
    double budget;                 /* seconds of timed steps per row when adaptive */
} run_opts;

typedef struct {
    const char *mode, *cell, *passes;
    config cfg;
    int threads;
    int skipped, failed;
    char note[320];
    int reps;
    double ms_med, ms_min, ms_max;
    double gemm_flop, op_flop; /* per training step */
    double build_ms, loss0;
    size_t arena, act;
    int tape;
    long hwm_kb, maxrss_kb;
} result;

static void set_note(result *r, const char *what, const char *msg)
{
    snprintf(r->note, sizeof r->note, "%s%s%s", what, msg && *msg ? ": " : "", msg ? msg : "");
    for (char *p = r->note; *p; p++)
        if (*p == '\t' || *p == '\n') *p = ' ';
}

static rc_status sgd(rc_plan *p, int np, rc_node **params, float **data, size_t *size, int *missing)
{
    int miss = 0;
    for (int k = 0; k < np; k++) {
        const float *gr = rc_plan_grad(p, params[k]);
        if (!gr) {
            miss++;
            continue;
        }
        float *w = data[k];
        long n = (long)size[k];
        /* no OpenMP region unless it gets threads: an idle one costs ~1 us */
        if (n >= 65536 && omp_get_max_threads() > 1) {
#pragma omp parallel for schedule(static)
            for (long i = 0; i < n; i++) w[i] -= LR * gr[i];
        } else {
            for (long i = 0; i < n; i++) w[i] -= LR * gr[i];
        }
    }
    if (missing) *missing = miss;
    return RC_OK;
}

static void run_one(const char *mode, const char *cellname, const config *cfg, const pass_set *ps,
                    const run_opts *ro, result *r)
{
    memset(r, 0, sizeof *r);
    r->mode = mode;
    r->cell = cellname;
    r->passes = ps->name;
    r->cfg = *cfg;
    r->threads = ro->threads;
    r->loss0 = NAN;
    const int T = cfg->T, B = cfg->B, I = cfg->I, H = cfg->H;
    r->gemm_flop = (ro->bidir ? 2.0 : 1.0) * 3.0 * T * 2.0 * B * (double)gate_rows(cellname, H) * (double)(I + H);
    if (!strcmp(cellname, "mut1") && I != H) {
        r->skipped = 1;
        set_note(r, "skipped", "MUT1 adds x to hidden-sized vectors, needs I == H");
        return;
    }
    rc_set_num_threads(ro->threads);
    reset_hwm();

    rc_cell *cell = make_cell(cellname, H);
    rc_graph *g = rc_graph_new();
    rc_plan *p = NULL;
    float *xdata = NULL, **pdata = NULL;
    rc_node **params = NULL;
    size_t *psize = NULL;
    double *times = NULL;
    if (!cell || !g) {
        r->failed = 1;
        set_note(r, "error", "out of memory making the cell or graph");
        goto done;
    }
    int xshape[2] = { T * B, I };
    rc_node *x = rc_input(g, "x", RC_F32, 2, xshape), *out = NULL;
    if (x) rc_requires_grad(x, 1);
    rc_unroll(g, cell, x, T, NULL, &out, NULL); /* h0 = c0 = 0 */
    rc_node *loss = rc_mean(g, rc_mul(g, out, out));
    if (ro->bidir) {   /* a second direction: same work, its own weights, independent of the first */
        rc_unroll_opts bo = { .prefix = "bw." };
        rc_node *out2 = NULL;
        rc_unroll(g, cell, x, T, &bo, &out2, NULL);
        loss = rc_add(g, loss, rc_mean(g, rc_mul(g, out2, out2)));
    }
    if (rc_graph_status(g) != RC_OK || !loss || rc_graph_init_params(g, 1) != RC_OK) {
        r->failed = 1;
        set_note(r, "graph error", rc_graph_error(g));
        goto done;
    }
    /* The parameters, collected before the plan's passes may rewrite the graph. */
    int nn = rc_graph_node_count(g), np = 0;
    params = malloc((size_t)nn * sizeof *params);
    pdata = malloc((size_t)nn * sizeof *pdata);
    psize = malloc((size_t)nn * sizeof *psize);
    xdata = malloc((size_t)T * B * I * sizeof *xdata);
    int maxr = ro->reps_req > 0 ? ro->reps_req : 10;
    times = malloc((size_t)maxr * sizeof *times);
    if (!params || !pdata || !psize || !xdata || !times) {
        r->failed = 1;
        set_note(r, "error", "out of memory");
        goto done;
    }
    for (int i = 0; i < nn; i++) {
        rc_node *n = rc_graph_node(g, i);
        if (strcmp(rc_node_op(n), "param") != 0) continue;
        params[np] = n;
        pdata[np] = rc_param_data(n);
        psize[np] = rc_node_size(n);
        np++;
    }
    rng_state = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < (size_t)T * B * I; i++) xdata[i] = uniform_pm1();

    double t0 = now();
    p = rc_plan_new_ex(g, 1, &loss, ps->flags);
    r->build_ms = (now() - t0) * 1e3;
    if (!p) {
        r->failed = 1;
        set_note(r, "plan error", rc_graph_error(g));
        goto done;
    }
    r->arena = rc_plan_arena_bytes(p);
    r->act = rc_plan_activation_bytes(p);
    r->tape = rc_plan_length(p);
    r->op_flop = 3.0 * rc_plan_flops(p);

    int warm = ro->warmup < 1 ? 1 : ro->warmup, reps = maxr, done_reps = 0;
    double last = 0;
    for (int it = 0; it < warm + reps; it++) {
        rc_status st = rc_plan_feed(p, x, xdata, (size_t)T * B * I);
        if (st != RC_OK) {
            r->failed = 1;
            set_note(r, "feed error", rc_plan_error(p));
            goto done;
        }
        int missing = 0;
        t0 = now();
        st = rc_plan_forward(p);
        if (st == RC_OK && it == 0) {
            const float *lv = rc_plan_value(p, loss);
            r->loss0 = lv ? lv[0] : NAN;
        }
        if (st == RC_OK) st = rc_plan_backward(p, loss);
        if (st == RC_OK) st = sgd(p, np, params, pdata, psize, &missing);
        last = now() - t0;
        if (st != RC_OK) {
            r->failed = 1;
            set_note(r, "run error", rc_plan_error(p));
            goto done;
        }
        if (it == 0) { /* make a broken graph visible */
            const float *gx = rc_plan_grad(p, x);
            char m[160] = "";
            if (!isfinite(r->loss0)) snprintf(m, sizeof m, "loss not finite; ");
            if (!gx) snprintf(m + strlen(m), sizeof m - strlen(m), "no gradient for x; ");
            else if (!isfinite(gx[0])) snprintf(m + strlen(m), sizeof m - strlen(m), "x gradient not finite; ");
            if (missing)
                snprintf(m + strlen(m), sizeof m - strlen(m), "%d of %d params without gradient; ", missing, np);
            if (np == 0) snprintf(m + strlen(m), sizeof m - strlen(m), "no parameters; ");
            if (*m) set_note(r, "CHECK", m);
        }
        if (it == warm - 1 && ro->reps_req <= 0) { /* adaptive count from the last warm-up step */
            int want = last > 0 ? (int)(ro->budget / last) : reps;
            reps = want < 3 ? 3 : want > maxr ? maxr : want;
        }
        if (it >= warm) times[done_reps++] = last;
    }
    r->reps = done_reps;
    r->ms_med = median(times, done_reps) * 1e3; /* sorts */
    r->ms_min = times[0] * 1e3;
    r->ms_max = times[done_reps - 1] * 1e3;

done:
    r->hwm_kb = read_hwm_kb();
    r->maxrss_kb = maxrss_kb();
    rc_plan_free(p);
    rc_graph_free(g);
    rc_cell_free(cell);
    free(params);
    free(pdata);
    free(psize);
    free(xdata);
    free(times);
}

/* ---- output ------------------------------------------------------------------------ */

typedef struct {
    double peak_med[3], peak_best[3]; /* per thread count in peak_thr */
    int peak_thr[3], npeak;
    FILE *tsv;
} output;

static double peak_for(const output *o, int threads)
{
    for (int i = 0; i < o->npeak; i++)
        if (o->peak_thr[i] == threads) return o->peak_med[i];
    return 0;
}

static void print_header(const char *extra)
{
    printf("%-7s %-5s %4s %3s %4s %4s %3s %-12s %3s %9s %9s %9s %6s %6s %6s %6s %8s %7s %7s %6s %8s %6s ", "cell",
           "cfg", "T", "B", "I", "H", "thr", "passes", "R", "ms_med", "ms_min", "ms_max", "x_all", "GF/s", "%peak",
           "opGF/s", "arenaMB", "hwmMB", "rssMB", "tape", "buildms", "actMB");
    if (extra) printf("%8s ", extra);
    printf("%-12s %s\n", "loss0", "note");
}

static void print_row(const output *o, const result *r, double x_all, const char *extra_label, double extra)
{
    char ms[3][16], xa[16], gf[16], pk[16], og[16], ex[16], lo[24];
    double peak = peak_for(o, r->threads);
    int ok = !r->skipped && !r->failed;
    double gfs = ok && r->ms_med > 0 ? r->gemm_flop / (r->ms_med * 1e-3) * 1e-9 : 0;
    double ogfs = ok && r->ms_med > 0 ? r->op_flop / (r->ms_med * 1e-3) * 1e-9 : 0;
    const double v[3] = { r->ms_med, r->ms_min, r->ms_max };
    for (int k = 0; k < 3; k++) {
        if (ok) snprintf(ms[k], sizeof ms[k], "%.3f", v[k]);
        else snprintf(ms[k], sizeof ms[k], "-");
    }
    if (ok && x_all > 0) snprintf(xa, sizeof xa, "%.2f", x_all); else snprintf(xa, sizeof xa, "-");
    if (ok) snprintf(gf, sizeof gf, "%.1f", gfs); else snprintf(gf, sizeof gf, "-");
    if (ok && peak > 0) snprintf(pk, sizeof pk, "%.1f", 100.0 * gfs / peak); else snprintf(pk, sizeof pk, "-");
    if (ok) snprintf(og, sizeof og, "%.1f", ogfs); else snprintf(og, sizeof og, "-");
    if (ok && extra_label) snprintf(ex, sizeof ex, "%.3f", extra); else snprintf(ex, sizeof ex, "-");
    if (!isnan(r->loss0)) snprintf(lo, sizeof lo, "%.6g", r->loss0); else snprintf(lo, sizeof lo, "-");
    char mem[4][16], bld[16];
    const double mv[3] = { (double)r->arena / 1048576.0, r->hwm_kb / 1024.0, r->maxrss_kb / 1024.0 };
    for (int k = 0; k < 3; k++) {
        if (!r->skipped && (k > 0 || r->arena) && mv[k] >= 0) snprintf(mem[k], sizeof mem[k], "%.1f", mv[k]);
        else snprintf(mem[k], sizeof mem[k], "-");
    }
    if (r->tape) snprintf(mem[3], sizeof mem[3], "%d", r->tape); else snprintf(mem[3], sizeof mem[3], "-");
    if (r->tape) snprintf(bld, sizeof bld, "%.1f", r->build_ms); else snprintf(bld, sizeof bld, "-");
    char act[16];
    if (r->tape) snprintf(act, sizeof act, "%.1f", (double)r->act / 1048576.0); else snprintf(act, sizeof act, "-");
    printf("%-7s %-5s %4d %3d %4d %4d %3d %-12s %3d %9s %9s %9s %6s %6s %6s %6s %8s %7s %7s %6s %8s %6s ",
           r->cell, r->cfg.name, r->cfg.T, r->cfg.B, r->cfg.I, r->cfg.H, r->threads, r->passes, r->reps, ms[0], ms[1],
           ms[2], xa, gf, pk, og, mem[0], mem[1], mem[2], mem[3], bld, act);
    if (extra_label) printf("%8s ", ex);
    printf("%-12s %s\n", lo, r->note);
    fflush(stdout);
    if (o->tsv) {
        fprintf(o->tsv,
                "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d\t%.4f\t%.4f\t%.4f\t%.4f\t%.6f\t%.2f\t%.6f\t%.2f\t%.2f\t"
                "%.4f\t%.3f\t%.3f\t%.3f\t%d\t%.2f\t%s\t%.4f\t%.8g\t%s\t%.3f\n",
                r->mode, r->cell, r->cfg.name, r->cfg.T, r->cfg.B, r->cfg.I, r->cfg.H, r->threads, r->passes,
                r->skipped ? "skipped" : r->failed ? "failed" : "ok", r->reps, ok ? r->ms_med : NAN,
                ok ? r->ms_min : NAN, ok ? r->ms_max : NAN, ok && x_all > 0 ? x_all : NAN, r->gemm_flop * 1e-9,
                ok ? gfs : NAN, r->op_flop * 1e-9, ok ? ogfs : NAN, peak, ok && peak > 0 ? gfs / peak : NAN,
                (double)r->arena / 1048576.0, r->hwm_kb / 1024.0, r->maxrss_kb / 1024.0, r->tape, r->build_ms,
                extra_label ? extra_label : "-", ok && extra_label ? extra : NAN, r->loss0, r->note,
                (double)r->act / 1048576.0);
        fflush(o->tsv);
    }
}

static void tsv_header(FILE *f)
{
    fprintf(f, "mode\tcell\tcfg\tT\tB\tI\tH\tthreads\tpasses\tstatus\treps\tms_med\tms_min\tms_max\tx_all\t"
               "gemm_gflop\tgemm_gflops\top_gflop\top_gflops\tpeak_gflops\tpeak_frac\tarena_mb\thwm_mb\tmaxrss_mb\t"
               "tape\tbuild_ms\textra_name\textra\tloss0\tnote\tact_mb\n");
}

/* ---- command line ---------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
        "usage: rnn_bench [options]\n"
        "  --threads N|auto   threads for recur and OpenBLAS (default: all cores; auto: the cores\n"
        "                     free now, as recur train chooses)\n"
        "  --reps R           timed steps per row (default: 10, fewer for big configs so\n"
        "                     that R x step time stays within --budget, at least 3)\n"
        "  --warmup W         untimed steps first (default 2; the first gives loss0)\n"
        "  --budget S         seconds of timed steps per row when --reps is not given\n"
        "                     (default 2; 1 with --passes each)\n"
        "  --cells LIST       lstm,gru,mut1,custom (default all)\n"
        "  --configs LIST     s128,s512,l256,ptb,tiny (default all)\n"
        "  --T T --B B --I I --H H   one config 'user' instead (unset sizes from s128)\n"
        "  --passes all|none|each|-NAME   plan passes on, off, on/off/each single one off, or\n"
        "                     one named pass off (default all)\n"
        "  --sweep-T          LSTM at the s128 shape, T = 10 30 100 300 1000 (ms per time step)\n"
        "  --threads-compare  the selected cells/configs (default lstm, s128) at 1 and N threads\n"
        "                     (N = --threads, or 2 when that is 1 or unset)\n"
        "  --no-peak          skip the 2048^3 sgemm peak measurement\n"
        "  --bidir            two independent chains (a bidirectional layer's work; GF/s counts both)\n"
        "  --tsv FILE         also write machine-readable rows to FILE\n");
}

static int parse_list(const char *arg, const char *const *names, int nnames, int *sel, int *nsel)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", arg);
    *nsel = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int k = -1;
        for (int i = 0; i < nnames; i++)
            if (!strcmp(tok, names[i])) k = i;
        if (k < 0) {
            fprintf(stderr, "rnn_bench: unknown name '%s'\n", tok);
            return -1;
        }
        if (*nsel < MAX_ITEMS) sel[(*nsel)++] = k;
    }
    return *nsel > 0 ? 0 : -1;
}

static int pos_int(const char *opt, const char *v)
{
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || n < 1 || n > 1000000) {
        fprintf(stderr, "rnn_bench: %s needs a positive integer\n", opt);
        exit(2);
    }
    return (int)n;
}

int main(int argc, char **argv)
{
    run_opts ro = { .threads = 0, .warmup = 2, .reps_req = 0, .budget = 2.0 };
    int cells[MAX_ITEMS], ncells = 0, cfgs[MAX_ITEMS], ncfgs = 0;
    const char *passes = "all", *tsv_path = NULL;
    int sweep = 0, tcompare = 0, no_peak = 0, uT = 0, uB = 0, uI = 0, uH = 0, budget_set = 0;
    const char *cfg_names[NCONFIGS];
    for (int i = 0; i < NCONFIGS; i++) cfg_names[i] = CONFIGS[i].name;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--threads")) ro.threads = v && !strcmp(v, "auto") ? rc_idle_cores(0.1) : pos_int(a, v), i++;
        else if (!strcmp(a, "--reps")) ro.reps_req = pos_int(a, v), i++;
        else if (!strcmp(a, "--warmup")) ro.warmup = pos_int(a, v), i++;
        else if (!strcmp(a, "--budget")) {
            ro.budget = v ? atof(v) : 0;
            budget_set = 1;
            i++;
            if (!(ro.budget > 0)) {
                fprintf(stderr, "rnn_bench: --budget needs seconds > 0\n");
                return 2;
            }
        } else if (!strcmp(a, "--cells")) {
            if (!v || parse_list(v, CELLS, NCELLS, cells, &ncells)) return 2;
            i++;
        } else if (!strcmp(a, "--configs")) {
            if (!v || parse_list(v, cfg_names, NCONFIGS, cfgs, &ncfgs)) return 2;
            i++;
        } else if (!strcmp(a, "--passes")) {
            passes = v ? v : "";
            i++;
            int known = !strcmp(passes, "all") || !strcmp(passes, "none") || !strcmp(passes, "each");
            for (int q = 0; q < NPASS_EACH; q++) known |= !strcmp(passes, PASS_EACH[q].name);
            if (!known) {
                fprintf(stderr, "rnn_bench: --passes is all, none, each or one of -time_batch, -gemm_fusion, "
                                "-ew_fusion, -buffer_plan, -packed_gemm, -schedule, +force_tb, +recompute\n");
                return 2;
            }
        } else if (!strcmp(a, "--T")) uT = pos_int(a, v), i++;
        else if (!strcmp(a, "--B")) uB = pos_int(a, v), i++;
        else if (!strcmp(a, "--I")) uI = pos_int(a, v), i++;
        else if (!strcmp(a, "--H")) uH = pos_int(a, v), i++;
        else if (!strcmp(a, "--sweep-T")) sweep = 1;
        else if (!strcmp(a, "--threads-compare")) tcompare = 1;
        else if (!strcmp(a, "--no-peak")) no_peak = 1;
        else if (!strcmp(a, "--bidir")) ro.bidir = 1;
        else if (!strcmp(a, "--tsv")) {
            if (!v) {
                fprintf(stderr, "rnn_bench: --tsv needs a file\n");
                return 2;
            }
            tsv_path = v;
            i++;
        } else {
            fprintf(stderr, "rnn_bench: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (ro.reps_req > MAX_REPS) ro.reps_req = MAX_REPS;
    if (!budget_set && !strcmp(passes, "each")) ro.budget = 1.0; /* six rows per cell and config */

    /* Threads: 0 means all cores, as rc_set_num_threads(0). */
    int nthr = rc_set_num_threads(ro.threads);
    ro.threads = nthr;
    int thr_hi = nthr > 1 ? nthr : 2;

    const pass_set *plist;
    int npass;
    if (!strcmp(passes, "each")) plist = PASS_EACH, npass = NPASS_EACH;
    else if (!strcmp(passes, "none")) plist = &PASS_NONE, npass = 1;
    else plist = &PASS_ALL, npass = 1;
    for (int q = 0; q < NPASS_EACH; q++)
        if (!strcmp(passes, PASS_EACH[q].name)) plist = &PASS_EACH[q], npass = 1;

    config user = CONFIGS[0];
    int have_user = uT || uB || uI || uH;
    if (have_user) {
        user.name = "user";
        if (uT) user.T = uT;
        if (uB) user.B = uB;
        if (uI) user.I = uI;
        if (uH) user.H = uH;
    }

    output o = { .tsv = NULL };
    if (tsv_path) {
        o.tsv = fopen(tsv_path, "w");
        if (!o.tsv) {
            perror(tsv_path);
            return 2;
        }
    }

    /* The sgemm peak, before anything here runs OpenMP in parallel (see measure_peaks). */
    if (!no_peak) {
        o.peak_thr[o.npeak++] = nthr;
        if (tcompare) {
            if (nthr != 1) o.peak_thr[o.npeak++] = 1;
            if (thr_hi != nthr) o.peak_thr[o.npeak++] = thr_hi;
        }
        measure_peaks(o.npeak, o.peak_thr, o.peak_med, o.peak_best);
    }

    printf("# rnn_bench: recur %s, threads %d, OpenBLAS: %s\n", rc_version(), nthr, rc_blas_config());
    if (rc_blas_check() != RC_OK) printf("# WARNING: the linked OpenBLAS is not its OpenMP build\n");
    for (int i = 0; i < o.npeak; i++)
        printf("# sgemm %d^3 peak at %d thread%s: %.1f GFLOP/s median of %d (best %.1f)\n", PEAK_N, o.peak_thr[i],
               o.peak_thr[i] > 1 ? "s" : "", o.peak_med[i], PEAK_REPS, o.peak_best[i]);
    printf("# step = forward T steps (h0=c0=0) + loss mean(out^2) + backward (incl. dx) + SGD lr=%g; "
           "ms over R timed steps after %d warm-up\n", (double)LR, ro.warmup);
    printf("# GF/s = GEMM work 3*T*2*B*G*(I+H) / ms_med, G = 4H lstm/custom, 3H gru, 2H mut1; "
           "%%peak = GF/s / sgemm peak; opGF/s = 3 x rc_plan_flops / ms_med\n");
    printf("# x_all = ms_med / ms_med with all passes on; arenaMB = rc_plan_arena_bytes; actMB = rc_plan_activation_bytes (values and scratch kept for the reverse sweep); hwmMB = peak RSS "
           "during the row (VmHWM reset at its start); rssMB = getrusage ru_maxrss (process so far); "
           "buildms = rc_plan_new_ex time; loss0 = loss of the first step\n");
    if (o.tsv) {
        for (int i = 0; i < o.npeak; i++)
            fprintf(o.tsv, "#peak\t%d\t%.2f\t%.2f\n", o.peak_thr[i], o.peak_med[i], o.peak_best[i]);
        tsv_header(o.tsv);
    }

    int nfail = 0;
    int default_mode = !sweep && !tcompare;

    if (default_mode) {
        int cs[MAX_ITEMS], nc = ncells, fs[MAX_ITEMS], nf = ncfgs;
        if (!nc) for (nc = 0; nc < NCELLS; nc++) cs[nc] = nc;
        else memcpy(cs, cells, sizeof cs);
        if (!nf) for (nf = 0; nf < NCONFIGS; nf++) fs[nf] = nf;
        else memcpy(fs, cfgs, sizeof fs);
        if (have_user) nf = 1;
        printf("\n");
        print_header(NULL);
        for (int f = 0; f < nf; f++) {
            const config *cfg = have_user ? &user : &CONFIGS[fs[f]];
            double lstm_loss[NPASS_EACH]; /* the custom LSTM must start with the same loss */
            for (int k = 0; k < NPASS_EACH; k++) lstm_loss[k] = NAN;
            for (int c = 0; c < nc; c++) {
                double base = 0, base_loss = NAN;
                for (int k = 0; k < npass; k++) {
                    result r;
                    run_one("main", CELLS[cs[c]], cfg, &plist[k], &ro, &r);
                    nfail += r.failed;
                    if (k == 0 && plist[k].flags == 0 && !r.failed && !r.skipped) {
                        base = r.ms_med;
                        base_loss = r.loss0;
                    } else if (!isnan(base_loss) && !r.failed && !r.skipped &&
                               !(fabs(r.loss0 - base_loss) <= 1e-4 * fabs(base_loss) + 1e-7)) {
                        char m[128];
                        snprintf(m, sizeof m, "loss0 differs from all-on (%.8g)", base_loss);
                        if (!*r.note) set_note(&r, "CHECK", m);
                    }
                    if (!strcmp(CELLS[cs[c]], "lstm")) lstm_loss[k] = r.loss0;
                    if (!strcmp(CELLS[cs[c]], "custom") && !isnan(lstm_loss[k]) && !r.failed && !*r.note &&
                        !(fabs(r.loss0 - lstm_loss[k]) <= 1e-4 * fabs(lstm_loss[k]) + 1e-7)) {
                        char m[128];
                        snprintf(m, sizeof m, "loss0 differs from the built-in lstm (%.8g)", lstm_loss[k]);
                        set_note(&r, "CHECK", m);
                    }
                    print_row(&o, &r, base > 0 ? r.ms_med / base : 0, NULL, 0);
                    if (r.skipped) break;
                }
            }
        }
    }

    if (sweep) {
        static const int Ts[] = { 10, 30, 100, 300, 1000 };
        int cs[MAX_ITEMS], nc = ncells ? ncells : 1;
        if (ncells) memcpy(cs, cells, sizeof cs);
        else cs[0] = 0; /* lstm */
        config base = have_user ? user : CONFIGS[0];
        printf("\n# sweep over T at B=%d I=%d H=%d: ms_per_t = ms_med / T (flat when the step is linear in T)\n",
               base.B, base.I, base.H);
        print_header("ms_per_t");
        char names[5][16];
        for (int c = 0; c < nc; c++)
            for (int k = 0; k < npass; k++)
                for (int t = 0; t < 5; t++) {
                    config cfg = base;
                    snprintf(names[t], sizeof names[t], "T%d", Ts[t]);
                    cfg.name = names[t];
                    cfg.T = Ts[t];
                    result r;
                    run_one("sweepT", CELLS[cs[c]], &cfg, &plist[k], &ro, &r);
                    nfail += r.failed;
                    print_row(&o, &r, 0, "ms_per_t", r.ms_med / cfg.T);
                    if (r.skipped) break;
                }
    }

    if (tcompare) {
        int cs[MAX_ITEMS], nc = ncells ? ncells : 1, fs[MAX_ITEMS], nf = ncfgs ? ncfgs : 1;
        if (ncells) memcpy(cs, cells, sizeof cs);
        else cs[0] = 0; /* lstm */
        if (ncfgs) memcpy(fs, cfgs, sizeof fs);
        else fs[0] = 0; /* s128 */
        if (have_user) nf = 1;
        printf("\n# threads: 1 vs %d; speedup = ms_med at 1 thread / ms_med\n", thr_hi);
        print_header("speedup");
        for (int f = 0; f < nf; f++) {
            const config *cfg = have_user ? &user : &CONFIGS[fs[f]];
            for (int c = 0; c < nc; c++)
                for (int k = 0; k < npass; k++) {
                    result r1, r2;
                    run_opts r = ro;
                    r.threads = 1;
                    run_one("threads", CELLS[cs[c]], cfg, &plist[k], &r, &r1);
                    print_row(&o, &r1, 0, "speedup", 1.0);
                    r.threads = thr_hi;
                    run_one("threads", CELLS[cs[c]], cfg, &plist[k], &r, &r2);
                    print_row(&o, &r2, 0, "speedup", r2.ms_med > 0 ? r1.ms_med / r2.ms_med : 0);
                    nfail += r1.failed + r2.failed;
                }
        }
        rc_set_num_threads(nthr);
    }

    if (o.tsv) fclose(o.tsv);
    if (nfail) fprintf(stderr, "rnn_bench: %d row(s) failed\n", nfail);
    return nfail ? 1 : 0;
}
