/* Checks shared by the sequence-set harnesses (music, CSV, classify/tags): a loaded
 * set is consistent (offsets increase, every sequence has a step) and its first
 * batch collates. */
#ifndef RC_FUZZ_SEQ_H
#define RC_FUZZ_SEQ_H
#include "data.h"
#include "fuzz_file.h"

static void fuzz_check_set(const seqset *s, const char *path)
{
    if (s->n < 0) fuzz_die("negative sequence count", path);
    if (s->n == 0) return;
    if (!s->off || s->off[0] != 0) fuzz_die("bad first offset", path);
    for (int i = 0; i < s->n; i++) {
        if (s->off[i + 1] <= s->off[i]) fuzz_die("empty sequence", path);
        if (seqset_len(s, i) < 1) fuzz_die("sequence without a step", path);
    }
    int B = s->n < 3 ? s->n : 3;
    char err[512];
    batcher b;
    if (batcher_init(&b, s, B, 2, 1, 7, err, sizeof err) != 0) fuzz_die("batcher_init", err);
    rc_batch out;
    if (batcher_get(&b, 0, &out, err, sizeof err) != 0) fuzz_die("batcher_get", err);
    if (out.B != B || out.T < 1) fuzz_die("batch of the wrong size", path);
    batcher_free(&b);
}

static void fuzz_check_seqdata(const seqdata *d, const char *path)
{
    for (int k = 0; k < 3; k++) {
        if (d->nseq[k] < d->set[k].n) fuzz_die("fewer sequences counted than kept", path);
        fuzz_check_set(&d->set[k], path);
    }
}
#endif
