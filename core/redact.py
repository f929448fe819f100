"""What of the configuration may be shown (in messages, logs, ``jobpulse check``): never a secret."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from pydantic import ValidationError

__all__ = ["MASK", "mask_url", "settings_problem"]

MASK = "***"
_SECRET_PARAMETERS = {
    "password", "pass", "secret", "token", "x-amz-security-token", "authmechanismproperties"
}  # fmt: skip


def mask_url(url: str) -> str:
    """``url`` with the password of its user info, and any password-like query value, replaced by ``***``.

    Works on URLs ``urllib`` does not split well (several MongoDB hosts, ``mongodb+srv``); a
    string that is not a URL comes back unchanged.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    userinfo, at, hosts = netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hosts}" if colon else netloc
    path, question, query = tail.partition("?")
    if question:
        fragment = ""
        if "#" in query:
            query, fragment = query.split("#", 1)
            fragment = "#" + fragment
        pairs = [
            (key, MASK if key.lower() in _SECRET_PARAMETERS else value)
            for key, value in parse_qsl(query, keep_blank_values=True)
        ]
        tail = f"{path}?{urlencode(pairs, safe='*:,/')}{fragment}"
    return f"{scheme}://{netloc}{tail}"


#: settings whose values are never shown, even when invalid
_SECRET_SETTINGS = ("api_keys", "jwt_secret", "metrics_token", "job_token_secret")
_ALIASES = {"aws_region": "AWS_REGION"}


def _variable(field: str) -> str:
    return _ALIASES.get(field, f"JOBPULSE_{field.upper()}")


def settings_problem(error: ValidationError) -> str:
    """``Settings()``'s validation error as one line naming each variable, its value and its shape."""
    parts = []
    for item in error.errors(include_url=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        shown = ""
        if field not in _SECRET_SETTINGS and "input" in item and isinstance(item["input"], str | int | float):
            value = mask_url(str(item["input"]))
            shown = f"={value[:80]!r}"
        message = str(item["msg"]).replace("Input should be", "should be")
        parts.append(f"{_variable(field)}{shown}: {message}")
    return "; ".join(parts)
