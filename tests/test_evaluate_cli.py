"""``python -m search.evaluate``: JSON output, batch mode, and one-line errors (exit 2)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from search.evaluate.cli import main
from search.paths import REPO_ROOT
from tests.conftest import needs_shared_weights


def _run_main(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _exit_2(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main(list(argv) + ["--no-progress"])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_error_after_progress_bar_ends_on_its_own_line(capsys, tmp_path):
    folder = tmp_path / "Broken"
    folder.mkdir()
    (folder / "bad.png").write_bytes(b"not an image")
    with pytest.raises(SystemExit):
        main(["--model", "bicubic", "--scale", "2", "--data", str(folder)])
    err = capsys.readouterr().err
    last = [part for part in err.replace("\r", "\n").splitlines() if part.strip()][-1]
    assert last.startswith("error: ") and "bad.png" in last


def test_bicubic_json(capsys):
    code, out, _ = _run_main(capsys, "--model", "bicubic", "--scale", "2", "--data", "Set5", "--json",
                             "--no-progress")
    assert code == 0
    payload = json.loads(out)
    assert set(payload) == {"Set5"}
    assert payload["Set5"]["images"] == 5
    assert abs(payload["Set5"]["psnr"] - 33.66) < 0.01
    assert 0.92 < payload["Set5"]["ssim"] < 0.94


def test_folder_path_key_is_folder_name(capsys, tiny_image_dir):
    code, out, _ = _run_main(capsys, "--model", "bicubic", "--scale", "2", "--data", str(tiny_image_dir),
                             "--json", "--no-progress")
    assert json.loads(out)["Tiny"]["images"] == 4


@needs_shared_weights
def test_released_model_default_weights_and_batch_csv(capsys, tmp_path):
    code, out, _ = _run_main(capsys, "--model", "eSR-MAX_s2_K3_C1", "--data", "Set5", "--json", "--no-progress")
    single = json.loads(out)["Set5"]
    out_csv = tmp_path / "batch.csv"
    code, _, _ = _run_main(capsys, "--model", "eSR-MAX_s2_K3_C1[0-2]", "--data", "Set5", "--csv", str(out_csv),
                           "--no-progress")
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["model"] for r in rows] == [f"eSR-MAX_s2_K3_C1{i}" for i in range(3)]
    assert all(r["protocol"] == "esr" and r["published_psnr_Set5"] for r in rows)
    ids = tmp_path / "ids.txt"
    ids.write_text("# one id per line\neSR-MAX_s2_K3_C1\n")
    code, _, _ = _run_main(capsys, "--models-from", str(ids), "--data", "Set5", "--csv", str(out_csv),
                           "--no-progress")
    row = next(csv.DictReader(out_csv.open()))
    assert float(row["psnr_Set5"]) == pytest.approx(single["psnr"], abs=1e-5)


def test_unknown_model_id(capsys):
    line = _exit_2(capsys, "--model", "eSR-XYZ_s2_K3_C4", "--data", "Set5")
    assert "eSR-XYZ" in line


def test_missing_data_folder(capsys, tmp_path):
    line = _exit_2(capsys, "--model", "bicubic", "--scale", "2", "--data", str(tmp_path / "missing"))
    assert "missing" in line


def test_unknown_set_name(capsys):
    line = _exit_2(capsys, "--model", "bicubic", "--scale", "2", "--data", "NoSuchSet")
    assert "NoSuchSet" in line


def test_empty_folder(capsys, tmp_path):
    (tmp_path / "EmptySet").mkdir()
    line = _exit_2(capsys, "--model", "bicubic", "--scale", "2", "--data", str(tmp_path / "EmptySet"))
    assert "EmptySet" in line


def test_corrupt_image(capsys, tmp_path):
    folder = tmp_path / "Broken"
    folder.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "good.png")
    (folder / "bad.png").write_bytes(b"not an image at all")
    line = _exit_2(capsys, "--model", "bicubic", "--scale", "2", "--data", str(folder))
    assert "bad.png" in line


def test_image_deleted_after_listing(capsys, tmp_path, monkeypatch):
    from search.data import datasets

    folder = tmp_path / "Gone"
    folder.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(folder / "a.png")
    real = datasets._list_images
    monkeypatch.setattr(datasets, "_list_images", lambda f: real(f) + [f / "vanished.png"])
    line = _exit_2(capsys, "--model", "bicubic", "--scale", "2", "--data", str(folder))
    assert "vanished.png" in line


def test_weights_that_do_not_fit(capsys, tmp_path):
    from search.models import create_model

    other = create_model("eSR-MAX_s2_K5_C2")
    path = tmp_path / "other.pth"
    torch.save(other.state_dict(), path)
    line = _exit_2(capsys, "--model", "eSR-MAX_s2_K3_C4", "--weights", str(path), "--data", "Set5")
    assert "other.pth" in line and "eSR-MAX_s2_K3_C4" in line
    line = _exit_2(capsys, "--model", "eSR-MAX_s2_K3_C4", "--weights", str(tmp_path / "nofile.pth"))
    assert "nofile.pth" in line


def test_module_entry_point_exit_code():
    proc = subprocess.run(
        [sys.executable, "-m", "search.evaluate", "--model", "NoFamily_s2", "--data", "Set5"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "NoFamily" in proc.stderr
    assert "Traceback" not in proc.stderr
