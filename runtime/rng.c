/* rng.c — deterministic random numbers for initializers, dropout, shuffling.
 *
 * Generator: xoshiro256** (Blackman & Vigna), whose 256-bit state is
 * expanded from a 64-bit seed by four steps of splitmix64, so every seed
 * (0 included) gives a valid, non-zero state. Uniforms take the top 53 bits
 * of one draw: k * 2^-53, exactly representable, in [0, 1). Normals use the
 * Box–Muller transform on two fresh uniforms per call and return the cosine
 * branch only; nothing is cached, so the whole generator is the NnrtRng
 * value and every function is reentrant. The shuffle is Fisher–Yates with
 * bounded integers drawn by rejection (no modulo bias).
 *
 * Invariant: the number of 64-bit draws each call consumes depends only on
 * its arguments (uniform 1, normal 2, shuffle n-1 plus rare rejections), so a
 * seed reproduces a training run exactly.
 */
#include <math.h>

#include "nnrt.h"

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void nnrt_rng_seed(NnrtRng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        /* splitmix64: a bijection of distinct inputs, so the four words are
         * never all zero (the one state xoshiro cannot leave). */
        x += 0x9e3779b97f4a7c15u;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        r->s[i] = z ^ (z >> 31);
    }
}

uint64_t nnrt_rng_next(NnrtRng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double nnrt_rng_uniform(NnrtRng *r)
{
    return (double)(nnrt_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Box–Muller: z = sqrt(-2 ln u1) cos(2 pi u2) with u1 in (0, 1]. */
double nnrt_rng_normal(NnrtRng *r)
{
    double u1 = 1.0 - nnrt_rng_uniform(r);
    double u2 = nnrt_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

/* Uniform integer in [0, bound), bound >= 1: reject the 2^64 mod bound
 * smallest values so every residue is equally likely. */
static uint64_t bounded(NnrtRng *r, uint64_t bound)
{
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t x = nnrt_rng_next(r);
        if (x >= threshold)
            return x % bound;
    }
}

void nnrt_shuffle(size_t *idx, size_t n, NnrtRng *r)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)bounded(r, (uint64_t)i);
        size_t tmp = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = tmp;
    }
}
