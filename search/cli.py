"""``sr``: one command for the suite's tools (``python -m search.run`` etc. stay as documented).

    sr run SPACE [...]            = python -m search.run SPACE [...]
    sr evaluate --model ID [...]  = python -m search.evaluate [...]
    sr profile SUBCOMMAND [...]   = python -m search.profile SUBCOMMAND [...]
    sr experiment NAME [...]      = python -m search.experiments NAME [...]
    sr report NAME [...]          = python -m search.report.NAME [...]   (fronts, paper_tables, ...)

Each subcommand hands its arguments to that tool's own ``main``, so its ``--help``, errors
and exit codes are the tool's.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from search.errors import UserError, cli_main

COMMANDS = {  # subcommand -> (module whose main() runs it, one line of help)
    "run": ("search.run", "run or resume a search over a space file"),
    "evaluate": ("search.evaluate.cli", "PSNR/SSIM of models on test sets"),
    "profile": ("search.profile.__main__", "MACs, latency, predictors, ONNX"),
    "experiment": ("search.experiments.__main__", "the registered experiments (train and measure)"),
    "report": (None, "a report over committed studies: sr report NAME ..."),
}


def _reports() -> list[str]:
    import search.report as package

    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_"))


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sr", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="One command for the suite's tools.",
        epilog="commands:\n" + "\n".join(f"  {name:<11} {text}" for name, (_, text) in COMMANDS.items())
        + f"\n\nreports: {', '.join(_reports())}\neach command's --help tells its arguments")
    parser.add_argument("command", metavar="COMMAND", help=", ".join(COMMANDS))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's own arguments")
    args = parser.parse_args(argv)
    rest = list(args.args)
    if args.command not in COMMANDS:
        raise UserError(f"unknown command {args.command!r}; one of {', '.join(COMMANDS)}")
    module_name = COMMANDS[args.command][0]
    if args.command == "report":
        if not rest or rest[0] not in _reports():
            raise UserError(f"sr report NAME: NAME is one of {', '.join(_reports())}")
        module_name, rest = f"search.report.{rest[0]}", rest[1:]
    sys.argv = [f"sr {args.command}", *rest]  # the tool's --help and errors name the subcommand
    result = importlib.import_module(module_name).main(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
