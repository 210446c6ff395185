/* Parameter initialisation: each parameter carries its init kind; one seeded
 * generator fills them in creation order, so a seed gives the same weights. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "graph.h"
#include "rng.h"
#include "runtime.h"

/* LAPACK from OpenBLAS (Debian ships no lapacke.h for it). */
extern void sgeqrf_(const int *m, const int *n, float *a, const int *lda, float *tau, float *work,
                    const int *lwork, int *info);
extern void sorgqr_(const int *m, const int *n, const int *k, float *a, const int *lda,
                    const float *tau, float *work, const int *lwork, int *info);

rc_status rc_param_set_init(rc_node *n, rc_init_kind kind, float a)
{
    if (!n || n->kind != NK_PARAM || kind < RC_INIT_DEFAULT || kind > RC_INIT_ORTHOGONAL) {
        if (n) graph_fail(n->g, RC_ERR_ARG, "rc_param_set_init: not a parameter or unknown init kind %d", (int)kind);
        return RC_ERR_ARG;
    }
    n->init_kind = kind;
    n->init_a = a;
    return RC_OK;
}

/* An orthogonal rows x cols matrix (rows >= cols: orthonormal columns; otherwise
 * orthonormal rows) from the QR factorisation of a Gaussian matrix. */
static rc_status orthogonal(rc_graph *g, rc_node *n, rng_t *r)
{
    int rows = n->t.shape[0], cols = (int)(n->t.size / (size_t)rows);
    int m = rows >= cols ? rows : cols, k = rows >= cols ? cols : rows, info = 0, lwork = -1;
    float *a = malloc((size_t)m * (size_t)k * sizeof *a), *tau = malloc((size_t)k * sizeof *tau), q;
    if (!a || !tau) {
        free(a); free(tau);
        graph_fail(g, RC_ERR_NOMEM, "out of memory initialising '%s'", n->name);
        return RC_ERR_NOMEM;
    }
    for (size_t i = 0; i < (size_t)m * (size_t)k; i++) a[i] = rng_normal(r);
    /* column-major m x k; Q's columns are orthonormal */
    sgeqrf_(&m, &k, a, &m, tau, &q, &lwork, &info);
    lwork = (int)q > k ? (int)q : k;
    float *work = malloc((size_t)lwork * sizeof *work);
    if (!work) {
        free(a); free(tau);
        graph_fail(g, RC_ERR_NOMEM, "out of memory initialising '%s'", n->name);
        return RC_ERR_NOMEM;
    }
    sgeqrf_(&m, &k, a, &m, tau, work, &lwork, &info);
    if (info == 0) sorgqr_(&m, &k, &k, a, &m, tau, work, &lwork, &info);
    float gain = n->init_a != 0 ? n->init_a : 1.0f, *d = n->t.data;
    /* Q (m x k, column-major) is Q^T row-major k x m; pick the layout that fits. */
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            d[(size_t)i * cols + j] = gain * (rows >= cols ? a[(size_t)j * m + i] : a[(size_t)i * m + j]);
    free(a); free(tau); free(work);
    if (info != 0) {
        graph_fail(g, RC_ERR_STATE, "orthogonal init of '%s': LAPACK info %d", n->name, info);
        return RC_ERR_STATE;
    }
    return RC_OK;
}

rc_status rc_graph_init_params(rc_graph *g, uint64_t seed)
{
    if (!g) return RC_ERR_ARG;
    runtime_apply_threads();   /* the orthogonal init's LAPACK call runs OpenBLAS threads */
    rng_t r;
    rng_seed(&r, seed);
    for (int i = 0; i < g->n; i++) {
        rc_node *n = g->nodes[i];
        if (n->kind != NK_PARAM) continue;
        float *d = n->t.data, a = n->init_a;
        size_t sz = n->t.size;
        int rows = n->t.shape[0], cols = (int)(sz / (size_t)rows), mat = n->t.ndim >= 2;
        switch (n->init_kind) {
        case RC_INIT_DEFAULT:
            if (!mat) { memset(d, 0, sz * sizeof *d); break; }
            a = 1.0f / sqrtf((float)rows);
            for (size_t k = 0; k < sz; k++) d[k] = rng_uniform(&r, -a, a);
            break;
        case RC_INIT_ZEROS: memset(d, 0, sz * sizeof *d); break;
        case RC_INIT_CONST: for (size_t k = 0; k < sz; k++) d[k] = a; break;
        case RC_INIT_UNIFORM: for (size_t k = 0; k < sz; k++) d[k] = rng_uniform(&r, -a, a); break;
        case RC_INIT_GLOROT:
            a = sqrtf(6.0f / (float)(rows + cols));
            for (size_t k = 0; k < sz; k++) d[k] = rng_uniform(&r, -a, a);
            break;
        case RC_INIT_ORTHOGONAL: {
            rc_status s = orthogonal(g, n, &r);
            if (s != RC_OK) return s;
            break;
        }
        }
    }
    return RC_OK;
}
