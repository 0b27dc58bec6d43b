"""``reports/latency_predictor.md`` + ``.csv``: cross-validated error of the latency predictors.

Every number is computed by :mod:`search.profile.predictor` when the report is written
(``python -m search.profile predictor --device all --cv 5 --save --report``).
"""

from __future__ import annotations

import csv
import datetime as _dt
from pathlib import Path

import numpy as np

from search.errors import UserError
from search.markdown import markdown_table
from search.models import create_model
from search.paths import REPO_ROOT
from search.profile.devices import get_device
from search.profile.predictor import (
    PREDICTOR_DIR,
    PUBLISHED_CSV,
    LatencyPredictor,
    graph_features,
    predict_latency,
)

REPORT_DIR = REPO_ROOT / "reports"
EXTRAPOLATION_EXAMPLES = ("IMDN_s4", "IMDN-RTC_s2", "DASR_s4")


def _pct(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def _rho(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def write_report(summaries: dict, rows: list[dict], folds: int,
                 report_dir: Path | None = None) -> list[Path]:
    folder = Path(report_dir or REPORT_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / "latency_predictor.csv"
    md_path = folder / "latency_predictor.md"
    if rows:
        with csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    lines = [
        "# Latency predictors: cross-validated error",
        "",
        f"Generated {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M UTC} by "
        "`python -m search.profile predictor --device all --cv "
        f"{folds} --save --report`. Targets: the eSR authors' published speeds "
        "(`published/esr_tests.csv`), read as frames per second at 1920x1080 output "
        "(latency_ms = 1000 / speed). Features: the traced graph of each model at that output "
        "size (per operator kind: count, MACs, bytes moved; channel/kernel statistics). "
        "Model: a non-negative roofline-style linear prior times gradient-boosted trees on "
        "log(latency / prior). Per-model held-out predictions: `latency_predictor.csv`.",
        "",
        f"## {folds}-fold cross-validation (all families pooled, shuffled, seed 0)",
        "",
        _table(["device", "column", "models", "within +-10%", "within +-20%", "Spearman", "median abs. error"],
               [[name, s["column"], s["n"], _pct(s["within_10pct"]), _pct(s["within_20pct"]), _rho(s["spearman"]),
                 _pct(s["median_abs_rel_error"])] for name, s in summaries.items()]),
    ]
    lines += ["", "## Leave-one-family-out (fit on the other families, predict the held-out one)", ""]
    families = sorted({f for s in summaries.values() for f in s.get("leave_one_family_out", {}).get("per_family", {})})
    if families:
        def cell(m) -> str:
            return "-" if m is None else f"{_pct(m['within_10pct'])} / {_pct(m['within_20pct'])} / {_rho(m['spearman'])}"

        table = [[family] + [cell(s.get("leave_one_family_out", {}).get("per_family", {}).get(family))
                             for s in summaries.values()] for family in families]
        table.append(["**all (pooled)**"] + [cell(s.get("leave_one_family_out", {}).get("overall"))
                                             for s in summaries.values()])
        lines.append(_table(["family"] + [f"{n} +-10% / +-20% / rho" for n in summaries], table))

    lines += ["", "## Units of the published speed", "",
              "Speed falls as the cost of a model grows (Spearman of speed vs MACs below, "
              "negative), so it is a rate, not a time. At a fixed output size a larger scale "
              "means a smaller LR input, and speed rises with the scale (Bicubic x2/x3/x4). "
              "Read as frames per second at Full-HD output, the 20 heaviest models imply the "
              "MAC rates below, plausible for each device (the Pi's rate is that of a "
              "four-core Cortex-A72 running PyTorch):", ""]
    from scipy.stats import spearmanr

    table = []
    for name in summaries:
        device_rows = [r for r in rows if r["device"] == name]
        if not device_rows:
            continue
        macs = np.array([r["gmacs"] for r in device_rows])
        speed = np.array([r["published_speed_fps"] for r in device_rows])
        heavy = np.argsort(macs)[-20:]
        rate = np.median(macs[heavy] * speed[heavy])
        table.append([name, f"{spearmanr(speed, macs).statistic:.3f}", f"{rate:.1f}"])
    lines.append(_table(["device", "Spearman(speed, MACs)", "median GMAC/s of the 20 heaviest models"], table))

    lines += ["", "## Noise in the targets", "",
              "Within a one-layer family (eSR-MAX/TM/TR) at fixed scale and K, one more channel "
              "C never costs less, so a published speed that *rises* with C by more than 10% is "
              "measurement noise (or a kernel-selection effect) that no cost model can follow. "
              "Share of such adjacent-C steps, from `published/esr_tests.csv`:", "",
              _table(["device", "eSR-MAX", "eSR-TM", "eSR-TR"], _noise_rows(summaries))]
    lines += ["", "## Outside the fitted families (extrapolation)", "",
              "Predictions of the stored predictors for models of other families, labelled as "
              "extrapolation: their error is not covered by the cross-validation above.", ""]
    table = []
    try:
        for model_id in EXTRAPOLATION_EXAMPLES:
            try:
                model = create_model(model_id)
            except Exception:  # family not registered in this checkout
                continue
            for name in summaries:
                try:
                    pred = predict_latency(model, name)
                except Exception as exc:  # no stored predictor yet, or untraceable model
                    table.append([model_id, name, "-", "-", f"{type(exc).__name__}: {exc}"])
                    continue
                gmacs = graph_features(model, (1080, 1920))["macs"]
                table.append([model_id, name, f"{gmacs:.1f}", f"{pred['latency_ms']:.1f}",
                              pred["latency_extrapolation_reason"] or "within fitted range"])
    except ImportError:
        pass
    lines.append(_table(["model", "device", "GMACs", "predicted ms", "note"], table))
    md_path.write_text("\n".join(lines) + "\n")
    return [md_path, csv_path] if rows else [md_path]


def _table(headers: list[str], rows: list[list]) -> str:
    return markdown_table(headers, rows).rstrip("\n")


def _noise_rows(summaries: dict) -> list[list[str]]:
    import pandas as pd

    table = pd.read_csv(PUBLISHED_CSV)
    rows = []
    for name in summaries:
        column = get_device(name).published_column
        cells = []
        for family in ("eSR-MAX", "eSR-TM", "eSR-TR"):
            part = table[table["family"] == family].sort_values(["s", "K", "C"])
            rises = total = 0
            for _, group in part.groupby(["s", "K"]):
                speed = group[column].to_numpy()
                ratio = speed[1:] / speed[:-1]
                rises += int(np.sum(ratio > 1.10))
                total += len(ratio)
            cells.append(f"{rises}/{total} ({rises / max(total, 1):.0%})")
        rows.append([name, *cells])
    return rows


def rerender(report_dir: Path | None = None) -> list[Path]:
    """Rewrite the markdown from the stored predictors (their CV metrics) and the CSV."""
    folder = Path(report_dir or REPORT_DIR)
    csv_path = folder / "latency_predictor.csv"
    if not csv_path.is_file():
        raise UserError("no per-model CSV to re-render from; run predictor --report", path=csv_path)
    with csv_path.open() as handle:
        rows = [{k: (v if k in ("device", "model", "family") else float(v)) for k, v in r.items()}
                for r in csv.DictReader(handle)]
    summaries = {}
    folds = 5
    for name in dict.fromkeys(r["device"] for r in rows):
        predictor = LatencyPredictor.load(PREDICTOR_DIR / f"{name}.json")
        folds = predictor.cv.get("folds", folds)
        summaries[name] = {"column": predictor.published_column, **predictor.cv,
                           "leave_one_family_out": predictor.leave_one_family_out}
    return write_report(summaries, rows, folds, folder)
