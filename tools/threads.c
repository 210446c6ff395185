/* The recur command's thread count (threads.h). The library's own default stays all
 * cores; the command looks at the machine first, because a shared workstation or CI
 * runner is the normal case: on 2 cores with one other busy process, 2 threads made
 * the demo's updates 3x slower and 1 thread 1.5x (bench/contention.sh, bench/README.md). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "recur.h"
#include "threads.h"

int tool_set_threads(int asked, int procs_here, char *why, size_t len)
{
    if (len) why[0] = '\0';
    if (asked > 0) return rc_set_num_threads(asked);
    const char *env = getenv("RC_NUM_THREADS");
    if (env && env[0]) {
        snprintf(why, len, "RC_NUM_THREADS");
        return rc_num_threads();
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int allowed = omp_get_num_procs();
    if (online < 1) online = allowed;
    if (procs_here > 1) {
        int n = (int)(online / procs_here);
        if (n > allowed) n = allowed;
        snprintf(why, len, "%ld cores over %d processes", online, procs_here);
        return rc_set_num_threads(n < 1 ? 1 : n);
    }
    int idle = rc_idle_cores(0.1);
    if (idle < allowed)
        snprintf(why, len, "%d of %d cores free at start, other processes busy; --threads sets it", idle, allowed);
    else
        snprintf(why, len, "all %d cores free at start; --threads sets it", allowed);
    return rc_set_num_threads(idle);
}
