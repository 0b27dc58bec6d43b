"""Reports: study fronts, paper tables (missing stays missing, reported values from files),
the eSR front comparison, and the tabular summary."""

import csv
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from search.experiments import paper_costs
from search.paths import PUBLISHED_DIR, REPO_ROOT
from search.report import esr_front, fronts, paper_tables, tabular_summary

TRIAL_COLUMNS = ["trial", "config_id", "model_id", "family", "scale", "status", "error", "psnr_Set14",
                 "params", "flops", "latency_ms", "latency_source", "latency_cv_within_10pct"]


def _write_trials(folder: Path, rows: list[list]) -> Path:
    folder.mkdir(parents=True)
    with (folder / "trials.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(TRIAL_COLUMNS)
        writer.writerows(rows)
    (folder / "study.json").write_text(json.dumps({"options": {"objectives": "psnr_Set14:max,latency_ms:min"}}))
    return folder


def test_study_front_report(tmp_path):
    study = _write_trials(tmp_path / "study", [
        [0, "a", "a", "eSR-TM", 2, "complete", "", 30.0, 100, 1e6, 10.0, "predicted:jetson", 0.83],
        [1, "b", "b", "ESPCN", 2, "complete", "", 32.0, 1000, 1e8, 20.0, "predicted:jetson", 0.83],
        [2, "c", "c", "ESPCN", 2, "complete", "", 31.0, 900, 9e7, 25.0, "predicted:jetson", 0.83],
        [3, "d", "d", "eSR-TM", 2, "failed", "diverged", "", "", "", "", "", ""],
        [4, "e", "e", "Bicubic", 2, "complete", "", 29.0, 104, 1e5, 5.0, "predicted:jetson", 0.83],
    ])
    out = tmp_path / "report"
    assert fronts.main([str(study), "--out", str(out)]) == 0
    front = pd.read_csv(out / "pareto.csv")
    assert sorted(front["config_id"]) == ["a", "b", "e"]
    metrics = json.loads((out / "front.json").read_text())
    assert (metrics["complete"], metrics["failed"]) == (4, 1)
    assert list(metrics["scales"]) == ["x2"] and metrics["scales"]["x2"]["front_size"] == 3
    # normalised over the 4 finished trials, each objective a minimisation in [0, 1], 0 = best
    # (search/study/pareto.py): psnr 29..32 (max, flipped: 1 - (p - 29) / 3), latency 5..25
    # (min: (l - 5) / 20). Front e (29, 5) -> (1, 0), a (30, 10) -> (2/3, .25), b (32, 20) -> (0, .75);
    # c (31, 25) -> (1/3, 1) is dominated by b. The area they dominate under the reference point
    # (1.1, 1.1), by hand, in horizontal strips: y in [.75, 1.1] from x = 0, [.25, .75] from
    # x = 2/3, [0, .25] from x = 1: 1.1 * .35 + (1.1 - 2/3) * .5 + .1 * .25 = .385 + .21667 + .025
    x2 = metrics["scales"]["x2"]
    assert x2["normalisation"]["lower"] == [29.0, 5.0] and x2["normalisation"]["upper"] == [32.0, 25.0]
    assert x2["hypervolume"] == pytest.approx(0.626667, abs=1e-6)
    assert metrics["latency"] == "predicted for jetson (predictor CV: 83% within 10%)"
    assert (out / "plots" / "front_x2.png").stat().st_size > 10_000
    assert metrics["smoke_run"] is False and metrics["budget"] is None  # the study names no budget
    assert "| b | ESPCN | 2 | 32 |" in (out / "front.md").read_text()
    # what `dvc metrics show` prints: the headline numbers only, the same keys for every study
    assert json.loads((out / "metrics.json").read_text()) == {
        "trials": 5, "complete": 4, "failed": 1, "smoke_run": False,
        "x2": {"front_size": 3, "hypervolume": pytest.approx(0.626667, abs=1e-6), "best_psnr": 32.0}}


def test_study_front_draws_the_bicubic_reference_file(tmp_path):
    """Without a Bicubic trial, the line is the value bicubic_reference wrote (the report evaluates nothing)."""
    study = _write_trials(tmp_path / "study", [
        [0, "a", "a", "eSR-TM", 2, "complete", "", 30.0, 100, 1e6, 10.0, "predicted:jetson", 0.83],
        [1, "b", "b", "ESPCN", 2, "complete", "", 32.0, 1000, 1e8, 20.0, "predicted:jetson", 0.83],
    ])
    reference = tmp_path / "bicubic.json"
    reference.write_text(json.dumps({"psnr": {"Set14": {"2": 28.5}, "Set5": {"2": 33.0}}}))
    out = tmp_path / "report"
    assert fronts.main([str(study), "--out", str(out), "--bicubic", str(reference)]) == 0
    assert json.loads((out / "front.json").read_text())["scales"]["x2"]["bicubic_psnr"] == 28.5
    reference.write_text(json.dumps({"psnr": {"Set14": {"3": 28.5}}}))
    with pytest.raises(SystemExit) as exit_info:
        fronts.main([str(study), "--out", str(out), "--bicubic", str(reference)])
    assert exit_info.value.code == 2


def test_one_front_per_scale_never_across(tmp_path):
    """x3's best trial scores below every x2 trial; across scales it would still sit on one front
    with them. Per scale, x2's front is a and b, x3's is c alone (c dominates d)."""
    study = _write_trials(tmp_path / "study", [
        [0, "a", "a", "eSR-TM", 2, "complete", "", 30.0, 100, 1e6, 10.0, "measured:cpu", ""],
        [1, "b", "b", "ESPCN", 2, "complete", "", 32.0, 1000, 1e8, 20.0, "measured:cpu", ""],
        [2, "c", "c", "eSR-TM", 3, "complete", "", 27.0, 100, 1e6, 5.0, "measured:cpu", ""],
        [3, "d", "d", "ESPCN", 3, "complete", "", 26.0, 1000, 1e8, 8.0, "measured:cpu", ""],
    ])
    out = tmp_path / "report"
    assert fronts.main([str(study), "--out", str(out)]) == 0
    front = pd.read_csv(out / "pareto.csv")
    assert list(zip(front["scale"], front["config_id"])) == [(2, "b"), (2, "a"), (3, "c")]
    metrics = json.loads((out / "front.json").read_text())
    assert metrics["scales"]["x2"]["front_ids"] == ["b", "a"] and metrics["scales"]["x3"]["front_ids"] == ["c"]
    # x3 alone: c is best in both objectives -> normalised (0, 0): the whole 1.1 x 1.1 square
    assert metrics["scales"]["x3"]["hypervolume"] == pytest.approx(1.21)
    assert "hypervolume" not in metrics  # no number across scales
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["front_x2.png", "front_x3.png"]
    text = (out / "front.md").read_text()
    assert text.index("## x2") < text.index("| b | ESPCN | 2 |") < text.index("## x3") < text.index("| c | eSR-TM | 3 |")


def test_a_smoke_study_says_so(tmp_path):
    study = _write_trials(tmp_path / "study", [
        [0, "a", "a", "eSR-TM", 2, "complete", "", 19.0, 100, 1e6, 10.0, "measured:cpu", ""]])
    manifest = json.loads((study / "study.json").read_text())
    manifest["options"]["budget"] = "smoke"
    (study / "study.json").write_text(json.dumps(manifest))
    out = tmp_path / "report"
    assert fronts.main([str(study), "--out", str(out)]) == 0
    assert "SMOKE RUN" in (out / "front.md").read_text()
    assert json.loads((out / "metrics.json").read_text())["smoke_run"] is True


def test_study_front_bad_folder_is_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        fronts.main([str(tmp_path), "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert "no trials.csv" in capsys.readouterr().err


@pytest.fixture()
def paper_inputs(tmp_path):
    """A copy of published/ whose SMSR x2 Set5 PSNR is changed, one reproduced SMSR row, and the
    SMSR and DASR parameter counts of the registry models (paper_costs; IMDN's MACs left out)."""
    published = tmp_path / "published"
    shutil.copytree(PUBLISHED_DIR, published)
    table = pd.read_csv(published / "smsr_reported.csv", dtype=str)
    table.loc[table["scale"] == "2", "set5_psnr"] = "12.34"
    table.to_csv(published / "smsr_reported.csv", index=False)
    released = tmp_path / "studies" / "released"
    released.mkdir(parents=True)
    (released / "smsr.csv").write_text("model,family,scale,protocol,psnr_Set5,ssim_Set5,psnr_Set14,ssim_Set14\n"
                                       "SMSR_s2,SMSR,2,standard,12.5,0.9,33.0,0.91\n")
    inputs = paper_tables.Inputs(root=tmp_path, published=published)
    paper_costs.write_costs(paper_costs.count_costs(published, ["smsr", "dasr"]), inputs.costs)
    return inputs


def test_paper_table_reads_reported_from_file_and_keeps_missing(paper_inputs, tmp_path):
    out = tmp_path / "tables"
    paper_tables.build_tables(out, ["smsr"], paper_inputs)
    rows = pd.read_csv(out / "smsr.csv", keep_default_na=False)
    x2_set5 = rows[(rows.scale == 2) & (rows.test_set == "Set5") & (rows.metric == "psnr")].iloc[0]
    assert float(x2_set5.reported) == 12.34          # from the data file, not from code
    assert float(x2_set5.reproduced) == 12.5
    assert float(x2_set5.difference) == pytest.approx(0.16)
    x3_set5 = rows[(rows.scale == 3) & (rows.test_set == "Set5") & (rows.metric == "psnr")].iloc[0]
    assert x3_set5.reproduced == "" and x3_set5.difference == ""      # not reproduced: empty, not copied
    assert float(x3_set5.reported) == 34.40
    text = (out / "smsr.md").read_text()
    assert "| SMSR_s3 | 3 | Set5 | psnr | 34.400 | missing | missing |" in text
    assert "| SMSR_s2 | 2 | Set5 | psnr | 12.340 | 12.500 | +0.160 |" in text


def test_dasr_table_without_study_results(paper_inputs, tmp_path):
    out = tmp_path / "tables"
    paper_tables.build_tables(out, ["dasr"], paper_inputs)
    rows = pd.read_csv(out / "dasr.csv")
    assert len(rows) == 2                       # only the derived parameter counts; no made-up PSNR
    assert (rows["reproduced"] == rows["reported"]).all()   # the registry model matches the code's counts


def _esr_table(rows):
    return pd.DataFrame(rows, columns=["model", "family", "scale", "speed_AGX", "published_psnr_Set14",
                                       "published_psnr_Set5", "reproduced_psnr_Set14",
                                       "reproduced_psnr_Set5"]).assign(
        delta_Set14=lambda t: t.reproduced_psnr_Set14 - t.published_psnr_Set14,
        delta_Set5=lambda t: t.reproduced_psnr_Set5 - t.published_psnr_Set5)


def test_esr_front_comparison_verdicts():
    # fast/low (a), slow/high (b), c just below b: published front {a, b}
    same = _esr_table([["a", "F", 2, 100.0, 30.0, 30.0, 30.01, 30.0],
                       ["b", "F", 2, 10.0, 32.0, 32.0, 32.0, 32.0],
                       ["c", "F", 2, 9.0, 31.99, 31.99, 31.98, 31.99]])
    _, summary = esr_front.compare(same, "Set14", "x2")
    assert summary["verdict"] == "same" and summary["published_front"] == 2
    # c gains 0.03 dB and overtakes b (0.01 dB apart): explained
    small = same.copy()
    small.loc[2, "reproduced_psnr_Set14"] = 32.02
    small["delta_Set14"] = small.reproduced_psnr_Set14 - small.published_psnr_Set14
    rows, summary = esr_front.compare(small, "Set14", "x2")
    assert summary["verdict"] == "explained"
    assert {r["model"]: r["front"] for r in rows}["c"] == "reproduced only"
    # c gains 0.5 dB: unexplained
    big = same.copy()
    big.loc[2, "reproduced_psnr_Set14"] = 32.49
    big["delta_Set14"] = big.reproduced_psnr_Set14 - big.published_psnr_Set14
    _, summary = esr_front.compare(big, "Set14", "x2")
    assert summary["verdict"] == "unexplained" and summary["unexplained"] >= 1


RELEASED = REPO_ROOT / "reports" / "esr_released_eval.csv"


@pytest.mark.skipif(not RELEASED.is_file(), reason="reports/esr_released_eval.csv not generated yet (dvc repro)")
def test_released_esr_front_matches_published():
    """Acceptance: the suite's released-model front equals the published one up to < 0.05 dB deltas."""
    table = esr_front.load(RELEASED)
    assert len(table) == 1185
    _, summaries = esr_front.compare_all(table)
    bad = [s for s in summaries if s["verdict"] == "unexplained"]
    assert not bad, bad


def test_tabular_summary_from_curves(tmp_path):
    curves = tmp_path / "curves.csv"
    pd.DataFrame({"sampler": ["random"] * 4 + ["nsga2"] * 4, "seed": [0, 0, 1, 1] * 2,
                  "trials": [5, 10] * 4,
                  "hypervolume_ratio": [0.5, 0.8, 0.6, 0.9, 0.5, 0.99, 0.7, 0.98]}).to_csv(curves, index=False)
    assert tabular_summary.main([str(curves), "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["samplers"]["nsga2"]["mean"] == pytest.approx(0.985)
    assert summary["samplers"]["random"]["mean"] == pytest.approx(0.85)
    assert summary["nsga2_reaches_target"] and summary["nsga2_beats_random"]
    assert summary["samplers"]["nsga2"]["trials_to_target"] == 10
    assert summary["samplers"]["random"]["trials_to_target"] is None
    table = pd.read_csv(tmp_path / "ratio_by_trials.csv")
    assert table["trials"].tolist() == [5, 10] and table["random"].tolist() == [0.55, 0.85]


def test_tabular_summary_takes_the_budget_column_not_the_longest_run(tmp_path):
    """Runs continued past the budget: the acceptance figures are those at the budget."""
    curves = tmp_path / "curves.csv"
    pd.DataFrame({"sampler": ["random"] * 4 + ["nsga2"] * 4, "seed": [0, 0, 1, 1] * 2,
                  "trials": [5, 10] * 4, "budget": 5,
                  "hypervolume_ratio": [0.5, 0.8, 0.6, 0.9, 0.95, 0.99, 0.97, 0.98]}).to_csv(curves, index=False)
    summary = tabular_summary.summarise(pd.read_csv(curves))
    assert summary["trials"] == 5 and summary["horizon"] == 10
    assert summary["samplers"]["nsga2"]["mean"] == pytest.approx(0.96)
    assert not summary["nsga2_reaches_target"]  # 0.985 at 10 trials does not count
    assert summary["samplers"]["nsga2"]["trials_to_target"] == 10


def test_tabular_summary_checks_each_initial_design_against_random_with_the_same_start():
    curves = pd.DataFrame({"sampler": ["random", "nsga2", "random+random_start", "nsga2+random_start"],
                           "seed": 0, "trials": 5, "hypervolume_ratio": [0.90, 0.95, 0.97, 0.96]})
    summary = tabular_summary.summarise(curves)
    assert summary["nsga2_beats_random"] and not summary["nsga2_reaches_target"]
    assert not summary["nsga2+random_start_beats_random"]  # 0.96 < 0.97 with the same start
