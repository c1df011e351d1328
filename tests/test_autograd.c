/* test_autograd.c: backward semantics, accumulation, no-grad, detach,
 * one backward per graph, gradcheck's own behaviour. */
#include "helpers.h"

#include <string.h>

Test(autograd, parameter_gradients_accumulate_until_zeroed)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 1, SHAPE(3));
    double wv[] = { 1, 2, 3 };
    lg_copy_into(ctx, w, from_doubles(ctx, LG_F64, wv, 1, SHAPE(3)));
    for (int step = 0; step < 2; step++) {
        /* loss = sum(w^2): dw = 2w */
        cr_assert_eq(lg_backward(ctx, lg_sum(ctx, lg_square(ctx, w), 0, NULL, false)), LG_OK);
        lg_step_end(ctx);
    }
    double twice[] = { 4, 8, 12 };
    expect_close(lg_tensor_grad(w), twice, 3, 0, "accumulated over two backwards");
    lg_zero_grad(ctx);
    double zero[] = { 0, 0, 0 };
    expect_close(lg_tensor_grad(w), zero, 3, 0, "zeroed");
    lg_ctx_free(ctx);
}

Test(autograd, leaves_and_intermediates_expose_gradients)
{
    lg_ctx *ctx = test_ctx(1);
    double xv[] = { 1, -2 };
    lg_tensor *x = from_doubles(ctx, LG_F32, xv, 1, SHAPE(2));
    cr_assert_eq(lg_requires_grad(ctx, x, true), LG_OK);
    lg_tensor *h = lg_mul_scalar(ctx, x, 3); /* h = 3x */
    lg_tensor *loss = lg_sum(ctx, lg_square(ctx, h), 0, NULL, false);
    cr_assert_str_eq(lg_tensor_op_name(loss), "sum");
    cr_assert_eq(lg_backward(ctx, loss), LG_OK);
    double dh[] = { 6, -12 }, dx[] = { 18, -36 };
    expect_close(lg_tensor_grad(h), dh, 2, 0, "intermediate gradient");
    expect_close(lg_tensor_grad(x), dx, 2, 0, "leaf gradient");
    lg_ctx_free(ctx);
}

Test(autograd, no_grad_and_detach_stop_gradients)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 1, SHAPE(2));
    lg_no_grad_begin(ctx);
    lg_tensor *y = lg_exp(ctx, w);
    lg_no_grad_end(ctx);
    cr_assert_not(lg_tensor_requires_grad(y));
    cr_assert_eq(lg_backward(ctx, lg_sum(ctx, y, 0, NULL, false)), LG_ERR_STATE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "does not require grad") != NULL);
    lg_ctx_clear_error(ctx);
    /* loss = sum(w * detach(w)): dw = detach(w) = 0 + ... w is 0, use exp */
    lg_tensor *e = lg_exp(ctx, w); /* e = 1 */
    lg_tensor *loss = lg_sum(ctx, lg_mul(ctx, e, lg_detach(ctx, e)), 0, NULL, false);
    cr_assert_eq(lg_backward(ctx, loss), LG_OK);
    double want[] = { 1, 1 }; /* d/dw e*c = e*c = 1, not 2 */
    expect_close(lg_tensor_grad(w), want, 2, 1e-15, "detach");
    lg_ctx_free(ctx);
}

Test(autograd, one_backward_per_graph)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 1, SHAPE(2));
    lg_tensor *h = lg_exp(ctx, w);
    lg_tensor *l1 = lg_sum(ctx, h, 0, NULL, false);
    cr_assert_eq(lg_backward(ctx, l1), LG_OK);
    cr_assert_eq(lg_backward(ctx, l1), LG_ERR_STATE, "second backward of the same loss");
    cr_assert(strstr(lg_ctx_errmsg(ctx), "already backpropagated") != NULL, "%s",
              lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    lg_tensor *l2 = lg_sum(ctx, lg_square(ctx, h), 0, NULL, false); /* reuses consumed h */
    cr_assert_eq(lg_backward(ctx, l2), LG_ERR_STATE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "already used by an earlier backward") != NULL, "%s",
              lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
}

Test(autograd, independent_graphs_in_one_step)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 1, SHAPE(1));
    lg_tensor *la = lg_sum(ctx, lg_mul_scalar(ctx, w, 2), 0, NULL, false);
    lg_tensor *lb = lg_sum(ctx, lg_mul_scalar(ctx, w, 5), 0, NULL, false);
    cr_assert_eq(lg_backward(ctx, la), LG_OK);
    cr_assert_eq(lg_backward(ctx, lb), LG_OK, "%s", lg_ctx_errmsg(ctx));
    double want[] = { 7 };
    expect_close(lg_tensor_grad(w), want, 1, 0, "both graphs");
    lg_ctx_free(ctx);
}

Test(autograd, non_scalar_needs_an_upstream)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 1, SHAPE(3));
    lg_tensor *y = lg_add_scalar(ctx, lg_mul_scalar(ctx, w, 2), 1);
    cr_assert_eq(lg_backward(ctx, y), LG_ERR_STATE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "expected one element") != NULL);
    lg_ctx_clear_error(ctx);
    double uv[] = { 1, 10, 100 };
    cr_assert_eq(lg_backward_with(ctx, y, from_doubles(ctx, LG_F64, uv, 1, SHAPE(3))), LG_OK);
    double want[] = { 2, 20, 200 };
    expect_close(lg_tensor_grad(w), want, 3, 0, "upstream");
    lg_ctx_free(ctx);
}

Test(autograd, float32_gradients_match_float64)
{
    lg_ctx *ctx = test_ctx(4);
    lg_tensor *x64 = lg_randn(ctx, LG_F64, 2, SHAPE(5, 7));
    lg_tensor *x32 = lg_cast(ctx, x64, LG_F32);
    lg_tensor *xs[2] = { lg_detach(ctx, lg_cast(ctx, x32, LG_F64)), lg_detach(ctx, x32) };
    lg_tensor *g[2];
    for (int k = 0; k < 2; k++) {
        lg_requires_grad(ctx, xs[k], true);
        lg_tensor *y = lg_log_softmax(ctx, lg_tanh(ctx, xs[k]), 1);
        cr_assert_eq(lg_backward(ctx, lg_mean(ctx, lg_mul(ctx, y, y), 0, NULL, false)), LG_OK);
        g[k] = lg_tensor_grad(xs[k]);
    }
    double want[35];
    for (int i = 0; i < 35; i++)
        want[i] = get(g[0], i);
    expect_close(g[1], want, 35, 1e-5, "float32 gradient");
    lg_ctx_free(ctx);
}

static lg_tensor *wrong_grad(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user; /* x * detach(x): analytic gradient x, true gradient 2x */
    return lg_mul(ctx, xs[0], lg_detach(ctx, xs[0]));
}

static lg_tensor *right_grad(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user;
    return lg_mul(ctx, xs[0], xs[0]);
}

Test(autograd, gradcheck_reports_a_wrong_gradient)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = lg_rand(ctx, LG_F64, 1, SHAPE(4), 1, 2);
    lg_gradcheck_report r;
    cr_assert_eq(lg_gradcheck(ctx, wrong_grad, NULL, 1, &x, NULL, &r), LG_OK);
    cr_assert_not(r.ok);
    cr_assert_eq(r.checked, 4);
    cr_assert_eq(r.worst_input, 0);
    cr_assert(fabs(r.worst_numeric - 2 * r.worst_analytic) < 1e-6 * fabs(r.worst_numeric),
              "numeric %g analytic %g", r.worst_numeric, r.worst_analytic);
    cr_assert_gt(r.max_rel_err, 0.3);
    cr_assert_eq(lg_gradcheck(ctx, right_grad, NULL, 1, &x, NULL, &r), LG_OK);
    cr_assert(r.ok);
    cr_assert_lt(r.max_abs_err, 1e-6);
    lg_ctx_free(ctx);
}

Test(autograd, gradcheck_leaves_the_step_untouched)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = lg_randn(ctx, LG_F64, 1, SHAPE(3));
    double before[3];
    memcpy(before, lg_tensor_data(x), sizeof before);
    lg_mem_stats m0 = lg_ctx_mem_stats(ctx);
    lg_ctx *twin = test_ctx(1);
    lg_randn(twin, LG_F64, 1, SHAPE(3));
    lg_gradcheck_report r;
    cr_assert_eq(lg_gradcheck(ctx, right_grad, NULL, 1, &x, NULL, &r), LG_OK);
    cr_assert_eq(memcmp(before, lg_tensor_data(x), sizeof before), 0, "inputs unchanged");
    cr_assert_null(lg_tensor_grad(x), "the user's input got no gradient");
    cr_assert_eq(lg_ctx_mem_stats(ctx).arena_used, m0.arena_used, "scratch released");
    cr_assert_eq(lg_rand_uniform(ctx), lg_rand_uniform(twin), "RNG stream unchanged");
    lg_ctx_free(ctx);
    lg_ctx_free(twin);
}

Test(autograd, tie_gradients_follow_pytorch)
{
    lg_ctx *ctx = test_ctx(1);
    double v[] = { 2, 2 }, lo[] = { 1, 2 };
    lg_tensor *a = from_doubles(ctx, LG_F64, v, 1, SHAPE(2)),
              *b = from_doubles(ctx, LG_F64, v, 1, SHAPE(2));
    lg_requires_grad(ctx, a, true);
    lg_requires_grad(ctx, b, true);
    cr_assert_eq(lg_backward(ctx, lg_sum(ctx, lg_maximum(ctx, a, b), 0, NULL, false)), LG_OK);
    double half[] = { 0.5, 0.5 };
    expect_close(lg_tensor_grad(a), half, 2, 0, "maximum tie splits");
    /* clamp passes the gradient at its bounds (inclusive) */
    lg_tensor *x = from_doubles(ctx, LG_F64, lo, 1, SHAPE(2));
    lg_requires_grad(ctx, x, true);
    cr_assert_eq(lg_backward(ctx, lg_sum(ctx, lg_clamp(ctx, x, 1, 2), 0, NULL, false)), LG_OK);
    double one[] = { 1, 1 };
    expect_close(lg_tensor_grad(x), one, 2, 0, "clamp at the bounds");
    /* relu and abs: zero gradient at zero */
    double zv[] = { 0 };
    lg_tensor *z = from_doubles(ctx, LG_F64, zv, 1, SHAPE(1));
    lg_requires_grad(ctx, z, true);
    cr_assert_eq(
        lg_backward(ctx, lg_sum(ctx, lg_add(ctx, lg_relu(ctx, z), lg_abs(ctx, z)), 0, NULL, false)),
        LG_OK);
    expect_close(lg_tensor_grad(z), zv, 1, 0, "relu + abs at 0");
    lg_ctx_free(ctx);
}

Test(autograd, stable_functions_at_extremes)
{
    lg_ctx *ctx = test_ctx(1);
    double xv[] = { -1000, -30, 0, 30, 1000 };
    lg_tensor *x = from_doubles(ctx, LG_F32, xv, 1, SHAPE(5));
    double ls[] = { -1000, -30, -log(2.0), -exp(-30.0), 0 };
    expect_close(lg_log_sigmoid(ctx, x), ls, 5, 1e-6, "log_sigmoid");
    double sp[] = { 0, exp(-30.0), log(2.0), 30, 1000 };
    expect_close(lg_softplus(ctx, x, 1, 20), sp, 5, 1e-6, "softplus");
    double sg[] = { 0, exp(-30.0), 0.5, 1, 1 };
    expect_close(lg_sigmoid(ctx, x), sg, 5, 1e-6, "sigmoid");
    /* logsumexp(30, 1000) = 1000 + log1p(exp(-970)) = 1000 in any precision */
    expect_close(lg_logsumexp(ctx, lg_narrow(ctx, x, 0, 3, 2), 0, NULL, false), (double[]){ 1000 },
                 1, 1e-6, "logsumexp");
    double nanv[] = { NAN, 1 };
    lg_tensor *n = from_doubles(ctx, LG_F64, nanv, 1, SHAPE(2));
    double relu_n[] = { NAN, 1 };
    expect_close(lg_relu(ctx, n), relu_n, 2, 0, "relu keeps NaN");
    expect_close(lg_clamp(ctx, n, 0, 0.5), (double[]){ NAN, 0.5 }, 2, 0, "clamp keeps NaN");
    expect_close(lg_max(ctx, n, 0, NULL, false, NULL), (double[]){ NAN }, 1, 0,
                 "max propagates NaN");
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

Test(autograd, xlogy_zero_conventions_follow_pytorch)
{
    lg_ctx *ctx = test_ctx(1);
    double xv[] = { 0, 0, 0, 2 }, yv[] = { 0, 3, NAN, 0 };
    lg_tensor *x = from_doubles(ctx, LG_F64, xv, 1, SHAPE(4)),
              *y = from_doubles(ctx, LG_F64, yv, 1, SHAPE(4));
    lg_requires_grad(ctx, x, true);
    lg_requires_grad(ctx, y, true);
    lg_tensor *z = lg_xlogy(ctx, x, y);
    expect_close(z, (double[]){ 0, 0, NAN, -INFINITY }, 4, 0, "xlogy value");
    cr_assert_eq(lg_backward_with(ctx, z, lg_ones(ctx, LG_F64, 1, SHAPE(4))), LG_OK);
    /* dx = log y, masked to 0 where x == 0 and y <= 0;  dy = x / y */
    expect_close(lg_tensor_grad(x), (double[]){ 0, log(3.0), NAN, -INFINITY }, 4, 1e-15,
                 "xlogy dx");
    expect_close(lg_tensor_grad(y), (double[]){ NAN, 0, NAN, INFINITY }, 4, 0, "xlogy dy");
    lg_ctx_free(ctx);
}

Test(autograd, numerics_check_names_the_first_op_that_made_a_nonfinite)
{
    lg_ctx *ctx = test_ctx(1);
    double v[] = { 1, 0, 2, 3 };
    lg_tensor *x = from_doubles(ctx, LG_F64, v, 1, SHAPE(4));
    lg_tensor *quiet = lg_log(ctx, x); /* not checked yet */
    cr_assert_null(lg_ctx_numerics_report(ctx));
    lg_ctx_check_numerics(ctx, true);
    lg_tensor *e = lg_exp(ctx, x); /* finite */
    cr_assert_null(lg_ctx_numerics_report(ctx));
    lg_tensor *l = lg_log(ctx, x);                 /* -inf at element 1 */
    lg_tensor *m = lg_mul(ctx, l, lg_neg(ctx, l)); /* carries it on: not the first */
    const char *r = lg_ctx_numerics_report(ctx);
    cr_assert_not_null(r);
    cr_assert_str_eq(r, "log produced -inf at element 1 from input [4] (leaf)");
    expect_close(m, (double[]){ -0.0, -INFINITY, -log(2.0) * log(2.0), -log(3.0) * log(3.0) }, 4,
                 1e-15, "values flow through");
    expect_ok(ctx);
    (void)quiet, (void)e;
    lg_ctx_free(ctx);
}

/* The grad-ready hook: each used parameter reported once, after the last
 * op using it, holding its final gradient then; the order is backward's
 * (the layer used last first); a parameter used twice (a shared weight) is
 * reported after its earlier use; an unused one is not reported. */
typedef struct ready_log {
    lg_tensor *seen[8];
    double first[8]; /* the gradient's first element when reported */
    int n;
} ready_log;

static void on_ready(lg_ctx *ctx, lg_tensor *p, void *user)
{
    (void)ctx;
    ready_log *r = user;
    cr_assert_lt(r->n, 8);
    r->seen[r->n] = p;
    r->first[r->n++] = lg_tensor_grad(p) ? ((double *)lg_tensor_data(lg_tensor_grad(p)))[0] : NAN;
}

Test(autograd, grad_ready_hook_reports_each_final_gradient_once)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *a = lg_param_new(ctx, "a", LG_F64, 2, SHAPE(3, 3));
    lg_tensor *b = lg_param_new(ctx, "b", LG_F64, 2, SHAPE(3, 3));
    lg_tensor *unused = lg_param_new(ctx, "unused", LG_F64, 1, SHAPE(2));
    lg_tensor *shared = lg_param_new(ctx, "shared", LG_F64, 2, SHAPE(3, 3));
    lg_tensor *ps[] = { a, b, shared };
    for (int i = 0; i < 3; i++)
        lg_copy_into(ctx, ps[i], lg_randn(ctx, LG_F64, 2, SHAPE(3, 3)));
    ready_log r = { .n = 0 };
    cr_assert_eq(lg_ctx_set_grad_ready_hook(ctx, on_ready, &r), LG_OK);
    lg_tensor *x = lg_randn(ctx, LG_F64, 2, SHAPE(4, 3));
    /* shared, a, shared again, b: backward meets b, then shared (later use), a, shared */
    lg_tensor *h = lg_tanh(ctx, lg_matmul(ctx, x, shared));
    h = lg_tanh(ctx, lg_matmul(ctx, h, a));
    h = lg_tanh(ctx, lg_matmul(ctx, h, shared));
    lg_tensor *loss = lg_sum(ctx, lg_matmul(ctx, h, b), 0, NULL, false);
    cr_assert_eq(lg_backward(ctx, loss), LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(r.n, 3, "%d parameters reported", r.n);
    cr_assert(r.seen[0] == b && r.seen[1] == a && r.seen[2] == shared,
              "the order is not backward's");
    for (int i = 0; i < 3; i++)
        cr_assert_eq(r.first[i], ((double *)lg_tensor_data(lg_tensor_grad(r.seen[i])))[0],
                     "%s was reported before its gradient was final", lg_tensor_name(r.seen[i]));
    (void)unused;
    /* a parameter used only by another output's graph, which stays on the
     * tape (shared): not reached, so not reported until that graph's own
     * backward; a, used by both graphs, is reported in the first backward
     * once its last use there (other's op, recorded first, walked last) is
     * passed */
    lg_step_end(ctx);
    r.n = 0;
    x = lg_randn(ctx, LG_F64, 2, SHAPE(4, 3));
    lg_tensor *other = lg_sum(ctx, lg_matmul(ctx, lg_matmul(ctx, x, shared), a), 0, NULL, false);
    loss = lg_sum(ctx, lg_matmul(ctx, lg_matmul(ctx, x, a), b), 0, NULL, false);
    cr_assert_eq(lg_backward(ctx, loss), LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert(r.n == 2 && r.seen[0] == b && r.seen[1] == a, "%d reported, the first %s", r.n,
              r.n ? lg_tensor_name(r.seen[0]) : "-");
    cr_assert_eq(lg_backward(ctx, other), LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert(r.n == 4 && r.seen[2] == a && r.seen[3] == shared, "%d reported", r.n);
    /* removed: no more reports */
    lg_step_end(ctx);
    cr_assert_eq(lg_ctx_set_grad_ready_hook(ctx, NULL, NULL), LG_OK);
    cr_assert_eq(lg_backward(ctx, lg_sum(ctx, lg_square(ctx, a), 0, NULL, false)), LG_OK);
    cr_assert_eq(r.n, 4);
    lg_ctx_free(ctx);
}
