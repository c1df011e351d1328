/*
 * lossgrad/loss.h: the loss functions (included by lossgrad.h).
 *
 * Each loss mirrors PyTorch's functional API (torch.nn.functional.<name>):
 * same formula, same options, same gradients, both float types. Options
 * come in a per-loss struct that follows the library's one rule (see
 * "Options" in lossgrad.h): NULL or lg_<loss>_opts_default() means
 * PyTorch's defaults, a field written after it means what is written:
 *
 *     lg_smooth_l1_opts o = lg_smooth_l1_opts_default();
 *     o.beta = 0.5;
 *     lg_tensor *loss = lg_smooth_l1_loss(ctx, x, y, &o);
 *
 * Fields marked "(non-zero default)" must be written in a struct made by
 * hand, e.g. &(lg_smooth_l1_opts){ .beta = 0.5 }; left at 0 there, they
 * are an LG_ERR_VALUE error naming the field.
 *
 * Where lossgrad departs from PyTorch on purpose (an error where PyTorch
 * silently broadcasts or computes garbage; CTC's true derivative), the
 * declaration says so. Shapes: N batch, C classes, d1..dk extra dims.
 * Every loss returns a step tensor (0-d unless reduction is NONE) or NULL
 * with the ctx error set: LG_ERR_SHAPE, LG_ERR_DTYPE, LG_ERR_INDEX
 * (class ids), LG_ERR_VALUE (options and value domains).
 */
#ifndef LOSSGRAD_LOSS_H
#define LOSSGRAD_LOSS_H

#ifdef __cplusplus
extern "C" {
#endif

/* reduction: MEAN (the default: the zero value), SUM, NONE, and BATCHMEAN
 * (kl_div only). */
typedef enum lg_reduction {
    LG_REDUCTION_MEAN = 0,
    LG_REDUCTION_SUM,
    LG_REDUCTION_NONE,
    LG_REDUCTION_BATCHMEAN
} lg_reduction;

typedef struct lg_loss_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
} lg_loss_opts;
lg_loss_opts lg_loss_opts_default(void);

/* |x - y| elementwise; gradient sign(x - y), 0 at ties and at NaN.
 * input, target: same shape (no broadcasting: LG_ERR_SHAPE), same float dtype.
 * MEAN divides by numel (NaN for an empty input). */
lg_tensor *lg_l1_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_loss_opts *o);

/* (x - y)^2 elementwise; gradient 2(x - y). Shapes as lg_l1_loss. */
lg_tensor *lg_mse_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_loss_opts *o);

typedef struct lg_smooth_l1_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    double beta; /* (non-zero default) 1; >= 0 (LG_ERR_VALUE otherwise); 0 is L1 */
} lg_smooth_l1_opts;
lg_smooth_l1_opts lg_smooth_l1_opts_default(void);
/* d = x - y:  0.5 d^2 / beta if |d| < beta, else |d| - 0.5 beta.
 * Gradient d / beta inside, sign(d) outside. Departure: with beta = 0 the
 * gradient at d = 0 is 0, as L1 (PyTorch 1.13's CPU kernel gives -1). */
lg_tensor *lg_smooth_l1_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                             const lg_smooth_l1_opts *o);

typedef struct lg_huber_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    double delta; /* (non-zero default) 1; > 0 */
} lg_huber_opts;
lg_huber_opts lg_huber_opts_default(void);
/* d = x - y:  0.5 d^2 if |d| <= delta, else delta (|d| - 0.5 delta).
 * Equal to delta * smooth_l1(beta = delta). */
lg_tensor *lg_huber_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_huber_opts *o);

typedef struct lg_quantile_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    double quantile; /* (non-zero default) 0.5; in [0, 1] */
} lg_quantile_opts;
lg_quantile_opts lg_quantile_opts_default(void);
/* The quantile (pinball) loss, e = y - x:  max(q e, (q - 1) e), q = quantile
 * (0.5: half the L1 loss); its minimiser is the q-quantile of y. Not in
 * PyTorch: the reference is torch.maximum(q * e, (q - 1) * e), whose tie
 * rule gives the gradient at e = 0, the mean of the two slopes (for x:
 * 0.5 - q). Shapes as lg_l1_loss. */
lg_tensor *lg_quantile_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                            const lg_quantile_opts *o);

typedef struct lg_kl_div_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction; /* MEAN divides by numel (not KL); BATCHMEAN by input.shape[0] */
    bool log_target;
} lg_kl_div_opts;
lg_kl_div_opts lg_kl_div_opts_default(void);
/* Pointwise, input x = log q:  xlogy(y, y) - y x  (0 where y == 0, NaN for
 * y < 0); log_target: exp(y) (y - x). Shapes as lg_l1_loss. */
lg_tensor *lg_kl_div(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_kl_div_opts *o);

typedef struct lg_nll_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction; /* MEAN divides by the sum of weights of non-ignored targets */
    lg_tensor *weight;      /* NULL, or [C] of input's dtype; never differentiated */
    int64_t ignore_index;   /* (non-zero default) -100; targets equal to it contribute 0 */
} lg_nll_opts;
lg_nll_opts lg_nll_opts_default(void);
/* l_i = -w[y_i] x[i, y_i]  (x is used as given: no log_softmax).
 * input [N, C] with target [N], [N, C, d1..dk] with [N, d1..dk], or [C]
 * with a 0-d target; target int64 in [0, C) or ignore_index (LG_ERR_INDEX).
 * NONE gives target's shape. MEAN with a zero denominator is NaN. */
lg_tensor *lg_nll_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_nll_opts *o);

typedef struct lg_ce_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    lg_tensor *weight;      /* NULL or [C] */
    int64_t ignore_index;   /* (non-zero default) -100; class-index targets only (else must
                             * be negative) */
    double label_smoothing; /* eps in [0, 1]; default 0. Departure: negative is LG_ERR_VALUE */
} lg_ce_opts;
lg_ce_opts lg_ce_opts_default(void);
/* lsm = log_softmax(x, class axis). Class-index target (int64, layouts of
 * lg_nll_loss): l_i = (1-eps) w[y_i] (-lsm[i,y_i]) + (eps/C) sum_c w[c] (-lsm[i,c]),
 * MEAN over the sum of w[y_i] of non-ignored targets. Probability target
 * (float, input's shape): q = (1-eps) p + eps/C, l_i = -sum_c w[c] q[i,c] lsm[i,c],
 * MEAN over N d1..dk (NaN with zero classes, as PyTorch). A row holding a
 * +inf or NaN logit gives NaN, value and gradients (as PyTorch). */
lg_tensor *lg_cross_entropy(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_ce_opts *o);

typedef struct lg_poly1_opts {
    uint32_t defaults_tag;  /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    double epsilon;         /* (non-zero default) 1; any finite value */
    lg_tensor *weight;      /* NULL or [C]; the CE term only */
    double label_smoothing; /* in [0, 1]; default 0; the CE term only */
} lg_poly1_opts;
lg_poly1_opts lg_poly1_opts_default(void);
/* Poly-1 (Leng et al., 2022): l_i = CE_i + epsilon (1 - softmax(x_i)[y_i]),
 * CE_i lg_cross_entropy's per row (weight, label_smoothing), p unsmoothed.
 * Not in PyTorch: the reference is F.cross_entropy(reduction="none") +
 * epsilon * (1 - softmax gathered at the target). input [N, C] with int64
 * target [N], or [C] with a 0-d target; MEAN over the rows (not over the
 * sum of weights). No ignore_index: a target outside [0, C) is
 * LG_ERR_INDEX; a non-finite epsilon or label_smoothing outside [0, 1]
 * LG_ERR_VALUE; other layouts LG_ERR_SHAPE. */
lg_tensor *lg_poly1_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_poly1_opts *o);

typedef struct lg_bce_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    lg_tensor *weight; /* NULL, or broadcastable to input without enlarging it */
} lg_bce_opts;
lg_bce_opts lg_bce_opts_default(void);
/* l = w [(y - 1) max(log(1 - x), -100) - y max(log x, -100)].
 * input in [0, 1] and (departure) target in [0, 1], else LG_ERR_VALUE;
 * same shapes. Gradient, as PyTorch: w (x - y) / max(x (1 - x), 1e-12);
 * target gradient w (log(1 - x) - log x), unclamped. MEAN over numel. */
lg_tensor *lg_binary_cross_entropy(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                   const lg_bce_opts *o);

typedef struct lg_bce_logits_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    lg_tensor *weight;      /* NULL, or broadcastable to input without enlarging it */
    lg_tensor *pos_weight;  /* NULL, or broadcastable to input without enlarging it */
    double label_smoothing; /* e in [0, 1], default 0 (an extension: not in PyTorch) */
} lg_bce_logits_opts;
lg_bce_logits_opts lg_bce_logits_opts_default(void);
/* l = w [(1 - y) x + (1 + (P - 1) y) softplus(-x)], P = pos_weight (1 if
 * NULL), softplus(-x) = -log_sigmoid(x) (stable for any finite x).
 * label_smoothing e replaces y by y (1 - e) + e / 2 first (Keras's rule).
 * Same shapes; departure: target outside [0, 1] is LG_ERR_VALUE. */
lg_tensor *lg_binary_cross_entropy_with_logits(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                               const lg_bce_logits_opts *o);

typedef struct lg_mlsm_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    lg_tensor *weight; /* NULL, or broadcastable to input (typically [C]) */
} lg_mlsm_opts;
lg_mlsm_opts lg_mlsm_opts_default(void);
/* l = mean over the last axis of -w [y log_sigmoid(x) + (1 - y) log_sigmoid(-x)].
 * input [N, C] (or any shape; the last axis is the class axis), same-shape
 * target. NONE gives input's shape without its last axis. */
lg_tensor *lg_multilabel_soft_margin_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                          const lg_mlsm_opts *o);

typedef struct lg_hinge_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    double margin; /* (non-zero default) 1 */
} lg_hinge_opts;
lg_hinge_opts lg_hinge_opts_default(void);
/* l = x if y == 1, max(0, margin - x) if y == -1 (x is a distance; the
 * gradient at x == margin is -1). Same shapes; target of input's dtype or int64.
 * Departure: a target other than 1 or -1 is LG_ERR_VALUE. */
lg_tensor *lg_hinge_embedding_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                   const lg_hinge_opts *o);

typedef struct lg_triplet_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    double margin; /* (non-zero default) 1 */
    double p;      /* (non-zero default) 2, the norm degree; 0 counts non-zeros; INFINITY is max */
    double eps;    /* (non-zero default) 1e-6, added to the difference */
    bool swap;      /* use min(d(a, n), d(p, n)) as the negative distance */
} lg_triplet_opts;
lg_triplet_opts lg_triplet_opts_default(void);
/* d(u, v) = ||u - v + eps||_p over the last axis;
 * l = max(0, margin + d(a, p) - d(a, n)). anchor, positive, negative: the
 * same ndim, the same last size, batch dims broadcasting; [N, D] -> [N],
 * [D] -> 0-d. */
lg_tensor *lg_triplet_margin_loss(lg_ctx *ctx, lg_tensor *anchor, lg_tensor *positive,
                                  lg_tensor *negative, const lg_triplet_opts *o);

typedef struct lg_ctc_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction; /* MEAN: mean over the batch of nll_b / max(L_b, 1) */
    int64_t blank;          /* default 0; in [0, C) */
    bool zero_infinity;     /* infeasible samples give 0 (and 0 gradient) */
} lg_ctc_opts;
lg_ctc_opts lg_ctc_opts_default(void);
/* Connectionist temporal classification: nll_b = -log sum over alignments
 * of prod_t exp(log_probs[t, b, path_t]), by the alpha-beta recursion in
 * log space. log_probs [T, N, C] (or [T, C] unbatched); targets int64,
 * padded [N, S] (S >= max L_b) or concatenated [sum L_b] ([S] unbatched);
 * input_lengths, target_lengths int64 [N] (0-d or [1] unbatched).
 * Departures: the gradient is the true derivative -occupancy (PyTorch adds
 * exp(log_probs), assuming a log_softmax upstream); target values outside
 * [0, C) or equal to blank, negative lengths, input_lengths > T, and
 * target lengths longer than targets holds are errors. Rows
 * t >= input_lengths[b] get gradient 0. */
lg_tensor *lg_ctc_loss(lg_ctx *ctx, lg_tensor *log_probs, lg_tensor *targets,
                       lg_tensor *input_lengths, lg_tensor *target_lengths, const lg_ctc_opts *o);

/* ------------------------------------------------------------------ */
/* PyTorch's other losses                                               */
/* ------------------------------------------------------------------ */

typedef struct lg_poisson_nll_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    bool log_input; /* (non-zero default) true: input is log(rate) */
    bool full;      /* add the Stirling term */
    double eps;     /* (non-zero default) 1e-8, used when log_input is false */
} lg_poisson_nll_opts;
lg_poisson_nll_opts lg_poisson_nll_opts_default(void);
/* log_input: exp(x) - y x;  otherwise: x - y log(x + eps).
 * full adds y log y - y + 0.5 log(2 pi y) where y > 1 (0 elsewhere, as
 * PyTorch; with full, y = 0 gets a NaN target gradient, as PyTorch).
 * input, target: same shape and dtype (departure: PyTorch broadcasts). */
lg_tensor *lg_poisson_nll_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                               const lg_poisson_nll_opts *o);

typedef struct lg_gaussian_nll_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    bool full;  /* add 0.5 log(2 pi) */
    double eps; /* (non-zero default) 1e-6: the variance is clamped to >= eps */
} lg_gaussian_nll_opts;
lg_gaussian_nll_opts lg_gaussian_nll_opts_default(void);
/* l = 0.5 (log v + (x - y)^2 / v), v = max(var, eps) in the value; the
 * gradient reaches var as if unclamped (PyTorch clamps under no_grad).
 * input, target: same shape. var: input's shape; input's shape without the
 * last dim; that with a last dim of 1; or (an extension: PyTorch rejects a
 * scalar var for inputs of 2+ dims) a 0-d tensor for any input. A negative
 * var entry is LG_ERR_VALUE. NONE gives input's shape. */
lg_tensor *lg_gaussian_nll_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, lg_tensor *var,
                                const lg_gaussian_nll_opts *o);

typedef struct lg_margin_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    double margin; /* default 0 */
} lg_margin_opts;
lg_margin_opts lg_margin_opts_default(void);
/* l = max(0, -y (x1 - x2) + margin); the gradient passes at 0.
 * input1, input2, target: the same shape (departure: PyTorch 1.13
 * broadcasts equal-ndim sizes; later releases reject them too). */
lg_tensor *lg_margin_ranking_loss(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2,
                                  lg_tensor *target, const lg_margin_opts *o);

/* l = (1 - cos) where y == 1, max(0, cos - margin) where y == -1, 0 for any
 * other y; cos = sum x1 x2 / sqrt((sum x1^2 + 1e-12)(sum x2^2 + 1e-12)) over
 * the last dim. input1, input2: [N, D] (or [D]); their batch sizes may
 * broadcast (1 against N). target: [N] (0-d for [D]) of input's dtype or
 * int64; no gradient. */
lg_tensor *lg_cosine_embedding_loss(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2,
                                    lg_tensor *target, const lg_margin_opts *o);

/* l = log(1 + exp(-y x)), computed as -log_sigmoid(y x): finite for every
 * finite input. Departure: PyTorch evaluates it naively and returns inf
 * (gradient NaN) once -y x exceeds ~88 (float32) or ~709 (float64).
 * Same shapes. */
lg_tensor *lg_soft_margin_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                               const lg_loss_opts *o);

typedef struct lg_multi_margin_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction; /* MEAN over N (weights are not in the denominator) */
    int64_t p;              /* (non-zero default) 1; 1 or 2 */
    double margin;          /* (non-zero default) 1 */
    lg_tensor *weight;      /* NULL or [C], never differentiated (departure: PyTorch does
                               not check its length) */
} lg_multi_margin_opts;
lg_multi_margin_opts lg_multi_margin_opts_default(void);
/* l_i = (1/C) sum_{j != y_i} w[y_i] max(0, margin - x[i, y_i] + x[i, j])^p,
 * gradient 0 where the hinge is exactly 0. input [N, C] with target int64
 * [N], or [C] with a 0-d or [1] target, or a 0-d input (one class: loss 0,
 * as PyTorch); targets in [0, C) (LG_ERR_INDEX). */
lg_tensor *lg_multi_margin_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                const lg_multi_margin_opts *o);

/* l_i = (1/C) sum_{j in P_i} sum_{k not in P_i} max(0, 1 - (x[i, j] - x[i, k])),
 * P_i the labels of row i before its first -1 (a repeated label counts each
 * time); gradient 0 where the hinge is exactly 0. input [N, C] or [C], or a
 * 0-d input (one class: loss 0, as PyTorch) with a 0-d or [1] target;
 * target int64 of input's shape, every entry in [-1, C) (LG_ERR_INDEX). */
lg_tensor *lg_multilabel_margin_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                     const lg_loss_opts *o);

/* A distance for lg_triplet_margin_with_distance_loss: builds d(x1, x2) on
 * the tape from lg_ ops (one value per row: [N] for [N, D] inputs), or
 * returns NULL with the ctx error set. user is the options' user pointer. */
typedef lg_tensor *(*lg_distance_fn)(lg_ctx *ctx, lg_tensor *x1, lg_tensor *x2, void *user);

typedef struct lg_triplet_distance_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    lg_distance_fn distance; /* NULL: lg_pairwise_distance(x1, x2, 2, 1e-6, false) */
    void *user;              /* passed to distance */
    double margin;           /* (non-zero default) 1 */
    bool swap;               /* use min(d(a, n), d(p, n)) as the negative distance */
} lg_triplet_distance_opts;
lg_triplet_distance_opts lg_triplet_distance_opts_default(void);
/* l = max(0, d(a, p) - d(a, n) + margin). anchor, positive, negative of
 * one float dtype; the distances must have one shape. */
lg_tensor *lg_triplet_margin_with_distance_loss(lg_ctx *ctx, lg_tensor *anchor,
                                                lg_tensor *positive, lg_tensor *negative,
                                                const lg_triplet_distance_opts *o);

/* ------------------------------------------------------------------ */
/* Beyond PyTorch's core (each documented in docs/losses.md)           */
/* ------------------------------------------------------------------ */

typedef struct lg_focal_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction; /* MEAN as every loss here (torchvision's default is NONE) */
    double alpha;           /* (non-zero default) 0.25; negative disables class balancing */
    double gamma;           /* (non-zero default) 2; >= 0 */
} lg_focal_opts;
lg_focal_opts lg_focal_opts_default(void);
/* torchvision.ops.sigmoid_focal_loss: p = sigmoid(x),
 * ce = binary_cross_entropy_with_logits(x, y) per element,
 * p_t = p y + (1 - p)(1 - y),  l = ce (1 - p_t)^gamma,
 * times alpha y + (1 - alpha)(1 - y) when alpha >= 0.
 * gamma = 0, alpha < 0 is BCE with logits. Same shapes; target in [0, 1]. */
lg_tensor *lg_sigmoid_focal_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                 const lg_focal_opts *o);

typedef enum lg_dice_activation {
    LG_DICE_PROBS = 0, /* input holds probabilities already */
    LG_DICE_SIGMOID,   /* sigmoid of each element (binary or multi-label) */
    LG_DICE_SOFTMAX    /* softmax over the class dim (multi-class) */
} lg_dice_activation;

typedef struct lg_dice_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;        /* over N */
    lg_dice_activation activation; /* applied to input first */
    double smooth;                 /* (non-zero default) 1, added to numerator and denominator;
                                    * >= 0 */
    lg_tensor *weight;             /* NULL or [C]: per-class weights, sum > 0 */
} lg_dice_opts;
lg_dice_opts lg_dice_opts_default(void);
/* Soft Dice: input p and target t of shape [N, C, d1..dk] (k >= 0; C = 1
 * for a binary mask). Per sample and class, over d1..dk:
 *   dice = (2 sum p t + smooth) / (sum p + sum t + smooth),
 *   l_n = sum_c w_c (1 - dice_nc) / sum_c w_c   (w = 1 without weight).
 * target in [0, 1]; NONE gives [N]. */
lg_tensor *lg_dice_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_dice_opts *o);

typedef struct lg_contrastive_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction;
    double margin; /* (non-zero default) 1; >= 0 */
    double eps;    /* (non-zero default) 1e-6, added to the difference as lg_pairwise_distance */
} lg_contrastive_opts;
lg_contrastive_opts lg_contrastive_opts_default(void);
/* Hadsell, Chopra and LeCun (2006), on d = ||x1 - x2 + eps||_2 per row:
 *   l = y d^2 / 2 + (1 - y) max(0, margin - d)^2 / 2,
 * y = 1 for a similar pair, 0 for a dissimilar one (values in [0, 1]).
 * input1, input2: [N, D] (or [D]); target [N] (0-d) of input's dtype. */
lg_tensor *lg_contrastive_loss(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2,
                               lg_tensor *target, const lg_contrastive_opts *o);

typedef struct lg_nt_xent_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_reduction reduction; /* over the N pairs */
    double temperature;     /* (non-zero default) 0.1; > 0 */
    bool cross_view_only;   /* negatives from the other view only (CLIP's InfoNCE) */
} lg_nt_xent_opts;
lg_nt_xent_opts lg_nt_xent_opts_default(void);
/* NT-Xent (SimCLR) / InfoNCE over N pairs (z1[i], z2[i]), z = x / max(||x||, 1e-12)
 * row by row, s(u, v) = u . v / temperature. For each of the 2N embeddings
 * the positive is its partner; the negatives are the other 2N - 2
 * embeddings (cross_view_only: the N - 1 other embeddings of the other view):
 *   l(u) = -s(u, u+) + log sum_{k in {u+} + negatives} exp(s(u, k)),
 *   l_i = (l(z1[i]) + l(z2[i])) / 2   (both directions).
 * input1, input2: [N, D], N >= 2. NONE gives [N]. */
lg_tensor *lg_nt_xent_loss(lg_ctx *ctx, lg_tensor *input1, lg_tensor *input2,
                           const lg_nt_xent_opts *o);

#ifdef __cplusplus
}
#endif
#endif
