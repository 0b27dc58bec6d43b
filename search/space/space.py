"""Search spaces: families x scales x hyper-parameter grids, with canonical configuration ids.

A configuration is a flat dict ``{"config_id", "model_id", "family", "scale", <hparams>}``.
``model_id`` is the registry id (:func:`search.models.format_model_id`, e.g. the published
``eSR-TR_s3_K5_C7``); ``config_id`` equals it unless the configuration also sets
hyper-parameters that are not part of the family's id, which are then appended in sorted
order as ``+name=value`` (``SMSR_s2+tau=linear(end=0.1,start=1)``), so every configuration
has one canonical, unique name. The file format is described in docs/spaces.md; parsing and
validation live in :mod:`search.space.loader`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from search.errors import SpaceError
from search.models import format_model_id
from search.space.constraints import Constraint
from search.space.values import Dimension, format_value

RESERVED_FIELDS = ("config_id", "model_id", "family", "scale")
# Most configurations a grid (one dimension, one family, or a whole enumerable space) may
# list. Counted arithmetically at load time, never by enumerating: listing costs ~10 us and
# a few hundred bytes per configuration, so this keeps --dry-run and grid search to about a
# second; a study trains one model per configuration, so real grids are far smaller (the
# published eSR grid has 1185). Larger spaces: a float range without step, and a sampler.
MAX_GRID_CONFIGURATIONS = 100_000
SCALAR_METRICS = ("params", "flops", "latency_ms", "train_time_s")
PER_SET_METRICS = ("psnr", "ssim")


@dataclass(frozen=True)
class Objective:
    metric: str
    mode: str  # "max" | "min"

    def __str__(self) -> str:
        return f"{self.metric}:{self.mode}"


def parse_objectives(spec: str | list[str], test_sets: list[str] = (), *,
                     allowed: list[str] | None = None) -> list[Objective]:
    """``"psnr_Set14:max,latency_ms:min"`` (or a list of such items) -> objectives.

    ``allowed``: the metric names to accept (default: a trial's metrics for ``test_sets``).
    Raises ValueError with a one-line explanation for an unknown metric or direction.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    if allowed is None:
        allowed = list(SCALAR_METRICS) + [f"{m}_{s}" for s in test_sets for m in PER_SET_METRICS]
    objectives: list[Objective] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"objective {item!r} is not of the form metric:max or metric:min")
        metric, sep, mode = item.strip().partition(":")
        mode = mode.strip().lower()
        if not sep or mode not in ("max", "min"):
            raise ValueError(f"objective {item.strip()!r} needs a direction: {metric.strip()}:max or :min")
        metric = metric.strip()
        if metric not in allowed:
            raise ValueError(f"unknown objective metric {metric!r}; one of {', '.join(allowed)}")
        if any(o.metric == metric for o in objectives):
            raise ValueError(f"objective {metric!r} given twice")
        objectives.append(Objective(metric, mode))
    if not objectives:
        raise ValueError("no objectives given")
    return objectives


@dataclass
class StudySettings:
    """The space file's ``fixed:`` section: what is the same for every trial."""

    budget: str | dict = "quick"
    train_sets: list[str] = field(default_factory=lambda: ["T91"])
    test_sets: list[str] = field(default_factory=lambda: ["Set5", "Set14"])
    objectives: list[Objective] = field(default_factory=list)
    protocol: str | None = None  # None: each family's default protocol
    seed: int = 0


@dataclass
class FamilyConstraint:
    constraint: Constraint
    on_violation: str  # "error" (reject the space at load time) | "skip" (drop the configuration)
    message: str | None
    key: str  # where it was declared, for error messages

    def describe(self) -> str:
        return self.message or self.constraint.expression


@dataclass
class FamilySpace:
    name: str
    scales: tuple[int, ...]
    subgrids: list[dict[str, Dimension]]  # a union of sub-grids; usually one
    constraints: list[FamilyConstraint]
    id_fields: tuple[str, ...]

    @property
    def hparam_names(self) -> list[str]:
        names: list[str] = []
        for grid in self.subgrids:
            names.extend(n for n in grid if n not in names)
        return names

    @property
    def enumerable(self) -> bool:
        return all(dim.enumerable for grid in self.subgrids for dim in grid.values())

    @property
    def size(self) -> int | None:
        """Grid points over all scales and sub-grids (before constraints and de-duplication);
        None when a dimension is continuous."""
        if not self.enumerable:
            return None
        return len(self.scales) * sum(math.prod(dim.size for dim in grid.values()) for grid in self.subgrids)

    def make_config(self, scale: int, hparams: dict[str, Any]) -> dict[str, Any]:
        model_id = format_model_id(self.name, scale, **{k: v for k, v in hparams.items() if k in self.id_fields})
        extras = sorted((k, v) for k, v in hparams.items() if k not in self.id_fields)
        config_id = model_id + "".join(f"+{k}={format_value(v)}" for k, v in extras)
        return {"config_id": config_id, "model_id": model_id, "family": self.name, "scale": scale, **hparams}

    def violation(self, config: dict[str, Any]) -> FamilyConstraint | None:
        """The first constraint ``config`` breaks, or None."""
        for item in self.constraints:
            if not item.constraint.holds(config):
                return item
        return None

    def raw_configurations(self) -> Iterator[dict[str, Any]]:
        """Every grid point, constraints not applied (requires an enumerable family)."""
        for scale in self.scales:
            for grid in self.subgrids:
                names = list(grid)
                for values in itertools.product(*(grid[n].values() for n in names)):
                    yield self.make_config(scale, dict(zip(names, values)))

    def configurations(self) -> Iterator[dict[str, Any]]:
        for config in self.raw_configurations():
            if self.violation(config) is None:
                yield config


@dataclass
class Space:
    path: Path
    name: str
    description: str
    families: dict[str, FamilySpace]
    fixed: StudySettings
    # Python files registering this space's own families (``model_files:``, absolute paths);
    # every process that builds its models imports them first (search.study.trial).
    model_files: tuple[str, ...] = ()
    _enumerated: list[dict[str, Any]] | None = field(default=None, repr=False)

    def with_scales(self, scales) -> Space:
        """This space restricted to ``scales`` (``--scales 2``): each family keeps the scales it
        has among them; a family with none left is dropped. A scale no family has is an error."""
        wanted = tuple(sorted({int(s) for s in scales}))
        offered = sorted({s for f in self.families.values() for s in f.scales})
        missing = [s for s in wanted if s not in offered]
        if not wanted or missing:
            raise SpaceError(f"--scales {','.join(map(str, wanted or ['(none)']))}: the space offers scales "
                             f"{', '.join(map(str, offered))}", path=self.path)
        families = {}
        for name, family in self.families.items():
            kept = tuple(s for s in family.scales if s in wanted)
            if kept:
                families[name] = dataclasses.replace(family, scales=kept)
        return dataclasses.replace(self, families=families, _enumerated=None)

    @property
    def enumerable(self) -> bool:
        return all(f.enumerable for f in self.families.values())

    @property
    def size(self) -> int | None:
        """Grid points of all families (see :attr:`FamilySpace.size`); None if not enumerable."""
        if not self.enumerable:
            return None
        return sum(f.size for f in self.families.values())

    @property
    def hparam_names(self) -> list[str]:
        names: list[str] = []
        for family in self.families.values():
            names.extend(n for n in family.hparam_names if n not in names)
        return names

    def enumerate(self) -> list[dict[str, Any]]:
        """All configurations (file order; duplicates across sub-grids listed once)."""
        if self._enumerated is None:
            if not self.enumerable:
                open_dims = [
                    f"families.{f.name}.{n}" for f in self.families.values()
                    for g in f.subgrids for n, d in g.items() if not d.enumerable
                ]
                raise SpaceError(
                    f"{', '.join(open_dims)}: a float range without step cannot be enumerated "
                    "(give a step, or use --sampler random|tpe|nsga2)", path=self.path
                )
            if self.size > MAX_GRID_CONFIGURATIONS:  # the loader refuses such files already
                raise SpaceError(f"families: {count_text(self.size)} configurations; a grid may list "
                                 f"at most {MAX_GRID_CONFIGURATIONS:,}", path=self.path)
            seen: set[str] = set()
            configs = []
            for family in self.families.values():
                for config in family.configurations():
                    if config["config_id"] not in seen:
                        seen.add(config["config_id"])
                        configs.append(config)
            self._enumerated = configs
        return [dict(c) for c in self._enumerated]

    def smallest_configurations(self) -> list[dict[str, Any]]:
        """Each family's smallest configuration at each scale: an initial design.

        Every hyper-parameter at its low end (the lowest number of a list of numbers, else the
        list's first value; a range's ``low``), taken in the family's first sub-grid. For
        width/depth/kernel hyper-parameters that is the family's cheapest model, the anchor
        of the fast end of a quality-cost front. A corner that breaks a constraint is left out.
        Ordered scale by scale (ascending), families in file order within a scale, so that a
        design cut short (a small budget) still covers every family.
        """
        anchors = []
        for family_index, family in enumerate(self.families.values()):
            grid = family.subgrids[0]
            hparams = {name: _low_end(dim) for name, dim in grid.items()}
            for scale in family.scales:
                config = family.make_config(scale, hparams)
                if family.violation(config) is None:
                    anchors.append(((scale, family_index), config))
        return [config for _, config in sorted(anchors, key=lambda item: item[0])]

    def config_by_id(self, config_id: str) -> dict[str, Any]:
        for config in self.enumerate():
            if config["config_id"] == config_id:
                return config
        raise SpaceError(f"configuration {config_id!r} is not in this space", path=self.path)

    def _shared_scales(self) -> bool:
        return len({f.scales for f in self.families.values()}) == 1

    def param_name(self, family_name: str, hp: str, grid_index: int | None = None) -> str:
        """The Optuna parameter name of one family's hyper-parameter.

        A hyper-parameter that several single-grid families declare with the same domain
        (eSR-MAX/TM/TR's ``K`` and ``C``) is one parameter, named ``<hp>``: a trial that
        switches family keeps its kernel size and width, so a sampler's crossover and
        mutation move between neighbouring configurations of sibling families (and TPE pools
        their observations). Otherwise ``<family>.<hp>``, or ``<family>.g<i>.<hp>`` for a
        union of sub-grids.
        """
        family = self.families[family_name]
        if len(family.subgrids) > 1:
            return f"{family_name}.g{grid_index}.{hp}"
        domain = family.subgrids[0][hp]
        sharing = [f for f in self.families.values()
                   if len(f.subgrids) == 1 and f.subgrids[0].get(hp) == domain]
        return hp if len(sharing) > 1 else f"{family_name}.{hp}"

    def suggest_every_gene(self, trial) -> None:
        """Flat encoding of the conditional space: ask for every family's hyper-parameters.

        Optuna's NSGA-II and multivariate TPE model only the parameters present in every
        trial; with the define-by-run space alone (:meth:`suggest`) those are just ``family``
        and ``scale``, and a family's own hyper-parameters would be drawn at random forever.
        Asking for all of them each trial (the inactive ones are carried along as inert genes,
        a standard GA encoding of conditional spaces) lets crossover and mutation act on them.
        :meth:`suggest` then asks the same names with the same distributions and gets these
        values back. Sibling families share the genes they declare alike (:meth:`param_name`).
        """
        names = list(self.families)
        if len(names) > 1:
            trial.suggest_categorical("family", names)
        for name, family in self.families.items():
            scales = list(family.scales)
            if len(scales) > 1:
                trial.suggest_categorical("scale" if self._shared_scales() else f"{name}.scale", scales)
            if len(family.subgrids) == 1:
                for hp, dim in family.subgrids[0].items():
                    dim.suggest(trial, self.param_name(name, hp))
            else:
                trial.suggest_categorical(f"{name}.grid", list(range(len(family.subgrids))))
                for index, grid in enumerate(family.subgrids):
                    for hp, dim in grid.items():
                        dim.suggest(trial, self.param_name(name, hp, index))

    def suggest(self, trial) -> dict[str, Any]:
        """Define-by-run: ask an Optuna trial for one configuration (family -> its hparams).

        Parameter names: ``family``; ``scale`` (``<family>.scale`` when families differ in
        scales); ``<hp>`` for a hyper-parameter sibling families share (:meth:`param_name`),
        else ``<family>.<hp>``, or ``<family>.grid`` + ``<family>.g<i>.<hp>`` for a union of
        sub-grids (their value sets differ, so Optuna must see them as different parameters).
        A configuration that breaks a constraint carries ``constraint_error``.
        """
        names = list(self.families)
        family_name = names[0] if len(names) == 1 else trial.suggest_categorical("family", names)
        family = self.families[family_name]
        scales = list(family.scales)
        if len(scales) == 1:
            scale = scales[0]
        else:
            scale_param = "scale" if self._shared_scales() else f"{family_name}.scale"
            scale = trial.suggest_categorical(scale_param, scales)
        if len(family.subgrids) == 1:
            index = None
        else:
            index = trial.suggest_categorical(f"{family_name}.grid", list(range(len(family.subgrids))))
        grid = family.subgrids[index or 0]
        hparams = {name: dim.suggest(trial, self.param_name(family_name, name, index))
                   for name, dim in grid.items()}
        config = family.make_config(scale, hparams)
        try:
            broken = family.violation(config)
        except Exception as exc:  # e.g. a bound of constraints.py; the loader could not check
            # a continuous range point by point, so this trial fails like a violation would
            config["constraint_error"] = (f"{config['config_id']}: a constraint cannot be evaluated "
                                          f"({type(exc).__name__}: {exc})")
            return config
        if broken is not None:
            config["constraint_error"] = f"{config['config_id']} violates {broken.describe()}"
        return config


def count_text(count: int) -> str:
    """A configuration count for a message: ``1,185``; huge ones without printing every digit."""
    if count < 10**15:
        return f"{count:,}"
    return f"about 10^{int(count.bit_length() * math.log10(2))}"


def _low_end(dim: Dimension) -> Any:
    low = getattr(dim, "low", None)
    if low is not None:
        return low
    values = dim.values()
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return min(values) if numeric else values[0]
