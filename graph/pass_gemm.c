/* The two GEMM passes: time-batching and GEMM fusion (see passes.h). */
#include <stdlib.h>
#include <string.h>
#include "gemm_small.h"
#include "passes.h"

/* Rows per step from which per-step input projections stay per step (see below). */
#define TB_PACKED_MIN_ROWS 8

const char *pass_name(int pass)
{
    static const char *names[] = { "", "time-batch", "gemm-fusion", "ew-fusion" };
    return pass >= 0 && pass <= PASS_EW_FUSION ? names[pass] : "?";
}

/* Turns n into op(in...) with parameters par, keeping its shape. */
static int rewrite(rc_graph *g, rc_node *n, int op, int nin, rc_node *const *in, const op_params *par, int pass,
                   int group)
{
    rc_node **arr = malloc((size_t)nin * sizeof *arr);
    if (!arr) {
        graph_fail(g, RC_ERR_NOMEM, "out of memory in a graph pass");
        return -1;
    }
    memcpy(arr, in, (size_t)nin * sizeof *arr);
    free(n->in);
    n->in = arr;
    n->nin = nin;
    n->op = op;
    n->par = *par;
    n->pass = pass;
    n->group = group;
    return 0;
}

static int next_group(rc_graph *g)
{
    int mx = 0;
    for (int i = 0; i < g->n; i++) mx = g->nodes[i]->group > mx ? g->nodes[i]->group : mx;
    return mx + 1;
}

typedef struct cand { int a, w, flags, len, id; } cand;

static int cmp_cand(const void *x, const void *y)
{
    const cand *p = x, *q = y;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    if (p->w != q->w) return p->w < q->w ? -1 : 1;
    if (p->flags != q->flags) return p->flags < q->flags ? -1 : 1;
    if (p->len != q->len) return p->len < q->len ? -1 : 1;
    return p->id < q->id ? -1 : p->id > q->id;
}

int pass_time_batch(rc_graph *g, unsigned flags)
{
    /* With the pack-once kernel, per-step projections of TB_PACKED_MIN_ROWS rows or more
     * run as fast per FLOP as one big GEMM and keep each step's data in cache, while the
     * batched projection and its gradient (T*B rows) go through memory: measured on
     * the benchmark configs (B = 20..64) the batched form was 0-10% slower. Batch-1 and
     * other thin steps still gain (gemv per step). */
    int packed = !(flags & RC_PLAN_NO_PACKED_GEMM) && gemm_small_isa() > 0;
    int force = (flags & RC_PLAN_FORCE_TIME_BATCH) != 0;
    int n0 = g->n, made = 0, nc = 0, group = next_group(g);
    cand *c = malloc((n0 > 0 ? (size_t)n0 : 1u) * sizeof *c);
    if (!c) {
        graph_fail(g, RC_ERR_NOMEM, "out of memory in the time-batching pass");
        return -1;
    }
    for (int i = 0; i < n0; i++) {
        rc_node *n = g->nodes[i];
        if (n->kind != NK_OP || n->op != OP_MATMUL || n->par.i[0] != 0) continue;
        rc_node *sl = node_resolve(n->in[0]);
        if (sl->kind != NK_OP || sl->op != OP_ROW_SLICE) continue;
        cand k = { node_resolve(sl->in[0])->id, node_resolve(n->in[1])->id, n->par.i[1], sl->par.i[1], i };
        c[nc++] = k;
    }
    qsort(c, (size_t)nc, sizeof *c, cmp_cand);
    for (int s = 0; s < nc;) {
        int e = s + 1;
        while (e < nc && c[e].a == c[s].a && c[e].w == c[s].w && c[e].flags == c[s].flags && c[e].len == c[s].len) e++;
        if (e - s >= 2 && (force || !packed || c[s].len < TB_PACKED_MIN_ROWS)) {
            rc_node *in[2] = { g->nodes[c[s].a], g->nodes[c[s].w] };
            op_params mp = { .i = { 0, c[s].flags } };
            rc_node *mm = graph_op(g, OP_MATMUL, 2, in, &mp);
            if (!mm) break;
            mm->pass = PASS_TIME_BATCH;
            mm->group = group;
            for (int k = s; k < e; k++) {
                rc_node *n = g->nodes[c[k].id], *sl = node_resolve(n->in[0]);
                op_params sp = { .i = { sl->par.i[0], sl->par.i[1] } };
                if (rewrite(g, n, OP_ROW_SLICE, 1, &mm, &sp, PASS_TIME_BATCH, group) != 0) break;
            }
            made++;
            group++;
        }
        s = e;
    }
    free(c);
    return g->status == RC_OK ? made : -1;
}

/* A concatenation of weights made earlier in this pass, to share across steps. */
typedef struct wcat { int n, tb, *ids; rc_node *node; } wcat;

int pass_gemm_fusion(rc_graph *g)
{
    int n0 = g->n, made = 0, nc = 0, nw = 0, group = next_group(g);
    cand *c = malloc((n0 > 0 ? (size_t)n0 : 1u) * sizeof *c);
    wcat *cats = calloc(n0 > 0 ? (size_t)n0 : 1u, sizeof *cats);
    rc_node **parts = malloc((n0 > 0 ? (size_t)n0 : 1u) * sizeof *parts);
    if (!c || !cats || !parts) {
        free(c); free(cats); free(parts);
        graph_fail(g, RC_ERR_NOMEM, "out of memory in the GEMM fusion pass");
        return -1;
    }
    for (int i = 0; i < n0; i++) {
        rc_node *n = g->nodes[i];
        if (n->kind != NK_OP || n->op != OP_MATMUL) continue;
        rc_node *w = node_resolve(n->in[1]);
        if (w->kind != NK_PARAM && w->kind != NK_CONST) continue;
        cand k = { node_resolve(n->in[0])->id, 0, n->par.i[0] * 2 + n->par.i[1], 0, i };
        k.w = w->id;   /* sort by weight inside a group: one canonical order of the concatenation */
        c[nc++] = k;
    }
    /* group by (A, flags), weights in id order */
    for (int i = 0; i < nc; i++) { int t = c[i].w; c[i].w = c[i].flags; c[i].flags = t; }
    qsort(c, (size_t)nc, sizeof *c, cmp_cand);   /* now keyed (a, flags, w) */
    for (int s = 0; s < nc && g->status == RC_OK;) {
        int e = s + 1;
        while (e < nc && c[e].a == c[s].a && c[e].w == c[s].w) e++;
        /* distinct weights only: a repeated (A, W) product stays as it is */
        int m = 0;
        for (int k = s; k < e; k++)
            if (m == 0 || c[k].flags != c[s + m - 1].flags) c[s + m++] = c[k];
        int ta = c[s].w / 2, tb = c[s].w % 2;
        if (m >= 2) {
            int found = -1;
            for (int q = 0; q < nw && found < 0; q++) {
                if (cats[q].n != m || cats[q].tb != tb) continue;
                int same = 1;
                for (int k = 0; k < m && same; k++) same = cats[q].ids[k] == c[s + k].flags;
                if (same) found = q;
            }
            if (found < 0) {
                for (int k = 0; k < m; k++) parts[k] = g->nodes[c[s + k].flags];
                /* W^T stacked: rows for tb (W is [out, in]); columns otherwise */
                rc_node *cat = graph_op(g, tb ? OP_ROW_CONCAT : OP_CONCAT, m, parts, NULL);
                int *ids = malloc((size_t)m * sizeof *ids);
                if (!cat || !ids) {
                    free(ids);
                    if (g->status == RC_OK) graph_fail(g, RC_ERR_NOMEM, "out of memory in the GEMM fusion pass");
                    break;
                }
                cat->pass = PASS_GEMM_FUSION;
                cat->group = group;
                for (int k = 0; k < m; k++) ids[k] = c[s + k].flags;
                cats[nw] = (wcat){ m, tb, ids, cat };
                found = nw++;
            }
            rc_node *in[2] = { g->nodes[c[s].a], cats[found].node };
            op_params mp = { .i = { ta, tb } };
            rc_node *y = graph_op(g, OP_MATMUL, 2, in, &mp);
            if (!y) break;
            y->pass = PASS_GEMM_FUSION;
            y->group = group;
            y->tstep = g->nodes[c[s].id]->tstep;   /* one step's product stays in its step */
            for (int k = 0, off = 0; k < m; k++) {
                rc_node *n = g->nodes[c[s + k].id], *wq = g->nodes[c[s + k].flags];
                op_params sp = { .i = { off, n->t.shape[1] } };
                if (rewrite(g, n, OP_SLICE, 1, &y, &sp, PASS_GEMM_FUSION, group) != 0) break;
                off += tb ? wq->t.shape[0] : wq->t.shape[1];
            }
            made++;
            group++;
        }
        s = e;
    }
    for (int q = 0; q < nw; q++) free(cats[q].ids);
    free(c); free(cats); free(parts);
    return g->status == RC_OK ? made : -1;
}
