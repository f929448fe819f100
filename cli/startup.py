"""Before ``serve``, ``api`` or ``worker`` start anything: the configuration is checked, the
listener bound, and the backends waited for (``JOBPULSE_STARTUP_TIMEOUT``); any problem is one
``StartupError`` (one line, exit 2) and nothing has started.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette

from cli.errors import StartupError, debugging, describe
from core.backends.probe import Probe, directory_problem, probe_backends
from core.errors import ConfigurationError
from core.settings import Settings

__all__ = [
    "LifespanGuard",
    "bind_listener",
    "data_dir_uses",
    "describe_probe",
    "token_problems",
    "validate",
    "wait_for_backends",
]

#: a probe's own timeout while waiting: long enough for a slow server, short enough to retry
PROBE_TIMEOUT = 5.0
PROBE_FLOOR = 2.0
KEYS_SHAPE = "write entries as token=subject:role (role user or admin), comma-separated"


def token_problems(settings: Settings) -> list[tuple[str, str]]:
    """What is wrong with the tokens (problem, remedy); an entry is named by position, never shown."""
    from api.auth import parse_api_keys

    problems = []
    entries = [entry.strip() for entry in (settings.api_keys or "").split(",")]
    for number, entry in enumerate(entries, 1):
        if not entry:
            continue
        try:
            parse_api_keys(entry)
        except ConfigurationError as exc:
            role = str(exc).partition("role must be one of")[2]
            what = f"has role{role.split(', got', 1)[1]}" if role else "is not token=subject:role"
            problems.append((f"JOBPULSE_API_KEYS entry {number} of {len(entries)} {what}", KEYS_SHAPE))
    if settings.job_token_secret is not None and len(settings.job_token_secret.encode()) < 16:
        problems.append(("JOBPULSE_JOB_TOKEN_SECRET is shorter than 16 bytes", "set a longer random secret"))
    return problems


def data_dir_uses(settings: Settings) -> list[str]:
    """What keeps files in ``JOBPULSE_DATA_DIR`` with these settings (empty: it is not used)."""
    uses = []
    if settings.mongodb_url is None:
        uses.append("the SQLite store")
    if settings.sqs_endpoint_url is None:
        uses.append("the SQLite queue")
    if not settings.api_keys and not settings.jwt_secret:
        uses.append("the generated admin token")
    return uses


def validate(settings: Settings) -> None:
    """Raise ``StartupError`` for the first configuration problem that needs no server to find."""
    for problem, remedy in token_problems(settings):
        raise StartupError(problem, remedy)
    uses = data_dir_uses(settings)
    trouble = directory_problem(settings.data_dir) if uses else None
    if trouble is not None:
        raise StartupError(
            f"JOBPULSE_DATA_DIR={str(settings.data_dir)!r}: {trouble}",
            f"set JOBPULSE_DATA_DIR to a writable directory (it holds {', '.join(uses)})",
        )


def bind_listener(host: str, port: int) -> socket.socket:
    """The API's socket, bound (not yet listening) before anything else starts."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        if isinstance(exc, socket.gaierror) or exc.errno == 99:  # EADDRNOTAVAIL: not this machine's
            raise StartupError(
                f"cannot listen on {host}:{port}: {reason}",
                "set JOBPULSE_HOST (or --host) to an address of this machine",
            ) from exc
        raise StartupError(
            f"cannot listen on {host}:{port}: {reason}",
            "stop what uses that port, or set JOBPULSE_PORT (or --port) to a free one",
        ) from exc
    sock.set_inheritable(True)
    return sock


def describe_probe(probe: Probe) -> str:
    """``MongoDB at mongodb://…/ (the store, JOBPULSE_MONGODB_URL)``."""
    where = f" at {probe.where}" if probe.where else ""
    named = f", {probe.variable}" if probe.variable else ""
    return f"{probe.kind}{where} (the {probe.role}{named})"


async def wait_for_backends(
    settings: Settings, types: Sequence[str], say: Callable[[str], None], limit_seconds: float | None = None
) -> None:
    """Return once every backend answers; retry one that does not for ``limit_seconds``
    (``JOBPULSE_STARTUP_TIMEOUT``), saying once what it waits for; then raise ``StartupError``.
    A backend that answers "no" (credentials, a missing queue) is an error at once."""
    limit = settings.startup_timeout if limit_seconds is None else limit_seconds
    deadline = time.monotonic() + limit
    announced: set[str] = set()
    pause = 0.2
    for attempt in itertools.count(1):
        remaining = deadline - time.monotonic()
        # One try (no wait): the probe's whole timeout; else short enough to try again in time.
        seconds = PROBE_TIMEOUT if limit == 0 else min(PROBE_TIMEOUT, max(PROBE_FLOOR, remaining / 2))
        # Missing queues matter only if the start may not create them (it looks them up then).
        probes = await probe_backends(settings, [] if settings.sqs_create_queues else types, seconds=seconds)
        failed = [p for p in probes if not p.ok]
        if not failed:
            return
        for probe in failed:
            if not probe.unreachable:
                fix = probe.variable or "the configuration"
                raise StartupError(
                    f"{describe_probe(probe)}: {probe.error}", f"fix {fix} or the server's settings"
                )
        if limit == 0 or (attempt > 1 and time.monotonic() >= deadline):
            probe = failed[0]
            fix = f" or fix {probe.variable}" if probe.variable else ""
            within = f" within {limit:g}s" if limit else ""
            raise StartupError(
                f"{describe_probe(probe)} did not answer{within}: {probe.error}",
                f"start it{fix} (JOBPULSE_STARTUP_TIMEOUT sets how long to wait)",
            )
        for probe in failed:
            if probe.role not in announced:
                announced.add(probe.role)
                say(f"jobpulse: waiting up to {limit:g}s for {describe_probe(probe)}: {probe.error}")
        await asyncio.sleep(min(pause, max(deadline - time.monotonic(), 0)))
        pause = min(pause * 2, 2.0)


class LifespanGuard(logging.Filter):
    """Keeps a start-up error of the app's lifespan (backends that stopped answering after the
    wait, say) for the one-line exit, instead of uvicorn's traceback and "startup failed" lines."""

    def __init__(self, app: Starlette) -> None:
        super().__init__("uvicorn.error")
        self.error: BaseException | None = None
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def guarded(app: Starlette) -> AsyncIterator[Any]:
            async with AsyncExitStack() as stack:
                try:
                    state = await stack.enter_async_context(inner(app))
                except Exception as exc:
                    if describe(exc) is not None:
                        self.error = exc
                    raise
                yield state

        app.router.lifespan_context = guarded
        logging.getLogger("uvicorn.error").addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        return self.error is None or debugging()

    def run(self, server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        """``server.run``; a start-up error the guard kept is raised as itself, not uvicorn's exit 3."""
        try:
            server.run(sockets=sockets)
        except SystemExit:
            if self.error is not None:
                raise self.error from None
            raise
        finally:
            logging.getLogger("uvicorn.error").removeFilter(self)
