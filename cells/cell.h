/* Internal: cell definitions and the step context of an unroll. */
#ifndef RC_CELL_H
#define RC_CELL_H

#include "graph.h"

#define CELL_MAX_STATES 16
#define CELL_NAME 48

struct rc_cell {
    char name[CELL_NAME];
    int hidden;
    int nstates;
    char state_name[CELL_MAX_STATES][CELL_NAME];
    int state_size[CELL_MAX_STATES];
    rc_step_fn fn;
    void *user;
    void (*free_user)(void *);   /* built-in cells own their options */
    size_t user_size;            /* size of owned options, for cell_clone */
    char *source;                /* the text of a cell made by rc_cell_parse, or NULL */
};

struct rc_step {
    rc_graph *g;
    const rc_cell *cell;
    const char *prefix;
    int t, T, B, I;
    rc_node *x;
    rc_node *prev[CELL_MAX_STATES];
    rc_node *next[CELL_MAX_STATES];
    rc_node *out;
    rc_status status;
};

/* A copy of a cell; owned options are copied too. NULL when memory is short. */
rc_cell *cell_clone(const rc_cell *c);
/* Index of a state by name, or -1. */
int cell_state_index(const rc_cell *c, const char *name);

#endif
