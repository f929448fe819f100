"""The dashboard's flow graph: a flow's jobs as nodes coloured by status, live, reached from its jobs."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.dashboard.conftest import ADMIN, sign_in
from tests.support.graphql import gql_http
from tests.support.process import JobpulseProcess

pytestmark = pytest.mark.browser

SUBMIT_FLOW = """mutation($input: SubmitFlowInput!) {
  submitFlow(input: $input) { __typename ... on Flow { id jobs { key job { id } } } ... on UserError { message } }
}"""


def submit_flow(server: JobpulseProcess) -> dict[str, str]:
    jobs = [
        {"key": "resize", "job": {"type": "noop", "payload": {}}},
        {"key": "analyse", "job": {"type": "noop", "payload": {}}, "after": ["resize"]},
        {"key": "notify", "job": {"type": "noop", "payload": {}}, "after": ["analyse"]},
    ]
    flow = gql_http(server.url, ADMIN, SUBMIT_FLOW, {"input": {"name": "ui-flow", "jobs": jobs}})["data"][
        "submitFlow"
    ]
    assert flow["__typename"] == "Flow", flow
    return {"id": flow["id"], **{j["key"]: j["job"]["id"] for j in flow["jobs"]}}


def test_a_job_page_links_to_its_flow_graph_which_shows_every_job_completed(
    page: Page, server: JobpulseProcess
) -> None:
    """From a job of a flow, the Flow link opens the graph; its three nodes end COMPLETED."""
    flow = submit_flow(server)
    sign_in(page, server.url)
    page.goto(f"{server.url}/#/jobs/{flow['analyse']}")
    expect(page.locator(".links")).to_contain_text("Depends on")
    page.get_by_role("link", name="ui-flow").click()
    nodes = page.locator("a.flow-node")
    expect(nodes).to_have_count(3)
    for key in ("resize", "analyse", "notify"):
        expect(page.locator(f'a.flow-node[data-key="{key}"]')).to_have_attribute("data-status", "COMPLETED")


def submit_held_flow(server: JobpulseProcess, name: str) -> dict[str, str]:
    """A flow whose root waits an hour (so its dependents stay WAITING), and a job with no edges."""
    jobs = [
        {"key": "hold", "job": {"type": "noop", "payload": {}, "delaySeconds": 3600}},
        {"key": "next", "job": {"type": "noop", "payload": {}}, "after": ["hold"]},
        {"key": "last", "job": {"type": "noop", "payload": {}}, "after": ["next"]},
        {"key": "solo", "job": {"type": "noop", "payload": {}}},
    ]
    flow = gql_http(server.url, ADMIN, SUBMIT_FLOW, {"input": {"name": name, "jobs": jobs}})["data"][
        "submitFlow"
    ]
    assert flow["__typename"] == "Flow", flow
    return {"id": flow["id"], **{j["key"]: j["job"]["id"] for j in flow["jobs"]}}


def test_the_waiting_chip_lists_only_waiting_jobs(page: Page, server: JobpulseProcess) -> None:
    """The job list has a Waiting chip with its count; pressed, it shows the WAITING jobs only."""
    flow = submit_held_flow(server, "held-for-chips")
    sign_in(page, server.url)
    chip = page.locator('.chip[data-status="WAITING"]')
    expect(chip).to_contain_text("Waiting")
    expect(chip.locator(".count")).not_to_have_text("")
    chip.click()
    expect(page.locator(f'tr.job-row[data-job-id="{flow["next"]}"]')).to_be_visible()
    expect(page.locator(f'tr.job-row[data-job-id="{flow["last"]}"]')).to_be_visible()
    expect(page.locator(f'tr.job-row[data-job-id="{flow["hold"]}"]')).to_have_count(0)
    expect(page.locator('tr.job-row:not([data-status="WAITING"])')).to_have_count(0)
    assert "status=WAITING" in page.url


def test_every_job_of_a_flow_links_to_its_graph(page: Page, server: JobpulseProcess) -> None:
    """The root, a middle job, the last one and a job with no edges all link to the flow's graph."""
    flow = submit_held_flow(server, "held-for-links")
    sign_in(page, server.url)
    for key in ("hold", "next", "last", "solo"):
        page.goto(f"{server.url}/#/jobs/{flow[key]}")
        link = page.locator(".links").get_by_role("link", name="held-for-links")
        expect(link).to_have_attribute("href", f"#/flows/{flow['id']}")
    link.click()
    expect(page.locator("a.flow-node")).to_have_count(4)
    expect(page.locator('a.flow-node[data-key="next"]')).to_have_attribute("data-status", "WAITING")
