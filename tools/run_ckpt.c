#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ckpt.h"
#include "model.h"
#include "optim.h"
#include "run_ckpt.h"

#define E (err), sizeof(err)

static int add_state(ckpt *c, task *t, char *err, size_t len)
{
    rc_model *m = t->model;
    rc_model_opts mo = rc_model_options(m);
    for (int l = 0; l < mo.layers; l++)
        for (int s = 0; s < rc_cell_state_count(t->cell); s++) {
            int B = 0;
            const char *nm = rc_cell_state_name(t->cell, s);
            const float *d = rc_model_get_state(m, l, 0, nm, &B);
            char name[128];
            snprintf(name, sizeof name, "state/%d/%s", l, nm);
            int shape[2] = { B, rc_cell_state_size(t->cell, s) };
            if (d && ckpt_add(c, name, CKPT_F32, 2, shape, d, err, len) != 0) return -1;
        }
    return 0;
}

int run_save(const char *path, task *t, rc_optim *o, feeder *train, const run_progress *p, char *msg, size_t len)
{
    ckpt c;
    ckpt_init(&c);
    char err[512] = "", *arch = task_arch(t), *cfg = config_to_text(&t->cfg), *voc = NULL, *lab = NULL;
    size_t vl;
    int rc = (arch && cfg) ? 0 : -1;
    if (rc) snprintf(err, sizeof err, "out of memory");
    if (rc == 0) rc = ckpt_add_text(&c, "recur.arch", arch, E);
    if (rc == 0) rc = ckpt_add_text(&c, "recur.config", cfg, E);
    if (rc == 0 && rc_cell_source(t->cell)) rc = ckpt_add_text(&c, "recur.cell", rc_cell_source(t->cell), E);
    if (rc == 0 && t->voc && (rc = vocab_to_text(t->voc, &voc, &vl, E)) == 0) rc = ckpt_add_text(&c, "recur.vocab", voc, E);
    if (rc == 0 && t->labels && (rc = vocab_to_text(t->labels, &lab, &vl, E)) == 0)
        rc = ckpt_add_text(&c, "recur.labels", lab, E);
    for (int i = 0; rc == 0 && i < rc_model_param_count(t->model); i++) {
        const char *nm = rc_model_param_name(t->model, i);
        int nd, shape[4];
        float *d = rc_model_param(t->model, nm, &nd, shape);
        char name[128];
        snprintf(name, sizeof name, "param/%s", nm);
        rc = ckpt_add(&c, name, CKPT_F32, nd, shape, d, E);
    }
    if (rc == 0 && o) {
        for (int i = 0; rc == 0 && i < optim_state_count(o); i++) {
            size_t n;
            float *d = optim_state_data(o, i, &n);
            char name[128];
            snprintf(name, sizeof name, "optim/%s", optim_state_name(o, i));
            int shape[1] = { (int)n };
            rc = ckpt_add(&c, name, CKPT_F32, 1, shape, d, E);
        }
        uint64_t sc[5];
        optim_get_scalars(o, &sc[0], sc + 1);
        if (rc == 0) rc = ckpt_add_u64(&c, "optim.scalars", sc, 5, E);
    }
    if (rc == 0 && p) {
        uint64_t best, el = 0, pr[7];
        memcpy(&best, &p->best, 8);
        memcpy(&el, &p->elapsed, 8);   /* wall time: the one field a resumed run need not repeat */
        pr[0] = p->step; pr[1] = p->epoch; pr[2] = p->batch; pr[3] = p->runs; pr[4] = best; pr[5] = p->bad; pr[6] = el;
        rc = ckpt_add_u64(&c, "train.progress", pr, 7, E);
    }
    if (rc == 0 && t->is_lm) rc = add_state(&c, t, E);
    if (rc == 0 && train && !t->is_lm) {
        int n = train->bt.set->n;
        rc = ckpt_add(&c, "train.order", CKPT_I32, 1, &n, batcher_state(&train->bt, NULL, NULL), E);
    }
    if (rc == 0) rc = ckpt_write(path, &c, E);
    if (rc != 0) snprintf(msg, len, "saving %s: %s", path, err);
    ckpt_free(&c);
    free(arch);
    free(cfg);
    free(voc);
    free(lab);
    return rc;
}

static const char *text_of(const ckpt *c, const char *name, size_t *n)
{
    const ckpt_entry *e = ckpt_find(c, name);
    if (!e || e->type != CKPT_TEXT) return NULL;
    if (n) *n = (size_t)e->shape[0];
    return e->data;
}

int run_read_config(const char *path, config *cfg, char *msg, size_t len)
{
    ckpt c;
    ckpt_init(&c);
    char err[512];
    if (ckpt_read(path, &c, E) != 0) {
        snprintf(msg, len, "%s", err);
        return -1;
    }
    size_t n = 0;
    const char *text = text_of(&c, "recur.config", &n);
    int rc = -1;
    if (!text) snprintf(msg, len, "%s: not a recur run checkpoint (no recur.config entry)", path);
    else {
        char *copy = malloc(n + 1);
        if (copy) {
            memcpy(copy, text, n);
            copy[n] = 0;
            config_defaults(cfg);
            rc = 0;
            for (char *line = copy, *nl; rc == 0 && line && *line; line = nl ? nl + 1 : NULL) {
                nl = strchr(line, '\n');
                if (nl) *nl = 0;
                char *eq = strstr(line, " = ");
                if (!eq) continue;
                *eq = 0;
                char sub[512];
                if (config_set_stored(cfg, line, eq + 3, sub, sizeof sub) != 0) {
                    snprintf(msg, len, "%s: stored configuration: %s", path, sub);
                    rc = -1;
                }
            }
            free(copy);
        } else snprintf(msg, len, "out of memory");
    }
    ckpt_free(&c);
    return rc;
}

char *run_read_cell_text(const char *path)
{
    ckpt c;
    ckpt_init(&c);
    char err[512], *out = NULL;
    if (ckpt_read(path, &c, E) != 0) return NULL;
    size_t n = 0;
    const char *text = text_of(&c, "recur.cell", &n);
    if (text && (out = malloc(n + 1))) {
        memcpy(out, text, n);
        out[n] = 0;
    }
    ckpt_free(&c);
    return out;
}

int run_read_vocab(const char *path, vocab *v, char *msg, size_t len)
{
    ckpt c;
    ckpt_init(&c);
    char err[512];
    if (ckpt_read(path, &c, E) != 0) {
        snprintf(msg, len, "%s", err);
        return -1;
    }
    size_t n = 0;
    const char *text = text_of(&c, "recur.vocab", &n);
    int rc = -1;
    if (!text) snprintf(msg, len, "%s: the checkpoint holds no vocabulary", path);
    else if (vocab_from_text(v, text, n, path, E) != 0) snprintf(msg, len, "%s", err);
    else rc = 0;
    ckpt_free(&c);
    return rc;
}

/* The label set of a classify or tags task against the checkpoint's: the same labels in
 * the same order (their order is the model's output classes). 0, or -1 with msg naming
 * the first label that differs. */
static int check_labels(const ckpt *c, const vocab *labels, const char *path, char *msg, size_t len)
{
    size_t n = 0;
    const char *text = text_of(c, "recur.labels", &n);
    char err[512];
    vocab stored;
    memset(&stored, 0, sizeof stored);
    if (!text) {
        snprintf(msg, len, "%s: the checkpoint holds no label set to check this data's labels against", path);
        return -1;
    }
    if (vocab_from_text(&stored, text, n, path, E) != 0) {
        snprintf(msg, len, "%s: the checkpoint's label set: %s", path, err);
        vocab_free(&stored);
        return -1;
    }
    int rc = 0, most = stored.n > labels->n ? stored.n : labels->n;
    for (int i = 0; i < most && rc == 0; i++) {
        size_t la = 0, lb = 0;
        const char *a = vocab_token(&stored, i, &la), *b = vocab_token(labels, i, &lb);
        if (a && b && la == lb && memcmp(a, b, la) == 0) continue;
        snprintf(msg, len, "%s: the label set differs from this data's (%d labels in the checkpoint, %d here): "
                 "label %d is '%.200s' in the checkpoint and '%.200s' here; the model's classes are the "
                 "checkpoint's labels in their order", path, stored.n, labels->n, i, a ? a : "(none)", b ? b : "(none)");
        rc = -1;
    }
    vocab_free(&stored);
    return rc;
}

/* A float entry that must match count elements. */
static const float *f32(const ckpt *c, const char *name, size_t count, const char *path, char *msg, size_t len)
{
    const ckpt_entry *e = ckpt_find(c, name);
    if (!e || e->type != CKPT_F32 || ckpt_count(e) != count) {
        snprintf(msg, len, "%s: entry '%s' is %s (expected %zu floats): the checkpoint does not fit this model", path,
                 name, e ? "of another size or type" : "missing", count);
        return NULL;
    }
    return e->data;
}

int run_load(const char *path, task *t, rc_optim *o, feeder *train, run_progress *p, char *msg, size_t len)
{
    ckpt c;
    ckpt_init(&c);
    char err[512];
    if (ckpt_read(path, &c, E) != 0) {
        snprintf(msg, len, "%s", err);
        return -1;
    }
    int rc = -1;
    char *arch = task_arch(t), *voc = NULL;
    size_t an = 0, vn = 0, vl = 0;
    const char *sarch = text_of(&c, "recur.arch", &an);
    rc_model *m = t->model;
    rc_model_opts mo = rc_model_options(m);
    /* 1. check everything */
    if (!arch) snprintf(msg, len, "out of memory");
    else if (!sarch) snprintf(msg, len, "%s: not a recur run checkpoint (no architecture)", path);
    else if (an != strlen(arch) || memcmp(sarch, arch, an) != 0)
        snprintf(msg, len, "%s: the checkpoint is for another architecture:\n--- checkpoint:\n%.*s--- this run:\n%s", path,
                 (int)an, sarch, arch);
    else if (t->voc && (vocab_to_text(t->voc, &voc, &vl, E) != 0 || !text_of(&c, "recur.vocab", &vn) || vn != vl ||
                        memcmp(text_of(&c, "recur.vocab", NULL), voc, vl) != 0))
        snprintf(msg, len, "%s: the checkpoint's vocabulary differs from this data's", path);
    else if (!t->labels || check_labels(&c, t->labels, path, msg, len) == 0) rc = 0;
    for (int i = 0; rc == 0 && i < rc_model_param_count(m); i++) {
        const char *nm = rc_model_param_name(m, i);
        int nd, shape[4];
        char name[128];
        rc_model_param(m, nm, &nd, shape);
        size_t n = 1;
        for (int d = 0; d < nd; d++) n *= (size_t)shape[d];
        snprintf(name, sizeof name, "param/%s", nm);
        if (!f32(&c, name, n, path, msg, len)) rc = -1;
    }
    const ckpt_entry *sc = NULL, *pr = NULL, *order = NULL;
    if (rc == 0 && o) {
        for (int i = 0; rc == 0 && i < optim_state_count(o); i++) {
            size_t n;
            char name[128];
            optim_state_data(o, i, &n);
            snprintf(name, sizeof name, "optim/%s", optim_state_name(o, i));
            if (!f32(&c, name, n, path, msg, len)) rc = -1;
        }
        sc = ckpt_find(&c, "optim.scalars");
        if (rc == 0 && (!sc || sc->type != CKPT_U64 || ckpt_count(sc) != 5)) {
            snprintf(msg, len, "%s: optimiser state missing or of another optimiser", path);
            rc = -1;
        }
    }
    if (rc == 0 && p) {
        pr = ckpt_find(&c, "train.progress");
        if (!pr || pr->type != CKPT_U64 || ckpt_count(pr) != 7) {
            snprintf(msg, len, "%s: no training progress in the checkpoint", path);
            rc = -1;
        }
    }
    if (rc == 0 && train && !t->is_lm) {
        order = ckpt_find(&c, "train.order");
        if (!order || order->type != CKPT_I32 || ckpt_count(order) != (size_t)train->bt.set->n) {
            snprintf(msg, len, "%s: the stored data order does not fit this data", path);
            rc = -1;
        }
    }
    int sB = 0;
    if (rc == 0 && t->is_lm && p) {
        for (int l = 0; rc == 0 && l < mo.layers; l++)
            for (int s = 0; rc == 0 && s < rc_cell_state_count(t->cell); s++) {
                char name[128];
                snprintf(name, sizeof name, "state/%d/%s", l, rc_cell_state_name(t->cell, s));
                const ckpt_entry *e = ckpt_find(&c, name);
                if (!e || e->type != CKPT_F32 || e->ndim != 2 || e->shape[1] != rc_cell_state_size(t->cell, s) ||
                    (sB && e->shape[0] != sB)) {
                    snprintf(msg, len, "%s: carried state '%s' is missing or of another shape", path, name);
                    rc = -1;
                } else sB = e->shape[0];
            }
    }
    /* 2. apply */
    if (rc == 0 && train && order) {
        const uint64_t *q = pr->data;
        if (batcher_restore(&train->bt, (int)q[1], (int)q[2], order->data, (int)ckpt_count(order), E) != 0) {
            snprintf(msg, len, "%s: %s", path, err);
            rc = -1;
        }
    }
    if (rc == 0) {
        for (int i = 0; i < rc_model_param_count(m); i++) {
            const char *nm = rc_model_param_name(m, i);
            int nd, shape[4];
            char name[128];
            float *d = rc_model_param(m, nm, &nd, shape);
            snprintf(name, sizeof name, "param/%s", nm);
            const ckpt_entry *e = ckpt_find(&c, name);
            memcpy(d, e->data, ckpt_count(e) * sizeof(float));
        }
        if (o) {
            for (int i = 0; i < optim_state_count(o); i++) {
                size_t n;
                char name[128];
                float *d = optim_state_data(o, i, &n);
                snprintf(name, sizeof name, "optim/%s", optim_state_name(o, i));
                memcpy(d, ckpt_find(&c, name)->data, n * sizeof(float));
            }
            const uint64_t *s = sc->data;
            optim_set_scalars(o, s[0], s + 1);
        }
        if (p) {
            const uint64_t *q = pr->data;
            p->step = q[0]; p->epoch = q[1]; p->batch = q[2]; p->runs = q[3];
            memcpy(&p->best, &q[4], 8);
            p->bad = q[5];
            memcpy(&p->elapsed, &q[6], 8);
            model_set_runs(m, p->runs);
        }
        if (t->is_lm && p)
            for (int l = 0; l < mo.layers; l++)
                for (int s = 0; s < rc_cell_state_count(t->cell); s++) {
                    char name[128];
                    const char *nm = rc_cell_state_name(t->cell, s);
                    snprintf(name, sizeof name, "state/%d/%s", l, nm);
                    rc_model_set_state(m, l, 0, nm, sB, ckpt_find(&c, name)->data);
                }
    }
    free(arch);
    free(voc);
    ckpt_free(&c);
    return rc;
}
