/* fashion_cnn: a small convolutional network on Fashion-MNIST.
 *
 *   [N, 1, 28, 28] -> conv 3x3 (32) -> max pool 2 -> batch norm -> ReLU
 *                  -> conv 3x3 (64) -> max pool 2 -> batch norm -> ReLU
 *                  -> dropout 0.3 -> linear 3136 -> 10
 *
 * (pooling before batch norm: the normalisation and the activation then
 * run on a quarter of the values)
 * about 50K parameters, cross-entropy with label smoothing 0.05, AdamW
 * with a cosine schedule; each training image is mirrored left to right
 * with probability 1/2 (garments are close to symmetric). Batch norm uses batch statistics while
 * training and its running statistics for testing (evaluation mode), and dropout is active only in
 * training. Writes the test accuracy per epoch, the confusion matrix of the test set
 * (confusion.svg) and a checkpoint whose names are PyTorch's state_dict names (cnn.safetensors). */
#include "../common/common.h"

#include <stdlib.h>
#include <string.h>

enum { D = 784, C = 10, BATCH = 64 };

typedef struct cnn {
    lg_conv *conv1, *conv2;
    lg_batchnorm *bn1, *bn2;
    lg_linear *fc;
} cnn;

static cnn cnn_new(lg_ctx *ctx)
{
    lg_conv_opts same = lg_conv_opts_default();
    same.padding = 1;
    cnn m = { lg_conv2d_new(ctx, "conv1", 1, 32, 3, 3, &same, NULL),
              lg_conv2d_new(ctx, "conv2", 32, 64, 3, 3, &same, NULL),
              lg_batchnorm_new(ctx, "bn1", 32, NULL), lg_batchnorm_new(ctx, "bn2", 64, NULL),
              lg_linear_new(ctx, "fc", 64 * 7 * 7, C, NULL) };
    ex_check(ctx, "model");
    return m;
}

/* x [N, 784] -> logits [N, 10] */
static lg_tensor *cnn_forward(lg_ctx *ctx, lg_tensor *x, void *user)
{
    const cnn *m = user;
    int64_t n = lg_tensor_dim(x, 0);
    lg_tensor *h = lg_reshape(ctx, x, 4, (int64_t[]){ n, 1, 28, 28 });
    h = lg_max_pool2d(ctx, lg_conv_forward(ctx, m->conv1, h), 2, 2, NULL, NULL);
    h = lg_relu(ctx, lg_batchnorm_forward(ctx, m->bn1, h));
    h = lg_max_pool2d(ctx, lg_conv_forward(ctx, m->conv2, h), 2, 2, NULL, NULL);
    h = lg_relu(ctx, lg_batchnorm_forward(ctx, m->bn2, h));
    h = lg_dropout(ctx, lg_reshape(ctx, h, 2, (int64_t[]){ n, 64 * 7 * 7 }), 0.3);
    return lg_linear_forward(ctx, m->fc, h);
}

/* An image [28, 28] mirrored left to right, in place. */
static void mirror(float *img)
{
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 14; x++) {
            float t = img[y * 28 + x];
            img[y * 28 + x] = img[y * 28 + 27 - x];
            img[y * 28 + 27 - x] = t;
        }
}

/* The test set's confusion matrix (rows: true class), in evaluation mode. */
static void confusion(lg_ctx *ctx, const cnn *m, const ex_mnist *te, int64_t n, int64_t cm[C][C])
{
    memset(cm, 0, sizeof(int64_t) * C * C);
    int64_t pred[1000];
    lg_ctx_set_training(ctx, false);
    lg_no_grad_begin(ctx);
    for (int64_t s = 0; s < n; s += 1000) {
        int64_t k = n - s < 1000 ? n - s : 1000;
        lg_tensor *x = lg_tensor_from(ctx, LG_F32, te->images + s * D, 2, (int64_t[]){ k, D });
        lg_tensor *logits = cnn_forward(ctx, x, (void *)m);
        ex_check(ctx, "evaluation");
        ex_argmax(logits, pred);
        for (int64_t i = 0; i < k; i++)
            cm[te->labels[s + i]][pred[i]]++;
        lg_step_end(ctx);
    }
    lg_no_grad_end(ctx);
    lg_ctx_set_training(ctx, true);
}

/* The matrix as an SVG heat map, each row normalised by its class count. */
static void confusion_svg(const ex_args *a, int64_t cm[C][C])
{
    FILE *f = fopen(ex_path(a, "confusion.svg"), "w");
    if (!f)
        return;
    const int cell = 44, left = 110, top = 40;
    fprintf(f,
            "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
            "font-family='sans-serif' font-size='11'>\n<text x='%d' y='20' font-size='14'>"
            "Fashion-MNIST test confusion (rows: true class, columns: predicted)</text>\n",
            left + C * cell + 20, top + C * cell + 100, left);
    for (int i = 0; i < C; i++) {
        int64_t row = 0;
        for (int j = 0; j < C; j++)
            row += cm[i][j];
        fprintf(f, "<text x='%d' y='%d' text-anchor='end'>%s</text>\n", left - 6,
                top + i * cell + cell / 2 + 4, ex_fashion_classes[i]);
        for (int j = 0; j < C; j++) {
            double p = row ? (double)cm[i][j] / (double)row : 0;
            int shade = 255 - (int)(p * 255);
            fprintf(f,
                    "<rect x='%d' y='%d' width='%d' height='%d' fill='rgb(%d,%d,255)' "
                    "stroke='#ccc'/><text x='%d' y='%d' text-anchor='middle' fill='%s'>%.2f"
                    "</text>\n",
                    left + j * cell, top + i * cell, cell, cell, shade, shade,
                    left + j * cell + cell / 2, top + i * cell + cell / 2 + 4,
                    p > 0.5 ? "white" : "black", p);
        }
    }
    for (int j = 0; j < C; j++)
        fprintf(f, "<text transform='translate(%d,%d) rotate(45)'>%s</text>\n",
                left + j * cell + cell / 2, top + C * cell + 12, ex_fashion_classes[j]);
    fprintf(f, "</svg>\n");
    fclose(f);
}

int main(int argc, char **argv)
{
    ex_args a = ex_parse(argc, argv, "fashion_cnn", 8);
    double t0 = ex_seconds();
    lg_ctx *ctx = ex_ctx(&a);
    ex_mnist tr = ex_fashion_load(&a, true), te = ex_fashion_load(&a, false);
    FILE *csv = ex_csv_open(&a, "training.csv", "epoch,train_loss,test_accuracy");
    cnn m = cnn_new(ctx);

    lg_optim_opts oo = lg_optim_opts_default(LG_ADAMW);
    oo.lr = 2e-3;
    oo.weight_decay = 1e-4;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    lg_sched_opts so = lg_sched_opts_default(LG_SCHED_COSINE);
    so.t_max = a.epochs;
    lg_sched *sched = lg_sched_new(ctx, opt, &so);
    lg_ce_opts ce = lg_ce_opts_default();
    ce.label_smoothing = 0.05;
    ex_check(ctx, "optimizer");

    /* --quick: batches of 32, so that its 3,200 images make 100 steps an epoch */
    int64_t bs = a.quick ? 32 : BATCH;
    int64_t n = a.quick ? 3200 : tr.n, *idx = malloc((size_t)tr.n * sizeof *idx), by[BATCH];
    float *bx = malloc(BATCH * D * sizeof(float));
    ex_curve curve = { .name = "cnn" };
    double acc = 0, loss_first = 0, loss_last = 0;
    for (int e = 0; e < a.epochs; e++) {
        ex_shuffle(ctx, idx, tr.n);
        ex_progress p;
        ex_progress_start(&p, "cnn", n / bs);
        double sum = 0;
        for (int64_t s = 0; s + bs <= n; s += bs) {
            ex_gather(bx, tr.images, D, idx + s, bs);
            for (int k = 0; k < bs; k++) {
                by[k] = tr.labels[idx[s + k]];
                if (lg_rand_uniform(ctx) < 0.5)
                    mirror(bx + k * D);
            }
            lg_tensor *x = lg_tensor_from(ctx, LG_F32, bx, 2, (int64_t[]){ bs, D });
            lg_tensor *y = lg_tensor_from(ctx, LG_I64, by, 1, (int64_t[]){ bs });
            lg_tensor *loss = lg_cross_entropy(ctx, cnn_forward(ctx, x, &m), y, &ce);
            sum += ex_step(ctx, loss, opt);
            ex_progress_update(&p, s / bs + 1, sum / (double)(s / bs + 1));
        }
        lg_sched_step(sched);
        double mean = sum / (double)(n / bs);
        if (e == 0)
            loss_first = mean;
        loss_last = mean;
        acc = ex_accuracy(ctx, cnn_forward, &m, te.images, te.labels, a.quick ? 1000 : te.n, D);
        char msg[96];
        snprintf(msg, sizeof msg, "epoch %d, train loss %.4f, test accuracy %.4f", e + 1, mean,
                 acc);
        ex_progress_end(&p, msg);
        ex_csv_row(csv, 3, (double[]){ e + 1, mean, acc });
        ex_curve_add(&curve, e + 1, acc);
    }
    if (csv)
        fclose(csv);
    int64_t cm[C][C];
    confusion(ctx, &m, &te, a.quick ? 1000 : te.n, cm);
    confusion_svg(&a, cm);
    ex_plot_curves(&a, "accuracy.svg", "CNN test accuracy", "epoch", "accuracy", 1, &curve);
    if (lg_checkpoint_save(ctx, ex_path(&a, "cnn.safetensors"), NULL) != LG_OK)
        ex_check(ctx, "checkpoint");
    int64_t nparams = 0;
    for (int i = 0; i < lg_param_count(ctx); i++)
        nparams += lg_tensor_numel(lg_param_at(ctx, i));
    printf("%lld parameters; pictures: %s/accuracy.svg, confusion.svg; checkpoint "
           "cnn.safetensors\n",
           (long long)nparams, a.out_dir);
    ex_result(&a, ex_seconds() - t0, "test_accuracy=%.4f first_loss=%.4f last_loss=%.4f", acc,
              loss_first, loss_last);
    free(idx);
    free(bx);
    ex_mnist_free(&tr);
    ex_mnist_free(&te);
    lg_ctx_free(ctx);
    return 0;
}
