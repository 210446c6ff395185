/* plan_build: the graph part the roots depend on becomes the tape, a topologically
 * ordered list of op instances whose values, gradients and scratch live in one
 * arena. Forward replays the tape; the reverse sweep lives in autodiff/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"   /* ctc_report */
#include "passes.h"
#include "plan.h"

#define ALIGN 64

rc_status plan_fail(rc_plan *p, rc_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    return s;
}

/* Depth-first search from the roots along resolved operands; appends ops to
 * `order` in post-order (a topological order). Reports cycles and undefined
 * declarations. Iterative, so a long unrolled chain cannot overflow the stack. */
static int topo_sort(rc_graph *g, int nroots, rc_node *const *roots, unsigned char *mark,
                     int *order, int *norder)
{
    enum { WHITE, GREY, BLACK };
    int n = g->n;
    int *stack = malloc((size_t)n * sizeof *stack), *next = calloc((size_t)n, sizeof *next);
    if (!stack || !next) {
        free(stack);
        free(next);
        graph_fail(g, RC_ERR_NOMEM, "out of memory sorting the graph");
        return -1;
    }
    int rc = 0;
    for (int r = 0; r < nroots && rc == 0; r++) {
        rc_node *root = node_resolve(roots[r]);
        if (mark[root->id] == BLACK) continue;
        int sp = 0;
        stack[sp++] = root->id;
        mark[root->id] = GREY;
        while (sp > 0 && rc == 0) {
            rc_node *v = g->nodes[stack[sp - 1]];
            if (v->kind == NK_DECL) {   /* resolved decls are never pushed; this one is undefined */
                char d[128];
                node_describe(v, d, sizeof d);
                if (v->def) graph_fail(g, RC_ERR_GRAPH, "cycle: %s is defined in terms of itself", d);
                else graph_fail(g, RC_ERR_GRAPH, "%s is declared but never defined (rc_define)", d);
                rc = -1;
                break;
            }
            if (v->kind == NK_OP && next[v->id] < v->nin) {
                rc_node *u = node_resolve(v->in[next[v->id]++]);
                if (u->kind == NK_DECL && u->def) {   /* a definition chain that loops */
                    char d[128];
                    node_describe(u, d, sizeof d);
                    graph_fail(g, RC_ERR_GRAPH, "cycle: %s is defined in terms of itself", d);
                    rc = -1;
                } else if (mark[u->id] == GREY) {
                    char a[128], b[128];
                    node_describe(u, a, sizeof a);
                    node_describe(v, b, sizeof b);
                    graph_fail(g, RC_ERR_GRAPH, "cycle: %s depends on itself through %s", a, b);
                    rc = -1;
                } else if (mark[u->id] == WHITE) {
                    mark[u->id] = GREY;
                    stack[sp++] = u->id;
                }
                continue;
            }
            mark[v->id] = BLACK;
            if (v->kind == NK_OP) order[(*norder)++] = v->id;
            sp--;
        }
    }
    free(stack);
    free(next);
    return rc;
}

static void plan_free_parts(rc_plan *p)
{
    free(p->val);
    free(p->grad);
    free(p->in_plan);
    free(p->fed);
    free(p->tape);
    free(p->tape_node);
    free(p->in_ptrs);
    free(p->gin_ptrs);
    free(p->live);
    free(p->zeroed);
    free(p->shared);
    free(p->seg);
    free(p->seg_lo);
    free(p->seg_hi);
    plan_sched_free(&p->fsched);
    plan_sched_free(&p->bsched);
    free(p->arena);
    free(p->packs);
    free(p->pack_data);
    free(p);
}

rc_plan *rc_plan_new(rc_graph *g, int n_roots, rc_node *const *roots)
{
    return rc_plan_new_ex(g, n_roots, roots, 0);
}

/* The roots exist and belong to g; 0, or -1 with the error recorded. */
static int check_roots(rc_graph *g, int n_roots, rc_node *const *roots)
{
    if (n_roots < 1 || !roots) {
        graph_fail(g, RC_ERR_ARG, "rc_plan_new: needs at least one root node");
        return -1;
    }
    for (int r = 0; r < n_roots; r++) {
        if (!roots[r]) {
            graph_fail(g, RC_ERR_ARG, "rc_plan_new: root %d is NULL", r);
            return -1;
        }
        if (roots[r]->g != g) {
            graph_fail(g, RC_ERR_GRAPH, "rc_plan_new: root %d belongs to another graph", r);
            return -1;
        }
    }
    return 0;
}

/* The passes rewrite the graph first (see passes.h); 0, or -1 with the error recorded. */
static int run_passes(rc_graph *g, int n_roots, rc_node *const *roots, unsigned flags)
{
    if (!(flags & RC_PLAN_NO_TIME_BATCH) && pass_time_batch(g, flags) < 0) return -1;
    if (!(flags & RC_PLAN_NO_GEMM_FUSION) && pass_gemm_fusion(g) < 0) return -1;
    if (!(flags & RC_PLAN_NO_EW_FUSION) && pass_ew_fusion(g, n_roots, roots, flags) < 0) return -1;
    return 0;
}

/* The per-node and per-instance arrays of a plan of n nodes and norder instances. */
static int plan_alloc_arrays(rc_plan *p, int n, int norder)
{
    size_t t = (size_t)(norder ? norder : 1);
    p->val = calloc((size_t)n, sizeof *p->val);
    p->grad = calloc((size_t)n, sizeof *p->grad);
    p->in_plan = calloc((size_t)n, 1);
    p->fed = calloc((size_t)n, 1);
    p->live = calloc((size_t)n, 1);
    p->zeroed = calloc((size_t)n, 1);
    p->shared = calloc((size_t)n, 1);
    p->tape = calloc(t, sizeof *p->tape);
    p->tape_node = malloc(t * sizeof *p->tape_node);
    return p->val && p->grad && p->in_plan && p->fed && p->live && p->zeroed && p->shared && p->tape &&
                   p->tape_node
               ? 0
               : -1;
}

/* Marks the nodes the plan reads (in_plan, val) and which need a gradient
 * (parameters, inputs that asked, and ops fed by them); *nptr: the operands of all
 * instances. */
static void mark_needs(rc_plan *p, const unsigned char *mark, const int *order, int norder,
                       unsigned char *needs, size_t *nptr)
{
    rc_graph *g = p->g;
    for (int i = 0; i < p->nnodes; i++) {
        rc_node *v = g->nodes[i];
        if (!mark[i]) continue;
        p->in_plan[i] = 1;
        p->val[i] = v->t;
        if (p->flags & RC_PLAN_NO_GRAD) continue;
        if (v->kind == NK_PARAM || (v->kind == NK_INPUT && v->requires_grad)) needs[i] = 1;
    }
    *nptr = 0;
    for (int k = 0; k < norder; k++) {
        rc_node *v = g->nodes[order[k]];
        *nptr += (size_t)v->nin;
        for (int j = 0; j < v->nin; j++)
            if (needs[node_resolve(v->in[j])->id]) needs[v->id] = 1;
    }
}

/* Lays the arena out (plan_layout), allocates it and points the values of inputs
 * and ops and the gradients into it; aoff (per instance) is left for the tape.
 * 0, or -1 out of memory. */
static int place_arena(rc_plan *p, const int *order, int norder, const unsigned char *needs, int n_roots,
                       rc_node *const *roots, size_t *aoff)
{
    int n = p->nnodes, rc = -1;
    size_t *voff = calloc((size_t)n, sizeof *voff), *goff = calloc((size_t)n, sizeof *goff);
    size_t gstart = 0, off = 0;
    if (!voff || !goff || plan_layout(p, order, norder, needs, n_roots, roots, voff, aoff, goff, &gstart, &off) != 0)
        goto out;
    p->arena_bytes = off;
    p->arena = off ? aligned_alloc(ALIGN, off) : NULL;
    if (off && !p->arena) goto out;
    if (off) memset(p->arena, 0, off);
    p->grad_base = p->arena + gstart;
    p->grad_bytes = off - gstart;
    for (int i = 0; i < n; i++) {
        rc_node *v = p->g->nodes[i];
        if (!p->in_plan[i]) continue;
        if (v->kind == NK_INPUT || v->kind == NK_OP) p->val[i].data = p->arena + voff[i];
        if (needs[i]) p->grad[i] = (float *)(p->arena + goff[i]);
    }
    rc = 0;
out:
    free(voff);
    free(goff);
    return rc;
}

/* One op_inst per op of order[], with pointers to its operands', result's and
 * gradients' buffers and its scratch (aoff, (size_t)-1 none). */
static void build_tape(rc_plan *p, const int *order, int norder, const size_t *aoff)
{
    size_t pk = 0;
    for (int k = 0; k < norder; k++) {
        rc_node *v = p->g->nodes[order[k]];
        op_inst *it = &p->tape[k];
        it->op = v->op;
        it->nin = v->nin;
        it->par = &v->par;
        it->in = p->in_ptrs + pk;
        it->gin = p->gin_ptrs + pk;
        for (int j = 0; j < v->nin; j++) {
            int u = node_resolve(v->in[j])->id;
            it->in[j] = &p->val[u];
            it->gin[j] = p->grad[u];
        }
        pk += (size_t)v->nin;
        it->out = &p->val[v->id];
        it->gout = p->grad[v->id];
        it->aux = aoff[k] == (size_t)-1 ? NULL : p->arena + aoff[k];
        it->gwhole = op_table[v->op].overwrites ? op_table[v->op].overwrites(it) : 0u;
        p->tape_node[k] = v->id;
    }
    p->ntape = norder;
}

/* Everything after the topological sort: gradients needed, segments, schedule,
 * arena, tape. 0, or -1 out of memory. */
static int plan_fill(rc_plan *p, const unsigned char *mark, const int *order, int norder, int n_roots,
                     rc_node *const *roots)
{
    int rc = -1;
    size_t nptr = 0;
    unsigned char *needs = NULL;
    size_t *aoff = NULL;
    if (plan_alloc_arrays(p, p->nnodes, norder) != 0) goto out;
    needs = calloc((size_t)p->nnodes, 1);
    if (!needs) goto out;
    mark_needs(p, mark, order, norder, needs, &nptr);
    p->in_ptrs = malloc((nptr ? nptr : 1) * sizeof *p->in_ptrs);
    p->gin_ptrs = calloc(nptr ? nptr : 1, sizeof *p->gin_ptrs);
    if (!p->in_ptrs || !p->gin_ptrs) goto out;
    if ((p->flags & RC_PLAN_RECOMPUTE) && !(p->flags & RC_PLAN_NO_GRAD) && plan_segments(p, order, norder) != 0)
        goto out;
    if (!(p->flags & RC_PLAN_NO_SCHEDULE) && plan_schedule(p, order, norder, needs) != 0) goto out;
    /* Arena layout: values, then scratch, then gradients (plan_layout). */
    aoff = calloc((size_t)(norder ? norder : 1), sizeof *aoff);
    if (!aoff || place_arena(p, order, norder, needs, n_roots, roots, aoff) != 0) goto out;
    build_tape(p, order, norder, aoff);
    rc = 0;
out:
    free(needs);
    free(aoff);
    return rc;
}

rc_plan *rc_plan_new_ex(rc_graph *g, int n_roots, rc_node *const *roots, unsigned flags)
{
    if (!g) return NULL;
    if (g->status != RC_OK) return NULL;
    if (check_roots(g, n_roots, roots) != 0) return NULL;
    runtime_init();
    if (flags & RC_PLAN_RECOMPUTE) flags |= RC_PLAN_NO_TIME_BATCH;
    if (run_passes(g, n_roots, roots, flags) != 0) return NULL;
    int n = g->n;
    rc_plan *p = calloc(1, sizeof *p);
    unsigned char *mark = calloc((size_t)n, 1);
    int *order = malloc((size_t)n * sizeof *order);
    if (!p || !mark || !order) goto nomem;
    p->g = g;
    p->nnodes = n;
    p->training = 1;
    p->flags = flags;
    p->live_loss = -1;
    int norder = 0;
    if (topo_sort(g, n_roots, roots, mark, order, &norder) != 0) {
        free(mark);
        free(order);
        free(p);
        return NULL;
    }
    if (plan_fill(p, mark, order, norder, n_roots, roots) != 0) goto nomem;
    free(mark);
    free(order);
    if (!(flags & RC_PLAN_NO_PACKED_GEMM) && plan_packs(p) != 0) {
        plan_free_parts(p);
        graph_fail(g, RC_ERR_NOMEM, "out of memory packing weights for a plan of %d nodes", n);
        return NULL;
    }
    return p;

nomem:
    free(mark);
    free(order);
    if (p) plan_free_parts(p);
    graph_fail(g, RC_ERR_NOMEM, "out of memory building a plan of %d nodes", n);
    return NULL;
}

void rc_plan_free(rc_plan *p)
{
    if (p) plan_free_parts(p);
}

const char *rc_plan_error(const rc_plan *p) { return p ? p->err : "no plan (NULL)"; }
void rc_plan_set_training(rc_plan *p, int on) { if (p) p->training = on != 0; }
int rc_plan_length(const rc_plan *p) { return p ? p->ntape : 0; }
size_t rc_plan_arena_bytes(const rc_plan *p) { return p ? p->arena_bytes : 0; }
size_t rc_plan_activation_bytes(const rc_plan *p) { return p ? p->act_bytes : 0; }

/* The plan's record of a node, or NULL when the node is not part of it. */
static const tensor *plan_tensor(const rc_plan *p, const rc_node *n)
{
    if (!p || !n || n->g != p->g || n->id >= p->nnodes) return NULL;
    const rc_node *r = node_resolve((rc_node *)n);
    if (!r || r->id >= p->nnodes || !p->in_plan[r->id]) return NULL;
    return &p->val[r->id];
}

rc_status rc_plan_feed(rc_plan *p, rc_node *input, const void *data, size_t count)
{
    if (!p) return RC_ERR_ARG;
    const tensor *t = plan_tensor(p, input);
    if (!t || input->kind != NK_INPUT) {
        char d[128] = "NULL";
        if (input) node_describe(input, d, sizeof d);
        return plan_fail(p, RC_ERR_ARG, "feed: %s is not an input of this plan", d);
    }
    if (!data || count != t->size) {
        char d[128];
        node_describe(input, d, sizeof d);
        return plan_fail(p, RC_ERR_ARG, "feed: %s takes %zu values, got %zu%s", d, t->size, count,
                         data ? "" : " (NULL data)");
    }
    memcpy(t->data, data, count * 4);
    p->fed[input->id] = 1;
    return RC_OK;
}

/* Instance k's forward: the hook's when it takes it (0 or -1), the kernel's otherwise. */
static int forward_one(rc_plan *p, int k, char *msg, plan_forward_hook hook, void *ctx)
{
    op_inst *it = &p->tape[k];
    int r = hook ? hook(it, k, msg, ctx) : 1;
    return r > 0 ? op_table[it->op].forward(it, msg) : r;
}

rc_status plan_forward_run(rc_plan *p) { return plan_forward_hooked(p, NULL, NULL); }

rc_status plan_forward_hooked(rc_plan *p, plan_forward_hook hook, void *ctx)
{
    runtime_apply_threads();   /* this thread may never have seen rc_set_num_threads */
    for (int i = 0; i < p->nnodes; i++)
        if (p->in_plan[i] && p->g->nodes[i]->kind == NK_INPUT && !p->fed[i]) {
            char d[128];
            node_describe(p->g->nodes[i], d, sizeof d);
            return plan_fail(p, RC_ERR_STATE, "forward: %s was never fed (rc_plan_feed)", d);
        }
    p->epoch++;
    for (int k = 0; k < p->ntape; k++) {
        p->tape[k].run = p->run;
        p->tape[k].epoch = p->epoch;
        p->tape[k].training = p->training;
    }
    int bad = -1;
    char msg[OP_MSG] = "";
    if (p->fsched.order) {   /* level order (the layout assumes it), side by side where marked */
        const plan_sched *s = &p->fsched;
        int threads = op_threads();
        for (int l = 0; l < s->nlevels && bad < 0; l++) {
            int a = s->start[l], b = s->start[l + 1];
            if (!s->parallel[l] || threads < 2) {
                for (int q = a; q < b && bad < 0; q++)
                    if (forward_one(p, s->order[q], msg, hook, ctx) != 0) bad = s->order[q];
                continue;
            }
            for (int q = a; q < b; q++) matmul_prepare(&p->tape[s->order[q]], 0);
#pragma omp parallel for schedule(dynamic, 1)
            for (int q = a; q < b; q++) {
                char m[OP_MSG] = "";
                if (forward_one(p, s->order[q], m, hook, ctx) != 0) {
#pragma omp critical(rc_forward_error)
                    if (bad < 0 || s->order[q] < bad) {
                        bad = s->order[q];
                        memcpy(msg, m, sizeof m);
                    }
                }
            }
        }
    } else {
        for (int k = 0; k < p->ntape && bad < 0; k++)
            if (forward_one(p, k, msg, hook, ctx) != 0) bad = k;
    }
    if (bad >= 0) {
        char d[128];
        node_describe(p->g->nodes[p->tape_node[bad]], d, sizeof d);
        p->forwarded = 0;
        return plan_fail(p, RC_ERR_ARG, "forward: %s: %s", d, msg);
    }
    p->cur_seg = p->nseg - 1;   /* the scratch holds the last segment's values */
    p->forwarded = 1;
    return RC_OK;
}

rc_status rc_plan_forward(rc_plan *p)
{
    if (!p) return RC_ERR_ARG;
    rc_status s = plan_forward_run(p);
    p->run++;
    return s;
}

const float *rc_plan_value(const rc_plan *p, const rc_node *n)
{
    const tensor *t = plan_tensor(p, n);
    if (t && (p->shared[node_resolve((rc_node *)n)->id] & PLAN_SHARED_VALUE)) return NULL;
    return (t && t->dt == RC_F32) ? t->data : NULL;
}

const int32_t *rc_plan_value_i32(const rc_plan *p, const rc_node *n)
{
    const tensor *t = plan_tensor(p, n);
    if (t && (p->shared[node_resolve((rc_node *)n)->id] & PLAN_SHARED_VALUE)) return NULL;
    return (t && t->dt == RC_I32) ? t->data : NULL;
}

const float *rc_plan_grad(const rc_plan *p, const rc_node *n)
{
    if (!plan_tensor(p, n)) return NULL;
    int id = node_resolve((rc_node *)n)->id;
    return (p->shared[id] & PLAN_SHARED_GRAD) ? NULL : p->grad[id];
}

double rc_plan_flops(const rc_plan *p)
{
    double f = 0;
    if (!p) return 0;
    for (int k = 0; k < p->ntape; k++) f += op_table[p->tape[k].op].flops(&p->tape[k]);
    return f;
}

int rc_plan_ctc_infeasible(const rc_plan *p, const rc_node *ctc, int32_t *samples, int max)
{
    if (!p || !ctc || ctc->g != p->g || ctc->id >= p->nnodes || !p->forwarded) return -1;
    int id = node_resolve((rc_node *)ctc)->id;
    for (int k = 0; k < p->ntape; k++)
        if (p->tape_node[k] == id && p->tape[k].op == OP_CTC) return ctc_report(&p->tape[k], samples, max < 0 ? 0 : max);
    return -1;
}
