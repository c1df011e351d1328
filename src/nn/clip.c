/* clip.c: gradient clipping by norm and by value (torch.nn.utils'
 * clip_grad_norm_ and clip_grad_value_), over every parameter of a ctx or
 * a list of them. */
#include "optim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The sum of g's squares in double (g's norm squared: pow(pow(s, 1/2), 2)
 * would round it twice). */
static double sum_squares(const lg_tensor *g, int64_t n)
{
    double s = 0;
    if (lg_tensor_dtype(g) == LG_F32) {
        const float *v = lg_tensor_data((lg_tensor *)g);
        LGC_SIMD_REDUCE(+ : s)
        for (int64_t j = 0; j < n; j++)
            s += (double)v[j] * (double)v[j];
    } else {
        const double *v = lg_tensor_data((lg_tensor *)g);
        LGC_SIMD_REDUCE(+ : s)
        for (int64_t j = 0; j < n; j++)
            s += v[j] * v[j];
    }
    return s;
}

/* g *= coef, each product in double rounded to g's type. */
static void scale_by(lg_tensor *g, double coef)
{
    if (!g)
        return;
    int64_t n = lg_tensor_numel(g);
    if (lg_tensor_dtype(g) == LG_F32) {
        float *v = lg_tensor_data(g);
        LGC_SIMD
        for (int64_t j = 0; j < n; j++)
            v[j] = (float)((double)v[j] * coef);
    } else {
        double *v = lg_tensor_data(g);
        LGC_SIMD
        for (int64_t j = 0; j < n; j++)
            v[j] *= coef;
    }
}

/* The parameters clipping works on: params[0..n) (each a parameter of
 * ctx, none twice), or every parameter of ctx when params is NULL. */
static lg_tensor *clip_param(lg_ctx *ctx, lg_tensor *const *params, int i)
{
    return params ? params[i] : lg_param_at(ctx, i);
}

static bool clip_params_ok(lg_ctx *ctx, const char *who, int n, lg_tensor *const *params)
{
    if (!params)
        return true;
    if (n < 0)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: n = %d, expected >= 0", who, n);
    for (int i = 0; i < n; i++) {
        if (!params[i] || lg_tensor_check(ctx, params[i]) != LG_OK ||
            !lgC_is_param(ctx, params[i])) {
            if (lg_ctx_status(ctx) == LG_OK)
                lgC_error(ctx, LG_ERR_VALUE, "%s: params[%d] is not a parameter (lg_param_new)",
                          who, i);
            return false;
        }
        for (int j = 0; j < i; j++)
            if (params[j] == params[i])
                return lgC_fail(ctx, LG_ERR_VALUE, "%s: params[%d] is params[%d] again", who, i, j);
    }
    return true;
}

static double clip_norm(lg_ctx *ctx, const char *who, int n, lg_tensor *const *params,
                        double max_norm, double norm_type, bool error_if_nonfinite)
{
    if (!ctx || lgC_failed(ctx, who))
        return NAN;
    if (!(max_norm >= 0) || !(norm_type > 0)) {
        lgC_error(ctx, LG_ERR_VALUE, "%s: max_norm = %g, norm_type = %g, expected >= 0 and > 0",
                  who, max_norm, norm_type);
        return NAN;
    }
    if (!clip_params_ok(ctx, who, n, params))
        return NAN;
    if (!params)
        n = lg_param_count(ctx);
    /* total = || (||g_1||, ||g_2||, ...) ||, as PyTorch */
    double total = 0;
    for (int i = 0; i < n; i++) {
        lg_tensor *g = lg_tensor_grad(clip_param(ctx, params, i));
        if (!g)
            continue;
        double s = 0;
        int64_t m = lg_tensor_numel(g);
        if (norm_type == 2) { /* the usual case: a vector sum of squares */
            total += sum_squares(g, m);
            continue;
        }
        for (int64_t j = 0; j < m; j++) {
            double v = fabs(lgN_get(g, j));
            if (isinf(norm_type))
                s = v > s || v != v ? v : s;
            else
                s += norm_type == 2 ? v * v : pow(v, norm_type);
        }
        double norm = isinf(norm_type) ? s : pow(s, 1.0 / norm_type);
        if (isinf(norm_type))
            total = norm > total || norm != norm ? norm : total;
        else
            total += pow(norm, norm_type);
    }
    if (!isinf(norm_type))
        total = pow(total, 1.0 / norm_type);
    if (error_if_nonfinite && !isfinite(total)) { /* PyTorch's RuntimeError; nothing scaled */
        lgC_error(ctx, LG_ERR_VALUE,
                  "%s: the total norm of order %g of the gradients is %g (error_if_nonfinite)", who,
                  norm_type, total);
        return NAN;
    }
    double coef = max_norm / (total + 1e-6);
    if (coef > 1)
        coef = 1;
    for (int i = 0; coef != 1 && i < n; i++) /* g 1 is g */
        scale_by(lg_tensor_grad(clip_param(ctx, params, i)), coef);
    return total;
}

double lg_clip_grad_norm(lg_ctx *ctx, double max_norm, double norm_type)
{
    return clip_norm(ctx, "lg_clip_grad_norm", 0, NULL, max_norm, norm_type, false);
}

double lg_clip_grad_norm_of(lg_ctx *ctx, int n, lg_tensor *const *params, double max_norm,
                            double norm_type, bool error_if_nonfinite)
{
    static const char who[] = "lg_clip_grad_norm_of";
    if (ctx && !params && !lgC_failed(ctx, who)) {
        lgC_error(ctx, LG_ERR_NULL, "%s: params is NULL (lg_clip_grad_norm clips them all)", who);
        return NAN;
    }
    return clip_norm(ctx, who, n, params, max_norm, norm_type, error_if_nonfinite);
}

static lg_status clip_value(lg_ctx *ctx, const char *who, int n, lg_tensor *const *params,
                            double value)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return LG_ERR_STATE;
    if (!(value >= 0))
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: value = %g, expected >= 0", who, value);
    if (!clip_params_ok(ctx, who, n, params))
        return ctx->status;
    if (!params)
        n = lg_param_count(ctx);
    for (int i = 0; i < n; i++) {
        lg_tensor *g = lg_tensor_grad(clip_param(ctx, params, i));
        for (int64_t j = 0; g && j < lg_tensor_numel(g); j++) {
            double v = lgN_get(g, j);
            lgN_set(g, j, v < -value ? -value : (v > value ? value : v));
        }
    }
    return LG_OK;
}

lg_status lg_clip_grad_value(lg_ctx *ctx, double value)
{
    return clip_value(ctx, "lg_clip_grad_value", 0, NULL, value);
}

lg_status lg_clip_grad_value_of(lg_ctx *ctx, int n, lg_tensor *const *params, double value)
{
    static const char who[] = "lg_clip_grad_value_of";
    if (ctx && !params && !lgC_failed(ctx, who))
        return lgC_errorf(ctx, LG_ERR_NULL,
                          "%s: params is NULL (lg_clip_grad_value clips them all)", who);
    return clip_value(ctx, who, n, params, value);
}
