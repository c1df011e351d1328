/* pool_kernel.h: pooling over planes for one element type, included twice
 * by pool.c (T float with FN suffix f32, T double with f64). Expects T,
 * FN(name), pool_plan and struct pool_args. Range functions over planes
 * [lo, hi): each plane's outputs and gradients are its own, so the split
 * does not change the bits. */

/* One max window, scanned as PyTorch does: the first strictly larger
 * value, or any NaN, wins; its flat index into the plane goes to *ix. */
static inline __attribute__((always_inline)) T FN(max_window)(const T *restrict x, int64_t W,
                                                              int64_t h0, int64_t h1, int64_t dh,
                                                              int64_t w0, int64_t w1, int64_t dw,
                                                              int64_t *ix)
{
    int64_t best = h0 * W + w0;
    T m = -INFINITY;
    for (int64_t ih = h0; ih < h1; ih += dh)
        for (int64_t iw = w0; iw < w1; iw += dw) {
            T v = x[ih * W + iw];
            if (v > m || v != v) {
                m = v;
                best = ih * W + iw;
            }
        }
    *ix = best;
    return m;
}

/* One tap of the windows of outputs [c0, c1) of a row: tap ow reads
 * x[base + ow sw]; it replaces the running maximum yr[ow] (index ir[ow])
 * if strictly larger or NaN. */
static inline __attribute__((always_inline)) void FN(max_tap)(const T *restrict x, int64_t base,
                                                              int64_t sw, int64_t c0, int64_t c1,
                                                              T *restrict yr,
                                                              int64_t *restrict ir)
{
    const T *restrict xr = x + base;
    LGC_SIMD
    for (int64_t ow = c0; ow < c1; ow++) {
        T v = xr[ow * sw], m = yr[ow];
        bool up = (v > m) | (v != v);
        yr[ow] = up ? v : m;
        ir[ow] = up ? base + ow * sw : ir[ow];
    }
}

/* Over planes [lo, hi). Columns whose windows lie wholly inside the row
 * ([c0, c1)) are scanned for a whole output row at once, tap by tap in
 * the window's order, with selects (after a ReLU a branch on each
 * comparison is a coin toss); the rest window by window. */
LGC_VECTOR_CLONES static void FN(max_fw)(void *arg, int64_t lo, int64_t hi)
{
    const struct pool_args *a = arg;
    const pool_plan *p = a->p;
    const pool_dim *dwd = &p->dim[1];
    int64_t H = p->dim[0].in, W = dwd->in, OH = p->dim[0].out, OW = dwd->out;
    int64_t dh = p->dim[0].d, dw = dwd->d, sw = dwd->s, pw = dwd->p, kw = dwd->k;
    const int64_t *restrict hlo = p->lo[0], *restrict hhi = p->hi[0];
    const int64_t *restrict wlo = p->lo[1], *restrict whi = p->hi[1];
    /* window ow is interior when ow sw - pw >= 0 and ow sw - pw + span <= W - 1 */
    int64_t room = W - 1 - dw * (kw - 1) + pw;
    int64_t c1 = room < 0 ? 0 : room / sw + 1 < OW ? room / sw + 1 : OW;
    int64_t c0 = (pw + sw - 1) / sw < c1 ? (pw + sw - 1) / sw : c1;
    for (int64_t pl = lo; pl < hi; pl++) {
        const T *restrict x = (const T *)a->x + pl * H * W;
        T *restrict y = (T *)a->y + pl * OH * OW;
        int64_t *restrict ix = a->idx + pl * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = hlo[oh], h1 = hhi[oh];
            T *restrict yr = y + oh * OW;
            int64_t *restrict ir = ix + oh * OW;
            for (int64_t ow = 0; ow < OW; ow++) {
                if (ow == c0)
                    ow = c1;
                if (ow < OW)
                    yr[ow] = FN(max_window)(x, W, h0, h1, dh, wlo[ow], whi[ow], dw, &ir[ow]);
            }
            for (int64_t ow = c0; ow < c1; ow++)
                yr[ow] = -INFINITY, ir[ow] = h0 * W + ow * sw - pw;
            for (int64_t ih = h0; ih < h1; ih += dh)
                for (int64_t t = 0; t < kw; t++) {
                    int64_t base = ih * W + t * dw - pw;
                    if (sw == 2) /* a constant stride: loads without gathers */
                        FN(max_tap)(x, base, 2, c0, c1, yr, ir);
                    else if (sw == 1)
                        FN(max_tap)(x, base, 1, c0, c1, yr, ir);
                    else
                        FN(max_tap)(x, base, sw, c0, c1, yr, ir);
                }
        }
    }
}

static void FN(max_bw)(void *arg, int64_t lo, int64_t hi)
{
    const struct pool_args *a = arg;
    const pool_plan *p = a->p;
    int64_t HW = p->dim[0].in * p->dim[1].in, O = p->dim[0].out * p->dim[1].out;
    for (int64_t pl = lo; pl < hi; pl++) {
        T *dx = (T *)a->x + pl * HW;
        const T *g = (const T *)a->y + pl * O;
        const int64_t *ix = a->idx + pl * O;
        for (int64_t i = 0; i < HW; i++)
            dx[i] = 0;
        for (int64_t o = 0; o < O; o++)
            dx[ix[o]] += g[o];
    }
}

/* The divisor of window (oh, ow) of an average. */
static inline double FN(avg_div)(const pool_plan *p, int64_t oh, int64_t ow)
{
    if (p->divisor)
        return (double)p->divisor;
    if (p->include_pad)
        return (double)(p->full[0][oh] * p->full[1][ow]);
    return (double)((p->hi[0][oh] - p->lo[0][oh]) * (p->hi[1][ow] - p->lo[1][ow]));
}

static void FN(avg_fw)(void *arg, int64_t lo, int64_t hi)
{
    const struct pool_args *a = arg;
    const pool_plan *p = a->p;
    int64_t H = p->dim[0].in, W = p->dim[1].in, OH = p->dim[0].out, OW = p->dim[1].out;
    for (int64_t pl = lo; pl < hi; pl++) {
        const T *x = (const T *)a->x + pl * H * W;
        T *y = (T *)a->y + pl * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t h0 = p->lo[0][oh], h1 = p->hi[0][oh], w0 = p->lo[1][ow], w1 = p->hi[1][ow];
                if (h0 >= h1 || w0 >= w1) { /* a window wholly in the padding */
                    y[oh * OW + ow] = 0;
                    continue;
                }
                double s = 0;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++)
                        s += x[ih * W + iw];
                y[oh * OW + ow] = (T)(s / FN(avg_div)(p, oh, ow));
            }
    }
}

static void FN(avg_bw)(void *arg, int64_t lo, int64_t hi)
{
    const struct pool_args *a = arg;
    const pool_plan *p = a->p;
    int64_t H = p->dim[0].in, W = p->dim[1].in, OH = p->dim[0].out, OW = p->dim[1].out;
    for (int64_t pl = lo; pl < hi; pl++) {
        T *dx = (T *)a->x + pl * H * W;
        const T *g = (const T *)a->y + pl * OH * OW;
        for (int64_t i = 0; i < H * W; i++)
            dx[i] = 0;
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t h0 = p->lo[0][oh], h1 = p->hi[0][oh], w0 = p->lo[1][ow], w1 = p->hi[1][ow];
                if (h0 >= h1 || w0 >= w1)
                    continue;
                T gd = (T)(g[oh * OW + ow] / FN(avg_div)(p, oh, ow));
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++)
                        dx[ih * W + iw] += gd;
            }
    }
}
