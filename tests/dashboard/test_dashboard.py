"""The dashboard as a person uses it: sign in, watch jobs live, submit, cancel, filter, page, stats."""

from __future__ import annotations

import re
import threading

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import ADMIN, ALICE, ARTIFACTS, job_status, row, sign_in, submit
from tests.support.process import JobpulseProcess

pytestmark = pytest.mark.browser


def test_a_wrong_token_is_refused_with_a_clear_message(page: Page, server: JobpulseProcess) -> None:
    """Signing in with a token the server does not know says so and stays on the sign-in form."""
    page.goto(server.url + "/")
    page.get_by_label("Token").fill("not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That token was not accepted: invalid token.")
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()


def test_the_jobs_table_shows_every_status_live(page: Page, server: JobpulseProcess) -> None:
    """After sign-in the table lists jobs with status, progress and attempts; a screenshot is kept."""
    done = submit(server, type="data_analysis", payload={"data": [3, 1.5, 4, 1, 5.9]})
    failed = submit(server, type="fail", payload={"permanent": True, "message": "upstream answered 503"})
    running = submit(server, type="sleep", payload={"seconds": 120, "steps": 240})
    waiting = submit(server, ALICE, type="noop", payload={}, delaySeconds=3600)
    sign_in(page, server.url)
    expect(row(page, done).locator(".badge")).to_have_text("COMPLETED")
    expect(row(page, failed).locator(".badge")).to_have_text("FAILED")
    expect(row(page, failed)).to_contain_text("upstream answered 503")
    expect(row(page, running).locator(".badge")).to_have_text("PROCESSING")
    expect(row(page, waiting).locator(".badge")).to_have_text("PENDING")
    expect(row(page, waiting)).to_contain_text(re.compile(r"runs in \d+m"))
    expect(row(page, waiting).locator("td.owner")).to_have_text("alice")
    # The sleep job's progress moves on screen without a reload.
    expect(row(page, running).get_by_role("progressbar")).not_to_have_attribute("aria-valuenow", "0")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
    # Free the worker the two-minute sleep job holds, for the tests that follow.
    page.get_by_role("button", name=f"Cancel job {running}").click()
    expect(row(page, running).locator(".badge")).to_have_text("CANCELLED")


def test_a_job_submitted_elsewhere_appears_without_a_reload(page: Page, server: JobpulseProcess) -> None:
    """A job another client submits shows up in the open table, live."""
    earlier = submit(server, type="noop", payload={"note": "already there"}, delaySeconds=3600)
    sign_in(page, server.url)
    expect(page.locator("tr.job-row").first).to_have_attribute("data-job-id", earlier)
    job_id = submit(server, type="noop", payload={"note": "from elsewhere"}, delaySeconds=3600)
    expect(page.locator("tr.job-row").first).to_have_attribute("data-job-id", job_id)


def test_submit_data_analysis_from_the_form(page: Page, server: JobpulseProcess) -> None:
    """The form built from the payload schema submits a data_analysis job; its row reaches COMPLETED at 100%."""
    sign_in(page, server.url)
    page.get_by_role("link", name="Submit").click()
    page.get_by_role("button", name=re.compile("^data_analysis")).click()
    page.get_by_role("textbox", name="Data", exact=True).fill("1, 2, 3, 4")
    page.get_by_role("button", name="Submit job").click()
    expect(page).to_have_url(re.compile(r"#/\?flash=[0-9a-f-]{36}$"))
    job_id = page.url.rsplit("=", 1)[1]
    expect(row(page, job_id).locator(".badge")).to_have_text("COMPLETED")
    expect(row(page, job_id).get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(row(page, job_id).locator(".pct")).to_have_text("100%")


def test_the_form_explains_a_bad_value_before_sending(page: Page, server: JobpulseProcess) -> None:
    """A non-number in a numbers field is flagged on the field, and nothing is submitted."""
    sign_in(page, server.url)
    page.goto(server.url + "/#/submit?type=data_analysis")
    page.get_by_role("textbox", name="Data", exact=True).fill("1, two, 3")
    page.get_by_role("button", name="Submit job").click()
    expect(page.locator('.field[data-field="data"] .field-error')).to_have_text("“two” is not a number")
    expect(page).to_have_url(re.compile(r"#/submit"))


def test_cancel_a_delayed_job_from_its_button(page: Page, server: JobpulseProcess) -> None:
    """The Cancel button of a delayed PENDING job cancels it: the row says CANCELLED and so does the API."""
    job_id = submit(server, type="noop", payload={}, delaySeconds=3600)
    sign_in(page, server.url)
    expect(row(page, job_id).locator(".badge")).to_have_text("PENDING")
    row(page, job_id).get_by_role("button", name="Cancel").click()
    expect(row(page, job_id).locator(".badge")).to_have_text("CANCELLED")
    expect(row(page, job_id).get_by_role("button", name="Retry")).to_be_visible()
    assert job_status(server, job_id) == "CANCELLED"


def test_the_job_view_follows_progress_logs_and_result(page: Page, server: JobpulseProcess) -> None:
    """A job's own page shows its payload, then live log lines and progress, then its result."""
    job_id = submit(server, type="sleep", payload={"seconds": 1.5, "steps": 3}, delaySeconds=1)
    sign_in(page, server.url)
    page.goto(f"{server.url}/#/jobs/{job_id}")
    expect(page.locator(".payload pre")).to_contain_text('"steps": 3')
    expect(page.get_by_label("Log lines")).to_contain_text("sleeping 1.5s in 3 steps")
    expect(page.locator(".job-head .badge")).to_have_text("COMPLETED")
    expect(page.locator(".job-progress").get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator(".outcome pre")).to_contain_text('"slept": 1.5')


def test_filter_by_status(page: Page, server: JobpulseProcess) -> None:
    """The Failed chip shows only FAILED jobs; All brings the others back."""
    failed = submit(server, type="fail", payload={"permanent": True})
    pending = submit(server, type="noop", payload={}, delaySeconds=3600)
    sign_in(page, server.url)
    expect(row(page, failed).locator(".badge")).to_have_text("FAILED")
    page.locator('.chip[data-status="FAILED"]').click()
    expect(row(page, pending)).to_have_count(0)
    expect(row(page, failed)).to_be_visible()
    expect(page.locator('tr.job-row:not([data-status="FAILED"])')).to_have_count(0)
    page.locator('.chip[data-status="all"]').click()
    expect(row(page, pending)).to_be_visible()


def test_filter_by_type_and_page_through(page: Page, server: JobpulseProcess) -> None:
    """With the type filter on flaky, 30 jobs make two pages: 25 rows, then the last 5."""
    for _ in range(30):
        submit(server, type="flaky", payload={"fail_times": 0}, delaySeconds=3600)
    sign_in(page, server.url)
    page.get_by_label("Filter by type").select_option("flaky")
    expect(page.locator(".pager .range")).to_have_text("1–25 of 30")
    expect(page.locator("tr.job-row")).to_have_count(25)
    page.get_by_role("button", name="Next ›").click()
    expect(page.locator(".pager .range")).to_have_text("26–30 of 30")
    expect(page.locator("tr.job-row")).to_have_count(5)
    expect(page.get_by_role("button", name="Next ›")).to_be_disabled()
    page.get_by_role("button", name="‹ Prev").click()
    expect(page.locator("tr.job-row")).to_have_count(25)


def test_an_admin_sees_the_stats_panel(page: Page, server: JobpulseProcess) -> None:
    """The Stats tab shows totals, failure rate, processing time, and queue depth per type."""
    submit(server, type="gate", payload={"path": "/nonexistent"}, delaySeconds=3600)
    sign_in(page, server.url)
    page.get_by_role("link", name="Stats").click()
    for label in ("Total jobs", "Failure rate", "Avg processing time", "Queue depth", "Dead letters"):
        expect(page.locator(f'.kpi[data-kpi="{label}"] .value')).not_to_be_empty()
    gate = page.locator('tr[data-type="gate"]')
    expect(gate.locator("td").nth(1)).not_to_have_text("0")  # pending
    expect(gate.locator("td").nth(6)).not_to_have_text("0")  # queue depth


def test_a_user_has_no_stats_panel(page: Page, server: JobpulseProcess) -> None:
    """A user's dashboard has no Stats tab, and says it is signed in as a user."""
    sign_in(page, server.url, ALICE)
    expect(page.locator(".role-pill")).to_have_text("user")
    expect(page.get_by_role("link", name="Stats")).to_be_hidden()


def test_sign_out_forgets_the_token(page: Page, server: JobpulseProcess) -> None:
    """After Sign out a reload asks for a token again."""
    sign_in(page, server.url, ADMIN)
    page.get_by_role("button", name="Sign out").click()
    page.reload()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_status_counts_keep_up_while_jobs_keep_coming(page: Page, server: JobpulseProcess) -> None:
    """The counts on the status chips follow a steady stream of jobs, without waiting for a pause
    in the events (a debounce did: under steady load they never moved)."""
    sign_in(page, server.url)
    count = '.chip[data-status="all"] .count'
    expect(page.locator(count)).not_to_have_text("")
    before = int(re.sub(r"\D", "", page.locator(count).inner_text()))
    stop = threading.Event()

    def stream() -> None:
        while not stop.is_set():
            submit(server, type="noop", payload={"note": "stream"})
            stop.wait(0.05)

    streaming = threading.Thread(target=stream)
    streaming.start()
    try:
        page.wait_for_function(
            "([selector, at_least]) =>"
            " Number(document.querySelector(selector).textContent.replace(/\\D/g, '')) >= at_least",
            arg=[count, before + 5],
            timeout=15_000,
        )
        assert streaming.is_alive()  # the counts moved while the stream went on
    finally:
        stop.set()
        streaming.join()
