/* recur eval and recur sample: both rebuild the run from its checkpoint alone. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "rng.h"
#include "run_ckpt.h"
#include "task.h"
#include "threads.h"

/* The checkpoint named by --checkpoint, else <out>/best.ckpt, else <out>/last.ckpt. */
static const char *checkpoint_path(const config *c, char *buf, size_t len)
{
    if (c->checkpoint[0]) return c->checkpoint;
    snprintf(buf, len, "%s/best.ckpt", c->out);
    FILE *f = fopen(buf, "rb");
    if (f) {
        fclose(f);
        return buf;
    }
    snprintf(buf, len, "%s/last.ckpt", c->out);
    return buf;
}

/* Loads the stored configuration (command-line data options override it), the data
 * and the model, and the weights. */
static int open_run(const config *cli, task *t, const char **path, char *pbuf, size_t plen, int need_data, char *msg,
                    size_t len)
{
    *path = checkpoint_path(cli, pbuf, plen);
    config c;
    if (run_read_config(*path, &c, msg, len) != 0) return -1;
    /* data paths and batch shape from this command line when it gives them */
    static const char *keys[] = { "data", "valid", "test", "seq", "batch", "threads" };
    config given = *cli;
    config_keep_given(&given, keys, (int)(sizeof keys / sizeof *keys));
    config_overlay(&c, &given);
    const data_kind *kind = kind_find(c.data_kind);
    int text_kind = kind && (kind->flags & KIND_LM);
    if (!need_data && text_kind && !config_was_set(cli, "data")) {   /* sampling needs only the stored vocabulary */
        memset(t, 0, sizeof *t);
        t->cfg = c;
        t->kind = kind;
        t->is_lm = 1;
        t->voc = &t->text.voc;
        if (run_read_vocab(*path, &t->text.voc, msg, len) != 0) return -1;
        t->text.eos = vocab_id(t->voc, DATA_EOS);
        t->text.unk = vocab_id(t->voc, DATA_UNK);
    } else if (task_load(t, &c, msg, len) != 0) return -1;
    t->cell_text = run_read_cell_text(*path);   /* a cell-language model needs no .cell file */
    if (task_make_model(t, msg, len) != 0 || run_load(*path, t, NULL, NULL, NULL, msg, len) != 0) {
        task_free(t);
        return -1;
    }
    return 0;
}

int cmd_eval(config *cli)
{
    task t;
    char msg[2048], pbuf[2200];
    const char *path;
    char why[160];
    tool_set_threads(cli->threads, 1, why, sizeof why);
    if (open_run(cli, &t, &path, pbuf, sizeof pbuf, 1, msg, sizeof msg) != 0) {
        fprintf(stderr, "recur eval: %s\n", msg);
        return 1;
    }
    int split = !strcmp(cli->split, "test") ? DATA_TEST : !strcmp(cli->split, "train") ? DATA_TRAIN : DATA_VALID;
    if (strcmp(cli->split, "test") && strcmp(cli->split, "train") && strcmp(cli->split, "valid")) {
        fprintf(stderr, "recur eval: --split '%s' is not valid, test or train\n", cli->split);
        task_free(&t);
        return 2;
    }
    double loss, metric;
    kind_stats st;
    int rc = task_evaluate(&t, split, &loss, &metric, &st, msg, sizeof msg);
    if (rc != 0) fprintf(stderr, "recur eval: %s\n", msg);
    else {
        printf("%s %s: loss %.4f %s %.4f", path, cli->split, loss, task_metric_name(&t), metric);
        if (st.word_ref > 0)   /* a transcription kind: the word error rate too, and the counts */
            printf(" wer %.4f (%.0f character edits in %.0f, %.0f word edits in %.0f)", st.word_edits / st.word_ref,
                   st.edits, st.ref, st.word_edits, st.word_ref);
        printf("\n");
    }
    task_free(&t);
    return rc ? 1 : 0;
}

/* Draws from softmax(logits / temperature). */
static int draw(const float *logits, int n, double temp, rng_t *r)
{
    double mx = logits[0], s = 0;
    for (int k = 1; k < n; k++) mx = logits[k] > mx ? logits[k] : mx;
    if (temp <= 0) {   /* greedy */
        int best = 0;
        for (int k = 1; k < n; k++) best = logits[k] > logits[best] ? k : best;
        return best;
    }
    for (int k = 0; k < n; k++) s += exp((logits[k] - mx) / temp);
    double u = (double)rng_float(r) * s;
    for (int k = 0; k < n; k++) {
        u -= exp((logits[k] - mx) / temp);
        if (u <= 0) return k;
    }
    return n - 1;
}

int print_sample(task *t, const char *prime, int length, double temperature, unsigned long long seed, FILE *f,
                 char *msg, size_t len)
{
    if (!t->voc || !t->is_lm) {
        snprintf(msg, len, "sampling text needs a text model (chars or words)");
        return -1;
    }
    rc_model *m = t->model;
    rng_t r;
    rng_seed(&r, seed);
    char err[512];
    int32_t *ids = NULL, tok = 0;
    size_t n = 0;
    if (prime && prime[0] && vocab_encode(t->voc, prime, strlen(prime), &ids, &n, err, sizeof err) != 0) {
        snprintf(msg, len, "--prime: %s", err);
        return -1;
    }
    if (rc_model_stream_reset(m, 1) != RC_OK) {
        free(ids);
        snprintf(msg, len, "%s", rc_model_error(m));
        return -1;
    }
    const float *out = NULL;
    int V = t->voc->n;
    if (n == 0) {   /* start after an end of line, as text does */
        tok = t->text.eos >= 0 ? t->text.eos : vocab_find(t->voc, "\n", 1);
        if (tok < 0) tok = 0;
    }
    for (size_t i = 0; i < n; i++) {
        size_t tl;
        const char *s = vocab_token(t->voc, ids[i], &tl);
        fwrite(s, 1, tl, f);
        if (!t->voc->chars) fputc(' ', f);
        if (rc_model_stream_step(m, NULL, &ids[i], &out) != RC_OK) break;
    }
    if (n) tok = draw(out, V, temperature, &r);
    else if (rc_model_stream_step(m, NULL, &tok, &out) == RC_OK) tok = draw(out, V, temperature, &r);
    int rc = 0;
    for (int i = 0; i < length; i++) {
        size_t tl;
        const char *s = vocab_token(t->voc, tok, &tl);
        if (t->voc->chars) fwrite(s, 1, tl, f);
        else if (tok == t->text.eos) fputc('\n', f);
        else fprintf(f, "%s ", s);
        if (rc_model_stream_step(m, NULL, &tok, &out) != RC_OK) {
            snprintf(msg, len, "%s", rc_model_error(m));
            rc = -1;
            break;
        }
        tok = draw(out, V, temperature, &r);
    }
    free(ids);
    return rc;
}

int cmd_sample(config *cli)
{
    task t;
    char msg[2048], pbuf[2200];
    const char *path;
    char why[160];
    tool_set_threads(cli->threads, 1, why, sizeof why);
    if (cli->length < 0) {
        fprintf(stderr, "recur sample: --length %d must be >= 0\n", cli->length);
        return 2;
    }
    if (open_run(cli, &t, &path, pbuf, sizeof pbuf, 0, msg, sizeof msg) != 0) {
        fprintf(stderr, "recur sample: %s\n", msg);
        return 1;
    }
    int rc = print_sample(&t, cli->prime, cli->length, cli->temperature, (unsigned long long)cli->seed, stdout, msg,
                          sizeof msg);
    if (rc != 0) fprintf(stderr, "recur sample: %s\n", msg);
    else putchar('\n');
    task_free(&t);
    return rc ? 1 : 0;
}
