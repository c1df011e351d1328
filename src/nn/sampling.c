/* sampling.c: torch.multinomial, categorical sampling from the ctx RNG.
 *
 * Each row of non-negative weights w (not necessarily normalised) is a
 * categorical distribution p_c = w_c / sum w. With replacement every
 * sample is drawn by inverting the cumulative sum at u sum w (u uniform
 * in [0, 1), 53 bits); without replacement a drawn category's weight is
 * removed before the next draw. One uniform per sample, rows in order, so
 * a seed gives the same samples at any thread count. No gradient flows.
 */
#include "nn.h"

#include <math.h>

static const char who[] = "lg_multinomial";

/* The category of u in [0, total) under the cumulative weights of w. */
static int64_t draw(const double *w, int64_t c, double total, double u)
{
    double target = u * total, acc = 0;
    int64_t last = -1;
    for (int64_t k = 0; k < c; k++) {
        if (w[k] <= 0)
            continue;
        acc += w[k];
        last = k;
        if (target < acc)
            return k;
    }
    return last; /* rounding at the top end: the last positive category */
}

lg_tensor *lg_multinomial(lg_ctx *ctx, lg_tensor *input, int64_t num_samples, bool replacement)
{
    if (!ctx || lgC_failed(ctx, who))
        return NULL;
    if (!input)
        return lgC_error(ctx, LG_ERR_NULL, "%s: input is NULL", who);
    if (lg_tensor_check(ctx, input) != LG_OK)
        return NULL;
    int nd = lg_tensor_ndim(input);
    if (lg_tensor_dtype(input) == LG_I64 || (nd != 1 && nd != 2))
        return lgC_error(ctx, lg_tensor_dtype(input) == LG_I64 ? LG_ERR_DTYPE : LG_ERR_SHAPE,
                         "%s: input must be float weights of 1 or 2 dims ([C] or [N, C])", who);
    int64_t rows = nd == 2 ? lg_tensor_dim(input, 0) : 1, c = lg_tensor_dim(input, -1);
    if (c < 1 || num_samples < 1)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: %lld categories and num_samples = %lld, expected >= 1 each", who,
                         (long long)c, (long long)num_samples);
    if (!replacement && num_samples > c)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: num_samples = %lld without replacement, but only %lld categories",
                         who, (long long)num_samples, (long long)c);
    /* check every weight before any draw: the RNG is untouched on error */
    for (int64_t r = 0; r < rows; r++) {
        double total = 0;
        int64_t positive = 0;
        for (int64_t k = 0; k < c; k++) {
            double v = lg_tensor_dtype(input) == LG_F32
                           ? (double)((const float *)lg_tensor_data(input))[r * c + k]
                           : ((const double *)lg_tensor_data(input))[r * c + k];
            if (!(v >= 0) || isinf(v))
                return lgC_error(ctx, LG_ERR_VALUE,
                                 "%s: input[%lld][%lld] = %g, expected finite and >= 0", who,
                                 (long long)r, (long long)k, v);
            total += v, positive += v > 0;
        }
        if (!(total > 0) || isinf(total) || (!replacement && positive < num_samples))
            return lgC_error(ctx, LG_ERR_VALUE,
                             total > 0 ? "%s: row %lld has %lld categories of weight > 0, fewer "
                                         "than num_samples = %lld without replacement"
                                       : "%s: row %lld sums to 0 (or overflows): no "
                                         "distribution (%lld positive, %lld samples)",
                             who, (long long)r, (long long)positive, (long long)num_samples);
    }
    int64_t shape[2] = { rows, num_samples };
    lg_tensor *out =
        nd == 2 ? lg_zeros(ctx, LG_I64, 2, shape) : lg_zeros(ctx, LG_I64, 1, shape + 1);
    /* one row's weights, scratch in the step arena released below */
    lgC_mark m = lgC_arena_mark(&ctx->arena);
    double *w = out ? lgC_salloc(ctx, (size_t)c * sizeof *w, who) : NULL;
    if (!w)
        return NULL;
    int64_t *o = lg_tensor_data(out);
    for (int64_t r = 0; r < rows; r++) {
        double total = 0;
        for (int64_t k = 0; k < c; k++) {
            w[k] = lg_tensor_dtype(input) == LG_F32
                       ? (double)((const float *)lg_tensor_data(input))[r * c + k]
                       : ((const double *)lg_tensor_data(input))[r * c + k];
            total += w[k];
        }
        for (int64_t s = 0; s < num_samples; s++) {
            int64_t k = draw(w, c, total, lg_rand_uniform(ctx));
            o[r * num_samples + s] = k;
            if (!replacement) { /* remove it; the total from the rest, not by subtraction */
                w[k] = 0;
                total = 0;
                for (int64_t j = 0; j < c; j++)
                    total += w[j];
            }
        }
    }
    lgC_arena_release(&ctx->arena, m);
    return out;
}
