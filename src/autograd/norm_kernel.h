/* norm_kernel.h: the p = 2, last-axis norm of norm.c for one element type,
 * included twice (T float with FN suffix f32, T double with f64). Expects
 * T, FN(name) and struct l2_args. lgC_parallel range functions over rows
 * of R contiguous values, with norm_of's arithmetic (a double sum of
 * squares). */

/* y[o] = sqrt(sum_r x[o, r]^2) */
static void FN(l2_fw_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct l2_args *a = arg;
    const T *x = a->x;
    T *y = a->y;
    int64_t R = a->R;
    for (int64_t o = lo; o < hi; o++) {
        double s = 0;
        for (int64_t r = 0; r < R; r++)
            s += (double)x[o * R + r] * (double)x[o * R + r];
        y[o] = (T)sqrt(s);
    }
}

/* dx[o, r] = g[o] x[o, r] / y[o], 0 where y[o] == 0 */
static void FN(l2_bw_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct l2_args *a = arg;
    const T *x = a->x, *y = a->y, *g = a->g;
    T *dx = a->dx;
    int64_t R = a->R;
    for (int64_t o = lo; o < hi; o++) {
        double n = (double)y[o], k = n == 0 ? 0 : (double)g[o] / n;
        for (int64_t r = 0; r < R; r++)
            dx[o * R + r] = (T)(n == 0 ? 0 : k * (double)x[o * R + r]);
    }
}
