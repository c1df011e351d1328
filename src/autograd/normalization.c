/* normalization.c: batch, layer and group normalisation.
 *
 * Each normalises a set of elements by its mean m and biased variance v,
 * xhat = (x - m) / sqrt(v + eps), then y = xhat w + b (w, b optional):
 *   layer_norm: the sets are rows over the trailing normalized_shape dims,
 *               w and b of that shape;
 *   group_norm: x [N, C, *], a set per (sample, group of C / G channels),
 *               w and b per channel;
 *   batch_norm: x [N, C, *], a set per channel over N and *, w and b per
 *               channel; in training the batch statistics (and running
 *               stats updated in place with the unbiased variance), else
 *               the running stats.
 * Backward, for a set of M elements with gw = g w:
 *   dx = rstd (gw - mean(gw) - xhat mean(gw xhat))   (batch statistics)
 *   dx = g w rstd                                    (running statistics)
 *   dw = sum g xhat,  db = sum g  over the elements each weight touches.
 * Sums are in double. Sets are independent, and the weight sums of layer
 * and group norm are taken over fixed blocks of rows summed in block
 * order, so every result has the same bits at any thread count.
 */
#include "autograd.h"

#include <math.h>
#include <string.h>

typedef struct norm_plan {
    int64_t rows, len;      /* layer, group: sets and their size */
    int64_t groups, cg, sp; /* group norm: groups, channels per group, spatial size */
    int64_t nw;             /* weights (layer: len; group, batch: C) */
    int64_t outer, inner;   /* batch norm: x = [outer][C][inner] */
    bool batch_stats;       /* batch norm: normalised by the batch's statistics */
    double eps, momentum;
    double *mean, *rstd; /* per set */
    int iw, ib;          /* the inputs weight and bias are (-1: absent) */
} norm_plan;

struct norm_args {
    const norm_plan *p;
    const void *x, *g, *w, *b;
    void *y, *dx, *rm, *rv;
    double *parts;
    int64_t blocks;
};

/* The weight index of element j of row r: j for layer norm (groups 1,
 * cg = len, sp = 1), the element's channel for group norm. */
static inline int64_t norm_widx(const norm_plan *p, int64_t r, int64_t j)
{
    return (r % p->groups) * p->cg + j / p->sp;
}

#define LGC_TEMPLATE "../autograd/normalization_kernel.h"
#include "../core/instantiate.h"

enum { NORM_BLOCKS = 16 }; /* weight-sum blocks of rows: fixed, not per thread */

static bool affine_ok(lg_ctx *ctx, const char *who, const lg_tensor *x, const lg_tensor *t,
                      const char *arg, int ndim, const int64_t *shape)
{
    if (!t)
        return true;
    if (!lgT_ok_float(ctx, t, who, arg) || !lgT_same_dtype(ctx, x, t, who))
        return false;
    bool same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = t->shape[d] == shape[d];
    if (!same) {
        char st[160], want[160];
        lgT_shape_str(t, st, sizeof st);
        int n = snprintf(want, sizeof want, "[");
        for (int d = 0; d < ndim && n < (int)sizeof want - 24; d++)
            n += snprintf(want + n, sizeof want - (size_t)n, d ? ", %lld" : "%lld",
                          (long long)shape[d]);
        snprintf(want + n, sizeof want - (size_t)n, "]");
        return lgC_fail(ctx, LG_ERR_SHAPE, "%s: %s is %s, expected %s", who, arg, st, want);
    }
    return true;
}

/* input [N, C, *] with weight and bias [C] (each optional): C, and the
 * input's shape as text for messages (sx, 160 bytes). */
static bool channels_input(lg_ctx *ctx, const char *who, const lg_tensor *input,
                           const lg_tensor *weight, const lg_tensor *bias, char *sx, int64_t *C)
{
    lgT_shape_str(input, sx, 160);
    if (input->ndim < 2)
        return lgC_fail(ctx, LG_ERR_SHAPE, "%s: input is %s, expected [N, C, *]", who, sx);
    *C = input->shape[1];
    return affine_ok(ctx, who, input, weight, "weight", 1, C) &&
           affine_ok(ctx, who, input, bias, "bias", 1, C);
}

static bool eps_ok(lg_ctx *ctx, const char *who, double eps)
{
    if (eps >= 0 && isfinite(eps))
        return true;
    return lgC_fail(ctx, LG_ERR_VALUE, "%s: eps = %g, expected finite and >= 0", who, eps);
}

/* A plan in the step arena with room for nsets statistics. */
static norm_plan *plan_new(lg_ctx *ctx, const char *who, const norm_plan *p, int64_t nsets)
{
    norm_plan *k = lgC_salloc(ctx, sizeof *k + (size_t)(2 * nsets) * sizeof(double), who);
    if (!k)
        return NULL;
    *k = *p;
    k->mean = (double *)(k + 1);
    k->rstd = k->mean + nsets;
    return k;
}

/* Records y on x and whichever of w, b are given, noting their places. */
static lg_tensor *record(lg_ctx *ctx, int op, lg_tensor *y, norm_plan *p, lg_tensor *x,
                         lg_tensor *w, lg_tensor *b)
{
    lg_tensor *ins[3] = { x };
    int n = 1;
    p->iw = w ? n : -1;
    if (w)
        ins[n++] = w;
    p->ib = b ? n : -1;
    if (b)
        ins[n++] = b;
    return lgA_record(ctx, op, y, n, ins);
}

static lg_tensor *rows_forward(lg_ctx *ctx, const char *who, int op, lg_tensor *x, lg_tensor *w,
                               lg_tensor *b, const norm_plan *p)
{
    norm_plan *kept = plan_new(ctx, who, p, p->rows);
    lg_tensor *y = kept ? lgT_new_like(ctx, x, who) : NULL;
    if (!y)
        return NULL;
    struct norm_args a = {
        .p = kept, .x = x->data, .w = w ? w->data : NULL, .b = b ? b->data : NULL, .y = y->data
    };
    lgC_parallel(ctx, x->numel * 4, p->rows, x->dtype == LG_F32 ? rows_fw_f32 : rows_fw_f64, &a);
    y->aux = kept;
    return record(ctx, op, y, kept, x, w, b);
}

/* Where the gradient of an affine input (input k of y; -1: absent or not
 * wanted) goes: its own gradient (direct) or a new tensor adopted after. */
typedef struct affine_target {
    lg_tensor *t, *d;
    bool direct;
} affine_target;

static bool affine_target_new(lg_ctx *ctx, lg_tensor *y, int k, affine_target *o)
{
    *o = (affine_target){ 0 };
    if (k < 0 || !lgA_needs(y, k))
        return true;
    o->t = y->in[k];
    o->d = lgA_grad_dest(ctx, o->t, &o->direct);
    return o->d != NULL;
}

static lg_status norm_backward(lg_ctx *ctx, lg_tensor *y, bool rows)
{
    const norm_plan *p = y->aux;
    lg_tensor *x = y->in[0], *w = p->iw >= 0 ? y->in[p->iw] : NULL;
    /* every result is allocated before the scratch, which is released */
    affine_target tw, tb;
    lg_tensor *dx = lgA_needs(y, 0) ? lgT_new_like(ctx, x, "lg_backward") : NULL;
    if ((lgA_needs(y, 0) && !dx) || !affine_target_new(ctx, y, p->iw, &tw) ||
        !affine_target_new(ctx, y, p->ib, &tb))
        return ctx->status;
    struct norm_args a = { .p = p,
                           .x = x->data,
                           .g = y->grad->data,
                           .w = w ? w->data : NULL,
                           .dx = dx ? dx->data : NULL };
    lgC_mark m = lgC_arena_mark(&ctx->arena);
    a.blocks = rows ? (p->rows < NORM_BLOCKS ? p->rows : NORM_BLOCKS) : 1;
    if (tw.d || tb.d) {
        a.parts = lgC_salloc(ctx, (size_t)((a.blocks ? a.blocks : 1) * 2 * p->nw) * sizeof(double),
                             "lg_backward");
        if (!a.parts)
            return ctx->status;
        if (a.blocks == 0) /* no rows: zero sums from one zeroed part */
            memset(a.parts, 0, (size_t)(2 * p->nw) * sizeof(double));
    }
    bool f32 = x->dtype == LG_F32;
    if (rows)
        lgC_parallel(ctx, x->numel * 4, a.blocks, f32 ? rows_bw_f32 : rows_bw_f64, &a);
    else
        lgC_parallel(ctx, x->numel * 4, p->nw, f32 ? bn_bw_f32 : bn_bw_f64, &a);
    if (a.blocks == 0)
        a.blocks = 1;
    const affine_target *ts[2] = { &tw, &tb };
    for (int i = 0; i < 2; i++) {
        if (!ts[i]->d)
            continue;
        int off = i == 0 ? 0 : (int)p->nw;
        if (f32)
            sum_blocks_f32(&a, off, ts[i]->d->data, ts[i]->direct);
        else
            sum_blocks_f64(&a, off, ts[i]->d->data, ts[i]->direct);
    }
    lgC_arena_release(&ctx->arena, m);
    for (int i = 0; i < 2; i++)
        if (ts[i]->d && !ts[i]->direct && lgA_accum(ctx, ts[i]->t, ts[i]->d) != LG_OK)
            return ctx->status;
    return dx ? lgA_accum(ctx, x, dx) : LG_OK;
}

lg_status lgA_bw_layer_norm(lg_ctx *ctx, lg_tensor *y)
{
    return norm_backward(ctx, y, true);
}

lg_status lgA_bw_group_norm(lg_ctx *ctx, lg_tensor *y)
{
    return norm_backward(ctx, y, true);
}

lg_status lgA_bw_batch_norm(lg_ctx *ctx, lg_tensor *y)
{
    return norm_backward(ctx, y, false);
}

lg_tensor *lg_layer_norm(lg_ctx *ctx, lg_tensor *input, int nnorm, const int64_t *normalized_shape,
                         lg_tensor *weight, lg_tensor *bias, double eps)
{
    static const char who[] = "lg_layer_norm";
    if (!ctx || lgC_failed(ctx, who) || !lgT_ok_float(ctx, input, who, "input") ||
        !eps_ok(ctx, who, eps))
        return NULL;
    char sx[160];
    lgT_shape_str(input, sx, sizeof sx);
    if (nnorm < 1 || nnorm > input->ndim || !normalized_shape)
        return lgC_error(ctx, !normalized_shape && nnorm > 0 ? LG_ERR_NULL : LG_ERR_SHAPE,
                         "%s: normalized_shape has %d dims for input %s, expected 1..%d", who,
                         nnorm, sx, input->ndim);
    int64_t len = 1;
    for (int d = 0; d < nnorm; d++) {
        if (normalized_shape[d] != input->shape[input->ndim - nnorm + d])
            return lgC_error(ctx, LG_ERR_SHAPE,
                             "%s: normalized_shape[%d] = %lld, but input %s has %lld there "
                             "(normalized_shape names input's trailing dims)",
                             who, d, (long long)normalized_shape[d], sx,
                             (long long)input->shape[input->ndim - nnorm + d]);
        len *= normalized_shape[d];
    }
    if (!affine_ok(ctx, who, input, weight, "weight", nnorm, normalized_shape) ||
        !affine_ok(ctx, who, input, bias, "bias", nnorm, normalized_shape))
        return NULL;
    norm_plan p = { .rows = len ? input->numel / len : 0,
                    .len = len,
                    .groups = 1,
                    .cg = len,
                    .sp = 1,
                    .nw = len,
                    .eps = eps };
    return rows_forward(ctx, who, LGA_OP_layer_norm, input, weight, bias, &p);
}

lg_tensor *lg_group_norm(lg_ctx *ctx, lg_tensor *input, int64_t num_groups, lg_tensor *weight,
                         lg_tensor *bias, double eps)
{
    static const char who[] = "lg_group_norm";
    if (!ctx || lgC_failed(ctx, who) || !lgT_ok_float(ctx, input, who, "input") ||
        !eps_ok(ctx, who, eps))
        return NULL;
    char sx[160];
    int64_t C = 0;
    if (!channels_input(ctx, who, input, weight, bias, sx, &C))
        return NULL;
    if (num_groups < 1 || C % num_groups != 0)
        return lgC_error(ctx, num_groups < 1 ? LG_ERR_VALUE : LG_ERR_SHAPE,
                         "%s: num_groups = %lld must be >= 1 and divide the %lld channels of %s",
                         who, (long long)num_groups, (long long)C, sx);
    int64_t sp = 1;
    for (int d = 2; d < input->ndim; d++)
        sp *= input->shape[d];
    norm_plan p = { .rows = input->shape[0] * num_groups,
                    .len = C / num_groups * sp,
                    .groups = num_groups,
                    .cg = C / num_groups,
                    .sp = sp ? sp : 1,
                    .nw = C,
                    .eps = eps };
    if (p.len == 0)
        p.rows = 0;
    return rows_forward(ctx, who, LGA_OP_group_norm, input, weight, bias, &p);
}

lg_tensor *lg_batch_norm(lg_ctx *ctx, lg_tensor *input, lg_tensor *running_mean,
                         lg_tensor *running_var, lg_tensor *weight, lg_tensor *bias, bool training,
                         double momentum, double eps)
{
    static const char who[] = "lg_batch_norm";
    if (!ctx || lgC_failed(ctx, who) || !lgT_ok_float(ctx, input, who, "input") ||
        !eps_ok(ctx, who, eps))
        return NULL;
    char sx[160];
    int64_t C = 0;
    if (!channels_input(ctx, who, input, weight, bias, sx, &C) ||
        !affine_ok(ctx, who, input, running_mean, "running_mean", 1, &C) ||
        !affine_ok(ctx, who, input, running_var, "running_var", 1, &C))
        return NULL;
    if (!running_mean != !running_var)
        return lgC_error(ctx, LG_ERR_NULL,
                         "%s: running_mean and running_var go together (both or neither)", who);
    if (!training && !running_mean)
        return lgC_error(ctx, LG_ERR_NULL,
                         "%s: evaluation (training false) needs running_mean and running_var", who);
    if ((running_mean && running_mean->requires_grad) ||
        (running_var && running_var->requires_grad))
        return lgC_error(ctx, LG_ERR_STATE,
                         "%s: running_mean and running_var are statistics updated in place; they "
                         "must not require a gradient",
                         who);
    if (training && running_mean && !(momentum >= 0 && momentum <= 1))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: momentum = %g, expected in [0, 1]", who, momentum);
    int64_t inner = 1;
    for (int d = 2; d < input->ndim; d++)
        inner *= input->shape[d];
    int64_t outer = input->shape[0];
    if (training && outer * inner == 1)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: training on input %s has one value per channel (PyTorch: expected "
                         "more than 1 value per channel when training)",
                         who, sx);
    norm_plan p = { .nw = C,
                    .outer = outer,
                    .inner = inner,
                    .batch_stats = training,
                    .eps = eps,
                    .momentum = momentum };
    norm_plan *kept = plan_new(ctx, who, &p, C);
    lg_tensor *y = kept ? lgT_new_like(ctx, input, who) : NULL;
    if (!y)
        return NULL;
    struct norm_args a = { .p = kept,
                           .x = input->data,
                           .w = weight ? weight->data : NULL,
                           .b = bias ? bias->data : NULL,
                           .y = y->data,
                           .rm = running_mean ? running_mean->data : NULL,
                           .rv = running_var ? running_var->data : NULL };
    if (outer * inner == 0 && training) { /* no elements: no statistics to take */
        for (int64_t c = 0; c < C; c++)
            kept->mean[c] = NAN, kept->rstd[c] = NAN;
    } else {
        lgC_parallel(ctx, input->numel * 4, C, input->dtype == LG_F32 ? bn_fw_f32 : bn_fw_f64, &a);
    }
    y->aux = kept;
    return record(ctx, LGA_OP_batch_norm, y, kept, input, weight, bias);
}

/* Taped backwards: the normalisation rebuilt from public ops and
 * differentiated (lgA_taped_by_rebuild). On a view of x whose sets are
 * reduced over axes R,
 *   layer_norm: [rows, len], R = {1};  group_norm: [N, G, len], R = {2};
 *   batch_norm: [outer, C, inner], R = {0, 2};
 *   m = mean_R x,  v = mean_R (x - m)^2 (biased),  xhat = (x - m) (v + eps)^-1/2
 * (eps inside the root, as the kernel); then y = xhat w + b with w, b as
 * [len] on [rows, len] (layer) or as [C, 1] on [N, C, sp] (group, batch).
 * Batch norm without batch statistics takes the forward's m and rstd as
 * constants, y = (x - m) rstd w + b. The running stats are neither read nor
 * updated again (the forward's update is its own). */
static lg_tensor *norm_rebuild(lg_ctx *ctx, lg_tensor *y, void *arg)
{
    (void)arg;
    const norm_plan *p = y->aux;
    lg_tensor *x = y->in[0];
    lg_tensor *w = p->iw >= 0 ? y->in[p->iw] : NULL, *b = p->ib >= 0 ? y->in[p->ib] : NULL;
    int64_t sv[3], av[3], wv[2];
    int ns, na, nw, nr;
    int axes[2];
    if (y->op == LGA_OP_layer_norm) {
        ns = na = 2, nw = 1, nr = 1, axes[0] = 1;
        sv[0] = av[0] = p->rows, sv[1] = av[1] = p->len, wv[0] = p->len;
    } else {
        int64_t N = x->shape[0], C = x->shape[1], sp = 1;
        for (int d = 2; d < x->ndim; d++)
            sp *= x->shape[d];
        ns = na = 3, nw = 2, wv[0] = C, wv[1] = 1;
        av[0] = N, av[1] = C, av[2] = sp;
        if (y->op == LGA_OP_group_norm) {
            nr = 1, axes[0] = 2;
            sv[0] = N, sv[1] = p->groups, sv[2] = C / p->groups * sp;
        } else {
            nr = 2, axes[0] = 0, axes[1] = 2;
            sv[0] = N, sv[1] = C, sv[2] = sp;
        }
    }
    lg_tensor *xs = lg_reshape(ctx, x, ns, sv), *xhat;
    if (y->op != LGA_OP_batch_norm || p->batch_stats) {
        lg_tensor *d = lg_sub(ctx, xs, lg_mean(ctx, xs, nr, axes, true));
        lg_tensor *v = lg_mean(ctx, lg_square(ctx, d), nr, axes, true);
        xhat = lg_mul(ctx, d, lg_pow_scalar(ctx, lg_add_scalar(ctx, v, p->eps), -0.5));
    } else { /* the forward's statistics, constants */
        lg_tensor *m = lgT_new(ctx, (lg_dtype)x->dtype, nw, wv, "lg_grad");
        lg_tensor *rs = m ? lgT_new(ctx, (lg_dtype)x->dtype, nw, wv, "lg_grad") : NULL;
        if (!rs)
            return NULL;
        for (int64_t c = 0; c < p->nw; c++)
            lgT_set(m, c, p->mean[c]), lgT_set(rs, c, p->rstd[c]);
        xhat = lg_mul(ctx, lg_sub(ctx, xs, m), rs);
    }
    lg_tensor *out = lg_reshape(ctx, xhat, na, av);
    if (w)
        out = lg_mul(ctx, out, lg_reshape(ctx, w, nw, wv));
    if (b)
        out = lg_add(ctx, out, lg_reshape(ctx, b, nw, wv));
    return lg_reshape(ctx, out, x->ndim, x->shape);
}

lg_status lgA_tbw_layer_norm(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return lgA_taped_by_rebuild(ctx, y, g, norm_rebuild, NULL);
}

lg_status lgA_tbw_group_norm(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return lgA_taped_by_rebuild(ctx, y, g, norm_rebuild, NULL);
}

lg_status lgA_tbw_batch_norm(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return lgA_taped_by_rebuild(ctx, y, g, norm_rebuild, NULL);
}
