/* optim.c: SGD, Adam, AdamW and RMSprop with PyTorch 1.13's update rules
 * (torch/optim, the single-tensor path), in the same order of operations,
 * in double precision and stored back in the parameter's dtype (gradient
 * clipping is clip.c's).
 *
 * State buffers are persistent and allocated at a parameter's first
 * update, so steady-state steps allocate nothing.
 */
#include "optim.h"
#include "sched.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const slot_names[][LGN_SLOTS] = {
    [LG_SGD] = { "momentum_buffer", NULL, NULL },
    [LG_ADAM] = { "exp_avg", "exp_avg_sq", "max_exp_avg_sq" },
    [LG_ADAMW] = { "exp_avg", "exp_avg_sq", "max_exp_avg_sq" },
    [LG_RMSPROP] = { "square_avg", "momentum_buffer", "grad_avg" },
    [LG_ADAGRAD] = { "sum", NULL, NULL },
    [LG_ADADELTA] = { "square_avg", "acc_delta", NULL },
    [LG_ADAMAX] = { "exp_avg", "exp_inf", NULL },
    [LG_RADAM] = { "exp_avg", "exp_avg_sq", NULL },
    [LG_RPROP] = { "prev", "step_size", NULL },
    [LG_NADAM] = { "exp_avg", "exp_avg_sq", NULL },
    [LG_ASGD] = { "ax", NULL, NULL },
    [LG_LBFGS] = { NULL, NULL, NULL },
};

static const char *const scalar_names[][LGN_SCALARS] = {
    [LG_NADAM] = { "mu_product", NULL },
    [LG_ASGD] = { "eta", "mu" },
    [LG_LBFGS] = { NULL, NULL },
};

const char *lgN_scalar_name(const lg_optim *o, int s)
{
    return scalar_names[o->kind][s];
}

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
    if (!o->slot[s][i]) {
        o->slot[s][i] = lgC_palloc(o->ctx, param_bytes(o->params[i]), "lg_optim_step");
        if (s == 0)
            o->fresh[i] = true;
    }
    return o->slot[s][i];
}

static const char *const kind_names[LGN_KINDS] = { "LG_SGD",     "LG_ADAM",    "LG_ADAMW",
                                                   "LG_RMSPROP", "LG_ADAGRAD", "LG_ADADELTA",
                                                   "LG_ADAMAX",  "LG_RADAM",   "LG_RPROP",
                                                   "LG_NADAM",   "LG_ASGD",    "LG_LBFGS" };

lg_optim_opts lg_optim_opts_default(lg_optim_kind kind)
{
    lg_optim_opts o = { .defaults_tag = LG_OPTS_TAG | ((uint32_t)kind & LGC_OPTS_KIND_MASK),
                        .kind = kind };
    switch (kind) {
    case LG_SGD: o.lr = NAN; break;       /* required: PyTorch has no default */
    case LG_ADAMW: o.weight_decay = 0.01; /* fall through */
    case LG_ADAM: o.lr = 1e-3, o.beta1 = 0.9, o.beta2 = 0.999, o.eps = 1e-8; break;
    case LG_RMSPROP: o.lr = 1e-2, o.alpha = 0.99, o.eps = 1e-8; break;
    case LG_ADAGRAD: o.lr = 1e-2, o.eps = 1e-10; break;
    case LG_ADADELTA: o.lr = 1.0, o.rho = 0.9, o.eps = 1e-6; break;
    case LG_ADAMAX: o.lr = 2e-3, o.beta1 = 0.9, o.beta2 = 0.999, o.eps = 1e-8; break;
    case LG_RADAM: o.lr = 1e-3, o.beta1 = 0.9, o.beta2 = 0.999, o.eps = 1e-8; break;
    case LG_RPROP:
        o.lr = 1e-2, o.etaminus = 0.5, o.etaplus = 1.2, o.step_size_min = 1e-6;
        o.step_size_max = 50;
        break;
    case LG_NADAM:
        o.lr = 2e-3, o.beta1 = 0.9, o.beta2 = 0.999, o.eps = 1e-8, o.momentum_decay = 4e-3;
        break;
    case LG_ASGD: o.lr = 1e-2, o.lambd = 1e-4, o.alpha = 0.75, o.t0 = 1e6; break;
    case LG_LBFGS:
        o.lr = 1, o.max_iter = 20, o.tolerance_grad = 1e-7, o.tolerance_change = 1e-9;
        o.history_size = 100;
        break;
    }
    return o;
}

/* The fields of lg_optim_opts that hold hyper-parameters: which kinds have
 * each (bit k for kind k), and which kinds give it a non-zero default. */
#define K(k) (1u << (k))
#define ALL ((1u << LGN_KINDS) - 1)
#define ADAMS (K(LG_ADAM) | K(LG_ADAMW))
#define BETAS (ADAMS | K(LG_ADAMAX) | K(LG_RADAM) | K(LG_NADAM))
#define EPS (BETAS | K(LG_RMSPROP) | K(LG_ADAGRAD) | K(LG_ADADELTA))
static const lgC_kfield fields[] = {
    { LGC_FIELD(lg_optim_opts, lr,
                "1e-3 (Adam, AdamW, RAdam), 1e-2 (RMSprop, Adagrad, Rprop), 1 (Adadelta), "
                "2e-3 (Adamax), none (SGD)"),
      ALL, ALL },
    { LGC_FIELD(lg_optim_opts, weight_decay, "0.01 for AdamW"), ALL & ~(K(LG_RPROP) | K(LG_LBFGS)),
      K(LG_ADAMW) },
    { LGC_FIELD(lg_optim_opts, momentum, "0"), K(LG_SGD) | K(LG_RMSPROP), 0 },
    { LGC_FIELD(lg_optim_opts, dampening, "0"), K(LG_SGD), 0 },
    { LGC_FIELD(lg_optim_opts, nesterov, "false"), K(LG_SGD), 0 },
    { LGC_FIELD(lg_optim_opts, beta1, "0.9"), BETAS, BETAS },
    { LGC_FIELD(lg_optim_opts, beta2, "0.999"), BETAS, BETAS },
    { LGC_FIELD(lg_optim_opts, eps, "1e-8; Adagrad 1e-10; Adadelta 1e-6"), EPS, EPS },
    { LGC_FIELD(lg_optim_opts, amsgrad, "false"), ADAMS, 0 },
    { LGC_FIELD(lg_optim_opts, alpha, "0.99 (RMSprop), 0.75 (ASGD)"), K(LG_RMSPROP) | K(LG_ASGD),
      K(LG_RMSPROP) | K(LG_ASGD) },
    { LGC_FIELD(lg_optim_opts, centered, "false"), K(LG_RMSPROP), 0 },
    { LGC_FIELD(lg_optim_opts, lr_decay, "0"), K(LG_ADAGRAD), 0 },
    { LGC_FIELD(lg_optim_opts, initial_accumulator_value, "0"), K(LG_ADAGRAD), 0 },
    { LGC_FIELD(lg_optim_opts, rho, "0.9"), K(LG_ADADELTA), K(LG_ADADELTA) },
    { LGC_FIELD(lg_optim_opts, etaminus, "0.5"), K(LG_RPROP), K(LG_RPROP) },
    { LGC_FIELD(lg_optim_opts, etaplus, "1.2"), K(LG_RPROP), K(LG_RPROP) },
    { LGC_FIELD(lg_optim_opts, step_size_min, "1e-6"), K(LG_RPROP), K(LG_RPROP) },
    { LGC_FIELD(lg_optim_opts, step_size_max, "50"), K(LG_RPROP), K(LG_RPROP) },
    { LGC_FIELD(lg_optim_opts, momentum_decay, "4e-3"), K(LG_NADAM), K(LG_NADAM) },
    { LGC_FIELD(lg_optim_opts, lambd, "1e-4"), K(LG_ASGD), K(LG_ASGD) },
    { LGC_FIELD(lg_optim_opts, t0, "1e6"), K(LG_ASGD), K(LG_ASGD) },
    { LGC_FIELD(lg_optim_opts, max_iter, "20"), K(LG_LBFGS), K(LG_LBFGS) },
    { LGC_FIELD(lg_optim_opts, max_eval, "0 (max_iter * 5 / 4)"), K(LG_LBFGS), 0 },
    { LGC_FIELD(lg_optim_opts, history_size, "100"), K(LG_LBFGS), K(LG_LBFGS) },
    { LGC_FIELD(lg_optim_opts, tolerance_grad, "1e-7"), K(LG_LBFGS), K(LG_LBFGS) },
    { LGC_FIELD(lg_optim_opts, tolerance_change, "1e-9"), K(LG_LBFGS), K(LG_LBFGS) },
    { LGC_FIELD(lg_optim_opts, line_search, "LG_LINE_SEARCH_NONE"), K(LG_LBFGS), 0 },
    { LGC_FIELD(lg_optim_opts, maximize, "false"), ALL & ~K(LG_LBFGS), 0 },
};
#undef K
#undef ALL
#undef ADAMS
#undef BETAS
#undef EPS
static const lg_optim_opts optim_zero = { 0 };
static const lgC_kdesc optim_desc = {
    { "lg_optim_opts", "lg_optim_opts_default(kind)", sizeof(lg_optim_opts), &optim_zero, NULL, 0 },
    "an optimizer",
    kind_names,
    LGN_KINDS,
    fields,
    (int)(sizeof fields / sizeof fields[0]),
};

/* Resolves the user's struct by the options rule, per kind: out holds the
 * values to use, or false with the error recorded. */
static bool resolve(lg_ctx *ctx, const lg_optim_opts *user, lg_optim_opts *out)
{
    static const char who[] = "lg_optim_new";
    if (!user)
        return lgC_fail(ctx, LG_ERR_NULL,
                        "%s: o is NULL (the kind is required: start from "
                        "lg_optim_opts_default(kind))",
                        who);
    if (!lgC_opts_kinded(ctx, who, &optim_desc, user, (unsigned)user->kind))
        return false;
    *out = *user;
    return true;
}

/* PyTorch 1.13's checks, and finiteness (PyTorch lets a NaN lr through);
 * who names the struct ("lg_optim_new" or "lg_optim_new: groups[1].opts"). */
static bool validate(lg_ctx *ctx, const char *who, const lg_optim_opts *o)
{
    const char *bad = NULL, *rule = NULL;
    double v = 0;
    if (!(isfinite(o->lr) && o->lr >= 0))
        bad = "lr", v = o->lr, rule = "finite and >= 0";
    else if (!(isfinite(o->weight_decay) && o->weight_decay >= 0))
        bad = "weight_decay", v = o->weight_decay, rule = "finite and >= 0";
    else if (!(isfinite(o->momentum) && o->momentum >= 0))
        bad = "momentum", v = o->momentum, rule = "finite and >= 0";
    else if (!isfinite(o->dampening))
        bad = "dampening", v = o->dampening, rule = "finite";
    else if (!(o->beta1 >= 0 && o->beta1 < 1))
        bad = "beta1", v = o->beta1, rule = "in [0, 1)";
    else if (!(o->beta2 >= 0 && o->beta2 < 1))
        bad = "beta2", v = o->beta2, rule = "in [0, 1)";
    else if (!(isfinite(o->eps) && o->eps >= 0))
        bad = "eps", v = o->eps, rule = "finite and >= 0";
    else if (!(isfinite(o->alpha) && o->alpha >= 0))
        bad = "alpha", v = o->alpha, rule = "finite and >= 0";
    else if (!(isfinite(o->lr_decay) && o->lr_decay >= 0))
        bad = "lr_decay", v = o->lr_decay, rule = "finite and >= 0";
    else if (!(isfinite(o->initial_accumulator_value) && o->initial_accumulator_value >= 0))
        bad = "initial_accumulator_value", v = o->initial_accumulator_value,
        rule = "finite and >= 0";
    else if (!(o->rho >= 0 && o->rho <= 1))
        bad = "rho", v = o->rho, rule = "in [0, 1]";
    else if (o->kind == LG_RPROP && !(o->etaminus > 0 && o->etaminus < 1))
        bad = "etaminus", v = o->etaminus, rule = "in (0, 1)";
    else if (o->kind == LG_RPROP && !(isfinite(o->etaplus) && o->etaplus > 1))
        bad = "etaplus", v = o->etaplus, rule = "finite and > 1";
    else if (!(isfinite(o->step_size_min) && o->step_size_min >= 0))
        bad = "step_size_min", v = o->step_size_min, rule = "finite and >= 0";
    else if (!(isfinite(o->step_size_max) && o->step_size_max >= o->step_size_min))
        bad = "step_size_max", v = o->step_size_max, rule = "finite and >= step_size_min";
    else if (!(isfinite(o->momentum_decay) && o->momentum_decay >= 0))
        bad = "momentum_decay", v = o->momentum_decay, rule = "finite and >= 0";
    else if (!(isfinite(o->lambd) && o->lambd >= 0))
        bad = "lambd", v = o->lambd, rule = "finite and >= 0";
    else if (!(isfinite(o->t0) && o->t0 >= 0))
        bad = "t0", v = o->t0, rule = "finite and >= 0";
    else if (!(isfinite(o->tolerance_grad) && o->tolerance_grad >= 0))
        bad = "tolerance_grad", v = o->tolerance_grad, rule = "finite and >= 0";
    else if (!(isfinite(o->tolerance_change) && o->tolerance_change >= 0))
        bad = "tolerance_change", v = o->tolerance_change, rule = "finite and >= 0";
    if (bad) {
        if (o->kind == LG_SGD && bad[0] == 'l' && isnan(v))
            lgC_error(ctx, LG_ERR_VALUE,
                      "%s: lr is required for LG_SGD (PyTorch has no default): set o.lr", who);
        else
            lgC_error(ctx, LG_ERR_VALUE, "%s: %s = %g, expected %s", who, bad, v, rule);
        return false;
    }
    if (o->kind == LG_LBFGS && (o->max_iter < 1 || o->max_eval < 0 || o->history_size < 1 ||
                                (unsigned)o->line_search > LG_LINE_SEARCH_STRONG_WOLFE)) {
        lgC_error(ctx, LG_ERR_VALUE,
                  "%s: max_iter = %d, max_eval = %d, history_size = %d, line_search = %d: "
                  "expected max_iter >= 1, max_eval >= 0 (0: max_iter * 5 / 4), history_size "
                  ">= 1, line_search LG_LINE_SEARCH_NONE or LG_LINE_SEARCH_STRONG_WOLFE",
                  who, o->max_iter, o->max_eval, o->history_size, (int)o->line_search);
        return false;
    }
    if (o->kind == LG_SGD && o->nesterov && (o->momentum <= 0 || o->dampening != 0)) {
        lgC_error(ctx, LG_ERR_VALUE,
                  "%s: nesterov momentum requires a momentum > 0 and zero dampening", who);
        return false;
    }
    return true;
}

/* LBFGS's max_eval: PyTorch's max_iter * 5 // 4 when 0 (at most INT_MAX) */
static int max_eval_of(const lg_optim_opts *o)
{
    int64_t v = (int64_t)o->max_iter * 5 / 4;
    return o->max_eval ? o->max_eval : v > INT_MAX ? INT_MAX : (int)v;
}

static lgN_hyper hyper_of(const lg_optim_opts *o)
{
    return (lgN_hyper){ .lr = o->lr,
                        .weight_decay = o->weight_decay,
                        .momentum = o->momentum,
                        .dampening = o->dampening,
                        .beta1 = o->beta1,
                        .beta2 = o->beta2,
                        .eps = o->eps,
                        .alpha = o->alpha,
                        .nesterov = o->nesterov,
                        .amsgrad = o->amsgrad,
                        .centered = o->centered,
                        .lr_decay = o->lr_decay,
                        .initial_accumulator_value = o->initial_accumulator_value,
                        .rho = o->rho,
                        .etaminus = o->etaminus,
                        .etaplus = o->etaplus,
                        .step_size_min = o->step_size_min,
                        .step_size_max = o->step_size_max,
                        .momentum_decay = o->momentum_decay,
                        .lambd = o->lambd,
                        .t0 = o->t0,
                        .max_iter = o->max_iter,
                        .max_eval = max_eval_of(o),
                        .history_size = o->history_size,
                        .tolerance_grad = o->tolerance_grad,
                        .tolerance_change = o->tolerance_change,
                        .line_search = o->line_search,
                        .maximize = o->maximize };
}

/* Where parameter i of the optimizer was given, for messages:
 * "params[3]" or "groups[1].params[0]". */
static void where(char *buf, size_t size, const lg_optim_opts *o, const int *group, int i)
{
    int k = 0;
    while (k < i && group[i - k - 1] == group[i])
        k++;
    if (o->ngroups)
        snprintf(buf, size, "groups[%d].params[%d]", group[i], k);
    else
        snprintf(buf, size, "params[%d]", i);
}

/* The parameters: the explicit list or the groups' lists (each a parameter
 * of ctx, none twice, as PyTorch's "some parameters appear in more than
 * one parameter group"), or every parameter of the ctx now. */
static bool gather_params(lg_ctx *ctx, const lg_optim_opts *o, lg_tensor **params, int *group,
                          int n)
{
    static const char who[] = "lg_optim_new";
    for (int g = 0, i = 0; g < o->ngroups; g++) {
        for (int k = 0; k < o->groups[g].nparams; k++, i++)
            params[i] = o->groups[g].params[k], group[i] = g;
    }
    for (int i = 0; i < n; i++) {
        if (!o->ngroups) {
            params[i] = o->params ? o->params[i] : lg_param_at(ctx, i);
            group[i] = 0;
        }
        char at[64], at2[64];
        where(at, sizeof at, o, group, i);
        if (!params[i] || lg_tensor_check(ctx, params[i]) != LG_OK ||
            !lgC_is_param(ctx, params[i])) {
            if (lg_ctx_status(ctx) == LG_OK)
                lgC_error(ctx, LG_ERR_VALUE, "%s: %s is not a parameter (lg_param_new)", who, at);
            return false;
        }
        for (int j = 0; j < i; j++)
            if (params[j] == params[i]) {
                where(at2, sizeof at2, o, group, j);
                lgC_error(ctx, LG_ERR_VALUE, "%s: %s is %s again%s", who, at, at2,
                          group[i] != group[j] ? " (a parameter may be in one group only)" : "");
                return false;
            }
    }
    return true;
}

/* The groups' hyper-parameters: each group's opts resolved and checked as
 * the optimizer's own are (NULL: the optimizer's); the parameter count in
 * *n. */
static bool gather_groups(lg_ctx *ctx, const lg_optim_opts *o, lgN_hyper *h, int *n)
{
    static const char who[] = "lg_optim_new";
    *n = 0;
    for (int g = 0; g < o->ngroups; g++) {
        const lg_param_group *pg = &o->groups[g];
        char at[96];
        snprintf(at, sizeof at, "%s: groups[%d].opts", who, g);
        if (!pg->params || pg->nparams < 1)
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s: groups[%d] has nparams = %d%s: a group needs at least one "
                            "parameter",
                            who, g, pg->nparams, pg->params ? "" : " and params NULL");
        if (pg->nparams > INT_MAX - *n)
            return lgC_fail(ctx, LG_ERR_VALUE, "%s: the groups hold more than %d parameters", who,
                            INT_MAX);
        *n += pg->nparams;
        if (!pg->opts) {
            h[g] = hyper_of(o);
            continue;
        }
        if (pg->opts->kind != o->kind)
            return lgC_fail(ctx, LG_ERR_VALUE, "%s->kind = %s, expected the optimizer's %s", at,
                            (unsigned)pg->opts->kind < LGN_KINDS ? kind_names[pg->opts->kind]
                                                                 : "unknown",
                            kind_names[o->kind]);
        if (pg->opts->params || pg->opts->nparams || pg->opts->groups || pg->opts->ngroups)
            return lgC_fail(ctx, LG_ERR_VALUE,
                            "%s has params or groups of its own: a group's parameters are "
                            "groups[%d].params",
                            at, g);
        lg_optim_opts go;
        if (!lgC_opts_kinded(ctx, at, &optim_desc, pg->opts, (unsigned)o->kind))
            return false;
        go = *pg->opts;
        if (!validate(ctx, at, &go))
            return false;
        h[g] = hyper_of(&go);
    }
    return true;
}

lg_optim *lg_optim_new(lg_ctx *ctx, const lg_optim_opts *opts)
{
    static const char who[] = "lg_optim_new";
    lg_optim_opts ov = { 0 };
    if (!ctx || lgC_failed(ctx, who) || !resolve(ctx, opts, &ov) || !validate(ctx, who, &ov))
        return NULL;
    const lg_optim_opts *o = &ov;
    if (o->params == NULL && o->nparams != 0)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: nparams = %d without params", who, o->nparams);
    if ((o->groups == NULL) != (o->ngroups == 0) || o->ngroups < 0)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: ngroups = %d with groups %s", who, o->ngroups,
                         o->groups ? "set" : "NULL");
    if (o->groups && o->params)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: both params and groups are set: with groups, each group lists its "
                         "parameters",
                         who);
    const int ng = o->groups ? o->ngroups : 1;
    if (o->kind == LG_LBFGS && ng > 1)
        return lgC_error(ctx, LG_ERR_VALUE,
                         "%s: LG_LBFGS takes one group of parameters (ngroups = %d), as PyTorch's",
                         who, ng);
    lgN_hyper *groups = lgC_palloc(ctx, (size_t)ng * sizeof *groups, who);
    if (!groups)
        return NULL;
    int n = 0;
    if (o->groups) {
        if (!gather_groups(ctx, o, groups, &n))
            return NULL;
    } else {
        groups[0] = hyper_of(o);
        n = o->params ? o->nparams : lg_param_count(ctx);
    }
    if (n < 0)
        return lgC_error(ctx, LG_ERR_VALUE, "%s: nparams = %d, expected >= 1", who, n);
    if (n == 0)
        return lgC_error(ctx, LG_ERR_VALUE,
                         o->params ? "%s: nparams = 0: an optimizer needs at least one parameter"
                                   : "%s: the ctx has no parameters yet (make the model before "
                                     "its optimizer): an optimizer needs at least one parameter",
                         who);
    lg_optim *opt = lgC_palloc(ctx, sizeof *opt, who);
    lg_tensor **params = opt ? lgC_palloc(ctx, (size_t)n * sizeof *params, who) : NULL;
    int64_t *steps = params ? lgC_palloc(ctx, (size_t)n * sizeof *steps, who) : NULL;
    bool *fresh = steps ? lgC_palloc(ctx, (size_t)n * sizeof *fresh, who) : NULL;
    int *group = fresh ? lgC_palloc(ctx, (size_t)n * sizeof *group, who) : NULL;
    if (!group)
        return NULL;
    for (int s = 0; s < LGN_SLOTS; s++)
        if (!(opt->slot[s] = lgC_palloc(ctx, (size_t)n * sizeof(void *), who)))
            return NULL;
    for (int s = 0; s < LGN_SCALARS; s++)
        if (!(opt->scalar[s] = lgC_palloc(ctx, (size_t)n * sizeof(double), who)))
            return NULL;
    if (!gather_params(ctx, o, params, group, n))
        return NULL;
    opt->ctx = ctx;
    opt->kind = o->kind;
    opt->ngroups = ng;
    opt->groups = groups;
    opt->group = group;
    opt->n = n;
    opt->params = params;
    opt->steps = steps;
    opt->fresh = fresh;
    return opt;
}

#define LGC_TEMPLATE "../nn/optim_kernel.h"
#include "../core/instantiate.h"
#define LGC_TEMPLATE "../nn/optim_more_kernel.h"
#include "../core/instantiate.h"

/* One parameter's update over elements [lo, hi) of it: the updates are
 * elementwise, so a step split over the ctx's threads (lgC_parallel) gives
 * the same bits as one made whole. Its state buffers were allocated by
 * ensure_slots. */
typedef struct update_job {
    const lgN_hyper *o; /* the parameter's group */
    lg_optim_kind kind;
    char *p, *s[LGN_SLOTS]; /* the parameter, its state buffers (or NULL) */
    const char *g;
    size_t es;
    bool f32, fresh;
    double step_size, bc2_sqrt; /* Adam's, for this step */
    double step;                /* the update count, this one included */
    double sc[4];               /* NAdam: the two step sizes; ASGD: eta, mu */
} update_job;

static void update_range(void *arg, int64_t lo, int64_t hi)
{
    const update_job *j = arg;
    const lgN_hyper *o = j->o;
    size_t off = (size_t)lo * j->es;
    int64_t n = hi - lo;
    void *p = j->p + off, *s[LGN_SLOTS];
    const void *g = j->g + off;
    for (int k = 0; k < LGN_SLOTS; k++)
        s[k] = j->s[k] ? j->s[k] + off : NULL;
    switch (j->kind) {
    case LG_SGD:
        if (j->f32)
            sgd_f32(o, p, g, s[0], n, j->fresh);
        else
            sgd_f64(o, p, g, s[0], n, j->fresh);
        break;
    case LG_RMSPROP: /* square_avg, momentum_buffer, grad_avg */
        if (j->f32)
            rmsprop_f32(o, p, g, s[0], s[2], s[1], n);
        else
            rmsprop_f64(o, p, g, s[0], s[2], s[1], n);
        break;
    case LG_ADAGRAD:
    case LG_ADADELTA:
    case LG_ADAMAX:
    case LG_RADAM:
    case LG_RPROP:
        if (j->f32)
            more_f32(o, j->kind, p, g, s[0], s[1], n, j->step, j->fresh);
        else
            more_f64(o, j->kind, p, g, s[0], s[1], n, j->step, j->fresh);
        break;
    case LG_NADAM:
        if (j->f32)
            nadam_f32(o, p, g, s[0], s[1], n, j->step, j->sc[0], j->sc[1]);
        else
            nadam_f64(o, p, g, s[0], s[1], n, j->step, j->sc[0], j->sc[1]);
        break;
    case LG_ASGD:
        if (j->f32)
            asgd_f32(o, p, g, s[0], n, j->sc[0], j->sc[1], j->fresh);
        else
            asgd_f64(o, p, g, s[0], n, j->sc[0], j->sc[1], j->fresh);
        break;
    default: /* exp_avg, exp_avg_sq, max_exp_avg_sq */
        if (j->f32)
            adam_f32(o, j->kind == LG_ADAMW, p, g, s[0], s[1], s[2], n, j->step_size, j->bc2_sqrt);
        else
            adam_f64(o, j->kind == LG_ADAMW, p, g, s[0], s[1], s[2], n, j->step_size, j->bc2_sqrt);
        break;
    }
}

/* The state buffers parameter i's update uses (its group's options). */
static void slots_used(const lg_optim *opt, int i, bool use[LGN_SLOTS])
{
    const lgN_hyper *o = &opt->groups[opt->group[i]];
    for (int k = 0; k < LGN_SLOTS; k++)
        use[k] = false;
    switch (opt->kind) {
    case LG_SGD: use[0] = o->momentum != 0; break;
    case LG_RMSPROP: use[0] = true, use[1] = o->momentum > 0, use[2] = o->centered; break;
    case LG_ADAGRAD: use[0] = true; break;
    case LG_ADADELTA:
    case LG_ADAMAX:
    case LG_RADAM:
    case LG_RPROP:
    case LG_NADAM: use[0] = use[1] = true; break;
    case LG_ASGD: use[0] = true; break;
    default: use[0] = use[1] = true, use[2] = o->amsgrad; break;
    }
}

/* Parameter i's update. */
static void update(lg_optim *o, int i, void *p, const void *g, int64_t n, bool f32)
{
    const lgN_hyper *h = &o->groups[o->group[i]];
    update_job j = { .o = h,
                     .kind = o->kind,
                     .p = p,
                     .g = g,
                     .es = f32 ? sizeof(float) : sizeof(double),
                     .f32 = f32,
                     .fresh = o->fresh[i],
                     .step = (double)o->steps[i] };
    if (o->kind == LG_ADAM || o->kind == LG_ADAMW) {
        double step = (double)o->steps[i];
        double bc1 = 1 - pow(h->beta1, step), bc2 = 1 - pow(h->beta2, step);
        j.step_size = h->lr / bc1, j.bc2_sqrt = sqrt(bc2);
    }
    bool use[LGN_SLOTS];
    slots_used(o, i, use);
    for (int k = 0; k < LGN_SLOTS; k++)
        j.s[k] = use[k] ? o->slot[k][i] : NULL;
    double *s0 = &o->scalar[0][i], *s1 = &o->scalar[1][i];
    if (o->kind == LG_NADAM) { /* PyTorch's mu, mu_next and mu_product (from 1) */
        double step = j.step, md = h->momentum_decay;
        double mu = h->beta1 * (1. - 0.5 * pow(0.96, step * md));
        double mu_next = h->beta1 * (1. - 0.5 * pow(0.96, (step + 1) * md));
        *s0 = (j.fresh ? 1.0 : *s0) * mu;
        double next = *s0 * mu * mu_next;
        j.sc[0] = -h->lr * (1. - mu) / (1. - *s0);
        j.sc[1] = -h->lr * mu_next / (1. - next);
    } else if (o->kind == LG_ASGD) { /* eta and mu as the step found them */
        if (j.fresh)
            *s0 = h->lr, *s1 = 1;
        j.sc[0] = *s0, j.sc[1] = *s1;
    }
    lgC_parallel(o->ctx, n, n, update_range, &j);
    if (o->kind == LG_ASGD) { /* the next step's */
        *s0 = h->lr / pow(1 + h->lambd * h->lr * j.step, h->alpha);
        *s1 = 1 / fmax(1, j.step - h->t0);
    }
    if (j.s[0]) /* SGD: a buffer made in this step starts as the update (PyTorch's clone);
                 * Adagrad, Rprop: their first state is filled in the first update */
        o->fresh[i] = false;
}

/* Parameter i takes part in a step: it requires grad and has a gradient. */
static bool updates(const lg_optim *o, int i)
{
    return lg_tensor_requires_grad(o->params[i]) && lg_tensor_grad(o->params[i]);
}

/* Every state buffer parameter i's update will use, allocated ahead. */
static bool ensure_slots(lg_optim *o, int i)
{
    bool need[LGN_SLOTS];
    slots_used(o, i, need);
    for (int s = 0; s < LGN_SLOTS; s++)
        if (need[s] && !lgN_slot(o, i, s))
            return false;
    return true;
}

lg_status lg_optim_step(lg_optim *o)
{
    if (!o)
        return LG_ERR_NULL;
    if (o->kind == LG_LBFGS)
        return lgC_errorf(o->ctx, LG_ERR_STATE,
                          "lg_optim_step: LG_LBFGS re-evaluates the loss: step it with "
                          "lg_optim_step_closure");
    /* All or nothing: the state every update needs is allocated first, so
     * that an allocation failure leaves parameters and counts unchanged. */
    for (int i = 0; i < o->n; i++)
        if (updates(o, i) && !ensure_slots(o, i))
            return o->ctx->status;
    for (int i = 0; i < o->n; i++) {
        if (!updates(o, i))
            continue; /* frozen, or no gradient yet: skipped, as PyTorch */
        lg_tensor *p = o->params[i], *g = lg_tensor_grad(p);
        bool f32 = lg_tensor_dtype(p) == LG_F32;
        o->steps[i]++;
        void *pd = lg_tensor_data(p);
        const void *gd = lg_tensor_data(g);
        int64_t n = lg_tensor_numel(p);
        update(o, i, pd, gd, n, f32);
    }
    return LG_OK;
}

lg_status lg_optim_step_closure(lg_optim *o, lg_closure_fn closure, void *user, double *loss)
{
    static const char who[] = "lg_optim_step_closure";
    if (!o)
        return LG_ERR_NULL;
    if (lgC_failed(o->ctx, who))
        return o->ctx->status;
    if (!closure)
        return lgC_errorf(o->ctx, LG_ERR_NULL, "%s: closure is NULL", who);
    if (o->kind == LG_LBFGS)
        return lgN_lbfgs_step(o, closure, user, loss);
    double v = closure(o->ctx, user);
    if (lg_ctx_status(o->ctx) != LG_OK)
        return o->ctx->status;
    if (isnan(v))
        return lgC_errorf(o->ctx, LG_ERR_VALUE, "%s: the closure returned NaN", who);
    if (loss)
        *loss = v;
    return lg_optim_step(o);
}

double lg_optim_lr(const lg_optim *o)
{
    return o ? o->groups[0].lr : NAN;
}

lg_status lg_optim_set_lr(lg_optim *o, double lr)
{
    if (!o)
        return LG_ERR_NULL;
    if (!(isfinite(lr) && lr >= 0))
        return lgC_errorf(o->ctx, LG_ERR_VALUE,
                          "lg_optim_set_lr: lr = %g, expected finite and >= 0", lr);
    for (int g = 0; g < o->ngroups; g++)
        o->groups[g].lr = lr;
    return LG_OK;
}

int lg_optim_ngroups(const lg_optim *o)
{
    return o ? o->ngroups : 0;
}

double lg_optim_group_lr(const lg_optim *o, int g)
{
    return o && g >= 0 && g < o->ngroups ? o->groups[g].lr : NAN;
}

static lg_status bad_group(lg_optim *o, const char *who, int g)
{
    return lgC_errorf(o->ctx, LG_ERR_VALUE, "%s: g = %d, expected 0 <= g < %d (the groups)", who, g,
                      o->ngroups);
}

lg_status lg_optim_set_group_lr(lg_optim *o, int g, double lr)
{
    static const char who[] = "lg_optim_set_group_lr";
    if (!o)
        return LG_ERR_NULL;
    if (g < 0 || g >= o->ngroups)
        return bad_group(o, who, g);
    if (!(isfinite(lr) && lr >= 0))
        return lgC_errorf(o->ctx, LG_ERR_VALUE, "%s: lr = %g, expected finite and >= 0", who, lr);
    o->groups[g].lr = lr;
    return LG_OK;
}

static bool has_hyper(const lg_optim *o, lg_optim_hyper h)
{
    switch (h) {
    case LG_HYPER_LR: return true;
    case LG_HYPER_MOMENTUM: return o->kind == LG_SGD || o->kind == LG_RMSPROP;
    case LG_HYPER_BETA1:
        return o->kind == LG_ADAM || o->kind == LG_ADAMW || o->kind == LG_ADAMAX ||
               o->kind == LG_RADAM || o->kind == LG_NADAM;
    }
    return false;
}

double lg_optim_group_get(const lg_optim *o, int g, lg_optim_hyper h)
{
    if (!o || g < 0 || g >= o->ngroups || !has_hyper(o, h))
        return NAN;
    const lgN_hyper *p = &o->groups[g];
    return h == LG_HYPER_LR ? p->lr : h == LG_HYPER_MOMENTUM ? p->momentum : p->beta1;
}

lg_status lg_optim_group_set(lg_optim *o, int g, lg_optim_hyper h, double v)
{
    static const char who[] = "lg_optim_group_set";
    if (!o)
        return LG_ERR_NULL;
    if (h == LG_HYPER_LR)
        return lg_optim_set_group_lr(o, g, v);
    if (g < 0 || g >= o->ngroups)
        return bad_group(o, who, g);
    if (!has_hyper(o, h))
        return lgC_errorf(o->ctx, LG_ERR_VALUE, "%s: h = %d: %s has no %s", who, (int)h,
                          (unsigned)h <= LG_HYPER_BETA1 ? kind_names[o->kind] : "an optimizer",
                          h == LG_HYPER_MOMENTUM ? "momentum"
                          : h == LG_HYPER_BETA1  ? "beta1"
                                                 : "such hyper-parameter");
    lgN_hyper *p = &o->groups[g];
    if (h == LG_HYPER_BETA1) {
        if (!(v >= 0 && v < 1))
            return lgC_errorf(o->ctx, LG_ERR_VALUE, "%s: beta1 = %g, expected in [0, 1)", who, v);
        p->beta1 = v;
        return LG_OK;
    }
    if (!(isfinite(v) && v >= 0) || (p->nesterov && v == 0))
        return lgC_errorf(o->ctx, LG_ERR_VALUE, "%s: momentum = %g, expected finite and >= 0%s",
                          who, v, p->nesterov ? " (> 0 under nesterov)" : "");
    p->momentum = v;
    return LG_OK;
}

bool lgN_optim_add_sched(lg_optim *o, lg_sched *s)
{
    if (o->nscheds == o->cap_scheds) {
        int cap = o->cap_scheds ? 2 * o->cap_scheds : 4;
        lg_sched **a = lgC_palloc(o->ctx, (size_t)cap * sizeof *a, "lg_sched_new");
        if (!a)
            return false;
        if (o->nscheds)
            memcpy(a, o->scheds, (size_t)o->nscheds * sizeof *a);
        lgC_pfree(o->ctx, o->scheds);
        o->scheds = a, o->cap_scheds = cap;
    }
    o->scheds[o->nscheds++] = s;
    return true;
}

int lgN_optim_top_scheds(const lg_optim *o, lg_sched **out)
{
    int n = 0;
    for (int k = 0; k < o->nscheds; k++)
        if (!lgN_sched_owned(o->scheds[k])) {
            if (out)
                out[n] = o->scheds[k];
            n++;
        }
    return n;
}

int64_t lg_optim_steps(const lg_optim *o)
{
    int64_t m = 0;
    for (int i = 0; o && i < o->n; i++)
        m = o->steps[i] > m ? o->steps[i] : m;
    return m;
}
