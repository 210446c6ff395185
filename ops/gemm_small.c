/* The pack-once small-M GEMM (see gemm_small.h).
 *
 * Layout: panel p of a packed K x N matrix holds columns [32p, 32p + 32) as K rows of
 * 32 floats, so the kernel's inner loop reads one contiguous row of the panel per k
 * (two AVX-512 or four AVX2 vectors) and broadcasts one element of each of its rows
 * of A. The loop order is panel-outer: a panel (K x 128 bytes: 16 KB at K = 128) stays
 * in L1/L2 while every block of rows of A passes over it. Each element of C is
 * summed over k in one fixed order by one thread, so results do not depend on the
 * thread count. */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#include "gemm_small.h"
#include "op.h"

size_t gemm_pack_floats(int K, int N)
{
    size_t panels = ((size_t)N + GS_NR - 1) / GS_NR;
    return panels * (size_t)K * GS_NR;
}

void gemm_pack_b(gemm_pack *pk, const float *B, int ldb, int tb)
{
    int K = pk->K, N = pk->N;
    size_t panels = ((size_t)N + GS_NR - 1) / GS_NR;
    for (size_t p = 0; p < panels; p++) {
        float *dst = pk->data + p * (size_t)K * GS_NR;
        int j0 = (int)p * GS_NR, nc = N - j0 < GS_NR ? N - j0 : GS_NR;
        if (!tb) {   /* op(B) = B: rows of B are rows of the panel */
            for (int k = 0; k < K; k++) {
                memcpy(dst + (size_t)k * GS_NR, B + (size_t)k * ldb + j0, (size_t)nc * sizeof(float));
                if (nc < GS_NR) memset(dst + (size_t)k * GS_NR + nc, 0, (size_t)(GS_NR - nc) * sizeof(float));
            }
        } else {     /* op(B) = B^T: column j of the panel is row j0 + j of B */
            if (nc < GS_NR) memset(dst, 0, (size_t)K * GS_NR * sizeof(float));
            for (int j = 0; j < nc; j++) {
                const float *src = B + (size_t)(j0 + j) * ldb;
                for (int k = 0; k < K; k++) dst[(size_t)k * GS_NR + j] = src[k];
            }
        }
    }
}

/* ---- AVX-512: blocks of up to 8 rows x 32 columns (16 accumulators) ------------- */

#define TGT512 __attribute__((target("avx512f")))
#define TGT2 __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline))

INLINE TGT512 void k512(const int mr, int K, const float *A, int lda, const float *b, float *C, int ldc,
                        __mmask16 m0, __mmask16 m1, int acc)
{
    __m512 c0[8], c1[8];
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) c0[r] = c1[r] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 b0 = _mm512_load_ps(b + (size_t)k * GS_NR), b1 = _mm512_load_ps(b + (size_t)k * GS_NR + 16);
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            __m512 a = _mm512_set1_ps(A[(size_t)r * lda + k]);
            c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
        float *cr = C + (size_t)r * ldc;
        if (acc) {
            c0[r] = _mm512_add_ps(c0[r], _mm512_maskz_loadu_ps(m0, cr));
            c1[r] = _mm512_add_ps(c1[r], _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, c0[r]);
        _mm512_mask_storeu_ps(cr + 16, m1, c1[r]);
    }
}

TGT512 static void panels_avx512(int M, int K, const float *A, int lda, const gemm_pack *pk, float *C, int ldc,
                                 int acc, size_t p0, size_t p1)
{
    for (size_t p = p0; p < p1; p++) {
        const float *b = pk->data + p * (size_t)K * GS_NR;
        int j0 = (int)p * GS_NR, nc = pk->N - j0 < GS_NR ? pk->N - j0 : GS_NR;
        __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xffff : (1u << nc) - 1);
        __mmask16 m1 = (__mmask16)(nc >= 32 ? 0xffff : nc <= 16 ? 0 : (1u << (nc - 16)) - 1);
        for (int i = 0; i < M; i += 8) {
            const float *a = A + (size_t)i * lda;
            float *c = C + (size_t)i * ldc + j0;
            switch (M - i < 8 ? M - i : 8) {
            case 8: k512(8, K, a, lda, b, c, ldc, m0, m1, acc); break;
            case 7: k512(7, K, a, lda, b, c, ldc, m0, m1, acc); break;
            case 6: k512(6, K, a, lda, b, c, ldc, m0, m1, acc); break;
            case 5: k512(5, K, a, lda, b, c, ldc, m0, m1, acc); break;
            case 4: k512(4, K, a, lda, b, c, ldc, m0, m1, acc); break;
            case 3: k512(3, K, a, lda, b, c, ldc, m0, m1, acc); break;
            case 2: k512(2, K, a, lda, b, c, ldc, m0, m1, acc); break;
            default: k512(1, K, a, lda, b, c, ldc, m0, m1, acc); break;
            }
        }
    }
}

/* ---- AVX2: blocks of up to 3 rows x 32 columns (12 accumulators) ---------------- */

INLINE TGT2 void k256(const int mr, int K, const float *A, int lda, const float *b, float *C, int ldc, int nc,
                      int acc)
{
    __m256 c[3][4];
#pragma GCC unroll 3
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < 4; v++) c[r][v] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        const float *bk = b + (size_t)k * GS_NR;
        __m256 b0 = _mm256_load_ps(bk), b1 = _mm256_load_ps(bk + 8), b2 = _mm256_load_ps(bk + 16),
               b3 = _mm256_load_ps(bk + 24);
#pragma GCC unroll 3
        for (int r = 0; r < mr; r++) {
            __m256 a = _mm256_broadcast_ss(A + (size_t)r * lda + k);
            c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
            c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
            c[r][2] = _mm256_fmadd_ps(a, b2, c[r][2]);
            c[r][3] = _mm256_fmadd_ps(a, b3, c[r][3]);
        }
    }
#pragma GCC unroll 3
    for (int r = 0; r < mr; r++) {
        float *cr = C + (size_t)r * ldc;
        if (nc == GS_NR) {
            for (int v = 0; v < 4; v++) {
                __m256 x = c[r][v];
                if (acc) x = _mm256_add_ps(x, _mm256_loadu_ps(cr + 8 * v));
                _mm256_storeu_ps(cr + 8 * v, x);
            }
        } else {   /* the last, partial panel */
            float t[GS_NR];
            for (int v = 0; v < 4; v++) _mm256_storeu_ps(t + 8 * v, c[r][v]);
            for (int j = 0; j < nc; j++) cr[j] = acc ? cr[j] + t[j] : t[j];
        }
    }
}

TGT2 static void panels_avx2(int M, int K, const float *A, int lda, const gemm_pack *pk, float *C, int ldc, int acc,
                             size_t p0, size_t p1)
{
    for (size_t p = p0; p < p1; p++) {
        const float *b = pk->data + p * (size_t)K * GS_NR;
        int j0 = (int)p * GS_NR, nc = pk->N - j0 < GS_NR ? pk->N - j0 : GS_NR;
        for (int i = 0; i < M; i += 3) {
            const float *a = A + (size_t)i * lda;
            float *c = C + (size_t)i * ldc + j0;
            switch (M - i < 3 ? M - i : 3) {
            case 3: k256(3, K, a, lda, b, c, ldc, nc, acc); break;
            case 2: k256(2, K, a, lda, b, c, ldc, nc, acc); break;
            default: k256(1, K, a, lda, b, c, ldc, nc, acc); break;
            }
        }
    }
}

/* ---- dispatch ------------------------------------------------------------------- */

static int isa_of_cpu(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return 0;
}

static int isa = -1;

int gemm_small_isa(void)
{
    if (isa < 0) isa = isa_of_cpu();
    return isa;
}

int gemm_small_force_isa(int level)
{
    int cpu = isa_of_cpu();
    isa = level < 0 ? 0 : level > cpu ? cpu : level;
    return isa;
}

/* Products below this many FLOPs run on one thread (a region costs ~1-2 us). */
#define GS_PAR_FLOPS (1 << 20)

size_t gemm_pack_panels(const gemm_pack *pk) { return ((size_t)pk->N + GS_NR - 1) / GS_NR; }

void gemm_packed_panels(int M, const float *A, int lda, const gemm_pack *pk, float *C, int ldc, int accumulate,
                        size_t p0, size_t p1)
{
    if (gemm_small_isa() == 2) panels_avx512(M, pk->K, A, lda, pk, C, ldc, accumulate, p0, p1);
    else panels_avx2(M, pk->K, A, lda, pk, C, ldc, accumulate, p0, p1);
}

void gemm_packed(int M, const float *A, int lda, const gemm_pack *pk, float *C, int ldc, int accumulate)
{
    size_t panels = ((size_t)pk->N + GS_NR - 1) / GS_NR;
    int level = gemm_small_isa();
    void (*run)(int, int, const float *, int, const gemm_pack *, float *, int, int, size_t, size_t) =
        level == 2 ? panels_avx512 : panels_avx2;
    double flops = 2.0 * M * pk->N * pk->K;
    if (flops >= GS_PAR_FLOPS && panels > 1 && op_threads() > 1) {
#pragma omp parallel
        {
            size_t p0, p1;
            op_thread_range(panels, &p0, &p1);
            run(M, pk->K, A, lda, pk, C, ldc, accumulate, p0, p1);
        }
    } else {
        run(M, pk->K, A, lda, pk, C, ldc, accumulate, 0, panels);
    }
}
