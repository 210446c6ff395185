/* Whole data sets of pen trajectories (rc_gen_pen_dataset): text lines cut from a
 * corpus, split so that held-out text is held out, rendered and written.
 *
 * The split: the distinct lines, shuffled by the seed; the first K (about 1.5 times
 * what valid and test need, at most half of them) are the held-out candidates, the
 * rest the training pool. The pool is reordered so that its first lines hold every
 * character it has (each line adding a new character moves to the front, in order),
 * and training sample i writes pool line i mod min(count, |pool|); pool lines beyond
 * count are held-out candidates too. A candidate holding a character no training
 * sample writes is dropped (the loader refuses a character outside the training
 * alphabet); the others fill test, then valid. test-face writes test's
 * lines in the held-out face. Each sample's face and style come from its own seed,
 * mixed from (seed, split, index), so a sample does not depend on the others. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fileio.h"
#include "hershey.h"
#include "gen_io.h"
#include "pen_internal.h"
#include "pen_text.h"
#include "rng.h"

/* The faces whose glyphs for ASCII letters are Latin letters; the others (greek,
 * cyrillic, japanese, symbols, music ...) draw other things at those codes. */
static const char *const LATIN[] = { "scripts", "scriptc", "cursive", "futural", "futuram", "rowmans", "rowmand",
                                     "rowmant", "timesr", "timesrb", "timesi", "timesib", "gothiceng", "gothicger",
                                     "gothicita", "gothgbt", "gothgrt", "gothitt" };
#define NLATIN ((int)(sizeof LATIN / sizeof *LATIN))
#define DEFAULT_FACES "scripts,scriptc,cursive,futural,rowmans,timesi"
#define DEFAULT_TEXT "/usr/share/games/fortunes"
enum { SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST, SPLIT_FACE, NSPLIT };
static const char *const SPLIT_DIR[NSPLIT] = { "train", "valid", "test", "test-face" };

rc_gen_pen_opts rc_gen_pen_defaults(void)
{
    rc_gen_pen_opts o;
    memset(&o, 0, sizeof o);
    o.count = 1000;
    o.valid = o.test = 100;
    o.min_len = 10;
    o.max_len = 40;
    o.seed = 1;
    o.style = rc_gen_pen_style_default();
    return o;
}

static int is_path(const char *face) { return strchr(face, '/') || (strlen(face) > 4 && !strcmp(face + strlen(face) - 4, ".jhf")); }

/* A face by name: a Latin face of the list, or any .jhf path. NULL with a message. */
static rc_hershey_font *load_face(const char *name, const char *dir, char *err, size_t errlen)
{
    int known = is_path(name);
    for (int i = 0; i < NLATIN && !known; i++) known = !strcmp(name, LATIN[i]);
    if (!known) {
        char list[512] = "";
        for (int i = 0; i < NLATIN; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", LATIN[i]);
        gen_fail(err, errlen, "face '%.100s': not a Latin Hershey face (one of: %s; or a .jhf path); the others draw "
             "other scripts or symbols at the codes of ASCII letters", name, list);
        return NULL;
    }
    return rc_hershey_load(name, dir, err, errlen);
}

typedef struct faces { rc_hershey_font **f; int n; } faces;

static void faces_free(faces *fs)
{
    for (int i = 0; i < fs->n; i++) rc_hershey_free(fs->f[i]);
    free(fs->f);
    memset(fs, 0, sizeof *fs);
}

/* The comma-separated list into fs. 0, or -1 with a message. */
static int load_faces(faces *fs, const char *list, const char *dir, char *err, size_t errlen)
{
    memset(fs, 0, sizeof *fs);
    char *copy = strdup(list);
    size_t cap = 1;
    for (const char *c = list; *c; c++) cap += *c == ',';
    fs->f = calloc(cap, sizeof *fs->f);
    if (!copy || !fs->f) {
        free(copy);
        gen_fail(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        rc_hershey_font *f = load_face(tok, dir, err, errlen);
        if (!f) {
            rc = -1;
            break;
        }
        fs->f[fs->n++] = f;
        for (int i = 0; i + 1 < fs->n; i++)
            if (!strcmp(fs->f[i]->name, f->name)) {
                gen_fail(err, errlen, "faces: %s given twice", f->name);
                rc = -1;
            }
    }
    if (rc == 0 && (fs->n == 0 || list[0] == ',' || list[strlen(list) - 1] == ',' || strstr(list, ",,"))) {
        gen_fail(err, errlen, "faces '%.100s': give face names separated by single commas", list);
        rc = -1;
    }
    free(copy);
    if (rc) faces_free(fs);
    return rc;
}

/* The seed of sample i of a split, and a second draw (the face). */
static uint64_t sample_seed(uint64_t seed, int split, int i, uint64_t *second)
{
    uint64_t x = seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(split + 1)) ^ ((uint64_t)(unsigned)i << 20);
    x = rng_splitmix(&x) + (uint64_t)(unsigned)i;
    uint64_t s = rng_splitmix(&x);
    *second = rng_splitmix(&x);
    return s;
}

/* Characters of a line into seen[128]. */
static void mark_chars(const char *s, unsigned char seen[128])
{
    for (; *s; s++) seen[(unsigned char)*s & 127] = 1;
}

static int covered(const char *s, const unsigned char seen[128])
{
    for (; *s; s++)
        if (!seen[(unsigned char)*s & 127]) return 0;
    return 1;
}

/* Creates dir; an existing folder is fine when may_exist. 0, or -1 with a message. */
static int make_dir(const char *dir, int may_exist, char *err, size_t errlen)
{
    char eb[128];
    if (mkdir(dir, 0777) == 0) return 0;
    int e = errno;
    struct stat st;
    if (e == EEXIST && may_exist && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    if (e == EEXIST)
        file_fail(err, errlen, dir, "already exists: a data set is never written over another; remove it or give "
                  "another --out");
    else file_fail(err, errlen, dir, "cannot create: %s", file_errstr(e, eb, sizeof eb));
    return -1;
}

/* The plan of the data set: lines per split. */
typedef struct plan {
    pen_lines all;               /* the distinct lines (owns the strings) */
    char **train, **valid, **test;   /* borrowed from all */
    size_t ntrain, nvalid, ntest;
} plan;

static void plan_free(plan *p)
{
    pen_lines_free(&p->all);
    free(p->train);
    free(p->valid);
    free(p->test);
    memset(p, 0, sizeof *p);
}

static int make_plan(plan *p, const rc_gen_pen_opts *o, const char *text, const unsigned char ok[128],
                     rc_gen_pen_stats *st, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    rng_t r;
    rng_seed(&r, o->seed ^ 0x7465787400000000ull);   /* "text": apart from the samples' draws */
    pen_text_stats ts;
    if (pen_text_lines(text, ok, o->min_len, o->max_len, &r, &p->all, &ts, err, errlen)) return -1;
    st->corpus_lines = ts.lines;
    st->words = ts.words;
    st->words_skipped = ts.skipped;
    pen_lines_unique(&p->all);
    size_t D = p->all.n;
    st->distinct_lines = D;
    for (size_t i = D; i > 1; i--) {   /* Fisher-Yates */
        size_t j = (size_t)(rng_next(&r) % i);
        char *t = p->all.s[i - 1];
        p->all.s[i - 1] = p->all.s[j];
        p->all.s[j] = t;
    }
    size_t want = (size_t)o->valid + (size_t)o->test;
    size_t K = want + want / 2 + 32;
    if (K > D / 2) K = D / 2;
    size_t np = D - K;
    p->train = malloc((np ? np : 1) * sizeof *p->train);
    p->valid = malloc((size_t)o->valid * sizeof *p->valid);
    p->test = malloc((size_t)o->test * sizeof *p->test);
    if (!p->train || !p->valid || !p->test) {
        gen_fail(err, errlen, "out of memory");
        return -1;
    }
    /* the pool, lines adding a character first */
    unsigned char seen[128] = { 0 };
    size_t front = 0;
    for (size_t i = K; i < D; i++)
        if (!covered(p->all.s[i], seen)) {
            mark_chars(p->all.s[i], seen);
            p->train[front++] = p->all.s[i];
        }
    size_t back = front;
    memset(seen, 0, sizeof seen);
    for (size_t i = K; i < D; i++) {   /* the rest in order (those not moved to the front) */
        if (!covered(p->all.s[i], seen)) mark_chars(p->all.s[i], seen);
        else p->train[back++] = p->all.s[i];
    }
    /* the characters the training samples write */
    memset(seen, 0, sizeof seen);
    size_t used = np < (size_t)o->count ? np : (size_t)o->count;
    for (size_t i = 0; i < used; i++) mark_chars(p->train[i], seen);
    /* held-out candidates: the first K lines, then the pool's lines no training sample writes */
    for (size_t i = 0; i < K + (np - used) && (p->ntest < (size_t)o->test || p->nvalid < (size_t)o->valid); i++) {
        char *line = i < K ? p->all.s[i] : p->train[used + (i - K)];
        if (!covered(line, seen)) st->dropped_eval++;
        else if (p->ntest < (size_t)o->test) p->test[p->ntest++] = line;
        else p->valid[p->nvalid++] = line;
    }
    p->ntrain = used;
    if (used == 0 || p->ntest == 0 || p->nvalid == 0) {
        gen_fail(err, errlen, "%s: too little text: %zu distinct lines of %d..%d characters (%zu words kept, %zu dropped "
             "for a character some face lacks) give %zu training lines and %zu test and %zu validation lines holding "
             "only characters of the training lines; each split needs one (give more text, more training samples, or "
             "other --min-len/--max-len)", text, D, o->min_len, o->max_len, ts.words, ts.skipped, used, p->ntest,
             p->nvalid);
        return -1;
    }
    return 0;
}

/* Writes out/gen-pen.txt: what made the data set. */
static int write_record(const rc_gen_pen_opts *o, const char *faces, const char *text, const rc_gen_pen_stats *st,
                        char *err, size_t errlen)
{
    size_t l = strlen(o->out) + 16;
    char *path = malloc(l), eb[128];
    if (!path) {
        gen_fail(err, errlen, "out of memory");
        return -1;
    }
    snprintf(path, l, "%s/gen-pen.txt", o->out);
    FILE *f = fopen(path, "w");
    if (!f) {
        file_fail(err, errlen, path, "cannot create: %s", file_errstr(errno, eb, sizeof eb));
        free(path);
        return -1;
    }
    const rc_pen_style *s = &o->style;
    fprintf(f, "# recur generate pen: the options and counts of this data set (recur %s)\n", rc_version());
    fprintf(f, "seed %llu\nfaces %s\nhold_out_face %s\ntext %s\nfont_dir %s\n", (unsigned long long)o->seed, faces,
            o->hold_out_face ? o->hold_out_face : "-", text, o->font_dir ? o->font_dir : rc_hershey_dir());
    fprintf(f, "count %d\nvalid %d\ntest %d\ntest_face %d\nmin_len %d\nmax_len %d\n", o->count, o->valid, o->test,
            st->samples[SPLIT_FACE], o->min_len, o->max_len);
    fprintf(f, "slant %g %g\nrotate %g\nscale %g %g\naspect %g %g\nspacing %g %g\nword_space %g %g\nsize_var %g\n",
            s->slant[0], s->slant[1], s->rotate, s->scale[0], s->scale[1], s->aspect[0], s->aspect[1], s->spacing[0],
            s->spacing[1], s->word_space[0], s->word_space[1], s->size_var);
    fprintf(f, "drift %g\njitter %g\nstep %g %g\nspeed_var %g\ndefer %g\n", s->drift, s->jitter, s->step[0],
            s->step[1], s->speed_var, s->defer);
    fprintf(f, "corpus_lines %zu\nwords %zu\nwords_skipped %zu\ndistinct_lines %zu\ncharset %d\ndropped_eval %zu\n",
            st->corpus_lines, st->words, st->words_skipped, st->distinct_lines, st->charset, st->dropped_eval);
    for (int k = 0; k < NSPLIT; k++)
        fprintf(f, "%s %d samples, %d texts\n", SPLIT_DIR[k], st->samples[k], st->texts[k]);
    fprintf(f, "points %zu\n", st->points);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        file_fail(err, errlen, path, "cannot write");
        free(path);
        return -1;
    }
    free(path);
    return 0;
}

static int check_opts(const rc_gen_pen_opts *o, char *err, size_t errlen)
{
    if (!o->out || !*o->out) gen_fail(err, errlen, "no output folder (out)");
    else if (o->count < 1 || o->valid < 1 || o->test < 1)
        gen_fail(err, errlen, "count %d, valid %d, test %d: each must be >= 1", o->count, o->valid, o->test);
    else if (o->hold_out_face && o->test_face < 0) gen_fail(err, errlen, "test_face %d must be >= 0 (0: as test)", o->test_face);
    else if (o->min_len < 1 || o->max_len < o->min_len || o->max_len > 100000)
        gen_fail(err, errlen, "line lengths %d..%d: need 1 <= min_len <= max_len <= 100000", o->min_len, o->max_len);
    else if (o->hold_out_face && !*o->hold_out_face) gen_fail(err, errlen, "an empty hold-out face name");
    else return pen_style_check(&o->style, err, errlen);
    return -1;
}

/* Renders and writes the samples of one split. */
static rc_status write_split(const rc_gen_pen_opts *o, int split, char **lines, size_t nlines, int count,
                             rc_hershey_font **fs, int nf, rc_gen_pen_stats *st, char *err, size_t errlen)
{
    size_t l = strlen(o->out) + 32;
    char *dir = malloc(l), *base = malloc(l + 32);
    rc_status rc = dir && base ? RC_OK : RC_ERR_NOMEM;
    if (rc) gen_fail(err, errlen, "out of memory");
    else {
        snprintf(dir, l, "%s/%s", o->out, SPLIT_DIR[split]);
        if (make_dir(dir, 0, err, errlen)) rc = RC_ERR_IO;
    }
    char last[16];   /* names as wide as the last one's number, at least 6 digits */
    size_t width = (size_t)snprintf(last, sizeof last, "%d", count - 1);
    if (width < 6) width = 6;
    rc_pen_traj t = { 0 };
    for (int i = 0; rc == RC_OK && i < count; i++) {
        uint64_t second, seed = sample_seed(o->seed, split, i, &second);
        const char *text = lines[(size_t)i % nlines];
        rc_hershey_font *f = fs[second % (uint64_t)nf];
        rc = rc_gen_pen_render(f, text, &o->style, seed, &t, err, errlen);
        if (rc == RC_OK) {
            char num[16];
            size_t nl = (size_t)snprintf(num, sizeof num, "%d", i);
            snprintf(base, l + 32, "%s/%.*s%s", dir, (int)(width - nl), "0000000000", num);
            char comment[300];
            snprintf(comment, sizeof comment, "face %.200s, seed %llu", f->name, (unsigned long long)seed);
            rc = rc_gen_pen_write(base, &t, text, comment, err, errlen);
        }
        st->points += t.n;
    }
    rc_pen_traj_free(&t);
    if (rc == RC_OK) {
        st->samples[split] = count;
        st->texts[split] = (int)((size_t)count < nlines ? (size_t)count : nlines);
    }
    free(dir);
    free(base);
    return rc;
}

rc_status rc_gen_pen_dataset(const rc_gen_pen_opts *o, rc_gen_pen_stats *st_out, char *err, size_t errlen)
{
    rc_gen_pen_stats st;
    memset(&st, 0, sizeof st);
    if (st_out) *st_out = st;
    if (!o) {
        gen_fail(err, errlen, "rc_gen_pen_dataset: no options");
        return RC_ERR_ARG;
    }
    if (check_opts(o, err, errlen)) return RC_ERR_ARG;
    const char *face_list = o->faces && *o->faces ? o->faces : DEFAULT_FACES;
    const char *text = o->text && *o->text ? o->text : DEFAULT_TEXT;
    faces fs;
    if (load_faces(&fs, face_list, o->font_dir, err, errlen)) return RC_ERR_ARG;
    rc_hershey_font *held = NULL;
    if (o->hold_out_face) {
        held = load_face(o->hold_out_face, o->font_dir, err, errlen);
        if (!held) {
            faces_free(&fs);
            return RC_ERR_ARG;
        }
        for (int i = 0; i < fs.n; i++)
            if (!strcmp(fs.f[i]->name, held->name)) {
                gen_fail(err, errlen, "the hold-out face %s is also a training face (faces %s)", held->name, face_list);
                faces_free(&fs);
                rc_hershey_free(held);
                return RC_ERR_ARG;
            }
    }
    /* the characters every face draws */
    unsigned char ok[128] = { 0 };
    for (int c = 32; c < 127; c++) {
        ok[c] = 1;
        for (int i = 0; i < fs.n; i++) ok[c] &= (unsigned char)rc_hershey_has(fs.f[i], c);
        if (held) ok[c] &= (unsigned char)rc_hershey_has(held, c);
        st.charset += ok[c];
    }
    plan p;
    rc_status rc = make_plan(&p, o, text, ok, &st, err, errlen) ? RC_ERR_ARG : RC_OK;
    if (rc == RC_OK && make_dir(o->out, 1, err, errlen)) rc = RC_ERR_IO;
    for (int k = 0; rc == RC_OK && k < NSPLIT; k++) {   /* refused before anything is written */
        size_t l = strlen(o->out) + 32;
        char *dir = malloc(l);
        struct stat sb;
        if (!dir) {
            gen_fail(err, errlen, "out of memory");
            rc = RC_ERR_NOMEM;
        }
        else {
            snprintf(dir, l, "%s/%s", o->out, SPLIT_DIR[k]);
            if (lstat(dir, &sb) == 0) {
                file_fail(err, errlen, dir, "already exists: a data set is never written over another; remove it or "
                          "give another --out");
                rc = RC_ERR_IO;
            }
        }
        free(dir);
    }
    if (rc == RC_OK) rc = write_split(o, SPLIT_TRAIN, p.train, p.ntrain, o->count, fs.f, fs.n, &st, err, errlen);
    if (rc == RC_OK) rc = write_split(o, SPLIT_VALID, p.valid, p.nvalid, o->valid, fs.f, fs.n, &st, err, errlen);
    if (rc == RC_OK) rc = write_split(o, SPLIT_TEST, p.test, p.ntest, o->test, fs.f, fs.n, &st, err, errlen);
    if (rc == RC_OK && held)
        rc = write_split(o, SPLIT_FACE, p.test, p.ntest, o->test_face ? o->test_face : o->test, &held, 1, &st, err,
                         errlen);
    if (rc == RC_OK && write_record(o, face_list, text, &st, err, errlen)) rc = RC_ERR_IO;
    plan_free(&p);
    faces_free(&fs);
    rc_hershey_free(held);
    if (st_out) *st_out = st;
    return rc;
}
