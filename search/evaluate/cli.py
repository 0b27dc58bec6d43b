"""``python -m search.evaluate``: PSNR/SSIM of a model (or many released models) on test sets.

Examples::

    python -m search.evaluate --model eSR-TM_s2_K3_C4 --data Set5 --data Set14
    python -m search.evaluate --model bicubic --scale 3 --data Set5 --json
    python -m search.evaluate --model IMDN_s4 --weights IMDN_x4.pth --data /data/Urban100
    python -m search.evaluate --model 'eSR-MAX_s2_*' --csv reports/esr_max_s2.csv
    python -m search.evaluate --models-from ids.txt --csv out.csv
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import sys
import time
from pathlib import Path

from search.errors import ModelIdError, UserError, WeightsError, cli_main
from search.jsonio import dumps_json

DEFAULT_SETS = ("Set5", "Set14")


def build_parser() -> argparse.ArgumentParser:
    from search.data.protocols import list_protocols

    parser = argparse.ArgumentParser(
        prog="python -m search.evaluate",
        description="Evaluate SR models (PSNR/SSIM) on test sets under a named protocol.",
    )
    parser.add_argument("--model", action="append", default=[], metavar="ID",
                        help="model id (e.g. eSR-TM_s2_K3_C4), 'bicubic', or a glob over released "
                             "model ids ('eSR-MAX_s2_*'); repeat for several")
    parser.add_argument("--models-from", metavar="FILE",
                        help="text file with one model id (or glob) per line ('#' comments)")
    parser.add_argument("--weights", metavar="FILE",
                        help="weights file (default: the released weights of the id, if any)")
    parser.add_argument("--data", action="append", default=[], metavar="DIR",
                        help="test set name (resolved under the data roots) or folder; "
                             f"repeatable (default: {' '.join(DEFAULT_SETS)})")
    parser.add_argument("--data-root", metavar="DIR",
                        help="where named test sets live (default: $SR_DATA_ROOT, ./data, shipped data/)")
    parser.add_argument("--scale", type=int, help="upscaling factor (needed for 'bicubic' and ids without _s#)")
    parser.add_argument("--protocol", choices=list_protocols(),
                        help="evaluation protocol (default: the model family's: 'esr' for eSR-paper "
                             "models, else 'standard')")
    parser.add_argument("--gray-images", choices=("rgb", "y"),
                        help="how a gray test image is scored: 'rgb' = replicate to RGB then Y "
                             "(default), 'y' = it is its own Y (canonical SRCNN/VDSR Set14 tables)")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, ...)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout (a non-finite value, e.g. the "
                             "infinite PSNR of an exact output, is null)")
    parser.add_argument("--csv", metavar="FILE", help="write one row per model to this CSV file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def released_model_ids() -> list[str]:
    """Ids of every released weights file (``<weights root>/**/<id>.<ext>`` that parses)."""
    from search.models import parse_model_id
    from search.paths import weights_root

    root = weights_root()
    ids = []
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.suffix in (".model", ".pth", ".pt") and path.is_file():
                try:
                    parse_model_id(path.stem)
                except UserError:
                    continue
                ids.append(path.stem)
    return ids


def expand_model_ids(patterns: list[str]) -> list[str]:
    ids: list[str] = []
    released = None
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            if released is None:
                released = released_model_ids()
            matched = [m for m in released if fnmatch.fnmatchcase(m, pattern)]
            if not matched:
                raise ModelIdError(f"no released model id matches {pattern!r}")
            ids.extend(matched)
        else:
            ids.append(pattern)
    seen = set()
    return [m for m in ids if not (m in seen or seen.add(m))]


def read_models_file(path: str) -> list[str]:
    file = Path(path)
    if not file.is_file():
        raise UserError("models file not found", path=file)
    lines = file.read_text().splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def build_model(model_id: str, scale: int | None, weights: str | None):
    """A model ready to evaluate: 'bicubic' baseline or a registry id with weights loaded."""
    if model_id.lower() in ("bicubic", "matlab-bicubic"):
        if scale is None:
            raise UserError("--model bicubic needs --scale")
        from search.evaluate.baselines import MatlabBicubic

        return MatlabBicubic(scale)
    from search.models import create_model, load_weights, parse_model_id, released_weights_path

    spec_id = model_id
    if "_s" not in model_id and scale is not None:
        spec_id = f"{model_id.split('_')[0]}_s{scale}" + model_id[len(model_id.split('_')[0]):]
    spec = parse_model_id(spec_id)
    if scale is not None and spec.scale != scale:
        raise ModelIdError(f"model id {model_id!r} has scale {spec.scale}, but --scale {scale} was given")
    model = create_model(spec.model_id)
    path = weights or released_weights_path(spec.model_id)
    if path is None:
        raise WeightsError(f"no released weights for {spec.model_id}; pass --weights FILE")
    load_weights(model, path)
    return model


def _published_table():
    from search.paths import PUBLISHED_DIR

    path = PUBLISHED_DIR / "esr_tests.csv"
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        return {row["model"]: row for row in csv.DictReader(handle)}


def _row(model, protocol_name, result, published) -> dict:
    row = {"model": model.model_id, "family": getattr(model, "family", ""),
           "scale": getattr(model, "scale", ""), "protocol": protocol_name}
    pub = published.get(model.model_id)
    for name, values in result.items():
        row[f"psnr_{name}"] = round(values["psnr"], 6)
        row[f"ssim_{name}"] = round(values["ssim"], 6)
        row[f"images_{name}"] = values["images"]
        if pub and pub.get(f"psnr_{name}"):
            row[f"published_psnr_{name}"] = float(pub[f"psnr_{name}"])
            row[f"published_ssim_{name}"] = float(pub[f"ssim_{name}"])
            row[f"delta_psnr_{name}"] = round(values["psnr"] - float(pub[f"psnr_{name}"]), 6)
    return row


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from search.data.datasets import find_test_set
    from search.evaluate.evaluator import evaluate_model, resolve_protocol

    if args.threads:
        torch.set_num_threads(args.threads)
    patterns = list(args.model)
    if args.models_from:
        patterns += read_models_file(args.models_from)
    if not patterns:
        raise UserError("give --model ID (or --models-from FILE)")
    model_ids = expand_model_ids(patterns)
    if args.weights and len(model_ids) > 1:
        raise UserError("--weights applies to a single --model")
    test_sets = [find_test_set(d, data_root=args.data_root) for d in (args.data or DEFAULT_SETS)]
    batch = len(model_ids) > 1 or args.models_from is not None or any("*" in p for p in patterns)
    published = _published_table() if (batch or args.csv) else {}

    results: dict[str, dict] = {}
    rows = []
    started = time.perf_counter()
    outer = None
    if batch and not args.no_progress:
        from tqdm import tqdm

        outer = tqdm(total=len(model_ids), desc="models", unit="model", file=sys.stderr, dynamic_ncols=True)
    for model_id in model_ids:
        model = build_model(model_id, args.scale, args.weights)
        protocol = resolve_protocol(model, args.protocol)
        if args.gray_images:
            protocol = protocol.with_options(gray_images=args.gray_images)
        result = evaluate_model(model, test_sets, protocol=protocol, device=args.device,
                                progress=not args.no_progress and not batch)
        results[model.model_id] = result
        rows.append(_row(model, protocol.name, result, published))
        if outer is not None:
            outer.update(1)
        elif not args.json:
            for name, values in result.items():
                print(f"{model.model_id} [{protocol.name}] {name}: PSNR {values['psnr']:.4f} dB, "
                      f"SSIM {values['ssim']:.4f} ({values['images']} images)")
    if outer is not None:
        outer.close()
    elapsed = time.perf_counter() - started

    if args.csv:
        out = Path(args.csv)
        out.parent.mkdir(parents=True, exist_ok=True)
        fields: list[str] = []
        for row in rows:
            fields.extend(k for k in row if k not in fields)
        with out.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {out} ({len(rows)} models, {elapsed:.1f} s)", file=sys.stderr)
    if args.json:
        payload = results if batch else next(iter(results.values()))
        print(dumps_json(payload))
    elif batch and not args.csv:
        for row in rows:
            parts = [f"{k[5:]} {row[k]:.4f}" for k in row if k.startswith("psnr_")]
            print(f"{row['model']}: " + ", ".join(parts))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
