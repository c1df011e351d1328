/* regression.c: l1_loss, mse_loss, smooth_l1_loss, huber_loss.
 *
 *   l1:        |d|                                     d = x - y
 *   mse:       d^2
 *   smooth_l1: 0.5 d^2 / beta  if |d| < beta,  |d| - 0.5 beta  otherwise
 *   huber:     0.5 d^2         if |d| <= delta, delta (|d| - 0.5 delta) otherwise
 * The quadratic branch is evaluated on where(outer, 0, d), so the branch
 * not taken never sends inf or NaN into the gradient; masks are written so
 * that a NaN residual takes the quadratic branch (NaN gradient, as PyTorch).
 */
#include "loss.h"

#include <math.h>

static bool check(lg_ctx *ctx, lg_tensor *x, lg_tensor *y, lg_reduction r, const char *who)
{
    return ctx && lgL_pair(ctx, x, y, who) && lgL_reduction(ctx, r, false, who);
}

static lg_tensor *residual(lg_ctx *ctx, lg_tensor *x, lg_tensor *y, lg_reduction r, const char *who)
{
    return check(ctx, x, y, r, who) ? lg_sub(ctx, x, y) : NULL;
}

lg_tensor *lg_l1_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_loss_opts *o)
{
    lg_reduction r = o ? o->reduction : LG_REDUCTION_MEAN;
    lg_tensor *d = residual(ctx, input, target, r, "lg_l1_loss");
    return d ? lgL_reduce(ctx, lg_abs(ctx, d), r) : NULL;
}

lg_tensor *lg_mse_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_loss_opts *o)
{
    lg_reduction r = o ? o->reduction : LG_REDUCTION_MEAN;
    lg_tensor *d = residual(ctx, input, target, r, "lg_mse_loss");
    return d ? lgL_reduce(ctx, lg_square(ctx, d), r) : NULL;
}

/* where(outer, linear, quad_scale * where(outer, 0, d)^2) */
static lg_tensor *two_branch(lg_ctx *ctx, lg_tensor *d, lg_tensor *outer, lg_tensor *linear,
                             double quad_scale)
{
    lg_dtype dt = lg_tensor_dtype(d);
    lg_tensor *inner_d = lg_where(ctx, outer, lg_scalar(ctx, dt, 0), d);
    lg_tensor *quad = lg_mul_scalar(ctx, lg_square(ctx, inner_d), quad_scale);
    return lg_where(ctx, outer, linear, quad);
}

lg_tensor *lg_smooth_l1_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                             const lg_smooth_l1_opts *o)
{
    static const char who[] = "lg_smooth_l1_loss";
    lg_reduction r = o ? o->reduction : LG_REDUCTION_MEAN;
    double beta = lgL_optd(o ? &o->beta : NULL, 1.0);
    if (!check(ctx, input, target, r, who))
        return NULL;
    if (!(beta >= 0))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: beta = %g, expected >= 0", who, beta);
    lg_tensor *d = lg_sub(ctx, input, target);
    lg_dtype dt = lg_tensor_dtype(d);
    lg_tensor *ad = lg_abs(ctx, d);
    lg_tensor *outer = lg_ge(ctx, ad, lg_scalar(ctx, dt, beta)); /* NaN: inner */
    lg_tensor *linear = lg_add_scalar(ctx, ad, -0.5 * beta);
    return lgL_reduce(ctx, two_branch(ctx, d, outer, linear, 0.5 / beta), r);
}

lg_tensor *lg_huber_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_huber_opts *o)
{
    static const char who[] = "lg_huber_loss";
    lg_reduction r = o ? o->reduction : LG_REDUCTION_MEAN;
    double delta = lgL_optd(o ? &o->delta : NULL, 1.0);
    if (!check(ctx, input, target, r, who))
        return NULL;
    if (!(delta > 0))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: delta = %g, expected > 0", who, delta);
    lg_tensor *d = lg_sub(ctx, input, target);
    lg_dtype dt = lg_tensor_dtype(d);
    lg_tensor *ad = lg_abs(ctx, d);
    lg_tensor *outer = lg_gt(ctx, ad, lg_scalar(ctx, dt, delta)); /* NaN: inner */
    lg_tensor *linear = lg_mul_scalar(ctx, lg_add_scalar(ctx, ad, -0.5 * delta), delta);
    return lgL_reduce(ctx, two_branch(ctx, d, outer, linear, 0.5), r);
}
