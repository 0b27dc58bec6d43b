"""One schema-driven validator for the YAML formats (search/schema.py).

For each format (space files, device profiles, params.yaml's budgets) a valid file passes and
each kind of mistake is one line naming the file, the key path and the problem. The expected
lines are written out by hand: they are what a user should read.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields

import jsonschema
import pytest

from search.errors import SpaceError, UserError
from search.paths import REPO_ROOT
from search.profile.devices import DEVICE_SCHEMA, DeviceProfile, _profile_from_file
from search.schema import Problem, find_problem, validate
from search.space import load_space
from search.space.loader import SPACE_SCHEMA
from search.space.safe_yaml import load_yaml
from search.train.budgets import (
    BUDGET_DEFAULTS,
    BUDGET_SCHEMA,
    BUDGET_SETTINGS,
    PARAMS_SCHEMA,
    list_budgets,
    load_budget,
    resolve_budget,
)

HEADER = "scales: [2]\nfamilies: {Bicubic: {}}\n"
MAX_SEED = 2**32 - 1


def error_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


# ---------------------------------------------------------------- space files

SPACE_CASES = [
    ("wrong_type", HEADER + "fixed: {seed: abc}\n",
     f"fixed.seed: expected a non-negative integer up to {MAX_SEED}, got 'abc'"),
    ("unknown_key_suggests", HEADER + "fixed: {budget: {stpes: 10}}\n",
     "fixed.budget.stpes: unknown key (did you mean steps?)"),
    ("unknown_top_key_beats_the_missing_one", "scales: [2]\nfamiles: {Bicubic: {}}\n",
     "familes: unknown key (did you mean families?)"),
    ("missing_required", "scales: [2]\n",
     "families: missing (required: the model families to search)"),
    ("bad_enum", ("scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: [1]}, "
                  "constraints: [{expr: K > 1, on_violation: warn}]}}\n"),
     "families.eSR-MAX.constraints[0].on_violation: expected error or skip, got 'warn'"),
    ("family_param", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: {low: 1, high: many}}}}\n",
     "families.eSR-MAX.hparams.C.high: expected a number, got 'many'"),
    ("family_param_in_a_sub_grid", "scales: [2]\nfamilies: {ESPCN: {grid: [{D: [1], S: [3]}, {D: [2], S: [[6]]}]}}\n",
     "families.ESPCN.grid[1].S[0]: expected a number, text, true/false or a {type: ...} object, got a list of 1 item"),
    ("budget_override", HEADER + "fixed: {budget: {steps: 10, overrides: {IMDN: {lr: fast}}}}\n",
     "fixed.budget.overrides.IMDN.lr: expected a number, got 'fast'"),
    ("scale_bound", "scales: [2, 32]\nfamilies: {Bicubic: {}}\n",
     "scales[1]: scale 32 is too large (at most 16)"),
    ("numeric_text", "scales: [2]\nfamilies: {AdaDSR: {hparams: {lam: {low: 1e-3, high: 0.1}}}}\n",
     "families.AdaDSR.hparams.lam.low: expected a number, got '1e-3' (YAML reads 1e-3 as text; write 1.0e-3)"),
    ("infinite_number", "scales: [2]\nfamilies: {AdaDSR: {hparams: {lam: {low: 0.001, high: .inf}}}}\n",
     "families.AdaDSR.hparams.lam.high: expected a finite number, got inf"),
    ("not_a_mapping", "- Bicubic\n", "expected a mapping, got a list of 1 item"),
]


def test_a_valid_space_file_passes(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(HEADER + "fixed: {budget: {base: smoke, steps: 5, lr: 1e-3}, seed: 3, protocol: null}\n")
    space = load_space(path)
    assert space.fixed.seed == 3 and space.fixed.budget["lr"] == 0.001  # 1e-3: text to YAML 1.1


# ---------------------------------------------------------------- device profiles

DEVICE_CASES = [
    ("wrong_type", "name: x\nwarmup: two\n", "warmup: expected an integer, got 'two'"),
    ("unknown_key", "name: x\nrepeat: 5\n", "repeat: unknown key (did you mean repeats?)"),
    ("missing_required", "dtype: float16\n", "name: missing (required: the device's name, e.g. jetson)"),
    ("bad_enum", "name: x\ndtype: float64\n",
     "dtype: expected one of float32, float16, bfloat16, got 'float64' (did you mean float16?)"),
    ("nested", "name: x\noutput_size: [1080, -1]\n", "output_size[1]: must be >= 1, got -1"),
    ("list_length", "name: x\noutput_size: [1080]\n", "output_size: expected [height, width] in pixels, got a list of 1 item"),
    ("not_a_mapping", "- cpu\n", "expected a device profile (a mapping of keys to values), got a list of 1 item"),
]


def test_a_valid_device_profile_passes(tmp_path):
    path = tmp_path / "board.yaml"
    path.write_text("name: board\naliases: [b1]\ndtype: float16\noutput_size: [270, 480]\nthreads: null\n"
                    "warmup: 0\nrepeats: 3\n")
    profile = _profile_from_file(path)
    assert profile.output_size == (270, 480) and profile.threads is None and profile.aliases == ("b1",)


def test_the_device_schema_has_every_profile_field():
    assert set(DEVICE_SCHEMA["properties"]) == {f.name for f in fields(DeviceProfile)} - {"path"}


@pytest.mark.timeout(60)
def test_cli_bad_device_profile_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: bad\nrepeat: 5\n")
    proc = subprocess.run([sys.executable, "-m", "search.profile", "devices"], check=False, cwd=REPO_ROOT,
                          env={**os.environ, "SR_DEVICES_DIR": str(tmp_path)},
                          capture_output=True, text=True, timeout=50)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"error: {tmp_path / 'bad.yaml'}: repeat: unknown key (did you mean repeats?)"


# ---------------------------------------------------------------- params.yaml budgets

PARAMS_CASES = [
    ("wrong_type", "budgets:\n  tiny: {steps: many}\n", "budgets.tiny.steps: expected an integer, got 'many'"),
    ("unknown_key", "budgets:\n  tiny: {stpes: 5}\n", "budgets.tiny.stpes: unknown key (did you mean steps?)"),
    ("missing_required", "studies: {seed: 0}\n",
     "budgets: missing (required: the training budgets, e.g. smoke, quick, paper)"),
    ("bad_enum", "budgets:\n  tiny: {lr_schedule: cosin}\n",
     "budgets.tiny.lr_schedule: expected one of constant, cosine, step, got 'cosin' (did you mean cosine?)"),
    ("bound", "budgets:\n  tiny: {final_loss_window: 1.5}\n", "budgets.tiny.final_loss_window: must be <= 1, got 1.5"),
    ("override_value", "budgets:\n  tiny:\n    steps: 5\n    overrides:\n      IMDN: {lr: -0.1}\n",
     "budgets.tiny.overrides.IMDN.lr: must be > 0, got -0.1"),
    ("override_key", "budgets:\n  tiny:\n    overrides:\n      eSR-*: {patch: 32}\n",
     "budgets.tiny.overrides.eSR-*.patch: unknown key (did you mean patch_size?)"),
    ("integer_as_text", "budgets:\n  tiny: {steps: 1e3}\n",
     "budgets.tiny.steps: expected an integer, got '1e3' (YAML reads 1e3 as text; write 1.0e+3)"),
    ("betas", "budgets:\n  tiny: {betas: [0.9]}\n",
     "budgets.tiny.betas: expected a list of two numbers [beta1, beta2], got a list of 1 item"),
]


def test_a_valid_params_file_passes(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("budgets:\n  tiny: {steps: 5, lr: 1e-3, batch_size: 2.0}\nstudies: {anything: [1, 2]}\n")
    budget = load_budget("tiny", path)
    assert budget["lr"] == 0.001 and budget["batch_size"] == 2 and isinstance(budget["batch_size"], int)


def test_a_budget_given_as_a_mapping_names_itself():
    with pytest.raises(UserError) as info:
        resolve_budget({"stpes": 3})
    assert error_line(info) == "budget '<custom>': stpes: unknown key (did you mean steps?)"
    with pytest.raises(UserError) as info:
        resolve_budget({"base": "smoke", "lr": 0})
    assert error_line(info) == "budget 'smoke+lr=0': lr: must be > 0, got 0"


def test_the_budget_schema_has_every_budget_key_and_its_defaults_pass():
    assert list(BUDGET_SETTINGS) == list(BUDGET_DEFAULTS)
    assert find_problem(BUDGET_DEFAULTS, BUDGET_SCHEMA) is None


# ---------------------------------------------------------------- every format: file, key path, problem

READERS = {"space": (load_space, SpaceError), "device": (_profile_from_file, UserError),
           "params": (list_budgets, UserError)}
CASES = ([("space", *case) for case in SPACE_CASES] + [("device", *case) for case in DEVICE_CASES]
         + [("params", *case) for case in PARAMS_CASES])


@pytest.mark.parametrize("kind,case,text,expected", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_an_error_is_one_line_naming_file_key_path_and_problem(tmp_path, kind, case, text, expected):
    read, error = READERS[kind]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    with pytest.raises(error) as info:
        read(path)
    assert error_line(info) == f"{path}: {expected}"


# ---------------------------------------------------------------- the shipped files

SCHEMAS = {"space": SPACE_SCHEMA, "device": DEVICE_SCHEMA, "budget": BUDGET_SCHEMA, "params": PARAMS_SCHEMA}


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_schema_is_a_valid_draft_2020_12_schema(name):
    jsonschema.Draft202012Validator.check_schema(SCHEMAS[name])


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "spaces").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_space_validates(path):
    assert find_problem(load_yaml(path.read_text()), SPACE_SCHEMA) is None
    load_space(path)


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "devices").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_device_profile_validates(path):
    assert find_problem(load_yaml(path.read_text()), DEVICE_SCHEMA) is None
    _profile_from_file(path)


def test_the_shipped_params_file_validates():
    assert find_problem(load_yaml((REPO_ROOT / "params.yaml").read_text()), PARAMS_SCHEMA) is None
    for name in list_budgets():
        load_budget(name)


# ---------------------------------------------------------------- the validator itself

OBJECT = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
          "additionalProperties": {"type": "integer"}}


@pytest.mark.parametrize("data,expected", [
    ({"a": "x", "b": "y"}, Problem("a", "expected an integer, got 'x'")),
    ({"b": "y", "a": "x"}, Problem("b", "expected an integer, got 'y'")),
    ({2: "x", "k": "y"}, Problem("2", "expected an integer, got 'x'")),  # keys of mixed types
    ({"a": 1, "c": [1]}, Problem("c", "expected an integer, got a list of 1 item")),
    ({"a": float("nan")}, Problem("a", "expected an integer, got nan")),
], ids=["first_sibling", "first_sibling_reversed", "mixed_key_types", "additional", "nan"])
def test_of_several_errors_the_first_in_the_document_is_reported(data, expected):
    assert find_problem(data, OBJECT) == expected


def test_numbers_are_finite():
    assert find_problem(float("inf"), {"type": "number"}) == Problem("", "expected a finite number, got inf")
    assert find_problem(True, {"type": "number"}) == Problem("", "expected a number, got true")
    assert find_problem(2.0, {"type": "integer"}) is None


def test_validate_names_file_place_and_label():
    with pytest.raises(SpaceError) as info:
        validate({"x": 1}, {"additionalProperties": False, "properties": {"y": {}}}, source="f.yaml",
                 at="fixed.budget", error=SpaceError)
    assert error_line(info) == "f.yaml: fixed.budget.x: unknown key (allowed here: y)"
    with pytest.raises(UserError) as info:
        validate([1, "2"], {"items": {"type": "integer"}}, what="budget 'b'")
    assert error_line(info) == "budget 'b': [1]: expected an integer, got '2' (a number in quotes is text; " \
                               "write it without quotes)"
    validate({"y": 1}, {"additionalProperties": False, "properties": {"y": {}}}, source="f.yaml")
