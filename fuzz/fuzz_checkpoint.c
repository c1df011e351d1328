/* fuzz_checkpoint: arbitrary bytes as a checkpoint file. lg_checkpoint_load
 * must return OK or a clean error (a status and a message), never hang or
 * crash, and on error leave the ctx exactly as it was: parameters,
 * optimizer state and RNG, compared with a twin ctx that loaded nothing.
 * Odd-sized inputs are loaded with the optimizer, even-sized ones without
 * (corpus: fuzz/make_checkpoint_corpus.py). */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_file.h"

#include <lossgrad.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct model {
    lg_ctx *ctx;
    lg_tensor *w, *b;
    lg_optim *opt;
} model;

/* The one place an optimizer is made (lg_optim_opts may change). */
static lg_optim *make_optim(lg_ctx *ctx)
{
    lg_optim_opts o = lg_optim_opts_default(LG_ADAM);
    o.lr = 0.1;
    return lg_optim_new(ctx, &o);
}

/* One Adam step on sum(w^2) + sum(b^2): it reads and writes every state. */
static void step(model *m)
{
    lg_backward(m->ctx, lg_sum(m->ctx, lg_mul(m->ctx, m->w, m->w), 0, NULL, false));
    lg_backward(m->ctx, lg_sum(m->ctx, lg_mul(m->ctx, m->b, m->b), 0, NULL, false));
    lg_optim_step(m->opt);
    lg_zero_grad(m->ctx);
    lg_step_end(m->ctx);
}

/* "w" F64 [2, 2], "b" F32 [3], Adam with its state made by one step. */
static model make_model(void)
{
    model m;
    m.ctx = lg_ctx_new(&(lg_ctx_params){ .seed = 1 });
    m.w = lg_param_new(m.ctx, "w", LG_F64, 2, (int64_t[]){ 2, 2 });
    m.b = lg_param_new(m.ctx, "b", LG_F32, 1, (int64_t[]){ 3 });
    lg_init_normal(m.ctx, m.w, 0, 1);
    lg_init_normal(m.ctx, m.b, 0, 1);
    m.opt = make_optim(m.ctx);
    if (!m.opt)
        abort();
    step(&m);
    lg_rand_normal(m.ctx); /* a cached spare normal */
    return m;
}

static bool same_params(const model *a, const model *b)
{
    return !memcmp(lg_tensor_data(a->w), lg_tensor_data(b->w), 4 * sizeof(double)) &&
           !memcmp(lg_tensor_data(a->b), lg_tensor_data(b->b), 3 * sizeof(float));
}

/* a and b are in the same state: parameters, lr, step counts, the next
 * draws (the spare first), and the result of a step (the optimizer state). */
static bool same_state(model *a, model *b)
{
    if (!same_params(a, b) || lg_optim_lr(a->opt) != lg_optim_lr(b->opt) ||
        lg_optim_steps(a->opt) != lg_optim_steps(b->opt))
        return false;
    for (int k = 0; k < 3; k++)
        if (lg_rand_normal(a->ctx) != lg_rand_normal(b->ctx))
            return false;
    step(a);
    step(b);
    return same_params(a, b);
}

static void load(const char *path, void *user)
{
    bool with_optim = *(const bool *)user;
    model m = make_model(), twin = make_model();
    lg_status st = lg_checkpoint_load(m.ctx, path, with_optim ? m.opt : NULL);
    if (st != LG_OK) {
        if (!lg_ctx_errmsg(m.ctx)[0])
            abort(); /* an error needs a message */
        lg_ctx_clear_error(m.ctx);
        if (!same_state(&m, &twin))
            abort(); /* a failed load changed the ctx */
    }
    lg_ctx_free(m.ctx);
    lg_ctx_free(twin.ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool with_optim = size & 1;
    fuzz_with_file(data, size, load, &with_optim);
    return 0;
}
