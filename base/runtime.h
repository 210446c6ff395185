/* Process-wide run-time settings shared by every layer (internal). */
#ifndef RC_RUNTIME_H
#define RC_RUNTIME_H
#include "recur.h"

/* Reads RC_NUM_THREADS once and applies the thread count. */
void runtime_init(void);
/* Makes the calling thread use the process-wide thread count (rc_set_num_threads,
 * RC_NUM_THREADS) for its OpenMP regions and BLAS calls; cheap when it already does.
 * Called where plans start running and by op_threads(). */
void runtime_apply_threads(void);

#endif
