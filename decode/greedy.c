/* Best-path (greedy) decoding of CTC outputs: the most probable class at each step,
 * repeats merged, blanks dropped, with the step at which each label was emitted.
 * The argmax of the raw logits is the argmax of their log-softmax, so rows are not
 * normalised. Samples are independent: split across threads when there are several. */
#include "decode_util.h"

/* Sample b: its labels and frames from the start of labels/frames (its own rows of
 * the outputs); returns how many. */
static int32_t greedy_one(const float *logits, int B, int A, int Tb, int b, int blank, int32_t *labels,
                          int32_t *frames)
{
    int32_t n = 0;
    int prev = blank;
    for (int t = 0; t < Tb; t++) {
        const float *row = logits + ((size_t)t * B + b) * (size_t)A;
        int best = 0;
        for (int a = 1; a < A; a++)
            if (row[a] > row[best]) best = a;
        if (best != blank && best != prev) {
            labels[n] = best;
            if (frames) frames[n] = t;
            n++;
        }
        prev = best;
    }
    return n;
}

rc_status rc_ctc_greedy(const float *logits, int T, int B, int A, const int32_t *lengths, int blank,
                        int32_t *labels, int32_t *frames, int32_t *out_lengths, char *err, size_t errlen)
{
    rc_status s = dec_check_logits("ctc_greedy", logits, T, B, A, lengths, blank, err, errlen);
    if (s != RC_OK) return s;
    if (!labels || !out_lengths) return dec_fail(err, errlen, RC_ERR_ARG, "ctc_greedy: NULL labels or out_lengths");
    int nt = dec_threads(B, (double)T * B * A);
    (void)nt;   /* unused without OpenMP */
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1)
    for (int b = 0; b < B; b++)
        out_lengths[b] = greedy_one(logits, B, A, dec_len(lengths, T, b), b, blank, labels + (size_t)b * T,
                                    frames ? frames + (size_t)b * T : NULL);
    if (err && errlen > 0) err[0] = '\0';
    return RC_OK;
}
