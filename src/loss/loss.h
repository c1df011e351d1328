/* loss.h: helpers shared by the losses (internal).
 *
 * Losses are composites of public ops; these helpers check arguments
 * before anything is computed, resolve options, and apply the reduction.
 * The fused loss primitives (bce.c, ctc.c, pointwise.c, ce_rows.c,
 * triplet_rows.c and the class hinges of ranking.c) also use the autograd internals, as DESIGN.md
 * allows for registered primitives; each keeps its composite as a test
 * oracle.
 */
#ifndef LG_LOSS_H
#define LG_LOSS_H

#include "../core/core.h"

/* The shared options structs (lg_loss_opts, lg_margin_opts), resolved by
 * the library's options rule (core/opts.c) into out. */
LG_HIDDEN bool lgL_opts_loss(lg_ctx *ctx, const char *who, const lg_loss_opts *user,
                             lg_loss_opts *out);
LG_HIDDEN bool lgL_opts_margin(lg_ctx *ctx, const char *who, const lg_margin_opts *user,
                               lg_margin_opts *out);

/* A float tensor that is usable (not NULL, not stale): records the error. */
LG_HIDDEN bool lgL_float(lg_ctx *ctx, lg_tensor *t, const char *who, const char *arg);
/* An int64 tensor, likewise. */
LG_HIDDEN bool lgL_int(lg_ctx *ctx, lg_tensor *t, const char *who, const char *arg);
/* a and b: float, same dtype, same shape (losses never broadcast input
 * against target). */
LG_HIDDEN bool lgL_pair(lg_ctx *ctx, lg_tensor *input, lg_tensor *target, const char *who);
/* reduction is one of MEAN, SUM, NONE (and BATCHMEAN when allowed). */
LG_HIDDEN bool lgL_reduction(lg_ctx *ctx, lg_reduction r, bool batchmean_ok, const char *who);
/* An optional tensor (weight, pos_weight) of input's dtype whose shape
 * broadcasts to `shape` without enlarging it. NULL passes. */
LG_HIDDEN bool lgL_broadcasts_into(lg_ctx *ctx, lg_tensor *w, lg_tensor *input, const char *who,
                                   const char *arg);
/* MEAN, SUM or NONE of an elementwise loss l. */
LG_HIDDEN lg_tensor *lgL_reduce(lg_ctx *ctx, lg_tensor *l, lg_reduction r);
/* Element i of a contiguous tensor of any dtype, as a double. */
LG_HIDDEN double lgL_at(lg_tensor *t, int64_t i);
/* Every element in [lo, hi] (NaN fails): LG_ERR_VALUE naming the first. */
LG_HIDDEN bool lgL_in_range(lg_ctx *ctx, lg_tensor *t, double lo, double hi, const char *who,
                            const char *arg);
LG_HIDDEN bool lgL_same_shape(lg_tensor *a, lg_tensor *b);
/* A fast scan: any element outside [lo, hi] (NaN included), or with pm1,
 * any element other than -1 and 1. */
LG_HIDDEN bool lgL_any_bad(lg_ctx *ctx, lg_tensor *t, double lo, double hi, bool pm1);
LG_HIDDEN const char *lgL_dtype_name(lg_dtype dt);
/* The fused elementwise losses (pointwise.c): x, y float of one dtype and
 * shape (y is only read for HINGE: no gradient reaches it), a the loss's
 * parameter (beta, delta, margin), reduction MEAN, SUM or NONE. */
enum {
    LGL_PW_L1,
    LGL_PW_MSE,
    LGL_PW_SMOOTH_L1,
    LGL_PW_HUBER,
    LGL_PW_HINGE,
    LGL_PW_SOFT_MARGIN,
    LGL_PW_BCE_LOGITS, /* without weight and pos_weight */
    LGL_PW_KL,
    LGL_PW_KL_LOG, /* log_target */
    LGL_PW_MLSM,   /* one element of multilabel soft margin, before the class mean */
    LGL_PW_BCE     /* binary cross-entropy on probabilities, without weight (bce.c's rules) */
};
LG_HIDDEN lg_tensor *lgL_pointwise(lg_ctx *ctx, int kind, lg_tensor *x, lg_tensor *y, double a,
                                   lg_reduction r, const char *who);
/* Fused cross-entropy over rows (ce_rows.c): x [N, C] or [C]; y one class
 * per row in the step arena, -1 where ignored; denom the MEAN denominator. */
LG_HIDDEN lg_tensor *lgL_ce_rows(lg_ctx *ctx, lg_tensor *x, const int64_t *y, lg_tensor *w,
                                 double eps, double denom, lg_reduction r, const char *who);
/* Fused nll_loss over rows (ce_rows.c), the same conventions. */
LG_HIDDEN lg_tensor *lgL_nll_rows(lg_ctx *ctx, lg_tensor *x, const int64_t *y, lg_tensor *w,
                                  double denom, lg_reduction r, const char *who);
/* Fused triplet margin loss over rows (triplet_rows.c): p = 2, no swap;
 * a, p, n of one shape [..., D] (checked by the caller); one loss per row,
 * before the reduction. */
LG_HIDDEN lg_tensor *lgL_triplet_rows(lg_ctx *ctx, lg_tensor *a, lg_tensor *p, lg_tensor *n,
                                      double margin, double eps, const char *who);
/* The backward of a fused loss whose forward made x's gradient gx for an
 * upstream of 1: gx times g (in place, once) into x's gradient. */
LG_HIDDEN lg_status lgL_adopt_scaled(lg_ctx *ctx, lg_tensor *x, lg_tensor *gx, double g);
/* "[2, 3]" */
LG_HIDDEN void lgL_shape_str(lg_tensor *t, char *buf, size_t n);

#endif
