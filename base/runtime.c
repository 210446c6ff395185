/* Library-wide settings: version, status names, the thread knob, the BLAS check. */
#include <omp.h>
#include <pthread.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
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

/* The thread count is process-wide: OpenMP's omp_set_num_threads() only sets the
 * calling thread's count (an ICV per thread), so the count lives here with a
 * generation that every change bumps, and each thread that enters the library
 * (runtime_apply_threads) applies it to itself when its own generation is stale. */
static _Atomic int threads_now;
static _Atomic unsigned threads_gen;
static _Thread_local unsigned threads_applied;   /* 0: never applied on this thread */

int rc_max_threads(void)
{
    /* More threads than cores only wait for one, and each costs a stack and (up to
     * OpenBLAS's MAX_THREADS) a BLAS buffer: thousands hang in OpenBLAS's buffer
     * allocation under a memory limit. A few per core still allows oversubscription. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN), n, limit = omp_get_thread_limit();
    if (cores < 1) cores = omp_get_num_procs();
    n = RC_THREADS_PER_CORE * (cores < 1 ? 1 : cores);
    if (limit > 0 && limit < n) n = limit;
    return n < INT_MAX ? (int)n : INT_MAX;
}

static int set_threads(int n)
{
    if (n <= 0) n = omp_get_num_procs();
    if (n > rc_max_threads()) n = rc_max_threads();
    atomic_store(&threads_now, n);
    atomic_fetch_add(&threads_gen, 1u);
    /* OpenBLAS's own count (its OpenMP build also follows the calling thread's
     * OpenMP count at each call) */
    openblas_set_num_threads(n);
    return n;
}

/* The machine's busy and total CPU time so far (the first line of /proc/stat, in
 * ticks); -1 when it cannot be read. */
static int cpu_ticks(unsigned long long *busy, unsigned long long *total)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    unsigned long long v[8] = { 0 };
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                   &v[7]);
    fclose(f);
    if (n < 4) return -1;
    /* user nice system idle iowait irq softirq steal: idle and iowait are free time */
    *busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    *total = *busy + v[3] + v[4];
    return 0;
}

int rc_idle_cores(double seconds)
{
    int allowed = omp_get_num_procs();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (allowed < 1) allowed = 1;
    if (online < allowed) online = allowed;
    if (!(seconds >= 0.01)) seconds = 0.01;   /* NaN too */
    if (seconds > 5) seconds = 5;
    unsigned long long b0, t0, b1, t1;
    if (cpu_ticks(&b0, &t0) != 0) return allowed;
    struct timespec nap = { (time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9) };
    while (nanosleep(&nap, &nap) != 0 && errno == EINTR) {}
    if (cpu_ticks(&b1, &t1) != 0 || t1 <= t0 || b1 < b0) return allowed;
    /* the busy share of all online cores, in cores; this process slept meanwhile */
    double busy = (double)(b1 - b0) / (double)(t1 - t0) * (double)online;
    long idle = online - (long)(busy + 0.5);
    if (idle > allowed) idle = allowed;
    return idle < 1 ? 1 : (int)idle;
}

static void apply_now(void)
{
    unsigned gen = atomic_load(&threads_gen);
    if (gen == threads_applied) return;
    omp_set_num_threads(atomic_load(&threads_now));
    threads_applied = gen;
}

int rc_set_num_threads(int n)
{
    runtime_init();   /* RC_NUM_THREADS is read first, so it cannot undo this call */
    n = set_threads(n);
    apply_now();
    return n;
}

int rc_num_threads(void)
{
    runtime_init();
    return atomic_load(&threads_now);
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_threads(void)
{
    const char *e = getenv("RC_NUM_THREADS");
    char *end = NULL;
    errno = 0;
    long n = e ? strtol(e, &end, 10) : 0;
    if (!e || !*e || *end || errno || n < 0) n = 0;   /* not a count: all cores, as unset */
    set_threads(n > rc_max_threads() ? rc_max_threads() : (int)n);
}

void runtime_init(void)
{
    pthread_once(&once, init_threads);
}

void runtime_apply_threads(void)
{
    runtime_init();
    apply_now();
}
