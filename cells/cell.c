/* Cell definitions and the step context: what a step function sees. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cell.h"

rc_cell *rc_cell_new(const char *name, int hidden, rc_step_fn fn, void *user)
{
    if (hidden < 1 || !fn) return NULL;
    rc_cell *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    snprintf(c->name, sizeof c->name, "%s", name ? name : "cell");
    c->hidden = hidden;
    c->fn = fn;
    c->user = user;
    return c;
}

int cell_state_index(const rc_cell *c, const char *name)
{
    for (int i = 0; name && i < c->nstates; i++)
        if (strcmp(c->state_name[i], name) == 0) return i;
    return -1;
}

rc_status rc_cell_add_state(rc_cell *c, const char *name, int size)
{
    if (!c || !name || !name[0] || strlen(name) >= CELL_NAME || size < 1 ||
        c->nstates == CELL_MAX_STATES || cell_state_index(c, name) >= 0)
        return RC_ERR_ARG;
    snprintf(c->state_name[c->nstates], CELL_NAME, "%s", name);
    c->state_size[c->nstates++] = size;
    return RC_OK;
}

rc_cell *cell_clone(const rc_cell *c)
{
    rc_cell *d = malloc(sizeof *d);
    if (!d) return NULL;
    *d = *c;
    if (c->free_user) {
        d->user = malloc(c->user_size ? c->user_size : 1);
        if (!d->user) {
            free(d);
            return NULL;
        }
        memcpy(d->user, c->user, c->user_size);
        d->free_user = free;
    }
    if (c->source) {
        size_t n = strlen(c->source) + 1;
        if (!(d->source = malloc(n))) {
            rc_cell_free(d);
            return NULL;
        }
        memcpy(d->source, c->source, n);
    }
    return d;
}

void rc_cell_free(rc_cell *c)
{
    if (!c) return;
    if (c->free_user) c->free_user(c->user);
    free(c->source);
    free(c);
}

const char *rc_cell_name(const rc_cell *c) { return c ? c->name : ""; }
int rc_cell_hidden(const rc_cell *c) { return c ? c->hidden : 0; }
int rc_cell_state_count(const rc_cell *c) { return c ? c->nstates : 0; }
const char *rc_cell_state_name(const rc_cell *c, int i)
{
    return (c && i >= 0 && i < c->nstates) ? c->state_name[i] : NULL;
}
int rc_cell_state_size(const rc_cell *c, int i)
{
    return (c && i >= 0 && i < c->nstates) ? c->state_size[i] : 0;
}

rc_graph *rc_step_graph(rc_step *s) { return s ? s->g : NULL; }
rc_node *rc_step_input(rc_step *s) { return s ? s->x : NULL; }
int rc_step_hidden(const rc_step *s) { return s ? s->cell->hidden : 0; }
int rc_step_input_size(const rc_step *s) { return s ? s->I : 0; }
int rc_step_batch(const rc_step *s) { return s ? s->B : 0; }
int rc_step_time(const rc_step *s) { return s ? s->t : 0; }
int rc_step_length(const rc_step *s) { return s ? s->T : 0; }

rc_status rc_step_fail(rc_step *s, const char *fmt, ...)
{
    if (!s) return RC_ERR_ARG;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    graph_fail(s->g, RC_ERR_ARG, "cell '%s', step %d: %s", s->cell->name, s->t, msg);
    s->status = RC_ERR_ARG;
    return RC_ERR_ARG;
}

rc_node *rc_step_state(rc_step *s, const char *name)
{
    if (!s) return NULL;
    int i = cell_state_index(s->cell, name);
    if (i < 0) {
        rc_step_fail(s, "no state named '%s'", name ? name : "(null)");
        return NULL;
    }
    return s->prev[i];
}

rc_status rc_step_set_state(rc_step *s, const char *name, rc_node *value)
{
    if (!s) return RC_ERR_ARG;
    if (s->g->status != RC_OK) return s->g->status;
    int i = cell_state_index(s->cell, name);
    if (i < 0) return rc_step_fail(s, "rc_step_set_state: no state named '%s'", name ? name : "(null)");
    if (!value) return rc_step_fail(s, "rc_step_set_state: state '%s' set to NULL", name);
    if (value->t.ndim != 2 || value->t.shape[0] != s->B || value->t.shape[1] != s->cell->state_size[i]) {
        char sh[64];
        tensor_shape_str(&value->t, sh, sizeof sh);
        return rc_step_fail(s, "state '%s' must be [%d,%d] (batch, size), was set to %s", name, s->B,
                            s->cell->state_size[i], sh);
    }
    s->next[i] = value;
    return RC_OK;
}

rc_status rc_step_set_output(rc_step *s, rc_node *value)
{
    if (!s) return RC_ERR_ARG;
    if (s->g->status != RC_OK) return s->g->status;
    if (!value || value->t.ndim != 2 || value->t.shape[0] != s->B)
        return rc_step_fail(s, "rc_step_set_output: the output must be a [%d, size] node", s->B);
    s->out = value;
    return RC_OK;
}

rc_node *rc_step_param(rc_step *s, const char *name, int ndim, const int *shape)
{
    if (!s || s->g->status != RC_OK) return NULL;
    char full[256];
    snprintf(full, sizeof full, "%s%s", s->prefix ? s->prefix : "", name ? name : "");
    return rc_param(s->g, full, ndim, shape);
}

rc_node *rc_step_linear(rc_step *s, const char *name, rc_node *x, int out)
{
    if (!s || !x) return NULL;
    int shape[2] = { out, rc_node_dim(x, rc_node_ndim(x) - 1) };
    return rc_matmul_t(s->g, x, rc_step_param(s, name, 2, shape), 0, 1);
}

rc_node *rc_step_bias(rc_step *s, const char *name, int size)
{
    return rc_step_param(s, name, 1, &size);
}
