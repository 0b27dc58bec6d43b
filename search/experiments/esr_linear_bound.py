"""The best linear K x K upscaling filter per scale (least squares on T91), against the published C=1 models.

    python -m search.experiments esr_linear_bound --out studies/esr_linear_bound.json [--train-sets T91]

With ``C = 1`` every one-layer eSR model is a linear filter: eSR-MAX takes the max of one
channel, and the softmax over one channel of eSR-TM and eSR-TR is 1. So ``eSR-{MAX,TM,TR}_s*_K*_C1``
are the same function class, ``s^2`` linear ``K x K`` filters of the LR image. This experiment
fits that class in closed form: the filters minimising the squared error of every LR pixel's
``s x s`` HR block on the training set (the normal equations of the neighbourhoods of
``search.data.training.NeighbourhoodBank``: every pixel whose neighbourhood lies inside its
image, as the models are trained), loads
them into ``eSR-MAX_s<s>_K<K>_C1`` and scores Set14 with the eSR protocol. PSNR is a squared
error, so this filter is, up to the difference between the training and test images, the
best Set14 PSNR the C=1 models can reach; a published C=1 model far below it was not trained
to convergence. Writes ``{"train_sets", "test_set", "rows": [{scale, K, least_squares_psnr,
published: {family: psnr}}]}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from search.data.training import NeighbourhoodBank
from search.errors import cli_main
from search.evaluate import evaluate_model
from search.jsonio import dumps_json
from search.models import create_model
from search.models.registry import resolve_protocol
from search.paths import PUBLISHED_DIR

FAMILIES = ("eSR-MAX", "eSR-TM", "eSR-TR")
TEST_SET = "Set14"


def least_squares_filter(scale: int, kernel: int, train_sets, data_root=None) -> torch.nn.Module:
    """``eSR-MAX_s<scale>_K<kernel>_C1`` holding the least-squares linear filters."""
    model = create_model(f"eSR-MAX_s{scale}_K{kernel}_C1")
    bank = NeighbourhoodBank(train_sets, scale=scale, kernel=kernel, gray_recipe=resolve_protocol(model, None),
                             augment=False, data_root=data_root, max_pixels=1 << 40)
    features = bank.features.astype(np.float64)
    gram = features.T @ features
    cross = features.T @ bank.targets.astype(np.float64)
    filters = np.linalg.solve(gram, cross)  # K^2 x s^2
    with torch.no_grad():
        weight = torch.from_numpy(filters.T.copy()).float().reshape(scale**2, 1, kernel, kernel)
        model.filter.weight.copy_(weight)
    return model.eval()


def run(train_sets, data_root=None, log=print) -> dict:
    published = pd.read_csv(PUBLISHED_DIR / "esr_tests.csv").set_index("model")[f"psnr_{TEST_SET}"]
    rows = []
    for scale in (2, 3, 4):
        for kernel in (3, 5, 7):
            model = least_squares_filter(scale, kernel, train_sets, data_root)
            psnr = evaluate_model(model, [TEST_SET], data_root=data_root, progress=False)[TEST_SET]["psnr"]
            theirs = {f: float(published[f"{f}_s{scale}_K{kernel}_C1"]) for f in FAMILIES}
            rows.append({"scale": scale, "K": kernel, "least_squares_psnr": psnr, "published": theirs})
            log(f"x{scale} K{kernel}: least squares {psnr:.3f} dB; published C1 "
                + ", ".join(f"{f} {v:.3f}" for f, v in theirs.items()))
    return {"train_sets": [str(s) for s in train_sets], "test_set": TEST_SET, "protocol": "esr", "rows": rows}


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.experiments esr_linear_bound",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--train-sets", default="T91", help="comma-separated training sets (default T91)")
    parser.add_argument("--data-root", default=None, help="folder holding the training/test sets")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = run([s.strip() for s in args.train_sets.split(",") if s.strip()], args.data_root)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dumps_json(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
