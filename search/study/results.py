"""``trials.csv``: one row per finished trial, appended and fsync'ed as each trial finishes.

The file is the study's record of finished trials: a row is written (and flushed to disk)
before Optuna is told the trial's values, so after a ``kill -9`` every trial Optuna knows as
finished is in the file, or is recovered from Optuna on resume. A half-written last line
(the process died mid-write) is dropped on resume.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, Iterable

from search.space.values import csv_value

LEADING_COLUMNS = ["trial", "config_id", "model_id", "family", "scale", "status", "error"]
TRAILING_COLUMNS = ["params", "flops", "latency_ms", "latency_source", "latency_cv_within_10pct", "latency_ray_node_id", "train_time_s", "steps",
                    "final_loss", "trial_time_s", "weights_path", "tune_trial_id"]


def trial_columns(hparam_names: Iterable[str], test_sets: Iterable[str]) -> list[str]:
    columns = list(LEADING_COLUMNS) + [h for h in hparam_names if h not in LEADING_COLUMNS]
    for test_set in test_sets:
        columns += [f"psnr_{test_set}", f"ssim_{test_set}"]
    return columns + TRAILING_COLUMNS


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""  # failed trials: no metric rather than a fake number
    return csv_value(value)


class TrialsCsv:
    def __init__(self, path: str | os.PathLike, columns: list[str]):
        self.path = Path(path)
        self.columns = columns

    def exists(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    def repair(self) -> None:
        """Drop a half-written last line left by a killed process; check the header."""
        if not self.exists():
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as handle:
                handle.truncate(cut)
                handle.flush()
                os.fsync(handle.fileno())

    def read(self) -> list[dict[str, str]]:
        if not self.exists():
            return []
        with open(self.path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def header(self) -> list[str]:
        if not self.exists():
            return []
        with open(self.path, newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), [])

    def append(self, row: dict[str, Any]) -> None:
        new_file = not self.exists()
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerow({k: _cell(row.get(k)) for k in self.columns})
            handle.flush()
            os.fsync(handle.fileno())
