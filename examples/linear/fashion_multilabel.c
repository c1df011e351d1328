/* fashion_multilabel: images holding two items of different classes side
 * by side (28 x 56), multi-hot labels, trained with
 * multilabel_soft_margin_loss. The model is a small MLP (784-256-10)
 * applied to each half with shared weights; a class's logit is the larger
 * of its two halves' (elementwise maximum), and an item is predicted
 * present when its sigmoid exceeds 0.5. Reports micro-F1 and exact-match
 * accuracy. */
#include "../common/common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { W = 56, D = 28 * W, C = 10, BATCH = 128 };

/* Pastes items a and b of m side by side into dst [28, 56]; sets labels. */
static void pair(const ex_mnist *m, int64_t a, int64_t b, float *dst, float *hot)
{
    for (int r = 0; r < 28; r++) {
        memcpy(dst + r * W, m->images + a * 784 + r * 28, 28 * sizeof(float));
        memcpy(dst + r * W + 28, m->images + b * 784 + r * 28, 28 * sizeof(float));
    }
    memset(hot, 0, C * sizeof(float));
    hot[m->labels[a]] = hot[m->labels[b]] = 1;
}

/* Two random items of different classes. */
static void draw(lg_ctx *ctx, const ex_mnist *m, int64_t *a, int64_t *b)
{
    *a = (int64_t)lg_rand_below(ctx, (uint64_t)m->n);
    do
        *b = (int64_t)lg_rand_below(ctx, (uint64_t)m->n);
    while (m->labels[*b] == m->labels[*a]);
}

/* x: [n, 28 * 56] -> logits [n, 10]: max over the two halves. */
static lg_tensor *forward(lg_ctx *ctx, lg_mlp *net, lg_tensor *x)
{
    int64_t n = lg_tensor_shape(x)[0];
    lg_tensor *img = lg_reshape(ctx, x, 3, (int64_t[]){ n, 28, W });
    lg_tensor *left = lg_reshape(ctx, lg_narrow(ctx, img, 2, 0, 28), 2, (int64_t[]){ n, 784 });
    lg_tensor *right = lg_reshape(ctx, lg_narrow(ctx, img, 2, 28, 28), 2, (int64_t[]){ n, 784 });
    return lg_maximum(ctx, lg_mlp_forward(ctx, net, left), lg_mlp_forward(ctx, net, right));
}

int main(int argc, char **argv)
{
    ex_args a = ex_parse(argc, argv, "fashion_multilabel", 6);
    double t0 = ex_seconds();
    lg_ctx *ctx = ex_ctx(&a);
    ex_mnist tr = ex_fashion_load(&a, true), te = ex_fashion_load(&a, false);
    lg_mlp *net = lg_mlp_new(ctx, "mlp", 3, (int64_t[]){ 784, 256, C }, NULL);
    lg_optim_opts oo = lg_optim_opts_default(LG_ADAM); /* lr 1e-3 */
    lg_optim *opt = lg_optim_new(ctx, &oo);
    lg_sched *sched =
        lg_sched_new(ctx, opt, &(lg_sched_opts){ .kind = LG_SCHED_COSINE, .t_max = a.epochs });
    ex_check(ctx, "model");
    /* a fixed test set of pairs */
    int64_t ntest = a.quick ? 2000 : 10000;
    float *tx = malloc((size_t)ntest * D * sizeof(float)),
          *ty = malloc((size_t)ntest * C * sizeof(float));
    for (int64_t i = 0; i < ntest; i++) {
        int64_t p, q;
        draw(ctx, &te, &p, &q);
        pair(&te, p, q, tx + i * D, ty + i * C);
    }
    int64_t per_epoch = a.quick ? 16000 : 60000;
    float *bx = malloc(BATCH * D * sizeof(float)), by[BATCH * C];
    FILE *csv = ex_csv_open(&a, "training.csv", "epoch,train_loss,micro_f1,exact_match");
    double f1 = 0, exact = 0;
    ex_curve curves[2] = { { "micro-F1", 0, { 0 }, { 0 } }, { "exact match", 0, { 0 }, { 0 } } };
    for (int e = 0; e < a.epochs; e++) {
        ex_progress p;
        ex_progress_start(&p, "multilabel", per_epoch / BATCH);
        double sum = 0;
        for (int64_t s = 0; s + BATCH <= per_epoch; s += BATCH) {
            for (int k = 0; k < BATCH; k++) {
                int64_t i, j;
                draw(ctx, &tr, &i, &j);
                pair(&tr, i, j, bx + k * D, by + k * C);
            }
            lg_tensor *x = lg_tensor_from(ctx, LG_F32, bx, 2, (int64_t[]){ BATCH, D });
            lg_tensor *y = lg_tensor_from(ctx, LG_F32, by, 2, (int64_t[]){ BATCH, C });
            lg_tensor *loss = lg_multilabel_soft_margin_loss(ctx, forward(ctx, net, x), y, NULL);
            sum += ex_step(ctx, loss, opt);
            ex_progress_update(&p, s / BATCH + 1, sum / (double)(s / BATCH + 1));
        }
        /* micro-F1 over all (image, class) decisions */
        double tp = 0, fp = 0, fn = 0;
        int64_t exact_n = 0;
        lg_no_grad_begin(ctx);
        for (int64_t s = 0; s < ntest; s += 1000) {
            int64_t m = ntest - s < 1000 ? ntest - s : 1000;
            lg_tensor *z =
                forward(ctx, net, lg_tensor_from(ctx, LG_F32, tx + s * D, 2, (int64_t[]){ m, D }));
            ex_check(ctx, "evaluation");
            const float *zv = lg_tensor_data(z);
            for (int64_t i = 0; i < m; i++) {
                bool all = true;
                for (int c = 0; c < C; c++) {
                    bool pred = zv[i * C + c] > 0, truth = ty[(s + i) * C + c] > 0.5f;
                    tp += pred && truth, fp += pred && !truth, fn += !pred && truth;
                    all &= pred == truth;
                }
                exact_n += all;
            }
            lg_step_end(ctx);
        }
        lg_no_grad_end(ctx);
        f1 = 2 * tp / fmax(2 * tp + fp + fn, 1);
        exact = (double)exact_n / (double)ntest;
        char msg[96];
        snprintf(msg, sizeof msg, "epoch %d, loss %.4f, micro-F1 %.4f, exact match %.4f", e + 1,
                 sum / (double)(per_epoch / BATCH), f1, exact);
        ex_progress_end(&p, msg);
        ex_csv_row(csv, 4, (double[]){ e + 1, sum / (double)(per_epoch / BATCH), f1, exact });
        ex_curve_add(&curves[0], e + 1, f1);
        ex_curve_add(&curves[1], e + 1, exact);
        lg_sched_step(sched);
    }
    if (csv)
        fclose(csv);
    ex_plot_curves(&a, "scores.svg", "Two items per image: test scores", "epoch", "score", 2,
                   curves);
    printf("curves: %s/scores.svg, training.csv\n", a.out_dir);
    ex_result(&a, ex_seconds() - t0, "micro_f1=%.4f exact_match=%.4f", f1, exact);
    free(tx), free(ty), free(bx);
    ex_mnist_free(&tr);
    ex_mnist_free(&te);
    lg_ctx_free(ctx);
    return 0;
}
