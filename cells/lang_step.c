/* The cell language: the step function (rc_* calls) and the public API. */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include "lang_internal.h"
#include "cell.h"

/* ---- the step function: rc_* calls --------------------------------------------------- */

typedef struct ev {
    rc_step *s;
    rc_graph *g;
    const lang_prog *p;
    const lnode *nd;
    const int *args;
    const char *pool;
    rc_node **let, **next;   /* binding values, states' new values */
    long long H, I;
    int B;
} ev;

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *d = data;
    for (size_t k = 0; k < n; k++) h = (h ^ d[k]) * 1099511628211ull;
    return h;
}

/* The shape of a node's value: [B, w] or [w]. */
static int shape_of(const ev *e, const lnode *n, int shape[2])
{
    int w = (int)wev(n->w, e->H, e->I);
    if (n->vk == V_ROW) {
        shape[0] = e->B;
        shape[1] = w;
        return 2;
    }
    shape[0] = w;
    return 1;
}

static rc_node *eval(ev *e, int k);

/* An operand adapted to the op: as is, a filled constant, or broadcast to the result. */
static rc_node *operand(ev *e, const lnode *n, int k, int how)
{
    int shape[2], nd = shape_of(e, n, shape), one = 1;
    float v = (float)e->nd[k].num;
    switch (how) {
    case A_FILL1: return rc_fill(e->g, 1, &one, v);
    case A_FILLR: return rc_fill(e->g, nd, shape, v);
    case A_EXPAND: {
        rc_node *x = eval(e, k);
        return x ? rc_add(e->g, rc_fill(e->g, nd, shape, 0.0f), x) : NULL;
    }
    default: return eval(e, k);
    }
}

static rc_node *eval_bin(ev *e, const lnode *n)
{
    rc_graph *g = e->g;
    if (n->form == E_SCALE || n->form == E_ONE_MINUS) {
        int x = e->nd[n->a].vk == V_SCALAR ? n->b : n->a;
        rc_node *v = eval(e, x);
        if (n->form == E_ONE_MINUS) return rc_one_minus(g, v);
        return rc_scale(g, v, (float)e->nd[x == n->a ? n->b : n->a].num);
    }
    rc_node *a = operand(e, n, n->a, n->ada), *b = a ? operand(e, n, n->b, n->adb) : NULL;
    if (!a || !b) return NULL;
    if (n->swap) {
        rc_node *t = a;
        a = b;
        b = t;
    }
    if (n->kind == N_MINMAX) return n->op == FN_MIN ? rc_minimum(g, a, b) : rc_maximum(g, a, b);
    switch (n->op) {
    case '+': return rc_add(g, a, b);
    case '-': return rc_sub(g, a, b);
    case '*': return rc_mul(g, a, b);
    default: return rc_div(g, a, b);
    }
}

static rc_node *eval_fn(ev *e, const lnode *n)
{
    rc_graph *g = e->g;
    rc_node *a = eval(e, n->a);
    switch (n->op) {
#define EW_EVAL_FN(ID, name) case FN_##ID: return rc_##name(g, a);
#define EW_EVAL_OP(ID, name)
#define EW(ID, name, form, shape, F, DA, DB, reads, cost, vec, bka, bkb, lang) EW_EVAL_##lang(ID, name)
#include "elementwise_ops.def"
#undef EW
    case FN_SOFTMAX: return rc_softmax(g, a);
    case FN_LOG_SOFTMAX: return rc_log_softmax(g, a);
    case FN_ROW_MEAN: return rc_row_mean(g, a);
    case FN_ROW_VAR: return rc_row_var(g, a);
    /* per row of a batch value (one sequence's); a vector's total */
    case FN_SUM: return n->vk == V_ROW ? rc_row_sum(g, a) : rc_sum(g, a);
    default: return n->vk == V_ROW ? rc_row_mean(g, a) : rc_mean(g, a);   /* FN_MEAN */
    }
}

static rc_node *eval(ev *e, int k)
{
    const lnode *n = &e->nd[k];
    rc_graph *g = e->g;
    rc_node *v = NULL;
    if (rc_graph_status(g) != RC_OK) return NULL;
    switch (n->kind) {
    case N_INPUT: v = rc_step_input(e->s); break;
    case N_STATE: v = rc_step_state(e->s, e->pool + pstates(e->p)[n->ref].name); break;
    case N_NEW: v = e->next[n->ref]; break;
    case N_LET: v = e->let[n->ref]; break;
    case N_VEC: v = rc_step_bias(e->s, e->pool + pparams(e->p)[n->ref].name, (int)wev(n->w, e->H, e->I)); break;
    case N_MATMUL: {
        rc_node *x = eval(e, n->a);
        v = x ? rc_step_linear(e->s, e->pool + pparams(e->p)[n->ref].name, x, (int)wev(n->w, e->H, e->I)) : NULL;
        break;
    }
    case N_NEG: v = rc_scale(g, eval(e, n->a), -1.0f); break;
    case N_BIN: case N_MINMAX: v = eval_bin(e, n); break;
    case N_FN: v = eval_fn(e, n); break;
    case N_CONCAT: {
        rc_node *parts[L_MAX_ARGS];
        for (int j = 0; j < n->nargs; j++)
            if (!(parts[j] = eval(e, e->args[n->arg0 + j]))) return NULL;
        v = rc_concat(g, n->nargs, parts);
        break;
    }
    case N_SLICE:
        v = rc_slice(g, eval(e, n->a), (int)wev(n->s0, e->H, e->I), (int)wev(n->s1, e->H, e->I));
        break;
    case N_DROPOUT: {
        /* one seed per dropout in the text and per layer: the same mask at every step */
        uint64_t h = fnv(1469598103934665603ull, lang_cell_name(e->p), strlen(lang_cell_name(e->p)));
        int pos[2] = { n->line, n->col };
        h = fnv(h, pos, sizeof pos);
        if (e->s->prefix) h = fnv(h, e->s->prefix, strlen(e->s->prefix));
        v = rc_dropout(g, eval(e, n->a), (float)n->num, h);
        break;
    }
    default: break;   /* constants are never evaluated on their own */
    }
    if (v && rc_graph_status(g) == RC_OK) {
        int shape[2], nd = shape_of(e, n, shape);
        if (rc_node_ndim(v) != nd || rc_node_dim(v, 0) != shape[0] || (nd == 2 && rc_node_dim(v, 1) != shape[1])) {
            rc_step_fail(e->s, "%s:%d:%d: internal error: the value has shape [%d%s%d], the checker said [%d%s%d]",
                         e->pool + e->p->file, n->line, n->col, rc_node_dim(v, 0), nd == 2 ? "," : "",
                         nd == 2 ? rc_node_dim(v, 1) : 0, shape[0], nd == 2 ? "," : "", nd == 2 ? shape[1] : 0);
            return NULL;
        }
    }
    return v;
}

static rc_init_kind init_kind(int k)
{
    switch (k) {
    case I_ZEROS: return RC_INIT_ZEROS;
    case I_CONST: return RC_INIT_CONST;
    case I_UNIFORM: return RC_INIT_UNIFORM;
    case I_GLOROT: return RC_INIT_GLOROT;
    case I_ORTHOGONAL: return RC_INIT_ORTHOGONAL;
    default: return RC_INIT_DEFAULT;
    }
}

rc_status lang_step(rc_step *s, void *user)
{
    const lang_prog *p = user;
    char msg[400];
    ev e = { .s = s, .g = rc_step_graph(s), .p = p, .nd = pnodes(p), .args = pargs(p), .pool = ppool(p),
             .H = p->hidden, .I = rc_step_input_size(s), .B = rc_step_batch(s) };
    if (lang_validate(p, (int)e.I, NULL, msg, sizeof msg) != 0) return rc_step_fail(s, "%s", msg);
    e.let = calloc((size_t)p->nbinds + 1, sizeof *e.let);
    e.next = calloc((size_t)p->nstates + 1, sizeof *e.next);
    if (!e.let || !e.next) {
        free(e.let);
        free(e.next);
        return rc_step_fail(s, "out of memory");
    }
    const lstmt *st = pstmts(p);
    rc_status r = RC_OK;
    for (int k = 0; k < p->nstmts && r == RC_OK; k++) {
        const lnode *x = &e.nd[st[k].expr];
        if (x->vk == V_SCALAR) continue;   /* a constant binding: used inline */
        rc_node *v = eval(&e, st[k].expr);
        if (!v) {
            r = rc_graph_status(e.g) != RC_OK ? rc_graph_status(e.g) : s->status != RC_OK ? s->status : RC_ERR_ARG;
            break;
        }
        if (st[k].kind == S_LET) e.let[st[k].ref] = v;
        else {
            e.next[st[k].ref] = v;
            r = rc_step_set_state(s, e.pool + pstates(p)[st[k].ref].name, v);
        }
    }
    if (r == RC_OK && rc_step_time(s) == 0) {
        const lparam *pa = pparams(p);
        for (int k = 0; k < p->nparams && r == RC_OK; k++) {
            if (!pa[k].init) continue;
            int shape[2] = { (int)wev(pa[k].w, e.H, e.I), (int)wev(pa[k].in, e.H, e.I) };
            rc_node *w = rc_step_param(s, e.pool + pa[k].name, pa[k].kind == P_WEIGHT ? 2 : 1, shape);
            r = w ? rc_param_set_init(w, init_kind(pa[k].init), (float)pa[k].init_a) : rc_graph_status(e.g);
        }
    }
    free(e.let);
    free(e.next);
    return r;
}

/* ---- public API -------------------------------------------------------------------- */

rc_cell *rc_cell_parse(const char *text, size_t len, const char *name, int hidden, char *err, size_t errlen)
{
    size_t size = 0;
    lang_prog *p = lang_compile(text, len, name, hidden, err, errlen, &size);
    if (!p) return NULL;
    char *src = malloc(len + 1);
    rc_cell *c = src ? rc_cell_new(lang_cell_name(p), p->hidden, lang_step, p) : NULL;
    if (!c) {
        free(src);
        free(p);
        if (err && errlen) snprintf(err, errlen, "%s: out of memory", name ? name : "cell");
        return NULL;
    }
    c->free_user = free;
    c->user_size = size;
    memcpy(src, text, len);
    src[len] = 0;
    c->source = src;
    for (int k = 0; k < p->nstates; k++)
        if (rc_cell_add_state(c, lang_state_name(p, k), lang_state_size(p, k)) != RC_OK) {
            if (err && errlen) snprintf(err, errlen, "%s: cannot add state '%s'", name ? name : "cell",
                                        lang_state_name(p, k));
            rc_cell_free(c);
            return NULL;
        }
    return c;
}

rc_cell *rc_cell_load(const char *path, int hidden, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!path) {
        if (err && errlen) snprintf(err, errlen, "rc_cell_load: NULL path");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot open the cell file", path);
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int bad = !buf;
    while (!bad) {
        if (len == cap) {
            if (cap > LANG_MAX_TEXT) break;
            char *q = realloc(buf, cap * 2);
            if (!q) {
                bad = 1;
                break;
            }
            buf = q;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            bad = ferror(f) != 0;
            break;
        }
    }
    fclose(f);
    rc_cell *c = NULL;
    if (bad) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot read the cell file%s", path, buf ? "" : " (out of memory)");
    } else c = rc_cell_parse(buf, len, path, hidden, err, errlen);
    free(buf);
    return c;
}

const char *rc_cell_source(const rc_cell *c) { return c ? c->source : NULL; }
