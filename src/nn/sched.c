/* sched.c: every learning-rate schedule of PyTorch 1.13's
 * torch/optim/lr_scheduler.py, with its recursive get_lr formulas (and its
 * closed forms where SequentialLR uses them), in PyTorch's order of
 * operations, so the rates match PyTorch's bit for bit. Works per parameter
 * group through the optimizer's public per-group API only; each group keeps
 * its own base rate (PyTorch's base_lrs). A step computes every group's new
 * values first and changes nothing unless all of them are valid. */
#include "sched.h"

#include "optim.h" /* only for opt->ctx, the ctx check of lg_sched_new */

#include <math.h>
#include <string.h>

#define M_PI_LG 3.14159265358979323846
#define EXACT_MAX 9007199254740992.0 /* 2^53: state counters are exact up to here */

struct lg_sched {
    lg_ctx *ctx;
    lg_optim *opt;
    lg_sched_opts o; /* as given; its pointers are not used after lg_sched_new */
    int ng;
    double *base;        /* per group: PyTorch's base_lrs (initial_lr) */
    double *maxv, *minv; /* CYCLIC max_lrs; ONE_CYCLE max_lr and min_lr; PLATEAU min_lrs */
    double *bmom;        /* CYCLIC: the base momenta */
    double *lr, *mom;    /* per group scratch: the values a step computes */
    int64_t *miles;
    int nmiles;
    lg_sched **kids;
    int nkids;
    lg_sched *owner; /* the composite this schedule belongs to, or NULL */
    int64_t epoch;   /* PyTorch's last_epoch */
    int64_t t_cur, t_i, total;
    lg_optim_hyper mom_h; /* the hyper-parameter cycled, LG_HYPER_LR for none */
    double best;          /* PLATEAU */
    int64_t bad, cool;
    double *snap; /* CHAINED: a snapshot of the children and the groups */
    bool first;   /* the constructor's step (PyTorch's _step_count == 1) */
};

static const char *const kind_names[] = {
    "LG_SCHED_STEP",           "LG_SCHED_EXPONENTIAL",
    "LG_SCHED_COSINE",         "LG_SCHED_LINEAR",
    "LG_SCHED_MULTISTEP",      "LG_SCHED_CONSTANT",
    "LG_SCHED_POLYNOMIAL",     "LG_SCHED_LAMBDA",
    "LG_SCHED_MULTIPLICATIVE", "LG_SCHED_COSINE_WARM_RESTARTS",
    "LG_SCHED_CYCLIC",         "LG_SCHED_ONE_CYCLE",
    "LG_SCHED_PLATEAU",        "LG_SCHED_SEQUENTIAL",
    "LG_SCHED_CHAINED"
};
#define NKINDS ((unsigned)(sizeof kind_names / sizeof kind_names[0]))

static bool composite(lg_sched_kind k)
{
    return k == LG_SCHED_SEQUENTIAL || k == LG_SCHED_CHAINED;
}

/* Kinds whose base rates are the groups' rates (PyTorch's initial_lr),
 * not rates of their own options. */
static bool plain(lg_sched_kind k)
{
    return k != LG_SCHED_CYCLIC && k != LG_SCHED_ONE_CYCLE && k != LG_SCHED_PLATEAU &&
           !composite(k);
}

/* ------------------------------------------------------------------ */
/* The formulas: s->lr[g] (and s->mom[g]) for epoch s->epoch            */
/* ------------------------------------------------------------------ */

/* (e - 1 - t_max) % (2 t_max) == 0, PyTorch's test for the end of a
 * period, without overflow: past INT64_MAX / 2, 2 t_max does not fit, but
 * then |e - 1 - t_max| < 2 t_max for every e, so only 0 passes. */
static bool restart(int64_t e, int64_t t_max)
{
    int64_t d = (e - 1) - t_max;
    return t_max > INT64_MAX / 2 ? d == 0 : d % (2 * t_max) == 0;
}

static bool factor_ok(lg_sched *s, const char *who, double f, int64_t e, int g)
{
    if (isfinite(f) && f >= 0)
        return true;
    return lgC_fail(s->ctx, LG_ERR_VALUE,
                    "%s: lr_lambda(epoch %lld, group %d) = %g, expected finite and >= 0", who,
                    (long long)e, g, f);
}

/* The rate of one group for the simple kinds; closed0: PyTorch's closed
 * form at epoch 0 (SequentialLR's step(0) at a milestone). */
static bool simple_lr(lg_sched *s, const char *who, int g, bool closed0, double *out)
{
    const lg_sched_opts *o = &s->o;
    double lr = lg_optim_group_lr(s->opt, g), b = s->base[g];
    int64_t e = s->epoch;
    switch (o->kind) {
    case LG_SCHED_STEP:
        *out = closed0 ? b * 1.0 : (e == 0 || e % o->step_size != 0) ? lr : lr * o->gamma;
        return true;
    case LG_SCHED_EXPONENTIAL: *out = closed0 ? b * 1.0 : e == 0 ? lr : lr * o->gamma; return true;
    case LG_SCHED_COSINE: {
        double T = (double)o->t_max, eta = o->eta_min;
        if (closed0)
            *out = eta + (b - eta) * (1 + cos(M_PI_LG * 0.0 / T)) / 2;
        else if (e == 0)
            *out = lr;
        else if (s->first) /* resumed: PyTorch's first step is its closed form */
            *out = eta + (b - eta) * (1 + cos((double)e * M_PI_LG / T)) / 2;
        else if (restart(e, o->t_max))
            *out = lr + (b - eta) * (1 - cos(M_PI_LG / T)) / 2;
        else
            *out = (1 + cos(M_PI_LG * (double)e / T)) / (1 + cos(M_PI_LG * (double)(e - 1) / T)) *
                       (lr - eta) +
                   eta;
        return true;
    }
    case LG_SCHED_LINEAR: {
        double st = o->start_factor, en = o->end_factor, T = (double)o->total_iters;
        if (closed0)
            *out = b * (st + (en - st) * 0.0 / T);
        else if (e == 0)
            *out = lr * st;
        else if (e > o->total_iters)
            *out = lr;
        else
            *out = lr * (1.0 + (en - st) / (T * st + (double)(e - 1) * (en - st)));
        return true;
    }
    case LG_SCHED_MULTISTEP: {
        bool hit = false;
        for (int i = 0; i < s->nmiles; i++)
            hit |= closed0 ? s->miles[i] <= 0 : s->miles[i] == e;
        *out = closed0 ? b * (hit ? o->gamma : 1.0) : hit ? lr * o->gamma : lr;
        return true;
    }
    case LG_SCHED_CONSTANT:
        if (closed0 || e == 0)
            *out = (closed0 ? b : lr) * o->factor;
        else
            *out = e == o->total_iters ? lr * (1.0 / o->factor) : lr;
        return true;
    case LG_SCHED_POLYNOMIAL: {
        double T = (double)o->total_iters;
        if (closed0)
            *out = b * pow(1.0 - 0.0 / T, o->power);
        else if (e == 0 || e > o->total_iters)
            *out = lr;
        else
            *out = lr * pow((1.0 - (double)e / T) / (1.0 - (double)(e - 1) / T), o->power);
        return true;
    }
    case LG_SCHED_LAMBDA: {
        double f = o->lr_lambda(o->user, e, g);
        *out = b * f;
        return factor_ok(s, who, f, e, g);
    }
    case LG_SCHED_MULTIPLICATIVE: {
        if (e <= 0) {
            *out = lr;
            return true;
        }
        double f = o->lr_lambda(o->user, e, g);
        *out = lr * f;
        return factor_ok(s, who, f, e, g);
    }
    default: { /* COSINE_WARM_RESTARTS */
        double eta = o->eta_min;
        *out = eta + (b - eta) * (1 + cos(M_PI_LG * (double)s->t_cur / (double)s->t_i)) / 2;
        return true;
    }
    }
}

static bool cyclic(lg_sched *s, const char *who)
{
    const lg_sched_opts *o = &s->o;
    double up = (double)o->step_size_up,
           down = o->step_size_down ? (double)o->step_size_down : (double)o->step_size_up;
    double total = up + down, ratio = up / total, e = (double)s->epoch;
    double cyc = floor(1 + e / total), x = 1. + e / total - cyc;
    double sfac = x <= ratio ? x / ratio : (x - 1) / (ratio - 1);
    double sx = o->scale_fn ? (o->scale_mode == LG_SCALE_CYCLE ? cyc : e)
                : o->cyclic_mode == LG_CYCLIC_EXP_RANGE ? e
                                                        : cyc;
    double sc = o->scale_fn                               ? o->scale_fn(o->user, sx)
                : o->cyclic_mode == LG_CYCLIC_TRIANGULAR2 ? 1 / pow(2., sx - 1)
                : o->cyclic_mode == LG_CYCLIC_EXP_RANGE   ? pow(o->gamma, sx)
                                                          : 1.;
    if (!isfinite(sc))
        return lgC_fail(s->ctx, LG_ERR_VALUE, "%s: scale_fn(%g) = %g, expected finite", who, sx,
                        sc);
    for (int g = 0; g < s->ng; g++) {
        s->lr[g] = s->base[g] + (s->maxv[g] - s->base[g]) * sfac * sc;
        if (s->mom_h != LG_HYPER_LR)
            s->mom[g] = o->max_momentum - (o->max_momentum - s->bmom[g]) * sfac * sc;
    }
    return true;
}

static double anneal(lg_anneal a, double start, double end, double pct)
{
    if (a == LG_ANNEAL_LINEAR)
        return (end - start) * pct + start;
    double cos_out = cos(M_PI_LG * pct) + 1;
    return end + (start - end) / 2.0 * cos_out;
}

static bool one_cycle(lg_sched *s, const char *who)
{
    const lg_sched_opts *o = &s->o;
    if (s->epoch > s->total)
        return lgC_fail(s->ctx, LG_ERR_VALUE,
                        "%s: step %lld is past total_steps = %lld (PyTorch: tried to step %lld "
                        "times)",
                        who, (long long)s->epoch, (long long)s->total, (long long)s->epoch + 1);
    double T = (double)s->total, e = (double)s->epoch;
    double ends[3] = { o->pct_start * T - 1, 2 * o->pct_start * T - 2, T - 1 };
    int nph = o->three_phase ? 3 : 2;
    if (!o->three_phase)
        ends[1] = T - 1;
    double start = 0, pct = 0;
    int ph = 0;
    for (; ph < nph; ph++) {
        if (e <= ends[ph] || ph == nph - 1) {
            pct = (e - start) / (ends[ph] - start);
            break;
        }
        start = ends[ph];
    }
    for (int g = 0; g < s->ng; g++) {
        double ini = s->base[g], mx = s->maxv[g], mn = s->minv[g];
        double from[3] = { ini, mx, o->three_phase ? ini : 0 },
               to[3] = { mx, o->three_phase ? ini : mn, mn };
        s->lr[g] = anneal(o->anneal, from[ph], to[ph], pct);
        if (s->mom_h != LG_HYPER_LR) {
            double bm = o->base_momentum, xm = o->max_momentum;
            double mf[3] = { xm, bm, xm }, mt[3] = { bm, xm, xm };
            s->mom[g] = anneal(o->anneal, mf[ph], mt[ph], pct);
        }
    }
    return true;
}

/* Computes, checks and sets every group's values for epoch s->epoch. */
static bool apply(lg_sched *s, const char *who, bool closed0)
{
    bool ok = true;
    if (s->o.kind == LG_SCHED_CYCLIC)
        ok = cyclic(s, who);
    else if (s->o.kind == LG_SCHED_ONE_CYCLE)
        ok = one_cycle(s, who);
    else
        for (int g = 0; ok && g < s->ng; g++)
            ok = simple_lr(s, who, g, closed0, &s->lr[g]);
    if (!ok)
        return false;
    for (int g = 0; g < s->ng; g++) {
        if (!(isfinite(s->lr[g]) && s->lr[g] >= 0))
            return lgC_fail(s->ctx, LG_ERR_VALUE,
                            "%s: the rate would become %g (from %g) in group %d, expected finite "
                            "and >= 0",
                            who, s->lr[g], lg_optim_group_lr(s->opt, g), g);
        if (s->mom_h != LG_HYPER_LR && !(isfinite(s->mom[g]) && s->mom[g] >= 0 &&
                                         (s->mom_h != LG_HYPER_BETA1 || s->mom[g] < 1)))
            return lgC_fail(s->ctx, LG_ERR_VALUE, "%s: the %s would become %g in group %d", who,
                            s->mom_h == LG_HYPER_BETA1 ? "beta1" : "momentum", s->mom[g], g);
    }
    for (int g = 0; g < s->ng; g++)
        if (s->mom_h != LG_HYPER_LR && lg_optim_group_set(s->opt, g, s->mom_h, s->mom[g]) != LG_OK)
            return false;
    for (int g = 0; g < s->ng; g++)
        lg_optim_set_group_lr(s->opt, g, s->lr[g]);
    return true;
}

/* ------------------------------------------------------------------ */
/* Stepping                                                             */
/* ------------------------------------------------------------------ */

static bool advance(lg_sched *s, const char *who);

/* PyTorch's scheduler.step(0) (SequentialLR at a milestone). */
static bool restart0(lg_sched *s, const char *who)
{
    int64_t e = s->epoch, tc = s->t_cur, ti = s->t_i;
    s->epoch = 0, s->t_cur = 0, s->t_i = s->o.t_0;
    if (apply(s, who, true))
        return true;
    s->epoch = e, s->t_cur = tc, s->t_i = ti;
    return false;
}

static int state_len(const lg_sched *s);
static void state_save(const lg_sched *s, double *out);
static void state_put(lg_sched *s, const double *in);

static bool chained(lg_sched *s, const char *who)
{
    /* a snapshot of the children and the groups: one failing child undoes all */
    double *p = s->snap;
    for (int k = 0; k < s->nkids; k++) {
        state_save(s->kids[k], p);
        p += state_len(s->kids[k]);
    }
    for (int g = 0; g < s->ng; g++) {
        p[3 * g] = lg_optim_group_lr(s->opt, g);
        p[3 * g + 1] = lg_optim_group_get(s->opt, g, LG_HYPER_MOMENTUM);
        p[3 * g + 2] = lg_optim_group_get(s->opt, g, LG_HYPER_BETA1);
    }
    for (int k = 0; k < s->nkids; k++) {
        if (advance(s->kids[k], who))
            continue;
        p = s->snap;
        for (int j = 0; j < s->nkids; j++) {
            state_put(s->kids[j], p);
            p += state_len(s->kids[j]);
        }
        for (int g = 0; g < s->ng; g++) {
            lg_optim_set_group_lr(s->opt, g, p[3 * g]);
            if (!isnan(p[3 * g + 1]))
                lg_optim_group_set(s->opt, g, LG_HYPER_MOMENTUM, p[3 * g + 1]);
            if (!isnan(p[3 * g + 2]))
                lg_optim_group_set(s->opt, g, LG_HYPER_BETA1, p[3 * g + 2]);
        }
        return false;
    }
    s->epoch++;
    return true;
}

static bool advance(lg_sched *s, const char *who)
{
    if (s->epoch == INT64_MAX)
        return lgC_fail(s->ctx, LG_ERR_STATE, "%s: the schedule has taken INT64_MAX steps", who);
    switch (s->o.kind) {
    case LG_SCHED_CHAINED: return chained(s, who);
    case LG_SCHED_SEQUENTIAL: {
        int64_t e = s->epoch + 1;
        int idx = 0;
        while (idx < s->nmiles && s->miles[idx] <= e)
            idx++;
        bool ok = idx > 0 && s->miles[idx - 1] == e ? restart0(s->kids[idx], who)
                                                    : advance(s->kids[idx], who);
        if (ok)
            s->epoch = e;
        return ok;
    }
    default: break;
    }
    int64_t e = s->epoch, tc = s->t_cur, ti = s->t_i;
    if (s->o.kind == LG_SCHED_COSINE_WARM_RESTARTS) {
        if (s->epoch < 0) { /* PyTorch's first step: epoch 0 */
            s->t_i = s->o.t_0, s->t_cur = 0;
        } else if (++s->t_cur >= s->t_i) {
            if (s->t_i > INT64_MAX / s->o.t_mult)
                return lgC_fail(s->ctx, LG_ERR_STATE,
                                "%s: the next period, %lld * t_mult = %lld, overflows int64", who,
                                (long long)ti, (long long)s->o.t_mult);
            s->t_cur -= s->t_i;
            s->t_i *= s->o.t_mult;
        }
    }
    s->epoch = e < 0 ? 0 : e + 1;
    if (apply(s, who, false))
        return true;
    s->epoch = e, s->t_cur = tc, s->t_i = ti;
    return false;
}

static bool usable(lg_sched *s, const char *who)
{
    if (lgC_failed(s->ctx, who))
        return false;
    if (s->owner)
        return lgC_fail(s->ctx, LG_ERR_STATE,
                        "%s: the schedule belongs to a %s schedule: step that one", who,
                        kind_names[s->owner->o.kind]);
    if (lg_optim_ngroups(s->opt) != s->ng)
        return lgC_fail(s->ctx, LG_ERR_STATE,
                        "%s: the optimizer has %d parameter groups, the schedule was made for %d",
                        who, lg_optim_ngroups(s->opt), s->ng);
    return true;
}

double lg_sched_step(lg_sched *s)
{
    static const char who[] = "lg_sched_step";
    if (!s || !usable(s, who))
        return NAN;
    if (s->o.kind == LG_SCHED_PLATEAU) {
        lgC_fail(s->ctx, LG_ERR_STATE,
                 "%s: LG_SCHED_PLATEAU is stepped with a metric: call lg_sched_step_metric", who);
        return NAN;
    }
    return advance(s, who) ? lg_optim_group_lr(s->opt, 0) : NAN;
}

static bool better(const lg_sched *s, double a)
{
    double t = s->o.threshold, best = s->best;
    if (s->o.plateau_mode == LG_PLATEAU_MIN)
        return s->o.threshold_mode == LG_THRESHOLD_REL ? a < best * (1. - t) : a < best - t;
    return s->o.threshold_mode == LG_THRESHOLD_REL ? a > best * (t + 1.) : a > best + t;
}

lg_status lg_sched_step_metric(lg_sched *s, double metric)
{
    static const char who[] = "lg_sched_step_metric";
    if (!s)
        return LG_ERR_NULL;
    if (!usable(s, who))
        return lg_ctx_status(s->ctx);
    if (s->o.kind != LG_SCHED_PLATEAU)
        return lgC_errorf(s->ctx, LG_ERR_STATE, "%s: only LG_SCHED_PLATEAU takes a metric, not %s",
                          who, kind_names[s->o.kind]);
    if (isnan(metric))
        return lgC_errorf(s->ctx, LG_ERR_VALUE, "%s: metric = nan, expected a number", who);
    if (s->epoch == INT64_MAX || s->bad == INT64_MAX)
        return lgC_errorf(s->ctx, LG_ERR_STATE, "%s: the schedule has taken INT64_MAX steps", who);
    s->epoch++;
    if (better(s, metric))
        s->best = metric, s->bad = 0;
    else
        s->bad++;
    if (s->cool > 0)
        s->cool--, s->bad = 0; /* bad epochs in cooldown do not count */
    if (s->bad > s->o.patience) {
        for (int g = 0; g < s->ng; g++) {
            double old = lg_optim_group_lr(s->opt, g), nw = old * s->o.factor;
            nw = s->minv[g] > nw ? s->minv[g] : nw; /* Python's max(new, min_lr) */
            if (old - nw > s->o.eps)
                lg_optim_set_group_lr(s->opt, g, nw);
        }
        s->cool = s->o.cooldown;
        s->bad = 0;
    }
    return LG_OK;
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
    kind_names,
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
                            i, kind_names[k->owner->o.kind]);
        for (int j = 0; j < i; j++)
            if (o->schedules[j] == k)
                return lgC_fail(ctx, LG_ERR_VALUE, "%s: schedules[%d] is schedules[%d] again",
                                who_new, i, j);
        if (k->o.kind == LG_SCHED_PLATEAU ||
            (o->kind == LG_SCHED_SEQUENTIAL && composite(k->o.kind)))
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: schedules[%d] is %s, which %s cannot hold",
                            who_new, i, kind_names[k->o.kind], kind_names[o->kind]);
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
                            kind_names[o->kind]);
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
        if (advance(k0, who_new))
            return true;
        for (int k = 0; k < s->nkids; k++) /* the children are the caller's again */
            s->kids[k]->epoch++, s->kids[k]->owner = NULL;
        return false;
    }
    default: break;
    }
    s->first = true;
    bool ok = advance(s, who_new);
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
    if (composite(o.kind)) {
        s->nkids = o.nschedules;
        s->kids = lgC_palloc(ctx, sizeof(lg_sched *) * (size_t)o.nschedules, who_new);
        if (!s->kids)
            return NULL;
        memcpy(s->kids, o.schedules, sizeof(lg_sched *) * (size_t)o.nschedules);
        if (o.kind == LG_SCHED_CHAINED) {
            int n = 3 * ng;
            for (int k = 0; k < s->nkids; k++)
                n += state_len(s->kids[k]);
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

bool lgN_sched_owned(const lg_sched *s)
{
    return s->owner != NULL;
}

/* ------------------------------------------------------------------ */
/* State for checkpoints: kind, groups, epoch, base rates, then per kind */
/* ------------------------------------------------------------------ */

static int state_len(const lg_sched *s)
{
    int n = 3 + s->ng;
    switch (s->o.kind) {
    case LG_SCHED_COSINE_WARM_RESTARTS: return n + 2;
    case LG_SCHED_CYCLIC: return n + s->ng;
    case LG_SCHED_PLATEAU: return n + 3;
    case LG_SCHED_SEQUENTIAL:
    case LG_SCHED_CHAINED:
        for (int k = 0; k < s->nkids; k++)
            n += state_len(s->kids[k]);
        return n;
    default: return n;
    }
}

static void state_save(const lg_sched *s, double *out)
{
    *out++ = (double)s->o.kind, *out++ = (double)s->ng, *out++ = (double)s->epoch;
    for (int g = 0; g < s->ng; g++)
        *out++ = s->base[g];
    switch (s->o.kind) {
    case LG_SCHED_COSINE_WARM_RESTARTS: *out++ = (double)s->t_cur, *out++ = (double)s->t_i; break;
    case LG_SCHED_CYCLIC:
        for (int g = 0; g < s->ng; g++)
            *out++ = s->bmom[g];
        break;
    case LG_SCHED_PLATEAU:
        *out++ = s->best, *out++ = (double)s->bad, *out++ = (double)s->cool;
        break;
    case LG_SCHED_SEQUENTIAL:
    case LG_SCHED_CHAINED:
        for (int k = 0; k < s->nkids; k++) {
            state_save(s->kids[k], out);
            out += state_len(s->kids[k]);
        }
        break;
    default: break;
    }
}

/* The inverse of state_save, for data state_check accepted. */
static void state_put(lg_sched *s, const double *in)
{
    s->epoch = (int64_t)in[2];
    in += 3;
    for (int g = 0; g < s->ng; g++)
        s->base[g] = *in++;
    switch (s->o.kind) {
    case LG_SCHED_COSINE_WARM_RESTARTS: s->t_cur = (int64_t)in[0], s->t_i = (int64_t)in[1]; break;
    case LG_SCHED_CYCLIC:
        for (int g = 0; g < s->ng; g++)
            s->bmom[g] = in[g];
        break;
    case LG_SCHED_PLATEAU:
        s->best = in[0], s->bad = (int64_t)in[1], s->cool = (int64_t)in[2];
        break;
    case LG_SCHED_SEQUENTIAL:
    case LG_SCHED_CHAINED:
        for (int k = 0; k < s->nkids; k++) {
            state_put(s->kids[k], in);
            in += state_len(s->kids[k]);
        }
        break;
    default: break;
    }
}

static const char who_load[] = "lgN_sched_state_load";

static bool int_at(lg_ctx *ctx, const double *in, int at, double lo, double hi, const char *what)
{
    double v = in[at];
    if (v >= lo && v <= hi && v == floor(v))
        return true;
    return lgC_fail(ctx, LG_ERR_VALUE,
                    "%s: in[%d] = %g, expected an integer in [%.17g, %.17g] (%s)", who_load, at, v,
                    lo, hi, what);
}

static bool num_at(lg_ctx *ctx, const double *in, int at, const char *what)
{
    if (isfinite(in[at]) && in[at] >= 0)
        return true;
    return lgC_fail(ctx, LG_ERR_VALUE, "%s: in[%d] = %g, expected finite and >= 0 (%s)", who_load,
                    at, in[at], what);
}

/* Checks a state at in + at for s (its children too). */
static bool state_check(const lg_sched *s, const double *in, int at)
{
    lg_ctx *ctx = s->ctx;
    if (in[at] != (double)s->o.kind)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: in[%d] = %g is not this schedule's kind (%s = %d)",
                        who_load, at, in[at], kind_names[s->o.kind], (int)s->o.kind);
    if (in[at + 1] != (double)s->ng)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: in[%d] = %g parameter groups, the schedule has %d",
                        who_load, at + 1, in[at + 1], s->ng);
    if (!int_at(ctx, in, at + 2, composite(s->o.kind) || s->o.kind == LG_SCHED_PLATEAU ? 0 : -2,
                EXACT_MAX, "the epoch"))
        return false;
    int p = at + 3;
    for (int g = 0; g < s->ng; g++)
        if (!num_at(ctx, in, p++, "a base rate"))
            return false;
    switch (s->o.kind) {
    case LG_SCHED_COSINE_WARM_RESTARTS:
        return int_at(ctx, in, p, -1, EXACT_MAX, "T_cur") &&
               int_at(ctx, in, p + 1, (double)s->o.t_0, EXACT_MAX, "T_i");
    case LG_SCHED_CYCLIC:
        for (int g = 0; g < s->ng; g++)
            if (!num_at(ctx, in, p + g, "a base momentum"))
                return false;
        return true;
    case LG_SCHED_PLATEAU:
        if (isnan(in[p]))
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: in[%d] = nan, expected a number (the best)",
                            who_load, p);
        return int_at(ctx, in, p + 1, 0, EXACT_MAX, "the bad epochs") &&
               int_at(ctx, in, p + 2, 0, (double)s->o.cooldown, "the cooldown counter");
    case LG_SCHED_SEQUENTIAL:
    case LG_SCHED_CHAINED:
        for (int k = 0; k < s->nkids; k++) {
            if (!state_check(s->kids[k], in, p))
                return false;
            p += state_len(s->kids[k]);
        }
        return true;
    default: return true;
    }
}

int lgN_sched_state_len(const lg_sched *s)
{
    return s ? state_len(s) : 0;
}

void lgN_sched_state_save(const lg_sched *s, double *out)
{
    if (s && out)
        state_save(s, out);
}

lg_status lgN_sched_state_load(lg_sched *s, const double *in, int len)
{
    if (!s)
        return LG_ERR_NULL;
    if (!in)
        return lgC_errorf(s->ctx, LG_ERR_NULL, "%s: in is NULL", who_load);
    if (len != state_len(s))
        return lgC_errorf(s->ctx, LG_ERR_VALUE, "%s: len = %d, expected %d for this %s", who_load,
                          len, state_len(s), kind_names[s->o.kind]);
    if (!state_check(s, in, 0))
        return lg_ctx_status(s->ctx);
    state_put(s, in);
    return LG_OK;
}
