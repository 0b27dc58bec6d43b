"""Pixel-wise training of the one-layer eSR models: whitened single-pixel neighbourhoods.

A one-layer model (``per_pixel`` + ``pixel_filter``, see ``search/models/esr.py``) maps the
``K x K`` LR neighbourhood ``x`` of each LR pixel to its ``s x s`` HR block through one linear
filter bank ``W`` and a head. Two things make its training several times cheaper than
training on patches, for the same function (budget key ``sampling: pixels``):

* **Independent pixels** (:class:`search.data.training.NeighbourhoodBank`): a batch of
  pixels drawn from the whole training set instead of a few patches of neighbouring,
  correlated pixels; no patch borders, so no pixels lost to a loss border; one matrix
  product per step, no convolution or pixel shuffle.
* **Whitened neighbourhoods.** Neighbouring pixels of natural images are correlated
  (correlation ~0.9), so the second-moment matrix ``M = E[x x^T]`` of the taps is badly
  conditioned and gradient steps on ``W`` crawl along its small eigen-directions. Training
  instead ``V`` on ``x P`` with ``P = M^(-1/2)`` (ZCA) is the same model,
  ``x W^T = (x P) V^T`` for ``W = V P`` (``P`` symmetric), on inputs with identity second
  moment. ``M`` is averaged over the 8 flips/rotations, so ``P`` commutes with the tap
  permutations of augmentation and the bank can be whitened once. The trained ``W = V P``
  is written back into the model's filter: inference is the authors' layer, unchanged.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from search.data.training import NeighbourhoodBank

# Eigenvalues of M below this fraction of the largest are treated as this fraction (a
# constant image region makes M singular; those directions are then not amplified 1e6-fold).
WHITENING_FLOOR = 1e-6


def supports_pixelwise(model: nn.Module) -> bool:
    """True for models that declare a per-pixel head and a single trained filter bank."""
    return callable(getattr(model, "per_pixel", None)) and isinstance(getattr(model, "pixel_filter", None),
                                                                        nn.Parameter)


def whitening_matrix(moment: np.ndarray) -> np.ndarray:
    """ZCA whitening ``M^(-1/2)`` of a symmetric positive semi-definite second-moment matrix."""
    values, vectors = np.linalg.eigh(np.asarray(moment, dtype=np.float64))
    values = np.maximum(values, WHITENING_FLOOR * max(float(values.max()), 1e-30))
    return (vectors * values**-0.5) @ vectors.T


class PixelwiseObjective:
    """L1 of a one-layer model on batches of whitened single-pixel neighbourhoods.

    ``parameters`` holds the one trained tensor ``V`` (the filter bank in whitened
    coordinates, initialised from the model's filter so that training starts from the same
    function); :meth:`finish` writes ``W = V P`` back into the model.
    """

    def __init__(self, model: nn.Module, bank: NeighbourhoodBank, pixels_per_step: int,
                 device: str | torch.device = "cpu"):
        self.model, self.bank, self.pixels_per_step = model, bank, int(pixels_per_step)
        self.device = torch.device(device)
        weight = model.pixel_filter
        self.shape = weight.shape
        whitening = whitening_matrix(bank.second_moment())
        bank.transform_features(whitening)
        self.whitening = torch.as_tensor(whitening, dtype=torch.float32, device=self.device)
        start = weight.detach().reshape(self.shape[0], -1).double().cpu() @ torch.linalg.inv(
            torch.as_tensor(whitening))  # V = W P^-1, so that V P = W
        self.filters = nn.Parameter(start.float().to(self.device))
        self.parameters = [self.filters]

    def loss(self, progress: float) -> tuple[torch.Tensor, dict]:
        features, targets = self.bank.sample(self.pixels_per_step)
        features = torch.from_numpy(features).to(self.device)
        targets = torch.from_numpy(targets).to(self.device)
        predicted = self.model.per_pixel(features @ self.filters.t())
        l1 = (predicted - targets).abs().mean()
        return l1, {"l1": l1}

    def finish(self) -> None:
        with torch.no_grad():
            self.model.pixel_filter.copy_((self.filters @ self.whitening).reshape(self.shape))
