"""Few-shot latency transfer (search/profile/transfer.py): shot design, fit, no leakage, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from search.profile import transfer as T


def _synthetic(n_per_stratum: int = 12, seed: int = 0) -> T.DeviceTables:
    """7 families x 3 scales; MACs spread over two decades; two 'source' devices."""
    rng = np.random.default_rng(seed)
    fams, scales, macs = [], [], []
    for f in range(7):
        for s in (2, 3, 4):
            for _ in range(n_per_stratum):
                fams.append(f"fam{f}")
                scales.append(s)
                macs.append(10 ** rng.uniform(6, 8))
    macs = np.array(macs)
    n = len(macs)
    latency = {
        # sources: MACs plus a per-model part that has nothing to do with MACs
        "a": 1e-6 * macs * np.exp(rng.normal(0, 0.3, n)),
        "b": 3e-6 * macs ** 0.8 * np.exp(rng.normal(0, 0.3, n)),
    }
    return T.DeviceTables(model_ids=[f"m{i}" for i in range(n)], families=np.array(fams),
                          scales=np.array(scales), macs=macs, latency_ms=latency,
                          sources={"a": "synthetic", "b": "synthetic"})


def test_shots_cover_every_family_then_every_family_and_scale():
    t = _synthetic()
    for seed in range(5):
        shots = T.design_shots(t.families, t.scales, t.macs, 7, seed=seed)
        assert len(set(shots.tolist())) == 7
        assert set(t.families[shots]) == set(t.families)              # 7 shots: one per family
        shots = T.design_shots(t.families, t.scales, t.macs, 21, seed=seed)
        pairs = set(zip(t.families[shots].tolist(), t.scales[shots].tolist()))
        assert len(pairs) == 21                                        # 7 x 3: every pair once
    assert np.array_equal(T.design_shots(t.families, t.scales, t.macs, 10, seed=3),
                          T.design_shots(t.families, t.scales, t.macs, 10, seed=3))


def test_shots_spread_over_cost_within_a_stratum():
    # one stratum of 100 models: the Latin-hypercube quantiles put one shot in each cost decile
    macs = np.arange(1, 101, dtype=float)[::-1].copy()   # cost rank = 99 - index
    fams = np.array(["f"] * 100)
    scales = np.array([2] * 100)
    for seed in range(5):
        shots = T.design_shots(fams, scales, macs, 10, seed=seed)
        ranks = np.argsort(np.argsort(macs))[shots]
        assert sorted((ranks // 10).tolist()) == list(range(10))


def test_transfer_recovers_a_device_that_is_an_exact_function_of_macs():
    t = _synthetic()
    t.latency_ms["target"] = 0.002 * t.macs ** 0.9      # exactly log-linear in MACs
    t.sources["target"] = "synthetic"
    result = T.evaluate_transfer(t, "target", (5, 10), repeats=3)
    for k in ("5", "10"):
        m = result["shots"][k]["transfer"]
        # ridge with alpha >= 1e-4 on standardised inputs: a bias of order alpha / K in the
        # log-space coefficients, i.e. ~1e-4 relative over two decades of MACs
        assert m["within_10pct"] == 1.0 and m["spearman"] > 0.999
        assert m["median_abs_rel_error"] < 1e-3
        assert result["shots"][k]["macs"]["median_abs_rel_error"] < 1e-9   # the MACs baseline is exact too
        assert m["n_test"] == len(t) - int(k)


def test_transfer_recovers_a_device_that_is_a_power_of_a_source():
    t = _synthetic()
    t.latency_ms["target"] = 5.0 * t.latency_ms["a"] ** 1.3
    t.sources["target"] = "synthetic"
    result = T.evaluate_transfer(t, "target", (10,), repeats=3)
    assert result["shots"]["10"]["transfer"]["median_abs_rel_error"] < 1e-3
    # MACs alone cannot: the source's per-model part (sd 0.3 in log) is invisible to it
    assert result["shots"]["10"]["macs"]["median_abs_rel_error"] > 0.1


def test_no_leakage_from_the_target_column_outside_the_shots():
    t = _synthetic()
    t.latency_ms["target"] = t.latency_ms["b"] * np.exp(np.random.default_rng(1).normal(0, 0.2, len(t)))
    shots = T.design_shots(t.families, t.scales, t.macs, 10, seed=0)
    inputs = T.transfer_inputs(t, "target")
    before, _ = T.predict_transfer(inputs, t.latency_ms["target"], shots)
    changed = t.latency_ms["target"].copy()
    rest = np.setdiff1d(np.arange(len(t)), shots)
    changed[rest] *= np.random.default_rng(2).uniform(0.1, 10, len(rest))
    t.latency_ms["target"] = changed
    after_inputs = T.transfer_inputs(t, "target")
    after, _ = T.predict_transfer(after_inputs, changed, shots)
    for name in inputs:
        assert np.array_equal(inputs[name], after_inputs[name])   # the target is never an input
    assert np.array_equal(before, after)


def test_real_tables_hold_four_devices_on_the_same_models():
    t = T.load_tables()
    assert set(t.latency_ms) == {"jetson", "maxq", "rpi", "cpu"}
    assert len(t) == 1185
    for values in t.latency_ms.values():
        assert values.shape == (len(t),) and np.all(values > 0)
    assert T.resolve_target("agx", t) == "jetson"


def test_cli_transfer_json(capsys):
    from search.profile.__main__ import main

    assert main(["transfer", "--target", "cpu", "--shots", "5,10", "--repeats", "2",
                 "--no-graph", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target"] == "cpu" and "cpu" not in out["inputs"]
    assert set(out["shots"]) == {"5", "10"}
    for k in ("5", "10"):
        assert set(out["shots"][k]) == {"transfer", "macs"}
        assert out["shots"][k]["transfer"]["n_test"] == 1185 - int(k)


def test_cli_transfer_rejects_bad_input(capsys):
    from search.profile.__main__ import main

    for argv in (["transfer", "--target", "orin", "--shots", "5", "--no-graph"],
                 ["transfer", "--target", "rpi", "--shots", "1", "--no-graph"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert "unknown transfer target 'orin'" in capsys.readouterr().err
