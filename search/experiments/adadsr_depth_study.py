"""AdaDSR depth study: train one model on the CPU, then PSNR / FLOPs / latency per target depth.

    python -m search.experiments adadsr_depth_study            # train if needed, evaluate
    python -m search.experiments adadsr_depth_study --retrain  # train again from scratch

Stage 1 (skipped when ``reports/adadsr/<id>.pt`` exists): train the plain backbone
(``AdaDSR-plain``) with :func:`search.train.train_model`, load it into ``AdaDSR`` with
``load_backbone``, fine-tune backbone and adapter with the depth loss (d ~ U[0, D] per
sample), then the adapter alone (backbone frozen, ``--adapter-steps``). The AdaDSR weights
are written to ``reports/adadsr/<id>.pt`` (< 1 MB; the tests load them). Training data:
T91 + BSD200 (``--train-sets``; BSD200 from ``--data-root`` or SR_DATA_ROOT).

Stage 2: for d in {D/4, D/2, 3D/4, D}: Set5 PSNR/SSIM (standard protocol), MACs
(active positions only), mean(d_hat), the measured CPU latency of the sparse and of the
masked dense forward (median of repeats, this machine, ``--threads`` threads), the mean
depth on high- vs low-gradient LR pixels, and depth-map images for every Set5 image.
Writes ``results.csv``, ``results.json``, ``depth_vs_gradient.csv``, ``psnr_vs_flops.png``
and ``depth_maps/`` into ``reports/adadsr/``.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

from search.errors import UserError, cli_main
from search.markdown import markdown_table
from search.models import create_model, load_weights
from search.paths import REPO_ROOT
from search.profile.latency import time_call

REPORT_DIR = REPO_ROOT / "reports" / "adadsr"
RUNS_DIR = REPO_ROOT / "runs" / "adadsr"

# Training settings of the committed checkpoint (CPU, 2 threads: about 17 + 6 + 20 minutes).
PLAIN_BUDGET = {"steps": 6000, "batch_size": 16, "patch_size": 64, "lr": 1e-3,
                "lr_schedule": "cosine", "min_lr": 1e-5}
# Joint fine-tune of backbone and adapter (d ~ U[0, D]): the blocks learn to work truncated.
ADA_BUDGET = {"steps": 2000, "batch_size": 16, "patch_size": 64, "lr": 2e-4,
              "lr_schedule": "cosine", "min_lr": 1e-6, "loss_border": 4}
# Adapter alone (backbone frozen) at a higher learning rate. The L1 gradient on one pixel's
# depth is mostly noise (its spread is ~10x the edge-vs-flat difference of its mean,
# docs/adadsr.md), so at the backbone's learning rate the map stays uniform; this stage lets
# the small consistent part accumulate.
ADAPTER_BUDGET = {"steps": 10000, "batch_size": 16, "patch_size": 64, "lr": 1e-3,
                  "lr_schedule": "cosine", "min_lr": 1e-6, "loss_border": 4}
TRAIN_SETS = ("T91", "BSD200")


def train(args) -> dict:
    from search.train import train_model

    train_sets = tuple(args.train_sets)
    plain = create_model(family="AdaDSR-plain", scale=args.scale, D=args.D, F=args.F)
    plain_budget = dict(PLAIN_BUDGET, steps=args.plain_steps)
    ada_budget = dict(ADA_BUDGET, steps=args.ada_steps, lr=args.ada_lr,
                      patch_size=args.ada_patch, batch_size=args.ada_batch)
    adapter_budget = dict(ADAPTER_BUDGET, steps=args.adapter_steps, lr=args.adapter_lr,
                          patch_size=args.ada_patch, batch_size=args.ada_batch)
    for budget in (ada_budget, adapter_budget):
        # the loss border must leave part of the LR patch
        budget["loss_border"] = min(budget["loss_border"], max(0, (budget["patch_size"] // args.scale - 1) // 2))
    plain_checkpoint = RUNS_DIR / f"{plain.model_id}.pt"
    common = {"train_sets": train_sets, "seed": args.seed, "progress": args.progress,
              "data_root": args.data_root}
    if args.reuse_plain and plain_checkpoint.is_file():
        load_weights(plain, plain_checkpoint)
        log_path = RUNS_DIR / plain.model_id / "train_log.json"
        plain_result = json.loads(log_path.read_text())["result"] if log_path.is_file() else {}
        plain_result["weights_path"] = str(plain_checkpoint)
        plain_result["reused"] = True
    else:
        plain_result = train_model(plain, plain_budget, out_dir=RUNS_DIR / plain.model_id, **common)
    model = create_model(family="AdaDSR", scale=args.scale, D=args.D, F=args.F, lam=args.lam,
                         constraint=args.constraint)
    if not args.scratch:
        model.load_backbone(plain_result["weights_path"])
    # reinit=False keeps the backbone just loaded (train_model would redraw all weights).
    ada_result = train_model(model, ada_budget, reinit=args.scratch,
                             out_dir=RUNS_DIR / f"{model.model_id}_{REPORT_DIR.name}", **common)
    adapter_result = None
    if args.adapter_steps > 0:
        frozen = [p for name, p in model.named_parameters() if not name.startswith("adapter.")]
        for parameter in frozen:
            parameter.requires_grad_(False)
        adapter_result = train_model(model, adapter_budget, reinit=False,
                                     out_dir=RUNS_DIR / f"{model.model_id}_{REPORT_DIR.name}_adapter",
                                     **common)
        for parameter in frozen:
            parameter.requires_grad_(True)
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    checkpoint = REPORT_DIR / f"{model.model_id}.pt"
    torch.save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, checkpoint)
    torch.save({k: v.detach().cpu().contiguous() for k, v in plain.state_dict().items()},
               plain_checkpoint)
    summary = {"plain": {"model_id": plain.model_id, **plain_result, "budget_settings": plain_budget},
               "adadsr": {"model_id": model.model_id, **ada_result, "budget_settings": ada_budget,
                          "lambda": args.lam,
                          "constraint": args.constraint,
                          "init": "scratch" if args.scratch else "plain backbone"},
               "adapter_only": (None if adapter_result is None else
                                {**adapter_result, "budget_settings": adapter_budget,
                                 "frozen": "everything but the adapter"}),
               "train_sets": list(train_sets),
               "seed": args.seed, "threads": torch.get_num_threads(),
               "cpu": platform.processor() or platform.machine()}
    (REPORT_DIR / "training.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary


def _median_time(fn, repeats: int) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds of this process) of ``repeats`` calls.

    CPU time (``time.process_time``) is what the comparison uses: on a shared machine
    the wall time mostly measures the other processes.
    """
    timing = time_call(fn, repeats=repeats, warmup=1)  # warm-up: allocations, oneDNN primitive creation
    return statistics.median(timing.wall_s), statistics.median(timing.cpu_s)


def _gradient_magnitude(lr: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of the LR luminance (h x w)."""
    import torch.nn.functional as F

    luma = (0.299 * lr[:, 0] + 0.587 * lr[:, 1] + 0.114 * lr[:, 2])[:, None]
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3)
    padded = F.pad(luma, (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(padded, kx)
    gy = F.conv2d(padded, kx.transpose(2, 3))
    return torch.sqrt(gx**2 + gy**2)[0, 0]


def depth_on_gradients(depth_map: torch.Tensor, lr: torch.Tensor, quantile: float = 0.25) -> tuple:
    """Mean depth on the top and on the bottom ``quantile`` of LR gradient magnitudes."""
    grad = _gradient_magnitude(lr).flatten()
    depth = depth_map.flatten()
    order = torch.argsort(grad)
    k = max(1, int(quantile * grad.numel()))
    return float(depth[order[-k:]].mean()), float(depth[order[:k]].mean())


def save_depth_image(depth_map: torch.Tensor, depth_max: float, path: Path, title: str) -> None:
    """The depth map as a figure: one colour per depth 0..``depth_max`` (residual blocks run at
    each LR pixel), pixel axes and a labelled colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    shown = ax.imshow(depth_map.numpy(), cmap="viridis", vmin=0, vmax=depth_max)
    ax.set_xlabel("x (LR pixels)")
    ax.set_ylabel("y (LR pixels)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(shown, ax=ax, label="depth (residual blocks)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def redraw_depth_maps(folder: Path, depth_max: float) -> int:
    """Re-draw the 8-bit gray depth tiles an older version of this study wrote (0 = depth 0,
    255 = ``depth_max``) as figures with axes and a colour bar; returns how many were redrawn.
    The gray value holds the depth to depth_max / 255 blocks, far finer than the figure shows."""
    from PIL import Image

    count = 0
    for path in sorted(folder.glob("*_d*.png")):
        with Image.open(path) as image:
            if image.mode != "L":
                continue  # already a figure
            gray = np.asarray(image, dtype=np.float32)
        depth = torch.from_numpy(gray / 255.0 * depth_max)
        name, _, target = path.stem.rpartition("_d")
        save_depth_image(depth, depth_max, path, f"AdaDSR depth map, Set5 {name}, target d={target} "
                                                 f"(mean {float(depth.mean()):.2f})")
        count += 1
    return count


def evaluate(args) -> list[dict]:
    from search.data import find_test_set
    from search.data.protocols import get_protocol
    from search.evaluate import evaluate_model
    from search.evaluate.evaluator import prepare_samples
    from search.paths import SHIPPED_DATA

    model = create_model(family="AdaDSR", scale=args.scale, D=args.D, F=args.F, lam=args.lam,
                         constraint=args.constraint)
    checkpoint = REPORT_DIR / f"{model.model_id}.pt"
    load_weights(model, checkpoint)
    model.eval()
    test_set = find_test_set(Path(SHIPPED_DATA, "Set5"))
    samples = prepare_samples(test_set, args.scale, "rgb", get_protocol("standard"))
    names = [Path(p).stem for p in test_set.images]
    lrs = [s.lr.float() for s in samples]
    try:
        from search.profile import count_flops
    except ImportError:  # profiler not in this checkout: the model's own count
        def count_flops(m, shape):
            return m.count_macs(shape)

    depth_dir = REPORT_DIR / "depth_maps"
    depth_dir.mkdir(parents=True, exist_ok=True)
    timing_lr = lrs[names.index(args.timing_image)] if args.timing_image in names else lrs[0]
    timing_shape = tuple(timing_lr.shape)
    plain = None
    plain_path = RUNS_DIR / f"{create_model(family='AdaDSR-plain', scale=args.scale, D=args.D, F=args.F).model_id}.pt"
    if plain_path.is_file():
        plain = load_weights(create_model(family="AdaDSR-plain", scale=args.scale, D=args.D, F=args.F),
                             plain_path).eval()

    rows, gradient_rows = [], []
    depths = [args.D * q for q in (0.25, 0.5, 0.75, 1.0)]
    deviations = {}  # float maps at d = D/2 minus their mean: the spatial pattern, unquantised
    maps = {}  # (image, d) -> depth map
    with torch.inference_mode():
        for d in depths:
            model.target_depth = d
            model.inference_mode = "sparse"
            model.reset_macs_stats()
            scores = evaluate_model(model, [test_set], protocol="standard", progress=False)["Set5"]
            # MACs at the timing image size from the active fractions just seen on Set5.
            macs_set5 = count_flops(model, timing_shape[-2:])
            mean_depths = []
            for name, lr in zip(names, lrs):
                depth_map = model.predict_depth(model._head(lr), d)[0, 0]
                mean_depths.append(float(depth_map.mean()))
                high, low = depth_on_gradients(depth_map, lr)
                gradient_rows.append({"image": name, "target_depth": d, "mean_depth": mean_depths[-1],
                                      "depth_high_gradient": high, "depth_low_gradient": low})
                save_depth_image(depth_map, args.D, depth_dir / f"{name}_d{d:g}.png",
                                 f"AdaDSR depth map, Set5 {name}, target d={d:g} (mean {mean_depths[-1]:.2f})")
                maps[(name, d)] = depth_map.numpy()
                if d == depths[1]:
                    deviations[name] = (depth_map - depth_map.mean()).numpy()
            sparse_wall, sparse_s = _median_time(lambda: model(timing_lr), args.repeats)
            model.inference_mode = "dense"
            dense_wall, dense_s = _median_time(lambda: model(timing_lr), args.repeats)
            dense_macs = count_flops(model, timing_shape[-2:])
            model.inference_mode = "sparse"
            sparse_out = model(timing_lr)
            model.inference_mode = "dense"
            dense_out = model(timing_lr)
            model.inference_mode = "sparse"
            rows.append({
                "model_id": model.model_id, "target_depth": d,
                "mean_depth_set5": float(np.mean(mean_depths)),
                "psnr_set5": scores["psnr"], "ssim_set5": scores["ssim"],
                "macs": macs_set5, "macs_dense": dense_macs,
                "latency_sparse_ms": sparse_s * 1e3, "latency_dense_ms": dense_s * 1e3,
                "sparse_over_dense": sparse_s / dense_s,
                "wall_sparse_ms": sparse_wall * 1e3, "wall_dense_ms": dense_wall * 1e3,
                "max_abs_diff_sparse_dense": float((sparse_out - dense_out).abs().max()),
            })
            print(json.dumps(rows[-1]), flush=True)
        if plain is not None:
            scores = evaluate_model(plain, [test_set], protocol="standard", progress=False)["Set5"]
            plain_wall, plain_s = _median_time(lambda: plain(timing_lr), args.repeats)
            rows.append({"model_id": plain.model_id, "target_depth": float(args.D),
                         "mean_depth_set5": float(args.D), "psnr_set5": scores["psnr"],
                         "ssim_set5": scores["ssim"], "macs": count_flops(plain, timing_shape[-2:]),
                         "macs_dense": count_flops(plain, timing_shape[-2:]),
                         "latency_sparse_ms": plain_s * 1e3, "latency_dense_ms": plain_s * 1e3,
                         "sparse_over_dense": 1.0,
                         "wall_sparse_ms": plain_wall * 1e3, "wall_dense_ms": plain_wall * 1e3,
                         "max_abs_diff_sparse_dense": 0.0})
            print(json.dumps(rows[-1]), flush=True)

    latency_label = (f"measured:cpu process time ({platform.processor() or platform.machine()}, "
                     f"{torch.get_num_threads()} thread(s), median of {args.repeats}, "
                     f"LR input {timing_shape[-2]}x{timing_shape[-1]} = Set5 {args.timing_image})")
    for row in rows:
        row["latency_source"] = latency_label
        row["macs_input"] = f"{timing_shape[-2]}x{timing_shape[-1]}"
    _write_csv(REPORT_DIR / "results.csv", rows)
    _write_csv(REPORT_DIR / "depth_vs_gradient.csv", gradient_rows)
    (REPORT_DIR / "results.json").write_text(json.dumps({"rows": rows, "depth_vs_gradient": gradient_rows},
                                                       indent=1))
    _plot(rows, gradient_rows, names, depths, args, deviations, maps)
    _write_summary(rows, gradient_rows, latency_label)
    return rows


def _write_summary(rows: list[dict], gradient_rows: list[dict], latency_label: str) -> None:
    """``summary.md``: the table and the checks the issue asks for, from the rows above."""
    ada = [r for r in rows if r["model_id"].startswith("AdaDSR_")]
    lines = [f"# AdaDSR depth study ({ada[0]['model_id']})", "",
             "Generated by `python -m search.experiments adadsr_depth_study`; every number below was measured by it.",
             f"Latency: {latency_label}. MACs at LR {ada[0]['macs_input']}, blocks counted on active "
             "positions (Set5-average active fractions).", "",
             markdown_table(["model", "d", "mean d_hat (Set5)", "Set5 PSNR", "SSIM", "GMACs", "sparse ms",
                             "dense ms", "sparse/dense", "max abs diff"],
                            [[r["model_id"], f"{r['target_depth']:g}", f"{r['mean_depth_set5']:.3f}",
                              f"{r['psnr_set5']:.3f}", f"{r['ssim_set5']:.4f}", f"{r['macs'] / 1e9:.3f}",
                              f"{r['latency_sparse_ms']:.1f}", f"{r['latency_dense_ms']:.1f}",
                              f"{r['sparse_over_dense']:.3f}", f"{r['max_abs_diff_sparse_dense']:.1e}"]
                             for r in rows]).rstrip("\n")]
    macs = [r["macs"] for r in ada]
    psnrs = [r["psnr_set5"] for r in ada]
    drops = [max(0.0, a - b) for a, b in zip(psnrs, psnrs[1:])]
    by_depth: dict[float, list[dict]] = {}
    for g in gradient_rows:
        by_depth.setdefault(g["target_depth"], []).append(g)
    offsets = ", ".join(f"{r['mean_depth_set5'] - r['target_depth']:+.2f}" for r in ada)
    lines += ["", "Checks:", "",
              f"- MACs rise with d: {all(a < b for a, b in zip(macs, macs[1:]))}",
              f"- largest PSNR drop when d rises: {max(drops, default=0.0):.3f} dB",
              f"- mean d_hat minus d: {offsets}",
              f"- max |sparse - masked dense|: {max(r['max_abs_diff_sparse_dense'] for r in ada):.1e}",
              f"- sparse/dense CPU time at d = {ada[0]['target_depth']:g}: {ada[0]['sparse_over_dense']:.3f}",
              "", "Mean depth on the 25% highest vs 25% lowest LR-gradient pixels (Set5 images):", ""]
    for depth, group in by_depth.items():
        high = [g["depth_high_gradient"] for g in group]
        low = [g["depth_low_gradient"] for g in group]
        wins = sum(h > lo for h, lo in zip(high, low))
        lines.append(f"- d = {depth:g}: high {np.mean(high):.2f}, low {np.mean(low):.2f} "
                     f"(high > low on {wins}/{len(group)} images)")
    (REPORT_DIR / "summary.md").write_text("\n".join(lines) + "\n")


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _plot(rows, gradient_rows, names, depths, args, deviations, maps) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from search.paths import SHIPPED_DATA

    ada = [r for r in rows if r["model_id"].startswith("AdaDSR_")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((axes[0], "macs", "GMACs (active positions)"),
                           (axes[1], "latency_sparse_ms", "measured CPU time per image [ms] (1 thread, process time)")):
        xs = [r[key] / 1e9 if key == "macs" else r[key] for r in ada]
        ax.plot(xs, [r["psnr_set5"] for r in ada], "o-", label="AdaDSR (sparse)")
        for x, r in zip(xs, ada):
            ax.annotate(f"d={r['target_depth']:g}", (x, r["psnr_set5"]), textcoords="offset points",
                        xytext=(4, -10), fontsize=8)
        if key == "latency_sparse_ms":
            ax.plot([r["latency_dense_ms"] for r in ada], [r["psnr_set5"] for r in ada], "s--",
                    label="AdaDSR (masked dense)")
        plain = [r for r in rows if not r["model_id"].startswith("AdaDSR_")]
        for r in plain:
            x = r[key] / 1e9 if key == "macs" else r[key]
            ax.plot([x], [r["psnr_set5"]], "k^", label=r["model_id"])
        ax.set_xlabel(label)
        ax.set_ylabel("Set5 PSNR (Y) [dB]")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{ada[0]['model_id']} x{args.scale}: target depth d (input {ada[0]['macs_input']})")
    fig.tight_layout()
    fig.savefig(REPORT_DIR / "psnr_vs_flops.png", dpi=110)
    plt.close(fig)

    columns = len(depths) + 2
    fig, axes = plt.subplots(len(names), columns, figsize=(2.4 * columns, 2.2 * len(names) + 0.8),
                             layout="constrained")
    # 99th percentile: a few border pixels would otherwise set the scale
    spread = max(float(np.percentile(np.abs(v), 99)) for v in deviations.values()) or 1.0
    for i, name in enumerate(names):
        axes[i, 0].imshow(Image.open(Path(SHIPPED_DATA, "Set5", f"{name}.png")).convert("RGB"))
        axes[i, 0].set_title(name, fontsize=8)
        for j, d in enumerate(depths):
            depth_shown = axes[i, j + 1].imshow(maps[(name, d)], cmap="viridis", vmin=0, vmax=args.D)
            stats = next(g for g in gradient_rows if g["image"] == name and g["target_depth"] == d)
            axes[i, j + 1].set_title(f"d={d:g} mean {stats['mean_depth']:.2f}", fontsize=8)
        shown = axes[i, -1].imshow(deviations[name], cmap="RdBu_r", vmin=-spread, vmax=spread)
        axes[i, -1].set_title(f"d={depths[1]:g} minus its mean", fontsize=8)
        fig.colorbar(shown, ax=axes[i, -1], fraction=0.046, pad=0.02,
                     label="blocks vs mean").ax.tick_params(labelsize=6)
        for ax in axes[i]:
            ax.axis("off")
    fig.colorbar(depth_shown, ax=axes[:, 1:-1].ravel().tolist(), location="bottom", shrink=0.6,
                 label=f"depth: residual blocks run at the LR pixel (0..{args.D})")
    fig.suptitle("AdaDSR depth maps on Set5 (columns: target depth d; last column: "
                 "deviation from the image's mean depth in blocks, red = deeper)")
    fig.savefig(REPORT_DIR / "depth_maps.png", dpi=90)
    plt.close(fig)


@cli_main
def main(argv=None) -> int:
    global REPORT_DIR
    parser = argparse.ArgumentParser(prog="python -m search.experiments adadsr_depth_study",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--D", type=int, default=8)
    parser.add_argument("--F", type=int, default=32)
    parser.add_argument("--lam", type=float, default=0.01, help="depth-loss weight lambda")
    parser.add_argument("--plain-steps", type=int, default=PLAIN_BUDGET["steps"])
    parser.add_argument("--ada-steps", type=int, default=ADA_BUDGET["steps"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain", action="store_true", help="train even if the checkpoint exists")
    parser.add_argument("--reuse-plain", action="store_true",
                        help="with --retrain: keep runs/adadsr/<plain id>.pt, train AdaDSR only")
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--redraw-maps", action="store_true",
                        help="only re-draw OUT/depth_maps/*.png written as gray tiles by an older version")
    parser.add_argument("--constraint", choices=("soft", "hard"), default="soft")
    parser.add_argument("--scratch", action="store_true",
                        help="train AdaDSR from random weights instead of the plain backbone")
    parser.add_argument("--ada-lr", type=float, default=ADA_BUDGET["lr"])
    parser.add_argument("--adapter-steps", type=int, default=ADAPTER_BUDGET["steps"],
                        help="steps of the adapter-only stage (backbone frozen); 0 skips it")
    parser.add_argument("--adapter-lr", type=float, default=ADAPTER_BUDGET["lr"])
    parser.add_argument("--train-sets", nargs="+", default=list(TRAIN_SETS),
                        help="training sets (names under the data root, or folders)")
    parser.add_argument("--data-root", default=None,
                        help="where named training sets other than the shipped T91 are found "
                             "(default: SR_DATA_ROOT)")
    parser.add_argument("--ada-patch", type=int, default=ADA_BUDGET["patch_size"], help="HR patch side")
    parser.add_argument("--ada-batch", type=int, default=ADA_BUDGET["batch_size"])
    parser.add_argument("--out", default=str(REPORT_DIR), help="report folder")
    parser.add_argument("--threads", type=int, default=1, help="threads for the timed forwards")
    parser.add_argument("--train-threads", type=int, default=torch.get_num_threads(),
                        help="threads for training (default: PyTorch's default for this machine)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per latency (median)")
    parser.add_argument("--timing-image", default="butterfly", help="Set5 image timed and counted")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args(argv)
    REPORT_DIR = Path(args.out)
    if args.D < 1 or args.F < 1:
        raise UserError(f"--D and --F must be >= 1 (got D={args.D}, F={args.F})")
    if args.redraw_maps:
        print(f"redrew {redraw_depth_maps(REPORT_DIR / 'depth_maps', args.D)} depth map(s) in {REPORT_DIR / 'depth_maps'}")
        return 0
    checkpoint = REPORT_DIR / f"{create_model(family='AdaDSR', scale=args.scale, D=args.D, F=args.F).model_id}.pt"
    if args.retrain or not checkpoint.is_file():
        torch.set_num_threads(args.train_threads)
        summary = train(args)
        print(json.dumps({k: summary[k].get("final_loss") for k in ("plain", "adadsr")}), flush=True)
    if not args.train_only:
        torch.set_num_threads(args.threads)
        evaluate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
