/* recur generate KIND: synthetic data sets written as the files recur train reads.
 * Each kind parses its own options in its own file; this is only the dispatch. */
#include <stdio.h>
#include <string.h>
#include "commands.h"

static void generate_usage(FILE *f)
{
    fprintf(f, "usage: recur generate KIND [options]   (recur generate KIND --help for its options)\n\n"
               "kinds:\n"
               "  lines   printed text lines: PNG + .gt.txt rendered with FreeType and degraded (OCR)\n");
}

int cmd_generate(int argc, char **argv)
{
    const char *kind = argc > 2 ? argv[2] : "";
    if (!strcmp(kind, "lines")) return gen_lines_cmd(argc - 2, argv + 2);
    if (!strcmp(kind, "--help") || !strcmp(kind, "-h")) {
        generate_usage(stdout);
        return 0;
    }
    if (*kind) fprintf(stderr, "recur generate: unknown kind '%s'\n", kind);
    generate_usage(stderr);
    return 2;
}
