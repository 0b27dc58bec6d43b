"""Test sets: folders of HR images, found by name under the data roots or given as a path.

Layouts understood (the first that matches wins):

* ``<set>/HR/*.png`` with optional ``<set>/LR_bicubic/X{s}/<stem>x{s}.png`` (BasicSR/EDSR
  benchmark layout); the LR files are used by protocols that take LR from files;
* ``<set>/*.png``: any folder of PNG/BMP/JPG/TIFF images, colour or gray; LR images are
  made on the fly (MATLAB bicubic) from the HR image mod-cropped to the scale.

Names resolve under :func:`search.paths.data_roots` (``--data-root`` > ``SR_DATA_ROOT`` >
``./data`` > the shipped ``data/``), also one level down (``benchmarks/``, ``test/``), case
insensitively, with common aliases (B100 = BSD100 = BSDS100).
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


@dataclass(frozen=True)
class TestSet:
    """A test set: ``name`` (folder name, used as the result key), its folder and images."""

    name: str
    path: Path
    images: list[Path] = field(default_factory=list)
    lr_root: Path | None = None  # folder holding X2/, X3/, ... when present

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


def load_test_set(folder: str | os.PathLike, name: str | None = None) -> TestSet:
    """Build a :class:`TestSet` from a folder (either layout); DataError if it has no images."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("test set folder not found", path=folder)
    hr_folder = folder / "HR"
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
        else:
            set_name = name or folder.name
        set_path = folder
    if not images:
        raise DataError("no images (png/bmp/jpg/tif) in test set folder", path=hr_folder if hr_folder.is_dir() else folder)
    return TestSet(
        name=set_name,
        path=set_path,
        images=images,
        lr_root=lr_root if lr_root is not None and lr_root.is_dir() else None,
    )


def _candidate_names(name: str) -> list[str]:
    names = [name]
    names.extend(n for n in _ALIASES.get(name.lower(), ()) if n not in names)
    return names


def find_test_set(name_or_path: str | os.PathLike, data_root: str | os.PathLike | None = None) -> TestSet:
    """Resolve a test set by folder path or by name under the data roots."""
    if isinstance(name_or_path, TestSet):
        return name_or_path
    text = str(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = os.sep in text or text.startswith(".") or path.is_absolute()
    if path.is_dir():
        return load_test_set(path)
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
                    return load_test_set(folder, name=folder.name)
            # case-insensitive match
            lowered = {c.lower() for c in _candidate_names(text)}
            for entry in sorted(base.iterdir()):
                if entry.is_dir() and entry.name.lower() in lowered:
                    return load_test_set(entry, name=entry.name)
    searched = ", ".join(str(r) for r in roots)
    raise DataError(f"test set {text!r} not found (searched data roots: {searched}; "
                    f"pass a folder path or --data-root / SR_DATA_ROOT)")
