/* gradcheck.c: float64 central differences against the analytic gradient.
 *
 * The checked scalar is L(x) = sum(u * fn(x)) for a random upstream u.
 * Analytic: backward of fn(x) with upstream u. Numeric: for each input
 * element, (L(x + eps) - L(x - eps)) / (2 eps), recorded (fn may take
 * gradients itself) and the record dropped. All scratch
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
/* fn's result, checked: NULL with the error recorded if fn failed, ended
 * the step (*ended: then nothing of the step may be touched again), or
 * returned a tensor that is not a float64 tensor of this ctx's step. */
static lg_tensor *call(lg_ctx *ctx, lg_gradcheck_fn fn, void *user, lg_tensor *const *xs,
                       bool *ended)
{
    static const char who[] = "lg_gradcheck";
    uint64_t step = ctx->step_id;
    int scopes = ctx->nscopes;
    lg_status before = ctx->status;
    lg_tensor *out = fn(ctx, xs, user);
    if (ctx->nscopes < scopes && ctx->step_id == step) {
        *ended = true; /* a scope of the caller's closed: what gradcheck made is gone */
        return lgC_error(ctx, LG_ERR_STATE, "%s: fn closed a scope it did not open", who);
    }
    if (ctx->nscopes > scopes) {
        ctx->nscopes = scopes; /* their marks lie in memory gradcheck gives back */
        return lgC_error(ctx, LG_ERR_STATE,
                         "%s: fn left a scope open (lg_scope_begin without "
                         "its lg_scope_end)",
                         who);
    }
    if (ctx->step_id != step) {
        *ended = true;
        if (before == LG_OK) /* what fn ran into after ending the step follows from it */
            lg_ctx_clear_error(ctx);
        return lgC_error(ctx, LG_ERR_STATE,
                         "%s: fn called lg_step_end, which freed the inputs being checked (fn "
                         "must build its result within the step)",
                         who);
    }
    if (!out)
        return ctx->status != LG_OK ? NULL
                                    : lgC_error(ctx, LG_ERR_STATE, "%s: fn returned NULL", who);
    if (!lgT_ok(ctx, out, who, "fn's result")) /* another ctx's tensor, or a stale one */
        return NULL;
    if (out->dtype != LG_F64)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: fn returned a %s tensor, expected float64", who,
                         lgT_dtype_name((lg_dtype)out->dtype));
    return out;
}

/* Evaluates L at the current copies; NAN (with the ctx error set) on failure. */
static double eval(lg_ctx *ctx, lg_gradcheck_fn fn, void *user, lg_tensor *const *xs,
                   const lg_tensor *u, bool *ended)
{
    lgC_mark m = lgC_arena_mark(&ctx->arena);
    lgC_mark h = lgC_arena_mark(lgC_header_pool(ctx));
    /* recorded (fn may take gradients itself: a gradient penalty), and the
     * record dropped with the memory below */
    lg_tensor *tail = ctx->tape_tail;
    ctx->numeric_pass = true;
    lg_tensor *out = call(ctx, fn, user, xs, ended);
    ctx->numeric_pass = false;
    if (*ended)
        return NAN;
    ctx->tape_tail = tail;
    double s = NAN;
    if (out && lgT_same_shape(out, u))
        s = weighted_sum(out, u);
    else if (out)
        lgC_error(ctx, LG_ERR_SHAPE, "lg_gradcheck: fn's result changed shape between calls");
    lgC_retire(lgC_header_pool(ctx), h); /* a handle fn kept is stale, not another tensor */
    lgC_arena_release(&ctx->arena, m);
    lgC_arena_release(lgC_header_pool(ctx), h);
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

static const lg_gradcheck_opts gradcheck_defaults = {
    .defaults_tag = LG_OPTS_TAG, .eps = 1e-6, .atol = 1e-6, .rtol = 1e-5
};
static const lgC_optfield gradcheck_fields[] = {
    LGC_FIELD(lg_gradcheck_opts, eps, "1e-6"),
    LGC_FIELD(lg_gradcheck_opts, atol, "1e-6"),
    LGC_FIELD(lg_gradcheck_opts, rtol, "1e-5"),
};
static const lgC_opts_desc gradcheck_desc =
    LGC_DESC(lg_gradcheck_opts, gradcheck_defaults, gradcheck_fields);

lg_gradcheck_opts lg_gradcheck_opts_default(void)
{
    return gradcheck_defaults;
}

/* The arguments: inputs float64 tensors of this step, options in range. */
static lg_status check_args(lg_ctx *ctx, lg_gradcheck_fn fn, int n, lg_tensor *const *inputs,
                            const lg_gradcheck_opts *opts, lg_gradcheck_report *report,
                            lg_gradcheck_opts *o)
{
    static const char who[] = "lg_gradcheck";
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
    if (!lgC_opts(ctx, who, &gradcheck_desc, opts, o))
        return ctx->status;
    if (!(isfinite(o->eps) && o->eps > 0))
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: eps = %g, expected finite and > 0", who, o->eps);
    if (!(isfinite(o->atol) && o->atol >= 0) || !(isfinite(o->rtol) && o->rtol >= 0))
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: atol = %g, rtol = %g, expected finite and >= 0",
                          who, o->atol, o->rtol);
    return LG_OK;
}

/* The analytic gradient (backward of fn(xs) with upstream u), then central
 * differences element by element. */
static lg_status run(lg_ctx *ctx, lg_gradcheck_fn fn, void *user, int n, lg_tensor **xs,
                     const lg_gradcheck_opts *o, lg_gradcheck_report *report, bool *ended)
{
    lg_tensor *out = call(ctx, fn, user, xs, ended);
    if (!out)
        return ctx->status;
    lg_tensor *u = lg_randn(ctx, LG_F64, out->ndim, out->shape);
    if (!u)
        return ctx->status;
    if (out->requires_grad && lg_backward_with(ctx, out, u) != LG_OK)
        return ctx->status;
    for (int i = 0; i < n; i++) {
        lg_tensor *x = xs[i];
        const double *ga = x->grad ? LGT_D(x->grad) : NULL; /* no grad: analytic zero */
        for (int64_t j = 0; j < x->numel; j++) {
            double v = LGT_D(x)[j];
            LGT_D(x)[j] = v + o->eps;
            double fp = eval(ctx, fn, user, xs, u, ended);
            if (*ended)
                return ctx->status;
            LGT_D(x)[j] = v - o->eps;
            double fm = eval(ctx, fn, user, xs, u, ended);
            if (*ended)
                return ctx->status;
            LGT_D(x)[j] = v;
            if (ctx->status != LG_OK)
                return ctx->status;
            compare(report, o, i, j, ga ? ga[j] : 0.0, (fp - fm) / (2 * o->eps));
        }
    }
    return LG_OK;
}

lg_status lg_gradcheck(lg_ctx *ctx, lg_gradcheck_fn fn, void *user, int n, lg_tensor *const *inputs,
                       const lg_gradcheck_opts *opts, lg_gradcheck_report *report)
{
    static const char who[] = "lg_gradcheck";
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return ctx->status;
    lg_gradcheck_opts o;
    lg_status st = check_args(ctx, fn, n, inputs, opts, report, &o);
    if (st != LG_OK)
        return st;
    *report = (lg_gradcheck_report){ .ok = true, .worst_input = -1, .worst_index = -1 };

    lgC_mark m = lgC_arena_mark(&ctx->arena);
    lgC_mark h = lgC_arena_mark(lgC_header_pool(ctx));
    /* gradcheck's headers start a turning gap after h (as a scope's), so a
     * handle fn kept never lines up with a header made after it returns */
    if (!lgC_header_gap(ctx, who)) {
        report->ok = false;
        return ctx->status;
    }
    lg_tensor *saved_tail = ctx->tape_tail;
    uint64_t saved_rng[4];
    memcpy(saved_rng, ctx->rng, sizeof saved_rng);
    bool saved_spare = ctx->has_spare;
    double saved_normal = ctx->spare_normal;
    int saved_no_grad = ctx->no_grad;
    ctx->no_grad = 0;
    ctx->tape_tail = NULL;

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
    bool ended = false;
    ctx->fence_on = true, ctx->fence = h;
    if (st == LG_OK)
        st = run(ctx, fn, user, n, xs, &o, report, &ended);
    ctx->fence_on = false;

    /* If fn ended the step, its marks and tape are gone with it. */
    if (!ended) {
        lgC_retire(lgC_header_pool(ctx), h);
        lgC_arena_release(&ctx->arena, m);
        lgC_arena_release(lgC_header_pool(ctx), h);
        ctx->tape_tail = saved_tail;
    }
    memcpy(ctx->rng, saved_rng, sizeof saved_rng);
    ctx->has_spare = saved_spare;
    ctx->spare_normal = saved_normal;
    ctx->no_grad = saved_no_grad;
    if (st != LG_OK)
        report->ok = false;
    return st;
}

/* ------------------------------------------------------------------ */
/* Gradgradcheck                                                        */
/* ------------------------------------------------------------------ */

/* The function gradgradcheck checks: x -> J(x)^T u, every input's
 * gradient flattened and joined. u is drawn at the first call (gradcheck's
 * analytic pass, whose memory lasts the whole check); the numeric passes
 * need the gradient's values only. */
struct first_grad {
    lg_gradcheck_fn fn;
    void *user;
    int n;
    lg_tensor *u;
};

static lg_tensor *first_gradient(lg_ctx *ctx, lg_tensor *const *xs, void *arg)
{
    struct first_grad *c = arg;
    bool create = !ctx->numeric_pass; /* a central difference needs values only */
    lg_tensor *out = c->fn(ctx, xs, c->user), *res = NULL;
    if (out && lgT_ok(ctx, out, "lg_gradgradcheck", "fn's result")) {
        if (!c->u)
            c->u = lg_randn(ctx, (lg_dtype)out->dtype, out->ndim, out->shape);
        lg_tensor *g[64] = { NULL }, *parts[64];
        bool ok = c->u != NULL;
        if (ok && out->requires_grad) {
            lg_grad_opts o = lg_grad_opts_default();
            o.create_graph = create;
            o.allow_unused = true;
            ok = lg_grad(ctx, 1, &out, &c->u, c->n, xs, g, &o) == LG_OK;
        }
        for (int i = 0; ok && i < c->n; i++) {
            int64_t len = xs[i]->numel;
            parts[i] = g[i] ? lg_reshape(ctx, g[i], 1, &len) : lgT_zeros_like(ctx, xs[i], "lg_gradgradcheck");
            if (parts[i] && !g[i])
                parts[i] = lg_reshape(ctx, parts[i], 1, &len);
            ok = parts[i] != NULL;
        }
        if (ok)
            res = lg_concat(ctx, c->n, parts, 0);
    }
    return res;
}

lg_status lg_gradgradcheck(lg_ctx *ctx, lg_gradcheck_fn fn, void *user, int n,
                           lg_tensor *const *inputs, const lg_gradcheck_opts *opts,
                           lg_gradcheck_report *report)
{
    static const char who[] = "lg_gradgradcheck";
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return ctx->status;
    if (!fn)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: fn is NULL", who);
    struct first_grad c = { fn, user, n, NULL };
    return lg_gradcheck(ctx, first_gradient, &c, n, inputs, opts, report);
}
