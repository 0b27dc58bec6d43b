"""Resolving a torch device name once for every step that runs models (evaluate, profile)."""

from __future__ import annotations

import socket

import torch

from search.errors import UserError


def resolve_torch_device(name: str | torch.device) -> torch.device:
    """``torch.device(name)``, or a UserError when that device is not usable here."""
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UserError(f"invalid torch device {str(name)!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"torch device {str(name)!r} requested but CUDA is not available on {socket.gethostname()}")
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise UserError(f"torch device {str(name)!r} requested but MPS is not available")
    return device
