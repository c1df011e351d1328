/* parallel.c: the one place that opens an OpenMP region for a kernel.
 *
 * lgC_parallel splits [0, n) into one contiguous range per thread, in
 * thread order, and runs serially below LGC_PAR_MIN units of work. The
 * split depends only on n and the thread count; kernels keep their
 * results independent of it by summing fixed blocks (see core.h).
 */
#include "core.h"

void lgC_parallel(lg_ctx *ctx, int64_t work, int64_t n, lgC_range_fn fn, void *arg)
{
    if (n <= 0)
        return;
    int nt = ctx->threads;
#ifdef _OPENMP
    if (work >= LGC_PAR_MIN && nt > 1 && n > 1) {
        if ((int64_t)nt > n)
            nt = (int)n;
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int t = 0; t < nt; t++) {
            int64_t q = n / nt, r = n % nt; /* the first r ranges get one more */
            int64_t lo = q * t + (t < r ? t : r);
            fn(arg, lo, lo + q + (t < r));
        }
        return;
    }
#else
    (void)work;
    (void)nt;
#endif
    fn(arg, 0, n);
}
