/* The level scheduler: the tape as a DAG, run level by level, the instances of a
 * level side by side on the OpenMP threads.
 *
 * Forward, an instance's level is one more than the highest level among the
 * producers of its operands. Backward (the reverse sweep), an instance waits for
 * every consumer of its result (they write the gradient it reads) and for the
 * consumers of its operands that come later in the tape (they add into the same
 * gradients, and the sums keep the sequential sweep's order, so results are bitwise
 * those of the plain tape order and the same for any thread count).
 *
 * When a plan has a schedule it always runs in level order, one thread or many,
 * because buffer planning (plan_layout.c) then measures lifetimes in levels: buffers
 * touched in one level never share memory, so its instances can run side by side.
 *
 * A level runs side by side only when it pays: two or more instances, enough work in
 * all, and no single instance holding most of it (that one is better split across
 * the threads by its own kernel). Inside such a level each op runs on one thread
 * (OpenBLAS's OpenMP build runs one-threaded inside a parallel region; recur's
 * kernels ask op_threads()). Plans where no level qualifies keep the tape order; so
 * does the recompute mode, whose segments are runs of the tape. */
#include <stdlib.h>
#include <string.h>
#include "plan.h"

/* A level runs in parallel from this much work (FLOPs, at least one per element). */
#define SCHED_MIN_WORK 65536.0
/* ... when its biggest instance has at most this share of it. */
#define SCHED_MAX_SHARE 0.6

static double work_of(rc_plan *p, rc_node *v)
{
    op_inst tmp = { .op = v->op, .nin = v->nin, .par = &v->par, .out = &p->val[v->id] };
    tensor *ins[v->nin];
    for (int j = 0; j < v->nin; j++) ins[j] = &p->val[node_resolve(v->in[j])->id];
    tmp.in = ins;
    double f = op_table[v->op].flops(&tmp), e = (double)v->t.size;
    return f > e ? f : e;
}

/* Sorts tape indices by level into s (tape order inside a level, reversed for the
 * backward schedule) and marks the levels worth running side by side. */
static int levels_to_sched(rc_plan *p, const int *order, int norder, const int *lvl, int backward, plan_sched *s)
{
    int top = -1;
    for (int k = 0; k < norder; k++) top = lvl[k] > top ? lvl[k] : top;
    s->nlevels = top + 1;
    s->order = malloc((size_t)(norder ? norder : 1) * sizeof *s->order);
    s->start = calloc((size_t)s->nlevels + 2, sizeof *s->start);
    s->parallel = calloc((size_t)s->nlevels + 1, 1);
    s->level = malloc((size_t)(norder ? norder : 1) * sizeof *s->level);
    int *fill = calloc((size_t)s->nlevels + 1, sizeof *fill);
    if (!s->order || !s->start || !s->parallel || !s->level || !fill) {
        free(fill);
        return -1;
    }
    memcpy(s->level, lvl, (size_t)norder * sizeof *lvl);
    for (int k = 0; k < norder; k++) s->start[lvl[k] + 1]++;
    for (int l = 0; l < s->nlevels; l++) s->start[l + 1] += s->start[l];
    memcpy(fill, s->start, (size_t)s->nlevels * sizeof *fill);
    for (int q = 0; q < norder; q++) {
        int k = backward ? norder - 1 - q : q;
        s->order[fill[lvl[k]]++] = k;
    }
    free(fill);
    for (int l = 0; l < s->nlevels; l++) {
        int a = s->start[l], b = s->start[l + 1];
        if (b - a < 2) continue;
        double tot = 0, mx = 0;
        for (int q = a; q < b; q++) {
            double w = work_of(p, p->g->nodes[order[s->order[q]]]);
            tot += w;
            mx = w > mx ? w : mx;
        }
        s->parallel[l] = tot >= SCHED_MIN_WORK && mx <= SCHED_MAX_SHARE * tot;
        s->npar += s->parallel[l];
    }
    return 0;
}

void plan_sched_free(plan_sched *s)
{
    free(s->order);
    free(s->start);
    free(s->parallel);
    free(s->level);
    memset(s, 0, sizeof *s);
}

int plan_schedule(rc_plan *p, const int *order, int norder, const unsigned char *needs)
{
    if (norder < 2 || p->seg) return 0;
    int n = p->nnodes, rc = -1;
    int *prod = malloc((size_t)n * sizeof *prod), *lvl = malloc((size_t)norder * sizeof *lvl);
    int *lastw = malloc((size_t)n * sizeof *lastw);
    if (!prod || !lvl || !lastw) goto out;
    for (int i = 0; i < n; i++) prod[i] = -1, lastw[i] = -1;
    for (int k = 0; k < norder; k++) prod[order[k]] = k;
    /* forward: after the producers of the operands */
    for (int k = 0; k < norder; k++) {
        rc_node *v = p->g->nodes[order[k]];
        int l = 0;
        for (int j = 0; j < v->nin; j++) {
            int u = prod[node_resolve(v->in[j])->id];
            if (u >= 0 && lvl[u] + 1 > l) l = lvl[u] + 1;
        }
        lvl[k] = l;
    }
    if (levels_to_sched(p, order, norder, lvl, 0, &p->fsched) != 0) goto out;
    /* backward: after the consumers of the result and the later consumers of each
     * operand with a gradient (lastw[u]: highest level among u's consumers so far) */
    if (!(p->flags & RC_PLAN_NO_GRAD)) {
        for (int k = norder - 1; k >= 0; k--) {
            rc_node *v = p->g->nodes[order[k]];
            int l = lastw[v->id] + 1;
            for (int j = 0; j < v->nin; j++) {
                int u = node_resolve(v->in[j])->id;
                if (needs[u] && lastw[u] + 1 > l) l = lastw[u] + 1;
            }
            lvl[k] = l;
            for (int j = 0; j < v->nin; j++) {
                int u = node_resolve(v->in[j])->id;
                if (needs[u] && l > lastw[u]) lastw[u] = l;
            }
        }
        if (levels_to_sched(p, order, norder, lvl, 1, &p->bsched) != 0) goto out;
    }
    /* nothing side by side in either direction: keep the tape order */
    if (p->fsched.npar == 0 && p->bsched.npar == 0) {
        plan_sched_free(&p->fsched);
        plan_sched_free(&p->bsched);
    }
    rc = 0;
out:
    if (rc != 0) {
        plan_sched_free(&p->fsched);
        plan_sched_free(&p->bsched);
    }
    free(prod);
    free(lvl);
    free(lastw);
    return rc;
}
