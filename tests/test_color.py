"""RGB <-> YCbCr as MATLAB's ``rgb2ycbcr`` / ``ycbcr2rgb`` (search/data/color.py).

Expected values are hand-computed from MATLAB's documented ITU-R BT.601 (studio swing)
formulas, on the 0..255 scale with R, G, B in [0, 1]:

    Y  =  16 + ( 65.481 R + 128.553 G +  24.966 B)
    Cb = 128 + (-37.797 R -  74.203 G + 112.000 B)
    Cr = 128 + (112.000 R -  93.786 G -  18.214 B)

``uint8`` input gives these unrounded values on the 0..255 scale; float input is read as
[0, 1] and gives them divided by 255. ``ycbcr2rgb`` inverts this.
"""

from __future__ import annotations

import numpy as np
import pytest

from search.data.color import gray2y, rgb2y, rgb2ycbcr, ycbcr2rgb

# (name, RGB as uint8, YCbCr on the 0..255 scale), each by hand from the formulas above.
PURE_COLOURS = [
    # black: every term is 0, only the offsets remain
    ("black", (0, 0, 0), (16.0, 128.0, 128.0)),
    # white (R = G = B = 1): Y = 16 + 65.481 + 128.553 + 24.966 = 16 + 219 = 235;
    # Cb = 128 + (-37.797 - 74.203 + 112) = 128 + 0; Cr = 128 + (112 - 93.786 - 18.214) = 128
    ("white", (255, 255, 255), (235.0, 128.0, 128.0)),
    # red (R = 1): Y = 16 + 65.481, Cb = 128 - 37.797, Cr = 128 + 112
    ("red", (255, 0, 0), (81.481, 90.203, 240.0)),
    # green (G = 1): Y = 16 + 128.553, Cb = 128 - 74.203, Cr = 128 - 93.786
    ("green", (0, 255, 0), (144.553, 53.797, 34.214)),
    # blue (B = 1): Y = 16 + 24.966, Cb = 128 + 112, Cr = 128 - 18.214
    ("blue", (0, 0, 255), (40.966, 240.0, 109.786)),
    # grey 51 (R = G = B = 0.2): Y = 16 + 219 * 0.2 = 59.8; Cb, Cr: the rows sum to 0 -> 128
    ("grey51", (51, 51, 51), (59.8, 128.0, 128.0)),
]
IDS = [name for name, _, _ in PURE_COLOURS]


def _pixel(values, dtype) -> np.ndarray:
    """One pixel as a 2 x 5 x 3 image (H, W != 3, so a mix-up of axes shows)."""
    return np.broadcast_to(np.array(values, dtype=dtype), (2, 5, 3)).copy()


@pytest.mark.parametrize("name, rgb, ycbcr", PURE_COLOURS, ids=IDS)
def test_rgb2ycbcr_uint8_gives_unrounded_values_on_the_255_scale(name, rgb, ycbcr):
    out = rgb2ycbcr(_pixel(rgb, np.uint8))
    assert out.shape == (2, 5, 3) and out.dtype == np.float64
    np.testing.assert_allclose(out, _pixel(ycbcr, np.float64), rtol=0, atol=1e-9)


@pytest.mark.parametrize("name, rgb, ycbcr", PURE_COLOURS, ids=IDS)
def test_rgb2ycbcr_float_input_is_unit_range_in_and_out(name, rgb, ycbcr):
    unit_rgb = _pixel(rgb, np.float64) / 255.0
    np.testing.assert_allclose(rgb2ycbcr(unit_rgb), _pixel(ycbcr, np.float64) / 255.0, rtol=0, atol=1e-12)
    # float32 is float input too (read as [0, 1])
    np.testing.assert_allclose(rgb2ycbcr(unit_rgb.astype(np.float32)), _pixel(ycbcr, np.float64) / 255.0,
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("name, rgb, ycbcr", PURE_COLOURS, ids=IDS)
def test_rgb2y_is_the_y_channel(name, rgb, ycbcr):
    y = rgb2y(_pixel(rgb, np.uint8))
    assert y.shape == (2, 5) and y.dtype == np.float64
    np.testing.assert_allclose(y, np.full((2, 5), ycbcr[0]), rtol=0, atol=1e-9)
    np.testing.assert_allclose(rgb2y(_pixel(rgb, np.float64) / 255.0), np.full((2, 5), ycbcr[0] / 255.0),
                               rtol=0, atol=1e-12)


def test_rgb2ycbcr_rounded_as_documented_matches_matlab_uint8_output():
    # MATLAB rgb2ycbcr(uint8([255 0 0; 0 255 0; 0 0 255])) = [81 90 240; 145 54 34; 41 240 110]
    # (the values above rounded half up, which the module tells callers to do with floor(y + 0.5))
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    rounded = np.floor(rgb2ycbcr(rgb) + 0.5)
    np.testing.assert_array_equal(rounded, [[[81, 90, 240], [145, 54, 34], [41, 240, 110]]])


def test_mixed_pixel_is_the_weighted_sum_of_its_channels():
    # (R, G, B) = (200, 100, 50): Y = 16 + (65.481*200 + 128.553*100 + 24.966*50) / 255
    #   = 16 + (13096.2 + 12855.3 + 1248.3) / 255 = 16 + 27199.8 / 255 = 16 + 106.6658824 = 122.6658824
    # Cb = 128 + (-7559.4 - 7420.3 + 5600) / 255 = 128 - 9379.7 / 255 = 128 - 36.7831373 = 91.2168627
    # Cr = 128 + (22400 - 9378.6 - 910.7) / 255 = 128 + 12110.7 / 255 = 128 + 47.4929412 = 175.4929412
    out = rgb2ycbcr(np.array([[[200, 100, 50]]], dtype=np.uint8))
    np.testing.assert_allclose(out[0, 0], [122.6658824, 91.2168627, 175.4929412], rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", [(4, 4), (2, 2, 4), (3, 3, 4), (3, 3, 1), (1, 2, 3, 3)])
def test_rgb_conversions_reject_anything_but_h_w_3(shape):
    image = np.zeros(shape, dtype=np.uint8)
    message = f"expected an H x W x 3 RGB array, got shape {shape}"
    with pytest.raises(ValueError) as info:
        rgb2ycbcr(image)
    assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        rgb2y(image)
    assert str(info.value) == message


@pytest.mark.parametrize("name, rgb, ycbcr", PURE_COLOURS, ids=IDS)
def test_ycbcr2rgb_float_inverts_the_hand_computed_values(name, rgb, ycbcr):
    out = ycbcr2rgb(_pixel(ycbcr, np.float64) / 255.0)
    assert out.shape == (2, 5, 3) and out.dtype == np.float64
    np.testing.assert_allclose(out, _pixel(rgb, np.float64) / 255.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "ycbcr, rgb",
    [
        ((16, 128, 128), (0.0, 0.0, 0.0)),        # black
        ((235, 128, 128), (255.0, 255.0, 255.0)),  # white: (235 - 16) * 255 / 219 = 255
        # grey Y = 126: (126 - 16) * 255 / 219 = 28050 / 219 = 128.0821918 in every channel
        ((126, 128, 128), (128.0821918, 128.0821918, 128.0821918)),
    ],
)
def test_ycbcr2rgb_uint8_gives_the_255_scale(ycbcr, rgb):
    out = ycbcr2rgb(np.array([[ycbcr]], dtype=np.uint8))
    np.testing.assert_allclose(out[0, 0], rgb, rtol=0, atol=1e-6)


def test_round_trip_float_and_uint8():
    rng = np.random.default_rng(0)
    unit = rng.random((4, 6, 3))
    np.testing.assert_allclose(ycbcr2rgb(rgb2ycbcr(unit)), unit, rtol=0, atol=1e-12)
    image = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    # rgb2ycbcr(uint8) is float on the 0..255 scale, which ycbcr2rgb would read as [0, 1]:
    # back to [0, 1] first, then the result is RGB in [0, 1]
    back = ycbcr2rgb(rgb2ycbcr(image) / 255.0) * 255.0
    np.testing.assert_allclose(back, image, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    "gray, y",
    [
        (0, 16.0),      # 16 + 219/255 * 0
        (255, 235.0),   # 16 + 219
        (51, 59.8),     # 16 + 219 * 0.2 = 16 + 43.8, the grey51 row above
        (128, 125.9294118),  # 16 + 219 * 128 / 255 = 16 + 28032 / 255 = 16 + 109.9294118
    ],
)
def test_gray2y_is_y_of_the_gray_replicated_to_rgb(gray, y):
    assert gray2y(np.array([gray]))[0] == pytest.approx(y, abs=1e-6)
    # the same as rgb2y of (gray, gray, gray)
    assert rgb2y(np.full((1, 1, 3), gray, dtype=np.uint8))[0, 0] == pytest.approx(y, abs=1e-6)
