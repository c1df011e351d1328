// dist_idioms.cpp: lossgrad/dist.h's documented idioms from C++17 (-Wall
// -Wextra -pedantic -Werror), run at 1 rank under mpirun: the options from
// the _default() function and from {}, a data-parallel step, no_sync
// accumulation, the stats.
#include <lossgrad.h>
#include <lossgrad/dist.h>
#include <lossgrad/loss.h>
#include <lossgrad/nn.h>

#include <cstdio>

int main(int argc, char **argv)
{
    if (lg_dist_mpi_init(&argc, &argv) != MPI_SUCCESS)
        return 1;
    int failed = 0;
    lg_ctx *ctx = lg_ctx_new(nullptr);
    lg_linear_opts lo = lg_linear_opts_default();
    lo.dtype = LG_F64;
    lg_linear *fc = lg_linear_new(ctx, "fc", 3, 2, &lo);
    lg_optim_opts oo = lg_optim_opts_default(LG_SGD);
    oo.lr = 0.1;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    lg_dist_opts o = lg_dist_opts_default();
    o.bucket_bytes = 1 << 20;
    lg_dist *d = lg_dist_new(ctx, MPI_COMM_WORLD, &o);
    failed += !d;
    lg_dist_opts zero{};
    failed += lg_dist_new(ctx, MPI_COMM_SELF, &zero) != nullptr; // one per ctx
    lg_ctx_clear_error(ctx);
    lg_dist_free(d);
    d = lg_dist_new(ctx, MPI_COMM_WORLD, &zero); // {}: the defaults
    failed += !d;
    const int64_t xs[] = { 4, 3 }, ys[] = { 4, 2 };
    failed += lg_dist_broadcast(d, 0) != LG_OK;
    for (int step = 0; step < 3; step++) {
        lg_zero_grad(ctx);
        lg_dist_set_sync(d, false);
        for (int half = 0; half < 2; half++) {
            if (half == 1)
                lg_dist_set_sync(d, true);
            lg_tensor *x = lg_randn(ctx, LG_F64, 2, xs);
            lg_tensor *y = lg_randn(ctx, LG_F64, 2, ys);
            lg_backward(ctx, lg_mse_loss(ctx, lg_linear_forward(ctx, fc, x), y, nullptr));
        }
        failed += lg_dist_allreduce_grads(d) != LG_OK;
        lg_optim_step(opt);
        lg_step_end(ctx);
    }
    lg_dist_stats st = lg_dist_get_stats(d);
    failed += st.allreduces != 3 || st.buckets != 0; // one rank: nothing to send
    if (failed || lg_ctx_status(ctx) != LG_OK)
        std::printf("dist_idioms: %d failed, %s\n", failed, lg_ctx_errmsg(ctx));
    lg_dist_free(d);
    lg_ctx_free(ctx);
    MPI_Finalize();
    return failed ? 1 : 0;
}
