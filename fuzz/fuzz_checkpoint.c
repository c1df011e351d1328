/* fuzz_checkpoint: arbitrary bytes as a checkpoint file. lg_checkpoint_load
 * must return OK or a clean error, and on error leave the parameters and
 * the optimizer step counts exactly as they were. */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_file.h"

#include <lossgrad.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void load(const char *path, void *user)
{
    bool with_optim = *(const bool *)user;
    lg_ctx *ctx = lg_ctx_new(&(lg_ctx_params){ .seed = 1 });
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 2, (int64_t[]){ 2, 2 });
    lg_tensor *b = lg_param_new(ctx, "b", LG_F32, 1, (int64_t[]){ 3 });
    lg_init_normal(ctx, w, 0, 1);
    lg_init_normal(ctx, b, 0, 1);
    lg_optim *opt = lg_optim_new(ctx, &(lg_optim_opts){ .kind = LG_ADAM, .lr = 0.1 });
    double w0[4];
    float b0[3];
    memcpy(w0, lg_tensor_data(w), sizeof w0);
    memcpy(b0, lg_tensor_data(b), sizeof b0);
    lg_status st = lg_checkpoint_load(ctx, path, with_optim ? opt : NULL);
    if (st != LG_OK) {
        if (!lg_ctx_errmsg(ctx)[0])
            abort(); /* an error needs a message */
        if (memcmp(w0, lg_tensor_data(w), sizeof w0) || memcmp(b0, lg_tensor_data(b), sizeof b0))
            abort(); /* a failed load changed the model */
    }
    lg_ctx_free(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool with_optim = size & 1;
    fuzz_with_file(data, size, load, &with_optim);
    return 0;
}
