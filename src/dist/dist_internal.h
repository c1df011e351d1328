/* dist_internal.h: what dist.c (setup, broadcast, sampling, checkpoints)
 * and grads.c (buckets, overlap, the deterministic sum) share (internal;
 * lossgrad_dist is built with hidden visibility). */
#ifndef LG_DIST_INTERNAL_H
#define LG_DIST_INTERNAL_H

#include <lossgrad/dist.h>

struct lg_dist {
    lg_ctx *ctx;
    MPI_Comm comm; /* ours: a duplicate, errors returned */
    int rank, size;
    lg_dist_opts o;
    MPI_Comm bcomm; /* the buckets' allreduces (so that agree never meets one half-started) */
    /* gradient buckets (normal mode), kept between calls */
    void *bucket_mem;
    size_t bucket_cap;
    struct bround *round; /* the buckets of the gradients being made (bround, below) */
    struct bround *spare; /* the last round's memory, for the next */
    bool sync;            /* backwards start buckets (lg_dist_set_sync) */
    bool broken;          /* buckets were left in flight by an error */
    lg_dist_stats stats;
    /* one model's (lg_dist_opts.prefix, copied; NULL: every tensor of the ctx) */
    char *prefix;
    lg_tensor **sel;    /* the model's parameters in the store's order */
    int nsel, sel_seen; /* how many; the ctx's parameter count they were picked from */
    lg_dist *next;      /* the next lg_dist on this ctx's grad-ready hook */
    /* deterministic mode: this rank's pairwise sum of micro-batch gradients,
     * a binary counter: level l holds the sum of 2^l micro-batches */
    int64_t P, k;     /* the parameters' elements, micro-batches accumulated */
    double **level;   /* LEVELS vectors of P (NULL until needed) */
    uint64_t present; /* bit l: level l holds a sum */
    double *tmp;      /* P: the carry */
};

#define LEVELS 62

/* "<who>: <what> failed: <MPI's message>" (LG_ERR_IO). */
lg_status lgD_mpi_error(lg_dist *d, const char *who, const char *what, int rc);
/* Whether every rank can go on (ok: this one's answer); a rank that can
 * gets an error naming the first that cannot. */
lg_status lgD_agree(lg_dist *d, const char *who, bool ok);
MPI_Datatype lgD_mpi_type(lg_dtype dt);
/* Whether t is one of this lg_dist's model's (its name is the prefix or
 * starts with "<prefix>."; every tensor without a prefix). */
bool lgD_mine(const lg_dist *d, const lg_tensor *t);
/* Picks the model's parameters again if the ctx has new ones (false on
 * OOM, the ctx error set); then lgD_np and lgD_param list them. */
bool lgD_select(lg_dist *d, const char *who);
int lgD_np(const lg_dist *d);
lg_tensor *lgD_param(const lg_dist *d, int i);
/* grads.c: the grad-ready hook lg_dist_new installs; the bucket round's
 * and the deterministic sum's memory, freed. */
void lgD_on_grad_ready(lg_ctx *ctx, lg_tensor *param, void *user);
void lgD_close_round(lg_dist *d);
void lgD_free_rounds(lg_dist *d);
void lgD_free_sums(lg_dist *d);

#endif
