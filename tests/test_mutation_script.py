"""scripts/mutation.py: how cosmic-ray's results become the committed score (no mutant is run here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mutation():
    spec = importlib.util.spec_from_file_location("_sr_mutation", REPO / "scripts" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def record(operator, line, column, outcome, occurrence=0):
    """A cosmic-ray 8.7 dump line for one mutant, as its local distributor writes it."""
    item = {"mutations": [{"operator_name": operator, "start_pos": [line, column], "occurrence": occurrence}]}
    result = {
        "killed": {"worker_outcome": "normal", "test_outcome": "killed",
                   "output": "mutation-client: tests exited 1\n"},
        "survived": {"worker_outcome": "normal", "test_outcome": "survived",
                     "output": "mutation-client: tests exited 0\n"},
        "timeout": {"worker_outcome": "normal", "test_outcome": "killed", "output": "timeout"},
        # the client found no test server: the tests never ran, so it is no kill
        "no server": {"worker_outcome": "normal", "test_outcome": "killed",
                      "output": "mutation-client: no answer from the test server: refused\n"},
        "exception": {"worker_outcome": "exception", "test_outcome": "incompetent", "output": "Traceback"},
        "skipped": {"worker_outcome": "skipped", "test_outcome": None, "output": "Filtered operator"},
    }[outcome]
    return json.dumps([item, result])


SOURCE = ["def f(a, *, b=1):", "    return a + b if a < 2 else a - b"]
LINE = "return a + b if a < 2 else a - b"


def test_score_counts_only_mutants_the_tests_judged(mutation):
    dump = "\n".join([
        record("core/ReplaceBinaryOperator_Add_Sub", 2, 13, "killed"),
        record("core/ReplaceBinaryOperator_Sub_Add", 2, 33, "survived"),
        record("core/ReplaceComparisonOperator_Lt_LtE", 2, 22, "survived"),  # listed equivalent
        record("core/NumberReplacer", 2, 24, "timeout"),                     # caught: hangs the tests
        record("core/ReplaceBinaryOperator_Mul_Div", 1, 9, "survived"),      # `*,` marker: not counted
        record("core/AddNot", 2, 20, "skipped"),                             # filtered operator
        record("core/NumberReplacer", 2, 24, "no server", occurrence=1),     # never tested: an error
        record("core/ReplaceTrueWithFalse", 2, 4, "exception"),              # never tested: an error
    ])
    equivalents = [{"operator": "core/ReplaceComparisonOperator_Lt_LtE", "line": LINE, "why": "a is never 2 here"}]
    result = mutation.summarise("m", mutation.Target("m.py", ("tests/test_m.py",)), dump, SOURCE, equivalents)
    # scored: killed, survived, timeout (the equivalent, the marker, the filtered and the errors are out)
    assert (result["killed"], result["survived"], result["timeout"], result["equivalent"]) == (1, 1, 1, 1)
    assert (result["not_an_operator"], result["errors"]) == (1, 2)
    assert result["score"] == pytest.approx(2 / 3, abs=1e-4)
    assert [m["line_number"] for m in result["survivors"]] == [2]
    assert result["equivalent_mutants"][0]["why"] == "a is never 2 here"
    assert result["stale_equivalent_entries"] == [] and result["killed_equivalent_entries"] == []


def test_an_equivalent_entry_the_tests_kill_is_not_excluded(mutation):
    entry = {"operator": "core/ReplaceBinaryOperator_Add_Sub", "line": LINE, "why": "wrong"}
    dump = record("core/ReplaceBinaryOperator_Add_Sub", 2, 13, "killed")
    result = mutation.summarise("m", mutation.Target("m.py", ("t.py",)), dump, SOURCE, [entry])
    assert (result["killed"], result["equivalent"], result["score"]) == (1, 0, 1.0)
    assert result["killed_equivalent_entries"][0]["entry"] == entry


def test_number_entries_name_one_of_the_two_offsets(mutation):
    # cosmic-ray's NumberReplacer: occurrence 2k is +1, 2k + 1 is -1
    entry = {"operator": "core/NumberReplacer", "line": LINE, "offset": -1, "why": "2 - 1 is never reached"}
    dump = "\n".join([record("core/NumberReplacer", 2, 24, "survived", occurrence=0),
                      record("core/NumberReplacer", 2, 24, "survived", occurrence=1)])
    result = mutation.summarise("m", mutation.Target("m.py", ("t.py",)), dump, SOURCE, [entry])
    assert [m["offset"] for m in result["survivors"]] == [1]
    assert [m["offset"] for m in result["equivalent_mutants"]] == [-1]


def test_an_equivalent_entry_that_matches_nothing_is_reported_stale(mutation):
    stale = {"operator": "core/NumberReplacer", "line": "x = 3", "why": "gone"}
    result = mutation.summarise("m", mutation.Target("m.py", ("t.py",)), "", SOURCE, [stale])
    assert result["stale_equivalent_entries"] == [stale] and result["score"] is None


@pytest.mark.parametrize("line, column, expected", [
    ("def f(a, *, b):", 9, True),       # bare keyword-only marker
    ("def f(a, *):", 9, True),
    ("    return a * b", 13, False),    # a multiplication
    ("def f(*args):", 6, False),        # star-args, not the marker
])
def test_keyword_only_marker(mutation, line, column, expected):
    assert mutation._is_keyword_only_marker(line, column, "core/ReplaceBinaryOperator_Mul_Div") is expected


def test_every_target_has_its_module_and_every_equivalent_entry_a_reason(mutation):
    for name, target in mutation.TARGETS.items():
        assert (REPO / target.module).is_file(), name
    listed = yaml.safe_load((REPO / "scripts" / "mutation_equivalent.yaml").read_text()) or {}
    assert set(listed) <= set(mutation.TARGETS)
    for name, entries in listed.items():
        for entry in entries or []:
            assert {"operator", "line", "why"} <= set(entry) and entry["why"].strip(), (name, entry)
