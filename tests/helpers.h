/* helpers.h: shared test helpers (contexts, random tensors, comparisons). */
#ifndef LG_TEST_HELPERS_H
#define LG_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <lossgrad.h>
#include <math.h>

#define SHAPE(...) ((int64_t[]){ __VA_ARGS__ })
#define NDIM(...) ((int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)))
#define T_FROM(ctx, dt, data, ...)                                                                 \
    lg_tensor_from(ctx, dt, data, NDIM(__VA_ARGS__), SHAPE(__VA_ARGS__))

lg_ctx *test_ctx(uint64_t seed);
/* An lg_alloc_fn (user: a countdown) whose allocation number left fails
 * (left counts down; < 0: none fails), for allocation-failure tests. */
typedef struct countdown {
    long left;
} countdown;
void *countdown_alloc(void *user, void *ptr, size_t old_size, size_t new_size);
/* A float tensor of dtype dt from double values. */
lg_tensor *from_doubles(lg_ctx *ctx, lg_dtype dt, const double *v, int ndim, const int64_t *shape);
/* Uniform values in [lo, hi), avoiding |x - k| < gap for each kink k. */
lg_tensor *rand_avoiding(lg_ctx *ctx, lg_dtype dt, int ndim, const int64_t *shape, double lo,
                         double hi, const double *kinks, int nkinks, double gap);
double get(lg_tensor *t, int64_t i);
/* Asserts every element of t is within tol (relative, with an absolute floor
 * of tol) of want[i]; NaN equals NaN and infinities must match exactly. */
void expect_close(lg_tensor *t, const double *want, int64_t n, double tol, const char *what);
/* t's values against another tensor's (same element count), as expect_close. */
void expect_close_to(lg_tensor *t, lg_tensor *want, double tol, const char *what);
/* A fused loss against its composite oracle: the values of fused and
 * composite agree within tol, and after a backward of each with upstream u
 * so do the gradients of leaves[k][0] (reached from fused) and
 * leaves[k][1] (from composite), k < nleaves; a missing gradient counts as
 * zeros. */
void expect_same_loss(lg_ctx *ctx, lg_tensor *fused, lg_tensor *composite, lg_tensor *u,
                      lg_tensor *const (*leaves)[2], int nleaves, double tol, const char *what);
void expect_ok(lg_ctx *ctx);
/* Runs lg_gradcheck and asserts it passes, printing the report if not. */
void expect_gradcheck(lg_ctx *ctx, lg_gradcheck_fn fn, void *user, int n, lg_tensor *const *xs,
                      const char *what);
/* When set, expect_gradcheck first runs lg_gradgradcheck on fn too and
 * asserts it passes (test_ops sets it for the twice-differentiable ops). */
extern bool expect_second_order;
/* Tolerance for comparing a dtype's result with a double reference. */
double tol_for(lg_dtype dt);

/* call records the status and a message containing substr (the error is
 * cleared before and after). */
#define EXPECT_ERR(ctx, call, status, substr)                                                      \
    do {                                                                                           \
        lg_ctx_clear_error(ctx);                                                                   \
        (void)(call);                                                                              \
        cr_assert_eq(lg_ctx_status(ctx), status, "%s: status %s, expected %s (%s)", #call,         \
                     lg_status_name(lg_ctx_status(ctx)), lg_status_name(status),                   \
                     lg_ctx_errmsg(ctx));                                                          \
        cr_assert(strstr(lg_ctx_errmsg(ctx), substr) != NULL, "%s: message '%s' lacks '%s'",       \
                  #call, lg_ctx_errmsg(ctx), substr);                                              \
        lg_ctx_clear_error(ctx);                                                                   \
    } while (0)

/* call returns NULL with the status and a message containing substr. */
#define EXPECT_LOSS_ERR(ctx, call, status, substr)                                                 \
    do {                                                                                           \
        lg_ctx_clear_error(ctx);                                                                   \
        cr_assert_null(call, "%s returned a tensor", #call);                                       \
        cr_assert_eq(lg_ctx_status(ctx), status, "%s: %s (%s)", #call,                             \
                     lg_status_name(lg_ctx_status(ctx)), lg_ctx_errmsg(ctx));                      \
        cr_assert(strstr(lg_ctx_errmsg(ctx), substr) != NULL, "%s: '%s' lacks '%s'", #call,        \
                  lg_ctx_errmsg(ctx), substr);                                                     \
    } while (0)

#endif
