/* plan_packs: which tape matmuls use the pack-once small-M kernel (ops/gemm_small.h).
 *
 * A product A @ op(W) qualifies when W is constant during a run (a parameter, a
 * constant, or computed from those alone, like the GEMM-fusion pass's concatenated
 * gate weights), A is not transposed and has few rows (a time step's batch), and
 * the same op(W) is used by at least two instances (the time steps), so one packing
 * per run pays for itself. The reverse sweep's dA = dC @ op(W)^T uses the packing of
 * W in the other orientation, shared with any forward use of that orientation. */
#include <stdlib.h>
#include "plan.h"

/* Rows at or below which a product is a per-step one; time-batched products (T*B
 * rows) stay with OpenBLAS, whose packing is then a small part of the work. */
#define PACK_MAX_M 128

static int operand_id(const rc_plan *p, const op_inst *it, int j) { return (int)(it->in[j] - p->val); }

static int qualifies(const rc_plan *p, const op_inst *it, const unsigned char *cst)
{
    if (it->op != OP_MATMUL || it->par->i[0] != 0) return 0;
    const tensor *a = it->in[0];
    return cst[operand_id(p, it, 1)] && a->shape[0] <= PACK_MAX_M && it->out->shape[1] > 1 && a->shape[1] > 1;
}

int plan_packs(rc_plan *p)
{
    if (!gemm_small_isa() || p->ntape == 0) return 0;
    int n = p->nnodes, rc = -1;
    unsigned char *cst = calloc((size_t)n, 1);
    int *uses = calloc((size_t)n * 2, sizeof *uses), *idx = malloc((size_t)n * 2 * sizeof *idx);
    if (!cst || !uses || !idx) goto out;
    for (int i = 0; i < n; i++) {
        int kind = p->g->nodes[i]->kind;
        cst[i] = p->in_plan[i] && (kind == NK_PARAM || kind == NK_CONST);
        idx[2 * i] = idx[2 * i + 1] = -1;
    }
    for (int k = 0; k < p->ntape; k++) {   /* tape order is topological */
        const op_inst *it = &p->tape[k];
        int c = it->nin > 0;
        for (int j = 0; j < it->nin; j++) c &= cst[operand_id(p, it, j)];
        cst[p->tape_node[k]] = (unsigned char)c;
    }
    for (int k = 0; k < p->ntape; k++) {
        const op_inst *it = &p->tape[k];
        if (qualifies(p, it, cst)) uses[2 * operand_id(p, it, 1) + it->par->i[1]]++;
    }
    /* One pack per (W, orientation) used twice or more forward; the backward
     * orientation of those too when some use needs dA. */
    int np = 0;
    size_t floats = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < p->ntape; k++) {
            const op_inst *it = &p->tape[k];
            if (!qualifies(p, it, cst)) continue;
            int w = operand_id(p, it, 1), tb = it->par->i[1];
            if (uses[2 * w + tb] < 2) continue;
            int want[2] = { tb, pass == 1 && it->gin[0] ? !tb : -1 };
            for (int s = 0; s < 2; s++) {
                if (want[s] < 0 || idx[2 * w + want[s]] >= 0) continue;
                const tensor *b = &p->val[w];
                int K = want[s] ? b->shape[1] : b->shape[0], N = want[s] ? b->shape[0] : b->shape[1];
                idx[2 * w + want[s]] = np++;
                floats += (gemm_pack_floats(K, N) + 15) & ~(size_t)15;
            }
        }
    if (np == 0) {
        rc = 0;
        goto out;
    }
    p->packs = calloc((size_t)np, sizeof *p->packs);
    p->pack_data = aligned_alloc(64, floats * sizeof(float));
    if (!p->packs || !p->pack_data) goto out;
    p->npacks = np;
    float *next = p->pack_data;
    for (int w = 0; w < n; w++)
        for (int o = 0; o < 2; o++) {
            int q = idx[2 * w + o];
            if (q < 0) continue;
            const tensor *b = &p->val[w];
            gemm_pack *pk = &p->packs[q];
            pk->K = o ? b->shape[1] : b->shape[0];
            pk->N = o ? b->shape[0] : b->shape[1];
            pk->data = next;
            next += (gemm_pack_floats(pk->K, pk->N) + 15) & ~(size_t)15;
        }
    for (int k = 0; k < p->ntape; k++) {
        op_inst *it = &p->tape[k];
        if (!qualifies(p, it, cst)) continue;
        int w = operand_id(p, it, 1), tb = it->par->i[1];
        if (uses[2 * w + tb] < 2) continue;
        it->pack[0] = &p->packs[idx[2 * w + tb]];
        if (it->gin[0] && idx[2 * w + !tb] >= 0) it->pack[1] = &p->packs[idx[2 * w + !tb]];
    }
    rc = 0;
out:
    free(cst);
    free(uses);
    free(idx);
    return rc;
}
