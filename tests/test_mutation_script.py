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


def record(operator, line, column, worker="normal", test="killed"):
    item = {"mutations": [{"operator_name": operator, "start_pos": [line, column]}]}
    return json.dumps([item, {"worker_outcome": worker, "test_outcome": test}])


SOURCE = ["def f(a, *, b=1):", "    return a + b if a < 2 else a - b"]


def test_score_counts_caught_over_scored_and_leaves_out_equivalents_and_skips(mutation):
    dump = "\n".join([
        record("core/ReplaceBinaryOperator_Add_Sub", 2, 13),                     # killed
        record("core/ReplaceBinaryOperator_Sub_Add", 2, 33, test="survived"),    # survived
        record("core/ReplaceComparisonOperator_Lt_LtE", 2, 22, test="survived"),  # listed equivalent
        record("core/NumberReplacer", 2, 24, worker="timeout", test=None),       # caught by timeout
        record("core/ReplaceBinaryOperator_Mul_Div", 1, 9, test="survived"),     # `*,` marker: not counted
        record("core/AddNot", 2, 20, worker="skipped", test=None),               # filtered operator
    ])
    equivalents = [{"operator": "core/ReplaceComparisonOperator_Lt_LtE",
                    "line": "return a + b if a < 2 else a - b", "why": "a is never 2 here"}]
    target = mutation.Target("m.py", ("tests/test_m.py",))
    result = mutation.summarise("m", target, dump, SOURCE, equivalents)
    # 4 mutants scored (killed, survived, timeout; the equivalent and the marker are out): 2 caught of 3
    assert (result["killed"], result["survived"], result["timeout"], result["equivalent"]) == (1, 1, 1, 1)
    assert result["not_an_operator"] == 1
    assert result["score"] == pytest.approx(2 / 3, abs=1e-4)
    assert [m["line_number"] for m in result["survivors"]] == [2]
    assert result["equivalent_mutants"][0]["why"] == "a is never 2 here"
    assert result["stale_equivalent_entries"] == []


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
