"""Optuna samplers for ``--sampler``, and NSGA-II's variation operator for grid-like spaces.

The runner (:mod:`search.study.runner`) and the tabular benchmark
(:mod:`search.study.tabular`) build their samplers here, so the benchmark measures the
samplers a search runs with. Both ask for every gene of the space each trial
(:meth:`search.space.Space.suggest_every_gene`): Optuna's NSGA-II and multivariate TPE model
only the parameters present in every trial.

NSGA-II keeps Optuna's own machinery (generations, non-dominated sorting and crowding
distance for the elite population, the random first generation, storage); only the child
generation is specific to these spaces (:class:`NeighbourVariation`, plugged in through
``NSGAIISampler(child_generation_strategy=...)``).
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from search.errors import UserError
from search.study.pareto import dominates

SAMPLERS = ("grid", "random", "tpe", "nsga2")
# Small, so that several generations fit in a budget of ~100 trials; chosen with the
# tabular benchmark (docs/reports.md, "How the samplers see the space").
NSGA2_POPULATION = 8
# A child that repeats an evaluated configuration is drawn again, up to this many times.
MAX_CHILD_ATTEMPTS = 100


def make_sampler(name: str, seed: int | None, space=None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler behind ``--sampler NAME`` (grid: configurations are enqueued).

    ``space``: the :class:`search.space.Space` searched; NSGA-II needs it for its variation
    operator (which genes a configuration uses, and duplicate elimination).
    """
    if name in ("grid", "random"):
        return PicklableRandomSampler(seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            # multivariate + group: the space is conditional (family -> its hyper-parameters)
            return PicklableTPESampler(seed=seed, multivariate=True, group=True)
        if name == "nsga2":
            if space is None:
                raise ValueError("NSGA-II needs the space for its variation operator")
            return EveryTrialNSGAIISampler(
                seed=seed, population_size=NSGA2_POPULATION,
                child_generation_strategy=NeighbourVariation(space, seed=seed))
    raise UserError(f"unknown sampler {name!r}; one of {', '.join(SAMPLERS)}")


_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


class ProcessLocalStatePickling:
    """Pickling that leaves out locks, whatever attribute of the sampler holds them.

    Ray Tune pickles the searcher, and with it the sampler, when a ``Tuner`` is built and at
    every checkpoint. A lock cannot be pickled, and Optuna adds them to its samplers between
    releases (optuna 5.1: ``BaseGASampler._thread_lock``); a lock only means something inside
    one process, so it is dropped here and a fresh one of the same kind made on unpickling.
    """

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        locks = {name: isinstance(value, type(threading.RLock())) for name, value in state.items()
                 if isinstance(value, _LOCK_TYPES)}
        for name in locks:
            del state[name]
        state["_process_local_locks"] = locks
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        locks = state.pop("_process_local_locks", {})
        for name, reentrant in locks.items():
            state[name] = threading.RLock() if reentrant else threading.Lock()
        self.__dict__.update(state)


class PicklableRandomSampler(ProcessLocalStatePickling, optuna.samplers.RandomSampler):
    """Optuna's random sampler, picklable by Ray Tune in any Optuna release."""


class PicklableTPESampler(ProcessLocalStatePickling, optuna.samplers.TPESampler):
    """Optuna's TPE sampler, picklable by Ray Tune in any Optuna release."""


class EveryTrialNSGAIISampler(ProcessLocalStatePickling, optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II, with every trial in a generation, enqueued ones included.

    Optuna gives a trial its generation when it first samples relative parameters; an
    enqueued trial whose every parameter is fixed (an initial-design anchor of a
    single-family space) never does, so it would never be a parent.
    """

    def before_trial(self, study, trial) -> None:
        super().before_trial(study, trial)
        self.get_trial_generation(study, trial)


class _ParamsTrial:
    """Answers a space's define-by-run questions from a dict of parameters and notes the names
    asked, which are the genes that configuration uses."""

    def __init__(self, params: dict[str, Any]):
        self.params = params
        self.asked: list[str] = []

    def _answer(self, name: str, *_args, **_kwargs):
        self.asked.append(name)
        return self.params[name]

    suggest_categorical = suggest_int = suggest_float = _answer


def configuration_of(space, params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The configuration a flat parameter dict encodes, and the genes it uses (active genes)."""
    trial = _ParamsTrial(params)
    return space.suggest(trial), trial.asked


def neighbour_value(distribution: BaseDistribution, value: Any, rng: np.random.RandomState) -> Any:
    """A value next to ``value`` in its domain.

    Ordered domains (numbers: an int or stepped float range, a list of numbers) move one step
    up or down (only inward at an end); a float range without a step moves by a normal step
    of a tenth of its (log-)width; an unordered list (family names, strings) takes any other
    value.
    """
    if isinstance(distribution, CategoricalDistribution):
        choices = list(distribution.choices)
        if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices):
            ordered = sorted(choices)
            return _step(ordered, ordered.index(value), rng)
        others = [c for c in choices if c != value]
        return others[rng.randint(len(others))] if others else value
    if isinstance(distribution, IntDistribution):
        return _step(list(range(distribution.low, distribution.high + 1, distribution.step)),
                     (value - distribution.low) // distribution.step, rng)
    if isinstance(distribution, FloatDistribution):
        if distribution.step is not None:
            count = int(round((distribution.high - distribution.low) / distribution.step)) + 1
            values = [distribution.low + i * distribution.step for i in range(count)]
            return _step(values, int(round((value - distribution.low) / distribution.step)), rng)
        if distribution.log:
            low, high, x = np.log(distribution.low), np.log(distribution.high), np.log(value)
            return float(np.exp(np.clip(x + rng.normal(0.0, 0.1 * (high - low)), low, high)))
        low, high = distribution.low, distribution.high
        return float(np.clip(value + rng.normal(0.0, 0.1 * (high - low)), low, high))
    raise TypeError(f"no neighbour rule for {distribution!r}")


def _step(values: list, index: int, rng: np.random.RandomState):
    moves = [i for i in (index - 1, index + 1) if 0 <= i < len(values)]
    return values[moves[rng.randint(len(moves))]] if moves else values[index]


class NeighbourVariation:
    """NSGA-II child generation for grids of architectures: crossover, then a neighbour move.

    1. Two parents, each the winner of a binary tournament by Pareto dominance (Optuna's
       rule; a tie is a coin flip).
    2. With ``crossover_prob``, uniform crossover: each gene from either parent (the inert
       genes of the families a configuration does not use travel along); else a copy of the
       first parent.
    3. Mutation: exactly one gene the child's configuration uses (its family, scale, or one of
       its family's hyper-parameters) moves to a neighbouring value (:func:`neighbour_value`).

    Optuna's default mutation redraws a gene from its whole domain, so a child rarely lands
    next to a good parent, and in a flat encoding most mutations hit genes the configuration
    does not use. A one-step move is the discrete analogue of a small continuous mutation:
    the children of front members are their neighbours (eSR-MAX K3 C1 -> C2, x4 -> x3),
    where a width/kernel/scale grid keeps its next-best trade-offs.

    A child that repeats a configuration the study already holds (any state), or breaks a
    space constraint, is drawn again (duplicate elimination, as in pymoo's NSGA-II), up to
    ``max_attempts`` times; then the last one is returned (the tabular benchmark prunes it;
    a search evaluates it again).
    """

    def __init__(self, space, *, crossover_prob: float = 0.9, seed: int | None = None,
                 max_attempts: int = MAX_CHILD_ATTEMPTS):
        if not 0.0 <= crossover_prob <= 1.0:
            raise ValueError(f"crossover_prob must be in [0, 1], got {crossover_prob}")
        self.space = space
        self.crossover_prob = crossover_prob
        self.max_attempts = max_attempts
        self._rng = np.random.RandomState(seed)
        self._known: dict[int, str] = {}  # trial number -> config id

    def __call__(self, study, search_space: dict[str, BaseDistribution], parent_population) -> dict[str, Any]:
        seen = self._seen(study)
        child: dict[str, Any] = {}
        for _ in range(self.max_attempts):
            child = self._child(study, search_space, parent_population)
            config, _ = configuration_of(self.space, child)
            if config["config_id"] not in seen and "constraint_error" not in config:
                break
        return child

    def _child(self, study, search_space, parents) -> dict[str, Any]:
        first = self._tournament(study, parents).params
        if self._rng.rand() < self.crossover_prob:
            second = self._tournament(study, parents).params
            child = {name: (first if self._rng.rand() < 0.5 else second)[name] for name in search_space}
        else:
            child = {name: first[name] for name in search_space}
        _, active = configuration_of(self.space, child)
        active = [name for name in active if name in search_space and not search_space[name].single()]
        if active:
            gene = active[self._rng.randint(len(active))]
            child[gene] = neighbour_value(search_space[gene], child[gene], self._rng)
        return child

    def _tournament(self, study, parents):
        a, b = (parents[i] for i in self._rng.choice(len(parents), 2, replace=len(parents) < 2))
        if _dominates(a.values, b.values, study.directions):
            return a
        if _dominates(b.values, a.values, study.directions):
            return b
        return a if self._rng.rand() < 0.5 else b

    def _seen(self, study) -> set[str]:
        for trial in study.get_trials(deepcopy=False):
            if trial.number not in self._known and trial.params:
                try:
                    self._known[trial.number] = configuration_of(self.space, trial.params)[0]["config_id"]
                except KeyError:  # a trial still being asked (its genes are not all set yet)
                    continue
        return set(self._known.values())


def _dominates(a, b, directions) -> bool:
    """Pareto dominance of Optuna value vectors under the study's directions."""
    names = ["min" if d == optuna.study.StudyDirection.MINIMIZE else "max" for d in directions]
    return dominates(a, b, names)
