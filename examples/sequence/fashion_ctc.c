/* fashion_ctc: strips of 1 to 5 Fashion-MNIST items side by side, read
 * left to right by a small CRNN, then log_softmax and ctc_loss with each
 * strip's length: the network is never told where one item ends and the
 * next begins.
 *
 *   strip [N, 1, 28, 140] (zeros past its end)
 *     -> conv 3x3 (C1) -> max pool 2 -> batch norm -> ReLU
 *     -> conv 3x3 (C2) -> max pool 2 -> batch norm -> ReLU    [N, C2, 7, 35]
 *     -> channels x height as features, width as time         [35, N, 7 C2]
 *     -> bidirectional GRU (H each way) -> linear to 11 classes
 *
 * Class 0 is the CTC blank, 1..10 the items; a strip of k items has 7 k
 * frames after pooling, its CTC input length (the GRU ignores the frames
 * past it). Each training item is mirrored left to right with probability
 * 1/2; fresh strips every epoch. Batch norm uses batch statistics while
 * training and its running statistics for testing (evaluation mode).
 * Greedy decoding (arg-max per frame, repeats merged, blanks dropped) on
 * strips made from the test set gives the label error rate (edit distance
 * over target length), the share of strips whose predicted length is
 * right, and whole-strip accuracy. */
#include "../common/common.h"

#include <stdlib.h>
#include <string.h>

enum {
    MAXK = 5,
    W = 28 * MAXK,   /* strip width in pixels */
    FRAMES = 28 / 4, /* frames per item after two 2x2 poolings */
    TMAX = MAXK * FRAMES,
    C1 = 16,
    C2 = 32,
    FEAT = C2 * 7,
    C = 11,
    H = 128,
    BATCH = 64,
    EVAL_BATCH = 250
};

typedef struct strips {
    int64_t n;
    int64_t *items;  /* [n, MAXK] image indices (-1 past the length) */
    bool *mirrored;  /* [n, MAXK] drawn mirrored */
    int64_t *labels; /* [n, MAXK] padded with 1 (ignored past the length) */
    int64_t *len;    /* items per strip */
    int64_t *frames; /* frames per strip */
} strips;

/* n strips of 1..5 random items from m, each mirrored with probability 1/2
 * if mirror. */
static strips make_strips(lg_ctx *ctx, const ex_mnist *m, int64_t n, bool mirror)
{
    strips s = { n,
                 malloc((size_t)(n * MAXK) * sizeof(int64_t)),
                 calloc((size_t)(n * MAXK), sizeof(bool)),
                 malloc((size_t)(n * MAXK) * sizeof(int64_t)),
                 malloc((size_t)n * sizeof(int64_t)),
                 malloc((size_t)n * sizeof(int64_t)) };
    for (int64_t b = 0; b < n; b++) {
        int64_t k = 1 + (int64_t)lg_rand_below(ctx, MAXK);
        s.len[b] = k, s.frames[b] = k * FRAMES;
        for (int64_t j = 0; j < MAXK; j++) {
            s.items[b * MAXK + j] = -1;
            s.labels[b * MAXK + j] = 1;
        }
        for (int64_t j = 0; j < k; j++) {
            int64_t item = (int64_t)lg_rand_below(ctx, (uint64_t)m->n);
            s.items[b * MAXK + j] = item;
            s.labels[b * MAXK + j] = 1 + m->labels[item];
            s.mirrored[b * MAXK + j] = mirror && lg_rand_uniform(ctx) < 0.5;
        }
    }
    return s;
}

static void free_strips(strips *s)
{
    free(s->items), free(s->mirrored), free(s->labels), free(s->len), free(s->frames);
}

/* Strips [first, first + n) drawn into buf [n, 28, W], zeros past each end. */
static void draw_strips(float *buf, const ex_mnist *m, const strips *s, int64_t first, int64_t n)
{
    memset(buf, 0, (size_t)(n * 28 * W) * sizeof(float));
    for (int64_t b = 0; b < n; b++)
        for (int64_t j = 0; j < s->len[first + b]; j++) {
            const float *img = m->images + s->items[(first + b) * MAXK + j] * 784;
            bool flip = s->mirrored[(first + b) * MAXK + j];
            for (int r = 0; r < 28; r++) {
                float *row = buf + (b * 28 + r) * W + j * 28;
                for (int c = 0; c < 28; c++)
                    row[c] = img[r * 28 + (flip ? 27 - c : c)];
            }
        }
}

typedef struct model {
    lg_conv *conv1, *conv2;
    lg_batchnorm *bn1, *bn2;
    lg_rnn *gru;
    lg_linear *out;
} model;

static model model_new(lg_ctx *ctx)
{
    lg_conv_opts same = lg_conv_opts_default();
    same.padding = 1;
    model m = { lg_conv2d_new(ctx, "conv1", 1, C1, 3, 3, &same, NULL),
                lg_conv2d_new(ctx, "conv2", C1, C2, 3, 3, &same, NULL),
                lg_batchnorm_new(ctx, "bn1", C1, NULL),
                lg_batchnorm_new(ctx, "bn2", C2, NULL),
                lg_rnn_new(ctx, "gru", LG_GRU, FEAT, H,
                           &(lg_rnn_opts){ .num_layers = 1, .bidirectional = true }),
                lg_linear_new(ctx, "out", 2 * H, C, NULL) };
    ex_check(ctx, "model");
    return m;
}

/* Strips [first, first + n) -> log-probabilities [TMAX, n, C]. */
static lg_tensor *forward(lg_ctx *ctx, const model *m, const ex_mnist *src, const strips *s,
                          int64_t first, int64_t n, float *buf)
{
    draw_strips(buf, src, s, first, n);
    lg_tensor *h = lg_tensor_from(ctx, LG_F32, buf, 4, (int64_t[]){ n, 1, 28, W });
    h = lg_max_pool2d(ctx, lg_conv_forward(ctx, m->conv1, h), 2, 2, NULL, NULL);
    h = lg_relu(ctx, lg_batchnorm_forward(ctx, m->bn1, h));
    h = lg_max_pool2d(ctx, lg_conv_forward(ctx, m->conv2, h), 2, 2, NULL, NULL);
    h = lg_relu(ctx, lg_batchnorm_forward(ctx, m->bn2, h)); /* [n, C2, 7, TMAX] */
    h = lg_permute(ctx, h, (int[]){ 3, 0, 1, 2 });          /* [TMAX, n, C2, 7] */
    h = lg_reshape(ctx, h, 3, (int64_t[]){ TMAX, n, FEAT });
    lg_tensor *lens = lg_tensor_from(ctx, LG_I64, s->frames + first, 1, (int64_t[]){ n });
    lg_rnn_result r;
    if (lg_rnn_forward(ctx, m->gru, h, lens, NULL, NULL, &r) != LG_OK)
        ex_check(ctx, "gru");
    return lg_log_softmax(ctx, lg_linear_forward(ctx, m->out, r.output), 2);
}

static int64_t edit_distance(const int64_t *a, int64_t na, const int64_t *b, int64_t nb)
{
    int64_t d[TMAX + 1][MAXK + 1];
    for (int64_t i = 0; i <= na; i++)
        for (int64_t j = 0; j <= nb; j++) {
            if (!i || !j) {
                d[i][j] = i + j;
                continue;
            }
            int64_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]), del = d[i - 1][j] + 1,
                    ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[na][nb];
}

typedef struct metrics {
    double ler, length_acc, seq_acc;
} metrics;

/* Greedy decoding of the strips, in evaluation mode. */
static metrics evaluate(lg_ctx *ctx, const model *m, const ex_mnist *src, const strips *s,
                        bool show)
{
    float *buf = malloc((size_t)(EVAL_BATCH * 28 * W) * sizeof(float));
    int64_t errors = 0, total = 0, len_ok = 0, seq_ok = 0;
    lg_ctx_set_training(ctx, false);
    lg_no_grad_begin(ctx);
    for (int64_t first = 0; first < s->n; first += EVAL_BATCH) {
        int64_t n = s->n - first < EVAL_BATCH ? s->n - first : EVAL_BATCH;
        lg_tensor *lp = forward(ctx, m, src, s, first, n, buf);
        ex_check(ctx, "evaluation");
        const float *v = lg_tensor_data(lp);
        for (int64_t b = 0; b < n; b++) {
            int64_t pred[TMAX], np = 0, prev = 0, g = first + b;
            for (int64_t t = 0; t < s->frames[g];
                 t++) { /* greedy: arg-max, merge repeats, drop blanks */
                const float *row = v + (t * n + b) * C;
                int64_t best = 0;
                for (int c = 1; c < C; c++)
                    if (row[c] > row[best])
                        best = c;
                if (best != prev && best != 0)
                    pred[np++] = best;
                prev = best;
            }
            const int64_t *truth = s->labels + g * MAXK;
            int64_t e = edit_distance(pred, np, truth, s->len[g]);
            errors += e, total += s->len[g], len_ok += np == s->len[g], seq_ok += e == 0;
            if (show && g < 6) {
                printf("  truth:");
                for (int64_t j = 0; j < s->len[g]; j++)
                    printf(" %s", ex_fashion_classes[truth[j] - 1]);
                printf("\n  read: ");
                for (int64_t j = 0; j < np; j++)
                    printf(" %s", ex_fashion_classes[pred[j] - 1]);
                printf("%s\n", e ? "" : "   (exact)");
            }
        }
        lg_step_end(ctx);
    }
    lg_no_grad_end(ctx);
    lg_ctx_set_training(ctx, true);
    free(buf);
    return (metrics){ (double)errors / (double)total, (double)len_ok / (double)s->n,
                      (double)seq_ok / (double)s->n };
}

int main(int argc, char **argv)
{
    ex_args a = ex_parse(argc, argv, "fashion_ctc", 7);
    double t0 = ex_seconds();
    lg_ctx *ctx = ex_ctx(&a);
    ex_mnist tr = ex_fashion_load(&a, true), te = ex_fashion_load(&a, false);
    model m = model_new(ctx);
    lg_optim_opts oo = lg_optim_opts_default(LG_ADAMW);
    oo.lr = 3e-3;
    oo.weight_decay = 1e-4;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    lg_sched *sched =
        lg_sched_new(ctx, opt, &(lg_sched_opts){ .kind = LG_SCHED_COSINE, .t_max = a.epochs });
    ex_check(ctx, "optimizer");
    strips test = make_strips(ctx, &te, a.quick ? 500 : 2000, false);
    int64_t per_epoch = a.quick ? 1600 : 10000;
    float *buf = malloc((size_t)(BATCH * 28 * W) * sizeof(float));
    FILE *csv = ex_csv_open(&a, "training.csv",
                            "epoch,train_loss,label_error_rate,length_accuracy,sequence_accuracy");
    metrics mt = { 1, 0, 0 };
    ex_curve curves[3] = { { "label error rate", 0, { 0 }, { 0 } },
                           { "length accuracy", 0, { 0 }, { 0 } },
                           { "sequence accuracy", 0, { 0 }, { 0 } } };
    for (int e = 0; e < a.epochs; e++) {
        strips train = make_strips(ctx, &tr, per_epoch, true); /* fresh strips every epoch */
        ex_progress p;
        ex_progress_start(&p, "ctc", per_epoch / BATCH);
        double sum = 0;
        for (int64_t first = 0; first + BATCH <= per_epoch; first += BATCH) {
            lg_tensor *lp = forward(ctx, &m, &tr, &train, first, BATCH, buf);
            lg_tensor *loss = lg_ctc_loss(
                ctx, lp,
                lg_tensor_from(ctx, LG_I64, train.labels + first * MAXK, 2,
                               (int64_t[]){ BATCH, MAXK }),
                lg_tensor_from(ctx, LG_I64, train.frames + first, 1, (int64_t[]){ BATCH }),
                lg_tensor_from(ctx, LG_I64, train.len + first, 1, (int64_t[]){ BATCH }), NULL);
            if (lg_backward(ctx, loss) != LG_OK)
                ex_check(ctx, "training");
            sum += lg_item(ctx, loss);
            lg_clip_grad_norm(ctx, 5.0, 2);
            lg_optim_step(opt);
            lg_zero_grad(ctx);
            lg_step_end(ctx);
            ex_progress_update(&p, first / BATCH + 1, sum / (double)(first / BATCH + 1));
        }
        lg_sched_step(sched);
        free_strips(&train);
        mt = evaluate(ctx, &m, &te, &test, false);
        char msg[128];
        snprintf(msg, sizeof msg,
                 "epoch %d, loss %.4f, label error rate %.4f, length %.4f, sequence %.4f", e + 1,
                 sum / (double)(per_epoch / BATCH), mt.ler, mt.length_acc, mt.seq_acc);
        ex_progress_end(&p, msg);
        ex_curve_add(&curves[0], e + 1, mt.ler);
        ex_curve_add(&curves[1], e + 1, mt.length_acc);
        ex_curve_add(&curves[2], e + 1, mt.seq_acc);
        ex_csv_row(csv, 5,
                   (double[]){ e + 1, sum / (double)(per_epoch / BATCH), mt.ler, mt.length_acc,
                               mt.seq_acc });
    }
    if (csv)
        fclose(csv);
    ex_plot_curves(&a, "scores.svg", "Reading strips of items with CTC: test scores", "epoch",
                   "rate", 3, curves);
    printf("curves: %s/scores.svg, training.csv\n", a.out_dir);
    printf("a few test strips:\n");
    evaluate(ctx, &m, &te, &test, true);
    ex_result(&a, ex_seconds() - t0,
              "label_error_rate=%.4f length_accuracy=%.4f sequence_accuracy=%.4f", mt.ler,
              mt.length_acc, mt.seq_acc);
    free(buf);
    free_strips(&test);
    ex_mnist_free(&tr);
    ex_mnist_free(&te);
    lg_ctx_free(ctx);
    return 0;
}
