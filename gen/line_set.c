/* A data set of printed lines (rc_gen_lines): the fonts, the text pool, held-out
 * lines, then each split's images. Sample i of split k has its own seed, a hash of
 * (seed, k, i), so any image can be made again alone and the splits do not depend on
 * each other's sizes. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "line_gen.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "fileio.h"
#include "pngio.h"

#define DEFAULT_TEXT "/usr/share/games/fortunes"
#define DEFAULT_HOLD_OUT "P052,URWGothic"

enum { SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST, SPLIT_TEST_FONTS, NSPLITS };
static const char *const split_name[NSPLITS] = {"train", "valid", "test", "test-fonts"};

void rc_gen_lines_defaults(rc_gen_lines_opts *o)
{
    memset(o, 0, sizeof *o);
    o->count = 1000;
    o->valid = o->test = -1;
    o->seed = 1;
    o->min_chars = 10;
    o->max_chars = 40;
    o->line.height = 32;
}

static uint64_t sample_seed(uint64_t seed, int split, int i)
{
    uint64_t x = seed ^ ((uint64_t)split << 56) ^ (uint64_t)(unsigned)i * 0x9e3779b97f4a7c15ull;
    rng_splitmix(&x);
    return rng_splitmix(&x);
}

/* Code points every font of the generator has: a bitmap filled on first use. */
typedef struct charset {
    const rc_line_gen *g;
    unsigned char *known, *ok;   /* [0x110000 / 8] bits */
} charset;

static int charset_ok(void *ctx, uint32_t cp)
{
    charset *c = ctx;
    if (cp >= 0x110000) return 0;
    unsigned bit = 1u << (cp & 7);
    if (!(c->known[cp >> 3] & bit)) {
        int all = 1;
        for (int f = 0; all && f < c->g->nfonts; f++) all = tr_has(c->g->font[f], cp);
        c->known[cp >> 3] |= (unsigned char)bit;
        if (all) c->ok[cp >> 3] |= (unsigned char)bit;
    }
    return (c->ok[cp >> 3] & bit) != 0;
}

/* Marks the characters of s in bits (0x110000 / 8 bytes). */
static void mark_chars(unsigned char *bits, const char *s)
{
    uint32_t cp;
    for (int k; (k = gen_utf8(s, &cp)) > 0; s += k) bits[cp >> 3] |= (unsigned char)(1u << (cp & 7));
}

static int all_marked(const unsigned char *bits, const char *s)
{
    uint32_t cp;
    for (int k; (k = gen_utf8(s, &cp)) > 0; s += k)
        if (!(bits[cp >> 3] & (1u << (cp & 7)))) return 0;
    return 1;
}

/* Creates dir (and not its parents) unless it exists; an existing one must be empty. */
static int make_dir(const char *dir, int must_be_empty, char *err, size_t errlen)
{
    char eb[128];
    if (mkdir(dir, 0777) == 0) return 0;
    int e = errno;
    if (e != EEXIST) return gen_fail(err, errlen, "%s: cannot create the folder: %s", dir, file_errstr(e, eb, sizeof eb));
    DIR *d = opendir(dir);
    if (!d) return gen_fail(err, errlen, "%s: exists and is not a folder", dir);
    int files = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) files++;
    closedir(d);
    if (must_be_empty && files)
        return gen_fail(err, errlen, "%s already holds files: give another --out, or remove it first", dir);
    return 0;
}

static int write_text(const char *path, const char *text, char *err, size_t errlen)
{
    char eb[128];
    FILE *f = fopen(path, "wb");
    if (!f) {
        int e = errno;
        return gen_fail(err, errlen, "%s: cannot create: %s", path, file_errstr(e, eb, sizeof eb));
    }
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    return bad ? gen_fail(err, errlen, "%s: write error", path) : 0;
}

/* Everything rc_gen_lines holds, freed in one place. */
typedef struct job {
    font_list train, hold;
    rc_line_gen *g;             /* train faces first, then held-out ones */
    text_pool pool;
    charset cs;
    unsigned char *train_chars;
    const char **texts[NSPLITS];
    int count[NSPLITS];
    char *path;                 /* a file path buffer */
    size_t path_cap;
    FILE *tsv;
} job;

static void job_free(job *j)
{
    font_list_free(&j->train);
    font_list_free(&j->hold);
    rc_gen_line_free(j->g);
    text_pool_free(&j->pool);
    free(j->cs.known);
    free(j->cs.ok);
    free(j->train_chars);
    for (int k = 0; k < NSPLITS; k++) free(j->texts[k]);
    free(j->path);
    if (j->tsv) fclose(j->tsv);
}

/* j->path = out/split/name + suffix */
static const char *jpath(job *j, const char *out, const char *split, const char *name, const char *suffix)
{
    snprintf(j->path, j->path_cap, "%s/%s%s%s%s", out, split ? split : "", split ? "/" : "", name, suffix);
    return j->path;
}

/* The texts of each split. Training takes the pool's first T distinct lines (T =
 * count when the pool leaves room for spares, fewer otherwise; sample i takes line
 * i mod T); valid and test take, in pool order, the lines after them whose characters
 * all occur in those training lines (so the training alphabet covers every split); a
 * line with another character is skipped. test-fonts shows the test lines. */
static int choose_texts(job *j, const rc_gen_lines_opts *o, int nv, int nt, char *err, size_t errlen)
{
    int n = j->pool.n, need = nv + nt;
    if (n < need + 1)
        return gen_fail(err, errlen, "%s: the text gives %d distinct lines of %d-%d characters; %d are needed (%d "
                        "valid + %d test held out, and training lines): give more text or fewer lines",
                        o->text ? o->text : DEFAULT_TEXT, n, o->min_chars, o->max_chars, need + 1, nv, nt);
    int T = j->count[SPLIT_TRAIN];
    if (T > n - 2 * need) T = n - 2 * need;   /* keep spares for lines with other characters */
    if (T < 1) T = n - need;
    for (int k = 0; k < NSPLITS; k++) j->texts[k] = malloc(((size_t)j->count[k] + 1) * sizeof *j->texts[k]);
    j->train_chars = calloc(0x110000 / 8, 1);
    for (int k = 0; k < NSPLITS; k++)
        if (!j->texts[k]) return gen_fail(err, errlen, "out of memory");
    if (!j->train_chars) return gen_fail(err, errlen, "out of memory");
    for (int i = 0; i < T; i++) mark_chars(j->train_chars, j->pool.line[i]);
    for (int i = 0; i < j->count[SPLIT_TRAIN]; i++) j->texts[SPLIT_TRAIN][i] = j->pool.line[i % T];
    int got = 0, skipped = 0;
    for (int i = T; i < n && got < need; i++) {
        const char *t = j->pool.line[i];
        if (!all_marked(j->train_chars, t)) {
            skipped++;
            continue;
        }
        if (got < nv) j->texts[SPLIT_VALID][got] = t;
        else j->texts[SPLIT_TEST][got - nv] = t;
        got++;
    }
    if (got < need)
        return gen_fail(err, errlen, "only %d held-out lines use just the characters of the %d distinct training "
                        "lines (%d had others); %d are needed: give more text, more training lines or fewer "
                        "valid/test lines", got, T, skipped, need);
    for (int i = 0; i < j->count[SPLIT_TEST_FONTS]; i++) j->texts[SPLIT_TEST_FONTS][i] = j->texts[SPLIT_TEST][i];
    return 0;
}

static int write_record(job *j, const rc_gen_lines_opts *o, int nlines, char *err, size_t errlen)
{
    char ft[64];
    tr_version(ft, sizeof ft);
    FILE *f = fopen(jpath(j, o->out, NULL, "generate.txt", ""), "wb");
    if (!f) return gen_fail(err, errlen, "%s: cannot create", j->path);
    fprintf(f, "# recur generate lines: the options and fonts of this data set (the same options give the same bytes)\n");
    fprintf(f, "seed %llu\ncount %d\nvalid %d\ntest %d\nheight %d\nclean %d\n", (unsigned long long)o->seed,
            j->count[SPLIT_TRAIN], j->count[SPLIT_VALID], j->count[SPLIT_TEST], o->line.height, o->line.clean);
    fprintf(f, "text %s\nchars %d-%d (%d distinct lines)\n", o->text ? o->text : DEFAULT_TEXT, o->min_chars,
            o->max_chars, nlines);
    fprintf(f, "renderer %s\n", ft);
    for (int i = 0; i < j->train.n; i++) fprintf(f, "font %s %s\n", j->train.name[i], j->train.path[i]);
    for (int i = 0; i < j->hold.n; i++) fprintf(f, "held-out-font %s %s\n", j->hold.name[i], j->hold.path[i]);
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    return bad ? gen_fail(err, errlen, "%s: write error", j->path) : 0;
}

/* Writes split k: 0, -1 (a file could not be written) or -2 (a line could not be rendered). */
static int write_split(job *j, const rc_gen_lines_opts *o, int k, char *err, size_t errlen)
{
    int n = j->count[k];
    if (n == 0) return 0;
    if (make_dir(jpath(j, o->out, split_name[k], "", ""), 1, err, errlen) != 0) return -1;
    j->tsv = fopen(jpath(j, o->out, split_name[k], "lines.tsv", ""), "wb");
    if (!j->tsv) return gen_fail(err, errlen, "%s: cannot create", j->path);
    fprintf(j->tsv, "name\tfont\n");
    int digits = 6;   /* 000000 ..., more digits beyond a million lines (at most 10) */
    for (int m = n - 1; m >= 1000000 && digits < 10; m /= 10) digits++;
    int first = k == SPLIT_TEST_FONTS ? j->train.n : 0, nf = k == SPLIT_TEST_FONTS ? j->hold.n : j->train.n;
    for (int i = 0; i < n; i++) {
        uint64_t s = sample_seed(o->seed, k, i);
        int font = first + (int)(s % (uint64_t)nf);
        char name[16];
        snprintf(name, sizeof name, "%0*d", digits & 15, i);
        unsigned char *px;
        int w, h;
        const char *text = j->texts[k][i];
        rc_status st = rc_gen_line_render(j->g, font, text, s, &px, &w, &h, err, errlen);
        if (st != RC_OK) {
            size_t l = err ? strlen(err) : 0;
            if (err && l + 1 < errlen)
                snprintf(err + l, errlen - l, " (rendering %s/%s/%s in %s)", o->out, split_name[k], name, j->g->name[font]);
            return -2;
        }
        int rc = png_write_gray(jpath(j, o->out, split_name[k], name, ".png"), px, w, h, err, errlen);
        free(px);
        if (rc != 0) return -1;
        char *t = malloc(strlen(text) + 2);
        if (!t) return gen_fail(err, errlen, "out of memory");
        sprintf(t, "%s\n", text);
        rc = write_text(jpath(j, o->out, split_name[k], name, ".gt.txt"), t, err, errlen);
        free(t);
        if (rc != 0) return -1;
        fprintf(j->tsv, "%s\t%s\n", name, j->g->name[font]);
        if (o->progress) o->progress(o->ctx, split_name[k], i + 1, n);
    }
    FILE *f = j->tsv;
    j->tsv = NULL;
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    return bad ? gen_fail(err, errlen, "%s/%s/lines.tsv: write error", o->out, split_name[k]) : 0;
}

rc_status rc_gen_lines(const rc_gen_lines_opts *o, char *err, size_t errlen)
{
    if (!o || !o->out || !*o->out) {
        gen_fail(err, errlen, "rc_gen_lines: no output folder");
        return RC_ERR_ARG;
    }
    if (o->count < 1) {
        gen_fail(err, errlen, "count %d: at least one training line", o->count);
        return RC_ERR_ARG;
    }
    if (o->min_chars < 1 || o->max_chars < o->min_chars) {
        gen_fail(err, errlen, "line lengths %d..%d: need 1 <= min <= max", o->min_chars, o->max_chars);
        return RC_ERR_ARG;
    }
    job j;
    memset(&j, 0, sizeof j);
    for (int k = 0; k < NSPLITS; k++) {   /* refuse before the work, and before creating anything */
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", o->out, split_name[k]);
        DIR *d = opendir(p);
        int files = 0;
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) files += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
        if (d) closedir(d);
        if (files) {
            gen_fail(err, errlen, "%s already holds files: give another --out, or remove it first", p);
            return RC_ERR_IO;
        }
    }
    int nv = o->valid >= 0 ? o->valid : (o->count / 10 > 0 ? o->count / 10 : 1);
    int nt = o->test >= 0 ? o->test : (o->count / 10 > 0 ? o->count / 10 : 1);
    rc_status st = RC_ERR_ARG;
    if (font_list_parse(&j.hold, o->hold_out ? o->hold_out : DEFAULT_HOLD_OUT, NULL, err, errlen) != 0 ||
        font_list_parse(&j.train, o->fonts, &j.hold, err, errlen) != 0)
        goto done;
    if (j.train.n == 0) {
        gen_fail(err, errlen, "no training fonts are left (fonts '%s' minus the held-out '%s')",
                 o->fonts ? o->fonts : "(the usual faces)", o->hold_out ? o->hold_out : DEFAULT_HOLD_OUT);
        goto done;
    }
    j.count[SPLIT_TRAIN] = o->count;
    j.count[SPLIT_VALID] = nv;
    j.count[SPLIT_TEST] = nt;
    j.count[SPLIT_TEST_FONTS] = j.hold.n ? nt : 0;
    int nf = j.train.n + j.hold.n;
    const char **all = malloc((size_t)nf * sizeof *all);
    if (!all) {
        gen_fail(err, errlen, "out of memory");
        st = RC_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < nf; i++) all[i] = i < j.train.n ? j.train.path[i] : j.hold.path[i - j.train.n];
    st = rc_gen_line_new(&j.g, all, nf, &o->line, err, errlen);
    free(all);
    if (st != RC_OK) goto done;
    for (int i = 0; i < nf; i++) {   /* the faces' names, for lines.tsv and messages */
        char *nm = strdup(i < j.train.n ? j.train.name[i] : j.hold.name[i - j.train.n]);
        if (nm) {
            free(j.g->name[i]);
            j.g->name[i] = nm;
        }
    }
    st = RC_ERR_NOMEM;
    j.cs.g = j.g;
    j.cs.known = calloc(0x110000 / 8, 1);
    j.cs.ok = calloc(0x110000 / 8, 1);
    j.path_cap = strlen(o->out) + 64;
    j.path = malloc(j.path_cap);
    if (!j.cs.known || !j.cs.ok || !j.path) {
        gen_fail(err, errlen, "out of memory");
        goto done;
    }
    st = RC_ERR_IO;
    if (!o->text && access(DEFAULT_TEXT, R_OK) != 0) {
        gen_fail(err, errlen, "%s, the default text, is missing: apt-get install fortunes, or give a text file",
                 DEFAULT_TEXT);
        goto done;
    }
    if (text_pool_load(&j.pool, o->text ? o->text : DEFAULT_TEXT, o->min_chars, o->max_chars, o->seed, charset_ok,
                       &j.cs, err, errlen) != 0)
        goto done;
    st = RC_ERR_ARG;
    if (choose_texts(&j, o, nv, nt, err, errlen) != 0) goto done;
    st = RC_ERR_IO;
    if (make_dir(o->out, 0, err, errlen) != 0) goto done;
    for (int k = 0; k < NSPLITS; k++)   /* refuse before writing anything */
        if (j.count[k] && make_dir(jpath(&j, o->out, split_name[k], "", ""), 1, err, errlen) != 0) goto done;
    if (write_record(&j, o, j.pool.n, err, errlen) != 0) goto done;
    for (int k = 0; k < NSPLITS; k++) {
        int rc = write_split(&j, o, k, err, errlen);
        if (rc != 0) {
            st = rc == -2 ? RC_ERR_ARG : RC_ERR_IO;
            goto done;
        }
    }
    st = RC_OK;
done:
    job_free(&j);
    return st;
}
