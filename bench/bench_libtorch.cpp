/* bench_libtorch: libtorch's C++ side of the lossgrad comparison (bench/run.sh).
 *
 * The cases of bench/bench_torch.py, one by one, through libtorch's C++ API:
 * the same names, shapes, input fills, requires-grad flags, losses with their
 * default options, layers (loss sum(layer(inputs) * u), u a fixed random
 * upstream gradient), models and optimizers, and the same timing rule:
 *
 *   iteration = the loss from the case's inputs, backward (grads set to undefined)
 *   batch     = k iterations, k the smallest power of two taking >= 5 ms
 *   result    = median over >= 7 batches and >= 0.25 s of time per iteration
 *
 * with 3 warm-up iterations first. It is the Python side without Python: the
 * same ATen kernels and autograd, so the gap between the two is the
 * interpreter's share of each case.
 *
 *   bench_libtorch [--threads T] [--filter S] [--list] [--memory CASE]
 *
 * Prints "KERNEL <openblas core>" and "CASE <name> <seconds> <iterations>"
 * lines; --filter S keeps the cases whose name contains S (=NAME: that case
 * only; alternatives split by '|'); --memory prints "MEMORY <name> <peak
 * RSS growth bytes> 0" after 5 iterations of one case; --values prints
 * "VALUE <name> <loss>" for each loss and layer case instead of timing it
 * (the inputs drawn in bench_torch.py's order after seed 1: a check that
 * both sides compute the same losses; bench_torch.py --values prints its
 * side, and with the same --filter both draw the same inputs).
 * Run it with OMP_WAIT_POLICY=PASSIVE and OPENBLAS_NUM_THREADS set, as
 * bench_torch.py (compare.py does).
 *
 * Where libtorch 1.13's C++ API has no functional for a loss that
 * torch.nn.functional has in Python (gaussian_nll_loss), the Python
 * function's body is written out below with the same ATen calls.
 */
#include <torch/torch.h>

#include <dlfcn.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace F = torch::nn::functional;
using torch::Tensor;

/* ------------------------------------------------------------------ */
/* Inputs                                                               */
/* ------------------------------------------------------------------ */

/* How a float input is filled (bench_torch.py's fill()). */
enum class Fill {
    Randn,   /* N(0, 1) */
    Unit,    /* U(0.05, 0.95): probabilities */
    Binary,  /* 0 or 1 */
    Pm1,     /* -1 or 1 */
    Pos,     /* U(0.5, 2): rates, variances */
    LogSm,   /* rows of log_softmax over the last dim */
    Softmax, /* rows of softmax over the last dim */
};

struct FSpec {
    std::vector<int64_t> shape;
    Fill fill;
    bool grad;
};

/* An int64 input: uniform in [lo, hi), or the constant lo. */
struct ISpec {
    std::vector<int64_t> shape;
    int64_t lo, hi;
    bool constant = false;
};

/* What a loss sees: the float inputs, the int64 inputs and, for
 * multilabel_margin, its label lists (batch_norm: its running statistics,
 * in stats). */
struct Inputs {
    std::vector<Tensor> f, i;
    Tensor extra;
    std::vector<Tensor> stats;
};

static Tensor fill(const std::vector<int64_t> &shape, Fill kind)
{
    if (kind == Fill::Randn)
        return torch::randn(shape);
    Tensor u = torch::rand(shape); /* drawn for every other fill, as in Python */
    switch (kind) {
    case Fill::Unit: return u.mul(0.9).add(0.05);
    case Fill::Binary: return (u >= 0.5).to(torch::kFloat);
    case Fill::Pm1: return torch::where(u < 0.5, -1.0, 1.0);
    case Fill::Pos: return u.mul(1.5).add(0.5);
    case Fill::LogSm: return torch::log_softmax(torch::randn(shape), -1);
    case Fill::Softmax: return torch::softmax(torch::randn(shape), -1);
    default: throw std::invalid_argument("fill");
    }
}

static Tensor ints(const ISpec &s)
{
    if (s.constant)
        return torch::full(s.shape, s.lo, torch::kLong);
    return torch::randint(s.lo, s.hi, s.shape);
}

/* multilabel_margin's targets: rows of three labels, then -1 */
static Tensor labels_lists(int64_t n, int64_t c)
{
    Tensor t = torch::full({ n, c }, -1, torch::kLong);
    auto a = t.accessor<int64_t, 2>();
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < 3; j++)
            a[r][j] = (r + j * 3) % c;
    return t;
}

/* ------------------------------------------------------------------ */
/* Composite losses: bench_torch.py's Python definitions, op for op     */
/* ------------------------------------------------------------------ */

namespace composite
{

/* torchvision.ops.sigmoid_focal_loss, reduction mean (alpha 0.25, gamma 2) */
static Tensor focal(const Tensor &x, const Tensor &y)
{
    const double alpha = 0.25, gamma = 2.0;
    Tensor p = torch::sigmoid(x);
    Tensor ce = F::binary_cross_entropy_with_logits(
        x, y, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
    Tensor p_t = p * y + torch::rsub(p, 1) * torch::rsub(y, 1);
    Tensor loss = ce * torch::rsub(p_t, 1).pow(gamma);
    loss = (alpha * y + (1 - alpha) * torch::rsub(y, 1)) * loss;
    return loss.mean();
}

/* soft Dice over the spatial dims after softmax over channels (smooth 1) */
static Tensor dice(const Tensor &x, const Tensor &y)
{
    const double smooth = 1.0;
    Tensor p = torch::softmax(x, 1);
    std::vector<int64_t> dims;
    for (int64_t d = 2; d < x.dim(); d++)
        dims.push_back(d);
    Tensor inter = (p * y).sum(dims), sp = p.sum(dims), st = y.sum(dims);
    return torch::rsub((2 * inter + smooth) / (sp + st + smooth), 1).mean(1).mean();
}

/* contrastive loss on pairwise distances (margin 1) */
static Tensor contrastive(const Tensor &x1, const Tensor &x2, const Tensor &y)
{
    const double margin = 1.0;
    Tensor d = F::pairwise_distance(x1, x2);
    Tensor near = y * d.pow(2);
    Tensor far = torch::rsub(y, 1) * torch::clamp(torch::rsub(d, margin), 0).pow(2);
    return (0.5 * (near + far)).mean();
}

/* NT-Xent (SimCLR) over the 2n normalised rows (temperature 0.1) */
static Tensor nt_xent(const Tensor &x1, const Tensor &x2)
{
    const double tau = 0.1;
    const int64_t n = x1.size(0);
    auto rows = F::NormalizeFuncOptions().dim(1);
    Tensor z = torch::cat({ F::normalize(x1, rows), F::normalize(x2, rows) });
    Tensor s = torch::matmul(z, z.t()) * (1 / tau);
    s = s.masked_fill(torch::eye(2 * n, torch::kBool), -std::numeric_limits<double>::infinity());
    Tensor partner = (torch::arange(2 * n) + n) % (2 * n);
    Tensor ce = F::cross_entropy(s, partner, F::CrossEntropyFuncOptions().reduction(torch::kNone));
    return ce.view({ 2, n }).sum(0).mul(0.5).mean();
}

/* pinball loss (q 0.5) */
static Tensor quantile(const Tensor &x, const Tensor &y)
{
    const double q = 0.5;
    Tensor e = y - x;
    return torch::maximum(q * e, (q - 1) * e).mean();
}

/* PolyLoss, first term (epsilon 1) */
static Tensor poly1(const Tensor &x, const Tensor &y)
{
    const double epsilon = 1.0;
    Tensor pt = torch::softmax(x, 1).gather(1, y.unsqueeze(1)).squeeze(1);
    Tensor ce = F::cross_entropy(x, y, F::CrossEntropyFuncOptions().reduction(torch::kNone));
    return (ce + epsilon * torch::rsub(pt, 1)).mean();
}

/* torch.nn.functional.gaussian_nll_loss (full false, eps 1e-6, mean): not
 * in libtorch 1.13's C++ functionals; Python's body for var of input's
 * shape, with its negative-variance check. */
static Tensor gaussian_nll(const Tensor &input, const Tensor &target, const Tensor &var_in)
{
    const double eps = 1e-6;
    if (torch::any(var_in < 0).item<bool>())
        throw std::invalid_argument("var has negative entry/entries");
    Tensor var = var_in.clone();
    {
        torch::NoGradGuard no_grad;
        var.clamp_(eps);
    }
    Tensor loss = 0.5 * (torch::log(var) + (input - target).pow(2) / var);
    return loss.mean();
}

} // namespace composite

/* ------------------------------------------------------------------ */
/* The losses of the cases: each with its default options               */
/* ------------------------------------------------------------------ */

using LossFn = Tensor (*)(const Inputs &);

static Tensor l1(const Inputs &a)
{
    return F::l1_loss(a.f[0], a.f[1]);
}
static Tensor mse(const Inputs &a)
{
    return F::mse_loss(a.f[0], a.f[1]);
}
static Tensor smooth_l1(const Inputs &a)
{
    return F::smooth_l1_loss(a.f[0], a.f[1]);
}
static Tensor quantile_loss(const Inputs &a)
{
    return composite::quantile(a.f[0], a.f[1]);
}
static Tensor huber(const Inputs &a)
{
    return F::huber_loss(a.f[0], a.f[1]);
}
static Tensor kl_batchmean(const Inputs &a)
{
    return F::kl_div(a.f[0], a.f[1], F::KLDivFuncOptions().reduction(torch::kBatchMean));
}
static Tensor nll(const Inputs &a)
{
    return F::nll_loss(a.f[0], a.i[0]);
}
static Tensor ce(const Inputs &a)
{
    return F::cross_entropy(a.f[0], a.i[0]);
}
static Tensor poly1_loss(const Inputs &a)
{
    return composite::poly1(a.f[0], a.i[0]);
}
static Tensor bce(const Inputs &a)
{
    return F::binary_cross_entropy(a.f[0], a.f[1]);
}
static Tensor bce_logits(const Inputs &a)
{
    return F::binary_cross_entropy_with_logits(a.f[0], a.f[1]);
}
static Tensor mlsm(const Inputs &a)
{
    return F::multilabel_soft_margin_loss(a.f[0], a.f[1]);
}
static Tensor hinge(const Inputs &a)
{
    return F::hinge_embedding_loss(a.f[0], a.f[1]);
}
static Tensor triplet(const Inputs &a)
{
    return F::triplet_margin_loss(a.f[0], a.f[1], a.f[2]);
}
static Tensor ctc(const Inputs &a)
{
    return F::ctc_loss(a.f[0], a.i[0], a.i[1], a.i[2]);
}
static Tensor poisson(const Inputs &a)
{
    return F::poisson_nll_loss(a.f[0], a.f[1]);
}
static Tensor gaussian(const Inputs &a)
{
    return composite::gaussian_nll(a.f[0], a.f[1], a.f[2]);
}
static Tensor ranking(const Inputs &a)
{
    return F::margin_ranking_loss(a.f[0], a.f[1], a.f[2]);
}
static Tensor multi_margin(const Inputs &a)
{
    return F::multi_margin_loss(a.f[0], a.i[0]);
}
static Tensor multilabel_margin(const Inputs &a)
{
    return F::multilabel_margin_loss(a.f[0], a.extra);
}
static Tensor soft_margin(const Inputs &a)
{
    return F::soft_margin_loss(a.f[0], a.f[1]);
}
static Tensor cosine(const Inputs &a)
{
    return F::cosine_embedding_loss(a.f[0], a.f[1], a.f[2]);
}
static Tensor triplet_distance(const Inputs &a)
{
    return F::triplet_margin_with_distance_loss(a.f[0], a.f[1], a.f[2]);
}
static Tensor focal_loss(const Inputs &a)
{
    return composite::focal(a.f[0], a.f[1]);
}
static Tensor dice_loss(const Inputs &a)
{
    return composite::dice(a.f[0], a.f[1]);
}
static Tensor contrastive_loss(const Inputs &a)
{
    return composite::contrastive(a.f[0], a.f[1], a.f[2]);
}
static Tensor nt_xent_loss(const Inputs &a)
{
    return composite::nt_xent(a.f[0], a.f[1]);
}

/* ------------------------------------------------------------------ */
/* Layers: sum(layer(x) * u), u the last float input                    */
/* ------------------------------------------------------------------ */

static Tensor conv2d_pad1(const Inputs &a)
{
    auto o = F::Conv2dFuncOptions().bias(a.f[2]).padding(1);
    return (F::conv2d(a.f[0], a.f[1], o) * a.f[3]).sum();
}
static Tensor batch_norm_train(const Inputs &a)
{
    auto o = F::BatchNormFuncOptions().weight(a.f[1]).bias(a.f[2]).training(true);
    return (F::batch_norm(a.f[0], a.stats[0], a.stats[1], o) * a.f[3]).sum();
}
static Tensor layer_norm_last(const Inputs &a)
{
    auto o = F::LayerNormFuncOptions({ a.f[0].size(-1) }).weight(a.f[1]).bias(a.f[2]);
    return (F::layer_norm(a.f[0], o) * a.f[3]).sum();
}
static Tensor max_pool2d_k2(const Inputs &a)
{
    return (F::max_pool2d(a.f[0], F::MaxPool2dFuncOptions(2)) * a.f[1]).sum();
}

/* ------------------------------------------------------------------ */
/* Steps: the training-step and optimizer cases (bench_torch.py's Model) */
/* ------------------------------------------------------------------ */

/* Python's opt.zero_grad(set_to_none=True): libtorch 1.13's
 * Optimizer::zero_grad() zeroes the gradients in place instead. */
static void grads_to_none(const std::vector<Tensor> &params)
{
    for (const Tensor &p : params)
        p.mutable_grad() = Tensor(); /* mutable_grad() is const in libtorch */
}

struct Step {
    virtual ~Step() = default;
    virtual void run(const Inputs &in) = 0;
};

/* softmax regression and the MLP: cross_entropy on the logits, SGD lr 0.01 */
struct ClassifierStep : Step {
    std::function<Tensor(const Tensor &)> forward;
    std::vector<Tensor> params;
    std::unique_ptr<torch::optim::SGD> opt;

    ClassifierStep(std::function<Tensor(const Tensor &)> fwd, std::vector<Tensor> ps)
        : forward(std::move(fwd)), params(std::move(ps)),
          opt(new torch::optim::SGD(params, torch::optim::SGDOptions(0.01)))
    {
    }
    void run(const Inputs &in) override
    {
        F::cross_entropy(forward(in.f[0]), in.i[0]).backward();
        opt->step();
        grads_to_none(params);
    }
};

static std::unique_ptr<Step> softmax_step()
{
    torch::nn::Linear net(784, 10);
    return std::make_unique<ClassifierStep>(
        [net](const Tensor &x) mutable { return net->forward(x); }, net->parameters());
}

static torch::nn::Sequential two_layers(int64_t in, int64_t hidden, int64_t out)
{
    return torch::nn::Sequential(torch::nn::Linear(in, hidden), torch::nn::ReLU(),
                                 torch::nn::Linear(hidden, out));
}

static std::unique_ptr<Step> mlp_step()
{
    torch::nn::Sequential net = two_layers(784, 256, 10);
    return std::make_unique<ClassifierStep>(
        [net](const Tensor &x) mutable { return net->forward(x); }, net->parameters());
}

/* a siamese embedding trained with triplet_margin_loss, Adam lr 1e-3 */
struct SiameseStep : Step {
    torch::nn::Sequential net = two_layers(784, 256, 64);
    std::vector<Tensor> params = net->parameters();
    torch::optim::Adam opt{ params, torch::optim::AdamOptions(1e-3) };

    void run(const Inputs &in) override
    {
        Tensor loss = F::triplet_margin_loss(net->forward(in.f[0]), net->forward(in.f[1]),
                                             net->forward(in.f[2]));
        loss.backward();
        opt.step();
        grads_to_none(params);
    }
};

/* GRU(28, 128) over 28 steps, a linear read-out to 11 classes, log_softmax,
 * ctc_loss, Adam lr 1e-3 */
struct GruCtcStep : Step {
    torch::nn::GRU gru{ torch::nn::GRUOptions(28, 128) };
    torch::nn::Linear out{ 128, 11 };
    std::vector<Tensor> params = all_params();
    torch::optim::Adam opt{ params, torch::optim::AdamOptions(1e-3) };

    std::vector<Tensor> all_params() const
    {
        std::vector<Tensor> ps = gru->parameters(), o = out->parameters();
        ps.insert(ps.end(), o.begin(), o.end());
        return ps;
    }
    void run(const Inputs &in) override
    {
        Tensor h = std::get<0>(gru->forward(in.f[0]));
        Tensor lp = torch::log_softmax(out->forward(h), 2);
        F::ctc_loss(lp, in.i[0], in.i[1], in.i[2]).backward();
        opt.step();
        grads_to_none(params);
    }
};

/* examples/cnn/fashion_cnn.c's model in training mode: conv 3x3 (32), max
 * pool 2, batch norm, ReLU, conv 3x3 (64), max pool 2, batch norm, ReLU,
 * dropout 0.3, linear 3136 -> 10; cross_entropy, AdamW lr 2e-3, weight
 * decay 1e-4 */
struct CnnStep : Step {
    torch::nn::Sequential net = make_net();
    std::vector<Tensor> params = net->parameters();
    torch::optim::AdamW opt{ params, torch::optim::AdamWOptions(2e-3).weight_decay(1e-4) };

    static torch::nn::Sequential make_net()
    {
        namespace nn = torch::nn;
        return nn::Sequential(
            nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)),
            nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::BatchNorm2d(32), nn::ReLU(),
            nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)),
            nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::BatchNorm2d(64), nn::ReLU(), nn::Flatten(),
            nn::Dropout(0.3),
            nn::Linear(64 * 7 * 7, 10));
    }
    void run(const Inputs &in) override
    {
        F::cross_entropy(net->forward(in.f[0]), in.i[0]).backward();
        opt.step();
        grads_to_none(params);
    }
};

/* attention/...: nn.MultiheadAttention(128, 4) self-attention with a
 * causal bool mask, need_weights false; libtorch's module has no
 * batch_first, so [N, L, E] is transposed to [L, N, E] and back, as
 * Python's batch_first module does inside. sum(y * u), gradients of x and
 * the module's parameters, set to none after each iteration. */
struct AttentionStep : Step {
    torch::nn::MultiheadAttention mha{ torch::nn::MultiheadAttentionOptions(128, 4) };
    std::vector<Tensor> params = mha->parameters();
    Tensor mask = torch::triu(torch::ones({ 128, 128 }, torch::kBool), 1);

    void run(const Inputs &in) override
    {
        Tensor x = in.f[0].transpose(0, 1);
        Tensor y = std::get<0>(mha->forward(x, x, x, {}, false, mask)).transpose(0, 1);
        (y * in.f[1]).sum().backward();
        grads_to_none(params);
        grads_to_none({ in.f[0] });
    }
};

/* step/transformer: token + position embeddings (vocab 96, context 128,
 * E 128), two pre-norm encoder layers (4 heads, ff 512, GELU, causal,
 * dropout 0) composed as Python's TransformerEncoderLayer(norm_first=True)
 * does in training (libtorch 1.13's layer has no norm_first), final layer
 * norm, linear head, cross_entropy on the next tokens; AdamW's defaults */
struct TransformerStep : Step {
    struct Layer {
        torch::nn::MultiheadAttention attn{ torch::nn::MultiheadAttentionOptions(128, 4) };
        torch::nn::Linear linear1{ 128, 512 }, linear2{ 512, 128 };
        torch::nn::LayerNorm norm1{ torch::nn::LayerNormOptions({ 128 }) },
            norm2{ torch::nn::LayerNormOptions({ 128 }) };
    };
    torch::nn::Embedding tok{ 96, 128 }, pos{ 128, 128 };
    Layer layers[2];
    torch::nn::LayerNorm norm{ torch::nn::LayerNormOptions({ 128 }) };
    torch::nn::Linear head{ 128, 96 };
    std::vector<Tensor> params = all_params();
    torch::optim::AdamW opt{ params, torch::optim::AdamWOptions(1e-3) };
    Tensor mask = torch::triu(torch::ones({ 128, 128 }, torch::kBool), 1);

    std::vector<Tensor> all_params()
    {
        std::vector<Tensor> ps;
        auto add = [&ps](const std::vector<Tensor> &q) { ps.insert(ps.end(), q.begin(), q.end()); };
        add(tok->parameters()), add(pos->parameters());
        for (Layer &l : layers)
            add(l.attn->parameters()), add(l.linear1->parameters()), add(l.linear2->parameters()),
                add(l.norm1->parameters()), add(l.norm2->parameters());
        add(norm->parameters()), add(head->parameters());
        return ps;
    }
    void run(const Inputs &in) override
    {
        const int64_t t = in.i[0].size(1);
        Tensor h = tok->forward(in.i[0]) + pos->forward(torch::arange(t));
        for (Layer &l : layers) {
            Tensor a = l.norm1->forward(h).transpose(0, 1);
            h = h + std::get<0>(l.attn->forward(a, a, a, {}, false, mask)).transpose(0, 1);
            h = h + l.linear2->forward(torch::gelu(l.linear1->forward(l.norm2->forward(h))));
        }
        Tensor logits = head->forward(norm->forward(h));
        F::cross_entropy(logits.reshape({ -1, 96 }), in.i[1].reshape({ -1 })).backward();
        opt.step();
        grads_to_none(params);
    }
};

/* second order (issue 17): the MLP's cross_entropy and its gradient with
 * respect to the four parameters (grad/), or the Hessian-vector product
 * along fixed random directions by double backward (hvp/), or by the
 * construction torch.autograd.functional.hvp uses (hvp_functional/: the
 * gradient with create_graph, its vector-Jacobian product with a zero
 * upstream that requires grad, then that one's gradient with respect to
 * the upstream along v; three walks) */
enum class Order { Grad, Hvp, HvpFunctional };
struct MlpSecondOrder : Step {
    torch::nn::Sequential net = two_layers(784, 256, 10);
    std::vector<Tensor> params = net->parameters(), v;
    Order order;

    explicit MlpSecondOrder(Order o) : order(o)
    {
        for (const Tensor &p : params)
            v.push_back(torch::randn_like(p));
    }
    void run(const Inputs &in) override
    {
        Tensor loss = F::cross_entropy(net->forward(in.f[0]), in.i[0]);
        if (order == Order::Grad) {
            torch::autograd::grad({ loss }, params);
            return;
        }
        std::vector<Tensor> g = torch::autograd::grad({ loss }, params, {}, true, true);
        if (order == Order::HvpFunctional) {
            std::vector<Tensor> u;
            for (const Tensor &p : params)
                u.push_back(torch::zeros_like(p).requires_grad_(true));
            std::vector<Tensor> back = torch::autograd::grad(g, params, u, true, true);
            torch::autograd::grad(back, u, v);
            return;
        }
        Tensor dot = (g[0] * v[0]).sum();
        for (size_t k = 1; k < g.size(); k++)
            dot = dot + (g[k] * v[k]).sum();
        torch::autograd::grad({ dot }, params);
    }
};

/* the MLP step's six matrix products alone, no autograd (its BLAS limit) */
struct MlpMatmuls : Step {
    void run(const Inputs &in) override
    {
        torch::NoGradGuard no_grad;
        const Tensor &x = in.f[0], &w1 = in.f[1], &w2 = in.f[2], &g2 = in.f[3];
        Tensor h = torch::matmul(x, w1.t());
        Tensor o = torch::matmul(h, w2.t());
        Tensor dh = torch::matmul(g2, w2);
        Tensor dw2 = torch::matmul(g2.t(), h);
        Tensor dw1 = torch::matmul(dh.t(), x);
        Tensor dx = torch::matmul(dh, w1);
        (void)o, (void)dw2, (void)dw1, (void)dx;
    }
};

/* the GRU step's recurrent products alone: h W^T, dG W, dG^T h per time step */
struct GruMatmuls : Step {
    void run(const Inputs &in) override
    {
        torch::NoGradGuard no_grad;
        const Tensor &h = in.f[0], &w = in.f[1], &dg = in.f[2];
        for (int t = 0; t < 28; t++) {
            Tensor gh = torch::matmul(h, w.t());
            Tensor dh = torch::matmul(dg, w);
            Tensor dw = torch::matmul(dg.t(), h);
            (void)gh, (void)dh, (void)dw;
        }
    }
};

/* One optimizer step on a 1M-element parameter (f[0]) whose gradient (f[1])
 * stays, in PyTorch's default configurations (bench_torch.py's OPTIMIZERS). */
struct OptimStep : Step {
    std::string which;
    Tensor param;
    std::unique_ptr<torch::optim::Optimizer> opt;

    explicit OptimStep(std::string w) : which(std::move(w))
    {
    }
    std::unique_ptr<torch::optim::Optimizer> make(std::vector<Tensor> ps) const
    {
        namespace O = torch::optim;
        if (which == "sgd")
            return std::make_unique<O::SGD>(ps, O::SGDOptions(0.01));
        if (which == "sgd_momentum")
            return std::make_unique<O::SGD>(ps, O::SGDOptions(0.01).momentum(0.9));
        if (which == "adam")
            return std::make_unique<O::Adam>(ps, O::AdamOptions());
        if (which == "adamw")
            return std::make_unique<O::AdamW>(ps, O::AdamWOptions());
        if (which == "rmsprop")
            return std::make_unique<O::RMSprop>(ps, O::RMSpropOptions());
        if (which == "rmsprop_centered_momentum")
            return std::make_unique<O::RMSprop>(ps,
                                                O::RMSpropOptions().momentum(0.9).centered(true));
        throw std::invalid_argument("optimizer " + which);
    }
    void run(const Inputs &in) override
    {
        if (!opt) { /* made from the case's inputs at the first step */
            param = in.f[0].detach().clone().requires_grad_(true);
            param.mutable_grad() = in.f[1].detach().clone();
            opt = make({ param });
        }
        opt->step(); /* the gradient stays */
    }
};

/* ------------------------------------------------------------------ */
/* Cases                                                                */
/* ------------------------------------------------------------------ */

using StepMaker = std::function<std::unique_ptr<Step>()>;

/* A loss case (loss set) or a step case (step set). */
struct Case {
    std::string name;
    LossFn loss;
    StepMaker step;
    std::vector<FSpec> f;
    std::vector<ISpec> i;

    Case(std::string n, LossFn l, std::vector<FSpec> fs, std::vector<ISpec> is)
        : name(std::move(n)), loss(l), f(std::move(fs)), i(std::move(is))
    {
    }
    Case(std::string n, StepMaker s, std::vector<FSpec> fs, std::vector<ISpec> is)
        : name(std::move(n)), loss(nullptr), step(std::move(s)), f(std::move(fs)), i(std::move(is))
    {
    }
};

template <class S> static StepMaker make()
{
    return [] { return std::unique_ptr<Step>(new S()); };
}

static StepMaker optim(const char *which)
{
    return [which] { return std::unique_ptr<Step>(new OptimStep(which)); };
}

static StepMaker order_step(Order o)
{
    return [o] { return std::unique_ptr<Step>(new MlpSecondOrder(o)); };
}

static const Fill Randn = Fill::Randn, Unit = Fill::Unit, Binary = Fill::Binary, Pm1 = Fill::Pm1,
                  Pos = Fill::Pos, LogSm = Fill::LogSm, Softmax = Fill::Softmax;
static const int64_t M = 1048576;

/* bench_torch.py's CASES, in its order, then its optimizer cases (rows
 * `{ "<name>", <loss or step>, <float inputs>, <int inputs> }`; float
 * input: shape, fill, requires grad; int input: shape, lo, hi, constant) */
// clang-format off
static const std::vector<Case> CASES = {
    /* the guide's losses and the others, small */
    { "l1_loss/64", l1, { { { 64 }, Randn, 1 }, { { 64 }, Randn, 0 } }, {} },
    { "mse_loss/64", mse, { { { 64 }, Randn, 1 }, { { 64 }, Randn, 0 } }, {} },
    { "smooth_l1_loss/64", smooth_l1, { { { 64 }, Randn, 1 }, { { 64 }, Randn, 0 } }, {} },
    { "quantile_loss/64", quantile_loss, { { { 64 }, Randn, 1 }, { { 64 }, Randn, 0 } }, {} },
    { "huber_loss/64", huber, { { { 64 }, Randn, 1 }, { { 64 }, Randn, 0 } }, {} },
    { "kl_div/8x10", kl_batchmean, { { { 8, 10 }, LogSm, 1 }, { { 8, 10 }, Softmax, 0 } }, {} },
    { "nll_loss/8x10", nll, { { { 8, 10 }, LogSm, 1 } }, { { { 8 }, 0, 10 } } },
    { "cross_entropy/8x10", ce, { { { 8, 10 }, Randn, 1 } }, { { { 8 }, 0, 10 } } },
    { "poly1_loss/8x10", poly1_loss, { { { 8, 10 }, Randn, 1 } }, { { { 8 }, 0, 10 } } },
    { "binary_cross_entropy/8x10", bce, { { { 8, 10 }, Unit, 1 }, { { 8, 10 }, Binary, 0 } }, {} },
    { "bce_with_logits/8x10", bce_logits, { { { 8, 10 }, Randn, 1 }, { { 8, 10 }, Binary, 0 } },
      {} },
    { "multilabel_soft_margin/8x10", mlsm, { { { 8, 10 }, Randn, 1 }, { { 8, 10 }, Binary, 0 } },
      {} },
    { "hinge_embedding/64", hinge, { { { 64 }, Pos, 1 }, { { 64 }, Pm1, 0 } }, {} },
    { "triplet_margin/8x10", triplet,
      { { { 8, 10 }, Randn, 1 }, { { 8, 10 }, Randn, 1 }, { { 8, 10 }, Randn, 1 } }, {} },
    { "ctc_loss/T10N2C5S3", ctc, { { { 10, 2, 5 }, LogSm, 1 } },
      { { { 2, 3 }, 1, 5 }, { { 2 }, 10, 10, true }, { { 2 }, 3, 3, true } } },
    { "poisson_nll/64", poisson, { { { 64 }, Randn, 1 }, { { 64 }, Pos, 0 } }, {} },
    { "gaussian_nll/8x8", gaussian,
      { { { 8, 8 }, Randn, 1 }, { { 8, 8 }, Randn, 0 }, { { 8, 8 }, Pos, 1 } }, {} },
    { "margin_ranking/64", ranking,
      { { { 64 }, Randn, 1 }, { { 64 }, Randn, 1 }, { { 64 }, Pm1, 0 } }, {} },
    { "multi_margin/8x10", multi_margin, { { { 8, 10 }, Randn, 1 } }, { { { 8 }, 0, 10 } } },
    { "multilabel_margin/8x10", multilabel_margin, { { { 8, 10 }, Randn, 1 } }, {} },
    { "soft_margin/64", soft_margin, { { { 64 }, Randn, 1 }, { { 64 }, Pm1, 0 } }, {} },
    { "cosine_embedding/8x10", cosine,
      { { { 8, 10 }, Randn, 1 }, { { 8, 10 }, Randn, 1 }, { { 8 }, Pm1, 0 } }, {} },
    { "triplet_with_distance/8x10", triplet_distance,
      { { { 8, 10 }, Randn, 1 }, { { 8, 10 }, Randn, 1 }, { { 8, 10 }, Randn, 1 } }, {} },
    { "sigmoid_focal/8x10", focal_loss, { { { 8, 10 }, Randn, 1 }, { { 8, 10 }, Binary, 0 } }, {} },
    { "dice/2x4x4x4", dice_loss, { { { 2, 4, 4, 4 }, Randn, 1 }, { { 2, 4, 4, 4 }, Binary, 0 } },
      {} },
    { "contrastive/8x10", contrastive_loss,
      { { { 8, 10 }, Randn, 1 }, { { 8, 10 }, Randn, 1 }, { { 8 }, Binary, 0 } }, {} },
    { "nt_xent/8x10", nt_xent_loss, { { { 8, 10 }, Randn, 1 }, { { 8, 10 }, Randn, 1 } }, {} },
    /* large */
    { "l1_loss/1M", l1, { { { M }, Randn, 1 }, { { M }, Randn, 0 } }, {} },
    { "mse_loss/1M", mse, { { { M }, Randn, 1 }, { { M }, Randn, 0 } }, {} },
    { "smooth_l1_loss/1M", smooth_l1, { { { M }, Randn, 1 }, { { M }, Randn, 0 } }, {} },
    { "huber_loss/1M", huber, { { { M }, Randn, 1 }, { { M }, Randn, 0 } }, {} },
    { "quantile_loss/1M", quantile_loss, { { { M }, Randn, 1 }, { { M }, Randn, 0 } }, {} },
    { "hinge_embedding/1M", hinge, { { { M }, Pos, 1 }, { { M }, Pm1, 0 } }, {} },
    { "cross_entropy/4096x1000", ce, { { { 4096, 1000 }, Randn, 1 } }, { { { 4096 }, 0, 1000 } } },
    { "poly1_loss/4096x1000", poly1_loss, { { { 4096, 1000 }, Randn, 1 } },
      { { { 4096 }, 0, 1000 } } },
    { "nll_loss/4096x1000", nll, { { { 4096, 1000 }, LogSm, 1 } }, { { { 4096 }, 0, 1000 } } },
    { "kl_div/4096x1000", kl_batchmean,
      { { { 4096, 1000 }, LogSm, 1 }, { { 4096, 1000 }, Softmax, 0 } }, {} },
    { "binary_cross_entropy/4096x1000", bce,
      { { { 4096, 1000 }, Unit, 1 }, { { 4096, 1000 }, Binary, 0 } }, {} },
    { "bce_with_logits/4096x1000", bce_logits,
      { { { 4096, 1000 }, Randn, 1 }, { { 4096, 1000 }, Binary, 0 } }, {} },
    { "multilabel_soft_margin/4096x1000", mlsm,
      { { { 4096, 1000 }, Randn, 1 }, { { 4096, 1000 }, Binary, 0 } }, {} },
    { "triplet_margin/4096x128", triplet,
      { { { 4096, 128 }, Randn, 1 }, { { 4096, 128 }, Randn, 1 }, { { 4096, 128 }, Randn, 1 } },
      {} },
    { "ctc_loss/T50N64C20S10", ctc, { { { 50, 64, 20 }, LogSm, 1 } },
      { { { 64, 10 }, 1, 20 }, { { 64 }, 50, 50, true }, { { 64 }, 10, 10, true } } },
    { "ctc_loss/T200N32C40S40", ctc, { { { 200, 32, 40 }, LogSm, 1 } },
      { { { 32, 40 }, 1, 40 }, { { 32 }, 200, 200, true }, { { 32 }, 40, 40, true } } },
    /* training steps */
    { "train/softmax_784x10_b128", StepMaker(softmax_step), { { { 128, 784 }, Randn, 0 } },
      { { { 128 }, 0, 10 } } },
    { "train/mlp_784_256_10_b128", StepMaker(mlp_step), { { { 128, 784 }, Randn, 0 } },
      { { { 128 }, 0, 10 } } },
    { "train/mlp_matmuls_only", make<MlpMatmuls>(),
      { { { 128, 784 }, Randn, 0 }, { { 256, 784 }, Randn, 0 }, { { 10, 256 }, Randn, 0 },
        { { 128, 10 }, Randn, 0 } },
      {} },
    { "train/siamese_784_256_64_b128", make<SiameseStep>(),
      { { { 128, 784 }, Randn, 0 }, { { 128, 784 }, Randn, 0 }, { { 128, 784 }, Randn, 0 } }, {} },
    { "train/gru_28_128_T28_b64_ctc", make<GruCtcStep>(), { { { 28, 64, 28 }, Randn, 0 } },
      { { { 64, 5 }, 1, 11 }, { { 64 }, 28, 28, true }, { { 64 }, 5, 5, true } } },
    { "train/gru_matmuls_only", make<GruMatmuls>(),
      { { { 64, 128 }, Randn, 0 }, { { 384, 128 }, Randn, 0 }, { { 64, 384 }, Randn, 0 } }, {} },
    /* layers (issue 16): the upstream gradient u last */
    { "conv2d/64x1x28x28-32k3", conv2d_pad1,
      { { { 64, 1, 28, 28 }, Randn, 1 }, { { 32, 1, 3, 3 }, Randn, 1 }, { { 32 }, Randn, 1 },
        { { 64, 32, 28, 28 }, Randn, 0 } }, {} },
    { "conv2d/64x32x14x14-64k3", conv2d_pad1,
      { { { 64, 32, 14, 14 }, Randn, 1 }, { { 64, 32, 3, 3 }, Randn, 1 }, { { 64 }, Randn, 1 },
        { { 64, 64, 14, 14 }, Randn, 0 } }, {} },
    { "batch_norm/64x64x14x14", batch_norm_train,
      { { { 64, 64, 14, 14 }, Randn, 1 }, { { 64 }, Randn, 1 }, { { 64 }, Randn, 1 },
        { { 64, 64, 14, 14 }, Randn, 0 } }, {} },
    { "layer_norm/8192x512", layer_norm_last,
      { { { 8192, 512 }, Randn, 1 }, { { 512 }, Randn, 1 }, { { 512 }, Randn, 1 },
        { { 8192, 512 }, Randn, 0 } }, {} },
    { "max_pool2d/64x32x28x28-k2", max_pool2d_k2,
      { { { 64, 32, 28, 28 }, Randn, 1 }, { { 64, 32, 14, 14 }, Randn, 0 } }, {} },
    { "step/cnn", make<CnnStep>(), { { { 64, 1, 28, 28 }, Randn, 0 } }, { { { 64 }, 0, 10 } } },
    { "attention/32x128x128-h4-causal", make<AttentionStep>(),
      { { { 32, 128, 128 }, Randn, 1 }, { { 32, 128, 128 }, Randn, 0 } }, {} },
    /* tokens, and targets (replaced by the next tokens in setup) */
    { "step/transformer", make<TransformerStep>(), {},
      { { { 32, 128 }, 0, 96 }, { { 32, 128 }, 0, 96 } } },
    /* second order (issue 17) */
    { "grad/mlp_784_256_10_b128", order_step(Order::Grad),
      { { { 128, 784 }, Randn, 0 } }, { { { 128 }, 0, 10 } } },
    { "hvp/mlp_784_256_10_b128", order_step(Order::Hvp),
      { { { 128, 784 }, Randn, 0 } }, { { { 128 }, 0, 10 } } },
    { "hvp_functional/mlp_784_256_10_b128", order_step(Order::HvpFunctional),
      { { { 128, 784 }, Randn, 0 } }, { { { 128 }, 0, 10 } } },
    /* optimizer steps on 1M float32 parameters */
    { "optim/sgd_1M", optim("sgd"), { { { M }, Randn, 0 }, { { M }, Randn, 0 } }, {} },
    { "optim/sgd_momentum_1M", optim("sgd_momentum"), { { { M }, Randn, 0 }, { { M }, Randn, 0 } },
      {} },
    { "optim/adam_1M", optim("adam"), { { { M }, Randn, 0 }, { { M }, Randn, 0 } }, {} },
    { "optim/adamw_1M", optim("adamw"), { { { M }, Randn, 0 }, { { M }, Randn, 0 } }, {} },
    { "optim/rmsprop_1M", optim("rmsprop"), { { { M }, Randn, 0 }, { { M }, Randn, 0 } }, {} },
    { "optim/rmsprop_centered_momentum_1M", optim("rmsprop_centered_momentum"),
      { { { M }, Randn, 0 }, { { M }, Randn, 0 } }, {} },
};
// clang-format on

/* ------------------------------------------------------------------ */
/* Harness                                                              */
/* ------------------------------------------------------------------ */

/* A case's inputs and, for a step case, its model and optimizer. */
struct State {
    Inputs in;
    std::unique_ptr<Step> step;
};

/* As bench_torch.py's setup(): float inputs, int inputs, then the model
 * (so that the random draws come in the same order). */
static State setup(const Case &c)
{
    State s;
    for (const FSpec &f : c.f)
        s.in.f.push_back(fill(f.shape, f.fill).requires_grad_(f.grad));
    for (const ISpec &i : c.i)
        s.in.i.push_back(ints(i));
    if (c.name == "step/transformer") /* next-token targets (the last one stays random) */
        s.in.i[1].slice(1, 0, -1).copy_(s.in.i[0].slice(1, 1));
    if (c.step)
        s.step = c.step();
    if (c.name.rfind("multilabel_margin", 0) == 0)
        s.in.extra = labels_lists(8, 10);
    if (c.name.rfind("batch_norm", 0) == 0) /* running statistics, updated in place */
        s.in.stats = { torch::zeros({ c.f[0].shape[1] }), torch::ones({ c.f[0].shape[1] }) };
    return s;
}

/* One iteration: the loss, backward, every float input's grad undefined
 * again (Python's t.grad = None); a step case runs its step. */
static void iterate(const Case &c, State &s)
{
    if (s.step) {
        s.step->run(s.in);
        return;
    }
    c.loss(s.in).backward();
    for (Tensor &t : s.in.f)
        t.mutable_grad() = Tensor();
}

static double now()
{
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

/* seconds per iteration (the median batch) and the iterations timed */
static std::pair<double, int64_t> measure(const Case &c, State &s)
{
    for (int w = 0; w < 3; w++)
        iterate(c, s);
    int64_t k = 1;
    for (;;) {
        double t0 = now();
        for (int64_t j = 0; j < k; j++)
            iterate(c, s);
        if (now() - t0 >= 5e-3 || k >= (1 << 20))
            break;
        k *= 2;
    }
    std::vector<double> per;
    double total = 0;
    while (per.size() < 256 && (per.size() < 7 || total < 0.25)) {
        double t0 = now();
        for (int64_t j = 0; j < k; j++)
            iterate(c, s);
        double dt = now() - t0;
        total += dt;
        per.push_back(dt / (double)k);
    }
    std::sort(per.begin(), per.end());
    return { per[per.size() / 2], k * (int64_t)per.size() };
}

/* the core OpenBLAS runs on: the loaded library's, else the library
 * bench_torch.py asks (libopenblas.so.0, then libblas.so.3) */
static std::string corename()
{
    using fn = const char *(*)();
    void *sym = dlsym(RTLD_DEFAULT, "openblas_get_corename");
    for (const char *lib : { "libopenblas.so.0", "libblas.so.3" }) {
        if (sym)
            break;
        if (void *h = dlopen(lib, RTLD_LAZY))
            sym = dlsym(h, "openblas_get_corename");
    }
    return sym ? reinterpret_cast<fn>(sym)() : "unknown";
}

static long peak_rss_kb()
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

/* --filter S: the name contains S; --filter =NAME: the name is NAME; S may
 * list alternatives split by '|' (bench_losses.c's selected()) */
static bool selected(const std::string &name, const char *filter, const char *memory)
{
    if (memory)
        return name == memory;
    if (!filter)
        return true;
    std::string all = filter;
    for (size_t at = 0;;) {
        size_t bar = all.find('|', at);
        std::string alt = all.substr(at, bar == std::string::npos ? std::string::npos : bar - at);
        if (!alt.empty() && alt[0] == '=' ? name == alt.substr(1)
                                          : name.find(alt) != std::string::npos)
            return true;
        if (bar == std::string::npos)
            return false;
        at = bar + 1;
    }
}

int main(int argc, char **argv)
{
    int threads = 1;
    const char *filter = nullptr, *memory = nullptr;
    bool list = false, values = false;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--threads") && a + 1 < argc)
            threads = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--filter") && a + 1 < argc)
            filter = argv[++a];
        else if (!strcmp(argv[a], "--memory") && a + 1 < argc)
            memory = argv[++a];
        else if (!strcmp(argv[a], "--list"))
            list = true;
        else if (!strcmp(argv[a], "--values")) /* checking the translation */
            values = true;
        else {
            fprintf(stderr,
                    "usage: bench_libtorch [--threads T] [--filter S] [--list] [--memory CASE] "
                    "[--values]\n");
            return 2;
        }
    }
    if (list) {
        for (const Case &c : CASES)
            printf("%s\n", c.name.c_str());
        return 0;
    }
    at::set_num_threads(threads);
    torch::manual_seed(1);
    if (!memory && !values)
        printf("KERNEL %s\n", corename().c_str());
    for (const Case &c : CASES) {
        if (!selected(c.name, filter, memory))
            continue;
        State s = setup(c);
        if (values) {
            if (c.loss)
                printf("VALUE %s %.9g\n", c.name.c_str(), c.loss(s.in).item<double>());
        } else if (memory) {
            long before = peak_rss_kb();
            for (int j = 0; j < 5; j++)
                iterate(c, s);
            printf("MEMORY %s %ld 0\n", c.name.c_str(), (peak_rss_kb() - before) * 1024);
        } else {
            auto [t, n] = measure(c, s);
            printf("CASE %s %.9g %lld\n", c.name.c_str(), t, (long long)n);
        }
        fflush(stdout);
    }
    return 0;
}
