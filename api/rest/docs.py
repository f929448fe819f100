"""``/api/v1/docs``: the vendored Swagger UI on the OpenAPI document (no token needed, works offline)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from api.dashboard import STATIC_DIR

__all__ = ["docs_routes"]

# Swagger UI sets inline styles and shows data: images; its scripts are files of our own origin.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def docs_routes(path: str) -> list[BaseRoute]:
    """``GET path``: the docs page (its scripts are under ``/static``)."""
    page = (STATIC_DIR / "api-docs.html").read_text(encoding="utf-8")

    async def docs(request: Request) -> Response:
        return HTMLResponse(page, headers=_HEADERS)

    return [Route(path, docs, methods=["GET", "HEAD"], name="rest_docs")]
