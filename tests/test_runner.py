"""The Ray Tune + Optuna runner: failed trials, kill -9 and --resume, deterministic trials.

Ray is started once for the test session (num_cpus=2); studies use a 3-configuration space
(Bicubic and two tiny eSR-MAX models at x2), the smoke budget and Set5 only.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from search.paths import REPO_ROOT
from search.study import StudyOptions, TrialPipeline, TrialSettings, run_study, safe_trial

TINY_SPACE = """\
name: tiny
scales: [2]
fixed:
  budget: smoke
  test_sets: [Set5]
  objectives: [psnr_Set5:max, params:min]
families:
  Bicubic: {}
  eSR-MAX:
    hparams:
      K: [3]
      C: {low: 1, high: 2}
"""
TINY_IDS = {"Bicubic_s2", "eSR-MAX_s2_K3_C1", "eSR-MAX_s2_K3_C2"}
DIVERGING = "eSR-MAX_s2_K3_C2"
CRASHING = "eSR-MAX_s2_K3_C3"


def _real_profile_available() -> bool:
    import search.profile

    return hasattr(search.profile, "profile_model")


def params_only_profile(model, *, device):
    """Stand-in while search.profile.profile_model is not there: counts, no latency."""
    return {"params": sum(p.numel() for p in model.parameters()), "flops": 0,
            "latency_ms": 0.0, "latency_source": "stand-in"}


def diverging_train(model, budget, **kwargs):
    """The real trainer, except that one configuration 'diverges' like a NaN loss would."""
    from search.study.trial import _train
    from search.train import TrainingDiverged

    if model.model_id == DIVERGING:
        raise TrainingDiverged(f"{model.model_id}: loss is nan at step 3")
    return _train(model, budget, **kwargs)


def crashing_build(config):
    """The real builder, except that one configuration kills its Ray worker process."""
    from search.study.trial import _build

    if config["config_id"] == CRASHING:
        os._exit(3)
    return _build(config)


def pipeline(**steps) -> TrialPipeline:
    if not _real_profile_available():
        steps.setdefault("profile", params_only_profile)
    return TrialPipeline(**steps)


@pytest.fixture(scope="session")
def ray_address():
    """One local Ray instance for all runner tests; subprocess studies join it via --address."""
    import ray
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # stand-ins reach workers
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()


@pytest.fixture()
def tiny_space(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SPACE)
    return path


def read_rows(out_dir):
    with open(out_dir / "trials.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def optuna_trials(out_dir, name="tiny"):
    import optuna

    study = optuna.load_study(study_name=name, storage=f"sqlite:///{out_dir / 'optuna.db'}")
    return study.get_trials(deepcopy=False)


def test_failed_trials_are_recorded_and_the_study_goes_on(ray_address, tmp_path):
    from optuna.trial import TrialState

    space = tmp_path / "tiny4.yaml"
    space.write_text(TINY_SPACE.replace("high: 2", "high: 3"))
    out = tmp_path / "study"
    options = StudyOptions(space=str(space), out=str(out), sampler="grid", verbose=0)
    summary = run_study(options, pipeline=pipeline(train=diverging_train, build=crashing_build))
    rows = read_rows(out)
    assert {r["config_id"] for r in rows} == TINY_IDS | {CRASHING} and len(rows) == 4
    by_id = {r["config_id"]: r for r in rows}
    failed = by_id[DIVERGING]
    assert failed["status"] == "failed" and "TrainingDiverged" in failed["error"] and "nan" in failed["error"]
    assert failed["psnr_Set5"] == ""  # no made-up number for a failed trial
    crashed = by_id[CRASHING]  # the machine's failure, not the configuration's: retried on resume
    assert crashed["status"] == "infrastructure_failed" and "worker died" in crashed["error"]
    assert summary.completed == 2 and summary.failed == 1 and summary.to_retry == 1
    for config_id in TINY_IDS - {DIVERGING}:
        row = by_id[config_id]
        assert row["status"] == "complete", row
        assert 10 < float(row["psnr_Set5"]) < 45 and 0 < float(row["ssim_Set5"]) <= 1
        assert int(row["params"]) > 0 and row["latency_source"]
        if _real_profile_available():
            assert int(row["flops"]) > 0 and float(row["latency_ms"]) > 0
            assert row["latency_source"] == "measured:cpu"
    bicubic = by_id["Bicubic_s2"]
    assert float(bicubic["train_time_s"]) == 0 and bicubic["weights_path"] == ""
    trained = by_id["eSR-MAX_s2_K3_C1"]
    assert int(trained["steps"]) > 0 and not os.path.isabs(trained["weights_path"])
    assert os.path.isfile(out / trained["weights_path"])
    assert trained["K"] == "3" and trained["C"] == "1" and trained["model_id"] == "eSR-MAX_s2_K3_C1"

    trials = {t.user_attrs["trial"]: t for t in optuna_trials(out)}
    assert len(trials) == 4
    for row in rows:
        trial = trials[int(row["trial"])]
        assert trial.user_attrs["config_id"] == row["config_id"]
        if row["status"] == "complete":
            assert trial.state == TrialState.COMPLETE
            assert trial.values == pytest.approx([float(row["psnr_Set5"]), float(row["params"])])
        else:
            assert trial.state == TrialState.FAIL


def _interactive_signals() -> None:
    # A terminal user's Ctrl-C: a test suite started in the background (`cmd &` in a
    # non-interactive shell) runs with SIGINT ignored, which children inherit.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_cli(args, **kwargs):
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(REPO_ROOT))
    return subprocess.Popen([sys.executable, "-m", "search.run", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_interactive_signals, **kwargs)


def test_kill_9_then_resume_loses_and_repeats_nothing(ray_address, tiny_space, tmp_path):
    from optuna.trial import TrialState

    out = tmp_path / "study"
    args = [str(tiny_space), "--sampler", "grid", "--budget", "smoke", "--out", str(out),
            "--address", ray_address]
    first = _run_cli(args)
    deadline = time.time() + 150
    try:
        while time.time() < deadline and first.poll() is None:
            if (out / "trials.csv").is_file() and len(read_rows(out)) >= 1:
                break
            time.sleep(0.2)
        assert first.poll() is None, f"the study ended before it could be killed:\n{first.stdout.read()}"
        time.sleep(1.0)  # let the next trial start, so the kill interrupts one
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    before = read_rows(out)
    assert 1 <= len(before) < 3

    second = _run_cli(args + ["--resume"])
    output, _ = second.communicate(timeout=240)
    assert second.returncode == 0, output
    rows = read_rows(out)
    assert rows[: len(before)] == before  # finished trials kept as they were
    assert sorted(r["config_id"] for r in rows) == sorted(TINY_IDS)  # each exactly once
    assert len({r["trial"] for r in rows}) == len(rows)

    trials = optuna_trials(out)
    # RDB trial n is trials.csv trial n; a number without a row (the killed trial) is a FAIL placeholder
    assert [t.user_attrs.get("trial") for t in trials] == [t.number for t in trials]
    in_csv = {int(r["trial"]) for r in rows}
    assert in_csv <= {t.number for t in trials}
    assert all(t.state == TrialState.FAIL for t in trials if t.number not in in_csv)
    for trial in (t for t in trials if t.number in in_csv):
        row = next(r for r in rows if int(r["trial"]) == trial.user_attrs["trial"])
        assert trial.user_attrs["config_id"] == row["config_id"]
        expected = TrialState.COMPLETE if row["status"] == "complete" else TrialState.FAIL
        assert trial.state == expected
    assert int(json.loads((out / "study.json").read_text())["options"]["trials"]) == 3


DETERMINISM_SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from tests.test_runner import smoke_trial
print(json.dumps(smoke_trial({out!r})))
"""


def smoke_trial(out_dir: str) -> dict:
    import torch

    torch.set_num_threads(1)
    settings = TrialSettings(budget="smoke", train_sets=["T91"], test_sets=["Set5"],
                             objectives=["psnr_Set5"], out_dir=out_dir, seed=3)
    config = {"config_id": "eSR-TM_s2_K3_C2", "model_id": "eSR-TM_s2_K3_C2", "family": "eSR-TM",
              "scale": 2, "K": 3, "C": 2}
    row = safe_trial(config, settings, 0, TrialPipeline(profile=params_only_profile))
    assert row["status"] == "complete", row
    return {k: row[k] for k in ("psnr_Set5", "ssim_Set5", "final_loss", "steps", "params")}


def test_same_seed_same_smoke_metrics_also_in_a_second_process(tmp_path):
    first = smoke_trial(str(tmp_path / "a"))
    assert math.isfinite(first["psnr_Set5"]) and first["steps"] > 0
    script = DETERMINISM_SCRIPT.format(root=str(REPO_ROOT), out=str(tmp_path / "c"))
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == first


def test_fresh_study_refuses_an_existing_folder_and_resume_needs_one(tiny_space, tmp_path):
    from search.errors import UserError

    out = tmp_path / "study"
    out.mkdir()
    (out / "trials.csv").write_text("trial\n")
    with pytest.raises(UserError, match="already holds a study"):
        run_study(StudyOptions(space=str(tiny_space), out=str(out), sampler="grid", verbose=0))
    with pytest.raises(UserError, match="nothing to resume"):
        run_study(StudyOptions(space=str(tiny_space), out=str(tmp_path / "empty"), verbose=0), resume=True)


def test_rows_missing_from_the_optuna_storage_are_rebuilt_from_trials_csv(tmp_path):
    """A kill between the trials.csv row and the copy to SQLite: resume restores the trial."""
    import optuna

    from search.space import csv_value, load_space
    from search.study.optuna_store import frozen_from_row
    from search.study.runner import DefineByRun
    from search.study.samplers import configuration_of, make_sampler

    space = load_space(REPO_ROOT / "spaces" / "esr.yaml")
    define = DefineByRun(space)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler("random", 5))
    for number in range(12):  # random picks over families, incl. ESPCN's two sub-grids
        trial = study.ask()
        config = define(trial)["trial_config"]
        row = {k: str(csv_value(v)) for k, v in config.items()}
        row.update(trial=str(number), status="complete", psnr_Set14="30.5", latency_ms="2.25")
        rebuilt = frozen_from_row(row, space, define, ["psnr_Set14", "latency_ms"])
        # every gene, as the live trial; the configuration's own ones with its values (the
        # others, inert, at the first value of their domain)
        assert rebuilt.distributions == trial.distributions
        _, own = configuration_of(space, trial.params)
        assert {k: rebuilt.params[k] for k in own} == {k: trial.params[k] for k in own}
        assert configuration_of(space, rebuilt.params)[0] == configuration_of(space, trial.params)[0]
        assert rebuilt.values == [30.5, 2.25] and rebuilt.user_attrs["config_id"] == config["config_id"]
        study.tell(trial, [30.5, 2.25])
        rdb = optuna.create_study(directions=["maximize", "minimize"])
        rdb.add_trial(rebuilt)  # valid for Optuna


def test_nsga2_children_through_ray_tune_are_new_configurations(ray_address, tmp_path):
    """The runner's NSGA-II (search.study.samplers): after its first generation (8 trials),
    children are neighbours of the front that the study has not evaluated yet."""
    space = tmp_path / "tiny25.yaml"
    space.write_text(TINY_SPACE.replace("K: [3]", "K: [3, 5, 7]").replace("high: 2", "high: 8"))
    out = tmp_path / "study"
    run_study(StudyOptions(space=str(space), out=str(out), sampler="nsga2", trials=12, seed=2, verbose=0),
              pipeline=pipeline())
    rows = sorted(read_rows(out), key=lambda r: int(r["trial"]))
    # the random first generation may propose a completed configuration again: a repeat row,
    # not trained, and not counted among the 12
    trained = [r for r in rows if r["status"] != "repeat"]
    assert len(trained) == 12 and all(r["status"] == "complete" for r in trained)
    assert len({r["config_id"] for r in trained}) == 12
    generation = {t.user_attrs["trial"]: next((v for k, v in t.system_attrs.items() if k.endswith(":generation")), None)
                  for t in optuna_trials(out)}
    children = [i for i, r in enumerate(rows) if (generation[int(r["trial"])] or 0) >= 1]
    assert len(children) >= 3
    for i in children:
        assert rows[i]["config_id"] not in {r["config_id"] for r in rows[:i]}


def test_smallest_initial_design_runs_each_familys_smallest_configuration_first(ray_address, tmp_path):
    space = tmp_path / "tiny9.yaml"
    space.write_text(TINY_SPACE.replace("high: 2", "high: 8"))
    out = tmp_path / "study"
    options = StudyOptions(space=str(space), out=str(out), sampler="random", trials=8, seed=1,
                           initial_design="smallest", verbose=0)
    run_study(options, pipeline=pipeline())
    rows = sorted(read_rows(out), key=lambda r: int(r["trial"]))
    # a quarter of the 8 trials: both anchors first, then the sampler (whose proposals of
    # completed configurations are repeat rows, not trained and not counted)
    trained = [r for r in rows if r["status"] != "repeat"]
    assert [r["config_id"] for r in rows[:2]] == ["Bicubic_s2", "eSR-MAX_s2_K3_C1"] and len(trained) == 8
    assert len({r["config_id"] for r in trained}) == 8
    assert json.loads((out / "study.json").read_text())["options"]["initial_design"] == "smallest"
