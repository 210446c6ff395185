/* The mutable form of a checked cell program (expression trees, one per binding and
 * state assignment) and its printer back to cell text; the text helpers the other
 * mutate_*.c files share (mutate_internal.h). */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include "mutate_internal.h"

int mut_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int mut_fail(char *err, size_t errlen, const char *fmt, ...)
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


void mut_sb_add(sb *b, const char *s, size_t n)
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

void mut_sb_str(sb *b, const char *s)
{ mut_sb_add(b, s, strlen(s)); }

void mut_sb_fmt(sb *b, const char *fmt, ...)
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
        mut_sb_add(b, tmp, (size_t)k);
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
    mut_sb_add(b, big, (size_t)k);
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
        mut_sb_str(b, num);
        return;
    case N_NAME: mut_sb_str(b, ppool(p) + n->name); return;
    case N_NEG:
        if (minlev > 3) mut_sb_str(b, "(");
        mut_sb_str(b, "-");
        size_text(b, p, n->a, 3);
        if (minlev > 3) mut_sb_str(b, ")");
        return;
    case N_BIN: {
        int lev = (n->op == '+' || n->op == '-') ? 1 : 2;
        if (lev < minlev) mut_sb_str(b, "(");
        size_text(b, p, n->a, lev);
        mut_sb_fmt(b, " %c ", n->op);
        size_text(b, p, n->b, lev + 1);
        if (lev < minlev) mut_sb_str(b, ")");
        return;
    }
    default: mut_sb_str(b, "?"); return;   /* not in a checked program */
    }
}

/* ---- the mutable form --------------------------------------------------------------- */


int mut_m_pool(mcell *m, const char *s, size_t n)
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

int mut_m_node(mcell *m, int kind, int vk, lw w)
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
    int off = mut_m_pool(m, b.s ? b.s : "", b.n);
    free(b.s);
    return off;
}

static int copy_expr(mcell *m, const lang_prog *p, int k)
{
    const lnode *n = &pnodes(p)[k];
    if (n->vk == V_SCALAR && n->kind != N_LET) {   /* a folded constant */
        int q = mut_m_node(m, N_NUM, V_SCALAR, wconst(1));
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
    if (n->kind == N_FN) name = mut_m_pool(m, ppool(p) + n->name, strlen(ppool(p) + n->name));
    if (n->kind == N_SLICE) {
        s0 = size_to_pool(m, p, pargs(p)[n->arg0 + 1]);
        s1 = size_to_pool(m, p, pargs(p)[n->arg0 + 2]);
    }
    int q = mut_m_node(m, n->kind, n->vk, n->w);
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

int mut_add_param(mcell *m, const char *name, int kind, int decl)
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
    pa->name = mut_m_pool(m, name, strlen(name));
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
        mut_fail(err, errlen, "out of memory");
        return NULL;
    }
    const char *pool = ppool(p);
    m->cell = mut_m_pool(m, pool + p->cell, strlen(pool + p->cell));
    m->input = mut_m_pool(m, pool + p->input, strlen(pool + p->input));
    m->hidden = p->hidden;
    m->nst = p->nstates;
    for (int k = 0; k < p->nstates; k++) {
        const lstate *s = &pstates(p)[k];
        m->st[k].name = mut_m_pool(m, pool + s->name, strlen(pool + s->name));
        m->st[k].size = s->size_expr >= 0 ? size_to_pool(m, p, s->size_expr) : -1;
        m->st[k].set = s->set_stmt;
        m->st[k].w = s->size;
    }
    for (int k = 0; k < p->nparams; k++) {
        const lparam *s = &pparams(p)[k];
        int decl = s->decl_size >= 0 ? size_to_pool(m, p, s->decl_size) : -1;
        int j = mut_add_param(m, pool + s->name, s->kind, decl);
        if (j < 0) break;
        m->pa[j].init = s->init;
        m->pa[j].init_a = s->init_a;
    }
    if (!m->oom && p->nbinds > 0) {
        m->bd = calloc((size_t)p->nbinds, sizeof *m->bd);
        if (!m->bd) m->oom = 1;
        for (int k = 0; k < p->nbinds && !m->oom; k++) {
            const lbind *s = &pbinds(p)[k];
            m->bd[k].name = mut_m_pool(m, pool + s->name, strlen(pool + s->name));
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
        mut_fail(err, errlen, "out of memory");
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

void mut_mark_live(mcell *m)
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
    if (paren) mut_sb_str(b, "(");
    switch (n->kind) {
    case N_NUM:
        fmt_num(n->num, num, sizeof num);
        mut_sb_str(b, num);
        break;
    case N_INPUT: mut_sb_str(b, MS(m, m->input)); break;
    case N_STATE: mut_sb_str(b, MS(m, m->st[n->ref].name)); break;
    case N_NEW: mut_sb_fmt(b, "%s'", MS(m, m->st[n->ref].name)); break;
    case N_LET: mut_sb_str(b, MS(m, m->bd[n->ref].name)); break;
    case N_VEC: mut_sb_str(b, MS(m, m->pa[n->ref].name)); break;
    case N_MATMUL:
        mut_sb_fmt(b, "%s @ ", MS(m, m->pa[n->ref].name));
        pr(b, m, n->a, 3);
        break;
    case N_NEG:
        mut_sb_str(b, "-");
        pr(b, m, n->a, 3);
        break;
    case N_BIN: {
        int lev = prec(m, k);
        pr(b, m, n->a, lev);
        mut_sb_fmt(b, " %c ", n->op);
        pr(b, m, n->b, lev + 1);
        break;
    }
    case N_MINMAX:
        mut_sb_str(b, n->op == FN_MIN ? "min(" : "max(");
        pr(b, m, n->a, 0);
        mut_sb_str(b, ", ");
        pr(b, m, n->b, 0);
        mut_sb_str(b, ")");
        break;
    case N_FN:
        mut_sb_fmt(b, "%s(", MS(m, n->name));
        pr(b, m, n->a, 0);
        mut_sb_str(b, ")");
        break;
    case N_CONCAT:
        mut_sb_str(b, "concat(");
        for (int j = 0; j < n->nargs; j++) {
            if (j) mut_sb_str(b, ", ");
            pr(b, m, m->args[n->arg0 + j], 0);
        }
        mut_sb_str(b, ")");
        break;
    case N_SLICE:
        mut_sb_str(b, "slice(");
        pr(b, m, n->a, 0);
        mut_sb_fmt(b, ", %s, %s)", MS(m, n->s0), MS(m, n->s1));
        break;
    case N_DROPOUT:
        mut_sb_str(b, "dropout(");
        pr(b, m, n->a, 0);
        fmt_num(n->num, num, sizeof num);
        mut_sb_fmt(b, ", %s)", num);
        break;
    default: mut_sb_str(b, "?"); break;
    }
    if (paren) mut_sb_str(b, ")");
}

char *mcell_print(mcell *m, char *err, size_t errlen)
{
    mut_mark_live(m);
    sb b = { 0 };
    char num[64];
    mut_sb_fmt(&b, "cell %s (%s) -> ", MS(m, m->cell), MS(m, m->input));
    for (int k = 0; k < m->nst; k++) mut_sb_fmt(&b, "%s%s", k ? ", " : "", MS(m, m->st[k].name));
    mut_sb_fmt(&b, "\n  hidden %d\n", m->hidden);
    for (int k = 0; k < m->nst; k++)
        if (m->st[k].size >= 0) mut_sb_fmt(&b, "  state %s : %s\n", MS(m, m->st[k].name), MS(m, m->st[k].size));
    for (int k = 0; k < m->np; k++)
        if (m->pa[k].used && m->pa[k].decl >= 0)
            mut_sb_fmt(&b, "  %s %s : %s\n", m->pa[k].kind == P_WEIGHT ? "weight" : "vector", MS(m, m->pa[k].name),
                   MS(m, m->pa[k].decl));
    for (int k = 0; k < m->np; k++) {
        const mparam *pa = &m->pa[k];
        if (!pa->used || pa->init == I_NONE) continue;
        fmt_num(pa->init_a, num, sizeof num);
        mut_sb_fmt(&b, "  init %s = ", MS(m, pa->name));
        switch (pa->init) {
        case I_ZEROS: mut_sb_str(&b, "zeros\n"); break;
        case I_CONST: mut_sb_fmt(&b, "const %s\n", num); break;
        case I_UNIFORM: mut_sb_fmt(&b, "uniform %s\n", num); break;
        case I_GLOROT: mut_sb_str(&b, "glorot\n"); break;
        case I_ORTHOGONAL:
            if (pa->init_a == 0) mut_sb_str(&b, "orthogonal\n");
            else mut_sb_fmt(&b, "orthogonal %s\n", num);
            break;
        default: mut_sb_str(&b, "default\n"); break;
        }
    }
    mut_sb_str(&b, "\n");
    for (int k = 0; k < m->ns; k++) {
        const mstmt *s = &m->sm[k];
        if (!s->live) continue;
        if (s->kind == S_LET) mut_sb_fmt(&b, "  %s = ", MS(m, m->bd[s->ref].name));
        else mut_sb_fmt(&b, "  %s' = ", MS(m, m->st[s->ref].name));
        pr(&b, m, s->expr, 0);
        mut_sb_str(&b, "\n");
    }
    if (b.oom || m->oom) {
        free(b.s);
        mut_fail(err, errlen, "out of memory");
        return NULL;
    }
    return b.s;
}

