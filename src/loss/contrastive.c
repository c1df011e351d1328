/* contrastive.c: contrastive_loss and nt_xent_loss (composites; not in
 * PyTorch's core, see docs/losses.md).
 *
 *   contrastive (Hadsell, Chopra, LeCun 2006), d = ||x1 - x2 + eps||_2:
 *       l = y d^2 / 2 + (1 - y) max(0, margin - d)^2 / 2
 *   NT-Xent (SimCLR) / InfoNCE, z = x / max(||x||, 1e-12) per row,
 *   S = Z Z^T / temperature over the 2N embeddings Z = [z1; z2] with the
 *   diagonal at -inf, l(u) = -log_softmax(S[u])[partner(u)];
 *   cross_view_only: S = z1 z2^T / temperature, rows for z1 -> z2 and
 *   columns for z2 -> z1. l_i is the mean of the two directions.
 */
#include "loss.h"

#include <math.h>

static lg_tensor *contrastive_loss_body(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2,
                                        lg_tensor *target, const lg_contrastive_opts *opts)
{
    static const char who[] = "lg_contrastive_loss";
    lg_contrastive_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_contrastive_opts, opts, &o))
        return NULL;
    double margin = o.margin;
    double eps = o.eps;
    if (!lgT_ok_float(ctx, input1, who, "input1") || !lgT_ok_float(ctx, input2, who, "input2") ||
        !lgT_ok_float(ctx, target, who, "target") || !lgL_reduction(ctx, o.reduction, false, who))
        return NULL;
    int n = lg_tensor_ndim(input1);
    lg_dtype dt = lg_tensor_dtype(input1);
    if (lg_tensor_dtype(input2) != dt || lg_tensor_dtype(target) != dt)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: input1, input2 and target differ in dtype", who);
    if (!lgT_same_shape(input1, input2) || n < 1 || n > 2 || lg_tensor_ndim(target) != n - 1 ||
        (n == 2 && lg_tensor_shape(target)[0] != lg_tensor_shape(input1)[0])) {
        char a[160], b[160], c[160];
        lgT_shape_str(input1, a, sizeof a);
        lgT_shape_str(input2, b, sizeof b);
        lgT_shape_str(target, c, sizeof c);
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: input1 %s, input2 %s, target %s, expected [N, D], [N, D], [N] (or "
                         "[D], [D], 0-d)",
                         who, a, b, c);
    }
    if (!(margin >= 0) || !(eps >= 0))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: margin = %g and eps = %g, expected both >= 0", who,
                         margin, eps);
    if (!lgL_in_range(ctx, target, 0, 1, who, "target"))
        return NULL;
    lg_tensor *d = lg_pairwise_distance(ctx, input1, input2, 2, eps, false);
    lg_tensor *pull = lg_mul(ctx, target, lg_square(ctx, d));
    lg_tensor *gap = lg_clamp(ctx, lg_add_scalar(ctx, lg_neg(ctx, d), margin), 0, INFINITY);
    lg_tensor *push = lg_mul(ctx, lg_add_scalar(ctx, lg_neg(ctx, target), 1), lg_square(ctx, gap));
    return lgL_reduce(ctx, lg_mul_scalar(ctx, lg_add(ctx, pull, push), 0.5), o.reduction);
}

lg_tensor *lg_contrastive_loss(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2, lg_tensor *target,
                               const lg_contrastive_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_contrastive_loss");
    return lgL_leave(ctx, outer,
                     ctx ? contrastive_loss_body(ctx, input1, input2, target, opts) : NULL);
}

/* Rows scaled to unit length, as torch.nn.functional.normalize. */
static lg_tensor *unit_rows(lg_ctx *ctx, lg_tensor *x)
{
    lg_tensor *n = lg_norm(ctx, x, 2, 1, (int[]){ 1 }, true);
    return lg_div(ctx, x, lg_clamp(ctx, n, 1e-12, INFINITY));
}

/* -log_softmax(s, axis) at (i, i) for every i of a square s: [N]. */
static lg_tensor *diag_nll(lg_ctx *ctx, lg_tensor *s, int axis, lg_tensor *diag_index)
{
    lg_tensor *lsm = lg_log_softmax(ctx, s, axis);
    int64_t n = lg_tensor_shape(s)[0];
    return lg_neg(ctx, lg_reshape(ctx, lg_gather(ctx, lsm, 1, diag_index), 1, &n));
}

static lg_tensor *nt_xent_loss_body(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2,
                                    const lg_nt_xent_opts *opts)
{
    static const char who[] = "lg_nt_xent_loss";
    lg_nt_xent_opts o;
    if (!lgC_opts(ctx, who, &lgL_desc_lg_nt_xent_opts, opts, &o))
        return NULL;
    double tau = o.temperature;
    if (!lgT_ok_float(ctx, input1, who, "input1") || !lgT_ok_float(ctx, input2, who, "input2") ||
        !lgL_reduction(ctx, o.reduction, false, who))
        return NULL;
    lg_dtype dt = lg_tensor_dtype(input1);
    if (lg_tensor_dtype(input2) != dt)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: input1 and input2 differ in dtype", who);
    if (!lgT_same_shape(input1, input2) || lg_tensor_ndim(input1) != 2 ||
        lg_tensor_shape(input1)[0] < 2 || lg_tensor_shape(input1)[1] < 1) {
        char a[160], b[160];
        lgT_shape_str(input1, a, sizeof a);
        lgT_shape_str(input2, b, sizeof b);
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "%s: input1 %s and input2 %s, expected one shape [N, D] with N >= 2", who,
                         a, b);
    }
    if (!(tau > 0) || isinf(tau))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: temperature = %g, expected a finite value > 0",
                         who, tau);
    int64_t N = lg_tensor_shape(input1)[0];
    lg_tensor *z1 = unit_rows(ctx, input1), *z2 = unit_rows(ctx, input2);
    lg_tensor *l;
    if (o.cross_view_only) {
        lg_tensor *s = lg_mul_scalar(ctx, lg_matmul_t(ctx, z1, z2, false, true), 1 / tau);
        lg_tensor *diag =
            lg_reshape(ctx, lg_arange(ctx, LG_I64, 0, (double)N, 1), 2, (int64_t[]){ N, 1 });
        l = lg_add(ctx, diag_nll(ctx, s, 1, diag), diag_nll(ctx, s, 0, diag));
    } else {
        lg_tensor *z = lg_concat(ctx, 2, (lg_tensor *[]){ z1, z2 }, 0);
        lg_tensor *s = lg_mul_scalar(ctx, lg_matmul_t(ctx, z, z, false, true), 1 / tau);
        /* each embedding's similarity to itself is excluded: -inf on the diagonal */
        lg_tensor *self = lg_zeros(ctx, dt, 2, (int64_t[]){ 2 * N, 2 * N });
        lg_tensor *partner = lg_zeros(ctx, LG_I64, 2, (int64_t[]){ 2 * N, 1 });
        if (!self || !partner)
            return NULL;
        for (int64_t i = 0; i < 2 * N; i++) {
            if (dt == LG_F32)
                ((float *)lg_tensor_data(self))[i * 2 * N + i] = -INFINITY;
            else
                ((double *)lg_tensor_data(self))[i * 2 * N + i] = -INFINITY;
            ((int64_t *)lg_tensor_data(partner))[i] = (i + N) % (2 * N);
        }
        lg_tensor *lsm = lg_log_softmax(ctx, lg_add(ctx, s, self), 1);
        lg_tensor *both =
            lg_reshape(ctx, lg_neg(ctx, lg_gather(ctx, lsm, 1, partner)), 2, (int64_t[]){ 2, N });
        l = lg_sum(ctx, both, 1, (int[]){ 0 }, false);
    }
    return lgL_reduce(ctx, lg_mul_scalar(ctx, l, 0.5), o.reduction);
}

lg_tensor *lg_nt_xent_loss(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2,
                           const lg_nt_xent_opts *opts)
{
    const char *outer = lgL_enter(ctx, "lg_nt_xent_loss");
    return lgL_leave(ctx, outer, ctx ? nt_xent_loss_body(ctx, input1, input2, opts) : NULL);
}
