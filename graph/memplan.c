/* Buffer planning: offsets for buffers with known lifetimes, so that buffers whose
 * lifetimes do not overlap share memory. Greedy in order of birth, best fit among
 * the freed blocks (adjacent free blocks merged), growing the region only when no
 * freed block fits. */
#include <stdlib.h>
#include <string.h>
#include "memplan.h"

typedef struct blk { size_t off, size; } blk;

static int by_birth(const void *a, const void *b, void *ctx)
{
    const memplan_item *it = ctx;
    int x = *(const int *)a, y = *(const int *)b;
    if (it[x].birth != it[y].birth) return it[x].birth < it[y].birth ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* A plain insertion sort keeps this free of qsort_r, which C11 lacks; the lists
 * are a few thousand buffers long at most, sorted once per plan. */
static void sort_items(int *idx, int n, const memplan_item *it)
{
    for (int i = 1; i < n; i++) {
        int v = idx[i], j = i - 1;
        while (j >= 0 && by_birth(&idx[j], &v, (void *)it) > 0) {
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = v;
    }
}

/* Adds [off, off + size) to the free list, merging with neighbours. */
static void release(blk *fl, int *nf, size_t off, size_t size)
{
    int i = 0;
    while (i < *nf && fl[i].off < off) i++;
    memmove(fl + i + 1, fl + i, (size_t)(*nf - i) * sizeof *fl);
    fl[i] = (blk){ off, size };
    (*nf)++;
    if (i + 1 < *nf && fl[i].off + fl[i].size == fl[i + 1].off) {
        fl[i].size += fl[i + 1].size;
        memmove(fl + i + 1, fl + i + 2, (size_t)(*nf - i - 2) * sizeof *fl);
        (*nf)--;
    }
    if (i > 0 && fl[i - 1].off + fl[i - 1].size == fl[i].off) {
        fl[i - 1].size += fl[i].size;
        memmove(fl + i, fl + i + 1, (size_t)(*nf - i - 1) * sizeof *fl);
        (*nf)--;
    }
}

int memplan_assign(int n, memplan_item *items, size_t *total)
{
    *total = 0;
    if (n <= 0) return 0;
    int *idx = malloc((size_t)n * sizeof *idx), *active = malloc((size_t)n * sizeof *active);
    blk *fl = malloc((size_t)(n + 1) * sizeof *fl);
    if (!idx || !active || !fl) {
        free(idx); free(active); free(fl);
        return -1;
    }
    for (int i = 0; i < n; i++) idx[i] = i;
    sort_items(idx, n, items);
    int na = 0, nf = 0;
    size_t top = 0;
    for (int q = 0; q < n; q++) {
        memplan_item *it = &items[idx[q]];
        /* free what died before this birth */
        for (int a = 0; a < na;) {
            memplan_item *d = &items[active[a]];
            if (d->death < it->birth) {
                release(fl, &nf, d->offset, d->size);
                active[a] = active[--na];
            } else {
                a++;
            }
        }
        int best = -1;
        for (int f = 0; f < nf; f++)
            if (fl[f].size >= it->size && (best < 0 || fl[f].size < fl[best].size)) best = f;
        if (best < 0 && nf > 0 && fl[nf - 1].off + fl[nf - 1].size == top) {
            /* the last free block ends at the top: extend it */
            if (__builtin_add_overflow(fl[nf - 1].off, it->size, &top)) goto overflow;
            fl[nf - 1].size = it->size;
            best = nf - 1;
        }
        if (best >= 0) {
            it->offset = fl[best].off;
            fl[best].off += it->size;
            fl[best].size -= it->size;
            if (fl[best].size == 0) {
                memmove(fl + best, fl + best + 1, (size_t)(nf - best - 1) * sizeof *fl);
                nf--;
            }
        } else {
            it->offset = top;
            if (__builtin_add_overflow(top, it->size, &top)) goto overflow;
        }
        active[na++] = idx[q];
    }
    *total = top;
    free(idx); free(active); free(fl);
    return 0;
overflow:
    free(idx); free(active); free(fl);
    return -2;
}
