"""MATLAB-compatible bicubic ``imresize`` (antialiased when downscaling).

MATLAB's ``imresize(img, scale, 'bicubic')`` resizes one dimension at a time with a
separable cubic kernel (Keys, a = -0.5). When shrinking by a factor ``s < 1`` it widens
the kernel to ``4 / s`` pixels and scales it by ``s`` (antialiasing). Output pixel ``x``
(1-based) samples the input at ``u = x / s + 0.5 * (1 - 1 / s)``; out-of-range taps are
mirrored (``... 2 1 | 1 2 3 ...``); weights are normalised to sum to one.

For ``uint8`` input MATLAB keeps ``uint8`` between the two 1-D passes (round half away
from zero, saturate), and returns ``uint8``. This port reproduces that when
``img.dtype == uint8`` and returns the rounded values as float64; float input is resized
in float64 with no rounding or clipping (what MATLAB does for ``double``).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    inner = (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1)
    outer = (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1) & (absx <= 2))
    return inner + outer


@lru_cache(maxsize=256)
def contributions(in_length: int, out_length: int, scale: float,
                  antialiasing: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB's 1-D bicubic taps: ``(indices, weights)``, each ``out_length x taps``.

    ``indices`` are 0-based and already mirrored into range; tap columns whose weights are
    all zero are dropped (as MATLAB does).
    """
    kernel_width = 4.0
    if scale < 1 and antialiasing:
        def kernel(x):
            return scale * cubic(scale * x)
        kernel_width = kernel_width / scale
    else:
        kernel = cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    keep = np.any(weights != 0, axis=0)
    weights, indices = weights[:, keep], indices[:, keep]
    # Mirror out-of-range taps as MATLAB does: aux = [1:n, n:-1:1], index mod 2n.
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    indices.setflags(write=False)
    weights.setflags(write=False)
    return indices, weights


@lru_cache(maxsize=256)
def resize_matrix(in_length: int, out_length: int, scale: float, antialiasing: bool = True) -> np.ndarray:
    """Dense ``out_length x in_length`` matrix of the same 1-D resampling."""
    indices, weights = contributions(in_length, out_length, scale, antialiasing)
    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    rows = np.repeat(np.arange(out_length), indices.shape[1])
    np.add.at(matrix, (rows, indices.ravel()), weights.ravel())
    matrix.setflags(write=False)
    return matrix


# Largest temporary of gathered taps per 1-D pass (bytes); a block of output rows at a time.
_GATHER_BYTES = 64 * 2**20


def _round_uint8(values: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    # MATLAB's uint8() rounds half away from zero and saturates.
    if not inplace:
        return np.clip(np.floor(values + 0.5), 0, 255)
    np.add(values, 0.5, out=values)
    np.floor(values, out=values)
    return np.clip(values, 0, 255, out=values)


def _output_shape(in_shape, scale, output_shape):
    if output_shape is not None:
        out_h, out_w = int(output_shape[0]), int(output_shape[1])
        return (out_h, out_w), (out_h / in_shape[0], out_w / in_shape[1])
    if scale is None:
        raise ValueError("imresize needs scale or output_shape")
    if isinstance(scale, (tuple, list)):
        scale_h, scale_w = float(scale[0]), float(scale[1])
    else:
        scale_h = scale_w = float(scale)
    return (int(math.ceil(in_shape[0] * scale_h)), int(math.ceil(in_shape[1] * scale_w))), (scale_h, scale_w)


def imresize(img: np.ndarray, scale: float | None = None, output_shape=None,
             *, antialiasing: bool = True) -> np.ndarray:
    """Resize ``img`` (``H x W`` or ``H x W x C``) like MATLAB ``imresize(img, scale)``.

    ``uint8`` input is rounded to integers after each 1-D pass, as MATLAB does; the result
    is float64 either way (integer-valued for ``uint8`` input).
    """
    array = np.asarray(img)
    is_uint8 = array.dtype == np.uint8
    data = array.astype(np.float64)
    (out_h, out_w), (scale_h, scale_w) = _output_shape(data.shape[:2], scale, output_shape)
    # MATLAB resizes the dimension with the smaller scale factor first (rows on a tie).
    order = (0, 1) if scale_h <= scale_w else (1, 0)
    for dim in order:
        in_len = data.shape[dim]
        out_len = out_h if dim == 0 else out_w
        dim_scale = scale_h if dim == 0 else scale_w
        if in_len == out_len and dim_scale == 1:
            continue
        indices, weights = contributions(in_len, out_len, dim_scale, antialiasing)
        moved = np.moveaxis(data, dim, 0)                  # resized axis first
        shape = (-1,) + weights.shape[1:] + (1,) * (moved.ndim - 1)
        # The taps are gathered (out x taps x ...) for a block of output rows at a time, so
        # the temporary stays under _GATHER_BYTES for large images; each row's sum is the
        # one a single gather of all rows computes.
        row_bytes = weights.shape[1] * (moved.size // max(1, in_len)) * 8
        block = max(1, _GATHER_BYTES // max(1, row_bytes))
        out = np.empty((out_len,) + moved.shape[1:], dtype=np.float64)
        for start in range(0, out_len, block):
            stop = min(out_len, start + block)
            gathered = moved[indices[start:stop]]          # rows x taps x ...
            out[start:stop] = (gathered * weights[start:stop].reshape(shape)).sum(axis=1)
        data = np.moveaxis(out, 0, dim)
        if is_uint8:
            data = _round_uint8(data, inplace=True)  # data is this pass's own output
    return data
