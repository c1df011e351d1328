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

/* C's rows (or columns) per OpenBLAS call of a large product. The panels
 * are the same at any thread count, and each is one single-thread call,
 * so C's bits do not depend on the threads (a call's rounding depends on
 * the block it is given). */
enum { GEMM_PANEL = 128 };

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
    bool by_rows; /* split C's rows (else its columns) */
} gemm_job;

/* Panel r of C (GEMM_PANEL of its rows, or of its columns): op(A)'s rows
 * with C's rows, or op(B)'s columns with C's columns, one OpenBLAS call. */
static void gemm_panel(const gemm_job *j, int64_t r)
{
    size_t es = lgT_dtype_size(j->dt);
    int64_t dim = j->by_rows ? j->m : j->n, r0 = r * GEMM_PANEL,
            r1 = r0 + GEMM_PANEL < dim ? r0 + GEMM_PANEL : dim;
    int64_t m = j->m, n = j->n;
    const char *a = j->a, *b = j->b;
    char *c = j->c;
    if (j->by_rows) { /* A's rows, or A^T's columns */
        a += (size_t)(j->ta ? r0 : r0 * j->lda) * es;
        c += (size_t)(r0 * j->ldc) * es;
        m = r1 - r0;
    } else { /* B's columns, or B^T's rows */
        b += (size_t)(j->tb ? r0 * j->ldb : r0) * es;
        c += (size_t)r0 * es;
        n = r1 - r0;
    }
    enum CBLAS_TRANSPOSE TA = j->ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE TB = j->tb ? CblasTrans : CblasNoTrans;
    if (j->dt == LG_F32)
        cblas_sgemm(CblasRowMajor, TA, TB, (blasint)m, (blasint)n, (blasint)j->k, (float)j->alpha,
                    (const float *)a, (blasint)j->lda, (const float *)b, (blasint)j->ldb,
                    (float)j->beta, (float *)c, (blasint)j->ldc);
    else
        cblas_dgemm(CblasRowMajor, TA, TB, (blasint)m, (blasint)n, (blasint)j->k, j->alpha,
                    (const double *)a, (blasint)j->lda, (const double *)b, (blasint)j->ldb,
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
    gemm_job j = { dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, m >= n };
    /* OpenBLAS runs on one thread in every call: products are cut here into
     * panels of C's rows (or columns, when C is wider than tall), large ones
     * split over the ctx's threads (core/parallel.c), so that a busy core
     * never holds up a product the way OpenBLAS's own thread team does. */
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
    int64_t panels = ((j.by_rows ? m : n) + GEMM_PANEL - 1) / GEMM_PANEL;
    double mnk = (double)m * (double)n * (double)k;
    lgC_parallel(ctx, mnk >= LGT_GEMM_PAR_MIN ? LGC_PAR_MIN : 0, panels, gemm_panels, &j);
}

const char *lg_blas_corename(void)
{
    return openblas_get_corename();
}

const char *lg_blas_config(void)
{
    return openblas_get_config();
}
