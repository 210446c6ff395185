/* Data-parallel recur train: shares of batches, the gradient sum, the carried state
 * (train_dist.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dist.h"
#include "model.h"
#include "train_dist.h"

void dp_share(int B, int r, int n, int *j0, int *nb)
{
    long long a = (long long)B * r / n, b = (long long)B * (r + 1) / n;
    *j0 = (int)a;
    *nb = (int)(b - a);
}

static int grow(void **p, size_t *cap, size_t n, size_t el)
{
    if (n <= *cap) return 0;
    void *q = realloc(*p, n * el);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

int dp_init(dpar *d, task *t, char *msg, size_t len)
{
    memset(d, 0, sizeof *d);
    d->rank = dist_rank();
    d->size = dist_size();
    d->B = t->cfg.batch;
    if (d->B < d->size) {
        snprintf(msg, len, "--batch %d is smaller than the %d processes: each process takes a share of every batch "
                 "(its %s) and needs at least one; give --batch >= %d or run fewer processes", d->B, d->size,
                 t->is_lm ? "streams" : "sequences", d->size);
        return -1;
    }
    rc_model *m = t->model;
    d->np = rc_model_param_count(m);
    d->psize = calloc((size_t)d->np + 1, sizeof *d->psize);
    d->stats = calloc((size_t)DP_STATS + (size_t)d->size, sizeof *d->stats);
    for (int i = 0; d->psize && i < d->np; i++) d->nflat += d->psize[i] = rc_node_size(model_param_node(m, i));
    d->flat = malloc((d->nflat + 1) * sizeof *d->flat);
    int ok = d->psize && d->stats && d->flat;
    if (ok && t->is_lm) {
        int L = rc_model_options(m).layers, S = rc_cell_state_count(t->cell);
        d->nslot = L * S;
        ok = (d->full = calloc((size_t)d->nslot + 1, sizeof *d->full)) != NULL;
        size_t most = 1;
        for (int k = 0; ok && k < d->nslot; k++) {
            size_t sz = (size_t)rc_cell_state_size(t->cell, k % S);
            most = sz > most ? sz : most;
            ok = (d->full[k] = calloc((size_t)d->B * sz, sizeof(float))) != NULL;
        }
        ok = ok && (d->zero = calloc((size_t)d->B * most, sizeof(float))) && (d->counts = calloc((size_t)d->size, sizeof(size_t)));
    }
    if (ok) return 0;
    dp_free(d);
    snprintf(msg, len, "out of memory for the data-parallel buffers (%zu gradient values)", d->nflat);
    return -1;
}

void dp_free(dpar *d)
{
    free(d->tok);
    free(d->tgt);
    free(d->len);
    free(d->x);
    free(d->y);
    free(d->psize);
    free(d->flat);
    free(d->stats);
    for (int k = 0; d->full && k < d->nslot; k++) free(d->full[k]);
    free(d->full);
    free(d->zero);
    free(d->counts);
    memset(d, 0, sizeof *d);
}

int dp_shard(dpar *d, const task *t, const rc_batch *full, rc_batch *out, char *msg, size_t len)
{
    rc_model_opts o = rc_model_options(t->model);
    int T = full->T, B = full->B, j0, nb;
    dp_share(B, d->rank, d->size, &j0, &nb);
    d->empty = nb == 0;
    if (d->empty) {   /* a short last batch: the first row stands in, its gradient unused */
        j0 = 0;
        nb = 1;
    }
    d->j0 = j0;
    d->nb = nb;
    size_t N = (size_t)T * (size_t)nb, R = o.last_step_only ? (size_t)nb : N;
    int F = o.input_size, O = o.output_size;
    if ((full->tokens && grow((void **)&d->tok, &d->cap_tok, N, sizeof *d->tok)) ||
        (full->targets && grow((void **)&d->tgt, &d->cap_tgt, R, sizeof *d->tgt)) ||
        (full->lengths && grow((void **)&d->len, &d->cap_len, (size_t)nb, sizeof *d->len)) ||
        (full->x && grow((void **)&d->x, &d->cap_x, N * (size_t)F, sizeof *d->x)) ||
        (full->y && grow((void **)&d->y, &d->cap_y, R * (size_t)O, sizeof *d->y))) {
        snprintf(msg, len, "out of memory for a share of %d x %d", T, nb);
        return -1;
    }
    rc_batch s = { .T = T, .B = nb };
    /* rows are time-major: row t*B + j is step t of sequence (stream) j */
    for (int st = 0; st < T; st++)
        for (int j = 0; j < nb; j++) {
            size_t to = (size_t)st * (size_t)nb + (size_t)j, from = (size_t)st * (size_t)B + (size_t)(j0 + j);
            if (full->tokens) d->tok[to] = full->tokens[from];
            if (full->x) memcpy(d->x + to * (size_t)F, full->x + from * (size_t)F, (size_t)F * sizeof(float));
            if (!o.last_step_only) {
                if (full->targets) d->tgt[to] = full->targets[from];
                if (full->y) memcpy(d->y + to * (size_t)O, full->y + from * (size_t)O, (size_t)O * sizeof(float));
            }
        }
    for (int j = 0; j < nb; j++) {
        if (full->lengths) d->len[j] = full->lengths[j0 + j];
        if (o.last_step_only && full->targets) d->tgt[j] = full->targets[j0 + j];
        if (o.last_step_only && full->y)
            memcpy(d->y + (size_t)j * (size_t)O, full->y + (size_t)(j0 + j) * (size_t)O, (size_t)O * sizeof(float));
    }
    if (full->tokens) s.tokens = d->tok;
    if (full->targets) s.targets = d->tgt;
    if (full->lengths) s.lengths = d->len;
    if (full->x) s.x = d->x;
    if (full->y) s.y = d->y;
    if (full->labels) {   /* a CTC head's label rows are per sequence: the share's are contiguous */
        s.labels = full->labels + (size_t)j0 * (size_t)full->S;
        s.label_lengths = full->label_lengths + j0;
        s.S = full->S;
    }
    *out = s;
    return 0;
}

void dp_after_forward(dpar *d, const task *t)
{
    double sum, count;
    rc_model_last_stats(t->model, &sum, &count);
    rc_loss_norm norm = rc_model_options(t->model).norm;
    d->norm = d->empty ? 0 : norm == RC_NORM_SEQUENCES ? (double)d->nb : norm == RC_NORM_SUM ? 1.0 : count;
}

int dp_reduce_grads(dpar *d, task *t, double total, char *msg, size_t len)
{
    /* The model normalised this rank's loss by d->norm (its targets or rows); the whole
     * batch's loss is normalised by the total: each rank's gradient counts norm / total. */
    double w = d->empty || !(total > 0) ? 0.0 : d->norm / total;
    if (rc_model_options(t->model).norm == RC_NORM_SUM) w = d->empty ? 0.0 : 1.0;   /* a sum: nothing to rescale */
    float *f = d->flat;
    for (int i = 0; i < d->np; i++) {
        const float *g = model_grad(t->model, i);
        size_t n = d->psize[i];
        if (g && w != 0.0)
            for (size_t k = 0; k < n; k++) f[k] = (float)((double)g[k] * w);
        else memset(f, 0, n * sizeof *f);
        f += n;
    }
    if (dist_sum_floats(d->flat, d->nflat, msg, len) != 0) return -1;
    f = d->flat;
    for (int i = 0; i < d->np; i++) {
        /* the plan's gradient buffer, read by rc_optim_step: the sum replaces this rank's */
        float *g = (float *)model_grad(t->model, i);
        if (g) memcpy(g, f, d->psize[i] * sizeof *g);
        f += d->psize[i];
    }
    return 0;
}

int dp_gather_state(dpar *d, task *t, char *msg, size_t len)
{
    if (!t->is_lm || d->size <= 1) return 0;
    int S = rc_cell_state_count(t->cell), j0, nb;
    dp_share(d->B, d->rank, d->size, &j0, &nb);
    int rc = 0;
    for (int k = 0; rc == 0 && k < d->nslot; k++) {
        int l = k / S, s = k % S, Bl = 0;
        size_t sz = (size_t)rc_cell_state_size(t->cell, s);
        const float *mine = rc_model_get_state(t->model, l, 0, rc_cell_state_name(t->cell, s), &Bl);
        if (!mine || Bl != nb) mine = d->zero;   /* no forward on these rows yet: their state is zero */
        for (int r = 0; r < d->size; r++) {
            int a, n;
            dp_share(d->B, r, d->size, &a, &n);
            d->counts[r] = (size_t)n * sz * sizeof(float);
        }
        rc = dist_gather(mine, (size_t)nb * sz * sizeof(float), d->full[k], d->counts, 0, msg, len);
    }
    if (rc == 0 && d->rank == 0) {
        for (int k = 0; k < d->nslot; k++)
            rc_model_set_state(t->model, k / S, 0, rc_cell_state_name(t->cell, k % S), d->B, d->full[k]);
        d->gathered = 1;
    }
    return rc;
}

void dp_restore_state(dpar *d, task *t)
{
    if (!d->gathered) return;
    int S = rc_cell_state_count(t->cell), j0, nb;
    dp_share(d->B, d->rank, d->size, &j0, &nb);   /* rank 0: rows [0, nb) lead each slot */
    for (int k = 0; k < d->nslot; k++)
        rc_model_set_state(t->model, k / S, 0, rc_cell_state_name(t->cell, k % S), nb, d->full[k]);
    d->gathered = 0;
}

int dp_take_state(dpar *d, task *t, char *msg, size_t len)
{
    if (!t->is_lm || d->size <= 1) return 0;
    int S = rc_cell_state_count(t->cell), j0, nb;
    dp_share(d->B, d->rank, d->size, &j0, &nb);
    for (int k = 0; k < d->nslot; k++) {   /* copy every slot first: a change of B clears them all */
        int Bl = 0;
        size_t sz = (size_t)rc_cell_state_size(t->cell, k % S);
        const float *st = rc_model_get_state(t->model, k / S, 0, rc_cell_state_name(t->cell, k % S), &Bl);
        if (st && Bl == d->B) memcpy(d->full[k], st + (size_t)j0 * sz, (size_t)nb * sz * sizeof(float));
        else memset(d->full[k], 0, (size_t)nb * sz * sizeof(float));
    }
    for (int k = 0; k < d->nslot; k++)
        if (rc_model_set_state(t->model, k / S, 0, rc_cell_state_name(t->cell, k % S), nb, d->full[k]) != RC_OK) {
            snprintf(msg, len, "carried state: %s", rc_model_error(t->model));
            return -1;
        }
    return 0;
}

int dp_check_weights(dpar *d, task *t, char *msg, size_t len)
{
    uint64_t h = 1469598103934665603ull;   /* FNV-1a over the weights' bytes */
    for (int i = 0; i < d->np; i++) {
        const unsigned char *p = (const unsigned char *)rc_param_data(model_param_node(t->model, i));
        for (size_t k = 0; p && k < d->psize[i] * sizeof(float); k++) h = (h ^ p[k]) * 1099511628211ull;
    }
    uint64_t h0 = h;
    if (dist_bcast(&h0, sizeof h0, 0, msg, len) != 0) return -1;
    int bad = dist_first_failed(h0 != h, msg, len);
    if (bad == -1) return 0;
    if (bad < 0) return -1;
    snprintf(msg, len, "the weights of process %d differ from process 0's: the processes diverged (a bug in "
             "recur's data-parallel training; please report it)", bad);
    return -1;
}

int dp_start_agreed(int ok, const char *desc, int *quiet, char *msg, size_t len)
{
    int first = dist_first_failed(!ok, msg, len), rc = first == -1;
    if (first >= 0 && ok) snprintf(msg, len, "process %d failed to start", first);
    if (rc && desc) {
        int differs = dist_agree(desc, &first, msg, len);
        size_t n = strlen(msg);
        rc = differs == 0;
        if (differs > 0 && first == dist_rank() && n < len)
            snprintf(msg + n, len - n, ": every process of a run must be given the same options and data (README: "
                     "Several processes); nothing was trained, no checkpoint or log written");
    }
    if (!rc) *quiet = first >= 0 ? first != dist_rank() : dist_rank() != 0;
    return rc;
}
