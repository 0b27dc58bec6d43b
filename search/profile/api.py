"""``profile_model`` (params, FLOPs, latency) and ``profile_on_device`` (Ray routing).

Where a latency comes from:

* ``cpu`` (and ``cuda`` where CUDA is available) are measured in this process;
* a device held by a node of the Ray cluster (the node offers the profile's custom
  resource, e.g. ``ray start ... --resources='{"jetson": 1}'``) is measured there:
  :func:`profile_on_device` sends a task asking for that resource, so it can only run on
  that node; the result says ``measured:<device>`` and which node (``latency_node``);
* otherwise a device that is not this machine is *predicted* from the published
  measurements, labelled ``predicted:<device>`` with the predictor's cross-validated share
  of models within +-10% (and a one-time warning per process).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from search.errors import UserError
from search.models import create_model, load_weights
from search.profile.devices import DeviceProfile, get_device
from search.profile.flops import count_flops, count_params, lr_shape_for
from search.profile.latency import measure_latency
from search.profile.predictor import load_predictor, predict_latency

_WARNED: set[str] = set()


class PredictedLatencyWarning(UserWarning):
    """Latency of a device that is not reachable was predicted, not measured."""


def measurable_here(profile: DeviceProfile) -> bool:
    """Whether this process can measure ``profile`` itself (no Ray routing needed)."""
    if profile.ray_resource not in (None, "GPU"):
        return False  # a named remote device (jetson, rpi, ...): not this machine
    kind = torch.device(profile.torch_device).type
    if kind == "cpu":
        return True
    if kind == "cuda":
        return torch.cuda.is_available()
    return False


def _warn_predicted(profile: DeviceProfile, cv_within_10pct: float | None) -> None:
    if profile.name in _WARNED:
        return
    _WARNED.add(profile.name)
    share = f"{cv_within_10pct:.0%} of held-out models within +-10%" if cv_within_10pct is not None else "unknown CV error"
    message = (f"latency on {profile.name!r} is predicted, not measured (no reachable node with "
               f"Ray resource {profile.ray_resource!r}); predictor CV: {share}")
    warnings.warn(message, PredictedLatencyWarning, stacklevel=3)


def profile_model(model: nn.Module, device: str | DeviceProfile = "cpu", *,
                  output_size: tuple[int, int] | None = (1080, 1920),
                  measure: bool | None = None, on_remote_node: bool = False) -> dict[str, Any]:
    """Params, FLOPs (MACs) and latency of ``model`` on ``device`` at HR ``output_size``.

    ``measure=None``: measure if this machine is the device, else predict; ``True``: measure
    here (error if the device is not usable here); ``False``: predict. ``output_size=None``
    takes the device profile's. Keys: params, flops, latency_ms, latency_iqr_ms,
    latency_source ("measured:cpu" | "predicted:jetson"), latency_cv_within_10pct (None when
    measured), output_size, lr_size, device, and details of the measurement or prediction.
    """
    profile = get_device(device)
    size = tuple(int(v) for v in (output_size or profile.output_size))
    lr_shape = lr_shape_for(model, size)
    result: dict[str, Any] = {
        "model_id": getattr(model, "model_id", type(model).__name__),
        "device": profile.name,
        "params": count_params(model),
        "flops": count_flops(model, lr_shape),
        "output_size": list(size),
        "lr_size": list(lr_shape),
    }
    if measure is None:
        measure = on_remote_node or measurable_here(profile)
    if measure:
        torch_device = profile.torch_device
        note = None
        if on_remote_node and torch.device(torch_device).type == "cuda" and not torch.cuda.is_available():
            # the node claims the device's resource but torch sees no GPU: say so, measure its CPU
            note = f"{torch_device} not available to torch on this node; measured on its CPU"
            torch_device = "cpu"
        elif not on_remote_node and not measurable_here(profile) and torch.device(torch_device).type != "cpu":
            raise UserError(f"cannot measure {profile.name!r} here ({torch_device} unavailable); "
                            "use measure=None to predict or route it with profile_on_device")
        measured = measure_latency(model, lr_shape, device=torch_device, dtype=profile.dtype,
                                   warmup=profile.warmup, repeats=profile.repeats,
                                   threads=profile.threads)
        result.update(measured)
        result["latency_source"] = f"measured:{profile.name}"
        result["latency_cv_within_10pct"] = None
        if note:
            result["latency_note"] = note
        return result

    predicted = predict_latency(model, profile, size)
    result.update(predicted)
    result["latency_iqr_ms"] = None
    _warn_predicted(profile, predicted["latency_cv_within_10pct"])
    return result


# --------------------------------------------------------------------------- Ray routing
def _build(model_or_config: Any) -> nn.Module:
    """A model from an ``nn.Module``, a model id, or ``{"model_id": ..., "weights": path}``."""
    if isinstance(model_or_config, nn.Module):
        return model_or_config

    if isinstance(model_or_config, str):
        return create_model(model_or_config)
    if isinstance(model_or_config, dict) and "model_id" in model_or_config:
        model = create_model(model_or_config["model_id"])
        weights = model_or_config.get("weights") or model_or_config.get("weights_path")
        if weights:
            load_weights(model, weights)
        return model
    raise UserError(f"cannot build a model from {type(model_or_config).__name__}: "
                    "give an nn.Module, a model id or {'model_id': ..., 'weights': ...}")


def _remote_profile(model_or_config: Any, device_name: str, output_size, resource: str) -> dict:
    import ray

    result = profile_model(_build(model_or_config), device_name, output_size=output_size,
                           measure=True, on_remote_node=True)
    context = ray.get_runtime_context()
    result["latency_ray_node_id"] = context.get_node_id()
    result["latency_ray_resource"] = resource
    return result


def cluster_offers(resource: str | None) -> bool:
    """Whether a running Ray cluster (this process connected to it) has ``resource``."""
    if not resource:
        return False
    try:
        import ray
    except ImportError:
        return False
    if not ray.is_initialized():
        return False
    return ray.cluster_resources().get(resource, 0) >= 1


def profile_on_device(model_or_config: Any, device: str | DeviceProfile = "cpu", *,
                      output_size: tuple[int, int] | None = (1080, 1920),
                      timeout_s: float | None = 600) -> dict[str, Any]:
    """Profile where the device is: on the Ray node offering its resource, else locally.

    Works inside a Ray Tune trial (a nested task) and outside Ray (no cluster: measured
    here when this machine is the device, predicted otherwise). The task asks for no CPU,
    only the device's resource, so it cannot deadlock behind the trials holding the CPUs.
    """
    profile = get_device(device)
    resource = profile.ray_resource
    if resource and cluster_offers(resource) and not (resource == "GPU" and measurable_here(profile)):
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        # Inside a Tune trial child tasks are captured by the trial's placement group (CPU
        # only); the profiling task must escape it to reach the device's node.
        options: dict[str, Any] = {
            "num_cpus": 0, "max_retries": 0,
            "scheduling_strategy": PlacementGroupSchedulingStrategy(placement_group=None),
        }
        if resource == "GPU":
            options["num_gpus"] = 1
        else:
            options["resources"] = {resource: 1}
        task = ray.remote(_remote_profile).options(**options)
        ref = task.remote(model_or_config, profile.name, output_size, resource)
        try:
            return ray.get(ref, timeout=timeout_s)
        except ray.exceptions.GetTimeoutError:
            ray.cancel(ref, force=True)
            raise UserError(f"profiling on {profile.name!r} (Ray resource {resource!r}) did not "
                            f"finish within {timeout_s} s") from None
    return profile_model(_build(model_or_config), profile, output_size=output_size)


def latency_plan(device: str | DeviceProfile) -> tuple[str, str]:
    """How a study's latencies on ``device`` will be obtained: ("measured" | "predicted", text).

    Call after Ray is initialised, so that a cluster node offering the device counts.
    """
    profile = get_device(device)
    if measurable_here(profile):
        return "measured", f"latency measured on this machine ({profile.name}, {profile.torch_device})"
    if cluster_offers(profile.ray_resource):
        return "measured", (f"latency measured on the Ray node offering resource "
                            f"{profile.ray_resource!r} ({profile.name})")

    cv = load_predictor(profile).cv
    share = cv.get("within_10pct")
    label = f"{share:.0%} of held-out models within +-10%" if share is not None else "unknown CV error"
    return "predicted", (f"latency on {profile.name!r} is PREDICTED, not measured (no Ray node offers "
                         f"resource {profile.ray_resource!r}); predictor {cv.get('folds', 5)}-fold CV: "
                         f"{label}; results say latency_source=predicted:{profile.name}")
