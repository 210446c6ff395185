/* recur plot: training curves from a run's metrics.csv, drawn by gnuplot. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "commands.h"

/* Writes the gnuplot script; returns 0 or -1. */
static int write_script(FILE *f, const char *csv, const char *out, int svg)
{
    fprintf(f, "set terminal %s size 900,520\n", svg ? "svg" : "pngcairo");
    fprintf(f, "set output '%s'\n", out);
    fprintf(f, "set datafile separator ','\nset key top right\nset grid\n");
    fprintf(f, "set xlabel 'update'\nset ylabel 'loss (nats per target)'\n");
    fprintf(f, "set title 'recur: %s'\n", csv);
    fprintf(f, "plot '%s' using (strcol(1) eq \"train\" ? $2 : 1/0):(strcol(1) eq \"train\" ? $4 : 1/0) every ::1 "
               "with lines lw 1 lc rgb '#4477aa' title 'train', \\\n", csv);
    fprintf(f, "     '%s' using (strcol(1) eq \"valid\" ? $2 : 1/0):(strcol(1) eq \"valid\" ? $4 : 1/0) every ::1 "
               "with linespoints lw 2 pt 7 lc rgb '#cc3311' title 'valid'\n", csv);
    return ferror(f) ? -1 : 0;
}

int plot_run(const char *dir, const char *out_opt, char *msg, size_t len)
{
    char csv[2048], out[2048], script[2100];
    snprintf(csv, sizeof csv, "%s/metrics.csv", dir);
    if (access(csv, R_OK) != 0) {
        snprintf(msg, len, "%s: no metrics to plot (%s; recur train --metrics csv writes it)", csv, strerror(errno));
        return -1;
    }
    if (out_opt && out_opt[0]) snprintf(out, sizeof out, "%s", out_opt);
    else snprintf(out, sizeof out, "%s/curves.png", dir);
    size_t ol = strlen(out);
    int svg = ol > 4 && strcmp(out + ol - 4, ".svg") == 0;
    if (!svg && !(ol > 4 && strcmp(out + ol - 4, ".png") == 0)) {
        snprintf(msg, len, "%s: the plot must end in .png or .svg", out);
        return -1;
    }
    if (strchr(csv, '\'') || strchr(out, '\'')) {
        snprintf(msg, len, "paths with a quote (') cannot be plotted");
        return -1;
    }
    snprintf(script, sizeof script, "%s.gp", out);
    FILE *f = fopen(script, "w");
    if (!f) {
        snprintf(msg, len, "%s: %s", script, strerror(errno));
        return -1;
    }
    int bad = write_script(f, csv, out, svg);
    if (fclose(f) != 0 || bad) {
        snprintf(msg, len, "%s: could not write the gnuplot script", script);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(msg, len, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(msg, len, WIFEXITED(st) && WEXITSTATUS(st) == 127
                 ? "gnuplot is not installed (apt-get install gnuplot-nox); the script is %s"
                 : "gnuplot failed on %s", script);
        return -1;
    }
    snprintf(msg, len, "%s", out);
    return 0;
}
