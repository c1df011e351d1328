/* A program that uses an installed lossgrad: one loss, one backward. */
#include <lossgrad.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    lg_ctx *ctx = lg_ctx_new(NULL);
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 1, (int64_t[]){ 3 });
    lg_tensor *y = lg_ones(ctx, LG_F64, 1, (int64_t[]){ 3 });
    lg_tensor *loss = lg_mse_loss(ctx, w, y, NULL);
    if (lg_backward(ctx, loss) != LG_OK) {
        fprintf(stderr, "%s\n", lg_ctx_errmsg(ctx));
        return 1;
    }
    double g = ((double *)lg_tensor_data(lg_tensor_grad(w)))[0]; /* 2 (0 - 1) / 3 */
    /* which OpenBLAS the loader chose: without a RUNPATH, the system's
     * libopenblas.so.0 alternative, whatever build lossgrad was linked to */
    const char *blas = lg_blas_config();
    printf("lossgrad %s: loss %.4f, grad %.4f (OpenBLAS %s OpenMP)\n", lg_version(),
           lg_item(ctx, loss), g, blas && strstr(blas, "USE_OPENMP") ? "with" : "without");
    lg_ctx_free(ctx);
    return (g < -0.666 && g > -0.667) ? 0 : 1;
}
