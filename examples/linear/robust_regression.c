/* robust_regression: a line y = 2.5 x + 1 with Gaussian noise and 10% large
 * outliers, fitted by gradient descent with l1_loss, mse_loss,
 * smooth_l1_loss and huber_loss side by side. The robust losses give each
 * point a bounded vote and recover the line; the squared error lets the
 * outliers pull it away. Writes the data with the four fits, and each
 * loss and its gradient against the residual (computed by lossgrad). */
#include "../common/common.h"

#include <math.h>
#include <stdlib.h>

enum { N = 400, NLOSS = 4 };
static const double SLOPE = 2.5, INTERCEPT = 1.0;
static const char *const names[NLOSS] = { "l1", "mse", "smooth_l1", "huber(2)" };

static lg_tensor *loss_by(lg_ctx *ctx, int k, lg_tensor *pred, lg_tensor *y, lg_reduction r)
{
    switch (k) {
    case 0: return lg_l1_loss(ctx, pred, y, &(lg_loss_opts){ .reduction = r });
    case 1: return lg_mse_loss(ctx, pred, y, &(lg_loss_opts){ .reduction = r });
    case 2:
        return lg_smooth_l1_loss(ctx, pred, y, &(lg_smooth_l1_opts){ .reduction = r, .beta = 1.0 });
    default: return lg_huber_loss(ctx, pred, y, &(lg_huber_opts){ .reduction = r, .delta = 2.0 });
    }
}

int main(int argc, char **argv)
{
    ex_args a = ex_parse(argc, argv, "robust_regression", 3000);
    if (a.quick)
        a.epochs = 600;
    double t0 = ex_seconds();
    lg_ctx *ctx = ex_ctx(&a);
    /* the data: x in [0, 4]; outliers sit far above the line at large x */
    double xs[N], ys[N];
    for (int i = 0; i < N; i++) {
        xs[i] = 4.0 * lg_rand_uniform(ctx);
        ys[i] = SLOPE * xs[i] + INTERCEPT + 0.3 * lg_rand_normal(ctx);
        if (i % 10 == 0)
            ys[i] += 15 + 10 * lg_rand_uniform(ctx) + 4 * xs[i];
    }
    lg_tensor *w[NLOSS], *b[NLOSS];
    lg_optim *opt[NLOSS];
    for (int k = 0; k < NLOSS; k++) {
        char nw[32], nb[32];
        snprintf(nw, sizeof nw, "%s.w", names[k]);
        snprintf(nb, sizeof nb, "%s.b", names[k]);
        w[k] = lg_param_new(ctx, nw, LG_F64, 2, (int64_t[]){ 1, 1 });
        b[k] = lg_param_new(ctx, nb, LG_F64, 1, (int64_t[]){ 1 });
        lg_optim_opts oo = lg_optim_opts_default(LG_ADAM);
        oo.lr = 0.05;
        oo.params = (lg_tensor *[]){ w[k], b[k] };
        oo.nparams = 2;
        opt[k] = lg_optim_new(ctx, &oo);
    }
    ex_check(ctx, "setup");
    FILE *csv = ex_csv_open(&a, "losses.csv", "epoch,l1,mse,smooth_l1,huber");
    ex_progress prog;
    ex_progress_start(&prog, "fitting", a.epochs);
    for (int e = 0; e < a.epochs; e++) {
        lg_tensor *x = lg_tensor_from(ctx, LG_F64, xs, 2, (int64_t[]){ N, 1 });
        lg_tensor *y = lg_tensor_from(ctx, LG_F64, ys, 2, (int64_t[]){ N, 1 });
        double row[1 + NLOSS] = { e };
        for (int k = 0; k < NLOSS; k++) {
            lg_tensor *pred = lg_add(ctx, lg_matmul(ctx, x, w[k]), b[k]);
            lg_tensor *loss = loss_by(ctx, k, pred, y, LG_REDUCTION_MEAN);
            if (lg_backward(ctx, loss) != LG_OK)
                ex_check(ctx, "training");
            row[1 + k] = lg_item(ctx, loss);
            ex_optim_step(opt[k]);
        }
        lg_zero_grad(ctx);
        lg_step_end(ctx);
        if (e % 20 == 0 || e == a.epochs - 1)
            ex_csv_row(csv, 1 + NLOSS, row);
        ex_progress_update(&prog, e + 1, row[2]);
    }
    ex_progress_end(&prog, "done");
    if (csv)
        fclose(csv);

    double slope_err[NLOSS];
    printf("%-10s %8s %10s %10s %11s\n", "loss", "slope", "intercept", "slope err", "interc. err");
    for (int k = 0; k < NLOSS; k++) {
        double ws = *(double *)lg_tensor_data(w[k]), bs = *(double *)lg_tensor_data(b[k]);
        slope_err[k] = fabs(ws - SLOPE) / SLOPE;
        printf("%-10s %8.4f %10.4f %9.2f%% %10.2f%%\n", names[k], ws, bs, 100 * slope_err[k],
               100 * fabs(bs - INTERCEPT) / INTERCEPT);
    }

    /* pictures: the data and the fits */
    double lx[2] = { 0, 4 }, ly[NLOSS][2];
    ex_series s[1 + NLOSS] = { { "data", N, xs, ys, true, NULL } };
    for (int k = 0; k < NLOSS; k++) {
        double ws = *(double *)lg_tensor_data(w[k]), bs = *(double *)lg_tensor_data(b[k]);
        ly[k][0] = bs, ly[k][1] = 4 * ws + bs;
        s[1 + k] = (ex_series){ names[k], 2, lx, ly[k], false, NULL };
    }
    ex_svg_plot(&a, "fits.svg", "Line with 10% outliers: four fits", "x", "y", 1 + NLOSS, s);
    /* each loss and its gradient against the residual, from lossgrad itself */
    enum { G = 121 };
    double r[G], val[NLOSS][G], grad[NLOSS][G];
    for (int i = 0; i < G; i++)
        r[i] = -3 + 6.0 * i / (G - 1);
    for (int k = 0; k < NLOSS; k++) {
        lg_tensor *res = lg_tensor_from(ctx, LG_F64, r, 1, (int64_t[]){ G });
        lg_requires_grad(ctx, res, true);
        lg_tensor *l =
            loss_by(ctx, k, res, lg_zeros(ctx, LG_F64, 1, (int64_t[]){ G }), LG_REDUCTION_NONE);
        lg_backward_with(ctx, l, lg_ones(ctx, LG_F64, 1, (int64_t[]){ G }));
        ex_check(ctx, "loss curves");
        for (int i = 0; i < G; i++) {
            val[k][i] = ((double *)lg_tensor_data(l))[i];
            grad[k][i] = ((double *)lg_tensor_data(lg_tensor_grad(res)))[i];
        }
        lg_step_end(ctx);
    }
    ex_series sv[NLOSS], sg[NLOSS];
    for (int k = 0; k < NLOSS; k++) {
        sv[k] = (ex_series){ names[k], G, r, val[k], false, NULL };
        sg[k] = (ex_series){ names[k], G, r, grad[k], false, NULL };
    }
    ex_svg_plot(&a, "loss_vs_residual.svg", "Loss against the residual", "residual x - y", "loss",
                NLOSS, sv);
    ex_svg_plot(&a, "gradient_vs_residual.svg", "Gradient against the residual", "residual x - y",
                "d loss / d x", NLOSS, sg);
    printf("pictures and losses.csv in %s/\n", a.out_dir);
    ex_result(&a, ex_seconds() - t0,
              "l1_slope_error=%.4f mse_slope_error=%.4f smooth_l1_slope_error=%.4f "
              "huber_slope_error=%.4f",
              slope_err[0], slope_err[1], slope_err[2], slope_err[3]);
    lg_ctx_free(ctx);
    return 0;
}
