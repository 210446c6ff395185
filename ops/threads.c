/* Thread helpers of the op kernels: loops only open an OpenMP region when it will
 * have more than one thread (an idle region still costs a team set-up). */
#include <omp.h>
#include "op.h"

int op_threads(void) { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

void op_thread_range(size_t n, size_t *t0, size_t *t1)
{
    size_t nt = (size_t)omp_get_num_threads(), id = (size_t)omp_get_thread_num();
    size_t q = n / nt, r = n % nt;
    *t0 = id * q + (id < r ? id : r);
    *t1 = *t0 + q + (id < r);
}
