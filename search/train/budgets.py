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
from search.paths import REPO_ROOT

PARAMS_FILE = REPO_ROOT / "params.yaml"
LR_SCHEDULES = ("constant", "cosine", "step")

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
}
_INT_KEYS = ("steps", "batch_size", "patch_size", "warmup_steps", "loss_border")
_FLOAT_KEYS = ("lr", "min_lr", "gamma", "weight_decay", "grad_clip", "final_loss_window")


def _read_params(path: Path) -> dict:
    if not path.is_file():
        raise UserError("params file not found", path=path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"invalid YAML ({' '.join(str(exc).split())})", path=path) from None
    budgets = data.get("budgets") if isinstance(data, dict) else None
    if not isinstance(budgets, dict):
        raise UserError("no 'budgets:' mapping", path=path)
    return budgets


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
    """Check keys and types; return a new dict with defaults filled in (``name`` added)."""
    if not isinstance(budget, dict):
        raise UserError(f"budget {name!r} must be a mapping, got {type(budget).__name__}", path=source)
    budget = copy.deepcopy(budget)
    overrides = budget.pop("overrides", None) or {}
    budget.pop("name", None)
    budget.pop("overrides_applied", None)  # a resolved budget passed back in
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise UserError(f"budget {name!r}: overrides must map a family name to a mapping", path=source)
    resolved = _check_keys(budget, name, source)
    for family, values in overrides.items():
        _check_keys(values, f"{name}.overrides.{family}", source, fill=False)
    resolved["overrides"] = overrides
    resolved["name"] = name
    return resolved


def _check_keys(values: dict, name: str, source, *, fill: bool = True) -> dict:
    unknown = [k for k in values if k not in BUDGET_DEFAULTS]
    if unknown:
        raise UserError(f"budget {name!r}: unknown key(s) {', '.join(map(str, unknown))}; "
                        f"allowed: {', '.join(BUDGET_DEFAULTS)}, overrides", path=source)
    merged = {**copy.deepcopy(BUDGET_DEFAULTS), **values} if fill else dict(values)
    try:
        for key in _INT_KEYS:
            if key in merged:
                value = merged[key]
                if isinstance(value, bool) or int(value) != float(value):
                    raise ValueError(f"{key} must be an integer, got {value!r}")
                merged[key] = int(value)
        for key in _FLOAT_KEYS:
            if key in merged:
                merged[key] = float(merged[key])
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: steps: .inf
        raise UserError(f"budget {name!r}: {exc}", path=source) from None
    problems = []
    for key in ("steps", "batch_size", "patch_size"):
        if key in merged and merged[key] < 1:
            problems.append(f"{key} must be >= 1")
    if merged.get("loss_border", 0) < 0:
        problems.append("loss_border must be >= 0")
    if "lr" in merged and not merged["lr"] > 0:
        problems.append("lr must be > 0")
    if "lr_schedule" in merged and merged["lr_schedule"] not in LR_SCHEDULES:
        problems.append(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, "
                        f"not {merged['lr_schedule']!r}")
    if "milestones" in merged and not isinstance(merged["milestones"], (list, tuple)):
        problems.append("milestones must be a list")
    if "betas" in merged and (not isinstance(merged["betas"], (list, tuple)) or len(merged["betas"]) != 2):
        problems.append("betas must be a list of two numbers")
    if "final_loss_window" in merged and not 0 < merged["final_loss_window"] <= 1:
        problems.append("final_loss_window must be in (0, 1]")
    if problems:
        raise UserError(f"budget {name!r}: {'; '.join(problems)}", path=source)
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
