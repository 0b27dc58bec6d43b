"""Test sets: folders of HR images, found by name under the data roots or given as a path.

Layouts understood (the first that matches wins):

* ``<set>/HR/*.png`` with optional ``<set>/LR_bicubic/X{s}/<stem>x{s}.png`` (BasicSR/EDSR
  benchmark layout); the LR files are used by protocols that take LR from files;
* ``<set>/*.png``: any folder of PNG/BMP/JPG/TIFF images, colour or gray; LR images are
  made on the fly (MATLAB bicubic) from the HR image mod-cropped to the scale.

Names resolve under :func:`search.paths.data_roots` (``--data-root`` > ``SR_DATA_ROOT`` >
``./data`` > the shipped ``data/``), also one level down (``benchmarks/``, ``test/``), case
insensitively, with common aliases (B100 = BSD100 = BSDS100).

Scale crops: a folder ``<set>_x{k}`` beside a set (``B100_x3`` beside ``B100``) holds the same
images cropped (top-left kept) so that ``k`` divides their sides. BSD100's originals are 481x321:
``B100`` is their 480x320 crop (x2, x4), and 320 is not a multiple of 3, so ``B100_x3`` holds the
480x321 crop the published x3 results were computed on. The registered protocols mod-crop the HR
image (top-left) to the scale, so the set reads such an image from ``<set>_x{k}`` whenever that changes
nothing at any other scale 2..8 (same top-left mod-crop as the ``<set>`` image) and gives a
larger crop at ``k``: x3 then scores the 480x321 crops, x2 and x4 exactly the ``B100`` pixels
(480x320). Without the folder (a data root with only ``B100``) x3 mod-crops ``B100`` to 480x318,
as before. ``find_test_set(..., scale_crops=False)`` ignores such folders.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from search.data.images import is_image_file
from search.errors import DataError
from search.paths import data_roots

# Other names the same benchmark goes by in SR code bases.
_ALIASES = {
    "b100": ("B100", "BSD100", "BSDS100"),
    "bsd100": ("B100", "BSD100", "BSDS100"),
    "bsds100": ("B100", "BSD100", "BSDS100"),
    "urban100": ("Urban100", "urban100"),
    "manga109": ("Manga109", "manga109"),
}
_SUBFOLDERS = ("", "benchmarks", "benchmark", "test", "testsets", "degraded")
# Scales a "<set>_x{k}" crops folder may be for, and the scales at which reading an image from
# it must give the same top-left mod-crop as the set's own image (every other one of these).
_CROP_SCALES = range(2, 9)


@dataclass(frozen=True)
class TestSet:
    """A test set: ``name`` (folder name, used as the result key), its folder and images."""

    name: str
    path: Path
    images: list[Path] = field(default_factory=list)
    lr_root: Path | None = None  # folder holding X2/, X3/, ... when present
    # "<set>_x{k}" folder some of ``images`` are read from (see the module docstring), and k
    crops: Path | None = None
    crops_scale: int | None = None

    __test__ = False  # not a pytest class

    def lr_path(self, hr_path: Path, scale: int) -> Path | None:
        """The stored LR image for ``hr_path`` at ``scale``, if the set ships one."""
        if self.lr_root is None:
            return None
        folder = self.lr_root / f"X{scale}"
        if not folder.is_dir():
            return None
        stem = hr_path.stem
        for candidate_stem in (f"{stem}x{scale}", stem, f"{stem}_x{scale}"):
            for suffix in (hr_path.suffix, ".png", ".bmp"):
                candidate = folder / f"{candidate_stem}{suffix}"
                if candidate.is_file():
                    return candidate
        return None

    def __len__(self) -> int:
        return len(self.images)


def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file's header; None when it cannot be read (read_image reports it)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except Exception:  # noqa: BLE001 - any unreadable file: keep the set's own image
        return None


def _mod(side: int, scale: int) -> int:
    return side - side % scale


def crop_extends(image_size: tuple[int, int] | None, crop_size: tuple[int, int] | None, scale: int) -> bool:
    """Whether an image of ``crop_size`` (width, height) may stand for one of ``image_size`` in a
    ``<set>_x{scale}`` folder: both sides multiples of ``scale``, a larger mod-crop than the
    image's at ``scale``, and the same top-left mod-crop at every other scale 2..8.

    >>> crop_extends((480, 320), (480, 321), 3)   # BSD100: B100 vs B100_x3
    True
    """
    if image_size is None or crop_size is None:
        return False
    (width, height), (crop_width, crop_height) = image_size, crop_size
    if crop_width % scale or crop_height % scale or crop_width < width or crop_height < height:
        return False
    for other in _CROP_SCALES:
        if other != scale and (_mod(crop_width, other), _mod(crop_height, other)) != (_mod(width, other), _mod(height, other)):
            return False
    return (crop_width, crop_height) != (_mod(width, scale), _mod(height, scale))


def _crops_folder(set_folder: Path) -> tuple[Path, int] | None:
    """The first ``<set>_x{k}`` folder beside ``set_folder`` (k = 2..8) and its k."""
    for scale in _CROP_SCALES:
        for suffix in (f"_x{scale}", f"_X{scale}"):
            candidate = set_folder.parent / f"{set_folder.name}{suffix}"
            if candidate.is_dir():
                return candidate, scale
    return None


def _with_crops(set_folder: Path, images: list[Path]) -> tuple[list[Path], Path | None, int | None]:
    """``images`` with each one a ``<set>_x{k}`` crop extends (:func:`crop_extends`) replaced
    by that crop (same file name, else same stem); the crops folder and k, or None."""
    found = _crops_folder(set_folder)
    if found is None:
        return images, None, None
    crops, scale = found
    crop_images = _list_images(crops / "HR") if (crops / "HR").is_dir() else _list_images(crops)
    by_name = {p.name: p for p in crop_images}
    by_stem = {p.stem: p for p in crop_images}
    chosen, used = [], 0
    for image in images:
        crop = by_name.get(image.name) or by_stem.get(image.stem)
        if crop is not None and crop_extends(_image_size(image), _image_size(crop), scale):
            chosen.append(crop)
            used += 1
        else:
            chosen.append(image)
    return (chosen, crops, scale) if used else (images, None, None)


def load_test_set(folder: str | os.PathLike, name: str | None = None, *, scale_crops: bool = True) -> TestSet:
    """Build a :class:`TestSet` from a folder (either layout); DataError if it has no images.

    ``scale_crops``: read images from a ``<set>_x{k}`` folder beside it where that gives the
    published crop at x{k} and changes nothing at other scales (module docstring).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("test set folder not found", path=folder)
    hr_folder = folder / "HR"
    set_folder = folder  # the folder named after the set (beside which <set>_x{k} is looked for)
    if hr_folder.is_dir():
        images = _list_images(hr_folder)
        lr_root = folder / "LR_bicubic"
        set_name = name or folder.name
        set_path = folder
    else:
        images = _list_images(folder)
        lr_root = None
        # A path that points at the HR/ folder itself keeps the set's name.
        if folder.name == "HR" and (folder.parent / "LR_bicubic").is_dir():
            lr_root = folder.parent / "LR_bicubic"
            set_name = name or folder.parent.name
            set_folder = folder.parent
        else:
            set_name = name or folder.name
        set_path = folder
    if not images:
        raise DataError("no images (png/bmp/jpg/tif) in test set folder", path=hr_folder if hr_folder.is_dir() else folder)
    crops, crops_scale = None, None
    if scale_crops:
        images, crops, crops_scale = _with_crops(set_folder, images)
    return TestSet(
        name=set_name,
        path=set_path,
        images=images,
        lr_root=lr_root if lr_root is not None and lr_root.is_dir() else None,
        crops=crops,
        crops_scale=crops_scale,
    )


def _candidate_names(name: str) -> list[str]:
    names = [name]
    names.extend(n for n in _ALIASES.get(name.lower(), ()) if n not in names)
    return names


def find_test_set(name_or_path: str | os.PathLike, data_root: str | os.PathLike | None = None, *,
                  scale_crops: bool = True) -> TestSet:
    """Resolve a test set by folder path or by name under the data roots (``scale_crops``: see
    :func:`load_test_set`)."""
    if isinstance(name_or_path, TestSet):
        return name_or_path
    text = str(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = os.sep in text or text.startswith(".") or path.is_absolute()
    if path.is_dir():
        return load_test_set(path, scale_crops=scale_crops)
    if looks_like_path or path.exists():
        raise DataError("test set folder not found", path=path)
    roots = data_roots(data_root)
    for root in roots:
        for sub in _SUBFOLDERS:
            base = root / sub if sub else root
            if not base.is_dir():
                continue
            for candidate in _candidate_names(text):
                folder = base / candidate
                if folder.is_dir():
                    return load_test_set(folder, name=folder.name, scale_crops=scale_crops)
            # case-insensitive match
            lowered = {c.lower() for c in _candidate_names(text)}
            for entry in sorted(base.iterdir()):
                if entry.is_dir() and entry.name.lower() in lowered:
                    return load_test_set(entry, name=entry.name, scale_crops=scale_crops)
    searched = ", ".join(str(r) for r in roots)
    raise DataError(f"test set {text!r} not found (searched data roots: {searched}; "
                    f"pass a folder path or --data-root / SR_DATA_ROOT)")
