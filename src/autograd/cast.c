/* cast.c: cast between dtypes, and clone.
 *
 *   cast: y = x converted to dt; float -> float passes the gradient back
 *         converted to x's dtype; int64 -> float carries none.
 *   clone: y = x (a copy); dx = g.
 */
#include "autograd.h"

#include <string.h>

lg_tensor *lg_cast(lg_ctx *ctx, lg_tensor *x, lg_dtype dt)
{
    static const char who[] = "lg_cast";
    if (!ctx || !lgT_ok(ctx, x, who, "x"))
        return NULL;
    if (!lgT_is_float(dt) && dt != LG_I64)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: target dtype %d is not a lossgrad dtype", who,
                         (int)dt);
    if (lgT_is_float((lg_dtype)x->dtype) && dt == LG_I64)
        return lgC_error(ctx, LG_ERR_DTYPE,
                         "%s: float to int64 is not supported (it would lose the "
                         "gradient); round explicitly",
                         who);
    lg_tensor *y = lgT_new(ctx, dt, x->ndim, x->shape, who);
    if (!y)
        return NULL;
    if (dt == x->dtype)
        memcpy(y->data, x->data, (size_t)x->numel * lgT_dtype_size(dt));
    else if (dt == LG_F32 && x->dtype == LG_F64)
        for (int64_t i = 0; i < x->numel; i++)
            LGT_F(y)[i] = (float)LGT_D(x)[i];
    else
        for (int64_t i = 0; i < x->numel; i++)
            lgT_set(y, i, lgT_get(x, i));
    return lgA_record(ctx, LGA_OP_cast, y, 1, &x);
}

lg_status lgA_bw_cast(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *x = y->in[0];
    lg_tensor *dx = lgT_new_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    for (int64_t i = 0; i < x->numel; i++)
        lgT_set(dx, i, lgT_get(y->grad, i));
    return lgA_accum(ctx, x, dx);
}

lg_tensor *lg_clone(lg_ctx *ctx, lg_tensor *x)
{
    static const char who[] = "lg_clone";
    if (!ctx || !lgT_ok(ctx, x, who, "x"))
        return NULL;
    lg_tensor *y = lgT_new_like(ctx, x, who);
    if (!y)
        return NULL;
    memcpy(y->data, x->data, (size_t)x->numel * lgT_dtype_size((lg_dtype)x->dtype));
    return lgA_record(ctx, LGA_OP_clone, y, 1, &x);
}

lg_status lgA_bw_clone(lg_ctx *ctx, lg_tensor *y)
{
    return lgA_accum_shared(ctx, y->in[0], y->grad);
}

/* Taped: cast back; clone passes g */
lg_status lgA_tbw_cast(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    lg_tensor *x = y->in[0];
    return lgA_tneeds(y, 0) ? lgA_taccum(ctx, x, lg_cast(ctx, g, (lg_dtype)x->dtype)) : LG_OK;
}

lg_status lgA_tbw_clone(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return lgA_tneeds(y, 0) ? lgA_taccum(ctx, y->in[0], g) : LG_OK;
}
