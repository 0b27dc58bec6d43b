"""PSNR/SSIM and colour conversion conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from search.data import gray2y, rgb2y, rgb2ycbcr, ycbcr2rgb
from search.evaluate.metrics import psnr, ssim, ssim_reference


def _naive_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al.'s ssim_index.m: 2-D Gaussian window (fspecial), 'valid' filter2, float64."""
    offsets = np.arange(11) - 5
    g = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5**2))
    window = torch.from_numpy(g / g.sum())[None, None]

    def filt(x):
        return F.conv2d(torch.from_numpy(x)[None, None], window)[0, 0].numpy()

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = filt(a), filt(b)
    s11 = filt(a * a) - mu1**2
    s22 = filt(b * b) - mu2**2
    s12 = filt(a * b) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
    return float(ssim_map.mean())


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


def test_psnr_batch():
    hr = torch.zeros(3, 8, 8, dtype=torch.float64)
    sr = hr + torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)[:, None, None]
    values = psnr(sr, hr)
    assert values.shape == (3,)
    assert values[0] - values[1] == pytest.approx(20 * math.log10(2))


def test_ssim_matches_reference_implementation():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, size=(40, 37)).astype(np.float64)
    sr = np.clip(hr + rng.normal(0, 12, size=hr.shape), 0, 255)
    expected = _naive_ssim(sr, hr)
    assert ssim(torch.from_numpy(sr), torch.from_numpy(hr)) == pytest.approx(expected, abs=1e-6)
    assert ssim(torch.from_numpy(sr), torch.from_numpy(hr), dtype=torch.float64) == pytest.approx(expected, abs=1e-12)
    # shaving = computing on the cropped images
    assert ssim(torch.from_numpy(sr), torch.from_numpy(hr), border=3) == pytest.approx(
        _naive_ssim(sr[3:-3, 3:-3], hr[3:-3, 3:-3]), abs=1e-6)
    ref = ssim_reference(torch.from_numpy(hr), border=3)
    assert ssim(torch.from_numpy(sr), reference=ref) == pytest.approx(
        ssim(torch.from_numpy(sr), torch.from_numpy(hr), border=3), abs=1e-9)


def test_ssim_identity_and_range():
    rng = np.random.default_rng(1)
    hr = torch.from_numpy(rng.integers(0, 256, size=(30, 30)).astype(np.float64))
    assert ssim(hr, hr) == pytest.approx(1.0, abs=1e-6)
    assert -1.0 <= ssim(255 - hr, hr) < 0.5


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
