"""ONNX export of every registered family, checked against torch with onnxruntime (CPU)."""

from __future__ import annotations

import pytest
import torch

from search.models import list_families
from search.models.registry import create_test_model
from search.profile.onnx_export import check_onnx, export_onnx


def small_model(family: str):
    return create_test_model(family)  # the family's declared test configuration (its model file)


@pytest.mark.parametrize("family", list_families())
def test_family_exports_and_matches_torch(family, tmp_path):
    torch.manual_seed(0)
    model = small_model(family).eval()
    info: dict = {}
    data = export_onnx(model, tmp_path / f"{family}.onnx", info=info)
    assert (tmp_path / f"{family}.onnx").stat().st_size == len(data) > 0
    check = check_onnx(model, data, lr_shape=tuple(info["sample_lr_shape"]))
    assert check["ok"], f"{family}: max |diff| {check['max_abs_diff']}"
    if info["dynamic"]:  # one file serves another input size too
        assert check_onnx(model, data, lr_shape=(17, 26))["ok"]


def test_cli_onnx(tmp_path, capsys):
    from search.profile.__main__ import main

    out = tmp_path / "m.onnx"
    main(["onnx", "--model", "eSR-TR_s2_K3_C2", "--out", str(out)])
    assert out.is_file() and "max |diff|" in capsys.readouterr().out
