/* Suite `sizes`: buffer planning refuses a region whose size overflows a size_t
 * instead of wrapping it (graph/memplan.c); the plan-level checks are in
 * test_graph.c (the graph tests named *overflow). */
#include <criterion/criterion.h>
#include <stdint.h>

#include "memplan.h"

Test(sizes, memplan_region_overflow)
{
    /* three buffers of 2^62 + 2^61 bytes alive together: 9 * 2^61 > 2^64 */
    size_t big = ((size_t)1 << 62) + ((size_t)1 << 61);
    memplan_item it[3] = { { big, 0, 2, 0 }, { big, 1, 2, 0 }, { big, 2, 2, 0 } };
    size_t total = 12345;
    cr_expect_eq(memplan_assign(3, it, &total), -2, "region of %zu bytes", total);
    /* one of them fits */
    cr_expect_eq(memplan_assign(1, it, &total), 0);
    cr_expect_eq(total, big);
    /* extending the free block at the top overflows too: [0, 2^63) stays, [2^63,
     * 2^63 + 2^62) dies, then 2^63 + 2^62 bytes are asked for */
    memplan_item ext[3] = { { (size_t)1 << 63, 0, 3, 0 }, { (size_t)1 << 62, 0, 0, 0 },
                            { ((size_t)1 << 63) + ((size_t)1 << 62), 1, 3, 0 } };
    cr_expect_eq(memplan_assign(3, ext, &total), -2, "region of %zu bytes", total);
}
