/* rnn.c: multi-layer, optionally bidirectional RNN (tanh/relu), GRU and
 * LSTM with PyTorch's gate equations and weight layout, built from
 * primitives on the tape (matmuls, slices, sigmoid, tanh, where; a GRU
 * layer's whole recurrence is one primitive, lg_gru_sequence in
 * autograd/gru_cell.c).
 *
 *   RNN:  h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)
 *   GRU:  r = s(x_r + h_r), z = s(x_z + h_z), n = tanh(x_n + r * h_n),
 *         h' = (1 - z) n + z h          (x_* = x W_i*^T + b_i*, h_* = h W_h*^T + b_h*)
 *   LSTM: i, f, o = s(x_* + h_*), g = tanh(x_g + h_g),
 *         c' = f c + i g,  h' = o tanh(c')   (with proj_size: h' = (o tanh(c')) W_hr^T)
 * With lengths, step t of sample b updates the state only when
 * t < lengths[b] (where(), so padded inputs can hold anything); outputs
 * there are 0 and receive no gradient; the reverse direction meets each
 * sample's padding first and so starts from its last valid step.
 * batch_first and unbatched inputs are transposes and reshapes around the
 * [T, N, F] core; dropout between layers is lg_dropout on the layer's output.
 */
#include "nn.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

struct lg_rnn {
    lg_rnn_kind kind;
    int64_t input_size, hidden, proj; /* proj: h's size, hidden unless proj_size */
    int layers, dirs, gates;
    lg_dtype dt;
    bool batch_first;
    double dropout;
    lg_tensor **w_ih, **w_hh, **b_ih, **b_hh, **w_hr; /* [layers * dirs]; w_hr NULLs without proj */
};

static const char *const kind_name[] = { "RNN (tanh)", "RNN (relu)", "GRU", "LSTM" };

static const lg_rnn_opts rnn_defaults = { .defaults_tag = LG_OPTS_TAG, .num_layers = 1 };
static const lgC_optfield rnn_fields[] = {
    LGC_FIELD(lg_rnn_opts, num_layers, "1"),
};
static const lgC_opts_desc rnn_desc = LGC_DESC(lg_rnn_opts, rnn_defaults, rnn_fields);

lg_rnn_opts lg_rnn_opts_default(void)
{
    return rnn_defaults;
}

static lg_rnn *rnn_new_body(lg_ctx *ctx, const char *name, lg_rnn_kind kind, int64_t input_size,
                            int64_t hidden_size, const lg_rnn_opts *opts)
{
    static const char who[] = "lg_rnn_new";
    lg_rnn_opts ov;
    if (!ctx || !lgC_opts(ctx, who, &rnn_desc, opts, &ov))
        return NULL;
    const lg_rnn_opts *o = &ov;
    lg_dtype dt = o->dtype;
    int L = o->num_layers, D = o->bidirectional ? 2 : 1;
    if ((unsigned)kind > LG_LSTM || (dt != LG_F32 && dt != LG_F64) || L < 1 || L > 64 ||
        input_size < 1 || hidden_size < 1)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: need a kind, a float dtype, 1..64 layers and sizes >= 1 (got input "
                         "%lld, hidden %lld, %d layers)",
                         who, (long long)input_size, (long long)hidden_size, L);
    if (!(o->dropout >= 0 && o->dropout <= 1))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: dropout = %g, expected in [0, 1]", who,
                         o->dropout);
    if (o->proj_size != 0 && kind != LG_LSTM)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: proj_size = %lld, but only an LSTM has a projection (a %s: "
                         "proj_size must be 0)",
                         who, (long long)o->proj_size, kind_name[kind]);
    if (o->proj_size < 0 || o->proj_size >= hidden_size)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: proj_size = %lld, expected 0 (none) or in [1, hidden_size = %lld)",
                         who, (long long)o->proj_size, (long long)hidden_size);
    int64_t P = o->proj_size ? o->proj_size : hidden_size;
    int G = kind == LG_GRU ? 3 : (kind == LG_LSTM ? 4 : 1);
    int64_t GH, DH, n_hh, n_ih; /* gates x hidden; a later layer's input; weight sizes */
    if (!lgN_size_mul(G, hidden_size, &GH) || !lgN_size_mul(D, P, &DH) ||
        !lgN_size_mul(GH, hidden_size, &n_hh) || (L > 1 && !lgN_size_mul(GH, DH, &n_ih)))
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: hidden_size = %lld is too large: weights of %d x hidden_size x "
                         "%shidden_size elements pass %lld",
                         who, (long long)hidden_size, G, L > 1 && D > 1 ? "2 x " : "",
                         (long long)(INT64_MAX / 8));
    if (!lgN_size_mul(GH, input_size, &n_ih))
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: input_size = %lld is too large for hidden_size = %lld: weight_ih_l0 "
                         "of %lld x %lld elements passes %lld",
                         who, (long long)input_size, (long long)hidden_size, (long long)GH,
                         (long long)input_size, (long long)(INT64_MAX / 8));
    lg_rnn *r = lgC_palloc(ctx, sizeof *r, who);
    size_t n = (size_t)(L * D) * sizeof(lg_tensor *);
    if (!r || !(r->w_ih = lgC_palloc(ctx, n, who)) || !(r->w_hh = lgC_palloc(ctx, n, who)) ||
        !(r->b_ih = lgC_palloc(ctx, n, who)) || !(r->b_hh = lgC_palloc(ctx, n, who)) ||
        !(r->w_hr = lgC_palloc(ctx, n, who)))
        return NULL;
    r->kind = kind;
    r->input_size = input_size;
    r->hidden = hidden_size;
    r->proj = P;
    r->batch_first = o->batch_first;
    r->dropout = o->dropout;
    r->layers = L;
    r->dirs = D;
    r->gates = G;
    r->dt = dt;
    double bound = 1.0 / sqrt((double)hidden_size);
    for (int l = 0; l < L; l++)
        for (int d = 0; d < D; d++) {
            int k = l * D + d;
            int64_t in = l == 0 ? input_size : D * P;
            char leaf[64], buf[256];
            const char *sfx = d ? "_reverse" : "";
            snprintf(leaf, sizeof leaf, "weight_ih_l%d%s", l, sfx);
            const char *nm = lgN_name(ctx, buf, sizeof buf, name, leaf);
            if (!nm ||
                !(r->w_ih[k] = lgN_param_uniform(ctx, nm, dt, 2, (int64_t[]){ GH, in }, bound)))
                return NULL;
            snprintf(leaf, sizeof leaf, "weight_hh_l%d%s", l, sfx);
            nm = lgN_name(ctx, buf, sizeof buf, name, leaf);
            if (!nm ||
                !(r->w_hh[k] = lgN_param_uniform(ctx, nm, dt, 2, (int64_t[]){ GH, P }, bound)))
                return NULL;
            if (!o->no_bias) {
                snprintf(leaf, sizeof leaf, "bias_ih_l%d%s", l, sfx);
                nm = lgN_name(ctx, buf, sizeof buf, name, leaf);
                if (!nm || !(r->b_ih[k] = lgN_param_uniform(ctx, nm, dt, 1, &GH, bound)))
                    return NULL;
                snprintf(leaf, sizeof leaf, "bias_hh_l%d%s", l, sfx);
                nm = lgN_name(ctx, buf, sizeof buf, name, leaf);
                if (!nm || !(r->b_hh[k] = lgN_param_uniform(ctx, nm, dt, 1, &GH, bound)))
                    return NULL;
            }
            if (!o->proj_size)
                continue;
            snprintf(leaf, sizeof leaf, "weight_hr_l%d%s", l,
                     sfx); /* after the biases, as PyTorch */
            nm = lgN_name(ctx, buf, sizeof buf, name, leaf);
            if (!nm || !(r->w_hr[k] = lgN_param_uniform(ctx, nm, dt, 2,
                                                        (int64_t[]){ P, hidden_size }, bound)))
                return NULL;
        }
    return r;
}

lg_rnn *lg_rnn_new(lg_ctx *ctx, const char *name, lg_rnn_kind kind, int64_t input_size,
                   int64_t hidden_size, const lg_rnn_opts *opts)
{
    if (!ctx)
        return NULL;
    lgN_build b = lgN_build_begin(ctx, "lg_rnn_new");
    return lgN_build_end(ctx, b, rnn_new_body(ctx, name, kind, input_size, hidden_size, opts));
}

/* Gate k of a [N, G H] tensor. */
static lg_tensor *gate(lg_ctx *ctx, lg_tensor *g, int k, int64_t H)
{
    return lg_narrow(ctx, g, 1, k * H, H);
}

/* One cell step of an RNN or LSTM: returns h' (and *c for LSTM). xt, hh:
 * [N, G H], hh holding b_hh already. (The GRU runs as lg_gru_sequence.) */
static lg_tensor *cell(lg_ctx *ctx, const lg_rnn *r, lg_tensor *xt, lg_tensor *hh, lg_tensor **c,
                       lg_tensor *w_hr)
{
    int64_t H = r->hidden;
    switch (r->kind) {
    case LG_RNN_TANH: return lg_tanh(ctx, lg_add(ctx, xt, hh));
    case LG_RNN_RELU: return lg_relu(ctx, lg_add(ctx, xt, hh));
    default: {
        lg_tensor *g = lg_add(ctx, xt, hh);
        lg_tensor *i = lg_sigmoid(ctx, gate(ctx, g, 0, H));
        lg_tensor *f = lg_sigmoid(ctx, gate(ctx, g, 1, H));
        lg_tensor *gg = lg_tanh(ctx, gate(ctx, g, 2, H));
        lg_tensor *o = lg_sigmoid(ctx, gate(ctx, g, 3, H));
        *c = lg_add(ctx, lg_mul(ctx, f, *c), lg_mul(ctx, i, gg));
        lg_tensor *h = lg_mul(ctx, o, lg_tanh(ctx, *c));
        return w_hr ? lg_matmul_bias(ctx, h, w_hr, NULL, false, true) : h;
    }
    }
}

/* State k of h0/c0 ([L D, N, H]) as [N, H], or zeros. */
static lg_tensor *initial(lg_ctx *ctx, lg_tensor *s0, int k, int64_t N, int64_t H, lg_dtype dt)
{
    if (!s0)
        return lg_zeros(ctx, dt, 2, (int64_t[]){ N, H });
    return lg_reshape(ctx, lg_narrow(ctx, s0, 0, k, 1), 2, (int64_t[]){ N, H });
}

/* s: NULL, or [LD, N, H] ([LD, H] when unbatched), returned as [LD, N, H]. */
static bool check_state(lg_ctx *ctx, lg_tensor **s, const char *arg, bool unbatched, int64_t LD,
                        int64_t N, int64_t H, lg_dtype dt)
{
    if (!*s)
        return true;
    if (lg_tensor_check(ctx, *s) != LG_OK)
        return false;
    const int64_t *sh = lg_tensor_shape(*s);
    bool ok = lg_tensor_dtype(*s) == dt &&
              (unbatched ? lg_tensor_ndim(*s) == 2 && sh[0] == LD && sh[1] == H
                         : lg_tensor_ndim(*s) == 3 && sh[0] == LD && sh[1] == N && sh[2] == H);
    if (!ok) {
        if (unbatched)
            lgC_error(ctx, LG_ERR_SHAPE,
                      "lg_rnn_forward: %s must be [%lld, %lld] of the network's dtype (x is "
                      "unbatched)",
                      arg, (long long)LD, (long long)H);
        else
            lgC_error(ctx, LG_ERR_SHAPE,
                      "lg_rnn_forward: %s must be [%lld, %lld, %lld] of the network's dtype", arg,
                      (long long)LD, (long long)N, (long long)H);
        return false;
    }
    if (unbatched)
        *s = lg_reshape(ctx, *s, 3, (int64_t[]){ LD, 1, H });
    return *s != NULL;
}

/* The valid-step masks of lengths: *mask [T, N, 1] and (for the
 * step-by-step kinds) masks[t] [N, 1], 1 where step t is valid. */
static lg_status length_masks(lg_ctx *ctx, const lg_rnn *r, lg_tensor *lengths, int64_t T,
                              int64_t N, lg_tensor **mask, lg_tensor ***masks)
{
    static const char who[] = "lg_rnn_forward";
    if (lg_tensor_check(ctx, lengths) != LG_OK)
        return ctx->status;
    if (lg_tensor_dtype(lengths) != LG_I64 || lg_tensor_numel(lengths) != N ||
        lg_tensor_ndim(lengths) != 1)
        return lgC_errorf(ctx, LG_ERR_SHAPE, "%s: lengths must be int64 [%lld]", who, (long long)N);
    const int64_t *lv = lg_tensor_data(lengths);
    for (int64_t b = 0; b < N; b++)
        if (lv[b] < 1 || lv[b] > T)
            return lgC_errorf(ctx, LG_ERR_VALUE, "%s: lengths[%lld] = %lld, expected in [1, %lld]",
                              who, (long long)b, (long long)lv[b], (long long)T);
    lg_tensor *m = *mask = lg_zeros(ctx, r->dt, 3, (int64_t[]){ T, N, 1 });
    if (!m)
        return ctx->status;
    for (int64_t t = 0; t < T; t++)
        for (int64_t b = 0; b < N; b++)
            lgN_set(m, t * N + b, t < lv[b] ? 1.0 : 0.0);
    if (r->kind == LG_GRU)
        return LG_OK;
    lg_tensor **ms = *masks = lgC_salloc(ctx, (size_t)T * sizeof *ms, who);
    if (!ms)
        return ctx->status;
    for (int64_t t = 0; t < T; t++)
        ms[t] = lg_reshape(ctx, lg_narrow(ctx, m, 0, t, 1), 2, (int64_t[]){ N, 1 });
    return LG_OK;
}

/* One layer and direction k over input [T, N, in]: returns its outputs
 * [T, N, P] and sets *hn (and *cn) to the final states. */
static lg_tensor *run_direction(lg_ctx *ctx, const lg_rnn *r, int k, bool reverse, lg_tensor *input,
                                lg_tensor *lengths, lg_tensor *mask, lg_tensor **masks,
                                lg_tensor *h0, lg_tensor *c0, lg_tensor **steps, lg_tensor **hn,
                                lg_tensor **cn)
{
    const int64_t *is = lg_tensor_shape(input);
    int64_t T = is[0], N = is[1], in = is[2], H = r->hidden, P = r->proj;
    lg_tensor *zero = lg_scalar(ctx, r->dt, 0);
    lg_tensor *flat = lg_reshape(ctx, input, 2, (int64_t[]){ T * N, in });
    lg_tensor *xw = lg_matmul_bias(ctx, flat, r->w_ih[k], r->b_ih[k], false, true);
    xw = lg_reshape(ctx, xw, 3, (int64_t[]){ T, N, r->gates * H });
    if (r->kind == LG_GRU) { /* the whole recurrence: autograd/gru_cell.c */
        lg_tensor *hs =
            lg_gru_sequence(ctx, xw, r->w_hh[k], r->b_hh[k],
                            h0 ? initial(ctx, h0, k, N, H, r->dt) : NULL, lengths, reverse);
        *hn =
            lg_reshape(ctx, lg_narrow(ctx, hs, 0, reverse ? 0 : T - 1, 1), 2, (int64_t[]){ N, H });
        *cn = NULL;
        return mask ? lg_where(ctx, mask, hs, zero) : hs;
    }
    lg_tensor *h = initial(ctx, h0, k, N, P, r->dt);
    lg_tensor *c = r->kind == LG_LSTM ? initial(ctx, c0, k, N, H, r->dt) : NULL;
    for (int64_t s = 0; s < T; s++) {
        int64_t t = reverse ? T - 1 - s : s;
        lg_tensor *xt =
            lg_reshape(ctx, lg_narrow(ctx, xw, 0, t, 1), 2, (int64_t[]){ N, r->gates * H });
        lg_tensor *hh = lg_matmul_bias(ctx, h, r->w_hh[k], r->b_hh[k], false, true);
        lg_tensor *c_new = c;
        lg_tensor *h_new = cell(ctx, r, xt, hh, &c_new, r->w_hr[k]);
        if (masks) {
            h = lg_where(ctx, masks[t], h_new, h);
            if (c)
                c = lg_where(ctx, masks[t], c_new, c);
            steps[t] = lg_where(ctx, masks[t], h_new, zero);
        } else {
            h = h_new;
            c = c_new;
            steps[t] = h_new;
        }
    }
    *hn = h;
    *cn = c;
    return lg_stack(ctx, (int)T, steps, 0); /* [T, N, P] */
}

static lg_status rnn_forward_body(lg_ctx *ctx, const lg_rnn *r, lg_tensor *x, lg_tensor *lengths,
                                  lg_tensor *h0, lg_tensor *c0, lg_rnn_result *out)
{
    static const char who[] = "lg_rnn_forward";
    if (!ctx)
        return LG_ERR_NULL;
    if (!r || !x || !out)
        return lgC_errorf(ctx, LG_ERR_NULL, "%s: %s is NULL", who, !r ? "r" : (!x ? "x" : "out"));
    memset(out, 0, sizeof *out);
    if (lg_tensor_check(ctx, x) != LG_OK)
        return ctx->status;
    const int64_t *xs = lg_tensor_shape(x);
    int xnd = lg_tensor_ndim(x);
    bool unbatched = xnd == 2;
    if ((xnd != 2 && xnd != 3) || xs[xnd - 1] != r->input_size || lg_tensor_dtype(x) != r->dt)
        return lgC_errorf(ctx, LG_ERR_SHAPE,
                          "%s: x must be %s, %lld] (or unbatched [T, %lld]) of the network's "
                          "dtype (a %s)",
                          who, r->batch_first ? "[N, T" : "[T, N", (long long)r->input_size,
                          (long long)r->input_size, kind_name[r->kind]);
    int64_t T = unbatched || !r->batch_first ? xs[0] : xs[1];
    int64_t N = unbatched ? 1 : (r->batch_first ? xs[0] : xs[1]);
    int64_t H = r->hidden, P = r->proj, LD = r->layers * r->dirs;
    if (T < 1 || N < 1 || T > INT_MAX) /* the steps are stacked as an int count */
        return lgC_errorf(ctx, LG_ERR_SHAPE,
                          "%s: x has T = %lld, N = %lld, expected >= 1 (T <= %d)", who,
                          (long long)T, (long long)N, INT_MAX);
    if (lengths && unbatched)
        return lgC_errorf(ctx, LG_ERR_SHAPE,
                          "%s: lengths needs a batched x ([T, N, F] or batch_first [N, T, F]); "
                          "x is unbatched [T, F]",
                          who);
    if (!check_state(ctx, &h0, "h0", unbatched, LD, N, P, r->dt) ||
        !check_state(ctx, &c0, "c0", unbatched, LD, N, H, r->dt))
        return ctx->status;
    if (c0 && r->kind != LG_LSTM)
        return lgC_errorf(ctx, LG_ERR_VALUE, "%s: c0 is given, but a %s has no cell state", who,
                          kind_name[r->kind]);
    lg_tensor **masks = NULL, *mask = NULL;
    if (lengths && length_masks(ctx, r, lengths, T, N, &mask, &masks) != LG_OK)
        return ctx->status;
    lg_tensor **steps = lgC_salloc(ctx, (size_t)T * sizeof *steps, who);
    lg_tensor **hn = lgC_salloc(ctx, (size_t)LD * sizeof *hn, who);
    lg_tensor **cn = lgC_salloc(ctx, (size_t)LD * sizeof *cn, who);
    if (!steps || !hn || !cn)
        return ctx->status;
    lg_tensor *input = unbatched        ? lg_reshape(ctx, x, 3, (int64_t[]){ T, 1, r->input_size })
                       : r->batch_first ? lg_transpose(ctx, x, 0, 1)
                                        : x;
    for (int l = 0; l < r->layers && input; l++) {
        lg_tensor *dir_out[2];
        for (int d = 0; d < r->dirs; d++) {
            int k = l * r->dirs + d;
            dir_out[d] = run_direction(ctx, r, k, d == 1, input, lengths, mask, masks, h0, c0,
                                       steps, &hn[k], &cn[k]);
        }
        input = r->dirs == 2 ? lg_concat(ctx, 2, dir_out, 2) : dir_out[0];
        if (l < r->layers - 1 && r->dropout > 0) /* lg_dropout: identity in evaluation mode */
            input = lg_dropout(ctx, input, r->dropout);
    }
    if (!input)
        return ctx->status;
    int64_t DP = r->dirs * P;
    out->output = unbatched        ? lg_reshape(ctx, input, 2, (int64_t[]){ T, DP })
                  : r->batch_first ? lg_transpose(ctx, input, 0, 1)
                                   : input;
    out->h_n = lg_stack(ctx, (int)LD, hn, 0);
    if (unbatched)
        out->h_n = lg_reshape(ctx, out->h_n, 2, (int64_t[]){ LD, P });
    if (r->kind == LG_LSTM) {
        out->c_n = lg_stack(ctx, (int)LD, cn, 0);
        if (unbatched)
            out->c_n = lg_reshape(ctx, out->c_n, 2, (int64_t[]){ LD, H });
    }
    if (!out->output || !out->h_n || (r->kind == LG_LSTM && !out->c_n)) {
        memset(out, 0, sizeof *out);
        return ctx->status != LG_OK ? ctx->status : LG_ERR_OOM;
    }
    return LG_OK;
}

lg_status lg_rnn_forward(lg_ctx *ctx, const lg_rnn *r, lg_tensor *x, lg_tensor *lengths,
                         lg_tensor *h0, lg_tensor *c0, lg_rnn_result *out)
{
    if (!ctx)
        return LG_ERR_NULL;
    const char *outer = lgC_api_enter(ctx, "lg_rnn_forward");
    lg_status res = rnn_forward_body(ctx, r, x, lengths, h0, c0, out);
    lgC_api_leave(ctx, outer);
    return res;
}
