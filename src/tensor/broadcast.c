/* broadcast.c: NumPy/PyTorch broadcasting, and its reverse for gradients.
 *
 * lgT_iter walks an output shape row by row (the last dim is the row),
 * giving each input's offset with stride 0 along broadcast dims. lgT_sum_to
 * is the one place where a gradient is summed back to an input's shape.
 */
#include "tensor.h"

#include <string.h>

bool lgT_broadcast_shape(lg_ctx *ctx, int n, const lg_tensor *const *ts, const char *who, int *ndim,
                         int64_t shape[LG_MAX_DIMS])
{
    int nd = 0;
    for (int i = 0; i < n; i++)
        if (ts[i]->ndim > nd)
            nd = ts[i]->ndim;
    for (int d = 0; d < nd; d++) {
        int64_t s = 1;
        for (int i = 0; i < n; i++) {
            int k = d - (nd - ts[i]->ndim);
            if (k < 0)
                continue;
            int64_t si = ts[i]->shape[k];
            if (si == s || si == 1)
                continue;
            if (s != 1) {
                char a[160], b[160];
                lgT_shape_str(ts[0], a, sizeof a);
                lgT_shape_str(ts[i], b, sizeof b);
                lgC_error(ctx, LG_ERR_SHAPE,
                          "%s: shapes %s and %s do not broadcast (dim %d: %lld vs %lld)", who, a, b,
                          d, (long long)s, (long long)si);
                return false;
            }
            s = si;
        }
        shape[d] = s;
    }
    *ndim = nd;
    return true;
}

void lgT_iter_init(lgT_iter *it, int ndim, const int64_t *shape, int nin,
                   const lg_tensor *const *ins)
{
    int64_t st[3][LG_MAX_DIMS];
    int64_t sh[LG_MAX_DIMS];
    memset(it, 0, sizeof *it);
    it->nin = nin;
    for (int i = 0; i < nin; i++) {
        int64_t s = 1;
        for (int d = ndim - 1; d >= 0; d--) {
            int k = d - (ndim - ins[i]->ndim);
            int64_t si = k >= 0 ? ins[i]->shape[k] : 1;
            st[i][d] = (si == 1) ? 0 : s;
            s *= si;
        }
    }
    /* Coalesce dim d into d+1 when every operand's stride allows it. */
    int nd = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1)
            continue; /* size-1 dims contribute nothing */
        if (nd > 0) {
            bool merge = true;
            for (int i = 0; i < nin; i++)
                if (st[i][d] * shape[d] != it->stride[i][nd - 1] &&
                    !(st[i][d] == 0 && it->stride[i][nd - 1] == 0))
                    merge = false;
            if (merge) {
                sh[nd - 1] *= shape[d];
                for (int i = 0; i < nin; i++)
                    it->stride[i][nd - 1] = st[i][d];
                continue;
            }
        }
        sh[nd] = shape[d];
        for (int i = 0; i < nin; i++)
            it->stride[i][nd] = st[i][d];
        nd++;
    }
    if (nd == 0) {
        sh[0] = 1;
        for (int i = 0; i < nin; i++)
            it->stride[i][0] = 0;
        nd = 1;
    }
    it->ndim = nd;
    memcpy(it->shape, sh, (size_t)nd * sizeof *sh);
    it->inner = sh[nd - 1];
    it->rows = 1;
    for (int d = 0; d < nd - 1; d++)
        it->rows *= sh[d];
    for (int d = 0; d < ndim; d++)
        if (shape[d] == 0)
            it->rows = 0, it->inner = 0;
}

void lgT_iter_row(const lgT_iter *it, int64_t r, int64_t off[3])
{
    off[0] = off[1] = off[2] = 0;
    for (int d = it->ndim - 2; d >= 0; d--) {
        int64_t q = r / it->shape[d], idx = r - q * it->shape[d];
        r = q;
        for (int i = 0; i < it->nin; i++)
            off[i] += idx * it->stride[i][d];
    }
}

/* y[i] += x[i] over [lo, hi), for lgC_parallel. */
struct add_args {
    void *y;
    const void *x;
    bool f32;
};

static void add_range(void *arg, int64_t lo, int64_t hi)
{
    const struct add_args *a = arg;
    if (a->f32)
        for (int64_t i = lo; i < hi; i++)
            ((float *)a->y)[i] += ((const float *)a->x)[i];
    else
        for (int64_t i = lo; i < hi; i++)
            ((double *)a->y)[i] += ((const double *)a->x)[i];
}

void lgT_sum_to(lg_ctx *ctx, lg_tensor *dst, const lg_tensor *g)
{
    bool mask[LG_MAX_DIMS] = { false };
    int off = g->ndim - dst->ndim;
    bool any = false;
    for (int d = 0; d < g->ndim; d++) {
        int k = d - off;
        mask[d] = k < 0 || (dst->shape[k] == 1 && g->shape[d] != 1);
        any |= mask[d];
    }
    if (!any) { /* same numel and layout */
        struct add_args a = { .y = dst->data, .x = g->data, .f32 = dst->dtype == LG_F32 };
        lgC_parallel(ctx, dst->numel, dst->numel, add_range, &a);
        return;
    }
    lgT_reduce p;
    lgT_reduce_init(&p, g->ndim, g->shape, mask);
    /* through a double buffer in the arena, then added into dst */
    double *acc = lgC_salloc(ctx, (size_t)p.outn * sizeof *acc, "backward");
    if (!acc)
        return;
    lgT_reduce_sum(ctx, &p, g, acc);
    for (int64_t o = 0; o < p.outn; o++) {
        double v = acc[o] + lgT_get(dst, o);
        lgT_set(dst, o, v);
    }
}
