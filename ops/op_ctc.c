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
 * States as pairs. The 2L+1 extended states are held as pairs j = 0..L: the blank
 * before label j and label j (label L does not exist: its emission is -inf), in two
 * arrays. Alpha (forward variables, the emission at t included) is then, with
 * U_j = lse(blank_{t-1}[j], label_{t-1}[j-1]):
 *   blank_t[j] = U_j + e_t(blank),
 *   label_t[j] = lse(label_{t-1}[j], skip_j ? U_j : blank_{t-1}[j]) + e_t(label j),
 * skip_j meaning label j differs from label j-1 (the blank between may be skipped):
 * two log-add-exps of two terms per pair, one exp and one log per state, in one
 * straight loop over the pairs. Beta (backward variables, the emission at t excluded)
 * is the mirror image, with W_j = lse(vblank_t[j], vlabel_t[j]) (v: beta + emission):
 *   blank_{t-1}[j] = W_j,
 *   label_{t-1}[j] = lse(vlabel_t[j], skip_{j+1} ? W_{j+1} : vblank_t[j+1]).
 *
 * Numerics. Log space throughout, -inf for "impossible". Alpha and beta are doubles: a
 * state's log value can be hundreds below its step's best, where a float's spacing
 * (3e-5 at 500) would add up over the steps into visible gradient errors. Each
 * log-add-exp takes its exp and log in float (logaddexp.h) of a difference to the
 * maximum and of a value in [0, 1], where float's error is an absolute ~1e-7 whatever
 * the magnitude. Only the band of states that can be reached from the start by step t
 * and can still reach the end by counting steps, [max(0, S'-2(T_b-t)), min(S'-1, 2t+1)]
 * of S' = 2L+1, is computed, rounded out to whole groups of V pairs (a vector); what
 * the next step reads beyond them is set to -inf. States inside the groups but outside
 * the band come out -inf where the other sweep reads them (unreachable) or are never
 * combined with an in-band state (cannot reach the end). The occupation of state s at
 * step t is alpha_t(s) beta_t(s) / p, exp(alpha + beta - log p) in float (at most 1),
 * divided by the step's sum (1 up to rounding): the occupations of a step sum to 1
 * whatever the magnitude of the logits.
 *
 * Work and memory. Samples across threads, each thread a contiguous range of them
 * (split by their work), which it runs step by step: at each (step, sample) the row's
 * log-sum-exp and then the sample's alpha step (forward); k * softmax into the row of
 * the gradient, the occupations subtracted at the states' classes, then the beta step
 * (backward). A row of the logits is thus used while in cache. With fewer samples
 * than threads, the rows' parts run first in a row-parallel pass. Each value is
 * computed the same way on any thread count. Alpha is kept for every step (backward
 * needs it), a padded row per step and sample of which the step writes its groups and
 * the pads; beta runs in two padded rows per sample (by the step's parity). All memory
 * is the plan's scratch (aux), laid out by ctc_layout from the shapes; nothing is
 * allocated in the loops. */
#include <limits.h>
#include <math.h>
#include <string.h>
#include "kernels.h"
#include "logaddexp.h"

enum { CTC_OK = 0, CTC_SHORT = 1, CTC_ZERO_PROB = 2 };   /* per-sample state */
#define V 8                /* pairs per group: the recursions run over whole groups */
/* Sample-parallel only above this much work (sample_work): below, a parallel region
 * costs more than it saves. */
#define CTC_PAR_MIN 16384

/* The scratch, carved from the instance's aux in this order (each part 64-aligned). */
typedef struct ctc_ws {
    int T, B, A, S;        /* steps, samples, classes, label padding */
    int R0, RW;            /* pair slots of a row: S+1 rounded up to V; with V of pad each side */
    int32_t *tlen, *state; /* per sample: input length; CTC_OK / CTC_SHORT / CTC_ZERO_PROB */
    double *ll;            /* per sample: log-likelihood (-inf when none, NaN on bad logits) */
    double *k;             /* per sample: its gradient's factor (backward) */
    double *lse;           /* per row t*B+b: log-sum-exp of its logits */
    float *rstat;          /* per row: its maximum and 1 / sum exp(x - maximum) */
    int32_t *lcls;         /* per sample, RW slots from -V: label j's class (the blank past L) */
    double *lmask;         /* per sample, RW slots: 0 for j < L, -inf from L on */
    int64_t *skip;         /* per sample, RW slots: 1 where label j may follow label j-1 */
    double *alpha;         /* per row t*B+b: a padded row of blank pairs, one of label pairs */
    double *work;          /* per sample WORK_D: beta's two padded rows (blank RW, label RW), RW, RW floats */
} ctc_ws;

/* Doubles of a sample's work area: beta's running rows of both parities, its
 * v-label row, and the label occupations (floats). */
#define WORK_D(w) ((size_t)11 * (size_t)(w)->RW / 2)

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
    if (w->S > INT_MAX - 4 * V) return SIZE_MAX;
    w->R0 = (w->S + V) / V * V;
    w->RW = w->R0 + 2 * V;
    size_t B = (size_t)w->B, RW = (size_t)w->RW;
    size_t sz[11] = { part(B, 4, 1),  part(B, 4, 1),  part(B, 8, 1),      part(B, 8, 1),
                      part(N, 8, 1),  part(N, 8, 1),  part(B, RW, 4),     part(B, RW, 8),
                      part(B, RW, 8), part(N, 2 * RW, 8), part(B, WORK_D(w), 8) };
    void **ptr[11] = { (void **)&w->tlen,  (void **)&w->state, (void **)&w->ll,    (void **)&w->k,
                       (void **)&w->lse,   (void **)&w->rstat, (void **)&w->lcls,  (void **)&w->lmask,
                       (void **)&w->skip,  (void **)&w->alpha, (void **)&w->work };
    size_t off = 0;
    for (int k = 0; k < 11; k++) {
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

/* ---- one row of the logits ------------------------------------------------------- */

/* The sum of 8 floats in a fixed order (a tree). */
static inline float sum8(const float *v)
{
    float a[4], b[2];
    for (int l = 0; l < 4; l++) a[l] = v[l] + v[l + 4];
    for (int l = 0; l < 2; l++) b[l] = a[l] + a[l + 2];
    return b[0] + b[1];
}

/* x[a..n) (n - a < 8) in 8 slots, -inf in the others (exp gives 0 there): the last 8
 * entries of x with those before a masked out, or x[a..n) first when n < 8. */
static inline void tail8(float *restrict t, const float *restrict x, int a, int n)
{
    if (n >= 8)
        for (int l = 0; l < 8; l++) t[l] = n - 8 + l >= a ? x[n - 8 + l] : -INFINITY;
    else
        for (int l = 0; l < 8; l++) t[l] = a + l < n ? x[a + l] : -INFINITY;
}

/* The largest of x[0..n) (NaNs passed over), in vectors of 8 (GCC's vector
 * extension: the compiler does not vectorise a max reduction of floats written in C
 * without -ffinite-math-only) with two accumulators, then in a fixed order. */
static float row_max(const float *restrict x, int n)
{
    typedef float f8 __attribute__((vector_size(32)));
    typedef int32_t i8 __attribute__((vector_size(32)));
    f8 m0, m1, v, u;
    for (int l = 0; l < 8; l++) m0[l] = -INFINITY;
    m1 = m0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        memcpy(&v, x + i, sizeof v);
        memcpy(&u, x + i + 8, sizeof u);
        i8 kv = v > m0, ku = u > m1;
        m0 = (f8)((kv & (i8)v) | (~kv & (i8)m0));
        m1 = (f8)((ku & (i8)u) | (~ku & (i8)m1));
    }
    for (; i + 8 <= n; i += 8) {
        memcpy(&v, x + i, sizeof v);
        i8 kv = v > m0;
        m0 = (f8)((kv & (i8)v) | (~kv & (i8)m0));
    }
    if (i < n && n >= 8) {   /* the last 8 again: a maximum does not mind */
        memcpy(&v, x + n - 8, sizeof v);
        i8 kv = v > m0;
        m0 = (f8)((kv & (i8)v) | (~kv & (i8)m0));
        i = n;
    }
    float m = -INFINITY;
    for (int l = 0; l < 8; l++) {
        m = m0[l] > m ? m0[l] : m;
        m = m1[l] > m ? m1[l] : m;
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* log(sum(exp(x))) of n floats: the maximum, then exp(x - max) summed in blocks of 8
 * with two accumulators (a fixed order). st gets the maximum and 1 / the sum
 * (backward's softmax). NaN without a finite maximum or with a NaN among x (no
 * distribution). */
static double row_lse(const float *restrict x, int n, float *restrict st)
{
    enum { W = 8 };
    float s0[W], s1[W], t[W], m = row_max(x, n);
    if (!isfinite(m)) {
        st[0] = st[1] = NAN;
        return NAN;
    }
    int a = n - n % (2 * W), c = n - n % W;   /* [0, a) in pairs of blocks, [a, c) one block */
    for (int l = 0; l < W; l++) s0[l] = s1[l] = 0;
    for (int i = 0; i < a; i += 2 * W)
        for (int l = 0; l < W; l++) {
            s0[l] += la_exp_any(x[i + l] - m);
            s1[l] += la_exp_any(x[i + W + l] - m);
        }
    for (int i = a; i < c; i += W)
        for (int l = 0; l < W; l++) s0[l] += la_exp_any(x[i + l] - m);
    tail8(t, x, c, n);
    for (int l = 0; l < W; l++) {
        s1[l] += la_exp_any(t[l] - m);
        s0[l] += s1[l];
    }
    float sum = sum8(s0);
    st[0] = m;
    st[1] = 1.0f / sum;
    return (double)m + log((double)sum);
}

/* g = k * softmax(x) (fresh), else g += it, from the row's maximum and 1 / sum. */
static void row_softmax(float *restrict g, const float *restrict x, int n, float k, const float *st, int fresh)
{
    enum { W = 8 };
    float m = st[0], c = k * st[1], t[W];
    int a = n - n % W;
    if (fresh)
        for (int i = 0; i < a; i += W)
            for (int l = 0; l < W; l++) g[i + l] = c * la_exp_lo(x[i + l] - m);
    else
        for (int i = 0; i < a; i += W)
            for (int l = 0; l < W; l++) g[i + l] += c * la_exp_lo(x[i + l] - m);
    if (a == n) return;
    if (n >= W && fresh) {   /* the last W entries again: the same values */
        for (int l = 0; l < W; l++) g[n - W + l] = c * la_exp_lo(x[n - W + l] - m);
    } else if (n >= W) {     /* the last W entries, those before a adding 0 */
        tail8(t, x, a, n);
        for (int l = 0; l < W; l++) g[n - W + l] += c * la_exp_lo(t[l] - m);
    } else {
        for (int i = 0; i < n; i++) g[i] = (fresh ? 0.0f : g[i]) + c * la_exp_lo(x[i] - m);
    }
}

/* ---- one step of one sample ------------------------------------------------------- */

/* The band of extended states at step t of a sample with T steps and Sb states. */
static inline void band(int t, int T, int Sb, int *lo, int *hi)
{
    int l = Sb - 2 * (T - t), h = 2 * t + 1;
    *lo = l > 0 ? l : 0;
    *hi = h < Sb - 1 ? h : Sb - 1;
}

/* The pair groups [*g0, *g1) covering the band [lo, hi], in slots of a row of R0. */
static inline void band_groups(int lo, int hi, int R0, int *g0, int *g1)
{
    int e = ((hi >> 1) + V) / V * V;
    *g0 = (lo >> 1) / V * V;
    *g1 = e < R0 ? e : R0;
}

/* Sample b's label tables (once per forward): each pair's label class, the -inf
 * mask of labels that do not exist, where a label may follow the one before. */
static void ctc_rows(const ctc_ws *w, const int32_t *lab, int L, int blank, int b)
{
    size_t o = (size_t)b * w->RW + V;
    int32_t *lc = w->lcls + o;
    double *lm = w->lmask + o;
    int64_t *sk = w->skip + o;
    for (int j = -V; j < w->RW - V; j++) {
        int in = j >= 0 && j < L;
        lc[j] = in ? lab[j] : blank;
        lm[j] = in ? 0.0 : -INFINITY;
        sk[j] = in && j >= 1 && lab[j] != lab[j - 1];
    }
}

/* Sample b's running row of beta (blank slots; label slots at + RW) of step t's parity. */
static inline double *beta_row(const ctc_ws *w, int b, int t)
{
    return w->work + (size_t)b * WORK_D(w) + (size_t)(t & 1) * 2 * (size_t)w->RW + V;
}

/* Alpha of sample b at step t: its blank slots (label slots at + RW). */
static inline double *alpha_row(const ctc_ws *w, int t, int b)
{
    return w->alpha + ((size_t)t * w->B + b) * 2 * (size_t)w->RW + V;
}

/* The loops of a step over whole groups of pair slots [g0, g1), as functions of their
 * own so that their pointers are restrict parameters (what lets the compiler vectorise
 * them); not inlined, where GCC 12 spills less (about 2% fewer instructions). */
#define KERNEL __attribute__((noinline)) static

/* Alpha at step t (the c rows) from step t-1's (the p rows), U_j through u. Two loops:
 * within each, the groups are independent chains (a label's log-add-exp waits for its
 * U's, about 100 cycles, which one loop would leave the out-of-order window to hide). */
KERNEL void alpha_pairs(double *restrict cB, double *restrict cL, double *restrict u, const double *restrict pB,
                        const double *restrict pL, const float *restrict xr, const int32_t *restrict lc,
                        const double *restrict lm, const int64_t *restrict sk, double eb, double l, int g0, int g1)
{
    for (int j0 = g0; j0 < g1; j0 += V)
        for (int q = 0; q < V; q++) {
            int j = j0 + q;
            u[j] = logaddexp(pB[j], pL[j - 1]);
            cB[j] = u[j] + eb;
        }
    for (int j0 = g0; j0 < g1; j0 += V)
        for (int q = 0; q < V; q++) {
            int j = j0 + q;
            double uj = u[j], pb = pB[j];   /* both loaded: a select, not a masked load */
            cL[j] = logaddexp(pL[j], sk[j] ? uj : pb) + (lm[j] + ((double)xr[lc[j]] - l));
        }
}

/* The argument of an occupation's exp, alpha + beta - log p: at most 0 but for
 * rounding, -inf where a state is unreachable; clamped below at -88 (e^-88 is 0). */
static inline float occ_arg(double v)
{
    float x = (float)v;
    return x > -88.0f ? x : -88.0f;
}

/* Step t's occupations exp(alpha + beta - ll) over [g0, g1), the labels' into ef;
 * returns their sum, the blanks' in *blanks (V lanes, a fixed order). */
KERNEL float occupations(const double *restrict aB, const double *restrict aL, const double *restrict bB,
                         const double *restrict bL, float *restrict ef, double ll, int g0, int g1, float *blanks)
{
    float sb[V], sl[V];
    for (int q = 0; q < V; q++) sb[q] = sl[q] = 0;
    for (int j0 = g0; j0 < g1; j0 += V)
        for (int q = 0; q < V; q++) {
            int j = j0 + q;
            float eB = la_exp(occ_arg(aB[j] + bB[j] - ll)), eL = la_exp(occ_arg(aL[j] + bL[j] - ll));
            sb[q] += eB;
            sl[q] += eL;
            ef[j] = eL;
        }
    *blanks = sum8(sb);
    return *blanks + sum8(sl);
}

/* Beta at step t-1 over [h0, h1) from step t's b rows (valid through h1) into the n
 * rows, W_h1 = w1 (read by label h1-1); vl gets beta + emission of the labels. */
KERNEL void beta_pairs(double *restrict nB, double *restrict nL, double *restrict vl, const double *restrict bB,
                       const double *restrict bL, const float *restrict xr, const int32_t *restrict lc,
                       const double *restrict lm, const int64_t *restrict sk, double eb, double l, double w1,
                       int h0, int h1)
{
    for (int j0 = h0; j0 < h1; j0 += V)
        for (int q = 0; q < V; q++) {
            int j = j0 + q;
            double v = bL[j] + (lm[j] + ((double)xr[lc[j]] - l));
            vl[j] = v;
            nB[j] = logaddexp(bB[j] + eb, v);
        }
    nB[h1] = w1;
    for (int j0 = h0; j0 < h1; j0 += V)
        for (int q = 0; q < V; q++) {
            int j = j0 + q;
            double wn = nB[j + 1], vn = bB[j + 1] + eb;   /* both loaded: a select */
            nL[j] = logaddexp(vl[j], sk[j + 1] ? wn : vn);
        }
}

/* Alpha of sample b at step t (t < its length) from step t-1's; xr the step's logits,
 * l their log-sum-exp. */
static void alpha_step(const ctc_ws *w, const float *xr, double l, int L, int blank, int t, int b)
{
    int lo, hi, g0, g1, RW = w->RW;
    band(t, w->tlen[b], 2 * L + 1, &lo, &hi);
    band_groups(lo, hi, w->R0, &g0, &g1);
    size_t o = (size_t)b * RW + V;
    const int32_t *lc = w->lcls + o;
    const double *lm = w->lmask + o;
    const int64_t *sk = w->skip + o;
    double *cB = alpha_row(w, t, b), *cL = cB + RW;
    double eb = (double)xr[blank] - l;
    if (t == 0) {
        for (int j = g0; j < g1; j++) cB[j] = cL[j] = -INFINITY;
        cB[0] = eb;
        cL[0] = lm[0] + ((double)xr[lc[0]] - l);
    } else {
        const double *pB = alpha_row(w, t - 1, b);
        double *u = w->work + (size_t)b * WORK_D(w) + 4 * (size_t)RW + V;   /* beta's v-label row */
        alpha_pairs(cB, cL, u, pB, pB + RW, xr, lc, lm, sk, eb, l, g0, g1);
    }
    cB[g0 - 1] = cL[g0 - 1] = -INFINITY;   /* what step t+1 reads outside [g0, g1) */
    for (int j = g1; j < g1 + V; j++) cB[j] = cL[j] = -INFINITY;
}

/* Sample b's step t of the reverse sweep (t < its length): the occupations of step t
 * from the kept alpha and beta_t, k * them subtracted from the row g of the gradient
 * at the states' classes, then beta_{t-1} into the other running row. Beta of the last
 * step is set here. */
static void beta_step(const ctc_ws *w, const float *xr, float *g, int L, int blank, int t, int b)
{
    int T = w->tlen[b], Sb = 2 * L + 1, RW = w->RW, lo, hi, g0, g1;
    band(t, T, Sb, &lo, &hi);
    band_groups(lo, hi, w->R0, &g0, &g1);
    size_t o = (size_t)b * RW + V;
    const int32_t *lc = w->lcls + o;
    const double *lm = w->lmask + o;
    const int64_t *sk = w->skip + o;
    double *bB = beta_row(w, b, t), *bL = bB + RW;
    double *vl = w->work + (size_t)b * WORK_D(w) + 4 * (size_t)RW + V;
    float *ef = (float *)(w->work + (size_t)b * WORK_D(w) + 5 * (size_t)RW) + V;
    const double *aB = alpha_row(w, t, b), *aL = aB + RW;
    size_t r = (size_t)t * w->B + b;
    double l = w->lse[r], ll = w->ll[b];
    if (t == T - 1) {
        for (int j = -V; j < RW - V; j++) bB[j] = bL[j] = -INFINITY;
        bB[L] = 0;
        if (L > 0) bL[L - 1] = 0;
    }
    float blanks, sum = occupations(aB, aL, bB, bL, ef, ll, g0, g1, &blanks);
    if (sum > 0) {   /* 1 up to rounding with a finite likelihood */
        float ks = (float)(w->k[b] / (double)sum);
        int j0 = lo >> 1, j1 = (hi - 1) >> 1;   /* the labels in the band */
        j1 = j1 < L - 1 ? j1 : L - 1;
        g[blank] -= ks * blanks;
        int j = j0;
        for (; j + 3 <= j1; j += 4) {   /* unrolled: the loop's own cost is most of it */
            g[lc[j]] -= ks * ef[j];
            g[lc[j + 1]] -= ks * ef[j + 1];
            g[lc[j + 2]] -= ks * ef[j + 2];
            g[lc[j + 3]] -= ks * ef[j + 3];
        }
        for (; j <= j1; j++) g[lc[j]] -= ks * ef[j];
    }
    if (t == 0) return;
    int h0, h1;
    band(t - 1, T, Sb, &lo, &hi);
    band_groups(lo, hi, w->R0, &h0, &h1);
    double *nB = beta_row(w, b, t - 1), *nL = nB + RW;
    double eb = (double)xr[blank] - l, w1 = -INFINITY;
    if (2 * h1 - 1 <= hi && sk[h1])   /* label h1-1 is in the band and may skip to h1 */
        w1 = logaddexp(bB[h1] + eb, bL[h1] + (lm[h1] + ((double)xr[lc[h1]] - l)));
    beta_pairs(nB, nL, vl, bB, bL, xr, lc, lm, sk, eb, l, w1, h0, h1);
    for (int j = h0 - V; j < h0; j++) nB[j] = nL[j] = -INFINITY;   /* what step t-2 reads outside */
    nB[h1] = nL[h1] = -INFINITY;
}

/* ---- sweeps over a range of samples -------------------------------------------------- */

/* A sample's share of the work (0 when it is not computed): its rows and states. */
static double sample_work(const ctc_ws *w, const int32_t *len, int b)
{
    return w->state[b] == CTC_OK ? (double)w->tlen[b] * (4.0 * (2 * len[b] + 1) + w->A) : 0;
}

/* The samples of thread id out of n: a contiguous range [*b0, *b1), by equal shares of
 * the work, the same for every call with the same lengths. */
static void sample_range(const ctc_ws *w, const int32_t *len, int n, int id, int *b0, int *b1)
{
    double total = 0, cum = 0;
    for (int b = 0; b < w->B; b++) total += sample_work(w, len, b);
    *b0 = w->B;
    *b1 = w->B;
    for (int b = 0, first = 1; b < w->B; b++) {
        double wb = sample_work(w, len, b);
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

/* The alpha sweep of samples [b0, b1), step by step (each row's log-sum-exp first
 * unless rows_done); then their log-likelihoods. */
static void alpha_range(const ctc_ws *w, const float *x, const int32_t *len, int blank, int rows_done, int b0,
                        int b1)
{
    int Tmax = 0;
    for (int b = b0; b < b1; b++) {
        Tmax = w->state[b] == CTC_OK && w->tlen[b] > Tmax ? w->tlen[b] : Tmax;
        w->ll[b] = 0;   /* NaN once a row has no distribution */
    }
    for (int t = 0; t < Tmax; t++)
        for (int b = b0; b < b1; b++) {
            if (w->state[b] != CTC_OK || t >= w->tlen[b]) continue;
            size_t r = (size_t)t * w->B + b;
            const float *xr = x + r * w->A;
            if (!rows_done) w->lse[r] = row_lse(xr, w->A, w->rstat + 2 * r);
            if (isnan(w->lse[r])) w->ll[b] = NAN;
            alpha_step(w, xr, w->lse[r], len[b], blank, t, b);
        }
    for (int b = b0; b < b1; b++) {
        int T = w->tlen[b], L = len[b];
        if (w->state[b] != CTC_OK || T == 0 || isnan(w->ll[b])) continue;   /* T 0: empty labels, p = 1 */
        const double *fin = alpha_row(w, T - 1, b);
        double a = fin[L], c = L > 0 ? fin[w->RW + L - 1] : -INFINITY, m = a > c ? a : c;
        w->ll[b] = m == -INFINITY ? -INFINITY : m + log(exp(a - m) + exp(c - m));
        if (w->ll[b] == -INFINITY) w->state[b] = CTC_ZERO_PROB;   /* only with -inf logits */
    }
}

/* The beta sweep of samples [b0, b1) from the last step back, each valid row of the
 * gradient first given k * softmax unless rows_done (and rows without a gradient
 * zeroed when fresh); NaN into the valid rows of a sample whose logits had a row
 * without a distribution. */
static void beta_range(const ctc_ws *w, const float *x, float *gx, const int32_t *len, int blank, int fresh,
                       int rows_done, int b0, int b1)
{
    size_t A = (size_t)w->A;
    for (int t = w->T - 1; t >= 0; t--)
        for (int b = b0; b < b1; b++) {
            size_t r = (size_t)t * w->B + b;
            float *g = gx + r * A;
            if (w->k[b] == 0 || t >= w->tlen[b]) {
                if (fresh && !rows_done) memset(g, 0, A * sizeof *g);
                continue;
            }
            if (isnan(w->ll[b])) {
                for (size_t a = 0; a < A; a++) g[a] = fresh ? NAN : g[a] + NAN;
                continue;
            }
            if (!rows_done) row_softmax(g, x + r * A, w->A, (float)w->k[b], w->rstat + 2 * r, fresh);
            beta_step(w, x + r * A, g, len[b], blank, t, b);
        }
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

/* Runs CALL over the samples split across threads when the work is worth a parallel
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

/* Whether the rows' parts (log-sum-exp, softmax) run in a row-parallel pass of their
 * own: when there are fewer samples than threads to split them across. */
static int rows_apart(const ctc_ws *w)
{
    size_t n = (size_t)w->T * (size_t)w->B * (size_t)w->A;
    return n >= OP_PAR_MIN && op_threads() > w->B;
}

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
    size_t N = (size_t)w.T * (size_t)w.B, A = (size_t)w.A;
    int B = w.B, apart = rows_apart(&w);
    double work = 0;
    for (int b = 0; b < B; b++) {
        ctc_rows(&w, lab + (size_t)b * w.S, len[b], blank, b);
        work += sample_work(&w, len, b);
    }
    if (apart)
        PAR_FOR(1, r, N,
            int b = (int)(r % (size_t)B);
            if (w.state[b] == CTC_OK && (int)(r / (size_t)B) < w.tlen[b])
                w.lse[r] = row_lse(x + r * A, w.A, w.rstat + 2 * r);
        );
    SAMPLE_PAR(&w, len, work, alpha_range(&w, x, len, blank, apart, b0, b1));
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
    size_t N = (size_t)w.T * (size_t)w.B, A = (size_t)w.A;
    int B = w.B, fresh = (int)(it->gfresh & 1u), apart = rows_apart(&w);
    double work = 0;
    ctc_scales(it, &w);
    for (int b = 0; b < B; b++) work += w.k[b] != 0 ? sample_work(&w, len, b) : 0;
    if (apart)   /* k * softmax in every valid row; 0 in the others (or nothing added) */
        PAR_FOR(1, r, N,
            int b = (int)(r % (size_t)B);
            float *g = gx + r * A;
            if (w.k[b] != 0 && (int)(r / (size_t)B) < w.tlen[b])
                row_softmax(g, x + r * A, w.A, (float)w.k[b], w.rstat + 2 * r, fresh);
            else if (fresh)
                memset(g, 0, A * sizeof *g);
        );
    SAMPLE_PAR(&w, len, work, beta_range(&w, x, gx, len, blank, fresh, apart, b0, b1));
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
