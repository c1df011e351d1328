/* bench_dist: lossgrad's side of the data-parallel benchmark (issue 19,
 * bench/dist.sh, beside bench/bench_ddp.py).
 *
 * The training step of bench_losses' train/mlp_784_256_10_b128: the MLP
 * 784-256-10 (ReLU), cross_entropy, SGD lr 0.01, float32, on a fixed
 * per-rank batch of 128 synthetic examples (N(0, 1) inputs, uniform
 * labels; each rank its own), one lossgrad thread. One step:
 *
 *     lg_zero_grad, forward, lg_backward (the gradient buckets start from
 *     it), lg_dist_allreduce_grads, lg_optim_step, lg_step_end
 *
 * --no-dist: the same step in a plain process, without MPI or lg_dist (the
 * baseline). Otherwise under mpirun -np N: every rank starts from rank 0's
 * model (lg_dist_broadcast), and every round begins with a barrier.
 *
 *   warm-up   = --warmup steps (20)
 *   round     = --steps steps (50), timed on rank 0; per step = time / steps
 *   result    = median over --rounds rounds (5)
 *
 * The phases are timed too (medians over the rounds of the per-step
 * means): zero_grad + forward + backward, the lg_dist_allreduce_grads
 * call, the optimizer step and step end. After the rounds, one blocking
 * MPI_Allreduce of the gradients' size (203530 floats), alone, median of
 * 20: the allreduce's own cost, against which the wait shows the overlap.
 * Rank 0 prints "KERNEL <openblas core>" and
 *
 *   RESULT bench=dist side=lossgrad ranks=N step_ms=... allreduce_wait_ms=...
 *     buckets_per_step=... buckets_in_backward_per_step=... fwd_bwd_ms=...
 *     allreduce_call_ms=... optim_ms=... allreduce_alone_ms=... steps=...
 *
 * (ranks=0 for --no-dist; the dist fields are 0 there.) allreduce_wait_ms
 * is lg_dist_get_stats' wait_seconds per step (the part of
 * lg_dist_allreduce_grads spent in MPI_Waitall: not overlapped);
 * allreduce_call_ms is the whole call (its agreement round, packing,
 * starting the buckets not started yet, the wait, unpacking).
 */
#include <lossgrad.h>
#include <lossgrad/dist.h>

#include "timing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BATCH = 128, IN = 784, HID = 256, OUT = 10 };

static int rank_ = 0;

static void die(lg_ctx *ctx, const char *what, bool mpi)
{
    fprintf(stderr, "bench_dist (rank %d): %s: %s\n", rank_, what,
            ctx ? lg_ctx_errmsg(ctx) : "out of memory");
    if (mpi)
        MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct bench {
    lg_ctx *ctx;
    lg_dist *d; /* NULL: --no-dist */
    lg_mlp *mlp;
    lg_optim *opt;
    lg_tensor *x; /* a buffer: the inputs */
    int64_t y[BATCH];
    double t_fb, t_ar, t_opt; /* the phases' seconds, summed */
} bench;

static void step(bench *b)
{
    lg_ctx *ctx = b->ctx;
    double t0 = bench_now();
    lg_zero_grad(ctx);
    lg_tensor *x = lg_detach(ctx, b->x);
    lg_tensor *y = lg_tensor_from(ctx, LG_I64, b->y, 1, (int64_t[]){ BATCH });
    lg_tensor *loss = lg_cross_entropy(ctx, lg_mlp_forward(ctx, b->mlp, x), y, NULL);
    if (!loss || lg_backward(ctx, loss) != LG_OK)
        die(ctx, "forward/backward", b->d != NULL);
    double t1 = bench_now();
    if (b->d && lg_dist_allreduce_grads(b->d) != LG_OK)
        die(ctx, "lg_dist_allreduce_grads", true);
    double t2 = bench_now();
    if (lg_optim_step(b->opt) != LG_OK)
        die(ctx, "lg_optim_step", b->d != NULL);
    lg_step_end(ctx);
    double t3 = bench_now();
    b->t_fb += t1 - t0, b->t_ar += t2 - t1, b->t_opt += t3 - t2;
}

int main(int argc, char **argv)
{
    bool dist = true;
    int warmup = 20, steps = 50, rounds = 5;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--no-dist"))
            dist = false;
        else if (!strcmp(argv[a], "--warmup") && a + 1 < argc)
            warmup = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--steps") && a + 1 < argc)
            steps = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--rounds") && a + 1 < argc)
            rounds = atoi(argv[++a]);
        else {
            fprintf(stderr, "usage: bench_dist [--no-dist] [--warmup W] [--steps S] "
                            "[--rounds R]   (under mpirun unless --no-dist)\n");
            return 2;
        }
    }
    if (steps < 1 || rounds < 1 || rounds > 1000 || warmup < 0) {
        fprintf(stderr, "bench_dist: --steps and --rounds >= 1 (rounds <= 1000), --warmup >= 0\n");
        return 2;
    }
    int size = 1;
    if (dist) {
        if (lg_dist_mpi_init(&argc, &argv) != MPI_SUCCESS) {
            fprintf(stderr, "bench_dist: MPI_Init failed\n");
            return 1;
        }
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
    }
    bench b = { 0 };
    /* each rank its own seed (its data); the model is rank 0's (broadcast) */
    b.ctx = lg_ctx_new(&(lg_ctx_params){ .seed = 1 + (uint64_t)rank_, .threads = 1 });
    if (!b.ctx)
        die(NULL, "lg_ctx_new", dist);
    lg_ctx *ctx = b.ctx;
    b.mlp = lg_mlp_new(ctx, "mlp", 3, (int64_t[]){ IN, HID, OUT }, NULL);
    b.x = lg_buffer_new(ctx, "x", LG_F32, 2, (int64_t[]){ BATCH, IN });
    lg_optim_opts oo = lg_optim_opts_default(LG_SGD);
    oo.lr = 0.01; /* every parameter: the MLP's (the inputs are a buffer) */
    b.opt = lg_optim_new(ctx, &oo);
    if (!b.mlp || !b.x || !b.opt)
        die(ctx, "setup", dist);
    if (dist) {
        b.d = lg_dist_new(ctx, MPI_COMM_WORLD, NULL);
        if (!b.d || lg_dist_broadcast(b.d, 0) != LG_OK)
            die(ctx, "lg_dist_new/broadcast", true);
    }
    /* this rank's data, after the broadcast (which took rank 0's buffer too) */
    lg_tensor *r = lg_randn(ctx, LG_F32, 2, (int64_t[]){ BATCH, IN });
    if (!r)
        die(ctx, "inputs", dist);
    memcpy(lg_tensor_data(b.x), lg_tensor_data(r), sizeof(float) * BATCH * IN);
    lg_step_end(ctx);
    for (int i = 0; i < BATCH; i++)
        b.y[i] = (int64_t)lg_rand_below(ctx, OUT);

    for (int w = 0; w < warmup; w++)
        step(&b);
    double *per = malloc(4 * (size_t)rounds * sizeof *per);
    if (!per)
        die(NULL, "malloc", dist);
    double *fb = per + rounds, *ar = fb + rounds, *op = ar + rounds;
    double wait[1000];
    lg_dist_stats s0 = lg_dist_get_stats(b.d);
    for (int k = 0; k < rounds; k++) {
        if (b.d && lg_dist_barrier(b.d) != LG_OK)
            die(ctx, "lg_dist_barrier", true);
        lg_dist_stats sa = lg_dist_get_stats(b.d);
        b.t_fb = b.t_ar = b.t_opt = 0;
        double t0 = bench_now();
        for (int j = 0; j < steps; j++)
            step(&b);
        per[k] = (bench_now() - t0) / steps;
        fb[k] = b.t_fb / steps, ar[k] = b.t_ar / steps, op[k] = b.t_opt / steps;
        wait[k] = (lg_dist_get_stats(b.d).wait_seconds - sa.wait_seconds) / steps;
    }
    lg_dist_stats s1 = lg_dist_get_stats(b.d);
    double total_steps = (double)steps * rounds;

    /* the allreduce alone: the gradients' size, blocking, median of 20 */
    double alone = 0;
    if (dist) {
        int64_t P = 0;
        for (int i = 0; i < lg_param_count(ctx); i++)
            P += lg_tensor_numel(lg_param_at(ctx, i));
        float *buf = calloc((size_t)P, sizeof *buf);
        double t[20];
        if (!buf)
            die(NULL, "malloc", true);
        for (int k = -3; k < 20; k++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buf, (int)P, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            if (k >= 0)
                t[k] = MPI_Wtime() - t0;
        }
        alone = median(t, 20);
        free(buf);
    }
    if (rank_ == 0) {
        printf("KERNEL %s\n", lg_blas_corename());
        printf("RESULT bench=dist side=lossgrad ranks=%d step_ms=%.4f allreduce_wait_ms=%.4f "
               "buckets_per_step=%.3g buckets_in_backward_per_step=%.3g fwd_bwd_ms=%.4f "
               "allreduce_call_ms=%.4f optim_ms=%.4f allreduce_alone_ms=%.4f steps=%d\n",
               dist ? size : 0, 1e3 * median(per, rounds), 1e3 * median(wait, rounds),
               (double)(s1.buckets - s0.buckets) / total_steps,
               (double)(s1.buckets_in_backward - s0.buckets_in_backward) / total_steps,
               1e3 * median(fb, rounds), 1e3 * median(ar, rounds), 1e3 * median(op, rounds),
               1e3 * alone, steps * rounds);
        fflush(stdout);
    }
    free(per);
    if (dist) {
        lg_dist_free(b.d);
        lg_ctx_free(ctx);
        MPI_Finalize();
    } else {
        lg_ctx_free(ctx);
    }
    return 0;
}
