/* test_matmul.c: BLAS matmul against a naive reference gemm, at sizes that
 * take OpenBLAS's blocked paths, and run-to-run reproducibility. */
#include "helpers.h"

#include <string.h>

static void naive(const lg_tensor *a, const lg_tensor *b, double *c, int64_t M, int64_t K,
                  int64_t N, bool ta, bool tb)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += get((lg_tensor *)a, ta ? k * M + i : i * K + k) *
                     get((lg_tensor *)b, tb ? j * K + k : k * N + j);
            c[i * N + j] = s;
        }
}

Test(matmul, agrees_with_a_naive_gemm)
{
    lg_ctx *ctx = test_ctx(7);
    const int64_t M = 67, K = 131, N = 45;
    static double want[67 * 45];
    for (int dt = 0; dt < 2; dt++)
        for (int t = 0; t < 4; t++) {
            bool ta = t & 1, tb = t & 2;
            lg_tensor *a = lg_randn(ctx, (lg_dtype)dt, 2, ta ? SHAPE(K, M) : SHAPE(M, K));
            lg_tensor *b = lg_randn(ctx, (lg_dtype)dt, 2, tb ? SHAPE(N, K) : SHAPE(K, N));
            lg_tensor *c = lg_matmul_t(ctx, a, b, ta, tb);
            expect_ok(ctx);
            cr_assert_eq(lg_tensor_shape(c)[0], M);
            cr_assert_eq(lg_tensor_shape(c)[1], N);
            naive(a, b, want, M, K, N, ta, tb);
            /* float32 sums of 131 products of N(0,1) values: ~1e-5 relative to sqrt(K) */
            expect_close(c, want, M * N, dt == LG_F32 ? 1e-4 : 1e-12, "matmul vs naive");
            lg_step_end(ctx);
        }
    lg_ctx_free(ctx);
}

Test(matmul, batched_agrees_with_per_batch_products)
{
    lg_ctx *ctx = test_ctx(8);
    lg_tensor *a = lg_randn(ctx, LG_F64, 4, SHAPE(2, 3, 5, 6));
    lg_tensor *b = lg_randn(ctx, LG_F64, 4, SHAPE(2, 3, 6, 4));
    lg_tensor *c = lg_matmul(ctx, a, b);
    double want[120];
    for (int s = 0; s < 6; s++) {
        lg_tensor *as = lg_reshape(
            ctx, lg_narrow(ctx, lg_reshape(ctx, a, 3, SHAPE(6, 5, 6)), 0, s, 1), 2, SHAPE(5, 6));
        lg_tensor *bs = lg_reshape(
            ctx, lg_narrow(ctx, lg_reshape(ctx, b, 3, SHAPE(6, 6, 4)), 0, s, 1), 2, SHAPE(6, 4));
        naive(as, bs, want + s * 20, 5, 6, 4, false, false);
    }
    expect_close(c, want, 120, 1e-12, "batched");
    lg_ctx_free(ctx);
}

Test(matmul, same_seed_same_bits)
{
    float *out[2];
    for (int run = 0; run < 2; run++) {
        lg_ctx *ctx = test_ctx(99);
        lg_tensor *w = lg_param_new(ctx, "w", LG_F32, 2, SHAPE(64, 32));
        lg_copy_into(ctx, w, lg_randn(ctx, LG_F32, 2, SHAPE(64, 32)));
        lg_tensor *x = lg_randn(ctx, LG_F32, 2, SHAPE(128, 64));
        lg_tensor *y =
            lg_matmul(ctx, lg_tanh(ctx, lg_matmul(ctx, x, w)), lg_transpose(ctx, w, 0, 1));
        cr_assert_eq(lg_backward(ctx, lg_mean(ctx, lg_square(ctx, y), 0, NULL, false)), LG_OK);
        out[run] = malloc(64 * 32 * sizeof(float) + 128 * 64 * sizeof(float));
        memcpy(out[run], lg_tensor_data(lg_tensor_grad(w)), 64 * 32 * sizeof(float));
        memcpy(out[run] + 64 * 32, lg_tensor_data(y), 128 * 64 * sizeof(float));
        lg_ctx_free(ctx);
    }
    cr_assert_eq(memcmp(out[0], out[1], 64 * 32 * sizeof(float) + 128 * 64 * sizeof(float)), 0);
    free(out[0]);
    free(out[1]);
}

Test(matmul, empty_inner_dimension_gives_zeros)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *c = lg_matmul(ctx, lg_zeros(ctx, LG_F32, 2, SHAPE(2, 0)),
                             lg_zeros(ctx, LG_F32, 2, SHAPE(0, 3)));
    double z[6] = { 0 };
    expect_close(c, z, 6, 0, "K = 0");
    lg_ctx_free(ctx);
}
