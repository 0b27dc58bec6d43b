"""Pareto fronts and hypervolume for any number of objectives.

Hypervolume convention used throughout the suite (documented in docs/reports.md):

* every objective is min-max normalised over a *reference set* (for the tabular benchmark:
  the full grid; for a study: its own trials) and turned into a minimisation
  (``max`` objectives become ``1 - normalised``), so 0 is the best value seen and 1 the worst;
* the reference point is ``1.1`` in every normalised objective (the worst value plus 10 %
  of the range), so the extreme points of a front still add volume.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

REFERENCE_POINT = 1.1


def _to_minimisation(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise ValueError(f"values must be N x {len(directions)}, got {values.shape}")
    signs = np.array([-1.0 if d == "max" else 1.0 for d in directions])
    for d in directions:
        if d not in ("max", "min"):
            raise ValueError(f"direction must be 'max' or 'min', not {d!r}")
    return values * signs


def dominators(values, index: int, directions: Sequence[str]) -> np.ndarray:
    """Indices of the rows of ``values`` that dominate row ``index``: no worse in every
    objective and better in one."""
    points = _to_minimisation(values, directions)
    no_worse = np.all(points <= points[index], axis=1)
    better = np.any(points < points[index], axis=1)
    return np.flatnonzero(no_worse & better)


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """True if objective vector ``a`` dominates ``b`` (plain Python: NSGA-II's tournament
    calls it thousands of times per child, where numpy's per-call cost dominates)."""
    better = False
    for x, y, direction in zip(a, b, directions):
        if direction not in ("max", "min"):
            raise ValueError(f"direction must be 'max' or 'min', not {direction!r}")
        if direction == "max":
            x, y = -x, -y
        if x > y:
            return False
        better = better or x < y
    return better


def pareto_mask(values, directions: Sequence[str]) -> np.ndarray:
    """Boolean mask of the non-dominated rows (duplicates of a front point all stay)."""
    points = _to_minimisation(values, directions)
    n = len(points)
    mask = np.ones(n, dtype=bool)
    finite = np.all(np.isfinite(points), axis=1)
    mask &= finite
    for i in np.flatnonzero(finite):
        others = points[finite]
        dominated = np.all(others <= points[i], axis=1) & np.any(others < points[i], axis=1)
        if dominated.any():
            mask[i] = False
    return mask


def normalise(values, directions: Sequence[str], bounds: np.ndarray | None = None):
    """Min-max normalise to a minimisation in [0, 1] (0 = best). Returns (points, bounds).

    ``bounds`` is a 2 x M array (lower, upper) in the original units; by default taken from
    ``values`` itself. Pass the full grid's bounds to compare subsets fairly.
    """
    raw = np.asarray(values, dtype=np.float64)
    if bounds is None:
        bounds = np.vstack([np.nanmin(raw, axis=0), np.nanmax(raw, axis=0)])
    low, high = bounds
    span = np.where(high > low, high - low, 1.0)
    scaled = (raw - low) / span
    for j, direction in enumerate(directions):
        if direction == "max":
            scaled[:, j] = 1.0 - scaled[:, j]
    return scaled, bounds


def hypervolume(points_min, reference: Sequence[float] | float = REFERENCE_POINT) -> float:
    """Exact hypervolume dominated by ``points_min`` (minimisation) and bounded by ``reference``.

    2-D: a sort and sweep. More objectives: slicing along the last objective (exact; fine for
    the front sizes of these studies).
    """
    pts = np.asarray(points_min, dtype=np.float64)
    if pts.size == 0:
        return 0.0
    m = pts.shape[1]
    ref = np.full(m, float(reference)) if np.isscalar(reference) else np.asarray(reference, float)
    pts = pts[np.all(np.isfinite(pts), axis=1) & np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[pareto_mask(pts, ["min"] * m)]
    return _hv(np.unique(pts, axis=0), ref)


def exclusive_contributions(points_min, reference: Sequence[float] | float = REFERENCE_POINT) -> np.ndarray:
    """Hypervolume each point alone adds (0 for dominated points): where a front's volume lies.

    A point with a large share is one a search must find exactly; its neighbours cannot
    make up for it.
    """
    pts = np.asarray(points_min, dtype=np.float64)
    total = hypervolume(pts, reference)
    shares = np.zeros(len(pts))
    for i in range(len(pts)):
        shares[i] = total - hypervolume(np.delete(pts, i, axis=0), reference)
    return np.clip(shares, 0.0, None)


def _hv(pts: np.ndarray, ref: np.ndarray) -> float:
    m = pts.shape[1]
    if m == 1:
        return float(ref[0] - pts[:, 0].min())
    if m == 2:
        order = np.argsort(pts[:, 0])
        volume, best_y = 0.0, ref[1]
        for x, y in pts[order]:
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return float(volume)
    order = np.argsort(pts[:, -1])
    pts = pts[order]
    volume = 0.0
    for i in range(len(pts)):
        upper = pts[i + 1, -1] if i + 1 < len(pts) else ref[-1]
        depth = upper - pts[i, -1]
        if depth > 0:
            sub = pts[: i + 1, :-1]
            sub = sub[pareto_mask(sub, ["min"] * (m - 1))]
            volume += depth * _hv(sub, ref[:-1])
    return float(volume)


# ----------------------------------------------------------------------------- hypervolume-ratio curves
TARGET_RATIO = 0.98  # the tabular benchmark's goal: hypervolume / the full grid's


def trials_to_target(curves, target: float = TARGET_RATIO) -> dict[str, int | None]:
    """Per sampler, the first checkpoint at which the mean ratio over seeds reaches ``target``.

    ``curves``: a pandas DataFrame with ``sampler``, ``trials`` and ``hypervolume_ratio``
    columns (one row per sampler, seed and checkpoint: ``sampler_curves.csv``).
    """
    means = curves.groupby(["sampler", "trials"])["hypervolume_ratio"].mean()
    reached = {}
    for sampler in dict.fromkeys(curves["sampler"]):
        hits = [n for n, m in means[sampler].items() if m >= target]
        reached[sampler] = int(min(hits)) if hits else None
    return reached
