/* optim_more_kernel.h: the Adagrad, Adadelta, Adamax, RAdam, Rprop, NAdam
 * and ASGD updates of optim.c for one element type, included twice by
 * core/instantiate.h (T float with FN suffix f32, T double with f64).
 *
 * As optim_kernel.h: T's arithmetic in the order of PyTorch 1.13's
 * single-tensor loops (torch/optim/adagrad.py, adadelta.py, adamax.py,
 * radam.py, rprop.py, nadam.py, asgd.py), each Python scalar rounded to T once where PyTorch
 * hands it to a tensor op, the gradient read as sg g (sg = -1 under
 * maximize). These loops test their options inside: they are not the hot
 * path of any bench case, and each is still one pass over the parameter. */

/* Adagrad: d = g (+ wd p); sum += d d (from initial_accumulator_value);
 * p -= clr d / (sqrt(sum) + eps), clr = lr / (1 + (step - 1) lr_decay). */
static void FN(adagrad)(const lgN_hyper *o, T *restrict p, const T *restrict g, T *restrict sum,
                        int64_t n, double step, bool fresh)
{
    const T sg = o->maximize ? (T)-1 : (T)1, wd = (T)o->weight_decay, eps = (T)o->eps;
    const T nclr = (T)(-(o->lr / (1 + (step - 1) * o->lr_decay)));
    const bool WD = o->weight_decay != 0;
    if (fresh)
        for (int64_t j = 0; j < n; j++)
            sum[j] = (T)o->initial_accumulator_value;
    for (int64_t j = 0; j < n; j++) {
        T gj = sg * g[j];
        T d = WD ? (T)(gj + wd * p[j]) : gj;
        T s = (T)(sum[j] + d * d);
        sum[j] = s;
        T std = (T)(FN(sqrt_t)(s) + eps);
        p[j] = (T)(p[j] + nclr * (T)(d / std));
    }
}

/* Adadelta: sq = sq rho + (1 - rho) d d; delta = sqrt(acc + eps) /
 * sqrt(sq + eps) d; acc = acc rho + (1 - rho) delta delta; p -= lr delta. */
static void FN(adadelta)(const lgN_hyper *o, T *restrict p, const T *restrict g, T *restrict sq,
                         T *restrict acc, int64_t n)
{
    const T sg = o->maximize ? (T)-1 : (T)1, wd = (T)o->weight_decay, eps = (T)o->eps;
    const T rho = (T)o->rho, rc = (T)(1 - o->rho), nlr = (T)(-o->lr);
    const bool WD = o->weight_decay != 0;
    for (int64_t j = 0; j < n; j++) {
        T gj = sg * g[j];
        T d = WD ? (T)(gj + wd * p[j]) : gj;
        T s = (T)(sq[j] * rho + (T)(rc * d) * d);
        sq[j] = s;
        T std = FN(sqrt_t)((T)(s + eps));
        T delta = (T)((T)(FN(sqrt_t)((T)(acc[j] + eps)) / std) * d);
        acc[j] = (T)(acc[j] * rho + (T)(rc * delta) * delta);
        p[j] = (T)(p[j] + nlr * delta);
    }
}

/* Adamax: m = m b1 + (1 - b1) d; u = max(u b2, |d| + eps) (NaN if either
 * is, as amax); p -= lr / (1 - b1^step) m / u. */
static void FN(adamax)(const lgN_hyper *o, T *restrict p, const T *restrict g, T *restrict m,
                       T *restrict u, int64_t n, double step)
{
    const T sg = o->maximize ? (T)-1 : (T)1, wd = (T)o->weight_decay, eps = (T)o->eps;
    const T b1 = (T)o->beta1, b1c = (T)(1 - o->beta1), b2 = (T)o->beta2;
    const T nclr = (T)(-(o->lr / (1 - pow(o->beta1, step))));
    const bool WD = o->weight_decay != 0;
    for (int64_t j = 0; j < n; j++) {
        T gj = sg * g[j];
        T d = WD ? (T)(gj + wd * p[j]) : gj;
        T mj = (T)(m[j] * b1 + b1c * d);
        m[j] = mj;
        T a = (T)(u[j] * b2), b = (T)((d < 0 ? -d : d) + eps);
        T uj = a != a ? a : b != b ? b : a > b ? a : b;
        u[j] = uj;
        p[j] = (T)(p[j] + nclr * (T)(mj / uj));
    }
}

/* RAdam: m, v as Adam's; mhat = m / (1 - b1^t); with rho_t > 5 the
 * rectified step p -= mhat lr (sqrt(1 - b2^t) / (sqrt(v) + eps)) rect,
 * else p -= mhat lr. */
static void FN(radam)(const lgN_hyper *o, T *restrict p, const T *restrict g, T *restrict m,
                      T *restrict v, int64_t n, double step)
{
    const T sg = o->maximize ? (T)-1 : (T)1, wd = (T)o->weight_decay, eps = (T)o->eps;
    const T b1 = (T)o->beta1, b1c = (T)(1 - o->beta1), b2 = (T)o->beta2, b2c = (T)(1 - o->beta2);
    const double bc1 = 1 - pow(o->beta1, step), bc2 = 1 - pow(o->beta2, step);
    const double rho_inf = 2 / (1 - o->beta2) - 1;
    const double rho_t = rho_inf - 2 * step * pow(o->beta2, step) / bc2;
    const bool WD = o->weight_decay != 0, RECT = rho_t > 5.;
    const double rect =
        RECT ? sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
             : 0;
    const T tbc1 = (T)bc1, lr = (T)o->lr, sbc2 = (T)sqrt(bc2), trect = (T)rect;
    for (int64_t j = 0; j < n; j++) {
        T gj = sg * g[j];
        T d = WD ? (T)(gj + wd * p[j]) : gj;
        T mj = (T)(m[j] * b1 + b1c * d);
        T vj = (T)(v[j] * b2 + (T)(b2c * d) * d);
        m[j] = mj, v[j] = vj;
        T mhat = (T)(mj / tbc1);
        if (RECT) {
            /* a Python float over a tensor: the tensor's reciprocal, times it */
            T adaptive = (T)((T)((T)1 / (T)(FN(sqrt_t)(vj) + eps)) * sbc2);
            p[j] = (T)(p[j] - (T)((T)((T)(mhat * lr) * adaptive) * trect));
        } else {
            p[j] = (T)(p[j] - (T)(mhat * lr));
        }
    }
}

/* Rprop: f = etaplus where g prev > 0, etaminus where < 0, 1 where 0 (NaN
 * stays NaN); size = clamp(size f, min, max) (from lr); the gradient is 0
 * where f is etaminus; p -= sign(g) size; prev = g. */
static void FN(rprop)(const lgN_hyper *o, T *restrict p, const T *restrict g, T *restrict prev,
                      T *restrict size, int64_t n, bool fresh)
{
    const T sg = o->maximize ? (T)-1 : (T)1;
    const T up = (T)o->etaplus, down = (T)o->etaminus, lo = (T)o->step_size_min,
            hi = (T)o->step_size_max;
    if (fresh)
        for (int64_t j = 0; j < n; j++)
            prev[j] = 0, size[j] = (T)o->lr;
    for (int64_t j = 0; j < n; j++) {
        T gj = sg * g[j];
        T s = (T)(gj * prev[j]);
        T f = s > 0 ? up : s < 0 ? down : s == 0 ? (T)1 : s;
        T z = (T)(size[j] * f);
        z = z != z ? z : z < lo ? lo : z > hi ? hi : z; /* clamp keeps NaN */
        size[j] = z;
        T d = f == down ? (T)0 : gj;
        T sign = d > 0 ? (T)1 : d < 0 ? (T)-1 : d == 0 ? (T)0 : d;
        p[j] = (T)(p[j] + (T)(-1) * sign * z);
        prev[j] = d;
    }
}

/* NAdam: m, v as Adam's; denom = sqrt(v / (1 - b2^t)) + eps; p += c1 d /
 * denom, then p += c2 m / denom, c1 = -lr (1 - mu) / (1 - mu_product) and
 * c2 = -lr mu_next / (1 - mu_product mu_next) (optim.c's update). */
static void FN(nadam)(const lgN_hyper *o, T *restrict p, const T *restrict g, T *restrict m,
                      T *restrict v, int64_t n, double step, double c1, double c2)
{
    const T sg = o->maximize ? (T)-1 : (T)1, wd = (T)o->weight_decay, eps = (T)o->eps;
    const T b1 = (T)o->beta1, b1c = (T)(1 - o->beta1), b2 = (T)o->beta2, b2c = (T)(1 - o->beta2);
    const T bc2 = (T)(1 - pow(o->beta2, step)), t1 = (T)c1, t2 = (T)c2;
    const bool WD = o->weight_decay != 0;
    for (int64_t j = 0; j < n; j++) {
        T gj = sg * g[j];
        T d = WD ? (T)(gj + wd * p[j]) : gj;
        T mj = (T)(m[j] * b1 + b1c * d);
        T vj = (T)(v[j] * b2 + (T)(b2c * d) * d);
        m[j] = mj, v[j] = vj;
        T denom = (T)(FN(sqrt_t)((T)(vj / bc2)) + eps);
        T pj = (T)(p[j] + t1 * (T)(d / denom));
        p[j] = (T)(pj + t2 * (T)(mj / denom));
    }
}

/* ASGD: p *= 1 - lambd eta; p -= eta d; ax += (p - ax) mu, or ax = p when
 * mu is 1 (eta, mu: the state before this step). */
static void FN(asgd)(const lgN_hyper *o, T *restrict p, const T *restrict g, T *restrict ax,
                     int64_t n, double eta, double mu, bool fresh)
{
    const T sg = o->maximize ? (T)-1 : (T)1, wd = (T)o->weight_decay;
    const T shrink = (T)(1 - o->lambd * eta), neta = (T)(-eta), tmu = (T)mu;
    const bool WD = o->weight_decay != 0;
    (void)fresh; /* ax starts at zero, as PyTorch's */
    for (int64_t j = 0; j < n; j++) {
        T gj = sg * g[j];
        T d = WD ? (T)(gj + wd * p[j]) : gj;
        T pj = (T)(p[j] * shrink);
        pj = (T)(pj + neta * d);
        p[j] = pj;
        ax[j] = mu != 1 ? (T)(ax[j] + (T)((T)(pj - ax[j]) * tmu)) : pj;
    }
}

/* The five, by kind: s0 and s1 the kind's two slots (slot_names). */
static void FN(more)(const lgN_hyper *o, lg_optim_kind kind, T *restrict p, const T *restrict g,
                     T *restrict s0, T *restrict s1, int64_t n, double step, bool fresh)
{
    switch (kind) {
    case LG_ADAGRAD: FN(adagrad)(o, p, g, s0, n, step, fresh); break;
    case LG_ADADELTA: FN(adadelta)(o, p, g, s0, s1, n); break;
    case LG_ADAMAX: FN(adamax)(o, p, g, s0, s1, n, step); break;
    case LG_RADAM: FN(radam)(o, p, g, s0, s1, n, step); break;
    default: FN(rprop)(o, p, g, s0, s1, n, fresh); break;
    }
}
