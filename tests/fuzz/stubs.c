/* What the file-loader fuzz harnesses link in place of OpenBLAS and OpenMP (they are
 * built without both; no plan runs, so no BLAS kernel may be called). */
#include <stdio.h>
#include <stdlib.h>

static void stub_called(const char *name)
{
    fprintf(stderr, "fuzz: %s called: no plan or orthogonal initialisation should run\n", name);
    abort();
}

void cblas_sgemm(void);
void cblas_sgemm(void) { stub_called("cblas_sgemm"); }
void cblas_sgemv(void);
void cblas_sgemv(void) { stub_called("cblas_sgemv"); }
void sgeqrf_(void);
void sgeqrf_(void) { stub_called("sgeqrf_"); }
void sorgqr_(void);
void sorgqr_(void) { stub_called("sorgqr_"); }
char *openblas_get_config(void);
char *openblas_get_config(void) { return "fuzz stub USE_OPENMP"; }
void openblas_set_num_threads(int n);
void openblas_set_num_threads(int n) { (void)n; }
int omp_get_num_procs(void);
int omp_get_num_procs(void) { return 1; }
void omp_set_num_threads(int n);
void omp_set_num_threads(int n) { (void)n; }
int omp_get_thread_limit(void);
int omp_get_thread_limit(void) { return 1; }
