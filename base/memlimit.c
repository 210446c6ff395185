/* The most memory this process can hold: see memlimit.h. */
#include "memlimit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static void lower(size_t *lim, unsigned long long v)
{
    if (v > 0 && v < *lim) *lim = (size_t)v;
}

/* cgroup v2's limit of this process's group ("max" or a byte count). */
static unsigned long long cgroup_max(void)
{
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");
    if (!f) return 0;
    char buf[64] = "";
    unsigned long long v = 0;
    if (fgets(buf, sizeof buf, f)) {
        char *end;
        v = strtoull(buf, &end, 10);
        if (end == buf) v = 0;   /* "max": no limit */
    }
    fclose(f);
    return v;
}

size_t mem_limit_bytes(void)
{
    size_t lim = SIZE_MAX;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0 && (unsigned long long)pages <= SIZE_MAX / (unsigned long long)page)
        lower(&lim, (unsigned long long)pages * (unsigned long long)page);
    struct rlimit r;
    if (getrlimit(RLIMIT_AS, &r) == 0 && r.rlim_cur != RLIM_INFINITY) lower(&lim, (unsigned long long)r.rlim_cur);
    if (getrlimit(RLIMIT_DATA, &r) == 0 && r.rlim_cur != RLIM_INFINITY) lower(&lim, (unsigned long long)r.rlim_cur);
    lower(&lim, cgroup_max());
    return lim;
}
