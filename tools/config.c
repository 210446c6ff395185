/* The option table and its parsers (see config.h). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "recur.h"

typedef enum { T_STR, T_INT, T_LONG, T_DBL, T_FLAG } opt_type;

/* The values a number option takes (a floating one is also finite): R_ANY any,
 * R_NONNEG >= 0, R_POS > 0, R_FRAC [0, 1), R_UNIT [0, 1], R_THREADS 0..rc_max_threads(). */
typedef enum { R_ANY, R_NONNEG, R_POS, R_FRAC, R_UNIT, R_THREADS } opt_range;

typedef struct opt {
    const char *key;
    opt_type type;
    size_t off, size;      /* field in config; size for strings */
    const char *def;
    unsigned cmds;
    const char *help;
    opt_range range;
} opt;

#define STR_(x) #x
#define STR(x) STR_(x)
#define F(field) offsetof(config, field), sizeof(((config *)0)->field)
#define TR CMD_TRAIN
#define EV CMD_EVAL
#define SA CMD_SAMPLE
#define PL CMD_PLOT
#define AL CMD_ALIGN

static const opt opts[] = {
    { "data", T_STR, F(data), "/usr/share/games/fortunes", TR | EV | AL, "training data: a file, or a folder of text files (default: the fortunes corpus)", R_ANY },
    { "valid", T_STR, F(valid), "", TR | EV | AL, "validation file (pen, lines: a folder; default: a split of --data)", R_ANY },
    { "test", T_STR, F(test), "", TR | EV | AL, "test file (pen, lines: a folder; default: a split of --data)", R_ANY },
    { "data-kind", T_STR, F(data_kind), "chars", TR, "chars | words | music | csv | classify | tags | pen | lines", R_ANY },
    { "valid-frac", T_DBL, F(valid_frac), "0.05", TR, "fraction of --data held out for validation", R_FRAC },
    { "test-frac", T_DBL, F(test_frac), "0", TR, "fraction of --data held out for test", R_FRAC },
    { "line-height", T_INT, F(line_height), "32", TR, "lines: image rows after resizing = features per frame (8..256)", R_ANY },
    { "max-vocab", T_INT, F(max_vocab), "0", TR, "words: keep the most frequent N (0: all)", R_NONNEG },
    { "cell", T_STR, F(cell), "lstm", TR, "a built-in (lstm, gru, gru-cho, rnn, rnn-relu, mut1, mut2, mut3), a cell of the library or a FILE.cell (recur info lists them)", R_ANY },
    { "hidden", T_INT, F(hidden), "128", TR, "hidden units per layer", R_ANY },
    { "layers", T_INT, F(layers), "2", TR, "stacked layers", R_ANY },
    { "embed", T_INT, F(embed), "0", TR, "embedding size for token data (0: = hidden)", R_NONNEG },
    { "bidirectional", T_FLAG, F(bidirectional), "0", TR, "bidirectional layers (not for language models)", R_ANY },
    { "dropout", T_DBL, F(dropout), "0", TR, "dropout on non-recurrent connections", R_FRAC },
    { "forget-bias", T_DBL, F(forget_bias), "1", TR, "LSTM forget-gate bias at init", R_ANY },
    { "init", T_STR, F(init), "default", TR, "default | uniform | glorot | orthogonal (recurrent matrices)", R_ANY },
    { "init-scale", T_DBL, F(init_scale), "0.1", TR, "a of U(-a, a) for --init uniform", R_NONNEG },
    { "seq", T_INT, F(seq), "50", TR | EV, "unroll length T (truncated BPTT window)", R_ANY },
    { "recompute", T_FLAG, F(recompute), "0", TR, "recompute mode: keep ~sqrt(T) step states, recompute the rest in the backward pass (long --seq)", R_ANY },
    { "batch", T_INT, F(batch), "50", TR | EV | AL, "batch size B", R_ANY },
    { "epochs", T_INT, F(epochs), "10", TR, "epochs", R_NONNEG },
    { "bucket", T_INT, F(bucket), "10", TR, "sequence sets: sort by length within chunks of N batches", R_ANY },
    { "loss-norm", T_STR, F(loss_norm), "steps", TR, "steps (mean per target; CTC: per label) | sequences (sum over steps / B; CTC: mean per sample) | sum", R_ANY },
    { "steps", T_LONG, F(steps), "0", TR, "stop once the run has made this many updates in all (0: no limit)", R_NONNEG },
    { "time-limit", T_DBL, F(time_limit), "0", TR, "stop once the run has trained this many seconds in all, a resume counting the time before it (0: no limit)", R_NONNEG },
    { "optim", T_STR, F(optim), "adam", TR, "sgd | adam | rmsprop | adagrad", R_ANY },
    { "lr", T_DBL, F(lr), "0.002", TR, "learning rate", R_POS },
    { "momentum", T_DBL, F(momentum), "0", TR, "SGD momentum", R_NONNEG },
    { "nesterov", T_FLAG, F(nesterov), "0", TR, "Nesterov momentum", R_ANY },
    { "beta1", T_DBL, F(beta1), "0.9", TR, "Adam beta1", R_FRAC },
    { "beta2", T_DBL, F(beta2), "0.999", TR, "Adam beta2", R_FRAC },
    { "rho", T_DBL, F(rho), "0.95", TR, "RMSprop decay", R_FRAC },
    { "eps", T_DBL, F(eps), "1e-8", TR, "optimiser epsilon", R_POS },
    { "weight-decay", T_DBL, F(weight_decay), "0", TR, "weight decay", R_NONNEG },
    { "decoupled", T_FLAG, F(decoupled), "0", TR, "decoupled weight decay (AdamW)", R_ANY },
    { "clip", T_DBL, F(clip), "5", TR, "global gradient-norm clip (0: off)", R_NONNEG },
    { "weight-noise", T_DBL, F(weight_noise), "0", TR, "std of Gaussian weight noise during training", R_NONNEG },
    { "schedule", T_STR, F(schedule), "constant", TR, "constant | step | cosine", R_ANY },
    { "decay-start", T_INT, F(decay_start), "5", TR, "step schedule: first decayed epoch", R_ANY },
    { "decay-factor", T_DBL, F(decay_factor), "0.5", TR, "step schedule: factor per epoch", R_POS },
    { "min-lr-frac", T_DBL, F(min_lr_frac), "0", TR, "cosine schedule: final lr / lr", R_UNIT },
    { "seed", T_LONG, F(seed), "1", TR | SA, "random seed (weights, data order, dropout, sampling)", R_ANY },
    { "threads", T_INT, F(threads), "0", TR | EV | SA | AL, "threads (0: the cores free at start, a resume keeping the run's count; at most " STR(RC_THREADS_PER_CORE) " per core online; RC_NUM_THREADS=0 means all cores)", R_THREADS },
    { "out", T_STR, F(out), "runs/default", TR | EV | SA | PL | AL, "run directory: checkpoints, metrics, plots", R_ANY },
    { "metrics", T_STR, F(metrics), "csv", TR, "csv | jsonl", R_ANY },
    { "save-every", T_LONG, F(save_every), "500", TR, "checkpoint every N updates (0: only per epoch)", R_NONNEG },
    { "eval-every", T_LONG, F(eval_every), "0", TR, "validate every N updates (0: every epoch)", R_NONNEG },
    { "patience", T_INT, F(patience), "0", TR, "early stop after N validations without improvement (0: off)", R_NONNEG },
    { "resume", T_FLAG, F(resume), "0", TR, "continue from <out>/last.ckpt", R_ANY },
    { "progress", T_INT, F(progress), "-1", TR, "live progress line: 1 on, 0 off, -1 when stderr is a terminal", R_ANY },
    { "checkpoint", T_STR, F(checkpoint), "", EV | SA | AL, "checkpoint file (default: <out>/best.ckpt)", R_ANY },
    { "split", T_STR, F(split), "valid", EV | AL, "valid | test | train", R_ANY },
    { "beam", T_INT, F(beam), "0", EV, "pen, lines: prefix beam search of width W instead of greedy decoding (0: greedy)", R_NONNEG },
    { "lm", T_STR, F(lm), "", EV, "with --beam: fuse a character language model: a recur train --data-kind chars run's folder (its best.ckpt, else last.ckpt) or checkpoint", R_ANY },
    { "lm-alpha", T_DBL, F(lm_alpha), "0.5", EV, "--lm's weight: hypotheses rank by log p_ctc + alpha log p_lm + beta characters", R_NONNEG },
    { "lm-beta", T_DBL, F(lm_beta), "0", EV, "with --beam: the bonus per character (offsets the LM's cost of each)", R_ANY },
    { "name", T_STR, F(name), "", AL, "align only this sample: its file as printed, the file's name, or that without its extension", R_ANY },
    { "limit", T_INT, F(limit), "0", AL, "align the split's first N samples (0: all)", R_NONNEG },
    { "format", T_STR, F(format), "text", AL, "text | tsv (a header, then a row per label: sample, label index, character, first and last frame, the alignment's log p)", R_ANY },
    { "prime", T_STR, F(prime), "", SA, "text to start the sample with", R_ANY },
    { "length", T_INT, F(length), "400", SA, "characters or words to generate", R_NONNEG },
    { "temperature", T_DBL, F(temperature), "0.8", SA, "sampling temperature (0: always the likeliest token)", R_NONNEG },
    { "sample", T_INT, F(sample), "300", TR, "after each epoch print a sample of this length (0: off)", R_NONNEG },
    { "plot-out", T_STR, F(plot_out), "", PL, "image to write (.png or .svg; default <out>/curves.png)", R_ANY },
    { "input", T_INT, F(input), "0", CMD_INSPECT | CMD_COMPARE, "input features per step of the inspected cells (0: = hidden)", R_ANY },
    { "dot", T_STR, F(dot), "", CMD_INSPECT, "write the step graph (T = 1, after the passes) as Graphviz DOT", R_ANY },
    { "dot-unrolled", T_STR, F(dot_unrolled), "", CMD_INSPECT, "write the unrolled graph (T = --dot-steps, after the passes) as DOT, a cluster per step", R_ANY },
    { "dot-steps", T_INT, F(dot_steps), "3", CMD_INSPECT, "unrolled length T of --dot-unrolled", R_ANY },
    { "render", T_STR, F(render), "svg", CMD_INSPECT, "svg | png | none: render the DOT files with Graphviz's dot when it is installed", R_ANY },
    { "gradient-flow", T_FLAG, F(gradient_flow), "0", CMD_INSPECT, "measure ||dL/dh_t|| and ||dh_T/dh_t|| over --seq steps for each of --cells", R_ANY },
    { "flow-loss", T_STR, F(flow_loss), "last", CMD_INSPECT, "--gradient-flow loss: last (squared error at the last step) | steps (at every step)", R_ANY },
    { "cells", T_STR, F(cells), "", CMD_INSPECT | CMD_COMPARE, "comma-separated cells (names or .cell files): --gradient-flow (default lstm,gru,rnn), compare", R_ANY },
    { "plot", T_STR, F(plot), "", CMD_INSPECT | CMD_COMPARE, "picture (.png or .svg) of the gradient flow, or of compare's loss curves", R_ANY },
    { "gradcheck", T_STR, F(gradcheck), "", CMD_INSPECT, "check the gradients of this cell (a name or FILE.cell) against central differences; exit 1 if one is wrong", R_ANY },
    { "train", T_STR, F(train), "", CMD_COMPARE, "compare: also train every cell on this data (same seed, same batches) for --steps updates", R_ANY },
};
#define NOPTS (sizeof opts / sizeof *opts)
_Static_assert(NOPTS <= sizeof ((config *)0)->set, "config.set has a flag per option: make it larger");

static void seterr(char *msg, size_t len, const char *fmt, const char *a, const char *b)
{
    snprintf(msg, len, fmt, a, b);
}

static const opt *find(const char *key)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(opts[i].key, key) == 0) return &opts[i];
    return NULL;
}

static int set_opt(config *c, const opt *o, const char *v, char *msg, size_t len)
{
    char *field = (char *)c + o->off, *end = NULL;
    errno = 0;
    switch (o->type) {
    case T_STR:
        if (strlen(v) >= o->size) {
            seterr(msg, len, "--%s: value '%.60s' is too long", o->key, v);
            return -1;
        }
        strcpy(field, v);
        return 0;
    case T_INT:
    case T_LONG:
    case T_FLAG: {
        long x;
        if (o->type == T_FLAG && (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))) x = 1;
        else if (o->type == T_FLAG && (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"))) x = 0;
        else {
            x = strtol(v, &end, 10);
            if (!*v || *end || errno || (o->type != T_LONG && (x < -2147483647L || x > 2147483647L))) {
                seterr(msg, len, "--%s: '%s' is not an integer", o->key, v);
                return -1;
            }
        }
        if (o->type == T_LONG) *(long *)field = x;
        else *(int *)field = (int)x;
        return 0;
    }
    case T_DBL: {
        double x = strtod(v, &end);
        if (!*v || *end || errno || x != x) {
            seterr(msg, len, "--%s: '%s' is not a number", o->key, v);
            return -1;
        }
        *(double *)field = x;
        return 0;
    }
    }
    return -1;
}

/* The value set for o within its range (and finite). 0, or -1 with msg naming the
 * option, the value as given and the range. */
static int check_range(const config *c, const opt *o, const char *v, char *msg, size_t len)
{
    const char *field = (const char *)c + o->off;
    double x = o->type == T_DBL ? *(const double *)field : o->type == T_LONG ? (double)*(const long *)field
             : (double)*(const int *)field;
    const char *want = NULL;
    char buf[96];
    if (o->type == T_DBL && !isfinite(x)) want = "be a finite number";
    else switch (o->range) {
    case R_ANY: break;
    case R_NONNEG: if (!(x >= 0)) want = "be >= 0"; break;
    case R_POS: if (!(x > 0)) want = "be > 0"; break;
    case R_FRAC: if (!(x >= 0 && x < 1)) want = "be in [0, 1)"; break;
    case R_UNIT: if (!(x >= 0 && x <= 1)) want = "be in [0, 1]"; break;
    case R_THREADS:
        if (x < 0 || x > rc_max_threads()) {
            snprintf(buf, sizeof buf, "be 0 (all cores) .. %d (%d per core online: more only wait for a core)",
                     rc_max_threads(), RC_THREADS_PER_CORE);
            want = buf;
        }
        break;
    }
    if (!want) return 0;
    snprintf(msg, len, "--%s %.60s must %s", o->key, v, want);
    return -1;
}

/* A value given by the user (command line, config file): parsed and within range. */
static int set_given(config *c, const opt *o, const char *v, char *msg, size_t len)
{
    if (set_opt(c, o, v, msg, len) != 0 || check_range(c, o, v, msg, len) != 0) return -1;
    c->set[o - opts] = 1;
    return 0;
}

void config_defaults(config *c)
{
    memset(c, 0, sizeof *c);
    char msg[128];
    for (size_t i = 0; i < NOPTS; i++) set_opt(c, &opts[i], opts[i].def, msg, sizeof msg);
    _Static_assert(sizeof opts / sizeof *opts <= sizeof ((config *)0)->set, "config.set too small");
}

int config_set(config *c, const char *key, const char *value, char *msg, size_t len)
{
    const opt *o = find(key);
    if (!o) {
        seterr(msg, len, "unknown option '%s'%s", key, " (see --help)");
        return -1;
    }
    return set_given(c, o, value, msg, len);
}

int config_check_env(char *msg, size_t len)
{
    const char *e = getenv("RC_NUM_THREADS");
    if (!e) return 0;
    char *end = NULL;
    errno = 0;
    long n = strtol(e, &end, 10);
    if (!*e || *end || errno || n < 0 || n > rc_max_threads()) {
        snprintf(msg, len, "RC_NUM_THREADS='%.60s' must be a thread count 0 (all cores) .. %d (%d per core online)", e,
                 rc_max_threads(), RC_THREADS_PER_CORE);
        return -1;
    }
    return 0;
}

int config_set_stored(config *c, const char *key, const char *value, char *msg, size_t len)
{
    const opt *o = find(key);
    if (!o) {
        seterr(msg, len, "unknown option '%s'%s", key, "");
        return -1;
    }
    if (set_opt(c, o, value, msg, len) != 0) return -1;
    c->set[o - opts] = 1;
    return 0;
}

int config_was_set(const config *c, const char *key)
{
    const opt *o = find(key);
    return o ? c->set[o - opts] : 0;
}

void config_keep_given(config *c, const char *const *keys, int n)
{
    for (size_t i = 0; i < NOPTS; i++) {
        int keep = 0;
        for (int k = 0; k < n && !keep; k++) keep = !strcmp(opts[i].key, keys[k]);
        if (!keep) c->set[i] = 0;
    }
}

void config_overlay(config *dst, const config *src)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (src->set[i]) {
            memcpy((char *)dst + opts[i].off, (const char *)src + opts[i].off, opts[i].size);
            dst->set[i] = 1;
        }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

int config_read_file(config *c, const char *path, char *msg, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(msg, len, "%s: cannot open config file: %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int ln = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        ln++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(msg, len, "%s:%d: line too long", path, ln);
            rc = -1;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *s = trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(msg, len, "%s:%d: expected 'key = value', got '%.60s'", path, ln, s);
            rc = -1;
            break;
        }
        *eq = 0;
        char *k = trim(s), *v = trim(eq + 1), sub[512];
        if (!strcmp(k, "config")) {
            snprintf(msg, len, "%s:%d: a config file cannot include another", path, ln);
            rc = -1;
        } else if (config_set(c, k, v, sub, sizeof sub) != 0) {
            snprintf(msg, len, "%s:%d: %s", path, ln, sub);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

int config_parse_args(config *c, int argc, char **argv, int first, char *msg, size_t len)
{
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            seterr(msg, len, "unexpected argument '%s'%s", a, " (options start with --)");
            return -1;
        }
        char key[128];
        const char *val = NULL, *eq = strchr(a + 2, '=');
        size_t kl = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (kl >= sizeof key) {
            seterr(msg, len, "option '%.60s' is too long%s", a, "");
            return -1;
        }
        memcpy(key, a + 2, kl);
        key[kl] = 0;
        if (eq) val = eq + 1;
        if (!strcmp(key, "config")) {
            if (!val && i + 1 < argc) val = argv[++i];
            if (!val) {
                seterr(msg, len, "--config needs a file%s%s", "", "");
                return -1;
            }
            if (config_read_file(c, val, msg, len) != 0) return -1;
            continue;
        }
        const opt *o = find(key);
        if (!o) {
            seterr(msg, len, "unknown option '--%s'%s", key, " (see --help)");
            return -1;
        }
        if (!val && o->type == T_FLAG) val = "1";
        if (!val && i + 1 < argc) val = argv[++i];
        if (!val) {
            seterr(msg, len, "--%s needs a value%s", key, "");
            return -1;
        }
        if (set_given(c, o, val, msg, len) != 0) return -1;
    }
    return 0;
}

void config_usage(FILE *f, unsigned which)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        if (!(o->cmds & which)) continue;
        char k[64];
        snprintf(k, sizeof k, "--%s%s", o->key, o->type == T_FLAG ? "" : " V");
        fprintf(f, "  %-22s %s", k, o->help);
        if (o->type != T_FLAG && o->def[0]) fprintf(f, " [%s]", o->def);
        fputc('\n', f);
    }
    fprintf(f, "  %-22s %s\n", "--config FILE", "read 'key = value' lines (keys as above, without --)");
}

void config_write(const config *c, FILE *f)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const opt *o = &opts[i];
        const char *field = (const char *)c + o->off;
        fprintf(f, "%s = ", o->key);
        switch (o->type) {
        case T_STR: fprintf(f, "%s\n", field); break;
        case T_INT:
        case T_FLAG: fprintf(f, "%d\n", *(const int *)field); break;
        case T_LONG: fprintf(f, "%ld\n", *(const long *)field); break;
        case T_DBL: fprintf(f, "%.17g\n", *(const double *)field); break;
        }
    }
}

char *config_to_text(const config *c)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return NULL;
    config_write(c, f);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
