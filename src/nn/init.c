/* init.c: parameter initialisers (PyTorch's torch.nn.init formulas) drawing
 * from the ctx RNG, so a seed reproduces a model. They write in place and
 * record no gradient. */
#include "nn.h"

#include <math.h>

static bool target_ok(lg_ctx *ctx, lg_tensor *t, const char *who)
{
    if (!t)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: t is NULL", who), false;
    if (lg_tensor_check(ctx, t) != LG_OK)
        return false;
    if (lg_tensor_dtype(t) == LG_I64)
        return lgC_errorf(ctx, LG_ERR_DTYPE, "%s: t is int64, expected a float tensor", who), false;
    return true;
}

/* fan_in and fan_out as torch.nn.init._calculate_fan_in_and_fan_out. */
static bool fans(lg_ctx *ctx, lg_tensor *t, const char *who, double *fan_in, double *fan_out)
{
    int nd = lg_tensor_ndim(t);
    if (nd < 2)
        return lgC_errorf(ctx, LG_ERR_SHAPE,
                          "%s: t has %d dims, fan in and fan out need at least 2", who, nd),
               false;
    const int64_t *s = lg_tensor_shape(t);
    double receptive = 1;
    for (int d = 2; d < nd; d++)
        receptive *= (double)s[d];
    *fan_in = (double)s[1] * receptive;
    *fan_out = (double)s[0] * receptive;
    return true;
}

double lg_init_gain(lg_nonlinearity nl, double a)
{
    switch (nl) {
    case LG_NL_LINEAR:
    case LG_NL_SIGMOID: return 1.0;
    case LG_NL_TANH: return 5.0 / 3.0;
    case LG_NL_RELU: return sqrt(2.0);
    case LG_NL_SELU: return 0.75;
    default: return sqrt(2.0 / (1.0 + a * a));
    }
}

lg_status lg_init_uniform(lg_ctx *ctx, lg_tensor *t, double low, double high)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, "lg_init_uniform"))
        return ctx->status;
    if (!(low <= high))
        return lgC_errorf(ctx, LG_ERR_VALUE, "lg_init_uniform: need low <= high, got %g, %g", low,
                          high);
    for (int64_t i = 0; i < lg_tensor_numel(t); i++)
        lgN_set(t, i, low + (high - low) * lg_rand_uniform(ctx));
    return LG_OK;
}

lg_status lg_init_normal(lg_ctx *ctx, lg_tensor *t, double mean, double std)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, "lg_init_normal"))
        return ctx->status;
    if (!(std >= 0))
        return lgC_errorf(ctx, LG_ERR_VALUE, "lg_init_normal: std = %g, expected >= 0", std);
    for (int64_t i = 0; i < lg_tensor_numel(t); i++)
        lgN_set(t, i, mean + std * lg_rand_normal(ctx));
    return LG_OK;
}

lg_status lg_init_constant(lg_ctx *ctx, lg_tensor *t, double value)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, "lg_init_constant"))
        return ctx->status;
    for (int64_t i = 0; i < lg_tensor_numel(t); i++)
        lgN_set(t, i, value);
    return LG_OK;
}

lg_status lg_init_xavier_uniform(lg_ctx *ctx, lg_tensor *t, double gain)
{
    double fi, fo;
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, "lg_init_xavier_uniform") ||
        !fans(ctx, t, "lg_init_xavier_uniform", &fi, &fo))
        return ctx->status;
    double b = gain * sqrt(6.0 / (fi + fo));
    return lg_init_uniform(ctx, t, -b, b);
}

lg_status lg_init_xavier_normal(lg_ctx *ctx, lg_tensor *t, double gain)
{
    double fi, fo;
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, "lg_init_xavier_normal") ||
        !fans(ctx, t, "lg_init_xavier_normal", &fi, &fo))
        return ctx->status;
    return lg_init_normal(ctx, t, 0, gain * sqrt(2.0 / (fi + fo)));
}

static bool kaiming_std(lg_ctx *ctx, lg_tensor *t, double a, lg_fan_mode mode, lg_nonlinearity nl,
                        const char *who, double *std)
{
    double fi, fo;
    if (!target_ok(ctx, t, who) || !fans(ctx, t, who, &fi, &fo))
        return false;
    double fan = mode == LG_FAN_OUT ? fo : fi;
    if (fan == 0)
        return lgC_errorf(ctx, LG_ERR_SHAPE, "%s: the fan is 0 (an empty tensor)", who), false;
    *std = lg_init_gain(nl, a) / sqrt(fan);
    return true;
}

lg_status lg_init_kaiming_uniform(lg_ctx *ctx, lg_tensor *t, double a, lg_fan_mode mode,
                                  lg_nonlinearity nl)
{
    double std;
    if (!ctx)
        return LG_ERR_NULL;
    if (!kaiming_std(ctx, t, a, mode, nl, "lg_init_kaiming_uniform", &std))
        return ctx->status;
    double b = sqrt(3.0) * std;
    return lg_init_uniform(ctx, t, -b, b);
}

lg_status lg_init_kaiming_normal(lg_ctx *ctx, lg_tensor *t, double a, lg_fan_mode mode,
                                 lg_nonlinearity nl)
{
    double std;
    if (!ctx)
        return LG_ERR_NULL;
    if (!kaiming_std(ctx, t, a, mode, nl, "lg_init_kaiming_normal", &std))
        return ctx->status;
    return lg_init_normal(ctx, t, 0, std);
}
