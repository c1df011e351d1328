/* rng.c: the ctx-owned random number generator.
 *
 * Algorithm (documented, so a seed reproduces a run anywhere): the seed is
 * expanded by splitmix64 into the 256-bit state of xoshiro256** (Blackman
 * and Vigna). Uniform doubles take the top 53 bits of one output, times
 * 2^-53. Normals use the Box-Muller transform on two uniforms
 * u1 in (0,1], u2 in [0,1): r = sqrt(-2 ln u1), giving r cos(2 pi u2) and
 * then r sin(2 pi u2) on the next call. Reseeding drops the spare normal.
 */
#include "core.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(lg_ctx *ctx)
{
    uint64_t *s = ctx->rng;
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

void lg_seed(lg_ctx *ctx, uint64_t seed)
{
    if (!ctx)
        return;
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        ctx->rng[i] = splitmix64(&x);
    ctx->has_spare = false;
}

double lg_rand_uniform(lg_ctx *ctx)
{
    if (!ctx)
        return 0.0;
    return (double)(next_u64(ctx) >> 11) * 0x1.0p-53;
}

double lg_rand_normal(lg_ctx *ctx)
{
    if (!ctx)
        return 0.0;
    if (ctx->has_spare) {
        ctx->has_spare = false;
        return ctx->spare_normal;
    }
    double u1 = 1.0 - lg_rand_uniform(ctx); /* (0, 1]: log is finite */
    double u2 = lg_rand_uniform(ctx);
    double r = sqrt(-2.0 * log(u1));
    double a = 6.283185307179586476925 * u2;
    ctx->spare_normal = r * sin(a);
    ctx->has_spare = true;
    return r * cos(a);
}

uint64_t lg_rand_below(lg_ctx *ctx, uint64_t n)
{
    if (!ctx || n == 0)
        return 0;
    /* Rejection sampling: no modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = next_u64(ctx);
    while (x >= limit);
    return x % n;
}
