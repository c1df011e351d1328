/* optim.h: the optimizer record (internal; checkpoint.c saves its state). */
#ifndef LG_OPTIM_H
#define LG_OPTIM_H

#include "nn.h"

#define LGN_SLOTS 3
#define LGN_KINDS 12  /* lg_optim_kind's values */
#define LGN_SCALARS 2 /* per-parameter scalar state: NAdam's mu_product, ASGD's eta and mu */

/* One parameter group's hyper-parameters (PyTorch's param_groups[g]). */
typedef struct lgN_hyper {
    double lr, weight_decay, momentum, dampening, beta1, beta2, eps, alpha;
    double lr_decay, initial_accumulator_value, rho, etaminus, etaplus, step_size_min,
        step_size_max, momentum_decay, lambd, t0;
    int max_iter, max_eval, history_size;
    double tolerance_grad, tolerance_change;
    lg_line_search line_search;
    bool nesterov, amsgrad, centered, maximize;
} lgN_hyper;

struct lg_optim {
    lg_ctx *ctx;
    lg_optim_kind kind;
    int ngroups;
    lgN_hyper *groups;
    int n;
    lg_tensor **params; /* group by group, in the groups' order */
    int *group;         /* per parameter: its group */
    /* Per parameter: update count and up to three state buffers of the
     * parameter's dtype and size (NULL until first needed). */
    int64_t *steps;
    bool *fresh; /* SGD: the momentum buffer holds nothing yet (PyTorch's None) */
    void **slot[LGN_SLOTS];
    double *scalar[LGN_SCALARS]; /* per parameter (lgN_scalar_name) */
    struct lgN_lbfgs *lbfgs;     /* LBFGS's state (lbfgs.c), NULL until its first step */
    lg_sched **scheds;           /* the schedules made on it, in order (checkpoints) */
    int nscheds, cap_scheds;
};

/* Records a new schedule of o (lg_sched_new); false on OOM. */
LG_HIDDEN bool lgN_optim_add_sched(lg_optim *o, lg_sched *s);
/* o's schedules that a checkpoint saves: those no composite owns. */
LG_HIDDEN int lgN_optim_top_scheds(const lg_optim *o, lg_sched **out);

/* LBFGS's step (lbfgs.c). */
LG_HIDDEN lg_status lgN_lbfgs_step(lg_optim *o, lg_closure_fn closure, void *user, double *loss);

/* LBFGS's state as a checkpoint holds it, under PyTorch's names: d and
 * prev_flat_grad [P], the correction pairs old_dirs (y) and old_stps (s)
 * [nold, P] oldest first, ro [nold] (1 / y.s), t, H_diag, n_iter and
 * func_evals (P: the parameters' elements in all). The arrays are the
 * caller's. */
typedef struct lgN_lbfgs_saved {
    int64_t P;
    int nold;
    double *d, *prev_flat_grad, *old_dirs, *old_stps, *ro;
    double t, H_diag;
    int64_t n_iter, func_evals;
} lgN_lbfgs_saved;
/* o's state's sizes: false when o has none yet (no step taken). */
LG_HIDDEN bool lgN_lbfgs_saved_dims(const lg_optim *o, int64_t *P, int *nold);
/* Copies o's state into v's arrays (sized by lgN_lbfgs_saved_dims). */
LG_HIDDEN void lgN_lbfgs_export(const lg_optim *o, lgN_lbfgs_saved *v);
/* The P that o's state has (or would have). */
LG_HIDDEN int64_t lgN_lbfgs_flat_size(const lg_optim *o);
/* A new state holding v (v->P = lgN_lbfgs_flat_size(o), v->nold <= o's
 * history_size), not yet o's; NULL with the ctx error set on OOM. */
LG_HIDDEN struct lgN_lbfgs *lgN_lbfgs_build(lg_optim *o, const lgN_lbfgs_saved *v, const char *who);
/* Frees a state (NULL: nothing). */
LG_HIDDEN void lgN_lbfgs_free(lg_optim *o, struct lgN_lbfgs *s);

/* Slot names for a kind ("exp_avg", ...); NULL where the slot is unused. */
LG_HIDDEN const char *lgN_slot_name(const lg_optim *o, int s);
/* Scalar state names for opt's kind ("mu_product", ...); NULL if unused. */
LG_HIDDEN const char *lgN_scalar_name(const lg_optim *o, int s);
/* Allocates (zeroed) slot s of parameter i if it is not there yet. */
LG_HIDDEN void *lgN_slot(lg_optim *o, int i, int s);

#endif
