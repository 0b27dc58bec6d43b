"""search.study.samplers: the neighbour move, NSGA-II's child generation, duplicate elimination."""

import textwrap

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from search.paths import REPO_ROOT
from search.space import load_space
from search.study.runner import DefineByRun
from search.study.samplers import NeighbourVariation, configuration_of, make_sampler, neighbour_value

optuna.logging.set_verbosity(optuna.logging.WARNING)


def neighbours(distribution, value, draws=200):
    rng = np.random.RandomState(0)
    return {neighbour_value(distribution, value, rng) for _ in range(draws)}


@pytest.mark.parametrize("distribution, value, expected", [
    (CategoricalDistribution([7, 3, 5]), 5, {3, 7}),            # numbers: sorted, one step
    (CategoricalDistribution([7, 3, 5]), 3, {5}),               # at an end: inward only
    (CategoricalDistribution(["eSR-MAX", "ESPCN", "Bicubic"]), "ESPCN", {"eSR-MAX", "Bicubic"}),
    (IntDistribution(1, 16, log=True), 1, {2}),
    (IntDistribution(1, 16, log=True), 8, {7, 9}),
    (IntDistribution(0, 12, step=4), 4, {0, 8}),
    (FloatDistribution(0.005, 0.015, step=0.005), 0.015, {0.01}),
])
def test_a_neighbour_is_one_step_away_in_an_ordered_domain(distribution, value, expected):
    assert {round(v, 9) if isinstance(v, float) else v for v in neighbours(distribution, value)} == expected


@pytest.mark.parametrize("log", [False, True])
def test_a_continuous_gene_moves_a_little_and_stays_in_range(log):
    distribution = FloatDistribution(0.01, 1.0, log=log)
    moved = neighbours(distribution, 0.1)
    assert len(moved) > 100 and all(0.01 <= v <= 1.0 for v in moved)
    spread = np.std(np.log(list(moved)) if log else list(moved))
    width = np.log(100.0) if log else 0.99
    assert 0.05 * width < spread < 0.15 * width  # about a tenth of the width


def tiny_space(tmp_path, text):
    path = tmp_path / "space.yaml"
    path.write_text(textwrap.dedent(text))
    return load_space(path)


def study_with(space, configs_values):
    """A two-objective study holding the given configurations (by id) with the given values."""
    define = DefineByRun(space)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    by_id = {c["config_id"]: c for c in space.enumerate()}
    from search.study.optuna_store import ReplayTrial

    for config_id, values in configs_values:
        replay = ReplayTrial(by_id[config_id], space, number=0)
        define.ask(replay)
        study.add_trial(optuna.trial.create_trial(params=replay.params, distributions=replay.distributions,
                                                  values=values))
    return study


def test_without_crossover_a_child_is_its_parents_neighbour_in_one_gene_it_uses():
    space = load_space(REPO_ROOT / "spaces" / "esr.yaml")
    study = study_with(space, [("eSR-MAX_s3_K5_C4", [28.1, 45.0])])
    parent = study.trials[0]
    variation = NeighbourVariation(space, crossover_prob=0.0, seed=3)
    seen = set()
    for _ in range(60):
        child = variation(study, parent.distributions, [parent])
        config, _ = configuration_of(space, child)
        seen.add(config["config_id"])
    # family -> any other family (its inert genes), scale 3 -> 2|4, K 5 -> 3|7, C 4 -> 3|5
    siblings = {"eSR-MAX_s2_K5_C4", "eSR-MAX_s4_K5_C4", "eSR-MAX_s3_K3_C4", "eSR-MAX_s3_K7_C4",
                "eSR-MAX_s3_K5_C3", "eSR-MAX_s3_K5_C5", "eSR-TM_s3_K5_C4", "eSR-TR_s3_K5_C4"}
    assert siblings <= seen
    assert {c for c in seen if c.startswith("eSR-MAX")} <= siblings  # never two steps away
    assert "eSR-MAX_s3_K5_C4" not in seen                           # the parent itself: a duplicate


def test_a_child_that_repeats_an_evaluated_configuration_is_drawn_again(tmp_path):
    space = tiny_space(tmp_path, """
        scales: [2]
        families:
          eSR-MAX: {hparams: {K: [3], C: {low: 1, high: 3}}}
        """)
    study = study_with(space, [("eSR-MAX_s2_K3_C1", [30.0, 1.0]), ("eSR-MAX_s2_K3_C2", [30.5, 2.0])])
    parents = study.get_trials()
    for seed in range(10):
        child = NeighbourVariation(space, crossover_prob=0.5, seed=seed)(study, parents[0].distributions, parents)
        assert configuration_of(space, child)[0]["config_id"] == "eSR-MAX_s2_K3_C3"


def test_when_every_neighbour_is_taken_a_child_still_comes_back(tmp_path):
    space = tiny_space(tmp_path, """
        scales: [2]
        families:
          eSR-MAX: {hparams: {K: [3], C: {low: 1, high: 2}}}
        """)
    study = study_with(space, [("eSR-MAX_s2_K3_C1", [30.0, 1.0]), ("eSR-MAX_s2_K3_C2", [30.5, 2.0])])
    parents = study.get_trials()
    child = NeighbourVariation(space, seed=0, max_attempts=5)(study, parents[0].distributions, parents)
    assert configuration_of(space, child)[0]["config_id"] in {"eSR-MAX_s2_K3_C1", "eSR-MAX_s2_K3_C2"}


def test_nsga2_needs_the_space_and_unknown_samplers_are_user_errors():
    from search.errors import UserError

    with pytest.raises(ValueError, match="needs the space"):
        make_sampler("nsga2", 0)
    with pytest.raises(UserError, match="unknown sampler 'cmaes'"):
        make_sampler("cmaes", 0)


@pytest.mark.parametrize("name", ["grid", "random", "tpe", "nsga2"])
def test_every_cli_sampler_survives_pickling_and_continues_as_the_original(name):
    """Ray Tune pickles the searcher (and its sampler) when a Tuner is built; optuna 5.1 put a
    threading.Lock into its GA samplers, which made every --sampler nsga2 search crash."""
    import pickle
    import threading

    space = load_space(REPO_ROOT / "spaces" / "esr.yaml")
    sampler = make_sampler(name, 5, space)
    sampler._probe_lock = threading.RLock()  # a lock a future Optuna might add to any sampler
    copy = pickle.loads(pickle.dumps(sampler))
    assert isinstance(copy._probe_lock, type(threading.RLock())) and copy._probe_lock is not sampler._probe_lock
    with copy._probe_lock:  # a usable lock, not a placeholder
        pass

    def suggestions(s):
        study = optuna.create_study(directions=["maximize", "maximize"], sampler=s)
        define = DefineByRun(space)
        ids = []
        for _ in range(12):
            trial = study.ask()
            config = define.ask(trial)
            ids.append(config["config_id"])
            study.tell(trial, [float(config["scale"]), -float(len(config["config_id"]))])
        return ids

    assert suggestions(copy) == suggestions(make_sampler(name, 5, space))
