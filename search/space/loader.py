"""Reading and validating space files: every problem is one SpaceError naming file, key, problem.

Two passes. First the JSON schema ``SPACE_SCHEMA`` (below; checked by :mod:`search.schema`)
checks the structure and the types: which keys exist where, text / number / list, required
keys, enumerations and bounds, each error naming its key path (``families.ESPCN.grid[1].S``).
Then code checks what a schema cannot: that families exist in the registry and
hyper-parameters are arguments of the family's constructor, that ranges are not empty, that
choices and scales are not repeated, that constraint expressions parse and hold, that grids
are small enough, that the budget and the protocol exist.

A space file is untrusted input: every size the loader works with is bounded (file bytes,
YAML nesting, expression length, grid cardinality, constraint work), each by a named
constant, so that a hostile file is one SpaceError within about a second, never a hang,
a MemoryError or a traceback. The limits are listed in docs/spaces.md.
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path
from typing import Any

import yaml

from search.data.datasets import find_test_set
from search.data.protocols import get_protocol
from search.data.training import find_training_set
from search.errors import ModelIdError, SpaceError, UserError
from search.models import get_family
from search.models.registry import load_model_files
from search.schema import find_problem
from search.space.constraints import (
    Constraint,
    ConstraintEvalError,
    ConstraintSyntaxError,
)
from search.space.safe_yaml import load_yaml
from search.space.space import (
    MAX_GRID_CONFIGURATIONS,
    RESERVED_FIELDS,
    FamilyConstraint,
    FamilySpace,
    Space,
    StudySettings,
    count_text,
    parse_objectives,
)
from search.space.values import (
    Choice,
    Dimension,
    Fixed,
    FloatRange,
    IntRange,
    format_value,
)
from search.train.budgets import BUDGET_SCHEMA, numbers_from_text, resolve_budget

DEFAULT_OBJECTIVES = "psnr_{test_set}:max,latency_ms:min"

# Largest space file read. The shipped ones are under 2 KiB; the pure-Python YAML parser
# (needed for the checks in safe_yaml) reads about 64 KiB per second.
MAX_FILE_BYTES = 64 * 1024
# Expression nodes evaluated when a family's constraints are checked on every grid point at
# load time (grid points x nodes of all its constraints): about a second of evaluation.
MAX_CONSTRAINT_WORK = 2_000_000
# Largest upscaling factor: SR papers use x2..x8 (x16 at most); a model at x10**20 would
# only fail (or exhaust memory) inside a trial.
MAX_SCALE = 16
# numpy's legacy RNG (Optuna's samplers, seed_everything) takes seeds below 2**32.
MAX_SEED = 2**32 - 1
# A study name becomes the Optuna study name and part of file names.
MAX_NAME_CHARS = 100
# Values and messages are cut to this length, so that an error stays one readable line
# even when the offending value is a 60 KB string.
MAX_SHOWN_CHARS = 80
MAX_MESSAGE_CHARS = 1000


# ---------------------------------------------------------------- the schema (search/schema.py)

def _cases(*branches: tuple[dict, dict], otherwise: dict) -> dict:
    """An if/then/else chain: the first branch whose condition the value meets applies.
    (Rather than anyOf: an error then comes from the one form the value was meant to have.)"""
    schema = otherwise
    for condition, then in reversed(branches):
        schema = {"if": condition, "then": then, "else": schema}
    return schema


_SCALAR = ["number", "string", "boolean"]
_OBJECT_TYPE = {"type": "string", "minLength": 1,
                "description": "the object's type name, as in {type: linear, initial: 1.0}"}
# A choice or a fixed value: a scalar, or a {type: name, key: value...} object (nested allowed).
# No if/then: the object keywords apply to mappings only (quick for 10,000 choices).
_VALUE = {
    "type": [*_SCALAR, "object"],
    "required": ["type"],
    "properties": {"type": _OBJECT_TYPE},
    "additionalProperties": {"$ref": "#/$defs/member"},
    "errorMessage": {"type": "expected a number, text, true/false or a {type: ...} object, got {got}"},
}
# A key of an object value: a value, or a list of values.
_MEMBER = {**_VALUE, "type": [*_SCALAR, "object", "array"], "items": {"$ref": "#/$defs/value"}, "errorMessage": {
    "type": "expected a number, text, true/false, a {type: ...} object or a list of them, got {got}"}}
_CHOICES = {"type": "array", "minItems": 1, "items": _VALUE, "errorMessage": {"minItems": "empty list of choices"}}
_RANGE = {
    "type": "object",
    "required": ["low", "high"],
    "additionalProperties": False,
    "properties": {
        "low": {"type": "number", "description": "the lower end of the range, included"},
        "high": {"type": "number", "description": "the upper end of the range, included"},
        "step": {"type": ["number", "null"], "exclusiveMinimum": 0,
                 "errorMessage": {"exclusiveMinimum": "step must be positive, got {got}"}},
        "log": {"type": "boolean"},
    },
}
# A hyper-parameter's values: choices, {choices: [...]}, a {low, high} range, an object, a value.
_DIMENSION = _cases(
    ({"type": "array"}, _CHOICES),
    ({"type": "object", "required": ["choices"]},
     {"properties": {"choices": _CHOICES}, "additionalProperties": False}),
    ({"type": "object", "anyOf": [{"required": ["low"]}, {"required": ["high"]}]}, _RANGE),
    ({"type": "object", "required": ["type"]}, _VALUE),
    otherwise={"type": _SCALAR, "errorMessage": {
        "type": "expected a list of choices, {choices: [...]}, a {low, high} range, "
                "a {type: ...} object or a single value, got {got}"}},
)
_HPARAMS = {"type": ["object", "null"], "additionalProperties": _DIMENSION}
_SCALE_MESSAGE = "a scale must be a positive integer, got {got}"
_SCALE = {"type": "integer", "minimum": 1, "maximum": MAX_SCALE, "errorMessage": {
    "type": _SCALE_MESSAGE, "minimum": _SCALE_MESSAGE,
    "maximum": f"scale {{got}} is too large (at most {MAX_SCALE})"}}
_SCALES_MESSAGE = "expected a non-empty list of integer scales, got {got}"
_SCALES = _cases(
    ({"type": "array"}, {"minItems": 1, "items": _SCALE, "errorMessage": {"minItems": _SCALES_MESSAGE}}),
    otherwise={**_SCALE, "errorMessage": {**_SCALE["errorMessage"], "type": _SCALES_MESSAGE}},
)
_EXPRESSION = {"type": "string", "pattern": r"\S",
               "description": "an expression such as 'F * R == int(F * R)'",
               "errorMessage": "expected an expression such as 'F * R == int(F * R)', got {got}"}
_CONSTRAINT = _cases(
    ({"type": "string"}, _EXPRESSION),
    otherwise={
        "type": "object",
        "required": ["expr"],
        "additionalProperties": False,
        "properties": {"expr": _EXPRESSION, "on_violation": {"enum": ["error", "skip"]},
                       "message": {"type": ["string", "null"]}},
        "errorMessage": {"type": "expected an expression or {expr: ..., on_violation: ..., message: ...}, "
                                 "got {got}"},
    },
)
_FAMILY = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "hparams": _HPARAMS,
        "grid": {"type": "array", "minItems": 1, "items": _HPARAMS,
                 "errorMessage": {"type": "expected a non-empty list of sub-grids, got {got}",
                                  "minItems": "expected a non-empty list of sub-grids, got {got}"}},
        "scales": _SCALES,
        "constraints": {"type": ["array", "null"], "items": _CONSTRAINT,
                        "errorMessage": {"type": "expected a list of constraints, got {got}"}},
    },
}
_NAMES_MESSAGE = "expected a non-empty list of names, got {got}"
_NAMES = _cases(
    ({"type": "string"}, {"pattern": r"\S", "errorMessage": _NAMES_MESSAGE}),
    otherwise={"type": "array", "minItems": 1, "errorMessage": _NAMES_MESSAGE,
               "items": {"type": "string", "pattern": r"\S", "errorMessage": "expected a name, got {got}"}},
)
_BUDGET_MESSAGE = "expected a budget name (smoke, quick, paper) or a mapping, got {got}"
_BUDGET = _cases(
    ({"type": "string"}, {"pattern": r"\S", "errorMessage": _BUDGET_MESSAGE}),
    otherwise={**BUDGET_SCHEMA, "errorMessage": {"type": _BUDGET_MESSAGE}, "properties": {
        **BUDGET_SCHEMA["properties"],
        "base": {"type": "string", "description": "a budget of params.yaml that these keys change"}}},
)
_FIXED = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "budget": _BUDGET,
        "train_sets": _NAMES,
        "test_sets": _NAMES,
        "objectives": {"type": ["string", "array", "null"], "items": {"type": "string"}, "errorMessage": {
            "type": "expected a list such as [psnr_Set14:max, latency_ms:min], got {got}"}},
        "protocol": {"type": ["string", "null"], "pattern": r"\S",
                     "errorMessage": "expected a protocol name or null, got {got}"},
        "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED,
                 "errorMessage": f"expected a non-negative integer up to {MAX_SEED}, got {{got}}"},
    },
}
SPACE_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {"value": _VALUE, "member": _MEMBER},  # for the nesting of object values
    "type": "object",
    "required": ["families"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "errorMessage": "expected a short name without spaces or slashes, got {got}"},
        "description": {"type": "string"},
        "scales": _SCALES,
        "fixed": _FIXED,
        "families": {"type": "object", "minProperties": 1, "additionalProperties": _FAMILY,
                     "description": "the model families to search",
                     "errorMessage": {"minProperties": "no families given"}},
        "model_files": _cases(
            ({"type": "string"}, {"minLength": 1}),
            otherwise={"type": "array", "items": {"type": "string", "minLength": 1},
                       "errorMessage": {"type": "expected a list of Python file paths, got {got}"}}),
    },
}


# ---------------------------------------------------------------- what a schema cannot say

class _Problem(Exception):
    """A validation problem at ``key``; turned into a SpaceError carrying the file."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}" if key else message)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _choices(values: list, key: str) -> Dimension:
    seen: set[str] = set()
    for i, value in enumerate(values):
        text = format_value(value)
        if text in seen:
            raise _Problem(f"{key}[{i}]", f"duplicate choice {_shorten(text, MAX_SHOWN_CHARS)}")
        seen.add(text)
    return Choice(tuple(values))


def _range(spec: dict, key: str) -> Dimension:
    low, high, step, log = spec["low"], spec["high"], spec.get("step"), spec.get("log", False)
    if low > high:
        raise _Problem(key, f"empty range: low {low} > high {high}")
    if log and low <= 0:
        raise _Problem(key, f"a log range needs low > 0, got {low}")
    if log and step is not None and step != 1:
        raise _Problem(key, "a log range cannot have a step")
    if isinstance(low, int) and isinstance(high, int) and (step is None or isinstance(step, int)):
        dimension = IntRange(low, high, step or 1, log)
    else:
        try:
            dimension = FloatRange(float(low), float(high), None if step is None else float(step), log)
        except OverflowError:  # an integer end beyond the float range
            raise _Problem(key, "a float range's ends must be within +-1.8e308") from None
    if dimension.size is not None and dimension.size > MAX_GRID_CONFIGURATIONS:
        hint = ("raise the step, or drop it: a float range without step is sampled, not listed"
                if isinstance(dimension, FloatRange) else "narrow the range or raise its step")
        raise _Problem(key, f"{count_text(dimension.size)} values; a grid dimension may have at most "
                       f"{MAX_GRID_CONFIGURATIONS:,} ({hint})")
    return dimension


def _dimension(spec: Any, key: str) -> Dimension:
    """One hyper-parameter's values, of one of the forms the schema let through."""
    if isinstance(spec, list):
        return _choices(spec, key)
    if isinstance(spec, dict) and "choices" in spec:
        return _choices(spec["choices"], f"{key}.choices")
    if isinstance(spec, dict) and ("low" in spec or "high" in spec):
        return _range(spec, key)
    return Fixed(spec)


def _scales(value: int | list, key: str) -> tuple[int, ...]:
    scales = [int(s) for s in (value if isinstance(value, list) else [value])]
    if len(set(scales)) != len(scales):
        raise _Problem(key, "duplicate scale")
    return tuple(scales)


def _builder_arguments(info) -> tuple[set[str], set[str], bool]:
    """(accepted, required, takes **kwargs) of the family constructor, scale excluded."""
    accepted, required, open_kwargs = set(), set(), False
    for name, param in inspect.signature(info.builder).parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            open_kwargs = True
        elif name != "scale" and param.kind is not inspect.Parameter.VAR_POSITIONAL:
            accepted.add(name)
            if param.default is inspect.Parameter.empty and name not in info.defaults:
                required.add(name)
    return accepted, required, open_kwargs


def _grid(spec: Any, key: str, info) -> dict[str, Dimension]:
    spec = spec or {}
    accepted, _, open_kwargs = _builder_arguments(info)
    grid: dict[str, Dimension] = {}
    for name, dim_spec in spec.items():
        name = str(name)
        if name in RESERVED_FIELDS:
            raise _Problem(f"{key}.{name}", f"{name!r} is set by the space itself, not a hyper-parameter"
                           + (" (use scales:)" if name == "scale" else ""))
        if not open_kwargs and name not in accepted:
            known = ", ".join(sorted(accepted)) or "none"
            raise _Problem(f"{key}.{name}", f"unknown hyper-parameter of {info.name} (known: {known})")
        grid[name] = _dimension(dim_spec, f"{key}.{name}")
    return grid


def _constraints(spec: list | None, key: str, fields: list[str]) -> list[FamilyConstraint]:
    constraints = []
    for i, item in enumerate(spec or ()):
        item_key = f"{key}[{i}]"
        if isinstance(item, str):
            item = {"expr": item}
        action, message = item.get("on_violation", "error"), item.get("message")
        try:
            constraint = Constraint(item["expr"].strip(), fields)
        except ConstraintSyntaxError as exc:
            raise _Problem(f"{item_key}.expr", str(exc)) from None
        constraints.append(FamilyConstraint(constraint, action, message, item_key))
    return constraints


def _check_grid_size(family: FamilySpace, key: str) -> None:
    """Refuse a grid too large to list, and constraints too costly to check on every point."""
    size = family.size
    if size is None:
        return
    if size > MAX_GRID_CONFIGURATIONS:
        raise _Problem(key, f"{count_text(size)} configurations; a family's grid may have at most "
                       f"{MAX_GRID_CONFIGURATIONS:,} (narrow its ranges or raise their steps)")
    nodes = sum(item.constraint.size for item in family.constraints)
    if size * nodes > MAX_CONSTRAINT_WORK:
        raise _Problem(f"{key}.constraints", f"too costly to check on every grid point ({count_text(size)} "
                       f"configurations x {nodes} expression nodes > {MAX_CONSTRAINT_WORK:,}): "
                       "narrow the grid or simplify the constraints")


def _check_constraints(family: FamilySpace, key: str) -> None:
    """Evaluate constraints on every grid point: 'error' ones reject the file at load time."""
    if not family.constraints or not family.enumerable:
        return
    kept = 0
    for config in family.raw_configurations():
        for item in family.constraints:
            try:
                holds = item.constraint.holds(config)
            except ConstraintEvalError as exc:  # a bound of constraints.py, e.g. a huge power
                raise _Problem(f"{item.key}.expr", f"cannot evaluate for {config['config_id']}: {exc}") from None
            except Exception as exc:  # e.g. division by zero, comparing an object with a number
                raise _Problem(f"{item.key}.expr", f"cannot evaluate for {config['config_id']}: "
                               f"{type(exc).__name__}: {_shorten(str(exc), MAX_SHOWN_CHARS)}") from None
            if not holds:
                if item.on_violation == "error":
                    raise _Problem(item.key, f"configuration {config['config_id']} violates "
                                   f"{item.describe()!r} (drop it from the grid, or set on_violation: skip)")
                break
        else:
            kept += 1
    if kept == 0:
        raise _Problem(key, "no configuration satisfies the constraints")


def _family(name: str, spec: Any, key: str, default_scales: tuple[int, ...] | None) -> FamilySpace:
    try:
        info = get_family(name)
    except ModelIdError as exc:
        raise _Problem(key, str(exc)) from None
    spec = spec or {}
    if "scales" in spec:
        scales = _scales(spec["scales"], f"{key}.scales")
    elif default_scales is not None:
        scales = default_scales
    elif "scale" in info.defaults:
        scales = (int(info.defaults["scale"]),)
    else:
        raise _Problem(key, "no scales: give scales: [..] at the top or in the family")
    shared = _grid(spec.get("hparams"), f"{key}.hparams", info)
    if "grid" in spec:
        subgrids = []
        for i, sub in enumerate(spec["grid"]):
            sub_grid = _grid(sub, f"{key}.grid[{i}]", info)
            for name in sub_grid:
                if name in shared:
                    raise _Problem(f"{key}.grid[{i}].{name}", "already set in hparams:")
            subgrids.append({**shared, **sub_grid})
    else:
        subgrids = [shared]
    _, required, _ = _builder_arguments(info)
    for i, grid in enumerate(subgrids):
        missing = sorted(required - set(grid))
        if missing:
            where = f"{key}.grid[{i}]" if "grid" in spec else f"{key}.hparams"
            raise _Problem(where, f"{info.name} needs {', '.join(missing)} (no default)")
    fields = ["scale"] + sorted({n for g in subgrids for n in g})
    family = FamilySpace(info.name, scales, subgrids, _constraints(spec.get("constraints"), f"{key}.constraints", fields),
                         info.id_fields)
    _check_grid_size(family, key)
    _check_constraints(family, key)
    return family


def _text_list(value: str | list[str]) -> list[str]:
    return [v.strip() for v in ([value] if isinstance(value, str) else value)]


def _check_budget(budget: str | dict) -> None:
    """A budget name must be in params.yaml; an inline mapping must pass the same checks as
    the budgets there (known keys, steps >= 1, lr > 0, ...): otherwise every trial would fail
    only when it starts training."""
    try:
        resolve_budget(budget)
    except UserError as exc:
        raise _Problem("fixed.budget", _shorten(str(exc), MAX_MESSAGE_CHARS)) from None
    except (TypeError, ValueError, OverflowError) as exc:  # e.g. steps: .inf
        raise _Problem("fixed.budget", f"invalid budget: {type(exc).__name__}: "
                       f"{_shorten(str(exc), MAX_SHOWN_CHARS)}") from None


def _check_protocol(name: str) -> None:
    """The evaluation protocol must exist; else every trial fails after training."""
    try:
        get_protocol(name)
    except UserError as exc:
        raise _Problem("fixed.protocol", _shorten(str(exc), MAX_MESSAGE_CHARS)) from None


def check_data_sets(space: Space, data_root: str | os.PathLike | None = None) -> None:
    """Check that the space's training and test sets can be found under the data roots.

    Separate from :func:`load_space` because the data root may be given later
    (``--data-root``); a runner calls it once the root is known, before the first trial.
    Raises a one-line SpaceError naming the file and ``fixed.train_sets[i]`` /
    ``fixed.test_sets[i]``.
    """
    for field, finder in (("train_sets", find_training_set), ("test_sets", find_test_set)):
        for i, name in enumerate(getattr(space.fixed, field)):
            try:
                finder(name, data_root)
            except UserError as exc:
                raise SpaceError(f"fixed.{field}[{i}]: {_shorten(str(exc), MAX_MESSAGE_CHARS)}",
                                 path=space.path) from None


def _settings(spec: dict | None) -> StudySettings:
    spec = spec or {}
    settings = StudySettings()
    if "budget" in spec:
        _check_budget(spec["budget"])
        settings.budget = spec["budget"]
    if "train_sets" in spec:
        settings.train_sets = _text_list(spec["train_sets"])
    if "test_sets" in spec:
        settings.test_sets = _text_list(spec["test_sets"])
    if "protocol" in spec:
        if spec["protocol"] is not None:
            _check_protocol(spec["protocol"])
        settings.protocol = spec["protocol"]
    if "seed" in spec:
        settings.seed = int(spec["seed"])
    objectives = spec.get("objectives")
    if objectives is None:
        preferred = "Set14" if "Set14" in settings.test_sets else settings.test_sets[0]
        objectives = DEFAULT_OBJECTIVES.format(test_set=preferred)
    try:
        settings.objectives = parse_objectives(objectives, settings.test_sets)
    except ValueError as exc:
        raise _Problem("fixed.objectives", str(exc)) from None
    return settings


def default_name(path: Path) -> str:
    """The study name of a file without ``name:``: its stem, spaces and slashes made ``-``
    (``my space.yaml`` -> ``my-space``)."""
    name = re.sub(r"[\s/\\]+", "-", path.stem).strip("-")
    return name[:MAX_NAME_CHARS] or "space"


def _check_name(name: str) -> str:
    if not name.strip() or any(c.isspace() or c in "/\\" for c in name.strip()):
        raise _Problem("name", f"expected a short name without spaces or slashes, got "
                       f"{_shorten(repr(name), MAX_SHOWN_CHARS)}")
    if len(name.strip()) > MAX_NAME_CHARS:
        raise _Problem("name", f"{len(name.strip())} characters long; at most {MAX_NAME_CHARS}")
    return name.strip()


def _budget_numbers(data: Any) -> Any:
    """``fixed.budget`` as the budgets of params.yaml are read: ``lr: 1e-3`` (text to YAML 1.1)
    is the number 0.001 (search.train.budgets.numbers_from_text)."""
    fixed = data.get("fixed") if isinstance(data, dict) else None
    if isinstance(fixed, dict) and isinstance(fixed.get("budget"), dict):
        return {**data, "fixed": {**fixed, "budget": numbers_from_text(fixed["budget"])}}
    return data


def parse_space(data: Any, path: Path) -> Space:
    """Validate an already-parsed YAML document (see :func:`load_space`)."""
    try:
        data = _budget_numbers(data)
        problem = find_problem(data, SPACE_SCHEMA)
        if problem is not None:
            raise _Problem(problem.path, problem.message)
        name = _check_name(data["name"]) if "name" in data else default_name(path)
        description = data.get("description", "")
        default_scales = _scales(data["scales"], "scales") if "scales" in data else None
        model_files = _model_files(data.get("model_files", []), path)
        families: dict[str, FamilySpace] = {}
        for family_name, family_spec in data["families"].items():
            key = f"families.{family_name}"
            family = _family(str(family_name), family_spec, key, default_scales)
            if family.name in families:
                raise _Problem(key, f"family {family.name} listed twice")
            families[family.name] = family
        total = sum(f.size for f in families.values()) if all(f.enumerable for f in families.values()) else 0
        if total > MAX_GRID_CONFIGURATIONS:
            raise _Problem("families", f"{count_text(total)} configurations in all; a space's grid may have "
                           f"at most {MAX_GRID_CONFIGURATIONS:,} (split it into several spaces, or narrow it)")
        settings = _settings(data.get("fixed"))
    except _Problem as problem:
        raise SpaceError(_shorten(str(problem), MAX_MESSAGE_CHARS), path=path) from None
    return Space(path=path, name=name, description=description, families=families, fixed=settings,
                 model_files=model_files)


def _model_files(value: Any, path: Path) -> tuple[str, ...]:
    """``model_files:``: Python files (relative to the space file) that register the space's
    own families; imported here, before the families are checked against the registry."""
    if isinstance(value, str):
        value = [value]
    files = tuple(str((path.parent / v).resolve()) for v in value)
    for given, resolved in zip(value, files):
        if not Path(resolved).is_file():
            raise _Problem("model_files", f"{given}: file not found (paths are relative to the space file)")
    try:
        load_model_files(files)
    except UserError as exc:
        raise _Problem("model_files", str(exc)) from None
    return files


def load_space(path: str | os.PathLike) -> Space:
    """Read and validate a space file; any problem is a one-line :class:`SpaceError`."""
    path = Path(path)
    if not path.is_file():
        raise SpaceError("space file not found", path=path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)  # never more: the file may be huge
        if len(raw) > MAX_FILE_BYTES:
            raise SpaceError(f"space file larger than {MAX_FILE_BYTES // 1024} KiB; "
                             "a space file is a short hand-written mapping", path=path)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceError(f"cannot read space file ({type(exc).__name__})", path=path) from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpaceError(_shorten(f"invalid YAML: {where}{problem}", MAX_MESSAGE_CHARS), path=path) from None
    except (RecursionError, MemoryError) as exc:  # last resort: safe_yaml bounds the nesting
        raise SpaceError(f"invalid YAML: too large or too deeply nested ({type(exc).__name__})", path=path) from None
    if data is None:
        raise SpaceError("empty space file", path=path)
    try:
        return parse_space(data, path)
    except (RecursionError, MemoryError) as exc:
        # Last resort: the bounds above should make this unreachable.
        raise SpaceError(f"space file too large or too deeply nested to check ({type(exc).__name__})",
                         path=path) from None
