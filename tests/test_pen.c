/* Tests of the Hershey reader and the pen-trajectory generator (gen/), the .pen +
 * .gt.txt loader (train/data_pen.c) and `recur generate pen`.
 *
 * The tests that read Debian's Hershey faces skip, saying so, when hershey-fonts-data
 * is absent (they are found at run time, in rc_hershey_dir()); the reader's own
 * format tests and every loader test use files written here. The text of the data
 * sets is written here too (a few hundred lines from a fixed word list), so nothing
 * depends on the fortunes corpus. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "data_pen.h"
#include "recur.h"
#include "test_util.h"

static char g_dir[256];

static void setup(void)
{
    const char *t = getenv("TMPDIR");
    char prefix[200];
    snprintf(prefix, sizeof prefix, "%s/recur_pen_", t && *t ? t : "/tmp");
    tu_make_temp_dir(g_dir, sizeof g_dir, prefix);
}

static void teardown(void) { tu_remove_tree(g_dir); }

TestSuite(pen, .init = setup, .fini = teardown);

/* A path in the test's folder (a static buffer per slot). */
static const char *tp(const char *name)
{
    static char buf[8][512];
    static int slot;
    char *b = buf[slot++ % 8];
    snprintf(b, 512, "%s/%s", g_dir, name);
    return b;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    cr_assert_eq(fclose(f), 0);
}

static void make_dir(const char *path) { cr_assert(mkdir(path, 0777) == 0 || errno == EEXIST, "mkdir %s", path); }

/* Skips the test when Debian's Hershey faces are not where rc_hershey_dir() says. */
static void need_hershey(void)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/scripts.jhf", rc_hershey_dir());
    if (access(p, R_OK) != 0)
        cr_skip_test("%s is absent: the Hershey fonts are read at run time (apt-get install hershey-fonts-data)", p);
}

/* About `lines` lines of words from a fixed list (capitals, digits, punctuation). */
static void write_corpus(const char *path, int lines, uint32_t seed)
{
    static const char *words[] = { "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "Pack", "my",
                                   "box", "with", "five", "dozen", "liquor", "jugs", "How", "vexingly", "daft",
                                   "zebras", "jump!", "Sphinx", "of", "black", "quartz,", "judge", "vow.", "42",
                                   "(1999)", "it's", "Waltz", "nymph", "for", "quick", "jigs", "vex", "Bud;", "Q?",
                                   "xylophone", "mimic" };
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < lines; i++) {
        int n = 3 + (int)(tu_lcg_next(&seed) % 6);
        for (int k = 0; k < n; k++)
            fprintf(f, "%s%s", k ? " " : "", words[tu_lcg_next(&seed) % (sizeof words / sizeof *words)]);
        fprintf(f, "\n");
    }
    cr_assert_eq(fclose(f), 0);
}

static rc_hershey_font *face(const char *name)
{
    char err[512] = "";
    rc_hershey_font *f = rc_hershey_load(name, NULL, err, sizeof err);
    cr_assert_not_null(f, "%s: %s", name, err);
    return f;
}

/* Strokes of a trajectory. */
static size_t strokes(const rc_pen_traj *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) n += t->pts[i].end != 0;
    return n;
}

/* ---- the Hershey reader ---------------------------------------------------------------- */

/* futural.jhf line 34 (character 'A'): "12345  9I[RFJ[ RRFZ[ RMTWT": bounds I = -9,
 * [ = 9; vertices RF = (0,-12), J[ = (-8,9), lift, RF, Z[ = (8,9), lift, MT = (-5,2),
 * WT = (5,2). scripts.jhf line 74 ('i'): "  659 16PWSMSNTNTMSM RPVRRPXPZQ[R[TZUYWV":
 * bounds P = -2, W = 5, the dot SM = (1,-5) .. SM, a lift, then PV = (-2,4) .. WV = (5,4). */
Test(pen, hershey_known_glyphs)
{
    need_hershey();
    rc_hershey_font *f = face("futural");
    int l, r;
    const int8_t *xy;
    cr_assert_eq(rc_hershey_glyph(f, 'A', &l, &r, &xy), 8);
    cr_assert_eq(l, -9);
    cr_assert_eq(r, 9);
    static const int8_t want[16] = { 0, -12, -8, 9, RC_HERSHEY_PEN_UP, 0, 0, -12, 8, 9, RC_HERSHEY_PEN_UP, 0, -5, 2, 5, 2 };
    for (int i = 0; i < 16; i++) cr_assert_eq(xy[i], want[i], "futural 'A' value %d: %d, not %d", i, xy[i], want[i]);
    cr_assert_str_eq(rc_hershey_name(f), "futural");
    cr_assert_eq(rc_hershey_connected(f), 0);
    cr_assert(rc_hershey_has(f, ' ') && rc_hershey_has(f, '~'));
    cr_assert_eq(rc_hershey_glyph(f, 0x80, NULL, NULL, NULL), -1, "no glyph beyond the file's lines");
    rc_hershey_free(f);

    f = face("scripts");
    cr_assert_eq(rc_hershey_connected(f), 1);
    cr_assert_eq(rc_hershey_glyph(f, 'i', &l, &r, &xy), 15);
    cr_assert_eq(l, -2);
    cr_assert_eq(r, 5);
    cr_assert_eq(xy[0], 1);
    cr_assert_eq(xy[1], -5);
    cr_assert_eq(xy[10], RC_HERSHEY_PEN_UP);
    cr_assert_eq(xy[12], -2);
    cr_assert_eq(xy[13], 4);
    cr_assert_eq(xy[28], 5);
    cr_assert_eq(xy[29], 4);
    rc_hershey_free(f);
}

/* A glyph line wrapped as the original distribution does (continued on the next line)
 * reads as the unwrapped one; malformed lines are errors naming the file and line. */
Test(pen, hershey_format)
{
    const char *glyph = "    1  9I[RFJ[ RRFZ[ RMTWT\n";
    char good[400];
    snprintf(good, sizeof good, "    0  1JZ\n%s", glyph);
    write_file(tp("one.jhf"), good);
    write_file(tp("wrapped.jhf"), "    0  1JZ\n    1  9I[RFJ[ RR\nFZ[ RMTWT\n");
    char err[512] = "";
    rc_hershey_font *a = rc_hershey_load(tp("one.jhf"), NULL, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    rc_hershey_font *b = rc_hershey_load(tp("wrapped.jhf"), NULL, err, sizeof err);
    cr_assert_not_null(b, "%s", err);
    const int8_t *xa, *xb;
    int la, ra, lb, rb;
    cr_assert_eq(rc_hershey_glyph(a, '!', &la, &ra, &xa), 8);
    cr_assert_eq(rc_hershey_glyph(b, '!', &lb, &rb, &xb), 8);
    cr_assert(la == lb && ra == rb && memcmp(xa, xb, 16) == 0);
    cr_assert(rc_hershey_has(a, ' '), "the space (an empty glyph) is drawn as a space");
    cr_assert(!rc_hershey_has(a, '"'), "beyond the last line");
    rc_hershey_free(a);
    rc_hershey_free(b);

    static const struct { const char *text, *want; } bad[] = {
        { "    0  1JZ\n    1  9I[RFJ[ RRFZ[\n", ":2: 9 vertex pairs need 26 characters" },
        { "    0  1JZ\n    1  x9I[RFJ[ RRFZ[ RMTWT\n", ":2:8: the vertex count" },
        { "    0  1JZ\n\n    1  1JZ\n", ":2: an empty line" },
        { "    0  2JZR\t\n", ":1:12: byte 0x09 is not a coordinate" },
        { "    0  1ZJ\n", ":1: right bound -8 left of the left bound 8" },
        { "", ": no glyphs" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_file(tp("bad.jhf"), bad[i].text);
        err[0] = 0;
        cr_assert_null(rc_hershey_load(tp("bad.jhf"), NULL, err, sizeof err), "case %zu loaded", i);
        cr_assert(strstr(err, tp("bad.jhf")) && strstr(err, bad[i].want), "case %zu: '%s' lacks '%s'", i, err,
                  bad[i].want);
    }
    cr_assert_null(rc_hershey_load("nosuchface", g_dir, err, sizeof err));
    cr_assert(strstr(err, "nosuchface.jhf: cannot open") && strstr(err, "hershey-fonts-data"), "%s", err);
}

/* ---- rendering --------------------------------------------------------------------------- */

Test(pen, render_reproducible)
{
    need_hershey();
    rc_hershey_font *f = face("scripts");
    char err[512] = "";
    rc_pen_traj a = { 0 }, b = { 0 }, c = { 0 };
    const char *text = "Sphinx of black quartz, judge my vow.";
    cr_assert_eq(rc_gen_pen_render(f, text, NULL, 7, &a, err, sizeof err), RC_OK, "%s", err);
    cr_assert_eq(rc_gen_pen_render(f, text, NULL, 7, &b, err, sizeof err), RC_OK, "%s", err);
    cr_assert_eq(rc_gen_pen_render(f, text, NULL, 8, &c, err, sizeof err), RC_OK, "%s", err);
    cr_assert(a.n > 37, "%zu points for 37 characters", a.n);
    cr_assert_eq(a.n, b.n);
    cr_assert(memcmp(a.pts, b.pts, a.n * sizeof *a.pts) == 0, "the same seed gave other points");
    int differ = a.n != c.n;
    for (size_t i = 0; !differ && i < a.n; i++) differ = a.pts[i].x != c.pts[i].x || a.pts[i].y != c.pts[i].y;
    cr_assert(differ, "seeds 7 and 8 gave the same trajectory");
    cr_assert(a.pts[a.n - 1].end, "the last point ends its stroke");
    /* the same bytes on disk */
    cr_assert_eq(rc_gen_pen_write(tp("a"), &a, text, "face scripts", err, sizeof err), RC_OK, "%s", err);
    cr_assert_eq(rc_gen_pen_write(tp("b"), &b, text, "face scripts", err, sizeof err), RC_OK, "%s", err);
    size_t la, lb;
    char *fa = tu_read_file(tp("a.pen"), &la), *fb = tu_read_file(tp("b.pen"), &lb);
    cr_assert(fa && fb && la == lb && memcmp(fa, fb, la) == 0);
    cr_assert(!strncmp(fa, "#pen 1 x y end\n# face scripts\n", 30), "%.40s", fa);
    free(fa);
    free(fb);
    rc_pen_traj_free(&a);
    rc_pen_traj_free(&b);
    rc_pen_traj_free(&c);
    rc_hershey_free(f);
}

/* In a connected face a word is one pen-down chain; in futural the pen lifts between
 * letters; a space lifts it in both. "nun" has no dots or bars to write apart. */
Test(pen, render_connected)
{
    need_hershey();
    rc_hershey_font *s = face("scripts"), *p = face("futural");
    rc_pen_style st = rc_gen_pen_style_default();
    char err[512] = "";
    rc_pen_traj t = { 0 };
    for (uint64_t seed = 1; seed <= 5; seed++) {
        cr_assert_eq(rc_gen_pen_render(s, "nun", &st, seed, &t, err, sizeof err), RC_OK, "%s", err);
        cr_assert_eq(strokes(&t), 1, "scripts 'nun', seed %llu: %zu strokes", (unsigned long long)seed, strokes(&t));
        cr_assert_eq(rc_gen_pen_render(s, "nun nun", &st, seed, &t, err, sizeof err), RC_OK, "%s", err);
        cr_assert_eq(strokes(&t), 2, "scripts 'nun nun': %zu strokes", strokes(&t));
        cr_assert_eq(rc_gen_pen_render(p, "nun", &st, seed, &t, err, sizeof err), RC_OK, "%s", err);
        cr_assert_geq(strokes(&t), 3, "futural 'nun': %zu strokes", strokes(&t));
    }
    /* an i's dot: after the letter (defer 0) the chain breaks there, after the word (1) it
       is the word's last stroke */
    st.defer = 0;
    cr_assert_eq(rc_gen_pen_render(s, "nin", &st, 3, &t, err, sizeof err), RC_OK, "%s", err);
    cr_assert_eq(strokes(&t), 3, "chain, dot, chain: %zu strokes", strokes(&t));
    st.defer = 1;
    cr_assert_eq(rc_gen_pen_render(s, "nin", &st, 3, &t, err, sizeof err), RC_OK, "%s", err);
    cr_assert_eq(strokes(&t), 2, "chain, dot: %zu strokes", strokes(&t));
    size_t last = 0;   /* the dot is small: the last stroke's extent is a fraction of the word's */
    for (size_t i = 0; i + 1 < t.n; i++)
        if (t.pts[i].end) last = i + 1;
    float x0 = INFINITY, x1 = -INFINITY, d0 = INFINITY, d1 = -INFINITY;
    for (size_t i = 0; i < t.n; i++) {
        x0 = fminf(x0, t.pts[i].x);
        x1 = fmaxf(x1, t.pts[i].x);
        if (i >= last) {
            d0 = fminf(d0, t.pts[i].x);
            d1 = fmaxf(d1, t.pts[i].x);
        }
    }
    cr_assert_lt(d1 - d0, 0.2f * (x1 - x0), "the last stroke spans %g of %g", (double)(d1 - d0), (double)(x1 - x0));
    rc_pen_traj_free(&t);
    rc_hershey_free(s);
    rc_hershey_free(p);
}

/* Longer texts give wider trajectories: the ink follows the text. */
Test(pen, render_width_follows_text)
{
    need_hershey();
    rc_hershey_font *f = face("timesi");
    rc_pen_style st = rc_gen_pen_style_default();
    st.scale[0] = st.scale[1] = 1;
    st.aspect[0] = st.aspect[1] = 1;
    char err[512] = "";
    rc_pen_traj t = { 0 };
    double w[3];
    const char *texts[3] = { "mmmm", "mmmmmmmm", "mmmmmmmmmmmmmmmm" };
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(rc_gen_pen_render(f, texts[k], &st, 11, &t, err, sizeof err), RC_OK, "%s", err);
        float x0 = INFINITY, x1 = -INFINITY;
        for (size_t i = 0; i < t.n; i++) {
            x0 = fminf(x0, t.pts[i].x);
            x1 = fmaxf(x1, t.pts[i].x);
        }
        w[k] = x1 - x0;
    }
    cr_assert(w[1] > 1.6 * w[0] && w[1] < 2.4 * w[0] && w[2] > 1.6 * w[1] && w[2] < 2.4 * w[1],
              "widths %g, %g, %g for 4, 8, 16 letters", w[0], w[1], w[2]);
    rc_pen_traj_free(&t);
    rc_hershey_free(f);
}

Test(pen, render_errors)
{
    need_hershey();
    rc_hershey_font *f = face("scripts");
    char err[512] = "";
    rc_pen_traj t = { 0 };
    cr_assert_eq(rc_gen_pen_render(f, "caf\xc3\xa9", NULL, 1, &t, err, sizeof err), RC_ERR_ARG);
    cr_assert(strstr(err, "byte 0xc3") && strstr(err, "character 4"), "%s", err);
    cr_assert_eq(rc_gen_pen_render(f, "   ", NULL, 1, &t, err, sizeof err), RC_ERR_ARG);
    cr_assert(strstr(err, "nothing to write"), "%s", err);
    rc_pen_style st = rc_gen_pen_style_default();
    st.step[0] = 0;
    cr_assert_eq(rc_gen_pen_render(f, "abc", &st, 1, &t, err, sizeof err), RC_ERR_ARG);
    cr_assert(strstr(err, "step"), "%s", err);
    cr_assert_eq(t.n, 0);
    rc_pen_traj one = { 0 };
    cr_assert_eq(rc_gen_pen_write(tp("x"), &one, "abc", NULL, err, sizeof err), RC_ERR_ARG);
    cr_assert(strstr(err, "x.pen: an empty trajectory"), "%s", err);
    cr_assert_eq(rc_gen_pen_render(f, "abc", NULL, 1, &t, err, sizeof err), RC_OK, "%s", err);
    cr_assert_eq(rc_gen_pen_write(tp("x"), &t, "two\nlines", NULL, err, sizeof err), RC_ERR_ARG);
    cr_assert(strstr(err, "more than one line"), "%s", err);
    cr_assert_eq(rc_gen_pen_write(tp("no/such/dir/x"), &t, "abc", NULL, err, sizeof err), RC_ERR_IO);
    cr_assert(strstr(err, "no/such/dir/x.pen.tmp: cannot create"), "%s", err);
    cr_assert_neq(access(tp("x.pen"), F_OK), 0, "nothing written on an error");
    rc_pen_traj_free(&t);
    rc_hershey_free(f);
}

/* ---- data sets ---------------------------------------------------------------------------- */

static rc_gen_pen_opts small_opts(const char *out, const char *text)
{
    rc_gen_pen_opts o = rc_gen_pen_defaults();
    o.out = out;
    o.text = text;
    o.faces = "scripts,futural";
    o.hold_out_face = "timesi";
    o.count = 40;
    o.valid = 6;
    o.test = 8;
    o.min_len = 8;
    o.max_len = 24;
    return o;
}

/* The sorted sample names (without .pen) of a folder. */
static int list_pen(const char *dir, char names[][16], int max)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "%s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".pen")) {
            cr_assert_lt(n, max);
            cr_assert_lt(l - 4, 16);
            memcpy(names[n], e->d_name, l - 4);
            names[n++][l - 4] = 0;
        }
    }
    closedir(d);
    qsort(names, (size_t)n, 16, (int (*)(const void *, const void *))strcmp);
    return n;
}

/* The transcript of split/name as a malloc'd string without its newline. */
static char *transcript(const char *root, const char *split, const char *name)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s/%s.gt.txt", root, split, name);
    size_t n;
    char *s = tu_read_file(p, &n);
    cr_assert(s && n > 1 && s[n - 1] == '\n', "%s", p);
    s[n - 1] = 0;
    return s;
}

Test(pen, dataset_reproducible_and_seeded)
{
    need_hershey();
    write_corpus(tp("text.txt"), 400, 5);
    char err[512] = "";
    rc_gen_pen_opts o = small_opts(tp("a"), tp("text.txt"));
    cr_assert_eq(rc_gen_pen_dataset(&o, NULL, err, sizeof err), RC_OK, "%s", err);
    o.out = tp("b");
    cr_assert_eq(rc_gen_pen_dataset(&o, NULL, err, sizeof err), RC_OK, "%s", err);
    o.out = tp("c");
    o.seed = 2;
    cr_assert_eq(rc_gen_pen_dataset(&o, NULL, err, sizeof err), RC_OK, "%s", err);
    static const char *split[4] = { "train", "valid", "test", "test-face" };
    int differ = 0;
    for (int k = 0; k < 4; k++) {
        char da[600], names[64][16];
        snprintf(da, sizeof da, "%s/%s", tp("a"), split[k]);
        int n = list_pen(da, names, 64);
        cr_assert_eq(n, k == 0 ? 40 : k == 1 ? 6 : 8, "%s: %d samples", split[k], n);
        for (int i = 0; i < n; i++)
            for (int ext = 0; ext < 2; ext++) {
                char pa[700], pb[700], pc[700];
                const char *x = ext ? ".gt.txt" : ".pen";
                snprintf(pa, sizeof pa, "%.500s/%.10s/%.15s%s", tp("a"), split[k], names[i], x);
                snprintf(pb, sizeof pb, "%.500s/%.10s/%.15s%s", tp("b"), split[k], names[i], x);
                snprintf(pc, sizeof pc, "%.500s/%.10s/%.15s%s", tp("c"), split[k], names[i], x);
                size_t la, lb, lc;
                char *fa = tu_read_file(pa, &la), *fb = tu_read_file(pb, &lb), *fc = tu_read_file(pc, &lc);
                cr_assert(fa && fb && la == lb && memcmp(fa, fb, la) == 0, "%s differs from %s", pa, pb);
                differ += !fc || lc != la || memcmp(fa, fc, la) != 0;
                free(fa);
                free(fb);
                free(fc);
            }
    }
    cr_assert_gt(differ, 100, "seed 2 changed only %d of the files", differ);
    size_t la, lb;
    char *ra = tu_read_file(tp("a/gen-pen.txt"), &la), *rb = tu_read_file(tp("b/gen-pen.txt"), &lb);
    cr_assert(ra && rb && la == lb && !memcmp(ra, rb, la), "the records differ");
    cr_assert(strstr(ra, "hold_out_face timesi") && strstr(ra, "train 40 samples"), "%s", ra);
    free(ra);
    free(rb);
}

/* Every sample's transcript is what was written: re-rendering the .gt.txt text in the
 * face and seed its .pen names gives the .pen's points exactly. */
Test(pen, transcripts_are_the_rendered_text)
{
    need_hershey();
    write_corpus(tp("text.txt"), 400, 6);
    char err[512] = "";
    rc_gen_pen_opts o = small_opts(tp("d"), tp("text.txt"));
    cr_assert_eq(rc_gen_pen_dataset(&o, NULL, err, sizeof err), RC_OK, "%s", err);
    static const char *split[4] = { "train", "valid", "test", "test-face" };
    rc_hershey_font *faces[3] = { face("scripts"), face("futural"), face("timesi") };
    int seen_face[3] = { 0 };
    for (int k = 0; k < 4; k++) {
        char dir[600], names[64][16];
        snprintf(dir, sizeof dir, "%s/%s", tp("d"), split[k]);
        int n = list_pen(dir, names, 64);
        for (int i = 0; i < n; i++) {
            char path[700], line[256], fname[64];
            snprintf(path, sizeof path, "%.600s/%.15s.pen", dir, names[i]);
            FILE *f = fopen(path, "r");
            cr_assert_not_null(f);
            cr_assert_not_null(fgets(line, sizeof line, f));
            cr_assert_not_null(fgets(line, sizeof line, f));
            fclose(f);
            unsigned long long seed;
            cr_assert_eq(sscanf(line, "# face %63[^,], seed %llu", fname, &seed), 2, "%s: %s", path, line);
            int fi = !strcmp(fname, "scripts") ? 0 : !strcmp(fname, "futural") ? 1 : !strcmp(fname, "timesi") ? 2 : -1;
            cr_assert(fi >= 0 && (fi == 2) == (k == 3), "%s: face %s in %s", path, fname, split[k]);
            seen_face[fi]++;
            char *text = transcript(tp("d"), split[k], names[i]);
            rc_pen_traj t = { 0 };
            cr_assert_eq(rc_gen_pen_render(faces[fi], text, &o.style, seed, &t, err, sizeof err), RC_OK, "%s", err);
            pen_file p;
            cr_assert_eq(pen_read(&p, path, err, sizeof err), 0, "%s", err);
            cr_assert_eq(p.n, t.n, "%s: %zu points, re-rendered %zu", path, p.n, t.n);
            for (size_t j = 0; j < p.n; j++)
                cr_assert(p.x[j] == t.pts[j].x && p.y[j] == t.pts[j].y && p.end[j] == (t.pts[j].end != 0),
                          "%s: point %zu differs from the re-rendered '%s'", path, j, text);
            pen_file_free(&p);
            rc_pen_traj_free(&t);
            free(text);
        }
    }
    cr_assert(seen_face[0] && seen_face[1] && seen_face[2], "faces used: %d %d %d", seen_face[0], seen_face[1],
              seen_face[2]);
    for (int i = 0; i < 3; i++) rc_hershey_free(faces[i]);
}

/* No valid or test text is in train; test-face writes test's texts; every character
 * of valid and test occurs in train. */
Test(pen, splits_hold_out_text)
{
    need_hershey();
    write_corpus(tp("text.txt"), 300, 7);
    char err[512] = "";
    rc_gen_pen_opts o = small_opts(tp("e"), tp("text.txt"));
    o.count = 60;
    rc_gen_pen_stats st;
    cr_assert_eq(rc_gen_pen_dataset(&o, &st, err, sizeof err), RC_OK, "%s", err);
    cr_assert(st.samples[0] == 60 && st.samples[1] == 6 && st.samples[2] == 8 && st.samples[3] == 8);
    static const char *split[4] = { "train", "valid", "test", "test-face" };
    char *texts[4][64];
    int n[4];
    unsigned char train_chars[256] = { 0 };
    for (int k = 0; k < 4; k++) {
        char dir[600], names[64][16];
        snprintf(dir, sizeof dir, "%s/%s", tp("e"), split[k]);
        n[k] = list_pen(dir, names, 64);
        for (int i = 0; i < n[k]; i++) {
            texts[k][i] = transcript(tp("e"), split[k], names[i]);
            size_t l = strlen(texts[k][i]);
            cr_assert(l >= 8 && l <= 24, "'%s': %zu characters", texts[k][i], l);
            if (k == 0)
                for (const char *c = texts[k][i]; *c; c++) train_chars[(unsigned char)*c] = 1;
        }
    }
    for (int k = 1; k < 4; k++)
        for (int i = 0; i < n[k]; i++) {
            for (int j = 0; j < n[0]; j++)
                cr_assert_str_neq(texts[k][i], texts[0][j], "%s text '%s' is also in train", split[k], texts[k][i]);
            for (const char *c = texts[k][i]; *c; c++)
                cr_assert(train_chars[(unsigned char)*c], "'%c' of %s '%s' is in no training text", *c, split[k],
                          texts[k][i]);
        }
    for (int i = 0; i < n[1]; i++)
        for (int j = 0; j < n[2]; j++) cr_assert_str_neq(texts[1][i], texts[2][j], "valid and test share a text");
    for (int i = 0; i < n[3]; i++) cr_assert_str_eq(texts[3][i], texts[2][i], "test-face %d is not test's text", i);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < n[k]; i++) free(texts[k][i]);
}

/* Characters that only a few lines hold: with few training samples, held-out lines
 * holding a character no training line writes are dropped (the loader would refuse
 * them), and the drops are counted. */
Test(pen, held_out_characters_are_trained)
{
    need_hershey();
    write_corpus(tp("text.txt"), 200, 11);
    FILE *f = fopen(tp("text.txt"), "a");
    cr_assert_not_null(f);
    for (int i = 0; i < 30; i++) fprintf(f, "the rare %c sign\n", "0123456789#$%&*+-/<=>@[]^_{|}~"[i]);
    cr_assert_eq(fclose(f), 0);
    char err[512] = "";
    rc_gen_pen_opts o = small_opts(tp("r"), tp("text.txt"));
    o.count = 4;
    o.hold_out_face = NULL;
    rc_gen_pen_stats st;
    cr_assert_eq(rc_gen_pen_dataset(&o, &st, err, sizeof err), RC_OK, "%s", err);
    cr_assert_gt(st.dropped_eval, 0, "no held-out line was dropped");
    unsigned char train_chars[256] = { 0 };
    static const char *split[3] = { "train", "valid", "test" };
    for (int k = 0; k < 3; k++) {
        char dir[600], names[64][16];
        snprintf(dir, sizeof dir, "%s/%s", tp("r"), split[k]);
        int n = list_pen(dir, names, 64);
        for (int i = 0; i < n; i++) {
            char *text = transcript(tp("r"), split[k], names[i]);
            for (const char *c = text; *c; c++) {
                if (k == 0) train_chars[(unsigned char)*c] = 1;
                else cr_assert(train_chars[(unsigned char)*c], "'%c' of %s '%s' is in no training text", *c,
                               split[k], text);
            }
            free(text);
        }
    }
    vocab a;
    char train[600];
    snprintf(train, sizeof train, "%s/train", tp("r"));
    cr_assert_eq(pen_alphabet_build(&a, train, err, sizeof err), 0, "%s", err);
    for (int k = 1; k < 3; k++) {
        char dir[600];
        pen_set s;
        snprintf(dir, sizeof dir, "%s/%s", tp("r"), split[k]);
        cr_assert_eq(pen_set_load(&s, dir, &a, PEN_NORM_SAMPLE, err, sizeof err), 0, "%s", err);
        pen_set_free(&s);
    }
    vocab_free(&a);
}

Test(pen, dataset_errors)
{
    need_hershey();
    write_corpus(tp("text.txt"), 300, 8);
    char err[512] = "";
    rc_gen_pen_opts o = small_opts(tp("f"), tp("text.txt"));
    make_dir(tp("f"));
    make_dir(tp("f/test"));
    write_file(tp("f/test/keep.txt"), "mine\n");
    cr_assert_eq(rc_gen_pen_dataset(&o, NULL, err, sizeof err), RC_ERR_IO);
    cr_assert(strstr(err, "f/test: already exists"), "%s", err);
    cr_assert_neq(access(tp("f/train"), F_OK), 0, "train/ written before the refusal");
    cr_assert_eq(access(tp("f/test/keep.txt"), F_OK), 0);

    o.out = tp("g");
    o.faces = "scripts,greek";
    cr_assert_eq(rc_gen_pen_dataset(&o, NULL, err, sizeof err), RC_ERR_ARG);
    cr_assert(strstr(err, "'greek': not a Latin Hershey face"), "%s", err);
    o.faces = "scripts,timesi";
    cr_assert_eq(rc_gen_pen_dataset(&o, NULL, err, sizeof err), RC_ERR_ARG);
    cr_assert(strstr(err, "hold-out face timesi is also a training face"), "%s", err);
    o.faces = "scripts";
    write_file(tp("tiny.txt"), "too little\n");
    o.text = tp("tiny.txt");
    cr_assert_eq(rc_gen_pen_dataset(&o, NULL, err, sizeof err), RC_ERR_ARG);
    cr_assert(strstr(err, "tiny.txt: too little text"), "%s", err);
    cr_assert_neq(access(tp("g"), F_OK), 0, "nothing written on an error");
}

/* ---- the loader ----------------------------------------------------------------------------- */

/* The loader reads what the generator wrote: frames = the points' differences and end
 * flags, labels = the transcript over the alphabet of the training transcripts (saved
 * and read back), valid and test load with that alphabet. */
Test(pen, loader_round_trip)
{
    need_hershey();
    write_corpus(tp("text.txt"), 300, 9);
    char err[512] = "";
    rc_gen_pen_opts o = small_opts(tp("h"), tp("text.txt"));
    cr_assert_eq(rc_gen_pen_dataset(&o, NULL, err, sizeof err), RC_OK, "%s", err);
    char train[600];
    snprintf(train, sizeof train, "%s/train", tp("h"));
    vocab a, b;
    cr_assert_eq(pen_alphabet_build(&a, train, err, sizeof err), 0, "%s", err);
    cr_assert_eq(vocab_save(&a, tp("alphabet.txt"), err, sizeof err), 0, "%s", err);
    cr_assert_eq(vocab_load(&b, tp("alphabet.txt"), err, sizeof err), 0, "%s", err);
    cr_assert_eq(a.n, b.n);
    for (int i = 0; i < a.n; i++) {
        cr_assert_str_eq(a.tok[i], b.tok[i]);
        if (i) cr_assert_lt(strcmp(a.tok[i - 1], a.tok[i]), 0, "the alphabet is in code point order");
    }
    pen_set s;
    cr_assert_eq(pen_set_load(&s, train, &b, PEN_NORM_NONE, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s.n, 40);
    char names[64][16];
    cr_assert_eq(list_pen(train, names, 64), 40);
    for (int i = 0; i < s.n; i++) {
        cr_assert_str_eq(s.names[i], names[i]);
        char path[700];
        snprintf(path, sizeof path, "%.600s/%.15s.pen", train, names[i]);
        pen_file p;
        cr_assert_eq(pen_read(&p, path, err, sizeof err), 0, "%s", err);
        cr_assert_eq(seqset_len(&s.x, i), (int)p.n);
        const float *x = s.x.x + s.x.off[i] * PEN_FEATURES;
        for (size_t t = 0; t < p.n; t++) {
            float dx = t ? (float)((double)p.x[t] - p.x[t - 1]) : 0, dy = t ? (float)((double)p.y[t] - p.y[t - 1]) : 0;
            cr_assert(x[3 * t] == dx && x[3 * t + 1] == dy && x[3 * t + 2] == (float)p.end[t], "%s frame %zu", path, t);
        }
        cr_assert_eq(x[3 * (p.n - 1) + 2], 1.0f);
        char *text = transcript(tp("h"), "train", names[i]);
        size_t L;
        const int32_t *lab = pen_set_labels(&s, i, &L);
        char decoded[256] = "";
        for (size_t k = 0; k < L; k++) strcat(decoded, vocab_token(&b, lab[k], NULL));
        cr_assert_str_eq(decoded, text);
        free(text);
        pen_file_free(&p);
    }
    pen_set_free(&s);
    static const char *others[3] = { "valid", "test", "test-face" };
    for (int k = 0; k < 3; k++) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s/%s", tp("h"), others[k]);
        cr_assert_eq(pen_set_load(&s, dir, &b, PEN_NORM_SAMPLE, err, sizeof err), 0, "%s", err);
        cr_assert_gt(s.n, 0);
        pen_set_free(&s);
    }
    vocab_free(&a);
    vocab_free(&b);
}

/* The per-sample normalisation: the RMS length of the pen-down steps becomes 1, a
 * pen-up jump is divided by the same number, the end flags are kept. */
Test(pen, normalisation)
{
    pen_file p;
    char err[512] = "";
    const char *text = "#pen 1\n0 0 0\n3 4 0\n3 4 1\n103 4 0\n106 0 1\n";
    cr_assert_eq(pen_parse(&p, text, strlen(text), "n.pen", err, sizeof err), 0, "%s", err);
    float f[15];
    cr_assert_eq(pen_frames(&p, PEN_NORM_SAMPLE, f, "n.pen", err, sizeof err), 0, "%s", err);
    /* pen-down steps: (3,4), (0,0), (3,-4): squared lengths 25, 0, 25, mean 50/3 */
    double s = sqrt(50.0 / 3);
    static const float raw[15] = { 0, 0, 0, 3, 4, 0, 0, 0, 1, 100, 0, 0, 3, -4, 1 };
    for (int i = 0; i < 15; i++) {
        double want = i % 3 == 2 ? raw[i] : raw[i] / s;
        cr_assert_float_eq(f[i], want, 1e-6, "value %d: %g, not %g", i, (double)f[i], want);
    }
    cr_assert_eq(pen_frames(&p, PEN_NORM_NONE, f, "n.pen", err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 15; i++) cr_assert_eq(f[i], raw[i]);
    pen_file_free(&p);
}

/* Writes NAME.pen and NAME.gt.txt (NULL: not written) into folder dir (created). */
static void sample(const char *dir, const char *name, const char *pen, const char *gt)
{
    make_dir(dir);
    char p[700];
    if (pen) {
        snprintf(p, sizeof p, "%s/%s.pen", dir, name);
        write_file(p, pen);
    }
    if (gt) {
        snprintf(p, sizeof p, "%s/%s.gt.txt", dir, name);
        write_file(p, gt);
    }
}

/* Each bad input is an error naming its file (and line), the set is left empty, and a
 * good folder beside it still loads. */
Test(pen, loader_errors)
{
#define GOOD_PEN "#pen 1 x y end\n# a comment\n0 0 0\n1 1 0\n\n2 0 1\n5 0 0\n6 1 1\n"
    const char *good_pen = GOOD_PEN;
    vocab a;
    char err[512] = "";
    sample(tp("ok"), "s1", good_pen, "ab\n");
    sample(tp("ok"), "s2", good_pen, "bad\r\n");
    cr_assert_eq(pen_alphabet_build(&a, tp("ok"), err, sizeof err), 0, "%s", err);
    cr_assert_eq(a.n, 3, "a, b, d");
    static const struct { const char *pen, *gt, *file, *want; } bad[] = {
        { GOOD_PEN, NULL, "x.gt.txt", "no transcript" },
        { GOOD_PEN, "", "x.gt.txt", "an empty transcript" },
        { GOOD_PEN, "\n", "x.gt.txt", "an empty transcript" },
        { GOOD_PEN, "ab\ncd\n", "x.gt.txt:1", "a line end after character 2" },
        { GOOD_PEN, "a\tb\n", "x.gt.txt:1", "control character U+0009 at character 2" },
        { GOOD_PEN, "a\xc3(b\n", "x.gt.txt:1", "byte 0xc3 at byte 2 is not UTF-8" },
        { GOOD_PEN, "a\xed\xa0\x80\n", "x.gt.txt:1", "byte 0xed at byte 2 is not UTF-8" },
        { GOOD_PEN, "abc\n", "x.gt.txt", "character 'c' (U+0063) at character 3 is not in the alphabet" },
        { GOOD_PEN, "\xc3\xa9\n", "x.gt.txt", "character '\xc3\xa9' (U+00E9) at character 1" },
        { "", "ab\n", "x.pen", "an empty file" },
        { "#pen 1\n# only a comment\n", "ab\n", "x.pen", "an empty trajectory (no points)" },
        { "x y end\n0 0 1\n", "ab\n", "x.pen:1", "the first line must be \"#pen 1\"" },
        { "#pen 2\n0 0 1\n", "ab\n", "x.pen:1", "format version '2' is not known" },
        { "#pen 1\n0 0 1\n1 nan 1\n", "ab\n", "x.pen:3", "y 'nan' is not a decimal number" },
        { "#pen 1\n0 0 1\n1e99 0 1\n", "ab\n", "x.pen:3", "x '1e99' is not a finite number" },
        { "#pen 1\n0 0 1\n1 inf 1\n", "ab\n", "x.pen:3", "y 'inf' is not a decimal number" },
        { "#pen 1\n0 0 2\n", "ab\n", "x.pen:2", "end '2' must be 0 or 1" },
        { "#pen 1\n0 0\n", "ab\n", "x.pen:2", "2 fields; a point is \"x y end\"" },
        { "#pen 1\n0 0 0 0\n", "ab\n", "x.pen:2", "more than 3 fields" },
        { "#pen 1\n0 0 0\n1,5 0 1\n", "ab\n", "x.pen:3", "x '1,5' is not a decimal number" },
        { "#pen 1\n0 0 1\n", "ab\n", "x.pen", "1 points are too few for its transcript of 2 characters (CTC needs 2" },
        { "#pen 1\n0 0 0\n1 0 0\n2 0 1\n", "abba\n", "x.pen", "3 points are too few for its transcript of 4 "
                                                          "characters (CTC needs 5" },
        { "#pen 1\n-3e38 0 0\n3e38 0 1\n", "a\n", "x.pen", "the step to point 2" },
        { NULL, "ab\n", "x.gt.txt", "a transcript without its trajectory x.pen" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char dir[64];
        snprintf(dir, sizeof dir, "bad%zu", i);
        sample(tp(dir), "a_good_one", good_pen, "ab\n");
        sample(tp(dir), "x", bad[i].pen, bad[i].gt);
        pen_set s;
        err[0] = 0;
        cr_assert_eq(pen_set_load(&s, tp(dir), &a, PEN_NORM_NONE, err, sizeof err), -1, "case %zu loaded", i);
        char where[600];
        snprintf(where, sizeof where, "%s/%s", tp(dir), bad[i].file);
        cr_assert(strstr(err, where) && strstr(err, bad[i].want), "case %zu: '%s' lacks '%s' or '%s'", i, err, where,
                  bad[i].want);
        cr_assert(s.n == 0 && s.x.n == 0 && !s.lab && !s.names, "case %zu: the set is not left empty", i);
    }
    pen_set s;
    cr_assert_eq(pen_set_load(&s, tp("ok"), &a, PEN_NORM_SAMPLE, err, sizeof err), 0, "%s", err);
    cr_assert_eq(s.n, 2);
    size_t L;
    const int32_t *lab = pen_set_labels(&s, 1, &L);
    cr_assert(L == 3 && lab[0] == 1 && lab[1] == 0 && lab[2] == 2, "'bad' as b=1 a=0 d=2");
    pen_set_free(&s);
    make_dir(tp("empty"));
    cr_assert_eq(pen_set_load(&s, tp("empty"), &a, PEN_NORM_NONE, err, sizeof err), -1);
    cr_assert(strstr(err, "empty: no pen trajectories"), "%s", err);
    cr_assert_eq(pen_set_load(&s, tp("nonexistent"), &a, PEN_NORM_NONE, err, sizeof err), -1);
    cr_assert(strstr(err, "nonexistent: cannot read the folder"), "%s", err);
    vocab_free(&a);
}

/* ---- the command ------------------------------------------------------------------------------ */

/* Runs recur with args (NULL-terminated); its exit code, stdout and stderr in files. */
static int run_recur(const char *const *args)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = tu_recur_exe();
    for (; args[n - 1]; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        tu_child_redirect(tp("run.out"), tp("run.err"));
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    cr_assert_eq(tu_wait_child(pid, pid, tu_monotonic_seconds(), 60, 0.01, &st), 0, "recur generate timed out");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 127, "cannot run %s", argv[0]);
    return WEXITSTATUS(st);
}

Test(pen, command)
{
    need_hershey();
    write_corpus(tp("text.txt"), 300, 10);
    const char *ok[] = { "generate", "pen", "--out", tp("cmd"), "--text", tp("text.txt"), "--count", "12",
                         "--valid", "3", "--test", "3", "--faces", "cursive", "--hold-out-face", "rowmans",
                         "--slant", "-5,20", "--step", "2.5,5", "--seed", "4", NULL };
    int rc = run_recur(ok);
    char *out = tu_read_file(tp("run.out"), NULL), *errs = tu_read_file(tp("run.err"), NULL);
    cr_assert_eq(rc, 0, "exit %d\n%s\n%s", rc, out, errs);
    cr_assert(strstr(out, "/train: 12 samples") && strstr(out, "/test-face: 3 samples"), "%s", out);
    cr_assert_eq(access(tp("cmd/test-face/000002.pen"), R_OK), 0);
    char *rec = tu_read_file(tp("cmd/gen-pen.txt"), NULL);
    cr_assert(rec && strstr(rec, "slant -5 20") && strstr(rec, "step 2.5 5") && strstr(rec, "seed 4"), "%s", rec);
    free(rec);
    free(out);
    free(errs);
    const char *bad[] = { "generate", "pen", "--out", tp("cmd2"), "--slant", "a,b", NULL };
    cr_assert_eq(run_recur(bad), 2);
    errs = tu_read_file(tp("run.err"), NULL);
    cr_assert(errs && strstr(errs, "--slant 'a,b'"), "%s", errs);
    free(errs);
    const char *kind[] = { "generate", "ink", NULL };
    cr_assert_eq(run_recur(kind), 2);
    errs = tu_read_file(tp("run.err"), NULL);
    cr_assert(errs && strstr(errs, "unknown kind 'ink'"), "%s", errs);
    free(errs);
}
