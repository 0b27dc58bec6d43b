"""The training objective: L1 to the HR patch plus each family's extra terms.

Families add terms (e.g. SMSR's sparsity regulariser, AdaDSR's depth penalty) by defining
``training_step(batch, progress) -> (sr, {name: scalar_tensor})``; the terms are added to
the L1 loss as returned (any weighting is the model's business). Models without the hook
are run with a plain forward pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def run_training_step(model: nn.Module, batch: dict, progress: float):
    """``(sr, extra_terms)`` from the model's hook, or a plain forward without one."""
    hook = getattr(model, "training_step", None)
    if callable(hook):
        result = hook(batch, progress)
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
            name = getattr(model, "model_id", "") or type(model).__name__
            raise TypeError(f"{name}.training_step must return (sr, {{name: loss}}), "
                            f"got {type(result).__name__}")
        return result
    return model(batch["lr"]), {}


def training_loss(model: nn.Module, batch: dict, progress: float, *, border: int = 0):
    """``(total, terms)``: total = L1(sr, hr) + sum of extra terms; ``terms`` holds tensors.

    ``border`` (LR pixels) leaves the outer ``border * scale`` HR pixels of each patch out of
    the L1 term. Convolutions zero-pad at patch edges, so there the model sees an input
    that full test images almost never show it; for tiny models (eSR: a single 3x3 conv)
    fitting those edge pixels costs more than 0.7 dB on Set5 (docs/training.md).
    """
    if border > 0:
        # hooks compute their terms on the region the L1 term sees (e.g. AdaDSR's mean depth)
        batch = {**batch, "loss_border": border}
    sr, extra = run_training_step(model, batch, progress)
    hr = batch["hr"]
    if sr.shape != hr.shape:
        name = getattr(model, "model_id", "") or type(model).__name__
        raise ValueError(f"{name}: output {tuple(sr.shape)} does not match HR patch {tuple(hr.shape)}")
    if border > 0:
        edge = border * (hr.shape[-1] // batch["lr"].shape[-1])
        sr = sr[..., edge:-edge, edge:-edge]
        hr = hr[..., edge:-edge, edge:-edge]
    terms = {"l1": F.l1_loss(sr, hr)}
    for key, value in extra.items():
        name = key if key not in terms else f"extra_{key}"
        terms[name] = value if torch.is_tensor(value) else torch.as_tensor(value, dtype=sr.dtype)
    total = sum(term.mean() for term in terms.values())
    return total, terms
