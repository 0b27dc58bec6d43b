"""``python -m search.run SPACE``: run a search study (Ray Tune + Optuna) over a space file.

Examples::

    python -m search.run spaces/esr.yaml --dry-run --out configs.csv       # list, train nothing
    python -m search.run spaces/esr.yaml --device cpu --budget smoke --trials 6 \\
        --sampler nsga2 --out studies/esr-smoke                            # search
    python -m search.run spaces/esr.yaml --out studies/esr-smoke --resume  # after a crash

See docs/runner.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from search.errors import UserError, cli_main, set_crash_log_dir, set_interrupt_hint
from search.paths import space_file


def _scales(text: str) -> list[int]:
    try:
        scales = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected scales such as 2 or 2,4, not {text!r}") from None
    if not scales or min(scales) < 1:
        raise argparse.ArgumentTypeError(f"expected scales such as 2 or 2,4, not {text!r}")
    return scales


def build_parser() -> argparse.ArgumentParser:
    from search.study.runner import INITIAL_DESIGNS, SAMPLERS

    parser = argparse.ArgumentParser(
        prog="python -m search.run",
        description="Search a space of SR models: each trial trains, evaluates and profiles one "
                    "configuration; results go to OUT/trials.csv and an Optuna storage.",
    )
    parser.add_argument("space", help="space file (spaces/*.yaml), or the name of a shipped space (esr, imdn, ...)")
    parser.add_argument("--device", help="device profile whose latency is measured or predicted (default: cpu)")
    parser.add_argument("--sampler", choices=SAMPLERS,
                        help="grid: every configuration once; random; tpe; nsga2 (default: tpe)")
    parser.add_argument("--trials", type=int, help="number of trials (default: the whole grid for grid, else 20)")
    parser.add_argument("--scales", type=_scales,
                        help="only these scales of the space, e.g. 2 or 2,4 (default: all; a front "
                             "is drawn per scale in any case)")
    parser.add_argument("--budget", help="training budget from params.yaml: smoke, quick, paper (default: the space's)")
    parser.add_argument("--seed", type=int, help="seed of the sampler and of training (default: the space's, else 0)")
    parser.add_argument("--out", help="study folder (default: a new runs/<space name>-<date>-<time>; with "
                                      "--resume: the latest of those; with --dry-run: a CSV file, default stdout)")
    parser.add_argument("--resume", action="store_true", help="continue the study in --out after an interruption")
    parser.add_argument("--dry-run", action="store_true", help="list the space's configurations; train nothing")
    parser.add_argument("--storage", help="Optuna storage URL (default: sqlite:///OUT/optuna.db)")
    parser.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray instance)")
    parser.add_argument("--objectives", help="e.g. psnr_Set14:max,latency_ms:min (default: the space's)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray instance (default: all)")
    parser.add_argument("--concurrency", type=int,
                        help="trials at a time (default: 1 when latency is measured on this CPU, else all CPUs)")
    parser.add_argument("--data-root", help="folder holding the test/train sets (default: see docs)")
    parser.add_argument("--quiet", action="store_true", help="no per-trial lines")
    parser.add_argument("--initial-design", choices=INITIAL_DESIGNS,
                        help="smallest: each family's smallest configuration at each scale first "
                             "(at most a quarter of the trials), then the sampler; random: the "
                             "sampler's own start (default: smallest)")
    parser.add_argument("--benchmark", metavar="TABLE",
                        help="tabular benchmark: a trial is a lookup in TABLE ('published' = the eSR "
                             "authors' 1185 results, or a CSV with a 'model' column); no training")
    return parser


@cli_main
def main(argv=None) -> int:
    from search.profile.cluster import prepare_ray_environment

    prepare_ray_environment()  # before Ray is imported: it reads RAY_AUTH_MODE once
    args = build_parser().parse_args(argv)
    args.space = space_file(args.space)  # `esr`, `spaces/esr.yaml`: the shipped one when not here
    from search.study.runner import StudyOptions, dry_run, redact_url, run_study

    if args.dry_run:
        dry_run(args.space, args.out, scales=args.scales)
        return 0
    if args.benchmark:
        return _run_tabular(args)
    if not args.out:
        args.out = str(latest_run(args.space) if args.resume else new_run_folder(args.space))
        print(f"study folder: {args.out}", flush=True)
    if args.trials is not None and args.trials < 1:
        raise UserError(f"--trials must be at least 1, got {args.trials}")
    options = StudyOptions(
        space=args.space, out=args.out, sampler=args.sampler, trials=args.trials, budget=args.budget,
        device=args.device, seed=args.seed, objectives=args.objectives, storage=args.storage,
        address=args.address, num_cpus=args.num_cpus, concurrency=args.concurrency,
        data_root=args.data_root, verbose=0 if args.quiet else 1, initial_design=args.initial_design,
        scales=args.scales,
    )
    # an internal error's traceback goes to the study folder (a temp file until it exists)
    set_crash_log_dir(args.out)
    set_interrupt_hint(f"finished trials are kept; continue with: python -m search.run {args.space} "
                       f"--out {args.out} --resume")
    summary = run_study(options, resume=args.resume)
    retry = f", {summary.to_retry} to run again on --resume (the machine failed them)" if summary.to_retry else ""
    print(f"{summary.study_name}: {summary.completed} complete, {summary.failed} failed{retry} of "
          f"{summary.trials_target} -> {summary.csv_path} (Optuna: {redact_url(summary.storage)})")
    return 0


RUNS_DIR = Path("runs")  # default study folders, beside the studies `dvc repro` owns (studies/)


def _space_name(space_path: str) -> str:
    from search.space import load_space

    return load_space(space_path).name


def new_run_folder(space_path: str, now: float | None = None) -> Path:
    """``runs/<space name>-<YYYYmmdd-HHMMSS>``, a new folder name (a suffix when taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    base = RUNS_DIR / f"{_space_name(space_path)}-{stamp}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = Path(f"{base}-{n}")
    return candidate


def latest_run(space_path: str) -> Path:
    """The newest default study folder of this space (by its start time in study.json)."""
    name = _space_name(space_path)
    found = []
    for folder in RUNS_DIR.glob(f"{name}-*"):
        manifest = folder / "study.json"
        if manifest.is_file():
            try:
                started = json.loads(manifest.read_text()).get("started", "")
            except (OSError, ValueError):
                continue
            found.append((started, folder.stat().st_mtime, folder))
    if not found:
        raise UserError(f"--resume without --out: no study of space {name!r} under {RUNS_DIR}/ "
                        "(give --out DIR of the study to continue)")
    return max(found)[2]


def _run_tabular(args) -> int:
    from search.space import load_space
    from search.study.tabular import run_tabular

    if not args.objectives:
        raise UserError("--benchmark needs --objectives, e.g. psnr_Set14:max,speed_AGX:max")
    space = load_space(args.space)
    if args.scales:
        space = space.with_scales(args.scales)
    summary = run_tabular(space, args.objectives, sampler=args.sampler or "tpe", trials=args.trials or 100,
                          seed=args.seed or 0, out_dir=args.out, benchmark=args.benchmark,
                          initial_design=args.initial_design or "smallest")
    where = f" -> {args.out}/trials.csv, summary.json" if args.out else ""
    print(f"{summary['sampler']} seed {summary['seed']}: {summary['trials']} trials, hypervolume "
          f"{summary['hypervolume']:.4f} = {summary['hypervolume_ratio']:.3f} of the full grid's"
          f" ({summary['wall_time_s']:.1f} s){where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
