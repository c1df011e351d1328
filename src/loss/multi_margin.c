/* multi_margin.c: multi_margin_loss and multilabel_margin_loss, the two
 * class hinges, each a fused primitive over rows on the fused-loss driver
 * (kernels in multi_margin_kernel.h) with its composite below, the oracle
 * that lg_ctx_set_fused(ctx, false) runs.
 *
 *   multi margin:      l_i = (w[y] / C) sum_{j != y, z_j > 0} z_j^p,  z_j = margin - x_y + x_j
 *   multilabel margin: l_i = (1 / C) sum_{j in P} sum_{k not in P, z > 0} z,  z = 1 - x_j + x_k
 * The class hinges keep a term only where it is strictly positive (a
 * `where` on z > 0 in the composites): the gradient is 0 at z = 0, and a
 * NaN term is dropped, as PyTorch's loops do. Gradient: each kept term
 * adds c dz to x_j (x_k) and takes it from x_y (x_j), c the row's upstream
 * times w[y] / C (1 / C), dz = p z^(p - 1).
 *
 * Fused because each row's terms are one loop over the classes, where the
 * composites are 9 to 12 ops (an N x C x C tensor for multilabel margin);
 * docs/performance.md has the measurements.
 */
#include "fused.h"
#include "loss.h"

#include <string.h>

/* What the kernels read. The public functions fill one on the stack (y the
 * caller's targets, what the composite reads); the driver's prepare moves
 * it to the step arena with the targets copied (the backward must not see
 * later changes) and multilabel's label lists resolved. */
typedef struct hinge_saved {
    int64_t C, p;
    double margin;
    const int64_t *y;   /* multi margin: [N] targets; multilabel: the [N, C] label lists */
    const int64_t *len; /* multilabel: each row's labels before its first -1 */
    const bool *lab;    /* multilabel: [N, C], whether class k is one of row i's labels */
} hinge_saved;

#define LGC_TEMPLATE "../loss/multi_margin_kernel.h"
#include "../core/instantiate.h"

/* Row i of multilabel's lists: its length (labels before the first -1),
 * and lab[k] whether class k is among them. */
static int64_t label_row(const int64_t *row, int64_t C, bool *lab)
{
    int64_t len = 0;
    while (len < C && row[len] != -1)
        len++;
    for (int64_t k = 0; k < C; k++)
        lab[k] = false;
    for (int64_t j = 0; j < len; j++)
        lab[row[j]] = true;
    return len;
}

static bool hinge_prepare(lg_ctx *ctx, lgL_fused *f, bool multilabel, const char *who)
{
    const hinge_saved *h0 = f->saved;
    int64_t N = f->rows, ny = multilabel ? N * h0->C : N;
    hinge_saved *h = lgC_salloc(ctx, sizeof *h, who);
    int64_t *y = h ? lgC_salloc(ctx, (size_t)(ny ? ny : 1) * sizeof *y, who) : NULL;
    if (!y)
        return false;
    *h = *h0;
    memcpy(y, h0->y, (size_t)ny * sizeof *y);
    h->y = y;
    if (multilabel) {
        int64_t *len = lgC_salloc(ctx, (size_t)(N ? N : 1) * sizeof *len, who);
        bool *lab = len ? lgC_salloc(ctx, (size_t)(ny ? ny : 1) * sizeof *lab, who) : NULL;
        if (!lab)
            return false;
        for (int64_t i = 0; i < N; i++)
            len[i] = label_row(y + i * h->C, h->C, lab + i * h->C);
        h->len = len, h->lab = lab;
    }
    f->saved = h;
    return true;
}

static bool mm_prepare(lg_ctx *ctx, lgL_fused *f)
{
    return hinge_prepare(ctx, f, false, "lg_multi_margin_loss");
}

static bool mlm_prepare(lg_ctx *ctx, lgL_fused *f)
{
    return hinge_prepare(ctx, f, true, "lg_multilabel_margin_loss");
}

/* The composites, the oracles. x as [N, C]; the loss per row back in the
 * unreduced shape, then reduced. The mask comes before the square (p = 2),
 * so a dropped NaN term sends no NaN into the gradient. */
static lg_tensor *mm_composite(lg_ctx *ctx, const lgL_fused *f)
{
    const hinge_saved *h = f->saved;
    lg_tensor *w = f->in[1];
    lg_dtype dt = (lg_dtype)f->in[0]->dtype;
    int64_t N = f->rows, C = h->C;
    lg_tensor *x = lg_reshape(ctx, f->in[0], 2, (int64_t[]){ N, C });
    lg_tensor *t = lg_tensor_from(ctx, LG_I64, h->y, 2, (int64_t[]){ N, 1 });
    lg_tensor *z = lg_add_scalar(ctx, lg_sub(ctx, x, lg_gather(ctx, x, 1, t)), h->margin);
    lg_tensor *other = lg_reshape(
        ctx, lg_add_scalar(ctx, lg_neg(ctx, lg_one_hot(ctx, t, C, dt)), 1), 2, (int64_t[]){ N, C });
    lg_tensor *keep = lg_mul(ctx, other, lg_gt(ctx, z, lg_scalar(ctx, dt, 0)));
    lg_tensor *hz = lg_where(ctx, keep, z, lg_scalar(ctx, dt, 0));
    if (h->p == 2)
        hz = lg_square(ctx, hz);
    lg_tensor *l = lg_mul_scalar(ctx, lg_sum(ctx, hz, 1, (int[]){ 1 }, false), 1.0 / (double)C);
    if (w)
        l = lg_mul(ctx, l, lg_index_select(ctx, w, 0, lg_reshape(ctx, t, 1, &N)));
    return lgL_composite_reduce(ctx, f, lg_reshape(ctx, l, f->none_ndim, f->none_shape));
}

/* pairs[i, jj, k] = 1 where label jj of row i (before its -1) meets a
 * class k that is not one of the row's labels; z[i, jj, k] = 1 - x_j + x_k
 * with j = row[jj] gathered (0 past the -1, masked out). */
static lg_tensor *mlm_composite(lg_ctx *ctx, const lgL_fused *f)
{
    static const char who[] = "lg_multilabel_margin_loss";
    const hinge_saved *h = f->saved;
    lg_dtype dt = (lg_dtype)f->in[0]->dtype;
    int64_t N = f->rows, C = h->C;
    lg_tensor *pairs = lg_zeros(ctx, dt, 3, (int64_t[]){ N, C, C });
    lg_tensor *idx = lg_zeros(ctx, LG_I64, 2, (int64_t[]){ N, C });
    bool *lab = lgC_salloc(ctx, (size_t)C * sizeof *lab, who);
    if (!pairs || !idx || !lab)
        return NULL;
    for (int64_t i = 0; i < N; i++) {
        const int64_t *row = h->y + i * C;
        int64_t len = label_row(row, C, lab);
        for (int64_t jj = 0; jj < len; jj++) {
            ((int64_t *)idx->data)[i * C + jj] = row[jj];
            for (int64_t k = 0; k < C; k++)
                if (!lab[k])
                    lgT_set(pairs, (i * C + jj) * C + k, 1);
        }
    }
    lg_tensor *x = lg_reshape(ctx, f->in[0], 2, (int64_t[]){ N, C });
    lg_tensor *xj = lg_reshape(ctx, lg_gather(ctx, x, 1, idx), 3, (int64_t[]){ N, C, 1 });
    lg_tensor *xk = lg_reshape(ctx, x, 3, (int64_t[]){ N, 1, C });
    lg_tensor *z = lg_add(ctx, lg_add_scalar(ctx, lg_neg(ctx, xj), 1), xk);
    lg_tensor *keep = lg_mul(ctx, pairs, lg_gt(ctx, z, lg_scalar(ctx, dt, 0)));
    lg_tensor *hz = lg_where(ctx, keep, z, lg_scalar(ctx, dt, 0));
    lg_tensor *l = lg_mul_scalar(ctx, lg_sum(ctx, hz, 2, (int[]){ 1, 2 }, false), 1.0 / (double)C);
    return lgL_composite_reduce(ctx, f, lg_reshape(ctx, l, f->none_ndim, f->none_shape));
}

/* Input 0 is on the tape; the weight (input 1, or NULL) is only read. */
static const lgL_fused_desc multi_margin_rows = {
    .op = LGA_OP_multi_margin_rows,
    .k = { { .row = mm_value_f32, .row_grad = mm_grad_f32 },
           { .row = mm_value_f64, .row_grad = mm_grad_f64 } },
    .sparse_grads = true,
    .composite = mm_composite,
    .prepare = mm_prepare,
};

static const lgL_fused_desc multilabel_margin_rows = {
    .op = LGA_OP_multilabel_margin_rows,
    .k = { { .row = mlm_value_f32, .row_grad = mlm_grad_f32 },
           { .row = mlm_value_f64, .row_grad = mlm_grad_f64 } },
    .sparse_grads = true,
    .composite = mlm_composite,
    .prepare = mlm_prepare,
};

/* N rows of C classes on the driver; NONE's shape is the unreduced loss's. */
static lg_tensor *hinge_rows(lg_ctx *ctx, const lgL_fused_desc *desc, lg_tensor *x, lg_tensor *w,
                             hinge_saved *h, int64_t N, lg_reduction r, const lg_tensor *shape_of,
                             int none_ndim, const char *who)
{
    lgL_fused f = lgL_fused_init(desc, 2, (lg_tensor *[]){ x, w }, r);
    f.ntape = 1;
    f.rows = N;
    f.width = h->C;
    f.saved = h;
    lgL_fused_none_shape(&f, shape_of, none_ndim);
    return lgL_fused_run(ctx, &f, who);
}

/* input [N, C], [C] or 0-d (one class, as PyTorch) against an int64
 * class-index target [N] or 0-d/[1]; gives N and C. */
static bool class_rows(lg_ctx *ctx, lg_tensor *x, lg_tensor *t, const char *who, int64_t *N,
                       int64_t *C)
{
    int xn = lg_tensor_ndim(x), tn = lg_tensor_ndim(t);
    const int64_t *xs = lg_tensor_shape(x), *ts = lg_tensor_shape(t);
    if (xn > 2 || (xn > 0 && xs[xn - 1] == 0)) {
        char a[160];
        lgT_shape_str(x, a, sizeof a);
        lgC_error(ctx, LG_ERR_SHAPE, "%s: input has shape %s, expected [N, C], [C] or 0-d, C > 0",
                  who, a);
        return false;
    }
    *C = xn ? xs[xn - 1] : 1;
    *N = xn == 2 ? xs[0] : 1;
    bool ok = xn == 2 ? (tn == 1 && ts[0] == *N) : (tn == 0 || (tn == 1 && ts[0] == 1));
    if (!ok) {
        char a[160], b[160];
        lgT_shape_str(x, a, sizeof a);
        lgT_shape_str(t, b, sizeof b);
        lgC_error(ctx, LG_ERR_SHAPE,
                  "%s: target has shape %s for input %s, expected [N] for [N, C] (0-d or [1] for "
                  "[C])",
                  who, b, a);
        return false;
    }
    for (int64_t i = 0; i < *N; i++) {
        int64_t y = ((const int64_t *)lg_tensor_data(t))[i];
        if (y < 0 || y >= *C) {
            lgC_error(ctx, LG_ERR_INDEX, "%s: target[%lld] = %lld, expected a class in [0, %lld)",
                      who, (long long)i, (long long)y, (long long)*C);
            return false;
        }
    }
    return true;
}

static lg_tensor *multi_margin_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                         const lg_multi_margin_opts *opts)
{
    static const char who[] = "lg_multi_margin_loss";
    lg_multi_margin_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_multi_margin_opts, opts, &o))
        return NULL;
    int64_t p = o.p;
    double margin = o.margin;
    lg_tensor *w = o.weight;
    if (!lgT_ok_float(ctx, input, who, "input") || !lgL_int(ctx, target, who, "target") ||
        !lgL_reduction(ctx, o.reduction, false, who))
        return NULL;
    if (p != 1 && p != 2)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: p = %lld, expected 1 or 2", who, (long long)p);
    int64_t N = 0, C = 0;
    if (!class_rows(ctx, input, target, who, &N, &C))
        return NULL;
    lg_dtype dt = lg_tensor_dtype(input);
    if (w) {
        if (!lgT_ok_float(ctx, w, who, "weight"))
            return NULL;
        if (lg_tensor_dtype(w) != dt || lg_tensor_ndim(w) != 1 || lg_tensor_shape(w)[0] != C) {
            char a[160];
            lgT_shape_str(w, a, sizeof a);
            return lgC_error(ctx, LG_ERR_SHAPE, "%s: weight is %s %s, expected [%lld] of %s", who,
                             lgT_dtype_name(lg_tensor_dtype(w)), a, (long long)C,
                             lgT_dtype_name(dt));
        }
    }
    hinge_saved h = { .C = C, .p = p, .margin = margin, .y = lg_tensor_data(target) };
    return hinge_rows(ctx, &multi_margin_rows, input, w, &h, N, o.reduction, target,
                      lg_tensor_ndim(target), who);
}

lg_tensor *lg_multi_margin_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                const lg_multi_margin_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_multi_margin_loss");
    return lgL_leave(ctx, outer, ctx ? multi_margin_loss_body(ctx, input, target, opts) : NULL);
}

static lg_tensor *multilabel_margin_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                              const lg_loss_opts *opts)
{
    static const char who[] = "lg_multilabel_margin_loss";
    lg_loss_opts o;
    if (!lgL_opts_loss(ctx, who, opts, &o))
        return NULL;
    if (!lgT_ok_float(ctx, input, who, "input") || !lgL_int(ctx, target, who, "target") ||
        !lgL_reduction(ctx, o.reduction, false, who))
        return NULL;
    /* one shape, [N, C] or [C]; unbatched (0-d is one class), a target of
     * C elements in at most 1 dim, as PyTorch ([1] and 0-d go together) */
    int xn = lg_tensor_ndim(input), tn = lg_tensor_ndim(target);
    int64_t C = xn ? lg_tensor_shape(input)[xn - 1] : 1,
            N = xn == 2 ? lg_tensor_shape(input)[0] : 1;
    bool fits = xn == 2 ? lgT_same_shape(input, target) : tn <= 1 && lg_tensor_numel(target) == C;
    if (xn > 2 || !fits || C == 0) {
        char a[160], b[160];
        lgT_shape_str(input, a, sizeof a);
        lgT_shape_str(target, b, sizeof b);
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: input %s and target %s, expected one shape, [N, C] or [C] with C > 0 "
                         "(or 0-d, one class)",
                         who, a, b);
    }
    const int64_t *y = lg_tensor_data(target);
    for (int64_t i = 0; i < N * C; i++) /* every entry, even after a row's first -1 */
        if (y[i] < -1 || y[i] >= C)
            return lgC_error(ctx, LG_ERR_INDEX,
                             "%s: target[%lld] = %lld, expected a class in [0, %lld) or -1", who,
                             (long long)i, (long long)y[i], (long long)C);
    hinge_saved h = { .C = C, .p = 1, .margin = 1, .y = y };
    return hinge_rows(ctx, &multilabel_margin_rows, input, NULL, &h, N, o.reduction, input, xn == 2,
                      who);
}

lg_tensor *lg_multilabel_margin_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                     const lg_loss_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_multilabel_margin_loss");
    return lgL_leave(ctx, outer,
                     ctx ? multilabel_margin_loss_body(ctx, input, target, opts) : NULL);
}
