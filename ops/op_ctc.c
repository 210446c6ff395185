/* The CTC loss (Graves, Fernandez, Gomez & Schmidhuber 2006), exact, with the
 * log-softmax of the logits inside it, so that the gradient is the one with respect
 * to the logits: softmax - (posterior occupation of each class).
 *
 * Operands: logits [T*B, A] (row t*B+b, as rc_unroll stacks step outputs) or
 * [T, B, A]; labels int32 [B, S] (padded); label lengths int32 [B]; optionally the
 * sequence mask [T*B, 1] of rc_unroll (a sample's input length is its number of
 * leading ones). Parameters: i[0] the blank, i[1] the reduction (rc_ctc_reduction),
 * i[2] zero_infeasible.
 *
 * Numerics. Log space throughout, -inf for "impossible". Alpha (forward variables,
 * the emission at t included) and beta (backward variables, the emission at t
 * excluded) are computed only over the band of extended states that can be reached
 * from the start by step t and can still reach the end by counting steps,
 * [max(0, S'-2(T_b-t)), min(S'-1, 2t+1)] of S' = 2L+1 states (repeated labels make a
 * few more unreachable: they come out -inf). They are kept in double: a state's log value
 * can be hundreds below its step's best, where a float's spacing (3e-5 at 500) would
 * add up over the steps into visible gradient errors. The transcendentals need no
 * such range: each log-sum-exp of up to three predecessors takes exp of differences
 * to their maximum and the log of a sum in [1, 3], in float (fm_exp, fm_log, one
 * loop over the band that vectorises), an error of about 1e-7 per step whatever the
 * magnitude. The occupation of state s at step t is alpha_t(s) beta_t(s) / p; since
 * sum_s alpha_t(s) beta_t(s) = p at every t, it is computed as exp(v_s - max v) /
 * sum exp(v - max v) over the step's states (v = alpha + beta): the occupations of a
 * step sum to 1 whatever the magnitude of the logits.
 *
 * Work and memory. Forward: each valid row's log-sum-exp (rows split across threads),
 * then alpha, step by step, each thread owning a contiguous range of samples (split
 * by their work), so a step's rows of the logits and of alpha are read and written in
 * order. Backward: k * softmax into every valid row of the gradient (rows across
 * threads), then beta step by step from the end, subtracting k * occupation at the
 * classes of the states (samples across threads; a sample owns its rows). Each value
 * is computed the same way on any thread count. All memory is the plan's scratch
 * (aux), laid out by ctc_layout from the shapes; nothing is allocated in the loops. */
#include <math.h>
#include <string.h>
#include "fastmath.h"
#include "kernels.h"

enum { CTC_OK = 0, CTC_SHORT = 1, CTC_ZERO_PROB = 2 };   /* per-sample state */
#define PAD 2              /* entries on each side of a state row (-inf: no such state) */
#define LANES 16           /* independent accumulators of a row reduction */
/* Sample-parallel only above this many state-steps (and row-parallel above
 * OP_PAR_MIN logits): below, a parallel region costs more than it saves. */
#define CTC_PAR_MIN 16384

/* The scratch, carved from the instance's aux in this order (each part 64-aligned). */
typedef struct ctc_ws {
    int T, B, A, S, P;     /* steps, samples, classes, label padding, state-row stride */
    int32_t *tlen, *state; /* per sample: input length; CTC_OK / CTC_SHORT / CTC_ZERO_PROB */
    double *ll;            /* per sample: log-likelihood (-inf when none) */
    double *k;             /* per sample: its gradient's factor (backward) */
    double *lse;           /* per row t*B+b: log-sum-exp of its logits */
    int32_t *cls;          /* per sample, per state (row of P): the class it emits */
    double *skip;          /* per sample, per state: 0 where s-2 -> s may skip a blank, else -inf */
    double *alpha;         /* per step and sample: a row of P (PAD, states, PAD) */
    double *work;          /* per sample, rows of P: beta at even and odd steps, v, e (floats) */
} ctc_ws;

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

/* a * b * c bytes aligned, or SIZE_MAX on overflow. */
static size_t part(size_t a, size_t b, size_t c)
{
    size_t n;
    if (__builtin_mul_overflow(a, b, &n) || __builtin_mul_overflow(n, c, &n) || n > SIZE_MAX - 64)
        return SIZE_MAX;
    return up64(n);
}

/* The scratch layout of an instance; fills *w (pointers from base, which may be NULL
 * when only the size is wanted) and returns the bytes, SIZE_MAX on overflow. */
static size_t ctc_layout(const op_inst *it, char *base, ctc_ws *w)
{
    const tensor *x = it->in[0], *lab = it->in[1];
    size_t N = tensor_rows(x);
    w->A = tensor_cols(x);
    w->B = lab->shape[0];
    w->S = lab->shape[1];
    w->T = (int)(N / (size_t)w->B);
    w->P = 2 * w->S + 1 + 2 * PAD;
    size_t B = (size_t)w->B, P = (size_t)w->P;
    size_t sz[9] = { part(B, 4, 1), part(B, 4, 1), part(B, 8, 1), part(B, 8, 1), part(N, 8, 1),
                     part(B, P, 4), part(B, P, 8), part(N, P, 8), part(B, 4 * P, 8) };
    void **ptr[9] = { (void **)&w->tlen, (void **)&w->state, (void **)&w->ll, (void **)&w->k, (void **)&w->lse,
                      (void **)&w->cls, (void **)&w->skip, (void **)&w->alpha, (void **)&w->work };
    size_t off = 0;
    for (int k = 0; k < 9; k++) {
        if (sz[k] == SIZE_MAX || __builtin_add_overflow(off, sz[k], &off)) return SIZE_MAX;
        *ptr[k] = base ? base + off - sz[k] : NULL;
    }
    return off;
}

AUX_FN(aux_ctc)
{
    ctc_ws w;
    return ctc_layout(it, NULL, &w);
}

static void ctc_params(const op_params *par, int *blank, int *red, int *zero)
{
    *blank = par->i[0];
    *red = par->i[1];
    *zero = par->i[2];
}

SHAPE_FN(shape_ctc)
{
    char a[64], b[64];
    if (nin != 3 && nin != 4) {
        msgf(msg, OP_MSG, "takes logits, labels, label lengths and optionally a mask, got %d operands", nin);
        return -1;
    }
    const tensor *x = in[0], *lab = in[1], *len = in[2];
    if (x->dt != RC_F32 || (x->ndim != 2 && x->ndim != 3)) {
        tensor_shape_str(x, a, sizeof a);
        msgf(msg, OP_MSG, "logits %s must be float32 [T*B, classes] or [T, B, classes]", a);
        return -1;
    }
    if (lab->dt != RC_I32 || lab->ndim != 2) {
        tensor_shape_str(lab, a, sizeof a);
        msgf(msg, OP_MSG, "labels %s must be int32 [B, max label length]", a);
        return -1;
    }
    int B = lab->shape[0], A = tensor_cols(x);
    size_t rows = tensor_rows(x);
    if (len->dt != RC_I32 || len->ndim != 1 || len->shape[0] != B) {
        tensor_shape_str(len, a, sizeof a);
        msgf(msg, OP_MSG, "label lengths %s must be int32 [%d] (one per sample of labels [%d, %d])", a, B, B,
             lab->shape[1]);
        return -1;
    }
    if (rows % (size_t)B != 0 || (x->ndim == 3 && x->shape[1] != B)) {
        tensor_shape_str(x, a, sizeof a);
        msgf(msg, OP_MSG, "logits %s do not hold B = %d samples per step (B from labels [%d, %d])", a, B, B,
             lab->shape[1]);
        return -1;
    }
    if (nin == 4) {
        const tensor *m = in[3];
        if (m->dt != RC_F32 || m->size != rows || (m->ndim > 1 && tensor_cols(m) != 1)) {
            tensor_shape_str(m, a, sizeof a);
            tensor_shape_str(x, b, sizeof b);
            msgf(msg, OP_MSG, "mask %s must be float32 [%zu, 1], one value per row of logits %s", a, rows, b);
            return -1;
        }
    }
    int blank, red, zero;
    ctc_params(par, &blank, &red, &zero);
    if (blank < 0 || blank >= A) {
        msgf(msg, OP_MSG, "blank %d is not a class of %d (0..%d)", blank, A, A - 1);
        return -1;
    }
    if (red < RC_CTC_SUM || red > RC_CTC_NONE) {
        msgf(msg, OP_MSG, "unknown reduction %d", red);
        return -1;
    }
    out->dt = RC_F32;
    int n = red == RC_CTC_NONE ? B : 1;
    tensor_set_shape(out, 1, &n);
    return 0;
}

FLOPS_FN(flops_ctc)
{
    ctc_ws w;
    ctc_layout(it, NULL, &w);
    /* log-sum-exp of the logits, then about 12 per state and step (3 exp, 1 log) */
    return 4.0 * (double)it->in[0]->size + 12.0 * (double)w.B * w.T * (2 * w.S + 1);
}

unsigned overwrites_ctc(const op_inst *it)
{
    (void)it;
    return 1u;   /* the logits' gradient: every row is written (zeros past a sample's end) */
}


/* ---- checks before any work ---------------------------------------------------- */

/* Input lengths from the mask (all T without one), checked and stored in w->tlen;
 * each sample's labels and length checked; infeasible samples (input shorter than
 * L + repeated neighbours) marked CTC_SHORT, or an error when not zeroing them. */
static int ctc_check(const op_inst *it, const ctc_ws *w, char *msg)
{
    int blank, red, zero;
    ctc_params(it->par, &blank, &red, &zero);
    const int32_t *lab = it->in[1]->data, *len = it->in[2]->data;
    const float *mask = it->nin == 4 ? it->in[3]->data : NULL;
    int T = w->T, B = w->B, S = w->S, A = w->A, nshort = 0, first = -1, need1 = 0;
    for (int b = 0; b < B; b++) {
        int tl = T;
        if (mask) {
            tl = 0;
            for (int t = 0; t < T; t++) {
                float v = mask[(size_t)t * B + b];
                if (v != 0.0f && v != 1.0f) {
                    msgf(msg, OP_MSG, "sample %d: mask value %g at step %d (must be 0 or 1)", b, (double)v, t);
                    return -1;
                }
                if (v == 1.0f && tl < t) {
                    msgf(msg, OP_MSG, "sample %d: mask is 1 at step %d after 0 at step %d (valid steps come first)",
                         b, t, tl);
                    return -1;
                }
                tl += v == 1.0f;
            }
        }
        w->tlen[b] = tl;
        int L = len[b];
        if (L < 0) {
            msgf(msg, OP_MSG, "sample %d: label length %d is negative", b, L);
            return -1;
        }
        if (L > S) {
            msgf(msg, OP_MSG, "sample %d: label length %d exceeds the labels' padding %d", b, L, S);
            return -1;
        }
        if (L > T) {
            msgf(msg, OP_MSG, "sample %d: label length %d exceeds the %d steps of the batch", b, L, T);
            return -1;
        }
        int rep = 0;
        for (int k = 0; k < L; k++) {
            int32_t c = lab[(size_t)b * S + k];
            if (c < 0 || c >= A) {
                msgf(msg, OP_MSG, "sample %d: label %d is %d, not a class of %d (0..%d)", b, k, c, A, A - 1);
                return -1;
            }
            if (c == blank) {
                msgf(msg, OP_MSG, "sample %d: label %d is the blank (%d)", b, k, blank);
                return -1;
            }
            rep += k > 0 && c == lab[(size_t)b * S + k - 1];
        }
        w->state[b] = L + rep > tl ? CTC_SHORT : CTC_OK;
        if (w->state[b] == CTC_SHORT && nshort++ == 0) {
            first = b;
            need1 = L + rep;
        }
    }
    if (nshort && !zero) {
        msgf(msg, OP_MSG,
             "sample %d is infeasible: %d labels need at least %d steps (repeated labels need a blank between "
             "them), its input has %d; %d of %d samples are (zero_infeasible counts them as zero loss)",
             first, len[first], need1, w->tlen[first], nshort, B);
        return -1;
    }
    return 0;
}

/* ---- kernels of one row / one step of one sample ---------------------------------- */

/* log(sum(exp(x))) of n floats: the maximum, then exp(x - max) summed in LANES
 * float accumulators (a fixed order) and combined in double; NaN without a finite
 * maximum (no distribution). */
static double row_lse(const float *restrict x, int n)
{
    float mx[LANES], s[LANES];
    for (int l = 0; l < LANES; l++) mx[l] = -INFINITY, s[l] = 0;
    int a = 0;
    for (; a + LANES <= n; a += LANES)
        for (int l = 0; l < LANES; l++) mx[l] = x[a + l] > mx[l] ? x[a + l] : mx[l];
    float tail[LANES];   /* the last partial block, -inf beyond n: exp gives 0 there */
    for (int l = 0; l < LANES; l++) tail[l] = a + l < n ? x[a + l] : -INFINITY;
    for (int l = 0; l < LANES; l++) mx[l] = tail[l] > mx[l] ? tail[l] : mx[l];
    float m = mx[0];
    for (int l = 1; l < LANES; l++) m = mx[l] > m ? mx[l] : m;
    if (!isfinite(m)) return NAN;
    for (int b = 0; b + LANES <= a; b += LANES)
        for (int l = 0; l < LANES; l++) s[l] += fm_exp(x[b + l] - m);
    for (int l = 0; l < LANES; l++) s[l] += fm_exp(tail[l] - m);
    double t = 0;
    for (int l = 0; l < LANES; l++) t += s[l];
    return (double)m + log(t);
}

/* The band of extended states at step t of a sample with T steps and Sb states. */
static inline void band(int t, int T, int Sb, int *lo, int *hi)
{
    int l = Sb - 2 * (T - t), h = 2 * t + 1;
    *lo = l > 0 ? l : 0;
    *hi = h < Sb - 1 ? h : Sb - 1;
}

static void fill_ninf(double *r, int n)
{
    for (int i = 0; i < n; i++) r[i] = -INFINITY;
}

/* -inf on the two entries each side of the band [lo, hi] of a state row: all that the
 * next step reads outside the band (bands move by at most two states a step). */
static inline void pads_ninf(double *r, int lo, int hi)
{
    r[lo - 2] = r[lo - 1] = r[hi + 1] = r[hi + 2] = -INFINITY;
}

/* The largest of v[lo..hi] (doubles), in 8 lanes. */
static inline double band_max(const double *restrict v, int lo, int hi)
{
    double mx[8];
    for (int l = 0; l < 8; l++) mx[l] = -INFINITY;
    int s = lo;
    for (; s + 8 <= hi + 1; s += 8)
        for (int l = 0; l < 8; l++) mx[l] = v[s + l] > mx[l] ? v[s + l] : mx[l];
    for (; s <= hi; s++) mx[0] = v[s] > mx[0] ? v[s] : mx[0];
    double m = mx[0];
    for (int l = 1; l < 8; l++) m = mx[l] > m ? mx[l] : m;
    return m;
}

/* The sum of e[lo..hi] (floats), in LANES accumulators: a fixed order. */
static inline float band_sum(const float *restrict e, int lo, int hi)
{
    float acc[LANES] = { 0 };
    int s = lo;
    for (; s + LANES <= hi + 1; s += LANES)
        for (int l = 0; l < LANES; l++) acc[l] += e[s + l];
    for (; s <= hi; s++) acc[0] += e[s];
    float t = 0;
    for (int l = 0; l < LANES; l++) t += acc[l];
    return t;
}

/* out[s] = log(exp(a0[s]) + exp(a1[s]) + exp(a2[s] + sk[s])) + xr[cls[s]] - l for s
 * in [lo, hi] (with_emit; without it the emission term is left out), -inf where all
 * three are -inf: m + log(1 + exp(o1 - m) + exp(o2 - m)) with m the largest term and
 * o1, o2 the other two, their differences to m in float for exp, the sum in [1, 3]. */
static inline void lse3_row(double *restrict out, const double *restrict a0, const double *restrict a1,
                            const double *restrict a2, const double *restrict sk, const float *restrict xr,
                            const int32_t *restrict cls, double l, int with_emit, int lo, int hi)
{
    for (int s = lo; s <= hi; s++) {
        double x0 = a0[s], x1 = a1[s], x2 = a2[s] + sk[s];
        double h = x0 > x1 ? x0 : x1, o1 = x0 > x1 ? x1 : x0;
        double m = h > x2 ? h : x2, o2 = h > x2 ? x2 : h;
        float sum = 1.0f + fm_exp((float)(o1 - m)) + fm_exp((float)(o2 - m));
        double v = m + (double)fm_log(sum) + (with_emit ? (double)xr[cls[s]] - l : 0.0);
        out[s] = m == -INFINITY ? -INFINITY : v;
    }
}

/* Sample b's per-state classes and skip row (once per forward). */
static void ctc_rows(const ctc_ws *w, const int32_t *lab, int L, int blank, int b)
{
    int32_t *cls = w->cls + (size_t)b * w->P + PAD;
    double *skip = w->skip + (size_t)b * w->P + PAD;
    fill_ninf(skip - PAD, w->P);
    for (int s = -PAD; s < w->P - PAD; s++) cls[s] = blank;
    for (int s = 1; s < 2 * L + 1; s += 2) cls[s] = lab[s >> 1];
    for (int s = 3; s < 2 * L + 1; s += 2)
        if (lab[s >> 1] != lab[(s >> 1) - 1]) skip[s] = 0;
}

static inline double *alpha_row(const ctc_ws *w, int t, int b)
{
    return w->alpha + ((size_t)t * w->B + b) * w->P + PAD;
}

/* Alpha of sample b at step t (t < its length): the row from step t-1's. */
static void alpha_step(const ctc_ws *w, const float *x, int L, int t, int b)
{
    int Sb = 2 * L + 1, lo, hi;
    band(t, w->tlen[b], Sb, &lo, &hi);
    size_t r = (size_t)t * w->B + b;
    const float *xr = x + r * w->A;
    const int32_t *cls = w->cls + (size_t)b * w->P + PAD;
    double *cur = alpha_row(w, t, b), l = w->lse[r];
    pads_ninf(cur, lo, hi);
    if (t == 0) {
        for (int s = lo; s <= hi; s++) cur[s] = (double)xr[cls[s]] - l;
        return;
    }
    const double *prev = alpha_row(w, t - 1, b);
    lse3_row(cur, prev, prev - 1, prev - 2, w->skip + (size_t)b * w->P + PAD, xr, cls, l, 1, lo, hi);
}

/* Sample b's step t of the reverse sweep: the occupations of step t from alpha and
 * beta_t, k * them subtracted from the row's gradient at the states' classes, then
 * beta_{t-1}. Beta_t of the last step is set here. */
static void beta_step(const ctc_ws *w, const float *x, float *gx, int L, int blank, int t, int b)
{
    int T = w->tlen[b], Sb = 2 * L + 1, P = w->P, lo, hi;
    double *row = w->work + (size_t)b * 4 * P;
    double *bc = row + (size_t)(t & 1) * P + PAD, *bn = row + (size_t)((t + 1) & 1) * P + PAD;
    double *v = row + 2 * (size_t)P + PAD;
    float *e = (float *)(row + 3 * (size_t)P) + PAD;
    const int32_t *cls = w->cls + (size_t)b * P + PAD;
    size_t r = (size_t)t * w->B + b;
    band(t, T, Sb, &lo, &hi);
    if (t == T - 1) {
        fill_ninf(bc - PAD, P);
        bc[Sb - 1] = 0;
        if (Sb > 1) bc[Sb - 2] = 0;
    }
    /* occupations: exp(v - max v) / sum, v = alpha + beta over the step's states */
    const double *al = alpha_row(w, t, b);
    if (t > 0) {   /* this sample's next row of alpha, one sweep over the samples ahead */
        const char *nx = (const char *)(alpha_row(w, t - 1, b) + lo - PAD);
        for (int q = 0; q < (hi - lo + 8) * 8; q += 64) __builtin_prefetch(nx + q);
    }
    for (int s = lo; s <= hi; s++) v[s] = al[s] + bc[s];
    double m = band_max(v, lo, hi);
    if (m == -INFINITY) return;   /* cannot happen with a finite likelihood */
    for (int s = lo; s <= hi; s++) e[s] = fm_exp((float)(v[s] - m));
    float sum = band_sum(e, lo, hi), labels = 0;
    double ks = w->k[b] / (double)sum;
    float *g = gx + r * w->A;
    for (int s = lo | 1; s <= hi; s += 2) {   /* the label states; the blank takes the rest */
        g[cls[s]] -= (float)(ks * e[s]);
        labels += e[s];
    }
    g[blank] -= (float)(ks * (double)(sum - labels));
    if (t == 0) return;
    /* beta_{t-1}(s) = log sum over s' in {s, s+1, s+2} of exp(beta_t(s') + logp_t(s')) */
    const float *xr = x + r * w->A;
    double l = w->lse[r];
    for (int s = lo; s <= hi; s++) v[s] = bc[s] + ((double)xr[cls[s]] - l);
    pads_ninf(v, lo, hi);
    int lo1, hi1;
    band(t - 1, T, Sb, &lo1, &hi1);
    lse3_row(bn, v, v + 1, v + 2, w->skip + (size_t)b * P + PAD + 2, NULL, NULL, 0, 0, lo1, hi1);
}

/* The samples of thread id out of n: a contiguous range [*b0, *b1), by equal shares of
 * the work (state-steps), the same for every call with the same lengths. */
static void sample_range(const ctc_ws *w, const int32_t *len, int n, int id, int *b0, int *b1)
{
    double total = 0, cum = 0;
    for (int b = 0; b < w->B; b++)
        if (w->state[b] == CTC_OK) total += (double)w->tlen[b] * (2 * len[b] + 1);
    *b0 = w->B;
    *b1 = w->B;
    for (int b = 0, first = 1; b < w->B; b++) {
        double wb = w->state[b] == CTC_OK ? (double)w->tlen[b] * (2 * len[b] + 1) : 0;
        int owner = total > 0 ? (int)((cum + 0.5 * wb) / total * n) : 0;
        owner = owner < n ? owner : n - 1;
        cum += wb;
        if (owner == id && first) *b0 = b, first = 0;
        if (owner > id) {
            *b1 = b;
            break;
        }
    }
    if (*b0 > *b1) *b0 = *b1;
}

/* The alpha sweep of samples [b0, b1), step by step; then their log-likelihoods. */
static void alpha_range(const ctc_ws *w, const float *x, const int32_t *len, int b0, int b1)
{
    int Tmax = 0;
    for (int b = b0; b < b1; b++) Tmax = w->state[b] == CTC_OK && w->tlen[b] > Tmax ? w->tlen[b] : Tmax;
    for (int t = 0; t < Tmax; t++)
        for (int b = b0; b < b1; b++)
            if (w->state[b] == CTC_OK && t < w->tlen[b]) alpha_step(w, x, len[b], t, b);
    for (int b = b0; b < b1; b++) {
        if (w->state[b] != CTC_OK) continue;
        int T = w->tlen[b], Sb = 2 * len[b] + 1;
        if (T == 0) {   /* only an empty label sequence gets here (feasibility): probability 1 */
            w->ll[b] = 0;
            continue;
        }
        const double *fin = alpha_row(w, T - 1, b);
        double a = fin[Sb - 1], c = Sb > 1 ? fin[Sb - 2] : -INFINITY, m = a > c ? a : c;
        w->ll[b] = m == -INFINITY ? -INFINITY : m + log(exp(a - m) + exp(c - m));
        if (w->ll[b] == -INFINITY) w->state[b] = CTC_ZERO_PROB;   /* only with -inf logits */
    }
}

/* The beta sweep of samples [b0, b1), from the last step back. */
static void beta_range(const ctc_ws *w, const float *x, float *gx, const int32_t *len, int blank, int b0, int b1)
{
    int Tmax = 0;
    for (int b = b0; b < b1; b++) Tmax = w->k[b] != 0 && w->tlen[b] > Tmax ? w->tlen[b] : Tmax;
    for (int t = Tmax - 1; t >= 0; t--)
        for (int b = b0; b < b1; b++)
            if (w->k[b] != 0 && t < w->tlen[b]) beta_step(w, x, gx, len[b], blank, t, b);
}

/* Each sample's gradient factor into w->k: the incoming gradient times d out /
 * d loss_b; 0 for a sample without a feasible alignment (its gradient is 0). */
static void ctc_scales(const op_inst *it, const ctc_ws *w)
{
    int blank, red, zero;
    ctc_params(it->par, &blank, &red, &zero);
    const float *g = it->gout;
    const int32_t *len = it->in[2]->data;
    double f = 1.0, n = 0;
    for (int b = 0; b < w->B; b++) n += len[b];
    if (red == RC_CTC_MEAN_BATCH) f = 1.0 / w->B;
    if (red == RC_CTC_MEAN_LABEL) f = 1.0 / (n > 0 ? n : 1.0);
    for (int b = 0; b < w->B; b++)
        w->k[b] = w->state[b] != CTC_OK ? 0.0 : red == RC_CTC_NONE ? (double)g[b] : (double)g[0] * f;
}

/* Runs fn over the samples split across threads when the work is worth a parallel
 * region, else over all of them. */
#define SAMPLE_PAR(w, len, work, CALL)                                                  \
    do {                                                                                \
        if ((work) >= CTC_PAR_MIN && (w)->B > 1 && op_threads() > 1) {                  \
            _Pragma("omp parallel")                                                     \
            {                                                                           \
                int b0, b1;                                                             \
                sample_range((w), (len), op_team_size(), op_team_id(), &b0, &b1);       \
                CALL;                                                                   \
            }                                                                           \
        } else {                                                                        \
            int b0 = 0, b1 = (w)->B;                                                    \
            CALL;                                                                       \
        }                                                                               \
    } while (0)

/* ---- forward and backward ---------------------------------------------------------- */

FWD_FN(fwd_ctc)
{
    ctc_ws w;
    ctc_layout(it, it->aux, &w);
    if (ctc_check(it, &w, msg) != 0) return -1;
    int blank, red, zero;
    ctc_params(it->par, &blank, &red, &zero);
    const float *x = it->in[0]->data;
    const int32_t *lab = it->in[1]->data, *len = it->in[2]->data;
    size_t N = (size_t)w.T * (size_t)w.B, A = (size_t)w.A, work = 0;
    int B = w.B;
    for (int b = 0; b < B; b++) {
        ctc_rows(&w, lab + (size_t)b * w.S, len[b], blank, b);
        work += (size_t)w.tlen[b] * (size_t)(2 * len[b] + 1);
    }
    /* each needed row's log-sum-exp */
    PAR_FOR(N * A >= OP_PAR_MIN, r, N,
        int b = (int)(r % (size_t)B);
        if (w.state[b] == CTC_OK && (int)(r / (size_t)B) < w.tlen[b]) w.lse[r] = row_lse(x + r * A, w.A);
    );
    SAMPLE_PAR(&w, len, work, alpha_range(&w, x, len, b0, b1));
    float *o = it->out->data;
    double sum = 0, labels = 0;
    for (int b = 0; b < B; b++) {
        double lb = w.state[b] == CTC_OK ? -w.ll[b] : zero ? 0.0 : INFINITY;
        if (red == RC_CTC_NONE) o[b] = (float)lb;
        sum += lb;
        labels += len[b];
    }
    if (red == RC_CTC_SUM) o[0] = (float)sum;
    else if (red == RC_CTC_MEAN_BATCH) o[0] = (float)(sum / B);
    else if (red == RC_CTC_MEAN_LABEL) o[0] = (float)(sum / (labels > 0 ? labels : 1.0));
    return 0;
}

BWD_FN(bwd_ctc)
{
    float *gx = it->gin[0];
    if (!gx) return;
    ctc_ws w;
    ctc_layout(it, it->aux, &w);
    int blank, red, zero;
    ctc_params(it->par, &blank, &red, &zero);
    const float *x = it->in[0]->data;
    const int32_t *len = it->in[2]->data;
    size_t N = (size_t)w.T * (size_t)w.B, A = (size_t)w.A, work = 0;
    int B = w.B, fresh = (int)(it->gfresh & 1u);
    ctc_scales(it, &w);
    for (int b = 0; b < B; b++) work += w.k[b] != 0 ? (size_t)w.tlen[b] * (size_t)(2 * len[b] + 1) : 0;
    /* k * softmax in every valid row; 0 in the others (or nothing added) */
    PAR_FOR(N * A >= OP_PAR_MIN, r, N,
        int b = (int)(r % (size_t)B);
        float k = (int)(r / (size_t)B) < w.tlen[b] ? (float)w.k[b] : 0.0f;
        const float *xr = x + r * A;
        float *g = gx + r * A;
        if (k != 0.0f) {
            float l = (float)w.lse[r];
            if (fresh)
                for (size_t a = 0; a < A; a++) g[a] = k * fm_exp(xr[a] - l);
            else
                for (size_t a = 0; a < A; a++) g[a] += k * fm_exp(xr[a] - l);
        } else if (fresh) {
            memset(g, 0, A * sizeof *g);
        }
    );
    SAMPLE_PAR(&w, len, work, beta_range(&w, x, gx, len, blank, b0, b1));
}

int ctc_report(const op_inst *it, int32_t *samples, int max)
{
    ctc_ws w;
    ctc_layout(it, it->aux, &w);
    int n = 0;
    for (int b = 0; b < w.B; b++)
        if (w.state[b] != CTC_OK) {
            if (samples && n < max) samples[n] = b;
            n++;
        }
    return n;
}
