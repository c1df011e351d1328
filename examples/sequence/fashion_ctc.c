/* fashion_ctc: strips of 1 to 5 Fashion-MNIST items side by side, read
 * left to right with ctc_loss: the network is never told where one item
 * ends and the next begins. The default model is a CRNN, a small CNN whose
 * output columns are the frames of a bidirectional GRU:
 *
 *   strip [N, 1, 28, 28 K] -> conv 3x3 (16) -> max pool 2x2 -> batch norm -> ReLU
 *                          -> conv 3x3 (32) -> max pool 2x2 -> batch norm -> ReLU
 *                          -> conv 3x3 (32)                 -> batch norm -> ReLU
 *                          -> [N, 32, 7, 7 K], read column by column: 7 K frames of 224
 *                          -> bidirectional GRU (96 each way) -> linear 192 -> 11
 *                          -> log_softmax -> ctc_loss
 *
 * (11 classes: 0 is the CTC blank, 1..10 the items; about 200K parameters,
 * 185K of them the GRU's).
 * A batch is as wide as its longest strip. Past a shorter strip's end its
 * input is zero and so is each conv block's output (a mask), and its frame
 * count (7 per item) is both the GRU's length and ctc_loss's input length,
 * so in evaluation mode a strip reads the same in any batch (up to rounding).
 * Batch norm uses batch statistics while training and its running ones for
 * testing (evaluation mode). Training strips are fresh every epoch (12000
 * of them) and grouped into batches by length, so that little of a batch is
 * padding; Adam with a cosine schedule, gradients clipped to norm 5.
 * --gru trains the earlier model instead: the GRU alone over frames of 7
 * pixel columns (4 per item, 196 pixels each; label error rate about 0.14).
 * Greedy decoding (arg-max per frame, repeats merged, blanks dropped) on
 * strips made from the test set gives the label error rate (edit distance
 * over target length), the share of strips whose predicted length is right,
 * and whole-strip accuracy. */
#include "../common/common.h"

#include <stdlib.h>
#include <string.h>

enum {
    MAXK = 5,
    C = 11,
    H = 96,
    BATCH = 64,
    EVAL_BATCH = 250,
    C1 = 16, /* channels of the three conv blocks */
    C2 = 32,
    C3 = 32,
    CRNN_FRAMES = 7, /* per item: 28 columns pooled twice by 2 */
    FW = 7,          /* the GRU-only model: pixel columns per frame */
    GRU_FRAMES = 28 / FW,
    TMAX = MAXK * CRNN_FRAMES
};

typedef struct strips {
    int64_t n;
    int64_t *items;  /* [n, MAXK] indices into the image set */
    int64_t *labels; /* [n, MAXK] padded with 1 (ignored past the length) */
    int64_t *len;    /* items per strip */
} strips;

/* n strips of 1..5 random items from m. */
static strips make_strips(lg_ctx *ctx, const ex_mnist *m, int64_t n)
{
    strips s = { n, malloc((size_t)(n * MAXK) * sizeof(int64_t)),
                 malloc((size_t)(n * MAXK) * sizeof(int64_t)),
                 malloc((size_t)n * sizeof(int64_t)) };
    for (int64_t b = 0; b < n; b++) {
        int64_t k = 1 + (int64_t)lg_rand_below(ctx, MAXK);
        s.len[b] = k;
        for (int64_t j = 0; j < MAXK; j++)
            s.items[b * MAXK + j] = 0, s.labels[b * MAXK + j] = 1;
        for (int64_t j = 0; j < k; j++) {
            int64_t item = (int64_t)lg_rand_below(ctx, (uint64_t)m->n);
            s.items[b * MAXK + j] = item;
            s.labels[b * MAXK + j] = 1 + m->labels[item];
        }
    }
    return s;
}

static void free_strips(strips *s)
{
    free(s->items), free(s->labels), free(s->len);
}

/* A batch: strips idx[0..n) laid out as one image [n, 28, 28 kmax] (zero
 * past each strip's end), their labels, lengths and frame counts. */
typedef struct batch {
    int64_t n, kmax;
    float *x;
    int64_t labels[EVAL_BATCH * MAXK], len[EVAL_BATCH], frames[EVAL_BATCH];
} batch;

static void fill_batch(batch *bt, const strips *s, const ex_mnist *m, const int64_t *idx, int64_t n,
                       int frames_per_item)
{
    bt->n = n, bt->kmax = 1;
    for (int64_t i = 0; i < n; i++)
        if (s->len[idx[i]] > bt->kmax)
            bt->kmax = s->len[idx[i]];
    int64_t w = 28 * bt->kmax;
    memset(bt->x, 0, (size_t)(n * 28 * w) * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        int64_t g = idx[i];
        bt->len[i] = s->len[g], bt->frames[i] = s->len[g] * frames_per_item;
        memcpy(bt->labels + i * MAXK, s->labels + g * MAXK, MAXK * sizeof(int64_t));
        for (int64_t j = 0; j < s->len[g]; j++) {
            const float *img = m->images + s->items[g * MAXK + j] * 784;
            for (int r = 0; r < 28; r++)
                memcpy(bt->x + (i * 28 + r) * w + j * 28, img + r * 28, 28 * sizeof(float));
        }
    }
}

typedef struct model {
    bool crnn;
    lg_conv *conv1, *conv2, *conv3;
    lg_batchnorm *bn1, *bn2, *bn3;
    lg_rnn *gru;
    lg_linear *out;
} model;

static model model_new(lg_ctx *ctx, bool crnn)
{
    model m = { .crnn = crnn };
    if (crnn) {
        lg_conv_opts same = lg_conv_opts_default();
        same.padding = 1;
        m.conv1 = lg_conv2d_new(ctx, "conv1", 1, C1, 3, 3, &same, NULL);
        m.conv2 = lg_conv2d_new(ctx, "conv2", C1, C2, 3, 3, &same, NULL);
        m.bn1 = lg_batchnorm_new(ctx, "bn1", C1, NULL);
        m.bn2 = lg_batchnorm_new(ctx, "bn2", C2, NULL);
        m.conv3 = lg_conv2d_new(ctx, "conv3", C2, C3, 3, 3, &same, NULL);
        m.bn3 = lg_batchnorm_new(ctx, "bn3", C3, NULL);
    }
    m.gru = lg_rnn_new(ctx, "gru", LG_GRU, crnn ? C3 * 7 : 28 * FW, H,
                       &(lg_rnn_opts){ .num_layers = 1, .bidirectional = true });
    m.out = lg_linear_new(ctx, "out", 2 * H, C, NULL);
    ex_check(ctx, "model");
    return m;
}

/* h [n, ch, hh, w] times a mask that is 0 past each strip's end (its items
 * times w / kmax columns). */
static lg_tensor *mask_columns(lg_ctx *ctx, lg_tensor *h, const batch *bt, float *buf)
{
    int64_t w = lg_tensor_dim(h, 3), per_item = w / bt->kmax;
    for (int64_t i = 0; i < bt->n; i++)
        for (int64_t c = 0; c < w; c++)
            buf[i * w + c] = c < bt->len[i] * per_item ? 1.0f : 0.0f;
    return lg_mul(ctx, h, lg_tensor_from(ctx, LG_F32, buf, 4, (int64_t[]){ bt->n, 1, 1, w }));
}

/* A batch -> log-probabilities [T, n, C], T = frames of its longest strip. */
static lg_tensor *forward(lg_ctx *ctx, const model *m, const batch *bt, float *maskbuf)
{
    int64_t n = bt->n, w = 28 * bt->kmax, t, feat;
    lg_tensor *x = lg_tensor_from(ctx, LG_F32, bt->x, 4, (int64_t[]){ n, 1, 28, w }), *seq;
    if (m->crnn) {
        lg_tensor *h = lg_max_pool2d(ctx, lg_conv_forward(ctx, m->conv1, x), 2, 2, NULL, NULL);
        h = mask_columns(ctx, lg_relu(ctx, lg_batchnorm_forward(ctx, m->bn1, h)), bt, maskbuf);
        h = lg_max_pool2d(ctx, lg_conv_forward(ctx, m->conv2, h), 2, 2, NULL, NULL);
        h = mask_columns(ctx, lg_relu(ctx, lg_batchnorm_forward(ctx, m->bn2, h)), bt, maskbuf);
        h = lg_conv_forward(ctx, m->conv3, h);
        h = mask_columns(ctx, lg_relu(ctx, lg_batchnorm_forward(ctx, m->bn3, h)), bt, maskbuf);
        t = CRNN_FRAMES * bt->kmax, feat = C3 * 7;       /* h [n, C3, 7, T] */
        seq = lg_permute(ctx, h, (int[]){ 3, 0, 1, 2 }); /* [T, n, C3, 7]: column by column */
    } else { /* frame f: columns FW f .. FW f + FW - 1, row by row */
        t = GRU_FRAMES * bt->kmax, feat = 28 * FW;
        seq = lg_permute(ctx, lg_reshape(ctx, x, 4, (int64_t[]){ n, 28, t, FW }),
                         (int[]){ 2, 0, 1, 3 }); /* [T, n, 28, FW] */
    }
    seq = lg_reshape(ctx, seq, 3, (int64_t[]){ t, n, feat });
    lg_tensor *lens = lg_tensor_from(ctx, LG_I64, bt->frames, 1, (int64_t[]){ n });
    lg_rnn_result r;
    if (lg_rnn_forward(ctx, m->gru, seq, lens, NULL, NULL, &r) != LG_OK)
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

/* Greedy decoding of the test strips in batches of EVAL_BATCH, in order
 * (mixed lengths), in evaluation mode; show: only the first batch, printing
 * its first strips. */
static metrics evaluate(lg_ctx *ctx, const model *m, const strips *s, const ex_mnist *te, batch *bt,
                        float *maskbuf, bool show)
{
    int64_t errors = 0, total = 0, len_ok = 0, seq_ok = 0, idx[EVAL_BATCH], count = 0;
    lg_ctx_set_training(ctx, false);
    lg_no_grad_begin(ctx);
    for (int64_t first = 0; first < s->n && !(show && first); first += EVAL_BATCH) {
        int64_t n = s->n - first < EVAL_BATCH ? s->n - first : EVAL_BATCH;
        count += n;
        for (int64_t i = 0; i < n; i++)
            idx[i] = first + i;
        fill_batch(bt, s, te, idx, n, m->crnn ? CRNN_FRAMES : GRU_FRAMES);
        lg_tensor *lp = forward(ctx, m, bt, maskbuf);
        ex_check(ctx, "evaluation");
        const float *v = lg_tensor_data(lp);
        for (int64_t b = 0; b < n; b++) {
            int64_t pred[TMAX], np = 0, prev = 0, g = first + b;
            for (int64_t t = 0; t < bt->frames[b];
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
    return (metrics){ (double)errors / (double)total, (double)len_ok / (double)count,
                      (double)seq_ok / (double)count };
}

int main(int argc, char **argv)
{
    bool crnn = true; /* --gru (this example's own flag): the GRU-only model */
    int kept = 1;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--gru"))
            crnn = false;
        else
            argv[kept++] = argv[i];
    ex_args a = ex_parse(kept, argv, "fashion_ctc", 7);
    double t0 = ex_seconds();
    lg_ctx *ctx = ex_ctx(&a);
    ex_mnist tr = ex_fashion_load(&a, true), te = ex_fashion_load(&a, false);
    model m = model_new(ctx, crnn);
    lg_optim_opts oo = lg_optim_opts_default(LG_ADAM);
    oo.lr = 3e-3;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    lg_sched *sched =
        lg_sched_new(ctx, opt, &(lg_sched_opts){ .kind = LG_SCHED_COSINE, .t_max = a.epochs });
    ex_check(ctx, "model");
    strips test = make_strips(ctx, &te, a.quick ? 500 : 2000);
    /* --quick: 1,600 strips an epoch in batches of 16, 100 steps */
    int64_t bs = a.quick ? 16 : BATCH;
    int64_t per_epoch = a.quick ? 1600 : (crnn ? 12000 : 10000), nbatch = per_epoch / bs;
    int64_t *order = malloc((size_t)per_epoch * sizeof(int64_t)),
            *border = malloc((size_t)nbatch * sizeof(int64_t));
    batch bt = { .x = malloc((size_t)(EVAL_BATCH * 28 * 28 * MAXK) * sizeof(float)) };
    float *maskbuf = malloc((size_t)(EVAL_BATCH * 28 * MAXK) * sizeof(float));
    FILE *csv = ex_csv_open(&a, "training.csv",
                            "epoch,train_loss,label_error_rate,length_accuracy,sequence_accuracy");
    metrics mt = { 1, 0, 0 };
    ex_curve curves[3] = { { "label error rate", 0, { 0 }, { 0 } },
                           { "length accuracy", 0, { 0 }, { 0 } },
                           { "sequence accuracy", 0, { 0 }, { 0 } } };
    for (int e = 0; e < a.epochs; e++) {
        strips train = make_strips(ctx, &tr, per_epoch); /* fresh strips every epoch */
        int64_t o = 0; /* strips grouped by length, the batches in random order */
        for (int64_t k = 1; k <= MAXK; k++)
            for (int64_t b = 0; b < per_epoch; b++)
                if (train.len[b] == k)
                    order[o++] = b;
        ex_shuffle(ctx, border, nbatch);
        ex_progress p;
        ex_progress_start(&p, crnn ? "crnn" : "gru", nbatch);
        double sum = 0;
        for (int64_t i = 0; i < nbatch; i++) {
            fill_batch(&bt, &train, &tr, order + border[i] * bs, bs,
                       crnn ? CRNN_FRAMES : GRU_FRAMES);
            lg_tensor *lp = forward(ctx, &m, &bt, maskbuf);
            lg_tensor *loss = lg_ctc_loss(
                ctx, lp, lg_tensor_from(ctx, LG_I64, bt.labels, 2, (int64_t[]){ bs, MAXK }),
                lg_tensor_from(ctx, LG_I64, bt.frames, 1, (int64_t[]){ bs }),
                lg_tensor_from(ctx, LG_I64, bt.len, 1, (int64_t[]){ bs }), NULL);
            if (lg_backward(ctx, loss) != LG_OK)
                ex_check(ctx, "training");
            sum += lg_item(ctx, loss);
            lg_clip_grad_norm(ctx, 5.0, 2);
            ex_optim_step(opt);
            lg_zero_grad(ctx);
            lg_step_end(ctx);
            ex_progress_update(&p, i + 1, sum / (double)(i + 1));
        }
        lg_sched_step(sched);
        free_strips(&train);
        mt = evaluate(ctx, &m, &test, &te, &bt, maskbuf, false);
        char msg[128];
        snprintf(msg, sizeof msg,
                 "epoch %d, loss %.4f, label error rate %.4f, length %.4f, sequence %.4f", e + 1,
                 sum / (double)nbatch, mt.ler, mt.length_acc, mt.seq_acc);
        ex_progress_end(&p, msg);
        ex_curve_add(&curves[0], e + 1, mt.ler);
        ex_curve_add(&curves[1], e + 1, mt.length_acc);
        ex_curve_add(&curves[2], e + 1, mt.seq_acc);
        ex_csv_row(csv, 5,
                   (double[]){ e + 1, sum / (double)nbatch, mt.ler, mt.length_acc, mt.seq_acc });
    }
    if (csv)
        fclose(csv);
    ex_plot_curves(&a, "scores.svg",
                   crnn ? "Reading strips with a CRNN and CTC: test scores"
                        : "Reading strips with a GRU and CTC: test scores",
                   "epoch", "rate", 3, curves);
    printf("curves: %s/scores.svg, training.csv\n", a.out_dir);
    printf("a few test strips:\n");
    evaluate(ctx, &m, &test, &te, &bt, maskbuf, true);
    ex_result(&a, ex_seconds() - t0,
              "label_error_rate=%.4f length_accuracy=%.4f sequence_accuracy=%.4f", mt.ler,
              mt.length_acc, mt.seq_acc);
    free(bt.x), free(maskbuf), free(order), free(border);
    free_strips(&test);
    ex_mnist_free(&tr);
    ex_mnist_free(&te);
    lg_ctx_free(ctx);
    return 0;
}
