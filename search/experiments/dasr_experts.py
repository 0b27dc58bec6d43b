"""DASR study over the number of experts N: PSNR per degradation level, regression error,
parameters, MACs and measured CPU latency.

    python -m search.experiments dasr_experts                      # N = 1,2,3,5,8, F16 B4, x4
    python -m search.experiments dasr_experts --experts 1,5 --steps 100 --out /tmp/dasr

For each N the same configuration (``DASR_s4_N<N>_F<F>_B<B>``) is trained from scratch with
:func:`search.train.train_model` (degradations drawn on the fly by the model's training
step, weak/standard/severe = 0.3/0.3/0.4), then

* evaluated (standard protocol: PSNR/SSIM on Y, shave = scale) on the bicubic and Level
  I/II/III versions of the test set (:mod:`search.data.degraded_sets`, fixed seed);
* its degradation predictor is scored on held-out degradations: HR patches of the
  held-out set degraded with a generator that training never uses; the mean absolute error
  over the 33 numbers is compared with predicting the training distribution's mean (and
  median) vector, estimated from independent draws;
* its MACs (``count_flops`` at the latency input size and at a 1280x720 output), parameters
  (stored, and the network that runs: predictor + one expert) and CPU latency (measured on
  this machine, ``--threads`` threads, median of ``--repeats`` timed runs, the N values
  interleaved round by round so that load drift hits all of them alike).

Writes ``experts.csv``, ``experts.md``, ``study.json`` (settings + per-N results) and the
level sets' manifests into ``--out`` (default ``reports/dasr``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from search.errors import cli_main
from search.markdown import markdown_table
from search.paths import REPO_ROOT
from search.profile.flops import PAPER_HR_SIZE
from search.profile.latency import time_calls

DEFAULT_OUT = REPO_ROOT / "reports" / "dasr"
HELD_OUT_SEED = 10_000     # degradation generator of the held-out regression test
MEAN_SEED = 20_000         # independent draws for the mean/median baseline vectors
# csjliang/DASR's grouping of the 33 numbers
VECTOR_GROUPS = {"kernel": (0, 10), "resize": (10, 18), "noise": (18, 26), "jpeg": (26, 33)}


def heldout_patches(test_set: str, count: int, patch: int, seed: int, data_root=None) -> torch.Tensor:
    """``count`` RGB HR patches (``count x 3 x patch x patch`` in [0, 1]) from ``test_set``."""
    from search.data.datasets import find_test_set
    from search.data.images import read_image

    images = []
    for path in find_test_set(test_set, data_root).images:
        image = read_image(path)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if min(image.shape[:2]) >= patch:
            images.append(image)
    rng = np.random.default_rng(seed)
    patches = np.empty((count, 3, patch, patch), dtype=np.float32)
    for k in range(count):
        image = images[int(rng.integers(len(images)))]
        y = int(rng.integers(image.shape[0] - patch + 1))
        x = int(rng.integers(image.shape[1] - patch + 1))
        patches[k] = image[y:y + patch, x:x + patch].transpose(2, 0, 1) / 255.0
    return torch.from_numpy(patches)


def baseline_vectors(draws: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and median of the 33 numbers over ``draws`` training-distribution degradations."""
    from search.data.degradations import encode, load_settings, sample_degradation

    settings = load_settings()
    rng = np.random.default_rng(MEAN_SEED)
    vectors = np.stack([encode(sample_degradation(rng, None, scale=scale, settings=settings), settings)
                        for _ in range(draws)])
    return vectors.mean(axis=0), np.median(vectors, axis=0)


def measure_latency(models: dict[int, torch.nn.Module], lr_size: int, runs: int) -> dict[int, dict[str, float]]:
    """Forward time (ms) per model at ``1 x 3 x lr_size x lr_size``: ``{"median", "min"}``.

    Calls are interleaved one by one (round robin, the starting model rotating each round),
    so that load from other processes falls on every model alike; the minimum is the
    least-disturbed run, the median the typical one.
    """
    x = torch.rand(1, 3, lr_size, lr_size, generator=torch.Generator().manual_seed(0))
    for model in models.values():
        model.eval()
    with torch.inference_mode():
        # one warm-up call each (allocations, oneDNN primitive creation), then rounds
        timings = time_calls({n: (lambda m=model: m(x)) for n, model in models.items()},
                             repeats=runs, warmup=1, interleave=True)
    times = {n: [seconds * 1000.0 for seconds in timing.wall_s] for n, timing in timings.items()}
    return {n: {"median": statistics.median(v), "min": min(v)} for n, v in times.items()}


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """Markdown table of ``rows``; ``columns``: (key, title, format spec; "" = str)."""
    cells = [["" if row.get(key) is None else format(row.get(key), fmt) if fmt else str(row.get(key))
              for key, _, fmt in columns] for row in rows]
    return markdown_table([title for _, title, _ in columns], cells).rstrip("\n")


def cost_only(args, experts: list[int], out: Path) -> int:
    """Params, MACs and interleaved CPU latency of untrained models (cost does not need training)."""
    import csv

    from search.models import create_model
    from search.profile.flops import count_flops

    models = {n: create_model(family="DASR", scale=args.scale, N=n, F=args.width, B=args.blocks) for n in experts}
    latency = measure_latency(models, args.latency_size, args.repeats)
    first = experts[0]
    rows = []
    for n, model in models.items():
        rows.append({
            "model_id": model.model_id, "N": n, "params": sum(p.numel() for p in model.parameters()),
            "active_params": model.active_parameters(),
            "macs_latency_input": count_flops(model, (args.latency_size, args.latency_size)),
            "latency_ms": latency[n]["median"], "latency_min_ms": latency[n]["min"],
            "latency_ratio_to_first": latency[n]["median"] / latency[first]["median"],
            "latency_min_ratio_to_first": latency[n]["min"] / latency[first]["min"],
            "latency_source": f"measured:cpu ({args.threads} thread, LR {args.latency_size}x{args.latency_size}, "
                              f"{args.repeats} interleaved runs)",
        })
    for row in rows:
        row["macs_ratio_to_first"] = row["macs_latency_input"] / rows[0]["macs_latency_input"]
        print(f"{row['model_id']}: params {row['params']:,} (run {row['active_params']:,}), "
              f"MACs x{row['macs_ratio_to_first']:.5f}, latency median {row['latency_ms']:.1f} ms "
              f"(x{row['latency_ratio_to_first']:.3f}), min {row['latency_min_ms']:.1f} ms "
              f"(x{row['latency_min_ratio_to_first']:.3f})")
    name = f"cost_F{args.width}_B{args.blocks}_lr{args.latency_size}.csv"
    with open(out / name, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out / name}")
    return 0


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.experiments dasr_experts",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--experts", default="1,2,3,5,8", help="comma-separated N values")
    parser.add_argument("--width", type=int, default=16, help="backbone width F")
    parser.add_argument("--blocks", type=int, default=4, help="residual blocks B")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch-size", type=int, default=64, help="HR patch side")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train-sets", default="T91")
    parser.add_argument("--test-set", default="Set5", help="set whose bicubic/Level I-III versions are scored")
    parser.add_argument("--heldout-set", default="Set14", help="set whose patches score the predictor")
    parser.add_argument("--heldout-patches", type=int, default=128)
    parser.add_argument("--baseline-draws", type=int, default=4000)
    parser.add_argument("--latency-size", type=int, default=64, help="LR side of the latency input")
    parser.add_argument("--repeats", type=int, default=40, help="timed runs per model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sets-dir", default=str(REPO_ROOT / "runs" / "dasr" / "testsets"))
    parser.add_argument("--runs-dir", default=str(REPO_ROOT / "runs" / "dasr"))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--cost-only", action="store_true",
                        help="skip training and evaluation: MACs, params and latency of fresh models only")
    args = parser.parse_args(argv)

    from search.data.degradations import level_degrees
    from search.data.degraded_sets import make_degraded_sets
    from search.evaluate import evaluate_model
    from search.models import create_model
    from search.profile.flops import count_flops
    from search.train import train_model

    torch.set_num_threads(args.threads)
    progress = not args.no_progress
    experts = [int(v) for v in args.experts.split(",") if v.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budget = {"steps": args.steps, "batch_size": args.batch_size, "patch_size": args.patch_size,
              "lr": args.lr, "lr_schedule": "cosine", "min_lr": args.lr / 100}

    if args.cost_only:
        return cost_only(args, experts, out)
    level_sets = make_degraded_sets(args.test_set, args.sets_dir, scale=args.scale, seed=args.seed,
                                    data_root=args.data_root, progress=progress)
    for level, test_set in level_sets.items():
        manifest = Path(test_set.path) / "manifest.json"
        (out / f"manifest_{test_set.name}.json").write_text(manifest.read_text())
    patches = heldout_patches(args.heldout_set, args.heldout_patches, args.patch_size, args.seed, args.data_root)
    from search.data.degradations import degrade_batch

    held_lr, held_vectors = degrade_batch(patches, np.random.default_rng(HELD_OUT_SEED), scale=args.scale)
    mean_vector, median_vector = baseline_vectors(args.baseline_draws, args.scale)
    truth = held_vectors.numpy().astype(np.float64)
    mean_mae = float(np.abs(truth - mean_vector).mean())
    median_mae = float(np.abs(truth - median_vector).mean())
    median_groups = {group: float(np.abs(truth - median_vector)[:, start:stop].mean())
                     for group, (start, stop) in VECTOR_GROUPS.items()}

    from search.evaluate.baselines import MatlabBicubic

    bicubic_scores = evaluate_model(MatlabBicubic(args.scale, color="rgb"), list(level_sets.values()),
                                    protocol="standard", progress=False)
    rows, models = [], {}
    for n in experts:
        model = create_model(family="DASR", scale=args.scale, N=n, F=args.width, B=args.blocks)
        run_dir = Path(args.runs_dir) / model.model_id
        trained = train_model(model, budget, train_sets=tuple(args.train_sets.split(",")), seed=args.seed,
                              data_root=args.data_root, progress=progress, out_dir=run_dir)
        scores = evaluate_model(model, list(level_sets.values()), protocol="standard", progress=False)
        with torch.inference_mode():
            predicted, mix = model.predict(held_lr)
        errors = (predicted.double() - held_vectors.double()).abs().numpy()
        mae = float(errors.mean())
        row = {
            "model_id": model.model_id, "N": n, "F": args.width, "B": args.blocks,
            "params": sum(p.numel() for p in model.parameters()),
            "active_params": model.active_parameters(),
            "macs_latency_input": count_flops(model, (args.latency_size, args.latency_size)),
            "macs_720p": count_flops(model, (PAPER_HR_SIZE[0] // args.scale, PAPER_HR_SIZE[1] // args.scale)),
            "train_time_s": round(trained["train_time_s"], 1),
            "final_loss": trained["final_loss"],
            "final_regression_loss": trained["loss_terms"].get("regression"),
            "regression_mae": mae,
            "regression_mae_mean_baseline": mean_mae,
            "regression_mae_median_baseline": median_mae,
            **{f"regression_mae_{group}": float(errors[:, start:stop].mean())
               for group, (start, stop) in VECTOR_GROUPS.items()},
            "mixing_weight_entropy": float((-(mix.clamp_min(1e-12).log() * mix).sum(1)).mean()),
        }
        for level, test_set in level_sets.items():
            row[f"psnr_{level}"] = scores[test_set.name]["psnr"]
            row[f"ssim_{level}"] = scores[test_set.name]["ssim"]
        rows.append(row)
        models[n] = model
        print(f"{model.model_id}: " + ", ".join(f"{lvl} {row[f'psnr_{lvl}']:.2f}" for lvl in level_sets)
              + f" dB; regression MAE {mae:.4f} (mean baseline {mean_mae:.4f}); {trained['train_time_s']:.0f} s")

    latency = measure_latency(models, args.latency_size, args.repeats)
    reference = rows[0]
    for row in rows:
        row["latency_ms"] = latency[row["N"]]["median"]
        row["latency_min_ms"] = latency[row["N"]]["min"]
        row["latency_source"] = (f"measured:cpu ({args.threads} thread, LR {args.latency_size}x{args.latency_size}, "
                                 f"median of {args.repeats} interleaved runs)")
        row["latency_ratio_to_first"] = row["latency_ms"] / latency[reference["N"]]["median"]
        row["latency_min_ratio_to_first"] = row["latency_min_ms"] / latency[reference["N"]]["min"]
        row["macs_ratio_to_first"] = row["macs_latency_input"] / reference["macs_latency_input"]

    import csv

    with open(out / "experts.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    bicubic_row = {"model_id": "MATLAB bicubic (RGB)", **{f"psnr_{lvl}": bicubic_scores[s.name]["psnr"]
                                                          for lvl, s in level_sets.items()}}
    degrees = level_degrees()
    psnr_columns = [("model_id", "model", "")] + [
        (f"psnr_{lvl}", "bicubic LR" if lvl == "bicubic" else f"Level {lvl} ({degrees[lvl]})", ".2f")
        for lvl in level_sets]
    cost_columns = [("model_id", "model", ""), ("params", "params (stored)", ","),
                    ("active_params", "params (run)", ","), ("macs_720p", "MACs @720p out", ","),
                    ("macs_ratio_to_first", "MACs / N=first", ".5f"),
                    ("latency_ms", "latency ms (measured, CPU)", ".1f"),
                    ("latency_ratio_to_first", "median / N=first", ".3f"),
                    ("latency_min_ms", "min ms (measured, CPU)", ".1f"),
                    ("latency_min_ratio_to_first", "min / N=first", ".3f")]
    regression_columns = [("model_id", "model", ""), ("regression_mae", "predictor MAE", ".4f"),
                          ("regression_mae_mean_baseline", "predict-the-mean MAE", ".4f"),
                          ("regression_mae_median_baseline", "predict-the-median MAE", ".4f"),
                          ("mixing_weight_entropy", "mixing entropy (nats)", ".3f"),
                          ("final_loss", "final train loss", ".4f"), ("train_time_s", "train s", ".0f")]
    text = [
        "# DASR: number of experts N",
        "",
        f"Generated by `python -m search.experiments dasr_experts` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        f"All numbers measured by this run; no published DASR numbers exist to compare "
        f"(REPORTED.md 4.1: UNVERIFIED).",
        "",
        f"Training: {args.train_sets}, {args.steps} steps, batch {args.batch_size}, HR patch {args.patch_size}, "
        f"Adam lr {args.lr:g} cosine, seed {args.seed}; L1 + L1 regression of the 33 numbers; degradations "
        f"drawn on the fly (weak/standard/severe 0.3/0.3/0.4). Test: {args.test_set} at x{args.scale}, "
        f"standard protocol (PSNR on Y, shave {args.scale}); levels written with seed {args.seed} "
        f"(manifests beside this file). This is a short CPU budget: absolute PSNRs are far below "
        f"a 500k-iteration GAN-trained DASR, and seed-to-seed variation was not measured "
        f"(one seed per N). While the predictor outputs the same vector for every image the "
        f"mixing weights are uniform, so differences between N are not degradation adaptivity "
        f"(see docs/dasr.md and `python -m search.experiments dasr_init_control`).",
        "",
        "## PSNR (dB) per degradation level",
        "",
        table([bicubic_row] + rows, psnr_columns),
        "",
        "## Cost: parameters grow with N, inference MACs and latency do not",
        "",
        table(rows, cost_columns),
        "",
        f"Latency: measured on this machine's CPU ({args.threads} thread), "
        f"input 1x3x{args.latency_size}x{args.latency_size}, "
        f"{args.repeats} runs per model interleaved call by call (median and minimum). MACs from `count_flops` "
        f"(equals fvcore's count for DASR).",
        "",
        "## Degradation predictor on held-out degradations",
        "",
        table(rows, regression_columns),
        "",
        f"Held-out: {args.heldout_patches} HR patches ({args.patch_size}px) of {args.heldout_set} (not a training "
        f"set), degraded with generator seed {HELD_OUT_SEED} (0.3/0.3/0.4 degrees). Baselines: the mean / "
        f"median 33-number vector of {args.baseline_draws} independent training-distribution draws. "
        f"MAE = mean absolute error over all 33 numbers.",
        "",
        "Per group of the vector (MAE; the last row is the median baseline):",
        "",
        table(rows + [{"model_id": "predict-the-median", **{f"regression_mae_{g}": v
                                                                     for g, v in median_groups.items()}}],
                       [("model_id", "model", "")] + [(f"regression_mae_{g}", f"{g} ({stop - start})", ".4f")
                                                      for g, (start, stop) in VECTOR_GROUPS.items()]),
        "",
    ]
    (out / "experts.md").write_text("\n".join(text))
    study = {"settings": {**vars(args), "budget": budget}, "bicubic": bicubic_scores,
             "median_baseline_groups": median_groups, "rows": rows}
    (out / "study.json").write_text(json.dumps(study, indent=1, default=str))
    print(f"wrote {out / 'experts.md'}, {out / 'experts.csv'}, {out / 'study.json'}")
    print(f"max MACs deviation {max(abs(r['macs_ratio_to_first'] - 1) for r in rows):.2e}; "
          f"max latency deviation: median {max(abs(r['latency_ratio_to_first'] - 1) for r in rows):.3f}, "
          f"min {max(abs(r['latency_min_ratio_to_first'] - 1) for r in rows):.3f}")
    if not all(math.isfinite(r["regression_mae"]) for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
