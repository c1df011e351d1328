/* fashion_softmax: softmax regression (784 -> 10) on Fashion-MNIST with
 * cross_entropy and Adam (cosine-annealed). Shows that nll_loss over log_softmax is the same
 * loss, and what label_smoothing does: nearly the same accuracy, much less
 * confident predictions. */
#include "../common/common.h"

#include <math.h>
#include <stdlib.h>

enum { D = 784, C = 10, BATCH = 128 };

static lg_tensor *forward(lg_ctx *ctx, lg_tensor *x, void *user)
{
    return lg_linear_forward(ctx, user, x);
}

/* Mean probability given to the predicted class on the test set. */
static double confidence(lg_ctx *ctx, lg_linear *l, const ex_mnist *te)
{
    lg_no_grad_begin(ctx);
    lg_tensor *x = lg_tensor_from(ctx, LG_F32, te->images, 2, (int64_t[]){ te->n, D });
    lg_tensor *p =
        lg_max(ctx, lg_softmax(ctx, forward(ctx, x, l), 1), 1, (int[]){ 1 }, false, NULL);
    double c = lg_item(ctx, lg_mean(ctx, p, 0, NULL, false));
    lg_no_grad_end(ctx);
    lg_step_end(ctx);
    return c;
}

static ex_curve loss_curves[2], acc_curves[2];

static lg_linear *train(lg_ctx *ctx, const ex_args *a, const ex_mnist *tr, const ex_mnist *te,
                        const char *name, double smoothing, FILE *csv)
{
    int id = smoothing > 0;
    loss_curves[id].name = acc_curves[id].name = name;
    lg_linear *l = lg_linear_new(ctx, name, D, C, NULL);
    lg_optim_opts oo = lg_optim_opts_default(LG_ADAM); /* lr 1e-3 */
    oo.params = (lg_tensor *[]){ l->weight, l->bias };
    oo.nparams = 2;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    lg_sched *sched =
        lg_sched_new(ctx, opt, &(lg_sched_opts){ .kind = LG_SCHED_COSINE, .t_max = a->epochs });
    ex_check(ctx, "model");
    int64_t n = a->quick ? 12800 : tr->n, *idx = malloc((size_t)tr->n * sizeof *idx);
    float *bx = malloc(BATCH * D * sizeof(float));
    int64_t by[BATCH];
    for (int e = 0; e < a->epochs; e++) {
        ex_shuffle(ctx, idx, tr->n);
        ex_progress p;
        ex_progress_start(&p, name, n / BATCH);
        double sum = 0;
        for (int64_t s = 0; s + BATCH <= n; s += BATCH) {
            ex_gather(bx, tr->images, D, idx + s, BATCH);
            for (int k = 0; k < BATCH; k++)
                by[k] = tr->labels[idx[s + k]];
            lg_tensor *x = lg_tensor_from(ctx, LG_F32, bx, 2, (int64_t[]){ BATCH, D });
            lg_tensor *y = lg_tensor_from(ctx, LG_I64, by, 1, (int64_t[]){ BATCH });
            lg_tensor *loss = lg_cross_entropy(
                ctx, forward(ctx, x, l), y,
                &(lg_ce_opts){ .ignore_index = -100, .label_smoothing = smoothing });
            sum += ex_step(ctx, loss, opt);
            ex_progress_update(&p, s / BATCH + 1, sum / (double)(s / BATCH + 1));
        }
        double acc = ex_accuracy(ctx, forward, l, te->images, te->labels, te->n, D);
        char msg[96];
        snprintf(msg, sizeof msg, "epoch %d, train loss %.4f, test accuracy %.4f", e + 1,
                 sum / (double)(n / BATCH), acc);
        ex_progress_end(&p, msg);
        ex_csv_row(csv, 4, (double[]){ smoothing, e + 1, sum / (double)(n / BATCH), acc });
        ex_curve_add(&loss_curves[id], e + 1, sum / (double)(n / BATCH));
        ex_curve_add(&acc_curves[id], e + 1, acc);
        lg_sched_step(sched);
    }
    free(idx);
    free(bx);
    return l;
}

int main(int argc, char **argv)
{
    ex_args a = ex_parse(argc, argv, "fashion_softmax", 20);
    double t0 = ex_seconds();
    lg_ctx *ctx = ex_ctx(&a);
    ex_mnist tr = ex_fashion_load(&a, true), te = ex_fashion_load(&a, false);
    FILE *csv = ex_csv_open(&a, "training.csv", "label_smoothing,epoch,train_loss,test_accuracy");
    lg_linear *plain = train(ctx, &a, &tr, &te, "softmax", 0.0, csv);
    lg_linear *smooth = train(ctx, &a, &tr, &te, "smoothed", 0.1, csv);
    if (csv)
        fclose(csv);
    double acc = ex_accuracy(ctx, forward, plain, te.images, te.labels, te.n, D);
    double acc_s = ex_accuracy(ctx, forward, smooth, te.images, te.labels, te.n, D);

    /* cross_entropy(x, y) == nll_loss(log_softmax(x), y) on the test set */
    int64_t *ty = malloc((size_t)te.n * sizeof *ty);
    for (int64_t i = 0; i < te.n; i++)
        ty[i] = te.labels[i];
    lg_no_grad_begin(ctx);
    lg_tensor *x = lg_tensor_from(ctx, LG_F32, te.images, 2, (int64_t[]){ te.n, D });
    lg_tensor *y = lg_tensor_from(ctx, LG_I64, ty, 1, (int64_t[]){ te.n });
    lg_tensor *logits = forward(ctx, x, plain);
    double ce = lg_item(ctx, lg_cross_entropy(ctx, logits, y, NULL));
    double nll = lg_item(ctx, lg_nll_loss(ctx, lg_log_softmax(ctx, logits, 1), y, NULL));
    lg_no_grad_end(ctx);
    lg_step_end(ctx);
    ex_check(ctx, "comparison");
    printf("test loss: cross_entropy %.6f, nll_loss(log_softmax) %.6f (difference %.2g)\n", ce, nll,
           fabs(ce - nll));
    double conf = confidence(ctx, plain, &te), conf_s = confidence(ctx, smooth, &te);
    printf("label smoothing 0.1: test accuracy %.4f -> %.4f, mean confidence %.3f -> %.3f\n", acc,
           acc_s, conf, conf_s);
    ex_plot_curves(&a, "loss.svg", "Training loss (label smoothing raises its floor)", "epoch",
                   "cross-entropy", 2, loss_curves);
    ex_plot_curves(&a, "accuracy.svg", "Test accuracy", "epoch", "accuracy", 2, acc_curves);
    printf("curves: %s/loss.svg, accuracy.svg, training.csv\n", a.out_dir);
    ex_result(&a, ex_seconds() - t0,
              "test_accuracy=%.4f smoothed_test_accuracy=%.4f ce_nll_difference=%.3g "
              "confidence=%.3f smoothed_confidence=%.3f",
              acc, acc_s, fabs(ce - nll), conf, conf_s);
    free(ty);
    ex_mnist_free(&tr);
    ex_mnist_free(&te);
    lg_ctx_free(ctx);
    return 0;
}
