"""User-facing errors: one clear line, exit code 2, no traceback.

Library code raises :class:`UserError` (or a subclass) for anything a user can fix:
a malformed space file, an unknown model id, a missing or corrupt image, weights that do
not match a model. Command-line entry points wrap their ``main`` with :func:`cli_main`,
which turns such an error into ``error: <message>`` on stderr and exit status 2, and any
other exception into one line naming the log file that holds its traceback, exit status 1.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable[..., int | None])

EXIT_USER_ERROR = 2


class UserError(Exception):
    """An error caused by user input; its message is shown as a single line."""

    def __init__(self, message: str, *, path: object | None = None):
        self.path = path
        text = f"{path}: {message}" if path is not None else message
        super().__init__(text)


class SpaceError(UserError):
    """A malformed search-space file (bad YAML, unknown key/family, empty range, ...)."""


class ModelIdError(UserError):
    """An unknown family or a model id that cannot be parsed."""


class WeightsError(UserError):
    """A weights file that is missing, unreadable or does not fit the model."""


class DataError(UserError):
    """A missing, empty or unreadable data set / image."""


EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it
EXIT_TERMINATED = 143   # 128 + SIGTERM

# Where an internal error's traceback goes: set by a command once it knows its output
# folder (a study folder), else a fresh file in the temporary directory.
_crash_log_dir: Path | None = None
# What a command says on Ctrl-C / SIGTERM after "interrupted" (e.g. how to resume).
_interrupt_hint: str | None = None
# How many cli_main commands are running in this process (SIGTERM is theirs while > 0).
_commands_running = 0


def set_crash_log_dir(folder: str | os.PathLike | None) -> None:
    """Write the traceback of an internal error into ``folder/crash-<time>.log`` from now on."""
    global _crash_log_dir
    _crash_log_dir = None if folder is None else Path(folder)


def set_interrupt_hint(text: str | None) -> None:
    """The line printed after ``interrupted`` when the command is stopped (Ctrl-C, SIGTERM)."""
    global _interrupt_hint
    _interrupt_hint = text


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that ``finally`` blocks and Ray's shutdown run."""


def root_cause(exc: BaseException) -> BaseException:
    """The exception behind Ray's wrappers (a worker's ``RayTaskError``, Tune's errors)."""
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        cause = getattr(exc, "cause", None)  # ray.exceptions.RayTaskError / RayActorError
        if isinstance(cause, BaseException):
            exc = cause
        elif type(exc).__module__.startswith("ray.") and exc.__cause__ is not None:
            exc = exc.__cause__
        else:
            break
    return exc


def _exit_interrupted(stop: BaseException) -> None:
    print("interrupted" + (f"; {_interrupt_hint}" if _interrupt_hint else ""), file=sys.stderr, flush=True)
    raise SystemExit(EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED) from None


def _interruption_in(exc: BaseException) -> BaseException | None:
    """A Ctrl-C or SIGTERM behind ``exc``: a signal handler's exception raised while a C
    extension (Ray's core worker) was running comes back wrapped in a SystemError."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (KeyboardInterrupt, Terminated)):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def write_crash_log(exc: BaseException, program: str) -> Path | None:
    """Write ``exc``'s full traceback to a log file; its path, or None if nothing could be written."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    header = f"{program}: {time.strftime('%Y-%m-%dT%H:%M:%S')} argv={sys.argv!r}\n\n"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidates = []
    if _crash_log_dir is not None:
        candidates.append(lambda: _crash_log_dir / f"crash-{stamp}-{os.getpid()}.log")
    candidates.append(lambda: Path(tempfile.mkstemp(prefix=f"sr-search-{stamp}-", suffix=".log")[1]))
    for make_path in candidates:
        try:
            path = make_path()
            path.write_text(header + text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def cli_main(func: F) -> F:
    """Decorate a CLI ``main(argv=None)`` so that no traceback reaches the user.

    * :class:`UserError` (also when raised inside a Ray worker) -> ``error: <message>``, exit 2;
    * any other exception -> one line naming it and the log file holding its traceback, exit 1;
    * Ctrl-C -> exit 130, SIGTERM -> exit 143, each with the command's resume hint if it set one.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        global _commands_running
        previous = _install_sigterm_handler()
        _commands_running += 1
        try:
            return func(*args, **kwargs)
        except (KeyboardInterrupt, Terminated) as exc:
            _exit_interrupted(exc)
        except SystemExit:
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence of a command
            stop = _interruption_in(exc)
            if stop is not None:  # raised inside a C extension, which wrapped it (SystemError)
                _exit_interrupted(stop)
            cause = root_cause(exc)
            if isinstance(cause, UserError):
                print(f"error: {_one_line(cause, 1000)}", file=sys.stderr, flush=True)
                raise SystemExit(EXIT_USER_ERROR) from None
            program = getattr(func, "__module__", "") or "sr-search"
            log = write_crash_log(exc, program)
            where = f"full traceback in {log}" if log else "no traceback could be written"
            print(f"error: internal error: {type(cause).__name__}: {_one_line(cause)} ({where})",
                  file=sys.stderr, flush=True)
            raise SystemExit(EXIT_INTERNAL_ERROR) from None
        finally:
            _commands_running -= 1
            _restore_sigterm_handler(previous)

    return wrapper  # type: ignore[return-value]


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def take_back_sigterm() -> None:
    """Make SIGTERM raise :class:`Terminated` again after a library replaced the handler.

    ``ray.init`` installs its own (``sys.exit(15)``, or exit 1 for a node it started) and Ray's
    core worker a C-level one that prints a stack dump; a command calls this right after
    ``ray.init`` so that SIGTERM stops it like Ctrl-C, through its ``finally`` blocks (which
    shut Ray down), with exit code 143.
    Outside a command (a library caller, a test) it does nothing.
    """
    if _commands_running:
        _install_sigterm_handler()


def _install_sigterm_handler():
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except (ValueError, OSError):
        return None


def _restore_sigterm_handler(previous) -> None:
    if previous is not None:
        try:
            signal.signal(signal.SIGTERM, previous)
        except (ValueError, OSError):
            pass
