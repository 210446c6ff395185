/* The cell language: the flat program (lang_compile) and the checks that wait for
 * the input size (lang_validate). */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include "lang_internal.h"

/* ---- the flat program -------------------------------------------------------------- */

static size_t align_up(size_t n) { return (n + 15) & ~(size_t)15; }

static lang_prog *freeze(cx *c, size_t *size)
{
    size_t off = align_up(sizeof(lang_prog)), o[7];
    const size_t sz[7] = { (size_t)c->nn * sizeof(lnode), (size_t)c->na * sizeof(int), (size_t)c->ns * sizeof(lstmt),
                           (size_t)c->nb * sizeof(lbind), (size_t)c->nst * sizeof(lstate),
                           (size_t)c->np * sizeof(lparam), c->npool };
    for (int k = 0; k < 7; k++) {
        o[k] = off;
        off = align_up(off + sz[k]);
    }
    lang_prog *p = calloc(1, off);
    if (!p) {
        lang_nomem(c);
        return NULL;
    }
    const void *src[7] = { c->nodes, c->args, c->stmts, c->binds, c->states, c->params, c->pool };
    for (int k = 0; k < 7; k++)
        if (sz[k]) memcpy((char *)p + o[k], src[k], sz[k]);
    p->size = off;
    p->hidden = (int)c->H;
    p->file = -1;
    p->cell = c->cell;
    p->input = c->input;
    p->nnodes = c->nn;
    p->nargs = c->na;
    p->nstmts = c->ns;
    p->nbinds = c->nb;
    p->nstates = c->nst;
    p->nparams = c->np;
    p->npool = c->npool;
    p->o_nodes = o[0];
    p->o_args = o[1];
    p->o_stmts = o[2];
    p->o_binds = o[3];
    p->o_states = o[4];
    p->o_params = o[5];
    p->o_pool = o[6];
    *size = off;
    return p;
}

lang_prog *lang_compile(const char *text, size_t len, const char *name, int hidden, char *err, size_t errlen,
                        size_t *size)
{
    cx c;
    memset(&c, 0, sizeof c);
    c.file = name ? name : "cell";
    c.err = err;
    c.errlen = errlen;
    c.line = 1;
    c.override = hidden > 0 ? hidden : 0;
    if (err && errlen) err[0] = 0;
    lang_prog *p = NULL;
    if (!text) lang_failat(&c, 1, 1, "no text: expected a cell definition");
    else if (len > LANG_MAX_TEXT) lang_failat(&c, 1, 1, "the text is %zu bytes: expected at most %u", len, LANG_MAX_TEXT);
    else if (hidden > LANG_MAX_WIDTH) lang_failat(&c, 1, 1, "hidden size %d: expected at most %d", hidden, LANG_MAX_WIDTH);
    else {
        c.src = text;
        c.len = len;
        /* the file name goes into the pool first, so messages at unroll can name it */
        int f = lang_pool_add(&c, c.file, strlen(c.file));
        if (f == 0 && lang_parse_file(&c) == 0 && lang_check_all(&c) == 0) {
            size_t sz = 0;
            p = freeze(&c, &sz);
            if (p) {
                p->file = f;
                if (size) *size = sz;
            }
        }
    }
    free(c.nodes);
    free(c.args);
    free(c.stmts);
    free(c.binds);
    free(c.params);
    free(c.inits);
    free(c.pool);
    return p;
}

const char *lang_cell_name(const lang_prog *p) { return ppool(p) + p->cell; }
int lang_hidden(const lang_prog *p) { return p->hidden; }
int lang_state_count(const lang_prog *p) { return p->nstates; }
const char *lang_state_name(const lang_prog *p, int i)
{
    return (i >= 0 && i < p->nstates) ? ppool(p) + pstates(p)[i].name : NULL;
}
int lang_state_size(const lang_prog *p, int i)
{
    return (i >= 0 && i < p->nstates) ? (int)wev(pstates(p)[i].size, p->hidden, 0) : 0;
}

/* ---- checks at unroll ---------------------------------------------------------------- */

static int vfail(const lang_prog *p, int line, int col, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int vfail(const lang_prog *p, int line, int col, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        int k = snprintf(err, errlen, "%s:%d:%d: ", ppool(p) + p->file, line, col);
        va_list ap;
        va_start(ap, fmt);
        if (k >= 0 && (size_t)k < errlen) vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int lang_validate(const lang_prog *p, int I, long long *max_width, char *err, size_t errlen)
{
    const lnode *nd = pnodes(p);
    const lparam *pa = pparams(p);
    const lstmt *st = pstmts(p);
    long long H = p->hidden, mx = 0;
    if (max_width) *max_width = 0;
    if (err && errlen) err[0] = 0;
    if (I < 1) return vfail(p, 1, 1, err, errlen, "input size %d: expected at least 1", I);
    for (int k = 0; k < p->nnodes; k++) {
        const lnode *n = &nd[k];
        if (n->vk != V_ROW && n->vk != V_VEC) continue;
        long long v = wev(n->w, H, I);
        if (v < 1 || v > LANG_MAX_WIDTH) {
            char f[96];
            wfmt(n->w, f, sizeof f);
            return vfail(p, n->line, n->col, err, errlen, "with input size I = %d, this value would be %s = %lld wide: "
                         "expected a width from 1 to %d", I, f, v, LANG_MAX_WIDTH);
        }
        if (v > mx) mx = v;
        if (!n->defer) continue;
        if (n->kind == N_BIN || n->kind == N_MINMAX) {
            long long wa = wev(nd[n->a].w, H, I), wb = wev(nd[n->b].w, H, I);
            if (wa != wb) {
                char fa[96], fb[96], opn[16];
                wfmt(nd[n->a].w, fa, sizeof fa);
                wfmt(nd[n->b].w, fb, sizeof fb);
                if (n->kind == N_BIN) snprintf(opn, sizeof opn, "'%c'", n->op);
                else snprintf(opn, sizeof opn, "%s(...)", n->op == FN_MIN ? "min" : "max");
                return vfail(p, n->line, n->col, err, errlen, "with input size I = %d the two sides of %s differ: the "
                             "left side is %s = %lld wide and the right side %s = %lld; expected equal widths "
                             "(they are equal only for another input size)", I, opn, fa, wa, fb, wb);
            }
        } else if (n->kind == N_MATMUL) {
            const lparam *w = &pa[n->ref];
            long long a = wev(nd[n->a].w, H, I), b = wev(w->in, H, I);
            if (a != b)
                return vfail(p, n->line2, n->col2, err, errlen, "with input size I = %d weight '%s' is applied to a "
                             "value %lld wide here and to one %lld wide on line %d: expected one input width per "
                             "weight", I, ppool(p) + w->name, a, b, w->in_line);
        } else if (n->kind == N_SLICE) {
            long long s0 = wev(n->s0, H, I), s1 = wev(n->s1, H, I), wa = wev(nd[n->a].w, H, I);
            if (s0 < 0 || s1 < 1 || s0 + s1 > wa)
                return vfail(p, n->line, n->col, err, errlen, "with input size I = %d, slice(a, %lld, %lld) takes "
                             "columns [%lld, %lld) of a value %lld wide: expected start >= 0, len >= 1 and "
                             "start + len <= %lld", I, s0, s1, s0, s0 + s1, wa, wa);
        }
    }
    for (int k = 0; k < p->nparams; k++) {
        lw ws[2] = { pa[k].w, pa[k].in };
        for (int j = 0; j < (pa[k].kind == P_WEIGHT ? 2 : 1); j++) {
            long long v = wev(ws[j], H, I);
            char f[96];
            wfmt(ws[j], f, sizeof f);
            if (v < 1 || v > LANG_MAX_WIDTH)
                return vfail(p, pa[k].use_line, pa[k].use_col, err, errlen, "with input size I = %d, %s of "
                             "parameter '%s' would be %s = %lld: expected 1 to %d", I, j ? "the input width" : "the size",
                             ppool(p) + pa[k].name, f, v, LANG_MAX_WIDTH);
            if (v > mx) mx = v;
        }
    }
    for (int k = 0; k < p->nstmts; k++) {
        if (!st[k].defer) continue;
        long long v = wev(nd[st[k].expr].w, H, I), s = wev(pstates(p)[st[k].ref].size, H, I);
        if (v != s)
            return vfail(p, st[k].line, st[k].col, err, errlen, "with input size I = %d the new value of state '%s' "
                         "is %lld wide: expected the state's size, %lld", I, ppool(p) + pstates(p)[st[k].ref].name,
                         v, s);
    }
    if (max_width) *max_width = mx;
    return 0;
}
