/* recur compare: cells side by side — parameters, FLOPs per step, activation memory,
 * a structural diff of their step graphs — and with --train, one training run per
 * cell (the recur train loop, same seed and data) compared by loss and throughput,
 * with the loss curves of all cells in one gnuplot picture. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "recur.h"

typedef struct entry {
    char spec[1024], label[64];
    rc_cell *cell;
    rc_stats step;           /* step graph (T = 1) as built */
    rc_stats seq;            /* unrolled (T, B), after the passes */
    size_t arena;
    ugraph sg;               /* the step graph as built, for the diff */
    /* training */
    int trained, failed;
    long steps;
    double train_loss, valid_loss, best_valid, tps, elapsed;
    double *curve;           /* (kind 0 train / 1 valid, step, loss) triples of the metrics */
    int npts;
} entry;

static int measure_entry(entry *e, int I, int T, int B, char *msg, size_t len)
{
    if (ugraph_build(&e->sg, e->cell, I, 1, B, msg, len) != 0) return -1;
    if (rc_graph_stats(e->sg.g, e->sg.nroots, e->sg.roots, &e->step) != RC_OK) {
        snprintf(msg, len, "%s: statistics failed", e->label);
        return -1;
    }
    ugraph u;
    if (ugraph_build(&u, e->cell, I, T, B, msg, len) != 0) return -1;
    int rc = ugraph_plan(&u, msg, len);
    if (rc == 0 && rc_graph_stats(u.g, u.nroots, u.roots, &e->seq) != RC_OK) {
        snprintf(msg, len, "%s: statistics failed", e->label);
        rc = -1;
    }
    if (rc == 0) e->arena = rc_plan_arena_bytes(u.p);
    ugraph_free(&u);
    return rc;
}

static void row_str(const char *name, entry *es, int n, void (*cell)(const entry *, char *, size_t))
{
    printf("  %-32s", name);
    for (int k = 0; k < n; k++) {
        char b[64];
        cell(&es[k], b, sizeof b);
        printf(" %14s", b);
    }
    printf("\n");
}

static int g_T, g_B;
static void c_params(const entry *e, char *b, size_t l) { snprintf(b, l, "%zu", e->step.param_scalars); }
static void c_ptensors(const entry *e, char *b, size_t l) { snprintf(b, l, "%d", e->step.param_tensors); }
static void c_states(const entry *e, char *b, size_t l) { snprintf(b, l, "%d", rc_cell_state_count(e->cell)); }
static void c_ops(const entry *e, char *b, size_t l) { snprintf(b, l, "%d", e->step.op_nodes); }
static void c_fwd(const entry *e, char *b, size_t l) { fmt_si(e->seq.fwd_flops / g_T, "FLOP", b, l); }
static void c_bwd(const entry *e, char *b, size_t l) { fmt_si(e->seq.bwd_flops / g_T, "FLOP", b, l); }
static void c_tot(const entry *e, char *b, size_t l) { fmt_si(e->seq.fwd_flops + e->seq.bwd_flops, "FLOP", b, l); }
static void c_act(const entry *e, char *b, size_t l) { fmt_bytes((double)e->seq.activation_bytes, b, l); }
static void c_actss(const entry *e, char *b, size_t l)
{
    fmt_bytes((double)e->seq.activation_bytes / ((double)g_T * g_B), b, l);
}
static void c_arena(const entry *e, char *b, size_t l) { fmt_bytes((double)e->arena, b, l); }
static void c_passes(const entry *e, char *b, size_t l)
{
    snprintf(b, l, "%d/%d/%d", e->seq.time_batch_gemms, e->seq.fused_gemms, e->seq.fused_ew_groups);
}

static void print_diff(const entry *a, const entry *b)
{
    rc_graph_diff d;
    if (rc_graph_diff_of(a->sg.g, a->sg.nroots, a->sg.roots, b->sg.g, b->sg.nroots, b->sg.roots, &d) != RC_OK) {
        printf("  %s -> %s: (diff failed)\n", a->label, b->label);
        return;
    }
    printf("  %s -> %s:\n", a->label, b->label);
    if (d.n_ops == 0) printf("    ops: same counts by type\n");
    else {
        printf("    ops:");
        for (int i = 0; i < d.n_ops; i++)
            printf(" %+d %s (%d -> %d)%s", d.ops[i].b - d.ops[i].a, d.ops[i].op, d.ops[i].a, d.ops[i].b,
                   i + 1 < d.n_ops ? "," : "");
        printf("\n");
    }
    if (d.n_only_a) {
        printf("    parameters only in %s:", a->label);
        for (int i = 0; i < d.n_only_a; i++) printf(" %s", d.only_a[i]);
        printf("\n");
    }
    if (d.n_only_b) {
        printf("    parameters only in %s:", b->label);
        for (int i = 0; i < d.n_only_b; i++) printf(" %s", d.only_b[i]);
        printf("\n");
    }
    for (int i = 0; i < d.n_rewired; i++) printf("    rewired %s: %s\n", d.rewired[i], d.rewired_how[i]);
    if (!d.n_only_a && !d.n_only_b && !d.n_rewired) printf("    parameters: the same, used the same way\n");
    if (d.truncated) printf("    (lists cut at %d names)\n", RC_DIFF_MAX);
}

/* ---- training ---------------------------------------------------------------------------- */

/* Reads a run's metrics.csv: last train loss, last and best valid loss, mean tokens/s. */
static int read_metrics(const char *path, entry *e)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL, **cols = NULL;
    size_t cap = 0;
    int c_kind = -1, c_step = -1, c_loss = -1, c_tps = -1, c_el = -1, rc = 0;
    double tsum = 0;
    long tn = 0;
    e->train_loss = e->valid_loss = e->best_valid = NAN;
    while (getline(&line, &cap, f) > 0) {   /* a line and its columns: as many as the run wrote */
        if (line[0] == '#') continue;
        line[strcspn(line, "\r\n")] = 0;
        int nc = 1;
        for (const char *p = line; *p; p++) nc += *p == ',';
        char **grown = realloc(cols, (size_t)nc * sizeof *cols);
        if (!grown) {
            rc = -1;
            break;
        }
        cols = grown;
        nc = 0;
        for (char *p = line, *q;; p = q + 1) {
            cols[nc++] = p;
            if (!(q = strchr(p, ','))) break;
            *q = 0;
        }
        if (!strcmp(cols[0], "kind")) {
            for (int i = 0; i < nc; i++) {
                if (!strcmp(cols[i], "kind")) c_kind = i;
                if (!strcmp(cols[i], "step")) c_step = i;
                if (!strcmp(cols[i], "loss")) c_loss = i;
                if (!strcmp(cols[i], "tokens_per_s")) c_tps = i;
                if (!strcmp(cols[i], "elapsed_s")) c_el = i;
            }
            continue;
        }
        if (c_kind < 0 || c_loss < 0 || c_kind >= nc || c_loss >= nc) continue;
        double loss = strtod(cols[c_loss], NULL);
        int kind = !strcmp(cols[c_kind], "train") ? 0 : !strcmp(cols[c_kind], "valid") ? 1 : -1;
        if (kind >= 0 && c_step >= 0 && c_step < nc && isfinite(loss)) {
            double *grown = realloc(e->curve, (size_t)(e->npts + 1) * 3 * sizeof *grown);
            if (grown) {
                e->curve = grown;
                e->curve[3 * e->npts] = kind;
                e->curve[3 * e->npts + 1] = strtod(cols[c_step], NULL);
                e->curve[3 * e->npts + 2] = loss;
                e->npts++;
            }
        }
        if (!strcmp(cols[c_kind], "train")) {
            e->train_loss = loss;
            if (c_step >= 0 && c_step < nc) e->steps = strtol(cols[c_step], NULL, 10);
            if (c_tps >= 0 && c_tps < nc) {
                tsum += strtod(cols[c_tps], NULL);
                tn++;
            }
            if (c_el >= 0 && c_el < nc) e->elapsed = strtod(cols[c_el], NULL);
        } else if (!strcmp(cols[c_kind], "valid")) {
            e->valid_loss = loss;
            if (!(e->best_valid <= loss)) e->best_valid = loss;
        }
    }
    fclose(f);
    free(line);
    free(cols);
    e->tps = tn ? tsum / (double)tn : NAN;
    return rc;
}

/* The loss curves of all trained cells: <out>.dat (a gnuplot index block per cell and
 * kind: train, valid), <out>.gp, and the picture. */
static int plot_curves(const config *c, entry *es, int n, const char *out, char *msg, size_t len)
{
    size_t ol = strlen(out);
    int svg = ol > 4 && !strcmp(out + ol - 4, ".svg");
    if (!svg && !(ol > 4 && !strcmp(out + ol - 4, ".png"))) {
        snprintf(msg, len, "%.1500s: the plot must end in .png or .svg", out);
        return -1;
    }
    if (strchr(out, '\'')) {
        snprintf(msg, len, "paths with a quote (') cannot be plotted");
        return -1;
    }
    char gp[2100], dat[2100];
    snprintf(gp, sizeof gp, "%.2090s.gp", out);
    snprintf(dat, sizeof dat, "%.2090s.dat", out);
    FILE *f = fopen(dat, "w");
    if (!f) {
        snprintf(msg, len, "%.1500s: %s", dat, strerror(errno));
        return -1;
    }
    int block = 0, (*idx)[2] = calloc((size_t)n, sizeof *idx);
    if (!idx) {
        fclose(f);
        snprintf(msg, len, "out of memory");
        return -1;
    }
    for (int k = 0; k < n; k++) {
        idx[k][0] = idx[k][1] = -1;
        if (!es[k].trained) continue;
        for (int kind = 0; kind < 2; kind++) {
            int any = 0;
            for (int i = 0; i < es[k].npts; i++)
                if (es[k].curve[3 * i] == kind) any = 1;
            if (!any) continue;
            fprintf(f, "# %s %s: step loss\n", es[k].label, kind ? "valid" : "train");
            for (int i = 0; i < es[k].npts; i++)
                if (es[k].curve[3 * i] == kind) fprintf(f, "%.0f %.6g\n", es[k].curve[3 * i + 1], es[k].curve[3 * i + 2]);
            fprintf(f, "\n\n");
            idx[k][kind] = block++;
        }
    }
    if (fclose(f) != 0 || block == 0) {
        snprintf(msg, len, block ? "%.1500s: write failed" : "%.1500s: no loss values to plot", dat);
        free(idx);
        return -1;
    }
    if (!(f = fopen(gp, "w"))) {
        snprintf(msg, len, "%.1500s: %s", gp, strerror(errno));
        free(idx);
        return -1;
    }
    static const char *colors[] = { "#4477aa", "#cc3311", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb", "#000000" };
    fprintf(f, "set terminal %s size 900,520\nset output '%s'\n", svg ? "svg" : "pngcairo", out);
    fprintf(f, "set key top right\nset grid\nset xlabel 'update'\nset ylabel 'loss (nats per target)'\n");
    fprintf(f, "set title 'recur compare: %s'\nplot ", strchr(c->train, '\'') ? "training runs" : c->train);
    int first = 1;
    for (int k = 0; k < n; k++)
        for (int kind = 0; kind < 2; kind++) {
            if (idx[k][kind] < 0) continue;
            fprintf(f, "%s'%s' index %d using 1:2 with %s lc rgb '%s' title '%s %s'", first ? "" : ", \\\n     ", dat,
                    idx[k][kind], kind ? "linespoints lw 2 pt 7" : "linespoints lw 1 pt 7 ps 0.3", colors[k % 8], es[k].label,
                    kind ? "valid" : "train");
            first = 0;
        }
    free(idx);
    fprintf(f, "\n");
    if (fclose(f) != 0) {
        snprintf(msg, len, "%.1500s: write failed", gp);
        return -1;
    }
    return run_gnuplot(gp, msg, len);
}

static int train_all(const config *c, entry *es, int n, char *msg, size_t len)
{
    if (c->steps <= 0 && c->time_limit <= 0) {
        snprintf(msg, len, "compare --train needs --steps N (or --time-limit S) to bound each run");
        return -1;
    }
    for (int k = 0; k < n; k++) {
        config *c2 = malloc(sizeof *c2);
        if (!c2) {
            snprintf(msg, len, "out of memory");
            return -1;
        }
        *c2 = *c;
        snprintf(c2->cell, sizeof c2->cell, "%s", es[k].spec);
        snprintf(c2->data, sizeof c2->data, "%s", c->train);
        if (strlen(c->out) + 1 + strlen(es[k].label) >= sizeof c2->out) {
            snprintf(msg, len, "--out %.60s...: the run folders inside it would be longer than %zu characters", c->out,
                     sizeof c2->out - 1);
            free(c2);
            return -1;
        }
        size_t ol = strlen(c->out);   /* fits: checked above */
        memcpy(c2->out, c->out, ol);
        c2->out[ol] = '/';
        memcpy(c2->out + ol + 1, es[k].label, strlen(es[k].label) + 1);
        snprintf(c2->metrics, sizeof c2->metrics, "csv");
        c2->resume = 0;
        if (!config_was_set(c, "sample")) c2->sample = 0;
        if (!config_was_set(c, "eval-every") && c->steps > 0) c2->eval_every = c->steps >= 4 ? c->steps / 4 : 1;
        printf("\n== training %s -> %s\n", es[k].label, c2->out);
        fflush(stdout);
        int rc = cmd_train(c2);
        char path[2200];
        snprintf(path, sizeof path, "%s/metrics.csv", c2->out);
        free(c2);
        if (rc == 130) {
            snprintf(msg, len, "interrupted");
            return -1;
        }
        if (rc != 0) {
            es[k].failed = 1;
            continue;
        }
        if (read_metrics(path, &es[k]) != 0) {
            es[k].failed = 1;
            continue;
        }
        es[k].trained = 1;
    }
    printf("\ntraining on %s (%s), %ld updates each, seed %ld:\n", c->train, c->data_kind, c->steps, c->seed);
    printf("  %-14s %8s %12s %12s %12s %12s %9s\n", "cell", "updates", "train loss", "valid loss", "best valid",
           "tokens/s", "time (s)");
    for (int k = 0; k < n; k++) {
        if (!es[k].trained) {
            printf("  %-14s %8s (training failed: see above)\n", es[k].label, "-");
            continue;
        }
        printf("  %-14s %8ld %12.4f %12.4f %12.4f %12.0f %9.1f\n", es[k].label, es[k].steps, es[k].train_loss,
               es[k].valid_loss, es[k].best_valid, es[k].tps, es[k].elapsed);
    }
    char out[2200];
    if (c->plot[0]) snprintf(out, sizeof out, "%s", c->plot);
    else snprintf(out, sizeof out, "%s/compare.png", c->out);
    char pmsg[2300];
    if (plot_curves(c, es, n, out, pmsg, sizeof pmsg) != 0) printf("  (no loss-curve picture: %s)\n", pmsg);
    else printf("  loss curves: %s\n", out);
    return 0;
}

/* The comparison of cells specs[0..n). */
static int compare_cells(config *c, const char *const *specs, int n, char *msg, size_t len)
{
    if (n < 2) {
        fprintf(stderr, "recur compare: give at least two cells (recur compare lstm gru [options], or --cells lstm,gru)\n");
        return 2;
    }
    if (c->threads > 0) rc_set_num_threads(c->threads);
    int H = c->hidden, I = c->input > 0 ? c->input : c->hidden, T = c->seq, B = c->batch, rc = 1;
    if (T < 1 || B < 1) {
        fprintf(stderr, "recur compare: --seq and --batch must be >= 1\n");
        return 2;
    }
    entry *es = calloc((size_t)n, sizeof *es);
    if (!es) {
        fprintf(stderr, "recur compare: out of memory\n");
        return 1;
    }
    for (int k = 0; k < n; k++) {
        if (strlen(specs[k]) >= sizeof es[k].spec) {
            snprintf(msg, len, "cell '%.60s...' : the name is longer than %zu characters", specs[k], sizeof es[k].spec - 1);
            goto done;
        }
        snprintf(es[k].spec, sizeof es[k].spec, "%s", specs[k]);
        cell_label(specs[k], es[k].label, sizeof es[k].label);
        for (int j = 0; j < k; j++)   /* the same cell twice: keep run folders apart */
            if (!strcmp(es[j].label, es[k].label)) {
                char base[48];
                snprintf(base, sizeof base, "%.40s", es[k].label);
                snprintf(es[k].label, sizeof es[k].label, "%s-%d", base, (k + 1) % 100);
            }
        if (!(es[k].cell = tool_cell(specs[k], H, c->forget_bias, msg, len))) goto done;
        if (measure_entry(&es[k], I, T, B, msg, len) != 0) {
            char m2[2200];
            snprintf(m2, sizeof m2, "%.63s: %.1900s", es[k].label, msg);
            snprintf(msg, len, "%.2000s", m2);
            goto done;
        }
    }
    g_T = T;
    g_B = B;
    printf("recur compare: hidden %d, input %d, T = %d, B = %d (FLOPs per step from the unrolled graph after the passes)\n\n",
           H, I, T, B);
    printf("  %-32s", "");
    for (int k = 0; k < n; k++) printf(" %14.14s", es[k].label);
    printf("\n");
    row_str("parameters", es, n, c_params);
    row_str("parameter tensors", es, n, c_ptensors);
    row_str("states", es, n, c_states);
    row_str("op nodes per step (as built)", es, n, c_ops);
    row_str("forward FLOPs per step", es, n, c_fwd);
    row_str("backward FLOPs per step", es, n, c_bwd);
    row_str("fwd+bwd FLOPs per sequence", es, n, c_tot);
    row_str("activations per sequence", es, n, c_act);
    row_str("activations per step and seq.", es, n, c_actss);
    row_str("plan arena (T, B)", es, n, c_arena);
    row_str("passes: time-batch/GEMM/ew", es, n, c_passes);
    printf("\nstructural diff of the step graphs (as built), each cell against the one before:\n");
    for (int k = 1; k < n; k++) print_diff(&es[k - 1], &es[k]);
    if (c->train[0] && train_all(c, es, n, msg, len) != 0) goto done;
    rc = 0;
done:
    if (rc) fprintf(stderr, "recur compare: %s\n", msg);
    for (int k = 0; k < n; k++) {
        ugraph_free(&es[k].sg);
        rc_cell_free(es[k].cell);
        free(es[k].curve);
    }
    free(es);
    return rc;
}

int cmd_compare(config *c, int npos, char **pos)
{
    char msg[2048] = "", list[sizeof c->cells];
    snprintf(list, sizeof list, "%s", c->cells);
    int n = npos, most = npos + 1;   /* the cells named: arguments, then --cells a,b */
    for (const char *p = list; *p; p++) most += *p == ',';
    const char **specs = malloc((size_t)most * sizeof *specs);
    if (!specs) {
        fprintf(stderr, "recur compare: out of memory\n");
        return 1;
    }
    for (int i = 0; i < npos; i++) specs[i] = pos[i];
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ","))
        if (*tok) specs[n++] = tok;
    int rc = compare_cells(c, specs, n, msg, sizeof msg);
    free(specs);
    return rc;
}
