"""The dashboard survives a server restart: it shows the outage, reconnects by itself, and resumes
its event feed from the last cursor, so a change made while it was away still reaches the page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.dashboard.conftest import cancel, row, serve, sign_in, submit

pytestmark = pytest.mark.browser


class Gate:
    """Stands between the page and the server's websocket: open, it passes the socket through;
    closed, it turns every new connection away (as a server that is down would), so the test
    decides when the page may come back."""

    def __init__(self) -> None:
        self.open = True
        self.current: WebSocketRoute | None = None
        self.subscribed: list[dict[str, Any]] = []  # the variables of each subscribe the page sent

    def route(self, ws: WebSocketRoute) -> None:
        if not self.open:
            ws.close(code=1013, reason="try again later")
            return
        self.current = ws
        server = ws.connect_to_server()

        def to_server(message: str | bytes) -> None:
            parsed = json.loads(message)
            if parsed.get("type") == "subscribe":
                self.subscribed.append(parsed["payload"].get("variables") or {})
            server.send(message)

        ws.on_message(to_server)

    def shut(self) -> None:
        """Close the gate and drop the live connection."""
        self.open = False
        if self.current is not None:
            self.current.close(code=1012, reason="service restart")
            self.current = None


def test_reconnects_after_a_restart_and_shows_what_changed_meanwhile(page: Page, tmp_path: Path) -> None:
    """Server restarted while the page was away, a job cancelled meanwhile: the page comes back Live and shows it."""
    server = serve(tmp_path / "data", tmp_path / "serve.log")
    try:
        gate = Gate()
        page.route_web_socket("**/graphql", gate.route)
        sign_in(page, server.url)
        job_id = submit(server, type="noop", payload={}, delaySeconds=3600)
        expect(row(page, job_id).locator(".badge")).to_have_text("PENDING")

        # The page loses its connection, and the server restarts on the same port and data.
        gate.shut()
        expect(page.locator(".conn")).to_have_attribute("data-state", "reconnecting")
        expect(page.locator("#conn-banner")).to_contain_text("Reconnecting")
        server.restart()

        # While the page is away, another client cancels the job.
        cancel(server, job_id)
        expect(row(page, job_id).locator(".badge")).to_have_text("PENDING")

        # Let the page back in: it reconnects by itself and replays what it missed.
        gate.open = True
        expect(page.locator(".conn")).to_have_attribute("data-state", "live")
        expect(page.locator("#conn-banner")).to_be_hidden()
        expect(row(page, job_id).locator(".badge")).to_have_text("CANCELLED")
        # The first subscription started from the present's cursor (eventCursor, read before the
        # first listing: nothing between the two is missed); the last resumed from the last event seen.
        first, last = gate.subscribed[0]["after"], gate.subscribed[-1]["after"]
        assert isinstance(first, str) and isinstance(last, str)
        assert last != first
    finally:
        server.terminate()


def test_reconnects_after_the_server_is_killed(page: Page, tmp_path: Path) -> None:
    """kill -9 of the server: the page says it is reconnecting, then is Live again once the server is back."""
    server = serve(tmp_path / "data", tmp_path / "serve.log")
    try:
        sign_in(page, server.url)
        server.kill()
        expect(page.locator(".conn")).to_have_attribute("data-state", "reconnecting")
        server.start()
        expect(page.locator(".conn")).to_have_attribute("data-state", "live")
        job_id = submit(server, type="noop", payload={}, delaySeconds=3600)
        expect(row(page, job_id).locator(".badge")).to_have_text("PENDING")
    finally:
        server.terminate()
