/* recur search (tools/cmd_search.c): an evolutionary search over cells written in the
 * cell language (Jozefowicz, Zaremba & Sutskever 2015). Shared between the search loop
 * (cmd_search.c), the arithmetic task (search_arith.c) and the result files
 * (search_io.c). */
#ifndef RC_TOOLS_SEARCH_H
#define RC_TOOLS_SEARCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SEARCH_MAX_LRS 8
#define SEARCH_MAX_SEEDS 16
#define SEARCH_MAX_TASKS 3   /* arith, chars, music: each at most once */

typedef struct search_opts {
    char out[1024];
    char tasks[64];
    char task_data[2048];     /* chars=PATH,music=PATH */
    char seed_cells[1024];
    long budget;              /* candidates after the baselines (0: the seed cells only) */
    double time_limit;        /* seconds of this run; 0: none */
    long params;              /* each candidate's hidden size matches this parameter count */
    long steps;               /* updates of the short training, per learning rate */
    char lrs[256];
    double lr[SEARCH_MAX_LRS];
    int nlr;
    long promote_steps;       /* updates of the longer evaluation */
    int promote_seeds;        /* seeds of the longer evaluation */
    int population;           /* the best K are the parents */
    int batch_cands;          /* candidates made from one population (and farmed out together) */
    int batch, test, distract, seq;
    unsigned long long seed;
    int threads, top, progress;
    double rank_timeout;      /* mpirun: a rank silent this long (seconds) is taken as gone */
    /* not options: the model shape of the first task, which sizes the hidden layer
     * (vocab > 0: an embedding H wide and a softmax head of vocab; else in -> out) */
    int shape_vocab, shape_in, shape_out;
} search_opts;

/* One evaluated cell: a row of candidates.jsonl / candidates.csv. */
typedef struct cand {
    long id, parent;          /* parent -1: a seed cell (baseline) */
    char kind[32];            /* the mutation ("gate-add", ...) or "seed:<name>" */
    uint64_t hash;            /* rc_cell_canonical_hash */
    char *text;               /* the cell text at the evaluated hidden size (malloc'd) */
    int hidden;
    long long params;         /* of the whole model: embedding, cell, softmax head */
    double lr_score[SEARCH_MAX_LRS];
    int nlr;
    double best_lr, short_score;
    int promoted;
    double long_seed[SEARCH_MAX_SEEDS];
    int nseeds;
    double long_score, score; /* score: long_score when promoted, else short_score */
    double wall, finished;    /* seconds of evaluation; unix time it finished */
    char error[256];          /* "" or why it scored 0 */
    /* per task (in the order of `tasks`), at the best learning rate: the short score
     * and the mean over the seeds of the longer evaluation */
    char tasks[64];
    int ntask;
    double task_short[SEARCH_MAX_TASKS], task_long[SEARCH_MAX_TASKS];
} cand;

/* Called by a task's training before every update: nonzero stops it (the run returns
 * -1). recur search's poll also says "alive" to the other ranks there (cmd_search.c). */
typedef int (*search_poll)(void);

/* ---- the arithmetic task (search_arith.c) ---- */
typedef struct arith_set arith_set;
/* The fixed test set of the search (from o->seed); NULL when out of memory. */
arith_set *arith_new(const search_opts *o);
void arith_free(arith_set *a);
/* The model shape of the arithmetic task (see search_opts.shape_*). */
void arith_shape(int *vocab, int *in, int *out);
/* The model's parameter count of a cell text at hidden size H for the shape in o
 * (embedding vocab x H, cell at input H, head H x vocab + vocab; or cell at input in,
 * head H x out + out); -1 with msg. */
long long arith_params(const search_opts *o, const char *text, int H, char *msg, size_t len);
/* The hidden size whose model parameter count is nearest to target (the smaller on a
 * tie); -1 with msg. */
int arith_hidden_for(const search_opts *o, const char *text, long target, long long *count, char *msg, size_t len);
/* Trains the cell (text at hidden H) for `steps` updates at lr with seed index s and
 * returns the teacher-forced per-character accuracy of the answers on the test set;
 * -1 when poll said stop (interrupted), NAN with msg on an error. */
double arith_run(const search_opts *o, const arith_set *a, const char *text, int H, double lr, long steps, int s,
                 search_poll poll, char *msg, size_t len);

/* ---- the data tasks: chars and music (search_data.c) ---- */
typedef struct data_task data_task;
/* Loads the data of task kind ("chars" or "music") from path, checked enough that a
 * training can start (a training and a validation part). NULL with msg. */
data_task *data_task_load(const search_opts *o, const char *kind, const char *path, char *msg, size_t len);
void data_task_free(data_task *d);
/* The task's model shape (see search_opts.shape_*). */
void data_task_shape(const data_task *d, int *vocab, int *in, int *out);
/* The task's data as loaded, as "name\tvalue" lines to f (sizes and digests; each name
 * starts with prefix), for the ranks under mpirun to compare (run_agree.h). */
void data_task_describe(const data_task *d, const char *prefix, FILE *f);
/* Trains the cell at hidden H for `steps` updates at lr, seed index s; returns 1 / the
 * validation bpc (chars) or 1 / the validation NLL per frame (music); -1 when poll said
 * stop, NAN with msg on an error. */
double data_task_run(const search_opts *o, data_task *d, const char *text, int H, double lr, long steps, int s,
                     search_poll poll, char *msg, size_t len);

/* ---- the result files (search_io.c) ---- */
/* The normalisation of several tasks: refs_short[t] / refs_long[t] become the best
 * baseline's short / long score on task t over rows[0..n) (kept when larger). */
void norm_refs(const cand *rows, long n, double *refs_short, double *refs_long);
/* With two tasks or more: c's short_score, long_score and score become the mean over
 * tasks of its task score divided by the reference (NAN while a reference is unknown).
 * One task: nothing changes (the score is the task's own). */
void norm_apply(cand *c, const double *refs_short, const double *refs_long);
/* norm_refs over rows[0..n), then norm_apply to each. */
void norm_rows(cand *rows, long n);
/* One JSON line (no newline) for c; malloc'd, NULL when out of memory. */
char *cand_json(const cand *c);
/* Parses a line cand_json wrote; 0, or -1 (not a complete row). */
int cand_parse(const char *line, cand *c);
/* One CSV line (no newline); malloc'd. The header: */
extern const char CAND_CSV_HEADER[];
char *cand_csv(const cand *c);
void cand_free(cand *c);
/* Reads <dir>/candidates.jsonl: every row, sorted by id (a row twice: the first). A
 * line cut short by a kill (the last, without its newline) is not a row. A complete
 * line that is not one intact row (two half lines spliced, a field missing, a hash
 * that is not its text's canonical hash) is refused with refuse_bad (-1, msg naming
 * the file, the line and what to do), else skipped with a warning on stderr. *n rows in
 * *out (malloc'd). 0, or -1 with msg. A missing file is 0 rows. */
int rows_load(const char *dir, cand **out, long *n, int refuse_bad, char *msg, size_t len);
/* Appends c to candidates.jsonl and candidates.csv, each line written whole and
 * fsynced. 0, or -1 with msg. */
int rows_append(const char *dir, const cand *c, char *msg, size_t len);
/* Rewrites candidates.csv from rows (atomically) and cuts a partial last line off
 * candidates.jsonl, so that both hold exactly the complete rows. 0, or -1 with msg. */
int rows_repair(const char *dir, const cand *rows, long n, char *msg, size_t len);
/* Writes path atomically (a temporary file, fsync, rename). 0, or -1 with msg. */
int write_atomic(const char *path, const char *data, size_t n, char *msg, size_t len);
/* The score of task `name` of c (long when promoted); with one task, c->score; NAN
 * when c has no such task. */
double cand_task_score(const cand *c, const char *name);
/* Order of ranking: higher score first, then lower id. */
int cand_rank_cmp(const void *a, const void *b);
/* recur search --status DIR: the summary table from the files. Exit status. */
int search_status(const char *dir, int top);

#endif
