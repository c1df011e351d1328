/* shape.c: reshape (a view), permute and transpose (copies).
 *
 *   reshape: y shares x's data with a new shape of equal numel; dx = g reshaped.
 *   permute: y[i_perm(0), ..., i_perm(n-1)] = x[i_0, ..., i_n-1]; dx = g permuted back.
 *   transpose(a0, a1): permute swapping two axes.
 */
#include "autograd.h"

#include <string.h>

lg_tensor *lg_reshape(lg_ctx *ctx, lg_tensor *x, int ndim, const int64_t *shape)
{
    static const char who[] = "lg_reshape";
    if (!ctx || !lgT_ok(ctx, x, who, "x"))
        return NULL;
    if (ndim < 0 || ndim > LG_MAX_DIMS)
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: ndim = %d, expected 0..%d", who, ndim,
                         LG_MAX_DIMS);
    if (ndim > 0 && !shape)
        return lgC_error(ctx, LG_ERR_NULL, "%s: shape is NULL", who);
    int64_t s[LG_MAX_DIMS], known = 1;
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        s[d] = shape[d];
        if (s[d] == -1 && infer < 0) {
            infer = d;
            continue;
        }
        if (s[d] < 0)
            return lgC_error(ctx, LG_ERR_SHAPE,
                             "%s: shape[%d] = %lld, expected >= 0 (one -1 allowed)", who, d,
                             (long long)s[d]);
        if (s[d] > 0 && known > INT64_MAX / s[d])
            return lgC_error(ctx, LG_ERR_SHAPE, "%s: shape overflows", who);
        known *= s[d];
    }
    if (infer >= 0) {
        if (known == 0 || x->numel % known != 0)
            return lgC_error(ctx, LG_ERR_SHAPE,
                             "%s: cannot infer the -1 size: %lld elements into blocks of %lld", who,
                             (long long)x->numel, (long long)known);
        s[infer] = x->numel / known;
        known *= s[infer];
    }
    if (known != x->numel) {
        char a[160];
        lgT_shape_str(x, a, sizeof a);
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: x %s has %lld elements, the new shape %lld", who,
                         a, (long long)x->numel, (long long)known);
    }
    int64_t numel; /* an empty x's new shape obeys the tensors' bound too */
    if (!lgT_shape_ok(ctx, ndim, s, who, &numel))
        return NULL;
    lg_tensor *y = lgT_view(ctx, x, ndim, s, who);
    return lgA_record(ctx, LGA_OP_reshape, y, 1, &x);
}

lg_status lgA_bw_reshape(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *x = y->in[0];
    lg_tensor *g = lgT_view(ctx, y->grad, x->ndim, x->shape, "lg_backward");
    return g ? lgA_accum_shared(ctx, x, g) : ctx->status;
}

/* dst = src read at strides sstride, over output rows [lo, hi) (rows of
 * oshape's last axis), for elements of a constant size (4 or 8 bytes). */
struct permute_args {
    void *dst;
    const void *src;
    int nd;
    const int64_t *oshape, *sstride;
    int64_t inner, is;
};

static inline __attribute__((always_inline)) void permute_rows(const struct permute_args *a,
                                                               int64_t lo, int64_t hi, size_t esz)
{
    int nd = a->nd;
    int64_t inner = a->inner, is = a->is;
    for (int64_t r = lo; r < hi; r++) {
        int64_t off = 0, q = r;
        for (int d = nd - 2; d >= 0; d--) {
            off += (q % a->oshape[d]) * a->sstride[d];
            q /= a->oshape[d];
        }
        if (esz == 4) {
            uint32_t *dst = a->dst;
            const uint32_t *src = a->src;
            for (int64_t j = 0; j < inner; j++)
                dst[r * inner + j] = src[off + j * is];
        } else {
            uint64_t *dst = a->dst;
            const uint64_t *src = a->src;
            for (int64_t j = 0; j < inner; j++)
                dst[r * inner + j] = src[off + j * is];
        }
    }
}

static void permute32_range(void *arg, int64_t lo, int64_t hi)
{
    permute_rows(arg, lo, hi, 4);
}

static void permute64_range(void *arg, int64_t lo, int64_t hi)
{
    permute_rows(arg, lo, hi, 8);
}

/* dst = src permuted: dst.shape[d] = src.shape[perm[d]]. */
static void permute_copy(lg_ctx *ctx, lg_tensor *dst, const lg_tensor *src, const int *perm)
{
    int64_t st[LG_MAX_DIMS], sstride[LG_MAX_DIMS], s = 1;
    for (int d = src->ndim - 1; d >= 0; d--) {
        st[d] = s;
        s *= src->shape[d];
    }
    for (int d = 0; d < src->ndim; d++)
        sstride[d] = st[perm[d]];
    int nd = dst->ndim;
    int64_t inner = nd ? dst->shape[nd - 1] : 1, rows = inner ? dst->numel / inner : 0;
    struct permute_args a = { .dst = dst->data,
                              .src = src->data,
                              .nd = nd,
                              .oshape = dst->shape,
                              .sstride = sstride,
                              .inner = inner,
                              .is = nd ? sstride[nd - 1] : 1 };
    lgC_parallel(ctx, dst->numel, rows,
                 lgT_dtype_size((lg_dtype)src->dtype) == 4 ? permute32_range : permute64_range, &a);
}

lg_tensor *lg_permute(lg_ctx *ctx, lg_tensor *x, const int *perm)
{
    static const char who[] = "lg_permute";
    if (!ctx || !lgT_ok(ctx, x, who, "x"))
        return NULL;
    if (!perm && x->ndim > 0)
        return lgC_error(ctx, LG_ERR_NULL, "%s: perm is NULL", who);
    int p[LG_MAX_DIMS];
    bool seen[LG_MAX_DIMS] = { false };
    int64_t shape[LG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) {
        if (!lgT_axis(ctx, perm[d], x->ndim, who, &p[d]))
            return NULL;
        if (seen[p[d]])
            return lgC_error(ctx, LG_ERR_AXIS, "%s: perm repeats axis %d", who, perm[d]);
        seen[p[d]] = true;
        shape[d] = x->shape[p[d]];
    }
    lg_tensor *y = lgT_new(ctx, (lg_dtype)x->dtype, x->ndim, shape, who);
    if (!y)
        return NULL;
    permute_copy(ctx, y, x, p);
    memcpy(y->attr.permute.perm, p, sizeof p);
    return lgA_record(ctx, LGA_OP_permute, y, 1, &x);
}

lg_status lgA_bw_permute(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *x = y->in[0];
    int inv[LG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        inv[y->attr.permute.perm[d]] = d;
    lg_tensor *dx = lgT_new_like(ctx, x, "lg_backward");
    if (!dx)
        return ctx->status;
    permute_copy(ctx, dx, y->grad, inv);
    return lgA_accum(ctx, x, dx);
}

lg_tensor *lg_transpose(lg_ctx *ctx, lg_tensor *x, int axis0, int axis1)
{
    static const char who[] = "lg_transpose";
    int a0, a1;
    if (!ctx || !lgT_ok(ctx, x, who, "x") || !lgT_axis(ctx, axis0, x->ndim, who, &a0) ||
        !lgT_axis(ctx, axis1, x->ndim, who, &a1))
        return NULL;
    int perm[LG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        perm[d] = d;
    if (x->ndim > 0) {
        perm[a0] = a1;
        perm[a1] = a0;
    }
    return lg_permute(ctx, x, perm);
}

/* Taped: dx = g reshaped back; permuted back */
lg_status lgA_tbw_reshape(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    lg_tensor *x = y->in[0];
    return lgA_tneeds(y, 0) ? lgA_taccum(ctx, x, lg_reshape(ctx, g, x->ndim, x->shape)) : LG_OK;
}

lg_status lgA_tbw_permute(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    lg_tensor *x = y->in[0];
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    int inv[LG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        inv[y->attr.permute.perm[d]] = d;
    return lgA_taccum(ctx, x, lg_permute(ctx, g, inv));
}

/* expand: y = x broadcast to shape (a copy); dx = g summed back to x's
 * shape over the broadcast axes (in lgA_accum / lgA_taccum). */
lg_tensor *lg_expand(lg_ctx *ctx, lg_tensor *x, int ndim, const int64_t *shape)
{
    static const char who[] = "lg_expand";
    if (!ctx || !lgT_ok_float(ctx, x, who, "x"))
        return NULL;
    if (ndim < x->ndim || ndim > LG_MAX_DIMS)
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: ndim = %d, expected x's %d dims up to %d", who,
                         ndim, x->ndim, LG_MAX_DIMS);
    if (ndim > 0 && !shape)
        return lgC_error(ctx, LG_ERR_NULL, "%s: shape is NULL", who);
    int64_t src[LG_MAX_DIMS];
    int lead = ndim - x->ndim;
    for (int d = 0; d < ndim; d++) {
        src[d] = d < lead ? 1 : x->shape[d - lead];
        if (src[d] != 1 && src[d] != shape[d]) {
            char a[160];
            lgT_shape_str(x, a, sizeof a);
            return lgC_error(ctx, LG_ERR_SHAPE,
                             "%s: x %s does not broadcast to the shape: dim %d is %lld, expected "
                             "1 or %lld",
                             who, a, d, (long long)src[d], (long long)shape[d]);
        }
    }
    lg_tensor *y = lgT_new(ctx, (lg_dtype)x->dtype, ndim, shape, who);
    if (!y)
        return NULL;
    if (y->numel > 0)
        lgT_expand(ctx, y, x, ndim, src);
    return lgA_record(ctx, LGA_OP_expand, y, 1, &x);
}

lg_status lgA_bw_expand(lg_ctx *ctx, lg_tensor *y)
{
    return lgA_accum_shared(ctx, y->in[0], y->grad);
}

lg_status lgA_tbw_expand(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    return lgA_tneeds(y, 0) ? lgA_taccum(ctx, y->in[0], g) : LG_OK;
}
