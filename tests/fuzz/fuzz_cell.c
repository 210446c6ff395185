/* libFuzzer harness for the cell language (cells/lang_*.c). Built and run by
 * tests/fuzz/run.sh with clang -fsanitize=fuzzer,address,undefined, without OpenMP.
 *
 * Two builds:
 *  - full (default): the language with the graph-building part of the library (graph/,
 *    ops/, cells/cell.c, cells/unroll.c; BLAS and LAPACK replaced by stubs that abort,
 *    since no plan is ever run). Each input is parsed with its own hidden size and
 *    with hidden 3; a parsed cell is copied (cell_clone) and the original freed; for
 *    input sizes 1, 3 and 4 lang_validate() decides whether it builds, and when it
 *    says so (and every width is small) rc_unroll must succeed, with final states of
 *    the declared sizes: the checker's verdict is the oracle for the builder.
 *  - check-only (-DLANG_CHECK_ONLY): cells/lang_*.c but lang_step.c, parse + check + lang_validate.
 *
 * In both, any failure must come with "fuzz:LINE:COL: ..." (LINE, COL >= 1), a
 * program must stay valid when its bytes move (it is pointer-free), and the source
 * kept by a cell must equal the input. Violations abort (a crash for libFuzzer). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lang.h"
#ifndef LANG_CHECK_ONLY
#include "recur.h"
#include "cell.h"
#endif

#define NAME "fuzz"

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_cell: %s: %s\n", what, detail);
    abort();
}

/* "fuzz:LINE:COL: message" */
static void check_message(const char *err)
{
    size_t n = strlen(NAME);
    if (strncmp(err, NAME, n) != 0 || err[n] != ':') fail("message without the name", err);
    char *end;
    long line = strtol(err + n + 1, &end, 10);
    if (line < 1 || *end != ':') fail("message without a line", err);
    long col = strtol(end + 1, &end, 10);
    if (col < 1 || end[0] != ':' || end[1] != ' ' || end[2] == 0) fail("message without a column or text", err);
}

/* Validates a program for a few input sizes; returns a bit per size that builds small. */
static unsigned validate_sizes(const lang_prog *p, const int *sizes, int n)
{
    unsigned ok = 0;
    char err[1024];
    for (int k = 0; k < n; k++) {
        long long mw = -1;
        if (lang_validate(p, sizes[k], &mw, err, sizeof err) != 0) {
            check_message(err);
            if (mw != 0) fail("max width set on error", err);
        } else if (mw >= 1 && mw <= 64) ok |= 1u << k;
        else if (mw < 1) fail("validated with no width", "");
    }
    return ok;
}

static void compile_and_move(const char *text, size_t size, int hidden)
{
    char err[1024];
    size_t sz = 0;
    lang_prog *p = lang_compile(text, size, NAME, hidden, err, sizeof err, &sz);
    if (!p) {
        check_message(err);
        return;
    }
    /* a program is pointer-free: a byte copy works after the original is gone */
    lang_prog *q = malloc(sz);
    if (!q) abort();
    memcpy(q, p, sz);
    memset(p, 0xAB, sz);
    free(p);
    static const int sizes[3] = { 1, 3, 4 };
    validate_sizes(q, sizes, 3);
    if (lang_state_count(q) < 1 || lang_hidden(q) < 1 || !lang_cell_name(q)[0]) fail("bad program", "");
    for (int i = 0; i < lang_state_count(q); i++)
        if (lang_state_size(q, i) < 1 || !lang_state_name(q, i)) fail("bad state", "");
    free(q);
}

#ifndef LANG_CHECK_ONLY
static void build(const char *text, size_t size)
{
    char err[1024];
    rc_cell *c = rc_cell_parse(text, size, NAME, 3, err, sizeof err);
    if (!c) {
        check_message(err);
        return;
    }
    const char *src = rc_cell_source(c);
    if (!src || strlen(src) != size || memcmp(src, text, size) != 0) fail("source differs from the input", "");
    rc_cell *d = cell_clone(c);
    if (!d) abort();
    rc_cell_free(c);
    static const int sizes[3] = { 1, 3, 4 };
    unsigned ok = validate_sizes(d->user, sizes, 3);
    for (int k = 0; k < 3; k++) {
        rc_graph *g = rc_graph_new();
        if (!g) abort();
        int xs[2] = { 2 * 2, sizes[k] };
        rc_node *x = rc_input(g, "x", RC_F32, 2, xs), *out = NULL, *fin[16] = { 0 };
        if (!(ok >> k & 1)) {
            /* not buildable (or too wide to try): the unroll must fail cleanly, with the position */
            if (!(ok >> k & 1) && lang_validate(d->user, sizes[k], NULL, err, sizeof err) != 0) {
                if (rc_unroll(g, d, x, 2, NULL, &out, fin) == RC_OK) fail("unrolled a cell that did not validate", err);
                if (!strstr(rc_graph_error(g), NAME ":")) fail("unroll error without position", rc_graph_error(g));
            }
            rc_graph_free(g);
            continue;
        }
        if (rc_unroll(g, d, x, 2, NULL, &out, fin) != RC_OK) fail("validated cell did not unroll", rc_graph_error(g));
        for (int i = 0; i < rc_cell_state_count(d); i++)
            if (rc_node_ndim(fin[i]) != 2 || rc_node_dim(fin[i], 0) != 2 || rc_node_dim(fin[i], 1) != rc_cell_state_size(d, i))
                fail("final state of the wrong shape", rc_cell_state_name(d, i));
        if (rc_node_dim(out, 0) != 4 || rc_node_dim(out, 1) != rc_cell_state_size(d, 0)) fail("output shape", "");
        rc_graph_free(g);
    }
    rc_cell_free(d);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384) return 0;
    const char *text = (const char *)data;
    compile_and_move(text, size, 0);
    compile_and_move(text, size, 3);
#ifndef LANG_CHECK_ONLY
    build(text, size);
#endif
    return 0;
}
