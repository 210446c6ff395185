/* rc_unroll: T copies of a cell's step sharing parameters by name, with state edges
 * t-1 -> t. The result is an ordinary graph: it can be planned, run, differentiated
 * (BPTT is the reverse sweep over it) and inspected. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cell.h"

static rc_status fail(rc_graph *g, rc_status s, const char *msg, const rc_cell *c)
{
    graph_fail(g, s, "unroll of cell '%s': %s", c ? c->name : "(null)", msg);
    return s;
}

/* A state's starting value: given, learned, or zeros. */
static rc_node *initial_state(rc_graph *g, const rc_cell *c, int i, int B, const rc_unroll_opts *o)
{
    int shape[2] = { B, c->state_size[i] };
    rc_node *given = (o && o->init) ? o->init[i] : NULL;
    if (given) {
        if (given->t.ndim != 2 || given->t.shape[0] != B || given->t.shape[1] != shape[1]) {
            char sh[64];
            tensor_shape_str(&given->t, sh, sizeof sh);
            return graph_fail(g, RC_ERR_SHAPE, "unroll of cell '%s': initial state '%s' is %s, expected [%d,%d]",
                              c->name, c->state_name[i], sh, B, shape[1]);
        }
        return given;
    }
    rc_node *zeros = rc_fill(g, 2, shape, 0.0f);
    if (!(o && o->learned_init)) return zeros;
    char name[256];
    snprintf(name, sizeof name, "%sinit_%s", (o && o->prefix) ? o->prefix : "", c->state_name[i]);
    return rc_add(g, zeros, rc_param(g, name, 1, &shape[1]));
}

/* A step is one sequence's: rc_sum or rc_mean of a value computed from the step's
 * input or states would add up all B sequences of the batch, so the cell would train
 * on a mixture and compute something else at another batch size (sampling at B = 1).
 * Refused, naming the row-wise op; a sum of parameters alone is fine. The step's
 * nodes are those from id `first` on; operands come before their users. */
static rc_status refuse_batch_reductions(rc_step *s, int first)
{
    rc_graph *g = s->g;
    int n = g->n - first;
    if (n <= 0) return RC_OK;
    unsigned char *batch = calloc((size_t)n, 1);   /* per node of the step: depends on the batch */
    if (!batch) return fail(g, RC_ERR_NOMEM, "out of memory", s->cell);
    rc_status st = RC_OK;
    for (int id = first; id < g->n && st == RC_OK; id++) {
        rc_node *v = g->nodes[id];
        if (v->kind != NK_OP) continue;
        int b = 0;
        for (int j = 0; j < v->nin && !b; j++) {
            rc_node *u = node_resolve(v->in[j]);
            b = u == node_resolve(s->x) || (u->id >= first && batch[u->id - first]);
            for (int i = 0; i < s->cell->nstates && !b; i++) b = u == node_resolve(s->prev[i]);
        }
        batch[id - first] = (unsigned char)b;
        if (b && (v->op == OP_SUM || v->op == OP_MEAN)) {
            char d[128];
            node_describe(v, d, sizeof d);
            st = rc_step_fail(s, "%s adds up all %d sequences of the batch (rc_%s of a value of the step's input or "
                              "states); a step is one sequence's: use rc_row_%s, one value per row [B, 1]",
                              d, s->B, v->op == OP_SUM ? "sum" : "mean", v->op == OP_SUM ? "sum" : "mean");
        }
    }
    free(batch);
    return st;
}

rc_status rc_unroll(rc_graph *g, const rc_cell *cell, rc_node *x, int T, const rc_unroll_opts *o,
                    rc_node **outputs, rc_node **final_states)
{
    if (!g) return RC_ERR_ARG;
    if (g->status != RC_OK) return g->status;
    if (!cell || !outputs) return fail(g, RC_ERR_ARG, "NULL cell or outputs", cell);
    if (!x) return fail(g, RC_ERR_ARG, "the input sequence is NULL", cell);
    if (T < 1) return fail(g, RC_ERR_ARG, "T must be >= 1", cell);
    if (x->t.dt != RC_F32 || x->t.ndim != 2 || x->t.shape[0] % T != 0) {
        char sh[64], m[160];
        tensor_shape_str(&x->t, sh, sizeof sh);
        snprintf(m, sizeof m, "the input must be a float [T*B, I] matrix with T = %d dividing its rows; it is %s", T, sh);
        return fail(g, RC_ERR_SHAPE, m, cell);
    }
    if (cell->nstates < 1) return fail(g, RC_ERR_ARG, "the cell declares no state (rc_cell_add_state)", cell);
    int B = x->t.shape[0] / T, I = x->t.shape[1];
    rc_node *mask = o ? o->mask : NULL;
    if (mask && (mask->t.ndim != 2 || mask->t.shape[0] != T * B || mask->t.shape[1] != 1)) {
        char m[96];
        snprintf(m, sizeof m, "the mask must be [%d,1] (T*B rows, one column)", T * B);
        return fail(g, RC_ERR_SHAPE, m, cell);
    }
    rc_node *cur[CELL_MAX_STATES];
    for (int i = 0; i < cell->nstates; i++)
        if (!(cur[i] = initial_state(g, cell, i, B, o))) return g->status;
    rc_node **outs = malloc((size_t)T * sizeof *outs);
    if (!outs) return fail(g, RC_ERR_NOMEM, "out of memory", cell);
    rc_status st = RC_OK;
    for (int t = 0; t < T && st == RC_OK; t++) {
        g->cur_step = t + 1;   /* tags the step's nodes (the recompute mode's segments) */
        rc_step s = { .g = g, .cell = cell, .prefix = o ? o->prefix : NULL, .t = t, .T = T, .B = B, .I = I };
        s.x = T == 1 ? x : rc_row_slice(g, x, t * B, B);
        memcpy(s.prev, cur, sizeof cur);
        int first = g->n;
        st = cell->fn(&s, cell->user);
        if (st == RC_OK) st = s.status;
        if (st == RC_OK) st = g->status;
        if (st == RC_OK) st = refuse_batch_reductions(&s, first);
        if (st != RC_OK) {
            if (g->status == RC_OK)
                graph_fail(g, st, "cell '%s', step %d: the step function returned '%s'", cell->name, t,
                           rc_status_name(st));
            break;
        }
        for (int i = 0; i < cell->nstates && st == RC_OK; i++)
            if (!s.next[i])
                st = rc_step_fail(&s, "state '%s' was never set (rc_step_set_state)", cell->state_name[i]);
        if (st != RC_OK) break;
        rc_node *out = s.out ? s.out : s.next[0];
        if (mask) {   /* past a sequence's end its state holds and its output is 0 */
            rc_node *m = rc_row_slice(g, mask, t * B, B);
            for (int i = 0; i < cell->nstates; i++)
                s.next[i] = rc_add(g, cur[i], rc_mul(g, rc_sub(g, s.next[i], cur[i]), m));
            out = rc_mul(g, out, m);
        }
        memcpy(cur, s.next, sizeof cur);
        if (o && o->states) memcpy(o->states + (size_t)t * (size_t)cell->nstates, cur, (size_t)cell->nstates * sizeof *cur);
        outs[t] = out;
        st = g->status;
    }
    g->cur_step = 0;
    if (st == RC_OK) {
        *outputs = T == 1 ? outs[0] : rc_row_concat(g, T, outs);
        st = g->status;
    }
    free(outs);
    if (st == RC_OK && final_states)
        for (int i = 0; i < cell->nstates; i++) final_states[i] = cur[i];
    return st;
}
