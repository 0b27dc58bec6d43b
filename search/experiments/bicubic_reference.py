"""MATLAB-bicubic PSNR of a study's test sets at its scales, the reference line of its front plot.

    python -m search.experiments bicubic_reference studies/imdn_ratio --out studies/bicubic/imdn_ratio.json

For every scale of the study's finished trials and every test set of its ``psnr_<set>``
columns (``trials.csv``), the ``Bicubic`` model of the registry is evaluated under the
study's protocol (its space's, from ``study.json``; else each family's default). Writes
``{"study", "protocol", "psnr": {set: {scale: PSNR}}}``, which ``python -m
search.report.fronts --bicubic`` draws where the study has no Bicubic trial of its own.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from search.errors import UserError, cli_main
from search.jsonio import dumps_json


def study_scales_and_sets(study: Path) -> tuple[list[int], list[str], dict]:
    """(scales of the finished trials, test sets of the psnr_<set> columns, study.json)."""
    table = Path(study) / "trials.csv"
    if not table.is_file():
        raise UserError("no trials.csv (is this a study folder?)", path=study)
    with table.open(newline="") as handle:
        reader = csv.DictReader(handle)
        test_sets = [c[len("psnr_"):] for c in reader.fieldnames or [] if c.startswith("psnr_")]
        scales = sorted({int(float(r["scale"])) for r in reader if r.get("status") == "complete" and r.get("scale")})
    manifest_path = Path(study) / "study.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    return scales, test_sets, manifest


def bicubic_reference(study: Path) -> dict:
    from search.evaluate import evaluate_model
    from search.models import create_model

    scales, test_sets, manifest = study_scales_and_sets(study)
    protocol = None
    space_path = manifest.get("options", {}).get("space")
    if space_path:
        from search.space import load_space

        protocol = load_space(space_path).fixed.protocol
    psnr: dict[str, dict[str, float]] = {name: {} for name in test_sets}
    for scale in scales:
        model = create_model(family="Bicubic", scale=scale)
        scores = evaluate_model(model, test_sets, protocol=protocol, progress=False)
        for name in test_sets:
            psnr[name][str(scale)] = scores[name]["psnr"]
    return {"study": Path(study).name, "protocol": protocol, "psnr": psnr}


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.experiments bicubic_reference",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="study folder (trials.csv, study.json)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    result = bicubic_reference(args.study)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dumps_json(result, indent=2) + "\n")
    print(f"{args.study}: bicubic PSNR {dumps_json(result['psnr'])} -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
