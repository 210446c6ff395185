/* Library-wide settings: version, status names, the thread knob, the BLAS check. */
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "runtime.h"

const char *rc_version(void) { return RC_VERSION_STRING; }

const char *rc_status_name(rc_status s)
{
    switch (s) {
    case RC_OK: return "ok";
    case RC_ERR_ARG: return "bad argument";
    case RC_ERR_SHAPE: return "shape mismatch";
    case RC_ERR_GRAPH: return "malformed graph";
    case RC_ERR_NOMEM: return "out of memory";
    case RC_ERR_IO: return "i/o error";
    case RC_ERR_FORMAT: return "malformed input";
    case RC_ERR_STATE: return "invalid state";
    }
    return "unknown status";
}

const char *rc_blas_config(void)
{
    const char *c = openblas_get_config();
    return c ? c : "";
}

rc_status rc_blas_check(void)
{
    return strstr(rc_blas_config(), "USE_OPENMP") ? RC_OK : RC_ERR_STATE;
}

static int threads_now;

static int apply_threads(int n)
{
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    threads_now = n;
    return n;
}

int rc_set_num_threads(int n)
{
    runtime_init();   /* RC_NUM_THREADS is read first, so it cannot undo this call */
    return apply_threads(n);
}

int rc_num_threads(void)
{
    runtime_init();
    return threads_now;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_threads(void)
{
    const char *e = getenv("RC_NUM_THREADS");
    int n = e ? atoi(e) : 0;
    apply_threads(n);
}

void runtime_init(void)
{
    pthread_once(&once, init_threads);
}
