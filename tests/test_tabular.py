"""Tabular benchmark (search.study.tabular.run_tabular): sane summary, seeded determinism."""

import json

import pandas as pd
import pytest

from search.paths import REPO_ROOT
from search.space import load_space
from search.study.tabular import run_tabular

OBJECTIVES = "psnr_Set14:max,speed_AGX:max"


@pytest.fixture(scope="module")
def esr_space():
    return load_space(REPO_ROOT / "spaces" / "esr.yaml")


@pytest.mark.parametrize("sampler", ["random", "nsga2"])
def test_tabular_run_writes_sane_summary_and_is_deterministic(esr_space, tmp_path, sampler):
    first = run_tabular(esr_space, OBJECTIVES, sampler=sampler, trials=24, seed=3, out_dir=tmp_path / "a")
    written = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert written["hypervolume"] == pytest.approx(first["hypervolume"])
    assert written["trials"] == 24
    assert 0.0 < written["hypervolume"] <= written["grid_hypervolume"]
    assert 0.0 < written["hypervolume_ratio"] <= 1.0 + 1e-12
    assert written["hypervolume_ratio"] == pytest.approx(written["hypervolume"] / written["grid_hypervolume"])
    trials = pd.read_csv(tmp_path / "a" / "trials.csv")
    assert len(trials) == 24
    published = pd.read_csv(REPO_ROOT / "published" / "esr_tests.csv").set_index("model")
    # every trial's objective values are the table's values of its configuration
    for _, row in trials.head(5).iterrows():
        assert row["psnr_Set14"] == pytest.approx(published.loc[row["model_id"], "psnr_Set14"])
        assert row["speed_AGX"] == pytest.approx(published.loc[row["model_id"], "speed_AGX"])
    again = run_tabular(esr_space, OBJECTIVES, sampler=sampler, trials=24, seed=3, out_dir=tmp_path / "b")
    assert again["hypervolume"] == first["hypervolume"]
    assert (tmp_path / "a" / "trials.csv").read_text() == (tmp_path / "b" / "trials.csv").read_text()


def test_grid_hypervolume_is_that_of_the_whole_table(esr_space):
    """The denominator of the ratio, recomputed from the table without any sampler."""
    from search.study.pareto import hypervolume, normalise

    summary = run_tabular(esr_space, OBJECTIVES, sampler="random", trials=5, seed=0)
    table = pd.read_csv(REPO_ROOT / "published" / "esr_tests.csv").set_index("model")
    ids = [c["config_id"] for c in esr_space.enumerate()]
    points, _ = normalise(table.loc[ids, ["psnr_Set14", "speed_AGX"]].to_numpy(float), ["max", "max"])
    assert summary["grid_hypervolume"] == pytest.approx(hypervolume(points, 1.1))
    assert summary["grid_size"] == len(ids) == 1185


def test_smallest_initial_design_comes_first_then_the_sampler(esr_space):
    anchors = [c["config_id"] for c in esr_space.smallest_configurations()]
    assert len(anchors) == 21  # 7 families x 3 scales
    assert "eSR-MAX_s4_K3_C1" in anchors and "eSR-CNN_s2_C2_D1_S3" in anchors and "ESPCN_s3_D0_S3" in anchors
    # scale by scale, so a design cut short still has every family
    assert [a.split("_")[0] for a in anchors[:7]] == list(esr_space.families)
    summary = run_tabular(esr_space, OBJECTIVES, sampler="nsga2", trials=90, seed=0,
                          initial_design="smallest", keep_rows=True)
    ids = [r["model_id"] for r in summary["rows"]]
    assert ids[:21] == anchors and len(set(ids)) == 90 and summary["initial_design"] == "smallest"
    assert ids[21] not in anchors
    # at most a quarter of the trials (as SMAC caps its initial design)
    short = run_tabular(esr_space, OBJECTIVES, sampler="nsga2", trials=30, seed=0, keep_rows=True)
    short_ids = [r["model_id"] for r in short["rows"]]
    assert short_ids[:7] == anchors[:7] and not set(short_ids[7:]) >= set(anchors[7:])
    plain = run_tabular(esr_space, OBJECTIVES, sampler="nsga2", trials=30, seed=0, keep_rows=True,
                        initial_design="random")
    assert [r["model_id"] for r in plain["rows"]][:7] != anchors[:7]


def test_unknown_initial_design_is_a_user_error(esr_space):
    from search.errors import UserError

    with pytest.raises(UserError, match="unknown initial design 'corners'"):
        run_tabular(esr_space, OBJECTIVES, sampler="random", trials=5, initial_design="corners")


@pytest.mark.parametrize("sampler", ["grid", "tpe", "nsga2"])
def test_a_longer_run_begins_with_the_shorter_run(esr_space, sampler):
    """The benchmark reads the budget's ratio off runs continued to a horizon: that is only
    the budget's run if no sampler looks at the number of trials it was given. (The initial
    design does: a quarter of the trials at most, so both runs here hold all 21 anchors, as
    the benchmark's 118-trial budget and its horizon do.)"""
    short = run_tabular(esr_space, OBJECTIVES, sampler=sampler, trials=90, seed=4, keep_rows=True,
                        progress_every=[90])
    long = run_tabular(esr_space, OBJECTIVES, sampler=sampler, trials=110, seed=4, keep_rows=True,
                       progress_every=[90])
    assert [r["model_id"] for r in long["rows"][:90]] == [r["model_id"] for r in short["rows"]]
    assert long["ratio_by_trials"]["90"] == short["hypervolume_ratio"]
