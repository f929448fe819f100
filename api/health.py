"""``/healthz`` (the process answers) and ``/readyz`` (every configured backend answers)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse

from core.backends import Backends
from core.blobs import BlobStore
from core.ports import EventBus, JobQueue, JobStore

__all__ = ["PING_TIMEOUT_SECONDS", "healthz", "readyz"]

PING_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _ping(name: str, backends: Backends) -> dict[str, object]:
    by_name: dict[str, JobStore | JobQueue | EventBus | BlobStore | None] = {
        "store": backends.store,
        "queue": backends.queue,
        "bus": backends.bus,
        "blobs": backends.blobs,
    }
    backend = by_name[name]
    assert backend is not None
    report: dict[str, object] = {"kind": backends.kinds.get(name, "unknown")}
    try:
        await asyncio.wait_for(backend.ping(), PING_TIMEOUT_SECONDS)
    except TimeoutError:
        report.update(ok=False, error=f"no answer within {PING_TIMEOUT_SECONDS}s")
    except Exception as exc:  # any failure means not ready, and is reported
        report.update(ok=False, error=str(exc) or type(exc).__name__)
    else:
        report.update(ok=True)
    return report


async def readyz(request: Request) -> JSONResponse:
    backends: Backends = request.app.state.backends
    names = ["store", "queue", "bus", *(["blobs"] if backends.blobs is not None else [])]
    reports = await asyncio.gather(*(_ping(name, backends) for name in names))
    ready = all(report["ok"] for report in reports)
    body = {"status": "ok" if ready else "unavailable", "backends": dict(zip(names, reports, strict=True))}
    return JSONResponse(body, status_code=200 if ready else 503)
