/* matmul: out[M,N] = op(A)[M,K] @ op(B)[K,N] through cblas_sgemm. */
#include <cblas.h>
#include "gemm_small.h"
#include "kernels.h"

/* Rows and columns of op(X) for a 2-D tensor X and a transpose flag. */
static int rows_of(const tensor *x, int t) { return t ? x->shape[1] : x->shape[0]; }
static int cols_of(const tensor *x, int t) { return t ? x->shape[0] : x->shape[1]; }

SHAPE_FN(shape_matmul)
{
    (void)nin;
    const tensor *a = in[0], *b = in[1];
    int ta = par->i[0], tb = par->i[1];
    if (a->dt != RC_F32 || b->dt != RC_F32) {
        msgf(msg, OP_MSG, "operands must be float32");
        return -1;
    }
    if (a->ndim != 2 || b->ndim != 2) {
        msgf(msg, OP_MSG, "operands must be 2-D, got ranks %d and %d", a->ndim, b->ndim);
        return -1;
    }
    if (cols_of(a, ta) != rows_of(b, tb)) {
        msgf(msg, OP_MSG, "inner dimensions differ: op(a) is %dx%d, op(b) is %dx%d%s%s",
             rows_of(a, ta), cols_of(a, ta), rows_of(b, tb), cols_of(b, tb),
             ta ? " (a transposed)" : "", tb ? " (b transposed)" : "");
        return -1;
    }
    int shape[2] = { rows_of(a, ta), cols_of(b, tb) };
    out->dt = RC_F32;
    return tensor_set_shape_msg(out, 2, shape, msg, OP_MSG);
}

/* C[m,n] += op(X) @ op(Y) with row-major X, Y and leading dimensions from shapes. */
static void gemm_acc(int tx, const tensor *x, const float *xd, int ty, const tensor *y,
                     const float *yd, float *c, float beta)
{
    int m = rows_of(x, tx), k = cols_of(x, tx), n = cols_of(y, ty);
    /* One row or one column: a matrix-vector product, which OpenBLAS does several
     * times faster than a degenerate GEMM (batch-1 recurrences). */
    if (m == 1) {   /* c[1,n] = op(X)[1,k] @ op(Y)[k,n] = op(Y)^T x */
        int incx = tx ? x->shape[1] : 1;
        if (ty) cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, yd, y->shape[1], xd, incx, beta, c, 1);
        else cblas_sgemv(CblasRowMajor, CblasTrans, k, n, 1.0f, yd, y->shape[1], xd, incx, beta, c, 1);
        return;
    }
    if (n == 1) {   /* c[m,1] = op(X)[m,k] @ op(Y)[k,1] */
        int incy = ty ? 1 : y->shape[1];
        if (tx) cblas_sgemv(CblasRowMajor, CblasTrans, k, m, 1.0f, xd, x->shape[1], yd, incy, beta, c, 1);
        else cblas_sgemv(CblasRowMajor, CblasNoTrans, m, k, 1.0f, xd, x->shape[1], yd, incy, beta, c, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, tx ? CblasTrans : CblasNoTrans, ty ? CblasTrans : CblasNoTrans,
                m, n, k, 1.0f, xd, x->shape[1], yd, y->shape[1], beta, c, n);
}

/* The packed weight pk for this run (packing op(B) from b when it is stale), or NULL
 * when the instance has none or no kernel is available. */
static const gemm_pack *fresh_pack(gemm_pack *pk, const op_inst *it, const tensor *b, int tb)
{
    if (!pk || !gemm_small_isa()) return NULL;
    if (pk->stamp != it->epoch) {
        gemm_pack_b(pk, b->data, b->shape[1], tb);
        pk->stamp = it->epoch;
    }
    return pk;
}

void matmul_prepare(op_inst *it, int backward)
{
    if (it->op != OP_MATMUL || it->par->i[0]) return;
    if (!backward) fresh_pack(it->pack[0], it, it->in[1], it->par->i[1]);
    else if (it->gin[0]) fresh_pack(it->pack[1], it, it->in[1], !it->par->i[1]);
}

FWD_FN(fwd_matmul)
{
    (void)msg;
    const tensor *a = it->in[0], *b = it->in[1];
    int tb = it->par->i[1];
    const gemm_pack *pk = it->par->i[0] ? NULL : fresh_pack(it->pack[0], it, b, tb);
    if (pk) {   /* a per-step product with a weight packed once per run */
        gemm_packed(a->shape[0], a->data, a->shape[1], pk, it->out->data, it->out->shape[1], 0);
        return 0;
    }
    gemm_acc(it->par->i[0], it->in[0], it->in[0]->data, it->par->i[1], it->in[1], it->in[1]->data,
             it->out->data, 0.0f);
    return 0;
}

/* dB = op(A)^T dC (or its transpose) into gin[1], stored when it is fresh. */
static void grad_b(const op_inst *it)
{
    const tensor *a = it->in[0], *o = it->out;
    int ta = it->par->i[0], tb = it->par->i[1];
    float beta = (it->gfresh & 2u) ? 0.0f : 1.0f;
    if (!tb) gemm_acc(!ta, a, a->data, 0, o, it->gout, it->gin[1], beta);
    else     gemm_acc(1, o, it->gout, ta, a, a->data, it->gin[1], beta);
}

/* Both gradients are whole products; an operand used twice (x @ x) gets two adds. */
unsigned overwrites_matmul(const op_inst *it) { return it->in[0] == it->in[1] ? 0u : 3u; }

/* Products below this many FLOPs each are not worth running side by side. */
#define OVERLAP_FLOPS (1 << 20)

BWD_FN(bwd_matmul)
{
    const tensor *a = it->in[0], *b = it->in[1], *o = it->out;
    int ta = it->par->i[0], tb = it->par->i[1];
    const float *g = it->gout;
    /* dA = dC @ op(B)^T (or its transpose when A is transposed); dB likewise. */
    const gemm_pack *pk = it->gin[0] && !ta ? fresh_pack(it->pack[1], it, b, !tb) : NULL;
    int M = o->shape[0], K = a->shape[1];
    int acc_a = !(it->gfresh & 1u);
    float beta_a = acc_a ? 1.0f : 0.0f;
    /* A per-step product's dA and dB are independent: with threads, one thread does
     * dB (OpenBLAS runs one-threaded inside a parallel region) while the others share
     * dA's panels, instead of splitting two small GEMMs one after the other. */
    if (pk && it->gin[1] && op_threads() > 1 && 2.0 * M * o->shape[1] * K >= OVERLAP_FLOPS) {
        size_t np = gemm_pack_panels(pk);
#pragma omp parallel
        {
            size_t n = (size_t)op_team_size(), id = (size_t)op_team_id();
            if (n < 2) {
                gemm_packed_panels(M, g, o->shape[1], pk, it->gin[0], K, acc_a, 0, np);
                grad_b(it);
            } else if (id == n - 1) {
                grad_b(it);
            } else {
                size_t q = np / (n - 1), r = np % (n - 1);
                size_t p0 = id * q + (id < r ? id : r), p1 = p0 + q + (id < r);
                gemm_packed_panels(M, g, o->shape[1], pk, it->gin[0], K, acc_a, p0, p1);
            }
        }
        return;
    }
    if (pk) {   /* dA = dC @ op(B)^T with op(B)^T packed once per run */
        gemm_packed(M, g, o->shape[1], pk, it->gin[0], K, acc_a);
    } else if (it->gin[0]) {
        if (!ta) gemm_acc(0, o, g, !tb, b, b->data, it->gin[0], beta_a);
        else     gemm_acc(tb, b, b->data, 1, o, g, it->gin[0], beta_a);
    }
    if (it->gin[1]) grad_b(it);
}

FLOPS_FN(flops_matmul)
{
    const tensor *a = it->in[0];
    int k = cols_of(a, it->par->i[0]);
    return 2.0 * (double)it->out->shape[0] * (double)it->out->shape[1] * (double)k;
}
