/* The canonical form of a cell program and its hash (dedupe in the cell search). */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include "mutate_internal.h"

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
    for (int k = 0; k < p->nnodes + p->nstmts; k++) {
        lw a, b;
        if (!mut_deferred_widths(p, k, &a, &b)) continue;
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
    case C_NUM: mut_sb_fmt(b, "#%016llx", (unsigned long long)dbits(x->num)); break;
    case C_INPUT: mut_sb_str(b, "x"); break;
    case C_STATE: mut_sb_fmt(b, "s%d", sname[x->ref]); break;
    case C_VEC:
        if (pid[x->ref] < 0) pid[x->ref] = (*np_next)++;
        mut_sb_fmt(b, "p%d", pid[x->ref]);
        break;
    default: mut_sb_fmt(b, "n%d", nid[i]); break;
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
    mut_sb_str(&b, "recur canonical cell 1\n");
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
            mut_sb_fmt(&b, "n%d = %s", nid[i], C_NAME[x->op]);
            if (x->op == C_MATMUL) {
                if (pid[x->ref] < 0) pid[x->ref] = pnext++;
                mut_sb_fmt(&b, " p%d", pid[x->ref]);
            }
            if (x->op == C_FN) mut_sb_fmt(&b, " %s", x->fn);
            if (x->op == C_DROPOUT) mut_sb_fmt(&b, " #%016llx", (unsigned long long)dbits(x->num));
            if (x->op == C_SLICE)
                mut_sb_fmt(&b, " [%lld,%lld,%lld : %lld,%lld,%lld]", x->w0.h, x->w0.i, x->w0.c, x->w1.h, x->w1.i, x->w1.c);
            for (int j = 0; j < x->n; j++) {
                mut_sb_str(&b, " ");
                c_token(&b, &C, C.ca[x->a0 + j], nid, pid, &pnext, sname);
            }
            mut_sb_str(&b, "\n");
        }
        lw sz = pstates(p)[s].size;
        mut_sb_fmt(&b, "s%d [%lld,%lld,%lld]' = ", r, sz.h, sz.i, sz.c);
        c_token(&b, &C, root, nid, pid, &pnext, sname);
        mut_sb_str(&b, "\n");
    }
    for (int k = 0; k < np; k++)
        if (pid[k] >= 0) porder[pid[k]] = k;
    for (int j = 0; j < pnext; j++) {
        const lparam *q = &pa[porder[j]];
        lw in = q->kind == P_WEIGHT ? c_w(&C, q->in) : wconst(0), w = c_w(&C, q->w);
        mut_sb_fmt(&b, "p%d %s [%lld,%lld,%lld] [%lld,%lld,%lld] init %d #%016llx\n", j,
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
    if (rc) mut_fail(err, errlen, "out of memory");
    return rc;
}

