/* What the processes of a run under mpirun must agree on before they work together
 * (dist_agree compares each rank's description with rank 0's): descriptions as
 * "name\tvalue" lines, so that a difference is named by its line.
 *
 * recur train compares every option except these, which only say how a process runs or
 * what rank 0 shows, never what is trained:
 *   threads      each process's share of its machine (the sums do not depend on it)
 *   progress     rank 0's live line
 *   metrics      the format of rank 0's log
 *   sample, temperature   rank 0's printed samples (never fed back)
 *   out          rank 0 alone writes there; what a process reads from it (the checkpoint
 *                of --resume, a folder's corpus.txt) is compared by digest instead
 *   data, valid, test     paths: the data as loaded is compared by digest, so a copy under
 *                another path on another host is the same data (whether --data is a
 *                folder is compared: the processes then join it in turn)
 * and then the data as loaded and the model: the vocabularies, the training and
 * validation parts (sizes and 64-bit FNV-1a digests of their bytes), the cell's
 * definition, every parameter's name and shape, and on --resume the checkpoint's bytes. */
#ifndef RC_TOOLS_RUN_AGREE_H
#define RC_TOOLS_RUN_AGREE_H

#include <stdint.h>
#include <stdio.h>
#include "task.h"

/* FNV-1a 64 of p[0..n) continued from h (start: AGREE_FNV_START). */
#define AGREE_FNV_START 1469598103934665603ull
uint64_t agree_fnv(uint64_t h, const void *p, size_t n);
/* The options of a recur train run that every process must share (all but the exempt
 * ones above), as "--name\tvalue" lines. Malloc'ed, or NULL with msg. */
char *agree_train_options(const config *c, char *msg, size_t len);
/* The task's data as loaded, as lines to f: the vocabularies, the training and validation
 * parts, each with its size and digest; `prefix` starts every name (e.g. "chars: "). */
void agree_data_lines(const task *t, const char *prefix, FILE *f);
/* The data and model of a recur train run after task_make_model: agree_data_lines, the
 * cell's definition (a .cell file's or the checkpoint's text, by digest), the parameters'
 * names and shapes, and the checkpoint at `ckpt` (a --resume; NULL: none) by size and
 * digest. Malloc'ed, or NULL with msg (a file that cannot be read, memory). */
char *agree_train_model(const task *t, const char *ckpt, char *msg, size_t len);

#endif
