"""NAS-Bench-style tabular benchmark: a trial is a lookup in a table of published results.

``python -m search.run spaces/esr.yaml --benchmark published --objectives
psnr_Set14:max,speed_AGX:max --sampler nsga2 --trials 118 --seed 0 --out DIR``

The sampler only sees the space (Optuna's define-by-run suggestion of
:meth:`search.space.Space.suggest`), never the table; each trial's objective values are read
from the table row of its configuration id. A configuration suggested again is pruned and
not counted (duplicate elimination, ``unique=True``); with ``unique=False`` it costs another
trial, as a search without a cache would pay. Hypervolume as in
:mod:`search.study.pareto`: objectives min-max normalised over the full grid, reference
point 1.1.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import optuna
import pandas as pd

from search.jsonio import dumps_json
from search.errors import UserError
from search.space import Objective, parse_objectives
from search.study.runner import check_initial_design, enqueue_configs, enqueue_grid, initial_configurations
from search.study.samplers import make_sampler
from search.paths import PUBLISHED_DIR
from search.study.pareto import REFERENCE_POINT, hypervolume, normalise, pareto_mask

BENCHMARKS = {"published": PUBLISHED_DIR / "esr_tests.csv"}
# with duplicate elimination, give up after this many proposals per evaluation
MAX_PROPOSALS_PER_TRIAL = 50


def parse_tabular_objectives(spec: str | Sequence[str], table: pd.DataFrame) -> list[Objective]:
    """Objectives over the table's numeric columns (``speed_AGX:max``, ``psnr_Set14:max``)."""
    numeric = [c for c in table.columns if pd.api.types.is_numeric_dtype(table[c])]
    try:
        return parse_objectives(spec, allowed=numeric)
    except ValueError as exc:
        raise UserError(str(exc).replace("unknown objective metric", "objective not in the table:")) from None


def load_table(name_or_path: str | Path) -> pd.DataFrame:
    path = BENCHMARKS.get(str(name_or_path), Path(name_or_path))
    if not Path(path).is_file():
        raise UserError(f"benchmark table not found (known: {', '.join(BENCHMARKS)})", path=path)
    table = pd.read_csv(path)
    if "model" not in table.columns:
        raise UserError("benchmark table needs a 'model' column of configuration ids", path=path)
    return table.set_index("model", drop=False)


def grid_front(table: pd.DataFrame, ids: list[str], objectives: list[Objective]):
    """Bounds for normalisation and the full grid's hypervolume."""
    values = table.loc[ids, [o.metric for o in objectives]].to_numpy(dtype=np.float64)
    directions = [o.mode for o in objectives]
    points, bounds = normalise(values, directions)
    mask = pareto_mask(values, directions)
    return bounds, hypervolume(points, REFERENCE_POINT), [ids[i] for i in np.flatnonzero(mask)]


def run_tabular(space, objectives: str | Sequence[str], sampler: str = "nsga2", trials: int = 100,
                seed: int = 0, out_dir: str | Path | None = None, benchmark: str = "published",
                progress_every: Sequence[int] | None = None, flat: bool = True,
                unique: bool = True, keep_rows: bool = False, initial_design: str = "smallest") -> dict:
    """Run one tabular study; write ``trials.csv`` and ``summary.json`` to ``out_dir``.

    ``initial_design``: ``smallest`` (the first trials are
    :meth:`search.space.Space.smallest_configurations`, enqueued, at most a quarter of
    ``trials``: :func:`search.study.runner.initial_configurations`; ignored by ``grid``) or
    ``random`` (the sampler's own start). ``keep_rows``: also return the evaluated rows, in order, under ``"rows"``
    (not written).
    """
    check_initial_design(initial_design)
    table = load_table(benchmark)
    objs = parse_tabular_objectives(objectives, table)
    ids = [c["config_id"] for c in space.enumerate()]
    missing = [i for i in ids if i not in table.index]
    if missing:
        raise UserError(f"{len(missing)} configurations of the space are not in the "
                        f"benchmark table (e.g. {missing[0]})", path=space.path)
    bounds, grid_hv, grid_front_ids = grid_front(table, ids, objs)
    directions = [o.mode for o in objs]
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(directions=[("maximize" if d == "max" else "minimize") for d in directions],
                                sampler=make_sampler(sampler, seed, space))
    if sampler == "grid" or unique:
        trials = min(trials, len(ids))  # no configuration is evaluated twice
    if sampler == "grid":
        order = np.random.default_rng(seed).permutation(len(ids))
        enqueue_grid(study, space, [ids[i] for i in order[:trials]])
    else:
        enqueue_configs(study, space, initial_configurations(space, initial_design, trials))

    rows: list[dict] = []
    seen: set[str] = set()

    def stop_when_done(study, _trial):
        if len(rows) >= trials:
            study.stop()

    def objective(trial: optuna.Trial):
        if flat:
            space.suggest_every_gene(trial)
        config = space.suggest(trial)
        if unique and config["config_id"] in seen:
            # pymoo-style duplicate elimination: a configuration already evaluated is not
            # evaluated (nor counted) again; the sampler ignores pruned trials.
            raise optuna.TrialPruned()
        seen.add(config["config_id"])
        row = table.loc[config["config_id"]]
        values = tuple(float(row[o.metric]) for o in objs)
        rows.append({"trial": trial.number, "model_id": config["config_id"],
                     "family": config["family"], "scale": config["scale"],
                     **{k: config.get(k) for k in space.hparam_names},
                     **{o.metric: v for o, v in zip(objs, values)}})
        return values

    start = time.perf_counter()
    if unique:
        study.optimize(objective, n_trials=MAX_PROPOSALS_PER_TRIAL * trials,
                       callbacks=[stop_when_done], show_progress_bar=False)
    else:
        study.optimize(objective, n_trials=trials, show_progress_bar=False)
    wall = time.perf_counter() - start

    values = np.array([[r[o.metric] for o in objs] for r in rows], dtype=np.float64)
    points, _ = normalise(values, directions, bounds)
    volumes = {n: hypervolume(points[:n], REFERENCE_POINT)
               for n in sorted(set(progress_every or []) | {len(rows)}) if 0 < n <= len(rows)}
    front = pareto_mask(values, directions)
    for row, on_front in zip(rows, front):
        row["on_front"] = bool(on_front)
    summary = {
        "benchmark": str(benchmark),
        "space": str(space.path),
        "sampler": sampler,
        "initial_design": "grid order" if sampler == "grid" else initial_design,
        "seed": seed,
        "trials": len(rows),
        "unique_configurations": len({r["model_id"] for r in rows}),
        "proposals": len(study.trials),
        "grid_size": len(ids),
        "objectives": [str(o) for o in objs],
        "hypervolume": volumes.get(len(rows), 0.0),
        "grid_hypervolume": grid_hv,
        "hypervolume_ratio": volumes.get(len(rows), 0.0) / grid_hv,
        "reference_point": REFERENCE_POINT,
        "normalisation": {"lower": bounds[0].tolist(), "upper": bounds[1].tolist(),
                          "note": "min-max over the full grid, max objectives flipped; 0 = best"},
        "front": sorted({r["model_id"] for r in rows if r["on_front"]}),
        "grid_front": grid_front_ids,
        "ratio_by_trials": {str(n): v / grid_hv for n, v in volumes.items()},
        "wall_time_s": wall,
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "trials.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["trial"])
            writer.writeheader()
            writer.writerows(rows)
        (out / "summary.json").write_text(dumps_json(summary, indent=2) + "\n")
    if keep_rows:
        summary["rows"] = rows
    return summary
