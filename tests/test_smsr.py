"""SMSR: official weights, sparse == dense inference, tau schedules, training hook, MACs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from search.errors import UserError
from search.models import create_model, load_weights, released_weights_path
from search.models import smsr as smsr_module
from search.models._sparse_conv import Workspace, build_spatial_index, split_conv, sparse_conv3x3
from search.models.tau_schedules import (
    ConstantTau,
    CosineTau,
    ExponentialTau,
    LinearTau,
    build_tau_schedule,
)
from tests.conftest import needs_shared_weights


def tiny_smsr(**kwargs):
    torch.manual_seed(0)
    return create_model("SMSR_s2", n_feats=16, n_modules=2, **kwargs)


@pytest.fixture(scope="module")
def official():
    model = create_model("SMSR_s2")
    load_weights(model, released_weights_path("SMSR_s2"))
    return model.eval()


def lr_crop(set5_dir, height=37, width=45):
    from search.data import read_image

    image = read_image(set5_dir / "butterfly.png")[:height, :width]
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255


# ------------------------------------------------------------------------- weights and paths
def test_registry_id_and_released_path():
    model = create_model("SMSR_s2")
    assert model.model_id == "SMSR_s2" and model.family == "SMSR" and model.color == "rgb"
    assert released_weights_path("SMSR_s2").name == "SMSR_x2.pt"


@needs_shared_weights
def test_official_weights_load_strictly(official):
    state = torch.load(released_weights_path("SMSR_s2"), map_location="cpu", weights_only=True)
    own = official.state_dict()
    assert own.keys() == state.keys()
    assert all(torch.equal(own[k], state[k]) for k in own)


@needs_shared_weights
def test_official_sparse_equals_dense(official, set5_dir):
    x = lr_crop(set5_dir)  # odd sizes: the mask logits are padded by one row/column
    with torch.inference_mode():
        official.set_inference("sparse")
        official.reset_mask_stats()
        sparse = official(x)
        density = official.spatial_density()
        official.set_inference("dense")
        dense = official(x)
    official.set_inference("sparse")
    assert sparse.shape == (1, 3, 74, 90)
    assert (sparse - dense).abs().max() < 1e-4
    assert all(0.0 < d < 1.0 for d in density)  # a real image gives a real sparse case


# ------------------------------------------------------------------------- sparse engine
@pytest.mark.parametrize("pattern", ["random", "empty", "full", "borders"])
def test_sparse_conv_matches_masked_dense(pattern):
    torch.manual_seed(1)
    height, width, channels = 9, 11, 8
    mask = {
        "random": torch.rand(height, width) > 0.6,
        "empty": torch.zeros(height, width, dtype=torch.bool),
        "full": torch.ones(height, width, dtype=torch.bool),
        "borders": torch.zeros(height, width, dtype=torch.bool).index_fill_(1, torch.tensor([0, width - 1]), True),
    }[pattern]
    weight = torch.randn(channels, channels, 3, 3)
    sparse_in, sparse_out = torch.rand(channels) > 0.5, torch.rand(channels) > 0.4
    everything = torch.arange(channels)
    conv = split_conv(weight, everything[~sparse_in], everything[sparse_in],
                      everything[~sparse_out], everything[sparse_out])
    spatial = mask.float()[None, None]
    x = torch.randn(1, channels, height, width) * torch.where(sparse_in.view(1, -1, 1, 1), spatial, torch.ones(1))
    dense_in = x[:, ~sparse_in].contiguous(memory_format=torch.channels_last)
    index = build_spatial_index(mask)
    sparse_rows = x[0][sparse_in][:, mask].t()
    dense_out, sparse_rows_out = sparse_conv3x3(dense_in, sparse_rows, conv, index, Workspace())
    # reference: y = conv(x_d) (m_d + m_s s) + conv(x_s) s
    f = torch.nn.functional.conv2d
    x_d = x * (~sparse_in).float().view(1, -1, 1, 1)
    x_s = x * sparse_in.float().view(1, -1, 1, 1)
    out_gate = (~sparse_out).float().view(1, -1, 1, 1) + sparse_out.float().view(1, -1, 1, 1) * spatial
    reference = f(x_d, weight, padding=1) * out_gate + f(x_s, weight, padding=1) * spatial
    assert torch.allclose(dense_out, reference[:, ~sparse_out], atol=1e-5)
    assert torch.allclose(sparse_rows_out, reference[0][sparse_out][:, mask].t(), atol=1e-5)


def test_random_model_sparse_equals_dense_batched():
    model = tiny_smsr().eval()
    torch.manual_seed(2)
    x = torch.rand(2, 3, 14, 19)
    with torch.inference_mode():
        sparse = model(x)
        dense = model.set_inference("dense")(x)
    assert sparse.shape == (2, 3, 28, 38)
    assert (sparse - dense).abs().max() < 1e-4


# ------------------------------------------------------------------------- tau schedules
def test_tau_schedule_values():
    linear = LinearTau(initial=1.0, final=0.4, decay=0.3)
    assert linear(0.0) == 1.0 and math.isclose(linear(0.15), 0.7) and linear(0.3) == linear(1.0) == 0.4
    expo = ExponentialTau(initial=1.0, final=0.25, decay=1.0)
    assert math.isclose(expo(0.5), 0.5) and math.isclose(expo(1.0), 0.25)
    cosine = CosineTau(initial=1.0, final=0.2, decay=0.5)
    assert cosine(0.0) == 1.0 and math.isclose(cosine(0.25), 0.6) and cosine(0.9) == 0.2
    assert cosine(0.05) > 1.0 - (1.0 - 0.2) * 0.1  # slow start
    assert ConstantTau(1.0)(0.0) == ConstantTau(1.0)(1.0) == 1.0
    for schedule in (linear, expo, cosine):
        values = [schedule(p) for p in np.linspace(0, 1, 21)]
        assert all(a >= b for a, b in zip(values, values[1:]))  # never rises for final < initial


def test_build_tau_schedule_forms_and_errors():
    assert build_tau_schedule(None) == ConstantTau(1.0)
    assert build_tau_schedule(0.5)(0.7) == 0.5
    assert build_tau_schedule({"type": "linear", "initial": 1.0, "final": 0.4, "decay": 0.3}) == \
        LinearTau(1.0, 0.4, 0.3)
    assert build_tau_schedule("cosine").to_dict()["type"] == "cosine"
    with pytest.raises(UserError, match="unknown tau schedule type 'step'"):
        build_tau_schedule({"type": "step"})
    with pytest.raises(UserError, match="decay"):
        build_tau_schedule({"type": "linear", "decay": 0})
    with pytest.raises(UserError, match="final"):
        build_tau_schedule({"type": "exponential", "final": -1})
    with pytest.raises(UserError, match="bad arguments"):
        build_tau_schedule({"type": "linear", "start": 1})


# ------------------------------------------------------------------------- training hook
def _recorded_taus(model, progresses, monkeypatch):
    seen = []
    original = smsr_module.gumbel_softmax

    def recording(logits, dim, tau):
        seen.append(tau)
        return original(logits, dim, tau)

    monkeypatch.setattr(smsr_module, "gumbel_softmax", recording)
    torch.manual_seed(3)
    batch = {"lr": torch.rand(2, 3, 8, 8), "hr": torch.rand(2, 3, 16, 16)}
    model.train()
    taus = []
    for progress in progresses:
        seen.clear()
        model.training_step(batch, progress)
        assert len(set(seen)) == 1  # every spatial and channel mask used the same tau
        taus.append(seen[0])
    return taus


def test_training_step_anneals_tau(monkeypatch):
    model = tiny_smsr(tau_schedule={"type": "linear", "initial": 1.0, "final": 0.4, "decay": 0.3})
    taus = _recorded_taus(model, [0.0, 0.15, 0.3, 0.9], monkeypatch)
    assert taus[0] == 1.0 and math.isclose(taus[1], 0.7) and taus[2] == taus[3] == 0.4
    assert model.tau == 0.4


def test_released_constant_schedule_keeps_tau_at_one(monkeypatch):
    model = tiny_smsr(tau_schedule={"type": "constant", "value": 1.0})
    assert _recorded_taus(model, [0.0, 0.5, 0.99], monkeypatch) == [1.0, 1.0, 1.0]


def test_training_step_sparsity_term():
    model = tiny_smsr(sparsity_warmup=0.1).train()
    torch.manual_seed(4)
    batch = {"lr": torch.rand(2, 3, 8, 8), "hr": torch.rand(2, 3, 16, 16)}
    sr, terms = model.training_step(batch, 0.0)
    assert sr.shape == batch["hr"].shape and float(terms["sparsity"].detach()) == 0.0  # warm-up starts at 0
    sr, terms = model.training_step(batch, 0.5)
    density = model.last_density
    assert 0.0 < density <= 1.0
    assert math.isclose(float(terms["sparsity"].detach()), 0.1 / 255.0 * density, rel_tol=1e-5)
    terms["sparsity"].backward()
    assert model.body[0].body.ch_mask.grad.abs().sum() > 0  # channel masks learn from it
    assert model.body[0].spa_mask[-1].weight.grad.abs().sum() > 0  # and the spatial branch
    assert math.isclose(model.sparsity_weight_at(0.05), 0.05)


# ------------------------------------------------------------------------- MACs
def _force_spatial_mask(model, sparse_everywhere: bool):
    with torch.no_grad():
        for module in model.body:
            deconv = module.spa_mask[-1]
            deconv.weight.zero_()
            deconv.bias.copy_(torch.tensor([-5.0, 5.0] if sparse_everywhere else [5.0, -5.0]))


def test_count_macs_falls_with_sparsity():
    model = tiny_smsr().eval()
    x = torch.rand(1, 3, 12, 16)
    dense_macs = model.set_inference("dense").count_macs((12, 16))
    model.set_inference("sparse")
    _force_spatial_mask(model, sparse_everywhere=True)
    all_masked = model.count_macs((1, 3, 12, 16), x)
    _force_spatial_mask(model, sparse_everywhere=False)
    none_masked = model.count_macs((1, 3, 12, 16), x)
    assert all_masked == dense_macs  # every position computed: the dense count
    assert none_masked < all_masked
    # the difference is exactly the masked parts of the body convs
    saved = 0
    for module in model.body:
        for conv in module.body._sparse_plan().layers:
            saved += conv.macs(12 * 16, 12 * 16) - conv.macs(12 * 16, 0)
        saved += 16 * 12 * 16 * sum(len(c.sparse_out) for c in module.body._sparse_plan().layers)
    assert all_masked - none_masked == saved
    report = model.mask_report()
    assert report["spatial_density"] == [0.0, 0.0] and report["average_sparsity"] > 0
    assert model.count_macs((2, 3, 12, 16)) == 2 * none_masked  # batch scales linearly


@needs_shared_weights
def test_official_dense_macs_near_published(official):
    from search.experiments.smsr_schedules import published_smsr

    published = published_smsr(2)
    official.set_inference("dense")
    dense = official.count_macs((360, 640)) / 1e9
    official.set_inference("sparse")
    assert abs(dense - published["flops_dense_g_1280x720"]) / published["flops_dense_g_1280x720"] < 0.01
