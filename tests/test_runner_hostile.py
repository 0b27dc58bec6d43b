"""The runner against what a hostile or unlucky user does (the reliability probe of issue 15):
two drivers on one folder, resumes that must continue rather than repeat, machine faults,
changed settings on --resume, unreachable clusters, bad storage and study files, signals.

Ray is shared with tests/test_runner.py (its session fixture); trials use a stand-in trainer
(a few milliseconds) unless the real one matters.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from search.errors import UserError
from search.paths import REPO_ROOT
from search.study import StudyOptions, run_study
from search.profile.cluster import check_cluster_reachable
from search.study.runner import continued_seed, lock_study_folder
from test_runner import TINY_SPACE, _run_cli, optuna_trials, pipeline, read_rows
from test_runner import ray_address as shared_ray  # noqa: F401  (one Ray instance per session)

WIDE_SPACE = TINY_SPACE.replace("K: [3]", "K: [3, 5, 7]").replace("high: 2", "high: 8")  # 25 configurations
FULL_DISK_ID = "eSR-MAX_s2_K3_C2"


def instant_train(model, budget, **kwargs):
    """No training: the trial's other steps are real (evaluation, profiling)."""
    return {"train_time_s": 0.0, "steps": 1, "final_loss": 0.1, "weights_path": None}


def full_disk_train(model, budget, **kwargs):
    if model.model_id == FULL_DISK_ID:
        raise OSError(errno.ENOSPC, "No space left on device", "weights.pt")
    return instant_train(model, budget, **kwargs)


@pytest.fixture()
def ray_address(shared_ray):  # noqa: F811 (the fixture is used through this name)
    """The session's Ray instance, with this module's stand-ins shipped to its workers."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return shared_ray


@pytest.fixture()
def wide_space(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_text(WIDE_SPACE)
    return path


def options(space, out, **kwargs) -> StudyOptions:
    return StudyOptions(space=str(space), out=str(out), verbose=0, **kwargs)


def trained_rows(out):
    return [r for r in read_rows(out) if r["status"] != "repeat"]


def test_a_second_driver_on_the_same_study_folder_is_refused(tiny_space_file, tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    held = lock_study_folder(out)
    try:
        with pytest.raises(UserError, match=f"in use by another search.run \\(pid {os.getpid()}\\)"):
            run_study(options(tiny_space_file, out, sampler="grid"))
        assert not (out / "study.json").exists()  # refused before writing anything
    finally:
        held.close()
    lock_study_folder(out).close()  # released: the next driver may take it


def test_a_resumed_sampler_continues_instead_of_redrawing_the_same_configurations(ray_address, wide_space, tmp_path):
    """Probe: --sampler random --seed 3, killed after each row and resumed, drew the same
    configuration five times. Here each run finishes one more trial, then the study resumes."""
    out = tmp_path / "study"
    for trials in range(1, 7):
        run_study(options(wide_space, out, sampler="random", seed=3, trials=trials, initial_design="random"),
                  resume=trials > 1, pipeline=pipeline(train=instant_train))
    rows = trained_rows(out)
    assert len(rows) == 6
    assert len({r["config_id"] for r in rows}) == 6  # no finished configuration trained again
    repeats = [r for r in read_rows(out) if r["status"] == "repeat"]
    assert all(r["error"].startswith("repeat of trial") for r in repeats)


def test_the_continued_seed_is_the_seed_for_a_fresh_study_and_differs_after_a_resume():
    assert continued_seed(3, 0) == 3
    later = [continued_seed(3, n) for n in range(1, 6)]
    assert len(set(later)) == 5 and 3 not in later
    assert later == [continued_seed(3, n) for n in range(1, 6)]  # reproducible
    assert all(0 <= s < 2**32 for s in later)


def test_a_full_disk_is_the_machines_failure_and_resume_runs_the_trial_again(ray_address, tiny_space_file, tmp_path):
    out = tmp_path / "study"
    summary = run_study(options(tiny_space_file, out, sampler="grid"), pipeline=pipeline(train=full_disk_train))
    by_id = {r["config_id"]: r for r in read_rows(out)}
    assert by_id[FULL_DISK_ID]["status"] == "infrastructure_failed" and "No space left" in by_id[FULL_DISK_ID]["error"]
    assert summary.to_retry == 1 and summary.completed == 2
    # space freed: the resume trains it, instead of saying every trial finished
    summary = run_study(options(tiny_space_file, out), resume=True, pipeline=pipeline(train=instant_train))
    statuses = [(r["config_id"], r["status"]) for r in read_rows(out)]
    assert (FULL_DISK_ID, "complete") in statuses and summary.completed == 3


@pytest.mark.parametrize("change, message", [
    ({"seed": 5}, "--seed 5 differs from the study's 0"),
    ({"sampler": "tpe"}, "--sampler tpe differs from the study's grid"),
    ({"budget": "quick"}, "--budget quick differs"),
    ({"objectives": "psnr_Set5:max"}, "--objectives psnr_Set5:max differs"),
    ({"device": "jetson"}, "--device jetson differs"),
])
def test_resume_refuses_settings_that_would_change_the_study(tiny_space_file, tmp_path, change, message):
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({
        "options": {"space": str(tiny_space_file), "out": str(out), "sampler": "grid", "seed": 0,
                    "budget": None, "device": "cpu", "initial_design": "smallest", "trials": 3},
        "space_sha256": "x", "study_name": "tiny", "storage": "sqlite:///x"}))
    with pytest.raises(UserError, match=message.replace("(", "\\(")):
        run_study(options(tiny_space_file, out, **change), resume=True)


def test_resume_refuses_another_space_file(tiny_space_file, wide_space, tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({
        "options": {"space": str(tiny_space_file), "out": str(out), "sampler": "grid"},
        "space_sha256": "x", "study_name": "tiny", "storage": "sqlite:///x"}))
    with pytest.raises(UserError, match="SPACE .* differs from the study's"):
        run_study(options(wide_space, out), resume=True)


def test_an_unreachable_cluster_is_refused_at_once_and_leaves_no_folder(tiny_space_file, tmp_path):
    started = time.monotonic()
    with pytest.raises(UserError, match="no Ray cluster answers there"):
        check_cluster_reachable("127.0.0.1:1")
    out = tmp_path / "study"
    with pytest.raises(UserError, match="127.0.0.1:1"):
        run_study(options(tiny_space_file, out, sampler="grid", address="127.0.0.1:1"))
    assert time.monotonic() - started < 20 and not out.exists()
    with pytest.raises(UserError, match="HOST:PORT"):
        check_cluster_reachable("nonsense")


def test_storage_that_is_a_folder_garbage_or_has_a_password(tiny_space_file, tmp_path):
    folder = tmp_path / "db_folder"
    folder.mkdir()
    with pytest.raises(UserError, match="is a folder"):
        run_study(options(tiny_space_file, tmp_path / "a", sampler="grid", storage=f"sqlite:///{folder}"))
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(UserError, match="garbage.db"):
        run_study(options(tiny_space_file, tmp_path / "b", sampler="grid", storage=f"sqlite:///{garbage}"))
    with pytest.raises(UserError) as error:
        run_study(options(tiny_space_file, tmp_path / "c", sampler="grid",
                          storage="postgresql://alice:s3cret-pw@127.0.0.1:1/optuna"))
    assert "s3cret-pw" not in str(error.value) and "alice:***@" in str(error.value)
    # refused starts leave no study folder behind
    assert not any((tmp_path / name).exists() for name in ("a", "b", "c"))


def test_out_that_is_a_file_and_a_seed_out_of_range(tiny_space_file, tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        run_study(options(tiny_space_file, a_file, sampler="grid"))
    out = tmp_path / "study"
    with pytest.raises(UserError, match="seed 99999999999999999999999: must be between 0 and"):
        run_study(options(tiny_space_file, out, sampler="grid", seed=99999999999999999999999))
    assert not out.exists()


@pytest.mark.parametrize("text", ["{not json", json.dumps({"options": {"nonsense": 1}, "space_sha256": "x"}),
                                  json.dumps({"space_sha256": "x"}), json.dumps([1, 2])])
def test_a_malformed_study_manifest_is_one_line(tiny_space_file, tmp_path, text):
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(text)
    with pytest.raises(UserError, match="unreadable study manifest"):
        run_study(options(tiny_space_file, out), resume=True)


def test_a_garbage_trials_csv_row_is_refused_not_counted(ray_address, tiny_space_file, tmp_path):
    out = tmp_path / "study"
    run_study(options(tiny_space_file, out, sampler="grid", trials=1), pipeline=pipeline(train=instant_train))
    lines = (out / "trials.csv").read_text().splitlines()
    cells = lines[1].split(",")
    cells[0], cells[3] = "7", "NoSuchFamily"  # trial, family
    (out / "trials.csv").write_text("\n".join([*lines, ",".join(cells)]) + "\n")
    with pytest.raises(UserError, match="line 3: family 'NoSuchFamily' is not in the space"):
        run_study(options(tiny_space_file, out, trials=3), resume=True)


@pytest.mark.parametrize("args, message", [
    (["--out", "{tmp}"], "is a folder"),
    (["--out", "{tmp}/missing/configs.csv"], "cannot write"),
])
def test_dry_run_output_errors_are_one_line(tmp_path, args, message):
    args = [a.format(tmp=tmp_path) for a in args]
    proc = subprocess.run([sys.executable, "-m", "search.run", "spaces/esr.yaml", "--dry-run", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("sent, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_and_terminate_stop_cleanly_and_say_how_to_resume(ray_address, tmp_path, sent, code):
    # 16 configurations: after the first row, the signal always lands while trials remain
    # (with the tiny space's 3, a fast machine could finish the study before it arrives)
    space = tmp_path / "sixteen.yaml"
    space.write_text(TINY_SPACE.replace("high: 2", "high: 15"))
    out = tmp_path / "study"
    proc = _run_cli([str(space), "--sampler", "grid", "--budget", "smoke", "--out", str(out),
                     "--address", ray_address])
    deadline = time.time() + 150
    try:
        while time.time() < deadline and proc.poll() is None:
            if (out / "trials.csv").is_file() and len(read_rows(out)) >= 1:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read()
        proc.send_signal(sent)
        output, _ = proc.communicate(timeout=180)  # Ray shuts down its workers first
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, output
    assert "--resume" in output and "Traceback" not in output
    assert "SIGSEGV" not in output and "stack trace" not in output.lower()
    if sent != signal.SIGINT:
        return
    # --resume finishes two more trials: none lost or repeated, one numbering everywhere
    before = read_rows(out)
    resumed = _run_cli([str(space), "--resume", "--out", str(out), "--trials", str(len(before) + 2),
                        "--address", ray_address])
    output, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, output
    rows = read_rows(out)
    assert rows[: len(before)] == before
    assert len(rows) == len(before) + 2
    assert len({r["config_id"] for r in rows}) == len(rows)
    trials = optuna_trials(out)
    assert [t.user_attrs.get("trial") for t in trials] == [t.number for t in trials]
    by_number = {t.number: t for t in trials}
    for row in rows:
        assert by_number[int(row["trial"])].user_attrs["config_id"] == row["config_id"]
    in_csv = {int(r["trial"]) for r in rows}
    for trial in trials:  # a number without a row: a trial the interrupt stopped
        if trial.number not in in_csv:
            assert trial.state.name == "FAIL"
    folders = sorted(p.name for p in (out / "trials").iterdir())
    assert folders == sorted(f"{int(r['trial']):05d}_{r['config_id']}" for r in rows)


@pytest.fixture()
def tiny_space_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SPACE)
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_the_documented_multi_node_recipe_measures_on_the_device_node(tiny_space_file, tmp_path):
    """README/docs/profiling.md: `ray start --head`, a node started with the device's resource,
    then `search.run --address HEAD --device jetson`; every node and the driver under Ray
    2.60's token authentication (RAY_AUTH_MODE=token; the suite's drivers set it themselves)."""
    port = _free_port()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token")
    env.pop("RAY_ADDRESS", None)
    ray_cli = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--num-cpus", "1"]
    head = subprocess.Popen([*ray_cli, "--head", "--port", str(port), "--include-dashboard", "false"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes = [head]
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                check_cluster_reachable(f"127.0.0.1:{port}", timeout_s=1)
                break
            except UserError:
                time.sleep(0.5)
        nodes.append(subprocess.Popen([*ray_cli, "--address", f"127.0.0.1:{port}", "--resources", '{"jetson": 1}'],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(8)  # the node registers its resource with the head
        out = tmp_path / "study"
        driver_env = {k: v for k, v in env.items() if k != "RAY_AUTH_MODE"}  # the driver sets it itself
        proc = subprocess.run([sys.executable, "-m", "search.run", str(tiny_space_file), "--sampler", "grid",
                               "--trials", "1", "--device", "jetson", "--address", f"127.0.0.1:{port}",
                               "--out", str(out)], cwd=REPO_ROOT, env=driver_env, capture_output=True,
                              text=True, timeout=240)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        rows = read_rows(out)
        assert len(rows) == 1 and rows[0]["latency_source"] == "measured:jetson"
    finally:
        for node in reversed(nodes):  # SIGTERM: a --block node stops its own processes
            node.terminate()
        for node in nodes:
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                node.kill()


def test_a_fresh_study_seeds_its_sampler_with_the_seed_itself(ray_address, wide_space, tmp_path, monkeypatch):
    """Enqueued initial-design anchors are not finished trials: they must not shift the seed."""
    import search.study.runner as runner

    seeds = []
    real = runner.make_sampler
    monkeypatch.setattr(runner, "make_sampler", lambda name, seed, space=None: seeds.append(seed) or real(name, seed, space))
    out = tmp_path / "study"
    run_study(options(wide_space, out, sampler="random", seed=3, trials=8, initial_design="smallest"),
              pipeline=pipeline(train=instant_train))
    assert seeds[0] == 3
    before, held = len(seeds), len(read_rows(out))  # every row is a finished Optuna trial
    run_study(options(wide_space, out, trials=9), resume=True, pipeline=pipeline(train=instant_train))
    assert seeds[before] == continued_seed(3, held) != 3
