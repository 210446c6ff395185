/* Internal: recur's own GEMM for the per-step recurrent product, C = A @ op(W) with
 * few rows (M = batch) and a weight that is the same at every time step. OpenBLAS
 * repacks W on every call (0.3.21 has no pack-once API); here W is packed once per
 * forward run into column panels and every step streams the panels from cache.
 * AVX-512 and AVX2 (+FMA) kernels, chosen at run time; without either, or when the
 * plan is built with RC_PLAN_NO_PACKED_GEMM, matmuls stay with OpenBLAS. */
#ifndef RC_GEMM_SMALL_H
#define RC_GEMM_SMALL_H

#include <stddef.h>
#include <stdint.h>

/* Columns per packed panel. */
#define GS_NR 32

/* A packed weight: op(B) as K x N, in ceil(N / GS_NR) panels of K rows of GS_NR
 * floats (the last panel zero-padded). Shared by every tape instance that multiplies
 * by the same weight in the same orientation; packed at most once per forward run. */
typedef struct gemm_pack {
    float *data;       /* 64-byte aligned, gemm_pack_floats(K, N) floats */
    int K, N;
    uint64_t stamp;    /* the run it was packed for (0: never) */
} gemm_pack;

/* Floats of a packed K x N matrix. */
size_t gemm_pack_floats(int K, int N);
/* Packs op(B) (K x N; B row-major with leading dimension ldb, transposed when tb)
 * into pk, which must have K and N set and room for gemm_pack_floats(K, N). */
void gemm_pack_b(gemm_pack *pk, const float *B, int ldb, int tb);
/* C[M x N] (ldc) = A[M x K] (lda) @ packed op(B), plus C when accumulate. May split
 * the panels across OpenMP threads when the product is big enough. */
void gemm_packed(int M, const float *A, int lda, const gemm_pack *pk, float *C, int ldc, int accumulate);

/* gemm_packed on column panels [p0, p1) only, on the calling thread. */
void gemm_packed_panels(int M, const float *A, int lda, const gemm_pack *pk, float *C, int ldc, int accumulate,
                        size_t p0, size_t p1);
/* Number of column panels of a packed matrix. */
size_t gemm_pack_panels(const gemm_pack *pk);

/* The kernel in use: 2 = AVX-512, 1 = AVX2, 0 = none (matmuls stay with OpenBLAS). */
int gemm_small_isa(void);
/* Overrides the kernel choice (tests); a level the CPU lacks is lowered to one it has.
 * Returns the level now in use. */
int gemm_small_force_isa(int level);

#endif
