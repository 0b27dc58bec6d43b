"""Where things live: the repository, the shipped data, the data root, shared weights.

Run-time files (``params.yaml`` budgets, ``devices/*.yaml``, ``spaces/*.yaml``,
``published/`` tables, the small shipped sets ``data/Set5``, ``data/Set14``, ``data/T91``)
are read through :func:`resource`: in a repository checkout (an editable install included)
the repository's own files, in an installed wheel the copies ``setup.py`` packs under
``search/_resources/`` at build time (the repository keeps a single copy of each).

Resolution order for the data root (larger test sets such as B100, Urban100, Manga109):
``--data-root`` flag > ``SR_DATA_ROOT`` environment variable > ``./data`` (the current
directory) > the ``data/`` folder shipped in the repository (Set5, Set14, T91; in an installed
wheel its packaged copy ``search/_resources/data``).

A space given to ``search.run`` as ``esr``, ``esr.yaml`` or ``spaces/esr.yaml`` that is not a
file under the current directory is the shipped one (:func:`space_file`).

Released weights are looked up under ``SR_WEIGHTS_ROOT`` > ``../shared/weights`` beside
the repository (``SR_SHARED_ROOT`` moves ``../shared``).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
PACKAGED_RESOURCES = PACKAGE_DIR / "_resources"  # filled by setup.py's build_py in a wheel only
# A checkout: the package sits in the repository beside pyproject.toml and params.yaml
# (an installed wheel sits in site-packages, where neither is).
IN_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "params.yaml").is_file()
RESOURCE_ROOT = REPO_ROOT if IN_CHECKOUT else PACKAGED_RESOURCES


def resource(name: str | os.PathLike) -> Path:
    """A run-time file or folder by its repository path (``params.yaml``, ``devices``,
    ``published/esr_tests.csv``, ``data/Set5``): the checkout's, else the packaged copy."""
    return RESOURCE_ROOT / name


SHIPPED_DATA = resource("data")
SHARED_ROOT = Path(os.environ.get("SR_SHARED_ROOT", REPO_ROOT.parent / "shared"))
PUBLISHED_DIR = resource("published")  # reported numbers copied into the repo as data
SPACES_DIR = resource("spaces")


def space_file(space: str | os.PathLike) -> str:
    """The space file ``search.run`` reads: ``space`` itself when it is a file (or names no
    shipped space), else the shipped ``spaces/<name>.yaml`` for ``esr``, ``esr.yaml`` or
    ``spaces/esr.yaml``."""
    text = os.fspath(space)
    path = Path(text)
    if path.is_file() or path.is_absolute() or path.parent not in (Path("."), Path("spaces")):
        return text
    name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
    shipped = SPACES_DIR / name
    return str(shipped) if shipped.is_file() else text


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
