"""The measured CPU table of the released eSR grid, and its rank correlations."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
from scipy import stats

from search.report.esr_cpu_latency import spearman


def test_spearman_hand_computed():
    # ranks of b: 1 2 4 3 -> d = 0 0 1 1 -> rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert spearman(pd.Series([1.0, 2, 3, 4]), pd.Series([10.0, 20, 40, 30])) == pytest.approx(0.8)
    assert spearman(pd.Series([1.0, 2, 3, 4]), pd.Series([4.0, 3, 2, 1])) == pytest.approx(-1.0)
    assert spearman(pd.Series([1.0, 2]), pd.Series([1.0, 2])) is None  # too few to rank


def test_spearman_ties_and_missing_agree_with_scipy():
    a = pd.Series([3.0, 1, 2, 2, 5, None, 7])
    b = pd.Series([1.0, 1, 2, 3, 3, 4, None])
    both = pd.concat([a, b], axis=1).dropna()
    expected = stats.spearmanr(both.iloc[:, 0], both.iloc[:, 1]).statistic
    assert spearman(a, b) == pytest.approx(expected)


@pytest.mark.slow
def test_measure_two_models_then_resume_and_report(tmp_path):
    from search.experiments.esr_cpu_latency import main as measure
    from search.report.esr_cpu_latency import main as report

    out = tmp_path / "measured"
    assert measure(["--models", "eSR-MAX_s2_K3_C1", "--output-size", "64x64", "--out", str(out), "--no-progress"]) == 0
    with open(out / "latency.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model"] for r in rows] == ["eSR-MAX_s2_K3_C1"]
    row = rows[0]
    assert (row["lr_h"], row["lr_w"]) == ("32", "32") and float(row["latency_ms"]) > 0
    # one 3x3 conv 1 -> s^2 * C = 4 channels at every LR pixel: 9 * 4 mult-adds each
    assert int(row["macs"]) == 9 * 4 * 32 * 32 and int(row["params"]) == 9 * 4
    assert json.loads((out / "machine.json").read_text())["output_size"] == [64, 64]
    # a second run measures only what is missing
    assert measure(["--models", "eSR-MAX_s2_K3_C*", "--output-size", "64x64", "--out", str(out), "--no-progress"]) == 0
    with open(out / "latency.csv", newline="") as handle:
        models = [r["model"] for r in csv.DictReader(handle)]
    assert len(models) == len(set(models)) == 16  # C = 1..16, the first one kept
    assert report(["--measured", str(out), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "cpu_latency.md").read_text()
    assert "| all scales | 16 |" in text
    # another output size is refused instead of mixing two sizes in one table
    with pytest.raises(SystemExit) as refused:
        measure(["--models", "eSR-MAX_s2_K3_C*", "--output-size", "32x32", "--out", str(out), "--no-progress"])
    assert refused.value.code == 2
