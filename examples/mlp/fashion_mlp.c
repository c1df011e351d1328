/* fashion_mlp: a 784-256-10 ReLU network with cross_entropy and AdamW
 * (one optimizer, two parameter groups: weight decay on the weights, none
 * on the biases) under a one-cycle schedule stepped every batch, then
 * kl_div distillation of it into a linear student: the student learns from
 * the labels and from the teacher's softened probabilities (temperature 2,
 * 'batchmean': the actual KL per sample, scaled by T^2), and is compared
 * with the same linear model trained on the labels alone. */
#include "../common/common.h"

#include <stdlib.h>

enum { D = 784, C = 10, BATCH = 128 };
static const double TEMP = 2.0;
static const double MAX_LR = 3e-3, WEIGHT_DECAY = 0.05;

static lg_tensor *mlp_forward(lg_ctx *ctx, lg_tensor *x, void *user)
{
    return lg_mlp_forward(ctx, user, x);
}

static lg_tensor *linear_forward(lg_ctx *ctx, lg_tensor *x, void *user)
{
    return lg_linear_forward(ctx, user, x);
}

static ex_curve acc_curves[3];

typedef struct job {
    const char *name;
    ex_forward_fn fwd;
    void *model;
    lg_tensor **params;
    int nparams;
    lg_mlp *teacher; /* distil from it, or NULL: train on labels */
} job;

static double run(lg_ctx *ctx, const ex_args *a, const ex_mnist *tr, const ex_mnist *te, job *j,
                  FILE *csv, int id, int epochs)
{
    /* weights (2-d) in group 0 with weight decay, biases in group 1 without */
    lg_tensor *w[8], *b[8];
    int nw = 0, nb = 0;
    for (int k = 0; k < j->nparams && k < 8; k++) {
        if (lg_tensor_ndim(j->params[k]) >= 2)
            w[nw++] = j->params[k];
        else
            b[nb++] = j->params[k];
    }
    lg_optim_opts oo = lg_optim_opts_default(LG_ADAMW);
    oo.weight_decay = WEIGHT_DECAY;
    lg_optim_opts no_decay = oo; /* copied before the groups are set */
    no_decay.weight_decay = 0;
    lg_param_group groups[] = { { w, nw, NULL }, { b, nb, &no_decay } };
    oo.groups = groups;
    oo.ngroups = 2;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    int64_t n = a->quick ? 12800 : tr->n, *idx = malloc((size_t)tr->n * sizeof *idx), by[BATCH];
    lg_sched_opts so = lg_sched_opts_default(LG_SCHED_ONE_CYCLE);
    so.max_lr = MAX_LR;
    so.epochs = epochs;
    so.steps_per_epoch = n / BATCH;
    lg_sched *sched = lg_sched_new(ctx, opt, &so);
    ex_check(ctx, "model");
    float *bx = malloc(BATCH * D * sizeof(float));
    double acc = 0;
    for (int e = 0; e < epochs; e++) {
        ex_shuffle(ctx, idx, tr->n);
        ex_progress p;
        ex_progress_start(&p, j->name, n / BATCH);
        double sum = 0;
        for (int64_t s = 0; s + BATCH <= n; s += BATCH) {
            ex_gather(bx, tr->images, D, idx + s, BATCH);
            for (int k = 0; k < BATCH; k++)
                by[k] = tr->labels[idx[s + k]];
            lg_tensor *x = lg_tensor_from(ctx, LG_F32, bx, 2, (int64_t[]){ BATCH, D });
            lg_tensor *logits = j->fwd(ctx, x, j->model);
            lg_tensor *loss = lg_cross_entropy(
                ctx, logits, lg_tensor_from(ctx, LG_I64, by, 1, (int64_t[]){ BATCH }), NULL);
            if (j->teacher) { /* (CE + T^2 KL(teacher_T || student_T)) / 2 */
                lg_no_grad_begin(ctx);
                lg_ctx_set_training(ctx, false);
                lg_tensor *t = lg_softmax(
                    ctx, lg_mul_scalar(ctx, lg_mlp_forward(ctx, j->teacher, x), 1 / TEMP), 1);
                lg_ctx_set_training(ctx, true);
                lg_no_grad_end(ctx);
                lg_tensor *ls = lg_log_softmax(ctx, lg_mul_scalar(ctx, logits, 1 / TEMP), 1);
                lg_tensor *kl =
                    lg_kl_div(ctx, ls, t, &(lg_kl_div_opts){ .reduction = LG_REDUCTION_BATCHMEAN });
                loss =
                    lg_mul_scalar(ctx, lg_add(ctx, loss, lg_mul_scalar(ctx, kl, TEMP * TEMP)), 0.5);
            }
            sum += ex_step(ctx, loss, opt);
            lg_sched_step(sched); /* one-cycle: every batch */
            ex_progress_update(&p, s / BATCH + 1, sum / (double)(s / BATCH + 1));
        }
        acc = ex_accuracy(ctx, j->fwd, j->model, te->images, te->labels, te->n, D);
        char msg[96];
        snprintf(msg, sizeof msg, "epoch %d, train loss %.4f, test accuracy %.4f", e + 1,
                 sum / (double)(n / BATCH), acc);
        ex_progress_end(&p, msg);
        ex_csv_row(csv, 4, (double[]){ id, e + 1, sum / (double)(n / BATCH), acc });
        acc_curves[id].name = j->name;
        ex_curve_add(&acc_curves[id], e + 1, acc);
    }
    free(idx);
    free(bx);
    return acc;
}

int main(int argc, char **argv)
{
    ex_args a = ex_parse(argc, argv, "fashion_mlp", 12);
    double t0 = ex_seconds();
    lg_ctx *ctx = ex_ctx(&a);
    ex_mnist tr = ex_fashion_load(&a, true), te = ex_fashion_load(&a, false);
    FILE *csv = ex_csv_open(&a, "training.csv", "model,epoch,train_loss,test_accuracy");

    lg_mlp *mlp =
        lg_mlp_new(ctx, "mlp", 3, (int64_t[]){ D, 256, C }, &(lg_mlp_opts){ .dropout = 0.2 });
    lg_tensor *mp[4] = { mlp->layers[0]->weight, mlp->layers[0]->bias, mlp->layers[1]->weight,
                         mlp->layers[1]->bias };
    job teacher = { "mlp", mlp_forward, mlp, mp, 4, NULL };
    double acc = run(ctx, &a, &tr, &te, &teacher, csv, 0, a.epochs);

    lg_linear *plain = lg_linear_new(ctx, "plain", D, C, NULL),
              *student = lg_linear_new(ctx, "student", D, C, NULL);
    job jp = { "linear", linear_forward, plain, (lg_tensor *[]){ plain->weight, plain->bias }, 2,
               NULL };
    job js = { "distilled", linear_forward,
               student,     (lg_tensor *[]){ student->weight, student->bias },
               2,           mlp };
    int lin_epochs = a.quick ? 1 : 10;
    double acc_plain = run(ctx, &a, &tr, &te, &jp, csv, 1, lin_epochs);
    double acc_student = run(ctx, &a, &tr, &te, &js, csv, 2, lin_epochs);
    if (csv)
        fclose(csv);
    ex_plot_curves(&a, "accuracy.svg", "Test accuracy: MLP, linear, linear distilled", "epoch",
                   "accuracy", 3, acc_curves);
    printf("curves: %s/accuracy.svg, training.csv\n", a.out_dir);
    printf("test accuracy: mlp %.4f, linear on labels %.4f, linear distilled from the mlp %.4f\n",
           acc, acc_plain, acc_student);
    ex_result(&a, ex_seconds() - t0,
              "test_accuracy=%.4f linear_accuracy=%.4f student_accuracy=%.4f", acc, acc_plain,
              acc_student);
    ex_mnist_free(&tr);
    ex_mnist_free(&te);
    lg_ctx_free(ctx);
    return 0;
}
