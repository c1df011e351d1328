/* bench_core: timings of core primitives (forward + backward), at 1 and 2
 * threads, medians of repeated runs. The side-by-side comparison with
 * PyTorch belongs to the benchmark of the benchmarks issue; this program
 * is the engine's own baseline and a check of thread scaling.
 *
 *   bench_core [--reps N]
 */
#include <lossgrad.h>

#include "timing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef lg_tensor *(*case_fn)(lg_ctx *ctx, lg_tensor *x, lg_tensor *w);

static lg_tensor *c_sigmoid(lg_ctx *c, lg_tensor *x, lg_tensor *w)
{
    (void)w;
    return lg_sigmoid(c, x);
}
static lg_tensor *c_add_bcast(lg_ctx *c, lg_tensor *x, lg_tensor *w)
{
    return lg_mul(c, x, w);
}
static lg_tensor *c_log_softmax(lg_ctx *c, lg_tensor *x, lg_tensor *w)
{
    (void)w;
    return lg_log_softmax(c, x, 1);
}
static lg_tensor *c_sum_rows(lg_ctx *c, lg_tensor *x, lg_tensor *w)
{
    (void)w;
    return lg_sum(c, x, 1, (int[]){ 1 }, false);
}
static lg_tensor *c_matmul(lg_ctx *c, lg_tensor *x, lg_tensor *w)
{
    return lg_matmul(c, x, w);
}

static const struct {
    const char *name;
    case_fn fn;
    int64_t xs[2], ws[2];
    int wnd;
} cases[] = {
    { "sigmoid 4096x256", c_sigmoid, { 4096, 256 }, { 1, 1 }, 1 },
    { "mul bcast 4096x256 * 256", c_add_bcast, { 4096, 256 }, { 256, 1 }, 1 },
    { "log_softmax 4096x1000", c_log_softmax, { 4096, 1000 }, { 1, 1 }, 1 },
    { "sum rows 4096x1000", c_sum_rows, { 4096, 1000 }, { 1, 1 }, 1 },
    { "matmul 512x512x512", c_matmul, { 512, 512 }, { 512, 512 }, 2 },
};

static double run(int threads, int c, int reps)
{
    lg_ctx *ctx = lg_ctx_new(&(lg_ctx_params){ .seed = 1, .threads = threads });
    lg_tensor *w = lg_param_new(ctx, "w", LG_F32, cases[c].wnd, cases[c].ws);
    double *t = malloc((size_t)reps * sizeof *t);
    for (int r = 0; r < reps + 2; r++) {
        lg_tensor *x = lg_rand(ctx, LG_F32, 2, cases[c].xs, -1, 1);
        lg_requires_grad(ctx, x, true);
        double t0 = bench_now();
        lg_tensor *y = cases[c].fn(ctx, x, w);
        lg_tensor *u = lg_ones(ctx, LG_F32, lg_tensor_ndim(y), lg_tensor_shape(y));
        lg_status st = lg_backward_with(ctx, y, u);
        double t1 = bench_now();
        if (st != LG_OK) {
            fprintf(stderr, "bench_core: %s\n", lg_ctx_errmsg(ctx));
            exit(1);
        }
        if (r >= 2) /* two warm-up rounds */
            t[r - 2] = t1 - t0;
        lg_zero_grad(ctx);
        lg_step_end(ctx);
    }
    qsort(t, (size_t)reps, sizeof *t, bench_cmp);
    double med = t[reps / 2];
    free(t);
    lg_ctx_free(ctx);
    return med;
}

int main(int argc, char **argv)
{
    int reps = 21;
    if (argc == 3 && !strcmp(argv[1], "--reps"))
        reps = atoi(argv[2]);
    if (reps < 1) {
        fprintf(stderr, "usage: %s [--reps N]\n", argv[0]);
        return 2;
    }
    printf("OpenBLAS kernel: %s; forward + backward, median of %d\n", lg_blas_corename(), reps);
    printf("%-28s %12s %12s %8s\n", "case", "1 thread", "2 threads", "speedup");
    for (int c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++) {
        double t1 = run(1, c, reps), t2 = run(2, c, reps);
        printf("%-28s %9.3f ms %9.3f ms %7.2fx\n", cases[c].name, 1e3 * t1, 1e3 * t2, t1 / t2);
    }
    return 0;
}
