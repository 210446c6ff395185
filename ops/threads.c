/* Thread helpers of the op kernels: loops only open an OpenMP region when it will
 * have more than one thread (an idle region still costs a team set-up). Without
 * OpenMP (the fuzz build) everything is one thread. */
#ifdef _OPENMP
#include <omp.h>
#endif
#include "op.h"
#include "runtime.h"

int op_threads(void)
{
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
    runtime_apply_threads();   /* the process-wide count, whichever thread runs the plan */
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int op_team_size(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

int op_team_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

void op_thread_range(size_t n, size_t *t0, size_t *t1)
{
    size_t nt = (size_t)op_team_size(), id = (size_t)op_team_id();
    size_t q = n / nt, r = n % nt;
    *t0 = id * q + (id < r ? id : r);
    *t1 = *t0 + q + (id < r);
}
