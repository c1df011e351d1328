/* options_idioms.c: every idiom of the options rule (lossgrad.h, "Options"),
 * for every options struct, reaching its op with the value written.
 *
 * This one file is built twice: as C11 and as C++17 (g++ -std=c++17 -Wall
 * -Wextra -pedantic -Werror), so the idioms the header documents for both
 * languages are compiled and run in each: NULL, the all-zero struct, and
 * lg_*_default() followed by plain assignments. The C build also checks the
 * C-only idiom, a struct written by hand with designated initialisers, and
 * that a hand-written struct which leaves a non-zero-default option at 0 is
 * an error naming it. Expected values are closed forms computed here.
 *
 * Each check is named after what it shows; the program prints the failures
 * and exits non-zero if there is any.
 */
#include <lossgrad.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double PI = 3.14159265358979323846, E = 2.71828182845904523536;

#ifdef __cplusplus
#define ZERO                                                                                       \
    {                                                                                              \
    }
#define LANG "C++"
#else
#define ZERO                                                                                       \
    {                                                                                              \
        0                                                                                          \
    }
#define LANG "C"
#endif

static int failures, checks;

static void check(const char *name, bool ok, double got, double want)
{
    checks++;
    if (!ok) {
        failures++;
        printf("FAIL %s [%s]: got %.17g, expected %.17g\n", name, LANG, got, want);
    }
}

/* got == want to 1e-12 relative (both NaN, or equal infinities, pass). */
static void near(const char *name, double got, double want)
{
    bool ok = got == want || (isnan(got) && isnan(want)) ||
              fabs(got - want) <= 1e-12 * fmax(1.0, fabs(want));
    check(name, ok, got, want);
}

/* The call failed with status and a message holding substr. */
static void fails(lg_ctx *ctx, const char *name, const void *result, lg_status status,
                  const char *substr)
{
    bool ok = result == NULL && lg_ctx_status(ctx) == status &&
              strstr(lg_ctx_errmsg(ctx), substr) != NULL;
    checks++;
    if (!ok) {
        failures++;
        printf("FAIL %s [%s]: status %s, message '%s', expected %s with '%s'\n", name, LANG,
               lg_status_name(lg_ctx_status(ctx)), lg_ctx_errmsg(ctx), lg_status_name(status),
               substr);
    }
    lg_ctx_clear_error(ctx);
}

static lg_tensor *vec(lg_ctx *ctx, const double *v, int64_t n)
{
    int64_t shape[1] = { n };
    return lg_tensor_from(ctx, LG_F64, v, 1, shape);
}

static lg_tensor *mat(lg_ctx *ctx, const double *v, int64_t r, int64_t c)
{
    int64_t shape[2] = { r, c };
    return lg_tensor_from(ctx, LG_F64, v, 2, shape);
}

static lg_tensor *ivec(lg_ctx *ctx, const int64_t *v, int64_t n)
{
    int64_t shape[1] = { n };
    return lg_tensor_from(ctx, LG_I64, v, 1, shape);
}

/* The value of a one-element result, NaN (and the error kept) otherwise. */
static double val(lg_ctx *ctx, lg_tensor *t)
{
    if (!t) {
        printf("  (%s)\n", lg_ctx_errmsg(ctx));
        lg_ctx_clear_error(ctx);
        return NAN;
    }
    return lg_item(ctx, t);
}

static lg_ctx *new_ctx(void)
{
    lg_ctx_params p = lg_ctx_params_default();
    p.seed = 3;
    return lg_ctx_new(&p);
}

/* ------------------------------------------------------------------ */
/* Losses                                                              */
/* ------------------------------------------------------------------ */

static void regression(lg_ctx *ctx)
{
    double xv[] = { 1, -2 }, yv[] = { 0, 0 };
    lg_tensor *x = vec(ctx, xv, 2), *y = vec(ctx, yv, 2);
    lg_loss_opts z = ZERO;
    lg_loss_opts o = lg_loss_opts_default();
    near("loss_opts_null_is_mean", val(ctx, lg_l1_loss(ctx, x, y, NULL)), 1.5);
    near("loss_opts_zero_is_mean", val(ctx, lg_l1_loss(ctx, x, y, &z)), 1.5);
    near("loss_opts_default_is_mean", val(ctx, lg_l1_loss(ctx, x, y, &o)), 1.5);
    o.reduction = LG_REDUCTION_SUM;
    near("loss_opts_reduction_sum", val(ctx, lg_l1_loss(ctx, x, y, &o)), 3);

    double hv[] = { 0.5 }, zv[] = { 0 };
    lg_tensor *h = vec(ctx, hv, 1), *h0 = vec(ctx, zv, 1);
    lg_smooth_l1_opts s = lg_smooth_l1_opts_default();
    lg_smooth_l1_opts sz = ZERO;
    near("smooth_l1_null_beta_1", val(ctx, lg_smooth_l1_loss(ctx, h, h0, NULL)), 0.125);
    near("smooth_l1_zero_beta_1", val(ctx, lg_smooth_l1_loss(ctx, h, h0, &sz)), 0.125);
    near("smooth_l1_default_beta_1", val(ctx, lg_smooth_l1_loss(ctx, h, h0, &s)), 0.125);
    s.beta = 0;
    near("smooth_l1_beta_0_is_l1", val(ctx, lg_smooth_l1_loss(ctx, h, h0, &s)), 0.5);
    s.beta = 2.0;
    near("smooth_l1_beta_2", val(ctx, lg_smooth_l1_loss(ctx, h, h0, &s)), 0.0625);

    double tv[] = { 3 };
    lg_tensor *t = vec(ctx, tv, 1);
    lg_huber_opts hu = lg_huber_opts_default();
    near("huber_default_delta_1", val(ctx, lg_huber_loss(ctx, t, h0, &hu)), 2.5);
    hu.delta = 2;
    near("huber_delta_2", val(ctx, lg_huber_loss(ctx, t, h0, &hu)), 4);
    hu.delta = 0;
    fails(ctx, "huber_delta_0_rejected", lg_huber_loss(ctx, t, h0, &hu), LG_ERR_VALUE, "delta = 0");

    double lx[] = { log(0.5) }, ly[] = { 0.1 };
    lg_tensor *kx = vec(ctx, lx, 1), *ky = vec(ctx, ly, 1);
    lg_kl_div_opts k = lg_kl_div_opts_default();
    near("kl_div_default", val(ctx, lg_kl_div(ctx, kx, ky, &k)), 0.1 * (log(0.1) - log(0.5)));
    k.log_target = true;
    near("kl_div_log_target", val(ctx, lg_kl_div(ctx, kx, ky, &k)), exp(0.1) * (0.1 - log(0.5)));
}

static void classification(lg_ctx *ctx)
{
    double xv[] = { -1, -2, -3, -4 };
    int64_t t01[] = { 0, 1 }, tm1[] = { -1, 1 };
    lg_tensor *x = mat(ctx, xv, 2, 2), *t = ivec(ctx, t01, 2), *tn = ivec(ctx, tm1, 2);
    double wv[] = { 1, 3 };
    lg_tensor *w = vec(ctx, wv, 2);
    lg_nll_opts n = lg_nll_opts_default();
    lg_nll_opts nz = ZERO;
    near("nll_null", val(ctx, lg_nll_loss(ctx, x, t, NULL)), 2.5);
    near("nll_zero", val(ctx, lg_nll_loss(ctx, x, t, &nz)), 2.5);
    near("nll_default", val(ctx, lg_nll_loss(ctx, x, t, &n)), 2.5);
    n.ignore_index = 0;
    near("nll_ignore_index_0", val(ctx, lg_nll_loss(ctx, x, t, &n)), 4);
    n.ignore_index = -1;
    near("nll_ignore_index_minus_1", val(ctx, lg_nll_loss(ctx, x, tn, &n)), 4);
    fails(ctx, "nll_default_keeps_minus_1", lg_nll_loss(ctx, x, tn, NULL), LG_ERR_INDEX,
          "target[0] = -1");
    n = lg_nll_opts_default();
    n.weight = w;
    near("nll_weight", val(ctx, lg_nll_loss(ctx, x, t, &n)), 13.0 / 4);
    n.reduction = LG_REDUCTION_SUM;
    near("nll_weight_sum", val(ctx, lg_nll_loss(ctx, x, t, &n)), 13);

    double cv[] = { 0, 0, 0, log(3.0) };
    lg_tensor *c = mat(ctx, cv, 2, 2);
    double r0 = log(2.0), r1 = log(4.0) - log(3.0); /* -lsm at each row's target */
    lg_ce_opts ce = lg_ce_opts_default();
    lg_ce_opts cz = ZERO;
    near("ce_null", val(ctx, lg_cross_entropy(ctx, c, t, NULL)), (r0 + r1) / 2);
    near("ce_zero", val(ctx, lg_cross_entropy(ctx, c, t, &cz)), (r0 + r1) / 2);
    ce.ignore_index = 0; /* the trap: class 0 ignored only when asked */
    near("ce_ignore_index_0", val(ctx, lg_cross_entropy(ctx, c, t, &ce)), r1);
    ce.ignore_index = -1;
    near("ce_ignore_index_minus_1", val(ctx, lg_cross_entropy(ctx, c, tn, &ce)), r1);
    ce = lg_ce_opts_default();
    ce.label_smoothing = 0.2;
    double s0 = 0.8 * r0 + 0.1 * (2 * log(2.0)), s1 = 0.8 * r1 + 0.1 * (log(4.0) + r1);
    near("ce_label_smoothing", val(ctx, lg_cross_entropy(ctx, c, t, &ce)), (s0 + s1) / 2);
    ce = lg_ce_opts_default();
    ce.weight = w;
    near("ce_weight", val(ctx, lg_cross_entropy(ctx, c, t, &ce)), (r0 + 3 * r1) / 4);

    double pv[] = { 0.5 }, one[] = { 1 }, two[] = { 2 }, three[] = { 3 };
    lg_tensor *p = vec(ctx, pv, 1), *y1 = vec(ctx, one, 1), *w2 = vec(ctx, two, 1);
    lg_bce_opts b = lg_bce_opts_default();
    near("bce_default", val(ctx, lg_binary_cross_entropy(ctx, p, y1, &b)), log(2.0));
    b.weight = w2;
    near("bce_weight", val(ctx, lg_binary_cross_entropy(ctx, p, y1, &b)), 2 * log(2.0));

    double zv[] = { 0 };
    lg_tensor *x0 = vec(ctx, zv, 1), *x1 = vec(ctx, one, 1);
    lg_bce_logits_opts bl = lg_bce_logits_opts_default();
    near("bce_logits_default", val(ctx, lg_binary_cross_entropy_with_logits(ctx, x0, y1, &bl)),
         log(2.0));
    bl.pos_weight = vec(ctx, three, 1);
    near("bce_logits_pos_weight", val(ctx, lg_binary_cross_entropy_with_logits(ctx, x0, y1, &bl)),
         3 * log(2.0));
    bl = lg_bce_logits_opts_default();
    bl.weight = w2;
    near("bce_logits_weight", val(ctx, lg_binary_cross_entropy_with_logits(ctx, x0, y1, &bl)),
         2 * log(2.0));
    bl = lg_bce_logits_opts_default();
    bl.label_smoothing = 0.5; /* y 1 -> 0.75 */
    near("bce_logits_label_smoothing",
         val(ctx, lg_binary_cross_entropy_with_logits(ctx, x1, y1, &bl)), 0.25 + log1p(exp(-1.0)));

    double mx[] = { 0, 0 }, my[] = { 1, 0 };
    lg_tensor *mlx = mat(ctx, mx, 1, 2), *mly = mat(ctx, my, 1, 2);
    lg_mlsm_opts ml = lg_mlsm_opts_default();
    near("mlsm_default", val(ctx, lg_multilabel_soft_margin_loss(ctx, mlx, mly, &ml)), log(2.0));
    ml.weight = w;
    near("mlsm_weight", val(ctx, lg_multilabel_soft_margin_loss(ctx, mlx, mly, &ml)), 2 * log(2.0));
}

static double dist2(const double *u, const double *v, double eps)
{
    double a = u[0] - v[0] + eps, b = u[1] - v[1] + eps;
    return sqrt(a * a + b * b);
}

/* A distance of one's own for triplet_margin_with_distance_loss: the L1
 * distance over the last axis, counting its calls through user. */
static lg_tensor *l1_distance(lg_ctx *ctx, lg_tensor *x1, lg_tensor *x2, void *user)
{
    (*(int *)user)++;
    int axis[1] = { -1 };
    return lg_sum(ctx, lg_abs(ctx, lg_sub(ctx, x1, x2)), 1, axis, false);
}

static void margins(lg_ctx *ctx)
{
    double hx[] = { 0.5 }, hy[] = { -1 };
    lg_tensor *x = vec(ctx, hx, 1), *y = vec(ctx, hy, 1);
    lg_hinge_opts h = lg_hinge_opts_default();
    near("hinge_default_margin_1", val(ctx, lg_hinge_embedding_loss(ctx, x, y, &h)), 0.5);
    h.margin = 2.0;
    near("hinge_margin_2", val(ctx, lg_hinge_embedding_loss(ctx, x, y, &h)), 1.5);
    h.margin = 0;
    near("hinge_margin_0", val(ctx, lg_hinge_embedding_loss(ctx, x, y, &h)), 0);

    double a[] = { 0, 0 }, p[] = { 3, 4 }, n[] = { 0, 1 }, n2[] = { 3, 3 };
    lg_tensor *A = vec(ctx, a, 2), *P = vec(ctx, p, 2), *N = vec(ctx, n, 2), *N2 = vec(ctx, n2, 2);
    lg_triplet_opts t = lg_triplet_opts_default();
    near("triplet_default", val(ctx, lg_triplet_margin_loss(ctx, A, P, N, &t)),
         1 + dist2(a, p, 1e-6) - dist2(a, n, 1e-6));
    t.eps = 0;
    near("triplet_eps_0", val(ctx, lg_triplet_margin_loss(ctx, A, P, N, &t)), 5);
    t.margin = 0;
    near("triplet_margin_0", val(ctx, lg_triplet_margin_loss(ctx, A, P, N, &t)), 4);
    t.margin = 1, t.p = 1;
    near("triplet_p_1", val(ctx, lg_triplet_margin_loss(ctx, A, P, N, &t)), 7);
    t.p = 2;
    near("triplet_no_swap", val(ctx, lg_triplet_margin_loss(ctx, A, P, N2, &t)), 6 - sqrt(18.0));
    t.swap = true;
    near("triplet_swap", val(ctx, lg_triplet_margin_loss(ctx, A, P, N2, &t)), 5);

    double r1[] = { 1 }, r2[] = { 2 }, rp[] = { 1 };
    lg_tensor *R1 = vec(ctx, r1, 1), *R2 = vec(ctx, r2, 1), *RY = vec(ctx, rp, 1);
    lg_margin_opts m = lg_margin_opts_default();
    near("margin_ranking_default", val(ctx, lg_margin_ranking_loss(ctx, R1, R2, RY, &m)), 1);
    m.margin = 0.5;
    near("margin_ranking_margin", val(ctx, lg_margin_ranking_loss(ctx, R1, R2, RY, &m)), 1.5);
    double e1[] = { 1, 0 }, e2[] = { 0, 1 }, neg[] = { -1 };
    lg_tensor *E1 = mat(ctx, e1, 1, 2), *E2 = mat(ctx, e2, 1, 2), *NY = vec(ctx, neg, 1);
    m = lg_margin_opts_default();
    near("cosine_embedding_default", val(ctx, lg_cosine_embedding_loss(ctx, E1, E2, NY, &m)), 0);
    m.margin = -0.5;
    near("cosine_embedding_margin", val(ctx, lg_cosine_embedding_loss(ctx, E1, E2, NY, &m)), 0.5);

    double mv[] = { 0.1, 0.2, 0.4 }, w3[] = { 2, 1, 1 };
    int64_t y0[] = { 0 };
    lg_tensor *MX = mat(ctx, mv, 1, 3), *MY = ivec(ctx, y0, 1);
    lg_multi_margin_opts mm = lg_multi_margin_opts_default();
    near("multi_margin_default", val(ctx, lg_multi_margin_loss(ctx, MX, MY, &mm)), 0.8);
    mm.p = 2;
    near("multi_margin_p_2", val(ctx, lg_multi_margin_loss(ctx, MX, MY, &mm)), 2.9 / 3);
    mm.p = 1, mm.margin = 0;
    near("multi_margin_margin_0", val(ctx, lg_multi_margin_loss(ctx, MX, MY, &mm)), 0.4 / 3);
    mm.margin = 1, mm.weight = vec(ctx, w3, 3);
    near("multi_margin_weight", val(ctx, lg_multi_margin_loss(ctx, MX, MY, &mm)), 1.6);

    lg_tensor *A2 = mat(ctx, a, 1, 2), *P2 = mat(ctx, p, 1, 2), *N22 = mat(ctx, n2, 1, 2);
    lg_triplet_distance_opts td = lg_triplet_distance_opts_default();
    near("triplet_distance_default",
         val(ctx, lg_triplet_margin_with_distance_loss(ctx, A2, P2, N22, &td)),
         1 + dist2(a, p, 1e-6) - dist2(a, n2, 1e-6));
    td.margin = 0;
    near("triplet_distance_margin_0",
         val(ctx, lg_triplet_margin_with_distance_loss(ctx, A2, P2, N22, &td)),
         dist2(a, p, 1e-6) - dist2(a, n2, 1e-6));
    td.margin = 1, td.swap = true;
    near("triplet_distance_swap",
         val(ctx, lg_triplet_margin_with_distance_loss(ctx, A2, P2, N22, &td)),
         1 + dist2(a, p, 1e-6) - dist2(p, n2, 1e-6));
    int calls = 0;
    td = lg_triplet_distance_opts_default();
    td.distance = l1_distance;
    td.user = &calls;
    near("triplet_distance_callback",
         val(ctx, lg_triplet_margin_with_distance_loss(ctx, A2, P2, N22, &td)), 2);
    near("triplet_distance_user", calls, 2);
}

static void sequences_and_likelihoods(lg_ctx *ctx)
{
    double lp[] = { log(0.25), log(0.75) };
    int64_t shape[3] = { 1, 1, 2 }, tshape[2] = { 1, 1 }, one[1] = { 1 };
    int64_t t1[] = { 1 }, t0[] = { 0 }, t11[] = { 1, 1 }, two[] = { 2 };
    lg_tensor *L = lg_tensor_from(ctx, LG_F64, lp, 3, shape);
    lg_tensor *il = ivec(ctx, one, 1), *tl = ivec(ctx, one, 1);
    lg_ctc_opts c = lg_ctc_opts_default();
    lg_tensor *T1 = lg_tensor_from(ctx, LG_I64, t1, 2, tshape);
    lg_tensor *T0 = lg_tensor_from(ctx, LG_I64, t0, 2, tshape);
    near("ctc_default_blank_0", val(ctx, lg_ctc_loss(ctx, L, T1, il, tl, &c)), -log(0.75));
    c.blank = 1;
    near("ctc_blank_1", val(ctx, lg_ctc_loss(ctx, L, T0, il, tl, &c)), -log(0.25));
    int64_t tshape2[2] = { 1, 2 };
    lg_tensor *T11 = lg_tensor_from(ctx, LG_I64, t11, 2, tshape2), *tl2 = ivec(ctx, two, 1);
    c = lg_ctc_opts_default();
    near("ctc_infeasible_is_inf", val(ctx, lg_ctc_loss(ctx, L, T11, il, tl2, &c)), INFINITY);
    c.zero_infinity = true;
    near("ctc_zero_infinity", val(ctx, lg_ctc_loss(ctx, L, T11, il, tl2, &c)), 0);

    double zv[] = { 0 }, ov[] = { 1 }, yv[] = { 2 };
    lg_tensor *x0 = vec(ctx, zv, 1), *x1 = vec(ctx, ov, 1), *y2 = vec(ctx, yv, 1);
    lg_poisson_nll_opts po = lg_poisson_nll_opts_default();
    near("poisson_default_log_input", val(ctx, lg_poisson_nll_loss(ctx, x0, y2, &po)), 1);
    po.full = true;
    near("poisson_full", val(ctx, lg_poisson_nll_loss(ctx, x0, y2, &po)),
         1 + 2 * log(2.0) - 2 + 0.5 * log(2 * PI * 2));
    po = lg_poisson_nll_opts_default();
    po.log_input = false;
    near("poisson_log_input_false", val(ctx, lg_poisson_nll_loss(ctx, x1, y2, &po)),
         1 - 2 * log(1 + 1e-8));
    po.eps = 0.5;
    near("poisson_eps", val(ctx, lg_poisson_nll_loss(ctx, x1, y2, &po)), 1 - 2 * log(1.5));

    double tiny[] = { 1e-9 }, vv[] = { 2 };
    lg_tensor *V = vec(ctx, tiny, 1), *V2 = vec(ctx, vv, 1);
    lg_gaussian_nll_opts g = lg_gaussian_nll_opts_default();
    near("gaussian_default_eps", val(ctx, lg_gaussian_nll_loss(ctx, x0, x1, V, &g)),
         0.5 * (log(1e-6) + 1 / 1e-6));
    g.eps = 1e-3;
    near("gaussian_eps", val(ctx, lg_gaussian_nll_loss(ctx, x0, x1, V, &g)),
         0.5 * (log(1e-3) + 1 / 1e-3));
    g = lg_gaussian_nll_opts_default();
    g.full = true;
    near("gaussian_full", val(ctx, lg_gaussian_nll_loss(ctx, x0, x1, V2, &g)),
         0.5 * (log(2.0) + 0.5) + 0.5 * log(2 * PI));
}

static void beyond_pytorch(lg_ctx *ctx)
{
    double zv[] = { 0 }, ov[] = { 1 };
    lg_tensor *x = vec(ctx, zv, 1), *y = vec(ctx, ov, 1);
    lg_focal_opts f = lg_focal_opts_default();
    double ce = log(2.0);
    near("focal_default", val(ctx, lg_sigmoid_focal_loss(ctx, x, y, &f)), ce * 0.25 * 0.25);
    f.gamma = 0;
    near("focal_gamma_0", val(ctx, lg_sigmoid_focal_loss(ctx, x, y, &f)), ce * 0.25);
    f.alpha = 0;
    near("focal_alpha_0", val(ctx, lg_sigmoid_focal_loss(ctx, x, y, &f)), 0);
    f.alpha = -1;
    near("focal_alpha_off", val(ctx, lg_sigmoid_focal_loss(ctx, x, y, &f)), ce);

    double pv[] = { 0.5, 0.5, 1, 0 }, tv[] = { 1, 0, 1, 0 }, lv[] = { 0, 0, 50, -50 };
    double wv[] = { 1, 3 };
    int64_t shape[3] = { 1, 2, 2 };
    lg_tensor *P = lg_tensor_from(ctx, LG_F64, pv, 3, shape);
    lg_tensor *T = lg_tensor_from(ctx, LG_F64, tv, 3, shape);
    lg_dice_opts d = lg_dice_opts_default();
    near("dice_default_smooth_1", val(ctx, lg_dice_loss(ctx, P, T, &d)), 1.0 / 6);
    d.smooth = 0;
    near("dice_smooth_0", val(ctx, lg_dice_loss(ctx, P, T, &d)), 0.25);
    d.smooth = 1, d.weight = vec(ctx, wv, 2);
    near("dice_weight", val(ctx, lg_dice_loss(ctx, P, T, &d)), 1.0 / 12);
    d = lg_dice_opts_default();
    d.activation = LG_DICE_SIGMOID;
    double s50 = 1 / (1 + exp(-50.0)), sm = 1 / (1 + exp(50.0)); /* class 1's probabilities */
    double c1 = 1 - (2 * s50 + 1) / (s50 + sm + 1 + 1);
    near("dice_sigmoid",
         val(ctx, lg_dice_loss(ctx, lg_tensor_from(ctx, LG_F64, lv, 3, shape), T, &d)),
         (1.0 / 3 + c1) / 2);

    double a[] = { 0, 0 }, b[] = { 3, 0 };
    lg_tensor *A = mat(ctx, a, 1, 2), *B = mat(ctx, b, 1, 2), *y0 = vec(ctx, zv, 1);
    lg_contrastive_opts co = lg_contrastive_opts_default();
    near("contrastive_default_margin_1", val(ctx, lg_contrastive_loss(ctx, A, B, y0, &co)), 0);
    co.margin = 5, co.eps = 0;
    near("contrastive_margin_5", val(ctx, lg_contrastive_loss(ctx, A, B, y0, &co)), 2);
    near("contrastive_similar", val(ctx, lg_contrastive_loss(ctx, A, B, y, &co)), 4.5);
    co = lg_contrastive_opts_default();
    co.margin = 5;
    double d1 = dist2(a, b, 1e-6);
    near("contrastive_default_eps", val(ctx, lg_contrastive_loss(ctx, A, B, y0, &co)),
         (5 - d1) * (5 - d1) / 2);

    double id[] = { 1, 0, 0, 1 };
    lg_tensor *Z1 = mat(ctx, id, 2, 2), *Z2 = mat(ctx, id, 2, 2);
    lg_nt_xent_opts nt = lg_nt_xent_opts_default();
    near("nt_xent_default_temperature", val(ctx, lg_nt_xent_loss(ctx, Z1, Z2, &nt)),
         -10 + log(exp(10.0) + 2));
    nt.temperature = 1;
    near("nt_xent_temperature_1", val(ctx, lg_nt_xent_loss(ctx, Z1, Z2, &nt)), -1 + log(E + 2));
    nt.cross_view_only = true;
    near("nt_xent_cross_view_only", val(ctx, lg_nt_xent_loss(ctx, Z1, Z2, &nt)), -1 + log(E + 1));
}

/* ------------------------------------------------------------------ */
/* The ctx, layers, optimizers, schedules, gradcheck                   */
/* ------------------------------------------------------------------ */

typedef struct counter {
    long calls;
} counter;

static void *counting_alloc(void *user, void *ptr, size_t old_size, size_t new_size)
{
    (void)old_size;
    ((counter *)user)->calls++;
    if (new_size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, new_size);
}

static void context_params(void)
{
    lg_ctx *a = lg_ctx_new(NULL);
    lg_ctx_params z = ZERO;
    lg_ctx *b = lg_ctx_new(&z);
    lg_ctx_params p = lg_ctx_params_default();
    lg_ctx *c = lg_ctx_new(&p);
    double ra = lg_rand_uniform(a), rb = lg_rand_uniform(b), rc = lg_rand_uniform(c);
    near("ctx_null_zero_default_same_seed", ra, rb);
    near("ctx_default_seed_0", rc, ra);
    near("ctx_default_one_thread", lg_ctx_threads(c), 1);
    lg_ctx_free(a), lg_ctx_free(b), lg_ctx_free(c);

    counter n = { 0 };
    p = lg_ctx_params_default();
    p.seed = 5, p.threads = 2, p.alloc = counting_alloc, p.alloc_user = &n;
    p.arena_chunk = 4096, p.step_limit = 64 * 1024;
    lg_ctx *d = lg_ctx_new(&p);
    lg_seed(a = lg_ctx_new(NULL), 5);
    near("ctx_seed", lg_rand_uniform(d), lg_rand_uniform(a));
    near("ctx_threads", lg_ctx_threads(d), 2);
    int64_t small[1] = { 8 }, big[1] = { 100000 };
    lg_zeros(d, LG_F64, 1, small);
    check("ctx_alloc_and_alloc_user", n.calls > 0, (double)n.calls, 1);
    check("ctx_arena_chunk", lg_ctx_mem_stats(d).arena_capacity < 1024 * 1024,
          (double)lg_ctx_mem_stats(d).arena_capacity, 4096);
    fails(d, "ctx_step_limit", lg_zeros(d, LG_F64, 1, big), LG_ERR_STATE, "lg_ctx_set_step_limit");
    lg_ctx_free(d), lg_ctx_free(a);
}

/* The spatial ops' options (lossgrad/nnops.h) and the norm layers': the
 * single value, the {H, W} pair, the defaults, on closed forms. */
static void spatial(lg_ctx *ctx)
{
    double nine[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, kern[4] = { 1, 0, 0, -1 };
    int64_t xs[4] = { 1, 1, 3, 3 }, ws[4] = { 1, 1, 2, 2 };
    lg_tensor *x = lg_tensor_from(ctx, LG_F64, nine, 4, xs);
    lg_tensor *w = lg_tensor_from(ctx, LG_F64, kern, 4, ws);
    /* y = x[i][j] - x[i+1][j+1] = -4 everywhere; summed over the output */
    near("conv_null", val(ctx, lg_sum(ctx, lg_conv2d(ctx, x, w, NULL, NULL), 0, NULL, false)), -16);
    lg_conv_opts z = ZERO;
    near("conv_zero", val(ctx, lg_sum(ctx, lg_conv2d(ctx, x, w, NULL, &z), 0, NULL, false)), -16);
    lg_conv_opts c = lg_conv_opts_default();
    c.padding = 1, c.stride = 2; /* windows at (-1, -1): -1, -3, -7, -4 */
    near("conv_stride_padding",
         val(ctx, lg_sum(ctx, lg_conv2d(ctx, x, w, NULL, &c), 0, NULL, false)), -15);
    c = lg_conv_opts_default();
    c.stride_hw[0] = 1, c.stride_hw[1] = 2; /* 2 x 1 outputs of -4 */
    near("conv_stride_hw", val(ctx, lg_sum(ctx, lg_conv2d(ctx, x, w, NULL, &c), 0, NULL, false)),
         -8);
    lg_max_pool_opts mp = lg_max_pool_opts_default();
    mp.stride = 1; /* 5, 6, 8, 9 */
    near("max_pool_stride",
         val(ctx, lg_sum(ctx, lg_max_pool2d(ctx, x, 2, 2, &mp, NULL), 0, NULL, false)), 28);
    near("max_pool_null",
         val(ctx, lg_sum(ctx, lg_max_pool2d(ctx, x, 2, 2, NULL, NULL), 0, NULL, false)), 5);
    lg_avg_pool_opts ap = lg_avg_pool_opts_default();
    ap.padding = 1, ap.count_include_pad = false; /* 1, 2.5, 5.5, 7 */
    near("avg_pool_exclude_pad",
         val(ctx, lg_sum(ctx, lg_avg_pool2d(ctx, x, 2, 2, &ap), 0, NULL, false)), 16);
    lg_interpolate_opts io = lg_interpolate_opts_default();
    io.scale_factor = 2; /* nearest: each value four times */
    near("interpolate_nearest", val(ctx, lg_sum(ctx, lg_interpolate(ctx, x, &io), 0, NULL, false)),
         180);
    lg_norm_layer_opts no = lg_norm_layer_opts_default();
    no.dtype = LG_F64, no.eps = 0;
    int64_t three = 3;
    lg_layernorm *ln = lg_layernorm_new(ctx, "idiom_ln", 1, &three, &no);
    double row[3] = { 1, 2, 3 };
    lg_tensor *r = lg_layernorm_forward(ctx, ln, vec(ctx, row, 3));
    near("layernorm_eps_0", r ? ((double *)lg_tensor_data(r))[2] : NAN, sqrt(1.5));
}

/* lg_embedding_opts (padding_idx needs has_padding_idx: 0 is a valid
 * index) and parameter groups (a group's options: a copy of the
 * optimizer's made before its groups are set, then assignments). */
static void embedding_and_groups(lg_ctx *ctx)
{
    lg_embedding_opts ez = ZERO;
    lg_embedding *e0 = lg_embedding_new(ctx, "idiom_e0", 4, 3, &ez);
    lg_embedding_opts eo = lg_embedding_opts_default();
    eo.has_padding_idx = true, eo.padding_idx = 1;
    lg_embedding *e1 = lg_embedding_new(ctx, "idiom_e1", 4, 3, &eo);
    const float *w1 = e1 ? (const float *)lg_tensor_data(e1->weight) : NULL;
    check("embedding_zero_struct", e0 != NULL && e0->padding_idx == -1, 0, 1);
    check("embedding_padding_row_zero", w1 && w1[3] == 0 && w1[4] == 0 && w1[5] == 0, 0, 1);

    lg_tensor *w = e0 ? e0->weight : NULL, *v = e1 ? e1->weight : NULL;
    lg_optim_opts oo = lg_optim_opts_default(LG_ADAMW);
    lg_optim_opts no_decay = oo;
    no_decay.weight_decay = 0;
    lg_param_group groups[2];
    groups[0].params = &w, groups[0].nparams = 1, groups[0].opts = NULL;
    groups[1].params = &v, groups[1].nparams = 1, groups[1].opts = &no_decay;
    oo.groups = groups, oo.ngroups = 2;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    check("optim_two_groups", opt && lg_optim_ngroups(opt) == 2, 0, 1);

    /* two optimizers in one checkpoint: an array of the pointers users hold */
    lg_optim_opts so = lg_optim_opts_default(LG_SGD);
    so.lr = 0.1, so.params = &v, so.nparams = 1;
    lg_optim *opts[2] = { opt, lg_optim_new(ctx, &so) };
    char path[L_tmpnam + 32];
    snprintf(path, sizeof path, "/tmp/lg_idioms_%s_%ld.safetensors", LANG, (long)(size_t)ctx);
    bool saved = lg_checkpoint_save_optims(ctx, path, opts, 2) == LG_OK;
    check("checkpoint_two_optimizers",
          saved && lg_checkpoint_load_optims(ctx, path, opts, 2) == LG_OK, 0, 1);
    if (!saved || lg_ctx_status(ctx) != LG_OK)
        printf("  %s\n", lg_ctx_errmsg(ctx));
    remove(path);
    lg_ctx_clear_error(ctx);
}

static void layers(lg_ctx *ctx)
{
    lg_linear_opts z = ZERO;
    lg_linear *l0 = lg_linear_new(ctx, "l0", 2, 3, NULL), *l1 = lg_linear_new(ctx, "l1", 2, 3, &z);
    lg_linear_opts o = lg_linear_opts_default();
    o.dtype = LG_F64, o.no_bias = true;
    lg_linear *l2 = lg_linear_new(ctx, "l2", 2, 3, &o);
    check("linear_default_f32_bias",
          l0 && l1 && l0->bias && l1->bias && lg_tensor_dtype(l0->weight) == LG_F32, 0, 1);
    check("linear_dtype_no_bias", l2 && !l2->bias && lg_tensor_dtype(l2->weight) == LG_F64, 0, 1);

    int64_t sizes[3] = { 2, 4, 1 };
    lg_mlp_opts mo = lg_mlp_opts_default();
    lg_mlp *m0 = lg_mlp_new(ctx, "m0", 3, sizes, &mo);
    mo.dtype = LG_F64, mo.activation = LG_ACT_TANH, mo.dropout = 0.5;
    lg_mlp *m1 = lg_mlp_new(ctx, "m1", 3, sizes, &mo);
    check("mlp_default", m0 && m0->activation == LG_ACT_RELU && m0->dropout == 0, 0, 1);
    check("mlp_options",
          m1 && m1->activation == LG_ACT_TANH && m1->dropout == 0.5 &&
              lg_tensor_dtype(m1->layers[0]->weight) == LG_F64,
          0, 1);
    if (m1) { /* tanh between the layers: the output is W2 tanh(W1 x + b1) + b2 */
        double xv[] = { 0.3, -0.7 };
        lg_ctx_set_training(ctx, false);
        double got = val(ctx, lg_mlp_forward(ctx, m1, vec(ctx, xv, 2)));
        lg_ctx_set_training(ctx, true);
        const double *w1 = (const double *)lg_tensor_data(m1->layers[0]->weight);
        const double *b1 = (const double *)lg_tensor_data(m1->layers[0]->bias);
        const double *w2 = (const double *)lg_tensor_data(m1->layers[1]->weight);
        const double *b2 = (const double *)lg_tensor_data(m1->layers[1]->bias);
        double want = b2[0];
        for (int j = 0; j < 4; j++)
            want += w2[j] * tanh(w1[2 * j] * xv[0] + w1[2 * j + 1] * xv[1] + b1[j]);
        near("mlp_activation_reaches_forward", got, want);
    }

    lg_rnn_opts r = lg_rnn_opts_default();
    lg_rnn *r0 = lg_rnn_new(ctx, "r0", LG_GRU, 2, 3, &r);
    r.dtype = LG_F64, r.num_layers = 2, r.bidirectional = true, r.no_bias = true;
    lg_rnn *r1 = lg_rnn_new(ctx, "r1", LG_LSTM, 2, 3, &r);
    check("rnn_default",
          r0 && lg_param_find(ctx, "r0.bias_hh_l0") && !lg_param_find(ctx, "r0.weight_ih_l1") &&
              lg_tensor_dtype(lg_param_find(ctx, "r0.weight_ih_l0")) == LG_F32,
          0, 1);
    check("rnn_options",
          r1 && lg_param_find(ctx, "r1.weight_ih_l1_reverse") &&
              !lg_param_find(ctx, "r1.bias_ih_l0") &&
              lg_tensor_dtype(lg_param_find(ctx, "r1.weight_hh_l0")) == LG_F64,
          0, 1);
    r.num_layers = 0;
    fails(ctx, "rnn_num_layers_0_rejected", lg_rnn_new(ctx, "r2", LG_GRU, 2, 3, &r), LG_ERR_VALUE,
          "layers");
}

/* Reference Adam / AdamW / RMSprop / SGD on f(p) = p^2 (gradient 2p), the
 * update rules of torch.optim 1.13 written out plainly. */
static double reference(lg_optim_kind kind, const lg_optim_opts *o, double p, int steps)
{
    double m = 0, v = 0, buf = 0;
    for (int t = 1; t <= steps; t++) {
        double g = 2 * p;
        if (kind == LG_ADAMW)
            p *= 1 - o->lr * o->weight_decay;
        else
            g += o->weight_decay * p;
        if (kind == LG_SGD) {
            buf = t == 1 ? g : o->momentum * buf + (1 - o->dampening) * g;
            p -= o->lr * (o->momentum != 0 ? buf : g);
        } else if (kind == LG_RMSPROP) {
            v = o->alpha * v + (1 - o->alpha) * g * g;
            p -= o->lr * g / (sqrt(v) + o->eps);
        } else {
            m = o->beta1 * m + (1 - o->beta1) * g;
            v = o->beta2 * v + (1 - o->beta2) * g * g;
            double bc1 = 1 - pow(o->beta1, t), bc2 = 1 - pow(o->beta2, t);
            p -= o->lr / bc1 * m / (sqrt(v) / sqrt(bc2) + o->eps);
        }
    }
    return p;
}

/* Three steps of the optimizer made from o on f(p) = p^2 from p = 1. */
static double run_optim(const lg_optim_opts *o)
{
    lg_ctx *ctx = new_ctx();
    int64_t one[1] = { 1 };
    lg_tensor *p = lg_param_new(ctx, "p", LG_F64, 1, one);
    double start = 1;
    lg_copy_into(ctx, p, vec(ctx, &start, 1));
    lg_optim *opt = lg_optim_new(ctx, o);
    double r = NAN;
    for (int t = 0; opt && t < 3; t++) {
        lg_backward(ctx, lg_sum(ctx, lg_square(ctx, p), 0, NULL, false));
        lg_optim_step(opt);
        lg_zero_grad(ctx);
        lg_step_end(ctx);
    }
    if (opt && lg_ctx_status(ctx) == LG_OK)
        r = ((const double *)lg_tensor_data(p))[0];
    else
        printf("  (%s)\n", lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
    return r;
}

static void optimizers(void)
{
    lg_optim_opts o = lg_optim_opts_default(LG_ADAM);
    near("adam_default", run_optim(&o), reference(LG_ADAM, &o, 1, 3));
    o.beta2 = 0.98; /* the trap: beta2 became 0 */
    near("adam_beta2", run_optim(&o), reference(LG_ADAM, &o, 1, 3));
    o.beta1 = 0.5, o.eps = 1e-3, o.weight_decay = 0.1, o.lr = 0.01;
    near("adam_beta1_eps_weight_decay_lr", run_optim(&o), reference(LG_ADAM, &o, 1, 3));
    o = lg_optim_opts_default(LG_ADAMW);
    near("adamw_default_weight_decay", run_optim(&o), reference(LG_ADAMW, &o, 1, 3));
    o.weight_decay = 0;
    near("adamw_weight_decay_0", run_optim(&o), reference(LG_ADAMW, &o, 1, 3));
    o = lg_optim_opts_default(LG_RMSPROP);
    near("rmsprop_default", run_optim(&o), reference(LG_RMSPROP, &o, 1, 3));
    o.alpha = 0, o.eps = 0.5;
    near("rmsprop_alpha_0_eps", run_optim(&o), reference(LG_RMSPROP, &o, 1, 3));
    o = lg_optim_opts_default(LG_SGD);
    o.lr = 0.1;
    near("sgd_lr", run_optim(&o), reference(LG_SGD, &o, 1, 3));
    o.momentum = 0.9, o.dampening = 0.1;
    near("sgd_momentum_dampening", run_optim(&o), reference(LG_SGD, &o, 1, 3));
    o = lg_optim_opts_default(LG_SGD);
    o.lr = 0; /* allowed, as PyTorch */
    near("sgd_lr_0", run_optim(&o), 1);

    lg_ctx *ctx = new_ctx();
    int64_t one[1] = { 1 };
    lg_param_new(ctx, "p", LG_F64, 1, one);
    lg_optim_opts s = lg_optim_opts_default(LG_SGD);
    fails(ctx, "sgd_lr_required", lg_optim_new(ctx, &s), LG_ERR_VALUE, "lr is required");
    s.lr = 0.1, s.beta1 = 0.5;
    fails(ctx, "sgd_has_no_beta1", lg_optim_new(ctx, &s), LG_ERR_VALUE,
          "beta1 is not an option of LG_SGD");
    s = lg_optim_opts_default(LG_SGD);
    s.kind = LG_ADAM, s.lr = 0.1;
    fails(ctx, "defaults_of_another_kind", lg_optim_new(ctx, &s), LG_ERR_VALUE,
          "made by lg_optim_opts_default(LG_SGD) but kind is LG_ADAM");
    lg_optim_opts zero = ZERO;
    fails(ctx, "optim_zero_struct_is_sgd_without_lr", lg_optim_new(ctx, &zero), LG_ERR_VALUE, "lr");
    lg_ctx_free(ctx);
}

static void schedules(void)
{
    lg_ctx *ctx = new_ctx();
    int64_t one[1] = { 1 };
    lg_param_new(ctx, "p", LG_F64, 1, one);
    lg_optim_opts oo = lg_optim_opts_default(LG_SGD);
    oo.lr = 1;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    lg_sched_opts s = lg_sched_opts_default(LG_SCHED_STEP);
    s.step_size = 2;
    lg_sched *st = lg_sched_new(ctx, opt, &s);
    lg_sched_step(st);
    near("step_default_gamma", lg_sched_step(st), 0.1);
    lg_optim_set_lr(opt, 1);
    s.gamma = 0.5, s.step_size = 1;
    st = lg_sched_new(ctx, opt, &s);
    near("step_gamma_step_size", lg_sched_step(st), 0.5);
    lg_optim_set_lr(opt, 1);
    s = lg_sched_opts_default(LG_SCHED_EXPONENTIAL);
    fails(ctx, "exponential_gamma_required", lg_sched_new(ctx, opt, &s), LG_ERR_VALUE, "required");
    s.gamma = 0; /* allowed, as PyTorch */
    st = lg_sched_new(ctx, opt, &s);
    near("exponential_gamma_0", lg_sched_step(st), 0);
    lg_optim_set_lr(opt, 1);
    s = lg_sched_opts_default(LG_SCHED_COSINE);
    s.t_max = 2;
    st = lg_sched_new(ctx, opt, &s);
    lg_sched_step(st);
    near("cosine_t_max", lg_sched_step(st), 0);
    lg_optim_set_lr(opt, 1);
    s.eta_min = 0.25;
    st = lg_sched_new(ctx, opt, &s);
    lg_sched_step(st);
    near("cosine_eta_min", lg_sched_step(st), 0.25);
    lg_optim_set_lr(opt, 1);
    s = lg_sched_opts_default(LG_SCHED_LINEAR);
    st = lg_sched_new(ctx, opt, &s);
    near("linear_default_start", lg_optim_lr(opt), 1.0 / 3);
    for (int i = 0; i < 4; i++)
        lg_sched_step(st);
    near("linear_default_total_5", lg_sched_step(st), 1);
    lg_optim_set_lr(opt, 1);
    s.start_factor = 0.5, s.end_factor = 0, s.total_iters = 1;
    st = lg_sched_new(ctx, opt, &s);
    near("linear_start_factor", lg_optim_lr(opt), 0.5);
    near("linear_end_factor_total_iters", lg_sched_step(st), 0);
    s = lg_sched_opts_default(LG_SCHED_COSINE);
    s.t_max = 3, s.gamma = 0.5;
    fails(ctx, "cosine_has_no_gamma", lg_sched_new(ctx, opt, &s), LG_ERR_VALUE,
          "gamma is not an option of LG_SCHED_COSINE");
    lg_ctx_free(ctx);
}

static lg_tensor *cube(lg_ctx *ctx, lg_tensor *const *x, void *user)
{
    (void)user;
    return lg_mul(ctx, x[0], lg_square(ctx, x[0]));
}

static void gradcheck(lg_ctx *ctx)
{
    double one = 1;
    lg_tensor *x = vec(ctx, &one, 1);
    lg_tensor *const xs[1] = { x };
    lg_gradcheck_report r;
    lg_gradcheck_opts z = ZERO;
    lg_gradcheck_opts o = lg_gradcheck_opts_default();
    check("gradcheck_null", lg_gradcheck(ctx, cube, NULL, 1, xs, NULL, &r) == LG_OK && r.ok, 0, 1);
    check("gradcheck_zero", lg_gradcheck(ctx, cube, NULL, 1, xs, &z, &r) == LG_OK && r.ok, 0, 1);
    o.eps = 0.1; /* central differences of x^3 are off by u eps^2 */
    check("gradcheck_eps",
          lg_gradcheck(ctx, cube, NULL, 1, xs, &o, &r) == LG_OK && !r.ok &&
              fabs(r.max_abs_err - fabs(r.worst_analytic) / 300) < 1e-9,
          r.max_abs_err, 0.01);
    o.atol = 0.1;
    check("gradcheck_atol", lg_gradcheck(ctx, cube, NULL, 1, xs, &o, &r) == LG_OK && r.ok, 0, 1);
    o.atol = 0, o.rtol = 0.01;
    check("gradcheck_rtol", lg_gradcheck(ctx, cube, NULL, 1, xs, &o, &r) == LG_OK && r.ok, 0, 1);
    o = lg_gradcheck_opts_default();
    o.atol = 0, o.rtol = 0; /* exact: central differences are not */
    check("gradcheck_tolerance_0", lg_gradcheck(ctx, cube, NULL, 1, xs, &o, &r) == LG_OK && !r.ok,
          0, 1);
}

/* lg_grad_opts: NULL and {} are PyTorch's defaults (no graph, not
 * retained); create_graph retains unless retain_graph says otherwise. */
static void grad_options(lg_ctx *ctx)
{
    double two = 2;
    lg_tensor *x = vec(ctx, &two, 1), *g = NULL, *g2 = NULL;
    lg_requires_grad(ctx, x, true);
    lg_tensor *const xs[1] = { x };
    lg_grad_opts z = ZERO, o = lg_grad_opts_default();
    lg_tensor *f = cube(ctx, xs, NULL);
    near("grad_null", lg_grad(ctx, 1, &f, NULL, 1, xs, &g, NULL) == LG_OK ? val(ctx, g) : -1, 12);
    check("grad_null_consumes", lg_grad(ctx, 1, &f, NULL, 1, xs, &g, NULL) == LG_ERR_STATE, 0, 1);
    lg_ctx_clear_error(ctx);
    f = cube(ctx, xs, NULL);
    near("grad_zero", lg_grad(ctx, 1, &f, NULL, 1, xs, &g, &z) == LG_OK ? val(ctx, g) : -1, 12);
    f = cube(ctx, xs, NULL);
    o.create_graph = true; /* retained: another walk, and the second derivative 6x */
    check("grad_create_graph",
          lg_grad(ctx, 1, &f, NULL, 1, xs, &g, &o) == LG_OK && lg_tensor_requires_grad(g), 0, 1);
    lg_grad_opts keep = lg_grad_opts_default();
    keep.retain_graph = LG_RETAIN_YES; /* g's walk goes through f's graph too */
    near("grad_second", lg_grad(ctx, 1, &g, NULL, 1, xs, &g2, &keep) == LG_OK ? val(ctx, g2) : -1,
         12);
    near("grad_retained", lg_grad(ctx, 1, &f, NULL, 1, xs, &g, NULL) == LG_OK ? val(ctx, g) : -1,
         12);
    f = cube(ctx, xs, NULL);
    o.retain_graph = LG_RETAIN_NO;
    check("grad_retain_no",
          lg_grad(ctx, 1, &f, NULL, 1, xs, &g, &o) == LG_OK &&
              lg_grad(ctx, 1, &f, NULL, 1, xs, &g2, NULL) == LG_ERR_STATE,
          0, 1);
    lg_ctx_clear_error(ctx);
    /* lg_backward_opts: {} is lg_backward; create_graph retains */
    lg_backward_opts bz = ZERO, b = lg_backward_opts_default();
    f = cube(ctx, xs, NULL);
    check("backward_zero",
          lg_backward_ex(ctx, f, NULL, &bz) == LG_OK &&
              lg_backward_ex(ctx, f, NULL, NULL) == LG_ERR_STATE,
          0, 1);
    lg_ctx_clear_error(ctx);
    lg_tensor *y = vec(ctx, &two, 1);
    lg_requires_grad(ctx, y, true);
    lg_tensor *const ys[1] = { y };
    f = cube(ctx, ys, NULL);
    b.create_graph = true;
    check("backward_create_graph",
          lg_backward_ex(ctx, f, NULL, &b) == LG_OK && lg_tensor_requires_grad(lg_tensor_grad(y)) &&
              lg_backward_ex(ctx, f, NULL, NULL) == LG_OK,
          0, 1);
    near("backward_twice", val(ctx, lg_tensor_grad(y)), 24);
}

/* The curvature toolkit's options on sum(x^2) at x = (1, 2): the Hessian
 * is 2 I, so every eigenvalue and SLQ node is 2. */
static lg_tensor *sum_sq(lg_ctx *ctx, void *user)
{
    return lg_sum(ctx, lg_square(ctx, (lg_tensor *)user), 0, NULL, false);
}

static bool status_is(lg_ctx *ctx, lg_status got, lg_status want, const char *substr)
{
    bool ok = got == want && lg_ctx_status(ctx) == want && strstr(lg_ctx_errmsg(ctx), substr);
    lg_ctx_clear_error(ctx);
    return ok;
}

static void curvature_options(lg_ctx *ctx)
{
    double xv[] = { 1, 2 }, e[2] = { 0, 0 }, g[3], d[3];
    lg_tensor *x = vec(ctx, xv, 2);
    lg_requires_grad(ctx, x, true);
    lg_tensor *f = sum_sq(ctx, x);
    lg_curvature_opts cz = ZERO, c = lg_curvature_opts_default();
    check("curvature_null", lg_hessian_eigenvalues(ctx, f, 1, &x, 2, e, NULL) == LG_OK, 0, 1);
    near("curvature_null_eig", e[1], 2);
    check("curvature_zero", lg_hessian_eigenvalues(ctx, f, 1, &x, 2, e, &cz) == LG_OK, 0, 1);
    c.iters = 1; /* one Lanczos step: one eigenvalue */
    check("curvature_iters_1",
          status_is(ctx, lg_hessian_eigenvalues(ctx, f, 1, &x, 2, e, &c), LG_ERR_VALUE,
                    "k = 2, expected 1..1"),
          0, 1);
    lg_density_opts dz = ZERO, dn = lg_density_opts_default();
    double pad = 0.01 + 5 * sqrt(1e-5); /* the auto grid around the one node 2 */
    check("density_null",
          lg_hessian_density(ctx, f, 1, &x, 3, g, d, NULL, NULL, NULL, NULL) == LG_OK, 0, 1);
    near("density_null_lo", g[0], 2 - pad);
    check("density_zero",
          lg_hessian_density(ctx, f, 1, &x, 3, g, d, NULL, NULL, NULL, &dz) == LG_OK, 0, 1);
    near("density_zero_hi", g[2], 2 + pad);
    dn.lo = 0, dn.hi = 4, dn.sigma = 1, dn.probes = 2;
    check("density_lo_hi_sigma",
          lg_hessian_density(ctx, f, 1, &x, 3, g, d, NULL, NULL, NULL, &dn) == LG_OK, 0, 1);
    near("density_at_the_node", d[1], 1 / sqrt(2 * PI));
    lg_landscape_opts lz = ZERO, ln = lg_landscape_opts_default();
    double dv[] = { 1, 0 }, al[2] = { 0, 0 }, ls[2] = { 0, 0 };
    lg_tensor *dir = vec(ctx, dv, 2);
    check("landscape_null",
          lg_loss_landscape_1d(ctx, sum_sq, x, 1, &x, &dir, 2, al, ls, NULL) == LG_OK, 0, 1);
    near("landscape_null_lo", al[0], -1);
    near("landscape_null_bias_zeroed", ls[0], 5);
    check("landscape_zero",
          lg_loss_landscape_1d(ctx, sum_sq, x, 1, &x, &dir, 2, al, ls, &lz) == LG_OK, 0, 1);
    ln.lo = 0, ln.hi = 1, ln.raw_directions = true;
    check("landscape_raw",
          lg_loss_landscape_1d(ctx, sum_sq, x, 1, &x, &dir, 2, al, ls, &ln) == LG_OK, 0, 1);
    near("landscape_raw_hi", ls[1], 8);
    lg_sharpness_opts sz = ZERO, sn = lg_sharpness_opts_default();
    lg_sharpness_report r;
    check("sharpness_null", lg_sharpness(ctx, sum_sq, x, 1, &x, &r, NULL) == LG_OK, 0, 1);
    near("sharpness_null_max", r.max_loss, 1.002 * 1.002 + 2.003 * 2.003);
    check("sharpness_zero", lg_sharpness(ctx, sum_sq, x, 1, &x, &r, &sz) == LG_OK, 0, 1);
    sn.eps = 0.1;
    check("sharpness_eps", lg_sharpness(ctx, sum_sq, x, 1, &x, &r, &sn) == LG_OK, 0, 1);
    near("sharpness_eps_max", r.max_loss, 1.2 * 1.2 + 2.3 * 2.3);
#ifndef __cplusplus
    check("hand_curvature_iters_left_0",
          status_is(
              ctx,
              lg_hessian_trace(ctx, f, 1, &x, e, NULL, &(lg_curvature_opts){ .progress_user = &r }),
              LG_ERR_VALUE, "lg_curvature_opts.iters is 0"),
          0, 1);
    check("hand_density_probes_left_0",
          status_is(ctx,
                    lg_hessian_density(ctx, f, 1, &x, 3, g, d, NULL, NULL, NULL,
                                       &(lg_density_opts){ .steps = 2 }),
                    LG_ERR_VALUE, "lg_density_opts.probes is 0"),
          0, 1);
    check("hand_landscape_hi_left_0",
          status_is(ctx,
                    lg_loss_landscape_1d(ctx, sum_sq, x, 1, &x, &dir, 2, al, ls,
                                         &(lg_landscape_opts){ .lo = -2 }),
                    LG_ERR_VALUE, "lg_landscape_opts.hi is 0"),
          0, 1);
    check("hand_sharpness_steps_left_0",
          status_is(ctx,
                    lg_sharpness(ctx, sum_sq, x, 1, &x, &r, &(lg_sharpness_opts){ .eps = 0.1 }),
                    LG_ERR_VALUE, "lg_sharpness_opts.steps is 0"),
          0, 1);
#endif
}

#ifndef __cplusplus
/* ------------------------------------------------------------------ */
/* C only: structs written by hand                                     */
/* ------------------------------------------------------------------ */

static void by_hand(lg_ctx *ctx)
{
    double cv[] = { 0, 0, 0, log(3.0) };
    int64_t tm1[] = { -1, 1 }, t01[] = { 0, 1 };
    lg_tensor *c = mat(ctx, cv, 2, 2), *tn = ivec(ctx, tm1, 2), *t = ivec(ctx, t01, 2);
    double r1 = log(4.0) - log(3.0);
    /* the examples: each plain value means that value */
    near("hand_ce_ignore_index_minus_1",
         val(ctx, lg_cross_entropy(ctx, c, tn, &(lg_ce_opts){ .ignore_index = -1 })), r1);
    double hv[] = { 0.5 }, zv[] = { 0 }, yv[] = { -1 };
    lg_tensor *h = vec(ctx, hv, 1), *h0 = vec(ctx, zv, 1), *hy = vec(ctx, yv, 1);
    near("hand_smooth_l1_beta_2",
         val(ctx, lg_smooth_l1_loss(ctx, h, h0, &(lg_smooth_l1_opts){ .beta = 2.0 })), 0.0625);
    near("hand_hinge_margin_2",
         val(ctx, lg_hinge_embedding_loss(ctx, h, hy, &(lg_hinge_opts){ .margin = 2.0 })), 1.5);
    near("hand_all_written",
         val(ctx,
             lg_cross_entropy(
                 ctx, c, t, &(lg_ce_opts){ .reduction = LG_REDUCTION_SUM, .ignore_index = -100 })),
         log(2.0) + r1);
    near("hand_no_nonzero_defaults",
         val(ctx, lg_l1_loss(ctx, h, h0, &(lg_loss_opts){ .reduction = LG_REDUCTION_SUM })), 0.5);
    /* a non-zero-default option left at 0 by hand: an error naming it */
    fails(ctx, "hand_ce_ignore_index_left_0",
          lg_cross_entropy(ctx, c, t, &(lg_ce_opts){ .label_smoothing = 0.1 }), LG_ERR_VALUE,
          "lg_ce_opts.ignore_index is 0 in a struct not made by lg_ce_opts_default()");
    fails(ctx, "hand_triplet_eps_left_0",
          lg_triplet_margin_loss(ctx, h, h, h, &(lg_triplet_opts){ .margin = 2, .p = 2 }),
          LG_ERR_VALUE, "lg_triplet_opts.eps is 0");
    fails(ctx, "hand_adam_beta2_only",
          lg_optim_new(ctx, &(lg_optim_opts){ .kind = LG_ADAM, .lr = 1e-3, .beta2 = 0.98 }),
          LG_ERR_VALUE, "lg_optim_opts.beta1 is 0");
    fails(ctx, "hand_rnn_num_layers_left_0",
          lg_rnn_new(ctx, "hr", LG_GRU, 2, 3, &(lg_rnn_opts){ .bidirectional = true }),
          LG_ERR_VALUE, "lg_rnn_opts.num_layers is 0");
    lg_optim *sgd = lg_optim_new(ctx, &(lg_optim_opts){ .kind = LG_SGD, .lr = 0.1 });
    near("hand_sgd_lr", lg_optim_lr(sgd), 0.1);
    fails(ctx, "hand_sched_gamma_left_0",
          lg_sched_new(ctx, sgd, &(lg_sched_opts){ .kind = LG_SCHED_STEP, .step_size = 2 }),
          LG_ERR_VALUE, "lg_sched_opts.gamma is 0");
    /* a tag no lossgrad call writes: a positional initialiser, or garbage */
    fails(ctx, "positional_initialiser_rejected",
          lg_l1_loss(ctx, h, h0, &(lg_loss_opts){ 1, LG_REDUCTION_SUM }), LG_ERR_VALUE,
          "defaults_tag is 0x1");
    fails(ctx, "garbage_tag_rejected",
          lg_smooth_l1_loss(ctx, h, h0, &(lg_smooth_l1_opts){ .defaults_tag = 0xdeadbeef }),
          LG_ERR_VALUE, "no lossgrad call writes");
    lg_ctx *bad = lg_ctx_new(&(lg_ctx_params){ .threads = -1 });
    fails(bad, "ctx_threads_minus_1", NULL, LG_ERR_VALUE, "params->threads = -1");
    lg_ctx_free(bad);
}
#endif

int main(void)
{
    lg_ctx *ctx = new_ctx();
    regression(ctx);
    classification(ctx);
    margins(ctx);
    sequences_and_likelihoods(ctx);
    beyond_pytorch(ctx);
    layers(ctx);
    embedding_and_groups(ctx);
    spatial(ctx);
    gradcheck(ctx);
    grad_options(ctx);
    curvature_options(ctx);
#ifndef __cplusplus
    by_hand(ctx);
#endif
    if (lg_ctx_status(ctx) != LG_OK) {
        failures++;
        printf("FAIL an error was left on the ctx: %s\n", lg_ctx_errmsg(ctx));
    }
    lg_ctx_free(ctx);
    context_params();
    optimizers();
    schedules();
    printf("%s: %d checks, %d failed\n", LANG, checks, failures);
    return failures ? 1 : 0;
}
