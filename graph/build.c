/* The public op builders: each is one call into graph_op(), which checks operands
 * against the op's shape rule from the table. The elementwise ops' builders are made
 * from ops/elementwise_ops.def; each needs its prototype in recur.h (a builder without
 * one does not compile: -Wmissing-prototypes is an error here). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "graph.h"

#pragma GCC diagnostic error "-Wmissing-prototypes"

rc_node *graph_op(rc_graph *g, int op, int nin, rc_node *const *in, const op_params *par)
{
    if (!g || g->status != RC_OK) return NULL;
    const op_desc *d = &op_table[op];
    if (nin < 1 || (d->arity >= 0 && nin != d->arity))
        return graph_fail(g, RC_ERR_ARG, "%s: takes %d operand(s), got %d", d->name, d->arity, nin);
    tensor *ts[nin];
    for (int k = 0; k < nin; k++) {
        if (!in[k]) return graph_fail(g, RC_ERR_ARG, "%s: operand %d is NULL", d->name, k);
        if (in[k]->g != g) {
            char a[128];
            node_describe(in[k], a, sizeof a);
            return graph_fail(g, RC_ERR_GRAPH, "%s: operand %d, %s, belongs to another graph",
                              d->name, k, a);
        }
        ts[k] = &in[k]->t;
    }
    op_params p = {0};
    if (par) p = *par;
    tensor out = {0};
    char msg[OP_MSG] = "";
    if (d->shape(nin, ts, &p, &out, msg) != 0) {
        char buf[400];
        size_t k = 0;
        buf[0] = 0;
        for (int i = 0; i < nin && k < sizeof buf; i++) {
            char a[128];
            node_describe(in[i], a, sizeof a);
            int w = snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "", a);
            if (w > 0) k += (size_t)w;
        }
        return graph_fail(g, RC_ERR_SHAPE, "%s of node #%d: %s (operands: %s)", d->name, g->n, msg, buf);
    }
    rc_node **copy = malloc((size_t)nin * sizeof *copy);
    if (!copy) return graph_fail(g, RC_ERR_NOMEM, "out of memory building %s", d->name);
    memcpy(copy, in, (size_t)nin * sizeof *copy);
    rc_node *n = graph_add(g, NK_OP, copy, nin);
    if (!n) return NULL;
    n->op = op;
    n->par = p;
    out.data = NULL;
    n->t = out;
    return n;
}

/* Builders with one operand, then two: the NULL checks live in graph_op. */
static rc_node *op1(rc_graph *g, int op, rc_node *a, const op_params *p)
{
    rc_node *in[1] = { a };
    return graph_op(g, op, 1, in, p);
}
static rc_node *op2(rc_graph *g, int op, rc_node *a, rc_node *b, const op_params *p)
{
    rc_node *in[2] = { a, b };
    return graph_op(g, op, 2, in, p);
}

rc_node *rc_matmul_t(rc_graph *g, rc_node *a, rc_node *b, int ta, int tb)
{
    op_params p = { .i = { ta != 0, tb != 0 } };
    return op2(g, OP_MATMUL, a, b, &p);
}
rc_node *rc_matmul(rc_graph *g, rc_node *a, rc_node *b) { return rc_matmul_t(g, a, b, 0, 0); }
/* rc_<name> of every elementwise op, by its form (elementwise_ops.def) */
#define EW_BUILD_U(ID, name) \
    rc_node *rc_##name(rc_graph *g, rc_node *a) { return op1(g, OP_##ID, a, NULL); }
#define EW_BUILD_UC(ID, name)                                 \
    rc_node *rc_##name(rc_graph *g, rc_node *a, float c)      \
    {                                                         \
        op_params p = { .f = { c } };                         \
        return op1(g, OP_##ID, a, &p);                        \
    }
#define EW_BUILD_B(ID, name) \
    rc_node *rc_##name(rc_graph *g, rc_node *a, rc_node *b) { return op2(g, OP_##ID, a, b, NULL); }
#define EW(ID, name, form, ...) EW_BUILD_##form(ID, name)
#include "elementwise_ops.def"
#undef EW
rc_node *rc_row_sum(rc_graph *g, rc_node *a) { return op1(g, OP_ROW_SUM, a, NULL); }
rc_node *rc_row_mean(rc_graph *g, rc_node *a) { return op1(g, OP_ROW_MEAN, a, NULL); }
rc_node *rc_row_var(rc_graph *g, rc_node *a) { return op1(g, OP_ROW_VAR, a, NULL); }
rc_node *rc_softmax(rc_graph *g, rc_node *a) { return op1(g, OP_SOFTMAX, a, NULL); }
rc_node *rc_log_softmax(rc_graph *g, rc_node *a) { return op1(g, OP_LOG_SOFTMAX, a, NULL); }
rc_node *rc_concat(rc_graph *g, int n, rc_node *const *parts)
{
    if (!g || g->status != RC_OK) return NULL;
    if (n < 1 || !parts) return graph_fail(g, RC_ERR_ARG, "concat: needs at least one part, got %d", n);
    return graph_op(g, OP_CONCAT, n, parts, NULL);
}
rc_node *rc_slice(rc_graph *g, rc_node *a, int start, int len)
{
    op_params p = { .i = { start, len } };
    return op1(g, OP_SLICE, a, &p);
}
rc_node *rc_row_slice(rc_graph *g, rc_node *a, int start, int len)
{
    op_params p = { .i = { start, len } };
    return op1(g, OP_ROW_SLICE, a, &p);
}
rc_node *rc_row_concat(rc_graph *g, int n, rc_node *const *parts)
{
    if (!g || g->status != RC_OK) return NULL;
    if (n < 1 || !parts) return graph_fail(g, RC_ERR_ARG, "row_concat: needs at least one part, got %d", n);
    return graph_op(g, OP_ROW_CONCAT, n, parts, NULL);
}
rc_node *rc_sum(rc_graph *g, rc_node *a) { return op1(g, OP_SUM, a, NULL); }
rc_node *rc_mean(rc_graph *g, rc_node *a) { return op1(g, OP_MEAN, a, NULL); }
rc_node *rc_embedding(rc_graph *g, rc_node *table, rc_node *idx)
{
    return op2(g, OP_EMBEDDING, table, idx, NULL);
}
rc_node *rc_dropout(rc_graph *g, rc_node *a, float p, uint64_t seed)
{
    op_params q = { .f = { p }, .seed = seed };
    return op1(g, OP_DROPOUT, a, &q);
}
rc_node *rc_softmax_xent(rc_graph *g, rc_node *logits, rc_node *targets)
{
    return op2(g, OP_SOFTMAX_XENT, logits, targets, NULL);
}
rc_node *rc_sigmoid_bce(rc_graph *g, rc_node *logits, rc_node *targets)
{
    return op2(g, OP_SIGMOID_BCE, logits, targets, NULL);
}
rc_node *rc_mse(rc_graph *g, rc_node *pred, rc_node *target)
{
    return op2(g, OP_MSE, pred, target, NULL);
}
rc_ctc_opts rc_ctc_defaults(void)
{
    rc_ctc_opts o = { .blank = 0, .reduction = RC_CTC_MEAN_BATCH, .zero_infeasible = 0 };
    return o;
}
rc_node *rc_ctc(rc_graph *g, rc_node *logits, rc_node *labels, rc_node *label_lengths, rc_node *mask,
                const rc_ctc_opts *o)
{
    rc_ctc_opts d = o ? *o : rc_ctc_defaults();
    op_params p = { .i = { d.blank, (int)d.reduction, d.zero_infeasible != 0 } };
    rc_node *in[4] = { logits, labels, label_lengths, mask };
    return graph_op(g, OP_CTC, mask ? 4 : 3, in, &p);
}
