/*
 * lossgrad/nnops.h: the primitives of neural-network layers (included by
 * lossgrad.h): convolution, pooling, resampling, normalisation and
 * attention. Each mirrors torch.nn.functional: the same argument names,
 * defaults, layouts (N C L for 1-d, N C H W for 2-d, batch first) and
 * gradients, in float32 and float64. Unbatched inputs (C L, C H W) are
 * accepted where PyTorch accepts them, and give unbatched results.
 *
 * Spatial options follow the library's options rule (lossgrad.h): NULL or
 * lg_<struct>_default() is PyTorch's defaults; a value PyTorch takes as an
 * int (stride=2) is one field applied to every spatial dim, and
 * PyTorch's tuples for 2-d ops (stride=(2, 1)) are the *_hw pairs, {H, W}:
 * a pair with a non-zero element replaces the single value, which must
 * then keep its default (LG_ERR_VALUE otherwise, as for a pair given to a
 * 1-d op). A struct written by hand must write the fields marked
 * (non-zero default), except one whose *_hw pair it writes.
 */
#ifndef LOSSGRAD_NNOPS_H
#define LOSSGRAD_NNOPS_H

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Convolution                                                         */
/* ------------------------------------------------------------------ */

/* PyTorch's padding='same' and padding='valid' (convolutions only). */
typedef enum lg_padding_kind {
    LG_PADDING_EXPLICIT = 0, /* the padding field(s) */
    LG_PADDING_SAME,         /* output size = input size: d (k - 1) split, the extra one after;
                              * stride must be 1 */
    LG_PADDING_VALID         /* no padding */
} lg_padding_kind;

typedef struct lg_conv_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    int64_t stride;        /* (non-zero default) 1; >= 1 */
    int64_t padding;       /* default 0; >= 0, zeros on both sides */
    int64_t dilation;      /* (non-zero default) 1; >= 1 */
    int64_t groups;        /* (non-zero default) 1; divides both channel counts */
    lg_padding_kind padding_kind; /* SAME or VALID: padding must stay 0 */
    int64_t output_padding;       /* transposed only: default 0, < stride or < dilation */
    /* PyTorch's tuples, for 2-d ops: {H, W} (see above) */
    int64_t stride_hw[2], padding_hw[2], dilation_hw[2], output_padding_hw[2];
} lg_conv_opts;
lg_conv_opts lg_conv_opts_default(void);

/* out[n, o] = bias[o] + sum over the group's input channels c and kernel
 * offsets of weight[o, c, k] input[n, g c, s i + d k - p] (zero outside).
 * conv2d: input [N, Cin, H, W] (or [Cin, H, W]), weight
 * [Cout, Cin / groups, kH, kW], bias [Cout] or NULL -> [N, Cout, OH, OW],
 * OH = floor((H + 2 p - d (kH - 1) - 1) / s) + 1. conv1d likewise with one
 * spatial dim. Gradients flow to input, weight and bias. Errors: a
 * dilated kernel larger than the padded input, groups not dividing Cin
 * and Cout, weight's second dim not Cin / groups, SAME with a stride > 1. */
lg_tensor *lg_conv1d(lg_ctx *ctx, lg_tensor *input, lg_tensor *weight, lg_tensor *bias,
                     const lg_conv_opts *o);
lg_tensor *lg_conv2d(lg_ctx *ctx, lg_tensor *input, lg_tensor *weight, lg_tensor *bias,
                     const lg_conv_opts *o);
/* The adjoint of conv (the "deconvolution" of decoders): weight
 * [Cin, Cout / groups, kH, kW], bias [Cout] -> [N, Cout, OH, OW] with
 * OH = (H - 1) s - 2 p + d (kH - 1) + output_padding + 1. padding_kind
 * must be EXPLICIT. */
lg_tensor *lg_conv_transpose1d(lg_ctx *ctx, lg_tensor *input, lg_tensor *weight, lg_tensor *bias,
                               const lg_conv_opts *o);
lg_tensor *lg_conv_transpose2d(lg_ctx *ctx, lg_tensor *input, lg_tensor *weight, lg_tensor *bias,
                               const lg_conv_opts *o);

/* ------------------------------------------------------------------ */
/* Pooling                                                              */
/* ------------------------------------------------------------------ */

/* The default stride of pooling: the kernel size (PyTorch's stride=None). */
#define LG_POOL_STRIDE_KERNEL (-1)
/* avg_pool2d's default divisor_override: none (PyTorch's None). */
#define LG_POOL_NO_DIVISOR (-1)

typedef struct lg_max_pool_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    int64_t stride;        /* (non-zero default) LG_POOL_STRIDE_KERNEL; else >= 1 */
    int64_t padding;       /* default 0; -inf on both sides, at most half the kernel */
    int64_t dilation;      /* (non-zero default) 1; >= 1 */
    bool ceil_mode;        /* ceil instead of floor in the output size */
    int64_t stride_hw[2], padding_hw[2], dilation_hw[2]; /* 2-d tuples {H, W} */
} lg_max_pool_opts;
lg_max_pool_opts lg_max_pool_opts_default(void);

/* The maximum over each window (kernel_size k, dilated), NaN if the window
 * holds one. Output size floor((L + 2 p - d (k - 1) - 1) / s) + 1 (ceil
 * with ceil_mode, less the last window if it would start in the right
 * padding), as PyTorch. indices: NULL, or it receives an int64 step tensor
 * of the output's shape holding each maximum's flat position in its input
 * plane (h W + w), as PyTorch's return_indices; at ties the first in scan
 * order. The gradient flows to that position. input [N, C, L] or [C, L]
 * (1-d), [N, C, H, W] or [C, H, W] (2-d). */
lg_tensor *lg_max_pool1d(lg_ctx *ctx, lg_tensor *input, int64_t kernel_size,
                         const lg_max_pool_opts *o, lg_tensor **indices);
lg_tensor *lg_max_pool2d(lg_ctx *ctx, lg_tensor *input, int64_t kernel_h, int64_t kernel_w,
                         const lg_max_pool_opts *o, lg_tensor **indices);

typedef struct lg_avg_pool_opts {
    uint32_t defaults_tag;  /* written by the _default() function only (lossgrad.h: Options) */
    int64_t stride;         /* (non-zero default) LG_POOL_STRIDE_KERNEL; else >= 1 */
    int64_t padding;        /* default 0; zeros on both sides, at most half the kernel */
    bool ceil_mode;         /* ceil instead of floor in the output size */
    bool count_include_pad; /* (non-zero default) true: padding counts in the divisor */
    int64_t
        divisor_override; /* (non-zero default) LG_POOL_NO_DIVISOR; 2-d only: the divisor, >= 1 */
    int64_t stride_hw[2], padding_hw[2]; /* 2-d tuples {H, W} */
} lg_avg_pool_opts;
lg_avg_pool_opts lg_avg_pool_opts_default(void);

/* The mean over each window: the sum over the window's part inside the
 * input, divided by divisor_override, or the window's size within the
 * padded input (count_include_pad), or the count of input elements it
 * covers. Output sizes as lg_max_pool1d; a window wholly in the padding
 * gives 0. */
lg_tensor *lg_avg_pool1d(lg_ctx *ctx, lg_tensor *input, int64_t kernel_size,
                         const lg_avg_pool_opts *o);
lg_tensor *lg_avg_pool2d(lg_ctx *ctx, lg_tensor *input, int64_t kernel_h, int64_t kernel_w,
                         const lg_avg_pool_opts *o);

/* Mean over windows [floor(i L / out), ceil((i + 1) L / out)) of each
 * spatial dim: output [N, C, out] / [N, C, out_h, out_w] (or unbatched).
 * Output sizes >= 1 (PyTorch's None, "keep the input's size", is that size). */
lg_tensor *lg_adaptive_avg_pool1d(lg_ctx *ctx, lg_tensor *input, int64_t output_size);
lg_tensor *lg_adaptive_avg_pool2d(lg_ctx *ctx, lg_tensor *input, int64_t out_h, int64_t out_w);

/* ------------------------------------------------------------------ */
/* Normalisation. weight and bias are optional (NULL: 1 and 0); eps is  */
/* PyTorch's 1e-5 by default, finite and >= 0. Statistics are the mean  */
/* and the biased variance of each set; xhat = (x - mean) /             */
/* sqrt(var + eps), y = xhat weight + bias.                             */
/* ------------------------------------------------------------------ */

/* input [N, C, *]: a set per channel over N and *. training: the batch's
 * statistics, and running_mean / running_var (both or neither, [C], no
 * gradient) updated in place: r = (1 - momentum) r + momentum s, with the
 * unbiased variance (momentum in [0, 1]; PyTorch's default 0.1, and its
 * momentum=None, a cumulative average, is momentum 1 / batches so far);
 * one value per channel is LG_ERR_VALUE, as PyTorch. Not training: the
 * running statistics (required). weight, bias [C]. */
lg_tensor *lg_batch_norm(lg_ctx *ctx, lg_tensor *input, lg_tensor *running_mean,
                         lg_tensor *running_var, lg_tensor *weight, lg_tensor *bias, bool training,
                         double momentum, double eps);
/* A set per row over the trailing nnorm dims, which must equal
 * normalized_shape; weight and bias of that shape (elementwise affine). */
lg_tensor *lg_layer_norm(lg_ctx *ctx, lg_tensor *input, int nnorm, const int64_t *normalized_shape,
                         lg_tensor *weight, lg_tensor *bias, double eps);
/* input [N, C, *]: a set per sample and group of C / num_groups channels;
 * weight, bias [C]. num_groups must divide C. */
lg_tensor *lg_group_norm(lg_ctx *ctx, lg_tensor *input, int64_t num_groups, lg_tensor *weight,
                         lg_tensor *bias, double eps);

/* ------------------------------------------------------------------ */
/* Resampling                                                           */
/* ------------------------------------------------------------------ */

typedef enum lg_interp_mode { LG_INTERP_NEAREST = 0, LG_INTERP_BILINEAR } lg_interp_mode;
typedef struct lg_interpolate_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_interp_mode mode;   /* PyTorch's default: nearest */
    /* exactly one of: the output size (one for both dims, or {H, W}, each
     * >= 1), or the scale factor (one for both dims, or {H, W}, each finite
     * and > 0); 0 means not given */
    int64_t size, size_hw[2];
    double scale_factor, scale_factor_hw[2];
    bool align_corners; /* bilinear only (PyTorch's default false) */
} lg_interpolate_opts;
/* Every field's default is 0: NULL, a zeroed struct and this one give
 * neither a size nor a factor, so a call needs one of them written. */
lg_interpolate_opts lg_interpolate_opts_default(void);
/* F.interpolate on [N, C, H, W] -> [N, C, OH, OW] (recompute_scale_factor
 * unset): output size from size, or floor(in * scale_factor) in double.
 * Each output index o maps back with scale = 1 / scale_factor when a
 * factor is given, else in / out: nearest takes src = min(floor(scale o),
 * in - 1) (as PyTorch: the product formed in float for float32 input, in
 * double and then rounded to float for float64); bilinear weights the two
 * neighbours of r = (in - 1) / (out - 1) o (align_corners; 0 if out = 1)
 * or max(scale (o + 0.5) - 0.5, 0) (a dim whose output size equals the
 * input's is the identity). The gradient is the adjoint (a scatter-add).
 * Every C uses these formulas (PyTorch 1.13 takes shortcuts for C = 1 and
 * in its nearest backward that can pick other sources).
 * LG_ERR_SHAPE: input not 4-d, H or W empty, an output size 0 from a
 * factor, an output with too many elements. LG_ERR_VALUE: neither or both
 * of size and scale_factor (NULL options included), a *_hw pair with its
 * single value also written, a size < 1, a factor not finite or <= 0 or
 * giving a dim past INT64_MAX / 8, align_corners with nearest
 * (align_corners false cannot be told from unset, so nearest accepts it
 * where PyTorch raises for any explicit value).
 * Lives until the step ends. */
lg_tensor *lg_interpolate(lg_ctx *ctx, lg_tensor *input, const lg_interpolate_opts *o);

/* ------------------------------------------------------------------ */
/* Statistics and similarity                                            */
/* ------------------------------------------------------------------ */

/* Variance and standard deviation over axes (naxes 0 and axes NULL: all),
 * dividing by n - 1 (unbiased) or n, keepdim as lg_sum; torch.var /
 * torch.std (1.13). dvar = 2 (x - mean) g / (n - 1 or n), dstd = dvar /
 * (2 std), 0 where std is 0. As PyTorch: an empty set gives NaN; unbiased
 * over one element gives NaN with a NaN gradient, except with naxes 0 (or
 * a 0-d x), PyTorch's dim-absent branch, where var's gradient is g inf
 * (std's NaN). LG_ERR_DTYPE (x not float), LG_ERR_AXIS. */
lg_tensor *lg_var(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool unbiased,
                  bool keepdim);
lg_tensor *lg_std(lg_ctx *ctx, lg_tensor *x, int naxes, const int *axes, bool unbiased,
                  bool keepdim);
/* F.cosine_similarity: sum over dim of (x1 / max(|x1|, eps)) (x2 / max(|x2|, eps)),
 * each norm clamped on its own (1.13's formula); x1 and x2 broadcast first
 * (a norm runs over the broadcast dim). The gradient flows through the
 * clamp as if it were absent (1.13 clamps in place); a zero vector gives 0
 * and the gradient g (x2 / |x2|) / eps. PyTorch's defaults: dim 1, eps
 * 1e-8. One float dtype (LG_ERR_DTYPE); eps finite and >= 0 (LG_ERR_VALUE);
 * LG_ERR_SHAPE if they do not broadcast; LG_ERR_AXIS. */
lg_tensor *lg_cosine_similarity(lg_ctx *ctx, lg_tensor *x1, lg_tensor *x2, int dim, double eps);
/* F.normalize: x / max(||x||_p over dim, eps) (defaults p 2, dim 1, eps 1e-12).
 * p as lg_norm takes it (p = 0 counts non-zeros, and no gradient flows
 * through that norm, as PyTorch). The clamp passes no gradient below eps:
 * a zero row gives 0 and the gradient g / eps. eps finite and >= 0
 * (LG_ERR_VALUE); LG_ERR_AXIS. */
lg_tensor *lg_normalize(lg_ctx *ctx, lg_tensor *x, double p, int dim, double eps);

/* ------------------------------------------------------------------ */
/* Attention                                                            */
/* ------------------------------------------------------------------ */

/* scale's default: 1 / sqrt(E), E the query's last size. */
#define LG_SDPA_DEFAULT_SCALE (-1.0)
typedef struct lg_sdpa_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    /* NULL; a float mask of query's dtype added to the scores (it may hold
     * -inf; a gradient flows to it if it requires one); or an int64 0/1
     * mask, 1 = may attend, as PyTorch 2's boolean mask (a 0 makes the
     * score -inf and passes it no gradient); broadcast to [..., L, S]
     * without growing it (LG_ERR_SHAPE otherwise) */
    lg_tensor *attn_mask;
    /* query i attends keys j <= i (top-left aligned, also for L != S);
     * with an attn_mask: LG_ERR_VALUE, as PyTorch 2 */
    bool is_causal;
    /* on the attention weights, in training mode only (lg_ctx_training;
     * PyTorch's function drops in either mode); [0, 1) */
    double dropout_p;
    double scale; /* (non-zero default) LG_SDPA_DEFAULT_SCALE; else finite and > 0 */
} lg_sdpa_opts;
lg_sdpa_opts lg_sdpa_opts_default(void);
/* softmax(q k^T scale + mask) v over [..., L, E] queries, [..., S, E] keys
 * and [..., S, Ev] values (one float dtype, one ndim >= 2, batch dims
 * equal) -> [..., L, Ev]. A row with every key masked gives NaN, as the
 * math. LG_ERR_DTYPE, LG_ERR_SHAPE, LG_ERR_VALUE (an int64 mask value
 * other than 0 or 1, and the options). Lives until the step ends.
 * (PyTorch 1.13 has only the private _scaled_dot_product_attention; this
 * follows 2.x's public one.) */
lg_tensor *lg_scaled_dot_product_attention(lg_ctx *ctx, lg_tensor *query, lg_tensor *key,
                                           lg_tensor *value, const lg_sdpa_opts *o);

#ifdef __cplusplus
}
#endif
#endif
