/* bench_losses: lossgrad's side of the PyTorch comparison (bench/run.sh).
 *
 * Every loss at a small and (for the guide's losses) a large size, forward
 * plus backward in float32, whole training steps, and the layer cases
 * (conv2d, batch/layer norm, max pooling, the fashion_cnn step, causal
 * self-attention, a small transformer's step; issue 16), and the MLP's
 * gradient and Hessian-vector product with respect to its parameters
 * (grad/, hvp/, hvp_functional/; issue 17):
 * a layer's loss is sum(layer(inputs) * u), u a fixed random upstream
 * gradient, so backward sends u through the layer. The cases, their
 * shapes and the timing rule are the same as bench/bench_torch.py's:
 *
 *   iteration = build the loss from the case's inputs, backward, end the step
 *   batch     = k iterations, k the smallest power of two taking >= 5 ms
 *   result    = median over >= 7 batches and >= 0.25 s of time per iteration
 *
 * Inputs are made once (persistent), outside the timing; inputs that are
 * differentiated are fresh leaves over them each iteration, so their
 * gradients are new step tensors, like PyTorch's x.grad = None.
 *
 *   bench_losses [--threads T] [--filter S] [--list] [--memory CASE] [--busy]
 *
 * --filter S keeps the cases whose name contains S, =NAME the case NAME;
 * S may list alternatives split by '|' ("conv2d/|step/cnn").
 * Prints "KERNEL <openblas core>", "COPY_GBS <STREAM copy GB/s>" and one line
 * "CASE <name> <seconds per iteration> <iterations>" per case; --memory
 * prints "MEMORY <name> <peak RSS growth bytes> <arena high water bytes>"
 * after 5 iterations of one case. --busy runs the cases beside a process
 * spinning on one core (a machine that is not idle).
 */
#include <lossgrad.h>

#include "timing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

enum { MAXF = 4, MAXI = 4 };

/* How a float input is filled. */
typedef enum fill {
    RANDN,   /* N(0, 1) */
    UNIT,    /* U(0.05, 0.95): probabilities */
    BINARY,  /* 0 or 1 */
    PM1,     /* -1 or 1 */
    LOGSM,   /* rows of log_softmax over the last dim */
    SOFTMAX, /* rows of softmax over the last dim */
    POS,     /* U(0.5, 2): rates, variances */
} fill;

typedef struct fspec {
    int nd;
    int64_t shape[4];
    fill fill;
    bool grad;
} fspec;

/* How an int64 input is filled: uniform in [lo, hi), or the constant lo. */
typedef struct ispec {
    int nd;
    int64_t shape[2];
    int64_t lo, hi;
    bool constant;
} ispec;

typedef struct state state;
typedef lg_tensor *(*loss_fn)(lg_ctx *ctx, state *s, lg_tensor **f, lg_tensor **i);

typedef struct bcase {
    const char *name;
    loss_fn fn;
    int nf, ni;
    fspec f[MAXF];
    ispec i[MAXI];
    int train; /* 0: a loss; otherwise the training step it is (T_OPTIM + O_*: an optimizer's) */
} bcase;

struct state {
    lg_tensor *f[MAXF]; /* persistent float inputs (parameters) */
    int64_t *i[MAXI];   /* int64 inputs, copied into a step tensor each iteration */
    lg_linear *lin;
    lg_mlp *mlp;
    lg_rnn *rnn;
    lg_optim *opt;
    lg_tensor *stats[2]; /* batch_norm's running mean and variance (buffers) */
    lg_conv *conv[2];    /* step/cnn's model */
    lg_batchnorm *bn[2];
    lg_mha *mha;               /* attention/... */
    lg_embedding *emb[2];      /* step/transformer: tokens, positions */
    lg_encoder_layer *enc[2];  /* step/transformer's two pre-norm layers */
    lg_layernorm *ln;          /* step/transformer's final norm */
    lg_tensor *ps[4], *v[4];   /* grad/ and hvp/: the MLP's parameters, fixed directions */
};

/* ------------------------------------------------------------------ */
/* Losses                                                               */
/* ------------------------------------------------------------------ */

#define MEAN NULL
static lg_tensor *l1(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_l1_loss(c, f[0], f[1], MEAN);
}
static lg_tensor *mse(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_mse_loss(c, f[0], f[1], MEAN);
}
static lg_tensor *quantile(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_quantile_loss(c, f[0], f[1], MEAN);
}
static lg_tensor *smooth_l1(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_smooth_l1_loss(c, f[0], f[1], MEAN);
}
static lg_tensor *huber(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_huber_loss(c, f[0], f[1], MEAN);
}
static lg_tensor *kl(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_kl_div(c, f[0], f[1], &(lg_kl_div_opts){ .reduction = LG_REDUCTION_BATCHMEAN });
}
static lg_tensor *nll(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s;
    return lg_nll_loss(c, f[0], i[0], NULL);
}
static lg_tensor *ce(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s;
    return lg_cross_entropy(c, f[0], i[0], NULL);
}
static lg_tensor *poly1(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s;
    return lg_poly1_loss(c, f[0], i[0], NULL);
}
static lg_tensor *bce(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_binary_cross_entropy(c, f[0], f[1], NULL);
}
static lg_tensor *bce_logits(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_binary_cross_entropy_with_logits(c, f[0], f[1], NULL);
}
static lg_tensor *mlsm(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_multilabel_soft_margin_loss(c, f[0], f[1], NULL);
}
static lg_tensor *hinge(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_hinge_embedding_loss(c, f[0], f[1], NULL);
}
static lg_tensor *triplet(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_triplet_margin_loss(c, f[0], f[1], f[2], NULL);
}
static lg_tensor *ctc(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s;
    return lg_ctc_loss(c, f[0], i[0], i[1], i[2], NULL);
}
static lg_tensor *poisson(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_poisson_nll_loss(c, f[0], f[1], NULL);
}
static lg_tensor *gaussian(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_gaussian_nll_loss(c, f[0], f[1], f[2], NULL);
}
static lg_tensor *ranking(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_margin_ranking_loss(c, f[0], f[1], f[2], NULL);
}
static lg_tensor *multi_margin(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s;
    return lg_multi_margin_loss(c, f[0], i[0], NULL);
}
static lg_tensor *multilabel_margin(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s;
    return lg_multilabel_margin_loss(c, f[0], i[0], NULL);
}
static lg_tensor *soft_margin(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_soft_margin_loss(c, f[0], f[1], NULL);
}
static lg_tensor *cosine(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_cosine_embedding_loss(c, f[0], f[1], f[2], NULL);
}
static lg_tensor *triplet_distance(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_triplet_margin_with_distance_loss(c, f[0], f[1], f[2], NULL);
}
static lg_tensor *focal(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_sigmoid_focal_loss(
        c, f[0], f[1],
        &(lg_focal_opts){ .reduction = LG_REDUCTION_MEAN, .alpha = 0.25, .gamma = 2 });
}
static lg_tensor *dice(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_dice_loss(c, f[0], f[1],
                        &(lg_dice_opts){ .activation = LG_DICE_SOFTMAX, .smooth = 1 });
}
static lg_tensor *contrastive(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_contrastive_loss(c, f[0], f[1], f[2], NULL);
}
static lg_tensor *nt_xent(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return lg_nt_xent_loss(c, f[0], f[1], NULL);
}

/* ------------------------------------------------------------------ */
/* Layers: loss = sum(layer(x) * u), u the last input (no gradient)     */
/* ------------------------------------------------------------------ */

static lg_tensor *against(lg_ctx *c, lg_tensor *y, lg_tensor *u)
{
    return lg_sum(c, lg_mul(c, y, u), 0, NULL, false);
}
static lg_tensor *conv2d_pad1(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    lg_conv_opts o = lg_conv_opts_default();
    o.padding = 1;
    return against(c, lg_conv2d(c, f[0], f[1], f[2], &o), f[3]);
}
static lg_tensor *batch_norm_train(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)i;
    lg_tensor *y = lg_batch_norm(c, f[0], s->stats[0], s->stats[1], f[1], f[2], true, 0.1, 1e-5);
    return against(c, y, f[3]);
}
static lg_tensor *layer_norm_last(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    const int64_t last = lg_tensor_dim(f[0], 1);
    return against(c, lg_layer_norm(c, f[0], 1, &last, f[1], f[2], 1e-5), f[3]);
}
static lg_tensor *max_pool2d_k2(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    return against(c, lg_max_pool2d(c, f[0], 2, 2, NULL, NULL), f[1]);
}

/* self-attention x -> x, causal, batch first; gradients of x and the
 * module's parameters */
static lg_tensor *attention_causal(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)i;
    lg_mha_masks m = lg_mha_masks_default();
    m.is_causal = true;
    return against(c, lg_mha_forward(c, s->mha, f[0], f[0], f[0], &m), f[1]);
}

/* ------------------------------------------------------------------ */
/* Training steps: forward, loss, backward, optimizer step              */
/* ------------------------------------------------------------------ */

static lg_tensor *train_softmax(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    return lg_cross_entropy(c, lg_linear_forward(c, s->lin, f[0]), i[0], NULL);
}
static lg_tensor *train_mlp(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    return lg_cross_entropy(c, lg_mlp_forward(c, s->mlp, f[0]), i[0], NULL);
}
static lg_tensor *train_siamese(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)i;
    return lg_triplet_margin_loss(c, lg_mlp_forward(c, s->mlp, f[0]),
                                  lg_mlp_forward(c, s->mlp, f[1]), lg_mlp_forward(c, s->mlp, f[2]),
                                  NULL);
}
static lg_tensor *train_gru_ctc(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    lg_rnn_result r;
    if (lg_rnn_forward(c, s->rnn, f[0], NULL, NULL, NULL, &r) != LG_OK)
        return NULL;
    lg_tensor *lp = lg_log_softmax(c, lg_linear_forward(c, s->lin, r.output), 2);
    return lg_ctc_loss(c, lp, i[0], i[1], i[2], NULL);
}

/* examples/cnn/fashion_cnn.c's model: conv 3x3 (32) -> max pool 2 ->
 * batch norm -> ReLU -> conv 3x3 (64) -> max pool 2 -> batch norm -> ReLU
 * -> dropout 0.3 -> linear 3136 -> 10, in training mode */
static lg_tensor *train_cnn(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    lg_tensor *h = f[0];
    for (int k = 0; k < 2; k++) {
        h = lg_max_pool2d(c, lg_conv_forward(c, s->conv[k], h), 2, 2, NULL, NULL);
        h = lg_relu(c, lg_batchnorm_forward(c, s->bn[k], h));
    }
    h = lg_dropout(c, lg_reshape(c, h, 2, (int64_t[]){ lg_tensor_dim(h, 0), 64 * 7 * 7 }), 0.3);
    return lg_cross_entropy(c, lg_linear_forward(c, s->lin, h), i[0], NULL);
}

/* a small decoder-only transformer: token + position embeddings, two
 * pre-norm encoder layers (E 128, 4 heads, ff 512, GELU, causal, dropout
 * 0), final layer norm, linear head 128 -> 96, cross-entropy on the
 * next-token targets i[1] (tokens i[0] shifted by one); AdamW */
static lg_tensor *train_transformer(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)f;
    const int64_t n = lg_tensor_dim(i[0], 0), t = lg_tensor_dim(i[0], 1);
    lg_tensor *h = lg_add(c, lg_embedding_forward(c, s->emb[0], i[0]),
                          lg_embedding_forward(c, s->emb[1], lg_arange(c, LG_I64, 0, (double)t, 1)));
    lg_mha_masks m = lg_mha_masks_default();
    m.is_causal = true;
    for (int k = 0; k < 2; k++)
        h = lg_encoder_layer_forward(c, s->enc[k], h, &m);
    lg_tensor *logits = lg_linear_forward(c, s->lin, lg_layernorm_forward(c, s->ln, h));
    return lg_cross_entropy(c, lg_reshape(c, logits, 2, (int64_t[]){ n * t, 96 }),
                            lg_reshape(c, i[1], 1, (int64_t[]){ n * t }), NULL);
}

/* the BLAS limit of the MLP step: its six matrix products alone */
static lg_tensor *mlp_matmuls(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    lg_tensor *x = f[0], *w1 = f[1], *w2 = f[2], *g2 = f[3];
    lg_tensor *h = lg_matmul_t(c, x, w1, false, true);    /* [128,256] */
    lg_tensor *o = lg_matmul_t(c, h, w2, false, true);    /* [128,10] */
    lg_tensor *dh = lg_matmul_t(c, g2, w2, false, false); /* [128,256] */
    lg_tensor *dw2 = lg_matmul_t(c, g2, h, true, false);  /* [10,256] */
    lg_tensor *dw1 = lg_matmul_t(c, dh, x, true, false);  /* [256,784] */
    lg_tensor *dx = lg_matmul_t(c, dh, w1, false, false); /* [128,784] */
    (void)o, (void)dw2, (void)dw1, (void)dx;
    return NULL;
}

/* a lower bound of the GRU step's BLAS time: its recurrent matrix products
 * alone, per time step h W_hh^T, dG W_hh and dG^T h (28 x 3) */
static lg_tensor *gru_matmuls(lg_ctx *c, state *s, lg_tensor **f, lg_tensor **i)
{
    (void)s, (void)i;
    lg_tensor *h = f[0], *w = f[1], *dg = f[2];
    for (int t = 0; t < 28; t++) {
        lg_tensor *gh = lg_matmul_t(c, h, w, false, true);   /* [64,384] */
        lg_tensor *dh = lg_matmul_t(c, dg, w, false, false); /* [64,128] */
        lg_tensor *dw = lg_matmul_t(c, dg, h, true, false);  /* [384,128] */
        (void)gh, (void)dh, (void)dw;
    }
    return NULL;
}

enum {
    T_NONE,
    T_SOFTMAX,
    T_MLP,
    T_SIAMESE,
    T_GRU,
    T_MATMULS,
    T_CNN,
    T_ATTN,
    T_TRANSFORMER,
    T_GRAD, /* the MLP's loss and its gradient (lg_grad), no optimizer */
    T_HVP,  /* the MLP's loss and H v (lg_hvp) for fixed directions v */
    T_OPTIM
};

/* The optimizer cases: one step over a parameter whose gradient is fixed,
 * in PyTorch's default configurations (bench_torch.py has the same). */
enum { O_SGD, O_SGD_MOMENTUM, O_ADAM, O_ADAMW, O_RMSPROP, O_RMSPROP_CENTERED_MOMENTUM };

static lg_optim_opts optim_config(int which)
{
    static const lg_optim_kind kinds[] = { LG_SGD,   LG_SGD,     LG_ADAM,
                                           LG_ADAMW, LG_RMSPROP, LG_RMSPROP };
    lg_optim_opts o = lg_optim_opts_default(kinds[which]);
    if (which == O_SGD || which == O_SGD_MOMENTUM)
        o.lr = 0.01;
    if (which == O_SGD_MOMENTUM || which == O_RMSPROP_CENTERED_MOMENTUM)
        o.momentum = 0.9;
    if (which == O_RMSPROP_CENTERED_MOMENTUM)
        o.centered = true;
    return o;
}

#define F1(n, f, g)                                                                                \
    {                                                                                              \
        1, { n }, f, g                                                                             \
    }
#define F2(a, b, f, g)                                                                             \
    {                                                                                              \
        2, { a, b }, f, g                                                                          \
    }
#define F3(a, b, c, f, g)                                                                          \
    {                                                                                              \
        3, { a, b, c }, f, g                                                                       \
    }
#define F4(a, b, c, d, f, g)                                                                       \
    {                                                                                              \
        4, { a, b, c, d }, f, g                                                                    \
    }
#define I1(n, lo, hi)                                                                              \
    {                                                                                              \
        1, { n }, lo, hi, false                                                                    \
    }
#define I2(a, b, lo, hi)                                                                           \
    {                                                                                              \
        2, { a, b }, lo, hi, false                                                                 \
    }
#define IC(n, v)                                                                                   \
    {                                                                                              \
        1, { n }, v, v, true                                                                       \
    }

static const bcase cases[] = {
    /* the guide's losses, small */
    { "l1_loss/64", l1, 2, 0, { F1(64, RANDN, 1), F1(64, RANDN, 0) }, { { 0 } }, 0 },
    { "mse_loss/64", mse, 2, 0, { F1(64, RANDN, 1), F1(64, RANDN, 0) }, { { 0 } }, 0 },
    { "smooth_l1_loss/64", smooth_l1, 2, 0, { F1(64, RANDN, 1), F1(64, RANDN, 0) }, { { 0 } }, 0 },
    { "quantile_loss/64", quantile, 2, 0, { F1(64, RANDN, 1), F1(64, RANDN, 0) }, { { 0 } }, 0 },
    { "huber_loss/64", huber, 2, 0, { F1(64, RANDN, 1), F1(64, RANDN, 0) }, { { 0 } }, 0 },
    { "kl_div/8x10", kl, 2, 0, { F2(8, 10, LOGSM, 1), F2(8, 10, SOFTMAX, 0) }, { { 0 } }, 0 },
    { "nll_loss/8x10", nll, 1, 1, { F2(8, 10, LOGSM, 1) }, { I1(8, 0, 10) }, 0 },
    { "cross_entropy/8x10", ce, 1, 1, { F2(8, 10, RANDN, 1) }, { I1(8, 0, 10) }, 0 },
    { "poly1_loss/8x10", poly1, 1, 1, { F2(8, 10, RANDN, 1) }, { I1(8, 0, 10) }, 0 },
    { "binary_cross_entropy/8x10",
      bce,
      2,
      0,
      { F2(8, 10, UNIT, 1), F2(8, 10, BINARY, 0) },
      { { 0 } },
      0 },
    { "bce_with_logits/8x10",
      bce_logits,
      2,
      0,
      { F2(8, 10, RANDN, 1), F2(8, 10, BINARY, 0) },
      { { 0 } },
      0 },
    { "multilabel_soft_margin/8x10",
      mlsm,
      2,
      0,
      { F2(8, 10, RANDN, 1), F2(8, 10, BINARY, 0) },
      { { 0 } },
      0 },
    { "hinge_embedding/64", hinge, 2, 0, { F1(64, POS, 1), F1(64, PM1, 0) }, { { 0 } }, 0 },
    { "triplet_margin/8x10",
      triplet,
      3,
      0,
      { F2(8, 10, RANDN, 1), F2(8, 10, RANDN, 1), F2(8, 10, RANDN, 1) },
      { { 0 } },
      0 },
    { "ctc_loss/T10N2C5S3",
      ctc,
      1,
      3,
      { F3(10, 2, 5, LOGSM, 1) },
      { I2(2, 3, 1, 5), IC(2, 10), IC(2, 3) },
      0 },
    /* the other losses, small */
    { "poisson_nll/64", poisson, 2, 0, { F1(64, RANDN, 1), F1(64, POS, 0) }, { { 0 } }, 0 },
    { "gaussian_nll/8x8",
      gaussian,
      3,
      0,
      { F2(8, 8, RANDN, 1), F2(8, 8, RANDN, 0), F2(8, 8, POS, 1) },
      { { 0 } },
      0 },
    { "margin_ranking/64",
      ranking,
      3,
      0,
      { F1(64, RANDN, 1), F1(64, RANDN, 1), F1(64, PM1, 0) },
      { { 0 } },
      0 },
    { "multi_margin/8x10", multi_margin, 1, 1, { F2(8, 10, RANDN, 1) }, { I1(8, 0, 10) }, 0 },
    { "multilabel_margin/8x10",
      multilabel_margin,
      1,
      1,
      { F2(8, 10, RANDN, 1) },
      { I2(8, 10, -1, 10) },
      0 },
    { "soft_margin/64", soft_margin, 2, 0, { F1(64, RANDN, 1), F1(64, PM1, 0) }, { { 0 } }, 0 },
    { "cosine_embedding/8x10",
      cosine,
      3,
      0,
      { F2(8, 10, RANDN, 1), F2(8, 10, RANDN, 1), F1(8, PM1, 0) },
      { { 0 } },
      0 },
    { "triplet_with_distance/8x10",
      triplet_distance,
      3,
      0,
      { F2(8, 10, RANDN, 1), F2(8, 10, RANDN, 1), F2(8, 10, RANDN, 1) },
      { { 0 } },
      0 },
    { "sigmoid_focal/8x10",
      focal,
      2,
      0,
      { F2(8, 10, RANDN, 1), F2(8, 10, BINARY, 0) },
      { { 0 } },
      0 },
    { "dice/2x4x4x4",
      dice,
      2,
      0,
      { { 4, { 2, 4, 4, 4 }, RANDN, 1 }, { 4, { 2, 4, 4, 4 }, BINARY, 0 } },
      { { 0 } },
      0 },
    { "contrastive/8x10",
      contrastive,
      3,
      0,
      { F2(8, 10, RANDN, 1), F2(8, 10, RANDN, 1), F1(8, BINARY, 0) },
      { { 0 } },
      0 },
    { "nt_xent/8x10", nt_xent, 2, 0, { F2(8, 10, RANDN, 1), F2(8, 10, RANDN, 1) }, { { 0 } }, 0 },
    /* large */
    { "l1_loss/1M", l1, 2, 0, { F1(1048576, RANDN, 1), F1(1048576, RANDN, 0) }, { { 0 } }, 0 },
    { "mse_loss/1M", mse, 2, 0, { F1(1048576, RANDN, 1), F1(1048576, RANDN, 0) }, { { 0 } }, 0 },
    { "quantile_loss/1M", quantile, 2, 0, { F1(1048576, RANDN, 1), F1(1048576, RANDN, 0) }, { { 0 } },
      0 },
    { "smooth_l1_loss/1M",
      smooth_l1,
      2,
      0,
      { F1(1048576, RANDN, 1), F1(1048576, RANDN, 0) },
      { { 0 } },
      0 },
    { "huber_loss/1M",
      huber,
      2,
      0,
      { F1(1048576, RANDN, 1), F1(1048576, RANDN, 0) },
      { { 0 } },
      0 },
    { "hinge_embedding/1M",
      hinge,
      2,
      0,
      { F1(1048576, POS, 1), F1(1048576, PM1, 0) },
      { { 0 } },
      0 },
    { "cross_entropy/4096x1000", ce, 1, 1, { F2(4096, 1000, RANDN, 1) }, { I1(4096, 0, 1000) }, 0 },
    { "poly1_loss/4096x1000", poly1, 1, 1, { F2(4096, 1000, RANDN, 1) }, { I1(4096, 0, 1000) }, 0 },
    { "nll_loss/4096x1000", nll, 1, 1, { F2(4096, 1000, LOGSM, 1) }, { I1(4096, 0, 1000) }, 0 },
    { "kl_div/4096x1000",
      kl,
      2,
      0,
      { F2(4096, 1000, LOGSM, 1), F2(4096, 1000, SOFTMAX, 0) },
      { { 0 } },
      0 },
    { "binary_cross_entropy/4096x1000",
      bce,
      2,
      0,
      { F2(4096, 1000, UNIT, 1), F2(4096, 1000, BINARY, 0) },
      { { 0 } },
      0 },
    { "bce_with_logits/4096x1000",
      bce_logits,
      2,
      0,
      { F2(4096, 1000, RANDN, 1), F2(4096, 1000, BINARY, 0) },
      { { 0 } },
      0 },
    { "multilabel_soft_margin/4096x1000",
      mlsm,
      2,
      0,
      { F2(4096, 1000, RANDN, 1), F2(4096, 1000, BINARY, 0) },
      { { 0 } },
      0 },
    { "triplet_margin/4096x128",
      triplet,
      3,
      0,
      { F2(4096, 128, RANDN, 1), F2(4096, 128, RANDN, 1), F2(4096, 128, RANDN, 1) },
      { { 0 } },
      0 },
    { "ctc_loss/T50N64C20S10",
      ctc,
      1,
      3,
      { F3(50, 64, 20, LOGSM, 1) },
      { I2(64, 10, 1, 20), IC(64, 50), IC(64, 10) },
      0 },
    { "ctc_loss/T200N32C40S40",
      ctc,
      1,
      3,
      { F3(200, 32, 40, LOGSM, 1) },
      { I2(32, 40, 1, 40), IC(32, 200), IC(32, 40) },
      0 },
    /* training steps */
    { "train/softmax_784x10_b128",
      train_softmax,
      1,
      1,
      { F2(128, 784, RANDN, 0) },
      { I1(128, 0, 10) },
      T_SOFTMAX },
    { "train/mlp_784_256_10_b128",
      train_mlp,
      1,
      1,
      { F2(128, 784, RANDN, 0) },
      { I1(128, 0, 10) },
      T_MLP },
    { "train/mlp_matmuls_only",
      mlp_matmuls,
      4,
      0,
      { F2(128, 784, RANDN, 0), F2(256, 784, RANDN, 0), F2(10, 256, RANDN, 0),
        F2(128, 10, RANDN, 0) },
      { { 0 } },
      T_MATMULS },
    { "train/siamese_784_256_64_b128",
      train_siamese,
      3,
      0,
      { F2(128, 784, RANDN, 0), F2(128, 784, RANDN, 0), F2(128, 784, RANDN, 0) },
      { { 0 } },
      T_SIAMESE },
    { "train/gru_28_128_T28_b64_ctc",
      train_gru_ctc,
      1,
      3,
      { F3(28, 64, 28, RANDN, 0) },
      { I2(64, 5, 1, 11), IC(64, 28), IC(64, 5) },
      T_GRU },
    { "train/gru_matmuls_only",
      gru_matmuls,
      3,
      0,
      { F2(64, 128, RANDN, 0), F2(384, 128, RANDN, 0), F2(64, 384, RANDN, 0) },
      { { 0 } },
      T_MATMULS },
    /* layers (issue 16): float32, the upstream gradient u last */
    { "conv2d/64x1x28x28-32k3",
      conv2d_pad1,
      4,
      0,
      { F4(64, 1, 28, 28, RANDN, 1), F4(32, 1, 3, 3, RANDN, 1), F1(32, RANDN, 1),
        F4(64, 32, 28, 28, RANDN, 0) },
      { { 0 } },
      0 },
    { "conv2d/64x32x14x14-64k3",
      conv2d_pad1,
      4,
      0,
      { F4(64, 32, 14, 14, RANDN, 1), F4(64, 32, 3, 3, RANDN, 1), F1(64, RANDN, 1),
        F4(64, 64, 14, 14, RANDN, 0) },
      { { 0 } },
      0 },
    { "batch_norm/64x64x14x14",
      batch_norm_train,
      4,
      0,
      { F4(64, 64, 14, 14, RANDN, 1), F1(64, RANDN, 1), F1(64, RANDN, 1),
        F4(64, 64, 14, 14, RANDN, 0) },
      { { 0 } },
      0 },
    { "layer_norm/8192x512",
      layer_norm_last,
      4,
      0,
      { F2(8192, 512, RANDN, 1), F1(512, RANDN, 1), F1(512, RANDN, 1), F2(8192, 512, RANDN, 0) },
      { { 0 } },
      0 },
    { "max_pool2d/64x32x28x28-k2",
      max_pool2d_k2,
      2,
      0,
      { F4(64, 32, 28, 28, RANDN, 1), F4(64, 32, 14, 14, RANDN, 0) },
      { { 0 } },
      0 },
    { "step/cnn", train_cnn, 1, 1, { F4(64, 1, 28, 28, RANDN, 0) }, { I1(64, 0, 10) }, T_CNN },
    { "attention/32x128x128-h4-causal",
      attention_causal,
      2,
      0,
      { F3(32, 128, 128, RANDN, 1), F3(32, 128, 128, RANDN, 0) },
      { { 0 } },
      T_ATTN },
    { "step/transformer",
      train_transformer,
      0,
      2,
      { { 0 } },
      { I2(32, 128, 0, 96), I2(32, 128, 0, 96) },
      T_TRANSFORMER },
    /* second order (issue 17): the MLP of train/mlp_..., its cross-entropy's
     * gradient with respect to the four parameters, and the Hessian-vector
     * product along fixed random directions; PyTorch's hvp/ is double
     * backward, hvp_functional/ torch.autograd.functional.hvp (lossgrad
     * runs lg_hvp in both) */
    { "grad/mlp_784_256_10_b128",
      train_mlp,
      1,
      1,
      { F2(128, 784, RANDN, 0) },
      { I1(128, 0, 10) },
      T_GRAD },
    { "hvp/mlp_784_256_10_b128",
      train_mlp,
      1,
      1,
      { F2(128, 784, RANDN, 0) },
      { I1(128, 0, 10) },
      T_HVP },
    { "hvp_functional/mlp_784_256_10_b128",
      train_mlp,
      1,
      1,
      { F2(128, 784, RANDN, 0) },
      { I1(128, 0, 10) },
      T_HVP },
/* optimizer steps on 1M float32 parameters */
#define OPTIM_CASE(name, which)                                                                    \
    { name, NULL, 2, 0, { F1(1048576, RANDN, 0), F1(1048576, RANDN, 0) }, { { 0 } }, T_OPTIM + which }
    OPTIM_CASE("optim/sgd_1M", O_SGD),
    OPTIM_CASE("optim/sgd_momentum_1M", O_SGD_MOMENTUM),
    OPTIM_CASE("optim/adam_1M", O_ADAM),
    OPTIM_CASE("optim/adamw_1M", O_ADAMW),
    OPTIM_CASE("optim/rmsprop_1M", O_RMSPROP),
    OPTIM_CASE("optim/rmsprop_centered_momentum_1M", O_RMSPROP_CENTERED_MOMENTUM),
#undef OPTIM_CASE
};
enum { NCASES = sizeof cases / sizeof cases[0] };

/* ------------------------------------------------------------------ */
/* Harness                                                              */
/* ------------------------------------------------------------------ */

static void die(lg_ctx *ctx, const char *what)
{
    fprintf(stderr, "bench_losses: %s: %s\n", what, ctx ? lg_ctx_errmsg(ctx) : "out of memory");
    exit(1);
}

static void fill_rows(float *v, int64_t n, int64_t row, fill kind)
{
    for (int64_t r = 0; r < n / row; r++) {
        float *x = v + r * row, m = -INFINITY;
        double s = 0;
        for (int64_t j = 0; j < row; j++)
            m = x[j] > m ? x[j] : m;
        for (int64_t j = 0; j < row; j++)
            s += exp((double)(x[j] - m));
        for (int64_t j = 0; j < row; j++)
            x[j] = kind == LOGSM ? (float)(x[j] - m - log(s)) : (float)(exp(x[j] - m) / s);
    }
}

static void setup(lg_ctx *ctx, const bcase *c, state *s)
{
    memset(s, 0, sizeof *s);
    for (int k = 0; k < c->nf; k++) {
        const fspec f = c->f[k];
        const int64_t *shape = f.shape;
        lg_tensor *p = lg_param_new(ctx, NULL, LG_F32, f.nd, shape);
        if (!p)
            die(ctx, "param");
        float *v = lg_tensor_data(p);
        int64_t n = lg_tensor_numel(p), row = shape[f.nd - 1];
        lg_tensor *r = lg_randn(ctx, LG_F32, f.nd, shape);
        lg_tensor *u = lg_rand(ctx, LG_F32, f.nd, shape, 0, 1);
        if (!r || !u)
            die(ctx, "inputs");
        const float *rv = lg_tensor_data(r), *uv = lg_tensor_data(u);
        for (int64_t j = 0; j < n; j++) {
            switch (f.fill) {
            case UNIT: v[j] = 0.05f + 0.9f * uv[j]; break;
            case BINARY: v[j] = uv[j] < 0.5f ? 0.0f : 1.0f; break;
            case PM1: v[j] = uv[j] < 0.5f ? -1.0f : 1.0f; break;
            case POS: v[j] = 0.5f + 1.5f * uv[j]; break;
            default: v[j] = rv[j]; break;
            }
        }
        if (f.fill == LOGSM || f.fill == SOFTMAX)
            fill_rows(v, n, row, f.fill);
        lg_step_end(ctx);
        s->f[k] = p;
    }
    for (int k = 0; k < c->ni; k++) {
        ispec is = c->i[k];
        int64_t n = is.nd == 1 ? is.shape[0] : is.shape[0] * is.shape[1];
        int64_t *v = malloc((size_t)n * sizeof *v);
        for (int64_t j = 0; j < n; j++)
            v[j] = is.constant ? is.lo
                               : is.lo + (int64_t)lg_rand_below(ctx, (uint64_t)(is.hi - is.lo));
        if (c->fn == multilabel_margin) /* label lists: a few labels, then -1 */
            for (int64_t r = 0; r < is.shape[0]; r++)
                for (int64_t j = 0; j < is.shape[1]; j++)
                    v[r * is.shape[1] + j] = j < 3 ? (r + j * 3) % is.shape[1] : -1;
        s->i[k] = v;
    }
    if (c->train == T_TRANSFORMER) /* targets: the next token (the last one's stays random) */
        for (int64_t r = 0; r < c->i[0].shape[0]; r++)
            for (int64_t j = 0; j + 1 < c->i[0].shape[1]; j++)
                s->i[1][r * c->i[0].shape[1] + j] = s->i[0][r * c->i[0].shape[1] + j + 1];
    switch (c->train) {
    case T_SOFTMAX: s->lin = lg_linear_new(ctx, "fc", 784, 10, NULL); break;
    case T_MLP:
    case T_GRAD:
    case T_HVP: s->mlp = lg_mlp_new(ctx, "mlp", 3, (int64_t[]){ 784, 256, 10 }, NULL); break;
    case T_SIAMESE: s->mlp = lg_mlp_new(ctx, "mlp", 3, (int64_t[]){ 784, 256, 64 }, NULL); break;
    case T_GRU:
        s->rnn = lg_rnn_new(ctx, "gru", LG_GRU, 28, 128, NULL);
        s->lin = lg_linear_new(ctx, "out", 128, 11, NULL);
        break;
    case T_CNN: {
        lg_conv_opts pad1 = lg_conv_opts_default();
        pad1.padding = 1;
        s->conv[0] = lg_conv2d_new(ctx, "conv1", 1, 32, 3, 3, &pad1, NULL);
        s->conv[1] = lg_conv2d_new(ctx, "conv2", 32, 64, 3, 3, &pad1, NULL);
        s->bn[0] = lg_batchnorm_new(ctx, "bn1", 32, NULL);
        s->bn[1] = lg_batchnorm_new(ctx, "bn2", 64, NULL);
        s->lin = lg_linear_new(ctx, "fc", 64 * 7 * 7, 10, NULL);
        break;
    }
    case T_ATTN: {
        lg_mha_opts mo = lg_mha_opts_default();
        mo.batch_first = true;
        s->mha = lg_mha_new(ctx, "attn", 128, 4, &mo);
        break;
    }
    case T_TRANSFORMER: {
        lg_encoder_opts eo = lg_encoder_opts_default();
        eo.dim_feedforward = 512, eo.dropout = 0, eo.activation = LG_ACT_GELU;
        eo.batch_first = true, eo.norm_first = true;
        s->emb[0] = lg_embedding_new(ctx, "tok", 96, 128, NULL);
        s->emb[1] = lg_embedding_new(ctx, "pos", 128, 128, NULL);
        s->enc[0] = lg_encoder_layer_new(ctx, "layers.0", 128, 4, &eo);
        s->enc[1] = lg_encoder_layer_new(ctx, "layers.1", 128, 4, &eo);
        s->ln = lg_layernorm_new(ctx, "norm", 1, (int64_t[]){ 128 }, NULL);
        s->lin = lg_linear_new(ctx, "head", 128, 96, NULL);
        break;
    }
    default: break;
    }
    if (c->fn == batch_norm_train) { /* running statistics: mean 0, variance 1 */
        const int64_t ch = c->f[0].shape[1];
        s->stats[0] = lg_buffer_new(ctx, "running_mean", LG_F32, 1, &ch);
        s->stats[1] = lg_buffer_new(ctx, "running_var", LG_F32, 1, &ch);
        if (!s->stats[0] || !s->stats[1])
            die(ctx, "buffers");
        float *rv = lg_tensor_data(s->stats[1]);
        for (int64_t j = 0; j < ch; j++)
            rv[j] = 1;
    }
    if (c->train == T_GRAD || c->train == T_HVP) {
        for (int k = 0; k < 4; k++) {
            lg_tensor *p = s->mlp->layers[k / 2]->weight;
            p = k % 2 ? s->mlp->layers[k / 2]->bias : p;
            s->ps[k] = p;
            s->v[k] = lg_buffer_new(ctx, NULL, LG_F32, lg_tensor_ndim(p), lg_tensor_shape(p));
            lg_tensor *r = lg_randn(ctx, LG_F32, lg_tensor_ndim(p), lg_tensor_shape(p));
            if (!s->v[k] || !r)
                die(ctx, "directions");
            memcpy(lg_tensor_data(s->v[k]), lg_tensor_data(r),
                   (size_t)lg_tensor_numel(p) * sizeof(float));
            lg_step_end(ctx);
        }
    }
    if (c->train >= T_OPTIM) {
        /* f[0] the parameter, its gradient f[1]'s values (d/dp of sum(p f1)) */
        lg_tensor *w = lg_detach(ctx, s->f[1]);
        if (lg_backward(ctx, lg_sum(ctx, lg_mul(ctx, s->f[0], w), 0, NULL, false)) != LG_OK)
            die(ctx, c->name);
        lg_step_end(ctx);
        lg_optim_opts oo = optim_config(c->train - T_OPTIM);
        oo.params = &s->f[0];
        oo.nparams = 1;
        s->opt = lg_optim_new(ctx, &oo);
    } else if (c->train == T_SOFTMAX || c->train == T_MLP) {
        /* the model's parameters only (the inputs are parameters too) */
        lg_tensor *ps[4];
        int np = 0;
        if (s->lin)
            ps[np++] = s->lin->weight, ps[np++] = s->lin->bias;
        else
            for (int k = 0; k < s->mlp->nlayers; k++)
                ps[np++] = s->mlp->layers[k]->weight, ps[np++] = s->mlp->layers[k]->bias;
        lg_optim_opts oo = lg_optim_opts_default(LG_SGD);
        oo.lr = 0.01;
        oo.params = ps;
        oo.nparams = np;
        s->opt = lg_optim_new(ctx, &oo);
    } else if (c->train == T_SIAMESE || c->train == T_GRU || c->train == T_CNN ||
               c->train == T_TRANSFORMER) {
        lg_tensor *ps[64];
        int np = 0;
        for (int k = 0; k < lg_param_count(ctx); k++) {
            lg_tensor *p = lg_param_at(ctx, k);
            bool input = false;
            for (int j = 0; j < c->nf; j++)
                input = input || p == s->f[j];
            if (!input && np < 64)
                ps[np++] = p;
        }
        /* Adam lr 1e-3; the CNN: fashion_cnn's AdamW lr 2e-3, weight decay 1e-4 */
        /* the transformer: AdamW's defaults (lr 1e-3, weight decay 1e-2) */
        lg_optim_opts oo = lg_optim_opts_default(c->train == T_CNN || c->train == T_TRANSFORMER
                                                     ? LG_ADAMW
                                                     : LG_ADAM);
        if (c->train == T_CNN)
            oo.lr = 2e-3, oo.weight_decay = 1e-4;
        oo.params = ps;
        oo.nparams = np;
        s->opt = lg_optim_new(ctx, &oo);
    }
    if (lg_ctx_status(ctx) != LG_OK)
        die(ctx, c->name);
}

static void teardown(const bcase *c, state *s)
{
    for (int k = 0; k < c->ni; k++)
        free(s->i[k]);
}

/* One iteration: fresh leaves over the inputs, the loss, backward, the
 * optimizer step for training cases, end of step. */
static void iterate(lg_ctx *ctx, const bcase *c, state *s)
{
    if (c->train >= T_OPTIM) { /* the step alone: the gradient stays */
        if (lg_optim_step(s->opt) != LG_OK)
            die(ctx, c->name);
        lg_step_end(ctx);
        return;
    }
    lg_tensor *f[MAXF], *ii[MAXI];
    for (int k = 0; k < c->nf; k++) {
        f[k] = lg_detach(ctx, s->f[k]);
        if (c->f[k].grad)
            lg_requires_grad(ctx, f[k], true);
    }
    for (int k = 0; k < c->ni; k++) {
        const ispec *is = &c->i[k];
        ii[k] = lg_tensor_from(ctx, LG_I64, s->i[k], is->nd, is->shape);
    }
    if (c->train == T_MATMULS) {
        lg_no_grad_begin(ctx);
        c->fn(ctx, s, f, ii);
        lg_no_grad_end(ctx);
    } else if (c->train == T_GRAD || c->train == T_HVP) {
        lg_tensor *l = c->fn(ctx, s, f, ii), *out[4];
        lg_status st = c->train == T_GRAD ? lg_grad(ctx, 1, &l, NULL, 4, s->ps, out, NULL)
                                          : lg_hvp(ctx, l, 4, s->ps, s->v, out, false);
        if (!l || st != LG_OK)
            die(ctx, c->name);
    } else {
        lg_tensor *l = c->fn(ctx, s, f, ii);
        if (!l || lg_backward(ctx, l) != LG_OK)
            die(ctx, c->name);
        if (s->opt) {
            lg_optim_step(s->opt);
            lg_zero_grad(ctx);
        } else if (s->mha) /* the module's gradients new each iteration, as grad = None */
            lg_zero_grad(ctx);
    }
    if (lg_ctx_status(ctx) != LG_OK)
        die(ctx, c->name);
    lg_step_end(ctx);
}

static double measure(lg_ctx *ctx, const bcase *c, state *s, int64_t *iters)
{
    for (int w = 0; w < 3; w++) /* warm-up: arena sized, caches warm */
        iterate(ctx, c, s);
    int64_t k = 1;
    for (;;) {
        double t0 = bench_now();
        for (int64_t j = 0; j < k; j++)
            iterate(ctx, c, s);
        if (bench_now() - t0 >= 5e-3 || k >= (1 << 20))
            break;
        k *= 2;
    }
    double per[256], total = 0;
    int nb = 0;
    while (nb < 256 && (nb < 7 || total < 0.25)) {
        double t0 = bench_now();
        for (int64_t j = 0; j < k; j++)
            iterate(ctx, c, s);
        double dt = bench_now() - t0;
        total += dt;
        per[nb++] = dt / (double)k;
    }
    qsort(per, (size_t)nb, sizeof *per, bench_cmp);
    *iters = k * nb;
    return per[nb / 2];
}

/* STREAM-style copy bandwidth: best of 10 copies of 64 MiB (bytes read +
 * written per second). */
static double copy_gbs(void)
{
    size_t n = (size_t)16 << 20;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    if (!a || !b)
        return NAN;
    for (size_t j = 0; j < n; j++)
        a[j] = (float)j, b[j] = 0;
    double best = INFINITY;
    for (int r = 0; r < 10; r++) {
        double t0 = bench_now();
        memcpy(b, a, n * sizeof *a);
        double dt = bench_now() - t0;
        best = dt < best ? dt : best;
        a[r] = b[n - 1 - (size_t)r]; /* keep the copies observable */
    }
    free(a), free(b);
    return 2.0 * (double)(n * sizeof(float)) / best / 1e9;
}

/* --busy: a child process that spins on one core for as long as the cases
 * run (the loaded-machine cases: a user's other work, or another build),
 * ended when the bench ends. */
static pid_t busy_start(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        volatile uint64_t x = 0;
        for (;;)
            x = x + 1;
    }
    if (pid < 0)
        die(NULL, "fork for --busy");
    printf("BUSY 1 spinning process\n");
    return pid;
}

static void busy_stop(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

/* --filter: any of the '|'-separated alternatives, each a substring of the
 * name or =NAME, the name itself */
static bool selected(const char *name, const char *filter)
{
    const size_t n = strlen(name);
    for (const char *a = filter;; a++) {
        size_t len = strcspn(a, "|");
        bool hit = a[0] == '=' && n == len - 1 && !strncmp(name, a + 1, len - 1);
        for (size_t at = 0; a[0] != '=' && !hit && at + len <= n; at++)
            hit = !strncmp(name + at, a, len);
        if (hit)
            return true;
        a += len;
        if (!*a)
            return false;
    }
}

static long peak_rss_kb(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

int main(int argc, char **argv)
{
    int threads = 1;
    const char *filter = NULL, *memory = NULL;
    bool list = false, copy = true, busy = false;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--threads") && a + 1 < argc)
            threads = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--filter") && a + 1 < argc)
            filter = argv[++a];
        else if (!strcmp(argv[a], "--memory") && a + 1 < argc)
            memory = argv[++a];
        else if (!strcmp(argv[a], "--list"))
            list = true;
        else if (!strcmp(argv[a], "--no-copy")) /* for profiling one case */
            copy = false;
        else if (!strcmp(argv[a], "--busy"))
            busy = true;
        else {
            fprintf(stderr, "usage: bench_losses [--threads T] [--filter S] [--list] [--memory "
                            "CASE] [--no-copy] [--busy]\n");
            return 2;
        }
    }
    if (list) {
        for (int c = 0; c < NCASES; c++)
            printf("%s\n", cases[c].name);
        return 0;
    }
    pid_t spinner = busy ? busy_start() : 0;
    if (!memory) {
        printf("KERNEL %s\n", lg_blas_corename());
        if (copy)
            printf("COPY_GBS %.2f\n", copy_gbs());
    }
    for (int c = 0; c < NCASES; c++) {
        const bcase *bc = &cases[c];
        if ((filter && !selected(bc->name, filter)) || (memory && strcmp(bc->name, memory)))
            continue;
        lg_ctx *ctx = lg_ctx_new(&(lg_ctx_params){ .seed = 1, .threads = threads });
        if (!ctx)
            die(NULL, "lg_ctx_new");
        state s;
        setup(ctx, bc, &s);
        if (memory) {
            long before = peak_rss_kb();
            for (int j = 0; j < 5; j++)
                iterate(ctx, bc, &s);
            printf("MEMORY %s %ld %zu\n", bc->name, (peak_rss_kb() - before) * 1024,
                   lg_ctx_mem_stats(ctx).arena_high_water);
        } else {
            int64_t iters;
            double t = measure(ctx, bc, &s, &iters);
            printf("CASE %s %.9g %lld\n", bc->name, t, (long long)iters);
        }
        fflush(stdout);
        teardown(bc, &s);
        lg_ctx_free(ctx);
    }
    busy_stop(spinner);
    return 0;
}
