"""CUDA paths: training steps, evaluation (CUDA == CPU), SMSR/AdaDSR sparse inference, and
latency measurement with synchronisation. Every test is skipped without a CUDA device."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from search.data.images import read_image, write_image
from search.evaluate import evaluate_model
from search.models import create_model, load_weights, released_weights_path
from search.paths import SHIPPED_DATA
from search.profile import measure_latency
from search.train import train_model
from tests.conftest import needs_shared_weights

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

STEPS = {"steps": 6, "batch_size": 4, "patch_size": 24, "lr": 0.005, "lr_schedule": "constant"}


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    """Four 96x80 crops of shipped T91 images."""
    folder = tmp_path_factory.mktemp("cuda-train") / "MiniT91"
    folder.mkdir()
    for name in ("t1.png", "t10.png", "t2.png", "t20.png"):
        write_image(folder / name, read_image(SHIPPED_DATA / "T91" / name)[:96, :80])
    return folder


def _set5_lr(height: int = 37, width: int = 45) -> torch.Tensor:
    image = read_image(SHIPPED_DATA / "Set5" / "butterfly.png")[:height, :width]
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255


@pytest.mark.parametrize("model_id,kwargs", [
    ("eSR-TM_s2_K3_C4", {}),                              # gray, eSR training recipe
    ("SMSR_s2", {"n_feats": 16, "n_modules": 2}),         # Gumbel masks + sparsity term
    ("AdaDSR_s2_D2_F8", {}),                              # random depth + depth loss
])
def test_training_steps_on_cuda(train_dir, tmp_path, monkeypatch, model_id, kwargs):
    monkeypatch.setenv("SR_CACHE_DIR", str(tmp_path / "cache"))
    model = create_model(model_id, **kwargs)
    result = train_model(model, STEPS, train_sets=(train_dir,), device="cuda", progress=False,
                         out_dir=tmp_path / "trial")
    assert result["steps"] == STEPS["steps"] and math.isfinite(result["final_loss"])
    assert all(p.device.type == "cuda" for p in model.parameters())
    reloaded = load_weights(create_model(model_id, **kwargs), result["weights_path"])  # saved on CPU
    for key, value in reloaded.state_dict().items():
        assert torch.equal(value, model.state_dict()[key].cpu()), key


@needs_shared_weights
@pytest.mark.parametrize("model_id", ["eSR-TM_s2_K3_C4", "IMDN_s4"])
def test_released_model_on_cuda_matches_cpu(model_id):
    model = load_weights(create_model(model_id), released_weights_path(model_id))
    cpu = evaluate_model(model, ["Set5"], progress=False)["Set5"]
    gpu = evaluate_model(model, ["Set5"], device="cuda", progress=False)["Set5"]
    assert next(model.parameters()).device.type == "cuda"
    assert abs(gpu["psnr"] - cpu["psnr"]) < 1e-3, (gpu, cpu)
    assert abs(gpu["ssim"] - cpu["ssim"]) < 1e-5, (gpu, cpu)


def _smsr_sparse_and_dense(model, x):
    with torch.inference_mode():
        model.set_inference("sparse")
        model.reset_mask_stats()
        sparse = model(x)
        density = model.spatial_density()
        model.set_inference("dense")
        dense = model(x)
    model.set_inference("sparse")
    return sparse, dense, density


@needs_shared_weights
def test_smsr_sparse_inference_on_cuda():
    model = load_weights(create_model("SMSR_s2"), released_weights_path("SMSR_s2")).eval()
    x = _set5_lr()  # odd sizes: the mask logits are padded by one row/column
    cpu_sparse, _, _ = _smsr_sparse_and_dense(model, x)
    sparse, dense, density = _smsr_sparse_and_dense(model.cuda(), x.cuda())
    assert sparse.is_cuda and sparse.shape == (1, 3, 74, 90)
    assert (sparse - dense).abs().max() < 1e-4
    assert all(0.0 < d < 1.0 for d in density)  # a real sparse case: some positions skipped
    assert (sparse.cpu() - cpu_sparse).abs().max() < 1e-4


def test_tiny_smsr_sparse_inference_on_cuda_batched():
    torch.manual_seed(0)
    model = create_model("SMSR_s2", n_feats=16, n_modules=2).eval().cuda()
    x = torch.rand(2, 3, 14, 19, device="cuda")
    sparse, dense, _ = _smsr_sparse_and_dense(model, x)
    assert sparse.shape == (2, 3, 28, 38)
    assert (sparse - dense).abs().max() < 1e-4


@pytest.mark.parametrize("tile_size", [4, 16])
def test_adadsr_sparse_inference_on_cuda(tile_size):
    torch.manual_seed(1)
    model = create_model("AdaDSR_s2_D4_F8", tile_size=tile_size).eval()
    generator = torch.Generator().manual_seed(2)
    last = model.adapter.net[-1]
    with torch.no_grad():  # a depth map that varies a lot per pixel
        last.weight.copy_(torch.randn(last.weight.shape, generator=generator) * 2.0)
        last.bias.fill_(1.0)
    model.cuda()
    x = torch.rand(1, 3, 21, 30, device="cuda")
    for depth in (0.0, 0.7, 2.0, 3.3):
        model.target_depth = depth
        with torch.no_grad():
            model.inference_mode = "dense"
            dense = model(x)
            model.inference_mode = "sparse"
            sparse = model(x)
        assert sparse.is_cuda and (sparse - dense).abs().max() <= 1e-4, depth
    model.target_depth = 0.7
    model.reset_macs_stats()
    with torch.no_grad():
        model(x)
    executed = model.active_fractions()["executed"]
    assert executed[-1] < 1.0  # deeper blocks really skip positions on CUDA too


def test_latency_on_cuda_synchronises(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)  # restored
    calls = []
    synchronize = torch.cuda.synchronize

    def counting(device=None):
        calls.append(device)
        return synchronize(device)

    monkeypatch.setattr(torch.cuda, "synchronize", counting)
    repeats = 5
    model = create_model("eSR-TM_s2_K3_C4")
    result = measure_latency(model, (64, 64), device="cuda", warmup=2, repeats=repeats, threads=1)
    assert result["latency_torch_device"].startswith("cuda") and result["latency_dtype"] == "float32"
    assert result["latency_ms"] > 0 and result["latency_min_ms"] <= result["latency_ms"]
    assert len(calls) >= 2 * repeats  # before the clock starts and before it stops, every run
    half = measure_latency(model, (64, 64), device="cuda", dtype="float16", warmup=1, repeats=3)
    assert half["latency_dtype"] == "float16"  # fp16 is used on CUDA
    assert next(model.parameters()).device.type == "cpu"  # the caller's model is left alone
