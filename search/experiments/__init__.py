"""Experiments: the studies that train and/or measure models and write what they found.

Each experiment is a module of this package with a ``main(argv=None)`` (decorated with
:func:`search.errors.cli_main`), registered below by name and run by one command::

    python -m search.experiments list            # one line per experiment
    python -m search.experiments NAME [ARGS...]  # = python -m search.experiments.NAME [ARGS...]

They sit between the study layer and the reports: an experiment may use every layer up to
the study runner; a report (``search/report``) only reads what studies and experiments
wrote (``studies/``, ``published/``) and writes ``reports/``. Scripts that only time things
and print ratios stay in ``benchmarks/``.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from search.errors import UserError

# name -> module (in this package); the one-line description is the module docstring's first
# paragraph, read without importing the module (so `list` does not load torch)
EXPERIMENTS = {
    "adadsr_depth_study": "search.experiments.adadsr_depth_study",
    "bicubic_reference": "search.experiments.bicubic_reference",
    "dasr_experts": "search.experiments.dasr_experts",
    "dasr_init_control": "search.experiments.dasr_init_control",
    "esr_cpu_latency": "search.experiments.esr_cpu_latency",
    "esr_linear_bound": "search.experiments.esr_linear_bound",
    "esr_released_eval": "search.experiments.esr_released_eval",
    "imdn_ablation": "search.experiments.imdn_ablation",
    "imdn_reproduce": "search.experiments.imdn_reproduce",
    "paper_costs": "search.experiments.paper_costs",
    "retrain_esr": "search.experiments.retrain_esr",
    "smsr_schedules": "search.experiments.smsr_schedules",
    "tabular_samplers": "search.experiments.tabular_samplers",
}


def _module_file(module: str) -> Path:
    return Path(__file__).resolve().parent / (module.rpartition(".")[2] + ".py")


def describe(name: str) -> str:
    """The first paragraph of the experiment's module docstring, on one line."""
    tree = ast.parse(_module_file(experiment_module(name)).read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    return " ".join(doc.split("\n\n")[0].split())


def experiment_module(name: str) -> str:
    if name not in EXPERIMENTS:
        raise UserError(f"unknown experiment {name!r}; one of {', '.join(EXPERIMENTS)} "
                        "(python -m search.experiments list)")
    return EXPERIMENTS[name]


def experiment_main(name: str):
    """The ``main(argv=None)`` of experiment ``name`` (imports its module)."""
    return importlib.import_module(experiment_module(name)).main
