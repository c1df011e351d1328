#!/usr/bin/python3
"""Runs lossgrad's benchmark and PyTorch's side by side and prints the ratios.

    /usr/bin/python3 bench/compare.py [--build build] [--rounds 3] [--filter S]

For each round and each thread count (1, 2), bench_losses and bench_torch.py
run every case, alternating which goes first. A case's time on each side is
the median over the rounds of the per-round medians; the ratio is PyTorch's
time over lossgrad's. Both sides get OPENBLAS_NUM_THREADS and
OPENBLAS_CORETYPE (the kernel lossgrad's OpenBLAS picks, unless already
set), and PyTorch runs with OMP_WAIT_POLICY=PASSIVE. Then the training
steps' peak memory (RSS growth over 5 steps, each in a fresh process), the
large elementwise losses' time against the bandwidth bound (bytes that
must move / STREAM copy rate measured in the same run), the 2-over-1-thread
speed-ups, and a last line:

    RESULT min_speedup=... geomean_speedup=... cases=...
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
    if name.startswith("train/"):
        return "train"
    return "large" if name.split("/")[1] in ("1M", "4096x1000", "4096x128", "T50N64C20S10",
                                              "T200N32C40S40") else "small"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--filter")
    a = ap.parse_args()
    c_exe = os.path.join(a.build, "bench", "bench_losses")
    py = [sys.executable, os.path.join(HERE, "bench_torch.py")]
    if not os.access(c_exe, os.X_OK):
        sys.exit(f"compare.py: {c_exe} not found: configure with -DLG_BUILD_BENCH=ON and build")
    flt = ["--filter", a.filter] if a.filter else []
    base = dict(os.environ)
    info, _ = run([c_exe, "--filter", "no case has this name"], base)
    base.setdefault("OPENBLAS_CORETYPE", info["KERNEL"])
    times = {}  # (side, threads, case) -> [seconds per round]
    copy = []
    kernels = {}
    for r in range(a.rounds):
        for threads in (1, 2):
            env = dict(base, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
            tenv = dict(env, OMP_WAIT_POLICY="PASSIVE")
            order = [("lossgrad", [c_exe, "--threads", str(threads)] + flt, env),
                     ("pytorch", py + ["--threads", str(threads)] + flt, tenv)]
            if (r + threads) % 2:
                order.reverse()
            for side, cmd, e in order:
                info, cases = run(cmd, e)
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
    print(f"OpenBLAS kernel: lossgrad {kernels.get('lossgrad')}, PyTorch {kernels.get('pytorch')}"
          f" (OPENBLAS_CORETYPE={base['OPENBLAS_CORETYPE']}); STREAM copy {gbs:.2f} GB/s; "
          f"{a.rounds} rounds, medians")
    print(f"{'case':36} {'thr':>3} {'lossgrad':>11} {'pytorch':>11} {'ratio':>7}  note")
    ratios = []
    for name in names:
        for threads in (1, 2):
            lg, pt = med.get(("lossgrad", threads, name)), med.get(("pytorch", threads, name))
            if lg is None or pt is None:
                continue
            ratio = pt / lg
            note = ""
            if name in ONLY_PRODUCTS:
                note = ONLY_PRODUCTS[name]
            else:
                ratios.append(ratio)
            if name in BYTES:
                bound = BYTES[name] / (gbs * 1e9)
                note = f"{lg / bound:.2f}x the bandwidth bound"
            print(f"{name:36} {threads:>3} {fmt(lg):>11} {fmt(pt):>11} {ratio:7.2f}  {note}")
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
            pt = med.get(("pytorch", t, step_name))
            if step and mm and pt:
                print(f"{what} step / its matrix products alone, {t} thread(s): {step / mm:.2f}"
                      f" (PyTorch's step / lossgrad's products: {pt / mm:.2f})")
    print()
    print("peak memory of the training steps (RSS growth over 5 steps after setup; "
          "lossgrad's arena high-water mark):")
    for name in names:
        if kind(name) != "train" or name in ONLY_PRODUCTS:
            continue
        _, lm = run([c_exe, "--memory", name], dict(base, OPENBLAS_NUM_THREADS="1"))
        _, pm = run(py + ["--memory", name], dict(base, OPENBLAS_NUM_THREADS="1",
                                                    OMP_WAIT_POLICY="PASSIVE"))
        (lr, la), (pr, _) = lm[name], pm[name]
        print(f"  {name:36} lossgrad {lr / 2**20:7.2f} MiB (arena {la / 2**20:.2f} MiB)  "
              f"pytorch {pr / 2**20:7.2f} MiB")
    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"RESULT min_speedup={min(ratios):.2f} geomean_speedup={geo:.2f} cases={len(ratios)}")


def fmt(s):
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    return f"{s * 1e3:.2f} ms"


if __name__ == "__main__":
    main()
