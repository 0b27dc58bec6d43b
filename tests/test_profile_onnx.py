"""ONNX export of every registered family, checked against torch with onnxruntime (CPU)."""

from __future__ import annotations

import pytest
import torch

from search.models import create_model, get_family, list_families
from search.profile.onnx_export import check_onnx, export_onnx

# A small configuration per family keeps the test fast; families not listed use defaults.
SMALL = {
    "eSR-MAX": dict(scale=2, K=3, C=2), "eSR-TM": dict(scale=3, K=3, C=2),
    "eSR-TR": dict(scale=4, K=3, C=2), "eSR-CNN": dict(scale=2, C=2, D=1, S=3),
    "ESPCN": dict(scale=3, D=1, S=3), "FSRCNN": dict(scale=3, D=6, S=3, M=1),
    "Bicubic": dict(scale=3), "IMDN": dict(scale=2, B=1, F=8), "IMDN-AS": dict(scale=2, B=1, F=8),
    "IMDN-RTC": dict(scale=2, B=1, F=8), "SMSR": dict(scale=2, n_feats=16, n_modules=1, n_layers=2),
    "AdaDSR": dict(scale=2, D=2, F=8), "AdaDSR-plain": dict(scale=2, D=2, F=8),
    "DASR": dict(scale=2, N=2, F=8, B=1),
}


def small_model(family: str):
    kwargs = dict(SMALL.get(family, {}))
    scale = kwargs.pop("scale", get_family(family).defaults.get("scale", 2))
    try:
        return create_model(family=family, scale=scale, **kwargs)
    except Exception as exc:
        pytest.fail(f"cannot build a small {family}: add it to SMALL in this test ({exc})")


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
