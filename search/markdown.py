"""One Markdown table writer for every report and generated doc."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def _cell(value: Any) -> str:
    # a "|" inside a cell would start a new column; a newline would end the row
    return " ".join(str(value).split()).replace("|", "\\|") if value is not None else ""


def markdown_table(headers: Sequence[Any], rows: Iterable[Sequence[Any]], align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table ending in a newline; ``align``: per column
    ``"left"``, ``"right"``, ``"center"`` or ``""`` (the default rule ``---``)."""
    rules = {"": "---", "left": ":---", "right": "---:", "center": ":---:"}
    align = list(align or [""] * len(headers))
    if len(align) != len(headers):
        raise ValueError(f"{len(align)} alignments for {len(headers)} columns")
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |",
             "|" + "|".join(rules[a] for a in align) + "|"]
    for row in rows:
        row = list(row)
        if len(row) != len(headers):
            raise ValueError(f"a row of {len(row)} cells in a table of {len(headers)} columns: {row!r}")
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
