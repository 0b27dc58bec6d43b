"""`sr COMMAND ...` hands its arguments to the tool's own main (python -m forms stay)."""

from __future__ import annotations

import pytest

from search.cli import COMMANDS, main
from search.paths import REPO_ROOT


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name} " in out
    assert "fronts" in out  # the reports are listed from search/report


@pytest.mark.parametrize("argv,words", [(["trian"], "unknown command 'trian'"),
                                         (["report", "nope"], "sr report NAME: NAME is one of")])
def test_unknown_command_and_report_are_one_line_exit_2(argv, words, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and words in err


def test_run_is_search_run(tmp_path, capsys):
    out = tmp_path / "configs.csv"
    assert main(["run", str(REPO_ROOT / "spaces" / "imdn_ratio.yaml"), "--dry-run", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + 4  # header + the four ratios of the space


def test_subcommand_help_is_the_tool_help(capsys):
    with pytest.raises(SystemExit) as done:
        main(["evaluate", "--help"])
    assert done.value.code == 0
    assert "--model" in capsys.readouterr().out
