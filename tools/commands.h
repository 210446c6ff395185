/* The recur subcommands. Each returns the process exit status. */
#ifndef RC_TOOLS_COMMANDS_H
#define RC_TOOLS_COMMANDS_H

#include <stddef.h>
#include "config.h"

int cmd_train(config *c);
int cmd_eval(config *c);
int cmd_sample(config *c);
/* recur align (tools/cmd_align.c): forced alignment of a transcription run's samples. */
int cmd_align(config *c);
/* Renders <dir>/metrics.csv with gnuplot; 0, or -1 with msg (msg = the image on success). */
int plot_run(const char *dir, const char *out, char *msg, size_t len);
/* Prints a sample of `length` tokens from a text task's model (used after epochs). */
struct task;
/* Rebuilds a run from its checkpoint (cmd_eval.c): --checkpoint, else <out>/best.ckpt,
 * else <out>/last.ckpt (*path, maybe in pbuf); the stored configuration with this
 * command line's data paths, --seq, --batch and --threads; the data (a language model
 * without need_data and --data: only its vocabulary), the model and its weights. A run
 * whose kind lacks a flag of `need` (kind.h) is refused before its data is read, msg
 * then saying need_why. 0, or -1 with msg (and *t freed when it was filled). */
int run_open(const config *cli, struct task *t, const char **path, char *pbuf, size_t plen, int need_data,
             unsigned need, const char *need_why, char *msg, size_t len);
int print_sample(struct task *t, const char *prime, int length, double temperature, unsigned long long seed,
                 FILE *f, char *msg, size_t len);

/* recur inspect (tools/cmd_inspect.c) and recur compare (tools/cmd_compare.c); compare
 * takes its cells from pos[0..npos) (the arguments before the first option) and --cells. */
int cmd_inspect(config *c);
int cmd_compare(config *c, int npos, char **pos);
/* The synopsis and options of inspect or compare (mask CMD_INSPECT / CMD_COMPARE). */
void inspect_usage(FILE *f, unsigned mask);

/* recur search (tools/cmd_search.c): parses its own options from argv[2..argc). */
int cmd_search(int argc, char **argv);

/* recur generate KIND (tools/cmd_generate.c): dispatches to a kind's command, which
 * parses its own options from argv[1..argc) (argv[0] is the kind). */
int cmd_generate(int argc, char **argv);
/* recur generate pen (tools/gen_pen_cmd.c) */
int gen_pen_cmd(int argc, char **argv);
/* recur generate lines (tools/gen_lines_cmd.c) */
int gen_lines_cmd(int argc, char **argv);

/* Shared by inspect and compare (cmd_inspect.c). */
#include "recur.h"
/* A cell from a built-in name (lstm, gru, gru-cho, rnn, rnn-relu, mut1..3) or a .cell
 * file; NULL with msg. */
rc_cell *tool_cell(const char *spec, int hidden, double forget_bias, char *msg, size_t len);
/* A short label for a cell spec: the name, or a .cell file's base name. */
void cell_label(const char *spec, char *buf, size_t len);
/* One unrolled graph of a cell (T = 1: the step graph) on input [T*B, I]; its roots are
 * the stacked outputs and the final states; p is its plan once planned (passes run). */
typedef struct ugraph { rc_graph *g; rc_node **roots; int nroots; rc_plan *p; } ugraph;   /* roots: 1 + states */
int ugraph_build(ugraph *u, const rc_cell *cell, int I, int T, int B, char *msg, size_t len);
int ugraph_plan(ugraph *u, char *msg, size_t len);
void ugraph_free(ugraph *u);
/* Runs argv[0] (searched in PATH) and waits: its exit status, 127 when it cannot run. */
int run_program(char *const argv[]);
/* Runs gnuplot on a script; 0, or -1 with msg. */
int run_gnuplot(const char *script, char *msg, size_t len);
/* "1.23 GFLOP", "4.50 MiB": human-readable quantities. */
void fmt_si(double x, const char *unit, char *buf, size_t len);
void fmt_bytes(double x, char *buf, size_t len);

#endif
