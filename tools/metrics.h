/* The metrics log of a run: CSV or JSON lines, headed by a record of the run. */
#ifndef RC_TOOLS_METRICS_H
#define RC_TOOLS_METRICS_H

#include <stdio.h>
#include "config.h"

#define METRICS_MAX_GROUPS 32

typedef struct metrics {
    FILE *f;
    int jsonl;
    int ngroups;
    char group[METRICS_MAX_GROUPS][32];
} metrics;

/* One row: kind is "train", "valid" or "test". */
typedef struct metrics_row {
    const char *kind;
    long step;
    int epoch;
    double loss;             /* mean loss per target (nats) */
    const char *metric_name; /* "ppl", "bpc", "nll", "mse", "acc" */
    double metric;
    double lr, grad_norm;
    const double *group_norm; /* per group, or NULL */
    double tokens_per_s, elapsed_s;
} metrics_row;

/* Opens (append when `append`) path and, when new, writes the run record and header.
 * groups: the parameter-group names (e.g. "embed", "l0", "out"). 0 or -1 with msg. */
int metrics_open(metrics *mx, const char *path, int jsonl, int append, const config *c, int ngroups,
                 char group[][32], char *msg, size_t len);
void metrics_write(metrics *mx, const metrics_row *r);
void metrics_close(metrics *mx);

#endif
