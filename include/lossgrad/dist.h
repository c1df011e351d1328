/* lossgrad/dist.h: data-parallel training on MPI (the optional module
 * lossgrad_dist, built when CMake finds MPI: LG_MPI; target lossgrad::dist,
 * installed with it: find_package(lossgrad COMPONENTS dist) or pkg-config
 * lossgrad-dist; docs/distributed.md). The
 * program owns MPI: it calls MPI_Init (or
 * lg_dist_mpi_init) and MPI_Finalize, and gives lg_dist_new a communicator;
 * lossgrad works on its own duplicate of it, whose errors return (never
 * abort) and become lossgrad errors on the ctx, with the MPI message.
 *
 * A data-parallel step on every rank:
 *
 *     lg_dist *d = lg_dist_new(ctx, MPI_COMM_WORLD, NULL);
 *     lg_dist_broadcast(d, 0);           // every rank starts from rank 0's model
 *     for (each step) {
 *         lg_zero_grad(ctx);
 *         loss = ... this rank's part of the batch ...;
 *         lg_backward(ctx, loss);
 *         lg_dist_allreduce_grads(d);    // .grad = the ranks' mean
 *         lg_optim_step(opt);
 *         lg_step_end(ctx);
 *     }
 *
 * Gradient accumulation (PyTorch DDP's no_sync): lg_dist_set_sync(d,
 * false), several backwards (lossgrad adds them up in .grad), then
 * lg_dist_set_sync(d, true) and one lg_dist_allreduce_grads.
 *
 * Deterministic mode (lg_dist_opts.deterministic): the gradient is a sum
 * in a fixed order whatever the rank count. The global batch is cut into
 * M micro-batches of one size m, numbered in order; with N ranks, rank r
 * takes the k = M / N micro-batches r k ... r k + k - 1 (contiguous blocks;
 * k a power of two, the same on every rank), and calls lg_dist_accumulate
 * after each one's backward (it zeroes .grad for the next):
 *
 *     lg_dist_opts o = lg_dist_opts_default();
 *     o.deterministic = true;   // not &(lg_dist_opts){ .deterministic = true }:
 *                               // the bucket sizes have non-zero defaults
 *     lg_dist *d = lg_dist_new(ctx, MPI_COMM_WORLD, &o);
 *     for (each step) {
 *         for (int j = 0; j < k; j++) {
 *             loss = mean loss over micro-batch rank * k + j;
 *             lg_backward(ctx, loss);
 *             lg_dist_accumulate(d);
 *         }
 *         lg_dist_allreduce_grads(d);   // .grad = the mean over the M micro-batches
 *         lg_optim_step(opt);
 *         lg_step_end(ctx);
 *     }
 *
 * The result is the mean of the M micro-batch gradients (the batch mean
 * when each micro-batch's loss is a mean over its m examples), summed as
 * one pairwise tree over them in global order. N ranks and 1 rank (k = M)
 * over the same micro-batches compute the same tree, so their parameters
 * are the same bits (with lossgrad's thread-count determinism,
 * lg_threads_bitwise). The ranks' sums travel in float64, by recursive
 * halving and doubling when N is a power of two (about twice the bytes of
 * an allreduce of the gradients), otherwise gathered (N times the
 * parameters' memory on each rank).
 *
 * Errors: every collective call first agrees whether each rank can take
 * part, so an error is returned on every rank (the one that failed gives
 * the reason, the others "rank R could not take part"), never a hang. The
 * lg_dist stays usable; a program that cannot go on should stop on every
 * rank (MPI_Finalize and exit, or MPI_Abort).
 */
#ifndef LOSSGRAD_DIST_H
#define LOSSGRAD_DIST_H

#include <lossgrad.h>
/* MPI's C interface only: Open MPI's and MPICH's deprecated C++ bindings
 * do not compile cleanly with -Wextra (include mpi.h first to have them) */
#if defined(__cplusplus) && !defined(OMPI_SKIP_MPICXX)
#define OMPI_SKIP_MPICXX 1
#endif
#if defined(__cplusplus) && !defined(MPICH_SKIP_MPICXX)
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

typedef struct lg_dist lg_dist;

/* Options (the Options rule of lossgrad.h). */
typedef struct lg_dist_opts {
    uint32_t defaults_tag;     /* written by lg_dist_opts_default only */
    size_t bucket_bytes;       /* (non-zero default) gradient bucket size: PyTorch's 25 MiB */
    size_t first_bucket_bytes; /* (non-zero default) the first bucket (the last
                                * parameters, whose gradients backward makes first):
                                * PyTorch's 1 MiB */
    bool deterministic;        /* the fixed-order sum above */
    /* Which model (NULL: every parameter and buffer of the ctx, as they are
     * at each call): one model's name, so that a ctx holding two (a GAN's
     * generator and discriminator) has an lg_dist for each. Its tensors are
     * those named prefix or "<prefix>.<...>" (lg_params_with_prefix), picked
     * at each call, so parameters made later with the name join. The
     * string is copied. Set it in a struct from lg_dist_opts_default (a
     * hand-written one must write the bucket sizes too). */
    const char *prefix;
} lg_dist_opts;
lg_dist_opts lg_dist_opts_default(void);

/* MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED) unless MPI is already
 * initialised: MPI_SUCCESS, or MPI's error code. A helper for programs
 * that have no MPI setup of their own; MPI_Finalize stays theirs. */
int lg_dist_mpi_init(int *argc, char ***argv);

/* Data-parallel training of ctx's parameters (or one model's:
 * opts.prefix) over comm (duplicated: comm stays the caller's). NULL
 * opts: the defaults. Every rank of comm must call it. The ctx's lg_dists
 * share its grad-ready hook (lossgrad.h), so a hook of the program's is
 * LG_ERR_STATE, and so is a model that overlaps another lg_dist's of the
 * ctx (two without a prefix, "g" beside "g.enc", ...), deterministic or
 * not. A prefix naming no parameter is LG_ERR_VALUE. A rank that fails
 * any of these makes every rank fail (the others: "rank R could not make
 * its lg_dist"), never a hang. NULL with the ctx error set on failure. Free
 * it with lg_dist_free before the ctx and before MPI_Finalize (its memory
 * goes with the ctx, but its communicator does not).
 *
 * Two models (each step: backward of one loss, that model's allreduce and
 * optimizer). A backward reports every parameter it reaches, and an
 * lg_dist starts its buckets for them; a loss that reaches the other
 * model's parameters whose gradients are not wanted (a GAN's generator
 * loss through the discriminator) needs that lg_dist's sync off for it:
 *
 *     lg_dist_opts o = lg_dist_opts_default();
 *     o.prefix = "gen";  lg_dist *dg = lg_dist_new(ctx, MPI_COMM_WORLD, &o);
 *     o.prefix = "disc"; lg_dist *dd = lg_dist_new(ctx, MPI_COMM_WORLD, &o);
 *     lg_zero_grad(ctx);
 *     ... discriminator step: its loss on detached fakes, lg_backward,
 *         lg_dist_allreduce_grads(dd), its optimizer ...
 *     lg_zero_grad(ctx);
 *     lg_dist_set_sync(dd, false);   // the generator's loss reaches disc.*
 *     ... lg_backward(gen loss), lg_dist_allreduce_grads(dg), its optimizer ...
 *     lg_dist_set_sync(dd, true);
 */
lg_dist *lg_dist_new(lg_ctx *ctx, MPI_Comm comm, const lg_dist_opts *opts);
void lg_dist_free(lg_dist *d); /* NULL is a no-op; collective */
int lg_dist_rank(const lg_dist *d);
int lg_dist_size(const lg_dist *d);

/* Every parameter and buffer of the ctx (of the model: opts.prefix)
 * takes rank root's values. The
 * ranks' models must be alike (names, dtypes, shapes, in order): checked
 * first, so a mismatch is an error on every rank, naming the first
 * differing tensor, rather than a corrupt model. Collective. */
lg_status lg_dist_broadcast(lg_dist *d, int root);

/* Every parameter's (the model's) .grad becomes the mean over the ranks
 * (deterministic mode: over the accumulated micro-batches): the sum (in
 * MPI's order; deterministic mode: the fixed one) divided by the rank
 * count, that quotient correctly rounded in the gradient's dtype. After
 * an MPI failure the gradients are undefined. Gradients travel in buckets of bucket_bytes (the
 * last parameters first, as backward makes them), each bucket's
 * non-blocking allreduce started during backward as soon as its gradients
 * are final (lg_dist_set_sync); this call starts the rest and waits for
 * all. The last bucket (the first parameters', which backward finishes
 * last, when nothing is left to overlap) is always this call's, with a
 * blocking allreduce, faster in Open MPI than a non-blocking one.
 * A parameter without a gradient is an error (each rank's backward must
 * reach every parameter), and so is a round whose buckets went with an
 * earlier backward's gradients (two backwards with sync on, or sync
 * turned off after one). Collective. */
lg_status lg_dist_allreduce_grads(lg_dist *d);

/* on (the default): each backward starts the buckets' allreduces as their
 * gradients become final (lossgrad.h: lg_ctx_set_grad_ready_hook, which
 * lg_dist owns while it lives), overlapping communication with the rest of
 * backward. off: backwards start nothing, so gradients accumulate over
 * several (DDP's no_sync); turn it on again before the last backward, or
 * lg_dist_allreduce_grads sends everything itself. A second backward with
 * sync on before lg_dist_allreduce_grads is an error there (its buckets
 * were sent with the first one's gradients). */
lg_status lg_dist_set_sync(lg_dist *d, bool on);

/* What lg_dist_allreduce_grads did so far: its calls, the buckets sent,
 * how many of them started during backward, and the seconds spent waiting
 * for them in lg_dist_allreduce_grads (the part not overlapped). */
typedef struct lg_dist_stats {
    int64_t allreduces, buckets, buckets_in_backward;
    double wait_seconds;
} lg_dist_stats;
lg_dist_stats lg_dist_get_stats(const lg_dist *d);

/* Deterministic mode: adds the parameters' gradients (one micro-batch's;
 * the model's, with opts.prefix) to this rank's fixed-order sum and zeroes
 * them (those only). */
lg_status lg_dist_accumulate(lg_dist *d);

/* This rank's part of an epoch of n examples: the indices of a
 * permutation of [0, n) drawn from (seed, epoch), the same on every rank,
 * at positions rank, rank + size, ... (each example on exactly one rank;
 * strided, as DistributedSampler, so a rank's set depends on the rank
 * count: for deterministic mode's contiguous blocks take the whole
 * permutation, lg_dist_permutation;
 * the ranks' counts differ by at most one: n / size or one more). out
 * holds cap indices; *count gets this rank's count (out may be NULL to ask
 * for it). Not collective: no communication. */
lg_status lg_dist_shard(lg_dist *d, int64_t n, uint64_t seed, int64_t epoch, int64_t *out,
                        int64_t cap, int64_t *count);

/* The whole permutation of [0, n) that lg_dist_shard deals out, into out
 * (n indices): the same on every rank and at every rank count. */
lg_status lg_dist_permutation(lg_dist *d, int64_t n, uint64_t seed, int64_t epoch, int64_t *out);

/* A seed for this rank's own random stream, derived from seed and the rank
 * (distinct per rank, the same for a rank across runs). */
uint64_t lg_dist_rank_seed(const lg_dist *d, uint64_t seed);

/* Rank 0 saves the checkpoint (lg_checkpoint_save) while the others wait;
 * every rank returns rank 0's status (an error message names rank 0's).
 * Collective. */
lg_status lg_dist_checkpoint_save(lg_dist *d, const char *path, const lg_optim *opt);
/* Every rank loads path (lg_checkpoint_load); if any rank fails, every
 * rank gets an error (each rank's model is left as it was where its load
 * failed; the others' loads are not undone). Collective. */
lg_status lg_dist_checkpoint_load(lg_dist *d, const char *path, lg_optim *opt);

/* Waits for every rank. Collective. */
lg_status lg_dist_barrier(lg_dist *d);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif
