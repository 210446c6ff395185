/* Tent-filter resizing of gray images: see resample.h. Separable: rows are resized
 * first (h -> oh, every column), then columns (w -> ow, every row), each output
 * sample a normalised weighted sum of the input samples its filter covers. */
#include "resample.h"

#include <math.h>
#include <stdlib.h>

double resample_width(int w, int h, int oh)
{
    double ow = floor((double)w * (double)oh / (double)h + 0.5);
    return ow < 1 ? 1 : ow;
}

/* The taps of one axis: output o reads inputs first[o] .. first[o] + n[o] - 1 with
 * weights wt[o * maxn ...], summing to 1. */
typedef struct taps {
    int *first, *n, maxn;
    float *wt;
} taps;

static void taps_free(taps *t)
{
    free(t->first);
    free(t->n);
    free(t->wt);
}

static int taps_make(taps *t, int in, int out)
{
    double scale = (double)in / (double)out, support = scale > 1 ? scale : 1;
    t->maxn = (int)ceil(2 * support) + 2;
    t->first = malloc((size_t)out * sizeof *t->first);
    t->n = malloc((size_t)out * sizeof *t->n);
    t->wt = malloc((size_t)out * (size_t)t->maxn * sizeof *t->wt);
    if (!t->first || !t->n || !t->wt) {
        taps_free(t);
        return -1;
    }
    for (int o = 0; o < out; o++) {
        double c = (o + 0.5) * scale - 0.5;   /* the output's centre in input coordinates */
        int lo = (int)floor(c - support) + 1, hi = (int)ceil(c + support) - 1;
        if (lo < 0) lo = 0;
        if (hi > in - 1) hi = in - 1;
        if (hi - lo + 1 > t->maxn) hi = lo + t->maxn - 1;
        float *w = t->wt + (size_t)o * (size_t)t->maxn;
        double sum = 0;
        int k = 0;
        for (int i = lo; i <= hi; i++, k++) {
            double v = 1 - fabs(i - c) / support;
            w[k] = (float)(v > 0 ? v : 0);
            sum += w[k];
        }
        if (sum <= 0) {   /* cannot happen (the nearest input weighs >= 1/2); kept total */
            lo = (int)floor(c + 0.5);
            lo = lo < 0 ? 0 : lo > in - 1 ? in - 1 : lo;
            k = 1;
            w[0] = 1;
            sum = 1;
        }
        for (int j = 0; j < k; j++) w[j] = (float)(w[j] / sum);
        t->first[o] = lo;
        t->n[o] = k;
    }
    return 0;
}

int resample_f32(const float *in, int w, int h, float *out, int ow, int oh)
{
    taps ty = {0}, tx = {0};
    float *mid = malloc((size_t)oh * (size_t)w * sizeof *mid);
    if (!mid || taps_make(&ty, h, oh) != 0 || taps_make(&tx, w, ow) != 0) {
        free(mid);
        taps_free(&ty);
        taps_free(&tx);
        return -1;
    }
    for (int o = 0; o < oh; o++) {   /* rows: mid[o][x] = sum_k wt * in[first + k][x] */
        float *m = mid + (size_t)o * (size_t)w;
        const float *wt = ty.wt + (size_t)o * (size_t)ty.maxn;
        for (int x = 0; x < w; x++) m[x] = 0;
        for (int k = 0; k < ty.n[o]; k++) {
            const float *row = in + (size_t)(ty.first[o] + k) * (size_t)w;
            for (int x = 0; x < w; x++) m[x] += wt[k] * row[x];
        }
    }
    for (int y = 0; y < oh; y++) {   /* columns */
        const float *m = mid + (size_t)y * (size_t)w;
        float *d = out + (size_t)y * (size_t)ow;
        for (int o = 0; o < ow; o++) {
            const float *wt = tx.wt + (size_t)o * (size_t)tx.maxn, *s = m + tx.first[o];
            float acc = 0;
            for (int k = 0; k < tx.n[o]; k++) acc += wt[k] * s[k];
            d[o] = acc;
        }
    }
    free(mid);
    taps_free(&ty);
    taps_free(&tx);
    return 0;
}
