"""The dashboard's Schedules page: create from the form with a cron preview, then pause, resume, run now."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import ALICE, sign_in
from tests.support.graphql import gql_http
from tests.support.process import JobpulseProcess

pytestmark = pytest.mark.browser

CREATE = """mutation($input: ScheduleInput!) { createSchedule(input: $input) { ... on Schedule { id } } }"""


def test_the_form_previews_the_cron_and_creates_a_schedule(page: Page, server: JobpulseProcess) -> None:
    """The cron field is described in words with five next runs; Create adds the schedule's row."""
    sign_in(page, server.url, ALICE)
    page.get_by_role("link", name="Schedules").click()
    page.get_by_label("Name").fill("dash-nightly")
    page.get_by_label("Cron").fill("30 2 * * *")
    expect(page.locator(".cron-preview b")).to_have_text("At 02:30 every day")
    expect(page.locator(".cron-preview li")).to_have_count(5)
    page.get_by_label("Job type").select_option("noop")
    page.get_by_role("button", name="Create schedule").click()
    row = page.locator('tr[data-name="dash-nightly"]')
    expect(row.locator("td.state")).to_have_text("Active")
    expect(row.locator("td.cron code")).to_have_text("30 2 * * *")


def test_a_bad_cron_is_explained_before_creating(page: Page, server: JobpulseProcess) -> None:
    """An invalid cron shows the server's reason in the preview, and Create answers VALIDATION (cron)."""
    sign_in(page, server.url, ALICE)
    page.goto(server.url + "/#/schedules")
    page.get_by_label("Name").fill("dash-broken")
    page.get_by_label("Cron").fill("99 * * * *")
    expect(page.locator(".cron-preview .field-error")).to_contain_text("Bad minute")
    page.get_by_role("button", name="Create schedule").click()
    expect(page.locator(".form-error")).to_contain_text("VALIDATION (cron)")


def test_pause_resume_and_run_now_from_the_row(page: Page, server: JobpulseProcess) -> None:
    """Pause and Resume flip the row's state; Run now shows the new job's status in Last job."""
    body = gql_http(
        server.url,
        ALICE,
        CREATE,
        {"input": {"name": "dash-yearly", "cron": "0 0 1 1 *", "job": {"type": "noop", "payload": {}}}},
    )
    schedule_id = body["data"]["createSchedule"]["id"]
    sign_in(page, server.url, ALICE)
    page.goto(server.url + "/#/schedules")
    row = page.locator(f'tr[data-schedule="{schedule_id}"]')
    row.get_by_role("button", name="Pause").click()
    expect(row.locator("td.state")).to_have_text("Paused")
    row.get_by_role("button", name="Resume").click()
    expect(row.locator("td.state")).to_have_text("Active")
    row.get_by_role("button", name="Run now").click()
    expect(row.locator("td.last-job .badge")).to_have_text("COMPLETED")
