"""Pareto front, hypervolume and plot of one study folder (``trials.csv`` of ``search.run``).

    python -m search.report.fronts studies/esr_x2 --out reports/studies/esr_x2 [--objectives ...]
        [--bicubic studies/bicubic/esr_x2.json]

A front across scales is meaningless (x2 and x4 PSNR are not comparable), so everything is
per scale: the finished trials of each scale make their own front, hypervolume and plot.
Writes into ``--out``:

* ``pareto.csv``: per scale, the non-dominated finished trials under the study's objectives
  (the ``--objectives`` it ran with, from ``study.json``, else the space's), every
  trials.csv column kept, scales ascending, best first objective first;
* ``front.json``: trial counts, the latency label(s), and under ``scales`` per scale
  (``x2``, ...): its finished trials, front size, hypervolume (objectives min-max normalised
  over that scale's finished trials, reference point 1.1: :mod:`search.study.pareto`), the
  best value of each objective and the bicubic reference PSNR;
* ``metrics.json`` (what ``dvc metrics show`` prints): trial counts, ``smoke_run``, and per
  scale the front size, hypervolume and best PSNR;
* ``front.md``: one section and table per scale;
* ``plots/front_x<s>.png``: per scale, PSNR against latency, parameters and MACs, one colour
  and marker per family, each panel's 2-D front drawn as a line, the scale's front members
  outlined, MATLAB-bicubic PSNR of the same test set and protocol marked (a Bicubic trial
  when the study has one, else a dashed line at the value that ``python -m
  search.experiments bicubic_reference`` wrote into ``--bicubic``), and the latency's
  measured/predicted label in the latency axis title.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from search.errors import UserError, cli_main
from search.jsonio import dumps_json
from search.markdown import markdown_table
from search.space import load_space
from search.study.pareto import REFERENCE_POINT, hypervolume, normalise, pareto_mask
from search.study.statuses import FAILED_STATUSES, STATUS_COMPLETE, STATUS_REPEAT

COST_AXES = (("latency_ms", "latency (ms)"), ("params", "parameters"), ("flops", "MACs"))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "8")


def read_study(study_dir: Path) -> tuple[pd.DataFrame, dict]:
    study_dir = Path(study_dir)
    table = study_dir / "trials.csv"
    if not table.is_file():
        raise UserError("no trials.csv (is this a study folder?)", path=study_dir)
    trials = pd.read_csv(table)
    manifest_path = study_dir / "study.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    return trials, manifest


# Budgets that exercise the pipeline but do not train models that mean anything; their results
# say so wherever they are shown.
SMOKE_BUDGETS = ("smoke",)


def study_budget(manifest: dict) -> str | None:
    """The study's training budget name (its --budget, else its space's), None for an inline one."""
    options = manifest.get("options", {})
    budget = options.get("budget")
    if not budget and options.get("space") and Path(options["space"]).is_file():
        budget = load_space(options["space"]).fixed.budget
    return budget if isinstance(budget, str) else None


def budget_note(budget: str | None) -> str:
    """One sentence on the study's budget (``study_budget``), for the report's first paragraph."""
    if budget in SMOKE_BUDGETS:
        return (f"SMOKE RUN (training budget {budget!r}: a few steps per trial to exercise the pipeline; "
                "the PSNR of these models says nothing about the architectures).")
    return f"Training budget {budget!r}." if budget else "Training budget: the space's inline budget."


def study_objectives(manifest: dict, override: str | None, columns) -> list[tuple[str, str]]:
    """[(column, "max"|"min")]: ``override``, else the study's options, else its space's."""
    spec = override or manifest.get("options", {}).get("objectives")
    if not spec:
        space_path = manifest.get("options", {}).get("space")
        if space_path:
            spec = [str(o) for o in load_space(space_path).fixed.objectives]
    if not spec:
        raise UserError("no objectives: pass --objectives (e.g. psnr_Set14:max,latency_ms:min)")
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    objectives = []
    for item in items:
        column, _, direction = str(item).strip().partition(":")
        if direction not in ("max", "min"):
            raise UserError(f"objective {item!r} needs :max or :min")
        if column not in columns:
            raise UserError(f"objective column {column!r} is not in trials.csv")
        objectives.append((column, direction))
    return objectives


def latency_label(trials: pd.DataFrame) -> str:
    """'measured on cpu' / 'predicted for jetson (CV: 83% within 10%)' from the trials' labels."""
    if "latency_source" not in trials:
        return "source unknown"
    labels = []
    for source in sorted(trials["latency_source"].dropna().astype(str).unique()):
        kind, _, device = source.partition(":")
        text = f"{kind} on {device}" if kind == "measured" else f"{kind} for {device}"
        if kind == "predicted" and "latency_cv_within_10pct" in trials:
            cv = trials.loc[trials["latency_source"] == source, "latency_cv_within_10pct"].dropna()
            if len(cv):
                text += f" (predictor CV: {float(cv.iloc[0]):.0%} within 10%)"
        labels.append(text)
    return "; ".join(labels) or "source unknown"


def finished(trials: pd.DataFrame) -> pd.DataFrame:
    return trials[trials["status"] == STATUS_COMPLETE]


def trial_counts(trials: pd.DataFrame) -> dict:
    # repeat rows (a completed configuration proposed again, not trained) are not trials
    return {"trials": int((trials["status"] != STATUS_REPEAT).sum()), "complete": int(len(finished(trials))),
            "failed": int(trials["status"].isin(FAILED_STATUSES).sum())}


def front_table(trials: pd.DataFrame, objectives: list[tuple[str, str]]) -> tuple[pd.DataFrame, dict]:
    """(front rows, metrics) of the finished trials."""
    done = finished(trials).copy()
    columns = [c for c, _ in objectives]
    directions = [d for _, d in objectives]
    values = done[columns].to_numpy(dtype=np.float64)
    metrics: dict = {**trial_counts(trials), "objectives": [f"{c}:{d}" for c, d in objectives],
                     "reference_point": REFERENCE_POINT}
    if len(done) == 0:
        metrics.update(front_size=0, hypervolume=None)
        return done, metrics
    mask = pareto_mask(values, directions)
    points, bounds = normalise(values, directions)
    front = done[mask].sort_values(columns[0], ascending=directions[0] == "min")
    metrics.update(
        front_size=int(mask.sum()),
        hypervolume=hypervolume(points, REFERENCE_POINT),
        normalisation={"lower": bounds[0].tolist(), "upper": bounds[1].tolist(),
                       "note": "min-max over this study's finished trials; max objectives flipped; 0 = best"},
        best={c: (float(done[c].max()) if d == "max" else float(done[c].min())) for c, d in objectives},
        front_ids=front["config_id"].astype(str).tolist(),
        latency=latency_label(done),
    )
    return front, metrics


def scale_fronts(trials: pd.DataFrame, objectives: list[tuple[str, str]]) -> tuple[pd.DataFrame, dict]:
    """(front rows of every scale, metrics): one front and hypervolume per scale, never across."""
    done = finished(trials)
    metrics: dict = {**trial_counts(trials), "objectives": [f"{c}:{d}" for c, d in objectives],
                     "reference_point": REFERENCE_POINT, "latency": latency_label(done) if len(done) else "n/a",
                     "scales": {}}
    fronts = []
    for scale in sorted(trials["scale"].dropna().astype(int).unique()):
        at_scale = trials[trials["scale"].astype(float) == scale]
        front, own = front_table(at_scale, objectives)
        for key in ("objectives", "reference_point", "latency"):
            own.pop(key, None)
        if "normalisation" in own:
            own["normalisation"]["note"] = ("min-max over this scale's finished trials; max objectives "
                                            "flipped; 0 = best")
        metrics["scales"][f"x{scale}"] = own
        fronts.append(front)
    columns = list(trials.columns)
    front = pd.concat(fronts, ignore_index=True) if fronts else trials.iloc[0:0]
    return front[columns], metrics


def psnr_column(objectives, columns) -> str:
    for column, _ in objectives:
        if column.startswith("psnr_"):
            return column
    found = [c for c in columns if c.startswith("psnr_")]
    if not found:
        raise UserError("trials.csv has no psnr_<set> column to plot")
    return found[-1]


def bicubic_psnr(path: Path, scales, test_set: str) -> dict[int, float]:
    """MATLAB-bicubic PSNR per scale on ``test_set`` from ``bicubic_reference``'s JSON."""
    path = Path(path)
    if not path.is_file():
        raise UserError("bicubic reference not found (python -m search.experiments bicubic_reference)", path=path)
    psnr = json.loads(path.read_text()).get("psnr", {})
    missing = [f"x{s}" for s in scales if str(int(s)) not in psnr.get(test_set, {})]
    if missing:
        raise UserError(f"no bicubic PSNR on {test_set} at {', '.join(missing)}", path=path)
    return {int(s): float(psnr[test_set][str(int(s))]) for s in scales}


def cost_front(points: pd.DataFrame, cost: str, quality: str) -> pd.DataFrame:
    """The rows of ``points`` on the front of least ``cost`` and most ``quality``, by cost."""
    mask = pareto_mask(points[[cost, quality]].to_numpy(float), ["min", "max"])
    return points[mask].sort_values(cost)


def draw_cost_front(ax, points: pd.DataFrame, cost: str, quality: str, **style) -> pd.DataFrame:
    """Draw the attainment staircase of :func:`cost_front`, carried on to the largest cost of
    ``points`` so that a single-point front is drawn too; returns the front's rows."""
    line = cost_front(points, cost, quality)
    xs = list(line[cost]) + [points[cost].max()]
    ys = list(line[quality]) + [line[quality].iloc[-1]]
    ax.step(xs, ys, where="post", **style)
    return line


def plot_front(trials: pd.DataFrame, front: pd.DataFrame, objectives, manifest: dict, path: Path,
               title: str, bicubic: dict[int, float] | None = None, smoke_run: bool = False) -> None:
    """One figure of the trials given (one row of panels per scale: call it per scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import EngFormatter, NullFormatter

    done = finished(trials)
    y = psnr_column(objectives, done.columns)
    axes_spec = [(c, label) for c, label in COST_AXES if c in done and done[c].notna().any()]
    scales = sorted(done["scale"].dropna().astype(int).unique())
    families = sorted(done["family"].astype(str).unique())
    palette = dict(zip(families, sns.color_palette("tab10", max(len(families), 3))))
    markers = {f: MARKERS[i % len(MARKERS)] for i, f in enumerate(families)}
    front_ids = set(front["config_id"].astype(str))
    lat = latency_label(done)

    fig, axes = plt.subplots(len(scales), len(axes_spec), squeeze=False,
                             figsize=(4.6 * len(axes_spec), 3.6 * len(scales)))
    for r, scale in enumerate(scales):
        at_scale = done[done["scale"].astype(int) == scale]
        for c, (x, xlabel) in enumerate(axes_spec):
            ax = axes[r][c]
            for family in families:
                rows = at_scale[at_scale["family"] == family]
                if rows.empty:
                    continue
                is_bicubic = family == "Bicubic"
                ax.scatter(rows[x], rows[y], s=90 if is_bicubic else 36,
                           marker="*" if is_bicubic else markers[family],
                           color="black" if is_bicubic else palette[family],
                           edgecolors=["black" if i in front_ids else "none" for i in rows["config_id"]],
                           linewidths=1.2, label=family, zorder=3)
            pts = at_scale[[x, y]].dropna()
            if len(pts):
                draw_cost_front(ax, pts, x, y, color="0.3", lw=1, zorder=2, label="front (this panel)")
            if bicubic and scale in bicubic and "Bicubic" not in set(at_scale["family"]):
                ax.axhline(bicubic[scale], color="black", ls="--", lw=1, label="bicubic (PSNR)")
            spread = pts[x][pts[x] > 0]
            log = len(spread) > 1 and spread.max() / spread.min() > 10
            if log:
                ax.set_xscale("log")
            if x != "latency_ms":
                ax.xaxis.set_major_formatter(EngFormatter(sep=""))
                ax.xaxis.set_minor_formatter(NullFormatter())
            scale_note = ", log" if log else ""
            if x == "latency_ms":
                ax.set_xlabel(f"latency (ms{scale_note}), {lat}")
            else:
                ax.set_xlabel(f"{xlabel}{' (log)' if log else ''}")
            ax.set_ylabel(f"PSNR {y[5:]} (dB)")
            ax.set_title(f"x{scale}: PSNR vs {xlabel.split(' (')[0]}", fontsize=10)
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for row in axes:
        for ax in row:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=9,
               frameon=False, bbox_to_anchor=(0.5, 0.0))
    where = f" x{scales[0]}" if len(scales) == 1 else ""
    smoke = " [SMOKE RUN: untrained models]" if smoke_run else ""
    fig.suptitle(f"{title}{where}{smoke}: {len(done)} finished trials, front of "
                 f"{', '.join(f'{c}:{d}' for c, d in objectives)} outlined", fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _summary_line(own: dict, objectives: list[str]) -> str:
    return (f"{own['complete']} finished trials ({own['failed']} failed); front of {', '.join(objectives)}: "
            f"{own['front_size']} trials; hypervolume {_fmt(own['hypervolume'])} (objectives min-max normalised "
            f"over this scale's finished trials, reference point {REFERENCE_POINT})")


def headline_metrics(metrics: dict, objectives) -> dict:
    """The few numbers ``dvc metrics show`` prints for a study (one narrow table for every
    study): trial counts, smoke or not, and per scale the front size, hypervolume and best
    PSNR. Everything else is in ``front.json``."""
    psnr = next((c for c, _ in objectives if c.startswith("psnr")), None)
    headline = {key: metrics[key] for key in ("trials", "complete", "failed", "smoke_run")}
    for key, own in metrics["scales"].items():
        headline[key] = {"front_size": own["front_size"], "hypervolume": own["hypervolume"]}
        if psnr is not None:
            headline[key]["best_psnr"] = own.get("best", {}).get(psnr)
    return headline


def write_report(trials: pd.DataFrame, manifest: dict, out: Path, objectives, title: str,
                 bicubic_file: Path | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    front, metrics = scale_fronts(trials, objectives)
    front.to_csv(out / "pareto.csv", index=False)
    done = finished(trials)
    scales = sorted(done["scale"].astype(int).unique()) if len(done) else []
    bicubic = None
    if bicubic_file is not None and len(done):
        y = psnr_column(objectives, done.columns)
        without = [s for s in scales if "Bicubic" not in set(done[done["scale"].astype(int) == s]["family"])]
        if without:
            bicubic = bicubic_psnr(bicubic_file, without, y[5:])
            for scale, value in bicubic.items():
                metrics["scales"][f"x{scale}"]["bicubic_psnr"] = value
    metrics["budget"] = study_budget(manifest)
    metrics["smoke_run"] = metrics["budget"] in SMOKE_BUDGETS
    (out / "front.json").write_text(dumps_json(metrics, indent=2) + "\n")
    (out / "metrics.json").write_text(dumps_json(headline_metrics(metrics, objectives), indent=2) + "\n")
    shown = ["config_id", "family", "scale"] + [c for c, _ in objectives]
    shown += [c for c in ("params", "flops", "latency_ms", "latency_source") if c in front and c not in shown]
    lines = [f"# Pareto fronts: {title}", "",
             f"{metrics['complete']} finished trials ({metrics['failed']} failed) over "
             f"{len(metrics['scales'])} scale(s); one front per scale (PSNR at different scales is not "
             f"comparable). Latency: {metrics['latency']}. {budget_note(metrics['budget'])}", ""]
    for key, own in metrics["scales"].items():
        rows = front[front["scale"].astype(int) == int(key[1:])]
        lines += [f"## {key}", "", _summary_line(own, metrics["objectives"]) + ".", "",
                  markdown_table(shown, ([_fmt(row[c]) for c in shown] for _, row in rows.iterrows()))]
    (out / "front.md").write_text("\n".join(lines))
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    for stale in plots.glob("front_x*.png"):
        stale.unlink()
    for scale in scales:
        at_scale = trials[trials["scale"].astype(float) == scale]
        plot_front(at_scale, front[front["scale"].astype(int) == scale], objectives, manifest,
                   plots / f"front_x{scale}.png", title, bicubic, smoke_run=metrics["smoke_run"])
    return metrics


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.report.fronts", description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="study folder (trials.csv, study.json)")
    parser.add_argument("--out", type=Path, required=True, help="report folder")
    parser.add_argument("--objectives", help="override the study's objectives, e.g. psnr_Set14:max,params:min")
    parser.add_argument("--bicubic", type=Path, default=None,
                        help="bicubic_reference JSON of this study: the bicubic PSNR line where the study "
                             "has no Bicubic trial (default: no line)")
    args = parser.parse_args(argv)
    trials, manifest = read_study(args.study)
    objectives = study_objectives(manifest, args.objectives, trials.columns)
    metrics = write_report(trials, manifest, args.out, objectives, args.study.name,
                           bicubic_file=args.bicubic)
    per_scale = "; ".join(f"{key}: front {own['front_size']}, hypervolume {_fmt(own['hypervolume'])}"
                          for key, own in metrics["scales"].items())
    print(f"{args.study}: {metrics['complete']} finished; {per_scale or 'no finished trial'} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
