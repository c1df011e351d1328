/* sched.c: learning-rate schedules with PyTorch 1.13's recursive get_lr
 * formulas (torch/optim/lr_scheduler.py), so the sequence of rates matches
 * PyTorch's step by step, rounding included. */
#include "optim.h"

#include <math.h>

#define M_PI_LG 3.14159265358979323846

struct lg_sched {
    lg_optim *opt;
    lg_sched_opts o;
    double base_lr, start, end;
    int64_t epoch, total;
};

static double next_lr(lg_sched *s)
{
    double lr = s->opt->lr;
    int64_t e = s->epoch;
    switch (s->o.kind) {
    case LG_SCHED_STEP: return (e == 0 || e % s->o.step_size != 0) ? lr : lr * s->o.gamma;
    case LG_SCHED_EXPONENTIAL: return e == 0 ? lr : lr * s->o.gamma;
    case LG_SCHED_COSINE: {
        double T = (double)s->o.t_max, eta = s->o.eta_min;
        if (e == 0)
            return lr;
        if ((e - 1 - s->o.t_max) % (2 * s->o.t_max) == 0)
            return lr + (s->base_lr - eta) * (1 - cos(M_PI_LG / T)) / 2;
        return (1 + cos(M_PI_LG * (double)e / T)) / (1 + cos(M_PI_LG * (double)(e - 1) / T)) *
                   (lr - eta) +
               eta;
    }
    default:
        if (e == 0)
            return lr * s->start;
        if (e > s->total)
            return lr;
        return lr * (1.0 + (s->end - s->start) / ((double)s->total * s->start +
                                                  (double)(e - 1) * (s->end - s->start)));
    }
}

lg_sched *lg_sched_new(lg_ctx *ctx, lg_optim *opt, const lg_sched_opts *o)
{
    static const char who[] = "lg_sched_new";
    if (!ctx)
        return NULL;
    if (!opt || !o)
        return lgC_error(ctx, LG_ERR_NULL, "%s: %s is NULL", who, !opt ? "opt" : "o");
    double start = o->start_factor.set ? o->start_factor.value : 1.0 / 3.0;
    double end = o->end_factor.set ? o->end_factor.value : 1.0;
    int64_t total = o->total_iters ? o->total_iters : 5;
    bool ok = true;
    switch (o->kind) {
    case LG_SCHED_STEP: ok = o->step_size >= 1; break;
    case LG_SCHED_EXPONENTIAL: break;
    case LG_SCHED_COSINE: ok = o->t_max >= 1; break;
    case LG_SCHED_LINEAR: ok = start > 0 && start <= 1 && end >= 0 && end <= 1 && total >= 1; break;
    default: ok = false;
    }
    if (!ok)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: invalid schedule (kind %d needs step_size >= 1, t_max >= 1, or "
                         "0 < start_factor <= 1, 0 <= end_factor <= 1, total_iters >= 1)",
                         who, (int)o->kind);
    lg_sched *s = lgC_palloc(ctx, sizeof *s, who);
    if (!s)
        return NULL;
    s->opt = opt;
    s->o = *o;
    s->base_lr = opt->lr;
    s->start = start, s->end = end, s->total = total;
    s->epoch = 0;
    opt->lr = next_lr(s); /* the rate for step 0 */
    return s;
}

double lg_sched_step(lg_sched *s)
{
    if (!s)
        return NAN;
    s->epoch++;
    s->opt->lr = next_lr(s);
    return s->opt->lr;
}
