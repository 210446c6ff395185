/* Inspection: graph statistics against closed forms (parameters and GEMM FLOPs of
 * LSTM and GRU, before and after the plan's passes, per step and unrolled), what the
 * passes made, the Graphviz writer (accepted by `dot`, clusters, atomic on errors),
 * structural diffs, the gradient flow (a tanh RNN's gradient vanishes much faster
 * than an LSTM's), and `recur inspect` (also --gradcheck) / `recur compare` run as
 * child processes.
 *
 * Checks use cr_expect (non-fatal) where possible, so every test frees its graphs and
 * plans: the suite runs under AddressSanitizer's leak checker. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "recur.h"

#include "test_util.h"

/* ---- helpers ------------------------------------------------------------------- */

/* One cell unrolled over T steps of B sequences of I features; roots: the stacked
 * outputs and the final states. */
typedef struct built { rc_graph *g; rc_node *roots[4]; int nroots; rc_plan *p; } built;

static void build(built *b, rc_cell *cell, int I, int T, int B)
{
    memset(b, 0, sizeof *b);
    b->g = rc_graph_new();
    cr_assert_not_null(b->g);
    int shape[2] = { T * B, I };
    rc_node *x = rc_input(b->g, "x", RC_F32, 2, shape), *out = NULL, *fin[4] = { 0 };
    cr_assert_eq(rc_unroll(b->g, cell, x, T, NULL, &out, fin), RC_OK, "%s", rc_graph_error(b->g));
    b->roots[b->nroots++] = out;
    for (int i = 0; i < rc_cell_state_count(cell); i++)
        if (fin[i] != out) b->roots[b->nroots++] = fin[i];
}

static void plan(built *b)
{
    b->p = rc_plan_new(b->g, b->nroots, b->roots);
    cr_assert_not_null(b->p, "%s", rc_graph_error(b->g));
}

static void unbuild(built *b)
{
    rc_plan_free(b->p);
    rc_graph_free(b->g);
    memset(b, 0, sizeof *b);
}

static const rc_op_stat *op_of(const rc_stats *s, const char *op)
{
    for (int i = 0; i < s->n_ops; i++)
        if (!strcmp(s->ops[i].op, op)) return &s->ops[i];
    return NULL;
}

static double matmul_fwd(const rc_stats *s)
{
    const rc_op_stat *m = op_of(s, "matmul");
    return m ? m->fwd_flops : 0;
}

/* Runs argv with stdout and stderr into `out`; returns the exit status (-1: no exit). */
static int run(char *const argv[], const char *out)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

/* ---- statistics: closed forms ----------------------------------------------------- */

/* Parameters and matmul FLOPs of a cell with G gates (4 LSTM, 3 GRU) against the closed
 * forms, on the step graph and unrolled, before and after the passes. */
static void check_cell(rc_cell *cell, int G, size_t params, int H, int I, int B, int T)
{
    double gemm_step = 2.0 * B * G * H * (double)(I + H);
    built b;
    rc_stats s;

    build(&b, cell, I, 1, B);
    cr_expect_eq(rc_graph_stats(b.g, b.nroots, b.roots, &s), RC_OK);
    cr_expect_eq(s.param_scalars, params, "params %zu, closed form %zu", s.param_scalars, params);
    cr_expect_eq(s.param_tensors, G == 4 ? 12 : 10);
    cr_expect_eq(matmul_fwd(&s), gemm_step, "step matmul FLOPs %g, closed form %g", matmul_fwd(&s), gemm_step);
    cr_expect_eq(op_of(&s, "matmul")->count, 2 * G);
    /* backward: x is an input and h_0 a constant, so each matmul only makes dW: 1x */
    cr_expect_eq(op_of(&s, "matmul")->bwd_flops, gemm_step);
    cr_expect_eq(s.time_batch_gemms + s.fused_gemms + s.fused_ew_groups, 0, "nothing made before a plan");
    cr_expect_eq(s.activation_bytes, s.value_bytes + s.grad_bytes + s.aux_bytes);
    cr_expect_eq(s.param_grad_bytes, 4 * params);
    plan(&b);
    double plan_flops = rc_plan_flops(b.p);
    cr_expect_eq(rc_graph_stats(b.g, b.nroots, b.roots, &s), RC_OK);
    cr_expect_eq(s.param_scalars, params);
    cr_expect_eq(matmul_fwd(&s), gemm_step, "after passes: %g, closed form %g", matmul_fwd(&s), gemm_step);
    cr_expect_eq(op_of(&s, "matmul")->count, 2, "the gates' x- and h-projections fused into two GEMMs");
    cr_expect_eq(s.fused_gemms, 2);
    cr_expect(fabs(s.fwd_flops - plan_flops) <= 1e-9 * plan_flops, "stats %g, plan %g", s.fwd_flops, plan_flops);
    unbuild(&b);

    build(&b, cell, I, T, B);
    cr_expect_eq(rc_graph_stats(b.g, b.nroots, b.roots, &s), RC_OK);
    cr_expect_eq(s.param_scalars, params);
    cr_expect_eq(matmul_fwd(&s), T * gemm_step);
    /* d h_{t-1} too from step 1 on: x-projections 1x, h-projections 1x at t = 0, 2x after */
    double bwd = T * 2.0 * B * G * H * I + 2.0 * B * G * H * H * (1 + 2 * (T - 1));
    cr_expect_eq(op_of(&s, "matmul")->bwd_flops, bwd, "matmul backward %g, closed form %g",
                 op_of(&s, "matmul")->bwd_flops, bwd);
    plan(&b);
    plan_flops = rc_plan_flops(b.p);
    cr_expect_eq(rc_graph_stats(b.g, b.nroots, b.roots, &s), RC_OK);
    cr_expect_eq(matmul_fwd(&s), T * gemm_step, "unrolled after passes: %g, closed form %g", matmul_fwd(&s),
                 T * gemm_step);
    cr_expect(fabs(s.fwd_flops - plan_flops) <= 1e-9 * plan_flops, "stats %g, plan %g", s.fwd_flops, plan_flops);
    cr_expect_eq(s.time_batch_gemms, G, "one GEMM over T*B rows per input projection");
    cr_expect_eq(s.fused_gemms, T + 1, "the input projections once, the h-projections per step");
    cr_expect_eq(op_of(&s, "matmul")->count, T + 1);
    int ng = rc_graph_pass_groups(b.g, b.nroots, b.roots, NULL, 0);
    cr_expect_geq(ng, 2 * T + 1);
    rc_pass_group *gs = calloc((size_t)ng + 1, sizeof *gs);
    cr_assert_not_null(gs);
    cr_expect_eq(rc_graph_pass_groups(b.g, b.nroots, b.roots, gs, ng), ng);
    int tb = 0, tbf = 0;
    for (int i = 0; i < ng; i++) {
        if (gs[i].pass == RC_PASS_TIME_BATCH && strstr(gs[i].what, "time-batched")) tb++;
        if (gs[i].pass == RC_PASS_GEMM_FUSION && strstr(gs[i].what, "time-batched, fused GEMM")) tbf++;
    }
    cr_expect_eq(tb, G);
    cr_expect_eq(tbf, 1, "the time-batched projections fused into one GEMM");
    free(gs);
    unbuild(&b);
}

Test(inspect, lstm_closed_forms)
{
    int H = 24, I = 10, B = 5, T = 7;
    rc_cell *c = rc_cell_lstm(H, NULL);
    check_cell(c, 4, (size_t)4 * (H * I + H * H + H), H, I, B, T);
    rc_cell_free(c);
}

Test(inspect, gru_closed_forms)
{
    int H = 20, I = 13, B = 3, T = 5;
    rc_cell *c = rc_cell_gru(H, RC_GRU_RESET_AFTER);
    check_cell(c, 3, (size_t)3 * (H * I + H * H) + 4 * H, H, I, B, T);
    rc_cell_free(c);
}

Test(inspect, activation_memory_grows_with_T_times_B)
{
    rc_cell *c = rc_cell_gru(16, RC_GRU_RESET_AFTER);
    double m[2][2];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            built b;
            rc_stats s;
            build(&b, c, 8, 4 + 4 * i, 2 + 2 * j);
            plan(&b);
            cr_expect_eq(rc_graph_stats(b.g, b.nroots, b.roots, &s), RC_OK);
            m[i][j] = (double)s.activation_bytes;
            unbuild(&b);
        }
    /* doubling T doubles the T*B part: the growth at 2B is twice the growth at B */
    double d1 = m[1][0] - m[0][0], d2 = m[1][1] - m[0][1];
    cr_expect_gt(d1, 0);
    cr_expect(fabs(d2 - 2 * d1) <= 1e-9 * d2, "growth %g at B, %g at 2B", d1, d2);
    rc_cell_free(c);
}

Test(inspect, errors_are_values)
{
    rc_stats s;
    rc_graph *g = rc_graph_new(), *h = rc_graph_new();
    int shape[2] = { 2, 3 };
    rc_node *x = rc_input(g, "x", RC_F32, 2, shape), *y = rc_input(h, "y", RC_F32, 2, shape);
    rc_node *d = rc_forward_decl(g, "d", 2, shape), *z = rc_add(g, x, d);
    cr_expect_eq(rc_graph_stats(NULL, 1, &x, &s), RC_ERR_ARG);
    cr_expect_eq(rc_graph_stats(g, 0, &x, &s), RC_ERR_ARG);
    cr_expect_eq(rc_graph_stats(g, 1, &x, NULL), RC_ERR_ARG);
    cr_expect_eq(rc_graph_stats(g, 1, &y, &s), RC_ERR_ARG, "a root of another graph");
    cr_expect_eq(rc_graph_stats(g, 1, &z, &s), RC_ERR_GRAPH, "an undefined forward declaration");
    cr_expect_eq(rc_graph_pass_groups(g, 1, &z, NULL, 0), -1);
    char err[256] = "";
    cr_expect_eq(rc_graph_write_dot(g, 1, &z, "/tmp/never.dot", NULL, err, sizeof err), RC_ERR_GRAPH);
    cr_expect(strstr(err, "never defined") != NULL, "%s", err);
    cr_expect_eq(rc_graph_stats(g, 1, &x, &s), RC_OK);
    cr_expect_eq(s.nodes, 1);
    cr_expect_eq(s.inputs, 1);
    cr_expect_eq(s.op_nodes, 0);
    cr_expect_eq(rc_graph_status(g), RC_OK, "inspection records nothing on the graph");
    cr_expect_eq(rc_gradient_flow(NULL, 4, 3, 2, 1, 0, NULL, NULL, err, sizeof err), RC_ERR_ARG);
    rc_graph_free(g);
    rc_graph_free(h);
}

/* ---- Graphviz ------------------------------------------------------------------- */

Test(inspect, dot_after_passes_has_clusters_and_dot_accepts_it)
{
    char dir[] = "/tmp/recur-inspect-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    rc_cell *c = rc_cell_lstm(8, NULL);
    built b;
    build(&b, c, 5, 3, 2);
    char path[256], err[512] = "", *text = NULL;
    snprintf(path, sizeof path, "%s/unrolled.dot", dir);
    /* before the passes: no pass clusters, but one cluster per step */
    rc_dot_opts o = { .step_clusters = 1, .title = "lstm \"unrolled\"" };
    cr_expect_eq(rc_graph_write_dot(b.g, b.nroots, b.roots, path, &o, err, sizeof err), RC_OK, "%s", err);
    text = tu_read_file(path, NULL);
    cr_assert_not_null(text);
    cr_expect(strstr(text, "digraph") != NULL);
    cr_expect(strstr(text, "subgraph cluster_step_2") != NULL, "a cluster per step");
    cr_expect(strstr(text, "W_xi") != NULL && strstr(text, "shape=box") != NULL, "parameters as boxes");
    cr_expect(strstr(text, "\\\"unrolled\\\"") != NULL, "quotes escaped");
    free(text);
    plan(&b);
    cr_expect_eq(rc_graph_write_dot(b.g, b.nroots, b.roots, path, &o, err, sizeof err), RC_OK, "%s", err);
    text = tu_read_file(path, NULL);
    cr_assert_not_null(text);
    int clusters = 0;
    for (const char *p = text; (p = strstr(p, "subgraph cluster_")) != NULL; p++)
        if (strncmp(p, "subgraph cluster_step", 21) != 0) clusters++;
    cr_expect_geq(clusters, 4, "pass groups drawn as clusters (%d)", clusters);
    cr_expect(strstr(text, "fused GEMM") != NULL, "cluster labels say what the pass did");
    free(text);
    if (access("/usr/bin/dot", X_OK) == 0) {
        char out[300];
        snprintf(out, sizeof out, "%s/unrolled.svg", dir);
        char *argv[] = { "/usr/bin/dot", "-Tsvg", "-o", out, path, NULL };
        char log[300];
        snprintf(log, sizeof log, "%s/dot.log", dir);
        cr_expect_eq(run(argv, log), 0, "dot rejected the file");
        struct stat st;
        cr_expect(stat(out, &st) == 0 && st.st_size > 1000, "dot wrote an SVG");
    }
    /* an unwritable path: an error, nothing left behind, the old file untouched */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.dot", dir);
    cr_expect_eq(rc_graph_write_dot(b.g, b.nroots, b.roots, bad, NULL, err, sizeof err), RC_ERR_IO);
    cr_expect(strstr(err, "no/such/dir") != NULL, "%s", err);
    cr_expect_eq(count_entries(dir), access("/usr/bin/dot", X_OK) == 0 ? 3 : 1, "no temporary files left");
    unbuild(&b);
    rc_cell_free(c);
    tu_remove_tree(dir);
    if (access("/usr/bin/dot", X_OK) != 0) cr_skip_test("Graphviz's dot is not installed: the DOT file was not rendered");
}

/* ---- structural diff --------------------------------------------------------------- */

static int has_name(char list[][64], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i], name)) return 1;
    return 0;
}

Test(inspect, diff_of_step_graphs)
{
    rc_cell *lstm = rc_cell_lstm(8, NULL), *gru = rc_cell_gru(8, RC_GRU_RESET_AFTER),
            *cho = rc_cell_gru(8, RC_GRU_RESET_BEFORE);
    built a, b, c;
    build(&a, lstm, 4, 1, 2);
    build(&b, gru, 4, 1, 2);
    build(&c, cho, 4, 1, 2);
    rc_graph_diff *d = malloc(sizeof *d);
    cr_assert_not_null(d);
    cr_expect_eq(rc_graph_diff_of(a.g, a.nroots, a.roots, b.g, b.nroots, b.roots, d), RC_OK);
    cr_expect(has_name(d->only_a, d->n_only_a, "W_xi") && has_name(d->only_a, d->n_only_a, "b_f"));
    cr_expect(has_name(d->only_b, d->n_only_b, "W_hn") && has_name(d->only_b, d->n_only_b, "b_xn"));
    cr_expect_eq(d->n_only_a, 12);
    cr_expect_eq(d->n_only_b, 10);
    int sub = 0, mm = 0;
    for (int i = 0; i < d->n_ops; i++) {
        if (!strcmp(d->ops[i].op, "sub")) sub = d->ops[i].a == 0 && d->ops[i].b == 1;
        if (!strcmp(d->ops[i].op, "matmul")) mm = d->ops[i].a == 8 && d->ops[i].b == 6;
    }
    cr_expect(sub && mm, "op counts: the GRU adds a sub and has 6 matmuls against 8");
    /* the two GRU forms: W_hn multiplies h or r*h */
    cr_expect_eq(rc_graph_diff_of(b.g, b.nroots, b.roots, c.g, c.nroots, c.roots, d), RC_OK);
    cr_expect(has_name(d->rewired, d->n_rewired, "W_hn"), "W_hn rewired (%d rewired)", d->n_rewired);
    cr_expect(has_name(d->only_a, d->n_only_a, "b_hn") && has_name(d->only_b, d->n_only_b, "b_n"));
    cr_expect(!has_name(d->rewired, d->n_rewired, "W_hr"), "W_hr is used the same way");
    /* a graph against itself */
    cr_expect_eq(rc_graph_diff_of(a.g, a.nroots, a.roots, a.g, a.nroots, a.roots, d), RC_OK);
    cr_expect_eq(d->n_ops + d->n_only_a + d->n_only_b + d->n_rewired, 0);
    free(d);
    unbuild(&a);
    unbuild(&b);
    unbuild(&c);
    rc_cell_free(lstm);
    rc_cell_free(gru);
    rc_cell_free(cho);
}

/* ---- gradient flow --------------------------------------------------------------- */

Test(inspect, gradient_flow_vanishes_in_a_tanh_rnn)
{
    enum { T = 30, B = 8, H = 32, I = 8 };
    rc_cell *rnn = rc_cell_rnn(H, RC_ACT_TANH), *lstm = rc_cell_lstm(H, NULL);
    double rl[T], rh[T], ll[T], lh[T], again[T];
    char err[512] = "";
    cr_assert_eq(rc_gradient_flow(rnn, I, T, B, 3, 0, rl, rh, err, sizeof err), RC_OK, "%s", err);
    cr_assert_eq(rc_gradient_flow(lstm, I, T, B, 3, 0, ll, lh, err, sizeof err), RC_OK, "%s", err);
    for (int t = 0; t < T; t++)
        cr_expect(isfinite(rl[t]) && isfinite(rh[t]) && isfinite(ll[t]) && isfinite(lh[t]) && rl[t] > 0 && ll[t] > 0);
    cr_expect(fabs(rh[T - 1] - 1) < 1e-4 && fabs(lh[T - 1] - 1) < 1e-4, "||dh_T/dh_T|| = 1");
    /* the RNN's gradient (default init: small weights) falls by orders of magnitude more */
    double r = rl[0] / rl[T - 1], l = ll[0] / ll[T - 1];
    /* (over seeds 1..8: RNN 5e-9..2e-7, LSTM 3e-4..1e-3, on both measures) */
    cr_expect_lt(r, 1e-5, "tanh RNN: ||dL/dh_0|| / ||dL/dh_T-1|| = %g", r);
    cr_expect_lt(r * 100, l, "RNN %g against LSTM %g", r, l);
    cr_expect_lt(rh[0] * 100, lh[0], "||dh_T/dh_0||: RNN %g against LSTM %g", rh[0], lh[0]);
    for (int t = 1; t < T; t++) cr_expect_lt(rh[t - 1], rh[t], "the RNN's ||dh_T/dh_t|| decays towards t = 0");
    /* deterministic for a seed */
    cr_expect_eq(rc_gradient_flow(rnn, I, T, B, 3, 0, again, NULL, err, sizeof err), RC_OK);
    cr_expect_eq(memcmp(again, rl, sizeof again), 0);
    /* per-step loss: every step's own term keeps ||dL/dh_t|| up */
    cr_expect_eq(rc_gradient_flow(rnn, I, T, B, 3, RC_FLOW_PER_STEP_LOSS, again, NULL, err, sizeof err), RC_OK);
    cr_expect_gt(again[0] / again[T - 1], 0.3, "per-step loss: %g", again[0] / again[T - 1]);
    /* a cell that cannot unroll on this input: the unroll's error */
    rc_cell *mut1 = rc_cell_mut(1, H);
    cr_expect_neq(rc_gradient_flow(mut1, I, T, B, 3, 0, again, NULL, err, sizeof err), RC_OK);
    cr_expect(strstr(err, "gradient flow") != NULL, "%s", err);
    rc_cell_free(mut1);
    rc_cell_free(rnn);
    rc_cell_free(lstm);
}

/* ---- the commands ------------------------------------------------------------------ */

Test(inspect, compare_command_lists_both_cells, .timeout = 60)
{
    char dir[] = "/tmp/recur-compare-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char out[300];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    char *argv[] = { (char *)tu_recur_exe(), "compare", "lstm", "gru", "--hidden", "8", "--seq", "3", "--batch", "2", NULL };
    int rc = run(argv, out);
    char *text = tu_read_file(out, NULL);
    cr_assert_not_null(text);
    cr_expect_eq(rc, 0, "recur compare failed:\n%s", text);
    /* H = I = 8: LSTM 4(HI + HH + H) = 544, GRU 3(HI + HH) + 4H = 416 */
    const char *row = strstr(text, "parameters ");
    cr_expect(row != NULL, "%s", text);
    if (row) {
        char line[256];
        snprintf(line, sizeof line, "%.*s", (int)strcspn(row, "\n"), row);
        cr_expect(strstr(line, "544") && strstr(line, "416"), "parameters row: %s", line);
    }
    cr_expect(strstr(text, "lstm -> gru") != NULL, "the structural diff");
    cr_expect(strstr(text, "parameters only in gru: W_hn") != NULL, "%s", text);
    free(text);
    /* one cell is not a comparison; an unknown cell is named */
    char *one[] = { (char *)tu_recur_exe(), "compare", "lstm", NULL };
    cr_expect_eq(run(one, out), 2);
    char *bad[] = { (char *)tu_recur_exe(), "compare", "lstm", "nosuch", "--hidden", "8", NULL };
    cr_expect_eq(run(bad, out), 1);
    text = tu_read_file(out, NULL);
    cr_expect(text && strstr(text, "nosuch") != NULL, "%s", text ? text : "");
    free(text);
    tu_remove_tree(dir);
}

Test(inspect, inspect_command_prints_stats_and_writes_dot, .timeout = 60)
{
    char dir[] = "/tmp/recur-inspectcmd-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char out[300], dot[300], dotu[300];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(dot, sizeof dot, "%s/step.dot", dir);
    snprintf(dotu, sizeof dotu, "%s/unrolled.dot", dir);
    char *argv[] = { (char *)tu_recur_exe(), "inspect", "--cell", "gru", "--hidden", "8", "--input", "4", "--seq", "4",
                     "--batch", "2", "--dot", dot, "--dot-unrolled", dotu, "--render", "none", NULL };
    int rc = run(argv, out);
    char *text = tu_read_file(out, NULL);
    cr_assert_not_null(text);
    cr_expect_eq(rc, 0, "recur inspect failed:\n%s", text);
    /* GRU H = 8, I = 4: 3(32 + 64) + 32 = 320 parameters */
    cr_expect(strstr(text, "320") != NULL, "%s", text);
    cr_expect(strstr(text, "time-batched") != NULL, "the passes' report");
    cr_expect(strstr(text, "*T*B") != NULL, "the memory fit");
    free(text);
    text = tu_read_file(dotu, NULL);
    cr_expect(text && strstr(text, "subgraph cluster_") != NULL);
    free(text);
    cr_expect_eq(access(dot, R_OK), 0);
    char *fargv[] = { (char *)tu_recur_exe(), "inspect", "--gradient-flow", "--cells", "lstm,rnn", "--hidden", "8",
                      "--seq", "6", "--batch", "2", NULL };
    rc = run(fargv, out);
    text = tu_read_file(out, NULL);
    cr_expect_eq(rc, 0, "%s", text ? text : "");
    cr_expect(text && strstr(text, "||dh_T/dh_t||") != NULL);
    free(text);
    tu_remove_tree(dir);
}

/* recur inspect --gradcheck: a shipped cell file and a built-in cell pass, every
 * parameter, the input and the initial states in the table; a cell that does not
 * load is named, with exit status 2; --help lists the option. */
Test(inspect, gradcheck_command, .timeout = 60)
{
    char dir[] = "/tmp/recur-gradcheck-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char out[300], cellf[600];
    snprintf(out, sizeof out, "%s/out.txt", dir);
    snprintf(cellf, sizeof cellf, "%s/lstm_peephole.cell", RECUR_CELL_DIR);
    char *argv[] = { (char *)tu_recur_exe(), "inspect", "--gradcheck", cellf, "--input", "3", NULL };
    int rc = run(argv, out);
    char *text = tu_read_file(out, NULL);
    cr_assert_not_null(text);
    cr_expect_eq(rc, 0, "recur inspect --gradcheck failed:\n%s", text);
    /* 4 gates x (W_x, W_h, b) + 3 peepholes + x + h0 + c0 */
    cr_expect(strstr(text, "18 tensors: 18 ok") != NULL, "%s", text);
    static const char *const rows[] = { "  W_xi ", "  p_f ", "  x ", "  h0 ", "  c0 " };
    for (size_t k = 0; k < sizeof rows / sizeof *rows; k++) {
        const char *r = strstr(text, rows[k]);
        cr_expect(r != NULL, "no row %s in\n%s", rows[k], text);
        if (r) cr_expect(strstr(r, "ok") != NULL && strstr(r, "ok") < strchr(r, '\n'), "row %s is not ok:\n%s", rows[k], text);
    }
    cr_expect(strstr(text, "  WRONG") == NULL, "%s", text);   /* a row's verdict */
    free(text);
    char *builtin[] = { (char *)tu_recur_exe(), "inspect", "--gradcheck", "gru", "--seq", "3", "--batch", "2", NULL };
    rc = run(builtin, out);
    text = tu_read_file(out, NULL);
    cr_expect_eq(rc, 0, "%s", text ? text : "");
    cr_expect(text && strstr(text, "12 tensors: 12 ok") != NULL, "%s", text ? text : "");
    free(text);
    char *bad[] = { (char *)tu_recur_exe(), "inspect", "--gradcheck", "nosuch", NULL };
    cr_expect_eq(run(bad, out), 2);
    text = tu_read_file(out, NULL);
    cr_expect(text && strstr(text, "'nosuch'") != NULL, "%s", text ? text : "");
    free(text);
    char *help[] = { (char *)tu_recur_exe(), "inspect", "--help", NULL };
    cr_expect_eq(run(help, out), 0);
    text = tu_read_file(out, NULL);
    cr_expect(text && strstr(text, "recur inspect --gradcheck CELL") != NULL, "%s", text ? text : "");
    free(text);
    tu_remove_tree(dir);
}
