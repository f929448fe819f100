"""The live dashboard: one HTML page at ``/`` and its static files (plain JS modules, no build step).

The page needs no token to load; it asks for one and then talks to ``/graphql`` like any client.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

__all__ = ["STATIC_DIR", "dashboard_routes"]

STATIC_DIR = Path(__file__).parent / "static"

# The page loads only its own files, and talks only to its own origin (HTTP and websocket).
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _RevalidatedStaticFiles(StaticFiles):
    """Static files a browser must revalidate (a cheap 304) before use, so an upgrade shows at once."""

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def dashboard_routes() -> list[BaseRoute]:
    """``GET /`` (the page) and ``/static/*`` (its scripts, styles and the vendored graphql-ws)."""
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")

    async def index(request: Request) -> Response:
        return HTMLResponse(page, headers=_SECURITY_HEADERS)

    return [
        Route("/", index, methods=["GET", "HEAD"], name="dashboard"),
        Mount("/static", app=_RevalidatedStaticFiles(directory=STATIC_DIR), name="static"),
    ]
