/* pool_kernel.h: pooling over planes for one element type, included twice
 * by pool.c (T float with FN suffix f32, T double with f64). Expects T,
 * FN(name), pool_plan and struct pool_args. Range functions over planes
 * [lo, hi): each plane's outputs and gradients are its own, so the split
 * does not change the bits. */

static void FN(max_fw)(void *arg, int64_t lo, int64_t hi)
{
    const struct pool_args *a = arg;
    const pool_plan *p = a->p;
    int64_t H = p->dim[0].in, W = p->dim[1].in, OH = p->dim[0].out, OW = p->dim[1].out;
    int64_t dh = p->dim[0].d, dw = p->dim[1].d;
    const int64_t *restrict hlo = p->lo[0], *restrict hhi = p->hi[0];
    const int64_t *restrict wlo = p->lo[1], *restrict whi = p->hi[1];
    for (int64_t pl = lo; pl < hi; pl++) {
        const T *restrict x = (const T *)a->x + pl * H * W;
        T *restrict y = (T *)a->y + pl * OH * OW;
        int64_t *restrict ix = a->idx + pl * OH * OW;
        for (int64_t oh = 0; oh < OH; oh++) {
            int64_t h0 = hlo[oh], h1 = hhi[oh];
            for (int64_t ow = 0; ow < OW; ow++) {
                int64_t w0 = wlo[ow], w1 = whi[ow];
                /* PyTorch's scan: the first strictly larger value, or any NaN */
                int64_t best = h0 * W + w0;
                T m = -INFINITY;
                for (int64_t ih = h0; ih < h1; ih += dh) {
                    const T *restrict xr = x + ih * W;
                    for (int64_t iw = w0; iw < w1; iw += dw) {
                        T v = xr[iw];
                        if (v > m || v != v) {
                            m = v;
                            best = ih * W + iw;
                        }
                    }
                }
                y[oh * OW + ow] = m;
                ix[oh * OW + ow] = best;
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
