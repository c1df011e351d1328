/* test_hardening.c: issue 13, "Every mistake loud". One test per item,
 * named after it: extreme sizes and indices are errors (or the right
 * answer), never overflow, out-of-bounds reads or hangs; NaN and inf go
 * where PyTorch 1.13 sends them. The PyTorch numbers below were printed by
 * the call in the comment beside them (Debian's python3-torch 1.13.1,
 * float64 unless marked); the other truths are closed forms (Python's
 * slice rules, an empty sum). */
#include "helpers.h"

#include <string.h>

static const lg_dtype dtypes[2] = { LG_F32, LG_F64 };
static const lg_reduction reductions[3] = { LG_REDUCTION_MEAN, LG_REDUCTION_SUM,
                                            LG_REDUCTION_NONE };

/* x = [[0, 1, 2, 3, 4], [10, 11, 12, 13, 14]] requiring grad */
static lg_tensor *two_rows(lg_ctx *ctx, lg_dtype dt)
{
    double v[10] = { 0, 1, 2, 3, 4, 10, 11, 12, 13, 14 };
    lg_tensor *x = from_doubles(ctx, dt, v, 2, SHAPE(2, 5));
    lg_requires_grad(ctx, x, true);
    return x;
}

/* F1: x[:, 0:3:INT64_MAX] is one column (Python: list(range(5))[0:3:2**63-1]
 * == [0]); stop - start + step - 1 overflowed and gave none. */
Test(hardening, F1_slice_step_int64_max)
{
    lg_ctx *ctx = test_ctx(1);
    for (int k = 0; k < 2; k++) {
        lg_tensor *x = two_rows(ctx, dtypes[k]);
        lg_tensor *y = lg_slice(ctx, x, 1, 0, 3, INT64_MAX);
        expect_ok(ctx);
        cr_assert_eq(lg_tensor_dim(y, 1), 1, "x[:, 0:3:INT64_MAX] has %lld columns, expected 1",
                     (long long)lg_tensor_dim(y, 1));
        expect_close(y, (double[]){ 0, 10 }, 2, 0, "x[:, 0:3:INT64_MAX]");
        cr_assert_eq(lg_backward(ctx, lg_sum(ctx, y, 0, NULL, false)), LG_OK, "%s",
                     lg_ctx_errmsg(ctx));
        expect_close(lg_tensor_grad(x), (double[]){ 1, 0, 0, 0, 0, 1, 0, 0, 0, 0 }, 10, 0,
                     "its gradient");
        lg_step_end(ctx);
    }
    /* the other extremes, against Python's slices of range(5) */
    struct {
        int64_t start, stop, step;
        int64_t n, first;
    } cases[] = {
        { 1, -1, INT64_MAX, 1, 1 },                /* [1:-1:2**63-1] == [1] */
        { INT64_MIN, INT64_MAX, 1, 5, 0 },         /* [-2**63:2**63-1] == [0..4] */
        { INT64_MAX, INT64_MIN, 1, 0, 0 },         /* [2**63-1:-2**63] == [] */
        { INT64_MIN, INT64_MAX, INT64_MAX, 1, 0 }, /* == [0] */
        { -3, INT64_MAX, INT64_MAX - 1, 1, 2 },    /* [-3:2**63-1:2**63-2] == [2] */
        { 4, INT64_MAX, 2, 1, 4 },                 /* [4::2] == [4] */
        { INT64_MIN, -4, INT64_MAX, 1, 0 },        /* [-2**63:-4:2**63-1] == [0] */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        lg_tensor *x = two_rows(ctx, LG_F64);
        lg_tensor *y = lg_slice(ctx, x, -1, cases[c].start, cases[c].stop, cases[c].step);
        expect_ok(ctx);
        cr_assert_eq(lg_tensor_dim(y, 1), cases[c].n, "case %zu: %lld columns, expected %lld", c,
                     (long long)lg_tensor_dim(y, 1), (long long)cases[c].n);
        if (cases[c].n)
            cr_assert_eq(get(y, 0), (double)cases[c].first, "case %zu: first %g", c, get(y, 0));
        lg_step_end(ctx);
    }
    /* narrow: extreme start and length are index errors, not overflow */
    lg_tensor *x = two_rows(ctx, LG_F64);
    EXPECT_ERR(ctx, lg_narrow(ctx, x, 1, INT64_MIN, 2), LG_ERR_INDEX, "lg_narrow: start");
    EXPECT_ERR(ctx, lg_narrow(ctx, x, 1, 2, INT64_MAX), LG_ERR_INDEX, "lg_narrow: start");
    EXPECT_ERR(ctx, lg_narrow(ctx, x, 1, INT64_MAX, 1), LG_ERR_INDEX, "lg_narrow: start");
    EXPECT_ERR(ctx, lg_narrow(ctx, x, 1, -1, INT64_MIN), LG_ERR_INDEX, "lg_narrow: start");
    EXPECT_ERR(ctx, lg_slice(ctx, x, 1, 0, 3, INT64_MIN), LG_ERR_VALUE, "lg_slice: step");
    lg_tensor *n = lg_narrow(ctx, x, 1, -2, 2); /* x[:, 3:5] */
    expect_close(n, (double[]){ 3, 4, 13, 14 }, 4, 0, "lg_narrow(x, 1, -2, 2)");
    lg_ctx_free(ctx);
}

/* F2: four target lengths of 2^62 (the last 2^62 + 3) sum to 3 modulo 2^64:
 * the count of the concatenated targets. They are each longer than the
 * labels there are, and say so; so is a length past a padded row. */
Test(hardening, F2_ctc_target_lengths_sum_overflow)
{
    lg_ctx *ctx = test_ctx(1);
    int64_t T = 2, N = 4, C = 3;
    lg_tensor *lp = lg_log_softmax(ctx, lg_randn(ctx, LG_F64, 3, SHAPE(T, N, C)), 2);
    lg_tensor *tg = lg_tensor_from(ctx, LG_I64, (int64_t[]){ 1, 2, 1 }, 1, SHAPE(3));
    lg_tensor *il = lg_tensor_from(ctx, LG_I64, (int64_t[]){ 2, 2, 2, 2 }, 1, SHAPE(4));
    int64_t q = (int64_t)1 << 62;
    lg_tensor *tl = lg_tensor_from(ctx, LG_I64, (int64_t[]){ q, q, q, q + 3 }, 1, SHAPE(4));
    EXPECT_ERR(ctx, lg_ctc_loss(ctx, lp, tg, il, tl, NULL), LG_ERR_SHAPE,
               "lg_ctc_loss: target_lengths[0] = 4611686018427387904");
    /* lengths that fit one by one but not together */
    lg_tensor *tl2 = lg_tensor_from(ctx, LG_I64, (int64_t[]){ 1, 1, 1, 1 }, 1, SHAPE(4));
    EXPECT_ERR(ctx, lg_ctc_loss(ctx, lp, tg, il, tl2, NULL), LG_ERR_SHAPE, "target_lengths[3] = 1");
    /* padded rows of 2: a length of INT64_MAX (2 L + 1 would overflow) */
    lg_tensor *pad =
        lg_tensor_from(ctx, LG_I64, (int64_t[]){ 1, 2, 1, 2, 1, 2, 1, 2 }, 2, SHAPE(4, 2));
    lg_tensor *tl3 = lg_tensor_from(ctx, LG_I64, (int64_t[]){ 2, INT64_MAX, 2, 2 }, 1, SHAPE(4));
    EXPECT_ERR(ctx, lg_ctc_loss(ctx, lp, pad, il, tl3, NULL), LG_ERR_SHAPE,
               "target_lengths[1] = 9223372036854775807");
    /* and lengths that fit still work: the two layouts agree */
    lg_tensor *tl4 = lg_tensor_from(ctx, LG_I64, (int64_t[]){ 1, 0, 2, 0 }, 1, SHAPE(4));
    lg_tensor *a = lg_ctc_loss(ctx, lp, tg, il, tl4, NULL);
    lg_tensor *pad2 =
        lg_tensor_from(ctx, LG_I64, (int64_t[]){ 1, 0, 0, 0, 2, 1, 0, 0 }, 2, SHAPE(4, 2));
    lg_tensor *b = lg_ctc_loss(ctx, lp, pad2, il, tl4, NULL);
    expect_ok(ctx);
    cr_assert(fabs(lg_item(ctx, a) - lg_item(ctx, b)) < 1e-14 && isfinite(lg_item(ctx, a)));
    lg_ctx_free(ctx);
}

/* F10: a gates x hidden product past the tensor bound is an error naming
 * lg_rnn_new, made before any parameter (2^62 hidden units made an LSTM
 * whose 4 x 2^62 rows wrapped to 0). */
Test(hardening, F10_rnn_hidden_size_overflow)
{
    lg_ctx *ctx = test_ctx(1);
    int64_t q = (int64_t)1 << 62;
    for (int kind = LG_RNN_TANH; kind <= LG_LSTM; kind++) {
        lg_rnn *r = lg_rnn_new(ctx, "rnn", (lg_rnn_kind)kind, 3, q, NULL);
        cr_assert_null(r, "kind %d: an RNN of hidden size 2^62", kind);
        cr_assert_eq(lg_ctx_status(ctx), LG_ERR_VALUE, "%s", lg_ctx_errmsg(ctx));
        cr_assert(strstr(lg_ctx_errmsg(ctx),
                         "lg_rnn_new: hidden_size = 4611686018427387904 is too large"),
                  "%s", lg_ctx_errmsg(ctx));
        lg_ctx_clear_error(ctx);
    }
    /* 2^30 fits gates x hidden but not hidden x hidden; 2^61 inputs */
    EXPECT_ERR(ctx, lg_rnn_new(ctx, "gru", LG_GRU, 3, (int64_t)1 << 30, NULL), LG_ERR_VALUE,
               "lg_rnn_new: hidden_size = 1073741824 is too large");
    EXPECT_ERR(ctx, lg_rnn_new(ctx, "lstm", LG_LSTM, (int64_t)1 << 61, 4, NULL), LG_ERR_VALUE,
               "lg_rnn_new: input_size = 2305843009213693952 is too large");
    EXPECT_ERR(ctx,
               lg_rnn_new(ctx, "bi", LG_GRU, 3, (int64_t)1 << 29,
                          &(lg_rnn_opts){ .num_layers = 2, .bidirectional = true }),
               LG_ERR_VALUE, "lg_rnn_new: hidden_size = 536870912");
    cr_assert_eq(lg_param_count(ctx), 0, "a failed lg_rnn_new left %d parameters",
                 lg_param_count(ctx));
    /* a normal one still builds */
    cr_assert_not_null(lg_rnn_new(ctx, "ok", LG_LSTM, 3, 4, NULL), "%s", lg_ctx_errmsg(ctx));
    cr_assert_eq(lg_param_count(ctx), 4);
    lg_ctx_free(ctx);
}

/* F10 (layers.c): the weight sizes of lg_linear_new and lg_embedding_new
 * are checked by the call itself, and lg_mlp_new checks every layer's
 * before making the first, so a bad size leaves no parameter behind. */
Test(hardening, F10_layer_size_products)
{
    lg_ctx *ctx = test_ctx(1);
    int64_t h = (int64_t)1 << 31;
    EXPECT_ERR(ctx, lg_linear_new(ctx, "fc", h, h, NULL), LG_ERR_VALUE,
               "lg_linear_new: sizes 2147483648 -> 2147483648 are too large");
    EXPECT_ERR(ctx, lg_embedding_new(ctx, "emb", h, h, NULL), LG_ERR_VALUE,
               "lg_embedding_new: num = 2147483648, dim = 2147483648");
    EXPECT_ERR(ctx, lg_mlp_new(ctx, "mlp", 3, (int64_t[]){ h, h, 4 }, NULL), LG_ERR_VALUE,
               "lg_mlp_new: sizes[0] = 2147483648 and sizes[1] = 2147483648");
    EXPECT_ERR(ctx, lg_mlp_new(ctx, "mlp", 3, (int64_t[]){ 4, 8, 0 }, NULL), LG_ERR_VALUE,
               "lg_mlp_new: sizes[1] = 8 and sizes[2] = 0");
    cr_assert_eq(lg_param_count(ctx), 0, "failed constructors left %d parameters",
                 lg_param_count(ctx));
    lg_ctx_free(ctx);
}

/* F15: a +inf logit makes its row NaN, loss and gradients (input and
 * probability target), as PyTorch; -inf and the other row stay finite. */
Test(hardening, F15_cross_entropy_inf_logit_nan_row)
{
    /* torch.nn.functional.cross_entropy(x, p, reduction='none') with
     * x = [[1, inf, 0], [0.5, -1, 2]] (and -inf, nan in place of inf),
     * p = [[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]]; .sum().backward() */
    static const double nan = NAN, inf = INFINITY;
    static const double row1_loss = 2.1913112966571573;
    static const double row1_gx[3] = { 0.07529039214003669, -0.5608874267293126,
                                       0.4855970345892759 };
    static const double row1_gp[3] = { 1.7413112966571571, 3.241311296657157, 0.24131129665715703 };
    struct {
        double bad;
        double loss0, gx0[3], gp0[3];
    } rows[] = {
        { inf, nan, { nan, nan, nan }, { nan, nan, nan } },
        { nan, nan, { nan, nan, nan }, { nan, nan, nan } },
        { -inf,
          inf,
          { 0.5310585786300048, -0.3, -0.2310585786300049 },
          { 0.31326168751822286, inf, 1.3132616875182228 } },
    };
    lg_ctx *ctx = test_ctx(1);
    for (int k = 0; k < 2; k++)
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
            lg_dtype dt = dtypes[k];
            lg_tensor *x =
                from_doubles(ctx, dt, (double[]){ 1, rows[r].bad, 0, 0.5, -1, 2 }, 2, SHAPE(2, 3));
            lg_tensor *p =
                from_doubles(ctx, dt, (double[]){ 0.2, 0.3, 0.5, 0.1, 0.6, 0.3 }, 2, SHAPE(2, 3));
            lg_requires_grad(ctx, x, true);
            lg_requires_grad(ctx, p, true);
            lg_tensor *l = lg_cross_entropy(
                ctx, x, p, &(lg_ce_opts){ .reduction = LG_REDUCTION_NONE, .ignore_index = -100 });
            expect_close(l, (double[]){ rows[r].loss0, row1_loss }, 2, tol_for(dt), "loss");
            cr_assert_eq(lg_backward_with(ctx, l, lg_ones(ctx, dt, 1, SHAPE(2))), LG_OK);
            double gx[6], gp[6];
            memcpy(gx, rows[r].gx0, sizeof rows[r].gx0);
            memcpy(gx + 3, row1_gx, sizeof row1_gx);
            memcpy(gp, rows[r].gp0, sizeof rows[r].gp0);
            memcpy(gp + 3, row1_gp, sizeof row1_gp);
            expect_close(lg_tensor_grad(x), gx, 6, tol_for(dt), "d loss / d input");
            expect_close(lg_tensor_grad(p), gp, 6, tol_for(dt), "d loss / d target");
            lg_step_end(ctx);
        }
    /* MEAN: F.cross_entropy(x, p) with the +inf row -> nan; the other row's
     * gradient halved: [0.037645196070018344, -0.2804437133646563, 0.24279851729463794] */
    lg_tensor *x = from_doubles(ctx, LG_F64, (double[]){ 1, inf, 0, 0.5, -1, 2 }, 2, SHAPE(2, 3));
    lg_tensor *p =
        from_doubles(ctx, LG_F64, (double[]){ 0.2, 0.3, 0.5, 0.1, 0.6, 0.3 }, 2, SHAPE(2, 3));
    lg_requires_grad(ctx, x, true);
    lg_tensor *l = lg_cross_entropy(ctx, x, p, NULL);
    cr_assert(isnan(lg_item(ctx, l)));
    cr_assert_eq(lg_backward(ctx, l), LG_OK);
    expect_close(
        lg_tensor_grad(x),
        (double[]){ nan, nan, nan, 0.037645196070018344, -0.2804437133646563, 0.24279851729463794 },
        6, 1e-13, "MEAN gradient");
    lg_ctx_free(ctx);
}

/* F15 at its root: log_softmax and softmax of a row holding +inf are NaN
 * throughout, gradient too (torch.log_softmax / torch.softmax of
 * [1, inf, 0] and of [inf, -inf, 0]: [nan, nan, nan]); a -inf alone is
 * fine: torch.softmax([1, -inf, 0]) = [0.7310585786300049, 0, 0.26894142136999516],
 * its gradient for g = [0.3, -1, 0.5]: [-0.039322386648296404, -0, 0.03932238664829637]. */
Test(hardening, F15_softmax_posinf_row_nan)
{
    lg_ctx *ctx = test_ctx(1);
    static const double nan3[3] = { NAN, NAN, NAN };
    for (int k = 0; k < 2; k++)
        for (int logy = 0; logy < 2; logy++)
            for (int r = 0; r < 2; r++) {
                lg_dtype dt = dtypes[k];
                double row[2][3] = { { 1, INFINITY, 0 }, { INFINITY, -INFINITY, 0 } };
                lg_tensor *x = from_doubles(ctx, dt, row[r], 1, SHAPE(3));
                lg_requires_grad(ctx, x, true);
                lg_tensor *y = logy ? lg_log_softmax(ctx, x, 0) : lg_softmax(ctx, x, 0);
                expect_close(y, nan3, 3, 0, logy ? "log_softmax" : "softmax");
                cr_assert_eq(
                    lg_backward_with(
                        ctx, y, from_doubles(ctx, dt, (double[]){ 0.3, -1, 0.5 }, 1, SHAPE(3))),
                    LG_OK);
                expect_close(lg_tensor_grad(x), nan3, 3, 0, "its gradient");
                lg_step_end(ctx);
            }
    lg_tensor *x = from_doubles(ctx, LG_F64, (double[]){ 1, -INFINITY, 0 }, 1, SHAPE(3));
    lg_requires_grad(ctx, x, true);
    lg_tensor *y = lg_softmax(ctx, x, 0);
    expect_close(y, (double[]){ 0.7310585786300049, 0, 0.26894142136999516 }, 3, 1e-15,
                 "softmax with -inf");
    lg_backward_with(ctx, y, from_doubles(ctx, LG_F64, (double[]){ 0.3, -1, 0.5 }, 1, SHAPE(3)));
    expect_close(lg_tensor_grad(x), (double[]){ -0.039322386648296404, 0, 0.03932238664829637 }, 3,
                 1e-15, "its gradient");
    lg_ctx_free(ctx);
}

/* F15: a NaN bound makes every element NaN with gradient 0, as torch.clamp
 * given both bounds: torch.clamp(x, nan, 1.0), (0.0, nan), (nan, nan),
 * (-inf, nan), (nan, inf) of x = [-2, 0, 0.5, 1, 3, nan, inf, -inf] are all
 * nan and x.grad all 0, float32 and float64. Ordinary bounds as before:
 * torch.clamp(x, 0.0, 1.0) = [0, 0, 0.5, 1, 1, nan, 1, 0], grad
 * [0, 1, 1, 1, 0, 0, 0, 0]. */
Test(hardening, F15_clamp_nan_bound)
{
    lg_ctx *ctx = test_ctx(1);
    const double xs[8] = { -2, 0, 0.5, 1, 3, NAN, INFINITY, -INFINITY };
    const double bounds[5][2] = {
        { NAN, 1 }, { 0, NAN }, { NAN, NAN }, { -INFINITY, NAN }, { NAN, INFINITY }
    };
    const double nan8[8] = { NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN }, zero8[8] = { 0 };
    for (int k = 0; k < 2; k++) {
        for (int b = 0; b < 5; b++) {
            lg_tensor *x = from_doubles(ctx, dtypes[k], xs, 1, SHAPE(8));
            lg_requires_grad(ctx, x, true);
            lg_tensor *y = lg_clamp(ctx, x, bounds[b][0], bounds[b][1]);
            expect_close(y, nan8, 8, 0, "clamp with a NaN bound");
            cr_assert_eq(lg_backward_with(ctx, y, lg_ones(ctx, dtypes[k], 1, SHAPE(8))), LG_OK);
            expect_close(lg_tensor_grad(x), zero8, 8, 0, "its gradient");
            lg_step_end(ctx);
        }
        lg_tensor *x = from_doubles(ctx, dtypes[k], xs, 1, SHAPE(8));
        lg_requires_grad(ctx, x, true);
        lg_tensor *y = lg_clamp(ctx, x, 0, 1);
        expect_close(y, (double[]){ 0, 0, 0.5, 1, 1, NAN, 1, 0 }, 8, 0, "clamp(x, 0, 1)");
        lg_backward_with(ctx, y, lg_ones(ctx, dtypes[k], 1, SHAPE(8)));
        expect_close(lg_tensor_grad(x), (double[]){ 0, 1, 1, 1, 0, 0, 0, 0 }, 8, 0, "its gradient");
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

/* multi_margin_loss of a 0-d input is one class: F.multi_margin_loss(
 * torch.tensor(0.5), torch.tensor(0), reduction=r) is 0 with gradient 0 for
 * every r (and x = -3), p=2 and margin 2, and weight [3]; a [1] target gives a [1] loss
 * under 'none'; targets 1, -1 and 5 raise "target out of range". */
Test(hardening, pytorch_multi_margin_0d)
{
    lg_ctx *ctx = test_ctx(1);
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < 3; r++) /* MEAN, SUM, NONE */
            for (int v = 0; v < 3; v++) {
                lg_dtype dt = dtypes[k];
                lg_tensor *x = from_doubles(ctx, dt, (double[]){ v == 1 ? -3.0 : 0.5 }, 0, NULL);
                lg_requires_grad(ctx, x, true);
                lg_tensor *w = from_doubles(ctx, dt, (double[]){ 3 }, 1, SHAPE(1));
                /* (p = 2 and margin 2, also 0, are in tests/fixtures/losses.txt) */
                lg_multi_margin_opts o = lg_multi_margin_opts_default();
                o.reduction = reductions[r];
                o.weight = v == 2 ? w : NULL;
                lg_tensor *t = lg_tensor_from(ctx, LG_I64, (int64_t[]){ 0 }, 0, NULL);
                lg_tensor *l = lg_multi_margin_loss(ctx, x, t, &o);
                cr_assert_not_null(l, "%s", lg_ctx_errmsg(ctx));
                cr_assert_eq(lg_tensor_ndim(l), 0);
                expect_close(l, (double[]){ 0 }, 1, 0, "0-d multi margin");
                cr_assert_eq(lg_backward(ctx, l), LG_OK, "%s", lg_ctx_errmsg(ctx));
                expect_close(lg_tensor_grad(x), (double[]){ 0 }, 1, 0, "its gradient");
                lg_tensor *t1 = lg_tensor_from(ctx, LG_I64, (int64_t[]){ 0 }, 1, SHAPE(1));
                lg_tensor *l1 = lg_multi_margin_loss(ctx, x, t1, &o);
                cr_assert_eq(lg_tensor_ndim(l1), reductions[r] == LG_REDUCTION_NONE ? 1 : 0, "%s",
                             lg_ctx_errmsg(ctx));
                expect_close(l1, (double[]){ 0 }, 1, 0, "0-d input, [1] target");
                lg_step_end(ctx);
            }
    lg_tensor *x = from_doubles(ctx, LG_F64, (double[]){ 0.5 }, 0, NULL);
    for (int64_t bad = -1; bad <= 5; bad += 6) {
        lg_tensor *t = lg_tensor_from(ctx, LG_I64, &bad, 0, NULL);
        EXPECT_ERR(ctx, lg_multi_margin_loss(ctx, x, t, NULL), LG_ERR_INDEX,
                   "expected a class in [0, 1)");
    }
    lg_tensor *one = lg_tensor_from(ctx, LG_I64, (int64_t[]){ 1 }, 0, NULL);
    EXPECT_ERR(ctx, lg_multi_margin_loss(ctx, x, one, NULL), LG_ERR_INDEX, "target[0] = 1");
    lg_ctx_free(ctx);
}

/* multilabel_margin_loss of a 0-d input and 0-d target: one class, 0 with
 * gradient 0 for targets 0 and -1 (F.multilabel_margin_loss(torch.tensor(0.5),
 * torch.tensor(t), reduction=r)), every r; targets 1, 5, -2 raise
 * "argument #2 'target' is out of range"; a [1] target with a 0-d input, or
 * a 0-d target with a [1] input, is accepted too (0-d loss). */
Test(hardening, pytorch_multilabel_margin_0d)
{
    lg_ctx *ctx = test_ctx(1);
    for (int k = 0; k < 2; k++)
        for (int r = 0; r < 3; r++) /* MEAN, SUM, NONE */
            for (int64_t tv = -1; tv <= 0; tv++) {
                lg_dtype dt = dtypes[k];
                lg_tensor *x = from_doubles(ctx, dt, (double[]){ -3 }, 0, NULL);
                lg_requires_grad(ctx, x, true);
                lg_tensor *t = lg_tensor_from(ctx, LG_I64, &tv, 0, NULL);
                lg_tensor *l = lg_multilabel_margin_loss(
                    ctx, x, t, &(lg_loss_opts){ .reduction = reductions[r] });
                cr_assert_not_null(l, "%s", lg_ctx_errmsg(ctx));
                cr_assert_eq(lg_tensor_ndim(l), 0);
                expect_close(l, (double[]){ 0 }, 1, 0, "0-d multilabel margin");
                cr_assert_eq(lg_backward(ctx, l), LG_OK, "%s", lg_ctx_errmsg(ctx));
                expect_close(lg_tensor_grad(x), (double[]){ 0 }, 1, 0, "its gradient");
                lg_step_end(ctx);
            }
    lg_tensor *x = from_doubles(ctx, LG_F64, (double[]){ 0.5 }, 0, NULL);
    int64_t bad[3] = { 1, 5, -2 };
    for (int i = 0; i < 3; i++)
        EXPECT_ERR(
            ctx,
            lg_multilabel_margin_loss(ctx, x, lg_tensor_from(ctx, LG_I64, &bad[i], 0, NULL), NULL),
            LG_ERR_INDEX, "expected a class in [0, 1) or -1");
    lg_tensor *l = lg_multilabel_margin_loss(
        ctx, x, lg_tensor_from(ctx, LG_I64, (int64_t[]){ 0 }, 1, SHAPE(1)), NULL);
    cr_assert(l && lg_tensor_ndim(l) == 0 && lg_item(ctx, l) == 0, "%s", lg_ctx_errmsg(ctx));
    lg_tensor *x1 = from_doubles(ctx, LG_F64, (double[]){ 0.5 }, 1, SHAPE(1));
    l = lg_multilabel_margin_loss(ctx, x1, lg_tensor_from(ctx, LG_I64, (int64_t[]){ 0 }, 0, NULL),
                                  NULL);
    cr_assert(l && lg_tensor_ndim(l) == 0 && lg_item(ctx, l) == 0, "%s", lg_ctx_errmsg(ctx));
    /* other shapes still have to match */
    EXPECT_ERR(ctx,
               lg_multilabel_margin_loss(
                   ctx, from_doubles(ctx, LG_F64, (double[]){ 1, 2, 3 }, 1, SHAPE(3)),
                   lg_tensor_from(ctx, LG_I64, (int64_t[]){ 0 }, 0, NULL), NULL),
               LG_ERR_SHAPE, "expected one shape");
    lg_ctx_free(ctx);
}

/* cross_entropy over zero classes. Probability targets: each row is -0,
 * SUM -0, MEAN NaN (PyTorch divides by numel / C = 0 / 0):
 * F.cross_entropy(torch.zeros(2, 0), torch.zeros(2, 0), reduction=r) gives
 * [-0, -0], -0 and nan, with label_smoothing 0.2 and weight [] too, and
 * likewise (2, 0, 3) -> [[-0]*3]*2, -0, nan and (0,) -> -0, -0, nan. Class
 * indices, all ignored: 'none' [0, 0], SUM 0, MEAN nan; with smoothing 0.2
 * every reduction is nan (eps / C = inf times an empty sum). */
Test(hardening, pytorch_cross_entropy_zero_classes)
{
    lg_ctx *ctx = test_ctx(1);
    const double nan = NAN;
    const int64_t shapes[3][3] = { { 2, 0 }, { 2, 0, 3 }, { 0 } };
    const int nds[3] = { 2, 3, 1 };
    const int64_t nrows[3] = { 2, 6, 1 };
    for (int k = 0; k < 2; k++)
        for (int s = 0; s < 3; s++)
            for (int e = 0; e < 2; e++)
                for (int r = 0; r < 3; r++) { /* MEAN, SUM, NONE */
                    lg_dtype dt = dtypes[k];
                    lg_tensor *x = lg_zeros(ctx, dt, nds[s], shapes[s]);
                    lg_tensor *p = lg_zeros(ctx, dt, nds[s], shapes[s]);
                    lg_requires_grad(ctx, x, true);
                    lg_tensor *l = lg_cross_entropy(
                        ctx, x, p,
                        &(lg_ce_opts){ .reduction = reductions[r],
                                       .weight =
                                           s == 0 && e ? lg_zeros(ctx, dt, 1, SHAPE(0)) : NULL,
                                       .ignore_index = -100,
                                       .label_smoothing = e ? 0.2 : 0 });
                    cr_assert_not_null(l, "%s", lg_ctx_errmsg(ctx));
                    if (reductions[r] == LG_REDUCTION_NONE) {
                        double zeros[6] = { 0 };
                        expect_close(l, zeros, nrows[s], 0, "per-row loss");
                    } else {
                        expect_close(l, (double[]){ reductions[r] == LG_REDUCTION_MEAN ? nan : 0 },
                                     1, 0, reductions[r] == LG_REDUCTION_MEAN ? "MEAN" : "SUM");
                        cr_assert_eq(lg_backward(ctx, l), LG_OK, "%s", lg_ctx_errmsg(ctx));
                    }
                    lg_step_end(ctx);
                }
    for (int e = 0; e < 2; e++)
        for (int r = 0; r < 3; r++) { /* MEAN, SUM, NONE */
            lg_tensor *x = lg_zeros(ctx, LG_F64, 2, SHAPE(2, 0));
            lg_tensor *t = lg_tensor_from(ctx, LG_I64, (int64_t[]){ -100, -100 }, 1, SHAPE(2));
            lg_tensor *l = lg_cross_entropy(ctx, x, t,
                                            &(lg_ce_opts){ .reduction = reductions[r],
                                                           .ignore_index = -100,
                                                           .label_smoothing = e ? 0.2 : 0 });
            double v = e || reductions[r] == LG_REDUCTION_MEAN ? nan : 0;
            expect_close(l, (double[]){ v, v }, reductions[r] == LG_REDUCTION_NONE ? 2 : 1, 0,
                         "ignored rows of zero classes");
            lg_step_end(ctx);
        }
    lg_ctx_free(ctx);
}

/* The shape bound holds for empty tensors too: the dims other than 0
 * multiply to at most INT64_MAX / 8, so every product of an empty tensor's
 * dims fits (slice's [0, 2^62, 4] blocks, a sum's kept dims, strides and
 * broadcast rows multiplied past INT64_MAX). Covers lg_gru_gates too: its
 * 3 H and 4 H came from such an h. */
Test(hardening, audit_empty_tensor_dims_bounded)
{
    lg_ctx *ctx = test_ctx(1);
    int64_t q = (int64_t)1 << 62;
    EXPECT_ERR(ctx, lg_zeros(ctx, LG_F32, 3, SHAPE(0, q, 4)), LG_ERR_SHAPE,
               "lg_zeros: shape has too many elements");
    EXPECT_ERR(ctx, lg_zeros(ctx, LG_F32, 2, SHAPE(0, INT64_MAX)), LG_ERR_SHAPE,
               "too many elements");
    EXPECT_ERR(ctx, lg_tensor_from(ctx, LG_F32, NULL, 3, SHAPE(q, 0, q)), LG_ERR_SHAPE,
               "lg_tensor_from: shape has too many elements");
    EXPECT_ERR(ctx, lg_param_new(ctx, "p", LG_F64, 2, SHAPE(INT64_MAX, 0)), LG_ERR_SHAPE,
               "lg_param_new: shape has too many elements");
    lg_tensor *e = lg_zeros(ctx, LG_F32, 1, SHAPE(0));
    EXPECT_ERR(ctx, lg_reshape(ctx, e, 3, SHAPE(q, 0, q)), LG_ERR_SHAPE,
               "lg_reshape: shape has too many elements");
    EXPECT_ERR(ctx, lg_one_hot(ctx, lg_zeros(ctx, LG_I64, 1, SHAPE(0)), INT64_MAX, LG_F32),
               LG_ERR_SHAPE, "lg_one_hot: shape has too many elements");
    EXPECT_ERR(ctx, lg_zeros(ctx, LG_F64, 2, SHAPE(0, (int64_t)1 << 61)), LG_ERR_SHAPE,
               "too many elements");
    /* at the bound an empty tensor is fine */
    lg_tensor *b = lg_zeros(ctx, LG_F32, 3, SHAPE(0, (int64_t)1 << 57, 4));
    cr_assert_not_null(b, "%s", lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
}

/* Op i of the test below on x [2^56, 4, 0] and z [2^56, 0, 4]. */
static lg_tensor *empty_op(lg_ctx *ctx, int i, lg_tensor *x, lg_tensor *z)
{
    int64_t big = lg_tensor_dim(x, 0);
    switch (i) {
    case 0: return lg_slice(ctx, x, 1, 0, 2, 1);
    case 1: return lg_narrow(ctx, z, 2, 1, 2);
    case 2: return lg_concat(ctx, 2, (lg_tensor *[]){ x, x }, 2);
    case 3: return lg_stack(ctx, 2, (lg_tensor *[]){ x, x }, 3);
    case 4:
        return lg_index_select(ctx, x, 1,
                               lg_tensor_from(ctx, LG_I64, (int64_t[]){ 3 }, 1, SHAPE(1)));
    case 5: return lg_softmax(ctx, x, 2);
    case 6: return lg_log_softmax(ctx, z, 1);
    case 7: return lg_matmul(ctx, z, lg_zeros(ctx, LG_F64, 2, SHAPE(4, 3)));
    case 8: return lg_matmul(ctx, z, lg_zeros(ctx, LG_F64, 3, SHAPE(big, 4, 0)));
    default:
        return lg_matmul_bias(ctx, x, lg_zeros(ctx, LG_F64, 2, SHAPE(0, 0)),
                              lg_zeros(ctx, LG_F64, 1, SHAPE(0)), false, false);
    }
}

/* Empty tensors whose other dims multiply to 2^58 (under the bound): every
 * op returns at once, backward too (their loops over 2^56 outer blocks of
 * nothing hung: slice, concat, index_select, softmax, a batched matmul). */
Test(hardening, audit_empty_tensors_with_large_dims_return_at_once, .timeout = 30)
{
    lg_ctx *ctx = test_ctx(1);
    int64_t big = (int64_t)1 << 56;
    const int64_t want[10][4] = { { big, 2, 0 }, { big, 0, 2 }, { big, 4, 0 }, { big, 4, 0, 2 },
                                  { big, 1, 0 }, { big, 4, 0 }, { big, 0, 4 }, { big, 0, 3 },
                                  { big, 0, 0 }, { big, 4, 0 } };
    for (int i = 0; i < 10; i++) {
        lg_tensor *x = lg_zeros(ctx, LG_F64, 3, SHAPE(big, 4, 0));
        lg_tensor *z = lg_zeros(ctx, LG_F64, 3, SHAPE(big, 0, 4));
        lg_requires_grad(ctx, x, true);
        lg_requires_grad(ctx, z, true);
        lg_tensor *y = empty_op(ctx, i, x, z);
        cr_assert_not_null(y, "op %d: %s", i, lg_ctx_errmsg(ctx));
        for (int d = 0; d < lg_tensor_ndim(y); d++)
            cr_assert_eq(lg_tensor_dim(y, d), want[i][d], "op %d: dim %d is %lld", i, d,
                         (long long)lg_tensor_dim(y, d));
        lg_tensor *s = lg_sum(ctx, y, 0, NULL, false);
        cr_assert_eq(lg_backward(ctx, s), LG_OK, "op %d backward: %s", i, lg_ctx_errmsg(ctx));
        cr_assert_eq(get(s, 0), 0.0);
        lg_step_end(ctx);
    }
    lg_ctx_free(ctx);
}

/* lg_concat's sizes along the axis are added with an overflow check: nine
 * empty [0, 2^60 - 1] parts pass INT64_MAX. */
Test(hardening, audit_concat_axis_sizes_overflow)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *p[9];
    for (int i = 0; i < 9; i++)
        p[i] = lg_zeros(ctx, LG_F32, 2, SHAPE(0, INT64_MAX / 8));
    EXPECT_ERR(ctx, lg_concat(ctx, 9, p, 1), LG_ERR_SHAPE,
               "lg_concat: the sizes along axis 1 add up past INT64_MAX (at xs[8])");
    EXPECT_ERR(ctx, lg_concat(ctx, 2, p, 1), LG_ERR_SHAPE, "lg_concat: shape has too many");
    lg_tensor *y = lg_concat(ctx, 9, p, 0); /* along the empty axis: fine */
    cr_assert(y && lg_tensor_dim(y, 0) == 0 && lg_tensor_dim(y, 1) == INT64_MAX / 8, "%s",
              lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
}

/* lg_one_hot's inferred num_classes is the largest label + 1: a label of
 * INT64_MAX has none (it overflowed, and the wrapped count named a bogus
 * num_classes of size 0). */
Test(hardening, audit_one_hot_label_int64_max)
{
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *labels = lg_tensor_from(ctx, LG_I64, (int64_t[]){ 2, INT64_MAX }, 1, SHAPE(2));
    EXPECT_ERR(ctx, lg_one_hot(ctx, labels, -1, LG_F32), LG_ERR_INDEX,
               "lg_one_hot: labels[1] = 9223372036854775807 leaves no num_classes");
    lg_tensor *ok = lg_tensor_from(ctx, LG_I64, (int64_t[]){ 2, 0 }, 1, SHAPE(2));
    lg_tensor *y = lg_one_hot(ctx, ok, -1, LG_F32);
    expect_close(y, (double[]){ 0, 0, 1, 1, 0, 0 }, 6, 0, "one_hot([2, 0])");
    lg_ctx_free(ctx);
}
