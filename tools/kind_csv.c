/* csv: a multivariate time series (rows of numbers), next-row regression; the rows are
 * split in time (train, then validation, then test) and cut into windows of --seq. */
#include <stdio.h>
#include "kind.h"
#include "task.h"

static int load(task *t, const char *path, char *err, size_t len)
{
    const config *c = &t->cfg;
    seqset series = { 0 };
    int rc = csv_load(&series, path, err, len);
    double vf = c->valid_frac, tf = c->test_frac;
    if (rc == 0 && (!(vf >= 0 && vf < 1) || !(tf >= 0 && tf < 1) || !(vf + tf < 1))) {
        snprintf(err, len, "%s: --valid-frac %g and --test-frac %g must each be in [0, 1) with a sum below 1", path, vf,
                 tf);
        rc = -1;
    }
    if (rc == 0) {   /* rows split in time: train, then valid, then test */
        seqset tmp[3] = { { 0 } };
        size_t R = series.off[1];
        size_t nv = kind_frac_rows(R, vf), nt = kind_frac_rows(R, tf), ntr = R - nv - nt;
        size_t start[3] = { 0, ntr, ntr + nv }, cnt[3] = { ntr, nv, nt };
        for (int s = 0; s < 3 && rc == 0; s++) {
            if (cnt[s] < (size_t)c->seq + 1) continue;
            rc = seqset_init(&tmp[s], series.F, SEQ_TGT_NONE, 0, err, len);
            if (rc == 0)
                rc = seqset_add(&tmp[s], (int)cnt[s], series.x + start[s] * (size_t)series.F, NULL, 0, NULL, NULL, err,
                                len);
            if (rc == 0) rc = seqset_windows(&t->seq.set[s], &tmp[s], 0, c->seq, c->seq, err, len);
            seqset_free(&tmp[s]);
        }
        if (rc == 0 && t->seq.set[DATA_TRAIN].n == 0) {
            snprintf(err, len, "%s: %zu rows leave fewer than --seq + 1 = %d for training", path, ntr, c->seq + 1);
            rc = -1;
        }
    }
    seqset_free(&series);
    return rc;
}

static int model(const task *t, rc_model_opts *o, char *msg, size_t len)
{
    (void)msg;
    (void)len;
    o->input_size = o->output_size = t->seq.set[DATA_TRAIN].F;
    o->head = RC_HEAD_LINEAR;
    return 0;
}

static double metric_of(const kind_stats *s)
{
    return s->sum / s->count;
}

const data_kind kind_csv = { "csv", "mse", "CSV rows of numbers: next-row regression (MSE)", 0, load, model, NULL,
                             metric_of, NULL };
