"""``examples/browser``: Apollo Client from the vendored ES module build, in headless Chromium."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Route, expect, sync_playwright

from tests.dashboard.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.js.conftest import ALICE
from tests.support.process import REPO, JobpulseProcess

pytestmark = pytest.mark.browser

EXAMPLE = REPO / "examples" / "browser"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed: apt-get install chromium (scripts/test does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_page_submits_a_job_and_shows_its_progress(
    served: JobpulseProcess, browser: Browser, tmp_path: Path
) -> None:
    """The page submits a held job, shows it running, then COMPLETED with a full bar, live over multipart."""
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))

    def from_examples(route: Route) -> None:
        # As a reverse proxy would: the example's files on jobpulse's own origin.
        path = EXAMPLE / route.request.url.split("/examples/", 1)[1]
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        route.fulfill(body=path.read_bytes(), content_type=content_type)

    page.route(f"{served.url}/examples/**", from_examples)
    release = tmp_path / "release"
    payload = {"until": str(release), "journal": str(tmp_path / "journal")}
    try:
        page.goto(f"{served.url}/examples/index.html")
        page.get_by_label("Token").fill(ALICE)
        page.get_by_label("Job type").fill("hold")
        page.get_by_label("Payload (JSON)").fill(json.dumps(payload))
        page.get_by_role("button", name="Submit").click()
        status = page.locator("#status")
        expect(status).to_have_attribute("data-state", "PROCESSING", timeout=60_000)
        release.write_text("go")
        expect(status).to_have_attribute("data-state", "COMPLETED", timeout=60_000)
        expect(page.locator("#bar")).to_have_js_property("value", 100)
        assert not any(url.startswith("ws") for url in requests), "the page must not need a websocket"
        assert not errors, errors
    finally:
        context.close()
