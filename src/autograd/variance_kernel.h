/* variance_kernel.h: the kernels of variance.c for one element type,
 * included twice (T float with FN suffix f32, T double with f64). Expects
 * T, FN(name) and struct var_args. Each is an lgC_parallel range function
 * over output elements; an output's sums run over its own elements in a
 * fixed order, so the split does not change the bits. */

/* For outputs [lo, hi): m = sum x / n, then s = sum (x - m)^2 in double;
 * y = s / dof (var) or sqrt(s / dof) (std), NaN for an empty set. The mean
 * and the double statistic are kept for the backward. */
static void FN(var_fw_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct var_args *a = arg;
    const var_saved *v = a->v;
    const lgT_reduce *p = &v->p;
    const T *x = a->x;
    T *y = a->y;
    for (int64_t o = lo; o < hi; o++) {
        const T *xo = x + lgT_reduce_base(p, o);
        double s = 0;
        for (int64_t r = 0; r < p->rcount; r++)
            s += (double)xo[lgT_roff(p, r)];
        double m = s / (double)p->rcount, ss = 0;
        for (int64_t r = 0; r < p->rcount; r++) {
            double d = (double)xo[lgT_roff(p, r)] - m;
            ss += d * d;
        }
        double var = p->rcount == 0 ? NAN : ss / v->dof;
        double st = v->is_std ? sqrt(var) : var;
        v->mean[o] = m;
        v->stat[o] = st;
        y[o] = (T)st;
    }
}

/* For outputs [lo, hi): gv = g (var) or g / (2 std), 0 where std == 0
 * (std); dx = (2 / dof) gv (x - m), or gv inf where var_saved says so. */
static void FN(var_bw_range)(void *arg, int64_t lo, int64_t hi)
{
    const struct var_args *a = arg;
    const var_saved *v = a->v;
    const lgT_reduce *p = &v->p;
    const T *x = a->x, *g = a->g;
    T *dx = a->dx;
    for (int64_t o = lo; o < hi; o++) {
        double st = v->stat[o], gv = (double)g[o], m = v->mean[o];
        if (v->is_std)
            gv = st == 0 ? 0 : gv / (2 * st);
        double k = 2.0 / v->dof * gv;
        int64_t b = lgT_reduce_base(p, o);
        for (int64_t r = 0; r < p->rcount; r++) {
            int64_t i = b + lgT_roff(p, r);
            dx[i] = (T)(v->dof0_inf ? gv * INFINITY : k * ((double)x[i] - m));
        }
    }
}
