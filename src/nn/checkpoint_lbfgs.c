/* checkpoint_lbfgs.c: loading LBFGS's state (checkpoint.h: nine tensors
 * under the optimizer's first parameter with PyTorch's names): binding the
 * tensors, checking them all or none and sized for the optimizer, and
 * building the new state before the load writes anything (the saving side
 * is checkpoint.c's add_lbfgs). */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint_load.h"

#include <inttypes.h>
#include <math.h>

/* LBFGS's state j (checkpoint.h): under the first parameter, its dtype and
 * rank (the sizes are checked with the rest: check_lbfgs). */
lg_status lgN_bind_lbfgs(loader *L, entry *e, int j)
{
    const lg_optim *opt = L->of[e->which].opt;
    if (e->opt_index != 0)
        return lgN_load_fail(L, LG_ERR_VALUE,
                             "tensor '%s': LBFGS's state is kept under %s's first parameter '%s'",
                             e->name, L->of[e->which].arg, lg_tensor_name(opt->params[0]));
    e->role = LGN_LBFGS;
    e->slot = j;
    lg_dtype want = j >= 7 ? LG_I64 : LG_F64;
    int ndim = j < 2 || j == 4 ? 1 : j < 4 ? 2 : 0;
    if (e->dt != want || e->ndim != ndim)
        return lgN_load_fail(L, LG_ERR_SHAPE, "tensor '%s' must be a %d-d %s", e->name, ndim,
                             lgN_dt_tag(want));
    return LG_OK;
}

/* Frees the LBFGS states build_lbfgs made (a later stage failed). */
void lgN_free_built_lbfgs(loader *L)
{
    for (int k = 0; k < L->nfile; k++)
        if (L->of[k].lbfgs) {
            lgN_lbfgs_free(L->of[k].opt, L->of[k].lbfgs);
            L->of[k].lbfgs = NULL;
        }
}

/* Each LBFGS optimizer's state: all of its tensors or none (a fresh
 * optimizer's file), sized for its parameters, with at most its
 * history_size pairs. */
lg_status lgN_check_lbfgs(loader *L)
{
    for (int k = 0; k < L->nfile; k++) {
        optfile *o = &L->of[k];
        if (!o->opt || o->opt->kind != LG_LBFGS)
            continue;
        const entry *at[LGN_LBFGS_ENTRIES] = { 0 };
        int found = 0;
        for (int i = 0; i < L->n; i++)
            if (L->es[i].role == LGN_LBFGS && L->es[i].which == k)
                at[L->es[i].slot] = &L->es[i], found++;
        if (!found)
            continue;
        for (int j = 0; j < LGN_LBFGS_ENTRIES; j++)
            if (!at[j])
                return lgN_load_fail(L, LG_ERR_VALUE, "has LBFGS state for %s without its %s",
                                     o->arg, lgN_lbfgs_entry_name(j));
        int64_t P = lgN_lbfgs_flat_size(o->opt), nold = at[4]->shape[0];
        const int hist = o->opt->groups[0].history_size;
        for (int j = 0; j < 5; j++) {
            const entry *e = at[j];
            bool ok = j < 2   ? e->shape[0] == P
                      : j < 4 ? e->shape[0] == nold && e->shape[1] == P
                              : true;
            if (!ok)
                return lgN_load_fail(L, LG_ERR_SHAPE,
                                     "tensor '%s' does not fit %s: its parameters hold %" PRId64
                                     " elements and the file %" PRId64 " correction pair(s)",
                                     e->name, o->arg, P, nold);
        }
        if (nold > hist)
            return lgN_load_fail(L, LG_ERR_VALUE,
                                 "holds %" PRId64
                                 " LBFGS correction pairs, more than %s's history_size %d",
                                 nold, o->arg, hist);
    }
    return LG_OK;
}

/* The loaded LBFGS scalars: t and H_diag finite, n_iter and func_evals
 * counts in [0, 2^53]. */
lg_status lgN_check_lbfgs_values(loader *L)
{
    for (int i = 0; i < L->n; i++) {
        const entry *e = &L->es[i];
        if (e->role != LGN_LBFGS || e->slot < 5)
            continue;
        if (e->slot < 7) {
            double d;
            memcpy(&d, e->staged, sizeof d);
            if (!isfinite(d))
                return lgN_load_fail(L, LG_ERR_VALUE, "tensor '%s' = %g is not finite", e->name, d);
        } else {
            int64_t v;
            memcpy(&v, e->staged, sizeof v);
            if (v < 0 || v > LGN_MAX_STEP)
                return lgN_load_fail(L, LG_ERR_VALUE,
                                     "tensor '%s' = %" PRId64 " is not a count in [0, 2^53]",
                                     e->name, v);
        }
    }
    return LG_OK;
}

/* Each LBFGS optimizer's new state, made from the staged tensors before
 * anything is written (NULL where the file has none: the optimizer starts
 * afresh, as after PyTorch's load_state_dict of a fresh one's state). */
lg_status lgN_build_lbfgs(loader *L)
{
    for (int k = 0; k < L->nfile; k++) {
        optfile *o = &L->of[k];
        if (!o->opt || o->opt->kind != LG_LBFGS)
            continue;
        lgN_lbfgs_saved v = { .P = lgN_lbfgs_flat_size(o->opt) };
        bool any = false;
        for (int i = 0; i < L->n; i++) {
            const entry *e = &L->es[i];
            if (e->role != LGN_LBFGS || e->which != k)
                continue;
            any = true;
            double *arr = (double *)(void *)e->staged;
            switch (e->slot) {
            case 0: v.d = arr; break;
            case 1: v.prev_flat_grad = arr; break;
            case 2: v.old_dirs = arr; break;
            case 3: v.old_stps = arr; break;
            case 4: v.ro = arr, v.nold = (int)e->shape[0]; break;
            case 5: memcpy(&v.t, e->staged, sizeof v.t); break;
            case 6: memcpy(&v.H_diag, e->staged, sizeof v.H_diag); break;
            case 7: memcpy(&v.n_iter, e->staged, sizeof v.n_iter); break;
            default: memcpy(&v.func_evals, e->staged, sizeof v.func_evals); break;
            }
        }
        if (any && !(o->lbfgs = lgN_lbfgs_build(o->opt, &v, L->who))) {
            lgN_free_built_lbfgs(L);
            return LG_ERR_OOM;
        }
    }
    return LG_OK;
}
