/* The reverse sweep: walk the tape backwards, calling each op's vector-Jacobian
 * product. Every gradient is a sum accumulated in tape order, so a parameter used
 * at every time step gets the BPTT sum, the same way on every run. */
#include <string.h>
#include "plan.h"

/* The node id of operand j of a tape instance, from the plan's own record (a later
 * plan's passes may have rewritten the graph node since). */
static int operand_id(const rc_plan *p, const op_inst *it, int j) { return (int)(it->in[j] - p->val); }

/* Marks the nodes from which `loss` is reachable, so the sweep skips the rest. */
static void mark_live(rc_plan *p, int loss)
{
    memset(p->live, 0, (size_t)p->nnodes);
    p->live[loss] = 1;
    for (int k = p->ntape - 1; k >= 0; k--) {
        if (!p->live[p->tape_node[k]]) continue;
        op_inst *it = &p->tape[k];
        for (int j = 0; j < it->nin; j++) p->live[operand_id(p, it, j)] = 1;
    }
    p->live_loss = loss;
}

static void clear_grad(rc_plan *p, int id)
{
    if (p->zeroed[id]) return;
    memset(p->grad[id], 0, p->val[id].size * sizeof(float));
    p->zeroed[id] = 1;
}

/* The backward of tape instance k, if it reaches the loss: clears each operand
 * gradient before its first contribution (or lets the op store into it, when the op
 * writes it whole), then runs the vector-Jacobian product. */
static void run_backward(rc_plan *p, int k)
{
    op_inst *it = &p->tape[k];
    if (!it->gout || !p->live[p->tape_node[k]]) return;
    /* a fresh gradient the op writes whole is stored into, not cleared and added to */
    unsigned ow = it->gwhole, fresh = 0;
    for (int j = 0; j < it->nin && j < 32; j++)
        if (it->gin[j] && (ow >> j & 1u) && !p->zeroed[operand_id(p, it, j)]) fresh |= 1u << j;
    for (int j = 0; j < it->nin; j++) {
        if (!it->gin[j]) continue;
        if (j < 32 && (fresh >> j & 1u)) p->zeroed[operand_id(p, it, j)] = 1;
        else clear_grad(p, operand_id(p, it, j));
    }
    it->gfresh = fresh;
    op_table[it->op].backward(it);
}

rc_status rc_plan_backward(rc_plan *p, rc_node *loss)
{
    if (!p) return RC_ERR_ARG;
    runtime_apply_threads();   /* the process-wide thread count, on this thread too */
    if (!loss || loss->g != p->g || loss->id >= p->nnodes)
        return plan_fail(p, RC_ERR_ARG, "backward: the loss is NULL or not a node of this plan's graph");
    rc_node *l = node_resolve(loss);
    char d[128];
    node_describe(l, d, sizeof d);
    if (!p->in_plan[l->id]) return plan_fail(p, RC_ERR_ARG, "backward: %s is not part of this plan", d);
    if (l->t.size != 1 || l->t.dt != RC_F32)
        return plan_fail(p, RC_ERR_SHAPE, "backward: %s is not a float scalar (reduce it with rc_sum or rc_mean)", d);
    if (p->flags & RC_PLAN_NO_GRAD)
        return plan_fail(p, RC_ERR_STATE, "backward: this plan was built for inference (RC_PLAN_NO_GRAD)");
    if (!p->forwarded) return plan_fail(p, RC_ERR_STATE, "backward: run rc_plan_forward first");
    if (!p->grad[l->id]) {   /* nothing it depends on has a gradient */
        if (p->grad_bytes) memset(p->grad_base, 0, p->grad_bytes);
        return RC_OK;
    }
    if (p->live_loss != l->id) mark_live(p, l->id);
    /* Each gradient is cleared just before its first contribution, while it is about
     * to be in cache anyway; the ones the sweep never reaches are cleared at the end. */
    memset(p->zeroed, 0, (size_t)p->nnodes);
    clear_grad(p, l->id);
    p->grad[l->id][0] = 1.0f;
    if (p->bsched.order) {
        /* level by level (graph/schedule.c; the layout assumes this order): a level's
         * instances touch disjoint gradients, so marked levels run side by side */
        const plan_sched *s = &p->bsched;
        int threads = op_threads();
        for (int lv = 0; lv < s->nlevels; lv++) {
            int a = s->start[lv], b = s->start[lv + 1];
            if (!s->parallel[lv] || threads < 2) {   /* each op may still use the threads inside */
                for (int q = a; q < b; q++) run_backward(p, s->order[q]);
                continue;
            }
            for (int q = a; q < b; q++) matmul_prepare(&p->tape[s->order[q]], 1);
#pragma omp parallel for schedule(dynamic, 1)
            for (int q = a; q < b; q++) run_backward(p, s->order[q]);
        }
    } else {
        for (int k = p->ntape - 1; k >= 0; k--) {
            /* recompute mode: bring back the dropped values of this instance's segment */
            if (p->seg && p->seg[k] >= 0 && p->seg[k] != p->cur_seg && p->tape[k].gout && p->live[p->tape_node[k]])
                plan_recompute(p, p->seg[k]);
            run_backward(p, k);
        }
    }
    for (int i = 0; i < p->nnodes; i++)
        if (p->grad[i]) clear_grad(p, i);
    return RC_OK;
}
