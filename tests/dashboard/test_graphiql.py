"""GraphiQL at ``GET /graphql`` as a person uses it: served offline, and subscriptions carry the token."""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from tests.dashboard.conftest import ADMIN, ARTIFACTS, submit
from tests.support.graphql import follow_job_sync
from tests.support.process import JobpulseProcess


def open_graphiql(page: Page, server: JobpulseProcess, query: str, token: str | None) -> None:
    """Open GraphiQL with ``query`` in the editor and, if given, the token in the Headers editor."""
    headers = json.dumps({"Authorization": f"Bearer {token}"}) if token else "{}"
    page.add_init_script(
        f"localStorage.setItem('graphiql:query', {json.dumps(query)});"
        f"localStorage.setItem('graphiql:headers', {json.dumps(headers)});"
    )
    page.goto(server.url + "/graphql")
    expect(page.locator(".graphiql-container")).to_be_visible()


def test_graphiql_loads_without_internet(page: Page, server: JobpulseProcess) -> None:
    """The page and its scripts come from this server: GraphiQL renders with no CDN reachable."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    open_graphiql(page, server, "{ jobTypes { name } }", ADMIN)
    expect(page.locator(".graphiql-execute-button")).to_be_visible()
    assert requested and all(url.startswith(server.url) for url in requested), requested
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "graphiql.png"))


def test_query_runs_with_the_token_from_the_headers_editor(page: Page, server: JobpulseProcess) -> None:
    """A query run from GraphiQL uses the Authorization header and shows the job types."""
    open_graphiql(page, server, "{ jobTypes { name } }", ADMIN)
    page.locator(".graphiql-execute-button").click()
    expect(page.locator(".result-window")).to_contain_text("data_analysis")


def test_subscription_runs_with_the_token_from_the_headers_editor(page: Page, server: JobpulseProcess) -> None:
    """A jobUpdated subscription run from GraphiQL authenticates over the websocket and streams the job."""
    job_id = submit(server, type="noop", payload={})
    assert follow_job_sync(server.url, ADMIN, job_id)[-1]["status"] == "COMPLETED"
    query = f'subscription {{ jobUpdated(id: "{job_id}") {{ id status progress }} }}'
    open_graphiql(page, server, query, ADMIN)
    page.locator(".graphiql-execute-button").click()
    expect(page.locator(".result-window")).to_contain_text("COMPLETED")
    expect(page.locator(".result-window")).to_contain_text(job_id)


def test_subscription_without_a_token_says_why(page: Page, server: JobpulseProcess) -> None:
    """With no token in the Headers editor, a subscription shows that the socket closed with 4401."""
    open_graphiql(page, server, 'subscription { jobUpdated(id: "x") { status } }', None)
    page.locator(".graphiql-execute-button").click()
    expect(page.locator(".result-window")).to_contain_text("4401")
