"""B100 / BSDS100: name lookup, the x3 crops (``B100_x3``), the eSR B100 evaluation, paper tables.

BSD100's originals are 481x321 (or 321x481). ``B100`` holds their 480x320 crop (the x2 and x4
mod-crop); 320 is not a multiple of 3, so ``B100_x3`` holds the 480x321 crop that the published
x3 numbers were computed on. The synthetic sets below mimic that with 49x33 "originals": B100 =
48x32, B100_x3 = 48x33 (top-left crops), so every expected size can be checked by hand.
"""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from search.data import find_test_set, read_image
from search.data.datasets import crop_extends
from search.data.protocols import get_protocol
from search.data.samples import prepare_sample
from search.paths import PUBLISHED_DIR, SHIPPED_DATA
from tests.conftest import needs_shared_weights


def _originals(count: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    # landscape 49 wide x 33 high, and one portrait 33 x 49
    shapes = [(33, 49, 3)] * (count - 1) + [(49, 33, 3)]
    return [rng.integers(0, 256, size=shape, dtype=np.uint8) for shape in shapes]


def _crop(image: np.ndarray, height_mod: int) -> np.ndarray:
    """Top-left crop: width to 48 (landscape) / height to 48 (portrait), the 33 side to 32 or 33."""
    if image.shape[0] == 33:   # landscape: 33 high
        return image[:height_mod, :48]
    return image[:48, :height_mod]


@pytest.fixture()
def b100_root(tmp_path):
    """``<root>/benchmarks/B100`` (48x32 crops) and ``B100_x3`` (48x33 crops) of three originals."""
    base = tmp_path / "root" / "benchmarks"
    (base / "B100").mkdir(parents=True)
    (base / "B100_x3").mkdir()
    for i, image in enumerate(_originals()):
        Image.fromarray(_crop(image, 32)).save(base / "B100" / f"{i:03d}.png")
        Image.fromarray(_crop(image, 33)).save(base / "B100_x3" / f"{i:03d}.png")
    return tmp_path / "root"


def _sizes(paths) -> list[tuple[int, int]]:
    return [Image.open(p).size for p in paths]  # (width, height)


# ----------------------------------------------------------------------------- lookup
def test_crop_extends_by_hand():
    assert crop_extends((480, 320), (480, 321), 3)       # BSD100: x2/x4 crops unchanged, x3 larger
    assert crop_extends((320, 480), (321, 480), 3)       # portrait
    assert not crop_extends((480, 320), (480, 320), 3)   # nothing to gain at x3
    assert not crop_extends((480, 320), (480, 324), 3)   # x4 would see 324 rows instead of 320
    assert not crop_extends((480, 320), (480, 322), 3)   # 322 is not a multiple of 3
    assert not crop_extends((480, 320), (480, 318), 3)   # smaller: not a crop of more
    assert not crop_extends((480, 320), None, 3)         # unreadable file


def test_b100_and_bsds100_resolve_under_any_data_root(b100_root, monkeypatch, tmp_path):
    for name in ("B100", "BSDS100", "bsd100", "b100"):
        test_set = find_test_set(name, data_root=b100_root)
        assert test_set.name == "B100" and test_set.path == b100_root / "benchmarks" / "B100"
        assert test_set.crops == b100_root / "benchmarks" / "B100_x3" and test_set.crops_scale == 3
    monkeypatch.setenv("SR_DATA_ROOT", str(b100_root))
    assert find_test_set("BSDS100").crops_scale == 3
    by_path = find_test_set(str(b100_root / "benchmarks" / "B100"))   # a path: same set, same crops
    assert by_path.name == "B100" and by_path.crops == b100_root / "benchmarks" / "B100_x3"
    # a set named BSDS100 with its own BSDS100_x3 folder
    other = tmp_path / "other"
    shutil.copytree(b100_root / "benchmarks" / "B100", other / "BSDS100")
    shutil.copytree(b100_root / "benchmarks" / "B100_x3", other / "BSDS100_x3")
    found = find_test_set("B100", data_root=other)
    assert found.name == "BSDS100" and found.crops == other / "BSDS100_x3"


def test_chosen_files_and_their_crops_at_x2_x3_x4(b100_root):
    """The set reads the 48x33 files; the protocols' top-left mod-crop gives 48x32 at x2/x4
    (exactly the B100 pixels) and 48x33 at x3 (B100 alone: 48x30)."""
    test_set = find_test_set("B100", data_root=b100_root)
    plain = find_test_set("B100", data_root=b100_root, scale_crops=False)
    assert plain.crops is None and [p.parent.name for p in plain.images] == ["B100"] * 3
    assert [p.parent.name for p in test_set.images] == ["B100_x3"] * 3
    assert _sizes(test_set.images) == [(48, 33), (48, 33), (33, 48)]
    assert _sizes(plain.images) == [(48, 32), (48, 32), (32, 48)]
    protocol = get_protocol("standard")
    expected = {2: [(32, 48), (32, 48), (48, 32)], 3: [(33, 48), (33, 48), (48, 33)],
                4: [(32, 48), (32, 48), (48, 32)]}
    expected_plain = {2: expected[2], 3: [(30, 48), (30, 48), (48, 30)], 4: expected[4]}
    for scale in (2, 3, 4):
        crops = [protocol.crop_hr(read_image(p), scale) for p in test_set.images]
        crops_plain = [protocol.crop_hr(read_image(p), scale) for p in plain.images]
        assert [c.shape[:2] for c in crops] == expected[scale]
        assert [c.shape[:2] for c in crops_plain] == expected_plain[scale]
        if scale != 3:
            for crop, crop_plain in zip(crops, crops_plain):
                np.testing.assert_array_equal(crop, crop_plain)


@pytest.mark.parametrize("protocol_name", ["standard", "esr"])
def test_prepared_samples_same_at_x2_x4_larger_at_x3(b100_root, protocol_name):
    protocol = get_protocol(protocol_name)
    test_set = find_test_set("B100", data_root=b100_root)
    plain = find_test_set("B100", data_root=b100_root, scale_crops=False)
    color = "gray" if protocol_name == "esr" else "rgb"
    for scale in (2, 4):
        for path, path_plain in zip(test_set.images, plain.images):
            sample = prepare_sample(test_set, path, scale, color, protocol)
            sample_plain = prepare_sample(plain, path_plain, scale, color, protocol)
            assert sample.lr.equal(sample_plain.lr) and sample.target.equal(sample_plain.target)
    sample = prepare_sample(test_set, test_set.images[0], 3, color, protocol)
    assert tuple(sample.target.shape) == (33, 48) and tuple(sample.lr.shape[-2:]) == (11, 16)
    sample_plain = prepare_sample(plain, plain.images[0], 3, color, protocol)
    assert tuple(sample_plain.target.shape) == (30, 48) and tuple(sample_plain.lr.shape[-2:]) == (10, 16)


def test_only_b100_mod_crops_at_x3_as_before(b100_root, tmp_path):
    """A data root with only B100 (no B100_x3): x3 mod-crops 48x32 to 48x30."""
    root = tmp_path / "only"
    shutil.copytree(b100_root / "benchmarks" / "B100", root / "B100")
    test_set = find_test_set("BSDS100", data_root=root)
    assert test_set.name == "B100" and test_set.crops is None
    assert [p.parent for p in test_set.images] == [root / "B100"] * 3
    sample = prepare_sample(test_set, test_set.images[0], 3, "rgb", get_protocol("standard"))
    assert tuple(sample.target.shape) == (30, 48)


def test_crop_that_does_not_extend_its_image_is_not_used(b100_root):
    """A B100_x3 file that is not the image plus at most the rows x3 needs: the B100 file is read."""
    crops = b100_root / "benchmarks" / "B100_x3"
    Image.fromarray(np.zeros((36, 48, 3), np.uint8)).save(crops / "000.png")   # 36 rows: x4 would change
    (crops / "001.png").unlink()                                                 # no crop for this one
    test_set = find_test_set("B100", data_root=b100_root)
    assert [p.parent.name for p in test_set.images] == ["B100", "B100", "B100_x3"]
    assert test_set.crops_scale == 3
    for path in list(crops.iterdir()):
        path.unlink()
    Image.fromarray(np.zeros((36, 48, 3), np.uint8)).save(crops / "000.png")
    assert find_test_set("B100", data_root=b100_root).crops is None            # none used: plain set


# ----------------------------------------------------------------------------- the shipped B100
_B100 = SHIPPED_DATA / "B100"
needs_b100 = pytest.mark.skipif(not (_B100.is_dir() and (SHIPPED_DATA / "B100_x3").is_dir()),
                                reason="data/B100 and data/B100_x3 (links to ../shared/data/benchmarks) not present")


@needs_b100
def test_shipped_b100_x2_reads_480x320_pixels_x3_480x321():
    test_set = find_test_set("B100")
    assert test_set.name == "B100" and len(test_set.images) == 100
    assert test_set.crops is not None and test_set.crops.name == "B100_x3"
    plain = find_test_set("B100", scale_crops=False)
    assert {s for s in _sizes(plain.images)} == {(480, 320), (320, 480)}
    assert {s for s in _sizes(test_set.images)} == {(480, 321), (321, 480)}
    protocol = get_protocol("esr")
    for path, path_plain in list(zip(test_set.images, plain.images))[::10]:
        image, image_plain = read_image(path), read_image(path_plain)
        for scale in (2, 4):
            np.testing.assert_array_equal(protocol.crop_hr(image, scale), image_plain)
        assert sorted(protocol.crop_hr(image, 3).shape[:2]) == [321, 480]
        assert sorted(protocol.crop_hr(image_plain, 3).shape[:2]) == [318, 480]


# ----------------------------------------------------------------------------- eSR B100 evaluation
def test_shown_models_are_the_esr_best_bsds100_rows(tmp_path):
    from search.experiments.esr_released_eval import load_published, shown_models
    from search.report import paper_tables

    shown = shown_models(load_published())
    assert len(shown) == 21   # 7 families x 3 scales
    assert "eSR-TM_s2_K7_C16" in shown and "FSRCNN_s2_D56_S12_M4" in shown
    inputs = paper_tables.Inputs(root=tmp_path)
    paper_tables.build_tables(tmp_path / "out", ["esr"], inputs)
    best = pd.read_csv(tmp_path / "out" / "esr_best.csv")
    assert sorted(best[best.test_set == "BSDS100"].reported_best_model) == shown


def test_write_csv_takes_b100_from_the_published_bsds100_columns(tmp_path):
    from search.experiments.esr_released_eval import load_published, write_csv

    published = load_published()
    pub = published["Bicubic_s2"]
    rows = write_csv(tmp_path / "b100.csv", {"Bicubic_s2": {"B100": {"psnr": 29.5, "ssim": 0.84, "images": 100}}},
                     published, sets=("B100",))
    assert rows[0]["published_psnr_B100"] == round(float(pub["psnr_BSDS100"]), 4)
    assert rows[0]["delta_psnr_B100"] == round(29.5 - float(pub["psnr_BSDS100"]), 4)
    assert "psnr_Set5" not in rows[0]


@needs_shared_weights
def test_fast_grid_on_b100_uses_the_x3_crops(b100_root):
    from search.evaluate import evaluate_model
    from search.experiments.esr_released_eval import build, describe_set, fast_grid

    test_set = find_test_set("B100", data_root=b100_root)
    plain = find_test_set("B100", data_root=b100_root, scale_crops=False)
    results = fast_grid(["Bicubic_s2", "Bicubic_s3"], [test_set], workers=1, progress=False)
    assert set(results) == {"Bicubic_s2", "Bicubic_s3"} and results["Bicubic_s2"]["B100"]["images"] == 3
    # x2: the same pixels as B100 itself; x3: a different (larger) crop
    same = evaluate_model(build("Bicubic_s2"), [plain], protocol="esr", progress=False)["B100"]
    assert results["Bicubic_s2"]["B100"]["psnr"] == pytest.approx(same["psnr"], abs=1e-9)
    other = evaluate_model(build("Bicubic_s3"), [plain], protocol="esr", progress=False)["B100"]
    assert results["Bicubic_s3"]["B100"]["psnr"] != pytest.approx(other["psnr"], abs=1e-6)
    assert "x3 the crops in" in describe_set(test_set) and "mod-crops" in describe_set(plain)


# ----------------------------------------------------------------------------- paper tables
def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_paper_tables_fill_b100_and_keep_urban_manga_missing(tmp_path):
    from search.report import paper_tables

    published = pd.read_csv(PUBLISHED_DIR / "esr_tests.csv")
    top = published.loc[published[(published.family == "eSR-TM") & (published.s == 2)].psnr_BSDS100.idxmax()]
    _write(tmp_path / "reports" / "esr_released_eval_b100.csv", [
        {"model": top.model, "family": "eSR-TM", "scale": 2, "psnr_B100": round(top.psnr_BSDS100 + 0.01, 4),
         "delta_psnr_B100": 0.01},
        {"model": "Bicubic_s3", "family": "Bicubic", "scale": 3, "psnr_B100": 26.6, "delta_psnr_B100": -0.04}])
    _write(tmp_path / "studies" / "released" / "imdn.csv", [
        {"model": "IMDN_s3_B6_F64_R0.25", "family": "IMDN", "scale": 3, "psnr_Set5": 34.36, "ssim_Set5": 0.927,
         "psnr_B100": 29.1, "ssim_B100": 0.8046}])
    inputs = paper_tables.Inputs(root=tmp_path)
    out = tmp_path / "out"
    paper_tables.build_tables(out, ["esr", "imdn"], inputs)

    best = pd.read_csv(out / "esr_best.csv", keep_default_na=False)
    row = best[(best.family == "eSR-TM") & (best.scale == 2) & (best.test_set == "BSDS100")].iloc[0]
    assert row.reported_best_model == top.model
    assert float(row.reproduced_psnr) == pytest.approx(top.psnr_BSDS100 + 0.01, abs=1e-4)
    assert float(row.difference) == pytest.approx(0.01, abs=1e-4)
    assert "esr_released_eval_b100.csv" in row.reproduced_source
    assert row.reproduced_best_model == ""            # 1 of 48 eSR-TM x2 models evaluated: no "best"
    bicubic = best[(best.family == "Bicubic") & (best.scale == 3) & (best.test_set == "BSDS100")].iloc[0]
    assert bicubic.reproduced_best_model == "Bicubic_s3"   # the only model of its family: complete
    for test_set in ("Urban100", "Manga109"):
        assert (best[best.test_set == test_set].reproduced_psnr == "").all()
    text = (out / "esr_best.md").read_text()
    assert "(Urban100, Manga109) are missing" in text and "(BSDS100, Urban100" not in text

    released = pd.read_csv(out / "esr_released.csv")
    b100_rows = released[released.test_set == "BSDS100"]
    assert list(zip(b100_rows.family, b100_rows.scale)) == [("Bicubic", 3)]   # complete groups only

    imdn = pd.read_csv(out / "imdn.csv", keep_default_na=False)
    b100 = imdn[(imdn.scale == 3) & (imdn.test_set == "B100") & (imdn.metric == "psnr")].iloc[0]
    assert float(b100.reported) == 29.09 and float(b100.reproduced) == 29.1
    assert float(b100.difference) == pytest.approx(0.01)
    urban = imdn[(imdn.scale == 3) & (imdn.test_set == "Urban100")].iloc[0]
    assert urban.reproduced == ""


@needs_shared_weights
def test_missing_b100_is_one_line_naming_the_way_out(monkeypatch, capsys, tmp_path):
    from search.errors import DataError
    from search.experiments import esr_released_eval

    real = esr_released_eval.find_test_set

    def no_b100(name, *args, **kwargs):
        if name == "B100":
            raise DataError("test set 'B100' not found (searched data roots: x)")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(esr_released_eval, "find_test_set", no_b100)
    with pytest.raises(SystemExit) as exit_info:
        esr_released_eval.main(["--limit", "1", "--out", str(tmp_path / "e.csv")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "B100" in err[0] and "--b100 none" in err[0]
    assert not (tmp_path / "e.csv").exists()
