/* unary.c: the elementwise unary primitives of unary.def.
 *
 *   y = f(x; a, b),  dx = f'(g, x, y; a, b)   (any shape, same dtype)
 *
 * Each row of unary.def expands to a forward and a backward kernel for
 * float and double; <tgmath.h> picks expf or exp by the element type.
 * Scalar attributes a, b are stored in y->attr.f[0..1].
 */
#include "autograd.h"

#include <tgmath.h>

#define KERNELS(name, T, SUF, fwd, bwd)                                                            \
    static void fw_##name##_##SUF(lg_ctx *ctx, T *restrict yv, const T *restrict xv, int64_t n,    \
                                  T a, T b)                                                        \
    {                                                                                              \
        (void)a, (void)b;                                                                          \
        LGT_FOR(                                                                                   \
            ctx, n, for (int64_t i = 0; i < n; i++) {                                              \
                T x = xv[i];                                                                       \
                yv[i] = (T)(fwd);                                                                  \
            });                                                                                    \
    }                                                                                              \
    static void bw_##name##_##SUF(lg_ctx *ctx, T *restrict dx, const T *restrict gv,               \
                                  const T *restrict xv, const T *restrict yv, int64_t n, T a, T b) \
    {                                                                                              \
        (void)a, (void)b, (void)xv, (void)yv, (void)gv;                                            \
        LGT_FOR(                                                                                   \
            ctx, n, for (int64_t i = 0; i < n; i++) {                                              \
                T x = xv[i], y = yv[i], g = gv[i];                                                 \
                (void)x, (void)y, (void)g;                                                         \
                dx[i] = (T)(bwd);                                                                  \
            });                                                                                    \
    }

#define LG_UNARY(name, fwd, bwd)                                                                   \
    KERNELS(name, float, f32, fwd, bwd)                                                            \
    KERNELS(name, double, f64, fwd, bwd)
#include "unary.def"
#undef LG_UNARY

typedef void (*fw_f32)(lg_ctx *, float *, const float *, int64_t, float, float);
typedef void (*fw_f64)(lg_ctx *, double *, const double *, int64_t, double, double);
typedef void (*bw_f32)(lg_ctx *, float *, const float *, const float *, const float *, int64_t,
                       float, float);
typedef void (*bw_f64)(lg_ctx *, double *, const double *, const double *, const double *, int64_t,
                       double, double);

static const struct {
    fw_f32 f32;
    fw_f64 f64;
    bw_f32 b32;
    bw_f64 b64;
    const char *who;
} table[] = {
#define LG_UNARY(name, fwd, bwd)                                                                   \
    [LGA_OP_##name] = { fw_##name##_f32, fw_##name##_f64, bw_##name##_f32, bw_##name##_f64,        \
                        "lg_" #name },
#include "unary.def"
#undef LG_UNARY
};

static lg_tensor *unary(lg_ctx *ctx, int op, lg_tensor *x, double a, double b)
{
    const char *who = table[op].who;
    if (!ctx || !lgT_ok_float(ctx, x, who, "x"))
        return NULL;
    lg_tensor *y = lgT_new_like(ctx, x, who);
    if (!y)
        return NULL;
    if (x->dtype == LG_F32)
        table[op].f32(ctx, LGT_F(y), LGT_F(x), x->numel, (float)a, (float)b);
    else
        table[op].f64(ctx, LGT_D(y), LGT_D(x), x->numel, a, b);
    y->attr.f[0] = a;
    y->attr.f[1] = b;
    return lgA_record(ctx, op, y, 1, &x);
}

static lg_status unary_backward(lg_ctx *ctx, int op, lg_tensor *y)
{
    lg_tensor *x = y->in[0];
    lg_tensor *dx = lgT_new_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    double a = y->attr.f[0], b = y->attr.f[1];
    if (x->dtype == LG_F32)
        table[op].b32(ctx, LGT_F(dx), LGT_F(y->grad), LGT_F(x), LGT_F(y), x->numel, (float)a,
                      (float)b);
    else
        table[op].b64(ctx, LGT_D(dx), LGT_D(y->grad), LGT_D(x), LGT_D(y), x->numel, a, b);
    return lgA_accum(ctx, x, dx);
}

#define LG_UNARY(name, fwd, bwd)                                                                   \
    lg_status lgA_bw_##name(lg_ctx *ctx, lg_tensor *y)                                             \
    {                                                                                              \
        return unary_backward(ctx, LGA_OP_##name, y);                                              \
    }
#include "unary.def"
#undef LG_UNARY

/* Public constructors: those without attributes come from the table. */
#define NO_ATTR(name)                                                                              \
    lg_tensor *lg_##name(lg_ctx *ctx, lg_tensor *x)                                                \
    {                                                                                              \
        return unary(ctx, LGA_OP_##name, x, 0, 0);                                                 \
    }
NO_ATTR(neg)
NO_ATTR(exp)
NO_ATTR(log)
NO_ATTR(log1p)
NO_ATTR(expm1)
NO_ATTR(abs)
NO_ATTR(sign)
NO_ATTR(sqrt)
NO_ATTR(square)
NO_ATTR(relu)
NO_ATTR(sigmoid)
NO_ATTR(log_sigmoid)
NO_ATTR(tanh)

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
