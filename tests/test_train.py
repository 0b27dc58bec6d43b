"""Trainer, training patches and budgets (search.train, search.data.training)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from search.data.images import read_image, write_image
from search.data.imresize import imresize
from search.data.training import BICUBIC_REACH_LR, PatchSampler, augment, find_training_set
from search.errors import DataError, UserError
from search.data.protocols import get_protocol
from search.models import create_model, load_weights
from search.models.registry import SRModel
from search.paths import REPO_ROOT, SHIPPED_DATA
from search.train import (
    TrainingDiverged,
    learning_rate_at,
    load_budget,
    resolve_budget,
    train_model,
)

SMOKE = {"steps": 25, "batch_size": 4, "patch_size": 24, "lr": 0.01, "lr_schedule": "constant"}


@pytest.fixture(autouse=True)
def private_cache_dir(tmp_path_factory, monkeypatch):
    """Keep the on-disk training-pair cache of these tests out of ~/.cache."""
    monkeypatch.setenv("SR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "sr-cache"))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions: a second thread only adds synchronisation (slow on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small_train_dir(tmp_path_factory):
    """Six 96x80 crops of shipped T91 images: real content, loads in a blink."""
    folder = tmp_path_factory.mktemp("train") / "MiniT91"
    folder.mkdir()
    for name in ("t1.png", "t10.png", "t2.png", "t20.png", "t30.png", "t40.png"):
        image = read_image(SHIPPED_DATA / "T91" / name)
        write_image(folder / name, image[:96, :80])
    return folder


def state_of(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_smoke_training_lowers_loss_and_saves_weights(small_train_dir, tmp_path):
    model = create_model("eSR-MAX_s2_K3_C2")
    before = state_of(model)
    result = train_model(model, SMOKE, train_sets=(small_train_dir,), progress=False,
                         out_dir=tmp_path / "trial")
    assert set(result) >= {"train_time_s", "steps", "final_loss", "weights_path"}
    assert result["steps"] == SMOKE["steps"]
    assert result["final_loss"] < 0.8 * result["first_loss"]
    assert result["data_recipe"] == "gray:esr"
    after = state_of(model)
    assert any(not torch.equal(before[k], after[k]) for k in after)
    reloaded = create_model("eSR-MAX_s2_K3_C2")
    load_weights(reloaded, result["weights_path"])
    for key, value in reloaded.state_dict().items():
        assert torch.equal(value, after[key])
    log = json.loads((tmp_path / "trial" / "train_log.json").read_text())
    assert log["history"][-1]["step"] == SMOKE["steps"]


def test_smoke_budget_from_params_runs(small_train_dir):
    model = create_model("eSR-TR_s2_K3_C1")
    result = train_model(model, "smoke", train_sets=(small_train_dir,), progress=False)
    assert result["steps"] == load_budget("smoke")["steps"]
    assert np.isfinite(result["final_loss"]) and result["weights_path"] is None


def test_same_seed_same_weights_and_loss(small_train_dir):
    results, states = [], []
    for _ in range(2):
        torch.manual_seed(123 + len(states))  # the global RNG state must not matter
        model = create_model("eSR-TM_s2_K3_C2")
        results.append(train_model(model, SMOKE, train_sets=(small_train_dir,), seed=7,
                                   progress=False))
        states.append(state_of(model))
    assert results[0]["final_loss"] == results[1]["final_loss"]
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key])
    other = create_model("eSR-TM_s2_K3_C2")
    result = train_model(other, SMOKE, train_sets=(small_train_dir,), seed=8, progress=False)
    assert result["final_loss"] != results[0]["final_loss"]


def test_same_seed_same_weights_in_another_process(small_train_dir, tmp_path):
    script = textwrap.dedent(f"""
        import torch
        torch.set_num_threads({torch.get_num_threads()})
        from search.models import create_model
        from search.train import train_model
        model = create_model("eSR-TM_s2_K3_C2")
        result = train_model(model, {SMOKE!r}, train_sets=({str(small_train_dir)!r},), seed=3,
                             progress=False, out_dir={str(tmp_path / "child")!r})
        print(repr(result["final_loss"]))
    """)
    child = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True,
                           text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    model = create_model("eSR-TM_s2_K3_C2")
    result = train_model(model, SMOKE, train_sets=(small_train_dir,), seed=3, progress=False)
    assert float(child.stdout.strip().splitlines()[-1]) == result["final_loss"]
    theirs = torch.load(tmp_path / "child" / "weights.pt", weights_only=True)["state_dict"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, theirs[key])


class ToySR(SRModel):
    """A 1-channel x2 model whose hook adds a penalty and records ``progress``."""

    def __init__(self, penalty: float = 0.25):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.penalty = penalty
        self.seen_progress: list[float] = []
        self.scale, self.color = 2, "gray"

    def forward(self, x):
        return self.shuffle(self.conv(x))

    def training_step(self, batch, progress):
        self.seen_progress.append(progress)
        sr = self(batch["lr"])
        penalty = self.penalty * torch.ones((), requires_grad=True) + 0 * self.conv.weight.sum()
        return sr, {"penalty": penalty}


def test_extra_loss_term_is_added(small_train_dir):
    torch.manual_seed(0)
    model = ToySR(penalty=0.25)
    result = train_model(model, SMOKE, train_sets=(small_train_dir,), progress=False)
    terms = result["loss_terms"]
    assert set(terms) == {"l1", "penalty"}
    assert terms["penalty"] == pytest.approx(0.25)
    assert result["final_loss"] == pytest.approx(terms["l1"] + 0.25, rel=1e-6)
    assert result["data_recipe"] == "gray:standard"  # no family: the standard protocol's Y
    assert len(model.seen_progress) == SMOKE["steps"]
    assert model.seen_progress[0] == 0.0 and model.seen_progress == sorted(model.seen_progress)
    assert model.seen_progress[-1] < 1.0


def test_fixed_model_is_not_trained(small_train_dir, tmp_path):
    model = create_model("Bicubic_s2")  # no trainable parameters
    before = state_of(model)
    result = train_model(model, SMOKE, train_sets=(small_train_dir,), progress=False,
                         out_dir=tmp_path)
    assert result["steps"] == 0 and result["trainable"] is False
    assert np.isfinite(result["final_loss"]) and result["weights_path"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_nan_loss_raises_training_diverged(small_train_dir):
    model = ToySR(penalty=float("nan"))
    with pytest.raises(TrainingDiverged, match="NaN|nan"):
        train_model(model, SMOKE, train_sets=(small_train_dir,), progress=False)
    assert issubclass(TrainingDiverged, RuntimeError)


def test_rgb_model_gets_rgb_patches(small_train_dir):
    class ToyRGB(ToySR):
        def __init__(self):
            super().__init__(penalty=0.0)
            self.conv = nn.Conv2d(3, 12, 3, padding=1)
            self.color = "rgb"

    result = train_model(ToyRGB(), SMOKE, train_sets=(small_train_dir,), progress=False)
    assert result["data_recipe"] == "rgb" and np.isfinite(result["final_loss"])


def _chw_resize(hr: np.ndarray, scale: int, rgb: bool) -> np.ndarray:
    """imresize of a C x H x W [0, 1] patch, computed like the sampler (uint8 for RGB)."""
    image = hr.transpose(1, 2, 0).astype(np.float64) * 255.0
    image = np.floor(image + 0.5).astype(np.uint8) if rgb else image[..., 0]
    small = imresize(image, 1.0 / scale) / 255.0
    return small.transpose(2, 0, 1) if rgb else small[None]


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("color", ["rgb", "gray"])
def test_patches_are_aligned_under_all_flips(small_train_dir, scale, color):
    recipe = get_protocol("esr") if color == "gray" else None
    rgb = color == "rgb"
    sampler = PatchSampler((small_train_dir,), scale=scale, patch_size=12 * scale, color=color,
                           gray_recipe=recipe, seed=scale)
    m = BICUBIC_REACH_LR
    inner = (slice(None), slice(m, -m), slice(m, -m))
    for _ in range(6):
        index = int(sampler.rng.integers(len(sampler)))
        height, width = sampler.lr[index].shape[1:]
        y = int(sampler.rng.integers(height - sampler.lr_patch + 1))
        x = int(sampler.rng.integers(width - sampler.lr_patch + 1))
        lr0, hr0 = sampler.crop(index, y, x, 0)
        # away from the border, the LR patch is imresize of its HR patch
        np.testing.assert_allclose(lr0[inner], _chw_resize(hr0, scale, rgb)[inner], atol=2e-6)
        for code in range(8):
            lr, hr = sampler.crop(index, y, x, code)
            assert hr.shape[-2:] == (scale * lr.shape[-2], scale * lr.shape[-1])
            assert np.array_equal(lr, augment(lr0, code)) and np.array_equal(hr, augment(hr0, code))
            if not rgb:
                # float bicubic commutes with flips/transposes: still imresize of the HR patch.
                # (uint8 imresize rounds between its row and column passes, so for RGB a
                # transposed patch may differ by a grey level or two; checked above on code 0.)
                np.testing.assert_allclose(lr[inner], _chw_resize(hr, scale, rgb)[inner], atol=2e-6)


def test_gray_patches_follow_the_protocol(small_train_dir):
    protocol = get_protocol("esr")
    sampler = PatchSampler((small_train_dir,), scale=2, patch_size=24, color="gray",
                           gray_recipe=protocol, seed=0)
    name = sampler.names[0]
    image = read_image(small_train_dir / name)
    gray = protocol.gray_of(protocol.crop_hr(image, 2))
    np.testing.assert_allclose(sampler.hr[0][0] * 255.0, gray, atol=1e-4)
    # BT.601 weights on the BGR-ordered array (the eSR protocol), not on RGB
    rgb = image.astype(np.float64)
    swapped = 0.114 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.299 * rgb[..., 2]
    np.testing.assert_allclose(gray, swapped[: gray.shape[0], : gray.shape[1]], atol=1e-9)


def test_sampler_is_deterministic_and_augments(small_train_dir):
    first = PatchSampler((small_train_dir,), scale=2, patch_size=16, seed=5)
    second = PatchSampler((small_train_dir,), scale=2, patch_size=16, seed=5)
    lr_a, hr_a = first.sample(8)
    lr_b, hr_b = second.sample(8)
    assert np.array_equal(lr_a, lr_b) and np.array_equal(hr_a, hr_b)
    assert lr_a.shape == (8, 3, 8, 8) and hr_a.shape == (8, 3, 16, 16)
    block = np.arange(6).reshape(1, 2, 3)
    seen = {augment(block, code).tobytes() + bytes(augment(block, code).shape) for code in range(8)}
    assert len(seen) == 8  # the 8 flips/rotations are distinct


def test_disk_cache_gives_the_same_pairs(small_train_dir):
    from search.data import training

    training.clear_cache()
    first = PatchSampler((small_train_dir,), scale=3, patch_size=24, seed=1)
    assert list((training.cache_dir() / "training-pairs").glob("*.npz"))
    training.clear_cache()  # memory cache gone: the next sampler reads the disk copy
    second = PatchSampler((small_train_dir,), scale=3, patch_size=24, seed=1)
    assert first.names == second.names
    for a, b in zip(first.hr + first.lr, second.hr + second.lr):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_training_set_lookup(small_train_dir):
    assert find_training_set("T91").name == "T91"
    assert find_training_set(small_train_dir).path == small_train_dir
    with pytest.raises(DataError, match="NoSuchSet"):
        find_training_set("NoSuchSet")
    with pytest.raises(DataError, match="at least"):
        PatchSampler((small_train_dir,), scale=2, patch_size=400)


def test_unknown_budget_is_a_user_error():
    with pytest.raises(UserError, match="unknown training budget 'quik'.*quick"):
        load_budget("quik")
    with pytest.raises(UserError, match="unknown key"):
        resolve_budget({"steps": 10, "learning_rate": 1e-3})
    with pytest.raises(UserError, match="lr_schedule"):
        resolve_budget({"lr_schedule": "linear"})


def test_budgets_in_params_and_overrides():
    for name in ("smoke", "quick", "paper"):
        budget = load_budget(name)
        assert budget["steps"] >= 1 and budget["patch_size"] >= 4
    assert load_budget("smoke")["steps"] <= 100
    custom = {"steps": 10, "lr": 1e-3, "overrides": {"IMDN": {"lr": 5e-4, "patch_size": 96}}}
    assert resolve_budget(custom, "IMDN")["lr"] == 5e-4
    assert resolve_budget(custom, "IMDN")["patch_size"] == 96
    assert resolve_budget(custom, "eSR-TM")["lr"] == 1e-3
    patterns = {"steps": 10, "overrides": {"eSR-*": {"loss_border": 3}, "eSR-TR": {"lr": 0.5}}}
    assert resolve_budget(patterns, "eSR-TR")["loss_border"] == 3
    assert resolve_budget(patterns, "eSR-TR")["lr"] == 0.5
    assert resolve_budget(patterns, "IMDN")["loss_border"] == 0
    resolved = resolve_budget("quick", "eSR-TM")
    based = resolve_budget({"base": "quick", "steps": 12, "batch_size": 2.0}, "eSR-TM")
    assert based["steps"] == 12 and based["batch_size"] == 2
    assert based["lr"] == resolved["lr"]  # the base's family override survives
    with pytest.raises(UserError, match="unknown training budget"):
        resolve_budget({"base": "nope", "steps": 3})
    again = resolve_budget(resolved, "eSR-TM")  # a resolved budget is a valid budget
    assert {**again, "overrides_applied": None} == {**resolved, "overrides_applied": None}


def test_loss_border_leaves_patch_edges_out():
    from search.train import training_loss

    class EdgeWrong(SRModel):
        def training_step(self, batch, progress):
            sr = batch["hr"].clone()
            sr[..., :2, :] += 1.0  # wrong only in the outer HR rows (1 LR pixel at x2)
            return sr, {}

    batch = {"lr": torch.rand(2, 1, 8, 8), "hr": torch.rand(2, 1, 16, 16)}
    assert float(training_loss(EdgeWrong(), batch, 0.0)[0]) > 0.1
    assert float(training_loss(EdgeWrong(), batch, 0.0, border=1)[0]) == 0.0
    with pytest.raises(UserError, match="loss_border"):
        train_model(create_model("eSR-MAX_s2_K3_C1"), {**SMOKE, "loss_border": 6},
                    train_sets=("T91",), progress=False)


def test_learning_rate_schedules():
    cosine = resolve_budget({"steps": 100, "lr": 1.0, "lr_schedule": "cosine", "min_lr": 0.1})
    assert learning_rate_at(0, cosine) == pytest.approx(1.0)
    assert learning_rate_at(50, cosine) == pytest.approx(0.55)
    assert learning_rate_at(100, cosine) == pytest.approx(0.1)
    step = resolve_budget({"steps": 100, "lr": 1.0, "lr_schedule": "step",
                           "milestones": [0.5, 80], "gamma": 0.1})
    assert [learning_rate_at(s, step) for s in (0, 49, 50, 79, 80)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01])
    warm = resolve_budget({"steps": 100, "lr": 1.0, "lr_schedule": "constant", "warmup_steps": 4})
    assert learning_rate_at(0, warm) == pytest.approx(0.25)
    assert learning_rate_at(10, warm) == 1.0


def test_a_loss_that_blows_up_but_stays_finite_is_diverged(small_train_dir):
    """lr 1e8 (probe): the loss ends near 1e7 with every value finite; the trial used to be
    recorded complete at 7 dB and could reach the front."""
    model = create_model("eSR-CNN_s2_C4_D1_S4")
    with pytest.raises(TrainingDiverged, match="rose from"):
        train_model(model, {**SMOKE, "lr": 1.0e8}, train_sets=(small_train_dir,), progress=False)
