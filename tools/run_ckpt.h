/* Checkpoints of a run: the model, the optimiser, the data position, the carried
 * state and the configuration, in the container of train/ckpt.h. */
#ifndef RC_TOOLS_RUN_CKPT_H
#define RC_TOOLS_RUN_CKPT_H

#include "task.h"

typedef struct run_progress {
    uint64_t step;        /* updates done */
    uint64_t epoch;       /* 0-based epoch in progress */
    uint64_t batch;       /* next batch of that epoch */
    uint64_t runs;        /* dropout counter */
    double best;          /* best validation loss (inf when none) */
    uint64_t bad;         /* validations since the best */
    double elapsed;       /* seconds trained */
} run_progress;

/* Writes path atomically. 0 or -1 with msg. */
int run_save(const char *path, task *t, rc_optim *o, feeder *train, const run_progress *p, char *msg, size_t len);
/* Reads the configuration stored in a checkpoint (to rebuild its task). 0 or -1. */
int run_read_config(const char *path, config *c, char *msg, size_t len);
/* The cell-language text stored in a checkpoint (malloc'ed), or NULL when the cell
 * is a built-in one or the file cannot be read. */
char *run_read_cell_text(const char *path);
/* Reads the token vocabulary stored in a checkpoint (text models). 0 or -1 with msg. */
int run_read_vocab(const char *path, vocab *v, char *msg, size_t len);
/* Restores a checkpoint into a task whose data and model are made (and an optimiser
 * and train feeder when resuming; both may be NULL). Everything is checked before
 * anything changes. 0 or -1 with msg. */
int run_load(const char *path, task *t, rc_optim *o, feeder *train, run_progress *p, char *msg, size_t len);

#endif
