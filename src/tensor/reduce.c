/* reduce.c: reduction plans and the summing kernel.
 *
 * A plan splits the dims into kept and reduced ones; output o (row-major
 * over the kept dims) reduces the elements base(o) + off(r) for r over the
 * reduced dims. Sums accumulate in double in a fixed order, so results do
 * not depend on the thread count.
 */
#include "tensor.h"

void lgT_reduce_init(lgT_reduce *p, int ndim, const int64_t *shape, const bool mask[LG_MAX_DIMS])
{
    int64_t stride[LG_MAX_DIMS];
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        stride[d] = s;
        s *= shape[d];
    }
    p->nk = p->nr = 0;
    p->outn = p->rcount = 1;
    for (int d = 0; d < ndim; d++) {
        if (mask[d]) {
            p->rshape[p->nr] = shape[d];
            p->rstride[p->nr++] = stride[d];
            p->rcount *= shape[d];
        } else {
            p->kshape[p->nk] = shape[d];
            p->kstride[p->nk++] = stride[d];
            p->outn *= shape[d];
        }
    }
    /* Reduced dims form one contiguous trailing run? */
    p->inner_run = true;
    int64_t expect = 1;
    for (int r = p->nr - 1; r >= 0; r--) {
        if (p->rshape[r] != 1 && p->rstride[r] != expect)
            p->inner_run = false;
        expect *= p->rshape[r];
    }
    p->outer_run = true;
    expect = 1;
    for (int k = p->nk - 1; k >= 0; k--) {
        if (p->kshape[k] != 1 && p->kstride[k] != expect)
            p->outer_run = false;
        expect *= p->kshape[k];
    }
}

/* The offset of flat index i over dims shape[0..n) with these strides. */
static int64_t unravel(int n, const int64_t *shape, const int64_t *stride, int64_t i)
{
    int64_t off = 0;
    for (int k = n - 1; k >= 0; k--) {
        int64_t q = i / shape[k];
        off += (i - q * shape[k]) * stride[k];
        i = q;
    }
    return off;
}

int64_t lgT_reduce_base(const lgT_reduce *p, int64_t o)
{
    return unravel(p->nk, p->kshape, p->kstride, o);
}

int64_t lgT_reduce_off(const lgT_reduce *p, int64_t r)
{
    return unravel(p->nr, p->rshape, p->rstride, r);
}

/* What one kernel call works on; x, src and dst have the call's dtype. */
struct sum_args {
    const lgT_reduce *p;
    const void *x;
    double *out;
    double *parts;   /* inner-run sums cut into chunks: one per chunk */
    int64_t nchunks; /* chunks per output */
};
struct expand_args {
    const lgT_iter *it;
    void *dst;
    const void *src;
};
enum {
    SUM_BLOCK = 1024, /* outputs per column block (outer_run sums) */
    SUM_CHUNK = 4096, /* elements per vector sum of an inner run */
    SUM_PARTS = 2048  /* chunk sums kept on the stack for a parallel sum */
};

#define LGC_TEMPLATE "../tensor/reduce_kernel.h"
#include "../core/instantiate.h"

void lgT_reduce_sum(lg_ctx *ctx, const lgT_reduce *p, const lg_tensor *x, double *out)
{
    struct sum_args a = { .p = p, .x = x->data, .out = out };
    bool f32 = x->dtype == LG_F32;
    a.nchunks = (p->rcount + SUM_CHUNK - 1) / SUM_CHUNK;
    if (p->inner_run && a.nchunks > 1 && p->outn < SUM_PARTS / a.nchunks) {
        /* few long runs (a full sum): their chunks in parallel, then each
         * output's chunk sums in order, the same bits as sum_range's */
        double parts[SUM_PARTS];
        a.parts = parts;
        int64_t np = p->outn * a.nchunks;
        lgC_parallel(ctx, p->outn * p->rcount, np, f32 ? sum_chunks_f32 : sum_chunks_f64, &a);
        for (int64_t o = 0; o < p->outn; o++) {
            double s = 0;
            for (int64_t c = 0; c < a.nchunks; c++)
                s += parts[o * a.nchunks + c];
            out[o] = s;
        }
        return;
    }
    int64_t n = p->inner_run || !p->outer_run ? p->outn : (p->outn + SUM_BLOCK - 1) / SUM_BLOCK;
    lgC_parallel(ctx, p->outn * p->rcount, n, f32 ? sum_range_f32 : sum_range_f64, &a);
}

int lgT_reduced_shape(int ndim, const int64_t *shape, const bool mask[LG_MAX_DIMS], bool keepdim,
                      int64_t out[LG_MAX_DIMS])
{
    int n = 0;
    for (int d = 0; d < ndim; d++) {
        if (!mask[d])
            out[n++] = shape[d];
        else if (keepdim)
            out[n++] = 1;
    }
    return n;
}

void lgT_expand(lg_ctx *ctx, lg_tensor *dst, const lg_tensor *src, int src_ndim,
                const int64_t *src_shape)
{
    lg_tensor shaped = *src; /* a stack view with the keepdim shape */
    shaped.ndim = (uint8_t)src_ndim;
    for (int d = 0; d < src_ndim; d++)
        shaped.shape[d] = src_shape[d];
    const lg_tensor *ins[1] = { &shaped };
    lgT_iter it;
    lgT_iter_init(&it, dst->ndim, dst->shape, 1, ins);
    struct expand_args a = { .it = &it, .dst = dst->data, .src = src->data };
    lgC_parallel(ctx, it.rows * it.inner, it.rows,
                 dst->dtype == LG_F32 ? expand_range_f32 : expand_range_f64, &a);
}
