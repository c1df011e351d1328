/* reduce_kernel.h: the summing and expanding kernels of reduce.c for one
 * element type, included twice (T float with FN suffix f32, T double with
 * f64). Expects T, FN(name), struct sum_args, struct expand_args and
 * SUM_BLOCK. lgC_parallel range functions: an output's sum is taken in
 * the same order whatever the split, so results do not depend on the
 * thread count. */

/* The sum of n contiguous elements as a vector reduction in double. */
static inline __attribute__((always_inline)) double FN(run_sum)(const T *restrict x, int64_t n)
{
    double s = 0;
    LGC_SIMD_REDUCE(+ : s)
    for (int64_t j = 0; j < n; j++)
        s += (double)x[j];
    return s;
}

/* Part t of an inner-run sum, over [lo, hi): chunk t % nchunks of output
 * t / nchunks (SUM_CHUNK elements, the last one shorter). */
LGC_VECTOR_CLONES static void FN(sum_chunks)(void *arg, int64_t lo, int64_t hi)
{
    const struct sum_args *a = arg;
    const lgT_reduce *p = a->p;
    for (int64_t t = lo; t < hi; t++) {
        int64_t o = t / a->nchunks, c0 = t % a->nchunks * SUM_CHUNK;
        int64_t n = p->rcount - c0 < SUM_CHUNK ? p->rcount - c0 : SUM_CHUNK;
        a->parts[t] = FN(run_sum)((const T *)a->x + lgT_reduce_base(p, o) + c0, n);
    }
}

/* out[o] = sum of output o's elements in double, over outputs [lo, hi)
 * (over column blocks of SUM_BLOCK outputs when the kept dims are one
 * trailing run: input = [rcount][outn], summed row by row, the same order
 * per output as a column walk but streaming and vectorised). */
LGC_VECTOR_CLONES static void FN(sum_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct sum_args *a = arg;
    const lgT_reduce *p = a->p;
    const T *x = a->x;
    double *out = a->out;
    int64_t outn = p->outn, rc = p->rcount;
    if (p->inner_run) { /* chunk sums added in order, as lgT_reduce_sum's parts */
        for (int64_t o = lo; o < hi; o++) {
            const T *xo = x + lgT_reduce_base(p, o);
            double s = 0;
            for (int64_t c0 = 0; c0 < rc; c0 += SUM_CHUNK)
                s += FN(run_sum)(xo + c0, rc - c0 < SUM_CHUNK ? rc - c0 : SUM_CHUNK);
            out[o] = s;
        }
    } else if (p->outer_run) {
        for (int64_t b = lo; b < hi; b++) {
            int64_t o0 = b * SUM_BLOCK, o1 = o0 + SUM_BLOCK < outn ? o0 + SUM_BLOCK : outn;
            for (int64_t o = o0; o < o1; o++)
                out[o] = 0;
            for (int64_t r = 0; r < rc; r++) {
                const T *xr = x + r * outn;
                for (int64_t o = o0; o < o1; o++)
                    out[o] += xr[o];
            }
        }
    } else if (p->nr == 1) {
        int64_t st = p->rstride[0];
        for (int64_t o = lo; o < hi; o++) {
            const T *xo = x + lgT_reduce_base(p, o);
            double s = 0;
            for (int64_t r = 0; r < rc; r++)
                s += xo[r * st];
            out[o] = s;
        }
    } else {
        for (int64_t o = lo; o < hi; o++) {
            const T *xo = x + lgT_reduce_base(p, o);
            double s = 0;
            for (int64_t r = 0; r < rc; r++)
                s += xo[lgT_reduce_off(p, r)];
            out[o] = s;
        }
    }
}

/* dst[r, j] = src at its broadcast offset, over dst's rows [lo, hi). */
LGC_VECTOR_CLONES static void FN(expand_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct expand_args *a = arg;
    const lgT_iter *it = a->it;
    T *dst = a->dst;
    const T *src = a->src;
    int64_t inner = it->inner, s = it->stride[0][it->ndim - 1];
    for (int64_t r = lo; r < hi; r++) {
        int64_t off[3];
        lgT_iter_row(it, r, off);
        for (int64_t j = 0; j < inner; j++)
            dst[r * inner + j] = src[off[0] + j * s];
    }
}
