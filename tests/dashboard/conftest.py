"""Headless Chromium (Debian's, never a downloaded one) driving the dashboard of a real ``jobpulse serve``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.graphql import gql_http
from tests.support.process import REPO, JobpulseProcess, serve_embedded

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"

ADMIN, ALICE = "dash-admin", "dash-alice"
KEYS = f"{ADMIN}=root:admin,{ALICE}=alice:user"

#: how long a page may take to show something; generous for a loaded 2-core CI machine
expect.set_options(timeout=20_000)


def serve(data_dir: Path, log: Path, port: int | None = None) -> JobpulseProcess:
    """``jobpulse serve`` on ``data_dir`` with the test job types (restart it with ``.restart()``);
    stats are flushed and workers heartbeat every half second, so the operations pages fill fast."""
    return serve_embedded(
        data_dir,
        log,
        KEYS,
        port=port,
        JOBPULSE_STATS_FLUSH_SECONDS="0.5",
        JOBPULSE_WORKER_HEARTBEAT_SECONDS="0.5",
    )


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobpulseProcess]:
    """One server shared by the dashboard tests that do not restart it."""
    tmp = tmp_path_factory.mktemp("dashboard")
    process = serve(tmp / "data", tmp / "serve.log")
    yield process
    process.terminate()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed: apt-get install chromium (scripts/test does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page (no stored token); fails the test if the page throws a JavaScript error."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(page: Page, url: str, token: str = ADMIN) -> None:
    """Open the dashboard, sign in with ``token`` and wait until the live feed is connected."""
    page.goto(url + "/")
    page.get_by_label("Token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".conn")).to_have_attribute("data-state", "live")


def row(page: Page, job_id: str) -> Any:
    """The jobs-table row of one job."""
    return page.locator(f'tr.job-row[data-job-id="{job_id}"]')


SUBMIT = """mutation($input: SubmitJobInput!) {
  submitJob(input: $input) { __typename ... on Job { id status } ... on UserError { code message } }
}"""


def submit(server: JobpulseProcess, token: str = ADMIN, **job_input: Any) -> str:
    """Submit a job over HTTP (as another client would); return its id."""
    result = gql_http(server.url, token, SUBMIT, {"input": job_input})["data"]["submitJob"]
    assert result["__typename"] == "Job", result
    job_id: str = result["id"]
    return job_id


def cancel(server: JobpulseProcess, job_id: str, token: str = ADMIN) -> None:
    query = "mutation($id: ID!) { cancelJob(id: $id) { __typename ... on Job { status } } }"
    assert gql_http(server.url, token, query, {"id": job_id})["data"]["cancelJob"]["status"] == "CANCELLED"


def job_status(server: JobpulseProcess, job_id: str, token: str = ADMIN) -> str:
    query = "query($id: ID!) { job(id: $id) { status } }"
    status: str = gql_http(server.url, token, query, {"id": job_id})["data"]["job"]["status"]
    return status
