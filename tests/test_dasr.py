"""DASR model: registry ids, the per-sample expert mixture, cost independent of N, training hook."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from search.models import create_model, get_family, parse_model_id
from search.models.dasr import DASR, MixedConv2d

SMALL = dict(F=8, B=1)


pytestmark = pytest.mark.usefixtures("one_thread")


def _small(scale=4, N=3, **kwargs):
    torch.manual_seed(0)
    return create_model(family="DASR", scale=scale, N=N, **{**SMALL, **kwargs})


def test_registry_ids_and_defaults():
    model = create_model("DASR_s4_N5_F32_B4")
    assert model.model_id == "DASR_s4_N5_F32_B4" and model.family == "DASR"
    assert model.scale == 4 and model.color == "rgb"
    assert create_model(family="DASR").model_id == "DASR_s4_N5_F32_B4"  # x4 default
    assert parse_model_id("DASR_N2").hparams == {"N": 2, "F": 32, "B": 4}
    assert get_family("DASR").default_protocol == "standard"
    assert isinstance(model, DASR)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_forward_shapes(scale):
    model = _small(scale=scale).eval()
    x = torch.rand(2, 3, 11, 9)
    with torch.no_grad():
        y = model(x)
        params, mix = model.predict(x)
    assert y.shape == (2, 3, 11 * scale, 9 * scale)
    assert params.shape == (2, 33) and mix.shape == (2, 3)
    assert torch.allclose(mix.sum(1), torch.ones(2))


def test_mixed_conv_is_the_mixture_of_expert_convs():
    torch.manual_seed(1)
    conv = MixedConv2d(4, 5, 6, 3)
    conv.bias.data.normal_()
    x = torch.rand(3, 5, 8, 7)
    mix = torch.softmax(torch.randn(3, 4), 1)
    out = conv(x, mix)
    # conv is linear in (weight, bias) and the mixing weights sum to 1, so mixing the
    # weights equals mixing the N experts' outputs (what N separate networks would do).
    experts = torch.stack([F.conv2d(x, conv.weight[n], conv.bias[n], padding=1) for n in range(4)], 1)
    assert torch.allclose(out, (mix[:, :, None, None, None] * experts).sum(1), atol=1e-5)


def test_one_hot_mixture_runs_a_single_expert_and_samples_are_independent():
    model = _small(N=3).eval()
    x = torch.rand(3, 3, 10, 10)
    with torch.no_grad():
        batched = model(x)
        singles = torch.cat([model(x[i:i + 1]) for i in range(3)])
        assert torch.allclose(batched, singles, atol=1e-5)
        one_hot = torch.eye(3)[[2]]
        expert2 = model.generator(x[:1], one_hot)
        for conv in model.generator.mixed_convs():  # zero every expert but #2
            conv.weight.data[[0, 1]] = 0
            conv.bias.data[[0, 1]] = 0
        assert torch.allclose(model.generator(x[:1], one_hot), expert2)


@pytest.mark.parametrize("width", [8, 16])
def test_inference_cost_independent_of_n_and_params_grow(width):
    from search.profile.flops import count_flops, flops_breakdown

    counts, params, active = {}, {}, {}
    for n in (1, 2, 3, 5, 8):
        model = create_model(family="DASR", scale=4, N=n, F=width, B=2)
        counts[n] = count_flops(model, (32, 32))
        params[n] = sum(p.numel() for p in model.parameters())
        active[n] = model.active_parameters()
        if n in (1, 8):  # the analytic count agrees with fvcore's trace of the forward
            assert flops_breakdown(model, (32, 32))["total"] == pytest.approx(counts[n], rel=1e-5)
    assert max(counts.values()) / min(counts.values()) < 1.05
    assert [params[n] for n in sorted(params)] == sorted(set(params.values()))  # strictly growing
    assert max(active.values()) / min(active.values()) < 1.01


def test_training_step_degrades_hr_itself_and_reports_regression():
    model = _small(N=2)
    hr = torch.rand(2, 3, 32, 32)
    torch.manual_seed(3)
    sr, terms = model.training_step({"lr": torch.rand(2, 3, 8, 8), "hr": hr}, 0.0)
    assert sr.shape == hr.shape and set(terms) == {"regression"}
    assert torch.isfinite(terms["regression"]) and terms["regression"].requires_grad
    torch.manual_seed(3)
    sr_again, terms_again = model.training_step({"lr": torch.rand(2, 3, 8, 8), "hr": hr}, 0.0)
    assert torch.equal(sr, sr_again) and torch.equal(terms["regression"], terms_again["regression"])
    # supplied degraded pairs are used as given
    lr, vectors = model.make_training_pair(hr, np.random.default_rng(0))
    assert lr.shape == (2, 3, 8, 8) and vectors.shape == (2, 33)
    sr2, terms2 = model.training_step({"lr": lr, "hr": hr, "degradation": vectors}, 0.0)
    params, _ = model.predict(lr)
    assert torch.allclose(terms2["regression"], F.l1_loss(params, vectors))


def test_train_model_smoke_is_deterministic(tmp_path):
    from PIL import Image

    from search.train import train_model

    rng = np.random.default_rng(0)
    for i in range(2):  # a tiny training folder: reading T91 would dominate the test
        Image.fromarray(rng.integers(0, 256, size=(48, 40, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    budget = {"steps": 3, "batch_size": 2, "patch_size": 32, "lr": 1e-3, "lr_schedule": "constant"}
    results = []
    for _ in range(2):
        model = _small(N=2)
        result = train_model(model, budget, train_sets=(str(tmp_path),), seed=5, progress=False)
        results.append((result["final_loss"], {k: v.clone() for k, v in model.state_dict().items()}))
        assert "regression" in result["loss_terms"]
    assert results[0][0] == results[1][0]
    assert all(torch.equal(results[0][1][k], results[1][1][k]) for k in results[0][1])


def test_bad_hyper_parameters_are_user_errors():
    from search.errors import ModelIdError

    with pytest.raises(ModelIdError):
        create_model("DASR_s4_N0_F32_B4")
    with pytest.raises(ModelIdError):
        create_model("DASR_s5_N2_F8_B1")


def test_space_file_enumerates_expert_counts():
    from search.paths import REPO_ROOT
    from search.space import load_space

    space = load_space(REPO_ROOT / "spaces" / "dasr.yaml")
    configs = space.enumerate()
    assert sorted({c["N"] for c in configs}) == [1, 2, 3, 5, 8]
    assert {c["scale"] for c in configs} == {4}
    for config in configs:
        assert create_model(config["model_id"]).model_id == config["model_id"]


def _reported_count(label: str) -> int | None:
    import re

    from search.paths import PUBLISHED_DIR

    path = PUBLISHED_DIR / "REPORTED.md"
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        if line.startswith(f"| {label} |"):
            match = re.search(r"\|\s*([\d,]+)\s*\|", line[len(label) + 3:])
            return int(match.group(1).replace(",", "")) if match else None
    return None


def test_paper_configuration_matches_released_parameter_counts():
    """DASR_s4_N5_F64_B16 = csjliang/DASR's network (counts derived in REPORTED.md 4.2)."""
    generator = _reported_count("Generator params (5 experts stored)")
    predictor = _reported_count("Degradation predictor params")
    if generator is None or predictor is None:
        pytest.skip("published/REPORTED.md section 4.2 not available")
    model = create_model("DASR_s4_N5_F64_B16")
    assert sum(p.numel() for p in model.generator.parameters()) == generator
    assert sum(p.numel() for p in model.predictor.parameters()) == predictor
