/* The transcription kinds' shared part (transcribe.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "transcribe.h"

static int is_dir(const char *p)
{
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Moves sequences [from, n) of *src (with their labels and names) into a new set *dst,
 * leaving [0, from) in src. Labels are unshifted arrays as the readers give them; the
 * moved names' entries of *names become NULL (the array keeps its size). */
static int split_tail(seqset *src, int32_t **lab, size_t **off, char **names, int from, seqset *dst, int32_t **dlab,
                      size_t **doff, char ***dnames, char *err, size_t len)
{
    int n = src->n, m = n - from;
    *dlab = NULL;
    *doff = NULL;
    *dnames = NULL;
    if (seqset_init(dst, src->F, SEQ_TGT_NONE, 0, err, len) != 0) return -1;
    size_t nl = (*off)[n] - (*off)[from];
    *dlab = malloc((nl ? nl : 1) * sizeof **dlab);
    *doff = malloc(((size_t)m + 1) * sizeof **doff);
    *dnames = malloc((size_t)m * sizeof **dnames);
    if (!*dlab || !*doff || !*dnames) {
        snprintf(err, len, "out of memory holding out %d samples", m);
        goto fail;
    }
    for (int i = from; i < n; i++) {
        const float *x = src->x + src->off[i] * (size_t)src->F;
        if (seqset_add(dst, seqset_len(src, i), x, NULL, 0, NULL, NULL, err, len) != 0) goto fail;
        (*doff)[i - from] = (*off)[i] - (*off)[from];
    }
    (*doff)[m] = nl;
    memcpy(*dlab, *lab + (*off)[from], nl * sizeof **dlab);
    memcpy(*dnames, names + from, (size_t)m * sizeof *names);
    memset(names + from, 0, (size_t)m * sizeof *names);
    /* what stays: the first `from` sequences (the arrays keep their size) */
    src->n = from;
    return 0;
fail:
    seqset_free(dst);
    free(*dlab);
    free(*doff);
    free(*dnames);
    *dlab = NULL;
    *doff = NULL;
    *dnames = NULL;
    return -1;
}

static int attach(seqset *s, int32_t *lab, size_t *off, char *err, size_t len)
{
    for (size_t i = 0; i < off[s->n]; i++) lab[i] += 1;   /* class 0 is the blank */
    return seqset_attach_labels(s, lab, off, err, len);
}

int transcribe_load(task *t, const char *path, transcribe_read_fn read, char *err, size_t len)
{
    const config *c = &t->cfg;
    char dirs[3][2048];
    const char *dir[3] = { NULL, NULL, NULL };
    snprintf(dirs[DATA_TRAIN], sizeof dirs[0], "%s/train", path);
    int nested = is_dir(dirs[DATA_TRAIN]);
    if (!nested) snprintf(dirs[DATA_TRAIN], sizeof dirs[0], "%s", path);
    dir[DATA_TRAIN] = dirs[DATA_TRAIN];
    const char *given[3] = { NULL, kind_opt_path(c->valid), kind_opt_path(c->test) };
    const char *sub[3] = { NULL, "valid", "test" };
    for (int k = DATA_VALID; k <= DATA_TEST; k++) {
        if (given[k]) {
            if (!is_dir(given[k])) {
                snprintf(err, len, "%s: --%s must be a folder of samples for --data-kind %s", given[k], sub[k],
                         t->kind->name);
                return -1;
            }
            snprintf(dirs[k], sizeof dirs[k], "%s", given[k]);
            dir[k] = dirs[k];
        } else if (nested) {
            snprintf(dirs[k], sizeof dirs[k], "%s/%s", path, sub[k]);
            if (is_dir(dirs[k])) dir[k] = dirs[k];
        }
    }
    t->labels = &t->seq.labels;
    vocab_free(&t->seq.labels);
    int32_t *lab[3] = { NULL, NULL, NULL };
    size_t *off[3] = { NULL, NULL, NULL };
    for (int k = 0; k < 3; k++) {
        if (!dir[k]) continue;
        if (read(t, dir[k], &t->seq.labels, &t->seq.set[k], &lab[k], &off[k], &t->names[k], err, len) != 0) goto fail;
        t->seq.nseq[k] = t->nnames[k] = t->seq.set[k].n;
    }
    /* held-out fractions of the training folder, test first so valid comes before it */
    double frac[3] = { 0, c->valid_frac, c->test_frac };
    for (int k = DATA_TEST; k >= DATA_VALID; k--) {
        if (dir[k] || frac[k] <= 0) continue;
        int n = t->seq.set[DATA_TRAIN].n;
        int m = (int)kind_frac_rows((size_t)t->seq.nseq[DATA_TRAIN], frac[k]);
        if (m < 1) m = 1;
        if (m >= n) {
            snprintf(err, len, "%s: %d samples are too few to hold out --%s-frac %g and train on the rest; give a "
                     "%s folder", dir[DATA_TRAIN], t->seq.nseq[DATA_TRAIN], sub[k], frac[k], sub[k]);
            goto fail;
        }
        if (split_tail(&t->seq.set[DATA_TRAIN], &lab[DATA_TRAIN], &off[DATA_TRAIN], t->names[DATA_TRAIN], n - m,
                       &t->seq.set[k], &lab[k], &off[k], &t->names[k], err, len) != 0)
            goto fail;
        t->seq.nseq[k] = t->nnames[k] = m;
    }
    t->seq.nseq[DATA_TRAIN] = t->seq.set[DATA_TRAIN].n;
    for (int k = 0; k < 3; k++) {
        if (!off[k]) continue;
        int rc = attach(&t->seq.set[k], lab[k], off[k], err, len);
        lab[k] = NULL;
        off[k] = NULL;
        if (rc != 0) goto fail;
    }
    return 0;
fail:
    for (int k = 0; k < 3; k++) {
        free(lab[k]);
        free(off[k]);
    }
    return -1;
}

int transcribe_model(const task *t, rc_model_opts *o, char *msg, size_t len)
{
    if (t->labels->n < 1) {
        snprintf(msg, len, "the transcripts have no characters");
        return -1;
    }
    o->input_size = t->seq.set[DATA_TRAIN].F;
    o->vocab = 0;
    o->head = RC_HEAD_CTC;
    o->output_size = t->labels->n + 1;
    o->ctc_blank = 0;
    return 0;
}

char *transcribe_text(const task *t, const int32_t *ids, int n)
{
    size_t cap = 1;
    for (int i = 0; i < n; i++) {
        size_t l = 0;
        if (ids[i] >= 1 && ids[i] <= t->labels->n) vocab_token(t->labels, ids[i] - 1, &l);
        cap += l;
    }
    char *s = malloc(cap), *p = s;
    if (!s) return NULL;
    for (int i = 0; i < n; i++) {
        size_t l = 0;
        const char *tok = ids[i] >= 1 && ids[i] <= t->labels->n ? vocab_token(t->labels, ids[i] - 1, &l) : NULL;
        if (tok) memcpy(p, tok, l), p += l;
    }
    *p = '\0';
    return s;
}

int transcribe_eval_batch(task *t, const rc_batch *b, kind_stats *s, char *msg, size_t len)
{
    const float *logits = rc_model_output(t->model);
    int A = rc_model_options(t->model).output_size, T = b->T, B = b->B;
    if (!logits || !b->labels || !b->label_lengths) {
        snprintf(msg, len, "evaluation: no logits or no transcripts to score");
        return -1;
    }
    int32_t *hyp = malloc((size_t)T * (size_t)B * sizeof *hyp), *hlen = malloc((size_t)B * sizeof *hlen);
    char err[512] = "";
    int rc = 0;
    if (!hyp || !hlen) {
        snprintf(msg, len, "evaluation: out of memory decoding %d samples of %d steps", B, T);
        rc = -1;
    } else if (t->beam) {   /* each sample's best hypothesis, copied where greedy's go */
        if (rc_ctc_beam_decode(t->beam, logits, T, B, b->lengths) != RC_OK) {
            snprintf(msg, len, "evaluation: beam search: %s", rc_ctc_beam_error(t->beam));
            rc = -1;
        }
        for (int j = 0; rc == 0 && j < B; j++) {
            const rc_ctc_hyp *h = rc_ctc_beam_count(t->beam, j) > 0 ? rc_ctc_beam_hyp(t->beam, j, 0) : NULL;
            hlen[j] = h ? h->length : 0;   /* no hypothesis (every prefix impossible): nothing recognised */
            if (h && h->length) memcpy(hyp + (size_t)j * (size_t)T, h->labels, (size_t)h->length * sizeof *hyp);
        }
    } else if (rc_ctc_greedy(logits, T, B, A, b->lengths, 0, hyp, NULL, hlen, err, sizeof err) != RC_OK) {
        snprintf(msg, len, "evaluation: greedy decoding: %s", err);
        rc = -1;
    }
    for (int j = 0; rc == 0 && j < B; j++) {
        const int32_t *ref = b->labels + (size_t)j * (size_t)b->S, *h = hyp + (size_t)j * (size_t)T;
        rc_edit_stats e;
        if (rc_edit_distance(ref, b->label_lengths[j], h, hlen[j], &e, err, sizeof err) != RC_OK) {
            snprintf(msg, len, "evaluation: %s", err);
            rc = -1;
            break;
        }
        s->edits += (double)e.distance;
        s->ref += (double)e.ref_length;
        char *rt = transcribe_text(t, ref, b->label_lengths[j]), *ht = transcribe_text(t, h, hlen[j]);
        if (!rt || !ht || rc_edit_distance_words(rt, ht, &e, err, sizeof err) != RC_OK) {
            snprintf(msg, len, "evaluation: %s", rt && ht ? err : "out of memory");
            rc = -1;
        } else {
            s->word_edits += (double)e.distance;
            s->word_ref += (double)e.ref_length;
        }
        free(rt);
        free(ht);
    }
    free(hyp);
    free(hlen);
    return rc;
}

double transcribe_cer(const kind_stats *s)
{
    return s->ref > 0 ? s->edits / s->ref : NAN;
}
