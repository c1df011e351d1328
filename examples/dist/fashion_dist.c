/* fashion_dist: two models trained data-parallel over MPI with
 * lossgrad/dist.h, one lg_dist each (lg_dist_opts.prefix):
 *
 *   - the 784-256-10 ReLU MLP of fashion_mlp (cross_entropy, SGD with
 *     momentum 0.9), 5 epochs;
 *   - a CNN: conv 3x3 (16) -> max pool 2 -> ReLU -> conv 3x3 (32) -> max
 *     pool 2 -> ReLU -> linear 1568 -> 10, 1 epoch. It is fashion_cnn's
 *     shape without batch norm and dropout, whose batch statistics and
 *     random masks would differ from rank to rank (lossgrad has no
 *     synchronised batch norm).
 *
 *     mpirun -np 2 build/examples/fashion_dist [--quick]
 *
 * Every rank draws the same shuffle (same seed), builds the same models and
 * takes rank 0's initial values (lg_dist_broadcast). Each global batch of
 * BATCH examples is cut into micro-batches of MICRO; rank r takes its
 * contiguous BATCH / N of them, and deterministic mode (lg_dist_accumulate
 * after each micro-batch) sums the gradient as one fixed tree over the
 * micro-batches, so the trained parameters (the RESULT line's params=) and
 * the test accuracies are the same bits at 1, 2 and 4 ranks. Run without
 * mpirun (or with -np 1) it is the single-process run. Rank 0 prints. */
#include "../common/common.h"

#include <lossgrad/dist.h>

#include <stdlib.h>

enum { D = 784, C = 10, BATCH = 128, MICRO = 32 };

static lg_tensor *mlp_forward(lg_ctx *ctx, lg_tensor *x, void *user)
{
    return lg_mlp_forward(ctx, user, x);
}

typedef struct cnn {
    lg_conv *conv1, *conv2;
    lg_linear *fc;
} cnn;

static lg_tensor *cnn_forward(lg_ctx *ctx, lg_tensor *x, void *user)
{
    const cnn *m = user;
    int64_t n = lg_tensor_shape(x)[0];
    lg_tensor *h = lg_reshape(ctx, x, 4, (int64_t[]){ n, 1, 28, 28 });
    h = lg_relu(ctx, lg_max_pool2d(ctx, lg_conv_forward(ctx, m->conv1, h), 2, 2, NULL, NULL));
    h = lg_relu(ctx, lg_max_pool2d(ctx, lg_conv_forward(ctx, m->conv2, h), 2, 2, NULL, NULL));
    return lg_linear_forward(ctx, m->fc, lg_reshape(ctx, h, 2, (int64_t[]){ n, 32 * 7 * 7 }));
}

static void die(lg_ctx *ctx, const char *what)
{
    fprintf(stderr, "fashion_dist: %s: %s\n", what, lg_ctx_errmsg(ctx));
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* One model's data-parallel training and test. */
typedef struct run {
    const char *prefix; /* the model's name: its lg_dist covers it alone */
    ex_forward_fn forward;
    void *model;
    double lr;
    int epochs;
    double accuracy, examples_per_second;
} run;

static void train(lg_ctx *ctx, const ex_args *a, run *m, const ex_mnist *tr, const ex_mnist *te,
                  int64_t *steps)
{
    lg_dist_opts dopt = lg_dist_opts_default();
    dopt.deterministic = true;
    dopt.prefix = m->prefix;
    lg_dist *d = lg_dist_new(ctx, MPI_COMM_WORLD, &dopt);
    if (!d)
        die(ctx, "lg_dist_new");
    int rank = lg_dist_rank(d), nranks = lg_dist_size(d);
    int64_t per_rank = BATCH / MICRO / nranks; /* micro-batches per rank: a power of two */
    if (per_rank < 1 || per_rank * nranks * MICRO != BATCH) {
        if (rank == 0)
            fprintf(stderr, "fashion_dist: %d ranks do not divide %d micro-batches of %d\n", nranks,
                    BATCH / MICRO, MICRO);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    lg_tensor *params[8];
    int np = lg_params_with_prefix(ctx, m->prefix, params, 8);
    lg_optim_opts oo = lg_optim_opts_default(LG_SGD);
    oo.lr = m->lr;
    oo.momentum = 0.9;
    oo.params = params, oo.nparams = np;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    ex_check(ctx, m->prefix);
    if (lg_dist_broadcast(d, 0) != LG_OK) /* every rank starts from rank 0's model */
        die(ctx, "lg_dist_broadcast");

    int64_t n = a->quick ? 12800 : tr->n, *idx = malloc((size_t)tr->n * sizeof *idx), by[MICRO];
    float *bx = malloc(MICRO * D * sizeof(float));
    int64_t done = 0;
    double train_seconds = 0;
    for (int e = 0; e < m->epochs; e++) {
        ex_shuffle(ctx, idx, tr->n); /* the ctx RNG: the same order on every rank */
        double t = ex_seconds(), sum = 0;
        for (int64_t s = 0; s + BATCH <= n; s += BATCH) {
            lg_zero_grad(ctx);
            for (int64_t k = 0; k < per_rank; k++) { /* this rank's contiguous part */
                const int64_t *ik = idx + s + (rank * per_rank + k) * MICRO;
                ex_gather(bx, tr->images, D, ik, MICRO);
                for (int j = 0; j < MICRO; j++)
                    by[j] = tr->labels[ik[j]];
                lg_tensor *x = lg_tensor_from(ctx, LG_F32, bx, 2, (int64_t[]){ MICRO, D });
                lg_tensor *loss = lg_cross_entropy(
                    ctx, m->forward(ctx, x, m->model),
                    lg_tensor_from(ctx, LG_I64, by, 1, (int64_t[]){ MICRO }), NULL);
                if (lg_backward(ctx, loss) != LG_OK)
                    die(ctx, "training");
                sum += lg_item(ctx, loss);
                if (lg_dist_accumulate(d) != LG_OK)
                    die(ctx, "lg_dist_accumulate");
            }
            if (lg_dist_allreduce_grads(d) != LG_OK) /* the mean over every micro-batch */
                die(ctx, "lg_dist_allreduce_grads");
            ex_optim_step(opt); /* counted for the RESULT line's steps= */
            lg_step_end(ctx);
            done++;
        }
        train_seconds += ex_seconds() - t;
        if (rank == 0) /* this rank's loss: its micro-batches only */
            printf("%s epoch %d: rank 0 train loss %.4f (%.1fs)\n", m->prefix, e + 1,
                   sum / (double)(n / BATCH * per_rank), ex_seconds() - t);
    }
    ex_check(ctx, "training");
    if (rank == 0) /* every rank holds the same parameters: rank 0 tests */
        m->accuracy = ex_accuracy(ctx, m->forward, m->model, te->images, te->labels, te->n, D);
    m->examples_per_second = (double)(done * BATCH) / train_seconds;
    *steps += done;
    free(idx);
    free(bx);
    lg_dist_free(d);
}

int main(int argc, char **argv)
{
    if (lg_dist_mpi_init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "fashion_dist: MPI_Init failed\n");
        return 1;
    }
    ex_args a = ex_parse(argc, argv, "fashion_dist", 5);
    lg_ctx *ctx = ex_ctx(&a); /* the same seed on every rank: the same shuffles */
    int rank = 0, nranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    ex_mnist tr = ex_fashion_load(&a, true), te = ex_fashion_load(&a, false);
    lg_conv_opts same = lg_conv_opts_default();
    same.padding = 1;
    cnn net = { lg_conv2d_new(ctx, "cnn.conv1", 1, 16, 3, 3, &same, NULL),
                lg_conv2d_new(ctx, "cnn.conv2", 16, 32, 3, 3, &same, NULL),
                lg_linear_new(ctx, "cnn.fc", 32 * 7 * 7, C, NULL) };
    run runs[] = {
        { "mlp", mlp_forward, lg_mlp_new(ctx, "mlp", 3, (int64_t[]){ D, 256, C }, NULL), 0.05,
          a.epochs, 0, 0 },
        { "cnn", cnn_forward, &net, 0.02, 1, 0, 0 },
    };
    ex_check(ctx, "models");
    int64_t steps = 0;
    double t0 = ex_seconds();
    for (int k = 0; k < 2; k++)
        train(ctx, &a, &runs[k], &tr, &te, &steps);
    if (rank == 0)
        ex_result(&a, ex_seconds() - t0,
                  "ranks=%d test_accuracy=%.4f cnn_test_accuracy=%.4f examples_per_second=%.0f "
                  "cnn_examples_per_second=%.0f",
                  nranks, runs[0].accuracy, runs[1].accuracy, runs[0].examples_per_second,
                  runs[1].examples_per_second);
    ex_mnist_free(&tr);
    ex_mnist_free(&te);
    lg_ctx_free(ctx);
    MPI_Finalize();
    return 0;
}
