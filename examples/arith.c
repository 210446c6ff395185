/* Architecture comparison on the arithmetic task of Jozefowicz, Zaremba & Sutskever
 * 2015 ("An empirical exploration of recurrent network architectures", ICML).
 *
 * A problem is "a+b=" or "a-b=" with a and b of 1..8 digits (the number of digits
 * drawn uniformly, then the digits; no leading zeros), with 0..--distract random
 * distractor letters (a..j) inserted before each character of the question, followed
 * by the answer and an end mark, e.g.
 *     3e36d9-h1h39f94eeh43keg3c=-1399106.
 * The network reads the characters one at a time (an embedding at the hidden size:
 * MUT1 and MUT2 need input size = hidden size) and is trained by next-character
 * prediction on the answer's characters only (the question's targets are ignored:
 * softmax targets < 0). The score is the per-character accuracy of the answer, read
 * with teacher forcing, on a fixed test set of --test problems.
 *
 * Cells: tanh RNN; LSTM without forget gate; LSTM (forget bias 0: the "plain LSTM");
 * LSTM-b (forget bias 1); GRU; MUT1; MUT2; MUT3. Each gets the hidden size that brings
 * its parameter count (embedding, cell and softmax head) nearest to --params (within
 * 10%, checked), the same updates, Adam, clipping, and --seeds seeds. The program
 * prints a ranking table (mean accuracy, min..max over seeds) and writes
 * --out/arith.csv and, with gnuplot, --out/arith.png.
 *
 *   arith [--steps 3000] [--seeds 3] [--params 20000] [--batch 32] [--lr 3e-3]
 *         [--distract 2] [--test 1024] [--cells rnn,lstm-nf,lstm,lstm-b,gru,mut1,mut2,mut3]
 *         [--out runs/examples] [--threads N] [--smoke]
 *
 * Published per-character accuracies (Jozefowicz et al. 2015, Table 1, best of a large
 * hyper-parameter search, far longer training): tanh 0.295, LSTM-no-forget 0.293, LSTM
 * 0.892, LSTM-b 0.902, GRU 0.896, MUT1 0.921, MUT2 0.897, MUT3 0.907.
 * --smoke trains two small cells for a few seconds and exits non-zero unless their
 * training loss fell. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "recur.h"

static const char VOCAB[] = "0123456789+-=.abcdefghij";
#define V ((int)sizeof VOCAB - 1)
#define MAXDIG 8

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

static int id_of(char c) { return (int)(strchr(VOCAB, c) - VOCAB); }

static long long rand_number(rng *r)
{
    int nd = 1 + rng_int(r, MAXDIG);
    long long v = 1 + rng_int(r, 9);
    for (int i = 1; i < nd; i++) v = v * 10 + rng_int(r, 10);
    return nd == 1 ? rng_int(r, 10) : v;
}

/* One problem as ids into tok (at most cap) and the index where the answer starts
 * (the first character after '='); returns the length. */
static int make_problem(rng *r, int distract, int32_t *tok, int cap, int *ans, char *text, int textcap)
{
    char q[64], a[32], s[256];
    long long x = rand_number(r), y = rand_number(r);
    int minus = rng_int(r, 2);
    snprintf(q, sizeof q, "%lld%c%lld=", x, minus ? '-' : '+', y);
    snprintf(a, sizeof a, "%lld.", minus ? x - y : x + y);
    int n = 0;
    for (const char *c = q; *c; c++) {
        int k = distract > 0 ? rng_int(r, distract + 1) : 0;
        while (k-- > 0 && n < (int)sizeof s - 40) s[n++] = (char)('a' + rng_int(r, 10));
        s[n++] = *c;
    }
    *ans = n;
    for (const char *c = a; *c; c++) s[n++] = *c;
    if (n > cap) n = cap;
    for (int i = 0; i < n; i++) tok[i] = id_of(s[i]);
    if (text) snprintf(text, (size_t)textcap, "%.*s", n, s);
    return n;
}

/* The longest problem: 8+1+8+1 question characters each preceded by up to `distract`
 * letters, an answer of up to 9 characters (sign and 8 or 9 digits) and the end mark. */
static int max_len(int distract) { return (2 * MAXDIG + 2) * (distract + 1) + MAXDIG + 3; }

/* Batch of B problems padded to T: inputs tokens (pad '.'), targets the next
 * character on the answer positions, -1 elsewhere. Time-major. */
static void make_batch(rng *r, int distract, int T, int B, int32_t *tok, int32_t *tgt)
{
    int32_t p[512];
    for (int j = 0; j < B; j++) {
        int ans, n = make_problem(r, distract, p, T + 1, &ans, NULL, 0);
        for (int t = 0; t < T; t++) {
            tok[t * B + j] = t < n ? p[t] : id_of('.');
            /* step t reads p[t] and predicts p[t+1]; answer characters are p[ans..n) */
            tgt[t * B + j] = (t + 1 >= ans && t + 1 < n) ? p[t + 1] : -1;
        }
    }
}

typedef struct spec { const char *name, *label; double paper; } spec;
static const spec SPECS[] = {
    { "rnn", "tanh RNN", 0.295 }, { "lstm-nf", "LSTM, no forget gate", 0.293 }, { "lstm", "LSTM (forget bias 0)", 0.892 },
    { "lstm-b", "LSTM-b (forget bias 1)", 0.902 }, { "gru", "GRU", 0.896 }, { "mut1", "MUT1", 0.921 },
    { "mut2", "MUT2", 0.897 }, { "mut3", "MUT3", 0.907 },
};
#define NSPEC ((int)(sizeof SPECS / sizeof *SPECS))

static rc_cell *make_cell(const char *name, int H)
{
    rc_lstm_opts lo = rc_lstm_defaults();
    if (!strcmp(name, "rnn")) return rc_cell_rnn(H, RC_ACT_TANH);
    if (!strcmp(name, "lstm-nf")) {
        lo.no_forget_gate = 1;
        return rc_cell_lstm(H, &lo);
    }
    if (!strcmp(name, "lstm")) {
        lo.forget_bias = 0.0f;
        return rc_cell_lstm(H, &lo);
    }
    if (!strcmp(name, "lstm-b")) {
        lo.forget_bias = 1.0f;
        return rc_cell_lstm(H, &lo);
    }
    if (!strcmp(name, "gru")) return rc_cell_gru(H, RC_GRU_RESET_AFTER);
    if (!strncmp(name, "mut", 3)) return rc_cell_mut(name[3] - '0', H);
    return NULL;
}

static rc_model *make_model(const char *name, int H, unsigned long long seed)
{
    rc_cell *c = make_cell(name, H);
    if (!c) return NULL;
    rc_model_opts o = rc_model_defaults();
    o.vocab = V;
    o.input_size = H;   /* MUT1, MUT2: input size = hidden size */
    o.output_size = V;
    o.seed = seed;
    rc_model *m = rc_model_new(c, &o);
    rc_cell_free(c);
    if (m && rc_model_status(m) != RC_OK) {
        fprintf(stderr, "arith: %s: %s\n", name, rc_model_error(m));
        rc_model_free(m);
        return NULL;
    }
    return m;
}

static int pick_hidden(const char *name, long target, long *count)
{
    int best = -1;
    long bestd = -1;
    for (int H = 2; H <= 1024; H++) {
        rc_model *m = make_model(name, H, 1);
        if (!m) return -1;
        long n = (long)rc_model_param_total(m), d = labs(n - target);
        rc_model_free(m);
        if (bestd < 0 || d < bestd) bestd = d, best = H, *count = n;
        if (n > target) break;
    }
    return best;
}

typedef struct opts {
    int steps, seeds, batch, distract, test, smoke;
    long params;
    double lr;
    const char *out;
} opts;

/* Teacher-forced per-character accuracy of the answers of the test set. */
static double accuracy(rc_model *m, const int32_t *tok, const int32_t *tgt, int T, int B, int n)
{
    double ok = 0, all = 0;
    rc_model_set_training(m, 0);
    for (int c = 0; c < n / B; c++) {
        const int32_t *tk = tok + (size_t)c * T * B, *tg = tgt + (size_t)c * T * B;
        rc_batch b = { .T = T, .B = B, .tokens = tk, .targets = tg };
        if (rc_model_forward(m, &b, NULL) != RC_OK) {
            rc_model_set_training(m, 1);
            return NAN;
        }
        const float *out = rc_model_output(m);
        for (int r = 0; r < T * B; r++) {
            if (tg[r] < 0) continue;
            int best = 0;
            for (int k = 1; k < V; k++) best = out[(size_t)r * V + k] > out[(size_t)r * V + best] ? k : best;
            ok += best == tg[r];
            all++;
        }
    }
    rc_model_set_training(m, 1);
    return ok / all;
}

/* One run: returns the test accuracy (NAN on error); first/last training losses. */
static double run(const opts *op, const char *name, int H, unsigned long long seed, const int32_t *ttok,
                  const int32_t *ttgt, int T, double *first, double *last)
{
    rc_model *m = make_model(name, H, seed);
    rc_optim_opts oo = rc_optim_defaults(RC_OPT_ADAM);
    oo.clip_norm = 5.0f;
    rc_optim *opt = m ? rc_optim_new(m, &oo) : NULL;
    int B = op->batch;
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)T * B), *tgt = malloc(sizeof(int32_t) * (size_t)T * B);
    double acc = NAN, sum = 0;
    int n = 0;
    *first = *last = NAN;
    if (!m || !opt || !tok || !tgt) goto done;
    rng r = { seed * 6364136223846793005ull + 1442695040888963407ull };
    rc_schedule sch = { .kind = RC_SCHED_COSINE, .lr = (float)op->lr, .min_frac = 0.1f };
    for (int step = 1; step <= op->steps; step++) {
        make_batch(&r, op->distract, T, B, tok, tgt);
        rc_batch b = { .T = T, .B = B, .tokens = tok, .targets = tgt };
        double loss;
        if (rc_model_forward(m, &b, &loss) != RC_OK || rc_model_backward(m) != RC_OK ||
            rc_optim_step(opt, rc_schedule_lr(&sch, 1, (double)(step - 1) / op->steps)) != RC_OK) {
            fprintf(stderr, "arith: %s step %d: %s\n", name, step, rc_model_error(m));
            goto done;
        }
        sum += loss;
        n++;
        int win = op->steps >= 100 ? op->steps / 10 : 10;
        if (n == win || step == op->steps) {
            if (isnan(*first)) *first = sum / n;
            *last = sum / n;
            sum = 0;
            n = 0;
        }
    }
    acc = accuracy(m, ttok, ttgt, T, B, op->test);
done:
    free(tok), free(tgt);
    rc_optim_free(opt);
    rc_model_free(m);
    return acc;
}

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

static int usage(void)
{
    fprintf(stderr, "usage: arith [--steps N] [--seeds N] [--params N] [--batch N] [--lr X] [--distract N]\n"
                    "             [--test N] [--cells a,b,..] [--out DIR] [--threads N] [--smoke]\n");
    return 2;
}

typedef struct row { int spec, H; long params; double mean, lo, hi, acc[16], secs; } row;

static int by_mean(const void *a, const void *b)
{
    double x = ((const row *)a)->mean, y = ((const row *)b)->mean;
    return (x < y) - (x > y);
}

int main(int argc, char **argv)
{
    opts op = { .steps = 3000, .seeds = 3, .batch = 32, .distract = 2, .test = 1024, .params = 20000, .lr = 3e-3,
                .out = "runs/examples" };
    const char *cells = "rnn,lstm-nf,lstm,lstm-b,gru,mut1,mut2,mut3";
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--smoke")) { op.smoke = 1; continue; }
        if (!v) return usage();
        i++;
        if (!strcmp(a, "--steps")) op.steps = atoi(v);
        else if (!strcmp(a, "--seeds")) op.seeds = atoi(v);
        else if (!strcmp(a, "--params")) op.params = atol(v);
        else if (!strcmp(a, "--batch")) op.batch = atoi(v);
        else if (!strcmp(a, "--lr")) op.lr = atof(v);
        else if (!strcmp(a, "--distract")) op.distract = atoi(v);
        else if (!strcmp(a, "--test")) op.test = atoi(v);
        else if (!strcmp(a, "--cells")) cells = v;
        else if (!strcmp(a, "--out")) op.out = v;
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else return usage();
    }
    if (op.smoke) {
        op.steps = 150;
        op.seeds = 1;
        op.params = 6000;
        op.test = 128;
        op.distract = 1;
        cells = "lstm-b,mut1";
    }
    if (op.steps < 1 || op.seeds < 1 || op.seeds > 16 || op.batch < 1 || op.distract < 0 || op.test < op.batch ||
        op.params < 100 || !(op.lr > 0))
        return usage();
    op.test = op.test / op.batch * op.batch;
    rc_set_num_threads(threads > 0 ? threads : 1);   /* small nets: one thread wastes nothing */
    int T = max_len(op.distract), B = op.batch;
    int32_t *ttok = malloc(sizeof(int32_t) * (size_t)T * op.test), *ttgt = malloc(sizeof(int32_t) * (size_t)T * op.test);
    if (!ttok || !ttgt) return 1;
    rng tr = { 0xa1b2c3d4ull };
    for (int c = 0; c < op.test / B; c++)
        make_batch(&tr, op.distract, T, B, ttok + (size_t)c * T * B, ttgt + (size_t)c * T * B);
    {
        rng ex = { 7 };
        int32_t p[512];
        char text[256];
        int ans;
        make_problem(&ex, op.distract, p, 512, &ans, text, sizeof text);
        printf("arithmetic task: e.g. %s   (T = %d, batch %d, %d updates, Adam lr %g cosine, clip 5, %d seeds)\n", text,
               T, B, op.steps, op.lr, op.seeds);
    }
    row rows[NSPEC];
    int nrows = 0, fail = 0;
    double t0 = now();
    for (int s = 0; s < NSPEC; s++) {
        const char *nm = SPECS[s].name, *hit = strstr(cells, nm);
        size_t L = strlen(nm);
        /* whole names in the comma list only ("lstm" must not match "lstm-b") */
        while (hit && !((hit == cells || hit[-1] == ',') && (hit[L] == ',' || hit[L] == 0))) hit = strstr(hit + 1, nm);
        if (!hit) continue;
        row *rw = &rows[nrows++];
        memset(rw, 0, sizeof *rw);
        rw->spec = s;
        rw->H = pick_hidden(nm, op.params, &rw->params);
        if (rw->H < 1 || labs(rw->params - op.params) > op.params / 10) {
            fprintf(stderr, "arith: %s: no hidden size within 10%% of %ld parameters\n", nm, op.params);
            return 1;
        }
        double ts = now();
        rw->lo = 1;
        rw->hi = 0;
        for (int k = 0; k < op.seeds; k++) {
            double first, last;
            double a = run(&op, nm, rw->H, (unsigned long long)k + 1, ttok, ttgt, T, &first, &last);
            if (isnan(a)) return 1;
            rw->acc[k] = a;
            rw->mean += a / op.seeds;
            rw->lo = a < rw->lo ? a : rw->lo;
            rw->hi = a > rw->hi ? a : rw->hi;
            printf("  %-24s H %3d  %6ld params  seed %d: loss %.3f -> %.3f, accuracy %.3f\n", SPECS[s].label, rw->H,
                   rw->params, k + 1, first, last, a);
            fflush(stdout);
            if (op.smoke && !(last < 0.9 * first)) {
                fprintf(stderr, "arith: smoke: %s loss %.3f did not fall below 0.9 x %.3f\n", nm, last, first);
                fail = 1;
            }
        }
        rw->secs = now() - ts;
    }
    qsort(rows, (size_t)nrows, sizeof *rows, by_mean);
    printf("\nranking after %d updates of %d problems (%.0f s in all; the paper trained far longer):\n", op.steps, B,
           now() - t0);
    printf("  %-2s %-24s %4s %7s %8s %15s %8s\n", "#", "cell", "H", "params", "mean", "min..max", "paper");
    for (int i = 0; i < nrows; i++)
        printf("  %-2d %-24s %4d %7ld %8.3f %7.3f..%.3f %8.3f\n", i + 1, SPECS[rows[i].spec].label, rows[i].H,
               rows[i].params, rows[i].mean, rows[i].lo, rows[i].hi, SPECS[rows[i].spec].paper);
    if (!op.smoke && mkdirs(op.out) == 0) {
        char csv[1200], png[1200], cmd[4096];
        snprintf(csv, sizeof csv, "%s/arith.csv", op.out);
        snprintf(png, sizeof png, "%s/arith.png", op.out);
        FILE *f = fopen(csv, "w");
        if (f) {
            fprintf(f, "rank,cell,hidden,params,mean,min,max,paper\n");
            for (int i = 0; i < nrows; i++)
                fprintf(f, "%d,\"%s\",%d,%ld,%.4f,%.4f,%.4f,%.3f\n", i + 1, SPECS[rows[i].spec].label, rows[i].H,
                        rows[i].params, rows[i].mean, rows[i].lo, rows[i].hi, SPECS[rows[i].spec].paper);
            fclose(f);
            snprintf(cmd, sizeof cmd,
                     "gnuplot -e \"set terminal pngcairo size 900,450; set output '%s'; set datafile separator ','; "
                     "set style fill solid 0.6; set boxwidth 0.35; set yrange [0:1.15]; set ylabel 'per-character accuracy'; "
                     "set xtics rotate by -30; set key top center horizontal; set title 'arithmetic task, %d updates, %d seeds (bars: mean, min..max)'; "
                     "plot '%s' every ::1 using (\\$0-0.2):5:6:7:(0.35):xtic(2) with boxerrorbars lc rgb '#1f4fbf' title 'recur', "
                     "'' every ::1 using (\\$0+0.2):8 with boxes lc rgb '#999999' title 'Jozefowicz et al. 2015'\" 2>/dev/null",
                     png, op.steps, op.seeds, csv);
            if (system(cmd) == 0) printf("wrote %s and %s\n", csv, png);
            else printf("wrote %s (no gnuplot: no PNG)\n", csv);
        }
    }
    if (op.smoke) printf(fail ? "smoke: FAILED\n" : "smoke: ok\n");
    free(ttok), free(ttgt);
    return fail;
}
