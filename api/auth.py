"""Who is calling: bearer tokens from ``JOBPULSE_API_KEYS``, HS256 JWTs, or the generated admin token.

A token maps to a ``Principal``. An unknown or malformed token raises ``UnauthenticatedError``;
a genuine token whose role jobpulse does not know raises ``ForbiddenError``.

A browser sends the same JWT with every request, and verifying it (an HMAC and the claims) is a
sizeable share of a small request: the last ``JWT_CACHE_SIZE`` verified tokens are remembered
with their identity, and a remembered one is refused once its ``exp`` has passed, as a fresh one is.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jwt

from core.errors import ConfigurationError, ForbiddenError, UnauthenticatedError
from core.models import Principal
from core.settings import Settings

__all__ = [
    "ADMIN_TOKEN_FILE",
    "ROLES",
    "Authenticator",
    "Identity",
    "bearer_token",
    "load_or_create_admin_token",
    "parse_api_keys",
]

ROLES = frozenset({"user", "admin"})
ADMIN_TOKEN_FILE = "admin-token"
GENERATED_ADMIN_SUBJECT = "admin"
JWT_CACHE_SIZE = 1024
#: PyJWT's words for an expired token, so that a remembered one is refused in the same words
_EXPIRED = "invalid token: Signature has expired"


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated principal, and when its credentials stop being valid (JWT ``exp``)."""

    principal: Principal
    expires_at: datetime | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def _digest(token: str) -> bytes:
    # Keys are looked up by digest, so the lookup time does not depend on how much of a token matches.
    return hashlib.sha256(token.encode()).digest()


def parse_api_keys(text: str) -> dict[bytes, Principal]:
    """``token=subject:role,…`` → token digest → principal; raise ``ConfigurationError`` if malformed."""
    keys: dict[bytes, Principal] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        token, sep, who = entry.partition("=")
        subject, colon, role = who.rpartition(":")
        if not sep or not colon or not token.strip() or not subject.strip():
            raise ConfigurationError("JOBPULSE_API_KEYS entries must look like token=subject:role")
        role = role.strip()
        if role not in ROLES:
            raise ConfigurationError(f"JOBPULSE_API_KEYS: role must be one of {sorted(ROLES)}, got {role!r}")
        keys[_digest(token.strip())] = Principal(subject.strip(), role)
    return keys


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` value; raise ``UnauthenticatedError`` if absent."""
    if not authorization:
        raise UnauthenticatedError("missing Authorization: Bearer <token>")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError("the Authorization header must be 'Bearer <token>'")
    return token.strip()


class Authenticator:
    """Turns a bearer token into an ``Identity``, by API key, then JWT, then the generated admin token."""

    def __init__(
        self,
        *,
        api_keys: dict[bytes, Principal],
        jwt_secret: str | None,
        admin_token: str | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._keys = dict(api_keys)
        self._jwt_secret = jwt_secret
        self._clock = clock
        self._verified: OrderedDict[str, Identity] = OrderedDict()  # token -> identity, oldest first
        if admin_token is not None:
            self._keys[_digest(admin_token)] = Principal(GENERATED_ADMIN_SUBJECT, "admin")

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        """The authenticator the settings describe (generating the admin token if nothing is configured)."""
        return cls(
            api_keys=parse_api_keys(settings.api_keys or ""),
            jwt_secret=settings.jwt_secret or None,
            admin_token=load_or_create_admin_token(settings),
        )

    def authenticate(self, authorization: str | None) -> Identity:
        """The identity an ``Authorization`` header value proves."""
        token = bearer_token(authorization)
        principal = self._keys.get(_digest(token))
        if principal is not None:
            return Identity(principal)
        if self._jwt_secret is not None and token.count(".") == 2:
            return self._verified_jwt(token, self._jwt_secret)
        raise UnauthenticatedError("invalid token")

    def _verified_jwt(self, token: str, secret: str) -> Identity:
        """``_from_jwt``, remembered for the token's lifetime (see the module docstring)."""
        identity = self._verified.get(token)
        if identity is not None:
            if identity.expired(self._clock()):
                del self._verified[token]
                raise UnauthenticatedError(_EXPIRED)
            self._verified.move_to_end(token)
            return identity
        identity = self._from_jwt(token, secret)
        self._verified[token] = identity
        if len(self._verified) > JWT_CACHE_SIZE:
            self._verified.popitem(last=False)
        return identity

    @staticmethod
    def _from_jwt(token: str, secret: str) -> Identity:
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]})
        except jwt.PyJWTError as exc:
            raise UnauthenticatedError(f"invalid token: {exc}") from exc
        subject, role = claims.get("sub"), claims.get("role", "user")
        if not isinstance(subject, str) or not subject:
            raise UnauthenticatedError("invalid token: 'sub' must be a non-empty string")
        if role not in ROLES:
            raise ForbiddenError(f"role {role!r} may not use this API")
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        return Identity(Principal(subject, str(role)), expires_at)


def load_or_create_admin_token(settings: Settings) -> str | None:
    """The generated admin token, kept in the data directory (mode 0600) across restarts.

    ``None`` when API keys or a JWT secret are configured: then there is no generated token.
    """
    if settings.api_keys or settings.jwt_secret:
        return None
    path = Path(settings.data_dir) / ADMIN_TOKEN_FILE
    existing = _read_token(path)
    if existing is not None:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # Written whole to a private file, then linked into place: a reader never sees a half-written
    # token, and when two processes start at once the first link wins and both use its token.
    staging = path.with_name(f".{ADMIN_TOKEN_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(staging, path)
        except FileExistsError:
            raced = _read_token(path)
            if raced is None:
                raise ConfigurationError(f"{path} exists but holds no token") from None
            return raced
    finally:
        staging.unlink(missing_ok=True)
    return token


def _read_token(path: Path) -> str | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    return text or None


def tokens_match(a: str, b: str) -> bool:
    """Constant-time comparison of two tokens (for single-token checks such as the metrics token)."""
    return hmac.compare_digest(a.encode(), b.encode())
