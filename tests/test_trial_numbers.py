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
