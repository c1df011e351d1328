/* test_core.c: context, RNG, tensor creation, queries, printing, casting,
 * parameters and the step arena. */
#include "helpers.h"

#include <stdlib.h>
#include <string.h>

Test(core, ctx_defaults_and_threads)
{
    lg_ctx *ctx = lg_ctx_new(NULL);
    cr_assert_not_null(ctx);
    cr_assert_eq(lg_ctx_threads(ctx), 1);
    cr_assert_eq(lg_ctx_status(ctx), LG_OK);
    cr_assert_str_empty(lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_ctx_set_threads(ctx, 2), LG_OK);
    cr_assert_eq(lg_ctx_threads(ctx), 2);
    cr_assert_eq(lg_ctx_set_threads(ctx, 0), LG_ERR_VALUE);
    cr_assert_eq(lg_ctx_threads(ctx), 2, "a rejected call changes nothing");
    cr_assert_str_eq(lg_status_name(LG_ERR_STALE), "LG_ERR_STALE");
    cr_assert_str_eq(lg_version(), "0.1.0");
    lg_ctx_free(ctx);
    lg_ctx_free(NULL);
}

/* An independent implementation of the documented RNG: splitmix64 seeding
 * of xoshiro256**, 53-bit uniforms. */
static uint64_t sm64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t rl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}
static uint64_t xo(uint64_t s[4])
{
    uint64_t r = rl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rl(s[3], 45);
    return r;
}

Test(core, rng_follows_the_documented_algorithm)
{
    lg_ctx *ctx = test_ctx(20261128);
    uint64_t x = 20261128, s[4];
    for (int i = 0; i < 4; i++)
        s[i] = sm64(&x);
    for (int i = 0; i < 1000; i++) {
        double want = (double)(xo(s) >> 11) * 0x1.0p-53;
        cr_assert_eq(lg_rand_uniform(ctx), want, "draw %d", i);
    }
    /* Box-Muller: the pair from (u1, u2) is r cos, then r sin. */
    double u1 = 1.0 - (double)(xo(s) >> 11) * 0x1.0p-53, u2 = (double)(xo(s) >> 11) * 0x1.0p-53;
    double r = sqrt(-2 * log(u1));
    double n1 = lg_rand_normal(ctx), n2 = lg_rand_normal(ctx);
    cr_assert_float_eq(n1, r * cos(2 * M_PI * u2), 1e-15);
    cr_assert_float_eq(n2, r * sin(2 * M_PI * u2), 1e-15);
    lg_ctx_free(ctx);
}

Test(core, rng_seed_reproduces_and_moments_are_right)
{
    lg_ctx *a = test_ctx(5), *b = test_ctx(5);
    lg_tensor *ta = lg_randn(a, LG_F64, 1, SHAPE(200000)),
              *tb = lg_randn(b, LG_F64, 1, SHAPE(200000));
    cr_assert_eq(memcmp(lg_tensor_data(ta), lg_tensor_data(tb), 200000 * sizeof(double)), 0);
    double m = 0, v = 0;
    for (int i = 0; i < 200000; i++)
        m += get(ta, i);
    m /= 200000;
    for (int i = 0; i < 200000; i++)
        v += (get(ta, i) - m) * (get(ta, i) - m);
    v /= 200000;
    cr_assert(fabs(m) < 0.01 && fabs(v - 1) < 0.02, "normal mean %g var %g", m, v);
    lg_tensor *u = lg_rand(a, LG_F32, 1, SHAPE(100000), -2, 3);
    double lo = 1e9, hi = -1e9, mu = 0;
    for (int i = 0; i < 100000; i++) {
        double e = get(u, i);
        lo = fmin(lo, e), hi = fmax(hi, e), mu += e / 100000;
    }
    cr_assert(lo >= -2 && hi < 3 && fabs(mu - 0.5) < 0.02, "uniform [%g, %g] mean %g", lo, hi, mu);
    lg_seed(a, 9);
    double first = lg_rand_uniform(a);
    lg_seed(a, 9);
    cr_assert_eq(lg_rand_uniform(a), first);
    for (int i = 0; i < 1000; i++)
        cr_assert_lt(lg_rand_below(a, 7), 7);
    lg_ctx_free(a);
    lg_ctx_free(b);
}

Test(core, creation_and_queries)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *z = lg_zeros(ctx, LG_F32, 2, SHAPE(2, 3));
    cr_assert_eq(lg_tensor_ndim(z), 2);
    cr_assert_eq(lg_tensor_shape(z)[1], 3);
    cr_assert_eq(lg_tensor_dim(z, -1), 3);
    cr_assert_eq(lg_tensor_dim(z, 2), -1);
    cr_assert_eq(lg_tensor_numel(z), 6);
    cr_assert_eq(lg_tensor_dtype(z), LG_F32);
    cr_assert_not(lg_tensor_requires_grad(z));
    cr_assert_str_eq(lg_tensor_op_name(z), "leaf");
    double zeros[6] = { 0 }, ones[6] = { 1, 1, 1, 1, 1, 1 }, sevens[6] = { 7, 7, 7, 7, 7, 7 };
    expect_close(z, zeros, 6, 0, "zeros");
    expect_close(lg_ones(ctx, LG_F64, 1, SHAPE(6)), ones, 6, 0, "ones");
    expect_close(lg_full(ctx, LG_I64, 2, SHAPE(3, 2), 7), sevens, 6, 0, "full int64");
    lg_tensor *s = lg_scalar(ctx, LG_F64, 2.5);
    cr_assert_eq(lg_tensor_ndim(s), 0);
    cr_assert_eq(lg_tensor_numel(s), 1);
    cr_assert_eq(lg_item(ctx, s), 2.5);
    double ar[] = { 1, 1.5, 2, 2.5 };
    expect_close(lg_arange(ctx, LG_F64, 1, 3, 0.5), ar, 4, 0, "arange");
    double down[] = { 3, 2, 1 };
    expect_close(lg_arange(ctx, LG_I64, 3, 0, -1), down, 3, 0, "arange down");
    cr_assert_eq(lg_tensor_numel(lg_arange(ctx, LG_F32, 3, 0, 1)), 0);
    float fv[] = { 1.5f, -2, 4 };
    lg_tensor *f = lg_tensor_from(ctx, LG_F32, fv, 1, SHAPE(3));
    fv[0] = 99; /* copied, not aliased */
    double fw[] = { 1.5, -2, 4 };
    expect_close(f, fw, 3, 0, "from");
    cr_assert_eq(lg_tensor_numel(lg_zeros(ctx, LG_F32, 2, SHAPE(0, 5))), 0,
                 "empty tensors are fine");
    lg_tensor *big8 = lg_zeros(ctx, LG_F32, 8, SHAPE(1, 2, 1, 2, 1, 2, 1, 2));
    cr_assert_eq(lg_tensor_numel(big8), 16, "8 dims");
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

Test(core, cast_copy_and_print)
{
    lg_ctx *ctx = test_ctx(1);
    double v[] = { 0.1, -2, 3.25 };
    lg_tensor *d = from_doubles(ctx, LG_F64, v, 1, SHAPE(3));
    lg_tensor *f = lg_cast(ctx, d, LG_F32);
    double fw[] = { (double)0.1f, -2, 3.25 };
    expect_close(f, fw, 3, 0, "cast to float32");
    lg_tensor *p = lg_param_new(ctx, "w", LG_F64, 1, SHAPE(3));
    cr_assert_eq(lg_copy_into(ctx, p, f), LG_OK);
    expect_close(p, fw, 3, 0, "copy_into across dtypes");
    char buf[256] = { 0 };
    FILE *mem = fmemopen(buf, sizeof buf - 1, "w");
    cr_assert_eq(lg_tensor_print(ctx, d, mem, 2), LG_OK);
    fclose(mem);
    cr_assert_str_eq(buf, "tensor(float64, shape=[3], data=[0.10000000000000001, -2, ...])\n");
    mem = fmemopen(buf, sizeof buf - 1, "w");
    cr_assert_eq(lg_tensor_print(ctx, p, mem, 0), LG_OK);
    fclose(mem);
    cr_assert(strstr(buf, "name=w") != NULL, "%s", buf);
    lg_ctx_free(ctx);
}

Test(core, parameters_persist_across_steps)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *w = lg_param_new(ctx, "layer.weight", LG_F32, 2, SHAPE(2, 2));
    lg_tensor *b = lg_param_new(ctx, NULL, LG_F64, 1, SHAPE(2));
    cr_assert_eq(lg_param_count(ctx), 2);
    cr_assert_eq(lg_param_at(ctx, 0), w);
    cr_assert_null(lg_param_at(ctx, 2));
    cr_assert_str_eq(lg_tensor_name(w), "layer.weight");
    cr_assert_null(lg_tensor_name(b));
    cr_assert(lg_tensor_requires_grad(w));
    double zeros[4] = { 0 };
    expect_close(w, zeros, 4, 0, "params start at zero");
    /* parameter data and gradients start on a cache line (vector loads of
     * an update never straddle two) */
    cr_assert_eq(lg_backward(ctx, lg_sum(ctx, lg_mul(ctx, w, w), 0, NULL, false)), LG_OK);
    cr_assert_eq((uintptr_t)lg_tensor_data(w) % 64, 0);
    cr_assert_eq((uintptr_t)lg_tensor_data(b) % 64, 0);
    cr_assert_eq((uintptr_t)lg_tensor_data(lg_tensor_grad(w)) % 64, 0);
    for (int i = 0; i < 40; i++) /* grows the parameter list */
        cr_assert_not_null(lg_param_new(ctx, NULL, LG_F32, 1, SHAPE(1)));
    lg_step_end(ctx);
    lg_step_end(ctx);
    cr_assert_eq(lg_tensor_check(ctx, w), LG_OK);
    cr_assert_eq(lg_tensor_numel(w), 4);
    lg_ctx_free(ctx);
}

Test(core, step_end_resets_the_arena_and_keeps_capacity)
{
    lg_ctx *ctx = test_ctx(1);
    for (int step = 0; step < 2; step++) { /* more than one 1 MiB chunk */
        lg_randn(ctx, LG_F64, 1, SHAPE(400000));
        lg_ones(ctx, LG_F32, 1, SHAPE(10));
        lg_step_end(ctx);
    }
    lg_mem_stats a = lg_ctx_mem_stats(ctx);
    cr_assert_lt(a.arena_used, 4096, "reset");
    cr_assert_geq(a.arena_capacity, 400000 * sizeof(double), "capacity kept");
    lg_randn(ctx, LG_F64, 1, SHAPE(400000));
    lg_ones(ctx, LG_F32, 1, SHAPE(10));
    lg_mem_stats b = lg_ctx_mem_stats(ctx);
    cr_assert_geq(b.arena_used, 400000 * sizeof(double));
    cr_assert_eq(b.alloc_calls, a.alloc_calls, "the same step again allocates nothing new");
    cr_assert_eq(b.arena_capacity, a.arena_capacity);
    lg_ctx_free(ctx);
}

Test(core, stale_tensors_are_caught)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *old = lg_ones(ctx, LG_F32, 1, SHAPE(4));
    lg_step_end(ctx);
    lg_tensor *fresh = lg_ones(ctx, LG_F32, 1, SHAPE(4));
    cr_assert_null(lg_add(ctx, old, fresh));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_STALE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "lg_add: a is a stale tensor") != NULL, "%s",
              lg_ctx_errmsg(ctx));
    cr_assert_null(lg_tensor_data(old), "handle-only calls see staleness too");
    cr_assert_eq(lg_tensor_numel(old), 0);
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_tensor_check(ctx, old), LG_ERR_STALE);
    lg_ctx_free(ctx);
}

Test(core, tensors_of_another_ctx_are_rejected)
{
    lg_ctx *a = test_ctx(1), *b = test_ctx(1);
    lg_tensor *x = lg_ones(a, LG_F32, 1, SHAPE(2));
    cr_assert_null(lg_neg(b, x));
    cr_assert_eq(lg_ctx_status(b), LG_ERR_STATE);
    cr_assert(strstr(lg_ctx_errmsg(b), "another lg_ctx") != NULL);
    lg_ctx_free(a);
    lg_ctx_free(b);
}

Test(core, threads_give_identical_results)
{
    /* Big enough to take the parallel paths; results must not depend on
     * the thread count. */
    lg_ctx *c1 = test_ctx(3), *c2 = lg_ctx_new(&(lg_ctx_params){ .seed = 3, .threads = 2 });
    lg_tensor *r[2][4];
    lg_ctx *cs[2] = { c1, c2 };
    for (int k = 0; k < 2; k++) {
        lg_tensor *x = lg_randn(cs[k], LG_F32, 2, SHAPE(300, 400));
        lg_tensor *b = lg_randn(cs[k], LG_F32, 1, SHAPE(400));
        r[k][0] = lg_sigmoid(cs[k], lg_add(cs[k], x, b));
        r[k][1] = lg_sum(cs[k], x, 1, (int[]){ 0 }, false);
        r[k][2] = lg_log_softmax(cs[k], x, 1);
        r[k][3] = lg_sum(cs[k], x, 0, NULL, false);
    }
    for (int i = 0; i < 4; i++)
        cr_assert_eq(memcmp(lg_tensor_data(r[0][i]), lg_tensor_data(r[1][i]),
                            (size_t)lg_tensor_numel(r[0][i]) * sizeof(float)),
                     0, "result %d differs between 1 and 2 threads", i);
    /* products split into panels (at 2 threads) against one call: the same
     * bits where lg_threads_bitwise says so, else within rounding */
    for (int dt = 0; dt < 2; dt++) {
        lg_tensor *p[2];
        for (int k = 0; k < 2; k++) {
            lg_tensor *a = lg_randn(cs[k], (lg_dtype)dt, 2, SHAPE(301, 400));
            lg_tensor *b = lg_randn(cs[k], (lg_dtype)dt, 2, SHAPE(400, 250));
            p[k] = lg_matmul(cs[k], a, b);
        }
        cr_assert_eq(lg_threads_bitwise(c1, (lg_dtype)dt), lg_threads_bitwise(c2, (lg_dtype)dt));
        size_t es = dt == LG_F32 ? sizeof(float) : sizeof(double);
        if (lg_threads_bitwise(c1, (lg_dtype)dt))
            cr_assert_eq(memcmp(lg_tensor_data(p[0]), lg_tensor_data(p[1]), 301 * 250 * es), 0,
                         "%s product differs between 1 and 2 threads", dt ? "float64" : "float32");
        else
            expect_close_to(p[1], p[0], 1e-4, "a product at 1 and 2 threads");
    }
    cr_assert(!lg_threads_bitwise(NULL, LG_F32));
    cr_assert(!lg_threads_bitwise(c1, LG_I64));
    lg_ctx_free(c1);
    lg_ctx_free(c2);
}

/* lg_ctx_set_bitwise_threads: with it, products are the same bits at 1
 * and 2 threads whatever the BLAS (on a BLAS that keeps split products'
 * bits, as Debian 12's OpenBLAS on x86-64, it changes nothing, and this
 * test cannot fail for want of the switch: test_core's test above covers
 * that case; the switch's own path runs where lg_threads_bitwise was false
 * without it). */
Test(core, bitwise_threads_switch)
{
    lg_ctx *c1 = test_ctx(5), *c2 = lg_ctx_new(&(lg_ctx_params){ .seed = 5, .threads = 2 });
    cr_assert_eq(lg_ctx_set_bitwise_threads(c1, true), LG_OK);
    cr_assert_eq(lg_ctx_set_bitwise_threads(c2, true), LG_OK);
    cr_assert(lg_threads_bitwise(c1, LG_F32) && lg_threads_bitwise(c2, LG_F64));
    lg_ctx *cs[2] = { c1, c2 };
    for (int dt = 0; dt < 2; dt++) {
        lg_tensor *p[2];
        for (int k = 0; k < 2; k++) {
            lg_tensor *a = lg_randn(cs[k], (lg_dtype)dt, 2, SHAPE(333, 380));
            lg_tensor *b = lg_randn(cs[k], (lg_dtype)dt, 2, SHAPE(380, 190));
            p[k] = lg_matmul(cs[k], a, b);
        }
        size_t es = dt == LG_F32 ? sizeof(float) : sizeof(double);
        cr_assert_eq(memcmp(lg_tensor_data(p[0]), lg_tensor_data(p[1]), 333 * 190 * es), 0,
                     "%s product differs between 1 and 2 threads", dt ? "float64" : "float32");
    }
    cr_assert_eq(lg_ctx_set_bitwise_threads(NULL, true), LG_ERR_NULL);
    lg_ctx_free(c1);
    lg_ctx_free(c2);
}

Test(core, blas_kernel_report)
{
    const char *core = lg_blas_corename();
    cr_assert_not_null(core);
    cr_assert_gt(strlen(core), 0);
    cr_assert_not_null(lg_blas_config());
}
