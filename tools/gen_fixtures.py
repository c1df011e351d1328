#!/usr/bin/python3
"""Generate lossgrad's loss conformance fixtures with PyTorch (FIXTURES.md format).

    /usr/bin/python3 tools/gen_fixtures.py [--seed N] [--out FILE] [--scale K]

Needs Debian's python3-torch (apt-get install python3-torch), which installs
for /usr/bin/python3. Never needed to build or test lossgrad: the generated
files are committed under tests/fixtures/.

Every case is computed by PyTorch in float64: the loss value and the gradient
of sum(out * upstream) with respect to every floating input PyTorch
differentiates (weights excepted). The departures of FIXTURES.md are applied
on top: inputs lossgrad rejects become `err` cases, CTC's gradient becomes
the true derivative (PyTorch's minus upstream * exp(log_probs)), and
smooth_l1 with beta = 0 has gradient 0 at a tie. A case is kept only if
PyTorch's own float32 run agrees with float64 within the runner's float32
tolerance, so float32 rounding of the inputs alone cannot change an answer.
--seed and --scale give independent sets (other values, other shapes).
"""

import argparse
import math
import random
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

ELEMENTWISE = {"l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss", "kl_div",
               "hinge_embedding_loss", "binary_cross_entropy",
               "binary_cross_entropy_with_logits", "multilabel_soft_margin_loss",
               "poisson_nll_loss", "gaussian_nll_loss", "soft_margin_loss",
               "sigmoid_focal_loss", "dice_loss"}
NOT_DIFFERENTIATED = {"weight", "pos_weight"}


class Case:
    def __init__(self, cid, loss, inputs, opts=None, upstream=None, grads=None):
        self.id = cid
        self.loss = loss
        self.inputs = inputs            # list of (role, tensor)
        self.opts = opts or {}
        self.upstream = upstream        # tensor or None
        # roles that get a grad line: floating inputs PyTorch differentiates
        if grads is None:
            grads = [r for r, t in inputs
                     if t.is_floating_point() and r not in NOT_DIFFERENTIATED]
        self.grads = grads


# ---------------------------------------------------------------------------
# Calling PyTorch

def reduce(l, reduction):
    if reduction == "none":
        return l
    return l.sum() if reduction == "sum" else l.mean()


# References for the losses PyTorch's core lacks (docs/losses.md gives the
# formulas). Each validates its arguments as lossgrad does.

def sigmoid_focal_loss(x, y, alpha=0.25, gamma=2.0, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss, re-typed (torchvision is not installed)."""
    if gamma < 0 or alpha > 1:
        raise ValueError("alpha/gamma value")
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return reduce(loss, reduction)


def bce_logits_smoothed(x, y, label_smoothing, reduction="mean", **kw):
    if not 0 <= label_smoothing <= 1:
        raise ValueError("label_smoothing value")
    return F.binary_cross_entropy_with_logits(
        x, y * (1 - label_smoothing) + 0.5 * label_smoothing, reduction=reduction, **kw)


def dice_loss(x, y, weight=None, smooth=1.0, sigmoid=False, softmax=False, reduction="mean"):
    if x.dim() < 2 or smooth < 0 or (sigmoid and softmax):
        raise ValueError("dice value")
    p = torch.sigmoid(x) if sigmoid else (torch.softmax(x, 1) if softmax else x)
    dims = tuple(range(2, x.dim()))
    inter, sp, st = p * y, p, y
    if dims:
        inter, sp, st = inter.sum(dims), sp.sum(dims), st.sum(dims)
    miss = 1 - (2 * inter + smooth) / (sp + st + smooth)
    if weight is not None:
        if weight.shape != (x.shape[1],) or bool((weight < 0).any()) or float(weight.sum()) <= 0:
            raise ValueError("weight shape")
        return reduce((miss * weight).sum(1) / weight.sum(), reduction)
    return reduce(miss.sum(1) * (1 / x.shape[1]), reduction)


def contrastive_loss(x1, x2, y, margin=1.0, eps=1e-6, reduction="mean"):
    if margin < 0 or eps < 0 or x1.shape != x2.shape or x1.dim() not in (1, 2) or \
            y.shape != x1.shape[:-1]:
        raise ValueError("contrastive value/shape")
    d = F.pairwise_distance(x1, x2, p=2, eps=eps)
    gap = torch.clamp(margin - d, min=0)
    return reduce(0.5 * (y * d ** 2 + (1 - y) * gap ** 2), reduction)


def nt_xent_loss(x1, x2, temperature=0.1, cross_view_only=False, reduction="mean"):
    if x1.shape != x2.shape or x1.dim() != 2 or x1.shape[0] < 2 or not temperature > 0:
        raise ValueError("nt_xent value/shape")
    n = x1.shape[0]
    z1, z2 = F.normalize(x1, dim=1), F.normalize(x2, dim=1)
    if cross_view_only:
        s = (z1 @ z2.T) * (1 / temperature)
        idx = torch.arange(n)
        l = F.cross_entropy(s, idx, reduction="none") + F.cross_entropy(s.T, idx, reduction="none")
    else:
        z = torch.cat([z1, z2])
        s = (z @ z.T) * (1 / temperature)
        s = s.masked_fill(torch.eye(2 * n, dtype=torch.bool), -math.inf)
        partner = (torch.arange(2 * n) + n) % (2 * n)
        l = F.cross_entropy(s, partner, reduction="none").view(2, n).sum(0)
    return reduce(0.5 * l, reduction)


def soft_margin_stable(x, y, reduction="mean"):
    """The departure: -log_sigmoid(y x), finite where PyTorch's log(1 + exp(-y x)) overflows."""
    return reduce(-F.logsigmoid(y * x), reduction)


# Losses beyond PyTorch's core that need nothing but their reference and
# their cases: one @beyond entry each, and every case follows from it.
BEYOND = {}


def beyond(name, make, options=(), fixed=()):
    """Registers the decorated reference of loss `name`, called with the
    inputs by role name, then the options (reduction included).
    make(G, shape) -> (inputs, none_shape): one random case's [(role, tensor)]
    and the unreduced output's shape; every shape of G.shapes() and every
    reduction is tried, and with each (key, values) of options each value.
    fixed: [(tag, make_inputs(G), opts)], cases of given inputs (ties, NaN,
    infinities) and calls the reference rejects: it raises ValueError("...
    invalid ...") (err value), ("... between 0 and 1") (err range), or
    anything else (err shape), as lossgrad must."""
    def register(fn):
        BEYOND[name] = (fn, make, list(options), list(fixed))
        return fn
    return register


def _pair(G, shape):
    return [("input", G.randn(*shape, s=2)), ("target", G.randn(*shape, s=2))], shape


@beyond("quantile_loss", _pair, options=[("quantile", [0.0, 0.1, 0.5, 0.9, 1.0])], fixed=[
    ("ties-inf-nan", lambda G: [("input", torch.tensor([0.0, 1.5, 2.0, math.nan, math.inf, -math.inf])),
                                ("target", torch.tensor([0.0, 1.5, -1.0, 0.0, 0.0, 1.0]))],
     {"reduction": "none", "quantile": 0.3}),
    ("zero-times-inf", lambda G: [("input", torch.tensor([math.inf, -math.inf, 1.0])),
                                  ("target", torch.tensor([0.0, 0.0, 1.0]))],
     {"reduction": "none", "quantile": 0.0}),
    ("quantile-range", lambda G: [("input", G.randn(3)), ("target", G.randn(3))], {"quantile": 1.5}),
    ("quantile-nan", lambda G: [("input", G.randn(3)), ("target", G.randn(3))], {"quantile": math.nan}),
    ("shape", lambda G: [("input", G.randn(3)), ("target", G.randn(4))], {})])
def quantile_loss(input, target, quantile=0.5, reduction="mean"):
    """The pinball loss, e = target - input: max(q e, (q - 1) e)."""
    if not 0 <= quantile <= 1:
        raise ValueError("quantile invalid")
    if input.shape != target.shape:
        raise ValueError("shape")
    e = target - input
    return reduce(torch.maximum(quantile * e, (quantile - 1) * e), reduction)


def _logits_classes(G, shape):
    """(N, C) logits with targets [N] from a shape of two or more dims, (C,)
    with a 0-d target from one of fewer; a weight [C] in some cases."""
    if len(shape) >= 2:
        N, C = shape[0], math.prod(shape[1:])
        inputs, none_shape = [("input", G.randn(N, C, s=2)), ("target", G.ints(0, C, N))], (N,)
    else:
        C = shape[0] if shape else 3
        inputs, none_shape = [("input", G.randn(C, s=2)), ("target", G.ints(0, C))], ()
    if G.rng.random() < 0.4:
        inputs.append(("weight", G.rand(C, lo=0.2, hi=2.0)))
    return inputs, none_shape


@beyond("poly1_loss", _logits_classes, options=[("epsilon", [1.0, 0.0, -1.0, 2.5]),
                                                ("label_smoothing", [0.1, 0.3])], fixed=[
    ("neginf-large", lambda G: [("input", torch.tensor([[0.0, -math.inf, 1.0], [1e4, -1e4, 0.0],
                                                        [-1e4, 1e4, 3.0], [-math.inf, 0.0, 2.0]])),
                                ("target", torch.tensor([0, 1, 1, 0]))],
     {"reduction": "none", "epsilon": 2.0}),
    ("neginf-smooth-weighted", lambda G: [("input", torch.tensor([[0.0, -math.inf, 1.0], [1e4, -1e4, 0.0]])),
                                          ("target", torch.tensor([2, 0])),
                                          ("weight", torch.tensor([0.5, 2.0, 1.5]))],
     {"reduction": "sum", "epsilon": -1.0, "label_smoothing": 0.2}),
    ("weighted-mean", lambda G: [("input", G.randn(4, 3, s=2)), ("target", torch.tensor([0, 2, 2, 1])),
                                 ("weight", torch.tensor([0.0, 3.0, 0.5]))],
     {"reduction": "mean", "epsilon": 1.0, "label_smoothing": 0.1}),
    ("empty", lambda G: [("input", torch.zeros(0, 3)), ("target", torch.zeros(0, dtype=torch.long))],
     {"reduction": "mean"}),
    ("target-too-big", lambda G: [("input", G.randn(3, 4)), ("target", torch.tensor([0, 4, 1]))], {}),
    ("target-neg", lambda G: [("input", G.randn(3, 4)), ("target", torch.tensor([0, -100, 1]))], {}),
    ("unbatched-range", lambda G: [("input", G.randn(4)), ("target", torch.tensor(-1))], {}),
    ("epsilon-inf", lambda G: [("input", G.randn(2, 3)), ("target", torch.tensor([0, 2]))],
     {"epsilon": math.inf}),
    ("smoothing-range", lambda G: [("input", G.randn(2, 3)), ("target", torch.tensor([0, 2]))],
     {"label_smoothing": 1.5}),
    ("target-shape", lambda G: [("input", G.randn(3, 4)), ("target", torch.tensor([0, 1]))], {}),
    ("target-2d", lambda G: [("input", G.randn(3, 4)), ("target", torch.tensor([[0], [1], [2]]))], {}),
    ("kdim", lambda G: [("input", G.randn(2, 3, 2)), ("target", torch.tensor([[0, 1], [2, 0]]))], {})])
def poly1_loss(input, target, weight=None, epsilon=1.0, label_smoothing=0.0, reduction="mean"):
    """Poly-1 (Leng et al., 2022): CE + epsilon (1 - p_target); weight and
    smoothing in the CE term only, MEAN over the rows. No ignore_index."""
    if not math.isfinite(epsilon) or not 0 <= label_smoothing <= 1:
        raise ValueError("epsilon or label_smoothing invalid")
    if input.dim() not in (1, 2) or tuple(target.shape) != tuple(input.shape[:-1]):
        raise ValueError("shape")
    C = input.shape[-1]
    if target.numel() and bool(((target < 0) | (target >= C)).any()):
        raise IndexError("target out of range")
    ce = F.cross_entropy(input, target, weight=weight, label_smoothing=label_smoothing,
                         reduction="none")
    axis = input.dim() - 1
    pt = torch.softmax(input, axis).gather(axis, target.unsqueeze(axis)).squeeze(axis)
    return reduce(ce + epsilon * (1 - pt), reduction)


def gen_beyond_registered(G):
    for name, (_, make, options, fixed) in BEYOND.items():
        for shape in G.shapes():
            for red in REDUCTIONS:
                for key, vals in [(None, [None])] + options:
                    for v in vals:
                        o = {"reduction": red}
                        if key is not None:
                            o[key] = v
                        inputs, none_shape = make(G, shape)
                        G.add(name, "rand", inputs, o, G.up(none_shape, o))
        for tag, make_inputs, o in fixed:
            G.add(name, tag, make_inputs(G), o)


def call(loss, ins, opts):
    o = dict(opts)
    if loss in BEYOND:
        return BEYOND[loss][0](**ins, **o)
    if loss == "ctc_loss":
        return F.ctc_loss(ins["log_probs"], ins["targets"], ins["input_lengths"],
                          ins["target_lengths"], **o)
    if loss == "triplet_margin_loss":
        return F.triplet_margin_loss(ins["anchor"], ins["positive"], ins["negative"], **o)
    if loss == "triplet_margin_with_distance_loss":
        return F.triplet_margin_with_distance_loss(ins["anchor"], ins["positive"],
                                                   ins["negative"], **o)
    if loss in ("margin_ranking_loss", "cosine_embedding_loss"):
        return getattr(F, loss)(ins["input1"], ins["input2"], ins["target"], **o)
    if loss == "contrastive_loss":
        return contrastive_loss(ins["input1"], ins["input2"], ins["target"], **o)
    if loss == "nt_xent_loss":
        return nt_xent_loss(ins["input1"], ins["input2"], **o)
    if loss == "gaussian_nll_loss":
        var = ins["var"]
        if var.dim() == 0 and ins["input"].dim() > 1:  # lossgrad's extension: any 0-d var
            var = var * torch.ones_like(ins["input"])
        return F.gaussian_nll_loss(ins["input"], ins["target"], var, **o)
    if loss == "soft_margin_loss":
        stable = soft_margin_stable(ins["input"], ins["target"], **o)
        naive = F.soft_margin_loss(ins["input"], ins["target"], **o)
        fin = torch.isfinite(naive)
        tol = (1e-12, 1e-15) if naive.dtype == torch.float64 else (1e-5, 1e-7)
        if not torch.allclose(naive[fin], stable.detach()[fin], rtol=tol[0], atol=tol[1]):
            raise AssertionError("soft_margin_loss: the stable form disagrees with PyTorch")
        return stable
    if loss == "sigmoid_focal_loss":
        return sigmoid_focal_loss(ins["input"], ins["target"], **o)
    if loss == "dice_loss":
        return dice_loss(ins["input"], ins["target"], ins.get("weight"), **o)
    if loss == "binary_cross_entropy_with_logits" and "label_smoothing" in o:
        e = o.pop("label_smoothing")
        kw = {r: ins[r] for r in ("weight", "pos_weight") if r in ins}
        return bce_logits_smoothed(ins["input"], ins["target"], e, **kw, **o)
    fn = getattr(F, loss)
    kw = {}
    for r in ("weight", "pos_weight"):
        if r in ins:
            kw[r] = ins[r]
    return fn(ins["input"], ins["target"], **kw, **o)


def departure(case):
    """The err word lossgrad gives where PyTorch accepts the call, else None."""
    ins = dict(case.inputs)
    o = case.opts
    for t in ins.values():  # an empty tensor's other dims obey a nonempty one's bound
        if t.numel() == 0 and math.prod(d for d in t.shape if d) > (2 ** 63 - 1) // 8:
            return "shape"
    if case.loss in ELEMENTWISE and "input" in ins and "target" in ins:
        if ins["input"].shape != ins["target"].shape:
            return "shape"
    if case.loss in ("margin_ranking_loss",):
        if not (ins["input1"].shape == ins["input2"].shape == ins["target"].shape):
            return "shape"
    if case.loss == "cosine_embedding_loss":
        x1 = ins["input1"]
        want = x1.shape[:-1] if x1.dim() == 2 else ()
        if x1.dim() == 2 and ins["input2"].dim() == 2:
            want = (max(x1.shape[0], ins["input2"].shape[0]),)
        if tuple(ins["target"].shape) != tuple(want):
            return "shape"
    if case.loss == "multi_margin_loss" and "weight" in ins:
        x = ins["input"]
        if x.dim() in (1, 2) and ins["weight"].shape != (x.shape[-1],):
            return "shape"
    if case.loss == "gaussian_nll_loss":
        if bool((ins["var"] < 0).any()):
            return "value"
    if case.loss in ("sigmoid_focal_loss", "dice_loss", "contrastive_loss"):
        t = ins["target"]
        if t.numel() and bool(((t < 0) | (t > 1) | torch.isnan(t)).any()):
            return "range"
    if case.loss == "hinge_embedding_loss":
        t = ins["target"]
        if bool(((t != 1) & (t != -1)).any()):
            return "value"
    if case.loss in ("binary_cross_entropy", "binary_cross_entropy_with_logits"):
        t = ins["target"]
        if t.numel() and bool(((t < 0) | (t > 1) | torch.isnan(t)).any()):
            return "range"
    if case.loss == "cross_entropy" and o.get("label_smoothing", 0.0) < 0:
        return "value"
    if case.loss == "ctc_loss":
        lp, tg = ins["log_probs"], ins["targets"]
        il, tl = ins["input_lengths"].reshape(-1), ins["target_lengths"].reshape(-1)
        C = lp.shape[-1]
        blank = o.get("blank", 0)
        if blank < 0 or blank >= C:
            return "value"
        if bool((il < 1).any()) or bool((tl < 0).any()):
            return "length"
        if bool((il > lp.shape[0]).any()):
            return "length"
        N = 1 if lp.dim() == 2 else lp.shape[1]
        if tg.dim() == 2 or lp.dim() == 2:
            rows = tg.reshape(N, -1) if tg.dim() == 2 else tg.reshape(1, -1)
            if rows.shape[1] < int(tl.max()) if tl.numel() else False:
                return None  # PyTorch's own shape error
            vals = [int(rows[b, j]) for b in range(N) for j in range(int(tl[b]))]
        else:
            if tg.numel() != int(tl.sum()):
                return None
            vals = [int(v) for v in tg.reshape(-1)]
        if any(v < 0 or v >= C or v == blank for v in vals):
            return "range"
    return None


def err_word(exc):
    m = str(exc)
    if "out of bounds" in m or "between 0 and 1" in m or "out of range" in m:
        return "range"
    if "length" in m:
        return "length"
    if "label_smoothing" in m or "beta" in m or "delta" in m or "blank" in m or "valid" in m:
        return "value"
    return "shape"


def evaluate(case, dtype):
    """(out, {role: grad}) computed by PyTorch in dtype, or raises."""
    ins = {}
    leaves = {}
    for r, t in case.inputs:
        if t.is_floating_point():
            t = t.to(dtype).detach().clone()
            if r in case.grads:
                t.requires_grad_(True)
                leaves[r] = t
        ins[r] = t
    out = call(case.loss, ins, case.opts)
    u = case.upstream.to(dtype) if case.upstream is not None else torch.ones_like(out)
    grads = {}
    if leaves and out.requires_grad:
        (out * u).sum().backward()
    for r in case.grads:
        g = leaves[r].grad if r in leaves else None
        grads[r] = g.detach().clone() if g is not None else torch.zeros_like(ins[r])
    return out.detach(), grads


def true_ctc_grad(case, out_grad):
    """PyTorch returns g_b (exp(lp) - gamma); the true derivative is -g_b gamma."""
    ins = dict(case.inputs)
    lp = ins["log_probs"]
    batched = lp.dim() == 3
    lp3 = lp if batched else lp.unsqueeze(1)
    T, N, C = lp3.shape
    il = ins["input_lengths"].reshape(-1)
    tl = ins["target_lengths"].reshape(-1)
    red = case.opts.get("reduction", "mean")
    u = case.upstream if case.upstream is not None else None
    out = F.ctc_loss(lp, ins["targets"], ins["input_lengths"], ins["target_lengths"],
                     blank=case.opts.get("blank", 0), reduction="none",
                     zero_infinity=case.opts.get("zero_infinity", False)).reshape(-1)
    g = out_grad.reshape(T, N, C).clone()
    for b in range(N):
        if red == "none":
            gb = float(u.reshape(-1)[b]) if u is not None else 1.0
        elif red == "sum":
            gb = float(u) if u is not None else 1.0
        else:
            gb = (float(u) if u is not None else 1.0) / (N * max(int(tl[b]), 1))
        nll_b = float(out[b])
        if case.opts.get("zero_infinity", False) and nll_b == 0 and \
                math.isinf(float(F.ctc_loss(lp3[:, b:b + 1], targets_of(ins, b, N),
                                            il[b:b + 1], tl[b:b + 1],
                                            blank=case.opts.get("blank", 0),
                                            reduction="sum"))):
            continue  # a zeroed sample: gradient 0 in both
        Tb = int(il[b])
        g[:Tb, b, :] -= gb * torch.exp(lp3[:Tb, b, :])
    return g.reshape(lp.shape)


def targets_of(ins, b, N):
    tg, tl = ins["targets"], ins["target_lengths"].reshape(-1)
    if tg.dim() == 2:
        return tg[b:b + 1, :max(int(tl[b]), 1)] if tg.shape[1] else tg[b:b + 1]
    if ins["log_probs"].dim() == 2:
        return tg.reshape(1, -1)
    start = int(tl[:b].sum())
    return tg[start:start + int(tl[b])]


def finalize(case):
    """The f64 answer (with departures), or None to drop the case."""
    word = departure(case)
    if word:
        return {"err": word}
    try:
        out, grads = evaluate(case, torch.float64)
    except (RuntimeError, ValueError, IndexError, TypeError) as e:
        return {"err": err_word(e)}
    try:
        out32, grads32 = evaluate(case, torch.float32)
    except (RuntimeError, ValueError, IndexError):
        return None
    if case.loss == "ctc_loss" and "log_probs" in grads:
        grads["log_probs"] = true_ctc_grad(case, grads["log_probs"])
        c32 = Case(case.id, case.loss, [(r, t.to(torch.float32) if t.is_floating_point() else t)
                                        for r, t in case.inputs], case.opts,
                   case.upstream.to(torch.float32) if case.upstream is not None else None,
                   case.grads)
        grads32["log_probs"] = true_ctc_grad_f32(c32, grads32["log_probs"])
    if case.loss == "smooth_l1_loss" and case.opts.get("beta", 1.0) == 0:
        ins = dict(case.inputs)
        tie = ins["input"] == ins["target"]
        for r in grads:
            grads[r] = torch.where(tie, torch.zeros_like(grads[r]), grads[r])
            grads32[r] = torch.where(tie, torch.zeros_like(grads32[r]), grads32[r])
    if not agrees(out32, out) or any(not agrees(grads32[r], grads[r]) for r in grads):
        return None
    return {"out": out, "grads": grads}


def true_ctc_grad_f32(case32, g):
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        return true_ctc_grad(case32, g)
    finally:
        torch.set_default_dtype(saved)


def agrees(got, want):
    """The runner's float32 rule, applied to PyTorch's own float32 result."""
    got = got.to(torch.float64).reshape(-1)
    want = want.reshape(-1)
    if got.shape != want.shape:
        return False
    fin = want[torch.isfinite(want)]
    scale = max(1.0, float(fin.abs().max())) if fin.numel() else 1.0
    for g, w in zip(got.tolist(), want.tolist()):
        if math.isnan(w):
            if not math.isnan(g):
                return False
        elif math.isinf(w):
            if g != w:
                return False
        elif not abs(g - w) <= 1e-5 * scale + 1e-4 * abs(w):
            return False
    return True


# ---------------------------------------------------------------------------
# Writing

def fmt_tensor(t):
    dt = "f64" if t.is_floating_point() else "i64"
    dims = " ".join(str(d) for d in t.shape)
    vals = t.reshape(-1).tolist()
    if t.is_floating_point():
        vs = " ".join(fmt_float(v) for v in vals)
    else:
        vs = " ".join(str(int(v)) for v in vals)
    head = f"{dt} {t.dim()}" + (f" {dims}" if dims else "")
    return f"{head} : {vs}".rstrip()


def fmt_float(v):
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return "%.17g" % v


def write_case(f, case, res):
    f.write(f"case {case.id}\nloss {case.loss}\n")
    for k, v in case.opts.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, float):
            v = fmt_float(v)
        f.write(f"opt {k} {v}\n")
    for r, t in case.inputs:
        f.write(f"in {r} {fmt_tensor(t)}\n")
    if "err" in res:
        f.write(f"err {res['err']}\nend\n")
        return
    if case.upstream is not None:
        f.write(f"upstream {fmt_tensor(case.upstream)}\n")
    f.write(f"out {fmt_tensor(res['out'])}\n")
    for r in case.grads:
        f.write(f"grad {r} {fmt_tensor(res['grads'][r])}\n")
    f.write("end\n")


# ---------------------------------------------------------------------------
# The cases

class Gen:
    def __init__(self, seed, scale):
        self.rng = random.Random(seed)
        self.g = torch.Generator().manual_seed(seed)
        self.scale = scale
        self.cases = []
        self.n = 0

    def randn(self, *shape, s=1.0):
        return torch.randn(tuple(shape), generator=self.g) * s

    def rand(self, *shape, lo=0.0, hi=1.0):
        return lo + (hi - lo) * torch.rand(tuple(shape), generator=self.g)

    def ints(self, lo, hi, *shape):
        return torch.randint(lo, hi, shape, generator=self.g)

    def add(self, loss, tag, inputs, opts=None, upstream=None, grads=None):
        self.n += 1
        cid = f"{loss}-{tag}-{self.n}"
        self.cases.append(Case(cid, loss, inputs, opts, upstream, grads))

    def up(self, out_shape, opts):
        """A random upstream for some cases (non-trivial grad_output)."""
        if self.rng.random() < 0.35:
            if opts.get("reduction", "mean") == "none":
                return self.randn(*out_shape)
            return torch.tensor(self.rng.uniform(0.3, 2.0))
        return None

    def shapes(self):
        k = self.scale
        return [(), (4 + k,), (3, 5 + k), (2, 3, 2 + k)]


REDUCTIONS = ["mean", "sum", "none"]


def out_shape(loss, shape, red):
    return shape if red == "none" else ()


def gen_regression(G):
    for loss, okey, vals in [("l1_loss", None, [None]), ("mse_loss", None, [None]),
                             ("smooth_l1_loss", "beta", [None, 1.0, 0.5, 0.0, 2.5]),
                             ("huber_loss", "delta", [None, 1.0, 0.5, 2.5])]:
        for shape in G.shapes():
            for red in REDUCTIONS:
                for v in vals:
                    o = {"reduction": red}
                    if v is not None:
                        o[okey] = v
                    x, y = G.randn(*shape, s=2), G.randn(*shape, s=2)
                    G.add(loss, "rand", [("input", x), ("target", y)], o, G.up(shape, o))
        # ties, infinities, nan
        x = torch.tensor([0.0, 1.0, -2.0, 1.5, 3.0])
        y = torch.tensor([0.0, 2.0, -2.0, 1.5, -1.0])
        for red in REDUCTIONS:
            for v in (vals if okey else [None]):
                o = {"reduction": red}
                if v is not None:
                    o[okey] = v
                G.add(loss, "ties", [("input", x), ("target", y)], o)
        xi = torch.tensor([math.inf, math.nan, -math.inf, 1.0])
        yi = torch.tensor([0.0, 0.0, 1.0, math.nan])
        for red in ("sum", "none"):
            G.add(loss, "nonfinite", [("input", xi), ("target", yi)], {"reduction": red})
        # boundary |d| == beta / delta
        if okey:
            d = torch.tensor([-0.5, 0.5, 0.25, 2.0, -1.0])
            G.add(loss, "boundary", [("input", d), ("target", torch.zeros(5))],
                  {"reduction": "none", okey: 0.5})
            G.add(loss, "badopt", [("input", d), ("target", torch.zeros(5))],
                  {okey: -1.0})
            if loss == "huber_loss":
                G.add(loss, "badopt0", [("input", d), ("target", torch.zeros(5))], {okey: 0.0})
        # empty input, shape mismatch
        for red in REDUCTIONS:
            G.add(loss, "empty", [("input", torch.zeros(0)), ("target", torch.zeros(0))],
                  {"reduction": red})
        G.add(loss, "shape", [("input", G.randn(3, 4)), ("target", G.randn(3, 5))])
        G.add(loss, "bcast", [("input", G.randn(3)), ("target", G.randn(2, 3))])


def gen_kl(G):
    for shape in G.shapes():
        for red in REDUCTIONS + ["batchmean"]:
            for lt in (False, True):
                x = torch.log_softmax(G.randn(*shape), -1) if shape else -G.rand(lo=0.1, hi=2.0)
                y = torch.softmax(G.randn(*shape), -1) if shape else G.rand(lo=0.1, hi=1.0)
                if lt:
                    y = torch.log(y)
                o = {"reduction": red, "log_target": lt}
                G.add("kl_div", "rand", [("input", x), ("target", y)], o, G.up(shape, o))
    x = torch.log(torch.tensor([[0.5, 0.5], [0.25, 0.75]]))
    y = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    for red in REDUCTIONS + ["batchmean"]:
        G.add("kl_div", "zero-target", [("input", x), ("target", y)], {"reduction": red})
    G.add("kl_div", "neg-target", [("input", torch.tensor([-1.0, -2.0])),
                                   ("target", torch.tensor([-0.1, 0.5]))], {"reduction": "sum"})
    G.add("kl_div", "log-target-neginf", [("input", torch.tensor([-1.0, -2.0])),
                                          ("target", torch.tensor([-math.inf, -0.5]))],
          {"reduction": "none", "log_target": True})
    G.add("kl_div", "zero-neginf", [("input", torch.tensor([-math.inf, -1.0])),
                                    ("target", torch.tensor([0.0, 0.5]))], {"reduction": "none"})
    G.add("kl_div", "1d-batchmean", [("input", torch.tensor([-1.0, -1.0, -1.0])),
                                     ("target", torch.tensor([0.2, 0.3, 0.5]))],
          {"reduction": "batchmean"})
    G.add("kl_div", "shape", [("input", G.randn(2, 3)), ("target", G.rand(2, 4))])


def class_layouts(G):
    C = 3 + G.scale
    yield "batched", (5, C), (5,)
    yield "kdim", (2, C, 3), (2, 3)
    yield "kdim2", (2, C, 2, 2), (2, 2, 2)
    yield "unbatched", (C,), ()


def gen_nll_ce(G):
    for loss in ("nll_loss", "cross_entropy"):
        for tag, xs, ts in class_layouts(G):
            C = xs[0] if len(xs) == 1 else xs[1]
            for red in REDUCTIONS:
                for weighted in (False, True):
                    for ign in (None, 1, -100):
                        for eps in ((0.0, 0.2) if loss == "cross_entropy" else (0.0,)):
                            x = G.randn(*xs, s=2)
                            if loss == "nll_loss":
                                x = torch.log_softmax(x, 0 if len(xs) == 1 else 1)
                            t = G.ints(0, C, *ts)
                            if ign == -100 and t.numel() > 1:
                                t.view(-1)[0] = -100
                            o = {"reduction": red}
                            if ign is not None:
                                o["ignore_index"] = ign
                            if eps:
                                o["label_smoothing"] = eps
                            inputs = [("input", x), ("target", t)]
                            if weighted:
                                inputs.append(("weight", G.rand(C, lo=0.2, hi=2.0)))
                            G.add(loss, tag, inputs, o, G.up(ts, o))
        # special cases
        x = torch.tensor([[-0.5, -1.0], [-2.0, -0.1], [-0.3, -1.5]])
        t = torch.tensor([0, 1, 1])
        for red in REDUCTIONS:
            G.add(loss, "weighted", [("input", x), ("target", t), ("weight", torch.tensor([1.0, 3.0]))],
                  {"reduction": red})
            G.add(loss, "all-ignored", [("input", x), ("target", torch.tensor([-100, -100, -100]))],
                  {"reduction": red})
            G.add(loss, "zero-weights", [("input", x), ("target", t),
                                         ("weight", torch.tensor([0.0, 0.0]))], {"reduction": red})
        G.add(loss, "ignore255", [("input", x), ("target", torch.tensor([255, 1, 0]))],
              {"ignore_index": 255})
        G.add(loss, "ignored-inf", [("input", torch.tensor([[math.inf, math.nan], [-1.0, -2.0]])),
                                    ("target", torch.tensor([-100, 1]))], {"reduction": "sum"})
        G.add(loss, "target-too-big", [("input", x), ("target", torch.tensor([0, 2, 1]))])
        G.add(loss, "target-neg", [("input", x), ("target", torch.tensor([0, -1, 1]))])
        G.add(loss, "weight-len", [("input", x), ("target", t), ("weight", torch.tensor([1.0]))])
        G.add(loss, "batch-mismatch", [("input", x), ("target", torch.tensor([0, 1]))])
        G.add(loss, "unbatched-ignored", [("input", torch.tensor([-1.0, -2.0, -0.5])),
                                          ("target", torch.tensor(-100))], {"reduction": "mean"})
    # cross_entropy specifics
    G.add("cross_entropy", "smooth-closed", [("input", torch.zeros(1, 3)), ("target", torch.tensor([0]))],
          {"label_smoothing": 0.1})
    G.add("cross_entropy", "extreme", [("input", torch.tensor([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]])),
                                       ("target", torch.tensor([1, 1]))], {"reduction": "none"})
    G.add("cross_entropy", "neg-smoothing", [("input", G.randn(2, 3)), ("target", torch.tensor([0, 2]))],
          {"label_smoothing": -0.1})
    G.add("cross_entropy", "big-smoothing", [("input", G.randn(2, 3)), ("target", torch.tensor([0, 2]))],
          {"label_smoothing": 1.5})
    G.add("cross_entropy", "smooth-zero-denominator",
          [("input", torch.zeros(1, 2)), ("target", torch.tensor([0])), ("weight", torch.tensor([0.0, 1.0]))],
          {"label_smoothing": 0.2})
    G.add("cross_entropy", "neginf-other", [("input", torch.tensor([[0.0, -math.inf, 1.0]])),
                                            ("target", torch.tensor([0]))], {"reduction": "sum"})
    G.add("cross_entropy", "neginf-other-smooth", [("input", torch.tensor([[0.0, -math.inf, 1.0]])),
                                                   ("target", torch.tensor([0]))],
          {"reduction": "sum", "label_smoothing": 0.1})
    # probability targets
    for tag, xs, _ in class_layouts(G):
        for red in REDUCTIONS:
            for weighted in (False, True):
                for eps in (0.0, 0.3):
                    axis = 0 if len(xs) == 1 else 1
                    C = xs[axis]
                    x = G.randn(*xs, s=2)
                    p = torch.softmax(G.randn(*xs), axis)
                    o = {"reduction": red}
                    if eps:
                        o["label_smoothing"] = eps
                    inputs = [("input", x), ("target", p)]
                    if weighted:
                        inputs.append(("weight", G.rand(C, lo=0.2, hi=2.0)))
                    oshape = tuple(d for i, d in enumerate(xs) if i != axis)
                    G.add("cross_entropy", "prob-" + tag, inputs, o, G.up(oshape, o))
    G.add("cross_entropy", "prob-ignore0", [("input", G.randn(2, 3)), ("target", torch.full((2, 3), 1 / 3))],
          {"ignore_index": 0})
    G.add("cross_entropy", "prob-ignore-neg", [("input", G.randn(2, 3)), ("target", torch.full((2, 3), 1 / 3))],
          {"ignore_index": -1})


def gen_bce(G):
    for shape in G.shapes():
        for red in REDUCTIONS:
            for wmode in (None, "full", "last"):
                x = G.rand(*shape, lo=0.02, hi=0.98)
                y = G.rand(*shape)
                inputs = [("input", x), ("target", y)]
                if wmode == "full":
                    inputs.append(("weight", G.rand(*shape, lo=0.1, hi=2.0)))
                elif wmode == "last" and shape:
                    inputs.append(("weight", G.rand(shape[-1], lo=0.1, hi=2.0)))
                o = {"reduction": red}
                G.add("binary_cross_entropy", "rand", inputs, o, G.up(shape, o))
    p = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.5])
    y = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    for red in REDUCTIONS:
        G.add("binary_cross_entropy", "extremes", [("input", p), ("target", y)], {"reduction": red})
    G.add("binary_cross_entropy", "tiny", [("input", torch.tensor([1e-50, 1e-30, 0.0, 0.5])),
                                           ("target", torch.tensor([1.0, 1.0, 0.5, 0.5]))],
          {"reduction": "none"})
    G.add("binary_cross_entropy", "input-range", [("input", torch.tensor([1.5, 0.5])),
                                                  ("target", torch.tensor([1.0, 0.0]))])
    G.add("binary_cross_entropy", "input-nan", [("input", torch.tensor([math.nan, 0.5])),
                                                ("target", torch.tensor([1.0, 0.0]))])
    G.add("binary_cross_entropy", "target-range", [("input", torch.tensor([0.3, 0.5])),
                                                   ("target", torch.tensor([2.0, 0.0]))])
    G.add("binary_cross_entropy", "shape", [("input", G.rand(2, 1)), ("target", G.rand(2))])
    G.add("binary_cross_entropy", "weight-enlarges", [("input", G.rand(2, 3)), ("target", G.rand(2, 3)),
                                                      ("weight", G.rand(2, 2, 3))])
    # with logits
    for shape in G.shapes():
        for red in REDUCTIONS:
            for wmode in (None, "last"):
                for pmode in (None, "last", "scalar", "col"):
                    if pmode == "col" and len(shape) < 2:
                        continue
                    x = G.randn(*shape, s=3)
                    y = G.rand(*shape)
                    inputs = [("input", x), ("target", y)]
                    if wmode and shape:
                        inputs.append(("weight", G.rand(shape[-1], lo=0.1, hi=2.0)))
                    if pmode == "last" and shape:
                        inputs.append(("pos_weight", G.rand(shape[-1], lo=0.5, hi=3.0)))
                    elif pmode == "scalar":
                        inputs.append(("pos_weight", G.rand(1, lo=0.5, hi=3.0)))
                    elif pmode == "col":
                        inputs.append(("pos_weight", G.rand(shape[0], 1, lo=0.5, hi=3.0)[-2:] if len(shape) == 2
                                       else G.rand(shape[-2], 1, lo=0.5, hi=3.0)))
                    o = {"reduction": red}
                    G.add("binary_cross_entropy_with_logits", "rand", inputs, o, G.up(shape, o))
    x = torch.tensor([1e4, -1e4, 0.0])
    y = torch.tensor([0.0, 1.0, 0.5])
    for red in REDUCTIONS:
        G.add("binary_cross_entropy_with_logits", "extremes",
              [("input", x), ("target", y), ("pos_weight", torch.tensor([2.0]))], {"reduction": red})
    G.add("binary_cross_entropy_with_logits", "inf",
          [("input", torch.tensor([math.inf, -math.inf, math.inf])), ("target", torch.tensor([1.0, 0.0, 0.0]))],
          {"reduction": "none"})
    G.add("binary_cross_entropy_with_logits", "target-range",
          [("input", G.randn(3)), ("target", torch.tensor([0.5, 2.0, 0.0]))])
    G.add("binary_cross_entropy_with_logits", "pos-weight-shape",
          [("input", G.randn(2, 3)), ("target", G.rand(2, 3)), ("pos_weight", G.rand(2, 2, 3))])
    G.add("binary_cross_entropy_with_logits", "pos-weight-mismatch",
          [("input", G.randn(2, 3)), ("target", G.rand(2, 3)), ("pos_weight", G.rand(2))])


def gen_mlsm_hinge(G):
    C = 4 + G.scale
    for shape in [(C,), (3, C), (2, 3, C)]:
        for red in REDUCTIONS:
            for weighted in (False, True):
                x = G.randn(*shape, s=3)
                y = (G.rand(*shape) > 0.5).double()
                inputs = [("input", x), ("target", y)]
                if weighted:
                    inputs.append(("weight", G.rand(C, lo=0.2, hi=2.0)))
                o = {"reduction": red}
                G.add("multilabel_soft_margin_loss", "rand", inputs, o, G.up(shape[:-1], o))
    for red in REDUCTIONS:
        G.add("multilabel_soft_margin_loss", "closed",
              [("input", torch.zeros(1, 2)), ("target", torch.tensor([[1.0, 0.0]])),
               ("weight", torch.tensor([1.0, 3.0]))], {"reduction": red})
    G.add("multilabel_soft_margin_loss", "extreme",
          [("input", torch.tensor([[1e4, -1e4, 3.0]])), ("target", torch.tensor([[1.0, 0.0, 1.0]]))])
    for shape in G.shapes():
        for red in REDUCTIONS:
            for margin in (None, 1.0, 0.5, -0.5, 2.0):
                x = G.randn(*shape, s=2).abs() if shape else torch.tensor(0.7)
                y = torch.where(G.rand(*shape) > 0.5, torch.tensor(1.0), torch.tensor(-1.0))
                o = {"reduction": red}
                if margin is not None:
                    o["margin"] = margin
                G.add("hinge_embedding_loss", "rand", [("input", x), ("target", y)], o, G.up(shape, o),
                      grads=["input", "target"])
    G.add("hinge_embedding_loss", "closed", [("input", torch.tensor([-1.0, 0.5, 2.0, 1.0])),
                                             ("target", torch.tensor([1.0, -1.0, -1.0, -1.0]))],
          {"reduction": "none"}, grads=["input", "target"])
    G.add("hinge_embedding_loss", "inf", [("input", torch.tensor([-math.inf, -math.inf, math.nan])),
                                          ("target", torch.tensor([1.0, -1.0, 1.0]))],
          {"reduction": "none"}, grads=["input", "target"])
    G.add("hinge_embedding_loss", "target0", [("input", torch.tensor([0.5, 0.2])),
                                              ("target", torch.tensor([0.0, 1.0]))])
    G.add("hinge_embedding_loss", "shape", [("input", G.randn(3)), ("target", torch.ones(2, 3))])


def gen_triplet(G):
    D = 3 + G.scale
    for shape in [(D,), (4, D), (2, 3, D)]:
        for red in REDUCTIONS:
            for p in (None, 1.0, 3.0, math.inf):
                for swap in (False, True):
                    o = {"reduction": red}
                    if p is not None:
                        o["p"] = p
                    if swap:
                        o["swap"] = True
                    if G.rng.random() < 0.3:
                        o["margin"] = G.rng.choice([0.5, 2.0, 0.0])
                    if G.rng.random() < 0.2:
                        o["eps"] = 1e-3
                    a, pp, n = G.randn(*shape), G.randn(*shape), G.randn(*shape)
                    G.add("triplet_margin_loss", "rand", [("anchor", a), ("positive", pp), ("negative", n)],
                          o, G.up(shape[:-1], o))
    G.add("triplet_margin_loss", "closed", [("anchor", torch.zeros(1, 2)), ("positive", torch.zeros(1, 2)),
                                            ("negative", torch.tensor([[3.0, 4.0]]))], {"margin": 10.0})
    for swap in (False, True):
        G.add("triplet_margin_loss", "swap", [("anchor", torch.tensor([[0.0, 0.0]])),
                                              ("positive", torch.tensor([[0.0, 1.0]])),
                                              ("negative", torch.tensor([[0.0, 1.5]]))],
              {"margin": 1.0, "swap": swap})
    G.add("triplet_margin_loss", "bcast", [("anchor", G.randn(3, D)), ("positive", G.randn(1, D)),
                                           ("negative", G.randn(3, D))], {"reduction": "none"})
    G.add("triplet_margin_loss", "ndim", [("anchor", G.randn(2, D)), ("positive", G.randn(D)),
                                          ("negative", G.randn(2, D))])
    G.add("triplet_margin_loss", "dmismatch", [("anchor", G.randn(2, D)), ("positive", G.randn(2, D + 1)),
                                               ("negative", G.randn(2, D))])
    for p in (1.5, 0.5, 0.0, -1.0, -math.inf):
        G.add("triplet_margin_loss", "p-other", [("anchor", G.randn(3, D)), ("positive", G.randn(3, D)),
                                                 ("negative", G.randn(3, D))], {"p": p, "reduction": "none"})
    G.add("triplet_margin_loss", "identical-eps0", [("anchor", torch.ones(2, D)), ("positive", torch.ones(2, D)),
                                                    ("negative", G.randn(2, D))], {"eps": 0.0, "reduction": "none"})
    G.add("triplet_margin_loss", "neg-margin", [("anchor", G.randn(3, D)), ("positive", G.randn(3, D)),
                                                ("negative", G.randn(3, D))], {"margin": -0.5})


def ctc_case(G, T, N, C, lens, tlens, layout, blank=0, lp=None):
    lp = lp if lp is not None else torch.log_softmax(G.randn(T, N, C), -1)
    labels = [c for c in range(C) if c != blank]
    seqs = [[G.rng.choice(labels) for _ in range(L)] for L in tlens]
    if layout == "padded":
        S = max(tlens + [1]) + G.rng.choice([0, 1])
        tg = torch.zeros(N, S, dtype=torch.long)
        for b, s in enumerate(seqs):
            tg[b, :len(s)] = torch.tensor(s, dtype=torch.long)
            if S > len(s):
                tg[b, len(s):] = G.rng.choice(labels)
    else:
        tg = torch.tensor([c for s in seqs for c in s], dtype=torch.long)
    return lp, tg, torch.tensor(lens), torch.tensor(tlens)


def gen_ctc(G):
    for red in REDUCTIONS:
        for layout in ("padded", "concat"):
            for zi in (False, True):
                for blank in (0, 2):
                    T, N, C = 8 + G.scale, 3, 5
                    lens = [T, T - 2, T - 1]
                    tlens = [3, 2, 0]
                    lp, tg, il, tl = ctc_case(G, T, N, C, lens, tlens, layout, blank)
                    o = {"reduction": red, "blank": blank}
                    if zi:
                        o["zero_infinity"] = True
                    G.add("ctc_loss", layout, [("log_probs", lp), ("targets", tg), ("input_lengths", il),
                                               ("target_lengths", tl)], o, G.up((N,), o))
    # repeated labels and infeasible alignments
    for zi in (False, True):
        lp = torch.log_softmax(G.randn(4, 2, 3), -1)
        G.add("ctc_loss", "infeasible", [("log_probs", lp), ("targets", torch.tensor([[1, 1, 1], [2, 1, 2]])),
                                         ("input_lengths", torch.tensor([4, 4])),
                                         ("target_lengths", torch.tensor([3, 2]))],
              {"reduction": "none", "zero_infinity": zi})
        G.add("ctc_loss", "infeasible-sum", [("log_probs", lp), ("targets", torch.tensor([[1, 1, 1], [2, 1, 2]])),
                                             ("input_lengths", torch.tensor([4, 4])),
                                             ("target_lengths", torch.tensor([3, 2]))],
              {"reduction": "sum", "zero_infinity": zi})
    # closed forms
    G.add("ctc_loss", "T1", [("log_probs", torch.log(torch.tensor([[0.4, 0.6]]))), ("targets", torch.tensor([1])),
                             ("input_lengths", torch.tensor(1)), ("target_lengths", torch.tensor(1))])
    G.add("ctc_loss", "T2", [("log_probs", torch.log(torch.full((2, 1, 2), 0.5))), ("targets", torch.tensor([[1]])),
                             ("input_lengths", torch.tensor([2])), ("target_lengths", torch.tensor([1]))],
          {"reduction": "sum"})
    G.add("ctc_loss", "empty-target", [("log_probs", torch.log(torch.full((3, 1, 2), 0.5))),
                                       ("targets", torch.zeros(1, 0, dtype=torch.long)),
                                       ("input_lengths", torch.tensor([3])), ("target_lengths", torch.tensor([0]))])
    # unbatched
    for red in REDUCTIONS:
        lp = torch.log_softmax(G.randn(6, 4), -1)
        G.add("ctc_loss", "unbatched", [("log_probs", lp), ("targets", torch.tensor([1, 3, 2])),
                                        ("input_lengths", torch.tensor(6)), ("target_lengths", torch.tensor(2))],
              {"reduction": red})
        G.add("ctc_loss", "unbatched-row", [("log_probs", lp), ("targets", torch.tensor([[1, 3]])),
                                            ("input_lengths", torch.tensor([5])), ("target_lengths", torch.tensor([2]))],
              {"reduction": red})
    # unnormalised input, blank = C - 1
    G.add("ctc_loss", "unnormalised", [("log_probs", G.randn(5, 2, 4)), ("targets", torch.tensor([[0, 1], [2, 2]])),
                                       ("input_lengths", torch.tensor([5, 5])), ("target_lengths", torch.tensor([2, 2]))],
          {"blank": 3, "reduction": "sum"})
    # -inf entry on a class not in the target
    lp = torch.log_softmax(G.randn(4, 1, 3), -1)
    lp[1, 0, 2] = -math.inf
    G.add("ctc_loss", "neginf", [("log_probs", lp), ("targets", torch.tensor([[1]])),
                                 ("input_lengths", torch.tensor([4])), ("target_lengths", torch.tensor([1]))],
          {"reduction": "sum"})
    # errors
    lp = torch.log_softmax(G.randn(5, 2, 4), -1)
    bad = [("target-value", torch.tensor([[1, 4], [2, 2]]), [5, 5], [2, 2], {}),
           ("target-blank", torch.tensor([[1, 0], [2, 2]]), [5, 5], [2, 2], {}),
           ("neg-length", torch.tensor([[1, 2], [2, 2]]), [5, 5], [-1, 2], {}),
           ("input-length", torch.tensor([[1, 2], [2, 2]]), [6, 5], [2, 2], {}),
           ("zero-input-length", torch.tensor([[1, 2], [2, 2]]), [0, 5], [2, 2], {}),
           ("narrow", torch.tensor([[1], [2]]), [5, 5], [2, 2], {}),
           ("concat-count", torch.tensor([1, 2, 3]), [5, 5], [2, 2], {}),
           ("blank-range", torch.tensor([[1, 2], [2, 2]]), [5, 5], [2, 2], {"blank": 4})]
    for tag, tg, il, tl, o in bad:
        G.add("ctc_loss", tag, [("log_probs", lp), ("targets", tg), ("input_lengths", torch.tensor(il)),
                                ("target_lengths", torch.tensor(tl))], o)


def gen_likelihood(G):
    for shape in G.shapes():
        for red in REDUCTIONS:
            for log_input in (True, False):
                for full in (False, True):
                    o = {"reduction": red}
                    if not log_input:
                        o["log_input"] = False
                    if full:
                        o["full"] = True
                    if G.rng.random() < 0.3:
                        o["eps"] = 1e-4
                    x = G.randn(*shape) if log_input else G.rand(*shape, lo=0.1, hi=3.0)
                    y = torch.floor(G.rand(*shape, lo=0.0, hi=6.0))
                    if G.rng.random() < 0.5:
                        y = y + G.rand(*shape, lo=0.1, hi=0.9)  # fractional counts
                    G.add("poisson_nll_loss", "rand", [("input", x), ("target", y)], o, G.up(shape, o))
    x0 = torch.tensor([0.0, 0.0, 0.0, 1.0])
    y0 = torch.tensor([2.0, 1.0, 0.5, 3.0])
    for log_input in (True, False):
        G.add("poisson_nll_loss", "full-closed", [("input", x0), ("target", y0)],
              {"reduction": "none", "full": True, "log_input": log_input})
    G.add("poisson_nll_loss", "full-y0", [("input", torch.tensor([0.5, -0.2])),
                                          ("target", torch.tensor([0.0, 4.0]))],
          {"reduction": "sum", "full": True})
    G.add("poisson_nll_loss", "rate-neg", [("input", torch.tensor([-0.5, 0.0, 2.0])),
                                           ("target", torch.tensor([1.0, 1.0, 0.0]))],
          {"reduction": "none", "log_input": False})
    G.add("poisson_nll_loss", "shape", [("input", G.randn(4, 3)), ("target", G.rand(3))])
    # gaussian
    D = 3 + G.scale
    for red in REDUCTIONS:
        for full in (False, True):
            for vmode in ("same", "rows", "rows1", "scalar1d", "scalar2d"):
                x, y = G.randn(4, D), G.randn(4, D)
                var = {"same": lambda: G.rand(4, D, lo=0.1, hi=2.0),
                       "rows": lambda: G.rand(4, lo=0.1, hi=2.0),
                       "rows1": lambda: G.rand(4, 1, lo=0.1, hi=2.0),
                       "scalar1d": lambda: G.rand(lo=0.1, hi=2.0),
                       "scalar2d": lambda: G.rand(lo=0.1, hi=2.0)}[vmode]()
                if vmode == "scalar1d":
                    x, y = x[0], y[0]
                o = {"reduction": red}
                if full:
                    o["full"] = True
                if G.rng.random() < 0.3:
                    o["eps"] = 1e-3
                G.add("gaussian_nll_loss", vmode, [("input", x), ("target", y), ("var", var)], o,
                      G.up(x.shape, o))
    G.add("gaussian_nll_loss", "var0", [("input", torch.tensor([0.0, 0.5])), ("target", torch.tensor([1.0, 0.0])),
                                        ("var", torch.tensor([0.0, 1e-8]))], {"reduction": "none"})
    G.add("gaussian_nll_loss", "3d", [("input", G.randn(2, 3, D)), ("target", G.randn(2, 3, D)),
                                      ("var", G.rand(2, 3, lo=0.5, hi=1.5))], {"reduction": "sum"})
    G.add("gaussian_nll_loss", "var-neg", [("input", G.randn(2, D)), ("target", G.randn(2, D)),
                                           ("var", torch.tensor([1.0, -0.5]))])
    G.add("gaussian_nll_loss", "var-shape", [("input", G.randn(2, D)), ("target", G.randn(2, D)),
                                             ("var", G.rand(1, D, lo=0.5, hi=1.0))])
    G.add("gaussian_nll_loss", "var-shape2", [("input", G.randn(2, D)), ("target", G.randn(2, D)),
                                              ("var", G.rand(3, lo=0.5, hi=1.0))])
    G.add("gaussian_nll_loss", "target-shape", [("input", G.randn(2, D)), ("target", G.randn(D)),
                                                ("var", G.rand(2, D, lo=0.5, hi=1.0))])


def gen_ranking(G):
    for shape in G.shapes():
        for red in REDUCTIONS:
            for margin in (None, 0.5, -0.2):
                o = {"reduction": red}
                if margin is not None:
                    o["margin"] = margin
                y = torch.where(G.rand(*shape) > 0.5, torch.tensor(1.0), torch.tensor(-1.0))
                if G.rng.random() < 0.3:
                    y = G.randn(*shape)
                G.add("margin_ranking_loss", "rand", [("input1", G.randn(*shape)), ("input2", G.randn(*shape)),
                                                      ("target", y)], o, G.up(shape, o))
    G.add("margin_ranking_loss", "closed", [("input1", torch.tensor([1.0, 2.0, 0.0])),
                                            ("input2", torch.tensor([2.0, 2.0, 0.0])),
                                            ("target", torch.tensor([1.0, -1.0, 0.0]))],
          {"reduction": "none", "margin": 0.5})
    G.add("margin_ranking_loss", "kink", [("input1", torch.tensor([1.0, 3.0])), ("input2", torch.tensor([2.0, 2.0])),
                                          ("target", torch.tensor([-1.0, 1.0]))], {"reduction": "sum", "margin": 1.0})
    G.add("margin_ranking_loss", "bcast", [("input1", G.randn(4)), ("input2", G.randn(1)), ("target", torch.ones(4))])
    G.add("margin_ranking_loss", "ndim", [("input1", G.randn(4)), ("input2", G.randn(4)),
                                          ("target", torch.ones(2, 2))])
    # soft margin
    for shape in G.shapes():
        for red in REDUCTIONS:
            y = torch.where(G.rand(*shape) > 0.5, torch.tensor(1.0), torch.tensor(-1.0))
            if G.rng.random() < 0.3:
                y = G.randn(*shape)
            G.add("soft_margin_loss", "rand", [("input", G.randn(*shape, s=3)), ("target", y)], o := {"reduction": red},
                  G.up(shape, o), grads=["input"])
    for red in REDUCTIONS:
        G.add("soft_margin_loss", "overflow", [("input", torch.tensor([-1e4, 1e4, -800.0, 800.0, -100.0, 30.0])),
                                               ("target", torch.tensor([1.0, -1.0, 1.0, 1.0, 1.0, 1.0]))],
              {"reduction": red}, grads=["input"])
    G.add("soft_margin_loss", "target0", [("input", torch.tensor([2.0, -1.0])), ("target", torch.tensor([0.0, 0.0]))],
          {"reduction": "none"}, grads=["input"])
    G.add("soft_margin_loss", "shape", [("input", G.randn(2, 3)), ("target", G.randn(3))], grads=["input"])
    # multi margin
    C = 4 + G.scale
    for red in REDUCTIONS:
        for p in (None, 1, 2):
            for weighted in (False, True):
                for layout in ("batched", "unbatched0", "unbatched1"):
                    o = {"reduction": red}
                    if p is not None:
                        o["p"] = p
                    if G.rng.random() < 0.4:
                        o["margin"] = G.rng.choice([0.5, 2.0, 0.0])
                    if layout == "batched":
                        x, t = G.randn(5, C), G.ints(0, C, 5)
                    elif layout == "unbatched0":
                        x, t = G.randn(C), G.ints(0, C)
                    else:
                        x, t = G.randn(C), G.ints(0, C, 1)
                    inputs = [("input", x), ("target", t)]
                    if weighted:
                        inputs.append(("weight", G.rand(C, lo=0.2, hi=2.0)))
                    G.add("multi_margin_loss", layout, inputs, o, G.up(t.shape, o))
    G.add("multi_margin_loss", "zero-hinge", [("input", torch.tensor([[1.0, 0.0, -5.0]])),
                                              ("target", torch.tensor([0]))], {"reduction": "sum"})
    G.add("multi_margin_loss", "p3", [("input", G.randn(2, C)), ("target", torch.tensor([0, 1]))], {"p": 3})
    G.add("multi_margin_loss", "target-range", [("input", G.randn(2, C)), ("target", torch.tensor([0, C]))])
    G.add("multi_margin_loss", "target-neg", [("input", G.randn(2, C)), ("target", torch.tensor([-1, 0]))])
    G.add("multi_margin_loss", "weight-len", [("input", G.randn(2, C)), ("target", torch.tensor([0, 1])),
                                              ("weight", G.rand(C - 1))])
    G.add("multi_margin_loss", "weight-2d", [("input", G.randn(2, C)), ("target", torch.tensor([0, 1])),
                                             ("weight", G.rand(1, C))])
    G.add("multi_margin_loss", "3d", [("input", G.randn(2, 3, C)), ("target", torch.zeros(2, 3, dtype=torch.long))])
    G.add("multi_margin_loss", "batch", [("input", G.randn(2, C)), ("target", torch.tensor([0, 1, 1]))])
    # multilabel margin
    for red in REDUCTIONS:
        for layout in ("batched", "unbatched"):
            n = 4 if layout == "batched" else 1
            rows = []
            for _ in range(n):
                k = G.rng.randint(0, C)
                labels = G.rng.sample(range(C), k)
                if k and G.rng.random() < 0.3:
                    labels.append(labels[0])  # a repeated label counts twice
                row = (labels + [-1] + [G.rng.randint(-1, C - 1) for _ in range(C)])[:C]
                rows.append(row)
            x = G.randn(n, C, s=1.5)
            t = torch.tensor(rows)
            if layout == "unbatched":
                x, t = x[0], t[0]
            G.add("multilabel_margin_loss", layout, [("input", x), ("target", t)], {"reduction": red},
                  G.up(t.shape[:-1], {"reduction": red}))
    G.add("multilabel_margin_loss", "closed", [("input", torch.tensor([[0.1, 0.2, 0.4, 0.8]])),
                                               ("target", torch.tensor([[3, 0, -1, 1]]))])
    G.add("multilabel_margin_loss", "all-labelled", [("input", G.randn(2, 3)),
                                                     ("target", torch.tensor([[0, 1, 2], [-1, 0, 1]]))],
          {"reduction": "none"})
    G.add("multilabel_margin_loss", "kink", [("input", torch.tensor([[1.0, 0.0, 2.0]])),
                                             ("target", torch.tensor([[0, -1, -1]]))], {"reduction": "sum"})
    G.add("multilabel_margin_loss", "range", [("input", G.randn(2, 3)), ("target", torch.tensor([[1, -1, 3], [0, 1, 2]]))])
    G.add("multilabel_margin_loss", "range-neg", [("input", G.randn(2, 3)), ("target", torch.tensor([[1, -2, 0], [0, 1, 2]]))])
    G.add("multilabel_margin_loss", "shape", [("input", G.randn(2, 3)), ("target", torch.tensor([[1, -1]]))])


def gen_embedding_pairs(G):
    D = 3 + G.scale
    for red in REDUCTIONS:
        for margin in (None, 0.3, -0.5):
            for layout in ("batched", "unbatched", "bcast"):
                o = {"reduction": red}
                if margin is not None:
                    o["margin"] = margin
                if layout == "unbatched":
                    x1, x2, y = G.randn(D), G.randn(D), torch.tensor(G.rng.choice([1.0, -1.0]))
                else:
                    x1 = G.randn(5, D)
                    x2 = G.randn(5 if layout == "batched" else 1, D)
                    y = torch.tensor([G.rng.choice([1.0, -1.0, 1.0, -1.0, 0.0, 2.0]) for _ in range(5)])
                G.add("cosine_embedding_loss", layout, [("input1", x1), ("input2", x2), ("target", y)], o,
                      G.up(y.shape, o), grads=["input1", "input2"])
    G.add("cosine_embedding_loss", "zero-vector", [("input1", torch.zeros(2, D)), ("input2", G.randn(2, D)),
                                                   ("target", torch.tensor([1.0, -1.0]))],
          {"reduction": "none"}, grads=["input1", "input2"])
    G.add("cosine_embedding_loss", "target-bcast", [("input1", G.randn(3, D)), ("input2", G.randn(3, D)),
                                                    ("target", torch.ones(1))], grads=["input1", "input2"])
    G.add("cosine_embedding_loss", "target-2d", [("input1", G.randn(3, D)), ("input2", G.randn(3, D)),
                                                 ("target", torch.ones(3, 1))], grads=["input1", "input2"])
    G.add("cosine_embedding_loss", "target-1d-input-1d", [("input1", G.randn(D)), ("input2", G.randn(D)),
                                                          ("target", torch.ones(1))], grads=["input1", "input2"])
    # triplet with the default distance
    for shape in [(D,), (4, D), (2, 3, D)]:
        for red in REDUCTIONS:
            for swap in (False, True):
                o = {"reduction": red}
                if swap:
                    o["swap"] = True
                if G.rng.random() < 0.4:
                    o["margin"] = G.rng.choice([0.5, 2.0, 0.0])
                G.add("triplet_margin_with_distance_loss", "rand",
                      [("anchor", G.randn(*shape)), ("positive", G.randn(*shape)), ("negative", G.randn(*shape))],
                      o, G.up(shape[:-1], o))
    G.add("triplet_margin_with_distance_loss", "bcast", [("anchor", G.randn(3, D)), ("positive", G.randn(1, D)),
                                                         ("negative", G.randn(D))], {"reduction": "none"})
    G.add("triplet_margin_with_distance_loss", "swap-closed", [("anchor", torch.tensor([[0.0, 0.0]])),
                                                               ("positive", torch.tensor([[0.0, 1.0]])),
                                                               ("negative", torch.tensor([[0.0, 1.5]]))],
          {"swap": True})
    G.add("triplet_margin_with_distance_loss", "dmismatch", [("anchor", G.randn(2, D)), ("positive", G.randn(2, D + 1)),
                                                             ("negative", G.randn(2, D))])
    # contrastive
    for red in REDUCTIONS:
        for layout in ("batched", "unbatched"):
            for margin in (None, 2.0, 0.5):
                o = {"reduction": red}
                if margin is not None:
                    o["margin"] = margin
                if G.rng.random() < 0.2:
                    o["eps"] = 0.0
                if layout == "batched":
                    x1, x2 = G.randn(6, D), G.randn(6, D)
                    y = (G.rand(6) > 0.5).double()
                    if G.rng.random() < 0.3:
                        y = G.rand(6)
                else:
                    x1, x2, y = G.randn(D) * 0.5, G.randn(D) * 0.5, torch.tensor(float(G.rng.random() < 0.5))
                G.add("contrastive_loss", layout, [("input1", x1), ("input2", x2), ("target", y)], o, G.up(y.shape, o))
    G.add("contrastive_loss", "target-range", [("input1", G.randn(2, D)), ("input2", G.randn(2, D)),
                                               ("target", torch.tensor([1.0, 2.0]))])
    G.add("contrastive_loss", "shape", [("input1", G.randn(2, D)), ("input2", G.randn(3, D)),
                                        ("target", torch.tensor([1.0, 0.0]))])
    G.add("contrastive_loss", "neg-margin", [("input1", G.randn(2, D)), ("input2", G.randn(2, D)),
                                             ("target", torch.tensor([1.0, 0.0]))], {"margin": -1.0})
    # NT-Xent / InfoNCE
    for red in REDUCTIONS:
        for n in (2, 5):
            for cv in (False, True):
                for tau in (None, 0.5, 1.0):
                    o = {"reduction": red}
                    if tau is not None:
                        o["temperature"] = tau
                    if cv:
                        o["cross_view_only"] = True
                    x1 = G.randn(n, D)
                    x2 = x1 + 0.5 * G.randn(n, D)
                    G.add("nt_xent_loss", "rand", [("input1", x1), ("input2", x2)], o, G.up((n,), o))
    G.add("nt_xent_loss", "n1", [("input1", G.randn(1, D)), ("input2", G.randn(1, D))])
    G.add("nt_xent_loss", "tau0", [("input1", G.randn(3, D)), ("input2", G.randn(3, D))], {"temperature": 0.0})
    G.add("nt_xent_loss", "shape", [("input1", G.randn(3, D)), ("input2", G.randn(3, D + 1))])


def gen_beyond(G):
    for shape in G.shapes():
        for red in REDUCTIONS:
            for alpha in (None, 0.5, -1.0):
                for gamma in (None, 0.0, 1.0, 3.0):
                    o = {"reduction": red}
                    if alpha is not None:
                        o["alpha"] = alpha
                    if gamma is not None:
                        o["gamma"] = gamma
                    y = (G.rand(*shape) > 0.7).double()
                    if G.rng.random() < 0.2:
                        y = G.rand(*shape)
                    G.add("sigmoid_focal_loss", "rand", [("input", G.randn(*shape, s=3)), ("target", y)], o,
                          G.up(shape, o))
    G.add("sigmoid_focal_loss", "extreme", [("input", torch.tensor([30.0, -30.0, 1e4, -5.0])),
                                            ("target", torch.tensor([1.0, 1.0, 0.0, 0.0]))], {"reduction": "none"})
    G.add("sigmoid_focal_loss", "target-range", [("input", G.randn(3)), ("target", torch.tensor([0.0, 1.5, 1.0]))],
          {"reduction": "none"})
    G.add("sigmoid_focal_loss", "gamma-neg", [("input", G.randn(3)), ("target", torch.tensor([0.0, 1.0, 1.0]))],
          {"reduction": "none", "gamma": -1.0})
    # BCE with logits, label smoothing
    for shape in G.shapes()[1:]:
        for red in REDUCTIONS:
            for e in (0.1, 0.3, 1.0):
                x, y = G.randn(*shape, s=3), (G.rand(*shape) > 0.5).double()
                inputs = [("input", x), ("target", y)]
                if G.rng.random() < 0.5:
                    inputs.append(("pos_weight", G.rand(shape[-1], lo=0.5, hi=3.0)))
                o = {"reduction": red, "label_smoothing": e}
                G.add("binary_cross_entropy_with_logits", "smoothing", inputs, o, G.up(shape, o))
    for e in (1.5, -0.1):
        G.add("binary_cross_entropy_with_logits", "smoothing-range", [("input", G.randn(3)), ("target", torch.ones(3))],
              {"label_smoothing": e})
    # soft Dice
    C = 3
    for red in REDUCTIONS:
        for shape in [(2, C, 4, 3), (3, 1, 5), (4, C)]:
            for act in (None, "sigmoid", "softmax"):
                for weighted in (False, True):
                    o = {"reduction": red}
                    if act:
                        o[act] = True
                    if G.rng.random() < 0.4:
                        o["smooth"] = G.rng.choice([0.0, 1e-5, 2.0])
                    x = G.randn(*shape) if act else G.rand(*shape)
                    if act == "softmax" or (not act and shape[1] > 1 and G.rng.random() < 0.5):
                        labels = G.ints(0, shape[1], shape[0], *shape[2:])
                        y = F.one_hot(labels, shape[1]).movedim(-1, 1).double()
                    else:
                        y = (G.rand(*shape) > 0.5).double()
                    inputs = [("input", x), ("target", y)]
                    if weighted:
                        inputs.append(("weight", G.rand(shape[1], lo=0.2, hi=2.0)))
                    G.add("dice_loss", "rand", inputs, o, G.up(shape[:1], o))
    G.add("dice_loss", "empty-masks", [("input", torch.zeros(1, 1, 3)), ("target", torch.zeros(1, 1, 3))],
          {"reduction": "none"})
    G.add("dice_loss", "target-range", [("input", G.rand(2, C, 3)), ("target", torch.full((2, C, 3), 2.0))])
    G.add("dice_loss", "weight-len", [("input", G.rand(2, C, 3)), ("target", torch.ones(2, C, 3)),
                                      ("weight", torch.ones(C + 1))])
    G.add("dice_loss", "1d", [("input", G.rand(4)), ("target", torch.ones(4))])


def gen_hardening(G):
    """Issue 13's cases (appended last, so the earlier cases keep their ids
    and random draws): non-finite logits in cross-entropy, a 0-d input to
    the class hinges (one class), zero classes."""
    inf, nan = math.inf, math.nan
    p = torch.tensor([[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]])
    rows = {"posinf": [1.0, inf, 0.0], "neginf": [1.0, -inf, 0.0], "nan": [1.0, nan, 0.0],
            "all-neginf": [-inf, -inf, -inf], "two-posinf": [inf, inf, 0.0]}
    for tag, row in rows.items():
        x = torch.tensor([row, [0.5, -1.0, 2.0]])
        for red in REDUCTIONS:
            for eps in (0.0, 0.1):
                o = {"reduction": red}
                if eps:
                    o["label_smoothing"] = eps
                G.add("cross_entropy", "prob-" + tag, [("input", x), ("target", p)], o)
                G.add("cross_entropy", "index-" + tag, [("input", x), ("target", torch.tensor([0, 2]))], o)
                # K-dimensional: the composite, not the fused rows
                G.add("cross_entropy", "kdim-" + tag, [("input", x.T.reshape(1, 3, 2)),
                                                       ("target", torch.tensor([[1, 2]]))], o)
        G.add("cross_entropy", "prob-weighted-" + tag, [("input", x), ("target", p),
                                                         ("weight", torch.tensor([1.0, 2.0, 0.5]))])
        G.add("cross_entropy", "prob-unbatched-" + tag, [("input", x[0]), ("target", p[0])],
              {"reduction": "sum"})
    # one class: a 0-d input (PyTorch treats it as [1]); the loss is 0
    for dt_x in (0.5, -3.0):
        for red in REDUCTIONS:
            for o in ({}, {"p": 2, "margin": 2.0}):
                G.add("multi_margin_loss", "0d", [("input", torch.tensor(dt_x)), ("target", torch.tensor(0))],
                      dict(o, reduction=red))
            G.add("multi_margin_loss", "0d-weighted", [("input", torch.tensor(dt_x)), ("target", torch.tensor(0)),
                                                       ("weight", torch.tensor([3.0]))], {"reduction": red})
            G.add("multi_margin_loss", "0d-target1", [("input", torch.tensor(dt_x)),
                                                      ("target", torch.tensor([0]))], {"reduction": red})
            for t in (0, -1):
                G.add("multilabel_margin_loss", "0d", [("input", torch.tensor(dt_x)), ("target", torch.tensor(t))],
                      {"reduction": red})
    for t in (1, -1, 5):
        G.add("multi_margin_loss", "0d-range", [("input", torch.tensor(0.5)), ("target", torch.tensor(t))])
    for t in (1, 5, -2):
        G.add("multilabel_margin_loss", "0d-range", [("input", torch.tensor(0.5)), ("target", torch.tensor(t))])
    G.add("multi_margin_loss", "0d-p3", [("input", torch.tensor(0.5)), ("target", torch.tensor(0))], {"p": 3})
    # zero classes: probability targets are -0 per row, their MEAN 0/0 = NaN;
    # smoothing over zero classes (eps / C) makes even ignored rows NaN
    for red in REDUCTIONS:
        for eps in (0.0, 0.2):
            o = {"reduction": red}
            if eps:
                o["label_smoothing"] = eps
            for shape in ((2, 0), (0,), (2, 0, 3), (0, 0)):
                G.add("cross_entropy", "prob-zero-classes", [("input", torch.zeros(shape)),
                                                             ("target", torch.zeros(shape))], o)
            G.add("cross_entropy", "prob-zero-classes-weighted", [("input", torch.zeros(2, 0)),
                                                                  ("target", torch.zeros(2, 0)),
                                                                  ("weight", torch.zeros(0))], o)
            G.add("cross_entropy", "index-zero-classes-ignored", [("input", torch.zeros(2, 0)),
                                                                  ("target", torch.tensor([-100, -100]))], o)
            G.add("cross_entropy", "index-zero-classes-unbatched", [("input", torch.zeros(0)),
                                                                    ("target", torch.tensor(-100))], o)
            G.add("cross_entropy", "index-zero-classes-kdim", [("input", torch.zeros(2, 0, 3)),
                                                               ("target", torch.full((2, 3), -100))], o)
    G.add("cross_entropy", "index-zero-classes-range", [("input", torch.zeros(2, 0)),
                                                        ("target", torch.tensor([0, -100]))])
    # an empty tensor whose other dims multiply past 2^60 - 1: PyTorch accepts it
    G.add("mse_loss", "empty-huge-dims", [("input", torch.zeros(0, 2 ** 62, 4)),
                                          ("target", torch.zeros(0, 2 ** 62, 4))])
    G.add("cross_entropy", "empty-huge-dims", [("input", torch.zeros(0, 2 ** 62)),
                                               ("target", torch.zeros(0, dtype=torch.long))])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=20261128)
    ap.add_argument("--scale", type=int, default=0, help="grow the shapes by this much")
    ap.add_argument("--out", default="-")
    args = ap.parse_args()
    G = Gen(args.seed, args.scale)
    for gen in (gen_regression, gen_kl, gen_nll_ce, gen_bce, gen_mlsm_hinge, gen_triplet, gen_ctc,
                gen_likelihood, gen_ranking, gen_embedding_pairs, gen_beyond, gen_hardening,
                gen_beyond_registered):
        gen(G)
    f = sys.stdout if args.out == "-" else open(args.out, "w")
    f.write("lossgrad-fixture 1\n")
    f.write(f"# generated by tools/gen_fixtures.py --seed {args.seed} --scale {args.scale} "
            f"with torch {torch.__version__}\n")
    kept = dropped = 0
    for case in G.cases:
        res = finalize(case)
        if res is None:
            dropped += 1
            continue
        write_case(f, case, res)
        kept += 1
    if f is not sys.stdout:
        f.close()
    print(f"{kept} cases written, {dropped} dropped (float32 rounding changes PyTorch's answer)",
          file=sys.stderr)


if __name__ == "__main__":
    main()
