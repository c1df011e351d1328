#!/usr/bin/python3
"""Generate lossgrad's nn/optim fixtures with PyTorch (tests/fixtures/nn/).

    /usr/bin/python3 tools/gen_nn_fixtures.py [--seed N] [--outdir DIR]

Needs Debian's python3-torch (for /usr/bin/python3); never needed to build or
test. Three files, each a list of cases of named tensors and options:

  rnn.txt    GRU / LSTM / RNN forward and backward with identical weights:
             output, h_n, c_n, and the gradient of
             sum(output*u) + sum(h_n*v) (+ sum(c_n*w)) for x, h0, c0 and
             every weight; lengths through pack_padded_sequence.
  optim.txt  20-step trajectories of SGD, Adam, AdamW and RMSprop on
             mean((X W + b - Y)^2), every option exercised.
  sched.txt  learning rates of StepLR, ExponentialLR, CosineAnnealingLR and
             LinearLR step by step.

Record format (one per line; tools/nnfix.py writes it): `case <id>`,
`<key> <value>` options, `tensor <name> <f64|i64> <ndim> <dims...> : <values...>`,
`end`.
"""

import argparse
import os

import torch

from nnfix import fmt, run_rnn, tensor_line, write_fixture

torch.set_default_dtype(torch.float64)


def rnn_cases(g):
    kinds = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn_tanh": torch.nn.RNN, "rnn_relu": torch.nn.RNN}
    configs = [
        ("gru", 1, False, False, False), ("gru", 2, True, True, True), ("gru", 2, False, True, False),
        ("gru", 1, True, False, True),
        ("lstm", 1, False, False, False), ("lstm", 2, True, True, True), ("lstm", 3, False, True, True),
        ("lstm", 1, True, True, False),
        ("rnn_tanh", 2, True, True, True), ("rnn_relu", 1, False, True, False),
    ]
    out = []
    for n, (kind, layers, bidir, lengths, use_h0) in enumerate(configs):
        T, N, I, H = 5, 3, 4, 3
        kw = dict(input_size=I, hidden_size=H, num_layers=layers, bidirectional=bidir)
        if kind.startswith("rnn"):
            kw["nonlinearity"] = kind.split("_")[1]
        net = kinds[kind](**kw)
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.rand(p.shape, generator=g) * 1.2 - 0.6)
        D = 2 if bidir else 1
        x = torch.randn(T, N, I, generator=g).requires_grad_(True)
        lens = torch.tensor([T, 2, 4][:N]) if lengths else None
        h0 = torch.randn(layers * D, N, H, generator=g).requires_grad_(True) if use_h0 else None
        c0 = torch.randn(layers * D, N, H, generator=g).requires_grad_(True) if (use_h0 and kind == "lstm") else None
        lines = [f"case {kind}-L{layers}{'-bi' if bidir else ''}{'-len' if lengths else ''}"
                 f"{'-h0' if use_h0 else ''}-{n}\n", f"kind {kind}\n", f"input_size {I}\n",
                 f"hidden {H}\n", f"layers {layers}\n", f"bidirectional {str(bidir).lower()}\n"]
        lines += run_rnn(g, net, kind, x, lens, h0, c0, T)
        out.extend(lines)
    return out


def optim_cases(g):
    configs = [
        ("sgd", dict(lr=0.1)),
        ("sgd", dict(lr=0.05, momentum=0.9)),
        ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
        ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02)),
        ("adam", dict(lr=0.05)),
        ("adam", dict(lr=0.03, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.05)),
        ("adam", dict(lr=0.05, amsgrad=True)),
        ("adamw", dict(lr=0.05)),
        ("adamw", dict(lr=0.05, weight_decay=0.1, amsgrad=True, betas=(0.85, 0.95))),
        ("rmsprop", dict(lr=0.01)),
        ("rmsprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01)),
        ("rmsprop", dict(lr=0.005, momentum=0.9, centered=True)),
        ("rmsprop", dict(lr=0.005, momentum=0.5)),
        ("rmsprop", dict(lr=0.01, centered=True, weight_decay=0.05)),
    ]
    ctor = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
            "rmsprop": torch.optim.RMSprop}
    out = []
    for n, (kind, kw) in enumerate(configs):
        X = torch.randn(8, 3, generator=g)
        Y = torch.randn(8, 2, generator=g)
        W = torch.randn(3, 2, generator=g).requires_grad_(True)
        b = torch.randn(2, generator=g).requires_grad_(True)
        W0, b0 = W.detach().clone(), b.detach().clone()
        opt = ctor[kind]([W, b], **kw)
        trajW, trajb, losses = [], [], []
        for _ in range(20):
            opt.zero_grad()
            loss = ((X @ W + b - Y) ** 2).mean()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            trajW.append(W.detach().clone())
            trajb.append(b.detach().clone())
        lines = [f"case {kind}-{n}\n", f"optim {kind}\n"]
        for k, v in kw.items():
            if k == "betas":
                lines += [f"beta1 {fmt(v[0])}\n", f"beta2 {fmt(v[1])}\n"]
            elif isinstance(v, bool):
                lines.append(f"{k} {str(v).lower()}\n")
            else:
                lines.append(f"{k} {fmt(float(v))}\n")
        lines += [tensor_line("X", X), tensor_line("Y", Y), tensor_line("W0", W0), tensor_line("b0", b0),
                  tensor_line("traj.W", torch.stack(trajW)), tensor_line("traj.b", torch.stack(trajb)),
                  tensor_line("loss", torch.tensor(losses)), "end\n"]
        out.extend(lines)
    return out


def sched_cases():
    out = []
    p = [torch.zeros(1, requires_grad=True)]
    configs = [
        ("step", dict(step_size=3, gamma=0.5), lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
        ("exponential", dict(gamma=0.9), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9)),
        ("cosine", dict(t_max=7, eta_min=0.01),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=0.01)),
        ("cosine", dict(t_max=4, eta_min=0.0),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=4)),
        ("linear", dict(start_factor=0.25, end_factor=1.0, total_iters=6),
         lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=6)),
        ("linear", dict(), lambda o: torch.optim.lr_scheduler.LinearLR(o)),
    ]
    for n, (kind, kw, make) in enumerate(configs):
        opt = torch.optim.SGD(p, lr=0.3)
        s = make(opt)
        lrs = [opt.param_groups[0]["lr"]]
        for _ in range(24):
            opt.step()
            s.step()
            lrs.append(opt.param_groups[0]["lr"])
        lines = [f"case sched-{kind}-{n}\n", f"sched {kind}\n", "lr 0.29999999999999999\n"]
        for k, v in kw.items():
            lines.append(f"{k} {fmt(float(v))}\n")
        lines += [tensor_line("lrs", torch.tensor(lrs)), "end\n"]
        out.extend(lines)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--outdir", default="tests/fixtures/nn")
    args = ap.parse_args()
    g = torch.Generator().manual_seed(args.seed)
    os.makedirs(args.outdir, exist_ok=True)
    for name, lines in (("rnn.txt", rnn_cases(g)), ("optim.txt", optim_cases(g)), ("sched.txt", sched_cases())):
        write_fixture(os.path.join(args.outdir, name), "gen_nn_fixtures.py", args.seed, lines)


if __name__ == "__main__":
    main()
