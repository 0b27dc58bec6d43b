"""Evaluate all released eSR models on Set5 + Set14 and compare with the published numbers.

Writes ``reports/esr_released_eval.csv`` (per model: reproduced and published PSNR/SSIM
and their difference, under the suite's default protocol for eSR models, ``esr``) and
prints the residuals per family and scale, plus the wall time of the whole grid beside
a naive per-image, per-model loop measured in the same run on a sample of models.

B100 (the authors' column ``BSDS100``; 100 images, 4 times the pixels of Set5 + Set14 and
3.3 times the time per model) is evaluated apart, into ``reports/esr_released_eval_b100.csv``
(``--b100-out``): by default (``--b100 shown``) only the models the paper tables show for it,
the best published model per family and scale (:func:`shown_models`, 21 models whatever
``--limit``, a few minutes); ``--b100 all`` evaluates every evaluated model (about 20 more
minutes for the 1185 on 2 idle cores), ``--b100 none`` none. At x3 the ``B100_x3`` crops are
used when they are next to B100 (search.data.datasets).

The fast path prepares each test image's LR input and metric target once per scale
(cached, including the reference SSIM statistics), runs models under
``torch.inference_mode`` with one thread per worker process, and splits the models over
``--workers`` processes that share the prepared inputs (fork).

    python -m search.experiments esr_released_eval                 # all 1185 models, 2 workers
    python -m search.experiments esr_released_eval --limit 40      # quick look
    python -m search.experiments esr_released_eval --b100 all      # B100 for all 1185 models too
"""

from __future__ import annotations

import argparse
import csv
import math
import multiprocessing as mp
import os
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from search.data import find_test_set, read_image
from search.errors import DataError, cli_main
from search.evaluate import evaluate_model, get_protocol
from search.evaluate.evaluator import prepare_samples, sample_reference
from search.markdown import markdown_table
from search.models import create_model, load_weights, released_weights_path
from search.paths import PUBLISHED_DIR, REPO_ROOT
from search.profile.latency import time_call

SETS = ("Set5", "Set14")
PROTOCOL = "esr"
# Test sets evaluated apart from the grid's (--b100): the suite's set name -> the name of the
# published column (esr_tests.csv: psnr_BSDS100, ssim_BSDS100).
B100 = "B100"
PUBLISHED_NAMES = {B100: "BSDS100"}
B100_MODES = ("shown", "all", "none")


def published_name(test_set: str) -> str:
    """The set's name in the published table's columns (B100 -> BSDS100)."""
    return PUBLISHED_NAMES.get(test_set, test_set)


def load_published() -> dict[str, dict]:
    with (PUBLISHED_DIR / "esr_tests.csv").open(newline="") as handle:
        return {row["model"]: row for row in csv.DictReader(handle)}


def shown_models(published: dict[str, dict], test_set: str = B100) -> list[str]:
    """The models the paper tables show for ``test_set`` (search.report.paper_tables, esr_best):
    per family and scale the one with the highest published PSNR on it (the first in the
    published table's order on a tie, as there)."""
    column = f"psnr_{published_name(test_set)}"
    best: dict[tuple[str, str], tuple[float, str]] = {}
    for model_id, row in published.items():  # the published table's order
        text = (row.get(column) or "").strip()
        if not text:
            continue
        value, group = float(text), (row["family"], row["s"])
        if group not in best or value > best[group][0]:
            best[group] = (value, model_id)
    return sorted(model_id for _, model_id in best.values())


def build(model_id: str):
    model = create_model(model_id)
    load_weights(model, released_weights_path(model_id))
    return model.eval()


# ----------------------------------------------------------------------------- fast path
_TEST_SETS = None


def _worker_init():
    torch.set_num_threads(1)
    # The pool ends its workers with SIGTERM; the handler inherited from cli_main (raise
    # Terminated) would print a traceback from each worker caught mid-wait.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _evaluate_one(model_id: str) -> tuple[str, dict, float]:
    timed = time_call(lambda: evaluate_model(build(model_id), _TEST_SETS, protocol=PROTOCOL, progress=False))
    return model_id, timed.result, timed.wall_s[0]


def fast_grid(model_ids: list[str], test_sets, workers: int, progress: bool = True) -> dict[str, dict]:
    """All models, inputs prepared once in the parent and shared with forked workers."""
    global _TEST_SETS
    _TEST_SETS = test_sets
    protocol = get_protocol(PROTOCOL)
    torch.set_num_threads(1)
    for scale in sorted({int(m.split("_s")[1].split("_")[0]) for m in model_ids}):
        for test_set in test_sets:
            for sample in prepare_samples(test_set, scale, "gray", protocol):
                sample_reference(sample, protocol.border(scale), torch.device("cpu"))
    results: dict[str, dict] = {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(model_ids), desc="released eSR models", unit="model", file=sys.stderr,
                   dynamic_ncols=True)
    # Expensive families first, so the workers finish together.
    order = sorted(model_ids, key=lambda m: (not m.startswith(("FSRCNN", "ESPCN", "eSR-CNN")), m))
    if workers > 1:
        context = mp.get_context("fork")
        with context.Pool(workers, initializer=_worker_init) as pool:
            for model_id, result, _ in pool.imap_unordered(_evaluate_one, order, chunksize=4):
                results[model_id] = result
                if bar is not None:
                    bar.update(1)
    else:
        for model_id in order:
            results[model_id] = _evaluate_one(model_id)[1]
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return results


# ----------------------------------------------------------------------------- naive loop
def _naive_ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Textbook SSIM: 2-D 11x11 Gaussian window, float64 conv2d, recomputed every time."""
    offsets = torch.arange(11, dtype=torch.float64) - 5
    window = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5**2))
    window = (window / window.sum())[None, None]
    a, b = a[None, None].double(), b[None, None].double()
    mu_a, mu_b = F.conv2d(a, window), F.conv2d(b, window)
    s_aa = F.conv2d(a * a, window) - mu_a**2
    s_bb = F.conv2d(b * b, window) - mu_b**2
    s_ab = F.conv2d(a * b, window) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * s_ab + c2)) / ((mu_a**2 + mu_b**2 + c1) * (s_aa + s_bb + c2))
    return float(ssim_map.mean())


def naive_evaluate(model, test_sets) -> dict:
    """Per model, per image: decode, convert, resize, infer (autograd on), score from scratch."""
    protocol = get_protocol(PROTOCOL)
    scale = model.scale
    out = {}
    for test_set in test_sets:
        psnrs, ssims = [], []
        for path in test_set.images:
            sample = protocol.prepare(read_image(path), scale, "gray")
            sr = model(sample.lr)
            pred = protocol.output_to_metric(sr, "gray", sample.gray_image)
            pred = pred[scale:-scale, scale:-scale]
            target = sample.target[scale:-scale, scale:-scale]
            mse = float(((pred - target) ** 2).mean())
            psnrs.append(10 * math.log10(255**2 / mse))
            ssims.append(_naive_ssim(pred, target))
        out[test_set.name] = {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)),
                              "images": len(psnrs)}
    return out


def stratified_sample(model_ids: list[str], count: int) -> list[str]:
    by_group = defaultdict(list)
    for model_id in model_ids:
        family, scale = model_id.split("_")[0], model_id.split("_")[1]
        by_group[(family, scale)].append(model_id)
    rng = np.random.default_rng(0)
    picked = []
    groups = [sorted(by_group)[i] for i in rng.permutation(len(by_group))]
    while len(picked) < count and any(by_group.values()):
        for group in groups:
            if by_group[group] and len(picked) < count:
                picked.append(by_group[group].pop(int(rng.integers(len(by_group[group])))))
    return picked


# ----------------------------------------------------------------------------- report
def write_csv(path: Path, results: dict, published: dict, sets=SETS) -> list[dict]:
    """One row per model: reproduced, published (column of :func:`published_name`) and delta."""
    rows = []
    for model_id in sorted(results):
        pub = published[model_id]
        row = {"model": model_id, "family": pub["family"], "scale": int(pub["s"]),
               "parameters": int(float(pub["parameters"])), "protocol": PROTOCOL}
        for name in sets:
            ours, theirs = results[model_id][name], published_name(name)
            row[f"psnr_{name}"] = round(ours["psnr"], 4)
            row[f"published_psnr_{name}"] = round(float(pub[f"psnr_{theirs}"]), 4)
            row[f"delta_psnr_{name}"] = round(ours["psnr"] - float(pub[f"psnr_{theirs}"]), 4)
            row[f"ssim_{name}"] = round(ours["ssim"], 5)
            row[f"published_ssim_{name}"] = round(float(pub[f"ssim_{theirs}"]), 5)
            row[f"delta_ssim_{name}"] = round(ours["ssim"] - float(pub[f"ssim_{theirs}"]), 5)
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def summarize(rows: list[dict]) -> str:
    groups = defaultdict(list)
    for row in rows:
        groups[(row["family"], row["scale"])].append(row)
    cells = []
    for (family, scale), members in sorted(groups.items()):
        d5 = np.array([r["delta_psnr_Set5"] for r in members])
        d14 = np.array([r["delta_psnr_Set14"] for r in members])
        s14 = np.array([r["delta_ssim_Set14"] for r in members])
        cells.append([family, f"x{scale}", len(members), f"{d5.mean():+.3f} / {np.abs(d5).max():.3f}",
                      f"{(np.abs(d5) < 0.05).mean():.0%}", f"{d14.mean():+.3f} / {np.abs(d14).max():.3f}",
                      f"{(np.abs(d14) < 0.05).mean():.0%}", f"{np.abs(s14).max():.4f}"])
    lines = [markdown_table(["family", "scale", "models", "Set5 mean / max abs d (dB)", "Set5 within 0.05",
                             "Set14 mean / max abs d (dB)", "Set14 within 0.05", "max abs d SSIM Set14"],
                            cells).rstrip("\n")]
    d5 = np.array([r["delta_psnr_Set5"] for r in rows if r["model"] != "Bicubic_s3"])
    d14 = np.array([r["delta_psnr_Set14"] for r in rows if r["model"] != "Bicubic_s3"])
    lines.append(f"\nAll models: Set5 median abs d {np.median(np.abs(d5)):.3f} dB, "
                 f"{(np.abs(d5) < 0.05).mean():.1%} within 0.05; Set14 median abs d "
                 f"{np.median(np.abs(d14)):.3f} dB, {(np.abs(d14) < 0.05).mean():.1%} within 0.05.")
    return "\n".join(lines)


def summarize_extra(rows: list[dict], name: str) -> str:
    """Per model (few) or per family and scale (many): reproduced vs published on ``name``."""
    if not rows:
        return "No model evaluated."
    if len(rows) <= 30:
        cells = [[r["family"], f"x{r['scale']}", r["model"], f"{r[f'psnr_{name}']:.3f}",
                  f"{r[f'published_psnr_{name}']:.3f}", f"{r[f'delta_psnr_{name}']:+.3f}",
                  f"{r[f'delta_ssim_{name}']:+.4f}"]
                 for r in sorted(rows, key=lambda r: (r["scale"], r["family"]))]
        table = markdown_table(["family", "scale", "model", "PSNR (dB)", "published", "d PSNR", "d SSIM"], cells)
    else:
        groups = defaultdict(list)
        for row in rows:
            groups[(row["family"], row["scale"])].append(row)
        cells = []
        for (family, scale), members in sorted(groups.items()):
            d = np.array([r[f"delta_psnr_{name}"] for r in members])
            cells.append([family, f"x{scale}", len(members), f"{d.mean():+.3f} / {np.abs(d).max():.3f}",
                          f"{(np.abs(d) < 0.05).mean():.0%}"])
        table = markdown_table(["family", "scale", "models", f"{name} mean / max abs d (dB)", "within 0.05"], cells)
    d = np.array([r[f"delta_psnr_{name}"] for r in rows])
    by_scale = ", ".join(f"x{s} {np.mean([r[f'delta_psnr_{name}'] for r in rows if r['scale'] == s]):+.3f}"
                         for s in sorted({r["scale"] for r in rows}))
    return (table.rstrip("\n") + f"\n\n{len(rows)} models: median abs d {np.median(np.abs(d)):.3f} dB, "
            f"max {np.abs(d).max():.3f}, {(np.abs(d) < 0.05).mean():.0%} within 0.05; mean d by scale: {by_scale}.")


def describe_set(test_set) -> str:
    """Where a set's images come from, x{k} crops included (search.data.datasets)."""
    text = f"{test_set.name}: {len(test_set.images)} images from {test_set.path}"
    if test_set.crops is not None:
        used = sum(p.parent == test_set.crops or p.parent.parent == test_set.crops for p in test_set.images)
        text += (f"; at x{test_set.crops_scale} the crops in {test_set.crops} ({used} images: "
                 f"read from there at every scale, the same pixels as {test_set.path.name} at the others)")
    else:
        text += "; no x3 crops beside it: x3 mod-crops these images"
    return text


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.experiments esr_released_eval",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--limit", type=int, help="evaluate only a stratified sample of this many models")
    parser.add_argument("--naive-sample", type=int, default=4,
                        help="models timed with the naive loop (stratified over family x scale)")
    parser.add_argument("--out", default=str(REPO_ROOT / "reports" / "esr_released_eval.csv"))
    parser.add_argument("--b100", choices=B100_MODES, default="shown",
                        help="B100 (published BSDS100): 'shown' = only the 21 models the paper tables show "
                             "(best published per family and scale, whatever --limit), 'all' = every "
                             "evaluated model, "
                             "'none' = skip (default: shown)")
    parser.add_argument("--b100-out", help="CSV of the B100 evaluation (default: <out>_b100.csv)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    published = load_published()
    model_ids = sorted(published)
    if args.limit:
        model_ids = stratified_sample(model_ids, args.limit)
    b100_ids = {"shown": shown_models(published), "all": model_ids, "none": []}[args.b100]
    missing = [m for m in sorted(set(model_ids) | set(b100_ids)) if not released_weights_path(m).is_file()]
    if missing:
        print(f"error: {len(missing)} released weight files missing (e.g. {missing[0]})", file=sys.stderr)
        return 2
    test_sets = [find_test_set(name) for name in SETS]
    b100_set = None
    if b100_ids:
        try:
            b100_set = find_test_set(B100)
        except DataError as error:
            raise DataError(f"{error} (or --b100 none to skip it)") from None

    load_before = os.getloadavg()[0]
    timed = time_call(lambda: fast_grid(model_ids, test_sets, args.workers, progress=not args.no_progress))
    results, fast_wall = timed.result, timed.wall_s[0]
    load_after = os.getloadavg()[0]

    # Naive loop on a sample: one process, one thread, autograd on, nothing cached.
    torch.set_num_threads(1)
    sample = stratified_sample(sorted(published), args.naive_sample)
    timed = time_call(lambda: {m: naive_evaluate(build(m), test_sets) for m in sample})
    naive_results, naive_per_model = timed.result, timed.wall_s[0] / len(sample)
    # Same sample through the fast path in this process (warm cache), for a like-for-like ratio.
    timed = time_call(lambda: {m: evaluate_model(build(m), test_sets, protocol=PROTOCOL, progress=False)
                               for m in sample})
    fast_results, fast_per_model_1 = timed.result, timed.wall_s[0] / len(sample)
    agreement = max(abs(naive_results[m][s]["psnr"] - fast_results[m][s]["psnr"]) for m in sample for s in SETS)

    b100_text = ""
    if b100_set is not None:
        timed = time_call(lambda: fast_grid(b100_ids, [b100_set], args.workers, progress=not args.no_progress))
        b100_results, b100_wall = timed.result, timed.wall_s[0]
        b100_out = Path(args.b100_out) if args.b100_out else Path(args.out).with_name(Path(args.out).stem + "_b100.csv")
        b100_rows = write_csv(b100_out, b100_results, published, sets=(B100,))
        b100_text = (f"\n\n## {B100} (published column {published_name(B100)}), `--b100 {args.b100}`\n\n"
                     f"{describe_set(b100_set)}. Written to `{b100_out.name}`.\n\n"
                     f"{summarize_extra(b100_rows, B100)}")
        b100_timing = (f"\n- {B100} (`--b100 {args.b100}`), {len(b100_ids)} models x {len(b100_set.images)} "
                       f"images, {args.workers} worker process(es), inputs prepared once per scale: "
                       f"{b100_wall:.1f} s wall ({b100_wall / len(b100_ids) * 1000:.0f} ms/model)")
        print(f"wrote {b100_out}")

    rows = write_csv(Path(args.out), results, published)
    summary = summarize(rows)
    naive_total = naive_per_model * len(model_ids)
    timing = (
        f"Measured on this machine (CPU, {os.cpu_count()} cores visible, 1-min load average "
        f"{load_before:.1f} before / {load_after:.1f} after the grid), {len(model_ids)} models x "
        f"{sum(len(t.images) for t in test_sets)} images:\n"
        f"- fast path, whole grid, {args.workers} worker process(es): {fast_wall:.1f} s wall "
        f"({fast_wall / len(model_ids) * 1000:.0f} ms/model)\n"
        f"- naive per-image per-model loop (1 process, 1 thread), measured on {len(sample)} "
        f"sampled models: {naive_per_model:.2f} s/model -> {naive_total:.0f} s estimated for the grid "
        f"(x{naive_total / fast_wall:.1f} the fast path's wall time)\n"
        f"- same sample, fast path, 1 process, 1 thread, warm cache: {fast_per_model_1:.2f} s/model "
        f"(x{naive_per_model / fast_per_model_1:.1f} faster per model than naive)\n"
        f"- naive and fast results agree within {agreement:.2e} dB"
    )
    if b100_set is not None:
        timing += b100_timing
    print(summary + b100_text)
    print(timing)
    summary_path = Path(args.out).with_name(Path(args.out).stem + "_summary.md")
    summary_path.write_text(
        f"# Released eSR models vs published (esr_tests.csv), protocol `{PROTOCOL}`\n\n"
        f"Generated by `python -m search.experiments esr_released_eval` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}); "
        f"d = reproduced - published PSNR. Bicubic_s3's published row comes from a misaligned "
        f"released filter (see docs/evaluation.md).\n\n{summary}{b100_text}\n\n## Timing\n\n{timing}\n")
    print(f"wrote {args.out} and {summary_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
