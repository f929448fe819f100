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
