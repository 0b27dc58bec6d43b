"""Training speed of the one-layer eSR models: the patch loop against pixel-wise training.

    python benchmarks/train_speed.py [--models ID,ID,...] [--budget quick] [--seed 0]

Each model is trained twice from the same seed on the same data (T91), in this process, one
after the other, with one torch thread:

* **old loop**: the ``quick`` recipe of the one-layer families before pixel-wise training,
  6000 Adam steps of 16 patches of 64 x 64 HR pixels (loss border 2), lr 0.03, cosine;
* **new loop**: the budget's own recipe (``quick``: ``sampling: pixels``, 1000 steps of 4096
  whitened single-pixel neighbourhoods, lr 0.03, cosine; search/train/pixelwise.py).

It prints per model the wall time of each training loop (``train_time_s``: the steps, not
the one-time reading of the training set, which a warm-up run does first), their ratio, the
Set14 PSNR (eSR protocol) of each trained model and the difference; then the ratio of the
summed times. Times are measured on this machine, which should be otherwise idle.
"""

from __future__ import annotations

import argparse
import sys

from search.errors import cli_main

DEFAULT_MODELS = ("eSR-MAX_s2_K3_C4", "eSR-TM_s2_K3_C4", "eSR-TR_s2_K5_C2", "eSR-TM_s3_K7_C1",
                  "eSR-TR_s3_K5_C8", "eSR-MAX_s4_K5_C8")
OLD_LOOP = {"sampling": "patches", "steps": 6000, "batch_size": 16, "patch_size": 64, "loss_border": 2,
            "lr": 0.03, "lr_schedule": "cosine"}


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated one-layer eSR ids")
    parser.add_argument("--budget", default="quick", help="the new loop's training budget (params.yaml)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from search.evaluate import evaluate_model
    from search.markdown import markdown_table
    from search.models import create_model
    from search.train import train_model

    torch.set_num_threads(1)
    loops = {"old": {"base": args.budget, **OLD_LOOP, "name": "old patch loop"},
             "new": args.budget}
    ids = [m.strip() for m in args.models.split(",") if m.strip()]
    for model_id in ids:  # warm-up: training pairs of every scale cached, torch's lazy imports done
        for budget in loops.values():
            base = budget if isinstance(budget, dict) else {"base": budget}
            train_model(create_model(model_id), {**base, "steps": 1}, seed=args.seed, progress=False)
    rows, totals = [], {"old": 0.0, "new": 0.0}
    for model_id in ids:
        result = {}
        for name, budget in loops.items():
            model = create_model(model_id)
            trained = train_model(model, budget, seed=args.seed, progress=False)
            psnr = evaluate_model(model.eval(), ["Set14"], progress=False)["Set14"]["psnr"]
            result[name] = (trained["train_time_s"], psnr, trained["steps"])
            totals[name] += trained["train_time_s"]
        (old_s, old_psnr, old_steps), (new_s, new_psnr, new_steps) = result["old"], result["new"]
        rows.append([model_id, f"{old_steps} / {new_steps}", f"{old_s:.1f}", f"{new_s:.1f}", f"{old_s / new_s:.1f}x",
                     f"{old_psnr:.3f}", f"{new_psnr:.3f}", f"{new_psnr - old_psnr:+.3f}"])
        print(f"{model_id}: old loop {old_s:.1f} s, new loop {new_s:.1f} s ({old_s / new_s:.1f}x); "
              f"Set14 {old_psnr:.3f} -> {new_psnr:.3f} dB", flush=True)
    print()
    print(markdown_table(["model", "steps old / new", "old loop (s)", "new loop (s)", "ratio", "PSNR old (dB)",
                          "PSNR new (dB)", "new - old (dB)"], rows), end="")
    worst = min(float(r[-1]) for r in rows)
    print(f"\nall models: {totals['old']:.1f} s -> {totals['new']:.1f} s, {totals['old'] / totals['new']:.1f}x "
          f"(new loop: budget {args.budget}, seed {args.seed}); smallest PSNR change new - old {worst:+.3f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
