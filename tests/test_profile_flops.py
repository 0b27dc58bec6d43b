"""FLOPs (MACs) and parameters: analytic counts of the eSR families, IMDN's published 40.9G."""

from __future__ import annotations

import pytest

from search.models import create_model, list_families
from search.profile import count_flops, count_params, flops_breakdown, lr_shape_for
from search.profile.predictor import graph_features
from search.profile.trace import summarize, trace_ops

LR = (12, 16)
PIXELS = LR[0] * LR[1]


def esr_analytic(family: str, s: int, K: int = 0, C: int = 0, D: int = 0, S: int = 0, M: int = 0) -> int:
    """MACs per LR pixel derived by hand from each architecture (see search/profile/flops.py)."""
    if family == "eSR-MAX":   # conv; max is a comparison
        return s * s * C * K * K
    if family == "eSR-TM":    # conv to 2 s^2 C; softmax division + value*weight per HR channel
        return s * s * C * (2 * K * K + 2)
    if family == "eSR-TR":    # conv to 3 s^2 C; q*k, softmax division, value*weight
        return s * s * C * (3 * K * K + 3)
    if family == "eSR-CNN":   # 5x5 1->D, 3x3 D->S, 3x3 S->2s^2C; key*key, softmax, value*weight
        return 25 * D + 9 * D * S + 9 * S * 2 * s * s * C + 3 * s * s * C
    if family == "ESPCN":     # 5x5 1->D, 3x3 D->S (1->S if D=0), 3x3 S->s^2; tanh/sigmoid free
        return (25 * D + 9 * D * S if D else 9 * S) + 9 * S * s * s
    if family == "FSRCNN":    # PReLU = 1 multiply per element; deconv counted per input pixel
        return 25 * D + D + D * S + S + M * (9 * S * S + S) + S * D + D + 81 * D
    raise KeyError(family)


CASES = [
    ("eSR-MAX", 2, dict(K=3, C=1)), ("eSR-MAX", 3, dict(K=5, C=7)), ("eSR-MAX", 4, dict(K=7, C=16)),
    ("eSR-TM", 2, dict(K=3, C=4)), ("eSR-TM", 4, dict(K=7, C=9)),
    ("eSR-TR", 3, dict(K=5, C=2)), ("eSR-TR", 2, dict(K=7, C=12)),
    ("eSR-CNN", 2, dict(C=6, D=3, S=15)), ("eSR-CNN", 4, dict(C=2, D=9, S=3)),
    ("ESPCN", 2, dict(D=0, S=15)), ("ESPCN", 3, dict(D=64, S=32)),
    ("FSRCNN", 2, dict(D=56, S=12, M=4)), ("FSRCNN", 3, dict(D=6, S=1, M=1)),
]


@pytest.mark.parametrize("family,scale,hp", CASES, ids=[f"{f}_s{s}_{hp}" for f, s, hp in CASES])
def test_esr_flops_match_analytic_count(family, scale, hp):
    model = create_model(family=family, scale=scale, **hp)
    expected = esr_analytic(family, scale, **hp) * PIXELS
    assert count_flops(model, LR) == expected
    # the dispatch trace used for predictor features agrees with fvcore
    assert summarize(trace_ops(model, LR))["macs"] == expected


def test_esr_max_params_and_full_hd_default():
    model = create_model("eSR-MAX_s2_K3_C4")
    assert count_params(model) == 2 * 2 * 4 * 3 * 3
    lr = lr_shape_for(model, (1080, 1920))
    assert lr == (540, 960)
    assert graph_features(model, (1080, 1920))["macs"] * 1e9 == pytest.approx(
        esr_analytic("eSR-MAX", 2, K=3, C=4) * 540 * 960)


def test_bicubic_transposed_conv_counted_per_input_pixel():
    model = create_model("Bicubic_s3")
    taps = model.net.weight.shape[-1]
    assert count_flops(model, LR) == taps * taps * PIXELS
    assert count_params(model) == taps * taps


def test_no_operator_left_uncounted():
    """Every operator of the eSR families has a handle (nothing silently skipped by fvcore)."""
    for model_id in ("eSR-TR_s2_K3_C2", "eSR-CNN_s2_C2_D1_S3", "ESPCN_s2_D1_S3", "FSRCNN_s2_D6_S1_M1"):
        breakdown = flops_breakdown(create_model(model_id), LR)
        assert breakdown["backend"] == "fvcore"
        assert breakdown["unsupported"] == {}, model_id


def test_count_macs_hook_is_preferred():
    model = create_model("eSR-MAX_s2_K3_C1")
    model.count_macs = lambda lr_shape: 12345  # a sparse model's own count
    assert count_flops(model, LR) == 12345


@pytest.mark.skipif("IMDN" not in list_families(), reason="IMDN family not registered yet")
def test_imdn_x4_matches_published_mult_adds_at_720p():
    """IMDN x4: 40.9G mult-adds for a 1280x720 output (SwinIR's table, published/REPORTED.md)."""
    model = create_model("IMDN_s4")
    macs = count_flops(model, lr_shape_for(model, (720, 1280)))
    assert macs == pytest.approx(40.9e9, rel=0.02)
