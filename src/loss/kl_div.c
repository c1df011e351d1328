/* kl_div.c: pointwise Kullback-Leibler divergence, as PyTorch composes it.
 *
 *   log_target false:  l = xlogy(y, y) - y x     (x = log q; 0 where y == 0; NaN for y < 0)
 *   log_target true:   l = exp(y) (y - x)
 * Gradients follow from xlogy's conventions: dx = -y, dy = log y + 1 - x
 * (NaN at y = 0), as PyTorch. MEAN divides by numel; BATCHMEAN by
 * input.shape[0] (plain sum for a 0-d input). Both are kinds of losses.def (LGL_POINTWISE rows),
 * fused; the composites below are their oracles.
 */
#include "fused.h"
#include "loss.h"

/* The composites, the fused kernels' oracles. */
lg_tensor *lgL_composite_kl(lg_ctx *ctx, const lgL_fused *f)
{
    lg_tensor *x = f->in[0], *y = f->in[1];
    return lgL_composite_reduce(ctx, f, lg_sub(ctx, lg_xlogy(ctx, y, y), lg_mul(ctx, y, x)));
}

lg_tensor *lgL_composite_kl_log(lg_ctx *ctx, const lgL_fused *f)
{
    lg_tensor *x = f->in[0], *y = f->in[1];
    return lgL_composite_reduce(ctx, f, lg_mul(ctx, lg_exp(ctx, y), lg_sub(ctx, y, x)));
}

static lg_tensor *kl_div_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                              const lg_kl_div_opts *opts)
{
    static const char who[] = "lg_kl_div";
    lg_kl_div_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_kl_div_opts, opts, &o))
        return NULL;
    if (!lgL_pair(ctx, input, target, who) || !lgL_reduction(ctx, o.reduction, true, who))
        return NULL;
    lgL_pw_kind kind = o.log_target ? LGL_PW_kl_log : LGL_PW_kl;
    return lgL_pointwise(ctx, kind, input, target, 0, o.reduction, who);
}

lg_tensor *lg_kl_div(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_kl_div_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_kl_div");
    return lgL_leave(ctx, outer, ctx ? kl_div_body(ctx, input, target, opts) : NULL);
}
