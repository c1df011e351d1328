#!/usr/bin/python3
"""Generate lossgrad's second-order loss fixtures (Hessian-vector products) with PyTorch.

    /usr/bin/python3 tools/gen_second_order.py [--seed N] [--kinks FILE] [--out FILE]
                                               [--max-numel K] [FIXTURE_FILE...]

Needs Debian's python3-torch, like tools/gen_fixtures.py (whose call() builds
each loss, its references for lossgrad's own losses included). Defaults: every
tests/fixtures/*.txt, the kinks of tests/second_order_kinks.txt, and
tests/fixtures2/second_order.txt as the output.

Reads every case of the first-order fixtures and keeps the float64 cases
without `err` whose gradient lines name at least one input, which are not
listed in the kinks file or in KNOWN_DIFFERENCES below, and whose loss
PyTorch differentiates twice (a RuntimeError "... not implemented" from the
second walk drops the case, and is counted by loss). For each: the graded
inputs require grad, out = the loss, f = sum(out * upstream) (upstream from
the case, else ones), g = torch.autograd.grad(f, graded, create_graph=True),
a random direction v per graded input (seeded by --seed and the case id,
rounded to 6 significant digits), hv = torch.autograd.grad(sum_i g_i . v_i,
graded, allow_unused=True) (an unreached input: zeros). Each kept case is
copied line for line from its file, with `v ROLE ...` and `hvp ROLE ...`
lines per graded role before its `end` (docs/second_order_fixtures.md).

The case's out and first gradients are recomputed and must equal the file's
(up to the runner's float64 rule): a difference means the case was rebuilt
wrongly, and it is reported and dropped.
"""

import argparse
import glob
import math
import os
import random
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# importing gen_fixtures makes float64 torch's default dtype
from gen_fixtures import Case, call, fmt_tensor, true_ctc_grad  # noqa: E402

# Cases where lossgrad's second derivatives differ from PyTorch's
# (docs/second_order_fixtures.md, "Known differences"): left out so the
# file states what lossgrad matches; each id with the reason.
KNOWN_DIFFERENCES = {
    # BCE at input 0 or 1: PyTorch's double backward divides by
    # (x + 1e-12)^2 (1 - x + 1e-12)^2, lossgrad differentiates its clamped
    # composite and gets nan
    "binary_cross_entropy-extremes-581": "BCE at input 0 and 1: lossgrad nan",
    "binary_cross_entropy-extremes-582": "BCE at input 0 and 1: lossgrad nan",
    "binary_cross_entropy-extremes-583": "BCE at input 0 and 1: lossgrad nan",
    # anchor == positive with eps 0 and the hinge closed: the loss is 0 near
    # the point, so H = 0 (lossgrad); PyTorch's norm double backward at a zero
    # vector is nan, times the closed hinge's 0
    "triplet_margin_loss-identical-eps0-850": "PyTorch nan (0 * nan), lossgrad 0",
}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INT_OPTS = {"ignore_index", "blank"}


# ---------------------------------------------------------------------------
# Reading the first-order format (/work/shared/FIXTURES.md)

class FCase:
    def __init__(self, cid, path, line):
        self.id, self.path, self.line = cid, path, line
        self.loss = None
        self.opts = {}          # key -> text
        self.inputs = []        # [(role, tensor)]
        self.upstream = None
        self.out = None
        self.grads = []         # [(role, tensor)]
        self.err = None
        self.lines = []         # the case's text lines, "case" to "end"


def parse_tensor(text):
    head, _, vals = text.partition(" : ")
    if not _:
        head, vals = text.rstrip(" :"), ""
    tok = head.split()
    dt, nd = tok[0], int(tok[1])
    shape = [int(d) for d in tok[2:2 + nd]]
    vs = vals.split()
    if dt == "i64":
        return torch.tensor([int(v) for v in vs], dtype=torch.int64).reshape(shape)
    return torch.tensor([float(v) for v in vs], dtype=torch.float64).reshape(shape)


def read_fixtures(path):
    cases, c = [], None
    with open(path) as f:
        for no, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            s = line.strip()
            if not s or s.startswith("#") or s == "lossgrad-fixture 1":
                continue
            word, _, rest = s.partition(" ")
            if word == "case":
                c = FCase(rest, path, no)
                c.lines.append(line)
                continue
            if c is None:
                raise SystemExit(f"{path}:{no}: '{word}' outside a case")
            c.lines.append(line)
            if word == "end":
                cases.append(c)
                c = None
            elif word == "loss":
                c.loss = rest
            elif word == "opt":
                k, v = rest.split()
                c.opts[k] = v
            elif word in ("in", "grad"):
                role, _, t = rest.partition(" ")
                (c.inputs if word == "in" else c.grads).append((role, parse_tensor(t)))
            elif word == "upstream":
                c.upstream = parse_tensor(rest)
            elif word == "out":
                c.out = parse_tensor(rest)
            elif word == "err":
                c.err = rest
            else:
                raise SystemExit(f"{path}:{no}: unknown record '{word}'")
    return cases


def python_opts(c):
    """The option texts as gen_fixtures wrote them from Python values: ints
    for indices (and multi_margin's p), booleans, strings, else floats."""
    o = {}
    for k, v in c.opts.items():
        if v in ("true", "false"):
            o[k] = v == "true"
        elif k == "reduction":
            o[k] = v
        elif k in INT_OPTS or (k == "p" and c.loss == "multi_margin_loss"):
            o[k] = int(v)
        else:
            o[k] = float(v)
    return o


def read_kinks(path):
    ids = set()
    with open(path) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                ids.add(line.split()[0])
    return ids


# ---------------------------------------------------------------------------
# PyTorch

def close64(got, want):
    """The runner's float64 rule (nan is nan, inf its own sign)."""
    got, want = got.reshape(-1).tolist(), want.reshape(-1).tolist()
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if math.isnan(w):
            if not math.isnan(g):
                return False
        elif math.isinf(w):
            if g != w:
                return False
        elif not abs(g - w) <= 1e-9 + 1e-7 * abs(w):
            return False
    return True


def direction(rng, like):
    vals = [float("%.6g" % rng.gauss(0.0, 1.0)) for _ in range(like.numel())]
    return torch.tensor(vals, dtype=torch.float64).reshape(like.shape)


class NotTwice(Exception):
    pass


def second_order(c, seed):
    """{role: (v, hv)} for the case's graded roles; raises NotTwice where
    PyTorch has no double backward, ValueError where the rebuilt case's
    first order differs from the file's."""
    graded = [r for r, _ in c.grads]
    ins, leaves = {}, []
    for r, t in c.inputs:
        t = t.detach().clone()
        if r in graded:
            t.requires_grad_(True)
            leaves.append(t)
        ins[r] = t
    out = call(c.loss, ins, python_opts(c))
    if not close64(out.detach(), c.out):
        raise ValueError("out differs from the file's")
    u = c.upstream if c.upstream is not None else torch.ones_like(out)
    f = (out * u).sum()
    if f.requires_grad:
        g = torch.autograd.grad(f, leaves, create_graph=True, allow_unused=True)
    else:
        g = [None] * len(leaves)
    g = [gi if gi is not None else torch.zeros_like(x) for gi, x in zip(g, leaves)]
    for (r, want), gi in zip(c.grads, g):
        if c.loss == "ctc_loss" and r == "log_probs":  # the departure: the true derivative
            case = Case(c.id, c.loss, c.inputs, python_opts(c), c.upstream, graded)
            gi = true_ctc_grad(case, gi.detach())
        if c.loss == "smooth_l1_loss" and python_opts(c).get("beta", 1.0) == 0:
            tie = ins["input"] == ins["target"]  # the departure: 0 at a tie
            gi = torch.where(tie, torch.zeros_like(gi), gi)
        if not close64(gi.detach(), want):
            raise ValueError(f"grad {r} differs from the file's")
    rng = random.Random(f"{seed}:{c.id}")
    vs = [direction(rng, x) for x in leaves]
    dot = sum((gi * v).sum() for gi, v in zip(g, vs))
    if torch.is_tensor(dot) and dot.requires_grad:
        try:
            hv = torch.autograd.grad(dot, leaves, allow_unused=True)
        except RuntimeError as e:
            if "not implemented" in str(e):
                raise NotTwice(str(e).split("\n")[0])
            raise
    else:
        hv = [None] * len(leaves)
    # None (unreached) and PyTorch's ZeroTensor (a zero second derivative, no storage): zeros
    hv = [torch.zeros_like(x) if h is None or h._is_zerotensor() else h.detach()
          for h, x in zip(hv, leaves)]
    return {r: (v, h) for r, v, h in zip(graded, vs, hv)}


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--kinks", default=os.path.join(ROOT, "tests", "second_order_kinks.txt"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures2", "second_order.txt"))
    ap.add_argument("--max-numel", type=int, default=0,
                    help="drop cases with an input of more elements (0: no cap)")
    args = ap.parse_args()
    files = args.files or sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "*.txt")))
    kinks = read_kinks(args.kinks)
    counts = {"err": 0, "no grad lines": 0, "kinks": 0, "known differences": 0, "too large": 0,
              "rebuilt wrongly": 0}
    not_twice = {}
    kept = []
    total = 0
    for path in files:
        for c in read_fixtures(path):
            total += 1
            if c.err is not None:
                counts["err"] += 1
                continue
            if not c.grads:
                counts["no grad lines"] += 1
                continue
            if c.id in kinks:
                counts["kinks"] += 1
                continue
            if c.id in KNOWN_DIFFERENCES:
                counts["known differences"] += 1
                continue
            if args.max_numel and any(t.numel() > args.max_numel for _, t in c.inputs):
                counts["too large"] += 1
                continue
            try:
                res = second_order(c, args.seed)
            except NotTwice as e:
                not_twice.setdefault(c.loss, [0, str(e)])[0] += 1
                continue
            except ValueError as e:
                print(f"{c.id}: {e}; dropped", file=sys.stderr)
                counts["rebuilt wrongly"] += 1
                continue
            kept.append((c, res))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("lossgrad-fixture 1\n")
        f.write("# generated by tools/gen_second_order.py --seed %d from %s with torch %s\n"
                % (args.seed, " ".join(os.path.relpath(p, ROOT) for p in files),
                   torch.__version__))
        f.write("# v ROLE: a direction; hvp ROLE: (H v)[ROLE], H the Hessian of sum(out * "
                "upstream) in the graded inputs (docs/second_order_fixtures.md)\n")
        for c, res in kept:
            for line in c.lines[:-1]:
                f.write(line + "\n")
            for r, (v, h) in res.items():
                f.write(f"v {r} {fmt_tensor(v)}\n")
                f.write(f"hvp {r} {fmt_tensor(h)}\n")
            f.write(c.lines[-1] + "\n")
    print(f"{total} cases read, {len(kept)} written; left out: "
          + ", ".join(f"{n} {k}" for k, n in counts.items()), file=sys.stderr)
    for loss, (n, why) in sorted(not_twice.items()):
        print(f"  {loss}: {n} cases, PyTorch: {why}", file=sys.stderr)


if __name__ == "__main__":
    main()
