/* autograd.h: the op registry, recording on the tape, gradient accumulation.
 *
 * ops.def lists every primitive once; from it come the op ids, the name
 * table and the backward dispatch table. An op's file holds its math
 * comment, shape checks, forward, backward (lgA_bw_<name>) and public
 * constructor. Backward reads y->grad and calls lgA_accum for each input
 * that requires grad; broadcasting is undone there, in one place.
 */
#ifndef LG_AUTOGRAD_H
#define LG_AUTOGRAD_H

#include "../tensor/tensor.h"

enum {
#define LG_OP(name) LGA_OP_##name,
#define LG_FUSED_OP(name) LGA_OP_##name,
#include "ops.def"
#undef LG_FUSED_OP
#undef LG_OP
    LGA_NOPS
};

typedef lg_status (*lgA_backward_fn)(lg_ctx *ctx, lg_tensor *y);

#define LG_OP(name) LG_HIDDEN lg_status lgA_bw_##name(lg_ctx *ctx, lg_tensor *y);
#define LG_FUSED_OP(name)
#include "ops.def"
#undef LG_FUSED_OP
#undef LG_OP
/* The backward of every fused primitive (the fused-loss driver's). */
LG_HIDDEN lg_status lgA_bw_fused(lg_ctx *ctx, lg_tensor *y);

/* The taped backwards (taped.def): y's inputs' gradients given g, y's
 * gradient, computed with public ops and added with lgA_taccum; grad.c
 * runs them for lg_grad. */
typedef lg_status (*lgA_taped_fn)(lg_ctx *ctx, lg_tensor *y, lg_tensor *g);
#define LG_TAPED(name) LG_HIDDEN lg_status lgA_tbw_##name(lg_ctx *ctx, lg_tensor *y, lg_tensor *g);
#include "taped.def"
#undef LG_TAPED
/* The taped backward of every fused loss (fused.c): its composite rebuilt. */
LG_HIDDEN lg_status lgA_tbw_fused(lg_ctx *ctx, lg_tensor *y, lg_tensor *g);
/* A taped backward for an op whose forward can be rebuilt from public ops
 * (a fused loss's composite, a recurrent cell): rebuild(ctx, y, arg)
 * computes y again from y->in with the graph recorded; that subgraph alone
 * is walked with upstream g, and its inputs' gradients are added with
 * lgA_taccum. Under create_graph the rebuilt ops stay on the tape (the
 * gradient's graph runs through them); otherwise they are dropped. */
typedef lg_tensor *(*lgA_rebuild_fn)(lg_ctx *ctx, lg_tensor *y, void *arg);
LG_HIDDEN lg_status lgA_taped_by_rebuild(lg_ctx *ctx, lg_tensor *y, lg_tensor *g,
                                         lgA_rebuild_fn rebuild, void *arg);
/* Does x lead to an input asked for in lg_grad's walk? An op result whose
 * graph an earlier walk consumed counts as leading (its graph is gone, so
 * nobody can tell): reaching it is then LG_ERR_STATE in lgA_taccum, as
 * PyTorch refuses a second backward through freed buffers. */
static inline bool lgA_tleads(const lg_tensor *x)
{
    return x->leads || (x->consumed && x->nin > 0);
}
/* Does input i of y want a gradient in lg_grad's walk? */
static inline bool lgA_tneeds(const lg_tensor *y, int i)
{
    return y->in[i] && lgA_tleads(y->in[i]);
}
/* Adds g into x's gradient of lg_grad's walk (x->tgrad), summed down to
 * x's shape over broadcast axes first, all with ops (on the tape under
 * create_graph). Nothing if x does not lead to an input. g NULL: the
 * ctx's error. */
LG_HIDDEN lg_status lgA_taccum(lg_ctx *ctx, lg_tensor *x, lg_tensor *g);
/* g summed down to x's shape over g's broadcast axes, with ops. */
LG_HIDDEN lg_tensor *lgA_tsum_to(lg_ctx *ctx, lg_tensor *g, const lg_tensor *x);
/* The adjoint ops, differentiable like any other (their backward is the
 * op they undo): zeros of x's shape with g placed at the slice (start,
 * step along axis), added at index along axis (index_select's), or added
 * at gather's positions. */
LG_HIDDEN lg_tensor *lgA_slice_adjoint(lg_ctx *ctx, lg_tensor *g, const lg_tensor *x, int axis,
                                       int64_t start, int64_t step);
LG_HIDDEN lg_tensor *lgA_index_adjoint(lg_ctx *ctx, lg_tensor *g, const lg_tensor *x, int axis,
                                       lg_tensor *index);
LG_HIDDEN lg_tensor *lgA_gather_adjoint(lg_ctx *ctx, lg_tensor *g, const lg_tensor *x, int axis,
                                        lg_tensor *index);
/* A constant (no gradient) of t's dtype: a 0-d tensor holding v. */
LG_HIDDEN lg_tensor *lgA_const(lg_ctx *ctx, const lg_tensor *t, double v);

/* Marks y as the result of op on inputs ins[0..n). If grad mode is on and
 * any input requires grad, y requires grad and is appended to the tape.
 * Returns y (NULL if y is NULL or the input array cannot be stored). */
LG_HIDDEN lg_tensor *lgA_record(lg_ctx *ctx, int op, lg_tensor *y, int n, lg_tensor *const *ins);
/* Does input i of y want a gradient? */
static inline bool lgA_needs(const lg_tensor *y, int i)
{
    return y->in[i]->requires_grad;
}
/* Adds g (of the broadcast output shape, or x's shape) into x's gradient.
 * g must be a fresh step temporary of the backward: when x has no
 * gradient yet and g already has x's shape, g itself becomes it (no copy). */
LG_HIDDEN lg_status lgA_accum(lg_ctx *ctx, lg_tensor *x, lg_tensor *g);
/* x's gradient itself, made (zero) if x has none yet, for backwards that
 * add into part of it in place (a slice) instead of building a zero tensor
 * of x's shape for lgA_accum. NULL with the ctx error set. */
LG_HIDDEN lg_tensor *lgA_grad_buffer(lg_ctx *ctx, lg_tensor *x);
/* Where a backward writes x's gradient: x's own (written into, *direct
 * true) when it exists or x is a parameter, else a new uninitialised
 * tensor that the backward fills and then passes to lgA_accum. NULL with
 * the ctx error set. */
LG_HIDDEN lg_tensor *lgA_grad_dest(lg_ctx *ctx, lg_tensor *x, bool *direct);
/* The same for a g that is shared (another tensor's gradient or a view of
 * it): always copied. */
LG_HIDDEN lg_status lgA_accum_shared(lg_ctx *ctx, lg_tensor *x, const lg_tensor *g);

/* A new result of a and b's broadcast shape and a's dtype, and *it over
 * it with a, b as inputs (binary.c; compare.c uses it too). NULL with the
 * error recorded (LG_ERR_SHAPE) if the shapes do not broadcast. */
LG_HIDDEN lg_tensor *lgA_broadcast_new(lg_ctx *ctx, const lg_tensor *a, const lg_tensor *b,
                                       const char *who, lgT_iter *it);

/* One spatial option of the conv and pool ops: out = the *_hw pair {H, W}
 * if either element is written (elements >= 0; 1-d ops take no pair, and
 * the single value must then keep its default dflt), else the single value
 * for W and for H (dflt for H when spatial is 1). false and LG_ERR_VALUE
 * naming who and name otherwise (conv.c). */
LG_HIDDEN bool lgA_spatial_dims(lg_ctx *ctx, const char *who, const char *name, int64_t one,
                                const int64_t pair[2], int64_t dflt, int spatial, int64_t out[2]);

#endif
