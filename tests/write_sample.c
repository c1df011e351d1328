/* write_sample: writes a small checkpoint with known values, for the
 * Python reader in tools/check_safetensors.py (ctest: checkpoint_python);
 * with "cnn" first, a conv + batch norm + linear model after two training
 * steps, whose names must be PyTorch's state_dict names
 * (checkpoint_cnn_python). */
#include <lossgrad.h>

#include <stdio.h>
#include <string.h>

static int cnn(const char *path)
{
    lg_ctx *ctx = lg_ctx_new(NULL);
    lg_conv *conv = lg_conv2d_new(ctx, "conv1", 1, 4, 3, 3, NULL, NULL);
    lg_batchnorm *bn = lg_batchnorm_new(ctx, "bn1", 4, NULL);
    lg_linear *fc = lg_linear_new(ctx, "fc", 4 * 4 * 4, 10, NULL);
    for (int step = 0; step < 2; step++) {
        lg_tensor *x = lg_randn(ctx, LG_F32, 4, (int64_t[]){ 8, 1, 6, 6 });
        lg_tensor *h = lg_relu(ctx, lg_batchnorm_forward(ctx, bn, lg_conv_forward(ctx, conv, x)));
        lg_tensor *y = lg_linear_forward(ctx, fc, lg_reshape(ctx, h, 2, (int64_t[]){ 8, -1 }));
        lg_backward(ctx, lg_sum(ctx, y, 0, NULL, false));
        lg_step_end(ctx);
    }
    lg_status st = lg_checkpoint_save(ctx, path, NULL);
    if (st != LG_OK)
        fprintf(stderr, "write_sample: %s\n", lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
    return st == LG_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "cnn"))
        return cnn(argv[2]);
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE\n", argv[0]);
        return 2;
    }
    lg_ctx *ctx = lg_ctx_new(NULL);
    lg_tensor *a = lg_param_new(ctx, "layer.a", LG_F32, 2, (int64_t[]){ 2, 3 });
    lg_tensor *b = lg_param_new(ctx, "b", LG_F64, 1, (int64_t[]){ 4 });
    for (int i = 0; i < 6; i++)
        ((float *)lg_tensor_data(a))[i] = 0.5f * (float)i;
    for (int i = 0; i < 4; i++)
        ((double *)lg_tensor_data(b))[i] = -1.5 + (double)i / 3;
    lg_status st = lg_checkpoint_save(ctx, argv[1], NULL);
    if (st != LG_OK)
        fprintf(stderr, "write_sample: %s\n", lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
    return st == LG_OK ? 0 : 1;
}
