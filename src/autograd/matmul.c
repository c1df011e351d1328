/* matmul.c: (batched) matrix product through BLAS, with transpose flags.
 *
 *   C = op(A) op(B) [+ bias],  op(A): [..., M, K],  op(B): [..., K, N],
 *   bias: [N] added to every row  ->  C: [..., M, N]
 *   dA = G op(B)^T  (stored as op(B) G^T when A is transposed)
 *   dB = op(A)^T G  (stored as G^T op(A) when B is transposed)
 *   dbias = G summed over its rows
 * The bias rides in the product (C starts as the bias rows, gemm adds with
 * beta 1) so a linear layer is one op: no separate sum to walk forward, no
 * copy of G for it backward.
 * Backward passes transpose flags to gemm and never copies a transpose.
 * B may be 2-D and shared by every batch of A; otherwise the batch shapes
 * must be equal. Flags are kept in y->attr.matmul.
 */
#include "autograd.h"

#include <limits.h>
#include <string.h>

typedef struct mm {
    int64_t batch, m, n, k;
    bool ta, tb, shared_b;
    int64_t lda, ldb; /* row lengths of A and B as stored */
} mm;

static bool plan(lg_ctx *ctx, const lg_tensor *a, const lg_tensor *b, bool ta, bool tb, mm *p,
                 int *ond, int64_t oshape[LG_MAX_DIMS])
{
    static const char who[] = "lg_matmul";
    char sa[160], sb[160];
    lgT_shape_str(a, sa, sizeof sa);
    lgT_shape_str(b, sb, sizeof sb);
    if (a->ndim < 2 || b->ndim < 2) {
        lgC_error(ctx, LG_ERR_SHAPE, "%s: a is %s and b is %s, expected at least 2 dims each", who,
                  sa, sb);
        return false;
    }
    int an = a->ndim, bn = b->ndim;
    p->ta = ta;
    p->tb = tb;
    p->m = ta ? a->shape[an - 1] : a->shape[an - 2];
    p->k = ta ? a->shape[an - 2] : a->shape[an - 1];
    int64_t kb = tb ? b->shape[bn - 1] : b->shape[bn - 2];
    p->n = tb ? b->shape[bn - 2] : b->shape[bn - 1];
    p->lda = a->shape[an - 1];
    p->ldb = b->shape[bn - 1];
    if (kb != p->k) {
        lgC_error(ctx, LG_ERR_SHAPE,
                  "%s: inner sizes differ: op(a) of %s has K = %lld, op(b) of %s has K = %lld", who,
                  sa, (long long)p->k, sb, (long long)kb);
        return false;
    }
    p->shared_b = bn == 2;
    if (!p->shared_b) {
        bool same = an == bn;
        for (int d = 0; same && d < an - 2; d++)
            same = a->shape[d] == b->shape[d];
        if (!same) {
            lgC_error(ctx, LG_ERR_SHAPE,
                      "%s: batch shapes of a %s and b %s differ (b must be 2-D or match a)", who,
                      sa, sb);
            return false;
        }
    }
    if (p->m > INT_MAX || p->n > INT_MAX || p->k > INT_MAX) {
        lgC_error(ctx, LG_ERR_SHAPE, "%s: a matrix side exceeds BLAS's int range", who);
        return false;
    }
    p->batch = 1;
    for (int d = 0; d < an - 2; d++) {
        p->batch *= a->shape[d];
        oshape[d] = a->shape[d];
    }
    oshape[an - 2] = p->m;
    oshape[an - 1] = p->n;
    *ond = an;
    return true;
}

static const char *at(const lg_tensor *t, int64_t elem)
{
    return (const char *)t->data + elem * (int64_t)lgT_dtype_size((lg_dtype)t->dtype);
}

lg_tensor *lg_matmul_bias(lg_ctx *ctx, lg_tensor *a, lg_tensor *b, lg_tensor *bias, bool trans_a,
                          bool trans_b)
{
    static const char who[] = "lg_matmul";
    if (!ctx || !lgT_ok_float(ctx, a, who, "a") || !lgT_ok_float(ctx, b, who, "b") ||
        !lgT_same_dtype(ctx, a, b, who) || (bias && !lgT_ok_float(ctx, bias, who, "bias")))
        return NULL;
    mm p;
    int ond;
    int64_t oshape[LG_MAX_DIMS];
    if (!plan(ctx, a, b, trans_a, trans_b, &p, &ond, oshape))
        return NULL;
    if (bias && (bias->dtype != a->dtype || bias->ndim != 1 || bias->shape[0] != p.n)) {
        char sh[160];
        lgT_shape_str(bias, sh, sizeof sh);
        return lgC_error(ctx, bias->dtype != a->dtype ? LG_ERR_DTYPE : LG_ERR_SHAPE,
                         "%s: bias is %s %s, expected %s [%lld] (one value per column of the "
                         "product)",
                         who, lgT_dtype_name((lg_dtype)bias->dtype), sh,
                         lgT_dtype_name((lg_dtype)a->dtype), (long long)p.n);
    }
    lg_tensor *y = lgT_new(ctx, (lg_dtype)a->dtype, ond, oshape, who);
    if (!y)
        return NULL;
    lg_dtype dt = (lg_dtype)a->dtype;
    size_t es = lgT_dtype_size(dt), row = (size_t)p.n * es;
    double beta = 0.0;
    if (bias && y->numel > 0) { /* every row starts as the bias; the products add to it */
        for (int64_t i = 0; i < p.batch * p.m; i++)
            memcpy((char *)y->data + (size_t)i * row, bias->data, row);
        beta = 1.0;
    }
    if (y->numel == 0) {
        /* an empty product: nothing to write (its batch may still count 2^60) */
    } else if (p.k == 0) {
        if (!bias)
            lgT_fill(y, 0.0);
    } else if (p.shared_b && !p.ta) { /* one gemm over [batch*M, K] */
        lgT_gemm(ctx, dt, false, p.tb, p.batch * p.m, p.n, p.k, 1.0, a->data, p.lda, b->data, p.ldb,
                 beta, y->data, p.n);
    } else {
        for (int64_t i = 0; i < p.batch; i++)
            lgT_gemm(ctx, dt, p.ta, p.tb, p.m, p.n, p.k, 1.0, at(a, i * p.m * p.k), p.lda,
                     at(b, p.shared_b ? 0 : i * p.k * p.n), p.ldb, beta,
                     (char *)y->data + (size_t)(i * p.m * p.n) * es, p.n);
    }
    y->attr.matmul.trans_a = trans_a;
    y->attr.matmul.trans_b = trans_b;
    return lgA_record(ctx, LGA_OP_matmul, y, bias ? 3 : 2, (lg_tensor *[]){ a, b, bias });
}

lg_tensor *lg_matmul_t(lg_ctx *ctx, lg_tensor *a, lg_tensor *b, bool trans_a, bool trans_b)
{
    return lg_matmul_bias(ctx, a, b, NULL, trans_a, trans_b);
}

lg_tensor *lg_matmul(lg_ctx *ctx, lg_tensor *a, lg_tensor *b)
{
    return lg_matmul_t(ctx, a, b, false, false);
}

lg_status lgA_bw_matmul(lg_ctx *ctx, lg_tensor *y)
{
    lg_tensor *a = y->in[0], *b = y->in[1], *g = y->grad;
    mm p;
    int ond;
    int64_t oshape[LG_MAX_DIMS];
    plan(ctx, a, b, y->attr.matmul.trans_a, y->attr.matmul.trans_b, &p, &ond, oshape);
    lg_dtype dt = (lg_dtype)a->dtype;
    size_t es = lgT_dtype_size(dt);
    int64_t sa = p.m * p.k, sb = p.shared_b ? 0 : p.k * p.n, sg = p.m * p.n;
    /* an empty G or K = 0: every gradient is 0 (or empty), with no loop over
     * a batch that may count 2^60 */
    bool work = y->numel > 0 && p.k > 0;
    /* A gradient that exists already (a parameter's, or a tensor used
     * twice, like a recurrent state) takes the product directly (beta 1);
     * otherwise a fresh tensor is written (beta 0) and adopted. */
    if (lgA_needs(y, 0)) {
        bool direct = a->grad || a->persistent;
        lg_tensor *da = direct ? lgA_grad_buffer(ctx, a)
                        : work ? lgT_new_like(ctx, a, "lg_backward")
                               : lgT_zeros_like(ctx, a, "lg_backward");
        if (!da)
            return ctx->status;
        double beta = direct ? 1.0 : 0.0;
        for (int64_t i = 0; work && i < p.batch; i++) {
            char *dai = (char *)da->data + (size_t)(i * sa) * es;
            if (!p.ta) /* dA[M,K] = G[M,N] op(B)^T */
                lgT_gemm(ctx, dt, false, !p.tb, p.m, p.k, p.n, 1.0, at(g, i * sg), p.n,
                         at(b, i * sb), p.ldb, beta, dai, p.k);
            else /* dA[K,M] = op(B)[K,N] G^T */
                lgT_gemm(ctx, dt, p.tb, true, p.k, p.m, p.n, 1.0, at(b, i * sb), p.ldb,
                         at(g, i * sg), p.n, beta, dai, p.m);
        }
        if (!direct && lgA_accum(ctx, a, da) != LG_OK)
            return ctx->status;
    }
    if (lgA_needs(y, 1)) {
        bool direct = b->grad || b->persistent;
        lg_tensor *db = direct ? lgA_grad_buffer(ctx, b) : lgT_zeros_like(ctx, b, "lg_backward");
        if (!db)
            return ctx->status;
        if (!work) {
            /* zeros already, or the existing gradient unchanged */
        } else if (p.shared_b && !p.ta && !p.tb) { /* dB[K,N] = A^T G over all rows */
            lgT_gemm(ctx, dt, true, false, p.k, p.n, p.batch * p.m, 1.0, a->data, p.lda, g->data,
                     p.n, direct ? 1.0 : 0.0, db->data, p.n);
        } else {
            for (int64_t i = 0; i < p.batch; i++) {
                char *dbi = (char *)db->data + (size_t)(i * sb) * es;
                double beta = direct || p.shared_b ? 1.0 : 0.0;
                if (!p.tb) /* dB[K,N] = op(A)^T G */
                    lgT_gemm(ctx, dt, !p.ta, false, p.k, p.n, p.m, 1.0, at(a, i * sa), p.lda,
                             at(g, i * sg), p.n, beta, dbi, p.n);
                else /* dB[N,K] = G^T op(A) */
                    lgT_gemm(ctx, dt, true, p.ta, p.n, p.k, p.m, 1.0, at(g, i * sg), p.n,
                             at(a, i * sa), p.lda, beta, dbi, p.k);
            }
        }
        if (!direct && lgA_accum(ctx, b, db) != LG_OK)
            return ctx->status;
    }
    /* the bias: G's column sums (G is y's own gradient: never adopted) */
    if (y->nin == 3 && lgA_needs(y, 2) && lgA_accum_shared(ctx, y->in[2], g) != LG_OK)
        return ctx->status;
    return LG_OK;
}

/* Taped: the same products with ops, a transposed operand's gradient
 * taken transposed by the product itself (no transpose copy); a shared B's
 * is summed over the batch (lgA_taccum), and so is the bias's. */
lg_status lgA_tbw_matmul(lg_ctx *ctx, lg_tensor *y, lg_tensor *g)
{
    lg_tensor *a = y->in[0], *b = y->in[1];
    bool ta = y->attr.matmul.trans_a, tb = y->attr.matmul.trans_b;
    if (lgA_tneeds(y, 0)) { /* dA = G op(B)^T [..., M, K], or op(B) G^T [..., K, M] if ta */
        lg_tensor *da;
        if (!ta)
            da = lg_matmul_t(ctx, g, b, false, !tb);
        else if (b->ndim >= g->ndim)
            da = lg_matmul_t(ctx, b, g, tb, true);
        else /* a shared 2-D B cannot lead a product with a batched G */
            da = lg_transpose(ctx, lg_matmul_t(ctx, g, b, false, !tb), -1, -2);
        if (lgA_taccum(ctx, a, da) != LG_OK)
            return ctx->status;
    }
    if (lgA_tneeds(y, 1)) { /* dB = op(A)^T G [..., K, N], or G^T op(A) [..., N, K] if tb */
        lg_tensor *db = tb ? lg_matmul_t(ctx, g, a, true, ta) : lg_matmul_t(ctx, a, g, !ta, false);
        if (lgA_taccum(ctx, b, db) != LG_OK)
            return ctx->status;
    }
    if (y->nin == 3 && lgA_tneeds(y, 2) && lgA_taccum(ctx, y->in[2], g) != LG_OK)
        return ctx->status;
    return LG_OK;
}
