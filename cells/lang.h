/* Internal: the cell language (docs/CELLS.md).
 *
 * lang_compile() parses and checks a cell's text into a lang_prog, using only the C
 * library: no graph is involved, so the parser and checker build on their own
 * (compile cells/lang_*.c but lang_step.c with -DLANG_CHECK_ONLY, as the fuzz
 * harness may; lang_internal.h maps the files). The program is one flat block
 * without pointers (indices and offsets only), so a byte copy of it is a valid, independent copy: a cell owns it like built-in cells own
 * their options (free_user = free, user_size = its size), and cell_clone copies it.
 *
 * lang_step() is the step function of a parsed cell: it walks the checked program
 * and calls the rc_* builders, the way a C cell is written. */
#ifndef RC_LANG_H
#define RC_LANG_H

#include <stddef.h>

typedef struct lang_prog lang_prog;

/* Largest width (hidden size, state size, any value's width) a cell may have. */
#define LANG_MAX_WIDTH (1 << 24)
/* Largest cell text. */
#define LANG_MAX_TEXT (1u << 20)

/* Parses and checks `text` (len bytes, need not be NUL-terminated). hidden > 0
 * overrides the cell's "hidden N" line. On success returns the program (free with
 * free()) and its size in *size; on error NULL and "name:line:col: message" in err. */
lang_prog *lang_compile(const char *text, size_t len, const char *name, int hidden,
                        char *err, size_t errlen, size_t *size);

/* The cell's name, hidden size, and states (in header order; the first is the output). */
const char *lang_cell_name(const lang_prog *p);
int lang_hidden(const lang_prog *p);
int lang_state_count(const lang_prog *p);
const char *lang_state_name(const lang_prog *p, int i);
int lang_state_size(const lang_prog *p, int i);

/* The checks that wait for the input size I: widths that depend on I (equal where
 * they meet, each within 1..LANG_MAX_WIDTH), slices inside their operand, weights
 * applied to inputs of one width. 0 when the program builds with input size I;
 * otherwise -1 and "name:line:col: message" in err. When max_width is not NULL it
 * receives the largest width of any value or parameter axis (0 on error). */
int lang_validate(const lang_prog *p, int I, long long *max_width, char *err, size_t errlen);

#ifndef LANG_CHECK_ONLY
#include "recur.h"
/* The step function of a parsed cell; user is its lang_prog. */
rc_status lang_step(rc_step *s, void *user);
#endif

#endif
