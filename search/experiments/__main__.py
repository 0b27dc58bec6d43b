"""``python -m search.experiments NAME [ARGS...]`` runs a registered experiment; ``list`` lists them."""

from __future__ import annotations

import argparse
import sys

from search.errors import UserError, cli_main
from search.experiments import EXPERIMENTS, describe, experiment_main


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m search.experiments", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run one registered experiment (NAME --help tells its arguments), or list them.",
        epilog="experiments:\n" + "\n".join(f"  {name:<20} {describe(name)}" for name in EXPERIMENTS))
    parser.add_argument("name", metavar="NAME", help="an experiment's name, or 'list'")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the experiment's own arguments")
    args = parser.parse_args(argv)
    if args.name == "list":
        if args.args:
            raise UserError(f"list takes no arguments, got {' '.join(args.args)}")
        for name in EXPERIMENTS:
            print(f"{name}  {describe(name)}")
        return 0
    run = experiment_main(args.name)
    sys.argv = [f"python -m search.experiments {args.name}", *args.args]  # its --help and errors name it
    return int(run(list(args.args)) or 0)


if __name__ == "__main__":
    sys.exit(main())
