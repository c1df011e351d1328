/* binary.c: broadcasting elementwise binary primitives.
 *
 *   add: y = a + b      da = g            db = g
 *   sub: y = a - b      da = g            db = -g
 *   mul: y = a b        da = g b          db = g a
 *   div: y = a / b      da = g / b        db = -g y / b
 *   pow: y = a^b        da = g b a^(b-1)  db = g y log(a)   (0 where b == 0 / a == 0, b >= 0)
 *   maximum, minimum:   the gradient goes to the larger (smaller) input, halved at ties.
 *   xlogy: y = a log b (0 where a == 0 and b is not NaN)
 *                       da = g log b (0 where a == 0, b <= 0)   db = g a / b   (as PyTorch)
 *
 * a, b: same float dtype, broadcastable shapes -> y: the broadcast shape.
 * Backward computes each input's gradient at y's shape; lgA_accum sums it
 * back over broadcast axes.
 */
#include "autograd.h"

#include <tgmath.h>

/* Runs BODY for every output element o, with ia, ib the input offsets. */
#define BCAST_LOOP(ctx, it, ...)                                                                   \
    do {                                                                                           \
        int64_t inner_ = (it)->inner, sa_ = (it)->stride[0][(it)->ndim - 1],                       \
                sb_ = (it)->stride[1][(it)->ndim - 1];                                             \
        LGT_FOR(                                                                                   \
            ctx, (it)->rows *inner_, for (int64_t r_ = 0; r_ < (it)->rows; r_++) {                 \
                int64_t off_[3];                                                                   \
                lgT_iter_row((it), r_, off_);                                                      \
                for (int64_t j_ = 0; j_ < inner_; j_++) {                                          \
                    int64_t o = r_ * inner_ + j_, ia = off_[0] + j_ * sa_,                         \
                            ib = off_[1] + j_ * sb_;                                               \
                    __VA_ARGS__;                                                                   \
                }                                                                                  \
            });                                                                                    \
    } while (0)

#define BINARY_FW_KERNELS(name, T, SUF, FWD, DA, DB)                                               \
    static void fw_##name##_##SUF(lg_ctx *ctx, const lgT_iter *it, T *yv, const T *av,             \
                                  const T *bv)                                                     \
    {                                                                                              \
        BCAST_LOOP(ctx, it, {                                                                      \
            T a = av[ia], b = bv[ib];                                                              \
            yv[o] = (T)(FWD);                                                                      \
        });                                                                                        \
    }
#define BINARY_BW_KERNELS(name, T, SUF, FWD, DA, DB)                                               \
    static void bw_##name##_##SUF(lg_ctx *ctx, const lgT_iter *it, T *da, T *db, const T *gv,      \
                                  const T *yv, const T *av, const T *bv)                           \
    {                                                                                              \
        BCAST_LOOP(ctx, it, {                                                                      \
            T a = av[ia], b = bv[ib], g = gv[o], y = yv[o];                                        \
            (void)a, (void)b, (void)y;                                                             \
            if (da)                                                                                \
                da[o] = (T)(DA);                                                                   \
            if (db)                                                                                \
                db[o] = (T)(DB);                                                                   \
        });                                                                                        \
    }

#define BINARY(name, FWD, DA, DB)                                                                  \
    BINARY_FORWARD(name, FWD, DA, DB)                                                              \
    BINARY_BW_KERNELS(name, float, f32, FWD, DA, DB)                                               \
    BINARY_BW_KERNELS(name, double, f64, FWD, DA, DB)                                              \
    lg_status lgA_bw_##name(lg_ctx *ctx, lg_tensor *y)                                             \
    {                                                                                              \
        lgT_iter it;                                                                               \
        lg_tensor *da = NULL, *db = NULL;                                                          \
        if (!binary_grads(ctx, y, &it, &da, &db))                                                  \
            return ctx->status;                                                                    \
        lg_tensor *a = y->in[0], *b = y->in[1];                                                    \
        if (y->dtype == LG_F32)                                                                    \
            bw_##name##_f32(ctx, &it, da ? LGT_F(da) : NULL, db ? LGT_F(db) : NULL,                \
                            LGT_F(y->grad), LGT_F(y), LGT_F(a), LGT_F(b));                         \
        else                                                                                       \
            bw_##name##_f64(ctx, &it, da ? LGT_D(da) : NULL, db ? LGT_D(db) : NULL,                \
                            LGT_D(y->grad), LGT_D(y), LGT_D(a), LGT_D(b));                         \
        return binary_finish(ctx, y, da, db);                                                      \
    }

#define BINARY_FORWARD(name, FWD, DA, DB)                                                          \
    BINARY_FW_KERNELS(name, float, f32, FWD, DA, DB)                                               \
    BINARY_FW_KERNELS(name, double, f64, FWD, DA, DB)                                              \
    lg_tensor *lg_##name(lg_ctx *ctx, lg_tensor *a, lg_tensor *b)                                  \
    {                                                                                              \
        lgT_iter it;                                                                               \
        lg_tensor *y = binary_setup(ctx, a, b, "lg_" #name, &it);                                  \
        if (!y)                                                                                    \
            return NULL;                                                                           \
        if (y->dtype == LG_F32)                                                                    \
            fw_##name##_f32(ctx, &it, LGT_F(y), LGT_F(a), LGT_F(b));                               \
        else                                                                                       \
            fw_##name##_f64(ctx, &it, LGT_D(y), LGT_D(a), LGT_D(b));                               \
        return lgA_record(ctx, LGA_OP_##name, y, 2, (lg_tensor *[]){ a, b });                      \
    }

static lg_tensor *binary_setup(lg_ctx *ctx, lg_tensor *a, lg_tensor *b, const char *who,
                               lgT_iter *it)
{
    if (!ctx || !lgT_ok_float(ctx, a, who, "a") || !lgT_ok_float(ctx, b, who, "b") ||
        !lgT_same_dtype(ctx, a, b, who))
        return NULL;
    int nd;
    int64_t shape[LG_MAX_DIMS];
    const lg_tensor *ins[2] = { a, b };
    if (!lgT_broadcast_shape(ctx, 2, ins, who, &nd, shape))
        return NULL;
    lg_tensor *y = lgT_new(ctx, (lg_dtype)a->dtype, nd, shape, who);
    if (y)
        lgT_iter_init(it, nd, shape, 2, ins);
    return y;
}

static bool binary_grads(lg_ctx *ctx, lg_tensor *y, lgT_iter *it, lg_tensor **da, lg_tensor **db)
{
    const lg_tensor *ins[2] = { y->in[0], y->in[1] };
    lgT_iter_init(it, y->ndim, y->shape, 2, ins);
    if (lgA_needs(y, 0) && !(*da = lgT_new_like(ctx, y, "lg_backward")))
        return false;
    if (lgA_needs(y, 1) && !(*db = lgT_new_like(ctx, y, "lg_backward")))
        return false;
    return true;
}

static lg_status binary_finish(lg_ctx *ctx, lg_tensor *y, lg_tensor *da, lg_tensor *db)
{
    if (da && lgA_accum(ctx, y->in[0], da) != LG_OK)
        return ctx->status;
    if (db && lgA_accum(ctx, y->in[1], db) != LG_OK)
        return ctx->status;
    return LG_OK;
}

/* add's gradient is g itself: summed straight into each input's gradient
 * (over the broadcast axes for a bias), without a copy per input. */
BINARY_FORWARD(add, a + b, g, g)
lg_status lgA_bw_add(lg_ctx *ctx, lg_tensor *y)
{
    for (int k = 0; k < 2; k++)
        if (lgA_needs(y, k) && lgA_accum_shared(ctx, y->in[k], y->grad) != LG_OK)
            return ctx->status;
    return LG_OK;
}

BINARY(sub, a - b, g, -g)
BINARY(mul, a *b, g *b, g *a)
BINARY(div, a / b, g / b, -g *y / b)
BINARY(pow, pow(a, b), b == 0 ? 0 : g * b * pow(a, b - 1), (a == 0 && b >= 0) ? 0 : g *y *log(a))
BINARY(maximum, (a > b || a != a) ? a : b, a > b ? g : (a == b ? g / 2 : 0),
       b > a ? g : (a == b ? g / 2 : 0))
BINARY(minimum, (a < b || a != a) ? a : b, a < b ? g : (a == b ? g / 2 : 0),
       b < a ? g : (a == b ? g / 2 : 0))
BINARY(xlogy, (a == 0 && b == b) ? 0 : a *log(b), (a == 0 && b <= 0) ? 0 : g *log(b), g *a / b)
