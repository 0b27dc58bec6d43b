"""ESPCN as trained and released by the eSR authors (Navarrete Michelini et al., WACV 2022).

A gray variant of Shi et al.'s sub-pixel CNN with a sigmoid output:

    f1 = tanh(conv5x5_{1->D}(x) + b1)            (skipped when D = 0)
    f2 = tanh(conv3x3_{D->S}(f1) + b2)           (conv3x3_{1->S} when D = 0)
    y  = sigmoid(pixel_shuffle_s(conv3x3_{S->s^2}(f2) + b3))

Because of the sigmoid the output lies in (0, 1). Layer names (``net.0``, ``net.2``,
``net.4``) follow the authors' ``models.py``; the D = 0 models (``net.0``, ``net.2``) are
among the released ones. Parameters: ``26 D + 9 D S + S + 9 S s^2 + s^2`` (D > 0) or
``10 S + 9 S s^2 + s^2`` (D = 0).
"""

from __future__ import annotations

import torch
from torch import nn

from search.models.esr import SMALL_CNN_BUDGETS, positive_int, released_esr_weights
from search.models.registry import SRModel, register_family


class ESPCN(SRModel):
    def __init__(self, scale: int, D: int, S: int):
        super().__init__()
        self.scale = positive_int("scale", scale)
        self.depth_features = int(D)
        if self.depth_features != D or self.depth_features < 0:
            raise ValueError(f"D must be an integer >= 0, got {D!r}")
        self.features = positive_int("S", S)
        layers: list[nn.Module] = []
        if self.depth_features > 0:
            layers += [nn.Conv2d(1, self.depth_features, 5, padding=2), nn.Tanh()]
        layers += [
            nn.Conv2d(max(self.depth_features, 1), self.features, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(self.features, self.scale**2, 3, padding=1),
            nn.PixelShuffle(self.scale),
            nn.Sigmoid(),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@register_family("ESPCN", id_fields=("D", "S"), color="gray", paper="esr",
                 released_weights=released_esr_weights, test_config={"scale": 3, "D": 1, "S": 3},
                 budget_overrides=SMALL_CNN_BUDGETS)
def espcn(scale: int, D: int, S: int) -> ESPCN:
    """ESPCN (eSR authors' gray variant): 5x5 conv to D, tanh, 3x3 to S, tanh, sub-pixel, sigmoid."""
    return ESPCN(scale, D, S)
