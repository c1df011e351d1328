/* regression.c: l1_loss, mse_loss, smooth_l1_loss, huber_loss.
 *
 *   l1:        |d|                                     d = x - y
 *   mse:       d^2
 *   smooth_l1: 0.5 d^2 / beta  if |d| < beta,  |d| - 0.5 beta  otherwise
 *   huber:     0.5 d^2         if |d| <= delta, delta (|d| - 0.5 delta) otherwise
 * All four are the fused primitive of pointwise.c (a NaN residual takes the
 * quadratic branch: NaN gradient, as PyTorch); their composites are the
 * oracles in tests/test_losses.c.
 */
#include "loss.h"

static bool check(lg_ctx *ctx, lg_tensor *x, lg_tensor *y, lg_reduction r, const char *who)
{
    return ctx && lgL_pair(ctx, x, y, who) && lgL_reduction(ctx, r, false, who);
}

static lg_tensor *l1_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                               const lg_loss_opts *opts)
{
    static const char who[] = "lg_l1_loss";
    lg_loss_opts ov;
    if (!lgL_opts_loss(ctx, who, opts, &ov))
        return NULL;
    const lg_loss_opts *o = &ov;
    lg_reduction r = o->reduction;
    return check(ctx, input, target, r, who)
               ? lgL_pointwise(ctx, LGL_PW_L1, input, target, 0, r, who)
               : NULL;
}

lg_tensor *lg_l1_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_loss_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_l1_loss");
    lg_tensor *res = l1_loss_body(ctx, input, target, opts);
    lgC_api_leave(ctx, outer);
    return res;
}

static lg_tensor *mse_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                const lg_loss_opts *opts)
{
    static const char who[] = "lg_mse_loss";
    lg_loss_opts ov;
    if (!lgL_opts_loss(ctx, who, opts, &ov))
        return NULL;
    const lg_loss_opts *o = &ov;
    lg_reduction r = o->reduction;
    return check(ctx, input, target, r, who)
               ? lgL_pointwise(ctx, LGL_PW_MSE, input, target, 0, r, who)
               : NULL;
}

lg_tensor *lg_mse_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_loss_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_mse_loss");
    lg_tensor *res = mse_loss_body(ctx, input, target, opts);
    lgC_api_leave(ctx, outer);
    return res;
}

static const lg_smooth_l1_opts smooth_l1_defaults = { .defaults_tag = LG_OPTS_TAG, .beta = 1.0 };
static const lgC_optfield smooth_l1_fields[] = {
    LGC_FIELD(lg_smooth_l1_opts, beta, "1"),
};
static const lgC_opts_desc smooth_l1_desc =
    LGC_DESC(lg_smooth_l1_opts, smooth_l1_defaults, smooth_l1_fields);

lg_smooth_l1_opts lg_smooth_l1_opts_default(void)
{
    return smooth_l1_defaults;
}

static lg_tensor *smooth_l1_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                      const lg_smooth_l1_opts *opts)
{
    static const char who[] = "lg_smooth_l1_loss";
    lg_smooth_l1_opts ov;
    if (!lgC_opts(ctx, who, &smooth_l1_desc, opts, &ov))
        return NULL;
    const lg_smooth_l1_opts *o = &ov;
    lg_reduction r = o->reduction;
    double beta = o->beta;
    if (!check(ctx, input, target, r, who))
        return NULL;
    if (!(beta >= 0))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: beta = %g, expected >= 0", who, beta);
    return lgL_pointwise(ctx, LGL_PW_SMOOTH_L1, input, target, beta, r, who);
}

lg_tensor *lg_smooth_l1_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                             const lg_smooth_l1_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_smooth_l1_loss");
    lg_tensor *res = smooth_l1_loss_body(ctx, input, target, opts);
    lgC_api_leave(ctx, outer);
    return res;
}

static const lg_huber_opts huber_defaults = { .defaults_tag = LG_OPTS_TAG, .delta = 1.0 };
static const lgC_optfield huber_fields[] = {
    LGC_FIELD(lg_huber_opts, delta, "1"),
};
static const lgC_opts_desc huber_desc = LGC_DESC(lg_huber_opts, huber_defaults, huber_fields);

lg_huber_opts lg_huber_opts_default(void)
{
    return huber_defaults;
}

static lg_tensor *huber_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                  const lg_huber_opts *opts)
{
    static const char who[] = "lg_huber_loss";
    lg_huber_opts ov;
    if (!lgC_opts(ctx, who, &huber_desc, opts, &ov))
        return NULL;
    const lg_huber_opts *o = &ov;
    lg_reduction r = o->reduction;
    double delta = o->delta;
    if (!check(ctx, input, target, r, who))
        return NULL;
    if (!(delta > 0))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: delta = %g, expected > 0", who, delta);
    return lgL_pointwise(ctx, LGL_PW_HUBER, input, target, delta, r, who);
}

lg_tensor *lg_huber_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                         const lg_huber_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_huber_loss");
    lg_tensor *res = huber_loss_body(ctx, input, target, opts);
    lgC_api_leave(ctx, outer);
    return res;
}
