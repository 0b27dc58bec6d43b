"""User-facing errors: one clear line, exit code 2, no traceback.

Library code raises :class:`UserError` (or a subclass) for anything a user can fix:
a malformed space file, an unknown model id, a missing or corrupt image, weights that do
not match a model. Command-line entry points wrap their ``main`` with :func:`cli_main`,
which turns such an error into ``error: <message>`` on stderr and exit status 2.
"""

from __future__ import annotations

import functools
import sys
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


def cli_main(func: F) -> F:
    """Decorate a CLI ``main(argv=None)``: UserError -> one line on stderr, exit 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            message = " ".join(str(exc).split())  # always a single line
            print(f"error: {message}", file=sys.stderr)
            raise SystemExit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper  # type: ignore[return-value]
