"""Training throughput of the suite's trainer for IMDN on CPU vs a plain PyTorch loop.

Both sides train the same model (same initial weights) with Adam and an L1 loss on batches
of the same size and HR patch size, one optimiser step per batch:

* ``suite``: :func:`search.train.train_model` with a budget of ``--steps`` steps (T91
  patches from :class:`search.data.training.PatchSampler`, flips/rotations, LR schedule,
  NaN checks: everything a trial pays for). Throughput = ``steps * batch / train_time_s``.
* ``plain``: the textbook loop ``zero_grad; l1(model(lr), hr).backward(); step`` over a pool
  of patches drawn beforehand from the same sampler and held in memory (so its data cost is
  just indexing), timed around the loop (``search.profile.latency.time_call``).

Runs are interleaved (suite, plain, suite, plain, ...) and the median of ``--repeats`` is
reported, because the CPU is shared. Prints both patches/s and the ratio suite / plain
(goal >= 1.0: the suite's bookkeeping costs nothing measurable), once on wall-clock time
and once on process CPU time (single thread: the CPU-time rate is far less disturbed by
other load on a shared machine; the suite's CPU time also counts its sampler set-up).

    .venv/bin/python benchmarks/imdn_train_throughput.py [--model IMDN_s4] [--steps 12] \\
        [--batch-size 16] [--patch-size 64] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import platform
import statistics

import numpy as np
import torch
import torch.nn.functional as F

from search.errors import cli_main
from search.profile.latency import time_call


def suite_run(model_id: str, budget: dict, seed: int) -> tuple[float, float]:
    """(wall-clock patches/s from train_time_s, CPU-time patches/s of the whole call)."""
    from search.models import create_model
    from search.train import train_model

    model = create_model(model_id)
    timed = time_call(lambda: train_model(model, budget, seed=seed, progress=False))
    cpu = timed.cpu_s[0]  # includes the sampler set-up and re-initialisation
    patches = budget["steps"] * budget["batch_size"]
    return patches / timed.result["train_time_s"], patches / cpu


def plain_run(model_id: str, budget: dict, seed: int,
              pool: tuple[torch.Tensor, torch.Tensor]) -> tuple[float, float]:
    """(wall-clock patches/s, CPU-time patches/s) of the loop."""
    from search.models import create_model

    torch.manual_seed(seed)
    model = create_model(model_id)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=budget["lr"])
    lr_pool, hr_pool = pool
    rng = np.random.default_rng(seed)
    batch, steps = budget["batch_size"], budget["steps"]

    def loop() -> None:
        for _ in range(steps):
            index = torch.from_numpy(rng.integers(0, len(lr_pool), size=batch))
            lr, hr = lr_pool[index], hr_pool[index]
            optimizer.zero_grad()
            F.l1_loss(model(lr), hr).backward()
            optimizer.step()

    timed = time_call(loop)
    return steps * batch / timed.wall_s[0], steps * batch / timed.cpu_s[0]


def patch_pool(model_id: str, budget: dict, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from search.data.training import PatchSampler
    from search.models import parse_model_id

    scale = parse_model_id(model_id).scale
    sampler = PatchSampler(("T91",), scale=scale, patch_size=budget["patch_size"], color="rgb",
                           seed=seed, augment=True, progress=False)
    lr, hr = sampler.sample(size)
    return torch.from_numpy(lr), torch.from_numpy(hr)


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="IMDN_s4", help="model id (default: the paper's x4 IMDN)")
    parser.add_argument("--steps", type=int, default=12, help="optimiser steps per timed run")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--patch-size", type=int, default=64, help="HR patch side")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per side (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: shared CPU)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    budget = {"steps": args.steps, "batch_size": args.batch_size, "patch_size": args.patch_size,
              "lr": 2e-4, "lr_schedule": "constant"}
    pool = patch_pool(args.model, budget, 8 * args.batch_size, args.seed)
    # Warm-up (caches T91 pairs, first-call allocations) for both sides, untimed.
    warm = {**budget, "steps": 2}
    suite_run(args.model, warm, args.seed)
    plain_run(args.model, warm, args.seed, pool)

    suite, plain = [], []
    for _ in range(args.repeats):
        suite.append(suite_run(args.model, budget, args.seed))
        plain.append(plain_run(args.model, budget, args.seed, pool))
    print(f"model {args.model}, batch {args.batch_size}, HR patch {args.patch_size}, "
          f"{args.steps} steps x {args.repeats} interleaved runs, {args.threads} thread(s), "
          f"measured on CPU ({platform.processor() or platform.machine()}, shared machine)")
    ratios = {}
    for column, clock in ((0, "wall-clock"), (1, "CPU time")):
        suite_rate = statistics.median(v[column] for v in suite)
        plain_rate = statistics.median(v[column] for v in plain)
        ratios[clock] = suite_rate / plain_rate
        print(f"[{clock}] suite train_model : {suite_rate:8.2f} patches/s  "
              f"(runs: {', '.join(f'{v[column]:.2f}' for v in suite)})")
        print(f"[{clock}] plain Adam+L1 loop: {plain_rate:8.2f} patches/s  "
              f"(runs: {', '.join(f'{v[column]:.2f}' for v in plain)})")
        print(f"[{clock}] ratio suite/plain : {ratios[clock]:.3f}  (goal >= 1.0)")
    return 0


if __name__ == "__main__":
    main()
