"""Old gray AdaDSR depth tiles are re-drawn as figures with a colour bar (docs: reports a researcher reads)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from search.experiments.adadsr_depth_study import redraw_depth_maps


def test_gray_tiles_become_figures_once(tmp_path):
    gray = np.full((16, 20), 128, dtype=np.uint8)  # 128 / 255 * 8 = 4.02 blocks everywhere
    Image.fromarray(gray).save(tmp_path / "baby_d4.png")
    Image.fromarray(gray).convert("RGB").save(tmp_path / "notes.png")  # not a depth tile: left alone
    assert redraw_depth_maps(tmp_path, 8) == 1
    with Image.open(tmp_path / "baby_d4.png") as figure:
        assert figure.mode in ("RGB", "RGBA") and figure.size[0] > 200  # a figure, not the 20x16 tile
    assert redraw_depth_maps(tmp_path, 8) == 0  # already a figure
