"""Measured latency: warm-up, repeats, median and spread, fixed threads, fp16 on CUDA.

Each timed run is one forward pass of a batch of one at the declared LR input size. CUDA
work is asynchronous, so the device is synchronised before the clock starts and before it
stops. fp16 is used only where the profile asks for it *and* the torch device is CUDA (CPU
half-precision convolutions are slow emulations, not what an fp16 device does).
"""

from __future__ import annotations

import copy
import os
import socket
import statistics
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from search.errors import UserError
from search.profile.trace import input_channels
from search.torch_device import resolve_torch_device  # noqa: F401  (re-exported)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure_latency(
    model: nn.Module,
    lr_shape: tuple[int, int],
    *,
    device: str = "cpu",
    dtype: str = "float32",
    warmup: int = 2,
    repeats: int = 7,
    threads: int | None = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Time ``repeats`` forward passes after ``warmup`` ones; milliseconds.

    Returns ``latency_ms`` (median), ``latency_iqr_ms`` (75th - 25th percentile),
    ``latency_std_ms``, ``latency_min_ms``, ``latency_repeats``, and what was used:
    ``latency_torch_device``, ``latency_dtype``, ``latency_threads``, ``latency_node``
    (hostname:pid of the measuring process).
    """
    if repeats < 1:
        raise UserError(f"repeats must be >= 1, got {repeats}")
    torch_device = resolve_torch_device(device)
    used_dtype = dtype if (torch_device.type == "cuda" or dtype == "float32") else "float32"
    h, w = (int(v) for v in lr_shape)
    bench = copy.deepcopy(model).eval().to(torch_device, _DTYPES[used_dtype])
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand((1, input_channels(model), h, w), generator=generator)
    x = x.to(torch_device, _DTYPES[used_dtype])
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    if torch_device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the eSR authors' run.py
    times: list[float] = []
    try:
        with torch.inference_mode():
            for _ in range(max(0, warmup)):
                bench(x)
            _synchronize(torch_device)
            for _ in range(repeats):
                _synchronize(torch_device)
                start = time.perf_counter()
                bench(x)
                _synchronize(torch_device)
                times.append((time.perf_counter() - start) * 1000.0)
    finally:
        torch.set_num_threads(previous_threads)
    q25, q75 = np.percentile(times, [25, 75])
    return {
        "latency_ms": float(statistics.median(times)),
        "latency_iqr_ms": float(q75 - q25),
        "latency_std_ms": float(np.std(times)),
        "latency_min_ms": float(min(times)),
        "latency_repeats": int(repeats),
        "latency_torch_device": str(torch_device),
        "latency_dtype": used_dtype,
        "latency_threads": int(threads) if threads else torch.get_num_threads(),
        "latency_node": f"{socket.gethostname()}:{os.getpid()}",
    }
