/* test_more_losses.c: PyTorch's remaining losses and the beyond-core
 * losses, beyond their fixtures: gradchecks, closed forms and identities,
 * the distance callback, soft_margin's stability, and argument errors. */
#include "helpers.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Gradchecks (float64, random interior inputs)                        */
/* ------------------------------------------------------------------ */

/* A user distance for triplet_margin_with_distance_loss: squared L2. */
static lg_tensor *squared_l2(lg_ctx *ctx, lg_tensor *x1, lg_tensor *x2, void *user)
{
    int *calls = user;
    (*calls)++;
    return lg_sum(ctx, lg_square(ctx, lg_sub(ctx, x1, x2)), 1, (int[]){ -1 }, false);
}

typedef struct {
    int which;
    lg_reduction red;
} gc_arg;

enum { NUM_GC = 21 };

static lg_tensor *col0(lg_ctx *ctx, lg_tensor *x) /* [3, 4] -> [3] */
{
    return lg_reshape(ctx, lg_narrow(ctx, x, 1, 0, 1), 1, SHAPE(3));
}

static lg_tensor *apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    const gc_arg *a = user;
    lg_reduction r = a->red;
    int64_t cls[] = { 2, 0, 3 };
    int64_t labels[] = { 1, 3, -1, 0, 0, -1, 2, 2, 2, 1, 0, -1 };
    static int calls;
    lg_tensor *x = xs[0], *y = xs[1], *z = xs[2];
    lg_tensor *pm1 = lg_tanh(ctx, y); /* targets in (-1, 1) */
    lg_tensor *unit = lg_sigmoid(ctx, y);
    int64_t seg[] = { 3, 2, 2 };
    lg_tensor *row0 = lg_reshape(ctx, lg_narrow(ctx, z, 0, 0, 1), 1, SHAPE(4));
    switch (a->which) {
    case 0:
        return lg_poisson_nll_loss(ctx, x, lg_add_scalar(ctx, lg_exp(ctx, y), 0.5),
                                   &(lg_poisson_nll_opts){ .reduction = r, .full = true });
    case 1:
        return lg_poisson_nll_loss(
            ctx, lg_exp(ctx, x), lg_exp(ctx, y),
            &(lg_poisson_nll_opts){ .reduction = r, .log_input = LG_SET(false), .full = true });
    case 2:
        return lg_gaussian_nll_loss(ctx, x, y, lg_exp(ctx, z),
                                    &(lg_gaussian_nll_opts){ .reduction = r, .full = true });
    case 3:
        return lg_gaussian_nll_loss(ctx, x, y, lg_exp(ctx, col0(ctx, z)),
                                    &(lg_gaussian_nll_opts){ .reduction = r });
    case 4: return lg_margin_ranking_loss(ctx, x, z, pm1, &(lg_margin_opts){ r, 0.3 });
    case 5: return lg_soft_margin_loss(ctx, x, pm1, &(lg_loss_opts){ r });
    case 6:
        return lg_multi_margin_loss(
            ctx, x, T_FROM(ctx, LG_I64, cls, 3),
            &(lg_multi_margin_opts){ .reduction = r, .p = LG_SET(2), .weight = lg_exp(ctx, row0) });
    case 7:
        return lg_multi_margin_loss(
            ctx, x, T_FROM(ctx, LG_I64, cls, 3),
            &(lg_multi_margin_opts){ .reduction = r, .margin = LG_SET(0.7) });
    case 8:
        return lg_multilabel_margin_loss(ctx, x, T_FROM(ctx, LG_I64, labels, 3, 4),
                                         &(lg_loss_opts){ r });
    case 9: {
        double t[] = { 1, -1, 0 };
        return lg_cosine_embedding_loss(ctx, x, y, from_doubles(ctx, LG_F64, t, 1, SHAPE(3)),
                                        &(lg_margin_opts){ r, -0.9 });
    }
    case 10:
        return lg_triplet_margin_with_distance_loss(
            ctx, x, y, z, &(lg_triplet_distance_opts){ .reduction = r, .swap = true });
    case 11:
        return lg_triplet_margin_with_distance_loss(
            ctx, x, y, z,
            &(lg_triplet_distance_opts){
                .reduction = r, .distance = squared_l2, .user = &calls, .margin = LG_SET(8) });
    case 12: return lg_sigmoid_focal_loss(ctx, x, unit, &(lg_focal_opts){ .reduction = r });
    case 13:
        return lg_sigmoid_focal_loss(
            ctx, x, unit,
            &(lg_focal_opts){ .reduction = r, .alpha = LG_SET(-1), .gamma = LG_SET(0.5) });
    case 14:
        return lg_binary_cross_entropy_with_logits(
            ctx, x, unit, &(lg_bce_logits_opts){ r, NULL, lg_exp(ctx, z), 0.2 });
    case 15:
        return lg_dice_loss(ctx, lg_reshape(ctx, x, 3, seg), lg_reshape(ctx, unit, 3, seg),
                            &(lg_dice_opts){ .reduction = r,
                                             .activation = LG_DICE_SIGMOID,
                                             .weight = lg_exp(ctx, lg_narrow(ctx, col0(ctx, z), 0, 0, 2)) });
    case 16:
        return lg_dice_loss(ctx, lg_reshape(ctx, x, 3, seg), lg_reshape(ctx, unit, 3, seg),
                            &(lg_dice_opts){ .reduction = r, .activation = LG_DICE_SOFTMAX,
                                             .smooth = LG_SET(0.1) });
    case 17: return lg_dice_loss(ctx, lg_sigmoid(ctx, x), unit, &(lg_dice_opts){ .reduction = r });
    case 18:
        return lg_contrastive_loss(ctx, x, y, lg_sigmoid(ctx, col0(ctx, z)),
                                   &(lg_contrastive_opts){ .reduction = r, .margin = LG_SET(3) });
    case 19: return lg_nt_xent_loss(ctx, x, y, &(lg_nt_xent_opts){ .reduction = r });
    default:
        return lg_nt_xent_loss(ctx, x, y,
                               &(lg_nt_xent_opts){ .reduction = r,
                                                   .temperature = LG_SET(0.5),
                                                   .cross_view_only = true });
    }
}

Test(more_losses, every_new_loss_passes_gradcheck)
{
    lg_ctx *ctx = test_ctx(211);
    for (int which = 0; which < NUM_GC; which++)
        for (int red = 0; red < 3; red++) {
            lg_tensor *xs[3] = { lg_mul_scalar(ctx, lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)), 1.5),
                                 lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)),
                                 lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)) };
            gc_arg a = { which, (lg_reduction)red };
            char what[64];
            snprintf(what, sizeof what, "loss %d reduction %d", which, red);
            expect_gradcheck(ctx, apply, &a, 3, xs, what);
            lg_step_end(ctx);
        }
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Closed forms and identities                                          */
/* ------------------------------------------------------------------ */

Test(more_losses, soft_margin_stays_finite_where_pytorch_overflows)
{
    lg_ctx *ctx = test_ctx(212);
    for (int k = 0; k < 2; k++) {
        lg_dtype dt = k ? LG_F32 : LG_F64;
        double xv[] = { -1e4, 1e4, -1e4, 1e4 }, yv[] = { 1, -1, -1, 1 };
        lg_tensor *x = from_doubles(ctx, dt, xv, 1, SHAPE(4));
        lg_tensor *y = from_doubles(ctx, dt, yv, 1, SHAPE(4));
        lg_requires_grad(ctx, x, true);
        lg_tensor *l = lg_soft_margin_loss(ctx, x, y, &(lg_loss_opts){ LG_REDUCTION_NONE });
        cr_assert_not_null(l, "%s", lg_ctx_errmsg(ctx));
        cr_assert_eq(lg_backward_with(ctx, l, lg_ones(ctx, dt, 1, SHAPE(4))), LG_OK);
        /* log(1 + exp(1e4)) = 1e4 (+ exp(-1e4)); log(1 + exp(-1e4)) = 0 */
        expect_close(l, (double[]){ 1e4, 1e4, 0, 0 }, 4, 1e-12, "soft margin value");
        expect_close(lg_tensor_grad(x), (double[]){ -1, 1, 0, 0 }, 4, 1e-12, "soft margin grad");
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

Test(more_losses, focal_with_gamma_0_and_no_alpha_is_bce_with_logits)
{
    lg_ctx *ctx = test_ctx(213);
    lg_tensor *x = lg_mul_scalar(ctx, lg_randn(ctx, LG_F64, 2, SHAPE(5, 3)), 3);
    lg_tensor *y = lg_rand(ctx, LG_F64, 2, SHAPE(5, 3), 0, 1);
    lg_tensor *f = lg_sigmoid_focal_loss(
        ctx, x, y,
        &(lg_focal_opts){ LG_REDUCTION_NONE, .alpha = LG_SET(-1), .gamma = LG_SET(0) });
    lg_tensor *b = lg_binary_cross_entropy_with_logits(
        ctx, x, y, &(lg_bce_logits_opts){ .reduction = LG_REDUCTION_NONE });
    double want[15];
    for (int i = 0; i < 15; i++)
        want[i] = get(b, i);
    expect_close(f, want, 15, 1e-15, "focal(gamma 0, alpha off) vs BCE");
    lg_ctx_free(ctx);
}

Test(more_losses, bce_label_smoothing_is_bce_on_smoothed_targets)
{
    lg_ctx *ctx = test_ctx(214);
    lg_tensor *x = lg_randn(ctx, LG_F64, 2, SHAPE(4, 3));
    double yv[] = { 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0 }, sv[12];
    for (int i = 0; i < 12; i++)
        sv[i] = yv[i] * 0.8 + 0.1;
    lg_tensor *a = lg_binary_cross_entropy_with_logits(
        ctx, x, from_doubles(ctx, LG_F64, yv, 2, SHAPE(4, 3)),
        &(lg_bce_logits_opts){ LG_REDUCTION_NONE, .label_smoothing = 0.2 });
    lg_tensor *b = lg_binary_cross_entropy_with_logits(
        ctx, x, from_doubles(ctx, LG_F64, sv, 2, SHAPE(4, 3)),
        &(lg_bce_logits_opts){ .reduction = LG_REDUCTION_NONE });
    double want[12];
    for (int i = 0; i < 12; i++)
        want[i] = get(b, i);
    expect_close(a, want, 12, 1e-15, "smoothed BCE");
    lg_ctx_free(ctx);
}

Test(more_losses, closed_forms)
{
    lg_ctx *ctx = test_ctx(215);
    /* dice: p = t = one-hot gives 0; disjoint masks give 1 - smooth / (|p| + |t| + smooth) */
    double p[] = { 1, 0, 0, 1 }, t[] = { 0, 1, 1, 0 };
    lg_tensor *P = from_doubles(ctx, LG_F64, p, 3, SHAPE(1, 1, 4));
    lg_tensor *Tt = from_doubles(ctx, LG_F64, t, 3, SHAPE(1, 1, 4));
    expect_close(lg_dice_loss(ctx, P, P, NULL), (double[]){ 0 }, 1, 1e-15, "dice same");
    expect_close(lg_dice_loss(ctx, P, Tt, NULL), (double[]){ 1 - 1.0 / 5 }, 1, 1e-15,
                 "dice disjoint");
    /* contrastive: a similar pair at distance 3 costs 4.5; a dissimilar pair
     * at distance 3 with margin 5 costs 2 */
    double a[] = { 0, 0 }, b[] = { 3, 0 };
    lg_tensor *A = from_doubles(ctx, LG_F64, a, 1, SHAPE(2));
    lg_tensor *B = from_doubles(ctx, LG_F64, b, 1, SHAPE(2));
    lg_contrastive_opts co = { LG_REDUCTION_NONE, LG_SET(5), LG_SET(0) };
    expect_close(lg_contrastive_loss(ctx, A, B, lg_scalar(ctx, LG_F64, 1), &co), (double[]){ 4.5 },
                 1, 1e-15, "contrastive similar");
    expect_close(lg_contrastive_loss(ctx, A, B, lg_scalar(ctx, LG_F64, 0), &co), (double[]){ 2 }, 1,
                 1e-15, "contrastive dissimilar");
    /* NT-Xent with orthogonal views of 2 pairs: every similarity is 0 but
     * the positive's 1/tau: l = -1/tau + log(exp(1/tau) + 2) */
    double e1[] = { 1, 0, 0, 0, 0, 1, 0, 0 }, e2[] = { 1, 0, 0, 0, 0, 1, 0, 0 };
    lg_tensor *Z1 = from_doubles(ctx, LG_F64, e1, 2, SHAPE(2, 4));
    lg_tensor *Z2 = from_doubles(ctx, LG_F64, e2, 2, SHAPE(2, 4));
    double tau = 0.5, want = -1 / tau + log(exp(1 / tau) + 2);
    expect_close(lg_nt_xent_loss(ctx, Z1, Z2, &(lg_nt_xent_opts){ .temperature = LG_SET(tau) }),
                 (double[]){ want }, 1, 1e-14, "nt-xent");
    /* cross-view only: one negative per direction */
    want = -1 / tau + log(exp(1 / tau) + 1);
    expect_close(lg_nt_xent_loss(ctx, Z1, Z2,
                                 &(lg_nt_xent_opts){ .temperature = LG_SET(tau),
                                                     .cross_view_only = true }),
                 (double[]){ want }, 1, 1e-14, "infonce");
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* The distance callback                                                */
/* ------------------------------------------------------------------ */

static lg_tensor *fails(lg_ctx *ctx, lg_tensor *x1, lg_tensor *x2, void *user)
{
    (void)x1, (void)x2, (void)user;
    return lg_softmax(ctx, x1, 7); /* an axis error from inside the callback */
}

static lg_tensor *returns_null(lg_ctx *ctx, lg_tensor *x1, lg_tensor *x2, void *user)
{
    (void)ctx, (void)x1, (void)x2, (void)user;
    return NULL;
}

static lg_tensor *wrong_shape(lg_ctx *ctx, lg_tensor *x1, lg_tensor *x2, void *user)
{
    int *n = user;
    lg_tensor *d = lg_pairwise_distance(ctx, x1, x2, 2, 0, false);
    return (*n)++ == 0 ? d : lg_reshape(ctx, d, 2, SHAPE(1, 3));
}

Test(more_losses, distance_callback_builds_on_the_tape_and_its_errors_surface)
{
    lg_ctx *ctx = test_ctx(216);
    lg_tensor *a = lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)), *p = lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)),
              *n = lg_randn(ctx, LG_F64, 2, SHAPE(3, 4));
    int calls = 0;
    lg_tensor *l = lg_triplet_margin_with_distance_loss(
        ctx, a, p, n,
        &(lg_triplet_distance_opts){ LG_REDUCTION_NONE, squared_l2, &calls, LG_SET(2), true });
    cr_assert_not_null(l, "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(calls, 3, "swap calls the distance three times, got %d", calls);
    for (int i = 0; i < 3; i++) {
        double dap = 0, dan = 0, dpn = 0;
        for (int k = 0; k < 4; k++) {
            dap += pow(get(a, i * 4 + k) - get(p, i * 4 + k), 2);
            dan += pow(get(a, i * 4 + k) - get(n, i * 4 + k), 2);
            dpn += pow(get(p, i * 4 + k) - get(n, i * 4 + k), 2);
        }
        double want = fmax(0, dap - fmin(dan, dpn) + 2);
        cr_assert(fabs(get(l, i) - want) < 1e-12, "row %d: %g vs %g", i, get(l, i), want);
    }
    EXPECT_LOSS_ERR(ctx,
               lg_triplet_margin_with_distance_loss(
                   ctx, a, p, n, &(lg_triplet_distance_opts){ .distance = fails }),
               LG_ERR_AXIS, "lg_softmax");
    EXPECT_LOSS_ERR(ctx,
               lg_triplet_margin_with_distance_loss(
                   ctx, a, p, n, &(lg_triplet_distance_opts){ .distance = returns_null }),
               LG_ERR_VALUE, "returned NULL without setting an error");
    int k = 0;
    EXPECT_LOSS_ERR(ctx,
               lg_triplet_margin_with_distance_loss(
                   ctx, a, p, n, &(lg_triplet_distance_opts){ .distance = wrong_shape, .user = &k }),
               LG_ERR_SHAPE, "expected the same");
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Argument errors                                                      */
/* ------------------------------------------------------------------ */

Test(more_losses, argument_errors_name_the_function_and_rule)
{
    lg_ctx *ctx = test_ctx(217);
    lg_tensor *x = lg_randn(ctx, LG_F32, 2, SHAPE(2, 3)), *x4 = lg_randn(ctx, LG_F32, 1, SHAPE(4));
    lg_tensor *u = lg_rand(ctx, LG_F32, 2, SHAPE(2, 3), 0, 1);
    int64_t t2[] = { 0, 3 }, lab[] = { 0, -2, 1, 1, -1, 0 };
    lg_tensor *t = T_FROM(ctx, LG_I64, t2, 2);
    EXPECT_LOSS_ERR(ctx, lg_poisson_nll_loss(ctx, x, x4, NULL), LG_ERR_SHAPE,
               "lg_poisson_nll_loss: input has shape [2, 3] but target has shape [4]");
    EXPECT_LOSS_ERR(ctx, lg_gaussian_nll_loss(ctx, x, x, lg_ones(ctx, LG_F32, 2, SHAPE(1, 3)), NULL),
               LG_ERR_SHAPE, "lg_gaussian_nll_loss: var has shape [1, 3] for input [2, 3]");
    EXPECT_LOSS_ERR(ctx, lg_gaussian_nll_loss(ctx, x, x, lg_neg(ctx, u), NULL), LG_ERR_VALUE,
               "var[0] = ");
    EXPECT_LOSS_ERR(ctx, lg_margin_ranking_loss(ctx, x4, lg_ones(ctx, LG_F32, 1, SHAPE(1)), x4, NULL),
               LG_ERR_SHAPE, "lg_margin_ranking_loss: input1 is float32 [4], input2 float32 [1]");
    EXPECT_LOSS_ERR(ctx, lg_multi_margin_loss(ctx, x, t, NULL), LG_ERR_INDEX,
               "lg_multi_margin_loss: target[1] = 3, expected a class in [0, 3)");
    EXPECT_LOSS_ERR(ctx,
               lg_multi_margin_loss(ctx, x, lg_zeros(ctx, LG_I64, 1, SHAPE(2)),
                                    &(lg_multi_margin_opts){ .p = LG_SET(3) }),
               LG_ERR_VALUE, "p = 3, expected 1 or 2");
    EXPECT_LOSS_ERR(ctx,
               lg_multi_margin_loss(ctx, x, lg_zeros(ctx, LG_I64, 1, SHAPE(2)),
                                    &(lg_multi_margin_opts){ .weight = x4 }),
               LG_ERR_SHAPE, "weight is float32 [4], expected [3]");
    EXPECT_LOSS_ERR(ctx, lg_multilabel_margin_loss(ctx, x, T_FROM(ctx, LG_I64, lab, 2, 3), NULL),
               LG_ERR_INDEX, "target[1] = -2, expected a class in [0, 3) or -1");
    EXPECT_LOSS_ERR(ctx, lg_cosine_embedding_loss(ctx, x, x, lg_ones(ctx, LG_F32, 1, SHAPE(1)), NULL),
               LG_ERR_SHAPE, "target has shape [1], expected [N] for [N, D] inputs");
    EXPECT_LOSS_ERR(ctx,
               lg_sigmoid_focal_loss(ctx, x, u, &(lg_focal_opts){ .gamma = LG_SET(-1) }),
               LG_ERR_VALUE, "gamma = -1");
    EXPECT_LOSS_ERR(ctx, lg_sigmoid_focal_loss(ctx, x, x, NULL), LG_ERR_VALUE,
               "expected every element in [0, 1]");
    EXPECT_LOSS_ERR(ctx,
               lg_binary_cross_entropy_with_logits(ctx, x, u,
                                                   &(lg_bce_logits_opts){ .label_smoothing = 2 }),
               LG_ERR_VALUE, "label_smoothing = 2");
    EXPECT_LOSS_ERR(ctx, lg_dice_loss(ctx, x4, x4, NULL), LG_ERR_SHAPE, "expected [N, C, d1..dk]");
    EXPECT_LOSS_ERR(ctx,
               lg_dice_loss(ctx, u, u, &(lg_dice_opts){ .weight = lg_zeros(ctx, LG_F32, 1, SHAPE(3)) }),
               LG_ERR_VALUE, "the weights sum to 0");
    EXPECT_LOSS_ERR(ctx, lg_contrastive_loss(ctx, x, x, lg_full(ctx, LG_F32, 1, SHAPE(2), 2), NULL),
               LG_ERR_VALUE, "target[0] = 2");
    EXPECT_LOSS_ERR(ctx, lg_nt_xent_loss(ctx, x4, x4, NULL), LG_ERR_SHAPE, "N >= 2");
    EXPECT_LOSS_ERR(ctx, lg_nt_xent_loss(ctx, x, x, &(lg_nt_xent_opts){ .temperature = LG_SET(0) }),
               LG_ERR_VALUE, "temperature = 0");
    lg_ctx_free(ctx);
}
