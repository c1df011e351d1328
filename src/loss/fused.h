/* fused.h: the fused-loss driver (internal).
 *
 * A fused loss is one primitive on the tape: one kernel pass forward, one
 * backward. What every such loss shares lives in fused.c, once: the
 * output's shape for each reduction, MEAN's denominator, the upstream
 * scale, the eager gradient while training and the backward's
 * adopt-or-scale, float32/float64 dispatch, deterministic block sums and
 * the thread split. A loss brings a lgL_fused_desc (its kernels for each
 * float type, its composite) and fills a lgL_fused per call.
 *
 * Rows. A call has `rows` independent units (the elements of a pointwise
 * loss, the rows of a row loss, the samples of CTC), each worth `width`
 * units of work for the thread split. Under NONE the output has one value
 * per row (shape none_shape); under SUM and MEAN the rows are summed in
 * blocks of `block` rows (0, the default: LGL_BLOCK_WORK / width rows,
 * at least one), each block's sum in double by the kernel and the
 * block sums in order by the driver, so the bits do not depend on the
 * thread count. MEAN divides by `denom`.
 *
 * Second order. desc->composite builds the same loss from public
 * primitives; lg_ctx_set_fused(ctx, false) runs it instead of the kernels,
 * the tests use it as the oracle, and a create_graph backward can use it
 * as the fused primitive's differentiable form.
 */
#ifndef LG_FUSED_H
#define LG_FUSED_H

#include "../autograd/autograd.h"

enum { LGL_FUSED_MAX_IN = 4 };
/* A block of the deterministic sum holds about this much work (rows times
 * width) unless the loss sets its own `block`. */
enum { LGL_BLOCK_WORK = 4096 };

typedef struct lgL_fused lgL_fused;

/* One float type's kernels. Pointers are typed by the loss (float * or
 * double *, as the desc's slot).
 * forward: rows [lo, hi). With l (NONE): writes each row's value l[i] and
 *   returns 0. Without: returns the rows' sum (double). With gx: also
 *   writes input 0's gradient, for an upstream of 1, times gscale (the
 *   eager gradient), over the elements of those rows.
 * backward: rows [lo, hi). up: the upstream per row (NONE) or NULL, then
 *   every row's upstream is `scale` (MEAN's denominator applied). d[k]:
 *   where input k's gradient goes (of its shape), NULL when it wants none. */
typedef double (*lgL_forward_fn)(const lgL_fused *f, int64_t lo, int64_t hi, void *l, void *gx,
                                 double gscale);
typedef void (*lgL_backward_fn)(const lgL_fused *f, int64_t lo, int64_t hi, const void *up,
                                double scale, void *const *d);

/* Or, for a loss whose rows are short loops with nothing to vectorise
 * across them, one row at a time (the driver loops, stores or sums):
 * row: row i's value (rounded to the input's type);
 * row_grad: row i's gradients for an upstream g into d[k] (as backward). */
typedef double (*lgL_row_fn)(const lgL_fused *f, int64_t i);
typedef void (*lgL_row_grad_fn)(const lgL_fused *f, int64_t i, double g, void *const *d);

typedef struct lgL_kernels {
    lgL_forward_fn forward;   /* NULL: row */
    lgL_backward_fn backward; /* NULL: row_grad */
    lgL_row_fn row;
    lgL_row_grad_fn row_grad;
} lgL_kernels;

typedef struct lgL_fused_desc {
    int op;            /* the LGA_OP_ id recorded on the tape (src/loss/ops.def) */
    lgL_kernels k[2];  /* [0] float32, [1] float64 */
    bool eager;        /* forward can write input 0's gradient (see lgL_fused) */
    bool sparse_grads; /* backward writes only some elements: gradients start at zero */
    /* The loss as a composite of public primitives, from the same call. */
    lg_tensor *(*composite)(lg_ctx *ctx, const lgL_fused *f);
    /* Optional: after the driver made the output (and the eager gradient, f->gx),
     * before forward; allocates the loss's saved state. false: error recorded. */
    bool (*prepare)(lg_ctx *ctx, lgL_fused *f);
    /* Optional: the loss under SUM or MEAN from the sum of the forward's
     * block sums (MEAN's division not applied), for a loss that keeps more
     * than one sum per row (its others in f->saved). NULL: sum, / denom
     * under MEAN. */
    double (*total)(const lgL_fused *f, double sum);
    /* Optional: the taped backward (lg_grad) in ops, for a loss whose
     * kernel gradient is not its composite's derivative everywhere (BCE at
     * 0 and 1 follows PyTorch's formula). NULL: the composite, rebuilt. */
    lg_status (*taped)(lg_ctx *ctx, const lgL_fused *f, lg_tensor *l, lg_tensor *g);
} lgL_fused_desc;

struct lgL_fused {
    const lgL_fused_desc *desc;
    lg_tensor *in[LGL_FUSED_MAX_IN]; /* inputs; the first ntape are recorded on the tape */
    int nin, ntape;
    int64_t rows, width, block;
    lg_reduction r;
    double denom; /* MEAN's denominator (the driver's default: rows) */
    /* denom as it is even when negative or NaN (a weighted mean's sum of weights) */
    bool denom_set;
    int none_ndim;
    int64_t none_shape[LG_MAX_DIMS];
    double a[4];     /* the loss's scalar parameters (margin, beta, eps, ...) */
    int variant;     /* the loss's own selector (a pointwise kind) */
    const void *idx; /* the loss's integer side data (class targets, lengths) */
    void *saved;     /* the loss's typed state for the backward (step arena) */
    lg_tensor *gx;   /* the eager gradient of input 0 (driver), or NULL */
    lg_tensor *out;  /* the result (driver) */
};

/* A call with its inputs and reduction; rows, width, block and none_shape
 * still to be set by the loss. (Inline and field by field: clearing the
 * whole struct and copying it cost a 64-element loss 5 % of its time.) */
static inline lgL_fused lgL_fused_init(const lgL_fused_desc *desc, int nin, lg_tensor *const *in,
                                       lg_reduction r)
{
    lgL_fused f; /* field by field: none_shape is written by lgL_fused_none_shape */
    f.desc = desc;
    for (int k = 0; k < LGL_FUSED_MAX_IN; k++)
        f.in[k] = k < nin ? in[k] : NULL;
    f.nin = nin, f.ntape = nin;
    f.rows = 0, f.width = 1, f.block = 0;
    f.r = r;
    f.denom = -1, f.denom_set = false;
    f.none_ndim = 0;
    for (int k = 0; k < 4; k++)
        f.a[k] = 0;
    f.variant = 0;
    f.idx = NULL, f.saved = NULL, f.gx = NULL, f.out = NULL;
    return f;
}

/* NONE's shape: input k's first ndim dimensions. */
LG_HIDDEN void lgL_fused_none_shape(lgL_fused *f, const lg_tensor *t, int ndim);
/* Runs the call (kernels, or the composite when the ctx asks), records it
 * on the tape, returns the loss. NULL with the ctx error set. */
LG_HIDDEN lg_tensor *lgL_fused_run(lg_ctx *ctx, lgL_fused *f, const char *who);

/* The taped backward by the composite, rebuilt (what lgA_tbw_fused does
 * without desc->taped). */
LG_HIDDEN lg_status lgL_taped_composite(lg_ctx *ctx, lg_tensor *l, lg_tensor *g);
/* The upstream gradient of each row given g, the loss's (NONE: g itself;
 * SUM: g; MEAN: g / denom), broadcastable against the rows. */
LG_HIDDEN lg_tensor *lgL_row_upstream(lg_ctx *ctx, const lgL_fused *f, lg_tensor *g);

/* Typed views for kernels. */
static inline const float *lgL_inf(const lgL_fused *f, int k)
{
    return (const float *)f->in[k]->data;
}
static inline const double *lgL_ind(const lgL_fused *f, int k)
{
    return (const double *)f->in[k]->data;
}

#endif
