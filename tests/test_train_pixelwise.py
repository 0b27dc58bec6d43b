"""Pixel-wise training of the one-layer eSR models (search/train/pixelwise.py, NeighbourhoodBank).

Expected values come from the authors' layers (conv2d + pixel shuffle, the model's forward),
from the images themselves padded and flipped with numpy, and from linear algebra.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from search.data.images import read_image, write_image
from search.data.protocols import get_protocol
from search.data.training import NeighbourhoodBank, dihedral_orders, load_pairs
from search.errors import UserError
from search.models import create_model
from search.paths import SHIPPED_DATA
from search.train import resolve_budget, train_model
from search.train.pixelwise import (
    PixelwiseObjective,
    supports_pixelwise,
    whitening_matrix,
)

ESR = get_protocol("esr")


@pytest.fixture(autouse=True)
def private_cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "sr-cache"))


@pytest.fixture(scope="module")
def train_dir(tmp_path_factory):
    """Three small crops of shipped T91 images (different sizes: the bank handles both)."""
    folder = tmp_path_factory.mktemp("train") / "Tiny"
    folder.mkdir()
    for name, (h, w) in (("t1.png", (36, 30)), ("t2.png", (24, 42)), ("t3.png", (30, 30))):
        write_image(folder / name, read_image(SHIPPED_DATA / "T91" / name)[:h, :w])
    return folder


def neighbourhoods(image: torch.Tensor, kernel: int) -> torch.Tensor:
    """``h*w x K^2`` zero-padded K x K windows of a ``1 x 1 x h x w`` image (row-major)."""
    return F.unfold(image, kernel, padding=kernel // 2)[0].t()


@pytest.mark.parametrize("model_id", ["eSR-MAX_s2_K3_C4", "eSR-TM_s3_K5_C2", "eSR-TR_s4_K3_C3"])
def test_per_pixel_head_equals_the_authors_layers(model_id):
    torch.manual_seed(0)
    model = create_model(model_id).eval()
    with torch.no_grad():
        model.filter.weight.normal_()  # not the near-identity start: every channel matters
    s, k = model.scale, model.kernel
    image = torch.rand(1, 1, 7, 6)
    expected = model(image)[0, 0]  # conv2d + pixel shuffle + head on the HR grid
    filtered = neighbourhoods(image, k) @ model.pixel_filter.reshape(model.pixel_filter.shape[0], -1).t()
    blocks = model.per_pixel(filtered).reshape(7, 6, s, s)  # LR pixel (y, x) -> its s x s HR block
    got = blocks.permute(0, 2, 1, 3).reshape(7 * s, 6 * s)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_only_one_layer_models_train_pixelwise():
    assert supports_pixelwise(create_model("eSR-TR_s2_K3_C1"))
    for model_id in ("eSR-CNN_s2_C2_D1_S3", "ESPCN_s2_D0_S3", "Bicubic_s2"):
        assert not supports_pixelwise(create_model(model_id))


def test_pixel_sampling_of_another_family_is_a_user_error(train_dir):
    with pytest.raises(UserError, match="sampling 'pixels'.*eSR-CNN"):
        train_model(create_model("eSR-CNN_s2_C2_D1_S3"), {"base": "smoke", "sampling": "pixels"},
                    train_sets=(train_dir,), progress=False)


@pytest.mark.parametrize("scale,kernel", [(2, 3), (3, 5)])
def test_bank_holds_inner_neighbourhoods_and_hr_blocks(train_dir, scale, kernel):
    bank = NeighbourhoodBank((train_dir,), scale=scale, kernel=kernel, gray_recipe=ESR, seed=0)
    pairs = load_pairs(sorted(train_dir.iterdir()), scale, "gray", ESR)
    r = kernel // 2
    # small set: every pixel whose neighbourhood lies inside the image, row-major per image
    assert len(bank) == sum((lr.shape[1] - 2 * r) * (lr.shape[2] - 2 * r) for lr in pairs.lr)
    row = 0
    for lr, hr in zip(pairs.lr, pairs.hr):
        height, width = lr.shape[1:]
        inner_width = width - 2 * r
        for y, x in ((r, r), (height - 1 - r, width - 1 - r), (height // 2, r + 1)):
            index = row + (y - r) * inner_width + (x - r)
            assert np.array_equal(bank.features[index], lr[0, y - r:y + r + 1, x - r:x + r + 1].ravel())
            block = hr[0, scale * y:scale * (y + 1), scale * x:scale * (x + 1)]
            assert np.array_equal(bank.targets[index], block.ravel())
        row += (height - 2 * r) * inner_width
    assert row == len(bank)


def test_bank_draws_at_most_max_pixels_without_repeats(train_dir):
    bank = NeighbourhoodBank((train_dir,), scale=2, kernel=3, gray_recipe=ESR, seed=3, max_pixels=100)
    assert len(bank) == 100
    assert len({row.tobytes() + t.tobytes() for row, t in zip(bank.features, bank.targets)}) == 100


@pytest.mark.parametrize("code", range(8))
def test_augmented_samples_are_pixels_of_the_flipped_image(code):
    """A sample drawn with flip/rotation ``code`` is the neighbourhood and HR block of a pixel
    of the image flipped/rotated with numpy."""
    rng = np.random.default_rng(code)
    scale, kernel, size = 2, 3, 5
    lr = rng.random((size, size)).astype(np.float32)
    hr = rng.random((size * scale, size * scale)).astype(np.float32)
    transforms = [lambda a: a, lambda a: a[:, ::-1], lambda a: a[::-1, :], lambda a: a[::-1, ::-1]]
    flip = transforms[code & 3]

    def transform(a):
        a = flip(a)
        return a.T if code & 4 else a

    lr_t, hr_t = transform(lr), transform(hr)
    padded = np.pad(lr_t, 1)
    candidates = {(padded[y:y + 3, x:x + 3].ravel().tobytes(),
                   hr_t[2 * y:2 * y + 2, 2 * x:2 * x + 2].ravel().tobytes())
                  for y in range(size) for x in range(size)}
    padded_original = np.pad(lr, 1)
    taps, blocks = dihedral_orders(kernel)[code], dihedral_orders(scale)[code]
    for y in range(size):
        for x in range(size):
            features = padded_original[y:y + 3, x:x + 3].ravel()[taps]
            targets = hr[2 * y:2 * y + 2, 2 * x:2 * x + 2].ravel()[blocks]
            assert (features.tobytes(), targets.tobytes()) in candidates


def test_whitening_gives_identity_second_moment_and_commutes_with_flips(train_dir):
    bank = NeighbourhoodBank((train_dir,), scale=2, kernel=5, gray_recipe=ESR, seed=0)
    moment = bank.second_moment()
    whitening = whitening_matrix(moment)
    np.testing.assert_allclose(whitening @ moment @ whitening, np.eye(25), atol=1e-6)
    for order in dihedral_orders(5):
        permutation = np.eye(25)[:, order]  # x @ permutation = x[:, order]
        np.testing.assert_allclose(permutation @ whitening, whitening @ permutation, atol=1e-9)


def test_whitened_training_writes_back_the_same_function(train_dir):
    model = create_model("eSR-TM_s2_K3_C2")
    before = model.filter.weight.detach().clone()
    bank = NeighbourhoodBank((train_dir,), scale=2, kernel=3, gray_recipe=ESR, seed=0)
    raw = bank.features[:50].copy()
    objective = PixelwiseObjective(model, bank, pixels_per_step=64)
    objective.finish()  # untrained: V P must give back the model's filter
    torch.testing.assert_close(model.filter.weight.detach(), before, atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        objective.filters.add_(torch.randn_like(objective.filters))
        whitened = model.per_pixel(torch.from_numpy(bank.features[:50]) @ objective.filters.t())
        objective.finish()
        weight = model.pixel_filter.reshape(model.pixel_filter.shape[0], -1)
        plain = model.per_pixel(torch.from_numpy(raw) @ weight.t())
    torch.testing.assert_close(plain, whitened, atol=1e-4, rtol=1e-4)


def test_pixelwise_training_lowers_the_loss_and_is_seeded(train_dir):
    budget = {"base": "smoke", "sampling": "pixels", "steps": 40, "pixels_per_step": 256, "lr": 0.03}
    runs = []
    for _ in range(2):
        model = create_model("eSR-MAX_s2_K3_C2")
        result = train_model(model, budget, train_sets=(train_dir,), seed=4, progress=False)
        runs.append((result, model.filter.weight.detach().clone()))
    (first, weight), (second, weight_again) = runs
    assert first["sampling"] == "pixels" and first["train_images"] == 3
    assert first["final_loss"] < 0.8 * first["first_loss"]
    assert torch.equal(weight, weight_again) and first["final_loss"] == second["final_loss"]


def test_budget_sampling_key_is_checked():
    assert resolve_budget("smoke")["sampling"] == "patches"
    with pytest.raises(UserError, match="sampling"):
        resolve_budget({"base": "smoke", "sampling": "pixel"})
