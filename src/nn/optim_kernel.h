/* optim_kernel.h: the SGD and Adam/AdamW updates of optim.c for one
 * element type, included twice (T float with FN suffix f32, T double with
 * f64). Expects T and FN(name). Plain loops, cloned per vector width. */

/* SGD over n elements of type T: the arithmetic of the generic version
 * (double, each state rounded to T when stored), a plain loop per case. */
LGC_VECTOR_CLONES static void FN(sgd)(const lg_optim *o, T *restrict p, const T *restrict g,
                                      T *restrict buf, int64_t n, bool fresh)
{
    const double lr = o->lr, wd = o->weight_decay, mom = o->momentum, damp = 1 - o->dampening;
    if (!buf && wd == 0) {
        for (int64_t j = 0; j < n; j++)
            p[j] = (T)((double)p[j] - lr * (double)g[j]);
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        double d = (double)g[j], pj = (double)p[j];
        if (wd != 0)
            d = d + wd * pj;
        if (buf) {
            T b = (T)(fresh ? d : (double)buf[j] * mom + damp * d);
            buf[j] = b;
            d = o->nesterov ? d + mom * (double)b : (double)b;
        }
        p[j] = (T)(pj - lr * d);
    }
}

/* One Adam/AdamW update of n elements of type T; the arithmetic is in
 * double, each state rounded to T when stored (as the generic loops
 * before), with the dtype fixed per loop so that the loop vectorises. */
LGC_VECTOR_CLONES static void FN(adam)(const lg_optim *o, T *restrict p, const T *restrict g,
                                       T *restrict m, T *restrict v, T *restrict vmax, int64_t n,
                                       double step_size, double bc2_sqrt)
{
    /* m / (sqrt(v) / c + eps) as m c / (sqrt(v) + eps c): one division, not two */
    const double b1 = o->beta1, b2 = o->beta2, eps_c = o->eps * bc2_sqrt;
    const double shrink = o->kind == LG_ADAMW ? 1 - o->lr * o->weight_decay : 1;
    const double wd = o->kind == LG_ADAMW ? 0 : o->weight_decay;
    if (!vmax && wd == 0) { /* the common case, without branches */
        for (int64_t j = 0; j < n; j++) {
            double d = (double)g[j];
            T mj = (T)((double)m[j] * b1 + (1 - b1) * d);
            T vj = (T)((double)v[j] * b2 + (1 - b2) * d * d);
            m[j] = mj, v[j] = vj;
            double ratio = (double)mj * bc2_sqrt / (sqrt((double)vj) + eps_c);
            p[j] = (T)((double)p[j] * shrink - step_size * ratio);
        }
        return;
    }
    for (int64_t j = 0; j < n; j++) {
        double pj = (double)p[j] * shrink;
        double d = wd != 0 ? (double)g[j] + wd * (double)p[j] : (double)g[j];
        T mj = (T)((double)m[j] * b1 + (1 - b1) * d);
        T vj = (T)((double)v[j] * b2 + (1 - b2) * d * d);
        m[j] = mj, v[j] = vj;
        T s = vj;
        if (vmax) {
            s = vmax[j] > vj ? vmax[j] : vj;
            vmax[j] = s;
        }
        double ratio = (double)mj * bc2_sqrt / (sqrt((double)s) + eps_c);
        p[j] = (T)(pj - step_size * ratio);
    }
}
