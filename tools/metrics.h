/* The metrics log of a run: CSV or JSON lines, headed by a record of the run. */
#ifndef RC_TOOLS_METRICS_H
#define RC_TOOLS_METRICS_H

#include <stdio.h>
#include "config.h"

typedef struct metrics {
    FILE *f;
    int jsonl;
    int ngroups;
    char **group;            /* the parameter-group names (copies) */
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
    const double *group_norm; /* per group (ngroups of them), or NULL */
    double tokens_per_s, elapsed_s;
} metrics_row;

/* Opens (append when `append`) path and, when new, writes the run record and header.
 * group: the ngroups parameter-group names (e.g. "embed", "l0", "out"), copied.
 * 0 or -1 with msg. */
int metrics_open(metrics *mx, const char *path, int jsonl, int append, const config *c, int ngroups,
                 const char *const *group, char *msg, size_t len);
void metrics_write(metrics *mx, const metrics_row *r);
/* Closes the file and frees the names. */
void metrics_close(metrics *mx);

#endif
