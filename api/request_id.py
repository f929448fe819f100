"""Request ids: the caller's ``X-Request-ID`` when it is plain enough to log, else a new one."""

from __future__ import annotations

import itertools
import os
import re

__all__ = ["REQUEST_ID_HEADER", "acceptable_request_id", "new_request_id"]

REQUEST_ID_HEADER = "X-Request-ID"
#: a caller's id is kept only if it is short and plain, so it cannot forge or flood log lines
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

_PROCESS = os.urandom(8).hex()
_issued = itertools.count()


def new_request_id() -> str:
    """32 hex digits, unique without a system call per request: 64 random bits per process (made
    at import), then a counter. Every request pays for this, and ``uuid4`` reads the OS's random
    source each time."""
    return f"{_PROCESS}{next(_issued):016x}"


def acceptable_request_id(value: bytes) -> str | None:
    """A caller's ``X-Request-ID`` header value as text, if it is one we keep."""
    text = value.decode("latin-1")
    return text if _ACCEPTABLE.fullmatch(text) else None
