"""Space files: schema errors, grid enumeration, canonical ids, seeded sampling."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap

import pytest

from search.errors import SpaceError
from search.paths import PUBLISHED_DIR, REPO_ROOT
from search.space import load_space
from search.study.runner import DefineByRun, enqueue_grid, grid_order
from search.study.samplers import SAMPLERS, make_sampler

ESR_SPACE = REPO_ROOT / "spaces" / "esr.yaml"


def write_space(tmp_path, text: str, name: str = "space.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# ---------------------------------------------------------------- the published eSR grid

def test_esr_space_enumerates_exactly_the_published_ids():
    configs = load_space(ESR_SPACE).enumerate()
    with open(PUBLISHED_DIR / "esr_tests.csv", newline="") as handle:
        published = [row["model"] for row in csv.DictReader(handle)]
    ids = [c["model_id"] for c in configs]
    assert len(ids) == len(set(ids)) == 1185
    assert set(ids) == set(published)
    assert all(c["config_id"] == c["model_id"] for c in configs)
    per_family = {}
    for c in configs:
        per_family[c["family"]] = per_family.get(c["family"], 0) + 1
    assert per_family == {"Bicubic": 3, "eSR-MAX": 144, "eSR-TM": 144, "eSR-TR": 144,
                          "eSR-CNN": 300, "ESPCN": 300, "FSRCNN": 150}


def test_esr_space_fixed_settings():
    space = load_space(ESR_SPACE)
    assert space.name == "esr"
    assert [str(o) for o in space.fixed.objectives] == ["psnr_Set14:max", "latency_ms:min"]
    assert space.fixed.test_sets == ["Set5", "Set14"] and space.fixed.train_sets == ["T91"]


# ---------------------------------------------------------------- enumeration and ids

def test_union_of_subgrids_ranges_and_dedup(tmp_path):
    path = write_space(tmp_path, """
        scales: [2, 4]
        families:
          ESPCN:
            scales: [3]
            grid:
              - {D: [1, 2], S: {low: 3, high: 9, step: 3}}
              - {D: [2, 8], S: [6]}
              - {D: [1], S: [6]}            # duplicate of the first sub-grid's D1_S6
          eSR-TM:
            hparams: {K: 3, C: {choices: [1, 2]}}
        """)
    ids = [c["config_id"] for c in load_space(path).enumerate()]
    assert ids == ["ESPCN_s3_D1_S3", "ESPCN_s3_D1_S6", "ESPCN_s3_D1_S9", "ESPCN_s3_D2_S3",
                   "ESPCN_s3_D2_S6", "ESPCN_s3_D2_S9", "ESPCN_s3_D8_S6",
                   "eSR-TM_s2_K3_C1", "eSR-TM_s2_K3_C2", "eSR-TM_s4_K3_C1", "eSR-TM_s4_K3_C2"]


def test_smallest_configurations_take_every_hyper_parameter_at_its_low_end(tmp_path):
    path = write_space(tmp_path, """
        scales: [2, 4]
        families:
          FSRCNN: {hparams: {D: [56, 12], S: {low: 3, high: 9}, M: [4, 1]}}
          ESPCN: {scales: [3], grid: [{D: [5, 2], S: [9]}, {D: [1], S: [6]}]}
        """)
    ids = [c["config_id"] for c in load_space(path).smallest_configurations()]
    # the lowest number of a list (not its first entry), a range's low, the first sub-grid;
    # scale by scale, families in file order
    assert ids == ["FSRCNN_s2_D12_S3_M1", "ESPCN_s3_D2_S9", "FSRCNN_s4_D12_S3_M1"]


def test_ids_of_non_id_hparams_and_typed_objects(tmp_path):
    path = write_space(tmp_path, """
        scales: [2]
        families:
          AdaDSR:
            hparams: {D: [4], F: [16], lam: {low: 0.005, high: 0.015, step: 0.005}}
          SMSR:
            hparams:
              n_feats: [16]
              tau_schedule:
                - {type: linear, initial: 1.0, final: 0.1}
                - {type: cosine, final: 0.1, initial: 1.0}
        """)
    configs = load_space(path).enumerate()
    ids = [c["config_id"] for c in configs]
    assert ids == [
        "AdaDSR_s2_D4_F16+lam=0.005", "AdaDSR_s2_D4_F16+lam=0.01", "AdaDSR_s2_D4_F16+lam=0.015",
        "SMSR_s2+n_feats=16+tau_schedule=linear(final=0.1,initial=1)",
        "SMSR_s2+n_feats=16+tau_schedule=cosine(final=0.1,initial=1)",
    ]
    assert configs[0]["model_id"] == "AdaDSR_s2_D4_F16"
    assert configs[3]["tau_schedule"] == {"type": "linear", "initial": 1.0, "final": 0.1}


def test_imdn_constraint_skip_and_reject(tmp_path):
    base = """
        scales: [2]
        families:
          IMDN:
            hparams: {B: {low: 2, high: 4, step: 2}, F: [48, 50], R: [0.25, 0.5]}
            constraints:
              - expr: F * R == int(F * R)
                message: distilled channels F*R must be whole
                on_violation: ACTION
        """
    skipped = load_space(write_space(tmp_path, base.replace("ACTION", "skip"), "skip.yaml")).enumerate()
    assert [c["config_id"] for c in skipped] == [
        "IMDN_s2_B2_F48_R0.25", "IMDN_s2_B2_F48_R0.5", "IMDN_s2_B2_F50_R0.5",
        "IMDN_s2_B4_F48_R0.25", "IMDN_s2_B4_F48_R0.5", "IMDN_s2_B4_F50_R0.5",
    ]
    with pytest.raises(SpaceError) as info:
        load_space(write_space(tmp_path, base.replace("ACTION", "error"), "reject.yaml"))
    message = str(info.value)
    assert "reject.yaml" in message and "families.IMDN.constraints[0]" in message
    assert "IMDN_s2_B2_F50_R0.25" in message and "must be whole" in message


def test_float_range_without_step_is_searchable_not_enumerable(tmp_path):
    path = write_space(tmp_path, """
        scales: [2]
        families:
          AdaDSR: {hparams: {lam: {low: 0.001, high: 0.1, log: true}}}
        """)
    space = load_space(path)
    with pytest.raises(SpaceError, match=r"families\.AdaDSR\.lam: a float range without step"):
        space.enumerate()
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    config = DefineByRun(space)(study.ask())
    assert 0.001 <= config["trial_config"]["lam"] <= 0.1


# ---------------------------------------------------------------- malformed files

MALFORMED = [
    ("bad_yaml", "families: [eSR-MAX\n", "invalid YAML: line", ""),
    ("empty_file", "", "empty space file", ""),
    ("not_a_mapping", "- eSR-MAX\n", "expected a mapping", ""),
    ("unknown_top_key", "famlies: {Bicubic: {}}\nscales: [2]\n", "famlies: unknown key", ""),
    ("no_families", "scales: [2]\n", "families: missing", ""),
    ("empty_families", "scales: [2]\nfamilies: {}\n", "families: no families given", ""),
    ("unknown_family", "scales: [2]\nfamilies: {eSR-FOO: {}}\n", "families.eSR-FOO: unknown model family", ""),
    ("unknown_family_key", "scales: [2]\nfamilies: {eSR-MAX: {hparms: {K: [3]}}}\n",
     "families.eSR-MAX.hparms: unknown key", ""),
    ("unknown_hparam", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: [1], k: [2]}}}\n",
     "families.eSR-MAX.hparams.k: unknown hyper-parameter", "known: C, K"),
    ("missing_hparam", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3]}}}\n",
     "families.eSR-MAX.hparams: eSR-MAX needs C", ""),
    ("empty_range", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: {low: 5, high: 3}}}}\n",
     "families.eSR-MAX.hparams.C: empty range: low 5 > high 3", ""),
    ("empty_choices", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [], C: [1]}}}\n",
     "families.eSR-MAX.hparams.K: empty list of choices", ""),
    ("duplicate_choice", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3, 3], C: [1]}}}\n",
     "families.eSR-MAX.hparams.K[1]: duplicate choice 3", ""),
    ("range_wrong_type", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: {low: one, high: 3}}}}\n",
     "families.eSR-MAX.hparams.C.low: expected a number", ""),
    ("yaml_float_as_text", "scales: [2]\nfamilies: {AdaDSR: {hparams: {lam: {low: 1e-4, high: 0.1}}}}\n",
     "families.AdaDSR.hparams.lam.low: expected a number", "write 1.0e-4"),
    ("range_missing_high", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: {low: 1}}}}\n",
     "families.eSR-MAX.hparams.C.high: missing (required: the upper end of the range", ""),
    ("range_unknown_key", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: {low: 1, high: 3, setp: 1}}}}\n",
     "families.eSR-MAX.hparams.C.setp: unknown key", ""),
    ("log_range_from_zero", "scales: [2]\nfamilies: {AdaDSR: {hparams: {lam: {low: 0.0, high: 0.1, log: true}}}}\n",
     "families.AdaDSR.hparams.lam: a log range needs low > 0", ""),
    ("negative_step", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: {low: 1, high: 3, step: -1}}}}\n",
     "families.eSR-MAX.hparams.C.step: step must be positive", ""),
    ("scales_wrong_type", "scales: two\nfamilies: {Bicubic: {}}\n", "scales: expected a non-empty list", ""),
    ("scale_not_positive", "scales: [2, 0]\nfamilies: {Bicubic: {}}\n", "scales[1]: a scale must be a positive integer", ""),
    ("no_scales", "families: {Bicubic: {}}\n", "families.Bicubic: no scales", ""),
    ("reserved_name", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: [1], scale: [2]}}}\n",
     "families.eSR-MAX.hparams.scale: 'scale' is set by the space itself", "use scales:"),
    ("choice_is_a_list_of_lists", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [[3]], C: [1]}}}\n",
     "families.eSR-MAX.hparams.K[0]: expected a number, text, true/false", ""),
    ("object_without_type", "scales: [2]\nfamilies: {SMSR: {hparams: {tau_schedule: [{initial: 1.0}]}}}\n",
     "families.SMSR.hparams.tau_schedule[0].type: missing (required: the object's type name", ""),
    ("grid_not_a_list", "scales: [2]\nfamilies: {ESPCN: {grid: {D: [1], S: [3]}}}\n",
     "families.ESPCN.grid: expected a non-empty list of sub-grids", ""),
    ("grid_repeats_shared", "scales: [2]\nfamilies: {ESPCN: {hparams: {D: [1]}, grid: [{D: [2], S: [3]}]}}\n",
     "families.ESPCN.grid[0].D: already set in hparams:", ""),
    ("constraint_unknown_name", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: [1]}, constraints: [Q > 1]}}\n",
     "families.eSR-MAX.constraints[0].expr: unknown name 'Q'", ""),
    ("constraint_code", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: [1]}, constraints: [\"K.__class__\"]}}\n",
     "families.eSR-MAX.constraints[0].expr: Attribute is not allowed", ""),
    ("constraint_call", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: [1]}, constraints: [\"open(K)\"]}}\n",
     "families.eSR-MAX.constraints[0].expr: only", ""),
    ("constraint_bad_action", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: [1]}, constraints: [{expr: K > 1, on_violation: drop}]}}\n",
     "families.eSR-MAX.constraints[0].on_violation: expected error or skip", ""),
    ("constraint_rejects_all", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: [1, 2]}, constraints: [{expr: C > 5, on_violation: skip}]}}\n",
     "families.eSR-MAX: no configuration satisfies the constraints", ""),
    ("constraint_division_by_zero", "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: [0, 1]}, constraints: [K / C > 1]}}\n",
     "families.eSR-MAX.constraints[0].expr: cannot evaluate for eSR-MAX_s2_K3_C0", "ZeroDivisionError"),
    ("fixed_unknown_key", "scales: [2]\nfamilies: {Bicubic: {}}\nfixed: {budgett: smoke}\n", "fixed.budgett: unknown key", ""),
    ("fixed_test_sets_type", "scales: [2]\nfamilies: {Bicubic: {}}\nfixed: {test_sets: 5}\n",
     "fixed.test_sets: expected a non-empty list of names", ""),
    ("objective_unknown_metric", "scales: [2]\nfamilies: {Bicubic: {}}\nfixed: {test_sets: [Set5], objectives: [psnr_Set14:max]}\n",
     "fixed.objectives: unknown objective metric 'psnr_Set14'", "psnr_Set5"),
    ("objective_no_direction", "scales: [2]\nfamilies: {Bicubic: {}}\nfixed: {objectives: [params]}\n",
     "fixed.objectives: objective 'params' needs a direction", ""),
    ("seed_negative", "scales: [2]\nfamilies: {Bicubic: {}}\nfixed: {seed: -1}\n", "fixed.seed: expected a non-negative integer", ""),
    ("name_with_space", "name: my space\nscales: [2]\nfamilies: {Bicubic: {}}\n", "name: expected a short name", ""),
]


@pytest.mark.parametrize("case,text,expected,extra", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_space_gives_one_line_naming_file_key_problem(tmp_path, case, text, expected, extra):
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    with pytest.raises(SpaceError) as info:
        load_space(path)
    message = " ".join(str(info.value).split())
    assert message.startswith(f"{path}: "), message
    assert expected in message, message
    assert extra in message, message
    assert "\n" not in str(info.value).strip() or "invalid YAML" in message


def test_missing_space_file(tmp_path):
    with pytest.raises(SpaceError, match="space file not found"):
        load_space(tmp_path / "nope.yaml")


def test_cli_malformed_space_exit_2_without_traceback(tmp_path):
    path = write_space(tmp_path, "scales: [2]\nfamilies: {eSR-MAX: {hparams: {K: [3], C: {low: 5, high: 3}}}}\n", "bad.yaml")
    proc = subprocess.run([sys.executable, "-m", "search.run", str(path), "--dry-run"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("error: ") and "bad.yaml" in lines[0]
    assert "families.eSR-MAX.hparams.C: empty range" in lines[0]


# ---------------------------------------------------------------- dry run

def test_dry_run_lists_the_published_grid(tmp_path):
    from search.run import main

    out = tmp_path / "configs.csv"
    assert main([str(ESR_SPACE), "--dry-run", "--out", str(out)]) == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(PUBLISHED_DIR / "esr_tests.csv", newline="") as handle:
        published = sorted(row["model"] for row in csv.DictReader(handle))
    assert sorted(r["model_id"] for r in rows) == published
    assert rows[0].keys() >= {"model_id", "config_id", "family", "scale", "K", "C", "D", "S", "M"}


# ---------------------------------------------------------------- seeded sampling

SAMPLING_SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
from tests.test_space import sample_ids
print(json.dumps({{s: sample_ids(s, 7) for s in {samplers!r}}}))
"""


def sample_ids(sampler: str, seed: int, n: int = 12) -> list[str]:
    """Ask the study's sampler for ``n`` configurations; a made-up but deterministic 'result'."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(ESR_SPACE)
    define = DefineByRun(space)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make_sampler(sampler, seed, space))
    if sampler == "grid":
        enqueue_grid(study, space, grid_order([c["config_id"] for c in space.enumerate()], seed))
    sampled = []
    for _ in range(n):
        trial = study.ask()
        config = define(trial)["trial_config"]
        sampled.append(config["config_id"])
        digits = sum(int(ch) for ch in config["config_id"] if ch.isdigit())
        study.tell(trial, [float(digits % 7), float(len(config["config_id"]))])
    return sampled


def test_same_seed_same_configs_also_in_a_second_process():
    here = {s: sample_ids(s, 7) for s in SAMPLERS}
    for sampler, ids in here.items():
        assert len(ids) == 12 and ids == sample_ids(sampler, 7), sampler
        assert ids != sample_ids(sampler, 8), f"{sampler}: the seed has no effect"
    assert len(set(here["grid"])) == 12  # grid: no configuration twice
    script = SAMPLING_SCRIPT.format(root=str(REPO_ROOT), samplers=list(SAMPLERS))
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == here


def test_sibling_families_share_a_hyper_parameter_declared_with_the_same_domain():
    """eSR-MAX/TM/TR's K and C are one Optuna parameter each; eSR-CNN's C (other values) is not.

    A trial that switches family between siblings then keeps its kernel size and width, so
    crossover and mutation move between neighbouring configurations.
    """
    import optuna

    space = load_space(ESR_SPACE)
    assert [space.param_name(f, "K") for f in ("eSR-MAX", "eSR-TM", "eSR-TR")] == ["K"] * 3
    assert [space.param_name(f, "C") for f in ("eSR-MAX", "eSR-TM", "eSR-TR")] == ["C"] * 3
    assert space.param_name("eSR-CNN", "C") == "eSR-CNN.C"
    assert space.param_name("FSRCNN", "M") == "FSRCNN.M"  # declared by one family only
    assert space.param_name("ESPCN", "D", 1) == "ESPCN.g1.D"

    params = {}
    for family in ("eSR-TM", "eSR-MAX", "eSR-CNN"):
        trial = optuna.trial.FixedTrial({"family": family, "scale": 4, "K": 5, "C": 3,
                                         "eSR-CNN.C": 4, "eSR-CNN.D": 3, "eSR-CNN.S": 6})
        config = space.suggest(trial)
        params[family] = config["config_id"]
    assert params == {"eSR-TM": "eSR-TM_s4_K5_C3", "eSR-MAX": "eSR-MAX_s4_K5_C3",
                      "eSR-CNN": "eSR-CNN_s4_C4_D3_S6"}


def test_with_scales_keeps_each_familys_share_of_the_grid():
    """--scales 2: the eSR space's x2 part is the published x2 grid (1185 / 3 = 395 models)."""
    space = load_space(REPO_ROOT / "spaces" / "esr.yaml")
    with open(PUBLISHED_DIR / "esr_tests.csv", newline="") as handle:
        published_x2 = {row["model"] for row in csv.DictReader(handle) if row["s"] == "2"}
    only_x2 = space.with_scales([2])
    ids = {c["model_id"] for c in only_x2.enumerate()}
    assert ids == published_x2 and len(ids) == 395
    assert {c["scale"] for c in space.with_scales([2, 4]).enumerate()} == {2, 4}
    assert len(space.enumerate()) == 1185  # the original is untouched
    with pytest.raises(SpaceError, match="--scales 5: the space offers scales 2, 3, 4"):
        space.with_scales([5])


def test_resume_refuses_other_scales(tmp_path):
    from search.errors import UserError
    from search.study.runner import StudyOptions, _resumed_options

    manifest = {"options": {"space": "spaces/esr.yaml", "out": str(tmp_path), "scales": [2]}}
    with pytest.raises(UserError, match="--scales \\[3\\] differs from the study's \\[2\\]"):
        _resumed_options(StudyOptions(space="spaces/esr.yaml", out=str(tmp_path), scales=[3]), manifest, tmp_path)
    same = _resumed_options(StudyOptions(space="spaces/esr.yaml", out=str(tmp_path)), manifest, tmp_path)
    assert same.scales == [2]
