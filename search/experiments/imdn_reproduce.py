"""Reproduce the IMDN paper's table with the official weights: PSNR/SSIM, params, FLOPs.

For x2/x3/x4 it loads the released ``IMDN_x{s}.pth`` (strict, ``weights_only``), scores it
with the suite's evaluator (``standard`` protocol: MATLAB-bicubic LR, clamped and 8-bit
quantised RGB output, float Y, ``s``-pixel border) on Set5 and Set14, counts parameters and
MACs for a 1280x720 HR output (LR ``720/s x 1280/s``; for x3 both ``426`` (floor, the
suite's ``lr_shape_for``) and ``427`` (ceil) columns are shown, since 1280/3 is fractional),
and prints them beside the published numbers read from ``published/imdn_reported.csv``
(which cites ``published/REPORTED.md``). Writes ``reports/imdn/reproduction.{csv,md}``.

    python -m search.experiments imdn_reproduce [--scales 2 3 4] [--sets Set5 Set14] [--out reports/imdn]
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import torch

from search.errors import UserError, cli_main
from search.markdown import markdown_table
from search.paths import PUBLISHED_DIR, REPO_ROOT
from search.profile.flops import PAPER_HR_SIZE
from search.profile.latency import time_call

PUBLISHED_FILE = PUBLISHED_DIR / "imdn_reported.csv"


def read_published() -> dict[int, dict[str, str]]:
    if not PUBLISHED_FILE.is_file():
        raise UserError("published numbers not found", path=PUBLISHED_FILE)
    with open(PUBLISHED_FILE, newline="") as handle:
        return {int(row["scale"]): row for row in csv.DictReader(handle)}


def measure(scale: int, sets: list[str]) -> dict:
    from search.evaluate import evaluate_model
    from search.models import create_model, load_weights, released_weights_path
    from search.profile.flops import count_flops, count_params

    model = create_model(f"IMDN_s{scale}")
    load_weights(model, released_weights_path(model.model_id))
    timed = time_call(lambda: evaluate_model(model, sets, protocol="standard", progress=True))
    scores = timed.result
    row = {"model_id": model.model_id, "scale": scale, "params": count_params(model),
           "eval_time_s": round(timed.wall_s[0], 1)}
    for name in sets:
        row[f"{name.lower()}_psnr"] = round(scores[name]["psnr"], 4)
        row[f"{name.lower()}_ssim"] = round(scores[name]["ssim"], 4)
    height = PAPER_HR_SIZE[0] // scale
    widths = sorted({math.floor(PAPER_HR_SIZE[1] / scale), math.ceil(PAPER_HR_SIZE[1] / scale)})
    row["flops_g_1280x720"] = " / ".join(
        f"{count_flops(model, (height, w)) / 1e9:.2f} (LR {height}x{w})" for w in widths
    )
    return row


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.experiments imdn_reproduce",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14"])
    parser.add_argument("--out", default=str(REPO_ROOT / "reports" / "imdn"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    published = read_published()
    rows = [measure(scale, args.sets) for scale in args.scales]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "reproduction.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    lines = ["# IMDN: official weights vs the published table", "",
             "Measured: this suite (`python -m search.experiments imdn_reproduce`), CPU, `standard` protocol "
             "(Y of the clamped, 8-bit RGB output; border = scale). Published: "
             "`published/imdn_reported.csv` (from `published/REPORTED.md` 1.1, 1.2; the "
             "Mult-Adds are a SECONDARY source, SwinIR's re-print).", ""]
    header = ["scale", "params (measured)", "params (published)"]
    for name in args.sets:
        header += [f"{name} PSNR/SSIM (measured)", f"{name} (published)", f"{name} ΔPSNR"]
    header += ["MACs @1280x720 out, G (measured)", "Mult-Adds, G (published)"]
    cells_by_row = []
    for row in rows:
        pub = published.get(row["scale"], {})
        cells = [f"x{row['scale']}", f"{row['params']:,}", pub.get("params_reported", "")]
        for name in args.sets:
            key = name.lower()
            measured = f"{row[f'{key}_psnr']:.2f} / {row[f'{key}_ssim']:.4f}"
            if f"{key}_psnr" in pub:
                published_text = f"{float(pub[f'{key}_psnr']):.2f} / {float(pub[f'{key}_ssim']):.4f}"
                delta = f"{row[f'{key}_psnr'] - float(pub[f'{key}_psnr']):+.4f}"
            else:
                published_text, delta = "", ""
            cells += [measured, published_text, delta]
        cells += [row["flops_g_1280x720"], pub.get("mult_adds_g_1280x720", "")]
        cells_by_row.append(cells)
    lines += [markdown_table(header, cells_by_row),  # its closing newline + the join's: a blank line
              "ΔPSNR uses the unrounded measured mean (see reproduction.csv) against the "
              "published two-decimal value.", ""]
    (out / "reproduction.md").write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out / 'reproduction.md'} and {out / 'reproduction.csv'}")
    return 0


if __name__ == "__main__":
    main()
