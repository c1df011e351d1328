/* fashion_masks: segmentation. A small convolutional encoder-decoder
 * predicts each garment's silhouette, the mask of pixels > 0.1 of the
 * image, from the image blurred and noised (so that thresholding the input
 * is not the answer):
 *
 *   [N, 1, 28, 28] -> conv 3x3 (16) -> ReLU -> max pool 2        [16, 14, 14]
 *                  -> conv 3x3 (32) -> batch norm -> ReLU -> max pool 2  [32, 7, 7]
 *                  -> conv_transpose 2x2 stride 2 (16) -> ReLU   [16, 14, 14]
 *                  -> conv_transpose 2x2 stride 2 (8) -> ReLU    [8, 28, 28]
 *                  -> conv 1x1 (1): the mask's logits
 *
 * trained twice: with BCE-with-logits alone, and with BCE plus soft Dice
 * (lg_dice_loss over the sigmoid), which weighs each mask by its overlap
 * and not by its pixel count. Reports the test IoU and Dice of each and
 * draws masks (masks.svg). */
#include "../common/common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { D = 784, BATCH = 64 };
static const double THRESH = 0.1;

typedef struct net {
    lg_conv *c1, *c2, *up1, *up2, *head;
    lg_batchnorm *bn;
} net;

static net net_new(lg_ctx *ctx, const char *name)
{
    char b[6][64];
    const char *leaf[6] = { "enc1", "enc2", "bn", "up1", "up2", "head" };
    for (int i = 0; i < 6; i++)
        snprintf(b[i], sizeof b[i], "%s.%s", name, leaf[i]);
    lg_conv_opts same = lg_conv_opts_default(), up = lg_conv_opts_default();
    same.padding = 1, up.stride = 2;
    net n = { lg_conv2d_new(ctx, b[0], 1, 16, 3, 3, &same, NULL),
              lg_conv2d_new(ctx, b[1], 16, 32, 3, 3, &same, NULL),
              lg_conv_transpose2d_new(ctx, b[3], 32, 16, 2, 2, &up, NULL),
              lg_conv_transpose2d_new(ctx, b[4], 16, 8, 2, 2, &up, NULL),
              lg_conv2d_new(ctx, b[5], 8, 1, 1, 1, NULL, NULL),
              lg_batchnorm_new(ctx, b[2], 32, NULL) };
    ex_check(ctx, "model");
    return n;
}

/* x [N, 1, 28, 28] -> logits [N, 1, 28, 28] */
static lg_tensor *net_forward(lg_ctx *ctx, const net *n, lg_tensor *x)
{
    lg_tensor *h =
        lg_max_pool2d(ctx, lg_relu(ctx, lg_conv_forward(ctx, n->c1, x)), 2, 2, NULL, NULL);
    h = lg_relu(ctx, lg_batchnorm_forward(ctx, n->bn, lg_conv_forward(ctx, n->c2, h)));
    h = lg_max_pool2d(ctx, h, 2, 2, NULL, NULL);
    h = lg_relu(ctx, lg_conv_forward(ctx, n->up1, h));
    h = lg_relu(ctx, lg_conv_forward(ctx, n->up2, h));
    return lg_conv_forward(ctx, n->head, h);
}

/* The network's input: a 3x3 box blur of the image plus N(0, 0.15) noise
 * (fixed per image index), and the target: image > THRESH. */
static void make_pair(const float *img, uint64_t id, float *in, float *mask)
{
    uint64_t s = id * 0x9e3779b97f4a7c15ull + 1;
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            float sum = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int yy = y + dy, xx = x + dx;
                    if (yy >= 0 && yy < 28 && xx >= 0 && xx < 28)
                        sum += img[yy * 28 + xx];
                }
            /* two uniforms from a splitmix step -> one normal (Box-Muller) */
            s += 0x9e3779b97f4a7c15ull;
            uint64_t z = (s ^ (s >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            z ^= z >> 31;
            double u1 = ((z >> 11) + 1) * 0x1.0p-53, u2 = (z & 0x7ff) / 2048.0;
            double g = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
            in[y * 28 + x] = sum / 9 + (float)(0.15 * g);
            mask[y * 28 + x] = img[y * 28 + x] > THRESH ? 1.0f : 0.0f;
        }
}

typedef struct scores {
    double iou, dice;
} scores;

/* Mean per-image IoU and Dice of the thresholded predictions (logit > 0)
 * over the first n test images, in evaluation mode. */
static scores evaluate(lg_ctx *ctx, const net *m, const ex_mnist *te, int64_t n, float *keep)
{
    scores sc = { 0, 0 };
    float *in = malloc(BATCH * D * sizeof(float)), *mask = malloc(BATCH * D * sizeof(float));
    lg_ctx_set_training(ctx, false);
    lg_no_grad_begin(ctx);
    for (int64_t s = 0; s < n; s += BATCH) {
        int64_t k = n - s < BATCH ? n - s : BATCH;
        for (int64_t i = 0; i < k; i++)
            make_pair(te->images + (s + i) * D, (uint64_t)(1000000 + s + i), in + i * D,
                      mask + i * D);
        lg_tensor *x = lg_tensor_from(ctx, LG_F32, in, 4, (int64_t[]){ k, 1, 28, 28 });
        lg_tensor *logits = net_forward(ctx, m, x);
        ex_check(ctx, "evaluation");
        const float *p = lg_tensor_data(logits);
        for (int64_t i = 0; i < k; i++) {
            double inter = 0, uni = 0, ps = 0, ts = 0;
            for (int j = 0; j < D; j++) {
                int a = p[i * D + j] > 0, b = mask[i * D + j] > 0.5f;
                inter += a && b, uni += a || b, ps += a, ts += b;
            }
            sc.iou += uni > 0 ? inter / uni : 1;
            sc.dice += ps + ts > 0 ? 2 * inter / (ps + ts) : 1;
        }
        if (keep && s == 0) /* the first 8 images: input, prediction, target */
            for (int i = 0; i < 8 && i < k; i++)
                for (int j = 0; j < D; j++) {
                    keep[(i * 3 + 0) * D + j] = in[i * D + j];
                    keep[(i * 3 + 1) * D + j] = p[i * D + j] > 0 ? 1.0f : 0.0f;
                    keep[(i * 3 + 2) * D + j] = mask[i * D + j];
                }
        lg_step_end(ctx);
    }
    lg_no_grad_end(ctx);
    lg_ctx_set_training(ctx, true);
    free(in);
    free(mask);
    sc.iou /= (double)n, sc.dice /= (double)n;
    return sc;
}

/* Trains one network; with_dice adds the soft Dice loss to BCE. */
static scores train(lg_ctx *ctx, const ex_args *a, const ex_mnist *tr, const ex_mnist *te,
                    const char *name, bool with_dice, FILE *csv, float *keep)
{
    net m = net_new(ctx, name);
    lg_tensor *params[16];
    int np = 0;
    lg_conv *convs[5] = { m.c1, m.c2, m.up1, m.up2, m.head };
    for (int i = 0; i < 5; i++) {
        params[np++] = convs[i]->weight;
        params[np++] = convs[i]->bias;
    }
    params[np++] = m.bn->weight;
    params[np++] = m.bn->bias;
    lg_optim_opts oo = lg_optim_opts_default(LG_ADAM);
    oo.lr = 2e-3;
    oo.params = params, oo.nparams = np;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    lg_dice_opts dice = lg_dice_opts_default();
    dice.activation = LG_DICE_SIGMOID;
    ex_check(ctx, "optimizer");
    /* --quick: batches of 16, so that its 1,024 images make 64 steps an epoch */
    int64_t bs = a->quick ? 16 : BATCH;
    int64_t n = a->quick ? 1024 : 20000, *idx = malloc((size_t)tr->n * sizeof *idx);
    float *in = malloc(BATCH * D * sizeof(float)), *mask = malloc(BATCH * D * sizeof(float));
    scores sc = { 0, 0 };
    for (int e = 0; e < a->epochs; e++) {
        ex_shuffle(ctx, idx, tr->n);
        ex_progress p;
        ex_progress_start(&p, name, n / bs);
        double sum = 0;
        for (int64_t s = 0; s + bs <= n; s += bs) {
            for (int k = 0; k < bs; k++)
                make_pair(tr->images + idx[s + k] * D, (uint64_t)idx[s + k], in + k * D,
                          mask + k * D);
            lg_tensor *x = lg_tensor_from(ctx, LG_F32, in, 4, (int64_t[]){ bs, 1, 28, 28 });
            lg_tensor *y = lg_tensor_from(ctx, LG_F32, mask, 4, (int64_t[]){ bs, 1, 28, 28 });
            lg_tensor *logits = net_forward(ctx, &m, x);
            lg_tensor *loss = lg_binary_cross_entropy_with_logits(ctx, logits, y, NULL);
            if (with_dice)
                loss = lg_add(ctx, loss, lg_dice_loss(ctx, logits, y, &dice));
            sum += ex_step(ctx, loss, opt);
            ex_progress_update(&p, s / bs + 1, sum / (double)(s / bs + 1));
        }
        sc = evaluate(ctx, &m, te, a->quick ? 512 : te->n, keep);
        char msg[128];
        snprintf(msg, sizeof msg, "epoch %d, train loss %.4f, test IoU %.4f, Dice %.4f", e + 1,
                 sum / (double)(n / bs), sc.iou, sc.dice);
        ex_progress_end(&p, msg);
        ex_csv_row(csv, 5, (double[]){ with_dice, e + 1, sum / (double)(n / bs), sc.iou, sc.dice });
    }
    free(idx);
    free(in);
    free(mask);
    return sc;
}

/* Rows of 8 images: input, BCE's mask, BCE + Dice's mask, the target. */
static void masks_svg(const ex_args *a, const float *bce, const float *both)
{
    FILE *f = fopen(ex_path(a, "masks.svg"), "w");
    if (!f)
        return;
    const int px = 3, cell = 28 * px + 6;
    static const char *const rows[4] = { "input", "BCE", "BCE + Dice", "target" };
    fprintf(f,
            "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
            "font-family='sans-serif' font-size='12'>\n",
            90 + 8 * cell, 30 + 4 * cell);
    for (int r = 0; r < 4; r++) {
        fprintf(f, "<text x='4' y='%d'>%s</text>\n", 30 + r * cell + cell / 2, rows[r]);
        for (int i = 0; i < 8; i++) {
            const float *img = r == 0   ? bce + (i * 3) * D
                               : r == 1 ? bce + (i * 3 + 1) * D
                               : r == 2 ? both + (i * 3 + 1) * D
                                        : bce + (i * 3 + 2) * D;
            int x0 = 90 + i * cell, y0 = 20 + r * cell;
            for (int j = 0; j < D; j++) {
                float v = img[j] < 0 ? 0 : (img[j] > 1 ? 1 : img[j]);
                int g = 255 - (int)(v * 255);
                fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='rgb(%d,%d,%d)'/>",
                        x0 + (j % 28) * px, y0 + (j / 28) * px, px, px, g, g, g);
            }
            fprintf(f, "\n");
        }
    }
    fprintf(f, "</svg>\n");
    fclose(f);
}

int main(int argc, char **argv)
{
    ex_args a = ex_parse(argc, argv, "fashion_masks", 3);
    double t0 = ex_seconds();
    lg_ctx *ctx = ex_ctx(&a);
    ex_mnist tr = ex_fashion_load(&a, true), te = ex_fashion_load(&a, false);
    FILE *csv = ex_csv_open(&a, "training.csv", "model,epoch,train_loss,test_iou,test_dice");
    float *keep_bce = calloc(24 * D, sizeof(float)), *keep_both = calloc(24 * D, sizeof(float));
    scores bce = train(ctx, &a, &tr, &te, "bce", false, csv, keep_bce);
    scores both = train(ctx, &a, &tr, &te, "bce_dice", true, csv, keep_both);
    if (csv)
        fclose(csv);
    masks_svg(&a, keep_bce, keep_both);
    printf("test IoU: BCE %.4f, BCE + Dice %.4f; Dice: %.4f, %.4f; masks: %s/masks.svg\n", bce.iou,
           both.iou, bce.dice, both.dice, a.out_dir);
    ex_result(&a, ex_seconds() - t0, "bce_iou=%.4f dice_iou=%.4f bce_dice=%.4f dice_dice=%.4f",
              bce.iou, both.iou, bce.dice, both.dice);
    free(keep_bce);
    free(keep_both);
    ex_mnist_free(&tr);
    ex_mnist_free(&te);
    lg_ctx_free(ctx);
    return 0;
}
