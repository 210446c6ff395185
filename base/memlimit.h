/* Internal: the most memory this process can hold, the bound that file loaders check
 * sizes read from a file against before they allocate (an image header claiming
 * 10^6 x 10^6 pixels is refused with a message, not attempted). */
#ifndef RC_MEMLIMIT_H
#define RC_MEMLIMIT_H

#include <stddef.h>

/* The smallest of: the machine's physical memory, the process's RLIMIT_AS and
 * RLIMIT_DATA when set, and its cgroup's memory.max when one is readable; SIZE_MAX
 * when none of them is known. */
size_t mem_limit_bytes(void);

#endif
