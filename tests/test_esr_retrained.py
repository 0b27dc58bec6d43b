"""Retrained-vs-published report (search/report/esr_retrained.py) and the least-squares C=1
yardstick (search/experiments/esr_linear_bound.py). Expected figures are computed by hand
from the deltas written into the fixtures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from search.data.images import read_image, write_image
from search.data.protocols import get_protocol
from search.data.training import NeighbourhoodBank
from search.experiments.esr_linear_bound import least_squares_filter
from search.paths import PUBLISHED_DIR, SHIPPED_DATA
from search.report import esr_retrained

PUBLISHED = pd.read_csv(PUBLISHED_DIR / "esr_tests.csv").set_index("model")["psnr_Set14"]
COLUMNS = ["trial", "config_id", "model_id", "family", "scale", "status", "K", "C", "psnr_Set14", "params", "flops"]


def write_study(folder, rows):
    folder.mkdir(parents=True)
    table = []
    for number, (model_id, delta, status) in enumerate(rows):
        family, scale, kernel, channels = model_id.split("_")[0], int(model_id.split("_s")[1][0]), 3, 1
        if family != "Bicubic":
            kernel, channels = int(model_id.split("_K")[1].split("_")[0]), int(model_id.split("_C")[1])
        table.append([number, model_id, model_id, family, scale, status, kernel, channels,
                      PUBLISHED[model_id] + delta, 10 * (number + 1), 1000 * (number + 1)])
    pd.DataFrame(table, columns=COLUMNS).to_csv(folder / "trials.csv", index=False)
    (folder / "study.json").write_text(json.dumps({"options": {"budget": "quick"}}))


def test_figures_per_scale_family_and_verdict(tmp_path):
    # x2: deltas +0.05, -0.10, +0.40, +0.20 (one failed trial and the Bicubic row are not counted)
    write_study(tmp_path / "x2", [("eSR-MAX_s2_K3_C2", 0.05, "complete"), ("eSR-MAX_s2_K5_C2", -0.10, "complete"),
                                  ("eSR-TR_s2_K3_C1", 0.40, "complete"), ("eSR-TM_s2_K3_C4", 0.20, "complete"),
                                  ("eSR-TM_s2_K7_C4", 9.0, "failed"), ("Bicubic_s2", 0.0, "complete")])
    # x3: deltas 0.0, +0.1, -0.2
    write_study(tmp_path / "x3", [("eSR-MAX_s3_K3_C2", 0.0, "complete"), ("eSR-TR_s3_K3_C2", 0.1, "complete"),
                                  ("eSR-TM_s3_K5_C3", -0.2, "complete")])
    released = tmp_path / "released.csv"
    pd.DataFrame({"model": ["eSR-MAX_s2_K3_C2"], "psnr_Set14": [30.0]}).to_csv(released, index=False)
    result = esr_retrained.write_report([tmp_path / "x2", tmp_path / "x3"], tmp_path / "out", released)

    x2, x3 = result["scales"]["x2"], result["scales"]["x3"]
    assert x2["trials"] == 4 and x3["trials"] == 3
    assert x2["median_delta_db"] == pytest.approx(0.125, abs=1e-6)      # median(-0.1, 0.05, 0.2, 0.4)
    assert x2["median_abs_delta_db"] == pytest.approx(0.15, abs=1e-6)   # median(0.05, 0.1, 0.2, 0.4)
    assert x2["max_abs_delta_db"] == pytest.approx(0.4, abs=1e-6)
    assert x2["within_0.1_db"] == pytest.approx(0.5) and x2["within_0.3_db"] == pytest.approx(0.75)
    assert x2["meets_goal"] is False                                     # 75 % < 85 % within 0.3 dB
    assert x3["median_abs_delta_db"] == pytest.approx(0.1, abs=1e-6) and x3["meets_goal"] is True
    assert result["families"]["eSR-MAX x2"]["median_delta_db"] == pytest.approx(-0.025, abs=1e-6)
    assert result["by_C"]["eSR-TR C1"]["trials"] == 1
    table = pd.read_csv(tmp_path / "out" / "retrained.csv")
    assert "Bicubic_s2" in set(table["model"]) and "eSR-TM_s2_K7_C4" not in set(table["model"])
    assert table.set_index("model").loc["eSR-MAX_s2_K3_C2", "released"] == pytest.approx(30.0)
    text = (tmp_path / "out" / "retrained.md").read_text()
    assert "| x2 | 4 | 0.150 | 75% | **no** |" in text and (tmp_path / "out" / "retrained.png").is_file()


def test_least_squares_filter_is_the_normal_equations_optimum(tmp_path):
    folder = tmp_path / "Tiny"
    folder.mkdir()
    for name in ("t1.png", "t2.png"):
        write_image(folder / name, read_image(SHIPPED_DATA / "T91" / name)[:40, :36])
    model = least_squares_filter(2, 3, (folder,))
    bank = NeighbourhoodBank((folder,), scale=2, kernel=3, gray_recipe=get_protocol("esr"), augment=False)
    weights = model.filter.weight.detach().double().reshape(4, 9).numpy()
    features, targets = bank.features.astype(np.float64), bank.targets.astype(np.float64)
    residual = features @ weights.T - targets
    # first-order optimality: the residual is orthogonal to every tap
    assert np.abs(features.T @ residual).max() < 1e-4 * len(features)
    # and any perturbation raises the squared error
    rng = np.random.default_rng(0)
    best = (residual**2).sum()
    for _ in range(3):
        moved = weights + 1e-3 * rng.standard_normal(weights.shape)
        assert ((features @ moved.T - targets) ** 2).sum() > best
    # an eSR-MAX with C=1 is that linear filter: its forward equals the filter responses
    image = torch.rand(1, 1, 5, 4)
    out = model(image)[0, 0].detach().double().numpy()
    padded = np.pad(image[0, 0].double().numpy(), 1)
    expected = padded[1:4, 1:4].ravel() @ weights[:, :].T  # LR pixel (1, 1) -> its 2 x 2 block
    np.testing.assert_allclose(out[2:4, 2:4].ravel(), expected, atol=1e-5)
