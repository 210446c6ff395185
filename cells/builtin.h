/* Internal: helpers shared by the built-in cells (written only with public calls). */
#ifndef RC_BUILTIN_H
#define RC_BUILTIN_H

#include "recur.h"

/* W_x<gate> x + W_h<gate> h + b_<gate>: the pre-activation of a gate. */
rc_node *cell_gate(rc_step *s, const char *gate, rc_node *x, rc_node *h);
/* A cell whose options are a heap copy of `opts` (freed with the cell). */
rc_cell *cell_with_opts(const char *name, int hidden, rc_step_fn fn, const void *opts, size_t size);

#endif
