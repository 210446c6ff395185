/* What the processes of a run must agree on, as text (run_agree.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "model.h"
#include "run_agree.h"

uint64_t agree_fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; b && i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* The options that never change what is trained (run_agree.h says why for each). */
static const char *const exempt[] = { "threads", "progress", "metrics", "sample", "temperature",
                                      "out", "data", "valid", "test" };

static int is_exempt(const char *key, size_t n)
{
    for (size_t i = 0; i < sizeof exempt / sizeof *exempt; i++)
        if (strlen(exempt[i]) == n && !memcmp(exempt[i], key, n)) return 1;
    return 0;
}

/* Closes the text open_memstream writes to f and *buf (set by the close): the text, or
 * NULL with msg. */
static char *text_end(FILE *f, char **buf, char *msg, size_t len)
{
    if (fclose(f) == 0 && *buf) return *buf;
    free(*buf);
    snprintf(msg, len, "out of memory for the description of the run");
    return NULL;
}

/* A value as config_write gives it, to f: a decimal fraction in its shortest form that
 * reads back the same (0.05, not 0.050000000000000003), anything else as it is. */
static void put_value(FILE *f, const char *v, int n)
{
    char s[64], *end, out[40];
    if (n > 0 && n < (int)sizeof s && strcspn(v, ".eE") < (size_t)n) {
        memcpy(s, v, (size_t)n);
        s[n] = 0;
        double x = strtod(s, &end);
        for (int p = 1; !*end && p <= 17; p++) {
            snprintf(out, sizeof out, "%.*g", p, x);
            if (strtod(out, NULL) == x) {
                fputs(out, f);
                return;
            }
        }
    }
    fprintf(f, "%.*s", n, v);
}

char *agree_train_options(const config *c, char *msg, size_t len)
{
    char *all = config_to_text(c), *buf = NULL;
    size_t n = 0;
    FILE *f = all ? open_memstream(&buf, &n) : NULL;
    if (!f) {
        free(all);
        snprintf(msg, len, "out of memory for the description of the run");
        return NULL;
    }
    for (const char *l = all; *l;) {   /* "key = value" lines */
        size_t ln = strcspn(l, "\n"), k = strcspn(l, " \n");
        const char *v = l + k + (l[k] == ' ') * 3;   /* after " = " */
        if (!is_exempt(l, k) && v <= l + ln) {
            fprintf(f, "--%.*s\t", (int)k, l);
            put_value(f, v, (int)(l + ln - v));
            fputc('\n', f);
        }
        l += ln + (l[ln] == '\n');
    }
    struct stat st;
    int folder = c->data[0] && stat(c->data, &st) == 0 && S_ISDIR(st.st_mode);
    fprintf(f, "whether --data is a folder\t%s\n", folder ? "yes" : "no");
    free(all);
    return text_end(f, &buf, msg, len);
}

static uint64_t vocab_digest(const vocab *v)
{
    uint64_t h = AGREE_FNV_START;
    for (int i = 0; i < v->n; i++) {
        uint32_t l = (uint32_t)v->len[i];
        h = agree_fnv(agree_fnv(h, &l, sizeof l), v->tok[i], (size_t)v->len[i]);
    }
    return h;
}

/* A sequence set's every stored array, by its size. */
static uint64_t seqset_digest(const seqset *s)
{
    int head[4] = { s->n, s->F, s->K, (int)s->kind };
    uint64_t h = agree_fnv(AGREE_FNV_START, head, sizeof head);
    if (s->n <= 0 || !s->off) return h;
    size_t steps = s->off[s->n];
    h = agree_fnv(h, s->off, ((size_t)s->n + 1) * sizeof *s->off);
    if (s->x) h = agree_fnv(h, s->x, steps * (size_t)s->F * sizeof *s->x);
    if (s->xb) h = agree_fnv(h, s->xb, steps * (size_t)s->words * sizeof *s->xb);
    if (s->tok) h = agree_fnv(h, s->tok, steps * sizeof *s->tok);
    if (s->cls) h = agree_fnv(h, s->cls, (size_t)s->n * sizeof *s->cls);
    if (s->tag) h = agree_fnv(h, s->tag, steps * sizeof *s->tag);
    if (s->y) h = agree_fnv(h, s->y, steps * (size_t)s->K * sizeof *s->y);
    if (s->lab_off) {   /* transcripts (CTC) */
        h = agree_fnv(h, s->lab_off, ((size_t)s->n + 1) * sizeof *s->lab_off);
        if (s->lab) h = agree_fnv(h, s->lab, s->lab_off[s->n] * sizeof *s->lab);
    }
    return h;
}

void agree_data_lines(const task *t, const char *prefix, FILE *f)
{
    static const char *const part[2] = { "training data", "validation data" };
    static const int split[2] = { DATA_TRAIN, DATA_VALID };
    if (t->voc)
        fprintf(f, "%sthe vocabulary\t%d tokens, FNV-1a %016llx\n", prefix, t->voc->n,
                (unsigned long long)vocab_digest(t->voc));
    if (t->labels)
        fprintf(f, "%sthe labels\t%d, FNV-1a %016llx\n", prefix, t->labels->n, (unsigned long long)vocab_digest(t->labels));
    for (int k = 0; k < 2; k++) {
        int s = split[k];
        if (t->is_lm)
            fprintf(f, "%sthe %s (as loaded)\t%zu tokens, FNV-1a %016llx\n", prefix, part[k], t->text.n[s],
                    (unsigned long long)agree_fnv(AGREE_FNV_START, t->text.ids[s], t->text.n[s] * sizeof(int32_t)));
        else {
            const seqset *q = &t->seq.set[s];
            fprintf(f, "%sthe %s (as loaded)\t%d sequences of %zu steps, FNV-1a %016llx\n", prefix, part[k], q->n,
                    q->n > 0 && q->off ? q->off[q->n] : 0, (unsigned long long)seqset_digest(q));
        }
    }
}

/* A file's size and digest as a line's value. 0, or -1 with msg. */
static int file_line(FILE *f, const char *name, const char *path, char *msg, size_t len)
{
    FILE *in = fopen(path, "rb");
    if (!in) {
        snprintf(msg, len, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    uint64_t h = AGREE_FNV_START;
    unsigned long long total = 0;
    char buf[65536];
    for (size_t k; (k = fread(buf, 1, sizeof buf, in)) > 0; total += k) h = agree_fnv(h, buf, k);
    int bad = ferror(in);
    fclose(in);
    if (bad) {
        snprintf(msg, len, "%s: read failed", path);
        return -1;
    }
    fprintf(f, "%s\t%llu bytes, FNV-1a %016llx\n", name, total, (unsigned long long)h);
    return 0;
}

char *agree_train_model(const task *t, const char *ckpt, char *msg, size_t len)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) {
        snprintf(msg, len, "out of memory for the description of the run");
        return NULL;
    }
    int rc = 0;
    agree_data_lines(t, "", f);   /* first: a vocabulary of another size would show as shapes */
    if (t->cell_text)
        fprintf(f, "the cell's definition (from the checkpoint)\t%zu bytes, FNV-1a %016llx\n", strlen(t->cell_text),
                (unsigned long long)agree_fnv(AGREE_FNV_START, t->cell_text, strlen(t->cell_text)));
    else if (rc_cell_source(t->cell)) {   /* a .cell file or a library cell: its text as loaded */
        const char *src = rc_cell_source(t->cell);
        fprintf(f, "the cell's definition (--cell %s)\t%zu bytes, FNV-1a %016llx\n", t->cfg.cell, strlen(src),
                (unsigned long long)agree_fnv(AGREE_FNV_START, src, strlen(src)));
    }
    rc_model *m = t->model;
    int np = rc_model_param_count(m);
    fprintf(f, "parameter tensors\t%d\n", np);
    for (int i = 0; i < np; i++) {
        const rc_node *p = model_param_node(m, i);
        fprintf(f, "the shape of parameter %s\t", rc_model_param_name(m, i));
        for (int d = 0; d < rc_node_ndim(p); d++) fprintf(f, "%s%d", d ? " x " : "", rc_node_dim(p, d));
        fputc('\n', f);
    }
    if (rc == 0 && ckpt) rc = file_line(f, "the checkpoint (--resume)", ckpt, msg, len);
    char *text = text_end(f, &buf, msg, len);
    if (rc == 0) return text;
    free(text);
    return NULL;
}
