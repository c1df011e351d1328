/* mha.c: nn.MultiheadAttention and nn.TransformerEncoderLayer, as
 * compositions of public ops.
 *
 * Multi-head attention (PyTorch 1.13, kdim = vdim = E, H heads of
 * d = E / H): q | k | v = x W_{q|k|v}^T + b from the rows [0, E), [E, 2E),
 * [2E, 3E) of in_proj_weight; each head attends with
 * softmax(q k^T / sqrt(d) + mask) v; the heads are concatenated and go
 * through out_proj. Internally everything is batch first, [N, L, E]; a
 * sequence-first input is permuted in and out. The masks (an additive or
 * boolean attn_mask [L, S], a causal one, a key_padding_mask [N, S]) are
 * merged into one additive mask for lg_scaled_dot_product_attention.
 */
#include "nn.h"

#include <math.h>
#include <string.h>

static const lg_mha_opts mha_defaults = { .defaults_tag = LG_OPTS_TAG };
static const lgC_opts_desc mha_desc = LGC_DESC0(lg_mha_opts, mha_defaults);

lg_mha_opts lg_mha_opts_default(void)
{
    return mha_defaults;
}

static const lg_mha_masks masks_defaults = { .defaults_tag = LG_OPTS_TAG };
static const lgC_opts_desc masks_desc = LGC_DESC0(lg_mha_masks, masks_defaults);

lg_mha_masks lg_mha_masks_default(void)
{
    return masks_defaults;
}

static lg_mha *mha_body(lg_ctx *ctx, const char *who, const char *name, int64_t e, int64_t h,
                        const lg_mha_opts *opts)
{
    lg_mha_opts o;
    if (!lgC_opts(ctx, who, &mha_desc, opts, &o))
        return NULL;
    if (o.dtype != LG_F32 && o.dtype != LG_F64)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: dtype must be LG_F32 or LG_F64", who);
    if (e < 1 || h < 1 || e % h || e > (1 << 24))
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: embed_dim = %lld and num_heads = %lld: expected >= 1 each, heads "
                         "dividing embed_dim (and embed_dim <= 2^24)",
                         who, (long long)e, (long long)h);
    if (!(o.dropout >= 0 && o.dropout < 1))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: dropout = %g, expected in [0, 1)", who, o.dropout);
    lg_mha *m = lgC_palloc(ctx, sizeof *m, who);
    if (!m)
        return NULL;
    *m = (lg_mha){
        .embed_dim = e, .num_heads = h, .batch_first = o.batch_first, .dropout = o.dropout
    };
    char buf[256];
    /* PyTorch's _reset_parameters: xavier_uniform in_proj, zero biases,
     * out_proj as nn.Linear's weight (U(+-1/sqrt(E))) */
    m->in_proj_weight = lg_param_new(ctx, lgN_name(ctx, buf, sizeof buf, name, "in_proj_weight"),
                                     o.dtype, 2, (int64_t[]){ 3 * e, e });
    if (!m->in_proj_weight || lg_init_xavier_uniform(ctx, m->in_proj_weight, 1.0) != LG_OK)
        return NULL;
    if (!o.no_bias &&
        !(m->in_proj_bias = lg_param_new(ctx, lgN_name(ctx, buf, sizeof buf, name, "in_proj_bias"),
                                         o.dtype, 1, (int64_t[]){ 3 * e })))
        return NULL;
    m->out_proj_weight =
        lgN_param_uniform(ctx, lgN_name(ctx, buf, sizeof buf, name, "out_proj.weight"), o.dtype, 2,
                          (int64_t[]){ e, e }, 1 / sqrt((double)e));
    if (!m->out_proj_weight)
        return NULL;
    if (!o.no_bias && !(m->out_proj_bias =
                            lg_param_new(ctx, lgN_name(ctx, buf, sizeof buf, name, "out_proj.bias"),
                                         o.dtype, 1, &e)))
        return NULL;
    return m;
}

lg_mha *lg_mha_new(lg_ctx *ctx, const char *name, int64_t embed_dim, int64_t num_heads,
                   const lg_mha_opts *o)
{
    if (!ctx)
        return NULL;
    lgN_build b = lgN_build_begin(ctx, "lg_mha_new");
    return lgN_build_end(ctx, b, mha_body(ctx, "lg_mha_new", name, embed_dim, num_heads, o));
}

/* x [N, T, E] -> [N, H, T, d] */
static lg_tensor *split_heads(lg_ctx *ctx, lg_tensor *x, int64_t h)
{
    int64_t n = lg_tensor_dim(x, 0), t = lg_tensor_dim(x, 1), e = lg_tensor_dim(x, 2);
    lg_tensor *r = lg_reshape(ctx, x, 4, (int64_t[]){ n, t, h, e / h });
    return lg_permute(ctx, r, (int[]){ 0, 2, 1, 3 });
}

/* The projection of x [N, T, E] by rows [r0, r0 + rows) of in_proj. */
static lg_tensor *project(lg_ctx *ctx, const lg_mha *m, lg_tensor *x, int64_t r0, int64_t rows)
{
    lg_tensor *w = lg_narrow(ctx, m->in_proj_weight, 0, r0, rows);
    lg_tensor *b = m->in_proj_bias ? lg_narrow(ctx, m->in_proj_bias, 0, r0, rows) : NULL;
    return lg_matmul_bias(ctx, x, w, b, false, true);
}

/* A [rows, cols] additive mask from a 0/1 int64 one: -inf where it holds 1. */
static lg_tensor *bool_to_additive(lg_ctx *ctx, lg_tensor *mask, lg_dtype dt)
{
    return lg_where(ctx, mask, lg_scalar(ctx, dt, -INFINITY), lg_scalar(ctx, dt, 0.0));
}

/* The merged additive mask ([L, S], [N, 1, 1, S] or [N, 1, L, S]), or NULL
 * for none (*err set if a mask is wrong). */
static lg_tensor *merged_mask(lg_ctx *ctx, const char *who, const lg_mha_masks *mk, lg_dtype dt,
                              int64_t n, int64_t l, int64_t s, bool batched, bool *err)
{
    lg_tensor *am = NULL, *kp = NULL;
    *err = false;
    if (mk->attn_mask && mk->is_causal) {
        *err = true;
        return lgC_error(ctx, LG_ERR_VALUE, "%s: give attn_mask or is_causal, not both", who);
    }
    if (mk->attn_mask) {
        lg_tensor *a = mk->attn_mask;
        if (lg_tensor_check(ctx, a) != LG_OK || lg_tensor_ndim(a) != 2 ||
            lg_tensor_dim(a, 0) != l || lg_tensor_dim(a, 1) != s) {
            *err = true;
            return lgC_error(ctx, LG_ERR_SHAPE, "%s: attn_mask must be [L, S] = [%lld, %lld]", who,
                             (long long)l, (long long)s);
        }
        am = lg_tensor_dtype(a) == LG_I64 ? bool_to_additive(ctx, a, dt) : a;
    } else if (mk->is_causal) {
        am = lg_zeros(ctx, dt, 2, (int64_t[]){ l, s });
        for (int64_t i = 0; am && i < l; i++)
            for (int64_t j = i + 1; j < s; j++) {
                if (dt == LG_F32)
                    ((float *)lg_tensor_data(am))[i * s + j] = -INFINITY;
                else
                    ((double *)lg_tensor_data(am))[i * s + j] = -INFINITY;
            }
    }
    if (mk->key_padding_mask) {
        lg_tensor *k = mk->key_padding_mask;
        bool ok = lg_tensor_check(ctx, k) == LG_OK &&
                  (batched ? lg_tensor_ndim(k) == 2 && lg_tensor_dim(k, 0) == n &&
                                 lg_tensor_dim(k, 1) == s
                           : lg_tensor_ndim(k) == 1 && lg_tensor_dim(k, 0) == s);
        if (!ok) {
            *err = true;
            return lgC_error(ctx, LG_ERR_SHAPE,
                             "%s: key_padding_mask must be [N, S] = [%lld, %lld]%s", who,
                             (long long)n, (long long)s, batched ? "" : " ([S] unbatched)");
        }
        kp = lg_tensor_dtype(k) == LG_I64 ? bool_to_additive(ctx, k, dt) : k;
        kp = lg_reshape(ctx, kp, 4, (int64_t[]){ n, 1, 1, s });
    }
    if (am && kp)
        return lg_add(ctx, am, kp);
    return am ? am : kp;
}

lg_tensor *lg_mha_forward(lg_ctx *ctx, const lg_mha *m, lg_tensor *query, lg_tensor *key,
                          lg_tensor *value, const lg_mha_masks *masks)
{
    static const char who[] = "lg_mha_forward";
    if (!ctx || lgC_failed(ctx, who))
        return NULL;
    if (!m || !query || !key || !value)
        return lgC_error(ctx, LG_ERR_NULL, "%s: %s is NULL", who,
                         !m       ? "m"
                         : !query ? "query"
                         : !key   ? "key"
                                  : "value");
    lg_mha_masks mk;
    if (!lgC_opts(ctx, who, &masks_desc, masks, &mk))
        return NULL;
    const char *outer = lgC_api_enter(ctx, who);
    int nd = lg_tensor_ndim(query);
    bool batched = nd == 3;
    int64_t e = m->embed_dim;
    if ((nd != 2 && nd != 3) || lg_tensor_ndim(key) != nd || lg_tensor_ndim(value) != nd ||
        lg_tensor_dim(query, -1) != e || lg_tensor_dim(key, -1) != e ||
        lg_tensor_dim(value, -1) != e)
        return lgN_api_done(ctx, outer,
                            lgC_error(ctx, LG_ERR_SHAPE,
                                      "%s: query, key and value must be [L, N, E] (batch_first: "
                                      "[N, L, E]) or unbatched [L, E], all with E = %lld",
                                      who, (long long)e));
    bool self = query == key && key == value;
    /* to batch first [N, T, E] */
    lg_tensor *q = query, *k = key, *v = value;
    if (!batched) {
        q = lg_reshape(ctx, query, 3, (int64_t[]){ 1, lg_tensor_dim(query, 0), e });
        k = self ? q : lg_reshape(ctx, key, 3, (int64_t[]){ 1, lg_tensor_dim(key, 0), e });
        v = self ? q : lg_reshape(ctx, value, 3, (int64_t[]){ 1, lg_tensor_dim(value, 0), e });
    } else if (!m->batch_first) {
        q = lg_transpose(ctx, query, 0, 1);
        k = self ? q : lg_transpose(ctx, key, 0, 1);
        v = self ? q : lg_transpose(ctx, value, 0, 1);
    }
    int64_t n = lg_tensor_dim(q, 0), l = lg_tensor_dim(q, 1), s = lg_tensor_dim(k, 1);
    if (lg_tensor_dim(k, 0) != n || lg_tensor_dim(v, 0) != n || lg_tensor_dim(v, 1) != s)
        return lgN_api_done(ctx, outer,
                            lgC_error(ctx, LG_ERR_SHAPE,
                                      "%s: key and value must have query's batch and one "
                                      "length S",
                                      who));
    lg_tensor *qp, *kp, *vp;
    if (self) { /* one product with the whole in_proj, then its thirds */
        lg_tensor *all = lg_matmul_bias(ctx, q, m->in_proj_weight, m->in_proj_bias, false, true);
        qp = lg_narrow(ctx, all, 2, 0, e);
        kp = lg_narrow(ctx, all, 2, e, e);
        vp = lg_narrow(ctx, all, 2, 2 * e, e);
    } else {
        qp = project(ctx, m, q, 0, e);
        kp = project(ctx, m, k, e, e);
        vp = project(ctx, m, v, 2 * e, e);
    }
    lg_dtype dt = lg_tensor_dtype(query);
    bool bad;
    lg_tensor *mask = merged_mask(ctx, who, &mk, dt, n, l, s, batched, &bad);
    if (bad)
        return lgN_api_done(ctx, outer, NULL);
    int64_t h = m->num_heads;
    lg_sdpa_opts so = lg_sdpa_opts_default();
    so.attn_mask = mask;
    so.dropout_p = m->dropout;
    lg_tensor *att = lg_scaled_dot_product_attention(
        ctx, split_heads(ctx, qp, h), split_heads(ctx, kp, h), split_heads(ctx, vp, h), &so);
    /* [N, H, L, d] -> [N, L, E] -> out_proj */
    lg_tensor *cat =
        lg_reshape(ctx, lg_permute(ctx, att, (int[]){ 0, 2, 1, 3 }), 3, (int64_t[]){ n, l, e });
    lg_tensor *y = lg_matmul_bias(ctx, cat, m->out_proj_weight, m->out_proj_bias, false, true);
    if (!batched)
        y = lg_reshape(ctx, y, 2, (int64_t[]){ l, e });
    else if (!m->batch_first)
        y = lg_transpose(ctx, y, 0, 1);
    return lgN_api_done(ctx, outer, y);
}

/* ------------------------------------------------------------------ */
/* Transformer encoder layer                                            */
/* ------------------------------------------------------------------ */

static const lg_encoder_opts enc_defaults = {
    .defaults_tag = LG_OPTS_TAG, .dim_feedforward = 2048, .dropout = 0.1, .layer_norm_eps = 1e-5
};
static const lgC_optfield enc_fields[] = {
    LGC_FIELD(lg_encoder_opts, dim_feedforward, "2048"),
    LGC_FIELD(lg_encoder_opts, dropout, "0.1"),
    LGC_FIELD(lg_encoder_opts, layer_norm_eps, "1e-5"),
};
static const lgC_opts_desc enc_desc = LGC_DESC(lg_encoder_opts, enc_defaults, enc_fields);

lg_encoder_opts lg_encoder_opts_default(void)
{
    return enc_defaults;
}

static lg_encoder_layer *encoder_body(lg_ctx *ctx, const char *who, const char *name,
                                      int64_t d_model, int64_t nhead, const lg_encoder_opts *opts)
{
    lg_encoder_opts o;
    if (!lgC_opts(ctx, who, &enc_desc, opts, &o))
        return NULL;
    if (o.dim_feedforward < 1 || !(o.dropout >= 0 && o.dropout < 1) ||
        (o.activation != LG_ACT_RELU && o.activation != LG_ACT_GELU))
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: dim_feedforward %lld (>= 1), dropout %g ([0, 1)), activation %d "
                         "(LG_ACT_RELU or LG_ACT_GELU)",
                         who, (long long)o.dim_feedforward, o.dropout, (int)o.activation);
    lg_encoder_layer *l = lgC_palloc(ctx, sizeof *l, who);
    if (!l)
        return NULL;
    *l = (lg_encoder_layer){ .dropout = o.dropout,
                             .norm_first = o.norm_first,
                             .activation = o.activation };
    char buf[256];
    lg_mha_opts mo = lg_mha_opts_default();
    mo.dtype = o.dtype, mo.batch_first = o.batch_first, mo.dropout = o.dropout;
    lg_linear_opts lo = lg_linear_opts_default();
    lo.dtype = o.dtype;
    lg_norm_layer_opts no = lg_norm_layer_opts_default();
    no.dtype = o.dtype, no.eps = o.layer_norm_eps;
    l->self_attn =
        lg_mha_new(ctx, lgN_name(ctx, buf, sizeof buf, name, "self_attn"), d_model, nhead, &mo);
    l->linear1 = lg_linear_new(ctx, lgN_name(ctx, buf, sizeof buf, name, "linear1"), d_model,
                               o.dim_feedforward, &lo);
    l->linear2 = lg_linear_new(ctx, lgN_name(ctx, buf, sizeof buf, name, "linear2"),
                               o.dim_feedforward, d_model, &lo);
    l->norm1 =
        lg_layernorm_new(ctx, lgN_name(ctx, buf, sizeof buf, name, "norm1"), 1, &d_model, &no);
    l->norm2 =
        lg_layernorm_new(ctx, lgN_name(ctx, buf, sizeof buf, name, "norm2"), 1, &d_model, &no);
    return l->self_attn && l->linear1 && l->linear2 && l->norm1 && l->norm2 ? l : NULL;
}

lg_encoder_layer *lg_encoder_layer_new(lg_ctx *ctx, const char *name, int64_t d_model,
                                       int64_t nhead, const lg_encoder_opts *o)
{
    if (!ctx)
        return NULL;
    lgN_build b = lgN_build_begin(ctx, "lg_encoder_layer_new");
    return lgN_build_end(ctx, b,
                         encoder_body(ctx, "lg_encoder_layer_new", name, d_model, nhead, o));
}

lg_tensor *lg_encoder_layer_forward(lg_ctx *ctx, const lg_encoder_layer *l, lg_tensor *x,
                                    const lg_mha_masks *masks)
{
    static const char who[] = "lg_encoder_layer_forward";
    if (!ctx)
        return NULL;
    if (!l)
        return lgC_error(ctx, LG_ERR_NULL, "%s: l is NULL", who);
    const char *outer = lgC_api_enter(ctx, who);
    lg_tensor *a = l->norm_first ? lg_layernorm_forward(ctx, l->norm1, x) : x;
    a = lg_dropout(ctx, lg_mha_forward(ctx, l->self_attn, a, a, a, masks), l->dropout);
    x = l->norm_first ? lg_add(ctx, x, a) : lg_layernorm_forward(ctx, l->norm1, lg_add(ctx, x, a));
    lg_tensor *f = l->norm_first ? lg_layernorm_forward(ctx, l->norm2, x) : x;
    f = lg_linear_forward(ctx, l->linear1, f);
    f = l->activation == LG_ACT_GELU ? lg_gelu(ctx, f, LG_GELU_NONE) : lg_relu(ctx, f);
    f = lg_dropout(ctx, lg_linear_forward(ctx, l->linear2, lg_dropout(ctx, f, l->dropout)),
                   l->dropout);
    x = l->norm_first ? lg_add(ctx, x, f) : lg_layernorm_forward(ctx, l->norm2, lg_add(ctx, x, f));
    return lgN_api_done(ctx, outer, x);
}
