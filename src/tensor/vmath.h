/* vmath.h: exp, log and log1p for float32 written without branches, so the
 * loops that call them vectorise (libm's expf and logf are calls, one
 * element at a time, and dominated the softmax and logistic losses).
 * Float32 only: float64 kernels keep libm. Also sigmoid and tanh from them.
 *
 * Cephes-style: exp by range reduction to r in [-ln2/2, ln2/2] (two-part
 * ln 2), a degree-6 polynomial and an exponent add; log by splitting off
 * the exponent, m in [sqrt(1/2), sqrt 2), and a degree-8 polynomial in
 * m - 1. Measured against libm in double over every 97th float: exp
 * within 1 ulp, log within 1 ulp, log1p within 2.5 ulp (tests/test_ops.c
 * checks 3 ulp over every 251st bit pattern),
 * with IEEE special values: exp(-inf) = 0, exp(+inf) = inf, exp overflows
 * to inf above 88.72 and flushes to 0 below -103.97; log(0) = -inf,
 * log(x < 0) = NaN, log(inf) = inf; NaN gives NaN.
 */
#ifndef LG_VMATH_H
#define LG_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float lgV_bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t lgV_float_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float lgV_expf(float x)
{
    /* Clamped where the special values come out of the arithmetic itself:
     * from 89 up, n = 128 makes 2^n overflow to inf (exp overflows above
     * 88.7228); at -104 and below, p 2^-150 rounds to 0 (exp flushes to 0
     * below -103.972). Min and max, not selects after the fact (20 % of
     * the loop's time); NaN clamps to 89 and is put back at the end. The
     * results are the same bits as selecting inf and 0 (checked for every
     * float with |x| in [88, 106] and every 97th elsewhere). */
    float xc = x < 89.0f ? x : 89.0f;
    xc = xc > -104.0f ? xc : -104.0f;
    /* n = round(x / ln 2); r = x - n ln 2 (ln 2 in two parts) */
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float n = (xc * 1.44269504088896341f + magic) - magic;
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    /* the polynomial by Estrin's scheme: the chain of dependent operations
     * is what bounds a vector loop of exps, and this halves it */
    float r2 = r * r, r4 = r2 * r2;
    float pa = 1.9875691500e-4f * r + 1.3981999507e-3f;
    float pb = 8.3334519073e-3f * r + 4.1665795894e-2f;
    float pc = 1.6666665459e-1f * r + 5.0000001201e-1f;
    float p = pa * r4 + (pb * r2 + pc);
    p = p * r2 + r + 1.0f;
    /* 2^n in two factors, so that n down to -150 (denormal results) and up
     * to 128 stay representable */
    int32_t ni = (int32_t)n;
    int32_t n1 = ni / 2, n2 = ni - n1;
    float s1 = lgV_bits_to_float((uint32_t)(n1 + 127) << 23);
    float s2 = lgV_bits_to_float((uint32_t)(n2 + 127) << 23);
    float y = p * s1 * s2;
    return x != x ? x : y;
}

static inline float lgV_logf(float x)
{
    /* denormals: scale up by 2^23 first */
    int sub = x < 1.17549435e-38f;
    float xs = sub ? x * 8388608.0f : x;
    uint32_t u = lgV_float_to_bits(xs);
    int32_t e = (int32_t)((u >> 23) & 0xff) - 126;
    float m = lgV_bits_to_float((u & 0x007fffffu) | 0x3f000000u); /* in [0.5, 1) */
    int small = m < 0.707106781186547524f;
    e = small ? e - 1 : e;
    m = small ? m + m - 1.0f : m - 1.0f;
    float z = m * m, z2 = z * z;
    /* Estrin's scheme, as in exp */
    float pa = 7.0376836292e-2f * m - 1.1514610310e-1f;
    float pb = 1.1676998740e-1f * m - 1.2420140846e-1f;
    float pc = 1.4249322787e-1f * m - 1.6668057665e-1f;
    float pd = 2.0000714765e-1f * m - 2.4999993993e-1f;
    float p = (pa * z + pb) * z2 + (pc * z + pd);
    p = p * m + 3.3333331174e-1f;
    p = p * m * z;
    float fe = (float)e - (sub ? 23.0f : 0.0f);
    p += fe * -2.12194440e-4f;
    p += -0.5f * z;
    float y = m + p + fe * 0.693359375f;
    y = x == 0 ? -INFINITY : y;
    y = x < 0 ? NAN : y;
    y = x == INFINITY ? INFINITY : y;
    return x != x ? x : y;
}

/* log(1 + x), accurate for small x: log(u) corrected by (u - 1 - x) / u. */
static inline float lgV_log1pf(float x)
{
    float u = 1.0f + x;
    float d = u - 1.0f;
    float l = lgV_logf(u);
    float c = d == 0 ? x : l * (x / d);
    return u == INFINITY ? INFINITY : c;
}

/* 1 / (1 + exp(-x)): within 2.5 ulp (every 97th float, as above). */
static inline float lgV_sigmoidf(float x)
{
    return 1.0f / (1.0f + lgV_expf(-x));
}

/* tanh: below |x| = 0.625, where 1 - 2 / (exp(2|x|) + 1) would cancel,
 * x + x z P(z) with z = x^2 and P a degree-4 least-squares fit of
 * (tanh(x) / x - 1) / z (0.9 ulp in float32); that form above it.
 * Within 1.4 ulp overall (every 97th float, as above). */
static inline float lgV_tanhf(float x)
{
    float ax = fabsf(x), z = x * x;
    float p = -5.7188915e-3f;
    p = p * z + 2.0653063e-2f;
    p = p * z - 5.3744640e-2f;
    p = p * z + 1.3331513e-1f;
    p = p * z - 3.3333287e-1f;
    float small = x + x * z * p;
    float big = copysignf(1.0f - 2.0f / (lgV_expf(2.0f * ax) + 1.0f), x);
    return ax < 0.625f ? small : big;
}

#endif
