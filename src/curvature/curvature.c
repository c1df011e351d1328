/* curvature.c: the Hessian of f with respect to parameters, seen through
 * Hessian-vector products: Lanczos for its extreme eigenvalues, Hutchinson
 * for its trace (lossgrad/curvature.h).
 *
 * Built on the public API (lg_grad, scopes) with the ctx's persistent
 * allocator for work vectors and its error recorder. The parameters are
 * one flat vector of P doubles, in the order given; the first gradient g
 * (with its graph) is taken once, and each product is the gradient of
 * g . v, made inside a scope that frees it. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const lg_curvature_opts curvature_defaults = { .defaults_tag = LG_OPTS_TAG, .iters = 100 };
static const lgC_optfield curvature_fields[] = {
    LGC_FIELD(lg_curvature_opts, iters, "100"),
};
static const lgC_opts_desc curvature_desc =
    LGC_DESC(lg_curvature_opts, curvature_defaults, curvature_fields);

lg_curvature_opts lg_curvature_opts_default(void)
{
    return curvature_defaults;
}

lg_status lgV_hess_init(lg_ctx *ctx, const char *who, lg_tensor *f, int n,
                           lg_tensor *const *params, hess *h)
{
    *h = (hess){ .ctx = ctx, .who = who, .n = n, .params = params };
    if (!params)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: params is NULL", who);
    if (n < 1)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: n = %d, expected at least 1", who, n);
    for (int i = 0; i < n; i++) {
        if (!params[i])
            return lgC_errorf(ctx, LG_ERR_NULL, "%s: params[%d] is NULL", who, i);
        int64_t m = lg_tensor_numel(params[i]);
        if (h->P > INT64_MAX / 8 - m)
            return lgC_errorf(ctx, LG_ERR_VALUE, "%s: the parameters' total size overflows", who);
        h->P += m;
    }
    if (!f)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: f is NULL", who);
    if (lg_tensor_numel(f) != 1)
        return lgC_errorf(ctx, LG_ERR_SHAPE, "%s: f has %lld elements, expected one", who,
                          (long long)lg_tensor_numel(f));
    h->g = lgC_palloc(ctx, (size_t)n * sizeof *h->g, who);
    if (!h->g)
        return ctx->status;
    lg_grad_opts o = lg_grad_opts_default();
    o.create_graph = true;
    o.retain_graph = LG_RETAIN_YES;
    o.allow_unused = true;
    return lg_grad(ctx, 1, &f, NULL, n, params, h->g, &o);
}

/* hv = H v (P doubles each), the products' ops freed by a scope. */
lg_status lgV_hess_apply(hess *h, const double *v, double *hv)
{
    lg_ctx *ctx = h->ctx;
    memset(hv, 0, (size_t)h->P * sizeof *hv);
    if (lg_scope_begin(ctx) != LG_OK)
        return ctx->status;
    lg_tensor *s = NULL;
    int64_t off = 0;
    for (int i = 0; i < h->n; i++) {
        lg_tensor *p = h->params[i];
        int64_t m = lg_tensor_numel(p);
        if (h->g[i] && lg_tensor_requires_grad(h->g[i])) { /* else this block of H is 0 */
            lg_tensor *vi = lg_zeros(ctx, lg_tensor_dtype(p), lg_tensor_ndim(p), lg_tensor_shape(p));
            if (vi) {
                void *d = lg_tensor_data(vi);
                for (int64_t j = 0; j < m; j++)
                    if (lg_tensor_dtype(p) == LG_F32)
                        ((float *)d)[j] = (float)v[off + j];
                    else
                        ((double *)d)[j] = v[off + j];
            }
            lg_tensor *t = lg_sum(ctx, lg_mul(ctx, h->g[i], vi), 0, NULL, false);
            s = s ? lg_add(ctx, s, t) : t;
        }
        off += m;
    }
    lg_tensor *out[64], **hp = h->n <= 64 ? out : lgC_palloc(ctx, (size_t)h->n * sizeof *hp, h->who);
    lg_status st = ctx->status;
    if (st == LG_OK && s && hp) {
        lg_grad_opts o = lg_grad_opts_default();
        o.retain_graph = LG_RETAIN_YES; /* f's and g's graphs serve the next product */
        o.allow_unused = true;
        st = lg_grad(ctx, 1, &s, NULL, h->n, h->params, hp, &o);
        off = 0;
        for (int i = 0; st == LG_OK && i < h->n; i++) {
            int64_t m = lg_tensor_numel(h->params[i]);
            const void *d = hp[i] ? lg_tensor_data(hp[i]) : NULL;
            for (int64_t j = 0; d && j < m; j++)
                hv[off + j] = lg_tensor_dtype(hp[i]) == LG_F32 ? ((const float *)d)[j]
                                                                : ((const double *)d)[j];
            off += m;
        }
    } else if (!hp) {
        st = ctx->status;
    }
    if (hp != out)
        lgC_pfree(ctx, hp);
    lg_status end = lg_scope_end(ctx, 0, NULL);
    return st != LG_OK ? st : end;
}

double lgV_dot(const double *a, const double *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* w -= (w . q_i) q_i for every row of q[0..rows), twice (one pass loses
 * orthogonality when w was mostly in their span). */
static void orthogonalise(double *w, const double *q, int64_t rows, int64_t P)
{
    for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 0; i < rows; i++) {
            double c = lgV_dot(w, q + i * P, P);
            for (int64_t j = 0; j < P; j++)
                w[j] -= c * q[i * P + j];
        }
}

/* A random unit vector orthogonal to q[0..rows) into w; false if none is
 * found (the rows span everything). */
static bool random_start(lg_ctx *ctx, double *w, const double *q, int64_t rows, int64_t P)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        for (int64_t j = 0; j < P; j++)
            w[j] = lg_rand_normal(ctx);
        orthogonalise(w, q, rows, P);
        double nw = sqrt(lgV_dot(w, w, P));
        if (nw > 1e-8 * sqrt((double)P)) {
            for (int64_t j = 0; j < P; j++)
                w[j] /= nw;
            return true;
        }
    }
    return false;
}

void lgV_jacobi(double *a, int64_t m, double *ev, double *V)
{
    if (V)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < m; j++)
                V[i * m + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, all = 0;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < m; j++) {
                all += a[i * m + j] * a[i * m + j];
                if (i != j)
                    off += a[i * m + j] * a[i * m + j];
            }
        if (off <= 1e-30 * all || off == 0)
            break;
        for (int64_t p = 0; p < m; p++)
            for (int64_t q = p + 1; q < m; q++) {
                double apq = a[p * m + q];
                if (apq == 0)
                    continue;
                double theta = (a[q * m + q] - a[p * m + p]) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int64_t k = 0; k < m; k++) { /* columns p, q */
                    double akp = a[k * m + p], akq = a[k * m + q];
                    a[k * m + p] = c * akp - s * akq;
                    a[k * m + q] = s * akp + c * akq;
                }
                for (int64_t k = 0; V && k < m; k++) { /* V = V J: the eigenvectors */
                    double vkp = V[k * m + p], vkq = V[k * m + q];
                    V[k * m + p] = c * vkp - s * vkq;
                    V[k * m + q] = s * vkp + c * vkq;
                }
                for (int64_t k = 0; k < m; k++) { /* rows p, q */
                    double apk = a[p * m + k], aqk = a[q * m + k];
                    a[p * m + k] = c * apk - s * aqk;
                    a[q * m + k] = s * apk + c * aqk;
                }
            }
    }
    for (int64_t i = 0; i < m; i++)
        ev[i] = a[i * m + i];
}

static int descending(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : (x > y ? -1 : 0);
}

/* The Lanczos recurrence over m steps: alpha[0..m), beta[0..m-1) (0 where
 * a new random start began). q holds m + 1 rows of P. */
lg_status lgV_lanczos(hess *h, int64_t m, double *q, double *alpha, double *beta, double *w,
                      bool have_start, lg_progress_fn progress, void *progress_user)
{
    int64_t P = h->P;
    if (!have_start && !random_start(h->ctx, q, NULL, 0, P))
        return lgC_errorf(h->ctx, LG_ERR_STATE, "%s: no random start vector", h->who);
    for (int64_t j = 0; j < m; j++) {
        double *qj = q + j * P;
        if (lgV_hess_apply(h, qj, w) != LG_OK)
            return h->ctx->status;
        alpha[j] = lgV_dot(w, qj, P);
        orthogonalise(w, q, j + 1, P); /* full reorthogonalisation */
        if (progress)
            progress(progress_user, h->who, j + 1, m);
        if (j + 1 == m)
            break;
        double b = sqrt(lgV_dot(w, w, P));
        double scale = fabs(alpha[j]) > 1 ? fabs(alpha[j]) : 1;
        if (b > 1e-10 * scale) {
            beta[j] = b;
            for (int64_t i = 0; i < P; i++)
                q[(j + 1) * P + i] = w[i] / b;
        } else { /* an invariant subspace: go on from a new direction */
            beta[j] = 0;
            if (!random_start(h->ctx, q + (j + 1) * P, q, j + 1, P))
                return lgC_errorf(h->ctx, LG_ERR_STATE, "%s: no direction left", h->who);
        }
    }
    return LG_OK;
}

static lg_status curvature_opts(lg_ctx *ctx, const char *who, const lg_curvature_opts *opts,
                                lg_curvature_opts *o)
{
    if (!lgC_opts(ctx, who, &curvature_desc, opts, o))
        return ctx->status;
    if (o->iters < 1)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: iters = %lld, expected >= 1", who,
                          (long long)o->iters);
    return LG_OK;
}

lg_status lg_hessian_eigenvalues(lg_ctx *ctx, lg_tensor *f, int n, lg_tensor *const *params, int k,
                                 double *eigs, const lg_curvature_opts *opts)
{
    static const char who[] = "lg_hessian_eigenvalues";
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return ctx->status;
    lg_curvature_opts o;
    if (curvature_opts(ctx, who, opts, &o) != LG_OK)
        return ctx->status;
    if (!eigs)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: eigs is NULL", who);
    const char *outer = lgC_api_enter(ctx, who);
    hess h;
    lg_status st = lgV_hess_init(ctx, who, f, n, params, &h);
    int64_t m = o.iters < h.P ? o.iters : h.P;
    if (st == LG_OK && (k < 1 || k > m))
        st = lgC_errorf(ctx, LG_ERR_VALUE,
                        "%s: k = %d, expected 1..%lld (the Lanczos steps: iters, at most the "
                        "%lld parameters)",
                        who, k, (long long)m, (long long)h.P);
    double *q = NULL, *w = NULL, *t = NULL, *ev = NULL, *alpha = NULL, *beta = NULL;
    if (st == LG_OK) {
        q = lgC_palloc(ctx, (size_t)((m + 1) * h.P) * sizeof *q, who);
        w = lgC_palloc(ctx, (size_t)h.P * sizeof *w, who);
        t = lgC_palloc(ctx, (size_t)(m * m) * sizeof *t, who);
        ev = lgC_palloc(ctx, (size_t)m * sizeof *ev, who);
        alpha = lgC_palloc(ctx, (size_t)m * sizeof *alpha, who);
        beta = lgC_palloc(ctx, (size_t)m * sizeof *beta, who);
        st = q && w && t && ev && alpha && beta ? LG_OK : ctx->status;
    }
    if (st == LG_OK)
        st = lgV_lanczos(&h, m, q, alpha, beta, w, false, o.progress, o.progress_user);
    if (st == LG_OK) { /* the tridiagonal T's eigenvalues: the Ritz values */
        for (int64_t i = 0; i < m; i++) {
            t[i * m + i] = alpha[i];
            if (i + 1 < m)
                t[i * m + i + 1] = t[(i + 1) * m + i] = beta[i];
        }
        lgV_jacobi(t, m, ev, NULL);
        qsort(ev, (size_t)m, sizeof *ev, descending);
        memcpy(eigs, ev, (size_t)k * sizeof *eigs);
    }
    lgC_pfree(ctx, q), lgC_pfree(ctx, w), lgC_pfree(ctx, t), lgC_pfree(ctx, ev);
    lgC_pfree(ctx, alpha), lgC_pfree(ctx, beta), lgC_pfree(ctx, h.g);
    lgC_api_leave(ctx, outer);
    return st;
}

lg_status lg_hessian_trace(lg_ctx *ctx, lg_tensor *f, int n, lg_tensor *const *params,
                           double *trace, double *std_error, const lg_curvature_opts *opts)
{
    static const char who[] = "lg_hessian_trace";
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return ctx->status;
    lg_curvature_opts o;
    if (curvature_opts(ctx, who, opts, &o) != LG_OK)
        return ctx->status;
    if (!trace)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: trace is NULL", who);
    const char *outer = lgC_api_enter(ctx, who);
    hess h;
    lg_status st = lgV_hess_init(ctx, who, f, n, params, &h);
    double *z = NULL, *hz = NULL, sum = 0, sum2 = 0;
    if (st == LG_OK) {
        z = lgC_palloc(ctx, (size_t)h.P * sizeof *z, who);
        hz = lgC_palloc(ctx, (size_t)h.P * sizeof *hz, who);
        st = z && hz ? LG_OK : ctx->status;
    }
    for (int64_t s = 0; st == LG_OK && s < o.iters; s++) {
        for (int64_t j = 0; j < h.P; j++)
            z[j] = lg_rand_below(ctx, 2) ? 1.0 : -1.0;
        st = lgV_hess_apply(&h, z, hz);
        double e = lgV_dot(z, hz, h.P);
        sum += e, sum2 += e * e;
        if (o.progress)
            o.progress(o.progress_user, who, s + 1, o.iters);
    }
    if (st == LG_OK) {
        double N = (double)o.iters, mean = sum / N;
        *trace = mean;
        if (std_error) {
            double var = N > 1 ? (sum2 - N * mean * mean) / (N - 1) : 0;
            *std_error = N > 1 ? sqrt(var > 0 ? var / N : 0) : 0;
        }
    }
    lgC_pfree(ctx, z), lgC_pfree(ctx, hz), lgC_pfree(ctx, h.g);
    lgC_api_leave(ctx, outer);
    return st;
}
