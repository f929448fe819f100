"""The access log: one line per HTTP request, at debug level.

Debug, not info: a line per request is a measurable share of a small request's cost (bench/README.md,
figures 1 and 2) for what a proxy's access log or ``/metrics`` already gives. Failures are still
logged where they happen; ``JOBPULSE_LOG_LEVEL=DEBUG`` shows these lines.
"""

from __future__ import annotations

import time

import structlog
from starlette.types import Scope

__all__ = ["log_request"]

log = structlog.get_logger("jobpulse.http")


def log_request(scope: Scope, status: int, started: float) -> None:
    """Log the request of ``scope``, answered with ``status`` (0: none, logged as 500) since ``started``."""
    path: str = scope.get("path", "")
    log.debug(
        "http request",
        method=scope.get("method"),
        path=path,
        status=status or 500,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
