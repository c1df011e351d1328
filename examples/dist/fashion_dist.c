/* fashion_dist: the 784-256-10 ReLU MLP of fashion_mlp (cross_entropy, SGD
 * with momentum 0.9) trained data-parallel over MPI with lossgrad/dist.h:
 *
 *     mpirun -np 2 build/examples/fashion_dist [--quick]
 *
 * Every rank draws the same shuffle (same seed), builds the same model and
 * takes rank 0's initial values (lg_dist_broadcast). Each global batch of
 * BATCH examples is cut into micro-batches of MICRO; rank r takes its
 * contiguous BATCH / N of them, and deterministic mode (lg_dist_accumulate
 * after each micro-batch) sums the gradient as one fixed tree over the
 * micro-batches, so the trained parameters (the RESULT line's params=) and
 * the test accuracy are the same bits at 1, 2 and 4 ranks. Run without
 * mpirun (or with -np 1) it is the single-process run. Rank 0 prints. */
#include "../common/common.h"

#include <lossgrad/dist.h>

#include <stdlib.h>

enum { D = 784, C = 10, BATCH = 128, MICRO = 32 };
static const double LR = 0.05, MOMENTUM = 0.9;

static lg_tensor *mlp_forward(lg_ctx *ctx, lg_tensor *x, void *user)
{
    return lg_mlp_forward(ctx, user, x);
}

static void die(lg_ctx *ctx, const char *what)
{
    fprintf(stderr, "fashion_dist: %s: %s\n", what, lg_ctx_errmsg(ctx));
    MPI_Abort(MPI_COMM_WORLD, 1);
}

int main(int argc, char **argv)
{
    if (lg_dist_mpi_init(&argc, &argv) != MPI_SUCCESS) {
        fprintf(stderr, "fashion_dist: MPI_Init failed\n");
        return 1;
    }
    ex_args a = ex_parse(argc, argv, "fashion_dist", 5);
    lg_ctx *ctx = ex_ctx(&a); /* the same seed on every rank: the same shuffles */
    lg_dist_opts dopt = lg_dist_opts_default();
    dopt.deterministic = true;
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

    ex_mnist tr = ex_fashion_load(&a, true), te = ex_fashion_load(&a, false);
    lg_mlp *mlp = lg_mlp_new(ctx, "mlp", 3, (int64_t[]){ D, 256, C }, NULL);
    lg_optim_opts oo = lg_optim_opts_default(LG_SGD);
    oo.lr = LR;
    oo.momentum = MOMENTUM;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    ex_check(ctx, "model");
    if (lg_dist_broadcast(d, 0) != LG_OK) /* every rank starts from rank 0's model */
        die(ctx, "lg_dist_broadcast");

    int64_t n = a.quick ? 12800 : tr.n, *idx = malloc((size_t)tr.n * sizeof *idx), by[MICRO];
    float *bx = malloc(MICRO * D * sizeof(float));
    int64_t steps = 0;
    double t0 = ex_seconds(), train_seconds = 0;
    for (int e = 0; e < a.epochs; e++) {
        ex_shuffle(ctx, idx, tr.n); /* the ctx RNG: the same order on every rank */
        double t = ex_seconds(), sum = 0;
        for (int64_t s = 0; s + BATCH <= n; s += BATCH) {
            lg_zero_grad(ctx);
            for (int64_t k = 0; k < per_rank; k++) { /* this rank's contiguous part */
                const int64_t *ik = idx + s + (rank * per_rank + k) * MICRO;
                ex_gather(bx, tr.images, D, ik, MICRO);
                for (int j = 0; j < MICRO; j++)
                    by[j] = tr.labels[ik[j]];
                lg_tensor *x = lg_tensor_from(ctx, LG_F32, bx, 2, (int64_t[]){ MICRO, D });
                lg_tensor *loss = lg_cross_entropy(
                    ctx, lg_mlp_forward(ctx, mlp, x),
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
            steps++;
        }
        train_seconds += ex_seconds() - t;
        if (rank == 0) /* this rank's loss: its micro-batches only */
            printf("epoch %d: rank 0 train loss %.4f (%.1fs)\n", e + 1,
                   sum / (double)(n / BATCH * per_rank), ex_seconds() - t);
    }
    ex_check(ctx, "training");
    if (rank == 0) { /* every rank holds the same parameters: rank 0 tests */
        double acc = ex_accuracy(ctx, mlp_forward, mlp, te.images, te.labels, te.n, D);
        ex_result(&a, ex_seconds() - t0, "ranks=%d test_accuracy=%.4f examples_per_second=%.0f",
                  nranks, acc, (double)(steps * BATCH) / train_seconds);
    }
    free(idx);
    free(bx);
    ex_mnist_free(&tr);
    ex_mnist_free(&te);
    lg_dist_free(d);
    lg_ctx_free(ctx);
    MPI_Finalize();
    return 0;
}
