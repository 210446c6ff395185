/* Data-parallel recur train (several processes under mpirun, tools/dist.h): each rank
 * takes a contiguous share of every batch, the gradients are summed in a fixed order
 * with the global loss normalisation, and every rank takes the same optimiser step.
 *
 * Shares: rows [B*r/N, B*(r+1)/N) of a batch of B rows for rank r of N (uneven when N
 * does not divide B: they differ by at most one row). A language model's rows are its
 * streams, and each rank carries the state of its own streams; rank 0 gathers the
 * state of all streams before it validates or writes a checkpoint, so a checkpoint is
 * the same as one process's and resumes under any number of processes. A sequence
 * set's last batch may hold fewer sequences than ranks: a rank without one runs a
 * stand-in row and adds nothing. */
#ifndef RC_TOOLS_TRAIN_DIST_H
#define RC_TOOLS_TRAIN_DIST_H

#include <stdint.h>
#include "task.h"

typedef struct dpar {
    int rank, size;
    int B;                 /* the training batch (rows of a full batch) */
    int j0, nb, empty;     /* this rank's share of the last batch; empty: it had none */
    double norm;           /* the loss normaliser of that share: valid targets (steps) or rows (sequences) */
    /* the share's batch */
    int32_t *tok, *tgt, *len;
    float *x, *y;
    size_t cap_tok, cap_tgt, cap_len, cap_x, cap_y;
    /* the gradients of all parameters in parameter order, summed over ranks */
    int np;
    size_t *psize;
    float *flat;
    size_t nflat;
    double *stats;         /* [DP_STATS + size] */
    /* carried state: [L*S] slots of B rows each (language models) */
    int nslot;
    float **full;
    float *zero;           /* B rows of the widest state, zeros */
    size_t *counts;        /* [size] bytes per rank in a gather */
    int gathered;          /* rank 0 holds every stream's state in the model */
} dpar;

/* The reduced numbers of an update: loss sum, valid targets, the loss normaliser, the
 * stop requests (signals) and the time-limit flags; then one failure flag per rank. */
enum { DP_SUM, DP_COUNT, DP_NORM, DP_STOP, DP_TIME, DP_STATS };

/* Sets up for the task's model (after task_make_model): 0, or -1 with msg (the batch
 * has fewer rows than there are processes, memory). */
int dp_init(dpar *d, task *t, char *msg, size_t len);
void dp_free(dpar *d);
/* Rows [*j0, *j0 + *nb) of a batch of B rows for rank r of n. */
void dp_share(int B, int r, int n, int *j0, int *nb);
/* This rank's share of `full` into *out (valid until the next call); d->empty when it
 * has no row (then *out is the first row, whose gradient is not used). 0 or -1. */
int dp_shard(dpar *d, const task *t, const rc_batch *full, rc_batch *out, char *msg, size_t len);
/* After a forward: the normaliser of the share (d->norm) from the model's options. */
void dp_after_forward(dpar *d, const task *t);
/* Every rank's gradients, scaled by norm / total (total: the sum of the ranks'
 * normalisers), summed over ranks in a fixed order and written back into the model's
 * gradient buffers (where rc_optim_step reads them). 0, or -1 with msg. */
int dp_reduce_grads(dpar *d, task *t, double total, char *msg, size_t len);
/* Carried state (language models; nothing otherwise). Collective: rank 0 receives the
 * state of every stream into its model (B rows). */
int dp_gather_state(dpar *d, task *t, char *msg, size_t len);
/* Rank 0, after dp_gather_state: back to its own streams' state. */
void dp_restore_state(dpar *d, task *t);
/* After a checkpoint restored every stream's state (or none) into the model: keep this
 * rank's streams (zeros when the stored state is not of B rows). 0 or -1. */
int dp_take_state(dpar *d, task *t, char *msg, size_t len);
/* Collective, after a step of the start that may fail on some ranks only (ok: this
 * rank's outcome; desc: its description of the run, or NULL for none; run_agree.h):
 * whether every rank succeeded and describes rank 0's run. 1 on every rank to go on;
 * else 0 on every rank with msg, and *quiet set on all but the rank whose message tells
 * what happened (the first that failed or differs; rank 0 for a failure they share). */
int dp_start_agreed(int ok, const char *desc, int *quiet, char *msg, size_t len);
/* Collective: 0 when every rank's weights are bitwise the same as rank 0's, -1 with msg. */
int dp_check_weights(dpar *d, task *t, char *msg, size_t len);

#endif
