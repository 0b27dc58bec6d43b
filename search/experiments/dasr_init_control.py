"""Control for the DASR expert study: is the PSNR gain with N an initialisation effect?

While the degradation predictor still outputs (almost) the same vector for every image, the
mixing weights are uniform (entropy ln N), and the network that runs is the average of N
independently initialised experts: its initial weights have 1/sqrt(N) of one expert's
standard deviation. This trains N = 1 with its expert's weights scaled by 1/sqrt(K) (the
init of a uniform K-expert mixture) under the same budget and seed as
``python -m search.experiments dasr_experts`` and prints/writes its PSNR per level, to compare
with the N = 1 and N = K rows of ``reports/dasr/experts.md``.

    python -m search.experiments dasr_init_control            # K = 5, F16 B4, 600 steps, Set5 levels
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from search.errors import cli_main
from search.paths import REPO_ROOT


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.experiments dasr_init_control",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--mixture", type=int, default=5, help="K: scale the init by 1/sqrt(K)")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-set", default="Set5")
    parser.add_argument("--sets-dir", default=str(REPO_ROOT / "runs" / "dasr" / "testsets"))
    parser.add_argument("--out", default=str(REPO_ROOT / "reports" / "dasr" / "init_control.json"))
    args = parser.parse_args(argv)

    from search.data.degraded_sets import make_degraded_sets
    from search.evaluate import evaluate_model
    from search.models import create_model
    from search.train import train_model

    torch.set_num_threads(1)
    sets = make_degraded_sets(args.test_set, args.sets_dir, scale=4, seed=args.seed)
    budget = {"steps": args.steps, "batch_size": args.batch_size, "patch_size": args.patch_size,
              "lr": args.lr, "lr_schedule": "cosine", "min_lr": args.lr / 100}
    # Same initial weights as train_model(reinit=True) would draw for this id and seed ...
    torch.manual_seed(args.seed)
    model = create_model(family="DASR", scale=4, N=1, F=args.width, B=args.blocks)
    # ... then shrunk to the spread of an average of K independent experts.
    with torch.no_grad():
        for conv in model.generator.mixed_convs():
            conv.weight.mul_(1.0 / math.sqrt(args.mixture))
    trained = train_model(model, budget, seed=args.seed, progress=False, reinit=False)
    scores = evaluate_model(model, list(sets.values()), protocol="standard", progress=False)
    result = {
        "model_id": model.model_id,
        "init_scale": f"1/sqrt({args.mixture})",
        "budget": budget,
        "seed": args.seed,
        "final_loss": trained["final_loss"],
        "psnr": {level: scores[test_set.name]["psnr"] for level, test_set in sets.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result["psnr"]), f"final loss {trained['final_loss']:.4f}", f"-> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
