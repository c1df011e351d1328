/* cross_entropy.c: cross_entropy, with class-index or probability targets,
 * and poly1_loss (Poly-1: cross-entropy + epsilon (1 - p_target)).
 *
 *   class indices: with lsm = log_softmax(x, class axis)
 *       l_i = (1-eps) w[y_i] (-lsm[i, y_i]) + (eps/C) sum_c w[c] (-lsm[i, c])
 *   probabilities: q = (1-eps) p + eps/C,  l_i = -sum_c w[c] q[i, c] lsm[i, c]
 * MEAN: class indices divide each part by D = sum of w[y_i] over
 * non-ignored targets (NaN when D = 0 makes a part 0 / 0: an all-ignored
 * MEAN is NaN with a zero gradient, as PyTorch); probabilities divide by
 * the number of l_i, as PyTorch's numel / C (NaN for zero classes, where
 * that is 0 / 0).
 * Targets, layouts and their checks: class_target.h.
 *
 * Class indices on [N, C] and [C] are a fused row primitive on the
 * fused-loss driver (fused.h), kernels in cross_entropy_kernel.h: as a
 * composite the loss walks the N x C logits about ten times forward and
 * back; fused, each row is read once forward (max, then the exponentials
 * while the row is in cache, kept for the backward as PyTorch keeps
 * log_softmax's output) and the backward scales them. While training with
 * SUM or MEAN the forward turns each row's exponentials into its gradient
 * in place and the backward adopts it (or scales it once). Float32 uses
 * vmath.h's exp and log so the row loops vectorise. The composite below
 * is the oracle (lg_ctx_set_fused(ctx, false)) and serves K-dimensional
 * inputs; probability targets are a composite only.
 *
 * Per row, p = softmax(x_i), W = sum_c w_c, v = -w[y_i]:
 *   dl_i/dx_c = (1 - eps) v (1[c = y_i] - p_c) + (eps / C)(p_c W - w_c),
 * scaled by the row's upstream (0 where ignored).
 *
 * Poly-1 (Leng et al., 2022), class indices on [N, C] or [C], no ignored
 * targets: l_i = CE_i + e1 (1 - p[i, y_i]), CE_i as above (weight and
 * smoothing in it only, p unsmoothed), MEAN over the N rows (not over D).
 * Fused on the same row kernels, one sum per row, with -e1 p_y folded
 * into ka: dl_i/dx_c = CE's - e1 p_y (1[c = y_i] - p_c).
 *
 * Departure: with smoothing, MEAN and kept targets whose weights cancel
 * (D = 0 from negative weights) the loss is NaN in both, but the upstream
 * scale 1 / D = inf meets the terms in a different order, so the fused
 * gradient has inf where the composite's is NaN.
 */
#include "../tensor/vmath.h"
#include "class_target.h"
#include "fused.h"

#include <math.h>
#include <string.h>

/* The kernels' state (step arena, f->saved). */
typedef struct ce_saved {
    int64_t C;
    double wsum;    /* W: sum of the weights (C without) */
    double *inv_s;  /* per row: 1 / sum of its e, softmax = e inv_s */
    void *e;        /* exp(x - row max), N x C of x's dtype; the eager gradient holds it instead */
    double *part_b; /* per block: the sum of its rows' b (the smoothing part) */
} ce_saved;

static inline double exp_d(double x)
{
    return exp(x);
}
static inline double log_d(double x)
{
    return log(x);
}

#define T float
#define EXP lgV_expf
#define LOG lgV_logf
#define CLONES LGC_VECTOR_CLONES
#define FN(name) name##_f
#include "cross_entropy_kernel.h"
#undef CLONES
#undef FN
/* Rows of fewer than NARROW classes (a 10-class softmax) never reach the
 * AVX-512 clone's 16-lane loop and would run its scalar remainder: they
 * get clones without AVX-512. */
enum { NARROW = 16 };
#define CLONES LGC_VECTOR_CLONES_NARROW
#define FN(name) name##_fn
#include "cross_entropy_kernel.h"
#undef T
#undef EXP
#undef LOG
#undef CLONES
#undef FN

#define T double
#define EXP exp_d
#define LOG log_d
#define CLONES LGC_VECTOR_CLONES
#define FN(name) name##_d
#include "cross_entropy_kernel.h"
#undef T
#undef EXP
#undef LOG
#undef CLONES
#undef FN

static double ce_forward_f32(const lgL_fused *f, int64_t lo, int64_t hi, void *l, void *gx,
                             double gscale)
{
    const ce_saved *sv = f->saved;
    return (sv->C < NARROW ? ce_forward_fn : ce_forward_f)(f, lo, hi, l, gx, gscale);
}

static void ce_backward_f32(const lgL_fused *f, int64_t lo, int64_t hi, const void *up,
                            double scale, void *const *d)
{
    const ce_saved *sv = f->saved;
    (sv->C < NARROW ? ce_backward_fn : ce_backward_f)(f, lo, hi, up, scale, d);
}

static double poly1_forward_f32(const lgL_fused *f, int64_t lo, int64_t hi, void *l, void *gx,
                                double gscale)
{
    const ce_saved *sv = f->saved;
    return (sv->C < NARROW ? poly1_forward_fn : poly1_forward_f)(f, lo, hi, l, gx, gscale);
}

static void poly1_backward_f32(const lgL_fused *f, int64_t lo, int64_t hi, const void *up,
                               double scale, void *const *d)
{
    const ce_saved *sv = f->saved;
    (sv->C < NARROW ? poly1_backward_fn : poly1_backward_f)(f, lo, hi, up, scale, d);
}

/* The state: W, 1 / s per row, and e's buffer unless the eager gradient
 * holds it (part_b: cross_entropy's smoothing sums only). */
static bool saved_prepare(lg_ctx *ctx, lgL_fused *f, const char *who)
{
    lg_tensor *x = f->in[0], *w = f->in[2];
    int64_t C = x->shape[x->ndim - 1], N = f->rows;
    ce_saved *sv = lgC_salloc(ctx, sizeof *sv, who);
    if (!sv)
        return false;
    sv->C = C;
    sv->part_b = NULL;
    sv->wsum = (double)C;
    if (w) {
        sv->wsum = 0;
        for (int64_t c = 0; c < C; c++)
            sv->wsum += lgT_get(w, c);
    }
    sv->inv_s = lgC_salloc(ctx, (size_t)(N ? N : 1) * sizeof *sv->inv_s, who);
    sv->e = f->gx
                ? NULL
                : lgC_salloc(ctx, (size_t)(N * C > 0 ? N * C : 1) * lgT_dtype_size(x->dtype), who);
    f->saved = sv;
    return sv->inv_s && (f->gx || sv->e);
}

static bool ce_prepare(lg_ctx *ctx, lgL_fused *f)
{
    static const char who[] = "lg_cross_entropy";
    if (!saved_prepare(ctx, f, who))
        return false;
    ce_saved *sv = f->saved;
    int64_t nb = f->rows > 0 ? (f->rows + f->block - 1) / f->block : 1;
    sv->part_b = lgC_salloc(ctx, (size_t)nb * sizeof *sv->part_b, who);
    return sv->part_b;
}

static bool poly1_prepare(lg_ctx *ctx, lgL_fused *f)
{
    return saved_prepare(ctx, f, "lg_poly1_loss");
}

/* SUM or MEAN: (1 - eps) A + (eps / C) B, each part reduced on its own as
 * PyTorch's (so MEAN over D = 0 is NaN, not inf, where A is 0 / 0). */
static double ce_total(const lgL_fused *f, double sa)
{
    const ce_saved *sv = f->saved;
    double eps = f->a[0], sb = 0;
    int64_t nb = f->rows > 0 ? (f->rows + f->block - 1) / f->block : 0;
    for (int64_t b = 0; b < nb; b++)
        sb += sv->part_b[b];
    if (f->r == LG_REDUCTION_MEAN)
        sa /= f->denom, sb /= f->denom; /* 0/0 is NaN */
    return eps > 0 ? (1 - eps) * sa + eps / (double)sv->C * sb : sa;
}

/* Reshapes weight [C] to broadcast along the class axis of an ndim tensor. */
static lg_tensor *class_weight(lg_ctx *ctx, lg_tensor *w, const lgL_classes *L, int ndim)
{
    int64_t shape[LG_MAX_DIMS];
    for (int d = 0; d < ndim; d++)
        shape[d] = d == L->class_axis ? L->C : 1;
    return lg_reshape(ctx, w, ndim, shape);
}

/* The composite with class indices, for any layout (f: the call as the
 * fused primitive gets it). */
static lg_tensor *ce_composite(lg_ctx *ctx, const lgL_fused *f)
{
    lg_tensor *x = f->in[0], *t = f->in[1], *w = f->in[2];
    double eps = f->a[0];
    lgL_classes L = lgL_class_axes(x, t);
    lgL_picks P;
    if (!lgL_class_picks(ctx, t, f->idx, w, &L, &P))
        return NULL;
    lg_tensor *lsm = lg_log_softmax(ctx, x, L.class_axis);
    lg_tensor *l = lg_mul(ctx, lgL_class_picked(ctx, lsm, t, &L, &P), P.neg_w);
    if (eps == 0)
        return lgL_class_reduce(ctx, l, f->r, f->denom);
    lg_tensor *terms = w ? lg_mul(ctx, lsm, class_weight(ctx, w, &L, x->ndim)) : lsm;
    lg_tensor *smooth = lg_neg(ctx, lg_sum(ctx, terms, 1, &L.class_axis, false));
    smooth = lg_where(ctx, P.ignored, lg_scalar(ctx, L.dt, 0), smooth);
    /* Each part reduced on its own, as PyTorch: a zero MEAN denominator
     * makes the whole loss NaN, not inf. */
    return lg_add(
        ctx, lg_mul_scalar(ctx, lgL_class_reduce(ctx, l, f->r, f->denom), 1 - eps),
        lg_mul_scalar(ctx, lgL_class_reduce(ctx, smooth, f->r, f->denom), eps / (double)L.C));
}

static const lgL_fused_desc ce_fused = {
    .op = LGA_OP_cross_entropy_rows,
    .k = { { ce_forward_f32, ce_backward_f32 }, { ce_forward_d, ce_backward_d } },
    .eager = true,
    .composite = ce_composite,
    .prepare = ce_prepare,
    .total = ce_total,
};

static lg_tensor *ce_probabilities(lg_ctx *ctx, lg_tensor *x, lg_tensor *p, lg_tensor *w,
                                   double eps, lg_reduction r, const lgL_classes *L)
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

static lg_tensor *probabilities_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                     const lg_ce_opts *o, const char *who)
{
    if (!lgL_pair(ctx, input, target, who))
        return NULL;
    if (o->ignore_index >= 0)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: ignore_index = %lld is not supported with probability targets "
                         "(it must be negative)",
                         who, (long long)o->ignore_index);
    lgL_classes L = lgL_class_axes(input, target);
    if (!lgL_class_weight(ctx, o->weight, &L, who))
        return NULL;
    return ce_probabilities(ctx, input, target, o->weight, o->label_smoothing, o->reduction, &L);
}

static lg_tensor *cross_entropy_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                     const lg_ce_opts *opts)
{
    static const char who[] = "lg_cross_entropy";
    lg_ce_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_ce_opts, opts, &o))
        return NULL;
    double eps = o.label_smoothing;
    if (!lgL_class_common(ctx, input, target, o.reduction, who))
        return NULL;
    if (!(eps >= 0 && eps <= 1))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: label_smoothing = %g, expected 0 <= eps <= 1", who,
                         eps);
    int xn = lg_tensor_ndim(input);
    if (lg_tensor_ndim(target) == xn && xn > 0 &&
        !memcmp(lg_tensor_shape(target), lg_tensor_shape(input), (size_t)xn * sizeof(int64_t)))
        return probabilities_body(ctx, input, target, &o, who);
    lgL_classes L;
    lgL_fused f;
    if (!lgL_class_fused(ctx, &ce_fused, input, target, o.weight, o.ignore_index, o.reduction, who,
                         &L, &f))
        return NULL;
    f.width = L.C;
    f.a[0] = eps;
    if (xn <= 2) /* rows of classes: the fused primitive */
        return lgL_fused_run(ctx, &f, who);
    return ce_composite(ctx, &f);
}

lg_tensor *lg_cross_entropy(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                            const lg_ce_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_cross_entropy");
    return lgL_leave(ctx, outer, ctx ? cross_entropy_body(ctx, input, target, opts) : NULL);
}

/* Poly-1's composite on [N, C] or [C]: CE unreduced (ce_composite under
 * NONE) + e1 (1 - softmax gathered at the target), reduced over the rows. */
static lg_tensor *poly1_composite(lg_ctx *ctx, const lgL_fused *f)
{
    lg_tensor *x = f->in[0], *t = f->in[1];
    lgL_classes L = lgL_class_axes(x, t);
    lgL_picks P;
    if (!lgL_class_picks(ctx, t, f->idx, NULL, &L, &P))
        return NULL;
    lgL_fused ce = *f;
    ce.r = LG_REDUCTION_NONE;
    lg_tensor *l = ce_composite(ctx, &ce);
    lg_tensor *pt = lgL_class_picked(ctx, lg_softmax(ctx, x, L.class_axis), t, &L, &P);
    lg_tensor *miss = lg_mul_scalar(ctx, lg_add_scalar(ctx, lg_neg(ctx, pt), 1), f->a[1]);
    return lgL_class_reduce(ctx, lg_add(ctx, l, miss), f->r, f->denom);
}

static const lgL_fused_desc poly1_fused = {
    .op = LGA_OP_poly1_rows,
    .k = { { poly1_forward_f32, poly1_backward_f32 }, { poly1_forward_d, poly1_backward_d } },
    .eager = true,
    .composite = poly1_composite,
    .prepare = poly1_prepare,
};

static lg_tensor *poly1_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                  const lg_poly1_opts *opts)
{
    static const char who[] = "lg_poly1_loss";
    lg_poly1_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_poly1_opts, opts, &o) ||
        !lgL_class_common(ctx, input, target, o.reduction, who))
        return NULL;
    double eps = o.label_smoothing;
    if (!isfinite(o.epsilon))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: epsilon = %g, expected a finite value", who,
                         o.epsilon);
    if (!(eps >= 0 && eps <= 1))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: label_smoothing = %g, expected 0 <= eps <= 1", who,
                         eps);
    if (lg_tensor_ndim(input) > 2) {
        char a[160];
        lgT_shape_str(input, a, sizeof a);
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: input has shape %s, expected [N, C] or [C]", who,
                         a);
    }
    lgL_classes L;
    if (!lgL_int(ctx, target, who, "target") || !lgL_class_layout(ctx, input, target, who, &L) ||
        !lgL_class_weight(ctx, o.weight, &L, who))
        return NULL;
    const int64_t *y = lg_tensor_data(target);
    for (int64_t i = 0; i < L.npos; i++)
        if (y[i] < 0 || y[i] >= L.C)
            return lgC_error(ctx, LG_ERR_INDEX,
                             "%s: target[%lld] = %lld is out of range for %lld classes (there "
                             "is no ignore_index)",
                             who, (long long)i, (long long)y[i], (long long)L.C);
    lgL_fused f =
        lgL_fused_init(&poly1_fused, 3, (lg_tensor *[]){ input, target, o.weight }, o.reduction);
    f.ntape = 1; /* the target and the weight get no gradient */
    f.idx = y;
    f.rows = L.npos;
    f.denom = (double)L.npos; /* MEAN over the rows, weighted or not */
    f.width = L.C;
    f.a[0] = eps;
    f.a[1] = o.epsilon;
    lgL_fused_none_shape(&f, target, target->ndim);
    return lgL_fused_run(ctx, &f, who);
}

lg_tensor *lg_poly1_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                         const lg_poly1_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_poly1_loss");
    return lgL_leave(ctx, outer, ctx ? poly1_loss_body(ctx, input, target, opts) : NULL);
}
