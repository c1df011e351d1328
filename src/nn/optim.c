/* optim.c: SGD, Adam, AdamW and RMSprop with PyTorch 1.13's update rules
 * (torch/optim, the single-tensor path), in the same order of operations,
 * in double precision and stored back in the parameter's dtype; gradient
 * clipping by norm and by value.
 *
 * State buffers are persistent and allocated at a parameter's first
 * update, so steady-state steps allocate nothing.
 */
#include "optim.h"
#include "../tensor/tensor.h" /* LGT_VECTOR_CLONES */

#include <math.h>
#include <string.h>

static const char *const slot_names[][LGN_SLOTS] = {
    [LG_SGD] = { "momentum_buffer", NULL, NULL },
    [LG_ADAM] = { "exp_avg", "exp_avg_sq", "max_exp_avg_sq" },
    [LG_ADAMW] = { "exp_avg", "exp_avg_sq", "max_exp_avg_sq" },
    [LG_RMSPROP] = { "square_avg", "momentum_buffer", "grad_avg" },
};

const char *lgN_slot_name(const lg_optim *o, int s)
{
    return slot_names[o->kind][s];
}

static size_t param_bytes(lg_tensor *p)
{
    return (size_t)lg_tensor_numel(p) * (lg_tensor_dtype(p) == LG_F32 ? 4 : 8);
}

void *lgN_slot(lg_optim *o, int i, int s)
{
    if (!o->slot[s][i])
        o->slot[s][i] = lgC_palloc(o->ctx, param_bytes(o->params[i]), "lg_optim_step");
    return o->slot[s][i];
}

lg_optim *lg_optim_new(lg_ctx *ctx, const lg_optim_opts *o)
{
    static const char who[] = "lg_optim_new";
    if (!ctx)
        return NULL;
    if (!o)
        return lgC_error(ctx, LG_ERR_NULL, "%s: o is NULL (the learning rate is required)", who);
    if ((unsigned)o->kind > LG_RMSPROP)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: kind %d is not an optimizer", who, (int)o->kind);
    double wd = o->weight_decay.set ? o->weight_decay.value : (o->kind == LG_ADAMW ? 0.01 : 0.0);
    double b1 = o->beta1.set ? o->beta1.value : 0.9, b2 = o->beta2.set ? o->beta2.value : 0.999;
    double eps = o->eps.set ? o->eps.value : 1e-8, alpha = o->alpha.set ? o->alpha.value : 0.99;
    if (!(o->lr > 0) || !(wd >= 0) || !(o->momentum >= 0) || !(eps >= 0) || !(b1 >= 0 && b1 < 1) ||
        !(b2 >= 0 && b2 < 1) || !(alpha >= 0))
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: invalid hyper-parameter (need lr > 0, weight_decay, momentum, eps, "
                         "alpha >= 0 and betas in [0, 1)): lr = %g",
                         who, o->lr);
    if (o->kind == LG_SGD && o->nesterov && (o->momentum <= 0 || o->dampening != 0))
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: nesterov momentum requires a momentum and zero dampening", who);
    int n = o->params ? o->nparams : lg_param_count(ctx);
    if (n < 0 || (o->params == NULL && o->nparams != 0))
        return lgC_error(ctx, LG_ERR_VALUE, "%s: nparams = %d without params", who, o->nparams);
    lg_optim *opt = lgC_palloc(ctx, sizeof *opt, who);
    size_t nn = (size_t)(n ? n : 1);
    lg_tensor **params = opt ? lgC_palloc(ctx, nn * sizeof *params, who) : NULL;
    int64_t *steps = params ? lgC_palloc(ctx, nn * sizeof *steps, who) : NULL;
    if (!steps)
        return NULL;
    for (int s = 0; s < LGN_SLOTS; s++)
        if (!(opt->slot[s] = lgC_palloc(ctx, nn * sizeof(void *), who)))
            return NULL;
    for (int i = 0; i < n; i++) {
        params[i] = o->params ? o->params[i] : lg_param_at(ctx, i);
        if (!params[i] || lg_tensor_check(ctx, params[i]) != LG_OK ||
            !lg_tensor_requires_grad(params[i]))
            return lgC_error(ctx, LG_ERR_VALUE, "%s: params[%d] is not a parameter", who, i);
    }
    opt->ctx = ctx;
    opt->kind = o->kind;
    opt->lr = o->lr;
    opt->weight_decay = wd;
    opt->momentum = o->momentum;
    opt->dampening = o->dampening;
    opt->nesterov = o->nesterov;
    opt->beta1 = b1, opt->beta2 = b2, opt->eps = eps, opt->alpha = alpha;
    opt->amsgrad = o->amsgrad;
    opt->centered = o->centered;
    opt->n = n;
    opt->params = params;
    opt->steps = steps;
    return opt;
}

/* x[j] as double / store, for a buffer of the parameter's dtype. */
#define LD(buf, j) (f32 ? (double)((float *)(buf))[j] : ((double *)(buf))[j])
#define ST(buf, j, v)                                                                              \
    (f32 ? (void)(((float *)(buf))[j] = (float)(v)) : (void)(((double *)(buf))[j] = (v)))

/* SGD over n elements of type T: the arithmetic of the generic version
 * (double, each state rounded to T when stored), a plain loop per case. */
#define SGD_KERNEL(T, SUF)                                                                         \
    LGT_VECTOR_CLONES static void sgd_##SUF(const lg_optim *o, T *restrict p, const T *restrict g, \
                                            T *restrict buf, int64_t n, bool fresh)                \
    {                                                                                              \
        const double lr = o->lr, wd = o->weight_decay, mom = o->momentum, damp = 1 - o->dampening; \
        if (!buf && wd == 0) {                                                                     \
            for (int64_t j = 0; j < n; j++)                                                        \
                p[j] = (T)((double)p[j] - lr * (double)g[j]);                                      \
            return;                                                                                \
        }                                                                                          \
        for (int64_t j = 0; j < n; j++) {                                                          \
            double d = (double)g[j], pj = (double)p[j];                                            \
            if (wd != 0)                                                                           \
                d = d + wd * pj;                                                                   \
            if (buf) {                                                                             \
                T b = (T)(fresh ? d : (double)buf[j] * mom + damp * d);                            \
                buf[j] = b;                                                                        \
                d = o->nesterov ? d + mom * (double)b : (double)b;                                 \
            }                                                                                      \
            p[j] = (T)(pj - lr * d);                                                               \
        }                                                                                          \
    }
SGD_KERNEL(float, f32)
SGD_KERNEL(double, f64)

static lg_status sgd(lg_optim *o, int i, void *p, const void *g, int64_t n, bool f32)
{
    void *buf = NULL;
    bool fresh = o->steps[i] == 1; /* PyTorch: no momentum buffer before the first update */
    if (o->momentum != 0 && !(buf = lgN_slot(o, i, 0)))
        return LG_ERR_OOM;
    if (f32)
        sgd_f32(o, p, g, buf, n, fresh);
    else
        sgd_f64(o, p, g, buf, n, fresh);
    return LG_OK;
}

/* One Adam/AdamW update of n elements of type T; the arithmetic is in
 * double, each state rounded to T when stored (as the generic loops
 * before), with the dtype fixed per loop so that the loop vectorises. */
#define ADAM_KERNEL(T, SUF)                                                                        \
    LGT_VECTOR_CLONES static void adam_##SUF(                                                      \
        const lg_optim *o, T *restrict p, const T *restrict g, T *restrict m, T *restrict v,       \
        T *restrict vmax, int64_t n, double step_size, double bc2_sqrt)                            \
    {                                                                                              \
        /* m / (sqrt(v) / c + eps) as m c / (sqrt(v) + eps c): one division, not two */            \
        const double b1 = o->beta1, b2 = o->beta2, eps_c = o->eps * bc2_sqrt;                      \
        const double shrink = o->kind == LG_ADAMW ? 1 - o->lr * o->weight_decay : 1;               \
        const double wd = o->kind == LG_ADAMW ? 0 : o->weight_decay;                               \
        if (!vmax && wd == 0) { /* the common case, without branches */                            \
            for (int64_t j = 0; j < n; j++) {                                                      \
                double d = (double)g[j];                                                           \
                T mj = (T)((double)m[j] * b1 + (1 - b1) * d);                                      \
                T vj = (T)((double)v[j] * b2 + (1 - b2) * d * d);                                  \
                m[j] = mj, v[j] = vj;                                                              \
                double ratio = (double)mj * bc2_sqrt / (sqrt((double)vj) + eps_c);                 \
                p[j] = (T)((double)p[j] * shrink - step_size * ratio);                             \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        for (int64_t j = 0; j < n; j++) {                                                          \
            double pj = (double)p[j] * shrink;                                                     \
            double d = wd != 0 ? (double)g[j] + wd * (double)p[j] : (double)g[j];                  \
            T mj = (T)((double)m[j] * b1 + (1 - b1) * d);                                          \
            T vj = (T)((double)v[j] * b2 + (1 - b2) * d * d);                                      \
            m[j] = mj, v[j] = vj;                                                                  \
            T s = vj;                                                                              \
            if (vmax) {                                                                            \
                s = vmax[j] > vj ? vmax[j] : vj;                                                   \
                vmax[j] = s;                                                                       \
            }                                                                                      \
            double ratio = (double)mj * bc2_sqrt / (sqrt((double)s) + eps_c);                      \
            p[j] = (T)(pj - step_size * ratio);                                                    \
        }                                                                                          \
    }
ADAM_KERNEL(float, f32)
ADAM_KERNEL(double, f64)

static lg_status adam(lg_optim *o, int i, void *p, const void *g, int64_t n, bool f32)
{
    void *m = lgN_slot(o, i, 0), *v = m ? lgN_slot(o, i, 1) : NULL;
    void *vmax = (v && o->amsgrad) ? lgN_slot(o, i, 2) : NULL;
    if (!v || (o->amsgrad && !vmax))
        return LG_ERR_OOM;
    double step = (double)o->steps[i];
    double bc1 = 1 - pow(o->beta1, step), bc2 = 1 - pow(o->beta2, step);
    double step_size = o->lr / bc1, bc2_sqrt = sqrt(bc2);
    if (f32)
        adam_f32(o, p, g, m, v, vmax, n, step_size, bc2_sqrt);
    else
        adam_f64(o, p, g, m, v, vmax, n, step_size, bc2_sqrt);
    return LG_OK;
}

static lg_status rmsprop(lg_optim *o, int i, void *p, const void *g, int64_t n, bool f32)
{
    void *sq = lgN_slot(o, i, 0);
    void *buf = (sq && o->momentum > 0) ? lgN_slot(o, i, 1) : NULL;
    void *ga = (sq && o->centered) ? lgN_slot(o, i, 2) : NULL;
    if (!sq || (o->momentum > 0 && !buf) || (o->centered && !ga))
        return LG_ERR_OOM;
    for (int64_t j = 0; j < n; j++) {
        double d = LD(g, j), pj = LD(p, j);
        if (o->weight_decay != 0)
            d = d + o->weight_decay * pj;
        double s = LD(sq, j) * o->alpha + (1 - o->alpha) * d * d;
        ST(sq, j, s);
        s = LD(sq, j);
        double avg;
        if (ga) {
            double a = LD(ga, j) * o->alpha + (1 - o->alpha) * d;
            ST(ga, j, a);
            a = LD(ga, j);
            avg = sqrt(s - a * a) + o->eps;
        } else {
            avg = sqrt(s) + o->eps;
        }
        if (buf) {
            double b = LD(buf, j) * o->momentum + d / avg;
            ST(buf, j, b);
            ST(p, j, pj - o->lr * LD(buf, j));
        } else {
            ST(p, j, pj - o->lr * (d / avg));
        }
    }
    return LG_OK;
}

lg_status lg_optim_step(lg_optim *o)
{
    if (!o)
        return LG_ERR_NULL;
    for (int i = 0; i < o->n; i++) {
        lg_tensor *p = o->params[i], *g = lg_tensor_grad(p);
        if (!g)
            continue; /* no gradient yet: skipped, as PyTorch */
        bool f32 = lg_tensor_dtype(p) == LG_F32;
        o->steps[i]++;
        lg_status st;
        void *pd = lg_tensor_data(p);
        const void *gd = lg_tensor_data(g);
        int64_t n = lg_tensor_numel(p);
        switch (o->kind) {
        case LG_SGD: st = sgd(o, i, pd, gd, n, f32); break;
        case LG_RMSPROP: st = rmsprop(o, i, pd, gd, n, f32); break;
        default: st = adam(o, i, pd, gd, n, f32); break;
        }
        if (st != LG_OK)
            return o->ctx->status;
    }
    return LG_OK;
}

double lg_optim_lr(const lg_optim *o)
{
    return o ? o->lr : NAN;
}

void lg_optim_set_lr(lg_optim *o, double lr)
{
    if (o)
        o->lr = lr;
}

int64_t lg_optim_steps(const lg_optim *o)
{
    int64_t m = 0;
    for (int i = 0; o && i < o->n; i++)
        m = o->steps[i] > m ? o->steps[i] : m;
    return m;
}

double lg_clip_grad_norm(lg_ctx *ctx, double max_norm, double norm_type)
{
    if (!ctx)
        return NAN;
    if (!(max_norm >= 0) || !(norm_type > 0)) {
        lgC_error(ctx, LG_ERR_VALUE,
                  "lg_clip_grad_norm: max_norm = %g, norm_type = %g, expected >= 0 and > 0",
                  max_norm, norm_type);
        return NAN;
    }
    /* total = || (||g_1||, ||g_2||, ...) ||, as PyTorch */
    double total = 0;
    for (int i = 0; i < lg_param_count(ctx); i++) {
        lg_tensor *g = lg_tensor_grad(lg_param_at(ctx, i));
        if (!g)
            continue;
        double s = 0;
        for (int64_t j = 0; j < lg_tensor_numel(g); j++) {
            double v = fabs(lgN_get(g, j));
            if (isinf(norm_type))
                s = v > s || v != v ? v : s;
            else
                s += norm_type == 2 ? v * v : pow(v, norm_type);
        }
        double norm = isinf(norm_type) ? s : pow(s, 1.0 / norm_type);
        if (isinf(norm_type))
            total = norm > total || norm != norm ? norm : total;
        else
            total += pow(norm, norm_type);
    }
    if (!isinf(norm_type))
        total = pow(total, 1.0 / norm_type);
    double coef = max_norm / (total + 1e-6);
    if (coef > 1)
        coef = 1;
    for (int i = 0; i < lg_param_count(ctx); i++) {
        lg_tensor *g = lg_tensor_grad(lg_param_at(ctx, i));
        for (int64_t j = 0; g && j < lg_tensor_numel(g); j++)
            lgN_set(g, j, lgN_get(g, j) * coef);
    }
    return total;
}

lg_status lg_clip_grad_value(lg_ctx *ctx, double value)
{
    if (!ctx)
        return LG_ERR_NULL;
    if (!(value >= 0))
        return lgC_errorf(ctx, LG_ERR_VALUE, "lg_clip_grad_value: value = %g, expected >= 0",
                          value);
    for (int i = 0; i < lg_param_count(ctx); i++) {
        lg_tensor *g = lg_tensor_grad(lg_param_at(ctx, i));
        for (int64_t j = 0; g && j < lg_tensor_numel(g); j++) {
            double v = lgN_get(g, j);
            lgN_set(g, j, v < -value ? -value : (v > value ? value : v));
        }
    }
    return LG_OK;
}
