"""A strict YAML reader for space files: ``yaml.safe_load`` minus what a hostile file can abuse.

Space files are small, hand-written mappings. Plain ``safe_load`` accepts three things they
never need and that turn a few hundred bytes into a hang or a crash:

* anchors and aliases (``&a`` / ``*a``): a "billion laughs" file of nested aliases is a
  DAG that expands to 9**9 values as soon as anything walks or prints it;
* unbounded nesting (``[[[[...``): the composer recurses once per level (RecursionError);
* duplicate keys, which YAML silently resolves as last-wins (a second ``eSR-MAX:`` would
  quietly replace the first).

:func:`load_yaml` refuses all three while the document is composed, before any value is
built, and reports scalar values Python cannot represent (``2020-02-30``, a 5000-digit
integer) as YAML errors with a position instead of a bare ValueError. Everything else is
``yaml.safe_load``: the same tags, the same types.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError

# Deepest nesting of lists/mappings a space file may use. The deepest legitimate path is
# about 8 levels (families -> family -> grid -> [i] -> hp -> choices -> object -> list);
# the limit leaves room for that and stops far below Python's recursion limit.
MAX_YAML_DEPTH = 32

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases, deep nesting and duplicate keys."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            # Refused at the anchor already: an alias is only dangerous once expanded, but a
            # space file has no use for either, and one message at the first is clearest.
            raise ComposerError(None, None, "YAML anchors and aliases (&name, *name) are not "
                                "allowed in a space file; write the value out", event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise ComposerError(None, None, f"nested more than {MAX_YAML_DEPTH} levels deep",
                                    event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first_seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = first_seen.setdefault(key, key_node)
                except TypeError:  # unhashable key: the base class reports it
                    continue
                if first is not key_node:
                    raise ConstructorError(
                        None, None, f"duplicate key {_short(key)} (first given on line "
                        f"{first.start_mark.line + 1}); give each key once", key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            # e.g. a date that does not exist, an integer past Python's digit limit
            raise ConstructorError(None, None, f"cannot read the value {_short(node.value)}: "
                                   f"{str(exc).split(';')[0]}", node.start_mark) from None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_yaml(text: str) -> Any:
    """Parse one YAML document like ``yaml.safe_load``; raises ``yaml.YAMLError`` on refusal."""
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
