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
#include <stdint.h>
#include <stdlib.h>
#include "memplan.h"
#include "plan.h"

#define ALIGN 64
/* The arena's largest size: a ptrdiff_t, less room for one alignment, so that
 * offsets, byte counts and their alignment never overflow. */
#define ARENA_MAX ((size_t)PTRDIFF_MAX - ALIGN)
static size_t align_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }

/* What the steps of plan_layout share: the plan, the tape order, the lifetimes of
 * values and gradients, the items handed to memplan, and the running offsets. */
typedef struct layout {
    rc_plan *p;
    rc_graph *g;
    const int *order;
    int n, norder;
    int planning;                  /* buffer planning is on */
    int *prod, *last;              /* per node: producing / last consuming tape index, -1 none */
    unsigned char *keep;           /* per node: a root */
    int *vbirth, *vdeath, *gbirth, *gdeath;   /* per node: lifetimes in execution steps */
    memplan_item *items;
    int *item_node;
    size_t *local;                 /* per node: 1 when it lives in the segment region */
    size_t *abytes;                /* per tape index: its scratch bytes, aligned */
    size_t off, act;               /* the arena so far; its activation bytes */
    int too_big;                   /* the arena would exceed ARENA_MAX: 1 + the node where, or
                                      -1 in a shared region; 0 while it fits */
} layout;

/* Records that the arena overflows (first place only). */
static void overflow_at(layout *L, int node)
{
    if (!L->too_big) L->too_big = node >= 0 ? 1 + node : -1;
}

/* a + b bytes of the arena, or a with the overflow recorded at node (-1: a shared region). */
static size_t grow(layout *L, size_t a, size_t b, int node)
{
    size_t s;
    if (!__builtin_add_overflow(a, b, &s) && s <= ARENA_MAX) return s;
    overflow_at(L, node);
    return a;
}

/* n bytes aligned, or 0 with the overflow recorded when n exceeds the arena. */
static size_t aligned(layout *L, size_t n, int node)
{
    if (n <= ARENA_MAX) return align_up(n);
    overflow_at(L, node);
    return 0;
}

/* The aligned bytes of node i's value or gradient (4 bytes per element). */
static size_t node_bytes(layout *L, int i)
{
    size_t b;
    if (__builtin_mul_overflow(L->g->nodes[i]->t.size, (size_t)4, &b)) b = SIZE_MAX;
    return aligned(L, b, i);
}

/* memplan_assign for a shared region; 0 and *region, or -1 out of memory (an
 * overflow is recorded and gives an empty region). */
static int assign_region(layout *L, int ni, size_t *region)
{
    int rc = memplan_assign(ni, L->items, region);
    if (rc == -2) {
        overflow_at(L, -1);
        *region = 0;
        return 0;
    }
    return rc;
}

static void layout_free(layout *L)
{
    free(L->vbirth); free(L->vdeath); free(L->gbirth); free(L->gdeath);
    free(L->prod); free(L->last); free(L->keep); free(L->items); free(L->item_node);
    free(L->local); free(L->abytes);
}

static int layout_alloc(layout *L)
{
    size_t n = (size_t)(L->n ? L->n : 1), t = (size_t)(L->norder ? L->norder : 1);
    L->prod = malloc(n * sizeof *L->prod);
    L->last = malloc(n * sizeof *L->last);
    L->keep = calloc(n, 1);
    L->items = malloc(n * sizeof *L->items);
    L->item_node = malloc(n * sizeof *L->item_node);
    L->vbirth = malloc(n * sizeof *L->vbirth);
    L->vdeath = malloc(n * sizeof *L->vdeath);
    L->gbirth = malloc(n * sizeof *L->gbirth);
    L->gdeath = malloc(n * sizeof *L->gdeath);
    L->local = calloc(n, sizeof *L->local);
    L->abytes = malloc(t * sizeof *L->abytes);
    int ok = L->prod && L->last && L->keep && L->items && L->item_node && L->vbirth && L->vdeath &&
             L->gbirth && L->gdeath && L->local && L->abytes;
    return ok ? 0 : -1;
}

/* Producer and last consumer of every node, and the lifetimes in steps of
 * execution: tape indices, or levels when the plan runs level by level
 * (schedule.c), so that buffers of one level never share memory. */
static void layout_lifetimes(layout *L, int n_roots, rc_node *const *roots)
{
    const rc_plan *p = L->p;
    rc_graph *g = L->g;
    for (int i = 0; i < L->n; i++) L->prod[i] = L->last[i] = -1;
    for (int k = 0; k < L->norder; k++) {
        rc_node *v = g->nodes[L->order[k]];
        L->prod[v->id] = k;
        for (int j = 0; j < v->nin; j++) L->last[node_resolve(v->in[j])->id] = k;   /* k grows: the last */
    }
    const int *fl = p->fsched.order ? p->fsched.level : NULL, *bl = p->bsched.order ? p->bsched.level : NULL;
    for (int i = 0; i < L->n; i++) L->vbirth[i] = L->vdeath[i] = L->gdeath[i] = -1, L->gbirth[i] = 1 << 30;
    for (int k = 0; k < L->norder; k++) {
        rc_node *v = g->nodes[L->order[k]];
        int ft = fl ? fl[k] : k, bt = bl ? bl[k] : L->norder - 1 - k;
        L->vbirth[v->id] = ft;
        if (ft > L->vdeath[v->id]) L->vdeath[v->id] = ft;
        L->gdeath[v->id] = bt;
        for (int j = 0; j < v->nin; j++) {
            int u = node_resolve(v->in[j])->id;
            if (ft > L->vdeath[u]) L->vdeath[u] = ft;
            if (bt < L->gbirth[u]) L->gbirth[u] = bt;
        }
    }
    for (int r = 0; r < n_roots; r++) L->keep[node_resolve(roots[r])->id] = 1;
}

/* Values: each its own place, or shared by lifetime (inference plans), or, in the
 * recompute mode, marked local when used only inside their segment (placed by
 * layout_segments). 0, or -1 out of memory. */
static int layout_values(layout *L, size_t *voff)
{
    rc_plan *p = L->p;
    int shared_values = L->planning && (p->flags & RC_PLAN_NO_GRAD);
    int ni = 0;
    for (int i = 0; i < L->n; i++) {
        rc_node *v = L->g->nodes[i];
        if (!p->in_plan[i] || (v->kind != NK_INPUT && v->kind != NK_OP)) continue;
        size_t sz = node_bytes(L, i);   /* float and int32 are both 4 bytes */
        int sgi = p->seg && L->prod[i] >= 0 ? p->seg[L->prod[i]] : -1;
        if (sgi >= 0 && !L->keep[i] && L->last[i] >= 0 && L->last[i] <= p->seg_hi[sgi]) {
            L->local[i] = 1;   /* placed by layout_segments */
        } else if (shared_values && v->kind == NK_OP && !L->keep[i] && L->prod[i] >= 0) {
            L->items[ni] = (memplan_item){ sz, L->vbirth[i], L->vdeath[i], 0 };
            L->item_node[ni++] = i;
        } else {
            voff[i] = L->off;
            L->off = grow(L, L->off, sz, i);
            if (v->kind == NK_OP && !L->keep[i]) L->act += sz;
        }
    }
    if (ni == 0) return 0;
    size_t region;
    if (assign_region(L, ni, &region) != 0) return -1;
    for (int q = 0; q < ni; q++) {
        voff[L->item_node[q]] = L->off + L->items[q].offset;
        p->shared[L->item_node[q]] |= PLAN_SHARED_VALUE;
    }
    L->off = grow(L, L->off, region, -1);
    L->act += region;
    return 0;
}

/* The scratch each tape instance keeps from forward to backward (L->abytes). */
static void layout_scratch_sizes(layout *L)
{
    const rc_plan *p = L->p;
    for (int k = 0; k < L->norder; k++) {
        rc_node *v = L->g->nodes[L->order[k]];
        const op_desc *d = &op_table[v->op];
        op_inst tmp = { .op = v->op, .nin = v->nin, .par = &v->par, .out = &p->val[v->id] };
        tensor *ins[v->nin];
        for (int j = 0; j < v->nin; j++) ins[j] = &p->val[node_resolve(v->in[j])->id];
        tmp.in = ins;
        L->abytes[k] = aligned(L, d->aux_bytes ? d->aux_bytes(&tmp) : 0, v->id);
    }
}

/* The segment region: each segment's local values and scratch one after another,
 * every segment from the region's start. */
static void layout_segments(layout *L, size_t *voff, size_t *aoff)
{
    rc_plan *p = L->p;
    if (!p->seg) return;
    size_t region = 0, base = L->off;
    for (int sgi = 0; sgi < p->nseg; sgi++) {
        size_t o = 0;
        for (int k = p->seg_lo[sgi]; k <= p->seg_hi[sgi]; k++) {
            int i = L->order[k];
            if (L->local[i]) {
                voff[i] = base + o;
                o = grow(L, o, node_bytes(L, i), i);
                p->shared[i] |= PLAN_SHARED_VALUE;
            }
            aoff[k] = L->abytes[k] ? base + o : (size_t)-1;
            o = grow(L, o, L->abytes[k], i);
        }
        region = o > region ? o : region;
    }
    L->off = grow(L, L->off, region, -1);
    L->act += region;
}

/* Scratch of the instances outside any segment, each its own place. */
static void layout_scratch(layout *L, size_t *aoff)
{
    for (int k = 0; k < L->norder; k++) {
        if (L->p->seg && L->p->seg[k] >= 0) continue;
        aoff[k] = L->abytes[k] ? L->off : (size_t)-1;
        L->off = grow(L, L->off, L->abytes[k], L->order[k]);
        L->act += L->abytes[k];
    }
}

/* Gradients, in reverse-sweep time (step norder - 1 - k runs instance k): kept ones
 * apart, the others shared by lifetime. 0, or -1 out of memory. */
static int layout_grads(layout *L, const unsigned char *needs, size_t *goff)
{
    rc_plan *p = L->p;
    int ni = 0;
    for (int i = 0; i < L->n; i++) {
        if (!p->in_plan[i] || !needs[i]) continue;
        size_t sz = node_bytes(L, i);
        if (L->planning && !L->keep[i] && L->prod[i] >= 0 && L->last[i] >= 0) {
            L->items[ni] = (memplan_item){ sz, L->gbirth[i], L->gdeath[i], 0 };
            L->item_node[ni++] = i;
        } else {
            goff[i] = L->off;
            L->off = grow(L, L->off, sz, i);
        }
    }
    if (ni == 0) return 0;
    size_t region;
    if (assign_region(L, ni, &region) != 0) return -1;
    for (int q = 0; q < ni; q++) {
        goff[L->item_node[q]] = L->off + L->items[q].offset;
        p->shared[L->item_node[q]] |= PLAN_SHARED_GRAD;
    }
    L->off = grow(L, L->off, region, -1);
    return 0;
}

/* Records on the graph that the arena does not fit, naming where. */
static void report_too_big(const layout *L)
{
    if (L->too_big > 0) {
        char d[128];
        node_describe(L->g->nodes[L->too_big - 1], d, sizeof d);
        graph_fail(L->g, RC_ERR_NOMEM,
                   "plan of %d ops: its arena would exceed %zu bytes at %s (sizes overflow)", L->norder,
                   (size_t)ARENA_MAX, d);
    } else {
        graph_fail(L->g, RC_ERR_NOMEM,
                   "plan of %d ops: its arena would exceed %zu bytes in a region of shared buffers "
                   "(sizes overflow)", L->norder, (size_t)ARENA_MAX);
    }
}

int plan_layout(rc_plan *p, const int *order, int norder, const unsigned char *needs, int n_roots,
                rc_node *const *roots, size_t *voff, size_t *aoff, size_t *goff, size_t *gstart, size_t *total)
{
    layout L = { .p = p, .g = p->g, .order = order, .n = p->nnodes, .norder = norder,
                 .planning = !(p->flags & RC_PLAN_NO_BUFFER_PLAN) };
    int rc = -1;
    if (layout_alloc(&L) != 0) goto out;
    layout_lifetimes(&L, n_roots, roots);
    if (layout_values(&L, voff) != 0) goto out;
    layout_scratch_sizes(&L);
    layout_segments(&L, voff, aoff);
    layout_scratch(&L, aoff);
    *gstart = L.off;
    if (layout_grads(&L, needs, goff) != 0) goto out;
    if (L.too_big) {
        report_too_big(&L);
        rc = -2;
        goto out;
    }
    *total = L.off;
    p->act_bytes = L.act;
    rc = 0;
out:
    layout_free(&L);
    return rc;
}
