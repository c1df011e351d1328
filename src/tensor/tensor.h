/* tensor.h: the tensor record, shapes, broadcasting and raw kernels (internal).
 *
 * A tensor is dense and row-major. Its header lives in the ctx's header
 * arena (step tensors) or in persistent memory (parameters); its data in
 * the step arena or persistent memory likewise. reshape shares data; no
 * other op does. The autograd fields (op, inputs, attributes) are filled by
 * src/autograd and read nowhere else.
 */
#ifndef LG_TENSOR_H
#define LG_TENSOR_H

#include "../core/core.h"

#define LGT_MAGIC LGC_HDR_LIVE
#define LGT_DEAD LGC_HDR_DEAD /* a header released by lg_step_end, a scope or gradcheck */
#define LGT_LEAF (-1)

/* Attributes an op records for its backward: one member per op (or
 * family), written by its constructor and read by its backward only. */
typedef union lgT_attr {
    struct {
        double a, b; /* unary.def's scalars: softplus beta, threshold; pow_scalar
                      * p; affine scale, shift; clamp lo, hi */
    } unary;
    struct {
        int kind; /* compare.c's comparison */
    } compare;
    struct {
        bool mask[LG_MAX_DIMS]; /* the reduced axes of x */
        bool keepdim;
    } reduce; /* sum, mean, max, min, logsumexp */
    struct {
        double p;
        bool mask[LG_MAX_DIMS]; /* the reduced axes of x */
    } norm;
    struct {
        int axis; /* normalised into [0, ndim) */
    } axis;       /* softmax, log_softmax, concat, index_select, gather */
    struct {
        int axis;
        int64_t start, step;
    } slice;
    struct {
        int perm[LG_MAX_DIMS]; /* y's axis d is x's axis perm[d] */
    } permute;
    struct {
        bool trans_a, trans_b;
    } matmul;
    struct {
        bool has_h0, has_b_hh;
    } gru; /* gru_cell, gru_sequence */
} lgT_attr;

struct lg_tensor {
    uint32_t magic;         /* LGT_MAGIC while usable, LGT_DEAD once released */
    struct lg_tensor *self; /* its own address: a handle into the middle of another
                             * header (a stale one, after the pool rotated) fails */
    uint8_t dtype;
    uint8_t ndim;
    bool persistent;    /* a parameter or buffer: lives until lg_ctx_free */
    bool is_buffer;     /* a buffer (lg_buffer_new): never requires grad */
    bool requires_grad; /* a leaf that wants a gradient, or an op result on the tape */
    bool consumed;      /* a backward has walked through this op */
    int param_index;    /* a parameter's place in ctx->params (the hook's schedule) */
    uint64_t step;      /* step id it was made in (0 for persistent) */
    lg_ctx *ctx;        /* the owner, so handle-only calls can spot staleness */
    int64_t numel;
    int64_t shape[LG_MAX_DIMS];
    void *data;
    struct lg_tensor *grad;
    const char *name;
    /* autograd */
    int op; /* LGT_LEAF or an lgA op id */
    int nin;
    struct lg_tensor **in; /* inputs; in_inline unless more than 3 */
    struct lg_tensor *in_inline[3];
    struct lg_tensor *saved; /* an auxiliary result (indices, ...) */
    void *aux;               /* op-private data in the step arena (fused losses) */
    lgT_attr attr;
    struct lg_tensor *tape_prev; /* the op recorded before this one */
    /* lg_grad's walk (grad.c): the gradient so far, a tensor that may be on
     * the tape itself, and whether this op's result leads to an input
     * asked for. Both are cleared when the call returns. */
    struct lg_tensor *tgrad;
    bool leads;
    /* Keeps the header at LGC_HEADER_BYTES: the header pools' rotation
     * (core.h) turns LGC_HEADER_BYTES / 8 times, and the stale-handle
     * guarantee is tested over that many step ends. */
    unsigned char reserved_[56];
};

#define LGT_F(t) ((float *)(t)->data)
#define LGT_D(t) ((double *)(t)->data)
#define LGT_I(t) ((int64_t *)(t)->data)

LG_HIDDEN size_t lgT_dtype_size(lg_dtype dt);
LG_HIDDEN const char *lgT_dtype_name(lg_dtype dt);
LG_HIDDEN bool lgT_is_float(lg_dtype dt);

/* t is a usable tensor of its own ctx (for calls that take no ctx). */
LG_HIDDEN bool lgT_live(const lg_tensor *t);
/* Argument checks: record an error naming `who` and `arg` and return false. */
LG_HIDDEN bool lgT_ok(lg_ctx *ctx, const lg_tensor *t, const char *who, const char *arg);
LG_HIDDEN bool lgT_ok_float(lg_ctx *ctx, const lg_tensor *t, const char *who, const char *arg);
LG_HIDDEN bool lgT_same_dtype(lg_ctx *ctx, const lg_tensor *a, const lg_tensor *b, const char *who);
LG_HIDDEN bool lgT_shape_ok(lg_ctx *ctx, int ndim, const int64_t *shape, const char *who,
                            int64_t *numel);

/* New step tensor (data uninitialised). */
LG_HIDDEN lg_tensor *lgT_new(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape,
                             const char *who);
LG_HIDDEN lg_tensor *lgT_new_like(lg_ctx *ctx, const lg_tensor *t, const char *who);
LG_HIDDEN lg_tensor *lgT_zeros_like(lg_ctx *ctx, const lg_tensor *t, const char *who);
/* A step tensor header sharing t's data with another shape (same numel). */
LG_HIDDEN lg_tensor *lgT_view(lg_ctx *ctx, lg_tensor *t, int ndim, const int64_t *shape,
                              const char *who);
LG_HIDDEN bool lgT_same_shape(const lg_tensor *a, const lg_tensor *b);
LG_HIDDEN void lgT_shape_str(const lg_tensor *t, char *buf, size_t n);
LG_HIDDEN double lgT_get(const lg_tensor *t, int64_t i);
LG_HIDDEN void lgT_set(lg_tensor *t, int64_t i, double v);
LG_HIDDEN void lgT_fill(lg_tensor *t, double v);

/* Normalises axis into [0, ndim); false and LG_ERR_AXIS if out of range. */
LG_HIDDEN bool lgT_axis(lg_ctx *ctx, int axis, int ndim, const char *who, int *out);
/* Normalises an axis list into a sorted mask; naxes 0 means all axes. */
LG_HIDDEN bool lgT_axes_mask(lg_ctx *ctx, int naxes, const int *axes, int ndim, const char *who,
                             bool mask[LG_MAX_DIMS]);

/* Broadcasting ---------------------------------------------------------- */

/* The broadcast shape of n shapes; false and LG_ERR_SHAPE if incompatible. */
LG_HIDDEN bool lgT_broadcast_shape(lg_ctx *ctx, int n, const lg_tensor *const *ts, const char *who,
                                   int *ndim, int64_t shape[LG_MAX_DIMS]);

/* Iterates an output shape row by row, with each input's offsets. Dims are
 * coalesced where every operand is contiguous across them. */
typedef struct lgT_iter {
    int nin, ndim;
    int64_t shape[LG_MAX_DIMS];
    int64_t stride[3][LG_MAX_DIMS]; /* element strides, 0 where broadcast */
    int64_t rows, inner;            /* inner = shape[ndim-1] */
} lgT_iter;
LG_HIDDEN void lgT_iter_init(lgT_iter *it, int ndim, const int64_t *shape, int nin,
                             const lg_tensor *const *ins);
/* Offsets of row r's first element in each input. */
LG_HIDDEN void lgT_iter_row(const lgT_iter *it, int64_t r, int64_t off[3]);

/* dst += g summed down to dst's shape over g's broadcast axes. */
LG_HIDDEN void lgT_sum_to(lg_ctx *ctx, lg_tensor *dst, const lg_tensor *g);

/* Reductions ------------------------------------------------------------ */

/* A reduction plan: each output element reduces `rcount` input elements. */
typedef struct lgT_reduce {
    int64_t outn, rcount;
    int nk, nr; /* kept and reduced dims */
    int64_t kshape[LG_MAX_DIMS], kstride[LG_MAX_DIMS];
    int64_t rshape[LG_MAX_DIMS], rstride[LG_MAX_DIMS];
    bool inner_run; /* reduced elements of an output are one contiguous run */
    bool outer_run; /* the kept dims are one contiguous trailing run: input = [rcount][outn] */
} lgT_reduce;
LG_HIDDEN void lgT_reduce_init(lgT_reduce *p, int ndim, const int64_t *shape,
                               const bool mask[LG_MAX_DIMS]);
LG_HIDDEN int64_t lgT_reduce_base(const lgT_reduce *p, int64_t o);
LG_HIDDEN int64_t lgT_reduce_off(const lgT_reduce *p, int64_t r);
/* out[o] = sum of the reduced elements (double accumulation). */
LG_HIDDEN void lgT_reduce_sum(lg_ctx *ctx, const lgT_reduce *p, const lg_tensor *x, double *out);

/* BLAS (blas.c is the only file that includes cblas.h).
 * C[M,N] = alpha * op(A) op(B) + beta * C, row-major, with leading dims. */
LG_HIDDEN void lgT_gemm(lg_ctx *ctx, lg_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                        double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                        double beta, void *c, int64_t ldc);

/* The same product as one OpenBLAS call on the calling thread, for
 * kernels that split their own work over the pool (each call's bits are
 * its own). lgT_blas_init must have run on the ctx's thread first (it sets
 * OpenBLAS to one thread, which workers must not race to do). */
LG_HIDDEN void lgT_blas_init(void);
LG_HIDDEN void lgT_gemm_serial(lg_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                               double alpha, const void *a, int64_t lda, const void *b, int64_t ldb,
                               double beta, void *c, int64_t ldc);

/* Reduction helpers shared by the reducing ops. */
/* Offset of the r-th reduced element from an output's base. */
static inline int64_t lgT_roff(const lgT_reduce *p, int64_t r)
{
    if (p->inner_run)
        return r;
    if (p->nr == 1)
        return r * p->rstride[0];
    return lgT_reduce_off(p, r);
}
/* x's shape with the masked axes set to 1 (keepdim) or removed. */
LG_HIDDEN int lgT_reduced_shape(int ndim, const int64_t *shape, const bool mask[LG_MAX_DIMS],
                                bool keepdim, int64_t out[LG_MAX_DIMS]);
/* dst[i] = src[broadcast(i)]: src has dst's ndim with some axes of size 1
 * (a keepdim-shaped reduction result), same dtype. */
LG_HIDDEN void lgT_expand(lg_ctx *ctx, lg_tensor *dst, const lg_tensor *src, int src_ndim,
                          const int64_t *src_shape);

#endif
