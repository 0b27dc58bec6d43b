"""Evaluate SR models on test sets under a protocol, fast enough to run inside search trials.

Prepared samples (LR input + metric target per image, scale, colour and protocol) are
cached in memory (:mod:`search.data.samples`), so evaluating many models on the same sets
pays image decoding and MATLAB resizing once. Inference runs under ``torch.inference_mode``; metrics run in torch.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from torch import nn

from search.data.datasets import TestSet, find_test_set
from search.data.protocols import Protocol, Sample, get_protocol  # noqa: F401 (search.evaluate's API)
from search.data.samples import clear_cache, prepare_sample, prepare_samples  # noqa: F401 (API)
from search.errors import UserError
from search.evaluate.metrics import psnr, ssim, ssim_reference
from search.models.registry import default_protocol_name, resolve_protocol  # noqa: F401 (API)
from search.torch_device import resolve_torch_device

def model_color(model: nn.Module) -> str:
    color = getattr(model, "color", None)
    if color in ("gray", "rgb"):
        return color
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return "gray" if first is not None and first.in_channels == 1 else "rgb"


def _as_test_sets(test_sets, data_root) -> list[TestSet]:
    if isinstance(test_sets, (str, os.PathLike, TestSet)):
        test_sets = [test_sets]
    return [find_test_set(t, data_root=data_root) for t in test_sets]


def sample_reference(sample: Sample, border: int, device: torch.device) -> dict:
    """The shaved float32 target on ``device`` and its SSIM statistics, once per sample."""
    key = (str(device), int(border))
    ref = sample.extras.get(key)
    if ref is None:
        height, width = sample.target.shape[-2:]
        target = sample.target[border:height - border, border:width - border]
        target = target.to(device=device, dtype=torch.float32).contiguous()
        ref = {"target": target, "ssim": ssim_reference(target, border=0), "size": (height, width)}
        sample.extras[key] = ref
    return ref


def _model_dtype(model: nn.Module) -> torch.dtype:
    param = next(model.parameters(), None)
    return param.dtype if param is not None else torch.float32


def _fit_output(sr: torch.Tensor, size: tuple[int, int], border: int, model: nn.Module,
                image: Path) -> torch.Tensor:
    """Crop the output to the HR size, then shave ``border`` pixels."""
    height, width = size
    if sr.shape[-2] < height or sr.shape[-1] < width:
        name = getattr(model, "model_id", type(model).__name__)
        raise UserError(f"model {name} returned {tuple(sr.shape[-2:])} for {image.name}, "
                        f"expected at least {(height, width)}")
    return sr[..., border:height - border, border:width - border]


@contextlib.contextmanager
def _ieee_fp32(device: torch.device):
    """On CUDA, convolutions and matmuls in full fp32 for the call (TF32 off, then restored).

    cuDNN convolutions default to TF32 on Ampere and later GPUs, which keeps 10 mantissa
    bits: scores would then depend on the GPU. Evaluation is not the bottleneck of a trial.
    """
    if device.type != "cuda":
        yield
        return
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def evaluate_model(model: nn.Module, test_sets, *, protocol: str | Protocol | None = None,
                   device: str | torch.device = "cpu", data_root: str | os.PathLike | None = None,
                   progress: bool = True, scale: int | None = None) -> dict[str, dict]:
    """PSNR/SSIM of ``model`` on each test set: ``{name: {"psnr", "ssim", "images"}}``.

    ``test_sets``: names (resolved under the data roots), folders or :class:`TestSet`.
    ``protocol=None`` uses the model family's default protocol. Values are means over the
    images of a set (PSNR in dB averaged per image, as in the SR literature). On CUDA the
    model runs in full fp32 (TF32 off during the call), so scores match the CPU's.
    """
    sets = _as_test_sets(test_sets, data_root)
    proto = resolve_protocol(model, protocol)
    color = model_color(model)
    scale = int(scale if scale is not None else getattr(model, "scale", 0) or 0)
    if scale < 1:
        raise UserError(f"model {getattr(model, 'model_id', type(model).__name__)} has no scale")
    device = resolve_torch_device(device)
    dtype = torch.float16 if proto.precision == "fp16" else _model_dtype(model)
    was_training = model.training
    model.eval()
    if proto.precision == "fp16":
        model.half()
    model.to(device)
    total = sum(len(s.images) for s in sets)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=getattr(model, "model_id", "model"), unit="img",
                   leave=False, dynamic_ncols=True)
    results: dict[str, dict] = {}
    try:
        with torch.inference_mode(), _ieee_fp32(device):
            for test_set in sets:
                psnrs, ssims = [], []
                for image_path in test_set.images:
                    sample = prepare_sample(test_set, image_path, scale, color, proto)
                    border = proto.border(scale)
                    ref = sample_reference(sample, border, device)
                    sr = model(sample.lr.to(device=device, dtype=dtype))
                    sr = _fit_output(sr, ref["size"], border, model, image_path)
                    pred = proto.output_to_metric(sr, color, sample.gray_image)
                    psnrs.append(psnr(pred, ref["target"]))
                    ssims.append(ssim(pred, reference=ref["ssim"]))
                    if bar is not None:
                        bar.update(1)
                results[test_set.name] = {
                    "psnr": float(np.mean(psnrs)),
                    "ssim": float(np.mean(ssims)),
                    "images": len(psnrs),
                }
    finally:
        if bar is not None:
            bar.close()
        if proto.precision == "fp16":
            model.float()
        model.train(was_training)
    return results


def evaluate_models(models: Iterable[nn.Module], test_sets, **kwargs) -> dict[str, dict[str, dict]]:
    """:func:`evaluate_model` for many models sharing the sample cache: ``{model_id: result}``."""
    out = {}
    for model in models:
        out[getattr(model, "model_id", str(len(out)))] = evaluate_model(model, test_sets, **kwargs)
    return out
