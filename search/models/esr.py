"""edge-SR one-layer models (Navarrete Michelini et al., WACV 2022): eSR-MAX, eSR-TM, eSR-TR.

All three are a single ``K x K`` convolution from the gray LR image to ``s^2 * G * C``
channels (no bias), followed by a pixel shuffle to ``G * C`` channels at HR resolution and
a per-pixel reduction over the ``C`` channels of each group:

* eSR-MAX (G=1): ``y = max_c f_c``
* eSR-TM  (G=2, template matching): ``y = sum_c v_c * softmax_c(k)``
* eSR-TR  (G=3, transformer-like): ``y = sum_c v_c * softmax_c(q * k)``

The channel order after the shuffle (values first, then the key for TM, or query and key for
TR) and the layer
name ``filter`` follow the authors' released ``models.py``, so the 432 released files of
these families load strictly. Parameters: ``G * s^2 * C * K^2``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from search.models.registry import ModelSpec, SRModel, register_family
from search.paths import weights_root


def released_esr_weights(spec: ModelSpec) -> Path:
    """Where the eSR authors' released file for ``spec`` lives (``<weights>/esr/<id>.model``)."""
    return weights_root() / "esr" / f"{spec.model_id}.model"


def positive_int(name: str, value) -> int:
    """``value`` as an int >= 1, or a ValueError naming the hyper-parameter."""
    as_int = int(value)
    if as_int != value or as_int < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return as_int


def init_identity_centre(conv: nn.Conv2d) -> None:
    """Xavier-normal weights whose centre tap (first input channel) is 1.

    The authors' initialisation: every output channel starts close to a copy of the input
    pixel, so the untrained model already behaves like nearest-neighbour upscaling.
    """
    nn.init.xavier_normal_(conv.weight, gain=1.0)
    kh, kw = conv.kernel_size
    with torch.no_grad():
        conv.weight[:, 0, kh // 2, kw // 2] = 1.0


class EdgeSRSingleLayer(SRModel):
    """One ``K x K`` conv to ``groups * s^2 * C`` channels, then pixel shuffle."""

    groups: int = 1  # value (+ key (+ query)) channel groups

    def __init__(self, scale: int, K: int, C: int):
        super().__init__()
        self.scale = positive_int("scale", scale)
        self.kernel = positive_int("K", K)
        if self.kernel % 2 == 0:
            raise ValueError(f"K must be odd (same-size padding), got {K}")
        self.channels = positive_int("C", C)
        self.filter = nn.Conv2d(
            1,
            self.groups * self.scale**2 * self.channels,
            kernel_size=self.kernel,
            padding=(self.kernel - 1) // 2,
            bias=False,
        )
        self.pixel_shuffle = nn.PixelShuffle(self.scale)
        init_identity_centre(self.filter)

    def upscaled_groups(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """HR feature maps split into ``groups`` tensors of ``C`` channels each."""
        return torch.split(self.pixel_shuffle(self.filter(x)), self.channels, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(*self.upscaled_groups(x)).unsqueeze(1)

    # Pixel-wise training (search/train/pixelwise.py). Each output block of s x s HR pixels
    # depends only on the K x K LR neighbourhood of one LR pixel, so the model can be trained
    # on single pixels' neighbourhoods instead of patches: one matrix product, then the head.
    @property
    def pixel_filter(self) -> nn.Parameter:
        """The only trained tensor: ``groups * s^2 * C`` filters of one ``K x K`` input channel."""
        return self.filter.weight

    def per_pixel(self, filtered: torch.Tensor) -> torch.Tensor:
        """``P x (groups * C * s^2)`` filter responses of P LR pixels (the conv's channel order)
        -> ``P x s^2`` HR values, sub-pixel ``i * s + j`` at HR offset ``(i, j)`` as after the
        pixel shuffle. The same head as :meth:`forward`, applied before the shuffle."""
        grouped = filtered.view(filtered.shape[0], self.groups, self.channels, self.scale**2)
        return self.head(*grouped.unbind(dim=1))

    def head(self, *groups: torch.Tensor) -> torch.Tensor:
        """The reduction over the C channels (dim 1) of each group (value, key, query maps)."""
        raise NotImplementedError


class EdgeSRMax(EdgeSRSingleLayer):
    groups = 1

    def head(self, filtered):
        return filtered.max(dim=1)[0]


class EdgeSRTM(EdgeSRSingleLayer):
    groups = 2

    def head(self, value, key):
        return torch.sum(value * torch.softmax(key, dim=1), dim=1)


class EdgeSRTR(EdgeSRSingleLayer):
    groups = 3

    def head(self, value, query, key):
        return torch.sum(value * torch.softmax(query * key, dim=1), dim=1)


# `quick`: pixel-wise training (search/train/pixelwise.py: whitened single-pixel
# neighbourhoods, 1000 steps of 4096 pixels at lr 0.03; on Set14 as good as or better than
# 6000 steps on patches, 5-18x faster: benchmarks/train_speed.py); `paper`: the 4-pixel loss
# border the eSR authors' training crops (docs/training.md).
ONE_LAYER_BUDGETS = {"quick": {"sampling": "pixels", "steps": 1000, "pixels_per_step": 4096, "lr": 0.03},
                     "paper": {"loss_border": 4}}
# The small eSR-paper CNNs (eSR-CNN, ESPCN, FSRCNN) and the Bicubic baseline.
SMALL_CNN_BUDGETS = {"quick": {"lr": 0.003, "loss_border": 4}, "paper": {"loss_border": 4}}


@register_family("eSR-MAX", id_fields=("K", "C"), color="gray", paper="esr",
                 released_weights=released_esr_weights, test_config={"scale": 2, "K": 3, "C": 2},
                 budget_overrides=ONE_LAYER_BUDGETS)
def esr_max(scale: int, K: int, C: int) -> EdgeSRMax:
    """edge-SR MAX: one KxK conv to s^2*C channels, pixel shuffle, max over C."""
    return EdgeSRMax(scale, K, C)


@register_family("eSR-TM", id_fields=("K", "C"), color="gray", paper="esr",
                 released_weights=released_esr_weights, test_config={"scale": 3, "K": 3, "C": 2},
                 budget_overrides=ONE_LAYER_BUDGETS)
def esr_tm(scale: int, K: int, C: int) -> EdgeSRTM:
    """edge-SR template matching: one KxK conv to 2*s^2*C channels, value * softmax(key)."""
    return EdgeSRTM(scale, K, C)


@register_family("eSR-TR", id_fields=("K", "C"), color="gray", paper="esr",
                 released_weights=released_esr_weights, test_config={"scale": 4, "K": 3, "C": 2},
                 budget_overrides=ONE_LAYER_BUDGETS)
def esr_tr(scale: int, K: int, C: int) -> EdgeSRTR:
    """edge-SR transformer: one KxK conv to 3*s^2*C channels, value * softmax(query * key)."""
    return EdgeSRTR(scale, K, C)
