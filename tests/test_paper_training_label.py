"""Paper tables say how each reproduced number was made; a trained model below bicubic is a smoke run."""

from __future__ import annotations

import json

from search.report.paper_tables import Inputs, bicubic_psnr, training_label


def test_a_model_below_bicubic_is_labelled_a_smoke_run():
    assert training_label(30, 26.24, 28.40) == "30 steps; SMOKE RUN: below bicubic (28.40 dB), not a result"


def test_a_model_above_bicubic_carries_only_its_steps():
    assert training_label(6000, 31.5, 28.40) == "6000 steps"
    assert training_label(None, 31.5, 28.40) == "trained"
    assert training_label(30, 26.0, None) == "30 steps"  # no reference: no verdict


def test_the_standard_protocol_reference_is_preferred(tmp_path):
    folder = tmp_path / "studies" / "bicubic"
    folder.mkdir(parents=True)
    (folder / "a_esr.json").write_text(json.dumps({"protocol": None, "psnr": {"Set5": {"4": 28.6, "2": 33.7}}}))
    (folder / "b_imdn.json").write_text(json.dumps({"protocol": "standard", "psnr": {"Set5": {"4": 28.7}}}))
    inputs = Inputs(root=tmp_path)
    assert bicubic_psnr(inputs, "Set5", 4) == 28.7  # the standard one, though the other is lower
    assert bicubic_psnr(inputs, "Set5", 2) == 33.7  # only the eSR-protocol file has x2
    assert bicubic_psnr(inputs, "Set14", 4) is None
