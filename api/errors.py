"""Domain exceptions mapped to GraphQL errors at the boundary: ``extensions.code`` on every error.

| raised                         | ``extensions.code``                    | message              |
| ------------------------------ | -------------------------------------- | -------------------- |
| ``UnauthenticatedError``       | ``UNAUTHENTICATED``                    | kept                 |
| ``ForbiddenError``             | ``FORBIDDEN``                          | kept                 |
| ``UserFacingError``            | its ``code`` (plus ``field``)          | kept                 |
| ``BackendUnavailableError``    | ``SERVICE_UNAVAILABLE``                | generic              |
| a syntax error, token limit    | ``GRAPHQL_PARSE_FAILED``               | kept                 |
| validation, depth, aliases     | ``GRAPHQL_VALIDATION_FAILED``          | kept                 |
| anything else                  | ``INTERNAL_SERVER_ERROR``              | masked (and logged)  |
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import structlog
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension
from strawberry.types import StreamExecutionResult

from core.errors import BackendUnavailableError, ForbiddenError, UnauthenticatedError, UserFacingError

__all__ = ["ErrorCodes", "auth_error", "coded_error", "coded_errors", "is_unexpected", "log_unexpected"]

log = structlog.get_logger("jobpulse.api")

INTERNAL = "INTERNAL_SERVER_ERROR"


def coded_error(message: str, code: str, **extensions: Any) -> GraphQLError:
    """A GraphQL error with ``extensions.code``."""
    return GraphQLError(message, extensions={"code": code, **extensions})


def auth_error(exc: Exception) -> GraphQLError:
    """The GraphQL error for a failed authentication or authorisation."""
    code = "FORBIDDEN" if isinstance(exc, ForbiddenError) else "UNAUTHENTICATED"
    return coded_error(str(exc), code)


_EXPECTED = (GraphQLError, UnauthenticatedError, ForbiddenError, UserFacingError)


def is_unexpected(error: GraphQLError) -> bool:
    """An error from a bug or an outage rather than from the request."""
    original = error.original_error
    if original is None or isinstance(original, _EXPECTED):
        return False
    # Located in the document but not in the result: a literal or variable a scalar refused.
    return not (error.path is None and error.nodes)


def _classify(error: GraphQLError) -> tuple[str, str, dict[str, Any]]:
    """The code, message and extra extensions the client sees for ``error``."""
    original = error.original_error
    if isinstance(original, UnauthenticatedError):
        return "UNAUTHENTICATED", error.message, {}
    if isinstance(original, ForbiddenError):
        return "FORBIDDEN", error.message, {}
    if isinstance(original, UserFacingError):
        extra = {"field": original.field} if original.field else {}
        return original.code, original.message, extra
    if isinstance(original, BackendUnavailableError):
        return "SERVICE_UNAVAILABLE", "a backend is unavailable; try again shortly", {}
    if is_unexpected(error):
        return INTERNAL, "Internal server error", {}
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code, error.message, {}
    if isinstance(error, GraphQLSyntaxError) or isinstance(original, GraphQLSyntaxError):
        return "GRAPHQL_PARSE_FAILED", error.message, {}
    if error.path is None:
        return "GRAPHQL_VALIDATION_FAILED", error.message, {}
    return "BAD_REQUEST", error.message, {}


def _coded(error: GraphQLError) -> GraphQLError:
    code, message, extra = _classify(error)
    if (error.extensions or {}).get("code") == code and message == error.message and not extra:
        return error
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        # Dropped when masked, so nothing of the internal error reaches the client.
        original_error=None if code == INTERNAL else error.original_error,
        extensions={**(error.extensions or {}), "code": code, **extra},
    )


def coded_errors(errors: list[GraphQLError]) -> list[GraphQLError]:
    """``errors`` as the client sees them: each with ``extensions.code``, unexpected ones masked."""
    return [_coded(e) for e in errors]


class ErrorCodes(SchemaExtension):
    """Gives every error of a result an ``extensions.code`` and masks unexpected ones."""

    _streamed = False

    def _process(self, result: object) -> None:
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = coded_errors(errors)  # type: ignore[attr-defined]

    def on_operation(self) -> Iterator[None]:
        self._streamed = False
        yield
        if not self._streamed:
            self._process(self.execution_context.result)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        self._streamed = True
        self._process(result)
        yield None


def log_unexpected(errors: list[GraphQLError]) -> None:
    """Log the errors that are bugs or outages, with their traceback; the rest are the client's."""
    for error in errors:
        if is_unexpected(error):
            original = error.original_error
            log.error(
                "graphql resolver failed",
                path=error.path,
                error=repr(original),
                exc_info=(type(original), original, original.__traceback__) if original else None,
            )
