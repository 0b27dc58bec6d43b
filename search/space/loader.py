"""Reading and validating space files: every problem is one SpaceError naming file, key, problem.

The validator is hand-written rather than a JSON schema so that each message can name the
exact key (``families.ESPCN.grid[1].S``) and say what is wrong in words; it also checks what
a schema cannot: that families exist in the registry, that hyper-parameters are arguments
of the family's constructor, and that cross-field constraints hold.

A space file is untrusted input: every size the loader works with is bounded (file bytes,
YAML nesting, expression length, grid cardinality, constraint work), each by a named
constant, so that a hostile file is one SpaceError within about a second, never a hang,
a MemoryError or a traceback. The limits are listed in docs/spaces.md.
"""

from __future__ import annotations

import inspect
import math
import os
import re
from pathlib import Path
from typing import Any

import yaml

from search.errors import ModelIdError, SpaceError, UserError
from search.models.registry import load_model_files
from search.space.constraints import Constraint, ConstraintEvalError, ConstraintSyntaxError
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
from search.space.values import Choice, Dimension, Fixed, FloatRange, IntRange, format_value

TOP_KEYS = ("name", "description", "scales", "fixed", "families", "model_files")
FAMILY_KEYS = ("hparams", "grid", "scales", "constraints")
FIXED_KEYS = ("budget", "train_sets", "test_sets", "objectives", "protocol", "seed")
RANGE_KEYS = ("low", "high", "step", "log")
CONSTRAINT_KEYS = ("expr", "on_violation", "message")
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


class _Problem(Exception):
    """A validation problem at ``key``; turned into a SpaceError carrying the file."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}" if key else message)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    if isinstance(value, bool):
        return f"{value}"
    if isinstance(value, str):
        return f"the text {_shorten(repr(value), MAX_SHOWN_CHARS)}"
    return f"{type(value).__name__} {_shorten(repr(value), MAX_SHOWN_CHARS)}"


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
    seen: set[str] = set()
    for i, value in enumerate(checked):
        text = format_value(value)
        if text in seen:
            raise _Problem(f"{key}[{i}]", f"duplicate choice {_shorten(text, MAX_SHOWN_CHARS)}")
        seen.add(text)
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
        if scale > MAX_SCALE:
            raise _Problem(f"{key}[{i}]", f"scale {_shorten(str(scale), MAX_SHOWN_CHARS)} is too large "
                           f"(at most {MAX_SCALE})")
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
    _check_grid_size(family, key)
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


def _check_budget(budget: str | dict) -> None:
    """A budget name must be in params.yaml; an inline mapping must pass the same checks as
    the budgets there (known keys, steps >= 1, lr > 0, ...): otherwise every trial would fail
    only when it starts training."""
    from search.train.budgets import resolve_budget  # train sits below space: no cycle

    try:
        resolve_budget(budget)
    except UserError as exc:
        raise _Problem("fixed.budget", _shorten(str(exc), MAX_MESSAGE_CHARS)) from None
    except (TypeError, ValueError, OverflowError) as exc:  # e.g. steps: .inf
        raise _Problem("fixed.budget", f"invalid budget: {type(exc).__name__}: "
                       f"{_shorten(str(exc), MAX_SHOWN_CHARS)}") from None


def _check_protocol(name: str) -> None:
    """The evaluation protocol must exist; else every trial fails after training."""
    from search.data.protocols import get_protocol

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
    from search.data.datasets import find_test_set
    from search.data.training import find_training_set

    for field, finder in (("train_sets", find_training_set), ("test_sets", find_test_set)):
        for i, name in enumerate(getattr(space.fixed, field)):
            try:
                finder(name, data_root)
            except UserError as exc:
                raise SpaceError(f"fixed.{field}[{i}]: {_shorten(str(exc), MAX_MESSAGE_CHARS)}",
                                 path=space.path) from None


def _settings(spec: Any) -> StudySettings:
    spec = {} if spec is None else _expect_mapping(spec, "fixed")
    _check_keys(spec, FIXED_KEYS, "fixed")
    settings = StudySettings()
    if "budget" in spec:
        budget = spec["budget"]
        if not (isinstance(budget, str) and budget.strip()) and not isinstance(budget, dict):
            raise _Problem("fixed.budget", f"expected a budget name (smoke, quick, paper) or a mapping, got {_type_name(budget)}")
        _check_budget(budget)
        settings.budget = budget
    if "train_sets" in spec:
        settings.train_sets = _text_list(spec["train_sets"], "fixed.train_sets")
    if "test_sets" in spec:
        settings.test_sets = _text_list(spec["test_sets"], "fixed.test_sets")
    if "protocol" in spec:
        protocol = spec["protocol"]
        if protocol is not None and not (isinstance(protocol, str) and protocol.strip()):
            raise _Problem("fixed.protocol", f"expected a protocol name or null, got {_type_name(protocol)}")
        if protocol is not None:
            _check_protocol(protocol)
        settings.protocol = protocol
    if "seed" in spec:
        seed = spec["seed"]
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
            raise _Problem("fixed.seed", f"expected a non-negative integer up to {MAX_SEED}, got {_type_name(seed)}")
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


def default_name(path: Path) -> str:
    """The study name of a file without ``name:``: its stem, spaces and slashes made ``-``
    (``my space.yaml`` -> ``my-space``)."""
    name = re.sub(r"[\s/\\]+", "-", path.stem).strip("-")
    return name[:MAX_NAME_CHARS] or "space"


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or any(c.isspace() or c in "/\\" for c in name.strip()):
        raise _Problem("name", f"expected a short name without spaces or slashes, got {_type_name(name)}")
    if len(name.strip()) > MAX_NAME_CHARS:
        raise _Problem("name", f"{len(name.strip())} characters long; at most {MAX_NAME_CHARS}")
    return name.strip()


def parse_space(data: Any, path: Path) -> Space:
    """Validate an already-parsed YAML document (see :func:`load_space`)."""
    try:
        data = _expect_mapping(data, "")
        _check_keys(data, TOP_KEYS, "")
        name = _check_name(data["name"]) if "name" in data else default_name(path)
        description = data.get("description", "")
        if not isinstance(description, str):
            raise _Problem("description", f"expected text, got {_type_name(description)}")
        default_scales = _scales(data["scales"], "scales") if "scales" in data else None
        model_files = _model_files(data.get("model_files", []), path)
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
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _Problem("model_files", "expected a list of Python file paths")
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
