/* test_sched.c: every learning-rate schedule against PyTorch 1.13
 * (tests/fixtures/nn/schedules.txt from tools/gen_sched_fixtures.py), bit
 * for bit in float64: the rates (and momenta) of every parameter group after
 * each step; state save / load against an uninterrupted run; one error test
 * per bad option. Cases with more parameter groups than lossgrad can make
 * yet are counted and reported as skipped. */
#include "nfile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef LG_SCHED_STATE_TEST
/* src/nn/sched.h's internal state functions (the library is static here). */
int lgN_sched_state_len(const lg_sched *s);
void lgN_sched_state_save(const lg_sched *s, double *out);
lg_status lgN_sched_state_load(lg_sched *s, const double *in, int len);
#endif

/* The callbacks of the generator's LAMBDAS and SCALE_FNS, same names. */
static double lam_inv(int64_t e)
{
    return 1.0 / (double)(e + 1);
}
static double lam_pow95(int64_t e)
{
    return pow(0.95, (double)e);
}
static double lam_const9(int64_t e)
{
    (void)e;
    return 0.9;
}
static double lam_saw(int64_t e)
{
    return e % 4 == 0 ? 1.1 : 0.8;
}
typedef double (*lam1)(int64_t);
typedef struct lam_pair {
    lam1 g[2];
} lam_pair;
static double lam_call(void *user, int64_t e, int g)
{
    const lam_pair *p = user;
    return p->g[g > 0 ? 1 : 0](e);
}
static const struct {
    const char *name;
    lam_pair p;
} lambdas[] = {
    { "inv", { { lam_inv, lam_inv } } },          { "pow95", { { lam_pow95, lam_pow95 } } },
    { "const9", { { lam_const9, lam_const9 } } }, { "saw", { { lam_saw, lam_saw } } },
    { "inv_pow95", { { lam_inv, lam_pow95 } } },  { "const9_saw", { { lam_const9, lam_saw } } },
};
static double scale_recip(void *user, double x)
{
    (void)user;
    return 1.0 / (1.0 + 0.1 * x);
}
static double scale_half(void *user, double x)
{
    (void)user;
    return pow(0.5, x);
}

static lg_sched_kind kind_of(const char *k)
{
    static const char *const names[] = { "step",           "exponential", "cosine",     "linear",
                                         "multistep",      "constant",    "polynomial", "lambda",
                                         "multiplicative", "warm",        "cyclic",     "onecycle",
                                         "plateau",        "sequential",  "chained" };
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (!strcmp(k, names[i]))
            return (lg_sched_kind)i;
    cr_assert_fail("unknown schedule kind %s", k);
    return LG_SCHED_STEP;
}

/* One lg_sched_opts field from a fixture key (the generator writes the
 * field names); false when the key is not a field. */
static bool set_field(lg_sched_opts *o, const char *k, const char *v)
{
    double d = strtod(v, NULL);
    int64_t i = (int64_t)d;
#define D(f)                                                                                       \
    if (!strcmp(k, #f)) {                                                                          \
        o->f = d;                                                                                  \
        return true;                                                                               \
    }
#define I(f)                                                                                       \
    if (!strcmp(k, #f)) {                                                                          \
        o->f = i;                                                                                  \
        return true;                                                                               \
    }
    D(gamma)
    D(eta_min) D(start_factor) D(end_factor) D(factor) D(power) D(base_lr) D(max_lr)
        D(base_momentum) D(max_momentum) D(pct_start) D(div_factor) D(final_div_factor) D(threshold)
            D(min_lr) D(eps) D(initial_lr) I(step_size) I(t_max) I(total_iters) I(t_0) I(t_mult)
                I(step_size_up) I(step_size_down) I(total_steps) I(epochs) I(steps_per_epoch)
                    I(patience) I(cooldown)
#undef D
#undef I
                        if (!strcmp(k, "last_epoch")) return o->resume = true,
                                                             o->last_epoch = i, true;
    if (!strcmp(k, "cyclic_mode"))
        return o->cyclic_mode = (lg_cyclic_mode)i, true;
    if (!strcmp(k, "scale_mode"))
        return o->scale_mode = (lg_scale_mode)i, true;
    if (!strcmp(k, "anneal"))
        return o->anneal = (lg_anneal)i, true;
    if (!strcmp(k, "plateau_mode"))
        return o->plateau_mode = (lg_plateau_mode)i, true;
    if (!strcmp(k, "threshold_mode"))
        return o->threshold_mode = (lg_threshold_mode)i, true;
    if (!strcmp(k, "cycle_momentum"))
        return o->cycle_momentum = i != 0, true;
    if (!strcmp(k, "three_phase"))
        return o->three_phase = i != 0, true;
    if (!strcmp(k, "scale_fn"))
        return o->scale_fn = !strcmp(v, "recip") ? scale_recip : scale_half, true;
    if (!strcmp(k, "lambda")) {
        for (size_t j = 0; j < sizeof lambdas / sizeof lambdas[0]; j++)
            if (!strcmp(v, lambdas[j].name))
                return o->lr_lambda = lam_call, o->user = (void *)&lambdas[j].p, true;
        cr_assert_fail("unknown lambda %s", v);
    }
    return false;
}

/* The options of the case (prefix "" or "c<i>."): keys and list tensors. */
static lg_sched_opts case_opts(const ncase *c, const char *prefix)
{
    size_t n = strlen(prefix);
    char kk[64];
    snprintf(kk, sizeof kk, "%ssched", prefix);
    lg_sched_opts o = lg_sched_opts_default(kind_of(key(c, kk)));
    for (int i = 0; i < c->nkeys; i++)
        if (!strncmp(c->keys[i], prefix, n) && (n || !strchr(c->keys[i], '.')))
            set_field(&o, c->keys[i] + n, c->vals[i]);
    for (int i = 0; i < c->ntensors; i++) {
        const ntensor *t = &c->t[i];
        if (strncmp(t->name, prefix, n) || (!n && strchr(t->name, '.')))
            continue;
        const char *f = t->name + n;
        int cnt = (int)t->numel;
        if (!strcmp(f, "milestones"))
            o.milestones = t->iv, o.nmilestones = cnt;
        else if (!strcmp(f, "base_lrs"))
            o.base_lrs = t->v, o.nbase_lrs = cnt, o.base_lr = NAN;
        else if (!strcmp(f, "max_lrs"))
            o.max_lrs = t->v, o.nmax_lrs = cnt, o.max_lr = NAN;
        else if (!strcmp(f, "min_lrs"))
            o.min_lrs = t->v, o.nmin_lrs = cnt;
        else if (!strcmp(f, "initial_lrs"))
            o.initial_lrs = t->v, o.ninitial_lrs = cnt;
    }
    return o;
}

/* The case's optimizer, or NULL when it needs parameter groups lossgrad
 * cannot make yet. */
static lg_optim *case_optim(lg_ctx *ctx, const ncase *c)
{
    int ng = (int)keyd(c, "groups", 1);
    const ntensor *lr0 = find(c, "lr0");
    lg_optim_opts oo = lg_optim_opts_default(!strcmp(key(c, "optim"), "adam") ? LG_ADAM : LG_SGD);
    oo.lr = lr0->v[0];
    if (oo.kind == LG_SGD)
        oo.momentum = keyd(c, "momentum", 0);
    if (ng == 1) {
        lg_param_new(ctx, "p", LG_F64, 1, SHAPE(1));
        return lg_optim_new(ctx, &oo);
    }
#ifdef LG_HAVE_PARAM_GROUPS
    lg_tensor *p[8];
    lg_optim_opts go[8];
    lg_param_group grp[8];
    cr_assert_leq(ng, 8);
    for (int g = 0; g < ng; g++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", g);
        p[g] = lg_param_new(ctx, name, LG_F64, 1, SHAPE(1));
        go[g] = oo, go[g].lr = lr0->v[g];
        grp[g] = (lg_param_group){ &p[g], 1, &go[g] };
    }
    oo.groups = grp, oo.ngroups = ng;
    return lg_optim_new(ctx, &oo);
#else
    return NULL;
#endif
}

static lg_sched *case_sched(lg_ctx *ctx, lg_optim *opt, const ncase *c)
{
    lg_sched_opts o = case_opts(c, "");
    lg_sched *kids[8];
    int nk = 0;
    for (; nk < 8; nk++) {
        char kk[32];
        snprintf(kk, sizeof kk, "c%d.sched", nk);
        if (!key(c, kk))
            break;
        snprintf(kk, sizeof kk, "c%d.", nk);
        lg_sched_opts ko = case_opts(c, kk);
        kids[nk] = lg_sched_new(ctx, opt, &ko);
        cr_assert_not_null(kids[nk], "%s: child %d: %s", c->id, nk, lg_ctx_errmsg(ctx));
    }
    if (nk)
        o.schedules = kids, o.nschedules = nk;
    lg_sched *s = lg_sched_new(ctx, opt, &o);
    cr_assert_not_null(s, "%s: %s", c->id, lg_ctx_errmsg(ctx));
    return s;
}

static double moment(const lg_optim *opt, int g)
{
    double m = lg_optim_group_get(opt, g, LG_HYPER_MOMENTUM);
    return isnan(m) ? lg_optim_group_get(opt, g, LG_HYPER_BETA1) : m;
}

/* Bit-exact: PyTorch's order of operations is kept throughout sched.c. */
static void expect_row(const ncase *c, const lg_optim *opt, const ntensor *want, int64_t row,
                       bool mom)
{
    if (!want)
        return;
    int ng = lg_optim_ngroups(opt);
    for (int g = 0; g < ng; g++) {
        double got = mom ? moment(opt, g) : lg_optim_group_lr(opt, g), w = want->v[row * ng + g];
        cr_assert(got == w || (isnan(got) && isnan(w)),
                  "%s: step %lld group %d %s %.17g, PyTorch %.17g", c->id, (long long)row, g,
                  mom ? "momentum" : "lr", got, w);
    }
}

static bool step_case(const ncase *c, lg_sched *s, int64_t i)
{
    const ntensor *m = find(c, "metrics");
    if (m)
        return lg_sched_step_metric(s, m->v[i]) == LG_OK;
    return !isnan(lg_sched_step(s));
}

Test(sched, schedules_match_pytorch)
{
    nfile nf = read_nfile("schedules.txt");
    cr_assert_geq(nf.ncases, 30);
    int skipped = 0;
    for (int i = 0; i < nf.ncases; i++) {
        const ncase *c = &nf.cases[i];
        lg_ctx *ctx = test_ctx(1);
        lg_optim *opt = case_optim(ctx, c);
        if (!opt) {
            skipped++;
            lg_ctx_free(ctx);
            continue;
        }
        lg_sched *s = case_sched(ctx, opt, c);
        const ntensor *lrs = find(c, "lrs"), *moms = find(c, "moms");
        cr_assert_eq(lrs->shape[1], lg_optim_ngroups(opt), "%s", c->id);
        for (int64_t e = 0; e < lrs->shape[0]; e++) {
            if (e > 0)
                cr_assert(step_case(c, s, e - 1), "%s: step %lld: %s", c->id, (long long)e,
                          lg_ctx_errmsg(ctx));
            expect_row(c, opt, lrs, e, false);
            expect_row(c, opt, moms, e, true);
        }
        lg_ctx_free(ctx);
    }
    if (skipped)
        printf("test_sched: %d of %d fixture cases skipped: they need %s\n", skipped, nf.ncases,
               "parameter groups (LG_HAVE_PARAM_GROUPS)");
    free_nfile(&nf);
}

#ifdef LG_SCHED_STATE_TEST
/* Every fixture case: run k steps, save the schedule's state (and the
 * optimizer's rates and momenta, which a checkpoint holds), make everything
 * afresh, restore, load, and continue: the rates equal the uninterrupted
 * run's bit for bit. */
Test(sched, state_save_load_continues_bit_identically)
{
    nfile nf = read_nfile("schedules.txt");
    int tested = 0;
    for (int i = 0; i < nf.ncases; i++) {
        const ncase *c = &nf.cases[i];
        int64_t steps = find(c, "lrs")->shape[0] - 1, k = 1 + i % 13;
        lg_ctx *a = test_ctx(1), *b = test_ctx(1);
        lg_optim *oa = case_optim(a, c);
        if (!oa) {
            lg_ctx_free(a), lg_ctx_free(b);
            continue;
        }
        lg_sched *sa = case_sched(a, oa, c);
        for (int64_t e = 0; e < k; e++)
            cr_assert(step_case(c, sa, e), "%s", c->id);
        int len = lgN_sched_state_len(sa), ng = lg_optim_ngroups(oa);
        double *st = calloc((size_t)len, sizeof *st), lr[8], mo[8], be[8];
        lgN_sched_state_save(sa, st);
        for (int g = 0; g < ng; g++) {
            lr[g] = lg_optim_group_lr(oa, g);
            mo[g] = lg_optim_group_get(oa, g, LG_HYPER_MOMENTUM);
            be[g] = lg_optim_group_get(oa, g, LG_HYPER_BETA1);
        }
        lg_optim *ob = case_optim(b, c);
        lg_sched *sb = case_sched(b, ob, c);
        for (int g = 0; g < ng; g++) {
            lg_optim_set_group_lr(ob, g, lr[g]);
            if (!isnan(mo[g]))
                lg_optim_group_set(ob, g, LG_HYPER_MOMENTUM, mo[g]);
            if (!isnan(be[g]))
                lg_optim_group_set(ob, g, LG_HYPER_BETA1, be[g]);
        }
        cr_assert_eq(lgN_sched_state_len(sb), len, "%s", c->id);
        cr_assert_eq(lgN_sched_state_load(sb, st, len), LG_OK, "%s: %s", c->id, lg_ctx_errmsg(b));
        for (int64_t e = k; e < steps; e++) {
            cr_assert(step_case(c, sa, e) && step_case(c, sb, e), "%s", c->id);
            for (int g = 0; g < ng; g++) {
                cr_assert(lg_optim_group_lr(oa, g) == lg_optim_group_lr(ob, g),
                          "%s: step %lld group %d: %.17g after load, %.17g uninterrupted", c->id,
                          (long long)e + 1, g, lg_optim_group_lr(ob, g), lg_optim_group_lr(oa, g));
                cr_assert(moment(oa, g) == moment(ob, g) || isnan(moment(oa, g)), "%s", c->id);
            }
        }
        /* a bad state is refused and changes nothing */
        double keep = st[2];
        st[2] = 0.5;
        cr_assert_eq(lgN_sched_state_load(sb, st, len), LG_ERR_VALUE, "%s", c->id);
        cr_assert(strstr(lg_ctx_errmsg(b), "lgN_sched_state_load: in[2] = 0.5"), "%s",
                  lg_ctx_errmsg(b));
        lg_ctx_clear_error(b);
        st[2] = keep, st[0] += 1;
        cr_assert_eq(lgN_sched_state_load(sb, st, len), LG_ERR_VALUE);
        lg_ctx_clear_error(b);
        cr_assert_eq(lgN_sched_state_load(sb, st, len - 1), LG_ERR_VALUE);
        lg_ctx_clear_error(b);
        free(st);
        tested++;
        lg_ctx_free(a), lg_ctx_free(b);
    }
    cr_assert_geq(tested, 20);
    free_nfile(&nf);
}
#endif

/* ------------------------------------------------------------------ */
/* Errors: one per bad option                                           */
/* ------------------------------------------------------------------ */

static lg_optim *one_group(lg_ctx *ctx, lg_optim_kind kind)
{
    lg_param_new(ctx, "w", LG_F64, 1, SHAPE(1));
    lg_optim_opts oo = lg_optim_opts_default(kind);
    oo.lr = 0.1;
    return lg_optim_new(ctx, &oo);
}

static lg_sched *must_null(lg_sched *s)
{
    cr_assert_null(s, "lg_sched_new made a schedule");
    return s;
}
static double must_nan(double v)
{
    cr_assert(isnan(v), "lg_sched_step returned %g", v);
    return v;
}

#define BAD(ctx, opt, o, status, substr)                                                           \
    do {                                                                                           \
        EXPECT_ERR(ctx, must_null(lg_sched_new(ctx, opt, &(o))), status, substr);                  \
        cr_assert_eq(lg_optim_lr(opt), 0.1, "the rate is unchanged");                              \
    } while (0)

static double neg_lambda(void *user, int64_t e, int g)
{
    (void)user, (void)g;
    return e == 2 ? -1 : 0.5;
}
static double nan_lambda(void *user, int64_t e, int g)
{
    (void)user, (void)g;
    return e == 3 ? NAN : 1;
}

Test(sched, errors_simple_kinds)
{
    lg_ctx *ctx = test_ctx(1);
    lg_optim *opt = one_group(ctx, LG_SGD);
    lg_sched_opts o = lg_sched_opts_default(LG_SCHED_MULTISTEP);
    BAD(ctx, opt, o, LG_ERR_VALUE, "lg_sched_new: nmilestones = 0: milestones are required");
    o.milestones = (const int64_t[]){ 2, 5, 3 }, o.nmilestones = 3;
    BAD(ctx, opt, o, LG_ERR_VALUE,
        "lg_sched_new: milestones[2] = 3 is not above milestones[1] = 5");
    o.milestones = (const int64_t[]){ -1 }, o.nmilestones = 1;
    BAD(ctx, opt, o, LG_ERR_VALUE, "milestones[0] = -1, expected >= 0");
    o.milestones = NULL;
    BAD(ctx, opt, o, LG_ERR_NULL, "milestones is NULL but nmilestones = 1");
    o = lg_sched_opts_default(LG_SCHED_CONSTANT);
    o.factor = 0;
    BAD(ctx, opt, o, LG_ERR_VALUE, "factor = 0, expected in (0, 1]");
    o.factor = 0.5, o.total_iters = 0;
    BAD(ctx, opt, o, LG_ERR_VALUE, "total_iters = 0, expected >= 1");
    o = lg_sched_opts_default(LG_SCHED_POLYNOMIAL);
    o.power = -1;
    BAD(ctx, opt, o, LG_ERR_VALUE, "power = -1, expected finite and >= 0");
    o = lg_sched_opts_default(LG_SCHED_LAMBDA);
    BAD(ctx, opt, o, LG_ERR_NULL, "lr_lambda is NULL (required for LG_SCHED_LAMBDA)");
    o = lg_sched_opts_default(LG_SCHED_COSINE_WARM_RESTARTS);
    BAD(ctx, opt, o, LG_ERR_VALUE, "t_0 = 0, expected >= 1 (required)");
    o.t_0 = 3, o.t_mult = 0;
    BAD(ctx, opt, o, LG_ERR_VALUE, "t_mult = 0, expected >= 1");
    o = lg_sched_opts_default(LG_SCHED_COSINE_WARM_RESTARTS);
    o.t_0 = 3, o.eta_min = -1;
    BAD(ctx, opt, o, LG_ERR_VALUE, "eta_min = -1");
    o.eta_min = 0, o.gamma = 0.5;
    BAD(ctx, opt, o, LG_ERR_VALUE, "gamma is not an option of LG_SCHED_COSINE_WARM_RESTARTS");
    /* by hand: the non-zero defaults must be written */
    BAD(ctx, opt, ((lg_sched_opts){ .kind = LG_SCHED_POLYNOMIAL, .total_iters = 4 }), LG_ERR_VALUE,
        "lg_sched_opts.power is 0");
    BAD(ctx, opt, ((lg_sched_opts){ .kind = LG_SCHED_COSINE_WARM_RESTARTS, .t_0 = 4 }),
        LG_ERR_VALUE, "lg_sched_opts.t_mult is 0");
    BAD(ctx, opt, ((lg_sched_opts){ .kind = (lg_sched_kind)15 }), LG_ERR_VALUE,
        "kind 15 is not a schedule");
    /* resume */
    o = lg_sched_opts_default(LG_SCHED_EXPONENTIAL);
    o.gamma = 0.9, o.last_epoch = 3;
    BAD(ctx, opt, o, LG_ERR_VALUE, "last_epoch / initial_lr(s) are given without resume = true");
    o.resume = true, o.last_epoch = -1;
    BAD(ctx, opt, o, LG_ERR_VALUE, "last_epoch = -1, expected 0 <= last_epoch < INT64_MAX");
    o.last_epoch = 2, o.initial_lrs = (const double[]){ 1, 2 }, o.ninitial_lrs = 2;
    BAD(ctx, opt, o, LG_ERR_VALUE, "ninitial_lrs = 2, expected 1 (one per parameter group");
    /* callbacks: a bad factor fails the step and changes nothing */
    o = lg_sched_opts_default(LG_SCHED_MULTIPLICATIVE);
    o.lr_lambda = neg_lambda;
    lg_sched *s = lg_sched_new(ctx, opt, &o);
    cr_assert_not_null(s, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_sched_step(s), 0.05);
    EXPECT_ERR(ctx, must_nan(lg_sched_step(s)), LG_ERR_VALUE,
               "lg_sched_step: lr_lambda(epoch 2, group 0) = -1, expected finite and >= 0");
    cr_assert_eq(lg_optim_lr(opt), 0.05, "the rate stays");
    lg_optim_set_lr(opt, 0.1);
    o = lg_sched_opts_default(LG_SCHED_LAMBDA);
    o.lr_lambda = nan_lambda;
    s = lg_sched_new(ctx, opt, &o);
    lg_sched_step(s), lg_sched_step(s);
    EXPECT_ERR(ctx, lg_sched_step(s), LG_ERR_VALUE, "lr_lambda(epoch 3, group 0) = nan");
    cr_assert_eq(lg_optim_lr(opt), 0.1);
    EXPECT_ERR(ctx, lg_sched_step_metric(s, 1.0), LG_ERR_STATE,
               "lg_sched_step_metric: only LG_SCHED_PLATEAU takes a metric, not LG_SCHED_LAMBDA");
    lg_ctx_free(ctx);
}

Test(sched, errors_cyclic_one_cycle_plateau)
{
    lg_ctx *ctx = test_ctx(1);
    lg_optim *opt = one_group(ctx, LG_SGD);
    lg_sched_opts o = lg_sched_opts_default(LG_SCHED_CYCLIC);
    BAD(ctx, opt, o, LG_ERR_VALUE, "base_lr = nan: it is required");
    o.base_lr = 0.01;
    BAD(ctx, opt, o, LG_ERR_VALUE, "max_lr = nan: it is required");
    o.max_lr = 0.1, o.max_lrs = (const double[]){ 0.1 }, o.nmax_lrs = 1;
    BAD(ctx, opt, o, LG_ERR_VALUE, "both max_lr = 0.1 and max_lrs are given");
    o.max_lr = NAN, o.nmax_lrs = 2;
    BAD(ctx, opt, o, LG_ERR_VALUE, "nmax_lrs = 2, expected 1");
    o.max_lr = 0.1, o.max_lrs = NULL, o.nmax_lrs = 0, o.step_size_up = 0;
    BAD(ctx, opt, o, LG_ERR_VALUE, "step_size_up = 0, expected >= 1");
    o.step_size_up = 4, o.gamma = 0.9;
    BAD(ctx, opt, o, LG_ERR_VALUE, "gamma = 0.9 is used by LG_CYCLIC_EXP_RANGE only");
    o.gamma = 1, o.scale_mode = LG_SCALE_ITERATIONS;
    BAD(ctx, opt, o, LG_ERR_VALUE, "scale_mode applies to scale_fn only");
    o.scale_mode = LG_SCALE_CYCLE, o.cyclic_mode = LG_CYCLIC_EXP_RANGE, o.scale_fn = scale_half;
    BAD(ctx, opt, o, LG_ERR_VALUE, "cyclic_mode = EXP_RANGE is unused with scale_fn");
    o.scale_fn = NULL, o.cyclic_mode = (lg_cyclic_mode)7;
    BAD(ctx, opt, o, LG_ERR_VALUE, "cyclic_mode = 7 is not an lg_cyclic_mode");
    o.cyclic_mode = LG_CYCLIC_TRIANGULAR, o.base_momentum = 0.95;
    BAD(ctx, opt, o, LG_ERR_VALUE, "0 <= base_momentum <= max_momentum");
    o.step_size_up = INT64_MAX, o.base_momentum = 0.8;
    BAD(ctx, opt, o, LG_ERR_VALUE, "step_size_up + step_size_down overflows int64");
    lg_ctx *c2 = test_ctx(2);
    lg_optim *adam = one_group(c2, LG_ADAM);
    o.step_size_up = 4;
    BAD(c2, adam, o, LG_ERR_VALUE, "cycle_momentum needs an optimizer with momentum");
    lg_ctx_free(c2);

    o = lg_sched_opts_default(LG_SCHED_ONE_CYCLE);
    BAD(ctx, opt, o, LG_ERR_VALUE, "max_lr = nan: it is required");
    o.max_lr = 1;
    BAD(ctx, opt, o, LG_ERR_VALUE,
        "total_steps = 0: give total_steps or epochs and steps_per_epoch");
    o.total_steps = 10, o.epochs = 2;
    BAD(ctx, opt, o, LG_ERR_VALUE, "total_steps = 10 and epochs / steps_per_epoch are given");
    o.total_steps = 0, o.epochs = INT64_MAX / 2, o.steps_per_epoch = 3;
    BAD(ctx, opt, o, LG_ERR_VALUE, "epochs * steps_per_epoch = 4611686018427387903 * 3 overflows");
    o.epochs = 2, o.pct_start = 1.5;
    BAD(ctx, opt, o, LG_ERR_VALUE, "pct_start = 1.5, expected in [0, 1]");
    o.pct_start = 0.3, o.div_factor = 0;
    BAD(ctx, opt, o, LG_ERR_VALUE, "div_factor = 0, expected finite and > 0");
    o.div_factor = 25, o.final_div_factor = -1;
    BAD(ctx, opt, o, LG_ERR_VALUE, "final_div_factor = -1");
    o.final_div_factor = 1e4, o.anneal = (lg_anneal)2;
    BAD(ctx, opt, o, LG_ERR_VALUE, "anneal = 2 is not an lg_anneal");
    o.anneal = LG_ANNEAL_COS, o.resume = true, o.initial_lr = 0.1;
    BAD(ctx, opt, o, LG_ERR_VALUE, "initial_lr is not an option of LG_SCHED_ONE_CYCLE");
    /* past total_steps: an error, nothing changes */
    o.resume = false, o.initial_lr = 0, o.epochs = 1, o.steps_per_epoch = 3;
    lg_sched *s = lg_sched_new(ctx, opt, &o);
    cr_assert_not_null(s, "%s", lg_ctx_errmsg(ctx));
    for (int i = 0; i < 3; i++)
        cr_assert(!isnan(lg_sched_step(s)), "%s", lg_ctx_errmsg(ctx));
    double lr = lg_optim_lr(opt);
    EXPECT_ERR(ctx, lg_sched_step(s), LG_ERR_VALUE,
               "lg_sched_step: step 4 is past total_steps = 3");
    cr_assert_eq(lg_optim_lr(opt), lr);
    lg_optim_set_lr(opt, 0.1);

    o = lg_sched_opts_default(LG_SCHED_PLATEAU);
    o.factor = 1;
    BAD(ctx, opt, o, LG_ERR_VALUE, "factor = 1, expected in [0, 1)");
    o.factor = 0.1, o.patience = -1;
    BAD(ctx, opt, o, LG_ERR_VALUE, "patience = -1, expected >= 0");
    o.patience = 1, o.threshold = NAN;
    BAD(ctx, opt, o, LG_ERR_VALUE, "threshold = nan");
    o.threshold = 1e-4, o.threshold_mode = (lg_threshold_mode)3;
    BAD(ctx, opt, o, LG_ERR_VALUE, "threshold_mode = 3 is not an lg_threshold_mode");
    o.threshold_mode = LG_THRESHOLD_REL, o.min_lrs = (const double[]){ -1 }, o.nmin_lrs = 1;
    BAD(ctx, opt, o, LG_ERR_VALUE, "min_lrs[0] = -1, expected finite and >= 0");
    o.min_lrs = NULL, o.nmin_lrs = 0, o.resume = true;
    BAD(ctx, opt, o, LG_ERR_VALUE, "resume is not an option of LG_SCHED_PLATEAU");
    o.resume = false;
    s = lg_sched_new(ctx, opt, &o);
    cr_assert_not_null(s);
    EXPECT_ERR(ctx, lg_sched_step(s), LG_ERR_STATE, "call lg_sched_step_metric");
    EXPECT_ERR(ctx, lg_sched_step_metric(s, NAN), LG_ERR_VALUE, "metric = nan");
    lg_ctx_free(ctx);
}

Test(sched, errors_composites)
{
    lg_ctx *ctx = test_ctx(1);
    lg_optim *opt = one_group(ctx, LG_SGD);
    lg_sched_opts e = lg_sched_opts_default(LG_SCHED_EXPONENTIAL);
    e.gamma = 0.9;
    lg_sched *a = lg_sched_new(ctx, opt, &e), *b = lg_sched_new(ctx, opt, &e);
    lg_optim_set_lr(opt, 0.1);
    lg_sched_opts o = lg_sched_opts_default(LG_SCHED_SEQUENTIAL);
    BAD(ctx, opt, o, LG_ERR_VALUE, "nschedules = 0, schedules NULL: expected >= 1 schedules");
    o.schedules = (lg_sched *const[]){ a, b }, o.nschedules = 2;
    BAD(ctx, opt, o, LG_ERR_VALUE, "nmilestones = 0, expected nschedules - 1 = 1");
    o.milestones = (const int64_t[]){ 0 }, o.nmilestones = 1;
    BAD(ctx, opt, o, LG_ERR_VALUE, "milestones[0] = 0, expected >= 1");
    o.milestones = (const int64_t[]){ 3 }, o.schedules = (lg_sched *const[]){ a, a };
    BAD(ctx, opt, o, LG_ERR_VALUE, "schedules[1] is schedules[0] again");
    o.schedules = (lg_sched *const[]){ a, NULL };
    BAD(ctx, opt, o, LG_ERR_NULL, "schedules[1] is NULL");
    lg_sched_opts pl = lg_sched_opts_default(LG_SCHED_PLATEAU);
    lg_sched *p = lg_sched_new(ctx, opt, &pl);
    o.schedules = (lg_sched *const[]){ a, p };
    BAD(ctx, opt, o, LG_ERR_VALUE, "schedules[1] is LG_SCHED_PLATEAU, which LG_SCHED_SEQUENTIAL");
    lg_ctx *c2 = test_ctx(2);
    lg_optim *o2 = one_group(c2, LG_SGD);
    lg_sched *x = lg_sched_new(c2, o2, &e);
    o.schedules = (lg_sched *const[]){ a, x };
    BAD(ctx, opt, o, LG_ERR_VALUE, "schedules[1] belongs to another optimizer");
    o.schedules = (lg_sched *const[]){ a, b };
    lg_sched *seq = lg_sched_new(ctx, opt, &o);
    cr_assert_not_null(seq, "%s", lg_ctx_errmsg(ctx));
    EXPECT_ERR(ctx, lg_sched_step(a), LG_ERR_STATE,
               "lg_sched_step: the schedule belongs to a LG_SCHED_SEQUENTIAL schedule");
    lg_sched_opts ch = lg_sched_opts_default(LG_SCHED_CHAINED);
    ch.schedules = (lg_sched *const[]){ b }, ch.nschedules = 1;
    lg_optim_set_lr(opt, 0.1);
    EXPECT_ERR(ctx, lg_sched_new(ctx, opt, &ch), LG_ERR_VALUE,
               "schedules[0] already belongs to a LG_SCHED_SEQUENTIAL");
    ch.schedules = (lg_sched *const[]){ seq };
    cr_assert_not_null(lg_sched_new(ctx, opt, &ch), "a chain may hold a sequence: %s",
                       lg_ctx_errmsg(ctx));
    lg_sched_opts s2 = o;
    lg_sched *c = lg_sched_new(ctx, opt, &e), *d = lg_sched_new(ctx, opt, &e);
    lg_sched_opts ch2 = lg_sched_opts_default(LG_SCHED_CHAINED);
    ch2.schedules = (lg_sched *const[]){ c }, ch2.nschedules = 1;
    lg_sched *chain = lg_sched_new(ctx, opt, &ch2);
    s2.schedules = (lg_sched *const[]){ d, chain };
    (void)chain;
    lg_optim_set_lr(opt, 0.1);
    BAD(ctx, opt, s2, LG_ERR_VALUE,
        "schedules[1] is LG_SCHED_CHAINED, which LG_SCHED_SEQUENTIAL cannot hold");
    lg_ctx_free(c2);
    lg_ctx_free(ctx);
}

/* The options rule (lossgrad.h, "Options") for the new kinds: defaults by
 * lg_sched_opts_default, fields of other kinds rejected, a struct of one
 * kind's defaults refused for another. */
Test(sched, options_rule_new_kinds)
{
    lg_ctx *ctx = test_ctx(1);
    lg_optim *opt = one_group(ctx, LG_SGD);
    lg_sched_opts o = lg_sched_opts_default(LG_SCHED_CONSTANT);
    lg_sched *s = lg_sched_new(ctx, opt, &o);
    cr_assert_not_null(s, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_optim_lr(opt), 0.1 * (1.0 / 3), "factor 1/3");
    for (int i = 0; i < 5; i++)
        lg_sched_step(s);
    cr_assert_eq(lg_optim_lr(opt), 0.1 * (1.0 / 3) * (1.0 / (1.0 / 3)), "total_iters 5");
    lg_optim_set_lr(opt, 0.1);
    o = lg_sched_opts_default(LG_SCHED_POLYNOMIAL);
    s = lg_sched_new(ctx, opt, &o);
    for (int i = 0; i < 5; i++)
        lg_sched_step(s);
    cr_assert_eq(lg_optim_lr(opt), 0, "power 1, total_iters 5: 0 at step 5");
    lg_optim_set_lr(opt, 0.1);
    o = lg_sched_opts_default(LG_SCHED_PLATEAU);
    s = lg_sched_new(ctx, opt, &o);
    for (int i = 0; i < 11; i++)
        lg_sched_step_metric(s, 1.0);
    cr_assert_eq(lg_optim_lr(opt), 0.1, "patience 10");
    lg_sched_step_metric(s, 1.0);
    cr_assert_eq(lg_optim_lr(opt), 0.1 * 0.1, "factor 0.1");
    lg_optim_set_lr(opt, 0.1);
    o = lg_sched_opts_default(LG_SCHED_CYCLIC);
    o.base_lr = 0.01, o.max_lr = 0.11;
    s = lg_sched_new(ctx, opt, &o);
    cr_assert_eq(lg_optim_lr(opt), 0.01);
    cr_assert_eq(lg_optim_group_get(opt, 0, LG_HYPER_MOMENTUM), 0.9, "max_momentum 0.9 at step 0");
    for (int i = 0; i < 2000; i++)
        lg_sched_step(s);
    cr_assert(fabs(lg_optim_lr(opt) - 0.11) < 1e-15, "step_size_up 2000");
    cr_assert(fabs(lg_optim_group_get(opt, 0, LG_HYPER_MOMENTUM) - 0.8) < 1e-15,
              "base_momentum 0.8");
    lg_ctx *c2 = test_ctx(2);
    lg_optim *adam = one_group(c2, LG_ADAM);
    o = lg_sched_opts_default(LG_SCHED_ONE_CYCLE);
    o.max_lr = 1, o.total_steps = 100;
    s = lg_sched_new(c2, adam, &o);
    cr_assert_not_null(s, "%s", lg_ctx_errmsg(c2));
    cr_assert(fabs(lg_optim_lr(adam) - 1.0 / 25) < 1e-15,
              "div_factor 25 (max + (initial - max): rounding)");
    cr_assert_eq(lg_optim_group_get(adam, 0, LG_HYPER_BETA1), 0.95, "beta1 = max_momentum 0.95");
    for (int i = 0; i < 99; i++) /* step 99 = total_steps - 1 ends the last phase */
        lg_sched_step(s);
    cr_assert(fabs(lg_optim_lr(adam) - 1.0 / 25 / 1e4) < 1e-18, "final_div_factor 1e4: %g",
              lg_optim_lr(adam));
    lg_ctx_free(c2);
    o = lg_sched_opts_default(LG_SCHED_ONE_CYCLE);
    o.kind = LG_SCHED_CYCLIC;
    EXPECT_ERR(ctx, lg_sched_new(ctx, opt, &o), LG_ERR_VALUE,
               "made by lg_sched_opts_default(LG_SCHED_ONE_CYCLE) but kind is LG_SCHED_CYCLIC");
    o = lg_sched_opts_default(LG_SCHED_PLATEAU);
    o.t_0 = 3;
    EXPECT_ERR(ctx, lg_sched_new(ctx, opt, &o), LG_ERR_VALUE,
               "t_0 is not an option of LG_SCHED_PLATEAU");
    EXPECT_ERR(ctx,
               lg_sched_new(ctx, opt,
                            &(lg_sched_opts){ .kind = LG_SCHED_CYCLIC,
                                              .base_lr = 0.1,
                                              .max_lr = 1,
                                              .gamma = 1,
                                              .cycle_momentum = true,
                                              .base_momentum = 0.8,
                                              .max_momentum = 0.9 }),
               LG_ERR_VALUE, "lg_sched_opts.step_size_up is 0");
    lg_ctx_free(ctx);
}
