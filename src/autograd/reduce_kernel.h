/* reduce_kernel.h: the kernels of reduce.c for one element type, included
 * twice (T float with FN suffix f32, T double with f64). Expects T, FN(name)
 * and struct reduce_args. Each is an lgC_parallel range function over
 * output elements (or, for the mean's scale, over dx's elements); an
 * output's value depends only on its own inputs, so the split does not
 * change the bits. */

/* y[o], idx[o]: the first largest (is_max) or smallest of output o's
 * elements; a NaN wins and ends the scan. */
static void FN(extreme_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct reduce_args *a = arg;
    const lgT_reduce *p = a->p;
    const T *x = a->x;
    T *y = a->y;
    for (int64_t o = lo; o < hi; o++) {
        const T *xo = x + lgT_reduce_base(p, o);
        T best = xo[0];
        int64_t bi = 0;
        for (int64_t r = 1; r < p->rcount && best == best; r++) {
            T v = xo[lgT_roff(p, r)];
            if (v != v || (a->is_max ? v > best : v < best))
                best = v, bi = r;
        }
        y[o] = best;
        a->idx[o] = bi;
    }
}

/* y[o] = m + log sum exp(x - m) over output o's elements, in double. */
static void FN(lse_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct reduce_args *a = arg;
    const lgT_reduce *p = a->p;
    const T *x = a->x;
    T *y = a->y;
    for (int64_t o = lo; o < hi; o++) {
        const T *xo = x + lgT_reduce_base(p, o);
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
        y[o] = (T)(log(s) + m);
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
