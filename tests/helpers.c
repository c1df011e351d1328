/* helpers.c: shared test helpers. */
#include "helpers.h"

#include <stdlib.h>

lg_ctx *test_ctx(uint64_t seed)
{
    lg_ctx *ctx = lg_ctx_new(&(lg_ctx_params){ .seed = seed, .threads = 1 });
    cr_assert_not_null(ctx);
    return ctx;
}

lg_tensor *from_doubles(lg_ctx *ctx, lg_dtype dt, const double *v, int ndim, const int64_t *shape)
{
    lg_tensor *t = lg_zeros(ctx, dt, ndim, shape);
    cr_assert_not_null(t, "%s", lg_ctx_errmsg(ctx));
    for (int64_t i = 0; i < lg_tensor_numel(t); i++) {
        if (dt == LG_F32)
            ((float *)lg_tensor_data(t))[i] = (float)v[i];
        else if (dt == LG_F64)
            ((double *)lg_tensor_data(t))[i] = v[i];
        else
            ((int64_t *)lg_tensor_data(t))[i] = (int64_t)v[i];
    }
    return t;
}

lg_tensor *rand_avoiding(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape, double lo,
                         double hi, const double *kinks, int nkinks, double gap)
{
    lg_tensor *t = lg_zeros(ctx, dt, ndim, shape);
    cr_assert_not_null(t, "%s", lg_ctx_errmsg(ctx));
    for (int64_t i = 0; i < lg_tensor_numel(t); i++) {
        double v;
        bool near;
        do {
            v = lo + (hi - lo) * lg_rand_uniform(ctx);
            near = false;
            for (int k = 0; k < nkinks; k++)
                near |= fabs(v - kinks[k]) < gap;
        } while (near);
        if (dt == LG_F32)
            ((float *)lg_tensor_data(t))[i] = (float)v;
        else
            ((double *)lg_tensor_data(t))[i] = v;
    }
    return t;
}

double get(lg_tensor *t, int64_t i)
{
    switch (lg_tensor_dtype(t)) {
    case LG_F32: return ((float *)lg_tensor_data(t))[i];
    case LG_F64: return ((double *)lg_tensor_data(t))[i];
    default: return (double)((int64_t *)lg_tensor_data(t))[i];
    }
}

void expect_close(lg_tensor *t, const double *want, int64_t n, double tol, const char *what)
{
    cr_assert_not_null(t, "%s: result is NULL", what);
    cr_assert_eq(lg_tensor_numel(t), n, "%s: %lld elements, expected %lld", what,
                 (long long)lg_tensor_numel(t), (long long)n);
    for (int64_t i = 0; i < n; i++) {
        double g = get(t, i), w = want[i];
        if (isnan(w)) {
            cr_assert(isnan(g), "%s[%lld] = %.17g, expected NaN", what, (long long)i, g);
            continue;
        }
        if (isinf(w)) {
            cr_assert(g == w, "%s[%lld] = %.17g, expected %g", what, (long long)i, g, w);
            continue;
        }
        cr_assert(fabs(g - w) <= tol * fmax(1.0, fabs(w)),
                  "%s[%lld] = %.17g, expected %.17g (tol %g)", what, (long long)i, g, w, tol);
    }
}

void expect_ok(lg_ctx *ctx)
{
    cr_assert_eq(lg_ctx_status(ctx), LG_OK, "unexpected error: %s", lg_ctx_errmsg(ctx));
}

bool expect_second_order;

/* The taped backward's first-order gradient (lg_grad) equals the fast
 * kernel's (lg_backward) at the inputs: gradgradcheck alone checks the
 * taped form only against itself. */
static void expect_taped_first_order(lg_ctx *ctx, lg_gradcheck_fn fn, void *user, int n,
                                     lg_tensor *const *xs, const char *what)
{
    lg_tensor *c[64], *g[64];
    cr_assert(n <= 64);
    for (int i = 0; i < n; i++) {
        c[i] = lg_zeros(ctx, lg_tensor_dtype(xs[i]), lg_tensor_ndim(xs[i]), lg_tensor_shape(xs[i]));
        lg_copy_into(ctx, c[i], xs[i]); /* a fresh leaf of the same values */
        lg_requires_grad(ctx, c[i], true);
    }
    lg_tensor *out = fn(ctx, c, user);
    cr_assert_not_null(out, "%s: %s", what, lg_ctx_errmsg(ctx));
    if (!lg_tensor_requires_grad(out))
        return;
    lg_tensor *u = lg_randn(ctx, lg_tensor_dtype(out), lg_tensor_ndim(out), lg_tensor_shape(out));
    lg_grad_opts o = lg_grad_opts_default();
    o.retain_graph = LG_RETAIN_YES;
    o.allow_unused = true;
    cr_assert_eq(lg_grad(ctx, 1, &out, &u, n, c, g, &o), LG_OK, "%s: lg_grad: %s", what,
                 lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_backward_with(ctx, out, u), LG_OK, "%s: %s", what, lg_ctx_errmsg(ctx));
    for (int i = 0; i < n; i++) {
        lg_tensor *want = lg_tensor_grad(c[i]);
        int64_t m = lg_tensor_numel(c[i]);
        for (int64_t j = 0; j < m; j++) {
            double a = g[i] ? get(g[i], j) : 0, b = want ? get(want, j) : 0;
            cr_assert(a == b || fabs(a - b) <= 1e-12 * fmax(1.0, fabs(b)) || (isnan(a) && isnan(b)),
                      "%s: input %d element %lld: lg_grad %.17g, lg_backward %.17g", what, i,
                      (long long)j, a, b);
        }
    }
}

void expect_gradcheck(lg_ctx *ctx, lg_gradcheck_fn fn, void *user, int n, lg_tensor *const *xs,
                      const char *what)
{
    lg_gradcheck_report r;
    if (expect_second_order) {
        expect_taped_first_order(ctx, fn, user, n, xs, what);
        lg_status st = lg_gradgradcheck(ctx, fn, user, n, xs, NULL, &r);
        cr_assert_eq(st, LG_OK, "%s: gradgradcheck failed to run: %s", what, lg_ctx_errmsg(ctx));
        cr_assert(r.ok,
                  "%s: second derivative mismatch: max abs err %.3g, max rel err %.3g; worst "
                  "input %d element %lld: analytic %.10g numeric %.10g",
                  what, r.max_abs_err, r.max_rel_err, r.worst_input, (long long)r.worst_index,
                  r.worst_analytic, r.worst_numeric);
    }
    lg_status st = lg_gradcheck(ctx, fn, user, n, xs, NULL, &r);
    cr_assert_eq(st, LG_OK, "%s: gradcheck failed to run: %s", what, lg_ctx_errmsg(ctx));
    cr_assert(r.checked > 0, "%s: gradcheck compared nothing", what);
    cr_assert(r.ok,
              "%s: gradient mismatch: max abs err %.3g, max rel err %.3g; worst input %d "
              "element %lld: analytic %.10g numeric %.10g",
              what, r.max_abs_err, r.max_rel_err, r.worst_input, (long long)r.worst_index,
              r.worst_analytic, r.worst_numeric);
}

double tol_for(lg_dtype dt)
{
    return dt == LG_F32 ? 2e-6 : 1e-13;
}

static void expect_same_tensor(lg_tensor *got, lg_tensor *want, int64_t n, double tol,
                               const char *what)
{
    double *w = malloc((size_t)(n ? n : 1) * sizeof *w);
    cr_assert_not_null(w);
    for (int64_t i = 0; i < n; i++)
        w[i] = want ? get(want, i) : 0;
    if (got)
        expect_close(got, w, n, tol, what);
    else
        for (int64_t i = 0; i < n; i++)
            cr_assert(w[i] == 0, "%s[%lld]: no gradient, expected %g", what, (long long)i, w[i]);
    free(w);
}

void expect_close_to(lg_tensor *t, lg_tensor *want, double tol, const char *what)
{
    cr_assert_not_null(t, "%s: result is NULL", what);
    cr_assert_not_null(want, "%s: expected values are NULL", what);
    expect_same_tensor(t, want, lg_tensor_numel(want), tol, what);
}

void expect_same_loss(lg_ctx *ctx, lg_tensor *fused, lg_tensor *composite, lg_tensor *u,
                      lg_tensor *const (*leaves)[2], int nleaves, double tol, const char *what)
{
    cr_assert_not_null(fused, "%s: fused: %s", what, lg_ctx_errmsg(ctx));
    cr_assert_not_null(composite, "%s: composite: %s", what, lg_ctx_errmsg(ctx));
    expect_close_to(fused, composite, tol, what);
    cr_assert_eq(lg_backward_with(ctx, fused, u), LG_OK, "%s: %s", what, lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_backward_with(ctx, composite, u), LG_OK, "%s: %s", what, lg_ctx_errmsg(ctx));
    for (int k = 0; k < nleaves; k++) {
        char gwhat[160];
        snprintf(gwhat, sizeof gwhat, "%s, gradient of input %d", what, k);
        expect_same_tensor(lg_tensor_grad(leaves[k][0]), lg_tensor_grad(leaves[k][1]),
                           lg_tensor_numel(leaves[k][1]), tol, gwhat);
    }
}

void *countdown_alloc(void *user, void *ptr, size_t old_size, size_t new_size)
{
    countdown *c = user;
    (void)old_size;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    if (c->left >= 0 && c->left-- == 0)
        return NULL;
    return realloc(ptr, new_size);
}
