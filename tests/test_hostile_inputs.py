"""Hostile inputs to ``python -m search.evaluate``: one ``error: <file>: ...`` line, exit 2.

Decompression bombs, images too small to score, NaN/inf/sparse weights, weights made for
another model id, a malicious pickle (no torch warnings before the error), and identical
images (infinite PSNR) in ``--json`` output.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from search.data.images import DEFAULT_MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS_ENV, read_image
from search.errors import DataError, WeightsError
from search.evaluate.cli import main
from search.jsonio import dumps_json
from search.evaluate.metrics import SSIM_WINDOW
from search.data.protocols import get_protocol, list_protocols
from search.models import create_model, load_weights
from search.models.weights import load_state_dict, save_weights
from search.paths import REPO_ROOT

MODEL = "FSRCNN_s2_D56_S12_M4"  # tiny, has the eSR name check; weights made here, not released


def _exit_2(capsys, *argv) -> str:
    """Run the CLI; it must exit 2 with exactly one ``error:`` line on stderr."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv) + ["--no-progress"])
    assert exc.value.code == 2
    _, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _header_only_png(path: Path, width: int, height: int) -> Path:
    """A valid PNG signature + IHDR declaring ``width x height`` (8-bit gray), an IDAT of a
    few bytes and IEND: a few dozen bytes on disk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def _image_set(tmp_path: Path, name: str, array: np.ndarray) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    Image.fromarray(array).save(folder / "img.png")
    return folder


def _weights_file(path: Path, model_id: str = MODEL, **overrides) -> Path:
    torch.manual_seed(0)
    state = create_model(model_id).state_dict()
    state.update(overrides)
    torch.save(state, path)
    return path


# --------------------------------------------------------------------------- 1. bombs
@pytest.mark.parametrize("side", [12000, 20000])  # 144 MP (Pillow warns), 400 MP (Pillow raises)
def test_decompression_bomb_refused_from_the_header(capsys, tmp_path, monkeypatch, side):
    png = _header_only_png(tmp_path / "Bomb" / "bomb.png", side, side)
    assert png.stat().st_size < 200
    monkeypatch.delenv(MAX_IMAGE_PIXELS_ENV, raising=False)

    def no_resize(*args, **kwargs):  # the limit is checked before decoding or resizing
        raise AssertionError("imresize called on a decompression bomb")

    monkeypatch.setattr("search.data.protocols.imresize", no_resize)
    before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _exit_2(capsys, "--model", "bicubic", "--scale", "2", "--data", str(png.parent))
    assert str(png) in line and f"{side}x{side}" in line and str(DEFAULT_MAX_IMAGE_PIXELS) in line
    assert "DecompressionBomb" not in line
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    assert Image.MAX_IMAGE_PIXELS == before


def test_pixel_limit_env_override_and_pillow_limit_restored(tmp_path, monkeypatch):
    folder = _image_set(tmp_path, "Small", np.zeros((40, 50, 3), np.uint8))
    before = Image.MAX_IMAGE_PIXELS
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "1999")
    with pytest.raises(DataError, match=r"img\.png: image is 50x40 .* limit of 1999 pixels"):
        read_image(folder / "img.png")
    assert Image.MAX_IMAGE_PIXELS == before  # Pillow's own limit is back after an error
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "2000")
    assert read_image(folder / "img.png").shape == (40, 50, 3)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "0")  # 0 = no limit
    assert read_image(folder / "img.png").shape == (40, 50, 3)
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "lots")
    with pytest.raises(DataError, match=MAX_IMAGE_PIXELS_ENV):
        read_image(folder / "img.png")
    assert Image.MAX_IMAGE_PIXELS == before


def test_bad_pixel_limit_env_is_one_line(capsys, tmp_path, monkeypatch):
    folder = _image_set(tmp_path, "Small", np.zeros((40, 40, 3), np.uint8))
    monkeypatch.setenv(MAX_IMAGE_PIXELS_ENV, "-5")
    line = _exit_2(capsys, "--model", "bicubic", "--scale", "2", "--data", str(folder))
    assert line.startswith(f"error: {MAX_IMAGE_PIXELS_ENV}: ")


# --------------------------------------------------------------------------- 2. tiny images
def _min_side(scale: int) -> int:
    """From the code's constants: mod-crop to ``scale``, shave ``border`` per side, then the
    SSIM window must fit."""
    border = get_protocol("standard").border(scale)
    side = scale
    while side - 2 * border < SSIM_WINDOW:
        side += scale
    return side


def test_min_image_side_follows_the_constants():
    assert {s: _min_side(s) for s in (2, 3, 4)} == {2: 16, 3: 18, 4: 20}
    for name in list_protocols():
        for scale in (1, 2, 3, 4, 8):
            assert get_protocol(name).min_image_side(scale) == _min_side(scale)


@pytest.mark.parametrize("width,height", [(1, 1), (2, 2), (5, 5), (4000, 1), (1, 300), (15, 40)])
def test_images_smaller_than_the_ssim_window(capsys, tmp_path, width, height):
    folder = _image_set(tmp_path, "Tiny", np.full((height, width, 3), 128, np.uint8))
    line = _exit_2(capsys, "--model", "bicubic", "--scale", "2", "--data", str(folder))
    assert str(folder / "img.png") in line
    assert f"{width}x{height}" in line and "minimum 16x16 for scale 2" in line


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_smallest_scorable_image_is_scored_and_one_less_is_not(capsys, tmp_path, scale):
    side = _min_side(scale)
    rng = np.random.default_rng(scale)
    ok = _image_set(tmp_path, "Edge", rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
    assert main(["--model", "bicubic", "--scale", str(scale), "--data", str(ok), "--json",
                 "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["Edge"]["images"] == 1
    small = _image_set(tmp_path, "Below", rng.integers(0, 256, (side, side - 1, 3), dtype=np.uint8))
    line = _exit_2(capsys, "--model", "bicubic", "--scale", str(scale), "--data", str(small))
    assert f"minimum {side}x{side} for scale {scale}" in line


# --------------------------------------------------------------------------- 3. weights
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused(capsys, tmp_path, value):
    torch.manual_seed(0)
    weight = create_model(MODEL).state_dict()["net.14.weight"].clone()
    weight.view(-1)[3] = value
    path = _weights_file(tmp_path / "bad.pt", **{"net.14.weight": weight})
    line = _exit_2(capsys, "--model", MODEL, "--weights", str(path), "--data", "Set5", "--json")
    assert str(path) in line and "'net.14.weight'" in line and "non-finite" in line
    assert ("1 NaN" if math.isnan(value) else "1 infinite") in line


def test_sparse_tensor_weights_are_refused(capsys, tmp_path):
    torch.manual_seed(0)
    dense = create_model(MODEL).state_dict()["net.14.weight"]
    path = _weights_file(tmp_path / "sparse.pt", **{"net.14.weight": dense.to_sparse()})
    line = _exit_2(capsys, "--model", MODEL, "--weights", str(path), "--data", "Set5")
    assert str(path) in line and "'net.14.weight'" in line and "sparse" in line
    with pytest.raises(WeightsError, match="sparse"):
        load_state_dict(path)


def test_weights_saved_for_another_model_id_are_refused(capsys, tmp_path):
    torch.manual_seed(0)
    other = create_model("FSRCNN_s3_D56_S12_M4")  # same keys and shapes as the x2 model
    path = save_weights(other, tmp_path / "x3.pt")
    line = _exit_2(capsys, "--model", MODEL, "--weights", str(path), "--data", "Set5")
    assert str(path) in line and "FSRCNN_s3_D56_S12_M4" in line and MODEL in line
    # the right id loads, and the metadata round-trips
    model = load_weights(create_model("FSRCNN_s3_D56_S12_M4"), path)
    assert all(torch.equal(v, other.state_dict()[k]) for k, v in model.state_dict().items())


def test_trial_weights_checked_against_their_train_log(capsys, tmp_path):
    trial = tmp_path / "trial"
    trial.mkdir()
    path = _weights_file(trial / "weights.pt", "FSRCNN_s3_D56_S12_M4")
    (trial / "train_log.json").write_text(json.dumps({"model_id": "FSRCNN_s3_D56_S12_M4"}))
    line = _exit_2(capsys, "--model", MODEL, "--weights", str(path), "--data", "Set5")
    assert str(path) in line and "train_log.json" in line and "FSRCNN_s3_D56_S12_M4" in line
    load_weights(create_model("FSRCNN_s3_D56_S12_M4"), path)  # its own id loads


def test_malicious_pickle_gives_exactly_one_line(tmp_path):
    """A subprocess, so that torch's warnings would reach the real stderr."""
    path = tmp_path / "evil.pt"
    # pickle protocol 4 (torch.load warns about any but 2) calling os.system: weights_only
    # refuses it (the command would be the harmless ``false`` anyway)
    path.write_bytes(pickle.dumps({"net.0.weight": _Evil()}, protocol=4))
    proc = subprocess.run(
        [sys.executable, "-m", "search.evaluate", "--model", MODEL, "--weights", str(path),
         "--data", "Set5", "--no-progress"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: cannot read weights"), proc.stderr
    assert "Warning" not in proc.stderr and "Traceback" not in proc.stderr


class _Evil:
    def __reduce__(self):
        return (os.system, ("false",))


# --------------------------------------------------------------------------- 4. JSON
def _strict_json(text: str):
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_identical_image_gives_valid_json(capsys, tmp_path):
    folder = _image_set(tmp_path, "Black", np.zeros((32, 32, 3), np.uint8))
    assert main(["--model", "bicubic", "--scale", "2", "--data", str(folder), "--json", "--no-progress"]) == 0
    payload = _strict_json(capsys.readouterr().out)
    assert payload == {"Black": {"psnr": None, "ssim": 1.0, "images": 1}}


def test_json_writer_is_strict():
    text = dumps_json({"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5], "c": np.float64("nan")})
    assert _strict_json(text) == {"a": None, "b": [None, None, 1.5], "c": None}
