"""Training budgets (search/train/budgets.py): params.yaml's ``budgets:``, the defaults, the
family-declared changes, the budget's own ``overrides:``, validation and learning-rate schedules.

Every expected value is written by hand: params.yaml files written here in ``tmp_path``, a
registry holding only the test families below, the defaults as the module documents them,
learning rates worked out from the schedule formulas (comments), error lines as a user reads them.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from search.errors import UserError
from search.models import registry
from search.train import budgets
from search.train.budgets import (
    Budget,
    family_budget_overrides,
    get_budget,
    learning_rate_at,
    list_budgets,
    load_budget,
    numbers_from_text,
    resolve_budget,
    validate_budget,
)

# The defaults a budget gets for every key it does not set (the module's documented table).
DEFAULTS = {
    "steps": 1000, "batch_size": 16, "patch_size": 64, "lr": 0.001, "lr_schedule": "cosine",
    "min_lr": 0.0, "warmup_steps": 0, "milestones": [], "gamma": 0.5, "weight_decay": 0.0,
    "betas": [0.9, 0.999], "grad_clip": 0.0, "augment": True, "loss_border": 0,
    "final_loss_window": 0.1, "sampling": "patches", "pixels_per_step": 4096,
}

PARAMS = """\
studies: {seed: 0}      # not ours: left alone
budgets:
  quick:
    steps: 3000
    lr: 1e-3            # YAML 1.1 reads this as the text '1e-3'; a budget takes it as 0.001
    patch_size: 96
    overrides:
      Fam*: {lr: 0.002}
      fam: {batch_size: 4}
      Other: {steps: 7}
  paper:
    steps: 1000000
    lr_schedule: step
    milestones: [0.5, 0.75]
  smoke: {}
"""


def _builder(scale: int):
    """A test family."""


@pytest.fixture
def families(monkeypatch):
    """A registry with only the test families: ``Fam`` declares changes under ``quick`` (and an
    empty entry under ``paper``); ``Bad`` declares an invalid one; ``Nofile`` too, without a file."""
    monkeypatch.setattr(registry, "_FAMILIES", {})
    monkeypatch.setattr(registry, "_ALIASES", {})
    monkeypatch.setattr(registry, "_LOADED", True)
    registry.register_family("Fam", budget_overrides={
        "quick": {"steps": 300, "lr": 0.03, "batch_size": 8.0}, "paper": {}})(_builder)
    registry.register_family("Bad", budget_overrides={"quick": {"lr": 0}})(_builder)
    registry._FAMILIES["Nofile"] = dataclasses.replace(registry._FAMILIES["Bad"], name="Nofile", source_file="")


@pytest.fixture
def params(tmp_path, monkeypatch, families):
    """params.yaml as above, also made the default file."""
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS)
    monkeypatch.setattr(budgets, "PARAMS_FILE", path)
    return path


def _write(tmp_path, text: str):
    path = tmp_path / "other.yaml"
    path.write_text(text)
    return path


def _error(call, *args, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        call(*args, **kwargs)
    return str(info.value)


# --- defaults, settings, validation -------------------------------------------------------

def test_empty_budget_gets_every_default():
    assert validate_budget({}) == {**DEFAULTS, "overrides": {}, "name": "<budget>"}
    assert resolve_budget({}) == {**DEFAULTS, "name": "<custom>", "overrides_applied": []}


def test_defaults_are_copies():
    first = validate_budget({})
    first["milestones"].append(0.5)
    first["betas"][0] = 0.0
    assert validate_budget({})["milestones"] == [] and validate_budget({})["betas"] == [0.9, 0.999]


# (key, accepted value, value it becomes): the bounds' edges and the int/float conversion
ACCEPTED = [
    ("steps", 1, 1), ("steps", 2.0, 2),
    ("batch_size", 1, 1), ("batch_size", 8.0, 8),
    ("patch_size", 1, 1), ("patch_size", 48.0, 48),
    ("lr", 1e-9, 1e-9), ("lr", 1, 1.0),
    ("lr_schedule", "constant", "constant"), ("lr_schedule", "step", "step"),
    ("min_lr", 0, 0.0),
    ("warmup_steps", 0, 0), ("warmup_steps", 5.0, 5),
    ("milestones", [0, 0.5, 10], [0, 0.5, 10]),
    ("gamma", 1e-9, 1e-9), ("gamma", 1, 1.0),
    ("weight_decay", 0, 0.0),
    ("betas", [0, 0.999], [0, 0.999]),
    ("grad_clip", 0, 0.0),
    ("augment", False, False),
    ("loss_border", 0, 0), ("loss_border", 4.0, 4),
    ("final_loss_window", 1e-9, 1e-9), ("final_loss_window", 1, 1.0),
    ("sampling", "pixels", "pixels"),
    ("pixels_per_step", 1, 1), ("pixels_per_step", 1024.0, 1024),
]


@pytest.mark.parametrize("key, value, expected", ACCEPTED, ids=[f"{k}={v}" for k, v, _ in ACCEPTED])
def test_setting_accepted_and_made_int_or_float(key, value, expected):
    resolved = validate_budget({key: value}, name="b")
    assert resolved == {**DEFAULTS, key: expected, "overrides": {}, "name": "b"}
    assert type(resolved[key]) is type(expected)


# (key, rejected value, the problem in the error line): each bound from its rejected side
REJECTED = [
    ("steps", 0, "must be >= 1, got 0"),
    ("steps", 2.5, "expected an integer, got 2.5"),
    ("steps", "1e3", "expected an integer, got '1e3' (YAML reads 1e3 as text; write 1.0e+3)"),
    ("batch_size", 0, "must be >= 1, got 0"),
    ("patch_size", 0, "must be >= 1, got 0"),
    ("lr", 0, "must be > 0, got 0"),
    ("lr", "fast", "expected a number, got 'fast'"),
    ("lr", math.inf, "expected a finite number, got inf"),
    ("lr_schedule", "linear", "expected one of constant, cosine, step, got 'linear'"),
    ("min_lr", -0.1, "must be >= 0, got -0.1"),
    ("warmup_steps", -1, "must be >= 0, got -1"),
    ("gamma", 0, "must be > 0, got 0"),
    ("weight_decay", -0.1, "must be >= 0, got -0.1"),
    ("grad_clip", -1, "must be >= 0, got -1"),
    ("augment", "yes", "expected true or false, got 'yes'"),
    ("loss_border", -1, "must be >= 0, got -1"),
    ("final_loss_window", 0, "must be > 0, got 0"),
    ("final_loss_window", 1.5, "must be <= 1, got 1.5"),
    ("sampling", "pixel", "expected patches or pixels, got 'pixel' (did you mean pixels?)"),
    ("pixels_per_step", 0, "must be >= 1, got 0"),
]


@pytest.mark.parametrize("key, value, problem", REJECTED, ids=[f"{k}={v}" for k, v, _ in REJECTED])
def test_setting_rejected_with_one_line(key, value, problem):
    assert _error(validate_budget, {key: value}, name="b") == f"budget 'b': {key}: {problem}"


@pytest.mark.parametrize("value, where, problem", [
    ([0.5, -1], "milestones[1]", "must be >= 0, got -1"),
    ([0.9, 1], "betas[1]", "must be < 1, got 1"),
    ([-0.1, 0.5], "betas[0]", "must be >= 0, got -0.1"),
    ([0.9], "betas", "expected a list of two numbers [beta1, beta2], got a list of 1 item"),
    ([0.9, 0.99, 0.5], "betas", "expected a list of two numbers [beta1, beta2], got a list of 3 items"),
])
def test_list_settings_rejected_with_their_item(value, where, problem):
    key = where.split("[")[0]
    assert _error(validate_budget, {key: value}, name="b") == f"budget 'b': {where}: {problem}"


def test_unknown_key_lists_the_allowed_ones_but_not_the_code_set_keys():
    # name / overrides_applied are set by the code (accepted, never advertised)
    allowed = ("steps, batch_size, patch_size, lr, lr_schedule, min_lr, warmup_steps, milestones, gamma, "
               "weight_decay, betas, grad_clip, augment, loss_border, final_loss_window, sampling, "
               "pixels_per_step, overrides")
    assert _error(validate_budget, {"zzz": 1}) == f"budget '<budget>': zzz: unknown key (allowed here: {allowed})"
    assert _error(validate_budget, {"stpes": 1}, name="q") == "budget 'q': stpes: unknown key (did you mean steps?)"


def test_budget_and_overrides_must_be_mappings():
    assert _error(validate_budget, 5) == (
        "budget '<budget>': expected a budget (a mapping of settings such as steps, lr), got 5")
    assert _error(validate_budget, {"overrides": 5}) == (
        "budget '<budget>': overrides: expected a mapping {family or pattern: {key: value}}, got 5")
    assert _error(validate_budget, {"overrides": {"IMDN": 5}}) == (
        "budget '<budget>': overrides.IMDN: expected a mapping, got 5")
    assert _error(validate_budget, {"overrides": {"IMDN": {"lr": 0}}}, name="q", source="p.yaml") == (
        "p.yaml: budget 'q': overrides.IMDN.lr: must be > 0, got 0")


def test_float_settings_written_as_text_become_numbers_also_in_overrides():
    budget = {"lr": "1e-3", "min_lr": " 2E-5 ", "steps": 10, "overrides": {"X": {"lr": "5e-4"}, "Y": {}}}
    resolved = validate_budget(budget, name="b")
    assert resolved["lr"] == 0.001 and resolved["min_lr"] == 2e-5
    assert resolved["overrides"] == {"X": {"lr": 0.0005}, "Y": {}}
    assert budget["lr"] == "1e-3" and budget["overrides"]["X"]["lr"] == "5e-4"  # the input is left as it was
    assert numbers_from_text({"lr": "1e-3", "steps": "3"}) == {"lr": 0.001, "steps": "3"}  # float keys only
    assert numbers_from_text("quick") == "quick" and numbers_from_text(None) is None


def test_null_or_missing_overrides_are_none():
    assert validate_budget({"overrides": None})["overrides"] == {}
    assert validate_budget({"steps": 5})["overrides"] == {}


def test_resolved_budget_is_a_valid_budget_again(families):
    resolved = resolve_budget({"steps": 5, "name": "mine", "overrides": {"X": {"lr": 0.5}}}, "X")
    assert resolved == {**DEFAULTS, "steps": 5, "lr": 0.5, "name": "mine", "overrides_applied": ["X"]}
    again = validate_budget(resolved, name="again")
    assert again == {**DEFAULTS, "steps": 5, "lr": 0.5, "overrides": {}, "name": "again"}


# --- params.yaml ------------------------------------------------------------------------------

QUICK = {**DEFAULTS, "steps": 3000, "lr": 0.001, "patch_size": 96}
QUICK_OVERRIDES = {"Fam*": {"lr": 0.002}, "fam": {"batch_size": 4}, "Other": {"steps": 7}}


def test_list_budgets_sorted_from_the_given_or_default_file(params, tmp_path):
    assert list_budgets(params) == ["paper", "quick", "smoke"]
    assert list_budgets() == ["paper", "quick", "smoke"]
    assert list_budgets(str(_write(tmp_path, "budgets: {b: {}, a: {steps: 2}}"))) == ["a", "b"]


def test_load_budget_fills_defaults_and_keeps_overrides(params):
    expected = {**QUICK, "overrides": QUICK_OVERRIDES, "name": "quick"}
    assert load_budget("quick", params) == expected
    assert load_budget("quick") == expected  # the default file
    assert load_budget("smoke") == {**DEFAULTS, "overrides": {}, "name": "smoke"}


def test_unknown_budget_names_the_close_and_the_known_ones(params, tmp_path):
    assert _error(load_budget, "quik") == (
        f"{params}: unknown training budget 'quik' (did you mean quick?); known: paper, quick, smoke")
    assert _error(load_budget, "zzz") == f"{params}: unknown training budget 'zzz'; known: paper, quick, smoke"
    path = _write(tmp_path, "budgets: {fast1: {}, fast2: {}, fast3: {}}")
    # at most two suggestions; equally close ones come last name first (difflib)
    assert _error(load_budget, "fast", path) == (
        f"{path}: unknown training budget 'fast' (did you mean fast3, fast2?); known: fast1, fast2, fast3")


@pytest.mark.parametrize("text, problem", [
    ("", "budgets: missing (required: the training budgets, e.g. smoke, quick, paper)"),
    ("studies: {}\n", "budgets: missing (required: the training budgets, e.g. smoke, quick, paper)"),
    ("- 1\n", "expected a mapping, got a list of 1 item"),
    ("budgets: [1, 2]\n", "budgets: expected a mapping, got a list of 2 items"),
    ("budgets: {q: 5}\n", "budgets.q: expected a budget (a mapping of settings such as steps, lr), got 5"),
    ("budgets: {q: {lr: 0}}\n", "budgets.q.lr: must be > 0, got 0"),
    ("budgets: {q: {overrides: {IMDN: {lr: -1e-3}}}}\n", "budgets.q.overrides.IMDN.lr: must be > 0, got -0.001"),
    ("budgets: {q: {overrides: {IMDN: 3}}}\n", "budgets.q.overrides.IMDN: expected a mapping, got 3"),
])
def test_bad_params_file_is_one_line_naming_the_key(tmp_path, text, problem):
    path = _write(tmp_path, text)
    assert _error(list_budgets, path) == f"{path}: {problem}"


def test_missing_or_unparsable_params_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert _error(load_budget, "quick", missing) == f"{missing}: params file not found"
    path = _write(tmp_path, "budgets: [\n  quick\n")
    message = _error(load_budget, "quick", path)
    assert message.startswith(f"{path}: invalid YAML (") and message.endswith(")") and "\n" not in message


# --- family changes and overrides: defaults < params.yaml budget < family < overrides < base dict --

def test_precedence_defaults_budget_family_then_overrides_in_file_order(params):
    resolved = resolve_budget("quick", "Fam")
    # steps: 3000 (budget) -> 300 (family); lr: 0.001 -> 0.03 (family) -> 0.002 (Fam*);
    # batch_size: 16 (default) -> 8 (family, 8.0 made int) -> 4 (fam, case-insensitive)
    assert resolved == {**QUICK, "steps": 300, "lr": 0.002, "batch_size": 4, "name": "quick",
                        "overrides_applied": ["Fam (family)", "Fam*", "fam"]}
    assert type(resolved["batch_size"]) is int


def test_without_family_only_the_budget(params):
    assert resolve_budget("quick") == {**QUICK, "name": "quick", "overrides_applied": []}
    assert resolve_budget("quick", None) == resolve_budget("quick")


def test_unregistered_family_gets_matching_overrides_only(params):
    assert resolve_budget("quick", "Famous") == {**QUICK, "lr": 0.002, "name": "quick", "overrides_applied": ["Fam*"]}
    assert resolve_budget("quick", "Nobody") == {**QUICK, "name": "quick", "overrides_applied": []}


def test_family_declaring_nothing_for_the_budget_changes_nothing(params):
    paper = {**DEFAULTS, "steps": 1000000, "lr_schedule": "step", "milestones": [0.5, 0.75], "name": "paper"}
    assert resolve_budget("paper", "Fam") == {**paper, "overrides_applied": []}
    assert resolve_budget("smoke", "Fam") == {**DEFAULTS, "name": "smoke", "overrides_applied": []}


def test_family_budget_overrides_checked_and_converted(families):
    declared = family_budget_overrides("Fam", "quick")
    assert declared == {"steps": 300, "lr": 0.03, "batch_size": 8}
    assert type(declared["batch_size"]) is int and type(declared["lr"]) is float
    assert family_budget_overrides("Fam", "paper") == {}
    assert family_budget_overrides("Fam", "smoke") == {}
    assert family_budget_overrides("Nobody", "quick") == {}


def test_invalid_family_declaration_names_the_family_and_its_file(families):
    assert _error(family_budget_overrides, "Bad", "quick") == (
        f"{__file__}: budget 'quick (family Bad)': lr: must be > 0, got 0")
    assert _error(resolve_budget, {"name": "quick"}, "Bad") == (
        f"{__file__}: budget 'quick (family Bad)': lr: must be > 0, got 0")
    assert _error(family_budget_overrides, "Nofile", "quick") == "budget 'quick (family Nofile)': lr: must be > 0, got 0"


def test_base_dict_changes_come_last(params):
    resolved = resolve_budget({"base": "quick", "lr": 0.1, "steps": 12.0}, "Fam")
    assert resolved == {**QUICK, "steps": 12, "lr": 0.1, "batch_size": 4, "name": "quick+lr=0.1,steps=12.0",
                        "overrides_applied": ["Fam (family)", "Fam*", "fam"]}
    assert type(resolved["steps"]) is int
    # a name of its own; a resolved budget's keys do not count as changes
    named = resolve_budget({"base": "smoke", "name": "mine", "overrides_applied": ["x"], "batch_size": 2})
    assert named == {**DEFAULTS, "batch_size": 2, "name": "mine", "overrides_applied": []}


def test_base_dict_errors(params):
    assert _error(resolve_budget, {"base": "quick", "stpes": 5}) == (
        "budget 'quick+stpes=5': stpes: unknown key (did you mean steps?)")
    assert _error(resolve_budget, {"base": "nope", "steps": 3}) == (
        f"{params}: unknown training budget 'nope'; known: paper, quick, smoke")


def test_overrides_match_family_patterns_case_insensitively(families):
    custom = {"overrides": {"ESR-*": {"loss_border": 3}, "esr-tr": {"lr": 0.5}}}
    assert resolve_budget(custom, "eSR-TR") == {**DEFAULTS, "loss_border": 3, "lr": 0.5, "name": "<custom>",
                                                "overrides_applied": ["ESR-*", "esr-tr"]}
    assert resolve_budget(custom, "eSR-TM")["overrides_applied"] == ["ESR-*"]


# --- Budget, get_budget -----------------------------------------------------------------------

def test_budget_object_is_frozen_equal_by_settings_hashed_by_name():
    one, two = Budget("q", {"steps": 1}), Budget("q", {"steps": 2})
    assert one != two and one == Budget("q", {"steps": 1})
    assert hash(one) == hash(two)
    assert str(one) == "q"
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.name = "x"


def test_get_budget_from_name_mapping_or_budget(params):
    quick = get_budget("quick")
    assert quick == Budget("quick", {**QUICK, "overrides": QUICK_OVERRIDES, "name": "quick"})
    assert get_budget(quick) is quick
    assert quick.for_family("Fam") == resolve_budget("quick", "Fam")
    assert quick.for_family(None) == {**QUICK, "name": "quick", "overrides_applied": []}
    based = {"base": "quick", "lr": 0.1}
    assert get_budget(based) == Budget("quick", based)
    assert get_budget(based).settings is not based
    assert get_budget({**based, "name": "mine"}).name == "mine"
    assert get_budget({"steps": 5, "name": "tiny"}) == Budget("tiny", {**DEFAULTS, "steps": 5, "overrides": {},
                                                                       "name": "tiny"})
    assert get_budget({"steps": 5}).name == "<custom>"


def test_get_budget_checks_at_once(params):
    assert _error(get_budget, 3) == "a training budget is a name or a mapping, not int"
    assert _error(get_budget, {"base": "quick", "lr": 0}) == "budget 'quick+lr=0': lr: must be > 0, got 0"
    assert _error(get_budget, "quik").endswith("unknown training budget 'quik' (did you mean quick?); "
                                                "known: paper, quick, smoke")


# --- learning-rate schedules -----------------------------------------------------------------

COSINE = {"steps": 100, "lr": 1.0, "lr_schedule": "cosine"}  # no min_lr, no warm-up: their defaults
SCHEDULES = [
    ({"steps": 10, "lr": 0.5, "lr_schedule": "constant"}, [(0, 0.5), (9, 0.5), (20, 0.5)]),
    # lr * (1 + cos(pi * step / steps)) / 2: 1, (1 + cos(pi/4)) / 2 = 0.8535534, 0.5, 0; past the end 0
    (COSINE, [(0, 1.0), (25, 0.8535534), (50, 0.5), (100, 0.0), (150, 0.0)]),
    # min_lr 0.1: 0.1 + 0.45 * (1 + cos(.)): step 25 -> 0.1 + 0.45 * 1.7071068 = 0.8681981, 50 -> 0.55
    ({**COSINE, "min_lr": 0.1}, [(0, 1.0), (25, 0.8681981), (50, 0.55), (100, 0.1), (150, 0.1)]),
    # warm-up 4 steps to lr 2: 2 * (step + 1) / 4; then cosine over the remaining 100 steps
    ({"steps": 104, "lr": 2.0, "lr_schedule": "cosine", "warmup_steps": 4},
     [(0, 0.5), (1, 1.0), (3, 2.0), (4, 2.0), (54, 1.0), (104, 0.0)]),
    # steps = warm-up + 1: the cosine spans one step
    ({"steps": 5, "lr": 1.0, "lr_schedule": "cosine", "warmup_steps": 4}, [(4, 1.0), (5, 0.0)]),
    # steps = warm-up: the cosine part still spans (at least) one step, no division by zero
    ({"steps": 4, "lr": 1.0, "lr_schedule": "cosine", "warmup_steps": 4}, [(3, 1.0), (4, 1.0), (5, 0.0)]),
    # one step: done = step / 1
    ({"steps": 1, "lr": 1.0, "lr_schedule": "cosine"}, [(0, 1.0), (1, 0.0)]),
    # step: 0.5 is a fraction (step 50), 80 an absolute step; gamma 0.1 at each
    ({"steps": 100, "lr": 1.0, "lr_schedule": "step", "milestones": [0.5, 80], "gamma": 0.1},
     [(0, 1.0), (49, 1.0), (50, 0.1), (79, 0.1), (80, 0.01), (1000, 0.01)]),
    # 1 is an absolute step, not "the whole budget"; gamma defaults to 0.5
    ({"steps": 100, "lr": 1.0, "lr_schedule": "step", "milestones": [1]}, [(0, 1.0), (1, 0.5), (99, 0.5)]),
    ({"steps": 100, "lr": 1.0, "lr_schedule": "step"}, [(0, 1.0), (99, 1.0)]),  # no milestones
    # steps 0 counts as 1: milestone 0.5 is step 0.5, passed at step 1
    ({"steps": 0, "lr": 1.0, "lr_schedule": "step", "milestones": [0.5]}, [(0, 1.0), (1, 0.5)]),
]


@pytest.mark.parametrize("budget, expected", SCHEDULES, ids=[f"{b['lr_schedule']}-{i}" for i, (b, _) in
                                                             enumerate(SCHEDULES)])
def test_learning_rate_at(budget, expected):
    got = [(step, learning_rate_at(step, budget)) for step, _ in expected]
    assert got == [(step, pytest.approx(lr, abs=1e-7)) for step, lr in expected]


def test_whole_numbers_in_params_overrides_become_int_as_everywhere_else():
    # `steps: 300.0` under a budget's overrides: the trainer needs an int (range(steps)); before
    # the fix the checked value was thrown away and the float reached the trainer
    resolved = validate_budget({"steps": 10, "overrides": {"X": {"steps": 300.0, "batch_size": 8.0}}}, name="b")
    assert resolved["overrides"] == {"X": {"steps": 300, "batch_size": 8}}
    assert type(resolved["overrides"]["X"]["steps"]) is int and type(resolved["overrides"]["X"]["batch_size"]) is int
