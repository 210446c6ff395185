/* recur generate lines: a data set of printed text lines (rc_gen_lines, gen/), its
 * options parsed here. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "commands.h"
#include "recur.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: recur generate lines --out DIR [options]\n\n"
            "Renders lines of text with FreeType in Debian's fonts, degrades them (rotation, shear, elastic\n"
            "distortion, blur, ink and paper levels, noise, binarisation), and writes DIR/train, DIR/valid,\n"
            "DIR/test (held-out text in the training fonts) and DIR/test-fonts (the test text in held-out\n"
            "fonts), each image NAME.png beside its transcript NAME.gt.txt, as recur train reads them.\n"
            "The same options and seed give the same bytes.\n\n"
            "options:\n"
            "  --out DIR              the folder to write (its split folders must be absent or empty)\n"
            "  --count N              training lines (default 1000)\n"
            "  --valid N, --test N    validation and test lines (default count / 10, at least 1);\n"
            "                         test-fonts gets as many as test\n"
            "  --seed S               the seed of every random choice (default 1)\n"
            "  --fonts LIST           training faces, comma-separated: face names, families (P052 = every\n"
            "                         P052-* face), all, or font files by path (default: the usual faces)\n"
            "  --hold-out-fonts LIST  faces of test-fonts only, never trained on (default P052,URWGothic:\n"
            "                         the Palatino and Avant Garde designs; none: no test-fonts)\n"
            "  --height H             image height in pixels, 8..256 (default 32)\n"
            "  --text PATH            a text file or folder of them (default /usr/share/games/fortunes)\n"
            "  --min-chars N          shortest line in characters (default 10)\n"
            "  --max-chars N          longest line (default 40)\n"
            "  --clean                no degradation: black on white, fixed size and margins\n"
            "  --quiet                no progress lines\n"
            "  --list-fonts           the faces recur knows, whether installed, and exit\n");
}

static void list_fonts(void)
{
    const char *name, *path, *pkg;
    int usual;
    printf("%-28s %-7s %-20s %s\n", "face", "usual", "package", "file (- when not installed)");
    for (int i = 0; (name = rc_gen_line_face(i, &path, &pkg, &usual)) != NULL; i++)
        printf("%-28s %-7s %-20s %s\n", name, usual ? "yes" : "no", pkg, path ? path : "-");
}

static int parse_int(const char *opt, const char *s, long lo, long hi, long *v)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi) {
        fprintf(stderr, "recur generate lines: %s '%s': expected an integer in %ld..%ld\n", opt, s, lo, hi);
        return -1;
    }
    *v = x;
    return 0;
}

static void progress(void *ctx, const char *split, int done, int total)
{
    (void)ctx;
    if (done == total || done % 1000 == 0) fprintf(stderr, "recur generate lines: %s %d/%d\n", split, done, total);
}

int gen_lines_cmd(int argc, char **argv)
{
    rc_gen_lines_opts o;
    rc_gen_lines_defaults(&o);
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--list-fonts")) {
            list_fonts();
            return 0;
        }
        if (!strcmp(a, "--clean")) {
            o.line.clean = 1;
            continue;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        static const char *const valued[] = {"--out", "--count", "--valid", "--test", "--seed", "--fonts",
                                             "--hold-out-fonts", "--height", "--text", "--min-chars", "--max-chars"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++) known |= !strcmp(a, valued[k]);
        if (!known) {
            fprintf(stderr, "recur generate lines: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "recur generate lines: %s needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        long x = 0;
        int bad = 0;
        if (!strcmp(a, "--out")) o.out = v;
        else if (!strcmp(a, "--fonts")) o.fonts = v;
        else if (!strcmp(a, "--hold-out-fonts")) o.hold_out = v;
        else if (!strcmp(a, "--text")) o.text = v;
        else if (!strcmp(a, "--count")) bad = parse_int(a, v, 1, INT_MAX, &x), o.count = (int)x;
        else if (!strcmp(a, "--valid")) bad = parse_int(a, v, 0, INT_MAX, &x), o.valid = (int)x;
        else if (!strcmp(a, "--test")) bad = parse_int(a, v, 0, INT_MAX, &x), o.test = (int)x;
        else if (!strcmp(a, "--height")) bad = parse_int(a, v, 8, 256, &x), o.line.height = (int)x;
        else if (!strcmp(a, "--min-chars")) bad = parse_int(a, v, 1, 100000, &x), o.min_chars = (int)x;
        else if (!strcmp(a, "--max-chars")) bad = parse_int(a, v, 1, 100000, &x), o.max_chars = (int)x;
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            bad = errno || end == v || *end || v[0] == '-';
            if (bad) fprintf(stderr, "recur generate lines: --seed '%s': expected a non-negative integer\n", v);
            o.seed = s;
        }
        if (bad) return 2;
    }
    if (!o.out) {
        fprintf(stderr, "recur generate lines: --out DIR is required\n");
        usage(stderr);
        return 2;
    }
    if (o.min_chars > o.max_chars) {
        fprintf(stderr, "recur generate lines: --min-chars %d is above --max-chars %d\n", o.min_chars, o.max_chars);
        return 2;
    }
    if (!quiet) o.progress = progress;
    char err[1024] = "";
    rc_status st = rc_gen_lines(&o, err, sizeof err);
    if (st != RC_OK) {
        fprintf(stderr, "recur generate lines: %s\n", err);
        return st == RC_ERR_ARG ? 2 : 1;
    }
    if (!quiet) printf("wrote %s (generate.txt lists the options and fonts)\n", o.out);
    return 0;
}
