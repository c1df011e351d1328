/* similarity.c: cosine similarity and normalisation, composites of
 * public ops (no primitive of their own): PyTorch 1.13 builds both from
 * ops too, and these follow its steps, so the gradients are its own, the
 * zero-vector cases included:
 *
 *   cosine_similarity(x1, x2) = sum_d (a / n_a) (b / n_b),  a, b = x1, x2
 *       broadcast, n_a = sqrt(max(sum_d a^2, eps^2)), each norm clamped on
 *       its own; the gradient flows through the clamp as if it were not
 *       there (1.13's in-place clamp, see unit()). A zero vector gives 0;
 *       its gradient is g (b / n_b) / eps.
 *   normalize(x) = x / max(||x||_p over d, eps). A zero row gives 0 and the
 *       gradient g / eps (the clamp passes no gradient below eps).
 */
#include "autograd.h"

#include <math.h>

static bool eps_ok(lg_ctx *ctx, const char *who, double eps)
{
    if (eps >= 0 && isfinite(eps))
        return true;
    return lgC_fail(ctx, LG_ERR_VALUE, "%s: eps = %g, expected finite and >= 0", who, eps);
}

/* x broadcast to shape, differentiably (x + 0): its gradient is summed
 * back to x's shape by lgA_accum. x itself when it has that shape. */
static lg_tensor *expand(lg_ctx *ctx, lg_tensor *x, int ndim, const int64_t *shape)
{
    bool same = x->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = x->shape[d] == shape[d];
    return same ? x : lg_add(ctx, x, lg_zeros(ctx, (lg_dtype)x->dtype, ndim, shape));
}

/* a / sqrt(max(s, eps^2)), s = sum_axis a^2 kept as a size-1 axis. 1.13
 * clamps s in place (clamp_min_), so its backward tests the clamped value
 * and always passes the gradient: max(s, eps^2) is s + relu(eps^2 -
 * detach(s)), s itself (bit for bit) where s >= eps^2, within an ulp of eps^2
 * below. */
static lg_tensor *unit(lg_ctx *ctx, lg_tensor *a, int axis, double eps)
{
    lg_tensor *s = lg_sum(ctx, lg_square(ctx, a), 1, &axis, true);
    lg_tensor *lift = lg_relu(ctx, lg_add_scalar(ctx, lg_neg(ctx, lg_detach(ctx, s)), eps * eps));
    return lg_div(ctx, a, lg_sqrt(ctx, lg_add(ctx, s, lift)));
}

lg_tensor *lg_cosine_similarity(lg_ctx *ctx, lg_tensor *x1, lg_tensor *x2, int dim, double eps)
{
    static const char who[] = "lg_cosine_similarity";
    if (!ctx || !lgT_ok_float(ctx, x1, who, "x1") || !lgT_ok_float(ctx, x2, who, "x2") ||
        !lgT_same_dtype(ctx, x1, x2, who) || !eps_ok(ctx, who, eps))
        return NULL;
    int ndim, axis;
    int64_t shape[LG_MAX_DIMS];
    const lg_tensor *both[2] = { x1, x2 };
    if (!lgT_broadcast_shape(ctx, 2, both, who, &ndim, shape) ||
        !lgT_axis(ctx, dim, ndim, who, &axis))
        return NULL;
    lg_tensor *u1 = unit(ctx, expand(ctx, x1, ndim, shape), axis, eps);
    lg_tensor *u2 = unit(ctx, expand(ctx, x2, ndim, shape), axis, eps);
    return lg_sum(ctx, lg_mul(ctx, u1, u2), 1, &axis, false);
}

lg_tensor *lg_normalize(lg_ctx *ctx, lg_tensor *x, double p, int dim, double eps)
{
    static const char who[] = "lg_normalize";
    int axis;
    if (!ctx || !lgT_ok_float(ctx, x, who, "x") || !eps_ok(ctx, who, eps) ||
        !lgT_axis(ctx, dim, x->ndim, who, &axis))
        return NULL;
    if (isnan(p))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: p is NaN, expected a number or +-INFINITY", who);
    lg_tensor *n = lg_norm(ctx, x, p, 1, &axis, true);
    return lg_div(ctx, x, lg_clamp(ctx, n, eps, INFINITY));
}
