"""Ray Tune + Optuna study runner.

A study is a folder (``--out``) holding:

* ``study.json``: the settings it was started with (space file, sampler, seed, trials,
  budget, device, objectives, storage), reused by ``--resume``;
* ``trials.csv``: one row per finished trial (:mod:`search.study.results`);
* ``optuna.db``: the Optuna study (SQLite by default; any RDB URL with ``--storage``), which
  ``optuna-dashboard sqlite:///DIR/optuna.db`` opens;
* ``trials/<n>_<config_id>/``: each trained model's weights and loss curve;
* ``ray/``: Ray Tune's own experiment folders (logs, per-trial results).

Search: Ray Tune's ``Tuner`` with ``OptunaSearch`` on a define-by-run space (family -> its
hyper-parameters, :meth:`search.space.Space.suggest`), multi-objective with one Optuna
direction per objective. ``grid`` enqueues every configuration as an Optuna trial (in a
seeded order), so each runs exactly once.

Optuna: sampling runs on an in-memory study; each finished trial is copied into the RDB
study (:mod:`search.study.optuna_store`), which holds only finished trials.

Resume (after any kind of death, ``kill -9`` included): finished trials are the rows of
trials.csv, written and fsync'ed before Optuna hears of the trial. Rows missing from the
RDB study are added to it; all its trials are loaded into a fresh in-memory study; the study
continues in a fresh Tuner until ``--trials`` trials have finished. A trial the kill cut
short left no row and simply runs again (grid) or is replaced by a new sample.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from search.data.protocols import Protocol, get_protocol
from search.errors import UserError, take_back_sigterm
from search.profile import latency_plan
from search.profile.cluster import check_cluster_reachable, prepare_ray_environment
from search.profile.devices import DeviceProfile, get_device
from search.space import Space, check_data_sets, csv_value, load_space, parse_objectives
from search.space.loader import MAX_SEED
from search.study.optuna_store import (
    MirroredInMemoryStorage,
    ReplayTrial,
    StorageMirror,
    frozen_from_row,
    interrupted_placeholder,
    open_rdb_storage,
    redact_url,
)
from search.study.results import TrialsCsv, trial_columns
from search.study.samplers import SAMPLERS, make_sampler
from search.study.trial import (
    FINISHED_STATUSES,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_INFRASTRUCTURE,
    STATUS_REPEAT,
    TrialFailed,
    TrialPipeline,
    TrialSettings,
    needs_training,
    safe_trial,
    trial_folder_name,
)
from search.models.registry import create_test_model
from search.train.budgets import Budget, get_budget

# smallest (default): each family's smallest configuration at each scale first
# (Space.smallest_configurations), enqueued, at most INITIAL_DESIGN_SHARE of the trials, then
# the sampler takes over; random: the sampler's own start.
INITIAL_DESIGNS = ("smallest", "random")
# As SMAC caps its initial design (max_ratio 0.25): a small study still leaves most trials to
# the sampler (8 trials: 2 anchors; 118 trials: all 21 of spaces/esr.yaml).
INITIAL_DESIGN_SHARE = 0.25
DEFAULT_TRIALS = 20
DEFAULT_SAMPLER = "tpe"
DEFAULT_DEVICE = "cpu"
MANIFEST = "study.json"
# Held (flock) by the one driver that runs a study folder; released by the kernel when that
# process ends in any way, kill -9 included.
FOLDER_LOCK = ".study.lock"
# Rounds in a row that only repeated completed configurations before the runner stops short.
MAX_FRUITLESS_ROUNDS = 50
# Settings a --resume may not change (the study's identity); the CLI leaves unset ones None.
RESUME_FIXED = ("space", "sampler", "seed", "budget", "objectives", "device", "initial_design", "storage", "scales")


@dataclass
class StudyOptions:
    space: str
    out: str
    sampler: str | None = None  # None: DEFAULT_SAMPLER (a fresh study) or the study's (resume)
    trials: int | None = None
    budget: str | None = None
    device: str | None = None   # None: DEFAULT_DEVICE or the study's
    seed: int | None = None
    objectives: str | None = None
    storage: str | None = None
    address: str | None = None
    num_cpus: int | None = None
    concurrency: int | None = None
    cpus_per_trial: int = 1
    data_root: str | None = None
    train_device: str | None = None
    verbose: int = 1
    initial_design: str | None = None  # None: "smallest" or the study's
    scales: list[int] | None = None    # None: every scale of the space


@dataclass
class StudySummary:
    out_dir: Path
    csv_path: Path
    storage: str
    study_name: str
    trials_target: int
    rows: list[dict[str, str]] = field(default_factory=list)
    ran_now: int = 0
    setup_s: float = 0.0  # wall time before Tune started running trials
    fit_s: float = 0.0    # wall time of Tuner.fit

    @property
    def completed(self) -> int:
        return sum(r.get("status") == STATUS_COMPLETE for r in self.rows)

    @property
    def failed(self) -> int:
        return sum(r.get("status") == STATUS_FAILED for r in self.rows)

    @property
    def to_retry(self) -> int:
        """Trials the machine failed (disk, memory, a killed worker): --resume runs them again."""
        return sum(r.get("status") == STATUS_INFRASTRUCTURE for r in self.rows)


def _space_fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def default_storage(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / 'optuna.db').resolve()}"


def check_initial_design(name: str) -> None:
    if name not in INITIAL_DESIGNS:
        raise UserError(f"unknown initial design {name!r}; one of {', '.join(INITIAL_DESIGNS)}")


def initial_configurations(space: Space, design: str, trials: int) -> list[dict[str, Any]]:
    """The configurations a study of ``trials`` trials starts with (none for ``random``)."""
    check_initial_design(design)
    if design == "random":
        return []
    return space.smallest_configurations()[:max(1, int(INITIAL_DESIGN_SHARE * trials))]


def grid_order(config_ids: list[str], seed: int) -> list[str]:
    """The grid in a seeded random order, so that --trials N < grid size spreads over it."""
    import random

    order = list(config_ids)
    random.Random(seed).shuffle(order)
    return order


def enqueue_grid(study, space: Space, config_ids: list[str]) -> None:
    """Grid search the Optuna way: every configuration becomes an enqueued trial, asked in order.

    Each carries the same parameters a sampler would have chosen for it (family, scale,
    hyper-parameters; :class:`search.study.optuna_store.ReplayTrial`), so grid and sampled
    studies look alike in the storage and the dashboard.
    """
    by_id = {c["config_id"]: c for c in space.enumerate()}
    enqueue_configs(study, space, [by_id[i] for i in config_ids])


def enqueue_configs(study, space: Space, configs: list[dict[str, Any]]) -> None:
    """Enqueue known configurations (grid points, an initial design) with their own
    parameters; the space's other genes are drawn when the trial runs."""
    for config in configs:
        study.enqueue_trial(ReplayTrial(config, space, number=0).params)


class DefineByRun:
    """OptunaSearch's define-by-run space: asks Optuna for one configuration per trial.

    Every gene of the space first (:meth:`search.space.Space.suggest_every_gene`: NSGA-II and
    multivariate TPE model only parameters present in every trial), then family -> scale ->
    that family's hyper-parameters (:meth:`search.space.Space.suggest`); grid studies enqueue
    every configuration's answers beforehand (:func:`enqueue_grid`).
    The trial number in trials.csv is Optuna's number plus ``number_offset`` (non-zero after
    a resume, where the in-memory study restarts its numbering). A class, not a closure, so
    that Tune can pickle the searcher into its checkpoints.
    """

    def __init__(self, space: Space, table: TrialsCsv | None = None, objectives: list[str] | None = None):
        self.space = space
        self.number_offset = 0
        self.table = table            # trials.csv: which configurations are already complete
        self.objectives = list(objectives or [])
        self._completed: dict[str, dict[str, Any]] = {}
        self._table_size = -1

    def ask(self, trial) -> dict[str, Any]:
        self.space.suggest_every_gene(trial)
        return self.space.suggest(trial)

    def __call__(self, trial) -> dict[str, Any]:
        config = self.ask(trial)
        number = trial.number + self.number_offset
        trial.set_user_attr("config_id", config["config_id"])
        trial.set_user_attr("trial", number)
        answer = {"trial_config": config, "optuna_trial": number}
        earlier = self.completed().get(config["config_id"])
        if earlier is not None:  # never train a completed configuration again
            answer["repeat_of"] = earlier
            trial.set_user_attr("repeat_of", earlier["trial"])
        return answer

    def completed(self) -> dict[str, dict[str, Any]]:
        """config id -> the earlier complete trial's number and objective values (read from
        trials.csv, which the driver's recorder appends to, whenever it grew)."""
        if self.table is None or not self.table.exists():
            return self._completed
        size = self.table.path.stat().st_size
        if size != self._table_size:
            self._table_size = size
            for row in self.table.read():
                if row.get("status") != STATUS_COMPLETE or row["config_id"] in self._completed:
                    continue
                try:
                    values = {o: float(row[o]) for o in self.objectives}
                except (KeyError, ValueError):
                    continue
                self._completed[row["config_id"]] = {"trial": int(row["trial"]), "values": values}
        return self._completed

    def replay(self, replay_trial, config: dict[str, Any]) -> None:
        self.ask(replay_trial)
        replay_trial.set_user_attr("config_id", config["config_id"])
        replay_trial.set_user_attr("trial", replay_trial.number)


def tune_trainable(config: dict, settings: TrialSettings, pipeline: TrialPipeline | None = None) -> None:
    """Ray Tune function trainable: one configuration, one reported result."""
    from ray import tune

    earlier = config.get("repeat_of")
    if earlier:
        tune.report({**earlier["values"], "status": STATUS_REPEAT, "trial_time_s": 0.0,
                     "error": f"repeat of trial {earlier['trial']}: not trained again"})
        return
    row = safe_trial(config["trial_config"], settings, int(config["optuna_trial"]), pipeline)
    tune.report(row)  # trials.csv gets the row here, before Optuna hears of the outcome
    if row["status"] != STATUS_COMPLETE:
        # OptunaSearch tells Optuna FAIL only for an errored Tune trial (NaN values are refused).
        raise TrialFailed(row["error"])


def study_space(options: StudyOptions) -> Space:
    """The space file, restricted to ``options.scales`` when given."""
    space = load_space(options.space)
    return space.with_scales(options.scales) if options.scales else space


def _study_settings(space: Space, options: StudyOptions):
    fixed = space.fixed
    objectives = fixed.objectives
    if options.objectives:
        try:
            objectives = parse_objectives(options.objectives, fixed.test_sets)
        except ValueError as exc:
            raise UserError(f"--objectives: {exc}") from None
    seed = fixed.seed if options.seed is None else options.seed
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"seed {seed}: must be between 0 and {MAX_SEED}")
    budget = options.budget or fixed.budget
    return objectives, seed, budget


def _write_manifest(out_dir: Path, data: dict) -> None:
    tmp = out_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, out_dir / MANIFEST)


def _read_manifest(out_dir: Path) -> dict:
    path = out_dir / MANIFEST
    if not path.is_file():
        raise UserError(f"{out_dir}: nothing to resume (no {MANIFEST}); start the study without --resume")
    try:
        manifest = json.loads(path.read_text())
        StudyOptions(**manifest["options"])
        str(manifest["space_sha256"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: unreadable study manifest ({type(exc).__name__}: {exc}); "
                        "start a new study in another folder") from None
    return manifest


def make_trial_recorder(*args, **kwargs):
    """A Tune callback writing one trials.csv row per finished trial (before Optuna's tell).

    Built by a factory so that importing this module does not import Ray (``--dry-run``).
    """
    from ray import tune

    class TrialRecorder(tune.Callback):
        def __init__(self, table: TrialsCsv, total: int, done: int, objectives: list[str], verbose: int):
            self.table, self.total, self.done = table, total, done
            self.objectives, self.verbose = objectives, verbose
            self.started = time.perf_counter()
            self.written: set[str] = set()
            self.count = 0  # finished trials (complete or failed) written by this run
            self.repeats = 0  # proposals of completed configurations (not trained again)

        def _write(self, trial, metrics: dict) -> None:
            if trial.trial_id in self.written:
                return
            config = trial.config.get("trial_config", {})
            row = {**config, **metrics, "trial": trial.config.get("optuna_trial"),
                   "tune_trial_id": trial.trial_id}
            self.table.append(row)
            self.written.add(trial.trial_id)
            if row.get("status") in FINISHED_STATUSES:
                self.count += 1
            elif row.get("status") == STATUS_REPEAT:
                self.repeats += 1
            if self.verbose:
                shown = ", ".join(f"{o}={row.get(o):.4g}" for o in self.objectives
                                  if isinstance(row.get(o), (int, float)) and math.isfinite(row.get(o)))
                detail = shown if row.get("status") == STATUS_COMPLETE else row.get("error", "")
                left = self.total - self.done - self.count
                eta = (f" (ETA {format_duration((time.perf_counter() - self.started) / self.count * left)})"
                       if left > 0 and self.count else "")
                print(f"[{self.done + self.count}/{self.total}] trial {row['trial']} "
                      f"{row.get('config_id')}: {row.get('status')} {detail}{eta}", flush=True)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if "status" in result:
                self._write(trial, result)

        def on_trial_error(self, iteration, trials, trial, **info):
            # Reached without a row only when the worker itself died (killed, out of memory):
            # the machine's failure, so --resume runs the configuration again.
            if trial.trial_id in self.written:
                return
            error = f"the trial's Ray worker died (killed, out of memory?); Tune's logs: {trial.local_path}"
            try:
                lines = [ln.strip() for ln in str(trial.get_error() or "").splitlines() if ln.strip()]
                error = next((ln for ln in reversed(lines) if "Error" in ln or "error" in ln), error)
            except Exception:  # the error file is Tune's; a row matters more than its wording
                pass
            self._write(trial, {"status": STATUS_INFRASTRUCTURE, "error": error[:500]})

    return TrialRecorder(*args, **kwargs)


def _ray_init(address: str | None, num_cpus: int | None, verbose: int) -> bool:
    """Connect to ``address`` (or $RAY_ADDRESS), else start a local instance; True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    prepare_ray_environment()
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": verbose > 1,
                              "logging_level": "WARNING" if verbose <= 1 else "INFO"}
    # Ray workers must import this package; the working directory is not always on their path.
    repo_root = str(Path(__file__).resolve().parents[2])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if repo_root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([repo_root, *paths])
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, **kwargs)  # never attach to another user's instance
    take_back_sigterm()  # ray.init replaced it: SIGTERM stops the study cleanly, exit 143
    return True


def _announce_latency_source(device: DeviceProfile) -> str:
    """Say once, on stderr, whether this study's latencies are measured or predicted (returned)."""
    kind, text = latency_plan(device)
    print(("warning: " if kind == "predicted" else "") + text, file=sys.stderr, flush=True)
    return kind


def run_study(options: StudyOptions, *, resume: bool = False, pipeline: TrialPipeline | None = None,
              log=print) -> StudySummary:
    """Run (or with ``resume`` continue) the study in ``options.out``; see the module docstring.

    The folder is created only once every setting checked out, and held by an exclusive lock
    while the study runs: a second driver on the same folder is refused.
    """
    started = time.perf_counter()
    out_dir = Path(options.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: is a file, not a study folder")
    if resume:
        manifest = _read_manifest(out_dir)
        options = _resumed_options(options, manifest, out_dir)
        space = study_space(options)
        if _space_fingerprint(Path(options.space)) != manifest["space_sha256"]:
            raise UserError(f"{options.space}: the space file changed since the study started; "
                            "start a new study (another --out) instead of --resume")
    else:
        if (out_dir / MANIFEST).exists() or (out_dir / "trials.csv").exists():
            raise UserError(f"{out_dir}: already holds a study; use --resume to continue it or another --out")
        space = study_space(options)
        options.sampler = options.sampler or DEFAULT_SAMPLER
        options.device = options.device or DEFAULT_DEVICE
        options.initial_design = options.initial_design or INITIAL_DESIGNS[0]
    if options.sampler not in SAMPLERS:
        raise UserError(f"unknown sampler {options.sampler!r}; one of {', '.join(SAMPLERS)}")
    check_initial_design(options.initial_design)
    objectives, seed, budget = _study_settings(space, options)
    # Strings resolved once, here: every trial carries the objects (no YAML read per trial).
    budget = get_budget(budget) if budget is not None else None
    device = get_device(options.device)
    protocol = get_protocol(space.fixed.protocol) if space.fixed.protocol else None
    check_data_sets(space, options.data_root)  # before any training, not in every trial
    check_cluster_reachable(options.address)

    created = _make_study_folder(out_dir)
    try:
        lock = lock_study_folder(out_dir)
    except BaseException:
        _remove_if_created(out_dir, created)
        raise
    try:
        return _run_locked(options, space, objectives, seed, StudyInputs(budget, device, protocol), out_dir,
                           created, resume, pipeline, log, started)
    finally:
        lock.close()


@dataclass(frozen=True)
class StudyInputs:
    """The study's budget, device and protocol, resolved from their names at the start."""

    budget: Budget | None
    device: DeviceProfile
    protocol: Protocol | None  # None: each family's default protocol


def _run_locked(options, space, objectives, seed, inputs: StudyInputs, out_dir, created, resume, pipeline, log,
                started):
    import optuna

    grid_ids = [c["config_id"] for c in space.enumerate()] if options.sampler == "grid" else None
    if grid_ids is not None:
        trials_target = min(options.trials or len(grid_ids), len(grid_ids))
    else:
        trials_target = options.trials or DEFAULT_TRIALS
    if trials_target < 1:
        raise UserError(f"--trials must be at least 1, got {trials_target}")
    storage_url = options.storage or default_storage(out_dir)
    study_name = space.name

    table = TrialsCsv(out_dir / "trials.csv", trial_columns(space.hparam_names, space.fixed.test_sets))
    table.repair()
    if table.exists() and table.header() != table.columns:
        raise UserError(f"{table.path}: columns do not match this study's space; was it written by another study?")
    rows = table.read()
    _check_rows(rows, space, table.path)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metric_names = [o.metric for o in objectives]
    modes = [o.mode for o in objectives]
    directions = ["maximize" if m == "max" else "minimize" for m in modes]
    try:
        rdb_storage = open_rdb_storage(storage_url)
        exists = study_name in {s.study_name for s in optuna.get_all_study_summaries(rdb_storage)}
        if exists and not resume:
            raise UserError(f"{redact_url(storage_url)}: already holds a study named {study_name!r}; "
                            "use --resume or another --storage")
        rdb_study = optuna.create_study(study_name=study_name, storage=rdb_storage, directions=directions,
                                        load_if_exists=True)
    except UserError:
        _remove_if_created(out_dir, created)
        raise
    except Exception as exc:  # a garbage database, a directory, a file that is not SQLite
        _remove_if_created(out_dir, created)
        raise UserError(f"--storage {redact_url(storage_url)}: not a usable Optuna storage "
                        f"({type(exc).__name__}: {_first_line(exc)})") from None
    if not resume:  # written once everything above checked out, so a typo leaves no study behind
        rdb_study.set_user_attr("space", str(options.space))
        options.trials = trials_target
        _write_manifest(out_dir, {"options": asdict(options), "space_sha256": _space_fingerprint(Path(options.space)),
                                  "study_name": study_name, "storage": storage_url,
                                  "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    define = DefineByRun(space, table, metric_names)
    _add_missing_rows(rdb_study, rows, space, define, metric_names, log)
    remove_unfinished_trial_folders(out_dir, rows, log)

    summary = StudySummary(out_dir, table.path, storage_url, study_name, trials_target)
    remaining = trials_target - _finished(rows)
    if remaining <= 0:
        log(f"{study_name}: all {trials_target} trials finished; nothing to run")
        summary.rows = rows
        return summary

    settings = TrialSettings(
        budget=inputs.budget, train_sets=list(space.fixed.train_sets), test_sets=list(space.fixed.test_sets),
        objectives=metric_names, out_dir=str(out_dir.resolve()), device=inputs.device,
        train_device=options.train_device or "cpu", protocol=inputs.protocol, seed=seed,
        data_root=options.data_root, threads=options.cpus_per_trial, model_files=space.model_files,
    )
    history = rdb_study.get_trials(deepcopy=False)
    mirror = StorageMirror(rdb_study, next_number=len(history))
    memory_storage = MirroredInMemoryStorage()
    memory_study = optuna.create_study(study_name=study_name, storage=memory_storage, directions=directions)
    memory_study.add_trials(history)
    # New trials are numbered after every number trials.csv or the RDB study used (the RDB
    # may hold more: a failed placeholder for a trial an interrupt stopped).
    numbers = [int(r["trial"]) for r in rows if r.get("trial", "").isdigit()]
    numbers += [t.user_attrs["trial"] for t in history if isinstance(t.user_attrs.get("trial"), int)]
    define.number_offset = max(max(numbers) + 1 if numbers else 0, len(history)) - len(history)
    done = {r["config_id"] for r in rows if r.get("status") in FINISHED_STATUSES}
    if grid_ids is not None:
        enqueue_grid(memory_study, space, [c for c in grid_order(grid_ids, seed) if c not in done])
    else:
        # on resume, only the anchors that have not finished yet
        anchors = [c for c in initial_configurations(space, options.initial_design, trials_target)
                   if c["config_id"] not in done]
        enqueue_configs(memory_study, space, anchors[:remaining])
    memory_storage.mirror = mirror  # from here on, finished trials are copied to the RDB
    fruitless = 0
    try:
        while remaining > 0:
            # A sampler continues its sequence after a resume instead of replaying it: its
            # seed depends on how many trials the study already holds.
            finished_so_far = sum(t.state.is_finished() for t in memory_study.trials)  # not the enqueued
            sampler_seed = continued_seed(seed, finished_so_far)
            ran, repeats, fit_s = _fit(define, options, settings, memory_storage, study_name, metric_names,
                                       modes, sampler_seed, remaining, trials_target - remaining,
                                       trials_target, table, pipeline, show_plan=not summary.fit_s)
            summary.ran_now += ran
            summary.fit_s += fit_s
            remaining -= ran
            # Repeats do not count: their places go to new proposals (a grid never repeats;
            # a trial the machine failed waits for --resume).
            if not repeats or grid_ids is not None:
                break
            fruitless = 0 if ran else fruitless + 1
            if fruitless >= MAX_FRUITLESS_ROUNDS or space_exhausted(space, define):
                log(f"warning: {study_name}: the sampler keeps proposing configurations the study has "
                    f"already completed; stopping {remaining} trial(s) short")
                break
    finally:
        mirror.close()
    summary.setup_s = time.perf_counter() - started - summary.fit_s
    for problem in mirror.errors:
        log(f"warning: not copied to {redact_url(storage_url)}: {problem}; the trials from there on are in "
            "trials.csv only, and --resume adds them")
    summary.rows = table.read()
    return summary


def remove_unfinished_trial_folders(out_dir: Path, rows: list[dict[str, str]], log) -> None:
    """Delete the folders of trials an interrupt stopped (no trials.csv row: not finished).

    They hold a half-done trial's training output, and the configuration's next attempt
    (on --resume) may get the same number; a finished trial always has its row.
    """
    finished = {trial_folder_name(int(r["trial"]), r.get("config_id", "")) for r in rows if (r.get("trial") or "").isdigit()}
    folder = out_dir / "trials"
    stale = [d for d in folder.iterdir() if d.is_dir() and d.name not in finished] if folder.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    if stale:
        log(f"removed {len(stale)} folder(s) of trials an interrupt stopped before they finished "
            f"({', '.join(sorted(p.name for p in stale))})")


def space_exhausted(space: Space, define: DefineByRun) -> bool:
    """Every configuration of a finite space is complete: nothing new is left to propose."""
    if not space.enumerable:  # a continuous range: never exhausted
        return False
    return len(define.completed()) >= len(space.enumerate())


def continued_seed(seed: int, trials_so_far: int) -> int:
    """The sampler seed for a study that already holds ``trials_so_far`` trials: ``seed`` for
    a fresh study; after a resume another, reproducible one, so random draws (random search,
    TPE's start, NSGA-II's first generation) continue instead of repeating the first run's."""
    if trials_so_far == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, trials_so_far]).generate_state(1)[0])


def _finished(rows: list[dict[str, str]]) -> int:
    return sum(r.get("status") in FINISHED_STATUSES for r in rows)


def _first_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0].strip()[:200] if lines else "no message"


def _resumed_options(given: StudyOptions, manifest: dict, out_dir: Path) -> StudyOptions:
    """The study's own options, with what a resume may change (trial count, cluster,
    verbosity, CPUs) taken from ``given``; a setting that would change the study is refused."""
    saved = StudyOptions(**manifest["options"])
    for name in RESUME_FIXED:
        wanted, had = getattr(given, name), getattr(saved, name)
        if wanted is None:
            continue
        if name == "space":
            same = Path(wanted).resolve() == Path(had).resolve()
        else:
            same = str(wanted) == str(had)
        if not same:
            flag = "SPACE" if name == "space" else "--" + name.replace("_", "-")
            raise UserError(f"{out_dir}: {flag} {wanted} differs from the study's {had} ({MANIFEST}); "
                            "--resume continues a study as it was started: leave it out, or start "
                            "a new study in another folder")
    saved.trials = given.trials or saved.trials
    saved.address, saved.verbose = given.address, given.verbose
    saved.num_cpus = given.num_cpus or saved.num_cpus
    saved.out = str(out_dir)
    return saved


def _make_study_folder(out_dir: Path) -> bool:
    """Create the study folder; True if this call created it (so a refused start removes it)."""
    if out_dir.is_dir():
        return False
    try:
        out_dir.mkdir(parents=True)
    except OSError as exc:
        raise UserError(f"--out {out_dir}: cannot create the study folder ({exc.strerror or exc})") from None
    return True


def _remove_if_created(out_dir: Path, created: bool) -> None:
    """A start that was refused leaves no empty study folder behind."""
    if not created:
        return
    import shutil

    leftovers = {p.name for p in out_dir.iterdir()} if out_dir.is_dir() else set()
    if leftovers <= {FOLDER_LOCK, "optuna.db", "optuna.db-wal", "optuna.db-shm"}:
        shutil.rmtree(out_dir, ignore_errors=True)


class StudyFolderLock:
    """An exclusive ``flock`` on ``OUT/.study.lock``, holding the driver's pid."""

    def __init__(self, handle):
        self._handle = handle

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()  # releases the lock
            self._handle = None


def lock_study_folder(out_dir: Path) -> StudyFolderLock:
    """Take the study folder for this process, or refuse: two drivers on one folder would
    run the same trials twice and write the same trial folders."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (documented)
        return StudyFolderLock(None)
    path = out_dir / FOLDER_LOCK
    try:
        handle = open(path, "a+", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--out {out_dir}: cannot write in the study folder ({exc.strerror or exc})") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise UserError(f"{out_dir}: the study is in use by another search.run (pid {holder}); "
                        "wait for it to end, or stop it and then --resume") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return StudyFolderLock(handle)


def _check_rows(rows: list[dict[str, str]], space: Space, path: Path) -> None:
    """Refuse a trials.csv row this study could not have written (a garbage row would be
    counted as a finished trial)."""
    known = {*FINISHED_STATUSES, STATUS_INFRASTRUCTURE, STATUS_REPEAT}
    for line, row in enumerate(rows, start=2):
        problem = None
        if not (row.get("trial") or "").isdigit():
            problem = f"trial number {row.get('trial')!r} is not a number"
        elif row.get("family") not in space.families:
            problem = f"family {row.get('family')!r} is not in the space"
        elif row.get("status") not in known:
            problem = f"status {row.get('status')!r} is not one of {', '.join(sorted(known))}"
        elif not (row.get("scale") or "").isdigit():
            problem = f"scale {row.get('scale')!r} is not a number"
        if problem:
            raise UserError(f"{path}: line {line}: {problem}; was the file edited? (remove the row to go on)")


def _add_missing_rows(rdb_study, rows, space, define, objectives, log) -> None:
    """Add to the RDB study every trials.csv row it lacks (the copy lagged at a kill), in
    trial-number order, with a FAIL placeholder for each number no row has (a trial the kill
    stopped), so that RDB trial n stays trials.csv trial n (:class:`StorageMirror`)."""
    trials = rdb_study.get_trials(deepcopy=False)
    known = {t.user_attrs.get("trial") for t in trials}
    missing = sorted((r for r in rows if r.get("trial", "").isdigit() and int(r["trial"]) not in known),
                     key=lambda r: int(r["trial"]))
    next_number, placeholders = len(trials), 0
    for row in missing:
        number = int(row["trial"])
        while next_number < number:
            rdb_study.add_trial(interrupted_placeholder(next_number))
            next_number, placeholders = next_number + 1, placeholders + 1
        rdb_study.add_trial(frozen_from_row(row, space, define, objectives))
        next_number += 1
    if missing:
        log(f"{rdb_study.study_name}: {len(missing)} finished trial(s) restored to the Optuna storage from trials.csv"
            + (f" ({placeholders} interrupted trial number(s) kept as failed placeholders)" if placeholders else ""))


def _quiet_tune(verbose: int) -> None:
    """Our one line per trial replaces Tune's tables; failed trials are in trials.csv."""
    # Ctrl-C stops the driver (exit 130, resume hint) instead of Tune ending the run as if done.
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    if verbose > 1:
        return
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    for name in ("ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _fit(define, options, settings, memory_storage, study_name, metric_names, modes, seed,
         remaining, finished, trials_target, table, pipeline, show_plan=False) -> tuple[int, int, float]:
    """One Tuner run of at most ``remaining`` trials; (finished trials, repeats, seconds)."""
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(
        space=define,
        metric=metric_names if len(metric_names) > 1 else metric_names[0],
        mode=modes if len(modes) > 1 else modes[0],
        sampler=make_sampler(options.sampler, seed, define.space),
        study_name=study_name,
        storage=memory_storage,
    )
    _quiet_tune(options.verbose)
    started_ray = _ray_init(options.address, options.num_cpus, options.verbose)
    try:
        latency_kind = _announce_latency_source(settings.device)
        # Latency is measured on this machine's CPU: concurrent trials would disturb it, so
        # CPU-profiled studies run one trial at a time unless told otherwise.
        if options.concurrency:
            concurrency = options.concurrency
        elif settings.device.name == "cpu":
            concurrency = 1
        else:
            concurrency = max(1, int(ray.available_resources().get("CPU", 1) // options.cpus_per_trial))
        if options.verbose and show_plan:  # once per run, before the first Tuner round
            print(study_plan(define.space, options, settings, concurrency, remaining, trials_target, table,
                             latency_kind), flush=True)
        recorder = make_trial_recorder(table, trials_target, finished, metric_names, options.verbose)
        trainable = tune.with_resources(
            tune.with_parameters(tune_trainable, settings=settings, pipeline=pipeline),
            {"cpu": options.cpus_per_trial},
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=remaining,
                                        max_concurrent_trials=concurrency, reuse_actors=True),
            run_config=tune.RunConfig(
                name=f"{study_name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}",
                storage_path=str((Path(settings.out_dir) / "ray").resolve()),
                callbacks=[recorder],
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                verbose=0,
            ),
        )
        fit_started = time.perf_counter()
        tuner.fit()
        return recorder.count, recorder.repeats, time.perf_counter() - fit_started
    finally:
        if started_ray:
            ray.shutdown()


def format_duration(seconds: float) -> str:
    """'45 s', '12 min', '2.5 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _seconds(text: str | None) -> float | None:
    """A trials.csv duration ("12.5", "1e-3"), or None when empty or not a finite number."""
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _budget_line(space: Space, settings: TrialSettings) -> str:
    """'quick: eSR-MAX, eSR-TM 1000 steps (pixels); Bicubic not trained' from the resolved budgets."""
    if settings.budget is None:
        return "each family's default"
    groups: dict[str, list[str]] = {}
    for family in space.families:
        resolved = settings.budget.for_family(family)
        if not needs_training(create_test_model(family)):  # a fixed filter (Bicubic)
            key = "not trained"
        else:
            key = f"{resolved['steps']} steps" + (" of single pixels" if resolved.get("sampling") == "pixels" else "")
        groups.setdefault(key, []).append(family)
    return f"{settings.budget.name}: " + "; ".join(f"{', '.join(f)} {k}" for k, f in groups.items())


def study_plan(space: Space, options: StudyOptions, settings: TrialSettings, concurrency: int, remaining: int,
               total: int, table: TrialsCsv, latency_kind: str) -> str:
    """What the study is about to do, printed before its first trial."""
    size = space.size
    configurations = f"{size} configurations" if size is not None else "a continuous space"
    scales = ", ".join(f"x{s}" for s in sorted({s for f in space.families.values() for s in f.scales}))
    rows = [r for r in table.read() if r.get("status") == STATUS_COMPLETE]
    times = [t for t in (_seconds(r.get("trial_time_s")) for r in rows) if t is not None]
    if times:
        estimate = (f"~{format_duration(sum(times) / len(times) * remaining / max(1, concurrency))} "
                    f"(this study's {len(times)} finished trials took {format_duration(sum(times) / len(times))} "
                    f"each, {concurrency} at a time)")
    else:
        estimate = "measured from the first trials: each trial line shows the ETA"
    out = Path(options.out)
    lines = [
        "plan:",
        f"  space       {options.space} ({space.name}): {configurations} at {scales}, {len(space.families)} families",
        f"  sampler     {options.sampler} (seed {settings.seed})"
        + (f", after the initial design '{options.initial_design}'" if options.sampler != "grid" else ""),
        f"  budget      {_budget_line(space, settings)}"
        + (" (SMOKE: exercises the pipeline; the models' PSNR means nothing)"
           if settings.budget is not None and settings.budget.name == "smoke" else ""),
        f"  trials      {remaining} to run, {total} in all; {concurrency} at a time",
        f"  device      {settings.device.name}: latency {latency_kind}",
        f"  time        {estimate}",
        f"  results     {out / 'trials.csv'}",
        f"  resume      python -m search.run {options.space} --out {out} --resume",
        f"  dashboard   optuna-dashboard {redact_url(options.storage or default_storage(out))}",
    ]
    return "\n".join(lines)


def dry_run(space_path: str, out: str | None, *, log=print, scales=None) -> list[dict[str, Any]]:
    """Write the enumerated configurations (one row each, ``model_id`` column) to ``out``."""
    import csv


    space = load_space(space_path)
    if scales:
        space = space.with_scales(scales)
    configs = space.enumerate()
    columns = ["config_id", "model_id", "family", "scale", *space.hparam_names]
    if out and Path(out).is_dir():
        raise UserError(f"--out {out}: is a folder; with --dry-run, --out names the CSV file to write")
    try:
        handle = open(out, "w", newline="", encoding="utf-8") if out else sys.stdout
        try:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for config in configs:
                writer.writerow({k: csv_value(config.get(k, "")) for k in columns})
        finally:
            if out:
                handle.close()
    except OSError as exc:  # a missing folder, no permission, a full disk
        raise UserError(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    if out:
        log(f"{space_path}: {len(configs)} configurations -> {out}")
    return configs
