"""Build hook: pack the run-time files into the wheel without a second copy in git.

The repository keeps one copy of ``params.yaml``, ``devices/``, ``spaces/``, ``published/`` and
the small shipped sets ``data/Set5``, ``data/Set14``, ``data/T91`` at its root (``data/B100*``
link to ../shared: never packed). ``build_py`` copies them to ``search/_resources/`` in
the build tree, so an installed wheel finds them (:func:`search.paths.resource`). An editable
install reads the repository's own files and gets no copy. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
RESOURCES = ("params.yaml", "devices", "spaces", "published", "data/Set5", "data/Set14", "data/T91")
SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")


class build_py_with_resources(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # the checkout is read in place (search.paths.IN_CHECKOUT)
        target = Path(self.build_lib, "search", "_resources")
        if target.exists():
            shutil.rmtree(target)
        for name in RESOURCES:
            source = ROOT / name
            if source.is_dir():
                # symlinks=False: a link is copied as the file it points to, never as a link
                shutil.copytree(source, target / name, ignore=SKIP)
            elif source.is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target / name)
            else:
                raise FileNotFoundError(f"run-time resource {name} missing from {ROOT}")


setup(cmdclass={"build_py": build_py_with_resources})
