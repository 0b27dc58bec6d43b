"""Every command-line entry point turns an unexpected exception into one line + a log file.

* every module under search/ and benchmarks/ that can be run as a program (an
  ``if __name__ == "__main__":`` block, or a ``__main__.py``) runs a ``main`` decorated with
  :func:`search.errors.cli_main` (checked on the source, so a new CLI cannot forget it);
* each such ``main`` (and each console script of pyproject.toml), forced to fail, exits 1 with
  one line naming a log file that holds the traceback, and exits 2 with one line for a
  :class:`UserError`;
* the same holds end to end in a subprocess, with the failure deep inside the study runner;
* an error raised inside a Ray worker (``RayTaskError``) is reported as its cause.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from search import errors
from search.errors import UserError, cli_main, root_cause

REPO = Path(__file__).resolve().parents[1]
ENTRY_ROOTS = ("search", "benchmarks")
INTERNAL_LINE = re.compile(
    r"^error: internal error: (?P<what>[A-Za-z_][\w.]*: .*) \(full traceback in (?P<log>.+)\)$")


# ----------------------------------------------------------------------------- finding entry points
def _is_main_guard(node: ast.stmt) -> bool:
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    sides = [test.left, *test.comparators]
    return (len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
            and any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))


def _decorator_names(func: ast.FunctionDef) -> set[str]:
    names = set()
    for dec in func.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Attribute):
            names.add(target.attr)
    return names


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def _module_path(module: str) -> Path:
    base = REPO.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _entry_files() -> list[Path]:
    """Files runnable as a program: an ``if __name__ == "__main__":`` block, or ``__main__.py``."""
    found = []
    for root in ENTRY_ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            if path.name == "__main__.py" or any(_is_main_guard(node) for node in tree.body):
                found.append(path)
    return found


def _resolve_main(path: Path) -> tuple[Path, ast.FunctionDef | None, str]:
    """(file defining the ``main`` that ``path`` runs, its definition or None, how it was found)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            return path, node, "defined here"
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if alias.name == "main" and (alias.asname in (None, "main")):
                    target = _module_path(node.module)
                    if target.is_file() and target != path:
                        return _resolve_main(target)[:2] + (f"imported from {node.module}",)
    return path, None, "no main defined or imported"


def _runs_main(path: Path) -> bool:
    """The program part (the ``__main__`` block, or a whole ``__main__.py``) calls ``main``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    blocks = [node for node in tree.body if _is_main_guard(node)]
    scope = blocks if blocks else ([tree] if path.name == "__main__.py" else [])
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "main"
               for block in scope for n in ast.walk(block))


ENTRY_FILES = _entry_files()


def _entry_targets() -> list[Path]:
    """The distinct files whose ``main`` the programs run (``__main__.py`` -> the module it imports)."""
    targets = []
    for path in ENTRY_FILES:
        target, func, _ = _resolve_main(path)
        if func is not None and target not in targets:
            targets.append(target)
    return targets


ENTRY_TARGETS = _entry_targets()


def test_entry_points_found():
    rel = {p.relative_to(REPO).as_posix() for p in ENTRY_FILES}
    # a sanity check of the discovery itself, not the list of CLIs
    assert {"search/run.py", "search/evaluate/__main__.py", "benchmarks/runner_overhead.py",
            "search/experiments/__main__.py", "search/experiments/tabular_samplers.py"} <= rel


@pytest.mark.parametrize("path", ENTRY_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_entry_point_main_is_decorated(path):
    target, func, how = _resolve_main(path)
    rel = path.relative_to(REPO).as_posix()
    assert func is not None, f"{rel}: runnable as a program but {how}"
    assert "cli_main" in _decorator_names(func), (
        f"{rel}: main ({how}, {target.relative_to(REPO)}:{func.lineno}) is not decorated with "
        "@cli_main (search.errors): an unexpected error would print a traceback")
    assert _runs_main(path), f"{rel}: its __main__ block does not call main()"


# ----------------------------------------------------------------------------- forcing failures
def _import_target(path: Path):
    rel = path.relative_to(REPO)
    if rel.parts[0] == "search":
        return importlib.import_module(_module_name(path))
    name = "_cli_entry_" + "_".join(rel.with_suffix("").parts)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look a module up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _console_scripts() -> list[tuple[str, str]]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return sorted(data["project"].get("scripts", {}).items())


def _mains():
    params = [pytest.param(lambda p=p: _import_target(p).main, id=p.relative_to(REPO).as_posix())
              for p in ENTRY_TARGETS]
    for name, spec in _console_scripts():
        module, _, attr = spec.partition(":")
        params.append(pytest.param(lambda m=module, a=attr: getattr(importlib.import_module(m), a),
                                   id=f"script:{name}"))
    return params


@pytest.fixture()
def crash_dir(tmp_path, monkeypatch):
    """Internal-error logs go to tmp_path; the previous setting is restored afterwards."""
    monkeypatch.setattr(errors, "_crash_log_dir", errors._crash_log_dir)
    errors.set_crash_log_dir(tmp_path)
    return tmp_path


def _force(monkeypatch, exc: BaseException) -> None:
    def fail(self, *args, **kwargs):
        raise exc

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", fail)


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), f"expected one line on stderr, got {err!r}"
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("get_main", _mains())
def test_internal_error_is_one_line_and_a_log(get_main, monkeypatch, capsys, crash_dir):
    main = get_main()
    capsys.readouterr()
    _force(monkeypatch, RuntimeError("forced failure"))
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == errors.EXIT_INTERNAL_ERROR == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("error: internal error: RuntimeError: forced failure"), line
    match = INTERNAL_LINE.match(line)
    assert match, line
    log = Path(match["log"])
    assert log.is_file() and log.parent == crash_dir
    text = log.read_text(encoding="utf-8")
    assert "Traceback" in text and "forced failure" in text


@pytest.mark.parametrize("get_main", _mains())
def test_user_error_is_one_line_exit_2(get_main, monkeypatch, capsys, crash_dir):
    main = get_main()
    capsys.readouterr()
    _force(monkeypatch, UserError("forced user error", path="some/space.yaml"))
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == errors.EXIT_USER_ERROR == 2
    assert _one_line(capsys.readouterr().err) == "error: some/space.yaml: forced user error"
    assert not list(crash_dir.iterdir()), "a user error must not write a crash log"


# ----------------------------------------------------------------------------- end to end
def test_deep_internal_error_in_a_subprocess(tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    code = textwrap.dedent(f"""
        import sys
        import search.study.runner as runner

        def boom(*args, **kwargs):
            return 1 / 0

        runner.run_study = boom
        from search.run import main
        main(["spaces/esr.yaml", "--out", {str(out)!r}, "--trials", "1", "--quiet"])
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr
    line = _one_line(proc.stderr)
    match = INTERNAL_LINE.match(line)
    assert match and match["what"].startswith("ZeroDivisionError: division by zero"), line
    log = Path(match["log"])
    assert log.parent == out and log.name.startswith("crash-"), line
    text = log.read_text(encoding="utf-8")
    assert "Traceback" in text and "ZeroDivisionError" in text and "boom" in text


# ----------------------------------------------------------------------------- Ray wrappers
def _ray_task_error(cause: BaseException, *, as_cause_type: bool):
    from ray.exceptions import RayTaskError

    wrapped = RayTaskError("trial_fn", f"Traceback (most recent call last):\n{type(cause).__name__}: {cause}",
                           cause)
    # what a driver receives from ray.get: a class deriving from both RayTaskError and the cause's
    return wrapped.as_instanceof_cause() if as_cause_type else wrapped


@pytest.mark.parametrize("as_cause_type", [False, True], ids=["RayTaskError", "RayTaskError(ValueError)"])
def test_root_cause_unwraps_ray_task_error(as_cause_type):
    cause = ValueError("bad value in worker")
    wrapped = _ray_task_error(cause, as_cause_type=as_cause_type)
    assert type(wrapped) is not ValueError
    assert root_cause(wrapped) is cause


def test_root_cause_unwraps_tune_error_chain():
    tune_error = pytest.importorskip("ray.tune.error")
    cause = ValueError("bad value in worker")
    try:
        try:
            raise _ray_task_error(cause, as_cause_type=True)
        except Exception as inner:
            raise tune_error.TuneError("trial failed") from inner
    except Exception as outer:  # noqa: BLE001
        assert root_cause(outer) is cause
    plain = ValueError("not from ray")
    assert root_cause(plain) is plain


def test_user_error_in_a_ray_worker_exits_2(capsys, crash_dir):
    @cli_main
    def main(argv=None):
        raise _ray_task_error(UserError("unknown family 'eSR-XX'", path="spaces/bad.yaml"), as_cause_type=True)

    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert _one_line(capsys.readouterr().err) == "error: spaces/bad.yaml: unknown family 'eSR-XX'"


def test_internal_error_in_a_ray_worker_names_the_cause(capsys, crash_dir):
    @cli_main
    def main(argv=None):
        raise _ray_task_error(ValueError("bad value in worker"), as_cause_type=False)

    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("error: internal error: ValueError: bad value in worker"), line
    assert Path(INTERNAL_LINE.match(line)["log"]).is_file()
