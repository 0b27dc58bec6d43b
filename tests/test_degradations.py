"""DASR degradation space: each operator's measured effect, sampling, the 33-number vector,
and the deterministic Level I/II/III test sets."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
import torch
import yaml

from search.data import degradations as deg
from search.data.datasets import load_test_set
from search.data.degraded_sets import make_degraded_sets
from search.errors import UserError


pytestmark = pytest.mark.usefixtures("one_thread")


def _sinusoid(frequency: float, size: int = 128, along: str = "x") -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64)
    wave = 0.5 + 0.25 * torch.cos(2 * math.pi * frequency * coords)
    image = wave.view(1, size).expand(size, size) if along == "x" else wave.view(size, 1).expand(size, size)
    return image[None].float().clone()


def _amplitude(image: torch.Tensor, frequency: float, along: str = "x", margin: int = 16) -> float:
    """Amplitude of the cosine at ``frequency`` in the interior (least squares)."""
    line = image[0].double()
    line = line.mean(0) if along == "x" else line.mean(1)
    coords = torch.arange(line.numel(), dtype=torch.float64)
    sl = slice(margin, line.numel() - margin)
    basis = torch.stack([torch.ones_like(coords), torch.cos(2 * math.pi * frequency * coords),
                         torch.sin(2 * math.pi * frequency * coords)], 1)[sl]
    coef = torch.linalg.lstsq(basis, line[sl, None]).solution[:, 0]
    return float(torch.hypot(coef[1], coef[2]))


# ------------------------------------------------------------------ blur
@pytest.mark.parametrize("sigma", [0.8, 1.5, 2.5])
def test_isotropic_blur_attenuates_by_gaussian_transfer(sigma):
    frequency = 0.1  # cycles per pixel
    image = _sinusoid(frequency)
    blurred = deg.filter2d(image, deg.gaussian_kernel(21, sigma))
    expected = math.exp(-2 * math.pi ** 2 * sigma ** 2 * frequency ** 2)
    assert _amplitude(blurred, frequency) / _amplitude(image, frequency) == pytest.approx(expected, rel=0.02)


def test_anisotropic_blur_follows_its_axes_and_rotation():
    frequency, sx, sy = 0.08, 2.0, 0.5
    response = {}
    for rotation in (0.0, math.pi / 2):
        kernel = deg.gaussian_kernel(21, sx, sy, rotation)
        for along in ("x", "y"):
            image = _sinusoid(frequency, along=along)
            out = deg.filter2d(image, kernel)
            response[rotation, along] = _amplitude(out, frequency, along) / _amplitude(image, frequency, along)
    gauss = lambda s: math.exp(-2 * math.pi ** 2 * s ** 2 * frequency ** 2)  # noqa: E731
    assert response[0.0, "x"] == pytest.approx(gauss(sx), rel=0.03)
    assert response[0.0, "y"] == pytest.approx(gauss(sy), rel=0.03)
    assert response[math.pi / 2, "x"] == pytest.approx(gauss(sy), rel=0.03)
    assert response[math.pi / 2, "y"] == pytest.approx(gauss(sx), rel=0.03)


def test_kernels_are_normalised_and_blur_keeps_flat_images():
    for kernel in (deg.gaussian_kernel(7, 0.2), deg.gaussian_kernel(21, 3.0, 1.0, 0.7),
                   deg.sinc_kernel(13, 1.5, pad_to=21)):
        assert kernel.sum() == pytest.approx(1.0)
    flat = torch.full((3, 20, 20), 0.3)
    assert torch.allclose(deg.filter2d(flat, deg.gaussian_kernel(21, 2.0)), flat, atol=1e-6)
    tiny = torch.rand(3, 5, 6)  # smaller than the kernel radius: replicate padding
    assert deg.filter2d(tiny, deg.gaussian_kernel(21, 2.0)).shape == tiny.shape


def test_sinc_passes_below_and_removes_above_cutoff():
    omega = math.pi / 2  # cut-off 0.25 cycles/pixel
    kernel = deg.sinc_kernel(21, omega)
    low, high = 0.1, 0.4
    passed = _amplitude(deg.filter2d(_sinusoid(low), kernel), low) / _amplitude(_sinusoid(low), low)
    removed = _amplitude(deg.filter2d(_sinusoid(high), kernel), high) / _amplitude(_sinusoid(high), high)
    assert passed > 0.9 and removed < 0.1


# ------------------------------------------------------------------ resize, noise, JPEG
@pytest.mark.parametrize("mode", deg.RESIZE_MODES)
def test_resize_modes_sizes_and_flat_images(mode):
    flat = torch.full((3, 40, 30), 0.6)
    for size in ((20, 15), (52, 39), (40, 30)):
        out = deg.resize(flat, size, mode)
        assert out.shape == (3, *size)
        assert torch.allclose(out, flat[:, :1, :1].expand_as(out), atol=1e-5)
    with pytest.raises(ValueError, match="resize mode"):
        deg.resize(flat, (10, 10), "nearest")


@pytest.mark.parametrize("sigma", [5.0, 20.0])
@pytest.mark.parametrize("gray", [False, True])
def test_gaussian_noise_sigma_measured_back(sigma, gray):
    image = torch.full((3, 96, 96), 0.5)
    noisy = deg.add_gaussian_noise(image, sigma, gray, np.random.default_rng(1))
    noise = (noisy - image) * 255.0
    assert float(noise.std()) == pytest.approx(sigma, rel=0.10)
    same_map = torch.allclose(noise[0], noise[1]) and torch.allclose(noise[1], noise[2])
    assert same_map is gray


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_poisson_noise_follows_shot_noise_variance(scale):
    # 256 grey levels -> Real-ESRGAN's photon count vals = 256 per unit intensity, so the
    # noise at intensity x has standard deviation scale * sqrt(x / 256).
    levels = torch.arange(256, dtype=torch.float32) / 255.0
    image = levels.repeat(3, 64, 1)  # 3 x 64 x 256
    noisy = deg.add_poisson_noise(image, scale, False, np.random.default_rng(2))
    noise = noisy - image
    bright = image > 0.5
    measured = float(noise[bright].std())
    expected = scale * math.sqrt(float(image[bright].mean()) / 256.0)
    assert measured == pytest.approx(expected, rel=0.10)


def _quality_from_tables(jpeg_bytes: bytes) -> int:
    """The libjpeg quality whose scaled standard luminance table Pillow wrote."""
    from PIL import Image

    base = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40,
                     57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35,
                     55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112,
                     100, 103, 99])  # ITU-T T.81 Annex K table K.1 (natural order)
    with Image.open(io.BytesIO(jpeg_bytes)) as image:
        table = np.array(image.quantization[0])
    zigzag = np.array([0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48,
                       41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15,
                       23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63])
    matches = []
    for quality in range(1, 101):
        factor = 5000 // quality if quality < 50 else 200 - 2 * quality
        scaled = np.clip((base * factor + 50) // 100, 1, 255)
        if np.array_equal(np.sort(scaled), np.sort(table)) and (
                np.array_equal(scaled, table) or np.array_equal(scaled[zigzag], table)):
            matches.append(quality)
    assert len(matches) >= 1, table
    return matches[0] if len(matches) == 1 else matches


@pytest.mark.parametrize("quality", [30, 50, 75, 95])
def test_jpeg_quality_round_trips_through_pillow(quality):
    from PIL import Image

    rng = np.random.default_rng(3)
    image = torch.from_numpy(rng.random((3, 48, 40)).astype(np.float32))
    out = deg.jpeg(image, quality)
    # Same as Pillow's own round trip of the 8-bit image at that quality ...
    array = (image.clamp(0, 1) * 255 + 0.5).floor().to(torch.uint8).numpy().transpose(1, 2, 0)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality)
    reference = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32) / 255.0
    assert np.array_equal(out.numpy().transpose(1, 2, 0), reference)
    # ... and the quantisation tables in that stream are libjpeg's for exactly this quality.
    found = _quality_from_tables(buffer.getvalue())
    assert found == quality or (isinstance(found, list) and quality in found)


def test_jpeg_error_falls_with_quality():
    rng = np.random.default_rng(4)
    smooth = torch.from_numpy(rng.random((3, 8, 8)).astype(np.float32))
    image = torch.nn.functional.interpolate(smooth[None], size=(64, 64), mode="bicubic",
                                            align_corners=False)[0].clamp(0, 1)
    errors = [float((deg.jpeg(image, q) - image).abs().mean()) for q in (30, 60, 95)]
    assert errors[0] > errors[1] > errors[2]


# ------------------------------------------------------------------ sampling + pipeline
def test_settings_come_from_the_data_file(tmp_path):
    settings = deg.load_settings()
    assert settings["source"].startswith("csjliang/DASR")
    assert deg.degree_probabilities(settings) == pytest.approx({"weak": 0.3, "standard": 0.3, "severe": 0.4})
    changed = yaml.safe_load(deg.SETTINGS_FILE.read_text())
    changed["degrees"]["weak"]["stages"][0]["blur_sigma"] = [5.0, 6.0]
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(changed))
    custom = deg.load_settings(path)
    draw = deg.sample_degradation(np.random.default_rng(0), "weak", settings=custom)
    assert 5.0 <= draw.stages[0].blur.sigma_x <= 6.0
    with pytest.raises(UserError, match="not found"):
        deg.load_settings(tmp_path / "missing.yaml")


def test_sampling_frequencies_and_ranges():
    settings = deg.load_settings()
    rng = np.random.default_rng(5)
    draws = [deg.sample_degradation(rng, settings=settings) for _ in range(3000)]
    counts = {d: sum(x.degree == d for x in draws) / len(draws) for d in deg.DEGREES}
    assert counts == pytest.approx({"weak": 0.3, "standard": 0.3, "severe": 0.4}, abs=0.03)
    for draw in draws:
        spec = settings["degrees"][draw.degree]
        assert len(draw.stages) == len(spec["stages"])
        for stage, stage_spec in zip(draw.stages, spec["stages"]):
            if stage.blur is not None:
                assert stage.blur.size % 2 == 1 and 7 <= stage.blur.size <= 21
                low, high = stage_spec["blur_sigma"]
                assert low <= stage.blur.sigma_x <= high and low <= stage.blur.sigma_y <= high
            low, high = stage_spec["jpeg_range"]
            assert low <= stage.jpeg_quality <= high
            low, high = stage_spec["resize_range"]
            assert low <= stage.resize_scale <= high
    severe = [d for d in draws if d.degree == "severe"]
    assert 0.7 < np.mean([d.sinc is not None for d in severe]) < 0.9  # final_sinc_prob 0.8
    assert 0.7 < np.mean([d.stages[1].blur is not None for d in severe]) < 0.9  # second blur 0.8
    assert 0.45 < np.mean([d.stages[0].noise_kind == "gaussian" for d in draws]) < 0.55
    assert all(d.sinc is None for d in draws if d.degree != "severe")


@pytest.mark.parametrize("degree", deg.DEGREES)
def test_pipeline_output_is_lr_sized_8bit_and_seeded(degree):
    hr = torch.rand(3, 48, 40, generator=torch.Generator().manual_seed(0))
    draw = deg.sample_degradation(np.random.default_rng(6), degree)
    lr = deg.apply_degradation(hr, draw)
    assert lr.shape == (3, 12, 10)
    assert float(lr.min()) >= 0 and float(lr.max()) <= 1
    assert torch.allclose(lr * 255, (lr * 255).round(), atol=1e-4)
    assert torch.equal(lr, deg.apply_degradation(hr, draw))               # same seed -> same LR
    assert not torch.equal(lr, deg.apply_degradation(hr, draw.with_seed(draw.seed + 1)))


# ------------------------------------------------------------------ the 33 numbers
def test_vector_layout_matches_dasr_groups():
    spans = sorted(deg.VECTOR_LAYOUT.values())
    assert spans[0][0] == 0 and spans[-1][1] == deg.VECTOR_SIZE == 33
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # contiguous, no overlap
    groups = {"kernel": (0, 10), "resize": (10, 18), "noise": (18, 26), "jpeg": (26, 33)}
    for name, (start, stop) in deg.VECTOR_LAYOUT.items():
        assert any(lo <= start and stop <= hi for lo, hi in groups.values()), name


@pytest.mark.parametrize("degree", deg.DEGREES)
def test_vector_encodes_and_decodes(degree):
    rng = np.random.default_rng(7)
    hr = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    for index in range(15):
        draw = deg.sample_degradation(rng, degree)
        vector = deg.encode(draw)
        assert vector.shape == (33,) and np.all(np.isfinite(vector))
        assert np.all((vector >= -0.5) & (vector <= 1.0 + 1e-9))
        back = deg.decode(vector, seed=draw.seed)
        assert len(back.stages) == len(draw.stages)
        for a, b in zip(draw.stages, back.stages):
            assert (a.blur is None) == (b.blur is None)
            if a.blur is not None:
                assert (a.blur.size, a.blur.kind) == (b.blur.size, b.blur.kind)
                assert np.allclose([a.blur.sigma_x, a.blur.sigma_y, a.blur.rotation],
                                   [b.blur.sigma_x, b.blur.sigma_y, b.blur.rotation])
            assert (a.resize_mode, a.noise_kind, a.noise_gray, a.jpeg_quality) == \
                   (b.resize_mode, b.noise_kind, b.noise_gray, b.jpeg_quality)
            assert a.resize_scale == pytest.approx(b.resize_scale)
            assert a.noise_strength == pytest.approx(b.noise_strength)
        assert (draw.final_mode, draw.final_order) == (back.final_mode, back.final_order)
        assert (draw.sinc is None) == (back.sinc is None)
        if draw.sinc is not None:
            assert draw.sinc[0] == back.sinc[0] and draw.sinc[1] == pytest.approx(back.sinc[1])
        np.testing.assert_allclose(deg.encode(back), vector, atol=1e-12)
        if index < 3:  # the decoded degradation is the same operation
            assert torch.equal(deg.apply_degradation(hr, back), deg.apply_degradation(hr, draw))


def test_decode_rejects_malformed_vectors():
    vector = deg.encode(deg.sample_degradation(np.random.default_rng(8), "weak"))
    with pytest.raises(UserError, match="33"):
        deg.decode(vector[:32])
    broken = vector.copy()
    broken[30:33] = 0  # no final resize mode
    with pytest.raises(UserError, match="one-hot"):
        deg.decode(broken)


def test_degrade_batch_and_sampler_are_reproducible():
    hr = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    lr1, v1 = deg.degrade_batch(hr, np.random.default_rng(9))
    lr2, v2 = deg.DegradationSampler(scale=4, seed=9)(hr)
    assert lr1.shape == (4, 3, 8, 8) and v1.shape == (4, 33)
    assert torch.equal(lr1, lr2) and torch.equal(v1, v2)


# ------------------------------------------------------------------ Level I/II/III sets
def test_level_sets_written_once_deterministic_and_readable(tiny_image_dir, tmp_path):
    sets = make_degraded_sets(tiny_image_dir, tmp_path / "a", scale=4, seed=3)
    assert list(sets) == ["bicubic", "I", "II", "III"]
    for level, test_set in sets.items():
        assert test_set.name == ("Tiny_bicubic" if level == "bicubic" else f"Tiny_Level{level}")
        manifest = json.loads((test_set.path / "manifest.json").read_text())
        assert manifest["seed"] == 3 and manifest["scale"] == 4 and len(manifest["images"]) == 4
        for image in test_set.images:
            lr_path = test_set.lr_path(image, 4)
            assert lr_path is not None
            from search.data.images import read_image

            hr, lr = read_image(image), read_image(lr_path)
            assert hr.ndim == 3 and lr.shape == (hr.shape[0] // 4, hr.shape[1] // 4, 3)
        if level != "bicubic":
            record = manifest["images"][0]
            assert record["degree"] == deg.level_degrees()[level]
            assert len(record["vector"]) == 33
    # reused, not rewritten
    lr_file = sets["III"].lr_path(sets["III"].images[0], 4)
    stamp = lr_file.stat().st_mtime_ns
    make_degraded_sets(tiny_image_dir, tmp_path / "a", scale=4, seed=3)
    assert lr_file.stat().st_mtime_ns == stamp
    # same seed elsewhere -> identical bytes; another seed -> different LR
    again = make_degraded_sets(tiny_image_dir, tmp_path / "b", scale=4, seed=3, levels=("III",))
    other = make_degraded_sets(tiny_image_dir, tmp_path / "c", scale=4, seed=4, levels=("III",))
    name = lr_file.name
    assert (again["III"].path / "LR_bicubic" / "X4" / name).read_bytes() == lr_file.read_bytes()
    assert (other["III"].path / "LR_bicubic" / "X4" / name).read_bytes() != lr_file.read_bytes()
    assert load_test_set(sets["I"].path).lr_root is not None


def test_level_sets_cli_errors_are_one_line(tmp_path, capsys):
    from search.data.degraded_sets import main

    with pytest.raises(SystemExit) as exc:
        main(["NoSuchSet", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
