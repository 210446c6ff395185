/* recur inspect: a cell's step graph and unrolled graph, before and after the plan's
 * passes (nodes by op, parameters, forward/backward FLOPs, activation memory as a
 * function of T and B, what the passes batched or fused), Graphviz pictures of both,
 * with --gradient-flow the norms of dL/dh_t and dh_T/dh_t of several cells, and with
 * --gradcheck CELL the check of its gradients (rc_gradcheck_ex).
 * Also the helpers compare shares (cells by name or file, graphs, gnuplot). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "commands.h"
#include "recur.h"

/* ---- shared helpers ------------------------------------------------------------------ */

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

rc_cell *tool_cell(const char *spec, int hidden, double forget_bias, char *msg, size_t len)
{
    rc_lstm_opts o = rc_lstm_defaults();
    o.forget_bias = (float)forget_bias;
    char err[2048] = "";
    rc_cell *cell = rc_cell_find(spec, hidden, &o, err, sizeof err);
    if (!cell) snprintf(msg, len, "%s", err);
    return cell;
}

void cell_label(const char *spec, char *buf, size_t len)
{
    const char *base = strrchr(spec, '/');
    base = base ? base + 1 : spec;
    size_t n = strlen(base);
    if (ends_with(base, ".cell")) n -= 5;
    snprintf(buf, len, "%.*s", (int)n, base);
}

int ugraph_build(ugraph *u, const rc_cell *cell, int I, int T, int B, char *msg, size_t len)
{
    memset(u, 0, sizeof *u);
    if (I < 1 || T < 1 || B < 1) {
        snprintf(msg, len, "input, T and B must be >= 1 (got %d, %d, %d)", I, T, B);
        return -1;
    }
    u->g = rc_graph_new();
    if (!u->g) {
        snprintf(msg, len, "out of memory");
        return -1;
    }
    int shape[2] = { T * B, I }, ns = rc_cell_state_count(cell);
    rc_node *x = rc_input(u->g, "x", RC_F32, 2, shape), *out = NULL;
    /* the cell's final and initial states; the roots: the output and the final states */
    rc_node **fin = calloc((size_t)ns + 1, sizeof *fin), **init = calloc((size_t)ns + 1, sizeof *init);
    u->roots = calloc((size_t)ns + 1, sizeof *u->roots);
    /* named states, for the statistics' and pictures' descriptions: "h0" the initial
     * value, "h" the value after each step */
    rc_node **states = calloc((size_t)T * (size_t)ns + 1, sizeof *states);
    if (!fin || !init || !u->roots || !states) {
        snprintf(msg, len, "out of memory");
        free(fin);
        free(init);
        free(states);
        ugraph_free(u);
        return -1;
    }
    for (int i = 0; i < ns; i++) {
        int ss[2] = { B, rc_cell_state_size(cell, i) };
        char nm[64];
        snprintf(nm, sizeof nm, "%.40s0", rc_cell_state_name(cell, i));
        init[i] = rc_fill(u->g, 2, ss, 0.0f);
        if (init[i]) rc_node_set_name(init[i], nm);
    }
    rc_unroll_opts uo = { .init = init, .states = states };
    if (rc_unroll(u->g, cell, x, T, &uo, &out, fin) != RC_OK) {
        snprintf(msg, len, "%s", rc_graph_error(u->g));
        free(fin);
        free(init);
        free(states);
        ugraph_free(u);
        return -1;
    }
    for (int t = 0; t < T; t++)
        for (int i = 0; i < ns; i++) {
            rc_node *st = states[(size_t)t * (size_t)ns + (size_t)i];
            if (st && !rc_node_name(st)[0]) rc_node_set_name(st, rc_cell_state_name(cell, i));
        }
    free(states);
    u->roots[u->nroots++] = out;
    for (int i = 0; i < ns; i++) {
        int dup = 0;
        for (int k = 0; k < u->nroots; k++) dup |= u->roots[k] == fin[i];
        if (!dup && fin[i]) u->roots[u->nroots++] = fin[i];
    }
    free(fin);
    free(init);
    return 0;
}

int ugraph_plan(ugraph *u, char *msg, size_t len)
{
    u->p = rc_plan_new(u->g, u->nroots, u->roots);
    if (!u->p) {
        snprintf(msg, len, "plan: %s", rc_graph_error(u->g));
        return -1;
    }
    return 0;
}

void ugraph_free(ugraph *u)
{
    rc_plan_free(u->p);
    rc_graph_free(u->g);
    free(u->roots);
    memset(u, 0, sizeof *u);
}

int run_program(char *const argv[])
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return 127;
    if (pid == 0) {
        execvp(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return 127;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int run_gnuplot(const char *script, char *msg, size_t len)
{
    char *argv[] = { "gnuplot", (char *)script, NULL };
    int rc = run_program(argv);
    if (rc == 127) {
        snprintf(msg, len, "gnuplot is not installed (apt-get install gnuplot-nox); the script is %.1500s", script);
        return -1;
    }
    if (rc != 0) {
        snprintf(msg, len, "gnuplot failed (exit %d) on %.1500s", rc, script);
        return -1;
    }
    return 0;
}

void fmt_si(double x, const char *unit, char *buf, size_t len)
{
    static const char *pre[] = { "", "k", "M", "G", "T", "P" };
    int k = 0;
    while (fabs(x) >= 1000.0 && k < 5) {
        x /= 1000.0;
        k++;
    }
    snprintf(buf, len, k ? "%.3g %s%s" : "%.0f %s%s", x, pre[k], unit);
}

void fmt_bytes(double x, char *buf, size_t len)
{
    static const char *pre[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int k = 0;
    while (fabs(x) >= 1024.0 && k < 4) {
        x /= 1024.0;
        k++;
    }
    snprintf(buf, len, k ? "%.3g %s" : "%.0f %s", x, pre[k]);
}

/* A picture kind from a file name: "png", "svg" or NULL. */
static const char *picture_kind(const char *path)
{
    return ends_with(path, ".png") ? "png" : ends_with(path, ".svg") ? "svg" : NULL;
}

/* ---- usage ---------------------------------------------------------------------------- */

void inspect_usage(FILE *f, unsigned mask)
{
    if (mask == CMD_INSPECT) {
        fprintf(f, "usage: recur inspect --cell CELL [--hidden H] [--input I] [--batch B] [--seq T]\n"
                   "                     [--dot FILE.dot] [--dot-unrolled FILE.dot] [--dot-steps 3] [--render svg|png|none]\n"
                   "       recur inspect --gradient-flow [--cells lstm,gru,rnn,FILE.cell] [--seq T] [--hidden H]\n"
                   "                     [--batch B] [--flow-loss last|steps] [--plot FILE.png]\n"
                   "       recur inspect --gradcheck CELL [--hidden H] [--input I] [--seq T] [--batch B] [--seed S]\n"
                   "                     (every parameter, the input and the initial states against central\n"
                   "                     differences; defaults hidden 8, T 5, B 3; exit 1 if a gradient is wrong)\n\n"
                   "CELL: lstm | gru | gru-cho | rnn | rnn-relu | mut1 | mut2 | mut3 | FILE.cell\n\n"
                   "options shared with train:\n"
                   "  --cell V               the cell to inspect [lstm]\n"
                   "  --hidden V             hidden units [128]\n"
                   "  --seq V                unroll length T of the unrolled graph / the gradient flow [50]\n"
                   "  --batch V              batch size B [50]\n"
                   "  --forget-bias V        LSTM forget-gate bias at init [1]\n"
                   "  --seed V               random seed (gradient flow, gradcheck: weights and data) [1]\n"
                   "  --threads V            threads (0: all cores)\n"
                   "inspect options:\n");
    } else {
        fprintf(f, "usage: recur compare CELL CELL... [--cells A,B] [--hidden H] [--input I] [--batch B] [--seq T]\n"
                   "                     [--train DATA --steps N [--data-kind chars] [--out DIR] [--plot FILE.png]]\n\n"
                   "CELL: lstm | gru | gru-cho | rnn | rnn-relu | mut1 | mut2 | mut3 | FILE.cell (cells come\n"
                   "before the options). With --train, each cell is trained as `recur train` would (same\n"
                   "seed, same data and batches) into <out>/<cell>/, and the runs' metrics are compared.\n\n"
                   "options shared with train (all of train's options apply to --train runs):\n"
                   "  --hidden V             hidden units [128]\n"
                   "  --seq V                unroll length T [50]\n"
                   "  --batch V              batch size B [50]\n"
                   "  --steps V              updates per training run\n"
                   "  --data-kind V          chars | words | music | csv | classify | tags [chars]\n"
                   "  --out V                folder of the runs [runs/default]\n"
                   "  --seed V               random seed [1]\n"
                   "compare options:\n");
    }
    config_usage(f, mask);
}

/* ---- inspect ---------------------------------------------------------------------------- */

typedef struct measured {
    rc_stats built, planned;
    size_t arena;
    rc_pass_group *groups;
    int ngroups;
} measured;

/* Builds the graph of (T, B), its statistics as built, then plans it and measures again. */
static int measure(const rc_cell *cell, int I, int T, int B, measured *m, int want_groups, char *msg, size_t len)
{
    memset(m, 0, sizeof *m);
    ugraph u;
    if (ugraph_build(&u, cell, I, T, B, msg, len) != 0) return -1;
    int rc = -1;
    if (rc_graph_stats(u.g, u.nroots, u.roots, &m->built) != RC_OK) {
        snprintf(msg, len, "statistics failed");
        goto done;
    }
    if (ugraph_plan(&u, msg, len) != 0) goto done;
    m->arena = rc_plan_arena_bytes(u.p);
    if (rc_graph_stats(u.g, u.nroots, u.roots, &m->planned) != RC_OK) {
        snprintf(msg, len, "statistics failed");
        goto done;
    }
    if (want_groups) {
        int n = rc_graph_pass_groups(u.g, u.nroots, u.roots, NULL, 0);
        if (n < 0 || !(m->groups = calloc((size_t)n + 1, sizeof *m->groups))) {
            snprintf(msg, len, "pass groups: out of memory");
            goto done;
        }
        m->ngroups = rc_graph_pass_groups(u.g, u.nroots, u.roots, m->groups, n);
    }
    rc = 0;
done:
    ugraph_free(&u);
    return rc;
}

static int op_count(const rc_stats *s, const char *op)
{
    for (int i = 0; i < s->n_ops; i++)
        if (!strcmp(s->ops[i].op, op)) return s->ops[i].count;
    return 0;
}

static void print_ops(const rc_stats *const *cols, int ncols)
{
    const char *names[RC_STATS_MAX_OPS * 4];
    int n = 0;
    for (int c = 0; c < ncols; c++)
        for (int i = 0; i < cols[c]->n_ops; i++) {
            int seen = 0;
            for (int k = 0; k < n && !seen; k++) seen = !strcmp(names[k], cols[c]->ops[i].op);
            if (!seen && n < (int)(sizeof names / sizeof *names)) names[n++] = cols[c]->ops[i].op;
        }
    for (int k = 0; k < n; k++) {
        printf("      %-28s", names[k]);
        for (int c = 0; c < ncols; c++) printf(" %14d", op_count(cols[c], names[k]));
        printf("\n");
    }
}

/* Pass groups with equal descriptions, counted. */
static void print_groups(const measured *m)
{
    if (m->ngroups == 0) {
        printf("    (none)\n");
        return;
    }
    unsigned char *done = calloc((size_t)m->ngroups, 1);
    if (!done) return;
    for (int i = 0; i < m->ngroups; i++) {
        if (done[i]) continue;
        int n = 0;
        for (int k = i; k < m->ngroups; k++)
            if (!done[k] && m->groups[k].pass == m->groups[i].pass && !strcmp(m->groups[k].what, m->groups[i].what)) {
                done[k] = 1;
                n++;
            }
        char cnt[32];
        snprintf(cnt, sizeof cnt, "x%d", n);
        printf("    %-12s %5s  %s\n", rc_pass_name(m->groups[i].pass), n > 1 ? cnt : "", m->groups[i].what);
    }
    free(done);
}

static void print_stats_table(const char *title, const rc_stats *b, const rc_stats *p, size_t arena, int T)
{
    char x[64], y[64];
    printf("  %-34s %14s %14s\n", title, "as built", "after passes");
    printf("    %-30s %14d %14d\n", "nodes", b->nodes, p->nodes);
    printf("    %-30s %14d %14d\n", "op nodes", b->op_nodes, p->op_nodes);
    const rc_stats *cols[2] = { b, p };
    printf("    ops by type:\n");
    print_ops(cols, 2);
    printf("    %-30s %14zu %14zu\n", "parameter scalars", b->param_scalars, p->param_scalars);
    printf("    %-30s %14d %14d\n", "parameter tensors", b->param_tensors, p->param_tensors);
    fmt_si(b->fwd_flops, "FLOP", x, sizeof x);
    fmt_si(p->fwd_flops, "FLOP", y, sizeof y);
    printf("    %-30s %14s %14s\n", "forward FLOPs", x, y);
    fmt_si(b->bwd_flops, "FLOP", x, sizeof x);
    fmt_si(p->bwd_flops, "FLOP", y, sizeof y);
    printf("    %-30s %14s %14s\n", "backward FLOPs", x, y);
    if (T > 1) {
        fmt_si(b->fwd_flops / T, "FLOP", x, sizeof x);
        fmt_si(p->fwd_flops / T, "FLOP", y, sizeof y);
        printf("    %-30s %14s %14s\n", "forward FLOPs per step", x, y);
        fmt_si(b->bwd_flops / T, "FLOP", x, sizeof x);
        fmt_si(p->bwd_flops / T, "FLOP", y, sizeof y);
        printf("    %-30s %14s %14s\n", "backward FLOPs per step", x, y);
    }
    fmt_bytes((double)b->value_bytes, x, sizeof x);
    fmt_bytes((double)p->value_bytes, y, sizeof y);
    printf("    %-30s %14s %14s\n", "values (inputs, ops)", x, y);
    fmt_bytes((double)b->grad_bytes, x, sizeof x);
    fmt_bytes((double)p->grad_bytes, y, sizeof y);
    printf("    %-30s %14s %14s\n", "their gradients", x, y);
    fmt_bytes((double)b->aux_bytes, x, sizeof x);
    fmt_bytes((double)p->aux_bytes, y, sizeof y);
    printf("    %-30s %14s %14s\n", "op scratch", x, y);
    fmt_bytes((double)b->activation_bytes, x, sizeof x);
    fmt_bytes((double)p->activation_bytes, y, sizeof y);
    printf("    %-30s %14s %14s\n", "activation memory", x, y);
    fmt_bytes((double)arena, y, sizeof y);
    printf("    %-30s %14s %14s\n", "plan arena (incl. param grads)", "", y);
}

/* Renders a DOT file with Graphviz's dot next to it (FILE.svg / FILE.png). */
static void render_dot(const char *dotfile, const char *fmt)
{
    if (!strcmp(fmt, "none")) return;
    char out[2100], tflag[16];
    size_t n = strlen(dotfile);
    if (ends_with(dotfile, ".dot")) n -= 4;
    snprintf(out, sizeof out, "%.*s.%s", (int)n, dotfile, fmt);
    snprintf(tflag, sizeof tflag, "-T%s", fmt);
    char *argv[] = { "dot", tflag, "-o", out, (char *)dotfile, NULL };
    int rc = run_program(argv);
    if (rc == 127) printf("  (Graphviz's dot is not installed: %s not rendered; apt-get install graphviz)\n", dotfile);
    else if (rc != 0) printf("  dot failed (exit %d) rendering %s\n", rc, dotfile);
    else printf("  rendered %s\n", out);
}

static int write_dot_of(const rc_cell *cell, int I, int T, int B, const char *path, const char *render, char *msg,
                        size_t len)
{
    ugraph u;
    if (ugraph_build(&u, cell, I, T, B, msg, len) != 0) return -1;
    if (ugraph_plan(&u, msg, len) != 0) {
        ugraph_free(&u);
        return -1;
    }
    char title[256], err[1024] = "";
    snprintf(title, sizeof title, "%s, hidden %d, input %d: %s (T = %d, B = %d), after the passes", rc_cell_name(cell),
             rc_cell_hidden(cell), I, T == 1 ? "step graph" : "unrolled graph", T, B);
    rc_dot_opts o = { .step_clusters = T > 1, .title = title };
    rc_status st = rc_graph_write_dot(u.g, u.nroots, u.roots, path, &o, err, sizeof err);
    ugraph_free(&u);
    if (st != RC_OK) {
        snprintf(msg, len, "%s", err);
        return -1;
    }
    printf("  wrote %s (%s, T = %d)\n", path, T == 1 ? "step graph" : "unrolled graph", T);
    render_dot(path, render);
    return 0;
}

/* Activation memory at four (T, B): the bilinear fit a*T*B + b*T + c*B + d. */
static int memory_fit(const rc_cell *cell, int I, int T, int B, char *msg, size_t len)
{
    int Ts[2] = { T >= 2 ? T / 2 : 1, T >= 2 ? T : 2 }, Bs[2] = { B >= 2 ? B / 2 : 1, B >= 2 ? B : 2 };
    double act[2][2], arena[2][2];
    printf("\nactivation memory against T and B (after passes; values + gradients + scratch):\n");
    printf("  %6s %6s %16s %16s\n", "T", "B", "activations", "plan arena");
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            measured m;
            if (measure(cell, I, Ts[i], Bs[j], &m, 0, msg, len) != 0) return -1;
            act[i][j] = (double)m.planned.activation_bytes;
            arena[i][j] = (double)m.arena;
            char x[64], y[64];
            fmt_bytes(act[i][j], x, sizeof x);
            fmt_bytes(arena[i][j], y, sizeof y);
            printf("  %6d %6d %16s %16s\n", Ts[i], Bs[j], x, y);
        }
    for (int k = 0; k < 2; k++) {
        double (*m)[2] = k == 0 ? act : arena;
        double dT = Ts[1] - Ts[0], dB = Bs[1] - Bs[0];
        double a = (m[1][1] - m[1][0] - m[0][1] + m[0][0]) / (dT * dB);
        double b = (m[1][0] - m[0][0]) / dT - a * Bs[0];
        double c = (m[0][1] - m[0][0]) / dB - a * Ts[0];
        double d = m[0][0] - a * Ts[0] * Bs[0] - b * Ts[0] - c * Bs[0];
        printf("  %-12s ~ %.0f*T*B %+.0f*T %+.0f*B %+.0f bytes%s\n", k == 0 ? "activations" : "plan arena", a, b, c, d,
               k == 0 ? "" : "   (arena: also parameter gradients, alignment)");
        if (k == 0) printf("  %-12s = %.0f floats per step and sequence\n", "", a / 4);
    }
    return 0;
}

static int inspect_cell(config *c)
{
    char msg[2048] = "";
    int H = c->hidden, I = c->input > 0 ? c->input : c->hidden, T = c->seq, B = c->batch;
    if (T < 1 || B < 1) {
        fprintf(stderr, "recur inspect: --seq and --batch must be >= 1\n");
        return 2;
    }
    rc_cell *cell = tool_cell(c->cell, H, c->forget_bias, msg, sizeof msg);
    if (!cell) {
        fprintf(stderr, "recur inspect: %s\n", msg);
        return 2;
    }
    int rc = 1;
    measured st = { 0 }, un = { 0 };
    printf("recur inspect: cell %s (%s), hidden %d, input %d, batch B = %d, unrolled T = %d\n", c->cell,
           rc_cell_name(cell), H, I, B, T);
    printf("  states:");
    for (int i = 0; i < rc_cell_state_count(cell); i++)
        printf(" %s[%d]", rc_cell_state_name(cell, i), rc_cell_state_size(cell, i));
    printf("\n\n");
    if (measure(cell, I, 1, B, &st, 1, msg, sizeof msg) != 0 || measure(cell, I, T, B, &un, 1, msg, sizeof msg) != 0)
        goto done;
    char title[128];
    snprintf(title, sizeof title, "step graph (T = 1, B = %d)", B);
    print_stats_table(title, &st.built, &st.planned, st.arena, 1);
    printf("  passes on the step graph:\n");
    print_groups(&st);
    printf("\n");
    snprintf(title, sizeof title, "unrolled graph (T = %d, B = %d)", T, B);
    print_stats_table(title, &un.built, &un.planned, un.arena, T);
    printf("  passes on the unrolled graph: %d time-batched GEMMs, %d fused GEMMs, %d fused elementwise groups\n",
           un.planned.time_batch_gemms, un.planned.fused_gemms, un.planned.fused_ew_groups);
    print_groups(&un);
    char x[64], y[64], z[64];
    fmt_si(un.planned.fwd_flops, "FLOP", x, sizeof x);
    fmt_si(un.planned.bwd_flops, "FLOP", y, sizeof y);
    fmt_si((un.planned.fwd_flops + un.planned.bwd_flops) / ((double)T * B), "FLOP", z, sizeof z);
    printf("\nper sequence batch (T = %d, B = %d): forward %s, backward %s; %s per step and sequence\n", T, B, x, y, z);
    if (memory_fit(cell, I, T, B, msg, sizeof msg) != 0) goto done;
    if (c->dot[0] || c->dot_unrolled[0]) {
        if (strcmp(c->render, "svg") && strcmp(c->render, "png") && strcmp(c->render, "none")) {
            snprintf(msg, sizeof msg, "--render '%s' is not svg, png or none", c->render);
            goto done;
        }
        printf("\nGraphviz:\n");
        if (c->dot[0] && write_dot_of(cell, I, 1, B, c->dot, c->render, msg, sizeof msg) != 0) goto done;
        if (c->dot_unrolled[0] &&
            write_dot_of(cell, I, c->dot_steps > 0 ? c->dot_steps : 3, B, c->dot_unrolled, c->render, msg, sizeof msg) != 0)
            goto done;
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "recur inspect: %s\n", msg);
    free(st.groups);
    free(un.groups);
    rc_cell_free(cell);
    return rc;
}

/* ---- gradient flow ------------------------------------------------------------------------ */

/* Splits a comma-separated list in place into at most max items. */
static int split_list(char *s, char **items, int max)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ",")) {
        while (*tok == ' ') tok++;
        if (*tok) items[n++] = tok;
    }
    return n;
}

static int flow_plot(const char *plot, int ncell, char labels[][64], int T, int per_step, double *const *dl,
                     double *const *dh, char *msg, size_t len)
{
    const char *kind = picture_kind(plot);
    if (!kind) {
        snprintf(msg, len, "--plot %s: the picture must end in .png or .svg", plot);
        return -1;
    }
    if (strchr(plot, '\'')) {
        snprintf(msg, len, "--plot: a path with a quote (') cannot be plotted");
        return -1;
    }
    char dat[2100], gp[2100];
    snprintf(dat, sizeof dat, "%s.dat", plot);
    snprintf(gp, sizeof gp, "%s.gp", plot);
    FILE *f = fopen(dat, "w");
    if (!f) {
        snprintf(msg, len, "%.1500s: %s", dat, strerror(errno));
        return -1;
    }
    fprintf(f, "# t");
    for (int k = 0; k < ncell; k++) fprintf(f, " dL/dh:%s", labels[k]);
    for (int k = 0; k < ncell; k++) fprintf(f, " dhT/dht:%s", labels[k]);
    fprintf(f, "\n");
    for (int t = 0; t < T; t++) {
        fprintf(f, "%d", t);
        for (int k = 0; k < ncell; k++) fprintf(f, " %.6g", dl[k][t]);
        for (int k = 0; k < ncell; k++) fprintf(f, " %.6g", dh[k][t]);
        fprintf(f, "\n");
    }
    if (fclose(f) != 0) {
        snprintf(msg, len, "%.1500s: write failed", dat);
        return -1;
    }
    if (!(f = fopen(gp, "w"))) {
        snprintf(msg, len, "%.1500s: %s", gp, strerror(errno));
        return -1;
    }
    fprintf(f, "set terminal %s size 1200,520\nset output '%s'\n", !strcmp(kind, "svg") ? "svg" : "pngcairo", plot);
    fprintf(f, "set logscale y\nset format y '10^{%%L}'\nset grid\nset key bottom right\nset xlabel 't'\n");
    fprintf(f, "set multiplot layout 1,2 title 'recur: gradient flow through time (T = %d)'\n", T);
    for (int panel = 0; panel < 2; panel++) {
        fprintf(f, "set title '%s'\nplot ",
                panel == 0 ? (per_step ? "||dL/dh_t||, L = squared error at every step" : "||dL/dh_t||, L = squared error at the last step")
                           : "||dh_T/dh_t|| (VJP of a random unit vector)");
        for (int k = 0; k < ncell; k++) {
            char lab[64];
            snprintf(lab, sizeof lab, "%.63s", labels[k]);
            for (char *q = lab; *q; q++)
                if (*q == '\'' || *q == '_') *q = '-';
            fprintf(f, "%s'%s' using 1:%d with linespoints lw 2 pt 7 ps 0.5 title '%s'", k ? ", " : "", dat,
                    2 + panel * ncell + k, lab);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "unset multiplot\n");
    if (fclose(f) != 0) {
        snprintf(msg, len, "%.1500s: write failed", gp);
        return -1;
    }
    return run_gnuplot(gp, msg, len);
}

static int gradient_flow(config *c)
{
    char msg[2048] = "", list[sizeof c->cells];
    snprintf(list, sizeof list, "%s", c->cells[0] ? c->cells : (c->cell[0] && config_was_set(c, "cell") ? c->cell : "lstm,gru,rnn"));
    int most = 1, T = c->seq, B = c->batch, H = c->hidden;   /* the cells listed: one more than the commas */
    for (const char *p = list; *p; p++) most += *p == ',';
    char **specs = calloc((size_t)most, sizeof *specs), (*labels)[64] = calloc((size_t)most, sizeof *labels);
    double **dl = calloc((size_t)most, sizeof *dl), **dh = calloc((size_t)most, sizeof *dh);
    int n = specs ? split_list(list, specs, most) : 0, I = c->input > 0 ? c->input : H, rc = 1;
    if (!specs || !labels || !dl || !dh) {
        snprintf(msg, sizeof msg, "out of memory");
        n = 0;
        goto done;
    }
    if (n < 1 || T < 1 || B < 1) {
        fprintf(stderr, "recur inspect: --gradient-flow needs cells (--cells a,b), --seq >= 1 and --batch >= 1\n");
        rc = 2;
        goto done;
    }
    int per_step = !strcmp(c->flow_loss, "steps");
    if (!per_step && strcmp(c->flow_loss, "last") != 0) {
        fprintf(stderr, "recur inspect: --flow-loss '%s' is not last or steps\n", c->flow_loss);
        rc = 2;
        goto done;
    }
    for (int k = 0; k < n; k++) {
        rc_cell *cell = tool_cell(specs[k], H, c->forget_bias, msg, sizeof msg);
        if (!cell) goto done;
        cell_label(specs[k], labels[k], sizeof labels[k]);
        dl[k] = malloc((size_t)T * sizeof **dl);
        dh[k] = malloc((size_t)T * sizeof **dh);
        rc_status st = dl[k] && dh[k] ? rc_gradient_flow(cell, I, T, B, (uint64_t)c->seed, per_step ? RC_FLOW_PER_STEP_LOSS : 0u, dl[k], dh[k],
                                                         msg, sizeof msg)
                                      : RC_ERR_NOMEM;
        rc_cell_free(cell);
        if (st != RC_OK) {
            if (st == RC_ERR_NOMEM && !msg[0]) snprintf(msg, sizeof msg, "out of memory");
            goto done;
        }
    }
    printf("recur inspect --gradient-flow: T = %d, B = %d, hidden %d, input %d, seed %ld, default init\n", T, B, H, I,
           c->seed);
    if (per_step)
        printf("  inputs x ~ N(0, 1); L = sum_t mean_b mean_k (out_t - y_t)^2, targets y ~ U(-1, 1) at every step\n"
               "  (each step's own term dominates where the gradient from later steps has vanished);\n");
    else
        printf("  inputs x ~ N(0, 1); L = mean_b mean_k (out_T-1 - y)^2 at the last step, targets y ~ U(-1, 1);\n");
    printf("  ||dL/dh_t||: RMS over sequences; ||dh_T/dh_t||: mean over sequences and 4 random unit u of ||u^T dh_T/dh_t||\n\n");
    printf("%5s", "t");
    for (int k = 0; k < n; k++) printf(" %11.11s", labels[k]);
    printf("  |");
    for (int k = 0; k < n; k++) printf(" %11.11s", labels[k]);
    printf("\n%5s %*s  | %*s\n", "", 12 * n - 1, "||dL/dh_t||", 12 * n - 1, "||dh_T/dh_t||");
    int stride = T > 60 ? (T + 39) / 40 : 1;
    for (int t = 0; t < T; t++) {
        if (t % stride != 0 && t != T - 1) continue;
        printf("%5d", t);
        for (int k = 0; k < n; k++) printf(" %11.4g", dl[k][t]);
        printf("  |");
        for (int k = 0; k < n; k++) printf(" %11.4g", dh[k][t]);
        printf("\n");
    }
    printf("\nsummary:\n");
    for (int k = 0; k < n; k++) {
        /* the mean factor per step by which ||dh_T/dh_t|| shrinks over the first half,
         * away from the last steps' own transient */
        int h = T / 2;
        double f = h > 0 && dh[k][h] > 0 && dh[k][0] > 0 ? exp(log(dh[k][0] / dh[k][h]) / h) : NAN;
        printf("  %-12s ||dL/dh_0|| / ||dL/dh_T-1|| = %-10.3g ||dh_T/dh_0|| = %-10.3g per step: x %.3g\n", labels[k],
               dl[k][T - 1] > 0 ? dl[k][0] / dl[k][T - 1] : NAN, dh[k][0], f);
    }
    if (c->plot[0]) {
        if (flow_plot(c->plot, n, labels, T, per_step, dl, dh, msg, sizeof msg) != 0) goto done;
        printf("\nwrote %s\n", c->plot);
    }
    rc = 0;
done:
    if (rc == 1) fprintf(stderr, "recur inspect: %s\n", msg);
    for (int k = 0; k < n; k++) {
        free(dl[k]);
        free(dh[k]);
    }
    free(specs);
    free(labels);
    free(dl);
    free(dh);
    return rc;
}

/* ---- gradient check ------------------------------------------------------------------------ */

static float unit_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);   /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)((double)(z >> 40) / 16777216.0 * 2.0 - 1.0);
}

/* n random constants in (-a, a) of the given shape, or NULL when memory is short. */
static rc_node *random_const(rc_graph *g, int ndim, const int *shape, float a, uint64_t *s)
{
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
    float *v = malloc(n * sizeof *v);
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++) v[i] = a * unit_rand(s);
    rc_node *k = rc_const(g, ndim, shape, v);
    free(v);
    return k;
}

/* The cell unrolled over T steps of B sequences from given initial states, with the
 * loss sum(out * A) + sum_i sum(final_i * B_i) for random A, B_i (every output and
 * state reaches it), random inputs, initial states and weights (vectors too, so that
 * no term of the cell vanishes at zero); every parameter, the input and the initial
 * states the cell reads are checked. */
static int gradcheck_cell(config *c)
{
    int H = config_was_set(c, "hidden") ? c->hidden : 8, T = config_was_set(c, "seq") ? c->seq : 5;
    int B = config_was_set(c, "batch") ? c->batch : 3, I = c->input > 0 ? c->input : H;
    char msg[2048] = "";
    if (T < 1 || B < 1 || I < 1) {
        fprintf(stderr, "recur inspect: --gradcheck needs --seq, --batch and --input >= 1\n");
        return 2;
    }
    rc_cell *cell = tool_cell(c->gradcheck, H, c->forget_bias, msg, sizeof msg);
    if (!cell) {
        fprintf(stderr, "recur inspect: %s\n", msg);
        return 2;
    }
    int ns = rc_cell_state_count(cell), rc = 1, nw = 0, nwrong = 0, nnoisy = 0;
    uint64_t seed = (uint64_t)c->seed;
    rc_graph *g = rc_graph_new();
    rc_plan *p = NULL;
    rc_node **init = calloc((size_t)ns + 1, sizeof *init), **fin = calloc((size_t)ns + 1, sizeof *fin), **wrt = NULL;
    rc_gradcheck_report *rep = NULL;
    float *buf = NULL;
    if (!g || !init || !fin) {
        snprintf(msg, sizeof msg, "out of memory");
        goto done;
    }
    int xs[2] = { T * B, I };
    rc_node *x = rc_input(g, "x", RC_F32, 2, xs), *out = NULL;
    rc_requires_grad(x, 1);
    for (int i = 0; i < ns; i++) {
        int ss[2] = { B, rc_cell_state_size(cell, i) };
        char nm[64];
        snprintf(nm, sizeof nm, "%.40s0", rc_cell_state_name(cell, i));
        init[i] = rc_input(g, nm, RC_F32, 2, ss);
        rc_requires_grad(init[i], 1);
    }
    rc_unroll_opts uo = { .init = init };
    if (rc_unroll(g, cell, x, T, &uo, &out, fin) != RC_OK) {
        snprintf(msg, sizeof msg, "%s", rc_graph_error(g));
        goto done;
    }
    int os[2] = { rc_node_dim(out, 0), rc_node_dim(out, 1) };
    rc_node *loss = rc_sum(g, rc_mul(g, out, random_const(g, 2, os, 1.0f, &seed)));
    for (int i = 0; i < ns; i++) {
        int fs[2] = { rc_node_dim(fin[i], 0), rc_node_dim(fin[i], 1) };
        loss = rc_add(g, loss, rc_sum(g, rc_mul(g, fin[i], random_const(g, 2, fs, 1.0f, &seed))));
    }
    if (rc_graph_status(g) != RC_OK || rc_graph_init_params(g, seed) != RC_OK) {
        snprintf(msg, sizeof msg, "%s", rc_graph_error(g));
        goto done;
    }
    int nn = rc_graph_node_count(g);
    wrt = calloc((size_t)nn + 1, sizeof *wrt);
    rep = calloc((size_t)nn + 1, sizeof *rep);
    size_t most = (size_t)T * B * I;
    for (int i = 0; i < nn; i++) most = rc_node_size(rc_graph_node(g, i)) > most ? rc_node_size(rc_graph_node(g, i)) : most;
    buf = malloc(most * sizeof *buf);
    if (!wrt || !rep || !buf) {
        snprintf(msg, sizeof msg, "out of memory");
        goto done;
    }
    for (int i = 0; i < nn; i++) {
        rc_node *n = rc_graph_node(g, i);
        if (strcmp(rc_node_op(n), "param") != 0) continue;
        if (rc_node_ndim(n) == 1)
            for (size_t k = 0; k < rc_node_size(n); k++) rc_param_data(n)[k] = 0.5f * unit_rand(&seed);
        wrt[nw++] = n;
    }
    if (!(p = rc_plan_new(g, 1, &loss))) {
        snprintf(msg, sizeof msg, "plan: %s", rc_graph_error(g));
        goto done;
    }
    for (size_t k = 0; k < (size_t)T * B * I; k++) buf[k] = unit_rand(&seed);
    rc_plan_feed(p, x, buf, (size_t)T * B * I);
    wrt[nw++] = x;
    for (int i = 0; i < ns; i++) {
        for (size_t k = 0; k < rc_node_size(init[i]); k++) buf[k] = 0.5f * unit_rand(&seed);
        if (rc_plan_feed(p, init[i], buf, rc_node_size(init[i])) == RC_OK) wrt[nw++] = init[i];   /* else never read */
    }
    rc_gradcheck_opts o = { .max_entries = 128, .seed = seed };
    if (rc_plan_forward(p) != RC_OK || rc_gradcheck_ex(p, loss, nw, wrt, &o, rep) != RC_OK) {
        snprintf(msg, sizeof msg, "%s", rc_plan_error(p));
        goto done;
    }
    printf("recur inspect --gradcheck %s (%s): hidden %d, input %d, T = %d, B = %d, seed %ld\n", c->gradcheck,
           rc_cell_name(cell), H, I, T, B, c->seed);
    printf("  loss = sum(out * A) + sum over states of sum(final * B_i), A and B_i random; loss %.6g\n",
           rc_plan_value(p, loss)[0]);
    printf("  error = max |g - n| / S (n numerical, S = max |n|), noise = max u / S (u: the uncertainty of n);\n"
           "  directions: the same along the gradient and 2 random directions (scale sum |g_i v_i|)\n\n");
    printf("  %-16s %9s %8s %10s %10s %10s %10s %8s  %s\n", "tensor", "size", "checked", "error", "noise", "dir error",
           "dir noise", "step", "verdict");
    static const char *const verdict[] = { "ok", "NOISY", "WRONG" };
    for (int k = 0; k < nw; k++) {
        const rc_gradcheck_report *r = &rep[k];
        printf("  %-16.16s %9zu %8zu %10.3g %10.3g %10.3g %10.3g %8.3g  %s", rc_node_name(wrt[k]), r->size, r->checked,
               r->err, r->noise, r->dir_err, r->dir_noise, (double)r->step, verdict[r->verdict]);
        if (r->skipped) printf(" (%zu entries skipped: the loss is not finite within the step)", r->skipped);
        if (r->verdict == RC_GC_WRONG) printf("  entry %zu: g %.6g, numerical %.6g", r->worst, r->worst_g, r->worst_num);
        printf("\n");
        nwrong += r->verdict == RC_GC_WRONG;
        nnoisy += r->verdict == RC_GC_NOISY;
    }
    printf("\nrule (README \"Gradient checking\"): WRONG if some |g - n| > 2e-3 S + 4 u, else NOISY if some u > 1.6e-3 S\n");
    if (nwrong) snprintf(msg, sizeof msg, "%d of %d gradients are wrong", nwrong, nw);
    else {
        printf("%d tensors: %d ok", nw, nw - nnoisy);
        if (nnoisy) printf(", %d too noisy to promise that a 1%% error would show (try another --hidden, --seq or --seed)", nnoisy);
        printf("\n");
        rc = 0;
    }
done:
    if (rc) fprintf(stderr, "recur inspect: %s\n", msg);
    rc_plan_free(p);
    rc_graph_free(g);
    rc_cell_free(cell);
    free(init);
    free(fin);
    free(wrt);
    free(rep);
    free(buf);
    return rc;
}

int cmd_inspect(config *c)
{
    if (c->threads > 0) rc_set_num_threads(c->threads);
    if (c->gradcheck[0]) return gradcheck_cell(c);
    return c->gradient_flow ? gradient_flow(c) : inspect_cell(c);
}
