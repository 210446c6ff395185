/* Sequence sets, their loaders and batching: see data.h.
 *
 * A set stores its sequences back to back with an offset table, so adding is amortised
 * O(steps) and collation reads each sequence contiguously. The music reader is a small
 * recursive-descent parser for exactly {"train"|"valid"|"test": [[[note, ...], ...], ...]}
 * tracking line and column; it packs each frame's 88 keys into bits (16 bytes a frame)
 * and adds each sequence to a binary set, which collation expands to floats. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "data.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "numparse.h"
#include "rng.h"

#define MUSIC_KEYS 88
#define MUSIC_LOW 21
#define MUSIC_HIGH 108
#define MUSIC_WORDS ((MUSIC_KEYS + 63) / 64)   /* 64-bit words of a frame's key bits */

/* p (of *cap elements of size elem) grown to hold at least need >= 1 elements: the
 * array to use from now on, or NULL when memory is short (p is then still valid). */
static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (p && need <= *cap) return p;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2) return NULL;
        nc *= 2;
    }
    if (nc > SIZE_MAX / elem) return NULL;
    void *q = realloc(p, nc * elem);
    if (!q) return NULL;
    *cap = nc;
    return q;
}

static int is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A short description of byte c (or the end, c < 0) for messages. */
static const char *describe(int c, char *buf, size_t len)
{
    if (c < 0) snprintf(buf, len, "the end of the file");
    else if (c == '\n') snprintf(buf, len, "a line end");
    else if (c >= 0x20 && c < 0x7f) snprintf(buf, len, "'%c'", c);
    else snprintf(buf, len, "byte 0x%02x", (unsigned)c);
    return buf;
}

/* ---- sets ---------------------------------------------------------------------------- */

int seqset_init(seqset *s, int F, seq_target kind, int K, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (F < 0) return data_fail(err, errlen, "sequence set: %d features per step", F);
    if ((int)kind < SEQ_TGT_NONE || kind > SEQ_TGT_NEXT)
        return data_fail(err, errlen, "sequence set: unknown target kind %d", (int)kind);
    if (kind == SEQ_TGT_FLOAT && K < 1)
        return data_fail(err, errlen, "sequence set: %d target values per step (need >= 1)", K);
    s->F = F;
    s->kind = kind;
    s->K = kind == SEQ_TGT_FLOAT ? K : kind == SEQ_TGT_NEXT ? F : 0;
    s->off = malloc(sizeof *s->off);
    if (!s->off) return data_fail(err, errlen, "sequence set: out of memory");
    s->off[0] = 0;
    return 0;
}

int seqset_init_binary(seqset *s, int F, seq_target kind, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (F < 1) return data_fail(err, errlen, "binary sequence set: %d features per step (need >= 1)", F);
    if (kind != SEQ_TGT_NONE && kind != SEQ_TGT_NEXT)
        return data_fail(err, errlen, "binary sequence set: target kind %d (only none or next)", (int)kind);
    if (seqset_init(s, F, kind, 0, err, errlen) != 0) return -1;
    s->words = (F + 63) / 64;
    return 0;
}

void seqset_free(seqset *s)
{
    if (!s) return;
    if (s->names)
        for (int i = 0; i < s->F; i++) free(s->names[i]);
    free(s->names);
    free(s->off);
    free(s->x);
    free(s->xb);
    free(s->tok);
    free(s->cls);
    free(s->tag);
    free(s->y);
    free(s->lab);
    free(s->lab_off);
    memset(s, 0, sizeof *s);
}

int seqset_attach_labels(seqset *s, int32_t *lab, size_t *lab_off, char *err, size_t errlen)
{
    const char *why = !lab_off ? "no label offsets" : s->kind != SEQ_TGT_NONE ? "the set has targets already"
                      : lab_off[0] != 0 ? "the first offset is not 0" : NULL;
    for (int i = 0; !why && i < s->n; i++)
        if (lab_off[i + 1] < lab_off[i]) why = "the offsets decrease";
    if (!why && !lab && lab_off[s->n] > 0) why = "no labels";
    if (why) {
        free(lab);
        free(lab_off);
        return data_fail(err, errlen, "sequence set: cannot attach labels: %s", why);
    }
    s->lab = lab;
    s->lab_off = lab_off;
    s->kind = SEQ_TGT_LABELS;
    return 0;
}

/* Bytes one stored step takes in the set's arrays (0 when that overflows). */
static size_t step_bytes(const seqset *s)
{
    size_t F = (size_t)s->F, K = (size_t)s->K, b;
    if (s->words > 0) b = (size_t)s->words * sizeof(uint64_t);
    else if (F > 0) b = F > SIZE_MAX / sizeof(float) ? 0 : F * sizeof(float);
    else b = sizeof(int32_t);
    if (b == 0) return 0;
    if (s->kind == SEQ_TGT_TAGS) b += sizeof(int32_t);
    if (s->kind == SEQ_TGT_FLOAT) {
        if (K > (SIZE_MAX - b) / sizeof(float)) return 0;
        b += K * sizeof(float);
    }
    return b;
}

/* field (an array of elements of elem bytes) reallocated to n elements; on failure
 * field is unchanged and bad is set. The caller has checked that n * elem fits. */
#define RESIZE(field, n, elem, bad)                                                       \
    do {                                                                                  \
        void *q_ = realloc((field), (n) * (elem));                                        \
        if (q_) (field) = q_;                                                             \
        else (bad) = 1;                                                                   \
    } while (0)

/* Room for one more sequence and `steps` stored steps in all: capacities double, or
 * grow to exactly what is needed when that is more. 0, or -1 with a message giving
 * the steps and bytes asked for. */
static int reserve(seqset *s, size_t steps, char *err, size_t errlen)
{
    if ((size_t)s->n + 1 > (size_t)s->cap_n) {   /* off has cap_n + 1 entries; cls has cap_n */
        size_t nc = s->cap_n ? 2 * (size_t)s->cap_n : 16;
        if (nc > INT_MAX) nc = INT_MAX;
        if (nc >= SIZE_MAX / sizeof *s->off) nc = (size_t)s->n + 1;
        int bad = nc >= SIZE_MAX / sizeof *s->off;
        if (!bad) RESIZE(s->off, nc + 1, sizeof *s->off, bad);
        if (!bad && s->kind == SEQ_TGT_CLASS) RESIZE(s->cls, nc, sizeof *s->cls, bad);
        if (bad) return data_fail(err, errlen, "sequence set: out of memory for %zu sequences", nc);
        s->cap_n = (int)nc;
    }
    if (steps <= s->cap_steps) return 0;
    size_t per = step_bytes(s);
    size_t nc = s->cap_steps <= SIZE_MAX / 2 ? 2 * s->cap_steps : SIZE_MAX;
    if (nc < steps) nc = steps;
    if (per == 0 || steps > SIZE_MAX / per)
        return data_fail(err, errlen, "sequence set: %zu steps of %d features are more than memory can address",
                         steps, s->F);
    if (nc > SIZE_MAX / per) nc = steps;
    size_t F = (size_t)s->F;
    int bad = 0;
    if (s->words > 0) RESIZE(s->xb, nc, (size_t)s->words * sizeof *s->xb, bad);
    else if (F > 0) RESIZE(s->x, nc, F * sizeof *s->x, bad);
    else RESIZE(s->tok, nc, sizeof *s->tok, bad);
    if (!bad && s->kind == SEQ_TGT_TAGS) RESIZE(s->tag, nc, sizeof *s->tag, bad);
    if (!bad && s->kind == SEQ_TGT_FLOAT) RESIZE(s->y, nc, (size_t)s->K * sizeof *s->y, bad);
    if (bad)
        return data_fail(err, errlen, "sequence set: out of memory for %zu steps (%zu bytes each)", nc, per);
    s->cap_steps = nc;
    return 0;
}

/* The checks common to both adds: 0 with the first step's index in *at and the
 * steps after the sequence in *steps, or -1 with a message. */
static int add_check(const seqset *s, int len, size_t *at, size_t *steps, char *err, size_t errlen)
{
    if (!s->off) return data_fail(err, errlen, "sequence set: not initialised");
    if (s->kind == SEQ_TGT_LABELS)
        return data_fail(err, errlen, "sequence set: labels are attached once every sequence is in");
    int minlen = s->kind == SEQ_TGT_NEXT ? 2 : 1;
    if (len < minlen)
        return data_fail(err, errlen, "sequence set: a sequence of %d steps (need >= %d)", len, minlen);
    if (s->n == INT_MAX) return data_fail(err, errlen, "sequence set: too many sequences");
    *at = s->off[s->n];
    if ((size_t)len > SIZE_MAX - *at)
        return data_fail(err, errlen, "sequence set: %zu + %d steps are more than memory can address", *at, len);
    *steps = *at + (size_t)len;
    return 0;
}

int seqset_add(seqset *s, int len, const float *x, const int32_t *tokens, int32_t cls,
               const int32_t *tags, const float *y, char *err, size_t errlen)
{
    size_t at = 0, steps = 0;
    if (add_check(s, len, &at, &steps, err, errlen) != 0) return -1;
    if (s->words > 0) return data_fail(err, errlen, "sequence set: a binary set takes bits (seqset_add_bits)");
    if (s->F > 0 ? !x : !tokens)
        return data_fail(err, errlen, "sequence set: no %s given", s->F > 0 ? "features" : "tokens");
    if ((s->kind == SEQ_TGT_TAGS && !tags) || (s->kind == SEQ_TGT_FLOAT && !y))
        return data_fail(err, errlen, "sequence set: no targets given");
    if (reserve(s, steps, err, errlen) != 0) return -1;
    if (s->F > 0) memcpy(s->x + at * (size_t)s->F, x, (size_t)len * (size_t)s->F * sizeof *x);
    else memcpy(s->tok + at, tokens, (size_t)len * sizeof *tokens);
    if (s->kind == SEQ_TGT_CLASS) s->cls[s->n] = cls;
    if (s->kind == SEQ_TGT_TAGS) memcpy(s->tag + at, tags, (size_t)len * sizeof *tags);
    if (s->kind == SEQ_TGT_FLOAT) memcpy(s->y + at * (size_t)s->K, y, (size_t)len * (size_t)s->K * sizeof *y);
    s->n++;
    s->off[s->n] = steps;
    return 0;
}

int seqset_add_bits(seqset *s, int len, const uint64_t *bits, char *err, size_t errlen)
{
    size_t at = 0, steps = 0;
    if (add_check(s, len, &at, &steps, err, errlen) != 0) return -1;
    if (s->words == 0) return data_fail(err, errlen, "sequence set: bits given to a set that is not binary");
    if (!bits) return data_fail(err, errlen, "sequence set: no features given");
    size_t W = (size_t)s->words;
    unsigned spare = (unsigned)(W * 64 - (size_t)s->F);   /* unused high bits of the last word */
    uint64_t last = spare ? ~(UINT64_MAX >> spare) : 0;
    for (size_t t = 0; t < (size_t)len; t++)
        if (bits[t * W + W - 1] & last)
            return data_fail(err, errlen, "sequence set: step %zu has bits set beyond its %d features", t, s->F);
    if (reserve(s, steps, err, errlen) != 0) return -1;
    memcpy(s->xb + at * W, bits, (size_t)len * W * sizeof *bits);
    s->n++;
    s->off[s->n] = steps;
    return 0;
}

int seqset_len(const seqset *s, int i)
{
    if (!s || i < 0 || i >= s->n) return 0;
    return (int)(s->off[i + 1] - s->off[i]) - (s->kind == SEQ_TGT_NEXT);
}

size_t seqset_steps(const seqset *s)
{
    if (!s || s->n == 0) return 0;
    return s->off[s->n] - (s->kind == SEQ_TGT_NEXT ? (size_t)s->n : 0);
}

size_t seqset_bytes(const seqset *s)
{
    if (!s || !s->off) return 0;
    size_t b = s->cap_steps * step_bytes(s) + ((size_t)s->cap_n + 1) * sizeof *s->off;
    if (s->kind == SEQ_TGT_CLASS) b += (size_t)s->cap_n * sizeof *s->cls;
    return b;
}

/* Step st of a binary set as F floats 0/1 into out (which is written whole). */
static void expand_bits(const seqset *s, size_t st, float *out)
{
    const uint64_t *w = s->xb + st * (size_t)s->words;
    for (int k = 0; k < s->F; k++) out[k] = (float)((w[k >> 6] >> (k & 63)) & 1u);
}

int seqset_step_x(const seqset *s, int seq, int t, float *out, char *err, size_t errlen)
{
    if (!s || s->F < 1) return data_fail(err, errlen, "step features: the set has no features");
    if (seq < 0 || seq >= s->n)
        return data_fail(err, errlen, "step features: sequence %d out of range (0..%d)", seq, s->n - 1);
    size_t L = s->off[seq + 1] - s->off[seq];
    if (t < 0 || (size_t)t >= L)
        return data_fail(err, errlen, "step features: step %d out of range (0..%zu)", t, L - 1);
    size_t st = s->off[seq] + (size_t)t, F = (size_t)s->F;
    if (s->words > 0) expand_bits(s, st, out);
    else memcpy(out, s->x + st * F, F * sizeof *out);
    return 0;
}

int seqset_windows(seqset *out, const seqset *src, int seq, int T, int S, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!src || src->F < 1 || src->words > 0)
        return data_fail(err, errlen, "windows: the source set has no float features");
    if (seq < 0 || seq >= src->n)
        return data_fail(err, errlen, "windows: sequence %d out of range (0..%d)", seq, src->n - 1);
    if (T < 1 || S < 1) return data_fail(err, errlen, "windows: length %d and stride %d must be >= 1", T, S);
    size_t R = src->off[seq + 1] - src->off[seq], F = (size_t)src->F;
    if (R < (size_t)T + 1)
        return data_fail(err, errlen, "windows: the series has %zu rows; a window of %d steps needs %d", R, T, T + 1);
    seqset r;
    if (seqset_init(&r, src->F, SEQ_TGT_NEXT, 0, err, errlen) != 0) return -1;
    const float *x = src->x + src->off[seq] * F;
    for (size_t i = 0; i + (size_t)T + 1 <= R; i += (size_t)S) {
        if (seqset_add(&r, T + 1, x + i * F, NULL, 0, NULL, NULL, err, errlen) != 0) goto fail;
    }
    if (src->names) {
        r.names = calloc(F, sizeof *r.names);
        if (!r.names) goto oom;
        for (size_t j = 0; j < F; j++) {
            size_t l = strlen(src->names[j]);
            r.names[j] = malloc(l + 1);
            if (!r.names[j]) goto oom;
            memcpy(r.names[j], src->names[j], l + 1);
        }
    }
    *out = r;
    return 0;
oom:
    data_fail(err, errlen, "windows: out of memory");
fail:
    seqset_free(&r);
    return -1;
}

/* ---- collation --------------------------------------------------------------------- */

void batch_buf_free(batch_buf *b)
{
    if (!b) return;
    free(b->x);
    free(b->y);
    free(b->tokens);
    free(b->lengths);
    free(b->targets);
    free(b->labels);
    free(b->label_lengths);
    memset(b, 0, sizeof *b);
}

int seqset_collate(const seqset *s, const int32_t *idx, int B, batch_buf *buf, rc_batch *out,
                   char *err, size_t errlen)
{
    if (B < 1 || !idx) return data_fail(err, errlen, "collate: batch of %d sequences", B);
    int T = 0;
    for (int b = 0; b < B; b++) {
        if (idx[b] < 0 || idx[b] >= s->n)
            return data_fail(err, errlen, "collate: sequence %d out of range (0..%d)", (int)idx[b], s->n - 1);
        int l = seqset_len(s, idx[b]);
        if (l > T) T = l;
    }
    size_t F = (size_t)s->F, K = (size_t)s->K, wide = F > K ? F : K > 0 ? K : 1;
    if ((size_t)T > SIZE_MAX / (size_t)B || (size_t)T * (size_t)B > SIZE_MAX / sizeof(float) / wide)
        return data_fail(err, errlen, "collate: a batch of %d sequences of up to %d steps with %zu values a step "
                         "is more than memory can address", B, T, wide);
    size_t rows = (size_t)T * (size_t)B;
    int tok_tgt = s->kind == SEQ_TGT_TAGS || (s->kind == SEQ_TGT_NEXT && F == 0);
    int use_y = s->kind == SEQ_TGT_FLOAT || (s->kind == SEQ_TGT_NEXT && F > 0);
    size_t ntgt = s->kind == SEQ_TGT_CLASS ? (size_t)B : tok_tgt ? rows : 0;
    int32_t *pl = grow(buf->lengths, &buf->cap_len, (size_t)B, sizeof *pl);
    if (pl) buf->lengths = pl;
    float *px = F > 0 ? grow(buf->x, &buf->cap_x, rows * F, sizeof *px) : NULL;
    if (px) buf->x = px;
    int32_t *pt = F == 0 ? grow(buf->tokens, &buf->cap_tok, rows, sizeof *pt) : NULL;
    if (pt) buf->tokens = pt;
    int32_t *pg = ntgt ? grow(buf->targets, &buf->cap_tgt, ntgt, sizeof *pg) : NULL;
    if (pg) buf->targets = pg;
    float *py = use_y ? grow(buf->y, &buf->cap_y, rows * K, sizeof *py) : NULL;
    if (py) buf->y = py;
    int labs = s->kind == SEQ_TGT_LABELS;
    size_t S = 0;
    for (int b = 0; labs && b < B; b++) {
        size_t l = s->lab_off[idx[b] + 1] - s->lab_off[idx[b]];
        if (l > S) S = l;
    }
    if (S > (size_t)INT32_MAX || (S && (size_t)B > SIZE_MAX / sizeof(int32_t) / S))
        return data_fail(err, errlen, "collate: %d label sequences of up to %zu labels are more than memory can address",
                         B, S);
    int32_t *pa = labs ? grow(buf->labels, &buf->cap_lab, S ? S * (size_t)B : 1, sizeof *pa) : NULL;
    if (pa) buf->labels = pa;
    int32_t *pb = labs ? grow(buf->label_lengths, &buf->cap_lablen, (size_t)B, sizeof *pb) : NULL;
    if (pb) buf->label_lengths = pb;
    if (!pl || (F > 0 && !px) || (F == 0 && !pt) || (ntgt && !pg) || (use_y && !py) || (labs && (!pa || !pb)))
        return data_fail(err, errlen, "collate: out of memory for a batch of %d sequences of up to %d steps "
                         "(%zu bytes a value array)", B, T, rows * wide * sizeof(float));
    if (F > 0) memset(buf->x, 0, rows * F * sizeof(float));
    else memset(buf->tokens, 0, rows * sizeof(int32_t));
    for (size_t i = 0; i < ntgt; i++) buf->targets[i] = -1;
    if (use_y) memset(buf->y, 0, rows * K * sizeof(float));
    if (labs) memset(buf->labels, 0, (S ? S * (size_t)B : 1) * sizeof(int32_t));
    for (int b = 0; b < B; b++) {
        int i = idx[b], L = seqset_len(s, i);
        size_t o = s->off[i];
        buf->lengths[b] = L;
        if (labs) {
            size_t l = s->lab_off[i + 1] - s->lab_off[i];
            memcpy(buf->labels + (size_t)b * S, s->lab + s->lab_off[i], l * sizeof(int32_t));
            buf->label_lengths[b] = (int32_t)l;
        }
        if (s->kind == SEQ_TGT_CLASS) buf->targets[b] = s->cls[i];
        for (int t = 0; t < L; t++) {
            size_t row = (size_t)t * (size_t)B + (size_t)b, st = o + (size_t)t;
            if (s->words > 0) expand_bits(s, st, buf->x + row * F);
            else if (F > 0) memcpy(buf->x + row * F, s->x + st * F, F * sizeof(float));
            else buf->tokens[row] = s->tok[st];
            switch (s->kind) {
            case SEQ_TGT_TAGS: buf->targets[row] = s->tag[st]; break;
            case SEQ_TGT_FLOAT: memcpy(buf->y + row * K, s->y + st * K, K * sizeof(float)); break;
            case SEQ_TGT_NEXT:
                if (s->words > 0) expand_bits(s, st + 1, buf->y + row * F);
                else if (F > 0) memcpy(buf->y + row * F, s->x + (st + 1) * F, F * sizeof(float));
                else buf->targets[row] = s->tok[st + 1];
                break;
            default: break;
            }
        }
    }
    memset(out, 0, sizeof *out);
    out->T = T;
    out->B = B;
    out->x = F > 0 ? buf->x : NULL;
    out->tokens = F == 0 ? buf->tokens : NULL;
    out->lengths = buf->lengths;
    out->targets = ntgt ? buf->targets : NULL;
    out->y = use_y ? buf->y : NULL;
    if (labs) {
        out->labels = buf->labels;
        out->label_lengths = buf->label_lengths;
        out->S = (int)S;
    }
    return 0;
}

/* ---- batching --------------------------------------------------------------------------- */

/* Uniform in [0, n) without modulo bias. */
static uint64_t rng_below(rng_t *r, uint64_t n)
{
    uint64_t lim = (0 - n) % n;
    for (;;) {
        uint64_t x = rng_next(r);
        if (x >= lim) return x % n;
    }
}

typedef struct lenpos { int len, pos; int32_t id; } lenpos;

static int cmp_lenpos(const void *pa, const void *pb)
{
    const lenpos *a = pa, *b = pb;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

/* The order of `epoch` into order[n]. */
static int make_order(const batcher *b, int epoch, int32_t *order, char *err, size_t errlen)
{
    int n = b->set->n, B = b->B;
    for (int i = 0; i < n; i++) order[i] = i;
    rng_t r;
    uint64_t e = (uint64_t)epoch;
    rng_seed(&r, b->seed ^ rng_splitmix(&e));
    if (b->shuffle) {
        for (int i = n - 1; i > 0; i--) {
            int j = (int)rng_below(&r, (uint64_t)i + 1);
            int32_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
    }
    if (b->bucket > 1 && B > 1 && n > 1) {
        lenpos *lp = malloc((size_t)n * sizeof *lp);
        if (!lp) return data_fail(err, errlen, "batcher: out of memory");
        size_t chunk = (size_t)b->bucket * (size_t)B;
        for (size_t c0 = 0; c0 < (size_t)n; c0 += chunk) {
            size_t c1 = c0 + chunk < (size_t)n ? c0 + chunk : (size_t)n;
            for (size_t i = c0; i < c1; i++) {
                lp[i].id = order[i];
                lp[i].len = seqset_len(b->set, order[i]);
                lp[i].pos = (int)i;
            }
            qsort(lp + c0, c1 - c0, sizeof *lp, cmp_lenpos);
            for (size_t i = c0; i < c1; i++) order[i] = lp[i].id;
        }
        free(lp);
        int full = n / B;
        if (b->shuffle && full > 1) {
            int32_t *perm = malloc((size_t)full * sizeof *perm);
            int32_t *tmp = malloc((size_t)full * (size_t)B * sizeof *tmp);
            if (!perm || !tmp) {
                free(perm);
                free(tmp);
                return data_fail(err, errlen, "batcher: out of memory");
            }
            for (int i = 0; i < full; i++) perm[i] = i;
            for (int i = full - 1; i > 0; i--) {
                int j = (int)rng_below(&r, (uint64_t)i + 1);
                int32_t t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
            for (int i = 0; i < full; i++)
                memcpy(tmp + (size_t)i * (size_t)B, order + (size_t)perm[i] * (size_t)B, (size_t)B * sizeof *tmp);
            memcpy(order, tmp, (size_t)full * (size_t)B * sizeof *tmp);
            free(perm);
            free(tmp);
        }
    }
    return 0;
}

int batcher_init(batcher *b, const seqset *s, int B, int bucket, int shuffle, uint64_t seed,
                 char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    if (!s || s->n < 1) return data_fail(err, errlen, "batcher: the set has no sequences");
    if (B < 1) return data_fail(err, errlen, "batcher: batch size %d (need >= 1)", B);
    if (bucket < 0) return data_fail(err, errlen, "batcher: bucket %d (need >= 0)", bucket);
    batcher r;
    memset(&r, 0, sizeof r);
    r.set = s;
    r.B = B;
    r.bucket = bucket;
    r.shuffle = shuffle != 0;
    r.seed = seed;
    r.count = (int)(((size_t)s->n + (size_t)B - 1) / (size_t)B);
    r.order = malloc((size_t)s->n * sizeof *r.order);
    if (!r.order) return data_fail(err, errlen, "batcher: out of memory");
    if (make_order(&r, 0, r.order, err, errlen) != 0) {
        free(r.order);
        return -1;
    }
    *b = r;
    return 0;
}

void batcher_free(batcher *b)
{
    if (!b) return;
    free(b->order);
    batch_buf_free(&b->buf);
    memset(b, 0, sizeof *b);
}

int batcher_count(const batcher *b)
{
    return b->count;
}

int batcher_set_epoch(batcher *b, int epoch, char *err, size_t errlen)
{
    if (!b->order) return data_fail(err, errlen, "batcher: not initialised");
    if (epoch < 0) return data_fail(err, errlen, "batcher: epoch %d < 0", epoch);
    if (make_order(b, epoch, b->order, err, errlen) != 0) return -1;
    b->epoch = epoch;
    b->pos = 0;
    return 0;
}

int batcher_get(batcher *b, int j, rc_batch *out, char *err, size_t errlen)
{
    if (!b->order) return data_fail(err, errlen, "batcher: not initialised");
    if (j < 0 || j >= b->count)
        return data_fail(err, errlen, "batcher: batch %d out of range (%d per epoch)", j, b->count);
    size_t a = (size_t)j * (size_t)b->B;
    int nb = (int)((size_t)b->set->n - a < (size_t)b->B ? (size_t)b->set->n - a : (size_t)b->B);
    return seqset_collate(b->set, b->order + a, nb, &b->buf, out, err, errlen);
}

int batcher_next(batcher *b, rc_batch *out, char *err, size_t errlen)
{
    if (!b->order) return data_fail(err, errlen, "batcher: not initialised");
    if (b->pos >= b->count) return 0;
    if (batcher_get(b, b->pos, out, err, errlen) != 0) return -1;
    b->pos++;
    return 1;
}

const int32_t *batcher_state(const batcher *b, int *epoch, int *pos)
{
    if (epoch) *epoch = b->epoch;
    if (pos) *pos = b->pos;
    return b->order;
}

int batcher_restore(batcher *b, int epoch, int pos, const int32_t *order, int n,
                    char *err, size_t errlen)
{
    if (!b->order) return data_fail(err, errlen, "batcher: not initialised");
    int N = b->set->n;
    if (epoch < 0) return data_fail(err, errlen, "batcher: epoch %d < 0", epoch);
    if (pos < 0 || pos > b->count)
        return data_fail(err, errlen, "batcher: position %d out of range (0..%d)", pos, b->count);
    if (order) {
        if (n != N) return data_fail(err, errlen, "batcher: the order has %d entries, the set %d sequences", n, N);
        unsigned char *seen = calloc((size_t)N, 1);
        if (!seen) return data_fail(err, errlen, "batcher: out of memory");
        for (int i = 0; i < N; i++) {
            if (order[i] < 0 || order[i] >= N || seen[order[i]]) {
                free(seen);
                return data_fail(err, errlen, "batcher: the order is not a permutation (entry %d: %d)", i,
                                 (int)order[i]);
            }
            seen[order[i]] = 1;
        }
        free(seen);
        memcpy(b->order, order, (size_t)N * sizeof *order);
    } else if (make_order(b, epoch, b->order, err, errlen) != 0) {
        return -1;
    }
    b->epoch = epoch;
    b->pos = pos;
    return 0;
}

size_t batcher_padding(const batcher *b)
{
    size_t pad = 0;
    for (int j = 0; j < b->count; j++) {
        size_t a = (size_t)j * (size_t)b->B, e = a + (size_t)b->B;
        if (e > (size_t)b->set->n) e = (size_t)b->set->n;
        size_t sum = 0;
        int T = 0;
        for (size_t i = a; i < e; i++) {
            int l = seqset_len(b->set, b->order[i]);
            sum += (size_t)l;
            if (l > T) T = l;
        }
        pad += (size_t)T * (e - a) - sum;
    }
    return pad;
}

/* ---- data sets ----------------------------------------------------------------------- */

void seqdata_free(seqdata *d)
{
    if (!d) return;
    for (int k = 0; k < 3; k++) seqset_free(&d->set[k]);
    vocab_free(&d->words);
    vocab_free(&d->labels);
    memset(d, 0, sizeof *d);
}

/* ---- music JSON ------------------------------------------------------------------------ */

typedef struct jp {
    const char *path, *b;
    size_t n, i;
    long line, col;     /* of b[i] */
    char *err;
    size_t errlen;
    uint64_t *frames;   /* the current sequence's frames, MUSIC_WORDS words each */
    size_t cap;         /* frames allocated (in frames) */
} jp;

static int jp_fail_at(jp *p, long line, long col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int jp_fail_at(jp *p, long line, long col, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return data_fail(p->err, p->errlen, "%s:%ld:%ld: %s", p->path, line, col, msg);
}

static int jp_peek(const jp *p)
{
    return p->i < p->n ? (unsigned char)p->b[p->i] : -1;
}

static void jp_adv(jp *p)
{
    if (p->b[p->i] == '\n') {
        p->line++;
        p->col = 1;
    } else {
        p->col++;
    }
    p->i++;
}

static void jp_ws(jp *p)
{
    int c;
    while ((c = jp_peek(p)) == ' ' || c == '\t' || c == '\r' || c == '\n') jp_adv(p);
}

/* Expects '[' (after whitespace); records where it is. */
static int jp_open(jp *p, const char *what, long *ol, long *oc)
{
    char d[32];
    jp_ws(p);
    int c = jp_peek(p);
    if (c != '[')
        return jp_fail_at(p, p->line, p->col, "expected '[' to start %s, found %s", what,
                          describe(c, d, sizeof d));
    *ol = p->line;
    *oc = p->col;
    jp_adv(p);
    return 0;
}

/* After '[' or an element: 1 when another element follows, 0 when ']' closed the list. */
static int jp_more(jp *p, int *count, long ol, long oc, const char *what)
{
    char d[32];
    jp_ws(p);
    int c = jp_peek(p);
    if (c == ']') {
        jp_adv(p);
        return 0;
    }
    if (c < 0)
        return jp_fail_at(p, p->line, p->col,
                          "unexpected end of file: unterminated list of %s opened at line %ld, column %ld",
                          what, ol, oc);
    if (*count > 0) {
        if (c != ',')
            return jp_fail_at(p, p->line, p->col,
                              "expected ',' or ']' in the list of %s opened at line %ld, column %ld, found %s",
                              what, ol, oc, describe(c, d, sizeof d));
        jp_adv(p);
        jp_ws(p);
    }
    (*count)++;
    return 1;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* A JSON number that must be an integer MIDI note in 21..108. */
static int jp_note(jp *p, int *note)
{
    char d[32];
    long l0 = p->line, c0 = p->col;
    size_t a = p->i;
    int c = jp_peek(p);
    if (c != '-' && !is_digit(c)) {
        if (c < 0)
            return jp_fail_at(p, l0, c0, "unexpected end of file where a note number was expected");
        return jp_fail_at(p, l0, c0, "expected a note number (%d..%d), found %s", MUSIC_LOW, MUSIC_HIGH,
                          describe(c, d, sizeof d));
    }
    if (c == '-') jp_adv(p);
    int digits = 0;
    while (is_digit(jp_peek(p))) { jp_adv(p); digits++; }
    int ok = digits > 0;
    if (ok && jp_peek(p) == '.') {
        jp_adv(p);
        digits = 0;
        while (is_digit(jp_peek(p))) { jp_adv(p); digits++; }
        ok = digits > 0;
    }
    if (ok && (jp_peek(p) == 'e' || jp_peek(p) == 'E')) {
        jp_adv(p);
        if (jp_peek(p) == '+' || jp_peek(p) == '-') jp_adv(p);
        digits = 0;
        while (is_digit(jp_peek(p))) { jp_adv(p); digits++; }
        ok = digits > 0;
    }
    size_t len = p->i - a;
    int shown = (int)(len > 40 ? 40 : len);
    const char *more = len > 40 ? "..." : "";
    if (!ok) return jp_fail_at(p, l0, c0, "malformed number '%.*s%s'", shown, p->b + a, more);
    double v;
    if (num_parse(p->b + a, len, &v) != 0)   /* the syntax is checked above: memory */
        return jp_fail_at(p, l0, c0, "out of memory reading the number '%.*s%s'", shown, p->b + a, more);
    if (!(v == floor(v))) return jp_fail_at(p, l0, c0, "note %.*s%s is not an integer", shown, p->b + a, more);
    if (!(v >= MUSIC_LOW && v <= MUSIC_HIGH))
        return jp_fail_at(p, l0, c0, "note %.*s%s out of range %d..%d", shown, p->b + a, more, MUSIC_LOW, MUSIC_HIGH);
    *note = (int)v;
    return 0;
}

/* One part: a list of sequences into s. */
static int jp_part(jp *p, seqset *s, int *nseq, size_t *frames)
{
    long ol, oc;
    if (jp_open(p, "the list of sequences", &ol, &oc) != 0) return -1;
    int cnt = 0, r;
    while ((r = jp_more(p, &cnt, ol, oc, "sequences")) == 1) {
        long sl, sc;
        if (jp_open(p, "a sequence (a list of steps)", &sl, &sc) != 0) return -1;
        int steps = 0, r2;
        size_t L = 0;
        while ((r2 = jp_more(p, &steps, sl, sc, "steps")) == 1) {
            if (L == (size_t)INT_MAX)
                return jp_fail_at(p, sl, sc, "the sequence has more than %d frames", INT_MAX);
            uint64_t *nf = grow(p->frames, &p->cap, L + 1, MUSIC_WORDS * sizeof *nf);
            if (!nf) return jp_fail_at(p, p->line, p->col, "out of memory for a sequence of %zu frames", L + 1);
            p->frames = nf;
            uint64_t *fr = p->frames + L * MUSIC_WORDS;
            memset(fr, 0, MUSIC_WORDS * sizeof *fr);
            long tl, tc;
            if (jp_open(p, "a step (a list of MIDI notes)", &tl, &tc) != 0) return -1;
            int notes = 0, r3, note = 0;
            while ((r3 = jp_more(p, &notes, tl, tc, "notes")) == 1) {
                if (jp_note(p, &note) != 0) return -1;
                int k = note - MUSIC_LOW;
                fr[k / 64] |= (uint64_t)1 << (k % 64);
            }
            if (r3 < 0) return -1;
            L++;
        }
        if (r2 < 0) return -1;
        if (*nseq == INT_MAX) return jp_fail_at(p, sl, sc, "too many sequences");
        (*nseq)++;
        *frames += L;
        if (L >= 2 && seqset_add_bits(s, (int)L, p->frames, p->err, p->errlen) != 0) return -1;
    }
    return r;
}

int music_load(seqdata *d, const char *path, char *err, size_t errlen)
{
    static const char *const keys[3] = {"train", "valid", "test"};
    seqdata r;
    memset(&r, 0, sizeof r);
    memset(d, 0, sizeof *d);
    jp p;
    memset(&p, 0, sizeof p);
    char *b;
    size_t n;
    char dd[32];
    if (data_read_file(path, &b, &n, err, errlen) != 0) return -1;
    p.path = path;
    p.b = b;
    p.n = n;
    p.line = p.col = 1;
    p.err = err;
    p.errlen = errlen;
    for (int k = 0; k < 3; k++)
        if (seqset_init_binary(&r.set[k], MUSIC_KEYS, SEQ_TGT_NEXT, err, errlen) != 0) goto fail;
    if (n >= 3 && memcmp(b, "\xef\xbb\xbf", 3) == 0) p.i = 3;   /* a UTF-8 byte order mark */
    jp_ws(&p);
    int c = jp_peek(&p);
    if (c != '{') {
        jp_fail_at(&p, p.line, p.col, "expected '{' (the start of the object), found %s", describe(c, dd, sizeof dd));
        goto fail;
    }
    long ol = p.line, oc = p.col, cl = 0, cc = 0;
    jp_adv(&p);
    int have[3] = {0, 0, 0};
    jp_ws(&p);
    if (jp_peek(&p) == '}') {
        cl = p.line;
        cc = p.col;
        jp_adv(&p);
    } else {
        for (;;) {
            jp_ws(&p);
            long kl = p.line, kc = p.col;
            c = jp_peek(&p);
            if (c != '"') {
                jp_fail_at(&p, kl, kc, "expected a key (\"train\", \"valid\" or \"test\"), found %s",
                           describe(c, dd, sizeof dd));
                goto fail;
            }
            jp_adv(&p);
            size_t ka = p.i;
            while ((c = jp_peek(&p)) >= 0 && c != '"' && c != '\n') {
                jp_adv(&p);
                if (c == '\\' && jp_peek(&p) >= 0 && jp_peek(&p) != '\n') jp_adv(&p);
            }
            if (c != '"') {
                jp_fail_at(&p, kl, kc, "unterminated string");
                goto fail;
            }
            size_t kl2 = p.i - ka;
            jp_adv(&p);
            int which = -1;
            for (int k = 0; k < 3; k++)
                if (kl2 == strlen(keys[k]) && memcmp(b + ka, keys[k], kl2) == 0) which = k;
            if (which < 0) {
                jp_fail_at(&p, kl, kc, "unknown key \"%.*s\" (expected \"train\", \"valid\" or \"test\")",
                           (int)(kl2 > 40 ? 40 : kl2), b + ka);
                goto fail;
            }
            if (have[which]) {
                jp_fail_at(&p, kl, kc, "duplicate key \"%s\"", keys[which]);
                goto fail;
            }
            have[which] = 1;
            jp_ws(&p);
            c = jp_peek(&p);
            if (c != ':') {
                jp_fail_at(&p, p.line, p.col, "expected ':' after the key \"%s\", found %s", keys[which],
                           describe(c, dd, sizeof dd));
                goto fail;
            }
            jp_adv(&p);
            if (jp_part(&p, &r.set[which], &r.nseq[which], &r.frames[which]) != 0) goto fail;
            jp_ws(&p);
            c = jp_peek(&p);
            if (c == ',') {
                jp_adv(&p);
                continue;
            }
            if (c == '}') {
                cl = p.line;
                cc = p.col;
                jp_adv(&p);
                break;
            }
            if (c < 0)
                jp_fail_at(&p, p.line, p.col, "unexpected end of file: unterminated object opened at line %ld, column %ld",
                           ol, oc);
            else
                jp_fail_at(&p, p.line, p.col, "expected ',' or '}' in the object, found %s", describe(c, dd, sizeof dd));
            goto fail;
        }
    }
    if (!have[DATA_TRAIN]) {
        jp_fail_at(&p, cl, cc, "the object has no \"train\" key");
        goto fail;
    }
    jp_ws(&p);
    if ((c = jp_peek(&p)) >= 0) {
        jp_fail_at(&p, p.line, p.col, "unexpected %s after the object", describe(c, dd, sizeof dd));
        goto fail;
    }
    free(p.frames);
    free(b);
    *d = r;
    return 0;
fail:
    free(p.frames);
    free(b);
    seqdata_free(&r);
    return -1;
}

/* ---- CSV ---------------------------------------------------------------------------------- */

/* Parses field [a, e) (spaces around allowed) as a finite float, '.' the decimal
 * point whatever the locale: 0, -1 when it is not one, -2 when memory is short. */
static int parse_float(const char *a, const char *e, float *v)
{
    while (a < e && is_blank((unsigned char)*a)) a++;
    while (e > a && is_blank((unsigned char)e[-1])) e--;
    float f;
    int rc = num_parse_float(a, (size_t)(e - a), &f);
    if (rc != 0) return rc;
    if (!isfinite(f)) return -1;
    *v = f;
    return 0;
}

int csv_load(seqset *out, const char *path, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *b;
    size_t n;
    if (data_read_file(path, &b, &n, err, errlen) != 0) return -1;
    float *v = NULL;
    size_t nv = 0, cap = 0, rows = 0;
    char **names = NULL;
    int cols = 0;
    long line = 0, first = 0;
    seqset r;
    memset(&r, 0, sizeof r);
    const char *p = b, *end = b + n;
    while (p < end) {
        const char *le = memchr(p, '\n', (size_t)(end - p));
        if (!le) le = end;
        const char *e = le;
        line++;
        if (e > p && e[-1] == '\r') e--;
        const char *q = p;
        while (q < e && is_blank((unsigned char)*q)) q++;
        if (q == e) {               /* a blank line */
            p = le + (le < end);
            continue;
        }
        int nf = 1;
        for (const char *t = p; t < e; t++) nf += *t == ',';
        if (first == 0) {
            first = line;
            cols = nf;
            int header = 0;
            const char *f = p;
            for (int j = 0; j < nf; j++) {
                const char *fe = memchr(f, ',', (size_t)(e - f));
                if (!fe) fe = e;
                float tmp;
                int rc = parse_float(f, fe, &tmp);
                if (rc == -2) goto oom;
                if (rc != 0) header = 1;
                f = fe + 1;
            }
            if (header) {
                names = calloc((size_t)nf, sizeof *names);
                if (!names) goto oom;
                f = p;
                for (int j = 0; j < nf; j++) {
                    const char *fe = memchr(f, ',', (size_t)(e - f));
                    if (!fe) fe = e;
                    const char *a = f, *z = fe;
                    while (a < z && is_blank((unsigned char)*a)) a++;
                    while (z > a && is_blank((unsigned char)z[-1])) z--;
                    names[j] = malloc((size_t)(z - a) + 1);
                    if (!names[j]) goto oom;
                    memcpy(names[j], a, (size_t)(z - a));
                    names[j][z - a] = 0;
                    f = fe + 1;
                }
                p = le + (le < end);
                continue;
            }
        }
        if (nf != cols) {
            data_fail(err, errlen, "%s:%ld: %d column%s, expected %d (as %s line %ld)", path, line, nf, nf == 1 ? "" : "s", cols,
                      names ? "the header," : "the first row,", first);
            goto fail;
        }
        float *nvp = grow(v, &cap, nv + (size_t)cols, sizeof *v);
        if (!nvp) goto oom;
        v = nvp;
        const char *f = p;
        for (int j = 0; j < cols; j++) {
            const char *fe = memchr(f, ',', (size_t)(e - f));
            if (!fe) fe = e;
            int rc = parse_float(f, fe, &v[nv + (size_t)j]);
            if (rc == -2) goto oom;
            if (rc != 0) {
                data_fail(err, errlen, "%s:%ld:%ld: field %d \"%.*s\" is not a finite number", path, line,
                          (long)(f - p) + 1, j + 1, (int)(fe - f > 40 ? 40 : fe - f), f);
                goto fail;
            }
            f = fe + 1;
        }
        nv += (size_t)cols;
        rows++;
        p = le + (le < end);
    }
    if (rows == 0) {
        data_fail(err, errlen, "%s: no data rows", path);
        goto fail;
    }
    if (rows > INT_MAX) {
        data_fail(err, errlen, "%s: %zu rows are too many for one sequence", path, rows);
        goto fail;
    }
    if (seqset_init(&r, cols, SEQ_TGT_NONE, 0, err, errlen) != 0 ||
        seqset_add(&r, (int)rows, v, NULL, 0, NULL, NULL, err, errlen) != 0)
        goto fail;
    r.names = names;
    free(v);
    free(b);
    *out = r;
    return 0;
oom:
    data_fail(err, errlen, "%s: out of memory", path);
fail:
    if (names)
        for (int j = 0; j < cols; j++) free(names[j]);
    free(names);
    free(v);
    free(b);
    seqset_free(&r);
    return -1;
}

/* ---- labelled text ------------------------------------------------------------------------ */

typedef struct i32vec { int32_t *v; size_t n, cap; } i32vec;

static int i32_push(i32vec *a, int32_t x)
{
    int32_t *nv = grow(a->v, &a->cap, a->n + 1, sizeof *nv);
    if (!nv) return -1;
    a->v = nv;
    a->v[a->n++] = x;
    return 0;
}

/* State shared by the parts of one labelled-text load. */
typedef struct tl {
    seqdata *d;
    int tags;               /* 0: classification lines; 1: word/tag lines */
    vocab_counter wc, lc;   /* training counters (provisional ids) */
    i32vec tok, tag;        /* the current line */
    char *err;
    size_t errlen;
} tl;

/* A word id: training counts it; other parts look it up, OOV -> <unk>. */
static int tl_word(tl *s, int part, const char *w, size_t wl)
{
    if (part == DATA_TRAIN) return counter_add(&s->wc, w, wl, s->err, s->errlen);
    int id = vocab_find(&s->d->words, w, wl);
    if (id < 0) {
        id = vocab_id(&s->d->words, DATA_UNK);
        if (id < 0) id = vocab_add(&s->d->words, DATA_UNK, strlen(DATA_UNK), s->err, s->errlen);
    }
    return id;
}

/* A label or tag id: training counts it; other parts must know it. */
static int tl_label(tl *s, int part, const char *path, long line, long col, const char *w, size_t wl)
{
    if (part == DATA_TRAIN) return counter_add(&s->lc, w, wl, s->err, s->errlen);
    int id = vocab_find(&s->d->labels, w, wl);
    if (id < 0) {
        if (col > 0)
            data_fail(s->err, s->errlen, "%s:%ld:%ld: tag \"%.*s\" does not occur in the training file", path, line,
                      col, (int)(wl > 40 ? 40 : wl), w);
        else
            data_fail(s->err, s->errlen, "%s:%ld: label \"%.*s\" does not occur in the training file", path, line,
                      (int)(wl > 40 ? 40 : wl), w);
    }
    return id;
}

static int tl_part(tl *s, int part, const char *path)
{
    char *b;
    size_t n;
    seqset *set = &s->d->set[part];
    if (data_read_file(path, &b, &n, s->err, s->errlen) != 0) return -1;
    const char *p = b, *end = b + n;
    long line = 0;
    while (p < end) {
        const char *le = memchr(p, '\n', (size_t)(end - p));
        if (!le) le = end;
        const char *e = le;
        line++;
        const char *q = p;
        while (q < e && is_blank((unsigned char)*q)) q++;
        if (q == e) {
            p = le + (le < end);
            continue;
        }
        s->tok.n = s->tag.n = 0;
        int32_t cls = 0;
        const char *w0 = p;
        if (!s->tags) {
            const char *tab = memchr(p, '\t', (size_t)(e - p));
            if (!tab) {
                data_fail(s->err, s->errlen, "%s:%ld: no tab between the label and the words", path, line);
                goto fail;
            }
            const char *a = p, *z = tab;
            while (a < z && is_blank((unsigned char)*a)) a++;
            while (z > a && is_blank((unsigned char)z[-1])) z--;
            if (a == z) {
                data_fail(s->err, s->errlen, "%s:%ld: an empty label", path, line);
                goto fail;
            }
            cls = tl_label(s, part, path, line, 0, a, (size_t)(z - a));
            if (cls < 0) goto fail;
            w0 = tab + 1;
        }
        for (const char *t = w0; t < e;) {
            if (is_blank((unsigned char)*t)) {
                t++;
                continue;
            }
            const char *wa = t;
            while (t < e && !is_blank((unsigned char)*t)) t++;
            size_t wl = (size_t)(t - wa);
            if (s->tags) {
                const char *slash = NULL;
                for (const char *u = wa; u < t; u++)
                    if (*u == '/') slash = u;
                if (!slash || slash == wa || slash + 1 == t) {
                    data_fail(s->err, s->errlen, "%s:%ld:%ld: token \"%.*s\" is not word/tag", path, line,
                              (long)(wa - p) + 1, (int)(wl > 40 ? 40 : wl), wa);
                    goto fail;
                }
                int tg = tl_label(s, part, path, line, (long)(slash - p) + 2, slash + 1, (size_t)(t - slash - 1));
                if (tg < 0) goto fail;
                wl = (size_t)(slash - wa);
                if (i32_push(&s->tag, tg) != 0) goto oom;
            }
            int id = tl_word(s, part, wa, wl);
            if (id < 0) goto fail;
            if (i32_push(&s->tok, id) != 0) goto oom;
        }
        if (s->tok.n == 0) {
            data_fail(s->err, s->errlen, "%s:%ld: no words after the label", path, line);
            goto fail;
        }
        if (s->tok.n > INT_MAX) {
            data_fail(s->err, s->errlen, "%s:%ld: too many words", path, line);
            goto fail;
        }
        if (seqset_add(set, (int)s->tok.n, NULL, s->tok.v, cls, s->tag.v, NULL, s->err, s->errlen) != 0) goto fail;
        p = le + (le < end);
    }
    if (set->n == 0) {
        data_fail(s->err, s->errlen, "%s: no sequences (only blank lines)", path);
        goto fail;
    }
    s->d->nseq[part] = set->n;
    s->d->frames[part] = set->off[set->n];
    free(b);
    return 0;
oom:
    data_fail(s->err, s->errlen, "%s: out of memory", path);
fail:
    free(b);
    return -1;
}

static int text_load(seqdata *d, int tags, const char *train, const char *valid, const char *test,
                     int max_vocab, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    if (max_vocab < 0) return data_fail(err, errlen, "%s: max_vocab %d < 0", train ? train : "(null)", max_vocab);
    seqdata r;
    memset(&r, 0, sizeof r);
    tl s;
    memset(&s, 0, sizeof s);
    s.d = &r;
    s.tags = tags;
    s.err = err;
    s.errlen = errlen;
    int32_t *wremap = NULL, *lremap = NULL;
    seq_target kind = tags ? SEQ_TGT_TAGS : SEQ_TGT_CLASS;
    for (int k = 0; k < 3; k++)
        if (seqset_init(&r.set[k], 0, kind, 0, err, errlen) != 0) goto fail;
    if (tl_part(&s, DATA_TRAIN, train) != 0) goto fail;
    wremap = malloc((size_t)s.wc.seen.n * sizeof *wremap);
    lremap = malloc((size_t)s.lc.seen.n * sizeof *lremap);
    if (!wremap || !lremap) {
        data_fail(err, errlen, "%s: out of memory", train);
        goto fail;
    }
    if (counter_finish(&s.wc, VOCAB_BY_FREQ, max_vocab, &r.words, wremap, NULL, err, errlen) != 0) goto fail;
    if (counter_finish(&s.lc, VOCAB_SORTED, 0, &r.labels, lremap, NULL, err, errlen) != 0) goto fail;
    seqset *t = &r.set[DATA_TRAIN];
    for (size_t i = 0; i < t->off[t->n]; i++) {
        t->tok[i] = wremap[t->tok[i]];
        if (tags) t->tag[i] = lremap[t->tag[i]];
    }
    if (!tags)
        for (int i = 0; i < t->n; i++) t->cls[i] = lremap[t->cls[i]];
    if (valid && tl_part(&s, DATA_VALID, valid) != 0) goto fail;
    if (test && tl_part(&s, DATA_TEST, test) != 0) goto fail;
    free(wremap);
    free(lremap);
    counter_free(&s.wc);
    counter_free(&s.lc);
    free(s.tok.v);
    free(s.tag.v);
    *d = r;
    return 0;
fail:
    free(wremap);
    free(lremap);
    counter_free(&s.wc);
    counter_free(&s.lc);
    free(s.tok.v);
    free(s.tag.v);
    seqdata_free(&r);
    return -1;
}

int text_class_load(seqdata *d, const char *train, const char *valid, const char *test,
                    int max_vocab, char *err, size_t errlen)
{
    return text_load(d, 0, train, valid, test, max_vocab, err, errlen);
}

int text_tags_load(seqdata *d, const char *train, const char *valid, const char *test,
                   int max_vocab, char *err, size_t errlen)
{
    return text_load(d, 1, train, valid, test, max_vocab, err, errlen);
}
