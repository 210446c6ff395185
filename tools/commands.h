/* The recur subcommands. Each returns the process exit status. */
#ifndef RC_TOOLS_COMMANDS_H
#define RC_TOOLS_COMMANDS_H

#include <stddef.h>
#include "config.h"

int cmd_train(config *c);
int cmd_eval(config *c);
int cmd_sample(config *c);
/* Renders <dir>/metrics.csv with gnuplot; 0, or -1 with msg (msg = the image on success). */
int plot_run(const char *dir, const char *out, char *msg, size_t len);
/* Prints a sample of `length` tokens from a text task's model (used after epochs). */
struct task;
int print_sample(struct task *t, const char *prime, int length, double temperature, unsigned long long seed,
                 FILE *f, char *msg, size_t len);

#endif
