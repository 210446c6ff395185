/* Internal: exp, sigmoid and tanh written so that loops over arrays vectorise (no
 * calls, no branches). exp is the Cephes single-precision algorithm: x = n ln2 + r
 * with |r| <= ln2/2, a degree-6 polynomial for e^r, 2^n from the exponent bits;
 * relative error about 2 ulp over the range where the result is a normal float. */
#ifndef RC_FASTMATH_H
#define RC_FASTMATH_H

#include <stdint.h>

static inline float fm_exp(float x0)
{
    /* written as selects only, so loops over it vectorise; NaN goes through unchanged */
    float x = x0 != x0 ? 0.0f : x0;
    x = x > 88.3762626647949f ? 88.3762626647949f : x;
    x = x < -87.3365447505531f ? -87.3365447505531f : x;
    float fx = __builtin_roundf(x * 1.44269504088896341f);
    float r = x - fx * 0.693359375f + fx * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { uint32_t u; float f; } e;
    e.u = (uint32_t)((int32_t)fx + 127) << 23;
    float res = p * e.f;
    return x0 != x0 ? x0 : res;
}

static inline float fm_sigmoid(float x) { return 1.0f / (1.0f + fm_exp(-x)); }

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|); near 0 a Taylor form keeps the
 * relative error small where 1 - e would cancel. */
static inline float fm_tanh(float x)
{
    float a = x < 0 ? -x : x, e = fm_exp(-2.0f * a), t = (1.0f - e) / (1.0f + e);
    float x2 = x * x, small = x * (1.0f + x2 * (-0.333333333f + x2 * (0.133333333f + x2 * -0.0539682540f)));
    float big = x < 0 ? -t : t;
    return a < 0.0625f ? small : big;
}

#endif
