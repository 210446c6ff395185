/* recur eval and recur sample: both rebuild the run from its checkpoint alone (run_open,
 * also recur align's); eval decodes transcriptions greedily or by beam search, with a
 * character language model fused in (--beam, --lm). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int run_open(const config *cli, task *t, const char **path, char *pbuf, size_t plen, int need_data, unsigned need,
             const char *need_why, char *msg, size_t len)
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
    if (kind && (kind->flags & need) != need) {   /* before its data is loaded */
        snprintf(msg, len, "%s: a --data-kind %s run: %s", *path, kind->name, need_why);
        return -1;
    }
    int text_kind = kind && (kind->flags & KIND_LM);
    if (!need_data && text_kind && !config_was_set(cli, "data")) {   /* sampling needs only the stored vocabulary */
        memset(t, 0, sizeof *t);
        t->cfg = c;
        t->kind = kind;
        t->is_lm = 1;
        t->voc = &t->text.voc;
        if (run_read_vocab(*path, &t->text.voc, msg, len) != 0) {
            task_free(t);
            return -1;
        }
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

/* "pen, lines": the kinds with all of `flags`, for messages. */
static const char *kinds_with(unsigned flags, char *buf, size_t len)
{
    buf[0] = 0;
    for (int i = 0; kind_at(i); i++)
        if ((kind_at(i)->flags & flags) == flags)
            snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? ", " : "", kind_at(i)->name);
    return buf;
}

/* The code point of the UTF-8 character s[0..n) (U+FFFD when it is not one). */
static unsigned code_point(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 1) return u[0];
    unsigned cp = u[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) cp = cp << 6 | (u[i] & 0x3f);
    return n <= 4 ? cp : 0xfffd;
}

/* The language model of --lm: a character model's run and its rc_lm adapter, with the
 * map of the transcription model's classes to the LM's characters. */
typedef struct fusion {
    task lm;
    rc_model_lm *adapter;
    int32_t *map;           /* [classes]: the LM id of each class's character (the blank's unused) */
    int eos;                /* the LM's newline, or -1 */
    char path[2200];        /* the LM's checkpoint */
} fusion;

static void fusion_free(fusion *f)
{
    rc_model_lm_free(f->adapter);
    free(f->map);
    if (f->lm.model) task_free(&f->lm);
    memset(f, 0, sizeof *f);
}

/* Opens --lm (a run folder or a checkpoint file) for a beam of `width` over the
 * classes of ctc (the blank, then its alphabet). 0, or -1 with msg. */
static int fusion_open(fusion *f, const char *lm, const task *ctc, int width, char *msg, size_t len)
{
    memset(f, 0, sizeof *f);
    struct stat st;
    if (stat(lm, &st) != 0) {
        snprintf(msg, len, "--lm %s: %s (give the folder of a recur train --data-kind chars run)", lm, strerror(errno));
        return -1;
    }
    config c;
    config_defaults(&c);
    snprintf(S_ISDIR(st.st_mode) ? c.out : c.checkpoint, sizeof c.out, "%s", lm);
    const char *path;
    char sub[2048];
    if (run_open(&c, &f->lm, &path, f->path, sizeof f->path, 0, KIND_LM,
                 "--lm needs a character language model (a recur train --data-kind chars run)", sub, sizeof sub) != 0) {
        snprintf(msg, len, "--lm %s: %s", lm, sub);
        return -1;
    }
    if (path != f->path) snprintf(f->path, sizeof f->path, "%s", path);
    const vocab *lv = f->lm.voc, *alpha = ctc->labels;
    if (!lv || !lv->chars) {
        snprintf(msg, len, "--lm %s: a --data-kind %s run, not a character language model (a recur train --data-kind "
                 "chars run)", f->path, f->lm.kind->name);
        fusion_free(f);
        return -1;
    }
    int A = alpha->n + 1;
    if (!(f->map = calloc((size_t)A, sizeof *f->map))) {
        snprintf(msg, len, "out of memory for the --lm map");
        fusion_free(f);
        return -1;
    }
    for (int k = 0; k < alpha->n; k++) {   /* class k + 1 is the alphabet's character k */
        size_t l = 0;
        const char *ch = vocab_token(alpha, k, &l);
        int id = vocab_find(lv, ch, l);
        if (id < 0) {
            snprintf(msg, len, "--lm %s: the language model has no character '%.*s' (U+%04X) of the transcription "
                     "alphabet%s; train it on text holding every character of the transcripts (e.g. the training "
                     "transcripts)", f->path, (int)l, ch, code_point(ch, l),
                     l > 1 ? " (a character model reads bytes: a character of several bytes is not one of its labels)"
                           : "");
            fusion_free(f);
            return -1;
        }
        f->map[k + 1] = id;
    }
    /* a line is read as text after a newline, and its end is the LM's newline */
    f->eos = vocab_find(lv, "\n", 1);
    char err[512];
    if (!(f->adapter = rc_model_lm_new(f->lm.model, f->eos >= 0 ? f->eos : 0, width, err, sizeof err))) {
        snprintf(msg, len, "--lm %s: %s", f->path, err);
        fusion_free(f);
        return -1;
    }
    return 0;
}

/* The decoding options of eval that need no run: 0, or -1 with msg. */
static int check_decoding_options(const config *cli, char *msg, size_t len)
{
    if (cli->lm[0] && cli->beam < 1) {
        snprintf(msg, len, "--lm %s is fused into the beam search: give --beam W (e.g. --beam 10) too", cli->lm);
        return -1;
    }
    if (config_was_set(cli, "lm-alpha") && !cli->lm[0]) {
        snprintf(msg, len, "--lm-alpha weighs a language model: give --lm RUN too");
        return -1;
    }
    if (config_was_set(cli, "lm-beta") && cli->beam < 1) {
        snprintf(msg, len, "--lm-beta is a bonus of the beam search: give --beam W too");
        return -1;
    }
    return 0;
}

int cmd_eval(config *cli)
{
    task t;
    char msg[4096], pbuf[2200], why[160], kinds[128];
    const char *path;
    tool_set_threads(cli->threads, 1, why, sizeof why);
    if (strcmp(cli->split, "test") && strcmp(cli->split, "train") && strcmp(cli->split, "valid")) {
        fprintf(stderr, "recur eval: --split '%s' is not valid, test or train\n", cli->split);
        return 2;
    }
    if (check_decoding_options(cli, msg, sizeof msg) != 0) {
        fprintf(stderr, "recur eval: %s\n", msg);
        return 2;
    }
    char need_why[256];
    snprintf(need_why, sizeof need_why, "--beam decodes the transcription kinds' outputs (%s)",
             kinds_with(KIND_CTC, kinds, sizeof kinds));
    if (run_open(cli, &t, &path, pbuf, sizeof pbuf, 1, cli->beam > 0 ? KIND_CTC : 0, need_why, msg, sizeof msg) != 0) {
        fprintf(stderr, "recur eval: %s\n", msg);
        return 1;
    }
    int split = !strcmp(cli->split, "test") ? DATA_TEST : !strcmp(cli->split, "train") ? DATA_TRAIN : DATA_VALID;
    fusion fu;
    memset(&fu, 0, sizeof fu);
    char decoder[2600] = "greedy decoding";
    if (cli->beam > 0) {
        rc_ctc_beam_opts o = rc_ctc_beam_defaults();
        o.width = cli->beam;
        o.beta = (float)cli->lm_beta;
        if (cli->lm[0] && fusion_open(&fu, cli->lm, &t, cli->beam, msg, sizeof msg) != 0) {
            fprintf(stderr, "recur eval: %s\n", msg);
            task_free(&t);
            return 1;
        }
        if (fu.adapter) {
            o.lm = rc_model_lm_iface(fu.adapter);
            o.lm_map = fu.map;
            o.alpha = (float)cli->lm_alpha;
            o.lm_eos = fu.eos;
        }
        char err[512];
        t.beam = rc_ctc_beam_new(rc_model_options(t.model).output_size, &o, err, sizeof err);
        if (!t.beam) {
            fprintf(stderr, "recur eval: --beam %d: %s\n", cli->beam, err);
            fusion_free(&fu);
            task_free(&t);
            return 1;
        }
        int k = snprintf(decoder, sizeof decoder, "prefix beam search, width %d", cli->beam);
        if (fu.adapter)
            k += snprintf(decoder + k, sizeof decoder - (size_t)k, ", language model %s (alpha %g, beta %g)", fu.path,
                          cli->lm_alpha, cli->lm_beta);
        else if (cli->lm_beta != 0)
            snprintf(decoder + k, sizeof decoder - (size_t)k, ", beta %g", cli->lm_beta);
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
        if (t.kind->flags & KIND_CTC) printf(" [%s]", decoder);
        printf("\n");
    }
    rc_ctc_beam_free(t.beam);
    t.beam = NULL;
    fusion_free(&fu);
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
    if (run_open(cli, &t, &path, pbuf, sizeof pbuf, 0, 0, "", msg, sizeof msg) != 0) {
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
