/* multi_margin.c: multi_margin_loss and multilabel_margin_loss, the two
 * class hinges, each a fused primitive over rows (below) with its
 * composite.
 *
 *   multi margin:     (1/C) sum_{j != y} w[y] max(0, margin - x_y + x_j)^p
 *   multilabel margin:(1/C) sum_{j in P} sum_{k not in P} max(0, 1 - x_j + x_k)
 * The class hinges keep a term only where it is strictly positive (a
 * `where` on z > 0): the gradient is 0 at z = 0, and a NaN term is
 * dropped, as PyTorch's loops do.
 */
#include "fused.h"
#include "loss.h"

#include <math.h>
#include <string.h>

/* the fused class hinges below, and what their backward needs */
typedef struct hinge_rows {
    int64_t N, C, p;
    double margin;
    const int64_t *y; /* multi margin: targets; multilabel: the [N, C] label lists */
    lg_tensor *w;
    lg_reduction r;
} hinge_rows;

static lg_tensor *hinge_rows_fw(lg_ctx *ctx, int op, lg_tensor *x, const hinge_rows *h0, int ond,
                                const int64_t *oshape, const char *who);

/* input [N, C], [C] or 0-d (one class, as PyTorch) against an int64
 * class-index target [N] or 0-d/[1]; gives C and the input as [N, C]. */
static lg_tensor *class_rows(lg_ctx *ctx, lg_tensor *x, lg_tensor *t, const char *who, int64_t *C)
{
    int xn = lg_tensor_ndim(x), tn = lg_tensor_ndim(t);
    const int64_t *xs = lg_tensor_shape(x), *ts = lg_tensor_shape(t);
    if (xn > 2 || (xn > 0 && xs[xn - 1] == 0)) {
        char a[160];
        lgT_shape_str(x, a, sizeof a);
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: input has shape %s, expected [N, C], [C] or 0-d, C > 0", who, a);
    }
    *C = xn ? xs[xn - 1] : 1;
    int64_t N = xn == 2 ? xs[0] : 1;
    bool ok = xn == 2 ? (tn == 1 && ts[0] == N) : (tn == 0 || (tn == 1 && ts[0] == 1));
    if (!ok) {
        char a[160], b[160];
        lgT_shape_str(x, a, sizeof a);
        lgT_shape_str(t, b, sizeof b);
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: target has shape %s for input %s, expected [N] for [N, C] (0-d or "
                         "[1] for [C])",
                         who, b, a);
    }
    for (int64_t i = 0; i < N; i++) {
        int64_t y = ((const int64_t *)lg_tensor_data(t))[i];
        if (y < 0 || y >= *C)
            return lgC_error(ctx, LG_ERR_INDEX,
                             "%s: target[%lld] = %lld, expected a class in [0, %lld)", who,
                             (long long)i, (long long)y, (long long)*C);
    }
    return lg_reshape(ctx, x, 2, (int64_t[]){ N, *C });
}

static const lg_multi_margin_opts multi_margin_defaults = { .defaults_tag = LG_OPTS_TAG,
                                                            .p = 1,
                                                            .margin = 1.0 };
static const lgC_optfield multi_margin_fields[] = {
    LGC_FIELD(lg_multi_margin_opts, p, "1"),
    LGC_FIELD(lg_multi_margin_opts, margin, "1"),
};
static const lgC_opts_desc multi_margin_desc =
    LGC_DESC(lg_multi_margin_opts, multi_margin_defaults, multi_margin_fields);

lg_multi_margin_opts lg_multi_margin_opts_default(void)
{
    return multi_margin_defaults;
}

static lg_tensor *multi_margin_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                         const lg_multi_margin_opts *opts)
{
    static const char who[] = "lg_multi_margin_loss";
    lg_multi_margin_opts ov;
    if (!lgC_opts(ctx, who, &multi_margin_desc, opts, &ov))
        return NULL;
    const lg_multi_margin_opts *o = &ov;
    lg_reduction r = o->reduction;
    int64_t p = o->p;
    double margin = o->margin;
    lg_tensor *w = o->weight;
    if (!ctx || !lgT_ok_float(ctx, input, who, "input") || !lgL_int(ctx, target, who, "target") ||
        !lgL_reduction(ctx, r, false, who))
        return NULL;
    if (p != 1 && p != 2)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: p = %lld, expected 1 or 2", who, (long long)p);
    int64_t C = 0;
    lg_tensor *x = class_rows(ctx, input, target, who, &C);
    if (!x)
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
    int64_t N = lg_tensor_shape(x)[0];
    hinge_rows h = { N, C, p, margin, lg_tensor_data(target), w, r };
    return hinge_rows_fw(ctx, LGA_OP_multi_margin_rows, input, &h, lg_tensor_ndim(target),
                         lg_tensor_shape(target), who);
}

lg_tensor *lg_multi_margin_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                const lg_multi_margin_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_multi_margin_loss");
    lg_tensor *res = multi_margin_loss_body(ctx, input, target, opts);
    lgC_api_leave(ctx, outer);
    return res;
}

static lg_tensor *multilabel_margin_loss_body(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                              const lg_loss_opts *opts)
{
    static const char who[] = "lg_multilabel_margin_loss";
    lg_loss_opts ov;
    if (!lgL_opts_loss(ctx, who, opts, &ov))
        return NULL;
    const lg_loss_opts *o = &ov;
    lg_reduction r = o->reduction;
    if (!ctx || !lgT_ok_float(ctx, input, who, "input") || !lgL_int(ctx, target, who, "target") ||
        !lgL_reduction(ctx, r, false, who))
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
    hinge_rows h = { N, C, 1, 1, y, NULL, r };
    return hinge_rows_fw(ctx, LGA_OP_multilabel_margin_rows, input, &h, xn == 2, &N, who);
}

lg_tensor *lg_multilabel_margin_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                     const lg_loss_opts *opts)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_multilabel_margin_loss");
    lg_tensor *res = multilabel_margin_loss_body(ctx, input, target, opts);
    lgC_api_leave(ctx, outer);
    return res;
}

/* ------------------------------------------------------------------ */
/* The two class-hinge losses as fused primitives over rows             */
/* ------------------------------------------------------------------ */

/* Each row's hinge terms are a loop over classes; the composites above
 * (gather, one_hot, compare, where, sum: 9 ops, or an N x L x C tensor for
 * multilabel margin) cost 10 to 22 us on 8 x 10 where PyTorch takes 35 to
 * 49 us. The composites stay as the oracles in tests/test_more_losses.c.
 *   multi margin:      l_i = (w[y] / C) sum_{j != y, z_j > 0} z_j^p,  z_j = margin - x_y + x_j
 *   multilabel margin: l_i = (1 / C) sum_{j in P} sum_{k not in P, z > 0} z,  z = 1 - x_j + x_k
 * Gradient: each kept term adds c dz to x_j (x_k) and takes it from x_y (x_j),
 * c the row's upstream times w[y] / C (1 / C), dz = p z^(p - 1). */

/* Element i of a float tensor, inline (the rows loop over every class). */
static inline double xget(const lg_tensor *t, int64_t i)
{
    return t->dtype == LG_F32 ? (double)LGT_F(t)[i] : LGT_D(t)[i];
}

static inline void xset(lg_tensor *t, int64_t i, double v)
{
    if (t->dtype == LG_F32)
        LGT_F(t)[i] = (float)v;
    else
        LGT_D(t)[i] = v;
}

static double row_weight(const hinge_rows *h, int64_t i)
{
    return h->w ? xget(h->w, h->y[i]) : 1.0;
}

/* multi margin: the row's value, or with dx the gradient scaled by c */
static double mm_row(const hinge_rows *h, const lg_tensor *x, int64_t i, lg_tensor *dx, double c)
{
    int64_t C = h->C, y = h->y[i];
    double xy = xget(x, i * C + y), s = 0, back = 0;
    for (int64_t j = 0; j < C; j++) {
        if (j == y)
            continue;
        double xj = xget(x, i * C + j);
        double z = x->dtype == LG_F32 ? (double)(float)((float)(xj - xy) + (float)h->margin)
                                      : (xj - xy) + h->margin;
        if (!(z > 0))
            continue;
        if (dx) {
            double dz = h->p == 2 ? 2 * z : 1;
            xset(dx, i * C + j, xget(dx, i * C + j) + c * dz);
            back += c * dz;
        } else {
            s += h->p == 2 ? z * z : z;
        }
    }
    if (dx)
        xset(dx, i * C + y, xget(dx, i * C + y) - back);
    return s;
}

/* multilabel margin, likewise */
static double mlm_row(const hinge_rows *h, const lg_tensor *x, int64_t i, lg_tensor *dx, double c,
                      bool *labelled)
{
    int64_t C = h->C, len = 0;
    const int64_t *row = h->y + i * C;
    while (len < C && row[len] != -1)
        len++;
    for (int64_t k = 0; k < C; k++)
        labelled[k] = false;
    for (int64_t j = 0; j < len; j++)
        labelled[row[j]] = true;
    double s = 0;
    for (int64_t jj = 0; jj < len; jj++) {
        int64_t j = row[jj];
        double xj = xget(x, i * C + j);
        for (int64_t k = 0; k < C; k++) {
            if (labelled[k])
                continue;
            double xk = xget(x, i * C + k);
            double z =
                x->dtype == LG_F32 ? (double)(float)((float)(-xj + 1) + (float)xk) : (-xj + 1) + xk;
            if (!(z > 0))
                continue;
            if (dx) {
                xset(dx, i * C + k, xget(dx, i * C + k) + c);
                xset(dx, i * C + j, xget(dx, i * C + j) - c);
            } else {
                s += z;
            }
        }
    }
    return s;
}

/* ond, oshape: the shape of the unreduced loss */
static lg_tensor *hinge_rows_fw(lg_ctx *ctx, int op, lg_tensor *x, const hinge_rows *h0, int ond,
                                const int64_t *oshape, const char *who)
{
    bool none = h0->r == LG_REDUCTION_NONE;
    lg_tensor *l = none ? lgT_new(ctx, (lg_dtype)x->dtype, ond, oshape, who)
                        : lgT_new(ctx, (lg_dtype)x->dtype, 0, NULL, who);
    hinge_rows *h = l ? lgC_salloc(ctx, sizeof *h, who) : NULL;
    bool *labelled =
        h ? lgC_salloc(ctx, (size_t)(h0->C ? h0->C : 1) * sizeof *labelled, who) : NULL;
    /* the targets are copied: the backward must not see later changes */
    int64_t ny = op == LGA_OP_multi_margin_rows ? h0->N : h0->N * h0->C;
    int64_t *y = labelled ? lgC_salloc(ctx, (size_t)(ny ? ny : 1) * sizeof *y, who) : NULL;
    if (!y)
        return NULL;
    *h = *h0;
    memcpy(y, h0->y, (size_t)ny * sizeof *y);
    h->y = y;
    double sum = 0;
    for (int64_t i = 0; i < h->N; i++) {
        double v = op == LGA_OP_multi_margin_rows
                       ? mm_row(h, x, i, NULL, 0) * (1.0 / (double)h->C) * row_weight(h, i)
                       : mlm_row(h, x, i, NULL, 0, labelled) * (1.0 / (double)h->C);
        if (x->dtype == LG_F32)
            v = (double)(float)v;
        if (none)
            xset(l, i, v);
        else
            sum += v;
    }
    if (!none)
        xset(l, 0, h->r == LG_REDUCTION_MEAN ? sum / (double)h->N : sum);
    l->aux = h;
    return lgA_record(ctx, op, l, 1, (lg_tensor *[]){ x });
}

static lg_status hinge_rows_bw(lg_ctx *ctx, lg_tensor *l, bool multilabel)
{
    lg_tensor *x = l->in[0];
    const hinge_rows *h = l->aux;
    lg_tensor *dx = lgT_zeros_like(ctx, x, "lg_backward");
    bool *labelled = lgC_salloc(ctx, (size_t)(h->C ? h->C : 1) * sizeof *labelled, "lg_backward");
    if (!dx || !labelled)
        return ctx->status;
    double g0 = h->r == LG_REDUCTION_NONE ? 0 : xget(l->grad, 0);
    if (h->r == LG_REDUCTION_MEAN)
        g0 /= (double)h->N;
    for (int64_t i = 0; i < h->N; i++) {
        double s = h->r == LG_REDUCTION_NONE ? xget(l->grad, i) : g0;
        if (multilabel)
            mlm_row(h, x, i, dx, s * (1.0 / (double)h->C), labelled);
        else
            mm_row(h, x, i, dx, s * (1.0 / (double)h->C) * row_weight(h, i));
    }
    return lgA_accum(ctx, x, dx);
}

lg_status lgA_bw_multi_margin_rows(lg_ctx *ctx, lg_tensor *l)
{
    return hinge_rows_bw(ctx, l, false);
}

lg_status lgA_bw_multilabel_margin_rows(lg_ctx *ctx, lg_tensor *l)
{
    return hinge_rows_bw(ctx, l, true);
}
