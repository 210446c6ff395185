/* The recompute mode (RC_PLAN_RECOMPUTE): gradient checkpointing over time steps.
 *
 * rc_unroll tags every node with the time step that built it. The tape is cut into
 * segments: maximal runs of consecutive instances from the same block of about
 * sqrt(T) steps. A value whose consumers all lie in its own segment (and that is no
 * root) is not kept: plan_layout gives all segments one shared scratch region, so
 * each segment's forward overwrites the previous one's. The values that cross
 * segments (the states at segment ends, the step outputs gathered into the output
 * sequence) are kept. In the reverse sweep, reaching a segment other than the one the
 * scratch holds runs that segment's forward again, with the same run counter, so the
 * values (dropout masks included) are the same bits as the first time (Chen et al.
 * 2016, "Training deep nets with sublinear memory cost"; for RNNs, Gruslys et al. 2016). */
#include <math.h>
#include <stdlib.h>
#include "plan.h"

int plan_segments(rc_plan *p, const int *order, int norder)
{
    int maxstep = 0;
    for (int k = 0; k < norder; k++) {
        int t = p->g->nodes[order[k]]->tstep;
        maxstep = t > maxstep ? t : maxstep;
    }
    if (maxstep < 4) return 0;   /* nothing worth cutting */
    int len = (int)ceil(sqrt((double)maxstep));
    p->seg = malloc((size_t)norder * sizeof *p->seg);
    p->seg_lo = malloc((size_t)norder * sizeof *p->seg_lo);
    p->seg_hi = malloc((size_t)norder * sizeof *p->seg_hi);
    if (!p->seg || !p->seg_lo || !p->seg_hi) return -1;
    int ns = 0, block = -1;
    for (int k = 0; k < norder; k++) {
        int t = p->g->nodes[order[k]]->tstep;
        if (t == 0) {
            p->seg[k] = -1;
            block = -1;
            continue;
        }
        int b = (t - 1) / len;
        if (b != block) {
            p->seg_lo[ns] = k;
            ns++;
            block = b;
        }
        p->seg[k] = ns - 1;
        p->seg_hi[ns - 1] = k;
    }
    p->nseg = ns;
    p->cur_seg = -1;
    return 0;
}

void plan_recompute(rc_plan *p, int s)
{
    for (int k = p->seg_lo[s]; k <= p->seg_hi[s]; k++) {
        op_inst *it = &p->tape[k];
        char msg[OP_MSG];
        /* it ran the same forward before without error: same inputs, same result */
        (void)op_table[it->op].forward(it, msg);
    }
    p->cur_seg = s;
}
