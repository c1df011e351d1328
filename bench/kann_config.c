/* kann_config: the configuration lossgrad was held against KANN in (issue
 * 15), so that the comparison can be repeated on any machine where KANN
 * is built by hand (KANN is not packaged and nothing of it is here).
 *
 * The model and run, as in KANN's MLP example:
 *   784-256-10, ReLU between the layers, softmax cross-entropy (mean),
 *   batch 128, one Fashion-MNIST training epoch (60,000 images, 468 full
 *   batches) in the files' order (no shuffle), 1 thread;
 *   RMSprop lr 1e-3, alpha (KANN's decay) 0.9, and SGD lr 0.01.
 * Each optimizer trains a fresh model from the same seed; the epoch's
 * seconds cover the whole loop (batch copy, forward, backward, update),
 * then the test accuracy is measured on the 10,000 t10k images.
 *
 *   bench_kann_config [--epochs E] [--threads T] [--seed S] [--data DIR] [--quick]
 *
 * Prints one line per optimizer and epoch, and per optimizer
 *   RESULT bench=kann_config optim=<name> seconds_per_epoch=<s> test_accuracy=<a>
 * (--threads defaults to 2 in the examples' flags: pass --threads 1 for
 * KANN's configuration; --quick: 6,000 images, for a smoke test.)
 */
#include "../examples/common/common.h"

#include <stdlib.h>

enum { D = 784, HIDDEN = 256, C = 10, BATCH = 128 };

static lg_tensor *forward(lg_ctx *ctx, lg_tensor *x, void *user)
{
    return lg_mlp_forward(ctx, user, x);
}

/* Trains one model with `oo` for the epochs; its mean seconds per epoch. */
static double train(const ex_args *a, const ex_mnist *tr, const ex_mnist *te, const char *name,
                    lg_optim_opts oo, double *accuracy)
{
    lg_ctx *ctx = ex_ctx(a);
    lg_mlp *mlp = lg_mlp_new(ctx, "mlp", 3, (int64_t[]){ D, HIDDEN, C }, NULL);
    ex_check(ctx, "model");
    lg_tensor *params[4] = { mlp->layers[0]->weight, mlp->layers[0]->bias,
                             mlp->layers[1]->weight, mlp->layers[1]->bias };
    oo.params = params;
    oo.nparams = 4;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    ex_check(ctx, "optimizer");
    int64_t n = a->quick ? 6000 : tr->n, by[BATCH];
    double total = 0;
    for (int e = 0; e < a->epochs; e++) {
        double t0 = ex_seconds(), sum = 0;
        int64_t steps = 0;
        for (int64_t s = 0; s + BATCH <= n; s += BATCH, steps++) {
            for (int k = 0; k < BATCH; k++)
                by[k] = tr->labels[s + k];
            lg_tensor *x =
                lg_tensor_from(ctx, LG_F32, tr->images + s * D, 2, (int64_t[]){ BATCH, D });
            lg_tensor *y = lg_tensor_from(ctx, LG_I64, by, 1, (int64_t[]){ BATCH });
            sum += ex_step(ctx, lg_cross_entropy(ctx, lg_mlp_forward(ctx, mlp, x), y, NULL), opt);
        }
        double dt = ex_seconds() - t0;
        total += dt;
        printf("%-8s epoch %d: %.3f s, mean loss %.4f over %lld batches\n", name, e + 1, dt,
               sum / (double)steps, (long long)steps);
    }
    *accuracy = ex_accuracy(ctx, forward, mlp, te->images, te->labels, te->n, D);
    lg_ctx_free(ctx);
    return total / a->epochs;
}

int main(int argc, char **argv)
{
    ex_args a = ex_parse(argc, argv, "kann_config", 1);
    ex_mnist tr = ex_fashion_load(&a, true), te = ex_fashion_load(&a, false);
    lg_optim_opts rms = lg_optim_opts_default(LG_RMSPROP);
    rms.lr = 1e-3;
    rms.alpha = 0.9;
    lg_optim_opts sgd = lg_optim_opts_default(LG_SGD);
    sgd.lr = 0.01;
    const char *names[2] = { "rmsprop", "sgd" };
    const lg_optim_opts configs[2] = { rms, sgd };
    printf("kann_config: 784-%d-%d ReLU MLP, softmax cross-entropy, batch %d, %d thread(s), "
           "files' order\n",
           HIDDEN, C, BATCH, a.threads);
    for (int k = 0; k < 2; k++) {
        double acc, s = train(&a, &tr, &te, names[k], configs[k], &acc);
        printf("RESULT bench=kann_config optim=%s seconds_per_epoch=%.3f test_accuracy=%.4f\n",
               names[k], s, acc);
    }
    ex_mnist_free(&tr);
    ex_mnist_free(&te);
    return 0;
}
