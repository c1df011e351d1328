/* lossgrad/curvature.h: the Hessian of a loss with respect to parameters,
 * through Hessian-vector products (lg_hvp): its largest eigenvalues
 * (Lanczos) and its trace (Hutchinson). Included by lossgrad.h.
 *
 * Each takes a one-element f already computed in the step (a loss over a
 * batch) and the tensors to differentiate it by (parameters, or inputs
 * that require grad); f's graph is kept, so a backward may follow. Random
 * vectors come from the ctx's RNG: a seed gives the same figures. Each
 * product runs in a scope (lg_scope_begin), so the step's memory does not
 * grow with the number of products; work vectors are the ctx's, freed on
 * return. */
#ifndef LOSSGRAD_CURVATURE_H
#define LOSSGRAD_CURVATURE_H

/* Called after each product: done of total, what the function's name. */
typedef void (*lg_progress_fn)(void *user, const char *what, int64_t done, int64_t total);

typedef struct lg_curvature_opts {
    uint32_t defaults_tag; /* written by the _default() function only (see Options) */
    int64_t iters;         /* (non-zero default) 100: Lanczos steps (at most the number of
                            * parameters) or Hutchinson probes; >= 1 */
    lg_progress_fn progress; /* NULL: none */
    void *progress_user;
} lg_curvature_opts;
lg_curvature_opts lg_curvature_opts_default(void);

/* The k largest (algebraic) eigenvalues of the Hessian of f with respect
 * to params[0..n), largest first, into eigs[0..k). Lanczos with full
 * reorthogonalisation over m = min(iters, P) steps (P: the parameters'
 * total size) from a random unit start: the extreme eigenvalues converge
 * first, and with m = P they are exact to rounding. A Krylov space that
 * closes early restarts from a new random vector orthogonal to it. Memory:
 * (m + 1) P doubles. k in 1..m, else LG_ERR_VALUE. */
lg_status lg_hessian_eigenvalues(lg_ctx *ctx, lg_tensor *f, int n, lg_tensor *const *params, int k,
                                 double *eigs, const lg_curvature_opts *opts);

/* Hutchinson's estimate of the Hessian's trace: the mean of z^T H z over
 * iters Rademacher vectors z (entries +-1), into *trace; *std_error (may
 * be NULL) gets its standard error, sd / sqrt(iters) (0 for one probe). */
lg_status lg_hessian_trace(lg_ctx *ctx, lg_tensor *f, int n, lg_tensor *const *params,
                           double *trace, double *std_error, const lg_curvature_opts *opts);

#endif
