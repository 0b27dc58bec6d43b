"""RDB trial n is trials.csv trial n: the mirror copies in number order, gaps become placeholders.

The RDB numbers trials in the order they are added (what optuna-dashboard shows); trials.csv and
the trial folders use the number a trial got when it was asked. Expected numbers below are
written by hand from the order of events.
"""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from search.study.optuna_store import StorageMirror

optuna.logging.set_verbosity(optuna.logging.WARNING)


def finished(number: int, value: float):
    return optuna.trial.create_trial(state=TrialState.COMPLETE, values=[value], params={"x": value},
                                     distributions={"x": FloatDistribution(0, 100)},
                                     user_attrs={"trial": number})


def rdb_view(study):
    return [(t.number, t.user_attrs.get("trial"), t.state, t.user_attrs.get("status")) for t in study.get_trials()]


def test_out_of_order_finishes_are_copied_in_number_order():
    study = optuna.create_study()
    mirror = StorageMirror(study)
    for number in (1, 2, 0, 3):  # 1 and 2 finish while 0 still runs
        mirror.put(finished(number, float(number)))
    mirror.close()
    assert rdb_view(study) == [(n, n, TrialState.COMPLETE, None) for n in range(4)]
    assert [t.params["x"] for t in study.get_trials()] == [0.0, 1.0, 2.0, 3.0]


def test_a_number_that_never_finished_gets_a_failed_placeholder_at_close():
    study = optuna.create_study()
    mirror = StorageMirror(study)
    for number in (0, 2, 4):  # 1 and 3 were running when the study was interrupted
        mirror.put(finished(number, float(number)))
    mirror.close()
    assert rdb_view(study) == [
        (0, 0, TrialState.COMPLETE, None),
        (1, 1, TrialState.FAIL, "interrupted"),
        (2, 2, TrialState.COMPLETE, None),
        (3, 3, TrialState.FAIL, "interrupted"),
        (4, 4, TrialState.COMPLETE, None),
    ]


def test_a_resumed_mirror_continues_after_the_stored_trials():
    study = optuna.create_study()
    for number in range(3):
        study.add_trial(finished(number, 1.0))
    mirror = StorageMirror(study, next_number=3)
    mirror.put(finished(4, 4.0))
    mirror.put(finished(3, 3.0))
    mirror.close()
    assert [(t.number, t.user_attrs["trial"]) for t in study.get_trials()] == [(n, n) for n in range(5)]


@pytest.mark.parametrize("first_number", [0, 5])
def test_nothing_finished_adds_nothing(first_number):
    study = optuna.create_study()
    mirror = StorageMirror(study, next_number=first_number)
    mirror.close()
    assert study.get_trials() == []


class FailingOnce:
    """An RDB study whose second add fails (e.g. 'database is locked')."""

    def __init__(self):
        self.study, self.calls = optuna.create_study(), 0

    def add_trial(self, frozen):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("database is locked")
        self.study.add_trial(frozen)


def test_after_a_failed_copy_the_rdb_stays_a_prefix_of_trials_csv():
    rdb = FailingOnce()
    mirror = StorageMirror(rdb)
    for number in range(4):
        mirror.put(finished(number, float(number)))
    mirror.close()
    # trial 1 failed to copy: copying 2 and 3 on would store them as RDB trials 1 and 2
    assert [(t.number, t.user_attrs["trial"]) for t in rdb.study.get_trials()] == [(0, 0)]
    assert mirror.errors == ["trial 1: database is locked"]


def test_resume_restores_missing_rows_in_order_with_placeholders_for_gaps():
    from search.space import load_space
    from search.study.runner import DefineByRun, _add_missing_rows

    space = load_space("spaces/esr_retrain.yaml").with_scales([2])
    ids = ["eSR-MAX_s2_K3_C1", "eSR-MAX_s2_K3_C2", "eSR-MAX_s2_K3_C3", "eSR-MAX_s2_K3_C4", "eSR-MAX_s2_K3_C5"]
    numbers = [0, 1, 2, 4, 5]  # trial 3 was running when the study was killed: no row
    rows = [{"trial": str(n), "config_id": c, "family": "eSR-MAX", "scale": "2", "K": "3", "C": c[-1],
             "status": "complete", "psnr_Set14": str(30 + n)} for n, c in zip(numbers, ids)]
    study = optuna.create_study(directions=["maximize"])
    define = DefineByRun(space)
    for row in rows[:3]:  # the RDB copy had reached trial 2
        from search.study.optuna_store import frozen_from_row
        study.add_trial(frozen_from_row(row, space, define, ["psnr_Set14"]))
    _add_missing_rows(study, rows, space, define, ["psnr_Set14"], lambda message: None)
    trials = study.get_trials()
    assert [(t.number, t.user_attrs.get("trial")) for t in trials] == [(n, n) for n in range(6)]
    assert trials[3].state == TrialState.FAIL and trials[3].user_attrs["status"] == "interrupted"
    assert [t.user_attrs.get("config_id") for t in trials] == ids[:3] + [None] + ids[3:]
    assert [t.values for t in trials if t.state == TrialState.COMPLETE] == [[30.0], [31.0], [32.0], [34.0], [35.0]]
