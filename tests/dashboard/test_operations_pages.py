"""The operations pages in Chromium: the live Workers page, the Stats charts, a job's attempts and ETA."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import ARTIFACTS, job_status, sign_in, submit
from tests.support.process import JobpulseProcess

pytestmark = pytest.mark.browser


def test_workers_page_shows_the_live_worker(page: Page, server: JobpulseProcess) -> None:
    """The Workers page lists ``serve``'s in-process worker as ACTIVE; a screenshot is kept."""
    sign_in(page, server.url)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workers").click()
    worker = page.locator("tr.worker-row").first
    expect(worker).to_have_attribute("data-status", "ACTIVE")
    expect(worker).to_contain_text("noop")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "workers.png"))


def test_stats_chart_has_points_after_jobs_ran(page: Page, server: JobpulseProcess) -> None:
    """After jobs ran, the jobs chart on the Stats page has points for them."""
    job_id = submit(server, type="noop", payload={})
    sign_in(page, server.url)
    page.goto(server.url + "/#/stats")
    assert job_status(server, job_id) in {"PENDING", "PROCESSING", "COMPLETED"}
    chart = page.get_by_role("img", name="Jobs per bucket")
    expect(chart.locator('[data-series="completed"] circle.point').first).to_be_attached()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "stats-charts.png"), full_page=True)


def test_job_page_shows_each_attempt(page: Page, server: JobpulseProcess) -> None:
    """A job that failed twice then passed shows three attempts, the last COMPLETED."""
    job_id = submit(server, type="flaky", payload={"fail_times": 2, "retry_delay": 0})
    sign_in(page, server.url)
    page.goto(f"{server.url}/#/jobs/{job_id}")
    attempts = page.locator("tr.attempt-row")
    expect(attempts).to_have_count(3)
    expect(attempts.nth(2)).to_have_attribute("data-outcome", "COMPLETED")
    expect(attempts.nth(0)).to_have_attribute("data-outcome", "FAILED")


def test_redrive_button_sends_a_types_dead_letters_back(page: Page, server: JobpulseProcess) -> None:
    """An admin's Redrive button on a type with dead letters sends them back and says how many."""
    submit(server, type="fail", payload={"permanent": True, "message": "for the redrive test"})
    sign_in(page, server.url)
    page.goto(server.url + "/#/stats")
    button = page.get_by_role("button", name="Redrive fail dead letters")
    button.click()
    expect(page.get_by_role("status").filter(has_text="fail jobs sent back to their queue")).to_be_visible()
