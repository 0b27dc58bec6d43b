"""`search.run SPACE` without --out: a new runs/<space name>-<date>-<time> folder; --resume
without --out continues the latest one of that space."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time

import pytest

from search.errors import UserError
from search.run import latest_run, new_run_folder

from test_runner import TINY_SPACE


@pytest.fixture()
def space(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SPACE)
    return str(path)


def test_new_run_folder_is_named_after_space_and_time_and_never_reused(space, tmp_path):
    now = time.mktime((2026, 12, 3, 15, 4, 5, 0, 0, -1))
    first = new_run_folder(space, now)
    assert str(first) == "runs/tiny-20261203-150405"
    first.mkdir(parents=True)
    assert str(new_run_folder(space, now)) == "runs/tiny-20261203-150405-2"


def test_latest_run_is_the_newest_study_of_that_space(space, tmp_path):
    with pytest.raises(UserError, match="no study of space 'tiny' under runs/"):
        latest_run(space)
    for folder, started in (("tiny-a", "2026-12-03T10:00:00Z"), ("tiny-b", "2026-12-03T12:00:00Z"),
                            ("other-c", "2026-12-03T13:00:00Z")):
        (tmp_path / "runs" / folder).mkdir(parents=True)
        (tmp_path / "runs" / folder / "study.json").write_text(json.dumps({"started": started}))
    (tmp_path / "runs" / "tiny-empty").mkdir()  # no study.json: not a study
    assert latest_run(space).name == "tiny-b"


@pytest.mark.slow
def test_run_without_out_then_resume_without_out(space, tmp_path):
    def run(*extra):
        return subprocess.run([sys.executable, "-m", "search.run", space, "--device", "cpu", "--sampler", "grid",
                               "--quiet", *extra], cwd=tmp_path, capture_output=True, text=True, timeout=600)

    done = run("--trials", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    folders = list((tmp_path / "runs").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("tiny-")
    assert f"study folder: runs/{folders[0].name}" in done.stdout
    again = run("--trials", "2", "--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    assert list((tmp_path / "runs").iterdir()) == folders  # the same study, continued
    with open(folders[0] / "trials.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["trial"] for r in rows] == ["0", "1"] and all(r["status"] == "complete" for r in rows)
