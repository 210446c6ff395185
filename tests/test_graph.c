/* Tests of graphs and plans through the public API (recur.h only).
 *
 * Suite `graph`: every user mistake returns an error (NULL / a status code) whose
 * message names the op, the shapes and the nodes; forward declarations (cycles,
 * undefined, mismatched, working); plan misuse (unfed input, wrong feed count,
 * backward before forward or from a non-scalar, nodes outside the plan); error
 * propagation and rc_graph_clear_error; repeated runs of one plan; the BLAS and
 * thread settings.
 *
 * Suite `autodiff`: composite graphs pass rc_gradcheck (an MLP, a shared parameter,
 * a layer-norm composition, a forward declaration) and the reverse sweep is
 * bitwise reproducible.
 *
 * Checks use cr_expect (non-fatal) so that every test frees its graph and plan even
 * when a check fails: the suite runs under AddressSanitizer's leak checker. */
#include <criterion/criterion.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "recur.h"

/* Central-difference step and the largest accepted gradient-check error. */
#define GC_EPS 1e-2f
#define GC_TOL 2e-3

/* ---- helpers ------------------------------------------------------------------- */

/* splitmix64: a small deterministic generator for test data. */
static uint64_t g_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float g_unif(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((double)(g_next(s) >> 11) * 0x1.0p-53);
}

static void g_fill(uint64_t *s, float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = g_unif(s, lo, hi);
}

/* Fills a parameter (or constant) with uniform values in [lo, hi). */
static void g_fill_param(uint64_t *s, rc_node *p, float lo, float hi)
{
    float *d = rc_param_data(p);
    cr_expect_not_null(d, "no storage for parameter '%s'", rc_node_name(p));
    if (d) g_fill(s, d, rc_node_size(p), lo, hi);
}

/* Expects `msg` to contain `word`. */
#define EXPECT_HAS(msg, word)                                                          \
    do {                                                                               \
        const char *m_ = (msg);                                                        \
        cr_expect(m_ != NULL && strstr(m_, (word)) != NULL,                            \
                  "message \"%s\" should mention \"%s\"", m_ ? m_ : "(null)", (word)); \
    } while (0)

/* Expects the graph to hold an error of `code` whose message mentions each word. */
static void expect_graph_error(const rc_graph *g, rc_status code, const char *const *words)
{
    cr_expect_eq(rc_graph_status(g), code, "status %s (%d), expected %s (%d); message \"%s\"",
                 rc_status_name(rc_graph_status(g)), (int)rc_graph_status(g),
                 rc_status_name(code), (int)code, rc_graph_error(g));
    for (int i = 0; words[i]; i++) EXPECT_HAS(rc_graph_error(g), words[i]);
}
#define EXPECT_GRAPH_ERROR(g, code, ...) \
    expect_graph_error((g), (code), (const char *const[]){__VA_ARGS__, NULL})

static const int S1[1] = {1};

static rc_graph *new_graph(void)
{
    rc_graph *g = rc_graph_new();
    cr_assert_not_null(g, "rc_graph_new failed");
    return g;
}

/* ---- builder mistakes ------------------------------------------------------------ */

Test(graph, matmul_inner_mismatch)
{
    rc_graph *g = new_graph();
    rc_node *a = rc_input(g, "acts", RC_F32, 2, (int[]){3, 4});
    rc_node *w = rc_param(g, "W", 2, (int[]){5, 2});
    cr_expect_not_null(a);
    cr_expect_not_null(w);
    int before = rc_graph_node_count(g);
    cr_expect_null(rc_matmul(g, a, w));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "matmul", "[3,4]", "[5,2]", "'acts'", "'W'", "inner");
    cr_expect_eq(rc_graph_node_count(g), before, "a failed builder must not add a node");
    rc_graph_clear_error(g);
    /* with a transpose flag the same operands agree the other way round */
    rc_node *ok = rc_matmul_t(g, a, rc_param(g, "V", 2, (int[]){2, 4}), 0, 1);
    cr_expect_not_null(ok, "%s", rc_graph_error(g));
    cr_expect_eq(rc_node_dim(ok, 0), 3);
    cr_expect_eq(rc_node_dim(ok, 1), 2);
    /* and a transposed mismatch says so */
    cr_expect_null(rc_matmul_t(g, a, w, 1, 0));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "matmul", "[3,4]", "[5,2]", "transposed");
    rc_graph_free(g);
}

Test(graph, matmul_needs_2d)
{
    rc_graph *g = new_graph();
    rc_node *a = rc_input(g, "x3", RC_F32, 3, (int[]){2, 3, 4});
    rc_node *w = rc_param(g, "W", 2, (int[]){4, 2});
    cr_expect_null(rc_matmul(g, a, w));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "matmul", "[2,3,4]", "2-D", "'x3'");
    rc_graph_free(g);
}

Test(graph, add_incompatible_shapes)
{
    rc_graph *g = new_graph();
    rc_node *a = rc_input(g, "a", RC_F32, 2, (int[]){3, 4});
    rc_node *b = rc_input(g, "b", RC_F32, 2, (int[]){3, 5});
    cr_expect_null(rc_add(g, a, b));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "add", "[3,4]", "[3,5]", "'a'", "'b'");
    rc_graph_clear_error(g);
    /* a vector of the wrong length is no row broadcast either */
    rc_node *v = rc_param(g, "bias", 1, (int[]){3});
    cr_expect_null(rc_add(g, a, v));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "add", "[3,4]", "[3]", "'bias'");
    rc_graph_clear_error(g);
    /* mul and sub use the same rule, and name themselves */
    cr_expect_null(rc_mul(g, a, b));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "mul", "[3,4]", "[3,5]");
    rc_graph_clear_error(g);
    cr_expect_null(rc_minimum(g, a, v));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "minimum", "[3,4]", "[3]");
    rc_graph_clear_error(g);
    /* an int32 operand of a float op */
    rc_node *k = rc_input(g, "ids", RC_I32, 2, (int[]){3, 4});
    cr_expect_null(rc_add(g, a, k));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "add", "int32", "'ids'");
    rc_graph_free(g);
}

Test(graph, concat_mismatched_rows)
{
    rc_graph *g = new_graph();
    rc_node *a = rc_input(g, "top", RC_F32, 2, (int[]){3, 4});
    rc_node *b = rc_input(g, "bottom", RC_F32, 2, (int[]){2, 4});
    rc_node *parts[2] = {a, b};
    cr_expect_null(rc_concat(g, 2, parts));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "concat", "[3,4]", "[2,4]", "'bottom'");
    rc_graph_clear_error(g);
    cr_expect_null(rc_concat(g, 0, parts));
    EXPECT_GRAPH_ERROR(g, RC_ERR_ARG, "concat");
    rc_graph_clear_error(g);
    /* differing last axes are fine */
    rc_node *c = rc_input(g, "side", RC_F32, 2, (int[]){3, 2});
    rc_node *ok = rc_concat(g, 2, (rc_node *[]){a, c});
    cr_expect_not_null(ok, "%s", rc_graph_error(g));
    cr_expect_eq(rc_node_dim(ok, 1), 6);
    rc_graph_free(g);
}

Test(graph, slice_out_of_range)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "feat", RC_F32, 2, (int[]){2, 4});
    cr_expect_null(rc_slice(g, x, 3, 2));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "slice", "[3, 5)", "4", "[2,4]", "'feat'");
    rc_graph_clear_error(g);
    cr_expect_null(rc_slice(g, x, -1, 2));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "slice", "[-1, 1)");
    rc_graph_clear_error(g);
    cr_expect_null(rc_slice(g, x, 0, 0));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "slice");
    rc_graph_clear_error(g);
    /* overflow-prone arguments are rejected, not wrapped */
    cr_expect_null(rc_slice(g, x, 2, 2147483647));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "slice");
    rc_graph_clear_error(g);
    rc_node *ok = rc_slice(g, x, 1, 3);
    cr_expect_not_null(ok, "%s", rc_graph_error(g));
    cr_expect_eq(rc_node_dim(ok, 1), 3);
    rc_graph_free(g);
}

Test(graph, embedding_float_indices)
{
    rc_graph *g = new_graph();
    rc_node *tab = rc_param(g, "emb", 2, (int[]){10, 3});
    rc_node *idx = rc_input(g, "tokens", RC_F32, 1, (int[]){4});
    cr_expect_null(rc_embedding(g, tab, idx));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "embedding", "int32", "'tokens'", "[4]");
    rc_graph_clear_error(g);
    /* a table that is not 2-D */
    rc_node *t3 = rc_param(g, "emb3", 3, (int[]){2, 5, 3});
    rc_node *ids = rc_input(g, "ids", RC_I32, 1, (int[]){4});
    cr_expect_null(rc_embedding(g, t3, ids));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "embedding", "2-D", "'emb3'");
    rc_graph_clear_error(g);
    rc_node *ok = rc_embedding(g, tab, ids);
    cr_expect_not_null(ok, "%s", rc_graph_error(g));
    cr_expect_eq(rc_node_ndim(ok), 2);
    cr_expect_eq(rc_node_dim(ok, 0), 4);
    cr_expect_eq(rc_node_dim(ok, 1), 3);
    rc_graph_free(g);
}

Test(graph, softmax_xent_wrong_target_shape)
{
    rc_graph *g = new_graph();
    rc_node *logits = rc_input(g, "logits", RC_F32, 2, (int[]){3, 5});
    rc_node *y = rc_input(g, "labels", RC_I32, 1, (int[]){5});
    cr_expect_null(rc_softmax_xent(g, logits, y));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "softmax_xent", "[3,5]", "[5]", "'labels'");
    rc_graph_clear_error(g);
    /* float targets */
    rc_node *yf = rc_input(g, "labels_f", RC_F32, 1, (int[]){3});
    cr_expect_null(rc_softmax_xent(g, logits, yf));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "softmax_xent", "int32", "'labels_f'");
    rc_graph_clear_error(g);
    rc_node *yok = rc_input(g, "labels_ok", RC_I32, 1, (int[]){3});
    rc_node *ok = rc_softmax_xent(g, logits, yok);
    cr_expect_not_null(ok, "%s", rc_graph_error(g));
    cr_expect_eq(rc_node_size(ok), 3);
    rc_graph_free(g);
}

Test(graph, dropout_bad_probability)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "h", RC_F32, 2, (int[]){2, 3});
    cr_expect_null(rc_dropout(g, x, 1.0f, 7));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "dropout", "probability", "1", "'h'");
    rc_graph_clear_error(g);
    cr_expect_null(rc_dropout(g, x, -0.25f, 7));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "dropout", "-0.25");
    rc_graph_clear_error(g);
    cr_expect_null(rc_dropout(g, x, NAN, 7));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "dropout");
    rc_graph_clear_error(g);
    cr_expect_not_null(rc_dropout(g, x, 0.0f, 7), "%s", rc_graph_error(g));
    cr_expect_not_null(rc_dropout(g, x, 0.999f, 7), "%s", rc_graph_error(g));
    rc_graph_free(g);
}

Test(graph, rank_out_of_range)
{
    rc_graph *g = new_graph();
    int shape5[5] = {1, 2, 3, 4, 5};
    cr_expect_null(rc_input(g, "scalar_in", RC_F32, 0, shape5));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "rank 0", "'scalar_in'", "1..4");
    rc_graph_clear_error(g);
    cr_expect_null(rc_input(g, "big_in", RC_F32, 5, shape5));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "rank 5", "'big_in'");
    rc_graph_clear_error(g);
    cr_expect_null(rc_param(g, "big_w", 5, shape5));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "rank 5", "'big_w'", "parameter");
    rc_graph_clear_error(g);
    cr_expect_null(rc_const(g, 0, shape5, NULL));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "rank 0", "constant");
    rc_graph_clear_error(g);
    cr_expect_null(rc_forward_decl(g, "big_decl", 5, shape5));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "rank 5", "'big_decl'");
    rc_graph_clear_error(g);
    cr_expect_null(rc_input(g, "noshape", RC_F32, 2, NULL));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "'noshape'");
    rc_graph_clear_error(g);
    cr_expect_null(rc_input(g, "baddt", (rc_dtype)7, 1, S1));
    EXPECT_GRAPH_ERROR(g, RC_ERR_ARG, "'baddt'", "dtype");
    rc_graph_clear_error(g);
    cr_expect_eq(rc_graph_node_count(g), 0, "no failed leaf may be added");
    /* rank 4 is the largest allowed */
    cr_expect_not_null(rc_input(g, "ok4", RC_F32, 4, shape5), "%s", rc_graph_error(g));
    rc_graph_free(g);
}

Test(graph, zero_dimension)
{
    rc_graph *g = new_graph();
    cr_expect_null(rc_input(g, "empty_in", RC_F32, 2, (int[]){3, 0}));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "'empty_in'", "dimension");
    rc_graph_clear_error(g);
    cr_expect_null(rc_param(g, "neg_w", 2, (int[]){-2, 3}));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "'neg_w'", "dimension");
    rc_graph_clear_error(g);
    cr_expect_null(rc_fill(g, 1, (int[]){0}, 1.0f));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "dimension");
    rc_graph_clear_error(g);
    cr_expect_eq(rc_graph_node_count(g), 0);
    rc_graph_free(g);
}

/* ---- sizes that overflow: refused with the op and the shapes, never wrapped ------ */

Test(graph, concat_last_axis_overflow)
{
    /* two [1, 2^30]: the last axes add up to 2^31, which no int dimension holds */
    rc_graph *g = new_graph();
    rc_node *a = rc_input(g, "left", RC_F32, 2, (int[]){1, 1 << 30});
    rc_node *b = rc_input(g, "right", RC_F32, 2, (int[]){1, 1 << 30});
    cr_expect_not_null(a, "%s", rc_graph_error(g));
    cr_expect_null(rc_concat(g, 2, (rc_node *[]){a, b}));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "concat", "[1,1073741824]", "'left'", "'right'", "2147483648");
    rc_graph_clear_error(g);
    /* dims that fit an int but elements that overflow: two [2^31-1, 1.5 * 2^29] */
    rc_node *c = rc_input(g, "tall", RC_F32, 2, (int[]){INT32_MAX, 805306368});
    cr_expect_not_null(c, "%s", rc_graph_error(g));
    cr_expect_null(rc_concat(g, 2, (rc_node *[]){c, c}));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "concat", "[2147483647,805306368]", "[2147483647,1610612736]",
                       "'tall'", "overflow");
    rc_graph_clear_error(g);
    /* row_concat: the rows add up past an int */
    rc_node *r = rc_input(g, "rows", RC_F32, 2, (int[]){1 << 30, 1});
    cr_expect_null(rc_row_concat(g, 2, (rc_node *[]){r, r}));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "row_concat", "[1073741824,1]", "'rows'", "2147483648");
    rc_graph_free(g);
}

Test(graph, leaf_size_overflow)
{
    /* [65536]^4 has 2^64 elements: the size used to wrap to 0 with status OK */
    static const int huge[4] = {65536, 65536, 65536, 65536};
    rc_graph *g = new_graph();
    cr_expect_null(rc_fill(g, 4, huge, 1.0f));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "constant", "[65536,65536,65536,65536]", "overflow");
    rc_graph_clear_error(g);
    cr_expect_null(rc_const(g, 4, huge, NULL));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "constant", "[65536,65536,65536,65536]");
    rc_graph_clear_error(g);
    cr_expect_null(rc_input(g, "big_in", RC_F32, 4, huge));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "'big_in'", "[65536,65536,65536,65536]", "overflow");
    rc_graph_clear_error(g);
    cr_expect_null(rc_param(g, "big_w", 4, huge));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "'big_w'", "[65536,65536,65536,65536]", "overflow");
    rc_graph_clear_error(g);
    cr_expect_null(rc_forward_decl(g, "big_d", 4, huge));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "'big_d'", "[65536,65536,65536,65536]");
    rc_graph_clear_error(g);
    /* 2^62 elements fit a size_t but not its bytes (4 each) */
    cr_expect_null(rc_input(g, "big2", RC_F32, 3, (int[]){1 << 30, 1 << 30, 4}));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "'big2'", "[1073741824,1073741824,4]");
    rc_graph_clear_error(g);
    /* an existing parameter asked again with an overflowing shape */
    cr_expect_not_null(rc_param(g, "w", 1, (int[]){3}));
    cr_expect_null(rc_param(g, "w", 4, huge));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "'w'", "[3]", "[65536,65536,65536,65536]");
    rc_graph_clear_error(g);
    cr_expect_eq(rc_graph_node_count(g), 1);
    rc_graph_free(g);
}

Test(graph, product_shapes_overflow)
{
    rc_graph *g = new_graph();
    /* matmul [2^31-1, 1] @ [1, 2^31-1]: 2^62 elements, 2^64 bytes */
    rc_node *a = rc_input(g, "col", RC_F32, 2, (int[]){INT32_MAX, 1});
    rc_node *b = rc_input(g, "row", RC_F32, 2, (int[]){1, INT32_MAX});
    cr_expect_not_null(b, "%s", rc_graph_error(g));
    cr_expect_null(rc_matmul(g, a, b));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "matmul", "[2147483647,1]", "[1,2147483647]", "'col'", "overflow");
    rc_graph_clear_error(g);
    /* embedding: indices [65536]^3 into a table of width 65536 give [65536]^4 */
    rc_node *tab = rc_input(g, "table", RC_F32, 2, (int[]){4, 65536});
    rc_node *ix = rc_input(g, "ids", RC_I32, 3, (int[]){65536, 65536, 65536});
    cr_expect_not_null(ix, "%s", rc_graph_error(g));
    cr_expect_null(rc_embedding(g, tab, ix));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "embedding", "[65536,65536,65536,65536]", "'ids'", "overflow");
    rc_graph_free(g);
}

Test(graph, plan_arena_overflow)
{
    /* four inputs of 2^60 floats (2^62 bytes each) and four small roots: the arena's
     * 2^64 + 256 bytes used to wrap to 256 and the plan was built over it */
    rc_graph *g = new_graph();
    rc_node *roots[4];
    for (int k = 0; k < 4; k++) {
        char name[8];
        snprintf(name, sizeof name, "x%d", k);
        rc_node *x = rc_input(g, name, RC_F32, 3, (int[]){1 << 30, 1 << 30, 1});
        cr_expect_not_null(x, "%s", rc_graph_error(g));
        roots[k] = rc_sum(g, x);
    }
    rc_plan *p = rc_plan_new_ex(g, 4, roots, RC_PLAN_NO_GRAD);
    cr_expect_null(p, "a plan with a wrapped arena of %zu bytes was built", rc_plan_arena_bytes(p));
    EXPECT_GRAPH_ERROR(g, RC_ERR_NOMEM, "arena", "'x1'", "[1073741824,1073741824,1]", "overflow");
    rc_plan_free(p);
    rc_graph_clear_error(g);
    /* the values of an inference plan share memory by lifetime (memplan): two
     * intermediates of 2^62 bytes alive together, from small inputs */
    rc_node *c = rc_input(g, "col", RC_F32, 2, (int[]){1 << 30, 1});
    rc_node *r = rc_input(g, "row", RC_F32, 2, (int[]){1, 1 << 30});
    rc_node *m = rc_matmul(g, c, r);
    rc_node *e = rc_exp(g, m);
    rc_node *y = rc_sum(g, rc_add(g, rc_exp(g, e), rc_add(g, m, e)));
    cr_expect_not_null(y, "%s", rc_graph_error(g));
    p = rc_plan_new_ex(g, 1, &y, RC_PLAN_NO_GRAD | RC_PLAN_NO_EW_FUSION);
    cr_expect_null(p, "a plan of %zu bytes was built", rc_plan_arena_bytes(p));
    EXPECT_GRAPH_ERROR(g, RC_ERR_NOMEM, "arena", "overflow");
    rc_plan_free(p);
    rc_graph_free(g);
}

Test(graph, null_operand_and_first_error_kept)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){2, 3});
    /* a NULL operand with no earlier error is itself the error */
    cr_expect_null(rc_tanh(g, NULL));
    EXPECT_GRAPH_ERROR(g, RC_ERR_ARG, "tanh", "NULL");
    rc_graph_clear_error(g);
    cr_expect_null(rc_add(g, x, NULL));
    EXPECT_GRAPH_ERROR(g, RC_ERR_ARG, "add", "NULL", "1");
    rc_graph_clear_error(g);
    cr_expect_null(rc_concat(g, 2, (rc_node *[]){x, NULL}));
    EXPECT_GRAPH_ERROR(g, RC_ERR_ARG, "concat", "NULL");
    rc_graph_clear_error(g);

    /* propagation: a whole expression on a failed node is NULL, first message kept */
    rc_node *w = rc_param(g, "W", 2, (int[]){4, 5});
    rc_node *bad = rc_matmul(g, x, w);                     /* [2,3] @ [4,5]: the first error */
    cr_expect_null(bad);
    char first[512];
    snprintf(first, sizeof first, "%s", rc_graph_error(g));
    EXPECT_HAS(first, "matmul");
    EXPECT_HAS(first, "[2,3]");
    EXPECT_HAS(first, "[4,5]");
    rc_node *h = rc_tanh(g, bad);
    rc_node *s = rc_add(g, h, x);
    rc_node *z = rc_slice(g, x, 5, 5);                     /* would be an error of its own */
    rc_node *loss = rc_mean(g, rc_softmax(g, s));
    cr_expect_null(h);
    cr_expect_null(s);
    cr_expect_null(z);
    cr_expect_null(loss);
    cr_expect_null(rc_param(g, "W2", 2, (int[]){3, 3}), "builders stay off after an error");
    cr_expect_eq(rc_graph_status(g), RC_ERR_SHAPE);
    cr_expect_str_eq(rc_graph_error(g), first, "the first error must be kept");
    /* a plan of a failed graph is refused, and the message is still the first */
    rc_plan *p = rc_plan_new(g, 1, &x);
    cr_expect_null(p);
    if (p) rc_plan_free(p);
    cr_expect_str_eq(rc_graph_error(g), first);
    rc_graph_free(g);
}

Test(graph, node_of_another_graph)
{
    rc_graph *g = new_graph(), *g2 = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){2, 3});
    rc_node *y = rc_input(g2, "stranger", RC_F32, 2, (int[]){2, 3});
    cr_expect_null(rc_add(g, x, y));
    EXPECT_GRAPH_ERROR(g, RC_ERR_GRAPH, "add", "another graph", "'stranger'");
    cr_expect_eq(rc_graph_status(g2), RC_OK, "the other graph is not touched");
    rc_graph_clear_error(g);
    cr_expect_null(rc_tanh(g, y));
    EXPECT_GRAPH_ERROR(g, RC_ERR_GRAPH, "tanh", "another graph");
    rc_graph_clear_error(g);
    /* a root of another graph */
    rc_plan *p = rc_plan_new(g, 1, &y);
    cr_expect_null(p);
    if (p) rc_plan_free(p);
    EXPECT_GRAPH_ERROR(g, RC_ERR_GRAPH, "another graph");
    rc_graph_clear_error(g);
    /* rc_define across graphs */
    rc_node *d = rc_forward_decl(g, "d", 2, (int[]){2, 3});
    cr_expect_eq(rc_define(g, d, y), RC_ERR_GRAPH);
    EXPECT_GRAPH_ERROR(g, RC_ERR_GRAPH, "another graph");
    rc_graph_clear_error(g);
    /* a plan's queries on another graph's node */
    rc_node *t = rc_tanh(g, x);
    p = rc_plan_new(g, 1, &t);
    cr_expect_not_null(p, "%s", rc_graph_error(g));
    if (p) {
        cr_expect_null(rc_plan_value(p, y));
        cr_expect_null(rc_plan_grad(p, y));
        cr_expect_eq(rc_plan_feed(p, y, (float[6]){0}, 6), RC_ERR_ARG);
        rc_plan_free(p);
    }
    rc_graph_free(g);
    rc_graph_free(g2);
}

/* ---- parameters ------------------------------------------------------------------ */

Test(graph, param_reused_with_other_shape)
{
    rc_graph *g = new_graph();
    rc_node *w = rc_param(g, "W_hh", 2, (int[]){3, 4});
    cr_expect_not_null(w);
    cr_expect_null(rc_param(g, "W_hh", 2, (int[]){4, 3}));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "'W_hh'", "[3,4]", "[4,3]");
    rc_graph_clear_error(g);
    cr_expect_null(rc_param(g, "W_hh", 1, (int[]){12}));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "'W_hh'", "[3,4]", "[12]");
    rc_graph_clear_error(g);
    cr_expect_null(rc_param(g, "", 1, (int[]){2}));
    EXPECT_GRAPH_ERROR(g, RC_ERR_ARG, "name");
    rc_graph_clear_error(g);
    cr_expect_null(rc_param(g, NULL, 1, (int[]){2}));
    EXPECT_GRAPH_ERROR(g, RC_ERR_ARG, "name");
    rc_graph_free(g);
}

Test(graph, param_same_name_same_shape_is_shared)
{
    rc_graph *g = new_graph();
    rc_node *w = rc_param(g, "W", 2, (int[]){3, 4});
    int n = rc_graph_node_count(g);
    rc_node *w2 = rc_param(g, "W", 2, (int[]){3, 4});
    cr_expect_eq(w, w2, "the same name and shape must return the same parameter");
    cr_expect_eq(rc_graph_node_count(g), n, "no new node for a shared parameter");
    cr_expect_eq(rc_graph_status(g), RC_OK);
    cr_expect_eq(rc_param_find(g, "W"), w);
    cr_expect_null(rc_param_find(g, "nope"));
    cr_expect_eq(rc_graph_status(g), RC_OK, "rc_param_find records no error");
    cr_expect_str_eq(rc_node_op(w), "param");
    cr_expect_str_eq(rc_node_name(w), "W");
    /* zero-initialised, and one storage */
    float *d = rc_param_data(w);
    cr_expect_not_null(d);
    if (d) {
        for (int i = 0; i < 12; i++) cr_expect_eq(d[i], 0.0f);
        d[5] = 2.5f;
        cr_expect_eq(rc_param_data(w2)[5], 2.5f);
    }
    /* an input of the same name is another node */
    rc_node *x = rc_input(g, "W", RC_F32, 1, (int[]){3});
    cr_expect_neq(x, w);
    cr_expect_eq(rc_param_find(g, "W"), w);
    rc_graph_free(g);
}

/* ---- forward declarations ------------------------------------------------------------ */

Test(graph, param_lookup_by_name_many)
{
    /* thousands of parameters between other nodes: each name finds its own node,
     * asking again shares it, and unknown or non-parameter names find nothing */
    enum { NP = 5000 };
    rc_graph *g = new_graph();
    rc_node **w = malloc(NP * sizeof *w);
    cr_assert_not_null(w);
    char name[32];
    for (int i = 0; i < NP; i++) {
        snprintf(name, sizeof name, "layer%d.W", i);
        w[i] = rc_param(g, name, 1, (int[]){1 + i % 3});
        cr_expect_not_null(w[i], "%s", rc_graph_error(g));
        rc_input(g, name, RC_F32, 1, (int[]){2});   /* an input of the same name is no parameter */
    }
    int count = rc_graph_node_count(g);
    for (int i = 0; i < NP; i++) {
        snprintf(name, sizeof name, "layer%d.W", i);
        cr_expect_eq(rc_param_find(g, name), w[i], "rc_param_find(\"%s\")", name);
        cr_expect_eq(rc_param(g, name, 1, (int[]){1 + i % 3}), w[i], "rc_param(\"%s\") again", name);
    }
    cr_expect_eq(rc_graph_node_count(g), count, "shared parameters added nodes");
    cr_expect_null(rc_param_find(g, "layer5000.W"));
    cr_expect_null(rc_param_find(g, "layer1.w"));
    cr_expect_null(rc_param_find(g, ""));
    /* the same name with another shape is still refused */
    cr_expect_null(rc_param(g, "layer7.W", 1, (int[]){9}));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "'layer7.W'", "[2]", "[9]");
    cr_expect_eq(rc_graph_status(g), RC_ERR_SHAPE);
    free(w);
    rc_graph_free(g);
}

Test(graph, param_renamed_is_found_by_its_new_name)
{
    rc_graph *g = new_graph();
    rc_node *a = rc_param(g, "a", 1, (int[]){2});
    rc_node *b = rc_param(g, "b", 1, (int[]){3});
    cr_expect_eq(rc_node_set_name(a, "alpha"), RC_OK);
    cr_expect_null(rc_param_find(g, "a"));
    cr_expect_eq(rc_param_find(g, "alpha"), a);
    cr_expect_eq(rc_param(g, "alpha", 1, (int[]){2}), a);
    /* a new parameter may take the freed name */
    rc_node *a2 = rc_param(g, "a", 1, (int[]){4});
    cr_expect_not_null(a2, "%s", rc_graph_error(g));
    cr_expect_neq(a2, a);
    cr_expect_eq(rc_param_find(g, "a"), a2);
    /* two parameters renamed to one name: the first (lowest id) is the one found,
     * and renaming it away leaves the other */
    cr_expect_eq(rc_node_set_name(a2, "b"), RC_OK);
    cr_expect_eq(rc_param_find(g, "b"), b);
    cr_expect_eq(rc_node_set_name(b, "beta"), RC_OK);
    cr_expect_eq(rc_param_find(g, "b"), a2);
    cr_expect_eq(rc_param_find(g, "beta"), b);
    /* many more after the renames */
    char name[16];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "p%d", i);
        cr_expect_not_null(rc_param(g, name, 1, (int[]){1}));
    }
    cr_expect_eq(rc_param_find(g, "alpha"), a);
    cr_expect_eq(rc_param_find(g, "b"), a2);
    cr_expect_eq(rc_param_find(g, "beta"), b);
    cr_expect_str_eq(rc_node_name(rc_param_find(g, "p99")), "p99");
    cr_expect_eq(rc_graph_status(g), RC_OK, "%s", rc_graph_error(g));
    rc_graph_free(g);
}

Test(graph, forward_decl_cycle)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){2, 3});
    rc_node *h = rc_forward_decl(g, "h_prev", 2, (int[]){2, 3});
    rc_node *y = rc_tanh(g, rc_add(g, h, x));
    cr_expect_not_null(y, "%s", rc_graph_error(g));
    cr_expect_eq(rc_define(g, h, y), RC_OK, "a cycle is only reported at plan time: %s",
                 rc_graph_error(g));
    rc_plan *p = rc_plan_new(g, 1, &y);
    cr_expect_null(p, "a plan of a cyclic graph must be refused");
    if (p) rc_plan_free(p);
    EXPECT_GRAPH_ERROR(g, RC_ERR_GRAPH, "cycle");
    rc_graph_free(g);
}

Test(graph, forward_decl_cycle_of_declarations)
{
    /* two declarations defined as each other: no op on the loop at all */
    rc_graph *g = new_graph();
    rc_node *a = rc_forward_decl(g, "da", 1, (int[]){3});
    rc_node *b = rc_forward_decl(g, "db", 1, (int[]){3});
    cr_expect_eq(rc_define(g, a, b), RC_OK);
    cr_expect_eq(rc_define(g, b, a), RC_OK);
    rc_node *y = rc_exp(g, a);
    rc_plan *p = rc_plan_new(g, 1, &y);
    cr_expect_null(p);
    if (p) rc_plan_free(p);
    EXPECT_GRAPH_ERROR(g, RC_ERR_GRAPH, "cycle");
    rc_graph_free(g);
}

Test(graph, forward_decl_never_defined)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){2, 3});
    rc_node *c = rc_forward_decl(g, "cell_state", 2, (int[]){2, 3});
    rc_node *y = rc_mul(g, c, x);
    rc_plan *p = rc_plan_new(g, 1, &y);
    cr_expect_null(p);
    if (p) rc_plan_free(p);
    EXPECT_GRAPH_ERROR(g, RC_ERR_GRAPH, "never defined", "'cell_state'");
    rc_graph_clear_error(g);
    /* the declaration itself as the root */
    p = rc_plan_new(g, 1, &c);
    cr_expect_null(p);
    if (p) rc_plan_free(p);
    EXPECT_GRAPH_ERROR(g, RC_ERR_GRAPH, "never defined", "'cell_state'");
    rc_graph_free(g);
}

Test(graph, forward_decl_define_mismatch)
{
    rc_graph *g = new_graph();
    rc_node *d = rc_forward_decl(g, "state", 2, (int[]){2, 3});
    rc_node *v = rc_input(g, "v", RC_F32, 2, (int[]){3, 2});
    cr_expect_eq(rc_define(g, d, v), RC_ERR_SHAPE);
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "rc_define", "'state'", "[2,3]", "[3,2]");
    rc_graph_clear_error(g);
    /* dtype differs */
    rc_node *vi = rc_input(g, "vi", RC_I32, 2, (int[]){2, 3});
    cr_expect_eq(rc_define(g, d, vi), RC_ERR_SHAPE);
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "rc_define", "'vi'");
    rc_graph_clear_error(g);
    /* not a declaration */
    rc_node *w = rc_input(g, "w", RC_F32, 2, (int[]){2, 3});
    cr_expect_eq(rc_define(g, w, w), RC_ERR_ARG);
    EXPECT_GRAPH_ERROR(g, RC_ERR_ARG, "rc_define", "'w'", "declaration");
    rc_graph_clear_error(g);
    cr_expect_eq(rc_define(g, d, NULL), RC_ERR_ARG);
    EXPECT_GRAPH_ERROR(g, RC_ERR_ARG, "rc_define", "NULL");
    rc_graph_clear_error(g);
    /* defined twice */
    cr_expect_eq(rc_define(g, d, w), RC_OK, "%s", rc_graph_error(g));
    cr_expect_eq(rc_define(g, d, w), RC_ERR_ARG);
    EXPECT_GRAPH_ERROR(g, RC_ERR_ARG, "'state'", "already defined");
    rc_graph_free(g);
}

Test(graph, forward_decl_defined_works)
{
    uint64_t s = 11;
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){2, 3});
    rc_node *d = rc_forward_decl(g, "later", 2, (int[]){2, 3});
    rc_node *y = rc_scale(g, d, 2.0f);                     /* uses d before it exists */
    rc_node *val = rc_tanh(g, x);
    cr_expect_eq(rc_define(g, d, val), RC_OK, "%s", rc_graph_error(g));
    cr_expect_str_eq(rc_node_op(d), "decl");
    /* val is a root too: a non-root elementwise intermediate may be fused away */
    rc_plan *p = rc_plan_new(g, 2, (rc_node *[]){ y, val });
    cr_expect_not_null(p, "%s", rc_graph_error(g));
    if (p) {
        float xd[6];
        g_fill(&s, xd, 6, -2, 2);
        cr_expect_eq(rc_plan_feed(p, x, xd, 6), RC_OK, "%s", rc_plan_error(p));
        cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
        const float *vd = rc_plan_value(p, d), *vv = rc_plan_value(p, val), *vy = rc_plan_value(p, y);
        cr_expect_not_null(vd);
        cr_expect_not_null(vv);
        cr_expect_not_null(vy);
        if (vd && vv && vy)
            for (int i = 0; i < 6; i++) {
                cr_expect_eq(vd[i], vv[i], "decl value %d: %g, definition %g", i, vd[i], vv[i]);
                cr_expect_float_eq(vv[i], tanhf(xd[i]), 1e-6f);
                cr_expect_float_eq(vy[i], 2.0f * tanhf(xd[i]), 1e-6f);
            }
        rc_plan_free(p);
    }
    rc_graph_free(g);
}

/* ---- plan misuse ----------------------------------------------------------------------- */

Test(graph, forward_unfed_input)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){2, 3});
    rc_node *tok = rc_input(g, "tokens", RC_I32, 1, (int[]){2});
    rc_node *e = rc_param(g, "emb", 2, (int[]){5, 3});
    rc_node *y = rc_add(g, x, rc_embedding(g, e, tok));
    rc_plan *p = rc_plan_new(g, 1, &y);
    if (!p) {
        cr_expect_fail("rc_plan_new: %s", rc_graph_error(g));
        rc_graph_free(g);
        return;
    }
    cr_expect_eq(rc_plan_feed(p, x, (float[6]){0}, 6), RC_OK, "%s", rc_plan_error(p));
    rc_status st = rc_plan_forward(p);
    cr_expect_neq(st, RC_OK, "forward with an unfed input must fail");
    cr_expect_eq(st, RC_ERR_STATE);
    EXPECT_HAS(rc_plan_error(p), "'tokens'");
    EXPECT_HAS(rc_plan_error(p), "fed");
    cr_expect_eq(rc_plan_backward(p, rc_sum(g, y)), RC_ERR_ARG,
                 "a loss built after the plan is not part of it");
    /* once fed it runs */
    cr_expect_eq(rc_plan_feed(p, tok, (int32_t[]){1, 4}, 2), RC_OK, "%s", rc_plan_error(p));
    cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
    const int32_t *tv = rc_plan_value_i32(p, tok);
    cr_expect_not_null(tv);
    if (tv) cr_expect(tv[0] == 1 && tv[1] == 4);
    cr_expect_null(rc_plan_value(p, tok), "an int32 node has no float value");
    rc_plan_free(p);
    rc_graph_free(g);
}

Test(graph, feed_wrong_count)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "inp", RC_F32, 2, (int[]){2, 3});
    rc_node *w = rc_param(g, "W", 2, (int[]){3, 3});
    rc_node *other = rc_input(g, "unused", RC_F32, 1, (int[]){3});
    rc_node *y = rc_matmul(g, x, w);
    rc_plan *p = rc_plan_new(g, 1, &y);
    if (!p) {
        cr_expect_fail("rc_plan_new: %s", rc_graph_error(g));
        rc_graph_free(g);
        return;
    }
    float buf[8] = {0};
    cr_expect_eq(rc_plan_feed(p, x, buf, 5), RC_ERR_ARG);
    EXPECT_HAS(rc_plan_error(p), "'inp'");
    EXPECT_HAS(rc_plan_error(p), "6");
    EXPECT_HAS(rc_plan_error(p), "5");
    cr_expect_eq(rc_plan_feed(p, x, buf, 7), RC_ERR_ARG);
    cr_expect_eq(rc_plan_feed(p, x, NULL, 6), RC_ERR_ARG);
    cr_expect_eq(rc_plan_feed(p, w, buf, 9), RC_ERR_ARG, "a parameter is not fed");
    EXPECT_HAS(rc_plan_error(p), "'W'");
    cr_expect_eq(rc_plan_feed(p, other, buf, 3), RC_ERR_ARG, "an input outside the plan");
    EXPECT_HAS(rc_plan_error(p), "'unused'");
    cr_expect_eq(rc_plan_feed(p, NULL, buf, 3), RC_ERR_ARG);
    /* the failed feeds do not count as fed */
    cr_expect_eq(rc_plan_forward(p), RC_ERR_STATE);
    cr_expect_eq(rc_plan_feed(p, x, buf, 6), RC_OK, "%s", rc_plan_error(p));
    cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
    rc_plan_free(p);
    rc_graph_free(g);
}

Test(graph, backward_before_forward)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){2, 3});
    rc_node *w = rc_param(g, "W", 2, (int[]){3, 2});
    rc_node *loss = rc_sum(g, rc_tanh(g, rc_matmul(g, x, w)));
    rc_plan *p = rc_plan_new(g, 1, &loss);
    if (!p) {
        cr_expect_fail("rc_plan_new: %s", rc_graph_error(g));
        rc_graph_free(g);
        return;
    }
    cr_expect_eq(rc_plan_feed(p, x, (float[6]){1, 2, 3, 4, 5, 6}, 6), RC_OK);
    cr_expect_eq(rc_plan_backward(p, loss), RC_ERR_STATE);
    EXPECT_HAS(rc_plan_error(p), "forward");
    cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
    cr_expect_eq(rc_plan_backward(p, loss), RC_OK, "%s", rc_plan_error(p));
    rc_plan_free(p);
    rc_graph_free(g);
}

Test(graph, backward_failed_forward)
{
    /* an index out of range fails the forward; backward must not run on stale values */
    rc_graph *g = new_graph();
    rc_node *e = rc_param(g, "emb", 2, (int[]){4, 2});
    rc_node *tok = rc_input(g, "tok", RC_I32, 1, (int[]){3});
    rc_node *loss = rc_sum(g, rc_embedding(g, e, tok));
    rc_plan *p = rc_plan_new(g, 1, &loss);
    if (!p) {
        cr_expect_fail("rc_plan_new: %s", rc_graph_error(g));
        rc_graph_free(g);
        return;
    }
    cr_expect_eq(rc_plan_feed(p, tok, (int32_t[]){0, 1, 2}, 3), RC_OK);
    cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
    cr_expect_eq(rc_plan_feed(p, tok, (int32_t[]){0, 9, 2}, 3), RC_OK);
    cr_expect_neq(rc_plan_forward(p), RC_OK);
    EXPECT_HAS(rc_plan_error(p), "embedding");
    EXPECT_HAS(rc_plan_error(p), "9");
    cr_expect_eq(rc_plan_backward(p, loss), RC_ERR_STATE, "backward after a failed forward");
    rc_plan_free(p);
    rc_graph_free(g);
}

Test(graph, backward_from_non_scalar)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){2, 3});
    rc_node *w = rc_param(g, "W", 2, (int[]){3, 2});
    rc_node *h = rc_tanh(g, rc_matmul(g, x, w));
    rc_node_set_name(h, "hidden");
    rc_plan *p = rc_plan_new(g, 1, &h);
    if (!p) {
        cr_expect_fail("rc_plan_new: %s", rc_graph_error(g));
        rc_graph_free(g);
        return;
    }
    cr_expect_eq(rc_plan_feed(p, x, (float[6]){1, 2, 3, 4, 5, 6}, 6), RC_OK);
    cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
    rc_status st = rc_plan_backward(p, h);
    cr_expect_neq(st, RC_OK, "backward from a [2,2] node must fail");
    cr_expect_eq(st, RC_ERR_SHAPE);
    EXPECT_HAS(rc_plan_error(p), "scalar");
    EXPECT_HAS(rc_plan_error(p), "'hidden'");
    EXPECT_HAS(rc_plan_error(p), "[2,2]");
    cr_expect_eq(rc_plan_backward(p, NULL), RC_ERR_ARG);
    rc_plan_free(p);
    rc_graph_free(g);
}

Test(graph, plan_value_of_node_not_in_plan)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 1, (int[]){3});
    rc_node *a = rc_exp(g, x);
    rc_node *b = rc_log(g, x);                  /* not reached from the root */
    rc_plan *p = rc_plan_new(g, 1, &a);
    if (!p) {
        cr_expect_fail("rc_plan_new: %s", rc_graph_error(g));
        rc_graph_free(g);
        return;
    }
    rc_node *c = rc_sqrt(g, a);                 /* built after the plan */
    cr_expect_eq(rc_plan_feed(p, x, (float[3]){1, 2, 3}, 3), RC_OK);
    cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
    cr_expect_not_null(rc_plan_value(p, a));
    cr_expect_not_null(rc_plan_value(p, x));
    cr_expect_null(rc_plan_value(p, b));
    cr_expect_null(rc_plan_value(p, c));
    cr_expect_null(rc_plan_value(p, NULL));
    cr_expect_null(rc_plan_value_i32(p, a), "a float node has no int32 value");
    cr_expect_null(rc_plan_grad(p, b));
    cr_expect_null(rc_plan_grad(p, x), "an input without rc_requires_grad has no gradient");
    cr_expect_null(rc_plan_value(NULL, a));
    cr_expect_eq(rc_plan_backward(p, b), RC_ERR_ARG);
    EXPECT_HAS(rc_plan_error(p), "not part of this plan");
    rc_plan_free(p);
    rc_graph_free(g);
}

Test(graph, plan_new_bad_roots)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 1, (int[]){3});
    rc_plan *p = rc_plan_new(g, 0, &x);
    cr_expect_null(p);
    if (p) rc_plan_free(p);
    EXPECT_GRAPH_ERROR(g, RC_ERR_ARG, "root");
    rc_graph_clear_error(g);
    p = rc_plan_new(g, 2, (rc_node *[]){x, NULL});
    cr_expect_null(p);
    if (p) rc_plan_free(p);
    EXPECT_GRAPH_ERROR(g, RC_ERR_ARG, "root 1", "NULL");
    rc_graph_free(g);
}

Test(graph, requires_grad_only_float_inputs)
{
    rc_graph *g = new_graph();
    rc_node *k = rc_input(g, "ids", RC_I32, 1, (int[]){3});
    cr_expect_eq(rc_requires_grad(k, 1), RC_ERR_ARG);
    EXPECT_GRAPH_ERROR(g, RC_ERR_ARG, "'ids'", "float input");
    rc_graph_clear_error(g);
    rc_node *c = rc_fill(g, 1, (int[]){3}, 1.0f);
    cr_expect_eq(rc_requires_grad(c, 1), RC_ERR_ARG);
    rc_graph_clear_error(g);
    cr_expect_eq(rc_requires_grad(NULL, 1), RC_ERR_ARG);
    rc_node *w = rc_param(g, "W", 1, (int[]){3});
    cr_expect_eq(rc_requires_grad(w, 1), RC_OK);
    rc_graph_free(g);
}

Test(graph, clear_error_lets_building_continue)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){2, 3});
    cr_expect_null(rc_slice(g, x, 2, 4));
    cr_expect_neq(rc_graph_status(g), RC_OK);
    cr_expect_null(rc_tanh(g, x), "building stops after an error");
    rc_graph_clear_error(g);
    cr_expect_eq(rc_graph_status(g), RC_OK);
    cr_expect_str_eq(rc_graph_error(g), "");
    rc_node *w = rc_param(g, "W", 2, (int[]){3, 2});
    rc_node *y = rc_sum(g, rc_tanh(g, rc_matmul(g, x, w)));
    cr_expect_not_null(y, "%s", rc_graph_error(g));
    rc_plan *p = rc_plan_new(g, 1, &y);
    cr_expect_not_null(p, "%s", rc_graph_error(g));
    if (p) {
        float one = 0.5f;
        for (int i = 0; i < 6; i++) rc_param_data(w)[i] = one;
        cr_expect_eq(rc_plan_feed(p, x, (float[6]){1, 0, 0, 0, 1, 0}, 6), RC_OK);
        cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
        const float *v = rc_plan_value(p, y);
        cr_expect_not_null(v);
        if (v) cr_expect_float_eq(v[0], 4.0f * tanhf(0.5f), 1e-6f);
        cr_expect_eq(rc_plan_backward(p, y), RC_OK, "%s", rc_plan_error(p));
        rc_plan_free(p);
    }
    rc_graph_free(g);
}

Test(graph, status_names_and_version)
{
    for (int s = RC_OK; s <= RC_ERR_STATE; s++) {
        const char *n = rc_status_name((rc_status)s);
        cr_expect_not_null(n);
        cr_expect(n && n[0], "status %d has an empty name", s);
    }
    cr_expect_not_null(rc_status_name((rc_status)99));
    cr_expect_str_eq(rc_version(), RC_VERSION_STRING);
    cr_expect_eq(rc_graph_status(NULL), RC_ERR_ARG);
    cr_expect_not_null(rc_graph_error(NULL));
    cr_expect_null(rc_tanh(NULL, NULL));
    cr_expect_null(rc_plan_new(NULL, 0, NULL));
    cr_expect_eq(rc_plan_forward(NULL), RC_ERR_ARG);
    cr_expect_not_null(rc_plan_error(NULL));
    rc_graph_free(NULL);
    rc_plan_free(NULL);
}

Test(graph, long_names_in_messages)
{
    /* messages are bounded: a very long node name is cut, never overflows */
    char name[1200];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    rc_graph *g = new_graph();
    rc_node *a = rc_input(g, name, RC_F32, 2, (int[]){3, 4});
    rc_node *b = rc_param(g, name, 2, (int[]){5, 2});
    cr_expect_str_eq(rc_node_name(a), name);
    cr_expect_null(rc_matmul(g, a, b));
    EXPECT_GRAPH_ERROR(g, RC_ERR_SHAPE, "matmul");
    cr_expect_lt(strlen(rc_graph_error(g)), sizeof name);
    rc_graph_free(g);
}

Test(graph, node_queries)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 3, (int[]){2, 3, 4});
    rc_node *k = rc_input(g, "k", RC_I32, 1, (int[]){5});
    rc_node *m = rc_row_mean(g, x);
    cr_expect_eq(rc_graph_node_count(g), 3);
    cr_expect_eq(rc_graph_node(g, 0), x);
    cr_expect_eq(rc_graph_node(g, 2), m);
    cr_expect_null(rc_graph_node(g, 3));
    cr_expect_null(rc_graph_node(g, -1));
    cr_expect_eq(rc_node_id(m), 2);
    cr_expect_str_eq(rc_node_op(x), "input");
    cr_expect_str_eq(rc_node_op(m), "row_mean");
    cr_expect_str_eq(rc_node_name(m), "");
    cr_expect_eq(rc_node_set_name(m, "mu"), RC_OK);
    cr_expect_str_eq(rc_node_name(m), "mu");
    cr_expect_eq(rc_node_ndim(m), 3);
    cr_expect_eq(rc_node_dim(m, 2), 1);
    cr_expect_eq(rc_node_dim(m, 3), 0);
    cr_expect_eq(rc_node_size(m), 6);
    cr_expect_eq(rc_node_dtype(k), RC_I32);
    cr_expect_null(rc_param_data(x), "an input has no storage of its own");
    cr_expect_eq(rc_node_ndim(NULL), 0);
    rc_graph_free(g);
}

Test(graph, two_roots_backward_from_either)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){2, 2});
    rc_node *w = rc_param(g, "W", 2, (int[]){2, 2});
    rc_node *v = rc_param(g, "V", 1, (int[]){2});
    rc_node *l1 = rc_sum(g, rc_matmul(g, x, w));
    rc_node *l2 = rc_sum(g, rc_mul(g, x, v));
    rc_plan *p = rc_plan_new(g, 2, (rc_node *[]){l1, l2});
    if (!p) {
        cr_expect_fail("rc_plan_new: %s", rc_graph_error(g));
        rc_graph_free(g);
        return;
    }
    for (int i = 0; i < 4; i++) rc_param_data(w)[i] = 1.0f;
    rc_param_data(v)[0] = 2.0f;
    rc_param_data(v)[1] = 3.0f;
    float xd[4] = {1, 2, 3, 4};
    cr_expect_eq(rc_plan_feed(p, x, xd, 4), RC_OK);
    cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
    const float *v1 = rc_plan_value(p, l1), *v2 = rc_plan_value(p, l2);
    cr_expect(v1 && v1[0] == 20.0f, "sum(x W) = %g", v1 ? v1[0] : NAN);
    cr_expect(v2 && v2[0] == 1 * 2 + 2 * 3 + 3 * 2 + 4 * 3, "sum(x * v) = %g", v2 ? v2[0] : NAN);
    /* from l1: W gets x's column sums per row of W, V gets nothing */
    cr_expect_eq(rc_plan_backward(p, l1), RC_OK, "%s", rc_plan_error(p));
    const float *gw = rc_plan_grad(p, w), *gv = rc_plan_grad(p, v);
    if (!gw || !gv) {
        cr_expect_fail("no gradient for W or V");
        rc_plan_free(p);
        rc_graph_free(g);
        return;
    }
    cr_expect(gw[0] == 4 && gw[1] == 4 && gw[2] == 6 && gw[3] == 6, "dl1/dW %g %g %g %g", gw[0],
              gw[1], gw[2], gw[3]);
    cr_expect(gv[0] == 0 && gv[1] == 0, "dl1/dV must be 0: %g %g", gv[0], gv[1]);
    /* from l2: the gradient of l1 is gone */
    cr_expect_eq(rc_plan_backward(p, l2), RC_OK, "%s", rc_plan_error(p));
    cr_expect(gw[0] == 0 && gw[1] == 0 && gw[2] == 0 && gw[3] == 0, "dl2/dW must be 0");
    cr_expect(gv[0] == 4 && gv[1] == 6, "dl2/dV %g %g", gv[0], gv[1]);
    /* and back */
    cr_expect_eq(rc_plan_backward(p, l1), RC_OK, "%s", rc_plan_error(p));
    cr_expect(gw[0] == 4 && gv[0] == 0);
    rc_plan_free(p);
    rc_graph_free(g);
}

Test(graph, long_chain)
{
    /* a long unrolled chain: plan building must not recurse per node */
    enum { LEN = 20000 };
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 1, (int[]){2});
    rc_requires_grad(x, 1);
    rc_node *h = x;
    for (int i = 0; i < LEN && h; i++) h = rc_scale(g, h, (i & 1) ? 2.0f : 0.5f);
    rc_node *loss = rc_sum(g, h);
    /* without elementwise fusion, which would merge the chain into a few fused ops */
    rc_plan *p = loss ? rc_plan_new_ex(g, 1, &loss, RC_PLAN_NO_EW_FUSION) : NULL;
    cr_expect_not_null(p, "%s", rc_graph_error(g));
    if (p) {
        cr_expect_eq(rc_plan_length(p), LEN + 1);
        cr_expect_eq(rc_plan_feed(p, x, (float[2]){1.5f, -3.0f}, 2), RC_OK);
        cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
        cr_expect_eq(rc_plan_backward(p, loss), RC_OK, "%s", rc_plan_error(p));
        const float *l = rc_plan_value(p, loss), *gx = rc_plan_grad(p, x);
        cr_expect(l && l[0] == -1.5f, "loss %g", l ? l[0] : NAN);
        cr_expect(gx && gx[0] == 1.0f && gx[1] == 1.0f, "gradient %g %g", gx ? gx[0] : NAN,
                  gx ? gx[1] : NAN);
        rc_plan_free(p);
    }
    rc_graph_free(g);
}

/* ---- composite graphs: gradient checks -------------------------------------------------- */

/* A 2-layer MLP: loss = mean(softmax_xent(tanh(x W1 + b1) W2 + b2, y)). */
typedef struct mlp {
    int n, d, h, c;
    rc_node *x, *y, *w1, *b1, *w2, *b2, *hid, *logits, *loss;
} mlp;

static void mlp_build(rc_graph *g, mlp *m, int n, int d, int h, int c, float drop)
{
    m->n = n, m->d = d, m->h = h, m->c = c;
    m->x = rc_input(g, "x", RC_F32, 2, (int[]){n, d});
    m->y = rc_input(g, "y", RC_I32, 1, (int[]){n});
    m->w1 = rc_param(g, "W1", 2, (int[]){d, h});
    m->b1 = rc_param(g, "b1", 1, (int[]){h});
    m->w2 = rc_param(g, "W2", 2, (int[]){h, c});
    m->b2 = rc_param(g, "b2", 1, (int[]){c});
    m->hid = rc_tanh(g, rc_add(g, rc_matmul(g, m->x, m->w1), m->b1));
    rc_node *h2 = drop > 0 ? rc_dropout(g, m->hid, drop, 1234) : m->hid;
    m->logits = rc_add(g, rc_matmul(g, h2, m->w2), m->b2);
    m->loss = rc_mean(g, rc_softmax_xent(g, m->logits, m->y));
    cr_expect_not_null(m->loss, "building the MLP: %s", rc_graph_error(g));
}

static void mlp_init(uint64_t *s, mlp *m)
{
    float sc1 = 1.0f / sqrtf((float)m->d), sc2 = 1.0f / sqrtf((float)m->h);
    g_fill_param(s, m->w1, -sc1, sc1);
    g_fill_param(s, m->b1, -0.5f, 0.5f);
    g_fill_param(s, m->w2, -2 * sc2, 2 * sc2);
    g_fill_param(s, m->b2, -0.5f, 0.5f);
}

/* Feeds random x and y; returns 0 on success. */
static int mlp_feed(uint64_t *s, rc_plan *p, mlp *m, float *x, int32_t *y)
{
    g_fill(s, x, (size_t)m->n * m->d, -1.5f, 1.5f);
    for (int i = 0; i < m->n; i++) y[i] = (int32_t)(g_next(s) % (uint64_t)m->c);
    rc_status a = rc_plan_feed(p, m->x, x, (size_t)m->n * m->d);
    rc_status b = rc_plan_feed(p, m->y, y, (size_t)m->n);
    cr_expect_eq(a, RC_OK, "%s", rc_plan_error(p));
    cr_expect_eq(b, RC_OK, "%s", rc_plan_error(p));
    return a == RC_OK && b == RC_OK ? 0 : -1;
}

/* The MLP loss computed here in double precision. */
static double mlp_reference_loss(mlp *m, const float *x, const int32_t *y)
{
    const float *w1 = rc_param_data(m->w1), *b1 = rc_param_data(m->b1);
    const float *w2 = rc_param_data(m->w2), *b2 = rc_param_data(m->b2);
    double total = 0;
    double hid[64], lo[64];
    for (int i = 0; i < m->n; i++) {
        for (int j = 0; j < m->h; j++) {
            double a = b1[j];
            for (int k = 0; k < m->d; k++) a += (double)x[i * m->d + k] * w1[k * m->h + j];
            hid[j] = tanh(a);
        }
        double mx = -1e300;
        for (int c = 0; c < m->c; c++) {
            double a = b2[c];
            for (int j = 0; j < m->h; j++) a += hid[j] * w2[j * m->c + c];
            lo[c] = a;
            mx = fmax(mx, a);
        }
        double se = 0;
        for (int c = 0; c < m->c; c++) se += exp(lo[c] - mx);
        total += mx + log(se) - lo[y[i]];
    }
    return total / m->n;
}

Test(autodiff, mlp_gradcheck)
{
    uint64_t s = 2024;
    rc_graph *g = new_graph();
    mlp m;
    mlp_build(g, &m, 4, 5, 6, 3, 0);
    cr_expect_eq(rc_requires_grad(m.x, 1), RC_OK);
    mlp_init(&s, &m);
    rc_plan *p = m.loss ? rc_plan_new(g, 1, &m.loss) : NULL;
    cr_expect_not_null(p, "%s", rc_graph_error(g));
    if (p) {
        float x[20];
        int32_t y[4];
        if (mlp_feed(&s, p, &m, x, y) == 0) {
            cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
            const float *l = rc_plan_value(p, m.loss);
            double want = mlp_reference_loss(&m, x, y);
            cr_expect(l && fabs(l[0] - want) <= 1e-5 * (1 + fabs(want)),
                      "MLP loss %g, reference %g", l ? l[0] : NAN, want);
            rc_node *wrt[5] = {m.w1, m.b1, m.w2, m.b2, m.x};
            const char *names[5] = {"W1", "b1", "W2", "b2", "x"};
            for (int k = 0; k < 5; k++) {
                double err = -1;
                rc_status st = rc_gradcheck(p, m.loss, 1, &wrt[k], GC_EPS, &err);
                cr_expect_eq(st, RC_OK, "gradcheck %s: %s", names[k], rc_plan_error(p));
                cr_expect(err >= 0 && err < GC_TOL, "MLP gradient of %s: error %g", names[k], err);
            }
            double err = -1;
            cr_expect_eq(rc_gradcheck(p, m.loss, 5, wrt, GC_EPS, &err), RC_OK, "%s",
                         rc_plan_error(p));
            cr_expect(err >= 0 && err < GC_TOL, "MLP gradient of all five: error %g", err);
            /* gradcheck restores the values */
            const float *xv = rc_plan_value(p, m.x);
            cr_expect(xv && memcmp(xv, x, sizeof x) == 0, "gradcheck must restore the input");
            l = rc_plan_value(p, m.loss);
            cr_expect(l && fabs(l[0] - want) <= 1e-5 * (1 + fabs(want)),
                      "loss after gradcheck %g, reference %g", l ? l[0] : NAN, want);
        }
        rc_plan_free(p);
    }
    rc_graph_free(g);
}

Test(autodiff, mlp_with_dropout_gradcheck)
{
    uint64_t s = 77;
    rc_graph *g = new_graph();
    mlp m;
    mlp_build(g, &m, 4, 5, 8, 3, 0.3f);
    mlp_init(&s, &m);
    rc_plan *p = m.loss ? rc_plan_new(g, 1, &m.loss) : NULL;
    cr_expect_not_null(p, "%s", rc_graph_error(g));
    if (p) {
        float x[20];
        int32_t y[4];
        if (mlp_feed(&s, p, &m, x, y) == 0) {
            rc_node *wrt[4] = {m.w1, m.b1, m.w2, m.b2};
            double err = -1;
            cr_expect_eq(rc_gradcheck(p, m.loss, 4, wrt, GC_EPS, &err), RC_OK, "%s",
                         rc_plan_error(p));
            cr_expect(err >= 0 && err < GC_TOL, "MLP with dropout: error %g", err);
        }
        rc_plan_free(p);
    }
    rc_graph_free(g);
}

/* loss = sum(cw * tanh(tanh(x Wa) Wb)); with shared == 1 Wa and Wb are one parameter
 * "W" (asked for twice by name), otherwise two parameters with the same values. */
typedef struct twice {
    rc_graph *g;
    rc_node *x, *wa, *wb, *loss;
    rc_plan *p;
} twice;

static int twice_build(twice *t, int shared, const float *w, const float *x, const float *cw)
{
    memset(t, 0, sizeof *t);
    t->g = new_graph();
    rc_graph *g = t->g;
    t->x = rc_input(g, "x", RC_F32, 2, (int[]){3, 4});
    t->wa = rc_param(g, shared ? "W" : "W_a", 2, (int[]){4, 4});
    t->wb = rc_param(g, shared ? "W" : "W_b", 2, (int[]){4, 4});
    rc_node *c = rc_const(g, 2, (int[]){3, 4}, cw);
    rc_node *h1 = rc_tanh(g, rc_matmul(g, t->x, t->wa));
    rc_node *h2 = rc_tanh(g, rc_matmul(g, h1, t->wb));
    t->loss = rc_sum(g, rc_mul(g, h2, c));
    cr_expect_not_null(t->loss, "%s", rc_graph_error(g));
    if (!t->loss) return -1;
    cr_expect_eq(shared, t->wa == t->wb, "rc_param by name: shared %d", shared);
    memcpy(rc_param_data(t->wa), w, 16 * sizeof(float));
    memcpy(rc_param_data(t->wb), w, 16 * sizeof(float));
    t->p = rc_plan_new(g, 1, &t->loss);
    cr_expect_not_null(t->p, "%s", rc_graph_error(g));
    if (!t->p) return -1;
    if (rc_plan_feed(t->p, t->x, x, 12) != RC_OK || rc_plan_forward(t->p) != RC_OK ||
        rc_plan_backward(t->p, t->loss) != RC_OK) {
        cr_expect_fail("running the graph: %s", rc_plan_error(t->p));
        return -1;
    }
    return 0;
}

static void twice_free(twice *t)
{
    if (t->p) rc_plan_free(t->p);
    rc_graph_free(t->g);
}

Test(autodiff, shared_param_gradient_is_sum_of_uses)
{
    uint64_t s = 5;
    float w[16], x[12], cw[12];
    g_fill(&s, w, 16, -0.8f, 0.8f);
    g_fill(&s, x, 12, -1.5f, 1.5f);
    g_fill(&s, cw, 12, -1.0f, 1.0f);
    twice a, b;
    int ra = twice_build(&a, 1, w, x, cw);
    int rb = twice_build(&b, 0, w, x, cw);
    if (ra == 0 && rb == 0) {
        const float *la = rc_plan_value(a.p, a.loss), *lb = rc_plan_value(b.p, b.loss);
        cr_expect(la && lb && la[0] == lb[0], "the two graphs compute the same loss");
        const float *gs = rc_plan_grad(a.p, a.wa);
        const float *g1 = rc_plan_grad(b.p, b.wa), *g2 = rc_plan_grad(b.p, b.wb);
        cr_expect(gs && g1 && g2, "gradients of the parameters");
        if (gs && g1 && g2) {
            double maxg = 0, maxd = 0, max1 = 0, max2 = 0;
            for (int i = 0; i < 16; i++) {
                double sum = (double)g1[i] + g2[i];
                maxd = fmax(maxd, fabs(gs[i] - sum));
                maxg = fmax(maxg, fabs(sum));
                max1 = fmax(max1, fabs(g1[i]));
                max2 = fmax(max2, fabs(g2[i]));
            }
            cr_expect(max1 > 1e-3 && max2 > 1e-3, "both uses contribute (%g, %g)", max1, max2);
            cr_expect(maxd <= 1e-5 * (1 + maxg),
                      "shared gradient differs from the sum of both uses by %g", maxd);
        }
        double err = -1;
        cr_expect_eq(rc_gradcheck(a.p, a.loss, 1, &a.wa, GC_EPS, &err), RC_OK, "%s",
                     rc_plan_error(a.p));
        cr_expect(err >= 0 && err < GC_TOL, "shared parameter: error %g", err);
        rc_node *wrt[2] = {b.wa, b.wb};
        err = -1;
        cr_expect_eq(rc_gradcheck(b.p, b.loss, 2, wrt, GC_EPS, &err), RC_OK, "%s",
                     rc_plan_error(b.p));
        cr_expect(err >= 0 && err < GC_TOL, "separate parameters: error %g", err);
    }
    twice_free(&a);
    twice_free(&b);
}

Test(autodiff, same_node_both_operands)
{
    /* x * x and x + x: one node reached twice by one op */
    uint64_t s = 9;
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){2, 3});
    rc_requires_grad(x, 1);
    rc_node *loss = rc_sum(g, rc_add(g, rc_mul(g, x, x), rc_add(g, x, x)));
    rc_plan *p = loss ? rc_plan_new(g, 1, &loss) : NULL;
    cr_expect_not_null(p, "%s", rc_graph_error(g));
    if (p) {
        float xd[6];
        g_fill(&s, xd, 6, -2, 2);
        cr_expect_eq(rc_plan_feed(p, x, xd, 6), RC_OK);
        cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
        cr_expect_eq(rc_plan_backward(p, loss), RC_OK, "%s", rc_plan_error(p));
        const float *gx = rc_plan_grad(p, x);
        cr_expect_not_null(gx);
        if (gx)
            for (int i = 0; i < 6; i++)
                cr_expect_float_eq(gx[i], 2 * xd[i] + 2, 1e-5f, "d/dx %d: %g", i, gx[i]);
        rc_plan_free(p);
    }
    rc_graph_free(g);
}

Test(autodiff, layer_norm_gradcheck)
{
    enum { R = 3, C = 5 };
    uint64_t s = 31;
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){R, C});
    rc_requires_grad(x, 1);
    rc_node *gain = rc_param(g, "gain", 1, (int[]){C});
    rc_node *bias = rc_param(g, "bias", 1, (int[]){C});
    rc_node *epsc = rc_fill(g, 1, S1, 1e-3f);
    rc_node *mu = rc_row_mean(g, x);
    rc_node *var = rc_row_var(g, x);
    rc_node *norm = rc_div(g, rc_sub(g, x, mu), rc_sqrt(g, rc_add(g, var, epsc)));
    rc_node *out = rc_add(g, rc_mul(g, norm, gain), bias);
    rc_node *target = rc_const(g, 2, (int[]){R, C}, NULL);
    rc_node *loss = rc_mean(g, rc_mse(g, out, target));
    cr_expect_not_null(loss, "%s", rc_graph_error(g));
    rc_plan *p = loss ? rc_plan_new(g, 2, (rc_node *[]){ loss, norm }) : NULL;   /* norm is read below */
    cr_expect_not_null(p, "%s", rc_graph_error(g));
    if (p) {
        float xd[R * C];
        g_fill(&s, xd, R * C, -2, 2);
        g_fill_param(&s, gain, 0.5f, 1.5f);
        g_fill_param(&s, bias, -0.5f, 0.5f);
        g_fill_param(&s, target, -1.0f, 1.0f);
        cr_expect_eq(rc_plan_feed(p, x, xd, R * C), RC_OK);
        cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
        /* the normalised rows have mean 0 and variance var / (var + eps) */
        const float *nv = rc_plan_value(p, norm);
        cr_expect_not_null(nv);
        for (int r = 0; nv && r < R; r++) {
            double m = 0, v = 0, mx = 0, vx = 0;
            for (int c = 0; c < C; c++) mx += xd[r * C + c] / (double)C;
            for (int c = 0; c < C; c++) vx += pow(xd[r * C + c] - mx, 2) / C;
            for (int c = 0; c < C; c++) m += nv[r * C + c] / (double)C;
            for (int c = 0; c < C; c++) v += pow(nv[r * C + c] - m, 2) / C;
            cr_expect(fabs(m) < 1e-5, "row %d mean %g", r, m);
            cr_expect(fabs(v - vx / (vx + 1e-3)) < 1e-4, "row %d variance %g, want %g", r, v,
                      vx / (vx + 1e-3));
        }
        rc_node *wrt[3] = {x, gain, bias};
        const char *names[3] = {"x", "gain", "bias"};
        for (int k = 0; k < 3; k++) {
            double err = -1;
            cr_expect_eq(rc_gradcheck(p, loss, 1, &wrt[k], GC_EPS, &err), RC_OK, "%s",
                         rc_plan_error(p));
            cr_expect(err >= 0 && err < GC_TOL, "layer norm gradient of %s: error %g", names[k], err);
        }
        rc_plan_free(p);
    }
    rc_graph_free(g);
}

Test(autodiff, forward_decl_gradcheck)
{
    /* a declared "previous state" defined later: gradients flow through it */
    uint64_t s = 3;
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){2, 3});
    rc_node *w = rc_param(g, "W", 2, (int[]){3, 3});
    rc_node *prev = rc_forward_decl(g, "prev", 2, (int[]){2, 3});
    rc_node *h = rc_tanh(g, rc_add(g, rc_matmul(g, prev, w), x));
    rc_node *h0 = rc_sigmoid(g, rc_matmul(g, x, w));
    cr_expect_eq(rc_define(g, prev, h0), RC_OK, "%s", rc_graph_error(g));
    rc_node *loss = rc_sum(g, rc_mul(g, h, h));
    /* intermediate gradients are readable only without buffer planning */
    rc_plan *p = loss ? rc_plan_new_ex(g, 1, &loss, RC_PLAN_NO_BUFFER_PLAN) : NULL;
    cr_expect_not_null(p, "%s", rc_graph_error(g));
    if (p) {
        float xd[6];
        g_fill(&s, xd, 6, -1, 1);
        g_fill_param(&s, w, -1, 1);
        cr_expect_eq(rc_plan_feed(p, x, xd, 6), RC_OK);
        double err = -1;
        cr_expect_eq(rc_gradcheck(p, loss, 1, &w, GC_EPS, &err), RC_OK, "%s", rc_plan_error(p));
        cr_expect(err >= 0 && err < GC_TOL, "through a forward declaration: error %g", err);
        const float *gp = rc_plan_grad(p, prev), *gh0 = rc_plan_grad(p, h0);
        cr_expect(gp && gp == gh0, "a declaration's gradient is its definition's");
        rc_plan_free(p);
    }
    rc_graph_free(g);
}

/* ---- reproducibility ----------------------------------------------------------------- */

/* Runs forward + backward of a mid-sized MLP (big enough to use the threaded
 * loops and a multi-threaded sgemm) in a fresh graph; copies loss and gradients. */
static int mlp_run_copy(uint64_t seed, float drop, float *loss, float *grads, size_t *ng)
{
    uint64_t s = seed;
    rc_graph *g = new_graph();
    mlp m;
    mlp_build(g, &m, 256, 160, 64, 10, drop);
    mlp_init(&s, &m);
    rc_requires_grad(m.x, 1);
    rc_plan *p = m.loss ? rc_plan_new(g, 1, &m.loss) : NULL;
    cr_expect_not_null(p, "%s", rc_graph_error(g));
    int rc = -1;
    float *x = malloc(256 * 160 * sizeof *x);
    int32_t *y = malloc(256 * sizeof *y);
    if (p && x && y && mlp_feed(&s, p, &m, x, y) == 0) {
        rc_status a = rc_plan_forward(p), b = a == RC_OK ? rc_plan_backward(p, m.loss) : a;
        cr_expect_eq(b, RC_OK, "%s", rc_plan_error(p));
        if (b == RC_OK) {
            rc_node *wrt[5] = {m.w1, m.b1, m.w2, m.b2, m.x};
            size_t k = 0;
            *loss = rc_plan_value(p, m.loss)[0];
            for (int i = 0; i < 5; i++) {
                size_t n = rc_node_size(wrt[i]);
                memcpy(grads + k, rc_plan_grad(p, wrt[i]), n * sizeof(float));
                k += n;
            }
            *ng = k;
            rc = 0;
        }
    }
    free(x);
    free(y);
    if (p) rc_plan_free(p);
    rc_graph_free(g);
    return rc;
}

#define MLP_BIG_GRADS (160 * 64 + 64 + 64 * 10 + 10 + 256 * 160)

static void expect_reproducible(float drop)
{
    float *ga = calloc(MLP_BIG_GRADS, sizeof *ga), *gb = calloc(MLP_BIG_GRADS, sizeof *gb);
    if (!ga || !gb) {
        free(ga);
        free(gb);
        cr_assert_fail("out of memory");
    }
    float la = 0, lb = 1;
    size_t na = 0, nb = 0;
    int ra = mlp_run_copy(42, drop, &la, ga, &na);
    int rb = mlp_run_copy(42, drop, &lb, gb, &nb);
    cr_expect(ra == 0 && rb == 0);
    cr_expect_eq(na, (size_t)MLP_BIG_GRADS);
    cr_expect_eq(nb, na);
    cr_expect(memcmp(&la, &lb, sizeof la) == 0, "losses %.9g and %.9g differ", la, lb);
    cr_expect(memcmp(ga, gb, MLP_BIG_GRADS * sizeof *ga) == 0, "gradients differ between runs");
    free(ga);
    free(gb);
}

Test(autodiff, reproducible_gradients)
{
    expect_reproducible(0);
}

Test(autodiff, reproducible_gradients_with_dropout)
{
    expect_reproducible(0.25f);
}

Test(autodiff, repeated_backward_same_plan_identical)
{
    /* the same plan: forward + backward twice on the same data gives the same bits,
     * so gradients are overwritten, never accumulated */
    uint64_t s = 8;
    rc_graph *g = new_graph();
    mlp m;
    mlp_build(g, &m, 64, 40, 32, 5, 0);
    mlp_init(&s, &m);
    rc_plan *p = m.loss ? rc_plan_new(g, 1, &m.loss) : NULL;
    cr_expect_not_null(p, "%s", rc_graph_error(g));
    float *x = malloc(64 * 40 * sizeof *x), *g1 = malloc(40 * 32 * sizeof *g1);
    int32_t y[64];
    if (p && x && g1 && mlp_feed(&s, p, &m, x, y) == 0) {
        cr_expect_eq(rc_plan_forward(p), RC_OK);
        cr_expect_eq(rc_plan_backward(p, m.loss), RC_OK);
        const float *gw = rc_plan_grad(p, m.w1);
        cr_expect_not_null(gw);
        if (gw) {
            memcpy(g1, gw, 40 * 32 * sizeof *g1);
            cr_expect_eq(rc_plan_forward(p), RC_OK);
            cr_expect_eq(rc_plan_backward(p, m.loss), RC_OK);
            cr_expect(memcmp(g1, rc_plan_grad(p, m.w1), 40 * 32 * sizeof *g1) == 0,
                      "second backward differs from the first");
            cr_expect_eq(rc_plan_backward(p, m.loss), RC_OK);
            cr_expect(memcmp(g1, rc_plan_grad(p, m.w1), 40 * 32 * sizeof *g1) == 0,
                      "a backward repeated without forward accumulates");
        }
    }
    free(x);
    free(g1);
    if (p) rc_plan_free(p);
    rc_graph_free(g);
}

/* ---- plans run repeatedly; plan facts; BLAS and threads ------------------------------- */

Test(graph, plan_runs_repeatedly_with_new_data)
{
    enum { N = 4, D = 3, H = 2 };
    uint64_t s = 100;
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){N, D});
    rc_node *w = rc_param(g, "W", 2, (int[]){D, H});
    rc_node *b = rc_param(g, "b", 1, (int[]){H});
    rc_node *y = rc_tanh(g, rc_add(g, rc_matmul(g, x, w), b));
    rc_node *loss = rc_sum(g, y);
    rc_plan *p = loss ? rc_plan_new(g, 1, &loss) : NULL;
    if (!p) {
        cr_expect_fail("rc_plan_new: %s", rc_graph_error(g));
        rc_graph_free(g);
        return;
    }
    g_fill_param(&s, w, -1, 1);
    g_fill_param(&s, b, -0.5f, 0.5f);
    const float *wd = rc_param_data(w), *bd = rc_param_data(b);
    float prev_loss = NAN;
    for (int it = 0; it < 3; it++) {
        float xd[N * D];
        g_fill(&s, xd, N * D, -2, 2);
        cr_expect_eq(rc_plan_feed(p, x, xd, N * D), RC_OK);
        cr_expect_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
        cr_expect_eq(rc_plan_backward(p, loss), RC_OK, "%s", rc_plan_error(p));
        const float *yv = rc_plan_value(p, y), *lv = rc_plan_value(p, loss);
        const float *gw = rc_plan_grad(p, w), *gb = rc_plan_grad(p, b);
        if (!yv || !lv || !gw || !gb) {
            cr_expect_fail("run %d: missing values or gradients", it);
            break;
        }
        double want_loss = 0, want_gb[H] = {0}, want_gw[D * H] = {0};
        for (int i = 0; i < N; i++)
            for (int j = 0; j < H; j++) {
                double a = bd[j];
                for (int k = 0; k < D; k++) a += (double)xd[i * D + k] * wd[k * H + j];
                double t = tanh(a), dt = 1 - t * t;
                cr_expect(fabs(yv[i * H + j] - t) < 1e-5, "run %d y[%d,%d] %g, want %g", it, i, j,
                          yv[i * H + j], t);
                want_loss += t;
                want_gb[j] += dt;
                for (int k = 0; k < D; k++) want_gw[k * H + j] += xd[i * D + k] * dt;
            }
        cr_expect(fabs(lv[0] - want_loss) < 1e-5 * (1 + fabs(want_loss)), "run %d loss %g, want %g",
                  it, lv[0], want_loss);
        for (int j = 0; j < H; j++)
            cr_expect(fabs(gb[j] - want_gb[j]) < 1e-5 * (1 + fabs(want_gb[j])),
                      "run %d db[%d] %g, want %g", it, j, gb[j], want_gb[j]);
        for (int k = 0; k < D * H; k++)
            cr_expect(fabs(gw[k] - want_gw[k]) < 1e-5 * (1 + fabs(want_gw[k])),
                      "run %d dW[%d] %g, want %g", it, k, gw[k], want_gw[k]);
        cr_expect(lv[0] != prev_loss, "run %d: the loss did not change with new data", it);
        prev_loss = lv[0];
    }
    rc_plan_free(p);
    rc_graph_free(g);
}

Test(graph, plan_length_flops_arena)
{
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 2, (int[]){4, 5});
    rc_node *w = rc_param(g, "W", 2, (int[]){5, 6});
    rc_node *mm = rc_matmul(g, x, w);
    rc_node *unused = rc_exp(g, x);
    (void)unused;
    rc_node *loss = rc_sum(g, rc_tanh(g, mm));
    rc_plan *p = loss ? rc_plan_new(g, 1, &loss) : NULL;
    if (!p) {
        cr_expect_fail("rc_plan_new: %s", rc_graph_error(g));
        rc_graph_free(g);
        return;
    }
    cr_expect_eq(rc_plan_length(p), 3, "matmul, tanh, sum: the unused exp is not on the tape");
    cr_expect_gt(rc_plan_flops(p), 0.0);
    cr_expect_geq(rc_plan_flops(p), 2.0 * 4 * 5 * 6, "a [4,5]x[5,6] matmul alone is 240 FLOPs");
    cr_expect_gt(rc_plan_arena_bytes(p), (size_t)0);
    cr_expect_eq(rc_plan_length(NULL), 0);
    rc_plan_free(p);
    rc_graph_free(g);
}

Test(graph, blas_is_openmp_build)
{
    const char *cfg = rc_blas_config();
    cr_expect_not_null(cfg);
    cr_expect_eq(rc_blas_check(), RC_OK, "the linked OpenBLAS is not its OpenMP build: \"%s\"",
                 cfg ? cfg : "");
    EXPECT_HAS(cfg, "USE_OPENMP");
}

/* Loss and W1 gradient of a mid-sized MLP (same seed every time), big enough for
 * the threaded loops and a threaded sgemm. */
static int run_mid_mlp(float *loss, float *gw1, size_t ngw1)
{
    uint64_t s = 555;
    rc_graph *g = new_graph();
    mlp m;
    mlp_build(g, &m, 256, 160, 64, 10, 0);
    mlp_init(&s, &m);
    rc_plan *p = m.loss ? rc_plan_new(g, 1, &m.loss) : NULL;
    cr_expect_not_null(p, "%s", rc_graph_error(g));
    int rc = -1;
    float *x = malloc(256 * 160 * sizeof *x);
    int32_t *y = malloc(256 * sizeof *y);
    if (p && x && y && mlp_feed(&s, p, &m, x, y) == 0 && rc_plan_forward(p) == RC_OK &&
        rc_plan_backward(p, m.loss) == RC_OK && ngw1 == rc_node_size(m.w1)) {
        *loss = rc_plan_value(p, m.loss)[0];
        memcpy(gw1, rc_plan_grad(p, m.w1), ngw1 * sizeof *gw1);
        rc = 0;
    }
    free(x);
    free(y);
    if (p) rc_plan_free(p);
    rc_graph_free(g);
    return rc;
}

Test(graph, single_thread_identical_runs)
{
    /* rc_num_threads() first, so that the library's one-time setup has run and the
     * count of 1 is the one in effect (see set_num_threads_before_first_use) */
    (void)rc_num_threads();
    cr_expect_eq(rc_set_num_threads(1), 1);
    cr_expect_eq(rc_num_threads(), 1);
    enum { NG = 160 * 64 };
    float *a = calloc(NG, sizeof *a), *b = calloc(NG, sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        cr_assert_fail("out of memory");
    }
    float la = 0, lb = 1;
    cr_expect_eq(run_mid_mlp(&la, a, NG), 0);
    cr_expect_eq(run_mid_mlp(&lb, b, NG), 0);
    cr_expect_eq(rc_num_threads(), 1);
    cr_expect(memcmp(&la, &lb, sizeof la) == 0, "1-thread losses %.9g and %.9g differ", la, lb);
    cr_expect(memcmp(a, b, NG * sizeof *a) == 0, "1-thread gradients differ between runs");
    free(a);
    free(b);
}

Test(graph, set_num_threads_before_first_use)
{
    /* the first call of a fresh process (Criterion runs each test in its own) must
     * not be undone by the library's one-time setup from RC_NUM_THREADS / all cores */
    cr_expect_eq(rc_set_num_threads(1), 1);
    cr_expect_eq(rc_num_threads(), 1, "rc_set_num_threads(1) then rc_num_threads() gives %d",
                 rc_num_threads());
    rc_graph *g = new_graph();
    rc_node *x = rc_input(g, "x", RC_F32, 1, (int[]){3});
    rc_node *y = rc_exp(g, x);
    rc_plan *p = rc_plan_new(g, 1, &y);
    cr_expect_not_null(p, "%s", rc_graph_error(g));
    cr_expect_eq(rc_num_threads(), 1, "after rc_plan_new the thread count is %d, not 1",
                 rc_num_threads());
    if (p) rc_plan_free(p);
    rc_graph_free(g);
}

Test(graph, set_num_threads)
{
    int all = rc_set_num_threads(0);
    cr_expect_geq(all, 1);
    cr_expect_eq(rc_num_threads(), all);
    cr_expect_eq(rc_set_num_threads(2), 2);
    cr_expect_eq(rc_num_threads(), 2);
    cr_expect_eq(rc_set_num_threads(-3), all);
}

/* Absurd counts are bounded (5000 threads hung in OpenBLAS's buffer allocation under a
 * memory limit): RC_THREADS_PER_CORE per core online at most. */
Test(graph, set_num_threads_is_bounded)
{
    int most = rc_max_threads();
    cr_expect_geq(most, RC_THREADS_PER_CORE);
    cr_expect_eq(rc_set_num_threads(most), most);
    cr_expect_eq(rc_set_num_threads(most + 1), most);
    cr_expect_eq(rc_set_num_threads(1 << 30), most);
    cr_expect_eq(rc_num_threads(), most);
    cr_expect_eq(rc_set_num_threads(1), 1);
}

/* RC_NUM_THREADS, read at the library's first use, follows the same bound; a value that
 * is not a count means all cores, as unset. */
Test(graph, num_threads_env_is_bounded)
{
    setenv("RC_NUM_THREADS", "5000000", 1);
    cr_expect_eq(rc_num_threads(), rc_max_threads(), "RC_NUM_THREADS=5000000 gave %d threads", rc_num_threads());
}

Test(graph, num_threads_env_not_a_count)
{
    setenv("RC_NUM_THREADS", "12abc", 1);
    cr_expect_eq(rc_num_threads(), omp_get_num_procs(), "RC_NUM_THREADS=12abc gave %d threads", rc_num_threads());
}

/* rc_idle_cores sees other processes' work: with every core busy it leaves one core;
 * its result is always within 1 .. the cores this process may use. */
Test(graph, idle_cores_see_busy_processes)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    cr_assert(online >= 1 && online <= 64, "online cores: %ld", online);
    int any = rc_idle_cores(NAN), allowed = omp_get_num_procs();
    cr_expect(any >= 1 && any <= allowed, "rc_idle_cores(NaN) gave %d of %d", any, allowed);
    if (online < 2) cr_skip_test("one core: always 1");
    pid_t busy[64];
    for (long i = 0; i < online; i++) {
        busy[i] = fork();
        cr_assert_geq(busy[i], 0, "fork");
        if (busy[i] == 0)
            for (volatile unsigned long k = 0;; k++) {}
    }
    int idle = rc_idle_cores(0.3);
    for (long i = 0; i < online; i++) kill(busy[i], SIGKILL);
    for (long i = 0; i < online; i++) waitpid(busy[i], NULL, 0);
    cr_expect_eq(idle, 1, "%ld busy processes on %ld cores, yet rc_idle_cores gave %d", online, online, idle);
}
