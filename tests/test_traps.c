/* test_traps.c: the silent traps of issue 13 turned into errors (section 2),
 * and its hardening findings on the core, autograd and optimizers (F3, F4,
 * F6, F7, F8, F11, F16). Each test is named after its item and failed on
 * the code before the fix. */
#include "helpers.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ERRMSG_HAS(ctx, s)                                                                         \
    cr_assert(strstr(lg_ctx_errmsg(ctx), s) != NULL, "'%s' lacks '%s'", lg_ctx_errmsg(ctx), s)

static lg_optim *sgd(lg_ctx *ctx, double lr)
{
    lg_optim_opts o = lg_optim_opts_default(LG_SGD);
    o.lr = lr;
    return lg_optim_new(ctx, &o);
}

/* ------------------------------------------------------------------ */
/* Section 2: silent traps become errors                               */
/* ------------------------------------------------------------------ */

Test(traps, optim_without_parameters_is_an_error)
{
    lg_ctx *ctx = test_ctx(1);
    cr_assert_null(sgd(ctx, 0.1));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_VALUE);
    ERRMSG_HAS(ctx, "lg_optim_new: the ctx has no parameters yet");
    lg_ctx_clear_error(ctx);
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 1, SHAPE(2));
    lg_optim_opts o = lg_optim_opts_default(LG_ADAM);
    o.params = &w, o.nparams = 0;
    cr_assert_null(lg_optim_new(ctx, &o));
    ERRMSG_HAS(ctx, "nparams = 0");
    lg_ctx_clear_error(ctx);
    lg_tensor *twice[] = { w, w };
    o.params = twice, o.nparams = 2;
    cr_assert_null(lg_optim_new(ctx, &o));
    ERRMSG_HAS(ctx, "params[1] is params[0] again");
    lg_ctx_clear_error(ctx);
    cr_assert_not_null(sgd(ctx, 0.1), "%s", lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
}

Test(traps, reused_parameter_name_caught_at_creation)
{
    lg_ctx *ctx = test_ctx(2);
    cr_assert_not_null(lg_param_new(ctx, "w", LG_F64, 1, SHAPE(2)));
    cr_assert_null(lg_param_new(ctx, "w", LG_F64, 1, SHAPE(3)));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_VALUE);
    ERRMSG_HAS(ctx, "lg_param_new: name \"w\" is taken by parameter 0");
    cr_assert_eq(lg_param_count(ctx), 1);
    lg_ctx_clear_error(ctx);
    cr_assert_not_null(lg_linear_new(ctx, "fc", 2, 2, NULL));
    cr_assert_null(lg_linear_new(ctx, "fc", 3, 3, NULL));
    ERRMSG_HAS(ctx, "lg_linear_new: lg_param_new: name \"fc.weight\" is taken");
    lg_ctx_clear_error(ctx);
    cr_assert_not_null(lg_param_new(ctx, NULL, LG_F64, 1, SHAPE(2)), "unnamed: no clash");
    cr_assert_not_null(lg_param_new(ctx, NULL, LG_F64, 1, SHAPE(2)));
    lg_ctx_free(ctx);
}

Test(traps, unmatched_no_grad_end_is_an_error)
{
    lg_ctx *ctx = test_ctx(3);
    cr_assert_eq(lg_no_grad_end(ctx), LG_ERR_STATE);
    ERRMSG_HAS(ctx, "lg_no_grad_end: no lg_no_grad_begin is open");
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_no_grad_begin(ctx), LG_OK);
    cr_assert_eq(lg_no_grad_end(ctx), LG_OK);
    cr_assert_eq(lg_no_grad_end(ctx), LG_ERR_STATE, "the second end has no begin");
    lg_ctx_free(ctx);
}

/* F6 as well: thread counts that libgomp cannot take (INT_MAX printed and
 * exited inside libgomp, 65536 crashed) are refused with a message. */
Test(traps, ctx_threads_out_of_range_are_errors)
{
    const int bad[] = { -1, INT_MIN, LG_MAX_THREADS + 1, 65536, INT_MAX };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lg_ctx_params p = lg_ctx_params_default();
        p.threads = bad[i];
        lg_ctx *ctx = lg_ctx_new(&p);
        cr_assert_not_null(ctx);
        cr_assert_eq(lg_ctx_status(ctx), LG_ERR_VALUE, "threads = %d", bad[i]);
        ERRMSG_HAS(ctx, "lg_ctx_new: params->threads");
        /* the ctx refuses every call, with the reason, which cannot be cleared */
        lg_ctx_clear_error(ctx);
        cr_assert_null(lg_zeros(ctx, LG_F32, 1, SHAPE(2)));
        cr_assert_eq(lg_ctx_status(ctx), LG_ERR_VALUE);
        ERRMSG_HAS(ctx, "lg_ctx_new: params->threads");
        cr_assert_null(lg_param_new(ctx, "w", LG_F32, 1, SHAPE(2)));
        lg_ctx_free(ctx);
    }
    lg_ctx *ctx = test_ctx(4);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(lg_ctx_set_threads(ctx, bad[i]), LG_ERR_VALUE, "threads = %d", bad[i]);
        ERRMSG_HAS(ctx, "lg_ctx_set_threads");
        lg_ctx_clear_error(ctx);
    }
    cr_assert_eq(lg_ctx_set_threads(ctx, 0), LG_ERR_VALUE);
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_ctx_set_threads(ctx, LG_MAX_THREADS), LG_OK);
    lg_tensor *x = lg_randn(ctx, LG_F32, 1, SHAPE(100000)); /* a parallel kernel runs */
    cr_assert_not_null(lg_exp(ctx, x), "%s", lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
}

Test(traps, freeze_parameter_with_requires_grad)
{
    lg_ctx *ctx = test_ctx(5);
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 1, SHAPE(1));
    lg_tensor *b = lg_param_new(ctx, "b", LG_F64, 1, SHAPE(1));
    lg_copy_into(ctx, w, lg_full(ctx, LG_F64, 1, SHAPE(1), 2));
    lg_copy_into(ctx, b, lg_full(ctx, LG_F64, 1, SHAPE(1), 3));
    lg_optim *opt = sgd(ctx, 0.5);
    cr_assert_eq(lg_requires_grad(ctx, w, false), LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert_not(lg_tensor_requires_grad(w));
    for (int step = 0; step < 2; step++) {
        lg_tensor *loss = lg_sum(ctx, lg_mul(ctx, w, b), 0, NULL, false); /* d/db = w */
        cr_assert_eq(lg_backward(ctx, loss), LG_OK, "%s", lg_ctx_errmsg(ctx));
        cr_assert_null(lg_tensor_grad(w), "a frozen parameter gets no gradient");
        cr_assert_eq(lg_optim_step(opt), LG_OK);
        lg_zero_grad(ctx);
        lg_step_end(ctx);
    }
    cr_assert_eq(((double *)lg_tensor_data(w))[0], 2, "frozen: unchanged");
    cr_assert_eq(((double *)lg_tensor_data(b))[0], 3 - 0.5 * 2 * 2, "b trained");
    /* frozen after it has a gradient: the gradient is kept, the optimizer skips it */
    cr_assert_eq(lg_requires_grad(ctx, w, true), LG_OK);
    lg_backward(ctx, lg_sum(ctx, lg_mul(ctx, w, b), 0, NULL, false));
    cr_assert_not_null(lg_tensor_grad(w));
    lg_requires_grad(ctx, w, false);
    lg_optim_step(opt);
    cr_assert_eq(((double *)lg_tensor_data(w))[0], 2, "frozen with a gradient: skipped");
    cr_assert_not_null(lg_tensor_grad(w), "its gradient is kept, as PyTorch");
    lg_step_end(ctx);
    /* an op's result still cannot be switched */
    lg_tensor *y = lg_mul_scalar(ctx, lg_randn(ctx, LG_F64, 1, SHAPE(2)), 2);
    cr_assert_eq(lg_requires_grad(ctx, y, true), LG_ERR_STATE);
    lg_ctx_free(ctx);
}

Test(traps, errors_name_the_call_the_user_made)
{
    lg_ctx *ctx = test_ctx(6);
    lg_embedding *e = lg_embedding_new(ctx, "emb", 10, 4, NULL);
    int64_t ids[] = { 1, 12, 3 };
    cr_assert_null(lg_embedding_forward(ctx, e, T_FROM(ctx, LG_I64, ids, 3)));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_INDEX);
    ERRMSG_HAS(ctx, "lg_embedding_forward: indices[1] = 12 is out of range for 10 embeddings");
    lg_ctx_clear_error(ctx);
    lg_linear *fc = lg_linear_new(ctx, "fc", 3, 2, NULL);
    cr_assert_null(lg_linear_forward(ctx, fc, lg_randn(ctx, LG_F64, 2, SHAPE(4, 3))));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_DTYPE);
    ERRMSG_HAS(ctx, "lg_linear_forward: x has dtype float64, but the layer's parameters are "
                    "float32");
    lg_ctx_clear_error(ctx);
    /* an error inside a layer made of layers names the outer call first */
    lg_mlp *m = lg_mlp_new(ctx, "mlp", 3, SHAPE(3, 4, 2), NULL);
    cr_assert_null(lg_mlp_forward(ctx, m, lg_randn(ctx, LG_F64, 2, SHAPE(4, 3))));
    cr_assert(strncmp(lg_ctx_errmsg(ctx), "lg_mlp_forward: lg_linear_forward: x has dtype", 46) ==
                  0,
              "%s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    lg_rnn *r = lg_rnn_new(ctx, "gru", LG_GRU, 3, 2, NULL);
    lg_ctx_set_step_limit(ctx, 1); /* any inner allocation fails */
    lg_rnn_result out;
    lg_tensor *x = NULL;
    lg_ctx_set_step_limit(ctx, 0);
    x = lg_randn(ctx, LG_F32, 3, SHAPE(2, 1, 3));
    lg_ctx_set_step_limit(ctx, 1);
    cr_assert_neq(lg_rnn_forward(ctx, r, x, NULL, NULL, NULL, &out), LG_OK);
    cr_assert(strncmp(lg_ctx_errmsg(ctx), "lg_rnn_forward: ", 16) == 0, "%s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    /* losses made of other ops: an inner failure is named by the loss */
    lg_ctx_set_step_limit(ctx, 0);
    lg_tensor *z1 = lg_randn(ctx, LG_F32, 2, SHAPE(64, 32)),
              *z2 = lg_randn(ctx, LG_F32, 2, SHAPE(64, 32));
    lg_ctx_set_step_limit(ctx, lg_ctx_mem_stats(ctx).arena_used + 4096);
    cr_assert_null(lg_nt_xent_loss(ctx, z1, z2, NULL));
    cr_assert(strncmp(lg_ctx_errmsg(ctx), "lg_nt_xent_loss: lg_", 20) == 0, "%s",
              lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
}

/* A training step that forgets lg_step_end: with a step limit the ctx says
 * so instead of growing without bound. */
Test(traps, step_limit_reports_a_forgotten_step_end)
{
    lg_ctx *ctx = test_ctx(7);
    lg_linear *fc = lg_linear_new(ctx, "fc", 16, 4, NULL);
    lg_optim *opt = sgd(ctx, 0.01);
    size_t limit = 1 << 20;
    cr_assert_eq(lg_ctx_set_step_limit(ctx, limit), LG_OK);
    int failed_at = -1;
    for (int step = 0; step < 2000 && failed_at < 0; step++) {
        lg_tensor *x = lg_randn(ctx, LG_F32, 2, SHAPE(32, 16));
        lg_tensor *loss = lg_mse_loss(ctx, lg_linear_forward(ctx, fc, x),
                                      lg_zeros(ctx, LG_F32, 2, SHAPE(32, 4)), NULL);
        if (lg_backward(ctx, loss) != LG_OK)
            failed_at = step;
        lg_optim_step(opt);
        lg_zero_grad(ctx);
        /* no lg_step_end */
    }
    cr_assert_geq(failed_at, 1, "the limit stops the runaway step");
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_STATE);
    ERRMSG_HAS(ctx, "over the limit of 1048576 set by lg_ctx_set_step_limit (is an lg_step_end "
                    "missing?)");
    cr_assert_leq(lg_ctx_mem_stats(ctx).arena_used, limit);
    lg_ctx_clear_error(ctx);
    lg_step_end(ctx);
    for (int step = 0; step < 2000; step++) { /* with lg_step_end: never */
        lg_tensor *x = lg_randn(ctx, LG_F32, 2, SHAPE(32, 16));
        lg_tensor *loss = lg_mse_loss(ctx, lg_linear_forward(ctx, fc, x),
                                      lg_zeros(ctx, LG_F32, 2, SHAPE(32, 4)), NULL);
        cr_assert_eq(lg_backward(ctx, loss), LG_OK, "%s", lg_ctx_errmsg(ctx));
        lg_optim_step(opt);
        lg_zero_grad(ctx);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

/* Inference of a large batch in bounded memory: a 784-512-512-10 MLP over
 * 5,000 images, 250 at a time, each batch in a scope that keeps only its
 * predicted classes. The step's memory stays about one batch's worth
 * instead of every batch's, and the predictions are those of the plain run. */
enum { IMAGES = 5000, BATCH = 250, PIX = 784 };

static lg_tensor *predict_all(lg_ctx *ctx, lg_mlp *m, const float *images, bool scoped)
{
    lg_tensor *classes[IMAGES / BATCH];
    lg_no_grad_begin(ctx);
    for (int b = 0; b < IMAGES / BATCH; b++) {
        if (scoped)
            lg_scope_begin(ctx);
        lg_tensor *x =
            lg_tensor_from(ctx, LG_F32, images + (size_t)b * BATCH * PIX, 2, SHAPE(BATCH, PIX));
        lg_tensor *idx = NULL;
        lg_max(ctx, lg_mlp_forward(ctx, m, x), 1, (int[]){ 1 }, false, &idx);
        classes[b] = idx;
        if (scoped)
            cr_assert_eq(lg_scope_end(ctx, 1, &classes[b]), LG_OK, "%s", lg_ctx_errmsg(ctx));
    }
    lg_no_grad_end(ctx);
    return lg_concat(ctx, IMAGES / BATCH, classes, 0);
}

Test(traps, scope_bounds_inference_memory)
{
    lg_ctx *ctx = test_ctx(8);
    lg_mlp *m = lg_mlp_new(ctx, "mlp", 4, SHAPE(PIX, 512, 512, 10), NULL);
    float *images = malloc((size_t)IMAGES * PIX * sizeof *images);
    for (size_t i = 0; i < (size_t)IMAGES * PIX; i++)
        images[i] = (float)lg_rand_uniform(ctx);
    lg_tensor *plain = predict_all(ctx, m, images, false);
    size_t plain_used = lg_ctx_mem_stats(ctx).arena_used;
    int64_t *want = malloc(IMAGES * sizeof *want);
    memcpy(want, lg_tensor_data(plain), IMAGES * sizeof *want);
    lg_step_end(ctx);
    lg_tensor *scoped = predict_all(ctx, m, images, true);
    size_t scoped_used = lg_ctx_mem_stats(ctx).arena_used;
    cr_assert_not_null(scoped, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(memcmp(want, lg_tensor_data(scoped), IMAGES * sizeof *want), 0,
                 "the same predictions");
    /* one batch holds its input (784 KB) and activations (1 MB): the scoped
     * step ends with the predictions and the headers only */
    cr_assert_lt(scoped_used, plain_used / 20, "scoped %zu bytes, plain %zu", scoped_used,
                 plain_used);
    cr_assert_lt(scoped_used, (size_t)1 << 20, "%zu", scoped_used);
    free(want);
    free(images);
    lg_ctx_free(ctx);
}

Test(traps, scope_keeps_results_and_stales_the_rest)
{
    lg_ctx *ctx = test_ctx(9);
    lg_tensor *before = lg_full(ctx, LG_F64, 1, SHAPE(3), 5);
    cr_assert_eq(lg_scope_begin(ctx), LG_OK);
    lg_tensor *inner = lg_mul_scalar(ctx, before, 2);
    lg_tensor *view = lg_reshape(ctx, inner, 2, SHAPE(3, 1));
    lg_tensor *drop = lg_add_scalar(ctx, before, 1);
    lg_tensor *keep[] = { inner, view, view, before };
    cr_assert_eq(lg_scope_end(ctx, 4, keep), LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_tensor_check(ctx, keep[0]), LG_OK);
    cr_assert_eq(lg_tensor_check(ctx, keep[1]), LG_OK);
    cr_assert_eq(keep[1], keep[2], "kept twice: one tensor");
    cr_assert_eq(keep[3], before, "a tensor from before the scope keeps its handle");
    cr_assert_eq(lg_tensor_check(ctx, before), LG_OK);
    cr_assert_eq(((double *)lg_tensor_data(keep[0]))[2], 10);
    cr_assert_eq(lg_tensor_ndim(keep[1]), 2);
    cr_assert_eq(lg_tensor_data(keep[1]), lg_tensor_data(keep[0]),
                 "the view still shares its data");
    cr_assert_eq(lg_tensor_check(ctx, drop), LG_ERR_STALE, "freed by the scope");
    cr_assert_null(lg_tensor_data(drop));
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_tensor_check(ctx, inner), LG_ERR_STALE, "a kept tensor's old handle");
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_scope_end(ctx, 0, NULL), LG_ERR_STATE);
    ERRMSG_HAS(ctx, "no lg_scope_begin is open");
    lg_ctx_clear_error(ctx);
    /* a backward inside a scope: the gradient it made for an outer leaf goes */
    lg_tensor *x = lg_randn(ctx, LG_F64, 1, SHAPE(4));
    lg_requires_grad(ctx, x, true);
    lg_tensor *outer = lg_sum(ctx, lg_square(ctx, x), 0, NULL, false);
    lg_scope_begin(ctx);
    cr_assert_eq(lg_backward(ctx, lg_sum(ctx, lg_exp(ctx, x), 0, NULL, false)), LG_OK);
    cr_assert_not_null(lg_tensor_grad(x));
    lg_scope_end(ctx, 0, NULL);
    cr_assert_null(lg_tensor_grad(x), "its gradient lived in the scope");
    /* the graph made before the scope is still there to walk */
    cr_assert_eq(lg_backward(ctx, outer), LG_OK, "%s", lg_ctx_errmsg(ctx));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(get(lg_tensor_grad(x), i), 2 * get(x, i));
    /* scopes nest; lg_step_end closes them all */
    lg_scope_begin(ctx);
    lg_scope_begin(ctx);
    lg_step_end(ctx);
    cr_assert_eq(lg_scope_end(ctx, 0, NULL), LG_ERR_STATE);
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Section 3: hardening findings                                       */
/* ------------------------------------------------------------------ */

static lg_tensor *ends_the_step(lg_ctx *ctx, lg_tensor *const *x, void *user)
{
    (void)x, (void)user;
    lg_step_end(ctx);
    return lg_mul_scalar(ctx, lg_randn(ctx, LG_F64, 1, SHAPE(2)), 2);
}

static lg_tensor *ends_later(lg_ctx *ctx, lg_tensor *const *x, void *user)
{
    int *calls = user;
    if (++*calls == 3)
        lg_step_end(ctx); /* in the middle of the numeric differences */
    return lg_square(ctx, x[0]);
}

Test(hardening, F3_gradcheck_fn_ending_the_step_is_reported)
{
    lg_ctx *ctx = test_ctx(10);
    lg_tensor *x = lg_randn(ctx, LG_F64, 1, SHAPE(2));
    lg_gradcheck_report r;
    cr_assert_eq(lg_gradcheck(ctx, ends_the_step, NULL, 1, &x, NULL, &r), LG_ERR_STATE);
    ERRMSG_HAS(ctx, "lg_gradcheck: fn called lg_step_end");
    cr_assert_not(r.ok);
    lg_ctx_clear_error(ctx);
    x = lg_randn(ctx, LG_F64, 1, SHAPE(2));
    int calls = 0;
    cr_assert_eq(lg_gradcheck(ctx, ends_later, &calls, 1, &x, NULL, &r), LG_ERR_STATE);
    ERRMSG_HAS(ctx, "lg_gradcheck: fn called lg_step_end");
    lg_ctx_clear_error(ctx);
    /* the ctx goes on */
    lg_tensor *y = lg_randn(ctx, LG_F64, 1, SHAPE(2));
    cr_assert_not_null(lg_exp(ctx, y), "%s", lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
}

/* A step tensor kept past lg_step_end, used k step ends later while new
 * steps make tensors of their own (the reproducer: a 1 read as a 7). */
static void stale_after(lg_ctx *ctx, int k, int per_step)
{
    lg_tensor *old = lg_full(ctx, LG_F64, 1, SHAPE(1), 1);
    for (int i = 0; i < k; i++) {
        lg_step_end(ctx);
        for (int j = 0; j < per_step; j++)
            lg_full(ctx, LG_F64, 1, SHAPE(1), 7);
    }
    cr_assert_eq(lg_tensor_check(ctx, old), LG_ERR_STALE, "after %d step ends", k);
    cr_assert_null(lg_tensor_data(old), "after %d step ends", k);
    cr_assert_eq(lg_tensor_numel(old), 0);
    lg_ctx_clear_error(ctx);
    cr_assert_null(lg_exp(ctx, old));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_STALE);
    lg_ctx_clear_error(ctx);
    lg_step_end(ctx);
}

Test(hardening, F4_stale_handle_caught_after_any_number_of_step_ends)
{
    lg_ctx *ctx = test_ctx(11);
    for (int k = 1; k <= 151; k++)
        stale_after(ctx, k, 1);
    for (int k = 1; k <= 12; k++) /* steps whose headers fill several chunks */
        stale_after(ctx, k, 600);
    lg_ctx_free(ctx);
}

/* An allocator that fails once its budget of calls is spent. */
typedef struct budget {
    long left;
} budget;

static void *limited(void *user, void *ptr, size_t old_size, size_t new_size)
{
    (void)old_size;
    budget *b = user;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    if (b->left-- <= 0)
        return NULL;
    return realloc(ptr, new_size);
}

Test(hardening, F7_optim_step_out_of_memory_changes_nothing)
{
    for (long extra = 0; extra < 6; extra++) {
        budget b = { 1L << 40 };
        lg_ctx_params p = lg_ctx_params_default();
        p.alloc = limited, p.alloc_user = &b;
        lg_ctx *ctx = lg_ctx_new(&p);
        lg_tensor *ws[3];
        for (int i = 0; i < 3; i++) {
            char name[8];
            snprintf(name, sizeof name, "w%d", i);
            ws[i] = lg_param_new(ctx, name, LG_F64, 1, SHAPE(2));
            lg_copy_into(ctx, ws[i], lg_full(ctx, LG_F64, 1, SHAPE(2), 1 + i));
        }
        lg_optim_opts o = lg_optim_opts_default(LG_ADAM);
        o.amsgrad = true;
        lg_optim *opt = lg_optim_new(ctx, &o);
        lg_tensor *loss = NULL;
        for (int i = 0; i < 3; i++) {
            lg_tensor *s = lg_sum(ctx, lg_square(ctx, ws[i]), 0, NULL, false);
            loss = loss ? lg_add(ctx, loss, s) : s;
        }
        cr_assert_eq(lg_backward(ctx, loss), LG_OK);
        b.left = extra; /* the state of 3 parameters needs 9 allocations */
        double before[6];
        for (int i = 0; i < 3; i++)
            memcpy(before + 2 * i, lg_tensor_data(ws[i]), 2 * sizeof(double));
        cr_assert_eq(lg_optim_step(opt), LG_ERR_OOM, "budget %ld", extra);
        for (int i = 0; i < 3; i++)
            cr_assert_eq(memcmp(before + 2 * i, lg_tensor_data(ws[i]), 2 * sizeof(double)), 0,
                         "budget %ld: parameter %d changed", extra, i);
        cr_assert_eq(lg_optim_steps(opt), 0, "the counter tells the truth");
        b.left = 1L << 40;
        lg_ctx_clear_error(ctx);
        cr_assert_eq(lg_optim_step(opt), LG_OK);
        cr_assert_eq(lg_optim_steps(opt), 1);
        for (int i = 0; i < 3; i++) /* Adam's first step moves each by lr */
            cr_assert_float_eq(get(ws[i], 0), 1 + i - 1e-3, 1e-9);
        lg_ctx_free(ctx);
    }
}

Test(hardening, F8_learning_rates_and_schedule_values_validated)
{
    lg_ctx *ctx = test_ctx(12);
    lg_param_new(ctx, "w", LG_F64, 1, SHAPE(1));
    lg_optim *opt = sgd(ctx, 0.1);
    const double bad[] = { -5, NAN, INFINITY, -INFINITY, -1e-300 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(lg_optim_set_lr(opt, bad[i]), LG_ERR_VALUE, "lr %g", bad[i]);
        ERRMSG_HAS(ctx, "lg_optim_set_lr: lr = ");
        cr_assert_eq(lg_optim_lr(opt), 0.1, "unchanged");
        lg_ctx_clear_error(ctx);
    }
    cr_assert_eq(lg_optim_set_lr(opt, 0), LG_OK, "0 is legal, as PyTorch");
    lg_optim_set_lr(opt, 0.1);
    const double bad_gamma[] = { NAN, INFINITY, -0.5 };
    for (size_t i = 0; i < sizeof bad_gamma / sizeof bad_gamma[0]; i++) {
        lg_sched_opts s = lg_sched_opts_default(LG_SCHED_EXPONENTIAL);
        s.gamma = bad_gamma[i];
        cr_assert_null(lg_sched_new(ctx, opt, &s));
        ERRMSG_HAS(ctx, "lg_sched_new: gamma = ");
        lg_ctx_clear_error(ctx);
    }
    lg_sched_opts c = lg_sched_opts_default(LG_SCHED_COSINE);
    c.t_max = 10, c.eta_min = NAN;
    cr_assert_null(lg_sched_new(ctx, opt, &c));
    ERRMSG_HAS(ctx, "eta_min = nan");
    lg_ctx_clear_error(ctx);
    lg_sched_opts l = lg_sched_opts_default(LG_SCHED_LINEAR);
    l.start_factor = NAN;
    cr_assert_null(lg_sched_new(ctx, opt, &l));
    ERRMSG_HAS(ctx, "start_factor = nan");
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_optim_lr(opt), 0.1, "no schedule touched the rate");
    lg_ctx_free(ctx);
}

/* Cosine annealing with t_max = 2^62 or INT64_MAX: the period test once
 * overflowed (2 t_max), which UBSan reports; the rates follow the formula. */
Test(hardening, F11_cosine_schedule_huge_t_max)
{
    const int64_t tmaxes[] = { (int64_t)1 << 62, INT64_MAX, INT64_MAX / 2 + 1 };
    for (int k = 0; k < 3; k++) {
        lg_ctx *ctx = test_ctx(13);
        lg_param_new(ctx, "w", LG_F64, 1, SHAPE(1));
        lg_optim *opt = sgd(ctx, 1);
        lg_sched_opts s = lg_sched_opts_default(LG_SCHED_COSINE);
        s.t_max = tmaxes[k];
        lg_sched *sch = lg_sched_new(ctx, opt, &s);
        cr_assert_not_null(sch, "%s", lg_ctx_errmsg(ctx));
        for (int e = 1; e <= 5; e++) {
            double lr = lg_sched_step(sch);
            cr_assert(isfinite(lr) && lr <= 1 && lr > 0.999999, "t_max %lld step %d: %g",
                      (long long)tmaxes[k], e, lr);
        }
        lg_ctx_free(ctx);
    }
}

static lg_ctx *other;

static lg_tensor *foreign(lg_ctx *ctx, lg_tensor *const *x, void *user)
{
    (void)ctx, (void)x, (void)user;
    return lg_randn(other, LG_F64, 1, SHAPE(2));
}

static lg_tensor *square(lg_ctx *ctx, lg_tensor *const *x, void *user)
{
    (void)user;
    return lg_square(ctx, x[0]);
}

Test(hardening, F16_gradcheck_rejects_foreign_results_and_bad_eps)
{
    lg_ctx *ctx = test_ctx(14);
    other = test_ctx(15);
    lg_tensor *x = lg_randn(ctx, LG_F64, 1, SHAPE(2));
    lg_gradcheck_report r;
    cr_assert_eq(lg_gradcheck(ctx, foreign, NULL, 1, &x, NULL, &r), LG_ERR_STATE);
    ERRMSG_HAS(ctx, "lg_gradcheck: fn's result belongs to another lg_ctx");
    cr_assert_not(r.ok);
    lg_ctx_clear_error(ctx);
    const double bad_eps[] = { NAN, -1e-6, INFINITY };
    for (int i = 0; i < 3; i++) {
        lg_gradcheck_opts o = lg_gradcheck_opts_default();
        o.eps = bad_eps[i];
        cr_assert_eq(lg_gradcheck(ctx, square, NULL, 1, &x, &o, &r), LG_ERR_VALUE, "eps %g",
                     bad_eps[i]);
        ERRMSG_HAS(ctx, "lg_gradcheck: eps = ");
        lg_ctx_clear_error(ctx);
    }
    lg_gradcheck_opts o = lg_gradcheck_opts_default();
    o.atol = NAN;
    cr_assert_eq(lg_gradcheck(ctx, square, NULL, 1, &x, &o, &r), LG_ERR_VALUE);
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_gradcheck(ctx, square, NULL, 1, &x, NULL, &r), LG_OK);
    cr_assert(r.ok);
    lg_ctx_free(other);
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Findings of the review of this work (each failed before its fix)    */
/* ------------------------------------------------------------------ */

/* n tensors; returns the first whose header does not follow the one
 * before (the first header of a new header chunk), or NULL. */
static lg_tensor *make_many(lg_ctx *ctx, int n)
{
    lg_tensor *prev = NULL, *first = NULL;
    for (int i = 0; i < n; i++) {
        lg_tensor *t = lg_zeros(ctx, LG_F32, 1, SHAPE(4));
        if (prev && (uintptr_t)t - (uintptr_t)prev != 304 && !first)
            first = t;
        prev = t;
    }
    return first;
}

static void expect_stale(lg_ctx *ctx, lg_tensor *t, const char *what)
{
    cr_assert_eq(lg_tensor_check(ctx, t), LG_ERR_STALE, "%s: %s", what, lg_ctx_errmsg(ctx));
    cr_assert_null(lg_tensor_data(t), "%s", what);
    cr_assert_null(lg_tensor_shape(t), "%s", what);
    cr_assert_null(lg_tensor_grad(t), "%s", what);
    cr_assert_null(lg_tensor_op_name(t), "%s", what);
    cr_assert_eq(lg_tensor_numel(t), 0, "%s", what);
    lg_ctx_clear_error(ctx);
}

/* Steps of varying size: a header the next use of its pool did not write
 * over kept its magic, and read as a tensor after 8 step ends. */
Test(hardening, F4_stale_handle_with_steps_of_varying_size)
{
    lg_ctx *ctx = test_ctx(30);
    make_many(ctx, 300);
    for (int s = 2; s <= 8; s++) {
        lg_step_end(ctx);
        make_many(ctx, 10);
    }
    lg_step_end(ctx);
    lg_tensor *t = make_many(ctx, 300); /* the first header of the pool's second chunk */
    cr_assert_not_null(t);
    for (int s = 10; s <= 17; s++) {
        lg_step_end(ctx);
        make_many(ctx, s == 17 ? 300 : 10);
    }
    expect_stale(ctx, t, "8 step ends later");
    /* empty steps and a scope: a crash in lg_tensor_numel once */
    lg_step_end(ctx);
    lg_tensor *old = lg_zeros(ctx, LG_F32, 1, SHAPE(10));
    for (int step = 2; step <= 13; step++) {
        lg_step_end(ctx);
        if (step == 13) {
            lg_scope_begin(ctx);
            lg_zeros(ctx, LG_F32, 1, SHAPE(10));
            lg_scope_end(ctx, 0, NULL);
        } else if (step % 4 != 1) {
            lg_zeros(ctx, LG_F32, 1, SHAPE(10));
        }
    }
    expect_stale(ctx, old, "after empty steps");
    lg_ctx_free(ctx);
}

/* Random steps (tiny, large, huge; scopes; gradchecks): every handle of
 * the last 151 steps stays stale. */
static lg_tensor *twice(lg_ctx *ctx, lg_tensor *const *x, void *user)
{
    (void)user;
    return lg_mul_scalar(ctx, x[0], 2.0);
}

Test(hardening, F4_stale_handles_of_random_steps, .timeout = 120)
{
    enum { HIST = 151, PER = 16, STEPS = 500 };
    static lg_tensor *hist[HIST][PER];
    static int nh[HIST];
    uint64_t s = 0x1234567;
    lg_ctx_params cp = lg_ctx_params_default();
    cp.arena_chunk = 4096;
    lg_ctx *ctx = lg_ctx_new(&cp);
    lg_tensor *p = lg_param_new(ctx, "p", LG_F64, 1, SHAPE(2));
    for (int st = 0; st < STEPS; st++) {
        int slot = st % HIST;
        nh[slot] = 0;
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        int mode = (int)(s % 10), n = mode < 3   ? 1 + (int)(s >> 8) % 3
                                      : mode < 8 ? (int)(s >> 8) % 300
                                                 : 1000 + (int)(s >> 8) % 1500;
        int depth = 0;
        for (int i = 0; i < n; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            unsigned c = (unsigned)(s % 100);
            lg_tensor *t;
            if (c < 3 && depth < 60) {
                lg_scope_begin(ctx), depth++;
                continue;
            }
            if (c < 6 && depth > 0) {
                lg_scope_end(ctx, 0, NULL), depth--;
                continue;
            }
            if (c == 7) {
                lg_tensor *x = lg_ones(ctx, LG_F64, 1, SHAPE(2));
                lg_gradcheck_report r;
                lg_gradcheck(ctx, twice, NULL, 1, &x, NULL, &r);
                t = x;
            } else if (c < 20) {
                t = lg_mul_scalar(ctx, p, (double)(s >> 20));
            } else {
                t = lg_zeros(ctx, (lg_dtype)((s >> 9) % 3), 1, SHAPE((int64_t)((s >> 12) % 50)));
            }
            cr_assert_not_null(t, "step %d: %s", st, lg_ctx_errmsg(ctx));
            if (nh[slot] < PER && (s >> 30) % 4 == 0)
                hist[slot][nh[slot]++] = t;
        }
        lg_step_end(ctx);
        for (int k = 0; k < (st + 1 < HIST ? st + 1 : HIST); k++)
            for (int j = 0; j < nh[k]; j++)
                expect_stale(ctx, hist[k][j], "a handle of the last 151 steps");
    }
    lg_ctx_free(ctx);
}

/* lg_tensor_op_name read the op of whatever lay at a stale handle. */
Test(hardening, stale_op_name_is_null)
{
    lg_ctx *ctx = test_ctx(31);
    lg_tensor *p = lg_param_new(ctx, "p", LG_F64, 1, SHAPE(1));
    for (int i = 1; i < 28; i++)
        lg_step_end(ctx);
    lg_tensor *old = lg_zeros(ctx, LG_F64, 1, SHAPE(1));
    for (int i = 28; i < 152; i++)
        lg_step_end(ctx);
    lg_mul_scalar(ctx, p, 0.1);
    cr_assert_null(lg_tensor_op_name(old));
    cr_assert_str_eq(lg_tensor_op_name(p), "leaf");
    lg_ctx_free(ctx);
}

/* Keeping a tensor twice once pointed the duplicate at another's data. */
Test(traps, scope_keep_twice)
{
    lg_ctx *ctx = test_ctx(32);
    lg_scope_begin(ctx);
    lg_full(ctx, LG_F64, 1, SHAPE(3), 1.0);
    lg_tensor *b = lg_full(ctx, LG_F64, 1, SHAPE(3), 2.0),
              *c = lg_full(ctx, LG_F64, 1, SHAPE(3), 3.0);
    lg_tensor *keep[] = { b, c, c };
    cr_assert_eq(lg_scope_end(ctx, 3, keep), LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(keep[1], keep[2]);
    cr_assert_neq(lg_tensor_data(keep[0]), lg_tensor_data(keep[1]));
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(get(keep[0], i), 2);
        cr_assert_eq(get(keep[1], i), 3);
    }
    lg_ctx_free(ctx);
}

/* Scopes in a loop of 100,000 batches keep the step's memory flat (they
 * once kept every header until the step ended: 1.5 KB a batch); what a
 * scope keeps stays, header and data, and nothing more. */
Test(traps, scope_memory_is_bounded, .timeout = 120)
{
    lg_ctx *ctx = test_ctx(33);
    lg_linear *fc = lg_linear_new(ctx, "fc", 16, 4, NULL);
    lg_ctx_set_step_limit(ctx, 1 << 20);
    lg_no_grad_begin(ctx);
    double total = 0;
    size_t used_10 = 0;
    for (int b = 0; b < 100000; b++) {
        lg_scope_begin(ctx);
        lg_tensor *y = lg_linear_forward(ctx, fc, lg_randn(ctx, LG_F32, 2, SHAPE(8, 16)));
        total += lg_item(ctx, lg_sum(ctx, lg_relu(ctx, y), 0, NULL, false));
        cr_assert_eq(lg_scope_end(ctx, 0, NULL), LG_OK, "batch %d: %s", b, lg_ctx_errmsg(ctx));
        if (b == 10)
            used_10 = lg_ctx_mem_stats(ctx).arena_used;
    }
    cr_assert(isfinite(total));
    cr_assert_eq(lg_ctx_mem_stats(ctx).arena_used, used_10,
                 "flat: %zu bytes after 100,000 "
                 "batches, %zu after 10",
                 lg_ctx_mem_stats(ctx).arena_used, used_10);
    /* keeping one result a batch grows by that result */
    lg_tensor *kept[100];
    for (int b = 0; b < 100; b++) {
        lg_scope_begin(ctx);
        lg_tensor *y = lg_linear_forward(ctx, fc, lg_randn(ctx, LG_F32, 2, SHAPE(8, 16)));
        kept[b] = lg_sum(ctx, y, 0, NULL, false);
        cr_assert_eq(lg_scope_end(ctx, 1, &kept[b]), LG_OK, "%s", lg_ctx_errmsg(ctx));
    }
    size_t per = (lg_ctx_mem_stats(ctx).arena_used - used_10) / 100;
    cr_assert_leq(per, 304 + 64 + 8, "%zu bytes a kept scalar", per);
    for (int b = 0; b < 100; b++)
        cr_assert_eq(lg_tensor_check(ctx, kept[b]), LG_OK);
    lg_no_grad_end(ctx);
    lg_step_end(ctx);
    cr_assert_lt(lg_ctx_mem_stats(ctx).arena_capacity, (size_t)8 << 20);
    lg_ctx_free(ctx);
}

/* gradcheck gave back its headers without marking them: a handle fn kept
 * read as a tensor of the step, data freed. */
static lg_tensor *captured;
static lg_tensor *capture(lg_ctx *ctx, lg_tensor *const *x, void *user)
{
    (void)user;
    return captured = lg_mul_scalar(ctx, x[0], 2.0);
}

Test(hardening, gradcheck_handles_of_fn_are_stale_afterwards)
{
    lg_ctx *ctx = test_ctx(34);
    lg_tensor *x = lg_ones(ctx, LG_F64, 1, SHAPE(3));
    lg_gradcheck_report r;
    cr_assert_eq(lg_gradcheck(ctx, capture, NULL, 1, &x, NULL, &r), LG_OK);
    for (int i = 0; i < 50; i++)
        lg_full(ctx, LG_F32, 2, SHAPE(2, 3), 7.0);
    expect_stale(ctx, captured, "fn's result after gradcheck");
    lg_ctx_free(ctx);
}

/* gradcheck's backward reached tensors of the caller's graph and
 * parameters fn used: it left them a gradient (202 instead of 2 later). */
static lg_tensor *outer_h;
static lg_tensor *uses_outer(lg_ctx *ctx, lg_tensor *const *x, void *user)
{
    (void)user;
    return lg_mul(ctx, x[0], outer_h);
}

Test(hardening, gradcheck_leaves_the_callers_gradients_alone)
{
    lg_ctx *ctx = test_ctx(35);
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 1, SHAPE(4));
    lg_init_constant(ctx, w, 1.0);
    outer_h = lg_mul_scalar(ctx, w, 2.0);
    lg_tensor *x = lg_ones(ctx, LG_F64, 1, SHAPE(4));
    lg_gradcheck_report r;
    cr_assert_eq(lg_gradcheck(ctx, uses_outer, NULL, 1, &x, NULL, &r), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    cr_assert(r.ok);
    cr_assert_null(lg_tensor_grad(w), "the parameter's gradient");
    cr_assert_null(lg_tensor_grad(outer_h), "the caller's tensor's gradient");
    for (int i = 0; i < 8; i++)
        lg_full(ctx, LG_F64, 1, SHAPE(4), 100.0);
    cr_assert_eq(lg_backward(ctx, lg_sum(ctx, outer_h, 0, NULL, false)), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(get(lg_tensor_grad(w), i), 2);
    lg_ctx_free(ctx);
}

static lg_tensor *opens_a_scope(lg_ctx *ctx, lg_tensor *const *x, void *user)
{
    int *calls = user;
    if ((*calls)++ == 0)
        lg_scope_begin(ctx);
    return lg_square(ctx, x[0]);
}

Test(hardening, gradcheck_fn_leaving_a_scope_open)
{
    lg_ctx *ctx = test_ctx(36);
    lg_tensor *big = lg_full(ctx, LG_F64, 1, SHAPE(1024), 3.0);
    lg_tensor *x = lg_ones(ctx, LG_F64, 1, SHAPE(2));
    lg_gradcheck_report r;
    int calls = 0;
    cr_assert_eq(lg_gradcheck(ctx, opens_a_scope, &calls, 1, &x, NULL, &r), LG_ERR_STATE);
    ERRMSG_HAS(ctx, "fn left a scope open");
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_scope_end(ctx, 0, NULL), LG_ERR_STATE, "no scope is open afterwards");
    lg_ctx_clear_error(ctx);
    for (int i = 0; i < 1024; i++)
        cr_assert_eq(get(big, i), 3.0);
    lg_ctx_free(ctx);
}

/* A ctx made from invalid params refused tensors, but saved checkpoints,
 * clipped, and its error could be cleared away. */
Test(traps, failed_ctx_refuses_everything)
{
    lg_ctx_params p = lg_ctx_params_default();
    p.threads = -1;
    lg_ctx *ctx = lg_ctx_new(&p);
    cr_assert_eq(lg_checkpoint_save(ctx, "/tmp/lossgrad-failed-ctx.safetensors", NULL),
                 LG_ERR_STATE);
    cr_assert_eq(access("/tmp/lossgrad-failed-ctx.safetensors", F_OK), -1, "no file written");
    cr_assert_eq(lg_checkpoint_load(ctx, "/nonexistent", NULL), LG_ERR_STATE);
    cr_assert(isnan(lg_clip_grad_norm(ctx, 1, 2)));
    cr_assert_eq(lg_clip_grad_value(ctx, 1), LG_ERR_STATE);
    cr_assert_eq(lg_scope_begin(ctx), LG_ERR_STATE);
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_VALUE, "the error stays");
    ERRMSG_HAS(ctx, "lg_ctx_new: params->threads = -1");
    lg_ctx_free(ctx);
    /* a tag with another struct's kind byte is not lg_ctx_params' */
    p = lg_ctx_params_default();
    p.defaults_tag |= 2;
    ctx = lg_ctx_new(&p);
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_VALUE);
    ERRMSG_HAS(ctx, "defaults_tag");
    lg_ctx_free(ctx);
}

Test(traps, options_tag_with_a_kind_byte_rejected)
{
    lg_ctx *ctx = test_ctx(37);
    lg_ce_opts o = lg_ce_opts_default();
    o.defaults_tag |= 3;
    o.ignore_index = 0;
    lg_tensor *x = lg_zeros(ctx, LG_F64, 2, SHAPE(2, 3));
    int64_t t[] = { 0, 1 };
    cr_assert_null(lg_cross_entropy(ctx, x, T_FROM(ctx, LG_I64, t, 2), &o));
    ERRMSG_HAS(ctx, "lg_ce_opts struct's defaults_tag is 0x6c670103");
    lg_ctx_free(ctx);
}

/* The step limit is for the step's memory: a checkpoint's own scratch
 * memory is not the step's (a 4 MiB model did not load under a 1 MiB
 * limit, and the call said LG_ERR_OOM while recording LG_ERR_STATE). */
Test(traps, step_limit_leaves_checkpoints_alone)
{
    lg_ctx *ctx = test_ctx(38);
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 1, SHAPE(1 << 19));
    lg_init_constant(ctx, w, 0.5);
    lg_ctx_set_step_limit(ctx, 1 << 20);
    const char *path = "/tmp/lossgrad-step-limit.safetensors";
    cr_assert_eq(lg_checkpoint_save(ctx, path, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_checkpoint_load(ctx, path, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    remove(path);
    lg_ctx_free(ctx);
}

/* A layer that failed half way left its first parameters in the ctx. */
Test(traps, failed_layer_leaves_no_parameters)
{
    lg_ctx *ctx = test_ctx(39);
    lg_param_new(ctx, "fc.bias", LG_F32, 1, SHAPE(4));
    cr_assert_null(lg_linear_new(ctx, "fc", 3, 4, NULL));
    cr_assert_eq(lg_param_count(ctx), 1);
    cr_assert_null(lg_param_find(ctx, "fc.weight"));
    lg_ctx_clear_error(ctx);
    char name[300];
    memset(name, 'g', sizeof name);
    name[255 - (int)strlen(".weight_hh_l0")] = 0; /* "_l0" names fit, "_l0_reverse" do not */
    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.bidirectional = true;
    cr_assert_null(lg_rnn_new(ctx, name, LG_GRU, 3, 4, &ro));
    cr_assert_eq(lg_param_count(ctx), 1, "%d parameters", lg_param_count(ctx));
    lg_ctx_clear_error(ctx);
    cr_assert_not_null(lg_linear_new(ctx, "fc2", 3, 4, NULL), "a retry works");
    lg_ctx_free(ctx);
}

/* Messages keep their rule with long names (they were cut at 255 bytes). */
Test(traps, long_names_keep_the_rule_in_messages)
{
    lg_ctx *ctx = test_ctx(40);
    char name[300];
    memset(name, 'p', sizeof name);
    name[299] = 0;
    lg_param_new(ctx, name, LG_F32, 1, SHAPE(1));
    cr_assert_null(lg_param_new(ctx, name, LG_F32, 1, SHAPE(1)));
    ERRMSG_HAS(ctx, "...\" is taken by parameter 0");
    lg_ctx_clear_error(ctx);
    cr_assert_null(lg_linear_new(ctx, name, 1, 1, NULL));
    ERRMSG_HAS(ctx, "is longer than 255 bytes");
    lg_ctx_clear_error(ctx);
    lg_optim *opt = lg_optim_new(ctx, &(lg_optim_opts){ .kind = LG_ADAM });
    cr_assert_null(opt);
    ERRMSG_HAS(ctx, "start from lg_optim_opts_default(kind) and set it, or write it");
    lg_ctx_free(ctx);
}

/* A schedule could drive the rate to inf, which lg_optim_set_lr refuses. */
Test(traps, schedule_rate_stays_finite)
{
    lg_ctx *ctx = test_ctx(41);
    lg_param_new(ctx, "w", LG_F64, 1, SHAPE(1));
    lg_optim *opt = sgd(ctx, 1);
    lg_sched_opts s = lg_sched_opts_default(LG_SCHED_EXPONENTIAL);
    s.gamma = 1e200;
    lg_sched *sch = lg_sched_new(ctx, opt, &s);
    cr_assert_eq(lg_sched_step(sch), 1e200);
    cr_assert(isnan(lg_sched_step(sch)));
    ERRMSG_HAS(ctx, "lg_sched_step: the rate would become inf");
    cr_assert_eq(lg_optim_lr(opt), 1e200, "the rate stays");
    lg_ctx_free(ctx);
}

/* int64 fills of values no int64 holds were undefined behaviour. */
Test(traps, int64_fill_out_of_range)
{
    lg_ctx *ctx = test_ctx(42);
    cr_assert_null(lg_full(ctx, LG_I64, 1, SHAPE(2), 1e30));
    ERRMSG_HAS(ctx, "lg_full: value = 1e+30 does not fit an int64");
    lg_ctx_clear_error(ctx);
    cr_assert_null(lg_full(ctx, LG_I64, 1, SHAPE(2), NAN));
    lg_ctx_clear_error(ctx);
    cr_assert_null(lg_arange(ctx, LG_I64, -9.3e18, 0, 1e18));
    ERRMSG_HAS(ctx, "lg_arange");
    lg_ctx_clear_error(ctx);
    lg_tensor *ok = lg_full(ctx, LG_I64, 1, SHAPE(2), -9223372036854775808.0);
    cr_assert_eq(((int64_t *)lg_tensor_data(ok))[0], INT64_MIN);
    lg_ctx_free(ctx);
}
