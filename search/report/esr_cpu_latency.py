"""The released eSR grid's measured CPU latency beside the published device speeds.

    python -m search.report.esr_cpu_latency [--measured studies/measured/esr_cpu] [--out reports/esr]

Reads what ``python -m search.experiments esr_cpu_latency`` measured on this machine
(``latency.csv``, ``machine.json``) and the authors' speeds (``published/esr_tests.csv``:
``speed_AGX``, ``speed_MaxQ``, ``speed_RPI``; higher is faster, units not stated, see
published/REPORTED.md 5), and writes

* ``<out>/cpu_latency.csv``: per model the measured CPU latency (ms), its IQR, params, MACs
  and the three published speeds;
* ``<out>/cpu_latency.md``: the machine, and the Spearman rank correlation of the CPU times
  with each device's published *time* (1 / speed), for all scales pooled and per scale,
  over the models both have (so +1 = the same ranking); MACs alone beside them.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from search.errors import UserError, cli_main
from search.jsonio import dumps_json
from search.markdown import markdown_table
from search.paths import PUBLISHED_DIR, REPO_ROOT

DEVICES = (("speed_AGX", "Jetson AGX Xavier"), ("speed_MaxQ", "GTX 1080 MaxQ"), ("speed_RPI", "Raspberry Pi 400"))


def spearman(a: pd.Series, b: pd.Series) -> float | None:
    """Spearman's rho (scipy, as the latency predictor's report) over the rows both have."""
    both = pd.concat([a, b], axis=1).dropna()
    if len(both) < 3:
        return None
    value = spearmanr(both.iloc[:, 0], both.iloc[:, 1]).statistic
    return None if math.isnan(value) else float(value)


def load(measured_dir: Path) -> tuple[pd.DataFrame, dict]:
    table = measured_dir / "latency.csv"
    if not table.is_file():
        raise UserError("no latency.csv: run `python -m search.experiments esr_cpu_latency` first",
                        path=measured_dir)
    machine = json.loads((measured_dir / "machine.json").read_text()) if (measured_dir / "machine.json").is_file() else {}
    measured = pd.read_csv(table)
    published = pd.read_csv(PUBLISHED_DIR / "esr_tests.csv", usecols=["model", *[c for c, _ in DEVICES]])
    return measured.merge(published, on="model", how="left"), machine


def correlations(frame: pd.DataFrame) -> list[dict]:
    rows = []
    scopes = [("all scales", frame)] + [(f"x{s}", frame[frame["scale"] == s]) for s in sorted(frame["scale"].unique())]
    for scope, part in scopes:
        row = {"scope": scope, "models": int(len(part))}
        for column, _ in DEVICES:
            row[f"rho_{column[6:]}"] = spearman(part["latency_ms"], 1.0 / part[column])
        row["rho_MACs"] = spearman(part["latency_ms"], part["macs"])
        rows.append(row)
    return rows


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.report.esr_cpu_latency",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--measured", type=Path, default=REPO_ROOT / "studies" / "measured" / "esr_cpu")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "esr")
    args = parser.parse_args(argv)
    frame, machine = load(args.measured)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.sort_values(["scale", "family", "model"]).to_csv(args.out / "cpu_latency.csv", index=False)
    rows = correlations(frame)
    (args.out / "cpu_latency.json").write_text(dumps_json({"machine": machine, "spearman": rows}, indent=2) + "\n")
    size = machine.get("output_size", ["?", "?"])
    lines = [
        "# Measured CPU latency of the released eSR grid (a fourth device)", "",
        f"{len(frame)} models timed by `python -m search.experiments esr_cpu_latency` on "
        f"{machine.get('cpu', 'an unknown CPU')} ({machine.get('logical_cpus', '?')} logical CPUs, torch "
        f"{machine.get('torch', '?')}, {machine.get('torch_threads', '?')} thread(s), float32), HR output "
        f"{size[0]}x{size[1]}; latency = median of the CPU profile's repeats after its warm-up "
        f"(measured, this machine). Published speeds: `published/esr_tests.csv` (units not stated; "
        "higher = faster), compared as times (1 / speed).", "",
        "Spearman rank correlation of the CPU latency with each device's published time, and with MACs:", "",
        markdown_table(["scope", "models", *[f"{name} (`{column}`)" for column, name in DEVICES], "MACs"],
                       [[r["scope"], r["models"], *[_fmt(r[f"rho_{c[6:]}"]) for c, _ in DEVICES],
                         _fmt(r["rho_MACs"])] for r in rows]).rstrip("\n"),
        "", "Per-model times: `cpu_latency.csv` (with params, MACs and the published speeds).",
    ]
    (args.out / "cpu_latency.md").write_text("\n".join(lines) + "\n")
    print(f"{len(frame)} models -> {args.out / 'cpu_latency.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
