#!/usr/bin/env python3
"""Refresh ``requirements.lock``: the newest versions pyproject's ranges allow, tested first.

Usage (from anywhere; paths are relative to the repository)::

    python3 scripts/update_lock.py              # fresh venv, newest install, tests, rewrite lock
    python3 scripts/update_lock.py --check      # same, but only print what would change
    python3 scripts/update_lock.py --no-tests   # skip the test suite (to try the script itself)

What it does, in order:

1. makes a fresh virtual environment (a temporary folder, or ``--venv DIR``);
2. installs the project there WITHOUT the lock (``pip install -e .``), so pip picks the newest
   release of every package that pyproject.toml's ranges allow;
3. runs the README's test command (``python -m pytest -q``) in that environment, with
   ``SR_LOCK_UPDATE=1`` so that the test comparing the installed versions with the old lock
   steps aside;
4. only if the tests pass, rewrites ``requirements.lock`` from ``pip freeze --all`` (every
   package except the project itself and pip; ``torch==X+cpu`` is written as ``torch==X`` so that the local CPU
   wheel is still taken) and prints each change as ``name: old -> new``.

Exit status: 0 when the lock is up to date or was rewritten, 1 when the install or the tests
failed (the lock is left as it was), 2 for a usage error. Drift in the dependencies is found
here, by the project, and not by users of the README install.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCK_PATH = REPO_ROOT / "requirements.lock"
PROJECT_NAME = "sr-search"

# The README's commands (tests/test_environment.py checks that README and .ci/run agree).
INSTALL_COMMAND = "pip install -c requirements.lock -e ."
UNLOCKED_INSTALL = ["-m", "pip", "install", "-q", "-e", "."]   # what the update resolves: newest in range
TEST_COMMAND = ["-m", "pytest", "-q"]

# Packages whose local version label (``+cpu``) is dropped in the lock: ``torch==2.13.0``
# matches the local ``2.13.0+cpu`` wheel and also the plain one where a machine has no such wheel.
STRIP_LOCAL_VERSION = {"torch"}
# Never in the lock: the project itself, and pip (the installer, upgraded by .ci/run). setuptools
# IS locked (`pip freeze --all`): torch and zc.lockfile need it at run time.
EXCLUDED = {PROJECT_NAME, "pip"}
FREEZE = ["-m", "pip", "freeze", "--all"]

HEADER = """\
# requirements.lock: the tested environment of sr-search (pip constraints format).
#
#   pip install -c requirements.lock -e .      # the README install: exactly these versions
#
# Every package `pip freeze --all` shows after that install (all transitive dependencies, and
# setuptools, which torch needs at run time), except the project itself and pip. pyproject.toml
# keeps the ranges for library users; this file is what CI and `dvc repro` run with (every DVC
# stage depends on it). Made with CPython 3.11 on Linux x86-64; torch is the CPU wheel
# (torch==2.13.0 takes the local 2.13.0+cpu one).
#
# Do not edit by hand: refresh with `python3 scripts/update_lock.py` (fresh venv, newest versions
# the ranges allow, the test suite, and only then this file). See README "Development".
"""

_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def canonical(name: str) -> str:
    """PEP 503 normalised name: ``PyYAML`` and ``pyyaml``, ``ruamel.yaml`` and ``ruamel-yaml`` agree."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_freeze(text: str) -> dict[str, str]:
    """``pip freeze --all`` output -> {name: version}: the project, pip, editables and comments dropped."""
    pins: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("-e ") or line.startswith("--"):
            continue
        match = _LINE.match(line)
        if match is None:
            # "name @ file:///..." (a direct reference) cannot be a constraint that others reproduce
            raise ValueError(f"cannot lock {line!r}: not 'name==version'")
        name, version = match.groups()
        if canonical(name) in EXCLUDED:
            continue
        if canonical(name) in STRIP_LOCAL_VERSION:
            version = version.split("+", 1)[0]
        pins[name] = version
    return pins


def read_lock(path: Path | None = None) -> dict[str, str]:
    path = LOCK_PATH if path is None else path
    if not path.is_file():
        return {}
    return parse_freeze(path.read_text(encoding="utf-8"))


def format_lock(pins: dict[str, str]) -> str:
    lines = [f"{name}=={pins[name]}" for name in sorted(pins, key=canonical)]
    return HEADER + "\n" + "\n".join(lines) + "\n"


def diff_pins(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """One line per change: ``name: old -> new``, ``+ name==v`` (added), ``- name==v`` (removed)."""
    old_c = {canonical(k): (k, v) for k, v in old.items()}
    new_c = {canonical(k): (k, v) for k, v in new.items()}
    changes = []
    for key in sorted(set(old_c) | set(new_c)):
        if key not in old_c:
            changes.append(f"+ {new_c[key][0]}=={new_c[key][1]}")
        elif key not in new_c:
            changes.append(f"- {old_c[key][0]}=={old_c[key][1]}")
        elif old_c[key][1] != new_c[key][1]:
            changes.append(f"{new_c[key][0]}: {old_c[key][1]} -> {new_c[key][1]}")
    return changes


def _run(cmd: list[str], *, env: dict[str, str] | None = None, quiet: bool = False) -> int:
    print("$ " + " ".join(cmd), flush=True)
    stdout = subprocess.DEVNULL if quiet else None
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, stdout=stdout).returncode


def _freeze(python: str, env: dict[str, str]) -> str:
    return subprocess.run([python, *FREEZE], cwd=REPO_ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-tests", action="store_true",
                        help="skip the test suite (only to try the script; the lock is then untested)")
    parser.add_argument("--check", action="store_true",
                        help="print what would change; leave requirements.lock as it is")
    parser.add_argument("--venv", metavar="DIR",
                        help="build the environment here (default: a temporary folder, removed after)")
    parser.add_argument("--keep-venv", action="store_true", help="keep the environment afterwards")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter the environment is made from (default: this one)")
    args = parser.parse_args(argv)

    venv = Path(args.venv).resolve() if args.venv else Path(tempfile.mkdtemp(prefix="sr-lock-"))
    keep = args.keep_venv or bool(args.venv)
    try:
        if _run([args.python, "-m", "venv", "--clear", str(venv)]) != 0:
            print("error: could not create the virtual environment", file=sys.stderr)
            return 1
        python = str(venv / "bin" / "python")
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"   # the stages/tests call `python`
        env["SR_LOCK_UPDATE"] = "1"
        if _run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], env=env) != 0 or \
                _run([python, *UNLOCKED_INSTALL], env=env) != 0:
            print("error: the unlocked install failed; requirements.lock unchanged", file=sys.stderr)
            return 1
        if args.no_tests:
            print("warning: --no-tests: the new versions were NOT tested", file=sys.stderr)
        elif _run([python, *TEST_COMMAND], env=env) != 0:
            print("error: the tests failed with the newest versions; requirements.lock unchanged "
                  f"(environment kept in {venv} to investigate)", file=sys.stderr)
            keep = True
            return 1
        new = parse_freeze(_freeze(python, env))
        old = read_lock(LOCK_PATH)
        changes = diff_pins(old, new)
        if not changes:
            print(f"requirements.lock is up to date ({len(new)} packages)")
            return 0
        print(f"{len(changes)} change(s):")
        for line in changes:
            print("  " + line)
        if args.check:
            print("--check: requirements.lock not written")
        else:
            LOCK_PATH.write_text(format_lock(new), encoding="utf-8")
            print(f"wrote {LOCK_PATH.name}; reinstall with: {INSTALL_COMMAND}")
        return 0
    finally:
        if keep:
            print(f"environment kept in {venv}")
        else:
            shutil.rmtree(venv, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
