"""Reading and validating space files: every problem is one SpaceError naming file, key, problem.

The validator is hand-written rather than a JSON schema so that each message can name the
exact key (``families.ESPCN.grid[1].S``) and say what is wrong in words; it also checks what
a schema cannot: that families exist in the registry, that hyper-parameters are arguments
of the family's constructor, and that cross-field constraints hold.
"""

from __future__ import annotations

import inspect
import math
import os
from pathlib import Path
from typing import Any

import yaml

from search.errors import ModelIdError, SpaceError
from search.space.constraints import Constraint, ConstraintSyntaxError
from search.space.space import (
    RESERVED_FIELDS,
    FamilyConstraint,
    FamilySpace,
    Space,
    StudySettings,
    parse_objectives,
)
from search.space.values import Choice, Dimension, Fixed, FloatRange, IntRange, format_value

TOP_KEYS = ("name", "description", "scales", "fixed", "families")
FAMILY_KEYS = ("hparams", "grid", "scales", "constraints")
FIXED_KEYS = ("budget", "train_sets", "test_sets", "objectives", "protocol", "seed")
RANGE_KEYS = ("low", "high", "step", "log")
CONSTRAINT_KEYS = ("expr", "on_violation", "message")
DEFAULT_OBJECTIVES = "psnr_{test_set}:max,latency_ms:min"


class _Problem(Exception):
    """A validation problem at ``key``; turned into a SpaceError carrying the file."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}" if key else message)


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list", str: f"the text {value!r}", bool: f"{value}"}.get(
        type(value), f"{type(value).__name__} {value!r}"
    )


def _expect_mapping(value: Any, key: str) -> dict:
    if not isinstance(value, dict):
        raise _Problem(key, f"expected a mapping, got {_type_name(value)}")
    return value


def _check_keys(mapping: dict, allowed: tuple[str, ...], key: str) -> None:
    for name in mapping:
        if name not in allowed:
            where = f"{key}.{name}" if key else str(name)
            raise _Problem(where, f"unknown key (allowed here: {', '.join(allowed)})")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: Any, key: str) -> int | float:
    if _is_number(value):
        if isinstance(value, float) and not math.isfinite(value):
            raise _Problem(key, f"expected a finite number, got {value}")
        return value
    hint = ""
    if isinstance(value, str):
        try:
            float(value)
            hint = " (YAML reads 1e-4 as text; write 1.0e-4)"
        except ValueError:
            pass
    raise _Problem(key, f"expected a number, got {_type_name(value)}{hint}")


def _check_value(value: Any, key: str) -> Any:
    """A choice / fixed value: a scalar, or a ``type:`` + kwargs object (nested allowed)."""
    if value is None:
        raise _Problem(key, "empty value (null)")
    if isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and not math.isfinite(value):
            raise _Problem(key, f"expected a finite number, got {value}")
        return value
    if isinstance(value, dict):
        kind = value.get("type")
        if not isinstance(kind, str) or not kind:
            raise _Problem(key, "an object value needs a 'type:' name (e.g. {type: linear, start: 1.0})")
        for name, item in value.items():
            if name != "type":
                if isinstance(item, list):
                    for i, element in enumerate(item):
                        _check_value(element, f"{key}.{name}[{i}]")
                else:
                    _check_value(item, f"{key}.{name}")
        return value
    raise _Problem(key, f"expected a number, text, true/false or a {{type: ...}} object, got {_type_name(value)}")


def _choices(values: Any, key: str) -> Dimension:
    if not isinstance(values, list):
        raise _Problem(key, f"choices must be a list, got {_type_name(values)}")
    if not values:
        raise _Problem(key, "empty list of choices")
    checked = [_check_value(v, f"{key}[{i}]") for i, v in enumerate(values)]
    texts = [format_value(v) for v in checked]
    for i, text in enumerate(texts):
        if text in texts[:i]:
            raise _Problem(f"{key}[{i}]", f"duplicate choice {text}")
    return Choice(tuple(checked))


def _range(spec: dict, key: str) -> Dimension:
    _check_keys(spec, RANGE_KEYS, key)
    for bound in ("low", "high"):
        if bound not in spec:
            raise _Problem(key, f"a range needs both low and high (missing {bound})")
    low, high = _number(spec["low"], f"{key}.low"), _number(spec["high"], f"{key}.high")
    step = spec.get("step")
    if step is not None:
        step = _number(step, f"{key}.step")
        if step <= 0:
            raise _Problem(f"{key}.step", f"step must be positive, got {step}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise _Problem(f"{key}.log", f"expected true or false, got {_type_name(log)}")
    if low > high:
        raise _Problem(key, f"empty range: low {low} > high {high}")
    if log and low <= 0:
        raise _Problem(key, f"a log range needs low > 0, got {low}")
    if log and step is not None and step != 1:
        raise _Problem(key, "a log range cannot have a step")
    if isinstance(low, int) and isinstance(high, int) and (step is None or isinstance(step, int)):
        return IntRange(low, high, step or 1, log)
    return FloatRange(float(low), float(high), None if step is None else float(step), log)


def _dimension(spec: Any, key: str) -> Dimension:
    if isinstance(spec, list):
        return _choices(spec, key)
    if isinstance(spec, dict):
        if "choices" in spec:
            _check_keys(spec, ("choices",), key)
            return _choices(spec["choices"], f"{key}.choices")
        if "low" in spec or "high" in spec:
            return _range(spec, key)
        if "type" in spec:
            return Fixed(_check_value(spec, key))
        raise _Problem(
            key, "expected a list of choices, {choices: [...]}, a {low, high} range, "
            "a {type: ...} object or a single value"
        )
    return Fixed(_check_value(spec, key))


def _scales(value: Any, key: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _Problem(key, f"expected a non-empty list of integer scales, got {_type_name(value)}")
    for i, scale in enumerate(value):
        if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
            raise _Problem(f"{key}[{i}]", f"a scale must be a positive integer, got {_type_name(scale)}")
    if len(set(value)) != len(value):
        raise _Problem(key, "duplicate scale")
    return tuple(value)


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
    spec = {} if spec is None else _expect_mapping(spec, key)
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


def _constraints(spec: Any, key: str, fields: list[str]) -> list[FamilyConstraint]:
    if spec is None:
        return []
    if not isinstance(spec, list):
        raise _Problem(key, f"expected a list of constraints, got {_type_name(spec)}")
    constraints = []
    for i, item in enumerate(spec):
        item_key = f"{key}[{i}]"
        if isinstance(item, str):
            item = {"expr": item}
        item = _expect_mapping(item, item_key)
        _check_keys(item, CONSTRAINT_KEYS, item_key)
        expression = item.get("expr")
        if not isinstance(expression, str) or not expression.strip():
            raise _Problem(f"{item_key}.expr", "expected an expression such as 'F * R == int(F * R)'")
        action = item.get("on_violation", "error")
        if action not in ("error", "skip"):
            raise _Problem(f"{item_key}.on_violation", f"expected error or skip, got {_type_name(action)}")
        message = item.get("message")
        if message is not None and not isinstance(message, str):
            raise _Problem(f"{item_key}.message", f"expected text, got {_type_name(message)}")
        try:
            constraint = Constraint(expression.strip(), fields)
        except ConstraintSyntaxError as exc:
            raise _Problem(f"{item_key}.expr", str(exc)) from None
        constraints.append(FamilyConstraint(constraint, action, message, item_key))
    return constraints


def _check_constraints(family: FamilySpace, key: str) -> None:
    """Evaluate constraints on every grid point: 'error' ones reject the file at load time."""
    if not family.constraints or not family.enumerable:
        return
    kept = 0
    for config in family.raw_configurations():
        for item in family.constraints:
            try:
                holds = item.constraint.holds(config)
            except Exception as exc:  # e.g. division by zero, comparing an object with a number
                raise _Problem(f"{item.key}.expr", f"cannot evaluate for {config['config_id']}: "
                               f"{type(exc).__name__}: {exc}") from None
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
    from search.models import get_family

    try:
        info = get_family(name)
    except ModelIdError as exc:
        raise _Problem(key, str(exc)) from None
    spec = {} if spec is None else _expect_mapping(spec, key)
    _check_keys(spec, FAMILY_KEYS, key)
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
        grid_spec = spec["grid"]
        if not isinstance(grid_spec, list) or not grid_spec:
            raise _Problem(f"{key}.grid", f"expected a non-empty list of sub-grids, got {_type_name(grid_spec)}")
        subgrids = []
        for i, sub in enumerate(grid_spec):
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
    _check_constraints(family, key)
    return family


def _text_list(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _Problem(key, f"expected a non-empty list of names, got {_type_name(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise _Problem(f"{key}[{i}]", f"expected a name, got {_type_name(item)}")
    return [v.strip() for v in value]


def _settings(spec: Any) -> StudySettings:
    spec = {} if spec is None else _expect_mapping(spec, "fixed")
    _check_keys(spec, FIXED_KEYS, "fixed")
    settings = StudySettings()
    if "budget" in spec:
        budget = spec["budget"]
        if not (isinstance(budget, str) and budget.strip()) and not isinstance(budget, dict):
            raise _Problem("fixed.budget", f"expected a budget name (smoke, quick, paper) or a mapping, got {_type_name(budget)}")
        settings.budget = budget
    if "train_sets" in spec:
        settings.train_sets = _text_list(spec["train_sets"], "fixed.train_sets")
    if "test_sets" in spec:
        settings.test_sets = _text_list(spec["test_sets"], "fixed.test_sets")
    if "protocol" in spec:
        protocol = spec["protocol"]
        if protocol is not None and not (isinstance(protocol, str) and protocol.strip()):
            raise _Problem("fixed.protocol", f"expected a protocol name or null, got {_type_name(protocol)}")
        settings.protocol = protocol
    if "seed" in spec:
        seed = spec["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise _Problem("fixed.seed", f"expected a non-negative integer, got {_type_name(seed)}")
        settings.seed = seed
    objectives = spec.get("objectives")
    if objectives is None:
        preferred = "Set14" if "Set14" in settings.test_sets else settings.test_sets[0]
        objectives = DEFAULT_OBJECTIVES.format(test_set=preferred)
    elif not isinstance(objectives, (str, list)):
        raise _Problem("fixed.objectives", f"expected a list such as [psnr_Set14:max, latency_ms:min], got {_type_name(objectives)}")
    try:
        settings.objectives = parse_objectives(objectives, settings.test_sets)
    except ValueError as exc:
        raise _Problem("fixed.objectives", str(exc)) from None
    return settings


def parse_space(data: Any, path: Path) -> Space:
    """Validate an already-parsed YAML document (see :func:`load_space`)."""
    try:
        data = _expect_mapping(data, "")
        _check_keys(data, TOP_KEYS, "")
        name = data.get("name", path.stem)
        if not isinstance(name, str) or not name.strip() or any(c in name for c in "/\\ "):
            raise _Problem("name", f"expected a short name without spaces or slashes, got {_type_name(name)}")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise _Problem("description", f"expected text, got {_type_name(description)}")
        default_scales = _scales(data["scales"], "scales") if "scales" in data else None
        if "families" not in data:
            raise _Problem("families", "missing (the model families to search)")
        families_spec = _expect_mapping(data["families"], "families")
        if not families_spec:
            raise _Problem("families", "no families given")
        families: dict[str, FamilySpace] = {}
        for family_name, family_spec in families_spec.items():
            key = f"families.{family_name}"
            family = _family(str(family_name), family_spec, key, default_scales)
            if family.name in families:
                raise _Problem(key, f"family {family.name} listed twice")
            families[family.name] = family
        settings = _settings(data.get("fixed"))
    except _Problem as problem:
        raise SpaceError(str(problem), path=path) from None
    return Space(path=path, name=name.strip(), description=description, families=families, fixed=settings)


def load_space(path: str | os.PathLike) -> Space:
    """Read and validate a space file; any problem is a one-line :class:`SpaceError`."""
    path = Path(path)
    if not path.is_file():
        raise SpaceError("space file not found", path=path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpaceError(f"cannot read space file ({type(exc).__name__})", path=path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpaceError(f"invalid YAML: {where}{problem}", path=path) from None
    if data is None:
        raise SpaceError("empty space file", path=path)
    return parse_space(data, path)
