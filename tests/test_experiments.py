"""`python -m search.experiments`: every experiment registered by name, listed, run by one command."""

from __future__ import annotations

import csv
import json
import pkgutil

import pytest

from search import experiments
from search.experiments import EXPERIMENTS, describe
from search.experiments.__main__ import main


def test_every_module_of_the_package_is_registered_under_its_name():
    modules = sorted(m.name for m in pkgutil.iter_modules(experiments.__path__) if not m.name.startswith("_"))
    assert sorted(EXPERIMENTS) == modules
    assert all(module == f"search.experiments.{name}" for name, module in EXPERIMENTS.items())


def test_list_prints_one_line_per_experiment(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(EXPERIMENTS)
    for line, name in zip(lines, EXPERIMENTS):
        assert line == f"{name}  {describe(name)}" and len(describe(name)) > 20


def test_unknown_experiment_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as done:
        main(["no_such_experiment"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown experiment 'no_such_experiment'" in err


def test_name_runs_that_experiment_with_its_arguments(capsys):
    with pytest.raises(SystemExit) as done:
        main(["paper_costs", "--help"])
    assert done.value.code == 0
    assert "python -m search.experiments paper_costs" in capsys.readouterr().out


def test_bicubic_reference_is_the_evaluators_bicubic_psnr(tmp_path):
    from search.evaluate import evaluate_model
    from search.models import create_model

    study = tmp_path / "study"
    study.mkdir()
    with (study / "trials.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "config_id", "family", "scale", "status", "psnr_Set5"])
        writer.writerow([0, "a", "IMDN", 4, "complete", 30.0])
        writer.writerow([1, "b", "IMDN", 3, "failed", ""])
    (study / "study.json").write_text(json.dumps({"options": {}}))
    out = tmp_path / "bicubic.json"
    assert main(["bicubic_reference", str(study), "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    expected = evaluate_model(create_model(family="Bicubic", scale=4), ["Set5"], progress=False)["Set5"]["psnr"]
    assert written["psnr"] == {"Set5": {"4": expected}}  # finished trials' scales only
