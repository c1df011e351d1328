/* loss.h: helpers shared by the losses (internal).
 *
 * Losses are composites of public ops; these helpers check arguments
 * before anything is computed, resolve options, and apply the reduction.
 * The fused loss primitives run on the fused-loss driver (fused.h), with
 * the tensor and autograd internals as DESIGN.md allows for registered
 * primitives; each keeps its composite as its oracle.
 */
#ifndef LG_LOSS_H
#define LG_LOSS_H

#include "../autograd/autograd.h"

/* Every loss options struct's descriptor, lgL_desc_<struct>, for lgC_opts
 * (core/opts.c, the options rule), from the LGL_OPTS rows of losses.def
 * (options.c defines them, with the structs' defaults and _default()). */
#define LGL_OPT(T, field, value)
#define LGL_OPTS(T, ...) LG_HIDDEN extern const lgC_opts_desc lgL_desc_##T;
#include "losses.def"

/* The shared options structs (lg_loss_opts, lg_margin_opts), resolved by
 * the library's options rule into out. */
LG_HIDDEN bool lgL_opts_loss(lg_ctx *ctx, const char *who, const lg_loss_opts *user,
                             lg_loss_opts *out);
LG_HIDDEN bool lgL_opts_margin(lg_ctx *ctx, const char *who, const lg_margin_opts *user,
                               lg_margin_opts *out);

/* A public loss's entry and exit: errors recorded by the public calls it
 * is made of name it first (core.h's lgC_api_enter); a NULL ctx passes.
 *   const char *outer = lgL_enter(ctx, "lg_x_loss");
 *   return lgL_leave(ctx, outer, ctx ? x_loss_body(ctx, ...) : NULL); */
static inline const char *lgL_enter(lg_ctx *ctx, const char *who)
{
    return ctx ? lgC_api_enter(ctx, who) : NULL;
}
static inline lg_tensor *lgL_leave(lg_ctx *ctx, const char *outer, lg_tensor *result)
{
    if (ctx)
        lgC_api_leave(ctx, outer);
    return result;
}

/* An int64 tensor that is usable (not NULL, not stale): records the error.
 * (Float inputs: lgT_ok_float.) */
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
/* Every element in [lo, hi] (NaN fails): LG_ERR_VALUE naming the first. */
LG_HIDDEN bool lgL_in_range(lg_ctx *ctx, lg_tensor *t, double lo, double hi, const char *who,
                            const char *arg);
/* A fast scan: any element outside [lo, hi] (NaN included), or with pm1,
 * any element other than -1 and 1. */
LG_HIDDEN bool lgL_any_bad(lg_ctx *ctx, lg_tensor *t, double lo, double hi, bool pm1);

/* The elementwise kinds of losses.def, each a fused primitive
 * (pointwise.c) with its composite in its loss's family file. */
typedef enum lgL_pw_kind {
#define LGL_POINTWISE(kind, loss, l, dx, dy) LGL_PW_##kind,
#include "losses.def"
    LGL_PW_COUNT
} lgL_pw_kind;
struct lgL_fused;
/* clang-format off */
#define LGL_POINTWISE(kind, loss, l, dx, dy) LG_HIDDEN lg_tensor *lgL_composite_##kind(lg_ctx *ctx, const struct lgL_fused *f);
/* clang-format on */
#include "losses.def"
/* x, y float of one dtype and shape (y is only read for hinge: no
 * gradient reaches it), a the loss's parameter (beta, delta, margin),
 * reduction MEAN, SUM or NONE, or BATCHMEAN (kl_div): the sum divided by
 * x's first dimension. */
LG_HIDDEN lg_tensor *lgL_pointwise(lg_ctx *ctx, lgL_pw_kind kind, lg_tensor *x, lg_tensor *y,
                                   double a, lg_reduction r, const char *who);
/* The composite of a pointwise kind: the loss per element l reduced as
 * the call asks (f->r; MEAN over a denominator the call set: the sum
 * divided by it). */
LG_HIDDEN lg_tensor *lgL_composite_reduce(lg_ctx *ctx, const struct lgL_fused *f, lg_tensor *l);

/* The backward of a fused loss whose forward made x's gradient gx for an
 * upstream of 1: gx times g (in place, once) into x's gradient. */
LG_HIDDEN lg_status lgL_adopt_scaled(lg_ctx *ctx, lg_tensor *x, lg_tensor *gx, double g);

#endif
