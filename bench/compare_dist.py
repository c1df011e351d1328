#!/usr/bin/python3
"""Runs the data-parallel benchmark, lossgrad beside PyTorch DDP over Gloo, and prints the ratios.

    /usr/bin/python3 bench/compare_dist.py [--build build] [--rounds 5] [--steps 50]
        [--inner-rounds 5] [--warmup 20] [--timeout 120]

(bench/dist.sh builds bench_dist first and runs this.) Seven configurations,
each a fresh launch: lossgrad without lg_dist (bench_dist --no-dist),
lossgrad at 1 and 2 ranks (mpirun -np N bench_dist), two plain lossgrad
processes at once (mpirun -np 2 bench_dist --no-dist: the slower one's
figures; no MPI between them), PyTorch without DDP
(bench_ddp.py --no-ddp), DDP at 1 and 2 ranks (mpirun -np N bench_ddp.py).
Every round runs all seven, the order rotating by one each round so that
each goes first equally often. Each launch prints the median over its own
--inner-rounds rounds of --steps steps (after --warmup steps); a
configuration's figure is the median over the rounds of those.

Every launch gets OPENBLAS_NUM_THREADS=1, OMP_NUM_THREADS=1 and
OPENBLAS_CORETYPE (the kernel lossgrad's OpenBLAS picks, unless already set:
as bench/compare.py), PyTorch's also OMP_WAIT_POLICY=PASSIVE; mpirun gets
--allow-run-as-root --oversubscribe --bind-to none (the machine's other work
may take either core; each rank runs one thread) and
OMPI_MCA_btl_vader_single_copy_mechanism=none (unless set).

Prints the table, then the ratios: weak-scaling efficiency (the 1-rank
step over the 2-rank step, same per-rank batch) on each side, against the
1-rank run and against the no-dist run; DDP's 2-rank step over lossgrad's
(goal >= 3); lossgrad's allreduce wait per step, the fraction of its
buckets started during backward, and the overlap estimated from the wait
against the allreduce alone; DDP's own overlap figures. Last:

    RESULT bench=dist_summary weak_scaling_lossgrad=... weak_scaling_ddp=...
      ddp2_over_lossgrad2=... lossgrad2_wait_ms=... buckets_in_backward_fraction=...
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]


def parse(out):
    """The RESULT line's fields (of the slower process if several print
    one), and KERNEL."""
    res, kernel = None, None
    for line in out.splitlines():
        if line.startswith("KERNEL "):
            kernel = line.split(None, 1)[1]
        if line.startswith("RESULT bench=dist "):
            r = dict(kv.split("=", 1) for kv in line.split()[1:])
            if res is None or num(r.get("step_ms")) > num(res.get("step_ms")):
                res = r
    return res, kernel


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def launch(cmd, env, timeout):
    """(returncode, stdout, stderr); returncode None if it ran past timeout
    seconds (its process group killed)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return None, out, err


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "uptime: not available"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--inner-rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--timeout", type=int, default=120,
                    help="seconds a launch may take; past it, it is killed and launched again once")
    a = ap.parse_args()
    exe = os.path.join(a.build, "bench", "bench_dist")
    if not os.access(exe, os.X_OK):
        sys.exit(f"compare_dist.py: {exe} not found: configure with -DLG_BUILD_BENCH=ON and "
                 "LG_MPI on (Open MPI installed), and build the target bench_dist")
    py = [sys.executable, os.path.join(HERE, "bench_ddp.py")]
    timing = ["--warmup", str(a.warmup), "--steps", str(a.steps),
              "--rounds", str(a.inner_rounds)]
    base = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    base.setdefault("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
    probe = subprocess.run([exe, "--no-dist", "--warmup", "0", "--steps", "1", "--rounds", "1"],
                           capture_output=True, text=True, env=base, check=True)
    base.setdefault("OPENBLAS_CORETYPE", parse(probe.stdout)[1] or "")
    torch_env = dict(base, OMP_WAIT_POLICY="PASSIVE")
    # configuration: (side, ranks (0: no dist), command, env)
    configs = [
        ("lossgrad", 0, [exe, "--no-dist"], base),
        ("lossgrad", 1, MPIRUN + ["-np", "1", exe], base),
        ("lossgrad", 2, MPIRUN + ["-np", "2", exe], base),
        # two plain processes at once, no MPI between them: what sharing
        # the machine costs the computation alone
        ("lossgrad", -2, MPIRUN + ["-np", "2", exe, "--no-dist"], base),
        ("pytorch_ddp", 0, py + ["--no-ddp"], torch_env),
        ("pytorch_ddp", 1, MPIRUN + ["-np", "1"] + py, torch_env),
        ("pytorch_ddp", 2, MPIRUN + ["-np", "2"] + py, torch_env),
    ]
    print(f"load before: {uptime()}")
    results = {}  # (side, ranks) -> [RESULT dict per round]
    kernels = {}
    port = 29600 + os.getpid() % 1000 * 10
    for r in range(a.rounds):
        k = r % len(configs)
        for side, ranks, cmd, env in configs[k:] + configs[:k]:
            extra = []
            if side == "pytorch_ddp" and ranks:
                port += 1
                extra = ["--port", str(port)]
            rc, out, err = launch(cmd + timing + extra, env, a.timeout)
            if rc is None:  # a hang: said so, then once more
                print(f"round {r + 1}: {side} ranks={ranks} timed out after {a.timeout} s "
                      "(killed); launched again", flush=True)
                if extra:
                    port += 1
                    extra = ["--port", str(port)]
                rc, out, err = launch(cmd + timing + extra, env, a.timeout)
            res, kern = parse(out)
            if rc != 0 or res is None:
                sys.exit(f"compare_dist.py: {' '.join(cmd)} failed ({rc}):\n{out}\n{err}")
            kernels[side] = kern
            results.setdefault((side, ranks), []).append(res)
            print(f"round {r + 1}/{a.rounds}: {side} ranks={ranks} step_ms={res['step_ms']}",
                  file=sys.stderr)
    print(f"load after:  {uptime()}")

    def med(side, ranks, field):
        return statistics.median(num(x.get(field)) for x in results[(side, ranks)])

    def spread(side, ranks):
        v = [num(x["step_ms"]) for x in results[(side, ranks)]]
        return min(v), max(v)

    kern = ", ".join(f"{s} {k}" for s, k in kernels.items())
    print(f"OpenBLAS kernel: {kern} (OPENBLAS_CORETYPE={base['OPENBLAS_CORETYPE']}); "
          f"{a.rounds} rounds of launches, each the median of {a.inner_rounds} x {a.steps} "
          f"steps after {a.warmup}; per-rank batch 128, MLP 784-256-10, 1 thread per rank; "
          "medians, ms per step")
    print(f"{'side':12} {'ranks':>7} {'step':>8} {'min..max':>15} {'fwd+bwd':>8} "
          f"{'allred':>8} {'wait':>8} {'optim':>8} {'alone':>8} {'buckets':>8} {'in bwd':>7}")
    for side, ranks, _, _ in configs:
        lo, hi = spread(side, ranks)
        if side == "lossgrad":
            fb, call, wait = (med(side, ranks, f)
                              for f in ("fwd_bwd_ms", "allreduce_call_ms", "allreduce_wait_ms"))
            bk, ib = med(side, ranks, "buckets_per_step"), med(side, ranks,
                                                              "buckets_in_backward_per_step")
        else:  # DDP's allreduce runs and is waited for inside backward
            fb = med(side, ranks, "fwd_ms") + med(side, ranks, "bwd_ms")
            call = wait = ib = float("nan")
            bk = med(side, ranks, "buckets_per_step")
        label = "no dist" if ranks == 0 else "2 alone" if ranks < 0 else str(ranks)
        print(f"{side:12} {label:>7} {med(side, ranks, 'step_ms'):8.3f} "
              f"{f'{lo:.3f}..{hi:.3f}':>15} {fb:8.3f} {call:8.3f} {wait:8.3f} "
              f"{med(side, ranks, 'optim_ms'):8.3f} {med(side, ranks, 'allreduce_alone_ms'):8.3f} "
              f"{bk:8.3g} {ib:7.3g}")
    print("(fwd+bwd: zero_grad + forward + backward, DDP's allreduce inside it; allred: the "
          "lg_dist_allreduce_grads call; wait: its MPI_Waitall (lg_dist_get_stats); alone: "
          "one blocking allreduce of the 203530 gradient floats by itself, MPI or Gloo)")

    step = {(s, n): med(s, n, "step_ms") for s, n, _, _ in configs}
    print()
    for side in ("lossgrad", "pytorch_ddp"):
        print(f"weak-scaling efficiency {side:12}: 1-rank / 2-rank = "
              f"{step[(side, 1)]:.3f} / {step[(side, 2)]:.3f} = "
              f"{step[(side, 1)] / step[(side, 2)]:.3f}   (no-dist / 2-rank = "
              f"{step[(side, 0)] / step[(side, 2)]:.3f})   goal >= 0.9")
    ratio = step[("pytorch_ddp", 2)] / step[("lossgrad", 2)]
    print(f"DDP 2-rank step / lossgrad 2-rank step = {step[('pytorch_ddp', 2)]:.3f} / "
          f"{step[('lossgrad', 2)]:.3f} = {ratio:.2f}   goal >= 3")
    print(f"no-dist: PyTorch / lossgrad = {step[('pytorch_ddp', 0)] / step[('lossgrad', 0)]:.2f}; "
          f"the 1-rank lg_dist overhead: {step[('lossgrad', 1)] - step[('lossgrad', 0)]:.3f} ms, "
          f"DDP's: {step[('pytorch_ddp', 1)] - step[('pytorch_ddp', 0)]:.3f} ms")
    alone2 = med("lossgrad", 2, "allreduce_alone_ms")
    bound = step[("lossgrad", 1)] / (step[("lossgrad", -2)] + alone2)
    print(f"two plain lossgrad processes at once / one: {step[('lossgrad', -2)]:.3f} / "
          f"{step[('lossgrad', 0)]:.3f} = {step[('lossgrad', -2)] / step[('lossgrad', 0)]:.3f} "
          "(the computation's slowdown from sharing the machine)")
    print(f"lossgrad's weak-scaling bound without overlap: 1-rank / (2 at once + allreduce "
          f"alone) = {step[('lossgrad', 1)]:.3f} / ({step[('lossgrad', -2)]:.3f} + {alone2:.3f})"
          f" = {bound:.3f}")
    wait2 = med("lossgrad", 2, "allreduce_wait_ms")
    call2 = med("lossgrad", 2, "allreduce_call_ms")
    frac = (med("lossgrad", 2, "buckets_in_backward_per_step")
            / med("lossgrad", 2, "buckets_per_step"))
    overlap = max(0.0, 1 - wait2 / alone2) if alone2 > 0 else float("nan")
    print(f"lossgrad 2 ranks: allreduce wait {wait2:.3f} ms/step (the whole call {call2:.3f}); "
          f"buckets {med('lossgrad', 2, 'buckets_per_step'):.3g}/step, fraction started in "
          f"backward {frac:.2f}; the allreduce alone {alone2:.3f} ms, so the part hidden "
          f"behind backward ~ 1 - wait/alone = {overlap:.2f}")
    comm, ov = med("pytorch_ddp", 2, "ddp_comm_ms"), med("pytorch_ddp", 2, "ddp_overlap_ms")
    print(f"DDP 2 ranks (its own sampled averages): backward allreduce {comm:.3f} ms/step, "
          f"overlapped with backward's computation {ov:.3f} ms "
          f"({ov / comm if comm > 0 else float('nan'):.2f}); Gloo allreduce alone "
          f"{med('pytorch_ddp', 2, 'allreduce_alone_ms'):.3f} ms")
    print(f"RESULT bench=dist_summary weak_scaling_lossgrad={step[('lossgrad', 1)] / step[('lossgrad', 2)]:.3f} "
          f"weak_scaling_ddp={step[('pytorch_ddp', 1)] / step[('pytorch_ddp', 2)]:.3f} "
          f"ddp2_over_lossgrad2={ratio:.2f} lossgrad2_wait_ms={wait2:.3f} "
          f"buckets_in_backward_fraction={frac:.2f} weak_scaling_bound_lossgrad={bound:.3f}")


if __name__ == "__main__":
    main()
