/* ce_rows.c: cross_entropy with class-index targets over rows of classes
 * ([N, C] or [C]) as one fused primitive.
 *
 * The composite (log_softmax, gather, where, mul, sum, and for label
 * smoothing a weighted class sum) walks the N x C logits about ten times
 * forward and back; on 4096 x 1000 it took 118 ms against PyTorch's 38 ms.
 * Fused, each row is read once forward (max, then the exponentials while
 * the row is in cache, kept for the backward as PyTorch keeps log_softmax's
 * output) and the backward scales them, with exp and log from
 * tensor/vmath.h in float32 so the row loops vectorise. The composite stays
 * as the oracle in tests/test_losses.c and serves every other layout
 * (K-dimensional inputs, probability targets).
 *
 * Per row i with lse_i = logsumexp(x_i), lsm = x - lse, target y_i, weight
 * w (1 without), W = sum_c w_c, v_i = -w[y_i] (0 where ignored):
 *   a_i = v_i lsm[y_i]              (0 where ignored)
 *   b_i = -sum_c w_c lsm_c          (0 where ignored; only with smoothing e)
 *   l_i = (1 - e) a_i + (e / C) b_i;  MEAN divides each sum by D = sum of
 *   w[y_i] over kept rows (NaN when D = 0), as the composite.
 *   dl_i/dx_c = (1 - e) v_i (1[c = y_i] - p_c) + (e / C)(p_c W - w_c),
 *   p = softmax(x_i), scaled by the row's upstream (0 where ignored).
 */
#include "../autograd/autograd.h"
#include "../tensor/vmath.h"
#include "loss.h"

#include <math.h>

/* Saved for the backward (in the step arena, through aux). */
typedef struct ce_saved {
    const int64_t *y; /* targets, -1 where ignored */
    void *e;          /* exp(x - row max), N x C of x's dtype */
    double *inv_s;    /* 1 / sum of each row's e: softmax = e inv_s */
    double eps, denom, wsum;
    lg_tensor *w; /* NULL or [C] */
    lg_reduction r;
    lg_tensor *gx; /* made by the forward (see lgL_ce_rows), or NULL */
} ce_saved;

#define CE_KERNELS(T, EXP, LOG, SUF, CLONES)                                                       \
    /* forward of one row: e = exp(x - max), 1 / sum e, a and b */                                 \
    CLONES static void row_fw_##T##SUF(const T *x, T *e, int64_t C, int64_t y, const T *w,         \
                                       bool smooth, double *inv_s, double *a, double *b)           \
    {                                                                                              \
        T m = -INFINITY;                                                                           \
        LGC_SIMD_REDUCE(max : m)                                                                   \
        for (int64_t c = 0; c < C; c++)                                                            \
            m = x[c] > m ? x[c] : m;                                                               \
        if (C >= 1 && m == -INFINITY)                                                              \
            m = 0; /* an all -inf row: lsm = -inf - log 0 = NaN below, as log_softmax */           \
        T s = 0;                                                                                   \
        LGC_SIMD_REDUCE(+ : s)                                                                     \
        for (int64_t c = 0; c < C; c++) {                                                          \
            e[c] = EXP((T)(x[c] - m));                                                             \
            s += e[c];                                                                             \
        }                                                                                          \
        *inv_s = (double)(1 / s);                                                                  \
        T l = (T)(m + LOG(s)); /* logsumexp */                                                     \
        if (y < 0) {                                                                               \
            *a = 0, *b = 0;                                                                        \
            return;                                                                                \
        }                                                                                          \
        T wy = w ? w[y] : (T)1;                                                                    \
        *a = (double)(T)(-wy * (T)(x[y] - l));                                                     \
        *b = 0;                                                                                    \
        if (smooth) {                                                                              \
            double acc = 0;                                                                        \
            LGC_SIMD_REDUCE(+ : acc)                                                               \
            for (int64_t c = 0; c < C; c++)                                                        \
                acc += (double)((w ? w[c] : (T)1) * (T)(x[c] - l));                                \
            *b = -acc;                                                                             \
        }                                                                                          \
    }                                                                                              \
    /* backward of one row, p = e inv_s:                                                           \
     * dx = scale [(1 - eps) v (onehot - p) + (eps / C)(p W - w)] */                               \
    CLONES static void row_bw_##T##SUF(const T *e, int64_t C, int64_t y, const T *w, double inv_s, \
                                       double scale, double eps, double wsum, T *dx)               \
    {                                                                                              \
        T is = (T)inv_s;                                                                           \
        if (y < 0) { /* 0, but NaN where softmax is NaN, as log_softmax's backward */              \
            for (int64_t c = 0; c < C; c++)                                                        \
                dx[c] = (T)(0 * (e[c] * is));                                                      \
            return;                                                                                \
        }                                                                                          \
        T v = (T)(w ? -w[y] : -1);                                                                 \
        T ka = (T)(scale * (1 - eps) * (double)v), kb = (T)(scale * eps / (double)C);              \
        T W = (T)wsum, kp = (T)(-ka * is);                                                         \
        if (eps == 0) {                                                                            \
            for (int64_t c = 0; c < C; c++)                                                        \
                dx[c] = (T)(kp * e[c]);                                                            \
        } else if (!w) {                                                                           \
            for (int64_t c = 0; c < C; c++) {                                                      \
                T p = (T)(e[c] * is);                                                              \
                dx[c] = (T)(-ka * p + kb * (p * W - 1));                                           \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t c = 0; c < C; c++) {                                                      \
                T p = (T)(e[c] * is);                                                              \
                dx[c] = (T)(-ka * p + kb * (p * W - w[c]));                                        \
            }                                                                                      \
        }                                                                                          \
        dx[y] = (T)(dx[y] + ka);                                                                   \
    }

static inline double exp_d(double x)
{
    return exp(x);
}
static inline double log_d(double x)
{
    return log(x);
}
CE_KERNELS(float, lgV_expf, lgV_logf, , LGC_VECTOR_CLONES)
CE_KERNELS(double, exp_d, log_d, , LGC_VECTOR_CLONES)
/* Rows of fewer than 16 classes (a 10-class softmax) never reach the
 * AVX-512 clone's 16-lane loop and ran its scalar remainder: 1.5x the
 * AVX2 clone's time. They get clones without AVX-512. */
CE_KERNELS(float, lgV_expf, lgV_logf, _narrow, LGC_VECTOR_CLONES_NARROW)

lg_tensor *lgL_ce_rows(lg_ctx *ctx, lg_tensor *x, const int64_t *y, lg_tensor *w, double eps,
                       double denom, lg_reduction r, const char *who)
{
    int64_t C = x->shape[x->ndim - 1], N = x->ndim == 2 ? x->shape[0] : 1;
    bool none = r == LG_REDUCTION_NONE;
    lg_tensor *l = none ? lgT_new(ctx, (lg_dtype)x->dtype, x->ndim - 1, x->shape, who)
                        : lgT_new(ctx, (lg_dtype)x->dtype, 0, NULL, who);
    ce_saved *sv = lgC_salloc(ctx, sizeof *sv, who);
    double *inv_s = lgC_salloc(ctx, (size_t)(N ? N : 1) * sizeof *inv_s, who);
    double *ab = lgC_salloc(ctx, (size_t)(N ? 2 * N : 1) * sizeof *ab, who);
    /* Training with SUM or MEAN: each row's gradient for an upstream of 1 is
     * made from e while the row is in cache (in place), and the backward
     * adopts it (or scales it once). */
    bool eager = !none && ctx->no_grad == 0 && x->requires_grad;
    lg_tensor *gx = eager ? lgT_new_like(ctx, x, who) : NULL;
    void *e =
        eager ? (gx ? gx->data : NULL)
              : lgC_salloc(
                    ctx, (size_t)(N * C > 0 ? N * C : 1) * lgT_dtype_size((lg_dtype)x->dtype), who);
    if (!l || !sv || !inv_s || !ab || !e)
        return NULL;
    double scale = r == LG_REDUCTION_MEAN ? 1 / denom : 1;
    bool smooth = eps > 0;
    double wsum = (double)C;
    if (w) {
        wsum = 0;
        for (int64_t c = 0; c < C; c++)
            wsum += lgT_get(w, c);
    }
    if (x->dtype == LG_F32) {
        const float *xv = LGT_F(x), *wv = w ? LGT_F(w) : NULL;
        bool narrow = C < 16;
        LGT_FOR(
            ctx, N * C, for (int64_t i = 0; i < N; i++) {
                float *ei = (float *)e + i * C;
                (narrow ? row_fw_float_narrow : row_fw_float)(
                    xv + i * C, ei, C, y[i], wv, smooth, &inv_s[i], &ab[2 * i], &ab[2 * i + 1]);
                if (eager)
                    (narrow ? row_bw_float_narrow : row_bw_float)(ei, C, y[i], wv, inv_s[i], scale,
                                                                  eps, wsum, ei);
            });
    } else {
        const double *xv = LGT_D(x), *wv = w ? LGT_D(w) : NULL;
        LGT_FOR(
            ctx, N * C, for (int64_t i = 0; i < N; i++) {
                double *ei = (double *)e + i * C;
                row_fw_double(xv + i * C, ei, C, y[i], wv, smooth, &inv_s[i], &ab[2 * i],
                              &ab[2 * i + 1]);
                if (eager)
                    row_bw_double(ei, C, y[i], wv, inv_s[i], scale, eps, wsum, ei);
            });
    }
    if (none) {
        for (int64_t i = 0; i < N; i++) /* (1 - e) a + (e / C) b, each rounded as the composite */
            lgT_set(l, i,
                    smooth ? (1 - eps) * ab[2 * i] + eps / (double)C * ab[2 * i + 1] : ab[2 * i]);
    } else {
        double sa = 0, sb = 0;
        for (int64_t i = 0; i < N; i++)
            sa += ab[2 * i], sb += ab[2 * i + 1];
        if (r == LG_REDUCTION_MEAN)
            sa /= denom, sb /= denom; /* 0/0 is NaN */
        lgT_set(l, 0, smooth ? (1 - eps) * sa + eps / (double)C * sb : sa);
    }
    *sv = (ce_saved){ y, e, inv_s, eps, denom, wsum, w, r, gx };
    l->aux = sv;
    return lgA_record(ctx, LGA_OP_cross_entropy_rows, l, 1, (lg_tensor *[]){ x });
}

lg_status lgA_bw_cross_entropy_rows(lg_ctx *ctx, lg_tensor *l)
{
    lg_tensor *x = l->in[0];
    const ce_saved *sv = l->aux;
    int64_t C = x->shape[x->ndim - 1], N = x->ndim == 2 ? x->shape[0] : 1;
    if (sv->gx)
        return lgL_adopt_scaled(ctx, x, sv->gx, lgT_get(l->grad, 0));
    lg_tensor *dx = lgT_new_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    double g0 = sv->r == LG_REDUCTION_NONE ? 0 : lgT_get(l->grad, 0);
    if (sv->r == LG_REDUCTION_MEAN)
        g0 /= sv->denom;
    bool none = sv->r == LG_REDUCTION_NONE;
    if (x->dtype == LG_F32) {
        const float *ev = sv->e, *wv = sv->w ? LGT_F(sv->w) : NULL;
        float *d = LGT_F(dx);
        LGT_FOR(
            ctx, N * C, for (int64_t i = 0; i < N; i++) {
                double s = none ? (double)LGT_F(l->grad)[i] : g0;
                (C < 16 ? row_bw_float_narrow : row_bw_float)(
                    ev + i * C, C, sv->y[i], wv, sv->inv_s[i], s, sv->eps, sv->wsum, d + i * C);
            });
    } else {
        const double *ev = sv->e, *wv = sv->w ? LGT_D(sv->w) : NULL;
        double *d = LGT_D(dx);
        LGT_FOR(
            ctx, N * C, for (int64_t i = 0; i < N; i++) {
                double s = none ? LGT_D(l->grad)[i] : g0;
                row_bw_double(ev + i * C, C, sv->y[i], wv, sv->inv_s[i], s, sv->eps, sv->wsum,
                              d + i * C);
            });
    }
    return lgA_accum(ctx, x, dx);
}

/* nll_loss over rows ([N, C] or [C]): l_i = -w[y_i] x[i, y_i], 0 where
 * ignored. The composite (gather, where, mul, sum) stays as the oracle and
 * serves K-dimensional inputs. The backward writes the dense gradient once:
 * zeros, and -w[y_i] times the row's upstream at each target. */
typedef struct nll_saved {
    const int64_t *y;
    double denom;
    lg_tensor *w;
    lg_reduction r;
} nll_saved;

lg_tensor *lgL_nll_rows(lg_ctx *ctx, lg_tensor *x, const int64_t *y, lg_tensor *w, double denom,
                        lg_reduction r, const char *who)
{
    int64_t C = x->shape[x->ndim - 1], N = x->ndim == 2 ? x->shape[0] : 1;
    bool none = r == LG_REDUCTION_NONE;
    lg_tensor *l = none ? lgT_new(ctx, (lg_dtype)x->dtype, x->ndim - 1, x->shape, who)
                        : lgT_new(ctx, (lg_dtype)x->dtype, 0, NULL, who);
    nll_saved *sv = l ? lgC_salloc(ctx, sizeof *sv, who) : NULL;
    if (!sv)
        return NULL;
    double sum = 0;
    for (int64_t i = 0; i < N; i++) {
        double v = 0;
        if (y[i] >= 0) /* an ignored row contributes 0, even over inf or NaN */
            v = -(w ? lgT_get(w, y[i]) : 1.0) * lgT_get(x, i * C + y[i]);
        if (none)
            lgT_set(l, i, v);
        else
            sum += (double)(x->dtype == LG_F32 ? (double)(float)v : v);
    }
    if (!none)
        lgT_set(l, 0, r == LG_REDUCTION_MEAN ? sum / denom : sum);
    *sv = (nll_saved){ y, denom, w, r };
    l->aux = sv;
    return lgA_record(ctx, LGA_OP_nll_rows, l, 1, (lg_tensor *[]){ x });
}

lg_status lgA_bw_nll_rows(lg_ctx *ctx, lg_tensor *l)
{
    lg_tensor *x = l->in[0];
    const nll_saved *sv = l->aux;
    int64_t C = x->shape[x->ndim - 1], N = x->ndim == 2 ? x->shape[0] : 1;
    lg_tensor *dx = lgT_zeros_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    double g0 = sv->r == LG_REDUCTION_NONE ? 0 : lgT_get(l->grad, 0);
    if (sv->r == LG_REDUCTION_MEAN)
        g0 /= sv->denom;
    for (int64_t i = 0; i < N; i++) {
        if (sv->y[i] < 0)
            continue;
        double s = sv->r == LG_REDUCTION_NONE ? lgT_get(l->grad, i) : g0;
        lgT_set(dx, i * C + sv->y[i], -(sv->w ? lgT_get(sv->w, sv->y[i]) : 1.0) * s);
    }
    return lgA_accum(ctx, x, dx);
}
