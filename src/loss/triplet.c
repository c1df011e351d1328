/* triplet.c: triplet_margin_loss and triplet_margin_with_distance_loss.
 *
 *   triplet: l = max(0, margin + d(a, p) - d(a, n)),  d(u, v) = ||u - v + eps||_p
 *            (swap: d(a, n) <- min(d(a, n), d(p, n)))
 * The hinge uses clamp, whose gradient passes at the bound, as PyTorch's
 * clamp_min.
 *
 * triplet_margin_loss's common case, p = 2 without swap, anchor, positive
 * and negative of one shape [..., D], is one fused primitive over rows on
 * the fused-loss driver (kernels in triplet_kernel.h): one pass reads the
 * three inputs forward, one reads them again and writes the gradients,
 * where the composite (two pairwise distances, sub, add, clamp) walks the
 * rows once per op each way. The composite (triplet_composite) serves
 * p != 2, swap and broadcast batch dims, and is the fused rows' oracle
 * (lg_ctx_set_fused(ctx, false) runs it). docs/performance.md has the
 * measurements.
 */
#include "fused.h"
#include "loss.h"

#include <math.h>

/* What the fused rows' kernels read. The public function fills one on the
 * stack (what the composite reads); the driver's prepare moves it to the
 * step arena with room for the distances. */
typedef struct triplet_saved {
    double margin, eps;
    int64_t D; /* the feature size */
    double *d; /* [rows][2]: d_ap, d_an, rounded to the input's type */
} triplet_saved;

#define LGC_TEMPLATE "../loss/triplet_kernel.h"
#include "../core/instantiate.h"

/* The loss as a composite of public ops, for any p and swap. */
static lg_tensor *triplet_composite_of(lg_ctx *ctx, lg_tensor *a, lg_tensor *p, lg_tensor *n,
                                       double margin, double pnorm, double eps, bool swap,
                                       lg_reduction r)
{
    lg_tensor *d_ap = lg_pairwise_distance(ctx, a, p, pnorm, eps, false);
    lg_tensor *d_an = lg_pairwise_distance(ctx, a, n, pnorm, eps, false);
    if (swap)
        d_an = lg_minimum(ctx, d_an, lg_pairwise_distance(ctx, p, n, pnorm, eps, false));
    lg_tensor *l = lg_clamp(ctx, lg_add_scalar(ctx, lg_sub(ctx, d_ap, d_an), margin), 0, INFINITY);
    return lgL_reduce(ctx, l, r);
}

/* The fused rows' oracle. */
static lg_tensor *triplet_composite(lg_ctx *ctx, const lgL_fused *f)
{
    const triplet_saved *s = f->saved;
    return triplet_composite_of(ctx, f->in[0], f->in[1], f->in[2], s->margin, 2, s->eps, false,
                                f->r);
}

static bool triplet_prepare(lg_ctx *ctx, lgL_fused *f)
{
    static const char who[] = "lg_triplet_margin_loss";
    triplet_saved *s = lgC_salloc(ctx, sizeof *s, who);
    double *d = s ? lgC_salloc(ctx, (size_t)(2 * (f->rows ? f->rows : 1)) * sizeof *d, who) : NULL;
    if (!d)
        return false;
    *s = *(const triplet_saved *)f->saved;
    s->d = d;
    f->saved = s;
    return true;
}

/* All three inputs on the tape; the gradients are dense. */
static const lgL_fused_desc triplet_rows = {
    .op = LGA_OP_triplet_rows,
    .k = { { triplet_forward_f32, triplet_backward_f32 },
           { triplet_forward_f64, triplet_backward_f64 } },
    .composite = triplet_composite,
    .prepare = triplet_prepare,
};

/* a, p, n of one shape [..., D] (checked by the caller): one row per
 * position of the batch dims (D may be 0: distances 0). */
static lg_tensor *fused_triplet(lg_ctx *ctx, lg_tensor *a, lg_tensor *p, lg_tensor *n,
                                double margin, double eps, lg_reduction r, const char *who)
{
    int64_t D = a->shape[a->ndim - 1], rows = 1;
    for (int k = 0; k < a->ndim - 1; k++)
        rows *= a->shape[k];
    triplet_saved s = { .margin = margin, .eps = eps, .D = D };
    lgL_fused f = lgL_fused_init(&triplet_rows, 3, (lg_tensor *[]){ a, p, n }, r);
    f.rows = rows;
    f.width = D;
    f.saved = &s;
    lgL_fused_none_shape(&f, a, a->ndim - 1);
    return lgL_fused_run(ctx, &f, who);
}

static lg_tensor *triplet_margin_loss_body(lg_ctx *ctx, lg_tensor *anchor, lg_tensor *positive,
                                           lg_tensor *negative, const lg_triplet_opts *opts)
{
    static const char who[] = "lg_triplet_margin_loss";
    lg_triplet_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_triplet_opts, opts, &o))
        return NULL;
    double margin = o.margin;
    double p = o.p;
    double eps = o.eps;
    if (!lgT_ok_float(ctx, anchor, who, "anchor") ||
        !lgT_ok_float(ctx, positive, who, "positive") ||
        !lgT_ok_float(ctx, negative, who, "negative") ||
        !lgL_reduction(ctx, o.reduction, false, who))
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
    if (p == 2 && !(o.swap) && lgT_same_shape(anchor, positive) &&
        lgT_same_shape(anchor, negative)) /* the common case, fused */
        return fused_triplet(ctx, anchor, positive, negative, margin, eps, o.reduction, who);
    return triplet_composite_of(ctx, anchor, positive, negative, margin, p, eps, o.swap,
                                o.reduction);
}

lg_tensor *lg_triplet_margin_loss(lg_ctx *ctx, lg_tensor *anchor, lg_tensor *positive,
                                  lg_tensor *negative, const lg_triplet_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_triplet_margin_loss");
    return lgL_leave(ctx, outer,
                     ctx ? triplet_margin_loss_body(ctx, anchor, positive, negative, opts) : NULL);
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

static lg_tensor *triplet_margin_with_distance_loss_body(lg_ctx *ctx, lg_tensor *anchor,
                                                         lg_tensor *positive, lg_tensor *negative,
                                                         const lg_triplet_distance_opts *opts)
{
    static const char who[] = "lg_triplet_margin_with_distance_loss";
    lg_triplet_distance_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_triplet_distance_opts, opts, &o))
        return NULL;
    double margin = o.margin;
    if (!lgT_ok_float(ctx, anchor, who, "anchor") ||
        !lgT_ok_float(ctx, positive, who, "positive") ||
        !lgT_ok_float(ctx, negative, who, "negative") ||
        !lgL_reduction(ctx, o.reduction, false, who))
        return NULL;
    lg_dtype dt = lg_tensor_dtype(anchor);
    if (lg_tensor_dtype(positive) != dt || lg_tensor_dtype(negative) != dt)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: anchor, positive and negative differ in dtype",
                         who);
    lg_tensor *d_ap = distance(ctx, &o, anchor, positive, dt, who);
    lg_tensor *d_an = d_ap ? distance(ctx, &o, anchor, negative, dt, who) : NULL;
    if (d_an && o.swap) {
        lg_tensor *d_pn = distance(ctx, &o, positive, negative, dt, who);
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
    return lgL_reduce(ctx, l, o.reduction);
}

lg_tensor *lg_triplet_margin_with_distance_loss(lg_ctx *ctx, lg_tensor *anchor, lg_tensor *positive,
                                                lg_tensor *negative,
                                                const lg_triplet_distance_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_triplet_margin_with_distance_loss");
    return lgL_leave(
        ctx, outer,
        ctx ? triplet_margin_with_distance_loss_body(ctx, anchor, positive, negative, opts) : NULL);
}
