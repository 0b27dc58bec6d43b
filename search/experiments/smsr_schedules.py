"""SMSR experiment: the official x2 model against the paper, and PSNR / sparsity / FLOPs per tau schedule.

Two parts, every number measured here (published values are read from
``published/smsr_reported.csv``, which cites REPORTED.md):

* ``official``: the authors' released ``SMSR_x2.pt`` through the sparse inference path on
  Set5 and Set14 (standard Y protocol), the largest sparse-vs-dense output difference,
  the measured average sparsity and the MACs at a 1280x720 output (the masks of those
  test images, as the paper uses the average sparsity over its test sets), beside the
  published numbers.
* ``schedules``: each configuration of ``spaces/smsr.yaml`` (one per tau schedule) is
  trained with the space's budget and seed, evaluated through the sparse path, and its
  measured sparsity and sparse/dense MACs at 1280x720 are recorded.

Outputs ``<out>/official.{csv,md}`` and ``<out>/schedules.{csv,md}``.

    python -m search.experiments smsr_schedules [--space spaces/smsr.yaml] [--out reports/smsr]
        [--skip-official] [--skip-schedules] [--steps N] [--threads 2]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from search.errors import UserError, cli_main
from search.markdown import markdown_table
from search.paths import PUBLISHED_DIR, REPO_ROOT, SPACES_DIR
from search.profile.flops import PAPER_HR_SIZE
from search.profile.latency import time_call

PUBLISHED_CSV = PUBLISHED_DIR / "smsr_reported.csv"


def published_smsr(scale: int) -> dict:
    """The paper's row for ``scale`` from ``published/smsr_reported.csv`` (numbers as floats)."""
    if not PUBLISHED_CSV.is_file():
        raise UserError("published SMSR numbers not found", path=PUBLISHED_CSV)
    with open(PUBLISHED_CSV, newline="") as handle:
        for row in csv.DictReader(handle):
            if int(row["scale"]) == int(scale):
                out: dict = {}
                for key, value in row.items():
                    try:
                        out[key] = float(value)
                    except ValueError:
                        out[key] = value
                return out
    raise UserError(f"no published SMSR row for x{scale}", path=PUBLISHED_CSV)


def _lr_shape(scale: int) -> tuple[int, int]:
    return PAPER_HR_SIZE[0] // scale, PAPER_HR_SIZE[1] // scale


def measure(model, test_sets, *, protocol: str = "standard", progress: bool = True) -> dict:
    """PSNR per set through the sparse path, measured sparsity and MACs at 1280x720."""
    from search.evaluate import evaluate_model

    model.eval()
    model.set_inference("sparse")
    model.reset_mask_stats()
    scores = evaluate_model(model, list(test_sets), protocol=protocol, progress=progress)
    report = model.mask_report()
    sparse_macs = model.count_macs(_lr_shape(model.scale))
    model.set_inference("dense")
    dense_macs = model.count_macs(_lr_shape(model.scale))
    model.set_inference("sparse")
    row = {f"psnr_{name}": result["psnr"] for name, result in scores.items()}
    row.update({f"ssim_{name}": result["ssim"] for name, result in scores.items()})
    row.update({
        "average_sparsity": report["average_sparsity"],
        "spatial_density": ";".join(f"{d:.3f}" for d in report["spatial_density"]),
        "flops_sparse_g": sparse_macs / 1e9,
        "flops_dense_g": dense_macs / 1e9,
        "flops_ratio": sparse_macs / dense_macs,
    })
    return row


def official_report(test_sets=("Set5", "Set14"), progress: bool = True) -> dict:
    import torch

    from search.data import find_test_set
    from search.evaluate import get_protocol, prepare_samples
    from search.models import create_model, load_weights, released_weights_path

    model = create_model("SMSR_s2")
    load_weights(model, released_weights_path("SMSR_s2"))
    timed = time_call(lambda: measure(model, test_sets, progress=progress))
    row = timed.result
    row["eval_time_s"] = timed.wall_s[0]
    worst = 0.0
    with torch.inference_mode():  # the dense reference path on every test image
        for name in test_sets:
            test_set = find_test_set(name)
            for sample in prepare_samples(test_set, 2, "rgb", get_protocol("standard")):
                sparse = model.set_inference("sparse")(sample.lr)
                dense = model.set_inference("dense")(sample.lr)
                worst = max(worst, float((sparse - dense).abs().max()))
    model.set_inference("sparse")
    row["max_abs_sparse_minus_dense"] = worst
    return row


def schedule_report(space_path: Path, *, steps: int | None = None, progress: bool = True) -> list[dict]:
    from search.models import create_model
    from search.space import load_space
    from search.train import train_model

    space = load_space(space_path)
    budget = space.fixed.budget
    if steps is not None:
        budget = dict(budget) if isinstance(budget, dict) else {"base": budget}
        if "base" in budget:
            raise UserError("--steps needs an inline budget mapping in the space file", path=space_path)
        budget["steps"] = int(steps)
    rows = []
    for config in space.enumerate():
        if config["family"] != "SMSR":
            continue
        hparams = {k: v for k, v in config.items() if k not in ("config_id", "model_id", "family", "scale")}
        model = create_model(config["model_id"], **hparams)
        trained = train_model(model, budget, train_sets=tuple(space.fixed.train_sets), seed=space.fixed.seed,
                              progress=progress)
        row = {
            "tau_schedule": model.tau_schedule.describe(),
            "final_tau": model.tau,
            "sparsity_weight": model.sparsity_weight,
            "steps": trained["steps"],
            "train_time_s": trained["train_time_s"],
            "final_loss": trained["final_loss"],
            "train_density_last": model.last_density,
        }
        row.update(measure(model, space.fixed.test_sets, protocol=space.fixed.protocol or "standard",
                           progress=progress))
        row["config_id"] = config["config_id"]
        rows.append(row)
    return rows


def _write_csv(rows: list[dict], path: Path) -> None:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def _fmt(value, digits=3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def write_official(row: dict, out: Path) -> None:
    paper = published_smsr(2)
    _write_csv([row], out / "official.csv")
    lines = [
        "# SMSR x2, released weights: measured vs published",
        "",
        "Measured here: `python -m search.experiments smsr_schedules` (sparse inference path, standard Y",
        "protocol, CPU). Published: `published/smsr_reported.csv` (REPORTED.md 2.1, paper Table 1).",
        "FLOPs = multiply-accumulates at a 1280x720 output; the sparse count uses each module's",
        "mean spatial density over the test images below (the paper: over all its test sets).",
        "",
        markdown_table(["quantity", "measured", "published"], [
            ["Set5 PSNR (dB)", f"{row['psnr_Set5']:.3f}", f"{paper['set5_psnr']:.2f}"],
            ["Set14 PSNR (dB)", f"{row['psnr_Set14']:.3f}", f"{paper['set14_psnr']:.2f}"],
            ["Set5 SSIM", f"{row['ssim_Set5']:.4f}", f"{paper['set5_ssim']:.4f}"],
            ["Set14 SSIM", f"{row['ssim_Set14']:.4f}", f"{paper['set14_ssim']:.4f}"],
            ["average sparsity", f"{row['average_sparsity']:.3f} (Set5+Set14)",
             f"{paper['average_sparsity']:.2f} (all sets)"],
            ["dense FLOPs (G)", f"{row['flops_dense_g']:.1f}", f"{paper['flops_dense_g_1280x720']:.1f}"],
            ["sparse FLOPs (G)", f"{row['flops_sparse_g']:.1f}", f"{paper['flops_sparse_g_1280x720']:.1f}"],
            ["sparse / dense FLOPs", f"{row['flops_ratio']:.3f}",
             f"{paper['flops_sparse_g_1280x720'] / paper['flops_dense_g_1280x720']:.3f}"],
        ]),
        f"Largest |sparse - dense| output difference over these images: {row['max_abs_sparse_minus_dense']:.2e}",
        f"(outputs on the 0..1 scale). Spatial density per module: {row['spatial_density']}.",
        "Sparsity = fraction of the body convs' output entries (channel x position) the sparse",
        "path skips, averaged over the 20 masked layers.",
    ]
    (out / "official.md").write_text("\n".join(lines) + "\n")


def write_schedules(rows: list[dict], out: Path, space_path: Path) -> None:
    _write_csv(rows, out / "schedules.csv")
    sets = [k[5:] for k in rows[0] if k.startswith("psnr_")] if rows else []
    header = ["tau schedule", "final tau"] + [f"PSNR {s}" for s in sets] + [
        "sparsity", "sparse FLOPs (G)", "dense FLOPs (G)", "ratio", "train s (wall)"]
    lines = [
        "# SMSR: tau schedules",
        "",
        f"Space `{space_path.relative_to(REPO_ROOT) if space_path.is_relative_to(REPO_ROOT) else space_path}`;"
        " every number measured by `python -m search.experiments smsr_schedules` (CPU).",
        "FLOPs: MACs at a 1280x720 output, the sparse count at the mean spatial density measured",
        "on the test sets. A short CPU budget with a small SMSR: compare schedules with each",
        "other, not with the paper. Training time is wall-clock on a shared CPU, so it",
        "varies with the other load on the machine.",
        "",
    ]
    cells = [[row["tau_schedule"], _fmt(row["final_tau"], 2)] + [_fmt(row[f"psnr_{s}"]) for s in sets] + [
        _fmt(row["average_sparsity"]), _fmt(row["flops_sparse_g"], 2), _fmt(row["flops_dense_g"], 2),
        _fmt(row["flops_ratio"]), _fmt(row["train_time_s"], 0)] for row in rows]
    (out / "schedules.md").write_text("\n".join(lines) + "\n" + markdown_table(header, cells))


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.experiments smsr_schedules",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--space", type=Path, default=SPACES_DIR / "smsr.yaml")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "smsr")
    parser.add_argument("--skip-official", action="store_true", help="skip the released-weights part")
    parser.add_argument("--skip-schedules", action="store_true", help="skip training the schedules")
    parser.add_argument("--steps", type=int, default=None, help="override the space budget's steps")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress
    if not args.skip_official:
        row = official_report(progress=progress)
        write_official(row, args.out)
        print((args.out / "official.md").read_text())
    if not args.skip_schedules:
        space = args.space.resolve()
        rows = schedule_report(space, steps=args.steps, progress=progress)
        write_schedules(rows, args.out, space)
        print((args.out / "schedules.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
