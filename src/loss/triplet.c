/* triplet.c: triplet_margin_loss (fused for p = 2 without swap or
 * broadcasting, below) and triplet_margin_with_distance_loss (composite).
 *
 *   triplet: l = max(0, margin + d(a, p) - d(a, n)),  d(u, v) = ||u - v + eps||_p
 *            (swap: d(a, n) <- min(d(a, n), d(p, n)))
 * The hinge uses clamp, whose gradient passes at the bound, as PyTorch's
 * clamp_min.
 */
#include "fused.h"
#include "loss.h"

#include <math.h>
#include <string.h>

static const lg_triplet_opts triplet_defaults = {
    .defaults_tag = LG_OPTS_TAG, .margin = 1.0, .p = 2.0, .eps = 1e-6
};
static const lgC_optfield triplet_fields[] = {
    LGC_FIELD(lg_triplet_opts, margin, "1"),
    LGC_FIELD(lg_triplet_opts, p, "2"),
    LGC_FIELD(lg_triplet_opts, eps, "1e-6"),
};
static const lgC_opts_desc triplet_desc =
    LGC_DESC(lg_triplet_opts, triplet_defaults, triplet_fields);

lg_triplet_opts lg_triplet_opts_default(void)
{
    return triplet_defaults;
}

static lg_tensor *triplet_margin_loss_body(lg_ctx *ctx, lg_tensor *anchor, lg_tensor *positive,
                                           lg_tensor *negative, const lg_triplet_opts *opts)
{
    static const char who[] = "lg_triplet_margin_loss";
    lg_triplet_opts ov;
    if (!lgC_opts(ctx, who, &triplet_desc, opts, &ov))
        return NULL;
    const lg_triplet_opts *o = &ov;
    lg_reduction r = o->reduction;
    double margin = o->margin;
    double p = o->p;
    double eps = o->eps;
    if (!ctx || !lgT_ok_float(ctx, anchor, who, "anchor") ||
        !lgT_ok_float(ctx, positive, who, "positive") ||
        !lgT_ok_float(ctx, negative, who, "negative") || !lgL_reduction(ctx, r, false, who))
        return NULL;
    int na = lg_tensor_ndim(anchor), np = lg_tensor_ndim(positive), nn = lg_tensor_ndim(negative);
    if (na != np || na != nn || na == 0)
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: anchor, positive and negative have %d, %d and %d dims, expected the "
                         "same number (at least 1)",
                         who, na, np, nn);
    lg_dtype dt = lg_tensor_dtype(anchor);
    if (lg_tensor_dtype(positive) != dt || lg_tensor_dtype(negative) != dt)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: anchor, positive and negative differ in dtype",
                         who);
    for (int d = 0; d < na; d++) {
        int64_t a = lg_tensor_shape(anchor)[d], b = lg_tensor_shape(positive)[d],
                c = lg_tensor_shape(negative)[d];
        int64_t m = a > b ? (a > c ? a : c) : (b > c ? b : c);
        bool last = d == na - 1;
        if ((last && (a != b || a != c)) || (a != m && a != 1) || (b != m && b != 1) ||
            (c != m && c != 1))
            return lgC_error(ctx, LG_ERR_SHAPE, "%s: sizes %lld, %lld and %lld at dim %d do not %s",
                             who, (long long)a, (long long)b, (long long)c, d,
                             last ? "match (the feature dim must be equal)" : "broadcast");
    }
    if (isnan(p) || isnan(eps))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: p and eps must be numbers", who);
    if (p == 2 && !(o->swap) && lgT_same_shape(anchor, positive) &&
        lgT_same_shape(anchor, negative)) /* the common case, fused (triplet_rows.c) */
        return lgL_reduce(ctx, lgL_triplet_rows(ctx, anchor, positive, negative, margin, eps, who),
                          r);
    lg_tensor *d_ap = lg_pairwise_distance(ctx, anchor, positive, p, eps, false);
    lg_tensor *d_an = lg_pairwise_distance(ctx, anchor, negative, p, eps, false);
    if (o->swap)
        d_an = lg_minimum(ctx, d_an, lg_pairwise_distance(ctx, positive, negative, p, eps, false));
    lg_tensor *l = lg_clamp(ctx, lg_add_scalar(ctx, lg_sub(ctx, d_ap, d_an), margin), 0, INFINITY);
    return lgL_reduce(ctx, l, r);
}

lg_tensor *lg_triplet_margin_loss(lg_ctx *ctx, lg_tensor *anchor, lg_tensor *positive,
                                  lg_tensor *negative, const lg_triplet_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_triplet_margin_loss");
    lg_tensor *res = triplet_margin_loss_body(ctx, anchor, positive, negative, opts);
    lgC_api_leave(ctx, outer);
    return res;
}

static lg_tensor *default_distance(lg_ctx *ctx, lg_tensor *x1, lg_tensor *x2, void *user)
{
    (void)user;
    return lg_pairwise_distance(ctx, x1, x2, 2, 1e-6, false);
}

/* Calls the user's distance and checks what it returned. */
static lg_tensor *distance(lg_ctx *ctx, const lg_triplet_distance_opts *o, lg_tensor *x1,
                           lg_tensor *x2, lg_dtype dt, const char *who)
{
    lg_distance_fn fn = o->distance ? o->distance : default_distance;
    lg_tensor *d = fn(ctx, x1, x2, o->user);
    if (lg_ctx_status(ctx) != LG_OK)
        return NULL;
    if (!d)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: the distance function returned NULL without setting an error", who);
    if (lg_tensor_check(ctx, d) != LG_OK)
        return NULL;
    if (lg_tensor_dtype(d) != dt)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: the distance function returned %s, expected %s",
                         who, lgT_dtype_name(lg_tensor_dtype(d)), lgT_dtype_name(dt));
    return d;
}

static const lg_triplet_distance_opts triplet_distance_defaults = { .defaults_tag = LG_OPTS_TAG,
                                                                    .margin = 1.0 };
static const lgC_optfield triplet_distance_fields[] = {
    LGC_FIELD(lg_triplet_distance_opts, margin, "1"),
};
static const lgC_opts_desc triplet_distance_desc =
    LGC_DESC(lg_triplet_distance_opts, triplet_distance_defaults, triplet_distance_fields);

lg_triplet_distance_opts lg_triplet_distance_opts_default(void)
{
    return triplet_distance_defaults;
}

static lg_tensor *triplet_margin_with_distance_loss_body(lg_ctx *ctx, lg_tensor *anchor,
                                                         lg_tensor *positive, lg_tensor *negative,
                                                         const lg_triplet_distance_opts *opts)
{
    static const char who[] = "lg_triplet_margin_with_distance_loss";
    lg_triplet_distance_opts ov;
    if (!lgC_opts(ctx, who, &triplet_distance_desc, opts, &ov))
        return NULL;
    const lg_triplet_distance_opts *o = &ov;
    lg_reduction r = o->reduction;
    double margin = o->margin;
    if (!ctx || !lgT_ok_float(ctx, anchor, who, "anchor") ||
        !lgT_ok_float(ctx, positive, who, "positive") ||
        !lgT_ok_float(ctx, negative, who, "negative") || !lgL_reduction(ctx, r, false, who))
        return NULL;
    lg_dtype dt = lg_tensor_dtype(anchor);
    if (lg_tensor_dtype(positive) != dt || lg_tensor_dtype(negative) != dt)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: anchor, positive and negative differ in dtype",
                         who);
    lg_tensor *d_ap = distance(ctx, o, anchor, positive, dt, who);
    lg_tensor *d_an = d_ap ? distance(ctx, o, anchor, negative, dt, who) : NULL;
    if (d_an && o->swap) {
        lg_tensor *d_pn = distance(ctx, o, positive, negative, dt, who);
        d_an = d_pn && lgT_same_shape(d_an, d_pn) ? lg_minimum(ctx, d_an, d_pn) : NULL;
    }
    if (!d_an)
        return lg_ctx_status(ctx) != LG_OK
                   ? NULL
                   : lgC_error(ctx, LG_ERR_SHAPE, "%s: the distances differ in shape", who);
    if (!lgT_same_shape(d_ap, d_an)) {
        char a[160], b[160];
        lgT_shape_str(d_ap, a, sizeof a);
        lgT_shape_str(d_an, b, sizeof b);
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: d(anchor, positive) has shape %s but d(anchor, negative) %s, "
                         "expected the same",
                         who, a, b);
    }
    lg_tensor *l = lg_clamp(ctx, lg_add_scalar(ctx, lg_sub(ctx, d_ap, d_an), margin), 0, INFINITY);
    return lgL_reduce(ctx, l, r);
}

lg_tensor *lg_triplet_margin_with_distance_loss(lg_ctx *ctx, lg_tensor *anchor, lg_tensor *positive,
                                                lg_tensor *negative,
                                                const lg_triplet_distance_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_triplet_margin_with_distance_loss");
    lg_tensor *res = triplet_margin_with_distance_loss_body(ctx, anchor, positive, negative, opts);
    lgC_api_leave(ctx, outer);
    return res;
}

/* ------------------------------------------------------------------ */
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
