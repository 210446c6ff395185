/* recur: train, evaluate, sample and plot recurrent networks from the command line. */
#include <stdio.h>
#include <string.h>
#include "commands.h"
#include "recur.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: recur COMMAND [options]   (recur COMMAND --help for its options)\n\n"
               "commands:\n"
               "  train     train a model; writes checkpoints and metrics to --out\n"
               "  eval      evaluate a checkpoint on the validation or test data (pen, lines: --beam, --lm)\n"
               "  align     pen, lines: each label's frames in a sample (forced alignment of its transcript)\n"
               "  sample    generate text from a checkpoint\n"
               "  plot      draw a run's training curves (gnuplot)\n"
               "  inspect   a cell's graphs: ops, parameters, FLOPs, memory, passes, DOT; --gradient-flow, --gradcheck\n"
               "  compare   cells side by side: costs, structural diff; with --train, training runs\n"
               "  search    evolutionary search over cells (Jozefowicz et al. 2015); --status DIR: its table\n"
               "  generate  synthetic data sets: recur generate pen (handwriting), lines (printed text for OCR)\n"
               "  info      the version, the cells there are and where the cell library is (also: version)\n");
}

static int wants_help(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    static const struct { const char *name; unsigned mask; } cmds[] = {
        { "train", CMD_TRAIN }, { "eval", CMD_EVAL }, { "sample", CMD_SAMPLE }, { "plot", CMD_PLOT },
        { "inspect", CMD_INSPECT }, { "compare", CMD_COMPARE }, { "align", CMD_ALIGN },
    };
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {   /* one line: help2man and scripts read it */
        printf("recur %s\n", rc_version());
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "info")) {
        char names[4096];
        rc_cell_names(names, sizeof names);
        printf("recur %s\ncells: %s\n(the library folder: $RECUR_CELL_LIB, else the source tree's cells/lib for a build run "
               "from its build folder, else the installed share/recur/cells)\n", rc_version(), names);
        return 0;
    }
    char msg[2048];
    if (config_check_env(msg, sizeof msg) != 0) {   /* the thread count of every command */
        fprintf(stderr, "recur %s: %s\n", cmd, msg);
        return 2;
    }
    if (!strcmp(cmd, "search")) return cmd_search(argc, argv);   /* its own options (tools/cmd_search.c) */
    if (!strcmp(cmd, "generate")) return cmd_generate(argc, argv);   /* its own options (tools/cmd_generate.c) */
    unsigned mask = 0;
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        if (!strcmp(cmd, cmds[i].name)) mask = cmds[i].mask;
    if (!mask) {
        fprintf(stderr, "recur: unknown command '%s'\n", cmd);
        usage(stderr);
        return 2;
    }
    if (wants_help(argc, argv) && (mask == CMD_INSPECT || mask == CMD_COMPARE)) {
        inspect_usage(stdout, mask);
        return 0;
    }
    if (wants_help(argc, argv)) {
        printf("usage: recur %s [options]\n\noptions:\n", cmd);
        config_usage(stdout, mask);
        return 0;
    }
    static config c;
    config_defaults(&c);
    int first = 2;   /* compare: the cells come before the options */
    while (mask == CMD_COMPARE && first < argc && strncmp(argv[first], "--", 2) != 0) first++;
    if (config_parse_args(&c, argc, argv, first, msg, sizeof msg) != 0) {
        fprintf(stderr, "recur %s: %s\nusage: recur %s [options]   (recur %s --help lists them)\n", cmd, msg, cmd, cmd);
        return 2;
    }
    switch (mask) {
    case CMD_TRAIN: return cmd_train(&c);
    case CMD_EVAL: return cmd_eval(&c);
    case CMD_SAMPLE: return cmd_sample(&c);
    case CMD_ALIGN: return cmd_align(&c);
    case CMD_INSPECT: return cmd_inspect(&c);
    case CMD_COMPARE: return cmd_compare(&c, first - 2, argv + 2);
    default:
        if (plot_run(c.out, c.plot_out, msg, sizeof msg) != 0) {
            fprintf(stderr, "recur plot: %s\n", msg);
            return 1;
        }
        printf("wrote %s\n", msg);
        return 0;
    }
}
