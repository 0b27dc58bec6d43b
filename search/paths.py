"""Where things live: the repository, the shipped data, the data root, shared weights.

Resolution order for the data root (larger test sets such as B100, Urban100, Manga109):
``--data-root`` flag > ``SR_DATA_ROOT`` environment variable > ``./data`` (the current
directory) > the ``data/`` folder shipped in the repository (Set5, Set14, T91).

Released weights are looked up under ``SR_WEIGHTS_ROOT`` > ``../shared/weights`` beside
the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DATA = REPO_ROOT / "data"
SHARED_ROOT = Path(os.environ.get("SR_SHARED_ROOT", REPO_ROOT.parent / "shared"))
PUBLISHED_DIR = REPO_ROOT / "published"  # reported numbers copied into the repo as data


def data_roots(data_root: str | os.PathLike | None = None) -> list[Path]:
    """Candidate data roots, most specific first (duplicates removed)."""
    roots: list[Path] = []
    if data_root:
        roots.append(Path(data_root))
    env = os.environ.get("SR_DATA_ROOT")
    if env:
        roots.append(Path(env))
    roots.append(Path.cwd() / "data")
    roots.append(SHIPPED_DATA)
    seen: set[Path] = set()
    unique = []
    for root in roots:
        key = root.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(root)
    return unique


def weights_root() -> Path:
    """Folder holding released weights (``esr/``, ``imdn/``, ``smsr/``)."""
    env = os.environ.get("SR_WEIGHTS_ROOT")
    if env:
        return Path(env)
    return SHARED_ROOT / "weights"
