"""Search dimensions (choices, integer/float ranges, fixed values) and canonical value text.

A dimension knows how to list its values (for grids and ``--dry-run``) and how to ask an
Optuna trial for one (for the random / TPE / NSGA-II samplers). Values may be numbers,
strings, booleans or ``type:`` + kwargs objects (e.g. an SMSR tau schedule); objects are
shown to Optuna as their canonical text, which is also what appears in configuration ids.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from typing import Any


def format_value(value: Any) -> str:
    """Canonical, order-independent text of a value: ``3``, ``0.25``, ``linear(end=0.1,start=1)``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, dict):
        kind = value.get("type")
        items = ",".join(f"{k}={format_value(v)}" for k, v in sorted(value.items()) if k != "type")
        return f"{kind}({items})" if kind is not None else f"({items})"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if value is None:
        return "null"
    return str(value)


def csv_value(value: Any) -> Any:
    """A value as written into trials.csv / the dry-run listing (objects as JSON)."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True)
    return value


def _optuna_choice(value: Any) -> Any:
    """Optuna stores only None/bool/int/float/str choices; objects go in as their text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return format_value(value)


class Dimension:
    """One hyper-parameter's set of values."""

    def values(self) -> list[Any]:
        raise NotImplementedError

    @property
    def size(self) -> int | None:
        """How many values :meth:`values` lists, computed without listing them; None if infinite."""
        raise NotImplementedError

    @property
    def enumerable(self) -> bool:
        return True

    def suggest(self, trial, name: str) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Fixed(Dimension):
    value: Any

    def values(self) -> list[Any]:
        return [self.value]

    @property
    def size(self) -> int:
        return 1

    def suggest(self, trial, name: str) -> Any:
        return self.value  # not a search dimension: nothing to ask Optuna


@dataclass(frozen=True)
class Choice(Dimension):
    choices: tuple[Any, ...]

    def values(self) -> list[Any]:
        return list(self.choices)

    @property
    def size(self) -> int:
        return len(self.choices)

    def suggest(self, trial, name: str) -> Any:
        if len(self.choices) == 1:
            return self.choices[0]
        encoded = [_optuna_choice(c) for c in self.choices]
        picked = trial.suggest_categorical(name, encoded)
        return self.choices[encoded.index(picked)]


@dataclass(frozen=True)
class IntRange(Dimension):
    low: int
    high: int
    step: int = 1
    log: bool = False

    def values(self) -> list[Any]:
        return list(range(self.low, self.high + 1, self.step))

    @property
    def size(self) -> int:
        return max(0, (self.high - self.low) // self.step + 1)

    def suggest(self, trial, name: str) -> Any:
        if self.low == self.high:
            return self.low
        if self.log:
            return trial.suggest_int(name, self.low, self.high, log=True)
        return trial.suggest_int(name, self.low, self.high, step=self.step)


@dataclass(frozen=True)
class FloatRange(Dimension):
    low: float
    high: float
    step: float | None = None
    log: bool = False

    @property
    def enumerable(self) -> bool:
        return self.step is not None

    def values(self) -> list[Any]:
        if self.step is None:
            raise ValueError("a float range without step has no finite list of values")
        # Rounding keeps 0.1 + 2 * 0.1 from becoming 0.30000000000000004 in ids.
        return [round(self.low + i * self.step, 12) for i in range(self.size)]

    @property
    def size(self) -> int | None:
        if self.step is None:
            return None
        steps = (self.high - self.low) / self.step
        if not math.isfinite(steps):  # high - low overflowed (ends near +-1.8e308)
            steps = sys.float_info.max
        return int(math.floor(steps + 1e-9)) + 1

    def suggest(self, trial, name: str) -> Any:
        if self.low == self.high:
            return self.low
        if self.log:
            return trial.suggest_float(name, self.low, self.high, log=True)
        return trial.suggest_float(name, self.low, self.high, step=self.step)
