#!/usr/bin/env python3
"""allreduce_model.py: the tables of docs/distributed.md, "Scaling on paper:
ring allreduce". No measurement: the alpha-beta model with the constants
below, printed as markdown.

    python3 bench/allreduce_model.py

One allreduce of b bytes over p ranks, ring:
    2 (p - 1) alpha + 2 (p - 1) / p * b * beta + (p - 1) / p * b * gamma
Rabenseifner (reduce-scatter and allgather by halving and doubling): the
same with 2 log2(p) alpha in place of 2 (p - 1) alpha.

lossgrad's buckets: the first 1 MiB, then 25 MiB each (the last one what is
left). They go one after another on one link. Backward makes the gradients
at an even rate over t_bwd, from the last parameter to the first.
    no overlap:  exposed = sum of the buckets' times
    overlap:     exposed = max(T(last bucket), sum - t_bwd * (1 - first / n))
Compute: t_step = C_NS * parameters (this machine's MLP step), t_bwd = 2/3
of it. Weak-scaling efficiency = t_step / (t_step + exposed).
"""
import math

MIB = 1 << 20
FIRST, BUCKET = 1 * MIB, 25 * MIB
C_NS = 5.0  # ns of forward + backward per parameter (1.03 ms / 203530)
GAMMA = 0.07e-9  # s per byte of float sum, one core, out of cache (measured here)
LINKS = [  # name, alpha (s), beta (s/byte)
    ("10 Gb/s, alpha 30 us", 30e-6, 8 / 10e9),
    ("25 Gb/s, alpha 15 us", 15e-6, 8 / 25e9),
    ("100 Gb/s, alpha 3 us", 3e-6, 8 / 100e9),
]
MODELS = [("814 KB (the MLP)", 814120), ("10 MB", 10_000_000), ("100 MB", 100_000_000),
          ("1 GB", 1_000_000_000)]
RANKS = [2, 8, 32, 128]


def t_ring(b, p, a, beta):
    return 2 * (p - 1) * a + 2 * (p - 1) / p * b * beta + (p - 1) / p * b * GAMMA


def t_rab(b, p, a, beta):
    return 2 * math.log2(p) * a + 2 * (p - 1) / p * b * beta + (p - 1) / p * b * GAMMA


def buckets(n):
    if n <= FIRST:
        return [n]
    rest = n - FIRST
    out = [FIRST] + [BUCKET] * (rest // BUCKET)
    if rest % BUCKET:
        out.append(rest % BUCKET)
    return out


def exposed(n, p, a, beta, overlap, alg=t_ring):
    bs = buckets(n)
    total = sum(alg(b, p, a, beta) for b in bs)
    if not overlap:
        return total
    t_bwd = 2 / 3 * C_NS * 1e-9 * n / 4
    return max(alg(bs[-1], p, a, beta), total - t_bwd * (1 - bs[0] / n))


def ms(s):
    return f"{s * 1e3:.3g}" if s < 1 else f"{s:.3g} s"


def table(title, cell):
    print(f"\n{title}\n")
    print("| model, link | " + " | ".join(f"p = {p}" for p in RANKS) + " |")
    print("|---|" + "---|" * len(RANKS))
    for mname, n in MODELS:
        for lname, a, beta in LINKS:
            print(f"| {mname}, {lname} | " + " | ".join(cell(n, p, a, beta) for p in RANKS) + " |")


if __name__ == "__main__":
    for mname, n in MODELS:
        print(f"{mname}: {len(buckets(n))} buckets, step compute {C_NS * 1e-6 * n / 4:.3g} ms")
    table("Ring allreduce of all the buckets, ms (Rabenseifner in brackets where it is faster)",
          lambda n, p, a, b: ms(exposed(n, p, a, b, False)) +
          (f" ({ms(exposed(n, p, a, b, False, t_rab))})"
           if exposed(n, p, a, b, False, t_rab) < 0.95 * exposed(n, p, a, b, False) else ""))
    table("Weak-scaling efficiency, ring: no overlap / overlap with backward",
          lambda n, p, a, b: f"{1 / (1 + exposed(n, p, a, b, False) / (C_NS * 1e-9 * n / 4)):.2f}"
          f" / {1 / (1 + exposed(n, p, a, b, True) / (C_NS * 1e-9 * n / 4)):.2f}")
    print("\nDeterministic mode, ms: recursive halving and doubling of the float64 sums (p a power "
          "of two), the allgather of every rank's sum in brackets (any other p), and the memory "
          "per rank of each\n")
    print("| model, link | " + " | ".join(f"p = {p}" for p in RANKS) + " |")
    print("|---|" + "---|" * len(RANKS))
    for mname, n in MODELS[:3]:
        lname, a, beta = LINKS[1]
        cells = []
        for p in RANKS:
            halving = t_rab(2 * n, p, a, beta)
            gather = (p - 1) * a + (p - 1) * 2 * n * beta + p * 2 * n * GAMMA
            cells.append(f"{ms(halving)} ({ms(gather)}), {5 * n / 1e9:.3g} GB ({(p * 2 + 4) * n / 1e9:.3g} GB)")
        print(f"| {mname}, {lname} | " + " | ".join(cells) + " |")
