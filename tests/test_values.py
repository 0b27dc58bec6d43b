"""Value types of a search space (search/space/values.py): listing, sizes, canonical text, and
what each dimension asks Optuna for.

Expected lists and texts are written by hand; Optuna's side is checked on a real
``optuna.trial.FixedTrial``, which returns the value it was given and records the
distribution each ``suggest_*`` call declared (log scale, step, bounds, choices).
"""

from __future__ import annotations

import dataclasses
import sys

import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FixedTrial

from search.space.values import (
    Choice,
    Dimension,
    Fixed,
    FloatRange,
    IntRange,
    _optuna_choice,
    csv_value,
    format_value,
)

SCHEDULE = {"type": "linear", "start": 1, "end": 0.1}

# ---------------------------------------------------------------- canonical text


@pytest.mark.parametrize("value, text", [
    (True, "true"),
    (False, "false"),
    (3, "3"),
    (-2, "-2"),
    (3.0, "3"),  # whole floats print as integers: C=16.0 and C=16 are one id
    (-2.0, "-2"),
    (1e20, "100000000000000000000"),
    (0.25, "0.25"),
    (0.5, "0.5"),
    (1e-05, "1e-05"),
    (float("inf"), "inf"),
    (float("-inf"), "-inf"),
    (float("nan"), "nan"),
    (None, "null"),
    ("relu", "relu"),
    (SCHEDULE, "linear(end=0.1,start=1)"),  # keys sorted, type outside
    ({"b": True, "a": 2.0}, "(a=2,b=true)"),  # no type: bare parentheses
    ({"type": "step", "at": [1, 2.5]}, "step(at=[1,2.5])"),
    ([1, 2.5, "x"], "[1,2.5,x]"),
    ((4, None), "[4,null]"),
    ([], "[]"),
])
def test_format_value_table(value, text):
    assert format_value(value) == text


@pytest.mark.parametrize("value, written", [
    (SCHEDULE, '{"end": 0.1, "start": 1, "type": "linear"}'),  # JSON, keys sorted
    ([1, 2], "[1, 2]"),
    ((1, "a"), '[1, "a"]'),
    (0.25, 0.25),  # scalars unchanged
    ("relu", "relu"),
    (None, None),
    (True, True),
])
def test_csv_value_table(value, written):
    result = csv_value(value)
    assert result == written and type(result) is type(written)


@pytest.mark.parametrize("value, stored", [
    (None, None), (True, True), (3, 3), (0.5, 0.5), ("relu", "relu"),
    (SCHEDULE, "linear(end=0.1,start=1)"), ([1, 2], "[1,2]"),
])
def test_optuna_choice_keeps_scalars_and_writes_objects_as_text(value, stored):
    result = _optuna_choice(value)
    assert result == stored and type(result) is type(stored)


# ---------------------------------------------------------------- listing and sizes


@pytest.mark.parametrize("dimension, values", [
    (Fixed(7), [7]),
    (Fixed(SCHEDULE), [SCHEDULE]),
    (Choice((3, 5, 7)), [3, 5, 7]),
    (Choice(("relu",)), ["relu"]),
    (IntRange(2, 4), [2, 3, 4]),  # both ends included
    (IntRange(0, 4, 2), [0, 2, 4]),
    (IntRange(1, 6, 2), [1, 3, 5]),  # high not on the step: last value below it
    (IntRange(1, 16, 1, log=True), list(range(1, 17))),  # log only changes sampling
    (IntRange(3, 3), [3]),
    (IntRange(5, 3), []),  # empty, not negative
    (FloatRange(0.5, 2.0, 0.5), [0.5, 1.0, 1.5, 2.0]),
    (FloatRange(0.1, 0.3, 0.1), [0.1, 0.2, 0.3]),  # 0.1 + 2 * 0.1 = 0.30000000000000004 unrounded
    (FloatRange(0.1, 0.35, 0.1), [0.1, 0.2, 0.3]),
    (FloatRange(-1.0, 0.0, 0.25), [-1.0, -0.75, -0.5, -0.25, 0.0]),
    (FloatRange(0.0, 3e-12, 1e-12), [0.0, 1e-12, 2e-12, 3e-12]),  # rounded to 12 decimals, not 11
    (FloatRange(0.1234567890123, 0.1234567890123, 1.0), [0.123456789012]),  # ... and not 13
    (FloatRange(2.0, 2.0, 0.5), [2.0]),
])
def test_values_and_size_table(dimension, values):
    listed = dimension.values()
    assert listed == values
    assert [type(v) for v in listed] == [type(v) for v in values]
    assert dimension.size == len(values) and type(dimension.size) is int
    assert dimension.enumerable is True


def test_float_range_values_are_not_accumulated_float_noise():
    # The reason for the rounding: an id must read C0.3, not C0.30000000000000004.
    assert [format_value(v) for v in FloatRange(0.1, 0.3, 0.1).values()] == ["0.1", "0.2", "0.3"]


def test_float_range_without_step_is_continuous():
    dimension = FloatRange(1e-4, 1e-2, log=True)
    assert dimension.enumerable is False
    assert dimension.size is None
    with pytest.raises(ValueError, match="a float range without step has no finite list of values"):
        dimension.values()


def test_float_range_size_survives_an_overflowing_width():
    # 1e308 - (-1e308) overflows to inf; the size is then counted from the largest float,
    # (2 - 2 ** -52) * 2 ** 1023 = 2 ** 1024 - 2 ** 971, plus the first value.
    assert FloatRange(-1e308, 1e308, 1e308).size == 2 ** 1024 - 2 ** 971 + 1
    assert FloatRange(-1e308, 1e308, 1e308).size == int(sys.float_info.max) + 1


@pytest.mark.parametrize("make", [
    lambda: Fixed(7), lambda: Choice((3, 5)), lambda: IntRange(1, 16, 1, log=True),
    lambda: FloatRange(0.5, 2.0, 0.5),
])
def test_dimensions_are_immutable_values(make):
    # Sibling families share one Optuna parameter when their domains are equal: a dimension
    # is compared (and hashed) by value and cannot change after loading.
    dimension = make()
    assert dimension == make() and hash(dimension) == hash(make())
    field = dataclasses.fields(dimension)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(dimension, field, 0)


def test_the_dimension_interface_is_abstract():
    dimension = Dimension()
    assert dimension.enumerable is True
    for call in (dimension.values, lambda: dimension.size, lambda: dimension.suggest(None, "x")):
        with pytest.raises(NotImplementedError):
            call()


# ---------------------------------------------------------------- what Optuna is asked


@pytest.mark.parametrize("dimension, given, expected, distribution", [
    (IntRange(1, 16, 1, log=True), 8, 8, IntDistribution(1, 16, log=True)),  # eSR's C
    (IntRange(1, 16), 8, 8, IntDistribution(1, 16, step=1)),
    (IntRange(2, 10, 4), 6, 6, IntDistribution(2, 10, step=4)),
    (FloatRange(1e-4, 1e-2, log=True), 1e-3, 1e-3, FloatDistribution(1e-4, 1e-2, log=True)),
    (FloatRange(0.5, 2.0), 0.75, 0.75, FloatDistribution(0.5, 2.0)),
    (FloatRange(0.5, 2.0, 0.5), 1.5, 1.5, FloatDistribution(0.5, 2.0, step=0.5)),
    (Choice((3, 5, 7)), 5, 5, CategoricalDistribution((3, 5, 7))),
    (Choice((SCHEDULE, "const")), "linear(end=0.1,start=1)", SCHEDULE,
     CategoricalDistribution(("linear(end=0.1,start=1)", "const"))),  # objects as their text
    (Choice((None, True, "x")), True, True, CategoricalDistribution((None, True, "x"))),
])
def test_suggest_declares_the_right_distribution(dimension, given, expected, distribution):
    trial = FixedTrial({"p": given})
    result = dimension.suggest(trial, "p")
    assert result == expected and type(result) is type(expected)
    assert trial.distributions == {"p": distribution}


@pytest.mark.parametrize("dimension, expected", [
    (Fixed(7), 7),
    (Fixed(SCHEDULE), SCHEDULE),
    (Choice(("relu",)), "relu"),
    (IntRange(3, 3), 3),
    (IntRange(3, 3, 1, log=True), 3),
    (FloatRange(0.5, 0.5), 0.5),
    (FloatRange(0.5, 0.5, log=True), 0.5),
])
def test_a_single_value_is_not_a_search_dimension(dimension, expected):
    trial = FixedTrial({})  # would raise on any suggest_* call: no parameter is given
    assert dimension.suggest(trial, "p") == expected
    assert trial.distributions == {}
