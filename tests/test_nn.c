/* test_nn.c: recurrent networks, optimizers and schedules against PyTorch
 * fixtures (tests/fixtures/nn, made by tools/gen_nn_fixtures.py with
 * identical weights), plus layers and initialisers. */
#include "nfile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* RNN / GRU / LSTM                                                     */
/* ------------------------------------------------------------------ */

static void run_rnn_case(const ncase *c, lg_dtype dt)
{
    lg_rnn_kind kind = rnn_kind(key(c, "kind"));
    lg_ctx *ctx = test_ctx(1);
    lg_rnn *net = lg_rnn_new(ctx, "net", kind, (int64_t)keyd(c, "input_size", 0),
                             (int64_t)keyd(c, "hidden", 0),
                             &(lg_rnn_opts){ .dtype = dt,
                                             .num_layers = (int)keyd(c, "layers", 1),
                                             .bidirectional = keyd(c, "bidirectional", 0) != 0 });
    cr_assert_not_null(net, "%s: %s", c->id, lg_ctx_errmsg(ctx));
    expect_rnn_case(ctx, net, kind, c, dt);
}

Test(nn, rnn_gru_lstm_match_pytorch)
{
    nfile nf = read_nfile("rnn.txt");
    cr_assert_geq(nf.ncases, 8);
    for (int i = 0; i < nf.ncases; i++) {
        run_rnn_case(&nf.cases[i], LG_F64);
        run_rnn_case(&nf.cases[i], LG_F32);
    }
    free_nfile(&nf);
}

/* lg_gru_gates against the cell built from primitives (its oracle): in
 * float64 to rounding, in float32 (vector sigmoid and tanh against libm's)
 * within the fixtures' float32 tolerance; saturated gates included. */
static lg_tensor *gru_composite(lg_ctx *ctx, lg_tensor *gi, lg_tensor *gh, lg_tensor *b,
                                lg_tensor *h, int64_t H)
{
    lg_tensor *hb = b ? lg_add(ctx, gh, b) : gh;
#define GATE(t, k) lg_narrow(ctx, t, 1, (k)*H, H)
    lg_tensor *r = lg_sigmoid(ctx, lg_add(ctx, GATE(gi, 0), GATE(hb, 0)));
    lg_tensor *z = lg_sigmoid(ctx, lg_add(ctx, GATE(gi, 1), GATE(hb, 1)));
    lg_tensor *n = lg_tanh(ctx, lg_add(ctx, GATE(gi, 2), lg_mul(ctx, r, GATE(hb, 2))));
#undef GATE
    return lg_add(ctx, lg_mul(ctx, lg_add_scalar(ctx, lg_neg(ctx, z), 1), n), lg_mul(ctx, z, h));
}

Test(nn, gru_gates_match_composite)
{
    const lg_dtype dts[] = { LG_F64, LG_F32 };
    for (int d = 0; d < 2; d++)
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            lg_ctx *ctx = test_ctx(40 + (uint64_t)(2 * d + with_bias));
            int64_t N = 5, H = 4;
            /* two sets of leaves of the same values */
            const int64_t *shapes[4] = { SHAPE(N, 3 * H), SHAPE(N, 3 * H), SHAPE(3 * H),
                                         SHAPE(N, H) };
            const int nds[4] = { 2, 2, 1, 2 };
            const double scale[4] = { 3, 3, 1, 1 };
            lg_tensor *ref[4], *mine[4];
            for (int k = 0; k < 4; k++) {
                lg_tensor *v = lg_randn(ctx, LG_F64, nds[k], shapes[k]);
                double *p = lg_tensor_data(v);
                for (int64_t i = 0; i < lg_tensor_numel(v); i++)
                    p[i] *= scale[k];
                ref[k] = from_doubles(ctx, dts[d], p, nds[k], shapes[k]);
                mine[k] = from_doubles(ctx, dts[d], p, nds[k], shapes[k]);
                lg_requires_grad(ctx, mine[k], true);
                lg_requires_grad(ctx, ref[k], true);
            }
            /* gi, gh, h, then b_hh */
            lg_tensor *const leaves[4][2] = {
                { mine[0], ref[0] }, { mine[1], ref[1] }, { mine[3], ref[3] }, { mine[2], ref[2] }
            };
            lg_tensor *fused =
                lg_gru_gates(ctx, mine[0], mine[1], with_bias ? mine[2] : NULL, mine[3]);
            lg_tensor *comp =
                gru_composite(ctx, ref[0], ref[1], with_bias ? ref[2] : NULL, ref[3], H);
            lg_tensor *u = lg_randn(ctx, dts[d], 2, SHAPE(N, H));
            expect_same_loss(ctx, fused, comp, u, leaves, with_bias ? 4 : 3,
                             dts[d] == LG_F64 ? 1e-13 : 1e-5,
                             with_bias ? "gru gates" : "gru gates without b_hh");
            lg_ctx_free(ctx);
        }
}

Test(nn, gru_gates_argument_errors)
{
    lg_ctx *ctx = test_ctx(44);
    lg_tensor *gi = lg_zeros(ctx, LG_F32, 2, SHAPE(2, 6)),
              *h = lg_zeros(ctx, LG_F32, 2, SHAPE(2, 2));
    EXPECT_LOSS_ERR(ctx, lg_gru_gates(ctx, gi, lg_zeros(ctx, LG_F32, 2, SHAPE(2, 5)), NULL, h),
                    LG_ERR_SHAPE, "lg_gru_gates: gh is float32 [2, 5]");
    EXPECT_LOSS_ERR(ctx, lg_gru_gates(ctx, gi, gi, lg_zeros(ctx, LG_F32, 1, SHAPE(2)), h),
                    LG_ERR_SHAPE, "b_hh");
    EXPECT_LOSS_ERR(ctx, lg_gru_gates(ctx, gi, gi, NULL, lg_zeros(ctx, LG_F64, 2, SHAPE(2, 2))),
                    LG_ERR_DTYPE, "gi is float32");
    EXPECT_LOSS_ERR(ctx, lg_gru_gates(ctx, gi, gi, NULL, NULL), LG_ERR_NULL, "h");
    lg_ctx_free(ctx);
}

/* lg_gru_sequence against the recurrence built step by step from
 * lg_matmul_t, lg_gru_gates and lg_where (its oracle, the path rnn.c took
 * before): states and all four gradients, forward and reverse, with and
 * without lengths, b_hh and h0; float64 to rounding, float32 within the
 * fixtures' tolerance. The padded steps of xw hold NaN: the fused backward
 * must not let them reach any gradient. */
static lg_tensor *gru_sequence_composite(lg_ctx *ctx, lg_tensor *xw, lg_tensor *w, lg_tensor *b,
                                         lg_tensor *h0, const int64_t *len, bool reverse)
{
    const int64_t *s = lg_tensor_shape(xw);
    int64_t T = s[0], N = s[1], H = s[2] / 3;
    lg_dtype dt = lg_tensor_dtype(xw);
    lg_tensor *h = h0 ? h0 : lg_zeros(ctx, dt, 2, SHAPE(N, H));
    lg_tensor *steps[8];
    cr_assert_leq(T, 8);
    for (int64_t k = 0; k < T; k++) {
        int64_t t = reverse ? T - 1 - k : k;
        lg_tensor *xt = lg_reshape(ctx, lg_narrow(ctx, xw, 0, t, 1), 2, SHAPE(N, 3 * H));
        lg_tensor *hn = lg_gru_gates(ctx, xt, lg_matmul_t(ctx, h, w, false, true), b, h);
        if (len) {
            double mv[8];
            cr_assert_leq(N, 8);
            for (int64_t i = 0; i < N; i++)
                mv[i] = t < len[i];
            lg_tensor *m = from_doubles(ctx, dt, mv, 2, SHAPE(N, 1));
            hn = lg_where(ctx, m, hn, h);
        }
        steps[t] = h = hn;
    }
    return lg_stack(ctx, (int)T, steps, 0);
}

Test(nn, gru_sequence_matches_composite)
{
    const lg_dtype dts[] = { LG_F64, LG_F32 };
    const int64_t T = 4, N = 3, H = 5, len[] = { 4, 1, 3 };
    for (int v = 0; v < 16; v++) {
        lg_dtype dt = dts[v & 1];
        bool reverse = v & 2, lengths = v & 4, extras = v & 8; /* extras: b_hh and h0 */
        lg_ctx *ctx = test_ctx(60 + (uint64_t)v);
        const int64_t *shapes[4] = { SHAPE(T, N, 3 * H), SHAPE(3 * H, H), SHAPE(3 * H),
                                     SHAPE(N, H) };
        const int nds[4] = { 3, 2, 1, 2 };
        const double scale[4] = { 2, 0.6, 1, 1 };
        lg_tensor *ref[4], *mine[4];
        for (int k = 0; k < 4; k++) {
            lg_tensor *t = lg_randn(ctx, LG_F64, nds[k], shapes[k]);
            double *p = lg_tensor_data(t);
            for (int64_t i = 0; i < lg_tensor_numel(t); i++)
                p[i] *= scale[k];
            ref[k] = from_doubles(ctx, dt, p, nds[k], shapes[k]);
            /* the padded steps of the fused input hold NaN (the composite's
             * where() would pass NaN into its own gradients, so it keeps
             * the values) */
            for (int64_t st = 0; k == 0 && lengths && st < T; st++)
                for (int64_t i = 0; i < N; i++)
                    for (int64_t j = 0; st >= len[i] && j < 3 * H; j++)
                        p[(st * N + i) * 3 * H + j] = NAN;
            mine[k] = from_doubles(ctx, dt, p, nds[k], shapes[k]);
            lg_requires_grad(ctx, ref[k], true);
            lg_requires_grad(ctx, mine[k], true);
        }
        lg_tensor *lt = NULL;
        if (lengths) {
            lt = lg_zeros(ctx, LG_I64, 1, SHAPE(N));
            memcpy(lg_tensor_data(lt), len, sizeof len);
        }
        lg_tensor *const leaves[4][2] = {
            { mine[0], ref[0] }, { mine[1], ref[1] }, { mine[2], ref[2] }, { mine[3], ref[3] }
        };
        lg_tensor *fused = lg_gru_sequence(ctx, mine[0], mine[1], extras ? mine[2] : NULL,
                                           extras ? mine[3] : NULL, lt, reverse);
        lg_tensor *comp =
            gru_sequence_composite(ctx, ref[0], ref[1], extras ? ref[2] : NULL,
                                   extras ? ref[3] : NULL, lengths ? len : NULL, reverse);
        lg_tensor *u = lg_randn(ctx, dt, 3, SHAPE(T, N, H));
        char what[96];
        snprintf(what, sizeof what, "gru sequence (%s%s%s%s)", dt == LG_F32 ? "float32" : "float64",
                 reverse ? ", reverse" : "", lengths ? ", lengths" : "",
                 extras ? ", b_hh and h0" : "");
        /* the padded entries of xw get no gradient: the composite's are
         * zero there too (where() sends them nothing) */
        expect_same_loss(ctx, fused, comp, u, leaves, extras ? 4 : 2, dt == LG_F64 ? 1e-12 : 1e-5,
                         what);
        lg_ctx_free(ctx);
    }
}

/* A gradcheck through xw, w_hh, b_hh and h0 with lengths, reverse. */
static lg_tensor *gru_sequence_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    return lg_gru_sequence(ctx, xs[0], xs[1], xs[2], xs[3], user, true);
}

Test(nn, gru_sequence_gradcheck)
{
    lg_ctx *ctx = test_ctx(77);
    lg_tensor *len = lg_zeros(ctx, LG_I64, 1, SHAPE(2));
    ((int64_t *)lg_tensor_data(len))[0] = 3;
    ((int64_t *)lg_tensor_data(len))[1] = 2;
    lg_tensor *xs[] = { lg_randn(ctx, LG_F64, 3, SHAPE(3, 2, 6)),
                        lg_randn(ctx, LG_F64, 2, SHAPE(6, 2)), lg_randn(ctx, LG_F64, 1, SHAPE(6)),
                        lg_randn(ctx, LG_F64, 2, SHAPE(2, 2)) };
    expect_gradcheck(ctx, gru_sequence_apply, len, 4, xs, "gru_sequence");
    lg_ctx_free(ctx);
}

Test(nn, gru_sequence_argument_errors)
{
    lg_ctx *ctx = test_ctx(45);
    lg_tensor *xw = lg_zeros(ctx, LG_F32, 3, SHAPE(4, 2, 6)),
              *w = lg_zeros(ctx, LG_F32, 2, SHAPE(6, 2)), *len = lg_zeros(ctx, LG_I64, 1, SHAPE(2));
    EXPECT_LOSS_ERR(
        ctx,
        lg_gru_sequence(ctx, lg_zeros(ctx, LG_F32, 3, SHAPE(4, 2, 5)), w, NULL, NULL, NULL, false),
        LG_ERR_SHAPE, "lg_gru_sequence: xw is [4, 2, 5], expected [T, N, 3H]");
    EXPECT_LOSS_ERR(
        ctx,
        lg_gru_sequence(ctx, xw, lg_zeros(ctx, LG_F32, 2, SHAPE(2, 6)), NULL, NULL, NULL, false),
        LG_ERR_SHAPE, "w_hh is float32 [2, 6], expected float32 [6, 2]");
    EXPECT_LOSS_ERR(
        ctx, lg_gru_sequence(ctx, xw, w, lg_zeros(ctx, LG_F64, 1, SHAPE(6)), NULL, NULL, false),
        LG_ERR_DTYPE, "b_hh is float64");
    EXPECT_LOSS_ERR(
        ctx, lg_gru_sequence(ctx, xw, w, NULL, lg_zeros(ctx, LG_F32, 2, SHAPE(3, 2)), NULL, false),
        LG_ERR_SHAPE, "h0 is float32 [3, 2], expected float32 [2, 2]");
    EXPECT_LOSS_ERR(ctx, lg_gru_sequence(ctx, xw, w, NULL, NULL, len, false), LG_ERR_VALUE,
                    "lengths[0] = 0, expected in [1, 4]");
    EXPECT_LOSS_ERR(ctx, lg_gru_sequence(ctx, xw, NULL, NULL, NULL, NULL, false), LG_ERR_NULL,
                    "w_hh");
    lg_ctx_free(ctx);
}

Test(nn, padded_steps_get_no_gradient)
{
    lg_ctx *ctx = test_ctx(2);
    lg_rnn *net =
        lg_rnn_new(ctx, "gru", LG_GRU, 3, 4,
                   &(lg_rnn_opts){ .dtype = LG_F64, .num_layers = 1, .bidirectional = true });
    lg_tensor *x = lg_randn(ctx, LG_F64, 3, SHAPE(5, 2, 3));
    lg_requires_grad(ctx, x, true);
    int64_t lens[] = { 5, 3 };
    lg_rnn_result r;
    cr_assert_eq(lg_rnn_forward(ctx, net, x, T_FROM(ctx, LG_I64, lens, 2), NULL, NULL, &r), LG_OK);
    cr_assert_eq(lg_backward(ctx, lg_sum(ctx, r.output, 0, NULL, false)), LG_OK);
    lg_tensor *g = lg_tensor_grad(x);
    for (int t = 3; t < 5; t++)
        for (int f = 0; f < 3; f++)
            cr_assert_eq(get(g, (t * 2 + 1) * 3 + f), 0.0, "padded step %d got gradient", t);
    for (int t = 3; t < 5; t++)
        for (int h = 0; h < 8; h++)
            cr_assert_eq(get(r.output, (t * 2 + 1) * 8 + h), 0.0, "padded output is zero");
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Optimizers and schedules                                             */
/* ------------------------------------------------------------------ */

static void run_optim_case(const ncase *c, lg_dtype dt)
{
    const char *k = key(c, "optim");
    lg_optim_kind kind = !strcmp(k, "sgd")     ? LG_SGD
                         : !strcmp(k, "adam")  ? LG_ADAM
                         : !strcmp(k, "adamw") ? LG_ADAMW
                                               : LG_RMSPROP;
    lg_ctx *ctx = test_ctx(1);
    lg_tensor *W = lg_param_new(ctx, "W", dt, 2, SHAPE(3, 2)),
              *b = lg_param_new(ctx, "b", dt, 1, SHAPE(2));
    lg_copy_into(ctx, W, make(ctx, find(c, "W0"), LG_F64));
    lg_copy_into(ctx, b, make(ctx, find(c, "b0"), LG_F64));
    /* PyTorch's defaults for the kind, and what the case sets */
    lg_optim_opts o = lg_optim_opts_default(kind);
    static const char *const keys[] = { "lr",    "weight_decay", "momentum", "dampening",
                                        "beta1", "beta2",        "eps",      "alpha" };
    double *fields[] = { &o.lr,    &o.weight_decay, &o.momentum, &o.dampening,
                         &o.beta1, &o.beta2,        &o.eps,      &o.alpha };
    for (int f = 0; f < 8; f++)
        if (key(c, keys[f]))
            *fields[f] = keyd(c, keys[f], 0);
    o.nesterov = keyd(c, "nesterov", 0) != 0;
    o.amsgrad = keyd(c, "amsgrad", 0) != 0;
    o.centered = keyd(c, "centered", 0) != 0;
    lg_optim *opt = lg_optim_new(ctx, &o);
    cr_assert_not_null(opt, "%s: %s", c->id, lg_ctx_errmsg(ctx));
    lg_step_end(ctx);
    const ntensor *tw = find(c, "traj.W"), *tb = find(c, "traj.b"), *tloss = find(c, "loss");
    for (int s = 0; s < 20; s++) {
        lg_tensor *X = make(ctx, find(c, "X"), dt), *Y = make(ctx, find(c, "Y"), dt);
        lg_tensor *loss =
            lg_mean(ctx, lg_square(ctx, lg_sub(ctx, lg_add(ctx, lg_matmul(ctx, X, W), b), Y)), 0,
                    NULL, false);
        cr_assert_eq(lg_backward(ctx, loss), LG_OK);
        cr_assert_eq(lg_optim_step(opt), LG_OK);
        ntensor wstep = { .ndim = 2, .shape = { 3, 2 }, .numel = 6, .v = tw->v + 6 * s };
        ntensor bstep = { .ndim = 1, .shape = { 2 }, .numel = 2, .v = tb->v + 2 * s };
        ntensor lstep = { .ndim = 0, .numel = 1, .v = tloss->v + s };
        char what[32];
        snprintf(what, sizeof what, "step %d W", s);
        expect_fixture(W, &wstep, dt, c->id, what);
        snprintf(what, sizeof what, "step %d b", s);
        expect_fixture(b, &bstep, dt, c->id, what);
        snprintf(what, sizeof what, "step %d loss", s);
        expect_fixture(loss, &lstep, dt, c->id, what);
        lg_zero_grad(ctx);
        lg_step_end(ctx);
    }
    cr_assert_eq(lg_optim_steps(opt), 20);
    lg_ctx_free(ctx);
}

Test(nn, optimizer_trajectories_match_pytorch)
{
    nfile nf = read_nfile("optim.txt");
    cr_assert_geq(nf.ncases, 12);
    for (int i = 0; i < nf.ncases; i++) {
        run_optim_case(&nf.cases[i], LG_F64);
        run_optim_case(&nf.cases[i], LG_F32);
    }
    free_nfile(&nf);
}

Test(nn, schedules_match_pytorch)
{
    nfile nf = read_nfile("sched.txt");
    cr_assert_geq(nf.ncases, 5);
    for (int i = 0; i < nf.ncases; i++) {
        const ncase *c = &nf.cases[i];
        const char *k = key(c, "sched");
        lg_ctx *ctx = test_ctx(1);
        lg_param_new(ctx, "p", LG_F64, 1, SHAPE(1));
        lg_optim *opt =
            lg_optim_new(ctx, &(lg_optim_opts){ .kind = LG_SGD, .lr = keyd(c, "lr", 0) });
        lg_sched_kind kind = !strcmp(k, "step")          ? LG_SCHED_STEP
                             : !strcmp(k, "exponential") ? LG_SCHED_EXPONENTIAL
                             : !strcmp(k, "cosine")      ? LG_SCHED_COSINE
                                                         : LG_SCHED_LINEAR;
        lg_sched_opts so = lg_sched_opts_default(kind); /* and what the case sets */
        if (key(c, "step_size"))
            so.step_size = (int64_t)keyd(c, "step_size", 0);
        if (key(c, "gamma"))
            so.gamma = keyd(c, "gamma", 0);
        if (key(c, "t_max"))
            so.t_max = (int64_t)keyd(c, "t_max", 0);
        if (key(c, "eta_min"))
            so.eta_min = keyd(c, "eta_min", 0);
        if (key(c, "total_iters"))
            so.total_iters = (int64_t)keyd(c, "total_iters", 0);
        if (key(c, "start_factor"))
            so.start_factor = keyd(c, "start_factor", 0);
        if (key(c, "end_factor"))
            so.end_factor = keyd(c, "end_factor", 0);
        lg_sched *s = lg_sched_new(ctx, opt, &so);
        cr_assert_not_null(s, "%s: %s", c->id, lg_ctx_errmsg(ctx));
        const ntensor *lrs = find(c, "lrs");
        for (int64_t e = 0; e < lrs->numel; e++) {
            double got = e == 0 ? lg_optim_lr(opt) : lg_sched_step(s), want = lrs->v[e];
            cr_assert(fabs(got - want) <= 1e-15 + 1e-13 * fabs(want),
                      "%s: step %lld lr %.17g, expected %.17g", c->id, (long long)e, got, want);
        }
        lg_ctx_free(ctx);
    }
    free_nfile(&nf);
}

Test(nn, clipping)
{
    lg_ctx *ctx = test_ctx(3);
    lg_tensor *a = lg_param_new(ctx, "a", LG_F64, 1, SHAPE(2)),
              *b = lg_param_new(ctx, "b", LG_F64, 1, SHAPE(1));
    double av[] = { 3, 0 }, bv[] = { 4 };
    lg_copy_into(ctx, a, from_doubles(ctx, LG_F64, av, 1, SHAPE(2)));
    lg_copy_into(ctx, b, from_doubles(ctx, LG_F64, bv, 1, SHAPE(1)));
    /* loss = (a.a + b.b)/2: gradients equal the values, total norm 5 */
    lg_tensor *loss = lg_mul_scalar(ctx,
                                    lg_add(ctx, lg_sum(ctx, lg_square(ctx, a), 0, NULL, false),
                                           lg_sum(ctx, lg_square(ctx, b), 0, NULL, false)),
                                    0.5);
    cr_assert_eq(lg_backward(ctx, loss), LG_OK);
    double total = lg_clip_grad_norm(ctx, 1.0, 2); /* once: the macro evaluates twice */
    cr_assert_float_eq(total, 5.0, 1e-12);
    double c = 1.0 / (5 + 1e-6);
    expect_close(lg_tensor_grad(a), (double[]){ 3 * c, 0 }, 2, 1e-14, "clipped a");
    expect_close(lg_tensor_grad(b), (double[]){ 4 * c }, 1, 1e-14, "clipped b");
    cr_assert_eq(lg_clip_grad_value(ctx, 0.5), LG_OK);
    expect_close(lg_tensor_grad(b), (double[]){ 0.5 }, 1, 0, "value clip");
    cr_assert(isnan(lg_clip_grad_norm(ctx, -1, 2)));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_VALUE);
    lg_ctx_free(ctx);

    /* float32, long gradients: the norm in double; under max_norm the
     * gradients are left as they are, over it scaled */
    ctx = test_ctx(3);
    enum { N = 1000 };
    lg_tensor *p = lg_param_new(ctx, "p", LG_F32, 1, SHAPE(N));
    lg_tensor *u = lg_randn(ctx, LG_F32, 1, SHAPE(N));
    cr_assert_eq(lg_backward(ctx, lg_sum(ctx, lg_mul(ctx, p, u), 0, NULL, false)), LG_OK);
    const float *g = lg_tensor_data(lg_tensor_grad(p)), *uv = lg_tensor_data(u);
    double want = 0;
    for (int i = 0; i < N; i++)
        want += (double)uv[i] * uv[i];
    want = sqrt(want);
    cr_assert_float_eq(lg_clip_grad_norm(ctx, 2 * want, 2), want, 1e-12 * want);
    for (int i = 0; i < N; i++)
        cr_assert(g[i] == uv[i], "unclipped gradient %d changed", i);
    double got = lg_clip_grad_norm(ctx, 1.0, 2);
    cr_assert_float_eq(got, want, 1e-12 * want);
    double c2 = 1.0 / (got + 1e-6); /* PyTorch's coefficient from the norm found */
    for (int i = 0; i < N; i++)
        cr_assert(g[i] == (float)((double)uv[i] * c2), "clipped gradient %d", i);
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Layers and initialisers                                              */
/* ------------------------------------------------------------------ */

Test(nn, linear_layout_init_and_forward)
{
    lg_ctx *ctx = test_ctx(4);
    lg_linear *l = lg_linear_new(ctx, "fc", 5, 3, &(lg_linear_opts){ .dtype = LG_F64 });
    cr_assert_not_null(l);
    cr_assert_eq(lg_tensor_shape(l->weight)[0], 3, "PyTorch layout [out, in]");
    cr_assert_eq(lg_param_find(ctx, "fc.weight"), l->weight);
    cr_assert_eq(lg_param_find(ctx, "fc.bias"), l->bias);
    double bound = 1 / sqrt(5.0);
    for (int i = 0; i < 15; i++)
        cr_assert(fabs(get(l->weight, i)) <= bound);
    lg_tensor *x = lg_randn(ctx, LG_F64, 2, SHAPE(4, 5));
    lg_tensor *y = lg_linear_forward(ctx, l, x);
    double want[12];
    for (int n = 0; n < 4; n++)
        for (int o = 0; o < 3; o++) {
            double s = get(l->bias, o);
            for (int i = 0; i < 5; i++)
                s += get(x, n * 5 + i) * get(l->weight, o * 5 + i);
            want[n * 3 + o] = s;
        }
    expect_close(y, want, 12, 1e-13, "linear");
    lg_tensor *y1 =
        lg_linear_forward(ctx, l, lg_narrow(ctx, lg_reshape(ctx, x, 1, SHAPE(20)), 0, 0, 5));
    cr_assert_eq(lg_tensor_ndim(y1), 1);
    expect_close(y1, want, 3, 1e-13, "linear on a vector");
    cr_assert_null(lg_linear_forward(ctx, l, lg_randn(ctx, LG_F64, 2, SHAPE(4, 4))));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_SHAPE);
    lg_ctx_free(ctx);
}

Test(nn, embedding_dropout_mlp)
{
    lg_ctx *ctx = test_ctx(5);
    lg_embedding *e = lg_embedding_new(ctx, "emb", 6, 2, &(lg_embedding_opts){ .dtype = LG_F64 });
    int64_t idx[] = { 5, 0, 5 };
    lg_tensor *v = lg_embedding_forward(ctx, e, T_FROM(ctx, LG_I64, idx, 3, 1));
    cr_assert_eq(lg_tensor_ndim(v), 3);
    expect_close(v,
                 (double[]){ get(e->weight, 10), get(e->weight, 11), get(e->weight, 0),
                             get(e->weight, 1), get(e->weight, 10), get(e->weight, 11) },
                 6, 0, "embedding rows");
    int64_t bad[] = { 6 };
    cr_assert_null(lg_embedding_forward(ctx, e, T_FROM(ctx, LG_I64, bad, 1)));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_INDEX);
    lg_ctx_clear_error(ctx);
    /* dropout: about p zeroed, the rest scaled by 1/(1-p); identity in eval mode */
    lg_tensor *ones = lg_ones(ctx, LG_F64, 1, SHAPE(10000));
    lg_tensor *d = lg_dropout(ctx, ones, 0.3);
    int zeros = 0;
    for (int i = 0; i < 10000; i++) {
        double x = get(d, i);
        zeros += x == 0;
        cr_assert(x == 0 || fabs(x - 1 / 0.7) < 1e-15);
    }
    cr_assert(abs(zeros - 3000) < 200, "%d zeroed", zeros);
    lg_ctx_set_training(ctx, false);
    cr_assert_eq(lg_dropout(ctx, ones, 0.3), ones);
    lg_ctx_set_training(ctx, true);
    cr_assert_null(lg_dropout(ctx, ones, 1.5));
    lg_ctx_clear_error(ctx);
    lg_mlp *m = lg_mlp_new(ctx, "mlp", 3, SHAPE(4, 8, 2),
                           &(lg_mlp_opts){ .dtype = LG_F64, .activation = LG_ACT_TANH });
    cr_assert_not_null(m);
    cr_assert_not_null(lg_param_find(ctx, "mlp.1.bias"));
    lg_tensor *y = lg_mlp_forward(ctx, m, lg_randn(ctx, LG_F64, 2, SHAPE(3, 4)));
    cr_assert_eq(lg_tensor_shape(y)[1], 2);
    expect_ok(ctx);
    lg_ctx_free(ctx);
}

Test(nn, initialisers_follow_pytorch_formulas)
{
    lg_ctx *ctx = test_ctx(6);
    cr_assert_float_eq(lg_init_gain(LG_NL_TANH, 0), 5.0 / 3, 1e-15);
    cr_assert_float_eq(lg_init_gain(LG_NL_LEAKY_RELU, sqrt(5.0)), sqrt(1.0 / 3), 1e-15);
    lg_tensor *w = lg_param_new(ctx, "w", LG_F64, 4, SHAPE(64, 32, 3, 3));
    /* fan_in = 32*9 = 288, fan_out = 64*9 = 576 */
    double b = sqrt(6.0 / (288 + 576));
    cr_assert_eq(lg_init_xavier_uniform(ctx, w, 1), LG_OK);
    double mx = 0, sum2 = 0;
    int64_t n = lg_tensor_numel(w);
    for (int64_t i = 0; i < n; i++)
        mx = fmax(mx, fabs(get(w, i)));
    cr_assert(mx <= b && mx > 0.95 * b, "xavier bound %g vs %g", mx, b);
    cr_assert_eq(lg_init_kaiming_normal(ctx, w, 0, LG_FAN_OUT, LG_NL_RELU), LG_OK);
    for (int64_t i = 0; i < n; i++)
        sum2 += get(w, i) * get(w, i);
    double std = sqrt(sum2 / (double)n), want = sqrt(2.0) / sqrt(576.0);
    cr_assert(fabs(std - want) < 0.03 * want, "kaiming std %g vs %g", std, want);
    cr_assert_eq(lg_init_constant(ctx, w, 0.5), LG_OK);
    cr_assert_eq(get(w, 7), 0.5);
    cr_assert_eq(lg_init_kaiming_uniform(ctx, lg_param_new(ctx, "v", LG_F64, 1, SHAPE(3)), 0,
                                         LG_FAN_IN, LG_NL_RELU),
                 LG_ERR_SHAPE);
    lg_ctx_free(ctx);
}

Test(nn, same_seed_same_model)
{
    double first[12];
    for (int run = 0; run < 2; run++) {
        lg_ctx *ctx = test_ctx(77);
        lg_rnn *r = lg_rnn_new(ctx, "lstm", LG_LSTM, 2, 3,
                               &(lg_rnn_opts){ .dtype = LG_F64, .num_layers = 1 });
        cr_assert_not_null(r);
        lg_tensor *w = lg_param_find(ctx, "lstm.weight_hh_l0");
        for (int i = 0; i < 12; i++) {
            if (run == 0)
                first[i] = get(w, i);
            else
                cr_assert_eq(get(w, i), first[i]);
        }
        lg_ctx_free(ctx);
    }
}

Test(nn, argument_errors)
{
    lg_ctx *ctx = test_ctx(8);
    cr_assert_null(lg_linear_new(ctx, "fc", 0, 3, NULL));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_VALUE);
    lg_ctx_clear_error(ctx);
    lg_optim_opts bad = lg_optim_opts_default(LG_ADAM);
    bad.lr = -1;
    cr_assert_null(lg_optim_new(ctx, &bad));
    cr_assert(strstr(lg_ctx_errmsg(ctx), "lg_optim_new: lr = -1") != NULL, "%s",
              lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    cr_assert_null(
        lg_optim_new(ctx, &(lg_optim_opts){ .kind = LG_SGD, .lr = 0.1, .nesterov = true }));
    cr_assert(strstr(lg_ctx_errmsg(ctx), "nesterov") != NULL, "%s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    lg_rnn *r = lg_rnn_new(ctx, "gru", LG_GRU, 3, 2, NULL);
    lg_rnn_result out;
    cr_assert_eq(
        lg_rnn_forward(ctx, r, lg_randn(ctx, LG_F32, 3, SHAPE(4, 2, 5)), NULL, NULL, NULL, &out),
        LG_ERR_SHAPE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "x must be [T, N, 3]") != NULL, "%s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    int64_t lens[] = { 5, 1 };
    cr_assert_eq(lg_rnn_forward(ctx, r, lg_randn(ctx, LG_F32, 3, SHAPE(4, 2, 3)),
                                T_FROM(ctx, LG_I64, lens, 2), NULL, NULL, &out),
                 LG_ERR_VALUE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "lengths[0] = 5, expected in [1, 4]") != NULL, "%s",
              lg_ctx_errmsg(ctx));
    cr_assert_null(out.output, "no partial result on error");
    lg_ctx_clear_error(ctx);
    lg_tensor *w = lg_param_find(ctx, "gru.weight_ih_l0");
    cr_assert_not_null(w);
    lg_optim *opt = lg_optim_new(
        ctx, &(lg_optim_opts){ .kind = LG_SGD, .lr = 0.1, .params = &w, .nparams = 1 });
    cr_assert_not_null(opt);
    cr_assert_eq(lg_optim_step(opt), LG_OK, "no gradient yet: nothing to do");
    cr_assert_eq(lg_optim_steps(opt), 0);
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Convolution and normalisation layers, buffers                        */
/* ------------------------------------------------------------------ */

Test(nn, conv_layers_layout_init_and_forward)
{
    lg_ctx *ctx = test_ctx(31);
    lg_conv_opts co = lg_conv_opts_default();
    co.groups = 2, co.padding = 1;
    lg_conv *c = lg_conv2d_new(ctx, "conv1", 4, 6, 3, 2, &co, NULL);
    lg_conv *t = lg_conv_transpose2d_new(ctx, "up", 6, 2, 2, 2, NULL, NULL);
    lg_conv *c1 = lg_conv1d_new(ctx, "c1", 3, 5, 4, NULL,
                                &(lg_conv_layer_opts){ .dtype = LG_F64, .no_bias = true });
    expect_ok(ctx);
    cr_assert_eq(lg_param_find(ctx, "conv1.weight"), c->weight);
    cr_assert_eq(lg_param_find(ctx, "up.bias"), t->bias);
    cr_assert_null(c1->bias);
    static const int64_t cw[] = { 6, 2, 3, 2 }, tw[] = { 6, 2, 2, 2 }, c1w[] = { 5, 3, 4 };
    for (int d = 0; d < 4; d++) {
        cr_assert_eq(lg_tensor_shape(c->weight)[d], cw[d]);
        cr_assert_eq(lg_tensor_shape(t->weight)[d], tw[d]);
    }
    for (int d = 0; d < 3; d++)
        cr_assert_eq(lg_tensor_shape(c1->weight)[d], c1w[d]);
    /* U(+-1/sqrt(fan_in)), fan_in = weight.shape[1] * kernel size */
    struct {
        lg_tensor *p;
        double fan_in;
    } b[] = { { c->weight, 2 * 6 },
              { c->bias, 2 * 6 },
              { t->weight, 2 * 4 },
              { t->bias, 2 * 4 },
              { c1->weight, 3 * 4 } };
    for (int i = 0; i < 5; i++) {
        double bound = 1 / sqrt(b[i].fan_in), mx = 0;
        for (int64_t k = 0; k < lg_tensor_numel(b[i].p); k++)
            mx = fmax(mx, fabs(get(b[i].p, k)));
        cr_assert(mx <= bound && mx > 0.5 * bound, "tensor %d: max |w| %g, bound %g", i, mx, bound);
    }
    /* forward is the primitive with the layer's parameters and options */
    lg_tensor *x = lg_randn(ctx, LG_F32, 4, SHAPE(2, 4, 5, 5));
    lg_tensor *y = lg_conv_forward(ctx, c, x), *z = lg_conv2d(ctx, x, c->weight, c->bias, &co);
    cr_assert_eq(lg_tensor_dim(y, 3), 6); /* 5 + 2 - 2 + 1 */
    for (int64_t i = 0; i < lg_tensor_numel(y); i++)
        cr_assert_eq(get(y, i), get(z, i));
    lg_tensor *u = lg_conv_forward(ctx, t, y);
    cr_assert_eq(lg_tensor_dim(u, 1), 2);
    cr_assert_eq(lg_tensor_dim(u, 2), 6);
    expect_ok(ctx);
    /* bad arguments: nothing is made */
    int np = lg_param_count(ctx);
    co.groups = 3;
    cr_assert_null(lg_conv2d_new(ctx, "bad", 4, 6, 3, 3, &co, NULL));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_VALUE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "lg_conv2d_new: groups = 3"), "%s", lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    cr_assert_null(lg_conv1d_new(ctx, "bad", 0, 6, 3, NULL, NULL));
    cr_assert_eq(lg_param_count(ctx), np);
    lg_ctx_free(ctx);
}

/* nn.BatchNorm through lg_batchnorm_forward: the module cases of
 * layers.txt (several training calls, momentum none, evaluation) with the
 * initial parameters and buffers copied in. */
static void run_bn_module_case(const ncase *c, lg_dtype dt)
{
    const ntensor *xs = find(c, "input");
    bool training = keyd(c, "training", 1) != 0, track = keyd(c, "track_running_stats", 1) != 0;
    bool affine = keyd(c, "affine", 1) != 0;
    const char *mom = key(c, "momentum");
    lg_ctx *ctx = test_ctx(1);
    lg_norm_layer_opts o = lg_norm_layer_opts_default();
    o.dtype = dt;
    o.eps = keyd(c, "eps", 1e-5);
    o.affine = affine, o.track_running_stats = track;
    if (mom)
        o.momentum = strcmp(mom, "none") ? strtod(mom, NULL) : LG_MOMENTUM_CUMULATIVE;
    int64_t C = xs->shape[2];
    lg_batchnorm *bn = lg_batchnorm_new(ctx, "bn", C, &o);
    expect_ok(ctx);
    if (affine) {
        lg_copy_into(ctx, bn->weight, make(ctx, find(c, "weight"), dt));
        lg_copy_into(ctx, bn->bias, make(ctx, find(c, "bias"), dt));
    }
    if (track) {
        lg_copy_into(ctx, bn->running_mean, make(ctx, find(c, "running_mean"), dt));
        lg_copy_into(ctx, bn->running_var, make(ctx, find(c, "running_var"), dt));
    }
    lg_ctx_set_training(ctx, training);
    int64_t steps = (int64_t)keyd(c, "steps", 1), per = xs->numel / xs->shape[0];
    lg_tensor *x = NULL, *y = NULL;
    for (int64_t s = 0; s < steps; s++) {
        x = from_doubles(ctx, dt, xs->v + s * per, xs->ndim - 1, xs->shape + 1);
        lg_zero_grad(ctx);
        lg_requires_grad(ctx, x, true);
        y = lg_batchnorm_forward(ctx, bn, x);
    }
    if (key(c, "err")) {
        cr_assert_null(y, "%s: expected an error", c->id);
        lg_ctx_free(ctx);
        return;
    }
    expect_ok(ctx);
    expect_fixture(y, find(c, "out"), dt, c->id, "out");
    lg_backward_with(ctx, y, make(ctx, find(c, "upstream"), dt));
    expect_fixture(lg_tensor_grad(x), find(c, "grad_input"), dt, c->id, "grad_input");
    if (affine) {
        expect_fixture(lg_tensor_grad(bn->weight), find(c, "grad_weight"), dt, c->id, "grad_w");
        expect_fixture(lg_tensor_grad(bn->bias), find(c, "grad_bias"), dt, c->id, "grad_b");
    }
    if (track) {
        expect_fixture(bn->running_mean, find(c, "running_mean_after"), dt, c->id, "running_mean");
        expect_fixture(bn->running_var, find(c, "running_var_after"), dt, c->id, "running_var");
        cr_assert_eq(*(int64_t *)lg_tensor_data(bn->num_batches_tracked),
                     (int64_t)keyd(c, "num_batches_tracked_after", -1), "%s: num_batches_tracked",
                     c->id);
    }
    lg_ctx_free(ctx);
}

Test(nn, batchnorm_layer_matches_pytorch_module)
{
    nfile nf = read_nfile("layers.txt");
    int n = 0;
    for (int i = 0; i < nf.ncases; i++)
        if (!strcmp(key(&nf.cases[i], "op"), "batch_norm")) {
            run_bn_module_case(&nf.cases[i], LG_F64);
            run_bn_module_case(&nf.cases[i], LG_F32);
            n++;
        }
    cr_assert_geq(n, 20);
    free_nfile(&nf);
}

Test(nn, norm_layers_and_buffers)
{
    lg_ctx *ctx = test_ctx(32);
    lg_batchnorm *bn = lg_batchnorm_new(ctx, "bn", 3, NULL);
    lg_layernorm *ln = lg_layernorm_new(ctx, "ln", 2, SHAPE(2, 3), NULL);
    lg_groupnorm *gn = lg_groupnorm_new(ctx, "gn", 2, 4, NULL);
    expect_ok(ctx);
    /* parameters: weight ones and bias zeros; the statistics are buffers */
    cr_assert_eq(lg_param_count(ctx), 6);
    cr_assert_eq(lg_buffer_count(ctx), 3);
    cr_assert_eq(lg_buffer_find(ctx, "bn.running_var"), bn->running_var);
    cr_assert_null(lg_param_find(ctx, "bn.running_mean"));
    cr_assert_eq(lg_tensor_dtype(bn->num_batches_tracked), LG_I64);
    cr_assert_eq(lg_tensor_ndim(bn->num_batches_tracked), 0);
    cr_assert_eq(get(bn->running_var, 2), 1.0);
    cr_assert_eq(get(ln->weight, 5), 1.0);
    cr_assert_eq(get(gn->bias, 3), 0.0);
    cr_assert_not(lg_tensor_requires_grad(bn->running_mean));
    cr_assert_eq(lg_requires_grad(ctx, bn->running_mean, true), LG_ERR_STATE);
    lg_ctx_clear_error(ctx);
    /* a name a buffer holds is taken for parameters too */
    cr_assert_null(lg_param_new(ctx, "bn.running_mean", LG_F32, 1, SHAPE(3)));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_VALUE);
    lg_ctx_clear_error(ctx);
    /* an optimizer over "every parameter" never sees the buffers */
    lg_optim_opts so = lg_optim_opts_default(LG_SGD);
    so.lr = 0.1;
    lg_optim *opt = lg_optim_new(ctx, &so);
    lg_tensor *x = lg_randn(ctx, LG_F32, 3, SHAPE(4, 3, 5));
    lg_tensor *loss = lg_sum(ctx, lg_square(ctx, lg_batchnorm_forward(ctx, bn, x)), 0, NULL, false);
    cr_assert_eq(lg_backward(ctx, loss), LG_OK);
    double rm1 = get(bn->running_mean, 1);
    cr_assert_eq(lg_optim_step(opt), LG_OK);
    cr_assert_eq(get(bn->running_mean, 1), rm1);
    cr_assert_eq(*(int64_t *)lg_tensor_data(bn->num_batches_tracked), 1);
    /* evaluation reads the statistics and counts nothing */
    lg_ctx_set_training(ctx, false);
    lg_tensor *ye = lg_batchnorm_forward(ctx, bn, x);
    expect_ok(ctx);
    cr_assert_eq(*(int64_t *)lg_tensor_data(bn->num_batches_tracked), 1);
    double want = (get(x, 0) - get(bn->running_mean, 0)) / sqrt(get(bn->running_var, 0) + 1e-5) *
                      get(bn->weight, 0) +
                  get(bn->bias, 0);
    cr_assert_float_eq(get(ye, 0), want, 1e-5);
    /* a checkpoint carries the buffers; a fresh model loads them */
    char path[] = "/tmp/lg_bn_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(lg_checkpoint_save(ctx, path, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx));
    lg_ctx *ctx2 = test_ctx(33);
    lg_batchnorm *bn2 = lg_batchnorm_new(ctx2, "bn", 3, NULL);
    lg_layernorm_new(ctx2, "ln", 2, SHAPE(2, 3), NULL);
    lg_groupnorm_new(ctx2, "gn", 2, 4, NULL);
    cr_assert_eq(lg_checkpoint_load(ctx2, path, NULL), LG_OK, "%s", lg_ctx_errmsg(ctx2));
    cr_assert_eq(get(bn2->running_mean, 1), rm1);
    cr_assert_eq(*(int64_t *)lg_tensor_data(bn2->num_batches_tracked), 1);
    /* a model without the buffers cannot take the file, nor the reverse */
    lg_ctx *ctx3 = test_ctx(34);
    lg_batchnorm_new(ctx3, "bn", 3,
                     &(lg_norm_layer_opts){ .eps = 1e-5, .momentum = 0.1, .affine = true });
    cr_assert_eq(lg_ctx_status(ctx3), LG_ERR_VALUE); /* track_running_stats left 0 by hand */
    lg_ctx_clear_error(ctx3);
    lg_norm_layer_opts nt = lg_norm_layer_opts_default();
    nt.track_running_stats = false;
    lg_batchnorm *bn3 = lg_batchnorm_new(ctx3, "bn", 3, &nt);
    cr_assert_null(bn3->running_mean);
    lg_layernorm_new(ctx3, "ln", 2, SHAPE(2, 3), NULL);
    lg_groupnorm_new(ctx3, "gn", 2, 4, NULL);
    cr_assert_eq(lg_checkpoint_load(ctx3, path, NULL), LG_ERR_VALUE);
    cr_assert(strstr(lg_ctx_errmsg(ctx3), "no such parameter or buffer"), "%s",
              lg_ctx_errmsg(ctx3));
    unlink(path);
    lg_ctx_clear_error(ctx3);
    /* options a layer does not have */
    lg_norm_layer_opts lo = lg_norm_layer_opts_default();
    lo.momentum = 0.5;
    cr_assert_null(lg_layernorm_new(ctx3, "ln2", 1, SHAPE(3), &lo));
    cr_assert(strstr(lg_ctx_errmsg(ctx3), "batch norm's"), "%s", lg_ctx_errmsg(ctx3));
    lg_ctx_free(ctx3);
    lg_ctx_free(ctx2);
    lg_ctx_free(ctx);
}

typedef struct enc_case {
    const lg_encoder_layer *l;
    lg_mha_masks masks;
} enc_case;

static lg_tensor *encoder_apply(lg_ctx *ctx, lg_tensor *const *xs, void *user)
{
    const enc_case *c = user;
    return lg_encoder_layer_forward(ctx, c->l, xs[0], &c->masks);
}

Test(nn, encoder_layer_names_shapes_and_gradient)
{
    lg_ctx *ctx = test_ctx(41);
    for (int pre = 0; pre < 2; pre++) {
        lg_encoder_opts o = lg_encoder_opts_default();
        o.dtype = LG_F64, o.dim_feedforward = 16, o.dropout = 0, o.norm_first = pre;
        o.activation = pre ? LG_ACT_GELU : LG_ACT_RELU, o.batch_first = true;
        lg_encoder_layer *l = lg_encoder_layer_new(ctx, pre ? "pre" : "post", 8, 2, &o);
        expect_ok(ctx);
        static const char *const leaves[] = { "self_attn.in_proj_weight",
                                              "self_attn.in_proj_bias",
                                              "self_attn.out_proj.weight",
                                              "self_attn.out_proj.bias",
                                              "linear1.weight",
                                              "linear2.bias",
                                              "norm1.weight",
                                              "norm2.bias" };
        for (int i = 0; i < 8; i++) {
            char name[96];
            snprintf(name, sizeof name, "%s.%s", pre ? "pre" : "post", leaves[i]);
            cr_assert_not_null(lg_param_find(ctx, name), "no parameter %s", name);
        }
        cr_assert_eq(lg_tensor_dim(l->self_attn->in_proj_weight, 0), 24);
        enc_case c = { l, lg_mha_masks_default() };
        c.masks.is_causal = pre;
        lg_tensor *x = lg_randn(ctx, LG_F64, 3, SHAPE(2, 5, 8));
        lg_tensor *y = encoder_apply(ctx, &x, &c);
        expect_ok(ctx);
        cr_assert_eq(lg_tensor_ndim(y), 3);
        cr_assert_eq(lg_tensor_dim(y, 1), 5);
        expect_gradcheck(ctx, encoder_apply, &c, 1, &x, pre ? "pre-norm encoder" : "post-norm");
        lg_step_end(ctx);
    }
    /* errors, named */
    cr_assert_null(lg_mha_new(ctx, "bad", 10, 3, NULL));
    cr_assert(strstr(lg_ctx_errmsg(ctx), "lg_mha_new: embed_dim = 10 and num_heads = 3"), "%s",
              lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    lg_mha *m = lg_mha_new(ctx, "m", 4, 2, NULL);
    lg_tensor *q = lg_randn(ctx, LG_F32, 3, SHAPE(5, 2, 4));
    lg_mha_masks mk = lg_mha_masks_default();
    mk.attn_mask = lg_zeros(ctx, LG_F32, 2, SHAPE(5, 4));
    cr_assert_null(lg_mha_forward(ctx, m, q, q, q, &mk));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_SHAPE);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "attn_mask must be [L, S] = [5, 5]"), "%s",
              lg_ctx_errmsg(ctx));
    lg_ctx_clear_error(ctx);
    mk = lg_mha_masks_default();
    mk.is_causal = true;
    mk.attn_mask = lg_zeros(ctx, LG_F32, 2, SHAPE(5, 5));
    cr_assert_null(lg_mha_forward(ctx, m, q, q, q, &mk));
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_VALUE);
    lg_ctx_free(ctx);
}

Test(nn, multinomial_frequencies_replacement_and_errors)
{
    lg_ctx *ctx = test_ctx(51);
    double w[4] = { 1, 2, 0, 5 };
    lg_tensor *probs = from_doubles(ctx, LG_F32, w, 1, SHAPE(4));
    int64_t n = 40000, count[4] = { 0 };
    lg_tensor *s = lg_multinomial(ctx, probs, n, true);
    expect_ok(ctx);
    cr_assert_eq(lg_tensor_ndim(s), 1);
    cr_assert_eq(lg_tensor_dtype(s), LG_I64);
    for (int64_t i = 0; i < n; i++)
        count[((int64_t *)lg_tensor_data(s))[i]]++;
    for (int k = 0; k < 4; k++) { /* within 5 standard deviations of n p */
        double p = w[k] / 8, sd = sqrt(n * p * (1 - p));
        cr_assert(fabs((double)count[k] - n * p) <= 5 * sd + 1e-9, "category %d: %lld of %lld", k,
                  (long long)count[k], (long long)n);
    }
    cr_assert_eq(count[2], 0);
    /* without replacement: each positive category once, in some order */
    lg_tensor *rows =
        from_doubles(ctx, LG_F64, (double[]){ 1, 2, 0, 5, 0, 0, 3, 0 }, 2, SHAPE(2, 4));
    lg_tensor *nr = lg_multinomial(ctx, rows, 1, false);
    expect_ok(ctx);
    cr_assert_eq(lg_tensor_dim(nr, 0), 2);
    cr_assert_eq(((int64_t *)lg_tensor_data(nr))[1], 2); /* the only positive one */
    lg_tensor *all = lg_multinomial(ctx, probs, 3, false);
    bool seen[4] = { false };
    for (int i = 0; i < 3; i++)
        seen[((int64_t *)lg_tensor_data(all))[i]] = true;
    cr_assert(seen[0] && seen[1] && !seen[2] && seen[3]);
    /* from logits: through a softmax, and the same seed gives the same draws */
    lg_tensor *logits = from_doubles(ctx, LG_F64, (double[]){ 0.5, -1, 2 }, 1, SHAPE(3));
    lg_seed(ctx, 9);
    lg_tensor *a = lg_multinomial(ctx, lg_softmax(ctx, logits, 0), 50, true);
    lg_seed(ctx, 9);
    lg_tensor *b = lg_multinomial(ctx, lg_softmax(ctx, logits, 0), 50, true);
    cr_assert_eq(memcmp(lg_tensor_data(a), lg_tensor_data(b), 50 * sizeof(int64_t)), 0);
    /* errors leave the RNG where it was */
    struct {
        lg_tensor *in;
        int64_t n;
        bool repl;
        lg_status st;
        const char *msg;
    } bad[] = {
        { from_doubles(ctx, LG_F64, (double[]){ 1, -1 }, 1, SHAPE(2)), 1, true, LG_ERR_VALUE,
          "input[0][1] = -1" },
        { from_doubles(ctx, LG_F64, (double[]){ 1, NAN }, 1, SHAPE(2)), 1, true, LG_ERR_VALUE,
          "expected finite and >= 0" },
        { from_doubles(ctx, LG_F64, (double[]){ 0, 0 }, 1, SHAPE(2)), 1, true, LG_ERR_VALUE,
          "sums to 0" },
        { probs, 4, false, LG_ERR_VALUE, "fewer than num_samples = 4" },
        { probs, 5, false, LG_ERR_VALUE, "only 4 categories" },
        { probs, 0, true, LG_ERR_VALUE, "num_samples = 0" },
        { lg_zeros(ctx, LG_I64, 1, SHAPE(3)), 1, true, LG_ERR_DTYPE, "float weights" },
        { lg_ones(ctx, LG_F32, 3, SHAPE(2, 2, 2)), 1, true, LG_ERR_SHAPE, "1 or 2 dims" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        lg_seed(ctx, 77);
        cr_assert_null(lg_multinomial(ctx, bad[i].in, bad[i].n, bad[i].repl));
        cr_assert_eq(lg_ctx_status(ctx), bad[i].st, "case %zu: %s", i, lg_ctx_errmsg(ctx));
        cr_assert(strstr(lg_ctx_errmsg(ctx), bad[i].msg), "case %zu: %s", i, lg_ctx_errmsg(ctx));
        cr_assert(strstr(lg_ctx_errmsg(ctx), "lg_multinomial: "), "%s", lg_ctx_errmsg(ctx));
        lg_ctx_clear_error(ctx);
        double u = lg_rand_uniform(ctx);
        lg_seed(ctx, 77);
        cr_assert_eq(u, lg_rand_uniform(ctx), "case %zu moved the RNG", i);
    }
    lg_ctx_free(ctx);
}
