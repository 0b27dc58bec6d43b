"""Plain bicubic upsampling (MATLAB ``imresize``) as a model, for ``--model bicubic``."""

from __future__ import annotations

import torch
from torch import nn

from search.data.imresize import resize_matrix


class MatlabBicubic(nn.Module):
    """Upscale by ``scale`` with MATLAB's bicubic kernel (float, no rounding).

    ``color="gray"`` (default) resizes the Y channel itself, as SRCNN/VDSR evaluation code
    does (this gives the canonical bicubic tables); ``color="rgb"`` resizes R, G, B.
    """

    family = "bicubic"
    default_protocol = "standard"

    def __init__(self, scale: int, color: str = "gray"):
        super().__init__()
        self.scale = int(scale)
        self.color = color
        self.model_id = f"bicubic_s{self.scale}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        rows = torch.tensor(resize_matrix(height, height * self.scale, float(self.scale)), device=x.device)
        cols = torch.tensor(resize_matrix(width, width * self.scale, float(self.scale)), device=x.device)
        out = rows @ x.double() @ cols.T
        return out.to(x.dtype)
