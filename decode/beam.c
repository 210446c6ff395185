/* The CTC prefix beam search (Graves 2012 ch. 7; Hannun et al. 2014), in log space,
 * with optional shallow fusion of a language model through rc_lm.
 *
 * A prefix (a labelling so far) carries pb and pnb, the log probabilities of its
 * alignments up to step t that end in a blank and in its last label. At step t each
 * kept prefix p yields the candidate p itself (pb' = log(Pb+Pnb) + y_blank, pnb' = pnb
 * + y_last: its last label repeated) and, for each class c that is not pruned, p+c
 * (pnb' = log(Pb+Pnb) + y_c, or pb + y_c when c repeats p's last label, which needs a
 * blank between the two). p+c may be a prefix already kept (q = p+c): then its
 * probability is q's, added into q's own candidate. The `width` candidates of highest
 * score = log(Pb+Pnb) + alpha * log P_lm + beta * length are kept.
 *
 * Prefixes are nodes of a trie (parent, label), found again through a hash of
 * (parent, label), so a labelling is one node however often it leaves and re-enters
 * the beam, and "q = p+c with p kept" is a test of q's parent. Each step creates at
 * most `width` nodes, so a sample of T steps needs at most T * width + 1: the
 * workspace (trie, hash, candidates, LM states) is sized from T, width and A before a
 * sample starts, and nothing is allocated per step. LM states live in 2 * width slots:
 * a kept prefix keeps its slot, a new one gets a free slot, filled by one batched
 * extend call per step for all new prefixes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "decode_util.h"
#include "op.h"   /* op_team_id */

typedef struct trie_node {
    int32_t parent, label;  /* the root: -1, -1 */
    int32_t stamp, slot;    /* kept at the step with this stamp, as beam entry `slot` */
} trie_node;

typedef struct beam_entry {
    int32_t node, len, last, lmslot;   /* last: the last label, -1 for the empty prefix */
    double pb, pnb, lm;                /* lm: log P_lm of the prefix's labels */
} beam_entry;

typedef struct cand {
    int32_t src, cls;       /* the kept prefix it comes from; the class added, -1: none */
    double pb, pnb, lm, score;
} cand;

/* One thread's workspace, for samples of up to cap_T steps. */
typedef struct beam_ws {
    int cap_T;
    double *lp;             /* [A] the step's log-probabilities */
    double *sel;            /* [A] scratch of the top-k selection */
    int32_t *ext, *pos;     /* [A] the classes that extend at this step; pos[c]: c's index in ext or -1 */
    beam_entry *cur, *nxt;  /* [W] */
    cand *cands;            /* [W * (A + 1)] */
    int32_t *heap;          /* [W] */
    trie_node *nodes;       /* [cap_T * W + 1] */
    int32_t *hash;          /* [hcap] node ids, -1 empty */
    size_t hcap;
    /* LM (only with an LM) */
    unsigned char *states;  /* [2W * state_bytes] */
    float *lmlogp;          /* [2W * vocab] */
    unsigned char *used;    /* [2W] */
    const void **in;        /* [W] */
    void **out;             /* [W] */
    float **outlp;          /* [W] */
    int32_t *labs;          /* [W] */
} beam_ws;

struct rc_ctc_beam {
    int A;
    rc_ctc_beam_opts o;
    int32_t *map;           /* [A] copy of lm_map, or NULL */
    beam_ws **ws;
    int nws;
    int B, have;            /* the results: B samples when have */
    int32_t *count;         /* [B] */
    rc_ctc_hyp *hyps;       /* [B * nbest] */
    int32_t *pool;          /* the labels of the hypotheses */
    size_t pool_cap;
    char err[512];
};

rc_ctc_beam_opts rc_ctc_beam_defaults(void)
{
    rc_ctc_beam_opts o = { .width = 10, .nbest = 1, .blank = 0, .top_k = 0, .min_logp = -INFINITY,
                           .lm = NULL, .lm_map = NULL, .alpha = 0, .beta = 0, .lm_eos = -1 };
    return o;
}

/* ---- the workspace ------------------------------------------------------------------ */

static void ws_free(beam_ws *w)
{
    if (!w) return;
    free(w->lp); free(w->sel); free(w->ext); free(w->pos); free(w->cur); free(w->nxt); free(w->cands);
    free(w->heap); free(w->nodes); free(w->hash); free(w->states); free(w->lmlogp); free(w->used);
    free(w->in); free(w->out); free(w->outlp); free(w->labs);
    free(w);
}

static beam_ws *ws_new(const rc_ctc_beam *d, int T)
{
    beam_ws *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    size_t A = (size_t)d->A, W = (size_t)d->o.width, nodes = (size_t)T * W + 1;
    w->cap_T = T;
    w->hcap = 16;
    while (w->hcap < 2 * nodes) w->hcap *= 2;
    w->lp = malloc(A * sizeof *w->lp);
    w->sel = malloc(A * sizeof *w->sel);
    w->ext = malloc(A * sizeof *w->ext);
    w->pos = malloc(A * sizeof *w->pos);
    w->cur = malloc(W * sizeof *w->cur);
    w->nxt = malloc(W * sizeof *w->nxt);
    w->cands = malloc(W * (A + 1) * sizeof *w->cands);
    w->heap = malloc(W * sizeof *w->heap);
    w->nodes = malloc(nodes * sizeof *w->nodes);
    w->hash = malloc(w->hcap * sizeof *w->hash);
    int ok = w->lp && w->sel && w->ext && w->pos && w->cur && w->nxt && w->cands && w->heap && w->nodes && w->hash;
    const rc_lm *lm = d->o.lm;
    if (ok && lm) {
        w->states = malloc(2 * W * lm->state_bytes);
        w->lmlogp = malloc(2 * W * (size_t)lm->vocab * sizeof *w->lmlogp);
        w->used = malloc(2 * W);
        w->in = malloc(W * sizeof *w->in);
        w->out = malloc(W * sizeof *w->out);
        w->outlp = malloc(W * sizeof *w->outlp);
        w->labs = malloc(W * sizeof *w->labs);
        ok = w->states && w->lmlogp && w->used && w->in && w->out && w->outlp && w->labs;
    }
    if (!ok) {
        ws_free(w);
        return NULL;
    }
    return w;
}

/* ---- the trie ------------------------------------------------------------------------ */

static size_t hash_of(int32_t parent, int32_t label, size_t mask)
{
    uint64_t k = ((uint64_t)(uint32_t)parent << 32) | (uint32_t)label;
    k *= 0x9E3779B97F4A7C15ull;
    return (size_t)(k >> 20) & mask;
}

/* The node of prefix `parent` + label, made when there is none (*n nodes so far). */
static int32_t child_of(beam_ws *w, int32_t *n, int32_t parent, int32_t label)
{
    size_t mask = w->hcap - 1, h = hash_of(parent, label, mask);
    for (;; h = (h + 1) & mask) {
        int32_t id = w->hash[h];
        if (id < 0) break;
        if (w->nodes[id].parent == parent && w->nodes[id].label == label) return id;
    }
    int32_t id = (*n)++;
    w->nodes[id] = (trie_node){ .parent = parent, .label = label, .stamp = -1, .slot = -1 };
    w->hash[h] = id;
    return id;
}

/* ---- one step's pieces --------------------------------------------------------------- */

/* The k-th largest of s[0..n) (1 <= k <= n), by quickselect (s is reordered). */
static double kth_largest(double *s, int n, int k)
{
    int lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        double pivot = s[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (s[i] > pivot) i++;
            while (s[j] < pivot) j--;
            if (i <= j) {
                double t = s[i]; s[i] = s[j]; s[j] = t;
                i++; j--;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else break;
    }
    return s[want];
}

/* The classes that may start new prefixes at this step (ascending), into w->ext, and
 * w->pos; returns their number. */
static int extending_classes(const rc_ctc_beam *d, beam_ws *w)
{
    int A = d->A, blank = d->o.blank, k = d->o.top_k, n = 0;
    double thr = -INFINITY;
    int at_thr = A;   /* classes equal to the threshold still allowed (lowest first) */
    if (k > 0 && k < A - 1) {
        int m = 0;
        for (int a = 0; a < A; a++)
            if (a != blank) w->sel[m++] = w->lp[a];
        thr = kth_largest(w->sel, m, k);
        int above = 0;
        for (int a = 0; a < A; a++)
            if (a != blank && w->lp[a] > thr) above++;
        at_thr = k - above;
    }
    for (int a = 0; a < A; a++) {
        w->pos[a] = -1;
        if (a == blank || w->lp[a] == -INFINITY || w->lp[a] < (double)d->o.min_logp || w->lp[a] < thr) continue;
        if (w->lp[a] == thr && at_thr-- <= 0) continue;
        w->pos[a] = n;
        w->ext[n++] = a;
    }
    return n;
}

/* The LM's contribution to a score (0 when alpha is 0, even for an impossible label). */
static double lm_term(const rc_ctc_beam *d, double lm) { return d->o.alpha == 0 ? 0.0 : (double)d->o.alpha * lm; }

/* Is candidate i worse than candidate j (lower score; on a tie, later)? */
static int worse(const cand *c, int32_t i, int32_t j)
{
    return c[i].score < c[j].score || (c[i].score == c[j].score && i > j);
}

static void heap_down(const cand *c, int32_t *h, int n, int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && worse(c, h[l], h[m])) m = l;
        if (r < n && worse(c, h[r], h[m])) m = r;
        if (m == i) return;
        int32_t t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

static void heap_up(const cand *c, int32_t *h, int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!worse(c, h[i], h[p])) return;
        int32_t t = h[i]; h[i] = h[p]; h[p] = t;
        i = p;
    }
}

/* The best W of the nc candidates with a finite score, best first, into w->heap;
 * returns their number. */
static int select_best(const cand *c, int nc, int W, int32_t *h)
{
    int n = 0;
    for (int32_t i = 0; i < nc; i++) {
        if (c[i].score == -INFINITY) continue;
        if (n < W) {
            h[n] = i;
            heap_up(c, h, n++);
        } else if (worse(c, h[0], i)) {
            h[0] = i;
            heap_down(c, h, n, 0);
        }
    }
    /* heap sort: the worst goes last */
    for (int m = n; m > 1; m--) {
        int32_t t = h[0]; h[0] = h[m - 1]; h[m - 1] = t;
        heap_down(c, h, m - 1, 0);
    }
    return n;
}

static rc_status lm_failed(rc_ctc_beam *d, const char *what)
{
    const rc_lm *lm = d->o.lm;
    const char *msg = lm->error ? lm->error(lm->user) : NULL;
    dec_fail(d->err, sizeof d->err, RC_ERR_STATE, "ctc_beam: the language model's %s failed: %s", what,
             msg && *msg ? msg : "(no message)");
    return RC_ERR_STATE;
}

/* Fills the LM states of the new prefixes of nxt (lmslot -1): a free slot each, one
 * extend call per max_batch of them. */
static rc_status lm_extend(rc_ctc_beam *d, beam_ws *w, int nbeam, int nnext)
{
    const rc_lm *lm = d->o.lm;
    int W = d->o.width, V = lm->vocab;
    memset(w->used, 0, 2 * (size_t)W);
    for (int i = 0; i < nbeam; i++) w->used[w->cur[i].lmslot] = 1;
    for (int k = 0; k < nnext; k++)
        if (w->nxt[k].lmslot >= 0) w->used[w->nxt[k].lmslot] = 1;
    int n = 0, free_slot = 0;
    for (int k = 0; k <= nnext; k++) {
        if (k < nnext && w->nxt[k].lmslot < 0) {
            beam_entry *e = &w->nxt[k];
            while (w->used[free_slot]) free_slot++;   /* at most W in use by cur, so one is free */
            w->used[free_slot] = 1;
            int src = w->cur[w->cands[w->heap[k]].src].lmslot;
            w->in[n] = w->states + (size_t)src * lm->state_bytes;
            w->labs[n] = d->map[e->last];
            e->lmslot = free_slot;
            w->out[n] = w->states + (size_t)free_slot * lm->state_bytes;
            w->outlp[n] = w->lmlogp + (size_t)free_slot * V;
            n++;
        }
        if (n > 0 && (n == lm->max_batch || k == nnext)) {
            if (lm->extend(lm->user, n, (const void *const *)w->in, w->labs, (void *const *)w->out,
                           (float *const *)w->outlp) != RC_OK)
                return lm_failed(d, "extend");
            n = 0;
        }
    }
    return RC_OK;
}

/* Decodes one sample of Tb steps; writes its hypotheses to hyps (nbest) with labels in
 * pool (nbest * Tb) and returns their number, or -1 on an LM error (message on d). */
static int decode_one(rc_ctc_beam *d, beam_ws *w, const float *logits, int B, int b, int Tb, rc_ctc_hyp *hyps,
                      int32_t *pool)
{
    const rc_ctc_beam_opts *o = &d->o;
    const rc_lm *lm = o->lm;
    int A = d->A, W = o->width, blank = o->blank, V = lm ? lm->vocab : 0;
    int32_t nnodes = 1;
    memset(w->hash, 0xff, w->hcap * sizeof *w->hash);
    w->nodes[0] = (trie_node){ .parent = -1, .label = -1, .stamp = -1, .slot = -1 };
    int nbeam = 1;
    w->cur[0] = (beam_entry){ .node = 0, .len = 0, .last = -1, .lmslot = 0, .pb = 0, .pnb = -INFINITY, .lm = 0 };
    if (lm && lm->start(lm->user, w->states, w->lmlogp) != RC_OK) {
        lm_failed(d, "start");
        return -1;
    }
    for (int t = 0; t < Tb; t++) {
        dec_log_softmax(logits + ((size_t)t * B + b) * (size_t)A, A, w->lp);
        int next = extending_classes(d, w);
        /* candidates: per kept prefix i, itself at i*(next+1), then its extensions */
        int stride = next + 1, nc = nbeam * stride;
        for (int i = 0; i < nbeam; i++) {
            const beam_entry *e = &w->cur[i];
            w->nodes[e->node].stamp = t;
            w->nodes[e->node].slot = i;
            double tot = dec_lse(e->pb, e->pnb);
            cand *s = &w->cands[i * stride];
            s->src = i;
            s->cls = -1;
            s->pb = tot + w->lp[blank];
            s->pnb = e->last >= 0 ? e->pnb + w->lp[e->last] : -INFINITY;
            s->lm = e->lm;
            const float *lmlp = lm ? w->lmlogp + (size_t)e->lmslot * V : NULL;
            for (int k = 0; k < next; k++) {
                int c = w->ext[k];
                cand *x = s + 1 + k;
                x->src = i;
                x->cls = c;
                x->pb = -INFINITY;
                x->pnb = (c == e->last ? e->pb : tot) + w->lp[c];
                x->lm = lm ? e->lm + (double)lmlp[d->map[c]] : 0.0;
                x->score = x->pnb + lm_term(d, x->lm) + (double)o->beta * (e->len + 1);
            }
        }
        /* a kept prefix q = p + c with p kept: p's extension by c is q's own candidate */
        for (int j = 0; j < nbeam; j++) {
            const beam_entry *q = &w->cur[j];
            int32_t p = w->nodes[q->node].parent;
            if (p < 0 || w->nodes[p].stamp != t) continue;
            int i = w->nodes[p].slot;
            const beam_entry *e = &w->cur[i];
            double add = (q->last == e->last ? e->pb : dec_lse(e->pb, e->pnb)) + w->lp[q->last];
            cand *s = &w->cands[j * stride];
            s->pnb = dec_lse(s->pnb, add);
            if (w->pos[q->last] >= 0) w->cands[i * stride + 1 + w->pos[q->last]].score = -INFINITY;
        }
        for (int i = 0; i < nbeam; i++) {
            cand *s = &w->cands[i * stride];
            s->score = dec_lse(s->pb, s->pnb) + lm_term(d, s->lm) + (double)o->beta * w->cur[i].len;
        }
        int nnext = select_best(w->cands, nc, W, w->heap);
        for (int k = 0; k < nnext; k++) {
            const cand *c = &w->cands[w->heap[k]];
            const beam_entry *e = &w->cur[c->src];
            beam_entry *n = &w->nxt[k];
            n->pb = c->pb;
            n->pnb = c->pnb;
            n->lm = c->lm;
            if (c->cls < 0) {
                n->node = e->node; n->len = e->len; n->last = e->last; n->lmslot = e->lmslot;
            } else {
                n->node = child_of(w, &nnodes, e->node, c->cls);
                n->len = e->len + 1; n->last = c->cls; n->lmslot = -1;
            }
        }
        if (lm && lm_extend(d, w, nbeam, nnext) != RC_OK) return -1;
        beam_entry *tmp = w->cur; w->cur = w->nxt; w->nxt = tmp;
        nbeam = nnext;
        if (nbeam == 0) break;   /* every prefix pruned away (min_logp above every class) */
    }
    /* final scores (the LM's end of labelling added), best first, by selection */
    cand *f = w->cands;
    for (int i = 0; i < nbeam; i++) {
        const beam_entry *e = &w->cur[i];
        double lmv = e->lm;
        if (lm && o->lm_eos >= 0) lmv += (double)w->lmlogp[(size_t)e->lmslot * V + o->lm_eos];
        f[i] = (cand){ .src = i, .cls = -1, .pb = e->pb, .pnb = e->pnb, .lm = lmv };
        f[i].score = dec_lse(e->pb, e->pnb) + lm_term(d, lmv) + (double)o->beta * e->len;
    }
    int n = 0;
    for (int r = 0; r < nbeam && n < o->nbest; r++) {   /* nbest <= W: a simple selection */
        int best = -1;
        for (int i = 0; i < nbeam; i++)
            if (f[i].cls == -1 && (best < 0 || worse(f, best, i))) best = i;
        f[best].cls = -2;   /* taken */
        const beam_entry *e = &w->cur[best];
        int32_t *lab = pool + (size_t)n * Tb;
        int k = e->len;
        for (int32_t id = e->node; id > 0; id = w->nodes[id].parent) lab[--k] = w->nodes[id].label;
        hyps[n] = (rc_ctc_hyp){ .labels = lab, .length = e->len, .score = f[best].score,
                                .logp_ctc = dec_lse(e->pb, e->pnb), .logp_lm = lm ? f[best].lm : 0.0 };
        n++;
    }
    return n;
}

/* ---- the decoder --------------------------------------------------------------------- */

rc_ctc_beam *rc_ctc_beam_new(int A, const rc_ctc_beam_opts *opts, char *err, size_t errlen)
{
    rc_ctc_beam_opts o = opts ? *opts : rc_ctc_beam_defaults();
    const char *who = "ctc_beam_new";
    if (A < 1) { dec_fail(err, errlen, RC_ERR_ARG, "%s: A = %d classes must be >= 1", who, A); return NULL; }
    if (o.width < 1) { dec_fail(err, errlen, RC_ERR_ARG, "%s: width %d must be >= 1", who, o.width); return NULL; }
    if (o.width > (1 << 20)) { dec_fail(err, errlen, RC_ERR_ARG, "%s: width %d is too large", who, o.width); return NULL; }
    if (o.nbest < 1 || o.nbest > o.width) {
        dec_fail(err, errlen, RC_ERR_ARG, "%s: nbest %d is outside 1..width = %d", who, o.nbest, o.width);
        return NULL;
    }
    if (o.blank < 0 || o.blank >= A) {
        dec_fail(err, errlen, RC_ERR_ARG, "%s: blank %d is outside the %d classes 0..%d", who, o.blank, A, A - 1);
        return NULL;
    }
    if (o.top_k < 0) { dec_fail(err, errlen, RC_ERR_ARG, "%s: top_k %d must be >= 0", who, o.top_k); return NULL; }
    if (isnan(o.min_logp)) { dec_fail(err, errlen, RC_ERR_ARG, "%s: min_logp is NaN", who); return NULL; }
    if (!isfinite(o.alpha) || !isfinite(o.beta)) {
        dec_fail(err, errlen, RC_ERR_ARG, "%s: alpha %g and beta %g must be finite", who, (double)o.alpha,
                 (double)o.beta);
        return NULL;
    }
    const rc_lm *lm = o.lm;
    if (lm) {
        if (lm->vocab < 1 || lm->state_bytes < 1 || lm->max_batch < 1 || !lm->start || !lm->extend) {
            dec_fail(err, errlen, RC_ERR_ARG, "%s: the language model needs vocab %d >= 1, state_bytes %zu >= 1, "
                     "max_batch %d >= 1 and start and extend callbacks", who, lm->vocab, lm->state_bytes,
                     lm->max_batch);
            return NULL;
        }
        if (!o.lm_map) { dec_fail(err, errlen, RC_ERR_ARG, "%s: a language model needs lm_map", who); return NULL; }
        for (int a = 0; a < A; a++)
            if (a != o.blank && (o.lm_map[a] < 0 || o.lm_map[a] >= lm->vocab)) {
                dec_fail(err, errlen, RC_ERR_ARG, "%s: lm_map[%d] = %d is outside the language model's labels 0..%d",
                         who, a, (int)o.lm_map[a], lm->vocab - 1);
                return NULL;
            }
        if (o.lm_eos >= lm->vocab) {
            dec_fail(err, errlen, RC_ERR_ARG, "%s: lm_eos %d is outside the language model's labels 0..%d", who,
                     o.lm_eos, lm->vocab - 1);
            return NULL;
        }
    }
    rc_ctc_beam *d = calloc(1, sizeof *d);
    if (d && lm) d->map = malloc((size_t)A * sizeof *d->map);
    if (!d || (lm && !d->map)) {
        free(d);
        dec_fail(err, errlen, RC_ERR_NOMEM, "%s: out of memory", who);
        return NULL;
    }
    d->A = A;
    d->o = o;
    if (lm) {
        for (int a = 0; a < A; a++) d->map[a] = a == o.blank ? 0 : o.lm_map[a];
        d->o.lm_map = d->map;
    } else {
        d->o.lm_map = NULL;
        d->o.lm_eos = -1;
    }
    return d;
}

static void drop_results(rc_ctc_beam *d)
{
    free(d->count);
    free(d->hyps);
    d->count = NULL;
    d->hyps = NULL;
    d->have = 0;
    d->B = 0;
}

void rc_ctc_beam_free(rc_ctc_beam *d)
{
    if (!d) return;
    for (int i = 0; i < d->nws; i++) ws_free(d->ws[i]);
    free(d->ws);
    free(d->map);
    free(d->pool);
    drop_results(d);
    free(d);
}

const char *rc_ctc_beam_error(const rc_ctc_beam *d) { return d ? d->err : "no decoder (NULL)"; }

/* nt workspaces for samples of up to T steps (kept between calls, grown when needed). */
static rc_status ensure_ws(rc_ctc_beam *d, int nt, int T)
{
    if (d->nws < nt) {
        beam_ws **ws = realloc(d->ws, (size_t)nt * sizeof *ws);
        if (!ws) return RC_ERR_NOMEM;
        d->ws = ws;
        for (int i = d->nws; i < nt; i++) ws[i] = NULL;
        d->nws = nt;
    }
    for (int i = 0; i < nt; i++) {
        if (d->ws[i] && d->ws[i]->cap_T >= T) continue;
        ws_free(d->ws[i]);
        d->ws[i] = ws_new(d, T);
        if (!d->ws[i]) return RC_ERR_NOMEM;
    }
    return RC_OK;
}

rc_status rc_ctc_beam_decode(rc_ctc_beam *d, const float *logits, int T, int B, const int32_t *lengths)
{
    if (!d) return RC_ERR_ARG;
    d->err[0] = '\0';
    drop_results(d);
    rc_status s = dec_check_logits("ctc_beam_decode", logits, T, B, d->A, lengths, d->o.blank, d->err, sizeof d->err);
    if (s != RC_OK) return s;
    int Tmax = 0, nbest = d->o.nbest;
    size_t need = 0;
    for (int b = 0; b < B; b++) {
        int Tb = dec_len(lengths, T, b);
        Tmax = Tb > Tmax ? Tb : Tmax;
        need += (size_t)nbest * (size_t)Tb;
    }
    double work = (double)T * B * d->A * d->o.width;
    int nt = d->o.lm ? 1 : dec_threads(B, work);
    d->count = calloc((size_t)B, sizeof *d->count);
    d->hyps = calloc((size_t)B * nbest, sizeof *d->hyps);
    if (need > d->pool_cap || !d->pool) {
        free(d->pool);
        d->pool = malloc((need ? need : 1) * sizeof *d->pool);
        d->pool_cap = d->pool ? need : 0;
    }
    if (!d->count || !d->hyps || !d->pool || ensure_ws(d, nt, Tmax) != RC_OK) {
        drop_results(d);
        return dec_fail(d->err, sizeof d->err, RC_ERR_NOMEM, "ctc_beam_decode: out of memory for B = %d, T = %d, "
                        "width %d, A = %d", B, T, d->o.width, d->A);
    }
    int failed = 0;
    if (nt > 1) {
        size_t *off = malloc((size_t)B * sizeof *off);
        if (!off) {
            drop_results(d);
            return dec_fail(d->err, sizeof d->err, RC_ERR_NOMEM, "ctc_beam_decode: out of memory");
        }
        for (size_t b = 0, o = 0; b < (size_t)B; o += (size_t)nbest * dec_len(lengths, T, (int)b), b++) off[b] = o;
        #pragma omp parallel num_threads(nt)
        {
            beam_ws *w = d->ws[op_team_id()];
            #pragma omp for schedule(dynamic, 1)
            for (int b = 0; b < B; b++)
                d->count[b] = decode_one(d, w, logits, B, b, dec_len(lengths, T, b), d->hyps + (size_t)b * nbest,
                                         d->pool + off[b]);
        }
        free(off);
    } else {
        size_t o = 0;
        for (int b = 0; b < B && !failed; b++) {
            int Tb = dec_len(lengths, T, b);
            d->count[b] = decode_one(d, d->ws[0], logits, B, b, Tb, d->hyps + (size_t)b * nbest, d->pool + o);
            failed = d->count[b] < 0;
            o += (size_t)nbest * Tb;
        }
    }
    if (failed) {
        drop_results(d);
        return RC_ERR_STATE;
    }
    d->B = B;
    d->have = 1;
    return RC_OK;
}

int rc_ctc_beam_count(const rc_ctc_beam *d, int b)
{
    if (!d || !d->have || b < 0 || b >= d->B) return -1;
    return d->count[b];
}

const rc_ctc_hyp *rc_ctc_beam_hyp(const rc_ctc_beam *d, int b, int k)
{
    if (!d || !d->have || b < 0 || b >= d->B || k < 0 || k >= d->count[b]) return NULL;
    return &d->hyps[(size_t)b * d->o.nbest + k];
}
