#!/usr/bin/python3
"""PyTorch DDP's side of the data-parallel benchmark (issue 19, bench/dist.sh).

The step of bench_dist.c (bench_torch.py's train/mlp_784_256_10_b128): the
MLP 784-256-10 (ReLU), cross_entropy, SGD lr 0.01, float32, per-rank batch
128 of synthetic data (each rank its own), torch.set_num_threads(1):

    opt.zero_grad(set_to_none=True), forward, backward (DDP's buckets
    allreduce during it, over Gloo), opt.step()

    /usr/bin/python3 bench/bench_ddp.py --no-ddp          the plain model, one process
    mpirun -np N /usr/bin/python3 bench/bench_ddp.py [--port P]

Under mpirun the rank and size come from OMPI_COMM_WORLD_RANK and
OMPI_COMM_WORLD_SIZE, and the process group is Gloo's over
tcp://127.0.0.1:P (P = --port, 29500 by default). The timing rule is
bench_dist.c's: --warmup steps (20), then --rounds rounds (5) of --steps
steps (50), each begun with a barrier, timed on rank 0; the median over the
rounds. The phases are timed too: zero_grad + forward, backward (in which
DDP's allreduce runs and is waited for), the optimizer step. After the
rounds, one dist.all_reduce of the gradients' size alone (median of 20).
Rank 0 prints "KERNEL <openblas core>" and

    RESULT bench=dist side=pytorch_ddp ranks=N step_ms=... allreduce_wait_ms=na
      buckets_per_step=... buckets_in_backward_per_step=na fwd_ms=... bwd_ms=...
      optim_ms=... allreduce_alone_ms=... ddp_comm_ms=... ddp_overlap_ms=... steps=...

(ranks=0 for --no-ddp; DDP does not report a wait: it waits inside
backward, bwd_ms. ddp_comm_ms and ddp_overlap_ms are DDP's own sampled
averages, from _get_ddp_logging_data: the backward's allreduce time, from
the first bucket's start to the last one's end, and the part of it that
overlapped backward's computation.)
Run it with OMP_WAIT_POLICY=PASSIVE and OPENBLAS_NUM_THREADS=1 (dist.sh does).
"""

import argparse
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F

from bench_torch import corename  # the OpenBLAS kernel, as bench_torch reports it

BATCH, IN, HID, OUT = 128, 784, 256, 10


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-ddp", action="store_true")
    ap.add_argument("--port", type=int, default=29500)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    rank, size = 0, 1
    if not a.no_ddp:
        rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
        size = int(os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{a.port}",
                                rank=rank, world_size=size)
    torch.manual_seed(1 + rank)  # each rank its data; DDP broadcasts rank 0's model
    net = torch.nn.Sequential(torch.nn.Linear(IN, HID), torch.nn.ReLU(),
                              torch.nn.Linear(HID, OUT))
    model = net if a.no_ddp else torch.nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(BATCH, IN)
    y = torch.randint(0, OUT, (BATCH,))
    t = [0.0, 0.0, 0.0]

    def step():
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        t[0] += t1 - t0
        t[1] += t2 - t1
        t[2] += t3 - t2

    for _ in range(a.warmup):
        step()
    per, fwd, bwd, op = [], [], [], []
    for _ in range(a.rounds):
        if not a.no_ddp:
            dist.barrier()
        t[:] = [0.0, 0.0, 0.0]
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step()
        per.append((time.perf_counter() - t0) / a.steps)
        fwd.append(t[0] / a.steps)
        bwd.append(t[1] / a.steps)
        op.append(t[2] / a.steps)
    alone = 0.0
    buckets, comm, overlap = 0, 0.0, 0.0
    if not a.no_ddp:
        nparam = sum(p.numel() for p in net.parameters())
        buf = torch.zeros(nparam)
        ts = []
        for k in range(23):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(buf)
            if k >= 3:
                ts.append(time.perf_counter() - t0)
        alone = statistics.median(ts)
        # DDP's own figures (a private interface, best effort): its buckets
        # (rebuilt after the first step; 25 MiB, the first 1 MiB), and its
        # sampled averages (every 100th step) of the backward's allreduce
        # time and of how much of it overlapped backward's computation
        try:
            log = model._get_ddp_logging_data()
            buckets = len(str(log.get("rebuilt_bucket_sizes", "")).replace(",", " ").split())
            comm = log.get("avg_backward_comm_time", 0) / 1e6
            overlap = log.get("avg_backward_compute_comm_overlap_time", 0) / 1e6
        except Exception:  # noqa: BLE001
            buckets, comm, overlap = 0, float("nan"), float("nan")
    if rank == 0:
        med = statistics.median
        print("KERNEL", corename())
        print(f"RESULT bench=dist side=pytorch_ddp ranks={0 if a.no_ddp else size} "
              f"step_ms={1e3 * med(per):.4f} allreduce_wait_ms=na "
              f"buckets_per_step={buckets if buckets else 'na'} buckets_in_backward_per_step=na "
              f"fwd_ms={1e3 * med(fwd):.4f} bwd_ms={1e3 * med(bwd):.4f} "
              f"optim_ms={1e3 * med(op):.4f} allreduce_alone_ms={1e3 * alone:.4f} "
              f"ddp_comm_ms={comm:.4f} ddp_overlap_ms={overlap:.4f} "
              f"steps={a.steps * a.rounds}")
        sys.stdout.flush()
    if not a.no_ddp:
        dist.barrier()
    # out without tearing down: torch 1.13's ProcessGroupGloo destructor, run
    # from DDP's at interpreter exit, joins a worker thread that waits for
    # the GIL the joining thread holds (seen here: a hang in 1 of ~15 runs)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
