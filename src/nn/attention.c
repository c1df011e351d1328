/* attention.c: scaled dot-product attention, a composite of public ops.
 *
 *   out = softmax(q k^T scale + mask) v
 *   q:[..., L, E]  k:[..., S, E]  v:[..., S, Ev]  ->  [..., L, Ev]  (batch dims equal)
 *
 * One batched product makes the scores (k transposed by a gemm flag, never
 * copied), the scale is one multiply of the smaller of q and the scores, a
 * mask is one broadcast op over them, then softmax over S and one batched
 * product with v. Gradients are those of the ops. An int64 mask selects
 * (lg_where), so a key it hides gets gradient 0 even in a row it hides
 * whole, as PyTorch's masked_fill; a float or causal mask is added.
 */
#include "nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const lg_sdpa_opts sdpa_defaults = { .defaults_tag = LG_OPTS_TAG,
                                            .scale = LG_SDPA_DEFAULT_SCALE };
static const lgC_optfield sdpa_fields[] = {
    LGC_FIELD(lg_sdpa_opts, scale, "LG_SDPA_DEFAULT_SCALE"),
};
static const lgC_opts_desc sdpa_desc = LGC_DESC(lg_sdpa_opts, sdpa_defaults, sdpa_fields);

lg_sdpa_opts lg_sdpa_opts_default(void)
{
    return sdpa_defaults;
}

/* "[2, 3, 4]" into buf. */
static const char *shape_str(const lg_tensor *t, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < lg_tensor_ndim(t) && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", d ? ", " : "",
                              (long long)lg_tensor_shape(t)[d]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
    return buf;
}

/* A usable float tensor (NULL: LG_ERR_NULL, stale: LG_ERR_STALE). */
static bool float_input(lg_ctx *ctx, const char *who, const char *name, lg_tensor *t)
{
    if (!t)
        return lgC_fail(ctx, LG_ERR_NULL, "%s: %s is NULL", who, name);
    if (lg_tensor_check(ctx, t) != LG_OK)
        return false;
    if (lg_tensor_dtype(t) == LG_I64)
        return lgC_fail(ctx, LG_ERR_DTYPE, "%s: %s is int64, expected float32 or float64", who,
                        name);
    return true;
}

/* q, k and v agree: one float dtype, one ndim >= 2, equal batch dims, k
 * and v the same S, q and k the same E. */
static bool check_qkv(lg_ctx *ctx, const char *who, lg_tensor *q, lg_tensor *k, lg_tensor *v)
{
    if (!float_input(ctx, who, "query", q) || !float_input(ctx, who, "key", k) ||
        !float_input(ctx, who, "value", v))
        return false;
    lg_dtype dt = lg_tensor_dtype(q);
    if (lg_tensor_dtype(k) != dt || lg_tensor_dtype(v) != dt)
        return lgC_fail(ctx, LG_ERR_DTYPE,
                        "%s: query, key and value are %s, %s and %s, expected one dtype", who,
                        lgN_dtype_name(dt), lgN_dtype_name(lg_tensor_dtype(k)),
                        lgN_dtype_name(lg_tensor_dtype(v)));
    char sq[160], sk[160], sv[160];
    shape_str(q, sq, sizeof sq);
    shape_str(k, sk, sizeof sk);
    shape_str(v, sv, sizeof sv);
    int n = lg_tensor_ndim(q);
    if (n < 2 || lg_tensor_ndim(k) != n || lg_tensor_ndim(v) != n)
        return lgC_fail(ctx, LG_ERR_SHAPE,
                        "%s: query %s, key %s and value %s, expected one ndim >= 2 "
                        "([..., L, E], [..., S, E], [..., S, Ev])",
                        who, sq, sk, sv);
    const int64_t *qs = lg_tensor_shape(q), *ks = lg_tensor_shape(k), *vs = lg_tensor_shape(v);
    for (int d = 0; d < n - 2; d++)
        if (ks[d] != qs[d] || vs[d] != qs[d])
            return lgC_fail(ctx, LG_ERR_SHAPE,
                            "%s: query %s, key %s and value %s, expected equal batch dims "
                            "(all but the last two)",
                            who, sq, sk, sv);
    if (vs[n - 2] != ks[n - 2])
        return lgC_fail(ctx, LG_ERR_SHAPE,
                        "%s: key %s has S = %lld but value %s has %lld, expected the same", who, sk,
                        (long long)ks[n - 2], sv, (long long)vs[n - 2]);
    if (ks[n - 1] != qs[n - 1])
        return lgC_fail(ctx, LG_ERR_SHAPE,
                        "%s: query %s has E = %lld but key %s has %lld, expected the same", who, sq,
                        (long long)qs[n - 1], sk, (long long)ks[n - 1]);
    return true;
}

/* The mask: query's float dtype, or int64 holding only 0 and 1; its shape
 * broadcasts to the scores' [..., L, S] without growing them. */
static bool check_mask(lg_ctx *ctx, const char *who, lg_tensor *m, lg_tensor *q, int n,
                       const int64_t *scores)
{
    if (lg_tensor_check(ctx, m) != LG_OK)
        return false;
    lg_dtype dt = lg_tensor_dtype(m);
    if (dt != LG_I64 && dt != lg_tensor_dtype(q))
        return lgC_fail(ctx, LG_ERR_DTYPE,
                        "%s: attn_mask is %s, expected %s (query's dtype, added) or int64 (0/1)",
                        who, lgN_dtype_name(dt), lgN_dtype_name(lg_tensor_dtype(q)));
    int mn = lg_tensor_ndim(m);
    const int64_t *ms = lg_tensor_shape(m);
    bool fits = mn <= n;
    for (int d = 0; fits && d < mn; d++) {
        int64_t want = scores[n - mn + d];
        fits = ms[d] == want || ms[d] == 1;
    }
    if (!fits) {
        char sm[160], ss[160] = "[";
        shape_str(m, sm, sizeof sm);
        for (int d = 0; d < n; d++)
            snprintf(ss + strlen(ss), sizeof ss - strlen(ss), "%s%lld", d ? ", " : "",
                     (long long)scores[d]);
        snprintf(ss + strlen(ss), sizeof ss - strlen(ss), "]");
        return lgC_fail(ctx, LG_ERR_SHAPE,
                        "%s: attn_mask %s does not broadcast to the scores [..., L, S] = %s", who,
                        sm, ss);
    }
    if (dt == LG_I64) {
        const int64_t *v = lg_tensor_data(m);
        for (int64_t i = 0; i < lg_tensor_numel(m); i++)
            if (v[i] != 0 && v[i] != 1)
                return lgC_fail(ctx, LG_ERR_VALUE,
                                "%s: attn_mask[%lld] = %lld, expected 0 or 1 in an int64 mask", who,
                                (long long)i, (long long)v[i]);
    }
    return true;
}

/* [L, S]: 0 where key j <= query i, else -inf (top-left aligned, PyTorch 2's tril). */
static lg_tensor *causal_mask(lg_ctx *ctx, lg_dtype dt, int64_t l, int64_t s)
{
    lg_tensor *c = lg_zeros(ctx, dt, 2, (int64_t[]){ l, s });
    if (!c)
        return NULL;
    for (int64_t i = 0; i < l; i++)
        for (int64_t j = i + 1; j < s; j++)
            lgN_set(c, i * s + j, -INFINITY);
    return c;
}

static lg_tensor *sdpa_body(lg_ctx *ctx, lg_tensor *q, lg_tensor *k, lg_tensor *v,
                            const lg_sdpa_opts *opts)
{
    static const char who[] = "lg_scaled_dot_product_attention";
    lg_sdpa_opts o;
    if (!lgC_opts(ctx, who, &sdpa_desc, opts, &o) || !check_qkv(ctx, who, q, k, v))
        return NULL;
    int n = lg_tensor_ndim(q);
    lg_dtype dt = lg_tensor_dtype(q);
    int64_t l = lg_tensor_shape(q)[n - 2], e = lg_tensor_shape(q)[n - 1];
    int64_t s = lg_tensor_shape(k)[n - 2];
    int64_t scores[LG_MAX_DIMS];
    for (int d = 0; d < n - 2; d++)
        scores[d] = lg_tensor_shape(q)[d];
    scores[n - 2] = l, scores[n - 1] = s;
    if (o.scale != LG_SDPA_DEFAULT_SCALE && !(o.scale > 0 && isfinite(o.scale)))
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: scale = %g, expected finite and > 0 (or LG_SDPA_DEFAULT_SCALE)", who,
                         o.scale);
    if (!(o.dropout_p >= 0 && o.dropout_p < 1))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: dropout_p = %g, expected 0 <= dropout_p < 1", who,
                         o.dropout_p);
    if (o.is_causal && o.attn_mask)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: is_causal with an attn_mask, expected one of them (as PyTorch 2)",
                         who);
    if (o.attn_mask && !check_mask(ctx, who, o.attn_mask, q, n, scores))
        return NULL;
    double scale = o.scale == LG_SDPA_DEFAULT_SCALE ? 1.0 / sqrt((double)e) : o.scale;

    /* the scale on q when it is the smaller, else on the scores */
    bool scale_q = e <= s;
    lg_tensor *a = lg_matmul_t(ctx, scale_q ? lg_mul_scalar(ctx, q, scale) : q, k, false, true);
    if (!scale_q)
        a = lg_mul_scalar(ctx, a, scale);
    if (o.is_causal)
        a = lg_add(ctx, a, causal_mask(ctx, dt, l, s));
    else if (o.attn_mask && lg_tensor_dtype(o.attn_mask) == LG_I64)
        a = lg_where(ctx, o.attn_mask, a, lg_scalar(ctx, dt, -INFINITY));
    else if (o.attn_mask)
        a = lg_add(ctx, a, o.attn_mask);
    a = lg_softmax(ctx, a, -1);
    if (o.dropout_p > 0 && lg_ctx_training(ctx))
        a = lg_dropout(ctx, a, o.dropout_p);
    return lg_matmul(ctx, a, v);
}

lg_tensor *lg_scaled_dot_product_attention(lg_ctx *ctx, lg_tensor *query, lg_tensor *key,
                                           lg_tensor *value, const lg_sdpa_opts *o)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_scaled_dot_product_attention");
    return lgN_api_done(ctx, outer, sdpa_body(ctx, query, key, value, o));
}
