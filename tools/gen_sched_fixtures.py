#!/usr/bin/python3
"""Generate lossgrad's schedule fixtures with PyTorch 1.13 (tests/fixtures/nn/schedules.txt).

    /usr/bin/python3 tools/gen_sched_fixtures.py [--out FILE]

Needs Debian's python3-torch (for /usr/bin/python3); never needed to build or
test. Every torch.optim.lr_scheduler schedule not in sched.txt (and a few that
are, with two parameter groups or resumed), step by step: the rate of every
parameter group (and the momentum, or Adam's beta1, where a schedule cycles
it) after construction and after each of 32 steps.

Record format, as tools/gen_nn_fixtures.py (one per line): `case <id>`,
`<key> <value>` options, `tensor <name> <f64|i64> <ndim> <dims...> : <values...>`,
`end`. Keys:
  sched <kind>      step exponential cosine linear multistep constant polynomial
                    lambda multiplicative warm cyclic onecycle plateau sequential
                    chained
  groups <n>        parameter groups; tensor lr0 [n] their rates
  optim sgd|adam    (momentum <m> for SGD)
  <field> <value>   an lg_sched_opts field by its name (enums as their number)
  lambda <name>     lr_lambda, one of lambdas below (the C test defines the same)
  scale_fn <name>   CyclicLR's scale_fn, likewise
  c<i>.<key>        the same for child i of sequential / chained
Tensors: lrs [steps + 1, n], moms [steps + 1, n] (cycle_momentum), milestones
(i64), base_lrs, max_lrs, min_lrs, initial_lrs [n], metrics [steps]
(ReduceLROnPlateau), and c<i>.milestones.
"""

import argparse
import math

import torch
from torch.optim import lr_scheduler as S

torch.set_default_dtype(torch.float64)
STEPS = 32

# The callbacks; tests/test_sched.c has the same functions under the same names.
LAMBDAS = {
    "inv": lambda e: 1.0 / (e + 1),
    "pow95": lambda e: 0.95 ** e,
    "const9": lambda e: 0.9,
    "saw": lambda e: 1.1 if e % 4 == 0 else 0.8,
}
# per-group lambdas: group g uses LAMBDAS[GROUP_LAMBDAS[name][g]]
GROUP_LAMBDAS = {"inv_pow95": ["inv", "pow95"], "const9_saw": ["const9", "saw"]}
SCALE_FNS = {"recip": lambda x: 1.0 / (1.0 + 0.1 * x), "half": lambda x: 0.5 ** x}


def fmt(v):
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return "%.17g" % v


def tensor_line(name, vals, is_int=False, shape=None):
    flat = [x for row in vals for x in row] if shape and len(shape) == 2 else list(vals)
    shape = shape or [len(flat)]
    body = " ".join(str(int(v)) if is_int else fmt(float(v)) for v in flat)
    return f"tensor {name} {'i64' if is_int else 'f64'} {len(shape)} {' '.join(map(str, shape))} : {body}\n"


def lam(name, ngroups):
    if name in GROUP_LAMBDAS:
        return [LAMBDAS[n] for n in GROUP_LAMBDAS[name]][:ngroups]
    return LAMBDAS[name]


def make_sched(opt, kind, kw, ngroups):
    """The torch scheduler for kind with lossgrad's option names kw."""
    kw = dict(kw)
    le = kw.pop("last_epoch", -1)
    kw.pop("initial_lr", None)
    if kind == "step":
        return S.StepLR(opt, kw["step_size"], gamma=kw.get("gamma", 0.1), last_epoch=le)
    if kind == "exponential":
        return S.ExponentialLR(opt, kw["gamma"], last_epoch=le)
    if kind == "cosine":
        return S.CosineAnnealingLR(opt, kw["t_max"], eta_min=kw.get("eta_min", 0), last_epoch=le)
    if kind == "linear":
        return S.LinearLR(opt, start_factor=kw.get("start_factor", 1.0 / 3), end_factor=kw.get("end_factor", 1.0),
                          total_iters=kw.get("total_iters", 5), last_epoch=le)
    if kind == "multistep":
        return S.MultiStepLR(opt, kw["milestones"], gamma=kw.get("gamma", 0.1), last_epoch=le)
    if kind == "constant":
        return S.ConstantLR(opt, factor=kw.get("factor", 1.0 / 3), total_iters=kw.get("total_iters", 5),
                            last_epoch=le)
    if kind == "polynomial":
        return S.PolynomialLR(opt, total_iters=kw.get("total_iters", 5), power=kw.get("power", 1.0),
                              last_epoch=le)
    if kind == "lambda":
        return S.LambdaLR(opt, lam(kw["lambda"], ngroups), last_epoch=le)
    if kind == "multiplicative":
        return S.MultiplicativeLR(opt, lam(kw["lambda"], ngroups), last_epoch=le)
    if kind == "warm":
        return S.CosineAnnealingWarmRestarts(opt, kw["t_0"], T_mult=kw.get("t_mult", 1),
                                             eta_min=kw.get("eta_min", 0), last_epoch=le)
    if kind == "cyclic":
        mode = ["triangular", "triangular2", "exp_range"][kw.get("cyclic_mode", 0)]
        fn = SCALE_FNS[kw["scale_fn"]] if "scale_fn" in kw else None
        return S.CyclicLR(opt, kw.get("base_lrs", kw.get("base_lr")), kw.get("max_lrs", kw.get("max_lr")),
                          step_size_up=kw.get("step_size_up", 2000), step_size_down=kw.get("step_size_down"),
                          mode=mode, gamma=kw.get("gamma", 1.0), scale_fn=fn,
                          scale_mode=["cycle", "iterations"][kw.get("scale_mode", 0)],
                          cycle_momentum=bool(kw.get("cycle_momentum", 1)),
                          base_momentum=kw.get("base_momentum", 0.8), max_momentum=kw.get("max_momentum", 0.9),
                          last_epoch=le)
    if kind == "onecycle":
        return S.OneCycleLR(opt, kw.get("max_lrs", kw.get("max_lr")), total_steps=kw.get("total_steps"),
                            epochs=kw.get("epochs"), steps_per_epoch=kw.get("steps_per_epoch"),
                            pct_start=kw.get("pct_start", 0.3), anneal_strategy=["cos", "linear"][kw.get("anneal", 0)],
                            cycle_momentum=bool(kw.get("cycle_momentum", 1)),
                            base_momentum=kw.get("base_momentum", 0.85), max_momentum=kw.get("max_momentum", 0.95),
                            div_factor=kw.get("div_factor", 25.0), final_div_factor=kw.get("final_div_factor", 1e4),
                            three_phase=bool(kw.get("three_phase", 0)), last_epoch=le)
    if kind == "plateau":
        return S.ReduceLROnPlateau(opt, mode=["min", "max"][kw.get("plateau_mode", 0)], factor=kw.get("factor", 0.1),
                                   patience=kw.get("patience", 10), threshold=kw.get("threshold", 1e-4),
                                   threshold_mode=["rel", "abs"][kw.get("threshold_mode", 0)],
                                   cooldown=kw.get("cooldown", 0), min_lr=kw.get("min_lrs", kw.get("min_lr", 0)),
                                   eps=kw.get("eps", 1e-8))
    raise ValueError(kind)


def kw_lines(prefix, kw):
    lines = []
    for k, v in kw.items():
        if isinstance(v, (list, tuple)):
            lines.append(tensor_line(prefix + k, v, is_int=(k == "milestones")))
        elif isinstance(v, str):
            lines.append(f"{prefix}{k} {v}\n")
        elif isinstance(v, float):
            lines.append(f"{prefix}{k} {fmt(v)}\n")
        else:
            lines.append(f"{prefix}{k} {int(v)}\n")
    return lines


def run_case(cid, kind, kw, lr0=(0.3,), optim="sgd", momentum=0.0, children=None, metrics=None,
             milestones=None, moms=False, initial=None):
    ng = len(lr0)
    params = [torch.zeros(1, requires_grad=True) for _ in lr0]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lr0)]
    if optim == "sgd":
        opt = torch.optim.SGD(groups, lr=lr0[0], momentum=momentum)
    else:
        opt = torch.optim.Adam(groups, lr=lr0[0])
    if initial is not None:  # resuming: PyTorch needs initial_lr in the groups
        for g, v in zip(opt.param_groups, initial):
            g["initial_lr"] = v
    if kind == "sequential":
        kids = [make_sched(opt, k, c, ng) for k, c in children]
        s = S.SequentialLR(opt, kids, milestones=milestones)
    elif kind == "chained":
        kids = [make_sched(opt, k, c, ng) for k, c in children]
        s = S.ChainedScheduler(kids)
    else:
        s = make_sched(opt, kind, kw, ng)

    def mom(g):
        return g["betas"][0] if optim == "adam" else g["momentum"]

    lrs = [[g["lr"] for g in opt.param_groups]]
    ms = [[mom(g) for g in opt.param_groups]]
    for i in range(STEPS):
        opt.step()
        if kind == "plateau":
            s.step(metrics[i])
        else:
            s.step()
        lrs.append([g["lr"] for g in opt.param_groups])
        ms.append([mom(g) for g in opt.param_groups])
    out = [f"case {cid}\n", f"sched {kind}\n", f"groups {ng}\n", f"optim {optim}\n"]
    if optim == "sgd":
        out.append(f"momentum {fmt(momentum)}\n")
    out.append(tensor_line("lr0", lr0))
    out += kw_lines("", kw)
    if initial is not None and kind not in ("cyclic", "onecycle"):  # those have their own base rates
        out.append(tensor_line("initial_lrs", initial))
    if milestones is not None:
        out.append(tensor_line("milestones", milestones, is_int=True))
    for i, (k, c) in enumerate(children or []):
        out.append(f"c{i}.sched {k}\n")
        out += kw_lines(f"c{i}.", c)
    if metrics is not None:
        out.append(tensor_line("metrics", metrics))
    out.append(tensor_line("lrs", lrs, shape=[STEPS + 1, ng]))
    if moms:
        out.append(tensor_line("moms", ms, shape=[STEPS + 1, ng]))
    out.append("end\n")
    return out


def cases():
    two = (0.3, 0.1)
    c = []
    c.append(("multistep-0", "multistep", dict(milestones=[3, 7, 20]), {}))
    c.append(("multistep-gamma-2g", "multistep", dict(milestones=[1, 5, 6, 30], gamma=0.5), dict(lr0=two)))
    c.append(("constant-default", "constant", dict(), {}))
    c.append(("constant-2g", "constant", dict(factor=0.6, total_iters=7), dict(lr0=two)))
    c.append(("polynomial-default", "polynomial", dict(), {}))
    c.append(("polynomial-power", "polynomial", dict(total_iters=20, power=2.5), dict(lr0=two)))
    c.append(("lambda-inv", "lambda", dict(**{"lambda": "inv"}), {}))
    c.append(("lambda-groups-2g", "lambda", dict(**{"lambda": "inv_pow95"}), dict(lr0=two)))
    c.append(("multiplicative-const9", "multiplicative", dict(**{"lambda": "const9"}), {}))
    c.append(("multiplicative-groups-2g", "multiplicative", dict(**{"lambda": "const9_saw"}), dict(lr0=two)))
    c.append(("warm-t0-5", "warm", dict(t_0=5), {}))
    c.append(("warm-tmult-2", "warm", dict(t_0=3, t_mult=2, eta_min=0.01), {}))
    c.append(("warm-2g", "warm", dict(t_0=4, t_mult=3, eta_min=0.001), dict(lr0=two)))
    c.append(("cyclic-triangular", "cyclic", dict(base_lr=0.01, max_lr=0.1, step_size_up=4),
              dict(momentum=0.9, moms=True)))
    c.append(("cyclic-triangular2-down", "cyclic", dict(base_lr=0.001, max_lr=0.05, step_size_up=3,
                                                        step_size_down=5, cyclic_mode=1, cycle_momentum=0), {}))
    c.append(("cyclic-exp-range", "cyclic", dict(base_lr=0.002, max_lr=0.2, step_size_up=5, cyclic_mode=2,
                                                 gamma=0.97, base_momentum=0.7, max_momentum=0.95),
              dict(momentum=0.5, moms=True)))
    c.append(("cyclic-scale-fn-cycle", "cyclic", dict(base_lr=0.01, max_lr=0.3, step_size_up=3, scale_fn="recip",
                                                      cycle_momentum=0), {}))
    c.append(("cyclic-scale-fn-iter", "cyclic", dict(base_lr=0.01, max_lr=0.3, step_size_up=4, scale_fn="half",
                                                     scale_mode=1, cycle_momentum=0), {}))
    c.append(("cyclic-lists-2g", "cyclic", dict(base_lrs=[0.01, 0.002], max_lrs=[0.1, 0.05], step_size_up=4,
                                                step_size_down=2), dict(lr0=two, momentum=0.9, moms=True)))
    c.append(("onecycle-cos-sgd", "onecycle", dict(max_lr=0.5, total_steps=STEPS),
              dict(momentum=0.9, moms=True)))
    c.append(("onecycle-linear-adam", "onecycle", dict(max_lr=0.01, epochs=4, steps_per_epoch=10, anneal=1,
                                                       pct_start=0.25), dict(optim="adam", moms=True)))
    c.append(("onecycle-three-phase", "onecycle", dict(max_lr=0.2, total_steps=40, three_phase=1, div_factor=10.0,
                                                       final_div_factor=100.0, cycle_momentum=0), {}))
    c.append(("onecycle-lists-2g", "onecycle", dict(max_lrs=[0.4, 0.04], total_steps=36, pct_start=0.4),
              dict(lr0=two, optim="adam", moms=True)))
    met = [1.0, 0.9, 0.85, 0.85, 0.86, 0.85, 0.849, 0.84, 0.84, 0.84, 0.84, 0.83, 0.835, 0.84, 0.84, 0.84,
           0.84, 0.84, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
    c.append(("plateau-min-rel", "plateau", dict(patience=2, factor=0.5), dict(metrics=met)))
    c.append(("plateau-min-abs-cooldown", "plateau", dict(patience=1, threshold=0.005, threshold_mode=1, cooldown=2,
                                                          min_lr=0.02), dict(metrics=met)))
    c.append(("plateau-max-2g", "plateau", dict(plateau_mode=1, patience=0, factor=0.7, min_lrs=[0.05, 0.01]),
              dict(lr0=two, metrics=[-m for m in met])))
    c.append(("plateau-eps", "plateau", dict(patience=0, factor=0.9, eps=0.01), dict(metrics=met)))
    c.append(("sequential-constant-exponential", "sequential", {},
              dict(children=[("constant", dict(factor=0.5, total_iters=3)), ("exponential", dict(gamma=0.9))],
                   milestones=[4])))
    c.append(("sequential-linear-cosine-2g", "sequential", {},
              dict(lr0=two, children=[("linear", dict(start_factor=0.1, total_iters=5)),
                                      ("cosine", dict(t_max=10, eta_min=0.001))], milestones=[5])))
    c.append(("sequential-three", "sequential", {},
              dict(children=[("constant", dict(factor=0.25, total_iters=2)), ("step", dict(step_size=3, gamma=0.5)),
                             ("lambda", dict(**{"lambda": "pow95"}))], milestones=[3, 11])))
    c.append(("sequential-warm", "sequential", {},
              dict(children=[("linear", dict(start_factor=0.5, total_iters=4)), ("warm", dict(t_0=4, t_mult=2))],
                   milestones=[4])))
    c.append(("chained-constant-exponential", "chained", {},
              dict(children=[("constant", dict(factor=0.1, total_iters=2)), ("exponential", dict(gamma=0.9))])))
    c.append(("chained-three-2g", "chained", {},
              dict(lr0=two, children=[("linear", dict(start_factor=0.2, total_iters=6)),
                                      ("multistep", dict(milestones=[8, 16], gamma=0.3)),
                                      ("multiplicative", dict(**{"lambda": "const9"}))])))
    # resumed: PyTorch's last_epoch with initial_lr in the groups
    c.append(("resume-cosine", "cosine", dict(t_max=9, eta_min=0.01, last_epoch=4), dict(lr0=(0.2,), initial=[0.3])))
    c.append(("resume-step-2g", "step", dict(step_size=3, gamma=0.5, last_epoch=5),
              dict(lr0=(0.075, 0.025), initial=[0.3, 0.1])))
    c.append(("resume-lambda", "lambda", dict(**{"lambda": "inv"}, last_epoch=3), dict(lr0=(0.1,), initial=[0.4])))
    c.append(("resume-warm", "warm", dict(t_0=5, t_mult=2, last_epoch=2), dict(lr0=(0.1,), initial=[0.3])))
    c.append(("resume-cyclic", "cyclic", dict(base_lr=0.01, max_lr=0.1, step_size_up=4, last_epoch=6),
              dict(lr0=(0.05,), initial=[0.01], momentum=0.85, moms=True)))
    out = []
    for cid, kind, kw, extra in c:
        out += run_case(cid, kind, kw, **extra)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/nn/schedules.txt")
    args = ap.parse_args()
    lines = cases()
    with open(args.out, "w") as f:
        f.write(f"lossgrad-nn-fixture 1\n# tools/gen_sched_fixtures.py, torch {torch.__version__}\n")
        f.writelines(lines)


if __name__ == "__main__":
    main()
