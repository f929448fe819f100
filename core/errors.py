"""The exception tree of jobpulse.

    JobpulseError
    ├── UserFacingError            shown to the client as a GraphQL ``UserError`` with ``code``
    │   ├── ValidationError            VALIDATION: bad input (with ``field``)
    │   ├── UnknownJobTypeError        UNKNOWN_JOB_TYPE
    │   ├── PayloadTooLargeError       PAYLOAD_TOO_LARGE
    │   ├── JobNotFoundError           NOT_FOUND: missing, or owned by someone else
    │   ├── InvalidStateError          INVALID_STATE: the transition is not allowed from this status
    │   └── RateLimitedError           RATE_LIMITED
    ├── AuthError
    │   ├── UnauthenticatedError       no token, or a wrong one
    │   └── ForbiddenError             a valid token that may not do this
    ├── ConflictError              a conditional write lost the race (internal: re-read and decide again)
    ├── LeaseLostError             a worker's claim is no longer the job's current claim
    ├── BackendError
    │   └── BackendUnavailableError    a store, queue or bus did not answer
    └── ConfigurationError         settings that cannot work together

Handlers raise the control-flow exceptions in ``core.jobtypes`` (``Retry``, ``PermanentError``);
they are not errors of jobpulse itself and live there.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BackendError",
    "BackendUnavailableError",
    "ConfigurationError",
    "ConflictError",
    "ForbiddenError",
    "InvalidStateError",
    "JobNotFoundError",
    "JobpulseError",
    "LeaseLostError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "UnauthenticatedError",
    "UnknownJobTypeError",
    "UserFacingError",
    "ValidationError",
]


class JobpulseError(Exception):
    """Base class of every error jobpulse raises on purpose."""


class UserFacingError(JobpulseError):
    """An error the client caused and can fix; carries an API ``ErrorCode`` name."""

    code = "VALIDATION"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ValidationError(UserFacingError):
    """The input does not satisfy its schema or limits."""

    code = "VALIDATION"


class UnknownJobTypeError(UserFacingError):
    """No handler is registered for the requested job type."""

    code = "UNKNOWN_JOB_TYPE"


class PayloadTooLargeError(UserFacingError):
    """The payload is larger than ``JOBPULSE_MAX_PAYLOAD_BYTES``."""

    code = "PAYLOAD_TOO_LARGE"


class JobNotFoundError(UserFacingError):
    """The job does not exist, or belongs to someone the caller may not see."""

    code = "NOT_FOUND"


class InvalidStateError(UserFacingError):
    """The requested transition is not allowed from the job's current status."""

    code = "INVALID_STATE"


class RateLimitedError(UserFacingError):
    """The caller sent too much too fast; ``retry_after_seconds``: when to try again."""

    code = "RATE_LIMITED"

    def __init__(
        self, message: str, *, field: str | None = None, retry_after_seconds: float | None = None
    ) -> None:
        super().__init__(message, field=field)
        self.retry_after_seconds = retry_after_seconds


class AuthError(JobpulseError):
    """Authentication or authorisation failed."""


class UnauthenticatedError(AuthError):
    """No credentials, or credentials that are not valid."""


class ForbiddenError(AuthError):
    """Valid credentials that are not allowed to do this."""


class ConflictError(JobpulseError):
    """A conditional write found the job changed since it was read."""


class LeaseLostError(JobpulseError):
    """The worker's claim on a job has expired or been superseded."""


class BackendError(JobpulseError):
    """A backend failed in a way the caller cannot fix."""


class BackendUnavailableError(BackendError):
    """A backend (store, queue, bus) could not be reached."""


class ConfigurationError(JobpulseError):
    """The configuration cannot work."""
