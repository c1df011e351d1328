/* test_nn18.c: issue 18's layer options against PyTorch fixtures
 * (tests/fixtures/nn/layers18.txt, made by tools/gen_nn18_fixtures.py with
 * identical weights; every case in float64 and float32): embedding
 * padding_idx / max_norm / scale_grad_by_freq, RNN batch_first, LSTM
 * proj_size, unbatched input and dropout between layers (eval mode), MLP
 * activations and bias, eye / dirac and calculate_gain. The random
 * initialisers and train-mode dropout cannot match PyTorch's RNG and are
 * tested by their properties; then gradchecks and every bad option. */
#include "nfile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Embedding                                                            */
/* ------------------------------------------------------------------ */

static lg_embedding_opts emb_opts(const ncase *c, lg_dtype dt)
{
    lg_embedding_opts o = lg_embedding_opts_default();
    o.dtype = dt;
    if (key(c, "padding_idx")) {
        o.has_padding_idx = true;
        o.padding_idx = (int64_t)keyd(c, "padding_idx", 0);
    }
    if (key(c, "max_norm")) {
        o.max_norm = keyd(c, "max_norm", 0);
        o.norm_type = !strcmp(key(c, "norm_type"), "inf") ? INFINITY : keyd(c, "norm_type", 2);
    }
    o.scale_grad_by_freq = keyd(c, "scale_grad_by_freq", 0) != 0;
    return o;
}

static void run_embedding_case(const ncase *c, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    lg_embedding_opts o = emb_opts(c, dt);
    lg_embedding *e =
        lg_embedding_new(ctx, "emb", (int64_t)keyd(c, "num", 0), (int64_t)keyd(c, "dim", 0), &o);
    cr_assert_not_null(e, "%s: %s", c->id, lg_ctx_errmsg(ctx));
    if (o.has_padding_idx) /* PyTorch's reset_parameters zeroes the padding row */
        for (int64_t j = 0; j < e->dim; j++)
            cr_assert_eq(get(e->weight, e->padding_idx * e->dim + j), 0.0, "%s", c->id);
    cr_assert_eq(lg_copy_into(ctx, e->weight, make(ctx, find(c, "weight"), LG_F64)), LG_OK);
    lg_tensor *y = lg_embedding_forward(ctx, e, make(ctx, find(c, "indices"), LG_I64));
    cr_assert_not_null(y, "%s: %s", c->id, lg_ctx_errmsg(ctx));
    expect_fixture(y, find(c, "out"), dt, c->id, "out");
    expect_fixture(e->weight, find(c, "weight_after"), dt, c->id, "weight after the lookup");
    lg_tensor *loss =
        lg_sum(ctx, lg_mul(ctx, y, make(ctx, find(c, "upstream"), dt)), 0, NULL, false);
    cr_assert_eq(lg_backward(ctx, loss), LG_OK, "%s: %s", c->id, lg_ctx_errmsg(ctx));
    expect_fixture(lg_tensor_grad(e->weight), find(c, "grad.weight"), dt, c->id, "grad weight");
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* RNN / GRU / LSTM                                                     */
/* ------------------------------------------------------------------ */

static void run_rnn_case(const ncase *c, lg_dtype dt)
{
    lg_rnn_kind kind = rnn_kind(key(c, "kind"));
    lg_ctx *ctx = test_ctx(1);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.dtype = dt;
    o.num_layers = (int)keyd(c, "layers", 1);
    o.bidirectional = keyd(c, "bidirectional", 0) != 0;
    o.batch_first = keyd(c, "batch_first", 0) != 0;
    o.proj_size = (int64_t)keyd(c, "proj_size", 0);
    o.dropout = keyd(c, "dropout", 0);
    lg_rnn *net = lg_rnn_new(ctx, "net", kind, (int64_t)keyd(c, "input_size", 0),
                             (int64_t)keyd(c, "hidden", 0), &o);
    cr_assert_not_null(net, "%s: %s", c->id, lg_ctx_errmsg(ctx));
    if (o.dropout > 0) /* the fixture is PyTorch's eval mode */
        lg_ctx_set_training(ctx, false);
    expect_rnn_case(ctx, net, kind, c, dt);
}

/* ------------------------------------------------------------------ */
/* MLP                                                                  */
/* ------------------------------------------------------------------ */

static void run_mlp_case(const ncase *c, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    lg_mlp_opts o = lg_mlp_opts_default();
    o.dtype = dt;
    o.activation = (lg_activation)keyd(c, "activation", 0);
    o.no_bias = keyd(c, "bias", 1) == 0;
    lg_mlp *m = lg_mlp_new(ctx, "mlp", 3, SHAPE(4, 6, 3), &o);
    cr_assert_not_null(m, "%s: %s", c->id, lg_ctx_errmsg(ctx));
    int nparams = 0;
    for (int i = 0; i < c->ntensors; i++) {
        if (strncmp(c->t[i].name, "param.", 6))
            continue;
        char name[128];
        snprintf(name, sizeof name, "mlp.%s", c->t[i].name + 6);
        lg_tensor *p = lg_param_find(ctx, name);
        cr_assert_not_null(p, "%s: no parameter %s", c->id, name);
        cr_assert_eq(lg_copy_into(ctx, p, make(ctx, &c->t[i], LG_F64)), LG_OK);
        nparams++;
    }
    cr_assert_eq(nparams, lg_param_count(ctx), "%s: parameter count differs from PyTorch's", c->id);
    lg_tensor *x = make(ctx, find(c, "x"), dt);
    lg_requires_grad(ctx, x, true);
    lg_tensor *y = lg_mlp_forward(ctx, m, x);
    cr_assert_not_null(y, "%s: %s", c->id, lg_ctx_errmsg(ctx));
    expect_fixture(y, find(c, "out"), dt, c->id, "out");
    lg_tensor *loss =
        lg_sum(ctx, lg_mul(ctx, y, make(ctx, find(c, "upstream"), dt)), 0, NULL, false);
    cr_assert_eq(lg_backward(ctx, loss), LG_OK, "%s: %s", c->id, lg_ctx_errmsg(ctx));
    expect_fixture(lg_tensor_grad(x), find(c, "grad.x"), dt, c->id, "grad x");
    for (int i = 0; i < c->ntensors; i++) {
        if (strncmp(c->t[i].name, "grad.param.", 11))
            continue;
        char name[128];
        snprintf(name, sizeof name, "mlp.%s", c->t[i].name + 11);
        expect_fixture(lg_tensor_grad(lg_param_find(ctx, name)), &c->t[i], dt, c->id, name);
    }
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Deterministic initialisers and gains                                 */
/* ------------------------------------------------------------------ */

static void run_init_case(const ncase *c, lg_dtype dt)
{
    lg_ctx *ctx = test_ctx(1);
    if (!strncmp(c->id, "gain-", 5)) {
        double g = lg_init_gain((lg_nonlinearity)keyd(c, "nonlinearity", 0), keyd(c, "param", 0));
        double want = find(c, "gain")->v[0];
        cr_assert(fabs(g - want) <= 1e-15 * want, "%s: gain %.17g, PyTorch %.17g", c->id, g, want);
        lg_ctx_free(ctx);
        return;
    }
    const ntensor *w = find(c, "out");
    lg_tensor *t = lg_zeros(ctx, dt, w->ndim, w->shape);
    lg_init_constant(ctx, t, 7.0); /* every element must be written */
    lg_status st = !strncmp(c->id, "eye-", 4)
                       ? lg_init_eye(ctx, t)
                       : lg_init_dirac(ctx, t, (int64_t)keyd(c, "groups", 1));
    cr_assert_eq(st, LG_OK, "%s: %s", c->id, lg_ctx_errmsg(ctx));
    for (int64_t i = 0; i < w->numel; i++) /* exact */
        cr_assert_eq(get(t, i), w->v[i], "%s: element %lld is %g, PyTorch %g", c->id, (long long)i,
                     get(t, i), w->v[i]);
    lg_ctx_free(ctx);
}

Test(nn18, fixtures_match_pytorch)
{
    nfile nf = read_nfile("layers18.txt");
    int seen[4] = { 0 };
    for (int i = 0; i < nf.ncases; i++) {
        const ncase *c = &nf.cases[i];
        for (int d = 0; d < 2; d++) {
            lg_dtype dt = d ? LG_F32 : LG_F64;
            if (!strncmp(c->id, "emb-", 4))
                run_embedding_case(c, dt), seen[0]++;
            else if (!strncmp(c->id, "rnn-", 4))
                run_rnn_case(c, dt), seen[1]++;
            else if (!strncmp(c->id, "mlp-", 4))
                run_mlp_case(c, dt), seen[2]++;
            else
                run_init_case(c, dt), seen[3]++;
        }
    }
    cr_assert(seen[0] >= 20 && seen[1] >= 32 && seen[2] >= 76 && seen[3] >= 40,
              "cases: %d embedding, %d rnn, %d mlp, %d init", seen[0], seen[1], seen[2], seen[3]);
    free_nfile(&nf);
}

/* ------------------------------------------------------------------ */
/* Random initialisers: properties                                      */
/* ------------------------------------------------------------------ */

/* W W^T (rows <= cols) or W^T W against gain^2 I, W = t as [rows, numel / rows]. */
static void expect_orthogonal(lg_tensor *t, double gain)
{
    int64_t rows = lg_tensor_dim(t, 0), cols = lg_tensor_numel(t) / rows;
    bool wide = rows <= cols;
    int64_t k = wide ? rows : cols, inner = wide ? cols : rows;
    double worst = 0;
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
            double s = 0;
            for (int64_t l = 0; l < inner; l++)
                s += wide ? get(t, i * cols + l) * get(t, j * cols + l)
                          : get(t, l * cols + i) * get(t, l * cols + j);
            worst = fmax(worst, fabs(s - (i == j ? gain * gain : 0.0)));
        }
    cr_assert(worst <= 1e-12, "orthogonal [%lld, %lld]: |W W^T - g^2 I| reaches %.3g",
              (long long)rows, (long long)cols, worst);
}

Test(nn18, orthogonal_is_orthogonal_and_seeded)
{
    const int64_t *shapes[] = { SHAPE(5, 8),       SHAPE(8, 5), SHAPE(6, 6),
                                SHAPE(4, 3, 2, 2), SHAPE(1, 9), SHAPE(40, 3) };
    const int nds[] = { 2, 2, 2, 4, 2, 2 };
    for (int s = 0; s < 6; s++)
        for (int g = 0; g < 2; g++) {
            double gain = g ? lg_init_gain(LG_NL_TANH, 0) : 1.0;
            lg_ctx *ctx = test_ctx(11);
            lg_tensor *a = lg_zeros(ctx, LG_F64, nds[s], shapes[s]);
            cr_assert_eq(lg_init_orthogonal(ctx, a, gain), LG_OK, "%s", lg_ctx_errmsg(ctx));
            expect_orthogonal(a, gain);
            lg_seed(ctx, 11);
            lg_tensor *b = lg_zeros(ctx, LG_F64, nds[s], shapes[s]);
            lg_seed(ctx, 11);
            cr_assert_eq(lg_init_orthogonal(ctx, b, gain), LG_OK);
            lg_ctx *ctx2 = test_ctx(11);
            lg_tensor *c = lg_zeros(ctx2, LG_F64, nds[s], shapes[s]);
            lg_init_orthogonal(ctx2, c, gain);
            for (int64_t i = 0; i < lg_tensor_numel(a); i++)
                cr_assert_eq(get(a, i), get(c, i), "same seed, different values");
            lg_ctx_free(ctx2);
            lg_ctx_free(ctx);
        }
}

static double phi(double z)
{
    return exp(-0.5 * z * z) / sqrt(2 * M_PI);
}

/* Over n = 10^6 draws the sample mean has standard error sigma / sqrt(n)
 * (sigma <= (b - a) / 2 by Popoviciu for any law on [a, b]), and for the
 * symmetric truncation, whose kurtosis is below the normal's 3 (a normal
 * cut symmetrically is platykurtic), the sample variance has standard
 * error at most sigma^2 sqrt(2 / n). A 6-standard-error bound fails by
 * chance with probability under 1e-8 (and the draws are seeded). */
Test(nn18, trunc_normal_bounds_and_moments)
{
    const struct {
        double mean, std, a, b;
        bool check_var;
    } cs[] = { { 0, 1, -2, 2, true }, { 1, 2, -1, 4, false }, { -3, 0.5, -3.2, 10, false } };
    const int64_t n = 1000000;
    for (int k = 0; k < 3; k++)
        for (int d = 0; d < 2; d++) {
            lg_ctx *ctx = test_ctx(5 + (uint64_t)k);
            lg_dtype dt = d ? LG_F32 : LG_F64;
            lg_tensor *t = lg_zeros(ctx, dt, 1, SHAPE(n));
            cr_assert_eq(lg_init_trunc_normal(ctx, t, cs[k].mean, cs[k].std, cs[k].a, cs[k].b),
                         LG_OK, "%s", lg_ctx_errmsg(ctx));
            double al = (cs[k].a - cs[k].mean) / cs[k].std, be = (cs[k].b - cs[k].mean) / cs[k].std;
            double Z = 0.5 * (erf(be / sqrt(2.0)) - erf(al / sqrt(2.0)));
            double mu = cs[k].mean + cs[k].std * (phi(al) - phi(be)) / Z;
            double var = cs[k].std * cs[k].std *
                         (1 + (al * phi(al) - be * phi(be)) / Z - pow((phi(al) - phi(be)) / Z, 2));
            double s = 0, s2 = 0; /* the bounds as the dtype holds them (as PyTorch's clamp) */
            double lo = d ? (float)cs[k].a : cs[k].a, hi = d ? (float)cs[k].b : cs[k].b;
            for (int64_t i = 0; i < n; i++) {
                double v = get(t, i);
                cr_assert(v >= lo && v <= hi, "draw %.9g outside [%g, %g]", v, cs[k].a, cs[k].b);
                s += v;
            }
            double m = s / (double)n;
            for (int64_t i = 0; i < n; i++)
                s2 += (get(t, i) - m) * (get(t, i) - m);
            double sv = s2 / (double)(n - 1);
            double se = (cs[k].b - cs[k].a) / 2 / sqrt((double)n);
            cr_assert(fabs(m - mu) <= 6 * se, "case %d: mean %.6f, closed form %.6f (bound %.2g)",
                      k, m, mu, 6 * se);
            if (cs[k].check_var)
                cr_assert(fabs(sv - var) <= 6 * var * sqrt(2.0 / (double)n),
                          "case %d: variance %.6f, closed form %.6f", k, sv, var);
            lg_ctx_free(ctx);
        }
}

Test(nn18, sparse_zeros_per_column)
{
    const double sp[] = { 0, 0.1, 0.35, 0.5, 0.99, 1 };
    for (int k = 0; k < 6; k++) {
        lg_ctx *ctx = test_ctx(3);
        int64_t rows = 10, cols = 7;
        lg_tensor *t = lg_zeros(ctx, LG_F64, 2, SHAPE(rows, cols));
        cr_assert_eq(lg_init_sparse(ctx, t, sp[k], 1.0), LG_OK, "%s", lg_ctx_errmsg(ctx));
        int64_t want = (int64_t)ceil(sp[k] * (double)rows);
        for (int64_t c = 0; c < cols; c++) {
            int64_t z = 0;
            for (int64_t r = 0; r < rows; r++)
                z += get(t, r * cols + c) == 0;
            cr_assert_eq(z, want, "sparsity %g column %lld: %lld zeros, expected %lld", sp[k],
                         (long long)c, (long long)z, (long long)want);
        }
        lg_ctx_free(ctx);
    }
}

/* ------------------------------------------------------------------ */
/* Dropout between RNN layers in training mode                          */
/* ------------------------------------------------------------------ */

static lg_tensor *rnn_out(lg_ctx *ctx, lg_rnn *net, lg_tensor *x)
{
    lg_rnn_result r;
    cr_assert_eq(lg_rnn_forward(ctx, net, x, NULL, NULL, NULL, &r), LG_OK, "%s",
                 lg_ctx_errmsg(ctx));
    return r.output;
}

Test(nn18, rnn_dropout_between_layers)
{
    const lg_rnn_kind kinds[] = { LG_GRU, LG_LSTM, LG_RNN_TANH };
    for (int k = 0; k < 3; k++) {
        lg_ctx *ctx = test_ctx(21);
        lg_rnn_opts o = lg_rnn_opts_default();
        o.dtype = LG_F64;
        o.num_layers = 2;
        o.dropout = 1.0; /* layer 1 sees zeros in training mode */
        lg_rnn *net = lg_rnn_new(ctx, "net", kinds[k], 3, 4, &o);
        o.num_layers = 1;
        lg_rnn *one = lg_rnn_new(ctx, "one", kinds[k], 3, 4, &o);
        cr_assert(net && one, "%s", lg_ctx_errmsg(ctx));
        lg_tensor *x = lg_randn(ctx, LG_F64, 3, SHAPE(6, 2, 3));
        lg_ctx_set_training(ctx, true);
        lg_tensor *train = rnn_out(ctx, net, x);
        lg_tensor *one_train = rnn_out(ctx, one, x);
        lg_ctx_set_training(ctx, false);
        lg_tensor *one_eval = rnn_out(ctx, one, x);
        /* the last layer's output is never dropped */
        expect_close_to(one_train, one_eval, 0, "one layer: train = eval");
        /* with p = 1, layer 1's input is zeros: its weight_ih does not matter */
        lg_init_constant(ctx, lg_param_find(ctx, "net.weight_ih_l1"), 0.0);
        lg_tensor *eval = rnn_out(ctx, net, x);
        expect_close_to(train, eval, 0, "p = 1: train = eval with weight_ih_l1 zeroed");
        lg_ctx_free(ctx);
    }
    /* p = 0.5: a mask on layer 0's output, fresh draws each call, the same
     * for a seed; eval mode unaffected */
    lg_ctx *ctx = test_ctx(22);
    lg_rnn_opts o = lg_rnn_opts_default();
    o.dtype = LG_F64;
    o.num_layers = 2;
    o.dropout = 0.5;
    lg_rnn *net = lg_rnn_new(ctx, "net", LG_LSTM, 3, 4, &o);
    lg_tensor *x = lg_randn(ctx, LG_F64, 3, SHAPE(6, 2, 3));
    lg_seed(ctx, 99);
    lg_tensor *a = rnn_out(ctx, net, x);
    lg_tensor *b = rnn_out(ctx, net, x);
    lg_seed(ctx, 99);
    lg_tensor *a2 = rnn_out(ctx, net, x);
    expect_close_to(a2, a, 0, "same seed, same masks");
    double diff = 0;
    for (int64_t i = 0; i < lg_tensor_numel(a); i++)
        diff = fmax(diff, fabs(get(a, i) - get(b, i)));
    cr_assert(diff > 1e-6, "two training calls drew the same masks");
    lg_ctx_set_training(ctx, false);
    lg_tensor *e1 = rnn_out(ctx, net, x), *e2 = rnn_out(ctx, net, x);
    expect_close_to(e1, e2, 0, "eval mode is deterministic");
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Gradchecks (float64, first and second order)                         */
/* ------------------------------------------------------------------ */

typedef struct emb_gc {
    lg_embedding *e;
    lg_tensor *idx, *u;
} emb_gc;

static lg_tensor *emb_fn(lg_ctx *ctx, lg_tensor *const *in, void *user)
{
    (void)in; /* in[0] is the weight itself */
    emb_gc *g = user;
    lg_tensor *y = lg_embedding_forward(ctx, g->e, g->idx);
    return lg_sum(ctx, lg_mul(ctx, lg_square(ctx, y), g->u), 0, NULL, false);
}

Test(nn18, embedding_gradcheck)
{
    const struct {
        bool pad, freq;
    } cs[] = { { true, false }, { false, true }, { true, true } };
    for (int k = 0; k < 3; k++) {
        lg_ctx *ctx = test_ctx(31);
        lg_embedding_opts o = lg_embedding_opts_default();
        o.dtype = LG_F64;
        o.has_padding_idx = cs[k].pad;
        o.padding_idx = cs[k].pad ? -1 : 0;
        o.scale_grad_by_freq = cs[k].freq;
        emb_gc g = { lg_embedding_new(ctx, "emb", 5, 3, &o), NULL, NULL };
        cr_assert_not_null(g.e, "%s", lg_ctx_errmsg(ctx));
        cr_assert_eq(g.e->padding_idx, cs[k].pad ? 4 : -1);
        lg_init_normal(ctx, g.e->weight, 0, 1);
        g.idx = T_FROM(ctx, LG_I64, ((int64_t[]){ 4, 1, 1, 0, 4, 2, 1, 3 }), 2, 4);
        g.u = lg_randn(ctx, LG_F64, 3, SHAPE(2, 4, 3));
        expect_second_order = true;
        expect_gradcheck(ctx, emb_fn, &g, 1, &g.e->weight, "embedding");
        expect_second_order = false;
        lg_tensor *loss = emb_fn(ctx, NULL, &g);
        lg_zero_grad(ctx);
        cr_assert_eq(lg_backward(ctx, loss), LG_OK);
        for (int64_t j = 0; cs[k].pad && j < 3; j++)
            cr_assert_eq(get(lg_tensor_grad(g.e->weight), 4 * 3 + j), 0.0,
                         "padding row's gradient");
        lg_ctx_free(ctx);
    }
}

typedef struct rnn_gc {
    lg_rnn *r;
    bool lstm;
    lg_tensor *u;
    bool reseed; /* train-mode dropout: the same masks at every evaluation */
} rnn_gc;

static lg_tensor *rnn_fn(lg_ctx *ctx, lg_tensor *const *in, void *user)
{
    rnn_gc *g = user;
    lg_rnn_result r;
    if (g->reseed)
        lg_seed(ctx, 1234);
    if (lg_rnn_forward(ctx, g->r, in[0], NULL, in[1], g->lstm ? in[2] : NULL, &r) != LG_OK)
        return NULL;
    lg_tensor *s = lg_sum(ctx, lg_mul(ctx, r.output, g->u), 0, NULL, false);
    s = lg_add(ctx, s, lg_sum(ctx, lg_square(ctx, r.h_n), 0, NULL, false));
    return g->lstm ? lg_add(ctx, s, lg_sum(ctx, lg_square(ctx, r.c_n), 0, NULL, false)) : s;
}

Test(nn18, rnn_options_gradcheck)
{
    /* LSTM with proj_size batch_first, LSTM proj unbatched, GRU unbatched
     * bidirectional, RNN batch_first 2 layers */
    const struct {
        lg_rnn_kind kind;
        int layers;
        bool bi, bf, unb;
        int64_t proj;
        double dropout; /* in training mode */
    } cs[] = {
        { LG_LSTM, 2, true, true, false, 2, 0 },     { LG_LSTM, 1, false, false, true, 1, 0 },
        { LG_GRU, 2, true, false, true, 0, 0 },      { LG_RNN_TANH, 2, false, true, false, 0, 0 },
        { LG_LSTM, 3, false, false, false, 2, 0.4 }, { LG_GRU, 2, true, true, false, 0, 0.5 }
    };
    for (int k = 0; k < 6; k++) {
        lg_ctx *ctx = test_ctx(41 + (uint64_t)k);
        lg_rnn_opts o = lg_rnn_opts_default();
        o.dtype = LG_F64;
        o.num_layers = cs[k].layers;
        o.bidirectional = cs[k].bi;
        o.batch_first = cs[k].bf;
        o.proj_size = cs[k].proj;
        o.dropout = cs[k].dropout;
        int64_t T = 3, N = 2, I = 2, H = 3, D = cs[k].bi ? 2 : 1, P = cs[k].proj ? cs[k].proj : H;
        int64_t LD = cs[k].layers * D;
        rnn_gc g = { lg_rnn_new(ctx, "net", cs[k].kind, I, H, &o), cs[k].kind == LG_LSTM, NULL,
                     cs[k].dropout > 0 };
        cr_assert_not_null(g.r, "%s", lg_ctx_errmsg(ctx));
        lg_tensor *in[3];
        if (cs[k].unb) {
            in[0] = lg_randn(ctx, LG_F64, 2, SHAPE(T, I));
            in[1] = lg_randn(ctx, LG_F64, 2, SHAPE(LD, P));
            in[2] = lg_randn(ctx, LG_F64, 2, SHAPE(LD, H));
            g.u = lg_randn(ctx, LG_F64, 2, SHAPE(T, D * P));
        } else {
            in[0] = lg_randn(ctx, LG_F64, 3, cs[k].bf ? SHAPE(N, T, I) : SHAPE(T, N, I));
            in[1] = lg_randn(ctx, LG_F64, 3, SHAPE(LD, N, P));
            in[2] = lg_randn(ctx, LG_F64, 3, SHAPE(LD, N, H));
            g.u = lg_randn(ctx, LG_F64, 3, cs[k].bf ? SHAPE(N, T, D * P) : SHAPE(T, N, D * P));
        }
        lg_tensor *xs[4] = { in[0], in[1], g.lstm ? in[2] : NULL, NULL };
        int n = g.lstm ? 3 : 2;
        if (cs[k].proj) { /* the projection's weight too (it is not one of fn's inputs:
                           * the network reads it) */
            xs[n] = lg_param_find(ctx, "net.weight_hr_l0");
            cr_assert_not_null(xs[n]);
            n++;
        }
        expect_second_order = true; /* composites of twice-differentiable ops */
        expect_gradcheck(ctx, rnn_fn, &g, n, xs, "rnn options");
        expect_second_order = false;
        lg_ctx_free(ctx);
    }
}

/* ------------------------------------------------------------------ */
/* lg_params_with_prefix                                                */
/* ------------------------------------------------------------------ */

Test(nn18, params_with_prefix)
{
    lg_ctx *ctx = test_ctx(1);
    lg_linear *enc = lg_linear_new(ctx, "enc", 3, 4, NULL);
    lg_linear *encoder = lg_linear_new(ctx, "encoder", 4, 2, &(lg_linear_opts){ .no_bias = true });
    lg_tensor *lone = lg_param_new(ctx, "enc_scale", LG_F32, 1, SHAPE(1));
    lg_tensor *exact = lg_param_new(ctx, "head", LG_F32, 1, SHAPE(2));
    lg_mlp *mlp = lg_mlp_new(ctx, "head.mlp", 3, SHAPE(2, 3, 1), NULL);
    cr_assert(enc && encoder && lone && exact && mlp, "%s", lg_ctx_errmsg(ctx));
    cr_assert_null(encoder->bias);
    lg_tensor *out[8];
    cr_assert_eq(lg_params_with_prefix(ctx, "enc", out, 8), 2);
    cr_assert(out[0] == enc->weight && out[1] == enc->bias);
    cr_assert_eq(lg_params_with_prefix(ctx, "encoder", out, 8), 1);
    cr_assert(out[0] == encoder->weight);
    cr_assert_eq(lg_params_with_prefix(ctx, "head", out, 8), 5); /* head + 4 of head.mlp */
    cr_assert(out[0] == exact && out[1] == mlp->layers[0]->weight);
    cr_assert_eq(lg_params_with_prefix(ctx, "head.mlp.1", out, 1), 2); /* count, first written */
    cr_assert(out[0] == mlp->layers[1]->weight);
    cr_assert_eq(lg_params_with_prefix(ctx, "head.mlp", NULL, 0), 4);
    cr_assert_eq(lg_params_with_prefix(ctx, "nothing", out, 8), 0);
    /* an optimizer over one model only */
    lg_tensor *ps[4];
    int n = lg_params_with_prefix(ctx, "enc", ps, 4);
    lg_optim *opt = lg_optim_new(
        ctx, &(lg_optim_opts){ .kind = LG_SGD, .lr = 0.5, .params = ps, .nparams = n });
    cr_assert_not_null(opt, "%s", lg_ctx_errmsg(ctx));
    lg_tensor *x = lg_randn(ctx, LG_F32, 2, SHAPE(2, 3));
    lg_tensor *loss = lg_sum(ctx, lg_linear_forward(ctx, encoder, lg_linear_forward(ctx, enc, x)),
                             0, NULL, false);
    float before = *(float *)lg_tensor_data(encoder->weight);
    cr_assert_eq(lg_backward(ctx, loss), LG_OK);
    cr_assert_eq(lg_optim_step(opt), LG_OK);
    cr_assert_eq(*(float *)lg_tensor_data(encoder->weight), before, "encoder is not optimized");
    lg_ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

Test(nn18, bad_options)
{
    lg_ctx *ctx = test_ctx(1);
    int np = lg_param_count(ctx);
    lg_embedding_opts eo = lg_embedding_opts_default();
    eo.has_padding_idx = true;
    eo.padding_idx = 5;
    EXPECT_ERR(ctx, lg_embedding_new(ctx, "e", 5, 2, &eo), LG_ERR_VALUE,
               "lg_embedding_new: padding_idx = 5 is out of range for 5 embeddings (expected "
               "-5..4)");
    eo.padding_idx = -6;
    EXPECT_ERR(ctx, lg_embedding_new(ctx, "e", 5, 2, &eo), LG_ERR_VALUE, "padding_idx = -6");
    eo.has_padding_idx = false;
    eo.padding_idx = 3;
    EXPECT_ERR(ctx, lg_embedding_new(ctx, "e", 5, 2, &eo), LG_ERR_VALUE,
               "lg_embedding_new: padding_idx = 3 is written but has_padding_idx is false");
    eo = lg_embedding_opts_default();
    eo.max_norm = -1;
    EXPECT_ERR(ctx, lg_embedding_new(ctx, "e", 5, 2, &eo), LG_ERR_VALUE,
               "lg_embedding_new: max_norm = -1, expected > 0");
    eo.max_norm = NAN;
    EXPECT_ERR(ctx, lg_embedding_new(ctx, "e", 5, 2, &eo), LG_ERR_VALUE, "max_norm = nan");
    eo.max_norm = 1;
    eo.norm_type = -2;
    EXPECT_ERR(ctx, lg_embedding_new(ctx, "e", 5, 2, &eo), LG_ERR_VALUE,
               "lg_embedding_new: norm_type = -2, expected > 0");
    EXPECT_ERR(ctx, lg_embedding_new(ctx, "e", 5, 2, &(lg_embedding_opts){ .max_norm = 1 }),
               LG_ERR_VALUE, "norm_type");
    EXPECT_ERR(ctx, lg_embedding_new(ctx, "e", 5, 2, &(lg_embedding_opts){ .dtype = LG_I64 }),
               LG_ERR_DTYPE, "lg_embedding_new: dtype");
    cr_assert_eq(lg_param_count(ctx), np, "a failed constructor left parameters");
    /* by hand without max_norm: norm_type may stay 0; with it written, fine */
    cr_assert_not_null(
        lg_embedding_new(ctx, "ok1", 5, 2, &(lg_embedding_opts){ .has_padding_idx = true }));
    cr_assert_not_null(
        lg_embedding_new(ctx, "ok2", 5, 2, &(lg_embedding_opts){ .max_norm = 1, .norm_type = 2 }));

    lg_rnn_opts ro = lg_rnn_opts_default();
    ro.proj_size = 3;
    EXPECT_ERR(ctx, lg_rnn_new(ctx, "r", LG_LSTM, 2, 3, &ro), LG_ERR_VALUE,
               "lg_rnn_new: proj_size = 3, expected 0 (none) or in [1, hidden_size = 3)");
    ro.proj_size = -1;
    EXPECT_ERR(ctx, lg_rnn_new(ctx, "r", LG_LSTM, 2, 3, &ro), LG_ERR_VALUE, "proj_size = -1");
    ro.proj_size = 1;
    EXPECT_ERR(ctx, lg_rnn_new(ctx, "r", LG_GRU, 2, 3, &ro), LG_ERR_VALUE,
               "lg_rnn_new: proj_size = 1, but only an LSTM has a projection");
    ro = lg_rnn_opts_default();
    ro.dropout = 1.5;
    EXPECT_ERR(ctx, lg_rnn_new(ctx, "r", LG_GRU, 2, 3, &ro), LG_ERR_VALUE,
               "lg_rnn_new: dropout = 1.5, expected in [0, 1]");
    ro.dropout = NAN;
    EXPECT_ERR(ctx, lg_rnn_new(ctx, "r", LG_GRU, 2, 3, &ro), LG_ERR_VALUE, "dropout = nan");
    cr_assert_eq(lg_param_count(ctx), np + 2);

    ro = lg_rnn_opts_default();
    ro.proj_size = 2;
    lg_rnn *lstm = lg_rnn_new(ctx, "lstm", LG_LSTM, 2, 3, &ro);
    cr_assert_not_null(lstm, "%s", lg_ctx_errmsg(ctx));
    lg_rnn_result r;
    lg_tensor *x2 = lg_zeros(ctx, LG_F32, 2, SHAPE(4, 2)),
              *x3 = lg_zeros(ctx, LG_F32, 3, SHAPE(4, 1, 2));
    EXPECT_ERR(
        ctx,
        lg_rnn_forward(ctx, lstm, x2, NULL, lg_zeros(ctx, LG_F32, 3, SHAPE(1, 1, 2)), NULL, &r),
        LG_ERR_SHAPE, "lg_rnn_forward: h0 must be [1, 2] of the network's dtype (x is unbatched)");
    EXPECT_ERR(
        ctx,
        lg_rnn_forward(ctx, lstm, x3, NULL, lg_zeros(ctx, LG_F32, 3, SHAPE(1, 1, 3)), NULL, &r),
        LG_ERR_SHAPE, "lg_rnn_forward: h0 must be [1, 1, 2]");
    EXPECT_ERR(
        ctx,
        lg_rnn_forward(ctx, lstm, x3, NULL, NULL, lg_zeros(ctx, LG_F32, 3, SHAPE(1, 1, 2)), &r),
        LG_ERR_SHAPE, "lg_rnn_forward: c0 must be [1, 1, 3]");
    EXPECT_ERR(
        ctx,
        lg_rnn_forward(ctx, lstm, x2, T_FROM(ctx, LG_I64, ((int64_t[]){ 4 }), 1), NULL, NULL, &r),
        LG_ERR_SHAPE, "lg_rnn_forward: lengths needs a batched x");
    EXPECT_ERR(ctx,
               lg_rnn_forward(ctx, lstm, lg_zeros(ctx, LG_F32, 1, SHAPE(2)), NULL, NULL, NULL, &r),
               LG_ERR_SHAPE, "lg_rnn_forward: x must be [T, N, 2] (or unbatched [T, 2])");

    lg_mlp_opts mo = lg_mlp_opts_default();
    mo.activation = (lg_activation)99;
    EXPECT_ERR(ctx, lg_mlp_new(ctx, "m", 2, SHAPE(2, 2), &mo), LG_ERR_VALUE,
               "lg_mlp_new: activation 99 is not an lg_activation");
    EXPECT_ERR(ctx, lg_activation_forward(ctx, (lg_activation)-1, x2), LG_ERR_VALUE,
               "lg_activation_forward: a = -1 is not an lg_activation");

    lg_tensor *v = lg_zeros(ctx, LG_F64, 1, SHAPE(4)), *m = lg_zeros(ctx, LG_F64, 2, SHAPE(4, 6));
    lg_tensor *c3 = lg_zeros(ctx, LG_F64, 3, SHAPE(4, 2, 3));
    EXPECT_ERR(ctx, lg_init_orthogonal(ctx, v, 1), LG_ERR_SHAPE,
               "lg_init_orthogonal: t has 1 dims and 4 elements, expected >= 2 dims");
    EXPECT_ERR(ctx, lg_init_orthogonal(ctx, m, INFINITY), LG_ERR_VALUE,
               "lg_init_orthogonal: gain = inf, expected finite");
    EXPECT_ERR(ctx, lg_init_trunc_normal(ctx, m, 0, 1, 2, 2), LG_ERR_VALUE,
               "lg_init_trunc_normal: mean = 0, std = 1, [a, b] = [2, 2], expected finite, std > 0 "
               "and a < b");
    EXPECT_ERR(ctx, lg_init_trunc_normal(ctx, m, 0, 0, -2, 2), LG_ERR_VALUE, "std = 0");
    EXPECT_ERR(ctx, lg_init_trunc_normal(ctx, m, 0, 1, -INFINITY, 2), LG_ERR_VALUE, "[a, b]");
    EXPECT_ERR(ctx, lg_init_eye(ctx, c3), LG_ERR_SHAPE, "lg_init_eye: t has 3 dims, expected 2");
    EXPECT_ERR(ctx, lg_init_dirac(ctx, m, 1), LG_ERR_SHAPE,
               "lg_init_dirac: t has 2 dims, expected 3, 4 or 5");
    EXPECT_ERR(ctx, lg_init_dirac(ctx, c3, 3), LG_ERR_VALUE,
               "lg_init_dirac: groups = 3, expected >= 1 and dividing shape[0] = 4");
    EXPECT_ERR(ctx, lg_init_dirac(ctx, c3, 0), LG_ERR_VALUE, "groups = 0");
    EXPECT_ERR(ctx, lg_init_sparse(ctx, c3, 0.1, 0.01), LG_ERR_SHAPE,
               "lg_init_sparse: t has 3 dims, expected 2");
    EXPECT_ERR(ctx, lg_init_sparse(ctx, m, 1.5, 0.01), LG_ERR_VALUE,
               "lg_init_sparse: sparsity = 1.5, std = 0.01, expected sparsity in [0, 1]");
    EXPECT_ERR(ctx, lg_init_sparse(ctx, m, 0.5, -1), LG_ERR_VALUE, "std = -1");
    EXPECT_ERR(ctx, lg_init_kaiming_normal(ctx, m, 0, LG_FAN_IN, (lg_nonlinearity)77), LG_ERR_VALUE,
               "lg_init_kaiming_normal: nonlinearity 77 is not an lg_nonlinearity");
    cr_assert(isnan(lg_init_gain((lg_nonlinearity)77, 0)));
    EXPECT_ERR(ctx, lg_init_eye(ctx, NULL), LG_ERR_NULL, "lg_init_eye: t is NULL");

    lg_tensor *out[2];
    lg_ctx_clear_error(ctx);
    cr_assert_eq(lg_params_with_prefix(ctx, NULL, out, 2), -1);
    cr_assert_eq(lg_ctx_status(ctx), LG_ERR_NULL);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "lg_params_with_prefix: prefix is NULL"));
    EXPECT_ERR(ctx, lg_params_with_prefix(ctx, "", out, 2), LG_ERR_VALUE,
               "lg_params_with_prefix: prefix is empty");
    EXPECT_ERR(ctx, lg_params_with_prefix(ctx, "lstm", out, -1), LG_ERR_VALUE,
               "lg_params_with_prefix: max = -1, expected >= 0");
    EXPECT_ERR(ctx, lg_params_with_prefix(ctx, "lstm", NULL, 2), LG_ERR_NULL,
               "lg_params_with_prefix: out is NULL but max = 2");
    /* the first error sticks */
    lg_ctx_clear_error(ctx);
    (void)lg_init_eye(ctx, c3);
    (void)lg_params_with_prefix(ctx, "", out, 2);
    cr_assert(strstr(lg_ctx_errmsg(ctx), "lg_init_eye"), "%s", lg_ctx_errmsg(ctx));
    lg_ctx_free(ctx);
}

/* scale_grad_by_freq's composite keeps non-finite weights' values. */
Test(nn18, embedding_freq_nonfinite)
{
    lg_ctx *ctx = test_ctx(2);
    lg_embedding_opts o = lg_embedding_opts_default();
    o.dtype = LG_F64;
    o.scale_grad_by_freq = true;
    lg_embedding *e = lg_embedding_new(ctx, "emb", 3, 2, &o);
    cr_assert_not_null(e);
    double *w = lg_tensor_data(e->weight);
    w[0] = INFINITY;
    w[1] = NAN;
    w[2] = 2;
    w[3] = -3;
    lg_tensor *y = lg_embedding_forward(ctx, e, T_FROM(ctx, LG_I64, ((int64_t[]){ 0, 1, 1 }), 3));
    cr_assert_not_null(y, "%s", lg_ctx_errmsg(ctx));
    cr_assert(isinf(get(y, 0)) && get(y, 0) > 0 && isnan(get(y, 1)));
    cr_assert(get(y, 2) == 2 && get(y, 3) == -3 && get(y, 4) == 2 && get(y, 5) == -3);
    cr_assert_eq(lg_backward(ctx, lg_sum(ctx, lg_mul_scalar(ctx, lg_narrow(ctx, y, 0, 1, 2), 3.0),
                                         0, NULL, false)),
                 LG_OK, "%s", lg_ctx_errmsg(ctx));
    lg_tensor *g = lg_tensor_grad(e->weight); /* row 1 seen twice: 2 * 3 / 2 */
    cr_assert(get(g, 2) == 3 && get(g, 3) == 3 && get(g, 0) == 0 && get(g, 1) == 0);
    lg_ctx_free(ctx);
}

/* NULL, a zero struct and the _default() struct are PyTorch's defaults. */
Test(nn18, embedding_opts_defaults)
{
    lg_ctx *ctx = test_ctx(1);
    lg_embedding_opts z = { 0 }, d = lg_embedding_opts_default();
    cr_assert(!d.has_padding_idx && d.max_norm == 0 && d.norm_type == 2 && !d.scale_grad_by_freq);
    const lg_embedding_opts *os[3] = { NULL, &z, &d };
    for (int k = 0; k < 3; k++) {
        char name[16];
        snprintf(name, sizeof name, "e%d", k);
        lg_embedding *e = lg_embedding_new(ctx, name, 4, 2, os[k]);
        cr_assert_not_null(e, "%s", lg_ctx_errmsg(ctx));
        cr_assert(e->padding_idx == -1 && e->max_norm == 0 && e->norm_type == 2 &&
                  !e->scale_grad_by_freq && lg_tensor_dtype(e->weight) == LG_F32);
    }
    lg_mlp *m = lg_mlp_new(ctx, "m", 3, SHAPE(2, 3, 1), NULL);
    cr_assert(m && m->layers[0]->bias && m->layers[1]->bias && m->activation == LG_ACT_RELU);
    lg_rnn_opts ro = lg_rnn_opts_default();
    cr_assert(!ro.batch_first && ro.dropout == 0 && ro.proj_size == 0);
    lg_ctx_free(ctx);
}
