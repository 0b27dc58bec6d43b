"""One trial: build the model -> train under the budget -> evaluate -> profile -> one result row.

:func:`run_trial` is the whole pipeline in one function so that later additions (a tabular
benchmark lookup, routing the profiling step to a device node) plug in at one place. The
four steps are looked up through a :class:`TrialPipeline`, whose defaults are the suite's
own ``create_model`` / ``train_model`` / ``evaluate_model`` / ``profile_model``; tests and
the overhead benchmark substitute cheap stand-ins (the pipeline is shipped to Ray workers
with the trainable, so stand-ins work there too).

A trial never raises: any exception, including a diverged (NaN) training run, becomes a row
with ``status = "failed"`` and the error in one line, and its objectives are NaN, which
Optuna records as a failed trial; the study goes on.
"""

from __future__ import annotations

import errno
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from search.evaluate import evaluate_model
from search.models import create_model, load_model_files
from search.profile import profile_on_device
from search.study.statuses import (  # noqa: F401  (re-exported: the trial's vocabulary)
    FINISHED_STATUSES,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_INFRASTRUCTURE,
    STATUS_REPEAT,
)
from search.train import train_model

if TYPE_CHECKING:
    from search.data.protocols import Protocol
    from search.profile.devices import DeviceProfile
    from search.train.budgets import Budget

# Errors of the machine, not of a configuration (errno names, so the list reads as words).
INFRASTRUCTURE_ERRNOS = {getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EIO", "EROFS", "ENOMEM")
                         if hasattr(errno, name)}


class TrialFailed(RuntimeError):
    """Raised by the Tune trainable after reporting a failed row, so Optuna marks it FAIL."""

OUT_OF_MEMORY_TEXTS = ("out of memory", "can't allocate memory")


def _build(config: dict[str, Any]):
    hparams = {k: v for k, v in config.items() if k not in ("config_id", "model_id", "family", "scale")}
    return create_model(family=config["family"], scale=config["scale"], **hparams)


def _train(model, budget, *, train_sets, seed, device, data_root, out_dir):
    return train_model(model, budget, train_sets=tuple(train_sets), seed=seed, device=device,
                       data_root=data_root, progress=False, out_dir=out_dir)


def _evaluate(model, test_sets, *, protocol, device, data_root):
    return evaluate_model(model, list(test_sets), protocol=protocol, device=device,
                          data_root=data_root, progress=False)


def _profile(model, *, device):
    # Routed through Ray when a cluster node offers the device's resource (measured there),
    # else measured here (cpu/cuda) or predicted (labelled predicted:<device>).
    return profile_on_device(model, device)


@dataclass
class TrialPipeline:
    """The four steps of a trial; each a plain function (see the module docstring)."""

    build: Callable[..., Any] = _build
    train: Callable[..., dict] = _train
    evaluate: Callable[..., dict] = _evaluate
    profile: Callable[..., dict] = _profile


@dataclass
class TrialSettings:
    """What every trial of a study shares (from the space's ``fixed:`` and the CLI).

    ``search.run`` resolves the budget, device and protocol names once, at the start, into
    objects (:class:`~search.train.budgets.Budget`, :class:`~search.profile.devices.DeviceProfile`,
    :class:`~search.data.protocols.Protocol`) that the trials carry; names are still accepted
    (resolved where they are used) for stand-in pipelines and one-off calls.
    """

    budget: Budget | str | dict
    train_sets: list[str]
    test_sets: list[str]
    objectives: list[str]                 # metric names reported to Optuna, e.g. psnr_Set14
    out_dir: str                          # study folder; weights go to out_dir/trials/<n>_<id>/
    device: DeviceProfile | str = "cpu"   # device profile for profiling (latency)
    train_device: str = "cpu"             # torch device for training and evaluation
    protocol: Protocol | str | None = None  # None: each family's default protocol
    seed: int = 0
    data_root: str | None = None
    threads: int = 1
    model_files: tuple[str, ...] = ()     # the space's own model files, imported before building
    extra: dict = field(default_factory=dict)


def trial_folder_name(number: int, config_id: str) -> str:
    """``00012_eSR-TM_s2_K3_C2``: the folder of trial 12 under ``OUT/trials/``."""
    return f"{number:05d}_{config_id}"


def needs_training(model) -> bool:
    """Fixed filters such as Bicubic have no trainable parameter: nothing to train."""
    return any(p.requires_grad for p in model.parameters())


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "(no message)"
    return f"{type(exc).__name__}: {text}"


def run_trial(config: dict[str, Any], settings: TrialSettings, trial_number: int,
              pipeline: TrialPipeline | None = None) -> dict[str, Any]:
    """Run one configuration; returns the metrics part of its trials.csv row (raises on error)."""
    pipeline = pipeline or TrialPipeline()
    if config.get("constraint_error"):
        raise ValueError(config["constraint_error"])
    hparams = {k: v for k, v in config.items() if k != "constraint_error"}
    if settings.model_files:  # a Ray worker is a fresh process: the space's families register here
        load_model_files(settings.model_files)
    model = pipeline.build(hparams)
    if "torch" in sys.modules:  # the model's work runs on the trial's share of the CPUs
        sys.modules["torch"].set_num_threads(max(1, settings.threads))
    row: dict[str, Any] = {}
    if needs_training(model):
        trial_dir = Path(settings.out_dir) / "trials" / trial_folder_name(trial_number, config["config_id"])
        trial_dir.mkdir(parents=True, exist_ok=True)
        trained = pipeline.train(model, settings.budget, train_sets=settings.train_sets,
                                 seed=settings.seed, device=settings.train_device,
                                 data_root=settings.data_root, out_dir=str(trial_dir))
        weights = trained.get("weights_path")
        # relative to the study folder, so a committed or copied study still points at its files
        weights = os.path.relpath(weights, settings.out_dir) if weights else ""
        row.update(train_time_s=trained.get("train_time_s"), steps=trained.get("steps"),
                   final_loss=trained.get("final_loss"), weights_path=weights)
        if trained.get("final_loss") is not None and not math.isfinite(float(trained["final_loss"])):
            raise FloatingPointError(f"training ended with loss {trained['final_loss']}")
    else:
        row.update(train_time_s=0.0, steps=0, final_loss=None, weights_path="")
    model.eval()
    scores = pipeline.evaluate(model, settings.test_sets, protocol=settings.protocol,
                               device=settings.train_device, data_root=settings.data_root)
    for test_set in settings.test_sets:
        result = scores[test_set]
        row[f"psnr_{test_set}"] = float(result["psnr"])
        row[f"ssim_{test_set}"] = float(result["ssim"])
    model.to("cpu")
    profile = pipeline.profile(model, device=settings.device)
    row.update(params=profile.get("params"), flops=profile.get("flops"),
               latency_ms=profile.get("latency_ms"), latency_source=profile.get("latency_source"),
               latency_cv_within_10pct=profile.get("latency_cv_within_10pct"),
               latency_ray_node_id=profile.get("latency_ray_node_id"))
    for objective in settings.objectives:
        value = row.get(objective)
        if value is None or not math.isfinite(float(value)):
            raise FloatingPointError(f"objective {objective} is {value}")
    return row


def is_infrastructure_error(exc: BaseException) -> bool:
    """True for a failure of the machine (full disk, I/O error, out of memory), not of the
    configuration, so that --resume tries the configuration again."""
    while exc is not None:
        if isinstance(exc, MemoryError):
            return True
        if isinstance(exc, OSError) and exc.errno in INFRASTRUCTURE_ERRNOS:
            return True
        # torch reports an allocation failure as a RuntimeError (CUDA: OutOfMemoryError)
        if isinstance(exc, RuntimeError) and any(text in str(exc).lower() for text in OUT_OF_MEMORY_TEXTS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def safe_trial(config: dict[str, Any], settings: TrialSettings, trial_number: int,
               pipeline: TrialPipeline | None = None) -> dict[str, Any]:
    """:func:`run_trial`, with any failure turned into a 'failed' row (NaN objectives)."""
    started = time.perf_counter()
    try:
        row = run_trial(config, settings, trial_number, pipeline)
        row.update(status=STATUS_COMPLETE, error="")
    except Exception as exc:  # a failed trial must not stop the study
        status = STATUS_INFRASTRUCTURE if is_infrastructure_error(exc) else STATUS_FAILED
        row = {"status": status, "error": one_line(exc)}
        if os.environ.get("SR_SEARCH_TRACEBACKS"):
            traceback.print_exc()
        for objective in settings.objectives:
            row[objective] = float("nan")
    row["trial_time_s"] = round(time.perf_counter() - started, 3)
    return row
