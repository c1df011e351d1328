/* landscape.c: loss-landscape slices with filter-normalised directions
 * (Li et al. 2018; lossgrad/curvature.h). The parameters are written in
 * place at each grid point and restored from a byte copy at the end. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const lg_landscape_opts landscape_defaults = { .defaults_tag = LG_OPTS_TAG,
                                                      .lo = -1,
                                                      .hi = 1 };
static const lgC_optfield landscape_fields[] = {
    LGC_FIELD(lg_landscape_opts, lo, "-1"),
    LGC_FIELD(lg_landscape_opts, hi, "1"),
};
static const lgC_opts_desc landscape_desc =
    LGC_DESC(lg_landscape_opts, landscape_defaults, landscape_fields);

lg_landscape_opts lg_landscape_opts_default(void)
{
    return landscape_defaults;
}

static bool is_float(const lg_tensor *t)
{
    return lg_tensor_dtype(t) == LG_F32 || lg_tensor_dtype(t) == LG_F64;
}

static double at(lg_tensor *t, int64_t i)
{
    const void *d = lg_tensor_data(t);
    return lg_tensor_dtype(t) == LG_F32 ? ((const float *)d)[i] : ((const double *)d)[i];
}

static void put(lg_tensor *t, int64_t i, double v)
{
    void *d = lg_tensor_data(t);
    if (lg_tensor_dtype(t) == LG_F32)
        ((float *)d)[i] = (float)v;
    else
        ((double *)d)[i] = v;
}

static size_t elem_size(const lg_tensor *t)
{
    return lg_tensor_dtype(t) == LG_F32 ? sizeof(float) : sizeof(double);
}

/* params[0..n): non-NULL, usable, float; *P their total size. */
static lg_status check_params(lg_ctx *ctx, const char *who, int n, lg_tensor *const *params,
                              int64_t *P)
{
    *P = 0;
    if (!params)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: params is NULL", who);
    if (n < 1)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: n = %d, expected at least 1", who, n);
    for (int i = 0; i < n; i++) {
        if (!params[i])
            return lgC_errorf(ctx, LG_ERR_NULL, "%s: params[%d] is NULL", who, i);
        if (lg_tensor_check(ctx, params[i]) != LG_OK)
            return ctx->status;
        if (!is_float(params[i]))
            return lgC_errorf(ctx, LG_ERR_DTYPE, "%s: params[%d] is not float32 or float64", who,
                              i);
        *P += lg_tensor_numel(params[i]);
    }
    return LG_OK;
}

static void shape_str(char *buf, size_t cap, const lg_tensor *t)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int a = 0; a < lg_tensor_ndim(t) && k < cap; a++)
        k += (size_t)snprintf(buf + k, cap - k, a ? ", %lld" : "%lld",
                              (long long)lg_tensor_shape(t)[a]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

/* Direction dirs (named what) into d (P doubles): checked against params'
 * shapes, or normal draws when dirs is NULL. */
static lg_status read_dir(lg_ctx *ctx, const char *who, const char *what, int n,
                          lg_tensor *const *params, lg_tensor *const *dirs, double *d)
{
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        lg_tensor *p = params[i], *t = dirs ? dirs[i] : NULL;
        int64_t m = lg_tensor_numel(p);
        if (dirs && !t)
            return lgC_errorf(ctx, LG_ERR_NULL, "%s: %s[%d] is NULL", who, what, i);
        if (t && lg_tensor_check(ctx, t) != LG_OK)
            return ctx->status;
        if (t && !is_float(t))
            return lgC_errorf(ctx, LG_ERR_DTYPE, "%s: %s[%d] is not float32 or float64", who, what,
                              i);
        bool same = !t || lg_tensor_ndim(t) == lg_tensor_ndim(p);
        for (int a = 0; t && same && a < lg_tensor_ndim(p); a++)
            same = lg_tensor_shape(t)[a] == lg_tensor_shape(p)[a];
        if (!same) {
            char got[128], want[128];
            shape_str(got, sizeof got, t), shape_str(want, sizeof want, p);
            return lgC_errorf(ctx, LG_ERR_SHAPE,
                              "%s: %s[%d] has shape %s, expected %s (params[%d]'s)", who, what, i,
                              got, want, i);
        }
        for (int64_t j = 0; j < m; j++)
            d[off + j] = t ? at(t, j) : lg_rand_normal(ctx);
        off += m;
    }
    return LG_OK;
}

/* Filter normalisation of d (flat, P doubles) against params' values. */
static void normalise(int n, lg_tensor *const *params, double *d, bool keep_1d)
{
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        lg_tensor *p = params[i];
        int64_t m = lg_tensor_numel(p);
        int64_t rows = lg_tensor_ndim(p) >= 2 ? lg_tensor_shape(p)[0] : 1;
        int64_t len = rows ? m / rows : 0;
        for (int64_t r = 0; r < rows; r++) {
            double *dr = d + off + r * len, np = 0, nd = 0;
            for (int64_t j = 0; j < len; j++) {
                double v = at(p, r * len + j);
                np += v * v, nd += dr[j] * dr[j];
            }
            double s = lg_tensor_ndim(p) < 2 && !keep_1d ? 0 : (nd > 0 ? sqrt(np / nd) : 0);
            for (int64_t j = 0; j < len; j++)
                dr[j] *= s;
        }
        off += m;
    }
}

lg_status lg_filter_normalize(lg_ctx *ctx, int n, lg_tensor *const *params, lg_tensor *const *dirs,
                              const lg_landscape_opts *opts)
{
    static const char who[] = "lg_filter_normalize";
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return ctx->status;
    lg_landscape_opts o;
    int64_t P;
    if (!lgC_opts(ctx, who, &landscape_desc, opts, &o) ||
        check_params(ctx, who, n, params, &P) != LG_OK)
        return ctx->status;
    if (!dirs)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: dirs is NULL", who);
    double *d = lgC_palloc(ctx, (size_t)(P ? P : 1) * sizeof *d, who);
    lg_status st = d ? read_dir(ctx, who, "dirs", n, params, dirs, d) : ctx->status;
    if (st == LG_OK) {
        normalise(n, params, d, o.keep_1d);
        int64_t off = 0;
        for (int i = 0; i < n; i++) {
            int64_t m = lg_tensor_numel(params[i]);
            for (int64_t j = 0; j < m; j++)
                put(dirs[i], j, d[off + j]);
            off += m;
        }
    }
    lgC_pfree(ctx, d);
    return st;
}

/* A slice in progress: the parameters' original bytes and values, and the
 * directions, all flat. */
typedef struct slice {
    lg_ctx *ctx;
    const char *who;
    lg_loss_fn fn;
    void *user;
    int n;
    lg_tensor *const *params;
    int64_t P;
    size_t bytes;
    unsigned char *saved;
    double *theta, *d[2];
} slice;

/* The parameters at theta + a d0 + b d1 (d1 only when there is one). */
static void set_point(slice *s, double a, double b)
{
    int64_t off = 0;
    for (int i = 0; i < s->n; i++) {
        lg_tensor *p = s->params[i];
        int64_t m = lg_tensor_numel(p);
        for (int64_t j = 0; j < m; j++) {
            double v = s->theta[off + j] + a * s->d[0][off + j];
            put(p, j, s->d[1] ? v + b * s->d[1][off + j] : v);
        }
        off += m;
    }
}

static void restore(slice *s)
{
    size_t k = 0;
    for (int i = 0; i < s->n; i++) {
        size_t b = (size_t)lg_tensor_numel(s->params[i]) * elem_size(s->params[i]);
        memcpy(lg_tensor_data(s->params[i]), s->saved + k, b);
        k += b;
    }
}

/* The loss at the parameters' current values, under no-grad in a scope. */
static lg_status eval(slice *s, double *loss)
{
    lg_ctx *ctx = s->ctx;
    if (lg_no_grad_begin(ctx) != LG_OK)
        return ctx->status;
    lg_status st = lg_scope_begin(ctx);
    if (st == LG_OK) {
        lg_tensor *t = s->fn(ctx, s->user);
        st = ctx->status;
        if (st == LG_OK && !t)
            st = lgC_errorf(ctx, LG_ERR_NULL, "%s: loss_fn returned NULL", s->who);
        if (st == LG_OK && lg_tensor_numel(t) != 1)
            st = lgC_errorf(ctx, LG_ERR_SHAPE, "%s: loss_fn's loss has %lld elements, expected one",
                            s->who, (long long)lg_tensor_numel(t));
        if (st == LG_OK)
            *loss = lg_item(ctx, t);
        lg_status end = lg_scope_end(ctx, 0, NULL);
        st = st != LG_OK ? st : end;
    }
    lg_status ng = lg_no_grad_end(ctx);
    return st != LG_OK ? st : ng;
}

/* Checks, copies and directions; the caller frees with slice_free. */
static lg_status slice_init(slice *s, lg_ctx *ctx, const char *who, lg_loss_fn fn, void *user,
                            int n, lg_tensor *const *params, lg_tensor *const *d1,
                            lg_tensor *const *d2, int ndirs, const lg_landscape_opts *o)
{
    bool two = ndirs == 2;
    *s = (slice){ .ctx = ctx, .who = who, .fn = fn, .user = user, .n = n, .params = params };
    if (!fn)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: loss_fn is NULL", who);
    if (check_params(ctx, who, n, params, &s->P) != LG_OK)
        return ctx->status;
    for (int i = 0; i < n; i++)
        s->bytes += (size_t)lg_tensor_numel(params[i]) * elem_size(params[i]);
    size_t P = (size_t)(s->P ? s->P : 1);
    s->saved = lgC_palloc(ctx, s->bytes ? s->bytes : 1, who);
    s->theta = lgC_palloc(ctx, P * sizeof(double), who);
    s->d[0] = lgC_palloc(ctx, P * sizeof(double), who);
    s->d[1] = two ? lgC_palloc(ctx, P * sizeof(double), who) : NULL;
    if (!s->saved || !s->theta || !s->d[0] || (two && !s->d[1]))
        return ctx->status;
    size_t k = 0;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        int64_t m = lg_tensor_numel(params[i]);
        size_t b = (size_t)m * elem_size(params[i]);
        memcpy(s->saved + k, lg_tensor_data(params[i]), b);
        for (int64_t j = 0; j < m; j++)
            s->theta[off + j] = at(params[i], j);
        k += b, off += m;
    }
    for (int w = 0; w < ndirs; w++) {
        if (read_dir(ctx, who, w ? "d2" : (two ? "d1" : "dirs"), n, params, w ? d2 : d1, s->d[w]) !=
            LG_OK)
            return ctx->status;
        if (!o->raw_directions)
            normalise(n, params, s->d[w], o->keep_1d);
    }
    return LG_OK;
}

static void slice_free(slice *s)
{
    lgC_pfree(s->ctx, s->saved), lgC_pfree(s->ctx, s->theta);
    lgC_pfree(s->ctx, s->d[0]), lgC_pfree(s->ctx, s->d[1]);
}

static lg_status landscape_opts(lg_ctx *ctx, const char *who, const lg_landscape_opts *opts,
                                lg_landscape_opts *o, int64_t points, const double *losses)
{
    if (!lgC_opts(ctx, who, &landscape_desc, opts, o))
        return ctx->status;
    if (!(o->lo < o->hi && isfinite(o->lo) && isfinite(o->hi)))
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: lo = %g, hi = %g, expected finite lo < hi", who,
                          o->lo, o->hi);
    if (points < 2)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: points = %lld, expected >= 2", who,
                          (long long)points);
    if (points > (int64_t)1 << 30)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: points = %lld, expected at most 2^30", who,
                          (long long)points);
    if (!losses)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: losses is NULL", who);
    return LG_OK;
}

static double step_at(const lg_landscape_opts *o, int64_t i, int64_t points)
{
    return i + 1 == points ? o->hi : o->lo + (o->hi - o->lo) * (double)i / (double)(points - 1);
}

/* The whole grid (1-D when s->d[1] is NULL), then the parameters back. */
static lg_status slice_run(slice *s, const lg_landscape_opts *o, int64_t points, double *alphas,
                           double *losses)
{
    int64_t rows = s->d[1] ? points : 1, total = rows * points;
    lg_status st = LG_OK;
    for (int64_t i = 0; i < points; i++)
        if (alphas)
            alphas[i] = step_at(o, i, points);
    for (int64_t k = 0; st == LG_OK && k < total; k++) {
        double a = step_at(o, s->d[1] ? k / points : k, points);
        double b = s->d[1] ? step_at(o, k % points, points) : 0;
        set_point(s, a, b);
        st = eval(s, &losses[k]);
        if (st == LG_OK && o->progress)
            o->progress(o->progress_user, s->who, k + 1, total);
    }
    restore(s);
    return st;
}

static lg_status landscape(lg_ctx *ctx, const char *who, lg_loss_fn fn, void *user, int n,
                           lg_tensor *const *params, lg_tensor *const *d1, lg_tensor *const *d2,
                           bool two, int64_t points, double *alphas, double *losses,
                           const lg_landscape_opts *opts)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return ctx->status;
    lg_landscape_opts o;
    if (landscape_opts(ctx, who, opts, &o, points, losses) != LG_OK)
        return ctx->status;
    const char *outer = lgC_api_enter(ctx, who);
    slice s;
    lg_status st = slice_init(&s, ctx, who, fn, user, n, params, d1, d2, two ? 2 : 1, &o);
    if (st == LG_OK)
        st = slice_run(&s, &o, points, alphas, losses);
    slice_free(&s);
    lgC_api_leave(ctx, outer);
    return st;
}

lg_status lg_loss_landscape_1d(lg_ctx *ctx, lg_loss_fn loss_fn, void *user, int n,
                               lg_tensor *const *params, lg_tensor *const *dirs, int64_t points,
                               double *alphas, double *losses, const lg_landscape_opts *opts)
{
    return landscape(ctx, "lg_loss_landscape_1d", loss_fn, user, n, params, dirs, NULL, false,
                     points, alphas, losses, opts);
}

lg_status lg_loss_landscape_2d(lg_ctx *ctx, lg_loss_fn loss_fn, void *user, int n,
                               lg_tensor *const *params, lg_tensor *const *d1, lg_tensor *const *d2,
                               int64_t points, double *alphas, double *losses,
                               const lg_landscape_opts *opts)
{
    return landscape(ctx, "lg_loss_landscape_2d", loss_fn, user, n, params, d1, d2, true, points,
                     alphas, losses, opts);
}

/* ---- sharpness (Keskar et al. 2017) ---- */

static const lg_sharpness_opts sharpness_defaults = { .defaults_tag = LG_OPTS_TAG,
                                                      .eps = 1e-3,
                                                      .steps = 20 };
static const lgC_optfield sharpness_fields[] = {
    LGC_FIELD(lg_sharpness_opts, eps, "1e-3"),
    LGC_FIELD(lg_sharpness_opts, steps, "20"),
};
static const lgC_opts_desc sharpness_desc =
    LGC_DESC(lg_sharpness_opts, sharpness_defaults, sharpness_fields);

lg_sharpness_opts lg_sharpness_opts_default(void)
{
    return sharpness_defaults;
}

/* The loss at the parameters' current values and its gradient into g (P
 * doubles; 0 where the loss does not reach), inside a scope. */
static lg_status eval_grad(slice *s, lg_tensor **gr, double *loss, double *g)
{
    lg_ctx *ctx = s->ctx;
    if (lg_scope_begin(ctx) != LG_OK)
        return ctx->status;
    lg_tensor *t = s->fn(ctx, s->user);
    lg_status st = ctx->status;
    if (st == LG_OK && !t)
        st = lgC_errorf(ctx, LG_ERR_NULL, "%s: loss_fn returned NULL", s->who);
    if (st == LG_OK && lg_tensor_numel(t) != 1)
        st = lgC_errorf(ctx, LG_ERR_SHAPE, "%s: loss_fn's loss has %lld elements, expected one",
                        s->who, (long long)lg_tensor_numel(t));
    if (st == LG_OK)
        *loss = lg_item(ctx, t);
    lg_grad_opts o = lg_grad_opts_default();
    o.allow_unused = true;
    if (st == LG_OK)
        st = lg_grad(ctx, 1, &t, NULL, s->n, s->params, gr, &o);
    int64_t off = 0;
    for (int i = 0; st == LG_OK && i < s->n; i++) {
        int64_t m = lg_tensor_numel(s->params[i]);
        for (int64_t j = 0; j < m; j++)
            g[off + j] = gr[i] ? at(gr[i], j) : 0;
        off += m;
    }
    lg_status end = lg_scope_end(ctx, 0, NULL);
    return st != LG_OK ? st : end;
}

/* Projected sign-gradient ascent in the box |y_i| <= eps (|theta_i| + 1),
 * y (s->d[0]) from 0; the largest loss seen into r->max_loss. */
static lg_status ascend(slice *s, const lg_sharpness_opts *o, lg_sharpness_report *r)
{
    lg_ctx *ctx = s->ctx;
    double *g = lgC_palloc(ctx, (size_t)(s->P ? s->P : 1) * sizeof *g, s->who);
    lg_tensor **gr = lgC_palloc(ctx, (size_t)s->n * sizeof *gr, s->who);
    lg_status st = g && gr ? LG_OK : ctx->status;
    for (int64_t k = 0; st == LG_OK && k <= o->steps; k++) {
        double loss = 0;
        set_point(s, 1, 0);
        st = eval_grad(s, gr, &loss, g);
        if (st != LG_OK)
            break;
        if (k == 0)
            r->loss = r->max_loss = loss;
        r->max_loss = fmax(r->max_loss, loss);
        for (int64_t j = 0; j < s->P; j++) {
            double width = o->eps * (fabs(s->theta[j]) + 1), y = s->d[0][j];
            y += (g[j] > 0 ? 1 : (g[j] < 0 ? -1 : 0)) * 2.5 * width / (double)o->steps;
            s->d[0][j] = fmin(width, fmax(-width, y));
        }
        if (o->progress && k > 0)
            o->progress(o->progress_user, s->who, k, o->steps);
    }
    lgC_pfree(ctx, g), lgC_pfree(ctx, gr);
    restore(s);
    return st;
}

lg_status lg_sharpness(lg_ctx *ctx, lg_loss_fn loss_fn, void *user, int n, lg_tensor *const *params,
                       lg_sharpness_report *report, const lg_sharpness_opts *opts)
{
    static const char who[] = "lg_sharpness";
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return ctx->status;
    lg_sharpness_opts o;
    if (!lgC_opts(ctx, who, &sharpness_desc, opts, &o))
        return ctx->status;
    if (!(o.eps > 0 && isfinite(o.eps)))
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: eps = %g, expected > 0", who, o.eps);
    if (o.steps < 1)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: steps = %lld, expected >= 1", who,
                          (long long)o.steps);
    if (!report)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: report is NULL", who);
    const char *outer = lgC_api_enter(ctx, who);
    slice s;
    lg_landscape_opts lo = landscape_defaults;
    lg_sharpness_report r = { 0 };
    lg_status st = slice_init(&s, ctx, who, loss_fn, user, n, params, NULL, NULL, 0, &lo);
    if (st == LG_OK)
        st = ascend(&s, &o, &r);
    if (st == LG_OK) {
        r.sharpness = 100 * (r.max_loss - r.loss) / (1 + r.loss);
        *report = r;
    }
    slice_free(&s);
    lgC_api_leave(ctx, outer);
    return st;
}
