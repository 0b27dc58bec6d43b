"""The NAS-Bench-style tabular benchmark over the published eSR results."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from search.paths import REPO_ROOT
from search.space import load_space
from search.study.tabular import run_tabular

SPACE = REPO_ROOT / "spaces" / "esr.yaml"
OBJECTIVES = "psnr_Set14:max,speed_AGX:max"


@pytest.fixture(scope="module")
def space():
    return load_space(SPACE)


def test_cli_writes_trials_and_summary(tmp_path):
    out = tmp_path / "nsga2"
    result = subprocess.run(
        [sys.executable, "-m", "search.run", str(SPACE), "--benchmark", "published",
         "--objectives", OBJECTIVES, "--sampler", "nsga2", "--trials", "40", "--seed", "0",
         "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == summary["trials"] == 40
    assert trials["model_id"].is_unique  # duplicates are not evaluated twice
    assert 0 < summary["hypervolume"] < summary["grid_hypervolume"]
    assert summary["hypervolume_ratio"] == pytest.approx(summary["hypervolume"] / summary["grid_hypervolume"])
    # values are the table's, looked up by id
    table = pd.read_csv(REPO_ROOT / "published" / "esr_tests.csv").set_index("model")
    row = trials.iloc[0]
    assert row["psnr_Set14"] == pytest.approx(table.loc[row["model_id"], "psnr_Set14"])
    # every trial on the reported front is non-dominated among the trials
    assert set(summary["front"]) == set(trials.loc[trials.on_front, "model_id"])


def test_full_grid_reaches_ratio_one(space):
    summary = run_tabular(space, OBJECTIVES, sampler="grid", trials=5000, seed=3)
    assert summary["trials"] == 1185
    assert summary["hypervolume_ratio"] == pytest.approx(1.0)
    assert sorted(summary["front"]) == sorted(summary["grid_front"])


@pytest.mark.parametrize("sampler", ["random", "tpe", "nsga2", "grid"])
def test_same_seed_same_trials(space, sampler):
    first = run_tabular(space, OBJECTIVES, sampler=sampler, trials=30, seed=7)
    second = run_tabular(space, OBJECTIVES, sampler=sampler, trials=30, seed=7)
    other = run_tabular(space, OBJECTIVES, sampler=sampler, trials=30, seed=8)
    assert first["front"] == second["front"]
    assert first["hypervolume"] == second["hypervolume"]
    assert first["hypervolume"] != other["hypervolume"] or first["front"] != other["front"]


def test_same_seed_in_another_process(space, tmp_path):
    here = run_tabular(space, OBJECTIVES, sampler="nsga2", trials=30, seed=11, out_dir=tmp_path / "a")
    subprocess.run([sys.executable, "-c",
                    "from search.space import load_space; from search.study.tabular import run_tabular;"
                    f"run_tabular(load_space({str(SPACE)!r}), {OBJECTIVES!r}, sampler='nsga2', trials=30,"
                    f" seed=11, out_dir={str(tmp_path / 'b')!r})"], check=True, timeout=120)
    there = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert there["hypervolume"] == here["hypervolume"]
    assert (tmp_path / "a" / "trials.csv").read_text() == (tmp_path / "b" / "trials.csv").read_text()


@pytest.mark.parametrize("objectives, message", [
    ("psnr_Set14:max,nope:max", "not a column"),
    ("psnr_Set14", "needs a direction"),
])
def test_bad_objectives_exit_2(objectives, message):
    result = subprocess.run(
        [sys.executable, "-m", "search.run", str(SPACE), "--benchmark", "published",
         "--objectives", objectives, "--trials", "5"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
