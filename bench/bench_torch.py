#!/usr/bin/python3
"""PyTorch's side of the lossgrad comparison (bench/run.sh).

The cases, shapes and timing rule of bench/bench_losses.c (a layer case's
loss is sum(layer(inputs) * u), u a fixed random upstream gradient):

    iteration = the loss from the case's inputs, backward (grads set to None)
    batch     = k iterations, k the smallest power of two taking >= 5 ms
    result    = median over >= 7 batches and >= 0.25 s of time per iteration

    /usr/bin/python3 bench/bench_torch.py [--threads T] [--filter S] [--list] [--memory CASE]
        [--values]

Prints "KERNEL <openblas core>" and "CASE <name> <seconds> <iterations>"
lines (--memory: "MEMORY <name> <peak RSS growth bytes> 0"); --filter S
keeps the cases whose name contains S (=NAME: that case only; alternatives
split by '|', as "conv2d/|step/cnn"); --values
prints "VALUE <name> <loss>" for each loss and layer case instead of timing
it, as bench_libtorch --values (the same inputs after seed 1, when both get
the same --filter). Run it with
OMP_WAIT_POLICY=PASSIVE and OPENBLAS_NUM_THREADS set (run.sh does): PyTorch's
spinning OpenMP threads otherwise fight OpenBLAS's on a 2-core machine.
"""

import argparse
import ctypes
import resource
import sys
import time

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float32)


def focal(x, y, alpha=0.25, gamma=2.0):
    """torchvision.ops.sigmoid_focal_loss with reduction='mean', as users write it."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss.mean()


def dice(x, y, smooth=1.0):
    p = torch.softmax(x, 1)
    dims = tuple(range(2, x.dim()))
    inter, sp, st = (p * y).sum(dims), p.sum(dims), y.sum(dims)
    return (1 - (2 * inter + smooth) / (sp + st + smooth)).mean(1).mean()


def contrastive(x1, x2, y, margin=1.0):
    d = F.pairwise_distance(x1, x2)
    return (0.5 * (y * d ** 2 + (1 - y) * torch.clamp(margin - d, min=0) ** 2)).mean()


def nt_xent(x1, x2, tau=0.1):
    n = x1.shape[0]
    z = torch.cat([F.normalize(x1, dim=1), F.normalize(x2, dim=1)])
    s = (z @ z.T) * (1 / tau)
    s = s.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    partner = (torch.arange(2 * n) + n) % (2 * n)
    return F.cross_entropy(s, partner, reduction="none").view(2, n).sum(0).mul(0.5).mean()


def fill(shape, kind):
    if kind == "randn":
        return torch.randn(shape)
    u = torch.rand(shape)
    if kind == "unit":
        return 0.05 + 0.9 * u
    if kind == "binary":
        return (u >= 0.5).float()
    if kind == "pm1":
        return torch.where(u < 0.5, -1.0, 1.0)
    if kind == "pos":
        return 0.5 + 1.5 * u
    if kind == "logsm":
        return torch.log_softmax(torch.randn(shape), -1)
    if kind == "softmax":
        return torch.softmax(torch.randn(shape), -1)
    raise ValueError(kind)


def ints(shape, lo, hi, constant=False):
    if constant:
        return torch.full(shape, lo, dtype=torch.long)
    return torch.randint(lo, hi, shape)


def labels_lists(n, c):
    t = torch.full((n, c), -1, dtype=torch.long)
    for r in range(n):
        for j in range(3):
            t[r, j] = (r + j * 3) % c
    return t


def quantile(x, y, q=0.5):
    e = y - x
    return torch.maximum(q * e, (q - 1) * e).mean()


def poly1(x, y, epsilon=1.0):
    pt = torch.softmax(x, 1).gather(1, y.unsqueeze(1)).squeeze(1)
    return (F.cross_entropy(x, y, reduction="none") + epsilon * (1 - pt)).mean()


# the layer cases: sum(layer(x) * u), u the last float input; batch_norm's
# running statistics (mean 0, variance 1) are the third argument
def conv2d_pad1(f, i, m):
    return (F.conv2d(f[0], f[1], f[2], padding=1) * f[3]).sum()


def batch_norm_train(f, i, m):
    return (F.batch_norm(f[0], m[0], m[1], f[1], f[2], training=True) * f[3]).sum()


def layer_norm_last(f, i, m):
    return (F.layer_norm(f[0], f[0].shape[-1:], f[1], f[2]) * f[3]).sum()


def max_pool2d_k2(f, i, m):
    return (F.max_pool2d(f[0], 2) * f[1]).sum()


# m: the module and its causal mask (True = may not attend); gradients of
# x and the module's parameters
def attention_causal(f, i, m):
    return (m[0](f[0], f[0], f[0], attn_mask=m[1], need_weights=False)[0] * f[1]).sum()


class Decoder(torch.nn.Module):
    """step/transformer: token + position embeddings, two pre-norm encoder
    layers (E 128, 4 heads, ff 512, GELU, causal, dropout 0), final layer
    norm, linear head 128 -> 96."""

    def __init__(self, vocab=96, ctx=128, e=128):
        super().__init__()
        nn = torch.nn
        self.tok, self.pos = nn.Embedding(vocab, e), nn.Embedding(ctx, e)
        self.layers = nn.ModuleList([nn.TransformerEncoderLayer(
            e, 4, 512, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
            for _ in range(2)])
        self.norm, self.head = nn.LayerNorm(e), nn.Linear(e, vocab)

    def forward(self, x):
        t = x.shape[1]
        h = self.tok(x) + self.pos(torch.arange(t))
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
        for layer in self.layers:
            h = layer(h, src_mask=mask)
        return self.head(self.norm(h))


# name, function of (f, i, model), float inputs [(shape, fill, grad)], int inputs
L = lambda fn: (lambda f, i, m: fn(*f, *i))  # noqa: E731
CASES = [
    ("l1_loss/64", L(F.l1_loss), [((64,), "randn", 1), ((64,), "randn", 0)], []),
    ("mse_loss/64", L(F.mse_loss), [((64,), "randn", 1), ((64,), "randn", 0)], []),
    ("smooth_l1_loss/64", L(F.smooth_l1_loss), [((64,), "randn", 1), ((64,), "randn", 0)], []),
    ("quantile_loss/64", L(quantile), [((64,), "randn", 1), ((64,), "randn", 0)], []),
    ("huber_loss/64", L(F.huber_loss), [((64,), "randn", 1), ((64,), "randn", 0)], []),
    ("kl_div/8x10", lambda f, i, m: F.kl_div(f[0], f[1], reduction="batchmean"),
     [((8, 10), "logsm", 1), ((8, 10), "softmax", 0)], []),
    ("nll_loss/8x10", L(F.nll_loss), [((8, 10), "logsm", 1)], [((8,), 0, 10)]),
    ("cross_entropy/8x10", L(F.cross_entropy), [((8, 10), "randn", 1)], [((8,), 0, 10)]),
    ("poly1_loss/8x10", L(poly1), [((8, 10), "randn", 1)], [((8,), 0, 10)]),
    ("binary_cross_entropy/8x10", L(F.binary_cross_entropy),
     [((8, 10), "unit", 1), ((8, 10), "binary", 0)], []),
    ("bce_with_logits/8x10", L(F.binary_cross_entropy_with_logits),
     [((8, 10), "randn", 1), ((8, 10), "binary", 0)], []),
    ("multilabel_soft_margin/8x10", L(F.multilabel_soft_margin_loss),
     [((8, 10), "randn", 1), ((8, 10), "binary", 0)], []),
    ("hinge_embedding/64", L(F.hinge_embedding_loss), [((64,), "pos", 1), ((64,), "pm1", 0)], []),
    ("triplet_margin/8x10", L(F.triplet_margin_loss),
     [((8, 10), "randn", 1), ((8, 10), "randn", 1), ((8, 10), "randn", 1)], []),
    ("ctc_loss/T10N2C5S3", L(F.ctc_loss), [((10, 2, 5), "logsm", 1)],
     [((2, 3), 1, 5), ((2,), 10, 10, True), ((2,), 3, 3, True)]),
    ("poisson_nll/64", L(F.poisson_nll_loss), [((64,), "randn", 1), ((64,), "pos", 0)], []),
    ("gaussian_nll/8x8", L(F.gaussian_nll_loss),
     [((8, 8), "randn", 1), ((8, 8), "randn", 0), ((8, 8), "pos", 1)], []),
    ("margin_ranking/64", L(F.margin_ranking_loss),
     [((64,), "randn", 1), ((64,), "randn", 1), ((64,), "pm1", 0)], []),
    ("multi_margin/8x10", L(F.multi_margin_loss), [((8, 10), "randn", 1)], [((8,), 0, 10)]),
    ("multilabel_margin/8x10", lambda f, i, m: F.multilabel_margin_loss(f[0], m),
     [((8, 10), "randn", 1)], []),
    ("soft_margin/64", L(F.soft_margin_loss), [((64,), "randn", 1), ((64,), "pm1", 0)], []),
    ("cosine_embedding/8x10", L(F.cosine_embedding_loss),
     [((8, 10), "randn", 1), ((8, 10), "randn", 1), ((8,), "pm1", 0)], []),
    ("triplet_with_distance/8x10", L(F.triplet_margin_with_distance_loss),
     [((8, 10), "randn", 1), ((8, 10), "randn", 1), ((8, 10), "randn", 1)], []),
    ("sigmoid_focal/8x10", L(focal), [((8, 10), "randn", 1), ((8, 10), "binary", 0)], []),
    ("dice/2x4x4x4", L(dice), [((2, 4, 4, 4), "randn", 1), ((2, 4, 4, 4), "binary", 0)], []),
    ("contrastive/8x10", L(contrastive),
     [((8, 10), "randn", 1), ((8, 10), "randn", 1), ((8,), "binary", 0)], []),
    ("nt_xent/8x10", L(nt_xent), [((8, 10), "randn", 1), ((8, 10), "randn", 1)], []),
    ("l1_loss/1M", L(F.l1_loss), [((1048576,), "randn", 1), ((1048576,), "randn", 0)], []),
    ("mse_loss/1M", L(F.mse_loss), [((1048576,), "randn", 1), ((1048576,), "randn", 0)], []),
    ("smooth_l1_loss/1M", L(F.smooth_l1_loss), [((1048576,), "randn", 1), ((1048576,), "randn", 0)], []),
    ("huber_loss/1M", L(F.huber_loss), [((1048576,), "randn", 1), ((1048576,), "randn", 0)], []),
    ("quantile_loss/1M", L(quantile), [((1048576,), "randn", 1), ((1048576,), "randn", 0)], []),
    ("hinge_embedding/1M", L(F.hinge_embedding_loss), [((1048576,), "pos", 1), ((1048576,), "pm1", 0)], []),
    ("cross_entropy/4096x1000", L(F.cross_entropy), [((4096, 1000), "randn", 1)], [((4096,), 0, 1000)]),
    ("poly1_loss/4096x1000", L(poly1), [((4096, 1000), "randn", 1)], [((4096,), 0, 1000)]),
    ("nll_loss/4096x1000", L(F.nll_loss), [((4096, 1000), "logsm", 1)], [((4096,), 0, 1000)]),
    ("kl_div/4096x1000", lambda f, i, m: F.kl_div(f[0], f[1], reduction="batchmean"),
     [((4096, 1000), "logsm", 1), ((4096, 1000), "softmax", 0)], []),
    ("binary_cross_entropy/4096x1000", L(F.binary_cross_entropy),
     [((4096, 1000), "unit", 1), ((4096, 1000), "binary", 0)], []),
    ("bce_with_logits/4096x1000", L(F.binary_cross_entropy_with_logits),
     [((4096, 1000), "randn", 1), ((4096, 1000), "binary", 0)], []),
    ("multilabel_soft_margin/4096x1000", L(F.multilabel_soft_margin_loss),
     [((4096, 1000), "randn", 1), ((4096, 1000), "binary", 0)], []),
    ("triplet_margin/4096x128", L(F.triplet_margin_loss),
     [((4096, 128), "randn", 1), ((4096, 128), "randn", 1), ((4096, 128), "randn", 1)], []),
    ("ctc_loss/T50N64C20S10", L(F.ctc_loss), [((50, 64, 20), "logsm", 1)],
     [((64, 10), 1, 20), ((64,), 50, 50, True), ((64,), 10, 10, True)]),
    ("ctc_loss/T200N32C40S40", L(F.ctc_loss), [((200, 32, 40), "logsm", 1)],
     [((32, 40), 1, 40), ((32,), 200, 200, True), ((32,), 40, 40, True)]),
    ("train/softmax_784x10_b128", "softmax", [((128, 784), "randn", 0)], [((128,), 0, 10)]),
    ("train/mlp_784_256_10_b128", "mlp", [((128, 784), "randn", 0)], [((128,), 0, 10)]),
    ("train/mlp_matmuls_only", "matmuls",
     [((128, 784), "randn", 0), ((256, 784), "randn", 0), ((10, 256), "randn", 0),
      ((128, 10), "randn", 0)], []),
    ("train/siamese_784_256_64_b128", "siamese",
     [((128, 784), "randn", 0), ((128, 784), "randn", 0), ((128, 784), "randn", 0)], []),
    ("train/gru_28_128_T28_b64_ctc", "gru", [((28, 64, 28), "randn", 0)],
     [((64, 5), 1, 11), ((64,), 28, 28, True), ((64,), 5, 5, True)]),
    ("train/gru_matmuls_only", "gru_matmuls",
     [((64, 128), "randn", 0), ((384, 128), "randn", 0), ((64, 384), "randn", 0)], []),
    # layers (issue 16)
    ("conv2d/64x1x28x28-32k3", conv2d_pad1,
     [((64, 1, 28, 28), "randn", 1), ((32, 1, 3, 3), "randn", 1), ((32,), "randn", 1),
      ((64, 32, 28, 28), "randn", 0)], []),
    ("conv2d/64x32x14x14-64k3", conv2d_pad1,
     [((64, 32, 14, 14), "randn", 1), ((64, 32, 3, 3), "randn", 1), ((64,), "randn", 1),
      ((64, 64, 14, 14), "randn", 0)], []),
    ("batch_norm/64x64x14x14", batch_norm_train,
     [((64, 64, 14, 14), "randn", 1), ((64,), "randn", 1), ((64,), "randn", 1),
      ((64, 64, 14, 14), "randn", 0)], []),
    ("layer_norm/8192x512", layer_norm_last,
     [((8192, 512), "randn", 1), ((512,), "randn", 1), ((512,), "randn", 1),
      ((8192, 512), "randn", 0)], []),
    ("max_pool2d/64x32x28x28-k2", max_pool2d_k2,
     [((64, 32, 28, 28), "randn", 1), ((64, 32, 14, 14), "randn", 0)], []),
    ("step/cnn", "cnn", [((64, 1, 28, 28), "randn", 0)], [((64,), 0, 10)]),
    ("attention/32x128x128-h4-causal", attention_causal,
     [((32, 128, 128), "randn", 1), ((32, 128, 128), "randn", 0)], []),
    # tokens, and targets (replaced by the next tokens in setup)
    ("step/transformer", "transformer", [], [((32, 128), 0, 96), ((32, 128), 0, 96)]),
    # second order (issue 17): the MLP's cross-entropy, its gradient with
    # respect to the four parameters; the Hessian-vector product along fixed
    # random directions by double backward (hvp/) and by
    # torch.autograd.functional.hvp (hvp_functional/)
    ("grad/mlp_784_256_10_b128", "mlp_grad", [((128, 784), "randn", 0)], [((128,), 0, 10)]),
    ("hvp/mlp_784_256_10_b128", "mlp_hvp", [((128, 784), "randn", 0)], [((128,), 0, 10)]),
    ("hvp_functional/mlp_784_256_10_b128", "mlp_hvp_functional", [((128, 784), "randn", 0)],
     [((128,), 0, 10)]),
]
CASES += [(f"optim/{name}_1M", "optim:" + name, [((1048576,), "randn", 0), ((1048576,), "randn", 0)],
           []) for name in ("sgd", "sgd_momentum", "adam", "adamw", "rmsprop",
                            "rmsprop_centered_momentum")]

# The optimizer cases: one step over a parameter whose gradient is fixed,
# in PyTorch's default configurations (bench_losses.c's optim_config).
OPTIMIZERS = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.01),
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9),
    "adam": lambda p: torch.optim.Adam(p),
    "adamw": lambda p: torch.optim.AdamW(p),
    "rmsprop": lambda p: torch.optim.RMSprop(p),
    "rmsprop_centered_momentum": lambda p: torch.optim.RMSprop(p, momentum=0.9, centered=True),
}


class Model:
    """The training-step cases: model, optimizer, step."""

    def __init__(self, kind):
        self.kind = kind
        nn = torch.nn
        if kind == "softmax":
            self.net = nn.Linear(784, 10)
        elif kind in ("mlp", "mlp_grad", "mlp_hvp", "mlp_hvp_functional"):
            self.net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        elif kind == "siamese":
            self.net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 64))
        elif kind == "cnn":  # examples/cnn/fashion_cnn.c's model, in training mode
            self.net = nn.Sequential(
                nn.Conv2d(1, 32, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(32), nn.ReLU(),
                nn.Conv2d(32, 64, 3, padding=1), nn.MaxPool2d(2), nn.BatchNorm2d(64), nn.ReLU(),
                nn.Flatten(), nn.Dropout(0.3), nn.Linear(64 * 7 * 7, 10))
        elif kind == "transformer":
            self.net = Decoder()
        elif kind == "gru":
            self.gru = nn.GRU(28, 128)
            self.out = nn.Linear(128, 11)
            self.net = nn.ModuleList([self.gru, self.out])
        if kind in ("mlp_grad", "mlp_hvp", "mlp_hvp_functional"):
            self.params = tuple(self.net.parameters())
            self.v = tuple(torch.randn_like(p) for p in self.params)
            self.opt = None
        elif kind.startswith("optim:"):
            self.param = None  # made from the case's inputs at the first step
            self.opt = None
        elif kind in ("softmax", "mlp"):
            self.opt = torch.optim.SGD(self.net.parameters(), lr=0.01)
        elif kind in ("siamese", "gru"):
            self.opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        elif kind == "cnn":
            self.opt = torch.optim.AdamW(self.net.parameters(), lr=2e-3, weight_decay=1e-4)
        elif kind == "transformer":
            self.opt = torch.optim.AdamW(self.net.parameters())

    def step(self, f, i):
        if self.kind.startswith("optim:"):
            if self.opt is None:
                self.param = f[0].detach().clone().requires_grad_(True)
                self.param.grad = f[1].detach().clone()
                self.opt = OPTIMIZERS[self.kind[len("optim:"):]]([self.param])
            self.opt.step()  # the gradient stays
            return
        if self.kind == "gru_matmuls":
            with torch.no_grad():
                h, w, dg = f
                for _ in range(28):
                    gh = h @ w.T  # noqa: F841
                    dh = dg @ w  # noqa: F841
                    dw = dg.T @ h  # noqa: F841
            return
        if self.kind == "matmuls":
            with torch.no_grad():
                x, w1, w2, g2 = f
                h = x @ w1.T
                o = h @ w2.T  # noqa: F841
                dh = g2 @ w2
                dw2 = g2.T @ h  # noqa: F841
                dw1 = dh.T @ x  # noqa: F841
                dx = dh @ w1  # noqa: F841
            return
        if self.kind == "mlp_hvp_functional":

            def loss_of(w1, b1, w2, b2):
                return F.cross_entropy(F.linear(F.relu(F.linear(f[0], w1, b1)), w2, b2), i[0])
            torch.autograd.functional.hvp(loss_of, self.params, self.v)
            return
        if self.kind in ("mlp_grad", "mlp_hvp"):
            loss = F.cross_entropy(self.net(f[0]), i[0])
            if self.kind == "mlp_grad":
                torch.autograd.grad(loss, self.params)
                return
            g = torch.autograd.grad(loss, self.params, create_graph=True)
            dot = sum((gk * vk).sum() for gk, vk in zip(g, self.v))
            torch.autograd.grad(dot, self.params)
            return
        if self.kind in ("softmax", "mlp", "cnn"):
            loss = F.cross_entropy(self.net(f[0]), i[0])
        elif self.kind == "transformer":
            loss = F.cross_entropy(self.net(i[0]).reshape(-1, 96), i[1].reshape(-1))
        elif self.kind == "siamese":
            loss = F.triplet_margin_loss(self.net(f[0]), self.net(f[1]), self.net(f[2]))
        else:
            out, _ = self.gru(f[0])
            loss = F.ctc_loss(torch.log_softmax(self.out(out), 2), *i)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)


def setup(case):
    name, fn, fspecs, ispecs = case
    f = [fill(shape, kind).requires_grad_(bool(g)) for shape, kind, g in fspecs]
    i = [ints(*spec) for spec in ispecs]
    model = Model(fn) if isinstance(fn, str) else None
    extra = None
    if name.startswith("multilabel_margin"):
        extra = labels_lists(8, 10)
    elif name.startswith("batch_norm"):  # running statistics, updated in place
        extra = (torch.zeros(fspecs[0][0][1]), torch.ones(fspecs[0][0][1]))
    elif name.startswith("attention/"):
        t = fspecs[0][0][1]
        extra = (torch.nn.MultiheadAttention(128, 4, batch_first=True),
                 torch.triu(torch.ones(t, t, dtype=torch.bool), 1))
    if name == "step/transformer":  # next-token targets (the last one stays random)
        i[1][:, :-1] = i[0][:, 1:]
    return f, i, model, extra


def iterate(case, f, i, model, extra):
    if model is not None:
        model.step(f, i)
        return
    loss = case[1](f, i, extra)
    loss.backward()
    for t in f:
        t.grad = None
    if isinstance(extra, tuple) and isinstance(extra[0], torch.nn.Module):
        extra[0].zero_grad(set_to_none=True)


def measure(case, state):
    for _ in range(3):
        iterate(case, *state)
    k = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(k):
            iterate(case, *state)
        if time.perf_counter() - t0 >= 5e-3 or k >= 1 << 20:
            break
        k *= 2
    per, total = [], 0.0
    while len(per) < 256 and (len(per) < 7 or total < 0.25):
        t0 = time.perf_counter()
        for _ in range(k):
            iterate(case, *state)
        dt = time.perf_counter() - t0
        total += dt
        per.append(dt / k)
    per.sort()
    return per[len(per) // 2], k * len(per)


def corename():
    for lib in ("libopenblas.so.0", "libblas.so.3"):
        try:
            f = ctypes.CDLL(lib).openblas_get_corename
            f.restype = ctypes.c_char_p
            return f().decode()
        except (OSError, AttributeError):
            continue
    return "unknown"


def selected(name, filt, memory):
    """--filter S: the name contains S (=NAME: is NAME), or any of S's
    '|'-separated alternatives does, as bench_losses.c"""
    if memory:
        return name == memory
    if not filt:
        return True
    return any(name == alt[1:] if alt.startswith("=") else alt in name
               for alt in filt.split("|"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--filter")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--memory")
    ap.add_argument("--values", action="store_true")
    a = ap.parse_args()
    if a.list:
        for c in CASES:
            print(c[0])
        return
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if not a.memory and not a.values:
        print("KERNEL", corename())
    for case in CASES:
        if not selected(case[0], a.filter, a.memory):
            continue
        state = setup(case)
        if a.values:
            if state[2] is None:  # a loss or layer case, not a step
                print("VALUE", case[0], "%.9g" % case[1](state[0], state[1], state[3]).item())
        elif a.memory:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            for _ in range(5):
                iterate(case, *state)
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print("MEMORY", case[0], (after - before) * 1024, 0)
        else:
            t, n = measure(case, state)
            print("CASE", case[0], "%.9g" % t, n)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
