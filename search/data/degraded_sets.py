"""Deterministic DASR test sets: bicubic and Level I/II/III versions of any HR folder.

    from search.data.degraded_sets import make_degraded_sets
    sets = make_degraded_sets("Set5", out_dir="runs/dasr/testsets", scale=4, seed=0)
    # {"bicubic": TestSet("Set5_bicubic"), "I": TestSet("Set5_LevelI"), ...}

Each level is written once in the BasicSR layout the evaluator reads
(:mod:`search.data.datasets`): ``<out>/<set>_<level>/HR/<name>.png`` (the HR image, RGB,
mod-cropped to the scale) and ``LR_bicubic/X<s>/<stem>x<s>.png`` (the degraded LR; the
folder keeps BasicSR's name although the LR is not bicubic for Levels I-III), plus
``manifest.json`` with the seed, scale, degree, the settings file's SHA-256 and each
image's drawn degradation (parameters and 33-number vector). Level I/II/III use the weak,
standard and severe degrees (``levels`` in ``published/dasr_degradations.yaml``);
``bicubic`` is MATLAB bicubic of the uint8 HR (the standard protocol's LR).

Every image's degradation is drawn from its own generator, seeded with
``(seed, level, file name)``, so it does not depend on the other files of the folder.
A folder whose manifest matches (same source files, seed, scale, settings) is reused.
The default output folder is ``degraded/`` under the first data root.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from search.data.datasets import TestSet, find_test_set, load_test_set
from search.data.degradations import (
    SETTINGS_FILE,
    apply_degradation,
    encode,
    level_degrees,
    load_settings,
    sample_degradation,
)
from search.data.images import mod_crop, read_image, write_image
from search.data.imresize import imresize
from search.errors import DataError, cli_main
from search.paths import data_roots

LEVELS = ("bicubic", "I", "II", "III")
MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def level_folder_name(set_name: str, level: str) -> str:
    return f"{set_name}_bicubic" if level == "bicubic" else f"{set_name}_Level{level}"


def _image_seed(seed: int, level: str, name: str) -> int:
    entropy = [int(seed), zlib.crc32(level.encode()), zlib.crc32(name.encode())]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def _settings_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _source_stamp(images: list[Path]) -> list[list]:
    return [[p.name, p.stat().st_size] for p in images]


def _to_rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


def degrade_level_image(image: np.ndarray, level: str, *, scale: int, seed: int, name: str,
                        settings: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(hr uint8 RGB mod-cropped, lr uint8, record)`` for one image at one level."""
    hr = mod_crop(_to_rgb(image), scale).astype(np.uint8)
    if level == "bicubic":
        lr = np.clip(imresize(hr, 1.0 / scale), 0, 255).astype(np.uint8)
        return hr, lr, {"file": name, "level": level}
    degree = level_degrees(settings)[level]
    image_seed = _image_seed(seed, level, name)
    degradation = sample_degradation(np.random.default_rng(image_seed), degree, scale=scale, settings=settings)
    hr_tensor = torch.from_numpy(hr.transpose(2, 0, 1).astype(np.float32) / 255.0)
    lr_tensor = apply_degradation(hr_tensor, degradation)
    lr = (lr_tensor.numpy().transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8)
    record = {"file": name, "level": level, "degree": degree, "seed": image_seed,
              "degradation": dataclasses.asdict(degradation),
              "vector": [round(float(v), 8) for v in encode(degradation, settings)]}
    return hr, lr, record


def make_degraded_set(source: str | os.PathLike | TestSet, level: str, out_dir: str | os.PathLike | None = None,
                      *, scale: int = 4, seed: int = 0, data_root=None, settings_path=None,
                      progress: bool = False, force: bool = False) -> TestSet:
    """Write (or reuse) one level of ``source`` and return it as a :class:`TestSet`."""
    if level not in LEVELS:
        raise DataError(f"unknown level {level!r} (known: {', '.join(LEVELS)})")
    test_set = source if isinstance(source, TestSet) else find_test_set(source, data_root)
    settings_file = Path(settings_path) if settings_path else SETTINGS_FILE
    settings = load_settings(settings_file)
    out_root = Path(out_dir) if out_dir is not None else data_roots(data_root)[0] / "degraded"
    folder = out_root / level_folder_name(test_set.name, level)
    header = {
        "format": FORMAT_VERSION,
        "source": str(test_set.path),
        "source_files": _source_stamp(test_set.images),
        "level": level,
        "degree": None if level == "bicubic" else level_degrees(settings)[level],
        "scale": int(scale),
        "seed": int(seed),
        "settings_file": str(settings_file),
        "settings_sha256": _settings_digest(settings_file),
    }
    manifest_path = folder / MANIFEST
    if manifest_path.is_file() and not force:
        try:
            existing = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            existing = {}
        if {k: existing.get(k) for k in header if k not in ("source", "settings_file")} == \
                {k: v for k, v in header.items() if k not in ("source", "settings_file")}:
            return load_test_set(folder)
    from tqdm import tqdm

    hr_dir, lr_dir = folder / "HR", folder / "LR_bicubic" / f"X{scale}"
    hr_dir.mkdir(parents=True, exist_ok=True)
    lr_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for path in tqdm(test_set.images, desc=f"{folder.name}", unit="img", disable=not progress, leave=False):
        hr, lr, record = degrade_level_image(read_image(path), level, scale=scale, seed=seed,
                                             name=path.name, settings=settings)
        write_image(hr_dir / f"{path.stem}.png", hr)
        write_image(lr_dir / f"{path.stem}x{scale}.png", lr)
        records.append(record)
    manifest_path.write_text(json.dumps({**header, "images": records}, indent=1))
    return load_test_set(folder)


def make_degraded_sets(source, out_dir=None, *, levels=LEVELS, scale: int = 4, seed: int = 0,
                       data_root=None, settings_path=None, progress: bool = False,
                       force: bool = False) -> dict[str, TestSet]:
    """``{level: TestSet}`` for each of ``levels`` (default bicubic, I, II, III)."""
    test_set = source if isinstance(source, TestSet) else find_test_set(source, data_root)
    return {level: make_degraded_set(test_set, level, out_dir, scale=scale, seed=seed, data_root=data_root,
                                     settings_path=settings_path, progress=progress, force=force)
            for level in levels}


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m search.data.degraded_sets",
        description="Write deterministic bicubic / Level I/II/III (DASR weak/standard/severe) "
                    "versions of HR test sets in the HR/ + LR_bicubic/X<s>/ layout.")
    parser.add_argument("sets", nargs="+", help="test set names (under the data roots) or folders")
    parser.add_argument("--out", default=None, help="output folder (default: <data root>/degraded)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--levels", default=",".join(LEVELS), help="comma-separated: bicubic,I,II,III")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--force", action="store_true", help="rewrite even if a matching manifest exists")
    args = parser.parse_args(argv)
    levels = [level.strip() for level in args.levels.split(",") if level.strip()]
    for name in args.sets:
        sets = make_degraded_sets(name, args.out, levels=levels, scale=args.scale, seed=args.seed,
                                  data_root=args.data_root, progress=True, force=args.force)
        for level, test_set in sets.items():
            print(f"{level:8s} {test_set.path} ({len(test_set)} images)")
    return 0


if __name__ == "__main__":
    main()
