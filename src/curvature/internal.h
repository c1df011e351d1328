/* internal.h: what the curvature sources share (curvature.c defines it):
 * the Hessian-vector product over a flat parameter vector, Lanczos, and
 * the symmetric eigensolver. Not installed. */
#ifndef LG_CURVATURE_INTERNAL_H
#define LG_CURVATURE_INTERNAL_H

#include "../core/core.h"

/* The operator v -> H v over the flat parameter vector: the parameters are
 * one vector of P doubles, in the order given. */
typedef struct hess {
    lg_ctx *ctx;
    const char *who;
    int n;
    lg_tensor *const *params;
    lg_tensor **g; /* the first gradient, on the tape; NULL where f does not reach */
    int64_t P;
} hess;

/* Checks f (one element) and params, and takes the first gradient with its
 * graph (h->g, persistent: the caller frees it with lgC_pfree). */
LG_HIDDEN lg_status lgV_hess_init(lg_ctx *ctx, const char *who, lg_tensor *f, int n,
                                  lg_tensor *const *params, hess *h);
/* hv = H v (P doubles each), the products' ops freed by a scope. */
LG_HIDDEN lg_status lgV_hess_apply(hess *h, const double *v, double *hv);
LG_HIDDEN double lgV_dot(const double *a, const double *b, int64_t n);
/* The Lanczos recurrence over m steps with full reorthogonalisation:
 * alpha[0..m), beta[0..m-1) (0 where a new random start began, after an
 * invariant subspace). q holds m + 1 rows of P; have_start: q's row 0
 * already holds the unit start, else a random normal one is drawn. */
LG_HIDDEN lg_status lgV_lanczos(hess *h, int64_t m, double *q, double *alpha, double *beta,
                                double *w, bool have_start, lg_progress_fn progress,
                                void *progress_user);
/* Eigenvalues of the symmetric m x m matrix a (overwritten) into ev, by
 * cyclic Jacobi rotations until the off-diagonal part is negligible; V (m
 * x m, may be NULL) gets the eigenvectors, column i for ev[i]. */
LG_HIDDEN void lgV_jacobi(double *a, int64_t m, double *ev, double *V);

#endif
