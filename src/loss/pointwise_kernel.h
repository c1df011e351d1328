/* pointwise_kernel.h: the elementwise loss kernels for one float type,
 * instantiated by pointwise.c through core/instantiate.h (T and FN): float
 * with vmath.h's branch-free exp and logs, so the loops vectorise; double
 * with libm.
 *
 * The driver calls one forward and one backward per type; each switches
 * on the kind once per range into one generic loop with the kind a
 * constant, so no branch on the kind survives in a loop. Elements are selected, not branched on, so the
 * simple kinds vectorise.
 */

/* The type's math: sizeof(T) is a constant, so one branch is left. */
static inline __attribute__((always_inline)) T FN(exp_t)(T x)
{
    return sizeof(T) == sizeof(float) ? (T)lgV_expf((float)x) : (T)exp((double)x);
}
static inline __attribute__((always_inline)) T FN(log_t)(T x)
{
    return sizeof(T) == sizeof(float) ? (T)lgV_logf((float)x) : (T)log((double)x);
}
static inline __attribute__((always_inline)) T FN(log1p_t)(T x)
{
    return sizeof(T) == sizeof(float) ? (T)lgV_log1pf((float)x) : (T)log1p((double)x);
}
static inline __attribute__((always_inline)) T FN(fabs_t)(T x)
{
    return sizeof(T) == sizeof(float) ? (T)fabsf((float)x) : (T)fabs((double)x);
}
#define EXP FN(exp_t)
#define LOG FN(log_t)
#define LOG1P FN(log1p_t)
#define FABS FN(fabs_t)

/* -log_sigmoid(t) = log1p(e^-|t|) - min(t, 0) and 1 / (1 + e^t), from one
 * exp(-|t|) as the composite's stable forms. */
static inline __attribute__((always_inline)) T FN(nlsig)(T t)
{
    T e = EXP(-FABS(t));
    return (T) - ((T)((t < 0 ? t : 0) - LOG1P(e)));
}
static inline __attribute__((always_inline)) T FN(sneg)(T t)
{
    T e = EXP(-FABS(t)), r = (T)(1 / (1 + e));
    return t >= 0 ? (T)(e * r) : r;
}
static inline __attribute__((always_inline)) T FN(clamp100)(T v)
{
    return v < -100 ? (T)-100 : v;
}
static inline __attribute__((always_inline)) T FN(maxeps)(T v)
{
    return v > (T)1e-12f ? v : (T)1e-12f;
}
#define NLSIG FN(nlsig)
#define SNEG FN(sneg)
#define CLAMP100 FN(clamp100)
#define MAXEPS FN(maxeps)

/* One element of kind k: the value, and dl/dx, dl/dy in *gx, *gy. */
static inline __attribute__((always_inline)) T FN(pw_elem)(int k, T x, T y, T a, T *gx, T *gy)
{
    T d = (T)(x - y), ad = FABS(d), sg = (T)((d > 0) - (d < 0));
    (void)ad, (void)sg, (void)a;
    switch (k) {
/* clang-format off */
#define LGL_POINTWISE(kind, loss, l, dx, dy) case LGL_PW_##kind: *gx = (dx), *gy = (dy); return (l);
/* clang-format on */
#include "losses.def"
    }
    *gx = *gy = 0;
    return 0;
}

#undef NLSIG
#undef SNEG
#undef CLAMP100
#undef MAXEPS

enum { FN(PW_BUF) = 256 };

/* NONE: l[i] for i in [lo, hi). */
static inline __attribute__((always_inline)) void FN(pw_values)(int k, const T *x, const T *y, T a,
                                                                T *l, int64_t lo, int64_t hi)
{
    for (int64_t i = lo; i < hi; i++) {
        T gx, gy;
        l[i] = FN(pw_elem)(k, x[i], y[i], a, &gx, &gy);
    }
}

/* The sum over [lo, hi) in double: values 256 at a time into a buffer (a
 * vector loop), then added into 16 accumulators (four vectors of four
 * doubles, so four independent add chains: one chain would bound the loop
 * by the add's latency) summed pairwise at the end, a fixed order; with WG
 * also dl/dx times scale into gx (the backward's work, done while x and y
 * are in registers). */
enum { FN(PW_ACC) = 16 };
static inline __attribute__((always_inline)) double
FN(pw_sum)(int k, const T *x, const T *y, T a, T scale, T *gx, int64_t lo, int64_t hi, const bool WG)
{
    double acc[FN(PW_ACC)] = { 0 };
    T buf[FN(PW_BUF)];
    for (int64_t b = lo; b < hi; b += FN(PW_BUF)) {
        int64_t m = hi - b < FN(PW_BUF) ? hi - b : FN(PW_BUF);
        for (int64_t j = 0; j < m; j++) {
            T g, gy;
            buf[j] = FN(pw_elem)(k, x[b + j], y[b + j], a, &g, &gy);
            if (WG)
                gx[b + j] = (T)(g * scale);
        }
        int64_t full = (m + FN(PW_ACC) - 1) & ~(int64_t)(FN(PW_ACC) - 1);
        for (int64_t j = m; j < full; j++)
            buf[j] = 0;
        for (int64_t j = 0; j < full; j += FN(PW_ACC))
            for (int q = 0; q < FN(PW_ACC); q++)
                acc[q] += (double)buf[j + q];
    }
    for (int w = FN(PW_ACC) / 2; w > 0; w /= 2)
        for (int q = 0; q < w; q++)
            acc[q] += acc[q + w];
    return acc[0];
}

static inline __attribute__((always_inline)) double FN(pw_forward)(int k, const lgL_fused *f,
                                                                   int64_t lo, int64_t hi, void *l,
                                                                   void *gx, double scale)
{
    const T *x = f->in[0]->data, *y = f->in[1]->data;
    T a = (T)f->a[0];
    if (l) {
        FN(pw_values)(k, x, y, a, l, lo, hi);
        return 0;
    }
    return gx ? FN(pw_sum)(k, x, y, a, (T)scale, gx, lo, hi, true)
              : FN(pw_sum)(k, x, y, a, (T)scale, NULL, lo, hi, false);
}

/* dx, dy over [lo, hi): the flags are constants in each instance, so no
 * branch stays in the loop. */
static inline __attribute__((always_inline)) void
FN(pw_grads)(int k, const T *x, const T *y, T a, const T *up, T s, T *dx, T *dy, int64_t lo,
             int64_t hi, const bool WX, const bool WY, const bool PG)
{
    for (int64_t i = lo; i < hi; i++) {
        T gx, gy, g = PG ? up[i] : s;
        FN(pw_elem)(k, x[i], y[i], a, &gx, &gy);
        if (WX)
            dx[i] = (T)(gx * g);
        if (WY)
            dy[i] = (T)(gy * g);
    }
}

static inline __attribute__((always_inline)) void FN(pw_backward)(int k, const lgL_fused *f,
                                                                  int64_t lo, int64_t hi,
                                                                  const void *upv, double scale,
                                                                  void *const *d)
{
    const T *x = f->in[0]->data, *y = f->in[1]->data, *up = upv;
    T a = (T)f->a[0], s = (T)scale, *dx = d[0], *dy = f->ntape > 1 ? d[1] : NULL;
    switch ((dx ? 1 : 0) + (dy ? 2 : 0) + (up ? 4 : 0)) {
    case 1: FN(pw_grads)(k, x, y, a, up, s, dx, dy, lo, hi, 1, 0, 0); break;
    case 2: FN(pw_grads)(k, x, y, a, up, s, dx, dy, lo, hi, 0, 1, 0); break;
    case 3: FN(pw_grads)(k, x, y, a, up, s, dx, dy, lo, hi, 1, 1, 0); break;
    case 5: FN(pw_grads)(k, x, y, a, up, s, dx, dy, lo, hi, 1, 0, 1); break;
    case 6: FN(pw_grads)(k, x, y, a, up, s, dx, dy, lo, hi, 0, 1, 1); break;
    case 7: FN(pw_grads)(k, x, y, a, up, s, dx, dy, lo, hi, 1, 1, 1); break;
    default: break;
    }
}

/* The driver's entry points: the kind is picked once per range, and each
 * case is its own loop with the kind a constant (vector clones). */
LGC_VECTOR_CLONES static double FN(pw_fw)(const lgL_fused *f, int64_t lo, int64_t hi, void *l,
                                          void *gx, double s)
{
    switch (f->variant) {
/* clang-format off */
#define LGL_POINTWISE(kind, name, l_, dx, dy) case LGL_PW_##kind: return FN(pw_forward)(LGL_PW_##kind, f, lo, hi, l, gx, s);
/* clang-format on */
#include "losses.def"
    }
    return 0;
}

LGC_VECTOR_CLONES static void FN(pw_bw)(const lgL_fused *f, int64_t lo, int64_t hi, const void *up,
                                        double s, void *const *d)
{
    switch (f->variant) {
/* clang-format off */
#define LGL_POINTWISE(kind, name, l, dx, dy) case LGL_PW_##kind: FN(pw_backward)(LGL_PW_##kind, f, lo, hi, up, s, d); break;
/* clang-format on */
#include "losses.def"
    }
}

#undef EXP
#undef LOG
#undef LOG1P
#undef FABS
