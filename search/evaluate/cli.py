"""``python -m search.evaluate``: PSNR/SSIM of a model (or many released models) on test sets.

Examples::

    python -m search.evaluate --model eSR-TM_s2_K3_C4 --data Set5 --data Set14
    python -m search.evaluate --model bicubic --scale 3 --data Set5 --json
    python -m search.evaluate --model IMDN_s4 --weights IMDN_x4.pth --data /data/Urban100
    python -m search.evaluate --model 'eSR-MAX_s2_*' --csv reports/esr_max_s2.csv
    python -m search.evaluate --models-from ids.txt --csv out.csv

Each test set used is named on stderr with where it was found (``Set5: 5 images from
/path/to/Set5``). A missing or bad set does not stop the others: the sets that work are
evaluated and printed / written as usual, then each failed set gives one line
``error: <set or path>: <problem>`` on stderr and the exit status is 2.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import os
import sys
import time
from pathlib import Path

from search.errors import (
    EXIT_USER_ERROR,
    DataError,
    ModelIdError,
    UserError,
    WeightsError,
    cli_main,
)
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
    from search.models import (
        create_model,
        load_weights,
        parse_model_id,
        released_weights_path,
    )

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


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _set_error(label: str, exc: BaseException) -> str:
    """``<set or path>: <problem>``; a message that starts with the set's path (its folder,
    or an image in it) is kept as it is."""
    message = _one_line(exc)
    if message.startswith((label, str(Path(label).expanduser()))):
        return message
    return f"{label}: {message}"


def _source_line(spec: str, test_set, data_root: str | None) -> str:
    """``Set5: 5 images from /abs/path``, noting a named set found outside the given data root."""
    where = Path(test_set.path).absolute()
    line = f"{test_set.name}: {len(test_set)} images from {where}"
    crops = getattr(test_set, "crops", None)  # "<set>_x{k}" folder some images are read from
    if crops is not None:
        line += f" (x{getattr(test_set, 'crops_scale', '?')} crops from {Path(crops).absolute()})"
    given_as_path = Path(spec).expanduser().absolute() == where
    preferred, option = (data_root, "--data-root") if data_root else (os.environ.get("SR_DATA_ROOT"), "SR_DATA_ROOT")
    if preferred and not given_as_path and not where.is_relative_to(Path(preferred).expanduser().absolute()):
        line += f" (not under {option} {preferred})"
    return line


def _in_set(exc: DataError, test_set) -> bool:
    """Whether ``exc`` is about a file of ``test_set`` (an image, a stored LR image, a crop)."""
    if exc.path is None:
        return False
    path = Path(str(exc.path)).absolute()
    folders = [test_set.path, test_set.lr_root, getattr(test_set, "crops", None)]
    return any(path.is_relative_to(Path(folder).absolute()) for folder in folders if folder is not None)


def _resolve_sets(specs: list[str], data_root: str | None):
    """``([(index, spec, TestSet)], [(index, error line)])``: every set that resolves, one
    line for each one that does not (``index``: its place among the --data options)."""
    from search.data.datasets import find_test_set

    found, errors = [], []
    for index, spec in enumerate(specs):
        try:
            found.append((index, spec, find_test_set(spec, data_root=data_root)))
        except UserError as exc:
            errors.append((index, _set_error(spec, exc)))
    return found, errors


@cli_main
def main(argv: list[str] | None = None) -> int:
    """Evaluate every model on every test set that can be read.

    A missing or bad test set (no such folder, no images, a corrupt or too small image) does
    not stop the others: each gives one ``error: <set>: ...`` line on stderr at the end, the
    results of the sets that worked are still printed (and written to --csv), and the exit
    status is then 2. A bad model id, weights file or setting still stops the run at once
    (exit 2, after the set errors met so far), an internal error too (exit 1).
    """
    args = build_parser().parse_args(argv)
    import torch

    from search.evaluate.evaluator import evaluate_model, model_color, resolve_protocol

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
    test_sets, errors = _resolve_sets(list(args.data or DEFAULT_SETS), args.data_root)
    batch = len(model_ids) > 1 or args.models_from is not None or any("*" in p for p in patterns)

    def report_errors() -> None:
        # each problem once, in the order of the --data options
        for line in dict.fromkeys(line for _, line in sorted(errors, key=lambda e: e[0])):
            print(f"error: {line}", file=sys.stderr, flush=True)

    if not test_sets:  # nothing to evaluate on: the set errors are the whole answer
        report_errors()
        raise SystemExit(EXIT_USER_ERROR)
    published = _published_table() if (batch or args.csv) else {}

    results: dict[str, dict] = {}
    rows = []
    # (set, scale, protocol, colour) whose data failed (a corrupt or too small image): the
    # samples are the same for the next model with that key, so it is not tried again
    bad_data: set[tuple] = set()
    shown: set[str] = set()      # specs whose source line was printed
    started = time.perf_counter()
    outer = None
    if batch and not args.no_progress:
        from tqdm import tqdm

        outer = tqdm(total=len(model_ids), desc="models", unit="model", file=sys.stderr, dynamic_ncols=True)

    def note(line: str) -> None:
        if outer is not None:
            outer.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    try:
        for model_id in model_ids:
            model = build_model(model_id, args.scale, args.weights)
            protocol = resolve_protocol(model, args.protocol)
            if args.gray_images:
                protocol = protocol.with_options(gray_images=args.gray_images)
            result: dict[str, dict] = {}
            data_key = (getattr(model, "scale", None), protocol.name, model_color(model))
            for index, spec, test_set in test_sets:
                if (index, *data_key) in bad_data:
                    continue
                try:
                    result.update(evaluate_model(model, [test_set], protocol=protocol, device=args.device,
                                                 progress=not args.no_progress and not batch))
                except DataError as exc:
                    if not _in_set(exc, test_set):  # e.g. a bad SR_MAX_IMAGE_PIXELS: stops the run
                        raise
                    bad_data.add((index, *data_key))  # a file of the set: the set's own problem
                    errors.append((index, _set_error(spec, exc)))
                    continue
                if spec not in shown:
                    shown.add(spec)
                    note(_source_line(spec, test_set, args.data_root))
                if outer is None and not args.json:
                    values = result[test_set.name]
                    print(f"{model.model_id} [{protocol.name}] {test_set.name}: PSNR {values['psnr']:.4f} dB, "
                          f"SSIM {values['ssim']:.4f} ({values['images']} images)", flush=True)
            results[model.model_id] = result
            rows.append(_row(model, protocol.name, result, published))
            if outer is not None:
                outer.update(1)
    except BaseException:
        if outer is not None:
            outer.close()
        report_errors()  # the set problems met so far, then the error that stops the run
        raise
    if outer is not None:
        outer.close()
    elapsed = time.perf_counter() - started

    if any(results.values()):  # something worked: print / write it, even if some sets failed
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
            print(dumps_json(payload), flush=True)
        elif batch and not args.csv:
            for row in rows:
                parts = [f"{k[5:]} {row[k]:.4f}" for k in row if k.startswith("psnr_")]
                print(f"{row['model']}: " + ", ".join(parts))
    if errors:
        report_errors()
        raise SystemExit(EXIT_USER_ERROR)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
