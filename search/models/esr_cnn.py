"""edge-SR CNN (eSR-CNN, Navarrete Michelini et al., WACV 2022).

A small tanh CNN trunk followed by the template-matching head of eSR-TM, with the
authors' squared key:

    f1 = tanh(conv5x5_{1->D}(x) + b1)            (skipped when D = 0)
    f2 = tanh(conv3x3_{D->S}(f1) + b2)
    [v, k] = pixel_shuffle_s(conv3x3_{S->2 s^2 C}(f2))      (no bias)
    y = sum_c v_c * softmax_c(k * k)

Layer names (``filter.0``, ``filter.2``, ``filter.4``) follow the authors' ``models.py``.
Released grid: C in {2,4,6,8}, D in {1,3,5,7,9}, S in {3,6,9,12,15}. Parameters:
``25 D + D + 9 D S + S + 9 S * 2 s^2 C``.

D = 0 is an extension for search spaces (the released code's D = 0 branch cannot be
built): the trunk is then a single 3x3 conv from the input to S channels.
"""

from __future__ import annotations

import torch
from torch import nn

from search.models.esr import (
    SMALL_CNN_BUDGETS,
    init_identity_centre,
    positive_int,
    released_esr_weights,
)
from search.models.registry import SRModel, register_family


class EdgeSRCNN(SRModel):
    def __init__(self, scale: int, C: int, D: int, S: int):
        super().__init__()
        self.scale = positive_int("scale", scale)
        self.channels = positive_int("C", C)
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
            nn.Conv2d(self.features, 2 * self.scale**2 * self.channels, 3, padding=1, bias=False),
            nn.PixelShuffle(self.scale),
        ]
        self.filter = nn.Sequential(*layers)
        for layer in self.filter:
            if isinstance(layer, nn.Conv2d):
                init_identity_centre(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, key = torch.split(self.filter(x), self.channels, dim=1)
        return torch.sum(value * torch.softmax(key * key, dim=1), dim=1, keepdim=True)


@register_family("eSR-CNN", id_fields=("C", "D", "S"), color="gray", paper="esr",
                 released_weights=released_esr_weights, test_config={"scale": 2, "C": 2, "D": 1, "S": 3},
                 budget_overrides=SMALL_CNN_BUDGETS)
def esr_cnn(scale: int, C: int, D: int, S: int) -> EdgeSRCNN:
    """edge-SR CNN: 5x5 conv to D, tanh, 3x3 to S, tanh, 3x3 to 2*s^2*C, TM head with key^2."""
    return EdgeSRCNN(scale, C, D, S)
