/* normalization_kernel.h: layer, group and batch normalisation for one
 * element type, included twice by normalization.c (T float with FN suffix
 * f32, T double with f64). Expects T, FN(name), norm_plan and struct
 * norm_args. Statistics and sums are in double. */

/* The sum over n contiguous elements of x - c (sq: of (x - c)^2) in
 * double, as two vector reductions over the row's halves added at the
 * end, so that the additions' latency overlaps (a fixed order). */
static inline __attribute__((always_inline)) double FN(row_dev)(const T *restrict x, int64_t n,
                                                                 double c, bool sq)
{
    int64_t h = n / 2;
    double s0 = 0, s1 = 0;
    if (sq) {
        LGC_SIMD_REDUCE(+ : s0, s1)
        for (int64_t j = 0; j < h; j++) {
            double d0 = (double)x[j] - c, d1 = (double)x[h + j] - c;
            s0 += d0 * d0, s1 += d1 * d1;
        }
    } else {
        LGC_SIMD_REDUCE(+ : s0, s1)
        for (int64_t j = 0; j < h; j++)
            s0 += (double)x[j] - c, s1 += (double)x[h + j] - c;
    }
    if (n & 1) {
        double d = (double)x[n - 1] - c;
        s0 += sq ? d * d : d;
    }
    return s0 + s1;
}

/* Rows (layer and group norm): row r has p->len elements, cg segments of
 * sp elements, segment c using weight and bias k0 + c, k0 = (r % groups)
 * cg. Layer norm is one group whose segments are single elements
 * (weights per element): its loops run over the row with w[j]; group
 * norm's over each segment with its channel's constants. Range over rows:
 * each row's statistics are its own. */
LGC_VECTOR_CLONES static void FN(rows_fw)(void *arg, int64_t lo, int64_t hi)
{
    const struct norm_args *a = arg;
    const norm_plan *p = a->p;
    const T *restrict w = a->w, *restrict b = a->b;
    int64_t n = p->len;
    for (int64_t r = lo; r < hi; r++) {
        const T *restrict x = (const T *)a->x + r * n;
        T *restrict y = (T *)a->y + r * n;
        double m = FN(row_dev)(x, n, 0, false) / (double)n;
        double rs = 1 / sqrt(FN(row_dev)(x, n, m, true) / (double)n + p->eps);
        p->mean[r] = m, p->rstd[r] = rs;
        if (p->sp == 1 && p->groups == 1) { /* layer norm: a weight per element */
            T tm = (T)m, trs = (T)rs;
            if (w && b) {
                LGC_SIMD
                for (int64_t j = 0; j < n; j++)
                    y[j] = (x[j] - tm) * trs * w[j] + b[j];
            } else {
                LGC_SIMD
                for (int64_t j = 0; j < n; j++)
                    y[j] = (x[j] - tm) * trs * (w ? w[j] : (T)1) + (b ? b[j] : (T)0);
            }
            continue;
        }
        int64_t k0 = norm_widx(p, r, 0);
        for (int64_t c = 0; c < p->cg; c++) {
            double sc = rs * (w ? (double)w[k0 + c] : 1.0);
            double sh = (b ? (double)b[k0 + c] : 0.0) - m * sc;
            const T *restrict xs = x + c * p->sp;
            T *restrict ys = y + c * p->sp;
            LGC_SIMD
            for (int64_t i = 0; i < p->sp; i++)
                ys[i] = (T)((double)xs[i] * sc + sh);
        }
    }
}

/* Layer norm's backward pass over a row: the parts pw[j] += g xhat,
 * pb[j] += g (pw not NULL), and over the halves [0, hn) and [hn, 2 hn)
 * the sums of gw = g w and gw xhat into t[0], t[1] (first half) and t[2],
 * t[3] (second); hw (a constant where inlined): w is given. */
static inline __attribute__((always_inline)) void
FN(ln_row_sums)(const T *restrict x, const T *restrict g, const T *restrict w, bool hw,
                double *restrict pw, double *restrict pb, int64_t n, int64_t hn, double m,
                double rs, double t[4])
{
    double s1 = 0, s2 = 0, t1 = 0, t2 = 0;
    if (pw) {
        LGC_SIMD_REDUCE(+ : s1, s2, t1, t2)
        for (int64_t j = 0; j < hn; j++) {
            int64_t k = hn + j;
            double g0 = (double)g[j], h0 = ((double)x[j] - m) * rs;
            double g1 = (double)g[k], h1 = ((double)x[k] - m) * rs;
            pw[j] += g0 * h0, pb[j] += g0, pw[k] += g1 * h1, pb[k] += g1;
            double w0 = hw ? g0 * (double)w[j] : g0, w1 = hw ? g1 * (double)w[k] : g1;
            s1 += w0, s2 += w0 * h0, t1 += w1, t2 += w1 * h1;
        }
        LGC_SIMD
        for (int64_t j = 2 * hn; j < n; j++) { /* the rest (all of it when hn is 0) */
            pw[j] += (double)g[j] * (((double)x[j] - m) * rs);
            pb[j] += (double)g[j];
        }
    } else {
        LGC_SIMD_REDUCE(+ : s1, s2, t1, t2)
        for (int64_t j = 0; j < hn; j++) {
            int64_t k = hn + j;
            double h0 = ((double)x[j] - m) * rs, h1 = ((double)x[k] - m) * rs;
            double w0 = hw ? (double)g[j] * (double)w[j] : (double)g[j];
            double w1 = hw ? (double)g[k] * (double)w[k] : (double)g[k];
            s1 += w0, s2 += w0 * h0, t1 += w1, t2 += w1 * h1;
        }
    }
    t[0] = s1, t[1] = s2, t[2] = t1, t[3] = t2;
}

/* One row's backward: with xhat = (x - m) rs and gw = g w,
 * dx = rs (gw - mean(gw) - xhat mean(gw xhat)); and into the parts
 * pw[k] += g xhat, pb[k] += g (when pw is not NULL). */
static inline __attribute__((always_inline)) void
FN(row_bw)(const struct norm_args *a, int64_t r, double *restrict pw,
                       double *restrict pb)
{
    const norm_plan *p = a->p;
    const T *restrict w = a->w;
    int64_t n = p->len;
    const T *restrict x = (const T *)a->x + r * n, *restrict g = (const T *)a->g + r * n;
    T *restrict dx = a->dx ? (T *)a->dx + r * n : NULL;
    double m = p->mean[r], rs = p->rstd[r], s1 = 0, s2 = 0;
    if (p->sp == 1 && p->groups == 1) { /* layer norm (or one group of [N, C]) */
        /* one pass: the parts and, over the row's halves, the sums of gw
         * and gw xhat (two chains each, added at the end) */
        int64_t hn = dx ? n / 2 : 0;
        double t[4];
        if (w)
            FN(ln_row_sums)(x, g, w, true, pw, pb, n, hn, m, rs, t);
        else
            FN(ln_row_sums)(x, g, w, false, pw, pb, n, hn, m, rs, t);
        s1 = t[0], s2 = t[1];
        double t1 = t[2], t2 = t[3];
        if (!dx)
            return;
        if (n & 1) {
            double gw = (double)g[n - 1] * (w ? (double)w[n - 1] : 1.0);
            s1 += gw, s2 += gw * (((double)x[n - 1] - m) * rs);
        }
        s1 = (s1 + t1) / (double)n, s2 = (s2 + t2) / (double)n;
        /* dx = rs (g w - s1 - xhat s2) in T, as PyTorch's kernel */
        T tm = (T)m, trs = (T)rs, ts1 = (T)s1, ts2 = (T)s2;
        if (w) {
            LGC_SIMD
            for (int64_t j = 0; j < n; j++)
                dx[j] = trs * (g[j] * w[j] - ts1 - (x[j] - tm) * trs * ts2);
        } else {
            LGC_SIMD
            for (int64_t j = 0; j < n; j++)
                dx[j] = trs * (g[j] - ts1 - (x[j] - tm) * trs * ts2);
        }
        return;
    }
    int64_t k0 = norm_widx(p, r, 0);
    for (int64_t c = 0; c < p->cg; c++) { /* group norm: a weight per segment */
        const T *restrict xs = x + c * p->sp, *restrict gs = g + c * p->sp;
        double sg = 0, sgx = 0;
        LGC_SIMD_REDUCE(+ : sg, sgx)
        for (int64_t i = 0; i < p->sp; i++) {
            sg += (double)gs[i];
            sgx += (double)gs[i] * (double)xs[i];
        }
        double sgh = rs * (sgx - m * sg), wc = w ? (double)w[k0 + c] : 1.0;
        if (pw)
            pw[k0 + c] += sgh, pb[k0 + c] += sg;
        s1 += wc * sg, s2 += wc * sgh;
    }
    if (!dx)
        return;
    s1 /= (double)n, s2 /= (double)n;
    for (int64_t c = 0; c < p->cg; c++) {
        double wc = w ? (double)w[k0 + c] : 1.0;
        const T *restrict xs = x + c * p->sp, *restrict gs = g + c * p->sp;
        T *restrict ds = dx + c * p->sp;
        LGC_SIMD
        for (int64_t i = 0; i < p->sp; i++)
            ds[i] = (T)(rs * ((double)gs[i] * wc - s1 - (((double)xs[i] - m) * rs) * s2));
    }
}

/* Backward over blocks of rows [lo, hi): each row's dx (if asked), and the
 * block's sums of g xhat and g per weight index into its own part. */
LGC_VECTOR_CLONES static void FN(rows_bw)(void *arg, int64_t lo, int64_t hi)
{
    const struct norm_args *a = arg;
    const norm_plan *p = a->p;
    for (int64_t blk = lo; blk < hi; blk++) {
        double *pw = a->parts ? a->parts + blk * 2 * p->nw : NULL, *pb = pw ? pw + p->nw : NULL;
        if (pw)
            for (int64_t k = 0; k < 2 * p->nw; k++)
                pw[k] = 0;
        int64_t r0 = blk * p->rows / a->blocks, r1 = (blk + 1) * p->rows / a->blocks;
        for (int64_t r = r0; r < r1; r++)
            FN(row_bw)(a, r, pw, pb);
    }
}

/* Batch norm over channels [lo, hi): x is [outer][C][inner]; each
 * channel is outer contiguous runs of inner elements. Sums are vector
 * reductions in double (a fixed order); y = x scale + shift with
 * scale = w rstd, shift = b - mean scale (PyTorch's form). */
LGC_VECTOR_CLONES static void FN(bn_fw)(void *arg, int64_t lo, int64_t hi)
{
    const struct norm_args *a = arg;
    const norm_plan *p = a->p;
    const T *restrict x = a->x, *w = a->w, *b = a->b;
    T *restrict y = a->y;
    int64_t C = p->nw, in = p->inner, M = p->outer * p->inner;
    for (int64_t c = lo; c < hi; c++) {
        double m, rs;
        if (p->batch_stats) {
            double s = 0, v = 0;
            for (int64_t o = 0; o < p->outer; o++) {
                const T *restrict r = x + (o * C + c) * in;
                LGC_SIMD_REDUCE(+ : s)
                for (int64_t i = 0; i < in; i++)
                    s += (double)r[i];
            }
            m = s / (double)M;
            for (int64_t o = 0; o < p->outer; o++) {
                const T *restrict r = x + (o * C + c) * in;
                LGC_SIMD_REDUCE(+ : v)
                for (int64_t i = 0; i < in; i++)
                    v += ((double)r[i] - m) * ((double)r[i] - m);
            }
            rs = 1 / sqrt(v / (double)M + p->eps);
            if (a->rm) { /* running stats: the unbiased variance, as PyTorch */
                T *rm = a->rm, *rv = a->rv;
                rm[c] = (T)((1 - p->momentum) * (double)rm[c] + p->momentum * m);
                rv[c] =
                    (T)((1 - p->momentum) * (double)rv[c] + p->momentum * (v / (double)(M - 1)));
            }
        } else {
            const T *rm = a->rm, *rv = a->rv;
            m = (double)rm[c];
            rs = 1 / sqrt((double)rv[c] + p->eps);
        }
        p->mean[c] = m, p->rstd[c] = rs;
        double sc = rs * (w ? (double)w[c] : 1.0);
        T scale = (T)sc, shift = (T)((b ? (double)b[c] : 0.0) - m * sc);
        for (int64_t o = 0; o < p->outer; o++) {
            const T *restrict r = x + (o * C + c) * in;
            T *restrict yr = y + (o * C + c) * in;
            LGC_SIMD
            for (int64_t i = 0; i < in; i++)
                yr[i] = r[i] * scale + shift;
        }
    }
}

/* With xhat = (x - m) rs: sg = sum g, sgh = sum g xhat = rs (sum g x - m sg);
 * batch statistics: dx = w rs (g - sg/M - xhat sgh/M) = g A + x B + K;
 * running statistics: dx = g w rs. */
LGC_VECTOR_CLONES static void FN(bn_bw)(void *arg, int64_t lo, int64_t hi)
{
    const struct norm_args *a = arg;
    const norm_plan *p = a->p;
    const T *restrict x = a->x, *restrict g = a->g, *w = a->w;
    T *restrict dx = a->dx;
    int64_t C = p->nw, in = p->inner, M = p->outer * p->inner;
    for (int64_t c = lo; c < hi; c++) {
        double m = p->mean[c], rs = p->rstd[c], sg = 0, sgx = 0;
        for (int64_t o = 0; o < p->outer; o++) {
            const T *restrict gr = g + (o * C + c) * in, *restrict xr = x + (o * C + c) * in;
            LGC_SIMD_REDUCE(+ : sg, sgx)
            for (int64_t i = 0; i < in; i++) {
                sg += (double)gr[i];
                sgx += (double)gr[i] * (double)xr[i];
            }
        }
        double sgh = rs * (sgx - m * sg);
        if (a->parts)
            a->parts[c] = sgh, a->parts[C + c] = sg;
        if (!dx)
            continue;
        double wr = (w ? (double)w[c] : 1.0) * rs, A = wr, B = 0, K = 0;
        if (p->batch_stats && M > 0) {
            B = -wr * rs * sgh / (double)M;
            K = wr * (-sg / (double)M + m * rs * sgh / (double)M);
        }
        T ta = (T)A, tb = (T)B, tk = (T)K;
        for (int64_t o = 0; o < p->outer; o++) {
            const T *restrict gr = g + (o * C + c) * in, *restrict xr = x + (o * C + c) * in;
            T *restrict d = dx + (o * C + c) * in;
            LGC_SIMD
            for (int64_t i = 0; i < in; i++)
                d[i] = gr[i] * ta + xr[i] * tb + tk;
        }
    }
}

/* dst[k] (+)= the blocks' parts summed in block order (part kind off: 0
 * for g xhat, nw for g). */
static void FN(sum_blocks)(const struct norm_args *a, int off, T *dst, bool accumulate)
{
    const norm_plan *p = a->p;
    for (int64_t k = 0; k < p->nw; k++) {
        double s = 0;
        for (int64_t blk = 0; blk < a->blocks; blk++)
            s += a->parts[blk * 2 * p->nw + off + k];
        dst[k] = (T)(accumulate ? (double)dst[k] + s : s);
    }
}
