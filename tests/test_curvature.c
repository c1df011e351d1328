/* test_curvature.c: lg_hessian_eigenvalues and lg_hessian_trace against the
 * dense Hessian (built column by column with lg_hvp, checked against a
 * closed form on a quadratic) and its eigenvalues from LAPACK's dsyev
 * (OpenBLAS carries LAPACK). */
#include "helpers.h"

#include <stdlib.h>
#include <string.h>

/* LAPACK: eigenvalues (ascending) of a symmetric matrix, column-major. */
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                   double *w, double *work, const int *lwork, int *info);

static void lapack_eigenvalues(double *a, int n, double *w)
{
    int lwork = 64 * n, info = 0;
    double *work = malloc((size_t)lwork * sizeof *work);
    dsyev_("N", "U", &n, a, &n, w, work, &lwork, &info);
    free(work);
    cr_assert_eq(info, 0, "dsyev failed: %d", info);
}

/* The dense Hessian [P, P] of f with respect to params, column j = H e_j. */
static double *dense_hessian(lg_ctx *ctx, lg_tensor *f, int n, lg_tensor *const *params, int P)
{
    double *H = calloc((size_t)P * P, sizeof *H);
    for (int j = 0; j < P; j++) {
        lg_tensor *v[8], *hv[8];
        int off = 0;
        for (int i = 0; i < n; i++) {
            v[i] = lg_zeros(ctx, LG_F64, lg_tensor_ndim(params[i]), lg_tensor_shape(params[i]));
            int64_t m = lg_tensor_numel(params[i]);
            if (j >= off && j < off + m)
                ((double *)lg_tensor_data(v[i]))[j - off] = 1;
            off += (int)m;
        }
        cr_assert_eq(lg_hvp(ctx, f, n, params, v, hv, false), LG_OK, "%s", lg_ctx_errmsg(ctx));
        off = 0;
        for (int i = 0; i < n; i++) {
            int64_t m = lg_tensor_numel(params[i]);
            for (int64_t k = 0; k < m; k++)
                H[(off + k) * P + j] = get(hv[i], k);
            off += (int)m;
        }
    }
    return H;
}

/* f = 0.5 x^T A x + b . x: the Hessian is A, its trace and spectrum known. */
Test(curvature, a_quadratic_has_the_matrix_as_hessian)
{
    enum { P = 7 };
    lg_ctx *ctx = test_ctx(4);
    lg_tensor *B = lg_randn(ctx, LG_F64, 2, SHAPE(P, P));
    lg_tensor *A = lg_add(ctx, B, lg_transpose(ctx, B, 0, 1)); /* symmetric, indefinite */
    lg_tensor *x = lg_randn(ctx, LG_F64, 2, SHAPE(P, 1)), *b = lg_randn(ctx, LG_F64, 2, SHAPE(P, 1));
    lg_requires_grad(ctx, x, true);
    lg_tensor *quad = lg_matmul_t(ctx, x, lg_matmul(ctx, A, x), true, false);
    lg_tensor *f = lg_add(ctx, lg_mul_scalar(ctx, lg_sum(ctx, quad, 0, NULL, false), 0.5),
                          lg_sum(ctx, lg_mul(ctx, b, x), 0, NULL, false));
    double *H = dense_hessian(ctx, f, 1, &x, P), a[P * P], w[P], tr = 0;
    for (int i = 0; i < P * P; i++)
        cr_assert(fabs(H[i] - get(A, i)) < 1e-13, "H[%d] = %g, A %g", i, H[i], get(A, i));
    for (int i = 0; i < P; i++)
        for (int j = 0; j < P; j++)
            a[j * P + i] = get(A, i * P + j), tr += i == j ? get(A, i * P + j) : 0;
    lapack_eigenvalues(a, P, w);
    double eigs[P];
    lg_curvature_opts o = lg_curvature_opts_default();
    o.iters = P; /* a full Krylov space: every eigenvalue exact to rounding */
    cr_assert_eq(lg_hessian_eigenvalues(ctx, f, 1, &x, P, eigs, &o), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    for (int i = 0; i < P; i++)
        cr_assert(fabs(eigs[i] - w[P - 1 - i]) <= 1e-9 * fmax(1, fabs(w[P - 1 - i])),
                  "eig %d: lanczos %.15g, lapack %.15g", i, eigs[i], w[P - 1 - i]);
    /* Hutchinson: E[z^T A z] = tr A; many probes land near it */
    double t, se;
    o.iters = 4000;
    cr_assert_eq(lg_hessian_trace(ctx, f, 1, &x, &t, &se, &o), LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert(fabs(t - tr) <= 3 * se && se > 0 && se < 0.5, "trace %g +- %g, exact %g", t, se, tr);
    free(H);
    lg_ctx_free(ctx);
}

/* A small MLP's loss (tanh hidden layer, MSE): Lanczos' top eigenvalues
 * against the dense Hessian's, within 1e-6 relative after 20 of P = 29
 * steps, and exactly with all 29. */
Test(curvature, mlp_top_eigenvalues_match_the_dense_hessian)
{
    lg_ctx *ctx = test_ctx(9);
    lg_tensor *w1 = lg_param_new(ctx, "w1", LG_F64, 2, SHAPE(5, 3)),
              *b1 = lg_param_new(ctx, "b1", LG_F64, 1, SHAPE(5)),
              *w2 = lg_param_new(ctx, "w2", LG_F64, 2, SHAPE(1, 5)),
              *b2 = lg_param_new(ctx, "b2", LG_F64, 1, SHAPE(1));
    lg_tensor *params[4] = { w1, b1, w2, b2 };
    for (int i = 0; i < 4; i++)
        lg_copy_into(ctx, params[i], lg_randn(ctx, LG_F64, lg_tensor_ndim(params[i]),
                                              lg_tensor_shape(params[i])));
    lg_tensor *x = lg_randn(ctx, LG_F64, 2, SHAPE(16, 3)), *y = lg_randn(ctx, LG_F64, 2, SHAPE(16, 1));
    lg_tensor *h = lg_tanh(ctx, lg_matmul_bias(ctx, x, w1, b1, false, true));
    lg_tensor *f = lg_mse_loss(ctx, lg_matmul_bias(ctx, h, w2, b2, false, true), y, NULL);
    enum { P = 15 + 5 + 5 + 1 };
    double *H = dense_hessian(ctx, f, 4, params, P), a[P * P], w[P];
    for (int i = 0; i < P; i++)
        for (int j = 0; j < P; j++) {
            cr_assert(fabs(H[i * P + j] - H[j * P + i]) < 1e-12, "H not symmetric at %d %d", i, j);
            a[j * P + i] = H[i * P + j];
        }
    lapack_eigenvalues(a, P, w);
    double eigs[P];
    lg_curvature_opts o = lg_curvature_opts_default();
    o.iters = 20;
    cr_assert_eq(lg_hessian_eigenvalues(ctx, f, 4, params, 3, eigs, &o), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    for (int i = 0; i < 3; i++)
        cr_assert(fabs(eigs[i] - w[P - 1 - i]) <= 1e-6 * fabs(w[P - 1 - i]),
                  "eig %d: lanczos %.12g, lapack %.12g", i, eigs[i], w[P - 1 - i]);
    o.iters = 1000; /* capped at P */
    cr_assert_eq(lg_hessian_eigenvalues(ctx, f, 4, params, P, eigs, &o), LG_OK);
    for (int i = 0; i < P; i++)
        cr_assert(fabs(eigs[i] - w[P - 1 - i]) <= 1e-9 * fmax(1, fabs(w[P - 1])),
                  "eig %d: lanczos %.12g, lapack %.12g", i, eigs[i], w[P - 1 - i]);
    /* f's graph is kept: a backward still works, into the parameters */
    cr_assert_eq(lg_backward(ctx, f), LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert_not_null(lg_tensor_grad(w1));
    free(H);
    lg_ctx_free(ctx);
}

static void count_calls(void *user, const char *what, int64_t done, int64_t total)
{
    (void)what;
    int64_t *c = user;
    c[0]++, c[1] = done, c[2] = total;
}

Test(curvature, progress_and_errors)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *x = lg_randn(ctx, LG_F64, 1, SHAPE(4));
    lg_requires_grad(ctx, x, true);
    lg_tensor *f = lg_sum(ctx, lg_pow_scalar(ctx, x, 4), 0, NULL, false);
    double e[4], t;
    int64_t calls[3] = { 0 };
    lg_curvature_opts o = lg_curvature_opts_default();
    o.iters = 3, o.progress = count_calls, o.progress_user = calls;
    cr_assert_eq(lg_hessian_eigenvalues(ctx, f, 1, &x, 2, e, &o), LG_OK);
    cr_assert(calls[0] == 3 && calls[1] == 3 && calls[2] == 3);
    EXPECT_ERR(ctx, lg_hessian_eigenvalues(ctx, f, 1, &x, 4, e, &o), LG_ERR_VALUE,
               "k = 4, expected 1..3");
    o.iters = 0;
    EXPECT_ERR(ctx, lg_hessian_trace(ctx, f, 1, &x, &t, NULL, &o), LG_ERR_VALUE, "iters = 0");
    EXPECT_ERR(ctx, lg_hessian_trace(ctx, f, 1, &x, NULL, NULL, NULL), LG_ERR_NULL, "trace is NULL");
    EXPECT_ERR(ctx, lg_hessian_trace(ctx, x, 1, &x, &t, NULL, NULL), LG_ERR_SHAPE,
               "lg_hessian_trace: f has 4 elements");
    lg_ctx_free(ctx);
}

/* ---- spectral density (stochastic Lanczos quadrature) ---------------- */

/* f = 0.5 x^T A x with A symmetric [P, P] (the Hessian), A's values in a
 * (row-major), its eigenvalues (ascending) in w and trace in *tr. */
static lg_tensor *quadratic(lg_ctx *ctx, int P, lg_tensor **x, double *a, double *w, double *tr)
{
    lg_tensor *B = lg_randn(ctx, LG_F64, 2, SHAPE(P, P));
    lg_tensor *A = lg_add(ctx, B, lg_transpose(ctx, B, 0, 1));
    *x = lg_randn(ctx, LG_F64, 2, SHAPE(P, 1));
    lg_requires_grad(ctx, *x, true);
    lg_tensor *quad = lg_matmul_t(ctx, *x, lg_matmul(ctx, A, *x), true, false);
    double *cm = malloc((size_t)P * P * sizeof *cm);
    *tr = 0;
    for (int i = 0; i < P; i++)
        for (int j = 0; j < P; j++) {
            a[i * P + j] = cm[j * P + i] = get(A, i * P + j);
            *tr += i == j ? a[i * P + j] : 0;
        }
    lapack_eigenvalues(cm, P, w);
    free(cm);
    return lg_mul_scalar(ctx, lg_sum(ctx, quad, 0, NULL, false), 0.5);
}

static int ascending(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

/* With m = P the nodes are A's eigenvalues; the density integrates to 1;
 * sum_k w_k theta_k = q^T A q exactly, q = z / sqrt(P) for lg_hessian_trace's
 * z from the same RNG state; over many probes it averages to tr A / P. */
Test(curvature, density_of_a_quadratic)
{
    enum { P = 7, G = 4001 };
    lg_ctx *ctx = test_ctx(5);
    lg_tensor *x;
    double a[P * P], w[P], tr;
    lg_tensor *f = quadratic(ctx, P, &x, a, w, &tr);
    static double grid[G], dens[G], th[400 * P], wt[400 * P];
    int64_t count = 0;
    lg_density_opts o = lg_density_opts_default();
    o.steps = P;
    cr_assert_eq(lg_hessian_density(ctx, f, 1, &x, G, grid, dens, th, wt, &count, &o), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    cr_assert_eq(count, P);
    double sw = 0, integral = 0;
    for (int k = 0; k < P; k++)
        sw += wt[k];
    cr_assert(fabs(sw - 1) < 1e-12, "weights sum to %.15g", sw);
    qsort(th, P, sizeof *th, ascending);
    for (int k = 0; k < P; k++)
        cr_assert(fabs(th[k] - w[k]) <= 1e-9 * fmax(1, fabs(w[k])), "node %d: %.15g, dsyev %.15g",
                  k, th[k], w[k]);
    for (int i = 0; i + 1 < G; i++)
        integral += 0.5 * (dens[i] + dens[i + 1]) * (grid[i + 1] - grid[i]);
    cr_assert(fabs(integral - 1) < 1e-6, "the density integrates to %.12g", integral);
    cr_assert(grid[0] < w[0] && grid[G - 1] > w[P - 1]);
    /* the weighted mean of one probe's nodes: q^T A q, exactly (m = 3 < P) */
    double t;
    lg_curvature_opts co = lg_curvature_opts_default();
    co.iters = 5;
    lg_seed(ctx, 11);
    cr_assert_eq(lg_hessian_trace(ctx, f, 1, &x, &t, NULL, &co), LG_OK);
    lg_seed(ctx, 11);
    o.probes = 5, o.steps = 3;
    cr_assert_eq(lg_hessian_density(ctx, f, 1, &x, G, grid, dens, th, wt, &count, &o), LG_OK);
    cr_assert_eq(count, 15);
    double mean = 0;
    for (int k = 0; k < count; k++)
        mean += wt[k] * th[k] / 5;
    cr_assert(fabs(mean * P - t) <= 1e-10 * fmax(1, fabs(t)), "SLQ %.15g, Hutchinson %.15g",
              mean * P, t);
    /* 400 normal probes: the per-probe means average to tr A / P */
    o.probes = 400, o.normal_probes = true;
    cr_assert_eq(lg_hessian_density(ctx, f, 1, &x, G, grid, dens, th, wt, &count, &o), LG_OK);
    double s1 = 0, s2 = 0;
    for (int p = 0; p < 400; p++) {
        double e = 0;
        for (int k = 0; k < 3; k++)
            e += wt[p * 3 + k] * th[p * 3 + k];
        s1 += e, s2 += e * e;
    }
    double m1 = s1 / 400, se = sqrt((s2 / 400 - m1 * m1) / 399);
    cr_assert(fabs(m1 - tr / P) <= 4 * se && se > 0, "mean %g +- %g, tr A / P %g", m1, se, tr / P);
    lg_ctx_free(ctx);
}

/* The same ctx seed gives the same density; lg_density_from_nodes redraws
 * it from the nodes; the grid is the one asked for. */
Test(curvature, density_is_deterministic_and_redrawn_from_nodes)
{
    enum { P = 6, G = 201 };
    lg_ctx *ctx = test_ctx(8);
    lg_tensor *x;
    double a[P * P], w[P], tr;
    lg_tensor *f = quadratic(ctx, P, &x, a, w, &tr);
    double g1[G], d1[G], g2[G], d2[G], th[3 * 4], wt[3 * 4];
    int64_t count, calls[3] = { 0 };
    lg_density_opts o = lg_density_opts_default();
    o.probes = 3, o.steps = 4, o.lo = -20, o.hi = 20, o.sigma = 0.5;
    o.progress = count_calls, o.progress_user = calls;
    lg_seed(ctx, 3);
    cr_assert_eq(lg_hessian_density(ctx, f, 1, &x, G, g1, d1, th, wt, &count, &o), LG_OK);
    cr_assert(calls[0] == 12 && calls[1] == 12 && calls[2] == 12, "progress %lld %lld %lld",
              (long long)calls[0], (long long)calls[1], (long long)calls[2]);
    o.progress = NULL;
    lg_seed(ctx, 3);
    cr_assert_eq(lg_hessian_density(ctx, f, 1, &x, G, g2, d2, NULL, NULL, NULL, &o), LG_OK);
    cr_assert(memcmp(d1, d2, sizeof d1) == 0 && memcmp(g1, g2, sizeof g1) == 0);
    cr_assert(g1[0] == -20 && g1[G - 1] == 20 && fabs(g1[100]) < 1e-15);
    cr_assert_eq(lg_density_from_nodes(ctx, count, th, wt, G, g2, d2, &o), LG_OK);
    cr_assert(memcmp(d1, d2, sizeof d1) == 0);
    /* one node by hand: the Gaussian itself */
    double one = 2, ww = 1;
    o.probes = 1, o.lo = 0, o.hi = 4, o.sigma = 1;
    cr_assert_eq(lg_density_from_nodes(ctx, 1, &one, &ww, G, g2, d2, &o), LG_OK);
    for (int i = 0; i < G; i += 20)
        cr_assert(fabs(d2[i] - exp(-0.5 * (g2[i] - 2) * (g2[i] - 2)) / sqrt(2 * M_PI)) < 1e-15);
    lg_ctx_free(ctx);
}

Test(curvature, density_errors)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *x = lg_randn(ctx, LG_F64, 1, SHAPE(4));
    lg_requires_grad(ctx, x, true);
    lg_tensor *f = lg_sum(ctx, lg_pow_scalar(ctx, x, 4), 0, NULL, false);
    double g[8], d[8];
    lg_density_opts o = lg_density_opts_default();
    EXPECT_ERR(ctx, lg_hessian_density(ctx, f, 1, &x, 1, g, d, NULL, NULL, NULL, &o), LG_ERR_VALUE,
               "lg_hessian_density: points = 1, expected >= 2");
    o.lo = 1, o.hi = 0;
    EXPECT_ERR(ctx, lg_hessian_density(ctx, f, 1, &x, 8, g, d, NULL, NULL, NULL, &o), LG_ERR_VALUE,
               "lo = 1, hi = 0, expected finite lo < hi");
    o = lg_density_opts_default();
    o.sigma = -1;
    EXPECT_ERR(ctx, lg_hessian_density(ctx, f, 1, &x, 8, g, d, NULL, NULL, NULL, &o), LG_ERR_VALUE,
               "sigma = -1");
    EXPECT_ERR(ctx, lg_hessian_density(ctx, f, 1, &x, 8, NULL, d, NULL, NULL, NULL, NULL),
               LG_ERR_NULL, "grid is NULL");
    EXPECT_ERR(ctx, lg_hessian_density(ctx, x, 1, &x, 8, g, d, NULL, NULL, NULL, NULL),
               LG_ERR_SHAPE, "lg_hessian_density: f has 4 elements");
    EXPECT_ERR(ctx,
               lg_hessian_density(ctx, f, 1, &x, 8, g, d, NULL, NULL, NULL,
                                  &(lg_density_opts){ .steps = 4 }),
               LG_ERR_VALUE, "lg_density_opts.probes is 0 in a struct not made by");
    o = lg_density_opts_default();
    o.probes = 0;
    EXPECT_ERR(ctx, lg_hessian_density(ctx, f, 1, &x, 8, g, d, NULL, NULL, NULL, &o), LG_ERR_VALUE,
               "probes = 0, expected >= 1");
    EXPECT_ERR(ctx, lg_density_from_nodes(ctx, 0, g, d, 8, g, d, NULL), LG_ERR_VALUE,
               "lg_density_from_nodes: count = 0");
    lg_ctx_free(ctx);
}

/* ---- loss-landscape slices ------------------------------------------- */

/* sum over the parameters of sum(p^2); fails (returns NULL) from call
 * fail_at on when that is > 0. */
typedef struct sq_model {
    int n, calls, fail_at;
    lg_tensor **p;
} sq_model;

static lg_tensor *sum_squares(lg_ctx *ctx, void *user)
{
    sq_model *m = user;
    if (m->fail_at && ++m->calls >= m->fail_at)
        return NULL;
    lg_tensor *s = NULL;
    for (int i = 0; i < m->n; i++) {
        lg_tensor *t = lg_sum(ctx, lg_square(ctx, m->p[i]), 0, NULL, false);
        s = s ? lg_add(ctx, s, t) : t;
    }
    return s;
}

static lg_tensor *copy_of(lg_ctx *ctx, lg_tensor *t)
{
    return lg_tensor_from(ctx, lg_tensor_dtype(t), lg_tensor_data(t), lg_tensor_ndim(t),
                          lg_tensor_shape(t));
}

static double row_norm(lg_tensor *t, int64_t r, int64_t len)
{
    double s = 0;
    for (int64_t j = 0; j < len; j++)
        s += get(t, r * len + j) * get(t, r * len + j);
    return sqrt(s);
}

/* Filter normalisation: each filter of d gets its parameter filter's norm;
 * a bias's direction is zeroed, or with keep_1d scaled to the bias's norm. */
Test(curvature, filter_normalisation_scales_each_filter)
{
    lg_ctx *ctx = test_ctx(6);
    lg_tensor *W = lg_param_new(ctx, "W", LG_F64, 3, SHAPE(3, 2, 2)),
              *b = lg_param_new(ctx, "b", LG_F64, 1, SHAPE(3));
    lg_copy_into(ctx, W, lg_randn(ctx, LG_F64, 3, SHAPE(3, 2, 2)));
    lg_copy_into(ctx, b, lg_randn(ctx, LG_F64, 1, SHAPE(3)));
    lg_tensor *p[2] = { W, b };
    lg_tensor *d[2] = { lg_randn(ctx, LG_F64, 3, SHAPE(3, 2, 2)),
                        lg_randn(ctx, LG_F64, 1, SHAPE(3)) };
    lg_tensor *d0 = copy_of(ctx, d[0]);
    cr_assert_eq(lg_filter_normalize(ctx, 2, p, d, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    for (int r = 0; r < 3; r++) {
        cr_assert(fabs(row_norm(d[0], r, 4) - row_norm(W, r, 4)) < 1e-12, "filter %d", r);
        double s = row_norm(W, r, 4) / row_norm(d0, r, 4); /* the same direction, rescaled */
        for (int j = 0; j < 4; j++)
            cr_assert(fabs(get(d[0], r * 4 + j) - s * get(d0, r * 4 + j)) < 1e-12);
        cr_assert_eq(get(d[1], r), 0.0);
    }
    lg_landscape_opts o = lg_landscape_opts_default();
    o.keep_1d = true;
    d[1] = lg_randn(ctx, LG_F64, 1, SHAPE(3));
    cr_assert_eq(lg_filter_normalize(ctx, 2, p, d, &o), LG_OK);
    cr_assert(fabs(row_norm(d[1], 0, 3) - row_norm(b, 0, 3)) < 1e-12);
    lg_ctx_free(ctx);
}

/* f = sum(X^2) + sum(b^2) along a given direction: the closed form
 * sum((X + a dX)^2) + sum(b^2) (b's direction zeroed), the parameters
 * restored bit for bit (float32, where a cast back would not be exact),
 * the given direction left alone. */
Test(curvature, landscape_1d_of_a_parabola)
{
    enum { G = 13 };
    lg_ctx *ctx = test_ctx(7);
    lg_tensor *X = lg_param_new(ctx, "X", LG_F32, 2, SHAPE(3, 4)),
              *b = lg_param_new(ctx, "b", LG_F32, 1, SHAPE(4));
    lg_copy_into(ctx, X, lg_randn(ctx, LG_F32, 2, SHAPE(3, 4)));
    lg_copy_into(ctx, b, lg_randn(ctx, LG_F32, 1, SHAPE(4)));
    lg_tensor *p[2] = { X, b };
    sq_model m = { .n = 2, .p = p };
    float X0[12], b0[4];
    memcpy(X0, lg_tensor_data(X), sizeof X0), memcpy(b0, lg_tensor_data(b), sizeof b0);
    lg_tensor *d[2] = { lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)), lg_randn(ctx, LG_F32, 1, SHAPE(4)) };
    lg_tensor *dn[2] = { copy_of(ctx, d[0]), copy_of(ctx, d[1]) }, *dcopy = copy_of(ctx, d[0]);
    cr_assert_eq(lg_filter_normalize(ctx, 2, p, dn, NULL), LG_OK);
    double al[G], loss[G];
    lg_landscape_opts o = lg_landscape_opts_default();
    o.lo = -0.5, o.hi = 2.5;
    cr_assert_eq(lg_loss_landscape_1d(ctx, sum_squares, &m, 2, p, d, G, al, loss, &o), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    for (int i = 0; i < G; i++) {
        double a = -0.5 + 3.0 * i / (G - 1), want = 0;
        cr_assert(fabs(al[i] - a) < 1e-15);
        for (int j = 0; j < 12; j++) {
            double v = (float)(X0[j] + a * get(dn[0], j));
            want += v * v;
        }
        for (int j = 0; j < 4; j++)
            want += (double)b0[j] * b0[j];
        cr_assert(fabs(loss[i] - want) <= 1e-5 * want, "a = %g: %.9g, closed form %.9g", a, loss[i],
                  want);
    }
    cr_assert(memcmp(X0, lg_tensor_data(X), sizeof X0) == 0, "X not restored");
    cr_assert(memcmp(b0, lg_tensor_data(b), sizeof b0) == 0, "b not restored");
    cr_assert(memcmp(lg_tensor_data(d[0]), lg_tensor_data(dcopy), 12 * sizeof(double)) == 0);
    /* raw directions, a 1-d parameter: sum((x + a d)^2) as given */
    lg_tensor *x = lg_randn(ctx, LG_F64, 1, SHAPE(5)), *dx = lg_randn(ctx, LG_F64, 1, SHAPE(5));
    sq_model m1 = { .n = 1, .p = &x };
    o.raw_directions = true;
    cr_assert_eq(lg_loss_landscape_1d(ctx, sum_squares, &m1, 1, &x, &dx, G, NULL, loss, &o), LG_OK);
    for (int i = 0; i < G; i++) {
        double a = -0.5 + 3.0 * i / (G - 1), want = 0;
        for (int j = 0; j < 5; j++)
            want += (get(x, j) + a * get(dx, j)) * (get(x, j) + a * get(dx, j));
        cr_assert(fabs(loss[i] - want) <= 1e-13 * want, "a = %g: %.15g vs %.15g", a, loss[i], want);
    }
    lg_ctx_free(ctx);
}

typedef struct lin_model {
    lg_tensor *W, *c, *X, *Y;
} lin_model;

static lg_tensor *lin_loss(lg_ctx *ctx, void *user)
{
    lin_model *m = user;
    return lg_mse_loss(ctx, lg_matmul_bias(ctx, m->X, m->W, m->c, false, true), m->Y, NULL);
}

/* A linear model's 2-D slice against direct evaluation at theta + a d1 +
 * b d2 (filter-normalised, the bias kept), and drawn directions repeat for
 * the same seed. */
Test(curvature, landscape_2d_matches_direct_evaluation)
{
    enum { G = 5 };
    lg_ctx *ctx = test_ctx(12);
    lin_model m = { lg_param_new(ctx, "W", LG_F64, 2, SHAPE(2, 3)),
                    lg_param_new(ctx, "c", LG_F64, 1, SHAPE(2)),
                    lg_randn(ctx, LG_F64, 2, SHAPE(5, 3)), lg_randn(ctx, LG_F64, 2, SHAPE(5, 2)) };
    lg_copy_into(ctx, m.W, lg_randn(ctx, LG_F64, 2, SHAPE(2, 3)));
    lg_copy_into(ctx, m.c, lg_randn(ctx, LG_F64, 1, SHAPE(2)));
    lg_tensor *p[2] = { m.W, m.c }, *W0 = copy_of(ctx, m.W), *c0 = copy_of(ctx, m.c);
    lg_tensor *d1[2] = { lg_randn(ctx, LG_F64, 2, SHAPE(2, 3)),
                         lg_randn(ctx, LG_F64, 1, SHAPE(2)) };
    lg_tensor *d2[2] = { lg_randn(ctx, LG_F64, 2, SHAPE(2, 3)),
                         lg_randn(ctx, LG_F64, 1, SHAPE(2)) };
    lg_tensor *n1[2] = { copy_of(ctx, d1[0]), copy_of(ctx, d1[1]) };
    lg_tensor *n2[2] = { copy_of(ctx, d2[0]), copy_of(ctx, d2[1]) };
    lg_landscape_opts o = lg_landscape_opts_default();
    o.keep_1d = true, o.lo = -2, o.hi = 1;
    cr_assert_eq(lg_filter_normalize(ctx, 2, p, n1, &o), LG_OK);
    cr_assert_eq(lg_filter_normalize(ctx, 2, p, n2, &o), LG_OK);
    double al[G], loss[G * G], again[G * G];
    int64_t calls[3] = { 0 };
    o.progress = count_calls, o.progress_user = calls;
    cr_assert_eq(lg_loss_landscape_2d(ctx, lin_loss, &m, 2, p, d1, d2, G, al, loss, &o), LG_OK,
                 "%s", lg_ctx_errmsg(ctx));
    cr_assert(calls[0] == G * G && calls[1] == G * G && calls[2] == G * G);
    double *wd = lg_tensor_data(m.W), *cd = lg_tensor_data(m.c);
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++) {
            for (int k = 0; k < 6; k++)
                wd[k] = get(W0, k) + al[i] * get(n1[0], k) + al[j] * get(n2[0], k);
            for (int k = 0; k < 2; k++)
                cd[k] = get(c0, k) + al[i] * get(n1[1], k) + al[j] * get(n2[1], k);
            double want = lg_item(ctx, lin_loss(ctx, &m));
            cr_assert(fabs(loss[i * G + j] - want) <= 1e-14 * want, "(%d, %d): %.17g vs %.17g", i,
                      j, loss[i * G + j], want);
        }
    lg_copy_into(ctx, m.W, W0), lg_copy_into(ctx, m.c, c0);
    o.progress = NULL;
    lg_seed(ctx, 4);
    cr_assert_eq(lg_loss_landscape_2d(ctx, lin_loss, &m, 2, p, NULL, NULL, G, al, loss, &o), LG_OK);
    lg_seed(ctx, 4);
    cr_assert_eq(lg_loss_landscape_2d(ctx, lin_loss, &m, 2, p, NULL, NULL, G, al, again, &o),
                 LG_OK);
    cr_assert(memcmp(loss, again, sizeof loss) == 0);
    cr_assert(memcmp(lg_tensor_data(m.W), lg_tensor_data(W0), 6 * sizeof(double)) == 0);
    lg_ctx_free(ctx);
}

static lg_tensor *two_elements(lg_ctx *ctx, void *user)
{
    return lg_mul_scalar(ctx, (lg_tensor *)user, 2);
}

Test(curvature, landscape_errors)
{
    lg_ctx *ctx = test_ctx(3);
    lg_tensor *X = lg_param_new(ctx, "X", LG_F32, 2, SHAPE(3, 4));
    lg_copy_into(ctx, X, lg_randn(ctx, LG_F32, 2, SHAPE(3, 4)));
    float X0[12];
    memcpy(X0, lg_tensor_data(X), sizeof X0);
    sq_model m = { .n = 1, .p = &X };
    double loss[16];
    lg_landscape_opts o = lg_landscape_opts_default();
    EXPECT_ERR(ctx, lg_loss_landscape_1d(ctx, sum_squares, &m, 1, &X, NULL, 1, NULL, loss, &o),
               LG_ERR_VALUE, "lg_loss_landscape_1d: points = 1, expected >= 2");
    o.lo = 1, o.hi = 1;
    EXPECT_ERR(ctx, lg_loss_landscape_1d(ctx, sum_squares, &m, 1, &X, NULL, 4, NULL, loss, &o),
               LG_ERR_VALUE, "lo = 1, hi = 1, expected finite lo < hi");
    EXPECT_ERR(ctx,
               lg_loss_landscape_1d(ctx, sum_squares, &m, 1, &X, NULL, 4, NULL, loss,
                                    &(lg_landscape_opts){ .lo = -1 }),
               LG_ERR_VALUE, "lg_landscape_opts.hi is 0 in a struct not made by");
    EXPECT_ERR(ctx, lg_loss_landscape_1d(ctx, NULL, &m, 1, &X, NULL, 4, NULL, loss, NULL),
               LG_ERR_NULL, "lg_loss_landscape_1d: loss_fn is NULL");
    EXPECT_ERR(ctx, lg_loss_landscape_1d(ctx, sum_squares, &m, 1, &X, NULL, 4, NULL, NULL, NULL),
               LG_ERR_NULL, "losses is NULL");
    lg_tensor *bad = lg_randn(ctx, LG_F32, 2, SHAPE(4, 3)),
              *good = lg_randn(ctx, LG_F32, 2, SHAPE(3, 4));
    EXPECT_ERR(ctx,
               lg_loss_landscape_2d(ctx, sum_squares, &m, 1, &X, &good, &bad, 4, NULL, loss, NULL),
               LG_ERR_SHAPE,
               "lg_loss_landscape_2d: d2[0] has shape [4, 3], expected [3, 4] "
               "(params[0]'s)");
    EXPECT_ERR(ctx, lg_filter_normalize(ctx, 1, &X, &bad, NULL), LG_ERR_SHAPE,
               "lg_filter_normalize: dirs[0] has shape [4, 3]");
    lg_tensor *two = lg_randn(ctx, LG_F64, 1, SHAPE(2));
    EXPECT_ERR(ctx, lg_loss_landscape_1d(ctx, two_elements, two, 1, &X, NULL, 4, NULL, loss, NULL),
               LG_ERR_SHAPE, "loss_fn's loss has 2 elements, expected one");
    /* a loss_fn failing mid-grid: the error, and X restored bit for bit */
    m.fail_at = 3;
    EXPECT_ERR(ctx, lg_loss_landscape_1d(ctx, sum_squares, &m, 1, &X, NULL, 8, NULL, loss, NULL),
               LG_ERR_NULL, "loss_fn returned NULL");
    cr_assert_eq(m.calls, 3);
    cr_assert(memcmp(X0, lg_tensor_data(X), sizeof X0) == 0, "X not restored after an error");
    /* no no-grad region nor scope left open */
    EXPECT_ERR(ctx, lg_no_grad_end(ctx), LG_ERR_STATE, "no lg_no_grad_begin is open");
    EXPECT_ERR(ctx, lg_scope_end(ctx, 0, NULL), LG_ERR_STATE, "no lg_scope_begin is open");
    lg_ctx_free(ctx);
}

/* ---- sharpness ------------------------------------------------------- */

typedef struct lin_form {
    lg_tensor *c, *x;
} lin_form;

static lg_tensor *linear_form(lg_ctx *ctx, void *user)
{
    lin_form *l = user;
    return lg_sum(ctx, lg_mul(ctx, l->c, l->x), 0, NULL, false);
}

/* Keskar's sharpness where the box's maximum is a corner: sum(x^2) (the
 * corner sign(x_i) eps (|x_i| + 1) away) and c . x (sign(c_i) there); the
 * parameters restored bit for bit and their .grad untouched. */
Test(curvature, sharpness_reaches_the_box_corner)
{
    lg_ctx *ctx = test_ctx(21);
    lg_tensor *X = lg_param_new(ctx, "X", LG_F64, 2, SHAPE(2, 3));
    lg_copy_into(ctx, X, lg_randn(ctx, LG_F64, 2, SHAPE(2, 3)));
    lg_tensor *X0 = copy_of(ctx, X);
    sq_model m = { .n = 1, .p = &X };
    lg_sharpness_report r;
    lg_sharpness_opts o = lg_sharpness_opts_default();
    o.eps = 0.05;
    int64_t calls[3] = { 0 };
    o.progress = count_calls, o.progress_user = calls;
    cr_assert_eq(lg_sharpness(ctx, sum_squares, &m, 1, &X, &r, &o), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    cr_assert(calls[0] == 20 && calls[1] == 20 && calls[2] == 20);
    double f0 = 0, fmax = 0;
    for (int j = 0; j < 6; j++) {
        double v = fabs(get(X0, j));
        f0 += v * v, fmax += (v + 0.05 * (v + 1)) * (v + 0.05 * (v + 1));
    }
    cr_assert(fabs(r.loss - f0) < 1e-13 * f0 && fabs(r.max_loss - fmax) < 1e-13 * fmax,
              "loss %.15g (%.15g), max %.15g (%.15g)", r.loss, f0, r.max_loss, fmax);
    cr_assert(fabs(r.sharpness - 100 * (fmax - f0) / (1 + f0)) < 1e-10);
    cr_assert(memcmp(lg_tensor_data(X), lg_tensor_data(X0), 6 * sizeof(double)) == 0);
    cr_assert_null(lg_tensor_grad(X));
    lin_form l = { lg_randn(ctx, LG_F64, 2, SHAPE(2, 3)), X };
    cr_assert_eq(lg_sharpness(ctx, linear_form, &l, 1, &X, &r, NULL), LG_OK);
    double up = 0, base = 0;
    for (int j = 0; j < 6; j++)
        up += fabs(get(l.c, j)) * 1e-3 * (fabs(get(X0, j)) + 1), base += get(l.c, j) * get(X0, j);
    cr_assert(fabs(r.loss - base) < 1e-13 && fabs(r.max_loss - base - up) < 1e-13,
              "max %.15g, closed form %.15g", r.max_loss, base + up);
    lg_ctx_free(ctx);
}

Test(curvature, sharpness_errors)
{
    lg_ctx *ctx = test_ctx(22);
    lg_tensor *X = lg_param_new(ctx, "X", LG_F64, 1, SHAPE(3));
    lg_copy_into(ctx, X, lg_randn(ctx, LG_F64, 1, SHAPE(3)));
    double X0[3];
    memcpy(X0, lg_tensor_data(X), sizeof X0);
    sq_model m = { .n = 1, .p = &X };
    lg_sharpness_report r;
    lg_sharpness_opts o = lg_sharpness_opts_default();
    o.eps = 0;
    EXPECT_ERR(ctx, lg_sharpness(ctx, sum_squares, &m, 1, &X, &r, &o), LG_ERR_VALUE,
               "lg_sharpness: eps = 0, expected > 0");
    EXPECT_ERR(ctx, lg_sharpness(ctx, sum_squares, &m, 1, &X, &r, &(lg_sharpness_opts){ .eps = 1 }),
               LG_ERR_VALUE, "lg_sharpness_opts.steps is 0 in a struct not made by");
    EXPECT_ERR(ctx, lg_sharpness(ctx, NULL, &m, 1, &X, &r, NULL), LG_ERR_NULL,
               "lg_sharpness: loss_fn is NULL");
    EXPECT_ERR(ctx, lg_sharpness(ctx, sum_squares, &m, 1, &X, NULL, NULL), LG_ERR_NULL,
               "report is NULL");
    m.fail_at = 4;
    EXPECT_ERR(ctx, lg_sharpness(ctx, sum_squares, &m, 1, &X, &r, NULL), LG_ERR_NULL,
               "lg_sharpness: loss_fn returned NULL");
    cr_assert(memcmp(X0, lg_tensor_data(X), sizeof X0) == 0, "X not restored after an error");
    EXPECT_ERR(ctx, lg_scope_end(ctx, 0, NULL), LG_ERR_STATE, "no lg_scope_begin is open");
    lg_ctx_free(ctx);
}
