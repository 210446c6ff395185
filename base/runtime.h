/* Process-wide run-time settings shared by every layer (internal). */
#ifndef RC_RUNTIME_H
#define RC_RUNTIME_H
#include "recur.h"

/* Reads RC_NUM_THREADS once and applies the thread count. */
void runtime_init(void);

#endif
