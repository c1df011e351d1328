/* blas.c: the one file that includes cblas.h.
 *
 * Row-major gemm for both float types: OpenBLAS on one thread per call,
 * large products split over the ctx's threads here (see lgT_gemm).
 */
#include "tensor.h"

#include <cblas.h>

#define LGT_GEMM_PAR_MIN (1 << 21) /* m n k below which one thread does the product */

/* Declared by OpenBLAS's cblas.h in most builds; repeated for the others. */
char *openblas_get_corename(void);
char *openblas_get_config(void);
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

/* C's rows per OpenBLAS call when a product is split over threads: about
 * a quarter of them, in multiples of 16, from 32 to 128 (a function of the
 * shape only, so the bits do not depend on which thread runs a panel or
 * how many threads there are beyond one). Panels of rows, not columns:
 * column panels made the MLP's products 15 % slower. On one thread, and
 * below LGT_GEMM_PAR_MIN, a product is one call, the fastest (split
 * products round differently from whole ones in the last bit, so 1 and
 * 2 threads may differ there; 2 threads and 4 do not). */
static int64_t panel_rows(int64_t m)
{
    int64_t r = ((m + 3) / 4 + 15) / 16 * 16;
    return r < 32 ? 32 : (r > 128 ? 128 : r);
}

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
    int64_t rows; /* per panel */
} gemm_job;

/* Panel r of C, j->rows of its rows (op(A)'s rows with them: A's rows,
 * or A^T's columns), one OpenBLAS call. */
static void gemm_panel(const gemm_job *j, int64_t r)
{
    size_t es = lgT_dtype_size(j->dt);
    int64_t r0 = r * j->rows, r1 = r0 + j->rows < j->m ? r0 + j->rows : j->m, m = r1 - r0;
    const char *a = (const char *)j->a + (size_t)(j->ta ? r0 : r0 * j->lda) * es;
    char *c = (char *)j->c + (size_t)(r0 * j->ldc) * es;
    enum CBLAS_TRANSPOSE TA = j->ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE TB = j->tb ? CblasTrans : CblasNoTrans;
    if (j->dt == LG_F32)
        cblas_sgemm(CblasRowMajor, TA, TB, (blasint)m, (blasint)j->n, (blasint)j->k,
                    (float)j->alpha, (const float *)a, (blasint)j->lda, (const float *)j->b,
                    (blasint)j->ldb, (float)j->beta, (float *)c, (blasint)j->ldc);
    else
        cblas_dgemm(CblasRowMajor, TA, TB, (blasint)m, (blasint)j->n, (blasint)j->k, j->alpha,
                    (const double *)a, (blasint)j->lda, (const double *)j->b, (blasint)j->ldb,
                    j->beta, (double *)c, (blasint)j->ldc);
}

static void gemm_panels(void *arg, int64_t lo, int64_t hi)
{
    for (int64_t r = lo; r < hi; r++)
        gemm_panel(arg, r);
}

void lgT_gemm(lg_ctx *ctx, lg_dtype dt, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
              double alpha, const void *a, int64_t lda, const void *b, int64_t ldb, double beta,
              void *c, int64_t ldc)
{
    if (m == 0 || n == 0)
        return;
    if (k == 0) { /* C = beta C, without asking BLAS about empty matrices */
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
    gemm_job j = { dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, panel_rows(m) };
    /* OpenBLAS runs on one thread in every call: large products are cut
     * here into panels of C's rows split over the ctx's threads
     * (core/parallel.c), so that a busy core never holds up a product the
     * way OpenBLAS's own thread team does. */
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
    double mnk = (double)m * (double)n * (double)k;
    if (ctx->threads == 1 || mnk < LGT_GEMM_PAR_MIN) { /* one call: the fastest on one thread */
        j.rows = m;
        gemm_panel(&j, 0);
        return;
    }
    lgC_parallel(ctx, LGC_PAR_MIN, (m + j.rows - 1) / j.rows, gemm_panels, &j);
}

const char *lg_blas_corename(void)
{
    return openblas_get_corename();
}

const char *lg_blas_config(void)
{
    return openblas_get_config();
}
