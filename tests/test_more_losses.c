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
    switch (a->which) {
    case 0:
        return lg_poisson_nll_loss(
            ctx, x, lg_add_scalar(ctx, lg_exp(ctx, y), 0.5),
            &(lg_poisson_nll_opts){ .reduction = r, .log_input = true, .full = true, .eps = 1e-8 });
    case 1: {
        lg_poisson_nll_opts o = lg_poisson_nll_opts_default(); /* the rate itself */
        o.reduction = r;
        o.log_input = false;
        o.full = true;
        return lg_poisson_nll_loss(ctx, lg_exp(ctx, x), lg_exp(ctx, y), &o);
    }
    case 2:
        return lg_gaussian_nll_loss(
            ctx, x, y, lg_exp(ctx, z),
            &(lg_gaussian_nll_opts){ .reduction = r, .full = true, .eps = 1e-6 });
    case 3:
        return lg_gaussian_nll_loss(ctx, x, y, lg_exp(ctx, col0(ctx, z)),
                                    &(lg_gaussian_nll_opts){ .reduction = r, .eps = 1e-6 });
    case 4:
        return lg_margin_ranking_loss(ctx, x, z, pm1,
                                      &(lg_margin_opts){ .reduction = r, .margin = 0.3 });
    case 5: return lg_soft_margin_loss(ctx, x, pm1, &(lg_loss_opts){ .reduction = r });
    case 6:
        return lg_multi_margin_loss(
            ctx, x, T_FROM(ctx, LG_I64, cls, 3),
            &(lg_multi_margin_opts){
                .reduction = r,
                .p = 2,
                .margin = 1,
                .weight =
                    from_doubles(ctx, LG_F64, (double[]){ 0.5, 2, 1.25, 0.75 }, 1, SHAPE(4)) });
    case 7:
        return lg_multi_margin_loss(
            ctx, x, T_FROM(ctx, LG_I64, cls, 3),
            &(lg_multi_margin_opts){ .reduction = r, .p = 1, .margin = 0.7 });
    case 8:
        return lg_multilabel_margin_loss(ctx, x, T_FROM(ctx, LG_I64, labels, 3, 4),
                                         &(lg_loss_opts){ .reduction = r });
    case 9: {
        double t[] = { 1, -1, 0 };
        return lg_cosine_embedding_loss(ctx, x, y, from_doubles(ctx, LG_F64, t, 1, SHAPE(3)),
                                        &(lg_margin_opts){ .reduction = r, .margin = -0.9 });
    }
    case 10:
        return lg_triplet_margin_with_distance_loss(
            ctx, x, y, z, &(lg_triplet_distance_opts){ .reduction = r, .margin = 1, .swap = true });
    case 11:
        return lg_triplet_margin_with_distance_loss(
            ctx, x, y, z,
            &(lg_triplet_distance_opts){
                .reduction = r, .distance = squared_l2, .user = &calls, .margin = 8 });
    case 12:
        return lg_sigmoid_focal_loss(ctx, x, unit,
                                     &(lg_focal_opts){ .reduction = r, .alpha = 0.25, .gamma = 2 });
    case 13:
        return lg_sigmoid_focal_loss(ctx, x, unit,
                                     &(lg_focal_opts){ .reduction = r, .alpha = -1, .gamma = 0.5 });
    case 14:
        return lg_binary_cross_entropy_with_logits(
            ctx, x, unit,
            &(lg_bce_logits_opts){ .reduction = r,
                                   .weight = NULL,
                                   .pos_weight = lg_exp(ctx, z),
                                   .label_smoothing = 0.2 });
    case 15:
        return lg_dice_loss(
            ctx, lg_reshape(ctx, x, 3, seg), lg_reshape(ctx, unit, 3, seg),
            &(lg_dice_opts){ .reduction = r,
                             .activation = LG_DICE_SIGMOID,
                             .smooth = 1,
                             .weight = lg_exp(ctx, lg_narrow(ctx, col0(ctx, z), 0, 0, 2)) });
    case 16:
        return lg_dice_loss(
            ctx, lg_reshape(ctx, x, 3, seg), lg_reshape(ctx, unit, 3, seg),
            &(lg_dice_opts){ .reduction = r, .activation = LG_DICE_SOFTMAX, .smooth = 0.1 });
    case 17:
        return lg_dice_loss(ctx, lg_sigmoid(ctx, x), unit,
                            &(lg_dice_opts){ .reduction = r, .smooth = 1 });
    case 18:
        return lg_contrastive_loss(
            ctx, x, y, lg_sigmoid(ctx, col0(ctx, z)),
            &(lg_contrastive_opts){ .reduction = r, .margin = 3, .eps = 1e-6 });
    case 19:
        return lg_nt_xent_loss(ctx, x, y, &(lg_nt_xent_opts){ .reduction = r, .temperature = 0.1 });
    default:
        return lg_nt_xent_loss(
            ctx, x, y,
            &(lg_nt_xent_opts){ .reduction = r, .temperature = 0.5, .cross_view_only = true });
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
        lg_tensor *l =
            lg_soft_margin_loss(ctx, x, y, &(lg_loss_opts){ .reduction = LG_REDUCTION_NONE });
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
    lg_focal_opts fo = lg_focal_opts_default(); /* gamma 0, no alpha: plain BCE */
    fo.reduction = LG_REDUCTION_NONE;
    fo.alpha = -1;
    fo.gamma = 0;
    lg_tensor *f = lg_sigmoid_focal_loss(ctx, x, y, &fo);
    lg_tensor *b = lg_binary_cross_entropy_with_logits(
        ctx, x, y, &(lg_bce_logits_opts){ .reduction = LG_REDUCTION_NONE });
    expect_close_to(f, b, 1e-15, "focal(gamma 0, alpha off) vs BCE");
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
        &(lg_bce_logits_opts){ .reduction = LG_REDUCTION_NONE, .label_smoothing = 0.2 });
    lg_tensor *b = lg_binary_cross_entropy_with_logits(
        ctx, x, from_doubles(ctx, LG_F64, sv, 2, SHAPE(4, 3)),
        &(lg_bce_logits_opts){ .reduction = LG_REDUCTION_NONE });
    expect_close_to(a, b, 1e-15, "smoothed BCE");
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
    lg_contrastive_opts co = lg_contrastive_opts_default();
    co.reduction = LG_REDUCTION_NONE;
    co.margin = 5;
    co.eps = 0;
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
    expect_close(lg_nt_xent_loss(ctx, Z1, Z2, &(lg_nt_xent_opts){ .temperature = tau }),
                 (double[]){ want }, 1, 1e-14, "nt-xent");
    /* cross-view only: one negative per direction */
    want = -1 / tau + log(exp(1 / tau) + 1);
    expect_close(lg_nt_xent_loss(ctx, Z1, Z2,
                                 &(lg_nt_xent_opts){ .temperature = tau, .cross_view_only = true }),
                 (double[]){ want }, 1, 1e-14, "infonce");
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* The fused class hinges against the composites they replaced         */
/* ------------------------------------------------------------------ */

static lg_tensor *multi_margin_composite(lg_ctx *ctx, lg_tensor *x, const int64_t *tv, int64_t N,
                                         int64_t C, int p, double margin, lg_tensor *w,
                                         lg_reduction r)
{
    lg_dtype dt = lg_tensor_dtype(x);
    lg_tensor *t = T_FROM(ctx, LG_I64, tv, N, 1);
    lg_tensor *z = lg_add_scalar(ctx, lg_sub(ctx, x, lg_gather(ctx, x, 1, t)), margin);
    lg_tensor *other = lg_reshape(
        ctx, lg_add_scalar(ctx, lg_neg(ctx, lg_one_hot(ctx, t, C, dt)), 1), 2, SHAPE(N, C));
    lg_tensor *keep = lg_mul(ctx, other, lg_gt(ctx, z, lg_scalar(ctx, dt, 0)));
    lg_tensor *h = lg_where(ctx, keep, p == 2 ? lg_square(ctx, z) : z, lg_scalar(ctx, dt, 0));
    lg_tensor *l = lg_mul_scalar(ctx, lg_sum(ctx, h, 1, (int[]){ 1 }, false), 1.0 / (double)C);
    if (w)
        l = lg_mul(ctx, l, lg_index_select(ctx, w, 0, T_FROM(ctx, LG_I64, tv, N)));
    return r == LG_REDUCTION_NONE ? l
                                  : (r == LG_REDUCTION_SUM ? lg_sum(ctx, l, 0, NULL, false)
                                                           : lg_mean(ctx, l, 0, NULL, false));
}

static lg_tensor *multilabel_margin_composite(lg_ctx *ctx, lg_tensor *x, const int64_t *y,
                                              int64_t N, int64_t C, lg_reduction r)
{
    lg_dtype dt = lg_tensor_dtype(x);
    double *pairs = calloc((size_t)(N * C * C), sizeof *pairs);
    int64_t *idx = calloc((size_t)(N * C), sizeof *idx);
    for (int64_t i = 0; i < N; i++) {
        const int64_t *row = y + i * C;
        int64_t len = 0;
        while (len < C && row[len] != -1)
            len++;
        for (int64_t k = 0; k < C; k++) {
            bool labelled = false;
            for (int64_t j = 0; j < len; j++)
                labelled = labelled || row[j] == k;
            for (int64_t j = 0; j < len && !labelled; j++)
                pairs[(i * C + j) * C + k] = 1;
        }
        for (int64_t j = 0; j < len; j++)
            idx[i * C + j] = row[j];
    }
    lg_tensor *xj =
        lg_reshape(ctx, lg_gather(ctx, x, 1, T_FROM(ctx, LG_I64, idx, N, C)), 3, SHAPE(N, C, 1));
    lg_tensor *xk = lg_reshape(ctx, x, 3, SHAPE(N, 1, C));
    lg_tensor *z = lg_add(ctx, lg_add_scalar(ctx, lg_neg(ctx, xj), 1), xk);
    lg_tensor *keep = lg_mul(ctx, from_doubles(ctx, dt, pairs, 3, SHAPE(N, C, C)),
                             lg_gt(ctx, z, lg_scalar(ctx, dt, 0)));
    lg_tensor *h = lg_where(ctx, keep, z, lg_scalar(ctx, dt, 0));
    lg_tensor *l = lg_mul_scalar(ctx, lg_sum(ctx, h, 2, (int[]){ 1, 2 }, false), 1.0 / (double)C);
    free(pairs), free(idx);
    return r == LG_REDUCTION_NONE ? l
                                  : (r == LG_REDUCTION_SUM ? lg_sum(ctx, l, 0, NULL, false)
                                                           : lg_mean(ctx, l, 0, NULL, false));
}

Test(more_losses, fused_class_hinges_match_their_composite_oracles)
{
    lg_ctx *ctx = test_ctx(218);
    enum { N = 6, C = 5 };
    int64_t tv[N] = { 0, 4, 2, 2, 1, 3 };
    int64_t lists[N * C] = { 1, 3, -1, 0, 0, 4, 4,  -1, 2, 2, -1, 0, 0,  0,  0,
                             0, 1, 2,  3, 4, 2, -1, 0,  0, 0, 3,  0, -1, -1, 4 };
    for (int dt = 0; dt < 2; dt++)
        for (int cfg = 0; cfg < 5; cfg++)
            for (int red = 0; red < 3; red++) {
                lg_tensor *x1 = lg_detach(
                    ctx, lg_mul_scalar(ctx, lg_randn(ctx, (lg_dtype)dt, 2, SHAPE(N, C)), 1.5));
                /* a tie (hinge exactly 0) and a NaN, as the loops see them */
                double *xv = malloc(N * C * sizeof *xv);
                for (int i = 0; i < N * C; i++)
                    xv[i] = get(x1, i);
                xv[1] = xv[0] - 1; /* multi margin row 0, margin 1: z = 0 */
                /* row 5: a NaN, which the loops skip. Not with p = 2: the composite
                 * squares z before its mask and so sends NaN into the gradient,
                 * where PyTorch's kernel and the fused one give 0 */
                if (cfg != 1)
                    xv[27] = NAN;
                x1 = from_doubles(ctx, (lg_dtype)dt, xv, 2, SHAPE(N, C));
                free(xv);
                lg_tensor *x2 = lg_detach(ctx, x1);
                lg_requires_grad(ctx, x1, true), lg_requires_grad(ctx, x2, true);
                lg_tensor *w = cfg == 2 ? lg_rand(ctx, (lg_dtype)dt, 1, SHAPE(C), 0.2, 2) : NULL;
                lg_tensor *f, *c;
                if (cfg < 4) {
                    int p = cfg == 1 ? 2 : 1;
                    double margin = cfg == 3 ? 0.3 : 1;
                    f = lg_multi_margin_loss(
                        ctx, x1, T_FROM(ctx, LG_I64, tv, N),
                        &(lg_multi_margin_opts){ .reduction = (lg_reduction)red,
                                                 .p = p,
                                                 .margin = margin,
                                                 .weight = w });
                    c = multi_margin_composite(ctx, x2, tv, N, C, p, margin, w, (lg_reduction)red);
                } else {
                    f = lg_multilabel_margin_loss(
                        ctx, x1, T_FROM(ctx, LG_I64, lists, N, C),
                        &(lg_loss_opts){ .reduction = (lg_reduction)red });
                    c = multilabel_margin_composite(ctx, x2, lists, N, C, (lg_reduction)red);
                }
                char what[64];
                snprintf(what, sizeof what, "dtype %d config %d reduction %d", dt, cfg, red);
                lg_tensor *u = red == LG_REDUCTION_NONE ? lg_randn(ctx, (lg_dtype)dt, 1, SHAPE(N))
                                                        : lg_scalar(ctx, (lg_dtype)dt, 0.8);
                expect_same_loss(ctx, f, c, u, (lg_tensor *const[][2]){ { x1, x2 } }, 1,
                                 dt == LG_F32 ? 2e-6 : 1e-14, what);
                lg_step_end(ctx);
            }
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
    lg_tensor *a = lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)),
              *p = lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)),
              *n = lg_randn(ctx, LG_F64, 2, SHAPE(3, 4));
    int calls = 0;
    lg_tensor *l = lg_triplet_margin_with_distance_loss(
        ctx, a, p, n,
        &(lg_triplet_distance_opts){ .reduction = LG_REDUCTION_NONE,
                                     .distance = squared_l2,
                                     .user = &calls,
                                     .margin = 2,
                                     .swap = true });
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
    EXPECT_LOSS_ERR(
        ctx,
        lg_triplet_margin_with_distance_loss(
            ctx, a, p, n, &(lg_triplet_distance_opts){ .distance = fails, .margin = 1 }),
        LG_ERR_AXIS, "lg_softmax");
    EXPECT_LOSS_ERR(
        ctx,
        lg_triplet_margin_with_distance_loss(
            ctx, a, p, n, &(lg_triplet_distance_opts){ .distance = returns_null, .margin = 1 }),
        LG_ERR_VALUE, "returned NULL without setting an error");
    int k = 0;
    EXPECT_LOSS_ERR(
        ctx,
        lg_triplet_margin_with_distance_loss(
            ctx, a, p, n,
            &(lg_triplet_distance_opts){ .distance = wrong_shape, .user = &k, .margin = 1 }),
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
    EXPECT_LOSS_ERR(ctx,
                    lg_gaussian_nll_loss(ctx, x, x, lg_ones(ctx, LG_F32, 2, SHAPE(1, 3)), NULL),
                    LG_ERR_SHAPE, "lg_gaussian_nll_loss: var has shape [1, 3] for input [2, 3]");
    EXPECT_LOSS_ERR(ctx, lg_gaussian_nll_loss(ctx, x, x, lg_neg(ctx, u), NULL), LG_ERR_VALUE,
                    "var[0] = ");
    EXPECT_LOSS_ERR(
        ctx, lg_margin_ranking_loss(ctx, x4, lg_ones(ctx, LG_F32, 1, SHAPE(1)), x4, NULL),
        LG_ERR_SHAPE, "lg_margin_ranking_loss: input1 is float32 [4], input2 float32 [1]");
    EXPECT_LOSS_ERR(ctx, lg_multi_margin_loss(ctx, x, t, NULL), LG_ERR_INDEX,
                    "lg_multi_margin_loss: target[1] = 3, expected a class in [0, 3)");
    EXPECT_LOSS_ERR(ctx,
                    lg_multi_margin_loss(ctx, x, lg_zeros(ctx, LG_I64, 1, SHAPE(2)),
                                         &(lg_multi_margin_opts){ .p = 3, .margin = 1 }),
                    LG_ERR_VALUE, "p = 3, expected 1 or 2");
    EXPECT_LOSS_ERR(
        ctx,
        lg_multi_margin_loss(ctx, x, lg_zeros(ctx, LG_I64, 1, SHAPE(2)),
                             &(lg_multi_margin_opts){ .p = 1, .margin = 1, .weight = x4 }),
        LG_ERR_SHAPE, "weight is float32 [4], expected [3]");
    EXPECT_LOSS_ERR(ctx, lg_multilabel_margin_loss(ctx, x, T_FROM(ctx, LG_I64, lab, 2, 3), NULL),
                    LG_ERR_INDEX, "target[1] = -2, expected a class in [0, 3) or -1");
    EXPECT_LOSS_ERR(ctx,
                    lg_cosine_embedding_loss(ctx, x, x, lg_ones(ctx, LG_F32, 1, SHAPE(1)), NULL),
                    LG_ERR_SHAPE, "target has shape [1], expected [N] for [N, D] inputs");
    EXPECT_LOSS_ERR(
        ctx, lg_sigmoid_focal_loss(ctx, x, u, &(lg_focal_opts){ .alpha = 0.25, .gamma = -1 }),
        LG_ERR_VALUE, "gamma = -1");
    EXPECT_LOSS_ERR(ctx, lg_sigmoid_focal_loss(ctx, x, x, NULL), LG_ERR_VALUE,
                    "expected every element in [0, 1]");
    EXPECT_LOSS_ERR(ctx,
                    lg_binary_cross_entropy_with_logits(
                        ctx, x, u, &(lg_bce_logits_opts){ .label_smoothing = 2 }),
                    LG_ERR_VALUE, "label_smoothing = 2");
    EXPECT_LOSS_ERR(ctx, lg_dice_loss(ctx, x4, x4, NULL), LG_ERR_SHAPE, "expected [N, C, d1..dk]");
    EXPECT_LOSS_ERR(
        ctx,
        lg_dice_loss(ctx, u, u,
                     &(lg_dice_opts){ .smooth = 1, .weight = lg_zeros(ctx, LG_F32, 1, SHAPE(3)) }),
        LG_ERR_VALUE, "the weights sum to 0");
    EXPECT_LOSS_ERR(ctx, lg_contrastive_loss(ctx, x, x, lg_full(ctx, LG_F32, 1, SHAPE(2), 2), NULL),
                    LG_ERR_VALUE, "target[0] = 2");
    EXPECT_LOSS_ERR(ctx, lg_nt_xent_loss(ctx, x4, x4, NULL), LG_ERR_SHAPE, "N >= 2");
    lg_nt_xent_opts t0 = lg_nt_xent_opts_default();
    t0.temperature = 0;
    EXPECT_LOSS_ERR(ctx, lg_nt_xent_loss(ctx, x, x, &t0), LG_ERR_VALUE, "temperature = 0");
    lg_ctx_free(ctx);
}
