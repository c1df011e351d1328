/* A data-parallel program built against an installed lossgrad_dist (its
 * CMake package's dist component, or lossgrad-dist.pc), run under mpirun:
 * rank 0's parameter is broadcast, each rank's loss is an MSE against its
 * own target, and the allreduced gradient must be the closed form of the
 * ranks' mean. Prints OK on rank 0; exits 1 on every rank otherwise. */
#include <lossgrad.h>
#include <lossgrad/dist.h>

#include <math.h>
#include <stdio.h>

enum { N = 3 };

int main(int argc, char **argv)
{
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS)
        return 1;
    int rank, size, bad = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    lg_ctx *ctx = lg_ctx_new(NULL);
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 1, (int64_t[]){ N });
    lg_dist *d = ctx && w ? lg_dist_new(ctx, MPI_COMM_WORLD, NULL) : NULL;
    if (!d) {
        printf("rank %d: lg_dist_new: %s\n", rank, ctx ? lg_ctx_errmsg(ctx) : "no ctx");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    /* rank 0's w = (1, 2, 3); the others' (-7, -7, -7) until the broadcast */
    double *wv = lg_tensor_data(w);
    for (int i = 0; i < N; i++)
        wv[i] = rank == 0 ? i + 1 : -7.0;
    if (lg_dist_broadcast(d, 0) != LG_OK) {
        printf("rank %d: lg_dist_broadcast: %s\n", rank, lg_ctx_errmsg(ctx));
        bad = 1;
    }
    /* rank r: mean((w - (r + 1))^2), whose gradient is 2 (w_i - (r + 1)) / N */
    double yv[N];
    for (int i = 0; i < N; i++)
        yv[i] = rank + 1;
    lg_tensor *y = lg_tensor_from(ctx, LG_F64, yv, 1, (int64_t[]){ N });
    if (!bad && (lg_backward(ctx, lg_mse_loss(ctx, w, y, NULL)) != LG_OK ||
                 lg_dist_allreduce_grads(d) != LG_OK)) {
        printf("rank %d: %s\n", rank, lg_ctx_errmsg(ctx));
        bad = 1;
    }
    /* the ranks' mean: 2 (w_i - mean_r (r + 1)) / N, mean_r (r + 1) = (size + 1) / 2 */
    const double *g = bad ? NULL : lg_tensor_data(lg_tensor_grad(w));
    if (!bad && !g) {
        printf("rank %d: no gradient\n", rank);
        bad = 1;
    }
    for (int i = 0; !bad && i < N; i++) {
        double want = 2.0 * ((i + 1) - (size + 1) / 2.0) / N;
        if (!(fabs(g[i] - want) <= 1e-12)) {
            printf("rank %d: grad[%d] = %.17g, want %.17g\n", rank, i, g[i], want);
            bad = 1;
        }
    }
    int any_bad = bad;
    MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0 && !any_bad)
        printf("OK: lossgrad %s, %d ranks, mean gradient (%g, %g, %g)\n", lg_version(), size, g[0],
               g[1], g[2]);
    lg_dist_free(d);
    lg_ctx_free(ctx);
    MPI_Finalize();
    return any_bad;
}
