/* conv.c: convolution and transposed convolution, 1-d and 2-d.
 *
 *   conv:       y[n, o] = b[o] + sum_{c in group(o), ki, kj} W[o, c, ki, kj]
 *                                  x[n, c, s_h i - p_h + d_h ki, s_w j - p_w + d_w kj]
 *   transposed: its adjoint in x (the data gradient of a conv whose input
 *               has the transposed output's shape), plus a bias
 *
 * Shapes: x [N, Cin, H, W], W [Cout, Cin / G, kH, kW] (transposed:
 * [Cin, Cout / G, kH, kW]), b [Cout]; 1-d ops are the 2-d ones with H = 1
 * and unbatched inputs N = 1, both on the same data.
 *
 * Both ops are written on one geometry, a convolution from a "big" tensor
 * [N, cin, h, w] to a "small" one [N, cout, oh, ow] (for conv: x to y; for
 * the transposed op: y to x), with three kernels:
 *   APPLY    small = W (x) big (+ bias)       conv forward; transposed dx
 *   ADJOINT  big = col2im(W^T small)          transposed forward; conv dx
 *   WGRAD    dW += small im2col(big)^T        both ops' weight gradient
 * Each sample's group goes through a column buffer (im2col, one BLAS
 * call, col2im); a 1x1 kernel with stride 1 and no padding skips it. The
 * batch is cut into lanes fixed by the shape (at most 8, fewer if their
 * column buffers would pass 64 MiB), each with its own buffer, run over
 * the ctx's threads: memory is bounded whatever N is, and since WGRAD
 * sums each lane's part and then the parts in lane order, every result
 * has the same bits at any thread count.
 *
 * lg_grad's taped backwards run the same three kernels as recorded ops on
 * the op's geometry (conv_form): APPLY as conv, ADJOINT as conv_transpose
 * and WGRAD as the internal conv_wgrad. The three are one trilinear form,
 * so each one's gradients are the other two and the gradients close to any
 * order.
 */
#include "autograd.h"

#include <limits.h>
#include <string.h>

typedef struct conv_geom {
    int64_t n;                              /* samples */
    int64_t cin, h, w;                      /* big */
    int64_t cout, oh, ow;                   /* small */
    int64_t kh, kw, sh, sw, ph, pw, dh, dw; /* ph, pw: padding before (top, left) */
    int64_t groups, cin_g, cout_g, ck;      /* ck = cin_g kh kw */
    int spatial;                            /* 1 or 2: which public op */
    bool transposed;
} conv_geom;

enum { CONV_APPLY, CONV_ADJOINT, CONV_WGRAD };

struct conv_args {
    const conv_geom *g;
    lg_dtype dt;
    int mode;
    bool pointwise;
    int64_t lanes;
    const void *w, *bias;
    void *big, *small, *cols, *parts;
};
struct chan_args {
    const void *x;
    void *out;
    int64_t n, ch, plane;
    bool accumulate;
};
struct parts_args {
    const void *parts;
    void *dst;
    int64_t lanes, size;
    bool accumulate;
};

#define LGC_TEMPLATE "../autograd/conv_kernel.h"
#include "../core/instantiate.h"

#define CONV_BUFFER_MAX ((int64_t)64 << 20) /* bytes of column buffers at once */

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

static const lg_conv_opts conv_defaults = {
    .defaults_tag = LG_OPTS_TAG, .stride = 1, .dilation = 1, .groups = 1
};
static const lgC_optfield conv_fields[] = {
    LGC_FIELD(lg_conv_opts, stride, "1"),
    LGC_FIELD(lg_conv_opts, dilation, "1"),
    LGC_FIELD(lg_conv_opts, groups, "1"),
};
static const lgC_opts_desc conv_desc = LGC_DESC(lg_conv_opts, conv_defaults, conv_fields);

lg_conv_opts lg_conv_opts_default(void)
{
    return conv_defaults;
}

static bool pair_set(const int64_t p[2])
{
    return p[0] != 0 || p[1] != 0;
}

bool lgA_spatial_dims(lg_ctx *ctx, const char *who, const char *name, int64_t one,
                      const int64_t pair[2], int64_t dflt, int spatial, int64_t out[2])
{
    if (pair[0] || pair[1]) {
        if (pair[0] < 0 || pair[1] < 0)
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: %s_hw = {%lld, %lld}, expected values >= 0",
                            who, name, (long long)pair[0], (long long)pair[1]);
        if (spatial == 1)
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: %s_hw = {%lld, %lld} is for 2-d ops; a 1-d op takes %s", who, name,
                            (long long)pair[0], (long long)pair[1], name);
        if (one != dflt)
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: both %s = %lld and %s_hw = {%lld, %lld} are written; write one",
                            who, name, (long long)one, name, (long long)pair[0],
                            (long long)pair[1]);
        out[0] = pair[0], out[1] = pair[1];
        return true;
    }
    out[0] = spatial == 1 ? dflt : one, out[1] = one;
    return true;
}

/* Resolves opts: the hand-written check skips a field whose pair is set. */
static bool conv_options(lg_ctx *ctx, const char *who, const lg_conv_opts *user, lg_conv_opts *o)
{
    uint32_t kind = 0;
    lgC_opts_kind k = lgC_opts_classify(ctx, who, &conv_desc, user, &kind);
    if (k == LGC_OPTS_HAND) {
        lgC_optfield need[3];
        int n = 0;
        if (!pair_set(user->stride_hw))
            need[n++] = conv_fields[0];
        if (!pair_set(user->dilation_hw))
            need[n++] = conv_fields[1];
        need[n++] = conv_fields[2];
        if (!lgC_opts_check_hand(ctx, who, &conv_desc, user, need, n))
            return false;
        *o = *user;
        if (pair_set(user->stride_hw) && o->stride == 0)
            o->stride = 1;
        if (pair_set(user->dilation_hw) && o->dilation == 0)
            o->dilation = 1;
        return true;
    }
    return lgC_opts(ctx, who, &conv_desc, user, o);
}

/* ------------------------------------------------------------------ */
/* Shapes                                                               */
/* ------------------------------------------------------------------ */

static bool mul_ok(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_mul_overflow(a, b, out) && *out <= INT64_MAX / 16;
}

/* Validates the call and fills the geometry and the result's shape. */
static bool conv_plan(lg_ctx *ctx, const char *who, int spatial, bool transposed,
                      const lg_tensor *x, const lg_tensor *w, const lg_tensor *b,
                      const lg_conv_opts *user, conv_geom *g, int *ond, int64_t oshape[LG_MAX_DIMS])
{
    lg_conv_opts o;
    if (!lgT_ok_float(ctx, x, who, "input") || !lgT_ok_float(ctx, w, who, "weight") ||
        !lgT_same_dtype(ctx, x, w, who) || (b && !lgT_ok_float(ctx, b, who, "bias")) ||
        (b && !lgT_same_dtype(ctx, x, b, who)) || !conv_options(ctx, who, user, &o))
        return false;
    char sx[160], sw[160];
    lgT_shape_str(x, sx, sizeof sx);
    lgT_shape_str(w, sw, sizeof sw);
    bool batched = x->ndim == spatial + 2;
    if (!batched && x->ndim != spatial + 1)
        return lgC_fail(ctx, LG_ERR_SHAPE, "%s: input is %s, expected %d dims (N, C, %s) or %d",
                        who, sx, spatial + 2, spatial == 1 ? "L" : "H, W", spatial + 1);
    if (w->ndim != spatial + 2)
        return lgC_fail(ctx, LG_ERR_SHAPE, "%s: weight is %s, expected %d dims", who, sw,
                        spatial + 2);
    int64_t st[2], pd[2], dl[2], op[2];
    if (!lgA_spatial_dims(ctx, who, "stride", o.stride, o.stride_hw, 1, spatial, st) ||
        !lgA_spatial_dims(ctx, who, "padding", o.padding, o.padding_hw, 0, spatial, pd) ||
        !lgA_spatial_dims(ctx, who, "dilation", o.dilation, o.dilation_hw, 1, spatial, dl) ||
        !lgA_spatial_dims(ctx, who, "output_padding", o.output_padding, o.output_padding_hw, 0,
                          spatial, op))
        return false;
    if ((unsigned)o.padding_kind > LG_PADDING_VALID)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: padding_kind = %d is not an lg_padding_kind", who,
                        (int)o.padding_kind);
    for (int d = 0; d < 2; d++) {
        if (st[d] < 1 || dl[d] < 1 || pd[d] < 0 || op[d] < 0)
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: stride %lld, padding %lld, dilation %lld, output_padding %lld in "
                            "a spatial dim: expected stride >= 1, padding >= 0, dilation >= 1, "
                            "output_padding >= 0",
                            who, (long long)st[d], (long long)pd[d], (long long)dl[d],
                            (long long)op[d]);
    }
    if (o.groups < 1)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: groups = %lld, expected >= 1", who,
                        (long long)o.groups);
    if (o.padding_kind != LG_PADDING_EXPLICIT && (pair_set(pd) || transposed))
        return lgC_fail(ctx, LG_ERR_VALUE,
                        transposed ? "%s: padding_kind SAME or VALID is for convolutions, not "
                                     "transposed ones"
                                   : "%s: padding_kind SAME or VALID with padding written too",
                        who);
    if (!transposed && (op[0] || op[1]))
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: output_padding is for transposed convolutions",
                        who);
    if (o.padding_kind == LG_PADDING_SAME && (st[0] != 1 || st[1] != 1))
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: padding_kind SAME needs stride 1 (PyTorch's padding='same' is not "
                        "supported for strided convolutions)",
                        who);
    int64_t n = batched ? x->shape[0] : 1, c = x->shape[batched];
    int64_t hx = spatial == 2 ? x->shape[x->ndim - 2] : 1, wx = x->shape[x->ndim - 1];
    int64_t kh = spatial == 2 ? w->shape[2] : 1, kw = w->shape[w->ndim - 1];
    int64_t G = o.groups;
    /* channels: conv W [Cout, Cin/G, k], transposed W [Cin, Cout/G, k] */
    if (c % G != 0 || (!transposed && w->shape[0] % G != 0))
        return lgC_fail(ctx, LG_ERR_SHAPE,
                        "%s: groups = %lld must divide the input's %lld channels and weight's "
                        "%lld output channels (input %s, weight %s)",
                        who, (long long)G, (long long)c, (long long)w->shape[0], sx, sw);
    int64_t cout;
    if (!transposed) {
        if (w->shape[1] != c / G)
            return lgC_fail(ctx, LG_ERR_SHAPE,
                            "%s: weight %s has %lld input channels per group, expected "
                            "Cin / groups = %lld / %lld = %lld (input %s)",
                            who, sw, (long long)w->shape[1], (long long)c, (long long)G,
                            (long long)(c / G), sx);
        cout = w->shape[0];
    } else {
        if (w->shape[0] != c)
            return lgC_fail(ctx, LG_ERR_SHAPE,
                            "%s: weight %s has %lld input channels, expected the input's %lld "
                            "(input %s; a transposed weight is [Cin, Cout / groups, k...])",
                            who, sw, (long long)w->shape[0], (long long)c, sx);
        if (!mul_ok(w->shape[1], G, &cout))
            return lgC_fail(ctx, LG_ERR_SHAPE, "%s: Cout overflows", who);
    }
    if (b && (b->ndim != 1 || b->shape[0] != cout)) {
        char sb[160];
        lgT_shape_str(b, sb, sizeof sb);
        return lgC_fail(ctx, LG_ERR_SHAPE,
                        "%s: bias is %s, expected [%lld] (one per output "
                        "channel)",
                        who, sb, (long long)cout);
    }
    int64_t in_sz[2] = { hx, wx }, k[2] = { kh, kw }, out_sz[2], before[2];
    for (int d = 0; d < 2; d++) {
        if (spatial == 1 && d == 0) {
            out_sz[0] = 1, before[0] = 0;
            continue;
        }
        int64_t span; /* d (k - 1) + 1 */
        if (!mul_ok(dl[d], k[d] - 1, &span) || k[d] < 1)
            return lgC_fail(ctx, LG_ERR_SHAPE, "%s: weight %s has an empty or overflowing kernel",
                            who, sw);
        span += 1;
        if (transposed) {
            if (op[d] >= st[d] && op[d] >= dl[d])
                return lgC_fail(ctx, LG_ERR_VALUE,
                                "%s: output_padding %lld must be smaller than the stride %lld or "
                                "the dilation %lld",
                                who, (long long)op[d], (long long)st[d], (long long)dl[d]);
            int64_t t;
            if (!mul_ok(in_sz[d] - 1 < 0 ? 0 : in_sz[d] - 1, st[d], &t))
                return lgC_fail(ctx, LG_ERR_SHAPE, "%s: the output size overflows", who);
            out_sz[d] = t - 2 * pd[d] + span + op[d];
            if (in_sz[d] == 0 || out_sz[d] < 1)
                return lgC_fail(ctx, LG_ERR_SHAPE,
                                "%s: input %s gives an output size %lld < 1 in a spatial dim", who,
                                sx, (long long)out_sz[d]);
            before[d] = pd[d];
            continue;
        }
        int64_t total = 2 * pd[d];
        before[d] = pd[d];
        if (o.padding_kind == LG_PADDING_SAME)
            total = span - 1, before[d] = total / 2;
        else if (o.padding_kind == LG_PADDING_VALID)
            total = 0, before[d] = 0;
        if (in_sz[d] + total < span)
            return lgC_fail(ctx, LG_ERR_SHAPE,
                            "%s: the kernel (%lld with dilation %lld) is larger than the padded "
                            "input (%lld + %lld) in a spatial dim (input %s, weight %s)",
                            who, (long long)k[d], (long long)dl[d], (long long)in_sz[d],
                            (long long)total, sx, sw);
        out_sz[d] = (in_sz[d] + total - span) / st[d] + 1;
    }
    *g = (conv_geom){ .n = n,
                      .kh = kh,
                      .kw = kw,
                      .sh = st[0],
                      .sw = st[1],
                      .ph = before[0],
                      .pw = before[1],
                      .dh = dl[0],
                      .dw = dl[1],
                      .groups = G,
                      .spatial = spatial,
                      .transposed = transposed };
    if (spatial == 1)
        g->sh = 1, g->dh = 1;
    /* big and small: for conv x -> y, for the transposed op y -> x */
    int64_t ocount = transposed ? cout : w->shape[0];
    if (!transposed) {
        g->cin = c, g->h = hx, g->w = wx, g->cout = ocount, g->oh = out_sz[0], g->ow = out_sz[1];
    } else {
        g->cin = cout, g->h = out_sz[0], g->w = out_sz[1], g->cout = c, g->oh = hx, g->ow = wx;
    }
    g->cin_g = g->cin / G, g->cout_g = g->cout / G;
    g->ck = g->cin_g * kh * kw;
    int64_t t;
    if (!mul_ok(g->ck, g->oh * g->ow, &t) || !mul_ok(g->cin, g->h * g->w, &t) || g->oh > INT_MAX ||
        g->ck > INT_MAX || g->oh * g->ow > INT_MAX)
        return lgC_fail(ctx, LG_ERR_SHAPE, "%s: input %s and weight %s: sizes past BLAS's range",
                        who, sx, sw);
    /* the result: batched as the input was */
    int nd = 0;
    if (batched)
        oshape[nd++] = n;
    oshape[nd++] = cout;
    if (spatial == 2)
        oshape[nd++] = transposed ? g->h : g->oh;
    oshape[nd++] = transposed ? g->w : g->ow;
    *ond = nd;
    return true;
}

/* ------------------------------------------------------------------ */
/* Running the kernels                                                  */
/* ------------------------------------------------------------------ */

static bool is_pointwise(const conv_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0 &&
           g->oh == g->h && g->ow == g->w;
}

static int64_t lane_count(const conv_geom *g, size_t es)
{
    int64_t lanes = g->n < 8 ? g->n : 8;
    int64_t per = g->ck * g->oh * g->ow * (int64_t)es;
    while (lanes > 1 && per * lanes > CONV_BUFFER_MAX)
        lanes--;
    return lanes;
}

/* x[n][c][plane] += b[c] */
static void channel_add(lg_ctx *ctx, lg_dtype dt, void *x, int64_t n, int64_t ch, int64_t plane,
                        const void *b)
{
    struct chan_args a = { .x = x, .out = (void *)b, .n = n, .ch = ch, .plane = plane };
    lgC_parallel(ctx, n * ch * plane, n * ch, dt == LG_F32 ? channel_add_f32 : channel_add_f64, &a);
}

/* Runs mode over every sample: scratch (column buffers, weight parts)
 * lives in the step arena and is released before return. For WGRAD, dw
 * receives the sum (added to it if accumulate). */
static lg_status conv_run(lg_ctx *ctx, const conv_geom *g, lg_dtype dt, int mode, const void *w,
                          const void *bias, void *big, void *small, void *dw, bool accumulate)
{
    size_t es0 = lgT_dtype_size(dt);
    if (g->n == 0 || g->cout == 0 || g->cin == 0 || g->oh * g->ow == 0 || g->h * g->w == 0) {
        /* nothing to multiply: zeros (and the bias), or dW unchanged */
        if (mode == CONV_WGRAD && !accumulate)
            memset(dw, 0, (size_t)(g->cout * g->ck) * es0);
        if (mode == CONV_ADJOINT && g->n * g->cin * g->h * g->w > 0)
            memset(big, 0, (size_t)(g->n * g->cin * g->h * g->w) * es0);
        if (mode == CONV_APPLY && g->n * g->cout * g->oh * g->ow > 0) {
            memset(small, 0, (size_t)(g->n * g->cout * g->oh * g->ow) * es0);
            if (bias)
                channel_add(ctx, dt, small, g->n, g->cout, g->oh * g->ow, bias);
        }
        return LG_OK;
    }
    size_t es = lgT_dtype_size(dt);
    struct conv_args a = { .g = g,
                           .dt = dt,
                           .mode = mode,
                           .pointwise = is_pointwise(g),
                           .lanes = lane_count(g, es),
                           .w = w,
                           .bias = bias,
                           .big = big,
                           .small = small };
    lgC_mark m = lgC_arena_mark(&ctx->arena);
    if (!a.pointwise) {
        a.cols = lgC_salloc(ctx, (size_t)(a.lanes * g->ck * g->oh * g->ow) * es, "lg_conv");
        if (!a.cols)
            return ctx->status;
    }
    if (mode == CONV_WGRAD) {
        a.parts = lgC_salloc(ctx, (size_t)(a.lanes * g->cout * g->ck) * es, "lg_conv");
        if (!a.parts) {
            lgC_arena_release(&ctx->arena, m);
            return ctx->status;
        }
    }
    lgT_blas_init();
    double work = (double)g->n * (double)g->cout * (double)g->ck * (double)(g->oh * g->ow);
    lgC_parallel(ctx, work > 4e18 ? (int64_t)4e18 : (int64_t)work, a.lanes,
                 dt == LG_F32 ? conv_range_f32 : conv_range_f64, &a);
    if (mode == CONV_WGRAD) {
        struct parts_args p = { .parts = a.parts,
                                .dst = dw,
                                .lanes = a.lanes,
                                .size = g->cout * g->ck,
                                .accumulate = accumulate };
        lgC_parallel(ctx, p.size * p.lanes, p.size, dt == LG_F32 ? sum_parts_f32 : sum_parts_f64,
                     &p);
    }
    lgC_arena_release(&ctx->arena, m);
    return LG_OK;
}

/* out[c] (+)= sum over samples and the plane of x[n][c][plane] */
static void channel_sums(lg_ctx *ctx, lg_dtype dt, const void *x, int64_t n, int64_t ch,
                         int64_t plane, void *out, bool accumulate)
{
    struct chan_args a = {
        .x = x, .out = out, .n = n, .ch = ch, .plane = plane, .accumulate = accumulate
    };
    lgC_parallel(ctx, n * ch * plane, ch, dt == LG_F32 ? channel_sums_f32 : channel_sums_f64, &a);
}

/* ------------------------------------------------------------------ */
/* The ops                                                              */
/* ------------------------------------------------------------------ */

static lg_tensor *conv_op(lg_ctx *ctx, const char *who, int spatial, bool transposed, lg_tensor *x,
                          lg_tensor *w, lg_tensor *b, const lg_conv_opts *o)
{
    if (!ctx || lgC_failed(ctx, who))
        return NULL;
    if (!x || !w)
        return lgC_error(ctx, LG_ERR_NULL, "%s: %s is NULL", who, !x ? "input" : "weight");
    conv_geom g;
    int ond = 0;
    int64_t oshape[LG_MAX_DIMS];
    if (!conv_plan(ctx, who, spatial, transposed, x, w, b, o, &g, &ond, oshape))
        return NULL;
    conv_geom *kept = lgC_salloc(ctx, sizeof *kept, who);
    lg_tensor *y = kept ? lgT_new(ctx, (lg_dtype)x->dtype, ond, oshape, who) : NULL;
    if (!y)
        return NULL;
    *kept = g;
    lg_dtype dt = (lg_dtype)x->dtype;
    lg_status s;
    if (!transposed) {
        s = conv_run(ctx, &g, dt, CONV_APPLY, w->data, b ? b->data : NULL, x->data, y->data, NULL,
                     false);
    } else {
        s = conv_run(ctx, &g, dt, CONV_ADJOINT, w->data, NULL, y->data, x->data, NULL, false);
        if (s == LG_OK && b)
            channel_add(ctx, dt, y->data, g.n, g.cin, g.h * g.w, b->data);
    }
    if (s != LG_OK)
        return NULL;
    y->aux = kept;
    return lgA_record(ctx, transposed ? LGA_OP_conv_transpose : LGA_OP_conv, y, b ? 3 : 2,
                      (lg_tensor *[]){ x, w, b });
}

static lg_status conv_backward(lg_ctx *ctx, lg_tensor *y, bool transposed)
{
    const conv_geom *g = y->aux;
    lg_tensor *x = y->in[0], *w = y->in[1], *gy = y->grad;
    lg_dtype dt = (lg_dtype)x->dtype;
    /* the big and small sides of the geometry */
    lg_tensor *big = transposed ? gy : x, *small = transposed ? x : gy;
    if (lgA_needs(y, 0)) {
        /* conv: dx = col2im(W^T gy) (ADJOINT into a fresh tensor);
         * transposed: dx = W (x) gy (APPLY) */
        lg_tensor *dx = lgT_new_like(ctx, x, "lg_backward");
        if (!dx)
            return ctx->status;
        lg_status s = transposed ? conv_run(ctx, g, dt, CONV_APPLY, w->data, NULL, gy->data,
                                            dx->data, NULL, false)
                                 : conv_run(ctx, g, dt, CONV_ADJOINT, w->data, NULL, dx->data,
                                            gy->data, NULL, false);
        if (s != LG_OK || lgA_accum(ctx, x, dx) != LG_OK)
            return ctx->status;
    }
    if (lgA_needs(y, 1)) {
        bool direct;
        lg_tensor *dw = lgA_grad_dest(ctx, w, &direct);
        if (!dw || conv_run(ctx, g, dt, CONV_WGRAD, NULL, NULL, big->data, small->data, dw->data,
                            direct) != LG_OK)
            return ctx->status;
        if (!direct && lgA_accum(ctx, w, dw) != LG_OK)
            return ctx->status;
    }
    if (y->nin == 3 && lgA_needs(y, 2)) {
        lg_tensor *b = y->in[2];
        bool direct;
        lg_tensor *db = lgA_grad_dest(ctx, b, &direct);
        if (!db)
            return ctx->status;
        /* the output channels: conv's small side, the transposed op's big one */
        if (transposed)
            channel_sums(ctx, dt, gy->data, g->n, g->cin, g->h * g->w, db->data, direct);
        else
            channel_sums(ctx, dt, gy->data, g->n, g->cout, g->oh * g->ow, db->data, direct);
        if (!direct && lgA_accum(ctx, b, db) != LG_OK)
            return ctx->status;
    }
    return LG_OK;
}

lg_status lgA_bw_conv(lg_ctx *ctx, lg_tensor *y)
{
    return conv_backward(ctx, y, false);
}

lg_status lgA_bw_conv_transpose(lg_ctx *ctx, lg_tensor *y)
{
    return conv_backward(ctx, y, true);
}

lg_tensor *lg_conv1d(lg_ctx *ctx, lg_tensor *input, lg_tensor *weight, lg_tensor *bias,
                     const lg_conv_opts *o)
{
    return conv_op(ctx, "lg_conv1d", 1, false, input, weight, bias, o);
}

lg_tensor *lg_conv2d(lg_ctx *ctx, lg_tensor *input, lg_tensor *weight, lg_tensor *bias,
                     const lg_conv_opts *o)
{
    return conv_op(ctx, "lg_conv2d", 2, false, input, weight, bias, o);
}

lg_tensor *lg_conv_transpose1d(lg_ctx *ctx, lg_tensor *input, lg_tensor *weight, lg_tensor *bias,
                               const lg_conv_opts *o)
{
    return conv_op(ctx, "lg_conv_transpose1d", 1, true, input, weight, bias, o);
}

lg_tensor *lg_conv_transpose2d(lg_ctx *ctx, lg_tensor *input, lg_tensor *weight, lg_tensor *bias,
                               const lg_conv_opts *o)
{
    return conv_op(ctx, "lg_conv_transpose2d", 2, true, input, weight, bias, o);
}

/* ------------------------------------------------------------------ */
/* Taped backwards                                                      */
/* ------------------------------------------------------------------ */

/* One of the three forms on a copy of geometry g, recorded as an op:
 *   APPLY    (a big, b W)     -> small, recorded as conv (no bias)
 *   ADJOINT  (a small, b W)   -> big, recorded as conv_transpose
 *   WGRAD    (a big, b small) -> W, recorded as conv_wgrad
 * the result shaped like `like` (batched as the tensor it stands for).
 * The three are one trilinear form <small, APPLY(big, W)> = <big,
 * ADJOINT(small, W)> = <W, WGRAD(big, small)>, so each one's gradients
 * are the other two: the taped backwards close over them. */
static lg_tensor *conv_form(lg_ctx *ctx, const conv_geom *g, int mode, lg_tensor *a, lg_tensor *b,
                            const lg_tensor *like)
{
    static const char who[] = "lg_grad";
    if (!a || !b)
        return NULL;
    conv_geom *kept = lgC_salloc(ctx, sizeof *kept, who);
    lg_tensor *y = kept ? lgT_new(ctx, (lg_dtype)a->dtype, like->ndim, like->shape, who) : NULL;
    if (!y)
        return NULL;
    *kept = *g;
    lg_dtype dt = (lg_dtype)a->dtype;
    lg_status s;
    int op;
    if (mode == CONV_APPLY) {
        s = conv_run(ctx, kept, dt, mode, b->data, NULL, a->data, y->data, NULL, false);
        op = LGA_OP_conv;
    } else if (mode == CONV_ADJOINT) {
        s = conv_run(ctx, kept, dt, mode, b->data, NULL, y->data, a->data, NULL, false);
        op = LGA_OP_conv_transpose;
    } else {
        s = conv_run(ctx, kept, dt, mode, NULL, NULL, a->data, b->data, y->data, false);
        op = LGA_OP_conv_wgrad;
    }
    if (s != LG_OK)
        return NULL;
    y->aux = kept;
    return lgA_record(ctx, op, y, 2, (lg_tensor *[]){ a, b });
}

/* conv (y = APPLY(x, W) + b):           dx = ADJOINT(g, W), dW = WGRAD(x, g);
 * conv_transpose (y = ADJOINT(x, W) + b): dx = APPLY(g, W),   dW = WGRAD(g, x);
 * both: db = g summed over every axis but the channel one. */
static lg_status conv_taped(lg_ctx *ctx, lg_tensor *y, lg_tensor *g, bool transposed)
{
    const conv_geom *geo = y->aux;
    lg_tensor *x = y->in[0], *w = y->in[1];
    lg_status s;
    if (lgA_tneeds(y, 0)) {
        lg_tensor *dx = conv_form(ctx, geo, transposed ? CONV_APPLY : CONV_ADJOINT, g, w, x);
        if ((s = lgA_taccum(ctx, x, dx)) != LG_OK)
            return s;
    }
    if (lgA_tneeds(y, 1)) {
        lg_tensor *dw = transposed ? conv_form(ctx, geo, CONV_WGRAD, g, x, w)
                                   : conv_form(ctx, geo, CONV_WGRAD, x, g, w);
        if ((s = lgA_taccum(ctx, w, dw)) != LG_OK)
            return s;
    }
    if (y->nin == 3 && lgA_tneeds(y, 2)) {
        int axes[LG_MAX_DIMS], n = 0, ch = y->ndim == geo->spatial + 2 ? 1 : 0;
        for (int d = 0; d < y->ndim; d++)
            if (d != ch)
                axes[n++] = d;
        if ((s = lgA_taccum(ctx, y->in[2], lg_sum(ctx, g, n, axes, false))) != LG_OK)
            return s;
    }
    return LG_OK;
}

lg_status lgA_tbw_conv(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return conv_taped(ctx, y, g, false);
}

lg_status lgA_tbw_conv_transpose(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return conv_taped(ctx, y, g, true);
}

/* conv_wgrad (y = WGRAD(big, small), of W's shape; linear in each input):
 * dbig = ADJOINT(small, gy), dsmall = APPLY(big, gy), gy in W's place. */
lg_status lgA_bw_conv_wgrad(lg_ctx *ctx, lg_tensor *y)
{
    const conv_geom *g = y->aux;
    lg_tensor *big = y->in[0], *small = y->in[1], *gy = y->grad;
    lg_dtype dt = (lg_dtype)big->dtype;
    if (lgA_needs(y, 0)) {
        lg_tensor *d = lgT_new_like(ctx, big, "lg_backward");
        if (!d ||
            conv_run(ctx, g, dt, CONV_ADJOINT, gy->data, NULL, d->data, small->data, NULL, false) !=
                LG_OK ||
            lgA_accum(ctx, big, d) != LG_OK)
            return ctx->status;
    }
    if (lgA_needs(y, 1)) {
        lg_tensor *d = lgT_new_like(ctx, small, "lg_backward");
        if (!d ||
            conv_run(ctx, g, dt, CONV_APPLY, gy->data, NULL, big->data, d->data, NULL, false) !=
                LG_OK ||
            lgA_accum(ctx, small, d) != LG_OK)
            return ctx->status;
    }
    return LG_OK;
}

lg_status lgA_tbw_conv_wgrad(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    const conv_geom *geo = y->aux;
    lg_tensor *big = y->in[0], *small = y->in[1];
    lg_status s;
    if (lgA_tneeds(y, 0) &&
        (s = lgA_taccum(ctx, big, conv_form(ctx, geo, CONV_ADJOINT, small, g, big))) != LG_OK)
        return s;
    if (lgA_tneeds(y, 1) &&
        (s = lgA_taccum(ctx, small, conv_form(ctx, geo, CONV_APPLY, big, g, small))) != LG_OK)
        return s;
    return LG_OK;
}
