/* blas.c: the one file that includes cblas.h.
 *
 * Row-major gemm for both float types: OpenBLAS on one thread per call,
 * large products split over the ctx's threads here (see lgT_gemm).
 */
#include "tensor.h"

#include <cblas.h>
#include <pthread.h>
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

/* Split products keep one call's bits.
 *
 * A product cut into panels of C's rows gives exactly the bits of one call
 * when every panel starts at a multiple of the BLAS kernel's row granule:
 * OpenBLAS computes each element of C in an order that depends on where
 * its row falls in the kernel's tiles, not on the rest of the call (on
 * Zen and Haswell 0.3.21: 12 rows for sgemm, 2 for dgemm). The granule is
 * not exposed, so it is found once per process by trying candidates on
 * products that exercise each transpose, odd sizes, alpha and beta; 0 if
 * none holds (another BLAS or kernel). With a granule, 1 thread, 2 threads,
 * and a pool standing aside all give the same bits, and a product runs as
 * one call whenever it runs on one thread, the fastest there. */
enum { GRANULE_MAX = 64 };
static const int granule_candidates[] = { 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64 };

/* Fills n values in [-1, 1) from a xorshift state. */
static void probe_fill(lg_dtype dt, void *x, int64_t n, uint64_t *s)
{
    for (int64_t i = 0; i < n; i++) {
        *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
        double v = (double)(*s >> 11) * (1.0 / 9007199254740992.0) * 2 - 1;
        if (dt == LG_F32)
            ((float *)x)[i] = (float)v;
        else
            ((double *)x)[i] = v;
    }
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
    int64_t panels, g; /* the cut: panel_count(m) panels, granule g (0: none) */
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

enum { PROBE_M = 7 * GRANULE_MAX + 5, PROBE_N = 17, PROBE_K = 40 };

/* True if every probe product cut into panels of multiples of g rows
 * equals the whole call bit for bit. buf holds 3 PROBE_M x PROBE_K-sized
 * matrices and B. */
static bool granule_holds(lg_dtype dt, int g, unsigned char *buf)
{
    static const int ns[] = { 1, 3, 8, 17 }, ks[] = { 1, 7, 16, 40 };
    size_t es = lgT_dtype_size(dt);
    unsigned char *a = buf, *c1 = a + (size_t)PROBE_M * PROBE_K * es;
    unsigned char *c2 = c1 + (size_t)PROBE_M * PROBE_N * es,
                  *b = c2 + (size_t)PROBE_M * PROBE_N * es;
    uint64_t s = 88172645463325252u;
    for (int t = 0; t < 16; t++) {
        bool ta = t & 1, tb = t & 2;
        int64_t m = (int64_t)g * (3 + t % 5) + t % 7, n = ns[t % 4], k = ks[(t / 4) % 4];
        if (m > PROBE_M)
            m = PROBE_M;
        int64_t rows = (int64_t)g * (1 + t % 3), lda = ta ? m : k, ldb = tb ? k : n;
        double alpha = t % 3 ? 0.37 : 1.0, beta = t % 4 == 0 ? 0.0 : (t % 4 == 1 ? 1.0 : -0.5);
        probe_fill(dt, a, m * k, &s);
        probe_fill(dt, b, k * n, &s);
        probe_fill(dt, c1, m * n, &s);
        memcpy(c2, c1, (size_t)(m * n) * es);
        gemm_job whole = { dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c1, n, 1, 0 };
        gemm_job cut = whole;
        cut.c = c2;
        gemm_rows(&whole, 0, m);
        for (int64_t r0 = 0; r0 < m; r0 += rows)
            gemm_rows(&cut, r0, r0 + rows < m ? r0 + rows : m);
        if (memcmp(c1, c2, (size_t)(m * n) * es) != 0)
            return false;
    }
    return true;
}

/* The row granule for dt (see above), -1 until probed. Probed under a
 * mutex: several ctxs may make their first product at once. */
static int granule[2] = { -1, -1 };
static pthread_mutex_t granule_mu = PTHREAD_MUTEX_INITIALIZER;

static int row_granule(lg_ctx *ctx, lg_dtype dt)
{
    int i = dt == LG_F32 ? 0 : 1;
    int g = __atomic_load_n(&granule[i], __ATOMIC_ACQUIRE);
    if (g >= 0)
        return g;
    size_t es = lgT_dtype_size(dt);
    size_t bytes = ((size_t)PROBE_M * (PROBE_K + 2 * PROBE_N) + (size_t)PROBE_K * PROBE_N) * es;
    unsigned char *buf = lgC_raw_alloc(ctx, bytes);
    if (!buf)
        return 0; /* not cached: tried again at the next product */
    pthread_mutex_lock(&granule_mu);
    g = granule[i];
    for (size_t c = 0; g < 0 && c < sizeof granule_candidates / sizeof *granule_candidates; c++)
        if (granule_holds(dt, granule_candidates[c], buf))
            g = granule_candidates[c];
    if (g < 0)
        g = 0;
    __atomic_store_n(&granule[i], g, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&granule_mu);
    lgC_raw_free(ctx, buf, bytes);
    return g;
}

bool lg_threads_bitwise(lg_ctx *ctx, lg_dtype dt)
{
    if (!ctx || (dt != LG_F32 && dt != LG_F64))
        return false;
    blas_one_thread();
    return ctx->bitwise_threads || row_granule(ctx, dt) > 0;
}

/* How a product is cut when it is split over threads: P panels of C's
 * rows (panels of rows, not columns: column panels made the MLP's
 * products 15 % slower), about a quarter of the rows each, from 32 to 128
 * (a function of the shape only). With a granule g, panel r starts at
 * r m / P rounded to a multiple of g, so the panels differ by at most g
 * rows and the threads' shares stay even (equal panels rounded up to g
 * left 128 rows as 36 36 36 20); without one, at multiples of 16 (then 2
 * threads and 4 give the same bits, and 1 thread, one call, may differ
 * from them in the last bit). */
static int64_t panel_count(int64_t m)
{
    int64_t p = (m + 127) / 128, most = m / 32;
    p = p < 4 ? 4 : p;
    return p < most ? p : (most > 1 ? most : 1);
}

/* Where panel r starts (r = panels: m). */
static int64_t panel_start(const gemm_job *j, int64_t r)
{
    if (r >= j->panels)
        return j->m;
    if (j->g == 0) {
        int64_t rows = ((j->m + j->panels - 1) / j->panels + 15) / 16 * 16;
        return r * rows < j->m ? r * rows : j->m;
    }
    int64_t at = (r * j->m / j->panels + j->g / 2) / j->g * j->g;
    return at < j->m ? at : j->m;
}

/* Panels lo to hi: one call when the BLAS keeps split products' bits (a
 * granule), else one call a panel, so that the bits depend on the shape
 * only. */
static void gemm_panels(void *arg, int64_t lo, int64_t hi)
{
    const gemm_job *j = arg;
    if (j->g > 0) {
        gemm_rows(j, panel_start(j, lo), panel_start(j, hi));
        return;
    }
    for (int64_t r = lo; r < hi; r++)
        gemm_rows(j, panel_start(j, r), panel_start(j, r + 1));
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
    gemm_job j = { dt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, 1, 0 };
    double mnk = (double)m * (double)n * (double)k;
    if (ctx->threads == 1 || mnk < LGT_GEMM_PAR_MIN) { /* one call: the fastest on one thread */
        if (mnk >= LGT_GEMM_PAR_MIN && ctx->bitwise_threads && row_granule(ctx, dt) == 0) {
            /* a BLAS that does not keep split products' bits: the panels of
             * 2 threads and more, one call each, so that 1 thread gives
             * their bits too (lg_ctx_set_bitwise_threads) */
            j.panels = panel_count(m);
            gemm_panels(&j, 0, j.panels);
            return;
        }
        gemm_rows(&j, 0, m);
        return;
    }
    /* with a granule, whatever range of panels a thread gets is one call:
     * the whole product when the pool runs it serially (standing aside, or
     * its workers not there) */
    j.panels = panel_count(m), j.g = row_granule(ctx, dt);
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
