/* Internal helpers of the decode layer: messages, checks of the logits every decoder
 * reads, and the row normalisation. */
#ifndef RC_DECODE_UTIL_H
#define RC_DECODE_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "recur.h"

/* Writes a printf-style message to err (when err is not NULL and errlen > 0) and
 * returns s. */
rc_status dec_fail(char *err, size_t errlen, rc_status s, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Checks the shared arguments of the decoders: logits not NULL, T, B, A >= 1, blank in
 * 0..A-1, lengths (may be NULL) in 0..T, and every row a sample uses: no NaN, no +inf,
 * a finite maximum. `who` starts the message. RC_OK or RC_ERR_ARG with a message. */
rc_status dec_check_logits(const char *who, const float *logits, int T, int B, int A, const int32_t *lengths,
                           int blank, char *err, size_t errlen);

/* Sample b's input length: lengths[b], or T without lengths. */
static inline int dec_len(const int32_t *lengths, int T, int b) { return lengths ? (int)lengths[b] : T; }

/* lp[a] = row[a] - log sum exp(row) in double (row checked by dec_check_logits). */
void dec_log_softmax(const float *row, int A, double *lp);

/* log(exp(a) + exp(b)) for a, b in [-inf, finite]. */
double dec_lse(double a, double b);

/* The threads a loop over n samples doing `work` (about the number of values touched)
 * may use: 1 for one sample, little work (a parallel region costs more than it saves
 * below OP_PAR_MIN) or inside a parallel region, else the process-wide count
 * (rc_set_num_threads), at most n. */
int dec_threads(int n, double work);

#endif
