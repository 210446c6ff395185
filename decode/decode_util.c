/* Helpers shared by the decoders (decode_util.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include "decode_util.h"
#include "op.h"   /* op_threads: the process-wide thread count, 1 inside a parallel region */

rc_status dec_fail(char *err, size_t errlen, rc_status s, const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return s;
}

rc_status dec_check_logits(const char *who, const float *logits, int T, int B, int A, const int32_t *lengths,
                           int blank, char *err, size_t errlen)
{
    if (!logits) return dec_fail(err, errlen, RC_ERR_ARG, "%s: NULL logits", who);
    if (T < 1 || B < 1 || A < 1)
        return dec_fail(err, errlen, RC_ERR_ARG, "%s: T = %d, B = %d, A = %d must each be >= 1", who, T, B, A);
    if ((int64_t)T * B > INT32_MAX || (int64_t)T * B * A > (int64_t)1 << 46)
        return dec_fail(err, errlen, RC_ERR_ARG, "%s: T = %d x B = %d x A = %d is too large", who, T, B, A);
    if (blank < 0 || blank >= A)
        return dec_fail(err, errlen, RC_ERR_ARG, "%s: blank %d is outside the %d classes 0..%d", who, blank, A, A - 1);
    for (int b = 0; b < B; b++) {
        int Tb = dec_len(lengths, T, b);
        if (Tb < 0 || Tb > T)
            return dec_fail(err, errlen, RC_ERR_ARG, "%s: sample %d: input length %d is outside 0..T = %d", who, b, Tb, T);
        for (int t = 0; t < Tb; t++) {
            const float *row = logits + ((size_t)t * B + b) * (size_t)A;
            float mx = -INFINITY;
            for (int a = 0; a < A; a++) {
                if (isnan(row[a]) || row[a] == INFINITY)
                    return dec_fail(err, errlen, RC_ERR_ARG, "%s: sample %d, step %d: class %d is %s", who, b, t, a,
                                    isnan(row[a]) ? "NaN" : "+inf");
                mx = row[a] > mx ? row[a] : mx;
            }
            if (mx == -INFINITY)
                return dec_fail(err, errlen, RC_ERR_ARG, "%s: sample %d, step %d: every class is -inf", who, b, t);
        }
    }
    return RC_OK;
}

void dec_log_softmax(const float *row, int A, double *lp)
{
    double m = row[0], s = 0;
    for (int a = 1; a < A; a++) m = row[a] > m ? row[a] : m;
    for (int a = 0; a < A; a++) s += exp((double)row[a] - m);
    double z = m + log(s);
    for (int a = 0; a < A; a++) lp[a] = (double)row[a] - z;
}

double dec_lse(double a, double b)
{
    if (a == -INFINITY) return b;
    if (b == -INFINITY) return a;
    return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

int dec_threads(int n, double work)
{
    if (n <= 1 || work < OP_PAR_MIN) return 1;
    int nt = op_threads();
    return nt < n ? nt : n;
}
