#!/usr/bin/python3
"""Runs lossgrad's benchmark beside PyTorch's, in C++ and Python, and prints the ratios.

    /usr/bin/python3 bench/compare.py [--build build] [--rounds 3] [--filter S]

Three sides: bench_losses (lossgrad), bench_libtorch (libtorch's C++ API,
when BUILD/bench/bench_libtorch exists: configured with -DLG_BUILD_BENCH=ON
and libtorch installed) and bench_torch.py (PyTorch from Python). For each
round and each thread count (1, 2) every side runs every case, the order of
the sides rotating so that each goes first equally often. A case's time on
each side is the median over the rounds of the per-round medians; a ratio is
an anchor's time over lossgrad's, libtorch (C++) first. Every side gets
OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and OPENBLAS_CORETYPE (the kernel
lossgrad's OpenBLAS picks, unless already set); libtorch and PyTorch run
with OMP_WAIT_POLICY=PASSIVE. Then the large elementwise losses' time
against the bandwidth bound (bytes that must move / STREAM copy rate
measured in the same run), the 2-over-1-thread speed-ups, the training
steps against their matrix products alone, their peak memory (RSS growth
over 5 steps, each in a fresh process), and one last line per anchor:

    RESULT anchor=libtorch min_speedup=... geomean_speedup=... cases=...
    RESULT anchor=pytorch min_speedup=... geomean_speedup=... cases=...

The layer cases (LAYERS below: conv2d, batch_norm, layer_norm, max_pool2d
the fashion_cnn step step/cnn, causal self-attention and the small
transformer's step step/transformer; issue 16) are rows of the same table but
stay out of those two lines: they have their own, before them,

    RESULT layers anchor=libtorch min_speedup=... geomean_speedup=... cases=...

and the peak-memory section covers the conv2d cases and step/cnn too
(MEMORY_TOO), where lossgrad's arena high-water mark holds the im2col
column buffers. Only the layer cases:

    bench/run.sh build --filter 'conv2d/|batch_norm/|layer_norm/|max_pool2d/|step/cnn|attention/|step/transformer'

The second-order cases (SECOND_ORDER: the MLP's gradient grad/, its
Hessian-vector product hvp/ against double backward and hvp_functional/
against torch.autograd.functional.hvp; issue 17) also have their own
RESULT lines, and the HVP's cost in gradients on each side:

    RESULT second_order anchor=libtorch min_speedup=... geomean_speedup=... cases=...
    RESULT hvp_over_grad threads=T lossgrad=... libtorch=... pytorch=... (goal: lossgrad <= 4)

Only those: bench/run.sh build --filter 'grad/|hvp'

(--filter S: a substring of the names, =NAME one case, or alternatives
split by '|'; each program applies it.)

Without --filter, two more sections follow: the training steps beside a
process spinning on one core (bench_losses --busy), 2 threads against 1,
with `RESULT busy max_slowdown_2_over_1=...`; and KANN's configuration
(bench_kann_config, 1 thread) with its RESULT lines. --busy-only runs the
busy-machine section alone, --rounds rounds.
"""

import argparse
import math
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
F4 = 4  # bytes per float32

# bytes a large loss must move at least: read every input once, write the
# input gradient once
BYTES = {
    "l1_loss/1M": 3 * F4 * 1048576, "mse_loss/1M": 3 * F4 * 1048576,
    "smooth_l1_loss/1M": 3 * F4 * 1048576, "huber_loss/1M": 3 * F4 * 1048576,
    "hinge_embedding/1M": 3 * F4 * 1048576,
    "cross_entropy/4096x1000": 2 * F4 * 4096000 + 8 * 4096,
    "nll_loss/4096x1000": 2 * F4 * 4096000 + 8 * 4096,
    "kl_div/4096x1000": 3 * F4 * 4096000, "binary_cross_entropy/4096x1000": 3 * F4 * 4096000,
    "bce_with_logits/4096x1000": 3 * F4 * 4096000,
    "multilabel_soft_margin/4096x1000": 3 * F4 * 4096000,
    # optimizer steps: read the parameter, its gradient and each state
    # buffer, write the parameter and each buffer
    "optim/sgd_1M": 3 * F4 * 1048576, "optim/sgd_momentum_1M": 5 * F4 * 1048576,
    "optim/adam_1M": 7 * F4 * 1048576, "optim/adamw_1M": 7 * F4 * 1048576,
    "optim/rmsprop_1M": 5 * F4 * 1048576, "optim/rmsprop_centered_momentum_1M": 9 * F4 * 1048576,
}

# the layer cases (issue 16): in the table, with their own RESULT lines
LAYERS = {
    "conv2d/64x1x28x28-32k3", "conv2d/64x32x14x14-64k3", "batch_norm/64x64x14x14",
    "layer_norm/8192x512", "max_pool2d/64x32x28x28-k2", "step/cnn",
    "attention/32x128x128-h4-causal", "step/transformer",
}
# the second-order cases (issue 17): in the table, with their own RESULT lines
SECOND_ORDER = {"grad/mlp_784_256_10_b128", "hvp/mlp_784_256_10_b128",
                "hvp_functional/mlp_784_256_10_b128"}

# besides the training steps, in the peak-memory section: the convolutions,
# whose column buffers (im2col) are in lossgrad's step arena, and attention
# (its [N*H, L, L] scores)
MEMORY_TOO = {"conv2d/64x1x28x28-32k3", "conv2d/64x32x14x14-64k3",
              "attention/32x128x128-h4-causal", "grad/mlp_784_256_10_b128",
              "hvp/mlp_784_256_10_b128"}

# matrix products alone: the BLAS limits of two training steps, reported
# beside them, not ratio targets
ONLY_PRODUCTS = {
    "train/mlp_matmuls_only": "the BLAS limit of the MLP step (not a ratio target)",
    "train/gru_matmuls_only": "the GRU step's recurrent products alone (not a ratio target)",
}


def run(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    info, cases = {}, {}
    for line in out.splitlines():
        p = line.split()
        if not p:
            continue
        if p[0] == "CASE":
            cases[p[1]] = float(p[2])
        elif p[0] == "MEMORY":
            cases[p[1]] = (int(p[2]), int(p[3]))
        else:
            info[p[0]] = p[1]
    return info, cases


def kind(name):
    if name.startswith(("train/", "step/")):
        return "train"
    if name in LAYERS:
        return "layer"
    return "large" if name.split("/")[1] in ("1M", "4096x1000", "4096x128", "T50N64C20S10",
                                              "T200N32C40S40") else "small"


def rotated(sides, k):
    """sides, starting from the (k mod n)-th"""
    k %= len(sides)
    return sides[k:] + sides[:k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--filter")
    ap.add_argument("--busy-only", action="store_true",
                    help="only the busy-machine section (lossgrad alone), --rounds rounds")
    a = ap.parse_args()
    c_exe = os.path.join(a.build, "bench", "bench_losses")
    cpp_exe = os.path.join(a.build, "bench", "bench_libtorch")
    py = [sys.executable, os.path.join(HERE, "bench_torch.py")]
    if not os.access(c_exe, os.X_OK):
        sys.exit(f"compare.py: {c_exe} not found: configure with -DLG_BUILD_BENCH=ON and build")
    # the sides: name, command, whether it runs with OMP_WAIT_POLICY=PASSIVE
    sides = [("lossgrad", [c_exe], False)]
    if os.access(cpp_exe, os.X_OK):
        sides.append(("libtorch", [cpp_exe], True))
    else:
        print(f"compare.py: {cpp_exe} not found (libtorch not installed?): no C++ anchor",
              file=sys.stderr)
    sides.append(("pytorch", py, True))
    anchors = [s for s, _, _ in sides[1:]]
    flt = ["--filter", a.filter] if a.filter else []
    base = dict(os.environ)
    info, _ = run([c_exe, "--filter", "no case has this name"], base)
    base.setdefault("OPENBLAS_CORETYPE", info["KERNEL"])

    def env_for(passive, threads):
        e = dict(base, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        return dict(e, OMP_WAIT_POLICY="PASSIVE") if passive else e

    if a.busy_only:
        busy_machine(c_exe, env_for, a.rounds)
        return
    times = {}  # (side, threads, case) -> [seconds per round]
    copy = []
    kernels = {}
    for r in range(a.rounds):
        for threads in (1, 2):
            for side, cmd, passive in rotated(sides, r + threads - 1):
                info, cases = run(cmd + ["--threads", str(threads)] + flt,
                                  env_for(passive, threads))
                kernels[side] = info.get("KERNEL")
                if "COPY_GBS" in info:
                    copy.append(float(info["COPY_GBS"]))
                for name, t in cases.items():
                    times.setdefault((side, threads, name), []).append(t)
                print(f"round {r + 1}/{a.rounds}, {threads} thread(s): {side} done",
                      file=sys.stderr)
    names = [n for (s, t, n) in times if s == "lossgrad" and t == 1]
    med = {k: statistics.median(v) for k, v in times.items()}
    gbs = max(copy)
    kern = ", ".join(f"{s} {kernels.get(s)}" for s, _, _ in sides)
    print(f"OpenBLAS kernel: {kern} (OPENBLAS_CORETYPE={base['OPENBLAS_CORETYPE']}); "
          f"STREAM copy {gbs:.2f} GB/s; {a.rounds} rounds, medians")
    heads = {"libtorch": ("libtorch", "C++"), "pytorch": ("pytorch", "Python")}
    print(f"{'case':36} {'thr':>3} {'lossgrad':>11} "
          + " ".join(f"{heads[s][0]:>11}" for s in anchors) + " "
          + " ".join(f"{heads[s][1]:>7}" for s in anchors) + "  note")
    ratios = {s: [] for s in anchors}
    layer_ratios = {s: [] for s in anchors}
    second_ratios = {s: [] for s in anchors}
    for name in names:
        for threads in (1, 2):
            lg = med.get(("lossgrad", threads, name))
            at = {s: med.get((s, threads, name)) for s in anchors}
            if lg is None or all(v is None for v in at.values()):
                continue
            rt = {s: (v / lg if v is not None else None) for s, v in at.items()}
            note = ""
            if name in ONLY_PRODUCTS:
                note = ONLY_PRODUCTS[name]
            else:
                for s, v in rt.items():
                    if v is not None:
                        group = (layer_ratios if name in LAYERS else
                                 second_ratios if name in SECOND_ORDER else ratios)
                        group[s].append(v)
            if name in BYTES:
                bound = BYTES[name] / (gbs * 1e9)
                note = f"{lg / bound:.2f}x the bandwidth bound"
            cols = " ".join(f"{fmt(at[s]) if at[s] is not None else '-':>11}" for s in anchors)
            rcols = " ".join(f"{rt[s]:7.2f}" if rt[s] is not None else f"{'-':>7}"
                             for s in anchors)
            print(f"{name:36} {threads:>3} {fmt(lg):>11} {cols} {rcols}  {note}")
    print()
    print("2 threads over 1 (lossgrad), large losses:")
    for name in names:
        if kind(name) == "large" and ("lossgrad", 2, name) in med:
            print(f"  {name:36} {med[('lossgrad', 1, name)] / med[('lossgrad', 2, name)]:5.2f}x")
    for step_name, only, what in (("train/mlp_784_256_10_b128", "train/mlp_matmuls_only", "MLP"),
                                  ("train/gru_28_128_T28_b64_ctc", "train/gru_matmuls_only",
                                   "GRU + CTC")):
        for t in (1, 2):
            step, mm = med.get(("lossgrad", t, step_name)), med.get(("lossgrad", t, only))
            others = [(heads[s][0], med.get((s, t, step_name))) for s in anchors]
            others = [(s, v) for s, v in others if v]
            if step and mm and others:
                rel = ", ".join(f"{s}'s {v / mm:.2f}" for s, v in others)
                print(f"{what} step / its matrix products alone, {t} thread(s): {step / mm:.2f}"
                      f" (the anchors' steps / lossgrad's products: {rel})")
    for t in (1, 2):
        per_side = {}
        for side in ["lossgrad"] + anchors:
            g = med.get((side, t, "grad/mlp_784_256_10_b128"))
            h = med.get((side, t, "hvp/mlp_784_256_10_b128"))
            if g and h:
                per_side[side] = h / g
        if "lossgrad" in per_side:
            cols = " ".join(f"{side}={r:.2f}" for side, r in per_side.items())
            print(f"RESULT hvp_over_grad threads={t} {cols} (goal: lossgrad <= 4)")
    print()
    print("peak memory of the training steps and the convolutions (RSS growth over 5 "
          "iterations after setup; lossgrad's arena high-water mark, column buffers included):")
    for name in names:
        if (kind(name) != "train" and name not in MEMORY_TOO) or name in ONLY_PRODUCTS:
            continue
        line = f"  {name:36}"
        for side, cmd, passive in sides:
            _, m = run(cmd + ["--memory", name], env_for(passive, 1))
            rss, arena = m[name]
            line += f" {side} {rss / 2**20:7.2f} MiB"
            if side == "lossgrad":
                line += f" (arena {arena / 2**20:.2f} MiB) "
        print(line)
    for label, rr in (("layers ", layer_ratios), ("second_order ", second_ratios), ("", ratios)):
        for s in anchors:
            rs = rr[s]
            if not rs:
                continue
            geo = math.exp(sum(math.log(r) for r in rs) / len(rs))
            print(f"RESULT {label}anchor={s} min_speedup={min(rs):.2f} "
                  f"geomean_speedup={geo:.2f} cases={len(rs)}")
    if not a.filter:
        busy_machine(c_exe, env_for, a.rounds)
        kann_config(os.path.join(a.build, "bench", "bench_kann_config"), env_for)


def busy_machine(c_exe, env_for, rounds):
    """The training steps beside a process spinning on one core (bench_losses
    --busy starts and ends it): 2 threads against 1, alternating, medians."""
    times = {}
    for r in range(max(rounds, 3)):
        for threads in ((1, 2) if r % 2 == 0 else (2, 1)):
            _, cases = run([c_exe, "--busy", "--no-copy", "--threads", str(threads),
                            "--filter", "train/"], env_for(False, threads))
            for name, t in cases.items():
                times.setdefault((threads, name), []).append(t)
        print(f"busy machine: round {r + 1} done", file=sys.stderr)
    print()
    print("a busy machine (one core spinning): the training steps at 2 threads over 1")
    worst = 0.0
    for (threads, name) in sorted(times):
        if threads != 1 or name in ONLY_PRODUCTS:
            continue
        t1, t2 = statistics.median(times[(1, name)]), statistics.median(times[(2, name)])
        worst = max(worst, t2 / t1)
        print(f"  {name:36} 1 thread {fmt(t1):>11}  2 threads {fmt(t2):>11}  {t2 / t1:5.2f}")
    print(f"RESULT busy max_slowdown_2_over_1={worst:.2f} (goal <= 1.10)")


def kann_config(exe, env_for):
    """KANN's configuration (bench/kann_config.c), 1 thread: its RESULT lines."""
    if not os.access(exe, os.X_OK):
        print("kann_config: not built (needs the examples)")
        return
    out = subprocess.run([exe, "--threads", "1"], env=env_for(False, 1), check=True,
                         capture_output=True, text=True).stdout
    print()
    print("KANN's configuration (784-256-10 MLP, batch 128, one epoch, 1 thread; KANN measured "
          "1.01 s with RMSprop, 0.89 s with SGD, issue 15):")
    for line in out.splitlines():
        if line.startswith("RESULT"):
            print(line)


def fmt(s):
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    return f"{s * 1e3:.2f} ms"


if __name__ == "__main__":
    main()
