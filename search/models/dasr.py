"""DASR: degradation-adaptive SR with a mixture of experts (Liang, Zeng & Zhang, ECCV 2022,
"Efficient and Degradation-Adaptive Network for Real-World Image Super-Resolution").

Structure (after csjliang/DASR's ``Degradation_Predictor`` and ``MSRResNetDynamic``)::

    p   = GAP(lrelu(conv5(... 6 convs ...)))(x)     degradation predictor: 33 numbers
    a   = softmax(W2 lrelu(W1 p))                   two-layer MLP: N mixing weights
    net = sum_n a_n * expert_n                      one SRResNet per image (weights mixed)
    y   = net(x) + bilinear_x_s(x)

The N experts are SRResNet-style networks (MSRResNet: conv, ``B`` residual blocks of two
3x3 convs without BN, pixel-shuffle upsampling, two HR convs, bilinear skip) of width ``F``.
Their weights are mixed per image *before* the convolution, so a forward pass runs one
network whatever N is: every layer stores ``N x out x in x k x k`` weights and computes the
per-sample weights ``sum_n a_bn W_n`` (``N x params`` mult-adds per image, negligible), then
one grouped convolution with groups = batch size. Inference cost is independent of N;
parameters grow with N.

Training (:meth:`DASR.training_step`): the LR input is degraded on the fly from the HR
patch with :mod:`search.data.degradations` (weak/standard/severe with probabilities
0.3/0.3/0.4), and the predictor's 33 numbers are regressed to the true parameter vector
with L1 (weight ``regression_weight``, default 1 as in the released config). The trainer
adds L1(sr, hr). Perceptual and GAN terms of the paper are not implemented (off in this
suite's budgets).

Ids: ``DASR_s4_N5_F32_B4`` (N experts, width F, B residual blocks; x4 default). The
paper's network is ``DASR_s4_N5_F64_B16`` (predictor width 64).

Deviations (docs/dasr.md): softmax on the mixing weights and a LeakyReLU between the two
MLP layers (the released ``MappingNet`` is two bare Linear layers), predictor width = F
unless ``predictor_width`` is given.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from search.data.degradations import VECTOR_SIZE, degrade_batch, load_settings
from search.models.registry import DEEP_QUICK_BUDGET, SRModel, register_family

MLP_HIDDEN = 15  # the released MappingNet's hidden width
DEFAULT_REGRESSION_WEIGHT = 1.0


class MixedConv2d(nn.Module):
    """A conv layer holding N experts' weights, mixed per sample by ``mix`` (B x N)."""

    def __init__(self, experts: int, in_channels: int, out_channels: int, kernel_size: int = 3,
                 init_scale: float = 1.0):
        super().__init__()
        self.experts = int(experts)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = int(kernel_size)
        self.weight = nn.Parameter(torch.empty(experts, out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(experts, out_channels))
        fan_in = in_channels * kernel_size * kernel_size
        for n in range(experts):  # each expert drawn like a fresh nn.Conv2d (Kaiming), then scaled
            nn.init.kaiming_normal_(self.weight.data[n], a=0, mode="fan_in")
            self.weight.data[n] *= init_scale
        nn.init.zeros_(self.bias)
        self._fan_in = fan_in

    def mixed(self, mix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample weights ``B x out x in x k x k`` and biases ``B x out``."""
        weight = torch.einsum("bn,noikl->boikl", mix, self.weight)
        bias = mix @ self.bias
        return weight, bias

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        weight, bias = self.mixed(mix)
        out = F.conv2d(
            x.reshape(1, batch * self.in_channels, height, width),
            weight.reshape(batch * self.out_channels, self.in_channels, self.kernel_size, self.kernel_size),
            bias.reshape(batch * self.out_channels),
            padding=self.kernel_size // 2,
            groups=batch,
        )
        return out.view(batch, self.out_channels, height, width)

    def conv_macs(self, height: int, width: int) -> int:
        return self.out_channels * self.in_channels * self.kernel_size ** 2 * height * width

    def mixing_macs(self) -> int:
        return self.experts * (self.weight[0].numel() + self.bias[0].numel())


class DegradationPredictor(nn.Module):
    """Six 5x5 convs with LeakyReLU (the 4th strided), global average pooling -> 33 numbers,
    then a two-layer MLP -> softmax over N experts."""

    def __init__(self, experts: int, width: int = 64, in_channels: int = 3, params: int = VECTOR_SIZE):
        super().__init__()
        widths = [in_channels, width, width, width, width, width, params]
        strides = [1, 1, 1, 2, 1, 1]
        layers: list[nn.Module] = []
        for index, stride in enumerate(strides):
            layers.append(nn.Conv2d(widths[index], widths[index + 1], 5, stride=stride, padding=2))
            layers.append(nn.LeakyReLU(0.2))
        self.convs = nn.Sequential(*layers)
        # He init keeps the activations' scale through the six layers (PyTorch's default
        # conv init shrinks it at every layer, so the pooled output would start almost
        # independent of the image).
        for module in self.convs:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, a=0.2, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)
        self.mapping = nn.Sequential(nn.Linear(params, MLP_HIDDEN), nn.LeakyReLU(0.2),
                                     nn.Linear(MLP_HIDDEN, experts))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        params = self.convs(x).mean(dim=(2, 3))
        mix = torch.softmax(self.mapping(params), dim=1)
        return params, mix

    def macs(self, height: int, width: int) -> int:
        total = 0
        for module in self.convs:
            if isinstance(module, nn.Conv2d):
                stride = module.stride[0]
                height, width = (height - 1) // stride + 1, (width - 1) // stride + 1
                total += module.out_channels * module.in_channels * 25 * height * width
        total += sum(m.in_features * m.out_features for m in self.mapping if isinstance(m, nn.Linear))
        total += self.mapping[-1].out_features  # softmax: one division per mixing weight
        return total


class MixedSRResNet(nn.Module):
    """MSRResNet with every conv a :class:`MixedConv2d` of N experts."""

    def __init__(self, scale: int, experts: int, width: int, blocks: int, channels: int = 3):
        super().__init__()
        self.scale = int(scale)
        self.conv_first = MixedConv2d(experts, channels, width)
        # MSRResNet initialises residual-branch convs with Kaiming x 0.1 for stability.
        self.body = nn.ModuleList(
            nn.ModuleList([MixedConv2d(experts, width, width, init_scale=0.1),
                           MixedConv2d(experts, width, width, init_scale=0.1)])
            for _ in range(blocks)
        )
        if self.scale == 4:
            self.upconvs = nn.ModuleList([MixedConv2d(experts, width, width * 4),
                                          MixedConv2d(experts, width, width * 4)])
            self.shuffle = 2
        elif self.scale in (2, 3):
            self.upconvs = nn.ModuleList([MixedConv2d(experts, width, width * self.scale ** 2)])
            self.shuffle = self.scale
        else:
            raise ValueError(f"scale must be 2, 3 or 4, got {scale}")
        self.conv_hr = MixedConv2d(experts, width, width)
        self.conv_last = MixedConv2d(experts, width, channels)

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.conv_first(x, mix), 0.1)
        for conv1, conv2 in self.body:
            out = out + conv2(F.relu(conv1(out, mix)), mix)
        for upconv in self.upconvs:
            out = F.leaky_relu(F.pixel_shuffle(upconv(out, mix), self.shuffle), 0.1)
        out = F.leaky_relu(self.conv_hr(out, mix), 0.1)
        out = self.conv_last(out, mix)
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)

    def mixed_convs(self) -> list[MixedConv2d]:
        return [m for m in self.modules() if isinstance(m, MixedConv2d)]

    def macs(self, height: int, width: int) -> int:
        total = self.conv_first.conv_macs(height, width)
        total += sum(c.conv_macs(height, width) for block in self.body for c in block)
        h, w = height, width
        for upconv in self.upconvs:
            total += upconv.conv_macs(h, w)
            h, w = h * self.shuffle, w * self.shuffle
        total += self.conv_hr.conv_macs(h, w) + self.conv_last.conv_macs(h, w)
        total += sum(c.mixing_macs() for c in self.mixed_convs())
        # bilinear skip: 4 taps per output value (fvcore's count for upsample_bilinear2d)
        total += 4 * self.conv_last.out_channels * h * w
        return total


class DASR(SRModel):
    def __init__(self, scale: int = 4, N: int = 5, F: int = 32, B: int = 4, *,
                 predictor_width: int | None = None,
                 regression_weight: float = DEFAULT_REGRESSION_WEIGHT):
        super().__init__()
        for name, value, low in (("N", N, 1), ("F", F, 1), ("B", B, 0)):
            if int(value) != value or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value}")
        self.scale = int(scale)
        self.experts = int(N)
        self.width = int(F)
        self.blocks = int(B)
        self.regression_weight = float(regression_weight)
        self.predictor = DegradationPredictor(self.experts, int(predictor_width or F))
        self.generator = MixedSRResNet(self.scale, self.experts, self.width, self.blocks)

    def predict(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(degradation parameters B x 33, mixing weights B x N)`` for an LR batch."""
        return self.predictor(lr)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        _, mix = self.predictor(lr)
        return self.generator(lr, mix)

    # ------------------------------------------------------------------ training
    def make_training_pair(self, hr: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The training-data hook: degrade an HR batch -> ``(lr, degradation vectors N x 33)``."""
        lr, vectors = degrade_batch(hr, rng, scale=self.scale, settings=load_settings())
        return lr.to(hr.dtype), vectors.to(hr.dtype)

    def training_step(self, batch: dict, progress: float):
        """SR output and the regression term. Uses ``batch["lr"]`` + ``batch["degradation"]``
        when the data pipeline supplies degraded pairs; otherwise (the plain trainer, whose
        ``lr`` is bicubic) degrades ``batch["hr"]`` itself with a generator seeded from the
        global torch RNG, which the trainer seeds, so runs stay reproducible."""
        if "degradation" in batch and "lr" in batch:
            lr, target = batch["lr"], batch["degradation"]
        else:
            seed = int(torch.randint(0, 2 ** 31 - 1, (1,)).item())
            lr, target = self.make_training_pair(batch["hr"], np.random.default_rng(seed))
        params, mix = self.predictor(lr)
        sr = self.generator(lr, mix)
        regression = F.l1_loss(params, target.to(params.dtype))
        return sr, {"regression": self.regression_weight * regression}

    # ------------------------------------------------------------------ cost
    def count_macs(self, lr_shape: tuple) -> int:
        """Mult-adds of one forward at LR size ``lr_shape`` (``(h, w)``, ``(C, h, w)`` or
        ``(N, C, h, w)``): predictor + weight mixing + one SRResNet (per image)."""
        shape = tuple(int(v) for v in lr_shape)
        batch = shape[0] if len(shape) == 4 else 1
        height, width = shape[-2:]
        per_image = self.predictor.macs(height, width) + self.generator.macs(height, width)
        return batch * per_image

    def active_parameters(self) -> int:
        """Parameters of the network that actually runs: predictor + one expert's weights."""
        predictor = sum(p.numel() for p in self.predictor.parameters())
        one_expert = sum(c.weight[0].numel() + c.bias[0].numel() for c in self.generator.mixed_convs())
        return predictor + one_expert


@register_family("DASR", id_fields=("N", "F", "B"), color="rgb", paper="dasr",
                 defaults={"scale": 4, "N": 5, "F": 32, "B": 4},
                 test_config={"scale": 2, "N": 2, "F": 8, "B": 1}, budget_overrides=DEEP_QUICK_BUDGET)
def dasr(scale: int, N: int = 5, F: int = 32, B: int = 4, **kwargs) -> DASR:
    """DASR: degradation predictor + N SRResNet experts mixed into one network per image."""
    return DASR(scale, N, F, B, **kwargs)
