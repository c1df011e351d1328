/* regression.c: l1_loss, mse_loss, smooth_l1_loss, huber_loss, quantile_loss.
 *
 *   l1:        |d|                                     d = x - y
 *   mse:       d^2
 *   smooth_l1: 0.5 d^2 / beta  if |d| < beta,  |d| - 0.5 beta  otherwise
 *   huber:     0.5 d^2         if |d| <= delta, delta (|d| - 0.5 delta) otherwise
 *   quantile:  max(q e, (q - 1) e),  e = y - x  (not in PyTorch: the pinball loss)
 * All five are kinds of losses.def (LGL_POINTWISE rows), fused (a NaN residual takes the
 * quadratic branch: NaN gradient, as PyTorch); their composites below are
 * the oracles (lg_ctx_set_fused(ctx, false) runs them).
 */
#include "fused.h"
#include "loss.h"

/* The composites, the fused kernels' oracles (d = x - y). */
lg_tensor *lgL_composite_l1(lg_ctx *ctx, const lgL_fused *f)
{
    return lgL_composite_reduce(ctx, f, lg_abs(ctx, lg_sub(ctx, f->in[0], f->in[1])));
}

lg_tensor *lgL_composite_mse(lg_ctx *ctx, const lgL_fused *f)
{
    return lgL_composite_reduce(ctx, f, lg_square(ctx, lg_sub(ctx, f->in[0], f->in[1])));
}

/* where(outer, linear, quad_scale * where(outer, 0, d)^2): the inner
 * branch sees 0 where it is not taken, so its gradient stays finite. */
static lg_tensor *two_branch(lg_ctx *ctx, lg_tensor *d, lg_tensor *outer, lg_tensor *linear,
                             double quad_scale)
{
    lg_tensor *inner_d = lg_where(ctx, outer, lg_scalar(ctx, lg_tensor_dtype(d), 0), d);
    return lg_where(ctx, outer, linear, lg_mul_scalar(ctx, lg_square(ctx, inner_d), quad_scale));
}

/* beta 0 is l1 (the quadratic branch is empty) */
lg_tensor *lgL_composite_smooth_l1(lg_ctx *ctx, const lgL_fused *f)
{
    double beta = f->a[0];
    lg_tensor *d = lg_sub(ctx, f->in[0], f->in[1]), *ad = lg_abs(ctx, d);
    if (beta == 0)
        return lgL_composite_reduce(ctx, f, ad);
    lg_tensor *outer = lg_ge(ctx, ad, lg_scalar(ctx, lg_tensor_dtype(ad), beta));
    return lgL_composite_reduce(
        ctx, f, two_branch(ctx, d, outer, lg_add_scalar(ctx, ad, -0.5 * beta), 0.5 / beta));
}

lg_tensor *lgL_composite_huber(lg_ctx *ctx, const lgL_fused *f)
{
    double delta = f->a[0];
    lg_tensor *d = lg_sub(ctx, f->in[0], f->in[1]), *ad = lg_abs(ctx, d);
    lg_tensor *outer = lg_gt(ctx, ad, lg_scalar(ctx, lg_tensor_dtype(ad), delta));
    lg_tensor *linear = lg_mul_scalar(ctx, lg_add_scalar(ctx, ad, -0.5 * delta), delta);
    return lgL_composite_reduce(ctx, f, two_branch(ctx, d, outer, linear, 0.5));
}

static bool check(lg_ctx *ctx, lg_tensor *x, lg_tensor *y, lg_reduction r, const char *who)
{
    return ctx && lgL_pair(ctx, x, y, who) && lgL_reduction(ctx, r, false, who);
}

/* l1 and mse: only the reduction to resolve */
static lg_tensor *plain_body(lg_ctx *ctx, lgL_pw_kind kind, lg_tensor *input, lg_tensor *target,
                             const lg_loss_opts *opts, const char *who)
{
    lg_loss_opts o;
    if (!lgL_opts_loss(ctx, who, opts, &o) || !check(ctx, input, target, o.reduction, who))
        return NULL;
    return lgL_pointwise(ctx, kind, input, target, 0, o.reduction, who);
}

lg_tensor *lg_l1_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_loss_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_l1_loss");
    return lgL_leave(ctx, outer,
                     ctx ? plain_body(ctx, LGL_PW_l1, input, target, opts, "lg_l1_loss") : NULL);
}

lg_tensor *lg_mse_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_loss_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_mse_loss");
    return lgL_leave(ctx, outer,
                     ctx ? plain_body(ctx, LGL_PW_mse, input, target, opts, "lg_mse_loss") : NULL);
}

static lg_tensor *smooth_l1_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                      const lg_smooth_l1_opts *opts)
{
    static const char who[] = "lg_smooth_l1_loss";
    lg_smooth_l1_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_smooth_l1_opts, opts, &o))
        return NULL;
    double beta = o.beta;
    if (!check(ctx, input, target, o.reduction, who))
        return NULL;
    if (!(beta >= 0))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: beta = %g, expected >= 0", who, beta);
    return lgL_pointwise(ctx, LGL_PW_smooth_l1, input, target, beta, o.reduction, who);
}

lg_tensor *lg_smooth_l1_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                             const lg_smooth_l1_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_smooth_l1_loss");
    return lgL_leave(ctx, outer, ctx ? smooth_l1_loss_body(ctx, input, target, opts) : NULL);
}

static lg_tensor *huber_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                  const lg_huber_opts *opts)
{
    static const char who[] = "lg_huber_loss";
    lg_huber_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_huber_opts, opts, &o))
        return NULL;
    double delta = o.delta;
    if (!check(ctx, input, target, o.reduction, who))
        return NULL;
    if (!(delta > 0))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: delta = %g, expected > 0", who, delta);
    return lgL_pointwise(ctx, LGL_PW_huber, input, target, delta, o.reduction, who);
}

lg_tensor *lg_huber_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                         const lg_huber_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_huber_loss");
    return lgL_leave(ctx, outer, ctx ? huber_loss_body(ctx, input, target, opts) : NULL);
}

/* max(q e, (q - 1) e), e = y - x, as torch.maximum (its tie rule included) */
lg_tensor *lgL_composite_quantile(lg_ctx *ctx, const lgL_fused *f)
{
    double q = f->a[0];
    lg_tensor *e = lg_sub(ctx, f->in[1], f->in[0]);
    return lgL_composite_reduce(
        ctx, f, lg_maximum(ctx, lg_mul_scalar(ctx, e, q), lg_mul_scalar(ctx, e, q - 1)));
}

static lg_tensor *quantile_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                     const lg_quantile_opts *opts)
{
    static const char who[] = "lg_quantile_loss";
    lg_quantile_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_quantile_opts, opts, &o) ||
        !check(ctx, input, target, o.reduction, who))
        return NULL;
    if (!(o.quantile >= 0 && o.quantile <= 1))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: quantile = %g, expected in [0, 1]", who,
                         o.quantile);
    return lgL_pointwise(ctx, LGL_PW_quantile, input, target, o.quantile, o.reduction, who);
}

lg_tensor *lg_quantile_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                            const lg_quantile_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_quantile_loss");
    return lgL_leave(ctx, outer, ctx ? quantile_loss_body(ctx, input, target, opts) : NULL);
}
