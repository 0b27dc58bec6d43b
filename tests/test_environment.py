"""The pinned environment: requirements.lock, the README install, .ci/run, dvc.yaml, the updater.

The README installs with ``pip install -c requirements.lock -e .``: every package at the
version the suite was tested with. These tests check that the lock is well formed and complete,
that it satisfies pyproject.toml's ranges, that the environment the tests run in is the locked
one (so CI, which installs with the README command, proves the lock installs and passes), and
that README, .ci/run, dvc.yaml and scripts/update_lock.py agree about it.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements.lock"
INSTALL = "pip install -c requirements.lock -e ."
TEST = "python -m pytest -q"
# The installed versions are checked against the lock where the environment was installed
# with it and says so: .ci/run sets SR_CHECK_LOCK=1. Elsewhere the README test command must
# also pass with the newest versions pyproject's ranges allow (a user without the lock, and
# scripts/update_lock.py, which sets SR_LOCK_UPDATE=1), so there these two tests skip.
LOCKED_INSTALL = os.environ.get("SR_CHECK_LOCK") == "1" and os.environ.get("SR_LOCK_UPDATE") != "1"


def _updater():
    name = "_sr_update_lock"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "update_lock.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, str]:
    return {canonical(k): v for k, v in _updater().read_lock(LOCK).items()}


def _pyproject() -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _dependencies() -> list[Requirement]:
    return [Requirement(text) for text in _pyproject()["project"]["dependencies"]]


# ----------------------------------------------------------------------------- the lock itself
def test_lock_is_well_formed():
    text = LOCK.read_text(encoding="utf-8")
    names = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*==[0-9][^\s;#+]*", line), \
            f"requirements.lock: {line!r} is not 'name==version' (no local label, no marker)"
        names.append(canonical(line.split("==")[0]))
    assert len(names) == len(set(names)), "requirements.lock lists a package twice"
    assert len(names) > 50, "requirements.lock must pin every transitive package"
    # as written by scripts/update_lock.py: sorted, with its header (so a hand edit shows in review)
    assert text == _updater().format_lock(_updater().read_lock(LOCK))


def test_lock_pins_torch_cpu_and_no_torchvision():
    lock = _lock()
    assert lock["torch"] == "2.13.0", "write torch==2.13.0 (it takes the local +cpu wheel)"
    assert "torchvision" not in lock
    assert "sr-search" not in lock and "pip" not in lock


def test_lock_satisfies_pyproject_ranges():
    lock = _lock()
    for req in _dependencies():
        name = canonical(req.name)
        assert name in lock, f"{req} (pyproject.toml) is not in requirements.lock"
        assert req.specifier.contains(lock[name], prereleases=True), \
            f"requirements.lock pins {name}=={lock[name]}, outside pyproject.toml's {req}"


def test_optuna_dashboard_is_a_dependency_and_locked():
    assert "optuna-dashboard" in {canonical(r.name) for r in _dependencies()}
    assert "optuna-dashboard" in _lock() and "bottle" in _lock()


# ----------------------------------------------------------------------------- the installed environment
def _closure() -> dict[str, str]:
    """Every distribution the project needs, through the installed metadata: {name: version}."""
    todo = [(r, tuple(sorted(r.extras))) for r in _dependencies()]
    seen: dict[str, str] = {}
    done: set[tuple[str, tuple[str, ...]]] = set()
    while todo:
        req, extras = todo.pop()
        key = (canonical(req.name), extras)
        if key in done:
            continue
        done.add(key)
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            pytest.fail(f"{req.name} (needed by the project) is not installed; install with: {INSTALL}")
        seen[canonical(req.name)] = dist.version
        for text in dist.requires or []:
            sub = Requirement(text)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in ("", *extras)):
                todo.append((sub, tuple(sorted(sub.extras))))
    return seen


@pytest.mark.skipif(not LOCKED_INSTALL, reason="not a locked install (SR_CHECK_LOCK=1 is set by .ci/run)")
def test_installed_versions_are_the_locked_ones():
    lock = _lock()
    wrong = []
    for name, version in sorted(lock.items()):
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            wrong.append(f"{name}: locked {version}, not installed")
            continue
        if installed.split("+", 1)[0] != version:
            wrong.append(f"{name}: locked {version}, installed {installed}")
    assert not wrong, f"the environment is not the locked one (reinstall: {INSTALL}):\n" + "\n".join(wrong)


@pytest.mark.skipif(not LOCKED_INSTALL, reason="not a locked install (SR_CHECK_LOCK=1 is set by .ci/run)")
def test_lock_is_complete():
    """Every package the project needs (all transitive dependencies, extras included) is pinned."""
    missing = sorted(set(_closure()) - set(_lock()) - {"sr-search"})
    assert not missing, ("requirements.lock lacks " + ", ".join(missing)
                         + " (refresh it with: python3 scripts/update_lock.py)")


def test_optuna_dashboard_on_path():
    script = Path(sys.executable).parent / "optuna-dashboard"
    assert script.is_file() or shutil.which("optuna-dashboard"), \
        f"optuna-dashboard is not installed next to {sys.executable}; install with: {INSTALL}"


# ----------------------------------------------------------------------------- README, CI, DVC, the updater
def _readme_setup_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Set-up", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def test_readme_install_is_one_command_with_the_lock():
    assert _readme_setup_commands() == [INSTALL, TEST]


def test_ci_runs_the_readme_commands():
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    install, test = _readme_setup_commands()
    assert install in ci and test in ci, ".ci/run must run the README's install and test commands"
    assert ci.index(install) < ci.index(test)
    assert any(line.startswith("python3 -m venv") for line in ci[: ci.index(install)]), \
        ".ci/run installs into a fresh virtual environment"
    assert "export SR_CHECK_LOCK=1" in ci[: ci.index(test)], ".ci/run checks that it tested the locked versions"


def test_updater_uses_the_readme_commands():
    updater = _updater()
    install, test = _readme_setup_commands()
    assert updater.INSTALL_COMMAND == install
    assert "python " + " ".join(updater.TEST_COMMAND) == test
    assert "-c" not in updater.UNLOCKED_INSTALL and updater.LOCK_PATH == LOCK


def test_every_dvc_stage_depends_on_the_lock():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    lacking = [name for name, stage in stages.items()
               if "requirements.lock" not in (stage.get("do", stage).get("deps") or [])]
    assert not lacking, f"dvc.yaml stages without requirements.lock in deps: {lacking}"


FREEZE = """\
aiohttp==3.14.5
# Editable Git install with no remote (sr-search==0.1.0)
-e /work/main
PyYAML==6.0.4
pip==26.3
ruamel.yaml==0.19.1
setuptools==84.2.1
torch==2.13.0+cpu
"""


def test_updater_parses_freeze():
    pins = _updater().parse_freeze(FREEZE)
    assert pins == {"aiohttp": "3.14.5", "PyYAML": "6.0.4", "ruamel.yaml": "0.19.1",
                    "setuptools": "84.2.1", "torch": "2.13.0"}
    assert _updater().parse_freeze(_updater().format_lock(pins)) == pins
    with pytest.raises(ValueError, match="not 'name==version'"):
        _updater().parse_freeze("foo @ file:///tmp/foo-1.0-py3-none-any.whl\n")


def test_updater_reports_changes():
    old = {"optuna": "5.1.0", "PyYAML": "6.0.4", "gone": "1.0"}
    new = {"optuna": "5.2.0", "pyyaml": "6.0.4", "bottle": "0.13.4"}
    assert _updater().diff_pins(old, new) == ["+ bottle==0.13.4", "- gone==1.0", "optuna: 5.1.0 -> 5.2.0"]
    assert _updater().diff_pins(new, new) == []


class _FakeSteps:
    """scripts/update_lock.py's commands recorded instead of run; the test step passes or fails."""

    def __init__(self, updater, tests_pass: bool, freeze: str):
        self.updater, self.tests_pass, self.freeze_text = updater, tests_pass, freeze
        self.commands: list[list[str]] = []
        self.test_env: dict[str, str] | None = None
        self.froze = False

    def run(self, cmd, *, env=None, quiet=False):
        self.commands.append(cmd)
        if cmd[1:] == self.updater.TEST_COMMAND:
            self.test_env = env
            return 0 if self.tests_pass else 1
        return 0

    def freeze(self, python, env):
        self.froze = True
        return self.freeze_text


NEW_FREEZE = "bottle==0.13.4\n-e /work/main\noptuna==5.2.0\npip==26.3\ntorch==2.13.0+cpu\n"


@pytest.fixture()
def updater_with_lock(tmp_path, monkeypatch):
    updater = _updater()
    lock = tmp_path / "requirements.lock"
    lock.write_text(updater.format_lock({"optuna": "5.1.0", "torch": "2.13.0"}), encoding="utf-8")
    monkeypatch.setattr(updater, "LOCK_PATH", lock)
    return updater, lock


def _fake(updater, monkeypatch, *, tests_pass=True):
    steps = _FakeSteps(updater, tests_pass, NEW_FREEZE)
    monkeypatch.setattr(updater, "_run", steps.run)
    monkeypatch.setattr(updater, "_freeze", steps.freeze)
    return steps


def test_updater_rewrites_the_lock_after_green_tests(updater_with_lock, monkeypatch, tmp_path, capsys):
    updater, lock = updater_with_lock
    steps = _fake(updater, monkeypatch)
    assert updater.main(["--venv", str(tmp_path / "venv")]) == 0
    venv_python = str(tmp_path / "venv" / "bin" / "python")
    assert [c[1:] for c in steps.commands] == [
        ["-m", "venv", "--clear", str(tmp_path / "venv")],
        ["-m", "pip", "install", "-q", "--upgrade", "pip"],
        updater.UNLOCKED_INSTALL,
        updater.TEST_COMMAND,
    ]
    assert all(c[0] == venv_python for c in steps.commands[1:])
    assert steps.test_env["SR_LOCK_UPDATE"] == "1"
    assert steps.test_env["PATH"].startswith(str(tmp_path / "venv" / "bin"))
    assert updater.read_lock(lock) == {"bottle": "0.13.4", "optuna": "5.2.0", "torch": "2.13.0"}
    out = capsys.readouterr().out
    assert "optuna: 5.1.0 -> 5.2.0" in out and "+ bottle==0.13.4" in out


def test_updater_keeps_the_lock_when_tests_fail(updater_with_lock, monkeypatch, tmp_path, capsys):
    updater, lock = updater_with_lock
    before = lock.read_text(encoding="utf-8")
    steps = _fake(updater, monkeypatch, tests_pass=False)
    assert updater.main(["--venv", str(tmp_path / "venv")]) == 1
    assert not steps.froze and lock.read_text(encoding="utf-8") == before
    assert "requirements.lock unchanged" in capsys.readouterr().err


@pytest.mark.parametrize("options", [["--check"], ["--check", "--no-tests"]])
def test_updater_check_only_prints(updater_with_lock, monkeypatch, tmp_path, capsys, options):
    updater, lock = updater_with_lock
    before = lock.read_text(encoding="utf-8")
    steps = _fake(updater, monkeypatch)
    assert updater.main([*options, "--venv", str(tmp_path / "venv")]) == 0
    assert lock.read_text(encoding="utf-8") == before
    assert ("--no-tests" in options) == (steps.test_env is None)
    assert "optuna: 5.1.0 -> 5.2.0" in capsys.readouterr().out
