/* recur search: an evolutionary search over cells written in the cell language, after
 * Jozefowicz, Zaremba & Sutskever 2015. The seed cells (baselines) are evaluated first;
 * then, batch after batch, candidates are made by mutating a parent drawn from the
 * population (the best --population rows), deduplicated by canonical hash against every
 * cell evaluated before, trained briefly at a few learning rates (best taken), and, when
 * that beats the best baseline, evaluated longer with several seeds. Every finished
 * cell is one fsynced row in DIR/candidates.jsonl and .csv, so a killed search resumes
 * where it stopped and gives the same rows: a candidate's randomness comes from (seed,
 * id) and a batch is made from the rows before it, never from timing. Under mpirun,
 * rank 0 keeps the population and the files, and every rank (rank 0 too) evaluates
 * candidates of the batch as it becomes free. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "commands.h"
#include "dist.h"
#include "recur.h"
#include "search.h"

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = sig; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double unix_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* 2 ms: the wait between polls for a message. */
static void nap(void)
{
    struct timespec ts = { 0, 2000000 };
    nanosleep(&ts, NULL);
}

static unsigned long long splitmix(unsigned long long *s)
{
    unsigned long long z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- options ------------------------------------------------------------------------ */

typedef struct optdef {
    const char *name;
    char type;        /* l long, i int, d double, s string, u unsigned long long */
    size_t off, size;
    int protocol;     /* part of the search's definition: fixed by DIR/search.conf on a resume */
    const char *help;
} optdef;

#define O(f) offsetof(search_opts, f), sizeof(((search_opts *)0)->f)
static const optdef OPTS[] = {
    { "out", 's', O(out), 0, "DIR: the search's folder (created; an existing one is resumed)" },
    { "tasks", 's', O(tasks), 1, "the tasks a candidate is scored on, comma-separated: arith (examples/arith.c), chars "
                                 "(a character LM: 1/bpc), music (piano rolls: 1/NLL); several: the mean of score / "
                                 "best baseline's" },
    { "task-data", 's', O(task_data), 1, "the data of chars and music: chars=FILE|DIR,music=FILE.json (chars default: "
                                         "the fortunes corpus)" },
    { "seed-cells", 's', O(seed_cells), 1, "the baselines and first parents: lstm, gru, gru-cho, mut1..3, rnn-tanh, "
                                           "rnn-relu, lstm-peephole (cells/lib) or .cell files, comma-separated" },
    { "budget", 'l', O(budget), 0, "N: stop after N candidates (besides the baselines) in DIR; 0: evaluate the seed cells only" },
    { "time-limit", 'd', O(time_limit), 0, "S: stop this run after S seconds (at a batch's end); 0: no limit" },
    { "params", 'l', O(params), 1, "N: each cell's hidden size is the one bringing the model's parameters nearest N" },
    { "steps", 'l', O(steps), 1, "N: updates of the short training, per learning rate" },
    { "lrs", 's', O(lrs), 1, "the learning rates of the short training (Adam, cosine decay), comma-separated" },
    { "promote-steps", 'l', O(promote_steps), 1, "N: updates of the longer evaluation of a cell beating the baselines" },
    { "promote-seeds", 'i', O(promote_seeds), 1, "K: seeds of the longer evaluation (its score: their mean)" },
    { "population", 'i', O(population), 1, "K: the best K cells are the parents" },
    { "batch-candidates", 'i', O(batch_cands), 1, "N: candidates made from one population (farmed out together)" },
    { "batch", 'i', O(batch), 1, "B: sequences per update and per test chunk" },
    { "test", 'i', O(test), 1, "N: problems of the fixed test set" },
    { "distract", 'i', O(distract), 1, "N: up to N distractor letters before each question character" },
    { "seq", 'i', O(seq), 1, "T: unroll length of the chars and music training" },
    { "seed", 'u', O(seed), 1, "S: the search's seed (the test set, the data, every candidate's draws)" },
    { "threads", 'i', O(threads), 0, "N: threads per process; 0: the library's default; at most 4 per core online" },
    { "top", 'i', O(top), 0, "N: cells kept in DIR/top and shown by --status" },
    { "progress", 'i', O(progress), 0, "0: no progress line on a terminal" },
    { "rank-timeout", 'd', O(rank_timeout), 0, "S: under mpirun, a rank silent for S seconds is taken as gone and its "
                                               "candidate goes to another rank (the note above)" },
};
#define NOPT ((int)(sizeof OPTS / sizeof *OPTS))

static void defaults(search_opts *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->tasks, sizeof o->tasks, "arith");
    snprintf(o->seed_cells, sizeof o->seed_cells, "lstm,gru");
    o->budget = 100;
    o->params = 20000;
    o->steps = 300;
    snprintf(o->lrs, sizeof o->lrs, "3e-3,1e-2,3e-2");
    o->promote_steps = 1200;
    o->promote_seeds = 3;
    o->population = 20;
    o->batch_cands = 4;
    o->batch = 32;
    o->test = 512;
    o->distract = 2;
    o->seq = 50;
    o->seed = 1;
    o->top = 10;
    o->progress = 1;
    o->rank_timeout = 120;
}

static void search_usage(FILE *f)
{
    fprintf(f, "usage: recur search --out DIR [options]      (resumes DIR when it holds a search)\n"
               "       recur search --status DIR [--top N]   (the summary table, safe while a search runs)\n"
               "       mpirun -np N recur search --out DIR ... (rank 0 writes; every rank evaluates)\n\n"
               "A rank silent for --rank-timeout (hung) loses only its candidate, which goes to another\n"
               "rank; so does a rank that dies when the launcher lets the job go on (Open MPI 4:\n"
               "mpirun --mca orte_enable_recovery 1). Otherwise a death ends the job, and the same\n"
               "command resumes from DIR.\n\noptions:\n");
    for (int i = 0; i < NOPT; i++) fprintf(f, "  --%-18s %s\n", OPTS[i].name, OPTS[i].help);
}

static void opt_fmt(const search_opts *o, const optdef *d, char *buf, size_t len)
{
    const char *p = (const char *)o + d->off;
    switch (d->type) {
    case 'l': snprintf(buf, len, "%ld", *(const long *)p); break;
    case 'i': snprintf(buf, len, "%d", *(const int *)p); break;
    case 'd': snprintf(buf, len, "%.17g", *(const double *)p); break;
    case 'u': snprintf(buf, len, "%llu", *(const unsigned long long *)p); break;
    default: snprintf(buf, len, "%s", p);
    }
}

static int opt_set(search_opts *o, const optdef *d, const char *v, char *msg, size_t len)
{
    char *p = (char *)o + d->off, *e = NULL;
    errno = 0;
    switch (d->type) {
    case 'l': *(long *)p = strtol(v, &e, 10); break;
    case 'i': {
        long x = strtol(v, &e, 10);
        if (x < -1000000000L || x > 1000000000L) errno = ERANGE;
        *(int *)p = (int)x;
        break;
    }
    case 'd':
        *(double *)p = strtod(v, &e);
        if (v[0] && !*e && !errno && !isfinite(*(double *)p)) {
            snprintf(msg, len, "--%s '%.100s': not a finite number", d->name, v);
            return -1;
        }
        break;
    case 'u':
        if (v[0] == '-') errno = ERANGE;
        *(unsigned long long *)p = strtoull(v, &e, 10);
        break;
    default:
        if (strlen(v) >= d->size) {
            snprintf(msg, len, "--%s: the value is longer than %zu characters", d->name, d->size - 1);
            return -1;
        }
        memcpy(p, v, strlen(v) + 1);
        return 0;
    }
    if (!v[0] || *e || errno) {
        snprintf(msg, len, "--%s '%.100s': not a%s number", d->name, v, d->type == 'd' ? "" : "n integer");
        return -1;
    }
    return 0;
}

static const optdef *opt_find(const char *name, size_t n)
{
    for (int i = 0; i < NOPT; i++)
        if (strlen(OPTS[i].name) == n && !strncmp(OPTS[i].name, name, n)) return &OPTS[i];
    return NULL;
}

/* The options of search.conf (key value lines) into o. */
static int conf_read(const char *path, search_opts *o, char *msg, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, len, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[2048];
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        char *sp = strchr(line, ' ');
        const optdef *d = sp ? opt_find(line, (size_t)(sp - line)) : NULL;
        if (!d || !d->protocol) continue;   /* a key of another version, or one a resume takes from its command */
        if (opt_set(o, d, sp + 1, msg, len) != 0) {
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

static int conf_write(const char *path, const search_opts *o, char *msg, size_t len)
{
    char buf[16384], v[1100];
    size_t n = (size_t)snprintf(buf, sizeof buf, "# recur search %s: the options of this search (a resume keeps the "
                                "protocol ones)\n", rc_version());
    for (int i = 0; i < NOPT && n < sizeof buf; i++) {
        opt_fmt(o, &OPTS[i], v, sizeof v);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s %s\n", OPTS[i].name, v);
    }
    if (n >= sizeof buf) {
        snprintf(msg, len, "search.conf: the options are longer than %zu bytes", sizeof buf);
        return -1;
    }
    return write_atomic(path, buf, n, msg, len);
}

/* Parses argv[first..argc); status_dir set for --status. 0, or -1 with msg. */
static int parse_args(search_opts *o, int *set, int argc, char **argv, char *status_dir, size_t slen, char *msg,
                      size_t len)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            snprintf(msg, len, "unexpected argument '%.200s' (options start with --)", a);
            return -1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
        if (nl == 6 && !strncmp(name, "status", 6)) {
            if (!val) {
                snprintf(msg, len, "--status needs a folder");
                return -1;
            }
            snprintf(status_dir, slen, "%s", val);
            if (!eq) i++;
            continue;
        }
        const optdef *d = opt_find(name, nl);
        if (!d) {
            snprintf(msg, len, "unknown option '--%.*s'", (int)(nl < 200 ? nl : 200), name);
            return -1;
        }
        if (!val) {
            snprintf(msg, len, "--%s needs a value", d->name);
            return -1;
        }
        if (opt_set(o, d, val, msg, len) != 0) return -1;
        set[d - OPTS] = 1;
        if (!eq) i++;
    }
    return 0;
}

static int check_opts(search_opts *o, char *msg, size_t len)
{
    if (!o->out[0]) {
        snprintf(msg, len, "--out DIR is required (the search's folder)");
        return -1;
    }
    char t[sizeof o->tasks];
    snprintf(t, sizeof t, "%s", o->tasks);
    int seen[3] = { 0 }, nt = 0;
    for (char *tok = strtok(t, ","); tok; tok = strtok(NULL, ",")) {
        int k = !strcmp(tok, "arith") ? 0 : !strcmp(tok, "chars") ? 1 : !strcmp(tok, "music") ? 2 : -1;
        if (k < 0) {
            snprintf(msg, len, "--tasks: unknown task '%.100s' (known: arith, chars, music)", tok);
            return -1;
        }
        if (seen[k]++) {
            snprintf(msg, len, "--tasks: %s twice", tok);
            return -1;
        }
        nt++;
    }
    if (!nt || strstr(o->tasks, ",,") || o->tasks[0] == ',' || o->tasks[strlen(o->tasks) - 1] == ',') {
        snprintf(msg, len, "--tasks '%.60s': give arith, chars or music, comma-separated", o->tasks);
        return -1;
    }
    if (o->seq < 1) {
        snprintf(msg, len, "--seq must be >= 1");
        return -1;
    }
    if (o->budget < 0 || o->time_limit < 0) {
        snprintf(msg, len, "--budget and --time-limit must be >= 0");
        return -1;
    }
    if (o->params < 1 || o->steps < 1 || o->promote_steps < 1) {
        snprintf(msg, len, "--params, --steps and --promote-steps must be >= 1");
        return -1;
    }
    if (o->promote_seeds < 1 || o->promote_seeds > SEARCH_MAX_SEEDS) {
        snprintf(msg, len, "--promote-seeds %d must be 1..%d", o->promote_seeds, SEARCH_MAX_SEEDS);
        return -1;
    }
    if (o->population < 1 || o->batch_cands < 1 || o->batch < 1 || o->test < 1 || o->distract < 0 || o->top < 0 ||
        o->threads < 0) {
        snprintf(msg, len, "--population, --batch-candidates, --batch and --test must be >= 1; --distract, --top and "
                 "--threads >= 0");
        return -1;
    }
    if (o->threads > rc_max_threads()) {
        snprintf(msg, len, "--threads %d: at most %d (%d per core online: more threads only wait for a core)", o->threads,
                 rc_max_threads(), RC_THREADS_PER_CORE);
        return -1;
    }
    if (!(o->rank_timeout > 0) || !isfinite(o->rank_timeout)) {
        snprintf(msg, len, "--rank-timeout must be a positive number of seconds");
        return -1;
    }
    if (o->distract > 20) {
        snprintf(msg, len, "--distract %d: at most 20", o->distract);
        return -1;
    }
    char l[sizeof o->lrs];
    snprintf(l, sizeof l, "%s", o->lrs);
    o->nlr = 0;
    for (char *tok = strtok(l, ","); tok; tok = strtok(NULL, ",")) {
        char *e;
        double x = strtod(tok, &e);
        if (*e || !(x > 0) || !isfinite(x)) {
            snprintf(msg, len, "--lrs: '%.60s' is not a positive number", tok);
            return -1;
        }
        if (o->nlr == SEARCH_MAX_LRS) {
            snprintf(msg, len, "--lrs: at most %d learning rates", SEARCH_MAX_LRS);
            return -1;
        }
        o->lr[o->nlr++] = x;
    }
    if (!o->nlr) {
        snprintf(msg, len, "--lrs: give at least one learning rate");
        return -1;
    }
    return 0;
}

/* ---- the seed cells ------------------------------------------------------------------- */

static char *read_file(const char *path, char *msg, size_t len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, len, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    while (s) {
        size_t got = fread(s + n, 1, cap - n - 1, f);
        n += got;
        if (n + 1 < cap) break;
        char *g = realloc(s, cap * 2);
        if (!g) {
            free(s);
            s = NULL;
            break;
        }
        s = g;
        cap *= 2;
    }
    fclose(f);
    if (!s) snprintf(msg, len, "%s: out of memory", path);
    else s[n] = 0;
    return s;
}

/* The text of a seed cell: any name rc_cell_find knows (a built-in is read as the library's
 * file of the same graph), or a .cell file. */
static char *seed_text(const char *name, char *msg, size_t len)
{
    char path[1200], err[2048];
    if (rc_cell_file(name, path, sizeof path, err, sizeof err) != 0) {
        snprintf(msg, len, "--seed-cells: %.1900s", err);
        return NULL;
    }
    return read_file(path, msg, len);
}

/* ---- the tasks ------------------------------------------------------------------------ */

typedef struct search_tasks {
    int n;
    char name[SEARCH_MAX_TASKS][8];
    arith_set *a;                       /* the arith task's test set, or NULL */
    data_task *d[SEARCH_MAX_TASKS];     /* chars, music: the loaded data, or NULL */
} search_tasks;

static void tasks_free(search_tasks *ts)
{
    arith_free(ts->a);
    for (int i = 0; i < ts->n; i++) data_task_free(ts->d[i]);
    memset(ts, 0, sizeof *ts);
}

/* The path given to task `name` in --task-data ("" when none) into buf. */
static void task_path(const search_opts *o, const char *name, char *buf, size_t len)
{
    buf[0] = 0;
    size_t nl = strlen(name);
    for (const char *p = o->task_data; *p;) {
        size_t l = strcspn(p, ",");
        if (l > nl && p[nl] == '=' && !strncmp(p, name, nl)) {
            snprintf(buf, len, "%.*s", (int)(l - nl - 1), p + nl + 1);
            return;
        }
        p += l;
        if (*p == ',') p++;
    }
}

/* Loads the data of every task of o (checked: --tasks is valid) and sets o's model
 * shape from the first task. 0, or -1 with msg. */
static int tasks_open(search_opts *o, search_tasks *ts, char *msg, size_t len)
{
    memset(ts, 0, sizeof *ts);
    for (const char *p = o->task_data; *p;) {   /* every key of --task-data names a data task */
        size_t l = strcspn(p, ",");
        const char *eq = memchr(p, '=', l);
        if (!eq || !(((size_t)(eq - p) == 5 && !strncmp(p, "chars", 5)) || ((size_t)(eq - p) == 5 && !strncmp(p, "music", 5)))) {
            snprintf(msg, len, "--task-data: '%.*s' is not chars=PATH or music=PATH", (int)(l < 200 ? l : 200), p);
            return -1;
        }
        p += l;
        if (*p == ',') p++;
    }
    char t[sizeof o->tasks];
    snprintf(t, sizeof t, "%s", o->tasks);
    for (char *tok = strtok(t, ","); tok && ts->n < SEARCH_MAX_TASKS; tok = strtok(NULL, ",")) {
        int i = ts->n++;
        snprintf(ts->name[i], sizeof ts->name[i], "%s", tok);
        int vocab, in, out;
        if (!strcmp(tok, "arith")) {
            if (!(ts->a = arith_new(o))) {
                snprintf(msg, len, "out of memory for the test set");
                tasks_free(ts);
                return -1;
            }
            arith_shape(&vocab, &in, &out);
        } else {
            char path[2048];
            task_path(o, tok, path, sizeof path);
            if (!path[0] && !strcmp(tok, "chars")) snprintf(path, sizeof path, "/usr/share/games/fortunes");
            if (!path[0]) {
                snprintf(msg, len, "--tasks music needs its data: --task-data music=FILE.json (the piano-roll JSON of "
                         "recur train --data-kind music, e.g. JSB_Chorales.json)");
                tasks_free(ts);
                return -1;
            }
            if (!(ts->d[i] = data_task_load(o, tok, path, msg, len))) {
                tasks_free(ts);
                return -1;
            }
            data_task_shape(ts->d[i], &vocab, &in, &out);
        }
        if (i == 0) o->shape_vocab = vocab, o->shape_in = in, o->shape_out = out;
    }
    return 0;
}

/* ---- the ranks: the same search, who is alive ---------------------------------------- */

/* Under mpirun: whether every rank has rank 0's search (dist_agree): the protocol options
 * but --task-data (a path: the data as loaded is compared instead) and every data task's
 * data. The other options are rank 0's business (--out, --budget, --time-limit, --top) or
 * a rank's own (--threads, --progress, --rank-timeout). 0, or -1 on every rank (*quiet
 * on all but the one whose msg says why). */
static int ranks_agree(const search_opts *o, const search_tasks *ts, int *quiet, char *msg, size_t len)
{
    char *desc = NULL, v[2100];
    size_t n = 0;
    FILE *f = open_memstream(&desc, &n);
    for (int i = 0; f && i < NOPT; i++)
        if (OPTS[i].protocol && strcmp(OPTS[i].name, "task-data") != 0) {
            opt_fmt(o, &OPTS[i], v, sizeof v);
            fprintf(f, "--%s\t%s\n", OPTS[i].name, v);
        }
    for (int i = 0; f && i < ts->n; i++)
        if (ts->d[i]) {
            snprintf(v, sizeof v, "--tasks %s: ", ts->name[i]);
            data_task_describe(ts->d[i], v, f);
        }
    int ok = f && fclose(f) == 0 && desc, first = dist_first_failed(!ok, msg, len), rc = -1;
    if (first >= 0) snprintf(msg, len, "process %d: out of memory for the description of the search", first);
    if (first == -1) {
        int d = dist_agree(desc, &first, msg, len);
        rc = d == 0 ? 0 : -1;
        size_t k = strlen(msg);
        if (d > 0 && first == dist_rank() && k < len)
            snprintf(msg + k, len - k, ": every process of a search must be given the same options and data "
                     "(README: Searching for cells); nothing was evaluated");
    }
    free(desc);
    *quiet = first >= 0 ? first != dist_rank() : dist_rank() != 0;
    return rc;
}

/* ---- the ranks: who is alive ------------------------------------------------------------ */

enum { TAG_EVAL = 1, TAG_RESULT = 2, TAG_DONE = 3, TAG_ALIVE = 4 };

/* Each rank says "alive" (an empty message) every `every` seconds: a worker to rank 0,
 * rank 0 to the workers, also from inside a training, so each side can tell a peer that
 * died or hangs from one that is busy: a worker silent for --rank-timeout seconds is
 * gone for rank 0; rank 0 silent for twice that is gone for a worker (rank 0 may wait up
 * to --rank-timeout on a message from a rank that died while sending it). */
static struct fleet {
    int size;
    double timeout, every, said;
} g_fleet;   /* who is taken as gone: dist_forgotten (never posted to again; late messages dropped) */

static void fleet_init(const search_opts *o)
{
    g_fleet.size = dist_size();
    g_fleet.timeout = o->rank_timeout;
    g_fleet.every = o->rank_timeout / 8 < 5 ? o->rank_timeout / 8 : 5;
    g_fleet.said = now_s();
}

/* Says "alive" when it is time to. */
static void fleet_tick(void)
{
    if (g_fleet.size <= 1 || now_s() - g_fleet.said < g_fleet.every) return;
    g_fleet.said = now_s();
    char msg[256];
    if (dist_rank() != 0) dist_post(NULL, 0, 0, TAG_ALIVE, msg, sizeof msg);
    else
        for (int r = 1; r < g_fleet.size; r++)
            if (!dist_forgotten(r)) dist_post(NULL, 0, r, TAG_ALIVE, msg, sizeof msg);
}

/* The poll of every training update: alive, and whether to stop. */
static int update_poll(void)
{
    fleet_tick();
    return g_stop != 0;
}

/* Task i's score of text at hidden H (see arith_run, data_task_run). */
static double task_run(const search_opts *o, const search_tasks *ts, int i, const char *text, int H, double lr,
                       long steps, int s, char *msg, size_t len)
{
    if (ts->d[i]) return data_task_run(o, ts->d[i], text, H, lr, steps, s, update_poll, msg, len);
    return arith_run(o, ts->a, text, H, lr, steps, s, update_poll, msg, len);
}

/* ---- one evaluation ------------------------------------------------------------------- */

/* Evaluates c (c->text at its parent's hidden size) on every task: hidden from
 * --params, the short training per learning rate (the best: the highest mean of the
 * tasks' scores), the longer one when the short score beats `threshold` (several
 * tasks: the short scores normalised by refs, the best baselines' short scores). A
 * task that cannot be trained scores 0 with c->error set. 0, or 1 when interrupted. */
static int evaluate(const search_opts *o, const search_tasks *ts, cand *c, double threshold, const double *refs)
{
    double t0 = now_s();
    char msg[1024] = "";
    double per[SEARCH_MAX_LRS][SEARCH_MAX_TASKS];
    c->error[0] = 0;
    snprintf(c->tasks, sizeof c->tasks, "%s", o->tasks);
    c->ntask = ts->n;
    for (int t = 0; t < ts->n; t++) c->task_short[t] = c->task_long[t] = NAN;
    c->nlr = o->nlr;
    c->nseeds = 0;
    c->promoted = 0;
    c->short_score = c->long_score = NAN;
    c->best_lr = o->lr[0];
    long long count = 0;
    int H = arith_hidden_for(o, c->text, o->params, &count, msg, sizeof msg);
    char *text = H > 0 ? rc_cell_print(c->text, strlen(c->text), H, msg, sizeof msg) : NULL;
    if (!text) {
        snprintf(c->error, sizeof c->error, "%.250s", msg);
        for (int i = 0; i < o->nlr; i++) c->lr_score[i] = 0;
        for (int t = 0; t < ts->n; t++) c->task_short[t] = 0;
        c->short_score = c->score = 0;
        goto out;
    }
    free(c->text);
    c->text = text;
    c->hidden = H;
    c->params = count;
    double best = -1;
    int bi = 0;
    for (int i = 0; i < o->nlr; i++) {
        double mean = 0;
        for (int t = 0; t < ts->n; t++) {
            msg[0] = 0;
            double acc = task_run(o, ts, t, text, H, o->lr[i], o->steps, 0, msg, sizeof msg);
            if (acc == -1) return 1;
            if (!isfinite(acc)) {
                if (!c->error[0])
                    snprintf(c->error, sizeof c->error, "%s%s%slr %g: %.200s", ts->n > 1 ? ts->name[t] : "",
                             ts->n > 1 ? ", " : "", "", o->lr[i], msg);
                acc = 0;
            }
            per[i][t] = acc;
            mean += acc / ts->n;
        }
        c->lr_score[i] = mean;
        if (mean > best) best = mean, c->best_lr = o->lr[i], bi = i;
    }
    for (int t = 0; t < ts->n; t++) c->task_short[t] = per[bi][t];
    c->short_score = c->score = best;
    double norm = best;
    if (ts->n > 1) {   /* the promotion compares normalised scores */
        norm = 0;
        for (int t = 0; t < ts->n; t++) norm += refs[t] > 0 ? c->task_short[t] / refs[t] / ts->n : NAN;
    }
    if (threshold == -INFINITY || norm > threshold) {
        double sum = 0, tsum[SEARCH_MAX_TASKS] = { 0 };
        for (int s = 0; s < o->promote_seeds; s++) {
            double mean = 0;
            for (int t = 0; t < ts->n; t++) {
                msg[0] = 0;
                double acc = task_run(o, ts, t, text, H, c->best_lr, o->promote_steps, s, msg, sizeof msg);
                if (acc == -1) return 1;
                if (!isfinite(acc)) {
                    if (!c->error[0])
                        snprintf(c->error, sizeof c->error, "%s%sseed %d: %.200s", ts->n > 1 ? ts->name[t] : "",
                                 ts->n > 1 ? ", " : "", s, msg);
                    acc = 0;
                }
                tsum[t] += acc;
                mean += acc / ts->n;
            }
            c->long_seed[c->nseeds++] = mean;
            sum += mean;
        }
        c->promoted = 1;
        c->long_score = c->score = sum / o->promote_seeds;
        for (int t = 0; t < ts->n; t++) c->task_long[t] = tsum[t] / o->promote_seeds;
    }
out:
    c->wall = now_s() - t0;
    c->finished = unix_s();
    return 0;
}

/* ---- candidates ----------------------------------------------------------------------- */

typedef struct hashset { uint64_t *h; long n, cap; } hashset;

static int hs_has(const hashset *s, uint64_t h)
{
    for (long i = 0; i < s->n; i++)
        if (s->h[i] == h) return 1;
    return 0;
}

static int hs_add(hashset *s, uint64_t h)
{
    if (s->n == s->cap) {
        long cap = s->cap ? 2 * s->cap : 256;
        uint64_t *g = realloc(s->h, (size_t)cap * sizeof *g);
        if (!g) return -1;
        s->h = g;
        s->cap = cap;
    }
    s->h[s->n++] = h;
    return 0;
}

/* Candidate `id` from the population pop[0..np) (ranked), new against seen: its parent
 * and mutations drawn from (seed, id). 0, or -1 with msg. */
static int make_candidate(const search_opts *o, const cand *pop, long np, hashset *seen, long id, cand *c, char *msg,
                          size_t len)
{
    unsigned long long r = o->seed * 0x2545f4914f6cdd1dull ^ ((unsigned long long)id << 20 ^ 0xc0ffeeull);
    splitmix(&r);
    char err[1024] = "";
    for (int attempt = 0; attempt < 200; attempt++) {
        const cand *p = &pop[splitmix(&r) % (unsigned long long)np];
        unsigned long long mseed = splitmix(&r);
        char *text = NULL;
        int kind = rc_cell_mutate(p->text, strlen(p->text), p->hidden, mseed, NULL, &text, err, sizeof err);
        if (kind < 0) continue;
        uint64_t h;
        if (rc_cell_canonical_hash(text, strlen(text), &h, err, sizeof err) != 0 || hs_has(seen, h)) {
            free(text);
            continue;
        }
        memset(c, 0, sizeof *c);
        c->id = id;
        c->parent = p->id;
        snprintf(c->kind, sizeof c->kind, "%s", rc_mut_kind_name((unsigned)kind));
        c->hash = h;
        c->text = text;
        c->hidden = p->hidden;
        if (hs_add(seen, h) != 0) {
            free(text);
            c->text = NULL;
            snprintf(msg, len, "out of memory");
            return -1;
        }
        return 0;
    }
    snprintf(msg, len, "candidate %ld: no new cell in 200 draws from the population (last: %.900s)", id,
             err[0] ? err : "a cell evaluated before");
    return -1;
}

/* ---- messages between ranks ----------------------------------------------------------- */

/* An evaluation request: "threshold ref_1 .. ref_SEARCH_MAX_TASKS\n" then the
 * candidate's JSON row (text at the parent's hidden size). */
static char *request_msg(const cand *c, double threshold, const double *refs)
{
    char *j = cand_json(c);
    if (!j) return NULL;
    size_t n = strlen(j);
    char *m = malloc(n + 64 + 32 * SEARCH_MAX_TASKS);
    if (!m) {
        free(j);
        return NULL;
    }
    int k = snprintf(m, 64, "%.17g", threshold);
    for (int t = 0; t < SEARCH_MAX_TASKS; t++) k += snprintf(m + k, 32, " %.17g", refs[t]);
    snprintf(m + k, n + 2, "\n%s", j);
    free(j);
    return m;
}

/* Receives the message dist_iprobe reported. The buffer (NUL-terminated), or NULL with
 * msg; *lost is set when the peer did not deliver it within --rank-timeout. */
static char *recv_alloc(int from, int tag, size_t bytes, int *lost, char *msg, size_t len)
{
    *lost = 0;
    char *buf = malloc(bytes + 1);
    if (!buf) {
        snprintf(msg, len, "out of memory for a message of %zu bytes", bytes);
        return NULL;
    }
    int rc = dist_recv(buf, bytes, from, tag, g_fleet.timeout, msg, len);
    if (rc != 0) {
        *lost = 1;   /* a timeout, or MPI's error on a peer that died mid-message */
        free(buf);
        return NULL;
    }
    buf[bytes] = 0;
    return buf;
}

/* A worker (rank > 0): evaluates what rank 0 sends until it says done (*lost_rank: and
 * that the job lost a rank). 0, or 1 after a message: rank 0 silent for twice
 * --rank-timeout, or a message to or from it failed (rank 0 is gone or hangs, and the
 * caller ends the job). */
static int worker(const search_opts *o, const search_tasks *ts, int *lost_rank)
{
    char msg[1024];
    double heard = now_s();
    for (;;) {
        int from, tag, lost;
        size_t bytes;
        fleet_tick();
        if (!dist_iprobe(&from, &tag, &bytes)) {
            if (now_s() - heard > 2 * o->rank_timeout) {
                fprintf(stderr, "recur search: rank %d: rank 0 silent for %.3g s (twice --rank-timeout): taken as "
                        "gone; this rank stops\n", dist_rank(), now_s() - heard);
                return 1;
            }
            nap();
            continue;
        }
        heard = now_s();
        char *m = recv_alloc(from, tag, bytes, &lost, msg, sizeof msg);
        if (!m) {
            fprintf(stderr, "recur search: rank %d: %s\n", dist_rank(), msg);
            return 1;
        }
        if (tag == TAG_ALIVE) {
            free(m);
            continue;
        }
        if (tag == TAG_DONE) {   /* "lost": a rank is gone, leave without MPI_Finalize (dist_leave) */
            *lost_rank = !strcmp(m, "lost");
            free(m);
            return 0;
        }
        char *e = m;
        double threshold = strtod(e, &e), refs[SEARCH_MAX_TASKS];
        for (int t = 0; t < SEARCH_MAX_TASKS; t++) refs[t] = strtod(e, &e);
        char *nl = strchr(m, '\n');
        cand c;
        if (tag != TAG_EVAL || !nl || cand_parse(nl + 1, &c) != 0) {
            fprintf(stderr, "recur search: rank %d: a request that does not parse (tag %d)\n", dist_rank(), tag);
            free(m);
            return 1;
        }
        free(m);
        evaluate(o, ts, &c, threshold, refs);   /* workers ignore signals: rank 0 ends the job */
        char *j = cand_json(&c);
        cand_free(&c);
        if (!j || dist_post(j, strlen(j), 0, TAG_RESULT, msg, sizeof msg) != 0) {
            fprintf(stderr, "recur search: rank %d: %s\n", dist_rank(), j ? msg : "out of memory");
            free(j);
            return 1;
        }
        free(j);
        heard = now_s();   /* rank 0's notes queued while this rank trained */
    }
}

/* ---- the master: rows, population, files ---------------------------------------------- */

typedef struct state {
    const search_opts *o;
    const search_tasks *ts;
    cand *rows;
    long n, cap;
    long nb;             /* baselines: ids 0..nb-1 */
    double threshold;    /* the best baseline's short score (several tasks: normalised) */
    double refs[SEARCH_MAX_TASKS], refs_long[SEARCH_MAX_TASKS];   /* per task: the best baselines' */
    double t_start;
    long done_run;       /* candidates finished in this run */
    int tty;
} state;

static int rows_add(state *st, cand *c, char *msg, size_t len)
{
    if (rows_append(st->o->out, c, msg, len) != 0) return -1;
    if (st->n == st->cap) {
        long cap = st->cap ? 2 * st->cap : 64;
        cand *g = realloc(st->rows, (size_t)cap * sizeof *g);
        if (!g) {
            snprintf(msg, len, "out of memory");
            return -1;
        }
        st->rows = g;
        st->cap = cap;
    }
    st->rows[st->n++] = *c;
    memset(c, 0, sizeof *c);
    return 0;
}

static const cand *row_by_id(const state *st, long id)
{
    for (long i = 0; i < st->n; i++)
        if (st->rows[i].id == id) return &st->rows[i];
    return NULL;
}

static void print_row(const state *st, const cand *c)
{
    if (st->tty) fprintf(stderr, "\r\033[K");
    printf("[%5ld] %-14.14s parent %5ld  H %4d  params %6lld  short %.4f", c->id, c->kind, c->parent, c->hidden,
           c->params, c->short_score);
    if (c->promoted) printf("  long %.4f", c->long_score);
    printf("  %6.1f s%s%s\n", c->wall, c->error[0] ? "  error: " : "", c->error);
    fflush(stdout);
}

static void progress(const state *st)
{
    if (!st->tty) return;
    const cand *best = NULL;
    for (long i = 0; i < st->n; i++)
        if (!best || cand_rank_cmp(&st->rows[i], best) < 0) best = &st->rows[i];
    double el = now_s() - st->t_start;
    long cands = st->n - st->nb > 0 ? st->n - st->nb : 0;
    char bud[32];
    snprintf(bud, sizeof bud, "/%ld", st->o->budget);
    fprintf(stderr, "\r\033[Ksearch: %ld%s candidates, best %.4f (id %ld), %.1f candidates/min", cands, bud,
            best ? best->score : NAN, best ? best->id : -1L, el > 0 ? 60.0 * (double)st->done_run / el : 0.0);
    fflush(stderr);
}

/* DIR/top/rank-NN-<hash>.cell for the best --top rows (atomically); stale ones removed. */
static void write_top(const state *st)
{
    const search_opts *o = st->o;
    char dir[1200], path[1500], msg[1700];
    snprintf(dir, sizeof dir, "%s/top", o->out);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return;
    cand *s = malloc((size_t)(st->n ? st->n : 1) * sizeof *s);
    if (!s) return;
    memcpy(s, st->rows, (size_t)st->n * sizeof *s);
    qsort(s, (size_t)st->n, sizeof *s, cand_rank_cmp);
    long k = st->n < o->top ? st->n : o->top;
    char (*names)[64] = calloc((size_t)(k ? k : 1), sizeof *names);
    for (long i = 0; names && i < k; i++) {
        snprintf(names[i], sizeof names[i], "rank-%02ld-%016" PRIx64 ".cell", i + 1, s[i].hash);
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t tl = strlen(s[i].text) + 512;
        char *body = malloc(tl);
        if (!body) continue;
        int n = snprintf(body, tl, "# recur search %s: rank %ld, candidate %ld (%s of %ld), score %.4f (%s), hidden %d, "
                         "%lld parameters\n%s", o->out, i + 1, s[i].id, s[i].kind, s[i].parent, s[i].score,
                         s[i].promoted ? "longer evaluation" : "short training", s[i].hidden, s[i].params, s[i].text);
        if (n > 0 && write_atomic(path, body, strlen(body), msg, sizeof msg) != 0)
            fprintf(stderr, "recur search: %s\n", msg);
        free(body);
    }
    DIR *d = names ? opendir(dir) : NULL;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strncmp(e->d_name, "rank-", 5) != 0) continue;
        int keep = 0;
        for (long i = 0; i < k; i++) keep |= !strcmp(e->d_name, names[i]);
        if (!keep) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    if (d) closedir(d);
    free(names);
    free(s);
}

/* DIR/best.dat, best.gp and, with gnuplot, best.png: the best score over candidates. */
static void write_plot(const state *st)
{
    const search_opts *o = st->o;
    char dat[1200], gp[1200], png[1200], msg[2500];
    snprintf(dat, sizeof dat, "%s/best.dat", o->out);
    snprintf(gp, sizeof gp, "%s/best.gp", o->out);
    snprintf(png, sizeof png, "%s/best.png", o->out);
    if (strchr(o->out, '\'')) {
        printf("(no best.png: the folder's name has a quote)\n");
        return;
    }
    FILE *f = fopen(dat, "w");
    if (!f) return;
    double best = -1, base = -1;
    fprintf(f, "# candidate  best score so far  its score\n");
    for (long i = 0; i < st->n; i++) {
        const cand *c = &st->rows[i];
        if (c->parent < 0) {
            if (c->score > base) base = c->score;
            continue;
        }
        if (c->score > best) best = c->score;
        fprintf(f, "%ld %.6f %.6f\n", c->id - st->nb + 1, best, c->score);
    }
    fclose(f);
    if (!(f = fopen(gp, "w"))) return;
    fprintf(f, "set terminal pngcairo size 900,520\nset output '%s'\nset grid\nset key bottom right\n"
               "set xlabel 'candidates evaluated'\nset ylabel '%s'\n"
               "set title 'recur search: best score over candidates'\n"
               "plot '%s' using 1:3 with points pt 7 ps 0.4 lc rgb '#bbbbbb' title 'candidate', "
               "'%s' using 1:2 with steps lw 2 lc rgb '#cc3311' title 'best so far', "
               "%.6f with lines dt 2 lc rgb '#4477aa' title 'best baseline'\n",
            png, st->ts->n > 1 ? "score (mean over tasks of score / the best baseline score)"
            : !strcmp(o->tasks, "chars") ? "score (1 / validation bits per character)"
            : !strcmp(o->tasks, "music") ? "score (1 / validation NLL per frame)" : "score (arith: per-character accuracy)",
            dat, dat, base);
    fclose(f);
    if (best < 0) return;
    if (run_gnuplot(gp, msg, sizeof msg) != 0) printf("(no best.png: %s)\n", msg);
}

/* Posts candidate c to rank r. 0, or -1 with msg (MPI failed on rank r). */
static int send_item(const cand *c, double threshold, const double *refs, int r, char *msg, size_t len)
{
    char *m = request_msg(c, threshold, refs);
    if (!m) {
        snprintf(msg, len, "out of memory");
        return -1;
    }
    int rc = dist_post(m, strlen(m), r, TAG_EVAL, msg, len);
    free(m);
    return rc ? -1 : 0;
}

/* The lowest candidate of state[0..k) still pending (0), or -1. */
static int first_pending(const char *state, int k)
{
    for (int j = 0; j < k; j++)
        if (state[j] == 0) return j;
    return -1;
}

/* Rank r is taken as gone: never sent to again, and the candidate it held (holds[r],
 * or -1) is pending again, for the next free rank. */
static void rank_lost(int r, int *holds, char *state, const cand *c, const char *why)
{
    dist_forget(r);
    int j = holds[r];
    holds[r] = -1;
    if (j >= 0) state[j] = 0;
    fprintf(stderr, "recur search: rank %d %s: taken as gone", r, why);
    if (j >= 0) fprintf(stderr, "; candidate %ld goes to another rank", c[j].id);
    fprintf(stderr, "\n");
}

/* Evaluates c[0..k) (fresh, ids in order) on the ranks: each free worker gets the
 * lowest pending candidate, rank 0 takes one whenever every worker is busy and no
 * result waits (who evaluates what never changes a row: a candidate's draws come from
 * its id). A worker silent for --rank-timeout, or whose message fails, is taken as gone
 * and its candidate is pending again. Then appends the finished rows in id order. 0, 1
 * interrupted, or -1 with msg. */
static int run_batch(state *st, cand *c, int k, double threshold, char *msg, size_t len)
{
    int size = dist_size(), ndone = 0, interrupted = 0, rc = 0;
    char *state = calloc(k > 0 ? (size_t)k : 1, 1);   /* 0 pending, 1 with a worker, 2 done */
    int *holds = malloc(sizeof *holds * (size_t)size);
    double *heard = malloc(sizeof *heard * (size_t)size);
    if (!state || !holds || !heard) {
        free(state);
        free(holds);
        free(heard);
        snprintf(msg, len, "out of memory");
        return -1;
    }
    for (int r = 0; r < size; r++) holds[r] = -1, heard[r] = now_s();
    while (ndone < k && !interrupted && rc == 0) {
        int pending = first_pending(state, k);
        for (int r = 1; r < size && pending >= 0; r++) {   /* free workers get work */
            if (dist_forgotten(r) || holds[r] >= 0) continue;
            char why[512];
            if (send_item(&c[pending], threshold, st->refs, r, why, sizeof why) != 0) {
                char w[600];
                snprintf(w, sizeof w, "(%s)", why);
                rank_lost(r, holds, state, c, w);
                continue;
            }
            holds[r] = pending;
            state[pending] = 1;
            heard[r] = now_s();
            pending = first_pending(state, k);
        }
        int from, tag, lost;
        size_t bytes;
        if (dist_iprobe(&from, &tag, &bytes)) {
            char why[512];
            char *m = recv_alloc(from, tag, bytes, &lost, why, sizeof why);
            if (!m) {
                if (!lost) {
                    snprintf(msg, len, "%s", why);
                    rc = -1;
                } else if (!dist_forgotten(from)) {
                    char w[600];
                    snprintf(w, sizeof w, "(%s)", why);
                    rank_lost(from, holds, state, c, w);
                }
                continue;
            }
            if (dist_forgotten(from) || tag == TAG_ALIVE) {   /* a note, or a late word of a rank taken as gone */
                if (!dist_forgotten(from)) heard[from] = now_s();
                free(m);
                continue;
            }
            heard[from] = now_s();
            cand r;
            int ok = tag == TAG_RESULT && cand_parse(m, &r) == 0;
            free(m);
            int j = holds[from];
            if (!ok || j < 0 || c[j].id != r.id) {
                if (ok) cand_free(&r);
                snprintf(msg, len, "rank %d sent a result nobody asked for", from);
                rc = -1;
                break;
            }
            cand_free(&c[j]);
            c[j] = r;
            state[j] = 2;
            holds[from] = -1;
            ndone++;
            continue;
        }
        for (int r = 1; r < size; r++)   /* silent workers */
            if (!dist_forgotten(r) && holds[r] >= 0 && now_s() - heard[r] > g_fleet.timeout) {
                char w[128];
                snprintf(w, sizeof w, "silent for %.3g s (--rank-timeout)", now_s() - heard[r]);
                rank_lost(r, holds, state, c, w);
            }
        if (pending >= 0 && state[pending] == 0) {   /* rank 0's own share */
            state[pending] = 1;
            if (evaluate(st->o, st->ts, &c[pending], threshold, st->refs)) interrupted = 1;
            else state[pending] = 2, ndone++;
            for (int r = 1; r < size; r++) heard[r] = now_s();   /* their notes queued meanwhile */
            continue;
        }
        if (g_stop) interrupted = 1;
        else {
            fleet_tick();
            nap();
        }
    }
    for (int j = 0; j < k && rc == 0; j++)   /* the references: the baselines so far and of this batch */
        if (state[j] == 2) norm_refs(&c[j], 1, st->refs, st->refs_long);
    for (int j = 0; j < k && rc == 0; j++) {   /* in id order; a row is whole or absent */
        if (state[j] != 2) continue;
        norm_apply(&c[j], st->refs, st->refs_long);
        if (rows_add(st, &c[j], msg, len) != 0) rc = -1;
        else {
            print_row(st, &st->rows[st->n - 1]);
            if (st->rows[st->n - 1].parent >= 0) st->done_run++;
        }
    }
    free(state);
    free(holds);
    free(heard);
    for (long i = 0; i < st->n; i++) norm_apply(&st->rows[i], st->refs, st->refs_long);   /* new baselines */
    progress(st);
    return rc ? -1 : interrupted ? 1 : 0;
}

static int master(state *st, char **seeds, int nseeds, char *msg, size_t len)
{
    const search_opts *o = st->o;
    int rc = 0;
    size_t nbatch = (size_t)(o->batch_cands > nseeds ? o->batch_cands : nseeds);
    cand *batch = calloc(nbatch ? nbatch : 1, sizeof *batch);
    hashset seen = { 0 };
    cand *pop = NULL;
    if (!batch) {
        snprintf(msg, len, "out of memory");
        return -1;
    }
    /* the baselines: ids 0..nb-1, always given the longer evaluation too */
    int k = 0;
    for (int i = 0; i < nseeds; i++) {
        const cand *have = row_by_id(st, i);
        char want[32];
        snprintf(want, sizeof want, "seed:%.26s", seeds[i]);
        if (have) {
            if (strcmp(have->kind, want) != 0) {
                snprintf(msg, len, "%s holds a search whose baseline %d is %s, not %s: use another --out, or the same "
                         "--seed-cells", o->out, i, have->kind, want);
                rc = -1;
                goto out;
            }
            continue;
        }
        char err[1024];
        char *text = seed_text(seeds[i], msg, len);
        long long count;
        int H = text ? arith_hidden_for(o, text, o->params, &count, msg, len) : -1;
        char *pt = H > 0 ? rc_cell_print(text, strlen(text), H, err, sizeof err) : NULL;
        if (H > 0 && !pt) snprintf(msg, len, "seed cell %s: %s", seeds[i], err);
        if (pt && rc_cell_check(pt, strlen(pt), H, err, sizeof err) != 0) {
            snprintf(msg, len, "seed cell %s: %s", seeds[i], err);
            free(pt);
            pt = NULL;
        }
        free(text);
        if (!pt) {
            rc = -1;
            goto out;
        }
        cand *c = &batch[k++];
        memset(c, 0, sizeof *c);
        c->id = i;
        c->parent = -1;
        snprintf(c->kind, sizeof c->kind, "%s", want);
        c->text = pt;
        c->hidden = H;
        if (rc_cell_canonical_hash(pt, strlen(pt), &c->hash, err, sizeof err) != 0) {
            snprintf(msg, len, "seed cell %s: %s", seeds[i], err);
            rc = -1;
            goto out;
        }
    }
    if (k) {
        if (st->n == 0) printf("search %s: evaluating %d baselines\n", o->out, k);
        rc = run_batch(st, batch, k, -INFINITY, msg, len);
        for (int j = 0; j < k; j++) cand_free(&batch[j]);
        if (rc) goto out;
    }
    st->threshold = -INFINITY;
    for (long i = 0; i < st->n; i++)
        if (st->rows[i].parent < 0 && st->rows[i].short_score > st->threshold) st->threshold = st->rows[i].short_score;
    write_top(st);
    /* the candidates: batch b holds ids nb + b*bc .. nb + (b+1)*bc - 1 */
    pop = malloc((size_t)(st->n + 1) * sizeof *pop);
    for (long b = 0;; b++) {
        long first = st->nb + b * o->batch_cands;
        if (first - st->nb >= o->budget) break;
        long last = first + o->batch_cands;
        if (last - st->nb > o->budget) last = st->nb + o->budget;
        int todo = 0;
        for (long id = first; id < last; id++) todo += !row_by_id(st, id);
        if (!todo) continue;
        if (o->time_limit > 0 && now_s() - st->t_start >= o->time_limit) {
            printf("search %s: --time-limit %.0f s reached\n", o->out, o->time_limit);
            break;
        }
        /* the population and the hashes seen: the rows before this batch */
        cand *g = realloc(pop, (size_t)(st->n + 1) * sizeof *pop);
        if (!g) {
            snprintf(msg, len, "out of memory");
            rc = -1;
            goto out;
        }
        pop = g;
        long np = 0;
        seen.n = 0;
        for (long i = 0; i < st->n; i++) {
            if (st->rows[i].id >= first) continue;
            pop[np++] = st->rows[i];
            if (hs_add(&seen, st->rows[i].hash) != 0) {
                snprintf(msg, len, "out of memory");
                rc = -1;
                goto out;
            }
        }
        qsort(pop, (size_t)np, sizeof *pop, cand_rank_cmp);
        if (np > o->population) np = o->population;
        k = 0;
        for (long id = first; id < last; id++) {
            cand c;
            if (make_candidate(o, pop, np, &seen, id, &c, msg, len) != 0) {
                rc = -1;
                break;
            }
            if (row_by_id(st, id)) cand_free(&c);   /* finished before a kill: made again only for the draws */
            else batch[k++] = c;
        }
        if (rc == 0) rc = run_batch(st, batch, k, st->threshold, msg, len);
        for (int j = 0; j < k; j++) cand_free(&batch[j]);
        if (rc) goto out;
        write_top(st);
    }
out:
    if (st->n) write_top(st);
    if (rc >= 0 && st->n) write_plot(st);
    free(pop);
    free(seen.h);
    free(batch);
    return rc;
}

/* 1 when dir holds rows of a search but no search.conf (msg says so and what to do):
 * without it a resume cannot know the options the rows were made with, and a new
 * search there would mix its rows with theirs. A file cut before its first row is no
 * row. */
static int rows_without_conf(const char *dir, char *msg, size_t len)
{
    static const char *const files[] = { "candidates.jsonl", "candidates.csv" };
    for (int i = 0; i < 2; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        long lines = 0;
        for (int ch; (ch = getc(f)) != EOF;) lines += ch == '\n';
        fclose(f);
        if (lines > (i == 1)) {   /* candidates.csv: a header line, then the rows */
            snprintf(msg, len, "%.400s holds the rows of a search (%s) but no search.conf, the options they were "
                     "made with: put back %.400s/search.conf to resume it, or give another --out for a new search",
                     dir, files[i], dir);
            return 1;
        }
    }
    return 0;
}

int cmd_search(int argc, char **argv)
{
    static search_opts o, stored;
    char msg[2048] = "", status[1024] = "";
    int set[NOPT] = { 0 };
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            search_usage(stdout);
            return 0;
        }
    defaults(&o);
    if (parse_args(&o, set, argc, argv, status, sizeof status, msg, sizeof msg) != 0) {
        fprintf(stderr, "recur search: %s\n(recur search --help lists the options)\n", msg);
        return 2;
    }
    if (status[0]) return search_status(status, set[opt_find("top", 3) - OPTS] ? o.top : 20);
    if (!o.out[0]) {
        fprintf(stderr, "recur search: --out DIR is required (the search's folder)\n");
        return 2;
    }
    /* a resume: the protocol options are the stored ones */
    char conf[1200];
    snprintf(conf, sizeof conf, "%s/search.conf", o.out);
    int resume = access(conf, F_OK) == 0;
    if (!resume && rows_without_conf(o.out, msg, sizeof msg)) {
        fprintf(stderr, "recur search: %s\n", msg);
        return 1;
    }
    if (resume) {
        defaults(&stored);
        if (conf_read(conf, &stored, msg, sizeof msg) != 0) {
            fprintf(stderr, "recur search: %s\n", msg);
            return 1;
        }
        for (int i = 0; i < NOPT; i++) {
            if (!OPTS[i].protocol) continue;
            char a[1100], b[1100];
            opt_fmt(&o, &OPTS[i], a, sizeof a);
            opt_fmt(&stored, &OPTS[i], b, sizeof b);
            if (set[i] && strcmp(a, b) != 0) {
                fprintf(stderr, "recur search: --%s %s differs from the search in %s (%s): a resume keeps the "
                        "search's protocol; use another --out for a new search\n", OPTS[i].name, a, o.out, b);
                return 2;
            }
            memcpy((char *)&o + OPTS[i].off, (char *)&stored + OPTS[i].off, OPTS[i].size);
        }
    }
    if (check_opts(&o, msg, sizeof msg) != 0) {
        fprintf(stderr, "recur search: %s\n", msg);
        return 2;
    }
    /* the data of every task, before any training (a folder of text: <out>/corpus.txt) */
    static search_tasks ts;
    if (tasks_open(&o, &ts, msg, sizeof msg) != 0) {
        fprintf(stderr, "recur search: %s\n", msg);
        return 2;
    }
    /* the seed cells: known names or readable files, before anything is written */
    char list[sizeof o.seed_cells];
    snprintf(list, sizeof list, "%s", o.seed_cells);
    char *seeds[64];
    int nseeds = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (nseeds == 64) {
            fprintf(stderr, "recur search: --seed-cells: at most 64 cells\n");
            tasks_free(&ts);
            return 2;
        }
        for (int j = 0; j < nseeds; j++)
            if (!strcmp(seeds[j], tok)) {
                fprintf(stderr, "recur search: --seed-cells: %s twice\n", tok);
                tasks_free(&ts);
                return 2;
            }
        seeds[nseeds++] = tok;
        char *t = seed_text(tok, msg, sizeof msg);
        long long count;
        int H = t ? arith_hidden_for(&o, t, o.params, &count, msg, sizeof msg) : -1;
        free(t);
        if (H < 0) {
            fprintf(stderr, "recur search: seed cell %s: %s\n", tok, msg);
            tasks_free(&ts);
            return 2;
        }
    }
    if (!nseeds) {
        fprintf(stderr, "recur search: --seed-cells: give at least one cell\n");
        tasks_free(&ts);
        return 2;
    }
    if (dist_init(NULL, NULL, msg, sizeof msg) != 0) {
        fprintf(stderr, "recur search: %s\n", msg);
        tasks_free(&ts);
        return 1;
    }
    int quiet = 0;
    if (dist_size() > 1 && ranks_agree(&o, &ts, &quiet, msg, sizeof msg) != 0) {
        if (!quiet) fprintf(stderr, "recur search: process %d of %d: %s\n", dist_rank(), dist_size(), msg);
        tasks_free(&ts);
        dist_finalize();
        return 2;
    }
    if (o.threads > 0) rc_set_num_threads(o.threads);
    int rank = dist_rank();
    fleet_init(&o);
    if (rank != 0) {
        signal(SIGINT, SIG_IGN);   /* rank 0 decides; it ends the job */
        signal(SIGTERM, SIG_IGN);
        int lost_rank = 0, wrc = worker(&o, &ts, &lost_rank);
        tasks_free(&ts);
        if (wrc) dist_abort(1);   /* rank 0 is gone or hangs: the job ends (failed); the same command resumes */
        dist_leave(o.rank_timeout, !lost_rank);
        return 0;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    state st = { .o = &o, .ts = &ts, .nb = nseeds, .t_start = now_s(), .tty = o.progress && isatty(2) };
    for (int t = 0; t < SEARCH_MAX_TASKS; t++) st.refs[t] = st.refs_long[t] = NAN;
    int rc = 0;
    if (mkdir(o.out, 0755) != 0 && errno != EEXIST) {
        snprintf(msg, sizeof msg, "%s: %s", o.out, strerror(errno));
        rc = -1;
    }
    int lock_fd = -1;   /* one search per folder: a second one is refused, not interleaved */
    if (rc == 0) {
        char lp[1200];
        snprintf(lp, sizeof lp, "%s/lock", o.out);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        lock_fd = open(lp, O_RDWR | O_CREAT, 0644);
        if (lock_fd < 0) {
            snprintf(msg, sizeof msg, "%s: %s", lp, strerror(errno));
            rc = -1;
        } else if (fcntl(lock_fd, F_SETLK, &fl) != 0) {
            snprintf(msg, sizeof msg, "another recur search is running in %.900s (it holds its lock file)", o.out);
            rc = -1;
        }
    }
    if (rc == 0 && rows_load(o.out, &st.rows, &st.n, 1, msg, sizeof msg) != 0) rc = -1;   /* before any write */
    if (rc == 0 && conf_write(conf, &o, msg, sizeof msg) != 0) rc = -1;
    st.cap = st.n;
    norm_refs(st.rows, st.n, st.refs, st.refs_long);
    for (long i = 0; i < st.n; i++) norm_apply(&st.rows[i], st.refs, st.refs_long);
    if (rc == 0 && rows_repair(o.out, st.rows, st.n, msg, sizeof msg) != 0) rc = -1;
    if (rc == 0 && resume) printf("search %s: resuming after %ld finished rows\n", o.out, st.n);
    if (rc == 0 && dist_size() > 1 && !dist_survives_death())
        printf("search %s: %d ranks; should one die, mpirun ends the job (the same command resumes); with Open MPI, "
               "mpirun --mca orte_enable_recovery 1 lets the search go on without it\n", o.out, dist_size());
    if (rc == 0) rc = master(&st, seeds, nseeds, msg, sizeof msg);
    if (st.tty) fprintf(stderr, "\n");
    int gone = 0;
    for (int r = 1; r < dist_size(); r++) gone += dist_forgotten(r);
    for (int r = 1; r < dist_size() && rc == 0; r++)   /* also to a rank taken as gone */
        dist_post(gone ? "lost" : "", gone ? 4 : 0, r, TAG_DONE, msg, sizeof msg);
    for (long i = 0; i < st.n; i++) cand_free(&st.rows[i]);
    free(st.rows);
    tasks_free(&ts);
    if (lock_fd >= 0) close(lock_fd);
    if (rc == 1) {
        fprintf(stderr, "recur search: interrupted; every finished candidate is in %s (run the same command to "
                "resume)\n", o.out);
        if (dist_size() > 1) dist_abort(130);
        return 130;
    }
    if (rc < 0) {
        fprintf(stderr, "recur search: %s\n", msg);
        if (dist_size() > 1) dist_abort(1);
        return 1;
    }
    printf("search %s: done (recur search --status %s for the table)\n", o.out, o.out);
    if (gone)   /* MPI_Finalize would wait for them; a hung one may keep mpirun waiting */
        printf("search %s: %d rank%s taken as gone, so this job ends without MPI_Finalize (Open MPI may then say "
               "a process ended without it); should mpirun not return, a rank still hangs: the search is complete, "
               "stopping mpirun loses nothing\n", o.out, gone, gone > 1 ? "s" : "");
    dist_leave(o.rank_timeout, !gone);   /* MPI_Finalize would wait for a dead rank */
    return 0;
}
