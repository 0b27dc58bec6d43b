"""The eSR authors' ``Bicubic_s#`` baseline: bicubic upscaling as a fixed transposed conv.

The released ``Bicubic_s2/3/4.model`` files hold a single ``net.weight`` of shape
``1 x 1 x (L+1) x (L+1)`` (stored in fp16): the separable Keys cubic (a = -0.5) sampled at
the ``L`` phases ``(i - 1.5) / s`` with ``i`` in ``-A+1 .. A``,
``A = max(|ceil(-2s + 1.5)|, |floor(2s + 1.5)|)``, normalised to unit DC gain per phase,
padded with one zero row and column. The forward pass is

    y = conv_transpose2d(x, W, stride s, padding (L - s)//2 + 1, output_padding (s+1) mod 2)

which gives exactly ``s`` times the input size. The fixed -1.5 phase shift is centred for
even ``s`` only: for ``s = 3`` the released filter puts LR pixel ``i`` at HR position
``3i + 1.5`` instead of ``3i + 1`` (half an HR pixel off), which is why the published
Bicubic_s3 PSNR is about 1.1 dB below true bicubic. This module reproduces the released
filter (and its misalignment) exactly; it is a baseline and is not meant to be trained, so
its weight is a parameter with ``requires_grad=False``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from search.models.esr import positive_int, released_esr_weights
from search.models.registry import SRModel, register_family

PHASE_SHIFT = -1.5  # the authors' fixed phase, in LR pixels times s


def keys_cubic(distance: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's bicubic)."""
    d = np.abs(distance)
    near = 1.5 * d**3 - 2.5 * d**2 + 1.0
    far = -0.5 * d**3 + 2.5 * d**2 - 4.0 * d + 2.0
    return np.where(d < 1.0, near, np.where(d < 2.0, far, 0.0))


def upscale_taps(scale: int, phase: float = PHASE_SHIFT) -> np.ndarray:
    """1-D taps of the cubic upscaling filter, summing to 1."""
    reach = max(abs(math.ceil(-2 * scale - phase)), abs(math.floor(2 * scale - phase)))
    offsets = np.arange(-reach + 1, reach + 1, dtype=np.float64)
    taps = keys_cubic((offsets + phase) / scale)
    return taps / taps.sum()


def bicubic_transposed_kernel(scale: int) -> torch.Tensor:
    """The ``1 x 1 x (L+1) x (L+1)`` transposed-conv weight of the released models."""
    taps = upscale_taps(scale)
    size = len(taps)
    weight = np.zeros((size + 1, size + 1))
    weight[:size, :size] = scale * scale * np.outer(taps, taps)
    # rounded through fp16 like the released files, so a model built without the file is
    # bit-identical to the released one
    return torch.from_numpy(weight).half().float()[None, None]


class BicubicFilter(SRModel):
    def __init__(self, scale: int):
        super().__init__()
        self.scale = positive_int("scale", scale)
        kernel = bicubic_transposed_kernel(self.scale)
        self.padding = (kernel.shape[-1] - 1 - self.scale) // 2 + 1
        self.output_padding = (self.scale + 1) % 2
        self.net = nn.Module()  # keeps the released key name ``net.weight``
        self.net.weight = nn.Parameter(kernel, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(
            x, self.net.weight, stride=self.scale,
            padding=self.padding, output_padding=self.output_padding,
        )


@register_family("Bicubic", color="gray", paper="esr", released_weights=released_esr_weights,
                 test_config={"scale": 3}, budget_overrides={"paper": {"loss_border": 4}})
def bicubic(scale: int) -> BicubicFilter:
    """Bicubic upscaling as a fixed transposed conv (the eSR authors' baseline, incl. its x3 shift)."""
    return BicubicFilter(scale)
