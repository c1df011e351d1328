/* cross_entropy_kernel.h: the row kernels of cross_entropy with class
 * targets for one float type, included by cross_entropy.c (float with
 * vmath.h's exp and log, wide and narrow clones; double with libm).
 * Expects T, EXP, LOG, CLONES (LGC_VECTOR_CLONES or its narrow form),
 * FN(name) (a name with the instance's suffix) and ce_saved.
 *
 * A row of logits x (C classes), target y (-1 where ignored), weight w
 * (NULL: 1), p = softmax(x) = e / s with e = exp(x - max x):
 *   ce_row_forward: e, 1 / s, a = -w[y] lsm[y], b = -sum_c w_c lsm_c
 *   ce_row_grad:    dx_c = ka (1[c = y] - p_c) + kb (p_c W - w_c)
 * ce_forward and ce_backward run them over the driver's rows: each row's
 * loss from a and b (and p_y = e[y] inv_s), its gradient through ka and
 * kb (ce_row_ka). Another row loss on softmax changes only those: Poly-1's
 * + e1 (1 - p_y) has the gradient e1 p_y (p - onehot), so poly1_forward and
 * poly1_backward add -e1 p_y scale to ka (poly1_row_ka).
 */

/* e = exp(x - max), *inv_s = 1 / sum e, and a, b (b only when smooth;
 * both 0 where ignored). */
CLONES static void FN(ce_row_forward)(const T *x, T *e, int64_t C, int64_t y, const T *w,
                                      bool smooth, double *inv_s, double *a, double *b)
{
    T m = -INFINITY;
    LGC_SIMD_REDUCE(max : m)
    for (int64_t c = 0; c < C; c++)
        m = x[c] > m ? x[c] : m;
    if (C >= 1 && m == -INFINITY)
        m = 0; /* an all -inf row: lsm = -inf - log 0 = NaN below, as log_softmax */
    T s = 0;
    LGC_SIMD_REDUCE(+ : s)
    for (int64_t c = 0; c < C; c++) {
        e[c] = EXP((T)(x[c] - m));
        s += e[c];
    }
    *inv_s = (double)(1 / s);
    T l = (T)(m + LOG(s)); /* logsumexp */
    if (y < 0) {
        *a = 0, *b = 0;
        return;
    }
    T wy = w ? w[y] : (T)1;
    *a = (double)(T)(-wy * (T)(x[y] - l));
    *b = 0;
    if (smooth) {
        double acc = 0;
        LGC_SIMD_REDUCE(+ : acc)
        for (int64_t c = 0; c < C; c++)
            acc += (double)((w ? w[c] : (T)1) * (T)(x[c] - l));
        *b = -acc;
    }
}

/* dx = ka (onehot - p) + kb (p W - w), p = e inv_s (kb, W unused unless
 * smooth); dx may be e (in place). Ignored: 0, but NaN where softmax is
 * NaN, as log_softmax's backward. */
CLONES static void FN(ce_row_grad)(T *dx, const T *e, int64_t C, int64_t y, const T *w,
                                   double inv_s, T ka, T kb, T W, bool smooth)
{
    T is = (T)inv_s;
    if (y < 0) {
        for (int64_t c = 0; c < C; c++)
            dx[c] = (T)(0 * (e[c] * is));
        return;
    }
    T kp = (T)(-ka * is);
    if (!smooth) {
        for (int64_t c = 0; c < C; c++)
            dx[c] = (T)(kp * e[c]);
    } else if (!w) {
        for (int64_t c = 0; c < C; c++) {
            T p = (T)(e[c] * is);
            dx[c] = (T)(-ka * p + kb * (p * W - 1));
        }
    } else {
        for (int64_t c = 0; c < C; c++) {
            T p = (T)(e[c] * is);
            dx[c] = (T)(-ka * p + kb * (p * W - w[c]));
        }
    }
    dx[y] = (T)(dx[y] + ka);
}

/* The one-hot coefficient for an upstream `scale`: ka = (1 - eps) (-w[y])
 * scale (and kb = scale eps / C). */
static inline T FN(ce_row_ka)(const lgL_fused *f, const T *w, int64_t y, double scale)
{
    if (y < 0)
        return 0;
    T v = (T)(w ? -w[y] : -1);
    return (T)(scale * (1 - f->a[0]) * (double)v);
}

/* The driver's forward over rows [lo, hi): each row's exponentials into
 * its gradient when eager (then the gradient in place, while the row is
 * in cache), else into the saved state for the backward. NONE: each row's
 * l = (1 - eps) a + (eps / C) b. Else returns the sum of a, the block's
 * sum of b in the saved state (ce_total combines them). */
static double FN(ce_forward)(const lgL_fused *f, int64_t lo, int64_t hi, void *lv, void *gxv,
                             double gscale)
{
    const ce_saved *sv = f->saved;
    const T *x = f->in[0]->data, *w = f->in[2] ? f->in[2]->data : NULL;
    const int64_t *y = f->idx;
    int64_t C = sv->C;
    double eps = f->a[0];
    bool smooth = eps > 0;
    T *l = lv, *e = gxv ? gxv : sv->e;
    T kb = (T)(gscale * eps / (double)C), W = (T)sv->wsum;
    double sa = 0, sb = 0;
    for (int64_t i = lo; i < hi; i++) {
        T *ei = e + i * C;
        double a, b;
        FN(ce_row_forward)(x + i * C, ei, C, y[i], w, smooth, &sv->inv_s[i], &a, &b);
        if (l) /* each part rounded as the composite's */
            l[i] = (T)(smooth ? (1 - eps) * a + eps / (double)C * b : a);
        sa += a, sb += b;
        if (gxv) {
            T ka = FN(ce_row_ka)(f, w, y[i], gscale);
            FN(ce_row_grad)(ei, ei, C, y[i], w, sv->inv_s[i], ka, kb, W, smooth);
        }
    }
    if (!l)
        sv->part_b[lo / f->block] = sb; /* the smoothing part's block sum: ce_total */
    return sa;
}

/* Poly-1's one-hot coefficient for an upstream `scale`, p_y the target's
 * probability: CE's (1 - eps) (-w[y]) with -e1 p_y folded in, e1 =
 * epsilon (f->a[1]); kb is CE's. */
static inline T FN(poly1_row_ka)(const lgL_fused *f, const T *w, int64_t y, double p_y,
                                 double scale)
{
    double v = w ? -(double)w[y] : -1;
    return (T)(scale * ((1 - f->a[0]) * v - f->a[1] * p_y));
}

/* The backward of CE and Poly-1 over rows [lo, hi) (POLY a constant in
 * each caller: Poly-1 adds -e1 p_y to the one-hot coefficient). */
static inline __attribute__((always_inline)) void FN(rows_backward)(const lgL_fused *f, int64_t lo,
                                                                    int64_t hi, const void *upv,
                                                                    double scale, void *const *d,
                                                                    const bool POLY)
{
    const ce_saved *sv = f->saved;
    const T *e = sv->e, *up = upv, *w = f->in[2] ? f->in[2]->data : NULL;
    const int64_t *y = f->idx;
    int64_t C = sv->C;
    double eps = f->a[0];
    T *dx = d[0], W = (T)sv->wsum;
    if (!dx)
        return;
    for (int64_t i = lo; i < hi; i++) {
        double s = up ? (double)up[i] : scale;
        T ka = POLY ? FN(poly1_row_ka)(f, w, y[i], (double)e[i * C + y[i]] * sv->inv_s[i], s)
                    : FN(ce_row_ka)(f, w, y[i], s);
        T kb = (T)(s * eps / (double)C);
        FN(ce_row_grad)(dx + i * C, e + i * C, C, y[i], w, sv->inv_s[i], ka, kb, W, eps > 0);
    }
}

static void FN(ce_backward)(const lgL_fused *f, int64_t lo, int64_t hi, const void *upv,
                            double scale, void *const *d)
{
    FN(rows_backward)(f, lo, hi, upv, scale, d, false);
}

/* Poly-1 over rows [lo, hi): each row's CE from ce_row_forward plus
 * e1 (1 - p_y), p_y = e[y] inv_s (taken before the gradient overwrites e).
 * NONE: each row's value; else returns their sum (one sum per row: MEAN's
 * denominator is the row count, the driver's division). */
static double FN(poly1_forward)(const lgL_fused *f, int64_t lo, int64_t hi, void *lv, void *gxv,
                                double gscale)
{
    const ce_saved *sv = f->saved;
    const T *x = f->in[0]->data, *w = f->in[2] ? f->in[2]->data : NULL;
    const int64_t *y = f->idx;
    int64_t C = sv->C;
    double eps = f->a[0], e1 = f->a[1];
    bool smooth = eps > 0;
    T *l = lv, *e = gxv ? gxv : sv->e;
    T kb = (T)(gscale * eps / (double)C), W = (T)sv->wsum;
    double sum = 0;
    for (int64_t i = lo; i < hi; i++) {
        T *ei = e + i * C;
        double a, b;
        FN(ce_row_forward)(x + i * C, ei, C, y[i], w, smooth, &sv->inv_s[i], &a, &b);
        double p_y = (double)ei[y[i]] * sv->inv_s[i];
        double ce = smooth ? (1 - eps) * a + eps / (double)C * b : a;
        double li = ce + e1 * (1 - p_y);
        if (l)
            l[i] = (T)li;
        sum += li;
        if (gxv) {
            T ka = FN(poly1_row_ka)(f, w, y[i], p_y, gscale);
            FN(ce_row_grad)(ei, ei, C, y[i], w, sv->inv_s[i], ka, kb, W, smooth);
        }
    }
    return sum;
}

static void FN(poly1_backward)(const lgL_fused *f, int64_t lo, int64_t hi, const void *upv,
                               double scale, void *const *d)
{
    FN(rows_backward)(f, lo, hi, upv, scale, d, true);
}
