#!/usr/bin/python3
"""A/B timing of two bench_losses binaries (before and after a change).

    /usr/bin/python3 bench/ab.py --old OLD/bench/bench_losses --new build/bench/bench_losses
        [--rounds 7] [--threads 1,2] [--filter S] [--recheck 6] [--markdown FILE]

For each round, each thread count and each case both binaries time the
case, one process each (--filter =NAME) and back to back: the old one first
on even rounds, the new one first on odd rounds. Pairing the two runs of a
case closely in time lets the load of a shared machine cancel in their
ratio. Around each pair the CPU time other processes took is read from
/proc/stat; when they kept more than --busy cores (0.5) busy, the pair is
run again, up to --retries (1) times, and the quietest attempt is kept
(unless the last 4 pairs were all busy: no retries under a steady load).
Both binaries get the environment bench/compare.py gives lossgrad:
OPENBLAS_NUM_THREADS and OMP_NUM_THREADS = the thread count, and
OPENBLAS_CORETYPE = the kernel the new binary's OpenBLAS picks (unless
already set); the STREAM copy is skipped (--no-copy) where a binary accepts
it. A case takes about 0.3 s a run, so a round over threads 1,2 is about a
minute on a quiet 2-core machine and the default run (7 rounds, recheck 6)
8 to 12 minutes; on a loaded one the runs take two to three times longer.

Per case and thread count:

    old, new  the median over the rounds of each side's seconds per iteration
    new/old   new / old (the ratio of the medians)
    noise     1.57 * IQR(r) / sqrt(n), r the n per-round ratios new_i / old_i
              (the two runs of a pair are adjacent in time, so slow drifts of
              the machine's load cancel in r); it is the half-width of the
              box-plot notch, a ~95 % interval for a median, and it narrows
              as rounds are added
    busy      (plain table) cores other processes kept busy, median over rounds
    verdict   slower  new/old > 1.10 and new/old - noise > 1.10: more than
                      10 % slower beyond noise
              loaded  as slower, but in most rounds other processes kept more
                      than --busy cores busy: no verdict (on 2 cores a
                      2-thread case then waits for time slices, 4 ms each)
              noisy   new/old > 1.10 but within noise of 1.10
              faster  new/old < 1/1.10 and new/old + noise < 1/1.10
              ok      otherwise

With --recheck N (default 6), the cases whose new/old is above 1.10 after
the rounds run N more alternated rounds each, alone (--filter =NAME), and
are judged again on all their rounds. Cases only one binary has are listed
apart, not compared. The table goes to stdout (and, with --markdown, as a
markdown table with a header naming the machine, date, rounds and command
to FILE); the last line is

    AB worst=<ratio> <case>@<threads>t slower_cases=<n> cases=<n> loaded=<n>

with cases counting the compared (case, thread count) rows and loaded the
rows that would be slower but ran on a busy machine (rerun those). Running the same
binary on both sides (--old X --new X) measures the noise floor.
"""

import argparse
import datetime
import math
import os
import shlex
import statistics
import subprocess
import sys
import time

LIMIT = 1.10  # acceptance: no case more than 10 % slower beyond noise
NOTCH = 1.57  # McGill et al.'s notch: median +- 1.57 IQR / sqrt(n)


def run(cmd, env):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"ab.py: {shlex.join(cmd)} exited {p.returncode}:\n{p.stderr}")
    info, cases = {}, {}
    for line in p.stdout.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "CASE":
            cases[f[1]] = float(f[2])
        elif len(f) > 1:
            info[f[0]] = f[1]
    return info, cases


def listing(exe):
    p = subprocess.run([exe, "--list"], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"ab.py: {exe} --list exited {p.returncode}")
    return [line.strip() for line in p.stdout.splitlines() if line.strip()]


def accepts_no_copy(exe):
    p = subprocess.run([exe, "--no-copy", "--filter", "no case has this name"],
                       capture_output=True, text=True)
    return p.returncode == 0


def busy_seconds():
    """CPU-seconds all processes have spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    t = os.times()
    return t.children_user + t.children_system


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))}), {model}"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def judge(old, new, busy, quiet):
    """old, new: per-round seconds (paired by index); busy: the median cores
    other processes kept busy; quiet: the most that still allows a verdict."""
    mo, mn = statistics.median(old), statistics.median(new)
    ratio = mn / mo
    r = [n / o for o, n in zip(old, new)]
    if len(r) >= 2:
        q1, _, q3 = statistics.quantiles(r, n=4, method="inclusive")
        noise = NOTCH * (q3 - q1) / math.sqrt(len(r))
    else:
        noise = math.inf
    if ratio > LIMIT:
        verdict = "noisy" if ratio - noise <= LIMIT else "loaded" if busy > quiet else "slower"
    elif ratio < 1 / LIMIT and ratio + noise < 1 / LIMIT:
        verdict = "faster"
    else:
        verdict = "ok"
    return dict(old=mo, new=mn, ratio=ratio, noise=noise, verdict=verdict, n=len(r), busy=busy)


def fmt(s):
    if s < 1e-3:
        return f"{s * 1e6:.2f} us"
    return f"{s * 1e3:.3f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", required=True, help="the old bench_losses binary")
    ap.add_argument("--new", required=True, help="the new bench_losses binary")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--filter", help="bench_losses --filter (a substring, or =NAME; "
                    "alternatives split by '|')")
    ap.add_argument("--recheck", type=int, default=6, metavar="N",
                    help="more rounds for the cases above 1.10 (0: none)")
    ap.add_argument("--busy", type=float, default=0.5, metavar="CORES",
                    help="retry a pair when other processes kept more cores busy (default 0.5)")
    ap.add_argument("--retries", type=int, default=1,
                    help="at most this many retries of a busy pair (default 1)")
    ap.add_argument("--markdown", metavar="FILE", help="also write a markdown table to FILE")
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",") if t.strip()]
    exes = {"old": a.old, "new": a.new}
    for side, exe in exes.items():
        if not os.access(exe, os.X_OK):
            sys.exit(f"ab.py: --{side} {exe} is not an executable")
    start = time.monotonic()
    load0 = loadavg()
    command = "bench/ab.py " + shlex.join(sys.argv[1:])

    base = dict(os.environ)
    kernels = {s: run([e, "--filter", "no case has this name"], base)[0].get("KERNEL")
               for s, e in exes.items()}
    base.setdefault("OPENBLAS_CORETYPE", kernels["new"] or kernels["old"] or "")
    extra = {s: (["--no-copy"] if accepts_no_copy(e) else []) for s, e in exes.items()}
    lists = {s: listing(e) for s, e in exes.items()}

    times = {}  # (side, threads, case) -> [seconds per round]
    loads = {}  # (threads, case) -> [cores other processes kept busy, per round]
    recent = []  # the foreign load of the last pairs
    f = a.filter or ""
    # a substring or =NAME, or '|'-separated alternatives of those (bench_losses.c)
    keep = (lambda n: any(n == g[1:] if g.startswith("=") else g in n for g in f.split("|")))

    def pair(r, t, name, env):
        """One round of one case: both binaries back to back, retried (up to
        --retries times) while other processes kept more than --busy cores
        busy; the quietest attempt is kept."""
        order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
        best = None
        # under a steady load retrying only costs time: retry only when one of
        # the last 4 pairs was quiet
        tries = 1 + (a.retries if not recent or min(recent) <= a.busy else 0)
        for _ in range(tries):
            b0, c0, w0 = busy_seconds(), children_cpu(), time.monotonic()
            got = {side: run([exes[side], "--threads", str(t)] + extra[side]
                             + ["--filter", "=" + name], env)[1].get(name) for side in order}
            wall = time.monotonic() - w0
            foreign = max(0.0, (busy_seconds() - b0) - (children_cpu() - c0)) / wall
            if best is None or foreign < best[0]:
                best = (foreign, got)
            if foreign <= a.busy:
                break
        foreign, got = best
        recent[:] = (recent + [foreign])[-4:]
        if got["old"] is None or got["new"] is None:
            sys.exit(f"ab.py: {name}: a binary printed no CASE line")
        for side in order:
            times.setdefault((side, t, name), []).append(got[side])
        loads.setdefault((t, name), []).append(foreign)

    def one_round(r, names, what):
        for t in threads:
            env = dict(base, OPENBLAS_NUM_THREADS=str(t), OMP_NUM_THREADS=str(t))
            for name in names:
                pair(r, t, name, env)
            print(f"{what}, {t} thread(s): done ({time.monotonic() - start:.0f} s)",
                  file=sys.stderr)

    compared = [n for n in lists["new"] if n in lists["old"] and keep(n)]
    for r in range(a.rounds):
        one_round(r, compared, f"round {r + 1}/{a.rounds}")

    def rows():
        out = []
        for name in compared:
            for t in threads:
                if ("old", t, name) in times:
                    j = judge(times[("old", t, name)], times[("new", t, name)],
                              statistics.median(loads[(t, name)]), a.busy)
                    out.append((name, t, j))
        return out

    table = rows()
    flagged = sorted({name for name, t, j in table if j["ratio"] > LIMIT})
    rechecked = []
    if a.recheck > 0 and flagged:
        print(f"recheck: {len(flagged)} case(s) above {LIMIT:.2f}: {' '.join(flagged)}",
              file=sys.stderr)
        for r in range(a.rounds, a.rounds + a.recheck):
            one_round(r, flagged, f"recheck {r - a.rounds + 1}/{a.recheck}")
        rechecked = flagged
        table = rows()

    only = {s: [n for n in lists[s] if n not in lists[o]] for s, o in (("old", "new"),
                                                                         ("new", "old"))}
    only = {s: [n for n in v if keep(n)] for s, v in only.items()}
    elapsed = time.monotonic() - start
    busy_all = statistics.median(x for v in loads.values() for x in v) if loads else 0.0
    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    head = (f"{machine()}; {when}; {a.rounds} rounds"
            + (f" (+{a.recheck} for the {len(rechecked)} rechecked case(s))" if rechecked else "")
            + f", threads {a.threads}; OPENBLAS_CORETYPE={base['OPENBLAS_CORETYPE']}"
            + f" (kernels: old {kernels['old']}, new {kernels['new']}); load average"
            + f" {load0} at the start, {loadavg()} at the end; other processes kept"
            + f" {busy_all:.2f} cores busy (median over the pairs); {elapsed / 60:.1f} min")

    slower = [(name, t, j) for name, t, j in table if j["verdict"] == "slower"]
    worst = max(table, key=lambda x: x[2]["ratio"]) if table else None

    print(head)
    print(f"command: {command}")
    print(f"{'case':36} {'thr':>3} {'old':>11} {'new':>11} {'new/old':>7} {'noise':>7}"
          f" {'rounds':>6} {'busy':>5}  verdict")
    for name, t, j in table:
        print(f"{name:36} {t:>3} {fmt(j['old']):>11} {fmt(j['new']):>11} {j['ratio']:7.3f}"
              f" {'+-' + format(j['noise'], '.3f'):>7} {j['n']:>6} {j['busy']:5.2f}  {j['verdict']}")
    for side in ("old", "new"):
        if only[side]:
            print(f"only in {side} (not compared): {' '.join(only[side])}")

    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(f"A/B of bench_losses: {head}. Command: `{command}`. old and new are the"
                    " medians over the rounds of seconds per iteration; noise is"
                    " 1.57 IQR / sqrt(n) of the per-round ratios; slower means"
                    f" new/old > {LIMIT:.2f} beyond noise on a quiet machine; loaded: the same"
                    f" on a machine other processes kept > {a.busy} cores busy.\n\n")
            f.write("| case | threads | old | new | new/old | noise | verdict |\n")
            f.write("|---|---:|---:|---:|---:|---:|---|\n")
            for name, t, j in table:
                f.write(f"| {name} | {t} | {fmt(j['old'])} | {fmt(j['new'])} |"
                        f" {j['ratio']:.3f} | ±{j['noise']:.3f} | {j['verdict']} |\n")
            for side in ("old", "new"):
                if only[side]:
                    f.write(f"\nOnly in {side} (not compared): "
                            + ", ".join(f"`{n}`" for n in only[side]) + "\n")
        print(f"markdown table written to {a.markdown}", file=sys.stderr)

    if worst:
        name, t, j = worst
        print(f"AB worst={j['ratio']:.3f} {name}@{t}t slower_cases={len(slower)}"
              f" cases={len(table)} loaded={sum(j['verdict'] == 'loaded' for _, _, j in table)}")
    else:
        print("AB worst=nan none slower_cases=0 cases=0 loaded=0")


if __name__ == "__main__":
    main()
