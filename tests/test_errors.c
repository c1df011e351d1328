/* test_errors.c: every family of public calls rejects bad input with a
 * status and a message naming the function, the argument and the rule;
 * the first error sticks; NULL inputs propagate; nothing is modified. */
#include "helpers.h"

#include <string.h>

Test(errors, creation)
{
    lg_ctx *ctx = test_ctx(1);
    EXPECT_ERR(ctx, lg_zeros(ctx, LG_F32, 9, SHAPE(1, 1, 1, 1, 1, 1, 1, 1, 1)), LG_ERR_SHAPE,
               "lg_zeros: ndim = 9");
    EXPECT_ERR(ctx, lg_zeros(ctx, LG_F32, 2, SHAPE(2, -1)), LG_ERR_SHAPE, "shape[1] = -1");
    EXPECT_ERR(ctx, lg_zeros(ctx, LG_F32, 2, NULL), LG_ERR_NULL, "shape is NULL");
    EXPECT_ERR(ctx, lg_zeros(ctx, (lg_dtype)7, 1, SHAPE(2)), LG_ERR_DTYPE, "dtype 7");
    EXPECT_ERR(ctx, lg_randn(ctx, LG_I64, 1, SHAPE(2)), LG_ERR_DTYPE, "lg_randn: dtype int64");
    EXPECT_ERR(ctx, lg_rand(ctx, LG_F32, 1, SHAPE(2), 3, 1), LG_ERR_VALUE, "low <= high");
    EXPECT_ERR(ctx, lg_arange(ctx, LG_F32, 0, 1, 0), LG_ERR_VALUE, "step nonzero");
    EXPECT_ERR(ctx, lg_tensor_from(ctx, LG_F32, NULL, 1, SHAPE(2)), LG_ERR_NULL, "data is NULL");
    EXPECT_ERR(ctx, lg_zeros(ctx, LG_F32, 3, SHAPE(INT64_MAX / 4, 4, 4)), LG_ERR_SHAPE, "overflow");
    EXPECT_ERR(ctx, lg_param_new(ctx, "p", LG_I64, 1, SHAPE(2)), LG_ERR_DTYPE, "lg_param_new");
    EXPECT_ERR(ctx, lg_ctx_set_threads(ctx, -1), LG_ERR_VALUE, "lg_ctx_set_threads: n = -1");
    lg_ctx_free(ctx);
}

Test(errors, queries_and_copies)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = lg_ones(ctx, LG_F32, 1, SHAPE(3));
    EXPECT_ERR(ctx, lg_item(ctx, x), LG_ERR_SHAPE, "lg_item: t has 3 elements");
    cr_assert(isnan(lg_item(ctx, x)));
    EXPECT_ERR(ctx, lg_tensor_print(ctx, x, NULL, 0), LG_ERR_NULL, "f is NULL");
    lg_tensor *p = lg_param_new(ctx, "p", LG_F32, 1, SHAPE(2));
    double keep[] = { 0, 0 };
    EXPECT_ERR(ctx, lg_copy_into(ctx, p, x), LG_ERR_SHAPE,
               "dst has shape [2] but src has shape [3]");
    expect_close(p, keep, 2, 0, "dst untouched");
    EXPECT_ERR(ctx, lg_requires_grad(ctx, lg_neg(ctx, x), true), LG_ERR_STATE, "step leaf");
    EXPECT_ERR(ctx, lg_requires_grad(ctx, lg_ones(ctx, LG_I64, 1, SHAPE(1)), true), LG_ERR_DTYPE,
               "int64");
    lg_ctx_free(ctx);
}

Test(errors, wrong_shapes)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *a = lg_ones(ctx, LG_F32, 2, SHAPE(2, 3)), *b = lg_ones(ctx, LG_F32, 2, SHAPE(4, 3));
    EXPECT_ERR(ctx, lg_add(ctx, a, b), LG_ERR_SHAPE,
               "lg_add: shapes [2, 3] and [4, 3] do not broadcast");
    EXPECT_ERR(ctx, lg_where(ctx, lg_ones(ctx, LG_F32, 1, SHAPE(5)), a, a), LG_ERR_SHAPE,
               "lg_where");
    EXPECT_ERR(ctx, lg_matmul(ctx, a, a), LG_ERR_SHAPE, "lg_matmul: inner sizes differ");
    EXPECT_ERR(ctx, lg_matmul(ctx, lg_ones(ctx, LG_F32, 1, SHAPE(3)), a), LG_ERR_SHAPE,
               "at least 2 dims");
    EXPECT_ERR(ctx,
               lg_matmul(ctx, lg_ones(ctx, LG_F32, 3, SHAPE(2, 2, 3)),
                         lg_ones(ctx, LG_F32, 3, SHAPE(3, 3, 2))),
               LG_ERR_SHAPE, "batch shapes");
    EXPECT_ERR(ctx, lg_reshape(ctx, a, 2, SHAPE(4, 2)), LG_ERR_SHAPE, "lg_reshape");
    EXPECT_ERR(ctx, lg_reshape(ctx, a, 2, SHAPE(-1, 4)), LG_ERR_SHAPE, "cannot infer");
    EXPECT_ERR(ctx, lg_concat(ctx, 2, (lg_tensor *[]){ a, b }, 1), LG_ERR_SHAPE,
               "lg_concat: xs[1]");
    EXPECT_ERR(ctx, lg_stack(ctx, 2, (lg_tensor *[]){ a, b }, 0), LG_ERR_SHAPE, "lg_stack: xs[1]");
    EXPECT_ERR(ctx, lg_gather(ctx, a, 1, lg_zeros(ctx, LG_I64, 1, SHAPE(2))), LG_ERR_SHAPE,
               "lg_gather: index");
    EXPECT_ERR(ctx, lg_index_select(ctx, a, 0, lg_zeros(ctx, LG_I64, 2, SHAPE(1, 1))), LG_ERR_SHAPE,
               "expected 1");
    EXPECT_ERR(ctx, lg_max(ctx, lg_ones(ctx, LG_F32, 2, SHAPE(0, 3)), 1, (int[]){ 0 }, false, NULL),
               LG_ERR_SHAPE, "empty axis");
    EXPECT_ERR(ctx, lg_backward_with(ctx, a, b), LG_ERR_SHAPE, "upstream");
    EXPECT_ERR(ctx, lg_slice(ctx, lg_scalar(ctx, LG_F32, 1), 0, 0, 1, 1), LG_ERR_SHAPE, "0-d");
    lg_ctx_free(ctx);
}

Test(errors, wrong_dtypes)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *f = lg_ones(ctx, LG_F32, 1, SHAPE(3)), *d = lg_ones(ctx, LG_F64, 1, SHAPE(3));
    lg_tensor *i = lg_zeros(ctx, LG_I64, 1, SHAPE(3));
    EXPECT_ERR(ctx, lg_add(ctx, f, d), LG_ERR_DTYPE,
               "lg_add: operands have dtypes float32 and float64");
    EXPECT_ERR(ctx, lg_exp(ctx, i), LG_ERR_DTYPE, "lg_exp: x has dtype int64");
    EXPECT_ERR(
        ctx,
        lg_matmul(ctx, lg_ones(ctx, LG_F32, 2, SHAPE(1, 1)), lg_ones(ctx, LG_F64, 2, SHAPE(1, 1))),
        LG_ERR_DTYPE, "lg_matmul");
    EXPECT_ERR(ctx, lg_gather(ctx, f, 0, d), LG_ERR_DTYPE,
               "lg_gather: index has dtype float64, expected int64");
    EXPECT_ERR(ctx, lg_one_hot(ctx, f, 3, LG_F32), LG_ERR_DTYPE, "labels has dtype float32");
    EXPECT_ERR(ctx, lg_cast(ctx, f, LG_I64), LG_ERR_DTYPE, "float to int64");
    EXPECT_ERR(ctx, lg_backward(ctx, lg_sum(ctx, f, 0, NULL, false)), LG_ERR_STATE,
               "does not require grad");
    lg_ctx_free(ctx);
}

Test(errors, axes_and_indices_out_of_range)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *a = lg_ones(ctx, LG_F32, 2, SHAPE(2, 3));
    EXPECT_ERR(ctx, lg_sum(ctx, a, 1, (int[]){ 2 }, false), LG_ERR_AXIS,
               "lg_sum: axis 2 is out of range for 2 dims");
    EXPECT_ERR(ctx, lg_mean(ctx, a, 2, (int[]){ 1, -1 }, false), LG_ERR_AXIS, "appears twice");
    EXPECT_ERR(ctx, lg_softmax(ctx, a, -3), LG_ERR_AXIS, "lg_softmax: axis -3");
    EXPECT_ERR(ctx, lg_log_softmax(ctx, a, 2), LG_ERR_AXIS, "lg_log_softmax");
    EXPECT_ERR(ctx, lg_permute(ctx, a, (int[]){ 0, 0 }), LG_ERR_AXIS, "repeats");
    EXPECT_ERR(ctx, lg_transpose(ctx, a, 0, 5), LG_ERR_AXIS, "lg_transpose");
    EXPECT_ERR(ctx, lg_norm(ctx, a, 2, 1, (int[]){ 9 }, false), LG_ERR_AXIS, "lg_norm");
    EXPECT_ERR(ctx, lg_norm(ctx, a, NAN, 0, NULL, false), LG_ERR_VALUE, "lg_norm: p is NaN");
    int64_t bad[] = { 0, 3 }, neg[] = { -1 };
    EXPECT_ERR(ctx, lg_index_select(ctx, a, 1, T_FROM(ctx, LG_I64, bad, 2)), LG_ERR_INDEX,
               "lg_index_select: index[1] = 3 is out of range");
    EXPECT_ERR(ctx, lg_gather(ctx, a, 0, T_FROM(ctx, LG_I64, bad, 1, 2)), LG_ERR_INDEX,
               "lg_gather: index[1] = 3");
    EXPECT_ERR(ctx, lg_one_hot(ctx, T_FROM(ctx, LG_I64, neg, 1), 4, LG_F32), LG_ERR_INDEX,
               "index[0] = -1");
    EXPECT_ERR(ctx, lg_narrow(ctx, a, 1, 2, 2), LG_ERR_INDEX, "lg_narrow");
    EXPECT_ERR(ctx, lg_slice(ctx, a, 1, 0, 2, 0), LG_ERR_VALUE, "step = 0");
    lg_ctx_free(ctx);
}

Test(errors, first_error_sticks_and_null_propagates)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *a = lg_ones(ctx, LG_F32, 1, SHAPE(3));
    lg_tensor *bad = lg_softmax(ctx, a, 4); /* first error: axis */
    cr_assert_null(bad);
    /* a whole forward pass on the NULL: every call returns NULL */
    lg_tensor *y = lg_sum(ctx, lg_exp(ctx, lg_add(ctx, bad, a)), 0, NULL, false);
    cr_assert_null(y);
    cr_assert_eq(lg_backward(ctx, y), LG_ERR_AXIS);
    /* later, different errors do not overwrite the first */
    lg_add(ctx, a, lg_ones(ctx, LG_F64, 1, SHAPE(3)));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_AXIS);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "lg_softmax: axis 4") != NULL, "%s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_ctx_status(ctx), LG_OK);
    /* a NULL argument with no earlier error is itself the error */
    cr_assert_null(lg_neg(ctx, NULL));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_NULL);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "lg_neg: x is NULL") != NULL);
    /* NULL ctx: nothing happens, nothing crashes */
    cr_assert_null(lg_add(NULL, a, a));
    cr_assert_eq(lg_backward(NULL, a), LG_ERR_NULL);
    cr_assert_eq(lg_ctx_status(NULL), LG_ERR_NULL);
    lg_ctx_free(ctx);
}

Test(errors, stale_tensor_families)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = lg_ones(ctx, LG_F64, 1, SHAPE(3));
    lg_requires_grad(ctx, x, true);
    lg_tensor *loss = lg_sum(ctx, x, 0, NULL, false);
    lg_step_end(ctx);
    EXPECT_ERR(ctx, lg_backward(ctx, loss), LG_ERR_STALE, "lg_backward: loss is a stale tensor");
    EXPECT_ERR(ctx, lg_item(ctx, loss), LG_ERR_STALE, "lg_item");
    EXPECT_ERR(ctx, lg_sum(ctx, x, 0, NULL, false), LG_ERR_STALE, "lg_sum: x is a stale tensor");
    EXPECT_ERR(ctx, lg_matmul(ctx, x, x), LG_ERR_STALE, "lg_matmul");
    EXPECT_ERR(ctx, lg_tensor_print(ctx, x, stderr, 0), LG_ERR_STALE, "lg_tensor_print");
    EXPECT_ERR(ctx, lg_copy_into(ctx, lg_param_new(ctx, NULL, LG_F64, 1, SHAPE(3)), x),
               LG_ERR_STALE, "src");
    lg_ctx_free(ctx);
}

static lg_tensor *ident(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)ctx, (void)user;
    return xs[0];
}

static lg_tensor *fails(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user;
    return lg_softmax(ctx, xs[0], 7);
}

Test(errors, gradcheck)
{
    lg_ctx *ctx = test_ctx(1);
    lg_gradcheck_report r;
    lg_tensor *f = lg_ones(ctx, LG_F32, 1, SHAPE(2)), *d = lg_ones(ctx, LG_F64, 1, SHAPE(2));
    EXPECT_ERR(ctx, lg_gradcheck(ctx, ident, NULL, 1, &f, NULL, &r), LG_ERR_DTYPE,
               "inputs[0] has dtype float32");
    EXPECT_ERR(ctx, lg_gradcheck(ctx, NULL, NULL, 1, &d, NULL, &r), LG_ERR_NULL, "fn is NULL");
    EXPECT_ERR(ctx, lg_gradcheck(ctx, ident, NULL, 0, &d, NULL, &r), LG_ERR_VALUE, "n = 0");
    EXPECT_ERR(ctx, lg_gradcheck(ctx, fails, NULL, 1, &d, NULL, &r), LG_ERR_AXIS, "lg_softmax");
    cr_assert_not(r.ok);
    lg_ctx_free(ctx);
}

/* lg_interpolate's options: each bad one is LG_ERR_VALUE naming the call
 * and the field; shapes are LG_ERR_SHAPE; the input is never written. */
static lg_interpolate_opts interp_with(lg_interp_mode mode, int64_t size, double factor)
{
    lg_interpolate_opts o = lg_interpolate_opts_default();
    o.mode = mode, o.size = size, o.scale_factor = factor;
    return o;
}

Test(errors, interpolate_options)
{
    lg_ctx *ctx = test_ctx(1);
    static const double v[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    lg_tensor *x = lg_tensor_from(ctx, LG_F64, v, 4, SHAPE(1, 2, 2, 2));
    lg_interpolate_opts o;
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, NULL), LG_ERR_VALUE,
               "lg_interpolate: size, size_hw, scale_factor, scale_factor_hw: none is given");
    o = lg_interpolate_opts_default();
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_VALUE, "none is given");
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &(lg_interpolate_opts){ 0 }), LG_ERR_VALUE,
               "none is given");
    o = interp_with(LG_INTERP_NEAREST, 4, 2);
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_VALUE,
               "lg_interpolate: size and scale_factor: both are given");
    o = interp_with(LG_INTERP_BILINEAR, 0, 0);
    o.size_hw[0] = o.size_hw[1] = 6, o.scale_factor_hw[0] = o.scale_factor_hw[1] = 2;
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_VALUE,
               "lg_interpolate: size_hw and scale_factor_hw: both are given");
    o = interp_with(LG_INTERP_NEAREST, 4, 0);
    o.align_corners = true;
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_VALUE,
               "lg_interpolate: align_corners: only for bilinear");
    o = interp_with((lg_interp_mode)7, 4, 0);
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_VALUE, "lg_interpolate: mode = 7");
    o = interp_with(LG_INTERP_NEAREST, -3, 0);
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_VALUE, "lg_interpolate: size = -3");
    o = interp_with(LG_INTERP_NEAREST, 3, 0);
    o.size_hw[0] = 4, o.size_hw[1] = 4;
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_VALUE,
               "lg_interpolate: size = 3 and size_hw = {4, 4}: both are written");
    o = interp_with(LG_INTERP_NEAREST, 0, 0);
    o.size_hw[0] = 4;
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_VALUE,
               "lg_interpolate: size_hw = {4, 0}: expected both >= 1");
    o = interp_with(LG_INTERP_NEAREST, 0, -2);
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_VALUE,
               "lg_interpolate: scale_factor = -2: expected finite and > 0");
    o = interp_with(LG_INTERP_NEAREST, 0, NAN);
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_VALUE, "lg_interpolate: scale_factor = nan");
    o = interp_with(LG_INTERP_BILINEAR, 0, INFINITY);
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_VALUE, "lg_interpolate: scale_factor = inf");
    o = interp_with(LG_INTERP_NEAREST, 0, 2);
    o.scale_factor_hw[0] = 2, o.scale_factor_hw[1] = 3;
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_VALUE,
               "lg_interpolate: scale_factor = 2 and scale_factor_hw = {2, 3}: both are written");
    o = interp_with(LG_INTERP_NEAREST, 0, 0);
    o.scale_factor_hw[1] = 2;
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_VALUE,
               "lg_interpolate: scale_factor_hw = {0, 2}: expected both finite and > 0");
    o = interp_with(LG_INTERP_NEAREST, 0, 1e300);
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_VALUE, "too large an output size");
    o = interp_with(LG_INTERP_NEAREST, INT64_MAX / 2, 0);
    EXPECT_ERR(ctx, lg_interpolate(ctx, x, &o), LG_ERR_SHAPE, "lg_interpolate");
    /* shapes */
    o = interp_with(LG_INTERP_NEAREST, 0, 0.25);
    EXPECT_ERR(
        ctx, lg_interpolate(ctx, x, &o), LG_ERR_SHAPE,
        "lg_interpolate: scale_factor: 0.25 times the input's size 2 gives an output size 0");
    o = interp_with(LG_INTERP_NEAREST, 4, 0);
    EXPECT_ERR(ctx, lg_interpolate(ctx, lg_ones(ctx, LG_F64, 3, SHAPE(2, 2, 2)), &o), LG_ERR_SHAPE,
               "lg_interpolate: input is [2, 2, 2], expected 4 dims (N, C, H, W)");
    EXPECT_ERR(ctx, lg_interpolate(ctx, lg_ones(ctx, LG_F64, 4, SHAPE(1, 1, 0, 2)), &o),
               LG_ERR_SHAPE, "expected non-empty H and W");
    EXPECT_ERR(ctx, lg_interpolate(ctx, lg_ones(ctx, LG_I64, 4, SHAPE(1, 1, 2, 2)), &o),
               LG_ERR_DTYPE, "lg_interpolate");
    expect_close(x, v, 8, 0, "input untouched");
    /* the first error sticks; NULL propagates without overwriting it */
    lg_ctx_clear_error(ctx);
    o = interp_with(LG_INTERP_NEAREST, 0, 0);
    cr_assert_null(lg_interpolate(ctx, x, &o));
    o = interp_with(LG_INTERP_NEAREST, -1, 0);
    cr_assert_null(lg_interpolate(ctx, x, &o));
    cr_assert_null(lg_interpolate(ctx, NULL, &o));
    cr_assert(strstr(lg_ctx_errmsg(ctx), "none is given"), "%s", lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
}
