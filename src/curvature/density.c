/* density.c: the Hessian's spectral density by stochastic Lanczos
 * quadrature (lossgrad/curvature.h): per probe, Lanczos from a random unit
 * start, then the tridiagonal's eigenpairs (Jacobi with the rotations
 * accumulated) give the quadrature nodes and weights; the density is their
 * Gaussian-smoothed sum on a grid. */
#include "internal.h"

#include <math.h>
#include <string.h>

static const lg_density_opts density_defaults = { .defaults_tag = LG_OPTS_TAG,
                                                  .probes = 1,
                                                  .steps = 100 };
static const lgC_optfield density_fields[] = {
    LGC_FIELD(lg_density_opts, probes, "1"),
    LGC_FIELD(lg_density_opts, steps, "100"),
};
static const lgC_opts_desc density_desc =
    LGC_DESC(lg_density_opts, density_defaults, density_fields);

lg_density_opts lg_density_opts_default(void)
{
    return density_defaults;
}

static lg_status density_opts(lg_ctx *ctx, const char *who, const lg_density_opts *opts,
                              lg_density_opts *o, int64_t points, const double *grid,
                              const double *density)
{
    if (!lgC_opts(ctx, who, &density_desc, opts, o))
        return ctx->status;
    if (o->probes < 1)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: probes = %lld, expected >= 1", who,
                          (long long)o->probes);
    if (o->steps < 1)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: steps = %lld, expected >= 1", who,
                          (long long)o->steps);
    if (!(o->lo == 0 && o->hi == 0) && !(o->lo < o->hi && isfinite(o->lo) && isfinite(o->hi)))
        return lgC_errorf(ctx, LG_ERR_VALUE,
                          "%s: lo = %g, hi = %g, expected finite lo < hi (or both 0: auto)", who,
                          o->lo, o->hi);
    if (!(o->sigma >= 0 && isfinite(o->sigma)))
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: sigma = %g, expected > 0 (or 0: auto)", who,
                          o->sigma);
    if (points < 2)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: points = %lld, expected >= 2", who,
                          (long long)points);
    if (!grid)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: grid is NULL", who);
    if (!density)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: density is NULL", who);
    return LG_OK;
}

/* The grid and the smoothed sum of the nodes (opts already checked). */
static void smooth(const lg_density_opts *o, int64_t count, const double *theta,
                   const double *weight, int64_t points, double *grid, double *density)
{
    double tmin = theta[0], tmax = theta[0];
    for (int64_t k = 1; k < count; k++)
        tmin = fmin(tmin, theta[k]), tmax = fmax(tmax, theta[k]);
    double r = fmax(1, tmax - tmin);
    double sigma = o->sigma > 0 ? o->sigma : sqrt(1e-5 * r);
    double lo = o->lo, hi = o->hi;
    if (lo == 0 && hi == 0)
        lo = tmin - (0.01 * r + 5 * sigma), hi = tmax + (0.01 * r + 5 * sigma);
    double c = 1 / (sigma * sqrt(2 * 3.14159265358979323846) * (double)o->probes);
    for (int64_t i = 0; i < points; i++) {
        double x = i + 1 == points ? hi : lo + (hi - lo) * (double)i / (double)(points - 1);
        double s = 0;
        for (int64_t k = 0; k < count; k++) {
            double z = (x - theta[k]) / sigma;
            s += weight[k] * exp(-0.5 * z * z);
        }
        grid[i] = x, density[i] = c * s;
    }
}

lg_status lg_density_from_nodes(lg_ctx *ctx, int64_t count, const double *theta,
                                const double *weight, int64_t points, double *grid, double *density,
                                const lg_density_opts *opts)
{
    static const char who[] = "lg_density_from_nodes";
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return ctx->status;
    lg_density_opts o;
    if (density_opts(ctx, who, opts, &o, points, grid, density) != LG_OK)
        return ctx->status;
    if (count < 1)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: count = %lld, expected >= 1", who,
                          (long long)count);
    if (!theta || !weight)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: %s is NULL", who, theta ? "weight" : "theta");
    smooth(&o, count, theta, weight, points, grid, density);
    return LG_OK;
}

/* One probe's start: Rademacher (lg_hessian_trace's draws) or normal, unit. */
static void probe_start(lg_ctx *ctx, bool normal, double *q, int64_t P)
{
    double s = 0;
    for (int64_t j = 0; j < P; j++) {
        q[j] = normal ? lg_rand_normal(ctx) : (lg_rand_below(ctx, 2) ? 1.0 : -1.0);
        s += q[j] * q[j];
    }
    s = s > 0 ? 1 / sqrt(s) : 0;
    for (int64_t j = 0; j < P; j++)
        q[j] *= s;
}

typedef struct slq_work {
    double *q, *w, *t, *V, *alpha, *beta;
} slq_work;

/* Probe p's m nodes and weights into theta, weight. */
static lg_status slq_probe(hess *h, const lg_density_opts *o, int64_t m, slq_work *k, double *theta,
                           double *weight, lg_progress_fn progress, void *user)
{
    probe_start(h->ctx, o->normal_probes, k->q, h->P);
    if (lgV_lanczos(h, m, k->q, k->alpha, k->beta, k->w, true, progress, user) != LG_OK)
        return h->ctx->status;
    memset(k->t, 0, (size_t)(m * m) * sizeof *k->t);
    for (int64_t i = 0; i < m; i++) {
        k->t[i * m + i] = k->alpha[i];
        if (i + 1 < m)
            k->t[i * m + i + 1] = k->t[(i + 1) * m + i] = k->beta[i];
    }
    lgV_jacobi(k->t, m, theta, k->V);
    for (int64_t i = 0; i < m; i++) /* the first component of eigenvector i, squared */
        weight[i] = k->V[i] * k->V[i];
    return LG_OK;
}

typedef struct progress_relay {
    const lg_density_opts *o;
    int64_t base, total;
} progress_relay;

static void relay(void *user, const char *what, int64_t done, int64_t total)
{
    (void)total;
    progress_relay *r = user;
    r->o->progress(r->o->progress_user, what, r->base + done, r->total);
}

static lg_status slq_run(hess *h, const lg_density_opts *o, int64_t m, double *theta,
                         double *weight)
{
    lg_ctx *ctx = h->ctx;
    int64_t P = h->P;
    slq_work k = {
        .q = lgC_palloc(ctx, (size_t)((m + 1) * P) * sizeof(double), h->who),
        .w = lgC_palloc(ctx, (size_t)P * sizeof(double), h->who),
        .t = lgC_palloc(ctx, (size_t)(m * m) * sizeof(double), h->who),
        .V = lgC_palloc(ctx, (size_t)(m * m) * sizeof(double), h->who),
        .alpha = lgC_palloc(ctx, (size_t)m * sizeof(double), h->who),
        .beta = lgC_palloc(ctx, (size_t)m * sizeof(double), h->who),
    };
    lg_status st = k.q && k.w && k.t && k.V && k.alpha && k.beta ? LG_OK : ctx->status;
    progress_relay r = { .o = o, .total = o->probes * m };
    for (int64_t p = 0; st == LG_OK && p < o->probes; p++) {
        r.base = p * m;
        st = slq_probe(h, o, m, &k, theta + p * m, weight + p * m, o->progress ? relay : NULL, &r);
    }
    lgC_pfree(ctx, k.q), lgC_pfree(ctx, k.w), lgC_pfree(ctx, k.t), lgC_pfree(ctx, k.V);
    lgC_pfree(ctx, k.alpha), lgC_pfree(ctx, k.beta);
    return st;
}

lg_status lg_hessian_density(lg_ctx *ctx, lg_tensor *f, int n, lg_tensor *const *params,
                             int64_t points, double *grid, double *density, double *theta,
                             double *weight, int64_t *count, const lg_density_opts *opts)
{
    static const char who[] = "lg_hessian_density";
    if (!ctx)
        return LG_ERR_NULL;
    if (lgC_failed(ctx, who))
        return ctx->status;
    lg_density_opts o;
    if (density_opts(ctx, who, opts, &o, points, grid, density) != LG_OK)
        return ctx->status;
    const char *outer = lgC_api_enter(ctx, who);
    hess h;
    lg_status st = lgV_hess_init(ctx, who, f, n, params, &h);
    int64_t m = o.steps < h.P ? o.steps : h.P, N = 0;
    if (st == LG_OK && m < 1)
        st = lgC_errorf(ctx, LG_ERR_VALUE, "%s: the parameters have no elements", who);
    if (st == LG_OK && o.probes > INT64_MAX / 16 / m)
        st = lgC_errorf(ctx, LG_ERR_VALUE, "%s: probes = %lld times %lld steps overflows", who,
                        (long long)o.probes, (long long)m);
    double *th = NULL, *wt = NULL;
    if (st == LG_OK) {
        N = o.probes * m;
        th = lgC_palloc(ctx, (size_t)N * sizeof *th, who);
        wt = lgC_palloc(ctx, (size_t)N * sizeof *wt, who);
        st = th && wt ? LG_OK : ctx->status;
    }
    if (st == LG_OK)
        st = slq_run(&h, &o, m, th, wt);
    if (st == LG_OK) {
        smooth(&o, N, th, wt, points, grid, density);
        if (theta)
            memcpy(theta, th, (size_t)N * sizeof *th);
        if (weight)
            memcpy(weight, wt, (size_t)N * sizeof *wt);
        if (count)
            *count = N;
    }
    lgC_pfree(ctx, th), lgC_pfree(ctx, wt), lgC_pfree(ctx, h.g);
    lgC_api_leave(ctx, outer);
    return st;
}
