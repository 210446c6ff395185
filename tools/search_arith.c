/* The arithmetic task of recur search: the problems of examples/arith.c (Jozefowicz,
 * Zaremba & Sutskever 2015), "a+b=" or "a-b=" with 1..8-digit numbers and distractor
 * letters, read one character at a time, scored by the teacher-forced per-character
 * accuracy of the answer. The generator is a copy of the one in examples/arith.c
 * (examples see only the public header, and the library has no task generators): keep
 * the two in step. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "recur.h"
#include "search.h"

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
static int id_of(char c) { return (int)(strchr(VOCAB, c) - VOCAB); }

static long long rand_number(rng *r)
{
    int nd = 1 + rng_int(r, MAXDIG);
    long long v = 1 + rng_int(r, 9);
    for (int i = 1; i < nd; i++) v = v * 10 + rng_int(r, 10);
    return nd == 1 ? rng_int(r, 10) : v;
}

/* One problem as ids into tok (at most cap) and the index where the answer starts. */
static int make_problem(rng *r, int distract, int32_t *tok, int cap, int *ans)
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
    return n;
}

/* The longest problem (see examples/arith.c). */
static int max_len(int distract) { return (2 * MAXDIG + 2) * (distract + 1) + MAXDIG + 3; }

static void make_batch(rng *r, int distract, int T, int B, int32_t *tok, int32_t *tgt)
{
    int32_t p[512];
    for (int j = 0; j < B; j++) {
        int ans, n = make_problem(r, distract, p, T + 1, &ans);
        for (int t = 0; t < T; t++) {
            tok[t * B + j] = t < n ? p[t] : id_of('.');
            tgt[t * B + j] = (t + 1 >= ans && t + 1 < n) ? p[t + 1] : -1;
        }
    }
}

struct arith_set {
    int T, B, chunks;   /* the test set: chunks batches of B problems, T steps */
    int32_t *tok, *tgt;
};

static unsigned long long mix(unsigned long long a, unsigned long long b)
{
    rng r = { a ^ (b * 0x9e3779b97f4a7c15ull) };
    rng_next(&r);
    return rng_next(&r);
}

arith_set *arith_new(const search_opts *o)
{
    arith_set *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->T = max_len(o->distract);
    a->B = o->batch;
    a->chunks = (o->test + o->batch - 1) / o->batch;
    size_t n = (size_t)a->chunks * (size_t)a->T * (size_t)a->B;
    a->tok = malloc(n * sizeof *a->tok);
    a->tgt = malloc(n * sizeof *a->tgt);
    if (!a->tok || !a->tgt) {
        arith_free(a);
        return NULL;
    }
    rng r = { mix(o->seed, 0x7e57ull) };
    for (int c = 0; c < a->chunks; c++) {
        size_t off = (size_t)c * (size_t)a->T * (size_t)a->B;
        make_batch(&r, o->distract, a->T, a->B, a->tok + off, a->tgt + off);
    }
    return a;
}

void arith_free(arith_set *a)
{
    if (!a) return;
    free(a->tok);
    free(a->tgt);
    free(a);
}

void arith_shape(int *vocab, int *in, int *out)
{
    *vocab = *out = V;
    *in = 0;
}

long long arith_params(const search_opts *o, const char *text, int H, char *msg, size_t len)
{
    int vocab = o->shape_vocab, in = o->shape_in, out = o->shape_out;
    if (vocab <= 0 && in <= 0) arith_shape(&vocab, &in, &out);   /* not set: the arithmetic task */
    long long c = rc_cell_param_count(text, strlen(text), H, vocab > 0 ? H : in, msg, len);
    if (c < 0) return -1;
    return c + (vocab > 0 ? (long long)vocab * H : 0) + (long long)out * H + out;
}

int arith_hidden_for(const search_opts *o, const char *text, long target, long long *count, char *msg, size_t len)
{
    long long c1 = arith_params(o, text, 1, msg, len);
    if (c1 < 0) return -1;
    if (c1 > target) {
        snprintf(msg, len, "--params %ld is too small: the cell has %lld parameters at hidden size 1 (with the "
                 "input and the output layer of the first task)", target, c1);
        return -1;
    }
    int lo = 1, hi = 2;   /* the count grows with H: double until past the target, then bisect */
    for (;;) {
        long long c = arith_params(o, text, hi, msg, len);
        if (c < 0) return -1;
        if (c >= target) break;
        lo = hi;
        if (hi > (1 << 20)) {
            snprintf(msg, len, "--params %ld: no hidden size up to %d reaches it", target, hi);
            return -1;
        }
        hi *= 2;
    }
    while (hi - lo > 1) {   /* count(lo) < target <= count(hi) */
        int mid = lo + (hi - lo) / 2;
        long long c = arith_params(o, text, mid, msg, len);
        if (c < 0) return -1;
        if (c < target) lo = mid;
        else hi = mid;
    }
    long long clo = arith_params(o, text, lo, msg, len), chi = arith_params(o, text, hi, msg, len);
    if (clo < 0 || chi < 0) return -1;
    int H = (target - clo <= chi - target) ? lo : hi;
    long long got = H == lo ? clo : chi;
    if (llabs(got - target) * 10 > target) {   /* e.g. a target below what hidden size 2 needs */
        snprintf(msg, len, "--params %ld: the nearest model has %lld parameters (hidden size %d), more than 10%% off; "
                 "give a larger --params", target, got, H);
        return -1;
    }
    if (count) *count = got;
    return H;
}

/* Teacher-forced per-character accuracy of the answers of the test set. */
static double accuracy(rc_model *m, const arith_set *a)
{
    double ok = 0, all = 0;
    int T = a->T, B = a->B;
    rc_model_set_training(m, 0);
    for (int c = 0; c < a->chunks; c++) {
        const int32_t *tk = a->tok + (size_t)c * T * B, *tg = a->tgt + (size_t)c * T * B;
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
    return all > 0 ? ok / all : NAN;
}

double arith_run(const search_opts *o, const arith_set *a, const char *text, int H, double lr, long steps, int s,
                 search_poll poll, char *msg, size_t len)
{
    char err[1024] = "";
    rc_cell *cell = rc_cell_parse(text, strlen(text), "candidate", H, err, sizeof err);
    if (!cell) {
        snprintf(msg, len, "%s", err);
        return NAN;
    }
    rc_model_opts mo = rc_model_defaults();
    mo.vocab = V;
    mo.input_size = H;   /* the embedding is H wide: cells may add x to an H-wide value (MUT1) */
    mo.output_size = V;
    mo.seed = mix(o->seed, 0x1000ull + (unsigned long long)s);
    rc_model *m = rc_model_new(cell, &mo);
    rc_cell_free(cell);
    double acc = NAN;
    rc_optim *opt = NULL;
    int T = a->T, B = o->batch;
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)T * B), *tgt = malloc(sizeof(int32_t) * (size_t)T * B);
    if (!m || !tok || !tgt) {
        snprintf(msg, len, "out of memory");
        goto done;
    }
    if (rc_model_status(m) != RC_OK) {
        snprintf(msg, len, "%s", rc_model_error(m));
        goto done;
    }
    rc_optim_opts oo = rc_optim_defaults(RC_OPT_ADAM);
    oo.clip_norm = 5.0f;
    if (!(opt = rc_optim_new(m, &oo))) {
        snprintf(msg, len, "out of memory");
        goto done;
    }
    rng r = { mix(o->seed, 0x2000ull + (unsigned long long)s) };   /* the same data for every cell */
    rc_schedule sch = { .kind = RC_SCHED_COSINE, .lr = (float)lr, .min_frac = 0.1f };
    for (long step = 1; step <= steps; step++) {
        if (poll && poll()) {
            acc = -1;
            goto done;
        }
        make_batch(&r, o->distract, T, B, tok, tgt);
        rc_batch b = { .T = T, .B = B, .tokens = tok, .targets = tgt };
        double loss;
        rc_status st = rc_model_forward(m, &b, &loss);
        const char *what = "forward", *why = rc_model_error(m);
        if (st == RC_OK && (st = rc_model_backward(m)) != RC_OK) what = "backward";
        else if (st == RC_OK &&
                 (st = rc_optim_step(opt, rc_schedule_lr(&sch, 1, (double)(step - 1) / (double)steps))) != RC_OK) {
            what = "optimiser step";
            why = rc_optim_error(opt);
        }
        if (st != RC_OK) {
            snprintf(msg, len, "update %ld, %s: %s (%s)", step, what, why && why[0] ? why : "no message",
                     rc_status_name(st));
            goto done;
        }
    }
    acc = accuracy(m, a);
    if (isnan(acc)) snprintf(msg, len, "evaluation: %s", rc_model_error(m));
done:
    free(tok);
    free(tgt);
    rc_optim_free(opt);
    rc_model_free(m);
    return acc;
}
