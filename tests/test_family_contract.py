"""The contract every registered model family keeps, tested over the registry (as timm's
test_models.py does over ``list_models()``): a new family needs its model file (and a space
file to search it), no new test.

Expected values come from the contract (docs/ARCHITECTURE.md), not from the family: the
output of an ``N x C x h x w`` input is ``N x C x (s*h) x (s*w)`` with C = 1 for gray and 3
for RGB families; an id names the model it builds; saved weights load back strictly and give
the same output; a training step gives a differentiable output of the HR's shape.

Values, not only shapes (bottom of this file):

* every family's seeded test model (``test_config``, ``torch.manual_seed(0)``) on a fixed seeded
  input gives the output stored in ``tests/data/family_outputs.json`` (mean, mean |y|, channel
  means and sampled values, within 1e-4 relative), so a change to a layer, an init or the
  channel order that keeps shapes shows up, naming the family;
* released eSR-MAX/TM/TR/CNN weights give the output that plain numpy computes from the same
  weights on a crop of Set5 'baby' (convolution, pixel shuffle and the per-pixel reduction as
  the eSR authors' ``models.py`` defines them): an independent expectation, not a digest;
* other released weights (ESPCN, FSRCNN, IMDN, IMDN-AS, IMDN-RTC, SMSR) give the stored output
  on the same crop; IMDN x4 gives the published Set5 PSNR/SSIM (``published/imdn_reported.csv``).
  (Every eSR-paper family's published Set5/Set14 PSNR is checked in tests/test_protocols.py.)

After an intended change of outputs, regenerate the stored values and review the diff::

    SR_UPDATE_REFERENCES=1 python -m pytest tests/test_family_contract.py
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from search.models import (
    create_model,
    get_family,
    list_families,
    load_weights,
    parse_model_id,
    released_weights_path,
)
from search.models.registry import create_test_model
from search.paths import PUBLISHED_DIR, SHIPPED_DATA
from search.profile.flops import count_flops, count_params
from search.train import list_budgets, resolve_budget
from tests.conftest import needs_shared_weights

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


# ----------------------------------------------------------------------------------- values
REFERENCES = Path(__file__).parent / "data" / "family_outputs.json"
UPDATE = os.environ.get("SR_UPDATE_REFERENCES", "") not in ("", "0")
REGENERATE = "SR_UPDATE_REFERENCES=1 python -m pytest tests/test_family_contract.py"
REL = 1e-4  # float32 sums in another order (threads, CPU kernels) move the 6th-7th digit
SAMPLES = 10


def _digest(y: torch.Tensor) -> dict:
    """Shape, mean, mean |y|, per-channel means and about SAMPLES values at fixed flat indices
    (the first and last element, the rest spread evenly, each at another offset)."""
    y = y.detach().double()
    flat = y.flatten()
    n = flat.numel()
    spread = ((2 * k + 1) * n // (2 * (SAMPLES - 2)) + k for k in range(SAMPLES - 2))
    indices = sorted({0, n - 1, *(i % n for i in spread)})

    def rounded(value) -> float:
        return float(f"{float(value):.7g}")

    return {
        "shape": list(y.shape),
        "mean": rounded(flat.mean()),
        "mean_abs": rounded(flat.abs().mean()),
        "channel_means": [rounded(v) for v in y.mean(dim=(0, 2, 3))],
        "samples": {str(i): rounded(flat[i]) for i in indices},
    }


def _read_references() -> dict:
    return json.loads(REFERENCES.read_text()) if REFERENCES.is_file() else {}


def _write_reference(section: str, key: str, digest: dict) -> None:
    data = _read_references()
    data["_about"] = {
        "what": "outputs the value tests of tests/test_family_contract.py compare against",
        "regenerate": REGENERATE,
        "torch": torch.__version__.split("+")[0],
    }
    data.setdefault(section, {})[key] = digest
    REFERENCES.parent.mkdir(parents=True, exist_ok=True)
    REFERENCES.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def _differences(got: dict, ref: dict) -> list[str]:
    """What moved beyond REL (relative to the value, at least to the output's mean |y|)."""
    if got["shape"] != ref["shape"]:
        return [f"shape {got['shape']} != {ref['shape']}"]
    floor = abs(ref["mean_abs"])

    def moved(a: float, b: float) -> bool:
        return abs(a - b) > REL * max(abs(b), floor, 1e-12)

    problems = [f"{name} {got[name]:.7g} != {ref[name]:.7g}"
                for name in ("mean", "mean_abs") if moved(got[name], ref[name])]
    problems += [f"channel {c} mean {a:.7g} != {b:.7g}"
                 for c, (a, b) in enumerate(zip(got["channel_means"], ref["channel_means"])) if moved(a, b)]
    if set(got["samples"]) != set(ref["samples"]):
        problems.append("sampled indices differ (the digest changed): regenerate")
    else:
        problems += [f"y.flatten()[{i}] {got['samples'][i]:.7g} != {b:.7g}"
                     for i, b in ref["samples"].items() if moved(got["samples"][i], b)]
    return problems


def _check_reference(section: str, key: str, y: torch.Tensor, what: str) -> None:
    digest = _digest(y)
    if UPDATE:
        _write_reference(section, key, digest)
        return
    stored = _read_references().get(section, {}).get(key)
    assert stored is not None, (f"{key}: no stored output in {REFERENCES.name} [{section}]; "
                                f"generate it with {REGENERATE}")
    problems = _differences(digest, stored)
    assert not problems, (f"{key}: {what} moved from the value stored in {REFERENCES.name} "
                          f"(tolerance {REL:g} relative): {'; '.join(problems[:6])}. If the change is "
                          f"intended, regenerate with {REGENERATE} and review the diff")


def test_seeded_output_values(family, one_thread):
    """The seeded test model on a fixed seeded input gives the stored output (CPU, float32)."""
    torch.manual_seed(0)
    model = create_test_model(family).eval()
    generator = torch.Generator().manual_seed(2024)
    x = torch.rand(2, CHANNELS[model.color], 9, 11, generator=generator, dtype=torch.float32)
    with torch.no_grad():
        y = model(x)
    assert y.dtype == torch.float32
    _check_reference("test_config", family, y, f"the seeded {model.model_id} output")


def test_references_cover_the_registry():
    """One stored output per registered family (and per released model checked below), none
    for one that is gone."""
    data = _read_references()
    for section, wanted in (("test_config", set(FAMILIES)), ("released", set(DIGESTED))):
        if UPDATE and section in data:
            data[section] = {k: v for k, v in data[section].items() if k in wanted}
            REFERENCES.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        stored = set(data.get(section, {}))
        assert stored == wanted, (f"{REFERENCES.name} [{section}] has outputs for {sorted(stored - wanted)} "
                                  f"(not checked) and lacks {sorted(wanted - stored)}; regenerate with "
                                  f"{REGENERATE}")


# ------------------------------------------------------------------ released weights: values
def _baby_crop(color: str) -> torch.Tensor:
    """A fixed 20 x 24 crop of Set5 'baby' (an edge of the hat: std 0.33) in [0, 1], 1 x C x 20 x 24."""
    from search.data import read_image

    rgb = read_image(SHIPPED_DATA / "Set5" / "baby.png")[140:160, 24:48].astype(np.float64) / 255.0
    if color == "gray":
        image = (rgb @ np.array([0.299, 0.587, 0.114]))[None]
    else:
        image = rgb.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(image)).float()[None]


def _released(model_id: str):
    return load_weights(create_model(model_id), released_weights_path(model_id)).eval()


def _np_conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """Cross-correlation of ``Cin x H x W`` with ``Cout x Cin x K x K``, zero 'same' padding."""
    k = weight.shape[-1]
    pad = (k - 1) // 2
    h, w = x.shape[1:]
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((weight.shape[0], h, w))
    for i in range(k):
        for j in range(k):
            out += np.einsum("oc,chw->ohw", weight[:, :, i, j], padded[:, i:i + h, j:j + w])
    return out if bias is None else out + bias[:, None, None]


def _np_pixel_shuffle(t: np.ndarray, s: int) -> np.ndarray:
    """``(C s^2) x H x W -> C x sH x sW``: HR pixel (s h + i, s w + j) of channel c is LR channel
    c s^2 + i s + j at (h, w) (sub-pixel convolution, Shi et al. 2016)."""
    out = np.zeros((t.shape[0] // s**2, t.shape[1] * s, t.shape[2] * s))
    for i in range(s):
        for j in range(s):
            out[:, i::s, j::s] = t[i * s + j::s * s]
    return out


def _np_softmax(t: np.ndarray) -> np.ndarray:
    e = np.exp(t - t.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def _np_edge_sr(model_id: str, x: np.ndarray) -> np.ndarray:
    """The eSR authors' models.py in numpy, float64, from the released file's tensors:
    MAX: max_c f_c; TM: sum_c v_c softmax_c(k); TR: sum_c v_c softmax_c(q k), the C-channel
    groups in the order value, (query,) key after the shuffle; CNN: conv5x5-tanh-conv3x3-tanh-
    conv3x3 (no bias), shuffle, sum_c v_c softmax_c(k k)."""
    spec = parse_model_id(model_id)
    s, c = spec.scale, spec.hparams["C"]
    state = {k: v.double().numpy() for k, v in
             torch.load(released_weights_path(model_id), map_location="cpu", weights_only=True).items()}
    if spec.family == "eSR-CNN":
        features = np.tanh(_np_conv(x, state["filter.0.weight"], state["filter.0.bias"]))
        features = np.tanh(_np_conv(features, state["filter.2.weight"], state["filter.2.bias"]))
        value, key = np.split(_np_pixel_shuffle(_np_conv(features, state["filter.4.weight"]), s), 2)
        return (value * _np_softmax(key * key)).sum(axis=0)
    maps = _np_pixel_shuffle(_np_conv(x, state["filter.weight"]), s)
    groups = np.split(maps, maps.shape[0] // c)
    if spec.family == "eSR-MAX":
        return groups[0].max(axis=0)
    if spec.family == "eSR-TM":
        value, key = groups
        return (value * _np_softmax(key)).sum(axis=0)
    value, query, key = groups
    return (value * _np_softmax(query * key)).sum(axis=0)


NUMPY_CHECKED = ["eSR-MAX_s2_K5_C11", "eSR-MAX_s4_K3_C7", "eSR-TM_s3_K7_C4", "eSR-TR_s4_K3_C5",
                 "eSR-TR_s2_K7_C4", "eSR-CNN_s2_C4_D7_S9", "eSR-CNN_s3_C6_D3_S15"]


@needs_shared_weights
@pytest.mark.parametrize("model_id", NUMPY_CHECKED)
def test_released_esr_output_equals_numpy_from_the_weights(model_id, one_thread):
    x = _baby_crop("gray")
    with torch.no_grad():
        y = _released(model_id)(x)[0, 0].double().numpy()
    expected = _np_edge_sr(model_id, x[0].double().numpy())
    assert y.shape == expected.shape
    error = np.abs(y - expected).max()
    assert error < 1e-5, f"{model_id}: max |model - numpy| = {error:.3g} on the Set5 'baby' crop"
    assert expected.std() > 0.05  # a real image, not a flat patch: a wrong layout cannot hide


DIGESTED = ["ESPCN_s3_D0_S9", "ESPCN_s4_D52_S24", "FSRCNN_s2_D19_S12_M4", "IMDN_s2", "IMDN-AS_s2",
            "IMDN-RTC_s2", "SMSR_s2"]


@needs_shared_weights
@pytest.mark.parametrize("model_id", DIGESTED)
def test_released_output_values(model_id, one_thread):
    model = _released(model_id)
    with torch.no_grad():
        y = model(_baby_crop(model.color))
    _check_reference("released", model_id, y, "the released model's output on the Set5 'baby' crop")


@pytest.mark.slow  # ~10 s: five Set5 images through the full IMDN x4
@needs_shared_weights
def test_released_imdn_x4_gives_the_published_set5_scores():
    """An expectation from the paper, not from this code: IMDN x4 on Set5 (Y, border 4) is
    32.21 dB / 0.8948 in published/imdn_reported.csv; this suite measures 32.2096 / 0.89476."""
    from search.evaluate import evaluate_model

    with (PUBLISHED_DIR / "imdn_reported.csv").open(newline="") as handle:
        published = {row["scale"]: row for row in csv.DictReader(handle)}["4"]
    result = evaluate_model(_released("IMDN_s4"), ["Set5"], progress=False)["Set5"]
    assert abs(result["psnr"] - float(published["set5_psnr"])) < 0.01, result
    assert abs(result["ssim"] - float(published["set5_ssim"])) < 0.0005, result
