/* recur generate KIND: synthetic data sets (gen/) written in the layouts recur train
 * reads. Each kind parses its own options in its own file; this is the dispatch. */
#include <stdio.h>
#include <string.h>
#include "commands.h"

static void generate_usage(FILE *f)
{
    fprintf(f, "usage: recur generate KIND --out DIR [options]   (recur generate KIND --help for its options)\n\n"
               "kinds:\n"
               "  pen     connected handwriting: pen trajectories from the Hershey fonts (NAME.pen + NAME.gt.txt)\n"
               "  lines   printed text lines: PNG + .gt.txt rendered with FreeType and degraded (OCR)\n");
}

int cmd_generate(int argc, char **argv)
{
    if (argc < 3 || !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) {
        generate_usage(argc < 3 ? stderr : stdout);
        return argc < 3 ? 2 : 0;
    }
    if (!strcmp(argv[2], "pen")) return gen_pen_cmd(argc - 2, argv + 2);
    if (!strcmp(argv[2], "lines")) return gen_lines_cmd(argc - 2, argv + 2);
    fprintf(stderr, "recur generate: unknown kind '%s'\n", argv[2]);
    generate_usage(stderr);
    return 2;
}
