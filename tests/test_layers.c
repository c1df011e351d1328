/* test_layers.c: the layer primitives (convolution, pooling,
 * normalisation, activations, attention) against PyTorch 1.13's numbers in
 * tests/fixtures/nn/layers.txt (tools/gen_layer_fixtures.py documents
 * every op's keys and tensors), in float64 and float32: the output, every
 * gradient, max pooling's indices, batch norm's running statistics, and
 * for an `err` case the same class of error (shape: LG_ERR_SHAPE, value:
 * LG_ERR_VALUE). */
#include "nfile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

/* "2" or "2,1" into v (n values: a single int fills both); the count read. */
static int ints(const char *s, int64_t v[2])
{
    char *end;
    v[0] = v[1] = strtoll(s, &end, 10);
    if (*end != ',')
        return 1;
    v[1] = strtoll(end + 1, NULL, 10);
    return 2;
}

/* A PyTorch int-or-tuple option into a single field or an {H, W} pair. */
static void spatial_opt(const ncase *c, const char *k, int64_t *one, int64_t pair[2])
{
    const char *s = key(c, k);
    if (!s)
        return;
    int64_t v[2];
    if (ints(s, v) == 2)
        pair[0] = v[0], pair[1] = v[1];
    else
        *one = v[0];
}

static lg_conv_opts conv_opts(const ncase *c)
{
    lg_conv_opts o = lg_conv_opts_default();
    spatial_opt(c, "stride", &o.stride, o.stride_hw);
    spatial_opt(c, "dilation", &o.dilation, o.dilation_hw);
    spatial_opt(c, "output_padding", &o.output_padding, o.output_padding_hw);
    const char *p = key(c, "padding");
    if (p && !strcmp(p, "same"))
        o.padding_kind = LG_PADDING_SAME;
    else if (p && !strcmp(p, "valid"))
        o.padding_kind = LG_PADDING_VALID;
    else
        spatial_opt(c, "padding", &o.padding, o.padding_hw);
    o.groups = (int64_t)keyd(c, "groups", 1);
    return o;
}

/* ------------------------------------------------------------------ */
/* One case                                                             */
/* ------------------------------------------------------------------ */

typedef struct run {
    const ncase *c;
    lg_dtype dt;
    lg_ctx *ctx;
    char msg[1024];
} run;

static bool fail(run *r, const char *what, const char *detail)
{
    snprintf(r->msg, sizeof r->msg, "%s [%s]: %s: %s", r->c->id, r->dt == LG_F64 ? "f64" : "f32",
             what, detail);
    return false;
}

/* An input tensor by name (NULL if the case has none); floats that PyTorch
 * differentiates require grad. */
static lg_tensor *input(run *r, const char *name)
{
    const ntensor *t = find(r->c, name);
    if (!t)
        return NULL;
    lg_tensor *x = make(r->ctx, t, r->dt);
    char g[128];
    snprintf(g, sizeof g, "grad_%s", name);
    if (x && find(r->c, g))
        lg_requires_grad(r->ctx, x, true);
    return x;
}

static bool check(run *r, lg_tensor *got, const char *name)
{
    const ntensor *want = find(r->c, name);
    if (!want)
        return fail(r, name, "missing from the fixture");
    char msg[256];
    if (!fixture_close(got, want, r->dt, msg, sizeof msg))
        return fail(r, name, msg);
    return true;
}

/* Checks out, then backpropagates upstream and checks each grad_<name>. */
static bool check_result(run *r, lg_tensor *out, lg_tensor *const *ins, const char *const *names,
                         int n)
{
    if (!out)
        return fail(r, "call", lg_ctx_errmsg(r->ctx));
    if (!check(r, out, "out"))
        return false;
    const ntensor *u = find(r->c, "upstream");
    if (!u)
        return fail(r, "upstream", "missing");
    bool any = false;
    for (int i = 0; i < n; i++)
        any |= ins[i] && lg_tensor_requires_grad(ins[i]);
    if (!any)
        return true;
    if (lg_backward_with(r->ctx, out, make(r->ctx, u, r->dt)) != LG_OK)
        return fail(r, "backward", lg_ctx_errmsg(r->ctx));
    for (int i = 0; i < n; i++) {
        char g[128];
        snprintf(g, sizeof g, "grad_%s", names[i]);
        if (!ins[i] || !find(r->c, g))
            continue;
        lg_tensor *got = lg_tensor_grad(ins[i]);
        if (!got) { /* an empty input gets no gradient tensor: compare zeros */
            got = lg_zeros(r->ctx, r->dt, lg_tensor_ndim(ins[i]), lg_tensor_shape(ins[i]));
        }
        if (!check(r, got, g))
            return false;
    }
    return true;
}

/* An err case: NULL, with the error class the word names. */
static bool check_err(run *r, lg_tensor *out)
{
    const char *word = key(r->c, "err");
    lg_status want = !strcmp(word, "shape") ? LG_ERR_SHAPE : LG_ERR_VALUE;
    if (out)
        return fail(r, "err", "the call succeeded where PyTorch raises");
    if (lg_ctx_status(r->ctx) != want) {
        char d[600];
        snprintf(d, sizeof d, "status %s (%s), expected %s", lg_status_name(lg_ctx_status(r->ctx)),
                 lg_ctx_errmsg(r->ctx), lg_status_name(want));
        return fail(r, "err", d);
    }
    if (!*lg_ctx_errmsg(r->ctx))
        return fail(r, "err", "no message");
    return true;
}

static bool finish(run *r, lg_tensor *out, lg_tensor *const *ins, const char *const *names, int n)
{
    return key(r->c, "err") ? check_err(r, out) : check_result(r, out, ins, names, n);
}

static const char *const xwb[] = { "input", "weight", "bias" };

static bool run_conv(run *r, const char *op)
{
    lg_tensor *in[3] = { input(r, "input"), input(r, "weight"), input(r, "bias") };
    lg_conv_opts o = conv_opts(r->c);
    lg_tensor *y = NULL;
    if (!strcmp(op, "conv1d"))
        y = lg_conv1d(r->ctx, in[0], in[1], in[2], &o);
    else if (!strcmp(op, "conv2d"))
        y = lg_conv2d(r->ctx, in[0], in[1], in[2], &o);
    else if (!strcmp(op, "conv_transpose1d"))
        y = lg_conv_transpose1d(r->ctx, in[0], in[1], in[2], &o);
    else
        y = lg_conv_transpose2d(r->ctx, in[0], in[1], in[2], &o);
    return finish(r, y, in, xwb, 3);
}

static bool run_pool(run *r, const char *op)
{
    lg_tensor *x = input(r, "input");
    bool two = op[strlen(op) - 2] == '2';
    int64_t k[2] = { 1, 1 };
    const char *ks = key(r->c, strncmp(op, "adaptive", 8) ? "kernel_size" : "output_size");
    if (!ks)
        return fail(r, "kernel_size", "missing");
    ints(ks, k);
    lg_tensor *y, *idx = NULL;
    if (!strncmp(op, "max", 3)) {
        lg_max_pool_opts o = lg_max_pool_opts_default();
        spatial_opt(r->c, "stride", &o.stride, o.stride_hw);
        spatial_opt(r->c, "padding", &o.padding, o.padding_hw);
        spatial_opt(r->c, "dilation", &o.dilation, o.dilation_hw);
        o.ceil_mode = keyd(r->c, "ceil_mode", 0) != 0;
        y = two ? lg_max_pool2d(r->ctx, x, k[0], k[1], &o, &idx)
                : lg_max_pool1d(r->ctx, x, k[0], &o, &idx);
        if (y && !key(r->c, "err") && !check(r, idx, "indices"))
            return false;
    } else if (!strncmp(op, "avg", 3)) {
        lg_avg_pool_opts o = lg_avg_pool_opts_default();
        spatial_opt(r->c, "stride", &o.stride, o.stride_hw);
        spatial_opt(r->c, "padding", &o.padding, o.padding_hw);
        o.ceil_mode = keyd(r->c, "ceil_mode", 0) != 0;
        o.count_include_pad = keyd(r->c, "count_include_pad", 1) != 0;
        const char *dv = key(r->c, "divisor_override");
        if (dv && strcmp(dv, "none"))
            o.divisor_override = strtoll(dv, NULL, 10);
        y = two ? lg_avg_pool2d(r->ctx, x, k[0], k[1], &o) : lg_avg_pool1d(r->ctx, x, k[0], &o);
    } else {
        y = two ? lg_adaptive_avg_pool2d(r->ctx, x, k[0], k[1])
                : lg_adaptive_avg_pool1d(r->ctx, x, k[0]);
    }
    return finish(r, y, &x, xwb, 1);
}

static bool run_norm(run *r, const char *op)
{
    lg_tensor *in[3] = { input(r, "input"), input(r, "weight"), input(r, "bias") };
    double eps = keyd(r->c, "eps", 1e-5);
    lg_tensor *y;
    if (!strcmp(op, "layer_norm")) {
        int64_t ns[LG_MAX_DIMS];
        int n = 0;
        const char *s = key(r->c, "normalized_shape");
        for (char *p = (char *)s; p && *p && n < LG_MAX_DIMS;) {
            ns[n++] = strtoll(p, &p, 10);
            if (*p == ',')
                p++;
        }
        y = lg_layer_norm(r->ctx, in[0], n, ns, in[1], in[2], eps);
    } else {
        y = lg_group_norm(r->ctx, in[0], (int64_t)keyd(r->c, "num_groups", 1), in[1], in[2], eps);
    }
    return finish(r, y, in, xwb, 3);
}

/* S calls of a BatchNorm module: input [S, N, C, ...]; the last is checked. */
static bool run_batch_norm(run *r)
{
    const ntensor *xs = find(r->c, "input");
    int64_t steps = (int64_t)keyd(r->c, "steps", 1);
    bool training = keyd(r->c, "training", 1) != 0;
    bool track = keyd(r->c, "track_running_stats", 1) != 0;
    const char *mom = key(r->c, "momentum");
    bool cumulative = mom && !strcmp(mom, "none");
    double momentum = mom && !cumulative ? strtod(mom, NULL) : 0.1;
    double eps = keyd(r->c, "eps", 1e-5);
    lg_tensor *w = input(r, "weight"), *b = input(r, "bias");
    const ntensor *rm0 = find(r->c, "running_mean"), *rv0 = find(r->c, "running_var");
    lg_tensor *rm = rm0 ? make(r->ctx, rm0, r->dt) : NULL;
    lg_tensor *rv = rv0 ? make(r->ctx, rv0, r->dt) : NULL;
    if (!xs || xs->ndim < 3)
        return fail(r, "input", "expected [S, N, C, ...]");
    int64_t per = xs->numel / xs->shape[0];
    int64_t tracked = 0;
    lg_tensor *x = NULL, *y = NULL;
    for (int64_t s = 0; s < steps; s++) {
        x = from_doubles(r->ctx, r->dt, xs->v + s * per, xs->ndim - 1, xs->shape + 1);
        if (s == steps - 1 && find(r->c, "grad_input"))
            lg_requires_grad(r->ctx, x, true);
        /* the module: batch statistics in training or without running stats */
        bool batch = training || !track;
        if (training && track)
            tracked++;
        double f = cumulative ? 1.0 / (double)(tracked ? tracked : 1) : momentum;
        y = lg_batch_norm(r->ctx, x, track ? rm : NULL, track ? rv : NULL, w, b, batch, f, eps);
        if (!y)
            break;
    }
    lg_tensor *in[3] = { x, w, b };
    if (!finish(r, y, in, xwb, 3))
        return false;
    if (key(r->c, "err") || !track)
        return true;
    return check(r, rm, "running_mean_after") && check(r, rv, "running_var_after");
}

static bool run_activation(run *r, const char *op)
{
    lg_tensor *x = input(r, "input");
    lg_ctx *ctx = r->ctx;
    lg_tensor *y;
    if (!strcmp(op, "gelu")) {
        const char *a = key(r->c, "approximate");
        y = lg_gelu(ctx, x, a && !strcmp(a, "tanh") ? LG_GELU_TANH : LG_GELU_NONE);
    } else if (!strcmp(op, "silu"))
        y = lg_silu(ctx, x);
    else if (!strcmp(op, "mish"))
        y = lg_mish(ctx, x);
    else if (!strcmp(op, "hardswish"))
        y = lg_hardswish(ctx, x);
    else if (!strcmp(op, "hardsigmoid"))
        y = lg_hardsigmoid(ctx, x);
    else if (!strcmp(op, "softsign"))
        y = lg_softsign(ctx, x);
    else if (!strcmp(op, "selu"))
        y = lg_selu(ctx, x);
    else if (!strcmp(op, "relu6"))
        y = lg_relu6(ctx, x);
    else if (!strcmp(op, "leaky_relu"))
        y = lg_leaky_relu(ctx, x, keyd(r->c, "negative_slope", 0.01));
    else if (!strcmp(op, "elu"))
        y = lg_elu(ctx, x, keyd(r->c, "alpha", 1));
    else if (!strcmp(op, "celu"))
        y = lg_celu(ctx, x, keyd(r->c, "alpha", 1));
    else
        y = lg_hardtanh(ctx, x, keyd(r->c, "min_val", -1), keyd(r->c, "max_val", 1));
    return finish(r, y, &x, xwb, 1);
}

static const char *const qkv[] = { "query", "key", "value" };

/* mask_kind bool: the int64 0/1 mask as written; else a float mask. */
static bool run_sdpa(run *r)
{
    lg_tensor *in[3] = { input(r, "query"), input(r, "key"), input(r, "value") };
    lg_sdpa_opts o = lg_sdpa_opts_default();
    const ntensor *m = find(r->c, "attn_mask");
    if (m)
        o.attn_mask = make(r->ctx, m, r->dt);
    o.is_causal = keyd(r->c, "is_causal", 0) != 0;
    o.scale = keyd(r->c, "scale", LG_SDPA_DEFAULT_SCALE);
    const char *kind = key(r->c, "mask_kind");
    if (m && (lg_tensor_dtype(o.attn_mask) == LG_I64) != (kind && !strcmp(kind, "bool")))
        return fail(r, "attn_mask", "its dtype does not match mask_kind");
    return finish(r, lg_scaled_dot_product_attention(r->ctx, in[0], in[1], in[2], &o), in, qkv, 3);
}

/* var, std (dim absent: every axis; an int or a comma list), cosine
 * similarity and normalize. */
static bool run_stat(run *r, const char *op)
{
    static const char *const x12[] = { "x1", "x2" };
    lg_ctx *ctx = r->ctx;
    if (!strcmp(op, "cosine_similarity")) {
        lg_tensor *in[2] = { input(r, "x1"), input(r, "x2") };
        lg_tensor *y = lg_cosine_similarity(ctx, in[0], in[1], (int)keyd(r->c, "dim", 1),
                                            keyd(r->c, "eps", 1e-8));
        return finish(r, y, in, x12, 2);
    }
    lg_tensor *x = input(r, "input");
    if (!strcmp(op, "normalize")) {
        lg_tensor *y = lg_normalize(ctx, x, keyd(r->c, "p", 2), (int)keyd(r->c, "dim", 1),
                                    keyd(r->c, "eps", 1e-12));
        return finish(r, y, &x, xwb, 1);
    }
    int axes[LG_MAX_DIMS], naxes = 0;
    for (char *p = (char *)key(r->c, "dim"); p && *p && naxes < LG_MAX_DIMS;) {
        axes[naxes++] = (int)strtol(p, &p, 10);
        if (*p == ',')
            p++;
    }
    bool unbiased = keyd(r->c, "unbiased", 1) != 0, keepdim = keyd(r->c, "keepdim", 0) != 0;
    lg_tensor *y = !strcmp(op, "var") ? lg_var(ctx, x, naxes, axes, unbiased, keepdim)
                                      : lg_std(ctx, x, naxes, axes, unbiased, keepdim);
    return finish(r, y, &x, xwb, 1);
}

/* F.interpolate's keys: size "H,W" is size_hw (a single number is size),
 * scale_factor "2" or "2,0.5" is scale_factor or scale_factor_hw. */
static bool run_interpolate(run *r)
{
    lg_tensor *x = input(r, "input");
    lg_interpolate_opts o = lg_interpolate_opts_default();
    const char *m = key(r->c, "mode");
    if (m && !strcmp(m, "bilinear"))
        o.mode = LG_INTERP_BILINEAR;
    else if (m && strcmp(m, "nearest"))
        return fail(r, "mode", m);
    o.align_corners = keyd(r->c, "align_corners", 0) != 0;
    const char *sz = key(r->c, "size");
    if (sz && strchr(sz, ',') != strrchr(sz, ',')) {
        /* three sizes for two spatial dims: PyTorch's value error; the C
         * struct holds at most {H, W}, so the call cannot be written */
        return key(r->c, "err") ? true : fail(r, "size", "more than two sizes");
    }
    if (sz)
        spatial_opt(r->c, "size", &o.size, o.size_hw);
    const char *sf = key(r->c, "scale_factor");
    if (sf) {
        char *end;
        double f = strtod(sf, &end);
        if (*end == ',')
            o.scale_factor_hw[0] = f, o.scale_factor_hw[1] = strtod(end + 1, NULL);
        else
            o.scale_factor = f;
    }
    lg_tensor *y = lg_interpolate(r->ctx, x, &o);
    return finish(r, y, &x, xwb, 1);
}

/* nn.MultiheadAttention with the fixture's parameters copied in. */
static bool run_mha(run *r)
{
    lg_ctx *ctx = r->ctx;
    lg_mha_opts mo = lg_mha_opts_default();
    mo.dtype = r->dt;
    mo.no_bias = keyd(r->c, "bias", 1) == 0;
    mo.batch_first = keyd(r->c, "batch_first", 0) != 0;
    lg_mha *m = lg_mha_new(ctx, "mha", (int64_t)keyd(r->c, "embed_dim", 0),
                           (int64_t)keyd(r->c, "num_heads", 0), &mo);
    if (!m)
        return fail(r, "lg_mha_new", lg_ctx_errmsg(ctx));
    lg_tensor *params[4] = { m->in_proj_weight, m->in_proj_bias, m->out_proj_weight,
                             m->out_proj_bias };
    static const char *const pnames[4] = { "in_proj_weight", "in_proj_bias", "out_proj.weight",
                                           "out_proj.bias" };
    for (int i = 0; i < 4; i++) {
        const ntensor *t = find(r->c, pnames[i]);
        if (!t != !params[i])
            return fail(r, pnames[i], "present on one side only");
        if (t && lg_copy_into(ctx, params[i], make(ctx, t, r->dt)) != LG_OK)
            return fail(r, pnames[i], lg_ctx_errmsg(ctx));
    }
    bool self = keyd(r->c, "self_attention", 0) != 0;
    lg_tensor *q = input(r, "query"), *k = self ? q : input(r, "key"),
              *v = self ? q : input(r, "value");
    lg_mha_masks mk = lg_mha_masks_default();
    const ntensor *kp = find(r->c, "key_padding_mask"), *am = find(r->c, "attn_mask");
    mk.key_padding_mask = kp ? make(ctx, kp, r->dt) : NULL;
    mk.attn_mask = am ? make(ctx, am, r->dt) : NULL;
    mk.is_causal = keyd(r->c, "causal", 0) != 0;
    lg_tensor *y = lg_mha_forward(ctx, m, q, k, v, &mk);
    lg_tensor *ins[7] = { q,         self ? NULL : k, self ? NULL : v, params[0],
                          params[1], params[2],       params[3] };
    static const char *const names[7] = { "query",          "key",          "value",
                                          "in_proj_weight", "in_proj_bias", "out_proj.weight",
                                          "out_proj.bias" };
    return finish(r, y, ins, names, 7);
}

typedef struct family {
    const char *op;
    int kind;
} family;
enum { F_CONV, F_POOL, F_NORM, F_BN, F_ACT, F_SDPA, F_STAT, F_INTERP, F_MHA };
static const family families[] = {
    { "conv1d", F_CONV },
    { "conv2d", F_CONV },
    { "conv_transpose1d", F_CONV },
    { "conv_transpose2d", F_CONV },
    { "max_pool1d", F_POOL },
    { "max_pool2d", F_POOL },
    { "avg_pool1d", F_POOL },
    { "avg_pool2d", F_POOL },
    { "adaptive_avg_pool1d", F_POOL },
    { "adaptive_avg_pool2d", F_POOL },
    { "layer_norm", F_NORM },
    { "group_norm", F_NORM },
    { "batch_norm", F_BN },
    { "interpolate", F_INTERP },
    { "multi_head_attention", F_MHA },
    { "gelu", F_ACT },
    { "silu", F_ACT },
    { "mish", F_ACT },
    { "hardswish", F_ACT },
    { "hardsigmoid", F_ACT },
    { "softsign", F_ACT },
    { "selu", F_ACT },
    { "relu6", F_ACT },
    { "leaky_relu", F_ACT },
    { "elu", F_ACT },
    { "celu", F_ACT },
    { "hardtanh", F_ACT },
    { "scaled_dot_product_attention", F_SDPA },
    { "var", F_STAT },
    { "std", F_STAT },
    { "cosine_similarity", F_STAT },
    { "normalize", F_STAT },
};
#define NFAMILIES ((int)(sizeof families / sizeof families[0]))

static int family_of(const char *op)
{
    for (int i = 0; i < NFAMILIES; i++)
        if (!strcmp(families[i].op, op))
            return families[i].kind;
    return -1;
}

static bool run_case(run *r)
{
    const char *op = key(r->c, "op");
    switch (family_of(op)) {
    case F_CONV: return run_conv(r, op);
    case F_POOL: return run_pool(r, op);
    case F_NORM: return run_norm(r, op);
    case F_BN: return run_batch_norm(r);
    case F_ACT: return run_activation(r, op);
    case F_SDPA: return run_sdpa(r);
    case F_STAT: return run_stat(r, op);
    case F_INTERP: return run_interpolate(r);
    case F_MHA: return run_mha(r);
    default: return fail(r, op, "unknown op");
    }
}

Test(layers, fixtures_match_pytorch)
{
    nfile nf = read_nfile("layers.txt");
    int failed = 0, ran = 0;
    for (int i = 0; i < nf.ncases; i++) {
        const ncase *c = &nf.cases[i];
        ran++;
        bool ok = true;
        for (int d = 0; d < 2; d++) {
            run r = { .c = c, .dt = d ? LG_F32 : LG_F64, .ctx = test_ctx(1) };
            if (!run_case(&r)) {
                fprintf(stderr, "FAIL %s\n", r.msg);
                ok = false;
            }
            lg_ctx_free(r.ctx);
        }
        failed += !ok;
    }
    free_nfile(&nf);
    cr_assert(ran > 300, "only %d cases ran", ran);
    cr_assert_eq(failed, 0, "%d of %d layer fixture cases failed (listed above)", failed, ran);
}

Test(layers, every_fixture_op_is_run)
{
    nfile nf = read_nfile("layers.txt");
    for (int i = 0; i < nf.ncases; i++) {
        const char *op = key(&nf.cases[i], "op");
        cr_assert_not_null(op, "%s: no op line", nf.cases[i].id);
        cr_assert_geq(family_of(op), 0, "%s: the runner does not know op %s", nf.cases[i].id, op);
    }
    free_nfile(&nf);
}

/* ------------------------------------------------------------------ */
/* Attention: gradchecks, modes and errors                              */
/* ------------------------------------------------------------------ */

typedef struct sdpa_case {
    bool is_causal, float_mask; /* float_mask: the 4th input */
    lg_tensor *int_mask;        /* used when there is no float mask */
    double scale;
} sdpa_case;

/* inputs: query, key, value and, when n is 4, a float mask (differentiated too) */
static lg_tensor *sdpa_apply(lg_ctx *ctx, lg_tensor *const *x, void *user)
{
    const sdpa_case *c = user;
    lg_sdpa_opts o = lg_sdpa_opts_default();
    o.is_causal = c->is_causal;
    o.scale = c->scale;
    o.attn_mask = c->float_mask ? x[3] : c->int_mask;
    return lg_scaled_dot_product_attention(ctx, x[0], x[1], x[2], &o);
}

static void sdpa_gradcheck(lg_ctx *ctx, int ndim, const int64_t *qs, const int64_t *ks,
                           const int64_t *vs, const int64_t *ms, int mndim, sdpa_case c,
                           const char *what)
{
    lg_tensor *xs[4] = { lg_randn(ctx, LG_F64, ndim, qs), lg_randn(ctx, LG_F64, ndim, ks),
                         lg_randn(ctx, LG_F64, ndim, vs),
                         ms ? lg_randn(ctx, LG_F64, mndim, ms) : NULL };
    c.float_mask = ms != NULL;
    expect_gradcheck(ctx, sdpa_apply, &c, ms ? 4 : 3, xs, what);
}

Test(layers, sdpa_gradcheck)
{
    lg_ctx *ctx = test_ctx(3);
    /* causal, L < S and L > S, default and given scale */
    sdpa_gradcheck(ctx, 4, SHAPE(2, 2, 3, 4), SHAPE(2, 2, 5, 4), SHAPE(2, 2, 5, 3), NULL, 0,
                   (sdpa_case){ .is_causal = true, .scale = LG_SDPA_DEFAULT_SCALE }, "causal LltS");
    sdpa_gradcheck(ctx, 3, SHAPE(2, 5, 3), SHAPE(2, 3, 3), SHAPE(2, 3, 2), NULL, 0,
                   (sdpa_case){ .is_causal = true, .scale = 0.7 }, "causal LgtS 3-d");
    /* a float mask broadcast over heads, its own gradient checked too */
    sdpa_gradcheck(ctx, 4, SHAPE(2, 3, 3, 4), SHAPE(2, 3, 4, 4), SHAPE(2, 3, 4, 2),
                   SHAPE(2, 1, 3, 4), 4, (sdpa_case){ .scale = LG_SDPA_DEFAULT_SCALE },
                   "float mask [B, 1, L, S]");
    sdpa_gradcheck(ctx, 3, SHAPE(2, 3, 4), SHAPE(2, 4, 4), SHAPE(2, 4, 3), SHAPE(4), 1,
                   (sdpa_case){ .scale = 2.0 }, "float mask [S]");
    /* an int64 mask with no row hidden whole */
    int64_t bm[] = { 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0 };
    sdpa_case c = { .int_mask = T_FROM(ctx, LG_I64, bm, 3, 4), .scale = LG_SDPA_DEFAULT_SCALE };
    sdpa_gradcheck(ctx, 4, SHAPE(1, 2, 3, 5), SHAPE(1, 2, 4, 5), SHAPE(1, 2, 4, 3), NULL, 0, c,
                   "int64 mask");
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

/* NULL, an all-zero struct and lg_sdpa_opts_default() are the same call. */
Test(layers, sdpa_options_and_dropout)
{
    lg_ctx *ctx = test_ctx(5);
    lg_tensor *q = lg_randn(ctx, LG_F64, 3, SHAPE(2, 6, 4));
    lg_tensor *k = lg_randn(ctx, LG_F64, 3, SHAPE(2, 7, 4));
    lg_tensor *v = lg_randn(ctx, LG_F64, 3, SHAPE(2, 7, 3));
    lg_sdpa_opts d = lg_sdpa_opts_default(), zero = { 0 };
    cr_assert_eq(d.scale, LG_SDPA_DEFAULT_SCALE);
    lg_tensor *y = lg_scaled_dot_product_attention(ctx, q, k, v, NULL);
    expect_close_to(lg_scaled_dot_product_attention(ctx, q, k, v, &d), y, 0, "default()");
    expect_close_to(lg_scaled_dot_product_attention(ctx, q, k, v, &zero), y, 0, "{0}");
    d.scale = 0.5; /* 1 / sqrt(4) */
    expect_close_to(lg_scaled_dot_product_attention(ctx, q, k, v, &d), y, 1e-15, "scale 0.5");
    /* by hand: a field that is written means itself (dropout 0 in eval mode) */
    lg_ctx_set_training(ctx, false);
    lg_tensor *e = lg_scaled_dot_product_attention(
        ctx, q, k, v, &(lg_sdpa_opts){ .dropout_p = 0.5, .scale = LG_SDPA_DEFAULT_SCALE });
    expect_close_to(e, y, 0, "dropout in eval mode");
    lg_ctx_set_training(ctx, true);
    /* training: the weights are dropped and rescaled, reproducibly by seed */
    d = lg_sdpa_opts_default();
    d.dropout_p = 0.5;
    lg_seed(ctx, 11);
    lg_tensor *t1 = lg_scaled_dot_product_attention(ctx, q, k, v, &d);
    lg_seed(ctx, 11);
    lg_tensor *t2 = lg_scaled_dot_product_attention(ctx, q, k, v, &d);
    expect_close_to(t2, t1, 0, "dropout by seed");
    double diff = 0;
    for (int64_t i = 0; i < lg_tensor_numel(y); i++)
        diff += fabs(get(t1, i) - get(y, i));
    cr_assert(diff > 1e-3, "dropout in training mode changed nothing");
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

Test(layers, sdpa_errors)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *q = lg_randn(ctx, LG_F64, 4, SHAPE(2, 2, 3, 4));
    lg_tensor *k = lg_randn(ctx, LG_F64, 4, SHAPE(2, 2, 5, 4));
    lg_tensor *v = lg_randn(ctx, LG_F64, 4, SHAPE(2, 2, 5, 6));
    lg_tensor *q32 = lg_randn(ctx, LG_F32, 4, SHAPE(2, 2, 3, 4));
    lg_tensor *qi = lg_zeros(ctx, LG_I64, 4, SHAPE(2, 2, 3, 4));
#define SDPA(qq, kk, vv, o) lg_scaled_dot_product_attention(ctx, qq, kk, vv, o)
    EXPECT_LOSS_ERR(ctx, SDPA(NULL, k, v, NULL), LG_ERR_NULL, "query is NULL");
    EXPECT_LOSS_ERR(ctx, SDPA(q, k, NULL, NULL), LG_ERR_NULL, "value is NULL");
    EXPECT_LOSS_ERR(ctx, SDPA(qi, k, v, NULL), LG_ERR_DTYPE, "query is int64");
    EXPECT_LOSS_ERR(ctx, SDPA(q32, k, v, NULL), LG_ERR_DTYPE, "float32, float64 and float64");
    lg_tensor *q1 = lg_randn(ctx, LG_F64, 1, SHAPE(4));
    EXPECT_LOSS_ERR(ctx, SDPA(q1, q1, q1, NULL), LG_ERR_SHAPE, "ndim >= 2");
    lg_tensor *k3 = lg_randn(ctx, LG_F64, 3, SHAPE(2, 5, 4));
    EXPECT_LOSS_ERR(ctx, SDPA(q, k3, v, NULL), LG_ERR_SHAPE, "key [2, 5, 4]");
    lg_tensor *kb = lg_randn(ctx, LG_F64, 4, SHAPE(2, 3, 5, 4));
    EXPECT_LOSS_ERR(ctx, SDPA(q, kb, v, NULL), LG_ERR_SHAPE, "equal batch dims");
    lg_tensor *vs = lg_randn(ctx, LG_F64, 4, SHAPE(2, 2, 4, 6));
    EXPECT_LOSS_ERR(ctx, SDPA(q, k, vs, NULL), LG_ERR_SHAPE,
                    "key [2, 2, 5, 4] has S = 5 but value [2, 2, 4, 6] has 4");
    lg_tensor *ke = lg_randn(ctx, LG_F64, 4, SHAPE(2, 2, 5, 3));
    EXPECT_LOSS_ERR(ctx, SDPA(q, ke, v, NULL), LG_ERR_SHAPE,
                    "query [2, 2, 3, 4] has E = 4 but key [2, 2, 5, 3] has 3");

    lg_sdpa_opts o = lg_sdpa_opts_default();
    o.attn_mask = lg_zeros(ctx, LG_F64, 2, SHAPE(5, 3));
    EXPECT_LOSS_ERR(ctx, SDPA(q, k, v, &o), LG_ERR_SHAPE,
                    "attn_mask [5, 3] does not broadcast to the scores [..., L, S] = [2, 2, 3, 5]");
    o.attn_mask = lg_zeros(ctx, LG_F64, 5, SHAPE(1, 2, 2, 3, 5));
    EXPECT_LOSS_ERR(ctx, SDPA(q, k, v, &o), LG_ERR_SHAPE, "does not broadcast");
    o.attn_mask = lg_zeros(ctx, LG_F32, 2, SHAPE(3, 5));
    EXPECT_LOSS_ERR(ctx, SDPA(q, k, v, &o), LG_ERR_DTYPE, "attn_mask is float32, expected float64");
    int64_t bad[15] = { 1, 1, 0, 1, 1, 1, 1, 2 };
    o.attn_mask = T_FROM(ctx, LG_I64, bad, 3, 5);
    EXPECT_LOSS_ERR(ctx, SDPA(q, k, v, &o), LG_ERR_VALUE, "attn_mask[7] = 2, expected 0 or 1");
    o.attn_mask = lg_zeros(ctx, LG_F64, 2, SHAPE(3, 5));
    o.is_causal = true;
    EXPECT_LOSS_ERR(ctx, SDPA(q, k, v, &o), LG_ERR_VALUE, "is_causal with an attn_mask");

    const double bad_p[] = { -0.1, 1.0, NAN };
    for (int i = 0; i < 3; i++) {
        o = lg_sdpa_opts_default();
        o.dropout_p = bad_p[i];
        EXPECT_LOSS_ERR(ctx, SDPA(q, k, v, &o), LG_ERR_VALUE, "dropout_p");
    }
    const double bad_s[] = { 0, -2, INFINITY, NAN };
    for (int i = 0; i < 4; i++) {
        o = lg_sdpa_opts_default();
        o.scale = bad_s[i];
        EXPECT_LOSS_ERR(ctx, SDPA(q, k, v, &o), LG_ERR_VALUE, "scale = ");
    }
    /* by hand, scale left at 0 cannot tell "not written" from 0 */
    EXPECT_LOSS_ERR(ctx, SDPA(q, k, v, &(lg_sdpa_opts){ .is_causal = true }), LG_ERR_VALUE,
                    "lg_sdpa_opts.scale is 0");

    /* the first error sticks; a NULL input after it adds nothing */
    lg_ctx_clear_error(ctx);
    cr_assert_null(SDPA(q, ke, v, NULL));
    cr_assert_null(SDPA(NULL, k, v, NULL));
    o = lg_sdpa_opts_default();
    o.dropout_p = 2;
    cr_assert_null(SDPA(q, k, v, &o));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_SHAPE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "lg_scaled_dot_product_attention: query") != NULL, "%s",
              lg_ctx_errmsg(ctx));
#undef SDPA
    lg_ctx_clear_error(ctx);
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* cosine_similarity and normalize: composites, so gradchecks here      */
/* ------------------------------------------------------------------ */

typedef struct sim_case {
    int dim;
    double p; /* normalize */
} sim_case;

static lg_tensor *cosine_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    return lg_cosine_similarity(ctx, xs[0], xs[1], ((const sim_case *)user)->dim, 1e-8);
}

static lg_tensor *normalize_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    const sim_case *c = user;
    return lg_normalize(ctx, xs[0], c->p, c->dim, 1e-12);
}

/* Broadcast shapes (one along the reduced dim), negative dims, every p
 * (p = 0: only the numerator's gradient, as PyTorch). Not below eps:
 * there cosine_similarity's gradient is 1.13's, not the derivative (see
 * the closed form below). */
Test(layers, similarity_gradcheck)
{
    lg_ctx *ctx = test_ctx(41);
    const struct {
        int n1, n2;
        int64_t s1[3], s2[3];
        int dim;
    } cc[] = {
        { 2, 2, { 4, 5 }, { 4, 5 }, 1 },        { 2, 2, { 4, 5 }, { 1, 5 }, 1 },
        { 3, 2, { 2, 3, 4 }, { 3, 4 }, 1 },     { 2, 2, { 1, 3 }, { 4, 3 }, 0 },
        { 3, 3, { 2, 3, 4 }, { 2, 3, 4 }, -1 }, { 1, 1, { 6 }, { 6 }, 0 },
    };
    for (size_t i = 0; i < sizeof cc / sizeof cc[0]; i++) {
        lg_tensor *xs[2] = { lg_randn(ctx, LG_F64, cc[i].n1, cc[i].s1),
                             lg_randn(ctx, LG_F64, cc[i].n2, cc[i].s2) };
        sim_case c = { cc[i].dim, 0 };
        expect_gradcheck(ctx, cosine_apply, &c, 2, xs, "cosine_similarity");
    }
    const double ps[] = { 2, 1, 3, INFINITY, 0, -1 };
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        for (int d = -1; d < 2; d++) {
            lg_tensor *x =
                rand_avoiding(ctx, LG_F64, 3, SHAPE(2, 3, 4), -2, 2, (double[]){ 0 }, 1, 0.05);
            sim_case c = { d, ps[i] };
            expect_gradcheck(ctx, normalize_apply, &c, 1, &x, "normalize");
        }
    lg_ctx_free(ctx);
}

/* Closed forms: broadcasting before the norms, each norm clamped on its
 * own (and passing its gradient, as 1.13's in-place clamp); normalize's
 * zero row and its gradient g / eps; and the error paths. */
Test(layers, similarity_values_and_errors)
{
    lg_ctx *ctx = test_ctx(42);
    for (int d = 0; d < 2; d++) {
        lg_dtype dt = d ? LG_F32 : LG_F64;
        double tol = dt == LG_F32 ? 1e-5 : 1e-12;
        /* x1 [1, 2] broadcast to [2, 2] over dim 0: columns (1, 1) and (2, 2) */
        lg_tensor *a = from_doubles(ctx, dt, (double[]){ 1, 2 }, 2, SHAPE(1, 2));
        lg_tensor *b = from_doubles(ctx, dt, (double[]){ 3, 0, 4, 5 }, 2, SHAPE(2, 2));
        expect_close(lg_cosine_similarity(ctx, a, b, 0, 1e-8),
                     (double[]){ 7 / (sqrt(2.0) * 5), 1 / sqrt(2.0) }, 2, tol, "broadcast");
        /* |x1| = 1e-3 below eps = 1e-2: (x1 / 1e-2) . (x2 / |x2|) */
        lg_tensor *t = from_doubles(ctx, dt, (double[]){ 6e-4, 8e-4 }, 1, SHAPE(2));
        lg_tensor *u = from_doubles(ctx, dt, (double[]){ 0, 2 }, 1, SHAPE(2));
        lg_requires_grad(ctx, t, true);
        lg_tensor *ct = lg_cosine_similarity(ctx, t, u, 0, 1e-2);
        expect_close(ct, (double[]){ 0.08 }, 1, tol, "tiny");
        /* the gradient passes the clamp: u / n - (t . u) t / n^3 with n = eps */
        cr_assert_eq(lg_backward(ctx, ct), LG_OK, "%s", lg_ctx_errmsg(ctx));
        expect_close(lg_tensor_grad(t), (double[]){ -0.48, 99.36 }, 2, tol, "tiny's gradient");
        lg_tensor *x = from_doubles(ctx, dt, (double[]){ 3, -4, 0, 0 }, 2, SHAPE(2, 2));
        lg_requires_grad(ctx, x, true);
        lg_tensor *y = lg_normalize(ctx, x, 2, 1, 1e-6);
        expect_close(y, (double[]){ 0.6, -0.8, 0, 0 }, 4, tol, "normalize");
        lg_tensor *g = from_doubles(ctx, dt, (double[]){ 0, 0, 1, -2 }, 2, SHAPE(2, 2));
        cr_assert_eq(lg_backward_with(ctx, y, g), LG_OK, "%s", lg_ctx_errmsg(ctx));
        expect_close(lg_tensor_grad(x), (double[]){ 0, 0, 1e6, -2e6 }, 4, tol, "zero row");
        expect_close(lg_normalize(ctx, x, INFINITY, 0, 0), (double[]){ 1, -1, 0, 0 }, 4, tol,
                     "p = inf");
        expect_close(lg_normalize(ctx, x, 0, 1, 0.5), (double[]){ 1.5, -2, 0, 0 }, 4, tol,
                     "p = 0, eps 0.5");
        expect_ok(ctx);
        EXPECT_ERR(ctx, lg_cosine_similarity(ctx, a, lg_zeros(ctx, dt, 2, SHAPE(2, 3)), 1, 1e-8),
                   LG_ERR_SHAPE, "lg_cosine_similarity");
        EXPECT_ERR(ctx, lg_cosine_similarity(ctx, a, b, 2, 1e-8), LG_ERR_AXIS,
                   "lg_cosine_similarity");
        EXPECT_ERR(ctx, lg_cosine_similarity(ctx, a, b, 1, -1), LG_ERR_VALUE, "eps");
        EXPECT_ERR(ctx, lg_cosine_similarity(ctx, a, b, 1, INFINITY), LG_ERR_VALUE, "eps");
        EXPECT_ERR(
            ctx,
            lg_cosine_similarity(ctx, a, lg_zeros(ctx, d ? LG_F64 : LG_F32, 1, SHAPE(2)), 1, 1e-8),
            LG_ERR_DTYPE, "lg_cosine_similarity");
        EXPECT_ERR(ctx, lg_normalize(ctx, x, 2, -3, 1e-12), LG_ERR_AXIS, "lg_normalize");
        EXPECT_ERR(ctx, lg_normalize(ctx, x, 2, 1, NAN), LG_ERR_VALUE, "eps");
        EXPECT_ERR(ctx, lg_normalize(ctx, x, NAN, 1, 1e-12), LG_ERR_VALUE, "p is NaN");
        EXPECT_ERR(ctx, lg_normalize(ctx, lg_zeros(ctx, LG_I64, 1, SHAPE(2)), 2, 0, 1e-12),
                   LG_ERR_DTYPE, "lg_normalize");
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

/* lg_interpolate's forward and backward have the same bits at 1 and 4
 * threads (every plane is its own work); float32, bilinear, a shape whose
 * work passes the threshold for threads. */
static void interp_run(int threads, float *out, float *grad, int64_t ny, int64_t nx)
{
    lg_ctx *ctx = test_ctx(7);
    cr_assert_eq(lg_ctx_set_threads(ctx, threads), LG_OK);
    lg_tensor *x = lg_randn(ctx, LG_F32, 4, (int64_t[]){ 3, 5, 17, 13 });
    lg_requires_grad(ctx, x, true);
    lg_interpolate_opts o = lg_interpolate_opts_default();
    o.mode = LG_INTERP_BILINEAR;
    o.scale_factor_hw[0] = 2.3, o.scale_factor_hw[1] = 1.7;
    lg_tensor *y = lg_interpolate(ctx, x, &o);
    lg_tensor *u = lg_randn(ctx, LG_F32, 4, lg_tensor_shape(y));
    cr_assert_eq(lg_tensor_numel(y), ny);
    cr_assert_eq(lg_backward_with(ctx, y, u), LG_OK, "%s", lg_ctx_errmsg(ctx));
    memcpy(out, lg_tensor_data(y), sizeof(float) * (size_t)ny);
    memcpy(grad, lg_tensor_data(lg_tensor_grad(x)), sizeof(float) * (size_t)nx);
    lg_ctx_free(ctx);
}

Test(layers, interpolate_same_bits_at_any_thread_count)
{
    enum { NY = 3 * 5 * 39 * 22, NX = 3 * 5 * 17 * 13 };
    static float y1[NY], y4[NY], g1[NX], g4[NX];
    interp_run(1, y1, g1, NY, NX);
    interp_run(4, y4, g4, NY, NX);
    cr_assert(!memcmp(y1, y4, sizeof y1), "forward differs between 1 and 4 threads");
    cr_assert(!memcmp(g1, g4, sizeof g1), "backward differs between 1 and 4 threads");
}

/* lg_max_pool2d against a plain scan of every window (the first strictly
 * larger value or any NaN wins), on inputs with many ties, zeros (as after
 * a ReLU) and NaNs, over paddings, strides, dilations and ceil_mode that
 * give windows both wholly inside the row and clipped at its ends. */
static void max_pool_reference(const double *x, int64_t H, int64_t W, int64_t k, int64_t s,
                               int64_t p, int64_t d, int64_t OH, int64_t OW, double *y,
                               int64_t *ix)
{
    for (int64_t oh = 0; oh < OH; oh++)
        for (int64_t ow = 0; ow < OW; ow++) {
            double m = -INFINITY;
            int64_t best = -1;
            for (int64_t a = 0; a < k; a++)
                for (int64_t b = 0; b < k; b++) {
                    int64_t ih = oh * s - p + a * d, iw = ow * s - p + b * d;
                    if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                        continue;
                    double v = x[ih * W + iw];
                    if (best < 0)
                        best = ih * W + iw;
                    if (v > m || v != v)
                        m = v, best = ih * W + iw;
                }
            y[oh * OW + ow] = m, ix[oh * OW + ow] = best;
        }
}

Test(layers, max_pool_matches_a_plain_scan_with_ties_and_nans)
{
    enum { H = 9, W = 23 };
    static const int64_t grid[][5] = { /* k, s, p, d, ceil */
                                       { 2, 2, 0, 1, 0 }, { 3, 1, 1, 1, 0 }, { 3, 2, 1, 1, 1 },
                                       { 2, 3, 1, 2, 0 }, { 3, 2, 0, 2, 1 }, { 4, 1, 2, 1, 0 } };
    for (int dt = 0; dt < 2; dt++)
        for (size_t c = 0; c < sizeof grid / sizeof grid[0]; c++) {
            const int64_t *g = grid[c];
            lg_ctx *ctx = test_ctx(11);
            double x[H * W];
            for (int i = 0; i < H * W; i++) /* small integers: ties, zeros */
                x[i] = (double)((i * 7919 + 13) % 5) - 2 > 0 ? (double)((i * 7919 + 13) % 5) - 2 : 0;
            x[17] = NAN, x[100] = NAN, x[W * H - 1] = NAN;
            lg_dtype t = dt ? LG_F32 : LG_F64;
            lg_tensor *xt = lg_tensor_from(ctx, LG_F64, x, 2, (int64_t[]){ H, W });
            xt = lg_cast(ctx, lg_reshape(ctx, xt, 4, (int64_t[]){ 1, 1, H, W }), t);
            lg_max_pool_opts o = lg_max_pool_opts_default();
            o.stride = g[1], o.padding = g[2], o.dilation = g[3], o.ceil_mode = g[4];
            lg_tensor *idx = NULL, *y = lg_max_pool2d(ctx, xt, g[0], g[0], &o, &idx);
            cr_assert(y, "case %zu: %s", c, lg_ctx_errmsg(ctx));
            int64_t OH = lg_tensor_dim(y, 2), OW = lg_tensor_dim(y, 3);
            double want[4 * H * W];
            int64_t wix[4 * H * W];
            max_pool_reference(x, H, W, g[0], g[1], g[2], g[3], OH, OW, want, wix);
            lg_tensor *y64 = lg_cast(ctx, y, LG_F64);
            const double *got = lg_tensor_data(y64);
            const int64_t *gix = lg_tensor_data(idx);
            for (int64_t i = 0; i < OH * OW; i++) {
                cr_assert(gix[i] == wix[i], "case %zu %s: index %lld is %lld, expected %lld", c,
                          dt ? "f32" : "f64", (long long)i, (long long)gix[i], (long long)wix[i]);
                cr_assert(got[i] == want[i] || (isnan(got[i]) && isnan(want[i])),
                          "case %zu: value %lld is %g, expected %g", c, (long long)i, got[i],
                          want[i]);
            }
            lg_ctx_free(ctx);
        }
}
