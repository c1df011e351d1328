/* init.c: parameter initialisers (PyTorch's torch.nn.init formulas) drawing
 * from the ctx RNG, so a seed reproduces a model. They write in place and
 * record no gradient. */
#include "nn.h"

#include <math.h>

static bool target_ok(lg_ctx *ctx, lg_tensor *t, const char *who)
{
    if (!t)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: t is NULL", who), false;
    if (lg_tensor_check(ctx, t) != LG_OK)
        return false;
    if (lg_tensor_dtype(t) == LG_I64)
        return lgC_errorf(ctx, LG_ERR_DTYPE, "%s: t is int64, expected a float tensor", who), false;
    return true;
}

/* fan_in and fan_out as torch.nn.init._calculate_fan_in_and_fan_out. */
static bool fans(lg_ctx *ctx, lg_tensor *t, const char *who, double *fan_in, double *fan_out)
{
    int nd = lg_tensor_ndim(t);
    if (nd < 2)
        return lgC_errorf(ctx, LG_ERR_SHAPE,
                          "%s: t has %d dims, fan in and fan out need at least 2", who, nd),
               false;
    const int64_t *s = lg_tensor_shape(t);
    double receptive = 1;
    for (int d = 2; d < nd; d++)
        receptive *= (double)s[d];
    *fan_in = (double)s[1] * receptive;
    *fan_out = (double)s[0] * receptive;
    return true;
}

double lg_init_gain(lg_nonlinearity nl, double a)
{
    switch (nl) {
    case LG_NL_LINEAR:
    case LG_NL_CONV1D:
    case LG_NL_CONV2D:
    case LG_NL_CONV3D:
    case LG_NL_CONV_TRANSPOSE1D:
    case LG_NL_CONV_TRANSPOSE2D:
    case LG_NL_CONV_TRANSPOSE3D:
    case LG_NL_SIGMOID: return 1.0;
    case LG_NL_TANH: return 5.0 / 3.0;
    case LG_NL_RELU: return sqrt(2.0);
    case LG_NL_SELU: return 0.75;
    case LG_NL_LEAKY_RELU: return sqrt(2.0 / (1.0 + a * a));
    }
    return NAN;
}

lg_status lg_init_uniform(lg_ctx *ctx, lg_tensor *t, double low, double high)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, "lg_init_uniform"))
        return ctx->status;
    if (!(low <= high))
        return lgC_errorf(ctx, LG_ERR_VALUE, "lg_init_uniform: need low <= high, got %g, %g", low,
                          high);
    for (int64_t i = 0; i < lg_tensor_numel(t); i++)
        lgN_set(t, i, low + (high - low) * lg_rand_uniform(ctx));
    return LG_OK;
}

lg_status lg_init_normal(lg_ctx *ctx, lg_tensor *t, double mean, double std)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, "lg_init_normal"))
        return ctx->status;
    if (!(std >= 0))
        return lgC_errorf(ctx, LG_ERR_VALUE, "lg_init_normal: std = %g, expected >= 0", std);
    for (int64_t i = 0; i < lg_tensor_numel(t); i++)
        lgN_set(t, i, mean + std * lg_rand_normal(ctx));
    return LG_OK;
}

lg_status lg_init_constant(lg_ctx *ctx, lg_tensor *t, double value)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, "lg_init_constant"))
        return ctx->status;
    for (int64_t i = 0; i < lg_tensor_numel(t); i++)
        lgN_set(t, i, value);
    return LG_OK;
}

lg_status lg_init_xavier_uniform(lg_ctx *ctx, lg_tensor *t, double gain)
{
    double fi, fo;
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, "lg_init_xavier_uniform") ||
        !fans(ctx, t, "lg_init_xavier_uniform", &fi, &fo))
        return ctx->status;
    double b = gain * sqrt(6.0 / (fi + fo));
    return lg_init_uniform(ctx, t, -b, b);
}

lg_status lg_init_xavier_normal(lg_ctx *ctx, lg_tensor *t, double gain)
{
    double fi, fo;
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, "lg_init_xavier_normal") ||
        !fans(ctx, t, "lg_init_xavier_normal", &fi, &fo))
        return ctx->status;
    return lg_init_normal(ctx, t, 0, gain * sqrt(2.0 / (fi + fo)));
}

static bool kaiming_std(lg_ctx *ctx, lg_tensor *t, double a, lg_fan_mode mode, lg_nonlinearity nl,
                        const char *who, double *std)
{
    double fi, fo;
    if (!target_ok(ctx, t, who) || !fans(ctx, t, who, &fi, &fo))
        return false;
    double fan = mode == LG_FAN_OUT ? fo : fi;
    if (isnan(lg_init_gain(nl, a)))
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: nonlinearity %d is not an lg_nonlinearity", who,
                          (int)nl),
               false;
    if (fan == 0)
        return lgC_errorf(ctx, LG_ERR_SHAPE, "%s: the fan is 0 (an empty tensor)", who), false;
    *std = lg_init_gain(nl, a) / sqrt(fan);
    return true;
}

lg_status lg_init_kaiming_uniform(lg_ctx *ctx, lg_tensor *t, double a, lg_fan_mode mode,
                                  lg_nonlinearity nl)
{
    double std;
    if (!ctx)
        return LG_ERR_NULL;
    if (!kaiming_std(ctx, t, a, mode, nl, "lg_init_kaiming_uniform", &std))
        return ctx->status;
    double b = sqrt(3.0) * std;
    return lg_init_uniform(ctx, t, -b, b);
}

lg_status lg_init_kaiming_normal(lg_ctx *ctx, lg_tensor *t, double a, lg_fan_mode mode,
                                 lg_nonlinearity nl)
{
    double std;
    if (!ctx)
        return LG_ERR_NULL;
    if (!kaiming_std(ctx, t, a, mode, nl, "lg_init_kaiming_normal", &std))
        return ctx->status;
    return lg_init_normal(ctx, t, 0, std);
}

/* Gram-Schmidt, each column orthogonalised twice (CGS2: orthogonal to
 * rounding even for ill-conditioned draws), on a [m, n] column-major
 * matrix a (m >= n) in place: a becomes Q of a = Q R with R's diagonal
 * positive, which is PyTorch's Q after its sign fix. */
static void orthonormalise(double *a, int64_t m, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        double *v = a + j * m;
        for (int pass = 0; pass < 2; pass++)
            for (int64_t k = 0; k < j; k++) {
                const double *q = a + k * m;
                double dot = 0;
                for (int64_t i = 0; i < m; i++)
                    dot += q[i] * v[i];
                for (int64_t i = 0; i < m; i++)
                    v[i] -= dot * q[i];
            }
        double norm = 0;
        for (int64_t i = 0; i < m; i++)
            norm += v[i] * v[i];
        norm = sqrt(norm);
        for (int64_t i = 0; norm > 0 && i < m; i++)
            v[i] /= norm;
    }
}

lg_status lg_init_orthogonal(lg_ctx *ctx, lg_tensor *t, double gain)
{
    static const char who[] = "lg_init_orthogonal";
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, who))
        return ctx->status;
    if (lg_tensor_ndim(t) < 2 || lg_tensor_numel(t) == 0)
        return lgC_errorf(ctx, LG_ERR_SHAPE,
                          "%s: t has %d dims and %lld elements, expected >= 2 dims and not empty",
                          who, lg_tensor_ndim(t), (long long)lg_tensor_numel(t));
    if (!isfinite(gain))
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: gain = %g, expected finite", who, gain);
    int64_t rows = lg_tensor_shape(t)[0], cols = lg_tensor_numel(t) / rows;
    bool wide = rows < cols; /* PyTorch factors the transpose then */
    int64_t m = wide ? cols : rows, n = wide ? rows : cols;
    double *a = lgC_salloc(ctx, (size_t)(m * n) * sizeof *a, who);
    if (!a)
        return ctx->status;
    /* the draws fill [rows, cols] row-major; column j of the factored
     * matrix is column j of it (tall) or row j (wide) */
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            a[wide ? r * m + c : c * m + r] = lg_rand_normal(ctx);
    orthonormalise(a, m, n);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            lgN_set(t, r * cols + c, gain * a[wide ? r * m + c : c * m + r]);
    return LG_OK;
}

/* erf^-1 on [-1, 1]: Winitzki's closed form (relative error < 2e-3), then
 * Newton steps on erf(x) - y, each doubling the correct digits. */
static double erfinv(double y)
{
    if (y <= -1)
        return -INFINITY;
    if (y >= 1)
        return INFINITY;
    const double ka = 0.147, pi = 3.14159265358979323846;
    double l = log((1 - y) * (1 + y)), c = 2 / (pi * ka) + l / 2;
    double x = copysign(sqrt(sqrt(c * c - l / ka) - c), y);
    for (int i = 0; i < 4; i++) {
        double d = 2 / sqrt(pi) * exp(-x * x);
        if (!(d > 0))
            break;
        x -= (erf(x) - y) / d;
    }
    return x;
}

lg_status lg_init_trunc_normal(lg_ctx *ctx, lg_tensor *t, double mean, double std, double a,
                               double b)
{
    static const char who[] = "lg_init_trunc_normal";
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, who))
        return ctx->status;
    if (!isfinite(mean) || !isfinite(std) || !isfinite(a) || !isfinite(b) || !(std > 0) || !(a < b))
        return lgC_errorf(ctx, LG_ERR_VALUE,
                          "%s: mean = %g, std = %g, [a, b] = [%g, %g], expected finite, std > 0 "
                          "and a < b",
                          who, mean, std, a, b);
    /* 2 Phi(z) - 1 = erf(z / sqrt 2): the uniform's range */
    double lo = erf((a - mean) / std / sqrt(2.0)), hi = erf((b - mean) / std / sqrt(2.0));
    for (int64_t i = 0; i < lg_tensor_numel(t); i++) {
        double u = lo + (hi - lo) * lg_rand_uniform(ctx);
        double v = mean + std * sqrt(2.0) * erfinv(u);
        lgN_set(t, i, fmin(fmax(v, a), b));
    }
    return LG_OK;
}

lg_status lg_init_eye(lg_ctx *ctx, lg_tensor *t)
{
    static const char who[] = "lg_init_eye";
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, who))
        return ctx->status;
    if (lg_tensor_ndim(t) != 2)
        return lgC_errorf(ctx, LG_ERR_SHAPE, "%s: t has %d dims, expected 2", who,
                          lg_tensor_ndim(t));
    int64_t cols = lg_tensor_shape(t)[1];
    for (int64_t i = 0; i < lg_tensor_numel(t); i++)
        lgN_set(t, i, i / cols == i % cols ? 1.0 : 0.0);
    return LG_OK;
}

lg_status lg_init_dirac(lg_ctx *ctx, lg_tensor *t, int64_t groups)
{
    static const char who[] = "lg_init_dirac";
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, who))
        return ctx->status;
    int nd = lg_tensor_ndim(t);
    if (nd < 3 || nd > 5)
        return lgC_errorf(ctx, LG_ERR_SHAPE, "%s: t has %d dims, expected 3, 4 or 5", who, nd);
    const int64_t *s = lg_tensor_shape(t);
    if (groups < 1 || s[0] % groups != 0)
        return lgC_errorf(ctx, LG_ERR_VALUE,
                          "%s: groups = %lld, expected >= 1 and dividing shape[0] = %lld", who,
                          (long long)groups, (long long)s[0]);
    int64_t per = s[0] / groups, mind = per < s[1] ? per : s[1];
    int64_t spatial = 1, centre = 0; /* the centre's flat offset within one [k...] block */
    for (int d = 2; d < nd; d++) {
        centre = centre * s[d] + s[d] / 2;
        spatial *= s[d];
    }
    for (int64_t i = 0; i < lg_tensor_numel(t); i++)
        lgN_set(t, i, 0.0);
    for (int64_t g = 0; g < groups; g++)
        for (int64_t d = 0; d < mind; d++)
            lgN_set(t, ((g * per + d) * s[1] + d) * spatial + centre, 1.0);
    return LG_OK;
}

lg_status lg_init_sparse(lg_ctx *ctx, lg_tensor *t, double sparsity, double std)
{
    static const char who[] = "lg_init_sparse";
    if (!ctx)
        return LG_ERR_NULL;
    if (!target_ok(ctx, t, who))
        return ctx->status;
    if (lg_tensor_ndim(t) != 2)
        return lgC_errorf(ctx, LG_ERR_SHAPE, "%s: t has %d dims, expected 2", who,
                          lg_tensor_ndim(t));
    if (!(sparsity >= 0 && sparsity <= 1) || !(std >= 0) || !isfinite(std))
        return lgC_errorf(ctx, LG_ERR_VALUE,
                          "%s: sparsity = %g, std = %g, expected sparsity in [0, 1] and a finite "
                          "std >= 0",
                          who, sparsity, std);
    int64_t rows = lg_tensor_shape(t)[0], cols = lg_tensor_shape(t)[1];
    int64_t zeros = (int64_t)ceil(sparsity * (double)rows);
    int64_t *perm = lgC_salloc(ctx, (size_t)(rows > 0 ? rows : 1) * sizeof *perm, who);
    if (!perm)
        return ctx->status;
    for (int64_t i = 0; i < rows * cols; i++)
        lgN_set(t, i, std * lg_rand_normal(ctx));
    for (int64_t c = 0; c < cols; c++) {
        /* the first `zeros` entries of a uniform permutation (partial Fisher-Yates) */
        for (int64_t i = 0; i < rows; i++)
            perm[i] = i;
        for (int64_t k = 0; k < zeros; k++) {
            int64_t j = k + (int64_t)(lg_rand_uniform(ctx) * (double)(rows - k));
            if (j >= rows)
                j = rows - 1;
            int64_t tmp = perm[k];
            perm[k] = perm[j];
            perm[j] = tmp;
            lgN_set(t, perm[k] * cols + c, 0.0);
        }
    }
    return LG_OK;
}
