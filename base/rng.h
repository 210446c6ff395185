/* Internal: the seeded generator (xoshiro256** seeded by splitmix64). Its state is a
 * plain struct so checkpoints can store it. */
#ifndef RC_RNG_H
#define RC_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct rng_t { uint64_t s[4]; } rng_t;

static inline uint64_t rng_splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void rng_seed(rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = rng_splitmix(&seed);
}

static inline uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s, x = s[1] * 5, res = ((x << 7) | (x >> 57)) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return res;
}

/* Uniform in [0, 1) with 24 bits, so every value is exact in float. */
static inline float rng_float(rng_t *r) { return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f); }
static inline float rng_uniform(rng_t *r, float lo, float hi) { return lo + (hi - lo) * rng_float(r); }
/* Standard normal by Box-Muller (one of the pair). */
static inline float rng_normal(rng_t *r)
{
    double u = ((double)(rng_next(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double v = (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

#endif
