/* triplet_kernel.h: the fused triplet rows (p = 2, no swap) for one float
 * type, included twice by triplet.c (T = float, T = double). Expects T,
 * FN(name) (a name with the type's suffix) and triplet_saved.
 *
 * a, p, n are [rows, D]. Per row, u = a - p + eps and v = a - n + eps
 * (eps added in T, as the composite), d_ap = |u| and d_an = |v| from sums
 * of squares in double, rounded to T; the forward keeps both distances
 * for the backward.
 */

/* The driver's forward: rows [lo, hi); values into l (NONE) or their sum. */
LGC_VECTOR_CLONES static double FN(triplet_forward)(const lgL_fused *f, int64_t lo, int64_t hi,
                                                    void *lv, void *gx, double gscale)
{
    (void)gx, (void)gscale; /* not eager */
    const triplet_saved *s = f->saved;
    const T *a = f->in[0]->data, *p = f->in[1]->data, *n = f->in[2]->data;
    T *l = lv, margin = (T)s->margin, eps = (T)s->eps;
    int64_t D = s->D;
    double sum = 0;
    for (int64_t i = lo; i < hi; i++) {
        const T *ai = a + i * D, *pi = p + i * D, *ni = n + i * D;
        double su = 0, sv = 0;
        LGC_SIMD_REDUCE(+ : su, sv)
        for (int64_t j = 0; j < D; j++) {
            T u = (T)(ai[j] - pi[j]) + eps, v = (T)(ai[j] - ni[j]) + eps;
            su += (double)u * (double)u;
            sv += (double)v * (double)v;
        }
        T dap = (T)sqrt(su), dan = (T)sqrt(sv), pre = (T)(dap - dan) + margin;
        s->d[2 * i] = dap, s->d[2 * i + 1] = dan;
        T li = pre < 0 ? 0 : pre;
        if (l)
            l[i] = li;
        else
            sum += (double)li;
    }
    return sum;
}

/* Rows [lo, hi) of the gradients: where margin + d_ap - d_an >= 0 (clamp
 * passes its gradient at the bound), with k_u = g / d_ap and k_v = -g / d_an
 * (0 for a zero distance, as the norm's gradient),
 *   da = k_u u + k_v v,   dp = -k_u u,   dn = -k_v v.
 * The flags say which gradients are wanted; they are constants in each
 * instance, so no branch stays in the loop. */
static inline __attribute__((always_inline)) void
FN(triplet_grads)(const lgL_fused *f, int64_t lo, int64_t hi, const T *up, T g0, T *da, T *dp,
                  T *dn, const bool WA, const bool WP, const bool WN)
{
    const triplet_saved *s = f->saved;
    const T *a = f->in[0]->data, *p = f->in[1]->data, *n = f->in[2]->data;
    T margin = (T)s->margin, eps = (T)s->eps;
    int64_t D = s->D;
    for (int64_t i = lo; i < hi; i++) {
        const T *ai = a + i * D, *pi = p + i * D, *ni = n + i * D;
        T dap = (T)s->d[2 * i], dan = (T)s->d[2 * i + 1];
        T pre = (T)(dap - dan) + margin, gc = pre >= 0 ? (up ? up[i] : g0) : 0;
        double ku = dap == 0 ? 0 : (double)gc / (double)dap,
               kv = dan == 0 ? 0 : (double)-gc / (double)dan;
        LGC_SIMD /* the gradients are fresh tensors: no aliasing */
            for (int64_t j = 0; j < D; j++)
        {
            T u = (T)(ai[j] - pi[j]) + eps, v = (T)(ai[j] - ni[j]) + eps;
            T du = (T)(ku * (double)u), dv = (T)(kv * (double)v);
            if (WA)
                da[i * D + j] = dv + du;
            if (WP)
                dp[i * D + j] = -du;
            if (WN)
                dn[i * D + j] = -dv;
        }
    }
}

/* The driver's backward: d[0..2] for a, p, n, NULL where not wanted. */
LGC_VECTOR_CLONES static void FN(triplet_backward)(const lgL_fused *f, int64_t lo, int64_t hi,
                                                   const void *upv, double scale, void *const *d)
{
    const T *up = upv;
    T g0 = (T)scale, *da = d[0], *dp = d[1], *dn = d[2];
    switch ((da ? 1 : 0) + (dp ? 2 : 0) + (dn ? 4 : 0)) {
    case 1: FN(triplet_grads)(f, lo, hi, up, g0, da, dp, dn, 1, 0, 0); break;
    case 2: FN(triplet_grads)(f, lo, hi, up, g0, da, dp, dn, 0, 1, 0); break;
    case 3: FN(triplet_grads)(f, lo, hi, up, g0, da, dp, dn, 1, 1, 0); break;
    case 4: FN(triplet_grads)(f, lo, hi, up, g0, da, dp, dn, 0, 0, 1); break;
    case 5: FN(triplet_grads)(f, lo, hi, up, g0, da, dp, dn, 1, 0, 1); break;
    case 6: FN(triplet_grads)(f, lo, hi, up, g0, da, dp, dn, 0, 1, 1); break;
    case 7: FN(triplet_grads)(f, lo, hi, up, g0, da, dp, dn, 1, 1, 1); break;
    default: break;
    }
}
