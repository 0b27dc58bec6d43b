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
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
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


@dataclass
class Timing:
    """Clock readings of the timed calls of one callable, in seconds, in the order made."""

    wall_s: list[float] = field(default_factory=list)  # time.perf_counter
    cpu_s: list[float] = field(default_factory=list)   # time.process_time (this process, all threads)
    result: Any = None                                 # what the last timed call returned


def time_calls(calls: Mapping[Hashable, Callable[[], Any]], *, repeats: int = 1, warmup: int = 0,
               interleave: bool = False, synchronize: Callable[[], None] | None = None) -> dict[Hashable, Timing]:
    """The suite's one timer: wall-clock and process CPU time of each call of each callable.

    Every callable is first called ``warmup`` times untimed (in the mapping's order), then
    ``repeats`` times timed: one callable after the other (all repeats of the first, then of
    the second, ...), or with ``interleave`` round by round, the first callable of a round
    rotating (round ``r`` starts with the ``r % n``-th), so that load from other processes
    falls on every callable alike. ``synchronize`` (e.g. CUDA's) runs after the warm-up and
    before and after each timed call, inside the CPU clock and outside the wall clock's start.
    """
    if repeats < 1:
        raise UserError(f"repeats must be >= 1, got {repeats}")
    sync = synchronize or (lambda: None)
    for fn in calls.values():
        for _ in range(max(0, warmup)):
            fn()
    sync()
    timings = {key: Timing() for key in calls}
    keys = list(calls)

    def timed(key) -> None:
        sync()
        cpu = time.process_time()
        start = time.perf_counter()
        result = calls[key]()
        sync()
        wall = time.perf_counter() - start
        timings[key].cpu_s.append(time.process_time() - cpu)
        timings[key].wall_s.append(wall)
        timings[key].result = result

    if interleave:
        for round_index in range(repeats):
            shift = round_index % len(keys) if keys else 0
            for key in keys[shift:] + keys[:shift]:
                timed(key)
    else:
        for key in keys:
            for _ in range(repeats):
                timed(key)
    return timings


def time_call(fn: Callable[[], Any], *, repeats: int = 1, warmup: int = 0,
              synchronize: Callable[[], None] | None = None) -> Timing:
    """:func:`time_calls` of one callable (``repeats=1``: how long one call took, and its result)."""
    return time_calls({0: fn}, repeats=repeats, warmup=warmup, synchronize=synchronize)[0]


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
    try:
        with torch.inference_mode():
            timing = time_call(lambda: bench(x), repeats=repeats, warmup=warmup,
                               synchronize=lambda: _synchronize(torch_device))
        times = [seconds * 1000.0 for seconds in timing.wall_s]
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
