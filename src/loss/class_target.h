/* class_target.h: class-index targets, shared by nll_loss (nll.c) and
 * cross_entropy (cross_entropy.c) (internal).
 *
 * Layouts: input [N, C] with target [N]; [N, C, d1..dk] with [N, d1..dk];
 * [C] with a 0-d target (class axis 0). A target equal to ignore_index
 * is ignored; every other one must be a class in [0, C). The targets are
 * checked once and mapped to y (-1 where ignored), with D = the sum of
 * w[y] over kept targets (w = 1 without a weight), MEAN's denominator.
 * The composites cut ignored positions out with `where` before any
 * product, so inf or NaN there never reaches the loss.
 */
#ifndef LG_CLASS_TARGET_H
#define LG_CLASS_TARGET_H

#include "fused.h"
#include "loss.h"

typedef struct lgL_classes {
    int class_axis;
    int64_t C, npos; /* classes; number of target positions */
    lg_dtype dt;
} lgL_classes;

/* input float, target not NULL and usable, reduction MEAN, SUM or NONE. */
LG_HIDDEN bool lgL_class_common(lg_ctx *ctx, lg_tensor *x, lg_tensor *t, lg_reduction r,
                                const char *who);
/* input against an int64 class-index target (one of the layouts above). */
LG_HIDDEN bool lgL_class_layout(lg_ctx *ctx, lg_tensor *x, lg_tensor *t, const char *who,
                                lgL_classes *L);
/* NULL, or float [C] of the input's dtype. */
LG_HIDDEN bool lgL_class_weight(lg_ctx *ctx, lg_tensor *w, const lgL_classes *L, const char *who);
/* The targets checked (LG_ERR_INDEX) and mapped: y in the step arena, one
 * per target position, -1 where ignored; *denom = D. NULL on error. */
LG_HIDDEN int64_t *lgL_class_targets(lg_ctx *ctx, lg_tensor *t, lg_tensor *w, int64_t ignore,
                                     const lgL_classes *L, const char *who, double *denom);
/* A class-target loss's fused call (nll_loss, cross_entropy): target
 * int64 in one of the layouts, weight NULL or [C], the targets checked and
 * mapped into f->idx, MEAN's denominator D (kept when negative), one row
 * per target position, NONE in the target's shape, only the input taped. */
LG_HIDDEN bool lgL_class_fused(lg_ctx *ctx, const lgL_fused_desc *desc, lg_tensor *x, lg_tensor *t,
                               lg_tensor *w, int64_t ignore, lg_reduction r, const char *who,
                               lgL_classes *L, lgL_fused *f);

/* The pieces of a composite over mapped targets y (target t's shape). */
typedef struct lgL_picks {
    lg_tensor *neg_w;   /* t's shape, input dtype: -w[y], 0 where ignored */
    lg_tensor *ignored; /* t's shape, input dtype, 1 where ignored */
    lg_tensor *index;   /* int64, input's ndim, size 1 on the class axis, 0 where ignored */
} lgL_picks;
LG_HIDDEN bool lgL_class_picks(lg_ctx *ctx, lg_tensor *t, const int64_t *y, lg_tensor *w,
                               const lgL_classes *L, lgL_picks *P);
/* x[i, y_i] at each target position (t's shape), 0 where ignored. */
LG_HIDDEN lg_tensor *lgL_class_picked(lg_ctx *ctx, lg_tensor *x, lg_tensor *t, const lgL_classes *L,
                                      const lgL_picks *P);
/* NONE, SUM, or MEAN = SUM / denom of per-position losses l. */
LG_HIDDEN lg_tensor *lgL_class_reduce(lg_ctx *ctx, lg_tensor *l, lg_reduction r, double denom);
/* The layout of x (class axis 1, or 0 for [C]), for a composite. */
LG_HIDDEN lgL_classes lgL_class_axes(const lg_tensor *x, const lg_tensor *t);

#endif
