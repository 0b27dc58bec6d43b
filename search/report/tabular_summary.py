"""DVC metrics and a plot table from the tabular sampler comparison's curves.

``python -m search.experiments tabular_samplers`` writes ``sampler_curves.csv`` (one row per sampler, seed
and number of trials used, with the hypervolume ratio against the full grid's front). This
module turns it into

* ``summary.json`` (``dvc metrics show``): per sampler the mean, std, min and max of the ratio
  at the budget (the curves' ``budget`` column; without one, their last checkpoint), the
  first number of trials at which the mean ratio reaches 0.98 (``trials_to_target``; null
  when the curves stop before), and the acceptance checks (NSGA-II >= 0.98 on average;
  NSGA-II above random search at the budget), for every initial design in the curves
  (``nsga2`` against ``random`` under the default start, ``nsga2+random_start`` against
  ``random+random_start``);
* ``ratio_by_trials.csv`` (``dvc plots show``): mean ratio per sampler against trials used,
  one column per sampler (+ ``<sampler>_std``).

    python -m search.report.tabular_summary reports/tabular/sampler_curves.csv --out reports/tabular
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from search.errors import UserError, cli_main
from search.jsonio import dumps_json
from search.study.pareto import TARGET_RATIO, trials_to_target

REQUIRED = ("sampler", "seed", "trials", "hypervolume_ratio")


def read_curves(path: Path) -> pd.DataFrame:
    if not Path(path).is_file():
        raise UserError("sampler curves not found (run python -m search.experiments tabular_samplers)", path=path)
    curves = pd.read_csv(path)
    missing = [c for c in REQUIRED if c not in curves.columns]
    if missing:
        raise UserError(f"missing columns {', '.join(missing)}", path=path)
    return curves


def by_trials(curves: pd.DataFrame) -> pd.DataFrame:
    samplers = list(dict.fromkeys(curves["sampler"]))
    stats = curves.groupby(["trials", "sampler"])["hypervolume_ratio"].agg(["mean", "std"]).unstack("sampler")
    table = pd.DataFrame(index=stats.index)
    for sampler in samplers:
        table[sampler] = stats[("mean", sampler)]
        table[f"{sampler}_std"] = stats[("std", sampler)]
    return table.reset_index()


def summarise(curves: pd.DataFrame) -> dict:
    samplers = list(dict.fromkeys(curves["sampler"]))
    budget = int(curves["budget"].iloc[0]) if "budget" in curves.columns else int(curves["trials"].max())
    final = curves[curves["trials"] == budget]
    if final.empty:
        raise UserError(f"no checkpoint at the budget of {budget} trials in the sampler curves")
    reached = trials_to_target(curves)
    per = {}
    for sampler in samplers:
        ratios = final.loc[final["sampler"] == sampler, "hypervolume_ratio"]
        per[sampler] = {"mean": float(ratios.mean()),
                        "std": float(ratios.std(ddof=1)) if len(ratios) > 1 else 0.0,
                        "min": float(ratios.min()), "max": float(ratios.max()), "seeds": int(len(ratios)),
                        "trials_to_target": reached[sampler]}
    summary = {"trials": budget, "horizon": int(curves["trials"].max()), "samplers": per,
               "target_ratio": TARGET_RATIO}
    # the acceptance checks, for NSGA-II under each initial design ("nsga2", "nsga2+random_start"),
    # against random search under the same design
    for name in (n for n in per if n == "nsga2" or n.startswith("nsga2+")):
        summary[f"{name}_reaches_target"] = per[name]["mean"] >= TARGET_RATIO
        rival = "random" + name[len("nsga2"):]
        if rival in per:
            summary[f"{name}_beats_random"] = per[name]["mean"] > per[rival]["mean"]
    return summary


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.report.tabular_summary", description=__doc__.splitlines()[0])
    parser.add_argument("curves", type=Path, help="sampler_curves.csv of python -m search.experiments tabular_samplers")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    curves = read_curves(args.curves)
    args.out.mkdir(parents=True, exist_ok=True)
    by_trials(curves).to_csv(args.out / "ratio_by_trials.csv", index=False, float_format="%.6f")
    summary = summarise(curves)
    (args.out / "summary.json").write_text(dumps_json(summary, indent=2) + "\n")
    print(dumps_json(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
