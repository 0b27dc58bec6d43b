"""Temperature (tau) schedules for Gumbel-softmax masks, as functions of training progress.

A schedule maps ``progress`` (the fraction of the training budget done, 0..1) to a
temperature. ``initial`` is the value at progress 0; it moves to ``final`` over the first
``decay`` fraction of training and is held at ``final`` afterwards::

    schedule = build_tau_schedule({"type": "linear", "initial": 1.0, "final": 0.4, "decay": 0.3})
    schedule(0.0) == 1.0; schedule(0.15) == 0.7; schedule(0.3) == schedule(1.0) == 0.4

Types: ``constant`` (``value``), ``linear``, ``exponential`` (geometric interpolation, so
the same relative step each increment of progress), ``cosine`` (half-cosine ramp).

SMSR's released trainer *meant* ``tau = max(1 - (epoch - 1) / 500, 0.4)`` over 1000 epochs,
i.e. ``linear`` 1 -> 0.4 with ``decay = 0.3`` (reached at epoch 301 of 1000); because of a
method-name mismatch (``_set_tau`` vs ``_update_tau``) the released run actually kept
``constant`` 1.0. Both are expressible here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from search.errors import UserError


def _clamp_progress(progress: float) -> float:
    return min(max(float(progress), 0.0), 1.0)


@dataclass(frozen=True)
class TauSchedule:
    """Base class: ``schedule(progress) -> tau``; subclasses define :meth:`shape`."""

    initial: float = 1.0
    final: float = 1.0
    decay: float = 1.0

    type_name = "base"

    def __post_init__(self):
        for name in ("initial", "final"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise UserError(f"tau schedule {self.type_name!r}: {name} must be a number > 0, got {value!r}")
        if not (isinstance(self.decay, (int, float)) and 0 < self.decay <= 1):
            raise UserError(
                f"tau schedule {self.type_name!r}: decay must be a fraction of training in (0, 1], "
                f"got {self.decay!r}"
            )

    def shape(self, fraction: float) -> float:
        """Interpolation weight of ``final`` at ``fraction`` (0..1) of the decay."""
        raise NotImplementedError

    def __call__(self, progress: float) -> float:
        fraction = min(_clamp_progress(progress) / self.decay, 1.0)
        if fraction >= 1.0:
            return float(self.final)
        return float(self.initial + (self.final - self.initial) * self.shape(fraction))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, **asdict(self)}

    def describe(self) -> str:
        return f"{self.type_name} {self.initial:g}->{self.final:g} over {self.decay:g}"


@dataclass(frozen=True)
class ConstantTau(TauSchedule):
    """The same temperature throughout (``value``); what SMSR's released run used (1.0)."""

    value: float = 1.0

    type_name = "constant"

    def __init__(self, value: float = 1.0):
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "initial", value)
        object.__setattr__(self, "final", value)
        object.__setattr__(self, "decay", 1.0)
        self.__post_init__()

    def shape(self, fraction: float) -> float:
        return 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type_name, "value": float(self.value)}

    def describe(self) -> str:
        return f"constant {self.value:g}"


@dataclass(frozen=True)
class LinearTau(TauSchedule):
    type_name = "linear"

    def shape(self, fraction: float) -> float:
        return fraction


@dataclass(frozen=True)
class ExponentialTau(TauSchedule):
    """``initial * (final / initial) ** fraction``: equal ratios per step of progress."""

    type_name = "exponential"

    def __call__(self, progress: float) -> float:
        fraction = min(_clamp_progress(progress) / self.decay, 1.0)
        return float(self.initial * (self.final / self.initial) ** fraction)

    def shape(self, fraction: float) -> float:  # only for completeness; __call__ is exact
        value = self.initial * (self.final / self.initial) ** fraction
        span = self.final - self.initial
        return 0.0 if span == 0 else (value - self.initial) / span


@dataclass(frozen=True)
class CosineTau(TauSchedule):
    """Half-cosine ramp: slow start and slow finish."""

    type_name = "cosine"

    def shape(self, fraction: float) -> float:
        return 0.5 * (1.0 - math.cos(math.pi * fraction))


TAU_SCHEDULES: dict[str, type[TauSchedule]] = {
    cls.type_name: cls for cls in (ConstantTau, LinearTau, ExponentialTau, CosineTau)
}


def build_tau_schedule(spec: TauSchedule | Mapping[str, Any] | float | int | str | None) -> TauSchedule:
    """A schedule from a ``{type: ..., **kwargs}`` mapping, a number (constant) or a type name.

    ``None`` gives ``constant`` 1.0 (the released SMSR behaviour). Unknown types or
    arguments raise a one-line :class:`~search.errors.UserError`.
    """
    if spec is None:
        return ConstantTau(1.0)
    if isinstance(spec, TauSchedule):
        return spec
    if isinstance(spec, bool):
        raise UserError(f"tau schedule must be a mapping with 'type', a number or a name, got {spec!r}")
    if isinstance(spec, (int, float)):
        return ConstantTau(float(spec))
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping):
        raise UserError(f"tau schedule must be a mapping with 'type', a number or a name, got {spec!r}")
    kwargs = dict(spec)
    type_name = kwargs.pop("type", None)
    if type_name not in TAU_SCHEDULES:
        raise UserError(
            f"unknown tau schedule type {type_name!r}; known: {', '.join(sorted(TAU_SCHEDULES))}"
        )
    try:
        return TAU_SCHEDULES[type_name](**kwargs)
    except TypeError as exc:
        raise UserError(f"tau schedule {type_name!r}: bad arguments {kwargs}: {exc}") from None
