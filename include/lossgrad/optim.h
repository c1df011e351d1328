/*
 * lossgrad/optim.h: optimizers, gradient clipping and learning-rate
 * schedules (included by lossgrad/nn.h, itself included by lossgrad.h;
 * include lossgrad.h, not this file).
 */
#ifndef LOSSGRAD_OPTIM_H
#define LOSSGRAD_OPTIM_H

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Optimizers: PyTorch 1.13's update rules, over every parameter of the */
/* ctx that exists when the optimizer is made (or an explicit list).    */
/* Parameters without a gradient are skipped, as PyTorch.               */
/* ------------------------------------------------------------------ */

typedef enum lg_optim_kind {
    LG_SGD = 0,
    LG_ADAM,
    LG_ADAMW,
    LG_RMSPROP,
    LG_ADAGRAD,  /* torch.optim.Adagrad (dense) */
    LG_ADADELTA, /* torch.optim.Adadelta */
    LG_ADAMAX,   /* torch.optim.Adamax */
    LG_RADAM,    /* torch.optim.RAdam (maximize: lossgrad's; 1.13 has none) */
    LG_RPROP,    /* torch.optim.Rprop */
    LG_NADAM,    /* torch.optim.NAdam (maximize: lossgrad's; 1.13 has none) */
    LG_ASGD,     /* torch.optim.ASGD */
    LG_LBFGS     /* torch.optim.LBFGS: lg_optim_step_closure only, one group */
} lg_optim_kind;
typedef enum lg_line_search { LG_LINE_SEARCH_NONE = 0, LG_LINE_SEARCH_STRONG_WOLFE } lg_line_search;

/* One struct for every kind; lg_optim_opts_default(kind) fills in
 * PyTorch 1.13's defaults for that kind (the comments give them). A field
 * that the kind does not have must stay 0 (LG_ERR_VALUE otherwise), and a
 * struct from lg_optim_opts_default(k) must keep kind k. By hand, every
 * field of the kind whose default is not zero must be written. */
typedef struct lg_param_group lg_param_group; /* below */
typedef struct lg_optim_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_optim_kind kind;
    double lr; /* SGD: required (no default: lg_optim_opts_default leaves NaN, which
                * lg_optim_new rejects until it is set); Adam, AdamW, RAdam 1e-3; RMSprop,
                * Adagrad 1e-2; Adadelta 1; Adamax, NAdam 2e-3; Rprop 1e-2 (the initial step
                * size); ASGD 1e-2.
                * >= 0 (0 is allowed, as PyTorch: warm-up schedules start there) */
    double weight_decay; /* every kind but Rprop: L2 added to the gradient, default 0;
                          * AdamW: decoupled, p *= 1 - lr wd, default 0.01 */
    /* SGD (and RMSprop's momentum) */
    double momentum, dampening; /* default 0, 0; dampening: SGD only */
    bool nesterov;
    /* Adam, AdamW (and Adamax, RAdam, NAdam: betas and eps) */
    double beta1, beta2; /* default 0.9, 0.999; in [0, 1) */
    double eps; /* Adam, AdamW, RMSprop, Adamax, RAdam, NAdam: default 1e-8; Adagrad 1e-10;
                 * Adadelta 1e-6; >= 0 */
    bool amsgrad;
    /* RMSprop */
    double alpha; /* default 0.99; ASGD: the power of eta's decay, default 0.75 */
    bool centered;
    /* Adagrad: lr / (1 + (step - 1) lr_decay); the sum of squares starts at
     * initial_accumulator_value; both default 0, >= 0 */
    double lr_decay, initial_accumulator_value;
    double rho; /* Adadelta: default 0.9, in [0, 1] */
    /* Rprop: step sizes times etaplus (1.2) where the gradient keeps its
     * sign, etaminus (0.5) where it flips, 0 < etaminus < 1 < etaplus,
     * clamped to [step_size_min, step_size_max] (1e-6, 50) */
    double etaminus, etaplus, step_size_min, step_size_max;
    double momentum_decay; /* NAdam: default 4e-3, finite and >= 0 */
    /* ASGD: eta = lr / (1 + lambd lr step)^alpha, p *= 1 - lambd eta, averaging
     * from step t0 on; lambd 1e-4 and t0 1e6 by default, finite and >= 0.
     * NAdam's mu_product and ASGD's eta and mu are kept in double (PyTorch:
     * the default dtype, usually float32) */
    double lambd, t0;
    /* LBFGS (lr default 1): up to max_iter (20) iterations a step and
     * max_eval closure calls (0: max_iter * 5 / 4, PyTorch's None), stopping
     * when max |g| <= tolerance_grad (1e-7) or a change is below
     * tolerance_change (1e-9); history_size (100) correction pairs; a
     * strong-Wolfe line search or a fixed step lr. maximize is not one of
     * its options (as PyTorch). */
    int max_iter, max_eval, history_size;
    double tolerance_grad, tolerance_change;
    lg_line_search line_search;
    bool maximize; /* every kind: ascend the objective (the gradient negated), default false */
    /* Which parameters: NULL/0 means every parameter of the ctx now. */
    lg_tensor *const *params;
    int nparams;
    /* Or parameter groups (PyTorch's param_groups), with params NULL/0:
     * ngroups >= 1 groups, each with >= 1 parameters, no parameter in two
     * groups or twice in one. A group's opts NULL: this struct's options;
     * otherwise that group's own, of the same kind and without params or
     * groups of its own (lg_optim_opts_default(kind), or a copy of this
     * struct made before its groups are set, then assignments). Groups are numbered as given; their
     * parameters' state and steps are kept one by one as without groups. */
    const lg_param_group *groups;
    int ngroups;
} lg_optim_opts;
struct lg_param_group {
    lg_tensor *const *params;
    int nparams;
    const lg_optim_opts *opts; /* NULL: the optimizer's options */
};
#define LG_HAVE_PARAM_GROUPS 1
/* PyTorch's defaults for kind (an unknown kind gives a struct that
 * lg_optim_new rejects). */
lg_optim_opts lg_optim_opts_default(lg_optim_kind kind);

typedef struct lg_optim lg_optim;

/* Makes an optimizer; its state lives until lg_ctx_free. NULL on error. */
lg_optim *lg_optim_new(lg_ctx *ctx, const lg_optim_opts *o);
/* One update from the current gradients (not LBFGS: it needs a closure). */
lg_status lg_optim_step(lg_optim *opt);
/* PyTorch's step(closure): closure(ctx, user) zeroes the optimizer's
 * gradients, builds the loss from the parameters' current values, runs
 * lg_backward and returns the loss's value (it may end the step with
 * lg_step_end: parameters and their gradients persist). LBFGS calls it up
 * to max_eval times; every other kind once, then steps. *loss (if not
 * NULL) is the first call's value, as PyTorch's return. A closure
 * returning NaN, or leaving an error on the ctx, ends the step with
 * LG_ERR_VALUE or that error. */
typedef double (*lg_closure_fn)(lg_ctx *ctx, void *user);
lg_status lg_optim_step_closure(lg_optim *opt, lg_closure_fn closure, void *user, double *loss);
double lg_optim_lr(const lg_optim *opt); /* group 0's */
/* Sets every group's lr: >= 0 and finite, else LG_ERR_VALUE (unchanged). */
lg_status lg_optim_set_lr(lg_optim *opt, double lr);
int64_t lg_optim_steps(const lg_optim *opt); /* updates taken so far */
/* Parameter groups (PyTorch's param_groups): each group has its own lr,
 * which schedules set group by group. lg_optim_lr is group 0's lr and
 * lg_optim_set_lr sets every group's. g in [0, lg_optim_ngroups(opt)),
 * else NaN / LG_ERR_VALUE (lr: finite and >= 0, else LG_ERR_VALUE; the
 * rate is unchanged on an error). */
int lg_optim_ngroups(const lg_optim *opt); /* 0 for NULL */
double lg_optim_group_lr(const lg_optim *opt, int g);
lg_status lg_optim_set_group_lr(lg_optim *opt, int g, double lr);
/* A group's other hyper-parameters that schedules cycle (CyclicLR,
 * OneCycleLR): momentum (SGD, RMSprop: finite, >= 0, and > 0 under
 * nesterov) and beta1 (the Adam family: in [0, 1)). Get: NaN when the kind
 * has none; set: LG_ERR_VALUE then, or for a value out of range (the value
 * is unchanged on an error). LG_HYPER_LR is lg_optim_group_lr's. */
typedef enum lg_optim_hyper { LG_HYPER_LR = 0, LG_HYPER_MOMENTUM, LG_HYPER_BETA1 } lg_optim_hyper;
double lg_optim_group_get(const lg_optim *opt, int g, lg_optim_hyper h);
lg_status lg_optim_group_set(lg_optim *opt, int g, lg_optim_hyper h, double v);

/* Scales every parameter gradient by max_norm / (total + 1e-6) when the
 * total norm (norm_type > 0 or INFINITY) exceeds max_norm; returns the
 * total norm (NaN and an error on bad arguments), as PyTorch. */
double lg_clip_grad_norm(lg_ctx *ctx, double max_norm, double norm_type);
/* Clamps every parameter gradient to [-value, value]. */
lg_status lg_clip_grad_value(lg_ctx *ctx, double value);
/* The same over params[0..n) only (each a parameter of the ctx, none
 * twice): one model's gradients when a ctx holds two. With
 * error_if_nonfinite a NaN or infinite total norm is LG_ERR_VALUE (NaN
 * returned, no gradient scaled), as PyTorch's error_if_nonfinite. */
double lg_clip_grad_norm_of(lg_ctx *ctx, int n, lg_tensor *const *params, double max_norm,
                            double norm_type, bool error_if_nonfinite);
lg_status lg_clip_grad_value_of(lg_ctx *ctx, int n, lg_tensor *const *params, double value);

/* ------------------------------------------------------------------ */
/* Learning-rate schedules, stepped once per epoch (or per step) after   */
/* lg_optim_step, with PyTorch's recursive formulas.                     */
/* ------------------------------------------------------------------ */

typedef enum lg_sched_kind {
    LG_SCHED_STEP = 0,       /* StepLR: lr *= gamma every step_size steps */
    LG_SCHED_EXPONENTIAL,    /* ExponentialLR: lr *= gamma */
    LG_SCHED_COSINE,         /* CosineAnnealingLR: cosine annealing to eta_min over t_max */
    LG_SCHED_LINEAR,         /* LinearLR: factor start_factor -> end_factor over total_iters */
    LG_SCHED_MULTISTEP,      /* MultiStepLR: lr *= gamma at each of milestones */
    LG_SCHED_CONSTANT,       /* ConstantLR: lr * factor until total_iters, then lr */
    LG_SCHED_POLYNOMIAL,     /* PolynomialLR: base (1 - e / total_iters)^power, then 0 */
    LG_SCHED_LAMBDA,         /* LambdaLR: base * lr_lambda(e) */
    LG_SCHED_MULTIPLICATIVE, /* MultiplicativeLR: lr *= lr_lambda(e) for e > 0 */
    LG_SCHED_COSINE_WARM_RESTARTS, /* CosineAnnealingWarmRestarts (SGDR): t_0, t_mult, eta_min */
    LG_SCHED_CYCLIC,               /* CyclicLR: base_lr <-> max_lr; momentum the other way */
    LG_SCHED_ONE_CYCLE,  /* OneCycleLR: max_lr / div_factor -> max_lr -> min over total steps */
    LG_SCHED_PLATEAU,    /* ReduceLROnPlateau: lr *= factor when a metric stops improving;
                          * stepped by lg_sched_step_metric only */
    LG_SCHED_SEQUENTIAL, /* SequentialLR: schedules[i] from milestones[i - 1] on */
    LG_SCHED_CHAINED     /* ChainedScheduler: every one of schedules, in order, each step */
} lg_sched_kind;

/* LG_SCHED_LAMBDA and LG_SCHED_MULTIPLICATIVE: the factor for epoch e of
 * group g (PyTorch's lr_lambda, one function for every group, told the
 * group). A NaN, infinite or negative factor is an LG_ERR_VALUE error of the
 * step (no rate changes). */
typedef double (*lg_sched_lambda)(void *user, int64_t epoch, int group);
/* LG_SCHED_CYCLIC's scale_fn: the amplitude scale for x, the cycle number
 * (from 1, scale_mode CYCLE) or the step count (ITERATIONS); finite. */
typedef double (*lg_sched_scale_fn)(void *user, double x);
typedef enum lg_cyclic_mode {
    LG_CYCLIC_TRIANGULAR = 0, /* PyTorch's default 'triangular': scale 1 */
    LG_CYCLIC_TRIANGULAR2,    /* scale 1 / 2^(cycle - 1) */
    LG_CYCLIC_EXP_RANGE       /* scale gamma^step */
} lg_cyclic_mode;
typedef enum lg_scale_mode { LG_SCALE_CYCLE = 0, LG_SCALE_ITERATIONS } lg_scale_mode;
typedef enum lg_anneal { LG_ANNEAL_COS = 0, LG_ANNEAL_LINEAR } lg_anneal;
typedef enum lg_plateau_mode { LG_PLATEAU_MIN = 0, LG_PLATEAU_MAX } lg_plateau_mode;
typedef enum lg_threshold_mode { LG_THRESHOLD_REL = 0, LG_THRESHOLD_ABS } lg_threshold_mode;
typedef struct lg_sched lg_sched;

/* lg_sched_opts_default(kind) gives PyTorch 1.13's defaults for kind; the
 * fields a kind does not use must stay 0 (LG_ERR_VALUE otherwise). By hand,
 * every field of the kind whose default is not zero must be written
 * ("(non-zero default)" below). A required field without a default is NaN
 * (or 0) from lg_sched_opts_default and rejected until it is set.
 * Per-group values (PyTorch's lists): a pointer and a count; count 0 means
 * the scalar field for every group, else count must equal
 * lg_optim_ngroups(opt) and the scalar must stay NaN (or 0). Arrays are
 * copied; the caller keeps its own. */
typedef struct lg_sched_opts {
    uint32_t defaults_tag; /* written by the _default() function only (lossgrad.h: Options) */
    lg_sched_kind kind;
    int64_t step_size; /* STEP: required, >= 1 */
    double gamma;      /* STEP, MULTISTEP: default 0.1; EXPONENTIAL: required (NaN until set);
                        * CYCLIC: default 1, not 1 only with LG_CYCLIC_EXP_RANGE (non-zero
                        * default); finite, >= 0 (CYCLIC: > 0) */
    int64_t t_max;     /* COSINE: required, >= 1 */
    double eta_min;    /* COSINE, COSINE_WARM_RESTARTS: default 0; finite, >= 0 */
    double start_factor, end_factor; /* LINEAR: default 1/3 and 1; 0 < start <= 1, 0 <= end <= 1 */
    int64_t total_iters; /* LINEAR, CONSTANT, POLYNOMIAL: default 5; >= 1 (non-zero default) */
    /* MULTISTEP: required, strictly increasing, >= 0; SEQUENTIAL: required
     * when nschedules > 1, nschedules - 1 of them, strictly increasing, >= 1 */
    const int64_t *milestones;
    int nmilestones;
    double factor;             /* CONSTANT: default 1/3, in (0, 1]; PLATEAU: default 0.1, in [0, 1)
                                * (non-zero default) */
    double power;              /* POLYNOMIAL: default 1; finite, >= 0 (non-zero default) */
    lg_sched_lambda lr_lambda; /* LAMBDA, MULTIPLICATIVE: required */
    void *user;                /* LAMBDA, MULTIPLICATIVE, CYCLIC: passed to the callbacks */
    int64_t t_0;               /* COSINE_WARM_RESTARTS: required, >= 1 (T_0) */
    int64_t t_mult;            /* COSINE_WARM_RESTARTS: default 1, >= 1 (non-zero default) */
    /* CYCLIC: base_lr required (NaN until set), finite >= 0; its group's lr
     * when the schedule is made. CYCLIC, ONE_CYCLE: max_lr required (NaN). */
    double base_lr, max_lr;
    const double *base_lrs, *max_lrs;
    int nbase_lrs, nmax_lrs;
    int64_t step_size_up;       /* CYCLIC: default 2000, >= 1 (non-zero default) */
    int64_t step_size_down;     /* CYCLIC: default 0 = PyTorch's None: step_size_up */
    lg_cyclic_mode cyclic_mode; /* CYCLIC: default LG_CYCLIC_TRIANGULAR; TRIANGULAR with scale_fn */
    lg_sched_scale_fn scale_fn; /* CYCLIC: default NULL (the mode's) */
    lg_scale_mode scale_mode;   /* CYCLIC: default CYCLE; ITERATIONS only with scale_fn */
    /* CYCLIC, ONE_CYCLE: cycle the momentum (SGD, RMSprop; ONE_CYCLE also
     * the Adam family's beta1, as PyTorch) between base_momentum and
     * max_momentum (CYCLIC: 0.8 and 0.9; ONE_CYCLE: 0.85 and 0.95), inversely
     * to the rate. Default true, so by hand it must be written (non-zero
     * default); the momenta are ignored when it is false. */
    bool cycle_momentum;
    double base_momentum, max_momentum; /* 0 <= base <= max, finite (non-zero default) */
    /* ONE_CYCLE: total_steps, or epochs and steps_per_epoch (their product,
     * overflow checked); one of the two ways, not both. */
    int64_t total_steps, epochs, steps_per_epoch;
    double pct_start;        /* ONE_CYCLE: default 0.3, in [0, 1] (non-zero default) */
    lg_anneal anneal;        /* ONE_CYCLE: default LG_ANNEAL_COS */
    double div_factor;       /* ONE_CYCLE: default 25; initial = max_lr / div_factor; > 0 */
    double final_div_factor; /* ONE_CYCLE: default 1e4; min = initial / final_div_factor; > 0 */
    bool three_phase;        /* ONE_CYCLE: default false */
    lg_plateau_mode plateau_mode;     /* PLATEAU: default MIN */
    int64_t patience;                 /* PLATEAU: default 10, >= 0 (non-zero default) */
    double threshold;                 /* PLATEAU: default 1e-4, finite >= 0 (non-zero default) */
    lg_threshold_mode threshold_mode; /* PLATEAU: default REL */
    int64_t cooldown;                 /* PLATEAU: default 0, >= 0 */
    double min_lr;                    /* PLATEAU: default 0, finite >= 0 */
    const double *min_lrs;
    int nmin_lrs;
    double eps; /* PLATEAU: default 1e-8, finite >= 0 (non-zero default) */
    /* SEQUENTIAL, CHAINED: required, >= 1 schedules of the same optimizer,
     * none PLATEAU, none already in another composite; they become this
     * schedule's (stepping one of them directly is then LG_ERR_STATE).
     * SEQUENTIAL's may not be composites. Their base rates become the
     * first's (PyTorch's shared initial_lr, when they are the optimizer's
     * first schedules, made in order). */
    lg_sched *const *schedules;
    int nschedules;
    /* PyTorch's last_epoch >= 0 (every kind but PLATEAU, SEQUENTIAL and
     * CHAINED): resume = true continues a schedule that had reached epoch
     * last_epoch: the rates in the optimizer are taken as they are,
     * initial_lr (or initial_lrs, per group: PyTorch's initial_lr; not for
     * CYCLIC and ONE_CYCLE, which have their own) are the base rates, and
     * lg_sched_new computes epoch last_epoch + 1 from them, as PyTorch's
     * constructor does. resume = false (default): the other three stay 0. */
    bool resume;
    int64_t last_epoch;
    double initial_lr;
    const double *initial_lrs;
    int ninitial_lrs;
} lg_sched_opts;
lg_sched_opts lg_sched_opts_default(lg_sched_kind kind);

/* Makes a schedule for opt's parameter groups (their number is fixed from
 * now on) and sets each group's lr (and momentum, CYCLIC and ONE_CYCLE) to
 * the schedule's value for step 0 (PLATEAU changes nothing). Lives until
 * lg_ctx_free. NULL and LG_ERR_NULL / LG_ERR_VALUE / LG_ERR_OOM on error. */
lg_sched *lg_sched_new(lg_ctx *ctx, lg_optim *opt, const lg_sched_opts *o);
/* Advances one step and sets every group's lr; returns group 0's. On an
 * error (a rate that would not be finite and >= 0, a callback's bad factor,
 * ONE_CYCLE past total_steps, PLATEAU, a schedule owned by a composite:
 * LG_ERR_VALUE / LG_ERR_STATE) nothing changes and NaN is returned. */
double lg_sched_step(lg_sched *s);
/* PLATEAU's step with the epoch's metric (finite or infinite, not NaN);
 * LG_ERR_STATE for any other kind. Nothing changes on an error. */
lg_status lg_sched_step_metric(lg_sched *s, double metric);

#ifdef __cplusplus
}
#endif
#endif
