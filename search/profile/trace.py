"""Per-operator trace of a model's forward pass: MACs, memory traffic and op kinds.

The model runs once on the ``meta`` device (shapes only, no arithmetic), so tracing a
Full-HD forward of any model costs milliseconds. A :class:`TorchDispatchMode` records every
ATen operator with its input and output shapes. Each record carries

* ``macs``: multiply-accumulates under the suite convention (see :mod:`search.profile.flops`),
* ``other_ops``: element operations that are not multiplications (additions, comparisons,
  transcendental functions such as exp/tanh/sigmoid),
* ``bytes_read`` / ``bytes_written``: the activation and weight traffic of the operator if
  every input is read once and every output written once, at the profiled dtype.

Views (``split``, ``view``, ``permute`` ...) move no data and are dropped. Models whose
forward depends on data (masks computed from activations) cannot run on ``meta``; for them
:func:`trace_ops` runs the forward on CPU with real (random) data instead.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Iterable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

# Operators that only re-interpret memory (no copy); they cost nothing in the trace.
_VIEW_OPS = {
    "view", "_unsafe_view", "reshape", "split", "split_with_sizes", "chunk", "unbind",
    "slice", "select", "narrow", "permute", "transpose", "t", "expand", "squeeze",
    "unsqueeze", "alias", "detach", "as_strided", "lift_fresh", "unfold", "diagonal",
    "empty", "empty_like", "empty_strided", "_to_copy_noop",
}

# Element-wise operators by cost class (per output element).
_MULTIPLY_OPS = {"mul", "div", "_prelu_kernel", "prelu", "addcmul", "lerp", "reciprocal"}
_TRANSCENDENTAL_OPS = {
    "tanh", "sigmoid", "exp", "log", "sqrt", "rsqrt", "pow", "gelu", "silu", "erf",
    "softplus", "hardswish", "hardsigmoid", "elu", "log_sigmoid_forward", "mish",
}
_COMPARE_OPS = {
    "relu", "leaky_relu", "clamp", "clamp_min", "clamp_max", "hardtanh", "threshold",
    "maximum", "minimum", "where", "abs", "neg", "sign", "gt", "lt", "ge", "le", "eq", "ne",
}
_ADD_OPS = {"add", "sub", "rsub"}
_REDUCTION_OPS = {"sum", "mean", "max", "min", "amax", "amin", "var", "std", "var_mean",
                  "std_mean", "argmax", "argmin", "logsumexp", "norm", "linalg_vector_norm"}
_SOFTMAX_OPS = {"_softmax", "softmax", "_log_softmax", "log_softmax"}
_SHUFFLE_OPS = {"pixel_shuffle", "pixel_unshuffle", "clone", "contiguous", "copy",
                "copy_", "cat", "stack", "constant_pad_nd", "reflection_pad2d",
                "replication_pad2d", "roll", "flip", "index", "gather", "index_select",
                "masked_select", "nonzero", "repeat", "_to_copy", "to", "fill", "fill_",
                "zeros", "zeros_like", "ones", "ones_like", "full", "full_like", "new_zeros",
                "scatter", "index_put", "index_put_", "masked_fill", "masked_scatter"}
_POOL_OPS = {"avg_pool2d", "max_pool2d", "max_pool2d_with_indices", "adaptive_avg_pool2d",
             "_adaptive_avg_pool2d", "adaptive_max_pool2d", "mean"}
_RESIZE_OPS = {"upsample_bilinear2d", "upsample_bicubic2d", "upsample_nearest2d",
               "_upsample_bilinear2d_aa", "_upsample_bicubic2d_aa", "grid_sampler_2d"}


@dataclass
class OpRecord:
    """One traced operator."""

    op: str            # ATen name without namespace/overload, e.g. "convolution"
    kind: str          # conv, conv_transpose, matmul, multiply, add, transcendental, compare,
                       # reduction, softmax, shuffle, resize, other
    macs: int
    other_ops: int
    bytes_read: int
    bytes_written: int
    out_elements: int
    out_channels: int
    kernel: int        # kernel height*width for convolutions, else 0
    in_channels: int = 0
    approximate: bool = False  # scaled from a smaller real-data trace (see trace_ops)

    def as_dict(self) -> dict:
        return asdict(self)


def _numel(shape: Iterable[int]) -> int:
    return int(math.prod(int(s) for s in shape))


def _tensors(obj) -> list[torch.Tensor]:
    return [t for t in tree_flatten(obj)[0] if isinstance(t, torch.Tensor)]


def _channels(shape: tuple[int, ...]) -> int:
    return int(shape[1]) if len(shape) >= 2 else 1


def classify(op: str, inputs: list[torch.Tensor], outputs: list[torch.Tensor], args) -> tuple[str, int, int]:
    """``(kind, macs, other_ops)`` of one ATen call under the suite's MAC convention."""
    out_elems = sum(t.numel() for t in outputs)
    first_out = outputs[0].numel() if outputs else 0
    if op in ("convolution", "_convolution", "conv2d", "conv1d", "conv3d", "conv_transpose2d"):
        x, w = inputs[0], inputs[1]
        transposed = bool(args[6]) if len(args) > 6 else op == "conv_transpose2d"
        # a transposed conv applies its whole kernel at every *input* position (as fvcore)
        spatial = x.shape[2:] if transposed else outputs[0].shape[2:]
        # weight (Cout, Cin/groups, k...) or (Cin, Cout/groups, k...): groups are folded in
        macs = int(x.shape[0]) * _numel(w.shape) * _numel(spatial)
        bias_adds = first_out if len(inputs) > 2 else 0
        return ("conv_transpose" if transposed else "conv"), macs, bias_adds
    if op in ("mm", "bmm", "addmm", "matmul", "linear", "baddbmm"):
        a = inputs[1] if op in ("addmm", "baddbmm") else inputs[0]
        inner = int(a.shape[-1])
        return "matmul", first_out * inner, 0
    if op in _MULTIPLY_OPS:
        return "multiply", out_elems, 0
    if op in _SOFTMAX_OPS:
        # exp + running sum per element (other ops), one normalising division (a multiply)
        return "softmax", first_out, 2 * first_out
    if op in _TRANSCENDENTAL_OPS:
        return "transcendental", 0, out_elems
    if op in _COMPARE_OPS:
        return "compare", 0, out_elems
    if op in _ADD_OPS:
        return "add", 0, out_elems
    if op in _POOL_OPS or op in _REDUCTION_OPS:
        in_elems = inputs[0].numel() if inputs else 0
        return "reduction", 0, in_elems
    if op in _RESIZE_OPS:
        taps = 16 if "bicubic" in op else (4 if "bilinear" in op or "grid" in op else 0)
        return "resize", taps * first_out, 0
    if op in _SHUFFLE_OPS:
        return "shuffle", 0, 0
    return "other", 0, out_elems


class _Recorder(TorchDispatchMode):
    def __init__(self, bytes_per_element: int):
        super().__init__()
        self.bytes_per_element = bytes_per_element
        self.records: list[OpRecord] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        base = func.overloadpacket.__name__.rstrip("_")  # in-place add_ counts as add
        if base in _VIEW_OPS:
            return out
        inputs = _tensors((args, kwargs))
        outputs = _tensors(out)
        if base in ("max", "min") and isinstance(out, tuple) and len(outputs) == 2:
            outputs = outputs[:1]  # the indices of max(dim) are rarely used downstream
        kind, macs, other = classify(base, inputs, outputs, args)
        size = self.bytes_per_element
        read = sum(t.numel() for t in inputs) * size
        written = sum(t.numel() for t in outputs) * size
        main_out = outputs[0].shape if outputs else ()
        kernel = _numel(inputs[1].shape[2:]) if kind.startswith("conv") and len(inputs) > 1 else 0
        if kind == "conv_transpose":
            out_channels = int(inputs[1].shape[1])
        elif kind == "conv":
            out_channels = int(inputs[1].shape[0])
        else:
            out_channels = _channels(tuple(main_out)) if main_out else 0
        self.records.append(OpRecord(
            op=base, kind=kind, macs=int(macs), other_ops=int(other),
            bytes_read=int(read), bytes_written=int(written),
            out_elements=sum(t.numel() for t in outputs), out_channels=out_channels,
            kernel=kernel,
            in_channels=_channels(tuple(inputs[0].shape)) if inputs else 0,
        ))
        return out


def input_channels(model: nn.Module) -> int:
    return 1 if getattr(model, "color", "rgb") == "gray" else 3


def trace_ops(model: nn.Module, lr_shape: tuple[int, int], *, bytes_per_element: int = 4,
              batch: int = 1, max_real_pixels: int = 64 * 64) -> list[OpRecord]:
    """Trace one forward pass at LR input ``lr_shape = (h, w)``; returns one record per op.

    Runs on ``meta`` (no arithmetic). A model whose forward needs real values (masks from
    activations: SMSR, AdaDSR) runs on CPU with random input instead, at a reduced size of
    at most ``max_real_pixels`` LR pixels; its per-operator counts are then scaled by the
    pixel ratio and marked ``approximate`` (weights and pooled tensors do not scale, but
    they are negligible next to Full-HD activations).
    """
    h, w = (int(v) for v in lr_shape)
    was_training = model.training
    try:
        meta_model = copy.deepcopy(model).to("meta").eval()
        recorder = _Recorder(bytes_per_element)
        with torch.no_grad(), recorder:
            meta_model(torch.empty((batch, input_channels(model), h, w), device="meta"))
        return recorder.records
    except Exception:  # data-dependent control flow: run for real on CPU, smaller
        shrink = max(1.0, math.sqrt(h * w / max_real_pixels))
        small = (max(8, round(h / shrink)), max(8, round(w / shrink)))
        ratio = (h * w) / (small[0] * small[1])
        cpu_model = copy.deepcopy(model).to("cpu").float().eval()
        generator = torch.Generator().manual_seed(0)
        x = torch.rand((batch, input_channels(model), *small), generator=generator)
        recorder = _Recorder(bytes_per_element)
        with torch.no_grad(), recorder:
            cpu_model(x)
        if ratio == 1.0:
            return recorder.records
        return [OpRecord(op=r.op, kind=r.kind, macs=round(r.macs * ratio),
                         other_ops=round(r.other_ops * ratio),
                         bytes_read=round(r.bytes_read * ratio),
                         bytes_written=round(r.bytes_written * ratio),
                         out_elements=round(r.out_elements * ratio), out_channels=r.out_channels,
                         kernel=r.kernel, in_channels=r.in_channels, approximate=True)
                for r in recorder.records]
    finally:
        model.train(was_training)


def summarize(records: list[OpRecord]) -> dict[str, float]:
    """Totals over a trace: macs, other_ops, bytes, counts per kind."""
    summary: dict[str, float] = {"macs": 0, "other_ops": 0, "bytes_read": 0,
                                 "bytes_written": 0, "ops": 0}
    for rec in records:
        summary["macs"] += rec.macs
        summary["other_ops"] += rec.other_ops
        summary["bytes_read"] += rec.bytes_read
        summary["bytes_written"] += rec.bytes_written
        summary["ops"] += 1
        summary[f"n_{rec.kind}"] = summary.get(f"n_{rec.kind}", 0) + 1
        summary[f"macs_{rec.kind}"] = summary.get(f"macs_{rec.kind}", 0) + rec.macs
        summary[f"bytes_{rec.kind}"] = summary.get(f"bytes_{rec.kind}", 0) + rec.bytes_read + rec.bytes_written
    return summary
