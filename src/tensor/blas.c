/* blas.c: the one file that includes cblas.h.
 *
 * Row-major gemm for both float types, with the ctx's thread count given
 * to OpenBLAS before each call (OpenBLAS keeps one process-wide count).
 */
#include "tensor.h"

#include <cblas.h>

#define LGT_GEMM_PAR_MIN (1 << 21) /* m n k below which one thread does the product */

/* Declared by OpenBLAS's cblas.h in most builds; repeated for the others. */
char *openblas_get_corename(void);
char *openblas_get_config(void);
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);

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
    /* Small products run on one thread: waking OpenBLAS's pool costs more
     * than it saves, and its spinning workers would compete with ours. */
    int threads = (double)m * (double)n * (double)k < LGT_GEMM_PAR_MIN ? 1 : ctx->threads;
    if (openblas_get_num_threads() != threads)
        openblas_set_num_threads(threads);
    enum CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE TB = tb ? CblasTrans : CblasNoTrans;
    if (dt == LG_F32)
        cblas_sgemm(CblasRowMajor, TA, TB, (blasint)m, (blasint)n, (blasint)k, (float)alpha, a,
                    (blasint)lda, b, (blasint)ldb, (float)beta, c, (blasint)ldc);
    else
        cblas_dgemm(CblasRowMajor, TA, TB, (blasint)m, (blasint)n, (blasint)k, alpha, a,
                    (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

const char *lg_blas_corename(void)
{
    return openblas_get_corename();
}

const char *lg_blas_config(void)
{
    return openblas_get_config();
}
