/* norm_layers.c: nn.BatchNorm1d/2d, nn.LayerNorm and nn.GroupNorm.
 *
 * A layer holds its affine parameters (weight ones, bias zeros, as
 * PyTorch) and, for batch norm, its running statistics as buffers; its
 * forward is the primitive of lossgrad/nnops.h. Batch norm follows the
 * module: in training mode it counts num_batches_tracked and updates the
 * running statistics with momentum (or the cumulative factor
 * 1 / num_batches_tracked); in evaluation mode it reads them.
 */
#include "nn.h"

#include <math.h>
#include <string.h>

static const lg_norm_layer_opts norm_defaults = { .defaults_tag = LG_OPTS_TAG,
                                                  .eps = 1e-5,
                                                  .momentum = 0.1,
                                                  .affine = true,
                                                  .track_running_stats = true };
static const lgC_optfield norm_fields[] = {
    LGC_FIELD(lg_norm_layer_opts, eps, "1e-5"),
    LGC_FIELD(lg_norm_layer_opts, momentum, "0.1"),
    LGC_FIELD(lg_norm_layer_opts, affine, "true"),
    LGC_FIELD(lg_norm_layer_opts, track_running_stats, "true"),
};
static const lgC_opts_desc norm_desc = LGC_DESC(lg_norm_layer_opts, norm_defaults, norm_fields);

lg_norm_layer_opts lg_norm_layer_opts_default(void)
{
    return norm_defaults;
}

/* Resolves the options of a layer that uses eps and affine, and momentum
 * and track_running_stats if batch: by hand, the fields the layer uses
 * must be written; a field it does not use must keep its default (0 in a
 * struct by hand). */
static bool norm_options(lg_ctx *ctx, const char *who, const lg_norm_layer_opts *user, bool batch,
                         lg_norm_layer_opts *o)
{
    uint32_t kind = 0;
    lgC_opts_kind k = lgC_opts_classify(ctx, who, &norm_desc, user, &kind);
    if (k == LGC_OPTS_BAD)
        return false;
    if (k == LGC_OPTS_HAND) {
        lgC_optfield need[4] = { norm_fields[0], norm_fields[2], norm_fields[1], norm_fields[3] };
        if (!lgC_opts_check_hand(ctx, who, &norm_desc, user, need, batch ? 4 : 2))
            return false;
        *o = *user;
        if (!batch && o->momentum == 0 && !o->track_running_stats)
            o->momentum = norm_defaults.momentum, o->track_running_stats = true;
    } else if (!lgC_opts(ctx, who, &norm_desc, user, o)) {
        return false;
    }
    if (o->dtype != LG_F32 && o->dtype != LG_F64)
        return lgC_fail(ctx, LG_ERR_DTYPE, "%s: dtype must be LG_F32 or LG_F64", who);
    if (!(o->eps >= 0) || !isfinite(o->eps))
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: eps = %g, expected finite and >= 0", who, o->eps);
    if (!batch && (o->momentum != norm_defaults.momentum || !o->track_running_stats))
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: momentum and track_running_stats are batch norm's; leave them at "
                        "their defaults",
                        who);
    if (batch && o->momentum != LG_MOMENTUM_CUMULATIVE && !(o->momentum >= 0 && o->momentum <= 1))
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: momentum = %g, expected in [0, 1] or LG_MOMENTUM_CUMULATIVE", who,
                        o->momentum);
    return true;
}

/* weight (ones) and bias (zeros) of shape [nd dims], if affine. */
static bool affine_new(lg_ctx *ctx, const char *name, const lg_norm_layer_opts *o, int nd,
                       const int64_t *shape, lg_tensor **w, lg_tensor **b)
{
    *w = *b = NULL;
    if (!o->affine)
        return true;
    char buf[256];
    *w = lg_param_new(ctx, lgN_name(ctx, buf, sizeof buf, name, "weight"), o->dtype, nd, shape);
    if (!*w || lg_init_constant(ctx, *w, 1.0) != LG_OK)
        return false;
    *b = lg_param_new(ctx, lgN_name(ctx, buf, sizeof buf, name, "bias"), o->dtype, nd, shape);
    return *b != NULL;
}

static lg_batchnorm *batchnorm_body(lg_ctx *ctx, const char *who, const char *name, int64_t c,
                                    const lg_norm_layer_opts *opts)
{
    lg_norm_layer_opts o;
    if (!norm_options(ctx, who, opts, true, &o))
        return NULL;
    if (c < 1 || c > INT64_MAX / 8)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: num_features = %lld, expected >= 1", who,
                         (long long)c);
    lg_batchnorm *bn = lgC_palloc(ctx, sizeof *bn, who);
    if (!bn)
        return NULL;
    *bn = (lg_batchnorm){ .num_features = c, .eps = o.eps, .momentum = o.momentum };
    if (!affine_new(ctx, name, &o, 1, &c, &bn->weight, &bn->bias))
        return NULL;
    if (!o.track_running_stats)
        return bn;
    char buf[256];
    bn->running_mean =
        lg_buffer_new(ctx, lgN_name(ctx, buf, sizeof buf, name, "running_mean"), o.dtype, 1, &c);
    bn->running_var =
        lg_buffer_new(ctx, lgN_name(ctx, buf, sizeof buf, name, "running_var"), o.dtype, 1, &c);
    if (!bn->running_mean || !bn->running_var ||
        lg_init_constant(ctx, bn->running_var, 1.0) != LG_OK)
        return NULL;
    bn->num_batches_tracked = lg_buffer_new(
        ctx, lgN_name(ctx, buf, sizeof buf, name, "num_batches_tracked"), LG_I64, 0, NULL);
    return bn->num_batches_tracked ? bn : NULL;
}

lg_batchnorm *lg_batchnorm_new(lg_ctx *ctx, const char *name, int64_t num_features,
                               const lg_norm_layer_opts *o)
{
    if (!ctx)
        return NULL;
    lgN_build b = lgN_build_begin(ctx, "lg_batchnorm_new");
    return lgN_build_end(ctx, b, batchnorm_body(ctx, "lg_batchnorm_new", name, num_features, o));
}

lg_tensor *lg_batchnorm_forward(lg_ctx *ctx, const lg_batchnorm *bn, lg_tensor *x)
{
    static const char who[] = "lg_batchnorm_forward";
    if (!ctx)
        return NULL;
    if (!bn)
        return lgC_error(ctx, LG_ERR_NULL, "%s: bn is NULL", who);
    const char *outer = lgC_api_enter(ctx, who);
    bool training = lg_ctx_training(ctx), tracked = bn->running_mean != NULL;
    double f = bn->momentum;
    int64_t *count = tracked ? lg_tensor_data(bn->num_batches_tracked) : NULL;
    if (training && tracked && bn->momentum == LG_MOMENTUM_CUMULATIVE)
        f = 1.0 / (double)(*count + 1);
    /* the batch's statistics in training, and without running ones */
    lg_tensor *y = lg_batch_norm(ctx, x, bn->running_mean, bn->running_var, bn->weight, bn->bias,
                                 training || !tracked, training && tracked ? f : 0.0, bn->eps);
    if (y && training && tracked)
        ++*count;
    return lgN_api_done(ctx, outer, y);
}

static lg_layernorm *layernorm_body(lg_ctx *ctx, const char *who, const char *name, int nnorm,
                                    const int64_t *shape, const lg_norm_layer_opts *opts)
{
    lg_norm_layer_opts o;
    if (!norm_options(ctx, who, opts, false, &o))
        return NULL;
    if (nnorm < 1 || nnorm > LG_MAX_DIMS || !shape)
        return lgC_error(ctx, shape ? LG_ERR_VALUE : LG_ERR_NULL,
                         "%s: normalized_shape has %d dims, expected 1..%d", who, nnorm,
                         LG_MAX_DIMS);
    int64_t n = 1;
    for (int d = 0; d < nnorm; d++)
        if (shape[d] < 1 || !lgN_size_mul(n, shape[d], &n))
            return lgC_error(ctx, LG_ERR_VALUE,
                             "%s: normalized_shape[%d] = %lld, expected >= 1 (and a size that "
                             "fits)",
                             who, d, (long long)shape[d]);
    lg_layernorm *ln = lgC_palloc(ctx, sizeof *ln, who);
    if (!ln)
        return NULL;
    *ln = (lg_layernorm){ .nnorm = nnorm, .eps = o.eps };
    memcpy(ln->normalized_shape, shape, (size_t)nnorm * sizeof *shape);
    return affine_new(ctx, name, &o, nnorm, shape, &ln->weight, &ln->bias) ? ln : NULL;
}

lg_layernorm *lg_layernorm_new(lg_ctx *ctx, const char *name, int nnorm,
                               const int64_t *normalized_shape, const lg_norm_layer_opts *o)
{
    if (!ctx)
        return NULL;
    lgN_build b = lgN_build_begin(ctx, "lg_layernorm_new");
    return lgN_build_end(ctx, b,
                         layernorm_body(ctx, "lg_layernorm_new", name, nnorm, normalized_shape, o));
}

lg_tensor *lg_layernorm_forward(lg_ctx *ctx, const lg_layernorm *ln, lg_tensor *x)
{
    if (!ctx)
        return NULL;
    if (!ln)
        return lgC_error(ctx, LG_ERR_NULL, "lg_layernorm_forward: ln is NULL");
    return lg_layer_norm(ctx, x, ln->nnorm, ln->normalized_shape, ln->weight, ln->bias, ln->eps);
}

static lg_groupnorm *groupnorm_body(lg_ctx *ctx, const char *who, const char *name, int64_t g,
                                    int64_t c, const lg_norm_layer_opts *opts)
{
    lg_norm_layer_opts o;
    if (!norm_options(ctx, who, opts, false, &o))
        return NULL;
    if (g < 1 || c < 1 || c % g || c > INT64_MAX / 8)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: num_groups = %lld must be >= 1 and divide num_channels = %lld", who,
                         (long long)g, (long long)c);
    lg_groupnorm *gn = lgC_palloc(ctx, sizeof *gn, who);
    if (!gn)
        return NULL;
    *gn = (lg_groupnorm){ .num_groups = g, .num_channels = c, .eps = o.eps };
    return affine_new(ctx, name, &o, 1, &c, &gn->weight, &gn->bias) ? gn : NULL;
}

lg_groupnorm *lg_groupnorm_new(lg_ctx *ctx, const char *name, int64_t num_groups,
                               int64_t num_channels, const lg_norm_layer_opts *o)
{
    if (!ctx)
        return NULL;
    lgN_build b = lgN_build_begin(ctx, "lg_groupnorm_new");
    return lgN_build_end(
        ctx, b, groupnorm_body(ctx, "lg_groupnorm_new", name, num_groups, num_channels, o));
}

lg_tensor *lg_groupnorm_forward(lg_ctx *ctx, const lg_groupnorm *gn, lg_tensor *x)
{
    if (!ctx)
        return NULL;
    if (!gn)
        return lgC_error(ctx, LG_ERR_NULL, "lg_groupnorm_forward: gn is NULL");
    return lg_group_norm(ctx, x, gn->num_groups, gn->weight, gn->bias, gn->eps);
}
