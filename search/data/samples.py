"""Prepared test samples (LR input + metric target per image, scale, colour and protocol),
cached in memory so that evaluating many models on the same sets pays image decoding and
MATLAB resizing once. Data preparation, so below models (AdaDSR calibrates on Set5 LR
inputs) and evaluate (which scores models on them).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from search.data.datasets import TestSet
from search.data.images import read_image
from search.data.protocols import SSIM_WINDOW, Protocol, Sample
from search.errors import DataError

# Prepared samples kept in memory (LRU), bounded in bytes: SR_EVAL_CACHE_MB (default 2048).
_CACHE_BYTES = int(float(os.environ.get("SR_EVAL_CACHE_MB", "2048")) * 2**20)
_sample_cache: "OrderedDict[tuple, tuple[Sample, int]]" = OrderedDict()
_cache_used = 0


def clear_cache() -> None:
    global _cache_used
    _sample_cache.clear()
    _cache_used = 0


def _sample_bytes(sample: Sample) -> int:
    # target (float64) + LR, plus the per-device extras added later (float32 shaved target
    # and four float32 SSIM maps: about twice the float64 target).
    return sample.lr.nbytes + 3 * sample.target.nbytes


def _file_key(path: Path) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _check_image_size(image: np.ndarray, path: Path, scale: int, protocol: Protocol) -> None:
    """DataError when ``image`` is too small to score at ``scale`` (see Protocol.min_image_side)."""
    height, width = image.shape[:2]
    minimum = protocol.min_image_side(scale)
    if height < minimum or width < minimum:
        raise DataError(
            f"image is {width}x{height}, smaller than the minimum {minimum}x{minimum} for scale "
            f"{scale} (cropped to a multiple of {scale}, {protocol.border(scale)} px shaved per side, "
            f"the {SSIM_WINDOW}x{SSIM_WINDOW} SSIM window must fit)", path=path)


def prepare_sample(test_set: TestSet, image_path: Path, scale: int, color: str,
                   protocol: Protocol) -> Sample:
    """The cached :class:`Sample` of one image (DataError for a missing/corrupt file)."""
    image_path = Path(image_path)
    if not image_path.is_file():
        raise DataError("image not found", path=image_path)
    global _cache_used
    key = (_file_key(image_path), int(scale), color, protocol.key)
    cached = _sample_cache.get(key)
    if cached is not None:
        _sample_cache.move_to_end(key)
        return cached[0]
    image = read_image(image_path)
    _check_image_size(image, image_path, int(scale), protocol)
    lr_image = None
    if protocol.lr_from_files:
        lr_path = test_set.lr_path(image_path, scale)
        if lr_path is not None:
            lr_image = read_image(lr_path)
    sample = protocol.prepare(image, int(scale), color, lr_image)
    size = _sample_bytes(sample)
    _sample_cache[key] = (sample, size)
    _cache_used += size
    while _cache_used > _CACHE_BYTES and len(_sample_cache) > 1:
        _, (_, evicted) = _sample_cache.popitem(last=False)
        _cache_used -= evicted
    return sample


def prepare_samples(test_set: TestSet, scale: int, color: str, protocol: Protocol) -> list[Sample]:
    return [prepare_sample(test_set, path, scale, color, protocol) for path in test_set.images]
