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
    cr_assert_eq(lg_hessian_density(ctx, f, 1, &x, G, grid, dens, th, wt, &count, &o), LG_OK,
                 "%s", lg_ctx_errmsg(ctx));
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
    EXPECT_ERR(ctx, lg_hessian_density(ctx, f, 1, &x, 1, g, d, NULL, NULL, NULL, &o),
               LG_ERR_VALUE, "lg_hessian_density: points = 1, expected >= 2");
    o.lo = 1, o.hi = 0;
    EXPECT_ERR(ctx, lg_hessian_density(ctx, f, 1, &x, 8, g, d, NULL, NULL, NULL, &o),
               LG_ERR_VALUE, "lo = 1, hi = 0, expected finite lo < hi");
    o = lg_density_opts_default();
    o.sigma = -1;
    EXPECT_ERR(ctx, lg_hessian_density(ctx, f, 1, &x, 8, g, d, NULL, NULL, NULL, &o),
               LG_ERR_VALUE, "sigma = -1");
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
    EXPECT_ERR(ctx, lg_hessian_density(ctx, f, 1, &x, 8, g, d, NULL, NULL, NULL, &o),
               LG_ERR_VALUE, "probes = 0, expected >= 1");
    EXPECT_ERR(ctx, lg_density_from_nodes(ctx, 0, g, d, 8, g, d, NULL), LG_ERR_VALUE,
               "lg_density_from_nodes: count = 0");
    lg_ctx_free(ctx);
}
