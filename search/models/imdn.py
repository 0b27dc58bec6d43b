"""IMDN: information multi-distillation network (Hui et al., ACM MM 2019) and its variants.

Information multi-distillation block (IMDB), with ``d = F * R`` distilled channels:

    x1 = lrelu(conv3x3_{F->F}(x));    keep x1[:d], refine x1[d:]       progressive refinement
    x2 = lrelu(conv3x3_{F-d->F}(.));  keep x2[:d], refine x2[d:]       (four steps, LeakyReLU 0.05)
    x3 = lrelu(conv3x3_{F-d->F}(.));  keep x3[:d], refine x3[d:]
    x4 = conv3x3_{F-d->d}(.)
    y  = conv1x1_{4d->F}(CCA(cat(x1[:d], x2[:d], x3[:d], x4))) + x

CCA (contrast-aware channel attention) gates each channel by
``sigmoid(W2 relu(W1 (std + mean)))`` with per-channel spatial standard deviation and mean
(hidden width ``4d // 16``). Families:

* ``IMDN``: 3x3 feature conv, B IMDBs, 1x1 conv + LeakyReLU over the concatenation of all
  block outputs, 3x3 conv, global residual (to the features), 3x3 conv + pixel shuffle.
* ``IMDN-AS`` (adaptive cropping, any scale): the LR image is first upscaled bicubically by
  ``s`` (torch ``interpolate``), then two stride-2 3x3 convs (LeakyReLU between) replace the
  feature conv and the pixel shuffle restores x4, so the released weights serve every scale.
  Because of the stride-4 body the input is replicate-padded at the bottom/right to a
  multiple of 4 and the output cropped back: one whole-image pass, hence no tiling seams.
* ``IMDN-RTC`` (AI in RTC 2019 winner; F=12, B=5): blocks without CCA, chained under one
  residual with a 1x1 conv at the end, then the pixel-shuffle upsampler.

The authors fix ``R = 0.25`` (so ``4d = F``, the 1x1 fusion is ``F -> F``); here ``R`` is a
search dimension: any ``0 < R < 1`` with ``F * R`` a whole number of channels. Parameter names
are this suite's own; :meth:`adapt_state_dict` maps the official checkpoints
(``module.IMDB3.c2.weight``, ``model.1.sub.4.c5.bias``, ...) onto them, so the released files
load strictly. Parameters for the paper's IMDN (B=6, F=64, R=0.25): 694,404 / 703,059 /
715,176 at x2 / x3 / x4.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as functional
from torch import nn

from search.models.registry import (
    DEEP_QUICK_BUDGET,
    ModelSpec,
    SRModel,
    register_family,
)
from search.paths import weights_root

LEAKY_SLOPE = 0.05
CCA_REDUCTION = 16
AS_STRIDE = 4  # two stride-2 convs in front of IMDN-AS

PAPER_DEFAULTS = {"B": 6, "F": 64, "R": 0.25}
RTC_DEFAULTS = {"B": 5, "F": 12, "R": 0.25}


def _positive_int(name: str, value) -> int:
    as_int = int(value)
    if as_int != value or as_int < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return as_int


def distilled_channels(features: int, ratio: float) -> int:
    """``features * ratio`` as a whole number of channels, or a ValueError saying why not."""
    ratio = float(ratio)
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"distillation ratio R must lie strictly between 0 and 1, got R={ratio:g}")
    exact = features * ratio
    count = round(exact)
    if abs(exact - count) > 1e-6:
        raise ValueError(
            f"distillation ratio R={ratio:g} with F={features} channels gives {exact:g} distilled "
            f"channels, not a whole number (F*R must be an integer)"
        )
    if count < 1 or count >= features:
        raise ValueError(f"R={ratio:g} with F={features} leaves {count} distilled channels (need 1..F-1)")
    return count


def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)


class ContrastChannelAttention(nn.Module):
    """CCA: squeeze by per-channel (std + mean), excite with two 1x1 convs and a sigmoid."""

    def __init__(self, channels: int, reduction: int = CCA_REDUCTION):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.squeeze = nn.Conv2d(channels, hidden, 1)
        self.excite = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        # Biased variance, as in the paper: contrast is a property of the map, not an estimate.
        std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
        gate = torch.sigmoid(self.excite(torch.relu(self.squeeze(std + mean))))
        return x * gate


class InformationDistillationBlock(nn.Module):
    """IMDB: four-step progressive refinement, (optional) CCA, 1x1 fusion, residual."""

    def __init__(self, features: int, ratio: float, attention: bool = True):
        super().__init__()
        self.distilled = distilled_channels(features, ratio)
        self.remaining = features - self.distilled
        self.refine = nn.ModuleList([
            conv(features, features, 3),
            conv(self.remaining, features, 3),
            conv(self.remaining, features, 3),
            conv(self.remaining, self.distilled, 3),
        ])
        kept = 4 * self.distilled
        self.attention = ContrastChannelAttention(kept) if attention else nn.Identity()
        self.fuse = conv(kept, features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept = []
        remaining = x
        for step in self.refine[:-1]:
            out = functional.leaky_relu(step(remaining), LEAKY_SLOPE)
            distilled, remaining = torch.split(out, (self.distilled, self.remaining), dim=1)
            kept.append(distilled)
        kept.append(self.refine[-1](remaining))
        return self.fuse(self.attention(torch.cat(kept, dim=1))) + x


def _upsampler(features: int, out_channels: int, factor: int) -> nn.Sequential:
    return nn.Sequential(conv(features, out_channels * factor**2, 3), nn.PixelShuffle(factor))


# Official key name -> this file's name. Order matters: the first matching pattern wins.
_IMDB_KEYS = [
    (r"\.c([1-4])\.", lambda m: f".refine.{int(m.group(1)) - 1}."),
    (r"\.c5\.", lambda m: ".fuse."),
    (r"\.cca\.conv_du\.0\.", lambda m: ".attention.squeeze."),
    (r"\.cca\.conv_du\.2\.", lambda m: ".attention.excite."),
]


def _rename_block_keys(key: str) -> str:
    for pattern, replace in _IMDB_KEYS:
        key = re.sub(pattern, replace, key)
    return key


class IMDN(SRModel):
    """IMDN (and, with ``adaptive=True``, IMDN-AS); ``B`` blocks of ``F`` channels, ratio ``R``."""

    def __init__(self, scale: int, B: int, F: int, R: float, *, channels: int = 3,
                 adaptive: bool = False):
        super().__init__()
        self.scale = _positive_int("scale", scale)
        self.num_blocks = _positive_int("B", B)
        self.features = _positive_int("F", F)
        self.ratio = float(R)
        self.adaptive = adaptive
        distilled_channels(self.features, self.ratio)  # fail early with the clear message
        nf = self.features
        if adaptive:
            self.head = nn.Sequential(
                conv(channels, nf, 3, stride=2), nn.LeakyReLU(LEAKY_SLOPE), conv(nf, nf, 3, stride=2)
            )
            upscale = AS_STRIDE
        else:
            self.head = conv(channels, nf, 3)
            upscale = self.scale
        self.blocks = nn.ModuleList(
            InformationDistillationBlock(nf, self.ratio) for _ in range(self.num_blocks)
        )
        self.fuse_blocks = nn.Sequential(conv(nf * self.num_blocks, nf, 1), nn.LeakyReLU(LEAKY_SLOPE))
        self.body_tail = conv(nf, nf, 3)
        self.upsampler = _upsampler(nf, channels, upscale)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        outputs = []
        out = features
        for block in self.blocks:
            out = block(out)
            outputs.append(out)
        fused = self.fuse_blocks(torch.cat(outputs, dim=1))
        return self.upsampler(self.body_tail(fused) + features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.adaptive:
            return self.body(x)
        if self.scale != 1:
            x = functional.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        height, width = x.shape[-2:]
        pad_h = -height % AS_STRIDE
        pad_w = -width % AS_STRIDE
        if pad_h or pad_w:
            # Bottom/right padding keeps the stride-4 grid anchored at the top-left corner, so
            # every output pixel sees the same grid phase as in an unpadded run.
            x = functional.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return self.body(x)[..., :height, :width]

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Official ``architecture.IMDN`` / ``IMDN_AS`` keys -> this model's keys."""
        adapted = {}
        for key, value in state.items():
            new = key
            new = re.sub(r"^fea_conv\.", "head.", new)
            new = re.sub(r"^IMDB(\d+)\.", lambda m: f"blocks.{int(m.group(1)) - 1}.", new)
            new = re.sub(r"^c\.0\.", "fuse_blocks.0.", new)
            new = re.sub(r"^LR_conv\.", "body_tail.", new)
            if new.startswith("blocks."):
                new = _rename_block_keys(new)
            adapted[new] = value
        return adapted


class IMDNRealTime(SRModel):
    """IMDN-RTC: B CCA-free IMDBs and a 1x1 conv under one residual, then pixel shuffle."""

    def __init__(self, scale: int, B: int, F: int, R: float, *, channels: int = 3):
        super().__init__()
        self.scale = _positive_int("scale", scale)
        self.num_blocks = _positive_int("B", B)
        self.features = _positive_int("F", F)
        self.ratio = float(R)
        nf = self.features
        self.head = conv(channels, nf, 3)
        self.blocks = nn.Sequential(*(
            InformationDistillationBlock(nf, self.ratio, attention=False) for _ in range(self.num_blocks)
        ))
        self.body_tail = conv(nf, nf, 1)
        self.upsampler = _upsampler(nf, channels, self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        return self.upsampler(self.body_tail(self.blocks(features)) + features)

    def adapt_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Official ``IMDN_RTC`` keys (``model.<i>...``, ``model.`` possibly stripped) -> ours."""
        last = self.num_blocks
        adapted = {}
        for key, value in state.items():
            new = re.sub(r"^model\.", "", key)
            if re.match(r"^\d", new):
                new = re.sub(r"^0\.", "head.", new)
                new = re.sub(rf"^1\.sub\.{last}\.", "body_tail.", new)
                new = re.sub(r"^1\.sub\.(\d+)\.", lambda m: f"blocks.{m.group(1)}.", new)
                new = re.sub(r"^2\.", "upsampler.0.", new)
                new = _rename_block_keys(new)
            adapted[new] = value
        return adapted


def _is_paper_config(spec: ModelSpec, defaults: dict) -> bool:
    return all(math.isclose(float(spec.hparams.get(k)), float(v)) for k, v in defaults.items())


def _released_imdn(spec: ModelSpec) -> Path | None:
    if spec.scale in (2, 3, 4) and _is_paper_config(spec, PAPER_DEFAULTS):
        return weights_root() / "imdn" / f"IMDN_x{spec.scale}.pth"
    return None


def _released_imdn_as(spec: ModelSpec) -> Path | None:
    # The network works at HR resolution after bicubic upscaling, so one file serves all scales.
    if _is_paper_config(spec, PAPER_DEFAULTS):
        return weights_root() / "imdn" / "IMDN_AS.pth"
    return None


def _released_imdn_rtc(spec: ModelSpec) -> Path | None:
    if spec.scale == 2 and _is_paper_config(spec, RTC_DEFAULTS):
        return weights_root() / "imdn" / "model_RTC.pth"
    return None


@register_family("IMDN", id_fields=("B", "F", "R"), color="rgb", paper="imdn",
                 defaults=PAPER_DEFAULTS, released_weights=_released_imdn,
                 test_config={"scale": 2, "B": 1, "F": 8}, budget_overrides=DEEP_QUICK_BUDGET)
def imdn(scale: int, B: int, F: int, R: float) -> IMDN:
    """IMDN: B information multi-distillation blocks of F channels, distillation ratio R."""
    return IMDN(scale, B, F, R)


@register_family("IMDN-AS", id_fields=("B", "F", "R"), color="rgb", paper="imdn",
                 defaults=PAPER_DEFAULTS, released_weights=_released_imdn_as,
                 aliases=("IMDN_AS", "IMDNAS"), test_config={"scale": 2, "B": 1, "F": 8},
                 budget_overrides=DEEP_QUICK_BUDGET)
def imdn_as(scale: int, B: int, F: int, R: float) -> IMDN:
    """IMDN-AS: bicubic pre-upscale, stride-4 IMDN body, pad-to-4 adaptive cropping; any size."""
    return IMDN(scale, B, F, R, adaptive=True)


@register_family("IMDN-RTC", id_fields=("B", "F", "R"), color="rgb", paper="imdn",
                 defaults={**RTC_DEFAULTS, "scale": 2}, released_weights=_released_imdn_rtc,
                 aliases=("IMDN_RTC", "IMDNRTC"), test_config={"scale": 2, "B": 1, "F": 8},
                 budget_overrides=DEEP_QUICK_BUDGET)
def imdn_rtc(scale: int, B: int, F: int, R: float) -> IMDNRealTime:
    """IMDN-RTC: small real-time IMDN (no CCA, no block fusion), F=12, B=5 in the release."""
    return IMDNRealTime(scale, B, F, R)
