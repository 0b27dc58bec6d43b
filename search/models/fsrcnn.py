"""FSRCNN as trained and released by the eSR authors (Navarrete Michelini et al., WACV 2022).

Dong et al.'s FSRCNN on gray images with PReLU (one shared slope per layer):

    f = prelu(conv5x5_{1->D}(x))                  feature extraction
    f = prelu(conv1x1_{D->S}(f))                  shrinking
    f = prelu(conv3x3_{S->S}(f))   (M times)      mapping
    f = prelu(conv1x1_{S->D}(f))                  expanding
    y = deconv9x9_{D->1, stride s}(f)             padding (8 - s)//2 + 1, output padding (s+1) mod 2

so that the output is exactly s times the input size. Layer names (``net.0`` ... ``net.<2M+6>``)
follow the authors' ``models.py``, which builds M = 1 and M = 4 (both released); any M >= 1
works here. Parameters: ``26 D + 1 + (D S + S + 1) + M (9 S^2 + S + 1) + (S D + D + 1) + 81 D + 1``.
"""

from __future__ import annotations

import torch
from torch import nn

from search.models.esr import SMALL_CNN_BUDGETS, positive_int, released_esr_weights
from search.models.registry import SRModel, register_family


class FSRCNN(SRModel):
    def __init__(self, scale: int, D: int, S: int, M: int):
        super().__init__()
        self.scale = positive_int("scale", scale)
        self.depth_features = positive_int("D", D)
        self.features = positive_int("S", S)
        self.mapping_layers = positive_int("M", M)
        if self.scale > 10:
            raise ValueError(f"scale must be at most 10 for the 9x9 deconvolution, got {scale}")
        d, s = self.depth_features, self.features
        layers: list[nn.Module] = [nn.Conv2d(1, d, 5, padding=2), nn.PReLU(), nn.Conv2d(d, s, 1), nn.PReLU()]
        for _ in range(self.mapping_layers):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU()]
        layers += [
            nn.Conv2d(s, d, 1),
            nn.PReLU(),
            nn.ConvTranspose2d(
                d, 1, 9, stride=self.scale,
                padding=(8 - self.scale) // 2 + 1,
                output_padding=(self.scale + 1) % 2,
            ),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_family("FSRCNN", id_fields=("D", "S", "M"), color="gray", paper="esr",
                 released_weights=released_esr_weights, test_config={"scale": 3, "D": 6, "S": 3, "M": 1},
                 budget_overrides=SMALL_CNN_BUDGETS)
def fsrcnn(scale: int, D: int, S: int, M: int) -> FSRCNN:
    """FSRCNN (eSR authors' gray variant): extract D, shrink S, M 3x3 maps, expand, 9x9 deconv."""
    return FSRCNN(scale, D, S, M)
