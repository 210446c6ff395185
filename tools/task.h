/* A task: the data of a run (by kind), the model made for it, and batches of it.
 * Shared by recur train, eval and sample. */
#ifndef RC_TOOLS_TASK_H
#define RC_TOOLS_TASK_H

#include "config.h"
#include "data.h"
#include "kind.h"
#include "recur.h"

typedef struct task {
    config cfg;
    const data_kind *kind;   /* kind.h: its loader, model needs and metric */
    corpus text;          /* chars, words */
    seqdata seq;          /* music, classify, tags; csv windows in seq.set */
    vocab *voc;           /* token vocabulary (text kinds) or NULL */
    vocab *labels;        /* classify / tags labels or NULL */
    rc_model *model;
    rc_cell *cell;
    int is_lm;            /* kind->flags & KIND_LM: carried state, B-stream batches */
    char *cell_text;      /* a cell-language definition restored from a checkpoint, or NULL */
    char **names[3];      /* KIND_CTC: each split's samples' files (names[k][i] is seq.set[k]'s sample i), or NULL */
    int nnames[3];        /* entries of names[k] (freed by task_free) */
    rc_ctc_beam *beam;    /* KIND_CTC evaluation: a beam decoder (not owned; recur eval --beam), NULL: greedy */
} task;

/* Refuses (-1 with msg) an output folder (--out) that is the data folder or inside it,
 * by real paths (--out need not exist yet); 0 otherwise, also when the data is a file. */
int task_check_out(const config *cfg, char *msg, size_t len);
/* Loads the data named by cfg (data, valid, test, data-kind); a folder of text is
 * joined into <out>/corpus.txt. 0 or -1 with msg. */
int task_load(task *t, const config *cfg, char *msg, size_t len);
/* For the kinds' model hooks (kind.h): a language model's options (embedding of the
 * vocabulary, a softmax over it, never bidirectional), and a labelling model's (one
 * label per sequence when last_step, else per token). 0 or -1 with msg. */
int task_lm_model(const task *t, rc_model_opts *o, char *msg, size_t len);
int task_label_model(const task *t, rc_model_opts *o, int last_step, char *msg, size_t len);
/* Makes the cell and model for the loaded data. 0 or -1 with msg. */
int task_make_model(task *t, char *msg, size_t len);
/* Frees everything. */
void task_free(task *t);
/* The text that identifies the architecture (checked when a checkpoint is loaded). */
char *task_arch(const task *t);
/* The metric name of the task and its value from what an evaluation added up. */
const char *task_metric_name(const task *t);
double task_metric(const task *t, const kind_stats *s);
/* The labelling kinds' eval_batch (kind.h): correct argmax predictions of the last forward. */
int task_count_correct(task *t, const rc_batch *b, kind_stats *s, char *msg, size_t len);

/* Batches of one split. */
typedef struct feeder {
    task *t;
    int split;
    lm_stream lm;
    batcher bt;
    int32_t *tok, *tgt;
    rc_batch cur;
} feeder;

/* A feeder over split (DATA_TRAIN/VALID/TEST); shuffle for training. 0 or -1. */
int feeder_init(feeder *f, task *t, int split, int shuffle, char *msg, size_t len);
void feeder_free(feeder *f);
/* Batches per epoch. */
long feeder_count(const feeder *f);
/* Prepares epoch e (0-based): the order of a shuffled set. */
int feeder_epoch(feeder *f, int epoch, char *msg, size_t len);
/* Batch j of the current epoch into *b (valid until the next call). */
int feeder_get(feeder *f, long j, rc_batch *b, char *msg, size_t len);
/* Targets (tokens or steps) in a batch: the throughput unit. */
long batch_targets(const task *t, const rc_batch *b);
/* Evaluates the model on a split (eval mode, fresh state): loss per target, metric, and
 * (st may be NULL) what was added up. */
int task_evaluate(task *t, int split, double *loss, double *metric, kind_stats *st, char *msg, size_t len);

#endif
