/* pointwise.c: the elementwise losses as one fused primitive.
 *
 * l1, mse, smooth_l1, huber, hinge_embedding and soft_margin are, as
 * composites, 3 to 10 ops each: on 64 elements the per-op bookkeeping is
 * most of the time (smooth_l1: 12.7 us composite, PyTorch 53 us), and on a
 * million elements every op walks memory again (and the backward walks it
 * once per op). Fused, the forward reads x and y once, computing the
 * reduction on the fly, and the backward reads them once more and writes
 * each gradient once. The composites they replace stay in
 * tests/test_losses.c as oracles the fused losses must match, value and
 * gradient, kinks and NaN included.
 *
 * The logistic kinds take both their value and their gradient from one
 * exp(-|x|): 1 / (1 + e^x) is e / (1 + e) for x >= 0 and 1 / (1 + e) below.
 *
 * Per element, d = x - y:
 *   l1         |d|                          dl/dd = sign(d), 0 at 0 and NaN
 *   mse        d^2                          2 d
 *   smooth_l1  |d| - b/2 if |d| >= b,       sign(d)           (b = beta; NaN: inner)
 *              d^2 (0.5/b) otherwise        d (1/b) via 2 d (0.5/b)
 *   huber      a (|d| - a/2) if |d| > a,    a sign(d)         (a = delta)
 *              d^2 / 2 otherwise            d
 *   hinge      x if y == 1,                 1
 *              max(0, m - x) if y == -1     -1 where m - x >= 0 (clamp's rule)
 *   soft margin -log_sigmoid(t), t = y x    dl/dt = -1 / (1 + e^t); dx = y dl/dt,
 *                                           dy = x dl/dt
 *   bce, BCE with logits, multilabel soft margin, KL: as bce.c and kl_div.c
 * The reduction is part of the primitive: NONE writes l; SUM and MEAN add
 * blocks of 4096 elements in double and the block sums in order, so the
 * result does not depend on the thread count. With SUM or MEAN while
 * training (x wants a gradient and the target does not), the forward also
 * writes dl/dx times the reduction's scale: the backward, for an upstream
 * of 1, is then that tensor itself (otherwise one scaling pass), and x and
 * y are read once in all (the bound of a memory-bound loss).
 */
#include "../autograd/autograd.h"
#include "../tensor/vmath.h"
#include "loss.h"

#include <math.h>

enum { BLOCK = 4096 };

/* One element: the value and its derivatives gx = dl/dx, gy = dl/dy. */
#define PW_ELEMENT(T, FABS, EXP, LOG, LOG1P)                                                       \
    static inline __attribute__((always_inline)) T elem_##T(int kind, T x, T y, T a, T *gx, T *gy) \
    {                                                                                              \
        /* both branches, then selects: no data-dependent jumps, so the loops vectorise */         \
        T d = (T)(x - y), ad = FABS(d);                                                            \
        T sg = (T)((d > 0) - (d < 0));                                                             \
        T l;                                                                                       \
        switch (kind) {                                                                            \
        case LGL_PW_L1: *gx = sg, l = ad; break;                                                   \
        case LGL_PW_MSE: *gx = (T)(2 * d), l = (T)(d * d); break;                                  \
        case LGL_PW_SMOOTH_L1: {                                                                   \
            T h = (T)(0.5 / (double)a);                                                            \
            bool outer = ad >= a;                                                                  \
            *gx = outer ? sg : (T)(2 * d * h);                                                     \
            l = outer ? (T)(ad + (T)(-0.5 * (double)a)) : (T)((T)(d * d) * h);                     \
            break;                                                                                 \
        }                                                                                          \
        case LGL_PW_HUBER: {                                                                       \
            bool outer = ad > a;                                                                   \
            *gx = outer ? (T)(a * sg) : d;                                                         \
            l = outer ? (T)((T)(ad + (T)(-0.5 * (double)a)) * a) : (T)((T)(d * d) * (T)0.5);       \
            break;                                                                                 \
        }                                                                                          \
        case LGL_PW_HINGE: {                                                                       \
            T v = (T)(-x + a);                                                                     \
            bool pos = y == 1;                                                                     \
            *gx = pos ? (T)1 : (v >= 0 ? (T)-1 : (T)0);                                            \
            *gy = 0;                                                                               \
            return pos ? x : (v < 0 ? (T)0 : v);                                                   \
        }                                                                                          \
        case LGL_PW_SOFT_MARGIN: { /* -log_sigmoid(t), t = y x */                                  \
            T t = (T)(y * x), e = EXP(-FABS(t)), r = (T)(1 / (1 + e));                             \
            T ls = (T)((t < 0 ? t : 0) - LOG1P(e));                                                \
            T dt = -(t >= 0 ? (T)(e * r) : r); /* -1 / (1 + e^t) from the same exp */              \
            *gx = (T)(dt * y), *gy = (T)(dt * x);                                                  \
            return (T)-ls;                                                                         \
        }                                                                                          \
        case LGL_PW_BCE_LOGITS: { /* (1 - y) x - log_sigmoid(x) */                                 \
            T e = EXP(-FABS(x)), r = (T)(1 / (1 + e));                                             \
            T ls = (T)((x < 0 ? x : 0) - LOG1P(e));                                                \
            T omy = (T)(-y + 1);                                                                   \
            *gx = (T)(omy - (x >= 0 ? (T)(e * r) : r)); /* 1 / (1 + e^x) */                        \
            *gy = (T)-x;                                                                           \
            return (T)((T)(omy * x) + (T)-ls);                                                     \
        }                                                                                          \
        case LGL_PW_MLSM: { /* -(y log_sigmoid(x) + (1 - y) log_sigmoid(-x)) */                    \
            T e = EXP(-FABS(x)), r = (T)(1 / (1 + e)), er = (T)(e * r);                            \
            T lp1 = LOG1P(e);                                                                      \
            T lsp = (T)((x < 0 ? x : 0) - lp1), lsn = (T)((x > 0 ? -x : 0) - lp1);                 \
            T omy = (T)(-y + 1);                                                                   \
            T sn = x >= 0 ? er : r, sp = x >= 0 ? r : er; /* 1 / (1 + e^x), 1 / (1 + e^-x) */      \
            *gx = (T) - ((T)(y * sn) - (T)(omy * sp));                                             \
            *gy = (T) - (lsp - lsn);                                                               \
            return (T) - ((T)(y * lsp) + (T)(omy * lsn));                                          \
        }                                                                                          \
        case LGL_PW_KL: { /* xlogy(y, y) - y x */                                                  \
            T ly = LOG(y);                                                                         \
            T xl = (y == 0 && y == y) ? (T)0 : (T)(y * ly);                                        \
            *gx = -y;                                                                              \
            *gy = (T)((T)((y == 0 && y <= 0) ? (T)0 : ly) + (T)(y / y) - x);                       \
            return (T)(xl - (T)(y * x));                                                           \
        }                                                                                          \
        case LGL_PW_BCE: { /* logs clamped at -100, gradient over max(x (1 - x), eps0): bce.c */   \
            T lx = LOG(x), l1x = LOG((T)(1 - x));                                                  \
            T den = (T)(x * (T)(1 - x)), eps0 = (T)1e-12f;                                         \
            *gx = (T)((T)(x - y) / (den > eps0 ? den : eps0));                                     \
            *gy = (T)(l1x - lx);                                                                   \
            lx = lx < -100 ? (T)-100 : lx;                                                         \
            l1x = l1x < -100 ? (T)-100 : l1x;                                                      \
            return (T)((T)((y - 1) * l1x) - (T)(y * lx));                                          \
        }                                                                                          \
        default: { /* KL with log target: exp(y) (y - x) */                                        \
            T ey = EXP(y), dd = (T)(y - x);                                                        \
            *gx = -ey;                                                                             \
            *gy = (T)((T)(ey * dd) + ey);                                                          \
            return (T)(ey * dd);                                                                   \
        }                                                                                          \
        }                                                                                          \
        *gy = (T) - *gx;                                                                           \
        return l;                                                                                  \
    }
static inline double exp_d(double x)
{
    return exp(x);
}
static inline double log_d(double x)
{
    return log(x);
}
static inline double log1p_d(double x)
{
    return log1p(x);
}
PW_ELEMENT(float, fabsf, lgV_expf, lgV_logf, lgV_log1pf)
PW_ELEMENT(double, fabs, exp_d, log_d, log1p_d)

#define PW_KERNELS(T, K)                                                                           \
    /* Threads take whole blocks, and each block is a call to a vector clone:                      \
     * the loop OpenMP outlines stays a plain loop of calls. */                                    \
    LGC_VECTOR_CLONES static void fw_rows_##T##_##K(const T *x, const T *y, T a, T *l, int64_t n)  \
    {                                                                                              \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gx, gy;                                                                              \
            l[i] = elem_##T(K, x[i], y[i], a, &gx, &gy);                                           \
        }                                                                                          \
    }                                                                                              \
    static void fw_none_##T##_##K(lg_ctx *ctx, const T *x, const T *y, T a, T *l, int64_t n)       \
    {                                                                                              \
        int64_t nb = (n + BLOCK - 1) / BLOCK;                                                      \
        LGT_FOR(                                                                                   \
            ctx, n, for (int64_t b = 0; b < nb; b++) {                                             \
                int64_t lo = b * BLOCK, m = lo + BLOCK < n ? BLOCK : n - lo;                       \
                fw_rows_##T##_##K(x + lo, y + lo, a, l + lo, m);                                   \
            });                                                                                    \
    }                                                                                              \
    /* Sum of a block: the values of 256 elements at a time into a buffer                          \
     * (a vector loop), added with four accumulators in a fixed order; with                        \
     * WG also gx scale into gxo (the backward's work, done while x and y                          \
     * are in registers). */                                                                       \
    static inline __attribute__((always_inline)) double fw_block_loop_##T##_##K(                   \
        const T *x, const T *y, T a, T scale, T *gxo, int64_t n, const bool WG)                    \
    {                                                                                              \
        double acc[4] = { 0, 0, 0, 0 };                                                            \
        T buf[256];                                                                                \
        for (int64_t lo = 0; lo < n; lo += 256) {                                                  \
            int64_t m = n - lo < 256 ? n - lo : 256;                                               \
            for (int64_t k = 0; k < m; k++) {                                                      \
                T gx, gy;                                                                          \
                buf[k] = elem_##T(K, x[lo + k], y[lo + k], a, &gx, &gy);                           \
                if (WG)                                                                            \
                    gxo[lo + k] = (T)(gx * scale);                                                 \
            }                                                                                      \
            for (int64_t k = m; k < ((m + 3) & ~(int64_t)3); k++)                                  \
                buf[k] = 0;                                                                        \
            for (int64_t k = 0; k < m; k += 4)                                                     \
                for (int j = 0; j < 4; j++)                                                        \
                    acc[j] += (double)buf[k + j];                                                  \
        }                                                                                          \
        return (acc[0] + acc[1]) + (acc[2] + acc[3]);                                              \
    }                                                                                              \
    LGC_VECTOR_CLONES static double fw_block_##T##_##K(const T *x, const T *y, T a, T scale,       \
                                                       T *gxo, int64_t n)                          \
    {                                                                                              \
        return gxo ? fw_block_loop_##T##_##K(x, y, a, scale, gxo, n, true)                         \
                   : fw_block_loop_##T##_##K(x, y, a, scale, gxo, n, false);                       \
    }                                                                                              \
    /* gx: NULL, or where dl/dx times scale goes */                                                \
    static double fw_sum_##T##_##K(lg_ctx *ctx, const T *x, const T *y, T a, T scale, T *gx,       \
                                   int64_t n, double *part)                                        \
    {                                                                                              \
        int64_t nb = (n + BLOCK - 1) / BLOCK;                                                      \
        LGT_FOR(                                                                                   \
            ctx, n, for (int64_t b = 0; b < nb; b++) {                                             \
                int64_t lo = b * BLOCK, hi = lo + BLOCK < n ? lo + BLOCK : n;                      \
                part[b] =                                                                          \
                    fw_block_##T##_##K(x + lo, y + lo, a, scale, gx ? gx + lo : NULL, hi - lo);    \
            });                                                                                    \
        double s = 0;                                                                              \
        for (int64_t b = 0; b < nb; b++)                                                           \
            s += part[b];                                                                          \
        return s;                                                                                  \
    }                                                                                              \
    /* one loop per (which gradients, upstream per element or one scale):                          \
     * constant flags, so no branch stays in the loop */                                           \
    static inline __attribute__((always_inline)) void bw_loop_##T##_##K(                           \
        const T *x, const T *y, T a, const T *g, T gs, T *dx, T *dy, int64_t n, const bool WX,     \
        const bool WY, const bool PG)                                                              \
    {                                                                                              \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T gx, gy, s = PG ? g[i] : gs;                                                          \
            elem_##T(K, x[i], y[i], a, &gx, &gy);                                                  \
            if (WX)                                                                                \
                dx[i] = (T)(gx * s);                                                               \
            if (WY)                                                                                \
                dy[i] = (T)(gy * s);                                                               \
        }                                                                                          \
    }                                                                                              \
    /* one block; m: which of dx (1), dy (2) and a per-element upstream (4) */                     \
    LGC_VECTOR_CLONES static void bw_block_##T##_##K(const T *x, const T *y, T a, const T *g,      \
                                                     T gs, T *dx, T *dy, int64_t n, int m)         \
    {                                                                                              \
        switch (m) {                                                                               \
        case 1: bw_loop_##T##_##K(x, y, a, g, gs, dx, dy, n, 1, 0, 0); break;                      \
        case 2: bw_loop_##T##_##K(x, y, a, g, gs, dx, dy, n, 0, 1, 0); break;                      \
        case 3: bw_loop_##T##_##K(x, y, a, g, gs, dx, dy, n, 1, 1, 0); break;                      \
        case 5: bw_loop_##T##_##K(x, y, a, g, gs, dx, dy, n, 1, 0, 1); break;                      \
        case 6: bw_loop_##T##_##K(x, y, a, g, gs, dx, dy, n, 0, 1, 1); break;                      \
        case 7: bw_loop_##T##_##K(x, y, a, g, gs, dx, dy, n, 1, 1, 1); break;                      \
        default: break;                                                                            \
        }                                                                                          \
    }                                                                                              \
    /* g: the upstream per element, or NULL and gs the scale of every element */                   \
    static void bw_##T##_##K(lg_ctx *ctx, const T *x, const T *y, T a, const T *g, T gs, T *dx,    \
                             T *dy, int64_t n)                                                     \
    {                                                                                              \
        int m = (dx ? 1 : 0) + (dy ? 2 : 0) + (g ? 4 : 0);                                         \
        int64_t nb = (n + BLOCK - 1) / BLOCK;                                                      \
        LGT_FOR(                                                                                   \
            ctx, n, for (int64_t b = 0; b < nb; b++) {                                             \
                int64_t lo = b * BLOCK, k = lo + BLOCK < n ? BLOCK : n - lo;                       \
                bw_block_##T##_##K(x + lo, y + lo, a, g ? g + lo : NULL, gs, dx ? dx + lo : NULL,  \
                                   dy ? dy + lo : NULL, k, m);                                     \
            });                                                                                    \
    }

PW_KERNELS(float, LGL_PW_L1)
PW_KERNELS(float, LGL_PW_MSE)
PW_KERNELS(float, LGL_PW_SMOOTH_L1)
PW_KERNELS(float, LGL_PW_HUBER)
PW_KERNELS(float, LGL_PW_HINGE)
PW_KERNELS(float, LGL_PW_SOFT_MARGIN)
PW_KERNELS(float, LGL_PW_BCE_LOGITS)
PW_KERNELS(float, LGL_PW_KL)
PW_KERNELS(float, LGL_PW_KL_LOG)
PW_KERNELS(float, LGL_PW_MLSM)
PW_KERNELS(float, LGL_PW_BCE)
PW_KERNELS(double, LGL_PW_L1)
PW_KERNELS(double, LGL_PW_MSE)
PW_KERNELS(double, LGL_PW_SMOOTH_L1)
PW_KERNELS(double, LGL_PW_HUBER)
PW_KERNELS(double, LGL_PW_HINGE)
PW_KERNELS(double, LGL_PW_SOFT_MARGIN)
PW_KERNELS(double, LGL_PW_BCE_LOGITS)
PW_KERNELS(double, LGL_PW_KL)
PW_KERNELS(double, LGL_PW_KL_LOG)
PW_KERNELS(double, LGL_PW_MLSM)
PW_KERNELS(double, LGL_PW_BCE)

/* One function per (type, kind): the kind is a constant in each loop, so
 * no branch on it survives and the simple kinds vectorise. */
#define PW_TABLE(T, what)                                                                          \
    {                                                                                              \
        what##_##T##_LGL_PW_L1, what##_##T##_LGL_PW_MSE, what##_##T##_LGL_PW_SMOOTH_L1,            \
            what##_##T##_LGL_PW_HUBER, what##_##T##_LGL_PW_HINGE, what##_##T##_LGL_PW_SOFT_MARGIN, \
            what##_##T##_LGL_PW_BCE_LOGITS, what##_##T##_LGL_PW_KL, what##_##T##_LGL_PW_KL_LOG,    \
            what##_##T##_LGL_PW_MLSM, what##_##T##_LGL_PW_BCE                                      \
    }
typedef void (*fw_none_f)(lg_ctx *, const float *, const float *, float, float *, int64_t);
typedef void (*fw_none_d)(lg_ctx *, const double *, const double *, double, double *, int64_t);
typedef double (*fw_sum_f)(lg_ctx *, const float *, const float *, float, float, float *, int64_t,
                           double *);
typedef double (*fw_sum_d)(lg_ctx *, const double *, const double *, double, double, double *,
                           int64_t, double *);
typedef void (*bw_f)(lg_ctx *, const float *, const float *, float, const float *, float, float *,
                     float *, int64_t);
typedef void (*bw_d)(lg_ctx *, const double *, const double *, double, const double *, double,
                     double *, double *, int64_t);
static const fw_none_f fw_none_float[] = PW_TABLE(float, fw_none);
static const fw_none_d fw_none_double[] = PW_TABLE(double, fw_none);
static const fw_sum_f fw_sum_float[] = PW_TABLE(float, fw_sum);
static const fw_sum_d fw_sum_double[] = PW_TABLE(double, fw_sum);
static const bw_f bw_float[] = PW_TABLE(float, bw);
static const bw_d bw_double[] = PW_TABLE(double, bw);

/* attr: i[0] kind, i[1] reduction, f[0] parameter. The target is an input
 * on the tape except for hinge (whose target only selects a branch). */
lg_tensor *lgL_pointwise(lg_ctx *ctx, int kind, lg_tensor *x, lg_tensor *y, double a,
                         lg_reduction r, const char *who)
{
    bool none = r == LG_REDUCTION_NONE;
    lg_tensor *l =
        none ? lgT_new_like(ctx, x, who) : lgT_new(ctx, (lg_dtype)x->dtype, 0, NULL, who);
    if (!l)
        return NULL;
    int64_t n = x->numel;
    if (none) {
        if (x->dtype == LG_F32)
            fw_none_float[kind](ctx, LGT_F(x), LGT_F(y), (float)a, LGT_F(l), n);
        else
            fw_none_double[kind](ctx, LGT_D(x), LGT_D(y), a, LGT_D(l), n);
    } else {
        double *part = lgC_salloc(ctx, (size_t)((n + BLOCK - 1) / BLOCK + 1) * sizeof *part, who);
        if (!part)
            return NULL;
        /* Training (x wants a gradient, the target does not): the gradient
         * for an upstream of 1 is made here, while x and y are loaded. */
        double scale = r == LG_REDUCTION_MEAN ? 1.0 / (double)n : 1.0;
        bool eager =
            ctx->no_grad == 0 && x->requires_grad && (kind == LGL_PW_HINGE || !y->requires_grad);
        lg_tensor *gx = eager ? lgT_new_like(ctx, x, who) : NULL;
        if (eager && !gx)
            return NULL;
        double s = x->dtype == LG_F32
                       ? fw_sum_float[kind](ctx, LGT_F(x), LGT_F(y), (float)a, (float)scale,
                                            gx ? LGT_F(gx) : NULL, n, part)
                       : fw_sum_double[kind](ctx, LGT_D(x), LGT_D(y), a, scale,
                                             gx ? LGT_D(gx) : NULL, n, part);
        if (r == LG_REDUCTION_MEAN)
            s /= (double)n; /* 0/0: NaN for an empty input, as PyTorch */
        lgT_set(l, 0, s);
        l->aux = gx;
    }
    l->attr.i[0] = kind;
    l->attr.i[1] = r;
    l->attr.f[0] = a;
    int nin = kind == LGL_PW_HINGE ? 1 : 2;
    lg_tensor *out = lgA_record(ctx, LGA_OP_pointwise_loss, l, nin, (lg_tensor *[]){ x, y });
    if (out)
        out->saved = y;
    return out;
}

lg_status lgA_bw_pointwise_loss(lg_ctx *ctx, lg_tensor *l)
{
    lg_tensor *x = l->in[0], *y = l->nin > 1 ? l->in[1] : NULL, *dx = NULL, *dy = NULL;
    int kind = (int)l->attr.i[0];
    lg_reduction r = (lg_reduction)l->attr.i[1];
    lg_tensor *gx = l->aux; /* made by the forward: dl/dx times the reduction's scale */
    if (gx && !(y && lgA_needs(l, 1)))
        return lgL_adopt_scaled(ctx, x, gx, lgT_get(l->grad, 0));
    if (lgA_needs(l, 0) && !(dx = lgT_new_like(ctx, x, "lg_backward")))
        return ctx->status;
    if (y && lgA_needs(l, 1) && !(dy = lgT_new_like(ctx, y, "lg_backward")))
        return ctx->status;
    lg_tensor *yv = l->saved; /* the target's values (hinge: not on the tape) */
    int64_t n = x->numel;
    double gs = r == LG_REDUCTION_NONE ? 0 : lgT_get(l->grad, 0);
    if (r == LG_REDUCTION_MEAN)
        gs /= (double)n;
    bool none = r == LG_REDUCTION_NONE;
    if (x->dtype == LG_F32)
        bw_float[kind](ctx, LGT_F(x), LGT_F(yv), (float)l->attr.f[0], none ? LGT_F(l->grad) : NULL,
                       (float)gs, dx ? LGT_F(dx) : NULL, dy ? LGT_F(dy) : NULL, n);
    else
        bw_double[kind](ctx, LGT_D(x), LGT_D(yv), l->attr.f[0], none ? LGT_D(l->grad) : NULL, gs,
                        dx ? LGT_D(dx) : NULL, dy ? LGT_D(dy) : NULL, n);
    if (dx && lgA_accum(ctx, x, dx) != LG_OK)
        return ctx->status;
    if (dy && lgA_accum(ctx, y, dy) != LG_OK)
        return ctx->status;
    return LG_OK;
}
