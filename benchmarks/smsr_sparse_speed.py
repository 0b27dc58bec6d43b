"""SMSR sparse vs dense inference: measured CPU wall-clock against measured FLOPs.

For the official x2 model on the Set14 LR images (MATLAB-bicubic x2, the standard
protocol's inputs) it times, per image, best of ``--repeats`` runs, interleaved:

* ``sparse``: the model's sparse inference path (hard masks, gather + GEMM),
* ``dense``: the same network and the same code with every channel mask set to "dense",
  so every conv is computed in full at every position (its ``count_macs`` is the dense
  count); only the sparsity differs between the two,
* ``plain-dense`` (context): the dense network as plain ``nn.Conv2d`` modules in NCHW with
  ``torch.cat`` before each 1x1 collect, as the authors' code computes it,
* ``masked-dense`` (reference, ``--reference``): hard masks applied to dense convs
  (``inference="dense"``, two convs per layer),

and prints the measured FLOPs ratio (``count_macs`` with the masks of these very images),
the time ratio, and the realised fraction ``(1 - time ratio) / (1 - FLOPs ratio)`` (1.0:
wall-clock falls exactly as much as FLOPs do). Single thread by default, so other load on
the machine disturbs it less; it still is a shared-CPU measurement: rerun to see the spread.

    .venv/bin/python benchmarks/smsr_sparse_speed.py [--images 14] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import platform

import torch
import torch.nn.functional as F

from search.errors import cli_main
from search.profile.latency import time_calls


def dense_forward(model, x: torch.Tensor) -> torch.Tensor:
    """SMSR's architecture with every body conv computed in full (no masks): the dense cost."""
    x0 = model.sub_mean(x * model.rgb_range)
    head = model.head(x0)
    feature = head
    outputs = []
    for module in model.body:
        module.spatial_logits(feature)  # the mask branch is part of the dense FLOPs too
        block = module.body
        layer_outputs = []
        out = feature
        for conv in block.body:
            out = F.relu(conv(out))
            layer_outputs.append(out)
        feature = module.ca(block.collect(torch.cat(layer_outputs, 1))) + feature
        outputs.append(feature)
    return model._reconstruct(torch.cat(outputs, 1), head, x0)


@cli_main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=14, help="first N Set14 images (default: all 14)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per image and path (best is kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--reference", action="store_true", help="also time the masked-dense reference")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from search.data import find_test_set
    from search.evaluate import get_protocol, prepare_samples
    from search.models import create_model, load_weights, released_weights_path

    model = create_model("SMSR_s2")
    load_weights(model, released_weights_path(model.model_id))
    model.eval()
    all_dense = copy.deepcopy(model)
    with torch.no_grad():
        for module in all_dense.body:
            module.body.ch_mask[..., 0] = 1.0
            module.body.ch_mask[..., 1] = 0.0
    test_set = find_test_set("Set14")
    samples = prepare_samples(test_set, 2, "rgb", get_protocol("standard"))[: args.images]

    def sparse(x):
        model.set_inference("sparse")
        return model(x)

    def masked_dense(x):
        model.set_inference("dense")
        return model(x)

    paths = {"dense": all_dense, "sparse": sparse, "plain-dense": lambda x: dense_forward(model, x)}
    if args.reference:
        paths["masked-dense"] = masked_dense
    totals = {name: 0.0 for name in paths}
    cpu_totals = {name: 0.0 for name in paths}
    macs_dense = macs_sparse = macs_executed = 0
    print(f"device: CPU ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
          f"{args.threads} thread(s); Set14 x2 LR, {len(samples)} images, best of {args.repeats}")
    print(f"{'image':<12} {'LR size':>9} {'sparsity':>8} {'MACs ratio':>10} "
          + " ".join(f"{name + ' s (cpu s)':>24}" for name in paths))
    with torch.inference_mode():
        for path, sample in zip(test_set.images, samples):
            x = sample.lr
            model.set_inference("sparse")
            model.reset_mask_stats()
            reference = model(x)
            image_sparsity = model.mask_report()["average_sparsity"]
            sparse_macs = model.count_macs(tuple(x.shape))
            executed_macs = model.count_macs(tuple(x.shape), executed=True)
            all_dense.reset_mask_stats()
            all_dense(x)
            dense_macs = all_dense.count_macs(tuple(x.shape))
            model.set_inference("dense")
            if dense_macs != model.count_macs(tuple(x.shape)):
                raise SystemExit("all-dense MACs differ from the dense count")
            check = model(x)
            if (check - reference).abs().max() > 1e-4:
                raise SystemExit(f"{path.name}: sparse and masked-dense outputs differ by more than 1e-4")
            # one warm-up call per path (allocations, kernel plans), then the best of the repeats
            timings = time_calls({name: (lambda fn=fn, x=x: fn(x)) for name, fn in paths.items()},
                                 repeats=args.repeats, warmup=1)
            times = {name: (min(t.wall_s), min(t.cpu_s)) for name, t in timings.items()}
            for name, (wall, cpu) in times.items():
                totals[name] += wall
                cpu_totals[name] += cpu
            macs_dense += dense_macs
            macs_sparse += sparse_macs
            macs_executed += executed_macs
            print(f"{path.stem:<12} {x.shape[-2]:>4}x{x.shape[-1]:<4} {image_sparsity:>8.3f} "
                  f"{sparse_macs / dense_macs:>10.3f} "
                  + " ".join(f"{times[n][0]:>15.3f} ({times[n][1]:6.3f})" for n in paths))
    flops_ratio = macs_sparse / macs_dense
    print()
    print(f"measured MACs        dense {macs_dense / 1e9:.2f}G  sparse {macs_sparse / 1e9:.2f}G  "
          f"FLOPs ratio {flops_ratio:.3f} (reduction {1 - flops_ratio:.1%}); executed by the sparse "
          f"path (zero blocks, run junctions) {macs_executed / 1e9:.2f}G, ratio {macs_executed / macs_dense:.3f}")
    for label, measured in (("wall-clock", totals), ("process CPU", cpu_totals)):
        print(f"measured {label:<11} " + "  ".join(f"{n} {t:.2f}s" for n, t in measured.items()))
        for baseline in ("dense", "plain-dense"):
            time_ratio = measured["sparse"] / measured[baseline]
            realised = (1 - time_ratio) / (1 - flops_ratio)
            print(f"    sparse / {baseline:<12} time ratio {time_ratio:.3f} (reduction {1 - time_ratio:.1%})"
                  f"  realised fraction of the FLOPs reduction {realised:.2f} (goal >= 0.70)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
