"""Write the docs' tables of model families, devices and search spaces from the registries.

    python scripts/docs_tables.py           # rewrite the generated blocks in docs/*.md
    python scripts/docs_tables.py --check   # exit 1 naming the stale files (tests/test_docs_tables.py)

Each table sits between ``<!-- generated: NAME ... -->`` and ``<!-- end generated: NAME -->``
in its docs file; only that block is rewritten. The registries are the single source: a
family's row comes from its ``register_family(...)`` (docstring = the description), a
device's from ``devices/<name>.yaml``, a space's from ``spaces/<name>.yaml``. Adding a
family, device or space and running this script is all the docs need.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from search.errors import cli_main
from search.markdown import markdown_table
from search.models import get_family, list_families
from search.paths import REPO_ROOT
from search.profile.devices import list_devices
from search.space import load_space
from search.train import list_budgets


def _id_template(info) -> str:
    return "`" + "_".join([info.name, "s#"] + [f"{k}#" for k in info.id_fields]) + "`"


def _budget_changes(info) -> str:
    parts = []
    for budget in list_budgets():
        changes = info.budget_overrides.get(budget)
        if changes:
            parts.append(f"{budget}: " + ", ".join(f"{k} {v}" for k, v in changes.items()))
    return "; ".join(parts) or "-"


def families_table() -> str:
    rows = []
    for name in list_families():
        info = get_family(name)
        rows.append([name, _id_template(info), f"`{Path(info.source_file).name}`", info.color, info.paper or "-",
                     info.default_protocol, "yes" if info.released_weights else "-", _budget_changes(info),
                     info.description])
    return markdown_table(["family", "id", "file", "colour", "paper", "default protocol", "released weights",
                           "budget changes", "what"], rows)


def devices_table() -> str:
    rows = [[d.name, ", ".join(d.aliases) or "-", d.torch_device, d.dtype, d.threads or "all",
             d.ray_resource or "-", d.published_column or "-"] for d in list_devices()]
    return markdown_table(["name", "aliases", "torch", "dtype", "threads", "Ray resource", "published column"], rows)


def spaces_table() -> str:
    rows = []
    for path in sorted((REPO_ROOT / "spaces").glob("*.yaml")):
        space = load_space(path)
        scales = sorted({s for f in space.families.values() for s in f.scales})
        size = f"{space.size:,}" if space.size is not None else "continuous"
        budget = space.fixed.budget if isinstance(space.fixed.budget, str) else "inline"
        objectives = ", ".join(f"{o.metric}:{o.mode}" for o in space.fixed.objectives)
        rows.append([f"`spaces/{path.name}`", ", ".join(space.families), ", ".join(map(str, scales)), size,
                     budget, objectives, space.description])
    return markdown_table(["file", "families", "scales", "configurations", "budget", "objectives", "what"], rows)


BLOCKS = {  # name -> (docs file, table)
    "families": ("docs/models.md", families_table),
    "devices": ("docs/profiling.md", devices_table),
    "spaces": ("docs/spaces.md", spaces_table),
}


def rendered(text: str, name: str, table: str) -> str:
    pattern = re.compile(rf"(<!-- generated: {name}\b[^>]*-->\n).*?(<!-- end generated: {name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"error: no '<!-- generated: {name} ... -->' block to fill")
    return pattern.sub(lambda m: m.group(1) + table + m.group(2), text, count=1)


def stale_files(write: bool) -> list[str]:
    stale = []
    for name, (relative, make) in BLOCKS.items():
        path = REPO_ROOT / relative
        text = path.read_text()
        new = rendered(text, name, make())
        if new != text:
            stale.append(relative)
            if write:
                path.write_text(new)
    return stale


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say which docs are stale (exit 1 if any)")
    args = parser.parse_args(argv)
    stale = stale_files(write=not args.check)
    if args.check and stale:
        print(f"stale generated tables in {', '.join(stale)}: run python scripts/docs_tables.py", file=sys.stderr)
        return 1
    print(("rewrote " + ", ".join(stale)) if stale else "docs tables up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
