"""``python -m search.evaluate`` with some test sets missing or bad (issue 21): every set that
can be read is evaluated and reported, each failed set gives its own ``error:`` line, exit 2."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from search.evaluate.cli import main
from search.paths import REPO_ROOT, SHIPPED_DATA
from tests.conftest import needs_shared_weights

BICUBIC = ["--model", "bicubic", "--scale", "2"]
SET5_PSNR = 33.66  # MATLAB bicubic x2, standard protocol (as in test_evaluate_cli)


def _cli(*argv, cwd=REPO_ROOT):
    proc = subprocess.run([sys.executable, "-m", "search.evaluate", *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return proc, lines


def _broken_set(tmp_path):
    folder = tmp_path / "Broken"
    folder.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(folder / "good.png")
    (folder / "bad.png").write_bytes(b"not an image at all")
    return folder


def test_good_set_reported_and_missing_set_one_error_line(tmp_path):
    missing = tmp_path / "Urban100"
    proc, lines = _cli(*BICUBIC, "--data", "Set5", "--data", str(missing), "--no-progress")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    # the good set's result is printed
    [result] = [line for line in proc.stdout.splitlines() if " Set5: PSNR " in line]
    assert float(result.split("PSNR ")[1].split()[0]) == pytest.approx(SET5_PSNR, abs=0.01)
    assert "(5 images)" in result
    # one error line naming the missing set, and where Set5 was found
    errors = [line for line in lines if line.startswith("error: ")]
    assert errors == [f"error: {missing}: test set folder not found"], proc.stderr
    assert f"Set5: 5 images from {SHIPPED_DATA / 'Set5'}" in lines
    assert len(lines) == 2, proc.stderr


def test_json_and_csv_keep_the_sets_that_worked(tmp_path):
    broken = _broken_set(tmp_path)
    out_csv = tmp_path / "out.csv"
    proc, lines = _cli(*BICUBIC, "--data", "Set5", "--data", str(broken), "--data", "NoSuchSet",
                       "--json", "--csv", str(out_csv), "--no-progress")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    payload = json.loads(proc.stdout)
    assert set(payload) == {"Set5"} and payload["Set5"]["images"] == 5
    assert payload["Set5"]["psnr"] == pytest.approx(SET5_PSNR, abs=0.01)
    [row] = list(csv.DictReader(out_csv.open()))
    assert float(row["psnr_Set5"]) == pytest.approx(payload["Set5"]["psnr"], abs=1e-5)
    assert "psnr_Broken" not in row
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 2, proc.stderr
    assert errors[0].startswith(f"error: {broken / 'bad.png'}: ")
    assert errors[1].startswith("error: NoSuchSet: ") and "not found" in errors[1]
    # errors come last, after what worked
    assert lines[-2:] == errors


def test_data_root_fallback_is_visible(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc, lines = _cli(*BICUBIC, "--data", "Set5", "--data-root", str(empty), "--json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["Set5"]["images"] == 5
    assert lines == [f"Set5: 5 images from {SHIPPED_DATA / 'Set5'} (not under --data-root {empty})"]


def test_every_set_missing_is_one_line_each(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(BICUBIC + ["--data", str(tmp_path / "A"), "--data", "NoSuchSet", "--no-progress"])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert out == ""
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines)
    assert str(tmp_path / "A") in lines[0] and "NoSuchSet" in lines[1]


def test_bad_model_still_stops_the_run_after_the_set_errors(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["--model", "eSR-XYZ_s2_K3_C4", "--data", "Set5", "--data", str(tmp_path / "A"),
              "--no-progress"])
    assert exc.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 2 and str(tmp_path / "A") in lines[0] and "eSR-XYZ" in lines[1]


@needs_shared_weights
def test_batch_reports_a_bad_set_once(capsys, tmp_path):
    broken = _broken_set(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["--model", "eSR-MAX_s2_K3_C1[0-1]", "--data", "Set5", "--data", str(broken), "--json",
              "--no-progress"])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    payload = json.loads(out)
    assert set(payload) == {"eSR-MAX_s2_K3_C10", "eSR-MAX_s2_K3_C11"}
    assert all(set(result) == {"Set5"} for result in payload.values())
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "bad.png" in errors[0]
    assert "Traceback" not in err
