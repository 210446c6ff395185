/* Internal: mutations of cells written in the cell language, for an architecture
 * search in the manner of Jozefowicz, Zaremba & Sutskever 2015; the check every
 * candidate passes; a canonical form; parameter counts (docs/CELLS.md "Mutations and
 * canonical form"). The public entry points are rc_cell_mutate and its neighbours in
 * recur.h (cells/mutate.c); the tests reach these.
 *
 *   text --lang_compile--> lang_prog --mcell_from_prog--> mcell (expression trees,
 *   one per binding and state assignment) --mcell_mutate--> mcell --mcell_print-->
 *   text --lang_compile, cell_check_prog--> accepted or rejected candidate
 *
 * Every candidate goes back through the real checker: a mutation only has to produce
 * text; whatever does not check is rejected and another mutation is tried. */
#ifndef RC_MUTATE_H
#define RC_MUTATE_H

#include <stddef.h>
#include <stdint.h>
#include "lang.h"
#include "rng.h"

typedef struct mcell mcell;

/* The sizes a mutation compares widths at: the hidden size, the input size, and a
 * second input size the candidate must also build with (0: none). */
typedef struct mut_env {
    long long H, I, I2;
} mut_env;

/* The mutable form of a checked program. NULL when out of memory (message in err). */
mcell *mcell_from_prog(const lang_prog *p, char *err, size_t errlen);
void mcell_free(mcell *m);
/* The cell as text: header, "hidden N", the state, weight and vector declarations and
 * init lines the program had, then one line per binding and state assignment in
 * order. Bindings that no state assignment needs (after a mutation) are left out, and
 * so are the declarations and inits of parameters that no expression uses. A malloc'd
 * NUL-terminated string, or NULL when out of memory (message in err). */
char *mcell_print(mcell *m, char *err, size_t errlen);
/* Applies one mutation of kind `kind` (one RC_MUT_* bit of recur.h) at a random site
 * chosen with r. 0 when applied; -1 when the cell has no site for this kind; -2 when out
 * of memory. The result is unchecked: print it and check the text. */
int mcell_mutate(mcell *m, unsigned kind, rng_t *r, const mut_env *env);

/* Spells the cell another way for tests of the canonical form: operands of + * min max
 * commuted and chains of + and * regrouped at random, bindings and parameters renamed,
 * the lines in another order that keeps every definition above its uses. The printed
 * text may fail to check (a regrouping can put two vector parameters of unknown width
 * together). 0, or -1 when out of memory. */
int mcell_respell(mcell *m, uint64_t seed);

/* The checks a candidate passes besides lang_compile: lang_validate with input size I
 * (and I2 when > 0), and the dependences: the output (first state) depends on the input
 * and on the previous value of some state; some state it depends on sees the input;
 * the states it depends on form a cycle (a recurrence, not a fixed window); every other
 * state's previous value reaches the output. 0, or -1 with a message in err. */
int cell_check_prog(const lang_prog *p, int I, int I2, char *err, size_t errlen);

/* The canonical text of a program (independent of names, statement order and the
 * operand order of + * min max; docs/CELLS.md) in *text (malloc'd; may be NULL when
 * not wanted) and its 64-bit FNV-1a hash in *hash. 0, or -1 (out of memory). */
int cell_canonical(const lang_prog *p, char **text, uint64_t *hash, char *err, size_t errlen);

/* The number of parameter scalars of the program with input size I (the program's
 * hidden size). Validate first: widths outside 1..LANG_MAX_WIDTH are not checked. */
long long cell_prog_params(const lang_prog *p, int I);

#endif
