/* likelihood.c: poisson_nll_loss and gaussian_nll_loss (composites).
 *
 *   poisson, log_input:  exp(x) - y x
 *   poisson, rate input: x - y log(x + eps)
 *            full adds   y log y - y + 0.5 log(2 pi y)  where y > 1
 *   gaussian:            0.5 (log v + (x - y)^2 / v),  v = max(var, eps)
 *            full adds   0.5 log(2 pi)
 * The Stirling term is computed everywhere and masked with `where`, as
 * PyTorch's masked_fill, so its gradient has PyTorch's NaN at y = 0. The
 * variance clamp changes the value only: v = where(var < eps,
 * (var - detach(var)) + eps, var) is exactly eps there, with gradient 1.
 */
#include "loss.h"

#include <math.h>

#define TWO_PI 6.283185307179586476925286766559
#define LOG_2PI 1.8378770664093454835606594728112 /* log(2 pi) */

static lg_tensor *poisson_nll_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                        const lg_poisson_nll_opts *opts)
{
    static const char who[] = "lg_poisson_nll_loss";
    lg_poisson_nll_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_poisson_nll_opts, opts, &o))
        return NULL;
    bool log_input = o.log_input;
    double eps = o.eps;
    if (!lgL_pair(ctx, input, target, who) || !lgL_reduction(ctx, o.reduction, false, who))
        return NULL;
    if (isnan(eps))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: eps is NaN, expected a number", who);
    lg_dtype dt = lg_tensor_dtype(input);
    lg_tensor *l;
    if (log_input)
        l = lg_sub(ctx, lg_exp(ctx, input), lg_mul(ctx, target, input));
    else
        l = lg_sub(ctx, input, lg_mul(ctx, target, lg_log(ctx, lg_add_scalar(ctx, input, eps))));
    if (o.full) {
        lg_tensor *y = target;
        lg_tensor *stirling =
            lg_add(ctx, lg_sub(ctx, lg_mul(ctx, y, lg_log(ctx, y)), y),
                   lg_mul_scalar(ctx, lg_log(ctx, lg_mul_scalar(ctx, y, TWO_PI)), 0.5));
        lg_tensor *small = lg_le(ctx, y, lg_scalar(ctx, dt, 1)); /* NaN keeps the term */
        l = lg_add(ctx, l, lg_where(ctx, small, lg_scalar(ctx, dt, 0), stirling));
    }
    return lgL_reduce(ctx, l, o.reduction);
}

lg_tensor *lg_poisson_nll_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                               const lg_poisson_nll_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_poisson_nll_loss");
    return lgL_leave(ctx, outer, ctx ? poisson_nll_loss_body(ctx, input, target, opts) : NULL);
}

/* var's shape against input's (PyTorch's three layouts, plus any 0-d var). */
static bool var_fits(lg_tensor *var, lg_tensor *input)
{
    int vn = lg_tensor_ndim(var), xn = lg_tensor_ndim(input);
    const int64_t *vs = lg_tensor_shape(var), *xs = lg_tensor_shape(input);
    if (vn == 0 || lgT_same_shape(var, input))
        return true;
    if (xn == 0)
        return false;
    bool lead = true; /* var's leading dims equal input's shape without its last dim */
    if (vn == xn - 1) {
        for (int d = 0; d < vn; d++)
            lead = lead && vs[d] == xs[d];
        return lead;
    }
    if (vn == xn && vs[vn - 1] == 1) {
        for (int d = 0; d < vn - 1; d++)
            lead = lead && vs[d] == xs[d];
        return lead;
    }
    return false;
}

static lg_tensor *gaussian_nll_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                         lg_tensor *var, const lg_gaussian_nll_opts *opts)
{
    static const char who[] = "lg_gaussian_nll_loss";
    lg_gaussian_nll_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_gaussian_nll_opts, opts, &o))
        return NULL;
    double eps = o.eps;
    if (!lgL_pair(ctx, input, target, who) || !lgL_reduction(ctx, o.reduction, false, who) ||
        !lgT_ok_float(ctx, var, who, "var"))
        return NULL;
    lg_dtype dt = lg_tensor_dtype(input);
    if (lg_tensor_dtype(var) != dt)
        return lgC_error(ctx, LG_ERR_DTYPE,
                         "%s: var is %s but input is %s, expected the same dtype", who,
                         lgT_dtype_name(lg_tensor_dtype(var)), lgT_dtype_name(dt));
    if (!var_fits(var, input)) {
        char a[160], b[160];
        lgT_shape_str(var, a, sizeof a);
        lgT_shape_str(input, b, sizeof b);
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: var has shape %s for input %s, expected input's shape, input's "
                         "shape without its last dim, that with a last dim of 1, or a 0-d var",
                         who, a, b);
    }
    if (!(eps >= 0))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: eps = %g, expected >= 0", who, eps);
    for (int64_t i = 0; i < lg_tensor_numel(var); i++)
        if (lgT_get(var, i) < 0)
            return lgC_error(ctx, LG_ERR_VALUE, "%s: var[%lld] = %g, expected >= 0", who,
                             (long long)i, lgT_get(var, i));
    if (lg_tensor_ndim(var) == lg_tensor_ndim(input) - 1) { /* one variance per row */
        int64_t shape[LG_MAX_DIMS];
        int n = lg_tensor_ndim(var);
        for (int d = 0; d < n; d++)
            shape[d] = lg_tensor_shape(var)[d];
        shape[n] = 1;
        var = lg_reshape(ctx, var, n + 1, shape);
    }
    lg_tensor *lifted = lg_add_scalar(ctx, lg_sub(ctx, var, lg_detach(ctx, var)), eps);
    lg_tensor *v = lg_where(ctx, lg_lt(ctx, var, lg_scalar(ctx, dt, eps)), lifted, var);
    lg_tensor *d2 = lg_square(ctx, lg_sub(ctx, input, target));
    lg_tensor *l = lg_mul_scalar(ctx, lg_add(ctx, lg_log(ctx, v), lg_div(ctx, d2, v)), 0.5);
    if (o.full)
        l = lg_add_scalar(ctx, l, 0.5 * LOG_2PI);
    return lgL_reduce(ctx, l, o.reduction);
}

lg_tensor *lg_gaussian_nll_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, lg_tensor *var,
                                const lg_gaussian_nll_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_gaussian_nll_loss");
    return lgL_leave(ctx, outer,
                     ctx ? gaussian_nll_loss_body(ctx, input, target, var, opts) : NULL);
}
