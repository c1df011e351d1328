/* test_higher.c: lg_grad, gradients of gradients, lg_hvp, lg_jvp and
 * lg_gradgradcheck, against closed forms, float64 central differences and
 * lg_backward's first-order kernels. */
#include "helpers.h"

#include <string.h>

/* A small MLP-like function of (x, W, b): sum(log_softmax(tanh(x W^T + b))
 * * weights), every op on the path twice differentiable. */
static lg_tensor *mlp_fn(lg_ctx *c, lg_tensor *const *in, void *user)
{
    (void)user;
    lg_tensor *h = lg_tanh(c, lg_matmul_bias(c, in[0], in[1], in[2], false, true));
    lg_tensor *l = lg_log_softmax(c, h, -1);
    return lg_mul(c, l, lg_sigmoid(c, in[0]));
}

Test(higher, first_order_lg_grad_equals_lg_backward)
{
    for (int dt = 0; dt < 2; dt++) {
        lg_dtype d = dt ? LG_F64 : LG_F32;
        lg_ctx *ctx = test_ctx(3);
        lg_tensor *x = lg_randn(ctx, d, 2, SHAPE(4, 5)), *w = lg_randn(ctx, d, 2, SHAPE(5, 5)),
                  *b = lg_randn(ctx, d, 1, SHAPE(5));
        lg_tensor *in[3] = { x, w, b };
        for (int i = 0; i < 3; i++)
            lg_requires_grad(ctx, in[i], true);
        lg_tensor *u = lg_randn(ctx, d, 2, SHAPE(4, 5));
        lg_tensor *g[3], *again[3];
        lg_tensor *y = mlp_fn(ctx, in, NULL);
        cr_assert_eq(lg_grad(ctx, 1, &y, &u, 3, in, g, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
        for (int i = 0; i < 3; i++)
            cr_assert_null(lg_tensor_grad(in[i]), "lg_grad must not touch .grad");
        /* the graph was consumed (no retain): a second walk is an error */
        cr_assert_eq(lg_grad(ctx, 1, &y, &u, 3, in, again, NULL), LG_ERR_STATE);
        lg_ctx_clear_error(ctx);
        y = mlp_fn(ctx, in, NULL);
        expect_ok(ctx);
        cr_assert_eq(lg_backward_with(ctx, y, u), LG_OK);
        for (int i = 0; i < 3; i++)
            expect_close_to(g[i], lg_tensor_grad(in[i]), d == LG_F32 ? 1e-6 : 1e-14,
                            "lg_grad vs lg_backward");
        lg_ctx_free(ctx);
    }
}

/* f = sum(x^3): gradient 3x^2, Hessian diag(6x). */
Test(higher, second_derivative_of_a_cube_is_6x)
{
    lg_ctx *ctx = test_ctx(1);
    double xv[4] = { -1.5, 0.25, 2.0, 3.0 }, vv[4] = { 1, -2, 0.5, 4 };
    lg_tensor *x = T_FROM(ctx, LG_F64, xv, 4), *v = T_FROM(ctx, LG_F64, vv, 4);
    lg_requires_grad(ctx, x, true);
    lg_tensor *f = lg_sum(ctx, lg_pow_scalar(ctx, x, 3), 0, NULL, false);
    lg_tensor *g, *hv;
    lg_grad_opts o = lg_grad_opts_default();
    o.create_graph = true;
    cr_assert_eq(lg_grad(ctx, 1, &f, NULL, 1, &x, &g, &o), LG_OK, "%s", lg_ctx_errmsg(ctx));
    double want[4];
    for (int i = 0; i < 4; i++)
        want[i] = 3 * xv[i] * xv[i];
    expect_close(g, want, 4, 1e-15, "gradient");
    cr_assert(lg_tensor_requires_grad(g), "create_graph: the gradient is on the tape");
    /* Hessian-vector product, twice on the same graph */
    for (int rep = 0; rep < 2; rep++) {
        cr_assert_eq(lg_hvp(ctx, f, 1, &x, &v, &hv, false), LG_OK, "%s", lg_ctx_errmsg(ctx));
        for (int i = 0; i < 4; i++)
            want[i] = 6 * xv[i] * vv[i];
        expect_close(hv, want, 4, 1e-15, "hvp");
    }
    /* third derivative: d/dx sum(d/dx g) = 6 each */
    lg_tensor *g2, *g3;
    lg_tensor *sg = lg_sum(ctx, g, 0, NULL, false);
    cr_assert_eq(lg_grad(ctx, 1, &sg, NULL, 1, &x, &g2, &o), LG_OK, "%s", lg_ctx_errmsg(ctx));
    lg_tensor *sg2 = lg_sum(ctx, g2, 0, NULL, false);
    cr_assert_eq(lg_grad(ctx, 1, &sg2, NULL, 1, &x, &g3, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    for (int i = 0; i < 4; i++)
        want[i] = 6;
    expect_close(g3, want, 4, 1e-15, "third derivative");
    lg_ctx_free(ctx);
}

/* jvp of y = A x along v is A v; of exp(x) it is exp(x) v. */
Test(higher, jvp_is_the_jacobian_times_v)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *a = lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)), *x = lg_randn(ctx, LG_F64, 2, SHAPE(4, 1)),
              *v = lg_randn(ctx, LG_F64, 2, SHAPE(4, 1));
    lg_requires_grad(ctx, x, true);
    lg_tensor *y = lg_exp(ctx, lg_matmul(ctx, a, x)), *jv;
    cr_assert_eq(lg_jvp(ctx, y, 1, &x, &v, &jv, false), LG_OK, "%s", lg_ctx_errmsg(ctx));
    double want[3];
    for (int i = 0; i < 3; i++) {
        double ax = 0, av = 0;
        for (int k = 0; k < 4; k++)
            ax += get(a, i * 4 + k) * get(x, k), av += get(a, i * 4 + k) * get(v, k);
        want[i] = exp(ax) * av;
    }
    expect_close(jv, want, 3, 1e-14, "jvp");
    lg_ctx_free(ctx);
}

/* The penalty (|grad_x D(x)|^2 - 1)^2 of a small critic D, differentiated
 * with respect to D's weights through the input gradient, against central
 * differences (gradcheck of a function that calls lg_grad itself). */
static lg_tensor *penalty_fn(lg_ctx *c, lg_tensor *const *in, void *user)
{
    (void)user;
    lg_tensor *x = lg_mul_scalar(c, in[0], 1.0); /* an op result: a fresh input each call */
    lg_tensor *h = lg_softplus(c, lg_matmul_t(c, x, in[1], false, true), 1, 20);
    lg_tensor *d = lg_sum(c, lg_matmul(c, h, in[2]), 0, NULL, false);
    lg_tensor *gx;
    lg_grad_opts o = lg_grad_opts_default();
    o.create_graph = true;
    if (lg_grad(c, 1, &d, NULL, 1, &x, &gx, &o) != LG_OK)
        return NULL;
    lg_tensor *n2 = lg_sum(c, lg_square(c, gx), 1, (int[]){ 1 }, false);
    return lg_square(c, lg_add_scalar(c, n2, -1));
}

Test(higher, gradient_penalty_gradcheck)
{
    lg_ctx *ctx = test_ctx(5);
    lg_tensor *x = lg_randn(ctx, LG_F64, 2, SHAPE(3, 2)), *w1 = lg_randn(ctx, LG_F64, 2, SHAPE(4, 2)),
              *w2 = lg_randn(ctx, LG_F64, 2, SHAPE(4, 1));
    expect_gradcheck(ctx, penalty_fn, NULL, 3, (lg_tensor *[]){ x, w1, w2 }, "gradient penalty");
    lg_ctx_free(ctx);
}

/* gradgradcheck over composites of every twice-differentiable op family:
 * inputs a [3, 4] and b [4] (or [4, 4] for products), values in (0.3, 1.5)
 * so that logs, powers and kinks are away. */
typedef lg_tensor *(*mix)(lg_ctx *c, lg_tensor *a, lg_tensor *b);

static lg_tensor *mix_binary(lg_ctx *c, lg_tensor *a, lg_tensor *b)
{
    lg_tensor *t = lg_div(c, lg_mul(c, lg_exp(c, a), lg_tanh(c, b)), lg_add_scalar(c, lg_square(c, b), 1));
    t = lg_add(c, t, lg_sub(c, lg_pow(c, a, b), lg_xlogy(c, b, a)));
    return lg_add(c, t, lg_mul(c, lg_maximum(c, a, lg_mul_scalar(c, b, 1.1)),
                               lg_minimum(c, lg_neg(c, a), b)));
}
static lg_tensor *mix_unary(lg_ctx *c, lg_tensor *a, lg_tensor *b)
{
    lg_tensor *x = lg_sub(c, a, lg_mul_scalar(c, b, 1.3)); /* both signs, no kink near 0 */
    lg_tensor *parts[] = {
        lg_gelu(c, x, LG_GELU_NONE), lg_gelu(c, x, LG_GELU_TANH), lg_silu(c, x), lg_mish(c, x),
        lg_softplus(c, x, 2.0, 20), lg_elu(c, x, 0.7), lg_celu(c, x, 1.3), lg_selu(c, x),
        lg_softsign(c, x), lg_log_sigmoid(c, x), lg_sigmoid(c, x), lg_erf(c, x),
        lg_log1p(c, a), lg_expm1(c, x), lg_sqrt(c, a), lg_log(c, a), lg_abs(c, x),
        lg_mul(c, lg_relu(c, x), x), lg_hardswish(c, lg_mul_scalar(c, x, 2)),
        lg_mul(c, lg_leaky_relu(c, x, 0.1), x), lg_mul(c, lg_hardtanh(c, x, -0.9, 0.9), x),
        lg_mul(c, lg_clamp(c, x, -0.9, 0.9), x), lg_mul(c, lg_hardsigmoid(c, x), x),
        lg_mul(c, lg_sign(c, x), lg_square(c, x)), lg_pow_scalar(c, a, 2.5),
    };
    lg_tensor *s = parts[0];
    for (size_t i = 1; i < sizeof parts / sizeof parts[0]; i++)
        s = lg_add(c, s, lg_mul_scalar(c, parts[i], 1.0 + 0.1 * (double)i));
    return s;
}
static lg_tensor *mix_reduce(lg_ctx *c, lg_tensor *a, lg_tensor *b)
{
    lg_tensor *x = lg_mul(c, a, lg_exp(c, b));
    lg_tensor *s = lg_mul(c, lg_sum(c, lg_square(c, x), 1, (int[]){ 0 }, false),
                          lg_mean(c, x, 1, (int[]){ -1 }, true));
    s = lg_add(c, s, lg_square(c, lg_max(c, x, 1, (int[]){ 1 }, true, NULL)));
    s = lg_add(c, s, lg_square(c, lg_min(c, x, 1, (int[]){ 1 }, true, NULL)));
    s = lg_add(c, s, lg_square(c, lg_logsumexp(c, x, 1, (int[]){ 1 }, true)));
    return lg_add(c, s, lg_mul(c, lg_softmax(c, x, 1), lg_log_softmax(c, lg_square(c, x), 0)));
}
static lg_tensor *mix_matmul(lg_ctx *c, lg_tensor *a, lg_tensor *b)
{
    lg_tensor *bm = lg_reshape(c, lg_concat(c, 4, (lg_tensor *[]){ b, lg_square(c, b), lg_exp(c, b), lg_neg(c, b) }, 0), 2, SHAPE(4, 4));
    lg_tensor *p = lg_matmul_bias(c, lg_tanh(c, a), bm, lg_sigmoid(c, b), false, true);
    lg_tensor *q = lg_matmul_t(c, p, lg_square(c, a), true, false); /* [4, 4] */
    lg_tensor *r = lg_matmul(c, lg_reshape(c, lg_square(c, a), 3, SHAPE(3, 1, 4)), lg_square(c, bm));
    lg_tensor *bb = lg_expand(c, lg_reshape(c, bm, 3, SHAPE(1, 4, 4)), 3, SHAPE(3, 4, 4));
    lg_tensor *t = lg_matmul_t(c, lg_reshape(c, a, 3, SHAPE(3, 4, 1)), lg_tanh(c, bb), true, false);
    return lg_add(c, lg_sum(c, lg_square(c, q), 0, NULL, false),
                  lg_add(c, lg_sum(c, lg_square(c, r), 0, NULL, false), lg_sum(c, lg_square(c, t), 0, NULL, false)));
}
static lg_tensor *mix_shape(lg_ctx *c, lg_tensor *a, lg_tensor *b)
{
    int64_t iv[5] = { 2, 0, 2, 1, 2 }, gv[6] = { 0, 3, 1, 1, 2, 0 };
    lg_tensor *idx = lg_tensor_from(c, LG_I64, iv, 1, SHAPE(5));
    lg_tensor *gi = lg_tensor_from(c, LG_I64, gv, 2, SHAPE(3, 2));
    lg_tensor *x = lg_mul(c, a, b);
    lg_tensor *s1 = lg_slice(c, lg_square(c, x), 1, 1, 4, 2);
    lg_tensor *s2 = lg_index_select(c, lg_exp(c, x), 0, idx);
    lg_tensor *s3 = lg_gather(c, lg_square(c, x), 1, gi);
    lg_tensor *s4 = lg_permute(c, lg_reshape(c, lg_tanh(c, x), 3, SHAPE(3, 2, 2)), (int[]){ 2, 0, 1 });
    lg_tensor *s5 = lg_clone(c, lg_cast(c, lg_square(c, x), LG_F64));
    lg_tensor *s6 = lg_where(c, lg_gt(c, a, b), lg_square(c, a), lg_exp(c, b));
    lg_tensor *parts[] = { lg_reshape(c, s1, 1, SHAPE(-1)), lg_reshape(c, s2, 1, SHAPE(-1)),
                           lg_reshape(c, lg_square(c, s3), 1, SHAPE(-1)), lg_reshape(c, lg_square(c, s4), 1, SHAPE(-1)),
                           lg_reshape(c, lg_square(c, s5), 1, SHAPE(-1)), lg_reshape(c, lg_square(c, s6), 1, SHAPE(-1)) };
    lg_tensor *all = lg_concat(c, 6, parts, 0);
    return lg_mul(c, all, lg_square(c, all));
}
static const struct mix_row {
    const char *name;
    mix f;
} mixes[] = { { "binary", mix_binary }, { "unary", mix_unary }, { "reduce", mix_reduce },
              { "matmul", mix_matmul }, { "shape", mix_shape } };

static lg_tensor *mix_call(lg_ctx *c, lg_tensor *const *in, void *user)
{
    return ((const struct mix_row *)user)->f(c, in[0], in[1]);
}

Test(higher, gradgradcheck_every_family)
{
    for (size_t k = 0; k < sizeof mixes / sizeof mixes[0]; k++) {
        lg_ctx *ctx = test_ctx(11 + k);
        lg_tensor *a = rand_avoiding(ctx, LG_F64, 2, SHAPE(3, 4), 0.3, 1.5, NULL, 0, 0);
        lg_tensor *b = rand_avoiding(ctx, LG_F64, 1, SHAPE(4), 0.3, 1.5, NULL, 0, 0);
        lg_gradcheck_report r;
        lg_status st = lg_gradgradcheck(ctx, mix_call, (void *)&mixes[k], 2,
                                        (lg_tensor *[]){ a, b }, NULL, &r);
        cr_assert_eq(st, LG_OK, "%s: %s", mixes[k].name, lg_ctx_errmsg(ctx));
        cr_assert(r.checked == 16, "%s: %lld checked", mixes[k].name, (long long)r.checked);
        cr_assert(r.ok, "%s: worst input %d element %lld: analytic %.12g numeric %.12g",
                  mixes[k].name, r.worst_input, (long long)r.worst_index, r.worst_analytic,
                  r.worst_numeric);
        expect_gradcheck(ctx, mix_call, (void *)&mixes[k], 2, (lg_tensor *[]){ a, b },
                         mixes[k].name);
        lg_ctx_free(ctx);
    }
}

/* A walk that did not retain consumes the ops it went through, also those
 * another gradient shares: walking them again is an error, not a gradient
 * missing that path (it gave 4 instead of 12 here). */
Test(higher, a_consumed_path_is_an_error)
{
    lg_ctx *ctx = test_ctx(1);
    double two = 2;
    lg_tensor *x = T_FROM(ctx, LG_F64, &two, 1), *g, *g2;
    lg_requires_grad(ctx, x, true);
    lg_tensor *f = lg_sum(ctx, lg_mul(ctx, x, lg_square(ctx, x)), 0, NULL, false);
    lg_grad_opts o = lg_grad_opts_default();
    o.create_graph = true;
    cr_assert_eq(lg_grad(ctx, 1, &f, NULL, 1, &x, &g, &o), LG_OK);
    lg_tensor *sg = lg_sum(ctx, g, 0, NULL, false);
    cr_assert_eq(lg_grad(ctx, 1, &sg, NULL, 1, &x, &g2, NULL), LG_OK); /* consumes square */
    expect_close(g2, (double[]){ 12 }, 1, 1e-15, "second derivative");
    cr_assert_eq(lg_grad(ctx, 1, &f, NULL, 1, &x, &g, NULL), LG_ERR_STATE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "already used"), "%s", lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
}

Test(higher, lg_grad_errors)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = lg_randn(ctx, LG_F64, 1, SHAPE(3)), *z = lg_randn(ctx, LG_F64, 1, SHAPE(3));
    lg_requires_grad(ctx, x, true);
    lg_tensor *y = lg_exp(ctx, x), *g = NULL;
    /* a non-scalar output without grad_outputs */
    cr_assert_eq(lg_grad(ctx, 1, &y, NULL, 1, &x, &g, NULL), LG_ERR_NULL);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "grad_outputs[0] is NULL"), "%s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    /* an input that does not require grad */
    lg_tensor *s = lg_sum(ctx, y, 0, NULL, false);
    cr_assert_eq(lg_grad(ctx, 1, &s, NULL, 1, &z, &g, NULL), LG_ERR_STATE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "inputs[0] does not require grad"), "%s",
              lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    /* an unreached input: an error, or NULL with allow_unused */
    lg_tensor *w = lg_randn(ctx, LG_F64, 1, SHAPE(3));
    lg_requires_grad(ctx, w, true);
    cr_assert_eq(lg_grad(ctx, 1, &s, NULL, 1, &w, &g, NULL), LG_ERR_STATE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "not reached"), "%s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    lg_grad_opts o = lg_grad_opts_default();
    o.allow_unused = true;
    o.retain_graph = LG_RETAIN_YES;
    lg_tensor *two[2];
    cr_assert_eq(lg_grad(ctx, 1, &s, NULL, 2, (lg_tensor *[]){ w, x }, two, &o), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    cr_assert_null(two[0]);
    cr_assert_not_null(two[1]);
    /* a bad retain value */
    o.retain_graph = (lg_retain)7;
    cr_assert_eq(lg_grad(ctx, 1, &s, NULL, 1, &x, &g, &o), LG_ERR_VALUE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "retain_graph = 7"), "%s", lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
}

/* The normalisation family (var, std, layer_norm, batch_norm, group_norm):
 * one case per option combination, its inputs x (and weight, bias when
 * affine), float64. */
enum { N_VAR, N_STD, N_LAYER, N_BATCH, N_GROUP };
typedef struct norm_mix {
    const char *name;
    int op, ndim;
    int64_t shape[4];
    int naxes, axes[3];   /* var, std (naxes 0: every axis) */
    bool unbiased, keep;  /* var, std */
    int nnorm;            /* layer_norm: trailing dims normalised */
    bool training, stats; /* batch_norm: batch statistics; running stats given */
    int64_t groups;       /* group_norm */
    bool w, b;            /* affine weight, bias */
    lg_tensor *rm, *rv;   /* batch_norm's running stats (made by the test) */
} norm_mix;

/* var and std of x [2, 3, 4]: (unbiased, keepdim, naxes, axes...) */
#define VAR_MIX(name, op, u, kd, na, ...)                                                          \
    { name, op, 3, { 2, 3, 4 }, .naxes = na, .axes = { __VA_ARGS__ }, .unbiased = u, .keep = kd }

/* clang-format off */
static const norm_mix norm_mixes[] = {
    VAR_MIX("var axis 1", N_VAR, true, false, 1, 1),
    VAR_MIX("var axis -1 biased keepdim", N_VAR, false, true, 1, -1),
    VAR_MIX("var axes 0, 2 keepdim", N_VAR, true, true, 2, 0, 2),
    VAR_MIX("var axes 2, 0 biased", N_VAR, false, false, 2, 2, 0),
    VAR_MIX("var every axis", N_VAR, true, false, 0, 0),
    VAR_MIX("var every axis biased", N_VAR, false, false, 0, 0),
    VAR_MIX("std axis 1", N_STD, true, false, 1, 1),
    VAR_MIX("std axis -1 biased keepdim", N_STD, false, true, 1, -1),
    VAR_MIX("std axes 0, 2 keepdim", N_STD, true, true, 2, 0, 2),
    VAR_MIX("std axes 0, 1, 2 biased keepdim", N_STD, false, true, 3, 0, 1, 2),
    VAR_MIX("std every axis", N_STD, true, false, 0, 0),
    VAR_MIX("std every axis biased", N_STD, false, false, 0, 0),
    { "layer_norm [4]", N_LAYER, 3, { 2, 3, 4 }, .nnorm = 1 },
    { "layer_norm [4] affine", N_LAYER, 3, { 2, 3, 4 }, .nnorm = 1, .w = true, .b = true },
    { "layer_norm [3, 4]", N_LAYER, 3, { 2, 3, 4 }, .nnorm = 2 },
    { "layer_norm [3, 4] affine", N_LAYER, 3, { 2, 3, 4 }, .nnorm = 2, .w = true, .b = true },
    { "layer_norm [3, 4] weight only", N_LAYER, 3, { 2, 3, 4 }, .nnorm = 2, .w = true },
    { "layer_norm [5] of [5] bias only", N_LAYER, 1, { 5 }, .nnorm = 1, .b = true },
    { "batch_norm 1d training", N_BATCH, 2, { 4, 3 }, .training = true },
    { "batch_norm 1d training affine stats", N_BATCH, 2, { 4, 3 }, .training = true,
      .stats = true, .w = true, .b = true },
    { "batch_norm 1d eval", N_BATCH, 2, { 4, 3 }, .stats = true },
    { "batch_norm 1d eval affine", N_BATCH, 2, { 4, 3 }, .stats = true, .w = true, .b = true },
    { "batch_norm [2, 3, 4] training affine", N_BATCH, 3, { 2, 3, 4 }, .training = true,
      .w = true, .b = true },
    { "batch_norm 2d training", N_BATCH, 4, { 2, 3, 2, 2 }, .training = true, .stats = true },
    { "batch_norm 2d training affine", N_BATCH, 4, { 2, 3, 2, 2 }, .training = true, .w = true,
      .b = true },
    { "batch_norm 2d eval", N_BATCH, 4, { 2, 3, 2, 2 }, .stats = true },
    { "batch_norm 2d eval affine", N_BATCH, 4, { 2, 3, 2, 2 }, .stats = true, .w = true,
      .b = true },
    { "group_norm 1 group", N_GROUP, 3, { 2, 6, 3 }, .groups = 1 },
    { "group_norm 2 groups affine", N_GROUP, 3, { 2, 6, 3 }, .groups = 2, .w = true, .b = true },
    { "group_norm 3 groups weight only", N_GROUP, 3, { 2, 6, 3 }, .groups = 3, .w = true },
    { "group_norm 6 groups affine", N_GROUP, 3, { 2, 6, 3 }, .groups = 6, .w = true, .b = true },
    { "group_norm 2 groups of [N, C]", N_GROUP, 2, { 3, 4 }, .groups = 2, .w = true, .b = true },
    { "group_norm 2 groups 2d", N_GROUP, 4, { 2, 4, 2, 2 }, .groups = 2, .b = true },
};
/* clang-format on */

/* The op alone. */
static lg_tensor *norm_mix_op(lg_ctx *c, lg_tensor *const *in, const norm_mix *m)
{
    lg_tensor *x = in[0], *w = m->w ? in[1] : NULL, *b = m->b ? in[m->w ? 2 : 1] : NULL;
    switch (m->op) {
    case N_VAR: return lg_var(c, x, m->naxes, m->naxes ? m->axes : NULL, m->unbiased, m->keep);
    case N_STD: return lg_std(c, x, m->naxes, m->naxes ? m->axes : NULL, m->unbiased, m->keep);
    case N_LAYER: return lg_layer_norm(c, x, m->nnorm, m->shape + m->ndim - m->nnorm, w, b, 1e-5);
    case N_BATCH: /* momentum 0.3: training updates the running stats, unused there */
        return lg_batch_norm(c, x, m->rm, m->rv, w, b, m->training, 0.3, 1e-5);
    default: return lg_group_norm(c, x, m->groups, w, b, 1e-5);
    }
}

/* The op followed by y tanh(y), so that the taped backward's dependence
 * on its upstream gradient is differentiated too. */
static lg_tensor *norm_mix_call(lg_ctx *c, lg_tensor *const *in, void *user)
{
    lg_tensor *y = norm_mix_op(c, in, user);
    return lg_mul(c, y, lg_tanh(c, y));
}

/* x and the affine inputs of case m (weights [C] or normalized_shape). */
static int norm_mix_inputs(lg_ctx *ctx, norm_mix *m, lg_dtype d, lg_tensor **xs)
{
    int n = 0;
    xs[n++] = lg_randn(ctx, d, m->ndim, m->shape);
    int wnd = m->op == N_LAYER ? m->nnorm : 1;
    const int64_t *ws = m->op == N_LAYER ? m->shape + m->ndim - m->nnorm : m->shape + 1;
    if (m->w)
        xs[n++] = lg_rand(ctx, d, wnd, ws, 0.5, 1.5);
    if (m->b)
        xs[n++] = lg_randn(ctx, d, wnd, ws);
    m->rm = m->rv = NULL;
    if (m->op == N_BATCH && m->stats) {
        m->rm = lg_randn(ctx, d, 1, m->shape + 1);
        m->rv = lg_rand(ctx, d, 1, m->shape + 1, 0.5, 2);
    }
    return n;
}

Test(higher, gradgradcheck_normalisation)
{
    for (size_t k = 0; k < sizeof norm_mixes / sizeof norm_mixes[0]; k++) {
        lg_ctx *ctx = test_ctx(40 + k);
        norm_mix m = norm_mixes[k];
        lg_tensor *xs[3];
        int n = norm_mix_inputs(ctx, &m, LG_F64, xs);
        int64_t total = 0;
        for (int i = 0; i < n; i++)
            total += lg_tensor_numel(xs[i]);
        lg_gradcheck_report r;
        lg_status st = lg_gradgradcheck(ctx, norm_mix_call, &m, n, xs, NULL, &r);
        cr_assert_eq(st, LG_OK, "%s: %s", m.name, lg_ctx_errmsg(ctx));
        cr_assert(r.checked == total, "%s: %lld checked of %lld", m.name, (long long)r.checked,
                  (long long)total);
        cr_assert(r.ok,
                  "%s: max abs err %.3g; worst input %d element %lld: analytic %.12g numeric "
                  "%.12g",
                  m.name, r.max_abs_err, r.worst_input, (long long)r.worst_index, r.worst_analytic,
                  r.worst_numeric);
        expect_gradcheck(ctx, norm_mix_call, &m, n, xs, m.name);
        lg_ctx_free(ctx);
    }
}

/* lg_grad's first-order gradients (through the taped backwards) against
 * lg_backward's kernels, float32 and float64, for every case above; then
 * var and std at their edges (a constant row: std's gradient 0; one
 * element unbiased: NaN; a 0-d x: var g inf, std NaN). */
Test(higher, normalisation_lg_grad_equals_lg_backward)
{
    for (int dt = 0; dt < 2; dt++) {
        lg_dtype d = dt ? LG_F64 : LG_F32;
        for (size_t k = 0; k < sizeof norm_mixes / sizeof norm_mixes[0]; k++) {
            lg_ctx *ctx = test_ctx(70 + k);
            norm_mix m = norm_mixes[k];
            lg_tensor *xs[3], *g[3];
            int n = norm_mix_inputs(ctx, &m, d, xs);
            for (int i = 0; i < n; i++)
                lg_requires_grad(ctx, xs[i], true);
            lg_tensor *y = norm_mix_op(ctx, xs, &m);
            lg_tensor *u = lg_randn(ctx, d, lg_tensor_ndim(y), lg_tensor_shape(y));
            cr_assert_eq(lg_grad(ctx, 1, &y, &u, n, xs, g, NULL), LG_OK, "%s: %s", m.name,
                         lg_ctx_errmsg(ctx));
            y = norm_mix_op(ctx, xs, &m);
            cr_assert_eq(lg_backward_with(ctx, y, u), LG_OK, "%s: %s", m.name, lg_ctx_errmsg(ctx));
            for (int i = 0; i < n; i++) {
                char what[96];
                snprintf(what, sizeof what, "%s (%s), input %d", m.name, dt ? "f64" : "f32", i);
                expect_close_to(g[i], lg_tensor_grad(xs[i]), d == LG_F32 ? 1e-6 : 1e-14, what);
            }
            lg_ctx_free(ctx);
        }
    }
    for (int is_std = 0; is_std < 2; is_std++)
        for (int e = 0; e < 3; e++) {
            lg_ctx *ctx = test_ctx(3);
            lg_tensor *k = e == 0 ? lg_full(ctx, LG_F64, 2, SHAPE(2, 3), 1.5)
                                  : (e == 1 ? lg_randn(ctx, LG_F64, 2, SHAPE(2, 1))
                                            : lg_scalar(ctx, LG_F64, 0.25));
            lg_requires_grad(ctx, k, true);
            int na = e == 2 ? 0 : 1;
            lg_tensor *y = is_std ? lg_std(ctx, k, na, (int[]){ 1 }, true, false)
                                  : lg_var(ctx, k, na, (int[]){ 1 }, true, false);
            lg_tensor *u = lg_full(ctx, LG_F64, lg_tensor_ndim(y), lg_tensor_shape(y), -2), *gk;
            cr_assert_eq(lg_grad(ctx, 1, &y, &u, 1, &k, &gk, NULL), LG_OK, "%s",
                         lg_ctx_errmsg(ctx));
            double want = e == 0 ? 0 : (e == 2 && !is_std ? -INFINITY : NAN);
            for (int64_t i = 0; i < lg_tensor_numel(k); i++)
                cr_assert(isnan(want) ? isnan(get(gk, i)) : get(gk, i) == want,
                          "%s edge %d: grad[%lld] = %g, expected %g", is_std ? "std" : "var", e,
                          (long long)i, get(gk, i), want);
            lg_ctx_free(ctx);
        }
}

/* batch_norm in training: the running stats are updated by the forward
 * once; neither the taped backward nor a second derivative updates them. */
Test(higher, batch_norm_taped_backward_leaves_running_stats)
{
    lg_ctx *ctx = test_ctx(9);
    lg_tensor *x = lg_randn(ctx, LG_F64, 3, SHAPE(4, 3, 2)),
              *w = lg_rand(ctx, LG_F64, 1, SHAPE(3), 0.5, 1.5);
    lg_tensor *rm = lg_zeros(ctx, LG_F64, 1, SHAPE(3)), *rv = lg_ones(ctx, LG_F64, 1, SHAPE(3));
    lg_requires_grad(ctx, x, true);
    lg_requires_grad(ctx, w, true);
    lg_tensor *y = lg_batch_norm(ctx, x, rm, rv, w, NULL, true, 0.5, 1e-5);
    lg_tensor *f = lg_sum(ctx, lg_mul(ctx, y, lg_tanh(ctx, y)), 0, NULL, false);
    double m0[3], v0[3];
    for (int c = 0; c < 3; c++)
        m0[c] = get(rm, c), v0[c] = get(rv, c);
    cr_assert(m0[0] != 0 && v0[0] != 1, "the forward updates the running stats");
    lg_grad_opts o = lg_grad_opts_default();
    o.create_graph = true;
    lg_tensor *g[2], *h;
    cr_assert_eq(lg_grad(ctx, 1, &f, NULL, 2, (lg_tensor *[]){ x, w }, g, &o), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    lg_tensor *s = lg_sum(ctx, lg_square(ctx, g[0]), 0, NULL, false);
    cr_assert_eq(lg_grad(ctx, 1, &s, NULL, 1, &w, &h, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    expect_close(rm, m0, 3, 0, "running_mean after lg_grad");
    expect_close(rv, v0, 3, 0, "running_var after lg_grad");
    lg_ctx_free(ctx);
}

/* The GRU ops (autograd/gru_cell.c), whose taped backwards rebuild the
 * cell and the recurrence from public ops: batch 2, input 3 (the layer's),
 * hidden 2, 3 steps, float64. */
typedef struct gru_case {
    bool h0, b_hh, reverse;
    lg_tensor *lengths; /* NULL: every row runs 3 steps */
    lg_rnn *net;        /* the nn layer's cases */
} gru_case;

/* in: gi, gh, h[, b_hh] (user non-NULL: with b_hh) */
static lg_tensor *gru_cell_fn(lg_ctx *c, lg_tensor *const *in, void *user)
{
    return lg_gru_gates(c, in[0], in[1], user ? in[3] : NULL, in[2]);
}

/* in: xw, w_hh[, h0][, b_hh] as the gru_case says */
static lg_tensor *gru_seq_fn(lg_ctx *c, lg_tensor *const *in, void *user)
{
    const gru_case *k = user;
    int i = 2;
    lg_tensor *h0 = k->h0 ? in[i++] : NULL, *b = k->b_hh ? in[i++] : NULL;
    return lg_gru_sequence(c, in[0], in[1], b, h0, k->lengths, k->reverse);
}

/* The case's nn GRU (net) of x and h0 (its parameters are persistent):
 * the output and h_n joined. */
static lg_tensor *gru_layer_fn(lg_ctx *c, lg_tensor *const *in, void *user)
{
    const gru_case *k = user;
    lg_rnn_result res;
    if (lg_rnn_forward(c, k->net, in[0], k->lengths, k->h0 ? in[1] : NULL, NULL, &res) != LG_OK)
        return NULL;
    lg_tensor *parts[2] = { lg_reshape(c, res.output, 1, SHAPE(-1)),
                            lg_reshape(c, res.h_n, 1, SHAPE(-1)) };
    return lg_concat(c, 2, parts, 0);
}

/* lg_gradgradcheck of fn passes (float64, default tolerances). */
static void expect_gradgradcheck(lg_ctx *ctx, lg_gradcheck_fn fn, void *user, int n,
                                 lg_tensor *const *xs, const char *what)
{
    lg_gradcheck_report r;
    lg_status st = lg_gradgradcheck(ctx, fn, user, n, xs, NULL, &r);
    cr_assert_eq(st, LG_OK, "%s: %s", what, lg_ctx_errmsg(ctx));
    cr_assert(r.checked > 0 && r.ok,
              "%s: worst input %d element %lld: analytic %.12g numeric %.12g", what, r.worst_input,
              (long long)r.worst_index, r.worst_analytic, r.worst_numeric);
}

/* The case's inputs of lg_gru_sequence (xw, w_hh[, h0][, b_hh]) into xs;
 * returns their count. */
static int gru_seq_inputs(lg_ctx *ctx, lg_dtype dt, const gru_case *k, lg_tensor **xs)
{
    int n = 0;
    xs[n++] = lg_randn(ctx, dt, 3, SHAPE(3, 2, 6));
    xs[n++] = lg_randn(ctx, dt, 2, SHAPE(6, 2));
    if (k->h0)
        xs[n++] = lg_randn(ctx, dt, 2, SHAPE(2, 2));
    if (k->b_hh)
        xs[n++] = lg_randn(ctx, dt, 1, SHAPE(6));
    return n;
}

Test(higher, gradgradcheck_gru)
{
    lg_ctx *ctx = test_ctx(21);
    lg_tensor *cell[4] = { lg_randn(ctx, LG_F64, 2, SHAPE(2, 6)),
                           lg_randn(ctx, LG_F64, 2, SHAPE(2, 6)),
                           lg_randn(ctx, LG_F64, 2, SHAPE(2, 2)),
                           lg_randn(ctx, LG_F64, 1, SHAPE(6)) };
    expect_gradgradcheck(ctx, gru_cell_fn, ctx, 4, cell, "gru_cell with b_hh");
    expect_gradgradcheck(ctx, gru_cell_fn, NULL, 3, cell, "gru_cell without b_hh");
    lg_tensor *len = T_FROM(ctx, LG_I64, ((int64_t[]){ 1, 3 }), 2);
    for (int m = 0; m < 16; m++) { /* every combination of h0, b_hh, lengths, reverse */
        gru_case k = {
            .h0 = m & 1, .b_hh = m & 2, .lengths = m & 4 ? len : NULL, .reverse = m & 8
        };
        lg_tensor *xs[4];
        int n = gru_seq_inputs(ctx, LG_F64, &k, xs);
        char what[96];
        snprintf(what, sizeof what, "gru_sequence h0 %d b_hh %d lengths %d reverse %d", k.h0,
                 k.b_hh, k.lengths != NULL, k.reverse);
        expect_gradgradcheck(ctx, gru_seq_fn, &k, n, xs, what);
    }
    /* through a two-layer bidirectional nn GRU (with and without biases),
     * with respect to x [3, 2, 3] and h0 [4, 2, 2] */
    lg_tensor *x = lg_randn(ctx, LG_F64, 3, SHAPE(3, 2, 3));
    lg_tensor *h0 = lg_randn(ctx, LG_F64, 3, SHAPE(4, 2, 2));
    for (int m = 0; m < 8; m++) {
        lg_rnn_opts o = lg_rnn_opts_default();
        o.dtype = LG_F64, o.num_layers = 2, o.bidirectional = true, o.no_bias = m & 4;
        char what[96];
        snprintf(what, sizeof what, "gru%d", m);
        gru_case k = { .h0 = m & 1,
                       .lengths = m & 2 ? len : NULL,
                       .net = lg_rnn_new(ctx, what, LG_GRU, 3, 2, &o) };
        cr_assert_not_null(k.net, "%s", lg_ctx_errmsg(ctx));
        snprintf(what, sizeof what, "nn GRU h0 %d lengths %d bias %d", k.h0, k.lengths != NULL,
                 !o.no_bias);
        expect_gradgradcheck(ctx, gru_layer_fn, &k, k.h0 ? 2 : 1, (lg_tensor *[]){ x, h0 }, what);
    }
    lg_ctx_free(ctx);
}

/* lg_grad's first-order gradients of lg_gru_sequence (through the rebuilt
 * recurrence) equal lg_backward's (the fused kernel's), float32 and
 * float64, for every combination of h0, b_hh, lengths and reverse; and
 * the same for lg_gru_gates with and without b_hh. */
Test(higher, gru_lg_grad_equals_lg_backward)
{
    for (int dt = 0; dt < 2; dt++) {
        lg_dtype d = dt ? LG_F64 : LG_F32;
        double tol = d == LG_F32 ? 1e-5 : 1e-12;
        for (int m = 0; m < 18; m++) {
            lg_ctx *ctx = test_ctx(31 + (uint64_t)m);
            lg_tensor *len = T_FROM(ctx, LG_I64, ((int64_t[]){ 3, 2 }), 2);
            gru_case k = {
                .h0 = m & 1, .b_hh = m & 2, .lengths = m & 4 ? len : NULL, .reverse = m & 8
            };
            lg_tensor *xs[4], *g[4], *u;
            int n;
            lg_gradcheck_fn fn = m < 16 ? gru_seq_fn : gru_cell_fn;
            void *user = m < 16 ? (void *)&k : m == 16 ? ctx : NULL;
            if (m < 16) {
                n = gru_seq_inputs(ctx, d, &k, xs);
                u = lg_randn(ctx, d, 3, SHAPE(3, 2, 2));
            } else { /* the cell: gi, gh, h[, b_hh] */
                n = m == 16 ? 4 : 3;
                xs[0] = lg_randn(ctx, d, 2, SHAPE(2, 6)), xs[1] = lg_randn(ctx, d, 2, SHAPE(2, 6));
                xs[2] = lg_randn(ctx, d, 2, SHAPE(2, 2)), xs[3] = lg_randn(ctx, d, 1, SHAPE(6));
                u = lg_randn(ctx, d, 2, SHAPE(2, 2));
            }
            for (int i = 0; i < n; i++)
                lg_requires_grad(ctx, xs[i], true);
            lg_tensor *y = fn(ctx, xs, user);
            cr_assert_eq(lg_grad(ctx, 1, &y, &u, n, xs, g, NULL), LG_OK, "case %d: %s", m,
                         lg_ctx_errmsg(ctx));
            y = fn(ctx, xs, user);
            cr_assert_eq(lg_backward_with(ctx, y, u), LG_OK, "case %d: %s", m, lg_ctx_errmsg(ctx));
            for (int i = 0; i < n; i++) {
                char what[64];
                snprintf(what, sizeof what, "%s case %d input %d", dt ? "f64" : "f32", m, i);
                expect_close_to(g[i], lg_tensor_grad(xs[i]), tol, what);
            }
            lg_ctx_free(ctx);
        }
    }
}

/* gradgradcheck through the taped backwards of conv, conv_transpose,
 * max_pool, avg_pool and interpolate over their option grids, float64,
 * each output through a nonlinearity (tanh for the convolutions, square
 * for the pools and resampling) so that the second derivatives are not
 * trivial. */
typedef struct cp_case {
    const char *name;
    int kind; /* 0 conv, 1 conv_transpose, 2 max_pool, 3 avg_pool, 4 adaptive, 5 interpolate */
    int spatial;
    bool bias;
    int64_t n, cin, h, w;   /* the input */
    int64_t w0, w1, kh, kw; /* the weight [w0, w1, kh, kw]; pools: the kernel or out size */
    lg_conv_opts co;
    lg_max_pool_opts mo;
    lg_avg_pool_opts ao;
    lg_interpolate_opts io;
} cp_case;

static lg_tensor *cp_fn(lg_ctx *c, lg_tensor *const *in, void *user)
{
    const cp_case *k = user;
    lg_tensor *x = in[0], *b = k->bias ? in[2] : NULL, *y = NULL;
    bool two = k->spatial == 2;
    switch (k->kind) {
    case 0:
        y = two ? lg_conv2d(c, x, in[1], b, &k->co) : lg_conv1d(c, x, in[1], b, &k->co);
        return lg_tanh(c, lg_mul_scalar(c, y, 0.4));
    case 1:
        y = two ? lg_conv_transpose2d(c, x, in[1], b, &k->co)
                : lg_conv_transpose1d(c, x, in[1], b, &k->co);
        return lg_tanh(c, lg_mul_scalar(c, y, 0.4));
    case 2:
        y = two ? lg_max_pool2d(c, x, k->kh, k->kw, &k->mo, NULL)
                : lg_max_pool1d(c, x, k->kw, &k->mo, NULL);
        break;
    case 3:
        y = two ? lg_avg_pool2d(c, x, k->kh, k->kw, &k->ao) : lg_avg_pool1d(c, x, k->kw, &k->ao);
        break;
    case 4:
        y = two ? lg_adaptive_avg_pool2d(c, x, k->kh, k->kw) : lg_adaptive_avg_pool1d(c, x, k->kw);
        break;
    default: y = lg_interpolate(c, x, &k->io);
    }
    return lg_square(c, y);
}

/* The grid: each case starts from the defaults, then its options. */
static cp_case *cp_add(cp_case *cs, int *n, const char *name, int kind, int spatial, bool bias,
                       const int64_t x[4], const int64_t k[4])
{
    cp_case *c = &cs[(*n)++];
    *c = (cp_case){ .name = name,
                    .kind = kind,
                    .spatial = spatial,
                    .bias = bias,
                    .n = x[0],
                    .cin = x[1],
                    .h = x[2],
                    .w = x[3],
                    .w0 = k[0],
                    .w1 = k[1],
                    .kh = k[2],
                    .kw = k[3],
                    .co = lg_conv_opts_default(),
                    .mo = lg_max_pool_opts_default(),
                    .ao = lg_avg_pool_opts_default(),
                    .io = lg_interpolate_opts_default() };
    return c;
}
/* name, kind, spatial, bias, x {N (0: unbatched), C, H, W}, {W0, W1, kH, kW} */
#define CP(nm, kd, sp, bs, X, K) cp_add(cs, &n, nm, kd, sp, bs, (int64_t[])X, (int64_t[])K)
#define L(...)                                                                                     \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

static int cp_conv_cases(cp_case *cs, int n)
{
    cp_case *c = CP("conv2d stride 2 padding 1 bias", 0, 2, true, L(2, 3, 5, 6), L(4, 3, 3, 2));
    c->co.stride = 2, c->co.padding = 1;
    c = CP("conv2d dilation 2 groups 2", 0, 2, false, L(1, 4, 6, 6), L(4, 2, 2, 2));
    c->co.dilation = 2, c->co.groups = 2;
    c = CP("conv2d depthwise (groups = channels, x2) bias", 0, 2, true, L(1, 3, 5, 6),
           L(6, 1, 3, 3));
    c->co.groups = 3, c->co.padding_hw[0] = 1, c->co.padding_hw[1] = 0;
    c->co.stride_hw[0] = 1, c->co.stride_hw[1] = 2;
    c = CP("conv2d 1x1 groups 2", 0, 2, true, L(2, 4, 3, 3), L(2, 2, 1, 1));
    c->co.groups = 2;
    c = CP("conv1d stride 2 dilation 2 padding 2 groups 2 bias", 0, 1, true, L(2, 4, 1, 9),
           L(6, 2, 1, 3));
    c->co.stride = 2, c->co.dilation = 2, c->co.padding = 2, c->co.groups = 2;
    c = CP("conv1d unbatched padding same (even kernel) bias", 0, 1, true, L(0, 3, 1, 7),
           L(2, 3, 1, 4));
    c->co.padding_kind = LG_PADDING_SAME;
    c = CP("conv_transpose2d stride 2 padding 1 output_padding bias", 1, 2, true, L(1, 4, 3, 3),
           L(4, 3, 3, 3));
    c->co.stride = 2, c->co.padding = 1;
    c->co.output_padding_hw[0] = 1, c->co.output_padding_hw[1] = 1;
    c = CP("conv_transpose2d groups 2 dilation 2 bias", 1, 2, true, L(1, 4, 3, 4), L(4, 2, 2, 3));
    c->co.groups = 2, c->co.dilation = 2;
    c = CP("conv_transpose1d stride 3 dilation 2 output_padding 2 groups 2", 1, 1, false,
           L(2, 4, 1, 4), L(4, 1, 1, 2));
    c->co.stride = 3, c->co.dilation = 2, c->co.output_padding = 2, c->co.groups = 2;
    return n;
}

static int cp_pool_cases(cp_case *cs, int n)
{
    cp_case *c =
        CP("max_pool2d padding dilation ceil_mode", 2, 2, false, L(1, 2, 7, 6), L(0, 0, 3, 2));
    c->mo.stride = 2, c->mo.padding = 1, c->mo.ceil_mode = true;
    c->mo.dilation_hw[0] = 2, c->mo.dilation_hw[1] = 1;
    c = CP("max_pool1d stride 2 padding 1 ceil_mode", 2, 1, false, L(2, 3, 1, 8), L(0, 0, 1, 3));
    c->mo.stride = 2, c->mo.padding = 1, c->mo.ceil_mode = true;
    c = CP("max_pool2d overlapping", 2, 2, false, L(1, 2, 5, 5), L(0, 0, 3, 3));
    c->mo.stride = 1;
    c = CP("avg_pool2d count_include_pad off ceil_mode", 3, 2, false, L(1, 2, 6, 7), L(0, 0, 3, 3));
    c->ao.stride = 2, c->ao.padding = 1, c->ao.count_include_pad = false, c->ao.ceil_mode = true;
    c = CP("avg_pool2d divisor_override", 3, 2, false, L(1, 2, 5, 5), L(0, 0, 2, 3));
    c->ao.stride = 1, c->ao.padding = 1, c->ao.divisor_override = 4;
    c = CP("avg_pool1d ceil_mode count_include_pad", 3, 1, false, L(2, 2, 1, 8), L(0, 0, 1, 3));
    c->ao.stride = 2, c->ao.padding = 1, c->ao.ceil_mode = true;
    CP("adaptive_avg_pool2d 5x7 -> 3x4", 4, 2, false, L(1, 2, 5, 7), L(0, 0, 3, 4));
    CP("adaptive_avg_pool1d 7 -> 3", 4, 1, false, L(2, 2, 1, 7), L(0, 0, 1, 3));
    return n;
}

static int cp_interp_cases(cp_case *cs, int n)
{
    static const struct {
        const char *name;
        bool bilinear, align;
        int64_t h, w, oh, ow;
        double fh, fw;
    } io[] = {
        { "interpolate nearest factor 1.5", false, false, 3, 4, 0, 0, 1.5, 1.5 },
        { "interpolate nearest down and up", false, false, 4, 5, 2, 7, 0, 0 },
        { "interpolate bilinear", true, false, 3, 4, 5, 3, 0, 0 },
        { "interpolate bilinear factors", true, false, 4, 5, 0, 0, 1.7, 0.6 },
        { "interpolate bilinear align_corners", true, true, 3, 4, 5, 7, 0, 0 },
        { "interpolate bilinear align_corners down", true, true, 5, 6, 3, 4, 0, 0 },
        { "interpolate bilinear align_corners factors", true, true, 3, 4, 0, 0, 1.5, 2 },
    };
    for (size_t i = 0; i < sizeof io / sizeof io[0]; i++) {
        cp_case *c = CP(io[i].name, 5, 2, false, L(1, 2, io[i].h, io[i].w), L(0, 0, 0, 0));
        c->io.mode = io[i].bilinear ? LG_INTERP_BILINEAR : LG_INTERP_NEAREST;
        c->io.align_corners = io[i].align;
        c->io.size_hw[0] = io[i].oh, c->io.size_hw[1] = io[i].ow;
        c->io.scale_factor_hw[0] = io[i].fh, c->io.scale_factor_hw[1] = io[i].fw;
    }
    return n;
}
#undef L
#undef CP

/* x (n 0: unbatched), W and b of case k, float64 */
static int cp_inputs(lg_ctx *ctx, const cp_case *k, lg_tensor *in[3])
{
    int64_t xs[4], nd = 0;
    if (k->n)
        xs[nd++] = k->n;
    xs[nd++] = k->cin;
    if (k->spatial == 2)
        xs[nd++] = k->h;
    xs[nd++] = k->w;
    in[0] = lg_randn(ctx, LG_F64, (int)nd, xs);
    if (k->kind > 1)
        return 1;
    in[1] = k->spatial == 2 ? lg_randn(ctx, LG_F64, 4, SHAPE(k->w0, k->w1, k->kh, k->kw))
                            : lg_randn(ctx, LG_F64, 3, SHAPE(k->w0, k->w1, k->kw));
    /* output channels: conv W [Cout, ...], transposed W [Cin, Cout / G, ...] */
    int64_t cout = k->kind == 0 ? k->w0 : k->w1 * k->co.groups;
    in[2] = lg_randn(ctx, LG_F64, 1, SHAPE(cout));
    return k->bias ? 3 : 2;
}

Test(higher, gradgradcheck_conv_pool)
{
    cp_case cs[32];
    int ncase = cp_interp_cases(cs, cp_pool_cases(cs, cp_conv_cases(cs, 0)));
    for (int i = 0; i < ncase; i++) {
        lg_ctx *ctx = test_ctx(40 + (uint64_t)i);
        lg_tensor *in[3];
        int nin = cp_inputs(ctx, &cs[i], in);
        lg_gradcheck_report r;
        lg_status st = lg_gradgradcheck(ctx, cp_fn, &cs[i], nin, in, NULL, &r);
        cr_assert_eq(st, LG_OK, "%s: %s", cs[i].name, lg_ctx_errmsg(ctx));
        cr_assert(r.checked > 0, "%s: nothing checked", cs[i].name);
        cr_assert(r.ok, "%s: worst input %d element %lld: analytic %.12g numeric %.12g", cs[i].name,
                  r.worst_input, (long long)r.worst_index, r.worst_analytic, r.worst_numeric);
        /* gradgradcheck differentiates the taped gradient with the kernels:
         * that the taped gradient is the kernels' one is checked here */
        lg_tensor *fresh[3], *g[3];
        for (int j = 0; j < nin; j++)
            lg_requires_grad(ctx,
                             fresh[j] =
                                 lg_tensor_from(ctx, LG_F64, lg_tensor_data(in[j]),
                                                lg_tensor_ndim(in[j]), lg_tensor_shape(in[j])),
                             true);
        lg_tensor *y = cp_fn(ctx, fresh, &cs[i]);
        lg_tensor *u = lg_randn(ctx, LG_F64, lg_tensor_ndim(y), lg_tensor_shape(y));
        lg_grad_opts o = lg_grad_opts_default();
        o.retain_graph = LG_RETAIN_YES;
        cr_assert_eq(lg_grad(ctx, 1, &y, &u, nin, fresh, g, &o), LG_OK, "%s: %s", cs[i].name,
                     lg_ctx_errmsg(ctx));
        cr_assert_eq(lg_backward_with(ctx, y, u), LG_OK, "%s", lg_ctx_errmsg(ctx));
        for (int j = 0; j < nin; j++)
            expect_close_to(g[j], lg_tensor_grad(fresh[j]), 1e-12, cs[i].name);
        lg_ctx_free(ctx);
    }
}

/* lg_grad's first-order gradients through conv2d and conv_transpose2d
 * (stride, padding, groups, bias), with and without create_graph, equal
 * lg_backward's kernels in float32 and float64. */
Test(higher, conv_lg_grad_equals_lg_backward)
{
    for (int dt = 0; dt < 2; dt++)
        for (int tr = 0; tr < 2; tr++)
            for (int create = 0; create < 2; create++) {
                lg_dtype d = dt ? LG_F64 : LG_F32;
                lg_ctx *ctx = test_ctx(60);
                lg_conv_opts co = lg_conv_opts_default();
                co.stride = 2, co.padding = 1, co.groups = 2;
                lg_tensor *x = lg_randn(ctx, d, 4, SHAPE(3, 4, 7, 6));
                lg_tensor *w = tr ? lg_randn(ctx, d, 4, SHAPE(4, 3, 3, 2))
                                  : lg_randn(ctx, d, 4, SHAPE(6, 2, 3, 2));
                lg_tensor *b = lg_randn(ctx, d, 1, SHAPE(6));
                lg_tensor *in[3] = { x, w, b }, *g[3];
                if (tr)
                    co.output_padding = 1;
                for (int i = 0; i < 3; i++)
                    lg_requires_grad(ctx, in[i], true);
                lg_tensor *y =
                    tr ? lg_conv_transpose2d(ctx, x, w, b, &co) : lg_conv2d(ctx, x, w, b, &co);
                lg_tensor *u = lg_randn(ctx, d, lg_tensor_ndim(y), lg_tensor_shape(y));
                lg_grad_opts o = lg_grad_opts_default();
                o.create_graph = create;
                cr_assert_eq(lg_grad(ctx, 1, &y, &u, 3, in, g, &o), LG_OK, "%s",
                             lg_ctx_errmsg(ctx));
                y = tr ? lg_conv_transpose2d(ctx, x, w, b, &co) : lg_conv2d(ctx, x, w, b, &co);
                cr_assert_eq(lg_backward_with(ctx, y, u), LG_OK, "%s", lg_ctx_errmsg(ctx));
                for (int i = 0; i < 3; i++)
                    expect_close_to(g[i], lg_tensor_grad(in[i]), d == LG_F32 ? 1e-5 : 1e-12,
                                    tr ? "conv_transpose2d: lg_grad vs lg_backward"
                                       : "conv2d: lg_grad vs lg_backward");
                lg_ctx_free(ctx);
            }
}

Test(higher, hvp_and_jvp_errors)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = lg_randn(ctx, LG_F64, 1, SHAPE(3)), *v2 = lg_randn(ctx, LG_F64, 1, SHAPE(2));
    lg_tensor *v32 = lg_randn(ctx, LG_F32, 1, SHAPE(3)), *out = NULL;
    lg_requires_grad(ctx, x, true);
    lg_tensor *y = lg_exp(ctx, x), *f = lg_sum(ctx, y, 0, NULL, false);
    EXPECT_ERR(ctx, lg_hvp(ctx, y, 1, &x, &x, &out, false), LG_ERR_SHAPE,
               "lg_hvp: f has shape [3], expected one element");
    EXPECT_ERR(ctx, lg_hvp(ctx, f, 1, &x, &v2, &out, false), LG_ERR_SHAPE,
               "v[0] is float64 [2], expected inputs[0]'s float64 [3]");
    EXPECT_ERR(ctx, lg_jvp(ctx, y, 1, &x, &v32, &out, false), LG_ERR_SHAPE,
               "lg_jvp: v[0] is float32 [3]");
    EXPECT_ERR(ctx, lg_jvp(ctx, y, 0, &x, &x, &out, false), LG_ERR_VALUE, "n = 0");
    EXPECT_ERR(ctx, lg_hvp(ctx, f, 1, &x, NULL, &out, false), LG_ERR_NULL, "v is NULL");
    /* a linear function: the Hessian is zero, given as zeros */
    lg_tensor *lin = lg_sum(ctx, lg_mul_scalar(ctx, x, 3), 0, NULL, false);
    cr_assert_eq(lg_hvp(ctx, lin, 1, &x, &x, &out, false), LG_OK, "%s", lg_ctx_errmsg(ctx));
    expect_close(out, (double[]){ 0, 0, 0 }, 3, 0, "zero Hessian");
    lg_ctx_free(ctx);
}

/* lg_backward_ex: create_graph makes a step leaf's .grad differentiable
 * (PyTorch's x.grad after backward(create_graph=True)); a parameter's
 * .grad takes the values; retain_graph lets a second backward add again. */
Test(higher, backward_with_create_graph_and_retain)
{
    lg_ctx *ctx = test_ctx(1);
    double xv[3] = { 1, -2, 0.5 };
    lg_tensor *x = T_FROM(ctx, LG_F64, xv, 3), *p = lg_param_new(ctx, "p", LG_F64, 1, SHAPE(3));
    lg_copy_into(ctx, p, x);
    lg_requires_grad(ctx, x, true);
    lg_tensor *f = lg_sum(ctx, lg_mul(ctx, lg_pow_scalar(ctx, x, 3), p), 0, NULL, false);
    lg_backward_opts o = lg_backward_opts_default();
    o.create_graph = true;
    cr_assert_eq(lg_backward_ex(ctx, f, NULL, &o), LG_OK, "%s", lg_ctx_errmsg(ctx));
    lg_tensor *gx = lg_tensor_grad(x);
    double want[3], want2[3];
    for (int i = 0; i < 3; i++)
        want[i] = 3 * xv[i] * xv[i] * xv[i], want2[i] = 6 * xv[i] * xv[i];
    expect_close(gx, want, 3, 1e-15, "x.grad = 3 x^2 p");
    cr_assert(lg_tensor_requires_grad(gx), "x.grad is on the tape");
    double wp[3] = { 1, -8, 0.125 };
    expect_close(lg_tensor_grad(p), wp, 3, 1e-15, "p.grad = x^3 (values)");
    lg_tensor *s = lg_sum(ctx, gx, 0, NULL, false), *g2;
    cr_assert_eq(lg_grad(ctx, 1, &s, NULL, 1, &x, &g2, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    expect_close(g2, want2, 3, 1e-15, "d sum(x.grad) / dx = 6 x p"); /* p = x here: 6 x^2 */
    /* retain without create_graph: two backwards through one graph add up */
    lg_tensor *y = T_FROM(ctx, LG_F64, xv, 3);
    lg_requires_grad(ctx, y, true);
    lg_tensor *h = lg_sum(ctx, lg_exp(ctx, y), 0, NULL, false);
    lg_backward_opts r = lg_backward_opts_default();
    r.retain_graph = LG_RETAIN_YES;
    cr_assert_eq(lg_backward_ex(ctx, h, NULL, &r), LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_backward_ex(ctx, h, NULL, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    for (int i = 0; i < 3; i++)
        want[i] = 2 * exp(xv[i]);
    expect_close(lg_tensor_grad(y), want, 3, 1e-15, "two backwards");
    EXPECT_ERR(ctx, lg_backward_ex(ctx, h, NULL, NULL), LG_ERR_STATE, "already");
    lg_ctx_free(ctx);
}
