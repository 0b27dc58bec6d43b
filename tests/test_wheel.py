"""The package works installed as a wheel, away from the repository.

Builds the wheel from a copy of the repository (nothing is written into the checkout),
installs it into a fresh virtual environment (the heavy dependencies, torch, Ray, Optuna,
come from this interpreter's site-packages through a ``.pth`` line, not reinstalled), then,
from an empty folder without ``SR_DATA_ROOT``, runs a dry run of a shipped space by name, one
smoke trial and one evaluation: budgets, device profiles, spaces, published tables and the
Set5/Set14/T91 images must come from the wheel (``search/_resources``, see setup.py).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from search.paths import REPO_ROOT

SMALL_SPACE = """\
name: tiny
scales: [2]
fixed:
  budget: quick
  train_sets: [T91]
  test_sets: [Set5]
  objectives: [psnr_Set5:max, latency_ms:min]
families:
  eSR-MAX:
    hparams:
      K: [3]
      C: [1]
"""
MAX_WHEEL_BYTES = 40 * 2**20  # the images of Set5, Set14 and T91 are ~15 MiB


# What the run-time lookups (search.paths.resource) read: written here, not taken from setup.py,
# so that a file dropped from setup.py's list fails this test.
PACKED_RESOURCES = ("params.yaml", "devices", "spaces", "published", "data/Set5", "data/Set14", "data/T91")


def _run(cmd, *, cwd, env=None, timeout=300) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (f"{' '.join(map(str, cmd))} -> exit {proc.returncode}\n"
                                  f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the files a build reads (the checkout stays untouched)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "search", *PACKED_RESOURCES):
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, source / name, ignore=skip)
        else:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO_ROOT / name, source / name)
    dist = base / "dist"
    # --no-build-isolation: setuptools from this environment, nothing downloaded
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--disable-pip-version-check", "-q", "-w", dist, source], cwd=base)
    (path,) = dist.glob("sr_search-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed; its python."""
    root = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", root], cwd=root.parent)
    python = root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          "--disable-pip-version-check", "-q", wheel], cwd=root.parent)
    # Only now (so pip saw no other sr-search): this interpreter's packages, appended after the
    # venv's own. A plain path line: the .pth files there (the editable install's) are not run.
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd=root.parent).stdout.strip()
    Path(site, "_host_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.fixture()
def empty(tmp_path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def _env(python: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SR_DATA_ROOT", "SR_DEVICES_DIR", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "RAY_ADDRESS")}
    env["PATH"] = os.pathsep.join([str(python.parent), env.get("PATH", "")])
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


def test_wheel_holds_the_run_time_files_and_nothing_outside(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    packed = {n.removeprefix("search/_resources/") for n in names if n.startswith("search/_resources/")}
    for name in PACKED_RESOURCES:
        source = REPO_ROOT / name
        expected = ({str(p.relative_to(REPO_ROOT)) for p in source.rglob("*") if p.is_file()
                     and "__pycache__" not in p.parts} if source.is_dir() else {name})
        assert expected and expected <= packed, f"{name}: missing from the wheel: {sorted(expected - packed)[:5]}"
    assert "search/profile/predictors/jetson.json" in names
    assert not [n for n in packed if n.startswith("data/") and n.split("/")[1] not in ("Set5", "Set14", "T91")]
    assert not [n for n in names if n.split("/")[0] not in ("search",) and ".dist-info/" not in n]
    assert wheel.stat().st_size < MAX_WHEEL_BYTES


@pytest.mark.slow
def test_installed_wheel_runs_from_an_empty_folder(venv, empty):
    env = _env(venv)
    where = _run([venv, "-c", "import search, search.paths as p; print(search.__file__); "
                  "print(p.IN_CHECKOUT); print(p.RESOURCE_ROOT)"], cwd=empty, env=env).stdout.split("\n")
    venv_root = venv.parent.parent
    assert Path(where[0]).is_relative_to(venv_root), f"imported {where[0]}, not the wheel"
    assert where[1] == "False" and Path(where[2]).is_relative_to(venv_root)

    # a shipped space by its repository path (not a file here) and by its name
    configs = empty / "configs.csv"
    _run([venv, "-m", "search.run", "spaces/esr.yaml", "--dry-run", "--scales", "2", "--out", configs],
         cwd=empty, env=env)
    with configs.open(newline="") as handle:
        assert sum(1 for _ in csv.DictReader(handle)) > 100
    listed = _run([venv, "-m", "search.run", "imdn", "--dry-run"], cwd=empty, env=env)
    assert "IMDN" in listed.stdout
    # a published table, read through the package (IMDN x2 Set5 is 38.00 dB in the paper)
    published = _run([venv, "-c", "import csv, search.paths as p; rows = csv.DictReader(open(p.PUBLISHED_DIR / "
                      "'imdn_reported.csv')); print([r['set5_psnr'] for r in rows if r['scale'] == '2'][0])"],
                     cwd=empty, env=env)
    assert float(published.stdout.strip()) == 38.0

    # one smoke trial: params.yaml's smoke budget, devices/cpu.yaml, T91 to train, Set5 to test
    (empty / "tiny.yaml").write_text(SMALL_SPACE)
    _run([venv, "-m", "search.run", "tiny.yaml", "--budget", "smoke", "--trials", "1", "--sampler", "grid",
          "--device", "cpu", "--num-cpus", "1", "--quiet", "--out", "study"], cwd=empty, env=env, timeout=400)
    with (empty / "study" / "trials.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["model_id"], r["status"]) for r in rows] == [("eSR-MAX_s2_K3_C1", "complete")], rows
    assert float(rows[0]["psnr_Set5"]) > 0 and rows[0]["latency_source"] == "measured:cpu"

    # one evaluation on the packaged Set5
    done = _run([venv, "-m", "search.evaluate", "--model", "bicubic", "--scale", "2", "--data", "Set5",
                 "--no-progress", "--csv", "eval.csv"], cwd=empty, env=env)
    assert "_resources" in done.stderr + done.stdout  # Set5 was read from the wheel
    with (empty / "eval.csv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["images_Set5"] == "5" and float(row["psnr_Set5"]) > 30
    assert sorted(p.name for p in empty.iterdir()) == ["configs.csv", "eval.csv", "study", "tiny.yaml"]
