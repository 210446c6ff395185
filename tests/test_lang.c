/* Tests of the cell language (cells/lang_*.c, docs/CELLS.md), suite `lang`:
 *
 *  - shipped_cells_parse: every shipped cell (cells/lib) loads (own hidden size and an
 *    override), with the C cell's name, states and sizes, and its source kept.
 *  - same_graph_*: each shipped cell against its C definition (rc_cell_rnn tanh/relu,
 *    rc_cell_lstm default and with peepholes, rc_cell_gru both variants, rc_cell_mut
 *    1..3): unrolled over T = 5, B = 2 with the same random weights (copied by
 *    parameter name), input and initial states, the two graphs are isomorphic (a
 *    canonical hash of every node: op, op constants, shape, operands in order, leaf
 *    names and constant values), have the same parameters (names, shapes, count),
 *    and give bitwise-equal outputs, final states, parameter gradients, input and
 *    initial-state gradients (with and without the plan's rewriting passes).
 *  - model_*: a model (rc_model_new) of a parsed LSTM trains; its loss and gradients
 *    equal those of the same model of rc_cell_lstm with the weights copied; a
 *    parsed cell's initialisation lines (init b_f = 1.0) take effect.
 *  - hidden_*, source_*, clone_*: the "hidden N" line and the override, the source
 *    round trip, a cell copied by a model outliving the original.
 *  - every_op / gradcheck_smooth_cell / constants_and_broadcasts: a cell using every
 *    op a cell may use builds, runs, and gives the same outputs and gradients with and
 *    without the plan's passes; a smooth one passes rc_gradcheck; constants and
 *    broadcasts become the documented ops (rc_scale, rc_one_minus, fills) and values.
 *  - error_*: each error class (syntax, unknown function or name, arity, widths at
 *    parse time and at unroll, states never or twice assigned, names bound twice,
 *    use before definition, model-level ops, sizes, declarations) gives
 *    "name:line:col: ..." with the expected position and a message fragment.
 *
 * Checks are non-fatal where they can be, so each test frees what it made: the
 * suite runs under AddressSanitizer's leak checker. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"
#include "graph.h"   /* node internals: only for the graph isomorphism check */
#include "cell.h"    /* cell_clone: only for clone_outlives_original */
#include "test_util.h"

#ifndef RECUR_CELL_DIR
#error "RECUR_CELL_DIR must name cells/lib (tests/meson.build sets it)"
#endif

#define T_STEPS 5
#define BATCH 2
#define HID 5
#define INP 3

/* ---- helpers --------------------------------------------------------------------- */

static uint64_t rnd_next(uint64_t *s)   /* splitmix64 */
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rnd_fill(uint64_t *s, float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) x[i] = (float)((double)(rnd_next(s) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static rc_cell *load_shipped(const char *file, int hidden)
{
    char path[512], err[512] = "";
    snprintf(path, sizeof path, "%s/%s", RECUR_CELL_DIR, file);
    rc_cell *c = rc_cell_load(path, hidden, err, sizeof err);
    cr_assert_not_null(c, "%s: %s", path, err);
    return c;
}

static char *read_text(const char *path)
{
    char *s = tu_read_file(path, NULL);
    cr_assert_not_null(s, "cannot open %s", path);
    return s;
}

/* Parses text that must fail; checks "cell:LINE:COL: ..." and that the message holds `frag`. */
static void expect_error(const char *text, int hidden, int line, int col, const char *frag)
{
    char err[1024] = "", want[64];
    rc_cell *c = rc_cell_parse(text, strlen(text), "t.cell", hidden, err, sizeof err);
    cr_expect_null(c, "parsed, but expected an error containing \"%s\":\n%s", frag, text);
    rc_cell_free(c);
    snprintf(want, sizeof want, "t.cell:%d:%d: ", line, col);
    cr_expect(strncmp(err, want, strlen(want)) == 0, "expected the message to start with \"%s\", got \"%s\"", want, err);
    cr_expect(strstr(err, frag) != NULL, "expected \"%s\" in \"%s\"", frag, err);
}

static rc_cell *parse_ok(const char *text, int hidden)
{
    char err[1024] = "";
    rc_cell *c = rc_cell_parse(text, strlen(text), "t.cell", hidden, err, sizeof err);
    cr_assert_not_null(c, "%s\n%s", err, text);
    return c;
}

/* ---- one unrolled graph of a cell --------------------------------------------------- */

typedef struct run {
    rc_graph *g;
    rc_plan *p;
    rc_node *x, *out, *loss;
    rc_node *init[4], *fin[4];
    int nst;
} run;

/* Unrolls `cell` over x [T*B, I] from given initial states, with a loss that weighs
 * every output and final state by fixed random constants. */
static void build(run *r, const rc_cell *cell, int I, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->g = rc_graph_new();
    cr_assert_not_null(r->g);
    int N = T_STEPS * BATCH, xs[2] = { N, I };
    r->nst = rc_cell_state_count(cell);
    r->x = rc_input(r->g, "x", RC_F32, 2, xs);
    rc_requires_grad(r->x, 1);
    for (int i = 0; i < r->nst; i++) {
        int ss[2] = { BATCH, rc_cell_state_size(cell, i) };
        char name[32];
        snprintf(name, sizeof name, "init_%d", i);
        r->init[i] = rc_input(r->g, name, RC_F32, 2, ss);
        rc_requires_grad(r->init[i], 1);
    }
    rc_unroll_opts o = { .init = r->init };
    rc_status st = rc_unroll(r->g, cell, r->x, T_STEPS, &o, &r->out, r->fin);
    cr_assert_eq(st, RC_OK, "rc_unroll: %s", rc_graph_error(r->g));
    uint64_t s = seed;
    size_t n = rc_node_size(r->out);
    float *w = malloc(n * sizeof *w);
    rnd_fill(&s, w, n);
    int os[2] = { rc_node_dim(r->out, 0), rc_node_dim(r->out, 1) };
    r->loss = rc_sum(r->g, rc_mul(r->g, r->out, rc_const(r->g, 2, os, w)));
    free(w);
    for (int i = 0; i < r->nst; i++) {
        int fs[2] = { rc_node_dim(r->fin[i], 0), rc_node_dim(r->fin[i], 1) };
        float *v = malloc(rc_node_size(r->fin[i]) * sizeof *v);
        rnd_fill(&s, v, rc_node_size(r->fin[i]));
        r->loss = rc_add(r->g, r->loss, rc_sum(r->g, rc_mul(r->g, r->fin[i], rc_const(r->g, 2, fs, v))));
        free(v);
    }
    cr_assert_eq(rc_graph_status(r->g), RC_OK, "%s", rc_graph_error(r->g));
}

static void plan_and_run(run *r, unsigned flags, uint64_t seed)
{
    rc_node *roots[9] = { r->loss, r->out };
    for (int i = 0; i < r->nst; i++) roots[2 + i] = r->fin[i];
    r->p = rc_plan_new_ex(r->g, 2 + r->nst, roots, flags);
    cr_assert_not_null(r->p, "rc_plan_new: %s", rc_graph_error(r->g));
    uint64_t s = seed;
    size_t nx = rc_node_size(r->x);
    float *buf = malloc(nx * sizeof *buf);
    rnd_fill(&s, buf, nx);
    cr_assert_eq(rc_plan_feed(r->p, r->x, buf, nx), RC_OK);
    free(buf);
    for (int i = 0; i < r->nst; i++) {
        size_t n = rc_node_size(r->init[i]);
        float *v = malloc(n * sizeof *v);
        rnd_fill(&s, v, n);
        rc_status fs = rc_plan_feed(r->p, r->init[i], v, n);   /* RC_ERR_ARG: a state the cell never reads */
        cr_assert(fs == RC_OK || fs == RC_ERR_ARG);
        free(v);
    }
    cr_assert_eq(rc_plan_forward(r->p), RC_OK, "%s", rc_plan_error(r->p));
    cr_assert_eq(rc_plan_backward(r->p, r->loss), RC_OK, "%s", rc_plan_error(r->p));
}

static void run_free(run *r)
{
    rc_plan_free(r->p);
    rc_graph_free(r->g);
    r->p = NULL;
    r->g = NULL;
}

/* Largest |a - b| / max(1, |b|) over n values; *bitwise says whether all are equal. */
static double rel_diff(const float *a, const float *b, size_t n, int *bitwise)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) *bitwise = 0;
        double d = fabs((double)a[i] - (double)b[i]) / fmax(1.0, fabs((double)b[i]));
        if (!(d <= m)) m = d;   /* NaN wins */
    }
    return m;
}

static int is_param(const rc_node *n) { return strcmp(rc_node_op(n), "param") == 0; }

/* ---- graph isomorphism: canonical node hashes ------------------------------------------ */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    return h * 0xBF58476D1CE4E5B9ull;
}

static uint64_t mix_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *d = p;
    for (size_t i = 0; i < n; i++) h = mix(h, d[i]);
    return h;
}

/* A hash of each node from its op, constants, shape, leaf name or data, and its
 * operands' hashes in order: equal multisets mean isomorphic graphs (the node ids
 * and creation order may differ). */
static uint64_t *node_hashes(const rc_graph *g)
{
    int n = rc_graph_node_count(g);
    uint64_t *h = calloc((size_t)n, sizeof *h);
    for (int i = 0; i < n; i++) {
        const rc_node *q = rc_graph_node(g, i);
        uint64_t v = mix_bytes(1, rc_node_op(q), strlen(rc_node_op(q)));
        v = mix(v, (uint64_t)q->t.ndim);
        for (int d = 0; d < q->t.ndim; d++) v = mix(v, (uint64_t)q->t.shape[d]);
        if (q->kind == NK_PARAM || q->kind == NK_INPUT) v = mix_bytes(v, rc_node_name(q), strlen(rc_node_name(q)));
        if (q->kind == NK_CONST) v = mix_bytes(v, q->t.data, q->t.size * sizeof(float));
        if (q->kind == NK_PARAM) v = mix(mix(v, (uint64_t)q->init_kind), (uint64_t)(q->init_a * 1000));
        if (q->kind == NK_OP) {
            v = mix_bytes(v, q->par.i, sizeof q->par.i);
            v = mix_bytes(v, q->par.f, sizeof q->par.f);
            v = mix(v, q->par.seed);
            for (int k = 0; k < q->nin; k++) v = mix(v, h[rc_node_id(q->in[k])]);
        }
        h[i] = v;
    }
    return h;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void expect_isomorphic(const rc_graph *a, const rc_graph *b, const char *what)
{
    int na = rc_graph_node_count(a), nb = rc_graph_node_count(b);
    cr_expect_eq(na, nb, "%s: %d nodes from C, %d from the cell file", what, na, nb);
    if (na != nb) return;
    uint64_t *ha = node_hashes(a), *hb = node_hashes(b);
    qsort(ha, (size_t)na, sizeof *ha, cmp_u64);
    qsort(hb, (size_t)nb, sizeof *hb, cmp_u64);
    int same = memcmp(ha, hb, (size_t)na * sizeof *ha) == 0;
    cr_expect(same, "%s: the graphs of the C cell and the cell file are not isomorphic", what);
    free(ha);
    free(hb);
}

/* ---- the same graph as the C cell ------------------------------------------------------- */

static void check_same_graph(const char *file, rc_cell *ccell, int I)
{
    rc_cell *lcell = load_shipped(file, HID);
    cr_expect_str_eq(rc_cell_name(lcell), rc_cell_name(ccell));
    cr_expect_eq(rc_cell_hidden(lcell), rc_cell_hidden(ccell));
    cr_expect_eq(rc_cell_state_count(lcell), rc_cell_state_count(ccell));
    for (int i = 0; i < rc_cell_state_count(ccell); i++) {
        cr_expect_str_eq(rc_cell_state_name(lcell, i), rc_cell_state_name(ccell, i));
        cr_expect_eq(rc_cell_state_size(lcell, i), rc_cell_state_size(ccell, i));
    }
    for (int pass = 0; pass < 2; pass++) {
        unsigned flags = pass ? RC_PLAN_NO_PASSES : 0;
        run a, b;
        build(&a, ccell, I, 11);
        build(&b, lcell, I, 11);
        if (pass == 0) expect_isomorphic(a.g, b.g, file);
        /* the same parameters, by name and shape; C's weights copied into the file's */
        cr_expect_eq(rc_graph_status(a.g), RC_OK);
        cr_expect_eq(rc_graph_init_params(a.g, 42), RC_OK);
        int pa = 0, pb = 0;
        for (int i = 0; i < rc_graph_node_count(b.g); i++) pb += is_param(rc_graph_node(b.g, i));
        for (int i = 0; i < rc_graph_node_count(a.g); i++) {
            rc_node *p = rc_graph_node(a.g, i);
            if (!is_param(p)) continue;
            pa++;
            rc_node *q = rc_param_find(b.g, rc_node_name(p));
            cr_expect_not_null(q, "%s: parameter '%s' of the C cell is missing", file, rc_node_name(p));
            if (!q) continue;
            cr_expect_eq(rc_node_ndim(q), rc_node_ndim(p), "%s: '%s' rank", file, rc_node_name(p));
            for (int d = 0; d < rc_node_ndim(p); d++)
                cr_expect_eq(rc_node_dim(q, d), rc_node_dim(p, d), "%s: '%s' shape", file, rc_node_name(p));
            if (rc_node_size(q) == rc_node_size(p))
                memcpy(rc_param_data(q), rc_param_data(p), rc_node_size(p) * sizeof(float));
        }
        cr_expect_eq(pa, pb, "%s: %d parameters in C, %d in the cell file", file, pa, pb);
        plan_and_run(&a, flags, 99);
        plan_and_run(&b, flags, 99);
        int bit = 1;
        double d = rel_diff(rc_plan_value(b.p, b.out), rc_plan_value(a.p, a.out), rc_node_size(a.out), &bit);
        for (int i = 0; i < a.nst; i++) {
            d = fmax(d, rel_diff(rc_plan_value(b.p, b.fin[i]), rc_plan_value(a.p, a.fin[i]), rc_node_size(a.fin[i]), &bit));
            d = fmax(d, rel_diff(rc_plan_grad(b.p, b.init[i]), rc_plan_grad(a.p, a.init[i]), rc_node_size(a.init[i]), &bit));
        }
        d = fmax(d, rel_diff(rc_plan_grad(b.p, b.x), rc_plan_grad(a.p, a.x), rc_node_size(a.x), &bit));
        for (int i = 0; i < rc_graph_node_count(a.g); i++) {
            rc_node *p = rc_graph_node(a.g, i), *q;
            if (!is_param(p) || !(q = rc_param_find(b.g, rc_node_name(p)))) continue;
            const float *ga = rc_plan_grad(a.p, p), *gb = rc_plan_grad(b.p, q);
            cr_expect(ga && gb, "%s: no gradient for '%s'", file, rc_node_name(p));
            if (ga && gb) d = fmax(d, rel_diff(gb, ga, rc_node_size(p), &bit));
        }
        cr_expect(d <= 1e-6, "%s (flags %u): largest relative difference %g", file, flags, d);
        cr_expect(bit, "%s (flags %u): values agree to %g but are not bitwise equal", file, flags, d);
        run_free(&a);
        run_free(&b);
    }
    rc_cell_free(lcell);
    rc_cell_free(ccell);
}

Test(lang, same_graph_rnn_tanh) { check_same_graph("rnn_tanh.cell", rc_cell_rnn(HID, RC_ACT_TANH), INP); }
Test(lang, same_graph_rnn_relu) { check_same_graph("rnn_relu.cell", rc_cell_rnn(HID, RC_ACT_RELU), INP); }
Test(lang, same_graph_lstm) { check_same_graph("lstm.cell", rc_cell_lstm(HID, NULL), INP); }
Test(lang, same_graph_lstm_peephole)
{
    rc_lstm_opts o = rc_lstm_defaults();
    o.peepholes = 1;
    rc_cell *c = rc_cell_lstm(HID, &o);
    /* the C cell is named "lstm" whatever its options; compare under the file's name */
    snprintf(c->name, sizeof c->name, "lstm_peephole");
    check_same_graph("lstm_peephole.cell", c, INP);
}
Test(lang, same_graph_gru) { check_same_graph("gru.cell", rc_cell_gru(HID, RC_GRU_RESET_AFTER), INP); }
Test(lang, same_graph_gru_cho) { check_same_graph("gru_cho.cell", rc_cell_gru(HID, RC_GRU_RESET_BEFORE), INP); }
Test(lang, same_graph_mut1) { check_same_graph("mut1.cell", rc_cell_mut(1, HID), HID); }
Test(lang, same_graph_mut2) { check_same_graph("mut2.cell", rc_cell_mut(2, HID), HID); }
Test(lang, same_graph_mut3) { check_same_graph("mut3.cell", rc_cell_mut(3, HID), INP); }

/* ---- shipped cells, hidden sizes, sources ------------------------------------------------ */

static const char *const SHIPPED[] = { "rnn_tanh.cell", "rnn_relu.cell", "lstm.cell", "lstm_peephole.cell", "gru.cell",
                                       "gru_cho.cell", "mut1.cell", "mut2.cell", "mut3.cell" };

Test(lang, shipped_cells_parse)
{
    for (size_t k = 0; k < sizeof SHIPPED / sizeof SHIPPED[0]; k++) {
        char path[512], err[512] = "";
        snprintf(path, sizeof path, "%s/%s", RECUR_CELL_DIR, SHIPPED[k]);
        rc_cell *own = rc_cell_load(path, 0, err, sizeof err);
        cr_expect_not_null(own, "%s: %s", path, err);
        rc_cell *over = rc_cell_load(path, 7, err, sizeof err);
        cr_expect_not_null(over, "%s: %s", path, err);
        if (own && over) {
            cr_expect_eq(rc_cell_hidden(own), 128, "%s", path);
            cr_expect_eq(rc_cell_hidden(over), 7, "%s", path);
            char base[64];
            snprintf(base, sizeof base, "%s", SHIPPED[k]);
            *strstr(base, ".cell") = 0;
            cr_expect_str_eq(rc_cell_name(own), base);
            cr_expect_str_eq(rc_cell_state_name(own, 0), "h");
            for (int i = 0; i < rc_cell_state_count(over); i++) cr_expect_eq(rc_cell_state_size(over, i), 7);
            char *text = read_text(path);
            cr_expect_str_eq(rc_cell_source(own), text, "%s: rc_cell_source differs from the file", path);
            free(text);
        }
        rc_cell_free(own);
        rc_cell_free(over);
    }
}

Test(lang, hidden_line_and_override)
{
    const char *text = "cell small (x) -> h, c\n"
                       "  hidden 7\n"
                       "  state c : 2*H + 1\n"
                       "  weight W_c : 2*H + 1\n"
                       "  c' = tanh(W_c @ concat(x, h))\n"
                       "  h' = slice(c', 0, H) * sigmoid(W_h @ h + b)\n";
    rc_cell *c = parse_ok(text, 0);
    cr_expect_eq(rc_cell_hidden(c), 7);
    cr_expect_eq(rc_cell_state_size(c, 0), 7);
    cr_expect_eq(rc_cell_state_size(c, 1), 15);
    rc_cell_free(c);
    c = parse_ok(text, 3);
    cr_expect_eq(rc_cell_hidden(c), 3);
    cr_expect_eq(rc_cell_state_size(c, 0), 3);
    cr_expect_eq(rc_cell_state_size(c, 1), 7);
    /* it builds at the overridden size: W_c is [2H+1, I+H] */
    run r;
    build(&r, c, 4, 1);
    rc_node *w = rc_param_find(r.g, "W_c");
    cr_expect(w && rc_node_dim(w, 0) == 7 && rc_node_dim(w, 1) == 7);
    run_free(&r);
    rc_cell_free(c);
    /* without either: an error at the header */
    expect_error("# no size\ncell nohid (x) -> h\n  h' = tanh(W @ x)\n", 0, 2, 1, "has no hidden size");
    expect_error("cell c2 (x) -> h\n  hidden 0\n  h' = tanh(W @ x)\n", 0, 2, 10, "expected the hidden size");
    expect_error("cell c2 (x) -> h\n  hidden 4\n  hidden 5\n  h' = tanh(W @ x)\n", 0, 3, 3, "a second 'hidden' line");
}

Test(lang, source_round_trip)
{
    const char *text = "cell rt (in) -> s   # comment\n\thidden 3\n\ts' = tanh(W @ in + U @ s + b)";
    char err[256];
    rc_cell *c = rc_cell_parse(text, strlen(text), "rt", 0, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_expect_str_eq(rc_cell_source(c), text);
    rc_cell_free(c);
    /* text need not be NUL-terminated: only len bytes are read and kept */
    char buf[128];
    memcpy(buf, text, strlen(text));
    memset(buf + strlen(text), 'Z', sizeof buf - strlen(text));
    c = rc_cell_parse(buf, strlen(text), "rt", 0, err, sizeof err);
    cr_assert_not_null(c, "%s", err);
    cr_expect_str_eq(rc_cell_source(c), text);
    rc_cell_free(c);
    rc_cell *l = rc_cell_lstm(4, NULL);
    cr_expect_null(rc_cell_source(l), "a C cell has no source");
    cr_expect_null(rc_cell_source(NULL));
    rc_cell_free(l);
}

Test(lang, clone_outlives_original)
{
    rc_cell *c = load_shipped("gru.cell", 4);
    rc_cell *d = cell_clone(c);
    cr_assert_not_null(d);
    cr_expect_str_eq(rc_cell_source(d), rc_cell_source(c));
    cr_expect_neq((void *)rc_cell_source(d), (void *)rc_cell_source(c), "the source is copied");
    cr_expect_neq(d->user, c->user, "the program is copied");
    rc_cell_free(c);
    run r;
    build(&r, d, 3, 5);
    plan_and_run(&r, 0, 5);
    run_free(&r);
    rc_cell_free(d);
}

Test(lang, load_errors)
{
    char err[512] = "";
    cr_expect_null(rc_cell_load("/nonexistent/dir/x.cell", 4, err, sizeof err));
    cr_expect(strstr(err, "/nonexistent/dir/x.cell") && strstr(err, "cannot open"), "%s", err);
    cr_expect_null(rc_cell_load(NULL, 4, err, sizeof err));
    cr_expect_null(rc_cell_parse(NULL, 0, "n", 4, err, sizeof err));
    cr_expect(strstr(err, "n:1:1: no text") != NULL, "%s", err);
    cr_expect_null(rc_cell_parse("", 0, "n", 4, err, sizeof err));
    cr_expect(strstr(err, "expected the header") != NULL, "%s", err);
    /* err may be NULL or empty */
    cr_expect_null(rc_cell_parse("x", 1, "n", 4, NULL, 0));
    /* messages are truncated to errlen, NUL-terminated */
    char small[12];
    cr_expect_null(rc_cell_parse("cell", 4, "name", 4, small, sizeof small));
    cr_expect_eq(strlen(small), sizeof small - 1);
}

/* ---- models ------------------------------------------------------------------------------- */

static rc_model *lang_model(rc_cell *cell, int input, int layers)
{
    rc_model_opts o = rc_model_defaults();
    o.input_size = input;
    o.layers = layers;
    o.output_size = 2;
    o.seed = 3;
    rc_model *m = rc_model_new(cell, &o);
    cr_assert_not_null(m);
    cr_assert_eq(rc_model_status(m), RC_OK, "%s", rc_model_error(m));
    return m;
}

/* A toy task: the class of step t is whether x_t[0] + x_{t-1}[0] > 0. */
static void toy_batch(uint64_t *s, int T, int B, int I, float *x, int32_t *y)
{
    rnd_fill(s, x, (size_t)T * B * I);
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            float prev = t ? x[((t - 1) * B + b) * I] : 0.0f;
            y[t * B + b] = x[(t * B + b) * I] + prev > 0;
        }
}

Test(lang, model_trains_with_parsed_lstm)
{
    rc_cell *cell = load_shipped("lstm.cell", 16);
    rc_model *m = lang_model(cell, 3, 2);
    rc_cell_free(cell);   /* the model holds its own copy */
    rc_optim_opts oo = rc_optim_defaults(RC_OPT_ADAM);
    rc_optim *opt = rc_optim_new(m, &oo);
    cr_assert_not_null(opt, "%s", rc_model_error(m));
    enum { T = 8, B = 16, I = 3 };
    float x[T * B * I];
    int32_t y[T * B];
    uint64_t s = 17;
    double first = 0, last = 0;
    for (int it = 0; it < 150; it++) {
        toy_batch(&s, T, B, I, x, y);
        rc_batch b = { .T = T, .B = B, .x = x, .targets = y };
        double loss = 0;
        cr_assert_eq(rc_model_forward(m, &b, &loss), RC_OK, "%s", rc_model_error(m));
        cr_assert_eq(rc_model_backward(m), RC_OK, "%s", rc_model_error(m));
        cr_assert_eq(rc_optim_step(opt, 0.02f), RC_OK, "%s", rc_model_error(m));
        if (it < 10) first += loss / 10;
        if (it >= 140) last += loss / 10;
    }
    cr_expect(last < 0.6 * first, "the loss fell from %g to %g only", first, last);
    cr_expect(last < 0.35, "final loss %g", last);
    rc_optim_free(opt);
    rc_model_free(m);
}

Test(lang, model_equals_c_model)
{
    rc_cell *lc = load_shipped("lstm.cell", 6), *cc = rc_cell_lstm(6, NULL);
    rc_model *ml = lang_model(lc, 3, 2), *mc = lang_model(cc, 3, 2);
    rc_cell_free(lc);
    rc_cell_free(cc);
    cr_expect_eq(rc_model_param_count(ml), rc_model_param_count(mc));
    cr_expect_eq(rc_model_param_total(ml), rc_model_param_total(mc));
    /* the init line took effect: b_f starts at 1 in every layer */
    int nd, sh[RC_MAX_DIMS];
    float *bf = rc_model_param(ml, "l1.b_f", &nd, sh);
    cr_assert_not_null(bf);
    for (int i = 0; i < sh[0]; i++) cr_expect_eq(bf[i], 1.0f);
    float *bi = rc_model_param(ml, "l1.b_i", &nd, sh);
    cr_assert_not_null(bi);
    for (int i = 0; i < sh[0]; i++) cr_expect_eq(bi[i], 0.0f);
    for (int i = 0; i < rc_model_param_count(mc); i++) {
        const char *name = rc_model_param_name(mc, i);
        int nc, sc[RC_MAX_DIMS], nl, sl[RC_MAX_DIMS];
        float *pc = rc_model_param(mc, name, &nc, sc), *pl = rc_model_param(ml, name, &nl, sl);
        cr_expect_not_null(pl, "parameter '%s' missing from the parsed cell's model", name);
        if (!pl) continue;
        cr_expect_eq(nl, nc);
        size_t n = 1;
        for (int d = 0; d < nc; d++) {
            cr_expect_eq(sl[d], sc[d], "'%s' shape", name);
            n *= (size_t)sc[d];
        }
        memcpy(pl, pc, n * sizeof *pl);
    }
    enum { T = 6, B = 3, I = 3 };
    float x[T * B * I];
    int32_t y[T * B];
    uint64_t s = 5;
    toy_batch(&s, T, B, I, x, y);
    rc_batch b = { .T = T, .B = B, .x = x, .targets = y };
    double l1 = 0, l2 = 0;
    cr_assert_eq(rc_model_forward(mc, &b, &l1), RC_OK, "%s", rc_model_error(mc));
    cr_assert_eq(rc_model_forward(ml, &b, &l2), RC_OK, "%s", rc_model_error(ml));
    cr_expect_eq(l1, l2, "losses %.17g and %.17g", l1, l2);
    cr_assert_eq(rc_model_backward(mc), RC_OK);
    cr_assert_eq(rc_model_backward(ml), RC_OK);
    for (int i = 0; i < rc_model_param_count(mc); i++) {
        const char *name = rc_model_param_name(mc, i);
        int nc, sc[RC_MAX_DIMS];
        rc_model_param(mc, name, &nc, sc);
        size_t n = 1;
        for (int d = 0; d < nc; d++) n *= (size_t)sc[d];
        const float *gc = rc_model_grad(mc, name), *gl = rc_model_grad(ml, name);
        cr_expect(gc && gl && memcmp(gc, gl, n * sizeof *gc) == 0, "gradient of '%s' differs", name);
    }
    rc_model_free(ml);
    rc_model_free(mc);
}

/* ---- every op a cell may use ------------------------------------------------------------- */

static const char *EVERY_OP_OK =
    "# every op of the op table a cell may use (model-level ones excepted)\n"
    "cell every (x) -> h, c\n"
    "  hidden 4\n"
    "  state c : 2*H\n"
    "  weight W_c : 2*H\n"
    "  weight W_z : 1\n"
    "  vector g : 2*H\n"
    "  init W_c = orthogonal\n"
    "  init b_a = const 0.1\n"
    "  init g = 1\n"
    "  a = W_xa @ dropout(x, 0.25) + W_ha @ h + b_a\n"
    "  n = (a - row_mean(a)) / sqrt(row_var(a) + 1e-5)\n"
    "  p = softmax(n) * exp(log_softmax(n)) + 0.5 * sigmoid(-a)\n"
    "  q = min(relu(n), 1) + max(abs(n), 0.5) - softplus(-n) / 2\n"
    "  u = concat(p, q)\n"
    "  c' = tanh(W_c @ u + g * c) * (1 - sigmoid(W_z @ slice(c, H, H)))   # W_z : 1, per row\n"
    "  k = sum(c') / mean(exp(c')) / 100 + mean(g) / 10   # per row; a vector's mean\n"
    "  h' = log(1 + sigmoid(slice(c', 0, H))) + k + b_h + 2 / (3 + exp(b_h))\n";

Test(lang, every_op)
{
    rc_cell *c = parse_ok(EVERY_OP_OK, 0);
    cr_expect_eq(rc_cell_state_size(c, 1), 8);
    run r;
    build(&r, c, 3, 8);
    cr_expect_eq(rc_graph_init_params(r.g, 3), RC_OK);
    rc_node *g = rc_param_find(r.g, "g"), *ba = rc_param_find(r.g, "b_a");
    cr_assert(g && ba);
    cr_expect_eq(rc_node_size(g), 8);
    cr_expect_eq(rc_param_data(g)[7], 1.0f);
    cr_expect_eq(rc_param_data(ba)[0], 0.1f);
    /* every op except the model-level ones appears (before a plan's passes fuse them) */
    static const char *const ops[] = { "matmul", "add", "sub", "mul", "div", "scale", "one_minus", "sigmoid", "tanh",
                                       "relu", "softplus", "abs", "sqrt", "exp", "log", "minimum", "maximum",
                                       "row_sum", "row_mean", "row_var", "softmax", "log_softmax", "concat", "slice",
                                       "sum", "mean", "dropout" };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        int found = 0;
        for (int i = 0; i < rc_graph_node_count(r.g) && !found; i++)
            found = strcmp(rc_node_op(rc_graph_node(r.g, i)), ops[k]) == 0;
        cr_expect(found, "op %s is not in the graph", ops[k]);
    }
    /* the same cell with the plan's passes off: a reference for values and gradients */
    run q;
    build(&q, c, 3, 8);
    for (int i = 0; i < rc_graph_node_count(r.g); i++) {
        rc_node *p = rc_graph_node(r.g, i);
        if (is_param(p)) memcpy(rc_param_data(rc_param_find(q.g, rc_node_name(p))), rc_param_data(p), rc_node_size(p) * 4);
    }
    plan_and_run(&r, 0, 8);
    plan_and_run(&q, RC_PLAN_NO_PASSES, 8);
    const float *out = rc_plan_value(r.p, r.out);
    for (size_t i = 0; i < rc_node_size(r.out); i++) cr_expect(isfinite(out[i]));
    for (int i = 0; i < rc_graph_node_count(r.g); i++) {
        rc_node *p = rc_graph_node(r.g, i);
        if (!is_param(p)) continue;
        const float *gr = rc_plan_grad(r.p, p);
        cr_expect_not_null(gr, "no gradient for %s", rc_node_name(p));
        for (size_t k = 0; gr && k < rc_node_size(p); k++) cr_expect(isfinite(gr[k]), "%s", rc_node_name(p));
        int bit = 1;
        double d = gr ? rel_diff(gr, rc_plan_grad(q.p, rc_param_find(q.g, rc_node_name(p))), rc_node_size(p), &bit) : 1;
        cr_expect(d < 1e-4, "gradient of %s: the plan's passes change it by %g (relative)", rc_node_name(p), d);
    }
    int bit = 1;
    double d = rel_diff(out, rc_plan_value(q.p, q.out), rc_node_size(r.out), &bit);
    cr_expect(d < 1e-4, "outputs: the plan's passes change them by %g (relative)", d);
    run_free(&q);
    run_free(&r);
    rc_cell_free(c);
}

/* A smooth cell (no kinks, no dropout) through the gradient check. */
Test(lang, gradcheck_smooth_cell)
{
    const char *text = "cell smooth (x) -> h, m\n"
                       "  hidden 3\n"
                       "  state m : 1\n"
                       "  a = W_xa @ x + W_ha @ concat(h, m) + b_a\n"
                       "  s = softmax(a) + 0.1 * log_softmax(a) - exp(-a * a) / 4\n"
                       "  m' = row_mean(s) + 0.5 * m - sqrt(row_var(s) + 1)\n"
                       "  h' = tanh(s * p + (1 - sigmoid(a)) * h) + softplus(b_o - a) / 3 + sum(a) / 50\n";
    rc_cell *c = parse_ok(text, 0);
    run r;
    build(&r, c, 2, 4);
    rc_graph_init_params(r.g, 9);
    for (int i = 0; i < rc_graph_node_count(r.g); i++) {   /* non-zero vectors too */
        rc_node *p = rc_graph_node(r.g, i);
        if (is_param(p) && rc_node_ndim(p) == 1) {
            uint64_t s = (uint64_t)i;
            rnd_fill(&s, rc_param_data(p), rc_node_size(p));
        }
    }
    plan_and_run(&r, 0, 4);
    rc_node *wrt[24];
    int n = 0;
    for (int i = 0; i < rc_graph_node_count(r.g) && n < 22; i++)
        if (is_param(rc_graph_node(r.g, i))) wrt[n++] = rc_graph_node(r.g, i);
    wrt[n++] = r.x;
    double err = 1;
    cr_expect_eq(rc_gradcheck(r.p, r.loss, n, wrt, 0.01f, &err), RC_OK, "%s", rc_plan_error(r.p));
    cr_expect(err < 5e-3, "gradient check error %g", err);
    run_free(&r);
    rc_cell_free(c);
}

/* Constants, broadcasting and the emitted forms: compare with hand-built C. */
Test(lang, constants_and_broadcasts)
{
    const char *text = "cell k (x) -> h\n"
                       "  hidden 3\n"
                       "  half = 1 / 2\n"
                       "  a = W @ x\n"
                       "  h' = half * a + 2 - a / 4 + (3 - a) - (1 - a) + b - row_mean(a) + 2 * 3 * a - v * a\n";
    rc_cell *c = parse_ok(text, 0);
    run r;
    build(&r, c, 2, 3);
    rc_graph_init_params(r.g, 1);
    rc_node *b = rc_param_find(r.g, "b"), *v = rc_param_find(r.g, "v");
    cr_assert(b && v);
    cr_expect_eq(rc_node_ndim(b), 1);
    cr_expect_eq(rc_node_dim(b, 0), 3);
    for (int k = 0; k < 3; k++) rc_param_data(b)[k] = 0.25f * (float)(k + 1), rc_param_data(v)[k] = 0.5f - (float)k;
    plan_and_run(&r, RC_PLAN_NO_PASSES, 3);
    /* reference: h' = 0.5a + 2 - a/4 + (3 - a) - (1 - a) + b - mean(a) + 6a - v*a, per step */
    rc_node *W = rc_param_find(r.g, "W");
    const float *Wd = rc_param_data(W), *out = rc_plan_value(r.p, r.out);
    uint64_t s = 3;
    float x[T_STEPS * BATCH * 2];
    rnd_fill(&s, x, sizeof x / sizeof x[0]);
    double worst = 0;
    for (int row = 0; row < T_STEPS * BATCH; row++) {
        float a[3], mean = 0;
        for (int j = 0; j < 3; j++) {
            a[j] = Wd[j * 2] * x[row * 2] + Wd[j * 2 + 1] * x[row * 2 + 1];
            mean += a[j];
        }
        mean /= 3;
        for (int j = 0; j < 3; j++) {
            double ref = 0.5 * a[j] + 2 - a[j] / 4.0 + (3 - a[j]) - (1 - a[j]) + rc_param_data(b)[j] - mean + 6 * a[j] -
                         rc_param_data(v)[j] * a[j];
            worst = fmax(worst, fabs(ref - out[row * 3 + j]));
        }
    }
    cr_expect(worst < 1e-5, "largest error %g", worst);
    int scale = 0, one_minus = 0;
    for (int i = 0; i < rc_graph_node_count(r.g); i++) {
        const char *op = rc_node_op(rc_graph_node(r.g, i));
        scale += strcmp(op, "scale") == 0;
        one_minus += strcmp(op, "one_minus") == 0;
    }
    cr_expect_eq(scale, 2 * T_STEPS, "half * a and 2 * 3 * a are rc_scale (folded constants)");
    cr_expect_eq(one_minus, T_STEPS, "1 - a is rc_one_minus");
    run_free(&r);
    rc_cell_free(c);
}

/* ---- errors ------------------------------------------------------------------------------ */

Test(lang, error_syntax)
{
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = tanh(W @ x +)\n", 0, 3, 20, "expected an expression");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = tanh(W @ x\n", 0, 4, 1, "expected ',' or ')'");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = tanh(W @ x) h\n", 0, 3, 20,
                 "expected the end of the line after the expression of 'h'', found 'h'");
    expect_error("  # comment\n\nrnn s (x) -> h\n", 0, 3, 1, "expected the header 'cell NAME (INPUT) -> STATE, ...'");
    expect_error("cell s x -> h\n", 0, 1, 8, "expected '(' and the input's name");
    expect_error("cell s (x, y) -> h\n", 0, 1, 10, "expected ')' after the input's name (a cell has one input)");
    expect_error("cell s (x) h\n", 0, 1, 12, "expected '->'");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = tanh(W @ x) $ 2\n", 0, 3, 20, "unexpected character '$'");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = 2H\n", 0, 3, 8, "malformed number '2H'");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' tanh(x)\n", 0, 3, 6, "expected '=' after 'h''");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = (W @ x\n  b = 1\n", 0, 4, 3, "expected ')' to close the '(' at 3:8");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = tanh(x) @ x\n", 0, 3, 16, "the left side of '@' is a function call");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = 1e999 * x\n", 0, 3, 8, "out of range");
    expect_error("cell s (x) -> h\ncell t (x) -> h\n", 0, 2, 1, "one cell per text");
    expect_error("cell s (x) -> h\n  hidden 4\n  init = 1\n", 0, 3, 8, "expected a parameter's name after 'init'");
    expect_error("cell s (x) -> h\n  hidden 4\n  init b = maybe\n  h' = x\n", 0, 3, 12, "const V, zeros");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = x \xc3\xa9\n", 0, 3, 10, "unexpected byte 0xc3");
    /* any byte but NUL in a comment (the source is kept as a C string) */
    const char nul[] = "cell s (x) -> h  # a \xc3\xa9 \0 b\n  hidden 4\n  h' = tanh(W @ x)\n";
    char err[256] = "";
    cr_expect_null(rc_cell_parse(nul, sizeof nul - 1, "t.cell", 0, err, sizeof err));
    cr_expect(strstr(err, "t.cell:1:25: unexpected NUL byte in a comment") != NULL, "%s", err);
    rc_cell *c = parse_ok("cell s (x) -> h  # Gers & Schmidhuber \xe2\x80\x94 2001\n  hidden 4\n  h' = tanh(W @ x)\n", 0);
    rc_cell_free(c);
}

Test(lang, error_unknown_function_or_name)
{
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = sigmod(W @ x)\n", 0, 3, 8,
                 "unknown function 'sigmod' (did you mean 'sigmoid'?)");
}

Test(lang, error_unknown_name)
{
    /* a name that is no input, state or binding is a vector parameter: alone, its width is unknown */
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = tanh(hh)\n", 0, 3, 13,
                 "cannot infer the width of 'hh' (did you mean 'h'?)");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = tanh(W @ x) * z'\n", 0, 3, 22, "'z' is not a state");
    expect_error("cell s (x) -> h\n  hidden 4\n  init b_q = 1\n  h' = tanh(W @ x + b)\n", 0, 3, 8,
                 "'b_q' is not a parameter of the cell");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = tanh(W @ x) * H\n", 0, 3, 22, "'H' is the hidden size, usable only in sizes");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = tanh + x\n", 0, 3, 8, "'tanh' is a function: expected a call");
}

Test(lang, error_arity)
{
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = min(W @ x)\n", 0, 3, 8, "min takes 2 arguments (a, b), got 1");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = slice(W @ x, 0)\n", 0, 3, 8,
                 "slice takes 3 arguments (a, start, len), got 2");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = tanh(W @ x, h)\n", 0, 3, 8, "tanh takes 1 argument (a), got 2");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = concat()\n", 0, 3, 8, "concat takes at least 1 argument");
}

Test(lang, error_widths)
{
    expect_error("cell s (x) -> h\n  hidden 4\n  weight W : 2*H\n  h' = W @ x + h\n", 0, 4, 14,
                 "the widths of the two sides of '+' differ: the left side is 2*H (= 8) wide and the right side H (= 4)");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = x * concat(x, x)\n", 0, 3, 10,
                 "the left side is I wide and the right side 2*I");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = concat(h, h)\n", 0, 3, 3,
                 "the new value of state 'h' is 2*H (= 8) wide: expected the state's size, H (= 4)");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = W @ h + W @ concat(h, h)\n", 0, 3, 18,
                 "weight 'W' is applied to a value 2*H (= 8) wide here, but to one H (= 4) wide on line 3");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = slice(h, 2, 3)\n", 0, 3, 8,
                 "slice(a, 2, 3) takes columns [2, 5) of a value H (= 4) wide");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = b\n", 0, 3, 8, "cannot infer the width of 'b'");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = b + c\n", 0, 3, 8, "cannot infer the width of 'b'");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = 2\n", 0, 3, 3, "the new value of state 'h' is a constant");
    expect_error("cell s (x) -> h\n  hidden 4\n  vector v : H\n  h' = v * 2\n", 0, 4, 3,
                 "the new value of state 'h' is a vector (no batch axis)");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = W @ b\n", 0, 3, 12, "cannot infer the width of 'b'");
    expect_error("cell s (x) -> h\n  hidden 4\n  vector b : H\n  h' = W @ b\n", 0, 4, 10,
                 "the right side of '@' is a vector (no batch axis)");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = x * (1 / 0)\n", 0, 3, 15, "expected a finite value");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = x / (1 - 1)\n", 0, 3, 10, "division by the constant 0");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = dropout(h, 1)\n", 0, 3, 19, "must be a constant in [0, 1)");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = softmax(3)\n", 0, 3, 16, "softmax(...) of a constant");
}

Test(lang, error_widths_at_unroll)
{
    /* x meets a hidden-sized value: only an input size equal to H works */
    const char *text = "cell s (x) -> h\n"
                       "  hidden 4\n"
                       "  h' = tanh(W @ h + x)\n";
    rc_cell *c = parse_ok(text, 0);
    rc_graph *g = rc_graph_new();
    int xs[2] = { 6, 3 };
    rc_node *x = rc_input(g, "x", RC_F32, 2, xs), *out = NULL;
    cr_expect_neq(rc_unroll(g, c, x, 3, NULL, &out, NULL), RC_OK);
    const char *m = rc_graph_error(g);
    cr_expect(strstr(m, "t.cell:3:19: with input size I = 3 the two sides of '+' differ: the left side is H = 4 wide "
                        "and the right side I = 3") != NULL, "%s", m);
    rc_graph_free(g);
    /* with I = H it builds */
    g = rc_graph_new();
    xs[1] = 4;
    x = rc_input(g, "x", RC_F32, 2, xs);
    cr_expect_eq(rc_unroll(g, c, x, 3, NULL, &out, NULL), RC_OK, "%s", rc_graph_error(g));
    rc_graph_free(g);
    rc_cell_free(c);
    /* the shipped MUT1 names its file and line */
    c = load_shipped("mut1.cell", 5);
    g = rc_graph_new();
    xs[1] = 3;
    x = rc_input(g, "x", RC_F32, 2, xs);
    cr_expect_neq(rc_unroll(g, c, x, 3, NULL, &out, NULL), RC_OK);
    m = rc_graph_error(g);
    cr_expect(strstr(m, "mut1.cell:11:37:") && strstr(m, "with input size I = 3 the two sides of '+' differ"), "%s", m);
    rc_graph_free(g);
    rc_cell_free(c);
    /* a slice whose bounds depend on I */
    c = parse_ok("cell s (x) -> h\n  hidden 2\n  h' = W @ slice(x, 2, I - 2)\n", 0);
    g = rc_graph_new();
    xs[1] = 3;
    x = rc_input(g, "x", RC_F32, 2, xs);
    cr_expect_eq(rc_unroll(g, c, x, 3, NULL, &out, NULL), RC_OK, "%s", rc_graph_error(g));
    rc_graph_free(g);
    g = rc_graph_new();
    xs[1] = 2;
    x = rc_input(g, "x", RC_F32, 2, xs);
    cr_expect_neq(rc_unroll(g, c, x, 1, NULL, &out, NULL), RC_OK);
    cr_expect(strstr(rc_graph_error(g), "t.cell:3:") && strstr(rc_graph_error(g), "would be I - 2 = 0 wide"), "%s",
              rc_graph_error(g));
    rc_graph_free(g);
    rc_cell_free(c);
}

Test(lang, error_state_never_assigned)
{
    expect_error("cell s (x) -> h, c\n  hidden 4\n  h' = tanh(W @ x + U @ c)\n", 0, 1, 18,
                 "state 'c' is never assigned: expected a line c' = ...");
}

Test(lang, error_state_assigned_twice)
{
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = tanh(W @ x)\n  h' = h\n", 0, 4, 3,
                 "state 'h' is assigned twice: expected one line h' = ... (the first is on line 3)");
}

Test(lang, error_name_bound_twice)
{
    expect_error("cell s (x) -> h\n  hidden 4\n  a = W @ x\n  a = U @ h\n  h' = a\n", 0, 4, 3,
                 "name 'a' is bound twice: expected one binding (the first is on line 3)");
    expect_error("cell s (x) -> h\n  hidden 4\n  vector b : H\n  b = W @ x\n  h' = b\n", 0, 4, 3,
                 "name 'b' is bound twice");
    expect_error("cell s (x) -> h\n  hidden 4\n  h = W @ x\n", 0, 3, 3, "'h' is a state: its new value is written h' = ...");
    expect_error("cell s (x) -> h\n  hidden 4\n  x = W @ h\n", 0, 3, 3, "'x' is the cell's input and cannot be bound");
    expect_error("cell s (x) -> h, h\n", 0, 1, 18, "state 'h' is declared twice in the header");
    expect_error("cell s (x) -> x\n", 0, 1, 15, "'x' is the input's name");
    expect_error("cell s (x) -> h\n  hidden 4\n  tanh = W @ x\n", 0, 3, 3, "'tanh' is a function name");
    expect_error("cell s (x) -> h\n  hidden 4\n  weight W : H\n  weight W : H\n", 0, 4, 10, "'W' is declared twice");
}

Test(lang, error_use_before_definition)
{
    /* a later binding: single assignment in order, so a cycle is a use before definition */
    expect_error("cell s (x) -> h\n  hidden 4\n  a = tanh(W @ x + b2)\n  b2 = sigmoid(U @ a)\n  h' = a * b2\n", 0, 3,
                 20, "'b2' is used before its definition on line 4");
    /* a binding that uses itself */
    expect_error("cell s (x) -> h\n  hidden 4\n  a = tanh(W @ x + a)\n  h' = a\n", 0, 3, 20,
                 "'a' is used before its definition on line 3");
    /* a state's new value before its assignment */
    expect_error("cell s (x) -> h, c\n  hidden 4\n  h' = tanh(c')\n  c' = W @ x\n", 0, 3, 13,
                 "'c'' is used before its definition on line 4");
}

Test(lang, error_model_level_ops)
{
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = embedding(E, x)\n", 0, 3, 8,
                 "embedding(...) cannot be used in a cell: token embedding is model-level");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = mse(h, x)\n", 0, 3, 8, "losses are model-level");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = row_slice(h, 0, 1)\n", 0, 3, 8, "a cell sees one step");
}

Test(lang, error_declarations_and_sizes)
{
    expect_error("cell s (x) -> h\n  hidden 4\n  weight W : H * H\n  h' = W @ x\n", 0, 3, 16, "a product of two sizes");
    expect_error("cell s (x) -> h\n  hidden 4\n  state h : I\n  h' = W @ x\n", 0, 3, 13,
                 "a state's size cannot depend on the input size I");
    expect_error("cell s (x) -> h\n  hidden 4\n  state c : H\n", 0, 3, 9, "'c' is not a state of the cell");
    expect_error("cell s (x) -> h\n  hidden 4\n  weight W : H - 4\n  h' = W @ x\n", 0, 3, 16,
                 "the size of weight 'W' is H - 4");
    expect_error("cell s (x) -> h\n  hidden 4\n  weight W : H / 3\n  h' = W @ x\n", 0, 3, 16, "is not a whole number");
    expect_error("cell s (x) -> h\n  hidden 4\n  weight U : H\n  h' = W @ x\n", 0, 3, 10, "weight 'U' is declared but never used");
    expect_error("cell s (x) -> h\n  hidden 4\n  a = W @ x\n  h' = U @ h\n", 0, 3, 3, "'a' is bound but never used");
    expect_error("cell s (x) -> h\n  hidden 4\n  weight W : H\n  h' = W + x\n", 0, 4, 8, "'W' is a weight");
    expect_error("cell s (x) -> h\n  hidden 4\n  h' = b * x + b @ x\n", 0, 3, 16, "'b' is a vector parameter");
    expect_error("cell s (x) -> h\n  hidden 4\n  init b = glorot\n  h' = W @ x + b\n", 0, 3, 8, "'b' is a vector");
    expect_error("cell s (x) -> h\n  hidden 4\n  init b = 1\n  init b = 2\n  h' = W @ x + b\n", 0, 4, 8,
                 "has two init lines");
    expect_error("cell s (x) -> h\n  hidden 4\n  init h = 1\n  h' = W @ x\n", 0, 3, 8, "'h' is a state");
    /* sizes are checked to be positive; H / 2 divides exactly */
    rc_cell *c = parse_ok("cell s (x) -> h, c\n  hidden 4\n  state c : H / 2\n  c' = slice(W @ x, H / 2, H / 2)\n"
                          "  h' = tanh(U @ concat(c', c))\n", 0);
    cr_expect_eq(rc_cell_state_size(c, 1), 2);
    rc_cell_free(c);
}

/* ---- the op list (ops/elementwise_ops.def) ------------------------------------------- */

/* Every elementwise op of the list is a function of the language: name(a), name(a, b),
 * or scale(a, c); each call emits its op. */
Test(lang, every_listed_op)
{
#define LANG_CALL_U(name) #name "(a)"
#define LANG_CALL_UC(name) #name "(a, 0.5)"
#define LANG_CALL_B(name) #name "(a, h)"
    static const struct { const char *op, *call; } ops[] = {
#define EW(ID, name, form, ...) { #name, LANG_CALL_##form(name) },
#include "elementwise_ops.def"
#undef EW
    };
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        char text[256];
        snprintf(text, sizeof text, "cell t (x) -> h\n  hidden 3\n  a = W @ x + U @ h\n  h' = %s + b\n", ops[k].call);
        rc_cell *c = parse_ok(text, 0);
        run r;
        build(&r, c, 2, 3);
        int found = 0;
        for (int i = 0; i < rc_graph_node_count(r.g) && !found; i++)
            found = strcmp(rc_node_op(rc_graph_node(r.g, i)), ops[k].op) == 0;
        cr_expect(found, "%s: no %s node in the graph", ops[k].call, ops[k].op);
        run_free(&r);
        rc_cell_free(c);
    }
    /* and "unknown function" lists them */
    char err[1024] = "";
    const char *bad = "cell t (x) -> h\n  hidden 3\n  h' = softsine(W @ x)\n";
    cr_expect_null(rc_cell_parse(bad, strlen(bad), "t.cell", 0, err, sizeof err));
    cr_expect(strstr(err, "(did you mean 'softsign'?): expected one of sigmoid, tanh, relu, softplus, abs, sqrt, "
                          "exp, log, softsign, min, max, softmax,") != NULL, "%s", err);
}

/* softsign, the op added through the list only: a cell using it against the same cell
 * spelled out as a / (1 + abs(a)) (values and gradients, the plan's passes on in one,
 * off in the other), a constant folded, and the gradient check through the fused step. */
Test(lang, softsign)
{
    rc_cell *c = parse_ok("cell s (x) -> h\n  hidden 4\n  a = W @ x + U @ h + b\n"
                          "  h' = softsign(a) + softsign(-2) * h\n", 0);
    rc_cell *d = parse_ok("cell s (x) -> h\n  hidden 4\n  a = W @ x + U @ h + b\n"
                          "  h' = a / (1 + abs(a)) - 2 / 3 * h\n", 0);
    run r, q;
    build(&r, c, 3, 6);
    build(&q, d, 3, 6);
    cr_expect_eq(rc_graph_init_params(r.g, 5), RC_OK);
    for (int i = 0; i < rc_graph_node_count(r.g); i++) {
        rc_node *p = rc_graph_node(r.g, i);
        if (!is_param(p)) continue;
        if (rc_node_ndim(p) == 1) {   /* a non-zero bias too */
            uint64_t s = 77;
            rnd_fill(&s, rc_param_data(p), rc_node_size(p));
        }
        memcpy(rc_param_data(rc_param_find(q.g, rc_node_name(p))), rc_param_data(p), rc_node_size(p) * 4);
    }
    plan_and_run(&r, 0, 6);
    plan_and_run(&q, RC_PLAN_NO_PASSES, 6);
    int bit = 1;
    double dv = rel_diff(rc_plan_value(r.p, r.out), rc_plan_value(q.p, q.out), rc_node_size(r.out), &bit);
    cr_expect(dv < 1e-5, "outputs differ by %g (relative)", dv);
    rc_node *wrt[8];
    int n = 0;
    for (int i = 0; i < rc_graph_node_count(r.g); i++) {
        rc_node *p = rc_graph_node(r.g, i);
        if (!is_param(p)) continue;
        const float *gr = rc_plan_grad(r.p, p), *gq = rc_plan_grad(q.p, rc_param_find(q.g, rc_node_name(p)));
        cr_assert(gr && gq, "%s: no gradient", rc_node_name(p));
        double dg = rel_diff(gr, gq, rc_node_size(p), &bit);
        cr_expect(dg < 1e-4, "gradient of %s differs by %g (relative)", rc_node_name(p), dg);
        wrt[n++] = p;
    }
    int fused = 0;
    for (int i = 0; i < rc_graph_node_count(r.g); i++) fused += strcmp(rc_node_op(rc_graph_node(r.g, i)), "fused") == 0;
    cr_expect_gt(fused, 0, "the step's softsign was not fused");
    double err = 1;
    cr_expect_eq(rc_gradcheck(r.p, r.loss, n, wrt, 0.01f, &err), RC_OK, "%s", rc_plan_error(r.p));
    cr_expect(err < 5e-3, "gradient check error %g", err);
    run_free(&r);
    run_free(&q);
    rc_cell_free(c);
    rc_cell_free(d);
}

/* ---- reductions are per sequence ------------------------------------------------------ */

/* One forward of `cell` over x [T*B, I] (time-major) from zero states, with the
 * parameters of `from` (by name) when given, else initialised from seed 4 with the
 * vectors random too; the outputs [T*B, H] copied to out. */
static void forward_outputs(const rc_cell *cell, int T, int B, int I, const float *x, rc_graph *from, rc_graph **keep,
                            float *out)
{
    rc_graph *g = rc_graph_new();
    int xs[2] = { T * B, I };
    rc_node *xn = rc_input(g, "x", RC_F32, 2, xs), *o = NULL;
    cr_assert_eq(rc_unroll(g, cell, xn, T, NULL, &o, NULL), RC_OK, "%s", rc_graph_error(g));
    cr_assert_eq(rc_graph_init_params(g, 4), RC_OK);
    for (int i = 0; i < rc_graph_node_count(g); i++) {
        rc_node *p = rc_graph_node(g, i);
        if (!is_param(p)) continue;
        if (from) memcpy(rc_param_data(p), rc_param_data(rc_param_find(from, rc_node_name(p))), rc_node_size(p) * 4);
        else if (rc_node_ndim(p) == 1) {
            uint64_t s = (uint64_t)i;
            rnd_fill(&s, rc_param_data(p), rc_node_size(p));
        }
    }
    rc_plan *p = rc_plan_new_ex(g, 1, &o, RC_PLAN_NO_GRAD);
    cr_assert_not_null(p, "%s", rc_graph_error(g));
    cr_assert_eq(rc_plan_feed(p, xn, x, (size_t)T * B * I), RC_OK);
    cr_assert_eq(rc_plan_forward(p), RC_OK, "%s", rc_plan_error(p));
    memcpy(out, rc_plan_value(p, o), rc_node_size(o) * sizeof *out);
    rc_plan_free(p);
    if (keep) *keep = g;
    else rc_graph_free(g);
}

/* sum(a) and mean(a) of a batch value reduce each sequence's row: a cell using them
 * gives at batch 4 the outputs each sequence gives alone at batch 1 (they once summed
 * over the whole batch, mixing the sequences). A vector's sum stays its total. */
Test(lang, sum_and_mean_are_per_sequence)
{
    enum { T = 3, B = 4, I = 3, H = 4 };
    const char *text = "cell s (x) -> h\n  hidden 4\n  vector v : 3\n"
                       "  a = W @ x + U @ h + b\n"
                       "  h' = tanh(a - mean(a)) + sum(a) / 10 + mean(h) * sum(x) + sum(v)\n";
    rc_cell *c = parse_ok(text, 0);
    float x[T * B * I], all[T * B * H], one[T * H], xb[T * I];
    uint64_t s = 21;
    rnd_fill(&s, x, T * B * I);
    rc_graph *g = NULL;
    forward_outputs(c, T, B, I, x, NULL, &g, all);
    int ops_row_sum = 0, ops_sum = 0;
    for (int i = 0; i < rc_graph_node_count(g); i++) {
        ops_row_sum += strcmp(rc_node_op(rc_graph_node(g, i)), "row_sum") == 0;
        ops_sum += strcmp(rc_node_op(rc_graph_node(g, i)), "sum") == 0;
    }
    cr_expect_eq(ops_row_sum, 2 * T, "sum(a) and sum(x) are row_sum at every step");
    cr_expect_eq(ops_sum, T, "sum(v) of a vector is its sum");
    double worst = 0;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) memcpy(xb + t * I, x + (t * B + b) * I, I * sizeof *xb);
        forward_outputs(c, T, 1, I, xb, g, NULL, one);
        for (int t = 0; t < T; t++)
            for (int k = 0; k < H; k++) worst = fmax(worst, fabs((double)one[t * H + k] - all[(t * B + b) * H + k]));
    }
    cr_expect(worst < 1e-5, "a sequence alone differs from itself in a batch of 4 by %g", worst);
    rc_graph_free(g);
    rc_cell_free(c);
}

/* The one lookup of a cell by name (rc_cell_find): built-ins, the library's files, paths;
 * an unknown name lists every cell there is; RECUR_CELL_LIB moves the library. */
Test(lang, find_by_name_library_and_path)
{
    char err[4096], path[1200];
    unsetenv("RECUR_CELL_LIB");
    cr_assert_str_eq(rc_cell_lib_dir(), RECUR_CELL_DIR, "a test binary in the build folder reads the source's cells");
    rc_cell *b = rc_cell_find("gru-cho", HID, NULL, err, sizeof err);
    cr_assert(b, "%s", err);
    cr_expect_null(rc_cell_source(b), "gru-cho is the built-in C cell");
    rc_cell_free(b);
    rc_cell *l = rc_cell_find("lstm-peephole", HID, NULL, err, sizeof err);
    cr_assert(l, "%s", err);
    cr_expect(rc_cell_source(l) && strstr(rc_cell_source(l), "cell"), "a library cell has its text");
    rc_cell_free(l);
    snprintf(path, sizeof path, "%s/mut2.cell", RECUR_CELL_DIR);
    rc_cell *p = rc_cell_find(path, HID, NULL, err, sizeof err);
    cr_assert(p, "%s", err);
    rc_cell_free(p);
    cr_assert_eq(rc_cell_file("rnn", path, sizeof path, err, sizeof err), 0, "%s", err);
    cr_expect(strstr(path, "/rnn_tanh.cell"), "rnn's file: %s", path);
    cr_expect_null(rc_cell_find("nope", HID, NULL, err, sizeof err));
    cr_expect(strstr(err, "unknown cell 'nope'") && strstr(err, "lstm-peephole") && strstr(err, "gru-cho") &&
                  strstr(err, RECUR_CELL_DIR),
              "%s", err);
    cr_expect_null(rc_cell_find("lstm", 0, NULL, err, sizeof err));
    cr_expect(strstr(err, "hidden size 0"), "%s", err);
    setenv("RECUR_CELL_LIB", "/nonexistent-cells", 1);
    cr_expect_str_eq(rc_cell_lib_dir(), "/nonexistent-cells");
    cr_expect_null(rc_cell_find("lstm-peephole", HID, NULL, err, sizeof err), "the library moved away");
    b = rc_cell_find("lstm", HID, NULL, err, sizeof err);   /* built-ins need no library */
    cr_expect(b, "%s", err);
    rc_cell_free(b);
    unsetenv("RECUR_CELL_LIB");
}
