"""Parameters and MACs of the registry models that the paper tables compare (counted, no weights).

    python -m search.experiments paper_costs [--out studies/papers/costs.csv]

One row per model and part (``part`` empty: the whole model) with ``params`` (all parameters,
:func:`search.profile.flops.count_params`) and ``macs_1280x720`` (MACs at the papers' 1280x720
HR output, :data:`search.profile.flops.PAPER_HR_SIZE`; empty where not counted):

* IMDN (``IMDN_s<s>_B6_F64_R0.25``), each scale of ``published/imdn_reported.csv``: params
  and MACs;
* SMSR (``SMSR_s<s>``), each scale of ``published/smsr_reported.csv``: params only (its
  MACs depend on the masks at inference: ``python -m search.experiments smsr_schedules``);
* DASR, each model of ``published/dasr_derived.csv``: the parameters of each child module
  (generator, predictor), the parts the authors' code counts (REPORTED.md 4.2).

``python -m search.report.paper_tables`` reads the file beside the reported numbers.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from search.errors import UserError, cli_main
from search.paths import PUBLISHED_DIR, REPO_ROOT

COLUMNS = ["model_id", "part", "params", "macs_1280x720"]


def _published(published: Path, name: str) -> list[dict[str, str]]:
    path = Path(published) / name
    if not path.is_file():
        raise UserError("published numbers not found", path=path)
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


PAPERS = ("imdn", "smsr", "dasr")
# per scale of the paper's published file: (file, model id the paper tables compare, count MACs?)
PER_SCALE = {"imdn": ("imdn_reported.csv", "IMDN_s{scale}_B6_F64_R0.25", True),
             "smsr": ("smsr_reported.csv", "SMSR_s{scale}", False)}


def count_costs(published: Path = PUBLISHED_DIR, papers=PAPERS) -> list[dict]:
    """The rows of ``costs.csv`` for ``papers`` (see the module docstring)."""
    from search.models import create_model
    from search.profile.flops import (
        PAPER_HR_SIZE,
        count_flops,
        count_params,
        lr_shape_for,
    )

    unknown = [p for p in papers if p not in PAPERS]
    if unknown:
        raise UserError(f"unknown paper(s) {', '.join(unknown)}; one of {', '.join(PAPERS)}")
    rows = []
    for name, model_id_pattern, with_macs in (PER_SCALE[p] for p in papers if p in PER_SCALE):
        for scale in dict.fromkeys(int(r["scale"]) for r in _published(published, name)):
            model_id = model_id_pattern.format(scale=scale)  # as the paper tables name it
            model = create_model(model_id).eval()
            macs = count_flops(model, lr_shape_for(model, PAPER_HR_SIZE)) if with_macs else None
            rows.append({"model_id": model_id, "part": "", "params": count_params(model),
                         "macs_1280x720": macs})
    derived = _published(published, "dasr_derived.csv") if "dasr" in papers else []
    for model_id in dict.fromkeys(r["model_id"] for r in derived):
        model = create_model(model_id)
        for part, child in model.named_children():
            rows.append({"model_id": model_id, "part": part, "params": sum(p.numel() for p in child.parameters()),
                         "macs_1280x720": None})
    return rows


def write_costs(rows: list[dict], path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({c: ("" if row.get(c) is None else row[c]) for c in COLUMNS} for row in rows)


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.experiments paper_costs",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--published", type=Path, default=PUBLISHED_DIR, help="folder of the reported numbers")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "studies" / "papers" / "costs.csv")
    parser.add_argument("--papers", default=",".join(PAPERS), help="comma-separated subset of " + ",".join(PAPERS))
    args = parser.parse_args(argv)
    rows = count_costs(args.published, [p.strip() for p in args.papers.split(",") if p.strip()])
    write_costs(rows, args.out)
    print(f"{len(rows)} rows -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
