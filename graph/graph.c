/* Graph lifecycle, error slot, leaves (inputs, parameters, constants, declarations). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "graph.h"
#include "fused.h"

rc_node *graph_fail(rc_graph *g, rc_status s, const char *fmt, ...)
{
    if (!g || g->status != RC_OK) return NULL;
    g->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->err, sizeof g->err, fmt, ap);
    va_end(ap);
    return NULL;
}

rc_graph *rc_graph_new(void)
{
    return calloc(1, sizeof(rc_graph));
}

static void node_free(rc_node *n)
{
    if (!n) return;
    free(n->in);
    free(n->name);
    if (n->kind == NK_OP && n->op == OP_FUSED) fused_prog_free(n->par.fused);   /* the fusion pass's program */
    if ((n->kind == NK_PARAM && !n->external) || n->kind == NK_CONST) free(n->t.data);
    free(n);
}

void rc_graph_free(rc_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n; i++) node_free(g->nodes[i]);
    free(g->nodes);
    free(g->pmap);
    free(g);
}

rc_status rc_graph_status(const rc_graph *g) { return g ? g->status : RC_ERR_ARG; }
const char *rc_graph_error(const rc_graph *g) { return g ? g->err : "no graph (NULL)"; }
void rc_graph_clear_error(rc_graph *g)
{
    if (!g) return;
    g->status = RC_OK;
    g->err[0] = 0;
}
int rc_graph_node_count(const rc_graph *g) { return g ? g->n : 0; }
rc_node *rc_graph_node(const rc_graph *g, int i)
{
    return (g && i >= 0 && i < g->n) ? g->nodes[i] : NULL;
}

rc_node *graph_add(rc_graph *g, node_kind kind, rc_node **in, int nin)
{
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 64;
        rc_node **nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn) { free(in); return graph_fail(g, RC_ERR_NOMEM, "out of memory adding a node"); }
        g->nodes = nn;
        g->cap = cap;
    }
    rc_node *n = calloc(1, sizeof *n);
    if (!n) { free(in); return graph_fail(g, RC_ERR_NOMEM, "out of memory adding a node"); }
    n->g = g;
    n->id = g->n;
    n->kind = kind;
    n->in = in;
    n->nin = nin;
    n->t.dt = RC_F32;
    n->tstep = g->cur_step;
    g->nodes[g->n++] = n;
    return n;
}

rc_node *node_resolve(rc_node *n)
{
    int hops = 0;
    while (n && n->kind == NK_DECL && n->def && hops++ < 1000000) n = n->def;
    return n;
}

const char *node_op_name(const rc_node *n)
{
    switch (n->kind) {
    case NK_INPUT: return "input";
    case NK_PARAM: return "param";
    case NK_CONST: return "const";
    case NK_DECL: return "decl";
    case NK_OP: return op_table[n->op].name;
    }
    return "?";
}

void node_describe(const rc_node *n, char *buf, size_t len)
{
    char sh[64];
    tensor_shape_str(&n->t, sh, sizeof sh);
    if (n->name && n->name[0])
        msgf(buf, len, "node #%d '%s' (%s) %s", n->id, n->name, node_op_name(n), sh);
    else
        msgf(buf, len, "node #%d (%s) %s", n->id, node_op_name(n), sh);
}

/* ---- parameters by name: a hash map that doubles as it fills --------------------- */

static size_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29));
}

/* The slot holding the parameter called name, or the empty slot where it would go. */
static size_t pmap_slot(rc_node *const *map, size_t cap, const char *name)
{
    size_t i = name_hash(name) & (cap - 1);
    while (map[i] && strcmp(map[i]->name, name) != 0) i = (i + 1) & (cap - 1);
    return i;
}

/* Puts parameter n in the map unless a parameter of its name is there. */
static void pmap_put(rc_graph *g, rc_node *n)
{
    size_t i = pmap_slot(g->pmap, g->pmap_cap, n->name);
    if (!g->pmap[i]) g->pmap[i] = n;
}

/* Refills the map's slots from the nodes, in id order, so that the first parameter
 * of a name wins, as a scan would find it. */
static void pmap_rebuild_in_place(rc_graph *g)
{
    memset(g->pmap, 0, g->pmap_cap * sizeof *g->pmap);
    for (int i = 0; i < g->n; i++) {
        rc_node *v = g->nodes[i];
        if (v->kind == NK_PARAM && v->name) pmap_put(g, v);
    }
}

/* Room for one more parameter, keeping the map at most half full whatever the
 * names (so a probe always meets an empty slot): doubles the slots and moves the
 * entries over; 0, or -1 out of memory (the old map stays). */
static int pmap_reserve(rc_graph *g)
{
    if (2 * (g->nparams + 1) <= g->pmap_cap) return 0;
    size_t cap = g->pmap_cap ? 2 * g->pmap_cap : 16;
    rc_node **map = calloc(cap, sizeof *map);
    if (!map) return -1;
    for (size_t i = 0; i < g->pmap_cap; i++)
        if (g->pmap[i]) map[pmap_slot(map, cap, g->pmap[i]->name)] = g->pmap[i];
    free(g->pmap);
    g->pmap = map;
    g->pmap_cap = cap;
    return 0;
}

static rc_node *pmap_get(const rc_graph *g, const char *name)
{
    if (!g->pmap_cap) return NULL;
    return g->pmap[pmap_slot(g->pmap, g->pmap_cap, name)];
}

static char *dupstr(const char *s)
{
    if (!s) s = "";
    size_t k = strlen(s) + 1;
    char *d = malloc(k);
    if (d) memcpy(d, s, k);
    return d;
}

rc_status rc_node_set_name(rc_node *n, const char *name)
{
    if (!n) return RC_ERR_ARG;
    char *d = dupstr(name);
    if (!d) return RC_ERR_NOMEM;
    free(n->name);
    n->name = d;
    /* a renamed parameter moves in the map (its slots suffice for every parameter) */
    if (n->kind == NK_PARAM && n->g->pmap_cap) pmap_rebuild_in_place(n->g);
    return RC_OK;
}

static rc_node *leaf(rc_graph *g, node_kind kind, const char *what, const char *name,
                     rc_dtype dt, int ndim, const int *shape)
{
    if (!g || g->status != RC_OK) return NULL;
    if (dt != RC_F32 && dt != RC_I32)
        return graph_fail(g, RC_ERR_ARG, "%s '%s': unknown dtype %d", what, name ? name : "", (int)dt);
    tensor t = { .dt = dt };
    int rc = tensor_set_shape(&t, ndim, shape);
    if (rc != 0) {
        if (ndim < 1 || ndim > RC_MAX_DIMS || !shape)
            return graph_fail(g, RC_ERR_SHAPE, "%s '%s': rank %d is outside 1..%d", what,
                              name ? name : "", ndim, RC_MAX_DIMS);
        char sh[16 * RC_MAX_DIMS];
        tensor_dims_str(ndim, shape, sh, sizeof sh);
        if (rc == -2)
            return graph_fail(g, RC_ERR_SHAPE, "%s '%s': shape %s has more than %zu elements (its size overflows)",
                              what, name ? name : "", sh, (size_t)TENSOR_MAX_SIZE);
        return graph_fail(g, RC_ERR_SHAPE, "%s '%s': shape %s: every dimension must be >= 1", what,
                          name ? name : "", sh);
    }
    rc_node *n = graph_add(g, kind, NULL, 0);
    if (!n) return NULL;
    n->t = t;
    if (name && !(n->name = dupstr(name)))
        return graph_fail(g, RC_ERR_NOMEM, "out of memory naming %s '%s'", what, name);
    return n;
}

rc_node *rc_input(rc_graph *g, const char *name, rc_dtype dt, int ndim, const int *shape)
{
    return leaf(g, NK_INPUT, "input", name, dt, ndim, shape);
}

rc_node *rc_param_find(const rc_graph *g, const char *name)
{
    if (!g || !name) return NULL;
    return pmap_get(g, name);
}

static rc_node *with_storage(rc_graph *g, rc_node *n, const char *what)
{
    if (!n) return NULL;
    n->t.data = calloc(n->t.size, sizeof(float));
    if (!n->t.data)
        return graph_fail(g, RC_ERR_NOMEM, "out of memory for %s of %zu floats", what, n->t.size);
    return n;
}

rc_node *rc_param(rc_graph *g, const char *name, int ndim, const int *shape)
{
    if (!g || g->status != RC_OK) return NULL;
    if (!name || !name[0]) return graph_fail(g, RC_ERR_ARG, "a parameter needs a non-empty name");
    rc_node *old = rc_param_find(g, name);
    if (old) {
        tensor t = { .dt = RC_F32 };
        if (tensor_set_shape(&t, ndim, shape) != 0 || !tensor_same_shape(&t, &old->t)) {
            char a[64], b[64];
            tensor_shape_str(&old->t, a, sizeof a);
            if (ndim >= 1 && ndim <= RC_MAX_DIMS && shape) tensor_dims_str(ndim, shape, b, sizeof b);
            else snprintf(b, sizeof b, "(rank %d)", ndim);
            return graph_fail(g, RC_ERR_SHAPE,
                              "parameter '%s' already exists with shape %s; asked again with shape %s",
                              name, a, b);
        }
        return old;
    }
    if (pmap_reserve(g) != 0) return graph_fail(g, RC_ERR_NOMEM, "out of memory adding parameter '%s'", name);
    rc_node *n = leaf(g, NK_PARAM, "parameter", name, RC_F32, ndim, shape);
    if (!n) return NULL;
    n->requires_grad = 1;
    g->nparams++;
    pmap_put(g, n);
    return with_storage(g, n, "parameter");
}

rc_node *rc_const(rc_graph *g, int ndim, const int *shape, const float *data)
{
    rc_node *n = with_storage(g, leaf(g, NK_CONST, "constant", NULL, RC_F32, ndim, shape), "constant");
    if (n && data) memcpy(n->t.data, data, n->t.size * sizeof(float));
    return n;
}

rc_node *rc_fill(rc_graph *g, int ndim, const int *shape, float value)
{
    rc_node *n = rc_const(g, ndim, shape, NULL);
    if (n) {
        float *d = n->t.data;
        for (size_t i = 0; i < n->t.size; i++) d[i] = value;
    }
    return n;
}

rc_node *rc_forward_decl(rc_graph *g, const char *name, int ndim, const int *shape)
{
    return leaf(g, NK_DECL, "declaration", name, RC_F32, ndim, shape);
}

rc_status rc_define(rc_graph *g, rc_node *decl, rc_node *value)
{
    if (!g) return RC_ERR_ARG;
    if (g->status != RC_OK) return g->status;
    if (!decl || !value) {
        graph_fail(g, RC_ERR_ARG, "rc_define: NULL %s", decl ? "value" : "declaration");
        return RC_ERR_ARG;
    }
    char a[128], b[128];
    node_describe(decl, a, sizeof a);
    node_describe(value, b, sizeof b);
    if (decl->g != g || value->g != g) {
        graph_fail(g, RC_ERR_GRAPH, "rc_define: %s or %s belongs to another graph", a, b);
        return RC_ERR_GRAPH;
    }
    if (decl->kind != NK_DECL) {
        graph_fail(g, RC_ERR_ARG, "rc_define: %s is not a forward declaration", a);
        return RC_ERR_ARG;
    }
    if (decl->def) {
        graph_fail(g, RC_ERR_ARG, "rc_define: %s is already defined", a);
        return RC_ERR_ARG;
    }
    if (!tensor_same_shape(&decl->t, &value->t) || decl->t.dt != value->t.dt) {
        graph_fail(g, RC_ERR_SHAPE, "rc_define: %s cannot be defined as %s: shapes or dtypes differ", a, b);
        return RC_ERR_SHAPE;
    }
    decl->def = value;
    return RC_OK;
}

rc_status rc_requires_grad(rc_node *n, int on)
{
    if (!n) return RC_ERR_ARG;
    if (n->kind == NK_PARAM) return RC_OK;
    if (n->kind != NK_INPUT || n->t.dt != RC_F32) {
        char d[128];
        node_describe(n, d, sizeof d);
        graph_fail(n->g, RC_ERR_ARG, "rc_requires_grad: %s is not a float input", d);
        return RC_ERR_ARG;
    }
    n->requires_grad = on != 0;
    return RC_OK;
}

int rc_node_ndim(const rc_node *n) { return n ? n->t.ndim : 0; }
int rc_node_dim(const rc_node *n, int d)
{
    return (n && d >= 0 && d < n->t.ndim) ? n->t.shape[d] : 0;
}
size_t rc_node_size(const rc_node *n) { return n ? n->t.size : 0; }
rc_dtype rc_node_dtype(const rc_node *n) { return n ? n->t.dt : RC_F32; }
const char *rc_node_name(const rc_node *n) { return (n && n->name) ? n->name : ""; }
const char *rc_node_op(const rc_node *n) { return n ? node_op_name(n) : ""; }
int rc_node_id(const rc_node *n) { return n ? n->id : -1; }
float *rc_param_data(rc_node *n)
{
    return (n && (n->kind == NK_PARAM || n->kind == NK_CONST)) ? n->t.data : NULL;
}

void graph_param_borrow(rc_node *n, float *data)
{
    if (!n->external) free(n->t.data);
    n->t.data = data;
    n->external = 1;
}
