"""Loading weights safely (``weights_only=True``) and strictly, with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from search.errors import UserError, WeightsError
from search.models.registry import parse_model_id

_WRAPPER_KEYS = ("state_dict", "model", "params", "params_ema", "net", "generator")


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint with ``weights_only=True``; unwrap common wrappers and prefixes."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError("weights file not found", path=path)
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with non-tensor objects, ...
        # torch's message goes on to suggest weights_only=False: keep only its first sentence
        detail = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
        raise WeightsError(f"cannot read weights ({type(exc).__name__}: {detail})", path=path) from None
    for key in _WRAPPER_KEYS:
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError("file does not hold a state dict of tensors", path=path)
    prefixes = ("module.", "model.")
    for prefix in prefixes:
        if obj and all(k.startswith(prefix) for k in obj):
            obj = {k[len(prefix):]: v for k, v in obj.items()}
    return obj


def _check_file_names_this_model(model: nn.Module, path: Path) -> None:
    """Released files are named by model id; many ids share key names and shapes (an
    FSRCNN file fits all three scales), so a strict load alone would accept the wrong file."""
    model_id = getattr(model, "model_id", "")
    if not model_id:
        return
    try:
        file_id = parse_model_id(path.stem).model_id
    except UserError:
        return  # not named by a model id (e.g. a trial's weights.pt)
    if file_id != model_id:
        raise WeightsError(f"weights are for {file_id}, not {model_id}", path=path)


def load_weights(model: nn.Module, path: str | os.PathLike, *, strict: bool = True) -> nn.Module:
    """Load ``path`` into ``model`` strictly; a mismatch is a one-line :class:`WeightsError`.

    A model may define ``adapt_state_dict(state_dict) -> state_dict`` to map an official
    checkpoint's key names onto its own.
    """
    _check_file_names_this_model(model, Path(path))
    state = load_state_dict(path)
    adapt = getattr(model, "adapt_state_dict", None)
    if callable(adapt):
        state = adapt(state)
    own = model.state_dict()
    name = getattr(model, "model_id", type(model).__name__)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if shapes or (strict and (missing or unexpected)):
        problems = []
        if shapes:
            problems.append(f"shape mismatch {'; '.join(shapes[:3])}" + (" ..." if len(shapes) > 3 else ""))
        if strict and missing:
            problems.append(f"missing {len(missing)} keys ({', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''})")
        if strict and unexpected:
            problems.append(f"unexpected {len(unexpected)} keys ({', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''})")
        raise WeightsError(f"weights do not match model {name}: {', '.join(problems)}", path=path)
    model.load_state_dict(state, strict=strict)
    return model
