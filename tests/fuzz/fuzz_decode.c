/* libFuzzer harness for the decode layer (decode/): the error-rate functions on
 * arbitrary bytes (UTF-8 decoding, word splitting) and the decoders on arbitrary small
 * logits (NaN, -inf and +inf among them), transcripts and options. The first byte
 * picks which.
 *   metrics: the rest is reference NUL hypothesis; each distance must succeed or
 *     refuse with a message; the counts must agree (distance = S + I + D, hyp = ref -
 *     D + I, |n - m| <= distance <= max(n, m)) and the distance be symmetric.
 *   decoders: bytes 1-4 give T (1..12), A (1..6), width (1..6) and top_k (0..2), the
 *     blank; then T*A logits (a byte b is (int8)b / 8, with 0x80 = -inf, 0x7f = NaN,
 *     0x7e = +inf), then a transcript. Greedy, beam and alignment must accept or refuse the same rows;
 *     accepted results must be well formed (labels in range and not the blank,
 *     frames increasing, scores <= 0 and best first, aligned frames monotone).
 * Built and run by tests/fuzz/run.sh decode. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "recur.h"

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz: %s: %s\n", what, detail ? detail : "");
    abort();
}

static void check_stats(const rc_edit_stats *s, const char *what)
{
    int64_t n = s->ref_length, m = s->hyp_length;
    if (s->distance != s->substitutions + s->insertions + s->deletions) die("S + I + D != distance", what);
    if (m != n - s->deletions + s->insertions) die("hyp length != ref - D + I", what);
    if (s->distance < (n > m ? n - m : m - n) || s->distance > (n > m ? n : m)) die("distance out of bounds", what);
    if (s->substitutions < 0 || s->insertions < 0 || s->deletions < 0) die("negative count", what);
}

static void metrics(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 2);
    if (!buf) abort();
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = '\0';
    const char *ref = buf, *hyp = buf + strlen(buf) + 1;
    typedef rc_status (*dist_fn)(const char *, const char *, rc_edit_stats *, char *, size_t);
    dist_fn fns[2] = { rc_edit_distance_utf8, rc_edit_distance_words };
    const char *names[2] = { "utf8", "words" };
    for (int f = 0; f < 2; f++) {
        rc_edit_stats a, b;
        char err[256] = "";
        rc_status s1 = fns[f](ref, hyp, &a, err, sizeof err);
        if (s1 != RC_OK && !err[0]) die("an error without a message", names[f]);
        rc_status s2 = fns[f](hyp, ref, &b, err, sizeof err);
        if ((s1 == RC_OK) != (s2 == RC_OK)) die("accepted one way only", names[f]);
        if (s1 != RC_OK) continue;
        check_stats(&a, names[f]);
        check_stats(&b, names[f]);
        if (a.distance != b.distance) die("not symmetric", names[f]);   /* (the S/I/D split may differ: ties) */
        double r = rc_error_rate(&a);
        if (isnan(r) || r < 0) die("bad error rate", names[f]);
    }
    free(buf);
}

static void decoders(const uint8_t *data, size_t size)
{
    if (size < 5) return;
    int T = 1 + data[1] % 12, A = 1 + data[2] % 6, W = 1 + data[3] % 6, blank = data[4] % A;
    int top_k = data[3] / 6 % 3;
    data += 5;
    size -= 5;
    if (size < (size_t)T * A) return;
    float x[12 * 6];
    for (int i = 0; i < T * A; i++) {
        uint8_t b = data[i];
        x[i] = b == 0x80 ? -INFINITY : b == 0x7f ? NAN : b == 0x7e ? INFINITY : (float)(int8_t)b / 8.0f;
    }
    data += T * A;
    size -= (size_t)T * A;
    int32_t lab[12], n = -1, L = 0;
    for (size_t k = 0; k < size && L < 12; k++) lab[L++] = data[k] % A;
    char err[256] = "";
    int32_t glab[12], gfr[12];
    rc_status g = rc_ctc_greedy(x, T, 1, A, NULL, blank, glab, gfr, &n, err, sizeof err);
    if (g != RC_OK) {
        if (!err[0]) die("greedy: an error without a message", NULL);
    } else {
        if (n < 0 || n > T) die("greedy: bad count", NULL);
        for (int k = 0; k < n; k++) {
            if (glab[k] < 0 || glab[k] >= A || glab[k] == blank) die("greedy: bad label", NULL);
            if (gfr[k] < 0 || gfr[k] >= T || (k > 0 && gfr[k] <= gfr[k - 1])) die("greedy: frames not increasing", NULL);
        }
    }
    rc_ctc_beam_opts o = rc_ctc_beam_defaults();
    o.width = W;
    o.nbest = W < 3 ? W : 3;
    o.blank = blank;
    o.top_k = top_k;
    rc_ctc_beam *d = rc_ctc_beam_new(A, &o, err, sizeof err);
    if (!d) die("beam_new refused valid options", err);
    rc_status bs = rc_ctc_beam_decode(d, x, T, 1, NULL);
    if ((bs == RC_OK) != (g == RC_OK)) die("greedy and beam disagree on the input", rc_ctc_beam_error(d));
    if (bs == RC_OK) {
        int c = rc_ctc_beam_count(d, 0);
        if (c < 1 || c > o.nbest) die("beam: bad count", NULL);
        for (int r = 0; r < c; r++) {
            const rc_ctc_hyp *h = rc_ctc_beam_hyp(d, 0, r);
            if (!h || h->length < 0 || h->length > T) die("beam: bad hypothesis", NULL);
            for (int k = 0; k < h->length; k++)
                if (h->labels[k] < 0 || h->labels[k] >= A || h->labels[k] == blank) die("beam: bad label", NULL);
            if (!(h->logp_ctc <= 1e-6) || h->score != h->logp_ctc) die("beam: bad score", NULL);
            if (r > 0 && h->score > rc_ctc_beam_hyp(d, 0, r - 1)->score) die("beam: not best first", NULL);
        }
    } else if (!rc_ctc_beam_error(d)[0]) {
        die("beam: an error without a message", NULL);
    }
    rc_ctc_beam_free(d);
    int32_t first[12], last[12], fl[12];
    double score = 1;
    rc_status as = rc_ctc_align(x, T, 1, A, NULL, lab, 12, &L, blank, first, last, fl, &score, err, sizeof err);
    if (as != RC_OK) {
        if (!err[0]) die("align: an error without a message", NULL);
        return;
    }
    if (g != RC_OK) die("align accepted rows greedy refused", NULL);
    if (!(score <= 1e-6)) die("align: score above 0", NULL);
    for (int k = 0; k < L; k++) {
        if (first[k] < 0 || first[k] > last[k] || last[k] >= T) die("align: bad frames", NULL);
        if (k > 0 && last[k - 1] >= first[k]) die("align: labels overlap", NULL);
    }
    for (int t = 0; t < T; t++)
        if (fl[t] < -1 || fl[t] >= L) die("align: bad frame label", NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16) return 0;
    if (data[0] % 2 == 0) metrics(data + 1, size - 1);
    else decoders(data, size);
    return 0;
}
