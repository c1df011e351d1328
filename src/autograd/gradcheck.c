/* gradcheck.c: float64 central differences against the analytic gradient.
 *
 * The checked scalar is L(x) = sum(u * fn(x)) for a random upstream u.
 * Analytic: backward of fn(x) with upstream u. Numeric: for each input
 * element, (L(x + eps) - L(x - eps)) / (2 eps) under no-grad. All scratch
 * lives in the step arena above a mark and is released before returning,
 * with the tape and the RNG state restored, so the caller's step is as it
 * was (the user's inputs are copied, never touched).
 */
#include "autograd.h"

#include <math.h>
#include <string.h>

static double weighted_sum(const lg_tensor *out, const lg_tensor *u)
{
    double s = 0;
    for (int64_t i = 0; i < out->numel; i++)
        s += LGT_D(out)[i] * LGT_D(u)[i];
    return s;
}

/* Evaluates L at the current copies; NAN (with the ctx error set) on failure. */
static double eval(lg_ctx *ctx, lg_gradcheck_fn fn, void *user, lg_tensor *const *xs,
                   const lg_tensor *u)
{
    lgC_mark m = lgC_arena_mark(&ctx->arena);
    lgC_mark h = lgC_arena_mark(&ctx->headers[ctx->step_id & 1]);
    lg_no_grad_begin(ctx);
    lg_tensor *out = fn(ctx, xs, user);
    lg_no_grad_end(ctx);
    double s = NAN;
    if (out && lgT_same_shape(out, u) && out->dtype == LG_F64)
        s = weighted_sum(out, u);
    lgC_arena_release(&ctx->arena, m);
    lgC_arena_release(&ctx->headers[ctx->step_id & 1], h);
    return s;
}

static void compare(lg_gradcheck_report *r, const lg_gradcheck_opts *o, int input, int64_t i,
                    double a, double n)
{
    double abs_err = fabs(a - n), rel = abs_err / fmax(fabs(n), 1e-12);
    bool fail = !(abs_err <= o->atol + o->rtol * fabs(n));
    if (fail)
        r->ok = false;
    if (r->worst_input < 0 || abs_err > r->max_abs_err ||
        (isnan(abs_err) && !isnan(r->max_abs_err))) {
        r->worst_input = input;
        r->worst_index = i;
        r->worst_analytic = a;
        r->worst_numeric = n;
    }
    if (abs_err > r->max_abs_err || isnan(abs_err))
        r->max_abs_err = abs_err;
    if (rel > r->max_rel_err || isnan(rel))
        r->max_rel_err = rel;
    r->checked++;
}

lg_status lg_gradcheck(lg_ctx *ctx, lg_gradcheck_fn fn, void *user, int n, lg_tensor *const *inputs,
                       const lg_gradcheck_opts *opts, lg_gradcheck_report *report)
{
    static const char who[] = "lg_gradcheck";
    if (!ctx)
        return LG_ERR_NULL;
    if (!fn || !report || !inputs)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: %s is NULL", who,
                          !fn ? "fn" : (!report ? "report" : "inputs"));
    if (n < 1 || n > 64)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: n = %d inputs, expected 1..64", who, n);
    for (int i = 0; i < n; i++) {
        char arg[24];
        snprintf(arg, sizeof arg, "inputs[%d]", i);
        if (!lgT_ok(ctx, inputs[i], who, arg))
            return ctx->status;
        if (inputs[i]->dtype != LG_F64)
            return lgC_errorf(ctx, LG_ERR_DTYPE, "%s: inputs[%d] has dtype %s, expected float64",
                              who, i, lgT_dtype_name((lg_dtype)inputs[i]->dtype));
    }
    lg_gradcheck_opts o = opts ? *opts : (lg_gradcheck_opts){ 0 };
    if (o.eps <= 0)
        o.eps = 1e-6;
    if (o.atol <= 0)
        o.atol = 1e-6;
    if (o.rtol <= 0)
        o.rtol = 1e-5;
    *report = (lg_gradcheck_report){ .ok = true, .worst_input = -1, .worst_index = -1 };

    lgC_mark m = lgC_arena_mark(&ctx->arena);
    lgC_mark h = lgC_arena_mark(&ctx->headers[ctx->step_id & 1]);
    lg_tensor *saved_tail = ctx->tape_tail;
    uint64_t saved_rng[4];
    memcpy(saved_rng, ctx->rng, sizeof saved_rng);
    bool saved_spare = ctx->has_spare;
    double saved_normal = ctx->spare_normal;
    int saved_no_grad = ctx->no_grad;
    ctx->no_grad = 0;
    ctx->tape_tail = NULL;

    lg_status st = LG_OK;
    lg_tensor *xs[64];
    for (int i = 0; i < n && st == LG_OK; i++) {
        xs[i] = lgT_new_like(ctx, inputs[i], who);
        if (!xs[i]) {
            st = ctx->status;
            break;
        }
        memcpy(xs[i]->data, inputs[i]->data, (size_t)xs[i]->numel * sizeof(double));
        xs[i]->requires_grad = true;
    }
    lg_tensor *out = st == LG_OK ? fn(ctx, xs, user) : NULL;
    lg_tensor *u = NULL;
    if (st == LG_OK && !out)
        st = ctx->status != LG_OK ? ctx->status
                                  : lgC_errorf(ctx, LG_ERR_STATE, "%s: fn returned NULL", who);
    if (st == LG_OK && out->dtype != LG_F64)
        st = lgC_errorf(ctx, LG_ERR_DTYPE, "%s: fn returned a %s tensor, expected float64", who,
                        lgT_dtype_name((lg_dtype)out->dtype));
    if (st == LG_OK) {
        u = lg_randn(ctx, LG_F64, out->ndim, out->shape);
        st = u ? LG_OK : ctx->status;
    }
    if (st == LG_OK && out->requires_grad)
        st = lg_backward_with(ctx, out, u);
    for (int i = 0; i < n && st == LG_OK; i++) {
        lg_tensor *x = xs[i];
        const double *ga = x->grad ? LGT_D(x->grad) : NULL; /* no grad: analytic zero */
        for (int64_t j = 0; j < x->numel && st == LG_OK; j++) {
            double v = LGT_D(x)[j];
            LGT_D(x)[j] = v + o.eps;
            double fp = eval(ctx, fn, user, xs, u);
            LGT_D(x)[j] = v - o.eps;
            double fm = eval(ctx, fn, user, xs, u);
            LGT_D(x)[j] = v;
            if (ctx->status != LG_OK)
                st = ctx->status;
            else
                compare(report, &o, i, j, ga ? ga[j] : 0.0, (fp - fm) / (2 * o.eps));
        }
    }

    lgC_arena_release(&ctx->arena, m);
    lgC_arena_release(&ctx->headers[ctx->step_id & 1], h);
    ctx->tape_tail = saved_tail;
    memcpy(ctx->rng, saved_rng, sizeof saved_rng);
    ctx->has_spare = saved_spare;
    ctx->spare_normal = saved_normal;
    ctx->no_grad = saved_no_grad;
    if (st != LG_OK)
        report->ok = false;
    return st;
}
