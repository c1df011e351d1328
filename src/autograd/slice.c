/* slice.c: slice and narrow, concat and stack.
 *
 *   slice(axis, start, stop, step): y = x[..., start:stop:step, ...] (copy);
 *       dx = g scattered back into zeros.
 *   concat(xs, axis): y = [x_0 | x_1 | ...] along axis; dx_i = g's i-th block.
 *   narrow and stack are composites (slice; reshape + concat).
 * A tensor is viewed as [outer, axis, inner] blocks for both.
 */
#include "autograd.h"

#include <string.h>

static void blocks(const lg_tensor *x, int axis, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++)
        *outer *= x->shape[d];
    for (int d = axis + 1; d < x->ndim; d++)
        *inner *= x->shape[d];
}

/* Moves data between x and part = x[start::step] along axis. */
enum { TAKE, PUT, ADD }; /* part <- x[..];  x[..] <- part;  x[..] += part */
static void slice_move(lg_tensor *x, const lg_tensor *part, int axis, int64_t start, int64_t step,
                       int mode)
{
    if (part->numel == 0) /* nothing moves; the outer blocks may still number 2^60 */
        return;
    int64_t outer, inner, n = x->shape[axis], count = part->shape[axis];
    blocks(x, axis, &outer, &inner);
    size_t es = lgT_dtype_size((lg_dtype)x->dtype);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < count; j++) {
            int64_t xi = (o * n + start + j * step) * inner, pi = (o * count + j) * inner;
            char *xp = (char *)x->data + (size_t)xi * es,
                 *pp = (char *)part->data + (size_t)pi * es;
            if (mode == TAKE)
                memcpy(pp, xp, (size_t)inner * es);
            else if (mode == PUT)
                memcpy(xp, pp, (size_t)inner * es);
            else if (x->dtype == LG_F32)
                for (int64_t k = 0; k < inner; k++)
                    ((float *)xp)[k] += ((const float *)pp)[k];
            else
                for (int64_t k = 0; k < inner; k++)
                    ((double *)xp)[k] += ((const double *)pp)[k];
        }
}

lg_tensor *lg_slice(lg_ctx *ctx, lg_tensor *x, int axis, int64_t start, int64_t stop, int64_t step)
{
    static const char who[] = "lg_slice";
    int ax;
    if (!ctx || !lgT_ok(ctx, x, who, "x"))
        return NULL;
    if (x->ndim == 0)
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: x is 0-d, expected at least 1 dim", who);
    if (!lgT_axis(ctx, axis, x->ndim, who, &ax))
        return NULL;
    if (step < 1)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: step = %lld, expected >= 1", who, (long long)step);
    int64_t n = x->shape[ax];
    if (start < 0)
        start = start + n < 0 ? 0 : start + n;
    if (stop < 0)
        stop = stop + n < 0 ? 0 : stop + n;
    if (start > n)
        start = n;
    if (stop > n)
        stop = n;
    /* ceil((stop - start) / step) without forming stop - start + step - 1,
     * which overflows for a step near INT64_MAX */
    int64_t count = stop > start ? (stop - start - 1) / step + 1 : 0;
    int64_t shape[LG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[ax] = count;
    lg_tensor *y = lgT_new(ctx, (lg_dtype)x->dtype, x->ndim, shape, who);
    if (!y)
        return NULL;
    slice_move(x, y, ax, start, step, TAKE);
    y->attr.slice.axis = ax;
    y->attr.slice.start = start;
    y->attr.slice.step = step;
    return lgA_record(ctx, LGA_OP_slice, y, 1, &x);
}

lg_status lgA_bw_slice(lg_ctx *ctx, lg_tensor *y)
{
    /* added into x's gradient in place: the slices of one tensor (the gates
     * of a recurrent cell, the steps of a sequence) share one buffer */
    lg_tensor *dx = lgA_grad_buffer(ctx, y->in[0]);
    if (!dx)
        return ctx->status;
    slice_move(dx, y->grad, y->attr.slice.axis, y->attr.slice.start, y->attr.slice.step, ADD);
    return LG_OK;
}

lg_tensor *lg_narrow(lg_ctx *ctx, lg_tensor *x, int axis, int64_t start, int64_t length)
{
    static const char who[] = "lg_narrow";
    int ax;
    if (!ctx || !lgT_ok(ctx, x, who, "x") || !lgT_axis(ctx, axis, x->ndim, who, &ax))
        return NULL;
    int64_t n = x->ndim ? x->shape[ax] : 1;
    if (start < 0)
        start += n;
    if (start < 0 || length < 0 || start > n || length > n - start)
        return lgC_error(ctx, LG_ERR_INDEX,
                         "%s: start %lld and length %lld do not fit an axis of size %lld", who,
                         (long long)start, (long long)length, (long long)n);
    return lg_slice(ctx, x, ax, start, start + length, 1);
}

lg_tensor *lg_concat(lg_ctx *ctx, int n, lg_tensor *const *xs, int axis)
{
    static const char who[] = "lg_concat";
    if (!ctx)
        return NULL;
    if (n < 1 || !xs)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: n = %d tensors, expected >= 1", who, n);
    for (int i = 0; i < n; i++) {
        char arg[24];
        snprintf(arg, sizeof arg, "xs[%d]", i);
        if (!lgT_ok(ctx, xs[i], who, arg))
            return NULL;
    }
    int ax;
    lg_tensor *x0 = xs[0];
    if (x0->ndim == 0)
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: xs[0] is 0-d, expected at least 1 dim", who);
    if (!lgT_axis(ctx, axis, x0->ndim, who, &ax))
        return NULL;
    int64_t shape[LG_MAX_DIMS];
    memcpy(shape, x0->shape, sizeof shape);
    shape[ax] = 0;
    for (int i = 0; i < n; i++) {
        bool fits = xs[i]->ndim == x0->ndim && xs[i]->dtype == x0->dtype;
        for (int d = 0; fits && d < x0->ndim; d++)
            fits = d == ax || xs[i]->shape[d] == x0->shape[d];
        if (!fits) {
            char a[160], b[160];
            lgT_shape_str(x0, a, sizeof a);
            lgT_shape_str(xs[i], b, sizeof b);
            return lgC_error(ctx, xs[i]->dtype == x0->dtype ? LG_ERR_SHAPE : LG_ERR_DTYPE,
                             "%s: xs[%d] is %s %s, expected %s with shape %s but along axis %d",
                             who, i, lgT_dtype_name((lg_dtype)xs[i]->dtype), b,
                             lgT_dtype_name((lg_dtype)x0->dtype), a, ax);
        }
        if (__builtin_add_overflow(shape[ax], xs[i]->shape[ax], &shape[ax]))
            return lgC_error(ctx, LG_ERR_SHAPE,
                             "%s: the sizes along axis %d add up past INT64_MAX (at xs[%d])", who,
                             ax, i);
    }
    lg_tensor *y = lgT_new(ctx, (lg_dtype)x0->dtype, x0->ndim, shape, who);
    if (!y)
        return NULL;
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        slice_move(y, xs[i], ax, off, 1, PUT);
        off += xs[i]->shape[ax];
    }
    y->attr.axis.axis = ax;
    return lgA_record(ctx, LGA_OP_concat, y, n, xs);
}

lg_status lgA_bw_concat(lg_ctx *ctx, lg_tensor *y)
{
    int ax = y->attr.axis.axis;
    int64_t off = 0;
    for (int i = 0; i < y->nin; i++) {
        lg_tensor *x = y->in[i];
        if (x->requires_grad) {
            lg_tensor *dx = lgT_new_like(ctx, x, "lg_backward");
            if (!dx)
                return ctx->status;
            slice_move(y->grad, dx, ax, off, 1, TAKE);
            if (lgA_accum(ctx, x, dx) != LG_OK)
                return ctx->status;
        }
        off += x->shape[ax];
    }
    return LG_OK;
}

lg_tensor *lg_stack(lg_ctx *ctx, int n, lg_tensor *const *xs, int axis)
{
    static const char who[] = "lg_stack";
    if (!ctx)
        return NULL;
    if (n < 1 || !xs)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: n = %d tensors, expected >= 1", who, n);
    if (!lgT_ok(ctx, xs[0], who, "xs[0]"))
        return NULL;
    int nd = xs[0]->ndim, ax;
    if (nd >= LG_MAX_DIMS)
        return lgC_error(ctx, LG_ERR_SHAPE, "%s: stacking %d-d tensors exceeds %d dims", who, nd,
                         LG_MAX_DIMS);
    if (!lgT_axis(ctx, axis, nd + 1, who, &ax))
        return NULL;
    lg_tensor **parts = lgC_salloc(ctx, (size_t)n * sizeof *parts, who);
    if (!parts)
        return NULL;
    for (int i = 0; i < n; i++) {
        char arg[24];
        snprintf(arg, sizeof arg, "xs[%d]", i);
        if (!lgT_ok(ctx, xs[i], who, arg))
            return NULL;
        if (!lgT_same_shape(xs[i], xs[0])) {
            char a[160], b[160];
            lgT_shape_str(xs[0], a, sizeof a);
            lgT_shape_str(xs[i], b, sizeof b);
            return lgC_error(ctx, LG_ERR_SHAPE, "%s: xs[%d] has shape %s, expected %s like xs[0]",
                             who, i, b, a);
        }
        int64_t shape[LG_MAX_DIMS];
        for (int d = 0, k = 0; d <= nd; d++)
            shape[d] = d == ax ? 1 : xs[i]->shape[k++];
        parts[i] = lg_reshape(ctx, xs[i], nd + 1, shape);
        if (!parts[i])
            return NULL;
    }
    return lg_concat(ctx, n, parts, ax);
}

/* Taped backwards ------------------------------------------------------- */

lg_status lgA_tbw_slice(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    return lgA_taccum(ctx, y->in[0],
                      lgA_slice_adjoint(ctx, g, y->in[0], y->attr.slice.axis, y->attr.slice.start,
                                        y->attr.slice.step));
}

lg_status lgA_tbw_concat(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    int ax = y->attr.axis.axis;
    int64_t off = 0;
    for (int i = 0; i < y->nin; i++) {
        lg_tensor *x = y->in[i];
        if (lgA_tneeds(y, i) && lgA_taccum(ctx, x, lg_narrow(ctx, g, ax, off, x->shape[ax])) != LG_OK)
            return ctx->status;
        off += x->shape[ax];
    }
    return LG_OK;
}

/* slice_adjoint: y = zeros of x's shape with y[start::step] = g along axis
 * (a slice's gradient as an op); its gradient is the slice of gy. */
lg_tensor *lgA_slice_adjoint(lg_ctx *ctx, lg_tensor *g, const lg_tensor *x, int axis,
                             int64_t start, int64_t step)
{
    if (!g)
        return NULL;
    lg_tensor *y = lgT_zeros_like(ctx, x, "lg_grad");
    if (!y)
        return NULL;
    slice_move(y, g, axis, start, step, ADD);
    y->attr.slice.axis = axis;
    y->attr.slice.start = start;
    y->attr.slice.step = step;
    return lgA_record(ctx, LGA_OP_slice_adjoint, y, 1, &g);
}

lg_status lgA_bw_slice_adjoint(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *g = y->in[0];
    lg_tensor *dg = lgT_new_like(ctx, g, "lg_backward");
    if (!dg)
        return ctx->status;
    slice_move(y->grad, dg, y->attr.slice.axis, y->attr.slice.start, y->attr.slice.step, TAKE);
    return lgA_accum(ctx, g, dg);
}

lg_status lgA_tbw_slice_adjoint(lg_ctx *ctx, lg_tensor *y, lg_tensor *gy)
{
    lg_tensor *g = y->in[0];
    if (!lgA_tneeds(y, 0))
        return LG_OK;
    int ax = y->attr.slice.axis;
    int64_t start = y->attr.slice.start, step = y->attr.slice.step, n = g->shape[ax];
    int64_t stop = n > 0 ? start + (n - 1) * step + 1 : start;
    return lgA_taccum(ctx, g, lg_slice(ctx, gy, ax, start, stop, step));
}
