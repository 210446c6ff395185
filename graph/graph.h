/* Internal: graph and node structures, shared by graph/, autodiff/ and cells/. */
#ifndef RC_GRAPH_H
#define RC_GRAPH_H

#include <stdarg.h>
#include "recur.h"
#include "op.h"

typedef enum node_kind { NK_INPUT, NK_PARAM, NK_CONST, NK_DECL, NK_OP } node_kind;

struct rc_node {
    rc_graph *g;
    int id;
    node_kind kind;
    int op;               /* op_id when kind == NK_OP */
    int nin;
    rc_node **in;         /* operands (NK_OP) */
    op_params par;
    tensor t;             /* shape; data owned here for params and constants */
    char *name;
    int requires_grad;    /* inputs: asked for by the user; params: always */
    rc_node *def;         /* NK_DECL: the defining node, once rc_define() ran */
    int init_kind;        /* NK_PARAM: rc_init_kind for rc_graph_init_params */
    float init_a;
    int external;         /* NK_PARAM: t.data is borrowed, not freed with the node */
    int pass;             /* the pass that made or rewrote the node (PASS_*), 0 none */
    int group;            /* the group of nodes that pass made together (> 0) */
    int tstep;            /* 1 + the unrolled time step whose construction made it; 0 none */
};

struct rc_graph {
    rc_node **nodes;
    int n, cap;
    rc_status status;
    int cur_step;         /* tstep given to new nodes (rc_unroll sets it per step) */
    rc_node **pmap;       /* parameters by name (the first of a name): open addressing,
                             linear probing, NULL empty */
    size_t pmap_cap;      /* slots, a power of two, at least twice nparams (0: none yet) */
    size_t nparams;       /* parameter nodes of the graph */
    char err[512];
};

/* Records the first error of the graph (later ones are dropped); returns NULL. */
rc_node *graph_fail(rc_graph *g, rc_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends a node (taking ownership of `in`); NULL and an error when memory is short. */
rc_node *graph_add(rc_graph *g, node_kind kind, rc_node **in, int nin);
/* Appends an op node after checking its shape rule (what every rc_<op> builder calls). */
rc_node *graph_op(rc_graph *g, int op, int nin, rc_node *const *in, const op_params *par);
/* Makes parameter n use borrowed storage `data` (same size) instead of its own. */
void graph_param_borrow(rc_node *n, float *data);
/* Follows forward declarations to the node that defines the value. */
rc_node *node_resolve(rc_node *n);
/* "node #12 'name' (op) [2,3]" for messages. */
void node_describe(const rc_node *n, char *buf, size_t len);
/* The descriptor name of a node's op or leaf kind. */
const char *node_op_name(const rc_node *n);


#endif
