#!/usr/bin/python3
"""Generate lossgrad's layer fixtures with PyTorch (tests/fixtures/nn/layers.txt).

    /usr/bin/python3 tools/gen_layer_fixtures.py [--seed N] [--out tests/fixtures/nn/layers.txt]

Needs Debian's python3-torch 1.13 (for /usr/bin/python3); never needed to build or
test. Everything is float64 (torch.set_default_dtype), every random draw comes from
one torch.Generator seeded with --seed (default 6), PyTorch runs on one thread and
with ATEN_CPU_CAPABILITY=avx2 (set before torch is imported: some 1.13 kernels give
different values at kinks/NaN in their vectorised loop and their scalar tail, see
"Activations"), so a seed always gives the same file.  Every case is made by calling
PyTorch (scaled_dot_product_attention: the math, in PyTorch autograd); where this
file documents a formula the generator also checks PyTorch against it while it runs
(max/avg/adaptive pooling, interpolate forward and backward, batch-norm running
statistics, cosine similarity, hardswish at x = 3) and stops if they disagree.

RECORD FORMAT
-------------
Line 1 `lossgrad-nn-fixture 1`, line 2 `# tools/gen_layer_fixtures.py --seed N, torch V`,
then records, one item per line:

    case <id>           unique, no spaces: <op>[-<tags>]-<serial>
    op <name>           always the line after `case`
    <key> <value>       options, all before the first tensor
    tensor <name> <f64|i64> <ndim> <dims...> : <values...>
    err <word>          PyTorch raised (instead of upstream/out/grad_*)
    end

Floats are %.17g, nan, inf, -inf; ints decimal; a 0-d tensor is `tensor x f64 0 : v`;
an empty one has no values after the colon.  Option values: bools `true`/`false`;
`none` for Python None; words as such (`same`, `valid`, `bilinear`, `tanh`, `bool`);
ints decimal; floats %.17g (`inf` for p = inf); int/float tuples as comma lists without
spaces (`stride 2,1`, `scale_factor 2,0.5`).  A single int for a tuple option (`stride
2`) means that number for every spatial dim, as PyTorch accepts.  An option that is
not written has PyTorch's default (listed per op below): a key is written exactly when
its value differs from that default, except keys marked "always".

Tensor names: the inputs by PyTorch's argument name; `upstream` (random, the output's
shape; the differentiated scalar is sum(out * upstream)); `out`; `grad_<name>` for
every floating input PyTorch differentiates.  Inputs absent in a case (bias=None) are
not written.  An `err` case holds the options and inputs (no upstream/out/grad_*).
err words: `shape` = tensor shapes do not fit each other or the options (channel
counts, groups not dividing a channel count, kernel larger than the padded input,
wrong ndim, an empty output, normalized_shape); `value` = an option value PyTorch
rejects whatever the shapes (negative padding, stride 0, dilation 0, padding='same'
with stride > 1, output_padding too large, pool padding > kernel/2, divisor 0,
conflicting interpolate options, celu alpha 0) and batch norm's "Expected more than
1 value per channel when training" (a Python ValueError).

OPS
---
conv1d, conv2d (F.conv1d/F.conv2d)
  keys: stride (1), padding (0; int, tuple, or the words same/valid), dilation (1),
  groups (1).  tensors: input [N, Cin, L] / [N, Cin, H, W] (also unbatched [Cin, ...]
  and N = 0), weight [Cout, Cin/groups, k...], bias [Cout] (absent sometimes),
  upstream, out, grad_input, grad_weight, grad_bias.
  out size = floor((in + 2p - d(k-1) - 1) / s) + 1.  padding=same: total = d(k-1),
  left = total // 2, right = total - left (the extra zero goes at the END, e.g. k=4,
  d=1: left 1, right 2); valid = 0.  N = 0: out [0, Cout, ...], grad_input empty,
  grad_weight and grad_bias zeros.  err: groups not dividing Cin or Cout (shape),
  weight.size(1) * groups != Cin (shape), kernel larger than the padded input
  (shape), same with stride > 1 (value), negative padding (value), stride 0 (value),
  input ndim not 2/3 (conv1d) or 3/4 (conv2d) (shape).

conv_transpose2d (F.conv_transpose2d)
  keys: stride (1), padding (0; ints only, PyTorch takes no same/valid here),
  output_padding (0), groups (1), dilation (1).  tensors: input [N, Cin, H, W]
  (also unbatched, N = 0), weight [Cin, Cout/groups, kH, kW], bias [Cout] (absent
  sometimes), upstream, out, grad_input, grad_weight, grad_bias.
  out = (in - 1) s - 2p + d(k - 1) + output_padding + 1; output_padding must be
  < stride OR < dilation (per dim), else err value.  err: output_padding too large
  (value), groups not dividing (shape), weight.size(0) != Cin (shape), negative
  padding (value), stride 0 (value), an output size <= 0 (shape).

max_pool1d, max_pool2d (F.max_pool1d/2d with return_indices=True)
  keys: kernel_size (always), stride (absent = kernel_size), padding (0), dilation (1),
  ceil_mode (false).  tensors: input [N, C, L] / [N, C, H, W] (also unbatched
  [C, L] / [C, H, W]), upstream, out, indices (i64, same shape as out: the flat index
  h * W + w of the chosen element inside its own (n, c) plane, padding excluded),
  grad_input (upstream scattered-added at indices).
  out size: o = floor_or_ceil((in + 2p - d(k-1) - 1) / s) + 1, and with ceil_mode if
  (o - 1) s >= in + p then o -= 1 (a window may not start in the right padding).
  Scan rule (pinned by the ties/nan/allneginf cases): a window's valid positions are
  visited row-major (h outer, w inner, each start o*s - p moved up by d while < 0);
  max starts at -inf and the index at the first valid position; an element replaces
  the max when v > max OR v is NaN.  So among equal values the FIRST wins, a NaN wins
  over everything and the LAST NaN in the window wins, and a window of -inf reports
  its first valid position.  Padding is never chosen.  err: padding > kernel_size / 2
  (integer division, per dim, dilation ignored) (value), output size < 1, e.g. kernel
  larger than the input (shape), stride 0 / dilation 0 (value).  (Called with neither
  return_indices nor an input that requires grad, 1.13's max_pool1d returns an empty
  tensor instead of raising for a kernel larger than the input; the fixtures always
  ask for indices.)

avg_pool1d, avg_pool2d (F.avg_pool1d/2d)
  keys: kernel_size (always), stride (absent = kernel_size), padding (0), ceil_mode
  (false), count_include_pad (true), divisor_override (none; 2d only).  tensors:
  input, upstream, out, grad_input.
  out size as max pooling with d = 1.  For each window (per dim) start a = o*s - p,
  end b = min(a + k, in + p); pool = prod(b - a) (clipped to the PADDED extent, so a
  ceil-mode window running past the right padding counts fewer than k); then
  a = max(a, 0), b = min(b, in), real = prod(b - a); out = sum(x[a:b]) / divisor with
  divisor = divisor_override if given, else pool if count_include_pad else real.
  err: padding > kernel/2 (value), divisor_override 0 (value), stride 0 (value),
  output size < 1 (shape).

adaptive_avg_pool1d, adaptive_avg_pool2d
  key: output_size (always; int = the same for every dim, or a tuple).  tensors:
  input (also unbatched), upstream, out, grad_input.  Window of output o over an
  input of size I for output size O: start = floor(o I / O), end = ceil((o + 1) I / O);
  out = mean(x[start:end]) (windows overlap when O does not divide I; O > I repeats).

interpolate (F.interpolate, 4-d input only)
  keys: mode (nearest; or bilinear), size (tuple) or scale_factor (float or tuple),
  align_corners (absent = PyTorch's default, which is false for bilinear; written
  `true`, once `false`).  recompute_scale_factor is left at its default (None).
  tensors: input [N, C, H, W], upstream, out, grad_input.
  Output size: `size`, or floor(in * scale_factor) in double.  Per spatial dim with
  input size I, output size O and o = 0..O-1 (each dim independently):
  nearest:  scale = 1/scale_factor (double) if scale_factor was given, else I/O
            (double); src = min(floor((float)(scale * o)), I - 1) -- the double
            product is rounded to float32 before floor (floorf).
  bilinear: if O == I: src0 = src1 = o, lambda1 = 0 (identity, whatever the scale);
            else with align_corners: scale = (I - 1)/(O - 1) if O > 1 else 0,
                      r = scale * o;
            without: scale = 1/scale_factor if given, else I/O,
                      r = max(scale * (o + 0.5) - 0.5, 0);
            i0 = (int64)r, i1 = i0 + (i0 < I - 1 ? 1 : 0), lambda1 = r - i0,
            lambda0 = 1 - lambda1; out = sum over the 2x2 of lambda_h * lambda_w * x.
  With scale_factor the kernel uses 1/scale_factor, NOT I/O (e.g. I = 5, sf = 1.5: O =
  7 and scale 0.6667, not 0.7143).  The backward is the adjoint (scatter-add) of the
  same map.  Quirks avoided (a case hitting them would fail the generator's check):
  (1) for an [N, 1, H, W] tensor (also channels-last contiguous) 1.13 runs another
  kernel whose nearest index has shortcuts (O == I: src = o; O == 2I: src = o >> 1;
  else float32 scale); all inputs have C >= 2;  (2) the nearest BACKWARD always uses
  those shortcuts and a float32 scale, so with a scale_factor where O == I or O == 2I
  but the factor is not exactly 1 or 2 (e.g. I = 2, sf = 1.3) forward and backward of
  PyTorch 1.13 disagree; no such case is written.  err (value): both size and
  scale_factor; align_corners with nearest; size of the wrong length.

batch_norm (nn.BatchNorm1d for [N, C] and [N, C, L], nn.BatchNorm2d for [N, C, H, W])
  keys: training (true), momentum (0.1; a number or `none` = cumulative average),
  eps (1e-5), affine (true), track_running_stats (true), steps (always): S = the
  number of forward calls; the recorded call is the last one; every call is in the
  mode `training` says (eval cases: S = 1).  num_batches_tracked_after (written when
  track_running_stats): the module's counter after the S calls.
  tensors: input [S, N, C, ...] (input[s] is call s's batch), weight, bias (initial
  affine params, absent if affine false), running_mean, running_var (initial buffers,
  var > 0, absent if not tracked), upstream, out (last call), grad_input (shape of
  input[S-1]: the last call only), grad_weight, grad_bias (last call only: grads
  zeroed before it), running_mean_after, running_var_after (after all S calls; absent
  if not tracked).
  Training (or eval with track_running_stats false: batch statistics are used):
  per channel over n = N*L (or N*H*W) values, mean and the BIASED var (divide by n)
  normalise: y = (x - mean) / sqrt(var + eps) * weight + bias.  The running update
  uses the UNBIASED var (divide by n - 1): running = (1 - f) running + f stat, with
  f = momentum, or f = 1 / num_batches_tracked (after its increment) when momentum
  is none -- the first call then replaces the initial buffers.  num_batches_tracked
  grows by one per training call.  Eval with tracked stats: y = (x - running_mean) /
  sqrt(running_var + eps) * weight + bias, buffers unchanged.  err value: n = 1 when
  batch statistics are needed ([1, C], [1, C, 1], [1, C, 1, 1] in training, and [1, C]
  in eval without tracking); N = 1 with L > 1 is fine.

layer_norm (F.layer_norm)
  keys: normalized_shape (always, tuple), eps (1e-5).  tensors: input, weight, bias
  (normalized_shape each, absent sometimes), upstream, out, grad_input, grad_weight,
  grad_bias.  Over the trailing dims: (x - mean) / sqrt(biased var + eps); a constant
  row gives 0 * (1/sqrt(eps)).  err shape: trailing dims != normalized_shape, weight
  of the wrong shape.

group_norm (F.group_norm)
  keys: num_groups (always), eps (1e-5).  tensors: input [N, C, *], weight, bias [C]
  (absent sometimes), upstream, out, grad_input, grad_weight, grad_bias.  Per (n,
  group of C/G channels): biased var, as layer norm, then the per-channel affine.
  err shape: num_groups not dividing C.  (1.13's backward raises "tensor does not
  have a device" for weight None with a bias; those cases are differentiated through
  a constant weight of ones, which changes no value.)

Activations: gelu, silu, leaky_relu, elu, mish, hardswish, hardtanh, hardsigmoid,
softsign, selu, celu, relu6
  keys: gelu approximate (none; or tanh), leaky_relu negative_slope (0.01; also 0,
  -0.5, 2), elu alpha (1; also 0.5, 2), hardtanh min_val (-1), max_val (1), celu
  alpha (1).  tensors: input, upstream, out, grad_input.  Per family: a `kinks` case
  (0, +-3, +-1e-8, +-20, +-50, +-1, +-6, +-0.5, +-2, the option values, and random
  values), a `randn` case, and one `nan` case for the default options.  Gradients
  at the kinks as PyTorch 1.13 gives them:
    leaky_relu: x > 0 ? 1 : slope (slope at 0, slope at NaN).
    elu/celu/selu: the negative branch at x <= 0: elu alpha*exp(x) (alpha at 0),
      celu exp(x/alpha) (1 at 0), selu scale*alpha*exp(x) (1.7581 at 0).
    hardtanh/relu6: 1 only for min_val < x < max_val (0 at both ends: relu6 has
      grad 0 at 0 and at 6).
    hardsigmoid: 1/6 only for -3 < x < 3 (0 at +-3).
    hardswish: 0 for x < -3, x/3 + 1/2 for -3 <= x < 3 (-0.5 at -3), 1 for x >= 3.
      PyTorch 1.13's scalar tail loop gives 1.5 at x = 3 instead; every x = 3 here
      sits in the vectorised part (blocks of 8 doubles with AVX2).
    gelu(0)' = 0.5, mish(0)' = tanh(log 2) = 0.6, softsign(0)' = 1, silu(0)' = 0.5.
  At NaN inputs the outputs are NaN; the recorded gradients come from the vectorised
  loop: NaN for gelu/silu/mish/softsign/elu/celu/selu/hardswish, 0 for hardtanh,
  relu6 and hardsigmoid, slope*upstream for leaky_relu (the scalar loop would give
  1 for elu/celu/hardswish/hardtanh/relu6 and 1.0507 for selu).  err value: celu
  alpha 0 ("ZeroDivisionError").

var, std (torch.var / torch.std, 1.13 signature)
  keys: dim (absent = all dims; an int or a comma list), unbiased (true), keepdim
  (false).  tensors: input, upstream, out, grad_input.  var = sum((x - mean)^2) /
  (n - 1) (unbiased) or / n; grad var = 2 (x - mean) / (n - 1 or n) * upstream;
  grad std = grad var * upstream / (2 std), set to 0 where std == 0 (a constant row
  gives a zero gradient, not NaN).  Reducing n = 1 element unbiased: out = nan (0/0)
  and grad = nan when `dim` is given; a 0-d input with dim absent gives var nan and
  grad = inf * upstream (+-inf, 1.13 returns INFINITY * grad there) and std grad nan.
  (A [1] or [1, 1] input with dim absent makes 1.13's backward raise, a PyTorch bug;
  not recorded.)  Biased over one element: 0, grad 0.  An empty reduced dim: nan,
  empty grad; an empty result: empty.

cosine_similarity (F.cosine_similarity)
  keys: dim (1), eps (1e-8).  tensors: x1, x2 (broadcast against each other, e.g.
  [4,5] with [1,5]; grads have each input's own shape), upstream, out, grad_x1,
  grad_x2.  1.13 computes, after broadcasting, sum((x1 / sqrt(max(sum(x1^2), eps^2)))
  * (x2 / sqrt(max(sum(x2^2), eps^2)))) -- each norm clamped separately (bitwise
  checked), not max(|x1| |x2|, eps): tiny vectors give different values.  A zero
  vector gives 0.

normalize (F.normalize)
  keys: p (2; also 1, 3, inf), dim (1), eps (1e-12).  tensors: input, upstream,
  out, grad_input.  out = x / max(||x||_p, eps) (||x||_inf = max |x|); a zero row
  gives 0 and the gradient upstream / eps.

scaled_dot_product_attention (the math, in float64 autograd; 1.13 has no such function)
  keys: mask_kind (float; `bool`), is_causal (false), scale (1/sqrt(E)).  tensors:
  query [B, H, L, E] or [B, L, E], key [.., S, E], value [.., S, Ev], attn_mask
  (absent, or f64 additive broadcastable to [B, H, L, S]: [L, S], [B, 1, L, S], ...,
  may hold -inf; or with mask_kind bool an i64 0/1 tensor, 1 = may attend, 0 -> -inf
  like PyTorch 2.x's boolean mask), upstream, out, grad_query, grad_key, grad_value.
  out = softmax(Q K^T * scale + mask) V; is_causal: query i attends key j only if
  j <= i (top-left aligned tril of ones(L, S), PyTorch 2.x's rule, also for L != S).
  A fully masked row is softmax of all -inf: NaN in out and in the gradients it reaches.

multi_head_attention (nn.MultiheadAttention, kdim = vdim = E, dropout 0, need_weights False)
  keys: embed_dim, num_heads (always), bias (true), batch_first (false),
  self_attention (false), causal (false).  tensors: query, key, value ([L, N, E],
  [N, L, E] when batch_first, or unbatched [L, E]); with self_attention the same
  tensor is passed as query, key and value and only `query` is written (grad_query is
  the total); key_padding_mask (i64 0/1 [N, S], 1 = ignore that key); attn_mask (f64
  additive [L, S]; with causal true it is not written and means mask[i][j] = -inf for
  j > i, else 0); in_proj_weight [3E, E], in_proj_bias [3E], out_proj.weight [E, E],
  out_proj.bias [E] (the biases absent when bias false); upstream, out (attn_output),
  grad_query (grad_key, grad_value), grad_in_proj_weight, grad_in_proj_bias,
  grad_out_proj.weight, grad_out_proj.bias.
  1.13: q|k|v = x W^T + b with rows [0, E), [E, 2E), [2E, 3E) of in_proj; head h takes
  features [h E/H, (h+1) E/H); q is divided by sqrt(E/H) BEFORE q k^T; the float mask
  is added and key_padding_mask sets -inf (masked_fill); softmax over keys; times v;
  heads concatenated; then out_proj.
"""

import argparse
import math
import os
import sys
import warnings

os.environ["ATEN_CPU_CAPABILITY"] = "avx2"   # before torch: pins the vectorised loops (see above)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_default_dtype(torch.float64)
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel lengths")

NAN, INF = float("nan"), float("inf")
REQ = object()          # an option without a PyTorch default: always written
MAX_VALUES = 2200       # values per case, every tensor counted


# ---------------------------------------------------------------- formatting

def fmt(v):
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return "%.17g" % v


def tensor_line(name, t):
    t = t.detach()
    if t.dtype == torch.bool:
        t = t.to(torch.int64)
    dt = "f64" if t.is_floating_point() else "i64"
    dims = " ".join(str(d) for d in t.shape)
    vals = " ".join(fmt(v) if t.is_floating_point() else str(int(v)) for v in t.reshape(-1).tolist())
    head = f"tensor {name} {dt} {t.dim()}" + (f" {dims}" if dims else "")
    return f"{head} : {vals}\n"


def ostr(v):
    """An option value as written: true/false, none, words, ints, %.17g floats, comma lists."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return fmt(v)
    if isinstance(v, (tuple, list)):
        return ",".join(ostr(x) for x in v)
    raise TypeError(v)


def tagval(v):
    if isinstance(v, float):
        return format(v, "g")
    if isinstance(v, (tuple, list)):
        return "x".join(tagval(x) for x in v)
    return ostr(v)


# ---------------------------------------------------------------- records

class Gen:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)
        self.records = []
        self.ids = set()
        self.n = 0

    # random draws, all from the one generator
    def randn(self, *shape, scale=1.0):
        return torch.randn(tuple(shape), generator=self.g) * scale

    def uniform(self, lo, hi, *shape):
        return torch.rand(tuple(shape), generator=self.g) * (hi - lo) + lo

    def distinct(self, *shape):
        """Values without ties: a random permutation of -n/2..n/2 scaled by 1/4."""
        n = int(np.prod(shape)) if shape else 1
        p = torch.randperm(n, generator=self.g).to(torch.float64)
        return ((p - n // 2) * 0.25).reshape(shape)

    def new_id(self, op, tag):
        cid = f"{op}{'-' + tag if tag else ''}-{self.n}"
        self.n += 1
        assert cid not in self.ids and " " not in cid, cid
        self.ids.add(cid)
        return cid

    def emit(self, op, tag, keys, tensors, err=None, outs=()):
        """keys: [(k, v)]; tensors: [(name, t)] inputs; outs: [(name, t)] upstream/out/grads."""
        cid = self.new_id(op, tag)
        lines = [f"case {cid}\n", f"op {op}\n"]
        lines += [f"{k} {ostr(v)}\n" for k, v in keys]
        allt = [(n, t) for n, t in tensors if t is not None] + ([] if err else list(outs))
        nvals = sum(t.numel() for _, t in allt)
        assert nvals <= MAX_VALUES, (cid, nvals)
        lines += [tensor_line(n, t) for n, t in allt]
        if err:
            lines.append(f"err {err}\n")
        lines.append("end\n")
        self.records.append((op, lines))
        return cid

    def run(self, op, opts, defaults, inputs, fn, err=None, diff=None, label=""):
        """Call fn(T) (T: name -> leaf tensor) and record the case.

        opts: every option passed to PyTorch; written only where it differs from
        defaults (keys in defaults order, REQ always written).  fn returns the
        output tensor or (output, [(name, extra output)]).  diff: the floating
        inputs PyTorch differentiates (default: every floating input)."""
        keys = option_keys(opts, defaults)
        tag = "-".join(x for x in [label, option_tag(opts, defaults)] if x)
        leaves = {}
        for name, t in inputs:
            if t is None:
                continue
            wants = t.is_floating_point() and (diff is None or name in diff)
            leaves[name] = t.detach().clone().requires_grad_(wants)
        try:
            res = fn(leaves)
        except (RuntimeError, ValueError, IndexError) as e:
            if err is None:
                raise RuntimeError(f"{op} {tag}: unexpected PyTorch error: {e}")
            return self.emit(op, tag, keys, inputs, err=err)
        if err is not None:
            raise RuntimeError(f"{op} {tag}: PyTorch did not raise (expected err {err})")
        out, extra = (res if isinstance(res, tuple) else (res, []))
        u = self.randn(*out.shape)
        (out * u).sum().backward()
        outs = [("upstream", u), ("out", out)] + list(extra)
        for name, leaf in leaves.items():
            if leaf.requires_grad:
                gr = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
                outs.append(("grad_" + name, gr))
        return self.emit(op, tag, keys, inputs, outs=outs)


ABBREV = {"stride": "s", "padding": "p", "dilation": "d", "groups": "g", "output_padding": "op",
          "kernel_size": "k", "ceil_mode": "ceil", "count_include_pad": "cip", "divisor_override": "div",
          "output_size": "o", "size": "sz", "scale_factor": "sf", "align_corners": "ac", "mode": "",
          "negative_slope": "ns", "alpha": "a", "approximate": "", "min_val": "lo", "max_val": "hi",
          "dim": "dim", "unbiased": "unb", "keepdim": "kd", "eps": "eps", "p": "p",
          "normalized_shape": "ns", "num_groups": "G", "embed_dim": "E", "num_heads": "h", "bias": "bias",
          "batch_first": "bf", "self_attention": "self", "causal": "causal", "mask_kind": "", "is_causal": "causal",
          "scale": "scale", "training": "train", "momentum": "m", "affine": "affine", "track_running_stats": "track",
          "steps": "S"}


def option_keys(opts, defaults):
    unknown = set(opts) - set(defaults)
    assert not unknown, unknown
    keys = []
    for k, d in defaults.items():
        if k not in opts:
            continue
        v = opts[k]
        if d is REQ or v != d or type(v) != type(d):
            keys.append((k, v))
    return keys


def option_tag(opts, defaults):
    parts = []
    for k, v in option_keys(opts, defaults):
        a = ABBREV.get(k, k)
        if isinstance(v, bool):
            parts.append(a if v else "no" + a)
        else:
            parts.append(a + tagval(v))
    return "-".join(parts)


# ---------------------------------------------------------------- convolution

CONV_DEF = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1}
CONVT_DEF = {"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "dilation": 1}


def tup(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def conv_case(G, dim, N, cin, cout, size, k, bias=True, err=None, label="", xshape=None, wshape=None, **opts):
    op = f"conv{dim}d"
    groups = opts.get("groups", 1)
    x = G.randn(*(xshape or ((N, cin) if N is not None else (cin,)) + tuple(size)))
    w = G.randn(*(wshape or (cout, cin // groups) + tup(k, dim)))
    b = G.randn(cout) if bias else None
    fn = F.conv1d if dim == 1 else F.conv2d
    G.run(op, opts, CONV_DEF, [("input", x), ("weight", w), ("bias", b)],
          lambda T: fn(T["input"], T["weight"], T.get("bias"), **opts), err=err,
          label=label + ("" if bias else "nobias"))


def conv1d_cases(G):
    L = 9
    n = 0
    for s in (1, 2, 3):
        for p in (0, 1, 2, "valid"):
            conv_case(G, 1, 2, 4, 6, (L,), 3, bias=(n % 3 != 1), stride=s, padding=p)
            n += 1
    for k, d in ((3, 1), (4, 1), (3, 2), (4, 3)):
        conv_case(G, 1, 2, 3, 5, (8,), k, padding="same", dilation=d)
    conv_case(G, 1, 2, 4, 6, (L,), 3, dilation=2)
    conv_case(G, 1, 2, 4, 6, (L,), 3, dilation=2, stride=2, padding=2)
    conv_case(G, 1, 2, 4, 6, (L,), 2, bias=False, dilation=3, padding=1)
    conv_case(G, 1, 2, 4, 6, (L,), 3, groups=2)
    conv_case(G, 1, 2, 4, 6, (L,), 3, groups=2, stride=2, padding=1, bias=False)
    conv_case(G, 1, 2, 4, 4, (L,), 3, groups=4, padding=1, label="depthwise")
    conv_case(G, 1, 2, 4, 8, (L,), 3, groups=4, label="depthwise")
    conv_case(G, 1, 2, 3, 4, (7,), 1, label="k1")
    conv_case(G, 1, 2, 3, 4, (5,), 5, label="k5")
    conv_case(G, 1, 2, 3, 4, (5,), 5, padding=2, stride=2, label="k5")
    conv_case(G, 1, 1, 3, 4, (11,), 3, stride=3, padding=1, label="n1")
    conv_case(G, 1, 0, 4, 6, (L,), 3, label="n0")
    conv_case(G, 1, 0, 4, 6, (L,), 3, groups=2, padding="same", bias=False, label="n0")
    conv_case(G, 1, None, 3, 4, (7,), 3, padding=1, label="unbatched")
    # errors
    conv_case(G, 1, 2, 6, 8, (L,), 3, groups=4, wshape=(8, 1, 3), err="shape", label="groups-cin")
    conv_case(G, 1, 2, 4, 5, (L,), 3, groups=2, err="shape", label="groups-cout")
    conv_case(G, 1, 2, 4, 6, (L,), 3, wshape=(6, 3, 3), err="shape", label="wchannels")
    conv_case(G, 1, 2, 4, 6, (4,), 7, padding=1, err="shape", label="kbig")
    conv_case(G, 1, 2, 4, 6, (L,), 3, padding="same", stride=2, err="value")
    conv_case(G, 1, 2, 4, 6, (L,), 3, padding=-1, err="value")
    conv_case(G, 1, 2, 4, 6, (L,), 3, stride=0, err="value")
    conv_case(G, 1, None, 4, 6, (L,), 3, xshape=(2, 4, L, 2), err="shape", label="ndim4")
    conv_case(G, 1, None, 4, 6, (L,), 3, xshape=(L,), err="shape", label="ndim1")


def conv2d_cases(G):
    n = 0
    for s in (1, 2, 3):
        for p in (0, 1, (1, 2), "valid"):
            conv_case(G, 2, 2, 3, 4, (6, 5), 3, bias=(n % 3 != 2), stride=s, padding=p)
            n += 1
    conv_case(G, 2, 2, 3, 4, (7, 6), 3, stride=(2, 1), padding=(0, 1))
    conv_case(G, 2, 2, 3, 4, (7, 6), 3, stride=3, padding=2)
    for k, d in ((3, 1), ((3, 2), 1), (3, (2, 1)), ((2, 4), (1, 2))):
        conv_case(G, 2, 2, 3, 4, (5, 6), k, padding="same", dilation=d)
    conv_case(G, 2, 2, 3, 4, (7, 6), 3, dilation=2)
    conv_case(G, 2, 2, 3, 4, (7, 6), 3, dilation=(2, 1), padding=1, bias=False)
    conv_case(G, 2, 2, 3, 4, (8, 7), 3, dilation=2, stride=2, padding=(2, 1))
    conv_case(G, 2, 2, 4, 6, (5, 5), 3, groups=2)
    conv_case(G, 2, 2, 4, 6, (6, 5), 3, groups=2, stride=2, padding=1, bias=False)
    conv_case(G, 2, 2, 4, 4, (5, 6), 3, groups=4, padding=1, label="depthwise")
    conv_case(G, 2, 2, 4, 8, (5, 6), 3, groups=4, label="depthwise")
    conv_case(G, 2, 2, 3, 4, (6, 5), (3, 2), label="k3x2")
    conv_case(G, 2, 2, 3, 4, (6, 5), (3, 2), stride=(1, 2), padding=(1, 0), bias=False, label="k3x2")
    conv_case(G, 2, 2, 3, 5, (5, 7), 1, label="k1x1")
    conv_case(G, 2, 2, 3, 5, (5, 7), 1, stride=2, label="k1x1")
    conv_case(G, 2, 2, 2, 3, (5, 5), 5, label="k5x5")
    conv_case(G, 2, 2, 2, 3, (5, 5), 5, padding=2, label="k5x5")
    conv_case(G, 2, 1, 3, 4, (7, 5), 3, stride=2, label="n1")
    conv_case(G, 2, 0, 4, 6, (5, 5), 3, groups=2, label="n0")
    conv_case(G, 2, 0, 3, 4, (5, 5), 3, bias=False, padding=1, label="n0")
    conv_case(G, 2, None, 3, 4, (5, 6), 3, padding=1, label="unbatched")
    # errors
    conv_case(G, 2, 2, 6, 8, (5, 5), 3, groups=4, wshape=(8, 1, 3, 3), err="shape", label="groups-cin")
    conv_case(G, 2, 2, 4, 5, (5, 5), 3, groups=2, err="shape", label="groups-cout")
    conv_case(G, 2, 2, 4, 6, (5, 5), 3, wshape=(6, 3, 3, 3), err="shape", label="wchannels")
    conv_case(G, 2, 2, 4, 6, (4, 6), (7, 3), padding=1, err="shape", label="kbig")
    conv_case(G, 2, 2, 4, 6, (5, 5), 3, padding="same", stride=(1, 2), err="value")
    conv_case(G, 2, 2, 4, 6, (5, 5), 3, padding=(1, -1), err="value")
    conv_case(G, 2, 2, 4, 6, (5, 5), 3, stride=(0, 1), err="value")
    conv_case(G, 2, None, 4, 6, (5, 5), 3, xshape=(5, 5), err="shape", label="ndim2")
    conv_case(G, 2, None, 4, 6, (5, 5), 3, xshape=(1, 2, 4, 5, 5), err="shape", label="ndim5")


def convt_case(G, N, cin, cout, size, k, bias=True, err=None, label="", wshape=None, **opts):
    groups = opts.get("groups", 1)
    x = G.randn(*((N, cin) if N is not None else (cin,)) + tuple(size))
    w = G.randn(*(wshape or (cin, cout // groups) + tup(k, 2)))
    b = G.randn(cout) if bias else None
    G.run("conv_transpose2d", opts, CONVT_DEF, [("input", x), ("weight", w), ("bias", b)],
          lambda T: F.conv_transpose2d(T["input"], T["weight"], T.get("bias"), **opts), err=err,
          label=label + ("" if bias else "nobias"))


def conv_transpose2d_cases(G):
    n = 0
    for s in (1, 2, 3):
        for p in (0, 1, (1, 2)):
            convt_case(G, 2, 3, 2, (3, 4), 3, bias=(n % 3 != 1), stride=s, padding=p)
            n += 1
    convt_case(G, 2, 3, 2, (3, 4), 3, stride=2, output_padding=1)
    convt_case(G, 2, 3, 2, (3, 4), 3, stride=(2, 3), padding=1, output_padding=(1, 2))
    convt_case(G, 2, 3, 2, (3, 4), 3, stride=(2, 1), output_padding=(1, 0), bias=False)
    convt_case(G, 2, 3, 2, (3, 4), 3, dilation=2, output_padding=1, label="op-lt-dilation")
    convt_case(G, 2, 3, 2, (3, 4), 3, dilation=2)
    convt_case(G, 2, 3, 2, (3, 4), 3, dilation=(2, 1), stride=2, padding=(2, 1))
    convt_case(G, 2, 4, 6, (3, 3), 3, groups=2)
    convt_case(G, 1, 4, 6, (3, 3), 3, groups=2, stride=2, padding=1, output_padding=1, bias=False)
    convt_case(G, 2, 4, 4, (3, 4), 3, groups=4, label="depthwise")
    convt_case(G, 1, 4, 8, (3, 3), 3, groups=4, stride=2, label="depthwise")
    convt_case(G, 2, 3, 4, (4, 5), (3, 2), stride=(1, 2), label="k3x2")
    convt_case(G, 2, 3, 4, (4, 5), 1, label="k1x1")
    convt_case(G, 2, 3, 4, (3, 4), 2, stride=2, label="k2x2")
    convt_case(G, 1, 3, 2, (5, 3), 3, stride=2, padding=1, label="n1")
    convt_case(G, 0, 4, 6, (3, 3), 3, stride=2, label="n0")
    convt_case(G, None, 3, 2, (3, 4), 3, padding=1, label="unbatched")
    # errors
    convt_case(G, 2, 4, 6, (4, 5), 3, stride=2, output_padding=2, err="value", label="op-big")
    convt_case(G, 2, 4, 6, (4, 5), 3, output_padding=1, err="value", label="op-big")
    convt_case(G, 2, 4, 6, (4, 5), 3, groups=3, wshape=(4, 2, 3, 3), err="shape", label="groups-cin")
    convt_case(G, 2, 4, 6, (4, 5), 3, wshape=(3, 6, 3, 3), err="shape", label="wchannels")
    convt_case(G, 2, 4, 6, (4, 5), 3, padding=-1, err="value")
    convt_case(G, 2, 4, 6, (4, 5), 3, stride=0, err="value")
    convt_case(G, 2, 4, 6, (2, 2), 1, padding=1, err="shape", label="out-empty")


# ---------------------------------------------------------------- pooling

MAXP_DEF = {"kernel_size": REQ, "stride": None, "padding": 0, "dilation": 1, "ceil_mode": False}
AVGP1_DEF = {"kernel_size": REQ, "stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True}
AVGP2_DEF = dict(AVGP1_DEF, divisor_override=None)


def pool_out_size(L, k, s, p, d, ceil):
    num = L + 2 * p - d * (k - 1) - 1
    o = (-(-num // s) if ceil else num // s) + 1
    if ceil and (o - 1) * s >= L + p:
        o -= 1
    return o


def ref_max_pool(x, dim, k, s, p, d, ceil):
    """The documented scan rule: windows scanned row-major over valid positions,
    replace when v > max or v is NaN; start index = first valid position."""
    sp = x.shape[-dim:]
    k, s, p, d = tup(k, dim), tup(s if s is not None else k, dim), tup(p, dim), tup(d, dim)
    osz = [pool_out_size(sp[i], k[i], s[i], p[i], d[i], ceil) for i in range(dim)]
    planes = x.reshape(-1, *sp)
    out = torch.empty(planes.shape[0], *osz)
    idx = torch.empty(planes.shape[0], *osz, dtype=torch.int64)
    for c in range(planes.shape[0]):
        flat = planes[c].reshape(-1).tolist()
        for o in np.ndindex(*osz):
            pos = []
            for i in range(dim):
                pos.append([o[i] * s[i] - p[i] + j * d[i] for j in range(k[i])
                            if 0 <= o[i] * s[i] - p[i] + j * d[i] < sp[i]])
            cand = []
            for q in np.ndindex(*[len(v) for v in pos]):
                cand.append(int(np.ravel_multi_index(tuple(pos[i][q[i]] for i in range(dim)), sp)))
            best, bi = -INF, cand[0]
            for ci in cand:
                v = flat[ci]
                if v > best or math.isnan(v):
                    best, bi = v, ci
            out[(c,) + o], idx[(c,) + o] = flat[bi], bi
    return out.reshape(*x.shape[:-dim], *osz), idx.reshape(*x.shape[:-dim], *osz)


def maxpool_case(G, dim, shape, err=None, label="", values=None, **opts):
    op = f"max_pool{dim}d"
    x = values if values is not None else G.distinct(*shape)
    fn = F.max_pool1d if dim == 1 else F.max_pool2d

    def f(T):
        out, ind = fn(T["input"], return_indices=True, **opts)
        ro, ri = ref_max_pool(T["input"].detach(), dim, opts["kernel_size"], opts.get("stride"),
                              opts.get("padding", 0), opts.get("dilation", 1), opts.get("ceil_mode", False))
        assert torch.equal(ri, ind) and torch.allclose(ro, out.detach(), equal_nan=True), (op, opts)
        return out, [("indices", ind)]
    G.run(op, opts, MAXP_DEF, [("input", x)], f, err=err, label=label)


def max_pool1d_cases(G):
    mp = lambda *a, **k: maxpool_case(G, 1, *a, **k)
    mp((2, 3, 8), kernel_size=2)
    mp((2, 3, 9), kernel_size=3, stride=1)
    mp((2, 3, 9), kernel_size=3, stride=2)
    mp((2, 2, 7), kernel_size=2, ceil_mode=True)
    mp((2, 2, 8), kernel_size=3, stride=2, ceil_mode=True)
    mp((2, 2, 8), kernel_size=3, stride=2, padding=1, ceil_mode=True)
    mp((2, 2, 9), kernel_size=4, stride=3, padding=2)
    mp((2, 2, 9), kernel_size=4, stride=3, padding=2, ceil_mode=True)
    mp((2, 2, 9), kernel_size=3, stride=1, dilation=2)
    mp((2, 2, 10), kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)
    mp((2, 2, 11), kernel_size=5, stride=2, padding=2)
    mp((1, 3, 6), kernel_size=2, stride=1, padding=1, label="n1")
    mp((3, 7), kernel_size=3, stride=2, label="unbatched")
    # ties, NaN, -inf
    tie = torch.tensor([[[1., 1., 1., 1., 2., 2., 0., 0., 5., 5., 5., -1.]]])
    mp(None, values=tie, kernel_size=2, label="ties")
    mp(None, values=tie, kernel_size=3, stride=1, label="ties")
    mp(None, values=torch.round(G.randn(2, 2, 10)), kernel_size=3, stride=2, padding=1, label="ties-rounded")
    nan = torch.tensor([[[1., NAN, 3., NAN, 0., 5., 2., NAN, -1.]]])
    mp(None, values=nan, kernel_size=3, stride=1, label="nan")
    mp(None, values=nan, kernel_size=4, stride=2, padding=1, label="nan")
    mp(None, values=torch.full((1, 2, 5), -INF), kernel_size=3, stride=2, padding=1, dilation=2,
       ceil_mode=True, label="allneginf")
    # errors
    mp((2, 2, 8), kernel_size=3, padding=2, err="value")
    mp((2, 2, 3), kernel_size=4, err="shape", label="kbig")
    mp((2, 2, 8), kernel_size=2, stride=0, err="value")


def max_pool2d_cases(G):
    mp = lambda *a, **k: maxpool_case(G, 2, *a, **k)
    mp((2, 3, 6, 6), kernel_size=2)
    mp((2, 2, 7, 6), kernel_size=3, stride=2)
    mp((2, 2, 7, 6), kernel_size=(3, 2), stride=(2, 1))
    mp((2, 2, 7, 7), kernel_size=3, stride=1, padding=1)
    mp((2, 2, 7, 6), kernel_size=2, ceil_mode=True)
    mp((2, 2, 7, 8), kernel_size=3, stride=2, padding=1, ceil_mode=True)
    mp((2, 2, 6, 7), kernel_size=(2, 3), stride=(2, 2), padding=(1, 1), ceil_mode=True)
    mp((2, 2, 8, 8), kernel_size=4, stride=3, padding=2, ceil_mode=True)
    mp((2, 2, 7, 7), kernel_size=3, stride=1, dilation=2)
    mp((2, 2, 8, 7), kernel_size=2, stride=2, padding=1, dilation=(2, 1), ceil_mode=True)
    mp((2, 2, 8, 8), kernel_size=3, stride=(3, 2), padding=(1, 0))
    mp((1, 3, 5, 5), kernel_size=2, stride=1, label="n1")
    mp((3, 5, 6), kernel_size=2, label="unbatched")
    mp((2, 6, 7), kernel_size=3, stride=2, padding=1, ceil_mode=True, label="unbatched")
    ties = torch.tensor([[[[1., 1., 2., 2.], [1., 1., 0., 2.], [3., 0., 0., 0.], [0., 3., 0., 0.]]]])
    mp(None, values=ties, kernel_size=2, label="ties")
    mp(None, values=ties, kernel_size=2, stride=1, label="ties")
    mp(None, values=torch.round(G.randn(2, 2, 5, 6)), kernel_size=3, stride=2, padding=1, label="ties-rounded")
    mp(None, values=torch.zeros(1, 2, 4, 4), kernel_size=2, stride=1, padding=1, label="allequal")
    nan = G.randn(1, 2, 4, 4)
    nan[0, 0, 1, 1] = NAN
    nan[0, 1, 0, 1] = NAN
    nan[0, 1, 1, 0] = NAN
    mp(None, values=nan, kernel_size=2, label="nan")
    mp(None, values=torch.full((1, 2, 4, 4), -INF), kernel_size=3, stride=2, padding=1, ceil_mode=True,
       label="allneginf")
    # errors
    mp((2, 2, 6, 6), kernel_size=3, padding=(0, 2), err="value")
    mp((2, 2, 3, 6), kernel_size=(4, 2), err="shape", label="kbig")
    mp((2, 2, 3, 3), kernel_size=4, err="shape", label="kbig")
    mp((2, 2, 6, 6), kernel_size=2, dilation=0, err="value")


def ref_avg_pool(x, dim, k, s, p, ceil, cip, div):
    sp = x.shape[-dim:]
    k, s, p = tup(k, dim), tup(s if s is not None else k, dim), tup(p, dim)
    osz = [pool_out_size(sp[i], k[i], s[i], p[i], 1, ceil) for i in range(dim)]
    out = torch.empty(*x.shape[:-dim], *osz)
    for o in np.ndindex(*osz):
        sl, pool, real = [], 1, 1
        for i in range(dim):
            a = o[i] * s[i] - p[i]
            b = min(a + k[i], sp[i] + p[i])
            pool *= b - a
            a, b = max(a, 0), min(b, sp[i])
            real *= b - a
            sl.append(slice(a, b))
        w = x[(Ellipsis,) + tuple(sl)].sum(dim=tuple(range(-dim, 0)))
        out[(Ellipsis,) + o] = w / (div if div else (pool if cip else real))
    return out


def avgpool_case(G, dim, shape, err=None, label="", **opts):
    op = f"avg_pool{dim}d"
    fn = F.avg_pool1d if dim == 1 else F.avg_pool2d

    def f(T):
        out = fn(T["input"], **opts)
        r = ref_avg_pool(T["input"].detach(), dim, opts["kernel_size"], opts.get("stride"), opts.get("padding", 0),
                         opts.get("ceil_mode", False), opts.get("count_include_pad", True),
                         opts.get("divisor_override"))
        assert r.shape == out.shape and torch.allclose(r, out.detach(), rtol=1e-13, atol=1e-13), (op, opts)
        return out
    G.run(op, opts, AVGP2_DEF if dim == 2 else AVGP1_DEF, [("input", G.randn(*shape))], f, err=err, label=label)


def avg_pool1d_cases(G):
    geoms = [((2, 3, 8), dict(kernel_size=2)),
             ((2, 2, 9), dict(kernel_size=3, stride=2, padding=1)),
             ((2, 2, 6), dict(kernel_size=3, stride=2, padding=1)),     # ceil: last window past the padded edge
             ((2, 2, 7), dict(kernel_size=4, stride=3, padding=2)),
             ((2, 2, 5), dict(kernel_size=2, stride=2, padding=1)),     # ceil: a window starting in the padding dropped
             ((1, 2, 10), dict(kernel_size=3, stride=1, padding=1))]
    for shape, geo in geoms:
        for ceil in (False, True):
            for cip in (True, False):
                avgpool_case(G, 1, shape, ceil_mode=ceil, count_include_pad=cip, **geo)
    avgpool_case(G, 1, (3, 7), kernel_size=3, stride=2, padding=1, ceil_mode=True, label="unbatched")
    avgpool_case(G, 1, (2, 2, 8), kernel_size=3, padding=2, err="value")
    avgpool_case(G, 1, (2, 2, 2), kernel_size=3, err="shape", label="kbig")


def avg_pool2d_cases(G):
    geoms = [((2, 3, 6, 7), dict(kernel_size=2)),
             ((2, 2, 7, 7), dict(kernel_size=3, stride=2, padding=1)),
             ((2, 2, 6, 5), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1))),
             ((1, 2, 5, 8), dict(kernel_size=(2, 4), stride=(3, 2), padding=(1, 2))),
             ((2, 2, 6, 6), dict(kernel_size=3, stride=2, padding=1))]
    for gi, (shape, geo) in enumerate(geoms):
        for ceil in (False, True):
            for cip in (True, False):
                avgpool_case(G, 2, shape, ceil_mode=ceil, count_include_pad=cip, **geo)
        avgpool_case(G, 2, shape, ceil_mode=bool(gi % 2), count_include_pad=bool(gi % 3),
                     divisor_override=(3 if gi % 2 else 7), **geo)
    avgpool_case(G, 2, (2, 6, 5), kernel_size=2, stride=1, padding=1, ceil_mode=True, count_include_pad=False,
                 label="unbatched")
    avgpool_case(G, 2, (2, 2, 6, 6), kernel_size=3, padding=(2, 1), err="value")
    avgpool_case(G, 2, (2, 2, 6, 6), kernel_size=2, divisor_override=0, err="value")
    avgpool_case(G, 2, (2, 2, 6, 6), kernel_size=2, stride=(1, 0), err="value")
    avgpool_case(G, 2, (2, 2, 2, 6), kernel_size=3, err="shape", label="kbig")


def ref_adaptive(x, dim, osz):
    sp = x.shape[-dim:]
    osz = tup(osz, dim)
    out = torch.empty(*x.shape[:-dim], *osz)
    for o in np.ndindex(*osz):
        sl = tuple(slice((o[i] * sp[i]) // osz[i], -((-(o[i] + 1) * sp[i]) // osz[i])) for i in range(dim))
        out[(Ellipsis,) + o] = x[(Ellipsis,) + sl].mean(dim=tuple(range(-dim, 0)))
    return out


def adaptive_case(G, dim, shape, osz, label=""):
    op = f"adaptive_avg_pool{dim}d"
    fn = F.adaptive_avg_pool1d if dim == 1 else F.adaptive_avg_pool2d

    def f(T):
        out = fn(T["input"], osz)
        r = ref_adaptive(T["input"].detach(), dim, osz)
        assert torch.allclose(r, out.detach(), rtol=1e-13, atol=1e-13), (op, osz)
        return out
    G.run(op, {"output_size": osz}, {"output_size": REQ}, [("input", G.randn(*shape))], f, label=label)


def adaptive_cases(G):
    for L, o in ((7, 3), (5, 4), (6, 6), (4, 1), (3, 5), (8, 3), (10, 4)):
        adaptive_case(G, 1, (2, 3, L), o)
    adaptive_case(G, 1, (3, 7), 2, label="unbatched")
    for hw, o in (((7, 5), (3, 4)), ((5, 5), 4), ((6, 6), (6, 6)), ((4, 5), 1), ((3, 3), (5, 5)),
                  ((4, 6), (2, 3)), ((7, 3), (3, 5)), ((5, 6), (5, 4))):
        adaptive_case(G, 2, (2, 2) + hw, o)
    adaptive_case(G, 2, (2, 5, 7), (2, 3), label="unbatched")


# ---------------------------------------------------------------- interpolate

INTERP_DEF = {"mode": "nearest", "size": None, "scale_factor": None, "align_corners": None}


def interp_ref(x, osz, mode, ac, sf):
    """The documented index formulas (see the module docstring), differentiable."""
    H, W = x.shape[2:]

    def near(o, In, Out, s):
        scale = 1.0 / s if s is not None else In / Out
        return min(int(math.floor(np.float32(scale * o))), In - 1)

    def lin(o, In, Out, s):
        if Out == In:
            return o, o, 1.0, 0.0
        if ac:
            scale = (In - 1) / (Out - 1) if Out > 1 else 0.0
            r = scale * o
        else:
            scale = 1.0 / s if s is not None else In / Out
            r = max(scale * (o + 0.5) - 0.5, 0.0)
        i0 = int(r)
        i1 = i0 + (1 if i0 < In - 1 else 0)
        l1 = r - i0
        return i0, i1, 1.0 - l1, l1
    sh, sw = (sf if sf is not None else (None, None))
    rows = []
    for i in range(osz[0]):
        cols = []
        for j in range(osz[1]):
            if mode == "nearest":
                cols.append(x[:, :, near(i, H, osz[0], sh), near(j, W, osz[1], sw)])
            else:
                h0, h1, a0, a1 = lin(i, H, osz[0], sh)
                w0, w1, b0, b1 = lin(j, W, osz[1], sw)
                cols.append(a0 * (b0 * x[:, :, h0, w0] + b1 * x[:, :, h0, w1]) +
                            a1 * (b0 * x[:, :, h1, w0] + b1 * x[:, :, h1, w1]))
        rows.append(torch.stack(cols, -1))
    return torch.stack(rows, -2)


def interp_case(G, shape, err=None, label="", **opts):
    x = G.randn(*shape)
    call = dict(opts)

    def f(T):
        out = F.interpolate(T["input"], **call)
        # self-check: forward and backward against the documented formulas
        sf = opts.get("scale_factor")
        if sf is not None:
            sf = tup(sf, 2)
        xr = T["input"].detach().clone().requires_grad_(True)
        r = interp_ref(xr, out.shape[2:], opts.get("mode", "nearest"), opts.get("align_corners"), sf)
        u = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        gp, = torch.autograd.grad((out * u).sum(), T["input"], retain_graph=True)
        gr, = torch.autograd.grad((r * u).sum(), xr)
        assert r.shape == out.shape, (opts, r.shape, out.shape)
        assert torch.allclose(r, out.detach(), rtol=1e-13, atol=1e-13), ("interp fwd", opts)
        assert torch.allclose(gr, gp, rtol=1e-13, atol=1e-13), ("interp bwd", opts)
        return out
    G.run("interpolate", opts, INTERP_DEF, [("input", x)], f, err=err, label=label)


def interpolate_cases(G):
    # Inputs have C >= 2 and H*W > 1: an [N, 1, H, W] tensor also counts as channels-last
    # contiguous and PyTorch 1.13 then takes another kernel (see the docstring).
    for hw, sz in (((3, 4), (5, 7)), ((4, 4), (8, 8)), ((6, 5), (3, 2)), ((5, 5), (5, 3)), ((3, 3), (7, 2)),
                   ((4, 6), (4, 6)), ((2, 3), (1, 7))):
        interp_case(G, (2, 2) + hw, size=sz)
    for hw, sf in (((3, 4), 2.0), ((2, 3), 3.0), ((4, 4), 1.5), ((5, 5), 0.6), ((3, 4), (2.0, 0.5)),
                   ((3, 5), (1.7, 2.6)), ((5, 7), 0.4), ((4, 5), (1.5, 0.6))):
        interp_case(G, (1, 3) + hw, scale_factor=sf)
    for ac in (None, True):
        for hw, sz in (((3, 4), (5, 7)), ((6, 5), (3, 2)), ((4, 4), (8, 8)), ((5, 5), (1, 3)), ((3, 3), (7, 2)),
                       ((2, 2), (5, 5))):
            interp_case(G, (2, 2) + hw, mode="bilinear", size=sz, align_corners=ac)
        for hw, sf in (((3, 4), 2.0), ((4, 4), 1.5), ((5, 5), 0.6), ((3, 4), (2.0, 0.5)), ((3, 5), (1.7, 2.6)),
                       ((5, 7), 0.4)):
            interp_case(G, (1, 2) + hw, mode="bilinear", scale_factor=sf, align_corners=ac)
    interp_case(G, (1, 2, 4, 4), mode="bilinear", size=(6, 6), align_corners=False, label="explicit-false")
    # errors
    interp_case(G, (1, 2, 3, 3), size=(4, 4), scale_factor=2.0, err="value", label="both")
    interp_case(G, (1, 2, 3, 3), mode="bilinear", size=(6, 6), scale_factor=(2.0, 2.0), err="value", label="both")
    interp_case(G, (1, 2, 3, 3), size=(4, 4), align_corners=True, err="value", label="nearest-ac")
    interp_case(G, (1, 2, 3, 3), size=(4, 4, 4), err="value", label="size-len")


# ---------------------------------------------------------------- normalisation

BN_DEF = {"training": True, "momentum": 0.1, "eps": 1e-5, "affine": True, "track_running_stats": True, "steps": REQ}


def bn_case(G, shape, steps=1, err=None, label="", **opts):
    """shape: one call's batch (N, C[, L | H, W])."""
    o = dict(BN_DEF)
    o.pop("steps")
    o.update(opts)
    C = shape[1]
    cls = torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d
    m = cls(C, eps=o["eps"], momentum=o["momentum"], affine=o["affine"], track_running_stats=o["track_running_stats"])
    x = G.randn(steps, *shape)
    w = b = rm = rv = None
    with torch.no_grad():
        if o["affine"]:
            w = G.randn(C, scale=0.5) + 1.0
            b = G.randn(C, scale=0.5)
            m.weight.copy_(w)
            m.bias.copy_(b)
        if o["track_running_stats"]:
            rm = G.randn(C, scale=0.5)
            rv = G.uniform(0.5, 2.0, C)
            m.running_mean.copy_(rm)
            m.running_var.copy_(rv)
    m.train(o["training"])
    allopts = dict(o, steps=steps)
    keys = option_keys(allopts, BN_DEF)
    tag = "-".join(t for t in [label, "d%d" % len(shape), option_tag(allopts, BN_DEF)] if t)
    inputs = [("input", x), ("weight", w), ("bias", b), ("running_mean", rm), ("running_var", rv)]
    try:
        with torch.no_grad():
            for s in range(steps - 1):
                m(x[s])
        m.zero_grad()
        xl = x[steps - 1].clone().requires_grad_(True)
        y = m(xl)
    except ValueError:
        assert err == "value", tag
        return G.emit("batch_norm", tag, keys, inputs, err=err)
    assert err is None, tag
    # self-check: the running statistics follow the documented update
    if o["track_running_stats"] and o["training"]:
        em, ev = rm.clone(), rv.clone()
        red = [0] + list(range(2, len(shape)))
        for s in range(steps):
            f = o["momentum"] if o["momentum"] is not None else 1.0 / (s + 1)
            n = x[s].numel() // C
            mean = x[s].mean(dim=red)
            var = ((x[s] - mean.reshape(1, C, *([1] * (len(shape) - 2)))) ** 2).sum(dim=red) / (n - 1)
            em = (1 - f) * em + f * mean
            ev = (1 - f) * ev + f * var
        assert torch.allclose(em, m.running_mean, rtol=1e-12, atol=1e-13), tag
        assert torch.allclose(ev, m.running_var, rtol=1e-12, atol=1e-13), tag
    u = G.randn(*y.shape)
    (y * u).sum().backward()
    outs = [("upstream", u), ("out", y), ("grad_input", xl.grad)]
    if o["affine"]:
        outs += [("grad_weight", m.weight.grad), ("grad_bias", m.bias.grad)]
    if o["track_running_stats"]:
        outs += [("running_mean_after", m.running_mean), ("running_var_after", m.running_var)]
        keys.append(("num_batches_tracked_after", int(m.num_batches_tracked)))
    return G.emit("batch_norm", tag, keys, inputs, outs=outs)


def batch_norm_cases(G):
    bn_case(G, (4, 3))
    bn_case(G, (5, 3), steps=3)
    bn_case(G, (3, 4, 5), steps=2, momentum=0.3)
    bn_case(G, (2, 3, 3, 4), steps=2)
    bn_case(G, (2, 3, 3, 4), steps=3, momentum=None)
    bn_case(G, (3, 2, 4), steps=3, momentum=None)
    bn_case(G, (4, 3), steps=2, eps=1e-3)
    bn_case(G, (3, 2, 5), steps=2, affine=False)
    bn_case(G, (3, 3, 4), track_running_stats=False)
    bn_case(G, (2, 2, 3, 3), track_running_stats=False, affine=False)
    bn_case(G, (1, 3, 5), steps=2, label="n1")
    bn_case(G, (1, 2, 3, 3), steps=2, momentum=0.3, label="n1")
    bn_case(G, (3, 3), steps=2, momentum=0.0)
    bn_case(G, (3, 3, 2), steps=2, momentum=1.0)
    bn_case(G, (2, 3), label="n2")
    # eval mode
    bn_case(G, (4, 3), training=False)
    bn_case(G, (2, 3, 5), training=False, eps=1e-3)
    bn_case(G, (2, 2, 3, 3), training=False)
    bn_case(G, (3, 2, 4), training=False, affine=False)
    bn_case(G, (1, 3), training=False, label="n1")
    bn_case(G, (3, 3, 4), training=False, track_running_stats=False)
    bn_case(G, (2, 2, 3, 3), training=False, track_running_stats=False, eps=1e-3)
    # errors: one value per channel in training
    bn_case(G, (1, 3), err="value")
    bn_case(G, (1, 3, 1), err="value")
    bn_case(G, (1, 2, 1, 1), err="value")
    bn_case(G, (1, 3), err="value", track_running_stats=False, training=False)


LN_DEF = {"normalized_shape": REQ, "eps": 1e-5}


def ln_case(G, shape, ns, weight=True, bias=True, err=None, label="", values=None, wshape=None, **opts):
    o = dict(normalized_shape=ns, **opts)
    x = values if values is not None else G.randn(*shape)
    w = G.randn(*(wshape or ns), scale=0.5) + 1.0 if weight else None
    b = G.randn(*(wshape or ns), scale=0.5) if bias else None
    G.run("layer_norm", o, LN_DEF, [("input", x), ("weight", w), ("bias", b)],
          lambda T: F.layer_norm(T["input"], ns, T.get("weight"), T.get("bias"), o.get("eps", 1e-5)),
          err=err, label=label + ("" if weight else "now") + ("" if bias else "nob"))


def layer_norm_cases(G):
    ln_case(G, (3, 5), (5,))
    ln_case(G, (2, 3, 4), (4,))
    ln_case(G, (2, 3, 4), (3, 4))
    ln_case(G, (2, 2, 3, 4), (2, 3, 4))
    ln_case(G, (2, 3, 4), (3, 4), bias=False)
    ln_case(G, (2, 3, 4), (4,), weight=False)
    ln_case(G, (4, 6), (6,), weight=False, bias=False)
    ln_case(G, (3, 5), (5,), eps=1e-3)
    ln_case(G, (5,), (5,), label="1d")
    v = G.randn(3, 4)
    v[1] = 2.5
    ln_case(G, None, (4,), values=v, label="constrow")
    ln_case(G, None, (4,), values=v, eps=0.1, weight=False, label="constrow")
    ln_case(G, (2, 5), (5,), values=G.randn(2, 5, scale=1e3) + 1e4, label="large")
    # errors
    ln_case(G, (3, 4), (5,), err="shape", label="ns")
    ln_case(G, (2, 3, 4), (2, 4), err="shape", label="ns")
    ln_case(G, (2, 3, 4), (4,), wshape=(3,), err="shape", label="wshape")


GN_DEF = {"num_groups": REQ, "eps": 1e-5}


def gn_case(G, shape, groups, weight=True, bias=True, err=None, label="", values=None, **opts):
    o = dict(num_groups=groups, **opts)
    x = values if values is not None else G.randn(*shape)
    C = x.shape[1]
    w = G.randn(C, scale=0.5) + 1.0 if weight else None
    b = G.randn(C, scale=0.5) if bias else None
    eps = o.get("eps", 1e-5)

    def f(T):
        if "weight" in T or "bias" not in T:
            return F.group_norm(T["input"], groups, T.get("weight"), T.get("bias"), eps)
        # PyTorch 1.13's backward fails ("tensor does not have a device") for weight=None with a
        # bias: differentiate through a constant weight of ones, which leaves every value unchanged.
        plain = F.group_norm(T["input"].detach(), groups, None, T["bias"].detach(), eps)
        out = F.group_norm(T["input"], groups, torch.ones(C), T["bias"], eps)
        assert torch.equal(plain, out.detach())
        return out
    G.run("group_norm", o, GN_DEF, [("input", x), ("weight", w), ("bias", b)], f,
          err=err, label=label + ("" if weight else "now") + ("" if bias else "nob"))


def group_norm_cases(G):
    gn_case(G, (2, 6, 5), 3)
    gn_case(G, (2, 6, 4, 3), 2)
    gn_case(G, (2, 4, 5), 1)
    gn_case(G, (2, 4, 3, 3), 4)
    gn_case(G, (3, 4), 2)
    gn_case(G, (2, 6, 5), 3, weight=False)
    gn_case(G, (2, 6, 5), 2, bias=False)
    gn_case(G, (2, 4, 5), 2, weight=False, bias=False, eps=1e-3)
    gn_case(G, (1, 6, 2, 2), 3, label="n1")
    v = G.randn(2, 4, 3)
    v[0, 2:] = -1.25
    gn_case(G, None, 2, values=v, label="constgroup")
    gn_case(G, (2, 6, 5), 4, err="shape")
    gn_case(G, (2, 6, 5), 2, weight=False, eps=1e-2)


# ---------------------------------------------------------------- activations

KINKS = [0.0, -3.0, 3.0, -1e-8, 1e-8, 20.0, -20.0, 50.0, -50.0, -1.0, 1.0, 6.0, -6.0, 0.5, -0.5, 2.0, -2.0]

def hardswish_checked(x, o):
    """hardswish, checking that every x == 3 gets gradient 1 (the vectorised rule, see above)."""
    xc = x.detach().clone().requires_grad_(True)
    gr, = torch.autograd.grad(F.hardswish(xc).sum(), xc)
    assert bool((gr[x.detach() == 3.0] == 1.0).all()), "hardswish: x = 3 fell in the scalar tail"
    return F.hardswish(x)


ACTS = {
    "gelu": (lambda x, o: F.gelu(x, **o), {"approximate": "none"}, [{}, {"approximate": "tanh"}]),
    "silu": (lambda x, o: F.silu(x), {}, [{}]),
    "leaky_relu": (lambda x, o: F.leaky_relu(x, **o), {"negative_slope": 0.01},
                   [{}, {"negative_slope": 0.0}, {"negative_slope": -0.5}, {"negative_slope": 2.0}]),
    "elu": (lambda x, o: F.elu(x, **o), {"alpha": 1.0}, [{}, {"alpha": 0.5}, {"alpha": 2.0}]),
    "mish": (lambda x, o: F.mish(x), {}, [{}]),
    "hardswish": (hardswish_checked, {}, [{}]),
    "hardtanh": (lambda x, o: F.hardtanh(x, **o), {"min_val": -1.0, "max_val": 1.0},
                 [{}, {"min_val": -2.0, "max_val": 3.0}, {"min_val": 0.0, "max_val": 6.0}]),
    "hardsigmoid": (lambda x, o: F.hardsigmoid(x), {}, [{}]),
    "softsign": (lambda x, o: F.softsign(x), {}, [{}]),
    "selu": (lambda x, o: F.selu(x), {}, [{}]),
    "celu": (lambda x, o: F.celu(x, **o), {"alpha": 1.0}, [{}, {"alpha": 0.5}, {"alpha": 2.0}]),
    "relu6": (lambda x, o: F.relu6(x), {}, [{}]),
}


def activation_cases(G):
    for op, (fn, dflt, variants) in ACTS.items():
        for vi, o in enumerate(variants):
            full = dict(dflt, **o)
            kinks = list(KINKS) + [v for v in full.values() if isinstance(v, float)]
            kx = torch.tensor(kinks + G.randn(7, scale=2.0).tolist())
            G.run(op, full, dflt, [("input", kx)], lambda T, full=full, fn=fn: fn(T["input"], full), label="kinks")
            G.run(op, full, dflt, [("input", G.randn(2, 3, 5, scale=3.0))],
                  lambda T, full=full, fn=fn: fn(T["input"], full), label="randn")
            if vi == 0:
                nx = torch.tensor([NAN, 0.0, 1.0, -1.0, 3.0, -3.0, NAN, 0.25])
                G.run(op, full, dflt, [("input", nx)], lambda T, full=full, fn=fn: fn(T["input"], full), label="nan")
    G.run("celu", {"alpha": 0.0}, {"alpha": 1.0}, [("input", G.randn(5))],
          lambda T: F.celu(T["input"], alpha=0.0), err="value")


# ---------------------------------------------------------------- reductions and similarity

VAR_DEF = {"dim": None, "unbiased": True, "keepdim": False}


def var_case(G, op, shape, label="", values=None, **opts):
    fn = torch.var if op == "var" else torch.std
    x = values if values is not None else G.randn(*shape)
    o = dict(VAR_DEF, **opts)
    G.run(op, opts, VAR_DEF, [("input", x)],
          lambda T: fn(T["input"], dim=o["dim"], unbiased=o["unbiased"], keepdim=o["keepdim"]), label=label)


def var_std_cases(G):
    for op in ("var", "std"):
        var_case(G, op, (4, 5))
        var_case(G, op, (4, 5), dim=1)
        var_case(G, op, (4, 5), dim=0, keepdim=True)
        var_case(G, op, (4, 5), dim=(0, 1))
        var_case(G, op, (2, 3, 4), dim=(1, 2), unbiased=False)
        var_case(G, op, (2, 3, 4), dim=(0, 2), keepdim=True)
        var_case(G, op, (2, 3, 4), dim=-1)
        var_case(G, op, (2, 3, 4), unbiased=False)
        var_case(G, op, (2, 3), keepdim=True, label="all")
        var_case(G, op, (3, 1), dim=1, label="one")                     # unbiased over one element: nan
        var_case(G, op, (3, 1), dim=1, unbiased=False, label="one")     # biased: 0
        var_case(G, op, (2, 1, 3), dim=(1,), keepdim=True, label="one")
        var_case(G, op, (), label="scalar")                             # full reduction of a 0-d tensor
        var_case(G, op, (2, 0), dim=1, label="empty")                   # reduce an empty dim: nan
        var_case(G, op, (0, 3), dim=1, label="empty")                   # empty result
        var_case(G, op, (2, 0), label="empty")                          # all dims of an empty tensor
        var_case(G, op, None, values=torch.full((2, 4), 1.5), dim=1, label="const")  # std: zero gradient


COS_DEF = {"dim": 1, "eps": 1e-8}


def cos_case(G, s1, s2, label="", v1=None, v2=None, **opts):
    o = dict(COS_DEF, **opts)
    x1 = v1 if v1 is not None else G.randn(*s1)
    x2 = v2 if v2 is not None else G.randn(*s2)

    def f(T):
        out = F.cosine_similarity(T["x1"], T["x2"], dim=o["dim"], eps=o["eps"])
        a, b = torch.broadcast_tensors(T["x1"].detach(), T["x2"].detach())
        n1 = (a * a).sum(o["dim"], keepdim=True).clamp_min(o["eps"] ** 2).sqrt()
        n2 = (b * b).sum(o["dim"], keepdim=True).clamp_min(o["eps"] ** 2).sqrt()
        assert torch.allclose(((a / n1) * (b / n2)).sum(o["dim"]), out.detach(), rtol=1e-13, atol=1e-15)
        return out
    G.run("cosine_similarity", opts, COS_DEF, [("x1", x1), ("x2", x2)], f, label=label)


def cosine_cases(G):
    cos_case(G, (4, 5), (4, 5))
    cos_case(G, (4, 5), (1, 5), label="bcast")
    cos_case(G, (1, 5), (4, 5), label="bcast")
    cos_case(G, (2, 3, 4), (2, 3, 4), dim=-1)
    cos_case(G, (3, 4), (3, 4), dim=0)
    cos_case(G, (2, 3, 4), (3, 4), dim=1, label="bcast")
    cos_case(G, (6,), (6,), dim=0, label="1d")
    z = G.randn(3, 4)
    z[1] = 0.0
    cos_case(G, None, (3, 4), v1=z, label="zero")
    cos_case(G, None, None, v1=torch.zeros(2, 3), v2=torch.zeros(2, 3), label="bothzero")
    cos_case(G, None, (3, 4), v1=G.randn(3, 4, scale=1e-9), label="tiny")
    cos_case(G, None, None, v1=G.randn(3, 4, scale=1e-3), v2=G.randn(3, 4, scale=1e-3), eps=1e-2, label="tiny")


NORM_DEF = {"p": 2.0, "dim": 1, "eps": 1e-12}


def normalize_case(G, shape, label="", values=None, **opts):
    o = dict(NORM_DEF, **opts)
    x = values if values is not None else G.randn(*shape)
    G.run("normalize", opts, NORM_DEF, [("input", x)],
          lambda T: F.normalize(T["input"], p=o["p"], dim=o["dim"], eps=o["eps"]), label=label)


def normalize_cases(G):
    normalize_case(G, (3, 4))
    normalize_case(G, (3, 4), p=1.0)
    normalize_case(G, (3, 4), p=3.0)
    normalize_case(G, (3, 4), p=INF)
    normalize_case(G, (3, 4), dim=0)
    normalize_case(G, (2, 3, 4), dim=-1, p=1.0)
    normalize_case(G, (2, 3, 4), p=INF, dim=2)
    normalize_case(G, (5,), dim=0, label="1d")
    for p in (2.0, 1.0, INF):
        z = G.randn(3, 4)
        z[1] = 0.0
        normalize_case(G, None, values=z, p=p, label="zerorow")
    normalize_case(G, None, values=G.randn(3, 4, scale=1e-4), eps=1e-3, label="tiny")


# ---------------------------------------------------------------- attention

SDPA_DEF = {"mask_kind": "float", "is_causal": False, "scale": None}


def sdpa_case(G, qs, ks, vs, mask=None, label="", **opts):
    """Math reference: softmax(Q K^T * scale + mask) V, all float64."""
    o = dict(SDPA_DEF, **opts)
    q, k, v = G.randn(*qs), G.randn(*ks), G.randn(*vs)
    L, S, E = qs[-2], ks[-2], qs[-1]

    def f(T):
        scale = o["scale"] if o["scale"] is not None else 1.0 / math.sqrt(E)
        s = T["query"] @ T["key"].transpose(-2, -1) * scale
        if o["is_causal"]:
            allowed = torch.ones(L, S, dtype=torch.bool).tril()
            s = s.masked_fill(~allowed, -INF)
        if "attn_mask" in T:
            m = T["attn_mask"]
            s = s.masked_fill(m == 0, -INF) if o["mask_kind"] == "bool" else s + m
        return torch.softmax(s, dim=-1) @ T["value"]
    G.run("scaled_dot_product_attention", opts, SDPA_DEF,
          [("query", q), ("key", k), ("value", v), ("attn_mask", mask)], f, diff=("query", "key", "value"),
          label=label)


def sdpa_cases(G):
    B, H, L, S, E, Ev = 2, 2, 3, 4, 5, 3
    sdpa_case(G, (B, H, L, E), (B, H, S, E), (B, H, S, Ev))
    sdpa_case(G, (B, H, L, E), (B, H, S, E), (B, H, S, Ev), mask=G.randn(L, S), label="fmaskLS")
    sdpa_case(G, (B, H, L, E), (B, H, S, E), (B, H, S, Ev), mask=G.randn(B, 1, L, S), label="fmaskB1LS")
    sdpa_case(G, (B, H, L, E), (B, H, S, E), (B, H, S, Ev), mask=G.randn(B, H, L, S), label="fmaskBHLS")
    fm = G.randn(L, S)
    fm[0, 1] = fm[2, 3] = -INF
    sdpa_case(G, (B, H, L, E), (B, H, S, E), (B, H, S, Ev), mask=fm, label="fmask-inf")
    bm = torch.tensor([[1, 0, 1, 1], [1, 1, 0, 0], [0, 0, 0, 1]], dtype=torch.int64)
    sdpa_case(G, (B, H, L, E), (B, H, S, E), (B, H, S, Ev), mask=bm, mask_kind="bool", label="bmask")
    bm2 = torch.tensor([[1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 0, 1]], dtype=torch.int64)
    sdpa_case(G, (B, H, L, E), (B, H, S, E), (B, H, S, Ev), mask=bm2, mask_kind="bool", label="bmask-fullrow")
    sdpa_case(G, (B, H, 4, E), (B, H, 4, E), (B, H, 4, Ev), is_causal=True)
    sdpa_case(G, (B, H, 3, E), (B, H, 5, E), (B, H, 5, Ev), is_causal=True, label="LltS")
    sdpa_case(G, (B, H, 5, E), (B, H, 3, E), (B, H, 3, Ev), is_causal=True, label="LgtS")
    sdpa_case(G, (B, H, L, E), (B, H, S, E), (B, H, S, Ev), scale=0.5)
    sdpa_case(G, (B, H, 1, E), (B, H, S, E), (B, H, S, Ev), label="L1")
    sdpa_case(G, (B, L, E), (B, S, E), (B, S, Ev), label="3d")
    sdpa_case(G, (B, L, E), (B, S, E), (B, S, Ev), mask=bm, mask_kind="bool", label="3d-bmask")
    sdpa_case(G, (B, 4, E), (B, 4, E), (B, 4, Ev), is_causal=True, scale=0.25, label="3d")
    sdpa_case(G, (B, L, E), (B, S, E), (B, S, Ev), mask=G.randn(B, L, S), label="3d-fmaskBLS")
    sdpa_case(G, (1, 2, L, 4), (1, 2, S, 4), (1, 2, S, 4), scale=8.0, label="sharp")


MHA_DEF = {"embed_dim": REQ, "num_heads": REQ, "bias": True, "batch_first": False,
           "self_attention": False, "causal": False}


def mha_case(G, E, heads, L, S, N, bias=True, batch_first=False, self_attn=False, kpm=None, mask=None,
             causal=False, label=""):
    opts = dict(embed_dim=E, num_heads=heads, bias=bias, batch_first=batch_first, self_attention=self_attn,
                causal=causal)
    m = torch.nn.MultiheadAttention(E, heads, bias=bias, batch_first=batch_first)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(G.randn(*p.shape, scale=0.4))

    def shp(T):
        if N is None:
            return (T, E)
        return (N, T, E) if batch_first else (T, N, E)
    q = G.randn(*shp(L))
    k = v = None
    if not self_attn:
        k, v = G.randn(*shp(S)), G.randn(*shp(S))
    if causal:
        mask = torch.triu(torch.full((L, S), -INF), 1)
    params = [(n, p.detach().clone()) for n, p in m.named_parameters()]
    inputs = [("query", q), ("key", k), ("value", v), ("key_padding_mask", kpm),
              ("attn_mask", None if causal else mask)] + params
    keys = option_keys(opts, MHA_DEF)
    tag = "-".join(t for t in [label, option_tag(opts, MHA_DEF)] if t)
    ql = q.clone().requires_grad_(True)
    kl = vl = ql
    if not self_attn:
        kl, vl = k.clone().requires_grad_(True), v.clone().requires_grad_(True)
    out, w = m(ql, kl, vl, key_padding_mask=None if kpm is None else kpm.bool(), need_weights=False,
               attn_mask=mask)
    assert w is None
    u = G.randn(*out.shape)
    m.zero_grad()
    (out * u).sum().backward()
    outs = [("upstream", u), ("out", out), ("grad_query", ql.grad)]
    if not self_attn:
        outs += [("grad_key", kl.grad), ("grad_value", vl.grad)]
    outs += [("grad_" + n, p.grad) for n, p in m.named_parameters()]
    G.emit("multi_head_attention", tag, keys, inputs, outs=outs)


def mha_cases(G):
    mha_case(G, 8, 2, 4, 4, 2, self_attn=True)
    mha_case(G, 8, 2, 4, 4, 2, self_attn=True, batch_first=True)
    mha_case(G, 8, 2, 3, 5, 2)
    mha_case(G, 8, 2, 3, 5, 2, batch_first=True, bias=False)
    mha_case(G, 6, 1, 4, 4, 2, self_attn=True, bias=False)
    mha_case(G, 8, 4, 3, 4, 2, kpm=torch.tensor([[0, 0, 1, 0], [0, 0, 0, 1]]))
    mha_case(G, 8, 2, 4, 4, 2, self_attn=True, mask=G.randn(4, 4))
    mha_case(G, 8, 2, 5, 5, 2, self_attn=True, causal=True)
    mha_case(G, 8, 2, 4, 4, 2, self_attn=True, causal=True, batch_first=True,
             kpm=torch.tensor([[0, 0, 0, 1], [0, 1, 0, 0]]))
    mha_case(G, 8, 2, 3, 5, 2, batch_first=True, mask=G.randn(3, 5), kpm=torch.tensor([[1, 0, 0, 0, 0],
                                                                                         [0, 0, 0, 1, 1]]))
    mha_case(G, 6, 3, 4, 4, 1, causal=True, label="n1")
    mha_case(G, 8, 2, 3, 4, None, label="unbatched")
    mha_case(G, 4, 2, 4, 4, 2, self_attn=True, bias=False, mask=G.randn(4, 4))


# ---------------------------------------------------------------- main

FAMILIES = [conv1d_cases, conv2d_cases, conv_transpose2d_cases, max_pool1d_cases, max_pool2d_cases,
            avg_pool1d_cases, avg_pool2d_cases, adaptive_cases, interpolate_cases, batch_norm_cases,
            layer_norm_cases, group_norm_cases, activation_cases, var_std_cases, cosine_cases, normalize_cases,
            sdpa_cases, mha_cases]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--out", default="tests/fixtures/nn/layers.txt")
    args = ap.parse_args()
    torch.set_num_threads(1)
    G = Gen(args.seed)
    for fam in FAMILIES:
        fam(G)
    d = os.path.dirname(args.out)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(args.out, "w") as f:
        f.write(f"lossgrad-nn-fixture 1\n# tools/gen_layer_fixtures.py --seed {args.seed}, torch {torch.__version__}\n")
        for _, lines in G.records:
            f.writelines(lines)
    counts = {}
    for op, _ in G.records:
        counts[op] = counts.get(op, 0) + 1
    print(f"{args.out}: {len(G.records)} cases, " + ", ".join(f"{k} {v}" for k, v in counts.items()),
          file=sys.stderr)


if __name__ == "__main__":
    main()
