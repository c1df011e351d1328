/* sched.c: stepping every learning-rate schedule of PyTorch 1.13's
 * torch/optim/lr_scheduler.py, with its recursive get_lr formulas (and its
 * closed forms where SequentialLR uses them), in PyTorch's order of
 * operations, so the rates match PyTorch's bit for bit; and a schedule's
 * state as checkpoints read and write it. Works per parameter group through
 * the optimizer's public per-group API only; each group keeps its own base
 * rate (PyTorch's base_lrs). A step computes every group's new values first
 * and changes nothing unless all of them are valid. The options and
 * lg_sched_new are in sched_opts.c. */
#include "sched.h"

#include <math.h>

#define M_PI_LG 3.14159265358979323846
#define EXACT_MAX 9007199254740992.0 /* 2^53: state counters are exact up to here */

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
        if (lgN_sched_advance(s->kids[k], who))
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

bool lgN_sched_advance(lg_sched *s, const char *who)
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
                                                    : lgN_sched_advance(s->kids[idx], who);
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
                        lgN_sched_kind_names[s->owner->o.kind]);
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
    return lgN_sched_advance(s, who) ? lg_optim_group_lr(s->opt, 0) : NAN;
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
                          who, lgN_sched_kind_names[s->o.kind]);
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
                        who_load, at, in[at], lgN_sched_kind_names[s->o.kind], (int)s->o.kind);
    if (in[at + 1] != (double)s->ng)
        return lgC_fail(ctx, LG_ERR_VALUE, "%s: in[%d] = %g parameter groups, the schedule has %d",
                        who_load, at + 1, in[at + 1], s->ng);
    if (!int_at(ctx, in, at + 2,
                lgN_sched_composite(s->o.kind) || s->o.kind == LG_SCHED_PLATEAU ? 0 : -2, EXACT_MAX,
                "the epoch"))
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
                          len, state_len(s), lgN_sched_kind_names[s->o.kind]);
    if (!state_check(s, in, 0))
        return lg_ctx_status(s->ctx);
    state_put(s, in);
    return LG_OK;
}
