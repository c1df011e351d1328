/* compare.c: comparisons (masks) and where.
 *
 *   eq/ne/lt/le/gt/ge: y = (a op b) ? 1 : 0, broadcast, dtype of a; no gradient.
 *   where: y = mask != 0 ? a : b, broadcast over all three;
 *          da = g where mask, db = g elsewhere; mask gets none.
 */
#include "autograd.h"

enum { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };
static const char *const cmp_who[] = { "lg_eq", "lg_ne", "lg_lt", "lg_le", "lg_gt", "lg_ge" };

static bool cmp(int kind, double a, double b)
{
    switch (kind) {
    case CMP_EQ: return a == b;
    case CMP_NE: return a != b;
    case CMP_LT: return a < b;
    case CMP_LE: return a <= b;
    case CMP_GT: return a > b;
    default: return a >= b;
    }
}

#define CMP_LOOP(OP)                                                                               \
    for (int64_t j = 0; j < n; j++)                                                                \
        y[j] = a[j * sa] OP b[j * sb];                                                             \
    break
#define CMP_ROW(name, T)                                                                           \
    static void name(int kind, const T *a, int64_t sa, const T *b, int64_t sb, T *y, int64_t n)    \
    {                                                                                              \
        switch (kind) {                                                                            \
        case CMP_EQ: CMP_LOOP(==);                                                                 \
        case CMP_NE: CMP_LOOP(!=);                                                                 \
        case CMP_LT: CMP_LOOP(<);                                                                  \
        case CMP_LE: CMP_LOOP(<=);                                                                 \
        case CMP_GT: CMP_LOOP(>);                                                                  \
        default: CMP_LOOP(>=);                                                                     \
        }                                                                                          \
    }
CMP_ROW(cmp_row_f32, float)
CMP_ROW(cmp_row_f64, double)
#undef CMP_ROW
#undef CMP_LOOP

static lg_tensor *compare(lg_ctx *ctx, int kind, lg_tensor *a, lg_tensor *b)
{
    const char *who = cmp_who[kind];
    if (!ctx || !lgT_ok(ctx, a, who, "a") || !lgT_ok(ctx, b, who, "b") ||
        !lgT_same_dtype(ctx, a, b, who))
        return NULL;
    lgT_iter it;
    lg_tensor *y = lgA_broadcast_new(ctx, a, b, who, &it);
    if (!y)
        return NULL;
    int64_t sa = it.stride[0][it.ndim - 1], sb = it.stride[1][it.ndim - 1];
    for (int64_t r = 0; r < it.rows; r++) {
        int64_t off[3];
        lgT_iter_row(&it, r, off);
        /* typed rows for the float dtypes (ReLU's mask in every taped
         * backward), one loop per comparison; int64 through lgT_get */
        if (a->dtype == LG_F32)
            cmp_row_f32(kind, (const float *)a->data + off[0], sa,
                        (const float *)b->data + off[1], sb, (float *)y->data + r * it.inner,
                        it.inner);
        else if (a->dtype == LG_F64)
            cmp_row_f64(kind, (const double *)a->data + off[0], sa,
                        (const double *)b->data + off[1], sb, (double *)y->data + r * it.inner,
                        it.inner);
        else
            for (int64_t j = 0; j < it.inner; j++) {
                double va = lgT_get(a, off[0] + j * sa), vb = lgT_get(b, off[1] + j * sb);
                lgT_set(y, r * it.inner + j, cmp(kind, va, vb) ? 1.0 : 0.0);
            }
    }
    y->attr.compare.kind = kind;
    return lgA_record(ctx, LGA_OP_compare, y, 0, NULL);
}

lg_status lgA_bw_compare(lg_ctx *ctx, lg_tensor *y)
{
    (void)ctx, (void)y; /* never on the tape: masks carry no gradient */
    return LG_OK;
}

lg_tensor *lg_eq(lg_ctx *ctx, lg_tensor *a, lg_tensor *b)
{
    return compare(ctx, CMP_EQ, a, b);
}
lg_tensor *lg_ne(lg_ctx *ctx, lg_tensor *a, lg_tensor *b)
{
    return compare(ctx, CMP_NE, a, b);
}
lg_tensor *lg_lt(lg_ctx *ctx, lg_tensor *a, lg_tensor *b)
{
    return compare(ctx, CMP_LT, a, b);
}
lg_tensor *lg_le(lg_ctx *ctx, lg_tensor *a, lg_tensor *b)
{
    return compare(ctx, CMP_LE, a, b);
}
lg_tensor *lg_gt(lg_ctx *ctx, lg_tensor *a, lg_tensor *b)
{
    return compare(ctx, CMP_GT, a, b);
}
lg_tensor *lg_ge(lg_ctx *ctx, lg_tensor *a, lg_tensor *b)
{
    return compare(ctx, CMP_GE, a, b);
}

/* where: iterates (mask, a, b) together; `sel` receives y's choice per element. */
static void where_walk(const lgT_iter *it, const lg_tensor *mask, const lg_tensor *a,
                       const lg_tensor *b, lg_tensor *y)
{
    int64_t sm = it->stride[0][it->ndim - 1], sa = it->stride[1][it->ndim - 1],
            sb = it->stride[2][it->ndim - 1];
    for (int64_t r = 0; r < it->rows; r++) {
        int64_t off[3];
        lgT_iter_row(it, r, off);
        for (int64_t j = 0; j < it->inner; j++) {
            bool m = lgT_get(mask, off[0] + j * sm) != 0;
            lgT_set(y, r * it->inner + j,
                    m ? lgT_get(a, off[1] + j * sa) : lgT_get(b, off[2] + j * sb));
        }
    }
}

lg_tensor *lg_where(lg_ctx *ctx, lg_tensor *mask, lg_tensor *a, lg_tensor *b)
{
    static const char who[] = "lg_where";
    if (!ctx || !lgT_ok(ctx, mask, who, "mask") || !lgT_ok_float(ctx, a, who, "a") ||
        !lgT_ok_float(ctx, b, who, "b") || !lgT_same_dtype(ctx, a, b, who))
        return NULL;
    int nd;
    int64_t shape[LG_MAX_DIMS];
    const lg_tensor *ins[3] = { mask, a, b };
    if (!lgT_broadcast_shape(ctx, 3, ins, who, &nd, shape))
        return NULL;
    lg_tensor *y = lgT_new(ctx, (lg_dtype)a->dtype, nd, shape, who);
    if (!y)
        return NULL;
    lgT_iter it;
    lgT_iter_init(&it, nd, shape, 3, ins);
    where_walk(&it, mask, a, b, y);
    /* The mask is recorded as an input but never receives a gradient. */
    lg_tensor *y2 = lgA_record(ctx, LGA_OP_where, y, 2, (lg_tensor *[]){ a, b });
    if (y2)
        y2->saved = mask;
    return y2;
}

lg_status lgA_bw_where(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *mask = y->saved, *g = y->grad;
    lg_tensor *zero = lgT_zeros_like(ctx, g, "lg_backward");
    if (!zero)
        return ctx->status;
    const lg_tensor *ins[3] = { mask, g, zero };
    lgT_iter it;
    lgT_iter_init(&it, y->ndim, y->shape, 3, ins);
    for (int k = 0; k < 2; k++) {
        if (!lgA_needs(y, k))
            continue;
        lg_tensor *d = lgT_new_like(ctx, g, "lg_backward");
        if (!d)
            return ctx->status;
        /* k = 0: g where mask, else 0;  k = 1: 0 where mask, else g. */
        where_walk(&it, mask, k == 0 ? g : zero, k == 0 ? zero : g, d);
        if (lgA_accum(ctx, y->in[k], d) != LG_OK)
            return ctx->status;
    }
    return LG_OK;
}

lg_status lgA_tbw_compare(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    (void)ctx, (void)y, (void)g; /* never on the tape */
    return LG_OK;
}

/* Taped where: g where the mask holds to a, elsewhere to b */
lg_status lgA_tbw_where(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    lg_tensor *mask = y->saved, *zero = lgA_const(ctx, g, 0);
    if (lgA_tneeds(y, 0) && lgA_taccum(ctx, y->in[0], lg_where(ctx, mask, g, zero)) != LG_OK)
        return ctx->status;
    if (lgA_tneeds(y, 1) && lgA_taccum(ctx, y->in[1], lg_where(ctx, mask, zero, g)) != LG_OK)
        return ctx->status;
    return LG_OK;
}
