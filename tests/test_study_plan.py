"""The plan search.run prints before its first trial, and the clean-up of interrupted trials'
folders (search/study/runner.py). Expected text comes from the space file and budgets."""

from __future__ import annotations

from pathlib import Path

from search.profile.devices import get_device
from search.space import load_space
from search.study.runner import (
    StudyOptions,
    TrialsCsv,
    format_duration,
    remove_unfinished_trial_folders,
    study_plan,
)
from search.study.trial import TrialSettings
from search.train import get_budget


def test_format_duration():
    assert format_duration(45) == "45 s"
    assert format_duration(600) == "10 min"
    assert format_duration(3 * 3600) == "3.0 h"


def test_plan_names_space_budget_trials_device_and_resume(tmp_path):
    space = load_space("spaces/esr_retrain.yaml").with_scales([3])
    options = StudyOptions(space="spaces/esr_retrain.yaml", out=str(tmp_path / "s"), sampler="nsga2",
                           initial_design="smallest", device="cpu")
    settings = TrialSettings(budget=get_budget("quick"), train_sets=["T91"], test_sets=["Set14"],
                             objectives=["psnr_Set14"], out_dir=str(tmp_path / "s"), device=get_device("cpu"))
    table = TrialsCsv(tmp_path / "s" / "trials.csv", ["trial", "config_id", "status", "trial_time_s"])
    text = study_plan(space, options, settings, concurrency=1, remaining=10, total=12, table=table,
                      latency_kind="measured")
    # 3 one-layer families x K (3) x C (1..16) + Bicubic, at x3 only
    assert "145 configurations at x3, 4 families" in text
    assert "nsga2 (seed 0), after the initial design 'smallest'" in text
    assert "quick: Bicubic not trained; eSR-MAX, eSR-TM, eSR-TR 1000 steps of single pixels" in text
    assert "10 to run, 12 in all; 1 at a time" in text and "cpu: latency measured" in text
    assert f"--out {tmp_path / 's'} --resume" in text and "optuna-dashboard sqlite:///" in text
    assert "SMOKE" not in text


def test_plan_estimates_from_finished_trials(tmp_path):
    space = load_space("spaces/esr_retrain.yaml")
    options = StudyOptions(space="spaces/esr_retrain.yaml", out=str(tmp_path), sampler="tpe", device="cpu")
    settings = TrialSettings(budget=get_budget("smoke"), train_sets=["T91"], test_sets=["Set14"],
                             objectives=["psnr_Set14"], out_dir=str(tmp_path), device=get_device("cpu"))
    table = TrialsCsv(tmp_path / "trials.csv", ["trial", "config_id", "status", "trial_time_s"])
    # "2e1" is 20 s; an empty, NaN or negative time (a hand-edited or damaged row) is left out
    for number, seconds in enumerate(("2e1", "40.0", "", "nan", "-5")):
        table.append({"trial": number, "config_id": f"c{number}", "status": "complete", "trial_time_s": seconds})
    text = study_plan(space, options, settings, concurrency=2, remaining=4, total=6, table=table,
                      latency_kind="predicted")
    assert "~60 s (this study's 2 finished trials took 30 s each, 2 at a time)" in text  # 30 s x 4 / 2
    assert "SMOKE" in text and "cpu: latency predicted" in text


def test_unfinished_trial_folders_are_removed(tmp_path):
    trials = tmp_path / "trials"
    for name in ("00000_a", "00001_b", "00002_c"):
        (trials / name).mkdir(parents=True)
        (trials / name / "weights.pt").write_bytes(b"x")
    rows = [{"trial": "0", "config_id": "a", "status": "complete"}, {"trial": "2", "config_id": "c", "status": "failed"}]
    messages = []
    remove_unfinished_trial_folders(Path(tmp_path), rows, messages.append)
    assert sorted(p.name for p in trials.iterdir()) == ["00000_a", "00002_c"]
    assert "00001_b" in messages[0]
