/* Tests of the stream-row access of rc_model that the decode layer's LM adapter uses.
 * Checks use cr_expect (non-fatal) where a test must still free what it made (the
 * suite runs under LeakSanitizer). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"

/* ---- stream rows ------------------------------------------------------------------- */

static rc_model *char_lm(int V, int H, int layers)
{
    rc_model_opts o = rc_model_defaults();
    o.input_size = 5;
    o.vocab = V;
    o.layers = layers;
    o.output_size = V;
    o.seed = 42;
    rc_cell *c = rc_cell_lstm(H, NULL);
    rc_model *m = rc_model_new(c, &o);
    rc_cell_free(c);
    cr_assert(m && rc_model_status(m) == RC_OK, "%s", m ? rc_model_error(m) : "NULL");
    return m;
}

/* Stream rows: a row's state copied into another row continues identically there, the
 * same as a one-row stream fed that row's tokens; misuse is an error. */
Test(decode, model_stream_rows)
{
    int V = 6;
    rc_model *m = char_lm(V, 7, 2);
    size_t n = rc_model_stream_state_size(m);
    cr_expect_eq(n, 2u * 2u * 7u, "2 layers x (h, c) x 7");
    float *row = malloc(n * sizeof *row), *row2 = malloc(n * sizeof *row2);
    cr_expect_eq(rc_model_stream_get_row(m, 0, row), RC_ERR_STATE, "before any stream");
    cr_expect(strstr(rc_model_error(m), "rc_model_stream_reset"), "%s", rc_model_error(m));
    cr_assert_eq(rc_model_stream_reset(m, 3), RC_OK);
    int32_t toks[3][4] = { { 1, 2, 3, 4 }, { 5, 5, 0, 1 }, { 2, 2, 2, 2 } };
    const float *out;
    for (int t = 0; t < 3; t++) {
        int32_t tk[3] = { toks[0][t], toks[1][t], toks[2][t] };
        cr_assert_eq(rc_model_stream_step(m, NULL, tk, &out), RC_OK);
    }
    cr_assert_eq(rc_model_stream_get_row(m, 0, row), RC_OK);
    cr_assert_eq(rc_model_stream_set_row(m, 2, row), RC_OK);
    cr_assert_eq(rc_model_stream_get_row(m, 2, row2), RC_OK);
    cr_expect(memcmp(row, row2, n * sizeof *row) == 0);
    int32_t tk[3] = { 4, 1, 4 };
    cr_assert_eq(rc_model_stream_step(m, NULL, tk, &out), RC_OK);
    float o0[6], o2[6];
    memcpy(o0, out, sizeof o0);
    memcpy(o2, out + 2 * V, sizeof o2);
    for (int v = 0; v < V; v++) cr_expect(fabsf(o0[v] - o2[v]) < 1e-6f, "row 2 continues row 0: %g vs %g", o0[v], o2[v]);
    cr_expect(fabsf(out[V] - o0[0]) > 0 || fabsf(out[V + 1] - o0[1]) > 0, "row 1 differs");
    /* the same as a one-row stream of row 0's tokens */
    cr_assert_eq(rc_model_stream_reset(m, 1), RC_OK);
    for (int t = 0; t < 4; t++) cr_assert_eq(rc_model_stream_step(m, NULL, &toks[0][t], &out), RC_OK);
    for (int v = 0; v < V; v++) cr_expect(fabsf(out[v] - o0[v]) < 1e-5f, "one-row stream: %g vs %g", out[v], o0[v]);
    cr_expect_eq(rc_model_stream_get_row(m, 1, row), RC_ERR_ARG);
    cr_expect(strstr(rc_model_error(m), "row 1 is outside the stream's 1 rows"), "%s", rc_model_error(m));
    cr_expect_eq(rc_model_stream_set_row(m, -1, row), RC_ERR_ARG);
    cr_expect_eq(rc_model_stream_set_row(m, 0, NULL), RC_ERR_ARG);
    free(row);
    free(row2);
    rc_model_free(m);
}

/* A stream continues where it was after forwards of other shapes pushed its plan out
 * of the model's cache (before the fix its state silently went back to zeros). */
Test(decode, model_stream_survives_eviction)
{
    int V = 5;
    rc_model *a = char_lm(V, 6, 1), *b = char_lm(V, 6, 1);
    cr_assert_eq(rc_model_stream_reset(a, 2), RC_OK);
    cr_assert_eq(rc_model_stream_reset(b, 2), RC_OK);
    const float *oa, *ob;
    int32_t tk[2] = { 1, 3 };
    cr_assert_eq(rc_model_stream_step(a, NULL, tk, &oa), RC_OK);
    cr_assert_eq(rc_model_stream_step(b, NULL, tk, &ob), RC_OK);
    rc_model_set_training(b, 0);
    for (int T = 2; T < 12; T++) {   /* 10 shapes: more than the cache holds */
        int32_t *tok = calloc((size_t)T * 2, sizeof *tok), *tgt = calloc((size_t)T * 2, sizeof *tgt);
        rc_batch bt = { .T = T, .B = 2, .tokens = tok, .targets = tgt };
        cr_assert_eq(rc_model_forward(b, &bt, NULL), RC_OK, "%s", rc_model_error(b));
        free(tok);
        free(tgt);
    }
    tk[0] = 2;
    tk[1] = 4;
    cr_assert_eq(rc_model_stream_step(a, NULL, tk, &oa), RC_OK);
    cr_assert_eq(rc_model_stream_step(b, NULL, tk, &ob), RC_OK, "%s", rc_model_error(b));
    for (int v = 0; v < 2 * V; v++) cr_expect(fabsf(oa[v] - ob[v]) < 1e-6f, "output %d: %g vs %g", v, oa[v], ob[v]);
    rc_model_free(a);
    rc_model_free(b);
}

