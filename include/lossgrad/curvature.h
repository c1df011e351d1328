/* lossgrad/curvature.h: the Hessian of a loss with respect to parameters,
 * through Hessian-vector products (lg_hvp): its largest eigenvalues
 * (Lanczos), its trace (Hutchinson) and its spectral density (stochastic
 * Lanczos quadrature); and the loss around the parameters: 1-D and 2-D
 * slices along filter-normalised directions, and Keskar's sharpness.
 * Included by lossgrad.h; docs/higher_order.md, "Curvature toolkit".
 *
 * The Hessian calls take a one-element f already computed in the step (a
 * loss over a batch) and the tensors to differentiate it by (parameters,
 * or inputs that require grad); f's graph is kept, so a backward may
 * follow. The landscape calls take a loss callback instead. Random
 * vectors come from the ctx's RNG: a seed gives the same figures. Each
 * product runs in a scope (lg_scope_begin), so the step's memory does not
 * grow with the number of products; work vectors are the ctx's, freed on
 * return. */
#ifndef LOSSGRAD_CURVATURE_H
#define LOSSGRAD_CURVATURE_H

/* Called after each product (or loss evaluation, or ascent step): done of
 * total, what the function's name. */
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

/* ---- Spectral density: stochastic Lanczos quadrature (SLQ) ----------
 * Ghorbani, Krishnan, Xiao 2019; Lin, Saad, Yang 2016. For each of probes
 * unit starts q (Rademacher entries +-1, or normal, then normalised) an
 * m-step Lanczos (m = min(steps, P)) gives the tridiagonal T; its
 * eigenvalues theta_k (nodes) and the squared first components w_k of its
 * unit eigenvectors (weights, summing to 1) are the Gauss quadrature of q's
 * spectral measure: sum_k w_k g(theta_k) ~ q^T g(H) q, exact for
 * polynomials of degree < 2m (so sum_k w_k theta_k = q^T H q exactly).
 * The density is phi(x) = (1/probes) sum_probes sum_k w_k N(x; theta_k,
 * sigma^2), which integrates to 1 over the real line. */
typedef struct lg_density_opts {
    uint32_t defaults_tag; /* written by the _default() function only (see Options) */
    int64_t probes;        /* (non-zero default) 1: random starts; >= 1 */
    int64_t steps;         /* (non-zero default) 100: Lanczos steps per probe (at most P) */
    bool normal_probes;    /* false: Rademacher starts (the draws lg_hessian_trace makes);
                            * true: normal */
    /* The grid: points values from lo to hi, both included. lo = hi = 0:
     * the nodes' range [tmin, tmax] padded by 0.01 r + 5 sigma each side,
     * r = max(1, tmax - tmin). Else lo < hi. */
    double lo, hi;
    /* The Gaussians' standard deviation; 0: sqrt(1e-5 r) (PyHessian's
     * variance 1e-5 max(1, range)); else > 0. */
    double sigma;
    lg_progress_fn progress; /* after each product: done of probes * m; NULL: none */
    void *progress_user;
} lg_density_opts;
lg_density_opts lg_density_opts_default(void);

/* The spectral density of the Hessian of a one-element f (as above) with
 * respect to params[0..n), on a grid of points (>= 2) values: grid[i] and
 * density[i], i < points. theta and weight (each may be NULL; room for
 * probes * steps doubles) get the raw nodes, probe p's m of them at
 * [p m, (p + 1) m); *count (may be NULL) gets probes * m. Memory: (m + 1)
 * P + 2 m^2 doubles. Deterministic for the ctx's RNG state. */
lg_status lg_hessian_density(lg_ctx *ctx, lg_tensor *f, int n, lg_tensor *const *params,
                             int64_t points, double *grid, double *density, double *theta,
                             double *weight, int64_t *count, const lg_density_opts *opts);
/* The density of given nodes (count of them, their weights summing to
 * probes): phi(x) = (1/probes) sum_k weight[k] N(x; theta[k], sigma^2) on
 * the grid of opts (lo, hi, sigma as above, from these nodes), so a
 * density can be redrawn without more products. Only lo, hi, sigma and
 * probes of opts are read. */
lg_status lg_density_from_nodes(lg_ctx *ctx, int64_t count, const double *theta,
                                const double *weight, int64_t points, double *grid,
                                double *density, const lg_density_opts *opts);

/* ---- Loss-landscape slices (Li, Xu, Taylor, Studer, Goldstein 2018) ----
 * loss_fn builds a one-element loss from the current values of the
 * parameters (and whatever user holds), so it can be re-evaluated at
 * moved parameters; it is called inside a scope that frees what it makes
 * (under no-grad for the slices, with grad for lg_sharpness). It may
 * return NULL after an error (recorded on the ctx), which then stops the
 * call. */
typedef lg_tensor *(*lg_loss_fn)(lg_ctx *ctx, void *user);

typedef struct lg_landscape_opts {
    uint32_t defaults_tag; /* written by the _default() function only (see Options) */
    double lo;             /* (non-zero default) -1: the first step size */
    double hi;             /* (non-zero default) 1: the last; lo < hi */
    bool raw_directions;   /* true: directions used as given (no filter normalisation) */
    /* Filter normalisation of a direction d for parameter theta: for ndim
     * >= 2 each filter (slice along axis 0) d_i becomes d_i ||theta_i|| /
     * ||d_i|| (0 where d_i is 0); for ndim <= 1 (biases, norms' weights) d is
     * zeroed (Li et al.), or with keep_1d scaled to ||theta|| / ||d||. */
    bool keep_1d;
    lg_progress_fn progress; /* after each evaluation; NULL: none */
    void *progress_user;
} lg_landscape_opts;
lg_landscape_opts lg_landscape_opts_default(void);

/* Filter-normalises dirs[0..n) (float tensors of params' shapes) in place
 * against params, as described above (only keep_1d of opts is read). */
lg_status lg_filter_normalize(lg_ctx *ctx, int n, lg_tensor *const *params,
                              lg_tensor *const *dirs, const lg_landscape_opts *opts);

/* losses[i] = L(theta + a_i d), a_i = lo + i (hi - lo) / (points - 1)
 * (into alphas[i], may be NULL), i < points (>= 2). theta: params[0..n)
 * (float, any shapes); d: dirs[0..n) of their shapes (any float dtype), or
 * dirs NULL for normal draws from the ctx RNG; filter-normalised copies
 * unless raw_directions (dirs are not written). The parameters are
 * restored bit for bit on return, errors included. Memory: 2 P doubles
 * plus a copy of the parameters. */
lg_status lg_loss_landscape_1d(lg_ctx *ctx, lg_loss_fn loss_fn, void *user, int n,
                               lg_tensor *const *params, lg_tensor *const *dirs, int64_t points,
                               double *alphas, double *losses, const lg_landscape_opts *opts);
/* losses[i * points + j] = L(theta + a_i d1 + a_j d2) over the same grid
 * (d1, d2 as dirs above; NULL: drawn, d1's first). */
lg_status lg_loss_landscape_2d(lg_ctx *ctx, lg_loss_fn loss_fn, void *user, int n,
                               lg_tensor *const *params, lg_tensor *const *d1,
                               lg_tensor *const *d2, int64_t points, double *alphas,
                               double *losses, const lg_landscape_opts *opts);

/* ---- Sharpness (Keskar, Mudigere, Nocedal, Smelyanskiy, Tang 2017) ----
 * The eps-sharpness in the full space: 100 (max_{y in C} L(theta + y) -
 * L(theta)) / (1 + L(theta)), C the box |y_i| <= eps (|theta_i| + 1). The
 * maximum is approached by steps of projected sign-gradient ascent from y
 * = 0 (step 2.5 eps (|theta_i| + 1) / steps per coordinate, then clipped
 * to C; Keskar et al. used L-BFGS-B), and the largest loss seen is kept,
 * so the figure is a lower bound of the exact one. Where the gradient's
 * signs along the way point to the maximising corner (a linear loss, a
 * sum of squares) the ascent reaches it. */
typedef struct lg_sharpness_opts {
    uint32_t defaults_tag; /* written by the _default() function only (see Options) */
    double eps;            /* (non-zero default) 1e-3: the box's relative half-width; > 0 */
    int64_t steps;         /* (non-zero default) 20: ascent steps (steps + 1 gradients); >= 1 */
    lg_progress_fn progress; /* after each step; NULL: none */
    void *progress_user;
} lg_sharpness_opts;
lg_sharpness_opts lg_sharpness_opts_default(void);

typedef struct lg_sharpness_report {
    double loss;      /* L(theta) */
    double max_loss;  /* the largest L(theta + y) found in C */
    double sharpness; /* 100 (max_loss - loss) / (1 + loss) */
} lg_sharpness_report;

/* Keskar's sharpness of loss_fn at params[0..n) (float, requiring grad;
 * their .grad is not touched), as above, into *report. The parameters are
 * restored bit for bit on return, errors included. */
lg_status lg_sharpness(lg_ctx *ctx, lg_loss_fn loss_fn, void *user, int n,
                       lg_tensor *const *params, lg_sharpness_report *report,
                       const lg_sharpness_opts *opts);

#endif
