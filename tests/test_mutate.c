/* Cell search engine (cells/mutate.c, docs/CELLS.md "Mutations and canonical form"):
 *   - printing a checked cell back to text builds the same graph (every shipped cell,
 *     and a cell that uses every construct); printing is a fixed point;
 *   - each mutation kind gives a checked, parseable, different candidate from lstm.cell
 *     and gru.cell, also with an input size other than the hidden size; a seed gives
 *     one candidate;
 *   - 1000 mutation chains from every shipped cell: every candidate passes the checks,
 *     every failure is a message; a sample of candidates unrolls and runs forward and
 *     backward, with as many parameters as rc_cell_param_count says;
 *   - the canonical hash: equal for respellings (names, commuted and regrouped
 *     operands, line order, state order; by hand, and random respellings of mutated
 *     candidates), distinct for the shipped cells;
 *   - parameter counts and the hidden size for a parameter budget;
 *   - the dependence checks, and errors as values. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"
#include "lang.h"     /* lang_compile, and the mutable form: only for respellings */
#include "mutate.h"
#include "test_util.h"

#ifndef RECUR_CELL_DIR
#error "RECUR_CELL_DIR must name cells/lib (tests/meson.build sets it)"
#endif

static const char *const SHIPPED[] = { "gru.cell", "gru_cho.cell", "lstm.cell", "lstm_peephole.cell", "mut1.cell",
                                       "mut2.cell", "mut3.cell", "rnn_relu.cell", "rnn_tanh.cell" };
#define NSHIPPED ((int)(sizeof SHIPPED / sizeof SHIPPED[0]))

static char *read_shipped(const char *file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", RECUR_CELL_DIR, file);
    char *s = tu_read_file(path, NULL);
    cr_assert_not_null(s, "cannot open %s", path);
    return s;
}

static uint64_t hash_of(const char *text)
{
    char err[512] = "";
    uint64_t h = 0;
    cr_assert_eq(rc_cell_canonical_hash(text, strlen(text), &h, err, sizeof err), 0, "%s\n%s", err, text);
    return h;
}

/* ---- one unrolled graph ------------------------------------------------------------------ */

typedef struct run {
    rc_graph *g;
    rc_node *x, *out, *loss;
    rc_node *roots[2 + 16];
    int nroots;
} run;

/* Unrolls `text` at hidden size H over T = 3 steps of B = 2 rows of width I, with a loss
 * that sums the outputs and final states. */
static void build(run *r, const char *text, int H, int I)
{
    char err[1024] = "";
    rc_cell *cell = rc_cell_parse(text, strlen(text), "t.cell", H, err, sizeof err);
    cr_assert_not_null(cell, "%s\n%s", err, text);
    memset(r, 0, sizeof *r);
    r->g = rc_graph_new();
    int xs[2] = { 3 * 2, I };
    r->x = rc_input(r->g, "x", RC_F32, 2, xs);
    int ns = rc_cell_state_count(cell);
    rc_node *fin[16];
    rc_status st = rc_unroll(r->g, cell, r->x, 3, NULL, &r->out, fin);
    cr_assert_eq(st, RC_OK, "rc_unroll: %s\n%s", rc_graph_error(r->g), text);
    r->loss = rc_sum(r->g, r->out);
    for (int i = 0; i < ns; i++) r->loss = rc_add(r->g, r->loss, rc_sum(r->g, fin[i]));
    cr_assert_eq(rc_graph_status(r->g), RC_OK, "%s", rc_graph_error(r->g));
    r->roots[0] = r->loss;
    r->roots[1] = r->out;
    for (int i = 0; i < ns; i++) r->roots[2 + i] = fin[i];
    r->nroots = 2 + ns;
    rc_cell_free(cell);
}

static size_t param_scalars(const run *r)
{
    rc_stats s;
    cr_assert_eq(rc_graph_stats(r->g, r->nroots, r->roots, &s), RC_OK);
    return s.param_scalars;
}

/* Plans the graph and runs forward and backward on fixed inputs: all values finite. */
static void forward_backward(run *r, const char *text)
{
    cr_assert_eq(rc_graph_init_params(r->g, 7), RC_OK);
    rc_plan *p = rc_plan_new(r->g, r->nroots, r->roots);
    cr_assert_not_null(p, "rc_plan_new: %s\n%s", rc_graph_error(r->g), text);
    size_t n = rc_node_size(r->x);
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)((int)(i * 7 % 11) - 5) * 0.1f;
    cr_assert_eq(rc_plan_feed(p, r->x, x, n), RC_OK);
    free(x);
    cr_assert_eq(rc_plan_forward(p), RC_OK, "%s\n%s", rc_plan_error(p), text);
    cr_assert_eq(rc_plan_backward(p, r->loss), RC_OK, "%s\n%s", rc_plan_error(p), text);
    rc_plan_free(p);
}

static void run_free(run *r)
{
    rc_graph_free(r->g);
    r->g = NULL;
}

/* The graphs of two texts are the same: no op count, parameter or use differs. */
static void expect_same_graph(const char *a, const char *b, int H, int I, const char *what)
{
    run ra, rb;
    build(&ra, a, H, I);
    build(&rb, b, H, I);
    rc_graph_diff *d = calloc(1, sizeof *d);
    cr_assert_not_null(d);
    cr_assert_eq(rc_graph_diff_of(ra.g, ra.nroots, ra.roots, rb.g, rb.nroots, rb.roots, d), RC_OK);
    cr_expect(d->n_ops == 0 && d->n_only_a == 0 && d->n_only_b == 0 && d->n_rewired == 0,
              "%s: the printed cell builds another graph (%d op counts, %d/%d parameters only in one, %d rewired%s%s)"
              "\n%s\n---\n%s", what, d->n_ops, d->n_only_a, d->n_only_b, d->n_rewired, d->n_rewired ? ": " : "",
              d->n_rewired ? d->rewired_how[0] : "", a, b);
    rc_stats sa, sb;
    cr_assert_eq(rc_graph_stats(ra.g, ra.nroots, ra.roots, &sa), RC_OK);
    cr_assert_eq(rc_graph_stats(rb.g, rb.nroots, rb.roots, &sb), RC_OK);
    cr_expect_eq(sa.nodes, sb.nodes, "%s: %d nodes, printed %d", what, sa.nodes, sb.nodes);
    cr_expect_eq(sa.op_nodes, sb.op_nodes, "%s", what);
    cr_expect_eq(sa.param_tensors, sb.param_tensors, "%s", what);
    cr_expect_eq(sa.param_scalars, sb.param_scalars, "%s", what);
    free(d);
    run_free(&ra);
    run_free(&rb);
}

/* print(text) parses to the same graph as text, and print(print(text)) == print(text). */
static void check_round_trip(const char *text, int H, int I, const char *what)
{
    char err[1024] = "";
    char *p1 = rc_cell_print(text, strlen(text), 0, err, sizeof err);
    cr_assert_not_null(p1, "%s: %s", what, err);
    char *p2 = rc_cell_print(p1, strlen(p1), 0, err, sizeof err);
    cr_assert_not_null(p2, "%s: the printed text does not parse: %s\n%s", what, err, p1);
    cr_expect_str_eq(p2, p1, "%s: printing is not a fixed point", what);
    expect_same_graph(text, p1, H, I, what);
    cr_expect_eq(hash_of(text), hash_of(p1), "%s: the printed text hashes differently", what);
    free(p1);
    free(p2);
}

/* ---- printing -------------------------------------------------------------------------------- */

Test(mutate, print_round_trip_shipped)
{
    for (int k = 0; k < NSHIPPED; k++) {
        char *t = read_shipped(SHIPPED[k]);
        check_round_trip(t, 5, 5, SHIPPED[k]);   /* I = H: mut1 and mut2 need it */
        if (strncmp(SHIPPED[k], "mut1", 4) != 0 && strncmp(SHIPPED[k], "mut2", 4) != 0)
            check_round_trip(t, 5, 3, SHIPPED[k]);
        free(t);
    }
}

/* Every construct of the language: declarations, inits, a state of another size, slices
 * with sizes in H and I, concat, min/max, functions, constants (scale, one_minus, fills,
 * negative numbers, division), unary minus, matmul(), add(), right-nested sums that need
 * parentheses, a constant binding, reading a state's new value. */
static const char *ALL_FEATURES =
    "# every construct\n"
    "cell every (inp) -> out, mem\n"
    "  hidden 6\n"
    "  state mem : 2*H\n"
    "  weight Wz : 2*H\n"
    "  vector v : H\n"
    "  init Wz = orthogonal 0.5\n"
    "  init Wi = glorot\n"
    "  init v = uniform 0.25\n"
    "  init b = -0.5\n"
    "  init U = orthogonal\n"
    "  init c0 = zeros\n"
    "  k = 2 * 3\n"
    "  z = Wz @ concat(inp, out) + slice(mem, 0, 2*H) * 0.5\n"
    "  a = sigmoid(slice(z, 0, H) + b) * -1.5 - (1 - tanh(slice(z, H, H)))\n"
    "  e = matmul(U, a) / 4 + add(max(a, v), min(0.25, a)) - (a - k * a)\n"
    "  f = softplus(e) + abs(e) - -e + 1e-05 + c0 * e\n"
    "  q = Wi @ concat(inp, row_mean(f)) + slice(concat(inp, f), I, H)\n"
    "  out' = relu(f + q / (1 + exp(-q))) - 2 / (3 + sigmoid(q))\n"
    "  mem' = concat(out', tanh(W2 @ (k * mem) + W3 @ out')) + 0.1\n";

Test(mutate, print_round_trip_features)
{
    check_round_trip(ALL_FEATURES, 0, 3, "every construct");
    check_round_trip(ALL_FEATURES, 0, 6, "every construct");
    char err[512] = "";
    char *p = rc_cell_print(ALL_FEATURES, strlen(ALL_FEATURES), 0, err, sizeof err);
    cr_assert_not_null(p, "%s", err);
    /* the parts a careless printer loses */
    cr_expect(strstr(p, "state mem : 2 * H") != NULL, "%s", p);
    cr_expect(strstr(p, "slice(concat(inp, f), I, H)") != NULL, "%s", p);
    cr_expect(strstr(p, "init U = orthogonal\n") != NULL, "%s", p);
    cr_expect(strstr(p, "init b = const -0.5") != NULL, "%s", p);
    cr_expect(strstr(p, "a - k * a") != NULL, "%s", p);
    free(p);
    /* a dropout prints back (its mask seed follows the line, so the graphs are not compared) */
    const char *d = "cell d (x) -> h\n  hidden 4\n  h' = tanh(W @ dropout(x, 0.25) + U @ h + b)\n";
    char *p1 = rc_cell_print(d, strlen(d), 0, err, sizeof err);
    cr_assert_not_null(p1, "%s", err);
    cr_expect(strstr(p1, "dropout(x, 0.25)") != NULL, "%s", p1);
    free(p1);
    /* the hidden size can be replaced */
    char *p4 = rc_cell_print(d, strlen(d), 9, err, sizeof err);
    cr_assert_not_null(p4, "%s", err);
    cr_expect(strstr(p4, "hidden 9\n") != NULL, "%s", p4);
    free(p4);
}

/* ---- mutations ------------------------------------------------------------------------------ */

static void expect_candidate(const char *orig, const char *cand, int I, const char *what)
{
    char err[1024] = "";
    rc_cell *c = rc_cell_parse(cand, strlen(cand), "candidate", 0, err, sizeof err);
    cr_expect_not_null(c, "%s: the candidate does not parse: %s\n%s", what, err, cand);
    rc_cell_free(c);
    cr_expect_eq(rc_cell_check(cand, strlen(cand), I, err, sizeof err), 0, "%s: %s\n%s", what, err, cand);
    cr_expect_neq(hash_of(orig), hash_of(cand), "%s: the candidate is the same cell\n%s", what, cand);
}

Test(mutate, each_kind_from_lstm_and_gru)
{
    const char *files[2] = { "lstm.cell", "gru.cell" };
    for (int f = 0; f < 2; f++) {
        char *t = read_shipped(files[f]);
        for (unsigned kind = 1; kind <= RC_MUT_COMBINE; kind <<= 1)
            for (int v = 0; v < 2; v++) {   /* I = H, then I = 32 != H = 128 */
                int I = v ? 32 : 128;
                rc_mutate_opts o = { .kinds = kind };
                char err[1024] = "", *out = NULL, what[96];
                snprintf(what, sizeof what, "%s, %s, I = %d", files[f], rc_mut_kind_name(kind), I);
                int r = rc_cell_mutate(t, strlen(t), I, 1, &o, &out, err, sizeof err);
                cr_expect_eq(r, (int)kind, "%s: got %d: %s", what, r, err);
                if (r < 0) continue;
                cr_assert_not_null(out);
                expect_candidate(t, out, I, what);
                free(out);
            }
        free(t);
    }
}

/* The operators do what they say, on a cell where each has one obvious site. */
Test(mutate, operators_do_what_they_say)
{
    const char *gru = "cell g (x) -> h\n  hidden 8\n  z = sigmoid(W_z @ x + U_z @ h + b_z)\n"
                      "  n = tanh(W_n @ x + U_n @ h + b_n)\n  h' = n + z * (h - n)\n";
    int seen_swap = 0, seen_respell = 0, seen_decouple = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        rc_mutate_opts o = { .kinds = RC_MUT_MIX };
        char err[1024] = "", *out = NULL;
        cr_assert_eq(rc_cell_mutate(gru, strlen(gru), 8, seed, &o, &out, err, sizeof err), (int)RC_MUT_MIX, "%s", err);
        seen_respell |= strstr(out, "h' = z * h + (1 - z) * n") != NULL;
        seen_swap |= strstr(out, "h' = h + z * (n - h)") != NULL || strstr(out, "h' = z * n + (1 - z) * h") != NULL;
        seen_decouple |= strstr(out, "sigmoid(W_xm1 @ x + W_hm1 @ h + b_m1) * n") != NULL;
        free(out);
    }
    cr_expect(seen_respell && seen_swap && seen_decouple, "mix: respell %d, swap %d, decouple %d", seen_respell,
              seen_swap, seen_decouple);
    /* a gate: fresh names that do not clash with W_xm1 already in the cell */
    const char *taken = "cell t (x) -> h\n  hidden 4\n  h' = tanh(W_xm1 @ x + W_hh @ h + b)\n";
    rc_mutate_opts o = { .kinds = RC_MUT_GATE_ADD };
    char err[1024] = "", *out = NULL;
    cr_assert_eq(rc_cell_mutate(taken, strlen(taken), 4, 3, &o, &out, err, sizeof err), (int)RC_MUT_GATE_ADD, "%s", err);
    cr_expect(strstr(out, "W_xm2 @ x + W_hm2 @ h + b_m2") != NULL, "%s", out);
    free(out);
    /* a gate on a value of another width declares its weights' size */
    const char *wide = "cell w (x) -> h, c\n  hidden 4\n  state c : 2*H\n  weight V : 2*H\n"
                       "  c' = tanh(V @ x + c)\n  h' = tanh(W @ x + U @ c' + b)\n";
    int declared = 0;
    for (uint64_t seed = 1; seed <= 30 && !declared; seed++) {
        char *o2 = NULL;
        if (rc_cell_mutate(wide, strlen(wide), 3, seed, &o, &o2, err, sizeof err) < 0) continue;
        declared = strstr(o2, "weight W_xm1 : 2*H") != NULL && strstr(o2, "weight W_hm1 : 2*H") != NULL;
        free(o2);
    }
    cr_expect(declared, "no gate on the 2*H-wide state declared its weights' size");
    /* removing the only gate drops its binding and its parameters' declarations and inits */
    const char *gated = "cell t (x) -> h\n  hidden 4\n  weight W_g : H\n  init b_g = 1\n"
                        "  g = sigmoid(W_g @ x + b_g)\n  h' = g * tanh(W @ x + U @ h + b)\n";
    rc_mutate_opts rm = { .kinds = RC_MUT_GATE_REMOVE };
    cr_assert_eq(rc_cell_mutate(gated, strlen(gated), 4, 1, &rm, &out, err, sizeof err), (int)RC_MUT_GATE_REMOVE, "%s",
                 err);
    cr_expect(strstr(out, "W_g") == NULL && strstr(out, "b_g") == NULL && strstr(out, "g =") == NULL, "%s", out);
    cr_expect(strstr(out, "h' = tanh(W @ x + U @ h + b)") != NULL, "%s", out);
    free(out);
}

Test(mutate, same_seed_same_candidate)
{
    char *t = read_shipped("lstm.cell");
    char err[1024] = "";
    char *texts[20] = { 0 };
    int distinct = 0;
    for (int s = 0; s < 20; s++) {
        char *a = NULL, *b = NULL;
        int ra = rc_cell_mutate(t, strlen(t), 128, (uint64_t)s * 977 + 5, NULL, &a, err, sizeof err);
        int rb = rc_cell_mutate(t, strlen(t), 128, (uint64_t)s * 977 + 5, NULL, &b, err, sizeof err);
        cr_assert(ra > 0 && rb == ra, "seed %d: %d, %d: %s", s, ra, rb, err);
        cr_expect_str_eq(a, b, "seed %d gave two candidates", s);
        int fresh = 1;
        for (int j = 0; j < s; j++) fresh &= strcmp(texts[j], a) != 0;
        distinct += fresh;
        texts[s] = a;
        free(b);
    }
    cr_expect_geq(distinct, 10, "20 seeds gave only %d distinct candidates", distinct);
    for (int s = 0; s < 20; s++) free(texts[s]);
    free(t);
}

/* 1000 chains of 3 mutations from every shipped cell. Every candidate parses and passes
 * the checks; a failure is -1 with a message and no text. Every 100th candidate is
 * unrolled at H = I = 4 and run forward and backward, with the parameter count
 * rc_cell_param_count gives. */
Test(mutate, chains_from_every_shipped_cell, .timeout = 600)
{
    for (int f = 0; f < NSHIPPED; f++) {
        char *t = read_shipped(SHIPPED[f]);
        int ok = 0, failed = 0, n = 0;
        for (int chain = 0; chain < 1000; chain++) {
            char *cur = strdup(t);
            for (int step = 0; step < 3; step++) {
                char err[1024] = "", *out = NULL;
                uint64_t seed = (uint64_t)f * 1000003u + (uint64_t)chain * 7919u + (uint64_t)step;
                int r = rc_cell_mutate(cur, strlen(cur), 128, seed, NULL, &out, err, sizeof err);
                if (r < 0) {
                    cr_expect_null(out);
                    cr_expect(err[0] != 0, "%s: a failure without a message", SHIPPED[f]);
                    failed++;
                    break;
                }
                cr_assert_not_null(out);
                cr_expect_eq(rc_cell_check(out, strlen(out), 128, err, sizeof err), 0, "%s: %s\n%s", SHIPPED[f], err,
                             out);
                if (n++ % 100 == 0) {
                    char *small = rc_cell_print(out, strlen(out), 4, err, sizeof err);
                    cr_assert_not_null(small, "%s", err);
                    run r4;
                    build(&r4, small, 4, 4);
                    long long pc = rc_cell_param_count(small, strlen(small), 0, 4, err, sizeof err);
                    cr_expect_eq((size_t)pc, param_scalars(&r4), "%s: rc_cell_param_count %lld\n%s", SHIPPED[f], pc, small);
                    forward_backward(&r4, small);
                    run_free(&r4);
                    free(small);
                }
                free(cur);
                cur = out;
                ok++;
            }
            free(cur);
        }
        cr_expect_gt(ok, 2000, "%s: only %d of 3000 mutations passed (%d chains stopped)", SHIPPED[f], ok, failed);
        free(t);
    }
}

/* ---- canonical form ---------------------------------------------------------------------------- */

static const char *LSTM_A =
    "cell lstm (x) -> h, c\n  hidden 16\n  init b_f = 1.0\n"
    "  g = tanh(W_xg @ x + W_hg @ h + b_g)\n"
    "  i = sigmoid(W_xi @ x + W_hi @ h + b_i)\n"
    "  f = sigmoid(W_xf @ x + W_hf @ h + b_f)\n"
    "  c' = f * c + i * g\n"
    "  o = sigmoid(W_xo @ x + W_ho @ h + b_o)\n"
    "  h' = o * tanh(c')\n";

/* The same cell: other names (cell, bindings, parameters, the second state), the lines
 * in another order, commuted and regrouped operands, another hidden size. */
static const char *LSTM_B =
    "cell other (inp) -> out, mem\n  hidden 32\n  init bias_forget = 1\n"
    "  og = sigmoid(bias_o + (U3 @ out + V3 @ inp))\n"
    "  fg = sigmoid(U1 @ out + bias_forget + V1 @ inp)\n"
    "  ig = sigmoid(V2 @ inp + U2 @ out + bias_i)\n"
    "  cand = tanh(bias_c + V0 @ inp + U0 @ out)\n"
    "  mem' = cand * ig + mem * fg\n"
    "  out' = tanh(mem') * og\n";

Test(mutate, canonical_hash_ignores_spelling)
{
    cr_expect_eq(hash_of(LSTM_A), hash_of(LSTM_B));
    char err[512] = "";
    char *ca = rc_cell_canonical_text(LSTM_A, strlen(LSTM_A), err, sizeof err);
    char *cb = rc_cell_canonical_text(LSTM_B, strlen(LSTM_B), err, sizeof err);
    cr_assert(ca && cb, "%s", err);
    cr_expect_str_eq(ca, cb);
    free(ca);
    free(cb);
    char *shipped = read_shipped("lstm.cell");
    cr_expect_eq(hash_of(LSTM_A), hash_of(shipped));   /* comments, hidden 128 */
    free(shipped);
    /* a + b vs b + a; renamed temporaries; -a vs (-1) * a */
    const char *s1 = "cell s (x) -> h\n  hidden 4\n  a = W @ x\n  h' = tanh(a + U @ h) - -h\n";
    const char *s2 = "cell s (x) -> h\n  hidden 4\n  t = W @ x\n  h' = tanh(U @ h + t) - (-1) * h\n";
    cr_expect_eq(hash_of(s1), hash_of(s2));
    /* the order of the states after the first */
    const char *t1 = "cell t (x) -> h, p, q\n  hidden 4\n  p' = tanh(A @ x + p)\n  q' = sigmoid(B @ h + q)\n"
                     "  h' = p' * q' + C @ x\n";
    const char *t2 = "cell t (x) -> h, r, s\n  hidden 4\n  s' = tanh(A @ x + s)\n  r' = sigmoid(B @ h + r)\n"
                     "  h' = r' * s' + C @ x\n";
    cr_expect_eq(hash_of(t1), hash_of(t2));
    /* a parameter used twice, with its operands commuted: sharing decides, not names */
    const char *u1 = "cell u (x) -> h\n  hidden 4\n  h' = A @ x * B @ x + A @ h\n";
    const char *u2 = "cell u (x) -> h\n  hidden 4\n  h' = P @ h + Q @ x * P @ x\n";
    cr_expect_eq(hash_of(u1), hash_of(u2));
}

/* Random respellings of the shipped cells and of mutated candidates hash as the cell. */
static char *respell(const char *text, uint64_t seed)
{
    char err[512] = "";
    lang_prog *p = lang_compile(text, strlen(text), "t", 0, err, sizeof err, NULL);
    cr_assert_not_null(p, "%s", err);
    mcell *m = mcell_from_prog(p, err, sizeof err);
    cr_assert_not_null(m, "%s", err);
    cr_assert_eq(mcell_respell(m, seed), 0);
    char *out = mcell_print(m, err, sizeof err);
    cr_assert_not_null(out, "%s", err);
    mcell_free(m);
    free(p);
    return out;
}

Test(mutate, canonical_hash_of_random_respellings)
{
    int compared = 0, differ = 0;
    for (int f = 0; f < NSHIPPED; f++) {
        char *t = read_shipped(SHIPPED[f]);
        uint64_t h0 = hash_of(t);
        char *cur = strdup(t);
        for (int step = 0; step < 60; step++) {
            if (step > 0) {   /* walk on: the next candidate of a chain */
                char err[1024] = "", *out = NULL;
                if (rc_cell_mutate(cur, strlen(cur), 128, (uint64_t)f * 131 + (uint64_t)step, NULL, &out, err,
                                   sizeof err) < 0) {
                    free(out);
                    free(cur);
                    cur = strdup(t);
                    continue;
                }
                free(cur);
                cur = out;
                h0 = hash_of(cur);
            }
            for (uint64_t seed = 1; seed <= 4; seed++) {
                char *r = respell(cur, seed * 1000 + (uint64_t)step);
                char err[512] = "";
                uint64_t h = 0;
                if (rc_cell_canonical_hash(r, strlen(r), &h, err, sizeof err) == 0) {
                    compared++;
                    differ += strcmp(r, cur) != 0;
                    cr_expect_eq(h, h0, "%s, step %d: a respelling hashes differently:\n%s\n---\n%s", SHIPPED[f], step, cur,
                                 r);
                }
                free(r);
            }
        }
        free(cur);
        free(t);
    }
    cr_expect_gt(compared, 1000, "only %d respellings checked", compared);
    cr_expect_gt(differ, compared / 2, "only %d of %d respellings differ from the text", differ, compared);
}

Test(mutate, canonical_hash_tells_cells_apart)
{
    uint64_t h[NSHIPPED];
    for (int k = 0; k < NSHIPPED; k++) {
        char *t = read_shipped(SHIPPED[k]);
        h[k] = hash_of(t);
        free(t);
        for (int j = 0; j < k; j++) cr_expect_neq(h[j], h[k], "%s and %s hash equal", SHIPPED[j], SHIPPED[k]);
    }
    /* what the canonical form keeps: an init, an activation, parameter sharing, the
     * operand order of '-', a state's size */
    const char *a = "cell a (x) -> h\n  hidden 4\n  h' = tanh(W @ x + U @ h + b)\n";
    const char *variants[] = {
        "cell a (x) -> h\n  hidden 4\n  init b = 1\n  h' = tanh(W @ x + U @ h + b)\n",
        "cell a (x) -> h\n  hidden 4\n  h' = relu(W @ x + U @ h + b)\n",
        "cell a (x) -> h\n  hidden 4\n  h' = tanh(W @ x + W @ h + b)\n",
        "cell a (x) -> h\n  hidden 4\n  h' = tanh(W @ x - U @ h + b)\n",
        "cell a (x) -> h\n  hidden 4\n  h' = tanh(U @ h - W @ x + b)\n",
    };
    uint64_t hv[5];
    for (int k = 0; k < 5; k++) {
        hv[k] = hash_of(variants[k]);
        cr_expect_neq(hash_of(a), hv[k], "%s", variants[k]);
        for (int j = 0; j < k; j++) cr_expect_neq(hv[j], hv[k], "%s\n%s", variants[j], variants[k]);
    }
}

/* ---- parameter counts ----------------------------------------------------------------------------- */

Test(mutate, param_count_matches_the_graph)
{
    char err[512] = "";
    char *lstm = read_shipped("lstm.cell");
    long long n = rc_cell_param_count(lstm, strlen(lstm), 7, 3, err, sizeof err);
    cr_expect_eq(n, 4LL * (7 * 3 + 7 * 7 + 7), "%lld: %s", n, err);
    for (int k = 0; k < NSHIPPED; k++) {
        char *t = read_shipped(SHIPPED[k]);
        run r;
        build(&r, t, 6, 6);
        cr_expect_eq((size_t)rc_cell_param_count(t, strlen(t), 6, 6, err, sizeof err), param_scalars(&r), "%s: %s",
                     SHIPPED[k], err);
        run_free(&r);
        free(t);
    }
    /* a width tied to I that does not hold: an error, not a count */
    char *mut1 = read_shipped("mut1.cell");
    cr_expect_eq(rc_cell_param_count(mut1, strlen(mut1), 8, 3, err, sizeof err), -1);
    cr_expect(strstr(err, "input size I = 3") != NULL, "%s", err);
    free(mut1);
    free(lstm);
}

Test(mutate, hidden_for_params)
{
    char err[512] = "";
    char *lstm = read_shipped("lstm.cell");
    size_t len = strlen(lstm);
    long long c = 0;
    long long n50 = 4LL * (50 * 10 + 50 * 50 + 50), n51 = 4LL * (51 * 10 + 51 * 51 + 51);
    cr_expect_eq(rc_cell_hidden_for_params(lstm, len, 10, n50, &c, err, sizeof err), 50, "%s", err);
    cr_expect_eq(c, n50);
    cr_expect_eq(rc_cell_hidden_for_params(lstm, len, 10, n50 + 3, &c, err, sizeof err), 50, "%s", err);
    cr_expect_eq(rc_cell_hidden_for_params(lstm, len, 10, (n50 + n51) / 2 - 5, &c, err, sizeof err), 50, "%s", err);
    cr_expect_eq(rc_cell_hidden_for_params(lstm, len, 10, (n50 + n51) / 2 + 5, &c, err, sizeof err), 51, "%s", err);
    cr_expect_eq(c, n51);
    /* every hidden size from 1 to 300 is found from its own count */
    for (int H = 1; H <= 300; H++) {
        long long want = 4LL * (H * 10 + H * H + H);
        cr_expect_eq(rc_cell_hidden_for_params(lstm, len, 10, want, &c, err, sizeof err), H, "%s", err);
    }
    cr_expect_eq(rc_cell_hidden_for_params(lstm, len, 10, 1, &c, err, sizeof err), 1, "%s", err);
    free(lstm);
    /* MUT1 adds x to a value of width H: only H = I builds */
    char *mut1 = read_shipped("mut1.cell");
    cr_expect_eq(rc_cell_hidden_for_params(mut1, strlen(mut1), 32, 1000000, &c, err, sizeof err), 32, "%s", err);
    cr_expect_eq(c, rc_cell_param_count(mut1, strlen(mut1), 32, 32, err, sizeof err));
    free(mut1);
    /* errors */
    cr_expect_eq(rc_cell_hidden_for_params("cell", 4, 10, 100, &c, err, sizeof err), -1);
    cr_expect(strncmp(err, "cell:", 5) == 0, "%s", err);
    cr_expect_eq(rc_cell_hidden_for_params(LSTM_A, strlen(LSTM_A), 0, 100, &c, err, sizeof err), -1);
    cr_expect(strstr(err, "input size 0") != NULL, "%s", err);
    /* 2*I = 3*H: H = 2 for I = 3, none for I = 4 */
    const char *tied = "cell n (x) -> h\n  hidden 4\n"
                       "  h' = tanh(W @ x + U @ h + b) + slice(concat(x, x) * concat(h, h, h), 0, H)\n";
    cr_expect_eq(rc_cell_hidden_for_params(tied, strlen(tied), 3, 100, &c, err, sizeof err), 2, "%s", err);
    cr_expect_eq(rc_cell_hidden_for_params(tied, strlen(tied), 4, 100, &c, err, sizeof err), -1);
    cr_expect(strstr(err, "no hidden size builds it") != NULL, "%s", err);
}

/* ---- checks and errors ---------------------------------------------------------------------------- */

Test(mutate, check_rejects_cells_without_recurrence)
{
    struct {
        const char *text, *frag;
    } bad[] = {
        { "cell t (x) -> h\n  hidden 4\n  h' = tanh(U @ h + b)\n", "does not depend on the input 'x'" },
        { "cell t (x) -> h\n  hidden 4\n  h' = tanh(W @ x + b)\n", "depends on no state's previous value" },
        { "cell t (x) -> h, c\n  hidden 4\n  c' = tanh(V @ x)\n  h' = tanh(W @ x + U @ c)\n",
          "through a fixed number of steps only" },
        { "cell t (x) -> h, c\n  hidden 4\n  c' = tanh(V @ c)\n  h' = tanh(W @ x + U @ c)\n",
          "none of the states" },
        { "cell t (x) -> h, c\n  hidden 4\n  c' = tanh(V @ x + c)\n  h' = tanh(W @ x + U @ h)\n",
          "state 'c' never reaches the output" },
        { "cell t (x) -> h\n  hidden 4\n  h' = tanh(W @ x + h + x)\n", "with input size I = 3" },
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char err[512] = "";
        cr_expect_eq(rc_cell_check(bad[k].text, strlen(bad[k].text), 3, err, sizeof err), -1, "%s", bad[k].text);
        cr_expect(strstr(err, bad[k].frag) != NULL, "expected \"%s\" in \"%s\"", bad[k].frag, err);
    }
    for (int k = 0; k < NSHIPPED; k++) {
        char *t = read_shipped(SHIPPED[k]);
        char err[512] = "";
        cr_expect_eq(rc_cell_check(t, strlen(t), 128, err, sizeof err), 0, "%s: %s", SHIPPED[k], err);
        free(t);
    }
}

Test(mutate, errors_are_values)
{
    char err[512] = "", *out = (char *)"untouched";
    cr_expect_eq(rc_cell_mutate("cell x", 6, 4, 1, NULL, &out, err, sizeof err), -1);
    cr_expect_null(out);
    cr_expect(strncmp(err, "cell:1:", 7) == 0, "%s", err);
    cr_expect_eq(rc_cell_mutate(LSTM_A, strlen(LSTM_A), 4, 1, NULL, NULL, err, sizeof err), -1);
    cr_expect(strstr(err, "out_text is NULL") != NULL, "%s", err);
    rc_mutate_opts bad = { .kinds = 0x100 };
    cr_expect_eq(rc_cell_mutate(LSTM_A, strlen(LSTM_A), 4, 1, &bad, &out, err, sizeof err), -1);
    cr_expect(strstr(err, "RC_MUT_") != NULL, "%s", err);
    cr_expect_eq(rc_cell_mutate(LSTM_A, strlen(LSTM_A), 0, 1, NULL, &out, err, sizeof err), -1);
    /* a kind with no place in the cell: the reason, not a crash */
    const char *rnn = "cell r (x) -> h\n  hidden 4\n  h' = tanh(W @ x + U @ h + b)\n";
    rc_mutate_opts mix = { .kinds = RC_MUT_MIX };
    cr_expect_eq(rc_cell_mutate(rnn, strlen(rnn), 4, 1, &mix, &out, err, sizeof err), -1);
    cr_expect(strstr(err, "no place for a mix mutation") != NULL, "%s", err);
    /* with I2 != H, swapping x and h cannot pass: the reason names the failed check */
    rc_mutate_opts sw = { .kinds = RC_MUT_SWAP, .input_size2 = 3 };
    cr_expect_eq(rc_cell_mutate(rnn, strlen(rnn), 4, 1, &sw, &out, err, sizeof err), -1);
    cr_expect(strstr(err, "no mutation passed the checks") != NULL, "%s", err);
    cr_expect_str_eq(rc_mut_kind_name(RC_MUT_SWAP), "swap");
    cr_expect_str_eq(rc_mut_kind_name(3), "");
    uint64_t h = 1;
    cr_expect_eq(rc_cell_canonical_hash("nope", 4, &h, err, sizeof err), -1);
    cr_expect_eq(h, 0u);
    cr_expect_null(rc_cell_print("nope", 4, 0, err, sizeof err));
    cr_expect_null(rc_cell_canonical_text("nope", 4, err, sizeof err));
}
