/* sched_opts.c: a schedule's options: PyTorch 1.13's defaults per kind
 * (lg_sched_opts_default), the fields each kind has, their checks (every
 * message names lg_sched_new and the field), and lg_sched_new, which builds
 * a schedule from them and takes PyTorch's constructor's first step. A
 * schedule keeps a copy of its options without their pointers; it lives in
 * the ctx's persistent memory (lgC_palloc) and goes with the ctx. Stepping
 * and the state are in sched.c. */
#include "sched.h"

#include "optim.h" /* only for opt->ctx (the ctx check) and lgN_optim_add_sched */

#include <math.h>
#include <string.h>

const char *const lgN_sched_kind_names[] = {
    "LG_SCHED_STEP",           "LG_SCHED_EXPONENTIAL",
    "LG_SCHED_COSINE",         "LG_SCHED_LINEAR",
    "LG_SCHED_MULTISTEP",      "LG_SCHED_CONSTANT",
    "LG_SCHED_POLYNOMIAL",     "LG_SCHED_LAMBDA",
    "LG_SCHED_MULTIPLICATIVE", "LG_SCHED_COSINE_WARM_RESTARTS",
    "LG_SCHED_CYCLIC",         "LG_SCHED_ONE_CYCLE",
    "LG_SCHED_PLATEAU",        "LG_SCHED_SEQUENTIAL",
    "LG_SCHED_CHAINED"
};
#define NKINDS ((unsigned)(sizeof lgN_sched_kind_names / sizeof lgN_sched_kind_names[0]))

/* Kinds whose base rates are the groups' rates (PyTorch's initial_lr),
 * not rates of their own options. */
static bool plain(lg_sched_kind k)
{
    return k != LG_SCHED_CYCLIC && k != LG_SCHED_ONE_CYCLE && k != LG_SCHED_PLATEAU &&
           !lgN_sched_composite(k);
}

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

lg_sched_opts lg_sched_opts_default(lg_sched_kind kind)
{
    lg_sched_opts o = { .defaults_tag = LG_OPTS_TAG | ((uint32_t)kind & LGC_OPTS_KIND_MASK),
                        .kind = kind };
    switch (kind) {
    case LG_SCHED_STEP: o.gamma = 0.1; break;        /* step_size required */
    case LG_SCHED_EXPONENTIAL: o.gamma = NAN; break; /* required */
    case LG_SCHED_COSINE: break;                     /* t_max required */
    case LG_SCHED_LINEAR: o.start_factor = 1.0 / 3.0, o.end_factor = 1.0, o.total_iters = 5; break;
    case LG_SCHED_MULTISTEP: o.gamma = 0.1; break; /* milestones required */
    case LG_SCHED_CONSTANT: o.factor = 1.0 / 3, o.total_iters = 5; break;
    case LG_SCHED_POLYNOMIAL: o.total_iters = 5, o.power = 1.0; break;
    case LG_SCHED_LAMBDA:
    case LG_SCHED_MULTIPLICATIVE: break;                     /* lr_lambda required */
    case LG_SCHED_COSINE_WARM_RESTARTS: o.t_mult = 1; break; /* t_0 required */
    case LG_SCHED_CYCLIC:
        o.base_lr = NAN, o.max_lr = NAN, o.step_size_up = 2000, o.gamma = 1.0;
        o.cycle_momentum = true, o.base_momentum = 0.8, o.max_momentum = 0.9;
        break;
    case LG_SCHED_ONE_CYCLE:
        o.max_lr = NAN, o.pct_start = 0.3, o.cycle_momentum = true;
        o.base_momentum = 0.85, o.max_momentum = 0.95, o.div_factor = 25.0,
        o.final_div_factor = 1e4;
        break;
    case LG_SCHED_PLATEAU: o.factor = 0.1, o.patience = 10, o.threshold = 1e-4, o.eps = 1e-8; break;
    case LG_SCHED_SEQUENTIAL:
    case LG_SCHED_CHAINED: break; /* schedules required */
    }
    return o;
}

/* The fields: which kinds have each (bit k for kind k) and which give it
 * a default that is not zero (a struct by hand must write those). */
#define K(k) (1u << (k))
#define CYC (K(LG_SCHED_CYCLIC) | K(LG_SCHED_ONE_CYCLE))
#define LAMBDAS (K(LG_SCHED_LAMBDA) | K(LG_SCHED_MULTIPLICATIVE))
#define RESUMABLE ((K(LG_SCHED_PLATEAU) - 1) & ~0u)
#define COMPOSITES (K(LG_SCHED_SEQUENTIAL) | K(LG_SCHED_CHAINED))
#define P(k) K(LG_SCHED_##k)
static const lgC_kfield fields[] = {
    { LGC_FIELD(lg_sched_opts, step_size, "none (required)"), P(STEP), 0 },
    { LGC_FIELD(lg_sched_opts, gamma,
                "0.1 for STEP and MULTISTEP, none (required) for EXPONENTIAL, 1 for CYCLIC"),
      P(STEP) | P(EXPONENTIAL) | P(MULTISTEP) | P(CYCLIC),
      P(STEP) | P(EXPONENTIAL) | P(MULTISTEP) | P(CYCLIC) },
    { LGC_FIELD(lg_sched_opts, t_max, "none (required)"), P(COSINE), 0 },
    { LGC_FIELD(lg_sched_opts, eta_min, "0"), P(COSINE) | P(COSINE_WARM_RESTARTS), 0 },
    { LGC_FIELD(lg_sched_opts, start_factor, "1/3"), P(LINEAR), P(LINEAR) },
    { LGC_FIELD(lg_sched_opts, end_factor, "1"), P(LINEAR), P(LINEAR) },
    { LGC_FIELD(lg_sched_opts, total_iters, "5"), P(LINEAR) | P(CONSTANT) | P(POLYNOMIAL),
      P(LINEAR) | P(CONSTANT) | P(POLYNOMIAL) },
    { LGC_FIELD(lg_sched_opts, milestones, "none (required)"), P(MULTISTEP) | P(SEQUENTIAL), 0 },
    { LGC_FIELD(lg_sched_opts, nmilestones, "none (required)"), P(MULTISTEP) | P(SEQUENTIAL), 0 },
    { LGC_FIELD(lg_sched_opts, factor, "1/3 for CONSTANT, 0.1 for PLATEAU"),
      P(CONSTANT) | P(PLATEAU), P(CONSTANT) | P(PLATEAU) },
    { LGC_FIELD(lg_sched_opts, power, "1"), P(POLYNOMIAL), P(POLYNOMIAL) },
    { LGC_FIELD(lg_sched_opts, lr_lambda, "none (required)"), LAMBDAS, 0 },
    { LGC_FIELD(lg_sched_opts, user, "NULL"), LAMBDAS | P(CYCLIC), 0 },
    { LGC_FIELD(lg_sched_opts, t_0, "none (required)"), P(COSINE_WARM_RESTARTS), 0 },
    { LGC_FIELD(lg_sched_opts, t_mult, "1"), P(COSINE_WARM_RESTARTS), P(COSINE_WARM_RESTARTS) },
    { LGC_FIELD(lg_sched_opts, base_lr, "none (required)"), P(CYCLIC), 0 },
    { LGC_FIELD(lg_sched_opts, max_lr, "none (required)"), CYC, 0 },
    { LGC_FIELD(lg_sched_opts, base_lrs, "NULL"), P(CYCLIC), 0 },
    { LGC_FIELD(lg_sched_opts, max_lrs, "NULL"), CYC, 0 },
    { LGC_FIELD(lg_sched_opts, nbase_lrs, "0"), P(CYCLIC), 0 },
    { LGC_FIELD(lg_sched_opts, nmax_lrs, "0"), CYC, 0 },
    { LGC_FIELD(lg_sched_opts, step_size_up, "2000"), P(CYCLIC), P(CYCLIC) },
    { LGC_FIELD(lg_sched_opts, step_size_down, "0 (step_size_up)"), P(CYCLIC), 0 },
    { LGC_FIELD(lg_sched_opts, cyclic_mode, "LG_CYCLIC_TRIANGULAR"), P(CYCLIC), 0 },
    { LGC_FIELD(lg_sched_opts, scale_fn, "NULL"), P(CYCLIC), 0 },
    { LGC_FIELD(lg_sched_opts, scale_mode, "LG_SCALE_CYCLE"), P(CYCLIC), 0 },
    { LGC_FIELD(lg_sched_opts, cycle_momentum, "true"), CYC, CYC },
    { LGC_FIELD(lg_sched_opts, base_momentum, "0.8 for CYCLIC, 0.85 for ONE_CYCLE"), CYC, CYC },
    { LGC_FIELD(lg_sched_opts, max_momentum, "0.9 for CYCLIC, 0.95 for ONE_CYCLE"), CYC, CYC },
    { LGC_FIELD(lg_sched_opts, total_steps, "none (or epochs and steps_per_epoch)"), P(ONE_CYCLE),
      0 },
    { LGC_FIELD(lg_sched_opts, epochs, "none"), P(ONE_CYCLE), 0 },
    { LGC_FIELD(lg_sched_opts, steps_per_epoch, "none"), P(ONE_CYCLE), 0 },
    { LGC_FIELD(lg_sched_opts, pct_start, "0.3"), P(ONE_CYCLE), P(ONE_CYCLE) },
    { LGC_FIELD(lg_sched_opts, anneal, "LG_ANNEAL_COS"), P(ONE_CYCLE), 0 },
    { LGC_FIELD(lg_sched_opts, div_factor, "25"), P(ONE_CYCLE), P(ONE_CYCLE) },
    { LGC_FIELD(lg_sched_opts, final_div_factor, "1e4"), P(ONE_CYCLE), P(ONE_CYCLE) },
    { LGC_FIELD(lg_sched_opts, three_phase, "false"), P(ONE_CYCLE), 0 },
    { LGC_FIELD(lg_sched_opts, plateau_mode, "LG_PLATEAU_MIN"), P(PLATEAU), 0 },
    { LGC_FIELD(lg_sched_opts, patience, "10"), P(PLATEAU), P(PLATEAU) },
    { LGC_FIELD(lg_sched_opts, threshold, "1e-4"), P(PLATEAU), P(PLATEAU) },
    { LGC_FIELD(lg_sched_opts, threshold_mode, "LG_THRESHOLD_REL"), P(PLATEAU), 0 },
    { LGC_FIELD(lg_sched_opts, cooldown, "0"), P(PLATEAU), 0 },
    { LGC_FIELD(lg_sched_opts, min_lr, "0"), P(PLATEAU), 0 },
    { LGC_FIELD(lg_sched_opts, min_lrs, "NULL"), P(PLATEAU), 0 },
    { LGC_FIELD(lg_sched_opts, nmin_lrs, "0"), P(PLATEAU), 0 },
    { LGC_FIELD(lg_sched_opts, eps, "1e-8"), P(PLATEAU), P(PLATEAU) },
    { LGC_FIELD(lg_sched_opts, schedules, "none (required)"), COMPOSITES, 0 },
    { LGC_FIELD(lg_sched_opts, nschedules, "none (required)"), COMPOSITES, 0 },
    { LGC_FIELD(lg_sched_opts, resume, "false"), RESUMABLE, 0 },
    { LGC_FIELD(lg_sched_opts, last_epoch, "0 (with resume)"), RESUMABLE, 0 },
    { LGC_FIELD(lg_sched_opts, initial_lr, "0 (with resume)"), RESUMABLE & ~CYC, 0 },
    { LGC_FIELD(lg_sched_opts, initial_lrs, "NULL"), RESUMABLE & ~CYC, 0 },
    { LGC_FIELD(lg_sched_opts, ninitial_lrs, "0"), RESUMABLE & ~CYC, 0 },
};
#undef P
#undef K
static const lg_sched_opts sched_zero = { 0 };
static const lgC_kdesc sched_desc = {
    { "lg_sched_opts", "lg_sched_opts_default(kind)", sizeof(lg_sched_opts), &sched_zero, NULL, 0 },
    "a schedule",
    lgN_sched_kind_names,
    NKINDS,
    fields,
    (int)(sizeof fields / sizeof fields[0]),
};

static const char who_new[] = "lg_sched_new";

static bool finite_ge0(lg_ctx *ctx, const char *name, double v)
{
    if (isfinite(v) && v >= 0)
        return true;
    return lgC_fail(ctx, LG_ERR_VALUE, "%s: %s = %g, expected finite and >= 0", who_new, name, v);
}

static bool int_ge(lg_ctx *ctx, const char *name, int64_t v, int64_t lo, bool required)
{
    if (v >= lo)
        return true;
    return lgC_fail(ctx, LG_ERR_VALUE, "%s: %s = %lld, expected >= %lld%s", who_new, name,
                    (long long)v, (long long)lo, required ? " (required)" : "");
}

/* A per-group list (ptr, n) beside its scalar: n 0 (ptr NULL) uses the
 * scalar, else n = ngroups and the scalar stays NaN or 0. Values finite >= 0
 * (the scalar too, when it is used). */
static bool group_list(lg_ctx *ctx, const char *name, double scalar, const double *v, int n, int ng,
                       bool required)
{
    if (n < 0)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: n%ss = %d, expected >= 0", who_new, name, n);
    if (n == 0) {
        if (v)
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: %ss is given but n%ss = 0", who_new, name,
                            name);
        if (required && isnan(scalar))
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: %s = nan: it is required (or %ss per group)",
                            who_new, name, name);
        return finite_ge0(ctx, name, scalar);
    }
    if (!v)
        return lgC_fail(ctx, LG_ERR_NULL, "%s: %ss is NULL but n%ss = %d", who_new, name, name, n);
    if (n != ng)
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: n%ss = %d, expected %d (one per parameter group of the optimizer)",
                        who_new, name, n, ng);
    if (!(isnan(scalar) || scalar == 0))
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: both %s = %g and %ss are given: give one (%s stays NaN or 0)", who_new,
                        name, scalar, name, name);
    for (int g = 0; g < n; g++)
        if (!(isfinite(v[g]) && v[g] >= 0))
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: %ss[%d] = %g, expected finite and >= 0",
                            who_new, name, g, v[g]);
    return true;
}

static double group_value(double scalar, const double *v, int n, int g)
{
    return n ? v[g] : scalar;
}

static bool check_milestones(lg_ctx *ctx, const lg_sched_opts *o, int64_t lo)
{
    if (o->nmilestones < 0)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: nmilestones = %d, expected >= 0", who_new,
                        o->nmilestones);
    if (o->nmilestones > 0 && !o->milestones)
        return lgC_fail(ctx, LG_ERR_NULL, "%s: milestones is NULL but nmilestones = %d", who_new,
                        o->nmilestones);
    if (o->nmilestones == 0 && o->milestones)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: milestones is given but nmilestones = 0", who_new);
    for (int i = 0; i < o->nmilestones; i++) {
        if (o->milestones[i] < lo)
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: milestones[%d] = %lld, expected >= %lld",
                            who_new, i, (long long)o->milestones[i], (long long)lo);
        if (i > 0 && o->milestones[i] <= o->milestones[i - 1])
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: milestones[%d] = %lld is not above milestones[%d] = %lld", who_new,
                            i, (long long)o->milestones[i], i - 1, (long long)o->milestones[i - 1]);
    }
    return true;
}

static bool check_momentum(lg_ctx *ctx, const lg_sched_opts *o, lg_optim *opt, lg_optim_hyper *h)
{
    *h = LG_HYPER_LR;
    if (!o->cycle_momentum)
        return true;
    if (!(isfinite(o->base_momentum) && isfinite(o->max_momentum) && o->base_momentum >= 0 &&
          o->base_momentum <= o->max_momentum))
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: base_momentum = %g, max_momentum = %g, expected finite and 0 <= "
                        "base_momentum <= max_momentum",
                        who_new, o->base_momentum, o->max_momentum);
    if (!isnan(lg_optim_group_get(opt, 0, LG_HYPER_MOMENTUM)))
        *h = LG_HYPER_MOMENTUM;
    else if (o->kind == LG_SCHED_ONE_CYCLE && !isnan(lg_optim_group_get(opt, 0, LG_HYPER_BETA1)))
        *h = LG_HYPER_BETA1;
    else
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: cycle_momentum needs an optimizer with momentum (SGD, RMSprop%s); "
                        "set cycle_momentum = false",
                        who_new,
                        o->kind == LG_SCHED_ONE_CYCLE ? ", or the Adam family's beta1"
                                                      : "; PyTorch 1.13's CyclicLR does not "
                                                        "cycle Adam's beta1");
    if (*h == LG_HYPER_BETA1 && !(o->max_momentum < 1))
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: max_momentum = %g is beta1 here: expected < 1",
                        who_new, o->max_momentum);
    return true;
}

static bool check_cyclic(lg_ctx *ctx, const lg_sched_opts *o, int ng)
{
    if (!group_list(ctx, "base_lr", o->base_lr, o->base_lrs, o->nbase_lrs, ng, true) ||
        !group_list(ctx, "max_lr", o->max_lr, o->max_lrs, o->nmax_lrs, ng, true) ||
        !int_ge(ctx, "step_size_up", o->step_size_up, 1, false) ||
        !int_ge(ctx, "step_size_down", o->step_size_down, 0, false))
        return false;
    if ((unsigned)o->cyclic_mode > LG_CYCLIC_EXP_RANGE)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: cyclic_mode = %d is not an lg_cyclic_mode", who_new,
                        (int)o->cyclic_mode);
    if ((unsigned)o->scale_mode > LG_SCALE_ITERATIONS)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: scale_mode = %d is not an lg_scale_mode", who_new,
                        (int)o->scale_mode);
    if (o->scale_fn && o->cyclic_mode != LG_CYCLIC_TRIANGULAR)
        return lgC_fail(
            ctx, LG_ERR_VALUE, "%s: cyclic_mode = %s is unused with scale_fn: leave it TRIANGULAR",
            who_new, o->cyclic_mode == LG_CYCLIC_EXP_RANGE ? "EXP_RANGE" : "TRIANGULAR2");
    if (!o->scale_fn && o->scale_mode != LG_SCALE_CYCLE)
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: scale_mode applies to scale_fn only (the modes have their own)",
                        who_new);
    if (!(isfinite(o->gamma) && o->gamma > 0))
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: gamma = %g, expected finite and > 0", who_new,
                        o->gamma);
    if (o->gamma != 1 && (o->scale_fn || o->cyclic_mode != LG_CYCLIC_EXP_RANGE))
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: gamma = %g is used by LG_CYCLIC_EXP_RANGE only: leave it 1", who_new,
                        o->gamma);
    int64_t down = o->step_size_down ? o->step_size_down : o->step_size_up;
    if (o->step_size_up > INT64_MAX - down)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: step_size_up + step_size_down overflows int64",
                        who_new);
    return true;
}

static bool check_one_cycle(lg_ctx *ctx, const lg_sched_opts *o, int ng, int64_t *total)
{
    if (!group_list(ctx, "max_lr", o->max_lr, o->max_lrs, o->nmax_lrs, ng, true))
        return false;
    if (o->total_steps != 0) {
        if (o->epochs || o->steps_per_epoch)
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: total_steps = %lld and epochs / steps_per_epoch are given: give "
                            "one of the two",
                            who_new, (long long)o->total_steps);
        if (!int_ge(ctx, "total_steps", o->total_steps, 1, false))
            return false;
        *total = o->total_steps;
    } else {
        if (!o->epochs && !o->steps_per_epoch)
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: total_steps = 0: give total_steps or epochs and steps_per_epoch "
                            "(required)",
                            who_new);
        if (!int_ge(ctx, "epochs", o->epochs, 1, false) ||
            !int_ge(ctx, "steps_per_epoch", o->steps_per_epoch, 1, false))
            return false;
        if (o->epochs > INT64_MAX / o->steps_per_epoch)
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: epochs * steps_per_epoch = %lld * %lld overflows int64", who_new,
                            (long long)o->epochs, (long long)o->steps_per_epoch);
        *total = o->epochs * o->steps_per_epoch;
    }
    if (!(o->pct_start >= 0 && o->pct_start <= 1))
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: pct_start = %g, expected in [0, 1]", who_new,
                        o->pct_start);
    if ((unsigned)o->anneal > LG_ANNEAL_LINEAR)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: anneal = %d is not an lg_anneal", who_new,
                        (int)o->anneal);
    if (!(isfinite(o->div_factor) && o->div_factor > 0))
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: div_factor = %g, expected finite and > 0", who_new,
                        o->div_factor);
    if (!(isfinite(o->final_div_factor) && o->final_div_factor > 0))
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: final_div_factor = %g, expected finite and > 0",
                        who_new, o->final_div_factor);
    return true;
}

static bool check_plateau(lg_ctx *ctx, const lg_sched_opts *o, int ng)
{
    if ((unsigned)o->plateau_mode > LG_PLATEAU_MAX)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: plateau_mode = %d is not an lg_plateau_mode",
                        who_new, (int)o->plateau_mode);
    if ((unsigned)o->threshold_mode > LG_THRESHOLD_ABS)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: threshold_mode = %d is not an lg_threshold_mode",
                        who_new, (int)o->threshold_mode);
    if (!(o->factor >= 0 && o->factor < 1))
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: factor = %g, expected in [0, 1)", who_new,
                        o->factor);
    return int_ge(ctx, "patience", o->patience, 0, false) &&
           int_ge(ctx, "cooldown", o->cooldown, 0, false) &&
           finite_ge0(ctx, "threshold", o->threshold) && finite_ge0(ctx, "eps", o->eps) &&
           group_list(ctx, "min_lr", o->min_lr, o->min_lrs, o->nmin_lrs, ng, false);
}

static bool check_composite(lg_ctx *ctx, const lg_sched_opts *o, lg_optim *opt)
{
    if (o->nschedules < 1 || !o->schedules)
        return lgC_fail(ctx, o->nschedules >= 1 ? LG_ERR_NULL : LG_ERR_VALUE,
                        "%s: nschedules = %d, schedules %s: expected >= 1 schedules (required)",
                        who_new, o->nschedules, o->schedules ? "given" : "NULL");
    for (int i = 0; i < o->nschedules; i++) {
        const lg_sched *k = o->schedules[i];
        if (!k)
            return lgC_fail(ctx, LG_ERR_NULL, "%s: schedules[%d] is NULL", who_new, i);
        if (k->opt != opt)
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: schedules[%d] belongs to another optimizer than schedules[0]",
                            who_new, i);
        if (k->owner)
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: schedules[%d] already belongs to a %s", who_new,
                            i, lgN_sched_kind_names[k->owner->o.kind]);
        for (int j = 0; j < i; j++)
            if (o->schedules[j] == k)
                return lgC_fail(ctx, LG_ERR_VALUE, "%s: schedules[%d] is schedules[%d] again",
                                who_new, i, j);
        if (k->o.kind == LG_SCHED_PLATEAU ||
            (o->kind == LG_SCHED_SEQUENTIAL && lgN_sched_composite(k->o.kind)))
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: schedules[%d] is %s, which %s cannot hold",
                            who_new, i, lgN_sched_kind_names[k->o.kind],
                            lgN_sched_kind_names[o->kind]);
    }
    if (o->kind == LG_SCHED_CHAINED)
        return true;
    if (!check_milestones(ctx, o, 1))
        return false;
    if (o->nmilestones != o->nschedules - 1)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: nmilestones = %d, expected nschedules - 1 = %d",
                        who_new, o->nmilestones, o->nschedules - 1);
    return true;
}

static bool check_resume(lg_ctx *ctx, const lg_sched_opts *o, int ng)
{
    if (!o->resume) {
        if (o->last_epoch || o->initial_lr != 0 || o->ninitial_lrs || o->initial_lrs)
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: last_epoch / initial_lr(s) are given without resume = true",
                            who_new);
        return true;
    }
    if (o->last_epoch < 0 || o->last_epoch == INT64_MAX)
        return lgC_fail(ctx, LG_ERR_VALUE,
                        "%s: last_epoch = %lld, expected 0 <= last_epoch < INT64_MAX with resume",
                        who_new, (long long)o->last_epoch);
    return !plain(o->kind) ||
           group_list(ctx, "initial_lr", o->initial_lr, o->initial_lrs, o->ninitial_lrs, ng, false);
}

static bool validate(lg_ctx *ctx, const lg_sched_opts *o, lg_optim *opt, int ng, int64_t *total,
                     lg_optim_hyper *h)
{
    *h = LG_HYPER_LR;
    if (!check_resume(ctx, o, ng))
        return false;
    switch (o->kind) {
    case LG_SCHED_STEP:
        if (!int_ge(ctx, "step_size", o->step_size, 1, true))
            return false;
        /* fall through */
    case LG_SCHED_EXPONENTIAL:
    case LG_SCHED_MULTISTEP:
        if (!(isfinite(o->gamma) && o->gamma >= 0))
            return lgC_fail(ctx, LG_ERR_VALUE,
                            isnan(o->gamma) && o->kind == LG_SCHED_EXPONENTIAL
                                ? "%s: gamma = %g: it is required for LG_SCHED_EXPONENTIAL"
                                : "%s: gamma = %g, expected finite and >= 0",
                            who_new, o->gamma);
        if (o->kind == LG_SCHED_MULTISTEP && o->nmilestones == 0 && !o->milestones)
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: nmilestones = 0: milestones are required",
                            who_new);
        return o->kind != LG_SCHED_MULTISTEP || check_milestones(ctx, o, 0);
    case LG_SCHED_COSINE:
        return int_ge(ctx, "t_max", o->t_max, 1, true) && finite_ge0(ctx, "eta_min", o->eta_min);
    case LG_SCHED_LINEAR:
        if (!(o->start_factor > 0 && o->start_factor <= 1))
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: start_factor = %g, expected in (0, 1]", who_new,
                            o->start_factor);
        if (!(o->end_factor >= 0 && o->end_factor <= 1))
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: end_factor = %g, expected in [0, 1]", who_new,
                            o->end_factor);
        return int_ge(ctx, "total_iters", o->total_iters, 1, false);
    case LG_SCHED_CONSTANT:
        if (!(o->factor > 0 && o->factor <= 1))
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: factor = %g, expected in (0, 1] (PyTorch divides by it)", who_new,
                            o->factor);
        return int_ge(ctx, "total_iters", o->total_iters, 1, false);
    case LG_SCHED_POLYNOMIAL:
        return int_ge(ctx, "total_iters", o->total_iters, 1, false) &&
               finite_ge0(ctx, "power", o->power);
    case LG_SCHED_LAMBDA:
    case LG_SCHED_MULTIPLICATIVE:
        if (!o->lr_lambda)
            return lgC_fail(ctx, LG_ERR_NULL, "%s: lr_lambda is NULL (required for %s)", who_new,
                            lgN_sched_kind_names[o->kind]);
        return true;
    case LG_SCHED_COSINE_WARM_RESTARTS:
        return int_ge(ctx, "t_0", o->t_0, 1, true) && int_ge(ctx, "t_mult", o->t_mult, 1, false) &&
               finite_ge0(ctx, "eta_min", o->eta_min);
    case LG_SCHED_CYCLIC: return check_cyclic(ctx, o, ng) && check_momentum(ctx, o, opt, h);
    case LG_SCHED_ONE_CYCLE:
        return check_one_cycle(ctx, o, ng, total) && check_momentum(ctx, o, opt, h);
    case LG_SCHED_PLATEAU: return check_plateau(ctx, o, ng);
    default: return check_composite(ctx, o, opt);
    }
}

/* ------------------------------------------------------------------ */
/* Making a schedule                                                    */
/* ------------------------------------------------------------------ */

static double *dalloc(lg_ctx *ctx, int n)
{
    return lgC_palloc(ctx, sizeof(double) * (size_t)(n > 0 ? n : 1), who_new);
}

/* PyTorch's constructor: the groups' starting values, then its first step. */
static bool start(lg_sched *s, const lg_sched_opts *o)
{
    int ng = s->ng;
    for (int g = 0; g < ng; g++) {
        double lr = lg_optim_group_lr(s->opt, g);
        s->base[g] =
            o->resume ? group_value(o->initial_lr, o->initial_lrs, o->ninitial_lrs, g) : lr;
    }
    s->epoch = o->resume ? o->last_epoch : -1;
    switch (o->kind) {
    case LG_SCHED_COSINE_WARM_RESTARTS:
        s->t_i = o->t_0, s->t_cur = o->resume ? o->last_epoch : -1;
        break;
    case LG_SCHED_CYCLIC:
        for (int g = 0; g < ng; g++) {
            s->base[g] = group_value(o->base_lr, o->base_lrs, o->nbase_lrs, g);
            s->maxv[g] = group_value(o->max_lr, o->max_lrs, o->nmax_lrs, g);
            if (!o->resume)
                lg_optim_set_group_lr(s->opt, g, s->base[g]);
            if (s->mom_h != LG_HYPER_LR && !o->resume &&
                lg_optim_group_set(s->opt, g, s->mom_h, o->base_momentum) != LG_OK)
                return false;
            if (s->mom_h != LG_HYPER_LR)
                s->bmom[g] = lg_optim_group_get(s->opt, g, s->mom_h);
        }
        break;
    case LG_SCHED_ONE_CYCLE:
        for (int g = 0; g < ng; g++) {
            s->maxv[g] = group_value(o->max_lr, o->max_lrs, o->nmax_lrs, g);
            s->base[g] = s->maxv[g] / o->div_factor;
            s->minv[g] = s->base[g] / o->final_div_factor;
            if (s->mom_h != LG_HYPER_LR && !o->resume &&
                lg_optim_group_set(s->opt, g, s->mom_h, o->max_momentum) != LG_OK)
                return false;
        }
        break;
    case LG_SCHED_PLATEAU:
        s->epoch = 0, s->bad = 0, s->cool = 0;
        s->best = o->plateau_mode == LG_PLATEAU_MIN ? INFINITY : -INFINITY;
        for (int g = 0; g < ng; g++)
            s->minv[g] = group_value(o->min_lr, o->min_lrs, o->nmin_lrs, g);
        return true;
    case LG_SCHED_SEQUENTIAL:
    case LG_SCHED_CHAINED: {
        lg_sched *k0 = s->kids[0];
        for (int g = 0; g < ng; g++)
            s->base[g] = k0->base[g];
        for (int k = 1; k < s->nkids; k++)
            if (plain(s->kids[k]->o.kind))
                memcpy(s->kids[k]->base, s->base, sizeof(double) * (size_t)ng);
        for (int k = 0; k < s->nkids; k++)
            s->kids[k]->owner = s;
        s->epoch = 0;
        if (o->kind == LG_SCHED_CHAINED)
            return true;
        for (int g = 0; g < ng; g++)
            lg_optim_set_group_lr(s->opt, g, s->base[g]);
        for (int k = 0; k < s->nkids; k++)
            s->kids[k]->epoch--; /* PyTorch "undoes" the children's first steps */
        if (lgN_sched_advance(k0, who_new))
            return true;
        for (int k = 0; k < s->nkids; k++) /* the children are the caller's again */
            s->kids[k]->epoch++, s->kids[k]->owner = NULL;
        return false;
    }
    default: break;
    }
    s->first = true;
    bool ok = lgN_sched_advance(s, who_new);
    s->first = false;
    return ok;
}

lg_sched *lg_sched_new(lg_ctx *ctx, lg_optim *opt, const lg_sched_opts *opts)
{
    if (!ctx)
        return NULL;
    if (lgC_failed(ctx, who_new))
        return NULL;
    if (!opt || !opts)
        return lgC_error(ctx, LG_ERR_NULL, "%s: %s is NULL", who_new, !opt ? "opt" : "o");
    if (opt->ctx != ctx)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: opt was made with another ctx", who_new);
    if (!lgC_opts_kinded(ctx, who_new, &sched_desc, opts, (unsigned)opts->kind))
        return NULL;
    lg_sched_opts o = *opts;
    int ng = lg_optim_ngroups(opt);
    int64_t total = 0;
    lg_optim_hyper h;
    if (!validate(ctx, &o, opt, ng, &total, &h))
        return NULL;
    lg_sched *s = lgC_palloc(ctx, sizeof *s, who_new);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    s->ctx = ctx, s->opt = opt, s->o = o, s->ng = ng, s->total = total, s->mom_h = h;
    s->base = dalloc(ctx, ng), s->maxv = dalloc(ctx, ng), s->minv = dalloc(ctx, ng);
    s->bmom = dalloc(ctx, ng), s->lr = dalloc(ctx, ng), s->mom = dalloc(ctx, ng);
    if (!s->base || !s->maxv || !s->minv || !s->bmom || !s->lr || !s->mom)
        return NULL;
    s->nmiles = o.nmilestones;
    if (o.nmilestones > 0) {
        s->miles = lgC_palloc(ctx, sizeof(int64_t) * (size_t)o.nmilestones, who_new);
        if (!s->miles)
            return NULL;
        memcpy(s->miles, o.milestones, sizeof(int64_t) * (size_t)o.nmilestones);
    }
    if (lgN_sched_composite(o.kind)) {
        s->nkids = o.nschedules;
        s->kids = lgC_palloc(ctx, sizeof(lg_sched *) * (size_t)o.nschedules, who_new);
        if (!s->kids)
            return NULL;
        memcpy(s->kids, o.schedules, sizeof(lg_sched *) * (size_t)o.nschedules);
        if (o.kind == LG_SCHED_CHAINED) {
            int n = 3 * ng;
            for (int k = 0; k < s->nkids; k++)
                n += lgN_sched_state_len(s->kids[k]);
            if (!(s->snap = dalloc(ctx, n)))
                return NULL;
        }
    }
    s->o.milestones = NULL, s->o.schedules = NULL, s->o.base_lrs = NULL, s->o.max_lrs = NULL;
    s->o.min_lrs = NULL, s->o.initial_lrs = NULL;
    if (!start(s, &o))
        return NULL;
    return lgN_optim_add_sched(opt, s) ? s : NULL;
}
