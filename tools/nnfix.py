"""What the nn fixture generators share (tools/gen_nn_fixtures.py, tools/gen_nn18_fixtures.py,
tools/gen_optim_fixtures.py).

The record format of tests/fixtures/nn/*.txt (one per line): `case <id>`,
`<key> <value>` options, `tensor <name> <f64|i64> <ndim> <dims...> : <values...>`,
`end`, after a two-line header written by write_fixture. Numbers are printed
with 17 significant digits, so a value reads back bit for bit. Every random
draw is the caller's generator g, in the caller's order: run_rnn draws the
upstream gradients u, v (and w for LSTM's c_n), in that order, and nothing else.
"""

import math

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def fmt(v):
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return "%.17g" % v


def tensor_line(name, t):
    t = t.detach()
    dt = "f64" if t.is_floating_point() else "i64"
    dims = " ".join(str(d) for d in t.shape)
    vals = " ".join(fmt(v) if t.is_floating_point() else str(int(v)) for v in t.reshape(-1).tolist())
    head = f"tensor {name} {dt} {t.dim()}" + (f" {dims}" if dims else "")
    return f"{head} : {vals}\n"


def run_rnn(g, net, kind, x, lens, h0, c0, T, batch_first=False):
    """One RNN case's tensors, from x to the gradients, and its `end`.

    Runs net (GRU, LSTM or RNN: kind "gru", "lstm", "rnn_*") on x (packed by
    lens when lens is given, padded back to T steps) from h0 (and c0 for
    LSTM; None for zeros), draws the upstream gradients u, v (w) from g and
    takes the gradient of sum(output u) + sum(h_n v) (+ sum(c_n w)) for x,
    h0, c0 and every weight.
    """
    state = (h0, c0) if kind == "lstm" and h0 is not None else h0
    if lens is not None:
        packed = pack_padded_sequence(x, lens, batch_first=batch_first, enforce_sorted=False)
        y, st = net(packed, state)
        y, _ = pad_packed_sequence(y, batch_first=batch_first, total_length=T)
    else:
        y, st = net(x, state)
    hn, cn = (st if kind == "lstm" else (st, None))
    u = torch.randn(y.shape, generator=g)
    v = torch.randn(hn.shape, generator=g)
    loss = (y * u).sum() + (hn * v).sum()
    if cn is not None:
        w = torch.randn(cn.shape, generator=g)
        loss = loss + (cn * w).sum()
    loss.backward()
    lines = [tensor_line("x", x)]
    if lens is not None:
        lines.append(tensor_line("lengths", lens))
    if h0 is not None:
        lines.append(tensor_line("h0", h0))
    if c0 is not None:
        lines.append(tensor_line("c0", c0))
    for name, p in net.named_parameters():
        lines.append(tensor_line("param." + name, p))
    lines.append(tensor_line("upstream.output", u))
    lines.append(tensor_line("upstream.h_n", v))
    if cn is not None:
        lines.append(tensor_line("upstream.c_n", w))
    lines.append(tensor_line("out.output", y))
    lines.append(tensor_line("out.h_n", hn))
    if cn is not None:
        lines.append(tensor_line("out.c_n", cn))
    lines.append(tensor_line("grad.x", x.grad))
    if h0 is not None:
        lines.append(tensor_line("grad.h0", h0.grad))
    if c0 is not None:
        lines.append(tensor_line("grad.c0", c0.grad))
    for name, p in net.named_parameters():
        lines.append(tensor_line("grad.param." + name, p.grad))
    lines.append("end\n")
    return lines


def write_fixture(path, script, seed, lines):
    """Writes the header (the format's version, the command and torch's version), then lines."""
    with open(path, "w") as f:
        f.write(f"lossgrad-nn-fixture 1\n# tools/{script} --seed {seed}, torch {torch.__version__}\n")
        f.writelines(lines)
