#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "builtin.h"
#include "cell.h"

rc_node *cell_gate(rc_step *s, const char *gate, rc_node *x, rc_node *h)
{
    rc_graph *g = rc_step_graph(s);
    int H = rc_step_hidden(s);
    char wx[32], wh[32], b[32];
    snprintf(wx, sizeof wx, "W_x%s", gate);
    snprintf(wh, sizeof wh, "W_h%s", gate);
    snprintf(b, sizeof b, "b_%s", gate);
    return rc_add(g, rc_add(g, rc_step_linear(s, wx, x, H), rc_step_linear(s, wh, h, H)),
                  rc_step_bias(s, b, H));
}

rc_cell *cell_with_opts(const char *name, int hidden, rc_step_fn fn, const void *opts, size_t size)
{
    void *copy = malloc(size ? size : 1);
    if (!copy) return NULL;
    if (size) memcpy(copy, opts, size);
    rc_cell *c = rc_cell_new(name, hidden, fn, copy);
    if (!c) {
        free(copy);
        return NULL;
    }
    c->free_user = free;
    c->user_size = size;
    return c;
}
