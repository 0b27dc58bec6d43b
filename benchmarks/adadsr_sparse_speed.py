"""AdaDSR sparse inference vs the masked dense computation: exactness and measured CPU time.

    .venv/bin/python benchmarks/adadsr_sparse_speed.py [--weights reports/adadsr/AdaDSR_s2_D8_F32.pt]
        [--size 180x320] [--image butterfly] [--threads 1] [--repeats 7] [--tile-size 16]

For d in {D/4, D/2, 3D/4, D} prints: max |sparse - dense| (must be <= 1e-4), MACs on active
positions, the positions the tiles really computed, and the median CPU time of the sparse
forward, of the masked dense forward (every block everywhere, times G_l) and of the plain
backbone, with the ratio sparse/dense. Times are measured CPU time of this process on
this machine (``time.process_time``: other load on a shared machine does not enter).
Input: a Set5 LR image (``--image``) or, with ``--size``, a reflect-tiled copy of it at
that LR size. Without trained weights (``--weights none``) the adapter is untrained
(d_hat ~ d everywhere). Exit status 1 when the outputs differ or when sparse is not
faster than dense at d = D/4.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from search.errors import UserError, cli_main  # noqa: E402
from search.models import create_model, load_weights  # noqa: E402
from search.paths import REPO_ROOT  # noqa: E402
from search.profile.latency import time_call

DEFAULT_WEIGHTS = REPO_ROOT / "reports" / "adadsr" / "AdaDSR_s2_D8_F32.pt"


def _median_time(fn, repeats: int) -> float:
    """Median CPU time of this process per call (robust to other load on a shared machine)."""
    return statistics.median(time_call(fn, repeats=repeats, warmup=1).cpu_s)


def _input(image: str, size: str | None, scale: int) -> torch.Tensor:
    from search.models.adadsr import _set5_lr_tensors
    from search.paths import SHIPPED_DATA

    names = sorted(p.stem for p in Path(SHIPPED_DATA, "Set5").glob("*.png"))
    if image not in names:
        raise UserError(f"--image {image!r}: not a Set5 image (choose from {', '.join(names)})")
    lr = _set5_lr_tensors(scale)[names.index(image)]
    if size:
        try:
            height, width = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise UserError(f"--size {size!r}: expected HxW, e.g. 180x320") from None
        if height < 1 or width < 1:
            raise UserError(f"--size {size!r}: sides must be >= 1")
        while lr.shape[-2] < height or lr.shape[-1] < width:
            lr = F.pad(lr, (0, min(lr.shape[-1] - 1, max(0, width - lr.shape[-1])),
                            0, min(lr.shape[-2] - 1, max(0, height - lr.shape[-2]))), mode="reflect")
        lr = lr[..., :height, :width].contiguous()
    return lr


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="AdaDSR_s2_D8_F32")
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS),
                        help="AdaDSR state dict ('none' for random weights)")
    parser.add_argument("--image", default="butterfly")
    parser.add_argument("--size", default=None, help="LR size HxW (reflect-tiled image)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--tile-size", type=int, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    kwargs = {"tile_size": args.tile_size} if args.tile_size else {}
    model = create_model(args.model, **kwargs)
    if model.family != "AdaDSR":
        raise UserError(f"--model {args.model}: not an AdaDSR model")
    if args.weights.lower() != "none":
        load_weights(model, args.weights)
    model.eval()
    plain = create_model(family="AdaDSR-plain", scale=model.scale, D=model.num_blocks, F=model.features).eval()
    lr = _input(args.image, args.size, model.scale)
    shape = tuple(lr.shape)
    print(f"{model.model_id}  weights={args.weights}  input {shape[-2]}x{shape[-1]}  "
          f"tile {model.tile_size}  threads {torch.get_num_threads()}  median of {args.repeats}  "
          f"(measured: CPU time of this process, this CPU)")
    print(f"{'d':>5} {'mean d_hat':>10} {'max|diff|':>10} {'GMACs act':>10} {'exec frac':>9} "
          f"{'sparse ms':>10} {'dense ms':>9} {'plain ms':>9} {'sparse/dense':>12}")
    ok = True
    with torch.inference_mode():
        plain_s = _median_time(lambda: plain(lr), args.repeats)
        for quarter in (1, 2, 3, 4):
            depth = model.num_blocks * quarter / 4
            model.target_depth = depth
            model.inference_mode = "dense"
            dense_out = model(lr)
            dense_s = _median_time(lambda: model(lr), args.repeats)
            model.inference_mode = "sparse"
            model.reset_macs_stats()
            sparse_out = model(lr)
            macs = model.count_macs(shape)
            fractions = model.active_fractions()
            executed = sum(fractions["executed"]) / model.num_blocks
            sparse_s = _median_time(lambda: model(lr), args.repeats)
            diff = float((sparse_out - dense_out).abs().max())
            mean_depth = float(model.last_depth_map.mean())
            ratio = sparse_s / dense_s
            print(f"{depth:5g} {mean_depth:10.3f} {diff:10.2e} {macs / 1e9:10.3f} {executed:9.3f} "
                  f"{sparse_s * 1e3:10.1f} {dense_s * 1e3:9.1f} {plain_s * 1e3:9.1f} {ratio:12.3f}")
            ok &= diff <= 1e-4
            if quarter == 1:
                ok &= ratio < 1.0
                ratio_quarter = ratio
    print(f"sparse/dense CPU time at d = D/4: {ratio_quarter:.3f}  ({'ok' if ok else 'FAILED'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
