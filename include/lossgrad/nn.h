/*
 * lossgrad/nn.h: layers, initialisers, recurrent networks and checkpoints
 * (included by lossgrad.h); optimizers, clipping and learning-rate
 * schedules are lossgrad/optim.h's, included here.
 *
 * Layers create their parameters in the ctx's parameter store under
 * dotted names ("fc1.weight", "gru.weight_ih_l0_reverse"), with PyTorch's
 * layouts, so a model's parameters are listed with lg_param_count /
 * lg_param_at (one model's by its name: lg_params_with_prefix), found with
 * lg_param_find, zeroed with lg_zero_grad and saved
 * by name with lg_checkpoint_save. Layer objects live until lg_ctx_free.
 */
#ifndef LOSSGRAD_NN_H
#define LOSSGRAD_NN_H

#ifdef __cplusplus
extern "C" {
#endif

/* The parameter named name, or NULL. */
lg_tensor *lg_param_find(lg_ctx *ctx, const char *name);
/* The buffer named name, or NULL. */
lg_tensor *lg_buffer_find(lg_ctx *ctx, const char *name);

/* Training mode (the default) or evaluation mode: dropout is active only
 * in training mode, and batch norm layers use (and update) batch
 * statistics only in training mode. */
void lg_ctx_set_training(lg_ctx *ctx, bool training);
bool lg_ctx_training(const lg_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Initialisers: fill a float tensor in place from the ctx RNG (no      */
/* gradient). fan_in = shape[1] * receptive field, fan_out = shape[0] * */
/* receptive field (receptive field = product of shape[2:]), as PyTorch. */
/* ------------------------------------------------------------------ */

typedef enum lg_fan_mode { LG_FAN_IN = 0, LG_FAN_OUT } lg_fan_mode;
typedef enum lg_nonlinearity {
    LG_NL_LEAKY_RELU = 0, /* PyTorch's default for kaiming_*; with a = 0 it is relu's gain */
    LG_NL_RELU,
    LG_NL_LINEAR,
    LG_NL_SIGMOID,
    LG_NL_TANH,
    LG_NL_SELU,
    LG_NL_CONV1D, /* the conv and conv-transpose names: gain 1, as linear */
    LG_NL_CONV2D,
    LG_NL_CONV3D,
    LG_NL_CONV_TRANSPOSE1D,
    LG_NL_CONV_TRANSPOSE2D,
    LG_NL_CONV_TRANSPOSE3D
} lg_nonlinearity;

/* PyTorch's calculate_gain for every nonlinearity it names: linear, the
 * six conv names and sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu
 * sqrt(2 / (1 + a^2)) (a is the negative slope; PyTorch's param=None is
 * a = 0.01 there, while kaiming_*'s default is a = 0), selu 3/4; a is read
 * by leaky_relu only. NaN for a value that is not an lg_nonlinearity. */
double lg_init_gain(lg_nonlinearity nl, double a);
lg_status lg_init_uniform(lg_ctx *ctx, lg_tensor *t, double low, double high);
lg_status lg_init_normal(lg_ctx *ctx, lg_tensor *t, double mean, double std);
lg_status lg_init_constant(lg_ctx *ctx, lg_tensor *t, double value); /* zeros, ones */
/* U(-b, b), b = gain sqrt(6 / (fan_in + fan_out)) / N(0, gain sqrt(2 / (fan_in + fan_out))) */
lg_status lg_init_xavier_uniform(lg_ctx *ctx, lg_tensor *t, double gain);
lg_status lg_init_xavier_normal(lg_ctx *ctx, lg_tensor *t, double gain);
/* U(-b, b), b = gain(nl, a) sqrt(3 / fan) / N(0, gain(nl, a) / sqrt(fan)) */
lg_status lg_init_kaiming_uniform(lg_ctx *ctx, lg_tensor *t, double a, lg_fan_mode mode,
                                  lg_nonlinearity nl);
lg_status lg_init_kaiming_normal(lg_ctx *ctx, lg_tensor *t, double a, lg_fan_mode mode,
                                 lg_nonlinearity nl);
/* torch.nn.init.orthogonal_: t viewed as [shape[0], numel / shape[0]]
 * (ndim >= 2) becomes gain times a (semi-)orthogonal matrix: Q of the QR
 * decomposition of a N(0, 1) matrix (of the transpose when rows < cols),
 * its columns' signs fixed by R's diagonal, so W W^T = gain^2 I when
 * rows <= cols and W^T W = gain^2 I otherwise. Computed in double.
 * LG_ERR_SHAPE below 2 dims or for an empty tensor; gain finite. */
lg_status lg_init_orthogonal(lg_ctx *ctx, lg_tensor *t, double gain);
/* torch.nn.init.trunc_normal_: N(mean, std) truncated to [a, b] by the
 * inverse CDF (PyTorch's method: u uniform between Phi((a - mean) / std)
 * and Phi((b - mean) / std), then mean + std sqrt(2) erfinv(2u - 1),
 * clamped to [a, b]). PyTorch's defaults: mean 0, std 1, a -2, b 2.
 * LG_ERR_VALUE unless std > 0, a < b, all finite. */
lg_status lg_init_trunc_normal(lg_ctx *ctx, lg_tensor *t, double mean, double std, double a,
                               double b);
/* torch.nn.init.eye_: the identity of a 2-D tensor (ones at [i, i] for
 * i < min(rows, cols), zeros elsewhere). LG_ERR_SHAPE unless 2-D. No RNG. */
lg_status lg_init_eye(lg_ctx *ctx, lg_tensor *t);
/* torch.nn.init.dirac_: a 3-, 4- or 5-D convolution weight [Cout, Cin, k...]
 * that keeps its input's channels: in each of the groups blocks of
 * Cout / groups output channels, t[g out_g + d, d, centre] = 1 for
 * d < min(Cout / groups, Cin), zeros elsewhere (centre = k / 2 per axis).
 * PyTorch's default groups is 1. LG_ERR_SHAPE for other ndims,
 * LG_ERR_VALUE unless groups >= 1 divides Cout. No RNG. */
lg_status lg_init_dirac(lg_ctx *ctx, lg_tensor *t, int64_t groups);
/* torch.nn.init.sparse_: a 2-D [rows, cols] tensor N(0, std) (PyTorch's
 * default std 0.01) with exactly ceil(sparsity rows) zeros in every
 * column, at rows drawn uniformly without replacement. LG_ERR_SHAPE unless
 * 2-D; LG_ERR_VALUE unless sparsity in [0, 1] and std >= 0, finite. */
lg_status lg_init_sparse(lg_ctx *ctx, lg_tensor *t, double sparsity, double std);

/* ------------------------------------------------------------------ */
/* Layers                                                              */
/* ------------------------------------------------------------------ */

typedef struct lg_linear {
    lg_tensor *weight; /* [out, in] */
    lg_tensor *bias;   /* [out], or NULL */
    int64_t in_features, out_features;
} lg_linear;

typedef struct lg_linear_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_dtype dtype; /* LG_F32 (the zero value) or LG_F64 */
    bool no_bias;   /* PyTorch's bias=False */
} lg_linear_opts;
lg_linear_opts lg_linear_opts_default(void);

/* Parameters "<name>.weight" and "<name>.bias", initialised as PyTorch's
 * nn.Linear: weight kaiming_uniform(a = sqrt 5), i.e. U(+-1/sqrt(in)), bias
 * U(+-1/sqrt(in)). NULL on error (LG_ERR_VALUE for sizes < 1 or a weight
 * past 2^60 - 1 elements; lg_embedding_new, lg_mlp_new and lg_rnn_new
 * likewise, each checking every size before it makes a parameter). */
lg_linear *lg_linear_new(lg_ctx *ctx, const char *name, int64_t in_features, int64_t out_features,
                         const lg_linear_opts *o);
/* y = x W^T + b.  x:[..., in] -> [..., out]. */
lg_tensor *lg_linear_forward(lg_ctx *ctx, const lg_linear *l, lg_tensor *x);

typedef struct lg_embedding {
    lg_tensor *weight; /* [num, dim], N(0, 1) as PyTorch (the padding row zeros) */
    int64_t num, dim;
    int64_t padding_idx; /* in [0, num), or -1 for none */
    double max_norm;     /* 0 for none */
    double norm_type;
    bool scale_grad_by_freq;
} lg_embedding;

typedef struct lg_embedding_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_dtype dtype;        /* LG_F32 (the zero value) or LG_F64 */
    /* PyTorch's padding_idx: a row whose gradient is always zero and which
     * starts as zeros. Used only when has_padding_idx is set (PyTorch's
     * default padding_idx=None is has_padding_idx false, and padding_idx
     * must then stay 0); padding_idx in [-num, num), a negative one
     * counting from the end as PyTorch. */
    bool has_padding_idx;
    int64_t padding_idx;
    /* PyTorch's max_norm: before each lookup the rows looked up whose
     * norm_type-norm exceeds max_norm are scaled in place in the weight
     * (no gradient) by max_norm / (norm + 1e-7). 0 (the zero value) is
     * PyTorch's max_norm=None; otherwise > 0 (+INFINITY allowed, never
     * scales); negative or NaN: LG_ERR_VALUE. */
    double max_norm;
    /* (non-zero default) 2, needed only with max_norm (a struct written by
     * hand with max_norm must write it); > 0 or +INFINITY. */
    double norm_type;
    /* PyTorch's scale_grad_by_freq: each row's gradient divided by how
     * often its index occurs in the call's indices. */
    bool scale_grad_by_freq;
} lg_embedding_opts;
lg_embedding_opts lg_embedding_opts_default(void);

/* nn.Embedding: parameter "<name>.weight" [num, dim], N(0, 1) with the
 * padding row zeroed, as PyTorch's reset_parameters. o NULL: PyTorch's
 * defaults in float32. LG_ERR_VALUE for sizes < 1 or a bad option (a
 * padding_idx outside [-num, num), ...). */
lg_embedding *lg_embedding_new(lg_ctx *ctx, const char *name, int64_t num, int64_t dim,
                               const lg_embedding_opts *o);
/* indices: int64, any shape -> [..., dim]; LG_ERR_INDEX outside [0, num).
 * With max_norm the weight's looked-up rows are renormalised first (an
 * in-place write to the parameter, as PyTorch: do it before computing
 * anything else from the weight that a later backward needs). Gradients
 * as PyTorch's: none to the padding row; with scale_grad_by_freq, row i's
 * divided by the count of i in indices (an infinite or NaN weight entry
 * then keeps its value but gets no gradient). A composite of index_select,
 * detach, where and mul, so twice differentiable. */
lg_tensor *lg_embedding_forward(lg_ctx *ctx, const lg_embedding *e, lg_tensor *indices);

/* Inverted dropout: in training mode zeroes each element with probability
 * p (drawn from the ctx RNG) and scales the rest by 1/(1-p); in evaluation
 * mode (or p == 0) returns x. p in [0, 1], else LG_ERR_VALUE. */
lg_tensor *lg_dropout(lg_ctx *ctx, lg_tensor *x, double p);

/* torch.multinomial: num_samples category indices per row of non-negative
 * weights input ([C] -> [num_samples], [N, C] -> [N, num_samples], int64),
 * drawn from the ctx RNG with or without replacement. Sampling from logits
 * (torch.distributions.Categorical(logits=...)) is this of their
 * lg_softmax. LG_ERR_VALUE for a negative, infinite or NaN weight, a row
 * of zeros, or (without replacement) fewer positive weights than
 * num_samples; the RNG is then untouched. No gradient. */
lg_tensor *lg_multinomial(lg_ctx *ctx, lg_tensor *input, int64_t num_samples, bool replacement);

/* Activations by name, each with PyTorch's module defaults (nn.LeakyReLU
 * slope 0.01, nn.ELU and nn.CELU alpha 1, nn.Softplus beta 1 threshold 20,
 * nn.Hardtanh [-1, 1]); LG_ACT_IDENTITY is nn.Identity. */
typedef enum lg_activation {
    LG_ACT_RELU = 0,
    LG_ACT_TANH,
    LG_ACT_SIGMOID,
    LG_ACT_GELU, /* exact (erf) */
    LG_ACT_GELU_TANH,
    LG_ACT_SILU,
    LG_ACT_MISH,
    LG_ACT_LEAKY_RELU,
    LG_ACT_ELU,
    LG_ACT_CELU,
    LG_ACT_SELU,
    LG_ACT_SOFTPLUS,
    LG_ACT_HARDTANH,
    LG_ACT_RELU6,
    LG_ACT_HARDSWISH,
    LG_ACT_HARDSIGMOID,
    LG_ACT_SOFTSIGN,
    LG_ACT_LOG_SIGMOID,
    LG_ACT_IDENTITY
} lg_activation;
/* The activation a applied to x (x itself for LG_ACT_IDENTITY);
 * LG_ERR_VALUE for a value that is not an lg_activation. */
lg_tensor *lg_activation_forward(lg_ctx *ctx, lg_activation a, lg_tensor *x);

typedef struct lg_mlp {
    int nlayers;
    lg_linear **layers;
    lg_activation activation;
    double dropout;
} lg_mlp;
typedef struct lg_mlp_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_dtype dtype;
    lg_activation activation; /* between layers, not after the last; default LG_ACT_RELU */
    double dropout;           /* after each hidden activation; 0: none */
    bool no_bias;             /* every layer without bias (PyTorch's bias=False) */
} lg_mlp_opts;
lg_mlp_opts lg_mlp_opts_default(void);
/* sizes[0] -> sizes[1] -> ... -> sizes[n-1]: n-1 linear layers "<name>.<k>". */
lg_mlp *lg_mlp_new(lg_ctx *ctx, const char *name, int n, const int64_t *sizes,
                   const lg_mlp_opts *o);
lg_tensor *lg_mlp_forward(lg_ctx *ctx, const lg_mlp *m, lg_tensor *x);

/* One model's parameters (PyTorch's module.parameters()): those named
 * prefix or starting with "<prefix>.", in the store's order, so that
 * optimizers (lg_optim_opts.params), clipping, freezing and checkpoints can
 * name one model of a ctx holding two. Writes the first min(count, max) to
 * out (which may be NULL when max is 0) and returns count; -1 on error:
 * LG_ERR_NULL for a NULL prefix (or NULL out with max > 0), LG_ERR_VALUE
 * for an empty prefix or max < 0. The tensors live until lg_ctx_free. */
int lg_params_with_prefix(lg_ctx *ctx, const char *prefix, lg_tensor **out, int max);

/* ------------------------------------------------------------------ */
/* Convolution and normalisation layers (primitives: lossgrad/nnops.h)  */
/* ------------------------------------------------------------------ */

typedef struct lg_conv {
    lg_tensor *weight; /* [Cout, Cin / groups, k...], transposed [Cin, Cout / groups, k...] */
    lg_tensor *bias;   /* [Cout], or NULL */
    int64_t in_channels, out_channels, kernel_h, kernel_w; /* kernel_h 1 for 1-d */
    int spatial;     /* 1 or 2 */
    bool transposed;
    lg_conv_opts conv; /* stride, padding, dilation, groups as given */
} lg_conv;

typedef struct lg_conv_layer_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_dtype dtype;        /* LG_F32 (the zero value) or LG_F64 */
    bool no_bias;          /* PyTorch's bias=False */
} lg_conv_layer_opts;
lg_conv_layer_opts lg_conv_layer_opts_default(void);

/* nn.Conv1d / Conv2d / ConvTranspose1d / ConvTranspose2d: parameters
 * "<name>.weight" and "<name>.bias" with PyTorch's layouts, initialised as
 * PyTorch (kaiming_uniform(a = sqrt 5): U(+-1/sqrt(fan_in)) for both, with
 * fan_in = weight.shape[1] times the kernel's size). conv: NULL for the
 * defaults, else checked here (groups dividing both channel counts, ...);
 * zero padding only (PyTorch's padding_mode='zeros'). NULL on error. */
lg_conv *lg_conv1d_new(lg_ctx *ctx, const char *name, int64_t in_channels, int64_t out_channels,
                       int64_t kernel_size, const lg_conv_opts *conv, const lg_conv_layer_opts *o);
lg_conv *lg_conv2d_new(lg_ctx *ctx, const char *name, int64_t in_channels, int64_t out_channels,
                       int64_t kernel_h, int64_t kernel_w, const lg_conv_opts *conv,
                       const lg_conv_layer_opts *o);
lg_conv *lg_conv_transpose1d_new(lg_ctx *ctx, const char *name, int64_t in_channels,
                                 int64_t out_channels, int64_t kernel_size,
                                 const lg_conv_opts *conv, const lg_conv_layer_opts *o);
lg_conv *lg_conv_transpose2d_new(lg_ctx *ctx, const char *name, int64_t in_channels,
                                 int64_t out_channels, int64_t kernel_h, int64_t kernel_w,
                                 const lg_conv_opts *conv, const lg_conv_layer_opts *o);
/* The layer's op (lg_conv1d, lg_conv2d, ...) on x. */
lg_tensor *lg_conv_forward(lg_ctx *ctx, const lg_conv *l, lg_tensor *x);

/* PyTorch's momentum=None: running statistics as a cumulative average. */
#define LG_MOMENTUM_CUMULATIVE (-1.0)

typedef struct lg_norm_layer_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_dtype dtype;
    double eps;      /* (non-zero default) 1e-5; finite, >= 0 */
    double momentum; /* batch norm: (non-zero default) 0.1, in [0, 1], or LG_MOMENTUM_CUMULATIVE */
    bool affine;     /* (non-zero default) true: weight (ones) and bias (zeros);
                      * PyTorch's elementwise_affine for layer norm */
    bool track_running_stats; /* batch norm: (non-zero default) true */
} lg_norm_layer_opts;
/* The defaults (the same for every norm layer; a field a layer does not
 * use must keep its default, LG_ERR_VALUE otherwise). */
lg_norm_layer_opts lg_norm_layer_opts_default(void);

typedef struct lg_batchnorm {
    lg_tensor *weight, *bias;              /* [C] parameters, NULL without affine */
    lg_tensor *running_mean, *running_var; /* [C] buffers (0 and 1), NULL without tracking */
    lg_tensor *num_batches_tracked;        /* 0-d int64 buffer, NULL without tracking */
    int64_t num_features;
    double eps, momentum;
} lg_batchnorm;
/* nn.BatchNorm1d / BatchNorm2d (one layer: the input's ndim decides):
 * parameters "<name>.weight", "<name>.bias", buffers "<name>.running_mean",
 * "<name>.running_var", "<name>.num_batches_tracked", PyTorch's names. */
lg_batchnorm *lg_batchnorm_new(lg_ctx *ctx, const char *name, int64_t num_features,
                               const lg_norm_layer_opts *o);
/* x [N, C] or [N, C, *]. In training mode (lg_ctx_training) the batch's
 * statistics, the running ones updated and num_batches_tracked counted;
 * in evaluation mode the running statistics (the batch's without
 * tracking), as PyTorch's module. */
lg_tensor *lg_batchnorm_forward(lg_ctx *ctx, const lg_batchnorm *bn, lg_tensor *x);

typedef struct lg_layernorm {
    lg_tensor *weight, *bias; /* normalized_shape, NULL without affine */
    int nnorm;
    int64_t normalized_shape[LG_MAX_DIMS];
    double eps;
} lg_layernorm;
/* nn.LayerNorm over the trailing nnorm dims of shape normalized_shape. */
lg_layernorm *lg_layernorm_new(lg_ctx *ctx, const char *name, int nnorm,
                               const int64_t *normalized_shape, const lg_norm_layer_opts *o);
lg_tensor *lg_layernorm_forward(lg_ctx *ctx, const lg_layernorm *ln, lg_tensor *x);

typedef struct lg_groupnorm {
    lg_tensor *weight, *bias; /* [C], NULL without affine */
    int64_t num_groups, num_channels;
    double eps;
} lg_groupnorm;
/* nn.GroupNorm: num_groups must divide num_channels. */
lg_groupnorm *lg_groupnorm_new(lg_ctx *ctx, const char *name, int64_t num_groups,
                               int64_t num_channels, const lg_norm_layer_opts *o);
lg_tensor *lg_groupnorm_forward(lg_ctx *ctx, const lg_groupnorm *gn, lg_tensor *x);

/* ------------------------------------------------------------------ */
/* Attention layers                                                     */
/* ------------------------------------------------------------------ */

typedef struct lg_mha {
    lg_tensor *in_proj_weight;  /* [3E, E]: the q, k, v projections' rows, in that order */
    lg_tensor *in_proj_bias;    /* [3E], NULL without bias */
    lg_tensor *out_proj_weight; /* [E, E], named "<name>.out_proj.weight" */
    lg_tensor *out_proj_bias;   /* [E], NULL without bias */
    int64_t embed_dim, num_heads;
    bool batch_first;
    double dropout;
} lg_mha;
typedef struct lg_mha_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_dtype dtype;
    bool no_bias;     /* PyTorch's bias=False */
    bool batch_first; /* [N, L, E] instead of [L, N, E] */
    double dropout;   /* on the attention weights, training mode only; [0, 1) */
} lg_mha_opts;
lg_mha_opts lg_mha_opts_default(void);
/* nn.MultiheadAttention (kdim = vdim = embed_dim, need_weights=False):
 * parameters "<name>.in_proj_weight", "<name>.in_proj_bias",
 * "<name>.out_proj.weight", "<name>.out_proj.bias", initialised as PyTorch
 * (xavier_uniform in_proj, zero biases, out_proj U(+-1/sqrt(E))).
 * num_heads must divide embed_dim. */
lg_mha *lg_mha_new(lg_ctx *ctx, const char *name, int64_t embed_dim, int64_t num_heads,
                   const lg_mha_opts *o);

typedef struct lg_mha_masks {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    /* [N, S] ([S] unbatched): int64 0/1, 1 = ignore that key (PyTorch's
     * bool), or float, added */
    lg_tensor *key_padding_mask;
    /* [L, S]: int64 0/1, 1 = may NOT attend (PyTorch's bool attn_mask for
     * this module), or float, added */
    lg_tensor *attn_mask;
    bool is_causal; /* query i attends keys j <= i; not with attn_mask */
} lg_mha_masks;
lg_mha_masks lg_mha_masks_default(void);
/* query [L, N, E] (batch_first: [N, L, E]; unbatched [L, E]), key and
 * value [S, N, E] likewise -> the attention output of query's shape.
 * Passing one tensor as all three is self-attention (one projection).
 * masks may be NULL. A query whose every key is masked gives NaN, as
 * PyTorch 1.13. */
lg_tensor *lg_mha_forward(lg_ctx *ctx, const lg_mha *m, lg_tensor *query, lg_tensor *key,
                          lg_tensor *value, const lg_mha_masks *masks);

typedef struct lg_encoder_layer {
    lg_mha *self_attn;
    lg_linear *linear1, *linear2; /* d_model -> dim_feedforward -> d_model */
    lg_layernorm *norm1, *norm2;
    double dropout;
    bool norm_first;
    lg_activation activation;
} lg_encoder_layer;
typedef struct lg_encoder_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_dtype dtype;
    int64_t dim_feedforward;  /* (non-zero default) 2048 */
    double dropout;           /* (non-zero default) 0.1; [0, 1) */
    lg_activation activation; /* LG_ACT_RELU (the default) or LG_ACT_GELU */
    double layer_norm_eps;    /* (non-zero default) 1e-5 */
    bool batch_first;
    bool norm_first; /* pre-norm: x + f(norm(x)); else post-norm: norm(x + f(x)) */
} lg_encoder_opts;
lg_encoder_opts lg_encoder_opts_default(void);
/* nn.TransformerEncoderLayer as a composition: "<name>.self_attn.*",
 * "<name>.linear1.*", "<name>.linear2.*", "<name>.norm1.*", "<name>.norm2.*"
 * (PyTorch's names). Dropout after attention, inside and after the
 * feed-forward block, in training mode only. */
lg_encoder_layer *lg_encoder_layer_new(lg_ctx *ctx, const char *name, int64_t d_model,
                                       int64_t nhead, const lg_encoder_opts *o);
/* x as lg_mha_forward's query; masks (src_mask, src_key_padding_mask,
 * causal) may be NULL. */
lg_tensor *lg_encoder_layer_forward(lg_ctx *ctx, const lg_encoder_layer *l, lg_tensor *x,
                                    const lg_mha_masks *masks);

/* ------------------------------------------------------------------ */
/* Recurrent networks: RNN (tanh or relu), GRU, LSTM                    */
/* ------------------------------------------------------------------ */

typedef enum lg_rnn_kind { LG_RNN_TANH = 0, LG_RNN_RELU, LG_GRU, LG_LSTM } lg_rnn_kind;

typedef struct lg_rnn_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_dtype dtype;
    int num_layers; /* (non-zero default) 1; >= 1 */
    bool bidirectional;
    bool no_bias;     /* PyTorch's bias=False */
    bool batch_first; /* x and output [N, T, F] instead of [T, N, F] (h0, h_n unchanged) */
    /* dropout on every layer's output except the last's, in training mode
     * only (lg_ctx_training), as PyTorch; in [0, 1], default 0 */
    double dropout;
    /* LSTM only: h projected to proj_size features by weight_hr_l<k>
     * [proj_size, H]; 0 (the default) for none; 0 <= proj_size < hidden_size */
    int64_t proj_size;
} lg_rnn_opts;
lg_rnn_opts lg_rnn_opts_default(void);

typedef struct lg_rnn lg_rnn;

/* PyTorch's layout and names per layer k (suffix "_reverse" for the
 * backward direction): weight_ih_l<k> [G H, in_k], weight_hh_l<k> [G H, P],
 * bias_ih_l<k>, bias_hh_l<k> [G H], and with proj_size weight_hr_l<k>
 * [P, H], G = 1 (RNN), 3 (GRU: r, z, n), 4 (LSTM: i, f, g, o); P =
 * proj_size if set, else H; in_0 = input_size, later in_k = D P.
 * Initialised U(+-1/sqrt(H)) as PyTorch (weight_hr included). */
lg_rnn *lg_rnn_new(lg_ctx *ctx, const char *name, lg_rnn_kind kind, int64_t input_size,
                   int64_t hidden_size, const lg_rnn_opts *o);

typedef struct lg_rnn_result {
    lg_tensor *output; /* [T, N, D P] ([N, T, D P] batch_first, [T, D P] unbatched);
                        * zeros at t >= lengths[b] */
    lg_tensor *h_n;    /* [L D, N, P] ([L D, P] unbatched): each sample's last valid state */
    lg_tensor *c_n;    /* LSTM only: [L D, N, H] ([L D, H] unbatched) */
} lg_rnn_result;

/* Runs the network over x [T, N, input_size] ([N, T, input_size] with
 * batch_first; or unbatched [T, input_size], whatever batch_first, as
 * PyTorch). lengths: NULL (every sample has T steps) or int64 [N] in
 * [1, T] (batched x only); steps t >= lengths[b] neither change sample b's
 * state nor receive gradient, and the reverse direction starts at each
 * sample's last valid step (PyTorch's packed sequences). h0: NULL (zeros)
 * or [L D, N, P] ([L D, P] for unbatched x); c0 (LSTM only, LG_ERR_VALUE
 * otherwise) likewise with H; T <= INT_MAX. In training mode with dropout, every layer's output but the
 * last's goes through lg_dropout. Built from primitives on the tape (each
 * GRU layer and direction is one lg_gru_sequence). */
lg_status lg_rnn_forward(lg_ctx *ctx, const lg_rnn *r, lg_tensor *x, lg_tensor *lengths,
                         lg_tensor *h0, lg_tensor *c0, lg_rnn_result *out);

/* The GRU cell's gates as one differentiable primitive (one step of
 * lg_gru_sequence): gi = x W_ih^T + b_ih and gh = h W_hh^T,
 * both [N, 3H] in PyTorch's r, z, n blocks; b_hh [3H] or NULL; h [N, H].
 * Returns h' = (1 - z) n + z h with r = s(gi_r + gh_r + b_r),
 * z = s(gi_z + gh_z + b_z), n = tanh(gi_n + r (gh_n + b_n)); gradients
 * flow to all four. */
lg_tensor *lg_gru_gates(lg_ctx *ctx, lg_tensor *gi, lg_tensor *gh, lg_tensor *b_hh, lg_tensor *h);

/* A GRU layer's recurrence over a whole sequence as one differentiable
 * primitive (what lg_rnn_forward uses for each GRU layer and direction):
 * xw [T, N, 3H] = x W_ih^T + b_ih for every step, w_hh [3H, H], b_hh [3H]
 * or NULL, h0 [N, H] or NULL (zeros), lengths int64 [N] in [1, T] or NULL
 * (all T). Runs t = 0 .. T-1, or T-1 .. 0 if reverse, with
 * h <- lg_gru_gates(xw[t], h W_hh^T, b_hh, h), leaving a sample's h
 * unchanged at steps t >= lengths[b]. Returns [T, N, H]: h after step t
 * (so the final state is row T-1, or row 0 if reverse; past a sample's
 * length, its carried state, not zeros). Gradients flow to xw, w_hh, b_hh
 * and h0, none through the skipped steps; lengths is read at the call. */
lg_tensor *lg_gru_sequence(lg_ctx *ctx, lg_tensor *xw, lg_tensor *w_hh, lg_tensor *b_hh,
                           lg_tensor *h0, lg_tensor *lengths, bool reverse);

/* Optimizers, clipping and schedules: lossgrad/optim.h. */
#include "optim.h"

/* ------------------------------------------------------------------ */
/* Checkpoints: safetensors files                                       */
/* ------------------------------------------------------------------ */

/* Writes every parameter of the ctx by name (and, if opt is not NULL, the
 * optimizer's state as "__optim__.<param>.<slot>" tensors and its step
 * count (LBFGS's flat state under its first parameter), every group's lr and momentum or beta1, and the state of every
 * schedule made on opt (lg_sched_new; a composite's children within it) in
 * the metadata, so a resumed scheduled run is the same bits) to path,
 * atomically: a temporary file in
 * the same folder is written, fsync'ed and renamed over path, so a crash
 * never leaves a half-written checkpoint, and the temporary files of
 * earlier crashed saves of path are removed. A new file gets mode
 * 0666 & ~umask (as fopen would), a replaced one keeps its mode; a
 * symbolic link is written through to its target (a link to nothing is
 * LG_ERR_IO); a FIFO, device or directory at path is LG_ERR_IO and left
 * untouched. Data is little-endian; numbers in the metadata are written in
 * the C locale. A parameter or buffer without a name, two of one name, or
 * a name beginning "__optim__" or "__metadata__" is LG_ERR_VALUE.
 * docs/checkpoints.md has the details. */
lg_status lg_checkpoint_save(lg_ctx *ctx, const char *path, const lg_optim *opt);
/* Reads path and, only if everything checks out, writes the values into the
 * ctx's parameters (and the optimizer's state: the file's state replaces
 * opt's, as PyTorch's load_state_dict, and state the file lacks restarts
 * from zero; the file's schedule states go to the schedules made on opt, in
 * the order they were made, which must be as many and of the same kinds
 * and group counts: make them before loading). Checked: a regular file (a FIFO or device is refused without
 * blocking), its size exactly 8 + header + the tensors the header names
 * (no trailing bytes, no gaps), the header JSON (no repeated keys, no NUL or
 * control characters in names, only spaces after it), dtypes, shapes
 * against the model, offsets, every parameter present, and every metadata
 * value (the RNG state: 64 hex digits, not all zero; the spare normal
 * finite; lr finite and >= 0; step counts in [0, 2^53], one per optimized
 * parameter; the optimizer kind opt's). On any error nothing is changed and
 * the message says what is wrong ("lg_checkpoint_load: path '...': ...";
 * LG_ERR_IO, LG_ERR_VALUE, LG_ERR_SHAPE, LG_ERR_DTYPE, LG_ERR_OOM). Memory:
 * only the tensors that are written are read, into scratch memory freed
 * before return. */
lg_status lg_checkpoint_load(lg_ctx *ctx, const char *path, lg_optim *opt);

/* Several optimizers in one checkpoint (a GAN's generator and critic, say):
 * lg_checkpoint_save with the state of opts[0..nopts) (nopts >= 0; 0 saves
 * the parameters only), each with its groups and schedules. opts[0]'s keys
 * are those lg_checkpoint_save writes; opts[k], k >= 1, has its own
 * ("__optim__#k.<param>.<slot>", "optim#k", "sched#k.<j>", ...; the
 * metadata "optims" gives the count), so a parameter may be in several.
 * A NULL opts[k], one optimizer given twice, one of another ctx or an
 * LG_LBFGS one is an error (LG_ERR_NULL / LG_ERR_VALUE) and writes nothing. */
lg_status lg_checkpoint_save_optims(lg_ctx *ctx, const char *path, lg_optim *const *opts,
                                    int nopts);
/* lg_checkpoint_load of a file of several optimizers: opts[0..nopts) take
 * the file's optimizers in the order they were saved, each checked as
 * lg_checkpoint_load checks opt (kind, groups, schedules), and the file
 * must hold exactly nopts of them; nopts = 0 loads the parameters only
 * (what lg_checkpoint_load(ctx, path, NULL) does with any file). All or
 * nothing: on an error no parameter, optimizer, schedule or the RNG
 * changes. lg_checkpoint_load with one opt loads a file of one optimizer. */
lg_status lg_checkpoint_load_optims(lg_ctx *ctx, const char *path, lg_optim *const *opts,
                                    int nopts);

#ifdef __cplusplus
}
#endif
#endif
