/* ctc_bench — the time of one CTC loss + gradient in recur (rc_ctc: log-softmax,
 * forward-backward, the gradient with respect to the logits), at warp-ctc's README
 * shapes, beside warp-ctc's published CPU figures (40 threads of two Xeon E5-2660 v3).
 *
 * One measured step: rc_plan_forward then rc_plan_backward of rc_ctc(logits [T*B, A],
 * labels [B, L], lengths [B]) with the sum reduction, every sample T steps and L
 * labels, blank 0. Feeding happens before the clock starts. Inputs come from a
 * counter-based splitmix64 that bench/ctc_torch.py repeats exactly, so both programs
 * see the same numbers: logit i = U(-1, 1) from counter i of the seed, label j = 1 +
 * (draw j of seed ^ LABEL_SALT) mod (A - 1).
 *
 * usage: ctc_bench [--threads 1,2] [--B 1,16,32,64,128] [--shapes a28,a5000]
 *                  [--reps R] [--warmup W] [--seed S] [--T T --L L --A A]
 * Prints one line per shape, B and thread count: median, min and max ms over R steps,
 * the loss (a correctness check against PyTorch), warp-ctc's published figure. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "recur.h"

#define MAX_LIST 16
#define LABEL_SALT 0x5bd1e9955bd1e995ull

typedef struct { const char *name; int T, L, A; double warp_ms[5]; } shape;

/* warp-ctc README, "CPU Performance", 40 threads, N = 1, 16, 32, 64, 128 (ms). */
static const shape SHAPES[] = {
    { "a28", 150, 40, 28, { 2.6, 3.4, 3.9, 6.6, 12.2 } },
    { "a5000", 150, 20, 5000, { 21, 37, 54, 101, 184 } },
};
static const int WARP_B[5] = { 1, 16, 32, 64, 128 };

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* The i-th draw of a counter-based splitmix64 (i from 0). */
static uint64_t draw(uint64_t seed, uint64_t i) { return mix(seed + (i + 1) * 0x9E3779B97F4A7C15ull); }

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

/* Parses "1,16,32" into v (at most MAX_LIST); returns the count, -1 on a bad list. */
static int parse_list(const char *s, int *v)
{
    int n = 0;
    while (*s && n < MAX_LIST) {
        char *end;
        long x = strtol(s, &end, 10);
        if (end == s || x < 1 || x > 1000000) return -1;
        v[n++] = (int)x;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static double warp_figure(const shape *sh, int B)
{
    for (int k = 0; k < 5; k++)
        if (WARP_B[k] == B) return sh->warp_ms[k];
    return -1;
}

/* Times R loss + gradient steps of one shape; 0, or -1 with a message printed. */
static int run(const shape *sh, int B, int threads, int reps, int warmup, uint64_t seed)
{
    int T = sh->T, L = sh->L, A = sh->A, N = T * B;
    rc_set_num_threads(threads);
    rc_graph *g = rc_graph_new();
    int xs[2] = { N, A }, ls[2] = { B, L };
    rc_node *x = rc_input(g, "logits", RC_F32, 2, xs);
    rc_requires_grad(x, 1);
    rc_node *lab = rc_input(g, "labels", RC_I32, 2, ls), *len = rc_input(g, "lengths", RC_I32, 1, &B);
    rc_ctc_opts o = rc_ctc_defaults();
    o.reduction = RC_CTC_SUM;
    rc_node *loss = rc_ctc(g, x, lab, len, NULL, &o);
    rc_plan *p = loss ? rc_plan_new(g, 1, &loss) : NULL;
    float *xv = malloc((size_t)N * A * sizeof *xv);
    int32_t *lv = malloc((size_t)B * L * sizeof *lv), *nv = malloc((size_t)B * sizeof *nv);
    double *ms = malloc((size_t)reps * sizeof *ms);
    int rc = -1;
    if (!p || !xv || !lv || !nv || !ms) {
        fprintf(stderr, "ctc_bench: %s\n", p ? "out of memory" : rc_graph_error(g));
        goto out;
    }
    for (size_t i = 0; i < (size_t)N * A; i++)
        xv[i] = (float)((double)(draw(seed, i) >> 40) * 0x1.0p-24 * 2.0 - 1.0);
    for (size_t j = 0; j < (size_t)B * L; j++) lv[j] = 1 + (int32_t)(draw(seed ^ LABEL_SALT, j) % (uint64_t)(A - 1));
    for (int b = 0; b < B; b++) nv[b] = L;
    rc_status s = rc_plan_feed(p, x, xv, (size_t)N * A);
    if (s == RC_OK) s = rc_plan_feed(p, lab, lv, (size_t)B * L);
    if (s == RC_OK) s = rc_plan_feed(p, len, nv, (size_t)B);
    for (int r = 0; s == RC_OK && r < warmup + reps; r++) {
        double t0 = now();
        s = rc_plan_forward(p);
        if (s == RC_OK) s = rc_plan_backward(p, loss);
        if (r >= warmup) ms[r - warmup] = (now() - t0) * 1e3;
    }
    if (s != RC_OK) {
        fprintf(stderr, "ctc_bench: %s\n", rc_plan_error(p));
        goto out;
    }
    double lossv = rc_plan_value(p, loss)[0];
    qsort(ms, (size_t)reps, sizeof *ms, cmp_double);
    double med = reps % 2 ? ms[reps / 2] : 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]);
    double warp = strcmp(sh->name, "custom") ? warp_figure(sh, B) : -1;
    printf("%-6s %4d %3d %5d %4d %3d | %10.3f %10.3f %10.3f | %16.6f | ", sh->name, T, L, A, B, threads, med, ms[0],
           ms[reps - 1], lossv);
    if (warp > 0) printf("%8.1f\n", warp);
    else printf("%8s\n", "-");
    rc = 0;
out:
    rc_plan_free(p);
    rc_graph_free(g);
    free(xv);
    free(lv);
    free(nv);
    free(ms);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ctc_bench [--threads 1,2] [--B 1,16,32,64,128] [--shapes a28,a5000]\n"
            "                 [--reps R] [--warmup W] [--seed S] [--T T --L L --A A]\n"
            "  a28:   T=150 L=40 A=28     a5000: T=150 L=20 A=5000 (warp-ctc's README shapes)\n"
            "  --T/--L/--A: one custom shape instead (all three)\n"
            "Times rc_plan_forward + rc_plan_backward of rc_ctc (sum reduction) on the same\n"
            "inputs bench/ctc_torch.py makes; prints median/min/max ms, the loss, and warp-ctc's\n"
            "published 40-thread CPU figure for the shape.\n");
}

int main(int argc, char **argv)
{
    int thr[MAX_LIST] = { 1, 2 }, nthr = 2, Bs[MAX_LIST] = { 1, 16, 32, 64, 128 }, nB = 5;
    int reps = 10, warmup = 2, cT = 0, cL = 0, cA = 0, use[2] = { 1, 1 };
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "ctc_bench: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        int bad = 0;
        if (!strcmp(a, "--threads")) bad = (nthr = parse_list(v, thr)) < 1;
        else if (!strcmp(a, "--B")) bad = (nB = parse_list(v, Bs)) < 1;
        else if (!strcmp(a, "--reps")) bad = (reps = atoi(v)) < 1;
        else if (!strcmp(a, "--warmup")) bad = (warmup = atoi(v)) < 0;
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--T")) bad = (cT = atoi(v)) < 1;
        else if (!strcmp(a, "--L")) bad = (cL = atoi(v)) < 1;
        else if (!strcmp(a, "--A")) bad = (cA = atoi(v)) < 2;
        else if (!strcmp(a, "--shapes")) {
            use[0] = strstr(v, "a28") != NULL;
            use[1] = strstr(v, "a5000") != NULL;
            bad = !use[0] && !use[1];
        } else {
            fprintf(stderr, "ctc_bench: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "ctc_bench: bad value '%s' for %s\n", v, a);
            return 2;
        }
    }
    if ((cT || cL || cA) && !(cT && cL && cA)) {
        fprintf(stderr, "ctc_bench: --T, --L and --A go together\n");
        return 2;
    }
    if (cT && cL > cT) {
        fprintf(stderr, "ctc_bench: L = %d labels do not fit T = %d steps\n", cL, cT);
        return 2;
    }
    if (rc_blas_check() != RC_OK) fprintf(stderr, "ctc_bench: warning: OpenBLAS is not its OpenMP build\n");
    shape custom = { "custom", cT, cL, cA, { 0 } };
    printf("# recur %s, rc_ctc loss + gradient (sum reduction), median of %d after %d warm-up\n", rc_version(), reps,
           warmup);
    printf("# warp-ctc: its README's CPU figures, 40 threads (2x Xeon E5-2660 v3)\n");
    printf("%-6s %4s %3s %5s %4s %3s | %10s %10s %10s | %16s | %8s\n", "shape", "T", "L", "A", "B", "thr", "median_ms",
           "min_ms", "max_ms", "loss", "warp_ms");
    int fail = 0;
    for (int k = 0; k < (cT ? 1 : 2); k++) {
        const shape *sh = cT ? &custom : &SHAPES[k];
        if (!cT && !use[k]) continue;
        for (int b = 0; b < nB; b++)
            for (int t = 0; t < nthr; t++) fail |= run(sh, Bs[b], thr[t], reps, warmup, seed) != 0;
    }
    return fail ? 1 : 0;
}
