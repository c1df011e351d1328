/* blas.c: the one file that includes cblas.h.
 *
 * Row-major gemm for both float types: OpenBLAS on one thread per call,
 * large products split over the ctx's threads here (see lgT_gemm).
 */
#include "tensor.h"

#include <cblas.h>
#include <string.h>

#define LGT_GEMM_PAR_MIN (1 << 21) /* m n k below which one thread does the product */

/* Declared by OpenBLAS's cblas.h in most builds; repeated for the others. */
char *openblas_get_corename(void);
char *openblas_get_config(void);
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* OpenBLAS runs on one thread in every call: large products are cut into
 * panels of C's rows split over the ctx's threads (core/parallel.c), so
 * that a busy core never holds up a product the way OpenBLAS's own
 * thread team does. */
static void blas_one_thread(void)
{
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
}

/* Products the same bits at every thread count.
 *
 * A large product is cut into panels of C's rows that depend on its shape
 * only, and each panel is one OpenBLAS call, at 1 thread as at 2 or more:
 * whatever thread computes a panel, it makes the same call, so every
 * element of C comes out of the same arithmetic. (Cutting at 2 threads and
 * making one call at 1 thread keeps the bits only where the BLAS computes
 * each element the same way wherever its row falls. Debian 12's OpenBLAS
 * on SkylakeX does not: its kernels for remainder rows and for small
 * products sum differently, and no row granule up to 96 keeps the bits for
 * all shapes. An earlier probe for such a granule passed on small products
 * and was wrong on large ones.) lg_ctx_set_bitwise_threads(ctx, false)
 * gives up the guarantee for one call at 1 thread, up to about 9 % faster
 * on such products. */
typedef struct gemm_job {
    lg_dtype dt;
    bool ta, tb;
    int64_t m, n, k;
    double alpha;
    const void *a;
    int64_t lda;
    const void *b;
    int64_t ldb;
    double beta;
    void *c;
    int64_t ldc;
    int64_t panels, rows; /* the cut: panels of rows rows (the last one shorter) */
} gemm_job;

/* Rows r0 to r1 of C (op(A)'s rows with them: A's rows, or A^T's
 * columns) in one OpenBLAS call. */
static void gemm_rows(const gemm_job *j, int64_t r0, int64_t r1)
{
    if (r1 <= r0)
        return;
    size_t es = lgT_dtype_size(j->dt);
    const char *a = (const char *)j->a + (size_t)(j->ta ? r0 : r0 * j->lda) * es;
    char *c = (char *)j->c + (size_t)(r0 * j->ldc) * es;
    enum CBLAS_TRANSPOSE TA = j->ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE TB = j->tb ? CblasTrans : CblasNoTrans;
    blasint m = (blasint)(r1 - r0), n = (blasint)j->n, k = (blasint)j->k;
    if (j->dt == LG_F32)
        cblas_sgemm(CblasRowMajor, TA, TB, m, n, k, (float)j->alpha, (const float *)a,
                    (blasint)j->lda, (const float *)j->b, (blasint)j->ldb, (float)j->beta,
                    (float *)c, (blasint)j->ldc);
    else
        cblas_dgemm(CblasRowMajor, TA, TB, m, n, k, j->alpha, (const double *)a, (blasint)j->lda,
                    (const double *)j->b, (blasint)j->ldb, j->beta, (double *)c, (blasint)j->ldc);
}

bool lg_threads_bitwise(lg_ctx *ctx, lg_dtype dt)
{
    if (!ctx || (dt != LG_F32 && dt != LG_F64))
        return false;
    return ctx->bitwise_threads;
}

/* How a large product is cut (a function of its shape only): about 256
 * rows a panel, 2 to 8 panels, at multiples of 16 rows. Fewer, taller
 * panels cost less at 1 thread (OpenBLAS packs B again for each call: 4
 * panels of 32 rows made a 128 x 784 x 256 product 1.35 times one call, 2
 * panels of 64 rows 1.09 times). */
static void plan_panels(gemm_job *j)
{
    int64_t p = j->m / 256;
    p = p < 2 ? 2 : (p > 8 ? 8 : p);
    j->rows = ((j->m + p - 1) / p + 15) / 16 * 16;
    j->panels = (j->m + j->rows - 1) / j->rows;
}

/* Panels lo to hi, one call each. */
static void gemm_panels(void *arg, int64_t lo, int64_t hi)
{
    const gemm_job *j = arg;
    for (int64_t r = lo; r < hi; r++) {
        int64_t r0 = r * j->rows, r1 = r0 + j->rows < j->m ? r0 + j->rows : j->m;
        gemm_rows(j, r0, r1);
    }
}

void lgT_gemm(lg_ctx *ctx, lg_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
              double alpha, const void *a, int64_t lda, const void *b, int64_t ldb, double beta,
              void *c, int64_t ldc)
{
    if (m == 0 || n == 0)
        return;
    if (k == 0) { /* C = beta C, without asking BLAS about empty matrices */
        lgT_gemm_serial(dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    blas_one_thread();
    gemm_job j = { dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 1, m };
    double mnk = (double)m * (double)n * (double)k;
    /* small products, and 1 thread without the guarantee: one call */
    if (mnk < LGT_GEMM_PAR_MIN || m < 32 || (ctx->threads == 1 && !ctx->bitwise_threads)) {
        gemm_rows(&j, 0, m);
        return;
    }
    plan_panels(&j);
    if (ctx->threads == 1)
        gemm_panels(&j, 0, j.panels);
    else
        lgC_parallel(ctx, LGC_PAR_MIN, j.panels, gemm_panels, &j);
}

void lgT_blas_init(void)
{
    blas_one_thread();
}

void lgT_gemm_serial(lg_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                     const void *a, int64_t lda, const void *b, int64_t ldb, double beta, void *c,
                     int64_t ldc)
{
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        size_t es = lgT_dtype_size(dt);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                char *e = (char *)c + (size_t)(i * ldc + j) * es;
                if (dt == LG_F32)
                    *(float *)e = beta == 0 ? 0.0f : (float)beta * *(float *)e;
                else
                    *(double *)e = beta == 0 ? 0.0 : beta * *(double *)e;
            }
        return;
    }
    gemm_job j = { dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 1, 0 };
    gemm_rows(&j, 0, m);
}

const char *lg_blas_corename(void)
{
    return openblas_get_corename();
}

const char *lg_blas_config(void)
{
    return openblas_get_config();
}
