/* binary.c: broadcasting elementwise binary primitives.
 *
 *   add: y = a + b      da = g            db = g
 *   sub: y = a - b      da = g            db = -g
 *   mul: y = a b        da = g b          db = g a
 *   div: y = a / b      da = g / b        db = -g y / b
 *   pow: y = a^b        da = g b a^(b-1)  db = g y log(a)   (0 where b == 0 / a == 0, b >= 0)
 *   maximum, minimum:   the gradient goes to the larger (smaller) input, halved at ties, whole to both at a NaN.
 *   xlogy: y = a log b (0 where a == 0 and b is not NaN)
 *                       da = g log b (0 where a == 0, b <= 0)   db = g a / b   (as PyTorch)
 *
 * a, b: same float dtype, broadcastable shapes -> y: the broadcast shape.
 * Backward computes each input's gradient at y's shape; lgA_accum sums it
 * back over broadcast axes. binary.def holds the rows, binary_kernel.h the
 * loops (once per element type).
 */
#include "autograd.h"

#include <tgmath.h>

/* What one kernel call works on; the pointers have the call's dtype. */
struct binary_args {
    int op;
    bool backward;
    const lgT_iter *it; /* over y's shape; the work is split by its rows */
    const void *a, *b, *g, *y;
    void *out, *da, *db; /* out: the forward's y */
};

#define LGC_TEMPLATE "../autograd/binary_kernel.h"
#include "../core/instantiate.h"

static const char *const binary_who[] = {
#define LG_BINARY(name, fwd, da, db) [LGA_OP_##name] = "lg_" #name,
#include "binary.def"
#undef LG_BINARY
};

lg_tensor *lgA_broadcast_new(lg_ctx *ctx, const lg_tensor *a, const lg_tensor *b, const char *who,
                             lgT_iter *it)
{
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

static lg_tensor *binary_setup(lg_ctx *ctx, lg_tensor *a, lg_tensor *b, const char *who,
                               lgT_iter *it)
{
    if (!ctx || !lgT_ok_float(ctx, a, who, "a") || !lgT_ok_float(ctx, b, who, "b") ||
        !lgT_same_dtype(ctx, a, b, who))
        return NULL;
    return lgA_broadcast_new(ctx, a, b, who, it);
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

static lg_tensor *binary(lg_ctx *ctx, int op, lg_tensor *a, lg_tensor *b)
{
    lgT_iter it;
    lg_tensor *y = binary_setup(ctx, a, b, binary_who[op], &it);
    if (!y)
        return NULL;
    struct binary_args args = { .op = op, .it = &it, .a = a->data, .b = b->data, .out = y->data };
    lgC_parallel(ctx, it.rows * it.inner, it.rows,
                 y->dtype == LG_F32 ? binary_range_f32 : binary_range_f64, &args);
    return lgA_record(ctx, op, y, 2, (lg_tensor *[]){ a, b });
}

/* add's gradient is g itself: summed straight into each input's gradient
 * (over the broadcast axes for a bias), without a copy per input. */
static lg_status add_backward(lg_ctx *ctx, lg_tensor *y)
{
    for (int k = 0; k < 2; k++)
        if (lgA_needs(y, k) && lgA_accum_shared(ctx, y->in[k], y->grad) != LG_OK)
            return ctx->status;
    return LG_OK;
}

static lg_status binary_backward(lg_ctx *ctx, int op, lg_tensor *y)
{
    if (op == LGA_OP_add)
        return add_backward(ctx, y);
    lgT_iter it;
    lg_tensor *da = NULL, *db = NULL;
    if (!binary_grads(ctx, y, &it, &da, &db))
        return ctx->status;
    struct binary_args args = { .op = op,
                                .backward = true,
                                .it = &it,
                                .a = y->in[0]->data,
                                .b = y->in[1]->data,
                                .g = y->grad->data,
                                .y = y->data,
                                .da = da ? da->data : NULL,
                                .db = db ? db->data : NULL };
    lgC_parallel(ctx, it.rows * it.inner, it.rows,
                 y->dtype == LG_F32 ? binary_range_f32 : binary_range_f64, &args);
    return binary_finish(ctx, y, da, db);
}

/* The weight of a maximum's (minimum's) gradient to one side: 0 where the
 * other side wins (other_wins), 1/2 at a tie, 1 otherwise (NaN included). */
static lg_tensor *side_weight(lg_ctx *ctx, lg_tensor *other_wins, lg_tensor *a, lg_tensor *b)
{
    lg_tensor *c0 = lgA_const(ctx, a, 0), *half = lgA_const(ctx, a, 0.5),
              *one = lgA_const(ctx, a, 1);
    return lg_where(ctx, other_wins, c0, lg_where(ctx, lg_eq(ctx, a, b), half, one));
}

/* The taped backward: the same rules as the kernel, in ops. */
static lg_status binary_taped(lg_ctx *ctx, int op, lg_tensor *y, lg_tensor *g)
{
    lg_tensor *a = y->in[0], *b = y->in[1], *da = NULL, *db = NULL;
    bool na = lgA_tneeds(y, 0), nb = lgA_tneeds(y, 1);
    lg_tensor *c0 = lgA_const(ctx, a, 0);
    switch (op) {
    case LGA_OP_add:
        da = g, db = g;
        break;
    case LGA_OP_sub:
        da = g, db = nb ? lg_neg(ctx, g) : NULL;
        break;
    case LGA_OP_mul:
        da = na ? lg_mul(ctx, g, b) : NULL, db = nb ? lg_mul(ctx, g, a) : NULL;
        break;
    case LGA_OP_div:
        da = na ? lg_div(ctx, g, b) : NULL;
        db = nb ? lg_neg(ctx, lg_div(ctx, lg_mul(ctx, g, y), b)) : NULL;
        break;
    case LGA_OP_pow: /* 0 where b == 0; 0 where a == 0 and b >= 0 */
        if (na)
            da = lg_where(ctx, lg_eq(ctx, b, c0), c0,
                          lg_mul(ctx, lg_mul(ctx, g, b), lg_pow(ctx, a, lg_add_scalar(ctx, b, -1))));
        if (nb)
            db = lg_where(ctx, lg_mul(ctx, lg_eq(ctx, a, c0), lg_ge(ctx, b, c0)), c0,
                          lg_mul(ctx, lg_mul(ctx, g, y), lg_log(ctx, a)));
        break;
    case LGA_OP_maximum:
        da = na ? lg_mul(ctx, g, side_weight(ctx, lg_lt(ctx, a, b), a, b)) : NULL;
        db = nb ? lg_mul(ctx, g, side_weight(ctx, lg_gt(ctx, a, b), a, b)) : NULL;
        break;
    case LGA_OP_minimum:
        da = na ? lg_mul(ctx, g, side_weight(ctx, lg_gt(ctx, a, b), a, b)) : NULL;
        db = nb ? lg_mul(ctx, g, side_weight(ctx, lg_lt(ctx, a, b), a, b)) : NULL;
        break;
    case LGA_OP_xlogy: /* da 0 where a == 0 and b <= 0 */
        if (na)
            da = lg_where(ctx, lg_mul(ctx, lg_eq(ctx, a, c0), lg_le(ctx, b, c0)), c0,
                          lg_mul(ctx, g, lg_log(ctx, b)));
        db = nb ? lg_div(ctx, lg_mul(ctx, g, a), b) : NULL;
        break;
    default:
        return lgC_errorf(ctx, LG_ERR_STATE, "lg_grad: binary op %d has no taped form", op);
    }
    if (na && lgA_taccum(ctx, a, da) != LG_OK)
        return ctx->status;
    if (nb && lgA_taccum(ctx, b, db) != LG_OK)
        return ctx->status;
    return LG_OK;
}

/* One line per row of binary.def: lg_<name> and lgA_bw_<name>. */
/* clang-format off */
#define LG_BINARY(name, fwd, da, db) lg_tensor *lg_##name(lg_ctx *ctx, lg_tensor *a, lg_tensor *b) { return binary(ctx, LGA_OP_##name, a, b); }
#include "binary.def"
#undef LG_BINARY
#define LG_BINARY(name, fwd, da, db) lg_status lgA_bw_##name(lg_ctx *ctx, lg_tensor *y) { return binary_backward(ctx, LGA_OP_##name, y); }
#include "binary.def"
#undef LG_BINARY
#define LG_BINARY(name, fwd, da, db) lg_status lgA_tbw_##name(lg_ctx *ctx, lg_tensor *y, lg_tensor *g) { return binary_taped(ctx, LGA_OP_##name, y, g); }
#include "binary.def"
#undef LG_BINARY
/* clang-format on */
