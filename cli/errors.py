"""Configuration and start-up errors as one line on stderr and exit status 2.

``jobpulse: <what is wrong>; <what to do>``. The traceback too only with ``jobpulse --debug …``
or ``JOBPULSE_LOG_LEVEL=DEBUG``. Errors jobpulse does not know stay tracebacks: they are bugs.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError

from core.errors import BackendUnavailableError, ConfigurationError
from core.redact import settings_problem

__all__ = [
    "EXIT_CONFIGURATION",
    "StartupError",
    "debugging",
    "describe",
    "one_line_errors",
    "set_debug",
    "show",
]

#: the exit status of a configuration or start-up error (as click's for a bad option)
EXIT_CONFIGURATION = 2
CHECK_HINT = "`jobpulse check` tests every setting and backend"

_debug = False


class StartupError(Exception):
    """A problem found before anything started, with what to do about it."""

    def __init__(self, problem: str, remedy: str) -> None:
        super().__init__(f"{problem}; {remedy}")
        self.problem = problem
        self.remedy = remedy


def set_debug(debug: bool) -> None:
    """``--debug``: print the traceback above the one line."""
    global _debug
    _debug = debug


def debugging() -> bool:
    """Whether tracebacks are wanted (``--debug`` or ``JOBPULSE_LOG_LEVEL=DEBUG``)."""
    return _debug or os.environ.get("JOBPULSE_LOG_LEVEL", "").strip().upper() == "DEBUG"


def describe(exc: BaseException) -> str | None:
    """The one line for a configuration or start-up error, or ``None`` for any other exception."""
    if isinstance(exc, StartupError):
        return f"jobpulse: {exc}"
    if isinstance(exc, ValidationError):
        return f"jobpulse: invalid configuration: {settings_problem(exc)}; fix or unset it"
    if isinstance(exc, ConfigurationError):
        return f"jobpulse: {' '.join(str(exc).split())}; fix the configuration ({CHECK_HINT})"
    if isinstance(exc, BackendUnavailableError):
        return f"jobpulse: {' '.join(str(exc).split())}; check that it runs and its URL ({CHECK_HINT})"
    return None


def show(line: str, exc: BaseException | None = None) -> None:
    """Print ``line`` on stderr (after ``exc``'s traceback when debugging)."""
    if exc is not None and debugging():
        traceback.print_exception(exc, file=sys.stderr)
    print(line, file=sys.stderr, flush=True)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn the errors ``describe`` knows into their line and ``SystemExit(2)``."""
    try:
        yield
    except Exception as exc:
        line = describe(exc)
        if line is None:
            raise
        show(line, exc)
        raise SystemExit(EXIT_CONFIGURATION) from None
