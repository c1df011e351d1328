/* pointwise.c: the elementwise losses of losses.def as fused
 * primitives on the fused-loss driver.
 *
 * As composites these losses are 3 to 10 ops each, and each op walks the
 * memory again (forward and back); fused, the forward reads x and y once,
 * summing on the fly (and, while training, writing dl/dx times the
 * reduction's scale), and the backward reads them once more and writes
 * each gradient once. Each kind's composite, in its loss's family file
 * (lgL_composite_<kind>), is the oracle the kernel is tested against.
 * docs/performance.md has the measurements.
 */
#include "../tensor/vmath.h"
#include "fused.h"
#include "loss.h"

#include <math.h>


#define LGC_TEMPLATE "../loss/pointwise_kernel.h"
#include "../core/instantiate.h"

static lg_status pw_taped(lg_ctx *ctx, const lgL_fused *f, lg_tensor *l, lg_tensor *g);

/* One driver description per kind (its composite differs). The target is
 * on the tape unless its derivative is 0 (hinge). */
static const lgL_fused_desc descs[] = {
/* clang-format off */
#define LGL_POINTWISE(kind, name, l, dx, dy) [LGL_PW_##kind] = { LGA_OP_pointwise_loss, KERNELS, true, false, lgL_composite_##kind, NULL, NULL, pw_taped },
/* clang-format on */
/* clang-format off */
#define KERNELS { { pw_fw_f32, pw_bw_f32 }, { pw_fw_f64, pw_bw_f64 } }
/* clang-format on */
#include "losses.def"
#undef KERNELS
};

lg_tensor *lgL_pointwise(lg_ctx *ctx, lgL_pw_kind kind, lg_tensor *x, lg_tensor *y, double a,
                         lg_reduction r, const char *who)
{
    bool batchmean = r == LG_REDUCTION_BATCHMEAN;
    lgL_fused f = lgL_fused_init(&descs[kind], 2, (lg_tensor *[]){ x, y },
                                 batchmean ? LG_REDUCTION_MEAN : r);
    if (batchmean) { /* the sum / input.shape[0] (1 for a 0-d input), as PyTorch divides */
        f.denom = x->ndim > 0 ? (double)x->shape[0] : 1;
        f.denom_set = true;
    }
    f.ntape = kind == LGL_PW_hinge ? 1 : 2;
    f.rows = x->numel;
    f.a[0] = a;
    f.variant = kind;
    lgL_fused_none_shape(&f, x, x->ndim);
    return lgL_fused_run(ctx, &f, who);
}

/* BCE's taped backward is the kernel's gradient in ops (PyTorch's:
 * dx = (x - y) / max(x (1 - x), 1e-12), dy = log(1 - x) - log x), which at
 * x = 0 or 1 is not the clamped composite's derivative (0 times an
 * infinite 1/x there). Every other kind: its composite, rebuilt. */
static lg_status pw_taped(lg_ctx *ctx, const lgL_fused *f, lg_tensor *l, lg_tensor *g)
{
    if (f->variant != LGL_PW_bce)
        return lgL_taped_composite(ctx, l, g);
    lg_tensor *x = f->in[0], *y = f->in[1], *up = lgL_row_upstream(ctx, f, g);
    if (lgA_tneeds(l, 0)) {
        lg_tensor *den = lg_clamp(ctx, lg_mul(ctx, x, lg_add_scalar(ctx, lg_neg(ctx, x), 1)), 1e-12,
                                  INFINITY);
        if (lgA_taccum(ctx, x, lg_mul(ctx, up, lg_div(ctx, lg_sub(ctx, x, y), den))) != LG_OK)
            return ctx->status;
    }
    if (l->nin > 1 && lgA_tneeds(l, 1)) {
        lg_tensor *d = lg_sub(ctx, lg_log(ctx, lg_add_scalar(ctx, lg_neg(ctx, x), 1)), lg_log(ctx, x));
        if (lgA_taccum(ctx, y, lg_mul(ctx, up, d)) != LG_OK)
            return ctx->status;
    }
    return LG_OK;
}
