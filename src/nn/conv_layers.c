/* conv_layers.c: nn.Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d.
 *
 * A layer holds its parameters (PyTorch's layouts and initialisation) and
 * a copy of its convolution options; its forward is the primitive of
 * lossgrad/nnops.h, which checks the input and the options again.
 */
#include "nn.h"

#include <math.h>
#include <string.h>

static const lg_conv_layer_opts layer_defaults = { .defaults_tag = LG_OPTS_TAG };
static const lgC_opts_desc layer_desc = LGC_DESC0(lg_conv_layer_opts, layer_defaults);

lg_conv_layer_opts lg_conv_layer_opts_default(void)
{
    return layer_defaults;
}

/* groups as the primitive will read it: 1 for NULL or an all-zero struct */
static int64_t groups_of(const lg_conv_opts *c)
{
    static const lg_conv_opts zero;
    return !c || !memcmp(c, &zero, sizeof zero) ? 1 : c->groups;
}

static lg_conv *conv_new_body(lg_ctx *ctx, const char *who, const char *name, int spatial,
                              bool transposed, int64_t cin, int64_t cout, int64_t kh, int64_t kw,
                              const lg_conv_opts *conv, const lg_conv_layer_opts *opts)
{
    lg_conv_layer_opts o;
    if (!lgC_opts(ctx, who, &layer_desc, opts, &o))
        return NULL;
    if (o.dtype != LG_F32 && o.dtype != LG_F64)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: dtype must be LG_F32 or LG_F64", who);
    if (cin < 1 || cout < 1 || kh < 1 || kw < 1)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: channels %lld -> %lld and kernel %lld x %lld, expected >= 1 each",
                         who, (long long)cin, (long long)cout, (long long)kh, (long long)kw);
    int64_t g = groups_of(conv);
    if (g < 1 || cin % g || cout % g)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: groups = %lld must be >= 1 and divide in_channels %lld and "
                         "out_channels %lld",
                         who, (long long)g, (long long)cin, (long long)cout);
    int64_t w0 = transposed ? cin : cout, w1 = (transposed ? cout : cin) / g, k, n;
    if (!lgN_size_mul(kh, kw, &k) || !lgN_size_mul(w1, k, &n) || !lgN_size_mul(w0, n, &n))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: the weight's size overflows", who);
    lg_conv *l = lgC_palloc(ctx, sizeof *l, who);
    if (!l)
        return NULL;
    *l = (lg_conv){ .in_channels = cin,
                    .out_channels = cout,
                    .kernel_h = kh,
                    .kernel_w = kw,
                    .spatial = spatial,
                    .transposed = transposed,
                    .conv = conv ? *conv : lg_conv_opts_default() };
    double bound = 1.0 / sqrt((double)(w1 * k)); /* kaiming_uniform(a = sqrt 5) */
    int64_t shape[4] = { w0, w1, kh, kw };
    if (spatial == 1)
        shape[2] = kw;
    char buf[256];
    l->weight = lgN_param_uniform(ctx, lgN_name(ctx, buf, sizeof buf, name, "weight"), o.dtype,
                                  spatial + 2, shape, bound);
    if (!l->weight)
        return NULL;
    if (!o.no_bias &&
        !(l->bias = lgN_param_uniform(ctx, lgN_name(ctx, buf, sizeof buf, name, "bias"), o.dtype, 1,
                                      &cout, bound)))
        return NULL;
    return l;
}

static lg_conv *conv_new(lg_ctx *ctx, const char *who, const char *name, int spatial,
                         bool transposed, int64_t cin, int64_t cout, int64_t kh, int64_t kw,
                         const lg_conv_opts *conv, const lg_conv_layer_opts *o)
{
    if (!ctx)
        return NULL;
    lgN_build b = lgN_build_begin(ctx, who);
    return lgN_build_end(
        ctx, b, conv_new_body(ctx, who, name, spatial, transposed, cin, cout, kh, kw, conv, o));
}

lg_conv *lg_conv1d_new(lg_ctx *ctx, const char *name, int64_t in_channels, int64_t out_channels,
                       int64_t kernel_size, const lg_conv_opts *conv, const lg_conv_layer_opts *o)
{
    return conv_new(ctx, "lg_conv1d_new", name, 1, false, in_channels, out_channels, 1, kernel_size,
                    conv, o);
}

lg_conv *lg_conv2d_new(lg_ctx *ctx, const char *name, int64_t in_channels, int64_t out_channels,
                       int64_t kernel_h, int64_t kernel_w, const lg_conv_opts *conv,
                       const lg_conv_layer_opts *o)
{
    return conv_new(ctx, "lg_conv2d_new", name, 2, false, in_channels, out_channels, kernel_h,
                    kernel_w, conv, o);
}

lg_conv *lg_conv_transpose1d_new(lg_ctx *ctx, const char *name, int64_t in_channels,
                                 int64_t out_channels, int64_t kernel_size,
                                 const lg_conv_opts *conv, const lg_conv_layer_opts *o)
{
    return conv_new(ctx, "lg_conv_transpose1d_new", name, 1, true, in_channels, out_channels, 1,
                    kernel_size, conv, o);
}

lg_conv *lg_conv_transpose2d_new(lg_ctx *ctx, const char *name, int64_t in_channels,
                                 int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
                                 const lg_conv_opts *conv, const lg_conv_layer_opts *o)
{
    return conv_new(ctx, "lg_conv_transpose2d_new", name, 2, true, in_channels, out_channels,
                    kernel_h, kernel_w, conv, o);
}

lg_tensor *lg_conv_forward(lg_ctx *ctx, const lg_conv *l, lg_tensor *x)
{
    if (!ctx)
        return NULL;
    if (!l)
        return lgC_error(ctx, LG_ERR_NULL, "lg_conv_forward: l is NULL");
    if (l->spatial == 1)
        return l->transposed ? lg_conv_transpose1d(ctx, x, l->weight, l->bias, &l->conv)
                             : lg_conv1d(ctx, x, l->weight, l->bias, &l->conv);
    return l->transposed ? lg_conv_transpose2d(ctx, x, l->weight, l->bias, &l->conv)
                         : lg_conv2d(ctx, x, l->weight, l->bias, &l->conv);
}
