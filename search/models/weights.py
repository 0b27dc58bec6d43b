"""Loading weights safely (``weights_only=True``) and strictly, with one-line errors.

What a file can say about the model it was made for is checked; the formats differ:

* the released eSR ``.model``, IMDN ``.pth`` and SMSR ``.pt`` files are bare state dicts
  (no model id inside); released eSR files are *named* by their model id, which is checked;
* :func:`save_weights` writes ``{"model_id", "family", "scale", "state_dict"}``; a
  checkpoint dict carrying ``model_id`` / ``family`` (also under ``meta`` / ``metadata``)
  must match the model;
* the trainer's ``weights.pt`` is written by :func:`save_weights`; one written before it was
  is a bare state dict, whose ``train_log.json`` beside it names the model id, which must match.

Every tensor must be dense (strided), real, finite and hold data: a NaN/inf weight would load
and make every metric NaN, a sparse (or meta) tensor would fail deep inside
``load_state_dict``.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from search.errors import UserError, WeightsError
from search.models.registry import parse_model_id

_WRAPPER_KEYS = ("state_dict", "model", "params", "params_ema", "net", "generator")
_META_KEYS = ("model_id", "family")
_META_WRAPPERS = ("meta", "metadata")
TRAIN_LOG = "train_log.json"  # written by search.train beside a trial's weights.pt


def _first_sentence(exc: BaseException) -> str:
    # torch's message goes on to suggest weights_only=False: keep only its first sentence
    return (str(exc).strip().splitlines() or [""])[0].split(". ")[0]


def _torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` on CPU; its warnings (pickle protocol, sparse
    invariants, ...) are silenced so a refused file gives the user one line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file, pickle with non-tensor objects, ...
        raise WeightsError(f"cannot read weights ({type(exc).__name__}: {_first_sentence(exc)})",
                           path=path) from None


def _metadata(obj: Any) -> dict[str, str]:
    """``model_id`` / ``family`` strings a checkpoint dict carries (top level or ``meta``)."""
    meta: dict[str, str] = {}
    if not isinstance(obj, dict):
        return meta
    sources = [obj] + [obj[k] for k in _META_WRAPPERS if isinstance(obj.get(k), dict)]
    for source in sources:
        for key in _META_KEYS:
            if isinstance(source.get(key), str) and key not in meta:
                meta[key] = source[key]
    return meta


def _check_tensor(key: str, value: torch.Tensor, path: Path) -> None:
    if value.layout != torch.strided:
        layout = str(value.layout).replace("torch.", "")
        raise WeightsError(f"tensor {key!r} is stored as {layout} (sparse); only dense tensors "
                           f"can be loaded", path=path)
    if value.is_meta or value.device.type != "cpu":
        raise WeightsError(f"tensor {key!r} holds no data on the CPU (device {value.device})", path=path)
    if value.is_quantized or value.is_complex():
        raise WeightsError(f"tensor {key!r} has unsupported dtype {str(value.dtype).replace('torch.', '')}",
                           path=path)
    if value.is_floating_point() and value.numel() and not bool(torch.isfinite(value).all()):
        nan = int(torch.isnan(value).sum())
        inf = value.numel() - nan - int(torch.isfinite(value).sum())
        raise WeightsError(f"tensor {key!r} {tuple(value.shape)} holds non-finite values "
                           f"({nan} NaN, {inf} infinite)", path=path)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(state_dict, metadata)`` of a weights file: :func:`load_state_dict` plus the
    ``model_id`` / ``family`` the file declares (empty for bare state dicts)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError("weights file not found", path=path)
    obj: Any = _torch_load(path)
    meta = _metadata(obj)
    for key in _WRAPPER_KEYS:
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if isinstance(obj, dict) and meta:  # a flat dict with its metadata beside the tensors
        obj = {k: v for k, v in obj.items()
               if not (k in _META_KEYS + _META_WRAPPERS + ("scale",) and not isinstance(v, torch.Tensor))}
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError("file does not hold a state dict of tensors", path=path)
    for key, value in obj.items():
        _check_tensor(str(key), value, path)
    prefixes = ("module.", "model.")
    for prefix in prefixes:
        if obj and all(k.startswith(prefix) for k in obj):
            obj = {k[len(prefix):]: v for k, v in obj.items()}
    return obj, meta


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint with ``weights_only=True``; unwrap common wrappers and prefixes.

    Refuses (WeightsError naming the file and tensor) sparse, complex or quantized tensors
    and non-finite (NaN/inf) values.
    """
    return read_checkpoint(path)[0]


def save_weights(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save ``model``'s state dict with its ``model_id``, ``family`` and ``scale``, which
    :func:`load_weights` checks against the model it loads into."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload: dict[str, Any] = {"state_dict": state}
    for key in ("model_id", "family"):
        if getattr(model, key, ""):
            payload[key] = str(getattr(model, key))
    if getattr(model, "scale", None):
        payload["scale"] = int(model.scale)
    torch.save(payload, path)
    return path


def _canonical_id(text: str) -> str:
    try:
        return parse_model_id(text).model_id
    except UserError:
        return text


def _check_metadata(model: nn.Module, meta: dict[str, str], path: Path) -> None:
    """The model id / family a checkpoint (or the trainer's log beside it) declares must match."""
    model_id = getattr(model, "model_id", "")
    family = getattr(model, "family", "")
    source = ""
    if not meta and path.name == "weights.pt" and (path.parent / TRAIN_LOG).is_file():
        try:
            log = json.loads((path.parent / TRAIN_LOG).read_text())
        except (OSError, ValueError):
            log = None
        if isinstance(log, dict) and isinstance(log.get("model_id"), str):
            meta = {"model_id": log["model_id"]}
            source = f" (per {TRAIN_LOG} beside it)"
    file_id = meta.get("model_id")
    if model_id and file_id and _canonical_id(file_id) != _canonical_id(model_id):
        raise WeightsError(f"weights are for {file_id}{source}, not {model_id}", path=path)
    file_family = meta.get("family")
    if family and file_family and file_family.lower() != family.lower():
        raise WeightsError(f"weights are for family {file_family}, not {family} ({model_id or family})",
                           path=path)


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

    Besides names and shapes, the model id / family a file declares (its name if it is a
    model id, :func:`save_weights` metadata, the trainer's ``train_log.json``) must match.

    A model may define ``adapt_state_dict(state_dict) -> state_dict`` to map an official
    checkpoint's key names onto its own.
    """
    _check_file_names_this_model(model, Path(path))
    state, meta = read_checkpoint(path)
    _check_metadata(model, meta, Path(path))
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
