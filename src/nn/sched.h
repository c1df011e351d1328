/* sched.h: what sched.c (stepping, the state) and sched_opts.c (the
 * options, lg_sched_new) share, and a schedule's state as doubles, for
 * checkpoints (internal). The state is every counter and per-group value
 * of a schedule (its children's too, for SEQUENTIAL and CHAINED), exact up
 * to 2^53. The optimizer's rates and momenta are the optimizer's state, not
 * the schedule's: a checkpoint restores both. Only sched.c and sched_opts.c
 * touch struct lg_sched's fields; other files use the functions. */
#ifndef LG_SCHED_H
#define LG_SCHED_H

#include "nn.h"

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

/* "LG_SCHED_STEP", ...: each kind's name, indexed by lg_sched_kind
 * (sched_opts.c). */
LG_HIDDEN extern const char *const lgN_sched_kind_names[];

static inline bool lgN_sched_composite(lg_sched_kind k)
{
    return k == LG_SCHED_SEQUENTIAL || k == LG_SCHED_CHAINED;
}

/* One step of s (its children's, for a composite): PyTorch's step(), the
 * constructor's first one included. False on an error, its message naming
 * who on s's ctx (sched.c). */
LG_HIDDEN bool lgN_sched_advance(lg_sched *s, const char *who);

/* How many doubles lgN_sched_state_save writes (fixed from lg_sched_new on). */
LG_HIDDEN int lgN_sched_state_len(const lg_sched *s);
LG_HIDDEN void lgN_sched_state_save(const lg_sched *s, double *out);
/* Checks everything first (length, kind, group count, integers, ranges) and
 * changes nothing on an error (LG_ERR_VALUE, message on s's ctx). */
LG_HIDDEN lg_status lgN_sched_state_load(lg_sched *s, const double *in, int len);
/* True if a composite (SEQUENTIAL, CHAINED) owns s: its state is the
 * composite's. */
LG_HIDDEN bool lgN_sched_owned(const lg_sched *s);

#endif
