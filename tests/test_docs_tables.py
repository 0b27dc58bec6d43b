"""The docs' tables of families, devices and spaces are the registries' (scripts/docs_tables.py)."""

from __future__ import annotations

import importlib.util

from search.markdown import markdown_table
from search.paths import REPO_ROOT


def _script():
    spec = importlib.util.spec_from_file_location("docs_tables", REPO_ROOT / "scripts" / "docs_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_docs_tables_are_current():
    stale = _script().stale_files(write=False)
    assert not stale, f"run `python scripts/docs_tables.py`: stale tables in {stale}"


def test_every_family_and_device_has_its_row():
    from search.models import list_families
    from search.profile.devices import list_devices

    script = _script()
    families, devices = script.families_table(), script.devices_table()
    for name in list_families():
        assert f"\n| {name} | `{name}_s#" in families
    for device in list_devices():
        assert f"\n| {device.name} | " in devices


def test_only_the_marked_block_is_rewritten():
    script = _script()
    text = "intro\n<!-- generated: spaces (x) -->\nold | rows\n<!-- end generated: spaces -->\noutro\n"
    assert script.rendered(text, "spaces", "NEW\n") == (
        "intro\n<!-- generated: spaces (x) -->\nNEW\n<!-- end generated: spaces -->\noutro\n")


def test_markdown_table_layout():
    assert markdown_table(["a", "b"], [[1, "x|y"], [None, "two\nlines"]]) == (
        "| a | b |\n|---|---|\n| 1 | x\\|y |\n|  | two lines |\n")
    assert markdown_table(["n", "v"], [], align=["left", "right"]) == "| n | v |\n|:---|---:|\n"
