"""Measured latency, device profiles, profile_model labels (measured vs predicted)."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from search.errors import UserError
from search.models import create_model
from search.profile import api, get_device, list_devices, measure_latency, profile_model
from search.profile.devices import _profile_from_file
from search.profile.predictor import PREDICTOR_DIR


def test_measure_latency_reports_median_spread_and_restores_threads():
    model = create_model("eSR-TM_s2_K3_C2")
    before = torch.get_num_threads()
    result = measure_latency(model, (16, 24), warmup=1, repeats=5, threads=1)
    assert torch.get_num_threads() == before
    assert result["latency_ms"] > 0 and result["latency_iqr_ms"] >= 0 and result["latency_std_ms"] >= 0
    assert result["latency_min_ms"] <= result["latency_ms"]
    assert result["latency_repeats"] == 5 and result["latency_threads"] == 1
    assert result["latency_torch_device"] == "cpu"


def test_fp16_only_on_cuda():
    result = measure_latency(create_model("eSR-MAX_s2_K3_C1"), (8, 8), dtype="float16", repeats=1)
    assert result["latency_dtype"] == "float32"  # CPU: fp16 is not what an fp16 device does


def test_unavailable_cuda_is_a_user_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(UserError, match="CUDA is not available"):
        measure_latency(create_model("eSR-MAX_s2_K3_C1"), (8, 8), device="cuda")


def test_device_profiles_and_aliases():
    names = {p.name for p in list_devices()}
    assert {"cpu", "cuda", "jetson", "rpi", "maxq"} <= names
    assert get_device("agx").name == "jetson"
    assert get_device("Xavier").name == "jetson"
    assert get_device("pi").name == "rpi"
    jetson = get_device("jetson")
    assert jetson.ray_resource == "jetson" and jetson.published_column == "speed_AGX"
    assert jetson.dtype == "float16" and jetson.output_size == (1080, 1920)
    assert get_device("rpi").published_column == "speed_RPI"
    assert get_device("maxq").published_column == "speed_MaxQ"


def test_unknown_device_lists_known_ones():
    with pytest.raises(UserError) as info:
        get_device("tpu9000")
    message = str(info.value)
    assert "tpu9000" in message and "jetson" in message and "rpi" in message and "\n" not in message


def test_bad_profile_file_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ncolour: red\n")
    with pytest.raises(UserError, match="bad.yaml.*colour"):
        _profile_from_file(bad)


def test_profile_model_cpu_is_measured():
    model = create_model("eSR-MAX_s2_K3_C2")
    result = profile_model(model, "cpu", output_size=(32, 48))
    assert result["latency_source"] == "measured:cpu"
    assert result["latency_cv_within_10pct"] is None
    assert result["flops"] == 2 * 2 * 2 * 9 * 16 * 24 and result["params"] == 72
    assert result["output_size"] == [32, 48] and result["lr_size"] == [16, 24]
    assert result["latency_ms"] > 0 and result["latency_iqr_ms"] is not None


@pytest.mark.skipif(not (PREDICTOR_DIR / "jetson.json").is_file(), reason="no stored jetson predictor")
def test_unreachable_device_is_predicted_with_cv_error_and_warns_once(monkeypatch):
    monkeypatch.setattr(api, "_WARNED", set())
    model = create_model("eSR-TM_s2_K3_C4")
    with pytest.warns(api.PredictedLatencyWarning, match="predicted"):
        result = profile_model(model, "agx")
    assert result["latency_source"] == "predicted:jetson"
    assert 0 < result["latency_cv_within_10pct"] <= 1
    assert result["latency_extrapolation"] is False
    assert result["flops"] == 4 * 4 * (2 * 9 + 2) * 540 * 960
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second call must not warn again
        again = profile_model(model, "jetson")
    assert again["latency_ms"] == result["latency_ms"]


def test_cannot_force_measuring_a_remote_gpu_here():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(UserError, match="cannot measure"):
        profile_model(create_model("eSR-MAX_s2_K3_C1"), "maxq", measure=True, output_size=(8, 8))


def test_cli_profile_json_and_unknown_device(capsys):
    from search.profile.__main__ import main

    main(["profile", "--model", "eSR-MAX_s2_K3_C1", "--device", "cpu", "--output-size", "32x32", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["latency_source"] == "measured:cpu" and result["flops"] == 4 * 9 * 256
    with pytest.raises(SystemExit) as info:
        main(["profile", "--model", "eSR-MAX_s2_K3_C1", "--device", "tpu9000"])
    assert info.value.code == 2
    assert "unknown device" in capsys.readouterr().err
