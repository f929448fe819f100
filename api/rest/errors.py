"""REST errors: every refusal as ``{"error": {"code", "message", "field"}}`` with its HTTP status.

| raised / found                         | status | ``code``                          |
| -------------------------------------- | ------ | --------------------------------- |
| malformed JSON, body not an object     | 400    | ``BAD_REQUEST``                   |
| ``UnauthenticatedError``               | 401    | ``UNAUTHENTICATED``               |
| ``ForbiddenError``                     | 403    | ``FORBIDDEN``                     |
| ``JobNotFoundError``, an id not an id  | 404    | ``NOT_FOUND``                     |
| a method the route does not take       | 405    | ``METHOD_NOT_ALLOWED`` (``Allow``)|
| ``InvalidStateError``                  | 409    | ``INVALID_STATE``                 |
| ``PayloadTooLargeError``, huge bodies  | 413    | ``PAYLOAD_TOO_LARGE``             |
| another content type than JSON         | 415    | ``UNSUPPORTED_MEDIA_TYPE``        |
| pydantic's refusal, ``ValidationError``| 422    | ``VALIDATION``                    |
| ``UnknownJobTypeError``                | 422    | ``UNKNOWN_JOB_TYPE``              |
| ``RateLimitedError``                   | 429    | ``RATE_LIMITED`` (``Retry-After``)|
| ``BackendUnavailableError``            | 503    | ``SERVICE_UNAVAILABLE``           |
"""

from __future__ import annotations

import math

import pydantic
from starlette.responses import JSONResponse

from core.errors import AuthError, BackendUnavailableError, ForbiddenError, UserFacingError

__all__ = ["STATUS_BY_CODE", "RestError", "error_response", "validation_error"]

STATUS_BY_CODE = {
    "BAD_REQUEST": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "INVALID_STATE": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "VALIDATION": 422,
    "UNKNOWN_JOB_TYPE": 422,
    "RATE_LIMITED": 429,
    "SERVICE_UNAVAILABLE": 503,
}


class RestError(Exception):
    """A refusal of the REST layer itself (the body, the content type), before the service is asked."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def _body(code: str, message: str, field: str | None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "field": field}},
        status_code=STATUS_BY_CODE.get(code, 400),
        headers=headers,
    )


def validation_error(exc: pydantic.ValidationError) -> RestError:
    """pydantic's first complaint as a ``VALIDATION`` error naming the field (dotted, camelCase)."""
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    return RestError("VALIDATION", f"{field}: {first['msg']}" if field else first["msg"], field)


def error_response(exc: Exception) -> JSONResponse:
    """The REST answer to ``exc``; raise it again if it is not a refusal (a bug: a 500)."""
    if isinstance(exc, RestError):
        return _body(exc.code, exc.message, exc.field)
    if isinstance(exc, AuthError):
        code = "FORBIDDEN" if isinstance(exc, ForbiddenError) else "UNAUTHENTICATED"
        headers = None if code == "FORBIDDEN" else {"WWW-Authenticate": "Bearer"}
        return _body(code, str(exc), None, headers)
    if isinstance(exc, UserFacingError):
        headers = None
        retry_after = getattr(exc, "retry_after_seconds", None)
        if exc.code == "RATE_LIMITED" and isinstance(retry_after, int | float):
            headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}
        return _body(exc.code, exc.message, exc.field, headers)
    if isinstance(exc, BackendUnavailableError):
        return _body("SERVICE_UNAVAILABLE", "a backend is unavailable; try again shortly", None)
    raise exc
