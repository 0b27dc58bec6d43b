"""The contract every registered model family keeps, tested over the registry (as timm's
test_models.py does over ``list_models()``): a new family needs its model file (and a space
file to search it), no new test.

Expected values come from the contract (docs/ARCHITECTURE.md), not from the family: the
output of an ``N x C x h x w`` input is ``N x C x (s*h) x (s*w)`` with C = 1 for gray and 3
for RGB families; an id names the model it builds; saved weights load back strictly and give
the same output; a training step gives a differentiable output of the HR's shape.
"""

from __future__ import annotations

import math

import pytest
import torch

from search.models import (
    create_model,
    get_family,
    list_families,
    load_weights,
    parse_model_id,
)
from search.models.registry import create_test_model
from search.profile.flops import count_flops, count_params
from search.train import list_budgets, resolve_budget

FAMILIES = list_families()
CHANNELS = {"gray": 1, "rgb": 3}


@pytest.fixture(params=FAMILIES)
def family(request):
    return request.param


def _input(model, n=2, h=9, w=11):
    return torch.rand(n, CHANNELS[model.color], h, w)


def test_family_declares_what_the_suite_needs(family):
    info = get_family(family)
    assert info.description, f"{family}: the builder's docstring is the docs line"
    assert info.color in CHANNELS
    assert info.source_file.endswith(".py")
    known = set(list_budgets())
    for budget, changes in info.budget_overrides.items():
        assert budget in known, f"{family}: budget_overrides names unknown budget {budget!r}"
        settings = resolve_budget(budget, family)
        for key, value in changes.items():  # the family's values arrive in the flat settings
            assert settings[key] == pytest.approx(value)


def test_output_shape_attributes_and_id(family):
    torch.manual_seed(0)
    model = create_test_model(family).eval()
    info = get_family(family)
    scale = info.test_config.get("scale", info.defaults.get("scale", 2))
    assert (model.family, model.scale, model.color) == (info.name, scale, info.color)
    spec = parse_model_id(model.model_id)
    assert (spec.family, spec.scale) == (info.name, scale)
    for key, value in info.test_config.items():
        if key in info.id_fields:
            assert spec.hparams[key] == value, f"{family}: id {model.model_id} lost {key}"
    x = _input(model)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, CHANNELS[info.color], 9 * scale, 11 * scale)
    assert torch.isfinite(y).all()


def test_id_builds_the_same_model(family):
    """Where the id names every hyper-parameter of the test configuration, building from the
    id gives the same architecture (same parameter count, same output for the same weights)."""
    info = get_family(family)
    if set(info.test_config) - {"scale"} - set(info.id_fields):
        pytest.skip(f"{family}: its test configuration sets hyper-parameters the id does not name")
    torch.manual_seed(0)
    model = create_test_model(family).eval()
    again = create_model(model.model_id).eval()
    again.load_state_dict(model.state_dict())
    x = _input(model)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


def test_saved_weights_reload_strictly(family, tmp_path):
    torch.manual_seed(0)
    model = create_test_model(family).eval()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    torch.manual_seed(1)
    other = load_weights(create_test_model(family).eval(), tmp_path / "weights.pt")
    x = _input(model)
    with torch.no_grad():
        assert torch.equal(model(x), other(x))


def test_training_step_is_differentiable(family):
    torch.manual_seed(0)
    model = create_test_model(family).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        pytest.skip(f"{family}: a fixed filter, nothing to train")
    lr = _input(model, h=12, w=12)
    hr = torch.rand(lr.shape[0], lr.shape[1], 12 * model.scale, 12 * model.scale)
    sr, extra = model.training_step({"lr": lr, "hr": hr}, 0.5)
    assert sr.shape == hr.shape
    loss = (sr - hr).abs().mean() + sum(extra.values(), torch.zeros(()))
    assert math.isfinite(float(loss))
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)


def test_cost_counts(family):
    model = create_test_model(family).eval()
    params = count_params(model)
    assert params == sum(p.numel() for p in model.parameters())
    macs = count_flops(model, (16, 16))
    assert isinstance(macs, int) and macs >= 0
    if params:  # a learnt layer costs mult-adds at every position
        assert macs > 0


def test_same_seed_same_model(family):
    torch.manual_seed(3)
    first = create_test_model(family)
    torch.manual_seed(3)
    second = create_test_model(family)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), f"{family}: {name} differs under the same seed"
