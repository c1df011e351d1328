/* nn.h: helpers shared by src/nn (internal). The nn module uses the public
 * API, the ctx's persistent allocator and its error recorder. */
#ifndef LG_NN_H
#define LG_NN_H

#include "../core/core.h"

/* A layer is made whole or not at all: a constructor runs its body between
 * lgN_build_begin and lgN_build_end, which drops the parameters the body
 * made if it failed (returned NULL). Errors recorded meanwhile name who. */
typedef struct lgN_build {
    int params, buffers;
    const char *outer;
} lgN_build;
static inline lgN_build lgN_build_begin(lg_ctx *ctx, const char *who)
{
    return (lgN_build){ lg_param_count(ctx), lg_buffer_count(ctx), lgC_api_enter(ctx, who) };
}
static inline void *lgN_build_end(lg_ctx *ctx, lgN_build b, void *made)
{
    if (!made) {
        lgC_params_drop(ctx, b.params);
        lgC_buffers_drop(ctx, b.buffers);
    }
    lgC_api_leave(ctx, b.outer);
    return made;
}
/* The end of a public call made of others (lgC_api_enter): returns res. */
static inline void *lgN_api_done(lg_ctx *ctx, const char *outer, void *res)
{
    lgC_api_leave(ctx, outer);
    return res;
}

/* "<prefix>.<leaf>" into buf; prefix may be NULL or "". NULL (and
 * LG_ERR_VALUE) when it does not fit. */
LG_HIDDEN const char *lgN_name(lg_ctx *ctx, char *buf, size_t n, const char *prefix,
                               const char *leaf);
static inline const char *lgN_dtype_name(lg_dtype dt)
{
    return dt == LG_F32 ? "float32" : (dt == LG_F64 ? "float64" : "int64");
}
/* A new parameter filled U(-bound, bound). */
LG_HIDDEN lg_tensor *lgN_param_uniform(lg_ctx *ctx, const char *name, lg_dtype dt, int ndim,
                                       const int64_t *shape, double bound);
/* *out = a b, false when that overflows or passes a tensor's element bound
 * (INT64_MAX / 8, as every shape): for size checks before any parameter
 * is made, so that a failing constructor leaves the parameter store as it
 * was and its message names the user's call. */
static inline bool lgN_size_mul(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_mul_overflow(a, b, out) && *out <= INT64_MAX / 8;
}
/* Element i of a float tensor as double, and the store. */
static inline double lgN_get(lg_tensor *t, int64_t i)
{
    return lg_tensor_dtype(t) == LG_F32 ? ((float *)lg_tensor_data(t))[i]
                                        : ((double *)lg_tensor_data(t))[i];
}
static inline void lgN_set(lg_tensor *t, int64_t i, double v)
{
    if (lg_tensor_dtype(t) == LG_F32)
        ((float *)lg_tensor_data(t))[i] = (float)v;
    else
        ((double *)lg_tensor_data(t))[i] = v;
}

#endif
