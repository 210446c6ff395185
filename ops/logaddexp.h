/* Internal: log(e^a + e^b) of doubles, with the transcendental part in float, written
 * as selects only so that loops over arrays of it vectorise (8 lanes of float beside
 * 2x4 or 8 of double). The CTC kernel's recursions are chains of it.
 *
 * logaddexp(a, b) = m + log1p(exp(d)), m = max(a, b), d = min(a, b) - m <= 0: the
 * running values keep double's range and spacing (a state hundreds of nats below the
 * best loses nothing), while exp and log1p work on d and on a value in [0, 1] where
 * float's relative error is an absolute error of about 1e-7 whatever the magnitude.
 * exp is Cephes' single-precision polynomial with the rounding to an integer done by
 * adding 1.5*2^23 (no rounding call); log1p of u in [0, 1] is 2 atanh(u / (2 + u)), a
 * division and a short polynomial. FMA where the target has it (the
 * project builds as ISO C, where the compiler does not contract a*b+c by itself). */
#ifndef RC_LOGADDEXP_H
#define RC_LOGADDEXP_H

#include <stdint.h>

#if defined(__FMA__)
#define LA_FMA(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define LA_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* e^x for x in [-88, 88] (callers clamp: the kernels give it differences to a
 * maximum, <= 0 up to rounding, clamped below at -88 by the same select that maps NaN
 * away): about 1 ulp where the result is a normal float (x >= -87.3); 0 where
 * x*log2(e) rounds to -127 (x < -87.68), subnormal in between. The add that rounds
 * x*log2(e) to an integer n also adds 127, so that t's low bits shifted up by 23 are
 * the bits of 2^n (0 for n = -127). */
static inline float la_exp(float x)
{
    const float magic = 12583039.0f;   /* 1.5 * 2^23 + 127 */
    float t = LA_FMA(x, 1.44269504088896341f, magic), fx = t - magic;
    union { float f; uint32_t u; } ut = { t }, sc;
    float r = LA_FMA(fx, -0.693359375f, x);
    r = LA_FMA(fx, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = LA_FMA(p, r, 1.3981999507e-3f);
    p = LA_FMA(p, r, 8.3334519073e-3f);
    p = LA_FMA(p, r, 4.1665795894e-2f);
    p = LA_FMA(p, r, 1.6666665459e-1f);
    p = LA_FMA(p, r, 5.0000001201e-1f);
    p = LA_FMA(p, r * r, r + 1.0f);
    sc.u = ut.u << 23;
    return p * sc.f;
}

/* e^x for x <= 88 or -inf (0 there); NaN gives 0 too. */
static inline float la_exp_lo(float x)
{
    return la_exp(x > -88.0f ? x : -88.0f);
}

/* e^x for any x <= 88, -inf and NaN included: 0 at -inf, NaN for NaN. */
static inline float la_exp_any(float x)
{
    float y = la_exp_lo(x);
    return x != x ? x : y;
}

/* log(1 + u) for u in [0, 1], about 1e-7 absolute: 2 atanh(s) with s = u / (2 + u)
 * in [0, 1/3], written as t + t w Q(w) with t = 2s, w = t^2 and Q a degree-3
 * polynomial (a Chebyshev fit of (atanh(s)/s - 1) / (4 s^2) on w in [0, 4/9], error
 * 4e-8 there, 1e-8 in the result). One division instead of a longer polynomial with
 * the exponent taken apart. */
static inline float la_log1p01(float u)
{
    float t = u / LA_FMA(0.5f, u, 1.0f), w = t * t, q = 5.2444332075853812e-4f;
    q = LA_FMA(q, w, 2.2059859222898814e-3f);
    q = LA_FMA(q, w, 1.2502362701534752e-2f);
    q = LA_FMA(q, w, 8.3333300420874050e-2f);
    return LA_FMA(t, w * q, t);
}

/* log(e^a + e^b) for doubles that are finite or -inf: -inf when both are (d is NaN
 * then, which the clamp maps to -88, so no NaN arises). Absolute error about 1e-7. */
static inline double logaddexp(double a, double b)
{
    double m = a > b ? a : b;
    float d = (float)((a > b ? b : a) - m);
    return m + (double)la_log1p01(la_exp(d > -88.0f ? d : -88.0f));
}

#endif
