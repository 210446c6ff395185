/* Mutations of cell-language cells for an architecture search, the check every
 * candidate passes, a canonical form and parameter counts (docs/CELLS.md "Mutations
 * and canonical form"; the map of the steps is in mutate.h).
 *
 * The search is the one of Jozefowicz, Zaremba & Sutskever 2015, "An empirical
 * exploration of recurrent network architectures" (ICML): candidates are made by
 * mutating the computation graph of a cell (LSTM, GRU and their descendants) and kept
 * when they train well; MUT1-3 (cells/lib/mut*.cell) came out of it. The operators
 * here are edits of the kinds they describe (a node's activation replaced, a node
 * replaced by an elementwise operation of it and another node) and the structural
 * differences between the cells they compare (gates added or removed, skips, operands
 * swapped, the z / 1 - z mixing of the GRU against the LSTM's separate gates).
 *
 * A mutation works on the expression trees of a checked program (mcell), keeps the
 * widths the checker gave every node, and is printed back to text; the text then goes
 * through lang_compile and cell_check_prog like any user's cell, so an edit that does
 * not check is simply rejected. */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include "lang_internal.h"
#include "mutate.h"
#include "recur.h"

PROG_ARRAY(lbind, pbinds, o_binds)

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- text ---------------------------------------------------------------------------- */

typedef struct sb {
    char *s;
    size_t n, cap;
    int oom;
} sb;

static void sb_add(sb *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n + 1) c *= 2;
        char *q = realloc(b->s, c);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->s = q;
        b->cap = c;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_str(sb *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_fmt(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sb *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)k < sizeof tmp) {
        sb_add(b, tmp, (size_t)k);
        return;
    }
    char *big = malloc((size_t)k + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    sb_add(b, big, (size_t)k);
    free(big);
}

/* The shortest %g spelling of v that reads back as v, with '.' as the decimal point
 * whatever the locale (the lexer reads numbers in the C locale). */
static void fmt_num(double v, char *buf, size_t n)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    const char *dp = localeconv()->decimal_point;
    if (!dp || !dp[0] || strcmp(dp, ".") == 0) return;
    char *q = strstr(buf, dp);
    if (q) {
        size_t dl = strlen(dp);
        *q = '.';
        memmove(q + 1, q + dl, strlen(q + dl) + 1);
    }
}

/* A size expression of the program (an unchecked tree of numbers, H, I, - + * /). */
static void size_text(sb *b, const lang_prog *p, int k, int minlev)
{
    const lnode *n = &pnodes(p)[k];
    char num[64];
    switch (n->kind) {
    case N_NUM:
        fmt_num(n->num, num, sizeof num);
        sb_str(b, num);
        return;
    case N_NAME: sb_str(b, ppool(p) + n->name); return;
    case N_NEG:
        if (minlev > 3) sb_str(b, "(");
        sb_str(b, "-");
        size_text(b, p, n->a, 3);
        if (minlev > 3) sb_str(b, ")");
        return;
    case N_BIN: {
        int lev = (n->op == '+' || n->op == '-') ? 1 : 2;
        if (lev < minlev) sb_str(b, "(");
        size_text(b, p, n->a, lev);
        sb_fmt(b, " %c ", n->op);
        size_text(b, p, n->b, lev + 1);
        if (lev < minlev) sb_str(b, ")");
        return;
    }
    default: sb_str(b, "?"); return;   /* not in a checked program */
    }
}

/* ---- the mutable form --------------------------------------------------------------- */

typedef struct mnode {
    int kind, op;        /* N_* of lang_internal.h as checked; every constant is N_NUM */
    int a, b;            /* children, or -1 */
    int arg0, nargs;     /* N_CONCAT: m->args[arg0 .. arg0 + nargs) */
    int ref;             /* N_STATE, N_NEW: state; N_LET: binding; N_VEC, N_MATMUL: parameter */
    int name;            /* N_FN: pool offset of the function's name */
    int s0, s1;          /* N_SLICE: pool offsets of the start and length texts */
    int vk;              /* V_SCALAR, V_VEC, V_ROW */
    lw w;                /* the width the checker gave (mutations keep it) */
    double num;          /* a constant; N_DROPOUT: p */
} mnode;

typedef struct mstmt {
    int kind, ref, expr, live;   /* S_LET: binding ref; S_SET: state ref */
} mstmt;

typedef struct mparam {
    int name, kind, decl, init, used;   /* decl: pool offset of "weight/vector NAME : SIZE"'s SIZE, or -1 */
    double init_a;
} mparam;

typedef struct mstate {
    int name, size, set;   /* size: pool offset of "state NAME : SIZE"'s SIZE, or -1; set: its statement */
    lw w;
} mstate;

typedef struct mbind {
    int name, stmt;
} mbind;

struct mcell {
    int cell, input, hidden, nst;
    mstate st[L_MAX_STATES];
    mparam *pa;
    int np, cappa;
    mbind *bd;
    int nb, capbd;
    mstmt *sm;
    int ns, capsm;
    mnode *nd;
    int nn, capn;
    int *args;
    int na, capa;
    char *pool;
    int npool, cappool;
    int oom;
};

#define MS(m, off) ((m)->pool + (off))

static int m_pool(mcell *m, const char *s, size_t n)
{
    if (m->oom) return -1;
    if (n > (size_t)(1 << 28)) {
        m->oom = 1;
        return -1;
    }
    char *q = lang_grow(m->pool, &m->cappool, m->npool + (int)n + 1, 1);
    if (!q) {
        m->oom = 1;
        return -1;
    }
    m->pool = q;
    memcpy(q + m->npool, s, n);
    q[m->npool + (int)n] = 0;
    int off = m->npool;
    m->npool += (int)n + 1;
    return off;
}

static int m_node(mcell *m, int kind, int vk, lw w)
{
    if (m->oom) return -1;
    mnode *q = lang_grow(m->nd, &m->capn, m->nn + 1, sizeof *q);
    if (!q) {
        m->oom = 1;
        return -1;
    }
    m->nd = q;
    mnode *d = &q[m->nn];
    memset(d, 0, sizeof *d);
    d->kind = kind;
    d->a = d->b = d->ref = d->name = d->s0 = d->s1 = -1;
    d->vk = vk;
    d->w = w;
    return m->nn++;
}

static int size_to_pool(mcell *m, const lang_prog *p, int k)
{
    sb b = { 0 };
    size_text(&b, p, k, 0);
    if (b.oom) {
        free(b.s);
        m->oom = 1;
        return -1;
    }
    int off = m_pool(m, b.s ? b.s : "", b.n);
    free(b.s);
    return off;
}

static int copy_expr(mcell *m, const lang_prog *p, int k)
{
    const lnode *n = &pnodes(p)[k];
    if (n->vk == V_SCALAR && n->kind != N_LET) {   /* a folded constant */
        int q = m_node(m, N_NUM, V_SCALAR, wconst(1));
        if (q >= 0) m->nd[q].num = n->num;
        return q;
    }
    int a = -1, b = -1, arg0 = 0, nargs = 0, name = -1, s0 = -1, s1 = -1;
    switch (n->kind) {
    case N_NEG: case N_MATMUL: case N_FN: case N_SLICE: case N_DROPOUT:
        if ((a = copy_expr(m, p, n->a)) < 0) return -1;
        break;
    case N_BIN: case N_MINMAX:
        if ((a = copy_expr(m, p, n->a)) < 0 || (b = copy_expr(m, p, n->b)) < 0) return -1;
        break;
    case N_CONCAT: {
        int parts[L_MAX_ARGS];
        for (int j = 0; j < n->nargs; j++)
            if ((parts[j] = copy_expr(m, p, pargs(p)[n->arg0 + j])) < 0) return -1;
        int *q = lang_grow(m->args, &m->capa, m->na + n->nargs, sizeof *q);
        if (!q) {
            m->oom = 1;
            return -1;
        }
        m->args = q;
        memcpy(q + m->na, parts, (size_t)n->nargs * sizeof *parts);
        arg0 = m->na;
        nargs = n->nargs;
        m->na += n->nargs;
        break;
    }
    default: break;
    }
    if (n->kind == N_FN) name = m_pool(m, ppool(p) + n->name, strlen(ppool(p) + n->name));
    if (n->kind == N_SLICE) {
        s0 = size_to_pool(m, p, pargs(p)[n->arg0 + 1]);
        s1 = size_to_pool(m, p, pargs(p)[n->arg0 + 2]);
    }
    int q = m_node(m, n->kind, n->vk, n->w);
    if (q < 0 || m->oom) return -1;
    mnode *d = &m->nd[q];
    d->op = n->op;
    d->a = a;
    d->b = b;
    d->arg0 = arg0;
    d->nargs = nargs;
    d->ref = n->ref;
    d->name = name;
    d->s0 = s0;
    d->s1 = s1;
    d->num = n->num;
    return q;
}

static int add_param(mcell *m, const char *name, int kind, int decl)
{
    if (m->oom) return -1;
    mparam *q = lang_grow(m->pa, &m->cappa, m->np + 1, sizeof *q);
    if (!q) {
        m->oom = 1;
        return -1;
    }
    m->pa = q;
    mparam *pa = &q[m->np];
    memset(pa, 0, sizeof *pa);
    pa->name = m_pool(m, name, strlen(name));
    pa->kind = kind;
    pa->decl = decl;
    return m->oom ? -1 : m->np++;
}

void mcell_free(mcell *m)
{
    if (!m) return;
    free(m->pa);
    free(m->bd);
    free(m->sm);
    free(m->nd);
    free(m->args);
    free(m->pool);
    free(m);
}

mcell *mcell_from_prog(const lang_prog *p, char *err, size_t errlen)
{
    mcell *m = calloc(1, sizeof *m);
    if (!m) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    const char *pool = ppool(p);
    m->cell = m_pool(m, pool + p->cell, strlen(pool + p->cell));
    m->input = m_pool(m, pool + p->input, strlen(pool + p->input));
    m->hidden = p->hidden;
    m->nst = p->nstates;
    for (int k = 0; k < p->nstates; k++) {
        const lstate *s = &pstates(p)[k];
        m->st[k].name = m_pool(m, pool + s->name, strlen(pool + s->name));
        m->st[k].size = s->size_expr >= 0 ? size_to_pool(m, p, s->size_expr) : -1;
        m->st[k].set = s->set_stmt;
        m->st[k].w = s->size;
    }
    for (int k = 0; k < p->nparams; k++) {
        const lparam *s = &pparams(p)[k];
        int decl = s->decl_size >= 0 ? size_to_pool(m, p, s->decl_size) : -1;
        int j = add_param(m, pool + s->name, s->kind, decl);
        if (j < 0) break;
        m->pa[j].init = s->init;
        m->pa[j].init_a = s->init_a;
    }
    if (!m->oom && p->nbinds > 0) {
        m->bd = calloc((size_t)p->nbinds, sizeof *m->bd);
        if (!m->bd) m->oom = 1;
        for (int k = 0; k < p->nbinds && !m->oom; k++) {
            const lbind *s = &pbinds(p)[k];
            m->bd[k].name = m_pool(m, pool + s->name, strlen(pool + s->name));
            m->bd[k].stmt = s->stmt;
        }
        m->nb = m->capbd = p->nbinds;
    }
    if (!m->oom && p->nstmts > 0) {
        m->sm = calloc((size_t)p->nstmts, sizeof *m->sm);
        if (!m->sm) m->oom = 1;
        for (int k = 0; k < p->nstmts && !m->oom; k++) {
            const lstmt *s = &pstmts(p)[k];
            m->sm[k].kind = s->kind;
            m->sm[k].ref = s->ref;
            m->sm[k].live = 1;
            m->sm[k].expr = copy_expr(m, p, s->expr);
        }
        m->ns = m->capsm = p->nstmts;
    }
    if (m->oom) {
        mcell_free(m);
        fail(err, errlen, "out of memory");
        return NULL;
    }
    return m;
}

/* ---- printing --------------------------------------------------------------------------- */

/* Marks the statements the state assignments need (live) and the parameters they use. */
static void mark(mcell *m, int k)
{
    const mnode *n = &m->nd[k];
    switch (n->kind) {
    case N_VEC: m->pa[n->ref].used = 1; return;
    case N_LET: m->sm[m->bd[n->ref].stmt].live = 1; return;
    case N_MATMUL: m->pa[n->ref].used = 1; break;
    default: break;
    }
    if (n->a >= 0) mark(m, n->a);
    if (n->b >= 0) mark(m, n->b);
    if (n->kind == N_CONCAT)
        for (int j = 0; j < n->nargs; j++) mark(m, m->args[n->arg0 + j]);
}

static void mark_live(mcell *m)
{
    for (int k = 0; k < m->np; k++) m->pa[k].used = 0;
    for (int k = 0; k < m->ns; k++) m->sm[k].live = m->sm[k].kind == S_SET;
    for (int k = m->ns - 1; k >= 0; k--)   /* a statement uses only statements above it */
        if (m->sm[k].live) mark(m, m->sm[k].expr);
}

/* Precedence of what a node prints as: 1 + -, 2 * /, 3 unary minus, 4 @, 5 primary. */
static int prec(const mcell *m, int k)
{
    const mnode *n = &m->nd[k];
    switch (n->kind) {
    case N_NUM: return signbit(n->num) ? 3 : 5;
    case N_BIN: return (n->op == '+' || n->op == '-') ? 1 : 2;
    case N_NEG: return 3;
    case N_MATMUL: return 4;
    default: return 5;
    }
}

static void pr(sb *b, const mcell *m, int k, int minlev)
{
    const mnode *n = &m->nd[k];
    int paren = prec(m, k) < minlev;
    char num[64];
    if (paren) sb_str(b, "(");
    switch (n->kind) {
    case N_NUM:
        fmt_num(n->num, num, sizeof num);
        sb_str(b, num);
        break;
    case N_INPUT: sb_str(b, MS(m, m->input)); break;
    case N_STATE: sb_str(b, MS(m, m->st[n->ref].name)); break;
    case N_NEW: sb_fmt(b, "%s'", MS(m, m->st[n->ref].name)); break;
    case N_LET: sb_str(b, MS(m, m->bd[n->ref].name)); break;
    case N_VEC: sb_str(b, MS(m, m->pa[n->ref].name)); break;
    case N_MATMUL:
        sb_fmt(b, "%s @ ", MS(m, m->pa[n->ref].name));
        pr(b, m, n->a, 3);
        break;
    case N_NEG:
        sb_str(b, "-");
        pr(b, m, n->a, 3);
        break;
    case N_BIN: {
        int lev = prec(m, k);
        pr(b, m, n->a, lev);
        sb_fmt(b, " %c ", n->op);
        pr(b, m, n->b, lev + 1);
        break;
    }
    case N_MINMAX:
        sb_str(b, n->op == FN_MIN ? "min(" : "max(");
        pr(b, m, n->a, 0);
        sb_str(b, ", ");
        pr(b, m, n->b, 0);
        sb_str(b, ")");
        break;
    case N_FN:
        sb_fmt(b, "%s(", MS(m, n->name));
        pr(b, m, n->a, 0);
        sb_str(b, ")");
        break;
    case N_CONCAT:
        sb_str(b, "concat(");
        for (int j = 0; j < n->nargs; j++) {
            if (j) sb_str(b, ", ");
            pr(b, m, m->args[n->arg0 + j], 0);
        }
        sb_str(b, ")");
        break;
    case N_SLICE:
        sb_str(b, "slice(");
        pr(b, m, n->a, 0);
        sb_fmt(b, ", %s, %s)", MS(m, n->s0), MS(m, n->s1));
        break;
    case N_DROPOUT:
        sb_str(b, "dropout(");
        pr(b, m, n->a, 0);
        fmt_num(n->num, num, sizeof num);
        sb_fmt(b, ", %s)", num);
        break;
    default: sb_str(b, "?"); break;
    }
    if (paren) sb_str(b, ")");
}

char *mcell_print(mcell *m, char *err, size_t errlen)
{
    mark_live(m);
    sb b = { 0 };
    char num[64];
    sb_fmt(&b, "cell %s (%s) -> ", MS(m, m->cell), MS(m, m->input));
    for (int k = 0; k < m->nst; k++) sb_fmt(&b, "%s%s", k ? ", " : "", MS(m, m->st[k].name));
    sb_fmt(&b, "\n  hidden %d\n", m->hidden);
    for (int k = 0; k < m->nst; k++)
        if (m->st[k].size >= 0) sb_fmt(&b, "  state %s : %s\n", MS(m, m->st[k].name), MS(m, m->st[k].size));
    for (int k = 0; k < m->np; k++)
        if (m->pa[k].used && m->pa[k].decl >= 0)
            sb_fmt(&b, "  %s %s : %s\n", m->pa[k].kind == P_WEIGHT ? "weight" : "vector", MS(m, m->pa[k].name),
                   MS(m, m->pa[k].decl));
    for (int k = 0; k < m->np; k++) {
        const mparam *pa = &m->pa[k];
        if (!pa->used || pa->init == I_NONE) continue;
        fmt_num(pa->init_a, num, sizeof num);
        sb_fmt(&b, "  init %s = ", MS(m, pa->name));
        switch (pa->init) {
        case I_ZEROS: sb_str(&b, "zeros\n"); break;
        case I_CONST: sb_fmt(&b, "const %s\n", num); break;
        case I_UNIFORM: sb_fmt(&b, "uniform %s\n", num); break;
        case I_GLOROT: sb_str(&b, "glorot\n"); break;
        case I_ORTHOGONAL:
            if (pa->init_a == 0) sb_str(&b, "orthogonal\n");
            else sb_fmt(&b, "orthogonal %s\n", num);
            break;
        default: sb_str(&b, "default\n"); break;
        }
    }
    sb_str(&b, "\n");
    for (int k = 0; k < m->ns; k++) {
        const mstmt *s = &m->sm[k];
        if (!s->live) continue;
        if (s->kind == S_LET) sb_fmt(&b, "  %s = ", MS(m, m->bd[s->ref].name));
        else sb_fmt(&b, "  %s' = ", MS(m, m->st[s->ref].name));
        pr(&b, m, s->expr, 0);
        sb_str(&b, "\n");
    }
    if (b.oom || m->oom) {
        free(b.s);
        fail(err, errlen, "out of memory");
        return NULL;
    }
    return b.s;
}

/* ---- mutations ---------------------------------------------------------------------------
 * Each picks a random site among all the places it applies to (uniformly, with the
 * generator of base/rng.h, so a seed gives one candidate) and edits the trees in place.
 * Mutation operators after Jozefowicz, Zaremba & Sutskever 2015 (see the top of the file). */

typedef struct site {
    int node, parent, stmt;
} site;

typedef struct sites {
    site *s;
    int n, cap;
} sites;

static void collect(mcell *m, int k, int parent, int stmt, sites *S)
{
    site *q = lang_grow(S->s, &S->cap, S->n + 1, sizeof *q);
    if (!q) {
        m->oom = 1;
        return;
    }
    S->s = q;
    q[S->n++] = (site){ k, parent, stmt };
    const mnode n = m->nd[k];
    if (n.a >= 0) collect(m, n.a, k, stmt, S);
    if (n.b >= 0) collect(m, n.b, k, stmt, S);
    if (n.kind == N_CONCAT)
        for (int j = 0; j < n.nargs; j++) collect(m, m->args[n.arg0 + j], k, stmt, S);
}

static int rnd(rng_t *r, int n) { return (int)(rng_next(r) % (uint64_t)n); }

static int same_width(const mut_env *e, lw a, lw b)
{
    if (wev(a, e->H, e->I) != wev(b, e->H, e->I)) return 0;
    return e->I2 <= 0 || wev(a, e->H, e->I2) == wev(b, e->H, e->I2);
}

static int is_row(const mcell *m, int k) { return m->nd[k].vk == V_ROW; }

/* A batch value of the same width as node k (so it may take k's place). */
static int fits(const mcell *m, const mut_env *e, int o, int k)
{
    return is_row(m, o) && same_width(e, m->nd[o].w, m->nd[k].w);
}

/* A value a line can name: the input, a state's previous or (once assigned) new value,
 * or a batch-valued binding defined above it. */
typedef struct mref {
    int kind, ref;
    lw w;
} mref;

static int refs_at(const mcell *m, int stmt, mref *out)
{
    int n = 0;
    out[n++] = (mref){ N_INPUT, -1, { 0, 1, 0 } };
    for (int k = 0; k < m->nst; k++) out[n++] = (mref){ N_STATE, k, m->st[k].w };
    for (int k = 0; k < m->nst; k++)
        if (m->st[k].set >= 0 && m->st[k].set < stmt) out[n++] = (mref){ N_NEW, k, m->st[k].w };
    for (int k = 0; k < m->nb; k++) {
        int s = m->bd[k].stmt;
        if (s < stmt && m->sm[s].live && is_row(m, m->sm[s].expr)) out[n++] = (mref){ N_LET, k, m->nd[m->sm[s].expr].w };
    }
    return n;
}

static int is_ref(const mnode *n, const mref *r)
{
    return n->kind == r->kind && (r->kind == N_INPUT || n->ref == r->ref);
}

static int mk_ref(mcell *m, const mref *r)
{
    int q = m_node(m, r->kind, V_ROW, r->w);
    if (q >= 0) m->nd[q].ref = r->ref;
    return q;
}

static int mk_bin(mcell *m, int kind, int op, int a, int b, lw w)
{
    int q = m_node(m, kind, V_ROW, w);
    if (q < 0 || a < 0 || b < 0) return -1;
    m->nd[q].op = op;
    m->nd[q].a = a;
    m->nd[q].b = b;
    return q;
}

static int mk_num(mcell *m, double v)
{
    int q = m_node(m, N_NUM, V_SCALAR, wconst(1));
    if (q >= 0) m->nd[q].num = v;
    return q;
}

/* Copies node k to a new slot (children shared), so that k can become a node using it. */
static int move_out(mcell *m, int k)
{
    int q = m_node(m, 0, 0, wconst(0));
    if (q >= 0) m->nd[q] = m->nd[k];
    return q;
}

static int deep_copy(mcell *m, int k)
{
    int a = -1, b = -1, arg0 = 0;
    mnode n = m->nd[k];
    if (n.a >= 0 && (a = deep_copy(m, n.a)) < 0) return -1;
    if (n.b >= 0 && (b = deep_copy(m, n.b)) < 0) return -1;
    if (n.kind == N_CONCAT) {
        int parts[L_MAX_ARGS];
        for (int j = 0; j < n.nargs; j++)
            if ((parts[j] = deep_copy(m, m->args[n.arg0 + j])) < 0) return -1;
        int *q = lang_grow(m->args, &m->capa, m->na + n.nargs, sizeof *q);
        if (!q) {
            m->oom = 1;
            return -1;
        }
        m->args = q;
        memcpy(q + m->na, parts, (size_t)n.nargs * sizeof *parts);
        arg0 = m->na;
        m->na += n.nargs;
    }
    int q = m_node(m, 0, 0, wconst(0));
    if (q < 0) return -1;
    m->nd[q] = n;
    m->nd[q].a = a;
    m->nd[q].b = b;
    if (n.kind == N_CONCAT) m->nd[q].arg0 = arg0;
    return q;
}

static const struct {
    int fn;
    const char *name;
} ACTS[3] = { { FN_SIGMOID, "sigmoid" }, { FN_TANH, "tanh" }, { FN_RELU, "relu" } };

static int act_of(const mnode *n)
{
    if (n->kind != N_FN) return -1;
    for (int i = 0; i < 3; i++)
        if (n->op == ACTS[i].fn) return i;
    return -1;
}

static int mk_act(mcell *m, int act, int a, lw w)
{
    int name = m_pool(m, ACTS[act].name, strlen(ACTS[act].name));
    int q = m_node(m, N_FN, V_ROW, w);
    if (q < 0 || a < 0 || name < 0) return -1;
    m->nd[q].op = ACTS[act].fn;
    m->nd[q].a = a;
    m->nd[q].name = name;
    return q;
}

static int name_used(const mcell *m, const char *s)
{
    if (strcmp(s, MS(m, m->input)) == 0) return 1;
    for (int k = 0; k < m->nst; k++)
        if (strcmp(s, MS(m, m->st[k].name)) == 0) return 1;
    for (int k = 0; k < m->np; k++)
        if (strcmp(s, MS(m, m->pa[k].name)) == 0) return 1;
    for (int k = 0; k < m->nb; k++)
        if (strcmp(s, MS(m, m->bd[k].name)) == 0) return 1;
    return 0;
}

/* A new gate sigmoid(W_xmK @ x + W_hmK @ h + b_mK) of width w (h: the output state),
 * with the smallest K that makes all three names new. */
static int mk_gate(mcell *m, lw w)
{
    char wx[L_MAX_NAME + 1], wh[L_MAX_NAME + 1], bb[L_MAX_NAME + 1];
    int k;
    for (k = 1; k < 1000000; k++) {
        snprintf(wx, sizeof wx, "W_xm%d", k);
        snprintf(wh, sizeof wh, "W_hm%d", k);
        snprintf(bb, sizeof bb, "b_m%d", k);
        if (!name_used(m, wx) && !name_used(m, wh) && !name_used(m, bb)) break;
    }
    if (k == 1000000) return -1;
    int decl = -1;
    if (!(w.h == 1 && w.i == 0 && w.c == 0)) {   /* a weight's output size is H unless declared */
        char f[96];
        wfmt(w, f, sizeof f);
        decl = m_pool(m, f, strlen(f));
    }
    int pw = add_param(m, wx, P_WEIGHT, decl), ph = add_param(m, wh, P_WEIGHT, decl), pb = add_param(m, bb, P_VECTOR, -1);
    mref xr = { N_INPUT, -1, { 0, 1, 0 } }, hr = { N_STATE, 0, m->st[0].w };
    int x = mk_ref(m, &xr), h = mk_ref(m, &hr);
    int mx = m_node(m, N_MATMUL, V_ROW, w), mh = m_node(m, N_MATMUL, V_ROW, w), vb = m_node(m, N_VEC, V_VEC, w);
    if (m->oom || pw < 0 || ph < 0 || pb < 0 || x < 0 || h < 0 || mx < 0 || mh < 0 || vb < 0) return -1;
    m->nd[mx].ref = pw;
    m->nd[mx].a = x;
    m->nd[mh].ref = ph;
    m->nd[mh].a = h;
    m->nd[vb].ref = pb;
    int s1 = mk_bin(m, N_BIN, '+', mx, mh, w);
    int s2 = mk_bin(m, N_BIN, '+', s1, vb, w);
    return mk_act(m, 0, s2, w);
}

/* Two passes over the candidates: count them, then act on the pick-th. */
#define PICK_LOOP(r, ...)                                                                                              \
    do {                                                                                                               \
        int pick_ = -1;                                                                                                \
        for (int pass_ = 0; pass_ < 2; pass_++) {                                                                      \
            int idx_ = 0;                                                                                              \
            __VA_ARGS__                                                                                                \
            if (pass_ == 0) {                                                                                          \
                if (idx_ == 0) return -1;                                                                              \
                pick_ = rnd(r, idx_);                                                                                  \
            }                                                                                                          \
        }                                                                                                              \
        return -1;                                                                                                     \
    } while (0)
/* Inside PICK_LOOP: one candidate, acted on when it is the one picked. */
#define CANDIDATE(action)                                                                                              \
    do {                                                                                                               \
        if (pass_ == 1 && idx_ == pick_) return (action);                                                              \
        idx_++;                                                                                                        \
    } while (0)

/* Replace an activation by tanh, sigmoid, relu or the identity; or put one on a sum, a
 * product or a W @ v that no activation wraps (Jozefowicz et al. 2015 replace a node's
 * activation function). */
static int do_activation(mcell *m, rng_t *r, int k, int wrap)
{
    if (wrap) {
        lw w = m->nd[k].w;
        int e = move_out(m, k), q = mk_act(m, rnd(r, 3), e, w);
        if (q < 0) return -1;
        m->nd[k] = m->nd[q];
        return 0;
    }
    int cur = act_of(&m->nd[k]), to = rnd(r, 3);   /* the three others: identity and two activations */
    int choice = (cur + 1 + to) % 4;               /* 0..2 an activation, 3 the identity */
    if (choice == 3) {
        m->nd[k] = m->nd[m->nd[k].a];
        return 0;
    }
    int name = m_pool(m, ACTS[choice].name, strlen(ACTS[choice].name));
    if (name < 0) return -1;
    m->nd[k].op = ACTS[choice].fn;
    m->nd[k].name = name;
    return 0;
}

static int mut_activation(mcell *m, rng_t *r, const sites *S)
{
    PICK_LOOP(r, {
        for (int i = 0; i < S->n; i++) {
            int k = S->s[i].node, par = S->s[i].parent;
            const mnode *n = &m->nd[k];
            if (!is_row(m, k)) continue;
            if (act_of(n) >= 0 && is_row(m, n->a)) CANDIDATE(do_activation(m, r, k, 0));
            else if ((n->kind == N_MATMUL || (n->kind == N_BIN && (n->op == '+' || n->op == '*'))) &&
                     (par < 0 || act_of(&m->nd[par]) < 0))
                CANDIDATE(do_activation(m, r, k, 1));
        }
    });
}

/* e -> sigmoid(W_x @ x + W_h @ h + b) * e with new parameters: a new gate. */
static int do_gate_add(mcell *m, int k)
{
    lw w = m->nd[k].w;
    int g = mk_gate(m, w), e = move_out(m, k);
    int q = mk_bin(m, N_BIN, '*', g, e, w);
    if (q < 0) return -1;
    m->nd[k] = m->nd[q];
    return 0;
}

static int mut_gate_add(mcell *m, rng_t *r, const sites *S)
{
    PICK_LOOP(r, {
        for (int i = 0; i < S->n; i++)
            if (is_row(m, S->s[i].node)) CANDIDATE(do_gate_add(m, S->s[i].node));
    });
}

/* Node k becomes its operand o. */
static int keep(mcell *m, int k, int o)
{
    m->nd[k] = m->nd[o];
    return 0;
}

/* a * b -> a, or -> b: remove a gate (or any product of batch values). */
static int mut_gate_remove(mcell *m, rng_t *r, const mut_env *e, const sites *S)
{
    PICK_LOOP(r, {
        for (int i = 0; i < S->n; i++) {
            int k = S->s[i].node;
            const mnode *n = &m->nd[k];
            if (n->kind != N_BIN || n->op != '*' || !is_row(m, k)) continue;
            if (m->nd[n->a].vk == V_SCALAR || m->nd[n->b].vk == V_SCALAR) continue;   /* a scale */
            if (fits(m, e, n->a, k)) CANDIDATE(keep(m, k, n->a));
            if (fits(m, e, n->b, k)) CANDIDATE(keep(m, k, n->b));
        }
    });
}

/* e -> e + v, v a value the line can name of e's width: a skip connection. */
static int do_combine(mcell *m, int k, int kind, int op, const mref *v, int swap)
{
    lw w = m->nd[k].w;
    int e = move_out(m, k), x = mk_ref(m, v);
    int q = swap ? mk_bin(m, kind, op, x, e, w) : mk_bin(m, kind, op, e, x, w);
    if (q < 0) return -1;
    m->nd[k] = m->nd[q];
    return 0;
}

static int mut_skip_add(mcell *m, rng_t *r, const mut_env *e, const sites *S, mref *refs)
{
    PICK_LOOP(r, {
        for (int i = 0; i < S->n; i++) {
            int k = S->s[i].node;
            if (!is_row(m, k)) continue;
            int nr = refs_at(m, S->s[i].stmt, refs);
            for (int j = 0; j < nr; j++)
                if (!is_ref(&m->nd[k], &refs[j]) && same_width(e, refs[j].w, m->nd[k].w))
                    CANDIDATE(do_combine(m, k, N_BIN, '+', &refs[j], 0));
        }
    });
}

/* a + b -> a or b, a - b -> a: remove a term (a skip, a bias, a recurrent input). */
static int mut_skip_remove(mcell *m, rng_t *r, const mut_env *e, const sites *S)
{
    PICK_LOOP(r, {
        for (int i = 0; i < S->n; i++) {
            int k = S->s[i].node;
            const mnode *n = &m->nd[k];
            if (n->kind != N_BIN || (n->op != '+' && n->op != '-') || !is_row(m, k)) continue;
            if (fits(m, e, n->a, k)) CANDIDATE(keep(m, k, n->a));
            if (n->op == '+' && fits(m, e, n->b, k)) CANDIDATE(keep(m, k, n->b));
        }
    });
}

/* A reference to the input, a state or a binding -> another one of the same width. */
static int do_swap(mcell *m, int k, const mref *v)
{
    m->nd[k].kind = v->kind;
    m->nd[k].ref = v->ref;
    m->nd[k].w = v->w;
    return 0;
}

static int mut_swap(mcell *m, rng_t *r, const mut_env *e, const sites *S, mref *refs)
{
    PICK_LOOP(r, {
        for (int i = 0; i < S->n; i++) {
            int k = S->s[i].node, kind = m->nd[k].kind;
            if (!is_row(m, k) || (kind != N_INPUT && kind != N_STATE && kind != N_NEW && kind != N_LET)) continue;
            int nr = refs_at(m, S->s[i].stmt, refs);
            for (int j = 0; j < nr; j++)
                if (!is_ref(&m->nd[k], &refs[j]) && same_width(e, refs[j].w, m->nd[k].w)) CANDIDATE(do_swap(m, k, &refs[j]));
        }
    });
}

/* e -> e op v with op one of * - min max and v a value of e's width (Jozefowicz et al.
 * 2015 replace a node by an elementwise operation of it and another node). */
static int mut_combine(mcell *m, rng_t *r, const mut_env *e, const sites *S, mref *refs)
{
    PICK_LOOP(r, {
        for (int i = 0; i < S->n; i++) {
            int k = S->s[i].node;
            if (!is_row(m, k)) continue;
            int nr = refs_at(m, S->s[i].stmt, refs);
            for (int j = 0; j < nr; j++) {
                if (is_ref(&m->nd[k], &refs[j]) || !same_width(e, refs[j].w, m->nd[k].w)) continue;
                static const int ops[4][2] = { { N_BIN, '*' }, { N_BIN, '-' }, { N_MINMAX, FN_MIN }, { N_MINMAX, FN_MAX } };
                int o = rnd(r, 4);
                CANDIDATE(do_combine(m, k, ops[o][0], ops[o][1], &refs[j], ops[o][1] == '-' && rnd(r, 2)));
            }
        }
    });
}

/* ---- z / 1 - z mixing ---- */

static int eq_tree(const mcell *m, int i, int j)
{
    if (i == j) return 1;
    if (i < 0 || j < 0) return 0;
    const mnode *a = &m->nd[i], *b = &m->nd[j];
    if (a->kind != b->kind || a->op != b->op || a->ref != b->ref || a->vk != b->vk || a->nargs != b->nargs) return 0;
    if ((a->kind == N_NUM || a->kind == N_DROPOUT) && a->num != b->num) return 0;
    if (a->kind == N_SLICE && (strcmp(MS(m, a->s0), MS(m, b->s0)) != 0 || strcmp(MS(m, a->s1), MS(m, b->s1)) != 0))
        return 0;
    if (!eq_tree(m, a->a, b->a) || !eq_tree(m, a->b, b->b)) return 0;
    if (a->kind == N_CONCAT)
        for (int k = 0; k < a->nargs; k++)
            if (!eq_tree(m, m->args[a->arg0 + k], m->args[b->arg0 + k])) return 0;
    return 1;
}

static int is_prod(const mcell *m, int k)
{
    const mnode *n = &m->nd[k];
    return n->kind == N_BIN && n->op == '*' && is_row(m, k) && m->nd[n->a].vk != V_SCALAR && m->nd[n->b].vk != V_SCALAR;
}

static int is_one_minus(const mcell *m, int k)
{
    const mnode *n = &m->nd[k];
    return n->kind == N_BIN && n->op == '-' && m->nd[n->a].kind == N_NUM && m->nd[n->a].num == 1.0 &&
           m->nd[n->b].vk != V_SCALAR;
}

/* A mixing at the '+' node k: form 1 is A + Z * (C - A), form 2 is Z * C + (1 - Z) * A
 * (both Z * C + (1 - Z) * A); form 0 is any other sum of two products of batch values
 * (p1 + p2), which can be coupled. 0 when k is none of them. */
typedef struct mixsite {
    int form, z, c, a;
} mixsite;

static int find_mix(const mcell *m, int k, mixsite *o)
{
    const mnode *n = &m->nd[k];
    if (n->kind != N_BIN || n->op != '+' || !is_row(m, k)) return 0;
    for (int side = 0; side < 2; side++) {
        int A = side ? n->b : n->a, P = side ? n->a : n->b;
        if (!is_prod(m, P)) continue;
        for (int j = 0; j < 2; j++) {
            int D = j ? m->nd[P].b : m->nd[P].a, Z = j ? m->nd[P].a : m->nd[P].b;
            const mnode *d = &m->nd[D];
            if (d->kind == N_BIN && d->op == '-' && is_row(m, D) && is_row(m, d->a) && eq_tree(m, d->b, A)) {
                *o = (mixsite){ 1, Z, d->a, A };
                return 1;
            }
        }
    }
    if (!is_prod(m, n->a) || !is_prod(m, n->b)) return 0;
    for (int side = 0; side < 2; side++) {
        int P1 = side ? n->b : n->a, P2 = side ? n->a : n->b;
        for (int j = 0; j < 2; j++) {
            int OM = j ? m->nd[P2].b : m->nd[P2].a, A = j ? m->nd[P2].a : m->nd[P2].b;
            if (!is_one_minus(m, OM)) continue;
            for (int i = 0; i < 2; i++) {
                int Z = i ? m->nd[P1].b : m->nd[P1].a, C = i ? m->nd[P1].a : m->nd[P1].b;
                if (eq_tree(m, m->nd[OM].b, Z)) {
                    *o = (mixsite){ 2, Z, C, A };
                    return 1;
                }
            }
        }
    }
    *o = (mixsite){ 0, -1, -1, -1 };
    return 1;
}

/* Respell (h + z*(c - h) <-> z*c + (1-z)*h), swap the sides z weighs, or decouple
 * (z*c + g*h with a new gate g); or couple a*b + c*d -> a*b + (1-a)*d (the GRU's
 * coupled gates, as Jozefowicz et al. 2015 compare with the LSTM's separate ones). */
static int do_mix(mcell *m, rng_t *r, int k, const mixsite *ms)
{
    lw w = m->nd[k].w;
    if (ms->form == 0) {
        int P1 = m->nd[k].a, P2 = m->nd[k].b;
        if (rnd(r, 2)) P1 = m->nd[k].b, P2 = m->nd[k].a;
        int g = rnd(r, 2) ? m->nd[P1].a : m->nd[P1].b, slot = rnd(r, 2);
        int gc = deep_copy(m, g), one = mk_num(m, 1.0);
        int om = mk_bin(m, N_BIN, '-', one, gc, w);
        if (om < 0) return -1;
        m->nd[om].vk = m->nd[g].vk;
        m->nd[om].w = m->nd[g].w;
        if (slot) m->nd[P2].b = om;
        else m->nd[P2].a = om;
        return 0;
    }
    int cur = ms->form == 1 ? 0 : 1, to = (cur + 1 + rnd(r, 4)) % 5;
    int Z = ms->z, C = ms->c, A = ms->a;
    if (to == 2 || to == 3) {   /* z weighs the other side */
        C = ms->a;
        A = ms->c;
    }
    int q;
    if (to == 0 || to == 2) {   /* A + Z * (C - A) */
        int d = mk_bin(m, N_BIN, '-', C, deep_copy(m, A), w);
        q = mk_bin(m, N_BIN, '+', A, mk_bin(m, N_BIN, '*', Z, d, w), w);
    } else if (to == 1 || to == 3) {   /* Z * C + (1 - Z) * A */
        int om = mk_bin(m, N_BIN, '-', mk_num(m, 1.0), deep_copy(m, Z), w);
        if (om < 0) return -1;
        m->nd[om].vk = m->nd[Z].vk;
        m->nd[om].w = m->nd[Z].w;
        q = mk_bin(m, N_BIN, '+', mk_bin(m, N_BIN, '*', Z, C, w), mk_bin(m, N_BIN, '*', om, A, w), w);
    } else {   /* Z * C + G * A */
        int g = mk_gate(m, w);
        q = mk_bin(m, N_BIN, '+', mk_bin(m, N_BIN, '*', Z, C, w), mk_bin(m, N_BIN, '*', g, A, w), w);
    }
    if (q < 0) return -1;
    m->nd[k] = m->nd[q];
    return 0;
}

static int mut_mix(mcell *m, rng_t *r, const sites *S)
{
    PICK_LOOP(r, {
        for (int i = 0; i < S->n; i++) {
            mixsite ms;
            if (find_mix(m, S->s[i].node, &ms)) CANDIDATE(do_mix(m, r, S->s[i].node, &ms));
        }
    });
}

int mcell_mutate(mcell *m, unsigned kind, rng_t *r, const mut_env *e)
{
    mark_live(m);
    sites S = { 0 };
    for (int k = 0; k < m->ns && !m->oom; k++)
        if (m->sm[k].live) collect(m, m->sm[k].expr, -1, k, &S);
    mref *refs = m->oom ? NULL : malloc((size_t)(1 + 2 * m->nst + m->nb) * sizeof *refs);
    int rc = -1;
    if (refs) switch (kind) {
        case RC_MUT_ACTIVATION: rc = mut_activation(m, r, &S); break;
        case RC_MUT_GATE_ADD: rc = mut_gate_add(m, r, &S); break;
        case RC_MUT_GATE_REMOVE: rc = mut_gate_remove(m, r, e, &S); break;
        case RC_MUT_SKIP_ADD: rc = mut_skip_add(m, r, e, &S, refs); break;
        case RC_MUT_SKIP_REMOVE: rc = mut_skip_remove(m, r, e, &S); break;
        case RC_MUT_SWAP: rc = mut_swap(m, r, e, &S, refs); break;
        case RC_MUT_MIX: rc = mut_mix(m, r, &S); break;
        case RC_MUT_COMBINE: rc = mut_combine(m, r, e, &S, refs); break;
        default: break;
        }
    free(refs);
    free(S.s);
    return m->oom ? -2 : rc;
}

/* ---- respelling (for tests of the canonical form) ---------------------------------------- */

/* The statements expression k reads: bit j of deps (j < ns) for each binding or state
 * assignment j. */
static void stmt_deps(const mcell *m, int k, unsigned char *deps)
{
    const mnode *n = &m->nd[k];
    if (n->kind == N_LET) deps[m->bd[n->ref].stmt] = 1;
    if (n->kind == N_NEW) deps[m->st[n->ref].set] = 1;
    if (n->a >= 0) stmt_deps(m, n->a, deps);
    if (n->b >= 0) stmt_deps(m, n->b, deps);
    if (n->kind == N_CONCAT)
        for (int j = 0; j < n->nargs; j++) stmt_deps(m, m->args[n->arg0 + j], deps);
}

int mcell_respell(mcell *m, uint64_t seed)
{
    rng_t r;
    rng_seed(&r, seed);
    /* operands of + * min max commuted, and (a + b) + c regrouped as a + (b + c), at random */
    for (int k = 0; k < m->nn; k++) {
        mnode *n = &m->nd[k];
        int comm = (n->kind == N_BIN && (n->op == '+' || n->op == '*')) || n->kind == N_MINMAX;
        if (!comm || n->a < 0 || n->b < 0) continue;
        int L = n->a;
        if (n->kind == N_BIN && m->nd[L].kind == N_BIN && m->nd[L].op == n->op && rnd(&r, 2)) {
            int a = m->nd[L].a, b = m->nd[L].b, c = n->b;
            m->nd[L].b = c;
            m->nd[L].a = b;
            n->a = a;
            n->b = L;
        }
        if (rnd(&r, 2)) {
            int t = n->a;
            n->a = n->b;
            n->b = t;
        }
    }
    /* new names for the bindings and parameters */
    char nm[L_MAX_NAME + 1];
    uint64_t tag = rng_next(&r) % 1000;
    for (int k = 0; k < m->nb; k++) {
        snprintf(nm, sizeof nm, "t%llu_%d", (unsigned long long)tag, k);
        if ((m->bd[k].name = m_pool(m, nm, strlen(nm))) < 0) return -1;
    }
    for (int k = 0; k < m->np; k++) {
        snprintf(nm, sizeof nm, "q%llu_%d", (unsigned long long)tag, k);
        if ((m->pa[k].name = m_pool(m, nm, strlen(nm))) < 0) return -1;
    }
    /* the statements in another order that keeps every definition above its uses */
    int ns = m->ns;
    unsigned char *deps = calloc((size_t)ns * (size_t)ns + 1, 1), *done = calloc((size_t)ns + 1, 1);
    int *order = malloc(((size_t)ns + 1) * sizeof *order), *where = malloc(((size_t)ns + 1) * sizeof *where);
    mstmt *sm = malloc(((size_t)ns + 1) * sizeof *sm);
    int rc = -1;
    if (!deps || !done || !order || !where || !sm) goto out;
    for (int k = 0; k < ns; k++) stmt_deps(m, m->sm[k].expr, deps + (size_t)k * (size_t)ns);
    for (int pos = 0; pos < ns; pos++) {
        int nready = 0, pick = -1;
        for (int k = 0; k < ns; k++) {
            if (done[k]) continue;
            int ok = 1;
            for (int j = 0; j < ns && ok; j++) ok = !deps[(size_t)k * (size_t)ns + (size_t)j] || done[j];
            if (ok && rnd(&r, ++nready) == 0) pick = k;   /* a uniform pick among the ready ones */
        }
        if (pick < 0) goto out;
        done[pick] = 1;
        order[pos] = pick;
        where[pick] = pos;
    }
    for (int pos = 0; pos < ns; pos++) sm[pos] = m->sm[order[pos]];
    memcpy(m->sm, sm, (size_t)ns * sizeof *sm);
    for (int k = 0; k < m->nb; k++) m->bd[k].stmt = where[m->bd[k].stmt];
    for (int k = 0; k < m->nst; k++)
        if (m->st[k].set >= 0) m->st[k].set = where[m->st[k].set];
    rc = 0;
out:
    free(deps);
    free(done);
    free(order);
    free(where);
    free(sm);
    return rc;
}

/* ---- the candidate check ------------------------------------------------------------- */

/* Bit 0: the input; bit 1 + k: state k's previous value. */
static uint32_t dep_of(const lang_prog *p, int k, const uint32_t *let, const uint32_t *nw)
{
    const lnode *n = &pnodes(p)[k];
    if (n->vk == V_SCALAR) return 0;
    switch (n->kind) {
    case N_INPUT: return 1;
    case N_STATE: return 2u << n->ref;
    case N_NEW: return nw[n->ref];
    case N_LET: return let[n->ref];
    case N_VEC: return 0;
    case N_CONCAT: {
        uint32_t d = 0;
        for (int j = 0; j < n->nargs; j++) d |= dep_of(p, pargs(p)[n->arg0 + j], let, nw);
        return d;
    }
    default: return (n->a >= 0 ? dep_of(p, n->a, let, nw) : 0) | (n->b >= 0 ? dep_of(p, n->b, let, nw) : 0);
    }
}

/* The states (bit k) whose previous values reach the new values of the states in `from`. */
static uint32_t reach(const uint32_t *nw, uint32_t from)
{
    uint32_t seen = 0, front = 0;
    for (int s = 0; s < L_MAX_STATES; s++)
        if (from >> s & 1) front |= nw[s] >> 1;
    while (front & ~seen) {
        uint32_t f = front & ~seen, next = 0;
        seen |= f;
        for (int s = 0; s < L_MAX_STATES; s++)
            if (f >> s & 1) next |= nw[s] >> 1;
        front = next;
    }
    return seen;
}

int cell_check_prog(const lang_prog *p, int I, int I2, char *err, size_t errlen)
{
    if (lang_validate(p, I, NULL, err, errlen)) return -1;
    if (I2 > 0 && I2 != I && lang_validate(p, I2, NULL, err, errlen)) return -1;
    uint32_t nw[L_MAX_STATES] = { 0 }, *let = calloc((size_t)p->nbinds + 1, sizeof *let);
    if (!let) return fail(err, errlen, "out of memory");
    const lstmt *st = pstmts(p);
    for (int k = 0; k < p->nstmts; k++) {
        uint32_t d = dep_of(p, st[k].expr, let, nw);
        if (st[k].kind == S_LET) let[st[k].ref] = d;
        else nw[st[k].ref] = d;
    }
    free(let);
    const char *pool = ppool(p), *cell = pool + p->cell, *in = pool + p->input, *out = lang_state_name(p, 0);
    if (!(nw[0] & 1))
        return fail(err, errlen, "cell '%s': the new value of its output %s' does not depend on the input '%s': "
                    "expected a cell that reads its input", cell, out, in);
    uint32_t R = reach(nw, 1);
    if (!R)
        return fail(err, errlen, "cell '%s': %s' depends on no state's previous value: expected a recurrence", cell, out);
    int sees = 0, cycle = 0;
    for (int s = 0; s < p->nstates; s++)
        if (R >> s & 1) {
            sees |= (int)(nw[s] & 1);
            cycle |= (int)(reach(nw, 1u << s) >> s & 1);
        }
    if (!sees)
        return fail(err, errlen, "cell '%s': none of the states %s' reads sees the input: the recurrence carries nothing "
                    "from earlier steps", cell, out);
    if (!cycle)
        return fail(err, errlen, "cell '%s': %s' depends on the past through a fixed number of steps only (no cycle "
                    "among the states it reads): expected a recurrence", cell, out);
    for (int s = 1; s < p->nstates; s++)
        if (!(R >> s & 1))
            return fail(err, errlen, "cell '%s': the previous value of state '%s' never reaches the output %s': "
                        "expected every state to carry something to the output", cell, lang_state_name(p, s), out);
    return 0;
}

/* ---- the canonical form ----------------------------------------------------------------
 * The program becomes a DAG of canonical nodes: bindings and states' new values are
 * inlined (so their names and the order of independent lines vanish), chains of + and
 * of * become one node with their terms as a multiset (constants folded into one),
 * -a is a * (-1), and equal subterms are one node (hash-consing). Nodes, parameters
 * and states are then coloured by refinement (Weisfeiler-Lehman: a colour from the op,
 * a parameter's shapes and init, a state's size, refined by the colours of children,
 * parents and users until the partition is stable), the operands of + * min max are
 * sorted by colour (an order that no name and no spelling decides; operands that
 * refinement cannot tell apart keep the order of the first spelling), the states after
 * the first likewise, and the DAG is written out in post-order from the states' new
 * values with nodes numbered n0, n1, ... and parameters p0, p1, ... by first
 * appearance. The text is hashed with FNV-1a. Widths are written in H and I, with I in
 * terms of H when a width ties them (tie_of). */

enum { C_NUM, C_INPUT, C_STATE, C_VEC, C_MATMUL, C_ADD, C_MUL, C_SUB, C_DIV, C_MIN, C_MAX, C_FN, C_CONCAT, C_SLICE,
       C_DROPOUT };
static const char *const C_NAME[] = { "num", "x", "state", "vec", "matmul", "add", "mul", "sub", "div", "min", "max",
                                      "fn", "concat", "slice", "dropout" };

static int c_comm(int op) { return op == C_ADD || op == C_MUL || op == C_MIN || op == C_MAX; }
static int c_leaf(int op) { return op == C_NUM || op == C_INPUT || op == C_STATE || op == C_VEC; }

typedef struct cn {
    int op, n, a0, ref;
    double num;
    const char *fn;
    lw w0, w1;
} cn;

typedef struct canon {
    const lang_prog *p;
    cn *c;
    int nc, capc;
    int *ca;
    int nca, capca;
    int *tab;
    int tcap;
    int *let, *nw;
    int oom, tied;
    lw I;   /* tied: the input size in H */
} canon;

static uint64_t fnv(uint64_t h, const void *d, size_t n)
{
    const unsigned char *s = d;
    for (size_t k = 0; k < n; k++) h = (h ^ s[k]) * 1099511628211ull;
    return h;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static uint64_t mix_w(uint64_t h, lw w) { return mix(mix(mix(h, (uint64_t)w.h), (uint64_t)w.i), (uint64_t)w.c); }

static uint64_t cn_key(const cn *x, const int *kids)
{
    uint64_t h = 1469598103934665603ull;
    h = mix(h, (uint64_t)x->op);
    h = mix(h, (uint64_t)(int64_t)x->ref);
    h = mix(h, dbits(x->num));
    h = mix_w(mix_w(h, x->w0), x->w1);
    if (x->fn) h = fnv(h, x->fn, strlen(x->fn));
    h = mix(h, (uint64_t)x->n);
    for (int k = 0; k < x->n; k++) h = mix(h, (uint64_t)kids[k]);
    return h;
}

static int lw_eq(lw a, lw b) { return a.h == b.h && a.i == b.i && a.c == b.c; }

static int cn_same(const canon *C, int id, const cn *x, const int *kids)
{
    const cn *y = &C->c[id];
    if (y->op != x->op || y->n != x->n || y->ref != x->ref || dbits(y->num) != dbits(x->num) || !lw_eq(y->w0, x->w0) ||
        !lw_eq(y->w1, x->w1) || (y->fn == NULL) != (x->fn == NULL) || (y->fn && strcmp(y->fn, x->fn) != 0))
        return 0;
    return x->n == 0 || memcmp(C->ca + y->a0, kids, (size_t)x->n * sizeof *kids) == 0;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int c_rehash(canon *C)
{
    int cap = C->tcap ? C->tcap * 2 : 256;
    int *t = malloc((size_t)cap * sizeof *t);
    if (!t) return C->oom = 1, -1;
    for (int k = 0; k < cap; k++) t[k] = -1;
    for (int id = 0; id < C->nc; id++) {
        size_t i = (size_t)cn_key(&C->c[id], C->ca + C->c[id].a0) & (size_t)(cap - 1);
        while (t[i] >= 0) i = (i + 1) & (size_t)(cap - 1);
        t[i] = id;
    }
    free(C->tab);
    C->tab = t;
    C->tcap = cap;
    return 0;
}

/* The node x with children kids (sorted here when x is commutative), made once. */
static int intern(canon *C, cn x, int *kids)
{
    if (C->oom) return -1;
    if (c_comm(x.op)) qsort(kids, (size_t)x.n, sizeof *kids, cmp_int);
    if ((C->nc + 1) * 2 > C->tcap && c_rehash(C)) return -1;
    size_t i = (size_t)cn_key(&x, kids) & (size_t)(C->tcap - 1);
    while (C->tab[i] >= 0) {
        if (cn_same(C, C->tab[i], &x, kids)) return C->tab[i];
        i = (i + 1) & (size_t)(C->tcap - 1);
    }
    cn *q = lang_grow(C->c, &C->capc, C->nc + 1, sizeof *q);
    if (!q) return C->oom = 1, -1;
    C->c = q;
    if (x.n > 0) {
        int *a = lang_grow(C->ca, &C->capca, C->nca + x.n, sizeof *a);
        if (!a) return C->oom = 1, -1;
        C->ca = a;
        memcpy(a + C->nca, kids, (size_t)x.n * sizeof *kids);
    }
    x.a0 = C->nca;
    C->nca += x.n;
    C->c[C->nc] = x;
    C->tab[i] = C->nc;
    return C->nc++;
}

static cn cn_make(int op) { return (cn){ .op = op, .ref = -1 }; }

static int c_num(canon *C, double v)
{
    cn x = cn_make(C_NUM);
    x.num = v;
    return intern(C, x, NULL);
}

/* A + or * of the terms in[0..nin), flattened into one node with constants folded. */
static int c_nary(canon *C, int op, const int *in, int nin)
{
    int total = 0;
    for (int k = 0; k < nin; k++) {
        if (in[k] < 0) return -1;
        total += C->c[in[k]].op == op ? C->c[in[k]].n : 1;
    }
    int *t = malloc((size_t)(total + 1) * sizeof *t);
    if (!t) return C->oom = 1, -1;
    int m = 0, nk = 0;
    double acc = op == C_ADD ? 0.0 : 1.0;
    for (int k = 0; k < nin; k++) {
        const cn *x = &C->c[in[k]];
        int cnt = x->op == op ? x->n : 1;
        for (int j = 0; j < cnt; j++) {
            int id = x->op == op ? C->ca[x->a0 + j] : in[k];
            if (C->c[id].op == C_NUM) {
                acc = op == C_ADD ? acc + C->c[id].num : acc * C->c[id].num;
                nk++;
            } else t[m++] = id;
        }
    }
    int r;
    if (nk && acc != (op == C_ADD ? 0.0 : 1.0)) {
        int c = c_num(C, acc);
        if (c < 0) {
            free(t);
            return -1;
        }
        t[m++] = c;
    }
    if (m == 0) r = c_num(C, acc);
    else if (m == 1) r = t[0];
    else {
        cn x = cn_make(op);
        x.n = m;
        r = intern(C, x, t);
    }
    free(t);
    return r;
}

/* Widths that a deferred equality ties (I = H where x meets a value of width H) are
 * spelled either way (a weight's input width comes from its first use): the canonical
 * form writes every width with I replaced by what the first such equality makes it, in
 * H. 1 and *I when there is one with whole coefficients; 0 otherwise. */
static int tie_of(const lang_prog *p, lw *I)
{
    const lnode *nd = pnodes(p);
    const lstmt *st = pstmts(p);
    for (int k = 0; k < p->nnodes + p->nstmts; k++) {
        lw a, b;
        if (k < p->nnodes) {
            const lnode *n = &nd[k];
            if (!n->defer || (n->vk != V_ROW && n->vk != V_VEC)) continue;
            if (n->kind == N_BIN || n->kind == N_MINMAX) a = nd[n->a].w, b = nd[n->b].w;
            else if (n->kind == N_MATMUL) a = nd[n->a].w, b = pparams(p)[n->ref].in;
            else continue;
        } else {
            if (!st[k - p->nnodes].defer) continue;
            a = nd[st[k - p->nnodes].expr].w;
            b = pstates(p)[st[k - p->nnodes].ref].size;
        }
        long long di = a.i - b.i, dh = a.h - b.h, dc = a.c - b.c;   /* di*I + dh*H + dc = 0 */
        if (di != 0 && dh % di == 0 && dc % di == 0) {
            *I = (lw){ -dh / di, 0, -dc / di };
            return 1;
        }
    }
    return 0;
}

static lw c_w(const canon *C, lw w)
{
    if (!C->tied || w.i == 0) return w;
    return (lw){ w.h + w.i * C->I.h, 0, w.c + w.i * C->I.c };
}

static int cv(canon *C, int k)
{
    const lang_prog *p = C->p;
    const lnode *n = &pnodes(p)[k];
    if (n->vk == V_SCALAR) return c_num(C, n->num);
    int kids[L_MAX_ARGS];
    cn x = cn_make(-1);
    switch (n->kind) {
    case N_INPUT: return intern(C, cn_make(C_INPUT), NULL);
    case N_STATE: x.op = C_STATE, x.ref = n->ref; return intern(C, x, NULL);
    case N_NEW: return C->nw[n->ref];
    case N_LET: return C->let[n->ref];
    case N_VEC: x.op = C_VEC, x.ref = n->ref; return intern(C, x, NULL);
    case N_MATMUL:
        if ((kids[0] = cv(C, n->a)) < 0) return -1;
        x.op = C_MATMUL, x.ref = n->ref, x.n = 1;
        return intern(C, x, kids);
    case N_NEG:
        kids[0] = cv(C, n->a);
        kids[1] = c_num(C, -1.0);
        return c_nary(C, C_MUL, kids, 2);
    case N_BIN: case N_MINMAX:
        if ((kids[0] = cv(C, n->a)) < 0 || (kids[1] = cv(C, n->b)) < 0) return -1;
        if (n->kind == N_MINMAX) x.op = n->op == FN_MIN ? C_MIN : C_MAX;
        else if (n->op == '+' || n->op == '*') return c_nary(C, n->op == '+' ? C_ADD : C_MUL, kids, 2);
        else x.op = n->op == '-' ? C_SUB : C_DIV;
        x.n = 2;
        return intern(C, x, kids);
    case N_FN: case N_SLICE: case N_DROPOUT:
        if ((kids[0] = cv(C, n->a)) < 0) return -1;
        x.op = n->kind == N_FN ? C_FN : n->kind == N_SLICE ? C_SLICE : C_DROPOUT;
        x.n = 1;
        if (n->kind == N_FN) x.fn = ppool(p) + n->name;
        if (n->kind == N_SLICE) x.w0 = c_w(C, n->s0), x.w1 = c_w(C, n->s1);
        if (n->kind == N_DROPOUT) x.num = n->num;
        return intern(C, x, kids);
    case N_CONCAT:
        for (int j = 0; j < n->nargs; j++)
            if ((kids[j] = cv(C, pargs(p)[n->arg0 + j])) < 0) return -1;
        x.op = C_CONCAT, x.n = n->nargs;
        return intern(C, x, kids);
    default: return -1;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The colour a node starts from: its op and what it holds besides references. */
static uint64_t c_label(const cn *x)
{
    uint64_t v = mix(mix(7, (uint64_t)x->op), (uint64_t)x->n);
    if (x->op == C_NUM || x->op == C_DROPOUT) v = mix(v, dbits(x->num));
    if (x->op == C_FN) v = fnv(v, x->fn, strlen(x->fn));
    if (x->op == C_SLICE) v = mix_w(mix_w(v, x->w0), x->w1);
    return v;
}

typedef struct contrib {
    int who;
    uint64_t v;
} contrib;

static int cmp_contrib(const void *a, const void *b)
{
    const contrib *x = a, *y = b;
    if (x->who != y->who) return (x->who > y->who) - (x->who < y->who);
    return (x->v > y->v) - (x->v < y->v);
}

/* The number of distinct colours of the live nodes, the parameters and the states. */
static int count_distinct(const canon *C, const uint64_t *col, const unsigned char *live, uint64_t *tmp)
{
    int n = 0, all = C->nc + C->p->nparams + C->p->nstates;
    for (int k = 0; k < all; k++)
        if (k >= C->nc || live[k]) tmp[n++] = col[k];
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_u64);
    int d = n > 0;
    for (int k = 1; k < n; k++) d += tmp[k] != tmp[k - 1];
    return d;
}

/* One round of colour refinement (Weisfeiler-Lehman) over the live nodes, parameters
 * and states (col: nodes, then parameters, then states): each one's new colour is its
 * colour and the sorted colours of its neighbours, tagged with the relation: a child
 * (with its position unless the op is commutative), a parent (likewise), the parameter
 * or state a node refers to, the nodes that refer to it, a state's new value. Only live
 * nodes count: the partial sums a chain of + left behind while it was flattened depend
 * on how the chain was grouped. */
static void c_round(const canon *C, const unsigned char *live, const uint64_t *col, uint64_t *out, contrib *cb)
{
    int nc = C->nc, np = C->p->nparams, nb = 0, all = nc + np + C->p->nstates;
    for (int q = 0; q < nc; q++) {
        if (!live[q]) continue;
        const cn *x = &C->c[q];
        int ref = (x->op == C_VEC || x->op == C_MATMUL) ? nc + x->ref : x->op == C_STATE ? nc + np + x->ref : -1;
        if (ref >= 0) {
            cb[nb++] = (contrib){ q, mix(col[ref], 1) };
            cb[nb++] = (contrib){ ref, mix(col[q], 2) };
        }
        for (int j = 0; j < x->n; j++) {
            int kid = C->ca[x->a0 + j];
            uint64_t role = c_comm(x->op) ? 0 : (uint64_t)j + 1;
            cb[nb++] = (contrib){ q, mix(mix(col[kid], 3), role) };
            cb[nb++] = (contrib){ kid, mix(mix(col[q], 4), role) };
        }
    }
    for (int s = 0; s < C->p->nstates; s++) {
        cb[nb++] = (contrib){ C->nw[s], mix(col[nc + np + s], 5) };
        cb[nb++] = (contrib){ nc + np + s, mix(col[C->nw[s]], 6) };
    }
    qsort(cb, (size_t)nb, sizeof *cb, cmp_contrib);
    memcpy(out, col, (size_t)all * sizeof *out);
    for (int k = 0; k < nb; k++) out[cb[k].who] = mix(out[cb[k].who], cb[k].v);
}

static void c_free(canon *C)
{
    free(C->c);
    free(C->ca);
    free(C->tab);
    free(C->let);
    free(C->nw);
}

typedef struct kidkey {
    uint64_t h;
    int id;
} kidkey;

static int cmp_kid(const void *a, const void *b)
{
    const kidkey *x = a, *y = b;
    if (x->h != y->h) return (x->h > y->h) - (x->h < y->h);
    return (x->id > y->id) - (x->id < y->id);
}

/* The token of a leaf, or of a node already written. */
static void c_token(sb *b, const canon *C, int i, const int *nid, int *pid, int *np_next, const int *sname)
{
    const cn *x = &C->c[i];
    switch (x->op) {
    case C_NUM: sb_fmt(b, "#%016llx", (unsigned long long)dbits(x->num)); break;
    case C_INPUT: sb_str(b, "x"); break;
    case C_STATE: sb_fmt(b, "s%d", sname[x->ref]); break;
    case C_VEC:
        if (pid[x->ref] < 0) pid[x->ref] = (*np_next)++;
        sb_fmt(b, "p%d", pid[x->ref]);
        break;
    default: sb_fmt(b, "n%d", nid[i]); break;
    }
}

int cell_canonical(const lang_prog *p, char **text, uint64_t *hash, char *err, size_t errlen)
{
    canon C = { .p = p };
    if (text) *text = NULL;
    if (hash) *hash = 0;
    int np = p->nparams, nst = p->nstates, rc = -1;
    uint64_t *h = NULL, *tmp = NULL, *col = NULL;
    contrib *cb = NULL;
    unsigned char *live = NULL;
    int *nid = NULL, *pid = NULL, *stack = NULL, *cur = NULL, *porder = NULL;
    sb b = { 0 };
    C.tied = tie_of(p, &C.I);
    C.let = malloc(((size_t)p->nbinds + 1) * sizeof *C.let);
    C.nw = malloc(((size_t)nst + 1) * sizeof *C.nw);
    if (!C.let || !C.nw) goto done;
    for (int k = 0; k < nst; k++) C.nw[k] = -1;
    const lstmt *st = pstmts(p);
    for (int k = 0; k < p->nstmts; k++) {   /* in order: what a line names is converted already */
        int r = cv(&C, st[k].expr);
        if (r < 0) goto done;
        if (st[k].kind == S_LET) C.let[st[k].ref] = r;
        else C.nw[st[k].ref] = r;
    }
    live = calloc((size_t)C.nc + 1, 1);
    if (!live) goto done;
    for (int s = 0; s < nst; s++) live[C.nw[s]] = 1;
    for (int i = C.nc - 1; i >= 0; i--)   /* children are made before their parents */
        if (live[i])
            for (int j = 0; j < C.c[i].n; j++) live[C.ca[C.c[i].a0 + j]] = 1;
    int all = C.nc + np + nst;
    size_t ncb = 2 * ((size_t)C.nc + (size_t)C.nca + (size_t)nst) + 1;
    h = malloc(((size_t)all + 1) * sizeof *h);
    tmp = malloc(((size_t)all + 1) * sizeof *tmp);
    col = malloc(((size_t)all + 1) * sizeof *col);
    cb = malloc(ncb * sizeof *cb);
    if (!h || !tmp || !col || !cb) goto done;
    const lparam *pa = pparams(p);
    for (int i = 0; i < C.nc; i++) col[i] = c_label(&C.c[i]);
    for (int k = 0; k < np; k++) {
        uint64_t v = mix(11, (uint64_t)pa[k].kind);
        v = mix_w(mix_w(v, c_w(&C, pa[k].w)), pa[k].kind == P_WEIGHT ? c_w(&C, pa[k].in) : wconst(0));
        v = mix(v, (uint64_t)pa[k].init);
        col[C.nc + k] = mix(v, pa[k].init ? dbits(pa[k].init_a) : 0);
    }
    for (int s = 0; s < nst; s++) col[C.nc + np + s] = mix(mix_w(13, pstates(p)[s].size), s == 0);
    /* refine until the partition is stable (refinement only splits classes) */
    for (int round = 0, distinct = count_distinct(&C, col, live, tmp); round < all + 1; round++) {
        c_round(&C, live, col, h, cb);
        uint64_t *t = col;
        col = h;
        h = t;
        int d = count_distinct(&C, col, live, tmp);
        if (d == distinct) break;
        distinct = d;
    }
    /* the operands of + * min max in the order of their colours */
    for (int i = 0; i < C.nc; i++) {
        cn *x = &C.c[i];
        if (!c_comm(x->op)) continue;
        kidkey kk[x->n > 0 ? x->n : 1];
        for (int j = 0; j < x->n; j++) kk[j] = (kidkey){ col[C.ca[x->a0 + j]], C.ca[x->a0 + j] };
        qsort(kk, (size_t)x->n, sizeof *kk, cmp_kid);
        for (int j = 0; j < x->n; j++) C.ca[x->a0 + j] = kk[j].id;
    }
    /* the states after the first in the order of their colours */
    int sorder[L_MAX_STATES], sname[L_MAX_STATES];
    for (int s = 0; s < nst; s++) sorder[s] = s;
    for (int a = 1; a < nst; a++)
        for (int j = a; j > 1 && col[C.nc + np + sorder[j - 1]] > col[C.nc + np + sorder[j]]; j--) {
            int t = sorder[j];
            sorder[j] = sorder[j - 1];
            sorder[j - 1] = t;
        }
    for (int r = 0; r < nst; r++) sname[sorder[r]] = r;
    nid = malloc(((size_t)C.nc + 1) * sizeof *nid);
    pid = malloc(((size_t)np + 1) * sizeof *pid);
    stack = malloc(((size_t)C.nc + 1) * sizeof *stack);
    cur = malloc(((size_t)C.nc + 1) * sizeof *cur);
    porder = malloc(((size_t)np + 1) * sizeof *porder);
    if (!nid || !pid || !stack || !cur || !porder) goto done;
    for (int i = 0; i < C.nc; i++) nid[i] = -1;
    for (int k = 0; k < np; k++) pid[k] = -1;
    int next = 0, pnext = 0;
    sb_str(&b, "recur canonical cell 1\n");
    for (int r = 0; r < nst; r++) {
        int s = sorder[r], root = C.nw[s];
        int sp = 0;
        if (!c_leaf(C.c[root].op) && nid[root] < 0) {
            stack[sp] = root;
            cur[sp++] = 0;
        }
        while (sp > 0) {   /* post-order, children in canonical order */
            int i = stack[sp - 1];
            const cn *x = &C.c[i];
            if (cur[sp - 1] < x->n) {
                int kid = C.ca[x->a0 + cur[sp - 1]++];
                if (!c_leaf(C.c[kid].op) && nid[kid] < 0) {
                    stack[sp] = kid;
                    cur[sp++] = 0;
                }
                continue;
            }
            sp--;
            nid[i] = next++;
            sb_fmt(&b, "n%d = %s", nid[i], C_NAME[x->op]);
            if (x->op == C_MATMUL) {
                if (pid[x->ref] < 0) pid[x->ref] = pnext++;
                sb_fmt(&b, " p%d", pid[x->ref]);
            }
            if (x->op == C_FN) sb_fmt(&b, " %s", x->fn);
            if (x->op == C_DROPOUT) sb_fmt(&b, " #%016llx", (unsigned long long)dbits(x->num));
            if (x->op == C_SLICE)
                sb_fmt(&b, " [%lld,%lld,%lld : %lld,%lld,%lld]", x->w0.h, x->w0.i, x->w0.c, x->w1.h, x->w1.i, x->w1.c);
            for (int j = 0; j < x->n; j++) {
                sb_str(&b, " ");
                c_token(&b, &C, C.ca[x->a0 + j], nid, pid, &pnext, sname);
            }
            sb_str(&b, "\n");
        }
        lw sz = pstates(p)[s].size;
        sb_fmt(&b, "s%d [%lld,%lld,%lld]' = ", r, sz.h, sz.i, sz.c);
        c_token(&b, &C, root, nid, pid, &pnext, sname);
        sb_str(&b, "\n");
    }
    for (int k = 0; k < np; k++)
        if (pid[k] >= 0) porder[pid[k]] = k;
    for (int j = 0; j < pnext; j++) {
        const lparam *q = &pa[porder[j]];
        lw in = q->kind == P_WEIGHT ? c_w(&C, q->in) : wconst(0), w = c_w(&C, q->w);
        sb_fmt(&b, "p%d %s [%lld,%lld,%lld] [%lld,%lld,%lld] init %d #%016llx\n", j,
               q->kind == P_WEIGHT ? "weight" : "vector", w.h, w.i, w.c, in.h, in.i, in.c, q->init,
               (unsigned long long)(q->init ? dbits(q->init_a) : 0));
    }
    if (b.oom || C.oom) goto done;
    if (hash) *hash = fnv(1469598103934665603ull, b.s, b.n);
    if (text) {
        *text = b.s;
        b.s = NULL;
    }
    rc = 0;
done:
    free(b.s);
    free(h);
    free(tmp);
    free(col);
    free(cb);
    free(nid);
    free(pid);
    free(stack);
    free(cur);
    free(porder);
    free(live);
    c_free(&C);
    if (rc) fail(err, errlen, "out of memory");
    return rc;
}

/* ---- parameter counts --------------------------------------------------------------------- */

static long long params_at(const lang_prog *p, long long H, long long I)
{
    const lparam *pa = pparams(p);
    long long n = 0;
    for (int k = 0; k < p->nparams; k++) {
        long long o = wev(pa[k].w, H, I);
        n += pa[k].kind == P_WEIGHT ? o * wev(pa[k].in, H, I) : o;
    }
    return n;
}

long long cell_prog_params(const lang_prog *p, int I) { return params_at(p, p->hidden, I); }

/* ---- public API ------------------------------------------------------------------------- */

static const char *const KIND_NAMES[] = { "activation", "gate-add", "gate-remove", "skip-add",
                                          "skip-remove", "swap", "mix", "combine" };
#define NKINDS ((int)(sizeof KIND_NAMES / sizeof KIND_NAMES[0]))

const char *rc_mut_kind_name(unsigned kind)
{
    for (int k = 0; k < NKINDS; k++)
        if (kind == 1u << k) return KIND_NAMES[k];
    return "";
}

int rc_cell_mutate(const char *text, size_t len, int input_size, uint64_t seed, const rc_mutate_opts *o,
                   char **out_text, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!out_text) return fail(err, errlen, "rc_cell_mutate: out_text is NULL");
    *out_text = NULL;
    if (input_size < 1) return fail(err, errlen, "rc_cell_mutate: input size %d: expected at least 1", input_size);
    unsigned kinds = o && o->kinds ? o->kinds : RC_MUT_ALL;
    if (!(kinds & RC_MUT_ALL) || (kinds & ~RC_MUT_ALL))
        return fail(err, errlen, "rc_cell_mutate: kinds %#x: expected RC_MUT_* bits (within %#x)", kinds, RC_MUT_ALL);
    int tries = o && o->max_tries > 0 ? o->max_tries : 64, I2 = o && o->input_size2 > 0 ? o->input_size2 : 0;
    lang_prog *p = lang_compile(text, len, "cell", 0, err, errlen, NULL);
    if (!p) return -1;
    uint64_t h0;
    if (cell_canonical(p, NULL, &h0, err, errlen)) {
        free(p);
        return -1;
    }
    char cell[L_MAX_NAME + 1];
    snprintf(cell, sizeof cell, "%s", lang_cell_name(p));
    unsigned list[NKINDS];
    int nk = 0;
    for (int k = 0; k < NKINDS; k++)
        if (kinds >> k & 1) list[nk++] = 1u << k;
    rng_t r;
    rng_seed(&r, seed);
    mut_env env = { p->hidden, input_size, I2 };
    char last[512] = "none";
    int got = -1, oom = 0;
    for (int t = 0; t < tries && got < 0 && !oom; t++) {
        unsigned kind = list[rnd(&r, nk)];
        mcell *m = mcell_from_prog(p, err, errlen);
        if (!m) {
            oom = 1;
            break;
        }
        int ok = mcell_mutate(m, kind, &r, &env);
        char *txt = ok == 0 ? mcell_print(m, err, errlen) : NULL;
        mcell_free(m);
        if (ok == -2 || (ok == 0 && !txt)) {
            fail(err, errlen, "rc_cell_mutate: out of memory");
            oom = 1;
            break;
        }
        if (ok != 0) {   /* no site for this kind in this cell: never pick it again */
            snprintf(last, sizeof last, "no place for a %s mutation", rc_mut_kind_name(kind));
            int j = 0;
            for (int k = 0; k < nk; k++)
                if (list[k] != kind) list[j++] = list[k];
            if ((nk = j) == 0) break;
            continue;
        }
        lang_prog *q = lang_compile(txt, strlen(txt), "candidate", 0, last, sizeof last, NULL);
        uint64_t h1 = 0;
        if (q && cell_check_prog(q, input_size, I2, last, sizeof last) == 0 &&
            cell_canonical(q, NULL, &h1, last, sizeof last) == 0) {
            if (h1 != h0) {
                *out_text = txt;
                txt = NULL;
                got = (int)kind;
            } else snprintf(last, sizeof last, "a %s mutation gave the same cell", rc_mut_kind_name(kind));
        }
        free(q);
        free(txt);
    }
    free(p);
    if (got < 0 && !oom)
        fail(err, errlen, "cell '%s': no mutation passed the checks in %d tries; the last: %s", cell, tries, last);
    return got;
}

int rc_cell_check(const char *text, size_t len, int input_size, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    lang_prog *p = lang_compile(text, len, "cell", 0, err, errlen, NULL);
    if (!p) return -1;
    int r = cell_check_prog(p, input_size, 0, err, errlen);
    free(p);
    return r;
}

char *rc_cell_print(const char *text, size_t len, int hidden, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    lang_prog *p = lang_compile(text, len, "cell", hidden, err, errlen, NULL);
    if (!p) return NULL;
    mcell *m = mcell_from_prog(p, err, errlen);
    char *s = m ? mcell_print(m, err, errlen) : NULL;
    mcell_free(m);
    free(p);
    return s;
}

int rc_cell_canonical_hash(const char *text, size_t len, uint64_t *hash, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!hash) return fail(err, errlen, "rc_cell_canonical_hash: hash is NULL");
    *hash = 0;
    lang_prog *p = lang_compile(text, len, "cell", 0, err, errlen, NULL);
    if (!p) return -1;
    int r = cell_canonical(p, NULL, hash, err, errlen);
    free(p);
    return r;
}

char *rc_cell_canonical_text(const char *text, size_t len, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    lang_prog *p = lang_compile(text, len, "cell", 0, err, errlen, NULL);
    if (!p) return NULL;
    char *s = NULL;
    cell_canonical(p, &s, NULL, err, errlen);
    free(p);
    return s;
}

long long rc_cell_param_count(const char *text, size_t len, int hidden, int input_size, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    lang_prog *p = lang_compile(text, len, "cell", hidden, err, errlen, NULL);
    if (!p) return -1;
    long long n = lang_validate(p, input_size, NULL, err, errlen) == 0 ? cell_prog_params(p, input_size) : -1;
    free(p);
    return n;
}

/* The hidden size that widths deferred to the input size pin (H = I where x meets a
 * value of width H): 1 and *H when there is one; 0 when none; -1 when they cannot all
 * hold with input size I. */
static int pinned_hidden(const lang_prog *p, long long I, long long *H)
{
    const lnode *nd = pnodes(p);
    const lstmt *st = pstmts(p);
    int pinned = 0;
    for (int k = 0; k < p->nnodes + p->nstmts; k++) {
        lw a, b;
        if (k < p->nnodes) {
            const lnode *n = &nd[k];
            if (!n->defer || (n->vk != V_ROW && n->vk != V_VEC)) continue;
            if (n->kind == N_BIN || n->kind == N_MINMAX) a = nd[n->a].w, b = nd[n->b].w;
            else if (n->kind == N_MATMUL) a = nd[n->a].w, b = pparams(p)[n->ref].in;
            else continue;
        } else {
            const lstmt *s = &st[k - p->nnodes];
            if (!s->defer) continue;
            a = nd[s->expr].w;
            b = pstates(p)[s->ref].size;
        }
        long long dh = a.h - b.h, num = -((a.i - b.i) * I + (a.c - b.c));
        if (dh == 0) continue;   /* holds for every H or for none: lang_validate decides */
        if (num % dh != 0 || num / dh < 1 || num / dh > LANG_MAX_WIDTH) return -1;
        if (pinned && *H != num / dh) return -1;
        *H = num / dh;
        pinned = 1;
    }
    return pinned;
}

/* The parameter count at hidden size H: exact from the program compiled at H, or (when
 * the text does not compile at H, e.g. H / 2 of an odd H) from the base program's
 * widths. *valid: the program compiles at H and builds with input size I. */
static long long count_at(const char *text, size_t len, const lang_prog *base, long long H, int I, int *valid,
                          char *err, size_t errlen)
{
    lang_prog *p = lang_compile(text, len, "cell", (int)H, err, errlen, NULL);
    if (!p) {
        *valid = 0;
        return params_at(base, H, I);
    }
    *valid = lang_validate(p, I, NULL, err, errlen) == 0;
    long long n = cell_prog_params(p, I);
    free(p);
    return n;
}

int rc_cell_hidden_for_params(const char *text, size_t len, int input_size, long long target, long long *count,
                              char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (count) *count = 0;
    if (input_size < 1) return fail(err, errlen, "rc_cell_hidden_for_params: input size %d: expected at least 1", input_size);
    if (target < 1) return fail(err, errlen, "rc_cell_hidden_for_params: %lld parameters: expected at least 1", target);
    lang_prog *base = lang_compile(text, len, "cell", 0, NULL, 0, NULL);
    if (!base) base = lang_compile(text, len, "cell", input_size, err, errlen, NULL);
    if (!base) return -1;
    char cell[L_MAX_NAME + 1], msg[512] = "";
    snprintf(cell, sizeof cell, "%s", lang_cell_name(base));
    long long H = 0, n = 0;
    int valid = 0, pin = pinned_hidden(base, input_size, &H);
    if (pin < 0) {
        free(base);
        return fail(err, errlen, "cell '%s': with input size I = %d no hidden size builds it (its widths tie H to I)",
                    cell, input_size);
    }
    if (pin == 0) {
        long long lo = 1, hi = 1;
        if (count_at(text, len, base, 1, input_size, &valid, msg, sizeof msg) < target) {
            while (hi < LANG_MAX_WIDTH && count_at(text, len, base, hi, input_size, &valid, msg, sizeof msg) < target) {
                lo = hi;
                hi = hi * 2 < LANG_MAX_WIDTH ? hi * 2 : LANG_MAX_WIDTH;
            }
            while (hi - lo > 1) {   /* count(lo) < target <= count(hi) */
                long long mid = lo + (hi - lo) / 2;
                if (count_at(text, len, base, mid, input_size, &valid, msg, sizeof msg) >= target) hi = mid;
                else lo = mid;
            }
            long long cl = count_at(text, len, base, lo, input_size, &valid, msg, sizeof msg);
            long long ch = count_at(text, len, base, hi, input_size, &valid, msg, sizeof msg);
            H = llabs(target - cl) <= llabs(ch - target) ? lo : hi;
            long long other = H == lo ? hi : lo;
            n = count_at(text, len, base, H, input_size, &valid, msg, sizeof msg);
            if (!valid) {
                H = other;
                n = count_at(text, len, base, H, input_size, &valid, msg, sizeof msg);
            }
        } else {
            H = 1;
            n = count_at(text, len, base, H, input_size, &valid, msg, sizeof msg);
        }
    } else n = count_at(text, len, base, H, input_size, &valid, msg, sizeof msg);
    free(base);
    if (!valid)
        return fail(err, errlen, "cell '%s': no hidden size near %lld parameters builds with input size %d: %s", cell,
                    target, input_size, msg);
    if (count) *count = n;
    return (int)H;
}
