"""Pareto masks, normalisation and hypervolume on hand-made points with known answers."""

import numpy as np
import pytest

from search.study.pareto import REFERENCE_POINT, exclusive_contributions, hypervolume, normalise, pareto_mask


def test_pareto_mask_mixed_directions():
    # psnr (max), latency (min): b dominates c; a and b trade off; d duplicates b
    values = [[30.0, 10.0], [32.0, 20.0], [31.0, 25.0], [32.0, 20.0], [29.0, 10.0]]
    assert pareto_mask(values, ["max", "min"]).tolist() == [True, True, False, True, False]


def test_pareto_mask_ignores_nan_rows():
    mask = pareto_mask([[1.0, 1.0], [np.nan, 0.0], [0.5, 2.0]], ["min", "min"])
    assert mask.tolist() == [True, False, True]


def test_hypervolume_2d_known_area():
    # staircase under reference (1, 1): 1 * 0.5 + 0.5 * 0.5
    assert hypervolume([[0.0, 0.5], [0.5, 0.0]], reference=1.0) == pytest.approx(0.75)
    # a dominated point and a point outside the box add nothing
    assert hypervolume([[0.0, 0.5], [0.5, 0.0], [0.6, 0.6], [1.5, -1.0]], reference=1.0) == pytest.approx(0.75)


def test_exclusive_contributions_known_areas():
    # reference 1: (0.25, 0.25) alone covers [0.25, 0.5)^2; the outer points keep a
    # 0.25 x 0.5 strip each; (0.6, 0.6) is dominated and adds nothing
    shares = exclusive_contributions([[0.0, 0.5], [0.5, 0.0], [0.6, 0.6], [0.25, 0.25]], reference=1.0)
    assert shares == pytest.approx([0.125, 0.125, 0.0, 0.0625])
    shares = exclusive_contributions([[0.0, 0.5], [0.5, 0.0]], reference=1.0)
    assert shares == pytest.approx([0.25, 0.25])


def test_hypervolume_3d_known_volume():
    assert hypervolume([[0.0, 0.0, 0.0]]) == pytest.approx(REFERENCE_POINT ** 3)
    # two boxes of 1 x 1 x 0.5 (ref 1) overlapping in 0.5 x 0.5 x 0.5 ... computed by inclusion-exclusion
    pts = [[0.0, 0.5, 0.0], [0.5, 0.0, 0.5]]
    box1 = 1.0 * 0.5 * 1.0
    box2 = 0.5 * 1.0 * 0.5
    overlap = 0.5 * 0.5 * 0.5
    assert hypervolume(pts, reference=1.0) == pytest.approx(box1 + box2 - overlap)


def test_normalise_flips_max_objectives_and_uses_given_bounds():
    points, bounds = normalise([[30.0, 10.0], [32.0, 20.0]], ["max", "min"])
    assert points.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert bounds.tolist() == [[30.0, 10.0], [32.0, 20.0]]
    sub, _ = normalise([[31.0, 15.0]], ["max", "min"], bounds)
    assert sub.tolist() == [[0.5, 0.5]]
    # the best corner of the normalised box has the full volume of the reference box
    assert hypervolume(np.zeros((1, 2))) == pytest.approx(REFERENCE_POINT ** 2)


def test_dominance_by_hand():
    from search.study.pareto import dominates, dominators

    # (PSNR max, latency min): (30, 5) beats (29, 5) and (30, 6); not (31, 7); equal is not dominance
    assert dominates([30, 5], [29, 5], ["max", "min"]) and dominates([30, 5], [30, 6], ["max", "min"])
    assert not dominates([30, 5], [31, 7], ["max", "min"]) and not dominates([30, 5], [30, 5], ["max", "min"])
    values = [[30, 5], [29, 6], [31, 4], [29, 6]]
    assert list(dominators(values, 1, ["max", "min"])) == [0, 2]  # not its twin row 3
    assert list(dominators(values, 2, ["max", "min"])) == []
