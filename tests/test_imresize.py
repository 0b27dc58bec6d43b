"""MATLAB-compatible bicubic imresize, checked against values derived from first principles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from search.data import imresize, rgb2y
from search.data.imresize import contributions, cubic


def _keys_cubic(x: float) -> float:
    """Keys' kernel, a = -0.5, written out independently of the implementation."""
    x = abs(x)
    if x <= 1:
        return 1.5 * x**3 - 2.5 * x**2 + 1
    if x <= 2:
        return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
    return 0.0


def _reference_resize_1d(signal: np.ndarray, scale: float) -> np.ndarray:
    """Straight loop over MATLAB's definition: centre u, width 4/scale, mirrored edges."""
    n = len(signal)
    out_len = math.ceil(n * scale)
    aa = scale < 1
    out = []
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        width = 4 / scale if aa else 4
        total, acc = 0.0, 0.0
        for j in range(math.floor(u - width / 2), math.floor(u - width / 2) + math.ceil(width) + 2):
            w = scale * _keys_cubic(scale * (u - j)) if aa else _keys_cubic(u - j)
            k = j
            while k < 1 or k > n:  # symmetric mirror: ... 2 1 | 1 2 ... n | n n-1 ...
                k = 1 - k if k < 1 else 2 * n + 1 - k
            total += w
            acc += w * signal[k - 1]
        out.append(acc / total)
    return np.array(out)


def test_cubic_kernel_values():
    assert cubic(np.array([0.0]))[0] == 1.0
    assert cubic(np.array([1.0, 2.0, 2.5, -1.0])).tolist() == [0.0, 0.0, 0.0, 0.0]
    assert cubic(np.array([0.5]))[0] == pytest.approx(0.5625)
    assert cubic(np.array([1.5]))[0] == pytest.approx(-0.0625)


# Shrinking by 1/s widens the kernel to 4s input pixels (taps at |d| < 2s); enlarging keeps
# 4 taps. With integer s the taps sit at d = u - j; those with d/s integer (d != 0) hit the
# kernel's zeros: x1/3 has centres on pixels, so d = +-3 drops out (9 taps, not 11).
@pytest.mark.parametrize("scale,expected_taps", [(1 / 2, 8), (1 / 3, 9), (1 / 4, 16), (2, 4), (3, 4), (4, 4)])
def test_antialiased_kernel_width(scale, expected_taps):
    indices, weights = contributions(64, math.ceil(64 * scale), scale)
    nonzero = (np.abs(weights) > 1e-12).sum(axis=1)
    interior = nonzero[len(nonzero) // 4: 3 * len(nonzero) // 4]
    assert interior.max() == expected_taps
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)


def test_even_downscale_weights_are_symmetric():
    # For x1/2 an output pixel sits half-way between two inputs: its weights are a palindrome.
    indices, weights = contributions(32, 16, 0.5)
    row = weights[8][np.abs(weights[8]) > 1e-12]
    np.testing.assert_allclose(row, row[::-1], atol=1e-12)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_matches_first_principles_1d(scale):
    rng = np.random.default_rng(1)
    signal = rng.random(23) * 255
    image = np.tile(signal, (3, 1))
    ours = imresize(image, (1, scale))
    np.testing.assert_allclose(ours[0], _reference_resize_1d(signal, scale), atol=1e-9)


def test_ramp_known_values():
    # MATLAB: imresize(repmat(1:10, 3, 1), [3 5]) -> 1.4492 3.4883 5.5000 7.5117 9.5508
    ramp = np.tile(np.arange(1.0, 11.0), (3, 1))
    out = imresize(ramp, output_shape=(3, 5))
    np.testing.assert_allclose(out[0], [1.44921875, 3.48828125, 5.5, 7.51171875, 9.55078125], atol=1e-8)
    # interior samples of a linear ramp are exact (cubic convolution reproduces lines)
    long_ramp = np.tile(np.arange(40.0), (2, 1))
    np.testing.assert_allclose(imresize(long_ramp, (1, 0.5))[0, 3:-3], np.arange(40.0)[::2][3:-3] + 0.5, atol=1e-9)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3, 4])
def test_constant_image_is_preserved(scale):
    image = np.full((24, 18, 3), 137, dtype=np.uint8)
    out = imresize(image, scale)
    assert out.shape == (math.ceil(24 * scale), math.ceil(18 * scale), 3)
    np.testing.assert_array_equal(out, 137)


def test_uint8_rounds_between_passes_and_float_does_not():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(30, 30), dtype=np.uint8)
    as_uint8 = imresize(image, 1 / 3)
    as_float = imresize(image.astype(np.float64), 1 / 3)
    assert np.all(as_uint8 == np.round(as_uint8)) and as_uint8.min() >= 0 and as_uint8.max() <= 255
    assert not np.all(as_float == np.round(as_float))
    assert np.abs(as_uint8 - as_float).max() <= 1.0 + 1e-9


def test_symmetric_input_gives_symmetric_output():
    rng = np.random.default_rng(2)
    half = rng.random((20, 10))
    image = np.concatenate([half, half[:, ::-1]], axis=1)
    out = imresize(image, 0.5)
    np.testing.assert_allclose(out, out[:, ::-1], atol=1e-12)


def test_output_shape_and_rgb_channels_independent():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, size=(17, 13, 3), dtype=np.uint8)
    out = imresize(image, output_shape=(9, 7))
    assert out.shape == (9, 7, 3)
    np.testing.assert_array_equal(out[..., 1], imresize(image[..., 1], output_shape=(9, 7)))


def test_y_then_resize_equals_resize_then_y_for_float():
    # MATLAB imresize is linear on float input, so it commutes with the (affine) Y transform.
    rng = np.random.default_rng(4)
    image = rng.random((16, 16, 3))
    np.testing.assert_allclose(rgb2y(imresize(image, 0.5)), imresize(rgb2y(image), 0.5), atol=1e-12)
