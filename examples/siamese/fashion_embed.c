/* fashion_embed: an MLP embedding network (784-256-64, outputs on the unit
 * sphere, inputs standardised) trained with triplet_margin_loss (margin
 * 0.3) on triplets mined
 * inside each batch of 12 images per class: every (anchor, positive) pair
 * with a semi-hard negative (the closest one farther than that positive).
 * Three variants train the same network for fewer epochs on other losses:
 * hinge_embedding_loss over pair distances, contrastive_loss on (anchor,
 * positive) and (anchor, semi-hard negative) pairs, and nt_xent_loss on 60
 * same-class pairs per batch (the other 118 images are its negatives). A
 * last run gives the same triplet training, for a fifth of the epochs, to
 * a convolutional network instead (conv 3x3, batch norm, ReLU and max
 * pool 2, twice, then linear to 64), which embeds in evaluation mode
 * (batch norm's running statistics). Each is judged by 1-nearest-neighbour
 * accuracy on the test set against the training-set embeddings, beside 1-NN
 * on raw pixels computed in the same run. Plots a 2-D projection (PCA) of
 * the triplet MLP's test embeddings coloured by class. */
#include "../common/common.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { D = 784, E = 64, PER_CLASS = 12, BATCH = 10 * PER_CLASS };

/* Row indices of each class, for drawing positives and negatives. */
typedef struct by_class {
    int64_t *rows[10];
    int64_t count[10];
} by_class;

static by_class index_classes(const ex_mnist *m)
{
    by_class b = { 0 };
    for (int c = 0; c < 10; c++)
        b.rows[c] = malloc((size_t)m->n * sizeof(int64_t));
    for (int64_t i = 0; i < m->n; i++)
        b.rows[m->labels[i]][b.count[m->labels[i]]++] = i;
    return b;
}

static int64_t pick(lg_ctx *ctx, const by_class *b, int c)
{
    return b->rows[c][lg_rand_below(ctx, (uint64_t)b->count[c])];
}

/* The embedding network, a choice: the MLP 784-256-64, or a CNN
 *   [N, 1, 28, 28] -> conv 3x3 (32) -> batch norm -> ReLU -> max pool 2
 *                  -> conv 3x3 (64) -> batch norm -> ReLU -> max pool 2
 *                  -> linear 3136 -> 64
 * (mlp is NULL for the CNN). */
typedef struct embed_net {
    lg_mlp *mlp;
    lg_conv *conv1, *conv2;
    lg_batchnorm *bn1, *bn2;
    lg_linear *fc;
} embed_net;

enum { C1 = 32, C2 = 64 }; /* 16 and 32 channels reached 0.899 */

static embed_net net_new(lg_ctx *ctx, const char *name, bool cnn)
{
    embed_net n = { 0 };
    char p[5][64];
    if (!cnn) {
        n.mlp = lg_mlp_new(ctx, name, 3, (int64_t[]){ D, 256, E }, NULL);
        return n;
    }
    const char *part[5] = { "conv1", "conv2", "bn1", "bn2", "fc" };
    for (int k = 0; k < 5; k++)
        snprintf(p[k], sizeof p[k], "%s.%s", name, part[k]);
    lg_conv_opts same = lg_conv_opts_default();
    same.padding = 1;
    n.conv1 = lg_conv2d_new(ctx, p[0], 1, C1, 3, 3, &same, NULL);
    n.conv2 = lg_conv2d_new(ctx, p[1], C1, C2, 3, 3, &same, NULL);
    n.bn1 = lg_batchnorm_new(ctx, p[2], C1, NULL);
    n.bn2 = lg_batchnorm_new(ctx, p[3], C2, NULL);
    n.fc = lg_linear_new(ctx, p[4], C2 * 7 * 7, E, NULL);
    return n;
}

/* Embeddings on the unit sphere: z / |z|. */
static lg_tensor *embed(lg_ctx *ctx, const embed_net *net, const float *rows, int64_t n)
{
    lg_tensor *x = lg_tensor_from(ctx, LG_F32, rows, 2, (int64_t[]){ n, D }), *z;
    if (net->mlp) {
        z = lg_mlp_forward(ctx, net->mlp, x);
    } else {
        lg_tensor *h = lg_reshape(ctx, x, 4, (int64_t[]){ n, 1, 28, 28 });
        h = lg_relu(ctx, lg_batchnorm_forward(ctx, net->bn1, lg_conv_forward(ctx, net->conv1, h)));
        h = lg_max_pool2d(ctx, h, 2, 2, NULL, NULL);
        h = lg_relu(ctx, lg_batchnorm_forward(ctx, net->bn2, lg_conv_forward(ctx, net->conv2, h)));
        h = lg_max_pool2d(ctx, h, 2, 2, NULL, NULL);
        z = lg_linear_forward(ctx, net->fc, lg_reshape(ctx, h, 2, (int64_t[]){ n, C2 * 7 * 7 }));
    }
    return lg_div(ctx, z, lg_norm(ctx, z, 2, 1, (int[]){ -1 }, true));
}

/* Embeds all n rows (no gradient, evaluation mode: batch norm's running
 * statistics) into out [n, E]. */
static void embed_all(lg_ctx *ctx, const embed_net *net, const float *x, int64_t n, float *out)
{
    lg_ctx_set_training(ctx, false);
    lg_no_grad_begin(ctx);
    for (int64_t s = 0; s < n; s += 2000) {
        int64_t m = n - s < 2000 ? n - s : 2000;
        lg_tensor *z = embed(ctx, net, x + s * D, m);
        ex_check(ctx, "embedding");
        memcpy(out + s * E, lg_tensor_data(z), (size_t)(m * E) * sizeof(float));
        lg_step_end(ctx);
    }
    lg_no_grad_end(ctx);
    lg_ctx_set_training(ctx, true);
}

/* 1-NN accuracy of test rows against train rows (dim features), via
 * |a - b|^2 = |a|^2 - 2 a.b + |b|^2 with one matmul per block of tests. */
static double knn(lg_ctx *ctx, const float *tr, const uint8_t *trl, int64_t ntr, const float *te,
                  const uint8_t *tel, int64_t nte, int64_t dim)
{
    float *norm = malloc((size_t)ntr * sizeof(float));
    for (int64_t j = 0; j < ntr; j++) {
        double s = 0;
        for (int64_t k = 0; k < dim; k++)
            s += (double)tr[j * dim + k] * tr[j * dim + k];
        norm[j] = (float)s;
    }
    int64_t correct = 0;
    lg_no_grad_begin(ctx);
    lg_tensor *T = lg_tensor_from(ctx, LG_F32, tr, 2, (int64_t[]){ ntr, dim });
    for (int64_t s = 0; s < nte; s += 500) {
        int64_t m = nte - s < 500 ? nte - s : 500;
        lg_tensor *Q = lg_tensor_from(ctx, LG_F32, te + s * dim, 2, (int64_t[]){ m, dim });
        lg_tensor *dots = lg_matmul_t(ctx, Q, T, false, true); /* [m, ntr] */
        ex_check(ctx, "knn");
        const float *dv = lg_tensor_data(dots);
        for (int64_t i = 0; i < m; i++) {
            int64_t best = 0;
            float bd = INFINITY;
            for (int64_t j = 0; j < ntr; j++) {
                float d = norm[j] - 2 * dv[i * ntr + j];
                if (d < bd)
                    bd = d, best = j;
            }
            correct += trl[best] == tel[s + i];
        }
        lg_step_end(ctx); /* keeps the arena small; T is re-made below */
        T = lg_tensor_from(ctx, LG_F32, tr, 2, (int64_t[]){ ntr, dim });
    }
    lg_no_grad_end(ctx);
    lg_step_end(ctx);
    free(norm);
    return (double)correct / (double)nte;
}

/* The top two principal directions of rows [n, E] by power iteration. */
static void pca2(const float *z, int64_t n, double dirs[2][E], double mean[E])
{
    double cov[E][E] = { { 0 } };
    for (int k = 0; k < E; k++) {
        mean[k] = 0;
        for (int64_t i = 0; i < n; i++)
            mean[k] += z[i * E + k] / (double)n;
    }
    for (int64_t i = 0; i < n; i++)
        for (int a = 0; a < E; a++)
            for (int b = 0; b < E; b++)
                cov[a][b] += (z[i * E + a] - mean[a]) * (z[i * E + b] - mean[b]);
    for (int d = 0; d < 2; d++) {
        double v[E];
        for (int k = 0; k < E; k++)
            v[k] = 1.0 + k % 7;
        for (int it = 0; it < 200; it++) {
            double w[E] = { 0 }, nrm = 0;
            for (int a = 0; a < E; a++)
                for (int b = 0; b < E; b++)
                    w[a] += cov[a][b] * v[b];
            if (d == 1) { /* deflate the first direction */
                double p = 0;
                for (int k = 0; k < E; k++)
                    p += w[k] * dirs[0][k];
                for (int k = 0; k < E; k++)
                    w[k] -= p * dirs[0][k];
            }
            for (int k = 0; k < E; k++)
                nrm += w[k] * w[k];
            for (int k = 0; k < E; k++)
                v[k] = w[k] / sqrt(nrm);
        }
        memcpy(dirs[d], v, sizeof v);
    }
}

enum { TRIPLET, HINGE, CONTRASTIVE, NTXENT };
/* The runs, in order: a loss on a network. */
static const struct run {
    const char *name;
    int loss;
    bool cnn;
} runs[] = { { "triplet", TRIPLET, false },
             { "hinge", HINGE, false },
             { "contrastive", CONTRASTIVE, false },
             { "nt_xent", NTXENT, false },
             { "cnn_triplet", TRIPLET, true } };
enum { RUNS = sizeof runs / sizeof runs[0], CNN_RUN = RUNS - 1 };
static ex_curve loss_curves[RUNS];

/* Squared distances between the rows of z [n, E] (detached: for mining). */
static void distances(const float *z, int64_t n, float *d)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            float s = 0;
            for (int k = 0; k < E; k++) {
                float t = z[i * E + k] - z[j * E + k];
                s += t * t;
            }
            d[i * n + j] = s;
        }
}

static embed_net train(lg_ctx *ctx, const ex_args *a, const ex_mnist *tr, const by_class *bc,
                       int run, FILE *csv, int epochs)
{
    const char *name = runs[run].name;
    int kind = runs[run].loss;
    embed_net net = net_new(ctx, name, runs[run].cnn);
    lg_optim_opts oo = lg_optim_opts_default(LG_ADAM); /* lr 1e-3 */
    lg_optim *opt = lg_optim_new(ctx, &oo);
    lg_sched *sched =
        lg_sched_new(ctx, opt, &(lg_sched_opts){ .kind = LG_SCHED_COSINE, .t_max = epochs });
    ex_check(ctx, "model");
    int64_t per_epoch = a->quick ? 6000 : 60000;
    float *x = malloc(BATCH * D * sizeof(float)), *dist = malloc(BATCH * BATCH * sizeof(float)),
          y[2 * BATCH];
    int64_t pos[BATCH], neg[BATCH], pairs[2 * BATCH];
    static int64_t ta[BATCH * PER_CLASS], tp[BATCH * PER_CLASS], tn[BATCH * PER_CLASS];
    for (int e = 0; e < epochs; e++) {
        ex_progress p;
        ex_progress_start(&p, name, per_epoch / BATCH);
        double sum = 0;
        for (int64_t s = 0; s + BATCH <= per_epoch; s += BATCH) {
            for (int k = 0; k < BATCH; k++) /* row k holds class k / PER_CLASS */
                memcpy(x + k * D, tr->images + pick(ctx, bc, k / PER_CLASS) * D, D * sizeof(float));
            lg_tensor *z = embed(ctx, &net, x, BATCH), *loss;
            ex_check(ctx, "forward");
            distances(lg_tensor_data(z), BATCH, dist);
            for (int i = 0; i < BATCH; i++) {
                int ci = i / PER_CLASS;
                float dp, dn_semi = INFINITY, dn_hard = INFINITY;
                int64_t hn = 0;
                pos[i] = i;
                int pj;
                do /* a random positive of the anchor's class */
                    pj = ci * PER_CLASS + (int)lg_rand_below(ctx, PER_CLASS);
                while (pj == i);
                pos[i] = pj, dp = dist[i * BATCH + pj];
                neg[i] = -1;
                for (int j = 0; j < BATCH; j++) {
                    float d = dist[i * BATCH + j];
                    if (j / PER_CLASS == ci)
                        continue;
                    if (d > dp && d < dn_semi)
                        dn_semi = d, neg[i] = j;
                    if (d < dn_hard)
                        dn_hard = d, hn = j;
                }
                if (neg[i] < 0)
                    neg[i] = hn;
            }
            lg_tensor *zp = lg_index_select(
                ctx, z, 0, lg_tensor_from(ctx, LG_I64, pos, 1, (int64_t[]){ BATCH }));
            lg_tensor *zn = lg_index_select(
                ctx, z, 0, lg_tensor_from(ctx, LG_I64, neg, 1, (int64_t[]){ BATCH }));
            if (kind == TRIPLET) { /* every (anchor, positive) pair with its semi-hard negative */
                int64_t nt = 0;
                for (int i = 0; i < BATCH; i++)
                    for (int pj = (i / PER_CLASS) * PER_CLASS; pj < (i / PER_CLASS + 1) * PER_CLASS;
                         pj++) {
                        if (pj == i)
                            continue;
                        float dp = dist[i * BATCH + pj], best = INFINITY, hard = INFINITY;
                        int64_t semi = -1, hardest = 0;
                        for (int j = 0; j < BATCH; j++) {
                            float d = dist[i * BATCH + j];
                            if (j / PER_CLASS == i / PER_CLASS)
                                continue;
                            if (d > dp && d < best)
                                best = d, semi = j;
                            if (d < hard)
                                hard = d, hardest = j;
                        }
                        ta[nt] = i, tp[nt] = pj, tn[nt++] = semi >= 0 ? semi : hardest;
                    }
                lg_tensor *l = lg_triplet_margin_loss(
                    ctx, lg_index_select(ctx, z, 0, lg_tensor_from(ctx, LG_I64, ta, 1, &nt)),
                    lg_index_select(ctx, z, 0, lg_tensor_from(ctx, LG_I64, tp, 1, &nt)),
                    lg_index_select(ctx, z, 0, lg_tensor_from(ctx, LG_I64, tn, 1, &nt)),
                    &(lg_triplet_opts){
                        .reduction = LG_REDUCTION_NONE, .margin = 0.3, .p = 2, .eps = 1e-6 });
                ex_check(ctx, "triplets");
                int64_t active = 0; /* mean over the triplets that still violate the margin */
                for (int64_t t = 0; t < nt; t++)
                    active += ((float *)lg_tensor_data(l))[t] > 0;
                loss = lg_mul_scalar(ctx, lg_sum(ctx, l, 0, NULL, false),
                                     1.0 / (double)(active ? active : 1));
            } else if (kind ==
                       CONTRASTIVE) { /* (anchor, positive) y = 1, (anchor, negative) y = 0 */
                for (int i = 0; i < BATCH; i++)
                    y[i] = 1, y[BATCH + i] = 0;
                loss =
                    lg_contrastive_loss(ctx, lg_concat(ctx, 2, (lg_tensor *[]){ z, z }, 0),
                                        lg_concat(ctx, 2, (lg_tensor *[]){ zp, zn }, 0),
                                        lg_tensor_from(ctx, LG_F32, y, 1, (int64_t[]){ 2 * BATCH }),
                                        &(lg_contrastive_opts){ .margin = 1.0, .eps = 1e-6 });
            } else if (kind == NTXENT) { /* rows 2k and 2k + 1 share a class: 60 pairs */
                int64_t half = BATCH / 2;
                for (int64_t i = 0; i < half; i++)
                    pairs[i] = 2 * i, pairs[half + i] = 2 * i + 1;
                lg_tensor *idx = lg_tensor_from(ctx, LG_I64, pairs, 1, (int64_t[]){ BATCH });
                lg_tensor *zz = lg_index_select(ctx, z, 0, idx);
                loss = lg_nt_xent_loss(ctx, lg_narrow(ctx, zz, 0, 0, half),
                                       lg_narrow(ctx, zz, 0, half, half),
                                       &(lg_nt_xent_opts){ .temperature = 0.1 });
            } else { /* every anchor in a similar pair (y = 1) and a dissimilar one (y = -1) */
                for (int i = 0; i < BATCH; i++)
                    pairs[i] = i, pairs[BATCH + i] = i, y[i] = 1, y[BATCH + i] = -1;
                lg_tensor *anchors = lg_index_select(
                    ctx, z, 0, lg_tensor_from(ctx, LG_I64, pairs, 1, (int64_t[]){ 2 * BATCH }));
                lg_tensor *others = lg_concat(ctx, 2, (lg_tensor *[]){ zp, zn }, 0);
                lg_tensor *d = lg_pairwise_distance(ctx, anchors, others, 2, 1e-6, false);
                loss = lg_hinge_embedding_loss(
                    ctx, d, lg_tensor_from(ctx, LG_F32, y, 1, (int64_t[]){ 2 * BATCH }),
                    &(lg_hinge_opts){ .margin = 2.0 });
            }
            sum += ex_step(ctx, loss, opt);
            ex_progress_update(&p, s / BATCH + 1, sum / (double)(s / BATCH + 1));
        }
        lg_sched_step(sched);
        char msg[64];
        snprintf(msg, sizeof msg, "epoch %d, loss %.4f", e + 1, sum / (double)(per_epoch / BATCH));
        ex_progress_end(&p, msg);
        ex_csv_row(csv, 3, (double[]){ run, e + 1, sum / (double)(per_epoch / BATCH) });
        ex_curve_add(&loss_curves[run], e + 1, sum / (double)(per_epoch / BATCH));
    }
    free(x), free(dist);
    return net;
}

/* Pixels standardised with the training set's mean and deviation (one pair
 * for all pixels): the networks train better from centred inputs, and the
 * distances between images keep their order (raw 1-NN is unchanged). */
static void standardise(ex_mnist *tr, ex_mnist *te)
{
    double s = 0, ss = 0, n = (double)tr->n * D;
    for (int64_t i = 0; i < tr->n * D; i++)
        s += tr->images[i], ss += (double)tr->images[i] * tr->images[i];
    double mean = s / n, sd = sqrt(ss / n - mean * mean);
    ex_mnist *sets[2] = { tr, te };
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < sets[k]->n * D; i++)
            sets[k]->images[i] = (float)((sets[k]->images[i] - mean) / sd);
}

int main(int argc, char **argv)
{
    ex_args a = ex_parse(argc, argv, "fashion_embed", 20);
    double t0 = ex_seconds();
    lg_ctx *ctx = ex_ctx(&a);
    ex_mnist tr = ex_fashion_load(&a, true), te = ex_fashion_load(&a, false);
    int64_t ntr = a.quick ? 10000 : tr.n, nte = a.quick ? 1000 : te.n;
    by_class bc = index_classes(&tr);
    FILE *csv = ex_csv_open(&a, "training.csv", "model,epoch,train_loss");
    double raw = knn(ctx, tr.images, tr.labels, ntr, te.images, te.labels, nte, D);
    printf("1-NN on raw pixels: %.4f\n", raw);
    standardise(&tr, &te);
    double acc[RUNS];
    float *etr = malloc((size_t)tr.n * E * sizeof(float)),
          *ete = malloc((size_t)te.n * E * sizeof(float));
    lg_ctx *cnn_ctx = NULL;
    for (int run = 0; run < RUNS; run++) { /* the others get a quarter, the CNN a fifth */
        loss_curves[run].name = runs[run].name;
        int epochs = run == 0 ? a.epochs : runs[run].cnn ? (a.epochs + 4) / 5 : (a.epochs + 3) / 4;
        /* the CNN trains in a ctx of its own (the same seed): its figure does
         * not depend on the runs before it */
        lg_ctx *rc = runs[run].cnn ? (cnn_ctx = ex_ctx(&a)) : ctx;
        embed_net net = train(rc, &a, &tr, &bc, run, csv, epochs);
        embed_all(rc, &net, tr.images, ntr, etr);
        embed_all(rc, &net, te.images, nte, ete);
        acc[run] = knn(rc, etr, tr.labels, ntr, ete, te.labels, nte, E);
        printf("1-NN on %s embeddings: %.4f\n", runs[run].name, acc[run]);
        if (run == 0) { /* the picture: 2-D projection of 2,000 test embeddings */
            double dirs[2][E], mean[E];
            int64_t m = nte < 2000 ? nte : 2000;
            pca2(ete, m, dirs, mean);
            double *px = malloc((size_t)m * sizeof(double)),
                   *py = malloc((size_t)m * sizeof(double));
            int *cls = malloc((size_t)m * sizeof(int));
            for (int64_t i = 0; i < m; i++) {
                px[i] = py[i] = 0;
                for (int k = 0; k < E; k++) {
                    px[i] += (ete[i * E + k] - mean[k]) * dirs[0][k];
                    py[i] += (ete[i * E + k] - mean[k]) * dirs[1][k];
                }
                cls[i] = te.labels[i];
            }
            ex_series s = { NULL, m, px, py, true, cls };
            ex_svg_plot(&a, "embedding_pca.svg",
                        "Test embeddings (triplet loss), first two principal components", "PC 1",
                        "PC 2", 1, &s);
            free(px), free(py), free(cls);
        }
    }
    if (csv)
        fclose(csv);
    ex_plot_curves(&a, "loss.svg", "Training loss", "epoch", "loss", RUNS, loss_curves);
    printf("pictures: %s/embedding_pca.svg, loss.svg\n", a.out_dir);
    ex_result(&a, ex_seconds() - t0,
              "knn_accuracy=%.4f hinge_knn_accuracy=%.4f contrastive_knn_accuracy=%.4f "
              "nt_xent_knn_accuracy=%.4f cnn_knn_accuracy=%.4f raw_knn_accuracy=%.4f",
              acc[0], acc[1], acc[2], acc[3], acc[CNN_RUN], raw);
    free(etr), free(ete);
    for (int c = 0; c < 10; c++)
        free(bc.rows[c]);
    ex_mnist_free(&tr);
    ex_mnist_free(&te);
    lg_ctx_free(cnn_ctx);
    lg_ctx_free(ctx);
    return 0;
}
