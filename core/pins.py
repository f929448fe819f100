"""The library versions jobpulse's fast paths were tested on, and the check that keeps them honest.

The fast paths (``api/fast/``, and the Redis bus's read of hiredis's parsed buffer in
``core/backends/bus/hiredis_buffer.py``) use private names of strawberry-graphql, graphql-core,
redis and hiredis. ``pyproject.toml`` pins those libraries to ``TESTED``, the ranges the
differential tests (``tests/api/fast/``) passed on; keep the two in step. Should another version
be installed anyway, ``is_tested`` answers ``False`` and warns once (``RuntimeWarning``), and the
caller takes the stock path: slower, never broken.
"""

from __future__ import annotations

import functools
import re
import warnings
from importlib import metadata

__all__ = ["TESTED", "is_tested"]

#: distribution name → (lowest tested version, first version not tested)
TESTED: dict[str, tuple[str, str]] = {
    "strawberry-graphql": ("0.341.2", "0.342"),
    "graphql-core": ("3.3.2", "3.4"),
    "redis": ("8.1.0", "8.2"),
    "hiredis": ("3.5.0", "3.6"),
}

_RELEASE = re.compile(r"\d+(?:\.\d+)*")


def _release(version: str) -> tuple[int, ...]:
    """The numeric release of a version (``3.3.2`` of ``3.3.2rc1``); ``()`` if there is none."""
    match = _RELEASE.match(version)
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def _installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def _within(distribution: str, version: str | None) -> bool:
    """Cached per version, so each version outside the range is warned about once per process."""
    lower, upper = TESTED[distribution]
    if version is not None and _release(lower) <= _release(version) < _release(upper):
        return True
    found = "not installed" if version is None else f"{version} is installed"
    warnings.warn(
        f"jobpulse's fast paths were tested on {distribution}>={lower},<{upper} and {found}: "
        "they are off, and the stock path serves instead",
        RuntimeWarning,
        stacklevel=3,
    )
    return False


def is_tested(*distributions: str) -> bool:
    """Whether every one of ``distributions`` is installed at a version inside ``TESTED``."""
    return all([_within(name, _installed(name)) for name in distributions])
