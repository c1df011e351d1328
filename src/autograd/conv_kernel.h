/* conv_kernel.h: the column copies of convolution for one element type,
 * included twice by conv.c (T float with FN suffix f32, T double with
 * f64). Expects T, FN(name), conv_geom and struct conv_args.
 *
 * A column buffer holds one sample's group as [ck][oh ow], row
 * (c, ki, kj) holding the input values that kernel offset (ki, kj) of
 * channel c meets at each output position (0 in the padding). */

/* Output columns ox with 0 <= x0 + ox s < w: [*lo, *hi). */
static inline void FN(valid_cols)(int64_t x0, int64_t s, int64_t w, int64_t ow, int64_t *lo,
                                  int64_t *hi)
{
    int64_t a = x0 >= 0 ? 0 : (-x0 + s - 1) / s;
    int64_t b = x0 > w - 1 ? 0 : (w - 1 - x0) / s + 1;
    *lo = a < ow ? a : ow;
    *hi = b < ow ? b : ow;
    if (*hi < *lo)
        *hi = *lo;
}

/* x [cin_g][h][w] -> col [ck][oh ow] */
static inline __attribute__((always_inline)) void FN(im2col)(const conv_geom *g, const T *x,
                                                            T *col)
{
    int64_t ohw = g->oh * g->ow;
    for (int64_t c = 0; c < g->cin_g; c++)
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                T *row = col + ((c * g->kh + ki) * g->kw + kj) * ohw;
                const T *xc = x + c * g->h * g->w;
                int64_t x0 = kj * g->dw - g->pw, lo, hi;
                FN(valid_cols)(x0, g->sw, g->w, g->ow, &lo, &hi);
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    T *r = row + oy * g->ow;
                    int64_t iy = oy * g->sh - g->ph + ki * g->dh;
                    if (iy < 0 || iy >= g->h) {
                        for (int64_t ox = 0; ox < g->ow; ox++)
                            r[ox] = 0;
                        continue;
                    }
                    const T *xr = xc + iy * g->w; /* column x0 + ox s */
                    for (int64_t ox = 0; ox < lo; ox++)
                        r[ox] = 0;
                    if (g->sw == 1 && hi > lo)
                        memcpy(r + lo, xr + x0 + lo, (size_t)(hi - lo) * sizeof(T));
                    else
                        for (int64_t ox = lo; ox < hi; ox++)
                            r[ox] = xr[x0 + ox * g->sw];
                    for (int64_t ox = hi; ox < g->ow; ox++)
                        r[ox] = 0;
                }
            }
}

/* x [cin_g][h][w] = the sum of col's values at each input position (the
 * adjoint of im2col; x is overwritten). Each input element's terms are
 * added in the fixed order of the rows. */
static inline __attribute__((always_inline)) void FN(col2im)(const conv_geom *g, const T *col,
                                                            T *x)
{
    int64_t ohw = g->oh * g->ow;
    for (int64_t i = 0; i < g->cin_g * g->h * g->w; i++)
        x[i] = 0;
    for (int64_t c = 0; c < g->cin_g; c++)
        for (int64_t ki = 0; ki < g->kh; ki++)
            for (int64_t kj = 0; kj < g->kw; kj++) {
                const T *row = col + ((c * g->kh + ki) * g->kw + kj) * ohw;
                T *xc = x + c * g->h * g->w;
                int64_t x0 = kj * g->dw - g->pw, lo, hi;
                FN(valid_cols)(x0, g->sw, g->w, g->ow, &lo, &hi);
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    int64_t iy = oy * g->sh - g->ph + ki * g->dh;
                    if (iy < 0 || iy >= g->h)
                        continue;
                    const T *restrict r = row + oy * g->ow;
                    T *restrict xr = xc + iy * g->w + x0;
                    if (g->sw == 1) { /* contiguous: a vector loop */
                        LGC_SIMD
                        for (int64_t ox = lo; ox < hi; ox++)
                            xr[ox] += r[ox];
                    } else {
                        for (int64_t ox = lo; ox < hi; ox++)
                            xr[ox * g->sw] += r[ox];
                    }
                }
            }
}

/* One lane's samples [n0, n1) in the mode of a (conv.c). */
static inline __attribute__((always_inline)) void
FN(conv_lane)(const struct conv_args *a, int64_t lane, int64_t n0, int64_t n1)
{
    const conv_geom *g = a->g;
    int64_t ohw = g->oh * g->ow, hw = g->h * g->w;
    T *col = a->pointwise ? NULL : (T *)a->cols + lane * g->ck * ohw;
    const T *w = a->w;
    for (int64_t n = n0; n < n1; n++)
        for (int64_t gi = 0; gi < g->groups; gi++) {
            const T *wg = w + gi * g->cout_g * g->ck;
            T *big = (T *)a->big + (n * g->cin + gi * g->cin_g) * hw;
            T *small = (T *)a->small + (n * g->cout + gi * g->cout_g) * ohw;
            switch (a->mode) {
            case CONV_APPLY: { /* small = W (x) big + bias */
                const T *src = big;
                if (!a->pointwise) {
                    FN(im2col)(g, big, col);
                    src = col;
                }
                double beta = 0;
                if (a->bias) {
                    const T *b = (const T *)a->bias + gi * g->cout_g;
                    for (int64_t o = 0; o < g->cout_g; o++)
                        for (int64_t i = 0; i < ohw; i++)
                            small[o * ohw + i] = b[o];
                    beta = 1;
                }
                lgT_gemm_serial(a->dt, false, false, g->cout_g, ohw, g->ck, 1.0, wg, g->ck, src,
                                ohw, beta, small, ohw);
                break;
            }
            case CONV_ADJOINT: /* big = col2im(W^T small) */
                if (a->pointwise) {
                    lgT_gemm_serial(a->dt, true, false, g->ck, ohw, g->cout_g, 1.0, wg, g->ck,
                                    small, ohw, 0.0, big, ohw);
                } else {
                    lgT_gemm_serial(a->dt, true, false, g->ck, ohw, g->cout_g, 1.0, wg, g->ck,
                                    small, ohw, 0.0, col, ohw);
                    FN(col2im)(g, col, big);
                }
                break;
            case CONV_WGRAD: { /* part += small col(big)^T */
                const T *src = big;
                if (!a->pointwise) {
                    FN(im2col)(g, big, col);
                    src = col;
                }
                T *part = (T *)a->parts + lane * g->cout * g->ck + gi * g->cout_g * g->ck;
                lgT_gemm_serial(a->dt, false, true, g->cout_g, g->ck, ohw, 1.0, small, ohw, src,
                                ohw, n == n0 ? 0.0 : 1.0, part, g->ck);
                break;
            }
            }
        }
}

LGC_VECTOR_CLONES static void FN(conv_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct conv_args *a = arg;
    for (int64_t lane = lo; lane < hi; lane++)
        FN(conv_lane)(a, lane, lane * a->g->n / a->lanes, (lane + 1) * a->g->n / a->lanes);
}

/* Per channel c of [n][ch][plane]: out[c] (+)= the sum over n and the
 * plane, in double, in a fixed order. */
LGC_VECTOR_CLONES static void FN(channel_sums)(void *arg, int64_t lo, int64_t hi)
{
    const struct chan_args *a = arg;
    const T *x = a->x;
    T *out = a->out;
    for (int64_t c = lo; c < hi; c++) {
        double s = 0;
        for (int64_t n = 0; n < a->n; n++) {
            const T *p = x + (n * a->ch + c) * a->plane;
            LGC_SIMD_REDUCE(+ : s)
            for (int64_t i = 0; i < a->plane; i++)
                s += (double)p[i];
        }
        out[c] = (T)(a->accumulate ? out[c] + s : s);
    }
}

/* Per channel c: x[n][c][plane] += b[c] */
LGC_VECTOR_CLONES static void FN(channel_add)(void *arg, int64_t lo, int64_t hi)
{
    const struct chan_args *a = arg;
    T *x = (T *)a->x;
    const T *b = a->out;
    for (int64_t r = lo; r < hi; r++) {
        T *p = x + r * a->plane;
        T v = b[r % a->ch];
        for (int64_t i = 0; i < a->plane; i++)
            p[i] += v;
    }
}

/* dst (+)= the lanes' parts summed in lane order, over elements [lo, hi) */
static void FN(sum_parts)(void *arg, int64_t lo, int64_t hi)
{
    const struct parts_args *a = arg;
    const T *p = a->parts;
    T *d = a->dst;
    for (int64_t i = lo; i < hi; i++) {
        T s = p[i];
        for (int64_t l = 1; l < a->lanes; l++)
            s += p[l * a->size + i];
        d[i] = a->accumulate ? d[i] + s : s;
    }
}
