"""MATLAB-compatible bicubic imresize, checked against values derived from first principles.

Independent references used here:
- hand-computed taps: Keys' cubic (a = -0.5) at quarter offsets is a multiple of 1/128:
  k(0.25) = 111/128, k(0.75) = 29/128, k(1.25) = -9/128, k(1.75) = -3/128, and
  k(0.5) = 9/16, k(1.5) = -1/16;
- `_reference_resize_1d`: a plain loop over MATLAB's `contributions` (centre u, kernel width
  4/scale when shrinking, symmetric mirroring, weights divided by their sum), written tap by
  tap rather than vectorised;
- MATLAB's uint8 conversion: round half away from zero, then saturate to [0, 255].
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from search.data import imresize, rgb2y
from search.data.imresize import _round_uint8, contributions, cubic, resize_matrix

# `search.data.imresize` is shadowed by the function of that name; this is the module.
imresize_module = importlib.import_module("search.data.imresize")


def _keys_cubic(x: float) -> float:
    """Keys' kernel, a = -0.5, written out independently of the implementation."""
    x = abs(x)
    if x <= 1:
        return 1.5 * x**3 - 2.5 * x**2 + 1
    if x <= 2:
        return -0.5 * x**3 + 2.5 * x**2 - 4 * x + 2
    return 0.0


def _mirror(k: int, n: int) -> int:
    """1-based index k reflected into 1..n: ... 2 1 | 1 2 ... n | n n-1 ... (repeatedly)."""
    while k < 1 or k > n:
        k = 1 - k if k < 1 else 2 * n + 1 - k
    return k


def _reference_resize_1d(signal, scale: float, out_len: int | None = None, antialiasing: bool = True):
    """Straight loop over MATLAB's definition: centre u, width 4/scale, mirrored edges."""
    n = len(signal)
    out_len = math.ceil(n * scale) if out_len is None else out_len
    aa = antialiasing and scale < 1
    width = 4 / scale if aa else 4
    out = []
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        total, acc = 0.0, 0.0
        # every integer tap j with |u - j| < width / 2 (the kernel is zero outside)
        for j in range(math.floor(u - width / 2), math.ceil(u + width / 2) + 1):
            w = scale * _keys_cubic(scale * (u - j)) if aa else _keys_cubic(u - j)
            total += w
            acc += w * signal[_mirror(j, n) - 1]
        out.append(acc / total)
    return np.array(out)


def _reference_matrix(n: int, out_len: int, scale: float, antialiasing: bool = True) -> np.ndarray:
    """The resampling matrix, column k = the reference applied to the unit vector e_k."""
    return np.stack([_reference_resize_1d(np.eye(n)[k], scale, out_len, antialiasing) for k in range(n)], axis=1)


def _matlab_uint8(values) -> np.ndarray:
    """MATLAB's uint8(): round half away from zero, saturate to 0..255."""
    values = np.asarray(values, dtype=np.float64)
    return np.clip(np.sign(values) * np.floor(np.abs(values) + 0.5), 0, 255)


def _reference_imresize(image, scale_h, scale_w, out_h=None, out_w=None, *, first=None, as_uint8=None):
    """Two 1-D reference passes; MATLAB order (stable sort of the scales) unless `first` is given."""
    data = np.asarray(image, dtype=np.float64)
    as_uint8 = np.asarray(image).dtype == np.uint8 if as_uint8 is None else as_uint8
    out_h = math.ceil(data.shape[0] * scale_h) if out_h is None else out_h
    out_w = math.ceil(data.shape[1] * scale_w) if out_w is None else out_w
    if first is None:
        first = int(np.argsort([scale_h, scale_w], kind="stable")[0])  # MATLAB: [~, order] = sort(scale)
    for axis in (first, 1 - first):
        scale, length = (scale_h, out_h) if axis == 0 else (scale_w, out_w)
        data = np.apply_along_axis(_reference_resize_1d, axis, data, scale, length)
        if as_uint8:
            data = _matlab_uint8(data)
    return data


# ---------------------------------------------------------------------------------------------
# The kernel


def test_cubic_kernel_values():
    assert cubic(np.array([0.0]))[0] == 1.0
    assert cubic(np.array([1.0, 2.0, 2.5, -1.0, 3.0])).tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]
    assert cubic(np.array([0.5]))[0] == pytest.approx(0.5625)
    assert cubic(np.array([1.5]))[0] == pytest.approx(-0.0625)


def test_cubic_kernel_at_quarter_offsets_by_hand():
    # k(0.25) = 1.5/64 - 2.5/16 + 1 = 111/128; k(0.75) = 1.5*27/64 - 2.5*9/16 + 1 = 29/128;
    # k(1.25) = -0.5*125/64 + 2.5*25/16 - 5 + 2 = -9/128; k(1.75) = -0.5*343/64 + 2.5*49/16 - 7 + 2
    # = -3/128; the kernel is even.
    x = np.array([0.25, 0.75, 1.25, 1.75, -0.25, -0.75, -1.25, -1.75])
    expected = np.array([111, 29, -9, -3, 111, 29, -9, -3]) / 128
    np.testing.assert_allclose(cubic(x), expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(cubic(x), [_keys_cubic(v) for v in x], rtol=0, atol=1e-15)


# ---------------------------------------------------------------------------------------------
# contributions / resize_matrix: the 1-D taps


def test_contributions_of_4_to_2_by_hand():
    # x1/2, antialiased: kernel 0.5*k(0.5 d), width 8. Output 1 sits at u = 1/0.5 + 0.5*(1 - 2) = 1.5;
    # taps j = floor(1.5 - 4) = -2 .. 5 (1-based) at d = 3.5, 2.5, ..., -3.5, weights
    # 0.5*k(d/2) = [-3, -9, 29, 111, 111, 29, -9, -3] / 256 (they sum to 1). The 10 candidate
    # taps include j = -3 and 6 at |d| = 4.5 (weight 0): those columns are dropped, 8 remain.
    # Mirroring (n = 4): j = -2 -> 3, -1 -> 2, 0 -> 1, 5 -> 4; 0-based: [2 1 0 0 1 2 3 3].
    indices, weights = contributions(4, 2, 0.5)
    assert indices.shape == weights.shape == (2, 8)
    np.testing.assert_array_equal(indices, [[2, 1, 0, 0, 1, 2, 3, 3], [0, 0, 1, 2, 3, 3, 2, 1]])
    row = np.array([-3, -9, 29, 111, 111, 29, -9, -3]) / 256
    np.testing.assert_allclose(weights, [row, row], rtol=0, atol=1e-15)


def test_resize_matrix_4_to_2_by_hand():
    # Summing the mirrored taps above per input pixel: row 1 = [111+29, 111-9, 29-3, -9-3] / 256;
    # row 2 is its mirror image (output 2 sits at u = 3.5).
    expected = np.array([[140, 102, 26, -12], [-12, 26, 102, 140]]) / 256
    np.testing.assert_allclose(resize_matrix(4, 2, 0.5), expected, rtol=0, atol=1e-15)


def test_resize_matrix_4_to_2_without_antialiasing_by_hand():
    # Plain k(d) with 4 taps: u = 1.5 -> taps j = 0..3 at d = 1.5, 0.5, -0.5, -1.5, weights
    # [-1, 9, 9, -1] / 16; j = 0 mirrors onto pixel 1: row 1 = [9-1, 9, -1, 0] / 16.
    expected = np.array([[8, 9, -1, 0], [0, -1, 9, 8]]) / 16
    np.testing.assert_allclose(resize_matrix(4, 2, 0.5, antialiasing=False), expected, rtol=0, atol=1e-15)
    indices, weights = contributions(4, 2, 0.5, antialiasing=False)
    assert weights.shape == (2, 4)


def test_resize_matrix_3_to_6_by_hand():
    # x2: u = x/2 + 0.25, so every tap sits at a quarter offset (weights /128, see above).
    # x=1: u=0.75, taps j=-1,0,1,2 at d=1.75,0.75,-0.25,-1.25 -> -3,29,111,-9; j=0->1, j=-1->2.
    # x=2: u=1.25, j=0..3 at d=1.25,0.25,-0.75,-1.75 -> -9,111,29,-3; j=0->1.
    # x=3: u=1.75, j=0..3 at d=1.75,0.75,-0.25,-1.25 -> -3,29,111,-9; j=0->1.
    # x=4..6 mirror x=3..1 (u -> 4 - u).
    expected = np.array([
        [140, -12, 0],
        [102, 29, -3],
        [26, 111, -9],
        [-9, 111, 26],
        [-3, 29, 102],
        [0, -12, 140],
    ]) / 128
    np.testing.assert_allclose(resize_matrix(3, 6, 2.0), expected, rtol=0, atol=1e-15)
    indices, weights = contributions(3, 6, 2.0)
    # 6 candidate taps (ceil(4) + 2); the outer two are at |d| >= 2 for every row: 4 remain.
    assert weights.shape == indices.shape == (6, 4)


# (n, out, scale, antialiasing): non-integer scales (whose kernels do not sum to 1 before
# normalising), inputs shorter than the kernel (taps mirrored more than once), no antialiasing.
MATRIX_CASES = [
    (4, 3, 0.75, True), (8, 6, 0.75, True), (9, 3, 1 / 3, True), (10, 4, 0.4, True), (5, 2, 0.3, True),
    (2, 1, 0.25, True), (3, 1, 0.25, True), (7, 7, 0.99, True), (4, 6, 1.5, True), (5, 13, 2.5, True),
    (2, 8, 4.0, True), (10, 4, 0.4, False), (9, 3, 1 / 3, False),
]


@pytest.mark.parametrize("n,out,scale,aa", MATRIX_CASES)
def test_resize_matrix_matches_reference_loop(n, out, scale, aa):
    matrix = resize_matrix(n, out, scale, aa)
    assert matrix.shape == (out, n)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(matrix, _reference_matrix(n, out, scale, aa), rtol=0, atol=1e-12)


def test_unnormalised_kernel_does_not_sum_to_one_at_075():
    # Why normalising matters: at scale 0.75 the taps 0.75*k(0.75 d) over d = u - j sum to
    # something other than 1, so dropping the division would scale the image.
    u = 1 / 0.75 + 0.5 * (1 - 1 / 0.75)
    raw = sum(0.75 * _keys_cubic(0.75 * (u - j)) for j in range(-5, 8))
    assert abs(raw - 1) > 1e-3


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


def test_cached_taps_are_read_only():
    # contributions/resize_matrix are lru-cached: a caller writing into a returned array
    # would corrupt every later resize with the same sizes.
    indices, weights = contributions(6, 3, 0.5)
    matrix = resize_matrix(6, 3, 0.5)
    for array in (indices, weights, matrix):
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[0, 0] = 1


# ---------------------------------------------------------------------------------------------
# imresize: values


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 0.75, 0.6, 0.99, 1.5, 2, 2.5, 3, 4])
def test_matches_first_principles_1d(scale):
    rng = np.random.default_rng(1)
    signal = rng.random(23) * 255
    image = np.tile(signal, (3, 1))
    ours = imresize(image, (1, scale))
    np.testing.assert_allclose(ours[0], _reference_resize_1d(signal, scale), atol=1e-9)
    np.testing.assert_allclose(ours, np.tile(ours[0], (3, 1)), atol=1e-12)


def test_scale_099_keeps_the_size_but_still_resamples():
    # ceil(10 * 0.99) = 10: same length, but MATLAB still filters with the 0.99 kernel and
    # shifts the sampling grid (u = x/0.99 - 0.005...), so the output is not the input.
    rng = np.random.default_rng(7)
    signal = rng.random(10) * 100
    out = imresize(np.tile(signal, (2, 1)), (1, 0.99))
    assert out.shape == (2, 10)
    assert np.abs(out[0] - signal).max() > 0.1
    np.testing.assert_allclose(out[0], _reference_resize_1d(signal, 0.99), atol=1e-9)


def test_ramp_known_values():
    # MATLAB: imresize(repmat(1:10, 3, 1), [3 5]) -> 1.4492 3.4883 5.5000 7.5117 9.5508
    # (by hand, first value: taps of the 4->2 case on pixels 3 2 1 1 2 3 4 5:
    # (-3*3 - 9*2 + 29*1 + 111*1 + 111*2 + 29*3 - 9*4 - 3*5) / 256 = 371/256 = 1.44921875)
    ramp = np.tile(np.arange(1.0, 11.0), (3, 1))
    expected = [1.44921875, 3.48828125, 5.5, 7.51171875, 9.55078125]
    out = imresize(ramp, output_shape=(3, 5))
    np.testing.assert_allclose(out[0], expected, atol=1e-8)
    # the same along the other axis (output height from output_shape)
    np.testing.assert_allclose(imresize(ramp.T, output_shape=(5, 3))[:, 1], expected, atol=1e-8)
    # interior samples of a linear ramp are exact (cubic convolution reproduces lines)
    long_ramp = np.tile(np.arange(40.0), (2, 1))
    np.testing.assert_allclose(imresize(long_ramp, (1, 0.5))[0, 3:-3], np.arange(40.0)[::2][3:-3] + 0.5, atol=1e-9)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 0.75, 0.3, 1.5, 2, 2.5, 3, 4])
def test_constant_image_is_preserved(scale):
    # The weights of every output pixel are normalised to sum to one, at any scale.
    image = np.full((24, 18, 3), 137, dtype=np.uint8)
    out = imresize(image, scale)
    assert out.shape == (math.ceil(24 * scale), math.ceil(18 * scale), 3)
    np.testing.assert_array_equal(out, 137)
    out_float = imresize(np.full((24, 18), 0.3), scale)
    np.testing.assert_allclose(out_float, 0.3, rtol=0, atol=1e-14)


@pytest.mark.parametrize("shape,scale,expected", [
    ((7, 9), 0.5, (4, 5)),          # ceil(3.5), ceil(4.5)
    ((10, 8), 1 / 3, (4, 3)),       # ceil(3.33), ceil(2.67)
    ((7, 5), (0.5, 2), (4, 10)),    # per-axis scales: rows 0.5, columns 2
    ((5, 7), (3, 0.25), (15, 2)),   # ceil(1.75)
    ((9, 6), 0.75, (7, 5)),         # ceil(6.75), ceil(4.5)
])
def test_output_size_is_ceil_of_scale_times_size(shape, scale, expected):
    rng = np.random.default_rng(5)
    image = rng.random(shape)
    out = imresize(image, scale)
    assert out.shape == expected
    scale_h, scale_w = scale if isinstance(scale, tuple) else (scale, scale)
    np.testing.assert_allclose(out, _reference_imresize(image, scale_h, scale_w), atol=1e-9)


def test_output_shape_sets_each_axis_scale():
    # output_shape (5, 7) from (10, 4): rows shrink by 5/10, columns grow by 7/4, each axis
    # with its own kernel.
    rng = np.random.default_rng(6)
    image = rng.random((10, 4)) * 255
    out = imresize(image, output_shape=(5, 7))
    assert out.shape == (5, 7)
    np.testing.assert_allclose(out, _reference_imresize(image, 5 / 10, 7 / 4, 5, 7), atol=1e-9)
    # and output_shape wins over scale
    np.testing.assert_allclose(imresize(image, 0.5, output_shape=(5, 7)), out, atol=0)


def test_needs_scale_or_output_shape():
    with pytest.raises(ValueError):
        imresize(np.zeros((4, 4)))


def test_rgb_channels_are_resized_independently():
    rng = np.random.default_rng(3)
    image = rng.random((17, 13, 3)) * 255
    out = imresize(image, output_shape=(9, 7))
    assert out.shape == (9, 7, 3)
    for c in range(3):
        expected = _reference_imresize(image[..., c], 9 / 17, 7 / 13, 9, 7)
        np.testing.assert_allclose(out[..., c], expected, atol=1e-9)


def test_antialiasing_off_uses_plain_cubic_when_shrinking():
    rng = np.random.default_rng(8)
    signal = rng.random(20) * 255
    out = imresize(np.tile(signal, (2, 1)), (1, 0.5), antialiasing=False)
    np.testing.assert_allclose(out[0], _reference_resize_1d(signal, 0.5, antialiasing=False), atol=1e-9)
    assert np.abs(out[0] - _reference_resize_1d(signal, 0.5)).max() > 1


def test_blocked_gather_gives_the_same_values(monkeypatch):
    # Large images are resized a block of output rows at a time; force tiny blocks (a few rows,
    # the last one partial) and check the values against the reference.
    monkeypatch.setattr(imresize_module, "_GATHER_BYTES", 300)
    rng = np.random.default_rng(9)
    image = rng.random((7, 5, 2)) * 255
    out = imresize(image, (2, 0.75))
    assert out.shape == (14, 4, 2)
    for c in range(2):
        np.testing.assert_allclose(out[..., c], _reference_imresize(image[..., c], 2, 0.75), atol=1e-9)
    monkeypatch.setattr(imresize_module, "_GATHER_BYTES", 1)  # one row per block
    np.testing.assert_allclose(imresize(image[..., 0], 0.5), _reference_imresize(image[..., 0], 0.5, 0.5), atol=1e-9)


def test_symmetric_input_gives_symmetric_output():
    rng = np.random.default_rng(2)
    half = rng.random((20, 10))
    image = np.concatenate([half, half[:, ::-1]], axis=1)
    out = imresize(image, 0.5)
    np.testing.assert_allclose(out, out[:, ::-1], atol=1e-12)


def test_y_then_resize_equals_resize_then_y_for_float():
    # MATLAB imresize is linear on float input, so it commutes with the (affine) Y transform.
    rng = np.random.default_rng(4)
    image = rng.random((16, 16, 3))
    np.testing.assert_allclose(rgb2y(imresize(image, 0.5)), imresize(rgb2y(image), 0.5), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# imresize: uint8 rounding, saturation and the order of the passes


def test_uint8_rounds_half_away_from_zero():
    # x2 on [9 9 73 9 9]: each output is 9 + 64 * (weight on the 73), weights in 1/128:
    # x=1: u=0.75 (taps on pixels 1,1,1,2) -> 9;  x=2: u=1.25, weight -3 -> 9 - 1.5 = 7.5;
    # x=3: u=1.75, weight -9 -> 4.5;  x=4: u=2.25, weight 29 -> 23.5;  x=5: u=2.75, weight 111 -> 64.5;
    # x=6..10 mirror x=5..1. Every non-trivial value is a tie: MATLAB's uint8 rounds it up
    # (8, 5, 24, 65), where round-half-to-even would give 8, 4, 24, 64 and truncation 7, 4, 23, 64.
    image = np.tile(np.array([9, 9, 73, 9, 9], dtype=np.uint8), (2, 1))
    exact = [9, 7.5, 4.5, 23.5, 64.5, 64.5, 23.5, 4.5, 7.5, 9]
    np.testing.assert_allclose(imresize(image.astype(np.float64), (1, 2))[0], exact, rtol=0, atol=1e-12)
    out = imresize(image, (1, 2))
    np.testing.assert_array_equal(out, np.tile([9, 8, 5, 24, 65, 65, 24, 5, 8, 9], (2, 1)))


def test_uint8_saturates_overshoot():
    # x2 on a step [0 0 0 255 255 255]: the cubic kernel overshoots on both sides.
    # x=4: u=2.25, weight -3/128 on the 255s -> -765/128 = -5.98;  x=5: u=2.75, -9/128 -> -17.93;
    # x=6: u=3.25, (29-3)/128 -> 51.80;  x=7: u=3.75, (111-9)/128 -> 203.20;
    # x=8: u=4.25, (111+29-3)/128 -> 272.93;  x=9: u=4.75, (29+111-9)/128 -> 260.98.
    image = np.tile(np.array([0, 0, 0, 255, 255, 255], dtype=np.uint8), (2, 1))
    exact = np.array([0, 0, 0, -765, -2295, 6630, 26010, 34935, 33405, 32640, 32640, 32640]) / 128
    np.testing.assert_allclose(imresize(image.astype(np.float64), (1, 2))[0], exact, rtol=0, atol=1e-9)
    out = imresize(image, (1, 2))
    np.testing.assert_array_equal(out[0], [0, 0, 0, 0, 0, 52, 203, 255, 255, 255, 255, 255])


def test_round_uint8_helper():
    values = np.array([-3.2, -0.5, 0.49, 0.5, 1.5, 2.5, 127.5, 254.5, 255.4, 300.0])
    expected = [0, 0, 0, 1, 2, 3, 128, 255, 255, 255]  # half away from zero, then saturate
    np.testing.assert_array_equal(_matlab_uint8(values), expected)  # the reference agrees
    copy = values.copy()
    np.testing.assert_array_equal(_round_uint8(copy), expected)
    np.testing.assert_array_equal(copy, values)  # default: the input is left alone
    np.testing.assert_array_equal(_round_uint8(copy, inplace=False), expected)
    np.testing.assert_array_equal(copy, values)
    result = _round_uint8(copy, inplace=True)
    np.testing.assert_array_equal(copy, expected)  # in place: the input holds the result
    assert result is copy


def test_uint8_rounds_between_passes_and_float_does_not():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(30, 30), dtype=np.uint8)
    as_uint8 = imresize(image, 1 / 3)
    as_float = imresize(image.astype(np.float64), 1 / 3)
    assert np.all(as_uint8 == np.round(as_uint8)) and as_uint8.min() >= 0 and as_uint8.max() <= 255
    assert not np.all(as_float == np.round(as_float))
    assert np.abs(as_uint8 - as_float).max() <= 1.0 + 1e-9


@pytest.mark.parametrize("scale", [(0.5, 0.75), (0.75, 0.5), (0.5, 0.5), (2, 3), (3, 2), (0.6, 2)])
def test_uint8_resizes_the_smaller_scale_first(scale):
    # MATLAB sorts the scales (stable: rows first on a tie) and rounds to uint8 after each 1-D
    # pass, so the pass order shows in the result; check that the chosen image tells the
    # two orders apart, then that imresize follows MATLAB's.
    rng = np.random.default_rng(10)
    image = rng.integers(0, 256, size=(12, 10), dtype=np.uint8)
    scale_h, scale_w = scale
    rows_first = _reference_imresize(image, scale_h, scale_w, first=0)
    cols_first = _reference_imresize(image, scale_h, scale_w, first=1)
    assert not np.array_equal(rows_first, cols_first)
    expected = rows_first if scale_h <= scale_w else cols_first
    np.testing.assert_array_equal(imresize(image, scale), expected)


@pytest.mark.parametrize("shape, scale, expected", [
    ((0, 4), 0.5, (0, 2)),   # ceil(0.5 * 0) = 0 rows, ceil(0.5 * 4) = 2 columns
    ((4, 0), 0.5, (2, 0)),
    ((0, 3), 2.0, (0, 6)),   # ceil(2 * 3) = 6
])
def test_an_empty_image_resizes_to_an_empty_image_of_the_matlab_size(shape, scale, expected):
    assert imresize(np.zeros(shape), scale).shape == expected
