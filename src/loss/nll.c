/* nll.c: nll_loss and cross_entropy.
 *
 *   nll:  l_i = -w[y_i] x[i, y_i]   (0 for ignored targets)
 *   ce, class indices: with lsm = log_softmax(x, class axis)
 *         l_i = (1-eps) w[y_i] (-lsm[i, y_i]) + (eps/C) sum_c w[c] (-lsm[i, c])
 *   ce, probabilities: q = (1-eps) p + eps/C,  l_i = -sum_c w[c] q[i, c] lsm[i, c]
 * MEAN: class indices divide by D = sum of w[y_i] over non-ignored targets
 * (NaN when D = 0); probabilities divide by the number of l_i, as PyTorch's
 * numel / C (NaN for zero classes, where that is 0 / 0).
 *
 * Layouts: [N, C] with target [N]; [N, C, d1..dk] with [N, d1..dk]; [C]
 * with a 0-d target (class axis 0). Cross-entropy with class indices on
 * [N, C] and [C] is the fused primitive of ce_rows.c; the composite below
 * serves the other layouts and is its oracle in the tests. Ignored positions are cut out with
 * `where` before any product, so inf or NaN in an ignored row never
 * reaches the loss or the gradient; an all-ignored MEAN is NaN with a zero
 * gradient, as PyTorch.
 */
#include "loss.h"

#include <math.h>
#include <string.h>

typedef struct layout {
    int class_axis;
    int64_t C, npos; /* classes; number of target positions */
    lg_dtype dt;
} layout;

/* Checks input against an int64 class-index target. */
static bool index_layout(lg_ctx *ctx, lg_tensor *x, lg_tensor *t, const char *who, layout *L)
{
    int xn = lg_tensor_ndim(x), tn = lg_tensor_ndim(t);
    const int64_t *xs = lg_tensor_shape(x), *ts = lg_tensor_shape(t);
    char a[160], b[160];
    lgT_shape_str(x, a, sizeof a);
    lgT_shape_str(t, b, sizeof b);
    if (xn == 0) {
        lgC_error(ctx, LG_ERR_SHAPE, "%s: input is 0-d, expected [C], [N, C] or [N, C, d1, ...]",
                  who);
        return false;
    }
    L->class_axis = xn == 1 ? 0 : 1;
    L->C = xs[L->class_axis];
    L->dt = lg_tensor_dtype(x);
    bool ok = tn == xn - 1;
    for (int d = 0, k = 0; ok && d < xn; d++)
        if (d != L->class_axis)
            ok = xs[d] == ts[k++];
    if (!ok) {
        lgC_error(ctx, LG_ERR_SHAPE,
                  "%s: input %s needs a target of shape %s without the class axis %d, got %s", who,
                  a, a, L->class_axis, b);
        return false;
    }
    L->npos = lg_tensor_numel(t);
    return true;
}

static bool check_weight(lg_ctx *ctx, lg_tensor *w, const layout *L, const char *who)
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

/* The pieces of an index-target loss: per-position -w[y] (0 where
 * ignored), the ignore mask, the safe gather index, and D. */
typedef struct picks {
    lg_tensor *neg_w;   /* target's shape, input dtype */
    lg_tensor *ignored; /* target's shape, input dtype, 1 where ignored */
    lg_tensor *index;   /* int64, input's ndim, size 1 on the class axis */
    double denom;
} picks;

static bool make_picks(lg_ctx *ctx, lg_tensor *t, lg_tensor *w, int64_t ignore, const layout *L,
                       const char *who, picks *P)
{
    const int64_t *tv = lg_tensor_data(t);
    for (int64_t i = 0; i < L->npos; i++)
        if (tv[i] != ignore && (tv[i] < 0 || tv[i] >= L->C)) {
            lgC_error(ctx, LG_ERR_INDEX,
                      "%s: target[%lld] = %lld is out of range for %lld classes (ignore_index is "
                      "%lld)",
                      who, (long long)i, (long long)tv[i], (long long)L->C, (long long)ignore);
            return false;
        }
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
    double denom = 0;
    for (int64_t i = 0; i < L->npos; i++) {
        bool ign = tv[i] == ignore;
        double wv = ign ? 0.0 : (w ? lgT_get(w, tv[i]) : 1.0);
        denom += wv;
        iv[i] = ign ? 0 : tv[i]; /* the class axis has size 1: same flat order */
        if (L->dt == LG_F32) {
            ((float *)lg_tensor_data(P->neg_w))[i] = (float)-wv;
            ((float *)lg_tensor_data(P->ignored))[i] = ign;
        } else {
            ((double *)lg_tensor_data(P->neg_w))[i] = -wv;
            ((double *)lg_tensor_data(P->ignored))[i] = ign;
        }
    }
    P->denom = denom;
    return true;
}

/* x[i, y_i] at each target position, 0 where ignored. */
static lg_tensor *picked(lg_ctx *ctx, lg_tensor *x, lg_tensor *t, const layout *L, const picks *P)
{
    lg_tensor *g = lg_gather(ctx, x, L->class_axis, P->index);
    g = lg_reshape(ctx, g, lg_tensor_ndim(t), lg_tensor_shape(t));
    return lg_where(ctx, P->ignored, lg_scalar(ctx, L->dt, 0), g);
}

/* Reduction of per-position losses with the weighted-mean denominator. */
static lg_tensor *reduce_weighted(lg_ctx *ctx, lg_tensor *l, lg_reduction r, double denom)
{
    if (r == LG_REDUCTION_NONE)
        return l;
    lg_tensor *s = lg_sum(ctx, l, 0, NULL, false);
    return r == LG_REDUCTION_SUM ? s : lg_mul_scalar(ctx, s, 1.0 / denom);
}

static bool common_checks(lg_ctx *ctx, lg_tensor *x, lg_tensor *t, lg_reduction r, const char *who)
{
    if (!ctx || !lgT_ok_float(ctx, x, who, "input"))
        return false;
    if (!t) {
        lgC_error(ctx, LG_ERR_NULL, "%s: target is NULL", who);
        return false;
    }
    return lg_tensor_check(ctx, t) == LG_OK && lgL_reduction(ctx, r, false, who);
}

/* [N, C] or [C]: targets checked and mapped (-1 where ignored), D summed,
 * then the fused rows (cross-entropy when logits, else nll). */
static lg_tensor *fused_rows(lg_ctx *ctx, lg_tensor *x, lg_tensor *t, lg_tensor *w, int64_t ignore,
                             double eps, lg_reduction r, const layout *L, const char *who,
                             bool logits)
{
    const int64_t *tv = lg_tensor_data(t);
    int64_t *y = lgC_salloc(ctx, (size_t)(L->npos ? L->npos : 1) * sizeof *y, who);
    if (!y)
        return NULL;
    double denom = 0;
    for (int64_t i = 0; i < L->npos; i++) {
        if (tv[i] == ignore) {
            y[i] = -1;
            continue;
        }
        if (tv[i] < 0 || tv[i] >= L->C)
            return lgC_error(ctx, LG_ERR_INDEX,
                             "%s: target[%lld] = %lld is out of range for %lld classes "
                             "(ignore_index is %lld)",
                             who, (long long)i, (long long)tv[i], (long long)L->C,
                             (long long)ignore);
        y[i] = tv[i];
        denom += (w ? lgT_get(w, tv[i]) : 1.0);
    }
    return logits ? lgL_ce_rows(ctx, x, y, w, eps, denom, r, who)
                  : lgL_nll_rows(ctx, x, y, w, denom, r, who);
}

static const lg_nll_opts nll_defaults = { .defaults_tag = LG_OPTS_TAG, .ignore_index = -100 };
static const lgC_optfield nll_fields[] = {
    LGC_FIELD(lg_nll_opts, ignore_index, "-100"),
};
static const lgC_opts_desc nll_desc = LGC_DESC(lg_nll_opts, nll_defaults, nll_fields);

lg_nll_opts lg_nll_opts_default(void)
{
    return nll_defaults;
}

static lg_tensor *nll_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                const lg_nll_opts *opts)
{
    static const char who[] = "lg_nll_loss";
    lg_nll_opts ov;
    if (!lgC_opts(ctx, who, &nll_desc, opts, &ov))
        return NULL;
    const lg_nll_opts *o = &ov;
    lg_reduction r = o->reduction;
    lg_tensor *w = o->weight;
    int64_t ignore = o->ignore_index;
    layout L;
    picks P;
    if (!common_checks(ctx, input, target, r, who) || !lgL_int(ctx, target, who, "target") ||
        !index_layout(ctx, input, target, who, &L) || !check_weight(ctx, w, &L, who))
        return NULL;
    if (lg_tensor_ndim(input) <= 2) /* rows of classes: the fused primitive of ce_rows.c */
        return fused_rows(ctx, input, target, w, ignore, 0, r, &L, who, false);
    if (!make_picks(ctx, target, w, ignore, &L, who, &P))
        return NULL;
    lg_tensor *l = lg_mul(ctx, picked(ctx, input, target, &L, &P), P.neg_w);
    return reduce_weighted(ctx, l, r, P.denom);
}

lg_tensor *lg_nll_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_nll_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_nll_loss");
    lg_tensor *res = nll_loss_body(ctx, input, target, opts);
    lgC_api_leave(ctx, outer);
    return res;
}

/* Reshapes weight [C] to broadcast along the class axis of an ndim tensor. */
static lg_tensor *class_weight(lg_ctx *ctx, lg_tensor *w, const layout *L, int ndim)
{
    int64_t shape[LG_MAX_DIMS];
    for (int d = 0; d < ndim; d++)
        shape[d] = d == L->class_axis ? L->C : 1;
    return lg_reshape(ctx, w, ndim, shape);
}

static lg_tensor *ce_probabilities(lg_ctx *ctx, lg_tensor *x, lg_tensor *p, lg_tensor *w,
                                   double eps, lg_reduction r, const layout *L)
{
    int nd = lg_tensor_ndim(x);
    lg_tensor *lsm = lg_log_softmax(ctx, x, L->class_axis);
    lg_tensor *q =
        eps == 0 ? p : lg_add_scalar(ctx, lg_mul_scalar(ctx, p, 1 - eps), eps / (double)L->C);
    lg_tensor *terms = lg_mul(ctx, lsm, q);
    if (w)
        terms = lg_mul(ctx, terms, class_weight(ctx, w, L, nd));
    lg_tensor *l = lg_neg(ctx, lg_sum(ctx, terms, 1, &L->class_axis, false));
    if (r == LG_REDUCTION_MEAN && L->C == 0) /* PyTorch's MEAN divides by numel / C = 0 / 0 */
        return lg_mul_scalar(ctx, lgL_reduce(ctx, l, LG_REDUCTION_SUM), NAN);
    return lgL_reduce(ctx, l, r);
}

static const lg_ce_opts ce_defaults = { .defaults_tag = LG_OPTS_TAG, .ignore_index = -100 };
static const lgC_optfield ce_fields[] = {
    LGC_FIELD(lg_ce_opts, ignore_index, "-100"),
};
static const lgC_opts_desc ce_desc = LGC_DESC(lg_ce_opts, ce_defaults, ce_fields);

lg_ce_opts lg_ce_opts_default(void)
{
    return ce_defaults;
}

static lg_tensor *cross_entropy_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                     const lg_ce_opts *opts)
{
    static const char who[] = "lg_cross_entropy";
    lg_ce_opts ov;
    if (!lgC_opts(ctx, who, &ce_desc, opts, &ov))
        return NULL;
    const lg_ce_opts *o = &ov;
    lg_reduction r = o->reduction;
    lg_tensor *w = o->weight;
    int64_t ignore = o->ignore_index;
    double eps = o->label_smoothing;
    if (!common_checks(ctx, input, target, r, who))
        return NULL;
    if (!(eps >= 0 && eps <= 1))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: label_smoothing = %g, expected 0 <= eps <= 1", who,
                         eps);
    layout L;
    int xn = lg_tensor_ndim(input);
    bool probs =
        lg_tensor_ndim(target) == xn && xn > 0 &&
        !memcmp(lg_tensor_shape(target), lg_tensor_shape(input), (size_t)xn * sizeof(int64_t));
    if (probs) {
        if (!lgL_pair(ctx, input, target, who))
            return NULL;
        if (ignore >= 0)
            return lgC_error(ctx, LG_ERR_VALUE,
                             "%s: ignore_index = %lld is not supported with probability targets "
                             "(it must be negative)",
                             who, (long long)ignore);
        L.class_axis = xn == 1 ? 0 : 1;
        L.C = lg_tensor_shape(input)[L.class_axis];
        L.dt = lg_tensor_dtype(input);
        if (!check_weight(ctx, w, &L, who))
            return NULL;
        return ce_probabilities(ctx, input, target, w, eps, r, &L);
    }
    picks P;
    if (!lgL_int(ctx, target, who, "target") || !index_layout(ctx, input, target, who, &L) ||
        !check_weight(ctx, w, &L, who))
        return NULL;
    if (xn <= 2) /* rows of classes: the fused primitive of ce_rows.c */
        return fused_rows(ctx, input, target, w, ignore, eps, r, &L, who, true);
    if (!make_picks(ctx, target, w, ignore, &L, who, &P))
        return NULL;
    lg_tensor *lsm = lg_log_softmax(ctx, input, L.class_axis);
    lg_tensor *l = lg_mul(ctx, picked(ctx, lsm, target, &L, &P), P.neg_w);
    if (eps == 0)
        return reduce_weighted(ctx, l, r, P.denom);
    lg_tensor *terms = w ? lg_mul(ctx, lsm, class_weight(ctx, w, &L, xn)) : lsm;
    lg_tensor *smooth = lg_neg(ctx, lg_sum(ctx, terms, 1, &L.class_axis, false));
    smooth = lg_where(ctx, P.ignored, lg_scalar(ctx, L.dt, 0), smooth);
    /* Each part reduced on its own, as PyTorch: a zero MEAN denominator
     * makes the whole loss NaN, not inf. */
    return lg_add(ctx, lg_mul_scalar(ctx, reduce_weighted(ctx, l, r, P.denom), 1 - eps),
                  lg_mul_scalar(ctx, reduce_weighted(ctx, smooth, r, P.denom), eps / (double)L.C));
}

lg_tensor *lg_cross_entropy(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                            const lg_ce_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_cross_entropy");
    lg_tensor *res = cross_entropy_body(ctx, input, target, opts);
    lgC_api_leave(ctx, outer);
    return res;
}
