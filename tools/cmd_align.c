/* recur align: forced alignment (rc_ctc_align, the Viterbi path through the CTC states)
 * of each sample's transcript to a transcription run's outputs, printing the frames each
 * label occupies, as text or as tab-separated rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "task.h"
#include "threads.h"
#include "transcribe.h"

/* The part of a path after its last '/'. */
static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* --name matches a sample's file as printed, the file's name, or that name without its
 * last extension (NAME for NAME.pen or NAME.png). */
static int name_matches(const char *path, const char *want)
{
    const char *b = base_name(path), *dot = strrchr(b, '.');
    return !strcmp(path, want) || !strcmp(b, want) ||
           (dot && (size_t)(dot - b) == strlen(want) && !strncmp(b, want, (size_t)(dot - b)));
}

/* A field of a tab-separated row: backslash, tab, newline and carriage return escaped
 * (\\, \t, \n, \r), so every row has the same columns whatever a path holds. */
static void tsv_field(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\') fputs("\\\\", f);
        else if (c == '\t') fputs("\\t", f);
        else if (c == '\n') fputs("\\n", f);
        else if (c == '\r') fputs("\\r", f);
        else fputc(c, f);
    }
}

/* The samples to align: all of the split, its first `limit`, or the one named. *idx is
 * a new array of *n indices. 0, or -1 with msg. */
static int select_samples(const task *t, int split, const config *c, int32_t **idx, int *n, char *msg, size_t len)
{
    int total = t->seq.set[split].n;
    char *const *names = t->names[split];
    *idx = malloc((size_t)(total > 0 ? total : 1) * sizeof **idx);
    if (!*idx) {
        snprintf(msg, len, "out of memory for %d samples", total);
        return -1;
    }
    *n = 0;
    if (c->name[0]) {
        for (int i = 0; i < total && *n == 0; i++)
            if (names && names[i] && name_matches(names[i], c->name)) (*idx)[(*n)++] = i;
        if (*n == 0) {
            snprintf(msg, len, "--name '%s': no sample of the %s split (%d samples%s%s) has that name", c->name,
                     c->split, total, names && total > 0 ? ", the first " : "", names && total > 0 ? names[0] : "");
            free(*idx);
            *idx = NULL;
            return -1;
        }
        return 0;
    }
    *n = c->limit > 0 && c->limit < total ? c->limit : total;
    for (int i = 0; i < *n; i++) (*idx)[i] = i;
    return 0;
}

/* One sample's alignment, printed. labels are its transcript (shifted by one as stored). */
static void print_alignment(const task *t, FILE *f, int tsv, const char *name, int frames, const int32_t *labels, int L,
                         const int32_t *first, const int32_t *last, double score)
{
    if (!tsv) {
        char *text = transcribe_text(t, labels, L);
        fprintf(f, "%s: \"%s\", %d labels in %d frames, log p %.4f\n", name, text ? text : "?", L, frames, score);
        free(text);
    }
    for (int k = 0; k < L; k++) {
        size_t cl = 0;
        const char *ch = vocab_token(t->labels, labels[k] - 1, &cl);
        if (!ch) ch = "?", cl = 1;
        if (tsv) {
            tsv_field(f, name, strlen(name));
            fprintf(f, "\t%d\t", k);
            tsv_field(f, ch, cl);
            fprintf(f, "\t%d\t%d\t%.6f\n", first[k], last[k], score);
        } else
            fprintf(f, "  '%.*s'  %d-%d\n", (int)cl, ch, first[k], last[k]);
    }
}

/* Aligns and prints the samples idx[0..n) of the split in batches. 0, or -1 with msg. */
static int align_samples(task *t, int split, const int32_t *idx, int n, int tsv, char *msg, size_t len)
{
    const seqset *s = &t->seq.set[split];
    rc_model *m = t->model;
    int A = rc_model_options(m).output_size, Bmax = t->cfg.batch;
    batch_buf buf;
    memset(&buf, 0, sizeof buf);
    float *rows = NULL;           /* one sample's logits, [T_b, A] */
    int32_t *first = NULL, *last = NULL;
    size_t cap_rows = 0, cap_lab = 0;
    char err[1024];
    int rc = 0;
    rc_model_set_training(m, 0);
    rc_model_reset_state(m);
    for (int a = 0; rc == 0 && a < n; a += Bmax) {
        int nb = n - a < Bmax ? n - a : Bmax;
        rc_batch b;
        if (seqset_collate(s, idx + a, nb, &buf, &b, err, sizeof err) != 0) {
            snprintf(msg, len, "%s", err);
            rc = -1;
            break;
        }
        if (rc_model_forward(m, &b, NULL) != RC_OK) {
            snprintf(msg, len, "%s", rc_model_error(m));
            rc = -1;
            break;
        }
        const float *logits = rc_model_output(m);
        for (int j = 0; j < nb; j++) {
            int i = idx[a + j], T = b.lengths ? b.lengths[j] : b.T;
            int32_t L = b.label_lengths[j];
            const char *name = t->names[split] && t->names[split][i] ? t->names[split][i] : "?";
            size_t need = (size_t)T * (size_t)A;
            if (need > cap_rows) {
                float *r = realloc(rows, need * sizeof *rows);
                if (!r) {
                    snprintf(msg, len, "%s: out of memory for %d frames of %d classes", name, T, A);
                    rc = -1;
                    break;
                }
                rows = r;
                cap_rows = need;
            }
            if ((size_t)L > cap_lab || !first) {
                size_t c = L > 0 ? (size_t)L : 1;
                int32_t *f1 = realloc(first, c * sizeof *first), *f2 = f1 ? realloc(last, c * sizeof *last) : NULL;
                if (f1) first = f1;
                if (f2) last = f2;
                if (!f1 || !f2) {
                    snprintf(msg, len, "%s: out of memory for %d labels", name, L);
                    rc = -1;
                    break;
                }
                cap_lab = c;
            }
            for (int u = 0; u < T; u++)   /* step u of sample j is row u*B + j */
                memcpy(rows + (size_t)u * A, logits + ((size_t)u * b.B + j) * A, (size_t)A * sizeof *rows);
            const int32_t *lab = b.labels + (size_t)j * (size_t)b.S;
            double score = 0;
            if (rc_ctc_align(rows, T, 1, A, NULL, lab, L, &L, 0, first, last, NULL, &score, err, sizeof err) != RC_OK) {
                snprintf(msg, len, "%s: %s", name, err);
                rc = -1;
                break;
            }
            print_alignment(t, stdout, tsv, name, T, lab, L, first, last, score);
        }
    }
    rc_model_set_training(m, 1);
    batch_buf_free(&buf);
    free(rows);
    free(first);
    free(last);
    return rc;
}

int cmd_align(config *cli)
{
    char msg[4096], pbuf[2200], why[160], need_why[256];
    const char *path;
    tool_set_threads(cli->threads, 1, why, sizeof why);
    int split = !strcmp(cli->split, "test") ? DATA_TEST : !strcmp(cli->split, "train") ? DATA_TRAIN : DATA_VALID;
    if (strcmp(cli->split, "test") && strcmp(cli->split, "train") && strcmp(cli->split, "valid")) {
        fprintf(stderr, "recur align: --split '%s' is not valid, test or train\n", cli->split);
        return 2;
    }
    int tsv = !strcmp(cli->format, "tsv");
    if (!tsv && strcmp(cli->format, "text")) {
        fprintf(stderr, "recur align: --format '%s' is not text or tsv\n", cli->format);
        return 2;
    }
    if (cli->name[0] && cli->limit > 0) {
        fprintf(stderr, "recur align: --name picks one sample and --limit the first N: give one of them\n");
        return 2;
    }
    snprintf(need_why, sizeof need_why, "recur align aligns the transcripts of the transcription kinds (");
    for (int i = 0, k = 0; kind_at(i); i++)
        if (kind_at(i)->flags & KIND_CTC)
            snprintf(need_why + strlen(need_why), sizeof need_why - strlen(need_why), "%s%s", k++ ? ", " : "",
                     kind_at(i)->name);
    snprintf(need_why + strlen(need_why), sizeof need_why - strlen(need_why), ")");
    task t;
    if (run_open(cli, &t, &path, pbuf, sizeof pbuf, 1, KIND_CTC, need_why, msg, sizeof msg) != 0) {
        fprintf(stderr, "recur align: %s\n", msg);
        return 1;
    }
    int32_t *idx = NULL;
    int n = 0, rc = 0;
    if (t.seq.set[split].n == 0) {
        snprintf(msg, sizeof msg, "the %s split of the data is empty", cli->split);
        rc = -1;
    } else rc = select_samples(&t, split, cli, &idx, &n, msg, sizeof msg);
    if (rc == 0) {
        if (tsv) printf("sample\tlabel\tchar\tfirst\tlast\tlogp\n");
        else
            printf("# %s %s: %d samples; each label's first and last frame (0-based: frames are the %s)\n", path,
                   cli->split, n, t.kind->frame ? t.kind->frame : "steps");
        rc = align_samples(&t, split, idx, n, tsv, msg, sizeof msg);
    }
    if (rc != 0) fprintf(stderr, "recur align: %s\n", msg);
    if (fflush(stdout) != 0 && rc == 0) {
        fprintf(stderr, "recur align: writing the output failed\n");
        rc = -1;
    }
    free(idx);
    task_free(&t);
    return rc ? 1 : 0;
}
