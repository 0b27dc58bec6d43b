"""Model registry: one file per family, one registered constructor per family.

A *model id* names a configuration canonically: ``<Family>_s<scale>[_<Key><value>...]``,
e.g. ``eSR-TM_s2_K3_C4`` or ``FSRCNN_s3_D56_S12_M4`` (the ids the eSR authors published).
Family names never contain ``_``; keys are letters, values are numbers.

Registering a family::

    @register_family("eSR-MAX", id_fields=("K", "C"), color="gray", paper="esr")
    def esr_max(scale: int, K: int, C: int) -> nn.Module: ...

Every model built by :func:`create_model` gets the attributes ``model_id``, ``family``,
``scale`` and ``color`` (``"gray"``: 1 channel in/out; ``"rgb"``: 3 channels), and takes
``N x C x h x w`` float input in [0, 1], returning ``N x C x (s*h) x (s*w)`` (unclamped).

Training contract (used by :mod:`search.train`): a model may define
``training_step(batch, progress) -> (sr, {name: extra_loss_tensor})`` where ``batch`` is a
dict with at least ``lr`` and ``hr`` tensors and ``progress`` is the fraction of the
training budget done (0..1, for schedules such as SMSR's tau). :class:`SRModel` provides
the default (plain forward, no extra terms).
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from torch import nn

from search.data.protocols import Protocol, get_protocol
from search.errors import ModelIdError, UserError

_TOKEN = re.compile(r"^([A-Za-z]+)(-?\d+(?:\.\d+)?)$")


class SRModel(nn.Module):
    """Optional base class with the default training hook."""

    model_id: str = ""
    family: str = ""
    scale: int = 1
    color: str = "rgb"

    def training_step(self, batch: dict, progress: float):
        return self(batch["lr"]), {}


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model id: family, scale and structural hyper-parameters."""

    family: str
    scale: int
    hparams: dict[str, Any] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        return format_model_id(self.family, self.scale, **self.hparams)


@dataclass(frozen=True)
class FamilyInfo:
    name: str
    builder: Callable[..., nn.Module]
    id_fields: tuple[str, ...]
    color: str
    paper: str | None
    default_protocol: str
    defaults: dict[str, Any]
    released_weights: Callable[[ModelSpec], Path | None] | None
    description: str
    # The family's contract with the rest of the suite (docs/ARCHITECTURE.md, "Adding a family"):
    # a small configuration the contract tests build (tests/test_family_contract.py, ONNX
    # export), and training-budget changes per budget name ({"quick": {"lr": 0.03}}), applied
    # before any ``overrides:`` of the budget in params.yaml (the user's file has the last word).
    test_config: dict[str, Any] = field(default_factory=dict)
    budget_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    source_file: str = ""


# Deep families cost seconds per step on a CPU: under `quick` they get few steps (a ranking
# signal, not convergence; docs/training.md).
DEEP_QUICK_BUDGET = {"quick": {"steps": 300, "batch_size": 8}}

_FAMILIES: dict[str, FamilyInfo] = {}
_ALIASES: dict[str, str] = {}


def register_family(
    name: str,
    *,
    id_fields: tuple[str, ...] = (),
    color: str = "rgb",
    paper: str | None = None,
    default_protocol: str | None = None,
    defaults: dict[str, Any] | None = None,
    released_weights: Callable[[ModelSpec], Path | None] | None = None,
    aliases: tuple[str, ...] = (),
    test_config: dict[str, Any] | None = None,
    budget_overrides: dict[str, dict[str, Any]] | None = None,
):
    """Decorator registering ``builder(scale, **hparams) -> nn.Module`` as a family.

    ``test_config``: ``scale`` + hyper-parameters of a small model for the contract tests
    (default: the family's defaults at scale 2). ``budget_overrides``: ``{budget name:
    {key: value}}`` this family needs under a budget (e.g. a larger learning rate for the
    one-layer eSR models).
    """
    if "_" in name:
        raise ValueError(f"family names may not contain '_': {name!r}")
    if color not in ("gray", "rgb"):
        raise ValueError(f"color must be 'gray' or 'rgb', not {color!r}")

    def decorator(builder: Callable[..., nn.Module]):
        if name in _FAMILIES:
            raise ValueError(f"family {name!r} registered twice")
        protocol = default_protocol or ("esr" if paper == "esr" else "standard")
        _FAMILIES[name] = FamilyInfo(
            name=name,
            builder=builder,
            id_fields=tuple(id_fields),
            color=color,
            paper=paper,
            default_protocol=protocol,
            defaults=dict(defaults or {}),
            released_weights=released_weights,
            description=(builder.__doc__ or "").strip().splitlines()[0] if builder.__doc__ else "",
            test_config=dict(test_config or {}),
            budget_overrides={str(k): dict(v) for k, v in (budget_overrides or {}).items()},
            source_file=str(getattr(sys.modules.get(builder.__module__), "__file__", "") or ""),
        )
        for alias in aliases:
            _ALIASES[alias.lower()] = name
        return builder

    return decorator


def list_families() -> list[str]:
    _ensure_loaded()
    return sorted(_FAMILIES)


def get_family(name: str) -> FamilyInfo:
    _ensure_loaded()
    if name in _FAMILIES:
        return _FAMILIES[name]
    if name.lower() in _ALIASES:
        return _FAMILIES[_ALIASES[name.lower()]]
    lowered = {k.lower(): k for k in _FAMILIES}
    if name.lower() in lowered:
        return _FAMILIES[lowered[name.lower()]]
    close = difflib.get_close_matches(name, list(_FAMILIES) + list(_ALIASES), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ModelIdError(f"unknown model family {name!r}{hint}; known: {', '.join(sorted(_FAMILIES))}")


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def parse_model_id(model_id: str) -> ModelSpec:
    """``eSR-TM_s2_K3_C4`` -> ModelSpec('eSR-TM', 2, {'K': 3, 'C': 4})."""
    _ensure_loaded()
    tokens = str(model_id).strip().split("_")
    if not tokens or not tokens[0]:
        raise ModelIdError(f"empty model id {model_id!r}")
    info = get_family(tokens[0])
    scale = None
    hparams: dict[str, Any] = {}
    for token in tokens[1:]:
        match = _TOKEN.match(token)
        if not match:
            raise ModelIdError(
                f"cannot parse {token!r} in model id {model_id!r}: expected <key><number>, "
                f"e.g. s2 or K3 (format: {_id_template(info)})"
            )
        key, value = match.group(1), _number(match.group(2))
        if key == "s":
            scale = int(value)
        elif key in info.id_fields:
            hparams[key] = value
        else:
            raise ModelIdError(
                f"unknown key {key!r} in model id {model_id!r} (format: {_id_template(info)})"
            )
    if scale is None:
        if "scale" in info.defaults:
            scale = int(info.defaults["scale"])
        else:
            raise ModelIdError(f"model id {model_id!r} has no scale (format: {_id_template(info)})")
    missing = [k for k in info.id_fields if k not in hparams and k not in info.defaults]
    if missing:
        raise ModelIdError(
            f"model id {model_id!r} lacks {', '.join(missing)} (format: {_id_template(info)})"
        )
    for key in info.id_fields:
        hparams.setdefault(key, info.defaults.get(key))
    return ModelSpec(info.name, scale, hparams)


def _format_value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def format_model_id(family: str, scale: int, **hparams: Any) -> str:
    info = get_family(family)
    parts = [info.name, f"s{int(scale)}"]
    for key in info.id_fields:
        if key in hparams and hparams[key] is not None:
            parts.append(f"{key}{_format_value(hparams[key])}")
        elif key in info.defaults:
            parts.append(f"{key}{_format_value(info.defaults[key])}")
    return "_".join(parts)


def _id_template(info: FamilyInfo) -> str:
    return "_".join([info.name, "s#"] + [f"{k}#" for k in info.id_fields])


def create_model(model_id: str | None = None, *, family: str | None = None,
                 scale: int | None = None, **hparams: Any) -> nn.Module:
    """Build a model from an id string or from family + scale + hyper-parameters.

    Extra keyword arguments that are not part of the id (e.g. ``K`` when given with an id)
    override the parsed values; unknown keyword arguments are passed to the builder.
    """
    _ensure_loaded()
    if model_id is not None:
        spec = parse_model_id(model_id)
        family_name, spec_scale = spec.family, spec.scale
        merged = {**spec.hparams, **hparams}
        scale = scale if scale is not None else spec_scale
    else:
        if family is None:
            raise ModelIdError("create_model needs a model id or a family")
        family_name = get_family(family).name
        merged = dict(hparams)
    info = _FAMILIES[family_name]
    if scale is None:
        scale = info.defaults.get("scale")
        if scale is None:
            raise ModelIdError(f"{family_name}: no scale given")
    kwargs = {k: v for k, v in info.defaults.items() if k != "scale"}
    kwargs.update(merged)
    try:
        model = info.builder(scale=int(scale), **kwargs)
    except TypeError as exc:
        raise ModelIdError(f"{family_name}: bad hyper-parameters {kwargs}: {exc}") from None
    except ValueError as exc:
        raise ModelIdError(f"{family_name}: {exc}") from None
    id_hparams = {k: kwargs.get(k) for k in info.id_fields}
    model.model_id = format_model_id(family_name, int(scale), **id_hparams)
    model.family = family_name
    model.scale = int(scale)
    model.color = info.color
    return model


def create_test_model(family: str) -> nn.Module:
    """The family's small configuration (``test_config``; default: its defaults at scale 2),
    built as the contract tests and the ONNX check build it."""
    info = get_family(family)
    config = dict(info.test_config)
    scale = config.pop("scale", info.defaults.get("scale", 2))
    return create_model(family=info.name, scale=scale, **config)


def released_weights_path(model_id: str) -> Path | None:
    """Path of the released weights for ``model_id``, or None if the family has none."""
    spec = parse_model_id(model_id)
    info = get_family(spec.family)
    if info.released_weights is None:
        return None
    return info.released_weights(spec)


_LOADED = False


def _ensure_loaded() -> None:
    """Import every module of ``search.models`` once, so each family registers itself."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib
    import pkgutil

    import search.models as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in ("registry", "weights") and not module.name.startswith("_"):
            importlib.import_module(f"search.models.{module.name}")


_MODEL_FILES: dict[Path, list[str]] = {}


def load_model_files(paths) -> list[str]:
    """Import model files from outside the package (a space's ``model_files:``), so that the
    families they register exist in this process; returns the families they registered.

    A model file is ordinary Python that calls :func:`register_family`, exactly like a file
    under ``search/models/`` (it runs with the rights of whoever loads the space, as an
    import does). Each file is imported once per process, so Ray workers and a resumed study
    can call this again with the same list. Problems are one-line user errors.
    """
    import importlib.util
    import traceback

    _ensure_loaded()
    registered: list[str] = []
    for given in paths:
        path = Path(given).resolve()
        if path in _MODEL_FILES:
            registered.extend(_MODEL_FILES[path])
            continue
        if not path.is_file() or path.suffix != ".py":
            raise UserError("model file not found (a Python file registering a family)", path=given)
        before = set(_FAMILIES)
        name = f"search_model_file_{len(_MODEL_FILES)}_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # the user's code: say where it failed, in one line
            sys.modules.pop(name, None)
            for family in set(_FAMILIES) - before:  # a half-imported file registers nothing
                del _FAMILIES[family]
            frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
            line = exc.lineno if isinstance(exc, SyntaxError) else (
                frame.lineno if frame is not None and Path(frame.filename) == path else None)
            where = f" (line {line})" if line else ""
            text = " ".join(str(exc).split())
            raise UserError(f"cannot import model file{where}: {type(exc).__name__}: {text}", path=given) from None
        _MODEL_FILES[path] = sorted(set(_FAMILIES) - before)
        registered.extend(_MODEL_FILES[path])
    return registered


def default_protocol_name(model: nn.Module) -> str:
    """The protocol a model is scored with when none is given (its family's default)."""
    own = getattr(model, "default_protocol", None)
    if own:
        return own
    family = getattr(model, "family", None)
    if family:
        try:
            return get_family(family).default_protocol
        except UserError:
            pass
    return "standard"


def resolve_protocol(model: nn.Module, protocol: str | Protocol | None) -> Protocol:
    return get_protocol(protocol if protocol is not None else default_protocol_name(model))
