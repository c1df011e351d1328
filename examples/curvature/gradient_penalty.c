/* gradient_penalty: a WGAN-GP (Gulrajani et al., 2017) on a toy 2-D
 * distribution, eight Gaussians (sd 0.02) on a circle of radius 2, drawn in
 * the program. Generator: 2-D normal noise -> 64 -> 64 -> 2 (ReLU).
 * Critic: 2 -> 64 -> 64 -> 64 -> 1 (ReLU, no normalisation, as the
 * penalty is per sample; 128 wide took three times as long). Critic loss
 * mean D(fake) - mean D(real) + 10 mean((||grad_xhat D(xhat)|| - 1)^2),
 * xhat = e real + (1 - e) fake with e ~ U[0, 1] per sample: the input
 * gradient comes from lg_grad with create_graph, so lg_backward of the
 * whole loss differentiates through it into the critic's weights (a second
 * derivative). Generator loss -mean D(G(z)). Adam, lr 1e-4, betas
 * (0.5, 0.9), 5 critic steps per generator step, batches of 256, as the
 * paper.
 *
 * Two models, one ctx, one graph: each optimizer gets its own parameter
 * list (lg_optim_opts.params), so a step moves only its model. In the
 * critic's step the fakes are made under no-grad (the generator is a fixed
 * sampler there); in the generator's step the critic's parameters are
 * frozen with lg_requires_grad(false), so the gradient flows through the
 * critic into the generator without computing (or accumulating) the
 * critic's weight gradients; lg_zero_grad then clears the generator's.
 *
 * For contrast the same networks and steps are trained as the original
 * WGAN: no penalty, the critic's weights clipped to [-0.01, 0.01] after each
 * of its steps. Its critic's input gradient is tiny (about 5e-5), and its
 * generator finds fewer modes, less sharply.
 *
 * Measures on 2,000 generated samples after training: a sample is of high
 * quality if it lies within 4 sd (0.08) of the nearest mode's centre (true
 * samples: 99.97%); a mode is covered if at least 1% of the samples are
 * high-quality samples of it (uniform coverage gives 12.5% each).
 * mean_grad_norm is the mean ||grad D|| at 2,000 fresh interpolates (the
 * penalty pulls it to 1). Bars of the default run (8,000 generator steps,
 * about 2 minutes on 2 cores): mode_coverage >= 0.875 (it reaches 1, but
 * one mode dips under 1% at some evaluations during training),
 * high_quality_fraction >= 0.45 (0.56 reached, still rising slowly at the
 * paper's lr 1e-4), mean_grad_norm within 0.05 of 1; the clipped WGAN
 * reaches none of them. Pictures: samples (true and generated, both
 * models), the critic's loss and Wasserstein estimate, the gradient norms,
 * and the quality over training; a CSV log per block of generator steps.
 * --epochs counts blocks (of 250 generator steps, 25 with --quick), 32 by
 * default. */
#include "../common/common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NOISE = 2, HID = 64, BATCH = 256, NCRITIC = 5, NEVAL = 2000, NMODES = 8, MAXP = 8 };
static const double PI = 3.14159265358979323846, RADIUS = 2.0, SD = 0.02, LAMBDA = 10.0,
                    CLIP = 0.01;

typedef struct gan {
    const char *name;
    bool clip; /* weight clipping (the original WGAN) instead of the penalty */
    lg_mlp *g, *d;
    lg_tensor *gparams[MAXP], *dparams[MAXP];
    int ng, nd;
    lg_optim *gopt, *dopt;
} gan;

/* Sums over the critic steps of a block, for the log. */
typedef struct block_stats {
    double loss, wasserstein, norm;
    int steps;
} block_stats;

static int mlp_params(const lg_mlp *m, lg_tensor **out)
{
    int n = 0;
    for (int k = 0; k < m->nlayers; k++) {
        out[n++] = m->layers[k]->weight;
        out[n++] = m->layers[k]->bias;
    }
    return n;
}

static lg_optim *adam(lg_ctx *ctx, lg_tensor **params, int n)
{
    lg_optim_opts o = lg_optim_opts_default(LG_ADAM);
    o.lr = 1e-4;
    o.beta1 = 0.5, o.beta2 = 0.9;
    o.params = params;
    o.nparams = n;
    return lg_optim_new(ctx, &o);
}

static void gan_init(lg_ctx *ctx, gan *m, const char *name, bool clip)
{
    char gn[32], dn[32];
    snprintf(gn, sizeof gn, "%s.generator", name);
    snprintf(dn, sizeof dn, "%s.critic", name);
    m->name = name;
    m->clip = clip;
    m->g = lg_mlp_new(ctx, gn, 4, (int64_t[]){ NOISE, HID, HID, 2 }, NULL);
    m->d = lg_mlp_new(ctx, dn, 5, (int64_t[]){ 2, HID, HID, HID, 1 }, NULL);
    ex_check(ctx, "models");
    m->ng = mlp_params(m->g, m->gparams);
    m->nd = mlp_params(m->d, m->dparams);
    m->gopt = adam(ctx, m->gparams, m->ng);
    m->dopt = adam(ctx, m->dparams, m->nd);
    ex_check(ctx, "optimizers");
}

/* n true samples: a mode picked uniformly, its centre plus N(0, SD^2). */
static void real_samples(lg_ctx *ctx, float *out, int n)
{
    for (int i = 0; i < n; i++) {
        double t = 2 * PI * (double)lg_rand_below(ctx, NMODES) / NMODES;
        out[2 * i] = (float)(RADIUS * cos(t) + SD * lg_rand_normal(ctx));
        out[2 * i + 1] = (float)(RADIUS * sin(t) + SD * lg_rand_normal(ctx));
    }
}

/* n generated samples into out, under no-grad: where this is called (the
 * critic's step, evaluation) the generator must get no gradient. */
static void generate(lg_ctx *ctx, const gan *m, float *out, int n)
{
    lg_no_grad_begin(ctx);
    lg_tensor *z = lg_randn(ctx, LG_F32, 2, (int64_t[]){ n, NOISE });
    lg_tensor *x = lg_mlp_forward(ctx, m->g, z);
    ex_check(ctx, "generator");
    memcpy(out, lg_tensor_data(x), (size_t)n * 2 * sizeof(float));
    lg_no_grad_end(ctx);
}

/* xhat = e real + (1 - e) fake, e ~ U[0, 1] per sample: a leaf that requires
 * grad, since the penalty differentiates the critic with respect to it. */
static lg_tensor *interpolates(lg_ctx *ctx, const float *real, const float *fake, int n, float *buf)
{
    for (int i = 0; i < n; i++) {
        float e = (float)lg_rand_uniform(ctx);
        for (int j = 0; j < 2; j++)
            buf[2 * i + j] = e * real[2 * i + j] + (1 - e) * fake[2 * i + j];
    }
    lg_tensor *x = lg_tensor_from(ctx, LG_F32, buf, 2, (int64_t[]){ n, 2 });
    lg_requires_grad(ctx, x, true);
    return x;
}

/* ||grad_x D(x)|| for each row of x ([n, 2]); with create_graph the norms are
 * on the tape, so a loss made of them reaches the critic's weights. */
static lg_tensor *input_grad_norm(lg_ctx *ctx, const gan *m, lg_tensor *x, bool create_graph)
{
    lg_tensor *d = lg_sum(ctx, lg_mlp_forward(ctx, m->d, x), 0, NULL, false), *gx = NULL;
    lg_grad_opts o = lg_grad_opts_default();
    o.create_graph = create_graph;
    if (lg_grad(ctx, 1, &d, NULL, 1, &x, &gx, &o) != LG_OK)
        ex_check(ctx, "input gradient");
    /* sqrt's derivative is infinite at 0 (a row where every ReLU is off):
     * the 1e-12 keeps the penalty's gradient finite there */
    lg_tensor *n2 = lg_sum(ctx, lg_square(ctx, gx), 1, (int[]){ 1 }, false);
    return lg_sqrt(ctx, lg_add_scalar(ctx, n2, 1e-12));
}

static double mean_of(lg_tensor *t)
{
    const float *v = lg_tensor_data(t);
    double s = 0;
    for (int64_t i = 0; i < lg_tensor_numel(t); i++)
        s += v[i];
    return s / (double)lg_tensor_numel(t);
}

static void clip_weights(gan *m)
{
    for (int k = 0; k < m->nd; k++) {
        float *v = lg_tensor_data(m->dparams[k]);
        for (int64_t i = 0; i < lg_tensor_numel(m->dparams[k]); i++)
            v[i] = v[i] > CLIP ? (float)CLIP : v[i] < -CLIP ? (float)-CLIP : v[i];
    }
}

static lg_tensor *critic_mean(lg_ctx *ctx, const gan *m, const float *x, int n)
{
    lg_tensor *t = lg_tensor_from(ctx, LG_F32, x, 2, (int64_t[]){ n, 2 });
    return lg_mean(ctx, lg_mlp_forward(ctx, m->d, t), 0, NULL, false);
}

/* One critic step. buf holds 6 BATCH floats of scratch. */
static void critic_step(lg_ctx *ctx, gan *m, float *buf, block_stats *st)
{
    float *real = buf, *fake = buf + 2 * BATCH, *mix = buf + 4 * BATCH;
    real_samples(ctx, real, BATCH);
    generate(ctx, m, fake, BATCH);
    lg_tensor *dr = critic_mean(ctx, m, real, BATCH), *df = critic_mean(ctx, m, fake, BATCH);
    lg_tensor *loss = lg_sub(ctx, df, dr), *gn = NULL;
    if (!m->clip) {
        gn = input_grad_norm(ctx, m, interpolates(ctx, real, fake, BATCH, mix), true);
        lg_tensor *pen = lg_mean(ctx, lg_square(ctx, lg_add_scalar(ctx, gn, -1)), 0, NULL, false);
        loss = lg_add(ctx, loss, lg_mul_scalar(ctx, pen, LAMBDA));
    }
    if (lg_backward(ctx, loss) != LG_OK)
        ex_check(ctx, "critic step");
    st->loss += lg_item(ctx, loss);
    st->wasserstein += lg_item(ctx, dr) - lg_item(ctx, df);
    st->norm += gn ? mean_of(gn) : 0;
    st->steps++;
    ex_optim_step(m->dopt);
    lg_zero_grad(ctx);
    lg_step_end(ctx);
    if (m->clip)
        clip_weights(m);
}

/* One generator step: -mean D(G(z)) with the critic frozen. */
static void generator_step(lg_ctx *ctx, gan *m)
{
    for (int k = 0; k < m->nd; k++)
        lg_requires_grad(ctx, m->dparams[k], false);
    lg_tensor *z = lg_randn(ctx, LG_F32, 2, (int64_t[]){ BATCH, NOISE });
    lg_tensor *d = lg_mlp_forward(ctx, m->d, lg_mlp_forward(ctx, m->g, z));
    if (lg_backward(ctx, lg_neg(ctx, lg_mean(ctx, d, 0, NULL, false))) != LG_OK)
        ex_check(ctx, "generator step");
    ex_optim_step(m->gopt);
    lg_zero_grad(ctx);
    lg_step_end(ctx);
    for (int k = 0; k < m->nd; k++)
        lg_requires_grad(ctx, m->dparams[k], true);
}

/* The evaluation of the generator: high-quality fraction and mode coverage
 * of n samples (definitions in the header comment). */
static void mode_stats(const float *s, int n, double *hq, double *coverage)
{
    int count[NMODES] = { 0 }, good = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        double bd = INFINITY;
        for (int k = 0; k < NMODES; k++) {
            double t = 2 * PI * k / NMODES, dx = s[2 * i] - RADIUS * cos(t),
                   dy = s[2 * i + 1] - RADIUS * sin(t), dd = sqrt(dx * dx + dy * dy);
            if (dd < bd)
                bd = dd, best = k;
        }
        if (bd <= 4 * SD)
            good++, count[best]++;
    }
    int covered = 0;
    for (int k = 0; k < NMODES; k++)
        covered += count[k] >= n / 100;
    *hq = (double)good / n;
    *coverage = (double)covered / NMODES;
}

typedef struct eval {
    double hq, coverage, grad_norm;
} eval;

/* NEVAL samples into samples (2 NEVAL floats), their quality, and the mean
 * input-gradient norm of the critic at NEVAL fresh interpolates. */
static eval evaluate(lg_ctx *ctx, const gan *m, float *samples)
{
    eval e;
    float *real = malloc(4 * NEVAL * sizeof(float)), *mix = real + 2 * NEVAL;
    generate(ctx, m, samples, NEVAL);
    mode_stats(samples, NEVAL, &e.hq, &e.coverage);
    real_samples(ctx, real, NEVAL);
    lg_tensor *gn = input_grad_norm(ctx, m, interpolates(ctx, real, samples, NEVAL, mix), false);
    ex_check(ctx, "evaluation");
    e.grad_norm = mean_of(gn);
    lg_step_end(ctx);
    free(real);
    return e;
}

/* Curves: 0 critic loss, 1 Wasserstein estimate, 2 gradient norm, 3 high
 * quality, 4 coverage; per model. */
static ex_curve curves[5][2];

static eval train(lg_ctx *ctx, const ex_args *a, gan *m, int id, FILE *csv, float *samples)
{
    int per = a->quick ? 25 : 250;
    float *buf = malloc(6 * BATCH * sizeof(float));
    ex_progress p;
    ex_progress_start(&p, m->name, (int64_t)a->epochs * per);
    eval e = { 0 };
    for (int b = 0; b < a->epochs; b++) {
        block_stats st = { 0 };
        for (int it = 0; it < per; it++) {
            for (int c = 0; c < NCRITIC; c++)
                critic_step(ctx, m, buf, &st);
            generator_step(ctx, m);
            ex_progress_update(&p, (int64_t)b * per + it + 1, st.loss / st.steps);
        }
        e = evaluate(ctx, m, samples);
        double iter = (double)(b + 1) * per, n = st.steps;
        double w = st.wasserstein / n,
               row[7] = { id, iter, st.loss / n, w, e.grad_norm, e.hq, e.coverage };
        ex_csv_row(csv, 7, row);
        for (int k = 0; k < 5; k++) {
            curves[k][id].name = m->name;
            ex_curve_add(&curves[k][id], iter, row[2 + k]);
        }
    }
    char msg[128];
    snprintf(msg, sizeof msg, "high quality %.3f, mode coverage %.3f, mean grad norm %.4f", e.hq,
             e.coverage, e.grad_norm);
    ex_progress_end(&p, msg);
    free(buf);
    return e;
}

static void plots(const ex_args *a, const float *real, float *const gen[2], const gan *m)
{
    static double x[3][NEVAL], y[3][NEVAL];
    for (int i = 0; i < NEVAL; i++) {
        x[0][i] = real[2 * i], y[0][i] = real[2 * i + 1];
        for (int k = 0; k < 2; k++)
            x[k + 1][i] = gen[k][2 * i], y[k + 1][i] = gen[k][2 * i + 1];
    }
    const char *file[2] = { "samples_gp.svg", "samples_clip.svg" };
    for (int k = 0; k < 2; k++) {
        ex_series s[2] = { { "true", NEVAL, x[0], y[0], true, NULL },
                           { m[k].name, NEVAL, x[k + 1], y[k + 1], true, NULL } };
        char title[96];
        snprintf(title, sizeof title, "Eight Gaussians: true and generated (%s)", m[k].name);
        ex_svg_plot(a, file[k], title, "x1", "x2", 2, s);
    }
    ex_curve critic[2] = { curves[0][0], curves[1][0] };
    critic[0].name = "critic loss (GP)", critic[1].name = "Wasserstein estimate (GP)";
    ex_plot_curves(a, "critic.svg", "WGAN-GP critic: loss and mean D(real) - mean D(fake)",
                   "generator step", "value", 2, critic);
    ex_plot_curves(a, "grad_norm.svg", "Mean ||grad D|| at interpolates", "generator step", "norm",
                   2, curves[2]);
    ex_plot_curves(a, "quality.svg", "High-quality fraction of 2,000 samples", "generator step",
                   "fraction", 2, curves[3]);
}

int main(int argc, char **argv)
{
    ex_args a = ex_parse(argc, argv, "gradient_penalty", 32);
    double t0 = ex_seconds();
    lg_ctx *ctx = ex_ctx(&a);
    FILE *csv = ex_csv_open(&a, "training.csv",
                            "model,generator_step,critic_loss,wasserstein,grad_norm,high_quality,"
                            "mode_coverage");
    gan m[2];
    gan_init(ctx, &m[0], "wgan_gp", false);
    gan_init(ctx, &m[1], "wgan_clip", true);
    float *real = malloc(2 * NEVAL * sizeof(float)), *gen[2];
    eval e[2];
    for (int k = 0; k < 2; k++) {
        gen[k] = malloc(2 * NEVAL * sizeof(float));
        e[k] = train(ctx, &a, &m[k], k, csv, gen[k]);
    }
    if (csv)
        fclose(csv);
    real_samples(ctx, real, NEVAL);
    double real_hq, real_cov;
    mode_stats(real, NEVAL, &real_hq, &real_cov);
    plots(&a, real, gen, m);
    printf("pictures: %s/samples_gp.svg, samples_clip.svg, critic.svg, grad_norm.svg, "
           "quality.svg; training.csv\n",
           a.out_dir);
    printf("%-10s %12s %13s %14s\n", "model", "high quality", "mode coverage", "mean grad norm");
    printf("%-10s %12.4f %13.4f %14s\n", "true", real_hq, real_cov, "");
    for (int k = 0; k < 2; k++)
        printf("%-10s %12.4f %13.4f %14.4g\n", m[k].name, e[k].hq, e[k].coverage, e[k].grad_norm);
    ex_result(&a, ex_seconds() - t0,
              "mode_coverage=%.4f high_quality_fraction=%.4f mean_grad_norm=%.4f "
              "clip_coverage=%.4f clip_hq_fraction=%.4f clip_grad_norm=%.4g",
              e[0].coverage, e[0].hq, e[0].grad_norm, e[1].coverage, e[1].hq, e[1].grad_norm);
    free(real);
    free(gen[0]);
    free(gen[1]);
    lg_ctx_free(ctx);
    return 0;
}
