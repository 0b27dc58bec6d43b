"""ONNX export of any registered model, checked against torch with onnxruntime (CPU).

torch 2.13's default exporter (``dynamo=True``) needs the ``onnxscript`` package; the
TorchScript-based exporter (``dynamo=False``) works offline with only ``onnx`` and covers
every operator the families use (conv, transposed conv, pixel shuffle -> DepthToSpace,
softmax, max/sum reductions, PReLU, tanh, sigmoid), so it is used here.

Height and width are dynamic axes (one file serves any input size) where the exporter can
express it; models whose convolution kernels are computed per image (DASR) are exported
with the static sample shape instead. Sparse models are exported in their dense-equivalent
mode (data-dependent gathers do not trace): a model may define ``for_onnx_export()``
returning an exportable equivalent; otherwise ``inference``/``inference_mode`` = "sparse"
is switched to "dense". :func:`check_onnx` compares against the model *as given*, so a
dense mode that computed something else would fail the check.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from search.errors import UserError
from search.profile.trace import input_channels

DEFAULT_OPSET = 17


@contextlib.contextmanager
def _silenced_fds():
    """Send file descriptors 1 and 2 to /dev/null (C++ prints bypass sys.stderr)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def exportable_copy(model: nn.Module) -> tuple[nn.Module, str | None]:
    """A CPU fp32 eval copy of ``model`` that the exporter can trace, and a note if changed."""
    exported = copy.deepcopy(model).to("cpu").float().eval()
    hook = getattr(exported, "for_onnx_export", None)
    if callable(hook):
        return hook().to("cpu").float().eval(), "model's for_onnx_export()"
    for attribute in ("inference", "inference_mode"):
        if getattr(exported, attribute, None) == "sparse":
            setattr(exported, attribute, "dense")
            return exported, f"{attribute}='dense' (sparse gathers are data-dependent)"
    return exported, None


def export_onnx(model: nn.Module, out: str | Path | None = None, *,
                sample_lr_shape: tuple[int, int] = (20, 28), opset: int = DEFAULT_OPSET,
                info: dict | None = None) -> bytes:
    """Export ``model`` to ONNX (input ``lr``, output ``sr``); writes ``out`` if given.

    ``info`` (a dict), if given, receives ``dynamic`` (whether H/W are dynamic axes),
    ``sample_lr_shape`` and ``note`` (how the model was made exportable).
    """
    exported, note = exportable_copy(model)
    x = torch.rand((1, input_channels(model), *sample_lr_shape),
                   generator=torch.Generator().manual_seed(0))
    dynamic_axes = {"lr": {0: "batch", 2: "height", 3: "width"},
                    "sr": {0: "batch", 2: "out_height", 3: "out_width"}}
    data, failure = None, None
    for dynamic in (True, False):
        buffer = io.BytesIO()
        try:
            # a failed dynamic attempt dumps its whole IR graph to the C-level stderr
            with warnings.catch_warnings(), torch.no_grad(), _silenced_fds():
                warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
                torch.onnx.export(exported, (x,), buffer, dynamo=False, opset_version=opset,
                                  input_names=["lr"], output_names=["sr"],
                                  dynamic_axes=dynamic_axes if dynamic else None)
        except Exception as exc:  # the exporter raises many types; report the first
            failure = failure or exc
            continue
        data = buffer.getvalue()
        if dynamic and not _dynamic_graph_is_faithful(data, exported, x):
            continue  # exported, but shapes were baked in somewhere: use a static graph
        if info is not None:
            info.update({"dynamic": dynamic, "sample_lr_shape": list(sample_lr_shape), "note": note})
        break
    if data is None:
        name = getattr(model, "model_id", type(model).__name__)
        message = " ".join(str(failure).split())[:300]
        raise UserError(f"ONNX export of {name} failed ({type(failure).__name__}: {message})")
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return data


def _dynamic_graph_is_faithful(payload: bytes, model: nn.Module, x: torch.Tensor) -> bool:
    """Whether onnxruntime reproduces ``model`` on an input of another (odd) size.

    A dynamic export can silently bake a shape-dependent value (padding, crop) into the
    graph; then it runs at other sizes but computes something else.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # a failing probe is expected here; keep stderr quiet
    other = torch.rand((x.shape[0], x.shape[1], x.shape[2] + 3, x.shape[3] + 5),
                       generator=torch.Generator().manual_seed(2))
    try:
        session = ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
        (got,) = session.run(["sr"], {"lr": other.numpy()})
        with torch.no_grad():
            expected = model(other).numpy()
    except Exception:
        return False
    return got.shape == expected.shape and bool(np.allclose(got, expected, atol=1e-4, rtol=0))


def check_onnx(model: nn.Module, onnx_model: bytes | str | Path, *,
               lr_shape: tuple[int, int] = (20, 28), atol: float = 1e-4,
               seed: int = 1) -> dict[str, Any]:
    """Run torch and onnxruntime (CPU) on the same random input; max |difference|."""
    import onnx
    import onnxruntime as ort

    payload = Path(onnx_model).read_bytes() if isinstance(onnx_model, (str, Path)) else onnx_model
    onnx.checker.check_model(onnx.load_from_string(payload))
    x = torch.rand((1, input_channels(model), *lr_shape), generator=torch.Generator().manual_seed(seed))
    reference = copy.deepcopy(model).to("cpu").float().eval()
    with torch.no_grad():
        expected = reference(x).numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
    (got,) = session.run(["sr"], {"lr": x.numpy()})
    if got.shape != expected.shape:
        return {"ok": False, "max_abs_diff": float("inf"), "shape_torch": list(expected.shape),
                "shape_onnx": list(got.shape)}
    diff = float(np.max(np.abs(got - expected))) if expected.size else 0.0
    return {"ok": diff <= atol, "max_abs_diff": diff, "atol": atol, "shape": list(expected.shape)}
