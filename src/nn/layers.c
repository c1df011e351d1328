/* layers.c: linear, embedding, dropout and the MLP helper.
 *
 * Layer structs are persistent (they live until lg_ctx_free); their
 * parameters sit in the ctx's parameter store under "<name>.<leaf>". The
 * forward passes are composites of public ops.
 */
#include "nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *lgN_name(lg_ctx *ctx, char *buf, size_t n, const char *prefix, const char *leaf)
{
    int r = (prefix && *prefix) ? snprintf(buf, n, "%s.%s", prefix, leaf)
                                : snprintf(buf, n, "%s", leaf);
    if (r < 0 || (size_t)r >= n)
        return lgC_error(ctx, LG_ERR_VALUE, "parameter name '%.100s%s.%s' is longer than %zu bytes",
                         prefix ? prefix : "", prefix && strlen(prefix) > 100 ? "..." : "", leaf,
                         n - 1);
    return buf;
}

lg_tensor *lgN_param_uniform(lg_ctx *ctx, const char *name, lg_dtype dt, int ndim,
                             const int64_t *shape, double bound)
{
    if (!name)
        return NULL;
    lg_tensor *p = lg_param_new(ctx, name, dt, ndim, shape);
    if (p && lg_init_uniform(ctx, p, -bound, bound) != LG_OK)
        return NULL;
    return p;
}

lg_tensor *lg_param_find(lg_ctx *ctx, const char *name)
{
    if (!ctx || !name)
        return NULL;
    for (int i = 0; i < lg_param_count(ctx); i++) {
        lg_tensor *p = lg_param_at(ctx, i);
        if (lg_tensor_name(p) && !strcmp(lg_tensor_name(p), name))
            return p;
    }
    return NULL;
}

lg_tensor *lg_buffer_find(lg_ctx *ctx, const char *name)
{
    if (!ctx || !name)
        return NULL;
    for (int i = 0; i < lg_buffer_count(ctx); i++) {
        lg_tensor *b = lg_buffer_at(ctx, i);
        if (lg_tensor_name(b) && !strcmp(lg_tensor_name(b), name))
            return b;
    }
    return NULL;
}

void lg_ctx_set_training(lg_ctx *ctx, bool training)
{
    if (ctx)
        ctx->eval_mode = !training;
}

bool lg_ctx_training(const lg_ctx *ctx)
{
    return ctx && !ctx->eval_mode;
}

static bool float_dtype(lg_ctx *ctx, lg_dtype dt, const char *who)
{
    if (dt == LG_F32 || dt == LG_F64)
        return true;
    lgC_error(ctx, LG_ERR_DTYPE, "%s: dtype must be LG_F32 or LG_F64", who);
    return false;
}

static const lg_linear_opts linear_defaults = { .defaults_tag = LG_OPTS_TAG };
static const lgC_opts_desc linear_desc = LGC_DESC0(lg_linear_opts, linear_defaults);

lg_linear_opts lg_linear_opts_default(void)
{
    return linear_defaults;
}

static lg_linear *linear_new_body(lg_ctx *ctx, const char *name, int64_t in_features,
                                  int64_t out_features, const lg_linear_opts *opts)
{
    static const char who[] = "lg_linear_new";
    lg_linear_opts o;
    if (!ctx || !lgC_opts(ctx, who, &linear_desc, opts, &o))
        return NULL;
    lg_dtype dt = o.dtype;
    if (!float_dtype(ctx, dt, who))
        return NULL;
    if (in_features < 1 || out_features < 1)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: sizes %lld -> %lld, expected >= 1 each", who,
                         (long long)in_features, (long long)out_features);
    int64_t n;
    if (!lgN_size_mul(out_features, in_features, &n))
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: sizes %lld -> %lld are too large: the weight's elements pass %lld",
                         who, (long long)in_features, (long long)out_features,
                         (long long)(INT64_MAX / 8));
    lg_linear *l = lgC_palloc(ctx, sizeof *l, who);
    if (!l)
        return NULL;
    char buf[256];
    double bound = 1.0 / sqrt((double)in_features);
    l->in_features = in_features;
    l->out_features = out_features;
    l->weight = lgN_param_uniform(ctx, lgN_name(ctx, buf, sizeof buf, name, "weight"), dt, 2,
                                  (int64_t[]){ out_features, in_features }, bound);
    if (!l->weight)
        return NULL;
    if (!o.no_bias) {
        l->bias = lgN_param_uniform(ctx, lgN_name(ctx, buf, sizeof buf, name, "bias"), dt, 1,
                                    &out_features, bound);
        if (!l->bias)
            return NULL;
    }
    return l;
}

lg_linear *lg_linear_new(lg_ctx *ctx, const char *name, int64_t in_features, int64_t out_features,
                         const lg_linear_opts *opts)
{
    if (!ctx)
        return NULL;
    lgN_build b = lgN_build_begin(ctx, "lg_linear_new");
    return lgN_build_end(ctx, b, linear_new_body(ctx, name, in_features, out_features, opts));
}

static lg_tensor *linear_forward_body(lg_ctx *ctx, const lg_linear *l, lg_tensor *x)
{
    if (!ctx)
        return NULL;
    if (!l)
        return lgC_error(ctx, LG_ERR_NULL, "lg_linear_forward: l is NULL");
    if (!x)
        return lgC_error(ctx, LG_ERR_NULL, "lg_linear_forward: x is NULL");
    if (lg_tensor_check(ctx, x) != LG_OK)
        return NULL;
    if (lg_tensor_dtype(x) != lg_tensor_dtype(l->weight))
        return lgC_error(ctx, LG_ERR_DTYPE,
                         "lg_linear_forward: x has dtype %s, but the layer's parameters are %s "
                         "(lg_linear_opts.dtype; lg_cast converts x)",
                         lgN_dtype_name(lg_tensor_dtype(x)),
                         lgN_dtype_name(lg_tensor_dtype(l->weight)));
    if (lg_tensor_ndim(x) < 1 || lg_tensor_shape(x)[lg_tensor_ndim(x) - 1] != l->in_features)
        return lgC_error(ctx, LG_ERR_SHAPE,
                         "lg_linear_forward: x's last dim is %lld, expected %lld",
                         (long long)lg_tensor_dim(x, -1), (long long)l->in_features);
    if (x && lg_tensor_ndim(x) == 1) { /* [in] -> [out] */
        lg_tensor *row = lg_reshape(ctx, x, 2, (int64_t[]){ 1, l->in_features });
        return lg_reshape(ctx, lg_matmul_bias(ctx, row, l->weight, l->bias, false, true), 1,
                          &l->out_features);
    }
    return lg_matmul_bias(ctx, x, l->weight, l->bias, false, true);
}

lg_tensor *lg_linear_forward(lg_ctx *ctx, const lg_linear *l, lg_tensor *x)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_linear_forward");
    return lgN_api_done(ctx, outer, linear_forward_body(ctx, l, x));
}

static const lg_embedding_opts embedding_defaults = { .defaults_tag = LG_OPTS_TAG,
                                                      .norm_type = 2.0 };
static const lgC_opts_desc embedding_desc = LGC_DESC0(lg_embedding_opts, embedding_defaults);
/* norm_type's default is not zero but matters only with max_norm: checked
 * by hand below, not for every struct. */
static const lgC_optfield embedding_norm_type[] = {
    LGC_FIELD(lg_embedding_opts, norm_type, "2"),
};

lg_embedding_opts lg_embedding_opts_default(void)
{
    return embedding_defaults;
}

static bool embedding_opts(lg_ctx *ctx, const char *who, const lg_embedding_opts *opts, int64_t num,
                           lg_embedding_opts *o)
{
    if (!lgC_opts(ctx, who, &embedding_desc, opts, o))
        return false;
    /* a hand-written struct (its tag left 0) with max_norm must write norm_type */
    if (o->defaults_tag == 0 && o->max_norm != 0 &&
        !lgC_opts_check_hand(ctx, who, &embedding_desc, opts, embedding_norm_type, 1))
        return false;
    if (!o->has_padding_idx && o->padding_idx != 0)
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: padding_idx = %lld is written but has_padding_idx is false (set it "
                        "to use the padding row)",
                        who, (long long)o->padding_idx);
    if (o->has_padding_idx && (o->padding_idx < -num || o->padding_idx >= num))
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: padding_idx = %lld is out of range for %lld embeddings (expected "
                        "-%lld..%lld)",
                        who, (long long)o->padding_idx, (long long)num, (long long)num,
                        (long long)num - 1);
    if (!(o->max_norm >= 0))
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: max_norm = %g, expected > 0 (or 0 for none, PyTorch's None)", who,
                        o->max_norm);
    if (o->max_norm != 0 && !(o->norm_type > 0))
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: norm_type = %g, expected > 0 (or INFINITY)", who,
                        o->norm_type);
    return true;
}

static lg_embedding *embedding_new_body(lg_ctx *ctx, const char *name, int64_t num, int64_t dim,
                                        const lg_embedding_opts *opts)
{
    static const char who[] = "lg_embedding_new";
    lg_embedding_opts o;
    if (!ctx)
        return NULL;
    int64_t n;
    if (num < 1 || dim < 1)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: num = %lld, dim = %lld, expected >= 1 each", who,
                         (long long)num, (long long)dim);
    if (!lgN_size_mul(num, dim, &n))
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: num = %lld, dim = %lld: the weight passes %lld elements", who,
                         (long long)num, (long long)dim, (long long)(INT64_MAX / 8));
    if (!embedding_opts(ctx, who, opts, num, &o) || !float_dtype(ctx, o.dtype, who))
        return NULL;
    lg_embedding *e = lgC_palloc(ctx, sizeof *e, who);
    if (!e)
        return NULL;
    char buf[256];
    e->num = num;
    e->dim = dim;
    e->padding_idx =
        !o.has_padding_idx ? -1 : (o.padding_idx < 0 ? o.padding_idx + num : o.padding_idx);
    e->max_norm = o.max_norm;
    e->norm_type = o.norm_type;
    e->scale_grad_by_freq = o.scale_grad_by_freq;
    const char *wname = lgN_name(ctx, buf, sizeof buf, name, "weight");
    e->weight = wname ? lg_param_new(ctx, wname, o.dtype, 2, (int64_t[]){ num, dim }) : NULL;
    if (!e->weight || lg_init_normal(ctx, e->weight, 0, 1) != LG_OK)
        return NULL;
    for (int64_t j = 0; e->padding_idx >= 0 && j < dim; j++)
        lgN_set(e->weight, e->padding_idx * dim + j, 0.0);
    return e;
}

lg_embedding *lg_embedding_new(lg_ctx *ctx, const char *name, int64_t num, int64_t dim,
                               const lg_embedding_opts *o)
{
    if (!ctx)
        return NULL;
    lgN_build b = lgN_build_begin(ctx, "lg_embedding_new");
    return lgN_build_end(ctx, b, embedding_new_body(ctx, name, num, dim, o));
}

/* PyTorch's embedding_renorm_: each distinct looked-up row whose norm
 * passes max_norm is scaled by max_norm / (norm + 1e-7), in place. */
static void embedding_renorm(const lg_embedding *e, const int64_t *id, int64_t n, bool *seen)
{
    lg_tensor *w = e->weight;
    double p = e->norm_type;
    for (int64_t i = 0; i < n; i++) {
        if (seen[id[i]])
            continue;
        seen[id[i]] = true;
        int64_t base = id[i] * e->dim;
        double acc = 0;
        for (int64_t j = 0; j < e->dim; j++) {
            double v = fabs(lgN_get(w, base + j));
            acc = isinf(p) ? fmax(acc, v) : acc + (p == 1 ? v : (p == 2 ? v * v : pow(v, p)));
        }
        double norm = isinf(p) ? acc : (p == 1 ? acc : (p == 2 ? sqrt(acc) : pow(acc, 1.0 / p)));
        if (!(norm > e->max_norm))
            continue;
        double scale = e->max_norm / (norm + 1e-7);
        for (int64_t j = 0; j < e->dim; j++)
            lgN_set(w, base + j, lgN_get(w, base + j) * scale);
    }
}

/* The gradient rules as a composite: rows' value with a gradient scaled
 * per lookup by s (1 / count, 0 for the padding row):
 * detach(rows) + (rows - detach(rows)) s has rows' bits (x - x = 0) and
 * gradient s (a non-finite entry: its value, no gradient); without scale_grad_by_freq a where()
 * drops the padding rows' gradient. [n, 1] factors broadcast over dim. */
static lg_tensor *embedding_grad_rule(lg_ctx *ctx, const lg_embedding *e, lg_tensor *rows,
                                      const int64_t *id, int64_t n, int64_t *count)
{
    lg_dtype dt = lg_tensor_dtype(e->weight);
    lg_tensor *f = lg_zeros(ctx, dt, 2, (int64_t[]){ n, 1 });
    lg_tensor *det = lg_detach(ctx, rows);
    if (!f || !det)
        return NULL;
    if (e->scale_grad_by_freq) {
        for (int64_t i = 0; i < n; i++)
            count[id[i]]++;
        for (int64_t i = 0; i < n; i++)
            lgN_set(f, i, id[i] == e->padding_idx ? 0.0 : 1.0 / (double)count[id[i]]);
        /* a non-finite entry makes rows - det NaN: it keeps its value (det) and gets
         * no gradient (eq(d, d) is 0 only at NaN) */
        lg_tensor *d = lg_sub(ctx, rows, det);
        return lg_where(ctx, lg_eq(ctx, d, d), lg_add(ctx, det, lg_mul(ctx, d, f)), det);
    }
    for (int64_t i = 0; i < n; i++)
        lgN_set(f, i, id[i] == e->padding_idx ? 0.0 : 1.0);
    return lg_where(ctx, f, rows, det);
}

static lg_tensor *embedding_forward_body(lg_ctx *ctx, const lg_embedding *e, lg_tensor *indices)
{
    static const char who[] = "lg_embedding_forward";
    if (!ctx)
        return NULL;
    if (!e)
        return lgC_error(ctx, LG_ERR_NULL, "%s: e is NULL", who);
    if (!indices)
        return lgC_error(ctx, LG_ERR_NULL, "%s: indices is NULL", who);
    int nd = lg_tensor_ndim(indices);
    if (lg_tensor_check(ctx, indices) != LG_OK)
        return NULL;
    if (nd >= LG_MAX_DIMS)
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: indices has too many dims", who);
    if (lg_tensor_dtype(indices) != LG_I64)
        return lgC_error(ctx, LG_ERR_DTYPE, "%s: indices has dtype %s, expected int64", who,
                         lgN_dtype_name(lg_tensor_dtype(indices)));
    int64_t n = lg_tensor_numel(indices), shape[LG_MAX_DIMS];
    const int64_t *id = lg_tensor_data(indices);
    for (int64_t i = 0; i < n; i++)
        if (id[i] < 0 || id[i] >= e->num)
            return lgC_error(ctx, LG_ERR_INDEX,
                             "%s: indices[%lld] = %lld is out of range for %lld embeddings "
                             "(expected 0..%lld)",
                             who, (long long)i, (long long)id[i], (long long)e->num,
                             (long long)e->num - 1);
    bool special = e->padding_idx >= 0 || e->scale_grad_by_freq;
    int64_t *count = NULL;
    if (e->scale_grad_by_freq) { /* per-row counts */
        count = lgC_salloc(ctx, (size_t)e->num * sizeof *count, who);
        if (!count)
            return NULL;
        memset(count, 0, (size_t)e->num * sizeof *count);
    }
    if (e->max_norm > 0) {
        bool *seen = lgC_salloc(ctx, (size_t)e->num * sizeof *seen, who);
        if (!seen)
            return NULL;
        memset(seen, 0, (size_t)e->num * sizeof *seen);
        embedding_renorm(e, id, n, seen);
    }
    memcpy(shape, lg_tensor_shape(indices), (size_t)nd * sizeof *shape);
    shape[nd] = e->dim;
    lg_tensor *flat = lg_reshape(ctx, indices, 1, &n);
    lg_tensor *rows = lg_index_select(ctx, e->weight, 0, flat);
    if (rows && special)
        rows = embedding_grad_rule(ctx, e, rows, id, n, count);
    return lg_reshape(ctx, rows, nd + 1, shape);
}

lg_tensor *lg_embedding_forward(lg_ctx *ctx, const lg_embedding *e, lg_tensor *indices)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_embedding_forward");
    return lgN_api_done(ctx, outer, embedding_forward_body(ctx, e, indices));
}

static lg_tensor *dropout_body(lg_ctx *ctx, lg_tensor *x, double p)
{
    static const char who[] = "lg_dropout";
    if (!ctx)
        return NULL;
    if (!x)
        return lgC_error(ctx, LG_ERR_NULL, "%s: x is NULL", who);
    if (lg_tensor_check(ctx, x) != LG_OK)
        return NULL;
    if (!(p >= 0 && p <= 1))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: p = %g, expected 0 <= p <= 1", who, p);
    if (ctx->eval_mode || p == 0)
        return x;
    lg_tensor *mask = lg_zeros(ctx, lg_tensor_dtype(x), lg_tensor_ndim(x), lg_tensor_shape(x));
    if (!mask)
        return NULL;
    double keep = p == 1 ? 0.0 : 1.0 / (1.0 - p);
    for (int64_t i = 0; i < lg_tensor_numel(mask); i++)
        lgN_set(mask, i, lg_rand_uniform(ctx) < p ? 0.0 : keep);
    return lg_mul(ctx, x, mask);
}

lg_tensor *lg_dropout(lg_ctx *ctx, lg_tensor *x, double p)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_dropout");
    return lgN_api_done(ctx, outer, dropout_body(ctx, x, p));
}

lg_tensor *lg_activation_forward(lg_ctx *ctx, lg_activation a, lg_tensor *x)
{
    if (!ctx || !x)
        return NULL;
    switch (a) {
    case LG_ACT_RELU: return lg_relu(ctx, x);
    case LG_ACT_TANH: return lg_tanh(ctx, x);
    case LG_ACT_SIGMOID: return lg_sigmoid(ctx, x);
    case LG_ACT_GELU: return lg_gelu(ctx, x, LG_GELU_NONE);
    case LG_ACT_GELU_TANH: return lg_gelu(ctx, x, LG_GELU_TANH);
    case LG_ACT_SILU: return lg_silu(ctx, x);
    case LG_ACT_MISH: return lg_mish(ctx, x);
    case LG_ACT_LEAKY_RELU: return lg_leaky_relu(ctx, x, 0.01);
    case LG_ACT_ELU: return lg_elu(ctx, x, 1.0);
    case LG_ACT_CELU: return lg_celu(ctx, x, 1.0);
    case LG_ACT_SELU: return lg_selu(ctx, x);
    case LG_ACT_SOFTPLUS: return lg_softplus(ctx, x, 1.0, 20.0);
    case LG_ACT_HARDTANH: return lg_hardtanh(ctx, x, -1.0, 1.0);
    case LG_ACT_RELU6: return lg_relu6(ctx, x);
    case LG_ACT_HARDSWISH: return lg_hardswish(ctx, x);
    case LG_ACT_HARDSIGMOID: return lg_hardsigmoid(ctx, x);
    case LG_ACT_SOFTSIGN: return lg_softsign(ctx, x);
    case LG_ACT_LOG_SIGMOID: return lg_log_sigmoid(ctx, x);
    case LG_ACT_IDENTITY: return x;
    }
    return lgC_error(ctx, LG_ERR_VALUE, "lg_activation_forward: a = %d is not an lg_activation",
                     (int)a);
}

int lg_params_with_prefix(lg_ctx *ctx, const char *prefix, lg_tensor **out, int max)
{
    static const char who[] = "lg_params_with_prefix";
    if (!ctx)
        return -1;
    if (lgC_failed(ctx, who))
        return -1;
    if (!prefix)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: prefix is NULL", who), -1;
    if (!*prefix)
        return lgC_errorf(ctx, LG_ERR_VALUE,
                          "%s: prefix is empty (lg_param_count / lg_param_at list them all)", who),
               -1;
    if (max < 0)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: max = %d, expected >= 0", who, max), -1;
    if (!out && max > 0)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: out is NULL but max = %d", who, max), -1;
    size_t len = strlen(prefix);
    int count = 0;
    for (int i = 0; i < lg_param_count(ctx); i++) {
        lg_tensor *p = lg_param_at(ctx, i);
        const char *nm = lg_tensor_name(p);
        if (!nm || strncmp(nm, prefix, len) || (nm[len] != '\0' && nm[len] != '.'))
            continue;
        if (count < max)
            out[count] = p;
        count++;
    }
    return count;
}

static const lg_mlp_opts mlp_defaults = { .defaults_tag = LG_OPTS_TAG };
static const lgC_opts_desc mlp_desc = LGC_DESC0(lg_mlp_opts, mlp_defaults);

lg_mlp_opts lg_mlp_opts_default(void)
{
    return mlp_defaults;
}

static lg_mlp *mlp_new_body(lg_ctx *ctx, const char *name, int n, const int64_t *sizes,
                            const lg_mlp_opts *opts)
{
    static const char who[] = "lg_mlp_new";
    lg_mlp_opts o;
    if (!ctx || !lgC_opts(ctx, who, &mlp_desc, opts, &o))
        return NULL;
    if (n < 2 || !sizes)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: n = %d sizes, expected at least 2", who, n);
    if (!(o.dropout >= 0 && o.dropout <= 1))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: dropout = %g, expected in [0, 1]", who, o.dropout);
    if ((unsigned)o.activation > LG_ACT_IDENTITY)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: activation %d is not an lg_activation", who,
                         (int)o.activation);
    for (int k = 0; k < n - 1; k++) { /* every layer's sizes before the first is made */
        int64_t w;
        if (sizes[k] < 1 || sizes[k + 1] < 1 || !lgN_size_mul(sizes[k], sizes[k + 1], &w))
            return lgC_error(ctx, LG_ERR_VALUE,
                             "%s: sizes[%d] = %lld and sizes[%d] = %lld, expected >= 1 each and a "
                             "weight of at most %lld elements",
                             who, k, (long long)sizes[k], k + 1, (long long)sizes[k + 1],
                             (long long)(INT64_MAX / 8));
    }
    lg_mlp *m = lgC_palloc(ctx, sizeof *m, who);
    lg_linear **layers = m ? lgC_palloc(ctx, (size_t)(n - 1) * sizeof *layers, who) : NULL;
    if (!layers)
        return NULL;
    m->nlayers = n - 1;
    m->layers = layers;
    m->activation = o.activation;
    m->dropout = o.dropout;
    for (int k = 0; k < n - 1; k++) {
        char buf[256], idx[16];
        snprintf(idx, sizeof idx, "%d", k);
        const char *lname = lgN_name(ctx, buf, sizeof buf, name, idx);
        layers[k] = lname
                        ? lg_linear_new(ctx, lname, sizes[k], sizes[k + 1],
                                        &(lg_linear_opts){ .dtype = o.dtype, .no_bias = o.no_bias })
                        : NULL;
        if (!layers[k])
            return NULL;
    }
    return m;
}

lg_mlp *lg_mlp_new(lg_ctx *ctx, const char *name, int n, const int64_t *sizes,
                   const lg_mlp_opts *opts)
{
    if (!ctx)
        return NULL;
    lgN_build b = lgN_build_begin(ctx, "lg_mlp_new");
    return lgN_build_end(ctx, b, mlp_new_body(ctx, name, n, sizes, opts));
}

static lg_tensor *mlp_forward_body(lg_ctx *ctx, const lg_mlp *m, lg_tensor *x)
{
    if (!ctx)
        return NULL;
    if (!m)
        return lgC_error(ctx, LG_ERR_NULL, "lg_mlp_forward: m is NULL");
    for (int k = 0; k < m->nlayers; k++) {
        x = lg_linear_forward(ctx, m->layers[k], x);
        if (k == m->nlayers - 1)
            break;
        x = lg_activation_forward(ctx, m->activation, x);
        if (m->dropout > 0)
            x = lg_dropout(ctx, x, m->dropout);
    }
    return x;
}

lg_tensor *lg_mlp_forward(lg_ctx *ctx, const lg_mlp *m, lg_tensor *x)
{
    if (!ctx)
        return NULL;
    const char *outer = lgC_api_enter(ctx, "lg_mlp_forward");
    return lgN_api_done(ctx, outer, mlp_forward_body(ctx, m, x));
}
