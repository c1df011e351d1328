// The training loop of lossgrad.h's overview, written in C++17 in the
// documented C++ idiom (options from their _default() functions, then plain
// assignments; nullptr for all defaults), built against the installed
// library with -Wall -Wextra -pedantic -Werror and run: it fits y = 3x - 1
// with a linear layer, mean squared error and SGD, then checks that an
// option written in C++ reaches its op (Adam's beta2, cross-entropy's
// ignore_index).
#include <lossgrad.h>

#include <cmath>
#include <cstdio>

static int fit_a_line()
{
    lg_ctx_params cp = lg_ctx_params_default();
    cp.seed = 7;
    cp.threads = 1;
    lg_ctx *ctx = lg_ctx_new(&cp);
    if (!ctx)
        return 1;
    lg_linear_opts lo = lg_linear_opts_default();
    lo.dtype = LG_F64;
    lg_linear *fc = lg_linear_new(ctx, "fc", 1, 1, &lo);
    lg_optim_opts oo = lg_optim_opts_default(LG_SGD);
    oo.lr = 0.1;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    double loss_value = 0;
    const int64_t shape[2] = { 32, 1 };
    for (int step = 0; step < 200; step++) {
        lg_tensor *x = lg_randn(ctx, LG_F64, 2, shape);
        lg_tensor *y = lg_add_scalar(ctx, lg_mul_scalar(ctx, x, 3.0), -1.0);
        lg_tensor *loss = lg_mse_loss(ctx, lg_linear_forward(ctx, fc, x), y, nullptr);
        if (lg_backward(ctx, loss) != LG_OK) { // one check for the whole step
            std::fprintf(stderr, "%s\n", lg_ctx_errmsg(ctx));
            return 1;
        }
        loss_value = lg_item(ctx, loss);
        lg_optim_step(opt);
        lg_zero_grad(ctx);
        lg_step_end(ctx); // frees x, y, loss and the tape
    }
    double w = static_cast<double *>(lg_tensor_data(fc->weight))[0];
    std::printf("C++: final loss %.3g, w = %.4f\n", loss_value, w);
    lg_ctx_free(ctx);
    return loss_value < 1e-6 && std::fabs(w - 3) < 1e-3 ? 0 : 1;
}

// Adam with beta2 = 0.98 on f(p) = p^2 from p = 1 for three steps, against
// the update rule written out.
static int adam_beta2()
{
    lg_ctx *ctx = lg_ctx_new(nullptr);
    const int64_t one[1] = { 1 };
    lg_tensor *p = lg_param_new(ctx, "p", LG_F64, 1, one);
    lg_copy_into(ctx, p, lg_ones(ctx, LG_F64, 1, one));
    lg_optim_opts oo = lg_optim_opts_default(LG_ADAM);
    oo.beta2 = 0.98;
    lg_optim *opt = lg_optim_new(ctx, &oo);
    double q = 1, m = 0, v = 0;
    for (int t = 1; t <= 3; t++) {
        lg_backward(ctx, lg_sum(ctx, lg_square(ctx, p), 0, nullptr, false));
        lg_optim_step(opt);
        lg_zero_grad(ctx);
        lg_step_end(ctx);
        double g = 2 * q;
        m = 0.9 * m + 0.1 * g;
        v = 0.98 * v + 0.02 * g * g;
        q -= 1e-3 / (1 - std::pow(0.9, t)) * m / (std::sqrt(v / (1 - std::pow(0.98, t))) + 1e-8);
    }
    double got = static_cast<double *>(lg_tensor_data(p))[0];
    bool ok = lg_ctx_status(ctx) == LG_OK && std::fabs(got - q) < 1e-12;
    std::printf("C++: Adam beta2 0.98: %.15g (expected %.15g)\n", got, q);
    lg_ctx_free(ctx);
    return ok ? 0 : 1;
}

// Cross-entropy with ignore_index = 0: only the second row counts.
static int ignore_class_0()
{
    lg_ctx *ctx = lg_ctx_new(nullptr);
    const double logits[4] = { 0, 0, 0, std::log(3.0) };
    const int64_t labels[2] = { 0, 1 }, shape[2] = { 2, 2 }, n[1] = { 2 };
    lg_ce_opts co = lg_ce_opts_default();
    co.ignore_index = 0;
    lg_tensor *l = lg_cross_entropy(ctx, lg_tensor_from(ctx, LG_F64, logits, 2, shape),
                                    lg_tensor_from(ctx, LG_I64, labels, 1, n), &co);
    double got = l ? lg_item(ctx, l) : NAN, want = std::log(4.0) - std::log(3.0);
    std::printf("C++: cross-entropy, class 0 ignored: %.15g (expected %.15g)\n", got, want);
    bool ok = std::fabs(got - want) < 1e-14;
    lg_ctx_free(ctx);
    return ok ? 0 : 1;
}

int main()
{
    return fit_a_line() | adam_beta2() | ignore_class_0();
}
