/* The data tasks of recur search: chars (a character language model on a corpus, as
 * recur train --data-kind chars) and music (the piano-roll JSON of --data-kind music).
 * The data is loaded once by tools/task.c; every evaluation makes its own cell and
 * model on it (task_make_model) and trains it briefly. The score is higher-is-better:
 * 1 / (validation bits per character) for chars, 1 / (validation NLL per frame) for
 * music, so that a score divided by the best baseline's is baseline_bpc / bpc. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "run_agree.h"
#include "search.h"
#include "task.h"

struct data_task {
    task t;
    int music;
};

data_task *data_task_load(const search_opts *o, const char *kind, const char *path, char *msg, size_t len)
{
    data_task *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(msg, len, "out of memory");
        return NULL;
    }
    config cfg;
    config_defaults(&cfg);
    snprintf(cfg.data_kind, sizeof cfg.data_kind, "%s", kind);
    snprintf(cfg.data, sizeof cfg.data, "%s", path);
    snprintf(cfg.out, sizeof cfg.out, "%s", o->out);   /* a folder of text becomes <out>/corpus.txt */
    cfg.batch = o->batch;
    cfg.seq = o->seq;
    cfg.seed = (long)(o->seed & 0x7fffffff);
    char err[2048] = "";
    if (task_load(&d->t, &cfg, err, sizeof err) != 0) {
        snprintf(msg, len, "--tasks %s: %s", kind, err);
        free(d);
        return NULL;
    }
    d->music = !strcmp(d->t.kind->name, "music");
    if ((d->music && (d->t.seq.set[DATA_TRAIN].n == 0 || d->t.seq.set[DATA_VALID].n == 0)) ||
        (!d->music && (d->t.text.n[DATA_TRAIN] < 2 || d->t.text.n[DATA_VALID] < 2))) {
        snprintf(msg, len, "--tasks %s: %s has no %s part", kind, path,
                 (d->music ? d->t.seq.set[DATA_TRAIN].n > 0 : d->t.text.n[DATA_TRAIN] >= 2) ? "validation" : "training");
        data_task_free(d);
        return NULL;
    }
    if (!d->music && d->t.text.n[DATA_TRAIN] / (size_t)o->batch <= (size_t)o->seq + 1) {
        snprintf(msg, len, "--tasks chars: %s: %zu training characters are too few for --batch %d streams of "
                 "--seq %d", path, d->t.text.n[DATA_TRAIN], o->batch, o->seq);
        data_task_free(d);
        return NULL;
    }
    return d;
}

void data_task_free(data_task *d)
{
    if (!d) return;
    task_free(&d->t);
    free(d);
}

void data_task_describe(const data_task *d, const char *prefix, FILE *f)
{
    agree_data_lines(&d->t, prefix, f);
}

void data_task_shape(const data_task *d, int *vocab, int *in, int *out)
{
    if (d->music) {
        *vocab = 0;
        *in = *out = d->t.seq.set[DATA_TRAIN].F;
    } else {
        *vocab = *out = d->t.voc->n;
        *in = 0;   /* the embedding: H wide */
    }
}

static unsigned long long mix2(unsigned long long a, unsigned long long b)
{
    unsigned long long z = a ^ (b * 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double data_task_run(const search_opts *o, data_task *d, const char *text, int H, double lr, long steps, int s,
                     search_poll poll, char *msg, size_t len)
{
    task t = d->t;   /* the loaded data, shared; the cell and model are this run's */
    t.cfg.hidden = H;
    t.cfg.seed = (long)(mix2(o->seed, 0x1000ull + (unsigned long long)s) & 0x7fffffffffffull);
    snprintf(t.cfg.cell, sizeof t.cfg.cell, "candidate");
    t.cell = NULL;
    t.model = NULL;
    t.cell_text = (char *)text;
    double score = NAN;
    feeder f = { 0 };
    rc_optim *opt = NULL;
    char err[1024] = "";
    if (task_make_model(&t, err, sizeof err) != 0) {
        snprintf(msg, len, "%s", err);
        goto done;
    }
    rc_optim_opts oo = rc_optim_defaults(RC_OPT_ADAM);
    oo.clip_norm = 5.0f;
    if (!(opt = rc_optim_new(t.model, &oo))) {
        snprintf(msg, len, "out of memory");
        goto done;
    }
    if (feeder_init(&f, &t, DATA_TRAIN, 1, err, sizeof err) != 0) {
        snprintf(msg, len, "%s", err);
        goto done;
    }
    rc_model_set_carry(t.model, t.is_lm);
    rc_schedule sch = { .kind = RC_SCHED_COSINE, .lr = (float)lr, .min_frac = 0.1f };
    long per = feeder_count(&f);
    for (long step = 0; step < steps; step++) {
        if (poll && poll()) {
            score = -1;
            goto done;
        }
        if (per < 1) {
            snprintf(msg, len, "no training batch");
            goto done;
        }
        if (step % per == 0) {
            rc_model_reset_state(t.model);
            if (feeder_epoch(&f, (int)(step / per), err, sizeof err) != 0) {
                snprintf(msg, len, "%s", err);
                goto done;
            }
        }
        rc_batch b;
        if (feeder_get(&f, step % per, &b, err, sizeof err) != 0) {
            snprintf(msg, len, "%s", err);
            goto done;
        }
        double loss;
        rc_status st = rc_model_forward(t.model, &b, &loss);
        const char *what = "forward", *why = rc_model_error(t.model);
        if (st == RC_OK && (st = rc_model_backward(t.model)) != RC_OK) what = "backward";
        else if (st == RC_OK &&
                 (st = rc_optim_step(opt, rc_schedule_lr(&sch, 1, (double)step / (double)steps))) != RC_OK) {
            what = "optimiser step";
            why = rc_optim_error(opt);
        }
        if (st != RC_OK) {
            snprintf(msg, len, "update %ld, %s: %s (%s)", step + 1, what, why && why[0] ? why : "no message",
                     rc_status_name(st));
            goto done;
        }
    }
    double vloss, metric;
    if (task_evaluate(&t, DATA_VALID, &vloss, &metric, NULL, err, sizeof err) != 0) {
        snprintf(msg, len, "%s", err);
        goto done;
    }
    if (!(metric > 0) || !isfinite(metric)) snprintf(msg, len, "validation %s %g", task_metric_name(&t), metric);
    else score = 1.0 / metric;
done:
    feeder_free(&f);
    rc_optim_free(opt);
    rc_model_free(t.model);
    rc_cell_free(t.cell);
    return score;
}
