/* reduce_kernel.h: the kernels of reduce.c for one element type, included
 * twice (T float with FN suffix f32, T double with f64). Expects T, FN(name)
 * and struct reduce_args. Each is an lgC_parallel range function over
 * output elements (or, for the mean's scale, over dx's elements); an
 * output's value depends only on its own inputs, so the split does not
 * change the bits. */

/* The first largest (is_max) or smallest of an output's elements xo[roff(r)],
 * its index in *at; a NaN wins and ends the scan. */
static inline T FN(extreme_of)(const lgT_reduce *p, const T *xo, bool is_max, int64_t *at)
{
    T best = xo[0];
    int64_t bi = 0;
    for (int64_t r = 1; r < p->rcount && best == best; r++) {
        T v = xo[lgT_roff(p, r)];
        if (v != v || (is_max ? v > best : v < best))
            best = v, bi = r;
    }
    *at = bi;
    return best;
}

/* m + log sum exp(x - m) over an output's elements, in double. */
static inline T FN(lse_of)(const lgT_reduce *p, const T *xo)
{
    double m = -INFINITY;
    for (int64_t r = 0; r < p->rcount; r++) {
        double v = xo[lgT_roff(p, r)];
        if (v > m || v != v)
            m = v;
        if (m != m)
            break;
    }
    if (isinf(m))
        m = 0;
    double s = 0;
    for (int64_t r = 0; r < p->rcount; r++)
        s += exp((double)xo[lgT_roff(p, r)] - m);
    return (T)(log(s) + m);
}

/* y[o] (and idx[o]) for outputs [lo, hi): logsumexp if a->lse, else the
 * extreme. */
static void FN(rows_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct reduce_args *a = arg;
    const T *x = a->x;
    T *y = a->y;
    for (int64_t o = lo; o < hi; o++) {
        const T *xo = x + lgT_reduce_base(a->p, o);
        y[o] = a->lse ? FN(lse_of)(a->p, xo) : FN(extreme_of)(a->p, xo, a->is_max, &a->idx[o]);
    }
}

/* d[i] *= scale, the product taken in double. */
static void FN(scale_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct reduce_args *a = arg;
    T *d = a->y;
    double s = a->scale;
    for (int64_t i = lo; i < hi; i++)
        d[i] = (T)((double)d[i] * s);
}
