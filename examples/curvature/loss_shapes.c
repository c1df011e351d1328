/* loss_shapes: how the loss shapes the landscape that gradient descent
 * walks, through the Hessian (lossgrad/curvature.h).
 *
 * Part 1, a closed form: linear regression y = X w under MSE has the
 * constant Hessian 2 X^T X / N, so its top eigenvalue is 2 lmax(X^T X) / N;
 * Lanczos on lossgrad's Hessian-vector products must give it to 1e-8
 * (the example computes lmax(X^T X) itself by Jacobi rotations in double).
 *
 * Part 2, the same model and data under five losses: an MLP 8-16-4 (tanh)
 * on four overlapping Gaussian classes, trained by full-batch gradient
 * descent (SGD on the whole set, lr fixed) under MSE, Huber and L1 on the
 * one-hot targets, and cross-entropy without and with label smoothing
 * 0.1. Every EVAL steps: the Hessian's top eigenvalue (Lanczos, 20 steps)
 * beside 2 / lr, the step size's stability edge for a quadratic (Cohen et
 * al., 2021: gradient descent raises the top eigenvalue to about 2 / lr and
 * holds it there), and the trace (Hutchinson, 20 probes). At the end, 1-D
 * filter-normalised slices of each loss along one random direction per
 * network (Li et al., 2018), and a 2-D slice for cross-entropy.
 *
 * Pictures: sharpness.svg (top eigenvalue against 2 / lr), trace.svg,
 * slices.svg, slice2d_ce.svg; CSV: curvature.csv (model 0..4 in the order
 * above).
 *
 * Bars of the default run (2,000 steps, lr 1): the closed form to 1e-8
 * relative; MSE's top eigenvalue ends within 10 % of 2 / lr (it rises to
 * the edge and stays, the edge of stability); label smoothing ends flatter
 * than plain cross-entropy. */
#include "../common/common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 512, D = 8, C = 4, H = 16, RUNS = 5, SLICE = 41, GRID = 21 };

/* ------------------------------------------------------------------ */
/* Part 1: the closed form                                              */
/* ------------------------------------------------------------------ */

/* The largest eigenvalue of the symmetric n x n matrix a (overwritten),
 * by cyclic Jacobi rotations. */
static double jacobi_max(double *a, int n)
{
    for (int sweep = 0; sweep < 60; sweep++)
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (apq == 0)
                    continue;
                double th = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                double t = (th >= 0 ? 1 : -1) / (fabs(th) + sqrt(th * th + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) {
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq, a[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) {
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk, a[q * n + k] = s * apk + c * aqk;
                }
            }
    double m = a[0];
    for (int i = 1; i < n; i++)
        m = a[i * n + i] > m ? a[i * n + i] : m;
    return m;
}

/* X's columns have scales 1 .. 4.5: an elongated quadratic bowl. */
static void regression_data(lg_ctx *ctx, double *x, double *y)
{
    double w[D];
    for (int j = 0; j < D; j++)
        w[j] = lg_rand_normal(ctx);
    for (int i = 0; i < N; i++) {
        double s = 0;
        for (int j = 0; j < D; j++)
            s += w[j] * (x[i * D + j] = lg_rand_normal(ctx) * (1 + 0.5 * j));
        y[i] = s + 0.3 * lg_rand_normal(ctx);
    }
}

/* Lanczos' top eigenvalue of MSE's Hessian against 2 lmax(X^T X) / N:
 * their relative difference. */
static double closed_form_check(lg_ctx *ctx, double *want, double *got)
{
    double *x = malloc(N * D * sizeof *x), *y = malloc(N * sizeof *y), xtx[D * D] = { 0 };
    regression_data(ctx, x, y);
    for (int i = 0; i < N; i++)
        for (int p = 0; p < D; p++)
            for (int q = 0; q < D; q++)
                xtx[p * D + q] += x[i * D + p] * x[i * D + q];
    *want = 2 * jacobi_max(xtx, D) / N;
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 2, (int64_t[]){ D, 1 });
    lg_tensor *X = lg_tensor_from(ctx, LG_F64, x, 2, (int64_t[]){ N, D });
    lg_tensor *Y = lg_tensor_from(ctx, LG_F64, y, 2, (int64_t[]){ N, 1 });
    lg_tensor *f = lg_mse_loss(ctx, lg_matmul(ctx, X, w), Y, NULL);
    lg_curvature_opts o = lg_curvature_opts_default();
    o.iters = D; /* the whole Krylov space: exact to rounding */
    lg_hessian_eigenvalues(ctx, f, 1, &w, 1, got, &o);
    ex_check(ctx, "closed form");
    lg_step_end(ctx);
    free(x), free(y);
    return fabs(*got - *want) / *want;
}

/* ------------------------------------------------------------------ */
/* Part 2: five losses on one network                                   */
/* ------------------------------------------------------------------ */

static const char *const run_names[RUNS] = { "mse", "huber", "l1", "ce", "ce_smooth" };

typedef struct net {
    lg_tensor *p[4]; /* w1 [H, D], b1 [H], w2 [C, H], b2 [C] */
    lg_tensor *x, *onehot, *labels;
    int run;
} net;

/* Four Gaussian classes with centres at distance 2 and unit spread. */
static void class_data(lg_ctx *ctx, double *x, int64_t *labels)
{
    double centre[C][D];
    for (int c = 0; c < C; c++)
        for (int j = 0; j < D; j++)
            centre[c][j] = (j == c ? 1.4 : 0) + 0.3 * lg_rand_normal(ctx);
    for (int i = 0; i < N; i++) {
        labels[i] = i % C;
        for (int j = 0; j < D; j++)
            x[i * D + j] = centre[i % C][j] + lg_rand_normal(ctx);
    }
}

/* The run's loss at the network's current parameters (a lg_loss_fn). */
static lg_tensor *net_loss(lg_ctx *ctx, void *user)
{
    net *n = user;
    lg_tensor *h = lg_tanh(ctx, lg_matmul_bias(ctx, n->x, n->p[0], n->p[1], false, true));
    lg_tensor *z = lg_matmul_bias(ctx, h, n->p[2], n->p[3], false, true);
    switch (n->run) {
    case 0: return lg_mse_loss(ctx, z, n->onehot, NULL);
    case 1: return lg_huber_loss(ctx, z, n->onehot, NULL);
    case 2: return lg_l1_loss(ctx, z, n->onehot, NULL);
    case 3: return lg_cross_entropy(ctx, z, n->labels, NULL);
    default: {
        lg_ce_opts o = lg_ce_opts_default();
        o.label_smoothing = 0.1;
        return lg_cross_entropy(ctx, z, n->labels, &o);
    }
    }
}

/* Inputs and targets of the step (remade after each lg_step_end). */
static void net_data(lg_ctx *ctx, net *n, const double *x, const int64_t *labels)
{
    double oh[N * C] = { 0 };
    for (int i = 0; i < N; i++)
        oh[i * C + labels[i]] = 1;
    n->x = lg_tensor_from(ctx, LG_F64, x, 2, (int64_t[]){ N, D });
    n->onehot = lg_tensor_from(ctx, LG_F64, oh, 2, (int64_t[]){ N, C });
    n->labels = lg_tensor_from(ctx, LG_I64, labels, 1, (int64_t[]){ N });
}

static void net_init(lg_ctx *ctx, net *n)
{
    const char *names[4] = { "w1", "b1", "w2", "b2" };
    int64_t shapes[4][2] = { { H, D }, { H, 0 }, { C, H }, { C, 0 } };
    for (int k = 0; k < 4; k++) {
        n->p[k] = lg_param_new(ctx, names[k], LG_F64, shapes[k][1] ? 2 : 1, shapes[k]);
        double s = 1 / sqrt(k < 2 ? (double)D : (double)H); /* PyTorch's linear init bound */
        lg_copy_into(ctx, n->p[k], lg_rand(ctx, LG_F64, shapes[k][1] ? 2 : 1, shapes[k], -s, s));
    }
}

typedef struct run_out {
    ex_curve sharp, trace;
    double final_sharp, final_trace, final_loss, slice[SLICE], grid[GRID * GRID];
} run_out;

/* The loss, its top eigenvalue and trace at the current parameters. */
static double measure(lg_ctx *ctx, net *n, double *eig, double *tr)
{
    lg_tensor *f = net_loss(ctx, n);
    double value = lg_item(ctx, f);
    lg_curvature_opts o = lg_curvature_opts_default();
    o.iters = 20;
    lg_hessian_eigenvalues(ctx, f, 4, n->p, 1, eig, &o);
    lg_hessian_trace(ctx, f, 4, n->p, tr, NULL, &o);
    ex_check(ctx, "curvature");
    lg_step_end(ctx);
    return value;
}

/* ctx: one per run, made with the same seed, so every loss starts from the
 * same network. */
static void train(lg_ctx *ctx, int run, const double *x, const int64_t *labels, double lr,
                  int steps, int eval, FILE *csv, run_out *out)
{
    net n = { .run = run };
    net_init(ctx, &n);
    lg_optim_opts oo = lg_optim_opts_default(LG_SGD);
    oo.lr = lr;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    ex_check(ctx, "model");
    out->sharp.name = out->trace.name = run_names[run];
    for (int s = 0; s <= steps; s++) {
        if (s % eval == 0) {
            double eig, tr;
            net_data(ctx, &n, x, labels);
            double l = measure(ctx, &n, &eig, &tr);
            ex_curve_add(&out->sharp, s, eig);
            ex_curve_add(&out->trace, s, tr);
            ex_csv_row(csv, 5, (double[]){ run, s, l, eig, tr });
            out->final_sharp = eig, out->final_trace = tr;
        }
        if (s == steps)
            break;
        net_data(ctx, &n, x, labels);
        out->final_loss = ex_step(ctx, net_loss(ctx, &n), opt);
    }
    /* the slices: one direction per network, filter-normalised; drawn from
     * a fixed seed so every loss is cut along the same direction */
    net_data(ctx, &n, x, labels);
    lg_landscape_opts lo = lg_landscape_opts_default();
    lg_loss_landscape_1d(ctx, net_loss, &n, 4, n.p, NULL, SLICE, NULL, out->slice, &lo);
    if (run == 3)
        lg_loss_landscape_2d(ctx, net_loss, &n, 4, n.p, NULL, NULL, GRID, NULL, out->grid, &lo);
    ex_check(ctx, "slices");
    lg_step_end(ctx);
}

/* ------------------------------------------------------------------ */
/* Pictures                                                             */
/* ------------------------------------------------------------------ */

/* A GRID x GRID heat map of g (its log), as SVG rectangles. */
static void heatmap(const ex_args *a, const char *file, const char *title, const double *g)
{
    FILE *f = fopen(ex_path(a, file), "w");
    if (!f)
        return;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < GRID * GRID; i++)
        lo = fmin(lo, log(g[i])), hi = fmax(hi, log(g[i]));
    int cell = 16, size = GRID * cell;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d'>\n", size + 20,
            size + 40);
    fprintf(f, "<text x='10' y='20' font-size='13'>%s</text>\n", title);
    for (int i = 0; i < GRID; i++)
        for (int j = 0; j < GRID; j++) {
            double t = hi > lo ? (log(g[i * GRID + j]) - lo) / (hi - lo) : 0;
            fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='rgb(%d,%d,%d)'/>\n",
                    10 + j * cell, 30 + i * cell, cell, cell, (int)(255 * t), (int)(80 * t),
                    (int)(255 * (1 - t)));
        }
    fprintf(f, "</svg>\n");
    fclose(f);
}

int main(int argc, char **argv)
{
    ex_args a = ex_parse(argc, argv, "loss_shapes", 2000); /* --epochs: gradient steps */
    double t0 = ex_seconds(), want, got;
    lg_ctx *ctxs[RUNS + 1]; /* alive until the RESULT line (its digest reads them) */
    ctxs[RUNS] = ex_ctx(&a);
    double rel = closed_form_check(ctxs[RUNS], &want, &got);
    printf("MSE regression: top eigenvalue %.12g, closed form 2 lmax(X^T X) / N %.12g (rel %.2g)\n",
           got, want, rel);

    double *x = malloc(N * D * sizeof *x);
    int64_t *labels = malloc(N * sizeof *labels);
    class_data(ctxs[RUNS], x, labels); /* after part 1's draws: other numbers */
    int steps = a.quick ? 40 : a.epochs, eval = 10;
    double lr = 1.0, edge = 2 / lr;
    FILE *csv = ex_csv_open(&a, "curvature.csv", "model,step,train_loss,top_eigenvalue,trace");
    static run_out out[RUNS];
    ex_curve sharp[RUNS + 1], trace[RUNS];
    for (int r = 0; r < RUNS; r++) {
        train(ctxs[r] = ex_ctx(&a), r, x, labels, lr, steps, eval, csv, &out[r]);
        sharp[r] = out[r].sharp, trace[r] = out[r].trace;
        printf("%-10s loss %.4f  top eigenvalue %.4g (2 / lr = %g)  trace %.4g\n", run_names[r],
               out[r].final_loss, out[r].final_sharp, edge, out[r].final_trace);
    }
    if (csv)
        fclose(csv);
    sharp[RUNS] = (ex_curve){ .name = "2 / lr" };
    ex_curve_add(&sharp[RUNS], 0, edge);
    ex_curve_add(&sharp[RUNS], steps, edge);
    ex_plot_curves(&a, "sharpness.svg", "Top Hessian eigenvalue under full-batch GD", "step",
                   "top eigenvalue", RUNS + 1, sharp);
    ex_plot_curves(&a, "trace.svg", "Hessian trace (Hutchinson)", "step", "trace", RUNS, trace);
    ex_curve slices[RUNS];
    for (int r = 0; r < RUNS; r++) {
        slices[r] = (ex_curve){ .name = run_names[r] };
        for (int i = 0; i < SLICE; i++)
            ex_curve_add(&slices[r], -1 + 2.0 * i / (SLICE - 1), out[r].slice[i]);
    }
    ex_plot_curves(&a, "slices.svg", "Loss along a filter-normalised direction", "step along d",
                   "loss", RUNS, slices);
    heatmap(&a, "slice2d_ce.svg", "Cross-entropy on a 2-D slice (log loss)", out[3].grid);
    printf("pictures: %s/sharpness.svg, trace.svg, slices.svg, slice2d_ce.svg\n", a.out_dir);
    ex_result(&a, ex_seconds() - t0,
              "mse_closed_form_rel_err=%.3g edge=%g mse_edge_ratio=%.4f mse_sharpness=%.4g "
              "huber_sharpness=%.4g l1_sharpness=%.4g ce_sharpness=%.4g ce_smooth_sharpness=%.4g "
              "ce_trace=%.4g",
              rel, edge, out[0].final_sharp / edge, out[0].final_sharp, out[1].final_sharp,
              out[2].final_sharp, out[3].final_sharp, out[4].final_sharp, out[3].final_trace);
    free(x), free(labels);
    for (int r = 0; r <= RUNS; r++)
        lg_ctx_free(ctxs[r]);
    return 0;
}
