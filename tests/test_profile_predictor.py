"""Latency predictors: stored JSON predictors, CV metrics, round trip, extrapolation labels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from search.errors import UserError
from search.models import create_model, list_families
from search.profile import get_device
from search.profile import predictor as P

STORED = {name: P.PREDICTOR_DIR / f"{name}.json" for name in ("jetson", "rpi", "maxq")}


@pytest.mark.parametrize("device", sorted(STORED))
def test_stored_predictor_has_cv_error_and_predicts_published_speed(device):
    if not STORED[device].is_file():
        pytest.skip(f"no stored predictor for {device}; run `python -m search.profile predictor --device {device} --save`")
    predictor = P.LatencyPredictor.load(STORED[device])
    for key in ("within_10pct", "within_20pct", "spearman"):
        assert 0 < predictor.cv[key] <= 1
    assert predictor.cv["n"] >= 1000 and predictor.n_models >= 1000
    assert predictor.leave_one_family_out["per_family"]
    # spot-check against the published speeds (fitted data: a loose bound, not the CV error)
    import pandas as pd

    table = pd.read_csv(P.PUBLISHED_CSV).set_index("model")
    profile = get_device(device)
    for model_id in ("eSR-MAX_s2_K3_C1", "eSR-TR_s4_K7_C16", "FSRCNN_s2_D56_S12_M4", "ESPCN_s3_D9_S27"):
        result = P.predict_latency(create_model(model_id), device)
        published_ms = 1000.0 / table.loc[model_id, profile.published_column]
        assert result["latency_ms"] == pytest.approx(published_ms, rel=0.35), model_id
        assert result["latency_source"] == f"predicted:{device}"


def test_fit_round_trip_and_cross_validation_on_a_subset(tmp_path):
    profile = get_device("jetson")
    data = P.load_published(profile, limit=48, progress=False)
    assert data.features.shape == (48, len(P.FEATURE_NAMES))
    assert np.all(data.latency_ms > 0)
    small = dict(n_estimators=30)
    fitted = P.fit_predictor(profile, data, gbm_settings=small)
    path = fitted.save(tmp_path / "jetson.json")
    loaded = P.LatencyPredictor.load(path)
    assert np.allclose(loaded.predict_ms(data.features), fitted.predict_ms(data.features))
    in_sample = P.error_metrics(data.latency_ms, fitted.predict_ms(data.features))
    metrics, held_out = P.cross_validate(profile, data, folds=3, gbm_settings=small)
    assert metrics["n"] == 48 and held_out.shape == (48,)
    assert in_sample["within_20pct"] >= metrics["within_20pct"]  # held-out is the harder test
    assert metrics["spearman"] > 0.7
    lofo, _ = P.leave_one_family_out(profile, data, gbm_settings=small)
    assert set(lofo["per_family"]) == set(data.families.tolist())


def test_exported_trees_reproduce_scikit_learn():
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = X[:, 0] * 2 + np.sin(X[:, 1]) + 0.1 * rng.normal(size=200)
    gbm = GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=0).fit(X, y)
    trees = [P._export_tree(est[0]) for est in gbm.estimators_]
    ours = gbm.predict(X[:1])[0] - sum(0.1 * P._tree_predict(t, X[:1])[0] for t in trees)
    ours = ours + sum(0.1 * P._tree_predict(t, X) for t in trees)
    assert np.allclose(ours, gbm.predict(X), rtol=0, atol=1e-5)


def test_corrupt_predictor_file_is_a_user_error(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"format_version": 99}))
    with pytest.raises(UserError, match="x.json"):
        P.LatencyPredictor.load(bad)


def test_device_without_published_data_has_no_predictor():
    with pytest.raises(UserError, match="measure it instead"):
        P.load_predictor("cpu")


@pytest.mark.skipif("IMDN" not in list_families() or not STORED["jetson"].is_file(),
                    reason="IMDN not registered or no stored jetson predictor")
def test_other_families_are_predicted_as_extrapolation():
    result = P.predict_latency(create_model("IMDN-RTC_s2"), "jetson")
    assert result["latency_extrapolation"] is True
    assert "IMDN-RTC" in result["latency_extrapolation_reason"]
    assert result["latency_ms"] > 0 and result["latency_cv_within_10pct"] is not None


def test_cli_predictor_json(capsys):
    from search.profile.__main__ import main

    main(["predictor", "--device", "agx", "--cv", "2", "--limit", "24", "--trees", "20", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["device"] == "jetson" and summary["n"] == 24 and summary["folds"] == 2
    for key in ("within_10pct", "within_20pct", "spearman"):
        assert summary[key] is not None
