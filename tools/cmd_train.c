/* recur train: the training loop with validation, checkpoints, progress, metrics,
 * early stopping, resume and a clean stop on Ctrl-C. Under mpirun with several
 * processes it is data-parallel (train_dist.h): every rank runs this loop on its share
 * of each batch, and rank 0 alone validates, prints, logs and writes checkpoints. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "ckpt.h"
#include "commands.h"
#include "dist.h"
#include "metrics.h"
#include "model.h"
#include "optim.h"
#include "run_agree.h"
#include "run_ckpt.h"
#include "task.h"
#include "threads.h"
#include "train_dist.h"

static volatile sig_atomic_t stop_requested;

/* mkdir -p */
static int make_dirs(const char *path)
{
    char p[2048];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) return -1;
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) return -1;
            *s = '/';
        }
    return mkdir(p, 0777) != 0 && errno != EEXIST ? -1 : 0;
}
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_time(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 1e8) snprintf(buf, len, "?");
    else if (s < 60) snprintf(buf, len, "%.0fs", s);
    else if (s < 3600) snprintf(buf, len, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, len, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static int parse_optim(const config *c, rc_optim_opts *o, char *msg, size_t len)
{
    static const char *names[] = { "sgd", "adam", "rmsprop", "adagrad" };
    int k = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(c->optim, names[i])) k = i;
    if (k < 0) {
        snprintf(msg, len, "--optim '%s' is not one of sgd, adam, rmsprop, adagrad", c->optim);
        return -1;
    }
    *o = rc_optim_defaults((rc_optim_kind)k);
    o->momentum = (float)c->momentum;
    o->nesterov = c->nesterov;
    o->beta1 = (float)c->beta1;
    o->beta2 = (float)c->beta2;
    o->rho = (float)c->rho;
    o->eps = (float)c->eps;
    o->weight_decay = (float)c->weight_decay;
    o->decoupled = c->decoupled;
    o->clip_norm = (float)c->clip;
    o->weight_noise = (float)c->weight_noise;
    o->seed = (uint64_t)c->seed + 7;
    return 0;
}

static int parse_schedule(const config *c, rc_schedule *s, char *msg, size_t len)
{
    memset(s, 0, sizeof *s);
    s->lr = (float)c->lr;
    s->start = c->decay_start;
    s->factor = (float)c->decay_factor;
    s->min_frac = (float)c->min_lr_frac;
    if (!strcmp(c->schedule, "constant")) s->kind = RC_SCHED_CONSTANT;
    else if (!strcmp(c->schedule, "step")) s->kind = RC_SCHED_STEP;
    else if (!strcmp(c->schedule, "cosine")) s->kind = RC_SCHED_COSINE;
    else {
        snprintf(msg, len, "--schedule '%s' is not one of constant, step, cosine", c->schedule);
        return -1;
    }
    if (!(c->lr > 0) || !isfinite(c->lr)) {
        snprintf(msg, len, "--lr %g must be > 0", c->lr);
        return -1;
    }
    return 0;
}

/* Parameter groups for the gradient-norm columns: the name up to the first '.'
 * ("embed", "l0", "l0r", "out"), as many as the model has. */
typedef struct pgroups {
    int n;
    char **name;      /* n names */
    int *of;          /* the group of each parameter */
    double *norm;     /* n gradient norms */
} pgroups;

static void groups_free(pgroups *g)
{
    for (int k = 0; g->name && k < g->n; k++) free(g->name[k]);
    free(g->name);
    free(g->of);
    free(g->norm);
    memset(g, 0, sizeof *g);
}

static int groups_of(rc_model *m, pgroups *g, char *msg, size_t len)
{
    int np = rc_model_param_count(m);
    memset(g, 0, sizeof *g);
    g->name = calloc((size_t)np + 1, sizeof *g->name);
    g->of = calloc((size_t)np + 1, sizeof *g->of);
    g->norm = calloc((size_t)np + 1, sizeof *g->norm);
    int ok = g->name && g->of && g->norm;
    for (int i = 0; ok && i < np; i++) {
        const char *nm = rc_model_param_name(m, i), *dot = strchr(nm, '.');
        size_t l = dot ? (size_t)(dot - nm) : strlen(nm);
        int k = 0;
        while (k < g->n && (strlen(g->name[k]) != l || strncmp(g->name[k], nm, l) != 0)) k++;
        if (k == g->n && (ok = (g->name[k] = malloc(l + 1)) != NULL)) {
            memcpy(g->name[k], nm, l);
            g->name[k][l] = 0;
            g->n++;
        }
        g->of[i] = k;
    }
    if (ok) return 0;
    groups_free(g);
    snprintf(msg, len, "out of memory");
    return -1;
}

static void group_norms(rc_model *m, pgroups *g)
{
    for (int k = 0; k < g->n; k++) g->norm[k] = 0;
    for (int i = 0; i < rc_model_param_count(m); i++) {
        const float *gr = model_grad(m, i);
        size_t n = rc_node_size(model_param_node(m, i));
        double s = 0;
        for (size_t k = 0; gr && k < n; k++) s += (double)gr[k] * gr[k];
        g->norm[g->of[i]] += s;
    }
    for (int k = 0; k < g->n; k++) g->norm[k] = sqrt(g->norm[k]);
}

/* Saves and restores the carried state (every layer's) around a validation in the
 * middle of an epoch or a sample. */
typedef struct saved_state { float **d; int B, n; } saved_state;

static void state_free(saved_state *s)
{
    for (int i = 0; s->d && i < s->n; i++) free(s->d[i]);
    free(s->d);
    memset(s, 0, sizeof *s);
}

static int state_save(task *t, saved_state *s, char *msg, size_t len)
{
    memset(s, 0, sizeof *s);
    int L = rc_model_options(t->model).layers, S = rc_cell_state_count(t->cell);
    s->d = calloc((size_t)L * (size_t)S + 1, sizeof *s->d);
    for (int l = 0; s->d && l < L; l++)
        for (int k = 0; k < S; k++, s->n++) {
            int B = 0;
            const float *d = rc_model_get_state(t->model, l, 0, rc_cell_state_name(t->cell, k), &B);
            if (!d) continue;
            size_t bytes = (size_t)B * (size_t)rc_cell_state_size(t->cell, k) * sizeof(float);
            if (!(s->d[s->n] = malloc(bytes))) {
                state_free(s);
                break;
            }
            memcpy(s->d[s->n], d, bytes);
            s->B = B;
        }
    if (s->d) return 0;
    snprintf(msg, len, "out of memory saving the carried state");
    return -1;
}

static void state_restore(task *t, saved_state *s)
{
    int L = rc_model_options(t->model).layers, S = rc_cell_state_count(t->cell), i = 0;
    for (int l = 0; l < L; l++)
        for (int k = 0; k < S && i < s->n; k++, i++)
            if (s->d[i]) rc_model_set_state(t->model, l, 0, rc_cell_state_name(t->cell, k), s->B, s->d[i]);
    state_free(s);
}

/* A training run: its task, optimiser, data, log and progress, and the loop's state. */
typedef struct trainer {
    config *c;
    task t;
    rc_optim *opt;
    rc_optim_opts oo;
    feeder train;
    metrics mx;
    rc_schedule sched;
    run_progress pr;
    char last_path[2200], best_path[2200];
    pgroups groups;
    int live, validated;
    long nb, total_steps;           /* batches per epoch, updates in all (0: unbounded) */
    double t0;                      /* clock at the run's start (a resume: minus the time trained before) */
    double last_report, win_start;  /* the last progress row, the throughput window's start */
    double tok_window, loss_acc;    /* targets and loss sum since the last row */
    long loss_n;
    int stop, err;
    const char *why;                /* why the loop stopped */
    int finished;                   /* a resumed run whose limits were already reached: nothing trained or written */
    char msg[2048];
    char threads_why[160];          /* how the thread count was chosen, for the log */
    /* several processes (dist_size() > 1): */
    int dist, rank;                 /* data-parallel; this process's rank */
    dpar dp;
    int dstop, dtime;               /* some rank was signalled / reached --time-limit (this update) */
    int quiet;                      /* another rank reports the error */
} trainer;

static int save(trainer *tr, const char *path, char *msg, size_t len)
{
    return run_save(path, &tr->t, tr->opt, &tr->train, &tr->pr, msg, len);
}

/* A text sample from the model as it is (its carried training state is kept). */
static int show_sample(trainer *tr, char *msg, size_t len)
{
    task *t = &tr->t;
    if (!t->is_lm || tr->c->sample <= 0) return 0;
    printf("--- sample at step %lu ---\n", (unsigned long)tr->pr.step);
    saved_state ss;
    if (state_save(t, &ss, msg, len) != 0) return -1;
    int rc = print_sample(t, "", tr->c->sample, tr->c->temperature, (unsigned long long)tr->c->seed + tr->pr.step, stdout,
                          msg, len);
    state_restore(t, &ss);
    printf("\n---\n");
    fflush(stdout);
    return rc;
}

/* Validation: metrics row, best checkpoint, patience, a sample. Returns 1 to stop early. */
static int validate(trainer *tr, char *msg, size_t len, int *err)
{
    task *t = &tr->t;
    if (!(t->is_lm ? t->text.n[DATA_VALID] > 1 : t->seq.set[DATA_VALID].n > 0)) return 0;
    saved_state ss;
    if (t->is_lm && state_save(t, &ss, msg, len) != 0) {
        *err = 1;
        return 1;
    }
    double loss, metric;
    int rc = task_evaluate(t, DATA_VALID, &loss, &metric, NULL, msg, len);
    if (t->is_lm) state_restore(t, &ss);
    if (rc != 0) {
        *err = 1;
        return 1;
    }
    metrics_row r = { .kind = "valid", .step = (long)tr->pr.step, .epoch = (int)tr->pr.epoch + 1, .loss = loss,
                      .metric_name = task_metric_name(t), .metric = metric, .elapsed_s = tr->pr.elapsed };
    metrics_write(&tr->mx, &r);
    int better = loss < tr->pr.best;
    if (tr->live) fprintf(stderr, "\r\033[K");
    printf("epoch %d step %lu: valid loss %.4f %s %.4f%s\n", (int)tr->pr.epoch + 1, (unsigned long)tr->pr.step, loss,
           task_metric_name(t), metric, better ? " (best)" : "");
    fflush(stdout);
    if (better) {
        tr->pr.best = loss;
        tr->pr.bad = 0;
        if (save(tr, tr->best_path, msg, len) != 0) {
            *err = 1;
            return 1;
        }
    } else tr->pr.bad++;
    tr->validated = 1;
    if (show_sample(tr, msg, len) != 0) {
        *err = 1;
        return 1;
    }
    return tr->c->patience > 0 && tr->pr.bad >= (uint64_t)tr->c->patience;
}

/* The temporary files a checkpoint write killed in an earlier run left in the run
 * folder (last.ckpt.tmp.<pid>, best.ckpt.tmp.<pid> of no live process): removed, and
 * said. A file that cannot be removed is only a warning. */
static void remove_stale_temps(trainer *tr)
{
    const char *paths[2] = { tr->last_path, tr->best_path };
    for (int i = 0; i < 2; i++) {
        char err[1024];
        int n = ckpt_remove_stale_temps(paths[i], err, sizeof err);
        if (n < 0) fprintf(stderr, "recur train: warning: %s\n", err);
        else if (n > 0)
            printf("removed %d stale temporary file%s %s.tmp.<pid> (a checkpoint write killed before it ended)\n", n,
                   n > 1 ? "s" : "", paths[i]);
    }
}

/* The run folder and, when resuming, the stored configuration under this command
 * line's options. 0, or -1 with tr->msg. */
static int open_run(trainer *tr, config *cfg)
{
    if (task_check_out(cfg, tr->msg, sizeof tr->msg) != 0) return -1;
    if (make_dirs(cfg->out) != 0) {
        snprintf(tr->msg, sizeof tr->msg, "%s: cannot create the run folder: %s", cfg->out, strerror(errno));
        return -1;
    }
    snprintf(tr->last_path, sizeof tr->last_path, "%s/last.ckpt", cfg->out);
    snprintf(tr->best_path, sizeof tr->best_path, "%s/best.ckpt", cfg->out);
    if (tr->rank == 0) remove_stale_temps(tr);
    if (cfg->resume) {   /* the stored configuration, then this command line's options */
        config stored;
        if (run_read_config(tr->last_path, &stored, tr->msg, sizeof tr->msg) != 0) return -1;
        memset(stored.set, 0, sizeof stored.set);
        config_overlay(&stored, cfg);   /* what this command line says wins (the architecture is checked) */
        if (!config_was_set(cfg, "steps")) stored.steps = 0;
        if (!config_was_set(cfg, "time-limit")) stored.time_limit = 0;
        stored.resume = 1;
        *cfg = stored;
    }
    tr->c = cfg;
    return 0;
}

/* The data and model of the run. 0, or -1 with tr->msg. */
static int setup(trainer *tr)
{
    config *cfg = tr->c;
    char *msg = tr->msg;
    size_t len = sizeof tr->msg;
    if (parse_optim(cfg, &tr->oo, msg, len) || parse_schedule(cfg, &tr->sched, msg, len)) return -1;
    if (strcmp(cfg->metrics, "csv") && strcmp(cfg->metrics, "jsonl")) {
        snprintf(msg, len, "--metrics '%s' is not csv or jsonl", cfg->metrics);
        return -1;
    }
    struct stat st;
    if (tr->dist && stat(cfg->data, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* a folder is joined into <out>/corpus.txt: one process after the other writes it */
        int rc = 0;
        for (int r = 0; r < dist_size(); r++) {
            if (r == tr->rank) rc = task_load(&tr->t, cfg, msg, len);
            char bm[512];
            if (dist_barrier(bm, sizeof bm) != 0) {   /* every rank alike */
                if (rc == 0) snprintf(msg, len, "%s", bm);
                rc = -1;
                break;
            }
        }
        if (rc != 0) return -1;
    } else if (task_load(&tr->t, cfg, msg, len) != 0) return -1;
    if (cfg->resume) tr->t.cell_text = run_read_cell_text(tr->last_path);
    return task_make_model(&tr->t, msg, len);
}

/* After setup (and, under mpirun, the ranks' agreement): the optimiser, batches and
 * metrics log of the run, its checkpoint when resuming, and the header line. 0, or -1
 * with tr->msg. */
static int setup_run(trainer *tr)
{
    config *cfg = tr->c;
    char *msg = tr->msg;
    size_t len = sizeof tr->msg;
    task *t = &tr->t;
    if (tr->dist && dp_init(&tr->dp, t, msg, len) != 0) return -1;
    tr->opt = rc_optim_new(t->model, &tr->oo);
    if (!tr->opt) {
        snprintf(msg, len, "optimiser: %s", rc_model_error(t->model));
        return -1;
    }
    if (feeder_init(&tr->train, t, DATA_TRAIN, 1, msg, len) != 0) return -1;
    tr->pr.best = INFINITY;
    if (cfg->resume) {
        if (run_load(tr->last_path, t, tr->opt, &tr->train, &tr->pr, msg, len) != 0) return -1;
        if (tr->dist && dp_take_state(&tr->dp, t, msg, len) != 0) return -1;
        printf("resumed %s at epoch %lu, batch %lu, step %lu\n", tr->last_path, (unsigned long)tr->pr.epoch + 1,
               (unsigned long)tr->pr.batch, (unsigned long)tr->pr.step);
    } else if (feeder_epoch(&tr->train, 0, msg, len) != 0) return -1;
    if (groups_of(t->model, &tr->groups, msg, len) != 0) return -1;
    char mpath[2200];
    snprintf(mpath, sizeof mpath, "%s/metrics.%s", cfg->out, cfg->metrics);
    if (tr->rank == 0 && metrics_open(&tr->mx, mpath, !strcmp(cfg->metrics, "jsonl"), cfg->resume, cfg, tr->groups.n,
                                      (const char *const *)tr->groups.name, msg, len) != 0)
        return -1;
    tr->live = tr->rank == 0 && (cfg->progress > 0 || (cfg->progress < 0 && isatty(STDERR_FILENO)));
    tr->nb = feeder_count(&tr->train);
    tr->total_steps = (long)cfg->epochs * tr->nb;
    if (cfg->steps > 0 && cfg->steps < tr->total_steps) tr->total_steps = cfg->steps;
    char procs[64] = "", why[200] = "";
    if (tr->dist) snprintf(procs, sizeof procs, " in each of %d processes", dist_size());
    if (tr->threads_why[0]) snprintf(why, sizeof why, " (%s)", tr->threads_why);
    printf("recur %s: %s, %d x %d %s, %zu parameters, %ld batches of %d x %d per epoch, %d threads%s%s\n", rc_version(),
           cfg->data_kind, cfg->layers, cfg->hidden, cfg->cell, rc_model_param_total(t->model), tr->nb, cfg->batch,
           cfg->seq, rc_num_threads(), procs, why);
    fflush(stdout);
    return 0;
}

/* A training row's metric: what the loss alone gives (accuracy and error rates need an
 * evaluation: NaN). */
static double train_metric(const task *t, double sum, double count)
{
    kind_stats st = { .sum = sum, .count = count, .correct = NAN, .edits = NAN, .ref = NAN, .word_edits = NAN,
                      .word_ref = NAN };
    return task_metric(t, &st);
}

/* Ctrl-C and SIGTERM end the run cleanly after the update in progress. */
static void catch_signals(void)
{
    stop_requested = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int update_dist(trainer *tr, float lr);

/* One update on the epoch's batch tr->pr.batch: forward, backward, the optimiser's step,
 * and the loss and targets counted for the next progress row. 0, or -1 with tr->msg. */
static int update(trainer *tr, float lr)
{
    if (tr->dist) return update_dist(tr, lr);
    task *t = &tr->t;
    rc_batch b;
    double loss = 0;
    if (feeder_get(&tr->train, (long)tr->pr.batch, &b, tr->msg, sizeof tr->msg) != 0) return -1;
    if (rc_optim_begin(tr->opt) != RC_OK) {
        snprintf(tr->msg, sizeof tr->msg, "step %lu: %s", (unsigned long)tr->pr.step, rc_optim_error(tr->opt));
        return -1;
    }
    if (rc_model_forward(t->model, &b, &loss) != RC_OK || rc_model_backward(t->model) != RC_OK) {
        rc_optim_end(tr->opt);
        snprintf(tr->msg, sizeof tr->msg, "step %lu: %s", (unsigned long)tr->pr.step, rc_model_error(t->model));
        return -1;
    }
    if (rc_optim_step(tr->opt, lr) != RC_OK) {
        snprintf(tr->msg, sizeof tr->msg, "step %lu: %s (gradient norm %g): lower --lr or set --clip",
                 (unsigned long)tr->pr.step, rc_optim_error(tr->opt), rc_optim_grad_norm(tr->opt));
        return -1;
    }
    tr->pr.step++;
    tr->pr.runs = model_get_runs(t->model);
    double sum, cnt;
    rc_model_last_stats(t->model, &sum, &cnt);
    tr->loss_acc += sum;
    tr->loss_n += (long)cnt;
    tr->tok_window += (double)batch_targets(t, &b);
    return 0;
}

/* One data-parallel update (several processes): this rank's share of the batch, forward
 * and backward, then one sum over the ranks of the loss numbers, the stop flags and who
 * failed, then the gradients summed with the global normalisation, and the same step
 * on every rank. Every rank returns the same: 0, or -1 (tr->quiet unless this rank's
 * message is the one to show). */
static int update_dist(trainer *tr, float lr)
{
    task *t = &tr->t;
    dpar *d = &tr->dp;
    rc_batch full, b;
    int failed = 0, begun = 0;
    if (feeder_get(&tr->train, (long)tr->pr.batch, &full, tr->msg, sizeof tr->msg) != 0 ||
        dp_shard(d, t, &full, &b, tr->msg, sizeof tr->msg) != 0)
        failed = 1;
    /* dropout masks: another run number on each rank, so the ranks' masks differ */
    model_set_runs(t->model, tr->pr.runs * (uint64_t)d->size + (uint64_t)d->rank);
    if (!failed && rc_optim_begin(tr->opt) != RC_OK) {
        snprintf(tr->msg, sizeof tr->msg, "step %lu: %s", (unsigned long)tr->pr.step, rc_optim_error(tr->opt));
        failed = 1;
    } else if (!failed) begun = 1;
    if (!failed && (rc_model_forward(t->model, &b, NULL) != RC_OK || rc_model_backward(t->model) != RC_OK)) {
        snprintf(tr->msg, sizeof tr->msg, "step %lu: %s", (unsigned long)tr->pr.step, rc_model_error(t->model));
        failed = 1;
    }
    double *v = d->stats;
    memset(v, 0, ((size_t)DP_STATS + (size_t)d->size) * sizeof *v);
    if (!failed) {
        dp_after_forward(d, t);
        if (!d->empty) rc_model_last_stats(t->model, &v[DP_SUM], &v[DP_COUNT]);
        v[DP_NORM] = d->norm;
    }
    v[DP_STOP] = stop_requested != 0;
    v[DP_TIME] = tr->c->time_limit > 0 && now() - tr->t0 >= tr->c->time_limit;
    v[DP_STATS + d->rank] = failed;
    if (dist_sum_doubles(v, (size_t)DP_STATS + (size_t)d->size, tr->msg, sizeof tr->msg) != 0) {
        if (begun) rc_optim_end(tr->opt);
        tr->quiet = d->rank != 0;   /* every rank has its message */
        return -1;
    }
    int first = -1;
    for (int r = d->size - 1; r >= 0; r--)
        if (v[DP_STATS + r] > 0) first = r;
    if (failed || first >= 0) {
        if (begun) rc_optim_end(tr->opt);
        tr->quiet = first >= 0 && first != d->rank;
        return -1;
    }
    if (dp_reduce_grads(d, t, v[DP_NORM], tr->msg, sizeof tr->msg) != 0) {
        tr->quiet = d->rank != 0;   /* every rank has its message */
        return -1;
    }
    if (rc_optim_step(tr->opt, lr) != RC_OK) {   /* the same gradients on every rank: the same outcome */
        snprintf(tr->msg, sizeof tr->msg, "step %lu: %s (gradient norm %g): lower --lr or set --clip",
                 (unsigned long)tr->pr.step, rc_optim_error(tr->opt), rc_optim_grad_norm(tr->opt));
        tr->quiet = d->rank != 0;
        return -1;
    }
    tr->pr.step++;
    tr->pr.runs++;
    model_set_runs(t->model, tr->pr.runs);
    tr->loss_acc += v[DP_SUM];
    tr->loss_n += (long)v[DP_COUNT];
    tr->tok_window += (double)batch_targets(t, &full);
    tr->dstop = v[DP_STOP] > 0;
    tr->dtime = v[DP_TIME] > 0;
    if (tr->pr.step % 100 == 0 && dp_check_weights(d, t, tr->msg, sizeof tr->msg) != 0) {
        tr->quiet = d->rank != 0;
        return -1;
    }
    return 0;
}

/* Rank 0's part of a validation or checkpoint of a data-parallel run, done by all
 * ranks: rank 0 receives every stream's carried state, runs `what` (which returns 1 to
 * stop, sets *err on a failure), returns to its own streams; every rank learns both.
 * Single process: just `what`. */
typedef int (*rank0_fn)(trainer *tr, const void *arg, int *err);
static int on_rank0(trainer *tr, rank0_fn what, const void *arg, int *err)
{
    if (!tr->dist) return what(tr, arg, err);
    int flags[2] = { 0, 0 };
    int gerr = dp_gather_state(&tr->dp, &tr->t, tr->msg, sizeof tr->msg) != 0;
    if (!gerr && tr->rank == 0) flags[0] = what(tr, arg, &flags[1]);
    dp_restore_state(&tr->dp, &tr->t);
    if (gerr) flags[1] = 1;
    else if (dist_bcast(flags, sizeof flags, 0, tr->msg, sizeof tr->msg) != 0) flags[1] = 1;
    if (flags[1]) {   /* rank 0's message, or the collective's on every rank */
        *err = 1;
        tr->quiet = tr->rank != 0;
    }
    return flags[0];
}

static int do_validate(trainer *tr, const void *arg, int *err)
{
    (void)arg;
    return validate(tr, tr->msg, sizeof tr->msg, err);
}

static int do_save(trainer *tr, const void *path, int *err)
{
    if (save(tr, path, tr->msg, sizeof tr->msg) != 0) *err = 1;
    return 0;
}

static int do_sample(trainer *tr, const void *arg, int *err)
{
    (void)arg;
    if (!tr->validated && show_sample(tr, tr->msg, sizeof tr->msg) != 0) *err = 1;
    return 0;
}

/* A progress row: the metrics log and the live line, then a new window. */
static void report(trainer *tr, int ep, float lr, double tnow)
{
    const config *cfg = tr->c;
    task *t = &tr->t;
    double tps = tr->tok_window / (tnow - tr->win_start + 1e-9), mean = tr->loss_n ? tr->loss_acc / (double)tr->loss_n : NAN;
    double eta = tr->total_steps > 0 ? (tnow - tr->t0) / (double)tr->pr.step * (double)(tr->total_steps - (long)tr->pr.step) : -1;
    if (cfg->time_limit > 0 && cfg->time_limit - (tnow - tr->t0) < eta) eta = cfg->time_limit - (tnow - tr->t0);
    group_norms(t->model, &tr->groups);
    metrics_row r = { .kind = "train", .step = (long)tr->pr.step, .epoch = ep + 1, .loss = mean,
                      .metric_name = task_metric_name(t), .metric = train_metric(t, tr->loss_acc, (double)tr->loss_n),
                      .lr = lr, .grad_norm = rc_optim_grad_norm(tr->opt), .group_norm = tr->groups.norm,
                      .tokens_per_s = tps, .elapsed_s = tr->pr.elapsed };
    if (t->labels) r.metric = NAN;
    metrics_write(&tr->mx, &r);
    if (tr->live) {
        char e[32];
        fmt_time(eta, e, sizeof e);
        fprintf(stderr, "\r\033[Kepoch %d  step %lu/%ld  loss %.4f  %.0f tok/s  lr %.3g  ETA %s", ep + 1,
                (unsigned long)tr->pr.step, tr->total_steps, mean, tps, lr, e);
        fflush(stderr);
    }
    tr->loss_acc = 0;
    tr->loss_n = 0;
    tr->tok_window = 0;
    tr->win_start = tnow;
    tr->last_report = tnow;
}

/* After an update: a validation (--eval-every) and a checkpoint (--save-every) when due,
 * then the limits (`limit`: --steps, --time-limit or a signal). A checkpoint written here
 * resumes after this batch. Returns 1 to leave the epoch (tr->stop or tr->err set). */
static int after_update(trainer *tr, int limit)
{
    const config *cfg = tr->c;
    int next_saved = cfg->save_every > 0 && tr->pr.step % (uint64_t)cfg->save_every == 0;
    if (cfg->eval_every > 0 && tr->pr.step % (uint64_t)cfg->eval_every == 0) {
        tr->pr.batch++;
        if (on_rank0(tr, do_validate, NULL, &tr->err)) {
            tr->stop = 1;
            tr->why = "early stop";
        }
        tr->pr.batch--;
        if (tr->err) return 1;
    }
    if (next_saved) {
        tr->pr.batch++;
        on_rank0(tr, do_save, tr->last_path, &tr->err);
        if (tr->err) return 1;
        tr->pr.batch--;
    }
    if (limit) {
        tr->stop = 1;
        tr->why = stop_requested || tr->dstop ? "interrupted"
                  : cfg->steps > 0 && (long)tr->pr.step >= cfg->steps ? "step limit" : "time limit";
    }
    if (tr->stop) {
        tr->pr.batch++;
        return 1;
    }
    return 0;
}

/* The updates of epoch tr->pr.epoch from batch tr->pr.batch on, to the epoch's end or a
 * stop. 0, or -1 with tr->msg. */
static int train_epoch(trainer *tr)
{
    const config *cfg = tr->c;
    task *t = &tr->t;
    int ep = (int)tr->pr.epoch;
    if (tr->pr.batch == 0) {
        if (feeder_epoch(&tr->train, ep, tr->msg, sizeof tr->msg) != 0) return -1;
        if (t->is_lm) rc_model_reset_state(t->model);
    }
    rc_model_set_carry(t->model, t->is_lm);
    rc_model_set_training(t->model, 1);
    for (; tr->pr.batch < (uint64_t)tr->nb; tr->pr.batch++) {
        double progress = tr->total_steps > 0 ? (double)tr->pr.step / (double)tr->total_steps : 0;
        float lr = rc_schedule_lr(&tr->sched, ep + 1, progress);
        if (update(tr, lr) != 0) return -1;
        double tnow = now();
        tr->pr.elapsed = tnow - tr->t0;
        int limit = (cfg->steps > 0 && (long)tr->pr.step >= cfg->steps) ||
                    (tr->dist ? tr->dstop || tr->dtime   /* what every rank saw, so all stop together */
                              : stop_requested || (cfg->time_limit > 0 && tnow - tr->t0 >= cfg->time_limit));
        if (tr->rank == 0 && (tnow - tr->last_report > 0.5 || tr->pr.batch + 1 == (uint64_t)tr->nb || limit))
            report(tr, ep, lr, tnow);   /* a last row before a stop */
        if (after_update(tr, limit)) break;
    }
    return tr->err ? -1 : 0;
}

/* At an epoch's end: its validation (unless --eval-every validates) and, when nothing
 * has been validated, a sample. 0, or -1 with tr->msg. */
static int end_epoch(trainer *tr)
{
    if (tr->c->eval_every == 0 && on_rank0(tr, do_validate, NULL, &tr->err)) {
        if (tr->err) return -1;
        tr->stop = 1;
        tr->why = "early stop";
    }
    if (tr->err) return -1;
    on_rank0(tr, do_sample, NULL, &tr->err);
    return tr->err ? -1 : 0;
}

/* A resumed run that had already reached a limit of this command: --epochs, --steps,
 * --time-limit (the time trained in all) or --patience. Rerunning a finished command
 * trains nothing and writes nothing (last.ckpt, best.ckpt and the metrics stay as they
 * are); a larger limit continues it. A run stopped by a signal is not finished. Returns
 * 1 after saying so, else 0. */
static int finished_before(trainer *tr)
{
    const config *c = tr->c;
    const run_progress *p = &tr->pr;
    char why[160];
    const char *opt;
    if (!c->resume) return 0;
    if (p->epoch >= (uint64_t)c->epochs) {
        snprintf(why, sizeof why, "it trained all of --epochs %d", c->epochs);
        opt = "--epochs";
    } else if (c->steps > 0 && p->step >= (uint64_t)c->steps) {
        snprintf(why, sizeof why, "it reached --steps %ld", c->steps);
        opt = "--steps";
    } else if (c->time_limit > 0 && p->elapsed >= c->time_limit) {
        snprintf(why, sizeof why, "it reached --time-limit %g (%.1f s trained in all)", c->time_limit, p->elapsed);
        opt = "--time-limit";
    } else if (c->patience > 0 && p->bad >= (uint64_t)c->patience) {
        snprintf(why, sizeof why, "it stopped early (%lu validations without improvement, --patience %d)",
                 (unsigned long)p->bad, c->patience);
        opt = "--patience";
    } else return 0;
    printf("already finished: %s; nothing trained, %s, best.ckpt and the metrics unchanged (%lu updates, %.1f s; a "
           "larger %s continues the run)\n", why, tr->last_path, (unsigned long)p->step, p->elapsed, opt);
    return 1;
}

/* Epochs until --epochs, a limit, an early stop or an error. 0, or -1 with tr->msg. */
static int train_loop(trainer *tr)
{
    double start = now();
    tr->t0 = start - tr->pr.elapsed;
    tr->last_report = tr->win_start = start;
    tr->why = "done";
    if ((tr->finished = finished_before(tr))) return 0;
    for (; !tr->stop && tr->pr.epoch < (uint64_t)tr->c->epochs; tr->pr.epoch++, tr->pr.batch = 0) {
        if (train_epoch(tr) != 0) return -1;
        if (tr->live) fprintf(stderr, "\r\033[K");
        if (tr->pr.batch < (uint64_t)tr->nb) break;   /* stopped inside the epoch: resume continues it */
        if (end_epoch(tr) != 0) return -1;
    }
    return 0;
}

/* The run's thread count, once its configuration is known: a resumed run keeps the
 * count it stored (bit for bit the same updates), unless this command line sets one;
 * a new run takes tool_set_threads's choice and stores it. */
static void choose_threads(trainer *tr)
{
    config *c = tr->c;
    int stored = c->resume && c->threads > 0 && !config_was_set(c, "threads") ? c->threads : 0;
    if (stored) {
        rc_set_num_threads(stored);
        snprintf(tr->threads_why, sizeof tr->threads_why, "the run's own count, kept on resume; --threads sets it");
        return;
    }
    c->threads = tool_set_threads(c->threads, tr->dist ? dist_local_size() : 1, tr->threads_why,
                                  sizeof tr->threads_why);
}

enum { AGREE_NOTHING, AGREE_OPTIONS, AGREE_MODEL };

/* Under mpirun, after a step of the start that may fail on some ranks only: whether all
 * succeeded (ok) and then describe rank 0's run (`what`: the options, or the data and
 * model as loaded; run_agree.h). The same on every rank: 1 to go on, 0 to leave. */
static int ranks_agree(trainer *tr, int ok, int what)
{
    if (!tr->dist) return ok;
    char *desc = NULL;
    if (ok && what != AGREE_NOTHING) {
        desc = what == AGREE_OPTIONS ? agree_train_options(tr->c, tr->msg, sizeof tr->msg)
                                     : agree_train_model(&tr->t, tr->c->resume ? tr->last_path : NULL, tr->msg,
                                                         sizeof tr->msg);
        ok = desc != NULL;
    }
    int rc = dp_start_agreed(ok, desc, &tr->quiet, tr->msg, sizeof tr->msg);
    free(desc);
    return rc;
}

int cmd_train(config *cfg)
{
    char dmsg[512] = "";
    if (dist_init(NULL, NULL, dmsg, sizeof dmsg) != 0) {
        fprintf(stderr, "recur train: %s\n", dmsg);
        return 1;
    }
    trainer *tr = calloc(1, sizeof *tr);
    int rc = 1;
    if (!tr) {
        fprintf(stderr, "recur train: out of memory\n");
        dist_abort(1);
    }
    tr->dist = dist_size() > 1;
    tr->rank = dist_rank();
    if (tr->rank != 0) {   /* rank 0 prints; the others report only their own errors (stderr) */
        int fd = open("/dev/null", O_WRONLY);
        fflush(stdout);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
    }
    if (tr->rank == 0 && tr->dist && dist_survives_death())   /* the gradient sum needs every rank */
        fprintf(stderr, "recur train: note: the launcher keeps the job going when a process dies "
                "(orte_enable_recovery); a training needs every rank, so should one die the others wait in the "
                "gradient sum: end the job and resume from the last checkpoint (--resume)\n");
    if (tr->rank == 0 && rc_blas_check() != RC_OK)
        fprintf(stderr, "recur: warning: OpenBLAS is not its OpenMP build; threads will fight (%s)\n", rc_blas_config());
    /* each step of the start may fail on some ranks only: all go on, or all leave */
    int ok = ranks_agree(tr, open_run(tr, cfg) == 0, AGREE_OPTIONS);
    if (ok) choose_threads(tr);
    ok = ok && ranks_agree(tr, setup(tr) == 0, AGREE_MODEL);
    ok = ok && ranks_agree(tr, setup_run(tr) == 0, AGREE_NOTHING);
    if (ok) {
        catch_signals();
        ok = train_loop(tr) == 0;
        if (ok && !tr->finished) {
            int err = 0;
            on_rank0(tr, do_save, tr->last_path, &err);
            ok = !err;
        }
        if (tr->live) fprintf(stderr, "\r\033[K");
        if (ok) {
            if (!tr->finished)
                printf("%s after %lu updates, %.1f s: checkpoint %s%s\n", tr->why, (unsigned long)tr->pr.step,
                       tr->pr.elapsed, tr->last_path, isfinite(tr->pr.best) ? ", best validation in best.ckpt" : "");
            rc = stop_requested || tr->dstop ? 130 : 0;
        }
    }
    if (rc == 1 && !tr->quiet) {
        if (tr->dist) fprintf(stderr, "recur train: process %d of %d: %s\n", tr->rank, dist_size(), tr->msg);
        else fprintf(stderr, "recur train: %s\n", tr->msg);
    }
    fflush(stdout);
    metrics_close(&tr->mx);
    groups_free(&tr->groups);
    feeder_free(&tr->train);
    rc_optim_free(tr->opt);
    dp_free(&tr->dp);
    task_free(&tr->t);
    free(tr);
    dist_finalize();
    return rc;
}
