/* margin.c: hinge_embedding_loss (the fused primitive of pointwise.c),
 * triplet_margin_loss (fused for p = 2 without swap or broadcasting:
 * triplet_rows.c), cosine_embedding_loss and
 * triplet_margin_with_distance_loss (composites).
 *
 *   hinge:   l = x where y == 1, max(0, margin - x) where y == -1
 *   triplet: l = max(0, margin + d(a, p) - d(a, n)),  d(u, v) = ||u - v + eps||_p
 *            (swap: d(a, n) <- min(d(a, n), d(p, n)))
 * Hinges use clamp, whose gradient passes at the bound: at the kink the
 * active branch's gradient flows, as PyTorch's clamp_min.
 */
#include "loss.h"

#include <math.h>
#include <string.h>

static const lg_hinge_opts hinge_defaults = { .defaults_tag = LG_OPTS_TAG, .margin = 1.0 };
static const lgC_optfield hinge_fields[] = {
    LGC_FIELD(lg_hinge_opts, margin, "1"),
};
static const lgC_opts_desc hinge_desc = LGC_DESC(lg_hinge_opts, hinge_defaults, hinge_fields);

lg_hinge_opts lg_hinge_opts_default(void)
{
    return hinge_defaults;
}

static lg_tensor *hinge_embedding_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                            const lg_hinge_opts *opts)
{
    static const char who[] = "lg_hinge_embedding_loss";
    lg_hinge_opts ov;
    if (!lgC_opts(ctx, who, &hinge_desc, opts, &ov))
        return NULL;
    const lg_hinge_opts *o = &ov;
    lg_reduction r = o->reduction;
    double margin = o->margin;
    if (!ctx || !lgL_float(ctx, input, who, "input") || !lgL_reduction(ctx, r, false, who))
        return NULL;
    /* The target only selects a branch: int64 labels are accepted as well. */
    if (target && lg_tensor_check(ctx, target) == LG_OK && lg_tensor_dtype(target) == LG_I64) {
        char a[160], b[160];
        lgL_shape_str(input, a, sizeof a);
        lgL_shape_str(target, b, sizeof b);
        if (strcmp(a, b))
            return lgC_error(ctx, LG_ERR_SHAPE,
                             "%s: input has shape %s but target has shape %s, expected the same",
                             who, a, b);
    } else if (!lgL_pair(ctx, input, target, who)) {
        return NULL;
    }
    int64_t n = lg_tensor_numel(target);
    lg_dtype dt = lg_tensor_dtype(target);
    bool bad = lgL_any_bad(ctx, target, 0, 0, true);
    for (int64_t i = 0; bad && i < n; i++) { /* the first offender, for the message */
        double v = lgL_at(target, i);
        if (v != 1 && v != -1)
            return lgC_error(ctx, LG_ERR_VALUE, "%s: target[%lld] = %g, expected 1 or -1", who,
                             (long long)i, v);
    }
    if (dt == LG_I64) { /* int64 labels: the same values in input's dtype */
        lg_tensor *y =
            lg_zeros(ctx, lg_tensor_dtype(input), lg_tensor_ndim(target), lg_tensor_shape(target));
        if (!y)
            return NULL;
        for (int64_t i = 0; i < n; i++)
            if (lg_tensor_dtype(y) == LG_F32)
                ((float *)lg_tensor_data(y))[i] = (float)lgL_at(target, i);
            else
                ((double *)lg_tensor_data(y))[i] = lgL_at(target, i);
        target = y;
    }
    return lgL_pointwise(ctx, LGL_PW_HINGE, input, target, margin, r, who);
}

lg_tensor *lg_hinge_embedding_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                   const lg_hinge_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_hinge_embedding_loss");
    lg_tensor *res = hinge_embedding_loss_body(ctx, input, target, opts);
    lgC_api_leave(ctx, outer);
    return res;
}

static const lg_triplet_opts triplet_defaults = {
    .defaults_tag = LG_OPTS_TAG, .margin = 1.0, .p = 2.0, .eps = 1e-6
};
static const lgC_optfield triplet_fields[] = {
    LGC_FIELD(lg_triplet_opts, margin, "1"),
    LGC_FIELD(lg_triplet_opts, p, "2"),
    LGC_FIELD(lg_triplet_opts, eps, "1e-6"),
};
static const lgC_opts_desc triplet_desc =
    LGC_DESC(lg_triplet_opts, triplet_defaults, triplet_fields);

lg_triplet_opts lg_triplet_opts_default(void)
{
    return triplet_defaults;
}

static lg_tensor *triplet_margin_loss_body(lg_ctx *ctx, lg_tensor *anchor, lg_tensor *positive,
                                           lg_tensor *negative, const lg_triplet_opts *opts)
{
    static const char who[] = "lg_triplet_margin_loss";
    lg_triplet_opts ov;
    if (!lgC_opts(ctx, who, &triplet_desc, opts, &ov))
        return NULL;
    const lg_triplet_opts *o = &ov;
    lg_reduction r = o->reduction;
    double margin = o->margin;
    double p = o->p;
    double eps = o->eps;
    if (!ctx || !lgL_float(ctx, anchor, who, "anchor") ||
        !lgL_float(ctx, positive, who, "positive") || !lgL_float(ctx, negative, who, "negative") ||
        !lgL_reduction(ctx, r, false, who))
        return NULL;
    int na = lg_tensor_ndim(anchor), np = lg_tensor_ndim(positive), nn = lg_tensor_ndim(negative);
    if (na != np || na != nn || na == 0)
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: anchor, positive and negative have %d, %d and %d dims, expected the "
                         "same number (at least 1)",
                         who, na, np, nn);
    lg_dtype dt = lg_tensor_dtype(anchor);
    if (lg_tensor_dtype(positive) != dt || lg_tensor_dtype(negative) != dt)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: anchor, positive and negative differ in dtype",
                         who);
    for (int d = 0; d < na; d++) {
        int64_t a = lg_tensor_shape(anchor)[d], b = lg_tensor_shape(positive)[d],
                c = lg_tensor_shape(negative)[d];
        int64_t m = a > b ? (a > c ? a : c) : (b > c ? b : c);
        bool last = d == na - 1;
        if ((last && (a != b || a != c)) || (a != m && a != 1) || (b != m && b != 1) ||
            (c != m && c != 1))
            return lgC_error(ctx, LG_ERR_SHAPE, "%s: sizes %lld, %lld and %lld at dim %d do not %s",
                             who, (long long)a, (long long)b, (long long)c, d,
                             last ? "match (the feature dim must be equal)" : "broadcast");
    }
    if (isnan(p) || isnan(eps))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: p and eps must be numbers", who);
    if (p == 2 && !(o->swap) && lgL_same_shape(anchor, positive) &&
        lgL_same_shape(anchor, negative)) /* the common case, fused (triplet_rows.c) */
        return lgL_reduce(ctx, lgL_triplet_rows(ctx, anchor, positive, negative, margin, eps, who),
                          r);
    lg_tensor *d_ap = lg_pairwise_distance(ctx, anchor, positive, p, eps, false);
    lg_tensor *d_an = lg_pairwise_distance(ctx, anchor, negative, p, eps, false);
    if (o->swap)
        d_an = lg_minimum(ctx, d_an, lg_pairwise_distance(ctx, positive, negative, p, eps, false));
    lg_tensor *l = lg_clamp(ctx, lg_add_scalar(ctx, lg_sub(ctx, d_ap, d_an), margin), 0, INFINITY);
    return lgL_reduce(ctx, l, r);
}

lg_tensor *lg_triplet_margin_loss(lg_ctx *ctx, lg_tensor *anchor, lg_tensor *positive,
                                  lg_tensor *negative, const lg_triplet_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_triplet_margin_loss");
    lg_tensor *res = triplet_margin_loss_body(ctx, anchor, positive, negative, opts);
    lgC_api_leave(ctx, outer);
    return res;
}

/* The target of a pair loss: [N] for [N, D] inputs (0-d for [D]), of
 * input's float dtype (or int64 when ints_ok). */
static bool pair_target(lg_ctx *ctx, lg_tensor *x1, lg_tensor *x2, lg_tensor *y, bool ints_ok,
                        const char *who)
{
    if (!lgL_float(ctx, x1, who, "input1") || !lgL_float(ctx, x2, who, "input2"))
        return false;
    if (!y) {
        lgC_error(ctx, LG_ERR_NULL, "%s: target is NULL", who);
        return false;
    }
    if (lg_tensor_check(ctx, y) != LG_OK)
        return false;
    lg_dtype dt = lg_tensor_dtype(x1);
    int n1 = lg_tensor_ndim(x1), n2 = lg_tensor_ndim(x2);
    const int64_t *s1 = lg_tensor_shape(x1), *s2 = lg_tensor_shape(x2);
    if (lg_tensor_dtype(x2) != dt ||
        (lg_tensor_dtype(y) != dt && !(ints_ok && lg_tensor_dtype(y) == LG_I64))) {
        lgC_error(ctx, LG_ERR_DTYPE, "%s: input1 is %s, input2 %s and target %s, expected %s", who,
                  lgL_dtype_name(dt), lgL_dtype_name(lg_tensor_dtype(x2)),
                  lgL_dtype_name(lg_tensor_dtype(y)),
                  ints_ok ? "one float dtype (int64 allowed for target)" : "one float dtype");
        return false;
    }
    int64_t N = n1 == 2 ? (s1[0] > s2[0] ? s1[0] : s2[0]) : 1;
    bool ok = n1 == n2 && n1 >= 1 && n1 <= 2 && s1[n1 - 1] == s2[n2 - 1] &&
              (n1 == 1 || ((s1[0] == N || s1[0] == 1) && (s2[0] == N || s2[0] == 1)));
    if (!ok) {
        char a[160], b[160];
        lgL_shape_str(x1, a, sizeof a);
        lgL_shape_str(x2, b, sizeof b);
        lgC_error(ctx, LG_ERR_SHAPE,
                  "%s: input1 %s and input2 %s, expected [N, D] or [D] with equal D (a batch of "
                  "1 broadcasts)",
                  who, a, b);
        return false;
    }
    int yn = lg_tensor_ndim(y);
    if (n1 == 1 ? yn != 0 : (yn != 1 || lg_tensor_shape(y)[0] != N)) {
        char a[160];
        lgL_shape_str(y, a, sizeof a);
        lgC_error(ctx, LG_ERR_SHAPE, "%s: target has shape %s, expected %s", who, a,
                  n1 == 1 ? "0-d for [D] inputs" : "[N] for [N, D] inputs");
        return false;
    }
    return true;
}

static lg_tensor *cosine_embedding_loss_body(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2,
                                             lg_tensor *target, const lg_margin_opts *opts)
{
    static const char who[] = "lg_cosine_embedding_loss";
    lg_margin_opts ov;
    if (!lgL_opts_margin(ctx, who, opts, &ov))
        return NULL;
    const lg_margin_opts *o = &ov;
    lg_reduction r = o->reduction;
    double margin = o->margin;
    if (!ctx || !pair_target(ctx, input1, input2, target, true, who) ||
        !lgL_reduction(ctx, r, false, who))
        return NULL;
    /* PyTorch's order of operations, 1e-12 in each squared norm */
    const int last[] = { -1 };
    lg_tensor *dot = lg_sum(ctx, lg_mul(ctx, input1, input2), 1, last, false);
    lg_tensor *m1 =
        lg_add_scalar(ctx, lg_sum(ctx, lg_mul(ctx, input1, input1), 1, last, false), 1e-12);
    lg_tensor *m2 =
        lg_add_scalar(ctx, lg_sum(ctx, lg_mul(ctx, input2, input2), 1, last, false), 1e-12);
    lg_tensor *cos = lg_div(ctx, dot, lg_sqrt(ctx, lg_mul(ctx, m1, m2)));
    lg_dtype dt = lg_tensor_dtype(input1), yt = lg_tensor_dtype(target);
    lg_tensor *zero = lg_scalar(ctx, dt, 0);
    lg_tensor *pos = lg_where(ctx, lg_eq(ctx, target, lg_scalar(ctx, yt, 1)),
                              lg_add_scalar(ctx, lg_neg(ctx, cos), 1), zero);
    lg_tensor *neg = lg_where(ctx, lg_eq(ctx, target, lg_scalar(ctx, yt, -1)),
                              lg_clamp(ctx, lg_add_scalar(ctx, cos, -margin), 0, INFINITY), zero);
    return lgL_reduce(ctx, lg_add(ctx, pos, neg), r);
}

lg_tensor *lg_cosine_embedding_loss(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2,
                                    lg_tensor *target, const lg_margin_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_cosine_embedding_loss");
    lg_tensor *res = cosine_embedding_loss_body(ctx, input1, input2, target, opts);
    lgC_api_leave(ctx, outer);
    return res;
}

static lg_tensor *default_distance(lg_ctx *ctx, lg_tensor *x1, lg_tensor *x2, void *user)
{
    (void)user;
    return lg_pairwise_distance(ctx, x1, x2, 2, 1e-6, false);
}

/* Calls the user's distance and checks what it returned. */
static lg_tensor *distance(lg_ctx *ctx, const lg_triplet_distance_opts *o, lg_tensor *x1,
                           lg_tensor *x2, lg_dtype dt, const char *who)
{
    lg_distance_fn fn = o->distance ? o->distance : default_distance;
    lg_tensor *d = fn(ctx, x1, x2, o->user);
    if (lg_ctx_status(ctx) != LG_OK)
        return NULL;
    if (!d)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: the distance function returned NULL without setting an error", who);
    if (lg_tensor_check(ctx, d) != LG_OK)
        return NULL;
    if (lg_tensor_dtype(d) != dt)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: the distance function returned %s, expected %s",
                         who, lgL_dtype_name(lg_tensor_dtype(d)), lgL_dtype_name(dt));
    return d;
}

static const lg_triplet_distance_opts triplet_distance_defaults = { .defaults_tag = LG_OPTS_TAG,
                                                                    .margin = 1.0 };
static const lgC_optfield triplet_distance_fields[] = {
    LGC_FIELD(lg_triplet_distance_opts, margin, "1"),
};
static const lgC_opts_desc triplet_distance_desc =
    LGC_DESC(lg_triplet_distance_opts, triplet_distance_defaults, triplet_distance_fields);

lg_triplet_distance_opts lg_triplet_distance_opts_default(void)
{
    return triplet_distance_defaults;
}

static lg_tensor *triplet_margin_with_distance_loss_body(lg_ctx *ctx, lg_tensor *anchor,
                                                         lg_tensor *positive, lg_tensor *negative,
                                                         const lg_triplet_distance_opts *opts)
{
    static const char who[] = "lg_triplet_margin_with_distance_loss";
    lg_triplet_distance_opts ov;
    if (!lgC_opts(ctx, who, &triplet_distance_desc, opts, &ov))
        return NULL;
    const lg_triplet_distance_opts *o = &ov;
    lg_reduction r = o->reduction;
    double margin = o->margin;
    if (!ctx || !lgL_float(ctx, anchor, who, "anchor") ||
        !lgL_float(ctx, positive, who, "positive") || !lgL_float(ctx, negative, who, "negative") ||
        !lgL_reduction(ctx, r, false, who))
        return NULL;
    lg_dtype dt = lg_tensor_dtype(anchor);
    if (lg_tensor_dtype(positive) != dt || lg_tensor_dtype(negative) != dt)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: anchor, positive and negative differ in dtype",
                         who);
    lg_tensor *d_ap = distance(ctx, o, anchor, positive, dt, who);
    lg_tensor *d_an = d_ap ? distance(ctx, o, anchor, negative, dt, who) : NULL;
    if (d_an && o->swap) {
        lg_tensor *d_pn = distance(ctx, o, positive, negative, dt, who);
        d_an = d_pn && lgL_same_shape(d_an, d_pn) ? lg_minimum(ctx, d_an, d_pn) : NULL;
    }
    if (!d_an)
        return lg_ctx_status(ctx) != LG_OK
                   ? NULL
                   : lgC_error(ctx, LG_ERR_SHAPE, "%s: the distances differ in shape", who);
    if (!lgL_same_shape(d_ap, d_an)) {
        char a[160], b[160];
        lgL_shape_str(d_ap, a, sizeof a);
        lgL_shape_str(d_an, b, sizeof b);
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: d(anchor, positive) has shape %s but d(anchor, negative) %s, "
                         "expected the same",
                         who, a, b);
    }
    lg_tensor *l = lg_clamp(ctx, lg_add_scalar(ctx, lg_sub(ctx, d_ap, d_an), margin), 0, INFINITY);
    return lgL_reduce(ctx, l, r);
}

lg_tensor *lg_triplet_margin_with_distance_loss(lg_ctx *ctx, lg_tensor *anchor, lg_tensor *positive,
                                                lg_tensor *negative,
                                                const lg_triplet_distance_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_triplet_margin_with_distance_loss");
    lg_tensor *res = triplet_margin_with_distance_loss_body(ctx, anchor, positive, negative, opts);
    lgC_api_leave(ctx, outer);
    return res;
}
