/* Models: stacked (optionally bidirectional) layers of one cell, an input embedding
 * or projection-free input, dropout on non-recurrent connections (Zaremba et al.
 * 2014) and an output head with its loss (per step, per sequence, or CTC over the
 * sequence). The model owns the parameters in a store graph; every (T, B) it meets
 * gets its own unrolled graph whose parameters borrow the store's storage, and its
 * own plan, kept in a small cache. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model.h"
#include "npy.h"
#include "plan.h"

#define MODEL_CACHE 8
/* The CTC head's plans hold labels [B, S] with S the batch's longest label sequence
 * rounded up to this, and serve every narrower batch: the padding costs only the
 * op's scratch, its work follows each sample's own length. */
#define CTC_WIDTH_STEP 8

typedef struct built {
    int T, B, masked, stream;
    int S;                      /* CTC head: the labels' width (0 otherwise) */
    rc_graph *g;
    rc_plan *p;
    rc_node *x, *tok, *mask, *rev, *last, *lmask, *scale, *targets, *y, *labels, *label_len;
    rc_node *out, *rowloss, *loss;  /* CTC head: rowloss is the rc_ctc node, per sample */
    rc_node **init, **fin;      /* per (layer, direction, state) */
    rc_node **pnodes;           /* this graph's node of each store parameter */
    uint64_t used;
} built;

struct rc_model {
    rc_cell *cell;
    rc_model_opts o;
    int dirs, nst, nslots;      /* nslots = layers * dirs * states */
    rc_graph *store;
    int nparams;
    rc_node **params;
    built cache[MODEL_CACHE];
    int ncache;
    uint64_t clock;
    built *last, *stream;
    int training, carry;
    float **state;              /* per slot: initial state [state_B, size] */
    int state_B;
    float **sstate;             /* stream states [stream_B, size] */
    int stream_B;
    double last_sum, last_count;
    uint64_t builds;            /* graphs and plans get_built made (model_plan_builds) */
    uint64_t runs;              /* training forwards so far: the dropout masks' counter */
    float *fbuf;                /* feed scratch */
    int32_t *ibuf;
    size_t fcap, icap;
    rc_status status;           /* last error (cleared by the next successful forward) */
    int broken;                 /* made with bad options: every call fails */
    char err[512];
};

static rc_status mfail(rc_model *m, rc_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static rc_status mfail(rc_model *m, rc_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
    m->status = s;
    return s;
}

void model_set_error(rc_model *m, rc_status s, const char *fmt, ...)
{
    if (!m) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
    m->status = s;
}

rc_model_opts rc_model_defaults(void)
{
    rc_model_opts o = { .layers = 1, .head = RC_HEAD_SOFTMAX, .norm = RC_NORM_STEPS, .seed = 1 };
    return o;
}

static int slot(const rc_model *m, int l, int d, int s) { return (l * m->dirs + d) * m->nst + s; }

static void built_free(built *b)
{
    rc_plan_free(b->p);
    rc_graph_free(b->g);
    free(b->init);
    free(b->fin);
    free(b->pnodes);
    memset(b, 0, sizeof *b);
}

/* Builds the unrolled graph for (T, B). `stream` graphs have no loss. */
static rc_status build_graph(rc_model *m, built *b)
{
    const rc_model_opts *o = &m->o;
    int T = b->T, B = b->B, N = T * B, L = o->layers;
    rc_graph *g = b->g = rc_graph_new();
    b->init = calloc((size_t)m->nslots, sizeof *b->init);
    b->fin = calloc((size_t)m->nslots, sizeof *b->fin);
    if (!g || !b->init || !b->fin) return mfail(m, RC_ERR_NOMEM, "out of memory building a model graph");
    rc_node *h;
    uint64_t seed = o->seed * 0x9e3779b97f4a7c15ull;
    int k = 1;
    if (o->vocab > 0) {
        int es[2] = { o->vocab, o->input_size };
        b->tok = rc_input(g, "tokens", RC_I32, 1, &N);
        h = rc_embedding(g, rc_param(g, "embed", 2, es), b->tok);
    } else {
        int xs[2] = { N, o->input_size };
        h = b->x = rc_input(g, "x", RC_F32, 2, xs);
    }
    if (b->masked) b->mask = rc_input(g, "mask", RC_F32, 2, (int[]){ N, 1 });
    if (m->dirs == 2) b->rev = rc_input(g, "reverse", RC_I32, 1, &N);
    if (o->dropout > 0) h = rc_dropout(g, h, o->dropout, seed + (uint64_t)k++);
    rc_node *lastout[2] = { NULL, NULL };
    for (int l = 0; l < L && rc_graph_status(g) == RC_OK; l++) {
        rc_node *outs[2];
        for (int d = 0; d < m->dirs; d++) {
            char prefix[32], name[96];
            snprintf(prefix, sizeof prefix, d ? "l%dr." : "l%d.", l);
            rc_node *xin = d ? rc_embedding(g, h, b->rev) : h;
            rc_node **init = NULL;
            if (!o->learned_init) {
                init = b->init + slot(m, l, d, 0);
                for (int s = 0; s < m->nst; s++) {
                    int ss[2] = { B, m->cell->state_size[s] };
                    snprintf(name, sizeof name, "init.%s%s", prefix, m->cell->state_name[s]);
                    init[s] = rc_input(g, name, RC_F32, 2, ss);
                }
            }
            rc_unroll_opts uo = { .prefix = prefix, .mask = b->mask, .init = init, .learned_init = o->learned_init };
            rc_node *out = NULL;
            if (rc_unroll(g, m->cell, xin, T, &uo, &out, b->fin + slot(m, l, d, 0)) != RC_OK) break;
            outs[d] = d ? rc_embedding(g, out, b->rev) : out;
        }
        if (rc_graph_status(g) != RC_OK) break;
        h = m->dirs == 2 ? rc_concat(g, 2, outs) : outs[0];
        if (l == L - 1) memcpy(lastout, outs, sizeof outs);
        else if (o->dropout > 0) h = rc_dropout(g, h, o->dropout, seed + (uint64_t)k++);
    }
    if (rc_graph_status(g) != RC_OK)
        return mfail(m, rc_graph_status(g), "model graph: %s", rc_graph_error(g));
    int R = N;
    if (o->last_step_only && !b->stream) {   /* forward: the last valid step; reverse: step 0, its last */
        R = B;
        b->last = rc_input(g, "last", RC_I32, 1, &B);
        h = rc_embedding(g, lastout[0], b->last);
        if (m->dirs == 2) h = rc_concat(g, 2, (rc_node *[]){ h, rc_row_slice(g, lastout[1], 0, B) });
    }
    if (o->dropout > 0) h = rc_dropout(g, h, o->dropout, seed + (uint64_t)k++);
    int F = rc_node_dim(h, 1), ws[2] = { o->output_size, F };
    rc_node *W = rc_param(g, "out.W", 2, ws);
    b->out = rc_add(g, rc_matmul_t(g, h, W, 0, 1), rc_param(g, "out.b", 1, &o->output_size));
    if (!b->stream) {
        int ys[2] = { R, o->output_size };
        if (o->head == RC_HEAD_CTC) {   /* one loss per sample; the mask gives the input lengths */
            rc_ctc_opts co = { .blank = o->ctc_blank, .reduction = RC_CTC_NONE,
                               .zero_infeasible = o->ctc_zero_infeasible != 0 };
            b->labels = rc_input(g, "labels", RC_I32, 2, (int[]){ B, b->S });
            b->label_len = rc_input(g, "label_lengths", RC_I32, 1, &B);
            b->rowloss = rc_ctc(g, b->out, b->labels, b->label_len, b->mask, &co);
        } else if (o->head == RC_HEAD_SOFTMAX) {
            b->targets = rc_input(g, "targets", RC_I32, 1, &R);
            b->rowloss = rc_softmax_xent(g, b->out, b->targets);
        } else {
            b->y = rc_input(g, "y", RC_F32, 2, ys);
            b->rowloss = o->head == RC_HEAD_SIGMOID ? rc_sigmoid_bce(g, b->out, b->y) : rc_mse(g, b->out, b->y);
        }
        b->scale = rc_input(g, "loss_scale", RC_F32, 1, (int[]){ 1 });
        if (o->head == RC_HEAD_CTC) {   /* every sample counts: no mask (an inf loss times 0 is NaN) */
            b->loss = rc_mul(g, rc_sum(g, b->rowloss), b->scale);
        } else {
            b->lmask = rc_input(g, "loss_mask", RC_F32, 1, &R);
            b->loss = rc_mul(g, rc_sum(g, rc_mul(g, b->rowloss, b->lmask)), b->scale);
        }
    }
    if (rc_graph_status(g) != RC_OK)
        return mfail(m, rc_graph_status(g), "model graph: %s", rc_graph_error(g));
    return RC_OK;
}

/* Points every parameter of b's graph at the store's storage. */
static rc_status bind_params(rc_model *m, built *b)
{
    b->pnodes = calloc((size_t)(m->nparams ? m->nparams : 1), sizeof *b->pnodes);
    if (!b->pnodes) return mfail(m, RC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->nparams; i++) {
        rc_node *sp = m->params[i], *n = rc_param_find(b->g, rc_node_name(sp));
        if (!n) continue;   /* e.g. a stream graph has no loss-only parameters */
        if (rc_node_size(n) != rc_node_size(sp))
            return mfail(m, RC_ERR_SHAPE, "parameter '%s' changed size between graphs", rc_node_name(sp));
        if (b->g != m->store) graph_param_borrow(n, rc_param_data(sp));
        b->pnodes[i] = n;
    }
    return RC_OK;
}

/* Plans b with its roots: the output, the loss (when it has one) and every final state
 * (layers x directions x states of them, as many as the model has). */
static rc_status plan_built(rc_model *m, built *b, unsigned flags)
{
    rc_node **roots = malloc((size_t)(m->nslots + 2) * sizeof *roots);
    if (!roots) return mfail(m, RC_ERR_NOMEM, "out of memory planning the model");
    int nr = 0;
    roots[nr++] = b->out;
    if (b->loss) roots[nr++] = b->loss;
    for (int i = 0; i < m->nslots; i++) roots[nr++] = b->fin[i];
    b->p = rc_plan_new_ex(b->g, nr, roots, flags);
    free(roots);
    if (!b->p) return mfail(m, rc_graph_status(b->g), "model plan: %s", rc_graph_error(b->g));
    return RC_OK;
}

/* The graph and plan for (T, B, masked, stream) whose labels are at least S wide (the
 * CTC head; 0 otherwise), built when there is none: a narrower one of the same key is
 * rebuilt S wide in its place. */
static built *get_built(rc_model *m, int T, int B, int masked, int stream, int S)
{
    int victim = -1;
    for (int i = 0; i < m->ncache; i++) {
        built *b = &m->cache[i];
        if (b->T == T && b->B == B && b->masked == masked && b->stream == stream) {
            if (b->S >= S) {
                b->used = ++m->clock;
                return b;
            }
            victim = i;
            break;
        }
    }
    if (victim < 0 && m->ncache == MODEL_CACHE) {
        victim = 1;   /* entry 0 is the store: never evicted */
        for (int i = 2; i < MODEL_CACHE; i++)
            if (m->cache[i].used < m->cache[victim].used) victim = i;
    }
    if (victim >= 0) {
        if (m->last == &m->cache[victim]) m->last = NULL;
        if (m->stream == &m->cache[victim]) m->stream = NULL;
        built_free(&m->cache[victim]);
    } else {
        victim = m->ncache++;
    }
    built *b = &m->cache[victim];
    memset(b, 0, sizeof *b);
    b->T = T; b->B = B; b->masked = masked; b->stream = stream; b->S = S;
    m->builds++;
    rc_status s = build_graph(m, b);
    if (s == RC_OK) s = bind_params(m, b);
    if (s == RC_OK) s = plan_built(m, b, (stream ? RC_PLAN_NO_GRAD : 0) | m->o.plan_flags);
    if (s != RC_OK) {
        built_free(b);
        if (victim == m->ncache - 1) m->ncache--;
        else b->T = -1;   /* an empty slot no key matches */
        return NULL;
    }
    b->used = ++m->clock;
    return b;
}

static rc_status alloc_states(rc_model *m, float ***st, int B)
{
    if (!*st) *st = calloc((size_t)m->nslots, sizeof **st);
    if (!*st) return mfail(m, RC_ERR_NOMEM, "out of memory for states");
    for (int k = 0; k < m->nslots; k++) {
        free((*st)[k]);
        (*st)[k] = calloc((size_t)B * (size_t)m->cell->state_size[k % m->nst], sizeof(float));
        if (!(*st)[k]) return mfail(m, RC_ERR_NOMEM, "out of memory for states");
    }
    return RC_OK;
}

static void free_states(rc_model *m, float **st)
{
    if (!st) return;
    for (int k = 0; k < m->nslots; k++) free(st[k]);
    free(st);
}

#define CTC_CARRY_MSG "the CTC head takes whole sequences: carry (final states becoming the next forward's " \
                      "initial states) makes no sense with it; turn carry off"

/* Records why CTC head options are unusable; 0 when they are fine. */
static int ctc_opts_bad(rc_model *m)
{
    const rc_model_opts *o = &m->o;
    if (o->output_size < 2)
        mfail(m, RC_ERR_ARG, "rc_model_new: the CTC head needs output_size >= 2 (the blank and at least one "
              "label), got %d", o->output_size);
    else if (o->ctc_blank < 0 || o->ctc_blank >= o->output_size)
        mfail(m, RC_ERR_ARG, "rc_model_new: ctc_blank %d is not a class of the CTC head's %d outputs (0..%d)",
              o->ctc_blank, o->output_size, o->output_size - 1);
    else if (o->last_step_only)
        mfail(m, RC_ERR_ARG, "rc_model_new: the CTC head reads every step of a sequence: last_step_only must be 0");
    else
        return 0;
    return 1;
}

static rc_model *model_make(const rc_cell *cell, const rc_model_opts *opts)
{
    rc_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->o = opts ? *opts : rc_model_defaults();
    m->training = 1;
    const rc_model_opts *o = &m->o;
    if (!cell) { mfail(m, RC_ERR_ARG, "rc_model_new: NULL cell"); return m; }
    if (o->input_size < 1 || o->layers < 1 || o->layers > 64 || o->output_size < 1 || o->vocab < 0 ||
        !(o->dropout >= 0 && o->dropout < 1) || o->head < RC_HEAD_SOFTMAX || o->head > RC_HEAD_CTC ||
        o->norm < RC_NORM_STEPS || o->norm > RC_NORM_SUM) {
        mfail(m, RC_ERR_ARG,
              "rc_model_new: bad options (input_size %d >= 1, layers %d in 1..64, output_size %d >= 1, "
              "vocab %d >= 0, dropout %g in [0,1), head %d, norm %d)",
              o->input_size, o->layers, o->output_size, o->vocab, (double)o->dropout, (int)o->head, (int)o->norm);
        return m;
    }
    if (o->head == RC_HEAD_CTC && ctc_opts_bad(m)) return m;
    m->cell = cell_clone(cell);
    if (!m->cell) { mfail(m, RC_ERR_NOMEM, "out of memory"); return m; }
    m->dirs = o->bidirectional ? 2 : 1;
    m->nst = m->cell->nstates;
    m->nslots = o->layers * m->dirs * m->nst;
    /* The store: a one-step graph that creates every parameter. */
    built *b = &m->cache[0];
    b->T = 1; b->B = 1; b->stream = 1;
    if (build_graph(m, b) != RC_OK) { built_free(b); return m; }
    m->store = b->g;
    for (int i = 0; i < rc_graph_node_count(m->store); i++)
        if (strcmp(rc_node_op(rc_graph_node(m->store, i)), "param") == 0) m->nparams++;
    m->params = malloc((size_t)(m->nparams ? m->nparams : 1) * sizeof *m->params);
    if (!m->params) { mfail(m, RC_ERR_NOMEM, "out of memory"); return m; }
    for (int i = 0, k = 0; i < rc_graph_node_count(m->store); i++) {
        rc_node *n = rc_graph_node(m->store, i);
        if (strcmp(rc_node_op(n), "param") == 0) m->params[k++] = n;
    }
    rc_node *W = rc_param_find(m->store, "out.W"), *E = rc_param_find(m->store, "embed");
    rc_param_set_init(W, RC_INIT_UNIFORM, 1.0f / sqrtf((float)rc_node_dim(W, 1)));
    if (E) rc_param_set_init(E, RC_INIT_UNIFORM, 1.0f);   /* unit-scale inputs, like nn.Embedding */
    if (bind_params(m, b) != RC_OK) return m;
    /* the store's own plan serves one-sequence streams */
    if (plan_built(m, b, RC_PLAN_NO_GRAD) != RC_OK) return m;
    m->ncache = 1;
    if (rc_model_init(m, o->seed) != RC_OK) return m;
    alloc_states(m, &m->state, 1);
    m->state_B = 1;
    return m;
}

rc_model *rc_model_new(const rc_cell *cell, const rc_model_opts *opts)
{
    rc_model *m = model_make(cell, opts);
    if (m && (m->status != RC_OK || !m->store || !m->state)) {
        m->broken = 1;
        if (m->status == RC_OK) mfail(m, RC_ERR_NOMEM, "out of memory making the model");
    }
    return m;
}

void rc_model_free(rc_model *m)
{
    if (!m) return;
    /* the store must go last: other graphs borrow its parameters */
    for (int i = m->ncache - 1; i >= 0; i--)
        if (m->cache[i].g != m->store) built_free(&m->cache[i]);
    for (int i = 0; i < m->ncache; i++) built_free(&m->cache[i]);
    if (m->ncache == 0 && m->cache[0].g) built_free(&m->cache[0]);
    free_states(m, m->state);
    free_states(m, m->sstate);
    free(m->params);
    free(m->fbuf);
    free(m->ibuf);
    rc_cell_free(m->cell);
    free(m);
}

rc_status rc_model_status(const rc_model *m) { return m ? m->status : RC_ERR_ARG; }
const char *rc_model_error(const rc_model *m) { return m ? m->err : "no model (NULL)"; }
rc_model_opts rc_model_options(const rc_model *m) { return m ? m->o : rc_model_defaults(); }
void rc_model_set_training(rc_model *m, int on) { if (m) m->training = on != 0; }
void rc_model_set_carry(rc_model *m, int on)
{
    if (!m) return;
    m->carry = on != 0;
    if (m->carry && m->o.head == RC_HEAD_CTC) mfail(m, RC_ERR_STATE, "rc_model_set_carry: " CTC_CARRY_MSG);
}

static int ready(const rc_model *m) { return m && !m->broken && m->store; }

void rc_model_reset_state(rc_model *m)
{
    if (!ready(m) || !m->state) return;
    for (int k = 0; k < m->nslots; k++)
        memset(m->state[k], 0, (size_t)m->state_B * (size_t)m->cell->state_size[k % m->nst] * sizeof(float));
}

static int find_slot(const rc_model *m, int layer, int dir, const char *state)
{
    int s = cell_state_index(m->cell, state);
    if (layer < 0 || layer >= m->o.layers || dir < 0 || dir >= m->dirs || s < 0) return -1;
    return slot(m, layer, dir, s);
}

rc_status rc_model_set_state(rc_model *m, int layer, int dir, const char *state, int B, const float *data)
{
    if (!ready(m)) return m ? m->status ? m->status : RC_ERR_STATE : RC_ERR_ARG;
    int k = find_slot(m, layer, dir, state);
    if (k < 0 || B < 1 || !data)
        return mfail(m, RC_ERR_ARG, "rc_model_set_state: no state '%s' in layer %d direction %d, or B < 1",
                     state ? state : "(null)", layer, dir);
    if (B != m->state_B) {
        if (alloc_states(m, &m->state, B) != RC_OK) return m->status;
        m->state_B = B;
    }
    memcpy(m->state[k], data, (size_t)B * (size_t)m->cell->state_size[k % m->nst] * sizeof(float));
    return RC_OK;
}

const float *rc_model_get_state(const rc_model *m, int layer, int dir, const char *state, int *B)
{
    if (!ready(m) || !m->state) return NULL;
    int k = find_slot(m, layer, dir, state);
    if (k < 0) return NULL;
    if (B) *B = m->state_B;
    return m->state[k];
}

static rc_status scratch(rc_model *m, size_t nf, size_t ni)
{
    if (nf > m->fcap) {
        float *f = realloc(m->fbuf, nf * sizeof *f);
        if (!f) return mfail(m, RC_ERR_NOMEM, "out of memory");
        m->fbuf = f;
        m->fcap = nf;
    }
    if (ni > m->icap) {
        int32_t *i = realloc(m->ibuf, ni * sizeof *i);
        if (!i) return mfail(m, RC_ERR_NOMEM, "out of memory");
        m->ibuf = i;
        m->icap = ni;
    }
    return RC_OK;
}

static rc_status feed(rc_model *m, built *b, rc_node *n, const void *data, size_t count)
{
    if (!n) return RC_OK;
    if (rc_plan_feed(b->p, n, data, count) != RC_OK)
        return mfail(m, RC_ERR_ARG, "%s", rc_plan_error(b->p));
    return RC_OK;
}

/* The CTC head's labels: present, lengths within 0..S and T, classes other than the
 * blank. (A sample too short for its labels is left to the op: zero_infeasible.) */
static rc_status check_labels(rc_model *m, const rc_batch *bt)
{
    const rc_model_opts *o = &m->o;
    int S = bt->S, A = o->output_size;
    if (!bt->label_lengths) return mfail(m, RC_ERR_ARG, "forward: the CTC head needs labels: batch.label_lengths is NULL");
    if (S < 0) return mfail(m, RC_ERR_ARG, "forward: batch.S = %d (the labels' row width) is negative", S);
    if (S > 0 && !bt->labels) return mfail(m, RC_ERR_ARG, "forward: the CTC head needs labels: batch.labels is NULL");
    for (int j = 0; j < bt->B; j++) {
        int L = bt->label_lengths[j];
        if (L < 0 || L > S)
            return mfail(m, RC_ERR_ARG, "forward: sample %d: label length %d is outside 0..%d (batch.S)", j, L, S);
        if (L > bt->T)
            return mfail(m, RC_ERR_ARG, "forward: sample %d: %d labels cannot fit in the %d steps of the batch", j, L,
                         bt->T);
        const int32_t *lab = L > 0 ? bt->labels + (size_t)j * (size_t)S : NULL;
        for (int k = 0; k < L; k++) {
            if (lab[k] < 0 || lab[k] >= A)
                return mfail(m, RC_ERR_ARG, "forward: sample %d: label %d at position %d is not a class of %d (0..%d)",
                             j, lab[k], k, A, A - 1);
            if (lab[k] == o->ctc_blank)
                return mfail(m, RC_ERR_ARG, "forward: sample %d: label at position %d is the blank (%d)", j, k,
                             o->ctc_blank);
        }
    }
    return RC_OK;
}

static rc_status check_batch(rc_model *m, const rc_batch *bt)
{
    const rc_model_opts *o = &m->o;
    if (!bt) return mfail(m, RC_ERR_ARG, "forward: NULL batch");
    if (bt->T < 1 || bt->B < 1 || (long long)bt->T * bt->B > 0x7fffffff)
        return mfail(m, RC_ERR_ARG, "forward: T = %d and B = %d must be >= 1", bt->T, bt->B);
    if (o->vocab > 0 && !bt->tokens) return mfail(m, RC_ERR_ARG, "forward: the model embeds tokens: batch.tokens is NULL");
    if (o->vocab == 0 && !bt->x) return mfail(m, RC_ERR_ARG, "forward: batch.x is NULL");
    if (o->head == RC_HEAD_SOFTMAX && !bt->targets) return mfail(m, RC_ERR_ARG, "forward: batch.targets is NULL");
    if ((o->head == RC_HEAD_SIGMOID || o->head == RC_HEAD_LINEAR) && !bt->y)
        return mfail(m, RC_ERR_ARG, "forward: batch.y is NULL");
    if (o->vocab > 0)
        for (int i = 0; i < bt->T * bt->B; i++)
            if (bt->tokens[i] < 0 || bt->tokens[i] >= o->vocab)
                return mfail(m, RC_ERR_ARG, "forward: token %d at position %d is outside the vocabulary of %d",
                             bt->tokens[i], i, o->vocab);
    for (int j = 0; bt->lengths && j < bt->B; j++)
        if (bt->lengths[j] < 1 || bt->lengths[j] > bt->T)
            return mfail(m, RC_ERR_ARG, "forward: length %d of sequence %d is outside 1..%d", bt->lengths[j], j, bt->T);
    int R = o->last_step_only ? bt->B : bt->T * bt->B;
    if (o->head == RC_HEAD_SOFTMAX)
        for (int r = 0; r < R; r++)
            if (bt->targets[r] >= o->output_size)
                return mfail(m, RC_ERR_ARG, "forward: target %d at position %d is not a class of %d",
                             bt->targets[r], r, o->output_size);
    if (o->head == RC_HEAD_CTC) return check_labels(m, bt);
    return RC_OK;
}

/* The CTC head's labels [B, b->S] (zero padding) and their lengths into the plan;
 * the number of labels to *count. */
static rc_status feed_labels(rc_model *m, built *b, const rc_batch *bt, double *count)
{
    int B = bt->B;
    *count = 0;
    for (int j = 0; j < B; j++) {
        int L = bt->label_lengths[j];
        int32_t *row = m->ibuf + (size_t)j * (size_t)b->S;
        if (L > 0) memcpy(row, bt->labels + (size_t)j * (size_t)bt->S, (size_t)L * sizeof *row);
        memset(row + L, 0, (size_t)(b->S - L) * sizeof *row);
        *count += L;
    }
    rc_status s = feed(m, b, b->labels, m->ibuf, (size_t)B * (size_t)b->S);
    return s == RC_OK ? feed(m, b, b->label_len, bt->label_lengths, (size_t)B) : s;
}

rc_status rc_model_forward(rc_model *m, const rc_batch *bt, double *loss)
{
    if (!m) return RC_ERR_ARG;
    if (!ready(m)) return m->status ? m->status : RC_ERR_STATE;
    m->status = RC_OK;
    m->err[0] = 0;
    m->last = NULL;   /* a failed forward leaves nothing to read or to run backward on */
    if (check_batch(m, bt) != RC_OK) return m->status;
    const rc_model_opts *o = &m->o;
    int ctc = o->head == RC_HEAD_CTC;
    if (ctc && m->carry) return mfail(m, RC_ERR_STATE, "forward: " CTC_CARRY_MSG);
    int T = bt->T, B = bt->B, N = T * B, masked = 0, S = 0;
    for (int j = 0; bt->lengths && j < B; j++) masked |= bt->lengths[j] < T;
    for (int j = 0; ctc && j < B; j++) S = bt->label_lengths[j] > S ? bt->label_lengths[j] : S;
    if (ctc) S = S < 1 ? CTC_WIDTH_STEP : (S + CTC_WIDTH_STEP - 1) / CTC_WIDTH_STEP * CTC_WIDTH_STEP;
    built *b = get_built(m, T, B, masked, 0, S);
    if (!b) return m->status;
    int R = o->last_step_only ? B : N;
    size_t ni = (size_t)N > (size_t)B * (size_t)b->S ? (size_t)N : (size_t)B * (size_t)b->S;
    if (scratch(m, (size_t)N + 1, ni) != RC_OK) return m->status;
#define LEN(j) (bt->lengths ? bt->lengths[j] : T)
    rc_status s = feed(m, b, b->tok, bt->tokens, (size_t)N);
    if (s == RC_OK) s = feed(m, b, b->x, bt->x, (size_t)N * (size_t)o->input_size);
    if (s == RC_OK && b->mask) {
        for (int t = 0; t < T; t++)
            for (int j = 0; j < B; j++) m->fbuf[t * B + j] = t < LEN(j) ? 1.0f : 0.0f;
        s = feed(m, b, b->mask, m->fbuf, (size_t)N);
    }
    if (s == RC_OK && b->rev) {   /* each sequence reversed within its own length */
        for (int t = 0; t < T; t++)
            for (int j = 0; j < B; j++) m->ibuf[t * B + j] = (t < LEN(j) ? LEN(j) - 1 - t : t) * B + j;
        s = feed(m, b, b->rev, m->ibuf, (size_t)N);
    }
    if (s == RC_OK && b->last) {
        for (int j = 0; j < B; j++) m->ibuf[j] = (LEN(j) - 1) * B + j;
        s = feed(m, b, b->last, m->ibuf, (size_t)B);
    }
    double count = 0;
    if (s == RC_OK && ctc) {
        s = feed_labels(m, b, bt, &count);
    } else if (s == RC_OK) {
        for (int r = 0; r < R; r++) {
            int j = r % B, t = r / B, valid = o->last_step_only || t < LEN(j);
            if (o->head == RC_HEAD_SOFTMAX && bt->targets[r] < 0) valid = 0;
            m->fbuf[r] = valid ? 1.0f : 0.0f;
            count += valid;
        }
        s = feed(m, b, b->lmask, m->fbuf, (size_t)R);
    }
    if (s == RC_OK) {   /* no targets: loss 0 whatever the scale; no labels: CTC divides by 1 like rc_ctc */
        double den = o->norm == RC_NORM_SUM ? 1.0 : o->norm == RC_NORM_SEQUENCES ? (double)B : count > 0 ? count : 1.0;
        float scale = (float)(1.0 / den);
        s = feed(m, b, b->scale, &scale, 1);
    }
    if (s == RC_OK) s = feed(m, b, b->targets, bt->targets, (size_t)R);
    if (s == RC_OK) s = feed(m, b, b->y, bt->y, (size_t)R * (size_t)o->output_size);
#undef LEN
    if (s == RC_OK && B != m->state_B) {
        if (alloc_states(m, &m->state, B) != RC_OK) return m->status;
        m->state_B = B;
    }
    for (int k = 0; s == RC_OK && k < m->nslots; k++)
        s = feed(m, b, b->init[k], m->state[k], (size_t)B * (size_t)m->cell->state_size[k % m->nst]);
    if (s != RC_OK) return s;
    rc_plan_set_training(b->p, m->training);
    b->p->run = m->runs;   /* masks follow the model, not the plan, so a resumed run repeats them */
    if (m->training) m->runs++;
    if (rc_plan_forward(b->p) != RC_OK)   /* the plan's message starts "forward: " itself */
        return mfail(m, RC_ERR_ARG, "%s", rc_plan_error(b->p));
    const float *rl = rc_plan_value(b->p, b->rowloss), *lm = m->fbuf;
    double sum = 0;
    for (int r = 0; r < (ctc ? B : R); r++) sum += ctc ? (double)rl[r] : (double)rl[r] * lm[r];
    m->last_sum = sum;
    m->last_count = count;
    if (loss) *loss = rc_plan_value(b->p, b->loss)[0];
    if (m->carry)   /* forward direction only: a reverse pass has no "next window" */
        for (int l = 0; l < o->layers; l++)
            for (int st = 0; st < m->nst; st++) {
                int k = slot(m, l, 0, st);
                const float *v = rc_plan_value(b->p, b->fin[k]);
                if (!v) return mfail(m, RC_ERR_STATE, "forward: final state %d of layer %d was not computed", st, l);
                memcpy(m->state[k], v, (size_t)B * (size_t)m->cell->state_size[st] * sizeof(float));
            }
    m->last = b;
    return RC_OK;
}

rc_status rc_model_backward(rc_model *m)
{
    if (!m) return RC_ERR_ARG;
    if (!ready(m)) return m->status ? m->status : RC_ERR_STATE;
    if (!m->last) return mfail(m, RC_ERR_STATE, "backward: run rc_model_forward first");
    if (rc_plan_backward(m->last->p, m->last->loss) != RC_OK)
        return mfail(m, RC_ERR_STATE, "backward: %s", rc_plan_error(m->last->p));
    return RC_OK;
}

void rc_model_last_stats(const rc_model *m, double *sum, double *count)
{
    if (sum) *sum = m ? m->last_sum : 0;
    if (count) *count = m ? m->last_count : 0;
}

const float *rc_model_output(const rc_model *m)
{
    return (m && m->last) ? rc_plan_value(m->last->p, m->last->out) : NULL;
}

const float *rc_model_ctc_losses(const rc_model *m)
{
    return (m && m->last && m->o.head == RC_HEAD_CTC) ? rc_plan_value(m->last->p, m->last->rowloss) : NULL;
}

int rc_model_ctc_infeasible(const rc_model *m, int32_t *samples, int max)
{
    if (!m || !m->last || m->o.head != RC_HEAD_CTC) return -1;
    return rc_plan_ctc_infeasible(m->last->p, m->last->rowloss, samples, max);
}

rc_plan *model_last_plan(const rc_model *m, rc_node **loss)
{
    if (loss) *loss = (m && m->last) ? m->last->loss : NULL;
    return (m && m->last) ? m->last->p : NULL;
}

rc_node *model_last_param(const rc_model *m, int i)
{
    return (ready(m) && m->last && i >= 0 && i < m->nparams) ? m->last->pnodes[i] : NULL;
}

uint64_t model_plan_builds(const rc_model *m) { return m ? m->builds : 0; }

int rc_model_param_count(const rc_model *m) { return ready(m) ? m->nparams : 0; }
const char *rc_model_param_name(const rc_model *m, int i)
{
    return (ready(m) && i >= 0 && i < m->nparams) ? rc_node_name(m->params[i]) : NULL;
}

static int param_index(const rc_model *m, const char *name)
{
    for (int i = 0; ready(m) && name && i < m->nparams; i++)
        if (strcmp(rc_node_name(m->params[i]), name) == 0) return i;
    return -1;
}

float *rc_model_param(rc_model *m, const char *name, int *ndim, int shape[RC_MAX_DIMS])
{
    int i = param_index(m, name);
    if (i < 0) return NULL;
    rc_node *n = m->params[i];
    if (ndim) *ndim = rc_node_ndim(n);
    for (int d = 0; shape && d < RC_MAX_DIMS; d++) shape[d] = rc_node_dim(n, d);
    return rc_param_data(n);
}

rc_node *model_param_node(const rc_model *m, int i)
{
    return (ready(m) && i >= 0 && i < m->nparams) ? m->params[i] : NULL;
}

uint64_t model_get_runs(const rc_model *m) { return m ? m->runs : 0; }
void model_set_runs(rc_model *m, uint64_t runs) { if (m) m->runs = runs; }

const float *model_grad(const rc_model *m, int i)
{
    if (!ready(m) || !m->last || i < 0 || i >= m->nparams || !m->last->pnodes[i]) return NULL;
    return rc_plan_grad(m->last->p, m->last->pnodes[i]);
}

const float *rc_model_grad(const rc_model *m, const char *name) { return model_grad(m, param_index(m, name)); }

size_t rc_model_param_total(const rc_model *m)
{
    size_t n = 0;
    for (int i = 0; ready(m) && i < m->nparams; i++) n += rc_node_size(m->params[i]);
    return n;
}

rc_status rc_model_init(rc_model *m, uint64_t seed)
{
    if (!m || !m->store) return RC_ERR_ARG;
    if (rc_graph_init_params(m->store, seed) != RC_OK)
        return mfail(m, rc_graph_status(m->store), "init: %s", rc_graph_error(m->store));
    return RC_OK;
}

/* dir/<name>.npy */
static rc_status npy_path(rc_model *m, const char *dir, const char *name, char *buf, size_t len)
{
    if ((size_t)snprintf(buf, len, "%s/%s.npy", dir, name) >= len)
        return mfail(m, RC_ERR_ARG, "path too long for parameter '%s' in '%s'", name, dir);
    return RC_OK;
}

rc_status rc_model_save_npy(rc_model *m, const char *dir)
{
    if (!ready(m)) return m ? (m->status ? m->status : RC_ERR_STATE) : RC_ERR_ARG;
    if (!dir) return mfail(m, RC_ERR_ARG, "save_npy: NULL directory");
    for (int i = 0; i < m->nparams; i++) {
        rc_node *n = m->params[i];
        char path[4096], err[512];
        int shape[RC_MAX_DIMS];
        for (int d = 0; d < rc_node_ndim(n); d++) shape[d] = rc_node_dim(n, d);
        if (npy_path(m, dir, rc_node_name(n), path, sizeof path) != RC_OK) return m->status;
        if (npy_write_f32(path, rc_node_ndim(n), shape, rc_param_data(n), err, sizeof err) != 0)
            return mfail(m, RC_ERR_IO, "save_npy: %s", err);
    }
    return RC_OK;
}

rc_status rc_model_load_npy(rc_model *m, const char *dir)
{
    if (!ready(m)) return m ? (m->status ? m->status : RC_ERR_STATE) : RC_ERR_ARG;
    if (!dir) return mfail(m, RC_ERR_ARG, "load_npy: NULL directory");
    float **tmp = calloc((size_t)(m->nparams ? m->nparams : 1), sizeof *tmp);
    if (!tmp) return mfail(m, RC_ERR_NOMEM, "out of memory");
    rc_status s = RC_OK;
    for (int i = 0; i < m->nparams && s == RC_OK; i++) {
        rc_node *n = m->params[i];
        char path[4096], err[512];
        int nd = 0, shape[4] = { 0 }, same;
        if ((s = npy_path(m, dir, rc_node_name(n), path, sizeof path)) != RC_OK) break;
        if (npy_read_header(path, &nd, shape, err, sizeof err) != 0) {
            s = mfail(m, RC_ERR_IO, "load_npy: %s", err);
            break;
        }
        same = nd == rc_node_ndim(n);
        for (int d = 0; same && d < nd; d++) same = shape[d] == rc_node_dim(n, d);
        if (!same) {
            s = mfail(m, RC_ERR_SHAPE, "load_npy: %s has rank %d shape [%d,%d,%d,%d]; parameter '%s' needs rank %d "
                      "[%d,%d,%d,%d]", path, nd, shape[0], shape[1], shape[2], shape[3], rc_node_name(n),
                      rc_node_ndim(n), rc_node_dim(n, 0), rc_node_dim(n, 1), rc_node_dim(n, 2), rc_node_dim(n, 3));
            break;
        }
        tmp[i] = malloc(rc_node_size(n) * sizeof(float));
        if (!tmp[i]) s = mfail(m, RC_ERR_NOMEM, "out of memory");
        else if (npy_read_f32(path, tmp[i], rc_node_size(n), err, sizeof err) != 0)
            s = mfail(m, RC_ERR_IO, "load_npy: %s", err);
    }
    for (int i = 0; i < m->nparams; i++) {
        if (s == RC_OK) memcpy(rc_param_data(m->params[i]), tmp[i], rc_node_size(m->params[i]) * sizeof(float));
        free(tmp[i]);
    }
    free(tmp);
    return s;
}

rc_status rc_model_stream_reset(rc_model *m, int B)
{
    if (!ready(m)) return m ? (m->status ? m->status : RC_ERR_STATE) : RC_ERR_ARG;
    if (m->dirs == 2) return mfail(m, RC_ERR_STATE, "stream: a bidirectional model needs the whole sequence");
    if (B < 1) return mfail(m, RC_ERR_ARG, "stream: B = %d must be >= 1", B);
    built *b = B == 1 ? &m->cache[0] : get_built(m, 1, B, 0, 1, 0);
    if (!b) return m->status;
    if (B == 1) b->used = ++m->clock;
    if (alloc_states(m, &m->sstate, B) != RC_OK) return m->status;
    m->stream = b;
    m->stream_B = B;
    return RC_OK;
}

rc_status rc_model_stream_step(rc_model *m, const float *x, const int32_t *tokens, const float **out)
{
    if (!ready(m)) return m ? (m->status ? m->status : RC_ERR_STATE) : RC_ERR_ARG;
    if (!out) return mfail(m, RC_ERR_ARG, "stream: NULL out");
    if (!m->stream && rc_model_stream_reset(m, m->stream_B ? m->stream_B : 1) != RC_OK) return m->status;
    built *b = m->stream;
    int B = m->stream_B;
    if (m->o.vocab > 0) {
        if (!tokens) return mfail(m, RC_ERR_ARG, "stream: the model embeds tokens: tokens is NULL");
        for (int j = 0; j < B; j++)
            if (tokens[j] < 0 || tokens[j] >= m->o.vocab)
                return mfail(m, RC_ERR_ARG, "stream: token %d is outside the vocabulary of %d", tokens[j], m->o.vocab);
    } else if (!x) {
        return mfail(m, RC_ERR_ARG, "stream: x is NULL");
    }
    rc_status s = feed(m, b, b->tok, tokens, (size_t)B);
    if (s == RC_OK) s = feed(m, b, b->x, x, (size_t)B * (size_t)m->o.input_size);
    for (int k = 0; s == RC_OK && k < m->nslots; k++)
        s = feed(m, b, b->init[k], m->sstate[k], (size_t)B * (size_t)m->cell->state_size[k % m->nst]);
    if (s != RC_OK) return s;
    rc_plan_set_training(b->p, 0);
    if (rc_plan_forward(b->p) != RC_OK) return mfail(m, RC_ERR_ARG, "stream: %s", rc_plan_error(b->p));
    for (int k = 0; k < m->nslots; k++) {
        const float *v = rc_plan_value(b->p, b->fin[k]);
        if (!v) return mfail(m, RC_ERR_STATE, "stream: final state %d was not computed", k);
        memcpy(m->sstate[k], v, (size_t)B * (size_t)m->cell->state_size[k % m->nst] * sizeof(float));
    }
    *out = rc_plan_value(b->p, b->out);
    return RC_OK;
}
