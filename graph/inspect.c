/* Inspection: statistics of the reachable part of a graph (node and op counts,
 * parameters, forward and backward FLOPs, activation memory, what the passes made),
 * a structural diff of two graphs and a Graphviz DOT writer (see recur.h,
 * "inspection"). Everything here reads the graph; nothing changes it. The gradient
 * flow of a cell, which unrolls one, is in cells/gradient_flow.c. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "fused.h"
#include "passes.h"
#include "rng.h"

_Static_assert(RC_PASS_TIME_BATCH == PASS_TIME_BATCH && RC_PASS_GEMM_FUSION == PASS_GEMM_FUSION &&
                   RC_PASS_EW_FUSION == PASS_EW_FUSION,
               "public pass ids must match passes.h");
_Static_assert(OP_COUNT <= RC_STATS_MAX_OPS, "rc_stats.ops[] is too small for the op table");

/* ---- backward cost table ------------------------------------------------------------
 * The FLOPs of an op's backward, per operand that receives a gradient, as
 *   BC_FWD:  k * the op's forward FLOPs   (matmul: one GEMM of the forward's size each)
 *   BC_OUT:  k * elements of the output   (elementwise: the local derivative + accumulate)
 *   BC_IN:   k * elements of that operand (reductions, concatenations, losses)
 * k0 for operand 0, k1 for the others; one row per op, from ops/op_list.def (the
 * elementwise ops' bk_a, bk_b from elementwise_ops.def). BC_NONE (the fused op, costed
 * per instruction): 2 FLOPs per output element and gradient operand when elementwise,
 * one forward's FLOPs per gradient operand otherwise. */
enum { BC_NONE = 0, BC_FWD, BC_OUT, BC_IN };
typedef struct bwd_cost { unsigned char mode; float k0, k1; } bwd_cost;

static const bwd_cost bwd_costs[] = {
#define OP(ID, name, arity, flags, shape, aux, fwd, bwd, flops, overwrites, mode, k0, k1) { mode, k0, k1 },
#define EW(ID, name, form, shape, F, DA, DB, reads, cost, vec, bka, bkb, lang) { BC_OUT, bka, bkb },
#include "op_list.def"
#undef OP
#undef EW
};
_Static_assert(sizeof bwd_costs / sizeof bwd_costs[0] == OP_COUNT, "one backward cost per op id");

static void put_err(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put_err(char *err, size_t len, const char *fmt, ...)
{
    if (!err || !len) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static const char *nm(const rc_node *n) { return n->name ? n->name : ""; }

/* ---- the reachable part ---------------------------------------------------------- */

typedef struct view {
    const rc_graph *g;
    int n;
    unsigned char *in;       /* per id: reachable (resolved nodes only) */
    unsigned char *needs;    /* per id: has a gradient in a training plan */
    unsigned char *root;     /* per id: a root */
    int *order, norder;      /* reachable nodes in post-order (operands first) */
    int *step;               /* per id: time step or -1 (view_steps) */
} view;

static void view_free(view *v)
{
    free(v->in);
    free(v->needs);
    free(v->root);
    free(v->order);
    free(v->step);
    memset(v, 0, sizeof *v);
}

static rc_status view_build(view *v, const rc_graph *g, int nr, rc_node *const *roots, char *err, size_t len)
{
    memset(v, 0, sizeof *v);
    if (!g || nr < 1 || !roots) {
        put_err(err, len, "needs a graph and at least one root");
        return RC_ERR_ARG;
    }
    for (int r = 0; r < nr; r++)
        if (!roots[r] || roots[r]->g != g) {
            put_err(err, len, "root %d is %s", r, roots[r] ? "a node of another graph" : "NULL");
            return RC_ERR_ARG;
        }
    int n = g->n;
    size_t cap = n > 0 ? (size_t)n : 1u;
    v->g = g;
    v->n = n;
    v->in = calloc(cap, 1);
    v->needs = calloc(cap, 1);
    v->root = calloc(cap, 1);
    v->order = malloc(cap * sizeof *v->order);
    int *stack = malloc(cap * sizeof *stack), *next = calloc(cap, sizeof *next);
    unsigned char *color = calloc(cap, 1);
    rc_status st = RC_OK;
    if (!v->in || !v->needs || !v->root || !v->order || !stack || !next || !color) {
        put_err(err, len, "out of memory inspecting a graph of %d nodes", n);
        st = RC_ERR_NOMEM;
        goto out;
    }
    for (int r = 0; r < nr && st == RC_OK; r++) {
        rc_node *root = node_resolve(roots[r]);
        if (root->kind == NK_DECL) {
            put_err(err, len, "root %d is a forward declaration that is never defined", r);
            st = RC_ERR_GRAPH;
            break;
        }
        v->root[root->id] = 1;
        if (color[root->id]) continue;
        int sp = 0;
        stack[sp++] = root->id;
        color[root->id] = 1;
        while (sp > 0 && st == RC_OK) {
            rc_node *x = g->nodes[stack[sp - 1]];
            if (x->kind == NK_OP && next[x->id] < x->nin) {
                rc_node *u = node_resolve(x->in[next[x->id]++]);
                if (u->kind == NK_DECL) {
                    put_err(err, len, "node #%d is a forward declaration that is %s", u->id,
                            u->def ? "defined in terms of itself" : "never defined");
                    st = RC_ERR_GRAPH;
                } else if (color[u->id] == 1) {
                    put_err(err, len, "cycle through node #%d", u->id);
                    st = RC_ERR_GRAPH;
                } else if (color[u->id] == 0) {
                    color[u->id] = 1;
                    stack[sp++] = u->id;
                }
                continue;
            }
            color[x->id] = 2;
            v->in[x->id] = 1;
            v->order[v->norder++] = x->id;
            sp--;
        }
    }
    /* gradients, as plan_build decides them */
    for (int k = 0; k < v->norder && st == RC_OK; k++) {
        rc_node *x = g->nodes[v->order[k]];
        if (x->kind == NK_PARAM || (x->kind == NK_INPUT && x->requires_grad)) v->needs[x->id] = 1;
        for (int j = 0; x->kind == NK_OP && j < x->nin; j++)
            if (v->needs[node_resolve(x->in[j])->id]) v->needs[x->id] = 1;
    }
out:
    free(stack);
    free(next);
    free(color);
    if (st != RC_OK) view_free(v);
    return st;
}

/* An op instance of node x with its operands' and its own descriptors (no data). */
static op_inst inst_of(rc_node *x, tensor **ins)
{
    for (int j = 0; j < x->nin; j++) ins[j] = &node_resolve(x->in[j])->t;
    op_inst it = { .op = x->op, .nin = x->nin, .par = &x->par, .in = ins, .out = &x->t, .training = 1 };
    return it;
}

static double node_fwd_flops(rc_node *x)
{
    tensor *ins[x->nin > 0 ? x->nin : 1];
    op_inst it = inst_of(x, ins);
    return op_table[x->op].flops ? op_table[x->op].flops(&it) : 0.0;
}

static size_t node_aux_bytes(rc_node *x)
{
    tensor *ins[x->nin > 0 ? x->nin : 1];
    op_inst it = inst_of(x, ins);
    return op_table[x->op].aux_bytes ? op_table[x->op].aux_bytes(&it) : 0;
}

static double node_bwd_flops(const view *v, rc_node *x, double fwd)
{
    if (!v->needs[x->id]) return 0;
    bwd_cost c = bwd_costs[x->op];
    double f = 0;
    if (x->op == OP_FUSED && x->par.fused) {   /* each instruction, as its op would cost alone */
        const fused_prog *P = x->par.fused;
        for (int i = 0; i < P->nins; i++) {
            int op = P->ins[i].op;
            bwd_cost ci = op >= 0 && op < OP_COUNT ? bwd_costs[op] : (bwd_cost){ BC_OUT, 2, 2 };
            double k = ci.mode == BC_OUT ? ci.k0 + (op_table[op].arity == 2 ? ci.k1 : 0) : 2;
            f += k * (double)x->t.size;
        }
        return f;
    }
    for (int j = 0; j < x->nin; j++) {
        rc_node *u = node_resolve(x->in[j]);
        if (!v->needs[u->id]) continue;
        if (c.mode == BC_NONE) {
            f += (op_table[x->op].flags & OPF_ELEMENTWISE) ? 2.0 * (double)x->t.size : fwd;
            continue;
        }
        double k = j == 0 ? c.k0 : c.k1;
        f += c.mode == BC_FWD ? k * fwd : c.mode == BC_OUT ? k * (double)x->t.size : k * (double)u->t.size;
    }
    return f;
}

const char *rc_pass_name(int pass) { return pass_name(pass); }

rc_status rc_graph_stats(const rc_graph *g, int n_roots, rc_node *const *roots, rc_stats *out)
{
    if (!out) return RC_ERR_ARG;
    memset(out, 0, sizeof *out);
    view v;
    rc_status st = view_build(&v, g, n_roots, roots, NULL, 0);
    if (st != RC_OK) return st;
    int count[OP_COUNT] = { 0 };
    double fwd[OP_COUNT] = { 0 }, bwd[OP_COUNT] = { 0 };
    int maxgroup = 0;
    for (int i = 0; i < g->n; i++) maxgroup = g->nodes[i]->group > maxgroup ? g->nodes[i]->group : maxgroup;
    for (int k = 0; k < v.norder; k++) {
        rc_node *x = g->nodes[v.order[k]];
        size_t bytes = x->t.size * 4;
        out->nodes++;
        switch (x->kind) {
        case NK_PARAM:
            out->param_tensors++;
            out->param_scalars += x->t.size;
            out->param_bytes += bytes;
            out->param_grad_bytes += bytes;
            break;
        case NK_CONST: out->consts++; break;
        case NK_INPUT:
            out->inputs++;
            out->value_bytes += bytes;
            if (v.needs[x->id]) out->grad_bytes += bytes;
            break;
        case NK_OP: {
            double f = node_fwd_flops(x), b = node_bwd_flops(&v, x, f);
            out->op_nodes++;
            count[x->op]++;
            fwd[x->op] += f;
            bwd[x->op] += b;
            out->fwd_flops += f;
            out->bwd_flops += b;
            out->value_bytes += bytes;
            out->aux_bytes += node_aux_bytes(x);
            if (v.needs[x->id]) out->grad_bytes += bytes;
            break;
        }
        case NK_DECL: break;
        }
        if (x->pass > 0 && x->pass < RC_STATS_MAX_PASSES) out->pass_nodes[x->pass]++;
    }
    for (int op = 0; op < OP_COUNT; op++)
        if (count[op]) out->ops[out->n_ops++] = (rc_op_stat){ op_table[op].name, count[op], fwd[op], bwd[op] };
    out->activation_bytes = out->value_bytes + out->grad_bytes + out->aux_bytes;
    /* distinct groups per pass */
    unsigned char *seen = calloc((size_t)maxgroup + 1, 1);
    if (!seen) {
        view_free(&v);
        return RC_ERR_NOMEM;
    }
    for (int k = 0; k < v.norder; k++) {
        rc_node *x = g->nodes[v.order[k]];
        if (x->pass <= 0 || x->pass >= RC_STATS_MAX_PASSES || x->group <= 0 || seen[x->group]) continue;
        seen[x->group] = 1;
        out->pass_groups[x->pass]++;
    }
    /* what the passes made, over the whole graph: a later pass may have made earlier
     * work unreachable (time-batched GEMMs merged by the GEMM fusion) */
    memset(seen, 0, (size_t)maxgroup + 1);
    for (int i = 0; i < g->n; i++) {
        rc_node *x = g->nodes[i];
        if (x->pass <= 0 || x->pass >= RC_STATS_MAX_PASSES || x->group <= 0 || x->group > maxgroup || seen[x->group])
            continue;
        seen[x->group] = 1;
        out->made_groups[x->pass]++;
    }
    free(seen);
    out->time_batch_gemms = out->made_groups[RC_PASS_TIME_BATCH];
    out->fused_gemms = out->made_groups[RC_PASS_GEMM_FUSION];
    out->fused_ew_groups = out->made_groups[RC_PASS_EW_FUSION];
    view_free(&v);
    return RC_OK;
}

/* ---- time steps ------------------------------------------------------------------
 * An unrolled graph reads step t through row_slice(x, t*B, B), made just before the
 * cell's step function runs; everything the step function builds comes after it in
 * creation order. The passes keep that order for the nodes they rewrite in place (a
 * per-step matmul that becomes a row_slice or slice of a bigger GEMM, the result of a
 * group of elementwise ops that becomes the fused node) and append the nodes they make
 * (GEMMs, weight concatenations) at the end of the graph. A node's step is:
 *   - a row_slice taking the t-th of several equal row blocks: t (the anchors);
 *   - a node a pass made: the step of all its consumers when they agree (the fused
 *     GEMM h_{t-1} @ [W_h*] of step t feeds step t only), none otherwise (the GEMM of
 *     all steps' input projections, the concatenated weights);
 *   - a row_concat of operands from different steps (the stacked outputs): none;
 *   - any other op: the latest of its operands' steps and of its creation-order step
 *     (the anchor made last before it), so W_h h_{t-1} belongs to step t; an op that
 *     depends on no step belongs to its creation-order step when that is not the last
 *     (h_0 @ W_h in step 0) or when it reads nodes a pass made, and to none otherwise
 *     (a loss over the stacked outputs).
 * Leaves belong to no step (-1). */

static int anchor_step(const rc_node *x)
{
    if (x->kind != NK_OP || x->op != OP_ROW_SLICE) return -1;
    const rc_node *src = node_resolve(x->in[0]);
    int start = x->par.i[0], len = x->par.i[1];
    size_t rows = src->t.ndim >= 1 ? (size_t)src->t.shape[0] : 0;
    if (len < 1 || start % len != 0 || rows % (size_t)len != 0 || rows / (size_t)len < 2) return -1;
    return start / len;
}

static rc_status view_steps(view *v)
{
    const rc_graph *g = v->g;
    size_t cap = v->n > 0 ? (size_t)v->n : 1u;
    v->step = malloc(cap * sizeof *v->step);
    int *cstep = malloc(cap * sizeof *cstep);
    if (!v->step || !cstep) {
        free(cstep);
        return RC_ERR_NOMEM;
    }
    /* nodes after the last one no pass touched were appended by the passes */
    int n0 = 0;
    for (int i = 0; i < v->n; i++)
        if (g->nodes[i]->pass == 0) n0 = i + 1;
    int cur = -1, last = -1;
    for (int i = 0; i < v->n; i++) {   /* creation-order step */
        int a = i < n0 ? anchor_step(g->nodes[i]) : -1;
        if (a >= 0) cur = a > cur ? a : cur;
        cstep[i] = cur;
        last = cur > last ? cur : last;
        v->step[i] = -1;
    }
    for (int k = 0; k < v->norder; k++) {
        rc_node *x = g->nodes[v->order[k]];
        if (x->kind != NK_OP || x->id >= n0) continue;
        int a = anchor_step(x);
        if (a >= 0) {
            v->step[x->id] = a;
            continue;
        }
        int m = -1, lo = 1 << 30, unknown = 0;   /* unknown: an operand a pass made (steps later) */
        for (int j = 0; j < x->nin; j++) {
            const rc_node *u = node_resolve(x->in[j]);
            int s = v->step[u->id];
            unknown |= u->id >= n0;
            m = s > m ? s : m;
            lo = s < lo ? s : lo;
        }
        if (x->op == OP_ROW_CONCAT && x->nin > 1 && lo != m) v->step[x->id] = -1;
        else if (m >= 0) v->step[x->id] = m > cstep[x->id] ? m : cstep[x->id];
        else v->step[x->id] = cstep[x->id] >= 0 && (unknown || cstep[x->id] < last) ? cstep[x->id] : -1;
    }
    /* nodes the passes made, consumers first (reverse post-order); cons[] merges the
     * steps of a node's consumers: -2 none yet, -3 they disagree */
    int *cons = cstep;
    for (int i = 0; i < v->n; i++) cons[i] = -2;
    for (int k = v->norder - 1; k >= 0; k--) {
        rc_node *x = g->nodes[v->order[k]];
        if (x->kind != NK_OP) continue;
        if (x->id >= n0) {
            int a = anchor_step(x), cs = cons[x->id];
            v->step[x->id] = a >= 0 ? a : cs >= 0 ? cs : -1;
        }
        for (int j = 0; j < x->nin; j++) {
            int u = node_resolve(x->in[j])->id, s = v->step[x->id];
            cons[u] = cons[u] == -2 ? s : cons[u] == s ? s : -3;
        }
    }
    free(cstep);
    return RC_OK;
}

/* ---- pass groups -------------------------------------------------------------------- */

/* What an operand is: a name when it has one, "const", or "(op)". */
static void operand_desc(const rc_node *x, char *buf, size_t len)
{
    x = node_resolve((rc_node *)x);
    if (nm(x)[0]) snprintf(buf, len, "%s", nm(x));
    else if (x->kind == NK_OP) snprintf(buf, len, "(%s)", op_table[x->op].name);
    else snprintf(buf, len, "%s", node_op_name(x));
}

static int cat_parts(const rc_node *cat, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    if (cat->kind != NK_OP || (cat->op != OP_CONCAT && cat->op != OP_ROW_CONCAT)) {
        operand_desc(cat, buf, len);
        return 1;
    }
    for (int j = 0; j < cat->nin && used + 1 < len; j++) {
        char d[96];
        operand_desc(cat->in[j], d, sizeof d);
        int w = snprintf(buf + used, len - used, "%s%s", j ? ", " : "[", d);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (used + 2 < len) strcat(buf, "]");
    return cat->nin;
}

/* A pass group: nodes counts the whole graph (a later pass may have made some of them
 * unreachable: the time-batched GEMMs a GEMM fusion merged, the slices a fused
 * elementwise node reads through), reach the part the roots need; step is the one
 * step its reachable nodes lie in (nodes outside every step, like the shared weight
 * concatenation of the first step's fused GEMM, aside), or -1; split: its reachable
 * nodes lie in several steps (the row_slices of a time-batched GEMM). */
typedef struct grp { int group, pass, nodes, reach, step, split; } grp;

static int cmp_grp(const void *a, const void *b)
{
    const grp *p = a, *q = b;
    return (p->group > q->group) - (p->group < q->group);
}

/* Every group of the graph, sorted by id; *ng receives their number. */
static grp *collect_groups(const view *v, int *ng)
{
    const rc_graph *g = v->g;
    int maxg = 0;
    for (int i = 0; i < v->n; i++) maxg = g->nodes[i]->group > maxg ? g->nodes[i]->group : maxg;
    int *slot = malloc(((size_t)maxg + 1) * sizeof *slot);
    grp *out = malloc(((size_t)v->n + 1) * sizeof *out);
    if (!slot || !out) {
        free(slot);
        free(out);
        return NULL;
    }
    for (int i = 0; i <= maxg; i++) slot[i] = -1;
    int n = 0;
    for (int i = 0; i < v->n; i++) {
        rc_node *x = g->nodes[i];
        if (x->pass <= 0 || x->group <= 0) continue;
        if (slot[x->group] < 0) {
            slot[x->group] = n;
            out[n++] = (grp){ x->group, x->pass, 0, 0, -2, 0 };
        }
        grp *q = &out[slot[x->group]];
        q->nodes++;
        if (!v->in[i]) continue;
        int s = v->step ? v->step[i] : -1;
        q->reach++;
        if (s < 0) continue;
        if (q->step == -2) q->step = s;
        else if (q->step != s) q->split = 1;
    }
    for (int i = 0; i < n; i++)
        if (out[i].step < -1 || out[i].split) out[i].step = -1;
    free(slot);
    qsort(out, (size_t)n, sizeof *out, cmp_grp);
    *ng = n;
    return out;
}

/* "add x4, sigmoid x3, tanh x2" of a fused program. */
static void prog_ops(const fused_prog *P, char *buf, size_t len)
{
    int cnt[OP_COUNT] = { 0 };
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < P->nins; i++)
        if (P->ins[i].op >= 0 && P->ins[i].op < OP_COUNT) cnt[P->ins[i].op]++;
    for (int op = 0; op < OP_COUNT && used + 1 < len; op++) {
        if (!cnt[op]) continue;
        int w = cnt[op] > 1 ? snprintf(buf + used, len - used, "%s%s x%d", used ? ", " : "", op_table[op].name, cnt[op])
                            : snprintf(buf + used, len - used, "%s%s", used ? ", " : "", op_table[op].name);
        if (w < 0) break;
        used += (size_t)w;
        if (used >= len) used = len - 1;
    }
}

static void describe_group(const view *v, const grp *q, char *buf, size_t len)
{
    const rc_graph *g = v->g;
    rc_node *mm = NULL, *rs = NULL, *sl = NULL;
    int slices = 0, rslices = 0, fused = 0, fins = 0;
    char ops[160] = "";
    size_t used = 0;
    for (int i = 0; i < v->n; i++) {
        rc_node *x = g->nodes[i];
        if (x->group != q->group || x->pass != q->pass || x->kind != NK_OP) continue;
        if (x->op == OP_MATMUL && !mm) mm = x;
        if (x->op == OP_ROW_SLICE) {
            rslices++;
            if (!rs) rs = x;
        }
        if (x->op == OP_SLICE) {
            slices++;
            if (!sl) sl = x;
        }
        if (x->op == OP_FUSED && x->par.fused) {
            fused++;
            fins += x->par.fused->nins;
            if (fused == 1) prog_ops(x->par.fused, ops, sizeof ops);
            continue;
        }
        const char *on = op_table[x->op].name;
        if (!fused && !strstr(ops, on) && used + strlen(on) + 3 < sizeof ops)
            used += (size_t)snprintf(ops + used, sizeof ops - used, "%s%s", used ? ", " : "", on);
    }
    char a[96], w[160];
    if (q->pass == PASS_TIME_BATCH) {
        rc_node *big = mm, *wt = NULL, *src = NULL;
        int tb = 0, later = 0;
        if (!big && rs) big = node_resolve(rs->in[0]);
        if (big && big->kind == NK_OP && big->op == OP_MATMUL) {
            wt = node_resolve(big->in[1]);
            src = node_resolve(big->in[0]);
            tb = big->par.i[1];
        } else if (big && big->kind == NK_OP && big->op == OP_SLICE) {   /* the GEMM was fused further */
            rc_node *y = node_resolve(big->in[0]);
            later = 1;
            if (y->kind == NK_OP && y->op == OP_MATMUL) {
                rc_node *cat = node_resolve(y->in[1]);
                src = node_resolve(y->in[0]);
                tb = y->par.i[1];
                wt = cat;
                if (cat->kind == NK_OP && (cat->op == OP_CONCAT || cat->op == OP_ROW_CONCAT))
                    for (int j = 0, off = 0; j < cat->nin; j++) {
                        rc_node *p = node_resolve(cat->in[j]);
                        if (off == big->par.i[0]) {
                            wt = p;
                            break;
                        }
                        off += tb ? p->t.shape[0] : p->t.shape[1];
                    }
                big = y;
            }
        }
        if (!wt || !src) {
            snprintf(buf, len, "time-batched: %d nodes (%s)", q->nodes, ops);
            return;
        }
        operand_desc(src, a, sizeof a);
        operand_desc(wt, w, sizeof w);
        int rows = big->t.shape[0], B = rs ? rs->par.i[1] : rows;
        if (B < 1) B = 1;
        snprintf(buf, len, "time-batched: %s @ %s%s over T*B = %d*%d = %d rows (%d per-step matmuls -> 1 GEMM)%s", a, w,
                 tb ? "^T" : "", rows / B, B, rows, rslices ? rslices : 1, later ? ", then fused" : "");
        return;
    }
    if (q->pass == PASS_GEMM_FUSION && mm) {
        operand_desc(mm->in[0], a, sizeof a);
        int parts = cat_parts(node_resolve(mm->in[1]), w, sizeof w);
        /* were the fused matmuls GEMMs the time-batching made? (its row_slices read them) */
        int steps = 0, B = 0;
        for (int i = 0; sl && i < v->n; i++) {
            rc_node *x = g->nodes[i];
            if (x->pass == PASS_TIME_BATCH && x->kind == NK_OP && x->op == OP_ROW_SLICE && node_resolve(x->in[0]) == sl) {
                steps++;
                B = x->par.i[1];
            }
        }
        if (steps > 0)
            snprintf(buf, len, "time-batched, fused GEMM: %s @ %s%s over T*B = %d*%d = %d rows (%d matmuls x %d steps -> 1)",
                     a, w, mm->par.i[1] ? "^T" : "", steps, B, mm->t.shape[0], slices ? slices : parts, steps);
        else
            snprintf(buf, len, "fused GEMM: %s @ %s%s on %d rows (%d matmuls -> 1)", a, w, mm->par.i[1] ? "^T" : "",
                     mm->t.shape[0], slices ? slices : parts);
        return;
    }
    if (q->pass == PASS_EW_FUSION) {
        if (fused == 1) snprintf(buf, len, "fused elementwise: %d ops -> 1 loop (%s)", fins, ops);
        else snprintf(buf, len, "fused elementwise: %d nodes (%s)", q->nodes, ops);
        return;
    }
    snprintf(buf, len, "%s: %d nodes (%s)", pass_name(q->pass), q->nodes, ops);
}

int rc_graph_pass_groups(const rc_graph *g, int n_roots, rc_node *const *roots, rc_pass_group *out, int max)
{
    view v;
    if (max > 0 && !out) return -1;
    if (view_build(&v, g, n_roots, roots, NULL, 0) != RC_OK) return -1;
    if (view_steps(&v) != RC_OK) {
        view_free(&v);
        return -1;
    }
    int ng = 0;
    grp *gs = collect_groups(&v, &ng);
    if (!gs) {
        view_free(&v);
        return -1;
    }
    for (int i = 0; i < ng && i < max; i++) {
        rc_pass_group *o = &out[i];
        memset(o, 0, sizeof *o);
        o->pass = gs[i].pass;
        o->group = gs[i].group;
        o->nodes = gs[i].nodes;
        o->reachable = gs[i].reach;
        o->step = gs[i].step;
        describe_group(&v, &gs[i], o->what, sizeof o->what);
    }
    free(gs);
    view_free(&v);
    return ng;
}

/* ---- structural diff ---------------------------------------------------------------- */

typedef struct use { const char *param; char sig[200]; } use;

static int cmp_use(const void *a, const void *b)
{
    const use *p = a, *q = b;
    int c = strcmp(p->param, q->param);
    return c ? c : strcmp(p->sig, q->sig);
}

/* Every (parameter, use) of the reachable part, sorted, duplicates removed. */
static use *collect_uses(const view *v, int *nu)
{
    const rc_graph *g = v->g;
    size_t cap = 1;
    for (int k = 0; k < v->norder; k++) cap += (size_t)g->nodes[v->order[k]]->nin;
    use *u = malloc(cap * sizeof *u);
    if (!u) return NULL;
    int n = 0;
    for (int k = 0; k < v->norder; k++) {
        rc_node *x = g->nodes[v->order[k]];
        if (x->kind != NK_OP) continue;
        for (int j = 0; j < x->nin; j++) {
            rc_node *p = node_resolve(x->in[j]);
            if (p->kind != NK_PARAM) continue;
            use *e = &u[n++];
            e->param = nm(p);
            size_t used = (size_t)snprintf(e->sig, sizeof e->sig, "%s(", op_table[x->op].name);
            for (int i = 0; i < x->nin && used + 2 < sizeof e->sig; i++) {
                char d[96];
                if (i == j) snprintf(d, sizeof d, ".");
                else operand_desc(x->in[i], d, sizeof d);
                int w = snprintf(e->sig + used, sizeof e->sig - used, "%s%s", i ? ", " : "", d);
                if (w < 0) break;
                used += (size_t)w;
            }
            if (used + 2 < sizeof e->sig) strcat(e->sig, ")");
        }
    }
    qsort(u, (size_t)n, sizeof *u, cmp_use);
    int m = 0;
    for (int i = 0; i < n; i++)
        if (m == 0 || cmp_use(&u[m - 1], &u[i]) != 0) u[m++] = u[i];
    *nu = m;
    return u;
}

/* The uses of one parameter, starting at u[*i], joined by "; "; advances *i. */
static void join_uses(const use *u, int n, int *i, char *buf, size_t len)
{
    const char *p = u[*i].param;
    size_t used = 0;
    buf[0] = 0;
    for (; *i < n && strcmp(u[*i].param, p) == 0; (*i)++) {
        if (used + 1 >= len) continue;
        int w = snprintf(buf + used, len - used, "%s%s", used ? "; " : "", u[*i].sig);
        if (w > 0) used += (size_t)w;
        if (used >= len) used = len - 1;
    }
}

static void add_name(char list[][64], int *n, int *trunc, const char *name)
{
    if (*n >= RC_DIFF_MAX) {
        *trunc = 1;
        return;
    }
    snprintf(list[(*n)++], 64, "%s", name);
}

rc_status rc_graph_diff_of(const rc_graph *a, int na, rc_node *const *ra, const rc_graph *b, int nb,
                           rc_node *const *rb, rc_graph_diff *out)
{
    if (!out) return RC_ERR_ARG;
    memset(out, 0, sizeof *out);
    view va, vb;
    rc_status st = view_build(&va, a, na, ra, NULL, 0);
    if (st != RC_OK) return st;
    if ((st = view_build(&vb, b, nb, rb, NULL, 0)) != RC_OK) {
        view_free(&va);
        return st;
    }
    int ca[OP_COUNT] = { 0 }, cb[OP_COUNT] = { 0 };
    for (int k = 0; k < va.norder; k++)
        if (a->nodes[va.order[k]]->kind == NK_OP) ca[a->nodes[va.order[k]]->op]++;
    for (int k = 0; k < vb.norder; k++)
        if (b->nodes[vb.order[k]]->kind == NK_OP) cb[b->nodes[vb.order[k]]->op]++;
    for (int op = 0; op < OP_COUNT; op++)
        if (ca[op] != cb[op]) {
            out->ops[out->n_ops].op = op_table[op].name;
            out->ops[out->n_ops].a = ca[op];
            out->ops[out->n_ops].b = cb[op];
            out->n_ops++;
        }
    int nua = 0, nub = 0;
    use *ua = collect_uses(&va, &nua), *ub = collect_uses(&vb, &nub);
    if (!ua || !ub) {
        st = RC_ERR_NOMEM;
        goto done;
    }
    /* parameters that no op uses (a root that is a parameter) count as used by nothing */
    for (int i = 0, j = 0; i < nua || j < nub;) {
        int c = i >= nua ? 1 : j >= nub ? -1 : strcmp(ua[i].param, ub[j].param);
        char sa[1024], sb[1024];
        if (c < 0) {
            add_name(out->only_a, &out->n_only_a, &out->truncated, ua[i].param);
            join_uses(ua, nua, &i, sa, sizeof sa);
        } else if (c > 0) {
            add_name(out->only_b, &out->n_only_b, &out->truncated, ub[j].param);
            join_uses(ub, nub, &j, sb, sizeof sb);
        } else {
            const char *p = ua[i].param;
            join_uses(ua, nua, &i, sa, sizeof sa);
            join_uses(ub, nub, &j, sb, sizeof sb);
            if (strcmp(sa, sb) != 0) {
                if (out->n_rewired < RC_DIFF_MAX)
                    snprintf(out->rewired_how[out->n_rewired], sizeof out->rewired_how[0], "a: %.120s | b: %.120s",
                             sa, sb);
                add_name(out->rewired, &out->n_rewired, &out->truncated, p);
            }
        }
    }
done:
    free(ua);
    free(ub);
    view_free(&va);
    view_free(&vb);
    return st;
}

/* ---- Graphviz ------------------------------------------------------------------------ */

static void dot_str(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if ((unsigned char)*s >= 0x20) fputc(*s, f);
    }
}

static void dot_node(FILE *f, const view *v, const rc_node *x, const char *indent)
{
    char sh[64];
    tensor_shape_str(&x->t, sh, sizeof sh);
    fprintf(f, "%sn%d [label=\"", indent, x->id);
    switch (x->kind) {
    case NK_OP:
        dot_str(f, op_table[x->op].name);
        if (nm(x)[0]) {
            fputs("\\n", f);
            dot_str(f, nm(x));
        }
        fprintf(f, "\\n%s\"", sh);
        if (x->op == OP_MATMUL) fputs(", style=filled, fillcolor=\"#cfe2f3\"", f);
        break;
    case NK_PARAM:
        dot_str(f, nm(x));
        fprintf(f, "\\n%s\", shape=box, style=filled, fillcolor=\"#fff2cc\"", sh);
        break;
    case NK_INPUT:
        dot_str(f, nm(x)[0] ? nm(x) : "input");
        fprintf(f, "\\n%s\", shape=invhouse, style=filled, fillcolor=\"#d9ead3\"", sh);
        break;
    default:
        dot_str(f, nm(x)[0] ? nm(x) : "const");
        fprintf(f, "\\n%s\", shape=box, style=dashed", sh);
        break;
    }
    if (v->root[x->id]) fputs(", peripheries=2", f);
    fputs("];\n", f);
}

static const char *pass_color(int pass)
{
    switch (pass) {
    case PASS_TIME_BATCH: return "#fde9d9";
    case PASS_GEMM_FUSION: return "#e3ecfb";
    case PASS_EW_FUSION: return "#e6f4dd";
    default: return "#eeeeee";
    }
}

/* A group's cluster: all its reachable nodes, or for a group split across steps only
 * those outside every step (none: no cluster). */
static void dot_group(FILE *f, const view *v, const grp *q, const char *indent)
{
    int any = 0;
    for (int k = 0; k < v->norder && !any; k++) {
        rc_node *x = v->g->nodes[v->order[k]];
        any = x->group == q->group && x->pass == q->pass && (!q->split || v->step[x->id] < 0);
    }
    if (!any) return;
    char what[240];
    describe_group(v, q, what, sizeof what);
    fprintf(f, "%ssubgraph cluster_%d {\n%s  label=\"", indent, q->group, indent);
    dot_str(f, what);
    fprintf(f, "\";\n%s  style=\"rounded,filled\"; fillcolor=\"%s\"; color=\"#888888\"; fontsize=10;\n", indent,
            pass_color(q->pass));
    char in2[32];
    snprintf(in2, sizeof in2, "%s  ", indent);
    for (int k = 0; k < v->norder; k++) {
        rc_node *x = v->g->nodes[v->order[k]];
        if (x->group == q->group && x->pass == q->pass && (!q->split || v->step[x->id] < 0)) dot_node(f, v, x, in2);
    }
    fprintf(f, "%s}\n", indent);
}

static int write_dot(FILE *f, const view *v, const rc_dot_opts *o)
{
    const rc_graph *g = v->g;
    int ng = 0;
    grp *gs = collect_groups(v, &ng);
    if (!gs) return -1;
    int maxstep = -1, maxg = 0;
    for (int k = 0; k < v->norder && o->step_clusters; k++) {
        int s = v->step[v->order[k]];
        maxstep = s > maxstep ? s : maxstep;
    }
    for (int i = 0; i < ng; i++) maxg = gs[i].group > maxg ? gs[i].group : maxg;
    int *gi = malloc(((size_t)maxg + 1) * sizeof *gi);   /* group id -> index in gs */
    if (!gi) {
        free(gs);
        return -1;
    }
    for (int i = 0; i < ng; i++) gi[gs[i].group] = i;
    if (!o->step_clusters)   /* without step clusters no group is split */
        for (int i = 0; i < ng; i++) gs[i].split = 0;
    fprintf(f, "digraph recur {\n  rankdir=TB; newrank=true; compound=true;\n");
    fprintf(f, "  node [fontname=\"Helvetica\", fontsize=10]; edge [color=\"#555555\"];\n");
    if (o->title) {
        fputs("  label=\"", f);
        dot_str(f, o->title);
        fputs("\"; labelloc=t; fontname=\"Helvetica\";\n", f);
    }
    /* Step clusters hold their nodes and the pass groups that lie inside the step; the
     * rest (leaves, the stacked outputs, groups that span steps) is drawn at the top.
     * The nodes of a group split across steps stay in their steps, filled with the
     * pass's colour. */
    for (int s = -1; s <= maxstep; s++) {
        const char *ind = s >= 0 ? "    " : "  ";
        if (s >= 0)
            fprintf(f, "  subgraph cluster_step_%d {\n    label=\"step t = %d\"; style=dashed; color=\"#999999\";\n", s, s);
        for (int i = 0; i < ng; i++)
            if (gs[i].reach > 0 && (o->step_clusters ? gs[i].step : -1) == s) dot_group(f, v, &gs[i], ind);
        for (int k = 0; k < v->norder; k++) {
            rc_node *x = g->nodes[v->order[k]];
            int xs = o->step_clusters ? v->step[x->id] : -1;
            const grp *q = x->pass > 0 && x->group > 0 && x->group <= maxg ? &gs[gi[x->group]] : NULL;
            if (q && q->group != x->group) q = NULL;
            if (q && !q->split) continue;                /* drawn in its group's cluster */
            if (q && q->split && xs < 0) continue;
            if (xs != s) continue;
            if (q) {   /* a split group's node in its step */
                char sh[64];
                tensor_shape_str(&x->t, sh, sizeof sh);
                fprintf(f, "%sn%d [label=\"%s\\n%s\\n%s\", style=filled, fillcolor=\"%s\"%s];\n", ind, x->id,
                        op_table[x->op].name, pass_name(q->pass), sh, pass_color(q->pass),
                        v->root[x->id] ? ", peripheries=2" : "");
            } else dot_node(f, v, x, ind);
        }
        if (s >= 0) fputs("  }\n", f);
    }
    for (int k = 0; k < v->norder; k++) {
        rc_node *x = g->nodes[v->order[k]];
        for (int j = 0; x->kind == NK_OP && j < x->nin; j++)
            fprintf(f, "  n%d -> n%d;\n", node_resolve(x->in[j])->id, x->id);
    }
    fputs("}\n", f);
    free(gi);
    free(gs);
    return ferror(f) ? -1 : 0;
}

rc_status rc_graph_write_dot(const rc_graph *g, int n_roots, rc_node *const *roots, const char *path,
                             const rc_dot_opts *o, char *err, size_t errlen)
{
    rc_dot_opts def = { 0 };
    if (!o) o = &def;
    if (!path || !path[0]) {
        put_err(err, errlen, "write_dot: no file name");
        return RC_ERR_ARG;
    }
    view v;
    rc_status st = view_build(&v, g, n_roots, roots, err, errlen);
    if (st != RC_OK) return st;
    if (view_steps(&v) != RC_OK) {
        view_free(&v);
        put_err(err, errlen, "write_dot: out of memory");
        return RC_ERR_NOMEM;
    }
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp) {
        view_free(&v);
        put_err(err, errlen, "write_dot: out of memory");
        return RC_ERR_NOMEM;
    }
    snprintf(tmp, pl + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        put_err(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        view_free(&v);
        return RC_ERR_IO;
    }
    int bad = write_dot(f, &v, o);
    int ebad = bad == 0 && (fflush(f) != 0 || fsync(fileno(f)) != 0);
    int e = errno;
    if (fclose(f) != 0 && !ebad && !bad) {
        ebad = 1;
        e = errno;
    }
    if (!bad && !ebad && rename(tmp, path) != 0) {
        ebad = 1;
        e = errno;
    }
    if (bad || ebad) {
        unlink(tmp);
        if (bad && !ebad) put_err(err, errlen, "%s: out of memory or write error", path);
        else put_err(err, errlen, "%s: cannot write: %s", path, strerror(e));
        st = bad && !ebad ? RC_ERR_NOMEM : RC_ERR_IO;
    }
    free(tmp);
    view_free(&v);
    return st;
}
