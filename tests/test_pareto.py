"""Pareto dominance, masks, normalisation and hypervolume against answers worked out by hand.

Conventions of search/study/pareto.py: ``dominates`` / ``pareto_mask`` take raw objective values
with a direction per objective ("max" or "min"); ``hypervolume`` / ``exclusive_contributions``
take points already turned into a minimisation (``normalise``: 0 = best) and measure the volume
of the union of the boxes [p, reference] (default reference 1.1 in every objective).
Every expected value below is a literal with its arithmetic beside it.
"""

import math

import numpy as np
import pandas as pd
import pytest

from search.study.pareto import (
    REFERENCE_POINT,
    dominates,
    dominators,
    exclusive_contributions,
    hypervolume,
    normalise,
    pareto_mask,
    trials_to_target,
)

MAX_MIN = ["max", "min"]  # (PSNR, latency)

DOMINANCE = [
    # a, b, directions, a dominates b
    ([30, 5], [29, 5], MAX_MIN, True),             # better PSNR, same latency
    ([30, 5], [30, 6], MAX_MIN, True),             # same PSNR, faster
    ([30, 5], [29, 6], MAX_MIN, True),             # better in both
    ([30, 5], [31, 7], MAX_MIN, False),            # a trade-off
    ([30, 5], [30, 5], MAX_MIN, False),            # equal is not dominance
    ([29, 5], [30, 5], MAX_MIN, False),            # worse PSNR
    ([1, 1], [2, 2], ["min", "min"], True),
    ([1, 2], [2, 1], ["min", "min"], False),
    ([2, 2], [1, 1], ["max", "max"], True),
    ([1, 1, 1], [1, 1, 2], ["min"] * 3, True),     # better in the third objective only
    ([1, 1, 3], [1, 2, 2], ["min"] * 3, False),
]


@pytest.mark.parametrize("a, b, directions, expected", DOMINANCE)
def test_dominates_by_hand(a, b, directions, expected):
    assert dominates(a, b, directions) is expected
    # the vectorised form agrees: a (row 0) is among b's (row 1) dominators exactly then
    assert (0 in dominators([a, b], 1, directions)) is expected


def test_dominators_skip_a_twin():
    values = [[30, 5], [29, 6], [31, 4], [29, 6]]
    assert list(dominators(values, 1, MAX_MIN)) == [0, 2]  # not its twin row 3
    assert list(dominators(values, 2, MAX_MIN)) == []      # (31, 4) is best in both


def test_unknown_direction_is_refused():
    # (dominates checks each direction as it reaches it: it returns False at the first
    # objective where a is worse, before a bad direction further on)
    with pytest.raises(ValueError, match="direction"):
        dominates([1, 2], [2, 1], ["down", "max"])
    with pytest.raises(ValueError, match="direction"):
        pareto_mask([[1, 2]], ["max", "down"])


PARETO_MASKS = [
    # values, directions, non-dominated rows
    # b (32, 20) dominates c (31, 25); a (30, 10) and b trade off; d duplicates b; a dominates e (29, 10)
    ([[30, 10], [32, 20], [31, 25], [32, 20], [29, 10]], MAX_MIN, [True, True, False, True, False]),
    # NaN / inf rows are never on the front and dominate nothing
    ([[1.0, 1.0], [np.nan, 0.0], [0.5, 2.0]], ["min", "min"], [True, False, True]),
    ([[1.0, 1.0], [-np.inf, 0.0]], ["min", "min"], [True, False]),
    ([[3.0, 3.0]], ["min", "min"], [True]),
    ([[2.0, 2.0]] * 3, ["min", "min"], [True, True, True]),
    # 3 objectives: (2, 2, 2) dominates (2, 2, 4), which (1, 2, 3) also dominates
    ([[1, 2, 3], [2, 1, 3], [2, 2, 2], [2, 2, 4]], ["min"] * 3, [True, True, True, False]),
]


@pytest.mark.parametrize("values, directions, expected", PARETO_MASKS)
def test_pareto_mask_by_hand(values, directions, expected):
    assert pareto_mask(values, directions).tolist() == expected


HYPERVOLUMES = [
    # points (minimisation), reference, volume
    ([], 1.0, 0.0),
    ([[0.2], [0.5]], 1.0, 0.8),                                        # 1-D: 1 - 0.2
    ([[0.0, 0.0]], REFERENCE_POINT, 1.1 * 1.1),                        # the best corner: 1.21
    # staircase: y in [0.5, 1] from x = 0 (1 x 0.5), y in [0, 0.5] from x = 0.5 (0.5 x 0.5)
    ([[0.0, 0.5], [0.5, 0.0]], 1.0, 1.0 * 0.5 + 0.5 * 0.5),           # 0.75
    # ... a dominated point (0.6, 0.6), a point outside the box (1.5, -1) and a NaN add nothing
    ([[0.0, 0.5], [0.5, 0.0], [0.6, 0.6], [1.5, -1.0], [np.nan, 0.0]], 1.0, 0.75),
    ([[0.0, 0.5], [0.0, 0.5]], 1.0, 1.0 * 0.5),                        # a duplicate counts once
    ([[1.0, 0.0]], 1.0, 0.0),                                          # on the reference: no box
    # per-objective reference (2, 1): y in [0.5, 1] from x = 0 (2 x 0.5), y in [0, 0.5] from x = 1 (1 x 0.5)
    ([[0.0, 0.5], [1.0, 0.0]], [2.0, 1.0], 2.0 * 0.5 + 1.0 * 0.5),    # 1.5
    # 3-D, reference 1, inclusion-exclusion: boxes 1 x 0.5 x 1 and 0.5 x 1 x 0.5 overlapping in 0.5^3
    ([[0.0, 0.5, 0.0], [0.5, 0.0, 0.5]], 1.0, 0.5 + 0.25 - 0.125),    # 0.625
    # 3-D: the boxes {x >= .5}, {y >= .5}, {z >= .5} of the unit cube leave out only [0, .5)^3
    ([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.5]], 1.0, 1.0 - 0.5**3),  # 0.875
    # 3-D, one point per z slice: z in [0, .5) only (0.5, 0.5) counts (0.5 x 0.5 x 0.5); z in
    # [.5, 1) both: the 2-D staircase of (0.5, 0.5), (0, 0.8): 0.2 x 1 + 0.3 x 0.5 = 0.35, x 0.5
    ([[0.5, 0.5, 0.0], [0.0, 0.8, 0.5]], 1.0, 0.125 + 0.5 * (0.2 * 1.0 + 0.3 * 0.5)),  # 0.3
]


@pytest.mark.parametrize("points, reference, expected", HYPERVOLUMES)
def test_hypervolume_by_hand(points, reference, expected):
    assert hypervolume(points, reference) == pytest.approx(expected, abs=1e-12)


EXCLUSIVE = [
    # points, reference, the volume each point alone adds
    ([[0.0, 0.5], [0.5, 0.0]], 1.0, [0.5 * 0.5, 0.5 * 0.5]),          # each keeps a 0.5 x 0.5 corner
    # (0.25, 0.25) alone covers [0.25, 0.5)^2; the outer points keep a 0.25 x 0.5 strip each;
    # (0.6, 0.6) is dominated by (0.25, 0.25) and adds nothing
    ([[0.0, 0.5], [0.5, 0.0], [0.6, 0.6], [0.25, 0.25]], 1.0, [0.125, 0.125, 0.0, 0.0625]),
    ([[0.2, 0.2], [0.2, 0.2]], 1.0, [0.0, 0.0]),                       # twins: neither alone adds
]


@pytest.mark.parametrize("points, reference, expected", EXCLUSIVE)
def test_exclusive_contributions_by_hand(points, reference, expected):
    assert exclusive_contributions(points, reference=reference) == pytest.approx(expected, abs=1e-12)


def test_normalise_flips_max_objectives_and_uses_given_bounds():
    # PSNR 30..32 (max: 32 -> 0, 30 -> 1), latency 10..20 (min: 10 -> 0, 20 -> 1)
    points, bounds = normalise([[30.0, 10.0], [32.0, 20.0]], MAX_MIN)
    assert points.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert bounds.tolist() == [[30.0, 10.0], [32.0, 20.0]]
    # (31, 15) is half-way in both; bounds from elsewhere (a grid) are kept, values beyond them too
    sub, _ = normalise([[31.0, 15.0], [33.0, 5.0]], MAX_MIN, bounds)
    assert sub.tolist() == [[0.5, 0.5], [-0.5, -0.5]]
    # a constant objective spans nothing: its values all become 0 (max flipped: 1)
    flat, _ = normalise([[30.0, 7.0], [32.0, 7.0]], MAX_MIN)
    assert flat[:, 1].tolist() == [0.0, 0.0]


def test_trials_to_target_by_hand():
    # means over the two seeds: a 0.975 at 5 trials (< 0.98), 0.985 at 10; b never reaches 0.98
    curves = pd.DataFrame({"sampler": ["a"] * 4 + ["b"] * 4, "seed": [0, 1, 0, 1] * 2,
                           "trials": [5, 5, 10, 10] * 2,
                           "hypervolume_ratio": [0.96, 0.99, 0.99, 0.98, 0.5, 0.9, 0.97, 0.95]})
    assert trials_to_target(curves) == {"a": 10, "b": None}
    assert trials_to_target(curves, target=0.9) == {"a": 5, "b": 10}  # b: (0.97 + 0.95) / 2 = 0.96


def test_reference_point_is_the_documented_one():
    assert math.isclose(REFERENCE_POINT, 1.1)  # docs/reports.md: worst value plus 10 % of the range
