/*
 * rt_rng.c - the deterministic random numbers behind initialisation,
 * shuffling and gradient checking.
 *
 * The generator is xoshiro256** (Blackman and Vigna), its state filled by
 * splitmix64 from (seed, stream).  Both are pure 64-bit integer arithmetic,
 * so the bit stream is the same on every platform and compiler: a seed in a
 * `train` block or on the command line reproduces a run exactly.  Normals
 * use Box-Muller in double precision; they go through libm's log, sqrt and
 * cos, which agree to the last bit on glibc hosts but are not promised to
 * on every libm.
 */
#include "rt_internal.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rt_rng_seed(rt_rng *r, uint64_t seed, uint64_t stream) {
    /* Mixing the stream in with an odd constant keeps (seed, stream) pairs
     * apart; splitmix64 never gives xoshiro the all-zero state in practice. */
    uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    r->has_spare = 0;
    r->spare = 0;
}

uint64_t rt_rng_next(rt_rng *r) {
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

/* Uniform in [0, 1) with 53 random bits. */
double rt_rng_uniform(rt_rng *r) { return (double)(rt_rng_next(r) >> 11) * 0x1.0p-53; }

/* Standard normal by Box-Muller; the second value of each pair is kept. */
double rt_rng_normal(rt_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1 = 1.0 - rt_rng_uniform(r); /* (0, 1]: log() stays finite */
    double u2 = rt_rng_uniform(r);
    double radius = sqrt(-2.0 * log(u1));
    double angle = 2.0 * M_PI * u2;
    r->spare = radius * sin(angle);
    r->has_spare = 1;
    return radius * cos(angle);
}

/* Uniform in [0, n) without modulo bias: reject the short top range. */
uint64_t rt_rng_below(rt_rng *r, uint64_t n) {
    if (n <= 1)
        return 0;
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = rt_rng_next(r);
        if (x >= threshold)
            return x % n;
    }
}

/* Fisher-Yates. */
void rt_rng_shuffle(rt_rng *r, int64_t *a, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)rt_rng_below(r, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
