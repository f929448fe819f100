"""A worker runs a flow to its end: dependents start when their dependencies complete, with their results."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.flows import FlowItem, FlowStatus
from core.models import Principal
from core.service import JobService
from core.submission import SubmitRequest
from tests.support.services import BACKENDS, service_on
from workers.runtime import Worker

ALICE = Principal("alice")


@pytest.fixture(params=BACKENDS)
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobService]:
    async with service_on(request, tmp_path, wait_time_seconds=1) as service:
        yield service


async def test_a_worker_runs_a_fan_in_flow_and_hands_over_results(service: JobService) -> None:
    """The fan-in job runs after both parents, and its handler gets their results."""
    assert service.flows is not None
    items = [
        FlowItem("a", SubmitRequest("noop", {"note": "a"})),
        FlowItem("b", SubmitRequest("noop", {"note": "b"})),
        FlowItem("sheet", SubmitRequest("collect", {}), ("a", "b")),
    ]
    view = await service.flows.submit_flow(ALICE, "fan-in", items)
    worker = Worker(service, burst=True, types=["noop", "collect"])
    async with asyncio.timeout(60):
        await worker.run()
    done = await service.flows.get(ALICE, view.record.id)
    assert done is not None and done.status == FlowStatus.COMPLETED
    a, b = done.jobs["a"], done.jobs["b"]
    assert done.jobs["sheet"].result == {
        "inputs": {a.id: {"ok": True, "note": "a"}, b.id: {"ok": True, "note": "b"}}
    }
