/* The elementwise-fusion pass (see passes.h and ops/fused.h).
 *
 * On the part of the graph the plan's roots need, elementwise op nodes are put in
 * groups, consumers before producers: a node joins the group of its consumers when
 * all of them (every use within that part) are in one group of its own shape and it
 * is not a root; otherwise it is the result of a new group. Every group so has one
 * result, and its other members are needed by the group only, so they need not be
 * materialised. A group of two or more ops becomes one OP_FUSED node: its result
 * node is rewritten in place (so its consumers are untouched) into a node whose
 * inputs are the group's external operands and whose program lists the members in
 * topological order. The members themselves stay in the graph unchanged (another
 * plan may still compute them); this plan no longer reaches them.
 *
 * External operands that are row_slice / slice chains (a step's rows of a projection
 * of all time steps, a gate's columns of a fused GEMM) are looked through: the fused
 * node reads the window of the sliced node in place, so the slices need no copy
 * either. */
#include <stdlib.h>
#include <string.h>
#include "elementwise.h"
#include "fused.h"
#include "kernels.h"
#include "passes.h"

/* Ops whose result the fused node keeps for the reverse sweep instead of recomputing
 * (elementwise_ops.def: cost EW_KEEP_COST or more). */
static int expensive(int op) { return ew_keep(op); }

static int binary_op(int op) { return ew_arity(op) == 2; }

static int candidate(const rc_node *v)
{
    return v->kind == NK_OP && fused_op_ok(v->op) && v->t.dt == RC_F32;
}

typedef struct work {
    rc_graph *g;
    int n;
    unsigned char *mark;   /* 0 unseen, 1 on the stack, 2 done */
    int *order, norder;    /* reachable ops, operands first */
    int *nuse, *cstart, *cons;   /* uses by reachable ops; consumers (CSR) */
    int *grp, *gsize, *gout, ngroups;
    int *gstart, *members;  /* each group's members in topological order */
    unsigned char *isroot;
    int *insof;            /* node id -> instruction index while compiling a group */
} work;

/* Post-order DFS from the roots; 1 when the graph has a cycle or an undefined
 * declaration (left for plan building to report), 0 otherwise, -1 out of memory. */
static int reach(work *w, int nroots, rc_node *const *roots)
{
    int *stack = malloc((size_t)w->n * sizeof *stack), *next = calloc((size_t)w->n, sizeof *next);
    if (!stack || !next) {
        free(stack);
        free(next);
        return -1;
    }
    int bad = 0;
    for (int r = 0; r < nroots && !bad; r++) {
        rc_node *root = node_resolve(roots[r]);
        if (w->mark[root->id]) continue;
        int sp = 0;
        stack[sp++] = root->id;
        w->mark[root->id] = 1;
        while (sp > 0 && !bad) {
            rc_node *v = w->g->nodes[stack[sp - 1]];
            if (v->kind == NK_DECL) {
                bad = 1;
                break;
            }
            if (v->kind == NK_OP && next[v->id] < v->nin) {
                rc_node *u = node_resolve(v->in[next[v->id]++]);
                if (u->kind == NK_DECL || w->mark[u->id] == 1) {
                    bad = 1;
                } else if (w->mark[u->id] == 0) {
                    w->mark[u->id] = 1;
                    stack[sp++] = u->id;
                }
                continue;
            }
            w->mark[v->id] = 2;
            if (v->kind == NK_OP) w->order[w->norder++] = v->id;
            sp--;
        }
    }
    free(stack);
    free(next);
    return bad;
}

static int next_group(rc_graph *g)
{
    int mx = 0;
    for (int i = 0; i < g->n; i++) mx = g->nodes[i]->group > mx ? g->nodes[i]->group : mx;
    return mx + 1;
}

/* Reference to external operand (node, mode, window), added when new. */
static int ext_ref(fused_prog *P, rc_node **ext_nodes, rc_node *u, int mode, int roff, int coff)
{
    for (int k = 0; k < P->next; k++)
        if (ext_nodes[k] == u && P->ext[k].mode == mode && P->ext[k].roff == roff && P->ext[k].coff == coff)
            return FZ_EXT(k);
    int k = P->next++;
    ext_nodes[k] = u;
    P->ext[k] = (fz_ext){ mode, roff, coff, 0 };
    return FZ_EXT(k);
}

/* The operand reference of operand j of member v of group G. */
static int operand_ref(work *w, fused_prog *P, rc_node **ext_nodes, rc_node *v, int j, int G)
{
    rc_node *u = node_resolve(v->in[j]);
    if (w->grp[u->id] == G && w->insof[u->id] >= 0) return w->insof[u->id];
    int mode = j == 0 ? 0 : bcast_mode(&node_resolve(v->in[0])->t, &u->t);
    int roff = 0, coff = 0;
    for (;;) {   /* look through row_slice / slice: read the window in place */
        if (u->kind != NK_OP || (u->op != OP_ROW_SLICE && u->op != OP_SLICE)) break;
        rc_node *src = node_resolve(u->in[0]);
        if (src->kind == NK_DECL || src->t.dt != RC_F32) break;
        if (u->op == OP_ROW_SLICE) roff += u->par.i[0];
        else coff += u->par.i[0];
        u = src;
    }
    return ext_ref(P, ext_nodes, u, mode, roff, coff);
}

/* Compiles group G (members in order[] order) and rewrites its result node. */
static int fuse_group(work *w, int G, int group_id, unsigned flags)
{
    rc_graph *g = w->g;
    rc_node *outn = g->nodes[w->gout[G]];
    int m = w->gsize[G];
    fused_prog *P = calloc(1, sizeof *P);
    rc_node **ext_nodes = malloc((size_t)(2 * m) * sizeof *ext_nodes);
    if (P) {
        P->ins = calloc((size_t)m, sizeof *P->ins);
        P->ext = calloc((size_t)(2 * m), sizeof *P->ext);
    }
    if (!P || !ext_nodes || !P->ins || !P->ext) {
        fused_prog_free(P);
        free(ext_nodes);
        graph_fail(g, RC_ERR_NOMEM, "out of memory in the elementwise-fusion pass");
        return -1;
    }
    int ni = 0;
    const int *mem = w->members + w->gstart[G];
    for (int k = 0; k < m; k++) {
        rc_node *v = g->nodes[mem[k]];
        fz_ins *q = &P->ins[ni];
        q->op = v->op;
        q->c = v->par.f[0];
        q->save = -1;
        q->a = operand_ref(w, P, ext_nodes, v, 0, G);
        q->b = binary_op(v->op) ? operand_ref(w, P, ext_nodes, v, 1, G) : q->a;
        if (!(flags & RC_PLAN_NO_GRAD) && v != outn && expensive(v->op)) q->save = P->nsave++;
        w->insof[v->id] = ni++;
    }
    for (int k = 0; k < m; k++) w->insof[mem[k]] = -1;
    P->nins = ni;
    P->partials = !(flags & RC_PLAN_NO_GRAD);
    P->shape = outn->t;
    P->shape.data = NULL;
    /* the reverse sweep's first contribution to each register is a store, not an add */
    unsigned char seen[FZ_MAX_INS] = { 0 };
    for (int i = ni - 1; i >= 0; i--) {
        fz_ins *q = &P->ins[i];
        if (q->a >= 0) {
            q->first_a = !seen[q->a];
            seen[q->a] = 1;
        }
        if (binary_op(q->op) && q->b >= 0) {
            q->first_b = !seen[q->b];
            seen[q->b] = 1;
        }
    }
    /* two different windows of one node that overlap (or broadcast views of it): their
     * gradients may meet across tiles, so the reverse sweep keeps one thread. Disjoint
     * windows (an LSTM's four gate blocks of one GEMM result) are fine. */
    size_t R = (size_t)(P->shape.size / (size_t)tensor_cols(&P->shape)), C = (size_t)tensor_cols(&P->shape);
    for (int a = 0; a < P->next; a++)
        for (int b = a + 1; b < P->next; b++) {
            const fz_ext *x = &P->ext[a], *y = &P->ext[b];
            if (ext_nodes[a] != ext_nodes[b] || (x->roff == y->roff && x->coff == y->coff)) continue;
            size_t dr = (size_t)abs(x->roff - y->roff), dc = (size_t)abs(x->coff - y->coff);
            if (x->mode != 0 || y->mode != 0 || (dr < R && dc < C)) P->serial = 1;
        }
    /* windows that tile their node exactly, each one instruction's operand: the reverse
     * sweep may store their gradients into a fresh buffer instead of clearing and adding */
    for (int a = 0; a < P->next; a++) {
        rc_node *u = ext_nodes[a];
        size_t covered = 0;
        int ok = 1;
        for (int b = 0; b < P->next && ok; b++) {
            if (ext_nodes[b] != u) continue;
            int refs = 0;
            for (int i = 0; i < ni; i++)
                refs += (P->ins[i].a == FZ_EXT(b)) + (binary_op(P->ins[i].op) && P->ins[i].b == FZ_EXT(b));
            ok = P->ext[b].mode == 0 && refs == 1;
            covered += R * C;
            for (int c = 0; c < b && ok; c++) {   /* pairwise disjoint */
                if (ext_nodes[c] != u) continue;
                size_t dr = (size_t)abs(P->ext[b].roff - P->ext[c].roff), dc = (size_t)abs(P->ext[b].coff - P->ext[c].coff);
                ok = dr >= R || dc >= C;
            }
        }
        P->ext[a].whole = ok && !P->serial && covered == u->t.size;
    }
    rc_node **in = malloc((size_t)P->next * sizeof *in);
    if (!in) {
        fused_prog_free(P);
        free(ext_nodes);
        graph_fail(g, RC_ERR_NOMEM, "out of memory in the elementwise-fusion pass");
        return -1;
    }
    memcpy(in, ext_nodes, (size_t)P->next * sizeof *in);
    free(ext_nodes);
    free(outn->in);
    outn->in = in;
    outn->nin = P->next;
    outn->op = OP_FUSED;
    outn->par.fused = P;   /* the op's own constants stay, for a plan made before the pass */
    outn->pass = PASS_EW_FUSION;
    outn->group = group_id;
    return 0;
}

int pass_ew_fusion(rc_graph *g, int n_roots, rc_node *const *roots, unsigned flags)
{
    work w = { .g = g, .n = g->n };
    int n = g->n, made = 0, rc = 0;
    w.mark = calloc((size_t)n, 1);
    w.isroot = calloc((size_t)n, 1);
    w.order = malloc((size_t)n * sizeof *w.order);
    w.nuse = calloc((size_t)n + 1, sizeof *w.nuse);
    w.cstart = calloc((size_t)n + 1, sizeof *w.cstart);
    w.grp = malloc((size_t)n * sizeof *w.grp);
    w.insof = malloc((size_t)n * sizeof *w.insof);
    w.gsize = malloc((size_t)n * sizeof *w.gsize);
    w.gout = malloc((size_t)n * sizeof *w.gout);
    if (!w.mark || !w.isroot || !w.order || !w.nuse || !w.cstart || !w.grp || !w.insof || !w.gsize || !w.gout)
        goto nomem;
    int r = reach(&w, n_roots, roots);
    if (r < 0) goto nomem;
    if (r > 0) goto done;   /* plan building reports the cycle or the undefined declaration */
    for (int i = 0; i < n_roots; i++) w.isroot[node_resolve(roots[i])->id] = 1;
    /* consumers of each node among the reachable ops, one entry per use */
    size_t nuses = 0;
    for (int k = 0; k < w.norder; k++) {
        rc_node *v = g->nodes[w.order[k]];
        for (int j = 0; j < v->nin; j++) w.nuse[node_resolve(v->in[j])->id]++;
        nuses += (size_t)v->nin;
    }
    for (int i = 0; i < n; i++) w.cstart[i + 1] = w.cstart[i] + w.nuse[i];
    w.cons = malloc((nuses ? nuses : 1) * sizeof *w.cons);
    int *fill = calloc((size_t)n, sizeof *fill);
    if (!w.cons || !fill) {
        free(fill);
        goto nomem;
    }
    for (int k = 0; k < w.norder; k++) {
        rc_node *v = g->nodes[w.order[k]];
        for (int j = 0; j < v->nin; j++) {
            int u = node_resolve(v->in[j])->id;
            w.cons[w.cstart[u] + fill[u]++] = v->id;
        }
    }
    free(fill);
    /* groups, consumers first */
    for (int i = 0; i < n; i++) {
        w.grp[i] = -1;
        w.insof[i] = -1;
    }
    for (int k = w.norder - 1; k >= 0; k--) {
        rc_node *v = g->nodes[w.order[k]];
        if (!candidate(v)) continue;
        int G = -1, join = !w.isroot[v->id] && w.nuse[v->id] > 0;
        for (int c = w.cstart[v->id]; c < w.cstart[v->id + 1] && join; c++) {
            int u = w.cons[c], gu = w.grp[u];
            if (gu < 0 || !tensor_same_shape(&g->nodes[u]->t, &v->t)) join = 0;
            else if (G < 0) G = gu;
            else if (gu != G) join = 0;
        }
        if (join && w.gsize[G] >= FZ_MAX_INS) join = 0;
        if (join) {
            w.grp[v->id] = G;
            w.gsize[G]++;
        } else {
            G = w.ngroups++;
            w.grp[v->id] = G;
            w.gsize[G] = 1;
            w.gout[G] = v->id;
        }
    }
    w.gstart = malloc(((size_t)w.ngroups + 1) * sizeof *w.gstart);
    w.members = malloc(((size_t)w.norder + 1) * sizeof *w.members);
    int *gfill = calloc((size_t)w.ngroups + 1, sizeof *gfill);
    if (!w.gstart || !w.members || !gfill) {
        free(gfill);
        goto nomem;
    }
    w.gstart[0] = 0;
    for (int G = 0; G < w.ngroups; G++) w.gstart[G + 1] = w.gstart[G] + w.gsize[G];
    for (int k = 0; k < w.norder; k++) {
        int G = w.grp[w.order[k]];
        if (G >= 0) w.members[w.gstart[G] + gfill[G]++] = w.order[k];
    }
    free(gfill);
    int gid = next_group(g);
    for (int G = 0; G < w.ngroups && rc == 0; G++) {
        if (w.gsize[G] < 2) continue;
        if (fuse_group(&w, G, gid++, flags) != 0) rc = -1;
        else made++;
    }
done:
    free(w.mark); free(w.isroot); free(w.order); free(w.nuse); free(w.cstart); free(w.cons);
    free(w.grp); free(w.insof); free(w.gsize); free(w.gout); free(w.gstart); free(w.members);
    return rc < 0 ? -1 : made;
nomem:
    graph_fail(g, RC_ERR_NOMEM, "out of memory in the elementwise-fusion pass");
    rc = -1;
    goto done;
}
