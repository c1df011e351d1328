/* two_threads: two threads, each with its own context (the documented
 * model), train a small network and evaluate every loss at the same time;
 * then three more train a larger one at once, on a ctx of 1 thread and two
 * ctxs of 2 (their pools splitting the kernels and the matrix products,
 * core/parallel.c). The two of 2 threads must end with the same bits (the
 * split does not depend on timing, and OpenBLAS called from several
 * threads at once gives right products: Debian's OpenMP build did not).
 * The one of 1 thread must give the same bits too where
 * lg_threads_bitwise says the BLAS keeps a split product's bits (Debian's
 * OpenBLAS on x86-64), and agree to float rounding elsewhere. Built under ThreadSanitizer in CI; it
 * must finish with no report. */
#include <lossgrad.h>

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static void *work(void *arg)
{
    lg_ctx *ctx = lg_ctx_new(&(lg_ctx_params){ .seed = (uint64_t)(uintptr_t)arg, .threads = 1 });
    lg_mlp *m =
        lg_mlp_new(ctx, "mlp", 3, (int64_t[]){ 8, 16, 4 }, &(lg_mlp_opts){ .dropout = 0.1 });
    lg_optim_opts oo = lg_optim_opts_default(LG_ADAM);
    oo.lr = 0.01;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    int64_t y[16];
    for (int i = 0; i < 16; i++)
        y[i] = i % 4;
    for (int step = 0; step < 60 && ctx && m && opt; step++) {
        lg_tensor *x = lg_randn(ctx, LG_F32, 2, (int64_t[]){ 16, 8 });
        lg_tensor *t = lg_tensor_from(ctx, LG_I64, y, 1, (int64_t[]){ 16 });
        lg_tensor *logits = lg_mlp_forward(ctx, m, x);
        lg_tensor *p = lg_sigmoid(ctx, logits),
                  *u = lg_rand(ctx, LG_F32, 2, (int64_t[]){ 16, 4 }, 0, 1);
        lg_tensor *loss = lg_cross_entropy(
            ctx, logits, t, &(lg_ce_opts){ .ignore_index = -100, .label_smoothing = 0.1 });
        lg_tensor *extra[] = {
            lg_nll_loss(ctx, lg_log_softmax(ctx, logits, 1), t, NULL),
            lg_mse_loss(ctx, p, u, NULL),
            lg_l1_loss(ctx, p, u, NULL),
            lg_smooth_l1_loss(ctx, p, u, NULL),
            lg_huber_loss(ctx, p, u, NULL),
            lg_kl_div(ctx, lg_log_softmax(ctx, logits, 1), lg_softmax(ctx, u, 1), NULL),
            lg_binary_cross_entropy(ctx, p, u, NULL),
            lg_binary_cross_entropy_with_logits(ctx, logits, u, NULL),
            lg_multilabel_soft_margin_loss(ctx, logits, u, NULL),
            lg_triplet_margin_loss(ctx, logits, lg_mul_scalar(ctx, logits, 0.5), u, NULL),
        };
        for (size_t k = 0; k < sizeof extra / sizeof extra[0]; k++)
            loss = lg_add(ctx, loss, extra[k]);
        lg_tensor *lp = lg_log_softmax(ctx, lg_randn(ctx, LG_F32, 3, (int64_t[]){ 6, 2, 4 }), 2);
        int64_t tg[] = { 1, 2, 3, 3 }, il[] = { 6, 5 }, tl[] = { 2, 2 };
        loss = lg_add(ctx, loss,
                      lg_ctc_loss(ctx, lp, lg_tensor_from(ctx, LG_I64, tg, 2, (int64_t[]){ 2, 2 }),
                                  lg_tensor_from(ctx, LG_I64, il, 1, (int64_t[]){ 2 }),
                                  lg_tensor_from(ctx, LG_I64, tl, 1, (int64_t[]){ 2 }), NULL));
        if (lg_backward(ctx, loss) != LG_OK) {
            fprintf(stderr, "two_threads: %s\n", lg_ctx_errmsg(ctx));
            lg_ctx_free(ctx);
            return (void *)1;
        }
        lg_optim_step(opt);
        lg_zero_grad(ctx);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
    return NULL;
}

/* A 256-512-64 network for three SGD steps on kernels large enough to be
 * split: the losses of each step and the final weights, by value. */
typedef struct big_result {
    double loss[3];
    float w[64 * 512];
    int threads, failed;
    bool bitwise; /* lg_threads_bitwise for float32 */
} big_result;

static void *work_big(void *arg)
{
    big_result *r = arg;
    lg_ctx *ctx = lg_ctx_new(&(lg_ctx_params){ .seed = 7, .threads = r->threads });
    lg_mlp *m = lg_mlp_new(ctx, "mlp", 3, (int64_t[]){ 256, 512, 64 }, NULL);
    lg_optim_opts oo = lg_optim_opts_default(LG_SGD);
    oo.lr = 0.05;
    oo.momentum = 0.9;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    int64_t y[512];
    for (int i = 0; i < 512; i++)
        y[i] = (i * 7) % 64;
    r->failed = !m || !opt;
    r->bitwise = lg_threads_bitwise(ctx, LG_F32);
    for (int step = 0; step < 3 && !r->failed; step++) {
        lg_tensor *x = lg_randn(ctx, LG_F32, 2, (int64_t[]){ 512, 256 });
        lg_tensor *logits = lg_mlp_forward(ctx, m, x);
        lg_tensor *u = lg_rand(ctx, LG_F32, 2, (int64_t[]){ 512, 64 }, 0, 1);
        lg_tensor *loss =
            lg_add(ctx,
                   lg_cross_entropy(ctx, logits,
                                    lg_tensor_from(ctx, LG_I64, y, 1, (int64_t[]){ 512 }), NULL),
                   lg_add(ctx, lg_binary_cross_entropy_with_logits(ctx, logits, u, NULL),
                          lg_mse_loss(ctx, lg_sigmoid(ctx, logits), u, NULL)));
        r->failed = lg_backward(ctx, loss) != LG_OK;
        r->loss[step] = r->failed ? 0 : *(const float *)lg_tensor_data(loss);
        lg_optim_step(opt);
        lg_zero_grad(ctx);
        lg_step_end(ctx);
    }
    if (!r->failed)
        memcpy(r->w, lg_tensor_data(m->layers[1]->weight), sizeof r->w);
    if (r->failed)
        fprintf(stderr, "two_threads: %d thread(s): %s\n", r->threads, lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
    return NULL;
}

static bool agree(double a, double b)
{
    return fabs(a - b) <= 1e-5 * fabs(b) + 1e-6;
}

int main(void)
{
    static big_result one = { .threads = 1 }, two = { .threads = 2 }, again = { .threads = 2 };
    pthread_t p1, p2, p3;
    pthread_create(&p1, NULL, work_big, &one);
    pthread_create(&p2, NULL, work_big, &two);
    pthread_create(&p3, NULL, work_big, &again);
    pthread_join(p1, NULL);
    pthread_join(p2, NULL);
    pthread_join(p3, NULL);
    bool ran = !one.failed && !two.failed && !again.failed;
    bool same = ran && !memcmp(two.loss, again.loss, sizeof two.loss) &&
                !memcmp(two.w, again.w, sizeof two.w);
    bool bitwise = ran && one.bitwise && two.bitwise, near = ran;
    if (bitwise)
        near = !memcmp(one.loss, two.loss, sizeof one.loss) && !memcmp(one.w, two.w, sizeof one.w);
    for (int s = 0; s < 3 && !bitwise; s++)
        near = near && agree(one.loss[s], two.loss[s]);
    for (size_t k = 0; k < sizeof one.w / sizeof *one.w && !bitwise; k++)
        near = near && agree(one.w[k], two.w[k]);
    printf("2 threads against 2: %s; 1 thread against 2: %s (losses %.9g %.9g %.9g / %.9g "
           "%.9g %.9g)\n",
           same ? "same bits" : "FAILED",
           near ? (bitwise ? "same bits" : "agree (this BLAS splits products inexactly)")
                : "FAILED",
           one.loss[0], one.loss[1], one.loss[2], two.loss[0], two.loss[1], two.loss[2]);
    same = same && near;
    if (!same)
        return 1;

    pthread_t a, b;
    void *ra, *rb;
    pthread_create(&a, NULL, work, (void *)1);
    pthread_create(&b, NULL, work, (void *)2);
    pthread_join(a, &ra);
    pthread_join(b, &rb);
    printf("two threads, two contexts: %s\n", (ra || rb) ? "FAILED" : "ok");
    return (ra || rb) ? 1 : 0;
}
