/* optim_kernel.h: the SGD, Adam/AdamW and RMSprop updates of optim.c for
 * one element type, included twice by core/instantiate.h (T float with FN
 * suffix f32, T double with f64).
 *
 * The arithmetic is T's, in the order of PyTorch's single-tensor loops
 * (torch/optim/sgd.py, adam.py, rmsprop.py, 1.13), the hyper-parameters
 * rounded to T once as PyTorch rounds a Python scalar for a float tensor:
 * a float32 run rounds where PyTorch's float32 run rounds. Each public
 * kernel picks, from the options, one instance of an inline loop whose
 * flags are constants, so no option is tested inside a loop and each loop
 * vectorises (cloned per vector width). */

static inline __attribute__((always_inline)) T FN(sqrt_t)(T x)
{
    return sizeof(T) == sizeof(float) ? (T)sqrtf((float)x) : (T)sqrt((double)x);
}

/* maximize: every kernel reads sg * g, sg = -1 or 1 (exact either way),
 * where PyTorch negates the gradient first. */

/* SGD: d = g (+ wd p); with momentum, buf = d on its first step (PyTorch's
 * clone), else buf mom + (1 - dampening) d, then d = buf, or d + mom buf
 * with nesterov; p -= lr d. */
static inline __attribute__((always_inline)) void
FN(sgd_loop)(T *restrict p, const T *restrict g, T *restrict buf, int64_t n, T lr, T wd, T mom,
             T damp, T sg, const bool WD, const bool MOM, const bool FRESH, const bool NESTEROV)
{
    for (int64_t j = 0; j < n; j++) {
        T gj = sg * g[j];
        T d = WD ? (T)(gj + wd * p[j]) : gj;
        if (MOM) {
            T b = FRESH ? d : (T)(buf[j] * mom + damp * d);
            buf[j] = b;
            d = NESTEROV ? (T)(d + mom * b) : b;
        }
        p[j] = (T)(p[j] - lr * d);
    }
}

LGC_VECTOR_CLONES static void FN(sgd)(const lgN_hyper *o, T *restrict p, const T *restrict g,
                                      T *restrict buf, int64_t n, bool fresh)
{
    const T lr = (T)o->lr, wd = (T)o->weight_decay, mom = (T)o->momentum,
            damp = (T)(1 - o->dampening), sg = o->maximize ? (T)-1 : (T)1;
    const bool WD = o->weight_decay != 0;
    if (!buf) {
        if (WD)
            FN(sgd_loop)(p, g, NULL, n, lr, wd, 0, 0, sg, true, false, false, false);
        else
            FN(sgd_loop)(p, g, NULL, n, lr, 0, 0, 0, sg, false, false, false, false);
    } else if (fresh) {
        if (o->nesterov)
            FN(sgd_loop)(p, g, buf, n, lr, wd, mom, damp, sg, WD, true, true, true);
        else
            FN(sgd_loop)(p, g, buf, n, lr, wd, mom, damp, sg, WD, true, true, false);
    } else if (o->nesterov) {
        if (WD)
            FN(sgd_loop)(p, g, buf, n, lr, wd, mom, damp, sg, true, true, false, true);
        else
            FN(sgd_loop)(p, g, buf, n, lr, 0, mom, damp, sg, false, true, false, true);
    } else {
        if (WD)
            FN(sgd_loop)(p, g, buf, n, lr, wd, mom, damp, sg, true, true, false, false);
        else
            FN(sgd_loop)(p, g, buf, n, lr, 0, mom, damp, sg, false, true, false, false);
    }
}

/* Adam / AdamW: p *= 1 - lr wd (AdamW) or d = g + wd p (Adam);
 * m = m b1 + (1 - b1) d, v = v b2 + (1 - b2) d d, s = v or max(vmax, v)
 * (amsgrad), p -= step_size m / (sqrt(s) / c + eps) with c = sqrt(1 - b2^t),
 * written m c / (sqrt(s) + eps c): one division, not two (within T's
 * rounding of PyTorch's form). */
static inline __attribute__((always_inline)) void
FN(adam_loop)(T *restrict p, const T *restrict g, T *restrict m, T *restrict v, T *restrict vmax,
              int64_t n, T b1, T b2, T shrink, T wd, T step_size, T c, T eps_c, T sg,
              const bool SHRINK, const bool WD, const bool AMS)
{
    const T b1c = (T)(1 - b1), b2c = (T)(1 - b2);
    for (int64_t j = 0; j < n; j++) {
        T pj = SHRINK ? (T)(p[j] * shrink) : p[j];
        T gj = sg * g[j];
        T d = WD ? (T)(gj + wd * p[j]) : gj;
        T mj = (T)(m[j] * b1 + b1c * d);
        T vj = (T)(v[j] * b2 + (T)(b2c * d) * d);
        m[j] = mj, v[j] = vj;
        T s = vj;
        if (AMS) {
            s = vmax[j] > vj ? vmax[j] : vj;
            vmax[j] = s;
        }
        T ratio = (T)((T)(mj * c) / (T)(FN(sqrt_t)(s) + eps_c));
        p[j] = (T)(pj - step_size * ratio);
    }
}

LGC_VECTOR_CLONES static void FN(adam)(const lgN_hyper *o, bool adamw, T *restrict p,
                                       const T *restrict g, T *restrict m, T *restrict v,
                                       T *restrict vmax, int64_t n, double step_size,
                                       double bc2_sqrt)
{
    const bool decay = o->weight_decay != 0;
    const T sg = o->maximize ? (T)-1 : (T)1;
    const T b1 = (T)o->beta1, b2 = (T)o->beta2, c = (T)bc2_sqrt, eps_c = (T)(o->eps * bc2_sqrt);
    const T shrink = (T)(1 - o->lr * o->weight_decay), wd = (T)o->weight_decay, ss = (T)step_size;
    const bool SHRINK = adamw && decay, WD = !adamw && decay;
    if (vmax)
        FN(adam_loop)(p, g, m, v, vmax, n, b1, b2, shrink, wd, ss, c, eps_c, sg, SHRINK, WD, true);
    else if (SHRINK)
        FN(adam_loop)
        (p, g, m, v, NULL, n, b1, b2, shrink, wd, ss, c, eps_c, sg, true, false, false);
    else if (WD)
        FN(adam_loop)
        (p, g, m, v, NULL, n, b1, b2, shrink, wd, ss, c, eps_c, sg, false, true, false);
    else
        FN(adam_loop)
        (p, g, m, v, NULL, n, b1, b2, shrink, wd, ss, c, eps_c, sg, false, false, false);
}

/* RMSprop: d = g (+ wd p); sq = sq alpha + (1 - alpha) d d; centered:
 * ga = ga alpha + (1 - alpha) d, avg = sqrt(sq - ga ga) + eps, else
 * sqrt(sq) + eps; with momentum buf = buf mom + d / avg, p -= lr buf, else
 * p -= lr d / avg. */
static inline __attribute__((always_inline)) void
FN(rmsprop_loop)(T *restrict p, const T *restrict g, T *restrict sq, T *restrict ga,
                 T *restrict buf, int64_t n, T lr, T wd, T alpha, T eps, T mom, T sg, const bool WD,
                 const bool CENTERED, const bool MOM)
{
    const T ac = (T)(1 - alpha);
    for (int64_t j = 0; j < n; j++) {
        T gj = sg * g[j];
        T d = WD ? (T)(gj + wd * p[j]) : gj;
        T s = (T)(sq[j] * alpha + (T)(ac * d) * d);
        sq[j] = s;
        T avg;
        if (CENTERED) {
            T a = (T)(ga[j] * alpha + ac * d);
            ga[j] = a;
            avg = (T)(FN(sqrt_t)((T)(s - a * a)) + eps);
        } else {
            avg = (T)(FN(sqrt_t)(s) + eps);
        }
        if (MOM) {
            T b = (T)(buf[j] * mom + (T)(d / avg));
            buf[j] = b;
            p[j] = (T)(p[j] - lr * b);
        } else {
            p[j] = (T)(p[j] - lr * (T)(d / avg));
        }
    }
}

LGC_VECTOR_CLONES static void FN(rmsprop)(const lgN_hyper *o, T *restrict p, const T *restrict g,
                                          T *restrict sq, T *restrict ga, T *restrict buf,
                                          int64_t n)
{
    const T lr = (T)o->lr, wd = (T)o->weight_decay, alpha = (T)o->alpha, eps = (T)o->eps,
            mom = (T)o->momentum, sg = o->maximize ? (T)-1 : (T)1;
    const bool WD = o->weight_decay != 0, C = ga != NULL, M = buf != NULL;
    /* the eight flag combinations, each its own loop */
    if (WD && C && M)
        FN(rmsprop_loop)(p, g, sq, ga, buf, n, lr, wd, alpha, eps, mom, sg, true, true, true);
    else if (WD && C)
        FN(rmsprop_loop)(p, g, sq, ga, NULL, n, lr, wd, alpha, eps, mom, sg, true, true, false);
    else if (WD && M)
        FN(rmsprop_loop)(p, g, sq, NULL, buf, n, lr, wd, alpha, eps, mom, sg, true, false, true);
    else if (WD)
        FN(rmsprop_loop)(p, g, sq, NULL, NULL, n, lr, wd, alpha, eps, mom, sg, true, false, false);
    else if (C && M)
        FN(rmsprop_loop)(p, g, sq, ga, buf, n, lr, 0, alpha, eps, mom, sg, false, true, true);
    else if (C)
        FN(rmsprop_loop)(p, g, sq, ga, NULL, n, lr, 0, alpha, eps, mom, sg, false, true, false);
    else if (M)
        FN(rmsprop_loop)(p, g, sq, NULL, buf, n, lr, 0, alpha, eps, mom, sg, false, false, true);
    else
        FN(rmsprop_loop)(p, g, sq, NULL, NULL, n, lr, 0, alpha, eps, mom, sg, false, false, false);
}
