"""Adding a model family takes two files: its model file and its space file.

A toy family is written to a temporary folder (a model file that registers it, a space file
that names the model file under ``model_files:``) and searched with the documented command,
``python -m search.run``, through Ray Tune; nothing in the repository is touched.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap

import pytest

from search.paths import REPO_ROOT

TOY_MODEL = '''
"""A toy family for the two-file test: one 3x3 conv to s^2 * 3 channels, pixel shuffle."""
from torch import nn

from search.models import SRModel, register_family


class Toy(SRModel):
    def __init__(self, scale, C):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, C, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(C, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale))
        self.up = nn.Upsample(scale_factor=scale, mode="nearest")

    def forward(self, x):
        return self.up(x) + self.body(x)


@register_family("Toy", id_fields=("C",), test_config={"scale": 2, "C": 4},
                 budget_overrides={"smoke": {"steps": 12}})
def toy(scale, C):
    """Toy: nearest-neighbour upscaling plus a two-conv residual."""
    return Toy(scale, C)
'''

TOY_SPACE = """
name: toy
description: the two-file family test
model_files: [toy_model.py]
scales: [2]
fixed:
  budget: smoke
  train_sets: [T91]
  test_sets: [Set5]
  objectives: [psnr_Set5:max, params:min]
families:
  Toy:
    hparams:
      C: [4, 8]
"""


def _run(args, cwd):
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_family_is_its_model_file_and_its_space_file(tmp_path):
    (tmp_path / "toy_model.py").write_text(TOY_MODEL)
    (tmp_path / "toy.yaml").write_text(textwrap.dedent(TOY_SPACE))
    before = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True).stdout

    # run from another folder: the space finds its model file relative to itself
    done = _run(["search.run", str(tmp_path / "toy.yaml"), "--device", "cpu", "--sampler", "grid",
                 "--seed", "0", "--quiet", "--out", str(tmp_path / "study")], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(tmp_path / "study" / "trials.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["model_id"] for r in rows) == ["Toy_s2_C4", "Toy_s2_C8"]
    for row in rows:
        assert row["status"] == "complete", row["error"]
        assert row["family"] == "Toy"
        assert int(row["steps"]) == 12  # the family's own budget change reached the trainer
        assert float(row["psnr_Set5"]) > 20  # nearest-neighbour alone scores ~30 dB on Set5 x2
        # 3x3 conv 3->C + 3x3 conv C->12, with biases
        c = 4 if row["model_id"].endswith("C4") else 8
        assert int(row["params"]) == (27 * c + c) + (9 * c * 12 + 12)

    after = subprocess.run(["git", "status", "--porcelain"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
    assert after == before  # no file of the repository was needed, or touched


def test_a_broken_model_file_is_one_line_naming_it(tmp_path):
    (tmp_path / "toy_model.py").write_text("import torch\nthis is not python\n")
    (tmp_path / "toy.yaml").write_text(textwrap.dedent(TOY_SPACE))
    done = _run(["search.run", str(tmp_path / "toy.yaml"), "--dry-run"], cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "toy_model.py" in lines[0] and "line 2" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_model_file_is_named(tmp_path):
    (tmp_path / "toy.yaml").write_text(textwrap.dedent(TOY_SPACE))
    done = _run(["search.run", str(tmp_path / "toy.yaml"), "--dry-run"], cwd=tmp_path)
    assert done.returncode == 2
    assert "model_files" in done.stderr and "toy_model.py" in done.stderr and "not found" in done.stderr
