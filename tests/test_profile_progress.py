"""``python -m search.profile predictor``: progress bars on stderr, same results, --no-progress."""

from __future__ import annotations

import json

import numpy as np

from search.profile import get_device
from search.profile import predictor as P
from search.profile.__main__ import main

ARGS = ["predictor", "--device", "agx", "--cv", "2", "--limit", "24", "--trees", "20", "--json", "--lofo"]
FIELDS = {"device", "column", "within_10pct", "within_20pct", "spearman", "median_abs_rel_error",
          "n", "folds", "seed", "leave_one_family_out"}


def test_progress_on_stderr_and_identical_json(capsys):
    assert main(ARGS) == 0
    shown = capsys.readouterr()
    assert main(ARGS + ["--no-progress"]) == 0
    quiet = capsys.readouterr()
    assert "2-fold CV" in shown.err and "tree" in shown.err and "leave-one-family-out" in shown.err
    assert quiet.err == ""
    assert json.loads(shown.out) == json.loads(quiet.out)  # the bars change no number
    assert set(json.loads(shown.out)) == FIELDS


def test_tree_progress_does_not_stop_boosting_early():
    """tqdm.update returns True when it redraws; the monitor must not pass that on."""
    profile = get_device("jetson")
    data = P.load_published(profile, limit=24, progress=False)
    small = {"n_estimators": 15}
    plain = P.fit_predictor(profile, data, gbm_settings=small)
    shown = P.fit_predictor(profile, data, gbm_settings=small, progress=True)
    assert len(shown.trees) == 15
    assert shown.to_json() == plain.to_json()
    metrics, pred = P.cross_validate(profile, data, folds=3, gbm_settings=small)
    metrics_p, pred_p = P.cross_validate(profile, data, folds=3, gbm_settings=small, progress=True)
    assert metrics == metrics_p and np.array_equal(pred, pred_p)
