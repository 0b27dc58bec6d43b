"""The eSR-paper families: ids, shapes, strict loading of all 1185 released files, params."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from search.errors import ModelIdError, WeightsError
from search.models import (
    create_model,
    format_model_id,
    get_family,
    list_families,
    load_weights,
    parse_model_id,
    released_weights_path,
)
from search.models.bicubic_filter import bicubic_transposed_kernel
from search.paths import PUBLISHED_DIR, SHIPPED_DATA, weights_root

needs_shared_weights = pytest.mark.skipif(
    not (weights_root() / "esr").is_dir(),
    reason=f"released eSR weights not found in {weights_root() / 'esr'} (set SR_WEIGHTS_ROOT)",
)

ESR_FAMILIES = sorted(f for f in list_families() if get_family(f).paper == "esr")
PUBLISHED = pd.read_csv(PUBLISHED_DIR / "esr_tests.csv")

# A small configuration per family (fast forward); a new eSR family must add one here.
SMALL = {
    "Bicubic": {},
    "eSR-MAX": {"K": 3, "C": 2},
    "eSR-TM": {"K": 3, "C": 2},
    "eSR-TR": {"K": 5, "C": 1},
    "eSR-CNN": {"C": 2, "D": 1, "S": 3},
    "ESPCN": {"D": 4, "S": 6},
    "FSRCNN": {"D": 6, "S": 3, "M": 4},
}
EXTRA = {"ESPCN": {"D": 0, "S": 3}, "FSRCNN": {"D": 6, "S": 1, "M": 1}, "eSR-CNN": {"C": 2, "D": 0, "S": 3}}


def test_all_published_families_registered():
    assert set(ESR_FAMILIES) == set(PUBLISHED.family) == set(SMALL)


@pytest.mark.parametrize("family", ESR_FAMILIES)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_forward_shape_and_attributes(family, scale):
    torch.manual_seed(0)
    configs = [SMALL[family]] + ([EXTRA[family]] if family in EXTRA else [])
    for hp in configs:
        model = create_model(family=family, scale=scale, **hp).eval()
        assert model.color == "gray" and model.scale == scale and model.family == family
        assert model.model_id == format_model_id(family, scale, **hp)
        assert get_family(family).default_protocol == "esr"
        x = torch.rand(2, 1, 6, 7)
        with torch.no_grad():
            y = model(x)
        assert y.shape == (2, 1, 6 * scale, 7 * scale)
        assert torch.isfinite(y).all()


def test_untrained_models_start_near_nearest_neighbour():
    """The identity-centre init: a constant image stays roughly constant (not noise)."""
    torch.manual_seed(0)
    for family in ("eSR-MAX", "eSR-TM", "eSR-TR"):
        model = create_model(family=family, scale=2, K=3, C=1)
        with torch.no_grad():
            model.filter.weight.zero_()
            model.filter.weight[:, 0, 1, 1] = 1.0
            y = model(torch.full((1, 1, 4, 4), 0.5))
        assert torch.allclose(y, torch.full_like(y, 0.5))


def test_every_published_id_round_trips():
    for model_id, family in zip(PUBLISHED.model, PUBLISHED.family):
        spec = parse_model_id(model_id)
        assert spec.family == family
        assert spec.model_id == model_id
        assert format_model_id(spec.family, spec.scale, **spec.hparams) == model_id
    assert create_model(family="FSRCNN", scale=3, D=56, S=12, M=4).model_id == "FSRCNN_s3_D56_S12_M4"
    assert create_model("eSR-TM_s2_K3_C4").model_id == "eSR-TM_s2_K3_C4"


def test_parameter_counts_match_published():
    """All learned families match; the Bicubic counts (26 s^2) are not the file's size."""
    mismatched = {}
    for model_id, published in zip(PUBLISHED.model, PUBLISHED.parameters):
        model = create_model(model_id)
        count = sum(p.numel() for p in model.parameters())
        if count != published:
            mismatched[model_id] = (count, published)
    assert mismatched == {
        "Bicubic_s2": (121, 104),
        "Bicubic_s3": (225, 234),
        "Bicubic_s4": (361, 416),
    }


@needs_shared_weights
def test_all_released_files_load_strictly():
    ids = list(PUBLISHED.model)
    assert len(ids) == 1185
    folder = released_weights_path(ids[0]).parent
    assert sorted(p.stem for p in folder.glob("*.model")) == sorted(ids)
    for model_id in ids:
        load_weights(create_model(model_id), released_weights_path(model_id), strict=True)


@needs_shared_weights
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_filter_is_the_released_one(scale):
    model = create_model(f"Bicubic_s{scale}")
    released = torch.load(released_weights_path(model.model_id), map_location="cpu", weights_only=True)
    assert torch.equal(released["net.weight"].float(), bicubic_transposed_kernel(scale))
    assert not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("scale, centre", [(2, 0.5), (3, 1.5), (4, 1.5)])
def test_bicubic_dc_gain_and_alignment(scale, centre):
    """Unit DC gain; LR pixel i lands at s*i + centre (x3: +1.5, the authors' half-pixel shift)."""
    model = create_model(f"Bicubic_s{scale}")
    with torch.no_grad():
        flat = model(torch.ones(1, 1, 12, 12))[0, 0, 3 * scale : -3 * scale, 3 * scale : -3 * scale]
        assert torch.allclose(flat, torch.ones_like(flat), atol=1e-3)
        impulse = torch.zeros(1, 1, 9, 9)
        impulse[0, 0, 4, 4] = 1.0
        profile = model(impulse)[0, 0].sum(0).double()
    position = (profile * torch.arange(profile.numel())).sum() / profile.sum()
    assert abs(position.item() - (4 * scale + centre)) < 1e-3


@needs_shared_weights
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_released_models_rank_like_published(scale):
    """Best released model per family on a crop: all beat Bicubic, MAX < TM < TR as published.

    A wrong value/key channel order or a wrong layer order would break these orderings.
    """
    rgb = np.asarray(Image.open(SHIPPED_DATA / "Set5" / "butterfly.png").convert("RGB"), dtype=np.float64)
    hr = (rgb[..., 2] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 0] * 0.114)[:120, :120]
    lr = np.asarray(Image.fromarray(hr.astype(np.float32), mode="F").resize((120 // scale,) * 2, Image.BICUBIC))
    x = torch.from_numpy(lr / 255.0).float()[None, None]
    rows = PUBLISHED[PUBLISHED.s == scale]
    best = rows.loc[rows.groupby("family").psnr_Set14.idxmax()]
    psnr = {}
    for model_id, family in zip(best.model, best.family):
        model = load_weights(create_model(model_id), released_weights_path(model_id)).eval()
        with torch.no_grad():
            sr = model(x).clamp(0, 1)[0, 0].numpy() * 255.0
        err = (sr - hr)[scale:-scale, scale:-scale]
        psnr[family] = 10 * np.log10(255.0**2 / np.mean(err**2))
    assert all(psnr[f] > psnr["Bicubic"] + 0.5 for f in psnr if f != "Bicubic"), psnr
    assert psnr["eSR-MAX"] < psnr["eSR-TM"] < psnr["eSR-TR"], psnr


@needs_shared_weights
def test_weights_of_another_id_raise_one_line_error():
    path = released_weights_path("eSR-TM_s2_K3_C4")
    with pytest.raises(WeightsError) as info:
        load_weights(create_model("eSR-TM_s2_K5_C4"), path)
    message = str(info.value)
    assert "\n" not in message and path.name in message and "eSR-TM_s2_K5_C4" in message
    with pytest.raises(WeightsError, match="FSRCNN_s2_D56_S12_M1.model"):
        load_weights(create_model("FSRCNN_s2_D56_S12_M4"), released_weights_path("FSRCNN_s2_D56_S12_M1"))


def test_unknown_family_and_bad_hyperparameters():
    with pytest.raises(ModelIdError, match="eSR-FOO"):
        create_model("eSR-FOO_s2_K3_C4")
    with pytest.raises(ModelIdError):
        create_model(family="NoSuchFamily", scale=2)
    with pytest.raises(ModelIdError, match="K must be odd"):
        create_model("eSR-TM_s2_K4_C4")
    with pytest.raises(ModelIdError, match="lacks"):
        create_model("FSRCNN_s2_D56_S12")
    with pytest.raises(ModelIdError, match="C must be a positive integer"):
        create_model(family="eSR-MAX", scale=2, K=3, C=0)


@needs_shared_weights
def test_same_shape_weights_of_another_id_are_rejected():
    with pytest.raises(WeightsError, match="FSRCNN_s2_D19_S12_M1.model"):
        load_weights(create_model("FSRCNN_s3_D19_S12_M1"), released_weights_path("FSRCNN_s2_D19_S12_M1"))
