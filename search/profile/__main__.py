"""``python -m search.profile``: profile models, fit/evaluate latency predictors, export ONNX.

Sub-commands::

    profile   --model ID [--device cpu] [--output-size 1080x1920] [--predict|--measure] [--json]
    predictor --device jetson|rpi|maxq|all [--cv 5] [--lofo] [--save] [--report] [--json] [--no-progress]
    onnx      --model ID --out FILE.onnx [--weights PATH]
    devices   (list the device profiles)
    report    (re-render reports/latency_predictor.md from stored predictors, no refit)
    transfer  --target jetson|maxq|rpi|cpu [--shots 5,10,20,50] [--repeats 5] [--seed 0] [--json]
              (few-shot transfer to a device from the other devices' tables; see docs/profiling.md)
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from search.errors import UserError, cli_main
from search.jsonio import dumps_json
from search.profile.cluster import check_cluster_reachable, prepare_ray_environment


def _size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in text.lower().split("x"))
        if height < 1 or width < 1:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 1080x1920, got {text!r}") from None
    return height, width


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m search.profile", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    prof = sub.add_parser("profile", help="params, FLOPs (MACs) and latency of one model")
    prof.add_argument("--model", required=True, help="model id, e.g. eSR-TM_s2_K3_C4")
    prof.add_argument("--device", default="cpu", help="device profile name or alias (default cpu)")
    prof.add_argument("--output-size", type=_size, default=None,
                      help="HR output HEIGHTxWIDTH (default: the device profile's, 1080x1920)")
    prof.add_argument("--weights", help="weights file to load first (optional)")
    mode = prof.add_mutually_exclusive_group()
    mode.add_argument("--measure", action="store_true", help="measure here, never predict")
    mode.add_argument("--predict", action="store_true", help="use the latency predictor")
    prof.add_argument("--ray-address", help="connect to this Ray cluster and route to the device's node")
    prof.add_argument("--json", action="store_true", help="print one JSON object")

    pred = sub.add_parser("predictor", help="cross-validate / fit the latency predictor of a device")
    pred.add_argument("--device", default="jetson", help="jetson, rpi, maxq or all")
    pred.add_argument("--cv", type=int, default=5, help="folds of k-fold cross-validation (default 5)")
    pred.add_argument("--seed", type=int, default=0)
    pred.add_argument("--lofo", action="store_true", help="also leave-one-family-out")
    pred.add_argument("--save", action="store_true",
                      help="fit on all models and store search/profile/predictors/<device>.json")
    pred.add_argument("--report", action="store_true",
                      help="write reports/latency_predictor.md and .csv (implies --lofo)")
    pred.add_argument("--limit", type=int, help="use only this many models (quick checks)")
    pred.add_argument("--trees", type=int, help="boosted trees (default: the stored setting, 800)")
    pred.add_argument("--json", action="store_true", help="print one JSON object (per device)")
    pred.add_argument("--no-progress", action="store_true",
                      help="no progress bars on stderr (tracing the models, CV folds, fits)")

    onnx = sub.add_parser("onnx", help="export a model to ONNX and check it against torch")
    onnx.add_argument("--model", required=True)
    onnx.add_argument("--out", required=True, help="output .onnx file")
    onnx.add_argument("--weights", help="weights file to load first (optional)")
    onnx.add_argument("--atol", type=float, default=1e-4)
    onnx.add_argument("--lr-size", type=_size, default=(20, 28),
                      help="LR input HEIGHTxWIDTH to trace and check with; the size of a static "
                           "graph where H/W cannot be dynamic (default 20x28)")

    tr = sub.add_parser("transfer", help="few-shot latency transfer to a device: error on the rest "
                                         "of the eSR grid vs K measured models, with two baselines")
    tr.add_argument("--target", required=True, help="jetson (agx), maxq, rpi or cpu (this suite's "
                                                    "measured CPU table)")
    tr.add_argument("--shots", default="5,10,20,50",
                    help="K, or a comma-separated list of K (default 5,10,20,50)")
    tr.add_argument("--repeats", type=int, default=5, help="seeded shot designs averaged per K (default 5)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--no-graph", action="store_true",
                    help="do not trace the models (about a minute): transfer from the other devices "
                         "and MACs only, and no shots-only baseline")
    tr.add_argument("--json", action="store_true", help="print one JSON object")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar while tracing")

    sub.add_parser("devices", help="list device profiles")
    sub.add_parser("report", help="re-render reports/latency_predictor.md from the stored "
                                  "predictors and reports/latency_predictor.csv (no refit)")
    return parser


def _model(model_id: str, weights: str | None):
    from search.models import create_model, load_weights

    model = create_model(model_id)
    if weights:
        load_weights(model, weights)
    return model.eval()


def _cmd_profile(args) -> int:
    from search.profile import get_device, profile_model, profile_on_device

    profile = get_device(args.device)
    size = args.output_size or profile.output_size
    if args.ray_address:
        import ray

        check_cluster_reachable(args.ray_address)
        ray.init(address=args.ray_address, log_to_driver=False, logging_level="ERROR")
        config = {"model_id": args.model, "weights": args.weights} if args.weights else args.model
        result = profile_on_device(config, profile, output_size=size)
    else:
        measure = True if args.measure else (False if args.predict else None)
        result = profile_model(_model(args.model, args.weights), profile, output_size=size, measure=measure)
    if args.json:
        print(dumps_json(result))
    else:
        spread = result.get("latency_iqr_ms")
        spread_text = f" (IQR {spread:.2f} ms)" if spread is not None else ""
        cv = result.get("latency_cv_within_10pct")
        cv_text = f", predictor CV: {cv:.0%} within +-10%" if cv is not None else ""
        print(f"{result['model_id']} on {profile.name} at {size[0]}x{size[1]} output: "
              f"{result['params']:,} params, {result['flops'] / 1e9:.3f} GMACs, "
              f"{result['latency_ms']:.2f} ms{spread_text} [{result['latency_source']}{cv_text}]")
        if result.get("latency_extrapolation"):
            print(f"  extrapolation: {result['latency_extrapolation_reason']}")
    return 0


def _cmd_predictor(args) -> int:
    from search.profile import predictor as P
    from search.profile.devices import get_device, list_devices

    if args.device == "all":
        profiles = [p for p in list_devices() if p.has_predictor_data]
    else:
        profiles = [get_device(args.device)]
        if not profiles[0].has_predictor_data:
            raise UserError(f"device {profiles[0].name!r} has no published measurements "
                            f"(published_column) to fit a predictor on")
    progress = not args.no_progress  # bars go to stderr: --json output on stdout stays clean
    report_rows = []
    summaries = {}
    for profile in profiles:
        data = P.load_published(profile, limit=args.limit, progress=progress)
        settings = {"n_estimators": args.trees} if args.trees else None
        cv, cv_pred = P.cross_validate(profile, data, folds=args.cv, seed=args.seed,
                                       gbm_settings=settings, progress=progress)
        summary = {"device": profile.name, "column": profile.published_column, **cv}
        lofo_pred = None
        if args.lofo or args.report:
            lofo, lofo_pred = P.leave_one_family_out(profile, data, gbm_settings=settings,
                                                     progress=progress)
            summary["leave_one_family_out"] = lofo
        if args.save:
            fitted = P.fit_predictor(profile, data, gbm_settings=settings, progress=progress)
            fitted.cv = cv
            fitted.leave_one_family_out = summary.get("leave_one_family_out", {})
            summary["saved"] = str(fitted.save())
            P._LOADED.pop(profile.name, None)
        summaries[profile.name] = summary
        if args.report:
            for i, model_id in enumerate(data.model_ids):
                report_rows.append({
                    "device": profile.name, "model": model_id, "family": data.families[i],
                    "published_speed_fps": round(1000.0 / data.latency_ms[i], 4),
                    "published_latency_ms": round(float(data.latency_ms[i]), 4),
                    "cv_predicted_ms": round(float(cv_pred[i]), 4),
                    "cv_rel_error": round(float(cv_pred[i] / data.latency_ms[i] - 1), 5),
                    "lofo_predicted_ms": round(float(lofo_pred[i]), 4),
                    "lofo_rel_error": round(float(lofo_pred[i] / data.latency_ms[i] - 1), 5),
                    "gmacs": round(float(data.features[i, P.FEATURE_NAMES.index("macs")]), 6),
                })
        if args.json:
            print(dumps_json(summary))
        else:
            print(f"{profile.name} ({profile.published_column}, {cv['n']} models, {args.cv}-fold CV): "
                  f"within +-10% {cv['within_10pct']:.1%}, within +-20% {cv['within_20pct']:.1%}, "
                  f"Spearman {cv['spearman']:.4f}, median |err| {cv['median_abs_rel_error']:.1%}")
            if "leave_one_family_out" in summary:
                for family, m in summary["leave_one_family_out"]["per_family"].items():
                    print(f"  leave-{family}-out: within +-10% {m['within_10pct']:.1%}, "
                          f"+-20% {m['within_20pct']:.1%}, Spearman {m['spearman'] if m['spearman'] is not None else float('nan'):.3f}")
            if "saved" in summary:
                print(f"  saved {summary['saved']}")
    if args.report:
        from search.profile.report import write_report

        paths = write_report(summaries, report_rows, args.cv)
        if not args.json:
            print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _cmd_onnx(args) -> int:
    from search.profile.onnx_export import check_onnx, export_onnx

    model = _model(args.model, args.weights)
    out = Path(args.out)
    info: dict = {}
    data = export_onnx(model, out, sample_lr_shape=args.lr_size, info=info)
    check = check_onnx(model, data, lr_shape=tuple(info["sample_lr_shape"]), atol=args.atol)
    shape_note = "dynamic height/width" if info["dynamic"] else f"static LR input {info['sample_lr_shape']}"
    extra = f"; exported with {info['note']}" if info.get("note") else ""
    print(f"wrote {out} ({len(data):,} bytes, {shape_note}{extra}); onnxruntime vs torch: "
          f"max |diff| {check['max_abs_diff']:.2e} (atol {args.atol:g})")
    if not check["ok"]:
        raise UserError(f"{out}: ONNX output differs from torch by {check['max_abs_diff']:.3g} > {args.atol:g}")
    return 0


def _shot_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--shots: expected integers such as 10 or 5,10,20,50, got {text!r}") from None
    if not values or min(values) < 2:
        raise UserError(f"--shots: every K must be >= 2, got {text!r}")
    return values


def _cmd_transfer(args) -> int:
    from search.profile import transfer as T

    if args.repeats < 1:
        raise UserError(f"--repeats must be >= 1, got {args.repeats}")
    shots = _shot_list(args.shots)
    tables = T.load_tables()
    target = T.resolve_target(args.target, tables)
    if max(shots) >= len(tables):
        raise UserError(f"--shots: K must be below the {len(tables)} models of the grid")
    features = None if args.no_graph else T.graph_feature_matrix(tables, progress=not args.no_progress)
    result = T.evaluate_transfer(tables, target, shots, repeats=args.repeats, seed=args.seed,
                                 features=features)
    if args.json:
        print(dumps_json(result))
        return 0
    print(f"transfer to {target} ({result['source_of_target']}); inputs: {', '.join(result['inputs'])}; "
          f"{result['n_models']} models, mean of {args.repeats} shot designs, scored on the non-shots")
    print(f"{'K':>4} {'method':11s} {'<=10%':>7} {'<=20%':>7} {'Spearman':>9} {'median|err|':>12}")
    for k, methods in result["shots"].items():
        for name, m in methods.items():
            rho = f"{m['spearman']:.3f}" if m["spearman"] is not None else "-"
            print(f"{k:>4} {name:11s} {m['within_10pct']:7.1%} {m['within_20pct']:7.1%} {rho:>9} "
                  f"{m['median_abs_rel_error']:12.1%}")
    return 0


def _cmd_report(args) -> int:
    from search.profile.report import rerender

    print("wrote " + ", ".join(str(p) for p in rerender()))
    return 0


def _cmd_devices(args) -> int:
    from search.profile.devices import list_devices

    for p in list_devices():
        extra = f", predicts {p.published_column}" if p.published_column else ""
        print(f"{p.name:8s} aliases: {', '.join(p.aliases) or '-':28s} torch {p.torch_device} "
              f"{p.dtype}, output {p.output_size[0]}x{p.output_size[1]}, Ray resource "
              f"{p.ray_resource or '-'}{extra}")
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> str:
    return f"warning: {message}\n"


@cli_main
def main(argv: list[str] | None = None) -> int:
    warnings.formatwarning = _one_line_warning  # a CLI shows the message, not our source line
    prepare_ray_environment()  # before Ray is imported: it reads RAY_AUTH_MODE once
    args = _build_parser().parse_args(argv)
    warnings.filterwarnings("once")
    handler = {"profile": _cmd_profile, "predictor": _cmd_predictor, "onnx": _cmd_onnx,
               "devices": _cmd_devices, "report": _cmd_report,
               "transfer": _cmd_transfer}[args.command]
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
