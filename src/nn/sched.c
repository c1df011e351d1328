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

/* (e - 1 - t_max) % (2 t_max) == 0, PyTorch's test for the end of a
 * period, without overflow: past INT64_MAX / 2, 2 t_max does not fit, but
 * then |e - 1 - t_max| < 2 t_max for every e, so only 0 passes. */
static bool restart(int64_t e, int64_t t_max)
{
    int64_t d = (e - 1) - t_max;
    return t_max > INT64_MAX / 2 ? d == 0 : d % (2 * t_max) == 0;
}

static double next_lr(lg_sched *s)
{
    double lr = lg_optim_lr(s->opt);
    int64_t e = s->epoch;
    switch (s->o.kind) {
    case LG_SCHED_STEP: return (e == 0 || e % s->o.step_size != 0) ? lr : lr * s->o.gamma;
    case LG_SCHED_EXPONENTIAL: return e == 0 ? lr : lr * s->o.gamma;
    case LG_SCHED_COSINE: {
        double T = (double)s->o.t_max, eta = s->o.eta_min;
        if (e == 0)
            return lr;
        if (restart(e, s->o.t_max))
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

static const char *const kind_names[] = { "LG_SCHED_STEP", "LG_SCHED_EXPONENTIAL",
                                          "LG_SCHED_COSINE", "LG_SCHED_LINEAR" };

lg_sched_opts lg_sched_opts_default(lg_sched_kind kind)
{
    lg_sched_opts o = { .defaults_tag = LG_OPTS_TAG | ((uint32_t)kind & LGC_OPTS_KIND_MASK),
                        .kind = kind };
    switch (kind) {
    case LG_SCHED_STEP: o.gamma = 0.1; break;        /* step_size required */
    case LG_SCHED_EXPONENTIAL: o.gamma = NAN; break; /* required */
    case LG_SCHED_COSINE: break;                     /* t_max required */
    case LG_SCHED_LINEAR: o.start_factor = 1.0 / 3.0, o.end_factor = 1.0, o.total_iters = 5; break;
    }
    return o;
}

/* The fields: which kinds have each (bit k for kind k) and which give it
 * a default that is not zero (a struct by hand must write those). */
#define K(k) (1u << (k))
static const lgC_kfield fields[] = {
    { LGC_FIELD(lg_sched_opts, step_size, "none (required)"), K(LG_SCHED_STEP), 0 },
    { LGC_FIELD(lg_sched_opts, gamma, "0.1 for STEP, none (required) for EXPONENTIAL"),
      K(LG_SCHED_STEP) | K(LG_SCHED_EXPONENTIAL), K(LG_SCHED_STEP) | K(LG_SCHED_EXPONENTIAL) },
    { LGC_FIELD(lg_sched_opts, t_max, "none (required)"), K(LG_SCHED_COSINE), 0 },
    { LGC_FIELD(lg_sched_opts, eta_min, "0"), K(LG_SCHED_COSINE), 0 },
    { LGC_FIELD(lg_sched_opts, start_factor, "1/3"), K(LG_SCHED_LINEAR), K(LG_SCHED_LINEAR) },
    { LGC_FIELD(lg_sched_opts, end_factor, "1"), K(LG_SCHED_LINEAR), K(LG_SCHED_LINEAR) },
    { LGC_FIELD(lg_sched_opts, total_iters, "5"), K(LG_SCHED_LINEAR), K(LG_SCHED_LINEAR) },
};
#undef K
static const lg_sched_opts sched_zero = { 0 };
static const lgC_kdesc sched_desc = {
    { "lg_sched_opts", "lg_sched_opts_default(kind)", sizeof(lg_sched_opts), &sched_zero, NULL, 0 },
    "a schedule",
    kind_names,
    4,
    fields,
    (int)(sizeof fields / sizeof fields[0]),
};

static bool validate(lg_ctx *ctx, const lg_sched_opts *o)
{
    static const char who[] = "lg_sched_new";
    switch (o->kind) {
    case LG_SCHED_STEP:
        if (o->step_size < 1)
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: step_size = %lld, expected >= 1 (required)",
                            who, (long long)o->step_size);
        /* fall through */
    case LG_SCHED_EXPONENTIAL:
        if (!(isfinite(o->gamma) && o->gamma >= 0))
            return lgC_fail(ctx, LG_ERR_VALUE,
                            isnan(o->gamma) && o->kind == LG_SCHED_EXPONENTIAL
                                ? "%s: gamma = %g: it is required for LG_SCHED_EXPONENTIAL"
                                : "%s: gamma = %g, expected finite and >= 0",
                            who, o->gamma);
        return true;
    case LG_SCHED_COSINE:
        if (o->t_max < 1)
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: t_max = %lld, expected >= 1 (required)", who,
                            (long long)o->t_max);
        if (!(isfinite(o->eta_min) && o->eta_min >= 0))
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: eta_min = %g, expected finite and >= 0", who,
                            o->eta_min);
        return true;
    default:
        if (!(o->start_factor > 0 && o->start_factor <= 1))
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: start_factor = %g, expected in (0, 1]", who,
                            o->start_factor);
        if (!(o->end_factor >= 0 && o->end_factor <= 1))
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: end_factor = %g, expected in [0, 1]", who,
                            o->end_factor);
        if (o->total_iters < 1)
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: total_iters = %lld, expected >= 1", who,
                            (long long)o->total_iters);
        return true;
    }
}

lg_sched *lg_sched_new(lg_ctx *ctx, lg_optim *opt, const lg_sched_opts *opts)
{
    static const char who[] = "lg_sched_new";
    if (!ctx)
        return NULL;
    if (lgC_failed(ctx, who))
        return NULL;
    if (!opt || !opts)
        return lgC_error(ctx, LG_ERR_NULL, "%s: %s is NULL", who, !opt ? "opt" : "o");
    if (opt->ctx != ctx)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: opt was made with another ctx", who);
    lg_sched_opts o = { 0 };
    if (!lgC_opts_kinded(ctx, who, &sched_desc, opts, (unsigned)opts->kind))
        return NULL;
    o = *opts;
    if (!validate(ctx, &o))
        return NULL;
    lg_sched *s = lgC_palloc(ctx, sizeof *s, who);
    if (!s)
        return NULL;
    s->opt = opt;
    s->o = o;
    s->base_lr = lg_optim_lr(opt);
    s->start = o.start_factor, s->end = o.end_factor, s->total = o.total_iters;
    s->epoch = 0;
    lg_optim_set_lr(opt, next_lr(s)); /* the rate for step 0 (every group's, until per-group schedules) */
    return s;
}

double lg_sched_step(lg_sched *s)
{
    if (!s)
        return NAN;
    lg_ctx *ctx = s->opt->ctx;
    if (s->epoch == INT64_MAX) {
        lgC_error(ctx, LG_ERR_STATE, "lg_sched_step: the schedule has taken INT64_MAX steps");
        return NAN;
    }
    s->epoch++;
    double lr = next_lr(s);
    if (!(isfinite(lr) && lr >= 0)) { /* as lg_optim_set_lr: the rate stays */
        s->epoch--;
        lgC_error(ctx, LG_ERR_VALUE,
                  "lg_sched_step: the rate would become %g (from %g), expected finite and >= 0", lr,
                  lg_optim_lr(s->opt));
        return NAN;
    }
    lg_optim_set_lr(s->opt, lr);
    return lr;
}
