/* triplet_rows.c: triplet_margin_loss's common case as one fused primitive:
 * p = 2, no swap, anchor, positive and negative of one shape [..., D].
 *
 * Per row, with u = a - p + eps and v = a - n + eps (eps added in the
 * input's dtype, as the composite), d_ap = |u|, d_an = |v| (sums of
 * squares in double):
 *   l = max(0, margin + d_ap - d_an)           (one value per row)
 * and where margin + d_ap - d_an >= 0 (clamp passes its gradient at the
 * bound), with k_u = g / d_ap and k_v = -g / d_an (0 for a zero distance,
 * as the norm's gradient):
 *   da = k_u u + k_v v,   dp = -k_u u,   dn = -k_v v.
 * The composite (two pairwise distances, sub, add, clamp, each a pass over
 * the rows and a backward) serves p != 2, swap and broadcast batch dims,
 * and is the oracle in tests/test_losses.c. One pass reads the three inputs
 * forward; one reads them again and writes the three gradients.
 */
#include "../autograd/autograd.h"
#include "loss.h"

#include <math.h>

typedef struct triplet_saved {
    double margin, eps;
    double *d; /* [rows][2]: d_ap, d_an */
} triplet_saved;

#define TRIPLET_KERNELS(T)                                                                         \
    LGC_VECTOR_CLONES static void triplet_fw_##T(lg_ctx *ctx, const T *a, const T *p, const T *n,  \
                                                 T *l, double *dist, int64_t rows, int64_t D,      \
                                                 T margin, T eps)                                  \
    {                                                                                              \
        LGT_FOR(                                                                                   \
            ctx, rows *D, for (int64_t i = 0; i < rows; i++) {                                     \
                const T *ai = a + i * D, *pi = p + i * D, *ni = n + i * D;                         \
                double su = 0, sv = 0;                                                             \
                LGC_SIMD_REDUCE(+ : su, sv)                                                        \
                for (int64_t j = 0; j < D; j++) {                                                  \
                    T u = (T)(ai[j] - pi[j]) + eps, v = (T)(ai[j] - ni[j]) + eps;                  \
                    su += (double)u * (double)u;                                                   \
                    sv += (double)v * (double)v;                                                   \
                }                                                                                  \
                T dap = (T)sqrt(su), dan = (T)sqrt(sv), pre = (T)(dap - dan) + margin;             \
                dist[2 * i] = dap, dist[2 * i + 1] = dan;                                          \
                l[i] = pre < 0 ? 0 : pre;                                                          \
            });                                                                                    \
    }                                                                                              \
    LGC_VECTOR_CLONES static void triplet_bw_##T(lg_ctx *ctx, const T *a, const T *p, const T *n,  \
                                                 const T *g, const double *dist, T *da, T *dp,     \
                                                 T *dn, int64_t rows, int64_t D, T margin, T eps)  \
    {                                                                                              \
        LGT_FOR(                                                                                   \
            ctx, rows *D, for (int64_t i = 0; i < rows; i++) {                                     \
                const T *ai = a + i * D, *pi = p + i * D, *ni = n + i * D;                         \
                T dap = (T)dist[2 * i], dan = (T)dist[2 * i + 1];                                  \
                T pre = (T)(dap - dan) + margin, gc = pre >= 0 ? g[i] : 0;                         \
                double ku = dap == 0 ? 0 : (double)gc / (double)dap,                               \
                       kv = dan == 0 ? 0 : (double)-gc / (double)dan;                              \
                LGC_SIMD /* the gradients are fresh tensors: no aliasing */                        \
                    for (int64_t j = 0; j < D; j++)                                                \
                {                                                                                  \
                    T u = (T)(ai[j] - pi[j]) + eps, v = (T)(ai[j] - ni[j]) + eps;                  \
                    T du = (T)(ku * (double)u), dv = (T)(kv * (double)v);                          \
                    da[i * D + j] = dv + du;                                                       \
                    dp[i * D + j] = -du;                                                           \
                    dn[i * D + j] = -dv;                                                           \
                }                                                                                  \
            });                                                                                    \
    }

TRIPLET_KERNELS(float)
TRIPLET_KERNELS(double)

lg_tensor *lgL_triplet_rows(lg_ctx *ctx, lg_tensor *a, lg_tensor *p, lg_tensor *n, double margin,
                            double eps, const char *who)
{
    int64_t D = a->shape[a->ndim - 1];
    lg_tensor *l = lgT_new(ctx, (lg_dtype)a->dtype, a->ndim - 1, a->shape, who);
    int64_t rows = l ? l->numel : 0; /* D may be 0: distances 0 */
    triplet_saved *s = l ? lgC_salloc(ctx, sizeof *s, who) : NULL;
    double *dist = s ? lgC_salloc(ctx, (size_t)(2 * (rows ? rows : 1)) * sizeof *dist, who) : NULL;
    if (!dist)
        return NULL;
    *s = (triplet_saved){ margin, eps, dist };
    if (a->dtype == LG_F32)
        triplet_fw_float(ctx, LGT_F(a), LGT_F(p), LGT_F(n), LGT_F(l), dist, rows, D, (float)margin,
                         (float)eps);
    else
        triplet_fw_double(ctx, LGT_D(a), LGT_D(p), LGT_D(n), LGT_D(l), dist, rows, D, margin, eps);
    l->aux = s;
    return lgA_record(ctx, LGA_OP_triplet_rows, l, 3, (lg_tensor *[]){ a, p, n });
}

lg_status lgA_bw_triplet_rows(lg_ctx *ctx, lg_tensor *l)
{
    static const char who[] = "lg_backward";
    lg_tensor *a = l->in[0], *p = l->in[1], *n = l->in[2];
    const triplet_saved *s = l->aux;
    int64_t D = a->shape[a->ndim - 1], rows = l->numel;
    lg_tensor *da = lgT_new_like(ctx, a, who), *dp = lgT_new_like(ctx, p, who),
              *dn = lgT_new_like(ctx, n, who);
    if (!da || !dp || !dn)
        return ctx->status;
    if (a->dtype == LG_F32)
        triplet_bw_float(ctx, LGT_F(a), LGT_F(p), LGT_F(n), LGT_F(l->grad), s->d, LGT_F(da),
                         LGT_F(dp), LGT_F(dn), rows, D, (float)s->margin, (float)s->eps);
    else
        triplet_bw_double(ctx, LGT_D(a), LGT_D(p), LGT_D(n), LGT_D(l->grad), s->d, LGT_D(da),
                          LGT_D(dp), LGT_D(dn), rows, D, s->margin, s->eps);
    lg_tensor *grads[3] = { da, dp, dn };
    for (int k = 0; k < 3; k++)
        if (lgA_needs(l, k) && lgA_accum(ctx, l->in[k], grads[k]) != LG_OK)
            return ctx->status;
    return LG_OK;
}
