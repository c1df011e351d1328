/* softmax_kernel.h: softmax and log_softmax rows for one element type,
 * included twice by softmax.c (T float with FN suffix f32, T double with
 * f64). Expects T, FN(name) and struct softmax_args. lgC_parallel range
 * functions over output rows o (p->outn of them, each p->rcount values
 * st apart from lgT_reduce_base(p, o)); a row's sums are its own, so the
 * split does not change the bits. */

/* A contiguous float row (T float only): the maximum, the exponentials
 * by lgV_expf as a vector loop (kept in y), their sum in double. The
 * special values come out as in the general loop: a NaN makes the sum
 * and every result NaN, a +inf the maximum NaN, an all -inf row 0 / 0. */
static inline __attribute__((always_inline)) void FN(softmax_row_f)(const T *restrict x,
                                                                   T *restrict y, int64_t n,
                                                                   bool logy)
{
    float m = -INFINITY;
    LGC_SIMD_REDUCE(max : m)
    for (int64_t r = 0; r < n; r++)
        m = (float)x[r] > m ? (float)x[r] : m;
    if (isinf(m))
        m = m > 0 ? NAN : 0;
    double s = 0;
    LGC_SIMD_REDUCE(+ : s)
    for (int64_t r = 0; r < n; r++) {
        float e = lgV_expf((float)x[r] - m);
        if (!logy)
            y[r] = (T)e;
        s += (double)e;
    }
    if (!logy) {
        LGC_SIMD
        for (int64_t r = 0; r < n; r++)
            y[r] = (T)((double)y[r] / s);
        return;
    }
    double ls = log(s);
    LGC_SIMD
    for (int64_t r = 0; r < n; r++)
        y[r] = (T)((double)((float)x[r] - m) - ls);
}

LGC_VECTOR_CLONES static void FN(softmax_fw_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct softmax_args *a = arg;
    const lgT_reduce *p = a->p;
    const T *x = a->x;
    T *y = a->y;
    bool logy = a->logy;
    int64_t st = p->nr ? p->rstride[0] : 1, n = p->rcount;
    double ex[SOFTMAX_KEEP];
    for (int64_t o = lo; o < hi; o++) {
        int64_t b = lgT_reduce_base(p, o);
        const T *xo = x + b;
        T *yo = y + b;
        if (sizeof(T) == sizeof(float) && st == 1) {
            FN(softmax_row_f)(xo, yo, n, logy);
            continue;
        }
        double m = -INFINITY;
        for (int64_t r = 0; r < n; r++)
            if (xo[r * st] > m || xo[r * st] != xo[r * st])
                m = xo[r * st];
        /* a +inf makes the whole row NaN, as PyTorch's x - max; an all -inf
         * row gives NaN through -inf - log 0 */
        if (isinf(m))
            m = m > 0 ? NAN : 0;
        /* a short softmax row keeps its exponentials (one exp per element,
         * the same bits as computing them twice) */
        bool keep = !logy && n <= SOFTMAX_KEEP;
        double s = 0;
        for (int64_t r = 0; r < n; r++) {
            double e = exp((double)xo[r * st] - m);
            if (keep)
                ex[r] = e;
            s += e;
        }
        if (keep) {
            for (int64_t r = 0; r < n; r++)
                yo[r * st] = (T)(ex[r] / s);
            continue;
        }
        double ls = log(s);
        for (int64_t r = 0; r < n; r++) {
            double v = (double)xo[r * st] - m;
            yo[r * st] = (T)(logy ? v - ls : exp(v) / s);
        }
    }
}

LGC_VECTOR_CLONES static void FN(softmax_bw_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct softmax_args *a = arg;
    const lgT_reduce *p = a->p;
    const T *g = a->g, *y = a->x;
    T *dx = a->y;
    bool logy = a->logy;
    int64_t st = p->nr ? p->rstride[0] : 1, n = p->rcount;
    for (int64_t o = lo; o < hi; o++) {
        int64_t b = lgT_reduce_base(p, o);
        double s = 0;
        if (st == 1 && !logy) { /* a contiguous softmax row: vector loops */
            const T *restrict go = g + b, *restrict yo = y + b;
            T *restrict d = dx + b;
            LGC_SIMD_REDUCE(+ : s)
            for (int64_t r = 0; r < n; r++)
                s += (double)go[r] * (double)yo[r];
            LGC_SIMD
            for (int64_t r = 0; r < n; r++)
                d[r] = (T)(yo[r] * (go[r] - s));
            continue;
        }
        for (int64_t r = 0; r < n; r++)
            s += logy ? (double)g[b + r * st] : (double)g[b + r * st] * (double)y[b + r * st];
        for (int64_t r = 0; r < n; r++) {
            int64_t i = b + r * st;
            dx[i] = logy ? (T)(g[i] - exp((double)y[i]) * s) : (T)(y[i] * (g[i] - s));
        }
    }
}
