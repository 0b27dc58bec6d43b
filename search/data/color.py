"""Colour conversion with MATLAB's conventions (ITU-R BT.601, studio swing).

``rgb2ycbcr`` follows MATLAB: Y = 16 + (65.481 R + 128.553 G + 24.966 B) with R, G, B in
[0, 1], giving Y in [16, 235]. Scale of the result follows the input: ``uint8`` input ->
float64 values on the 0..255 scale (unrounded; MATLAB would round them to uint8, use
``np.floor(y + 0.5)`` for that); float input is taken to be in [0, 1] and gives [0, 1].
"""

from __future__ import annotations

import numpy as np

_RGB_TO_YCBCR = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ]
)
_OFFSET = np.array([16.0, 128.0, 128.0])


def _unit_rgb(img: np.ndarray) -> tuple[np.ndarray, float]:
    array = np.asarray(img)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"expected an H x W x 3 RGB array, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float64) / 255.0, 255.0
    return array.astype(np.float64), 1.0


def rgb2ycbcr(img: np.ndarray) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` without the final rounding (``H x W x 3`` float64)."""
    rgb, out_scale = _unit_rgb(img)
    ycbcr = rgb @ _RGB_TO_YCBCR.T + _OFFSET
    return ycbcr * (out_scale / 255.0)


def rgb2y(img: np.ndarray) -> np.ndarray:
    """The Y channel of MATLAB ``rgb2ycbcr`` (``H x W`` float64, unrounded)."""
    rgb, out_scale = _unit_rgb(img)
    y = rgb @ _RGB_TO_YCBCR[0] + _OFFSET[0]
    return y * (out_scale / 255.0)


def ycbcr2rgb(img: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb2ycbcr`: ``uint8`` input -> 0..255 scale, float input -> [0, 1]."""
    array = np.asarray(img)
    unit_input = array.dtype != np.uint8
    ycbcr = array.astype(np.float64) * (255.0 if unit_input else 1.0) - _OFFSET
    rgb_unit = ycbcr @ np.linalg.inv(_RGB_TO_YCBCR).T
    return rgb_unit if unit_input else rgb_unit * 255.0


def gray2y(gray: np.ndarray) -> np.ndarray:
    """Y of a gray image replicated to RGB: ``16 + 219/255 * gray`` (0..255 scale)."""
    return 16.0 + (219.0 / 255.0) * np.asarray(gray, dtype=np.float64)
