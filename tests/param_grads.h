/* Test helper: every parameter gradient of plan pa (graph ga) equals, bit for bit, that
 * of the same-named parameter of plan pb (graph gb); at least one is compared. */
#ifndef TEST_PARAM_GRADS_H
#define TEST_PARAM_GRADS_H

#include <criterion/criterion.h>
#include <string.h>
#include "recur.h"

static inline void expect_param_grads_bitwise(rc_graph *ga, const rc_plan *pa, rc_graph *gb, const rc_plan *pb,
                                              const char *what)
{
    int np = 0;
    for (int i = 0; i < rc_graph_node_count(ga); i++) {
        rc_node *va = rc_graph_node(ga, i);
        if (strcmp(rc_node_op(va), "param") != 0) continue;
        rc_node *vb = rc_param_find(gb, rc_node_name(va));
        cr_assert_not_null(vb, "%s: parameter %s missing", what, rc_node_name(va));
        cr_expect_eq(memcmp(rc_plan_grad(pa, va), rc_plan_grad(pb, vb), rc_node_size(va) * sizeof(float)), 0,
                     "%s: d/d %s differs", what, rc_node_name(va));
        np++;
    }
    cr_expect_gt(np, 0, "%s: no parameters compared", what);
}

#endif
