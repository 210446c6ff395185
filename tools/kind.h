/* Data kinds of recur train, eval and sample: one descriptor per kind, one file each
 * (kind_<name>.c), listed once in kinds.c, as ops are one row each in ops/op_list.def.
 * A descriptor says how the kind's data is loaded, what the model needs from it, and
 * how its metric is computed; task.c does the rest the same way for every kind. */
#ifndef RC_TOOLS_KIND_H
#define RC_TOOLS_KIND_H

#include <stddef.h>
#include "recur.h"

struct task;

/* What an evaluation adds up for a kind's metric. */
typedef struct kind_stats {
    double sum, count;      /* the loss summed over targets, and the targets */
    double correct;         /* labelling kinds: correct argmax predictions */
    double edits, ref;      /* transcription kinds: character edits against the references, and their characters */
    double word_edits, word_ref;   /* the same in words */
} kind_stats;

enum {
    KIND_LM = 1u << 0,      /* a language model: B streams of one token sequence, the state
                               carried across batches, samples after epochs */
    KIND_FOLDER = 1u << 1,  /* --data may be a folder of text files, joined into <out>/corpus.txt */
    KIND_LABELS = 1u << 2,  /* targets are labels (t->labels): accuracy of argmax predictions */
    KIND_DIR = 1u << 3,     /* --data is a folder of samples (or of train/, valid/, test/ folders) */
    KIND_CTC = 1u << 4      /* targets are label strings under a CTC head (transcribe.h): recur eval
                               --beam decodes them, recur align aligns them; t->names holds the samples' files */
};

typedef struct data_kind {
    const char *name;     /* the --data-kind value */
    const char *metric;   /* its metric's name in logs: bpc, ppl, nll, mse, acc */
    const char *help;     /* one line for --help and error messages */
    unsigned flags;       /* KIND_* */
    /* Loads `path` (a file, or the joined folder) and the held-out files of t->cfg into
     * t (t->text or t->seq, and t->voc / t->labels). 0, or -1 with err. */
    int (*load)(struct task *t, const char *path, char *err, size_t len);
    /* Sets what the model needs from the data in o (sizes, head, last_step_only), after
     * the options common to all kinds. 0, or -1 with msg. */
    int (*model)(const struct task *t, rc_model_opts *o, char *msg, size_t len);
    /* After each forward of an evaluation: adds this batch's part of the metric to s (the
     * loss sum and count are added by the caller). NULL: the loss is all it needs. */
    int (*eval_batch)(struct task *t, const rc_batch *b, kind_stats *s, char *msg, size_t len);
    /* The metric of a split from what was added up (NaN when it cannot be had, e.g. a
     * training row's accuracy, which no evaluation counted). */
    double (*metric_of)(const kind_stats *s);
    /* KIND_CTC kinds: what the frames of a sample are, for recur align ("points of the trajectory"). */
    const char *frame;
} data_kind;

/* The kind named `name`, or NULL. */
const data_kind *kind_find(const char *name);
/* "chars, words, ..." : every kind's name, for messages. */
const char *kind_names(void);
/* The i-th kind (0-based), or NULL past the last: for --help and docs. */
const data_kind *kind_at(int i);

/* Shared by several kinds (task.c): floor(n * f) rows for a fraction f in [0, 1). */
size_t kind_frac_rows(size_t n, double f);
/* A configured path, or NULL when empty. */
const char *kind_opt_path(const char *p);

#endif
