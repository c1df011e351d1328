/* checkpoint_load.h: what checkpoint_load.c (the file, its tensors, the
 * commit) and checkpoint_meta.c (the metadata: the RNG, the optimizers'
 * kinds, rates, momenta and schedule states) share while loading
 * (internal). */
#ifndef LG_CHECKPOINT_LOAD_H
#define LG_CHECKPOINT_LOAD_H

#include "checkpoint.h"

#include <cJSON.h>

#define LGN_MAX_STEP ((int64_t)1 << 53) /* step counts are used as doubles */

typedef lgN_entry entry;

/* One optimizer of the file: its metadata, and the optimizer of the call
 * it goes to (NULL when the call loads the parameters only). */
typedef struct optfile {
    lg_optim *opt;
    char arg[24]; /* how messages name opt: "opt", or "opts[k]" */
    int kind;     /* LGN_KINDS, or -1 (the file holds no optimizer) */
    double lr;
    const char *group_lrs;     /* "optim_group_lrs" (more than one group), or NULL */
    const char *group_momenta; /* "optim_group_momenta", or NULL */
    int nsched;                /* "sched.<j>" keys, j in [0, nsched) */
    const char **sched;        /* their strings (scratch) */
    double **sched_old;        /* the schedules' states before this load (scratch) */
    lg_sched **top;            /* opt's schedules that the file's states go to */
    struct lgN_lbfgs *lbfgs;   /* an LBFGS opt's state made from the file (not yet opt's) */
} optfile;

typedef struct loader {
    lg_ctx *ctx;
    const char *who; /* the function called */
    const char *path;
    lg_optim *const *opts; /* the call's optimizers, nopts of them */
    int nopts;
    lgC_arena scratch;
    int fd;
    uint64_t size, hlen, data_size; /* the file, its header, the data after it */
    char *hdr;
    cJSON *root;
    entry *es;
    int n;
    /* metadata */
    uint64_t rng[4];
    bool has_spare;
    double spare;
    int nfile;   /* the optimizers the file holds */
    optfile *of; /* their metadata (scratch), nfile of them */
} loader;

static inline const cJSON *meta_item(const cJSON *meta, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(meta, key);
}

/* "lg_checkpoint_load...: path '<path>': <rule>" (checkpoint_load.c). */
LG_HIDDEN lg_status lgN_load_fail(loader *L, lg_status st, const char *fmt, ...) LG_PRINTF(3, 4);
/* A repeated key of obj is an error naming what (checkpoint_load.c). */
LG_HIDDEN lg_status lgN_check_unique(loader *L, const cJSON *obj, const char *what);

/* checkpoint_lbfgs.c: LBFGS's state */

/* Entry e is LBFGS state j of optimizer e->which (its dtype and rank). */
LG_HIDDEN lg_status lgN_bind_lbfgs(loader *L, entry *e, int j);
/* Each LBFGS optimizer's state: all its tensors or none, sized for it. */
LG_HIDDEN lg_status lgN_check_lbfgs(loader *L);
/* The staged scalars: t and H_diag finite, the counts in [0, 2^53]. */
LG_HIDDEN lg_status lgN_check_lbfgs_values(loader *L);
/* Builds each LBFGS optimizer's new state (of[k].lbfgs) from the staged
 * tensors; lgN_free_built_lbfgs frees them again when a later stage fails. */
LG_HIDDEN lg_status lgN_build_lbfgs(loader *L);
LG_HIDDEN void lgN_free_built_lbfgs(loader *L);

/* checkpoint_meta.c */

/* Every metadata value, whatever the call asks for; the call's optimizers
 * paired with the file's. */
LG_HIDDEN lg_status lgN_parse_meta(loader *L);
/* As many optimizers as the file holds, each of the kind at its place. */
LG_HIDDEN lg_status lgN_check_optim_kind(loader *L);
/* Each optimizer's group count, and its saved rates. */
LG_HIDDEN lg_status lgN_check_group_lrs(loader *L);
/* Each optimizer's saved momenta or beta1s, in range. */
LG_HIDDEN lg_status lgN_check_group_momenta(loader *L);
/* The schedules made on each optimizer take the file's states (the old
 * ones kept); lgN_restore_scheds puts back those of optimizers [0, upto). */
LG_HIDDEN lg_status lgN_load_scheds(loader *L);
LG_HIDDEN void lgN_restore_scheds(loader *L, int upto);
/* At commit: optimizer o's groups take the file's rates and momenta. */
LG_HIDDEN void lgN_commit_groups(const optfile *o);

#endif
