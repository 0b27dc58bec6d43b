"""Hostile space files: each is one SpaceError line within about a second.

Regression tests for a reliability probe: YAML alias bombs, huge powers in constraints,
huge or fine-stepped grids, deep nesting, duplicate keys, a file name with a space, and
settings that used to fail only per trial after full training (protocol, budget, data sets).
Never a hang, a MemoryError, a RecursionError or a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from search.errors import SpaceError
from search.paths import REPO_ROOT
from search.space import check_data_sets, load_space
from search.space.constraints import MAX_EXPONENT, MAX_EXPRESSION_CHARS, MAX_EXPRESSION_DEPTH
from search.space.loader import MAX_CONSTRAINT_WORK, MAX_FILE_BYTES, MAX_SCALE, MAX_SEED
from search.space.safe_yaml import MAX_YAML_DEPTH
from search.space.space import MAX_GRID_CONFIGURATIONS

# A hostile file must be refused within this many seconds (the loader aims at well under
# one; the margin is for a loaded 2-core CI machine).
QUICK_S = 2.0

ESR_SPACE = REPO_ROOT / "spaces" / "esr.yaml"
HEADER = "scales: [2]\nfamilies: {Bicubic: {}}\n"


@pytest.fixture(scope="module", autouse=True)
def _warm_imports():
    """Import what the loader imports lazily (torch via the model registry, the protocols,
    the budgets) so that the timings below measure the loader, not the first import."""
    load_space(ESR_SPACE)


def write_space(tmp_path, text: str, name: str = "space.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def refused(path, *expected: str) -> str:
    """Load ``path``: one-line SpaceError naming the file and each ``expected`` text, quickly."""
    start = time.perf_counter()
    with pytest.raises(SpaceError) as info:
        load_space(path)
    elapsed = time.perf_counter() - start
    message = str(info.value)
    assert elapsed < QUICK_S, f"{elapsed:.1f} s: {message}"
    assert "\n" not in message and message.startswith(f"{path}: "), message
    for text in expected:
        assert text in message, message
    return message


def alias_bomb(indent: str) -> str:
    """The "billion laughs" document: 9 levels of 9 aliases each, 9**9 values once expanded."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(indent + line for line in lines)


# ---------------------------------------------------------------- 1. YAML alias bombs

@pytest.mark.timeout(10)
def test_alias_bomb_in_description_is_refused_before_expanding(tmp_path):
    path = write_space(tmp_path, HEADER + "description:\n" + alias_bomb("  ") + "\n")
    assert path.stat().st_size < 500
    refused(path, "invalid YAML: line", "anchors and aliases")


@pytest.mark.timeout(10)
def test_alias_bomb_in_a_type_object_is_refused(tmp_path):
    path = write_space(tmp_path, "scales: [2]\nbombs:\n" + alias_bomb("  ") + "\n" + textwrap.dedent("""\
        families:
          SMSR:
            hparams:
              tau_schedule: {type: linear, initial: 1.0, final: *i}
        """))
    refused(path, "anchors and aliases")


def test_a_plain_alias_is_refused_too(tmp_path):
    path = write_space(tmp_path, "scales: &s [2]\nfamilies: {Bicubic: {scales: *s}}\n")
    refused(path, "line 1", "anchors and aliases")


# ---------------------------------------------------------------- 2. unbounded powers

def constraint_space(tmp_path, expression: str, c_values: str = "[2]"):
    return write_space(tmp_path, f"""
        scales: [2]
        families:
          eSR-MAX:
            hparams: {{K: [3], C: {c_values}}}
            constraints: [{{expr: {json.dumps(expression)}}}]
        """)


@pytest.mark.timeout(10)
def test_literal_huge_exponent_is_refused_at_load(tmp_path):
    path = constraint_space(tmp_path, "C ** 9999999999 > 0")
    refused(path, "families.eSR-MAX.constraints[0].expr: exponent 9999999999 too large",
            f"|exponent| <= {MAX_EXPONENT}")


@pytest.mark.timeout(10)
@pytest.mark.parametrize("expression,problem", [
    ("K ** (C * 10**9) > 0", "exponent 2000000000 is too large"),
    ("(C ** 60) ** 60 > 0", "exceeds 1024 bits"),
    ("C * 10**60 * 10**60 * 10**60 * 10**60 * 10**60 * 10**60 > 0", "exceeds 1024 bits"),
    ("round(C, -10**9) == 0", "round() digits"),
], ids=["computed_exponent", "tower", "product", "round_digits"])
def test_computed_huge_numbers_are_refused_per_configuration(tmp_path, expression, problem):
    refused(constraint_space(tmp_path, expression),
            "families.eSR-MAX.constraints[0].expr: cannot evaluate for eSR-MAX_s2_K3_C2", problem)


@pytest.mark.timeout(10)
def test_text_arithmetic_is_refused_instead_of_building_huge_strings(tmp_path):
    refused(constraint_space(tmp_path, "'x' * C * 10**9 == 'x'"), "arithmetic needs numbers")


def test_small_powers_still_work(tmp_path):
    path = constraint_space(tmp_path, "2 ** C <= 2 ** 16 and C ** -1 > 0", "[1, 2, 4]")
    assert len(load_space(path).enumerate()) == 3


# ---------------------------------------------------------------- 3. grid cardinality

@pytest.mark.timeout(10)
def test_tiny_float_step_is_refused_without_enumerating(tmp_path):
    path = write_space(tmp_path, """
        scales: [2]
        families:
          AdaDSR: {hparams: {D: [4], F: [16], lam: {low: 0.001, high: 0.1, step: 1.0e-300}}}
        """)
    refused(path, "families.AdaDSR.hparams.lam: about 10^",
            f"values; a grid dimension may have at most {MAX_GRID_CONFIGURATIONS:,}", "raise the step")


@pytest.mark.timeout(10)
def test_huge_integer_range_is_refused_not_a_memory_error(tmp_path):
    path = write_space(tmp_path, """
        scales: [2]
        families:
          eSR-MAX: {hparams: {K: [3], C: {low: 1, high: 100000000000}}}
        """)
    refused(path, "families.eSR-MAX.hparams.C: 100,000,000,000 values")


@pytest.mark.timeout(10)
def test_family_grid_product_over_the_limit(tmp_path):
    path = write_space(tmp_path, """
        scales: [2, 3]
        families:
          eSR-MAX: {hparams: {K: [3, 5, 7], C: {low: 1, high: 20000}}}
        """)
    refused(path, "families.eSR-MAX: 120,000 configurations; a family's grid may have at most")


@pytest.mark.timeout(10)
def test_whole_space_over_the_limit(tmp_path):
    families = "".join(f"  {f}: {{hparams: {{K: [3, 5], C: {{low: 1, high: 25000}}}}}}\n"
                       for f in ("eSR-MAX", "eSR-TM", "eSR-TR"))
    path = write_space(tmp_path, "scales: [2]\nfamilies:\n" + families)
    refused(path, "families: 150,000 configurations in all")


@pytest.mark.timeout(10)
def test_constraint_work_over_the_limit(tmp_path):
    expression = " and ".join(["C > 0"] * 20)
    path = constraint_space(tmp_path, expression, "{low: 1, high: 50000}")
    refused(path, "families.eSR-MAX.constraints: too costly to check on every grid point",
            f"{MAX_CONSTRAINT_WORK:,}")


@pytest.mark.timeout(10)
def test_continuous_range_with_wide_grid_dimensions_still_loads_and_samples(tmp_path):
    """Not enumerable, so never listed: the grid limits do not apply to its product."""
    import optuna

    from search.study.runner import DefineByRun

    path = write_space(tmp_path, """
        scales: [2, 3, 4]
        families:
          AdaDSR:
            hparams:
              D: {low: 1, high: 1000}
              F: {low: 1, high: 1000}
              lam: {low: 1.0e-300, high: 1.0e+300, log: true}
        """)
    start = time.perf_counter()
    space = load_space(path)
    assert time.perf_counter() - start < QUICK_S
    assert not space.enumerable and space.size is None
    with pytest.raises(SpaceError, match="a float range without step cannot be enumerated"):
        space.enumerate()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    config = DefineByRun(space)(study.ask())["trial_config"]
    assert 1 <= config["D"] <= 1000 and 1.0e-300 <= config["lam"] <= 1.0e300


def test_sampled_point_whose_constraint_cannot_be_evaluated_becomes_a_failed_trial(tmp_path):
    """Continuous families are not checked point by point at load: a bound hit while sampling
    is the trial's constraint error (the trial fails and the study goes on), not a crash."""
    import optuna

    path = write_space(tmp_path, """
        scales: [2]
        families:
          AdaDSR:
            hparams: {D: {low: 1, high: 100}, F: [16], lam: {low: 0.001, high: 0.1}}
            constraints: ["2 ** (D * 10) > 0"]
        """)
    space = load_space(path)
    config = space.suggest(optuna.trial.FixedTrial({"AdaDSR.D": 50, "AdaDSR.lam": 0.01}))
    assert "exponent 500 is too large" in config["constraint_error"]
    assert "constraint_error" not in space.suggest(optuna.trial.FixedTrial({"AdaDSR.D": 4, "AdaDSR.lam": 0.01}))


def test_grid_at_the_limit_loads(tmp_path):
    path = write_space(tmp_path, f"""
        scales: [2]
        families:
          eSR-MAX: {{hparams: {{K: [3], C: {{low: 1, high: {MAX_GRID_CONFIGURATIONS}}}}}}}
        """)
    assert load_space(path).size == MAX_GRID_CONFIGURATIONS


# ---------------------------------------------------------------- 4. length and depth

@pytest.mark.timeout(10)
def test_long_expression_is_refused(tmp_path):
    path = constraint_space(tmp_path, "not " * 10_000 + "C")
    refused(path, "families.eSR-MAX.constraints[0].expr: expression is 40001 characters long",
            f"at most {MAX_EXPRESSION_CHARS}")


@pytest.mark.timeout(10)
def test_deeply_nested_expression_is_refused(tmp_path):
    path = constraint_space(tmp_path, "not " * 100 + "C")
    refused(path, "families.eSR-MAX.constraints[0].expr: expression nested",
            f"at most {MAX_EXPRESSION_DEPTH}")


@pytest.mark.timeout(10)
def test_twenty_thousand_nots_file_is_refused(tmp_path):
    path = constraint_space(tmp_path, "not " * 20_000 + "C")
    refused(path, f"larger than {MAX_FILE_BYTES // 1024} KiB")


@pytest.mark.timeout(10)
@pytest.mark.parametrize("nested", ["[" * 20_000 + "]" * 20_000, "{a: " * 10_000 + "1" + "}" * 10_000],
                         ids=["lists", "mappings"])
def test_deeply_nested_yaml_is_refused(tmp_path, nested):
    path = write_space(tmp_path, HEADER + "description: " + nested + "\n")
    refused(path, "invalid YAML: line 3", f"nested more than {MAX_YAML_DEPTH} levels deep")


@pytest.mark.timeout(10)
def test_recursion_error_is_a_space_error_as_a_last_resort(tmp_path, monkeypatch):
    import search.space.loader as loader

    def explode(data, path):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(loader, "parse_space", explode)
    refused(write_space(tmp_path, HEADER), "too large or too deeply nested to check (RecursionError)")


@pytest.mark.timeout(10)
@pytest.mark.parametrize("value,problem", [
    ("1" * 5000, "cannot read the value"),
    ("2020-02-30", "day is out of range"),
], ids=["5000_digit_integer", "impossible_date"])
def test_unrepresentable_scalars_are_yaml_errors(tmp_path, value, problem):
    refused(write_space(tmp_path, HEADER + f"description: {value}\n"), "invalid YAML: line 3", problem)


@pytest.mark.timeout(10)
def test_a_huge_value_in_an_error_is_cut_to_a_readable_line(tmp_path):
    path = write_space(tmp_path, HEADER + "name: [" + "1, " * 10_000 + "1]\ndescription: " + "x" * 20_000 + "\n")
    assert len(refused(path, "name: expected a short name")) < 300
    path = write_space(tmp_path, "scales: [2]\nfamilies: {Bicubic: {}}\ndescription: [" + "x" * 60_000 + "]\n")
    assert len(refused(path, "description: expected text")) < 300


def test_many_choices_are_checked_for_duplicates_in_linear_time(tmp_path):
    choices = ", ".join(str(i) for i in range(10_000))
    path = write_space(tmp_path, f"scales: [2]\nfamilies: {{eSR-MAX: {{hparams: {{K: [3], C: [{choices}, 7]}}}}}}\n")
    refused(path, "families.eSR-MAX.hparams.C[10000]: duplicate choice 7")


# ---------------------------------------------------------------- 5. duplicate keys

@pytest.mark.parametrize("text,key,line,first", [
    ("scales: [2]\nfamilies:\n  eSR-MAX: {hparams: {K: [3], C: [1]}}\n  Bicubic: {}\n"
     "  eSR-MAX: {hparams: {K: [3], C: [2]}}\n", "eSR-MAX", 5, 3),
    ("scales: [2]\nfamilies:\n  eSR-MAX:\n    hparams:\n      K: [3]\n      C: [1]\n      K: [5]\n", "K", 7, 5),
    ("scales: [2]\nfamilies: {Bicubic: {}}\nscales: [3]\n", "scales", 3, 1),
], ids=["family", "hyper_parameter", "top_level"])
def test_duplicate_keys_are_refused(tmp_path, text, key, line, first):
    refused(write_space(tmp_path, text), f"invalid YAML: line {line}, column",
            f"duplicate key {key!r} (first given on line {first})")


def test_the_esr_grid_is_not_shrunk_by_a_repeated_family(tmp_path):
    text = ESR_SPACE.read_text() + "  eSR-MAX:\n    hparams: {K: [3], C: [1]}\n"
    refused(write_space(tmp_path, text), "duplicate key 'eSR-MAX'")


# ---------------------------------------------------------------- 6. default name

def test_default_name_from_a_file_name_with_spaces(tmp_path):
    space = load_space(write_space(tmp_path, HEADER, "my space.yaml"))
    assert space.name == "my-space"
    space = load_space(write_space(tmp_path, HEADER, " odd \t name .yaml"))
    assert space.name == "odd-name"


def test_an_explicit_name_with_a_space_is_still_refused(tmp_path):
    refused(write_space(tmp_path, "name: my space\n" + HEADER, "ok.yaml"), "name: expected a short name")


# ---------------------------------------------------------------- 7. settings checked at load

def test_unknown_protocol_is_refused_at_load(tmp_path):
    refused(write_space(tmp_path, HEADER + "fixed: {protocol: nonsense}\n"),
            "fixed.protocol: unknown protocol 'nonsense'", "standard")


def test_known_protocols_load(tmp_path):
    for protocol in ("standard", "esr", "standard-gray-y", "null"):
        load_space(write_space(tmp_path, HEADER + f"fixed: {{protocol: {protocol}}}\n"))


@pytest.mark.parametrize("budget,problem", [
    ("{steps: -5, lr: -1, bogus: 3}", "fixed.budget.bogus: unknown key"),
    ("{steps: -5}", "fixed.budget.steps: must be >= 1, got -5"),
    ("{lr: -1}", "fixed.budget.lr: must be > 0, got -1"),
    ("{steps: .inf}", "fixed.budget.steps: expected an integer, got inf"),
    ("{base: quick, steps: 0}", "fixed.budget.steps: must be >= 1, got 0"),
    ("{base: nonsense, steps: 10}", "fixed.budget: "),
    ("nonsense", "fixed.budget: "),
], ids=["unknown_key", "steps", "lr", "infinite_steps", "base_steps", "unknown_base", "unknown_name"])
def test_bad_budgets_are_refused_at_load(tmp_path, budget, problem):
    refused(write_space(tmp_path, HEADER + f"fixed: {{budget: {budget}}}\n"), problem,
            "unknown training budget 'nonsense'" if "nonsense" in budget else "")


def test_good_inline_budgets_load(tmp_path):
    for budget in ("{steps: 10, lr: 0.01}", "{base: smoke, steps: 5}", "smoke"):
        load_space(write_space(tmp_path, HEADER + f"fixed: {{budget: {budget}}}\n"))


def test_huge_scale_and_seed_are_refused_at_load(tmp_path):
    refused(write_space(tmp_path, "scales: [2, 99999999999999999999]\nfamilies: {Bicubic: {}}\n"),
            f"scales[1]: scale 99999999999999999999 is too large (at most {MAX_SCALE})")
    refused(write_space(tmp_path, HEADER + "fixed: {seed: 99999999999999999999}\n"),
            f"fixed.seed: expected a non-negative integer up to {MAX_SEED}")


def test_check_data_sets_finds_the_shipped_sets():
    check_data_sets(load_space(ESR_SPACE))


@pytest.mark.parametrize("field,sets", [
    ("train_sets", "{train_sets: [NoSuchSet]}"),
    ("test_sets", "{test_sets: [Set5, NoSuchSet], objectives: [psnr_Set5:max]}"),
])
def test_check_data_sets_names_the_missing_set(tmp_path, field, sets):
    path = write_space(tmp_path, HEADER + f"fixed: {sets}\n")
    space = load_space(path)  # the data root may still come from --data-root
    with pytest.raises(SpaceError) as info:
        check_data_sets(space)
    message = str(info.value)
    index = 0 if field == "train_sets" else 1
    assert message.startswith(f"{path}: fixed.{field}[{index}]: ") and "'NoSuchSet' not found" in message
    assert "\n" not in message


def test_check_data_sets_uses_the_given_data_root(tmp_path):
    root = tmp_path / "root"
    for name in ("MyTrain", "MyTest"):
        (root / name).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / name / "a.png")
    space = load_space(write_space(tmp_path, HEADER + "fixed: {train_sets: [MyTrain], test_sets: [MyTest]}\n"))
    with pytest.raises(SpaceError, match="MyTrain"):
        check_data_sets(space)
    check_data_sets(space, root)


# ---------------------------------------------------------------- size of the file itself

@pytest.mark.timeout(10)
def test_oversized_file_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "big.yaml"
    with path.open("w") as handle:
        handle.write(HEADER + "description: |\n")
        line = "  " + "x" * 1000 + "\n"
        for _ in range(20_000):  # 20 MB
            handle.write(line)
    refused(path, f"space file larger than {MAX_FILE_BYTES // 1024} KiB")


# ---------------------------------------------------------------- command line

@pytest.mark.timeout(60)
def test_cli_alias_bomb_is_one_error_line_and_exit_2(tmp_path):
    path = write_space(tmp_path, HEADER + "description:\n" + alias_bomb("  ") + "\n", "bomb.yaml")
    proc = subprocess.run([sys.executable, "-m", "search.run", str(path), "--dry-run"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=50)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"error: {path}: invalid YAML: line "), lines[0]
    assert "anchors and aliases" in lines[0]
