"""The Job types page in Chromium: an admin pauses and resumes a type and edits its limits."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import ADMIN, sign_in, submit
from tests.support.graphql import gql_http
from tests.support.process import JobpulseProcess

pytestmark = pytest.mark.browser

LIMITS = "{ jobTypes { name paused concurrency rateLimit { limit periodSeconds } } }"


def limits_of(server: JobpulseProcess, name: str) -> dict[str, object]:
    types = gql_http(server.url, ADMIN, LIMITS)["data"]["jobTypes"]
    found: dict[str, object] = next(t for t in types if t["name"] == name)
    return found


def test_an_admin_pauses_resumes_and_limits_a_type(page: Page, server: JobpulseProcess) -> None:
    """Pause, then Resume, then a concurrency and a rate saved from the page are what the API reports."""
    sign_in(page, server.url)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Types").click()
    row = page.locator('tr.type-row[data-type="webhook"]')
    page.get_by_role("button", name="Pause webhook").click()
    expect(row).to_have_attribute("data-paused", "true")
    assert limits_of(server, "webhook")["paused"] is True
    page.get_by_role("button", name="Resume webhook").click()
    expect(row).to_have_attribute("data-paused", "false")
    page.get_by_label("webhook concurrency", exact=True).fill("3")
    page.get_by_label("webhook rate limit").fill("7")
    page.get_by_role("button", name="Save webhook limits").click()
    expect(page.get_by_role("status").filter(has_text="webhook limits saved")).to_be_visible()
    assert limits_of(server, "webhook") == {
        "name": "webhook",
        "paused": False,
        "concurrency": 3,
        "rateLimit": {"limit": 7, "periodSeconds": 1.0},
    }
    page.get_by_label("webhook concurrency", exact=True).fill("")
    page.get_by_role("button", name="Save webhook limits").click()
    deadline = time.monotonic() + 20
    while limits_of(server, "webhook")["concurrency"] is not None:  # a deadline poll: the save is async
        assert time.monotonic() < deadline, "an emptied concurrency box did not remove the limit"
        time.sleep(0.05)


def test_a_waiting_job_page_says_why_it_waits(page: Page, server: JobpulseProcess) -> None:
    """A job of a paused type shows "paused" as what it waits on."""
    query = "mutation($type: String!) { pauseJobType(type: $type) { __typename } }"
    gql_http(server.url, ADMIN, query, {"type": "data_analysis"})
    try:
        job_id = submit(server, type="data_analysis", payload={"data": [3, 1, 4]})
        sign_in(page, server.url)
        page.goto(f"{server.url}/#/jobs/{job_id}")
        expect(
            page.locator("dt", has_text="Waits on").locator("xpath=following-sibling::dd[1]")
        ).to_have_text("paused")
    finally:
        resume = "mutation($type: String!) { resumeJobType(type: $type) { __typename } }"
        gql_http(server.url, ADMIN, resume, {"type": "data_analysis"})
