/* lossgrad_demo: a two-layer network learning the two-moons problem.
 *
 * 2,000 points on two interleaved half circles with noise, classified by a
 * 2-64-2 tanh MLP trained with cross-entropy and SGD with momentum. Prints
 * the OpenBLAS kernel, the loss falling epoch by epoch, the final accuracy,
 * and one machine-readable RESULT line.
 *
 *   lossgrad_demo [--epochs N] [--seed S] [--threads T] [--quick] [--out DIR (ignored)]
 */
#include <lossgrad.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { NPOINTS = 2000, HIDDEN = 64, BATCH = 100 };
static const double PI = 3.14159265358979323846;

typedef struct opts {
    int epochs, threads;
    uint64_t seed;
} opts;

static int parse(int argc, char **argv, opts *o)
{
    *o = (opts){ .epochs = 30, .threads = 1, .seed = 1 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick"))
            o->epochs = 10;
        else if (!strcmp(a, "--out") && v) /* as the other examples take it; nothing is written */
            i++;
        else if (!strcmp(a, "--epochs") && v)
            o->epochs = atoi(v), i++;
        else if (!strcmp(a, "--seed") && v)
            o->seed = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--threads") && v)
            o->threads = atoi(v), i++;
        else {
            fprintf(stderr, "usage: %s [--epochs N] [--seed S] [--threads T] [--quick]\n", argv[0]);
            return -1;
        }
    }
    return (o->epochs > 0 && o->threads > 0) ? 0 : -1;
}

/* Two moons: class 0 on the upper arc, class 1 on the lower, shifted arc. */
static void make_moons(lg_ctx *ctx, float *x, int64_t *y)
{
    for (int i = 0; i < NPOINTS; i++) {
        int c = i % 2;
        double t = PI * lg_rand_uniform(ctx);
        double px = c ? 1 - cos(t) : cos(t), py = c ? 0.5 - sin(t) : sin(t);
        x[2 * i] = (float)(px + 0.1 * lg_rand_normal(ctx));
        x[2 * i + 1] = (float)(py + 0.1 * lg_rand_normal(ctx));
        y[i] = c;
    }
}

int main(int argc, char **argv)
{
    opts o;
    if (parse(argc, argv, &o) != 0)
        return 2;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lg_ctx *ctx = lg_ctx_new(&(lg_ctx_params){ .seed = o.seed, .threads = o.threads });
    if (!ctx) {
        fprintf(stderr, "lossgrad_demo: out of memory\n");
        return 1;
    }
    printf("lossgrad %s, OpenBLAS kernel: %s (%s)\n", lg_version(), lg_blas_corename(),
           lg_blas_config());
    if (!strcmp(lg_blas_corename(), "Prescott"))
        printf("note: Prescott is OpenBLAS's slow generic kernel; set OPENBLAS_CORETYPE "
               "(e.g. SkylakeX or Haswell) to pick a fast one\n");

    static float xs[NPOINTS * 2];
    static int64_t ys[NPOINTS];
    static int order[NPOINTS];
    make_moons(ctx, xs, ys);
    lg_mlp *net = lg_mlp_new(ctx, "net", 3, (int64_t[]){ 2, HIDDEN, 2 },
                             &(lg_mlp_opts){ .activation = LG_ACT_TANH });
    lg_optim *opt =
        lg_optim_new(ctx, &(lg_optim_opts){ .kind = LG_SGD, .lr = 0.1, .momentum = 0.9 });
    if (!opt) {
        fprintf(stderr, "lossgrad_demo: %s\n", lg_ctx_errmsg(ctx));
        lg_ctx_free(ctx);
        return 1;
    }
    lg_step_end(ctx);
    for (int i = 0; i < NPOINTS; i++)
        order[i] = i;

    static float bx[BATCH * 2];
    static int64_t by[BATCH];
    double loss_sum = 0;
    for (int epoch = 1; epoch <= o.epochs; epoch++) {
        for (int i = NPOINTS - 1; i > 0; i--) { /* seeded Fisher-Yates shuffle */
            int j = (int)lg_rand_below(ctx, (uint64_t)i + 1), t = order[i];
            order[i] = order[j], order[j] = t;
        }
        loss_sum = 0;
        for (int b = 0; b < NPOINTS / BATCH; b++) {
            for (int k = 0; k < BATCH; k++) {
                int i = order[b * BATCH + k];
                bx[2 * k] = xs[2 * i], bx[2 * k + 1] = xs[2 * i + 1], by[k] = ys[i];
            }
            lg_tensor *x = lg_tensor_from(ctx, LG_F32, bx, 2, (int64_t[]){ BATCH, 2 });
            lg_tensor *y = lg_tensor_from(ctx, LG_I64, by, 1, (int64_t[]){ BATCH });
            lg_tensor *loss = lg_cross_entropy(ctx, lg_mlp_forward(ctx, net, x), y, NULL);
            if (lg_backward(ctx, loss) != LG_OK) {
                fprintf(stderr, "lossgrad_demo: %s\n", lg_ctx_errmsg(ctx));
                lg_ctx_free(ctx);
                return 1;
            }
            loss_sum += lg_item(ctx, loss);
            lg_optim_step(opt);
            lg_zero_grad(ctx);
            lg_step_end(ctx);
        }
        if (epoch == 1 || epoch % 5 == 0 || epoch == o.epochs)
            printf("epoch %3d  loss %.4f\n", epoch, loss_sum / (NPOINTS / BATCH));
    }

    /* Accuracy on the whole set, in a no-grad region. */
    lg_no_grad_begin(ctx);
    lg_ctx_set_training(ctx, false);
    lg_tensor *logits =
        lg_mlp_forward(ctx, net, lg_tensor_from(ctx, LG_F32, xs, 2, (int64_t[]){ NPOINTS, 2 }));
    lg_tensor *pred = NULL;
    lg_max(ctx, logits, 1, (int[]){ 1 }, false, &pred);
    lg_no_grad_end(ctx);
    if (!pred) {
        fprintf(stderr, "lossgrad_demo: %s\n", lg_ctx_errmsg(ctx));
        lg_ctx_free(ctx);
        return 1;
    }
    int correct = 0;
    const int64_t *pv = lg_tensor_data(pred);
    for (int i = 0; i < NPOINTS; i++)
        correct += pv[i] == ys[i];
    double acc = (double)correct / NPOINTS;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    printf("accuracy %.4f on %d points\n", acc, NPOINTS);
    /* steps: the updates the optimizer took (one per batch) */
    /* params: an FNV-1a digest of the trained parameters' bytes, the same at
     * every thread count where threads_bitwise = 1 (tests/check_threads.sh) */
    uint64_t h = 14695981039346656037u;
    for (int i = 0; i < lg_param_count(ctx); i++) {
        lg_tensor *p = lg_param_at(ctx, i);
        const unsigned char *d = lg_tensor_data(p);
        size_t n = (size_t)lg_tensor_numel(p) * (lg_tensor_dtype(p) == LG_F32 ? 4 : 8);
        for (size_t k = 0; k < n; k++)
            h = (h ^ d[k]) * 1099511628211u;
    }
    printf("RESULT example=lossgrad_demo final_loss=%.5f accuracy=%.4f epochs=%d steps=%lld "
           "params=%016llx threads_bitwise=%d seconds=%.3f\n",
           loss_sum / (NPOINTS / BATCH), acc, o.epochs, (long long)lg_optim_steps(opt),
           (unsigned long long)h,
           lg_threads_bitwise(ctx, LG_F32) && lg_threads_bitwise(ctx, LG_F64) ? 1 : 0, secs);
    lg_step_end(ctx);
    lg_ctx_free(ctx);
    return 0;
}
