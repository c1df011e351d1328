/* unary.c: the elementwise unary primitives of unary.def.
 *
 *   y = f(x; a, b),  dx = f'(g, x, y; a, b)   (any shape, same dtype)
 *
 * unary_kernel.h holds the loops, once per element type; each row of
 * unary.def is a case of its element functions. Scalar attributes a, b
 * are stored in y->attr.unary.
 */
#include "autograd.h"

#include <tgmath.h>

/* What one kernel call works on; the pointers have the call's dtype. */
struct unary_args {
    int op;
    bool backward;
    void *y, *dx;
    const void *x, *g;
    double a, b;
};

#define LGC_TEMPLATE "../autograd/unary_kernel.h"
#include "../core/instantiate.h"

static const char *const unary_who[] = {
#define LG_UNARY(name, fwd, bwd) [LGA_OP_##name] = "lg_" #name,
#include "unary.def"
#undef LG_UNARY
};

static lg_tensor *unary(lg_ctx *ctx, int op, lg_tensor *x, double a, double b)
{
    const char *who = unary_who[op];
    if (!ctx || !lgT_ok_float(ctx, x, who, "x"))
        return NULL;
    lg_tensor *y = lgT_new_like(ctx, x, who);
    if (!y)
        return NULL;
    struct unary_args args = { .op = op, .y = y->data, .x = x->data, .a = a, .b = b };
    lgC_parallel(ctx, x->numel, x->numel, x->dtype == LG_F32 ? unary_range_f32 : unary_range_f64,
                 &args);
    y->attr.unary.a = a;
    y->attr.unary.b = b;
    return lgA_record(ctx, op, y, 1, &x);
}

static lg_status unary_backward(lg_ctx *ctx, int op, lg_tensor *y)
{
    lg_tensor *x = y->in[0];
    lg_tensor *dx = lgT_new_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    struct unary_args args = { .op = op,
                               .backward = true,
                               .y = y->data,
                               .dx = dx->data,
                               .x = x->data,
                               .g = y->grad->data,
                               .a = y->attr.unary.a,
                               .b = y->attr.unary.b };
    lgC_parallel(ctx, x->numel, x->numel, x->dtype == LG_F32 ? unary_range_f32 : unary_range_f64,
                 &args);
    return lgA_accum(ctx, x, dx);
}

/* One line per row: lgA_bw_<name>, and lg_<name> for the rows without
 * attributes (LG_UNARY_ATTR rows have theirs below). */
/* clang-format off */
#define LG_UNARY(name, fwd, bwd) lg_status lgA_bw_##name(lg_ctx *ctx, lg_tensor *y) { return unary_backward(ctx, LGA_OP_##name, y); }
#include "unary.def"
#undef LG_UNARY
#define LG_UNARY(name, fwd, bwd) lg_tensor *lg_##name(lg_ctx *ctx, lg_tensor *x) { return unary(ctx, LGA_OP_##name, x, 0, 0); }
#define LG_UNARY_ATTR(name, fwd, bwd)
#include "unary.def"
#undef LG_UNARY
#undef LG_UNARY_ATTR
/* clang-format on */

lg_tensor *lg_softplus(lg_ctx *ctx, lg_tensor *x, double beta, double threshold)
{
    if (ctx && !(beta > 0) && x)
        return lgC_error(ctx, LG_ERR_VALUE, "lg_softplus: beta = %g, expected > 0", beta);
    return unary(ctx, LGA_OP_softplus, x, beta, threshold);
}

lg_tensor *lg_pow_scalar(lg_ctx *ctx, lg_tensor *x, double p)
{
    return unary(ctx, LGA_OP_pow_scalar, x, p, 0);
}

lg_tensor *lg_mul_scalar(lg_ctx *ctx, lg_tensor *x, double s)
{
    return unary(ctx, LGA_OP_affine, x, s, 0);
}

lg_tensor *lg_add_scalar(lg_ctx *ctx, lg_tensor *x, double s)
{
    return unary(ctx, LGA_OP_affine, x, 1, s);
}

lg_tensor *lg_clamp(lg_ctx *ctx, lg_tensor *x, double lo, double hi)
{
    return unary(ctx, LGA_OP_clamp, x, lo, hi);
}

lg_tensor *lg_gelu(lg_ctx *ctx, lg_tensor *x, lg_gelu_approximate approximate)
{
    if (ctx && x && approximate != LG_GELU_NONE && approximate != LG_GELU_TANH)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "lg_gelu: approximate = %d, expected LG_GELU_NONE or LG_GELU_TANH",
                         (int)approximate);
    return unary(ctx, approximate == LG_GELU_TANH ? LGA_OP_gelu_tanh : LGA_OP_gelu, x, 0, 0);
}

lg_tensor *lg_leaky_relu(lg_ctx *ctx, lg_tensor *x, double negative_slope)
{
    if (ctx && x && !isfinite(negative_slope))
        return lgC_error(ctx, LG_ERR_VALUE, "lg_leaky_relu: negative_slope = %g, expected finite",
                         negative_slope);
    return unary(ctx, LGA_OP_leaky_relu, x, negative_slope, 0);
}

lg_tensor *lg_elu(lg_ctx *ctx, lg_tensor *x, double alpha)
{
    if (ctx && x && !isfinite(alpha))
        return lgC_error(ctx, LG_ERR_VALUE, "lg_elu: alpha = %g, expected finite", alpha);
    return unary(ctx, LGA_OP_elu, x, alpha, 1);
}

lg_tensor *lg_celu(lg_ctx *ctx, lg_tensor *x, double alpha)
{
    if (ctx && x && (!isfinite(alpha) || alpha == 0))
        return lgC_error(ctx, LG_ERR_VALUE, "lg_celu: alpha = %g, expected finite and not 0",
                         alpha);
    return unary(ctx, LGA_OP_elu, x, alpha, 1 / alpha);
}

lg_tensor *lg_hardtanh(lg_ctx *ctx, lg_tensor *x, double min_val, double max_val)
{
    if (ctx && x && !(min_val <= max_val))
        return lgC_error(ctx, LG_ERR_VALUE,
                         "lg_hardtanh: min_val = %g and max_val = %g, expected min_val <= max_val",
                         min_val, max_val);
    return unary(ctx, LGA_OP_hardtanh, x, min_val, max_val);
}

lg_tensor *lg_relu6(lg_ctx *ctx, lg_tensor *x)
{
    return unary(ctx, LGA_OP_hardtanh, x, 0, 6);
}
