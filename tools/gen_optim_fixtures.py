#!/usr/bin/python3
"""Generate lossgrad's optimizer fixtures for parameter groups and maximize
(tests/fixtures/nn/optim_groups.txt), for clipping a list of parameters
(tests/fixtures/nn/clip.txt) and for LBFGS (tests/fixtures/nn/lbfgs.txt)
with PyTorch 1.13.

    /usr/bin/python3 tools/gen_optim_fixtures.py [--seed N] [--out FILE]

Needs Debian's python3-torch (for /usr/bin/python3); never needed to build
or test. Each case is a 20-step trajectory on mean((X W + b - Y)^2), as
tools/gen_nn_fixtures.py's optim.txt, with the optimizer built from two
parameter groups: group 0 holds W with the case's options, group 1 holds b
with the options the case lists under the prefix "g1." (PyTorch's
param_groups: the others inherit the optimizer's defaults). A key
"g1.lr_at10" sets group 1's lr after step 10 (param_groups[1]["lr"] = v, a
schedule's write), and "maximize true" ascends (the loss is negated for
PyTorch's maximize: the trajectory is PyTorch's with maximize=True on the
negated loss, so that the run stays bounded).

Record format as tests/nfile.h: `case <id>`, `<key> <value>` options,
`tensor <name> <f64|i64> <ndim> <dims...> : <values...>`, `end`.
"""

import argparse
import math

import torch

from nnfix import fmt, tensor_line, write_fixture

torch.set_default_dtype(torch.float64)

CTOR = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
        "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad,
        "adadelta": torch.optim.Adadelta, "adamax": torch.optim.Adamax,
        "radam": torch.optim.RAdam, "rprop": torch.optim.Rprop, "nadam": torch.optim.NAdam,
        "asgd": torch.optim.ASGD}
# 1.13's RAdam and NAdam have no maximize: lossgrad's maximize on the
# negated loss is PyTorch's plain run on the loss
NO_MAXIMIZE = {"radam", "nadam"}

# (kind, group 0's options, group 1's overrides, extra keys)
CONFIGS = [
    ("sgd", dict(lr=0.1, weight_decay=0.05), dict(weight_decay=0.0), {}),
    ("sgd", dict(lr=0.05, momentum=0.9), dict(lr=0.2, momentum=0.5, dampening=0.25), {}),
    ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True), dict(nesterov=False, momentum=0.0),
     {"g1.lr_at10": 0.01}),
    ("sgd", dict(lr=0.05, momentum=0.9, maximize=True), dict(lr=0.1), {}),
    ("adam", dict(lr=0.05), dict(lr=0.01, betas=(0.8, 0.9), amsgrad=True), {}),
    ("adam", dict(lr=0.03, weight_decay=0.05, maximize=True), dict(weight_decay=0.0, eps=1e-6), {}),
    ("adamw", dict(lr=0.05), dict(weight_decay=0.0), {"g1.lr_at10": 0.2}),
    ("adamw", dict(lr=0.05, weight_decay=0.1, amsgrad=True), dict(maximize=True, amsgrad=False), {}),
    ("rmsprop", dict(lr=0.01), dict(lr=0.02, centered=True, momentum=0.5), {}),
    ("rmsprop", dict(lr=0.01, alpha=0.9, maximize=True), dict(weight_decay=0.01), {}),
    # one group, maximize, every kind
    ("sgd", dict(lr=0.05, maximize=True), None, {}),
    ("adam", dict(lr=0.05, maximize=True, amsgrad=True), None, {}),
    ("adamw", dict(lr=0.05, maximize=True), None, {}),
    ("rmsprop", dict(lr=0.01, maximize=True, centered=True), None, {}),
    # the kinds after RMSprop, every option
    ("adagrad", dict(lr=0.1), None, {}),
    ("adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.02, initial_accumulator_value=0.3,
                     eps=1e-6), None, {}),
    # a group's own initial_accumulator_value is ignored by 1.13 (its
    # __init__ fills every sum with the optimizer's): lossgrad uses the
    # group's (docs/losses.md's departures), so no case sets one
    ("adagrad", dict(lr=0.1, maximize=True), dict(lr=0.05, lr_decay=0.1), {}),
    ("adadelta", dict(), None, {}),
    ("adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.03), None, {}),
    ("adadelta", dict(lr=2.0, maximize=True), dict(rho=0.95), {}),
    ("adamax", dict(lr=0.05), None, {}),
    ("adamax", dict(lr=0.05, betas=(0.8, 0.95), eps=1e-5, weight_decay=0.04), None, {}),
    ("adamax", dict(lr=0.05, maximize=True), dict(lr=0.1, betas=(0.5, 0.9)), {}),
    ("radam", dict(lr=0.05), None, {}),
    ("radam", dict(lr=0.05, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.05), None, {}),
    ("radam", dict(lr=0.05, maximize=True), dict(lr=0.02), {}),
    ("rprop", dict(lr=0.01), None, {}),
    ("rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2)), None, {}),
    ("rprop", dict(lr=0.02, maximize=True), dict(lr=0.1, etas=(0.6, 1.1)), {}),
    ("nadam", dict(lr=0.05), None, {}),
    ("nadam", dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.05, momentum_decay=0.1),
     None, {}),
    ("nadam", dict(lr=0.05, maximize=True), dict(lr=0.02, momentum_decay=0.01), {}),
    ("asgd", dict(lr=0.05), None, {}),
    ("asgd", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=5, weight_decay=0.02), None, {}),
    ("asgd", dict(lr=0.05, t0=3, maximize=True), dict(lr=0.1, lambd=0.05), {"g1.lr_at10": 0.02}),
]


def option_lines(prefix, kw):
    lines = []
    for k, v in kw.items():
        if k == "betas":
            lines += [f"{prefix}beta1 {fmt(v[0])}\n", f"{prefix}beta2 {fmt(v[1])}\n"]
        elif k == "etas":
            lines += [f"{prefix}etaminus {fmt(v[0])}\n", f"{prefix}etaplus {fmt(v[1])}\n"]
        elif k == "step_sizes":
            lines += [f"{prefix}step_size_min {fmt(v[0])}\n",
                      f"{prefix}step_size_max {fmt(v[1])}\n"]
        elif isinstance(v, bool):
            lines.append(f"{prefix}{k} {str(v).lower()}\n")
        else:
            lines.append(f"{prefix}{k} {fmt(float(v))}\n")
    return lines


def cases(g):
    out = []
    for n, (kind, kw, g1, extra) in enumerate(CONFIGS):
        X = torch.randn(8, 3, generator=g)
        Y = torch.randn(8, 2, generator=g)
        W = torch.randn(3, 2, generator=g).requires_grad_(True)
        b = torch.randn(2, generator=g).requires_grad_(True)
        W0, b0 = W.detach().clone(), b.detach().clone()
        maximize = kw.get("maximize", False) or (g1 or {}).get("maximize", False)
        tkw, tg1 = dict(kw), dict(g1 or {})
        if kind in NO_MAXIMIZE:
            tkw.pop("maximize", None), tg1.pop("maximize", None)
        if g1 is None:
            opt = CTOR[kind]([W, b], **tkw)
        else:
            opt = CTOR[kind]([{"params": [W]}, dict(params=[b], **tg1)], **tkw)
        trajW, trajb, losses = [], [], []
        for s in range(20):
            opt.zero_grad()
            loss = ((X @ W + b - Y) ** 2).mean()
            # maximize ascends: the objective -loss keeps the run bounded
            (-loss if maximize and kind not in NO_MAXIMIZE else loss).backward()
            opt.step()
            if s == 9 and "g1.lr_at10" in extra:
                opt.param_groups[1]["lr"] = extra["g1.lr_at10"]
            losses.append(loss.item())
            trajW.append(W.detach().clone())
            trajb.append(b.detach().clone())
        lines = [f"case {kind}-groups-{n}\n", f"optim {kind}\n",
                 f"groups {1 if g1 is None else 2}\n"]
        lines += option_lines("", kw)
        lines += option_lines("g1.", g1 or {})
        lines += [f"{k} {fmt(float(v))}\n" for k, v in extra.items()]
        if maximize:
            lines.append("objective negated\n")
        lines += [tensor_line("X", X), tensor_line("Y", Y), tensor_line("W0", W0),
                  tensor_line("b0", b0), tensor_line("traj.W", torch.stack(trajW)),
                  tensor_line("traj.b", torch.stack(trajb)),
                  tensor_line("loss", torch.tensor(losses)), "end\n"]
        out.extend(lines)
    return out


def clip_cases(g):
    """torch.nn.utils.clip_grad_norm_ over two of three parameters (A and C;
    B's gradient is untouched) for several norm types and max norms, and
    clip_grad_value_ over the same two."""
    out = []
    for n, (max_norm, norm_type) in enumerate([(0.5, 2.0), (100.0, 2.0), (0.3, 1.0),
                                               (0.2, math.inf), (0.4, 3.0), (0.0, 2.0)]):
        ps = [torch.zeros(3, 4, requires_grad=True), torch.zeros(5, requires_grad=True),
              torch.zeros(2, 2, requires_grad=True)]
        grads = [torch.randn(p.shape, generator=g) for p in ps]
        for p, gr in zip(ps, grads):
            p.grad = gr.clone()
        total = torch.nn.utils.clip_grad_norm_([ps[0], ps[2]], max_norm, norm_type)
        lines = [f"case clip-norm-{n}\n", f"max_norm {fmt(max_norm)}\n",
                 f"norm_type {fmt(norm_type)}\n"]
        lines += [tensor_line(f"grad{k}", gr) for k, gr in enumerate(grads)]
        lines += [tensor_line(f"clipped{k}", p.grad) for k, p in enumerate(ps)]
        lines += [tensor_line("total", total), "end\n"]
        out.extend(lines)
    for n, value in enumerate([0.5, 0.05]):
        ps = [torch.zeros(3, 4, requires_grad=True), torch.zeros(5, requires_grad=True),
              torch.zeros(2, 2, requires_grad=True)]
        grads = [torch.randn(p.shape, generator=g) for p in ps]
        for p, gr in zip(ps, grads):
            p.grad = gr.clone()
        torch.nn.utils.clip_grad_value_([ps[0], ps[2]], value)
        lines = [f"case clip-value-{n}\n", f"value {fmt(value)}\n"]
        lines += [tensor_line(f"grad{k}", gr) for k, gr in enumerate(grads)]
        lines += [tensor_line(f"clipped{k}", p.grad) for k, p in enumerate(ps)]
        lines.append("end\n")
        out.extend(lines)
    return out


def lbfgs_run(X, Y, W, b, kw):
    """5 calls of LBFGS's step(closure) on W and b: the parameters and the
    returned loss (float(loss), a Python double) after each call."""
    opt = torch.optim.LBFGS([W, b], **kw)

    def closure():
        opt.zero_grad()
        loss = ((X @ W + b - Y) ** 2).mean() + 0.1 * (W ** 4).sum()
        loss.backward()
        return loss
    trajW, trajb, losses = [], [], []
    for _ in range(5):
        losses.append(float(opt.step(closure)))
        trajW.append(W.detach().clone())
        trajb.append(b.detach().clone())
    return trajW, trajb, losses


def lbfgs_cases(g):
    """torch.optim.LBFGS, 5 calls of step(closure) on mean((X W + b - Y)^2)
    + 0.1 sum(W^4) (not a quadratic), with and without the strong-Wolfe
    line search: the parameters and the returned loss after each call, in
    float64 (traj.W, traj.b, loss) and again in float32 from the same
    inputs rounded to float32 (traj32.W, traj32.b, loss32, written exactly
    as float64 values)."""
    configs = [dict(), dict(line_search_fn="strong_wolfe"),
               dict(history_size=3, max_iter=7, line_search_fn="strong_wolfe"),
               dict(lr=0.5, max_iter=4, tolerance_change=1e-5), dict(max_eval=6, lr=0.8),
               dict(history_size=2, max_iter=30, line_search_fn="strong_wolfe",
                    tolerance_grad=1e-4),
               # the line search keeps its own 1e-9 whatever tolerance_change is
               dict(line_search_fn="strong_wolfe", tolerance_change=1e-3)]
    out = []
    for n, kw in enumerate(configs):
        X = torch.randn(8, 3, generator=g)
        Y = torch.randn(8, 2, generator=g)
        W = torch.randn(3, 2, generator=g).requires_grad_(True)
        b = torch.randn(2, generator=g).requires_grad_(True)
        W0, b0 = W.detach().clone(), b.detach().clone()
        trajW, trajb, losses = lbfgs_run(X, Y, W, b, kw)
        # the same run in float32: the inputs rounded to float32, float32
        # parameters, the same closure (lossgrad's float32 run is compared
        # with this trajectory)
        W32 = W0.float().requires_grad_(True)
        b32 = b0.float().requires_grad_(True)
        trajW32, trajb32, losses32 = lbfgs_run(X.float(), Y.float(), W32, b32, kw)
        lines = [f"case lbfgs-{n}\n", "optim lbfgs\n"]
        for k, v in kw.items():
            if k == "line_search_fn":
                lines.append("line_search strong_wolfe\n")
            else:
                lines.append(f"{k} {fmt(float(v))}\n")
        lines += [tensor_line("X", X), tensor_line("Y", Y), tensor_line("W0", W0),
                  tensor_line("b0", b0), tensor_line("traj.W", torch.stack(trajW)),
                  tensor_line("traj.b", torch.stack(trajb)),
                  tensor_line("loss", torch.tensor(losses)),
                  tensor_line("traj32.W", torch.stack(trajW32)),
                  tensor_line("traj32.b", torch.stack(trajb32)),
                  tensor_line("loss32", torch.tensor(losses32)), "end\n"]
        out.extend(lines)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--out", default="tests/fixtures/nn/optim_groups.txt")
    ap.add_argument("--clip-out", default="tests/fixtures/nn/clip.txt")
    ap.add_argument("--lbfgs-out", default="tests/fixtures/nn/lbfgs.txt")
    a = ap.parse_args()
    g = torch.Generator().manual_seed(a.seed)
    write_fixture(a.out, "gen_optim_fixtures.py", a.seed, cases(g))
    write_fixture(a.clip_out, "gen_optim_fixtures.py", a.seed, clip_cases(g))
    write_fixture(a.lbfgs_out, "gen_optim_fixtures.py", a.seed, lbfgs_cases(g))


if __name__ == "__main__":
    main()
