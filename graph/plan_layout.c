/* plan_layout: where every value, scratch and gradient of a plan lives in its arena.
 *
 * Without buffer planning (RC_PLAN_NO_BUFFER_PLAN) every buffer has its own place.
 * With it (the default):
 *  - gradients: the reverse sweep writes a node's gradient first at its last consumer
 *    (in tape order) and reads it for the last time at the node's own producer, so
 *    per-step gradients live for about one step of the sweep; those buffers share
 *    memory (memplan.h). Gradients of parameters, inputs and roots stay apart, since
 *    they are read after the sweep; rc_plan_grad of any other node returns NULL.
 *  - values of inference plans (RC_PLAN_NO_GRAD): a value lives from its producer to
 *    its last consumer; all but inputs and roots share memory the same way, and
 *    rc_plan_value of the others returns NULL. Training plans keep every value, as
 *    the reverse sweep reads them, except in the recompute mode (plan_recompute.c):
 *    there the values and scratch used only inside their segment of time steps live in
 *    one region that every segment reuses. */
#include <stdlib.h>
#include "memplan.h"
#include "plan.h"

#define ALIGN 64
static size_t align_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

int plan_layout(rc_plan *p, const int *order, int norder, const unsigned char *needs, int n_roots,
                rc_node *const *roots, size_t *voff, size_t *aoff, size_t *goff, size_t *gstart, size_t *total)
{
    rc_graph *g = p->g;
    int n = p->nnodes, rc = -1;
    int planning = !(p->flags & RC_PLAN_NO_BUFFER_PLAN);
    int *vbirth = NULL, *vdeath = NULL, *gbirth = NULL, *gdeath = NULL;
    int *prod = malloc((size_t)n * sizeof *prod), *last = malloc((size_t)n * sizeof *last);
    unsigned char *keep = calloc((size_t)n, 1);
    memplan_item *items = malloc((size_t)(n ? n : 1) * sizeof *items);
    int *item_node = malloc((size_t)(n ? n : 1) * sizeof *item_node);
    if (!prod || !last || !keep || !items || !item_node) goto out;
    for (int i = 0; i < n; i++) prod[i] = last[i] = -1;
    for (int k = 0; k < norder; k++) {
        rc_node *v = g->nodes[order[k]];
        prod[v->id] = k;
        for (int j = 0; j < v->nin; j++) last[node_resolve(v->in[j])->id] = k;   /* k grows: the last */
    }
    /* lifetimes in steps of execution: tape indices, or levels when the plan runs level
     * by level (schedule.c), so that buffers of one level never share memory */
    const int *fl = p->fsched.order ? p->fsched.level : NULL, *bl = p->bsched.order ? p->bsched.level : NULL;
    vbirth = malloc((size_t)n * sizeof *vbirth);
    vdeath = malloc((size_t)n * sizeof *vdeath);
    gbirth = malloc((size_t)n * sizeof *gbirth);
    gdeath = malloc((size_t)n * sizeof *gdeath);
    if (!vbirth || !vdeath || !gbirth || !gdeath) goto out;
    for (int i = 0; i < n; i++) vbirth[i] = vdeath[i] = gdeath[i] = -1, gbirth[i] = 1 << 30;
    for (int k = 0; k < norder; k++) {
        rc_node *v = g->nodes[order[k]];
        int ft = fl ? fl[k] : k, bt = bl ? bl[k] : norder - 1 - k;
        vbirth[v->id] = ft;
        if (ft > vdeath[v->id]) vdeath[v->id] = ft;
        gdeath[v->id] = bt;
        for (int j = 0; j < v->nin; j++) {
            int u = node_resolve(v->in[j])->id;
            if (ft > vdeath[u]) vdeath[u] = ft;
            if (bt < gbirth[u]) gbirth[u] = bt;
        }
    }
    for (int r = 0; r < n_roots; r++) keep[node_resolve(roots[r])->id] = 1;

    /* values; in the recompute mode, those used only inside their segment go to the
     * shared segment region (laid out below) */
    size_t off = 0, act = 0;
    int shared_values = planning && (p->flags & RC_PLAN_NO_GRAD);
    int ni = 0;
    size_t *local = calloc((size_t)n, sizeof *local);   /* 1 + offset inside the segment region */
    if (!local) goto out;
    for (int i = 0; i < n; i++) {
        rc_node *v = g->nodes[i];
        if (!p->in_plan[i] || (v->kind != NK_INPUT && v->kind != NK_OP)) continue;
        size_t sz = align_up(v->t.size * 4);   /* float and int32 are both 4 bytes */
        int sgi = p->seg && prod[i] >= 0 ? p->seg[prod[i]] : -1;
        if (sgi >= 0 && !keep[i] && last[i] >= 0 && last[i] <= p->seg_hi[sgi]) {
            local[i] = 1;   /* placed below */
        } else if (shared_values && v->kind == NK_OP && !keep[i] && prod[i] >= 0) {
            items[ni] = (memplan_item){ sz, vbirth[i], vdeath[i], 0 };
            item_node[ni++] = i;
        } else {
            voff[i] = off;
            off += sz;
            if (v->kind == NK_OP && !keep[i]) act += sz;
        }
    }
    if (ni > 0) {
        size_t region;
        if (memplan_assign(ni, items, &region) != 0) {
            free(local);
            goto out;
        }
        for (int q = 0; q < ni; q++) {
            voff[item_node[q]] = off + items[q].offset;
            p->shared[item_node[q]] |= PLAN_SHARED_VALUE;
        }
        off += region;
        act += region;
    }

    /* scratch kept from forward to backward, per tape instance */
    size_t *abytes = malloc((size_t)(norder ? norder : 1) * sizeof *abytes);
    if (!abytes) {
        free(local);
        goto out;
    }
    for (int k = 0; k < norder; k++) {
        rc_node *v = g->nodes[order[k]];
        const op_desc *d = &op_table[v->op];
        op_inst tmp = { .op = v->op, .nin = v->nin, .par = &v->par, .out = &p->val[v->id] };
        tensor *ins[v->nin];
        for (int j = 0; j < v->nin; j++) ins[j] = &p->val[node_resolve(v->in[j])->id];
        tmp.in = ins;
        abytes[k] = align_up(d->aux_bytes ? d->aux_bytes(&tmp) : 0);
    }

    /* the segment region: each segment's local values and scratch one after another,
     * every segment from the region's start */
    if (p->seg) {
        size_t region = 0, base = off;
        for (int sgi = 0; sgi < p->nseg; sgi++) {
            size_t o = 0;
            for (int k = p->seg_lo[sgi]; k <= p->seg_hi[sgi]; k++) {
                int i = order[k];
                if (local[i]) {
                    voff[i] = base + o;
                    o += align_up(g->nodes[i]->t.size * 4);
                    p->shared[i] |= PLAN_SHARED_VALUE;
                }
                aoff[k] = abytes[k] ? base + o : (size_t)-1;
                o += abytes[k];
            }
            region = o > region ? o : region;
        }
        off += region;
        act += region;
    }
    for (int k = 0; k < norder; k++) {
        if (p->seg && p->seg[k] >= 0) continue;
        aoff[k] = abytes[k] ? off : (size_t)-1;
        off += abytes[k];
        act += abytes[k];
    }
    free(abytes);
    free(local);

    /* gradients, in reverse-sweep time (step norder - 1 - k runs instance k) */
    *gstart = off;
    ni = 0;
    for (int i = 0; i < n; i++) {
        if (!p->in_plan[i] || !needs[i]) continue;
        size_t sz = align_up(g->nodes[i]->t.size * sizeof(float));
        if (planning && !keep[i] && prod[i] >= 0 && last[i] >= 0) {
            items[ni] = (memplan_item){ sz, gbirth[i], gdeath[i], 0 };
            item_node[ni++] = i;
        } else {
            goff[i] = off;
            off += sz;
        }
    }
    if (ni > 0) {
        size_t region;
        if (memplan_assign(ni, items, &region) != 0) goto out;
        for (int q = 0; q < ni; q++) {
            goff[item_node[q]] = off + items[q].offset;
            p->shared[item_node[q]] |= PLAN_SHARED_GRAD;
        }
        off += region;
    }
    *total = off;
    p->act_bytes = act;
    rc = 0;
out:
    free(vbirth); free(vdeath); free(gbirth); free(gdeath);
    free(prod); free(last); free(keep); free(items); free(item_node);
    return rc;
}
