"""Compare grid, random, TPE and NSGA-II on the tabular eSR benchmark (published results).

A trial is a lookup in published/esr_tests.csv (see search/study/tabular.py), so the whole
comparison (4 samplers x 10 seeds x 10 % of the grid) takes about a minute. Writes
reports/tabular/sampler_comparison.{csv,md,png}: hypervolume ratio (against the full grid's
front) after each number of trials used, mean and spread over the seeds.

    python -m search.experiments tabular_samplers [--seeds 10] [--fraction 0.1] [--horizon 0.2] [--out reports/tabular]

``--fraction`` is the budget the comparison table is taken at; ``--horizon`` lets every run
go on to a larger share of the grid so the report can say how many trials each sampler needs
to reach the 0.98 target. A sampler never sees the budget, so the first ``fraction`` trials
of a longer run are exactly the run at ``fraction``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from search.errors import cli_main
from search.markdown import markdown_table
from search.paths import REPO_ROOT, SPACES_DIR
from search.profile.latency import time_call
from search.space import load_space
from search.study.pareto import TARGET_RATIO, trials_to_target
from search.study.runner import INITIAL_DESIGNS, check_initial_design
from search.study.samplers import SAMPLERS
from search.study.tabular import run_tabular

OBJECTIVES = "psnr_Set14:max,speed_AGX:max"
DEFAULT_DESIGN = INITIAL_DESIGNS[0]  # python -m search.run's default


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.experiments tabular_samplers",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=str(SPACES_DIR / "esr.yaml"))
    parser.add_argument("--objectives", default=OBJECTIVES)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--fraction", type=float, default=0.1, help="share of the grid's size used as trials")
    parser.add_argument("--horizon", type=float, default=None,
                        help="run on to this share of the grid for the trials-to-target curve (default: --fraction)")
    parser.add_argument("--initial-designs", default=",".join(INITIAL_DESIGNS),
                        help="initial designs each sampler but grid is run with (comma-separated)")
    parser.add_argument("--out", default=str(REPO_ROOT / "reports" / "tabular"))
    args = parser.parse_args(argv)
    designs = [d.strip() for d in args.initial_designs.split(",") if d.strip()]
    for design in designs:
        check_initial_design(design)
    variants = variant_names(designs)

    space = load_space(args.space)
    grid = len(space.enumerate())
    trials = max(1, int(round(args.fraction * grid)))
    horizon = max(trials, int(round((args.horizon or args.fraction) * grid)))
    step = trials / 10
    checkpoints = sorted({max(1, int(round(k * step))) for k in range(1, int(horizon / step + 1e-9) + 1)}
                         | {trials, horizon})
    rows, found = [], []

    def run_all() -> None:
        for variant, (sampler, design) in variants.items():
            for seed in range(args.seeds):
                summary = run_tabular(space, args.objectives, sampler=sampler, trials=horizon, seed=seed,
                                      progress_every=checkpoints, keep_rows=True, initial_design=design)
                for n, ratio in summary["ratio_by_trials"].items():
                    rows.append({"sampler": variant, "seed": seed, "trials": int(n), "hypervolume_ratio": ratio,
                                 "budget": trials})
                # what a run stopped at the budget had evaluated
                found.append((variant, {r["model_id"] for r in summary["rows"][:trials]}))
                print(f"{variant:>14} seed {seed}: ratio {summary['ratio_by_trials'][str(trials)]:.4f} at "
                      f"{trials} trials, {summary['hypervolume_ratio']:.4f} at {summary['trials']}",
                      file=sys.stderr)

    wall = time_call(run_all).wall_s[0]
    curves = pd.DataFrame(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curves.to_csv(out / "sampler_curves.csv", index=False)
    final = curves[curves.trials == trials].groupby("sampler")["hypervolume_ratio"]
    table = pd.DataFrame({"mean": final.mean(), "std": final.std(), "min": final.min(),
                          "max": final.max()}).reindex(list(variants))
    table.to_csv(out / "sampler_comparison.csv")
    lines = [
        "# Tabular benchmark: samplers on the published eSR results",
        "",
        f"Space `{Path(args.space).name}` ({grid} configurations), objectives `{args.objectives}`, "
        f"{trials} trials ({args.fraction:.0%} of the grid) per run, {args.seeds} seeds per sampler. "
        "Hypervolume ratio = hypervolume of the trials' values / that of the full grid "
        "(objectives min-max normalised over the grid, reference point 1.1; duplicates are not "
        "re-evaluated and do not count as trials). Generated by `python -m search.experiments tabular_samplers` "
        f"in {wall:.0f} s.",
        "",
        markdown_table(["sampler", "mean", "std", "min", "max"],
                       [[sampler, f"{row['mean']:.4f}", f"{row['std']:.4f}", f"{row['min']:.4f}", f"{row['max']:.4f}"]
                        for sampler, row in table.iterrows()]).rstrip("\n"),
    ]
    if "smallest" in designs:
        lines += ["", f"Without a suffix, a run starts as `python -m search.run` does by default "
                  f"(`--initial-design smallest`): each family's smallest configuration at each scale "
                  f"({len(space.smallest_configurations())} trials, counted in the budget), then the "
                  "sampler takes over. `+random_start`: the sampler's own start "
                  "(`--initial-design random`)."]
    lines += [""]
    for design in designs:
        nsga2, rand = _variant("nsga2", design), _variant("random", design)
        goal, base = table.loc[nsga2, "mean"], table.loc[rand, "mean"]
        lines.append(f"NSGA-II against random search, {design} start: mean hypervolume ratio {nsga2} "
                     f"{goal:.4f}, {rand} {base:.4f} (NSGA-II {'higher' if goal > base else 'not higher'}; "
                     f"{'reaches' if goal >= TARGET_RATIO else 'stays below'} {TARGET_RATIO} of the grid's "
                     "hypervolume on average).")
        lines.append("")
    lines.pop()
    if horizon > trials:
        lines += ["", *_to_target_section(curves, grid, trials, horizon)]
    shares = front_shares(space, args.objectives, found)
    shares.to_csv(out / "front_points.csv", index=False)
    lines += ["", *_shares_section(shares, args.seeds)]
    (out / "sampler_comparison.md").write_text("\n".join(lines) + "\n")
    _plot(curves, out / "sampler_comparison.png", grid, trials, variants, designs)
    print("\n".join(lines))
    return 0


def _variant(sampler: str, design: str) -> str:
    """``nsga2`` under the default initial design, ``nsga2+random_start`` under another."""
    return sampler if design == DEFAULT_DESIGN or sampler == "grid" else f"{sampler}+{design}_start"


def variant_names(designs: list[str]) -> dict[str, tuple[str, str]]:
    """Report names -> (sampler, initial design); grid has its own order and runs once."""
    variants = {"grid": ("grid", "random")}
    for sampler in SAMPLERS:
        if sampler != "grid":
            variants.update({_variant(sampler, d): (sampler, d) for d in designs})
    return variants


def front_shares(space, objectives: str, found: list[tuple[str, set]]) -> pd.DataFrame:
    """Each full-grid front point's exclusive share of the grid hypervolume, and how many runs
    of each sampler had it on their front (a grid-front point is on the front of any set of
    trials that contains it, so this is how often it was evaluated)."""
    from search.study.pareto import REFERENCE_POINT, exclusive_contributions, normalise
    from search.study.tabular import grid_front, load_table, parse_tabular_objectives

    table = load_table("published")
    objs = parse_tabular_objectives(objectives, table)
    ids = [c["config_id"] for c in space.enumerate()]
    bounds, grid_hv, front_ids = grid_front(table, ids, objs)
    values = table.loc[front_ids, [o.metric for o in objs]].to_numpy(dtype=np.float64)
    points, _ = normalise(values, [o.mode for o in objs], bounds)
    shares = exclusive_contributions(points, REFERENCE_POINT) / grid_hv
    frame = pd.DataFrame({"model": front_ids, **{o.metric: values[:, j] for j, o in enumerate(objs)},
                          "hypervolume_share": shares})
    for sampler in dict.fromkeys(name for name, _ in found):
        runs = [front for name, front in found if name == sampler]
        frame[f"found_{sampler}"] = [sum(m in front for front in runs) for m in front_ids]
    return frame.sort_values("hypervolume_share", ascending=False).reset_index(drop=True)


def _shares_section(shares: pd.DataFrame, seeds: int, top: int = 8) -> list[str]:
    head = shares.head(top)
    samplers = [c[len("found_"):] for c in shares.columns if c.startswith("found_")]
    metrics = [c for c in shares.columns if c not in ("model", "hypervolume_share") and not c.startswith("found_")]
    lines = [
        "## Where the full-grid hypervolume lies",
        "",
        f"The {len(shares)} configurations on the full grid's front, by the share of the grid's "
        "hypervolume that each one alone adds (`front_points.csv` lists all of them). A point "
        "with a large share must be evaluated exactly: no neighbour makes up for it. Found = "
        f"number of the {seeds} runs per sampler that evaluated it.",
        "",
        markdown_table(["model", *metrics, "share", *(f"found {s}" for s in samplers)],
                       [[row["model"], *(f"{row[m]:.2f}" for m in metrics), f"{row['hypervolume_share']:.2%}",
                         *(f"{int(row[f'found_{s}'])}/{seeds}" for s in samplers)]
                        for _, row in head.iterrows()]).rstrip("\n"),
    ]
    lines += ["", f"The {top} largest shares sum to {head['hypervolume_share'].sum():.1%} of the grid's "
              f"hypervolume; the rest of the front ({len(shares) - len(head)} points) adds "
              f"{shares['hypervolume_share'].iloc[top:].sum():.1%} on its own."]
    return lines


def _to_target_section(curves: pd.DataFrame, grid: int, trials: int, horizon: int) -> list[str]:
    means = curves.groupby(["sampler", "trials"])["hypervolume_ratio"].mean()
    reached = trials_to_target(curves)
    lines = [
        f"## Trials needed for {TARGET_RATIO}",
        "",
        f"The same runs continued to {horizon} trials ({horizon / grid:.0%} of the grid); mean "
        "ratio over the seeds, and the first checkpoint where it reaches "
        f"{TARGET_RATIO}.",
        "",
    ]
    cells = []
    for sampler, n in reached.items():
        where = f"{n} trials ({n / grid:.1%} of the grid)" if n else f"not within {horizon} trials"
        cells.append([sampler, f"{means[sampler][trials]:.4f}", f"{means[sampler][horizon]:.4f}", where])
    return lines + [markdown_table(["sampler", f"at {trials}", f"at {horizon}", f"mean reaches {TARGET_RATIO} at"],
                                   cells).rstrip("\n")]


def _plot(curves: pd.DataFrame, path: Path, grid: int, trials: int,
          variants: dict[str, tuple[str, str]], designs: list[str]) -> None:
    """One panel per initial design (grid search, which has none, in each), colours by sampler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    palette = dict(zip(SAMPLERS, sns.color_palette(n_colors=len(SAMPLERS))))
    fig, axes = plt.subplots(1, len(designs), figsize=(6.2 * len(designs), 4.6), sharey=True, squeeze=False)
    for ax, design in zip(axes[0], designs):
        names = [v for v, (sampler, d) in variants.items() if sampler == "grid" or d == design]
        data = curves[curves["sampler"].isin(names)].assign(
            base=lambda f: f["sampler"].map(lambda v: variants[v][0]))
        sns.lineplot(data=data, x="trials", y="hypervolume_ratio", hue="base", style="base",
                     palette=palette, markers=True, errorbar="sd", ax=ax)
        ax.axhline(TARGET_RATIO, color="gray", linestyle=":", linewidth=1, label=f"{TARGET_RATIO} goal")
        if curves["trials"].max() > trials:
            ax.axvline(trials, color="gray", linestyle="--", linewidth=1, label=f"budget ({trials} trials)")
        ax.set_xlabel(f"trials used (grid = {grid} configurations)")
        ax.set_ylabel("hypervolume / full-grid hypervolume")
        start = ("the sampler's own start" if design == "random"
                 else "each family's smallest configuration per scale first" if design == "smallest" else design)
        ax.set_title(f"initial design: {start}", fontsize=10)
        ax.legend(loc="lower right", title="sampler")
    fig.suptitle("Tabular eSR benchmark: PSNR Set14 vs published AGX speed (mean ± sd over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
