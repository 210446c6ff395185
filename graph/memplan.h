/* Internal: buffer planning (graph/memplan.c), used by plan_build for the gradient
 * buffers of training plans and the values of inference plans. */
#ifndef RC_MEMPLAN_H
#define RC_MEMPLAN_H

#include <stddef.h>

/* A buffer alive from step birth to step death, both included. */
typedef struct memplan_item {
    size_t size;     /* bytes, a multiple of the alignment wanted */
    int birth, death;
    size_t offset;   /* out: from the start of the planned region */
} memplan_item;

/* Gives every item an offset such that items alive at the same step do not overlap;
 * writes the region's size to *total. Returns 0, -1 out of memory, or -2 when the
 * region's size overflows a size_t. */
int memplan_assign(int n, memplan_item *items, size_t *total);

#endif
