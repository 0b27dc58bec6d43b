"""The Optuna side of a study: fast in-memory sampling, a durable RDB copy, resume.

OptunaSearch asks and tells an Optuna study held in memory (each RDB round trip costs
several SQL commits, which would dominate short trials). Every trial Optuna marks finished
is copied, by a background thread, into the study in the RDB storage (SQLite
``OUT/optuna.db`` by default; what optuna-dashboard opens). The copy lags the search by
at most the trials in flight, and it is never the only record: trials.csv is written and
fsync'ed before Optuna hears of a trial, and on resume every row of trials.csv missing from
the RDB study is rebuilt from the row (its configuration replayed through the space to
recover Optuna's parameters and distributions) and added.

Resuming loads the RDB study's trials into a fresh in-memory study, so the sampler sees
the whole history.
"""

from __future__ import annotations

import math
import queue
import threading
from pathlib import Path
from typing import Any

from optuna.storages import InMemoryStorage

from search.errors import UserError
from search.space import Space
from search.space.values import _optuna_choice
from search.study.statuses import STATUS_COMPLETE, STATUS_REPEAT

SQLITE_PREFIX = "sqlite:///"


def open_rdb_storage(url: str):
    """An Optuna RDB storage; SQLite files in WAL mode with synchronous=NORMAL.

    In WAL mode a commit is durable once written to the WAL file, which survives the process
    being killed; only a power loss could drop the last commits (trials.csv is fsync'ed).
    """
    import optuna

    if url.startswith(SQLITE_PREFIX):
        import sqlite3

        path = Path(url[len(SQLITE_PREFIX):])
        if not path.parent.is_dir():
            raise UserError(f"--storage {url}: folder {path.parent} does not exist")
        if path.is_dir():
            raise UserError(f"--storage {url}: {path} is a folder, not a database file")
        try:
            with sqlite3.connect(path) as connection:
                connection.execute("PRAGMA journal_mode=WAL")  # persistent: stored in the file
        except sqlite3.Error as exc:  # "file is not a database", a read-only folder, ...
            raise UserError(f"--storage {url}: not a usable SQLite database ({exc})") from None
    try:
        storage = optuna.storages.RDBStorage(url)
    except Exception as exc:
        shown = redact_url(url)
        message = " ".join(str(exc).replace(url, shown).split())[:300]
        raise UserError(f"--storage {shown}: cannot open ({type(exc).__name__}: {message})") from None
    if url.startswith(SQLITE_PREFIX):
        from sqlalchemy import event

        def _relaxed_sync(dbapi_connection, _record):
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

        event.listen(storage.engine, "connect", _relaxed_sync)
        storage.engine.dispose()  # reconnect so that every connection gets the setting
    return storage


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ***, fit for an error message."""
    import re

    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


class StorageMirror:
    """Copies finished trials into an RDB study from a background thread, in trial-number order.

    The RDB numbers its trials in the order they are added, and optuna-dashboard shows those
    numbers; trials.csv and the trial folders use the number the trial got when it was asked
    (user attribute ``trial``). Trials finish out of order when several run at once, so a trial
    waits here until every lower number is copied; on :meth:`close` a number that never
    finished (a trial an interrupt stopped) gets a FAIL placeholder, so the two numberings
    stay the same: RDB trial n is trials.csv trial n.
    """

    def __init__(self, rdb_study, next_number: int = 0):
        self.rdb_study = rdb_study
        self.next_number = next_number  # the RDB study's size: the number the next trial gets
        self.errors: list[str] = []
        self._pending: dict[int, Any] = {}
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="optuna-mirror", daemon=True)
        self._thread.start()

    def put(self, frozen_trial) -> None:
        self._queue.put(frozen_trial)

    def _add(self, frozen) -> None:
        if self.errors:
            return  # after a failed copy nothing more: --resume restores the rest in order
        try:
            self.rdb_study.add_trial(frozen)
        except Exception as exc:  # reported at the end; trials.csv has the trial anyway
            # Copying on would store the next trials one number too low; the RDB study stays
            # a prefix of trials.csv instead, and --resume adds the rows it lacks (in order).
            self.errors.append(f"trial {frozen.user_attrs.get('trial', frozen.number)}: {exc}")
            return
        self.next_number += 1

    def _flush(self, fill_gaps: bool) -> None:
        if self.errors:  # copying stopped (see _add): what waits here is left to --resume
            self._pending.clear()
            return
        while self._pending and not self.errors:
            if self.next_number in self._pending:
                self._add(self._pending.pop(self.next_number))
            elif fill_gaps:
                self._add(interrupted_placeholder(self.next_number))
            else:
                return

    def _run(self) -> None:
        while True:
            frozen = self._queue.get()
            if frozen is None:
                self._flush(fill_gaps=True)
                return
            number = frozen.user_attrs.get("trial")
            if not isinstance(number, int) or number < self.next_number:
                self._add(frozen)  # no number of its own (or already taken): copied as it comes
                continue
            self._pending[number] = frozen
            self._flush(fill_gaps=False)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def __getstate__(self):  # Tune pickles the searcher into its checkpoints: no thread there
        return {"rdb_study": None, "errors": list(self.errors)}

    def __setstate__(self, state):
        self.__dict__.update(state)


def interrupted_placeholder(number: int):
    """A FAIL trial holding the place of trial ``number``, which was asked but never finished
    (an interrupt or a kill stopped it; --resume runs its configuration again if still wanted)."""
    import optuna
    from optuna.trial import TrialState

    return optuna.trial.create_trial(
        state=TrialState.FAIL, params={}, distributions={},
        user_attrs={"trial": number, "status": "interrupted",
                    "error": "stopped by an interrupt before it finished; not in trials.csv"})


class MirroredInMemoryStorage(InMemoryStorage):
    """Optuna's InMemoryStorage, handing each trial to ``mirror`` when it finishes."""

    def __init__(self, mirror: StorageMirror | None = None):
        super().__init__()
        self.mirror = mirror

    def set_trial_state_values(self, trial_id, state, values=None):
        changed = super().set_trial_state_values(trial_id, state, values)
        if changed and state.is_finished() and self.mirror is not None:
            self.mirror.put(self.get_trial(trial_id))
        return changed

    def __getstate__(self):  # Tune pickles the searcher (and so this) into its checkpoints
        state = super().__getstate__()
        state.pop("mirror", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.mirror = None


class ReplayTrial:
    """Answers a define-by-run function's questions from a known configuration.

    Used to rebuild Optuna's parameters and distributions for a trials.csv row that never
    reached the RDB storage (the process was killed in between), and to enqueue known
    configurations. It starts with the configuration's own parameters answered
    (``params``, ``distributions``); a gene asked later that the configuration does not use
    (another family's, asked by :meth:`search.space.Space.suggest_every_gene`) gets the first
    value of its domain: it does not change the configuration, and NSGA-II needs every gene
    in every trial.
    """

    def __init__(self, config: dict[str, Any], space: Space, number: int):
        from optuna.distributions import CategoricalDistribution

        self._categorical = CategoricalDistribution
        self.config, self.space, self.number = config, space, number
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, Any] = {}
        self.user_attrs: dict[str, Any] = {}
        self._own: set[str] | None = None
        space.suggest(self)  # the configuration's own genes
        self._own = set(self.params)

    def _inert(self, name: str) -> bool:
        return self._own is not None and name not in self._own

    def _value(self, name: str) -> Any:
        if name == "family":
            return self.config["family"]
        if name == "scale" or name.endswith(".scale"):
            return self.config["scale"]
        family = self.space.families[self.config["family"]]
        if name == f"{family.name}.grid":
            for index, grid in enumerate(family.subgrids):
                if all(_contains(grid[h], self.config[h]) for h in grid):
                    return index
            raise ValueError(f"{self.config['config_id']} is in none of {family.name}'s sub-grids")
        return self.config[name.rsplit(".", 1)[-1]]  # "<family>.<hp>", "<family>.g<i>.<hp>" or "<hp>"

    def suggest_categorical(self, name, choices):
        value = list(choices)[0] if self._inert(name) else _optuna_choice(self._value(name))
        self.params[name], self.distributions[name] = value, self._categorical(list(choices))
        return value

    def suggest_int(self, name, low, high, *, step=1, log=False):
        from optuna.distributions import IntDistribution

        value = int(low if self._inert(name) else self._value(name))
        self.params[name], self.distributions[name] = value, IntDistribution(low, high, log=log, step=step)
        return value

    def suggest_float(self, name, low, high, *, step=None, log=False):
        from optuna.distributions import FloatDistribution

        value = float(low if self._inert(name) else self._value(name))
        self.params[name], self.distributions[name] = value, FloatDistribution(low, high, log=log, step=step)
        return value

    def set_user_attr(self, key, value):
        self.user_attrs[key] = value


def _contains(dimension, value) -> bool:
    try:
        values = dimension.values()
    except ValueError:  # a float range without step
        return dimension.low <= value <= dimension.high
    return _optuna_choice(value) in [_optuna_choice(v) for v in values]


def frozen_from_row(row: dict[str, str], space: Space, define, objectives: list[str]):
    """A finished Optuna trial rebuilt from a trials.csv row (see :class:`ReplayTrial`)."""
    import optuna
    from optuna.trial import TrialState

    config = _config_of_row(row, space)
    replay = ReplayTrial(config, space, int(row["trial"]))
    define.replay(replay, config)
    values = None
    state = TrialState.FAIL
    # a repeat carries the values of the completed trial it repeats, as Optuna was told
    if row.get("status") in (STATUS_COMPLETE, STATUS_REPEAT):
        numbers = [float(row[o]) if row.get(o) not in (None, "") else math.nan for o in objectives]
        if all(math.isfinite(v) for v in numbers):
            values, state = numbers, TrialState.COMPLETE
    attrs = {**replay.user_attrs, "recovered_from": "trials.csv"}
    return optuna.trial.create_trial(state=state, values=values, params=replay.params,
                                     distributions=replay.distributions, user_attrs=attrs)


def _config_of_row(row: dict[str, str], space: Space) -> dict[str, Any]:
    """The configuration of a trials.csv row, with values typed as the space declares them."""
    import json

    family = space.families[row["family"]]
    hparams = {}
    for name in family.hparam_names:
        text = row.get(name, "")
        if text == "":
            continue
        try:
            hparams[name] = json.loads(text)
        except json.JSONDecodeError:
            hparams[name] = text  # a text choice
    config = family.make_config(int(row["scale"]), hparams)
    if config["config_id"] != row["config_id"]:
        raise UserError(f"trials.csv row {row['trial']}: {row['config_id']} does not match the space "
                        f"(rebuilt as {config['config_id']})")
    return config
