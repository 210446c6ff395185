/* The recur command's thread count: how many threads a run takes when not told. */
#ifndef RC_TOOLS_THREADS_H
#define RC_TOOLS_THREADS_H

#include <stddef.h>

/* Sets this process's thread count and returns it: `asked` when > 0; else
 * RC_NUM_THREADS when set (the library reads it); else, with `procs_here` > 1 processes
 * of the run on this machine (mpirun), the cores over them; else the cores free now
 * (rc_idle_cores over 0.1 s: threads beyond the free cores collapse under contention).
 * Writes why into `why` ("" when asked), for the run's log. */
int tool_set_threads(int asked, int procs_here, char *why, size_t len);

#endif
