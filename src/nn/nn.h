/* nn.h: helpers shared by src/nn (internal). The nn module uses the public
 * API, the ctx's persistent allocator and its error recorder. */
#ifndef LG_NN_H
#define LG_NN_H

#include "../core/core.h"

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
