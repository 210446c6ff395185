/* Tests of the pack-once small-M GEMM (ops/gemm_small.c) and of its use by plans
 * (graph/plan_pack.c).
 *
 * Suite `gemm_small`:
 *  - kernel_matches_loops: every kernel the CPU has (AVX-512, AVX2) against double
 *    loops, over row counts 1..17 and 32 (blocks of 8 / 3 and their tails), widths
 *    with partial panels, K from 1, both orientations of the packed matrix, leading
 *    dimensions wider than the matrix, overwrite and accumulate.
 *  - plan_uses_packs: an unrolled LSTM's plan packs its recurrent weights (forward and
 *    backward orientation) and the time-batched input projection is left to OpenBLAS;
 *    RC_PLAN_NO_PACKED_GEMM packs nothing; values and all gradients agree between the
 *    two within 1e-5 max|b| (per tensor), for each kernel.
 *  - repacks_after_weight_change: a forward after the weights change uses the new
 *    weights (a stale packing would not).
 *  - gradcheck_through_packs: finite differences agree with the packed reverse sweep. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"
#include "gemm_small.h"
#include "plan.h"

static float urand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

/* C = A @ op(B) (+ C0) by the kernel at `level` and by double loops. */
static void check_product(int level, int M, int K, int N, int tb, int acc, uint64_t seed)
{
    int lda = K + 3, ldb = (tb ? K : N) + 5, ldc = N + 2;
    int brows = tb ? N : K;
    float *A = malloc(sizeof(float) * (size_t)M * lda), *B = malloc(sizeof(float) * (size_t)brows * ldb);
    float *C = malloc(sizeof(float) * (size_t)M * ldc), *C0 = malloc(sizeof(float) * (size_t)M * ldc);
    gemm_pack pk = { .K = K, .N = N };
    pk.data = aligned_alloc(64, (gemm_pack_floats(K, N) + 16) * sizeof(float));
    cr_assert(A && B && C && C0 && pk.data);
    for (int i = 0; i < M * lda; i++) A[i] = urand(&seed);
    for (int i = 0; i < brows * ldb; i++) B[i] = urand(&seed);
    for (int i = 0; i < M * ldc; i++) C[i] = C0[i] = urand(&seed);
    gemm_pack_b(&pk, B, ldb, tb);
    gemm_packed(M, A, lda, &pk, C, ldc, acc);
    double worst = 0;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double s = acc ? C0[i * ldc + j] : 0.0;
            for (int k = 0; k < K; k++) s += (double)A[i * lda + k] * (tb ? B[j * ldb + k] : B[k * ldb + j]);
            double e = fabs(C[i * ldc + j] - s) / (1.0 + fabs(s));
            worst = e > worst ? e : worst;
        }
        for (int j = N; j < ldc; j++)   /* the padding columns of C are not touched */
            cr_expect_eq(C[i * ldc + j], C0[i * ldc + j], "level %d M%d K%d N%d: column %d written", level, M, K, N, j);
    }
    cr_expect_leq(worst, 1e-5, "level %d M=%d K=%d N=%d tb=%d acc=%d: error %g", level, M, K, N, tb, acc, worst);
    free(A); free(B); free(C); free(C0); free(pk.data);
}

Test(gemm_small, kernel_matches_loops)
{
    int levels = 0, cpu = gemm_small_isa();
    for (int level = 2; level >= 1; level--) {
        if (gemm_small_force_isa(level) != level) continue;
        levels++;
        const int Ms[] = { 1, 2, 3, 4, 7, 8, 9, 13, 17, 32 }, Ks[] = { 1, 5, 64, 129 }, Ns[] = { 1, 16, 31, 32, 33, 70 };
        for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
            for (size_t b = 0; b < sizeof Ks / sizeof *Ks; b++)
                for (size_t c = 0; c < sizeof Ns / sizeof *Ns; c++)
                    for (int tb = 0; tb <= 1; tb++)
                        for (int acc = 0; acc <= 1; acc++)
                            check_product(level, Ms[a], Ks[b], Ns[c], tb, acc, 1000 * a + 100 * b + 10 * c + 2 * tb + acc);
    }
    gemm_small_force_isa(cpu);
    if (levels == 0) cr_skip_test("this CPU has neither AVX-512 nor AVX2");
}

/* An LSTM over T steps of B sequences; loss = mean(out^2); the plan built with flags. */
typedef struct lstm_net { rc_graph *g; rc_plan *p; rc_node *x, *out, *loss; } lstm_net;

static void lstm_build(lstm_net *n, int T, int B, int I, int H, unsigned flags)
{
    n->g = rc_graph_new();
    n->x = rc_input(n->g, "x", RC_F32, 2, (int[]){ T * B, I });
    rc_requires_grad(n->x, 1);
    rc_cell *cell = rc_cell_lstm(H, NULL);
    rc_unroll_opts o = { .prefix = "l0." };
    cr_assert_eq(rc_unroll(n->g, cell, n->x, T, &o, &n->out, NULL), RC_OK, "%s", rc_graph_error(n->g));
    rc_cell_free(cell);
    n->loss = rc_mean(n->g, rc_mul(n->g, n->out, n->out));
    rc_graph_init_params(n->g, 5);
    rc_node *roots[2] = { n->loss, n->out };
    n->p = rc_plan_new_ex(n->g, 2, roots, flags);
    cr_assert_not_null(n->p, "%s", rc_graph_error(n->g));
}

static void lstm_run(lstm_net *n, int size, uint64_t seed)
{
    float *x = malloc((size_t)size * sizeof *x);
    cr_assert_not_null(x);
    for (int i = 0; i < size; i++) x[i] = urand(&seed);
    cr_assert_eq(rc_plan_feed(n->p, n->x, x, (size_t)size), RC_OK);
    free(x);
    cr_assert_eq(rc_plan_forward(n->p), RC_OK, "%s", rc_plan_error(n->p));
    cr_assert_eq(rc_plan_backward(n->p, n->loss), RC_OK, "%s", rc_plan_error(n->p));
}

/* max |a - b| / max |b|: scale-free, so small gradients are compared as strictly as large. */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double worst = 0, big = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        worst = e > worst ? e : worst;
        big = fabs((double)b[i]) > big ? fabs((double)b[i]) : big;
    }
    return worst / big;
}

Test(gemm_small, plan_uses_packs)
{
    enum { T = 7, B = 5, I = 9, H = 20 };   /* 4H = 80: two full panels and a partial one */
    int cpu = gemm_small_isa();
    if (cpu == 0) cr_skip_test("this CPU has neither AVX-512 nor AVX2");
    for (int level = cpu; level >= 1; level--) {
        gemm_small_force_isa(level);
        lstm_net a, b;
        lstm_build(&a, T, B, I, H, 0);
        lstm_build(&b, T, B, I, H, RC_PLAN_NO_PACKED_GEMM);
        /* the fused recurrent weight [4H, H], packed both ways; nothing else repeats */
        cr_expect_eq(a.p->npacks, 2, "level %d: %d packed weights", level, a.p->npacks);
        cr_expect_eq(b.p->npacks, 0);
        int packed = 0, big = 0;
        for (int k = 0; k < a.p->ntape; k++) {
            const op_inst *it = &a.p->tape[k];
            packed += it->pack[0] != NULL && it->pack[1] != NULL;
            big += it->op == OP_MATMUL && it->in[0]->shape[0] == T * B && it->pack[0] != NULL;
        }
        cr_expect_geq(packed, T - 1, "level %d: %d step products packed", level, packed);
        cr_expect_eq(big, 0, "the time-batched projection must stay with OpenBLAS");
        lstm_run(&a, T * B * I, 11);
        lstm_run(&b, T * B * I, 11);
        cr_expect_leq(rel_diff(rc_plan_value(a.p, a.out), rc_plan_value(b.p, b.out), T * B * H), 1e-5);
        cr_expect_leq(rel_diff(rc_plan_grad(a.p, a.x), rc_plan_grad(b.p, b.x), T * B * I), 1e-5);
        int np = 0;
        for (int i = 0; i < rc_graph_node_count(b.g); i++) {
            rc_node *pb = rc_graph_node(b.g, i);
            if (strcmp(rc_node_op(pb), "param") != 0) continue;
            rc_node *pa = rc_param_find(a.g, rc_node_name(pb));
            cr_assert_not_null(pa);
            double e = rel_diff(rc_plan_grad(a.p, pa), rc_plan_grad(b.p, pb), rc_node_size(pb));
            cr_expect_leq(e, 1e-5, "level %d: d/d %s differs by %g", level, rc_node_name(pb), e);
            np++;
        }
        cr_expect_gt(np, 0);
        rc_plan_free(a.p); rc_graph_free(a.g);
        rc_plan_free(b.p); rc_graph_free(b.g);
    }
    gemm_small_force_isa(cpu);
}

Test(gemm_small, repacks_after_weight_change)
{
    enum { T = 4, B = 3, I = 4, H = 8 };
    if (gemm_small_isa() == 0) cr_skip_test("this CPU has neither AVX-512 nor AVX2");
    lstm_net a, b;
    lstm_build(&a, T, B, I, H, 0);
    lstm_build(&b, T, B, I, H, RC_PLAN_NO_PACKED_GEMM);
    cr_assert_gt(a.p->npacks, 0);
    lstm_run(&a, T * B * I, 3);
    lstm_run(&b, T * B * I, 3);
    /* change every recurrent weight in both graphs, run again */
    for (int i = 0; i < rc_graph_node_count(a.g); i++) {
        rc_node *pa = rc_graph_node(a.g, i);
        if (strcmp(rc_node_op(pa), "param") != 0 || !strstr(rc_node_name(pa), "W_h")) continue;
        rc_node *pb = rc_param_find(b.g, rc_node_name(pa));
        for (size_t j = 0; j < rc_node_size(pa); j++) rc_param_data(pa)[j] = rc_param_data(pb)[j] *= -1.5f;
    }
    lstm_run(&a, T * B * I, 3);
    lstm_run(&b, T * B * I, 3);
    cr_expect_leq(rel_diff(rc_plan_value(a.p, a.out), rc_plan_value(b.p, b.out), T * B * H), 1e-5,
                  "outputs after a weight change: the packed plan used stale weights");
    cr_expect_leq(rel_diff(rc_plan_grad(a.p, a.x), rc_plan_grad(b.p, b.x), T * B * I), 1e-5);
    rc_plan_free(a.p); rc_graph_free(a.g);
    rc_plan_free(b.p); rc_graph_free(b.g);
}

Test(gemm_small, gradcheck_through_packs)
{
    enum { T = 5, B = 2, I = 3, H = 6 };
    if (gemm_small_isa() == 0) cr_skip_test("this CPU has neither AVX-512 nor AVX2");
    lstm_net a;
    lstm_build(&a, T, B, I, H, 0);
    cr_assert_gt(a.p->npacks, 0);
    float x[T * B * I];
    uint64_t s = 9;
    for (int i = 0; i < T * B * I; i++) x[i] = urand(&s);
    cr_assert_eq(rc_plan_feed(a.p, a.x, x, T * B * I), RC_OK);
    rc_node *wrt[64];
    int nw = 0;
    for (int i = 0; i < rc_graph_node_count(a.g) && nw < 63; i++) {
        rc_node *v = rc_graph_node(a.g, i);
        if (!strcmp(rc_node_op(v), "param")) wrt[nw++] = v;
    }
    wrt[nw++] = a.x;
    double err = 1;
    cr_assert_eq(rc_gradcheck(a.p, a.loss, nw, wrt, 1e-2, &err), RC_OK, "%s", rc_plan_error(a.p));
    cr_expect_leq(err, 5e-3, "gradient check through the packed kernel: error %g", err);
    rc_plan_free(a.p); rc_graph_free(a.g);
}

/* With two threads a per-step product's dA and dB run side by side (one thread each);
 * same gradients as one thread (to float tolerance) and bitwise the same on a rerun. */
Test(gemm_small, two_threads_overlap_backward)
{
    enum { T = 3, B = 32, I = 16, H = 128 };   /* 2*B*4H*H = 4.2 MFLOP per product: overlapped */
    if (gemm_small_isa() == 0) cr_skip_test("this CPU has neither AVX-512 nor AVX2");
    int before = rc_num_threads();
    float *g[3];
    size_t nw = 0;
    for (int run = 0; run < 3; run++) {
        rc_set_num_threads(run == 0 ? 1 : 2);
        lstm_net a;
        lstm_build(&a, T, B, I, H, 0);
        lstm_run(&a, T * B * I, 21);
        rc_node *w = NULL;
        for (int i = 0; i < rc_graph_node_count(a.g) && !w; i++) {
            rc_node *v = rc_graph_node(a.g, i);
            if (!strcmp(rc_node_op(v), "param") && strstr(rc_node_name(v), "W_hi")) w = v;
        }
        cr_assert_not_null(w);
        size_t nx = (size_t)T * B * I;
        nw = rc_node_size(w);
        g[run] = malloc((nx + nw) * sizeof(float));
        cr_assert_not_null(g[run]);
        memcpy(g[run], rc_plan_grad(a.p, a.x), nx * sizeof(float));
        memcpy(g[run] + nx, rc_plan_grad(a.p, w), nw * sizeof(float));
        rc_plan_free(a.p);
        rc_graph_free(a.g);
    }
    rc_set_num_threads(before);
    size_t n = (size_t)T * B * I + nw;
    cr_expect_leq(rel_diff(g[1], g[0], n), 1e-5, "two threads vs one");
    cr_expect_eq(memcmp(g[1], g[2], n * sizeof(float)), 0, "two-thread reruns differ");
    for (int r = 0; r < 3; r++) free(g[r]);
}
