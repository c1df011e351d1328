/* test_losses.c: the loss module beyond the PyTorch fixtures: the fused
 * primitives against their composite oracles, identities between losses,
 * gradchecks, argument errors, and a small training run per loss family
 * showing the loss decreasing under gradient descent. */
#include "helpers.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* CTC: the fused primitive against a composite of per-step logsumexp   */
/* ------------------------------------------------------------------ */

/* nll of one sample, built from primitives only:
 *   alpha_t = E[t] + logsumexp(stack(alpha, shift1(alpha), shift2(alpha) + skip), 0) */
static lg_tensor *ctc_composite_one(lg_ctx *ctx, lg_tensor *lp, int64_t b, const int64_t *labels,
                                    int64_t L, int64_t Tb, int64_t blank)
{
    int64_t T = lg_tensor_shape(lp)[0], C = lg_tensor_shape(lp)[2], S = 2 * L + 1;
    lg_dtype dt = lg_tensor_dtype(lp);
    lg_tensor *lpb = lg_reshape(ctx, lg_narrow(ctx, lp, 1, b, 1), 2, SHAPE(T, C));
    int64_t ext[64];
    double init[64], skip[64];
    for (int64_t s = 0; s < S; s++) {
        ext[s] = (s & 1) ? labels[(s - 1) / 2] : blank;
        /* unreachable starts are very negative but finite: an all -inf
         * column would give logsumexp a NaN gradient */
        init[s] = s < 2 ? 0 : -1e30;
        skip[s] = (s >= 2 && ext[s] != blank && ext[s] != ext[s - 2]) ? 0 : -INFINITY;
    }
    lg_tensor *E = lg_index_select(ctx, lpb, 1, lg_tensor_from(ctx, LG_I64, ext, 1, &S));
    lg_tensor *skipm = from_doubles(ctx, dt, skip, 1, &S);
    lg_tensor *ninf1 = lg_full(ctx, dt, 1, SHAPE(1), -INFINITY);
    lg_tensor *ninf2 = lg_full(ctx, dt, 1, SHAPE(2), -INFINITY);
    lg_tensor *row = lg_reshape(ctx, lg_narrow(ctx, E, 0, 0, 1), 1, &S);
    lg_tensor *alpha = lg_add(ctx, row, from_doubles(ctx, dt, init, 1, &S));
    for (int64_t t = 1; t < Tb; t++) {
        lg_tensor *sh1 =
            lg_concat(ctx, 2, (lg_tensor *[]){ ninf1, lg_narrow(ctx, alpha, 0, 0, S - 1) }, 0);
        lg_tensor *sh2 =
            S >= 2
                ? lg_concat(ctx, 2, (lg_tensor *[]){ ninf2, lg_narrow(ctx, alpha, 0, 0, S - 2) }, 0)
                : ninf1;
        sh2 = lg_add(ctx, lg_narrow(ctx, sh2, 0, 0, S), skipm);
        lg_tensor *lse = lg_logsumexp(ctx, lg_stack(ctx, 3, (lg_tensor *[]){ alpha, sh1, sh2 }, 0),
                                      1, (int[]){ 0 }, false);
        alpha = lg_add(ctx, lse, lg_reshape(ctx, lg_narrow(ctx, E, 0, t, 1), 1, &S));
    }
    lg_tensor *tail = lg_narrow(ctx, alpha, 0, S >= 2 ? S - 2 : 0, S >= 2 ? 2 : 1);
    return lg_neg(ctx, lg_logsumexp(ctx, tail, 0, NULL, false));
}

Test(losses, ctc_fused_matches_its_composite_oracle)
{
    lg_ctx *ctx = test_ctx(101);
    /* batch of 3: repeated labels, blank in the middle of the alphabet, empty target */
    const int64_t T = 7, N = 3, C = 5, blank = 2;
    int64_t padded[] = { 1, 1, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0 };
    int64_t il[] = { 7, 5, 6 }, tl[] = { 4, 2, 0 };
    const int64_t *labels[] = { padded, padded + 4, padded + 8 };
    padded[4] = 3, padded[5] = 0;
    for (int rep = 0; rep < 3; rep++) {
        lg_tensor *lp = lg_randn(ctx, LG_F64, 3, SHAPE(T, N, C));
        if (rep == 1)
            lp = lg_detach(ctx, lg_log_softmax(ctx, lp, 2));
        lg_requires_grad(ctx, lp, true);
        lg_tensor *fused =
            lg_ctc_loss(ctx, lp, T_FROM(ctx, LG_I64, padded, 3, 4), T_FROM(ctx, LG_I64, il, 3),
                        T_FROM(ctx, LG_I64, tl, 3),
                        &(lg_ctc_opts){ .reduction = LG_REDUCTION_NONE, .blank = blank });
        expect_ok(ctx);
        lg_tensor *lp2 = lg_detach(ctx, lp);
        lg_requires_grad(ctx, lp2, true);
        lg_tensor *parts[3];
        for (int b = 0; b < 3; b++)
            parts[b] = lg_reshape(
                ctx, ctc_composite_one(ctx, lp2, b, labels[b], tl[b], il[b], blank), 1, SHAPE(1));
        lg_tensor *composite = lg_concat(ctx, 3, parts, 0);
        expect_ok(ctx);
        double want[3];
        for (int b = 0; b < 3; b++)
            want[b] = get(composite, b);
        expect_close(fused, want, 3, 1e-12, "ctc value");
        /* gradients with the same random upstream */
        lg_tensor *u = lg_randn(ctx, LG_F64, 1, SHAPE(3));
        cr_assert_eq(lg_backward_with(ctx, fused, u), LG_OK, "%s", lg_ctx_errmsg(ctx));
        cr_assert_eq(lg_backward_with(ctx, composite, u), LG_OK, "%s", lg_ctx_errmsg(ctx));
        double gw[7 * 3 * 5];
        for (int i = 0; i < T * N * C; i++)
            gw[i] = get(lg_tensor_grad(lp2), i);
        expect_close(lg_tensor_grad(lp), gw, T * N * C, 1e-11, "ctc gradient");
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

Test(losses, ctc_padded_and_concatenated_targets_agree)
{
    lg_ctx *ctx = test_ctx(102);
    int64_t padded[] = { 1, 2, 2, 9, 3, 9, 9, 9 }, concat[] = { 1, 2, 2, 3 };
    int64_t il[] = { 6, 5 }, tl[] = { 3, 1 };
    for (int red = 0; red < 3; red++) {
        lg_tensor *lp = lg_log_softmax(ctx, lg_randn(ctx, LG_F64, 3, SHAPE(6, 2, 10)), 2);
        lp = lg_detach(ctx, lp);
        lg_tensor *g[2], *v[2];
        for (int k = 0; k < 2; k++) {
            lg_tensor *x = lg_detach(ctx, lp);
            lg_requires_grad(ctx, x, true);
            lg_tensor *t =
                k == 0 ? T_FROM(ctx, LG_I64, padded, 2, 4) : T_FROM(ctx, LG_I64, concat, 4);
            v[k] = lg_ctc_loss(ctx, x, t, T_FROM(ctx, LG_I64, il, 2), T_FROM(ctx, LG_I64, tl, 2),
                               &(lg_ctc_opts){ .reduction = (lg_reduction)red });
            lg_tensor *u = lg_ones(ctx, LG_F64, lg_tensor_ndim(v[k]), lg_tensor_shape(v[k]));
            cr_assert_eq(lg_backward_with(ctx, v[k], u), LG_OK, "%s", lg_ctx_errmsg(ctx));
            g[k] = lg_tensor_grad(x);
        }
        cr_assert_eq(lg_tensor_numel(v[0]), lg_tensor_numel(v[1]));
        cr_assert_eq(
            memcmp(lg_tensor_data(v[0]), lg_tensor_data(v[1]), (size_t)lg_tensor_numel(v[0]) * 8),
            0);
        cr_assert_eq(memcmp(lg_tensor_data(g[0]), lg_tensor_data(g[1]), 6 * 2 * 10 * 8), 0,
                     "gradients identical");
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

static lg_tensor *ctc_mean(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    (void)user;
    int64_t tg[] = { 1, 1, 2, 3, 3, 1 }, il[] = { 7, 6 }, tl[] = { 4, 2 };
    return lg_ctc_loss(ctx, lg_log_softmax(ctx, xs[0], 2), T_FROM(ctx, LG_I64, tg, 6),
                       T_FROM(ctx, LG_I64, il, 2), T_FROM(ctx, LG_I64, tl, 2), NULL);
}

Test(losses, ctc_matches_finite_differences_through_log_softmax)
{
    lg_ctx *ctx = test_ctx(103);
    lg_tensor *x = lg_randn(ctx, LG_F64, 3, SHAPE(7, 2, 4));
    expect_gradcheck(ctx, ctc_mean, NULL, 1, &x, "ctc through log_softmax, MEAN");
    lg_ctx_free(ctx);
}

Test(losses, ctc_infeasible_and_zero_infinity)
{
    lg_ctx *ctx = test_ctx(104);
    lg_tensor *lp = lg_log_softmax(ctx, lg_randn(ctx, LG_F64, 3, SHAPE(2, 1, 3)), 2);
    lp = lg_detach(ctx, lp);
    lg_requires_grad(ctx, lp, true);
    int64_t tg[] = { 1, 1 }, il[] = { 2 }, tl[] = { 2 }; /* [1, 1] needs T >= 3 */
    lg_tensor *l =
        lg_ctc_loss(ctx, lp, T_FROM(ctx, LG_I64, tg, 1, 2), T_FROM(ctx, LG_I64, il, 1),
                    T_FROM(ctx, LG_I64, tl, 1), &(lg_ctc_opts){ .reduction = LG_REDUCTION_SUM });
    expect_close(l, (double[]){ INFINITY }, 1, 0, "infeasible");
    lg_tensor *lp2 = lg_detach(ctx, lp);
    lg_requires_grad(ctx, lp2, true);
    lg_tensor *z =
        lg_ctc_loss(ctx, lp2, T_FROM(ctx, LG_I64, tg, 1, 2), T_FROM(ctx, LG_I64, il, 1),
                    T_FROM(ctx, LG_I64, tl, 1),
                    &(lg_ctc_opts){ .reduction = LG_REDUCTION_SUM, .zero_infinity = true });
    expect_close(z, (double[]){ 0 }, 1, 0, "zero_infinity");
    cr_assert_eq(lg_backward(ctx, z), LG_OK);
    double zeros[6] = { 0 };
    expect_close(lg_tensor_grad(lp2), zeros, 6, 0, "zero_infinity gradient");
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* BCE: the fused primitive against the plain formula                   */
/* ------------------------------------------------------------------ */

Test(losses, bce_fused_matches_its_composite_oracle)
{
    lg_ctx *ctx = test_ctx(105);
    /* tg 0: the target wants no gradient, so the forward makes x's */
    for (int dt = 0; dt < 2; dt++)
        for (int tg = 0; tg < 2; tg++) {
            lg_tensor *x = lg_rand(ctx, (lg_dtype)dt, 2, SHAPE(4, 5), 0.01, 0.99);
            lg_tensor *y = lg_rand(ctx, (lg_dtype)dt, 2, SHAPE(4, 5), 0, 1);
            lg_tensor *x2 = lg_detach(ctx, x), *y2 = lg_detach(ctx, y);
            lg_requires_grad(ctx, x, true), lg_requires_grad(ctx, y, tg);
            lg_requires_grad(ctx, x2, true), lg_requires_grad(ctx, y2, tg);
            lg_tensor *fused = lg_binary_cross_entropy(ctx, x, y, NULL);
            /* -(y log x + (1 - y) log(1 - x)), mean */
            lg_tensor *one_minus = lg_add_scalar(ctx, lg_neg(ctx, x2), 1);
            lg_tensor *e =
                lg_add(ctx, lg_mul(ctx, y2, lg_log(ctx, x2)),
                       lg_mul(ctx, lg_add_scalar(ctx, lg_neg(ctx, y2), 1), lg_log(ctx, one_minus)));
            lg_tensor *composite = lg_neg(ctx, lg_mean(ctx, e, 0, NULL, false));
            double tol = dt == LG_F32 ? 1e-5 : 1e-13;
            expect_close(fused, (double[]){ get(composite, 0) }, 1, tol, "bce value");
            cr_assert_eq(lg_backward(ctx, fused), LG_OK);
            cr_assert_eq(lg_backward(ctx, composite), LG_OK);
            expect_close_to(lg_tensor_grad(x), lg_tensor_grad(x2), tol, "bce input gradient");
            if (tg)
                expect_close_to(lg_tensor_grad(y), lg_tensor_grad(y2), tol, "bce target gradient");
            lg_step_end(ctx);
        }
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* The fused elementwise losses against their composites                */
/* ------------------------------------------------------------------ */

/* where(outer, linear, quad_scale * where(outer, 0, d)^2) */
static lg_tensor *two_branch(lg_ctx *ctx, lg_tensor *d, lg_tensor *outer, lg_tensor *linear,
                             double quad_scale)
{
    lg_tensor *inner_d = lg_where(ctx, outer, lg_scalar(ctx, lg_tensor_dtype(d), 0), d);
    return lg_where(ctx, outer, linear, lg_mul_scalar(ctx, lg_square(ctx, inner_d), quad_scale));
}

/* The composites the fused primitive replaced, option values as in the loop below. */
static lg_tensor *pointwise_composite(lg_ctx *ctx, int kind, lg_tensor *x, lg_tensor *y,
                                      lg_reduction r)
{
    lg_dtype dt = lg_tensor_dtype(x);
    lg_tensor *d = lg_sub(ctx, x, y), *ad = lg_abs(ctx, d), *l;
    switch (kind) {
    case 0: l = ad; break;
    case 1: l = lg_square(ctx, d); break;
    case 2: /* smooth_l1, beta 0.5 */
        l = two_branch(ctx, d, lg_ge(ctx, ad, lg_scalar(ctx, dt, 0.5)),
                       lg_add_scalar(ctx, ad, -0.25), 1.0);
        break;
    case 3: /* smooth_l1, beta 0: L1 */
        l = two_branch(ctx, d, lg_ge(ctx, ad, lg_scalar(ctx, dt, 0)), ad, INFINITY);
        break;
    case 4: /* huber, delta 0.7 */
        l = two_branch(ctx, d, lg_gt(ctx, ad, lg_scalar(ctx, dt, 0.7)),
                       lg_mul_scalar(ctx, lg_add_scalar(ctx, ad, -0.35), 0.7), 0.5);
        break;
    case 5: { /* hinge, margin 1.5, y = +-1 */
        lg_tensor *hinge = lg_clamp(ctx, lg_add_scalar(ctx, lg_neg(ctx, x), 1.5), 0, INFINITY);
        l = lg_where(ctx, lg_eq(ctx, y, lg_scalar(ctx, dt, 1)), x, hinge);
        break;
    }
    case 6: l = lg_neg(ctx, lg_log_sigmoid(ctx, lg_mul(ctx, y, x))); break;
    case 7: /* BCE with logits: (1 - y) x - log_sigmoid(x) */
        l = lg_add(ctx, lg_mul(ctx, lg_add_scalar(ctx, lg_neg(ctx, y), 1), x),
                   lg_neg(ctx, lg_log_sigmoid(ctx, x)));
        break;
    case 8: l = lg_sub(ctx, lg_xlogy(ctx, y, y), lg_mul(ctx, y, x)); break;
    case 9: l = lg_mul(ctx, lg_exp(ctx, y), lg_sub(ctx, y, x)); break;
    default: { /* multilabel soft margin over rows of 4 */
        lg_tensor *x4 = lg_reshape(ctx, x, 2, SHAPE(-1, 4)),
                  *y4 = lg_reshape(ctx, y, 2, SHAPE(-1, 4));
        lg_tensor *pos = lg_mul(ctx, y4, lg_log_sigmoid(ctx, x4));
        lg_tensor *neg = lg_mul(ctx, lg_add_scalar(ctx, lg_neg(ctx, y4), 1),
                                lg_log_sigmoid(ctx, lg_neg(ctx, x4)));
        l = lg_mean(ctx, lg_neg(ctx, lg_add(ctx, pos, neg)), 1, (int[]){ -1 }, false);
        break;
    }
    }
    return r == LG_REDUCTION_NONE ? l
                                  : (r == LG_REDUCTION_SUM ? lg_sum(ctx, l, 0, NULL, false)
                                                           : lg_mean(ctx, l, 0, NULL, false));
}

static lg_tensor *pointwise_fused(lg_ctx *ctx, int kind, lg_tensor *x, lg_tensor *y, lg_reduction r)
{
    switch (kind) {
    case 0: return lg_l1_loss(ctx, x, y, &(lg_loss_opts){ .reduction = r });
    case 1: return lg_mse_loss(ctx, x, y, &(lg_loss_opts){ .reduction = r });
    case 2:
        return lg_smooth_l1_loss(ctx, x, y, &(lg_smooth_l1_opts){ .reduction = r, .beta = 0.5 });
    case 3: {
        lg_smooth_l1_opts o = lg_smooth_l1_opts_default(); /* beta 0: L1 */
        o.reduction = r;
        o.beta = 0;
        return lg_smooth_l1_loss(ctx, x, y, &o);
    }
    case 4: return lg_huber_loss(ctx, x, y, &(lg_huber_opts){ .reduction = r, .delta = 0.7 });
    case 5:
        return lg_hinge_embedding_loss(ctx, x, y,
                                       &(lg_hinge_opts){ .reduction = r, .margin = 1.5 });
    case 6: return lg_soft_margin_loss(ctx, x, y, &(lg_loss_opts){ .reduction = r });
    case 7:
        return lg_binary_cross_entropy_with_logits(ctx, x, y,
                                                   &(lg_bce_logits_opts){ .reduction = r });
    case 8: return lg_kl_div(ctx, x, y, &(lg_kl_div_opts){ .reduction = r, .log_target = false });
    case 9: return lg_kl_div(ctx, x, y, &(lg_kl_div_opts){ .reduction = r, .log_target = true });
    default:
        return lg_multilabel_soft_margin_loss(ctx, lg_reshape(ctx, x, 2, SHAPE(-1, 4)),
                                              lg_reshape(ctx, y, 2, SHAPE(-1, 4)),
                                              &(lg_mlsm_opts){ .reduction = r });
    }
}

Test(losses, pointwise_fused_match_their_composite_oracles)
{
    lg_ctx *ctx = test_ctx(120);
    enum { N = 40000 }; /* above the parallel threshold, with a tail */
    static double xv[N], yv[N], uv[N];
    /* ties, kinks at +-beta, +-delta and the hinge margin, NaN, +-inf, then random */
    const double special[][2] = { { 0, 0 },   { 1, 1 },        { 0.5, 0 },       { -0.5, 0 },
                                  { 0.7, 0 }, { -0.7, 0 },     { 1.5, -1 },      { NAN, 0 },
                                  { 0, NAN }, { INFINITY, 0 }, { -INFINITY, 1 }, { 3, 1 },
                                  { -2, -1 }, { 1e4, -1 },     { -1e4, 1 } };
    int ns = (int)(sizeof special / sizeof special[0]);
    /* tg: the target wants a gradient too; without, a reduced loss takes
     * its gradient in the forward (an upstream of 1 for SUM: adopted; 0.75
     * for MEAN: scaled) */
    for (int kind = 0; kind < 11; kind++)
        for (int dt = 0; dt < 2; dt++)
            for (int red = 0; red < 3; red++)
                for (int tg = 0; tg < 2; tg++) {
                    lg_tensor *rx = lg_randn(ctx, LG_F64, 1, SHAPE(N));
                    lg_tensor *ry = lg_randn(ctx, LG_F64, 1, SHAPE(N));
                    lg_tensor *ru = lg_randn(ctx, LG_F64, 1, SHAPE(N));
                    for (int i = 0; i < N; i++) {
                        xv[i] = i < ns ? special[i][0] : 2 * get(rx, i);
                        yv[i] = i < ns ? special[i][1] : get(ry, i);
                        uv[i] = get(ru, i);
                        if (kind == 5 || kind == 6) /* hinge and soft margin: labels +-1 */
                            yv[i] = (i < ns ? special[i][1] : yv[i]) >= 0 ? 1 : -1;
                        if (kind == 7 || kind == 10) /* probabilities, with exact 0 and 1 */
                            yv[i] = i % 7 == 0 ? (i % 2) : 1 / (1 + exp(-yv[i]));
                        if (kind == 8) /* a distribution's values: >= 0, some exactly 0 */
                            yv[i] = i % 5 == 0 ? 0 : fabs(yv[i]);
                        if ((kind == 7 || kind == 8 || kind == 10) && isnan(yv[i]))
                            yv[i] = 0.5;
                        if (kind == 5 && isnan(xv[i]) == 0 && i >= ns)
                            xv[i] = fabs(xv[i]);
                    }
                    int n = N;
                    lg_tensor *x1 = from_doubles(ctx, (lg_dtype)dt, xv, 1, SHAPE(n)),
                              *y1 = from_doubles(ctx, (lg_dtype)dt, yv, 1, SHAPE(n));
                    lg_tensor *x2 = lg_detach(ctx, x1), *y2 = lg_detach(ctx, y1);
                    lg_requires_grad(ctx, x1, true), lg_requires_grad(ctx, x2, true);
                    if (kind != 5 && tg)
                        lg_requires_grad(ctx, y1, true), lg_requires_grad(ctx, y2, true);
                    lg_tensor *f = pointwise_fused(ctx, kind, x1, y1, (lg_reduction)red);
                    lg_tensor *c = pointwise_composite(ctx, kind, x2, y2, (lg_reduction)red);
                    char what[64];
                    snprintf(what, sizeof what, "kind %d dtype %d reduction %d target grad %d",
                             kind, dt, red, tg);
                    lg_tensor *u = red == LG_REDUCTION_NONE
                                       ? from_doubles(ctx, (lg_dtype)dt, uv, lg_tensor_ndim(f),
                                                      lg_tensor_shape(f))
                                       : lg_scalar(ctx, (lg_dtype)dt,
                                                   !tg && red == LG_REDUCTION_SUM ? 1 : 0.75);
                    /* hinge's target selects a branch and gets no gradient */
                    expect_same_loss(ctx, f, c, u,
                                     (lg_tensor *const[][2]){ { x1, x2 }, { y1, y2 } },
                                     kind == 5 || !tg ? 1 : 2, dt == LG_F32 ? 2e-6 : 1e-14, what);
                    lg_step_end(ctx);
                }
    lg_ctx_free(ctx);
}

/* The fused cross-entropy over rows against the composite it replaced:
 * lsm = log_softmax; l = (1 - e) w[y] (-lsm[y]) + (e / C) sum_c w_c (-lsm_c),
 * 0 on ignored rows, MEAN over the sum of w[y] of kept rows. */
Test(losses, cross_entropy_rows_fused_matches_its_composite_oracle)
{
    lg_ctx *ctx = test_ctx(121);
    enum { N = 40 };
    static int64_t tv[N];
    /* C = 1000: above the parallel threshold; C = 10: the narrow rows' kernels */
    for (int64_t C = 1000; C > 0; C = C == 1000 ? 10 : 0)
        for (int dt = 0; dt < 2; dt++)
            for (int cfg = 0; cfg < 4; cfg++)
                for (int red = 0; red < 3; red++) {
                    double eps = cfg & 1 ? 0.25 : 0;
                    bool weighted = cfg & 2;
                    for (int i = 0; i < N; i++)
                        tv[i] = (i * 37) % C;
                    tv[3] = -100, tv[17] = -100;
                    lg_tensor *x1 = lg_detach(
                        ctx, lg_mul_scalar(ctx, lg_randn(ctx, (lg_dtype)dt, 2, SHAPE(N, C)), 3));
                    lg_tensor *x2 = lg_detach(ctx, x1);
                    lg_requires_grad(ctx, x1, true), lg_requires_grad(ctx, x2, true);
                    lg_tensor *w =
                        weighted ? lg_rand(ctx, (lg_dtype)dt, 1, SHAPE(C), 0.2, 2) : NULL;
                    lg_tensor *t = T_FROM(ctx, LG_I64, tv, N);
                    lg_tensor *f = lg_cross_entropy(ctx, x1, t,
                                                    &(lg_ce_opts){ .reduction = (lg_reduction)red,
                                                                   .weight = w,
                                                                   .ignore_index = -100,
                                                                   .label_smoothing = eps });
                    /* the composite, with the ignored rows' targets made safe */
                    static int64_t safe[N];
                    double keep[N], wy[N], denom = 0;
                    for (int i = 0; i < N; i++) {
                        safe[i] = tv[i] < 0 ? 0 : tv[i];
                        keep[i] = tv[i] >= 0;
                        wy[i] = keep[i] * (w ? get(w, safe[i]) : 1);
                        denom += wy[i];
                    }
                    lg_tensor *lsm = lg_log_softmax(ctx, x2, 1);
                    lg_tensor *at = lg_reshape(
                        ctx, lg_gather(ctx, lsm, 1, T_FROM(ctx, LG_I64, safe, N, 1)), 1, SHAPE(N));
                    lg_tensor *a = lg_neg(
                        ctx, lg_mul(ctx, at, from_doubles(ctx, (lg_dtype)dt, wy, 1, SHAPE(N))));
                    lg_tensor *terms =
                        w ? lg_mul(ctx, lsm, lg_reshape(ctx, w, 2, SHAPE(1, C))) : lsm;
                    lg_tensor *b =
                        lg_mul(ctx, lg_neg(ctx, lg_sum(ctx, terms, 1, (int[]){ 1 }, false)),
                               from_doubles(ctx, (lg_dtype)dt, keep, 1, SHAPE(N)));
                    lg_tensor *l =
                        lg_add(ctx, lg_mul_scalar(ctx, a, 1 - eps), lg_mul_scalar(ctx, b, eps / C));
                    lg_tensor *c = red == LG_REDUCTION_NONE ? l : lg_sum(ctx, l, 0, NULL, false);
                    if (red == LG_REDUCTION_MEAN)
                        c = lg_mul_scalar(ctx, c, 1 / denom);
                    char what[64];
                    snprintf(what, sizeof what, "C %lld dtype %d config %d reduction %d",
                             (long long)C, dt, cfg, red);
                    /* SUM with an upstream of 1: the gradient the forward made, as it is */
                    lg_tensor *u =
                        red == LG_REDUCTION_NONE
                            ? lg_randn(ctx, (lg_dtype)dt, 1, SHAPE(N))
                            : lg_scalar(ctx, (lg_dtype)dt, red == LG_REDUCTION_SUM ? 1 : 1.5);
                    expect_same_loss(ctx, f, c, u, (lg_tensor *const[][2]){ { x1, x2 } }, 1,
                                     dt == LG_F32 ? 1e-5 : 1e-13, what);
                    lg_step_end(ctx);
                }
    lg_ctx_free(ctx);
}

/* The fused nll over rows against gather/where/mul, weights, an ignored
 * row holding inf and NaN, every reduction. */
Test(losses, nll_rows_fused_matches_its_composite_oracle)
{
    lg_ctx *ctx = test_ctx(122);
    enum { N = 5, C = 4 };
    int64_t tv[N] = { 1, -100, 3, 0, 3 }, safe[N] = { 1, 0, 3, 0, 3 };
    double keep[N] = { 1, 0, 1, 1, 1 };
    for (int dt = 0; dt < 2; dt++)
        for (int weighted = 0; weighted < 2; weighted++)
            for (int red = 0; red < 3; red++) {
                double xv[N * C];
                lg_tensor *r = lg_randn(ctx, (lg_dtype)dt, 2, SHAPE(N, C));
                for (int i = 0; i < N * C; i++)
                    xv[i] = get(r, i);
                xv[4] = INFINITY, xv[5] = NAN; /* the ignored row */
                lg_tensor *x1 = from_doubles(ctx, (lg_dtype)dt, xv, 2, SHAPE(N, C));
                lg_tensor *x2 = lg_detach(ctx, x1);
                lg_requires_grad(ctx, x1, true), lg_requires_grad(ctx, x2, true);
                lg_tensor *w = weighted ? lg_rand(ctx, (lg_dtype)dt, 1, SHAPE(C), 0.2, 2) : NULL;
                lg_tensor *f = lg_nll_loss(ctx, x1, T_FROM(ctx, LG_I64, tv, N),
                                           &(lg_nll_opts){ .reduction = (lg_reduction)red,
                                                           .weight = w,
                                                           .ignore_index = -100 });
                double nw[N], denom = 0;
                for (int i = 0; i < N; i++) {
                    nw[i] = -keep[i] * (w ? get(w, safe[i]) : 1);
                    denom -= nw[i];
                }
                lg_tensor *g = lg_reshape(
                    ctx, lg_gather(ctx, x2, 1, T_FROM(ctx, LG_I64, safe, N, 1)), 1, SHAPE(N));
                g = lg_where(ctx, from_doubles(ctx, (lg_dtype)dt, keep, 1, SHAPE(N)), g,
                             lg_scalar(ctx, (lg_dtype)dt, 0));
                lg_tensor *l = lg_mul(ctx, g, from_doubles(ctx, (lg_dtype)dt, nw, 1, SHAPE(N)));
                lg_tensor *c = red == LG_REDUCTION_NONE ? l : lg_sum(ctx, l, 0, NULL, false);
                if (red == LG_REDUCTION_MEAN)
                    c = lg_mul_scalar(ctx, c, 1 / denom);
                char what[48];
                snprintf(what, sizeof what, "dtype %d weighted %d reduction %d", dt, weighted, red);
                lg_tensor *u = red == LG_REDUCTION_NONE ? lg_randn(ctx, (lg_dtype)dt, 1, SHAPE(N))
                                                        : lg_scalar(ctx, (lg_dtype)dt, 1.25);
                expect_same_loss(ctx, f, c, u, (lg_tensor *const[][2]){ { x1, x2 } }, 1,
                                 dt == LG_F32 ? 1e-6 : 1e-14, what);
                lg_step_end(ctx);
            }
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Identities between losses                                            */
/* ------------------------------------------------------------------ */

/* The fused triplet loss (p = 2, no swap, one shape) against pairwise
 * distances, sub, add and clamp: margins that leave some rows inactive and
 * one exactly at the bound (a = p = n: d_ap = d_an, l = margin = 0), a zero
 * distance (eps 0), a 3-d batch, every reduction. */
Test(losses, triplet_rows_fused_matches_its_composite_oracle)
{
    lg_ctx *ctx = test_ctx(123);
    const double margins[] = { 1.0, 0.0, 0.5 }, epss[] = { 1e-6, 0.0, 1e-3 };
    for (int dt = 0; dt < 2; dt++)
        for (int cfg = 0; cfg < 3; cfg++)
            for (int red = 0; red < 3; red++) {
                const int64_t *shape = cfg == 2 ? SHAPE(2, 3, 5) : SHAPE(6, 5);
                int nd = cfg == 2 ? 3 : 2, rows = 6;
                lg_tensor *in[3][2];
                for (int k = 0; k < 3; k++) {
                    double v[30];
                    lg_tensor *r = lg_randn(ctx, (lg_dtype)dt, nd, shape);
                    for (int i = 0; i < 30; i++)
                        v[i] = get(r, i);
                    if (cfg == 1 && k > 0) /* row 0: a = p = n; row 1: a = p */
                        for (int j = 0; j < 5; j++) {
                            v[j] = get(in[0][0], j);
                            if (k == 1)
                                v[5 + j] = get(in[0][0], 5 + j);
                        }
                    in[k][0] = from_doubles(ctx, (lg_dtype)dt, v, nd, shape);
                    in[k][1] = lg_detach(ctx, in[k][0]);
                    lg_requires_grad(ctx, in[k][0], true), lg_requires_grad(ctx, in[k][1], true);
                }
                double margin = margins[cfg], eps = epss[cfg];
                lg_triplet_opts to = lg_triplet_opts_default(); /* margin, eps may be 0 */
                to.reduction = (lg_reduction)red;
                to.margin = margin;
                to.eps = eps;
                lg_tensor *f = lg_triplet_margin_loss(ctx, in[0][0], in[1][0], in[2][0], &to);
                lg_tensor *d_ap = lg_pairwise_distance(ctx, in[0][1], in[1][1], 2, eps, false);
                lg_tensor *d_an = lg_pairwise_distance(ctx, in[0][1], in[2][1], 2, eps, false);
                lg_tensor *c =
                    lg_clamp(ctx, lg_add_scalar(ctx, lg_sub(ctx, d_ap, d_an), margin), 0, INFINITY);
                if (red != LG_REDUCTION_NONE)
                    c = lg_sum(ctx, c, 0, NULL, false);
                if (red == LG_REDUCTION_MEAN)
                    c = lg_mul_scalar(ctx, c, 1.0 / rows);
                char what[48];
                snprintf(what, sizeof what, "dtype %d config %d reduction %d", dt, cfg, red);
                lg_tensor *u = red == LG_REDUCTION_NONE ? lg_randn(ctx, (lg_dtype)dt, nd - 1, shape)
                                                        : lg_scalar(ctx, (lg_dtype)dt, 1.25);
                expect_same_loss(ctx, f, c, u,
                                 (lg_tensor *const[][2]){ { in[0][0], in[0][1] },
                                                          { in[1][0], in[1][1] },
                                                          { in[2][0], in[2][1] } },
                                 3, dt == LG_F32 ? 1e-6 : 1e-14, what);
                lg_step_end(ctx);
            }
    lg_ctx_free(ctx);
}

Test(losses, huber_is_delta_times_smooth_l1)
{
    lg_ctx *ctx = test_ctx(106);
    for (int red = 0; red < 3; red++) {
        double delta = 0.7;
        lg_tensor *x = lg_mul_scalar(ctx, lg_randn(ctx, LG_F64, 2, SHAPE(4, 6)), 2);
        lg_tensor *y = lg_randn(ctx, LG_F64, 2, SHAPE(4, 6));
        lg_tensor *h = lg_huber_loss(
            ctx, x, y, &(lg_huber_opts){ .reduction = (lg_reduction)red, .delta = delta });
        lg_tensor *s = lg_smooth_l1_loss(
            ctx, x, y, &(lg_smooth_l1_opts){ .reduction = (lg_reduction)red, .beta = delta });
        int64_t n = lg_tensor_numel(h);
        double want[24];
        for (int64_t i = 0; i < n; i++)
            want[i] = delta * get(s, i);
        expect_close(h, want, n, 1e-14, "huber = delta * smooth_l1");
    }
    lg_ctx_free(ctx);
}

Test(losses, cross_entropy_is_nll_of_log_softmax)
{
    lg_ctx *ctx = test_ctx(107);
    int64_t t[] = { 0, 2, 1, -100, 3 };
    lg_tensor *w = lg_rand(ctx, LG_F64, 1, SHAPE(4), 0.5, 2);
    for (int red = 0; red < 3; red++) {
        lg_tensor *x = lg_randn(ctx, LG_F64, 2, SHAPE(5, 4));
        lg_tensor *tt = T_FROM(ctx, LG_I64, t, 5);
        lg_tensor *ce = lg_cross_entropy(
            ctx, x, tt,
            &(lg_ce_opts){ .reduction = (lg_reduction)red, .weight = w, .ignore_index = -100 });
        lg_tensor *nll = lg_nll_loss(
            ctx, lg_log_softmax(ctx, x, 1), tt,
            &(lg_nll_opts){ .reduction = (lg_reduction)red, .weight = w, .ignore_index = -100 });
        expect_close_to(ce, nll, 1e-14, "ce = nll(log_softmax)");
    }
    lg_ctx_free(ctx);
}

Test(losses, multilabel_soft_margin_is_mean_bce_with_logits)
{
    lg_ctx *ctx = test_ctx(108);
    lg_tensor *x = lg_mul_scalar(ctx, lg_randn(ctx, LG_F64, 2, SHAPE(3, 5)), 3);
    lg_tensor *y = lg_rand(ctx, LG_F64, 2, SHAPE(3, 5), 0, 1);
    lg_tensor *m = lg_multilabel_soft_margin_loss(
        ctx, x, y, &(lg_mlsm_opts){ .reduction = LG_REDUCTION_NONE, .weight = NULL });
    lg_tensor *b = lg_mean(ctx,
                           lg_binary_cross_entropy_with_logits(
                               ctx, x, y, &(lg_bce_logits_opts){ .reduction = LG_REDUCTION_NONE }),
                           1, (int[]){ -1 }, false);
    expect_close(m, (double[]){ get(b, 0), get(b, 1), get(b, 2) }, 3, 1e-14, "mlsm");
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Gradchecks of every loss (float64, random interior inputs)           */
/* ------------------------------------------------------------------ */

typedef struct {
    int which;
    lg_reduction red;
} gc_arg;

static lg_tensor *loss_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    const gc_arg *a = user;
    lg_reduction r = a->red;
    int64_t cls[] = { 2, 0, 3 };
    lg_tensor *t = T_FROM(ctx, LG_I64, cls, 3);
    switch (a->which) {
    case 0: return lg_l1_loss(ctx, xs[0], xs[1], &(lg_loss_opts){ .reduction = r });
    case 1: return lg_mse_loss(ctx, xs[0], xs[1], &(lg_loss_opts){ .reduction = r });
    case 2:
        return lg_smooth_l1_loss(ctx, xs[0], xs[1],
                                 &(lg_smooth_l1_opts){ .reduction = r, .beta = 0.8 });
    case 3:
        return lg_huber_loss(ctx, xs[0], xs[1], &(lg_huber_opts){ .reduction = r, .delta = 0.6 });
    case 4:
        return lg_kl_div(ctx, lg_log_softmax(ctx, xs[0], 1), lg_softmax(ctx, xs[1], 1),
                         &(lg_kl_div_opts){ .reduction = r });
    case 5:
        return lg_nll_loss(ctx, xs[0], t, &(lg_nll_opts){ .reduction = r, .ignore_index = -100 });
    case 6:
        return lg_cross_entropy(
            ctx, xs[0], t,
            &(lg_ce_opts){ .reduction = r, .ignore_index = -100, .label_smoothing = 0.2 });
    case 7:
        return lg_cross_entropy(ctx, xs[0], lg_softmax(ctx, xs[1], 1),
                                &(lg_ce_opts){ .reduction = r, .ignore_index = -100 });
    case 8:
        return lg_binary_cross_entropy(ctx, lg_sigmoid(ctx, xs[0]), lg_sigmoid(ctx, xs[1]),
                                       &(lg_bce_opts){ .reduction = r });
    case 9:
        return lg_binary_cross_entropy_with_logits(
            ctx, xs[0], lg_sigmoid(ctx, xs[1]),
            &(lg_bce_logits_opts){ .reduction = r,
                                   .weight = NULL,
                                   .pos_weight = lg_exp(ctx, xs[2]),
                                   .label_smoothing = 0 });
    case 10:
        return lg_multilabel_soft_margin_loss(ctx, xs[0], lg_sigmoid(ctx, xs[1]),
                                              &(lg_mlsm_opts){ .reduction = r });
    case 11:
        return lg_triplet_margin_loss(
            ctx, xs[0], xs[1], xs[2],
            &(lg_triplet_opts){ .reduction = r, .margin = 1, .p = 2, .eps = 1e-6, .swap = true });
    default: {
        double sgn[12];
        for (int i = 0; i < 12; i++)
            sgn[i] = (i % 3) ? 1 : -1;
        return lg_hinge_embedding_loss(ctx, lg_abs(ctx, xs[0]),
                                       from_doubles(ctx, LG_F64, sgn, 2, SHAPE(3, 4)),
                                       &(lg_hinge_opts){ .reduction = r, .margin = 1.5 });
    }
    }
}

Test(losses, every_loss_passes_gradcheck)
{
    lg_ctx *ctx = test_ctx(109);
    for (int which = 0; which <= 12; which++)
        for (int red = 0; red < 3; red++) {
            lg_tensor *xs[3] = { lg_mul_scalar(ctx, lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)), 2),
                                 lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)),
                                 lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)) };
            gc_arg a = { which, (lg_reduction)red };
            char what[64];
            snprintf(what, sizeof what, "loss %d reduction %d", which, red);
            expect_gradcheck(ctx, loss_apply, &a, 3, xs, what);
            lg_step_end(ctx);
        }
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Argument errors                                                      */
/* ------------------------------------------------------------------ */

Test(losses, argument_errors_name_the_function_and_rule)
{
    lg_ctx *ctx = test_ctx(110);
    lg_tensor *a = lg_randn(ctx, LG_F32, 2, SHAPE(2, 3)),
              *b = lg_randn(ctx, LG_F32, 2, SHAPE(3, 2));
    lg_tensor *d = lg_randn(ctx, LG_F64, 2, SHAPE(2, 3));
    int64_t tv[] = { 0, 3 };
    lg_tensor *t = T_FROM(ctx, LG_I64, tv, 2);
    EXPECT_LOSS_ERR(ctx, lg_mse_loss(ctx, a, b, NULL), LG_ERR_SHAPE,
                    "lg_mse_loss: input has shape [2, 3] but target has shape [3, 2]");
    EXPECT_LOSS_ERR(ctx, lg_l1_loss(ctx, a, d, NULL), LG_ERR_DTYPE,
                    "lg_l1_loss: input is float32 but target is float64");
    EXPECT_LOSS_ERR(ctx,
                    lg_l1_loss(ctx, a, a, &(lg_loss_opts){ .reduction = LG_REDUCTION_BATCHMEAN }),
                    LG_ERR_VALUE, "reduction");
    EXPECT_LOSS_ERR(ctx, lg_smooth_l1_loss(ctx, a, a, &(lg_smooth_l1_opts){ .beta = -1 }),
                    LG_ERR_VALUE, "beta = -1");
    lg_huber_opts h0 = lg_huber_opts_default();
    h0.delta = 0;
    EXPECT_LOSS_ERR(ctx, lg_huber_loss(ctx, a, a, &h0), LG_ERR_VALUE, "delta = 0");
    EXPECT_LOSS_ERR(ctx, lg_nll_loss(ctx, a, t, NULL), LG_ERR_INDEX,
                    "lg_nll_loss: target[1] = 3 is out of range for 3 classes");
    EXPECT_LOSS_ERR(
        ctx,
        lg_cross_entropy(ctx, a, t, &(lg_ce_opts){ .ignore_index = -100, .label_smoothing = -0.1 }),
        LG_ERR_VALUE, "label_smoothing");
    EXPECT_LOSS_ERR(ctx, lg_cross_entropy(ctx, a, lg_zeros(ctx, LG_I64, 1, SHAPE(3)), NULL),
                    LG_ERR_SHAPE, "lg_cross_entropy: input [2, 3]");
    EXPECT_LOSS_ERR(ctx,
                    lg_nll_loss(ctx, a, lg_zeros(ctx, LG_I64, 1, SHAPE(2)),
                                &(lg_nll_opts){ .weight = lg_ones(ctx, LG_F32, 1, SHAPE(2)),
                                                .ignore_index = -100 }),
                    LG_ERR_SHAPE, "weight has shape [2], expected [3]");
    EXPECT_LOSS_ERR(ctx, lg_binary_cross_entropy(ctx, a, a, NULL), LG_ERR_VALUE,
                    "expected every element in [0, 1]");
    EXPECT_LOSS_ERR(ctx,
                    lg_hinge_embedding_loss(ctx, a, lg_zeros(ctx, LG_F32, 2, SHAPE(2, 3)), NULL),
                    LG_ERR_VALUE, "target[0] = 0, expected 1 or -1");
    EXPECT_LOSS_ERR(ctx,
                    lg_triplet_margin_loss(ctx, a, lg_randn(ctx, LG_F32, 1, SHAPE(3)), a, NULL),
                    LG_ERR_SHAPE, "lg_triplet_margin_loss");
    lg_tensor *lp = lg_randn(ctx, LG_F32, 3, SHAPE(4, 1, 3));
    int64_t il[] = { 4 }, tl[] = { 2 }, bad[] = { 1, 0 }, big[] = { 5 };
    EXPECT_LOSS_ERR(ctx,
                    lg_ctc_loss(ctx, lp, T_FROM(ctx, LG_I64, bad, 1, 2), T_FROM(ctx, LG_I64, il, 1),
                                T_FROM(ctx, LG_I64, tl, 1), NULL),
                    LG_ERR_INDEX, "other than blank 0");
    EXPECT_LOSS_ERR(ctx,
                    lg_ctc_loss(ctx, lp, T_FROM(ctx, LG_I64, tv, 1, 2), T_FROM(ctx, LG_I64, big, 1),
                                T_FROM(ctx, LG_I64, tl, 1), NULL),
                    LG_ERR_VALUE, "input_lengths[0] = 5, expected in [1, 4]");
    EXPECT_LOSS_ERR(ctx,
                    lg_ctc_loss(ctx, lp, T_FROM(ctx, LG_I64, tv, 1, 2), T_FROM(ctx, LG_I64, il, 1),
                                T_FROM(ctx, LG_I64, tl, 1), &(lg_ctc_opts){ .blank = 3 }),
                    LG_ERR_VALUE, "blank = 3");
    /* NULL inputs propagate without overwriting the first error */
    lg_ctx_clear_error(ctx);
    cr_assert_null(lg_mse_loss(ctx, lg_softmax(ctx, a, 5), a, NULL));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_AXIS);
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Training: each family's loss falls under gradient descent            */
/* ------------------------------------------------------------------ */

typedef lg_tensor *(*model_loss)(lg_ctx *ctx, lg_tensor *const *params, int step);

/* Runs plain gradient descent; returns the first and last loss. */
static void descend(lg_ctx *ctx, int nparams, lg_tensor *const *params, model_loss fn, int steps,
                    double lr, double *first, double *last)
{
    for (int s = 0; s < steps; s++) {
        lg_tensor *loss = fn(ctx, params, s);
        cr_assert_eq(lg_backward(ctx, loss), LG_OK, "step %d: %s", s, lg_ctx_errmsg(ctx));
        double v = lg_item(ctx, loss);
        if (s == 0)
            *first = v;
        *last = v;
        for (int i = 0; i < nparams; i++) {
            double *p = lg_tensor_data(params[i]);
            const double *g = lg_tensor_data(lg_tensor_grad(params[i]));
            for (int64_t j = 0; j < lg_tensor_numel(params[i]); j++)
                p[j] -= lr * g[j];
        }
        lg_zero_grad(ctx);
        lg_step_end(ctx);
    }
}

static lg_tensor *param_randn(lg_ctx *ctx, const char *name, int nd, const int64_t *shape, double s)
{
    lg_tensor *p = lg_param_new(ctx, name, LG_F64, nd, shape);
    lg_copy_into(ctx, p, lg_mul_scalar(ctx, lg_randn(ctx, LG_F64, nd, shape), s));
    lg_step_end(ctx);
    return p;
}

static int regression_kind;

static lg_tensor *regression(lg_ctx *ctx, lg_tensor *const *p, int step)
{
    (void)step; /* y = 2x + 1 with a few outliers */
    lg_tensor *x = lg_randn(ctx, LG_F64, 2, SHAPE(32, 1));
    lg_tensor *y = lg_add_scalar(ctx, lg_mul_scalar(ctx, x, 2), 1);
    lg_tensor *pred = lg_add(ctx, lg_matmul(ctx, x, p[0]), p[1]);
    switch (regression_kind) {
    case 0: return lg_l1_loss(ctx, pred, y, NULL);
    case 1: return lg_mse_loss(ctx, pred, y, NULL);
    case 2: return lg_smooth_l1_loss(ctx, pred, y, NULL);
    default: return lg_huber_loss(ctx, pred, y, &(lg_huber_opts){ .delta = 0.5 });
    }
}

Test(losses, regression_losses_train)
{
    for (regression_kind = 0; regression_kind < 4; regression_kind++) {
        lg_ctx *ctx = test_ctx(200 + (uint64_t)regression_kind);
        lg_tensor *p[2] = { param_randn(ctx, "w", 2, SHAPE(1, 1), 0.1),
                            param_randn(ctx, "b", 1, SHAPE(1), 0.1) };
        double first, last;
        descend(ctx, 2, p, regression, 300, regression_kind == 3 ? 0.5 : 0.1, &first, &last);
        cr_assert_lt(last, 0.1 * first, "kind %d: %g -> %g", regression_kind, first, last);
        lg_ctx_free(ctx);
    }
}

/* Three Gaussian blobs in 2-D, labels 0..2 (fixed by the step's RNG). */
static void blobs(lg_ctx *ctx, lg_tensor **x, lg_tensor **y, int n)
{
    static const double centre[3][2] = { { 2, 0 }, { -1, 2 }, { -1, -2 } };
    double xv[96 * 2];
    int64_t yv[96];
    for (int i = 0; i < n; i++) {
        int c = i % 3;
        yv[i] = c;
        xv[2 * i] = centre[c][0] + 0.5 * lg_rand_normal(ctx);
        xv[2 * i + 1] = centre[c][1] + 0.5 * lg_rand_normal(ctx);
    }
    *x = from_doubles(ctx, LG_F64, xv, 2, SHAPE(n, 2));
    *y = lg_tensor_from(ctx, LG_I64, yv, 1, SHAPE(n));
}

static int class_kind;

static lg_tensor *classify(lg_ctx *ctx, lg_tensor *const *p, int step)
{
    (void)step;
    lg_tensor *x, *y;
    blobs(ctx, &x, &y, 48);
    lg_tensor *logits = lg_add(ctx, lg_matmul(ctx, x, p[0]), p[1]);
    switch (class_kind) {
    case 0: return lg_cross_entropy(ctx, logits, y, NULL);
    case 1:
        return lg_cross_entropy(ctx, logits, y,
                                &(lg_ce_opts){ .ignore_index = -100, .label_smoothing = 0.1 });
    case 2: return lg_nll_loss(ctx, lg_log_softmax(ctx, logits, 1), y, NULL);
    case 3: /* KL of the predicted distribution to a smoothed one-hot */
        return lg_kl_div(
            ctx, lg_log_softmax(ctx, logits, 1),
            lg_add_scalar(ctx, lg_mul_scalar(ctx, lg_one_hot(ctx, y, 3, LG_F64), 0.9), 0.1 / 3),
            &(lg_kl_div_opts){ .reduction = LG_REDUCTION_BATCHMEAN });
    case 4: return lg_multilabel_soft_margin_loss(ctx, logits, lg_one_hot(ctx, y, 3, LG_F64), NULL);
    case 5:
        return lg_binary_cross_entropy_with_logits(ctx, logits, lg_one_hot(ctx, y, 3, LG_F64),
                                                   NULL);
    default:
        return lg_binary_cross_entropy(ctx, lg_sigmoid(ctx, logits), lg_one_hot(ctx, y, 3, LG_F64),
                                       NULL);
    }
}

Test(losses, classification_losses_train)
{
    for (class_kind = 0; class_kind < 7; class_kind++) {
        lg_ctx *ctx = test_ctx(300 + (uint64_t)class_kind);
        lg_tensor *p[2] = { param_randn(ctx, "w", 2, SHAPE(2, 3), 0.1),
                            param_randn(ctx, "b", 1, SHAPE(3), 0.1) };
        double first, last;
        descend(ctx, 2, p, classify, 200, 0.5, &first, &last);
        cr_assert_lt(last, 0.5 * first, "kind %d: %g -> %g", class_kind, first, last);
        lg_ctx_free(ctx);
    }
}

/* Metric learning: a linear embedding of the blobs; triplets (a, p, n)
 * with a, p from one class and n from another. */
static lg_tensor *embed_triplet(lg_ctx *ctx, lg_tensor *const *p, int step)
{
    (void)step;
    lg_tensor *x, *y;
    blobs(ctx, &x, &y, 48);
    lg_tensor *e = lg_matmul(ctx, x, p[0]);
    /* rows i (class i%3), i+3 (same class), i+1 (next class) */
    int64_t ai[16], pi[16], ni[16];
    for (int i = 0; i < 16; i++)
        ai[i] = 3 * i, pi[i] = (3 * i + 3) % 48, ni[i] = 3 * i + 1;
    lg_tensor *a = lg_index_select(ctx, e, 0, T_FROM(ctx, LG_I64, ai, 16));
    lg_tensor *po = lg_index_select(ctx, e, 0, T_FROM(ctx, LG_I64, pi, 16));
    lg_tensor *ne = lg_index_select(ctx, e, 0, T_FROM(ctx, LG_I64, ni, 16));
    return lg_triplet_margin_loss(ctx, a, po, ne,
                                  &(lg_triplet_opts){ .margin = 2, .p = 2, .eps = 1e-6 });
}

/* Hinge embedding on pair distances: same-class pairs pulled in, others pushed past the margin. */
static lg_tensor *embed_hinge(lg_ctx *ctx, lg_tensor *const *p, int step)
{
    (void)step;
    lg_tensor *x, *y;
    blobs(ctx, &x, &y, 48);
    lg_tensor *e = lg_matmul(ctx, x, p[0]);
    int64_t ai[24], bi[24];
    double t[24];
    for (int i = 0; i < 24; i++)
        ai[i] = 2 * i, bi[i] = (2 * i + (i % 2 ? 3 : 1)) % 48, t[i] = (i % 2) ? 1 : -1;
    lg_tensor *d = lg_pairwise_distance(
        ctx, lg_index_select(ctx, e, 0, T_FROM(ctx, LG_I64, ai, 24)),
        lg_index_select(ctx, e, 0, T_FROM(ctx, LG_I64, bi, 24)), 2, 1e-6, false);
    return lg_hinge_embedding_loss(ctx, d, from_doubles(ctx, LG_F64, t, 1, SHAPE(24)),
                                   &(lg_hinge_opts){ .margin = 3 });
}

Test(losses, metric_losses_train)
{
    model_loss fns[2] = { embed_triplet, embed_hinge };
    for (int k = 0; k < 2; k++) {
        lg_ctx *ctx = test_ctx(400 + (uint64_t)k);
        lg_tensor *p[1] = { param_randn(ctx, "w", 2, SHAPE(2, 2), 0.3) };
        double first, last;
        descend(ctx, 1, p, fns[k], 200, 0.05, &first, &last);
        cr_assert_lt(last, 0.5 * first, "kind %d: %g -> %g", k, first, last);
        lg_ctx_free(ctx);
    }
}

/* Sequence labelling: free per-step logits learn to emit "1 2 2" under CTC. */
static lg_tensor *sequence(lg_ctx *ctx, lg_tensor *const *p, int step)
{
    (void)step;
    int64_t tg[] = { 1, 2, 2, 3, 1, 0 }, il[] = { 8, 6 }, tl[] = { 3, 2 };
    return lg_ctc_loss(ctx, lg_log_softmax(ctx, p[0], 2), T_FROM(ctx, LG_I64, tg, 2, 3),
                       T_FROM(ctx, LG_I64, il, 2), T_FROM(ctx, LG_I64, tl, 2), NULL);
}

Test(losses, ctc_trains)
{
    lg_ctx *ctx = test_ctx(500);
    lg_tensor *p[1] = { param_randn(ctx, "logits", 3, SHAPE(8, 2, 4), 0.1) };
    double first, last;
    descend(ctx, 1, p, sequence, 200, 1.0, &first, &last);
    cr_assert_lt(last, 0.2 * first, "%g -> %g", first, last);
    lg_ctx_free(ctx);
}
