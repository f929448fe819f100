"""Structured logging with structlog; configured by entry points only, never on import.

A log line never holds a secret or a job's data: exceptions are rendered as type, message and
frames, without the frames' local variables (which held payloads, principals and tokens); fields
named like a secret or a payload are replaced; JWTs are cut out of any text; long values are cut
short. One line stays a few kilobytes at most, whatever failed.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.types import ExcInfo

__all__ = ["configure_logging", "redact_secrets"]

#: fields whose values never reach a log line (matched case-insensitively; ``*_token`` too)
SECRET_FIELDS = frozenset(
    {"token", "api_key", "apikey", "authorization", "jwt", "password", "secret", "payload", "cookie"}
)
REDACTED = "[redacted]"
MAX_VALUE_CHARS = 500  # a field's text beyond this is cut
MAX_FRAMES = 12  # an exception keeps its outermost and innermost frames, this many in all
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_frames = ExceptionDictTransformer(show_locals=False, max_frames=MAX_FRAMES)


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return lowered in SECRET_FIELDS or lowered.endswith(("_token", "_secret", "_key"))


def _clean(value: Any) -> Any:
    """Text without JWTs and cut to ``MAX_VALUE_CHARS``; containers cleaned item by item."""
    if isinstance(value, str):
        value = _JWT.sub("[jwt]", value)
        return value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS] + "…"
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and _is_secret(k) else _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: secret and payload fields replaced, JWTs cut out, long text cut short."""
    for key, value in list(event_dict.items()):
        if key in ("exc_info", "exception"):
            continue
        event_dict[key] = REDACTED if _is_secret(key) else _clean(value)
    return event_dict


def exception_dicts(exc_info: ExcInfo) -> list[dict[str, Any]]:
    """An exception as structlog's dicts: type, message (cut short) and frames, no locals."""
    stacks = _frames(exc_info)
    for stack in stacks:
        stack["exc_value"] = _clean(str(stack.get("exc_value", "")))
    return stacks


def _orjson_dumps(value: Any, **kwargs: Any) -> str:
    """structlog's serializer: orjson, because every log line is serialised on the hot path and the
    stdlib ``json`` made that line a visible share of a request's time (bench/README.md).

    ``kwargs`` is what ``JSONRenderer`` passes (``default``: the fallback for odd values).
    """
    return orjson.dumps(value, default=kwargs.get("default"), option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """JSON lines when not on a terminal (or ``fmt="json"``), readable colours on one."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    processors: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor
    if use_json:
        processors += [structlog.processors.ExceptionRenderer(exception_dicts), redact_secrets]
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    else:
        processors += [redact_secrets]
        renderer = structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False, max_frames=MAX_FRAMES)
        )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=max(numeric, logging.WARNING), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
