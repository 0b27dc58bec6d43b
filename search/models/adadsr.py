"""AdaDSR: spatially adaptive depth for an EDSR-style backbone (Liu et al., ECCV-W 2020).

Structure (official code: csmliu/AdaDSR, ``dsr_model.py`` / ``networks.py``)::

    z0   = head(x - mean)                                  3x3 conv, 3 -> F
    d_hat = relu(d * P(z0))                                adapter, N x 1 x h x w
    z_l  = z_{l-1} + G_l(d_hat) * F_l(z_{l-1}),  l = 1..D  F_l = conv3x3 . relu . conv3x3
    G_l  = clamp(d_hat - (l - 1), 0, 1)                    per pixel
    y    = tail(up(lastconv(z_D) + z0)) + mean             EDSR body skip, pixel-shuffle up

The adapter P is five 3x3 convolutions at F/2 features, a PReLU before each of the last
four, one output channel; the desired depth ``d`` multiplies its output after the last conv
(official ``adapter_pos = adapter_layers = 5``) and the clamp at zero is the ReLU. So
``d = 0`` gives ``d_hat = 0`` (all blocks skipped) and the map scales with ``d``.

Training (``training_step``): ``d ~ U[0, D]`` per sample, loss = L1 (added by the trainer)
+ ``lambda * max(0, mean(d_hat) - d)`` (mean over each sample's map, then over the batch),
with L1 on [0, 1] images (the official code's L1 is on [0, 255]: see docs/adadsr.md).
``constraint="hard"`` (the official code's other option) instead rescales each map to mean
``d`` and adds no loss term.

Inference: ``model.target_depth`` (default ``D``) is the desired depth. In ``"sparse"`` mode
(the default in eval) block ``l`` only computes on the tiles of the LR grid where
``G_l > 0`` (gathered with a 2-pixel halo for the two 3x3 convs and scattered back), so the
CPU time follows ``d``; ``"dense"`` mode runs every block everywhere and multiplies by
``G_l`` (the training path; it gives the same output). :meth:`AdaDSR.count_macs` counts
the block convolutions on active positions only (second conv on ``G_l > 0``, first conv on
its 3x3 dilation), using the active fractions seen in the evaluation forwards since the
last reset (or a calibration on the shipped Set5 when none were seen).

``AdaDSR-plain`` is the same backbone without the adapter (all ``D`` blocks everywhere):
train it first and load it into AdaDSR with :meth:`AdaDSR.load_backbone` (the paper
started from a trained EDSR). Suite defaults: ``D = 8`` blocks, ``F = 32`` features
(CPU-trainable; the paper used D = 32, F = 256).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F_
from torch import nn

from search.data import find_test_set
from search.data.protocols import get_protocol
from search.data.samples import prepare_samples
from search.errors import WeightsError
from search.models.registry import DEEP_QUICK_BUDGET, SRModel, register_family
from search.models.weights import load_state_dict
from search.paths import SHIPPED_DATA

# DIV2K RGB mean used by EDSR's MeanShift (in [0, 1] units).
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)
DEFAULT_LAMBDA = 0.01
DEFAULT_TILE = 16
# soft: depth loss lambda * max(0, mean(d_hat) - d) (the paper's AdaEDSR); hard: the map is
# rescaled to mean d per image and the loss is L1 only (the official code's other option).
CONSTRAINTS = ("soft", "hard")
# Above this fraction of active tiles a block runs densely (same result, less gathering).
DENSE_TILE_FRACTION = 0.85


def _positive_int(name: str, value) -> int:
    number = int(value)
    if number != value or number < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return number


def _conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class ResBlock(nn.Module):
    """The residual branch F_l = conv3x3(relu(conv3x3(z))) (EDSR, no batch norm)."""

    def __init__(self, features: int):
        super().__init__()
        self.conv1 = _conv3x3(features, features)
        self.conv2 = _conv3x3(features, features)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.conv1(z)))


class DepthAdapter(nn.Module):
    """P: conv, (PReLU, conv) x 4 at F/2 features -> 1 channel; times d; ReLU."""

    def __init__(self, features: int, layers: int = 5, reduction: int = 2, constraint: str = "soft"):
        super().__init__()
        if constraint not in CONSTRAINTS:
            raise ValueError(f"constraint must be one of {', '.join(CONSTRAINTS)}, got {constraint!r}")
        self.constraint = constraint
        hidden = max(1, features // reduction)
        modules: list[nn.Module] = [_conv3x3(features, hidden)]
        for index in range(1, layers):
            modules += [nn.PReLU(), _conv3x3(hidden, 1 if index == layers - 1 else hidden)]
        # Start near P = 1 (d_hat ~ d everywhere, i.e. the plain backbone at d = D) so a
        # short fine-tune from a trained backbone begins at full quality; the official
        # code uses PyTorch's default init, which starts at mean(d_hat) << d.
        last = modules[-1]
        with torch.no_grad():
            last.weight.mul_(0.1)
            last.bias.fill_(1.0)
        self.net = nn.Sequential(*modules)

    def forward(self, z0: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """``depth``: N desired depths -> N x 1 x h x w depth map (>= 0)."""
        depth = depth.view(-1, 1, 1, 1)
        if self.constraint == "hard":  # official constrain='hard': rescale to mean d
            raw = torch.relu(self.net(z0))
            return raw / raw.mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6) * depth
        return torch.relu(self.net(z0) * depth)

    def macs_per_pixel(self) -> int:
        return sum(m.in_channels * m.out_channels * 9 for m in self.net if isinstance(m, nn.Conv2d))


def _upsampler(scale: int, features: int) -> nn.Sequential:
    if scale in (2, 3):
        return nn.Sequential(_conv3x3(features, features * scale**2), nn.PixelShuffle(scale))
    if scale & (scale - 1) == 0:
        stages: list[nn.Module] = []
        for _ in range(int(math.log2(scale))):
            stages += [_conv3x3(features, features * 4), nn.PixelShuffle(2)]
        return nn.Sequential(*stages)
    raise ValueError(f"scale must be 2, 3 or a power of 2, got {scale}")


class EDSRBackbone(SRModel):
    """Head, D residual blocks, last body conv with the global skip, upsampler, tail."""

    def __init__(self, scale: int, D: int, F: int):
        super().__init__()
        self.scale = _positive_int("scale", scale)
        self.num_blocks = _positive_int("D", D)
        self.features = _positive_int("F", F)
        self.register_buffer("rgb_mean", torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.head = _conv3x3(3, self.features)
        self.blocks = nn.ModuleList(ResBlock(self.features) for _ in range(self.num_blocks))
        self.body_conv = _conv3x3(self.features, self.features)
        self.upsample = _upsampler(self.scale, self.features)
        self.tail = _conv3x3(self.features, 3)

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x - self.rgb_mean)

    def _reconstruct(self, z: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        return self.tail(self.upsample(self.body_conv(z) + z0)) + self.rgb_mean

    def _fixed_macs_per_pixel(self) -> int:
        """MACs per LR pixel outside the residual blocks (head, body conv, up, tail)."""
        f = self.features
        macs = 3 * f * 9 + f * f * 9
        area = 1
        for module in self.upsample:
            if isinstance(module, nn.Conv2d):
                macs += module.in_channels * module.out_channels * 9 * area
            elif isinstance(module, nn.PixelShuffle):
                area *= module.upscale_factor**2
        return macs + f * 3 * 9 * self.scale**2

    def _block_macs_per_pixel(self) -> int:
        return 2 * self.features * self.features * 9


class PlainEDSR(EDSRBackbone):
    """The backbone without the adapter: every block on every pixel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z0 = self._head(x)
        z = z0
        for block in self.blocks:
            z = z + block(z)
        return self._reconstruct(z, z0)

    def count_macs(self, lr_shape: tuple) -> int:
        h, w = int(lr_shape[-2]), int(lr_shape[-1])
        per_pixel = self._fixed_macs_per_pixel() + self.num_blocks * self._block_macs_per_pixel()
        return per_pixel * h * w


def _dilate(mask: torch.Tensor) -> torch.Tensor:
    """3x3 dilation of a N x 1 x h x w boolean mask (the inputs a 3x3 conv reads)."""
    return F_.max_pool2d(mask.float(), 3, stride=1, padding=1) > 0


class AdaDSR(EDSRBackbone):
    """EDSR backbone whose blocks run only where the predicted depth map reaches them."""

    def __init__(self, scale: int, D: int, F: int, lam: float = DEFAULT_LAMBDA,
                 tile_size: int = DEFAULT_TILE, constraint: str = "soft"):
        super().__init__(scale, D, F)
        self.adapter = DepthAdapter(self.features, constraint=constraint)
        self.depth_loss_weight = float(lam)
        if self.depth_loss_weight < 0:
            raise ValueError(f"lambda must be >= 0, got {lam!r}")
        self.tile_size = _positive_int("tile_size", tile_size)
        self.target_depth = float(self.num_blocks)
        self.inference_mode = "sparse"
        self.last_depth_map: torch.Tensor | None = None
        self.reset_macs_stats()

    @property
    def target_depth(self) -> float:
        """The desired depth d used at evaluation (0 <= d <= D; default D)."""
        return self._target_depth

    @target_depth.setter
    def target_depth(self, value: float) -> None:
        depth = float(value)
        if not 0 <= depth <= self.num_blocks:
            raise ValueError(f"target_depth must lie in [0, D={self.num_blocks}], got {value!r}")
        self._target_depth = depth

    @property
    def inference_mode(self) -> str:
        """``"sparse"`` (active tiles only) or ``"dense"`` (every block everywhere, times G_l)."""
        return self._inference_mode

    @inference_mode.setter
    def inference_mode(self, value: str) -> None:
        if value not in ("sparse", "dense"):
            raise ValueError(f"inference_mode must be 'sparse' or 'dense', got {value!r}")
        self._inference_mode = value

    # ----------------------------------------------------------------- statistics
    def reset_macs_stats(self) -> None:
        """Forget the active-position counts used by :meth:`count_macs`."""
        self._stats_depth: float | None = None
        self._stats_pixels = 0
        self._stats_active = [0] * self.num_blocks   # positions with G_l > 0
        self._stats_dilated = [0] * self.num_blocks  # their 3x3 dilation
        self._stats_executed = [0] * self.num_blocks  # positions the tiles computed

    def _record(self, index: int, active: int, dilated: int, executed: int) -> None:
        self._stats_active[index] += active
        self._stats_dilated[index] += dilated
        self._stats_executed[index] += executed

    def active_fractions(self) -> dict:
        """Per-block fractions of LR positions (active, dilated, executed by tiles)."""
        total = max(self._stats_pixels, 1)
        return {
            "target_depth": self._stats_depth,
            "pixels": self._stats_pixels,
            "active": [a / total for a in self._stats_active],
            "dilated": [a / total for a in self._stats_dilated],
            "executed": [a / total for a in self._stats_executed],
        }

    def train(self, mode: bool = True):
        if mode:  # the weights are about to change: old counts no longer apply
            self.reset_macs_stats()
        return super().train(mode)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self.reset_macs_stats()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ------------------------------------------------------------------- forward
    def predict_depth(self, z0: torch.Tensor, depth) -> torch.Tensor:
        depth = torch.as_tensor(depth, dtype=z0.dtype, device=z0.device).reshape(-1)
        if depth.numel() == 1:
            depth = depth.expand(z0.shape[0])
        return self.adapter(z0, depth)

    def gate(self, depth_map: torch.Tensor, index: int) -> torch.Tensor:
        """G_l for the 0-based block ``index`` (l = index + 1)."""
        return torch.clamp(depth_map - index, 0, 1)

    def forward(self, x: torch.Tensor, depth=None) -> torch.Tensor:
        """``depth``: the desired depth for this call (default ``self.target_depth``)."""
        target = self.target_depth if depth is None else depth
        sparse = not self.training and self.inference_mode == "sparse"
        return self._forward(x, target, sparse=sparse)[0]

    def _forward(self, x: torch.Tensor, depth, *, sparse: bool):
        z0 = self._head(x)
        depth_map = self.predict_depth(z0, depth)
        record = not self.training
        if record:
            self.last_depth_map = depth_map.detach()
            mean_depth = float(torch.as_tensor(depth).float().mean())
            if self._stats_depth != mean_depth:  # counts are per target depth
                self.reset_macs_stats()
                self._stats_depth = mean_depth
            self._stats_pixels += depth_map.numel()
        if sparse:
            z = self._sparse_body(z0, depth_map)
        else:
            z = z0
            for index, block in enumerate(self.blocks):
                gate = self.gate(depth_map, index)
                if record:
                    active = gate > 0
                    count = int(active.sum())
                    self._record(index, count, int(_dilate(active).sum()), depth_map.numel())
                z = z + gate * block(z)
        return self._reconstruct(z, z0), depth_map

    def training_step(self, batch: dict, progress: float):
        lr = batch["lr"]
        depth = torch.rand(lr.shape[0], device=lr.device, dtype=lr.dtype) * self.num_blocks
        sr, depth_map = self._forward(lr, depth, sparse=False)
        if self.adapter.constraint == "hard":
            return sr, {}  # mean(d_hat) = d by construction
        # The budget holds where the L1 term looks: with a loss border the edge pixels are
        # free, and counting them would let the interior run deeper than d (a 32-pixel LR
        # patch with a 4-pixel border is 44 % edge).
        edge = int(batch.get("loss_border", 0))
        seen = depth_map[..., edge:-edge, edge:-edge] if edge > 0 else depth_map
        excess = torch.relu(seen.mean(dim=(1, 2, 3)) - depth)
        return sr, {"depth": self.depth_loss_weight * excess.mean()}

    # ------------------------------------------------------------ sparse blocks
    def _sparse_body(self, z0: torch.Tensor, depth_map: torch.Tensor) -> torch.Tensor:
        """Run the blocks on active tiles only; the state lives in a padded NHWC tensor."""
        n, c, h, w = z0.shape
        t = self.tile_size
        th, tw = -(-h // t), -(-w // t)
        hp, wp = th * t, tw * t
        # 2-pixel zero border for the two 3x3 convs, plus padding up to whole tiles.
        state = F_.pad(z0, (2, 2 + wp - w, 2, 2 + hp - h)).permute(0, 2, 3, 1).contiguous()
        dmap = F_.pad(depth_map, (0, wp - w, 0, hp - h))[:, 0]  # n x hp x wp, zero outside
        halo_rows = torch.arange(t + 4, device=z0.device)
        inner = torch.arange(t, device=z0.device)
        mid = torch.arange(t + 2, device=z0.device)
        for index, block in enumerate(self.blocks):
            gate = torch.clamp(dmap - index, 0, 1)
            active = gate > 0
            count = int(active.sum())
            if count == 0:
                break  # G_l = 0 everywhere, and G_{l+1} <= G_l: deeper blocks are idle too
            tile_active = active.view(n, th, t, tw, t).any(dim=4).any(dim=2)
            tiles = tile_active.nonzero()
            dilated = int(_dilate(active[:, None, :h, :w]).sum())
            if tiles.shape[0] >= DENSE_TILE_FRACTION * tile_active.numel():
                self._record(index, count, dilated, n * h * w)
                z = state[:, 2:2 + h, 2:2 + w].permute(0, 3, 1, 2)
                delta = gate[:, None, :h, :w] * block(z)
                state[:, 2:2 + h, 2:2 + w] += delta.permute(0, 2, 3, 1)
                continue
            self._record(index, count, dilated, tiles.shape[0] * t * t)
            bi, ty, tx = tiles[:, 0], tiles[:, 1] * t, tiles[:, 2] * t
            rows = ty[:, None] + halo_rows  # padded coordinates of each tile with halo
            cols = tx[:, None] + halo_rows
            patches = state[bi[:, None, None], rows[:, :, None], cols[:, None, :]]
            patches = patches.permute(0, 3, 1, 2)  # K x C x (t+4) x (t+4), channels-last
            hidden = torch.relu(F_.conv2d(patches, block.conv1.weight, block.conv1.bias))
            # conv2 zero-pads conv1's output at the image border: zero hidden outside.
            row_ok = (ty[:, None] - 1 + mid < h) & (ty[:, None] - 1 + mid >= 0)
            col_ok = (tx[:, None] - 1 + mid < w) & (tx[:, None] - 1 + mid >= 0)
            inside = (row_ok[:, :, None] & col_ok[:, None, :]).unsqueeze(1)
            hidden = hidden * inside
            residual = F_.conv2d(hidden, block.conv2.weight, block.conv2.bias)
            tile_gate = gate[bi[:, None, None], ty[:, None, None] + inner[:, None],
                             tx[:, None, None] + inner[None, :]]
            update = patches[:, :, 2:-2, 2:-2] + tile_gate[:, None] * residual
            state[bi[:, None, None], (ty[:, None] + 2 + inner)[:, :, None],
                  (tx[:, None] + 2 + inner)[:, None, :]] = update.permute(0, 2, 3, 1)
        return state[:, 2:2 + h, 2:2 + w].permute(0, 3, 1, 2).contiguous()

    # -------------------------------------------------------------------- MACs
    def count_macs(self, lr_shape: tuple) -> int:
        """MACs at ``lr_shape``: blocks counted on active positions only.

        Uses the per-block active fractions of the evaluation forwards at the current
        ``target_depth`` since the last reset; if none were seen, calibrates on the shipped
        Set5 (bicubic LR). In ``"dense"`` mode every block counts everywhere.
        """
        h, w = int(lr_shape[-2]), int(lr_shape[-1])
        batch = int(lr_shape[0]) if len(lr_shape) == 4 else 1
        pixels = batch * h * w
        fixed = (self._fixed_macs_per_pixel() + self.adapter.macs_per_pixel()) * pixels
        conv_macs = self.features * self.features * 9
        if self.inference_mode == "dense":
            return int(fixed + self.num_blocks * 2 * conv_macs * pixels)
        if self._stats_pixels == 0 or self._stats_depth != float(self.target_depth):
            self.calibrate()
        fractions = self.active_fractions()
        block_macs = sum(conv_macs * (d + a) for d, a in zip(fractions["dilated"], fractions["active"]))
        return int(round(fixed + block_macs * pixels))

    @torch.no_grad()
    def calibrate(self, images: list[torch.Tensor] | None = None) -> dict:
        """Record active fractions at ``target_depth`` on ``images`` (default: Set5 LR)."""
        if images is None:
            images = _set5_lr_tensors(self.scale)
        was_training = self.training
        self.eval()
        self.reset_macs_stats()
        for image in images:
            self(image.to(self.rgb_mean.device))
        fractions = self.active_fractions()
        if was_training:
            nn.Module.train(self, True)  # keep the counts just gathered (train() resets them)
        return fractions

    # ----------------------------------------------------------------- weights
    def load_backbone(self, path: str | os.PathLike) -> "AdaDSR":
        """Initialise from a trained ``AdaDSR-plain`` of the same shape (adapter untouched)."""
        state = load_state_dict(path)
        own = self.state_dict()
        backbone_keys = [k for k in own if not k.startswith("adapter.")]
        missing = [k for k in backbone_keys if k not in state]
        unexpected = [k for k in state if k not in own]
        wrong = [k for k in backbone_keys if k in state and state[k].shape != own[k].shape]
        if missing or unexpected or wrong:
            problem = (f"missing {missing[:3]}" if missing else
                       f"unexpected {unexpected[:3]}" if unexpected else f"shape mismatch {wrong[:3]}")
            raise WeightsError(f"not a backbone of {self.model_id or 'AdaDSR'}: {problem}", path=path)
        super().load_state_dict({k: state[k] for k in backbone_keys}, strict=False)
        self.reset_macs_stats()
        return self


def _set5_lr_tensors(scale: int) -> list[torch.Tensor]:
    """The LR inputs of the shipped Set5 exactly as the standard protocol makes them."""
    test_set = find_test_set(Path(SHIPPED_DATA, "Set5"))
    samples = prepare_samples(test_set, scale, "rgb", get_protocol("standard"))
    return [sample.lr.float() for sample in samples]


@register_family("AdaDSR", id_fields=("D", "F"), color="rgb", paper="adadsr",
                 defaults={"D": 8, "F": 32}, test_config={"scale": 2, "D": 2, "F": 8},
                 budget_overrides=DEEP_QUICK_BUDGET)
def adadsr(scale: int, D: int = 8, F: int = 32, lam: float = DEFAULT_LAMBDA,
           target_depth: float | None = None, tile_size: int = DEFAULT_TILE,
           constraint: str = "soft") -> AdaDSR:
    """AdaDSR: EDSR-style blocks gated per pixel by an adapter's depth map (sparse inference)."""
    model = AdaDSR(scale, D, F, lam=lam, tile_size=tile_size, constraint=constraint)
    if target_depth is not None:
        model.target_depth = float(target_depth)
    return model


@register_family("AdaDSR-plain", id_fields=("D", "F"), color="rgb", paper="adadsr",
                 defaults={"D": 8, "F": 32}, test_config={"scale": 2, "D": 2, "F": 8},
                 budget_overrides=DEEP_QUICK_BUDGET)
def adadsr_plain(scale: int, D: int = 8, F: int = 32) -> PlainEDSR:
    """AdaDSR's plain EDSR-style backbone (no adapter), trained first to initialise AdaDSR."""
    return PlainEDSR(scale, D, F)
