"""PSNR and SSIM on the 0..255 scale (the conventions of MATLAB-based SR evaluation).

SSIM follows Wang et al.'s reference code (``ssim_index.m``): an 11 x 11 Gaussian window
with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, statistics over the 'valid' region only, and
the mean of the SSIM map. The Gaussian window is separable, so it runs as two 1-D
convolutions in torch (one cached kernel per dtype/device);
reference statistics can be computed once and reused for many models.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch

from search.data.protocols import SSIM_WINDOW

SSIM_SIGMA = 1.5
_K1, _K2, _PEAK = 0.01, 0.03, 255.0


def shave(image: torch.Tensor | np.ndarray, border: int):
    """Drop ``border`` pixels on each side of the last two dimensions."""
    if border <= 0:
        return image
    return image[..., border:-border, border:-border]


def _as_batch(image) -> torch.Tensor:
    tensor = torch.as_tensor(image)
    if tensor.ndim == 2:
        tensor = tensor[None]
    if tensor.ndim == 4:
        if tensor.shape[1] != 1:
            raise ValueError(f"metrics take single-channel images, got shape {tuple(tensor.shape)}")
        tensor = tensor[:, 0]
    if tensor.ndim != 3:
        raise ValueError(f"expected H x W or N x H x W, got shape {tuple(tensor.shape)}")
    return tensor


def psnr(sr, hr, *, border: int = 0, peak: float = _PEAK) -> torch.Tensor | float:
    """PSNR in dB of ``sr`` against ``hr`` (0..255 scale), per image for N x H x W input.

    Differences are taken in the inputs' precision (float32 is ample for 8-bit data) and
    the squared error is accumulated in float64; identical images give ``inf``.
    """
    single = torch.as_tensor(sr).ndim == 2
    sr_t = shave(_as_batch(sr), border)
    hr_t = shave(_as_batch(hr), border)
    if sr_t.shape != hr_t.shape:
        raise ValueError(f"shape mismatch {tuple(sr_t.shape)} vs {tuple(hr_t.shape)}")
    dtype = torch.promote_types(sr_t.dtype, hr_t.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float64
    diff = sr_t.to(dtype) - hr_t.to(dtype)
    mse = diff.square_().flatten(1).sum(dim=1, dtype=torch.float64) / diff[0].numel()
    values = 10.0 * torch.log10(peak * peak / mse)
    return float(values[0]) if single else values


@lru_cache(maxsize=16)
def gaussian_kernel_1d(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA,
                       dtype: torch.dtype = torch.float64, device: str = "cpu") -> torch.Tensor:
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    kernel = torch.exp(-(offsets**2) / (2.0 * sigma * sigma))
    kernel = kernel / kernel.sum()
    return kernel.to(dtype=dtype, device=device)


def gaussian_filter_valid(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """'valid' separable filtering of the last two dims (``... x H x W``).

    Shifted in-place multiply-adds: several times faster on CPU than a grouped conv2d
    with 1-D kernels, and exact to rounding.
    """
    size = kernel.numel()
    taps = [float(t) for t in kernel]
    width = images.shape[-1] - size + 1
    rows = images[..., 0:width] * taps[0]
    for i in range(1, size):
        rows.add_(images[..., i:i + width], alpha=taps[i])
    height = images.shape[-2] - size + 1
    out = rows[..., 0:height, :] * taps[0]
    for i in range(1, size):
        out.add_(rows[..., i:i + height, :], alpha=taps[i])
    return out


def _prepare_ssim(image, border: int, dtype: torch.dtype) -> torch.Tensor:
    tensor = shave(_as_batch(image), border).to(dtype)
    if tensor.shape[-1] < SSIM_WINDOW or tensor.shape[-2] < SSIM_WINDOW:
        raise ValueError(f"image {tuple(tensor.shape[-2:])} smaller than the SSIM window")
    return tensor


def ssim_reference(hr, *, border: int = 0, dtype: torch.dtype = torch.float32) -> dict:
    """Statistics of the reference image that :func:`ssim` can reuse across many models."""
    y = _prepare_ssim(hr, border, dtype)
    kernel = gaussian_kernel_1d(SSIM_WINDOW, SSIM_SIGMA, dtype, str(y.device))
    mu_y, yy = gaussian_filter_valid(torch.stack([y, y * y], dim=1), kernel).unbind(dim=1)
    mu_yy = mu_y * mu_y
    return {"y": y, "mu_y": mu_y, "mu_yy": mu_yy, "sigma_yy": yy - mu_yy, "border": border}


def ssim(sr, hr=None, *, border: int = 0, peak: float = _PEAK, dtype: torch.dtype = torch.float32,
         reference: dict | None = None) -> torch.Tensor | float:
    """Mean SSIM (Gaussian 11x11, sigma 1.5, valid region) per image, 0..255 scale.

    ``reference`` (from :func:`ssim_reference`) replaces ``hr`` to skip recomputing the
    reference statistics. float32 statistics differ from float64 by < 1e-5 on 8-bit data.
    """
    single = torch.as_tensor(sr).ndim == 2
    if reference is None:
        reference = ssim_reference(hr, border=border, dtype=dtype)
    x = _prepare_ssim(sr, reference["border"], reference["y"].dtype)
    y = reference["y"]
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch {tuple(x.shape)} vs {tuple(y.shape)}")
    kernel = gaussian_kernel_1d(SSIM_WINDOW, SSIM_SIGMA, x.dtype, str(x.device))
    c1 = (_K1 * peak) ** 2
    c2 = (_K2 * peak) ** 2
    mu_x, xx, xy = gaussian_filter_valid(torch.stack([x, x * x, x * y], dim=1), kernel).unbind(dim=1)
    mu_y = reference["mu_y"]
    mu_xx = mu_x * mu_x
    mu_xy = mu_x * mu_y
    numerator = (2 * mu_xy + c1) * (2 * (xy - mu_xy) + c2)
    denominator = (mu_xx + reference["mu_yy"] + c1) * ((xx - mu_xx) + reference["sigma_yy"] + c2)
    values = (numerator / denominator).double().flatten(1).mean(dim=1)
    return float(values[0]) if single else values


def psnr_from_mse(mse: float, peak: float = _PEAK) -> float:
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)
