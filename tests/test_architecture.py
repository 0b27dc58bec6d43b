"""Data flows one way: no module of ``search/`` imports a layer above its own.

The order (docs/ARCHITECTURE.md): base (errors, paths, jsonio, torch_device, markdown, schema) -> data ->
models -> train -> evaluate -> profile -> study (space, study, run.py) -> experiments -> report. Every
import counts: at module level and inside functions (a function-local import against the
flow is still a dependency against it, only hidden).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from search.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "search"
# lowest first; a module may import its own layer and any below it
LAYERS = [
    ("base", ["search.errors", "search.paths", "search.jsonio", "search.torch_device", "search.markdown",
              "search.schema", "search"]),
    ("data", ["search.data"]),
    ("models", ["search.models"]),
    ("train", ["search.train"]),
    ("evaluate", ["search.evaluate"]),
    ("profile", ["search.profile"]),
    ("study", ["search.space", "search.study", "search.run"]),
    ("experiments", ["search.experiments"]),  # train and/or measure; write studies/ (and reports/)
    ("report", ["search.report"]),
    ("cli", ["search.cli"]),  # `sr`: hands each subcommand to its tool's main
]


def layer_of(module: str) -> int:
    """Index in LAYERS of a dotted module name (the longest matching prefix decides)."""
    best, best_length = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    if best is None:
        raise KeyError(module)
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, package: str):
    """(line, imported module) for every import of a ``search`` module in ``source``, a module
    of ``package`` (relative imports resolve against it)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "search":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "search":
                continue
            for alias in node.names:  # `from search import data` imports search.data
                candidate = f"{target}.{alias.name}"
                yield node.lineno, candidate if _is_module(candidate) else target


def _is_module(dotted: str) -> bool:
    path = REPO_ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    for path in SOURCES:
        layer_of(module_name(path))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_import_runs_against_the_flow(path):
    own = layer_of(module_name(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    against = [f"line {line}: {target} ({LAYERS[layer_of(target)][0]})"
               for line, target in imported_modules(path.read_text(encoding="utf-8"), package)
               if layer_of(target) > own]
    assert not against, (f"{path.relative_to(REPO_ROOT)} ({LAYERS[own][0]}) imports a higher layer:\n"
                         + "\n".join(against))


def test_the_checker_sees_function_local_and_relative_imports():
    """The rule has teeth: a models module importing evaluate inside a function is caught."""
    source = ("import os\n"
              "def f():\n    from search.evaluate import evaluate_model\n    from ..report import fronts\n"
              "    from search import study\n")
    found = [target for _, target in imported_modules(source, "search.models")]
    assert found == ["search.evaluate", "search.report.fronts", "search.study"]
    assert all(layer_of(t) > layer_of("search.models.esr") for t in found)


# reports only read what studies and experiments wrote (studies/, published/) and write reports/:
# no model is built, trained, evaluated or profiled in search/report
REPORT_MUST_NOT_IMPORT = ("data", "models", "train", "evaluate", "profile", "experiments")


@pytest.mark.parametrize("path", sorted((PACKAGE / "report").rglob("*.py")), ids=lambda p: p.name)
def test_reports_import_no_layer_that_makes_numbers(path):
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = [f"line {line}: {target} ({LAYERS[layer_of(target)][0]})"
             for line, target in imported_modules(path.read_text(encoding="utf-8"), package)
             if LAYERS[layer_of(target)][0] in REPORT_MUST_NOT_IMPORT]
    assert not found, (f"{path.relative_to(REPO_ROOT)} computes instead of reading (move it into an "
                       "experiment that writes under studies/):\n" + "\n".join(found))


# Imports sit at module top, where the dependency is visible. Entry points (a CLI's main) may
# import their machinery inside main so that `--help` and a bad argument answer before torch
# and Ray load; the registry imports the family modules by name to register them.
LOCAL_IMPORTS_ALLOWED = {"search.run", "search.cli", "search.evaluate.cli", "search.evaluate",
                         "search.models.registry"}


def _allowed_local(module: str) -> bool:
    return (module in LOCAL_IMPORTS_ALLOWED or module.endswith(".__main__")
            or module.startswith("search.experiments."))


def local_imports(source: str) -> list[tuple[int, str]]:
    """(line, function) of every import of a ``search`` module inside a function."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for sub in ast.walk(node):
                if isinstance(sub, ast.ImportFrom) and (sub.level or (sub.module or "").split(".")[0] == "search"):
                    found.append((sub.lineno, node.name))
                elif isinstance(sub, ast.Import) and any(a.name.split(".")[0] == "search" for a in sub.names):
                    found.append((sub.lineno, node.name))
    return sorted(set(found))


@pytest.mark.parametrize("path", [p for p in SOURCES if not _allowed_local(module_name(p))],
                         ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_library_modules_import_at_module_top(path):
    found = local_imports(path.read_text(encoding="utf-8"))
    assert not found, (f"{path.relative_to(REPO_ROOT)}: imports inside functions (move them to the top): "
                       + ", ".join(f"line {line} in {name}()" for line, name in found))


def test_the_local_import_check_sees_them():
    source = "import os\ndef f():\n    import search.data\n    from . import x\n    import numpy\n"
    assert local_imports(source) == [(3, "f"), (4, "f")]
