"""Images and test sets: reading, layouts, name resolution, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from search.data import find_test_set, mod_crop, read_image
from search.errors import DataError


def test_read_image_modes(tmp_path):
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.bmp")
    Image.fromarray(np.dstack([rgb, np.full((4, 5), 7, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "palette.png")
    assert read_image(tmp_path / "rgb.png").shape == (4, 5, 3)
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), rgb)
    gray = read_image(tmp_path / "gray.bmp")
    assert gray.shape == (4, 5) and gray.dtype == np.uint8
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), rgb)
    assert read_image(tmp_path / "palette.png").shape == (4, 5, 3)


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    with pytest.raises(DataError, match="corrupt.png"):
        read_image(bad)


def test_mod_crop():
    image = np.zeros((13, 10, 3))
    assert mod_crop(image, 4).shape == (12, 8, 3)
    assert mod_crop(image, 1).shape == image.shape


def test_find_shipped_sets_by_name():
    set5 = find_test_set("Set5")
    assert set5.name == "Set5" and len(set5.images) == 5
    assert find_test_set("set14").name == "Set14"
    assert len(find_test_set("Set14").images) == 14


def test_find_by_path_and_data_root(tiny_image_dir, monkeypatch, tmp_path):
    by_path = find_test_set(str(tiny_image_dir))
    assert by_path.name == "Tiny" and len(by_path.images) == 4
    assert find_test_set("Tiny", data_root=tiny_image_dir.parent).path == tiny_image_dir
    monkeypatch.setenv("SR_DATA_ROOT", str(tiny_image_dir.parent))
    assert find_test_set("tiny").name == "Tiny"


def test_basicsr_layout(tmp_path):
    root = tmp_path / "Demo"
    (root / "HR").mkdir(parents=True)
    (root / "LR_bicubic" / "X2").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "HR" / "a.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "LR_bicubic" / "X2" / "ax2.png")
    test_set = find_test_set(str(root))
    assert test_set.name == "Demo" and [p.name for p in test_set.images] == ["a.png"]
    assert test_set.lr_path(test_set.images[0], 2).name == "ax2.png"
    assert test_set.lr_path(test_set.images[0], 3) is None
    assert find_test_set(str(root / "HR")).name == "Demo"


def test_empty_folder_and_unknown_name(tmp_path):
    empty = tmp_path / "Empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="Empty"):
        find_test_set(str(empty))
    with pytest.raises(DataError, match="NoSuchSet"):
        find_test_set("NoSuchSet", data_root=tmp_path)
    with pytest.raises(DataError, match="nowhere"):
        find_test_set(str(tmp_path / "nowhere"))
