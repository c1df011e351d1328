/* write_sample: writes a small checkpoint with known values, for the
 * Python reader in tools/check_safetensors.py (ctest: checkpoint_python). */
#include <lossgrad.h>

#include <stdio.h>

int main(int argc, char **argv)
{
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
