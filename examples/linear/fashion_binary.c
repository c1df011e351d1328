/* fashion_binary: one class ("Shirt") against the other nine, a 1:9
 * imbalance, with a linear model and four losses:
 * binary_cross_entropy_with_logits without and with pos_weight (= the
 * negative/positive ratio), binary_cross_entropy over a sigmoid, and
 * sigmoid_focal_loss (gamma 2, alpha = the negatives' share, 0.9).
 * pos_weight trades precision for recall; focal loss down-weights the easy
 * negatives instead; the logits form stays finite where the probability
 * form saturates at its -100 log clamp. */
#include "../common/common.h"

#include <math.h>
#include <stdlib.h>

enum { D = 784, BATCH = 128, POSITIVE = 6 };

typedef struct scores {
    double precision, recall, f1;
} scores;

static scores evaluate(lg_ctx *ctx, lg_linear *l, const ex_mnist *te)
{
    lg_no_grad_begin(ctx);
    lg_tensor *z = lg_linear_forward(
        ctx, l, lg_tensor_from(ctx, LG_F32, te->images, 2, (int64_t[]){ te->n, D }));
    ex_check(ctx, "evaluation");
    const float *zv = lg_tensor_data(z);
    double tp = 0, fp = 0, fn = 0;
    for (int64_t i = 0; i < te->n; i++) {
        bool pred = zv[i] > 0, pos = te->labels[i] == POSITIVE;
        tp += pred && pos, fp += pred && !pos, fn += !pred && pos;
    }
    lg_no_grad_end(ctx);
    lg_step_end(ctx);
    scores s = { tp / fmax(tp + fp, 1), tp / fmax(tp + fn, 1), 0 };
    s.f1 = 2 * s.precision * s.recall / fmax(s.precision + s.recall, 1e-12);
    return s;
}

enum { KINDS = 4 };

/* kind 0: BCE with logits, 1: with pos_weight, 2: BCE over a sigmoid, 3: focal */
static lg_tensor *loss_of(lg_ctx *ctx, int kind, lg_tensor *z, lg_tensor *y, lg_tensor *pw)
{
    if (kind == 2)
        return lg_binary_cross_entropy(ctx, lg_sigmoid(ctx, z), y, NULL);
    if (kind == 3)
        return lg_sigmoid_focal_loss(ctx, z, y, &(lg_focal_opts){ .alpha = 0.9, .gamma = 2 });
    return lg_binary_cross_entropy_with_logits(
        ctx, z, y, &(lg_bce_logits_opts){ .pos_weight = kind == 1 ? pw : NULL });
}

int main(int argc, char **argv)
{
    static const char *const names[KINDS] = { "logits", "pos_weight", "sigmoid+bce", "focal" };
    ex_args a = ex_parse(argc, argv, "fashion_binary", 10);
    double t0 = ex_seconds();
    lg_ctx *ctx = ex_ctx(&a);
    ex_mnist tr = ex_fashion_load(&a, true), te = ex_fashion_load(&a, false);
    int64_t n = a.quick ? 6000 : tr.n, *idx = malloc((size_t)tr.n * sizeof *idx), npos = 0;
    for (int64_t i = 0; i < n; i++)
        npos += tr.labels[i] == POSITIVE;
    double ratio = (double)(n - npos) / (double)npos;
    printf("class %s: %lld positives of %lld (pos_weight %.2f)\n", ex_fashion_classes[POSITIVE],
           (long long)npos, (long long)n, ratio);
    float *bx = malloc(BATCH * D * sizeof(float)), by[BATCH];
    scores sc[KINDS];
    lg_linear *models[KINDS];
    ex_curve rec[KINDS] = { { names[0], 0, { 0 }, { 0 } },
                            { names[1], 0, { 0 }, { 0 } },
                            { names[2], 0, { 0 }, { 0 } },
                            { names[3], 0, { 0 }, { 0 } } };
    FILE *csv = ex_csv_open(&a, "training.csv", "model,epoch,train_loss,precision,recall,f1");
    for (int kind = 0; kind < KINDS; kind++) {
        char name[32];
        snprintf(name, sizeof name, "m%d", kind);
        lg_linear *l = models[kind] = lg_linear_new(ctx, name, D, 1, NULL);
        lg_optim_opts oo = lg_optim_opts_default(LG_ADAM); /* lr 1e-3 */
        oo.params = (lg_tensor *[]){ l->weight, l->bias };
        oo.nparams = 2;
        lg_optim *opt = lg_optim_new(ctx, &oo);
        ex_check(ctx, "model");
        for (int e = 0; e < a.epochs; e++) {
            ex_shuffle(ctx, idx, tr.n);
            ex_progress p;
            ex_progress_start(&p, names[kind], n / BATCH);
            double sum = 0;
            for (int64_t s = 0; s + BATCH <= n; s += BATCH) {
                ex_gather(bx, tr.images, D, idx + s, BATCH);
                for (int k = 0; k < BATCH; k++)
                    by[k] = tr.labels[idx[s + k]] == POSITIVE;
                lg_tensor *x = lg_tensor_from(ctx, LG_F32, bx, 2, (int64_t[]){ BATCH, D });
                lg_tensor *y = lg_tensor_from(ctx, LG_F32, by, 2, (int64_t[]){ BATCH, 1 });
                lg_tensor *loss = loss_of(ctx, kind, lg_linear_forward(ctx, l, x), y,
                                          lg_scalar(ctx, LG_F32, ratio));
                sum += ex_step(ctx, loss, opt);
                ex_progress_update(&p, s / BATCH + 1, sum / (double)(s / BATCH + 1));
            }
            sc[kind] = evaluate(ctx, l, &te);
            char msg[128];
            snprintf(msg, sizeof msg, "epoch %d, loss %.4f, precision %.3f recall %.3f F1 %.3f",
                     e + 1, sum / (double)(n / BATCH), sc[kind].precision, sc[kind].recall,
                     sc[kind].f1);
            ex_progress_end(&p, msg);
            ex_curve_add(&rec[kind], e + 1, sc[kind].recall);
            ex_csv_row(csv, 6,
                       (double[]){ kind, e + 1, sum / (double)(n / BATCH), sc[kind].precision,
                                   sc[kind].recall, sc[kind].f1 });
        }
    }
    if (csv)
        fclose(csv);
    ex_plot_curves(&a, "recall.svg", "Test recall of the rare class (pos_weight raises it)",
                   "epoch", "recall", KINDS, rec);
    printf("curves: %s/recall.svg, training.csv\n", a.out_dir);
    printf("%-12s %9s %7s %6s\n", "loss", "precision", "recall", "F1");
    for (int k = 0; k < KINDS; k++)
        printf("%-12s %9.3f %7.3f %6.3f\n", names[k], sc[k].precision, sc[k].recall, sc[k].f1);

    /* saturation: the same confidently wrong logits through both forms */
    double zs[3] = { 20, 60, 200 };
    for (int i = 0; i < 3; i++) {
        lg_tensor *z = lg_full(ctx, LG_F32, 1, (int64_t[]){ 1 }, -zs[i]);
        lg_tensor *z2 = lg_full(ctx, LG_F32, 1, (int64_t[]){ 1 }, -zs[i]);
        lg_requires_grad(ctx, z, true);
        lg_requires_grad(ctx, z2, true);
        lg_tensor *y = lg_ones(ctx, LG_F32, 1, (int64_t[]){ 1 });
        lg_tensor *l1 = loss_of(ctx, 0, z, y, NULL), *l2 = loss_of(ctx, 2, z2, y, NULL);
        lg_backward(ctx, l1);
        lg_backward(ctx, l2);
        ex_check(ctx, "saturation");
        printf("logit %-5g target 1: with logits loss %8.3f grad %6.3f | sigmoid+bce loss %8.3f "
               "grad %6.3f\n",
               -zs[i], lg_item(ctx, l1), *(float *)lg_tensor_data(lg_tensor_grad(z)),
               lg_item(ctx, l2), *(float *)lg_tensor_data(lg_tensor_grad(z2)));
        lg_step_end(ctx);
    }
    ex_result(&a, ex_seconds() - t0,
              "precision=%.4f recall=%.4f f1=%.4f precision_pos_weight=%.4f recall_pos_weight=%.4f "
              "f1_pos_weight=%.4f "
              "recall_sigmoid_bce=%.4f f1_sigmoid_bce=%.4f precision_focal=%.4f recall_focal=%.4f "
              "f1_focal=%.4f",
              sc[0].precision, sc[0].recall, sc[0].f1, sc[1].precision, sc[1].recall, sc[1].f1,
              sc[2].recall, sc[2].f1, sc[3].precision, sc[3].recall, sc[3].f1);
    free(idx);
    free(bx);
    ex_mnist_free(&tr);
    ex_mnist_free(&te);
    lg_ctx_free(ctx);
    return 0;
}
