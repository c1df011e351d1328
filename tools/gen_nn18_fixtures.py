#!/usr/bin/python3
"""Generate the fixtures of issue 18's layer options with PyTorch (tests/fixtures/nn/layers18.txt).

    /usr/bin/python3 tools/gen_nn18_fixtures.py [--seed N] [--out tests/fixtures/nn/layers18.txt]

Needs Debian's python3-torch (for /usr/bin/python3); never needed to build or
test. Everything is float64; every draw comes from one torch.Generator seeded
with --seed (default 18) and PyTorch runs on one thread, so a seed always gives
the same file. tests/test_nn18.c reads it and runs every case in float64 and
float32 (the float32 run rounds the same inputs). Cases, by id prefix:

  emb-*   nn.Embedding with padding_idx (also negative), max_norm / norm_type
          (the weight after the in-place renormalisation too) and
          scale_grad_by_freq: output and the gradient of sum(out * u) for the
          weight, which the test copies in before the lookup.
  rnn-*   nn.RNN / GRU / LSTM with batch_first, LSTM proj_size, unbatched
          input (2-D x, 2-D h0 / c0) and dropout between layers in eval mode:
          output, h_n, c_n and the gradient of sum(output u) + sum(h_n v)
          (+ sum(c_n w)) for x, h0, c0 and every weight, the weights drawn
          here and copied in by name.
  mlp-*   Linear -> activation -> Linear for every lg_activation (PyTorch's
          module defaults), with and without bias: output and gradients.
  eye-*, dirac-*   torch.nn.init.eye_ / dirac_ (deterministic) on given shapes.
  gain-*  torch.nn.init.calculate_gain for every nonlinearity name.

Record format (one per line), as tools/gen_nn_fixtures.py (both write it
through tools/nnfix.py): `case <id>`, `<key> <value>` options,
`tensor <name> <f64|i64> <ndim> <dims...> : <values...>`, `end`.
"""

import argparse
import math

import torch

from nnfix import fmt, run_rnn, tensor_line, write_fixture

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


def embedding_cases(g):
    # (id, num, dim, padding_idx, max_norm, norm_type, scale_grad_by_freq, indices)
    idx2 = [[1, 2, 4, 2], [6, 1, 1, 0]]
    configs = [
        ("pad", 7, 3, 2, None, 2.0, False, idx2),
        ("pad-neg", 7, 3, -2, None, 2.0, False, idx2),
        ("pad-0", 5, 4, 0, None, 2.0, False, [0, 3, 0, 4, 1]),
        ("maxnorm-l2", 7, 3, None, 1.0, 2.0, False, idx2),
        ("maxnorm-l1", 7, 3, None, 1.5, 1.0, False, idx2),
        ("maxnorm-inf", 7, 3, None, 0.8, math.inf, False, idx2),
        ("maxnorm-p3", 7, 3, None, 1.2, 3.0, False, idx2),
        ("freq", 7, 3, None, None, 2.0, True, idx2),
        ("freq-pad", 7, 3, 1, None, 2.0, True, idx2),
        ("all", 7, 3, 2, 1.1, 2.0, True, [[[2, 2], [5, 3]], [[5, 5], [0, 2]]]),
    ]
    out = []
    for name, num, dim, pad, max_norm, norm_type, freq, idx in configs:
        emb = torch.nn.Embedding(num, dim, padding_idx=pad, max_norm=max_norm, norm_type=norm_type,
                                 scale_grad_by_freq=freq)
        with torch.no_grad():
            emb.weight.copy_(torch.randn(num, dim, generator=g) * 1.5)
        w0 = emb.weight.detach().clone()
        ind = torch.tensor(idx)
        y = emb(ind)
        u = torch.randn(y.shape, generator=g)
        (y * u).sum().backward()
        lines = [f"case emb-{name}\n", f"num {num}\n", f"dim {dim}\n"]
        if pad is not None:
            lines.append(f"padding_idx {pad}\n")
        if max_norm is not None:
            lines.append(f"max_norm {fmt(max_norm)}\n")
            lines.append(f"norm_type {fmt(norm_type)}\n")
        lines.append(f"scale_grad_by_freq {str(freq).lower()}\n")
        lines += [tensor_line("weight", w0), tensor_line("indices", ind), tensor_line("upstream", u),
                  tensor_line("out", y), tensor_line("weight_after", emb.weight),
                  tensor_line("grad.weight", emb.weight.grad), "end\n"]
        out.extend(lines)
    return out


def rnn_cases(g):
    kinds = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn_tanh": torch.nn.RNN, "rnn_relu": torch.nn.RNN}
    # (kind, layers, bidir, batch_first, proj, unbatched, lengths, h0, dropout)
    configs = [
        ("gru", 1, False, True, 0, False, False, True, 0.0),
        ("gru", 2, True, True, 0, False, True, True, 0.0),
        ("lstm", 2, False, True, 0, False, True, True, 0.0),
        ("rnn_tanh", 1, True, True, 0, False, False, False, 0.0),
        ("lstm", 1, False, False, 2, False, False, True, 0.0),
        ("lstm", 2, True, False, 2, False, False, False, 0.0),  # 48 tensors: nfile's limit
        ("lstm", 1, True, True, 1, False, True, True, 0.0),
        ("lstm", 3, False, False, 2, False, True, False, 0.0),
        ("gru", 2, True, False, 0, True, False, True, 0.0),
        ("lstm", 1, False, False, 0, True, False, True, 0.0),
        ("lstm", 1, True, True, 2, True, False, True, 0.0),
        ("rnn_relu", 2, False, False, 0, True, False, False, 0.0),
        ("rnn_tanh", 1, False, False, 0, True, False, True, 0.0),
        ("gru", 3, False, False, 0, False, False, True, 0.5),
        ("lstm", 2, False, True, 2, False, False, True, 0.3),
        ("rnn_tanh", 2, False, False, 0, True, False, False, 0.7),
    ]
    out = []
    for n, (kind, layers, bidir, bf, proj, unb, lengths, use_h0, dropout) in enumerate(configs):
        T, N, I, H = 5, 3, 4, 3
        kw = dict(input_size=I, hidden_size=H, num_layers=layers, bidirectional=bidir, batch_first=bf,
                  dropout=dropout)
        if kind.startswith("rnn"):
            kw["nonlinearity"] = kind.split("_")[1]
        if proj:
            kw["proj_size"] = proj
        net = kinds[kind](**kw)
        net.eval()  # dropout between layers: eval mode, deterministic
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.rand(p.shape, generator=g) * 1.2 - 0.6)
        D = 2 if bidir else 1
        P = proj if proj else H
        xshape = (T, I) if unb else ((N, T, I) if bf else (T, N, I))
        x = torch.randn(*xshape, generator=g).requires_grad_(True)
        lens = torch.tensor([T, 2, 4][:N]) if lengths else None
        hshape = (layers * D, P) if unb else (layers * D, N, P)
        cshape = (layers * D, H) if unb else (layers * D, N, H)
        h0 = torch.randn(*hshape, generator=g).requires_grad_(True) if use_h0 else None
        c0 = torch.randn(*cshape, generator=g).requires_grad_(True) if (use_h0 and kind == "lstm") else None
        tag = (f"{kind}-L{layers}{'-bi' if bidir else ''}{'-bf' if bf else ''}{f'-proj{proj}' if proj else ''}"
               f"{'-unb' if unb else ''}{'-len' if lengths else ''}{'-h0' if use_h0 else ''}"
               f"{f'-drop{dropout}' if dropout else ''}-{n}")
        lines = [f"case rnn-{tag}\n", f"kind {kind}\n", f"input_size {I}\n", f"hidden {H}\n",
                 f"layers {layers}\n", f"bidirectional {str(bidir).lower()}\n",
                 f"batch_first {str(bf).lower()}\n", f"proj_size {proj}\n", f"dropout {fmt(dropout)}\n"]
        lines += run_rnn(g, net, kind, x, lens, h0, c0, T, batch_first=bf)
        out.extend(lines)
    return out


# lg_activation's names in enum order, as PyTorch modules with their defaults
ACTIVATIONS = [
    ("relu", torch.nn.ReLU()), ("tanh", torch.nn.Tanh()), ("sigmoid", torch.nn.Sigmoid()),
    ("gelu", torch.nn.GELU()), ("gelu_tanh", torch.nn.GELU(approximate="tanh")), ("silu", torch.nn.SiLU()),
    ("mish", torch.nn.Mish()), ("leaky_relu", torch.nn.LeakyReLU()), ("elu", torch.nn.ELU()),
    ("celu", torch.nn.CELU()), ("selu", torch.nn.SELU()), ("softplus", torch.nn.Softplus()),
    ("hardtanh", torch.nn.Hardtanh()), ("relu6", torch.nn.ReLU6()), ("hardswish", torch.nn.Hardswish()),
    ("hardsigmoid", torch.nn.Hardsigmoid()), ("softsign", torch.nn.Softsign()),
    ("log_sigmoid", torch.nn.LogSigmoid()), ("identity", torch.nn.Identity()),
]


def mlp_cases(g):
    out = []
    for a, (name, act) in enumerate(ACTIVATIONS):
        for bias in (True, False):
            l0, l1 = torch.nn.Linear(4, 6, bias=bias), torch.nn.Linear(6, 3, bias=bias)
            net = torch.nn.Sequential(l0, act, l1)
            with torch.no_grad():
                for p in net.parameters():
                    p.copy_(torch.randn(p.shape, generator=g))
            x = (torch.randn(5, 4, generator=g) * 1.5).requires_grad_(True)
            y = net(x)
            u = torch.randn(y.shape, generator=g)
            (y * u).sum().backward()
            lines = [f"case mlp-{name}{'' if bias else '-nobias'}\n", f"activation {a}\n",
                     f"bias {str(bias).lower()}\n", tensor_line("x", x)]
            for pname, p in [("0.weight", l0.weight), ("0.bias", l0.bias), ("1.weight", l1.weight),
                             ("1.bias", l1.bias)]:
                if p is not None:
                    lines.append(tensor_line("param." + pname, p))
            lines += [tensor_line("upstream", u), tensor_line("out", y), tensor_line("grad.x", x.grad)]
            for pname, p in [("0.weight", l0.weight), ("0.bias", l0.bias), ("1.weight", l1.weight),
                             ("1.bias", l1.bias)]:
                if p is not None:
                    lines.append(tensor_line("grad.param." + pname, p.grad))
            lines.append("end\n")
            out.extend(lines)
    return out


def init_cases():
    out = []
    for shape in [(3, 5), (4, 2), (3, 3), (1, 4)]:
        t = torch.empty(*shape)
        torch.nn.init.eye_(t)
        out += [f"case eye-{'x'.join(map(str, shape))}\n", tensor_line("out", t), "end\n"]
    for shape, groups in [((4, 2, 3), 1), ((2, 3, 5), 1), ((6, 3, 3, 3), 2), ((4, 4, 2, 2), 1),
                          ((4, 1, 3, 2, 3), 2), ((6, 2, 4), 3)]:
        t = torch.empty(*shape)
        torch.nn.init.dirac_(t, groups)
        out += [f"case dirac-{'x'.join(map(str, shape))}-g{groups}\n", f"groups {groups}\n",
                tensor_line("out", t), "end\n"]
    names = ["leaky_relu", "relu", "linear", "sigmoid", "tanh", "selu", "conv1d", "conv2d", "conv3d",
             "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
    for k, nm in enumerate(names):
        params = [None, 0.2, 0.0, 3.0] if nm == "leaky_relu" else [None]
        for p in params:
            gain = torch.nn.init.calculate_gain(nm, p)
            out += [f"case gain-{nm}-{p}\n", f"nonlinearity {k}\n",
                    f"param {fmt(0.01 if p is None else p) if nm == 'leaky_relu' else 0}\n",
                    tensor_line("gain", torch.tensor(gain)), "end\n"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--out", default="tests/fixtures/nn/layers18.txt")
    args = ap.parse_args()
    g = torch.Generator().manual_seed(args.seed)
    lines = embedding_cases(g) + rnn_cases(g) + mlp_cases(g) + init_cases()
    write_fixture(args.out, "gen_nn18_fixtures.py", args.seed, lines)


if __name__ == "__main__":
    main()
