"""FLOPs (= multiply-accumulates, MACs) and parameter counts.

Convention (the eSR, IMDN and SMSR papers'): one multiply with its accumulate is one FLOP.
Counted with fvcore's :class:`FlopCountAnalysis`, plus handles for the operators fvcore does
not count, so that every multiplication is counted once and nothing else is:

==========================  ===========================================================
operator                    MACs
==========================  ===========================================================
conv / transposed conv      fvcore's count (a transposed conv applies its whole kernel
                            at every *input* position)
linear / matmul / bmm       fvcore's count
mul, div, PReLU             1 per output element (a multiplication each)
softmax                     1 per element (the normalising division; exp and the sum
                            are not multiplications)
batch norm (inference)      1 per element (a fused scale; the shift is an addition)
bilinear / bicubic resize   4 / 16 per output element; nearest 0
pixel (un)shuffle, cat,     0 (data movement)
pad, copies
add/sub, max/min/sum/mean,  0 (additions, comparisons, transcendental functions)
ReLU, tanh, sigmoid, exp
==========================  ===========================================================

So ``eSR-MAX`` costs ``s^2 C K^2`` MACs per LR pixel and ``eSR-TM`` ``s^2 C (2 K^2 + 2)``
(conv, softmax division, value x weight). Models that compute on a subset of positions
(SMSR, AdaDSR) define ``count_macs(lr_shape)`` and are counted by it.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import nn

from search.profile.trace import input_channels, summarize, trace_ops

# (height, width) of the HR output at which the IMDN and SMSR papers count Mult-Adds / FLOPs
# (published/REPORTED.md: IMDN's Mult-Adds and SMSR's FLOPs are for a 1280x720 HR output), so
# the suite's paper tables and experiments count MACs there too: an LR input of 720/s x 1280/s
# (``lr_shape_for``; floored where 1280/3 is fractional).
PAPER_HR_SIZE = (720, 1280)


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not: the fixed bicubic filter counts too)."""
    return int(sum(p.numel() for p in model.parameters()))


def lr_shape_for(model: nn.Module, output_size: tuple[int, int]) -> tuple[int, int]:
    """LR input (h, w) that gives the HR ``output_size`` for the model's scale."""
    scale = int(getattr(model, "scale", 1) or 1)
    height, width = (int(v) for v in output_size)
    return (max(1, height // scale), max(1, width // scale))


def _shape(value) -> list[int] | None:
    try:
        sizes = value.type().sizes()
    except RuntimeError:
        return None
    return list(sizes) if sizes is not None else None


def _per_output_element(multiplier: float):
    def handle(inputs: list[Any], outputs: list[Any]) -> int:
        shape = _shape(outputs[0])
        return int(multiplier * math.prod(shape)) if shape else 0
    return handle


def _zero(inputs: list[Any], outputs: list[Any]) -> int:
    return 0


_EXTRA_HANDLES = {
    "aten::mul": _per_output_element(1), "aten::mul_": _per_output_element(1),
    "aten::div": _per_output_element(1), "aten::div_": _per_output_element(1),
    "aten::prelu": _per_output_element(1), "aten::_prelu_kernel": _per_output_element(1),
    "aten::softmax": _per_output_element(1), "aten::_softmax": _per_output_element(1),
    "aten::log_softmax": _per_output_element(1),
    "aten::batch_norm": _per_output_element(1),
    "aten::upsample_bilinear2d": _per_output_element(4),
    "aten::upsample_bicubic2d": _per_output_element(16),
    "aten::upsample_nearest2d": _zero,
    "aten::adaptive_avg_pool2d": _zero,
}
_ZERO_OPS = (
    "pixel_shuffle pixel_unshuffle add add_ sub sub_ rsub sum mean max min amax amin var std "
    "relu relu_ leaky_relu leaky_relu_ tanh tanh_ sigmoid sigmoid_ exp gelu silu hardtanh "
    "clamp_min clamp_max abs neg sqrt rsqrt pow avg_pool2d max_pool2d max_pool2d_with_indices "
    "reflection_pad2d replication_pad2d repeat clone where masked_fill_ sort argmax round "
    "pad softplus elu hardswish hardsigmoid sign maximum minimum lt gt le ge eq ne ones_like "
    "fill_ bitwise_and bitwise_or logical_and logical_not randn rand normal_ uniform_ "
    "contiguous index_select scatter scatter_ topk cumsum"
).split()


def flop_analysis(model: nn.Module, lr_shape: tuple[int, int], *, batch: int = 1):
    """A configured :class:`fvcore.nn.FlopCountAnalysis` of one forward at ``lr_shape``."""
    from fvcore.nn import FlopCountAnalysis

    h, w = (int(v) for v in lr_shape)
    x = torch.rand((batch, input_channels(model), h, w), generator=torch.Generator().manual_seed(0))
    analysis = FlopCountAnalysis(model, (x,))
    for name, handle in _EXTRA_HANDLES.items():
        analysis.set_op_handle(name, handle)
    for op in _ZERO_OPS:
        analysis.set_op_handle(f"aten::{op}", _zero)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    analysis.tracer_warnings("none")
    return analysis


def count_flops(model: nn.Module, lr_shape: tuple[int, int]) -> int:
    """MACs of one forward pass at LR input ``lr_shape = (h, w)`` (batch 1).

    Models defining ``count_macs(lr_shape)`` (sparse/adaptive ones) are counted by it.
    Otherwise fvcore traces the forward (on CPU, eval mode, no grad); if the model cannot be
    traced by TorchScript, the per-operator trace of :mod:`search.profile.trace` is used.
    """
    lr_shape = (int(lr_shape[0]), int(lr_shape[1]))
    custom = getattr(model, "count_macs", None)
    if callable(custom):
        return int(custom(lr_shape))
    return int(flops_breakdown(model, lr_shape)["total"])


def flops_breakdown(model: nn.Module, lr_shape: tuple[int, int]) -> dict[str, Any]:
    """``{"total": MACs, "by_operator": {...}, "unsupported": {...}, "backend": ...}``."""
    was_training = model.training
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        cpu_model = model.to("cpu").eval()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analysis = flop_analysis(cpu_model, lr_shape)
            total = int(analysis.total())
            by_operator = {k: int(v) for k, v in analysis.by_operator().items()}
            unsupported = {k: int(v) for k, v in analysis.unsupported_ops().items()}
        return {"total": total, "by_operator": by_operator, "unsupported": unsupported,
                "backend": "fvcore"}
    except Exception:  # not traceable by TorchScript: fall back to the dispatch trace
        records = trace_ops(model, lr_shape)
        by_kind: dict[str, int] = {}
        for rec in records:
            by_kind[rec.kind] = by_kind.get(rec.kind, 0) + rec.macs
        return {"total": int(summarize(records)["macs"]), "by_operator": by_kind,
                "unsupported": {}, "backend": "trace"}
    finally:
        model.to(device)
        model.train(was_training)
