"""SMSR: sparse-mask super-resolution (Wang et al., "Exploring Sparsity in Image
Super-Resolution for Efficient Inference", CVPR 2021).

Structure (parameter names follow the authors' ``model/smsr.py``, so their released
``SMSR_x2.pt`` loads strictly)::

    x0   = sub_mean(255 x)                                 fixed 1x1 conv: subtract DIV2K mean
    f    = head(x0)                                         conv3x3 3->64, ReLU, conv3x3 64->64
    f_m  = SMM_m(f_{m-1}), m = 1..5                         sparse mask modules
    g    = collect(cat(f_1..f_5)) + f                       conv1x1 320->64, ReLU, conv3x3
    y    = add_mean(tail(g) + bicubic_x_s(x0)) / 255        conv3x3 64->3 s^2, pixel shuffle

Each SMM predicts a *spatial mask* (hourglass: conv3x3 64->16, ReLU, avg-pool 2, conv3x3,
ReLU, transposed conv to 2 logits -> Gumbel softmax) and holds learnt *channel masks*
(``ch_mask``: 2 logits per channel per layer -> Gumbel softmax) for its body, four 3x3
convs without bias, whose ReLU outputs are fused by a 1x1 ``collect`` conv; channel
attention and a residual follow. A channel whose mask says "sparse" is computed only where
the spatial mask is 1.

Modes:

* training (``model.train()``): soft masks with temperature ``tau``; each conv's dense and
  sparse parts are combined as in the paper, ``y = conv(x_d) (m_d + m_s s) + conv(x_s) s``
  (``m`` channel masks of the output, ``x_d/x_s`` the input's dense/sparse channels,
  ``s`` the spatial mask). :meth:`SMSR.training_step` sets ``tau`` from the schedule at
  the current progress and adds ``lambda(progress) * density`` (the paper's sparsity
  regulariser eta: the mean fraction of feature entries computed; lambda = 0.1 warms up
  linearly over the first 5% of training, 50 of the authors' 1000 epochs; it is given in
  the paper's units, relative to an L1 on the 0..255 scale).
* inference, ``inference="sparse"`` (default): hard masks; real sparse convolution (gather
  + GEMM, see :mod:`search.models._sparse_conv`), so the work falls with sparsity.
* inference, ``inference="dense"``: hard masks applied to dense convolutions (a reference;
  it gives the sparse path's output up to rounding).

The spatial-mask hourglass needs even feature sizes; for an odd LR height/width the
mask logits are extended by one replicated row/column (the authors' test code instead
cropped such inputs to even size).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from search.models._sparse_conv import (
    SpatialIndex,
    SplitConv,
    Workspace,
    build_spatial_index,
    channel_rows,
    rows_to_feature,
    sparse_conv3x3,
    split_conv,
)
from search.models.registry import (
    DEEP_QUICK_BUDGET,
    ModelSpec,
    SRModel,
    register_family,
)
from search.models.tau_schedules import build_tau_schedule
from search.paths import weights_root

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)  # the authors' data mean, part of the trained model
INFERENCE_MODES = ("sparse", "dense")


def gumbel_softmax(logits: torch.Tensor, dim: int, tau: float) -> torch.Tensor:
    """Soft Gumbel-softmax sample of ``logits`` along ``dim`` at temperature ``tau``."""
    uniform = torch.rand_like(logits).clamp_(min=torch.finfo(logits.dtype).tiny)
    gumbel = -torch.log(-torch.log(uniform))
    return ((logits + gumbel) / tau).softmax(dim)


class MeanShift(nn.Module):
    """Adds ``sign * rgb_range * mean`` per channel as a fixed 1x1 conv (EDSR convention).

    The weight and bias are buffers (saved, never trained) so the official keys load.
    """

    def __init__(self, rgb_range: float, mean=DIV2K_RGB_MEAN, sign: int = -1):
        super().__init__()
        self.register_buffer("weight", torch.eye(3).view(3, 3, 1, 1))
        self.register_buffer("bias", sign * rgb_range * torch.tensor(mean, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: global mean -> 1x1 down -> ReLU -> 1x1 up -> sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(x.mean((2, 3), keepdim=True))


@dataclass
class _SparsePlan:
    """A block's kernels split by its hard channel masks (rebuilt when the weights change)."""

    layers: list[SplitConv]
    collect_dense: list[torch.Tensor | None]  # per layer: C_d_i x C_out, or None
    collect_sparse: list[torch.Tensor | None]  # per layer: C_s_i x C_out, or None
    collect_bias: torch.Tensor


class SparseMaskBlock(nn.Module):
    """SMSR's SMB: four masked 3x3 convs (no bias) + ReLU, fused by a 1x1 ``collect`` conv."""

    def __init__(self, channels: int, n_layers: int = 4):
        super().__init__()
        self.channels = channels
        self.n_layers = n_layers
        # logits [dense, sparse] per output channel per layer
        self.ch_mask = nn.Parameter(torch.rand(1, channels, n_layers, 2))
        self.body = nn.Sequential(*[nn.Conv2d(channels, channels, 3, 1, 1, bias=False) for _ in range(n_layers)])
        self.collect = nn.Conv2d(channels * n_layers, channels, 1)
        self._plan: _SparsePlan | None = None
        self._plan_key: tuple | None = None

    def sparse_channels(self) -> torch.Tensor:
        """Hard channel mask, ``C x L`` bool: True where a layer's channel is sparse."""
        logits = self.ch_mask.detach()[0]
        return logits[..., 1] > logits[..., 0]

    def hard_channel_mask(self) -> torch.Tensor:
        """``1 x C x L x 2`` float one-hot [dense, sparse] of :meth:`sparse_channels`."""
        sparse = self.sparse_channels()
        return torch.stack([~sparse, sparse], dim=-1).to(self.ch_mask.dtype).unsqueeze(0)

    def forward_masked(self, x: torch.Tensor, spatial: torch.Tensor, channel: torch.Tensor) -> torch.Tensor:
        """Dense computation with (soft or hard) masks: ``spatial`` B x 1 x H x W, ``channel`` 1 x C x L x 2."""
        features = []
        feature = x
        for i, conv in enumerate(self.body):
            out_dense, out_sparse = channel[:, :, i : i + 1, :1], channel[:, :, i : i + 1, 1:]
            if i == 0:
                mixed = conv(feature) * (out_dense + out_sparse * spatial)
            else:
                in_dense, in_sparse = channel[:, :, i - 1 : i, :1], channel[:, :, i - 1 : i, 1:]
                # the sparse input reaches any output only at masked positions, because
                # m_d + m_s = 1 for each channel (the authors' four-term sum simplified)
                mixed = conv(feature * in_dense) * (out_dense + out_sparse * spatial) \
                    + conv(feature * in_sparse) * spatial
            feature = F.relu(mixed)
            features.append(feature)
        return self.collect(torch.cat(features, 1))

    def _sparse_plan(self) -> _SparsePlan:
        key = tuple(p._version for p in self.parameters()) + tuple(
            (p.data_ptr(), p.dtype, p.device) for p in self.parameters()
        )
        if self._plan is not None and key == self._plan_key:
            return self._plan
        with torch.no_grad():
            sparse = self.sparse_channels()
            everything = torch.arange(self.channels, device=sparse.device)
            dense_idx = [everything[~sparse[:, i]] for i in range(self.n_layers)]
            sparse_idx = [everything[sparse[:, i]] for i in range(self.n_layers)]
            layers = []
            for i, conv in enumerate(self.body):
                if i == 0:
                    dense_in, sparse_in = everything, everything[:0]
                else:
                    dense_in, sparse_in = dense_idx[i - 1], sparse_idx[i - 1]
                layers.append(split_conv(conv.weight.detach(), dense_in, sparse_in, dense_idx[i], sparse_idx[i]))
            weight = self.collect.weight.detach()[:, :, 0, 0]  # C_out x (C L)
            collect_dense = [
                weight[:, i * self.channels + dense_idx[i]].t().contiguous() if len(dense_idx[i]) else None
                for i in range(self.n_layers)
            ]
            collect_sparse = [
                weight[:, i * self.channels + sparse_idx[i]].t().contiguous() if len(sparse_idx[i]) else None
                for i in range(self.n_layers)
            ]
            self._plan = _SparsePlan(layers, collect_dense, collect_sparse, self.collect.bias.detach())
            self._plan_key = key
        return self._plan

    def forward_sparse(self, x: torch.Tensor, index: SpatialIndex, workspace: Workspace) -> torch.Tensor:
        """Hard-mask inference for one image: ``x`` 1 x C x H x W channels-last."""
        plan = self._sparse_plan()
        dense, sparse = x, None
        dense_features, sparse_features = [], []
        for conv in plan.layers:
            dense, sparse = sparse_conv3x3(dense, sparse, conv, index, workspace)
            dense.relu_()
            sparse.relu_()
            dense_features.append(dense)
            sparse_features.append(sparse)
        height, width, count = index.height, index.width, index.count
        out = None
        for feature, weight in zip(dense_features, plan.collect_dense):
            if weight is None:
                continue
            if out is None:
                out = torch.addmm(plan.collect_bias, channel_rows(feature), weight)
            else:
                out.addmm_(channel_rows(feature), weight)
        if out is None:
            out = plan.collect_bias.expand(height * width, -1).clone()
        if count and any(weight is not None for weight in plan.collect_sparse):
            gathered = workspace.get("collected", count, self.channels, x)
            gathered.zero_()
            for feature, weight in zip(sparse_features, plan.collect_sparse):
                if weight is not None:
                    gathered.addmm_(feature, weight)
            out.index_add_(0, index.positions, gathered)
        return rows_to_feature(out, height, width)


class SparseMaskModule(nn.Module):
    """SMSR's SMM: spatial-mask hourglass + sparse mask block + channel attention + residual."""

    def __init__(self, channels: int, n_layers: int = 4):
        super().__init__()
        quarter = channels // 4
        self.spa_mask = nn.Sequential(
            nn.Conv2d(channels, quarter, 3, 1, 1),
            nn.ReLU(True),
            nn.AvgPool2d(2),
            nn.Conv2d(quarter, quarter, 3, 1, 1),
            nn.ReLU(True),
            nn.ConvTranspose2d(quarter, 2, 3, 2, 1, output_padding=1),
        )
        self.body = SparseMaskBlock(channels, n_layers)
        self.ca = ChannelAttention(channels)

    def spatial_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``B x 2 x H x W`` logits [dense, sparse] (odd sizes: last row/column replicated)."""
        logits = self.spa_mask(x)
        missing_h, missing_w = x.shape[-2] - logits.shape[-2], x.shape[-1] - logits.shape[-1]
        if missing_h or missing_w:
            logits = F.pad(logits, (0, missing_w, 0, missing_h), mode="replicate")
        return logits

    @staticmethod
    def hard_spatial_mask(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, 1:] > logits[:, :1]


def released_smsr_weights(spec: ModelSpec) -> Path:
    """The authors' release (``<weights>/smsr/SMSR_x<scale>.pt``; only x2 was published)."""
    return weights_root() / "smsr" / f"SMSR_x{spec.scale}.pt"


class SMSR(SRModel):
    def __init__(self, scale: int = 2, n_feats: int = 64, n_modules: int = 5, n_layers: int = 4,
                 rgb_range: float = 255.0, tau_schedule=None, sparsity_weight: float = 0.1,
                 sparsity_warmup: float = 0.05, inference: str = "sparse"):
        super().__init__()

        for name, value in (("scale", scale), ("n_feats", n_feats), ("n_modules", n_modules), ("n_layers", n_layers)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if n_feats % 16:
            raise ValueError(f"n_feats must be a multiple of 16 (mask hourglass / channel attention), got {n_feats}")
        if not 0 <= float(sparsity_warmup) <= 1:
            raise ValueError(f"sparsity_warmup is a fraction of training in [0, 1], got {sparsity_warmup!r}")
        if float(sparsity_weight) < 0:
            raise ValueError(f"sparsity_weight must be >= 0, got {sparsity_weight!r}")
        self.scale = int(scale)
        self.n_feats = int(n_feats)
        self.n_modules = int(n_modules)
        self.n_layers = int(n_layers)
        self.rgb_range = float(rgb_range)
        self.tau_schedule = build_tau_schedule(tau_schedule)
        self.sparsity_weight = float(sparsity_weight)
        self.sparsity_warmup = float(sparsity_warmup)
        self.tau = self.tau_schedule(0.0)
        self.inference = "sparse"
        self.set_inference(inference)

        self.sub_mean = MeanShift(self.rgb_range, sign=-1)
        self.head = nn.Sequential(
            nn.Conv2d(3, n_feats, 3, 1, 1), nn.ReLU(True), nn.Conv2d(n_feats, n_feats, 3, 1, 1)
        )
        self.body = nn.Sequential(*[SparseMaskModule(n_feats, n_layers) for _ in range(n_modules)])
        self.collect = nn.Sequential(
            nn.Conv2d(n_feats * n_modules, n_feats, 1), nn.ReLU(True), nn.Conv2d(n_feats, n_feats, 3, 1, 1)
        )
        self.tail = nn.Sequential(nn.Conv2d(n_feats, 3 * self.scale**2, 3, 1, 1), nn.PixelShuffle(self.scale))
        self.add_mean = MeanShift(self.rgb_range, sign=1)
        self.reset_mask_stats()
        self.last_density: float | None = None
        self._workspace = Workspace()

    # ----------------------------------------------------------------------------- control
    def set_inference(self, mode: str) -> "SMSR":
        if mode not in INFERENCE_MODES:
            raise ValueError(f"inference must be one of {INFERENCE_MODES}, got {mode!r}")
        self.inference = mode
        return self

    def set_tau(self, tau: float) -> None:
        """Gumbel-softmax temperature of every spatial and channel mask."""
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau!r}")
        self.tau = float(tau)

    def sparsity_weight_at(self, progress: float) -> float:
        """lambda(progress): linear warm-up over the first ``sparsity_warmup`` of training."""
        if self.sparsity_warmup <= 0:
            return self.sparsity_weight
        return self.sparsity_weight * min(max(float(progress), 0.0) / self.sparsity_warmup, 1.0)

    def sparsity_loss(self, density: torch.Tensor, progress: float) -> torch.Tensor:
        """The regulariser added to the suite's L1: ``lambda(progress) * density / rgb_range``.

        ``sparsity_weight`` is in the paper's units: the authors add ``0.1 * density`` to an
        L1 on the 0..255 scale, the suite's L1 is on 0..1, so the term is divided by
        ``rgb_range`` to keep the same balance."""
        return self.sparsity_weight_at(progress) / self.rgb_range * density

    def reset_mask_stats(self) -> None:
        """Forget the masked-position counts accumulated by hard-mask forwards."""
        self._masked_positions = [0] * self.n_modules
        self._total_positions = [0] * self.n_modules
        self._strip_outputs = [0] * self.n_modules  # run-strip conv outputs (sparse path only)

    # ----------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            sr, density = self._forward_soft(x)
            self.last_density = float(density.detach())
            return sr
        x0 = self.sub_mean(x * self.rgb_range)
        head = self.head(x0)
        if self.inference == "sparse":
            head = head.contiguous(memory_format=torch.channels_last)  # the layout the gathers need
            with torch.no_grad():  # inference only: the gathers write into reused buffers
                per_image = [self._body_sparse(head[i : i + 1]) for i in range(head.shape[0])]
            features = per_image[0] if len(per_image) == 1 else torch.cat(per_image)
        else:
            features = self._body_dense_hard(head)
        return self._reconstruct(features, head, x0)

    def training_step(self, batch: dict, progress: float):
        """Set tau from the schedule, forward with soft masks, add the sparsity term."""
        self.set_tau(self.tau_schedule(progress))
        sr, density = self._forward_soft(batch["lr"])
        self.last_density = float(density.detach())
        return sr, {"sparsity": self.sparsity_loss(density, progress)}

    def _reconstruct(self, features: torch.Tensor, head: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        fused = self.collect(features) + head
        upsampled = F.interpolate(x0, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return self.add_mean(self.tail(fused) + upsampled) / self.rgb_range

    def _forward_soft(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft Gumbel masks; returns (sr, density) where density is the mean fraction of
        feature entries computed (dense channels everywhere, sparse ones where masked)."""
        x0 = self.sub_mean(x * self.rgb_range)
        head = self.head(x0)
        feature = head
        outputs, densities = [], []
        for module in self.body:
            spatial = gumbel_softmax(module.spatial_logits(feature), 1, self.tau)[:, 1:]
            channel = gumbel_softmax(module.body.ch_mask, 3, self.tau)
            feature = module.ca(module.body.forward_masked(feature, spatial, channel)) + feature
            outputs.append(feature)
            # mean over (batch, channel x layer, position) of m_s s + m_d, factorised
            densities.append(channel[..., 1].mean() * spatial.mean() + channel[..., 0].mean())
        return self._reconstruct(torch.cat(outputs, 1), head, x0), torch.stack(densities).mean()

    def _record(self, index: int, mask: torch.Tensor, spatial_index: SpatialIndex | None = None) -> None:
        self._masked_positions[index] += int(mask.sum())
        self._total_positions[index] += int(mask.numel())
        if spatial_index is not None and spatial_index.count:
            self._strip_outputs[index] += spatial_index.strip_width - 2

    def _body_dense_hard(self, head: torch.Tensor) -> torch.Tensor:
        feature = head
        outputs = []
        for m, module in enumerate(self.body):
            mask = module.hard_spatial_mask(module.spatial_logits(feature))
            self._record(m, mask)
            out = module.body.forward_masked(feature, mask.to(feature.dtype), module.body.hard_channel_mask())
            feature = module.ca(out) + feature
            outputs.append(feature)
        return torch.cat(outputs, 1)

    def _body_sparse(self, head: torch.Tensor) -> torch.Tensor:
        feature = head
        outputs = []
        for m, module in enumerate(self.body):
            mask = module.hard_spatial_mask(module.spatial_logits(feature))[0, 0]
            index = build_spatial_index(mask)
            self._record(m, mask, index)
            out = module.body.forward_sparse(feature, index, self._workspace)
            feature = module.ca(out) + feature
            outputs.append(feature)
        return torch.cat(outputs, 1)

    # ----------------------------------------------------------------------------- cost
    def spatial_density(self) -> list[float] | None:
        """Per module: fraction of positions in the hard spatial mask, over the hard-mask
        forwards since :meth:`reset_mask_stats` (None before any)."""
        if not all(self._total_positions):
            return None
        return [m / t for m, t in zip(self._masked_positions, self._total_positions)]

    def mask_report(self) -> dict:
        """Measured sparsity: per module and layer, the fraction of the conv's output
        entries (channel x position) that the sparse path skips, plus channel splits."""
        density = self.spatial_density()
        if density is None:
            raise RuntimeError("no hard-mask forward recorded yet: run the model in eval mode first")
        layers = []
        for m, module in enumerate(self.body):
            sparse = module.body.sparse_channels()
            for i in range(self.n_layers):
                fraction = float(sparse[:, i].float().mean())
                layers.append({
                    "module": m, "layer": i, "sparse_channels": int(sparse[:, i].sum()),
                    "spatial_density": density[m], "sparsity": fraction * (1.0 - density[m]),
                })
        return {
            "layers": layers,
            "spatial_density": density,
            "average_sparsity": sum(layer["sparsity"] for layer in layers) / len(layers),
        }

    def count_macs(self, lr_shape: tuple, x: torch.Tensor | None = None, *, executed: bool = False) -> int:
        """Multiply-accumulates of one forward at ``lr_shape`` (``[N,] [C,] H, W``).

        Training mode or ``inference="dense"``: every conv in full. ``inference="sparse"``:
        the masked convs count only their computed parts, at the mean spatial density of
        each module measured over the hard-mask forwards since :meth:`reset_mask_stats`
        (or, if ``x`` is given, over a forward of ``x`` run now). Counted: all convs and the
        mean shifts; not counted: the bicubic skip and element-wise ops. ``executed=True``
        (sparse path) counts what the implementation runs instead of what the split needs:
        the zero dense->dense block of the fused kernel and the discarded run-junction
        outputs included (strip outputs per masked position as measured).
        """
        height, width = int(lr_shape[-2]), int(lr_shape[-1])
        batch = int(lr_shape[0]) if len(lr_shape) == 4 else 1
        sparse = (not self.training) and self.inference == "sparse"
        if sparse and x is not None:
            was_training = self.training
            self.eval()
            self.reset_mask_stats()
            with torch.no_grad():
                self(x)
            self.train(was_training)
        density = self.spatial_density() if sparse else None
        if sparse and density is None:
            warnings.warn("SMSR.count_macs: no hard-mask forward seen yet; counting all positions as masked "
                          "(an upper bound of the sparse cost)", stacklevel=2)
            density = [1.0] * self.n_modules
        positions = height * width
        c = self.n_feats
        quarter = c // 4
        half_positions = (height // 2) * (width // 2)
        macs = 3 * 3 * positions  # sub_mean (1x1, 3->3)
        macs += 9 * 3 * c * positions + 9 * c * c * positions  # head
        for m, module in enumerate(self.body):
            macs += 9 * c * quarter * positions + 9 * quarter * quarter * half_positions
            macs += 9 * quarter * 2 * half_positions  # transposed conv: per input position
            macs += 2 * c * (c // 16)  # channel attention
            if density is None:
                macs += self.n_layers * 9 * c * c * positions + self.n_layers * c * c * positions
            else:
                masked = density[m] * positions
                plan = module.body._sparse_plan()
                if executed and self._masked_positions[m]:
                    strip = masked * self._strip_outputs[m] / self._masked_positions[m]
                    macs += sum(conv.executed_macs(positions, strip) for conv in plan.layers)
                else:
                    macs += sum(conv.macs(positions, masked) for conv in plan.layers)
                dense_in = sum(len(conv.dense_out) for conv in plan.layers)
                sparse_in = sum(len(conv.sparse_out) for conv in plan.layers)
                macs += c * (dense_in * positions + sparse_in * masked)
        macs += self.n_modules * c * c * positions + 9 * c * c * positions  # collect
        macs += 9 * c * 3 * self.scale**2 * positions  # tail
        macs += 3 * 3 * positions * self.scale**2  # add_mean
        return int(round(batch * macs))


@register_family("SMSR", color="rgb", paper="smsr",
                 defaults={"scale": 2, "n_feats": 64, "n_modules": 5, "n_layers": 4},
                 released_weights=released_smsr_weights,
                 test_config={"scale": 2, "n_feats": 16, "n_modules": 1, "n_layers": 2},
                 budget_overrides=DEEP_QUICK_BUDGET)
def smsr(scale: int, n_feats: int = 64, n_modules: int = 5, n_layers: int = 4, tau_schedule=None,
         sparsity_weight: float = 0.1, sparsity_warmup: float = 0.05, inference: str = "sparse") -> SMSR:
    """SMSR (Wang et al., CVPR 2021): learnt spatial + channel masks, sparse-conv inference."""
    return SMSR(scale, n_feats=n_feats, n_modules=n_modules, n_layers=n_layers, tau_schedule=tau_schedule,
                sparsity_weight=sparsity_weight, sparsity_warmup=sparsity_warmup, inference=inference)
