/* Internal: exp, log, sigmoid and tanh written so that loops over arrays vectorise
 * (no calls, no branches). exp is the Cephes single-precision algorithm: x = n ln2 + r
 * with |r| <= ln2/2, a degree-6 polynomial for e^r, 2^n from the exponent bits;
 * relative error about 2 ulp over the range where the result is a normal float.
 * The ends are IEEE's: exp(x) = inf above ln(FLT_MAX) ~ 88.72, subnormal results
 * rounded as the hardware rounds them, 0 below ~ -103.97, NaN through. */
#ifndef RC_FASTMATH_H
#define RC_FASTMATH_H

#include <stdint.h>

static inline float fm_exp(float x0)
{
    /* written as selects only, so loops over it vectorise. Clamping to [-104, 89]
     * keeps n in [-150, 128] without changing the result there: exp(89) and more
     * overflow to inf, exp(-104) and less round to 0. 2^n is applied as two factors
     * 2^h 2^(n-h), h = n/2, each a normal float, so that the product overflows or
     * goes subnormal (one rounding) exactly where e^x does. */
    float x = x0 != x0 ? 0.0f : x0;
    x = x > 89.0f ? 89.0f : x;
    x = x < -104.0f ? -104.0f : x;
    float fx = __builtin_roundf(x * 1.44269504088896341f);
    float r = x - fx * 0.693359375f + fx * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t n = (int32_t)fx, h = n / 2;
    union { uint32_t u; float f; } e1, e2;
    e1.u = (uint32_t)(h + 127) << 23;
    e2.u = (uint32_t)(n - h + 127) << 23;
    float res = (p * e1.f) * e2.f;
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

/* log(x) for x a positive normal float (the Cephes single-precision algorithm: x =
 * m 2^e with m in [sqrt(1/2), sqrt(2)), a degree-9 polynomial in m - 1); relative
 * error about 2 ulp. Written as selects only, so loops over it vectorise. Outside its
 * domain (0, subnormals, inf, NaN, negatives) the result is meaningless: callers
 * select it away. */
static inline float fm_log(float x)
{
    union { float f; uint32_t u; } v = { x };
    int32_t e = (int32_t)((v.u >> 23) & 0xffu) - 126;   /* x = m 2^e, m in [1/2, 1) */
    v.u = (v.u & 0x007fffffu) | 0x3f000000u;
    float m = v.f;
    int low = m < 0.707106781186547524f;
    e = low ? e - 1 : e;
    m = low ? m + m - 1.0f : m - 1.0f;
    float z = m * m, y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    float fe = (float)e;
    y += -2.12194440e-4f * fe;
    y += -0.5f * z;
    return m + y + 0.693359375f * fe;
}

#endif
