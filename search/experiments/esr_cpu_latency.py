"""Measured CPU latency of every released eSR-grid model (1185 ids) on this machine: a fourth device table.

    python -m search.experiments esr_cpu_latency [--output-size 540x960] [--threads 1]
        [--out studies/measured/esr_cpu]

Each id of ``published/esr_tests.csv`` is built from the registry (the latency of these
dense models does not depend on the weight values, so the released files are not needed)
and timed with :func:`search.profile.latency.measure_latency` on the CPU (float32, one
``torch`` thread by default, the CPU device profile's warm-up and repeats; median and IQR),
at the stated HR output size with the LR input ``output / scale``. Rows are appended to
``<out>/latency.csv`` one model at a time, so an interrupted run continues where it stopped
(a row per id; ``--fresh`` starts over). ``<out>/machine.json`` describes the machine
(CPU model, cores, torch version and threads, output size). The report
``python -m search.report.esr_cpu_latency`` sets these times beside the published
Jetson AGX / GTX 1080 MaxQ / Raspberry Pi 400 speeds (Spearman rank correlation).
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import os
import platform
import sys
import time
from pathlib import Path

from search.errors import UserError, cli_main
from search.jsonio import dumps_json
from search.paths import PUBLISHED_DIR, REPO_ROOT

COLUMNS = ["model", "family", "scale", "params", "macs", "output_h", "output_w", "lr_h", "lr_w",
           "latency_ms", "latency_iqr_ms", "repeats", "threads"]


def released_ids(table: Path = PUBLISHED_DIR / "esr_tests.csv") -> list[str]:
    with open(table, newline="", encoding="utf-8") as handle:
        return [row["model"] for row in csv.DictReader(handle)]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(output_size, threads: int) -> dict:
    import torch

    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "torch_threads": threads,
            "dtype": "float32", "output_size": list(output_size),
            "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 1080x1920, not {text!r}") from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"output size {text} is too small")
    return h, w


def _done(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["model"] for row in csv.DictReader(handle) if row.get("latency_ms")}


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.experiments esr_cpu_latency",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--output-size", type=_size, default=(1080, 1920),
                        help="HR output HxW (default 1080x1920, the paper's Full HD)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--models", help="only these ids: comma-separated ids or shell patterns (e.g. '*_s2_*')")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "studies" / "measured" / "esr_cpu")
    parser.add_argument("--fresh", action="store_true", help="measure every model again")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    import torch
    from tqdm import tqdm

    from search.models import create_model
    from search.profile.devices import get_device
    from search.profile.flops import count_flops, count_params, lr_shape_for
    from search.profile.latency import measure_latency

    patterns = [p.strip() for p in (args.models or "*").split(",") if p.strip()]
    ids = [i for i in released_ids() if any(fnmatch.fnmatchcase(i, p) for p in patterns)]
    if not ids:
        raise UserError(f"--models {args.models!r}: matches no released id")
    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / "latency.csv"
    machine_path = args.out / "machine.json"
    machine = machine_description(args.output_size, args.threads)
    if table.is_file() and not args.fresh and machine_path.is_file():
        import json

        earlier = json.loads(machine_path.read_text())
        for key in ("cpu", "torch", "torch_threads", "output_size"):
            if earlier.get(key) != machine[key]:
                raise UserError(f"{table}: measured with {key} {earlier.get(key)!r}, now {machine[key]!r}; "
                                "use --fresh (or another --out) to measure again")
    if args.fresh and table.exists():
        table.unlink()
    done = _done(table)
    todo = [i for i in ids if i not in done]
    machine_path.write_text(dumps_json(machine, indent=2) + "\n")
    cpu = get_device("cpu")
    torch.set_num_threads(args.threads)
    new_file = not table.exists()
    with open(table, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        if new_file:
            writer.writeheader()
        for model_id in tqdm(todo, desc="CPU latency", unit="model", disable=args.no_progress):
            model = create_model(model_id).eval()
            lr = lr_shape_for(model, args.output_size)
            measured = measure_latency(model, lr, device="cpu", dtype="float32", warmup=cpu.warmup,
                                       repeats=cpu.repeats, threads=args.threads)
            writer.writerow({"model": model_id, "family": model.family, "scale": model.scale,
                             "params": count_params(model), "macs": count_flops(model, lr),
                             "output_h": args.output_size[0], "output_w": args.output_size[1],
                             "lr_h": lr[0], "lr_w": lr[1], "latency_ms": f"{measured['latency_ms']:.4f}",
                             "latency_iqr_ms": f"{measured.get('latency_iqr_ms') or 0:.4f}",
                             "repeats": cpu.repeats, "threads": args.threads})
            handle.flush()  # a kill keeps every finished row
    print(f"{len(todo)} measured now, {len(ids)} in all -> {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
