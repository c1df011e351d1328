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

/* The taped backward: dx = g f'(x), with f' written in ops (so that it is
 * differentiable again). Masks (comparisons) carry no gradient, as the
 * kernels' piecewise rules have none. */
static lg_tensor *derivative(lg_ctx *ctx, int op, lg_tensor *x, lg_tensor *y, double a, double b)
{
#define C(v) lgA_const(ctx, x, (v))
#define SCALE(t, s) lg_mul_scalar(ctx, (t), (s))
    switch (op) {
    case LGA_OP_exp:
        return y;
    case LGA_OP_log:
        return lg_div(ctx, C(1), x);
    case LGA_OP_log1p:
        return lg_div(ctx, C(1), lg_add_scalar(ctx, x, 1));
    case LGA_OP_expm1:
        return lg_add_scalar(ctx, y, 1);
    case LGA_OP_abs: /* sign(x), 0 at 0 and at NaN */
        return lg_sub(ctx, lg_gt(ctx, x, C(0)), lg_lt(ctx, x, C(0)));
    case LGA_OP_sqrt:
        return lg_div(ctx, C(0.5), y);
    case LGA_OP_square:
        return SCALE(x, 2);
    case LGA_OP_relu:
        return lg_gt(ctx, x, C(0));
    case LGA_OP_sigmoid:
        return lg_mul(ctx, y, lg_add_scalar(ctx, lg_neg(ctx, y), 1));
    case LGA_OP_log_sigmoid: /* 1 / (1 + e^x) */
        return lg_sigmoid(ctx, lg_neg(ctx, x));
    case LGA_OP_tanh:
        return lg_add_scalar(ctx, lg_neg(ctx, lg_square(ctx, y)), 1);
    case LGA_OP_erf:
        return SCALE(lg_exp(ctx, lg_neg(ctx, lg_square(ctx, x))), 1.12837916709551257390);
    case LGA_OP_softplus: /* x a > b ? 1 : sigmoid(a x) */
        return lg_where(ctx, lg_gt(ctx, SCALE(x, a), C(b)), C(1),
                        lg_sigmoid(ctx, SCALE(x, a)));
    case LGA_OP_pow_scalar:
        return a == 0 ? lg_mul(ctx, x, C(0)) : SCALE(lg_pow_scalar(ctx, x, a - 1), a);
    case LGA_OP_clamp: /* 1 on [a, b] */
        return lg_mul(ctx, lg_ge(ctx, x, C(a)), lg_le(ctx, x, C(b)));
    case LGA_OP_gelu: { /* Phi(x) + x phi(x) */
        lg_tensor *cdf = SCALE(lg_add_scalar(ctx, lg_erf(ctx, SCALE(x, 0.70710678118654752440)), 1),
                               0.5);
        lg_tensor *pdf =
            SCALE(lg_exp(ctx, SCALE(lg_square(ctx, x), -0.5)), 0.39894228040143267794);
        return lg_add(ctx, cdf, lg_mul(ctx, x, pdf));
    }
    case LGA_OP_gelu_tanh: { /* 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2) */
        const double k = 0.79788456080286535588, c = 0.044715;
        lg_tensor *x2 = lg_square(ctx, x);
        lg_tensor *t = lg_tanh(ctx, SCALE(lg_mul(ctx, x, lg_add_scalar(ctx, SCALE(x2, c), 1)), k));
        lg_tensor *dt = lg_add_scalar(ctx, lg_neg(ctx, lg_square(ctx, t)), 1);
        lg_tensor *inner = SCALE(lg_add_scalar(ctx, SCALE(x2, 3 * c), 1), k);
        return lg_add(ctx, SCALE(lg_add_scalar(ctx, t, 1), 0.5),
                      SCALE(lg_mul(ctx, x, lg_mul(ctx, dt, inner)), 0.5));
    }
    case LGA_OP_silu: { /* s (1 + x (1 - s)) */
        lg_tensor *sg = lg_sigmoid(ctx, x);
        return lg_mul(ctx, sg,
                      lg_add_scalar(ctx, lg_mul(ctx, x, lg_add_scalar(ctx, lg_neg(ctx, sg), 1)),
                                    1));
    }
    case LGA_OP_mish: { /* t + x sigmoid(x) (1 - t^2), t = tanh(log1p(e^x)) */
        lg_tensor *t = lg_tanh(ctx, lg_log1p(ctx, lg_exp(ctx, x)));
        lg_tensor *dt = lg_add_scalar(ctx, lg_neg(ctx, lg_square(ctx, t)), 1);
        return lg_add(ctx, t, lg_mul(ctx, lg_mul(ctx, x, lg_sigmoid(ctx, x)), dt));
    }
    case LGA_OP_hardswish: /* 0 below -3, 1 from 3, x/3 + 1/2 between */
        return lg_where(ctx, lg_lt(ctx, x, C(-3)), C(0),
                        lg_where(ctx, lg_ge(ctx, x, C(3)), C(1),
                                 lg_add_scalar(ctx, SCALE(x, 1.0 / 3), 0.5)));
    case LGA_OP_hardsigmoid:
        return SCALE(lg_mul(ctx, lg_gt(ctx, x, C(-3)), lg_lt(ctx, x, C(3))), 1.0 / 6);
    case LGA_OP_softsign:
        return lg_div(ctx, C(1), lg_square(ctx, lg_add_scalar(ctx, lg_abs(ctx, x), 1)));
    case LGA_OP_selu: {
        const double scale = 1.0507009873554804934, alpha = 1.6732632423543772848;
        return lg_where(ctx, lg_gt(ctx, x, C(0)), C(scale), SCALE(lg_exp(ctx, x), scale * alpha));
    }
    case LGA_OP_leaky_relu:
        return lg_where(ctx, lg_gt(ctx, x, C(0)), C(1), C(a));
    case LGA_OP_elu:
        return lg_where(ctx, lg_gt(ctx, x, C(0)), C(1), SCALE(lg_exp(ctx, SCALE(x, b)), a * b));
    case LGA_OP_hardtanh:
        return lg_mul(ctx, lg_gt(ctx, x, C(a)), lg_lt(ctx, x, C(b)));
    default:
        return NULL; /* neg, sign, affine: handled by the caller */
    }
#undef C
#undef SCALE
}

static lg_status unary_taped(lg_ctx *ctx, int op, lg_tensor *y, lg_tensor *g)
{
    lg_tensor *x = y->in[0];
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    double a = y->attr.unary.a, b = y->attr.unary.b;
    lg_tensor *dx;
    if (op == LGA_OP_neg)
        dx = lg_neg(ctx, g);
    else if (op == LGA_OP_sign)
        dx = lg_mul(ctx, g, lgA_const(ctx, g, 0)); /* zeros (NaN where g is) */
    else if (op == LGA_OP_affine)
        dx = lg_mul_scalar(ctx, g, a);
    else {
        lg_tensor *d = derivative(ctx, op, x, y, a, b);
        dx = d ? lg_mul(ctx, g, d) : NULL; /* d has x's shape: a mask's at least */
    }
    return lgA_taccum(ctx, x, dx);
}

/* One line per row: lgA_bw_<name>, and lg_<name> for the rows without
 * attributes (LG_UNARY_ATTR rows have theirs below). */
/* clang-format off */
#define LG_UNARY(name, fwd, bwd) lg_status lgA_bw_##name(lg_ctx *ctx, lg_tensor *y) { return unary_backward(ctx, LGA_OP_##name, y); }
#include "unary.def"
#undef LG_UNARY
#define LG_UNARY(name, fwd, bwd) lg_status lgA_tbw_##name(lg_ctx *ctx, lg_tensor *y, lg_tensor *g) { return unary_taped(ctx, LGA_OP_##name, y, g); }
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
