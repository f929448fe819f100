"""Job tokens: what an external processor holds for one claim of one job (``claimJob``).

A token is ``jpt1.<payload>.<signature>``. The payload (base64url JSON) names the job, the claim's
owner and attempt, the lease length and the expiry; the signature is HMAC-SHA256 of
``jpt1.<payload>`` under the job-token secret, checked with ``hmac.compare_digest``. A good token
proves that jobpulse handed out this claim; whether the claim still holds is the store's business
(every write checks it against the job, ``Job.check_claim``), so a token never outlives its claim.

The secret, the first that is set:

1. ``JOBPULSE_JOB_TOKEN_SECRET``;
2. derived from ``JOBPULSE_JWT_SECRET`` (an HMAC of a fixed label: a job token's signature is
   never a JWT's, and the JWT secret cannot be recovered from it);
3. generated on first use and kept in ``<data dir>/job-token-secret`` (mode 0600), like the admin
   token. Processes on other machines do not share it: set 1 or 2 when several API processes run.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from core.errors import ConfigurationError, UserFacingError
from core.models import Claim
from core.settings import Settings

__all__ = ["SECRET_FILE", "ClaimLostError", "InvalidJobTokenError", "JobToken", "JobTokenCodec"]

PREFIX = "jpt1"
SECRET_FILE = "job-token-secret"
MAX_TOKEN_CHARS = 4096
_JWT_LABEL = b"jobpulse job tokens v1"


class InvalidJobTokenError(UserFacingError):
    """INVALID_TOKEN: the job token is malformed, forged, signed with another secret, or expired."""

    code = "INVALID_TOKEN"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="token")


class ClaimLostError(UserFacingError):
    """CLAIM_LOST: a genuine token whose claim is over (expired and taken again, cancelled, finished)."""

    code = "CLAIM_LOST"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="token")


@dataclass(frozen=True, slots=True)
class JobToken:
    """One claim of one job as an external processor holds it."""

    claim: Claim
    lease_seconds: float
    expires_at: datetime


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class JobTokenCodec:
    """Signs and verifies job tokens with one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ConfigurationError("the job-token secret must be at least 16 bytes")
        self._secret = secret

    @classmethod
    def from_settings(cls, settings: Settings) -> JobTokenCodec:
        """The codec with the secret the settings name (see the module docstring for the order)."""
        if settings.job_token_secret:
            return cls(settings.job_token_secret.encode())
        if settings.jwt_secret:
            return cls(hmac.new(settings.jwt_secret.encode(), _JWT_LABEL, hashlib.sha256).digest())
        return cls(_load_or_create_secret(Path(settings.data_dir) / SECRET_FILE))

    def _sign(self, signed: str) -> str:
        return _b64encode(hmac.new(self._secret, signed.encode(), hashlib.sha256).digest())

    def encode(self, token: JobToken) -> str:
        claim = token.claim
        body = {
            "j": claim.job_id,
            "w": claim.worker_id,
            "a": claim.attempt,
            "l": token.lease_seconds,
            "e": int(token.expires_at.timestamp()),
        }
        signed = f"{PREFIX}.{_b64encode(orjson.dumps(body))}"
        return f"{signed}.{self._sign(signed)}"

    def decode(self, text: str, now: datetime) -> JobToken:
        """The token ``text`` carries; raise ``InvalidJobTokenError`` unless it is genuine and current."""
        parts = text.split(".") if len(text) <= MAX_TOKEN_CHARS else []
        if len(parts) != 3 or parts[0] != PREFIX:
            raise InvalidJobTokenError("not a job token (claimJob hands them out)")
        signed = f"{parts[0]}.{parts[1]}"
        if not hmac.compare_digest(self._sign(signed).encode(), parts[2].encode()):
            raise InvalidJobTokenError("the job token's signature does not match")
        try:
            body = orjson.loads(_b64decode(parts[1]))
            claim = Claim(str(body["j"]), str(body["w"]), int(body["a"]))
            lease = float(body["l"])
            expires_at = datetime.fromtimestamp(int(body["e"]), UTC)
        except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            # Only a holder of the secret can sign, so this is a bug of an older version, not an attack.
            raise InvalidJobTokenError("the job token's content is not readable") from exc
        if now >= expires_at:
            raise InvalidJobTokenError(f"the job token expired at {expires_at.isoformat()}")
        return JobToken(claim, lease, expires_at)


def _load_or_create_secret(path: Path) -> bytes:
    """The secret kept at ``path``, created (whole, mode 0600) if missing; a racing creator's wins."""
    existing = _read_secret(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        # Linked into place: a reader never sees half a secret, and the first of two creators wins.
        with contextlib.suppress(FileExistsError):
            os.link(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    secret = _read_secret(path)
    if secret is None:
        raise ConfigurationError(f"{path} exists but holds no job-token secret")
    return secret


def _read_secret(path: Path) -> bytes | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return text.encode() or None
