/* test_ops.c: every registered primitive, forward against a closed form in
 * float32 and float64, and a float64 central-difference gradcheck with a
 * random upstream (broadcast shapes, negative axes, keepdim included). The
 * coverage test fails when an op in the registry has no row here. */
#include "helpers.h"

#include <criterion/parameterized.h>

#include <stdlib.h>
#include <string.h>

typedef struct op_row op_row;
struct op_row {
    const char *op; /* registry name */
    void (*fwd)(const op_row *r, lg_dtype dt);
    void (*grad)(const op_row *r);
    const void *arg;
};

/* ------------------------------------------------------------------ */
/* Elementwise unary                                                    */
/* ------------------------------------------------------------------ */

typedef struct unary_desc {
    lg_tensor *(*f)(lg_ctx *, lg_tensor *);
    double (*ref)(double);
    double lo, hi;
    double kinks[2];
    int nkinks;
} unary_desc;

static lg_tensor *u_softplus(lg_ctx *c, lg_tensor *x)
{
    return lg_softplus(c, x, 1.5, 4.0);
}
static double r_softplus(double x)
{
    return 1.5 * x > 4.0 ? x : log1p(exp(1.5 * x)) / 1.5;
}
static lg_tensor *u_pow_scalar(lg_ctx *c, lg_tensor *x)
{
    return lg_pow_scalar(c, x, 2.5);
}
static double r_pow_scalar(double x)
{
    return pow(x, 2.5);
}
static lg_tensor *u_affine(lg_ctx *c, lg_tensor *x)
{
    return lg_add_scalar(c, lg_mul_scalar(c, x, -3.0), 0.25);
}
static double r_affine(double x)
{
    return -3.0 * x + 0.25;
}
static lg_tensor *u_clamp(lg_ctx *c, lg_tensor *x)
{
    return lg_clamp(c, x, -0.5, 0.75);
}
static double r_clamp(double x)
{
    return x < -0.5 ? -0.5 : (x > 0.75 ? 0.75 : x);
}
static double r_neg(double x)
{
    return -x;
}
static double r_sign(double x)
{
    return (x > 0) - (x < 0);
}
static double r_square(double x)
{
    return x * x;
}
static double r_relu(double x)
{
    return x > 0 ? x : 0;
}
static double r_sigmoid(double x)
{
    return 1 / (1 + exp(-x));
}
static double r_log_sigmoid(double x)
{
    return -log1p(exp(-x));
}

/* The activations: closed forms written from their definitions. */
static double r_gelu(double x)
{
    return 0.5 * x * erfc(-x / sqrt(2.0));
}
static lg_tensor *u_gelu(lg_ctx *c, lg_tensor *x)
{
    return lg_gelu(c, x, LG_GELU_NONE);
}
static double r_gelu_tanh(double x)
{
    return 0.5 * x * (1 + tanh(sqrt(2 / acos(-1.0)) * (x + 0.044715 * pow(x, 3))));
}
static lg_tensor *u_gelu_tanh(lg_ctx *c, lg_tensor *x)
{
    return lg_gelu(c, x, LG_GELU_TANH);
}
static double r_silu(double x)
{
    return x * r_sigmoid(x);
}
static double r_mish(double x)
{
    return x * tanh(log(1 + exp(x)));
}
static double r_hardswish(double x)
{
    return x * fmin(fmax(x + 3, 0), 6) / 6;
}
static double r_hardsigmoid(double x)
{
    return fmin(fmax(x + 3, 0), 6) / 6;
}
static double r_softsign(double x)
{
    return x / (1 + fabs(x));
}
static double r_selu(double x)
{
    return 1.0507009873554804934 * (x > 0 ? x : 1.6732632423543772848 * (exp(x) - 1));
}
static lg_tensor *u_leaky_relu(lg_ctx *c, lg_tensor *x)
{
    return lg_leaky_relu(c, x, -0.3);
}
static double r_leaky_relu(double x)
{
    return x > 0 ? x : -0.3 * x;
}
static lg_tensor *u_elu(lg_ctx *c, lg_tensor *x)
{
    return lg_celu(c, lg_elu(c, x, 0.7), 1.3); /* both attributes of the elu row */
}
static double r_elu(double x)
{
    double e = x > 0 ? x : 0.7 * (exp(x) - 1);
    return e > 0 ? e : 1.3 * (exp(e / 1.3) - 1);
}
static lg_tensor *u_hardtanh(lg_ctx *c, lg_tensor *x)
{
    return lg_hardtanh(c, x, -0.5, 1.25);
}
static double r_hardtanh(double x)
{
    return fmin(fmax(x, -0.5), 1.25);
}

/* U(name, op, reference, domain lo, hi, number of kinks, kink 0, kink 1) */
#define U(name, f, ref, lo, hi, nk, k0, k1)                                                        \
    static const unary_desc ud_##name = { f, ref, lo, hi, { k0, k1 }, nk }
U(neg, lg_neg, r_neg, -3, 3, 0, 0, 0);
U(exp, lg_exp, exp, -3, 3, 0, 0, 0);
U(log, lg_log, log, 0.1, 5, 0, 0, 0);
U(log1p, lg_log1p, log1p, -0.9, 5, 0, 0, 0);
U(expm1, lg_expm1, expm1, -3, 3, 0, 0, 0);
U(abs, lg_abs, fabs, -3, 3, 1, 0, 0);
U(sign, lg_sign, r_sign, -3, 3, 1, 0, 0);
U(sqrt, lg_sqrt, sqrt, 0.1, 5, 0, 0, 0);
U(square, lg_square, r_square, -3, 3, 0, 0, 0);
U(relu, lg_relu, r_relu, -3, 3, 1, 0, 0);
U(sigmoid, lg_sigmoid, r_sigmoid, -6, 6, 0, 0, 0);
U(log_sigmoid, lg_log_sigmoid, r_log_sigmoid, -6, 6, 0, 0, 0);
U(tanh, lg_tanh, tanh, -3, 3, 0, 0, 0);
U(erf, lg_erf, erf, -3, 3, 0, 0, 0);
U(softplus, u_softplus, r_softplus, -4, 4, 1, 4.0 / 1.5, 0);
U(pow_scalar, u_pow_scalar, r_pow_scalar, 0.1, 3, 0, 0, 0);
U(affine, u_affine, r_affine, -3, 3, 0, 0, 0);
U(clamp, u_clamp, r_clamp, -2, 2, 2, -0.5, 0.75);
U(gelu, u_gelu, r_gelu, -4, 4, 0, 0, 0);
U(gelu_tanh, u_gelu_tanh, r_gelu_tanh, -4, 4, 0, 0, 0);
U(silu, lg_silu, r_silu, -6, 6, 0, 0, 0);
U(mish, lg_mish, r_mish, -6, 6, 0, 0, 0);
U(hardswish, lg_hardswish, r_hardswish, -5, 5, 2, -3, 3);
U(hardsigmoid, lg_hardsigmoid, r_hardsigmoid, -5, 5, 2, -3, 3);
U(softsign, lg_softsign, r_softsign, -4, 4, 0, 0, 0);
U(selu, lg_selu, r_selu, -3, 3, 1, 0, 0);
U(leaky_relu, u_leaky_relu, r_leaky_relu, -3, 3, 1, 0, 0);
U(elu, u_elu, r_elu, -3, 3, 1, 0, 0);
U(hardtanh, u_hardtanh, r_hardtanh, -2, 2, 2, -0.5, 1.25);

static void unary_fwd(const op_row *r, lg_dtype dt)
{
    const unary_desc *d = r->arg;
    lg_ctx *ctx = test_ctx(11);
    lg_tensor *x =
        rand_avoiding(ctx, dt, 3, SHAPE(2, 3, 4), d->lo, d->hi, d->kinks, d->nkinks, 0.01);
    lg_tensor *y = d->f(ctx, x);
    expect_ok(ctx);
    cr_assert_eq(lg_tensor_ndim(y), 3);
    double want[24];
    for (int i = 0; i < 24; i++)
        want[i] = d->ref(get(x, i));
    expect_close(y, want, 24, tol_for(dt), r->op);
    lg_ctx_free(ctx);
}

static lg_tensor *unary_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    return ((const unary_desc *)user)->f(ctx, xs[0]);
}

static void unary_grad(const op_row *r)
{
    const unary_desc *d = r->arg;
    lg_ctx *ctx = test_ctx(12);
    lg_tensor *x =
        rand_avoiding(ctx, LG_F64, 2, SHAPE(3, 4), d->lo, d->hi, d->kinks, d->nkinks, 0.01);
    expect_gradcheck(ctx, unary_apply, (void *)d, 1, &x, r->op);
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Broadcasting binary                                                  */
/* ------------------------------------------------------------------ */

typedef struct binary_desc {
    lg_tensor *(*f)(lg_ctx *, lg_tensor *, lg_tensor *);
    double (*ref)(double, double);
    double alo, ahi, blo, bhi;
    bool b_signed; /* b's magnitude in [blo, bhi) with a random sign */
} binary_desc;

static double r_add(double a, double b)
{
    return a + b;
}
static double r_sub(double a, double b)
{
    return a - b;
}
static double r_mul(double a, double b)
{
    return a * b;
}
static double r_div(double a, double b)
{
    return a / b;
}
static double r_max(double a, double b)
{
    return a > b ? a : b;
}
static double r_min(double a, double b)
{
    return a < b ? a : b;
}

static const binary_desc bd_add = { lg_add, r_add, -2, 2, -2, 2, false };
static const binary_desc bd_sub = { lg_sub, r_sub, -2, 2, -2, 2, false };
static const binary_desc bd_mul = { lg_mul, r_mul, -2, 2, -2, 2, false };
static const binary_desc bd_div = { lg_div, r_div, -2, 2, 0.5, 2, true };
static const binary_desc bd_pow = { lg_pow, pow, 0.5, 2, -2, 2, false };
static const binary_desc bd_maximum = { lg_maximum, r_max, -2, 2, -2, 2, false };
static const binary_desc bd_minimum = { lg_minimum, r_min, -2, 2, -2, 2, false };
static double r_xlogy(double a, double b)
{
    return a * log(b);
}
static const binary_desc bd_xlogy = { lg_xlogy, r_xlogy, -2, 2, 0.5, 2, false };

/* Shape pairs exercising broadcasting: equal, trailing, both sides, 0-d. */
static const struct {
    int na, nb;
    int64_t a[3], b[3];
} pairs[] = {
    { 2, 2, { 3, 4 }, { 3, 4 } },       { 3, 1, { 2, 3, 4 }, { 4 } },
    { 2, 3, { 3, 1 }, { 2, 1, 4 } },    { 0, 2, { 0 }, { 2, 3 } },
    { 3, 3, { 2, 1, 4 }, { 1, 3, 1 } },
};

static lg_tensor *binary_input(lg_ctx *ctx, lg_dtype dt, int nd, const int64_t *shape, double lo,
                               double hi, bool is_signed)
{
    lg_tensor *t = rand_avoiding(ctx, dt, nd, shape, lo, hi, NULL, 0, 0);
    if (is_signed)
        for (int64_t i = 0; i < lg_tensor_numel(t); i++)
            if (lg_rand_uniform(ctx) < 0.5) {
                if (dt == LG_F32)
                    ((float *)lg_tensor_data(t))[i] *= -1;
                else
                    ((double *)lg_tensor_data(t))[i] *= -1;
            }
    return t;
}

/* Flat index into a tensor of shape (nd, s) broadcast to (ond, os) at index i. */
static int64_t bcast_index(int64_t i, int ond, const int64_t *os, int nd, const int64_t *s)
{
    int64_t idx = 0, stride = 1;
    for (int d = ond - 1; d >= 0; d--) {
        int64_t c = i % os[d];
        i /= os[d];
        int k = d - (ond - nd);
        if (k >= 0) {
            idx += (s[k] == 1 ? 0 : c) * stride;
            stride *= s[k];
        }
    }
    return idx;
}

static void binary_fwd(const op_row *r, lg_dtype dt)
{
    const binary_desc *d = r->arg;
    lg_ctx *ctx = test_ctx(21);
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
        lg_tensor *a = binary_input(ctx, dt, pairs[p].na, pairs[p].a, d->alo, d->ahi, false);
        lg_tensor *b = binary_input(ctx, dt, pairs[p].nb, pairs[p].b, d->blo, d->bhi, d->b_signed);
        lg_tensor *y = d->f(ctx, a, b);
        expect_ok(ctx);
        int ond = lg_tensor_ndim(y);
        const int64_t *os = lg_tensor_shape(y);
        cr_assert_eq(ond, pairs[p].na > pairs[p].nb ? pairs[p].na : pairs[p].nb, "%s ndim", r->op);
        double want[64];
        for (int64_t i = 0; i < lg_tensor_numel(y); i++)
            want[i] = d->ref(get(a, bcast_index(i, ond, os, pairs[p].na, pairs[p].a)),
                             get(b, bcast_index(i, ond, os, pairs[p].nb, pairs[p].b)));
        expect_close(y, want, lg_tensor_numel(y), tol_for(dt), r->op);
    }
    lg_ctx_free(ctx);
}

static lg_tensor *binary_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    return ((const binary_desc *)user)->f(ctx, xs[0], xs[1]);
}

static void binary_grad(const op_row *r)
{
    const binary_desc *d = r->arg;
    lg_ctx *ctx = test_ctx(22);
    for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
        lg_tensor *xs[2] = {
            binary_input(ctx, LG_F64, pairs[p].na, pairs[p].a, d->alo, d->ahi, false),
            binary_input(ctx, LG_F64, pairs[p].nb, pairs[p].b, d->blo, d->bhi, d->b_signed),
        };
        expect_gradcheck(ctx, binary_apply, (void *)d, 2, xs, r->op);
    }
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Comparisons and where                                                */
/* ------------------------------------------------------------------ */

static void compare_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    double av[] = { 1, 2, 3, 4, 5, 6 }, bv[] = { 2, 5, 4 };
    lg_tensor *a = from_doubles(ctx, dt, av, 2, SHAPE(2, 3)),
              *b = from_doubles(ctx, dt, bv, 1, SHAPE(3));
    double eq[] = { 0, 0, 0, 0, 1, 0 }, ne[] = { 1, 1, 1, 1, 0, 1 }, lt[] = { 1, 1, 1, 0, 0, 0 },
           le[] = { 1, 1, 1, 0, 1, 0 }, gt[] = { 0, 0, 0, 1, 0, 1 }, ge[] = { 0, 0, 0, 1, 1, 1 };
    expect_close(lg_eq(ctx, a, b), eq, 6, 0, "eq");
    expect_close(lg_ne(ctx, a, b), ne, 6, 0, "ne");
    expect_close(lg_lt(ctx, a, b), lt, 6, 0, "lt");
    expect_close(lg_le(ctx, a, b), le, 6, 0, "le");
    expect_close(lg_gt(ctx, a, b), gt, 6, 0, "gt");
    expect_close(lg_ge(ctx, a, b), ge, 6, 0, "ge");
    cr_assert_eq(lg_tensor_dtype(lg_lt(ctx, a, b)), dt, "%s: mask has a's dtype", r->op);
    /* int64 operands compare too (class ids) */
    int64_t ia[] = { 1, 7 }, ib[] = { 7 };
    double ieq[] = { 0, 1 };
    expect_close(lg_eq(ctx, T_FROM(ctx, LG_I64, ia, 2), T_FROM(ctx, LG_I64, ib, 1)), ieq, 2, 0,
                 "eq i64");
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

static void compare_grad(const op_row *r)
{
    /* Masks carry no gradient: the result is not on the tape. */
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = lg_randn(ctx, LG_F64, 1, SHAPE(4));
    lg_requires_grad(ctx, x, true);
    lg_tensor *m = lg_gt(ctx, x, lg_scalar(ctx, LG_F64, 0));
    cr_assert_not(lg_tensor_requires_grad(m), "%s: mask requires grad", r->op);
    cr_assert_eq(lg_backward(ctx, lg_sum(ctx, m, 0, NULL, false)), LG_ERR_STATE);
    lg_ctx_free(ctx);
}

static void where_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    double mv[] = { 1, 0, 1 }, av[] = { 1, 2, 3, 4, 5, 6 }, bv[] = { -1 };
    lg_tensor *y =
        lg_where(ctx, from_doubles(ctx, dt, mv, 1, SHAPE(3)),
                 from_doubles(ctx, dt, av, 2, SHAPE(2, 3)), from_doubles(ctx, dt, bv, 0, NULL));
    double want[] = { 1, -1, 3, 4, -1, 6 };
    expect_close(y, want, 6, 0, r->op);
    lg_ctx_free(ctx);
}

static lg_tensor *where_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user;
    double mv[] = { 1, 0, 0, 1 };
    lg_tensor *mask = from_doubles(ctx, LG_F64, mv, 2, SHAPE(4, 1));
    return lg_where(ctx, mask, xs[0], xs[1]);
}

static void where_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *xs[2] = { lg_randn(ctx, LG_F64, 2, SHAPE(4, 3)),
                         lg_randn(ctx, LG_F64, 1, SHAPE(3)) };
    expect_gradcheck(ctx, where_apply, NULL, 2, xs, r->op);
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Reductions                                                           */
/* ------------------------------------------------------------------ */

/* Reduction cases over x:[2,3,4]: axes lists, with and without keepdim. */
static const struct {
    int naxes;
    int axes[3];
    bool keepdim;
} rcases[] = {
    { 0, { 0 }, false },    { 1, { 1 }, false },    { 1, { -1 }, true },
    { 2, { 0, 2 }, false }, { 2, { -1, 0 }, true }, { 3, { 0, 1, 2 }, true },
};

typedef enum {
    R_SUM,
    R_MEAN,
    R_MAX,
    R_MIN,
    R_LSE,
    R_NORM2,
    R_NORM1,
    R_NORM3,
    R_NORMINF,
    R_NORM0,
    R_NORMNEG1,
    R_NORMNEGINF
} rkind;

/* Naive reference: out[o] over the masked axes of x:[2,3,4]. */
static int reduce_ref(lg_tensor *x, int naxes, const int *axes, rkind k, double *out, int64_t *argx)
{
    bool mask[3] = { naxes == 0, naxes == 0, naxes == 0 };
    for (int i = 0; i < naxes; i++)
        mask[(axes[i] + 3) % 3] = true;
    int64_t dims[3] = { 2, 3, 4 };
    int n = 0;
    int64_t olim[3];
    for (int d = 0; d < 3; d++)
        olim[d] = mask[d] ? 1 : dims[d];
    for (int64_t i0 = 0; i0 < olim[0]; i0++)
        for (int64_t i1 = 0; i1 < olim[1]; i1++)
            for (int64_t i2 = 0; i2 < olim[2]; i2++) {
                double acc =
                    (k == R_MAX) ? -INFINITY : ((k == R_MIN || k == R_NORMNEGINF) ? INFINITY : 0);
                double m = -INFINITY;
                int64_t cnt = 0, arg = 0, r = 0;
                for (int64_t j0 = 0; j0 < (mask[0] ? 2 : 1); j0++)
                    for (int64_t j1 = 0; j1 < (mask[1] ? 3 : 1); j1++)
                        for (int64_t j2 = 0; j2 < (mask[2] ? 4 : 1); j2++, r++) {
                            double v = get(x, ((i0 + j0) * 3 + (i1 + j1)) * 4 + (i2 + j2));
                            cnt++;
                            if (k == R_SUM || k == R_MEAN)
                                acc += v;
                            if (k == R_MAX && v > acc)
                                acc = v, arg = r;
                            if (k == R_MIN && v < acc)
                                acc = v, arg = r;
                            if (k == R_LSE && v > m)
                                m = v;
                            if (k == R_NORM2)
                                acc += v * v;
                            if (k == R_NORM1)
                                acc += fabs(v);
                            if (k == R_NORM3)
                                acc += pow(fabs(v), 3);
                            if (k == R_NORMINF && fabs(v) > acc)
                                acc = fabs(v);
                            if (k == R_NORMNEGINF && fabs(v) < acc)
                                acc = fabs(v);
                            if (k == R_NORM0)
                                acc += v != 0;
                            if (k == R_NORMNEG1)
                                acc += 1 / fabs(v);
                        }
                if (k == R_LSE) {
                    r = 0;
                    for (int64_t j0 = 0; j0 < (mask[0] ? 2 : 1); j0++)
                        for (int64_t j1 = 0; j1 < (mask[1] ? 3 : 1); j1++)
                            for (int64_t j2 = 0; j2 < (mask[2] ? 4 : 1); j2++)
                                acc += exp(get(x, ((i0 + j0) * 3 + (i1 + j1)) * 4 + (i2 + j2)) - m);
                    acc = m + log(acc);
                }
                if (k == R_MEAN)
                    acc /= (double)cnt;
                if (k == R_NORM2)
                    acc = sqrt(acc);
                if (k == R_NORM3)
                    acc = cbrt(acc);
                if (k == R_NORMNEG1)
                    acc = 1 / acc;
                if (argx)
                    argx[n] = arg;
                out[n++] = acc;
            }
    return n;
}

static lg_tensor *apply_reduce(lg_ctx *ctx, rkind k, lg_tensor *x, int naxes, const int *axes,
                               bool keepdim, lg_tensor **idx)
{
    switch (k) {
    case R_SUM: return lg_sum(ctx, x, naxes, axes, keepdim);
    case R_MEAN: return lg_mean(ctx, x, naxes, axes, keepdim);
    case R_MAX: return lg_max(ctx, x, naxes, axes, keepdim, idx);
    case R_MIN: return lg_min(ctx, x, naxes, axes, keepdim, idx);
    case R_LSE: return lg_logsumexp(ctx, x, naxes, axes, keepdim);
    case R_NORM2: return lg_norm(ctx, x, 2, naxes, axes, keepdim);
    case R_NORM1: return lg_norm(ctx, x, 1, naxes, axes, keepdim);
    case R_NORM3: return lg_norm(ctx, x, 3, naxes, axes, keepdim);
    case R_NORM0: return lg_norm(ctx, x, 0, naxes, axes, keepdim);
    case R_NORMNEG1: return lg_norm(ctx, x, -1, naxes, axes, keepdim);
    case R_NORMNEGINF: return lg_norm(ctx, x, -INFINITY, naxes, axes, keepdim);
    default: return lg_norm(ctx, x, INFINITY, naxes, axes, keepdim);
    }
}

static const rkind rk_sum = R_SUM, rk_mean = R_MEAN, rk_max = R_MAX, rk_min = R_MIN, rk_lse = R_LSE,
                   rk_norm[] = { R_NORM2, R_NORM1,    R_NORM3,     R_NORMINF,
                                 R_NORM0, R_NORMNEG1, R_NORMNEGINF };

static void reduce_fwd_kind(rkind k, lg_dtype dt, const char *what)
{
    lg_ctx *ctx = test_ctx(31);
    lg_tensor *x = rand_avoiding(ctx, dt, 3, SHAPE(2, 3, 4), -3, 3, (double[]){ 0 }, 1, 0.05);
    for (size_t c = 0; c < sizeof rcases / sizeof rcases[0]; c++) {
        lg_tensor *idx = NULL;
        lg_tensor *y = apply_reduce(ctx, k, x, rcases[c].naxes, rcases[c].axes, rcases[c].keepdim,
                                    (k == R_MAX || k == R_MIN) ? &idx : NULL);
        expect_ok(ctx);
        double want[24];
        int64_t arg[24];
        int n = reduce_ref(x, rcases[c].naxes, rcases[c].axes, k, want, arg);
        expect_close(y, want, n, dt == LG_F32 ? 1e-5 : 1e-12, what);
        int want_nd = rcases[c].keepdim ? 3 : 3 - (rcases[c].naxes ? rcases[c].naxes : 3);
        cr_assert_eq(lg_tensor_ndim(y), want_nd, "%s case %zu: ndim %d, expected %d", what, c,
                     lg_tensor_ndim(y), want_nd);
        if (idx) {
            cr_assert_eq(lg_tensor_dtype(idx), LG_I64);
            for (int i = 0; i < n; i++)
                cr_assert_eq(get(idx, i), (double)arg[i], "%s case %zu: index[%d]", what, c, i);
        }
    }
    lg_ctx_free(ctx);
}

/* pairwise_distance (a composite on norm): ||x1 - x2 + eps||_p over the last axis. */
static void pairwise_fwd(lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(33);
    double av[] = { 1, 2, 3, 4, 5, 6 }, bv[] = { 0, 2, 5 };
    lg_tensor *a = from_doubles(ctx, dt, av, 2, SHAPE(2, 3)),
              *b = from_doubles(ctx, dt, bv, 1, SHAPE(3));
    const double eps = 1e-6;
    double p2[2], p1[2];
    for (int i = 0; i < 2; i++) {
        double s2 = 0, s1 = 0;
        for (int j = 0; j < 3; j++) {
            double d = av[3 * i + j] - bv[j] + eps;
            s2 += d * d, s1 += fabs(d);
        }
        p2[i] = sqrt(s2), p1[i] = s1;
    }
    expect_close(lg_pairwise_distance(ctx, a, b, 2, eps, false), p2, 2, tol_for(dt) * 10,
                 "pairwise p=2");
    lg_tensor *k = lg_pairwise_distance(ctx, a, b, 1, eps, true);
    expect_close(k, p1, 2, tol_for(dt) * 10, "pairwise p=1 keepdim");
    cr_assert_eq(lg_tensor_ndim(k), 2);
    lg_ctx_free(ctx);
}

static lg_tensor *pairwise_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    return lg_pairwise_distance(ctx, xs[0], xs[1], *(const double *)user, 1e-6, false);
}

static void reduce_fwd(const op_row *r, lg_dtype dt)
{
    const rkind *k = r->arg;
    int n = (k == rk_norm) ? 7 : 1;
    for (int i = 0; i < n; i++)
        reduce_fwd_kind(k[i], dt, r->op);
    if (k == rk_norm)
        pairwise_fwd(dt);
}

typedef struct {
    rkind k;
    int c;
} rgrad_arg;

static lg_tensor *reduce_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    const rgrad_arg *a = user;
    return apply_reduce(ctx, a->k, xs[0], rcases[a->c].naxes, rcases[a->c].axes,
                        rcases[a->c].keepdim, NULL);
}

static void reduce_grad(const op_row *r)
{
    const rkind *k = r->arg;
    int n = (k == rk_norm) ? 7 : 1;
    lg_ctx *ctx = test_ctx(32);
    for (int i = 0; i < n; i++) {
        /* distinct values away from 0 (max/min/abs are smooth there) */
        lg_tensor *x =
            rand_avoiding(ctx, LG_F64, 3, SHAPE(2, 3, 4), -3, 3, (double[]){ 0 }, 1, 0.05);
        for (size_t c = 0; c < sizeof rcases / sizeof rcases[0]; c++) {
            rgrad_arg a = { k[i], (int)c };
            expect_gradcheck(ctx, reduce_apply, &a, 1, &x, r->op);
        }
    }
    for (int i = 0; k == rk_norm && i < 3; i++) {
        double p = (double[]){ 2, 1, 3 }[i];
        lg_tensor *xs[2] = { lg_randn(ctx, LG_F64, 2, SHAPE(4, 5)),
                             lg_randn(ctx, LG_F64, 1, SHAPE(5)) };
        expect_gradcheck(ctx, pairwise_apply, &p, 2, xs, "pairwise_distance");
    }
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* softmax, log_softmax                                                 */
/* ------------------------------------------------------------------ */

static void softmax_fwd(const op_row *r, lg_dtype dt)
{
    bool logy = strcmp(r->op, "log_softmax") == 0;
    lg_ctx *ctx = test_ctx(41);
    /* large values: the max shift keeps them finite */
    double xv[] = { 1, 2, 3, 1000, 1001, 1002, -5, 0, 5, 0, 0, 0 };
    lg_tensor *x = from_doubles(ctx, dt, xv, 2, SHAPE(4, 3));
    for (int axis = -1; axis <= 0; axis++) {
        lg_tensor *y = logy ? lg_log_softmax(ctx, x, axis) : lg_softmax(ctx, x, axis);
        double want[12];
        for (int i = 0; i < 4 && axis == -1; i++) {
            double m = fmax(fmax(xv[3 * i], xv[3 * i + 1]), xv[3 * i + 2]), s = 0;
            for (int j = 0; j < 3; j++)
                s += exp(xv[3 * i + j] - m);
            for (int j = 0; j < 3; j++)
                want[3 * i + j] = logy ? xv[3 * i + j] - m - log(s) : exp(xv[3 * i + j] - m) / s;
        }
        for (int j = 0; j < 3 && axis == 0; j++) {
            double m = -INFINITY, s = 0;
            for (int i = 0; i < 4; i++)
                m = fmax(m, xv[3 * i + j]);
            for (int i = 0; i < 4; i++)
                s += exp(xv[3 * i + j] - m);
            for (int i = 0; i < 4; i++)
                want[3 * i + j] = logy ? xv[3 * i + j] - m - log(s) : exp(xv[3 * i + j] - m) / s;
        }
        expect_close(y, want, 12, dt == LG_F32 ? 1e-5 : 1e-13, r->op);
    }
    lg_ctx_free(ctx);
}

static lg_tensor *softmax_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    const int *a = user; /* a[0]: log?, a[1]: axis */
    return a[0] ? lg_log_softmax(ctx, xs[0], a[1]) : lg_softmax(ctx, xs[0], a[1]);
}

static void softmax_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(42);
    lg_tensor *x = lg_randn(ctx, LG_F64, 3, SHAPE(2, 3, 4));
    for (int axis = -3; axis < 3; axis++) {
        int a[2] = { strcmp(r->op, "log_softmax") == 0, axis };
        expect_gradcheck(ctx, softmax_apply, a, 1, &x, r->op);
    }
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* matmul                                                               */
/* ------------------------------------------------------------------ */

static const struct {
    int na, nb;
    int64_t a[3], b[3];
    bool ta, tb;
} mcases[] = {
    { 2, 2, { 3, 4 }, { 4, 5 }, false, false },
    { 2, 2, { 4, 3 }, { 4, 5 }, true, false },
    { 2, 2, { 3, 4 }, { 5, 4 }, false, true },
    { 2, 2, { 4, 3 }, { 5, 4 }, true, true },
    { 3, 3, { 2, 3, 4 }, { 2, 4, 5 }, false, false },
    { 3, 3, { 2, 4, 3 }, { 2, 5, 4 }, true, true },
    { 3, 2, { 2, 3, 4 }, { 4, 5 }, false, false },
    { 3, 2, { 2, 4, 3 }, { 5, 4 }, true, true },
};

/* Naive reference for case c. */
static void matmul_ref(int c, lg_tensor *a, lg_tensor *b, double *out)
{
    int na = mcases[c].na, nb = mcases[c].nb;
    bool ta = mcases[c].ta, tb = mcases[c].tb;
    int64_t batch = na == 3 ? mcases[c].a[0] : 1;
    int64_t ar = mcases[c].a[na - 2], ac = mcases[c].a[na - 1];
    int64_t br = mcases[c].b[nb - 2], bc = mcases[c].b[nb - 1];
    int64_t M = ta ? ac : ar, K = ta ? ar : ac, N = tb ? br : bc;
    for (int64_t s = 0; s < batch; s++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0;
                for (int64_t k = 0; k < K; k++) {
                    double av = get(a, s * ar * ac + (ta ? k * ac + i : i * ac + k));
                    int64_t bo = nb == 3 ? s * br * bc : 0;
                    double bv = get(b, bo + (tb ? j * bc + k : k * bc + j));
                    acc += av * bv;
                }
                out[(s * M + i) * N + j] = acc;
            }
}

static void matmul_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(51);
    for (int c = 0; c < (int)(sizeof mcases / sizeof mcases[0]); c++) {
        lg_tensor *a = lg_randn(ctx, dt, mcases[c].na, mcases[c].a);
        lg_tensor *b = lg_randn(ctx, dt, mcases[c].nb, mcases[c].b);
        lg_tensor *y = lg_matmul_t(ctx, a, b, mcases[c].ta, mcases[c].tb);
        double want[64];
        matmul_ref(c, a, b, want);
        expect_close(y, want, lg_tensor_numel(y), dt == LG_F32 ? 1e-5 : 1e-13, r->op);
        /* with a bias over the columns (N = 5 in every case) */
        double bv[5] = { 0.5, -1, 2, 0, 3.25 };
        y = lg_matmul_bias(ctx, a, b, from_doubles(ctx, dt, bv, 1, SHAPE(5)), mcases[c].ta,
                           mcases[c].tb);
        for (int64_t i = 0; i < lg_tensor_numel(y); i++)
            want[i] += bv[i % 5];
        expect_close(y, want, lg_tensor_numel(y), dt == LG_F32 ? 1e-5 : 1e-13, r->op);
    }
    lg_tensor *a = lg_randn(ctx, dt, 2, SHAPE(3, 0)), *b = lg_randn(ctx, dt, 2, SHAPE(0, 2));
    expect_close(lg_matmul_bias(ctx, a, b, from_doubles(ctx, dt, (double[]){ 1, -2 }, 1, SHAPE(2)),
                                false, false),
                 (double[]){ 1, -2, 1, -2, 1, -2 }, 6, 0, "matmul, K = 0, with a bias");
    EXPECT_LOSS_ERR(ctx, lg_matmul_bias(ctx, a, b, lg_zeros(ctx, dt, 1, SHAPE(3)), false, false),
                    LG_ERR_SHAPE, "lg_matmul: bias is");
    lg_ctx_free(ctx);
}

static lg_tensor *matmul_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    int c = *(const int *)user;
    return lg_matmul_t(ctx, xs[0], xs[1], mcases[c].ta, mcases[c].tb);
}

static lg_tensor *matmul_bias_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    int c = *(const int *)user;
    return lg_matmul_bias(ctx, xs[0], xs[1], xs[2], mcases[c].ta, mcases[c].tb);
}

static void matmul_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(52);
    for (int c = 0; c < (int)(sizeof mcases / sizeof mcases[0]); c++) {
        lg_tensor *xs[3] = { lg_randn(ctx, LG_F64, mcases[c].na, mcases[c].a),
                             lg_randn(ctx, LG_F64, mcases[c].nb, mcases[c].b),
                             lg_randn(ctx, LG_F64, 1, SHAPE(5)) };
        expect_gradcheck(ctx, matmul_apply, &c, 2, xs, r->op);
        expect_gradcheck(ctx, matmul_bias_apply, &c, 3, xs, "matmul with a bias");
    }
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Shape ops                                                            */
/* ------------------------------------------------------------------ */

static double iota[64];

static void reshape_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = from_doubles(ctx, dt, iota, 2, SHAPE(2, 6));
    lg_tensor *y = lg_reshape(ctx, x, 3, SHAPE(3, -1, 2));
    expect_ok(ctx);
    cr_assert_eq(lg_tensor_ndim(y), 3);
    cr_assert_eq(lg_tensor_shape(y)[1], 2, "%s: -1 inferred", r->op);
    expect_close(y, iota, 12, 0, r->op);
    lg_ctx_free(ctx);
}

static lg_tensor *reshape_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user;
    /* reshape, then an op that mixes elements so position errors show */
    return lg_mul(ctx, lg_reshape(ctx, xs[0], 2, SHAPE(4, 3)), xs[1]);
}

static void reshape_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *xs[2] = { lg_randn(ctx, LG_F64, 3, SHAPE(2, 3, 2)),
                         lg_randn(ctx, LG_F64, 1, SHAPE(3)) };
    expect_gradcheck(ctx, reshape_apply, NULL, 2, xs, r->op);
    lg_ctx_free(ctx);
}

static void permute_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = from_doubles(ctx, dt, iota, 3, SHAPE(2, 3, 4));
    lg_tensor *y = lg_permute(ctx, x, (int[]){ 2, 0, 1 });
    double want[24];
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                want[(k * 2 + i) * 3 + j] = (i * 3 + j) * 4 + k;
    expect_close(y, want, 24, 0, r->op);
    lg_tensor *t = lg_transpose(ctx, x, 0, -1); /* [4, 3, 2] */
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 3; j++)
            for (int i = 0; i < 2; i++)
                want[(k * 3 + j) * 2 + i] = (i * 3 + j) * 4 + k;
    expect_close(t, want, 24, 0, "transpose");
    lg_ctx_free(ctx);
}

static lg_tensor *permute_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user;
    return lg_transpose(ctx, lg_permute(ctx, xs[0], (int[]){ 1, 2, 0 }), -1, 1);
}

static void permute_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *x = lg_randn(ctx, LG_F64, 3, SHAPE(2, 3, 4));
    expect_gradcheck(ctx, permute_apply, NULL, 1, &x, r->op);
    lg_ctx_free(ctx);
}

static void slice_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = from_doubles(ctx, dt, iota, 2, SHAPE(3, 5));
    double w1[] = { 1, 3, 6, 8, 11, 13 };
    expect_close(lg_slice(ctx, x, 1, 1, 5, 2), w1, 6, 0, "slice step 2");
    double w2[] = { 10, 11, 12, 13, 14 };
    expect_close(lg_slice(ctx, x, 0, -1, 100, 1), w2, 5, 0, "slice negative start, clipped stop");
    double w3[] = { 2, 3, 7, 8, 12, 13 };
    expect_close(lg_narrow(ctx, x, -1, 2, 2), w3, 6, 0, "narrow");
    cr_assert_eq(lg_tensor_numel(lg_slice(ctx, x, 1, 4, 2, 1)), 0, "%s: empty slice", r->op);
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

static lg_tensor *slice_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user;
    return lg_add(ctx, lg_slice(ctx, xs[0], 1, 0, 5, 2), lg_narrow(ctx, xs[0], 1, 1, 3));
}

static void slice_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *x = lg_randn(ctx, LG_F64, 3, SHAPE(2, 5, 2));
    expect_gradcheck(ctx, slice_apply, NULL, 1, &x, r->op);
    lg_ctx_free(ctx);
}

static void concat_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    double av[] = { 1, 2, 3, 4 }, bv[] = { 5, 6 };
    lg_tensor *a = from_doubles(ctx, dt, av, 2, SHAPE(2, 2)),
              *b = from_doubles(ctx, dt, bv, 2, SHAPE(2, 1));
    double w1[] = { 1, 2, 5, 3, 4, 6 };
    expect_close(lg_concat(ctx, 2, (lg_tensor *[]){ a, b }, -1), w1, 6, 0, r->op);
    lg_tensor *s = lg_stack(ctx, 2, (lg_tensor *[]){ a, a }, 1); /* [2, 2, 2] */
    double w2[] = { 1, 2, 1, 2, 3, 4, 3, 4 };
    expect_close(s, w2, 8, 0, "stack");
    cr_assert_eq(lg_tensor_shape(s)[1], 2);
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

static lg_tensor *concat_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user;
    lg_tensor *c = lg_concat(ctx, 3, (lg_tensor *[]){ xs[0], xs[1], xs[0] }, 0);
    return lg_mul(ctx, c, lg_stack(ctx, 2, (lg_tensor *[]){ xs[2], xs[2] }, -1));
}

static void concat_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *xs[3] = { lg_randn(ctx, LG_F64, 2, SHAPE(2, 2)),
                         lg_randn(ctx, LG_F64, 2, SHAPE(3, 2)),
                         lg_randn(ctx, LG_F64, 1, SHAPE(7)) };
    expect_gradcheck(ctx, concat_apply, NULL, 3, xs, r->op);
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Indexing                                                             */
/* ------------------------------------------------------------------ */

static void index_select_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = from_doubles(ctx, dt, iota, 2, SHAPE(3, 4));
    int64_t iv[] = { 2, 0, 2 };
    lg_tensor *y = lg_index_select(ctx, x, 0, T_FROM(ctx, LG_I64, iv, 3));
    double w[] = { 8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11 };
    expect_close(y, w, 12, 0, r->op);
    lg_tensor *z = lg_index_select(ctx, x, -1, T_FROM(ctx, LG_I64, iv, 3));
    double wz[] = { 2, 0, 2, 6, 4, 6, 10, 8, 10 };
    expect_close(z, wz, 9, 0, r->op);
    lg_ctx_free(ctx);
}

static lg_tensor *index_select_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user;
    int64_t iv[] = { 1, 3, 1, 0 }; /* repeats add up in backward */
    return lg_index_select(ctx, xs[0], 1, T_FROM(ctx, LG_I64, iv, 4));
}

static void index_select_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *x = lg_randn(ctx, LG_F64, 3, SHAPE(2, 4, 3));
    expect_gradcheck(ctx, index_select_apply, NULL, 1, &x, r->op);
    lg_ctx_free(ctx);
}

static void gather_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = from_doubles(ctx, dt, iota, 2, SHAPE(3, 4));
    int64_t iv[] = { 3, 0, 1, 1, 2, 2 };
    lg_tensor *y = lg_gather(ctx, x, 1, T_FROM(ctx, LG_I64, iv, 3, 2));
    double w[] = { 3, 0, 5, 5, 10, 10 };
    expect_close(y, w, 6, 0, r->op);
    int64_t jv[] = { 2, 0, 1 };
    lg_tensor *z = lg_gather(ctx, x, 0, T_FROM(ctx, LG_I64, jv, 1, 3));
    double wz[] = { 8, 1, 6 };
    expect_close(z, wz, 3, 0, r->op);
    lg_ctx_free(ctx);
}

static lg_tensor *gather_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user;
    int64_t iv[] = { 2, 2, 0, 1, 3, 1 };
    return lg_gather(ctx, xs[0], -1, T_FROM(ctx, LG_I64, iv, 2, 3));
}

static void gather_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *x = lg_randn(ctx, LG_F64, 2, SHAPE(3, 4));
    expect_gradcheck(ctx, gather_apply, NULL, 1, &x, r->op);
    lg_ctx_free(ctx);
}

static void one_hot_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    int64_t lv[] = { 2, 0, 1, 2 };
    lg_tensor *y = lg_one_hot(ctx, T_FROM(ctx, LG_I64, lv, 2, 2), 3, dt);
    double w[] = { 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1 };
    expect_close(y, w, 12, 0, r->op);
    cr_assert_eq(lg_tensor_ndim(y), 3);
    cr_assert_eq(lg_tensor_dtype(y), dt);
    lg_tensor *z = lg_one_hot(ctx, T_FROM(ctx, LG_I64, lv, 4), -1, dt);
    cr_assert_eq(lg_tensor_shape(z)[1], 3, "%s: -1 infers max + 1 classes", r->op);
    lg_ctx_free(ctx);
}

static void nograd_one_hot(const op_row *r)
{
    lg_ctx *ctx = test_ctx(1);
    int64_t lv[] = { 1 };
    lg_tensor *y = lg_one_hot(ctx, T_FROM(ctx, LG_I64, lv, 1), 2, LG_F64);
    cr_assert_not(lg_tensor_requires_grad(y), "%s: no gradient", r->op);
    lg_ctx_free(ctx);
}

static void cast_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    double v[] = { 1.5, -2.25, 1e-3 };
    lg_tensor *x = from_doubles(ctx, dt, v, 1, SHAPE(3));
    lg_dtype other = dt == LG_F32 ? LG_F64 : LG_F32;
    lg_tensor *y = lg_cast(ctx, x, other);
    cr_assert_eq(lg_tensor_dtype(y), other);
    double w[] = { 1.5, -2.25, (double)(float)1e-3 };
    if (other == LG_F32 || dt == LG_F32)
        expect_close(y, w, 3, 0, r->op);
    int64_t iv[] = { 3, -4 };
    double wi[] = { 3, -4 };
    expect_close(lg_cast(ctx, T_FROM(ctx, LG_I64, iv, 2), dt), wi, 2, 0, "cast int64");
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

static lg_tensor *cast_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user; /* through float32 and back: exact for these gradients' scale */
    return lg_cast(ctx, lg_mul(ctx, lg_cast(ctx, xs[0], LG_F64), xs[0]), LG_F64);
}

static void cast_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *x = lg_randn(ctx, LG_F64, 1, SHAPE(5));
    expect_gradcheck(ctx, cast_apply, NULL, 1, &x, r->op);
    /* float64 -> float32 -> float64: the gradient comes back as float64 */
    lg_requires_grad(ctx, x, true);
    lg_tensor *y = lg_sum(ctx, lg_cast(ctx, lg_mul_scalar(ctx, lg_cast(ctx, x, LG_F32), 2), LG_F64),
                          0, NULL, false);
    cr_assert_eq(lg_backward(ctx, y), LG_OK, "%s", lg_ctx_errmsg(ctx));
    double w[] = { 2, 2, 2, 2, 2 };
    expect_close(lg_tensor_grad(x), w, 5, 0, "cast gradient");
    lg_ctx_free(ctx);
}

static void clone_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = from_doubles(ctx, dt, iota, 1, SHAPE(6));
    lg_tensor *y = lg_clone(ctx, x);
    cr_assert_neq(lg_tensor_data(y), lg_tensor_data(x), "%s: a copy", r->op);
    expect_close(y, iota, 6, 0, r->op);
    lg_ctx_free(ctx);
}

static lg_tensor *clone_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user;
    return lg_mul(ctx, lg_clone(ctx, xs[0]), xs[0]);
}

static void clone_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *x = lg_randn(ctx, LG_F64, 2, SHAPE(2, 3));
    expect_gradcheck(ctx, clone_apply, NULL, 1, &x, r->op);
    lg_ctx_free(ctx);
}

static void expand_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = from_doubles(ctx, dt, iota, 2, SHAPE(3, 1));
    lg_tensor *y = lg_expand(ctx, x, 3, SHAPE(2, 3, 4));
    double want[24];
    for (int i = 0; i < 24; i++)
        want[i] = (i / 4) % 3;
    expect_close(y, want, 24, 0, r->op);
    EXPECT_LOSS_ERR(ctx, lg_expand(ctx, x, 2, SHAPE(2, 4)), LG_ERR_SHAPE, "dim 0 is 3, expected 1 or 2");
    lg_ctx_free(ctx);
}

static lg_tensor *expand_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user;
    lg_tensor *y = lg_expand(ctx, xs[0], 3, SHAPE(2, 3, 4));
    return lg_mul(ctx, y, y);
}

static void expand_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *x = lg_randn(ctx, LG_F64, 2, SHAPE(1, 4));
    expect_gradcheck(ctx, expand_apply, NULL, 1, &x, r->op);
    lg_ctx_free(ctx);
}

/* The gradient of y with respect to x under upstream u, by lg_grad with
 * create_graph (through the taped backwards), or by lg_backward's kernels
 * (x a leaf; its .grad). */
static lg_tensor *taped_grad_of(lg_ctx *ctx, lg_tensor *y, lg_tensor *u, lg_tensor *x)
{
    lg_tensor *g = NULL;
    lg_grad_opts o = lg_grad_opts_default();
    o.create_graph = true;
    return y && lg_grad(ctx, 1, &y, &u, 1, &x, &g, &o) == LG_OK ? g : NULL;
}

static lg_tensor *kernel_grad_of(lg_ctx *ctx, lg_tensor *y, lg_tensor *u, lg_tensor *x)
{
    return y && lg_backward_with(ctx, y, u) == LG_OK ? lg_tensor_grad(x) : NULL;
}

/* An op's taped backward against its kernel one: y's gradients under a
 * random upstream by lg_grad (the graph kept) and then by lg_backward,
 * for leaves xs[0..n) whose .grad is still unset. */
static void expect_taped_is_kernel(lg_ctx *ctx, lg_tensor *y, int n, lg_tensor *const *xs,
                                   double tol, const char *what)
{
    cr_assert_not_null(y, "%s: %s", what, lg_ctx_errmsg(ctx));
    lg_tensor *v = lg_randn(ctx, lg_tensor_dtype(y), lg_tensor_ndim(y), lg_tensor_shape(y));
    lg_tensor *g[4];
    lg_grad_opts o = lg_grad_opts_default();
    o.retain_graph = LG_RETAIN_YES;
    cr_assert_eq(lg_grad(ctx, 1, &y, &v, n, xs, g, &o), LG_OK, "%s: %s", what, lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_backward_with(ctx, y, v), LG_OK, "%s: %s", what, lg_ctx_errmsg(ctx));
    for (int i = 0; i < n; i++)
        expect_close_to(g[i], lg_tensor_grad(xs[i]), tol, what);
}

/* The adjoint ops are what lg_grad's taped backwards of slice,
 * index_select and gather make: the gradient of sum(op(x) * w) with
 * respect to x, as a function of w. */
static lg_tensor *adjoint_of(lg_ctx *ctx, const char *op, lg_tensor *x, lg_tensor *w)
{
    int64_t iv[4] = { 2, 0, 2, 1 }, gv[6] = { 0, 4, 1, 1, 2, 0 };
    lg_tensor *y;
    if (!strcmp(op, "slice_adjoint"))
        y = lg_slice(ctx, x, 1, 1, 5, 2); /* [3, 2] */
    else if (!strcmp(op, "index_adjoint"))
        y = lg_index_select(ctx, x, 1, lg_tensor_from(ctx, LG_I64, iv, 1, SHAPE(2)));
    else
        y = lg_gather(ctx, x, 1, lg_tensor_from(ctx, LG_I64, gv, 2, SHAPE(3, 2)));
    lg_tensor *f = lg_sum(ctx, lg_mul(ctx, y, w), 0, NULL, false), *g = NULL;
    lg_grad_opts o = lg_grad_opts_default();
    o.create_graph = true;
    if (lg_grad(ctx, 1, &f, NULL, 1, &x, &g, &o) != LG_OK)
        return NULL;
    return g;
}

static void adjoint_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *x = from_doubles(ctx, dt, iota, 2, SHAPE(3, 5));
    double wv[6] = { 1, -2, 3, 0.5, 4, 6 };
    lg_tensor *w = from_doubles(ctx, dt, wv, 2, SHAPE(3, 2));
    lg_requires_grad(ctx, x, true);
    lg_requires_grad(ctx, w, true);
    lg_tensor *g = adjoint_of(ctx, r->op, x, w);
    expect_ok(ctx);
    cr_assert_str_eq(lg_tensor_op_name(g), r->op);
    double want[15] = { 0 };
    int64_t iv[2] = { 2, 0 }, gv[6] = { 0, 4, 1, 1, 2, 0 };
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) {
            int col = !strcmp(r->op, "slice_adjoint") ? 1 + 2 * j
                      : !strcmp(r->op, "index_adjoint") ? (int)iv[j] : (int)gv[i * 2 + j];
            want[i * 5 + col] += wv[i * 2 + j];
        }
    expect_close(g, want, 15, 0, r->op);
    lg_ctx_free(ctx);
}

static lg_tensor *adjoint_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    lg_tensor *g = adjoint_of(ctx, user, xs[0], xs[1]);
    return g ? lg_mul(ctx, g, lg_exp(ctx, xs[0])) : NULL;
}

static void adjoint_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *x = lg_randn(ctx, LG_F64, 2, SHAPE(3, 5)), *w = lg_randn(ctx, LG_F64, 2, SHAPE(3, 2));
    expect_gradcheck(ctx, adjoint_apply, (void *)r->op, 2, (lg_tensor *[]){ x, w }, r->op);
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Fused loss primitives (their composite oracles are in test_losses.c) */
/* ------------------------------------------------------------------ */

static void bce_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    double xv[] = { 0.2, 0.5, 0.9, 0, 1, 0 }, yv[] = { 0, 1, 0.3, 1, 0, 0 };
    lg_tensor *x = from_doubles(ctx, dt, xv, 1, SHAPE(6)),
              *y = from_doubles(ctx, dt, yv, 1, SHAPE(6));
    double want[6];
    for (int i = 0; i < 6; i++) /* clamped logs: log 0 counts as -100 */
        want[i] = -(yv[i] * fmax(log(xv[i]), -100) + (1 - yv[i]) * fmax(log(1 - xv[i]), -100));
    double tol = dt == LG_F32 ? 1e-6 : 1e-14;
    /* unweighted: the pointwise kind; weighted: this primitive, times w */
    expect_close(
        lg_binary_cross_entropy(ctx, x, y, &(lg_bce_opts){ .reduction = LG_REDUCTION_NONE }), want,
        6, tol, r->op);
    double wv[6] = { 1.5, 1.5, 1.5, 1.5, 1.5, 1.5 };
    for (int i = 0; i < 6; i++)
        want[i] *= 1.5;
    expect_close(
        lg_binary_cross_entropy(ctx, x, y,
                                &(lg_bce_opts){ .reduction = LG_REDUCTION_NONE,
                                                .weight = from_doubles(ctx, dt, wv, 1, SHAPE(6)) }),
        want, 6, tol, r->op);
    lg_ctx_free(ctx);
}

static lg_tensor *bce_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user; /* a weight: the primitive (unweighted BCE is the pointwise kind) */
    double wv[4] = { 0.5, 1, 1.5, 2 };
    return lg_binary_cross_entropy(
        ctx, xs[0], xs[1],
        &(lg_bce_opts){ .reduction = LG_REDUCTION_NONE,
                        .weight = from_doubles(ctx, LG_F64, wv, 1, SHAPE(4)) });
}

static void bce_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(2);
    lg_tensor *xs[2] = { lg_rand(ctx, LG_F64, 2, SHAPE(3, 4), 0.05, 0.95),
                         lg_rand(ctx, LG_F64, 2, SHAPE(3, 4), 0, 1) };
    expect_gradcheck(ctx, bce_apply, NULL, 2, xs, r->op);
    lg_ctx_free(ctx);
}

/* pointwise_loss: each kind's closed form on a few elements, and gradchecks */
static void pointwise_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(3);
    double xv[] = { 0.2, -1.5, 2.0, 0.5 }, yv[] = { 1, -1, 1, -1 };
    lg_tensor *x = from_doubles(ctx, dt, xv, 1, SHAPE(4)),
              *y = from_doubles(ctx, dt, yv, 1, SHAPE(4));
    double l1[4], mse[4], sl1[4], hub[4], hinge[4], soft[4];
    for (int i = 0; i < 4; i++) {
        double d = xv[i] - yv[i], ad = fabs(d);
        l1[i] = ad, mse[i] = d * d;
        sl1[i] = ad >= 1 ? ad - 0.5 : 0.5 * d * d;           /* beta 1 */
        hub[i] = ad > 0.5 ? 0.5 * (ad - 0.25) : 0.5 * d * d; /* delta 0.5 */
        hinge[i] = yv[i] == 1 ? xv[i] : fmax(0, 1 - xv[i]);
        soft[i] = log1p(exp(-yv[i] * xv[i]));
    }
    double tol = dt == LG_F32 ? 1e-6 : 1e-14;
    lg_loss_opts none = { .reduction = LG_REDUCTION_NONE };
    expect_close(lg_l1_loss(ctx, x, y, &none), l1, 4, tol, "l1");
    expect_close(lg_mse_loss(ctx, x, y, &none), mse, 4, tol, "mse");
    expect_close(lg_smooth_l1_loss(
                     ctx, x, y, &(lg_smooth_l1_opts){ .reduction = LG_REDUCTION_NONE, .beta = 1 }),
                 sl1, 4, tol, "smooth_l1");
    expect_close(
        lg_huber_loss(ctx, x, y, &(lg_huber_opts){ .reduction = LG_REDUCTION_NONE, .delta = 0.5 }),
        hub, 4, tol, "huber");
    expect_close(lg_hinge_embedding_loss(
                     ctx, x, y, &(lg_hinge_opts){ .reduction = LG_REDUCTION_NONE, .margin = 1 }),
                 hinge, 4, tol, "hinge");
    expect_close(lg_soft_margin_loss(ctx, x, y, &none), soft, 4, tol, "soft margin");
    double sum = 0;
    for (int i = 0; i < 4; i++)
        sum += mse[i];
    expect_close(lg_mse_loss(ctx, x, y, &(lg_loss_opts){ .reduction = LG_REDUCTION_SUM }), &sum, 1,
                 tol, "mse sum");
    sum /= 4;
    expect_close(lg_mse_loss(ctx, x, y, NULL), &sum, 1, tol, "mse mean");
    (void)r;
    lg_ctx_free(ctx);
}

/* The kinds of src/loss/losses.def by name: each needs a row in
 * pointwise_apply (the coverage check in pointwise_grad). */
static const char *const pointwise_kinds[] = {
#define LGL_POINTWISE(kind, loss, l, dx, dy) #kind,
#include "../src/loss/losses.def"
};

static lg_tensor *pointwise_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    const char *kind = user;
    lg_tensor *pm1 = lg_sign(ctx, xs[1]); /* labels +-1 for hinge and soft margin */
    if (!strcmp(kind, "l1"))
        return lg_l1_loss(ctx, xs[0], xs[1], &(lg_loss_opts){ .reduction = LG_REDUCTION_NONE });
    if (!strcmp(kind, "mse"))
        return lg_mse_loss(ctx, xs[0], xs[1], &(lg_loss_opts){ .reduction = LG_REDUCTION_SUM });
    if (!strcmp(kind, "smooth_l1"))
        return lg_smooth_l1_loss(ctx, xs[0], xs[1], &(lg_smooth_l1_opts){ .beta = 0.7 });
    if (!strcmp(kind, "huber"))
        return lg_huber_loss(ctx, xs[0], xs[1], &(lg_huber_opts){ .delta = 0.7 });
    if (!strcmp(kind, "hinge"))
        return lg_hinge_embedding_loss(ctx, xs[0], pm1, &(lg_hinge_opts){ .margin = 0.3 });
    if (!strcmp(kind, "soft_margin"))
        return lg_soft_margin_loss(ctx, xs[0], xs[1], NULL);
    if (!strcmp(kind, "bce_logits"))
        return lg_binary_cross_entropy_with_logits(ctx, xs[0], lg_sigmoid(ctx, xs[1]), NULL);
    if (!strcmp(kind, "kl"))
        return lg_kl_div(ctx, xs[0], lg_softmax(ctx, xs[1], 1),
                         &(lg_kl_div_opts){ .reduction = LG_REDUCTION_BATCHMEAN });
    if (!strcmp(kind, "kl_log"))
        return lg_kl_div(ctx, xs[0], xs[1], &(lg_kl_div_opts){ .log_target = true });
    if (!strcmp(kind, "mlsm"))
        return lg_multilabel_soft_margin_loss(ctx, xs[0], lg_sigmoid(ctx, xs[1]), NULL);
    if (!strcmp(kind, "quantile"))
        return lg_quantile_loss(ctx, xs[0], xs[1],
                                &(lg_quantile_opts){ .reduction = LG_REDUCTION_SUM, .quantile = 0.3 });
    if (!strcmp(kind, "bce"))
        return lg_binary_cross_entropy(ctx, lg_sigmoid(ctx, xs[0]), lg_sigmoid(ctx, xs[1]), NULL);
    return NULL; /* no row for this kind */
}

static void pointwise_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(4);
    for (size_t k = 0; k < sizeof pointwise_kinds / sizeof *pointwise_kinds; k++) {
        lg_tensor *xs[2] = { lg_mul_scalar(ctx, lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)), 2),
                             lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)) };
        void *kind = (void *)pointwise_kinds[k];
        cr_expect(pointwise_apply(ctx, xs, kind) != NULL,
                  "pointwise kind %s (src/loss/losses.def) has no gradcheck row in "
                  "pointwise_apply",
                  pointwise_kinds[k]);
        expect_gradcheck(ctx, pointwise_apply, kind, 2, xs, r->op);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

/* cross_entropy_rows: -log_softmax at the target, by hand; gradchecks with
 * weights, smoothing and an ignored row */
static void ce_rows_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(5);
    double xv[] = { 1, 2, 3, -1, 0, 4 };
    int64_t tv[] = { 2, 0 };
    lg_tensor *x = from_doubles(ctx, dt, xv, 2, SHAPE(2, 3));
    double want[2];
    for (int i = 0; i < 2; i++) {
        double s = 0;
        for (int c = 0; c < 3; c++)
            s += exp(xv[i * 3 + c]);
        want[i] = log(s) - xv[i * 3 + tv[i]];
    }
    expect_close(
        lg_cross_entropy(ctx, x, T_FROM(ctx, LG_I64, tv, 2),
                         &(lg_ce_opts){ .reduction = LG_REDUCTION_NONE, .ignore_index = -100 }),
        want, 2, dt == LG_F32 ? 1e-6 : 1e-14, r->op);
    lg_ctx_free(ctx);
}

static lg_tensor *ce_rows_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    int k = *(int *)user;
    int64_t tv[] = { 2, 0, 3 };
    lg_tensor *t = T_FROM(ctx, LG_I64, tv, 3);
    double wv[] = { 0.5, 2.0, 1.25, 0.75 };
    lg_tensor *w = from_doubles(ctx, LG_F64, wv, 1, SHAPE(4));
    switch (k) {
    case 0:
        return lg_cross_entropy(
            ctx, xs[0], t, &(lg_ce_opts){ .reduction = LG_REDUCTION_NONE, .ignore_index = -100 });
    case 1:
        return lg_cross_entropy(ctx, xs[0], t, &(lg_ce_opts){ .weight = w, .ignore_index = -100 });
    case 2: {
        lg_ce_opts o = lg_ce_opts_default(); /* class 0 ignored */
        o.reduction = LG_REDUCTION_SUM;
        o.weight = w;
        o.ignore_index = 0;
        o.label_smoothing = 0.3;
        return lg_cross_entropy(ctx, xs[0], t, &o);
    }
    default:
        return lg_cross_entropy(ctx, xs[0], t,
                                &(lg_ce_opts){ .ignore_index = -100, .label_smoothing = 0.2 });
    }
}

static void ce_rows_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(6);
    for (int k = 0; k < 4; k++) {
        lg_tensor *xs[2] = { lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)),
                             lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)) };
        expect_gradcheck(ctx, ce_rows_apply, &k, 1, xs, r->op);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

/* poly1_rows: CE + eps (1 - p_y) in closed form, and gradchecks with
 * weights, smoothing and epsilon of either sign (its composite oracle is
 * registry::fused_oracle's) */
static void poly1_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(5);
    double xv[] = { 1, 2, 3, -1, 0, 4 };
    int64_t tv[] = { 2, 0 };
    lg_tensor *x = from_doubles(ctx, dt, xv, 2, SHAPE(2, 3));
    double want[2];
    for (int i = 0; i < 2; i++) {
        double s = 0;
        for (int c = 0; c < 3; c++)
            s += exp(xv[i * 3 + c]);
        want[i] = log(s) - xv[i * 3 + tv[i]] + 2.5 * (1 - exp(xv[i * 3 + tv[i]]) / s);
    }
    lg_poly1_opts o = lg_poly1_opts_default();
    o.reduction = LG_REDUCTION_NONE;
    o.epsilon = 2.5;
    expect_close(lg_poly1_loss(ctx, x, T_FROM(ctx, LG_I64, tv, 2), &o), want, 2,
                 dt == LG_F32 ? 1e-6 : 1e-14, r->op);
    lg_ctx_free(ctx);
}

static lg_tensor *poly1_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    int k = *(int *)user;
    int64_t tv[] = { 2, 0, 3 };
    double wv[] = { 0.5, 2.0, 1.25, 0.75 };
    lg_poly1_opts o = lg_poly1_opts_default();
    o.reduction = k == 0 ? LG_REDUCTION_NONE : k == 1 ? LG_REDUCTION_MEAN : LG_REDUCTION_SUM;
    o.epsilon = k == 2 ? -1.0 : 2.0;
    o.weight = k >= 1 ? from_doubles(ctx, LG_F64, wv, 1, SHAPE(4)) : NULL;
    o.label_smoothing = k == 2 ? 0.3 : 0;
    return lg_poly1_loss(ctx, xs[0], T_FROM(ctx, LG_I64, tv, 3), &o);
}

static void poly1_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(6);
    for (int k = 0; k < 3; k++) {
        lg_tensor *x = lg_mul_scalar(ctx, lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)), 2);
        expect_gradcheck(ctx, poly1_apply, &k, 1, &x, r->op);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

/* nll_rows, multi_margin_rows, multilabel_margin_rows: closed forms on one
 * row, and gradchecks (their composite oracles are in test_losses.c and
 * test_more_losses.c) */
static void rows_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(7);
    double xv[] = { 0.1, 0.2, 0.4, 0.8 };
    lg_tensor *x = from_doubles(ctx, dt, xv, 2, SHAPE(1, 4));
    int64_t t[] = { 3 }, lists[] = { 3, 0, -1, 1 };
    double tol = dt == LG_F32 ? 1e-6 : 1e-14;
    expect_close(lg_nll_loss(ctx, x, T_FROM(ctx, LG_I64, t, 1), NULL), (double[]){ -0.8 }, 1, tol,
                 "nll");
    /* (1/4) sum_{j != 3} max(0, 1 - 0.8 + x_j) = (0.3 + 0.4 + 0.6) / 4 */
    expect_close(lg_multi_margin_loss(ctx, x, T_FROM(ctx, LG_I64, t, 1), NULL),
                 (double[]){ 1.3 / 4 }, 1, tol, "multi margin");
    /* LOSSES.md: x = [0.1, 0.2, 0.4, 0.8], y = [3, 0, -1, 1] gives 0.85 */
    expect_close(lg_multilabel_margin_loss(ctx, x, T_FROM(ctx, LG_I64, lists, 1, 4), NULL),
                 (double[]){ 0.85 }, 1, tol, "multilabel margin");
    (void)r;
    lg_ctx_free(ctx);
}

static lg_tensor *rows_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    int k = *(int *)user;
    int64_t t[] = { 2, 0, 3 }, lists[] = { 1, 3, -1, 0, 0, -1, 2, 2, 2, 1, 0, -1 };
    double wv[] = { 0.5, 2.0, 1.25, 0.75 };
    lg_tensor *w = from_doubles(ctx, LG_F64, wv, 1, SHAPE(4));
    switch (k) {
    case 0:
        return lg_nll_loss(ctx, xs[0], T_FROM(ctx, LG_I64, t, 3),
                           &(lg_nll_opts){ .weight = w, .ignore_index = -100 });
    case 1:
        return lg_multi_margin_loss(ctx, xs[0], T_FROM(ctx, LG_I64, t, 3),
                                    &(lg_multi_margin_opts){ .p = 2, .margin = 1, .weight = w });
    default:
        return lg_multilabel_margin_loss(ctx, xs[0], T_FROM(ctx, LG_I64, lists, 3, 4),
                                         &(lg_loss_opts){ .reduction = LG_REDUCTION_NONE });
    }
}

static void rows_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(8);
    int k = strcmp(r->op, "nll_rows") == 0 ? 0 : (strcmp(r->op, "multi_margin_rows") == 0 ? 1 : 2);
    lg_tensor *x = lg_mul_scalar(ctx, lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)), 2);
    expect_gradcheck(ctx, rows_apply, &k, 1, &x, r->op);
    lg_ctx_free(ctx);
}

static void ctc_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    lg_ctc_opts none = { .reduction = LG_REDUCTION_NONE };
    /* T = 1: the only path emits the label: -log 0.6 */
    double lp1[] = { log(0.4), log(0.6) };
    int64_t t1[] = { 1 }, one[] = { 1 };
    lg_tensor *l1 =
        lg_ctc_loss(ctx, from_doubles(ctx, dt, lp1, 2, SHAPE(1, 2)), T_FROM(ctx, LG_I64, t1, 1),
                    T_FROM(ctx, LG_I64, one, 1), T_FROM(ctx, LG_I64, one, 1), &none);
    expect_close(l1, (double[]){ -log(0.6) }, 1, tol_for(dt), r->op);
    /* T = 2, uniform: paths 1b, b1, 11 -> -log(3/4) */
    double lp2[] = { log(0.5), log(0.5), log(0.5), log(0.5) };
    int64_t two[] = { 2 };
    lg_tensor *l2 = lg_ctc_loss(ctx, from_doubles(ctx, dt, lp2, 3, SHAPE(2, 1, 2)),
                                T_FROM(ctx, LG_I64, t1, 1, 1), T_FROM(ctx, LG_I64, two, 1),
                                T_FROM(ctx, LG_I64, one, 1), &none);
    expect_close(l2, (double[]){ -log(0.75) }, 1, tol_for(dt), r->op);
    /* empty target: all blanks, 3 log 2 */
    double lp3[6] = { log(0.5), log(0.5), log(0.5), log(0.5), log(0.5), log(0.5) };
    int64_t three[] = { 3 }, zero[] = { 0 };
    lg_tensor *l3 = lg_ctc_loss(ctx, from_doubles(ctx, dt, lp3, 3, SHAPE(3, 1, 2)),
                                lg_zeros(ctx, LG_I64, 2, SHAPE(1, 0)),
                                T_FROM(ctx, LG_I64, three, 1), T_FROM(ctx, LG_I64, zero, 1), &none);
    expect_close(l3, (double[]){ 3 * log(2.0) }, 1, tol_for(dt), r->op);
    lg_ctx_free(ctx);
}

static lg_tensor *ctc_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user;
    int64_t tg[] = { 1, 2, 2, 3, 1, 0, 0, 0 }, il[] = { 6, 4 }, tl[] = { 4, 1 };
    return lg_ctc_loss(ctx, xs[0], T_FROM(ctx, LG_I64, tg, 2, 4), T_FROM(ctx, LG_I64, il, 2),
                       T_FROM(ctx, LG_I64, tl, 2),
                       &(lg_ctc_opts){ .reduction = LG_REDUCTION_NONE });
}

static void ctc_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(3);
    /* not normalised: the true derivative holds for any log_probs */
    lg_tensor *lp = lg_randn(ctx, LG_F64, 3, SHAPE(6, 2, 4));
    expect_gradcheck(ctx, ctc_apply, NULL, 1, &lp, r->op);
    lg_ctx_free(ctx);
}

/* triplet_rows: a 3-4-5 closed form; a gradcheck (its composite oracle is
 * in test_losses.c) */
static void triplet_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(11);
    double a[] = { 0, 0 }, p[] = { 3, 4 }, n[] = { 0, 6 }, n2[] = { 0, 1 };
    lg_triplet_opts o = lg_triplet_opts_default();
    o.reduction = LG_REDUCTION_NONE;
    o.eps = 0;
    /* max(0, 1 + 5 - 6) = 0 and max(0, 1 + 5 - 1) = 5 */
    lg_tensor *l = lg_triplet_margin_loss(ctx, from_doubles(ctx, dt, a, 1, SHAPE(2)),
                                          from_doubles(ctx, dt, p, 1, SHAPE(2)),
                                          from_doubles(ctx, dt, n, 1, SHAPE(2)), &o);
    expect_close(l, (double[]){ 0 }, 1, tol_for(dt), r->op);
    l = lg_triplet_margin_loss(ctx, from_doubles(ctx, dt, a, 1, SHAPE(2)),
                               from_doubles(ctx, dt, p, 1, SHAPE(2)),
                               from_doubles(ctx, dt, n2, 1, SHAPE(2)), &o);
    expect_close(l, (double[]){ 5 }, 1, tol_for(dt), r->op);
    lg_ctx_free(ctx);
}

static lg_tensor *triplet_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user;
    return lg_triplet_margin_loss(
        ctx, xs[0], xs[1], xs[2],
        &(lg_triplet_opts){ .reduction = LG_REDUCTION_NONE, .margin = 2, .p = 2, .eps = 1e-6 });
}

static void triplet_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(12);
    lg_tensor *xs[] = { lg_randn(ctx, LG_F64, 2, SHAPE(4, 3)),
                        lg_randn(ctx, LG_F64, 2, SHAPE(4, 3)),
                        lg_randn(ctx, LG_F64, 2, SHAPE(4, 3)) };
    expect_gradcheck(ctx, triplet_apply, NULL, 3, xs, r->op);
    lg_ctx_free(ctx);
}

/* gru_cell: one sample, H = 1, against the equations in double; a
 * gradcheck through all four inputs (its composite oracle and PyTorch's
 * GRU are in test_nn.c) */
static void gru_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(9);
    double gi[] = { 0.3, -0.7, 0.2 }, gh[] = { -0.1, 0.4, 0.9 }, b[] = { 0.05, -0.2, 0.3 },
           h[] = { -0.6 };
    double rr = 1 / (1 + exp(-(0.3 - 0.1 + 0.05))), z = 1 / (1 + exp(-(-0.7 + 0.4 - 0.2)));
    double n = tanh(0.2 + rr * (0.9 + 0.3));
    lg_tensor *y = lg_gru_gates(
        ctx, from_doubles(ctx, dt, gi, 2, SHAPE(1, 3)), from_doubles(ctx, dt, gh, 2, SHAPE(1, 3)),
        from_doubles(ctx, dt, b, 1, SHAPE(3)), from_doubles(ctx, dt, h, 2, SHAPE(1, 1)));
    expect_close(y, (double[]){ (1 - z) * n + z * -0.6 }, 1, tol_for(dt), r->op);
    /* without b_hh */
    rr = 1 / (1 + exp(-(0.3 - 0.1))), z = 1 / (1 + exp(-(-0.7 + 0.4))), n = tanh(0.2 + rr * 0.9);
    y = lg_gru_gates(ctx, from_doubles(ctx, dt, gi, 2, SHAPE(1, 3)),
                     from_doubles(ctx, dt, gh, 2, SHAPE(1, 3)), NULL,
                     from_doubles(ctx, dt, h, 2, SHAPE(1, 1)));
    expect_close(y, (double[]){ (1 - z) * n + z * -0.6 }, 1, tol_for(dt), r->op);
    lg_ctx_free(ctx);
}

static lg_tensor *gru_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    return lg_gru_gates(ctx, xs[0], xs[1], user ? xs[2] : NULL, xs[3]);
}

static void gru_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(10);
    lg_tensor *xs[] = { lg_randn(ctx, LG_F64, 2, SHAPE(3, 6)),
                        lg_randn(ctx, LG_F64, 2, SHAPE(3, 6)), lg_randn(ctx, LG_F64, 1, SHAPE(6)),
                        lg_randn(ctx, LG_F64, 2, SHAPE(3, 2)) };
    expect_gradcheck(ctx, gru_apply, ctx, 4, xs, r->op);
    lg_ctx_free(ctx);
}

/* gru_sequence: two steps of one sample, H = 1, against the cell's
 * equations in double (forward, and reverse with the second sample
 * stopping after one step); a gradcheck with lengths (the composite oracle
 * is in test_nn.c) */
static double gru_step_d(const double *x, double w[3], const double b[3], double h)
{
    double r = 1 / (1 + exp(-(x[0] + w[0] * h + b[0])));
    double z = 1 / (1 + exp(-(x[1] + w[1] * h + b[1])));
    double n = tanh(x[2] + r * (w[2] * h + b[2]));
    return (1 - z) * n + z * h;
}

static void gru_seq_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(11);
    double xw[] = {
        0.3, -0.7, 0.2, 1.1, 0.4, -0.5, -0.2, 0.6, 0.9, 0.1, -0.3, 0.8
    }; /* [2][2][3] */
    double w[] = { 0.5, -1.2, 0.7 }, b[] = { 0.05, -0.2, 0.3 }, h0[] = { -0.6, 0.25 };
    lg_tensor *len = lg_zeros(ctx, LG_I64, 1, SHAPE(2));
    ((int64_t *)lg_tensor_data(len))[0] = 2;
    ((int64_t *)lg_tensor_data(len))[1] = 1;
    for (int rev = 0; rev < 2; rev++) {
        lg_tensor *y = lg_gru_sequence(
            ctx, from_doubles(ctx, dt, xw, 3, SHAPE(2, 2, 3)),
            from_doubles(ctx, dt, w, 2, SHAPE(3, 1)), from_doubles(ctx, dt, b, 1, SHAPE(3)),
            from_doubles(ctx, dt, h0, 2, SHAPE(2, 1)), rev ? len : NULL, rev);
        double want[4]; /* [t][sample] */
        for (int i = 0; i < 2; i++) {
            double h = h0[i];
            for (int k = 0; k < 2; k++) {
                int t = rev ? 1 - k : k;
                if (!rev || t < (i == 0 ? 2 : 1))
                    h = gru_step_d(xw + (t * 2 + i) * 3, w, b, h);
                want[t * 2 + i] = h;
            }
        }
        expect_close(y, want, 4, tol_for(dt), r->op);
    }
    lg_ctx_free(ctx);
}

static lg_tensor *gru_seq_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    return lg_gru_sequence(ctx, xs[0], xs[1], xs[2], xs[3], user, false);
}

static void gru_seq_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(13);
    lg_tensor *len = lg_zeros(ctx, LG_I64, 1, SHAPE(3));
    int64_t *lv = lg_tensor_data(len);
    lv[0] = 3, lv[1] = 1, lv[2] = 2;
    lg_tensor *xs[] = { lg_randn(ctx, LG_F64, 3, SHAPE(3, 3, 6)),
                        lg_randn(ctx, LG_F64, 2, SHAPE(6, 2)), lg_randn(ctx, LG_F64, 1, SHAPE(6)),
                        lg_randn(ctx, LG_F64, 2, SHAPE(3, 2)) };
    expect_gradcheck(ctx, gru_seq_apply, len, 4, xs, r->op);
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* The table                                                            */
/* ------------------------------------------------------------------ */


/* ------------------------------------------------------------------ */
/* Layer primitives: small closed forms (PyTorch's numbers are in       */
/* test_layers.c) and gradchecks over strides, padding, dilation,       */
/* groups and the optional inputs                                       */
/* ------------------------------------------------------------------ */

static const double nine[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };

static void conv_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(21);
    lg_tensor *x = from_doubles(ctx, dt, nine, 4, SHAPE(1, 1, 3, 3));
    lg_tensor *w = from_doubles(ctx, dt, (double[]){ 1, 0, 0, -1 }, 4, SHAPE(1, 1, 2, 2));
    lg_tensor *b = from_doubles(ctx, dt, (double[]){ 0.5 }, 1, SHAPE(1));
    /* y = x[i][j] - x[i+1][j+1] */
    expect_close(lg_conv2d(ctx, x, w, b, NULL), (double[]){ -3.5, -3.5, -3.5, -3.5 }, 4,
                 tol_for(dt), r->op);
    lg_conv_opts o = lg_conv_opts_default();
    o.stride = 2, o.padding = 1; /* windows start at (2i - 1, 2j - 1) */
    expect_close(lg_conv2d(ctx, x, w, NULL, &o), (double[]){ -1, -3, -7, -4 }, 4, tol_for(dt),
                 r->op);
    /* 1-d: the same kernel on a row */
    lg_tensor *x1 = from_doubles(ctx, dt, nine, 3, SHAPE(1, 1, 9));
    lg_tensor *w1 = from_doubles(ctx, dt, (double[]){ 1, 0, -1 }, 3, SHAPE(1, 1, 3));
    o = lg_conv_opts_default();
    o.dilation = 2;
    expect_close(lg_conv1d(ctx, x1, w1, NULL, &o), (double[]){ -4, -4, -4, -4, -4 }, 5,
                 tol_for(dt), r->op);
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

static void conv_transpose_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(22);
    lg_tensor *x = from_doubles(ctx, dt, (double[]){ 1, 2, 3, 4 }, 4, SHAPE(1, 1, 2, 2));
    lg_tensor *w = lg_ones(ctx, dt, 4, SHAPE(1, 1, 2, 2));
    /* stride 1: overlapping 2x2 blocks add up */
    expect_close(lg_conv_transpose2d(ctx, x, w, NULL, NULL),
                 (double[]){ 1, 3, 2, 4, 10, 6, 3, 7, 4 }, 9, tol_for(dt), r->op);
    lg_conv_opts o = lg_conv_opts_default();
    o.stride = 2; /* each value fills its own block */
    expect_close(lg_conv_transpose2d(ctx, x, w, NULL, &o),
                 (double[]){ 1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4 }, 16, tol_for(dt),
                 r->op);
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

typedef struct conv_case {
    int spatial;
    bool transposed, bias;
    int64_t n, cin, cout, h, w, kh, kw;
    lg_conv_opts o;
} conv_case;

static lg_tensor *conv_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    const conv_case *c = user;
    lg_tensor *b = c->bias ? xs[2] : NULL;
    if (c->spatial == 1)
        return c->transposed ? lg_conv_transpose1d(ctx, xs[0], xs[1], b, &c->o)
                             : lg_conv1d(ctx, xs[0], xs[1], b, &c->o);
    return c->transposed ? lg_conv_transpose2d(ctx, xs[0], xs[1], b, &c->o)
                         : lg_conv2d(ctx, xs[0], xs[1], b, &c->o);
}

static void conv_grad_cases(const op_row *r, bool transposed)
{
    lg_ctx *ctx = test_ctx(23);
    conv_case cs[5];
    for (int i = 0; i < 5; i++)
        cs[i] = (conv_case){ 2, transposed, true, 2, 4, 6, 5, 6, 3, 2, lg_conv_opts_default() };
    cs[1].o.stride_hw[0] = 2, cs[1].o.stride_hw[1] = 1, cs[1].o.padding = 1, cs[1].o.groups = 2;
    cs[2].o.dilation = 2, cs[2].bias = false;
    if (!transposed)
        cs[2].o.padding_kind = LG_PADDING_SAME;
    cs[3].spatial = 1, cs[3].o.stride = 2, cs[3].o.padding = 1;
    cs[4].kh = cs[4].kw = 1, cs[4].o.groups = 2; /* the 1x1 path */
    if (transposed)
        cs[1].o.output_padding_hw[0] = 1;
    for (int i = 0; i < 5; i++) {
        conv_case *c = &cs[i];
        int64_t g = c->o.groups;
        lg_tensor *xs[3];
        xs[0] = c->spatial == 2 ? lg_randn(ctx, LG_F64, 4, SHAPE(c->n, c->cin, c->h, c->w))
                                : lg_randn(ctx, LG_F64, 3, SHAPE(c->n, c->cin, c->w));
        int64_t w0 = transposed ? c->cin : c->cout, w1 = transposed ? c->cout / g : c->cin / g;
        xs[1] = c->spatial == 2 ? lg_randn(ctx, LG_F64, 4, SHAPE(w0, w1, c->kh, c->kw))
                                : lg_randn(ctx, LG_F64, 3, SHAPE(w0, w1, c->kw));
        xs[2] = lg_randn(ctx, LG_F64, 1, SHAPE(c->cout));
        expect_gradcheck(ctx, conv_apply, c, c->bias ? 3 : 2, xs, r->op);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

static void conv_grad(const op_row *r)
{
    conv_grad_cases(r, false);
}

static void conv_transpose_grad(const op_row *r)
{
    conv_grad_cases(r, true);
}

/* conv_wgrad is what the taped backwards of conv and conv_transpose make
 * for the weight: lg_grad of y = conv(x, W) under u, with respect to W
 * (a 2-d conv with stride, padding and groups, a 1-d one with dilation,
 * a 2-d transposed one with output_padding). */
static conv_case wgrad_case(int i)
{
    conv_case c = { 2, false, false, 1, 4, 4, 4, 5, 2, 3, lg_conv_opts_default() };
    if (i == 0)
        c.o.stride = 2, c.o.padding = 1, c.o.groups = 2;
    if (i == 1)
        c.spatial = 1, c.n = 2, c.cout = 2, c.kw = 2, c.o.dilation = 2;
    if (i == 2)
        c.transposed = true, c.o.stride = 2, c.o.output_padding_hw[1] = 1, c.o.groups = 2;
    return c;
}

/* x, W and an upstream u of y's shape for case c */
static void wgrad_inputs(lg_ctx *ctx, const conv_case *c, lg_dtype dt, lg_tensor *xs[3])
{
    int64_t g = c->o.groups;
    int64_t w0 = c->transposed ? c->cin : c->cout, w1 = c->transposed ? c->cout / g : c->cin / g;
    xs[0] = c->spatial == 2 ? lg_randn(ctx, dt, 4, SHAPE(c->n, c->cin, c->h, c->w))
                            : lg_randn(ctx, dt, 3, SHAPE(c->n, c->cin, c->w));
    xs[1] = c->spatial == 2 ? lg_randn(ctx, dt, 4, SHAPE(w0, w1, c->kh, c->kw))
                            : lg_randn(ctx, dt, 3, SHAPE(w0, w1, c->kw));
    lg_tensor *y = conv_apply(ctx, xs, (void *)c);
    xs[2] = y ? lg_randn(ctx, dt, lg_tensor_ndim(y), lg_tensor_shape(y)) : NULL;
}

static void conv_wgrad_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(31);
    for (int i = 0; i < 3; i++) {
        conv_case c = wgrad_case(i);
        lg_tensor *xs[3];
        wgrad_inputs(ctx, &c, dt, xs);
        for (int k = 0; k < 3; k++)
            lg_requires_grad(ctx, xs[k], true);
        lg_tensor *g = taped_grad_of(ctx, conv_apply(ctx, xs, &c), xs[2], xs[1]);
        expect_ok(ctx);
        cr_assert_str_eq(lg_tensor_op_name(g), r->op);
        /* its own gradients (to x and u) by its taped and kernel backwards */
        expect_taped_is_kernel(ctx, g, 2, (lg_tensor *[]){ xs[0], xs[2] }, tol_for(dt), r->op);
        expect_close_to(g, kernel_grad_of(ctx, conv_apply(ctx, xs, &c), xs[2], xs[1]), tol_for(dt),
                        r->op);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

/* (x, W, u) -> conv_wgrad(x, u) tanh(W) */
static lg_tensor *conv_wgrad_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    lg_tensor *g = taped_grad_of(ctx, conv_apply(ctx, xs, user), xs[2], xs[1]);
    return g ? lg_mul(ctx, g, lg_tanh(ctx, xs[1])) : NULL;
}

static void conv_wgrad_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(32);
    for (int i = 0; i < 3; i++) {
        conv_case c = wgrad_case(i);
        lg_tensor *xs[3];
        wgrad_inputs(ctx, &c, LG_F64, xs);
        expect_gradcheck(ctx, conv_wgrad_apply, &c, 3, xs, r->op);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

static void max_pool_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(24);
    lg_tensor *x = from_doubles(ctx, dt, nine, 4, SHAPE(1, 1, 3, 3)), *idx;
    lg_max_pool_opts o = lg_max_pool_opts_default();
    o.stride = 1;
    expect_close(lg_max_pool2d(ctx, x, 2, 2, &o, &idx), (double[]){ 5, 6, 8, 9 }, 4, tol_for(dt),
                 r->op);
    static const int64_t want_idx[] = { 4, 5, 7, 8 };
    for (int i = 0; i < 4; i++)
        cr_assert_eq(((int64_t *)lg_tensor_data(idx))[i], want_idx[i]);
    /* ceil_mode keeps the partial last window of a row */
    o = lg_max_pool_opts_default();
    o.ceil_mode = true;
    lg_tensor *x1 = from_doubles(ctx, dt, (double[]){ 3, 1, 4, 1, 5 }, 2, SHAPE(1, 5));
    expect_close(lg_max_pool1d(ctx, x1, 2, &o, NULL), (double[]){ 3, 4, 5 }, 3, tol_for(dt),
                 r->op);
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

static void avg_pool_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(25);
    lg_tensor *x = from_doubles(ctx, dt, nine, 4, SHAPE(1, 1, 3, 3));
    lg_avg_pool_opts o = lg_avg_pool_opts_default();
    o.stride = 1;
    expect_close(lg_avg_pool2d(ctx, x, 2, 2, &o), (double[]){ 3, 4, 6, 7 }, 4, tol_for(dt), r->op);
    o = lg_avg_pool_opts_default();
    o.padding = 1, o.count_include_pad = false; /* windows at -1 and 1: 1, 2-3, 4-7, 5-6-8-9 */
    expect_close(lg_avg_pool2d(ctx, x, 2, 2, &o), (double[]){ 1, 2.5, 5.5, 7 }, 4, tol_for(dt),
                 r->op);
    o.count_include_pad = true;
    expect_close(lg_avg_pool2d(ctx, x, 2, 2, &o), (double[]){ 0.25, 1.25, 2.75, 7 }, 4,
                 tol_for(dt), r->op);
    o.divisor_override = 2;
    expect_close(lg_avg_pool2d(ctx, x, 2, 2, &o), (double[]){ 0.5, 2.5, 5.5, 14 }, 4, tol_for(dt),
                 r->op);
    /* adaptive 3 -> 2: windows [0, 2) and [1, 3) */
    expect_close(lg_adaptive_avg_pool2d(ctx, x, 2, 2), (double[]){ 3, 4, 6, 7 }, 4, tol_for(dt),
                 r->op);
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

typedef struct pool_case {
    int kind; /* 0 max, 1 avg, 2 adaptive */
    int spatial;
    int64_t kh, kw;
    lg_max_pool_opts mo;
    lg_avg_pool_opts ao;
} pool_case;

static lg_tensor *pool_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    const pool_case *c = user;
    if (c->kind == 0)
        return c->spatial == 2 ? lg_max_pool2d(ctx, xs[0], c->kh, c->kw, &c->mo, NULL)
                               : lg_max_pool1d(ctx, xs[0], c->kw, &c->mo, NULL);
    if (c->kind == 1)
        return c->spatial == 2 ? lg_avg_pool2d(ctx, xs[0], c->kh, c->kw, &c->ao)
                               : lg_avg_pool1d(ctx, xs[0], c->kw, &c->ao);
    return c->spatial == 2 ? lg_adaptive_avg_pool2d(ctx, xs[0], c->kh, c->kw)
                           : lg_adaptive_avg_pool1d(ctx, xs[0], c->kw);
}

static void pool_grad_cases(const op_row *r, int kind)
{
    lg_ctx *ctx = test_ctx(26);
    pool_case cs[3];
    for (int i = 0; i < 3; i++)
        cs[i] = (pool_case){ kind, 2, 3, 2, lg_max_pool_opts_default(), lg_avg_pool_opts_default() };
    cs[1].mo.stride = cs[1].ao.stride = 2, cs[1].mo.padding = cs[1].ao.padding = 1;
    cs[1].mo.ceil_mode = cs[1].ao.ceil_mode = true, cs[1].ao.count_include_pad = false;
    cs[1].mo.dilation_hw[0] = 2, cs[1].mo.dilation_hw[1] = 1;
    cs[2].spatial = 1, cs[2].kw = 3, cs[2].mo.stride = cs[2].ao.stride = 2;
    for (int i = 0; i < 3; i++) {
        lg_tensor *x = cs[i].spatial == 2 ? lg_randn(ctx, LG_F64, 4, SHAPE(2, 3, 7, 6))
                                          : lg_randn(ctx, LG_F64, 3, SHAPE(2, 3, 7));
        expect_gradcheck(ctx, pool_apply, &cs[i], 1, &x, r->op);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

static void max_pool_grad(const op_row *r)
{
    pool_grad_cases(r, 0);
}

static void avg_pool_grad(const op_row *r)
{
    pool_grad_cases(r, 1);
    pool_grad_cases(r, 2);
}

/* avg_pool_adjoint is what avg_pool's taped backward makes: lg_grad of
 * y = avg_pool(x) under u, with respect to x (count_include_pad off with
 * ceil_mode, a divisor_override, adaptive). */
static pool_case avg_adjoint_case(int i)
{
    pool_case c = { 1, 2, 3, 2, lg_max_pool_opts_default(), lg_avg_pool_opts_default() };
    c.ao.stride = 2, c.ao.padding = 1;
    if (i == 0)
        c.ao.ceil_mode = true, c.ao.count_include_pad = false;
    if (i == 1)
        c.ao.divisor_override = 5;
    if (i == 2)
        c.kind = 2, c.kh = 3, c.kw = 4;
    return c;
}

static void avg_adjoint_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(33);
    for (int i = 0; i < 3; i++) {
        pool_case c = avg_adjoint_case(i);
        lg_tensor *x = lg_randn(ctx, dt, 4, SHAPE(2, 2, 5, 6));
        lg_requires_grad(ctx, x, true);
        lg_tensor *y = pool_apply(ctx, &x, &c);
        lg_tensor *u = lg_randn(ctx, dt, lg_tensor_ndim(y), lg_tensor_shape(y));
        lg_requires_grad(ctx, u, true);
        lg_tensor *g = taped_grad_of(ctx, y, u, x);
        expect_ok(ctx);
        cr_assert_str_eq(lg_tensor_op_name(g), r->op);
        expect_taped_is_kernel(ctx, g, 1, &u, tol_for(dt), r->op);
        expect_close_to(g, kernel_grad_of(ctx, pool_apply(ctx, &x, &c), u, x), tol_for(dt), r->op);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

/* (x, u) -> avg_pool_adjoint(u) exp(x) */
static lg_tensor *avg_adjoint_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    lg_tensor *g = taped_grad_of(ctx, pool_apply(ctx, xs, user), xs[1], xs[0]);
    return g ? lg_mul(ctx, g, lg_exp(ctx, xs[0])) : NULL;
}

static void avg_adjoint_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(34);
    for (int i = 0; i < 3; i++) {
        pool_case c = avg_adjoint_case(i);
        lg_tensor *x = lg_randn(ctx, LG_F64, 4, SHAPE(1, 2, 5, 6));
        lg_tensor *y = pool_apply(ctx, &x, &c);
        lg_tensor *u = lg_randn(ctx, LG_F64, lg_tensor_ndim(y), lg_tensor_shape(y));
        expect_gradcheck(ctx, avg_adjoint_apply, &c, 2, (lg_tensor *[]){ x, u }, r->op);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

static void norm_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(27);
    if (!strcmp(r->op, "layer_norm")) {
        double s = 1 / sqrt(2.0 / 3.0 + 1e-12); /* [1, 2, 3]: mean 2, variance 2/3 */
        lg_tensor *x = from_doubles(ctx, dt, (double[]){ 1, 2, 3, 6, 6, 6 }, 2, SHAPE(2, 3));
        lg_tensor *w = from_doubles(ctx, dt, (double[]){ 1, 2, 3 }, 1, SHAPE(3));
        lg_tensor *b = from_doubles(ctx, dt, (double[]){ 0, 0, 1 }, 1, SHAPE(3));
        expect_close(lg_layer_norm(ctx, x, 1, SHAPE(3), w, b, 1e-12),
                     (double[]){ -s, 0, 3 * s + 1, 0, 0, 1 }, 6, tol_for(dt), r->op);
    } else if (!strcmp(r->op, "group_norm")) {
        /* one group of two channels: [1, 2 | 3, 4], mean 2.5, variance 1.25 */
        lg_tensor *x = from_doubles(ctx, dt, (double[]){ 1, 2, 3, 4 }, 3, SHAPE(1, 2, 2));
        double q = 1 / sqrt(1.25);
        expect_close(lg_group_norm(ctx, x, 1, NULL, NULL, 0),
                     (double[]){ -1.5 * q, -0.5 * q, 0.5 * q, 1.5 * q }, 4, tol_for(dt), r->op);
    } else {
        /* one channel [1, 3]: mean 2, variance 1; running stats from 0, 1 */
        lg_tensor *x = from_doubles(ctx, dt, (double[]){ 1, 3 }, 2, SHAPE(2, 1));
        lg_tensor *rm = lg_zeros(ctx, dt, 1, SHAPE(1)), *rv = lg_ones(ctx, dt, 1, SHAPE(1));
        expect_close(lg_batch_norm(ctx, x, rm, rv, NULL, NULL, true, 0.1, 0),
                     (double[]){ -1, 1 }, 2, tol_for(dt), r->op);
        expect_close(rm, (double[]){ 0.2 }, 1, tol_for(dt), "running_mean");
        expect_close(rv, (double[]){ 0.9 + 0.1 * 2 }, 1, tol_for(dt), "running_var (unbiased)");
        /* evaluation: the running statistics */
        expect_close(lg_batch_norm(ctx, x, rm, rv, NULL, NULL, false, 0.1, 0),
                     (double[]){ 0.8 / sqrt(1.1), 2.8 / sqrt(1.1) }, 2, tol_for(dt), r->op);
    }
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

typedef struct norm_case {
    const char *op;
    bool w, b, training;
    lg_tensor *rm, *rv;
} norm_case;

static lg_tensor *norm_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    const norm_case *c = user;
    lg_tensor *w = c->w ? xs[1] : NULL, *b = c->b ? xs[c->w ? 2 : 1] : NULL;
    if (!strcmp(c->op, "layer_norm"))
        return lg_layer_norm(ctx, xs[0], 2, SHAPE(3, 4), w, b, 1e-5);
    if (!strcmp(c->op, "group_norm"))
        return lg_group_norm(ctx, xs[0], 3, w, b, 1e-5);
    /* momentum 0: the running statistics stay what the evaluation uses */
    return lg_batch_norm(ctx, xs[0], c->rm, c->rv, w, b, c->training, 0, 1e-5);
}

static void norm_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(28);
    bool layer = !strcmp(r->op, "layer_norm");
    for (int v = 0; v < 4; v++) {
        norm_case c = { r->op, v != 1, v != 2, v != 3, NULL, NULL };
        if (!layer && strcmp(r->op, "group_norm")) {
            c.rm = lg_randn(ctx, LG_F64, 1, SHAPE(6));
            c.rv = lg_rand(ctx, LG_F64, 1, SHAPE(6), 0.5, 2);
        }
        lg_tensor *xs[3];
        int n = 0;
        xs[n++] = lg_randn(ctx, LG_F64, 4, SHAPE(2, 6, 3, 4));
        int64_t ws = layer ? 3 : 6;
        if (c.w)
            xs[n++] = layer ? lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)) : lg_randn(ctx, LG_F64, 1, SHAPE(ws));
        if (c.b)
            xs[n++] = layer ? lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)) : lg_randn(ctx, LG_F64, 1, SHAPE(ws));
        expect_gradcheck(ctx, norm_apply, &c, n, xs, r->op);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* var, std                                                             */
/* ------------------------------------------------------------------ */

/* Naive reference over the masked axes of x:[2,3,4] (rcases' axes): the
 * two-pass variance of each output, divided by n - 1 or n; std's root. */
static int var_ref(lg_tensor *x, int naxes, const int *axes, bool unbiased, bool is_std,
                   double *out)
{
    bool mask[3] = { naxes == 0, naxes == 0, naxes == 0 };
    for (int i = 0; i < naxes; i++)
        mask[(axes[i] + 3) % 3] = true;
    int64_t lim[3], red[3] = { mask[0] ? 2 : 1, mask[1] ? 3 : 1, mask[2] ? 4 : 1 };
    for (int d = 0; d < 3; d++)
        lim[d] = mask[d] ? 1 : (int64_t[]){ 2, 3, 4 }[d];
    int n = 0;
    for (int64_t i0 = 0; i0 < lim[0]; i0++)
        for (int64_t i1 = 0; i1 < lim[1]; i1++)
            for (int64_t i2 = 0; i2 < lim[2]; i2++) {
                double v[24], m = 0, ss = 0;
                int k = 0;
                for (int64_t j0 = 0; j0 < red[0]; j0++)
                    for (int64_t j1 = 0; j1 < red[1]; j1++)
                        for (int64_t j2 = 0; j2 < red[2]; j2++)
                            v[k++] = get(x, ((i0 + j0) * 3 + (i1 + j1)) * 4 + (i2 + j2));
                for (int j = 0; j < k; j++)
                    m += v[j] / k;
                for (int j = 0; j < k; j++)
                    ss += (v[j] - m) * (v[j] - m);
                double var = ss / (k - (unbiased ? 1 : 0));
                out[n++] = is_std ? sqrt(var) : var;
            }
    return n;
}

static void var_fwd(const op_row *r, lg_dtype dt)
{
    bool is_std = !strcmp(r->op, "std");
    lg_ctx *ctx = test_ctx(34);
    lg_tensor *x = lg_rand(ctx, dt, 3, SHAPE(2, 3, 4), -3, 3);
    for (size_t c = 0; c < sizeof rcases / sizeof rcases[0]; c++)
        for (int u = 0; u < 2; u++) {
            int na = rcases[c].naxes;
            const int *ax = rcases[c].axes;
            bool kd = rcases[c].keepdim;
            lg_tensor *y = is_std ? lg_std(ctx, x, na, ax, u, kd) : lg_var(ctx, x, na, ax, u, kd);
            expect_ok(ctx);
            double want[24];
            int n = var_ref(x, na, ax, u, is_std, want);
            expect_close(y, want, n, dt == LG_F32 ? 1e-5 : 1e-12, r->op);
            int want_nd = kd ? 3 : 3 - (na ? na : 3);
            cr_assert_eq(lg_tensor_ndim(y), want_nd, "%s case %zu: ndim %d, expected %d", r->op, c,
                         lg_tensor_ndim(y), want_nd);
        }
    /* [1, 2, 3, 4] with [5, 5, 5, 5]: 5/3 and 0 (unbiased), 1.25 (biased) */
    lg_tensor *k = from_doubles(ctx, dt, (double[]){ 1, 2, 3, 4, 5, 5, 5, 5 }, 2, SHAPE(2, 4));
    double v3 = is_std ? sqrt(5.0 / 3) : 5.0 / 3, v4 = is_std ? sqrt(1.25) : 1.25;
    lg_tensor *yu = is_std ? lg_std(ctx, k, 1, (int[]){ 1 }, true, false)
                           : lg_var(ctx, k, 1, (int[]){ 1 }, true, false);
    lg_tensor *yb = is_std ? lg_std(ctx, k, 1, (int[]){ -1 }, false, true)
                           : lg_var(ctx, k, 1, (int[]){ -1 }, false, true);
    expect_close(yu, (double[]){ v3, 0 }, 2, tol_for(dt), "unbiased rows");
    expect_close(yb, (double[]){ v4, 0 }, 2, tol_for(dt), "biased rows, keepdim");
    /* an empty set: NaN; one element: NaN unbiased, 0 biased */
    expect_close(lg_var(ctx, lg_zeros(ctx, dt, 2, SHAPE(2, 0)), 1, (int[]){ 1 }, false, false),
                 (double[]){ NAN, NAN }, 2, 0, "empty set");
    lg_tensor *k1 = from_doubles(ctx, dt, (double[]){ 7 }, 1, SHAPE(1));
    expect_close(lg_var(ctx, k1, 0, NULL, true, false), (double[]){ NAN }, 1, 0, "n = 1");
    expect_close(lg_std(ctx, k1, 0, NULL, false, false), (double[]){ 0 }, 1, 0, "n = 1 biased");
    expect_ok(ctx);
    EXPECT_ERR(ctx, lg_var(ctx, x, 1, (int[]){ 3 }, true, false), LG_ERR_AXIS, "lg_var");
    EXPECT_ERR(ctx, lg_std(ctx, x, 2, (int[]){ 1, -2 }, true, false), LG_ERR_AXIS, "twice");
    EXPECT_ERR(ctx, lg_std(ctx, lg_zeros(ctx, LG_I64, 1, SHAPE(3)), 0, NULL, true, false),
               LG_ERR_DTYPE, "lg_std");
    lg_ctx_free(ctx);
}

typedef struct {
    bool is_std, unbiased;
    int c;
} var_case;

static lg_tensor *var_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    const var_case *v = user;
    int na = rcases[v->c].naxes;
    const int *ax = rcases[v->c].axes;
    bool kd = rcases[v->c].keepdim;
    return v->is_std ? lg_std(ctx, xs[0], na, ax, v->unbiased, kd)
                     : lg_var(ctx, xs[0], na, ax, v->unbiased, kd);
}

/* Every rcases axis set, keepdim and not, unbiased and biased; then the
 * edges against PyTorch 1.13's numbers: a constant row (std's gradient 0),
 * one element unbiased (NaN), a 0-d x (var: g inf; std: NaN). */
static void var_grad(const op_row *r)
{
    bool is_std = !strcmp(r->op, "std");
    lg_ctx *ctx = test_ctx(35);
    lg_tensor *x = lg_randn(ctx, LG_F64, 3, SHAPE(2, 3, 4));
    for (size_t c = 0; c < sizeof rcases / sizeof rcases[0]; c++)
        for (int u = 0; u < 2; u++) {
            var_case v = { is_std, u, (int)c };
            expect_gradcheck(ctx, var_apply, &v, 1, &x, r->op);
        }
    for (int e = 0; e < 3; e++) {
        lg_tensor *k = e == 0 ? lg_full(ctx, LG_F64, 2, SHAPE(2, 3), 1.5)
                              : (e == 1 ? lg_randn(ctx, LG_F64, 2, SHAPE(2, 1))
                                        : lg_scalar(ctx, LG_F64, 0.25));
        lg_requires_grad(ctx, k, true);
        int na = e == 2 ? 0 : 1;
        lg_tensor *y = is_std ? lg_std(ctx, k, na, (int[]){ 1 }, true, false)
                              : lg_var(ctx, k, na, (int[]){ 1 }, true, false);
        lg_tensor *g = lg_full(ctx, LG_F64, lg_tensor_ndim(y), lg_tensor_shape(y), -2);
        cr_assert_eq(lg_backward_with(ctx, y, g), LG_OK, "%s", lg_ctx_errmsg(ctx));
        /* var's 2 (x - mean) g / (n - 1) is 0 where x == mean */
        double want = e == 0 ? 0 : (e == 2 && !is_std ? -INFINITY : NAN);
        for (int64_t i = 0; i < lg_tensor_numel(k); i++)
            cr_assert(isnan(want) ? isnan(get(lg_tensor_grad(k), i))
                                  : get(lg_tensor_grad(k), i) == want,
                      "%s edge %d: grad[%lld] = %g, expected %g", r->op, e, (long long)i,
                      get(lg_tensor_grad(k), i), want);
    }
    lg_ctx_free(ctx);
}

/* Each output's sums run in a fixed order: var and std, and their
 * gradients, have the same bits at 1 and 4 threads. */
static void var_std_run(int threads, lg_tensor **copies, lg_ctx **ctxs)
{
    lg_ctx *ctx = lg_ctx_new(&(lg_ctx_params){ .seed = 36, .threads = threads });
    cr_assert_not_null(ctx);
    lg_tensor *x = lg_randn(ctx, LG_F32, 3, SHAPE(700, 30, 20));
    lg_requires_grad(ctx, x, true);
    lg_tensor *v = lg_var(ctx, x, 2, (int[]){ 1, 2 }, false, false);
    lg_tensor *sd = lg_std(ctx, x, 2, (int[]){ 0, 2 }, true, true);
    lg_tensor *loss = lg_add(ctx, lg_sum(ctx, v, 0, NULL, false), lg_sum(ctx, sd, 0, NULL, false));
    cr_assert_eq(lg_backward(ctx, loss), LG_OK, "%s", lg_ctx_errmsg(ctx));
    copies[0] = v, copies[1] = sd, copies[2] = lg_tensor_grad(x);
    *ctxs = ctx;
}

Test(ops, var_std_same_bits_at_any_thread_count)
{
    lg_tensor *one[3], *four[3];
    lg_ctx *c1, *c4;
    var_std_run(1, one, &c1);
    var_std_run(4, four, &c4);
    for (int k = 0; k < 3; k++) {
        int64_t n = lg_tensor_numel(one[k]);
        cr_assert_eq(n, lg_tensor_numel(four[k]));
        cr_assert(!memcmp(lg_tensor_data(one[k]), lg_tensor_data(four[k]), (size_t)n * 4),
                  "%s differs at 4 threads", (const char *[]){ "var", "std", "grad" }[k]);
    }
    lg_ctx_free(c1);
    lg_ctx_free(c4);
}

static lg_interpolate_opts interp_opts(lg_interp_mode mode, bool align_corners)
{
    lg_interpolate_opts o = lg_interpolate_opts_default();
    o.mode = mode, o.align_corners = align_corners;
    return o;
}

static void interp_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(29);
    double tol = tol_for(dt);
    /* nearest, factor 2: each element a 2x2 block */
    lg_tensor *x = from_doubles(ctx, dt, (double[]){ 1, 2, 3, 4 }, 4, SHAPE(1, 1, 2, 2));
    lg_interpolate_opts o = interp_opts(LG_INTERP_NEAREST, false);
    o.scale_factor = 2;
    expect_close(lg_interpolate(ctx, x, &o),
                 (double[]){ 1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4 }, 16, tol, r->op);
    /* nearest down, 5 -> 2: scale 2.5, sources 0 and 2 */
    lg_tensor *row = from_doubles(ctx, dt, (double[]){ 10, 11, 12, 13, 14 }, 4, SHAPE(1, 1, 1, 5));
    o = interp_opts(LG_INTERP_NEAREST, false);
    o.size_hw[0] = 1, o.size_hw[1] = 2;
    expect_close(lg_interpolate(ctx, row, &o), (double[]){ 10, 12 }, 2, tol, r->op);
    /* bilinear of [0, 1] to 3 points with align_corners: 0, 0.5, 1; to 4
     * without: r = max((o + 0.5) / 2 - 0.5, 0) = 0, 0.25, 0.75, 1.25 (clamped
     * to the last element) */
    lg_tensor *two = from_doubles(ctx, dt, (double[]){ 0, 1 }, 4, SHAPE(1, 1, 1, 2));
    o = interp_opts(LG_INTERP_BILINEAR, true);
    o.size_hw[0] = 1, o.size_hw[1] = 3;
    expect_close(lg_interpolate(ctx, two, &o), (double[]){ 0, 0.5, 1 }, 3, tol, r->op);
    o = interp_opts(LG_INTERP_BILINEAR, false);
    o.size_hw[0] = 1, o.size_hw[1] = 4;
    expect_close(lg_interpolate(ctx, two, &o), (double[]){ 0, 0.25, 0.75, 1 }, 4, tol, r->op);
    /* a factor's scale is 1 / factor, not in / out: in 5, factor 1.5 gives
     * out 7 and bilinear r(6) = 6.5 / 1.5 - 0.5 = 3.8333 (in / out would
     * give 4.1429, past the last element) */
    lg_tensor *five = from_doubles(ctx, dt, (double[]){ 0, 1, 2, 3, 4 }, 4, SHAPE(1, 1, 1, 5));
    o = interp_opts(LG_INTERP_BILINEAR, false);
    o.scale_factor_hw[0] = 1, o.scale_factor_hw[1] = 1.5;
    lg_tensor *y = lg_interpolate(ctx, five, &o);
    cr_assert_eq(lg_tensor_shape(y)[3], 7);
    expect_close(lg_slice(ctx, y, 3, 6, 7, 1), (double[]){ 6.5 / 1.5 - 0.5 }, 1, tol, r->op);
    /* nearest's product in the element type, as PyTorch: in 61, factor
     * 1.15, o 69: 69 / 1.15 rounds to 60 from double, 59.999998 in float */
    double ramp[61];
    for (int i = 0; i < 61; i++)
        ramp[i] = i;
    o = interp_opts(LG_INTERP_NEAREST, false);
    o.scale_factor_hw[0] = 1, o.scale_factor_hw[1] = 1.15;
    y = lg_interpolate(ctx, from_doubles(ctx, dt, ramp, 4, SHAPE(1, 1, 1, 61)), &o);
    cr_assert_eq(lg_tensor_shape(y)[3], 70);
    expect_close(lg_slice(ctx, y, 3, 69, 70, 1), (double[]){ dt == LG_F32 ? 59 : 60 }, 1, 0, r->op);
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

static lg_tensor *interp_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    return lg_interpolate(ctx, xs[0], user);
}

static void interp_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(30);
    lg_interpolate_opts cs[9];
    for (int i = 0; i < 9; i++)
        cs[i] = interp_opts(i < 3 ? LG_INTERP_NEAREST : LG_INTERP_BILINEAR, i >= 6);
    cs[0].size_hw[0] = 5, cs[0].size_hw[1] = 7; /* up, sizes */
    cs[1].scale_factor = 1.5;                   /* a non-integer factor */
    cs[2].scale_factor = 0.6;                   /* down */
    cs[3].size_hw[0] = 5, cs[3].size_hw[1] = 7;
    cs[4].scale_factor_hw[0] = 1.7, cs[4].scale_factor_hw[1] = 0.6;
    cs[5].size_hw[0] = 4, cs[5].size_hw[1] = 2; /* H kept: the identity */
    cs[6].size_hw[0] = 5, cs[6].size_hw[1] = 7;
    cs[7].scale_factor_hw[0] = 1.7, cs[7].scale_factor_hw[1] = 0.6;
    cs[8].size_hw[0] = 1, cs[8].size_hw[1] = 3; /* one output row: scale 0 */
    for (int i = 0; i < 9; i++) {
        lg_tensor *x = lg_randn(ctx, LG_F64, 4, SHAPE(2, 3, 4, 5));
        expect_gradcheck(ctx, interp_apply, &cs[i], 1, &x, r->op);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

/* interpolate_adjoint is what interpolate's taped backward makes: lg_grad
 * of y = interpolate(x) under u, with respect to x (nearest by a
 * non-integer factor, bilinear up and down, with and without
 * align_corners). */
static lg_interpolate_opts interp_adjoint_case(int i)
{
    lg_interpolate_opts o = interp_opts(i == 0 ? LG_INTERP_NEAREST : LG_INTERP_BILINEAR, i == 2);
    if (i == 0)
        o.scale_factor = 1.5;
    else
        o.size_hw[0] = 5, o.size_hw[1] = 3;
    return o;
}

static void interp_adjoint_fwd(const op_row *r, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(35);
    for (int i = 0; i < 3; i++) {
        lg_interpolate_opts o = interp_adjoint_case(i);
        lg_tensor *x = lg_randn(ctx, dt, 4, SHAPE(2, 2, 3, 4));
        lg_requires_grad(ctx, x, true);
        lg_tensor *y = lg_interpolate(ctx, x, &o);
        lg_tensor *u = lg_randn(ctx, dt, lg_tensor_ndim(y), lg_tensor_shape(y));
        lg_requires_grad(ctx, u, true);
        lg_tensor *g = taped_grad_of(ctx, y, u, x);
        expect_ok(ctx);
        cr_assert_str_eq(lg_tensor_op_name(g), r->op);
        expect_taped_is_kernel(ctx, g, 1, &u, tol_for(dt), r->op);
        expect_close_to(g, kernel_grad_of(ctx, lg_interpolate(ctx, x, &o), u, x), tol_for(dt),
                        r->op);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

/* (x, u) -> interpolate_adjoint(u) exp(x) */
static lg_tensor *interp_adjoint_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    lg_tensor *g = taped_grad_of(ctx, lg_interpolate(ctx, xs[0], user), xs[1], xs[0]);
    return g ? lg_mul(ctx, g, lg_exp(ctx, xs[0])) : NULL;
}

static void interp_adjoint_grad(const op_row *r)
{
    lg_ctx *ctx = test_ctx(36);
    for (int i = 0; i < 3; i++) {
        lg_interpolate_opts o = interp_adjoint_case(i);
        lg_tensor *x = lg_randn(ctx, LG_F64, 4, SHAPE(1, 2, 3, 4));
        lg_tensor *y = lg_interpolate(ctx, x, &o);
        lg_tensor *u = lg_randn(ctx, LG_F64, lg_tensor_ndim(y), lg_tensor_shape(y));
        expect_gradcheck(ctx, interp_adjoint_apply, &o, 2, (lg_tensor *[]){ x, u }, r->op);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

#define UROW(name)                                                                                 \
    {                                                                                              \
#name, unary_fwd, unary_grad, &ud_##name                                                   \
    }
#define BROW(name)                                                                                 \
    {                                                                                              \
#name, binary_fwd, binary_grad, &bd_##name                                                 \
    }
static op_row rows[] = {
    UROW(neg),
    UROW(exp),
    UROW(log),
    UROW(log1p),
    UROW(expm1),
    UROW(abs),
    UROW(sign),
    UROW(sqrt),
    UROW(square),
    UROW(relu),
    UROW(sigmoid),
    UROW(log_sigmoid),
    UROW(tanh),
    UROW(softplus),
    UROW(pow_scalar),
    UROW(affine),
    UROW(clamp),
    UROW(gelu),
    UROW(gelu_tanh),
    UROW(silu),
    UROW(mish),
    UROW(hardswish),
    UROW(hardsigmoid),
    UROW(softsign),
    UROW(selu),
    UROW(leaky_relu),
    UROW(elu),
    UROW(hardtanh),
    UROW(erf),
    BROW(add),
    BROW(sub),
    BROW(mul),
    BROW(div),
    BROW(pow),
    BROW(maximum),
    BROW(minimum),
    BROW(xlogy),
    { "compare", compare_fwd, compare_grad, NULL },
    { "where", where_fwd, where_grad, NULL },
    { "sum", reduce_fwd, reduce_grad, &rk_sum },
    { "mean", reduce_fwd, reduce_grad, &rk_mean },
    { "max", reduce_fwd, reduce_grad, &rk_max },
    { "min", reduce_fwd, reduce_grad, &rk_min },
    { "logsumexp", reduce_fwd, reduce_grad, &rk_lse },
    { "norm", reduce_fwd, reduce_grad, rk_norm },
    { "softmax", softmax_fwd, softmax_grad, NULL },
    { "log_softmax", softmax_fwd, softmax_grad, NULL },
    { "matmul", matmul_fwd, matmul_grad, NULL },
    { "reshape", reshape_fwd, reshape_grad, NULL },
    { "permute", permute_fwd, permute_grad, NULL },
    { "slice", slice_fwd, slice_grad, NULL },
    { "concat", concat_fwd, concat_grad, NULL },
    { "index_select", index_select_fwd, index_select_grad, NULL },
    { "gather", gather_fwd, gather_grad, NULL },
    { "one_hot", one_hot_fwd, nograd_one_hot, NULL },
    { "cast", cast_fwd, cast_grad, NULL },
    { "clone", clone_fwd, clone_grad, NULL },
    { "expand", expand_fwd, expand_grad, NULL },
    { "slice_adjoint", adjoint_fwd, adjoint_grad, NULL },
    { "index_adjoint", adjoint_fwd, adjoint_grad, NULL },
    { "gather_adjoint", adjoint_fwd, adjoint_grad, NULL },
    { "binary_cross_entropy", bce_fwd, bce_grad, NULL },
    { "ctc_loss", ctc_fwd, ctc_grad, NULL },
    { "pointwise_loss", pointwise_fwd, pointwise_grad, NULL },
    { "cross_entropy_rows", ce_rows_fwd, ce_rows_grad, NULL },
    { "nll_rows", rows_fwd, rows_grad, NULL },
    { "multi_margin_rows", rows_fwd, rows_grad, NULL },
    { "multilabel_margin_rows", rows_fwd, rows_grad, NULL },
    { "triplet_rows", triplet_fwd, triplet_grad, NULL },
    { "poly1_rows", poly1_fwd, poly1_grad, NULL },
    { "gru_cell", gru_fwd, gru_grad, NULL },
    { "gru_sequence", gru_seq_fwd, gru_seq_grad, NULL },
    { "conv", conv_fwd, conv_grad, NULL },
    { "conv_transpose", conv_transpose_fwd, conv_transpose_grad, NULL },
    { "conv_wgrad", conv_wgrad_fwd, conv_wgrad_grad, NULL },
    { "max_pool", max_pool_fwd, max_pool_grad, NULL },
    { "avg_pool", avg_pool_fwd, avg_pool_grad, NULL },
    { "avg_pool_adjoint", avg_adjoint_fwd, avg_adjoint_grad, NULL },
    { "batch_norm", norm_fwd, norm_grad, NULL },
    { "layer_norm", norm_fwd, norm_grad, NULL },
    { "group_norm", norm_fwd, norm_grad, NULL },
    { "var", var_fwd, var_grad, NULL },
    { "std", var_fwd, var_grad, NULL },
    { "interpolate", interp_fwd, interp_grad, NULL },
    { "interpolate_adjoint", interp_adjoint_fwd, interp_adjoint_grad, NULL },
};
#define NROWS ((int)(sizeof rows / sizeof rows[0]))

static void init_iota(void)
{
    for (int i = 0; i < 64; i++)
        iota[i] = i;
}

/* Parameters cross into a re-executed test process, so they are row
 * numbers, not pointers (addresses differ there). */
static void free_params(struct criterion_test_params *p)
{
    cr_free(p->params);
}

ParameterizedTestParameters(ops, forward_and_gradient)
{
    int *idx = cr_malloc(NROWS * sizeof *idx);
    for (int i = 0; i < NROWS; i++)
        idx[i] = i;
    return cr_make_param_array(int, idx, NROWS, free_params);
}

ParameterizedTest(int *row, ops, forward_and_gradient)
{
    const op_row *r = &rows[*row];
    init_iota();
    r->fwd(r, LG_F32);
    r->fwd(r, LG_F64);
    for (int i = 0; i < lg_op_count(); i++) /* the second-order column */
        if (strcmp(lg_op_name(i), r->op) == 0)
            expect_second_order = lg_op_twice_differentiable(i);
    r->grad(r);
}

/* Every op has a taped backward (lg_grad walks it), so the second-order
 * column above covers every row. */
Test(ops, every_registered_op_is_twice_differentiable)
{
    for (int i = 0; i < lg_op_count(); i++)
        cr_expect(lg_op_twice_differentiable(i), "op '%s' has no taped backward", lg_op_name(i));
    cr_assert(!lg_op_twice_differentiable(-1) && !lg_op_twice_differentiable(lg_op_count()));
}

Test(ops, every_registered_op_has_a_test_row)
{
    for (int i = 0; i < lg_op_count(); i++) {
        const char *name = lg_op_name(i);
        bool found = false;
        for (int j = 0; j < NROWS && !found; j++)
            found = strcmp(rows[j].op, name) == 0 && rows[j].fwd && rows[j].grad;
        cr_expect(found, "op '%s' is registered but has no row in tests/test_ops.c", name);
    }
    cr_assert_null(lg_op_name(lg_op_count()));
}

/* ------------------------------------------------------------------ */
/* The vector float32 exp, log and log1p (src/tensor/vmath.h)          */
/* ------------------------------------------------------------------ */

#include "../src/tensor/vmath.h"

static double ulps(float got, double want)
{
    float w = (float)want;
    double ulp = (double)nextafterf(fabsf(w), INFINITY) - (double)fabsf(w);
    return fabs((double)got - want) / ulp;
}

/* Every 251st bit pattern (17 million floats, both signs, denormals,
 * infinities and NaN) against libm in double: within 3 ulp of the exact
 * value where the result is a normal float, and IEEE's special values.
 * Also sigmoid and tanh (the GRU cell's), built on exp. */
Test(ops, vector_exp_log_log1p_match_libm)
{
    double worst[5] = { 0, 0, 0, 0, 0 };
    for (uint64_t k = 0; k <= 0xffffffffu; k += 251) {
        float x = lgV_bits_to_float((uint32_t)k);
        float e = lgV_expf(x), l = lgV_logf(x), p = lgV_log1pf(x);
        float sg = lgV_sigmoidf(x), th = lgV_tanhf(x);
        if (isnan(x)) {
            cr_assert(isnan(e) && isnan(l) && isnan(p) && isnan(sg) && isnan(th), "NaN input %08x",
                      (unsigned)k);
            continue;
        }
        double te = exp((double)x), tl = log((double)x), tp = log1p((double)x);
        double ts = 1 / (1 + exp(-(double)x)), tt = tanh((double)x);
        if ((float)te == 0 || isinf((float)te) || fabs(te) < 1.2e-38)
            cr_assert(e == (float)te || (te < 1.2e-38 && e < 1.2e-38f),
                      "exp(%.9g) = %.9g, expected %.9g", x, e, te);
        else
            worst[0] = fmax(worst[0], ulps(e, te));
        if (x <= 0 || isinf(x))
            cr_assert((isnan(tl) && isnan(l)) || l == (float)tl, "log(%.9g) = %.9g, expected %.9g",
                      x, l, tl);
        else
            worst[1] = fmax(worst[1], ulps(l, tl));
        if (x <= -1 || isinf(x))
            cr_assert((isnan(tp) && isnan(p)) || p == (float)tp,
                      "log1p(%.9g) = %.9g, expected %.9g", x, p, tp);
        else if ((float)tp != 0 && fabs(tp) >= 1.2e-38)
            worst[2] = fmax(worst[2], ulps(p, tp));
        if (fabs(ts) < 1.2e-38)
            cr_assert(sg < 1.2e-38f, "sigmoid(%.9g) = %.9g, expected %.9g", x, sg, ts);
        else
            worst[3] = fmax(worst[3], ulps(sg, ts));
        if (fabs(tt) < 1.2e-38)
            cr_assert(th == (float)tt || fabsf(th) < 1.2e-38f, "tanh(%.9g) = %.9g, expected %.9g",
                      x, th, tt);
        else
            worst[4] = fmax(worst[4], ulps(th, tt));
    }
    cr_assert(worst[0] <= 3 && worst[1] <= 3 && worst[2] <= 3 && worst[3] <= 3 && worst[4] <= 3,
              "worst ulp errors: exp %.2f, log %.2f, log1p %.2f, sigmoid %.2f, tanh %.2f", worst[0],
              worst[1], worst[2], worst[3], worst[4]);
}

/* PyTorch's rule at a NaN: the masks a < b and a > b both fail, so each
 * input gets the whole upstream (torch.maximum(x, y).sum().backward()
 * gives x.grad = [1, 0.5, 0], y.grad = [1, 0.5, 1] for x = [nan, 1, 2],
 * y = [0, 1, 3]). */
Test(ops, maximum_minimum_gradient_at_nan_and_ties)
{
    lg_ctx *ctx = test_ctx(11);
    for (int dt = 0; dt < 2; dt++)
        for (int mx = 0; mx < 2; mx++) {
            bool f32 = dt == LG_F32;
            float xf[] = { NAN, 1, 2 }, yf[] = { 0, 1, 3 };
            double xd[] = { NAN, 1, 2 }, yd[] = { 0, 1, 3 };
            lg_tensor *x = lg_tensor_from(ctx, (lg_dtype)dt, f32 ? (void *)xf : xd, 1, SHAPE(3));
            lg_tensor *y = lg_tensor_from(ctx, (lg_dtype)dt, f32 ? (void *)yf : yd, 1, SHAPE(3));
            lg_requires_grad(ctx, x, true);
            lg_requires_grad(ctx, y, true);
            lg_tensor *m = mx ? lg_maximum(ctx, x, y) : lg_minimum(ctx, x, y);
            cr_assert_eq(lg_backward(ctx, lg_sum(ctx, m, 0, NULL, false)), LG_OK);
            double dx_max[] = { 1, 0.5, 0 }, dy_max[] = { 1, 0.5, 1 };
            expect_close(lg_tensor_grad(x), mx ? dx_max : dy_max, 3, 0, "dx");
            expect_close(lg_tensor_grad(y), mx ? dy_max : dx_max, 3, 0, "dy");
            lg_step_end(ctx);
        }
    lg_ctx_free(ctx);
}
