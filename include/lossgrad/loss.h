/*
 * lossgrad/loss.h: the loss functions (included by lossgrad.h).
 *
 * Each loss mirrors PyTorch's functional API (torch.nn.functional.<name>):
 * same formula, same options, same gradients, both float types. Options
 * come in a per-loss struct; a NULL pointer or a zero-initialised struct
 * means PyTorch's defaults. Options whose default is not zero are written
 * with LG_SET, e.g. &(lg_smooth_l1_opts){ .beta = LG_SET(0.5) }.
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

/* An option with a non-zero default: unset (zero) means the default. */
typedef struct lg_optd {
    bool set;
    double value;
} lg_optd;
typedef struct lg_opti {
    bool set;
    int64_t value;
} lg_opti;
#define LG_SET(v)                                                                                  \
    {                                                                                              \
        .set = true, .value = (v)                                                                  \
    }

typedef struct lg_loss_opts {
    lg_reduction reduction;
} lg_loss_opts;

/* |x - y| elementwise; gradient sign(x - y), 0 at ties and at NaN.
 * input, target: same shape (no broadcasting: LG_ERR_SHAPE), same float dtype.
 * MEAN divides by numel (NaN for an empty input). */
lg_tensor *lg_l1_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_loss_opts *o);

/* (x - y)^2 elementwise; gradient 2(x - y). Shapes as lg_l1_loss. */
lg_tensor *lg_mse_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_loss_opts *o);

typedef struct lg_smooth_l1_opts {
    lg_reduction reduction;
    lg_optd beta; /* default 1; >= 0 (LG_ERR_VALUE otherwise); 0 is L1 */
} lg_smooth_l1_opts;
/* d = x - y:  0.5 d^2 / beta if |d| < beta, else |d| - 0.5 beta.
 * Gradient d / beta inside, sign(d) outside. Departure: with beta = 0 the
 * gradient at d = 0 is 0, as L1 (PyTorch 1.13's CPU kernel gives -1). */
lg_tensor *lg_smooth_l1_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                             const lg_smooth_l1_opts *o);

typedef struct lg_huber_opts {
    lg_reduction reduction;
    lg_optd delta; /* default 1; > 0 */
} lg_huber_opts;
/* d = x - y:  0.5 d^2 if |d| <= delta, else delta (|d| - 0.5 delta).
 * Equal to delta * smooth_l1(beta = delta). */
lg_tensor *lg_huber_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_huber_opts *o);

typedef struct lg_kl_div_opts {
    lg_reduction reduction; /* MEAN divides by numel (not KL); BATCHMEAN by input.shape[0] */
    bool log_target;
} lg_kl_div_opts;
/* Pointwise, input x = log q:  xlogy(y, y) - y x  (0 where y == 0, NaN for
 * y < 0); log_target: exp(y) (y - x). Shapes as lg_l1_loss. */
lg_tensor *lg_kl_div(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_kl_div_opts *o);

typedef struct lg_nll_opts {
    lg_reduction reduction; /* MEAN divides by the sum of weights of non-ignored targets */
    lg_tensor *weight;      /* NULL, or [C] of input's dtype; never differentiated */
    lg_opti ignore_index;   /* default -100; targets equal to it contribute 0 */
} lg_nll_opts;
/* l_i = -w[y_i] x[i, y_i]  (x is used as given: no log_softmax).
 * input [N, C] with target [N], [N, C, d1..dk] with [N, d1..dk], or [C]
 * with a 0-d target; target int64 in [0, C) or ignore_index (LG_ERR_INDEX).
 * NONE gives target's shape. MEAN with a zero denominator is NaN. */
lg_tensor *lg_nll_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_nll_opts *o);

typedef struct lg_ce_opts {
    lg_reduction reduction;
    lg_tensor *weight;      /* NULL or [C] */
    lg_opti ignore_index;   /* default -100; class-index targets only (else must be negative) */
    double label_smoothing; /* eps in [0, 1]; default 0. Departure: negative is LG_ERR_VALUE */
} lg_ce_opts;
/* lsm = log_softmax(x, class axis). Class-index target (int64, layouts of
 * lg_nll_loss): l_i = (1-eps) w[y_i] (-lsm[i,y_i]) + (eps/C) sum_c w[c] (-lsm[i,c]),
 * MEAN over the sum of w[y_i] of non-ignored targets. Probability target
 * (float, input's shape): q = (1-eps) p + eps/C, l_i = -sum_c w[c] q[i,c] lsm[i,c],
 * MEAN over N d1..dk. */
lg_tensor *lg_cross_entropy(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const lg_ce_opts *o);

typedef struct lg_bce_opts {
    lg_reduction reduction;
    lg_tensor *weight; /* NULL, or broadcastable to input without enlarging it */
} lg_bce_opts;
/* l = w [(y - 1) max(log(1 - x), -100) - y max(log x, -100)].
 * input in [0, 1] and (departure) target in [0, 1], else LG_ERR_VALUE;
 * same shapes. Gradient, as PyTorch: w (x - y) / max(x (1 - x), 1e-12);
 * target gradient w (log(1 - x) - log x), unclamped. MEAN over numel. */
lg_tensor *lg_binary_cross_entropy(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                   const lg_bce_opts *o);

typedef struct lg_bce_logits_opts {
    lg_reduction reduction;
    lg_tensor *weight;     /* NULL, or broadcastable to input without enlarging it */
    lg_tensor *pos_weight; /* NULL, or broadcastable to input without enlarging it */
} lg_bce_logits_opts;
/* l = w [(1 - y) x + (1 + (P - 1) y) softplus(-x)], P = pos_weight (1 if
 * NULL), softplus(-x) = -log_sigmoid(x) (stable for any finite x).
 * Same shapes; departure: target outside [0, 1] is LG_ERR_VALUE. */
lg_tensor *lg_binary_cross_entropy_with_logits(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                               const lg_bce_logits_opts *o);

typedef struct lg_mlsm_opts {
    lg_reduction reduction;
    lg_tensor *weight; /* NULL, or broadcastable to input (typically [C]) */
} lg_mlsm_opts;
/* l = mean over the last axis of -w [y log_sigmoid(x) + (1 - y) log_sigmoid(-x)].
 * input [N, C] (or any shape; the last axis is the class axis), same-shape
 * target. NONE gives input's shape without its last axis. */
lg_tensor *lg_multilabel_soft_margin_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                          const lg_mlsm_opts *o);

typedef struct lg_hinge_opts {
    lg_reduction reduction;
    lg_optd margin; /* default 1 */
} lg_hinge_opts;
/* l = x if y == 1, max(0, margin - x) if y == -1 (x is a distance; the
 * gradient at x == margin is -1). Same shapes; target of input's dtype or int64.
 * Departure: a target other than 1 or -1 is LG_ERR_VALUE. */
lg_tensor *lg_hinge_embedding_loss(lg_ctx *ctx, lg_tensor *input, lg_tensor *target,
                                   const lg_hinge_opts *o);

typedef struct lg_triplet_opts {
    lg_reduction reduction;
    lg_optd margin; /* default 1 */
    lg_optd p;      /* norm degree, default 2; 0 counts non-zeros; INFINITY is max */
    lg_optd eps;    /* default 1e-6, added to the difference */
    bool swap;      /* use min(d(a, n), d(p, n)) as the negative distance */
} lg_triplet_opts;
/* d(u, v) = ||u - v + eps||_p over the last axis;
 * l = max(0, margin + d(a, p) - d(a, n)). anchor, positive, negative: the
 * same ndim, the same last size, batch dims broadcasting; [N, D] -> [N],
 * [D] -> 0-d. */
lg_tensor *lg_triplet_margin_loss(lg_ctx *ctx, lg_tensor *anchor, lg_tensor *positive,
                                  lg_tensor *negative, const lg_triplet_opts *o);

typedef struct lg_ctc_opts {
    lg_reduction reduction; /* MEAN: mean over the batch of nll_b / max(L_b, 1) */
    int64_t blank;          /* default 0; in [0, C) */
    bool zero_infinity;     /* infeasible samples give 0 (and 0 gradient) */
} lg_ctc_opts;
/* Connectionist temporal classification: nll_b = -log sum over alignments
 * of prod_t exp(log_probs[t, b, path_t]), by the alpha-beta recursion in
 * log space. log_probs [T, N, C] (or [T, C] unbatched); targets int64,
 * padded [N, S] (S >= max L_b) or concatenated [sum L_b] ([S] unbatched);
 * input_lengths, target_lengths int64 [N] (0-d or [1] unbatched).
 * Departures: the gradient is the true derivative -occupancy (PyTorch adds
 * exp(log_probs), assuming a log_softmax upstream); target values outside
 * [0, C) or equal to blank, negative lengths, input_lengths > T are errors.
 * Rows t >= input_lengths[b] get gradient 0. */
lg_tensor *lg_ctc_loss(lg_ctx *ctx, lg_tensor *log_probs, lg_tensor *targets,
                       lg_tensor *input_lengths, lg_tensor *target_lengths, const lg_ctc_opts *o);

#ifdef __cplusplus
}
#endif
#endif
