/* class_target.c: the checks and composite pieces of class-index targets
 * (see class_target.h), one copy for nll_loss and cross_entropy.
 */
#include "class_target.h"

bool lgL_class_common(lg_ctx *ctx, lg_tensor *x, lg_tensor *t, lg_reduction r, const char *who)
{
    if (!ctx || !lgT_ok_float(ctx, x, who, "input"))
        return false;
    if (!t) {
        lgC_error(ctx, LG_ERR_NULL, "%s: target is NULL", who);
        return false;
    }
    return lg_tensor_check(ctx, t) == LG_OK && lgL_reduction(ctx, r, false, who);
}

lgL_classes lgL_class_axes(const lg_tensor *x, const lg_tensor *t)
{
    int axis = x->ndim == 1 ? 0 : 1;
    return (lgL_classes){ axis, x->shape[axis], t->numel, (lg_dtype)x->dtype };
}

bool lgL_class_layout(lg_ctx *ctx, lg_tensor *x, lg_tensor *t, const char *who, lgL_classes *L)
{
    int xn = lg_tensor_ndim(x), tn = lg_tensor_ndim(t);
    const int64_t *xs = lg_tensor_shape(x), *ts = lg_tensor_shape(t);
    if (xn == 0) {
        lgC_error(ctx, LG_ERR_SHAPE, "%s: input is 0-d, expected [C], [N, C] or [N, C, d1, ...]",
                  who);
        return false;
    }
    *L = lgL_class_axes(x, t);
    bool ok = tn == xn - 1;
    for (int d = 0, k = 0; ok && d < xn; d++)
        if (d != L->class_axis)
            ok = xs[d] == ts[k++];
    if (!ok) {
        char a[160], b[160]; /* only here: formatting shapes costs more than the loss */
        lgT_shape_str(x, a, sizeof a);
        lgT_shape_str(t, b, sizeof b);
        lgC_error(ctx, LG_ERR_SHAPE,
                  "%s: input %s needs a target of shape %s without the class axis %d, got %s", who,
                  a, a, L->class_axis, b);
        return false;
    }
    return true;
}

bool lgL_class_weight(lg_ctx *ctx, lg_tensor *w, const lgL_classes *L, const char *who)
{
    if (!w)
        return true;
    if (!lgT_ok_float(ctx, w, who, "weight"))
        return false;
    if (lg_tensor_dtype(w) != L->dt) {
        lgC_error(ctx, LG_ERR_DTYPE, "%s: weight's dtype differs from input's", who);
        return false;
    }
    if (lg_tensor_ndim(w) != 1 || lg_tensor_shape(w)[0] != L->C) {
        char a[160];
        lgT_shape_str(w, a, sizeof a);
        lgC_error(ctx, LG_ERR_SHAPE, "%s: weight has shape %s, expected [%lld] (one per class)",
                  who, a, (long long)L->C);
        return false;
    }
    return true;
}

int64_t *lgL_class_targets(lg_ctx *ctx, lg_tensor *t, lg_tensor *w, int64_t ignore,
                           const lgL_classes *L, const char *who, double *denom)
{
    const int64_t *tv = lg_tensor_data(t);
    int64_t *y = lgC_salloc(ctx, (size_t)(L->npos ? L->npos : 1) * sizeof *y, who);
    if (!y)
        return NULL;
    double D = 0;
    for (int64_t i = 0; i < L->npos; i++) {
        if (tv[i] == ignore) {
            y[i] = -1;
            continue;
        }
        if (tv[i] < 0 || tv[i] >= L->C) {
            lgC_error(ctx, LG_ERR_INDEX,
                      "%s: target[%lld] = %lld is out of range for %lld classes (ignore_index is "
                      "%lld)",
                      who, (long long)i, (long long)tv[i], (long long)L->C, (long long)ignore);
            return NULL;
        }
        y[i] = tv[i];
        D += w ? lgT_get(w, tv[i]) : 1.0;
    }
    *denom = D;
    return y;
}

bool lgL_class_fused(lg_ctx *ctx, const lgL_fused_desc *desc, lg_tensor *x, lg_tensor *t,
                     lg_tensor *w, int64_t ignore, lg_reduction r, const char *who, lgL_classes *L,
                     lgL_fused *f)
{
    if (!lgL_int(ctx, t, who, "target") || !lgL_class_layout(ctx, x, t, who, L) ||
        !lgL_class_weight(ctx, w, L, who))
        return false;
    *f = lgL_fused_init(desc, 3, (lg_tensor *[]){ x, t, w }, r);
    f->ntape = 1; /* the target and the weight get no gradient */
    f->idx = lgL_class_targets(ctx, t, w, ignore, L, who, &f->denom);
    f->denom_set = true; /* D: negative weights make it negative */
    f->rows = L->npos;
    lgL_fused_none_shape(f, t, t->ndim);
    return f->idx != NULL;
}

bool lgL_class_picks(lg_ctx *ctx, lg_tensor *t, const int64_t *y, lg_tensor *w,
                     const lgL_classes *L, lgL_picks *P)
{
    int tn = lg_tensor_ndim(t);
    const int64_t *ts = lg_tensor_shape(t);
    int64_t ishape[LG_MAX_DIMS];
    for (int d = 0, k = 0; d < tn + 1; d++)
        ishape[d] = d == L->class_axis ? 1 : ts[k++];
    P->neg_w = lg_zeros(ctx, L->dt, tn, ts);
    P->ignored = lg_zeros(ctx, L->dt, tn, ts);
    P->index = lg_zeros(ctx, LG_I64, tn + 1, ishape);
    if (!P->neg_w || !P->ignored || !P->index)
        return false;
    int64_t *iv = lg_tensor_data(P->index);
    for (int64_t i = 0; i < L->npos; i++) {
        bool ign = y[i] < 0;
        double wv = ign ? 0.0 : (w ? lgT_get(w, y[i]) : 1.0);
        iv[i] = ign ? 0 : y[i]; /* the class axis has size 1: same flat order */
        lgT_set(P->neg_w, i, -wv);
        lgT_set(P->ignored, i, ign);
    }
    return true;
}

lg_tensor *lgL_class_picked(lg_ctx *ctx, lg_tensor *x, lg_tensor *t, const lgL_classes *L,
                            const lgL_picks *P)
{
    lg_tensor *g;
    /* No classes, every target ignored: on [N, 0] and [0] an empty sum (0,
     * on x's tape); a K-dimensional input stays the gather's error, as
     * PyTorch's. */
    if (L->C == 0 && lg_tensor_ndim(x) <= 2)
        g = lg_sum(ctx, x, 1, &L->class_axis, false);
    else
        g = lg_reshape(ctx, lg_gather(ctx, x, L->class_axis, P->index), lg_tensor_ndim(t),
                       lg_tensor_shape(t));
    return lg_where(ctx, P->ignored, lg_scalar(ctx, L->dt, 0), g);
}

lg_tensor *lgL_class_reduce(lg_ctx *ctx, lg_tensor *l, lg_reduction r, double denom)
{
    if (r == LG_REDUCTION_NONE)
        return l;
    lg_tensor *s = lg_sum(ctx, l, 0, NULL, false);
    return r == LG_REDUCTION_SUM ? s : lg_mul_scalar(ctx, s, 1.0 / denom);
}
