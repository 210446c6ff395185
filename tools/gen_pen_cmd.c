/* recur generate pen: a data set of connected handwriting (pen trajectories from the
 * Hershey fonts, gen/) in the layout recur train reads (docs/DATA.md), and --plot: a
 * picture of some of its samples drawn by gnuplot. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "data_pen.h"
#include "numparse.h"
#include "recur.h"

typedef struct pen_cmd {
    rc_gen_pen_opts o;
    char out[2048], text[2048], faces[1024], hold_out[256], font_dir[2048];
    int plot;
} pen_cmd;

typedef struct pen_opt {
    const char *name;
    char type;       /* s string, i int, u seed, f float, r float range "A,B" (or one value: A,A) */
    size_t off, size;
    const char *help;
} pen_opt;

#define P(f) offsetof(pen_cmd, f), sizeof(((pen_cmd *)0)->f)
static const pen_opt OPTS[] = {
    { "out", 's', P(out), "DIR: the data set's folder (DIR/train, valid, test, test-face must not exist)" },
    { "count", 'i', P(o.count), "N: training samples [1000]" },
    { "valid", 'i', P(o.valid), "N: validation samples [100]" },
    { "test", 'i', P(o.test), "N: test samples (held-out text) [100]" },
    { "test-face", 'i', P(o.test_face), "N: samples of DIR/test-face (test's text in --hold-out-face) [as --test]" },
    { "seed", 'u', P(o.seed), "S: the seed; the same seed and options give the same files [1]" },
    { "faces", 's', P(faces), "LIST: comma-separated Hershey faces of train/valid/test "
                              "[scripts,scriptc,cursive,futural,rowmans,timesi]" },
    { "hold-out-face", 's', P(hold_out), "FACE: a face only DIR/test-face is written in (none by default)" },
    { "text", 's', P(text), "FILE|DIR: the text lines are cut from [/usr/share/games/fortunes]" },
    { "min-len", 'i', P(o.min_len), "N: shortest line, in characters [10]" },
    { "max-len", 'i', P(o.max_len), "N: longest line, in characters [40]" },
    { "font-dir", 's', P(font_dir), "DIR: where the .jhf files are [$RECUR_HERSHEY_DIR or /usr/share/hershey-fonts]" },
    { "plot", 'i', P(plot), "N: also draw the first N training samples (and N of test-face) into DIR/preview.png "
                            "(gnuplot) [0]" },
    { "slant", 'r', P(o.style.slant), "A,B: slant range, degrees [-15,15]" },
    { "rotate", 'f', P(o.style.rotate), "A: baseline rotation within +-A degrees [2]" },
    { "scale", 'r', P(o.style.scale), "A,B: output units per font unit [0.8,1.6]" },
    { "aspect", 'r', P(o.style.aspect), "A,B: width/height stretch [0.8,1.25]" },
    { "spacing", 'r', P(o.style.spacing), "A,B: extra letter spacing, font units [-1,3]" },
    { "word-space", 'r', P(o.style.word_space), "A,B: a space's width, times the face's [0.6,1.1]" },
    { "size-var", 'f', P(o.style.size_var), "X: letter height variation (relative sd) [0.06]" },
    { "drift", 'f', P(o.style.drift), "X: baseline drift amplitude, font units [3]" },
    { "jitter", 'f', P(o.style.jitter), "X: elastic jitter amplitude, font units [1.2]" },
    { "step", 'r', P(o.style.step), "A,B: mean point spacing along a stroke, font units [3,6]" },
    { "speed-var", 'f', P(o.style.speed_var), "X: variation of the point spacing along a stroke (log scale) [0.35]" },
    { "defer", 'f', P(o.style.defer), "P: probability that a word's i-dots and t-bars come after the word [0.5]" },
};
#define NOPT ((int)(sizeof OPTS / sizeof *OPTS))

static void usage(FILE *f)
{
    fprintf(f, "usage: recur generate pen --out DIR [options]\n\n"
               "Writes lines of text (cut from --text) as pen trajectories in the Hershey fonts\n"
               "(apt-get install hershey-fonts-data), each in a random style: DIR/train, DIR/valid and\n"
               "DIR/test hold NAME.pen + NAME.gt.txt pairs (docs/DATA.md), no valid or test text is in\n"
               "train; with --hold-out-face, DIR/test-face holds test's text in that face.\n\noptions:\n");
    for (int i = 0; i < NOPT; i++) fprintf(f, "  --%-15s %s\n", OPTS[i].name, OPTS[i].help);
}

static int parse_float(const char *s, size_t len, float *v)
{
    return num_parse_float(s, len, v) == 0 && isfinite(*v) ? 0 : -1;
}

static int set_opt(pen_cmd *c, const pen_opt *d, const char *val, char *msg, size_t len)
{
    char *p = (char *)c + d->off, *end;
    errno = 0;
    switch (d->type) {
    case 's':
        if (strlen(val) >= d->size) {
            snprintf(msg, len, "--%s: the value is longer than %zu characters", d->name, d->size - 1);
            return -1;
        }
        memcpy(p, val, strlen(val) + 1);
        return 0;
    case 'i': {
        long v = strtol(val, &end, 10);
        if (!*val || *end || errno || v < -1000000000L || v > 1000000000L) break;
        *(int *)(void *)p = (int)v;
        return 0;
    }
    case 'u': {
        unsigned long long v = strtoull(val, &end, 10);
        if (!*val || *end || errno || val[0] == '-') break;
        *(uint64_t *)(void *)p = v;
        return 0;
    }
    case 'f':
        if (parse_float(val, strlen(val), (float *)(void *)p)) break;
        return 0;
    case 'r': {
        float *r = (float *)(void *)p;
        const char *comma = strchr(val, ',');
        if (!comma) {
            if (parse_float(val, strlen(val), &r[0])) break;
            r[1] = r[0];
            return 0;
        }
        if (parse_float(val, (size_t)(comma - val), &r[0]) || parse_float(comma + 1, strlen(comma + 1), &r[1])) break;
        return 0;
    }
    default: break;
    }
    snprintf(msg, len, "--%s '%.100s': %s", d->name, val,
             d->type == 'i' ? "not an integer" : d->type == 'u' ? "not a non-negative integer"
             : d->type == 'r' ? "give a number or two numbers A,B" : "not a number");
    return -1;
}

static int parse_args(pen_cmd *c, int argc, char **argv, char *msg, size_t len)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            snprintf(msg, len, "unexpected argument '%.200s' (options start with --)", a);
            return -1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const pen_opt *d = NULL;
        for (int k = 0; k < NOPT && !d; k++)
            if (strlen(OPTS[k].name) == nl && !strncmp(OPTS[k].name, name, nl)) d = &OPTS[k];
        if (!d) {
            snprintf(msg, len, "unknown option '--%.*s'", (int)(nl < 200 ? nl : 200), name);
            return -1;
        }
        const char *val = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!val) {
            snprintf(msg, len, "--%s needs a value", d->name);
            return -1;
        }
        if (set_opt(c, d, val, msg, len)) return -1;
    }
    return 0;
}

/* ---- the picture ------------------------------------------------------------------------- */

/* Appends sample `path` (without .pen) as row `row` to the ink and pen-up files and its
 * transcript as a label to the script. */
static int plot_sample(const char *base, const char *label, int row, FILE *ink, FILE *up, FILE *gp, char *msg,
                       size_t len)
{
    char pen_path[2200], gt_path[2200], err[1024];
    snprintf(pen_path, sizeof pen_path, "%.2100s.pen", base);
    snprintf(gt_path, sizeof gt_path, "%.2100s.gt.txt", base);
    pen_file p;
    char *text = NULL;
    size_t tl;
    if (pen_read(&p, pen_path, err, sizeof err) || pen_transcript_read(gt_path, &text, &tl, err, sizeof err)) {
        snprintf(msg, len, "%s", err);
        if (p.n) pen_file_free(&p);
        return -1;
    }
    double x0 = INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < p.n; i++) {
        x0 = fmin(x0, p.x[i]);
        y0 = fmin(y0, p.y[i]);
        y1 = fmax(y1, p.y[i]);
    }
    double h = y1 > y0 ? y1 - y0 : 1, top = -1.6 * row;
    for (size_t i = 0; i < p.n; i++) {
        fprintf(ink, "%.4f %.4f\n", (p.x[i] - x0) / h, top - (p.y[i] - y0) / h);
        if (p.end[i]) fprintf(ink, "\n");
        if (p.end[i] && i + 1 < p.n)
            fprintf(up, "%.4f %.4f\n%.4f %.4f\n\n", (p.x[i] - x0) / h, top - (p.y[i] - y0) / h,
                    (p.x[i + 1] - x0) / h, top - (p.y[i + 1] - y0) / h);
    }
    fprintf(gp, "set label %d '%s (%zu points): ", row + 1, label, p.n);
    for (const char *s = text; *s; s++) {
        if (*s == '\'') fputc('\'', gp);   /* gnuplot's single-quoted strings double a quote */
        fputc(*s, gp);
    }
    fprintf(gp, "' at 0,%.3f left font ',10' noenhanced\n", top + 0.3);
    free(text);
    pen_file_free(&p);
    return 0;
}

/* DIR/preview.png: the first n samples of train/ and of test-face/ (when present). */
static int plot_preview(const char *dir, int n, int has_face, char *msg, size_t len)
{
    char ink_path[2200], up_path[2200], gp_path[2200], png[2200], base[2200];
    snprintf(ink_path, sizeof ink_path, "%.2100s/preview-ink.dat", dir);
    snprintf(up_path, sizeof up_path, "%.2100s/preview-up.dat", dir);
    snprintf(gp_path, sizeof gp_path, "%.2100s/preview.gp", dir);
    snprintf(png, sizeof png, "%.2100s/preview.png", dir);
    if (strchr(dir, '\'')) {
        snprintf(msg, len, "%.1500s: a folder with a quote (') cannot be plotted", dir);
        return -1;
    }
    FILE *ink = fopen(ink_path, "w"), *up = fopen(up_path, "w"), *gp = fopen(gp_path, "w");
    int rc = ink && up && gp ? 0 : -1, rows = 0;
    if (rc) snprintf(msg, len, "%.1500s: cannot write the plot's files: %s", dir, strerror(errno));
    for (int s = 0; s < 1 + has_face && rc == 0; s++)
        for (int i = 0; i < n && rc == 0; i++) {
            char num[16], label[64];
            int nl = snprintf(num, sizeof num, "%d", i);
            snprintf(label, sizeof label, "%s/%.*s%s", s ? "test-face" : "train", nl < 6 ? 6 - nl : 0, "000000", num);
            snprintf(base, sizeof base, "%.2100s/%s", dir, label);
            char probe[2300];
            snprintf(probe, sizeof probe, "%.2200s.pen", base);
            FILE *t = fopen(probe, "r");
            if (!t) break;   /* fewer samples than asked */
            fclose(t);
            rc = plot_sample(base, label, rows++, ink, up, gp, msg, len);
        }
    if (rc == 0) {
        int height = 60 + 95 * rows;
        fprintf(gp, "set terminal pngcairo size 1400,%d\nset output '%s'\n", height, png);
        fprintf(gp, "unset key\nunset border\nunset xtics\nunset ytics\nset size ratio -1\n");
        fprintf(gp, "set yrange [%.2f:0.6]\n", -1.6 * rows);
        fprintf(gp, "plot '%s' with lines lc rgb '#bbbbbb' dt 2, '%s' with lines lw 1.5 lc rgb '#102060'\n", up_path,
                ink_path);
    }
    if (ink && fclose(ink) != 0 && rc == 0) rc = -1;
    if (up && fclose(up) != 0 && rc == 0) rc = -1;
    if (gp && fclose(gp) != 0 && rc == 0) rc = -1;
    if (rc == 0 && rows == 0) {
        snprintf(msg, len, "%.1500s/train: no samples to plot", dir);
        rc = -1;
    }
    if (rc == 0 && run_gnuplot(gp_path, msg, len) != 0) rc = -1;
    if (rc == 0) snprintf(msg, len, "%.1500s", png);
    return rc;
}

int gen_pen_cmd(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    static pen_cmd c;
    memset(&c, 0, sizeof c);
    c.o = rc_gen_pen_defaults();
    char msg[2048];
    if (parse_args(&c, argc, argv, msg, sizeof msg)) {
        fprintf(stderr, "recur generate pen: %s\n(recur generate pen --help lists the options)\n", msg);
        return 2;
    }
    if (!c.out[0]) {
        fprintf(stderr, "recur generate pen: --out DIR is required (the data set's folder)\n");
        return 2;
    }
    if (c.plot < 0) {
        fprintf(stderr, "recur generate pen: --plot %d must be >= 0\n", c.plot);
        return 2;
    }
    c.o.out = c.out;
    c.o.text = c.text[0] ? c.text : NULL;
    c.o.faces = c.faces[0] ? c.faces : NULL;
    c.o.hold_out_face = c.hold_out[0] ? c.hold_out : NULL;
    c.o.font_dir = c.font_dir[0] ? c.font_dir : NULL;
    rc_gen_pen_stats st;
    rc_status rc = rc_gen_pen_dataset(&c.o, &st, msg, sizeof msg);
    if (rc != RC_OK) {
        fprintf(stderr, "recur generate pen: %s\n", msg);
        return rc == RC_ERR_ARG ? 2 : 1;
    }
    printf("text: %zu lines read, %zu words kept (%zu dropped: a character some face lacks), %zu distinct lines of "
           "%d..%d characters; %d characters drawn by every face\n", st.corpus_lines, st.words, st.words_skipped,
           st.distinct_lines, c.o.min_len, c.o.max_len, st.charset);
    static const char *const split[4] = { "train", "valid", "test", "test-face" };
    for (int k = 0; k < 4; k++)
        if (st.samples[k]) printf("%s/%s: %d samples, %d distinct texts\n", c.out, split[k], st.samples[k], st.texts[k]);
    printf("%zu points in all (%.1f per sample); %zu held-out lines dropped (a character no training line has); the "
           "options are in %s/gen-pen.txt\n", st.points,
           (double)st.points / (st.samples[0] + st.samples[1] + st.samples[2] + st.samples[3]), st.dropped_eval, c.out);
    if (c.plot > 0) {
        if (plot_preview(c.out, c.plot, st.samples[3] > 0, msg, sizeof msg) != 0) {
            fprintf(stderr, "recur generate pen: the data set is written; the picture failed: %s\n", msg);
            return 1;
        }
        printf("wrote %s\n", msg);
    }
    return 0;
}
