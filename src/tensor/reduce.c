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

int64_t lgT_reduce_base(const lgT_reduce *p, int64_t o)
{
    int64_t off = 0;
    for (int k = p->nk - 1; k >= 0; k--) {
        int64_t q = o / p->kshape[k];
        off += (o - q * p->kshape[k]) * p->kstride[k];
        o = q;
    }
    return off;
}

int64_t lgT_reduce_off(const lgT_reduce *p, int64_t r)
{
    int64_t off = 0;
    for (int k = p->nr - 1; k >= 0; k--) {
        int64_t q = r / p->rshape[k];
        off += (r - q * p->rshape[k]) * p->rstride[k];
        r = q;
    }
    return off;
}

#define SUM_KERNEL(T, NAME)                                                                        \
    LGC_VECTOR_CLONES static void NAME(lg_ctx *ctx, const lgT_reduce *p, const T *x, double *out)  \
    {                                                                                              \
        int64_t outn = p->outn, rc = p->rcount;                                                    \
        if (p->inner_run) {                                                                        \
            LGT_FOR(                                                                               \
                ctx, outn *rc, for (int64_t o = 0; o < outn; o++) {                                \
                    const T *xo = x + lgT_reduce_base(p, o);                                       \
                    double s = 0;                                                                  \
                    for (int64_t r = 0; r < rc; r++)                                               \
                        s += xo[r];                                                                \
                    out[o] = s;                                                                    \
                });                                                                                \
        } else if (p->outer_run) {                                                                 \
            /* rows of outn: summed row by row (same order per output as a                         \
             * column walk, but streaming and vectorised); threads take column                     \
             * blocks */                                                                           \
            int64_t nb = (outn + 1023) / 1024;                                                     \
            LGT_FOR(                                                                               \
                ctx, outn *rc, for (int64_t b = 0; b < nb; b++) {                                  \
                    int64_t o0 = b * 1024, o1 = o0 + 1024 < outn ? o0 + 1024 : outn;               \
                    for (int64_t o = o0; o < o1; o++)                                              \
                        out[o] = 0;                                                                \
                    for (int64_t r = 0; r < rc; r++) {                                             \
                        const T *xr = x + r * outn;                                                \
                        for (int64_t o = o0; o < o1; o++)                                          \
                            out[o] += xr[o];                                                       \
                    }                                                                              \
                });                                                                                \
        } else if (p->nr == 1) {                                                                   \
            int64_t st = p->rstride[0];                                                            \
            LGT_FOR(                                                                               \
                ctx, outn *rc, for (int64_t o = 0; o < outn; o++) {                                \
                    const T *xo = x + lgT_reduce_base(p, o);                                       \
                    double s = 0;                                                                  \
                    for (int64_t r = 0; r < rc; r++)                                               \
                        s += xo[r * st];                                                           \
                    out[o] = s;                                                                    \
                });                                                                                \
        } else {                                                                                   \
            LGT_FOR(                                                                               \
                ctx, outn *rc, for (int64_t o = 0; o < outn; o++) {                                \
                    const T *xo = x + lgT_reduce_base(p, o);                                       \
                    double s = 0;                                                                  \
                    for (int64_t r = 0; r < rc; r++)                                               \
                        s += xo[lgT_reduce_off(p, r)];                                             \
                    out[o] = s;                                                                    \
                });                                                                                \
        }                                                                                          \
    }

SUM_KERNEL(float, sum_f32)
SUM_KERNEL(double, sum_f64)

void lgT_reduce_sum(lg_ctx *ctx, const lgT_reduce *p, const lg_tensor *x, double *out)
{
    if (x->dtype == LG_F32)
        sum_f32(ctx, p, LGT_F(x), out);
    else
        sum_f64(ctx, p, LGT_D(x), out);
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

#define EXPAND_KERNEL(T, NAME)                                                                     \
    static void NAME(lg_ctx *ctx, const lgT_iter *it, T *dst, const T *src)                        \
    {                                                                                              \
        int64_t inner = it->inner, s = it->stride[0][it->ndim - 1];                                \
        LGT_FOR(                                                                                   \
            ctx, it->rows *inner, for (int64_t r = 0; r < it->rows; r++) {                         \
                int64_t off[3];                                                                    \
                lgT_iter_row(it, r, off);                                                          \
                for (int64_t j = 0; j < inner; j++)                                                \
                    dst[r * inner + j] = src[off[0] + j * s];                                      \
            });                                                                                    \
    }
EXPAND_KERNEL(float, expand_f32)
EXPAND_KERNEL(double, expand_f64)

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
    if (dst->dtype == LG_F32)
        expand_f32(ctx, &it, LGT_F(dst), LGT_F(src));
    else
        expand_f64(ctx, &it, LGT_D(dst), LGT_D(src));
}
