"""PSNR/SSIM and colour conversion conventions.

Expected values are hand-computed (``10 log10(255^2 / MSE)``), follow from the definitions
(SSIM of constant images, identity, scale invariance), or come from first-principles numpy
references written differently from the torch code: an explicit double loop over the 11 x 11
windows of Wang et al.'s ``ssim_index.m`` (2-D Gaussian weights, sigma 1.5, C1 = (0.01 L)^2,
C2 = (0.03 L)^2, L = 255, 'valid' region, mean of the map).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from search.data import gray2y, rgb2y, rgb2ycbcr, ycbcr2rgb
from search.evaluate.metrics import (
    gaussian_filter_valid,
    gaussian_kernel_1d,
    psnr,
    psnr_from_mse,
    shave,
    ssim,
    ssim_reference,
)

C1 = (0.01 * 255) ** 2  # 6.5025, Wang et al. 2004, K1 = 0.01, L = 255
C2 = (0.03 * 255) ** 2  # 58.5225, K2 = 0.03


def _ssim_by_windows(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM as in ssim_index.m, one 11 x 11 window at a time (weighted moments about the mean)."""
    k = np.arange(-5, 6, dtype=np.float64)
    w = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * 1.5**2))  # fspecial('gaussian', 11, 1.5)
    w /= w.sum()
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    values = []
    for i in range(a.shape[0] - 10):
        for j in range(a.shape[1] - 10):
            pa, pb = a[i:i + 11, j:j + 11], b[i:i + 11, j:j + 11]
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va = (w * (pa - ma) ** 2).sum()
            vb = (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            values.append((2 * ma * mb + C1) * (2 * cov + C2) / ((ma**2 + mb**2 + C1) * (va + vb + C2)))
    return float(np.mean(values))


def _psnr_numpy(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)))


def _pair(seed: int, shape=(19, 24), noise=12.0):
    """A random 8-bit-like reference and a noisy, clipped version of it (float64)."""
    rng = np.random.default_rng(seed)
    hr = rng.integers(0, 256, size=shape).astype(np.float64)
    sr = np.clip(hr + rng.normal(0, noise, size=shape), 0, 255)
    return sr, hr


# ---------------------------------------------------------------------------------------- shave

def test_shave_drops_border_pixels_on_each_side_of_the_last_two_dims():
    image = np.arange(2 * 4 * 5).reshape(2, 4, 5)
    # by hand: rows 1..2 and columns 1..3 of each image
    np.testing.assert_array_equal(shave(image, 1), image[:, 1:3, 1:4])
    assert shave(torch.from_numpy(image), 2).shape == (2, 0, 1)
    assert shave(image, 0) is image
    assert shave(image, -1) is image


# ----------------------------------------------------------------------------------------- PSNR

def test_psnr_from_mse_hand_values():
    assert psnr_from_mse(1.0) == pytest.approx(48.130803608679, rel=1e-12)  # 10 log10(65025)
    assert psnr_from_mse(100.0) == pytest.approx(28.130803608679, rel=1e-12)  # 10 log10(650.25)
    assert psnr_from_mse(4.0, peak=1.0) == pytest.approx(-6.020599913280, rel=1e-12)  # 10 log10(1/4)
    assert psnr_from_mse(0.0) == math.inf
    assert psnr_from_mse(0) == math.inf


def test_psnr_of_nonzero_images_matches_numpy_formula():
    sr, hr = _pair(3)
    expected = _psnr_numpy(sr, hr)
    value = psnr(torch.from_numpy(sr), torch.from_numpy(hr))
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=1e-12)
    # numpy input works the same and the result is symmetric in its arguments
    assert psnr(sr, hr) == pytest.approx(expected, rel=1e-12)
    assert psnr(hr, sr) == pytest.approx(expected, rel=1e-12)


def test_psnr_known_value_with_nonzero_reference():
    hr = np.full((4, 5), 100.0)
    sr = hr.copy()
    sr[0, :] += 10.0  # 5 of 20 pixels off by 10: MSE = 5 * 100 / 20 = 25
    assert psnr(sr, hr) == pytest.approx(10 * math.log10(65025 / 25), rel=1e-12)  # 34.1514 dB
    assert psnr(hr, hr) == math.inf


def test_psnr_known_value_and_border():
    hr = np.zeros((20, 20))
    sr = np.zeros((20, 20))
    sr[5:15, 5:15] = 10.0  # inside: error 10 on 100 px of the 16x16 interior
    assert psnr(torch.from_numpy(sr), torch.from_numpy(hr), border=2) == pytest.approx(
        10 * math.log10(255**2 / (100 * 100 / 256)))
    sr[0, 0] = 255.0  # a corner outside the shaved area does not count
    assert psnr(torch.from_numpy(sr), torch.from_numpy(hr), border=2) == pytest.approx(
        10 * math.log10(255**2 / (100 * 100 / 256)))
    assert psnr(torch.from_numpy(hr), torch.from_numpy(hr)) == math.inf


def test_psnr_border_of_one_pixel_by_hand():
    hr = np.full((4, 4), 50.0)
    sr = hr + 1.0
    sr[1:3, 1:3] = hr[1:3, 1:3]  # error 1 on the 12 border pixels only
    assert psnr(sr, hr, border=1) == math.inf
    # no shaving (the default): MSE = 12 / 16
    assert psnr(sr, hr) == pytest.approx(10 * math.log10(65025 / 0.75), rel=1e-12)
    assert psnr(sr, hr, border=0) == pytest.approx(10 * math.log10(65025 / 0.75), rel=1e-12)
    sr[1, 1] += 2.0  # interior 2 x 2: one pixel off by 2, MSE = 4 / 4 = 1
    assert psnr(sr, hr, border=1) == pytest.approx(48.130803608679, rel=1e-12)


def test_psnr_batch_is_normalised_per_image():
    base = torch.arange(3 * 5 * 6, dtype=torch.float64).reshape(3, 5, 6)
    hr = base.clone()
    sr = hr + torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)[:, None, None]
    values = psnr(sr, hr)
    assert isinstance(values, torch.Tensor)
    assert values.shape == (3,)
    # MSE 1, 4, 16: 10 log10(65025 / MSE)
    expected = [48.130803608679, 42.110203695399, 36.089603782119]
    np.testing.assert_allclose(values.numpy(), expected, rtol=1e-12)
    # one image only: a batch of one stays a batch, a plain H x W gives a float
    assert psnr(sr[2:], hr[2:]).shape == (1,)
    assert psnr(sr[2], hr[2]) == pytest.approx(expected[2], rel=1e-12)


def test_psnr_accepts_n_x_1_x_h_x_w():
    sr, hr = _pair(4, shape=(2, 1, 9, 7))
    values = psnr(torch.from_numpy(sr), torch.from_numpy(hr))
    assert values.shape == (2,)
    np.testing.assert_allclose(values.numpy(), [_psnr_numpy(sr[0, 0], hr[0, 0]), _psnr_numpy(sr[1, 0], hr[1, 0])],
                               rtol=1e-12)


def test_psnr_integer_inputs_are_converted_before_differencing():
    hr = np.full((3, 4), 200, dtype=np.uint8)
    sr = np.full((3, 4), 150, dtype=np.uint8)
    sr[0] = 250  # errors -50 and +50; in uint8, -50 wraps to 206 and 50^2 wraps to 196
    # MSE = 50^2 = 2500: 10 log10(65025 / 2500) = 10 log10(26.01)
    assert psnr(sr, hr) == pytest.approx(14.151403521958, rel=1e-12)
    assert psnr(torch.from_numpy(sr), torch.from_numpy(hr)) == pytest.approx(14.151403521958, rel=1e-12)
    assert psnr(sr.astype(np.int64), hr.astype(np.int64)) == pytest.approx(14.151403521958, rel=1e-12)


def test_psnr_peak_argument():
    hr = np.full((2, 2), 0.5)
    sr = hr + 0.5  # MSE 0.25 on a 0..1 scale: 10 log10(1 / 0.25)
    assert psnr(sr, hr, peak=1.0) == pytest.approx(6.020599913280, rel=1e-12)


def test_psnr_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape mismatch"):
        psnr(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ValueError, match="single-channel"):
        psnr(np.zeros((2, 3, 8, 8)), np.zeros((2, 3, 8, 8)))
    with pytest.raises(ValueError, match="H x W"):
        psnr(np.zeros(8), np.zeros(8))
    with pytest.raises(ValueError, match="H x W"):
        psnr(np.zeros((1, 1, 1, 8, 8)), np.zeros((1, 1, 1, 8, 8)))


# ------------------------------------------------------------------------------ Gaussian window

def test_gaussian_kernel_matches_formula():
    kernel = gaussian_kernel_1d(11, 1.5)
    assert kernel.dtype == torch.float64
    # exp(-k^2 / (2 * 1.5^2)) for k = -5..5, normalised; centre 1 / 3.759232... = 0.2660117
    k = np.arange(-5, 6)
    expected = np.exp(-k**2 / 4.5) / np.exp(-k**2 / 4.5).sum()
    np.testing.assert_allclose(kernel.numpy(), expected, rtol=1e-14)
    assert float(kernel[5]) == pytest.approx(0.2660117, abs=1e-7)
    # its outer product is MATLAB's fspecial('gaussian', 11, 1.5): centre 0.0707622
    assert float(kernel[5] ** 2) == pytest.approx(0.0707622, abs=1e-7)
    # 3 taps, sigma 1: [e^-1/2, 1, e^-1/2] / (1 + 2 e^-1/2)
    e = math.exp(-0.5)
    np.testing.assert_allclose(gaussian_kernel_1d(3, 1.0).numpy(), [e / (1 + 2 * e), 1 / (1 + 2 * e), e / (1 + 2 * e)],
                               rtol=1e-14)
    # an even size is centred between the middle taps: offsets -1.5, -0.5, 0.5, 1.5
    a, b = math.exp(-1.5**2 / 2), math.exp(-0.5**2 / 2)
    np.testing.assert_allclose(gaussian_kernel_1d(4, 1.0).numpy(),
                               [a / (2 * a + 2 * b), b / (2 * a + 2 * b), b / (2 * a + 2 * b), a / (2 * a + 2 * b)],
                               rtol=1e-14)
    assert gaussian_kernel_1d(11, 1.5, torch.float32).dtype == torch.float32


def test_gaussian_filter_valid_is_separable_correlation():
    rng = np.random.default_rng(5)
    images = rng.normal(size=(2, 6, 8))
    taps = np.array([1.0, 2.0, 4.0])  # asymmetric: pins correlation (filter2), not convolution
    out = gaussian_filter_valid(torch.from_numpy(images), torch.from_numpy(taps)).numpy()
    expected = np.zeros((2, 4, 6))
    for n in range(2):
        for i in range(4):
            for j in range(6):
                expected[n, i, j] = (np.outer(taps, taps) * images[n, i:i + 3, j:j + 3]).sum()
    np.testing.assert_allclose(out, expected, rtol=1e-12)


# ----------------------------------------------------------------------------------------- SSIM

def test_ssim_matches_window_by_window_reference():
    sr, hr = _pair(0)
    expected = _ssim_by_windows(sr, hr)
    value = ssim(torch.from_numpy(sr), torch.from_numpy(hr), dtype=torch.float64)
    assert isinstance(value, float)
    assert value == pytest.approx(expected, abs=1e-12)
    # the default float32 statistics: within the documented 1e-5 on 8-bit data
    assert ssim(torch.from_numpy(sr), torch.from_numpy(hr)) == pytest.approx(expected, abs=1e-5)


def test_ssim_of_dark_images_with_different_means_matches_reference():
    # low intensities and a mean shift make the luminance term (and C1) matter
    rng = np.random.default_rng(6)
    hr = rng.integers(0, 12, size=(13, 16)).astype(np.float64)
    sr = hr * 0.5 + rng.integers(0, 4, size=hr.shape)
    assert ssim(sr, hr, dtype=torch.float64) == pytest.approx(_ssim_by_windows(sr, hr), abs=1e-12)


def test_ssim_of_constant_images_by_hand():
    # constant x = 0, y = 10: no variance, so SSIM = C1 / (0 + 100 + C1) = 6.5025 / 106.5025
    x = np.zeros((11, 12))
    y = np.full((11, 12), 10.0)
    assert ssim(x, y, dtype=torch.float64) == pytest.approx(6.5025 / 106.5025, rel=1e-9)
    # constant x = 20, y = 30: (2 * 600 + C1) / (400 + 900 + C1)
    assert ssim(x + 20, y + 20, dtype=torch.float64) == pytest.approx(1206.5025 / 1306.5025, rel=1e-9)


def test_ssim_border_is_cropping():
    sr, hr = _pair(7, shape=(18, 21))
    expected = _ssim_by_windows(sr[3:-3, 3:-3], hr[3:-3, 3:-3])
    assert ssim(sr, hr, border=3, dtype=torch.float64) == pytest.approx(expected, abs=1e-12)
    # reference statistics computed once give the same value, with its own border and dtype
    ref = ssim_reference(torch.from_numpy(hr), border=3, dtype=torch.float64)
    assert ref["border"] == 3
    assert ssim(torch.from_numpy(sr), reference=ref) == pytest.approx(expected, abs=1e-12)


def test_ssim_reference_statistics():
    _, hr = _pair(8, shape=(12, 13))
    ref = ssim_reference(hr, dtype=torch.float64)
    k = np.arange(-5, 6)
    w = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / 4.5)
    w /= w.sum()
    # 'valid' region of a 12 x 13 image: 2 x 3 windows
    mu = np.array([[(w * hr[i:i + 11, j:j + 11]).sum() for j in range(3)] for i in range(2)])
    var = np.array([[(w * (hr[i:i + 11, j:j + 11] - mu[i, j]) ** 2).sum() for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(ref["mu_y"].numpy()[0], mu, rtol=1e-12)
    np.testing.assert_allclose(ref["mu_yy"].numpy()[0], mu**2, rtol=1e-12)
    np.testing.assert_allclose(ref["sigma_yy"].numpy()[0], var, rtol=1e-9)
    np.testing.assert_array_equal(ref["y"].numpy()[0], hr)
    assert ref["border"] == 0  # no border given: none recorded (ssim reuses this value)


def test_ssim_batch_per_image():
    sr0, hr0 = _pair(9, shape=(12, 14), noise=5.0)
    sr1, hr1 = _pair(10, shape=(12, 14), noise=40.0)
    sr, hr = np.stack([sr0, sr1]), np.stack([hr0, hr1])
    expected = [_ssim_by_windows(sr0, hr0), _ssim_by_windows(sr1, hr1)]
    values = ssim(sr, hr, dtype=torch.float64)
    assert isinstance(values, torch.Tensor)
    assert values.shape == (2,)
    np.testing.assert_allclose(values.numpy(), expected, atol=1e-12)
    # N x 1 x H x W is the same batch
    np.testing.assert_allclose(ssim(sr[:, None], hr[:, None], dtype=torch.float64).numpy(), expected, atol=1e-12)
    ref = ssim_reference(hr[:, None], dtype=torch.float64)
    np.testing.assert_allclose(ssim(sr, reference=ref).numpy(), expected, atol=1e-12)


def test_ssim_integer_inputs():
    sr, hr = _pair(11, shape=(12, 12))
    sr8, hr8 = np.round(sr).astype(np.uint8), hr.astype(np.uint8)
    expected = _ssim_by_windows(sr8, hr8)
    assert ssim(sr8, hr8, dtype=torch.float64) == pytest.approx(expected, abs=1e-12)
    assert ssim(torch.from_numpy(sr8), torch.from_numpy(hr8)) == pytest.approx(expected, abs=1e-5)


def test_ssim_is_invariant_to_scale_with_peak():
    sr, hr = _pair(12, shape=(12, 15))
    expected = _ssim_by_windows(sr, hr)
    # every term scales with peak^2 (means) or peak^4 (moments): the ratio is unchanged
    assert ssim(sr / 255, hr / 255, peak=1.0, dtype=torch.float64) == pytest.approx(expected, abs=1e-12)


def test_ssim_window_must_fit():
    # 11 x 11 is the smallest image with one valid window
    x = np.full((11, 11), 7.0)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    for shape in [(10, 11), (11, 10), (10, 20), (20, 10), (2, 10, 11), (2, 11, 10)]:
        with pytest.raises(ValueError, match="smaller than the SSIM window"):
            ssim(np.zeros(shape), np.zeros(shape))
    # the message names the H x W of the (shaved) image, not the batch size
    with pytest.raises(ValueError, match=r"^image \(10, 11\) smaller than the SSIM window$"):
        ssim(np.zeros((10, 11)), np.zeros((10, 11)))
    with pytest.raises(ValueError, match=r"^image \(11, 10\) smaller than the SSIM window$"):
        ssim(np.zeros((3, 13, 12)), np.zeros((3, 13, 12)), border=1)
    assert ssim(np.zeros((2, 11, 11)), np.zeros((2, 11, 11))).shape == (2,)
    # with a border the window must fit after shaving: 13 works with border 1, 12 does not
    assert ssim(np.full((13, 13), 3.0), np.full((13, 13), 3.0), border=1) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="smaller than the SSIM window"):
        ssim(np.zeros((12, 13)), np.zeros((12, 13)), border=1)
    with pytest.raises(ValueError, match="smaller than the SSIM window"):
        ssim_reference(np.zeros((13, 12)), border=1)


def test_ssim_rejects_mismatched_shapes():
    ref = ssim_reference(np.zeros((12, 12)))
    with pytest.raises(ValueError, match="shape mismatch"):
        ssim(np.zeros((12, 13)), reference=ref)
    with pytest.raises(ValueError, match="shape mismatch"):
        ssim(np.zeros((13, 12)), np.zeros((12, 12)))


def test_ssim_identity_and_range():
    rng = np.random.default_rng(1)
    hr = torch.from_numpy(rng.integers(0, 256, size=(30, 30)).astype(np.float64))
    assert ssim(hr, hr) == pytest.approx(1.0, abs=1e-6)
    assert -1.0 <= ssim(255 - hr, hr) < 0.5


# --------------------------------------------------------------------------------------- colour

def test_rgb2ycbcr_matlab_conventions():
    white = np.full((1, 1, 3), 255, dtype=np.uint8)
    black = np.zeros((1, 1, 3), dtype=np.uint8)
    assert rgb2y(white)[0, 0] == pytest.approx(235.0)
    assert rgb2y(black)[0, 0] == pytest.approx(16.0)
    np.testing.assert_allclose(rgb2ycbcr(white)[0, 0], [235.0, 128.0, 128.0], atol=1e-9)
    # MATLAB: rgb2ycbcr(uint8([255 0 0])) = [81 90 240] (after its rounding)
    red = np.array([[[255, 0, 0]]], dtype=np.uint8)
    np.testing.assert_array_equal(np.floor(rgb2ycbcr(red)[0, 0] + 0.5), [81, 90, 240])
    # float input is on the [0, 1] scale
    assert rgb2y(white.astype(np.float64) / 255)[0, 0] == pytest.approx(235 / 255)
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    np.testing.assert_allclose(ycbcr2rgb(rgb2ycbcr(image.astype(np.float64) / 255)), image / 255, atol=1e-12)


def test_gray2y_is_y_of_replicated_gray():
    gray = np.arange(0, 256, 15, dtype=np.uint8)[None, :]
    replicated = np.repeat(gray[..., None], 3, axis=2)
    np.testing.assert_allclose(gray2y(gray), rgb2y(replicated), atol=1e-9)
