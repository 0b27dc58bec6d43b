"""Training budgets: named schedules in ``params.yaml`` (top-level key ``budgets:``).

A budget is a dict of the keys in :data:`BUDGET_DEFAULTS`; ``patch_size`` is the **HR** patch
side (BasicSR's ``gt_size``, IMDN's ``--patch_size``), rounded down to a multiple of the
scale. A budget may carry ``overrides: {<family>: {key: value}}`` applied for models of that
family (family names as in the registry, e.g. ``eSR-TM``, ``IMDN``, or shell patterns such
as ``eSR-*``; every matching entry is applied, in file order)::

    budgets:
      quick:
        steps: 3000
        lr: 0.005
        overrides:
          IMDN: {lr: 0.0005}
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from search.errors import ModelIdError, UserError
from search.models.registry import get_family
from search.paths import resource
from search.schema import NUMBER_TEXT, validate

PARAMS_FILE = resource("params.yaml")  # the checkout's, else the packaged copy
LR_SCHEDULES = ("constant", "cosine", "step")
SAMPLINGS = ("patches", "pixels")

# Every key a budget may set, with the value used when it does not.
BUDGET_DEFAULTS: dict[str, Any] = {
    "steps": 1000,            # optimiser steps (one batch each)
    "batch_size": 16,
    "patch_size": 64,         # HR patch side
    "lr": 1e-3,               # peak learning rate (Adam)
    "lr_schedule": "cosine",  # constant | cosine | step
    "min_lr": 0.0,            # cosine: final learning rate
    "warmup_steps": 0,        # linear warm-up from lr/warmup_steps
    "milestones": [],         # step: fractions of `steps` (0..1) or absolute step numbers
    "gamma": 0.5,             # step: factor at each milestone
    "weight_decay": 0.0,
    "betas": [0.9, 0.999],
    "grad_clip": 0.0,         # max gradient norm; 0 = off
    "augment": True,          # random flips / 90-degree rotations
    "loss_border": 0,         # LR pixels at each patch edge left out of the L1 term
    "final_loss_window": 0.1,  # final_loss = mean loss over this fraction of the last steps
    "sampling": "patches",    # patches | pixels (one-layer models: whitened single pixels, search/train/pixelwise.py)
    "pixels_per_step": 4096,  # sampling: pixels: LR pixels per batch (batch_size, patch_size, loss_border unused)
}
_INT_KEYS = ("steps", "batch_size", "patch_size", "warmup_steps", "loss_border", "pixels_per_step")
_FLOAT_KEYS = ("lr", "min_lr", "gamma", "weight_decay", "grad_clip", "final_loss_window")

# JSON schemas (search/schema.py) of a budget's settings, of a budget, of params.yaml: the
# types and bounds of every key above. "number" is a finite number; an integer key also
# takes 2.0. What a schema cannot say (a base budget exists) is checked by the code below.
BUDGET_SETTINGS: dict[str, dict] = {
    "steps": {"type": "integer", "minimum": 1},
    "batch_size": {"type": "integer", "minimum": 1},
    "patch_size": {"type": "integer", "minimum": 1},
    "lr": {"type": "number", "exclusiveMinimum": 0},
    "lr_schedule": {"enum": list(LR_SCHEDULES)},
    "min_lr": {"type": "number", "minimum": 0},
    "warmup_steps": {"type": "integer", "minimum": 0},
    "milestones": {"type": "array", "items": {"type": "number", "minimum": 0}},
    "gamma": {"type": "number", "exclusiveMinimum": 0},
    "weight_decay": {"type": "number", "minimum": 0},
    "betas": {"type": "array", "items": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
              "minItems": 2, "maxItems": 2,
              "errorMessage": "expected a list of two numbers [beta1, beta2], got {got}"},
    "grad_clip": {"type": "number", "minimum": 0},
    "augment": {"type": "boolean"},
    "loss_border": {"type": "integer", "minimum": 0},
    "final_loss_window": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
    "sampling": {"enum": list(SAMPLINGS)},
    "pixels_per_step": {"type": "integer", "minimum": 1},
}
_SETTINGS_SCHEMA = {"type": "object", "properties": BUDGET_SETTINGS, "additionalProperties": False}
BUDGET_SCHEMA: dict = {
    "type": "object",
    "errorMessage": {"type": "expected a budget (a mapping of settings such as steps, lr), got {got}"},
    "properties": {
        **BUDGET_SETTINGS,
        "overrides": {"type": ["object", "null"], "additionalProperties": _SETTINGS_SCHEMA,
                      "errorMessage": {"type": "expected a mapping {family or pattern: {key: value}}, got {got}"}},
        # set by the code: a budget's name, the overrides a resolved budget had applied
        "name": {"type": "string", "readOnly": True},
        "overrides_applied": {"type": "array", "items": {"type": "string"}, "readOnly": True},
    },
    "additionalProperties": False,
}
PARAMS_SCHEMA: dict = {  # params.yaml: only budgets: is ours (studies:, papers:, ... are DVC's)
    "type": "object",
    "required": ["budgets"],
    "properties": {
        "budgets": {"type": "object", "additionalProperties": BUDGET_SCHEMA,
                    "description": "the training budgets, e.g. smoke, quick, paper"},
    },
}


def numbers_from_text(budget: Any) -> Any:
    """A copy of ``budget`` whose float settings given as numeric text are numbers: YAML 1.1
    reads ``lr: 1e-3`` (no dot) as the text '1e-3', which a budget has always accepted."""
    if not isinstance(budget, dict):
        return budget

    def converted(values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        values = dict(values)
        for key in _FLOAT_KEYS:
            text = values.get(key)
            if isinstance(text, str) and NUMBER_TEXT.fullmatch(text.strip()):
                values[key] = float(text)
        return values

    budget = converted(copy.deepcopy(budget))
    if isinstance(budget.get("overrides"), dict):
        budget["overrides"] = {family: converted(values) for family, values in budget["overrides"].items()}
    return budget


def _read_params(path: Path) -> dict:
    if not path.is_file():
        raise UserError("params file not found", path=path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"invalid YAML ({' '.join(str(exc).split())})", path=path) from None
    if isinstance(data, dict) and isinstance(data.get("budgets"), dict):
        data = {**data, "budgets": {name: numbers_from_text(budget) for name, budget in data["budgets"].items()}}
    validate(data, PARAMS_SCHEMA, source=path)  # every budget, with its key path (budgets.quick.lr)
    return data["budgets"]


def list_budgets(params_file: str | Path | None = None) -> list[str]:
    return sorted(_read_params(Path(params_file or PARAMS_FILE)))


def load_budget(name: str, params_file: str | Path | None = None) -> dict:
    """The budget ``name`` from ``params.yaml`` (validated, defaults filled in, overrides kept)."""
    path = Path(params_file or PARAMS_FILE)
    budgets = _read_params(path)
    if name not in budgets:
        close = difflib.get_close_matches(str(name), list(budgets), n=2)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserError(f"unknown training budget {name!r}{hint}; known: {', '.join(sorted(budgets))}",
                        path=path)
    return validate_budget(budgets[name], name=str(name), source=path)


def validate_budget(budget: dict, *, name: str = "<budget>", source: object | None = None) -> dict:
    """Check keys and types (BUDGET_SCHEMA); return a new dict with defaults filled in (``name``
    added). An error names the budget and the key path: ``budget 'x': overrides.IMDN.lr: ...``."""
    budget = numbers_from_text(budget)
    validate(budget, BUDGET_SCHEMA, source=source, what=f"budget {name!r}")
    overrides = budget.pop("overrides", None) or {}
    budget.pop("name", None)
    budget.pop("overrides_applied", None)  # a resolved budget passed back in
    resolved = _check_keys(budget, name, source)
    # the checked values (numbers made int/float as the setting wants), not the raw ones
    overrides = {family: _check_keys(values, f"{name}.overrides.{family}", source, fill=False)
                 for family, values in overrides.items()}
    resolved["overrides"] = overrides
    resolved["name"] = name
    return resolved


def _check_keys(values: dict, name: str, source, *, fill: bool = True) -> dict:
    """Settings (no overrides) checked against the schema, numbers made int/float, defaults
    filled in unless ``fill`` is False."""
    values = numbers_from_text(values)
    validate(values, _SETTINGS_SCHEMA, source=source, what=f"budget {name!r}")
    merged = {**copy.deepcopy(BUDGET_DEFAULTS), **values} if fill else dict(values)
    for key in _INT_KEYS:
        if key in merged:
            merged[key] = int(merged[key])  # the schema took only whole, finite numbers
    for key in _FLOAT_KEYS:
        if key in merged:
            merged[key] = float(merged[key])
    return merged


def resolve_budget(budget: str | dict | Budget, family: str | None = None) -> dict:
    """A budget name or dict -> the flat settings for ``family`` (its overrides applied).

    A dict may name a ``base`` budget from ``params.yaml`` and change some of its keys, e.g.
    ``{"base": "quick", "steps": 500}``: the base and its family overrides first, then the
    dict's own keys.
    """
    if isinstance(budget, Budget):
        budget = budget.settings
    if isinstance(budget, dict) and "base" in budget:
        changes = {k: v for k, v in budget.items() if k not in ("base", "name", "overrides_applied")}
        label = f"{budget['base']}+" + ",".join(f"{k}={v}" for k, v in changes.items())
        checked = _check_keys(changes, label, None, fill=False)
        resolved = resolve_budget(str(budget["base"]), family)
        resolved.update(copy.deepcopy(checked))
        resolved["name"] = str(budget.get("name", label))
        return resolved
    if isinstance(budget, str):
        resolved = load_budget(budget)
    else:
        resolved = validate_budget(budget, name=str(budget.get("name", "<custom>")))
    overrides = resolved.pop("overrides", {})
    applied = []
    if family is not None:
        # first what the family itself declares for this budget (its model file), then the
        # budget's own overrides: exact family names and shell patterns (``eSR-*``), in file order
        declared = family_budget_overrides(family, resolved["name"])
        if declared:
            resolved.update(declared)
            applied.append(f"{family} (family)")
        for pattern, values in overrides.items():
            if fnmatch.fnmatchcase(family.lower(), str(pattern).lower()):
                resolved.update(copy.deepcopy(values))
                applied.append(str(pattern))
    resolved["overrides_applied"] = applied
    return resolved


def family_budget_overrides(family: str, budget_name: str) -> dict:
    """What the model family declares for the budget ``budget_name`` (``register_family(...,
    budget_overrides={name: {key: value}})``), checked like a budget; {} for none or for a
    name the registry does not know."""
    try:
        info = get_family(family)
    except ModelIdError:
        return {}
    values = info.budget_overrides.get(str(budget_name))
    if not values:
        return {}
    return _check_keys(copy.deepcopy(values), f"{budget_name} (family {info.name})", info.source_file or None,
                       fill=False)


def learning_rate_at(step: int, budget: dict) -> float:
    """Learning rate for optimiser step ``step`` (0-based) under the budget's schedule."""
    import math

    total = max(1, int(budget["steps"]))
    base = float(budget["lr"])
    warmup = int(budget.get("warmup_steps", 0))
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    schedule = budget["lr_schedule"]
    if schedule == "constant":
        return base
    if schedule == "cosine":
        span = max(1, total - warmup)
        done = min(1.0, (step - warmup) / span)
        low = float(budget.get("min_lr", 0.0))
        return low + 0.5 * (base - low) * (1.0 + math.cos(math.pi * done))
    # step: multiply by gamma at each milestone (fraction of the budget or absolute step)
    milestones = [m * total if 0 < m < 1 else m for m in budget.get("milestones", [])]
    passed = sum(1 for m in milestones if step >= m)
    return base * float(budget.get("gamma", 0.5)) ** passed


@dataclass(frozen=True)
class Budget:
    """A training budget resolved once, at the entry point (``search.run``, an experiment):
    the name the user gave, and the validated settings with their ``overrides:``. Trials
    carry this object; :func:`resolve_budget` turns it into one family's flat settings
    (family-declared changes, then the overrides) without reading ``params.yaml`` again."""

    name: str
    settings: dict = field(hash=False, compare=True)

    def for_family(self, family: str | None) -> dict:
        return resolve_budget(self, family)

    def __str__(self) -> str:
        return self.name


def get_budget(budget: str | dict | Budget) -> Budget:
    """A budget name (``params.yaml``), a mapping (may name a ``base``) or a Budget -> Budget.
    A name or a mapping is read and checked here, so a bad budget fails before any trial."""
    if isinstance(budget, Budget):
        return budget
    if isinstance(budget, str):
        return Budget(budget, load_budget(budget))
    if isinstance(budget, dict) and "base" in budget:
        resolve_budget(budget)  # checks the base and the changes
        return Budget(str(budget.get("name") or budget["base"]), copy.deepcopy(budget))
    if isinstance(budget, dict):
        checked = validate_budget(budget, name=str(budget.get("name", "<custom>")))
        return Budget(checked["name"], checked)
    raise UserError(f"a training budget is a name or a mapping, not {type(budget).__name__}")
