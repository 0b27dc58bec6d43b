"""Does the suite's evaluation of the released eSR models reproduce the published Pareto front?

    python -m search.report.esr_front [--released reports/esr_released_eval.csv] [--out reports/esr]

Two fronts of PSNR (max) against the published Jetson AGX speed (``speed_AGX``, max; units
not stated by the authors, REPORTED.md 5) over the 1185 released models:

* *published*: the authors' PSNR from ``published/esr_tests.csv``;
* *reproduced*: the suite's PSNR of the released weights (``python -m search.experiments esr_released_eval``,
  ``reports/esr_released_eval.csv``); the speeds are the published ones in both.

Compared per scope (x2, x3, x4, and all scales together as in the tabular benchmark) and
test set (Set14, the tabular benchmark's objective, and Set5). A model on one front and not
the other is a *difference*; it is *explained* when its own PSNR delta (reproduced -
published) and the deltas of the models that decide its membership (those dominating it on
the front it is missing from) are all under ``--tolerance`` dB (0.05). The verdict per
comparison is ``same`` (identical fronts), ``explained`` or ``unexplained``.

Writes ``front_comparison.csv`` (one row per front member or difference), ``.md``,
``.json`` (verdicts, the DVC metrics) and ``.png`` (the fronts per scale, Set14).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from search.errors import UserError, cli_main
from search.jsonio import dumps_json
from search.markdown import markdown_table
from search.paths import PUBLISHED_DIR, REPO_ROOT
from search.study.pareto import dominators, pareto_mask

SPEED = "speed_AGX"
TOLERANCE_DB = 0.05
TEST_SETS = ("Set14", "Set5")


def load(released_path: Path, published_path: Path = PUBLISHED_DIR / "esr_tests.csv") -> pd.DataFrame:
    """One row per model present in both files: published and reproduced PSNR, published speed."""
    if not Path(released_path).is_file():
        raise UserError("released-model evaluation not found (run python -m search.experiments esr_released_eval)",
                        path=released_path)
    published = pd.read_csv(published_path)
    released = pd.read_csv(released_path)
    needed = {"model"} | {f"psnr_{s}" for s in TEST_SETS}
    if not needed <= set(released.columns):
        raise UserError(f"columns {sorted(needed - set(released.columns))} missing", path=released_path)
    keep = published[["model", "family", "s", SPEED] + [f"psnr_{s}" for s in TEST_SETS]].rename(
        columns={"s": "scale", **{f"psnr_{s}": f"published_psnr_{s}" for s in TEST_SETS}})
    ours = released[["model"] + [f"psnr_{s}" for s in TEST_SETS]].rename(
        columns={f"psnr_{s}": f"reproduced_psnr_{s}" for s in TEST_SETS})
    table = keep.merge(ours, on="model", how="inner")
    for s in TEST_SETS:
        table[f"delta_{s}"] = table[f"reproduced_psnr_{s}"] - table[f"published_psnr_{s}"]
    return table


def _dominators(values: np.ndarray, index: int) -> np.ndarray:
    """Rows dominating row ``index`` (both objectives maximised)."""
    return dominators(values, index, ["max", "max"])


def compare(table: pd.DataFrame, test_set: str, scope: str, tolerance: float = TOLERANCE_DB) -> tuple[list[dict], dict]:
    """Rows (front members and differences) and a verdict for one scope and test set."""
    sub = table if scope == "all" else table[table["scale"] == int(scope.lstrip("x"))]
    sub = sub.reset_index(drop=True)
    pub_values = sub[[f"published_psnr_{test_set}", SPEED]].to_numpy(float)
    our_values = sub[[f"reproduced_psnr_{test_set}", SPEED]].to_numpy(float)
    on_pub = pareto_mask(pub_values, ["max", "max"])
    on_ours = pareto_mask(our_values, ["max", "max"])
    deltas = sub[f"delta_{test_set}"].to_numpy(float)
    rows = []
    for i in np.flatnonzero(on_pub | on_ours):
        status = "both" if on_pub[i] and on_ours[i] else ("published only" if on_pub[i] else "reproduced only")
        deciders: list[int] = []
        if status == "published only":
            deciders = list(_dominators(our_values, i))
        elif status == "reproduced only":
            deciders = list(_dominators(pub_values, i))
        explained = None
        if status != "both":
            explained = bool(abs(deltas[i]) < tolerance and all(abs(deltas[j]) < tolerance for j in deciders))
        rows.append({
            "scope": scope, "test_set": test_set, "model": sub.at[i, "model"], "family": sub.at[i, "family"],
            "scale": int(sub.at[i, "scale"]), SPEED: float(sub.at[i, SPEED]),
            "published_psnr": float(pub_values[i, 0]), "reproduced_psnr": float(our_values[i, 0]),
            "delta_psnr": float(deltas[i]), "front": status,
            "decided_by": ";".join(sub.at[j, "model"] for j in deciders),
            "decider_max_abs_delta": (float(max(abs(deltas[j]) for j in deciders)) if deciders else None),
            "explained": explained,
        })
    differences = [r for r in rows if r["front"] != "both"]
    verdict = "same" if not differences else ("explained" if all(r["explained"] for r in differences) else "unexplained")
    summary = {"scope": scope, "test_set": test_set, "models": int(len(sub)),
               "published_front": int(on_pub.sum()), "reproduced_front": int(on_ours.sum()),
               "common": int((on_pub & on_ours).sum()), "differences": len(differences),
               "unexplained": sum(not r["explained"] for r in differences), "verdict": verdict}
    return rows, summary


def compare_all(table: pd.DataFrame, tolerance: float = TOLERANCE_DB) -> tuple[pd.DataFrame, list[dict]]:
    rows, summaries = [], []
    scopes = [f"x{s}" for s in sorted(table["scale"].unique())] + ["all"]
    for test_set in TEST_SETS:
        for scope in scopes:
            r, s = compare(table, test_set, scope, tolerance)
            rows += r
            summaries.append(s)
    return pd.DataFrame(rows), summaries


def plot(table: pd.DataFrame, rows: pd.DataFrame, path: Path, test_set: str = "Set14") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    scales = sorted(table["scale"].unique())
    fig, axes = plt.subplots(1, len(scales), figsize=(5.2 * len(scales), 4.4), squeeze=False)
    for ax, scale in zip(axes[0], scales):
        sub = table[table["scale"] == scale]
        ax.scatter(sub[SPEED], sub[f"published_psnr_{test_set}"], s=6, color="0.75", label="all models (published PSNR)")
        fr = rows[(rows["scope"] == f"x{scale}") & (rows["test_set"] == test_set)]
        pub = fr[fr["front"] != "reproduced only"].sort_values(SPEED)
        ours = fr[fr["front"] != "published only"].sort_values(SPEED)
        ax.step(pub[SPEED], pub["published_psnr"], where="pre", color="tab:orange", lw=1.6,
                marker="o", ms=4, label="published front")
        ax.step(ours[SPEED], ours["reproduced_psnr"], where="pre", color="tab:blue", lw=1.2, ls="--",
                marker="x", ms=6, label="reproduced front (suite's PSNR)")
        bic = sub[sub["family"] == "Bicubic"]
        ax.scatter(bic[SPEED], bic[f"published_psnr_{test_set}"], marker="*", s=140, color="black",
                   zorder=4, label="bicubic")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(f"{v:g}")[0] in "25" else ""))
        ax.set_xlabel("AGX speed (published, units not stated; higher = faster; log axis)")
        ax.set_ylabel(f"PSNR {test_set} (dB)")
        ax.set_title(f"x{scale}: released eSR-paper models", fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, frameon=False, fontsize=9)
    fig.suptitle(f"Pareto fronts (PSNR {test_set} vs AGX speed): published table vs the suite's evaluation", fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 0.94))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(released: Path, out: Path, tolerance: float = TOLERANCE_DB) -> dict:
    table = load(released)
    rows, summaries = compare_all(table, tolerance)
    out.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out / "front_comparison.csv", index=False)
    overall = "unexplained" if any(s["verdict"] == "unexplained" for s in summaries) else (
        "same" if all(s["verdict"] == "same" for s in summaries) else "explained")
    metrics = {"verdict": overall, "tolerance_db": tolerance, "models": int(len(table)),
               "comparisons": summaries,
               **{f"{s['test_set']}_{s['scope']}_differences": s["differences"] for s in summaries}}
    (out / "front_comparison.json").write_text(dumps_json(metrics, indent=2) + "\n")
    lines = ["# eSR: published front vs the front of the suite's own evaluation", "",
             f"Objectives: PSNR (max) and published Jetson AGX speed `{SPEED}` (max). Models: {len(table)} "
             f"released models evaluated by `python -m search.experiments esr_released_eval` (`{released.name}`). A front "
             f"difference is explained when the PSNR delta (reproduced - published) of the model and of "
             f"the models deciding its membership are all under {tolerance} dB.", "",
             f"**Overall verdict: {overall}.**", "",
             markdown_table(["test set", "scope", "models", "published front", "reproduced front", "common",
                             "differences", "unexplained", "verdict"],
                            [[s["test_set"], s["scope"], s["models"], s["published_front"], s["reproduced_front"],
                              s["common"], s["differences"], s["unexplained"], s["verdict"]]
                             for s in summaries]).rstrip("\n")]
    diffs = rows[rows["front"] != "both"] if len(rows) else rows
    lines += ["", "## Differences", ""]
    if len(diffs) == 0:
        lines.append("None: every comparison has the same models on both fronts.")
    else:
        cells = []
        for _, r in diffs.iterrows():
            dec = r["decider_max_abs_delta"]
            cells.append([r["test_set"], r["scope"], r["model"], r["front"], f"{r['published_psnr']:.3f}",
                          f"{r['reproduced_psnr']:.3f}", f"{r['delta_psnr']:+.4f}", r["decided_by"] or "-",
                          "-" if pd.isna(dec) else f"{dec:.4f}", r["explained"]])
        lines.append(markdown_table(["test set", "scope", "model", "on front", "published PSNR", "reproduced PSNR",
                                     "delta (dB)", "decided by", "max abs delta of deciders", "explained"],
                                    cells).rstrip("\n"))
    (out / "front_comparison.md").write_text("\n".join(lines) + "\n")
    plot(table, rows, out / "front_comparison.png")
    return metrics


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.report.esr_front", description=__doc__.splitlines()[0])
    parser.add_argument("--released", type=Path, default=REPO_ROOT / "reports" / "esr_released_eval.csv")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "esr")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE_DB, help="dB (default 0.05)")
    args = parser.parse_args(argv)
    metrics = write_report(args.released, args.out, args.tolerance)
    print(f"eSR front comparison: {metrics['verdict']} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
