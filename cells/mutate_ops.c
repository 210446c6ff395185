/* The mutation operators of the cell search (after Jozefowicz, Zaremba & Sutskever
 * 2015; see mutate.c) on the mutable form, and the respelling used by the tests of the
 * canonical form. */
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include "mutate_internal.h"

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

int mut_rnd(rng_t *r, int n)
{ return (int)(rng_next(r) % (uint64_t)n); }

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
    int q = mut_m_node(m, r->kind, V_ROW, r->w);
    if (q >= 0) m->nd[q].ref = r->ref;
    return q;
}

static int mk_bin(mcell *m, int kind, int op, int a, int b, lw w)
{
    int q = mut_m_node(m, kind, V_ROW, w);
    if (q < 0 || a < 0 || b < 0) return -1;
    m->nd[q].op = op;
    m->nd[q].a = a;
    m->nd[q].b = b;
    return q;
}

static int mk_num(mcell *m, double v)
{
    int q = mut_m_node(m, N_NUM, V_SCALAR, wconst(1));
    if (q >= 0) m->nd[q].num = v;
    return q;
}

/* Copies node k to a new slot (children shared), so that k can become a node using it. */
static int move_out(mcell *m, int k)
{
    int q = mut_m_node(m, 0, 0, wconst(0));
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
    int q = mut_m_node(m, 0, 0, wconst(0));
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
    int name = mut_m_pool(m, ACTS[act].name, strlen(ACTS[act].name));
    int q = mut_m_node(m, N_FN, V_ROW, w);
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
        decl = mut_m_pool(m, f, strlen(f));
    }
    int pw = mut_add_param(m, wx, P_WEIGHT, decl), ph = mut_add_param(m, wh, P_WEIGHT, decl), pb = mut_add_param(m, bb, P_VECTOR, -1);
    mref xr = { N_INPUT, -1, { 0, 1, 0 } }, hr = { N_STATE, 0, m->st[0].w };
    int x = mk_ref(m, &xr), h = mk_ref(m, &hr);
    int mx = mut_m_node(m, N_MATMUL, V_ROW, w), mh = mut_m_node(m, N_MATMUL, V_ROW, w), vb = mut_m_node(m, N_VEC, V_VEC, w);
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
                pick_ = mut_rnd(r, idx_);                                                                                  \
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
        int e = move_out(m, k), q = mk_act(m, mut_rnd(r, 3), e, w);
        if (q < 0) return -1;
        m->nd[k] = m->nd[q];
        return 0;
    }
    int cur = act_of(&m->nd[k]), to = mut_rnd(r, 3);   /* the three others: identity and two activations */
    int choice = (cur + 1 + to) % 4;               /* 0..2 an activation, 3 the identity */
    if (choice == 3) {
        m->nd[k] = m->nd[m->nd[k].a];
        return 0;
    }
    int name = mut_m_pool(m, ACTS[choice].name, strlen(ACTS[choice].name));
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
                int o = mut_rnd(r, 4);
                CANDIDATE(do_combine(m, k, ops[o][0], ops[o][1], &refs[j], ops[o][1] == '-' && mut_rnd(r, 2)));
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
        if (mut_rnd(r, 2)) P1 = m->nd[k].b, P2 = m->nd[k].a;
        int g = mut_rnd(r, 2) ? m->nd[P1].a : m->nd[P1].b, slot = mut_rnd(r, 2);
        int gc = deep_copy(m, g), one = mk_num(m, 1.0);
        int om = mk_bin(m, N_BIN, '-', one, gc, w);
        if (om < 0) return -1;
        m->nd[om].vk = m->nd[g].vk;
        m->nd[om].w = m->nd[g].w;
        if (slot) m->nd[P2].b = om;
        else m->nd[P2].a = om;
        return 0;
    }
    int cur = ms->form == 1 ? 0 : 1, to = (cur + 1 + mut_rnd(r, 4)) % 5;
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
    mut_mark_live(m);
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
        if (n->kind == N_BIN && m->nd[L].kind == N_BIN && m->nd[L].op == n->op && mut_rnd(&r, 2)) {
            int a = m->nd[L].a, b = m->nd[L].b, c = n->b;
            m->nd[L].b = c;
            m->nd[L].a = b;
            n->a = a;
            n->b = L;
        }
        if (mut_rnd(&r, 2)) {
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
        if ((m->bd[k].name = mut_m_pool(m, nm, strlen(nm))) < 0) return -1;
    }
    for (int k = 0; k < m->np; k++) {
        snprintf(nm, sizeof nm, "q%llu_%d", (unsigned long long)tag, k);
        if ((m->pa[k].name = mut_m_pool(m, nm, strlen(nm))) < 0) return -1;
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
            if (ok && mut_rnd(&r, ++nready) == 0) pick = k;   /* a uniform pick among the ready ones */
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

