"""``/metrics``: job counters and timings from job events, queue gauges, open subscriptions, the token."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import JobMetrics
from core.models import Job, JobEvent, JobEventKind, utcnow
from tests.api.helpers import ADMIN, ALICE, Server, api_settings, run_server, wait_until


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus exposition, or ``None`` if it is absent."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


async def scrape(server: Server, token: str | None = None) -> str:
    async with server.http(token) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


async def test_a_completed_job_is_counted_and_timed(server: Server) -> None:
    """Submitting, starting and completing a job moves its type's counters and both histograms."""
    job_id = await server.submit(ALICE, "noop")
    claim = await server.start(job_id)
    await server.service.complete(claim, {"ok": True})
    text = await scrape(server)
    for counter in ("submitted", "started", "completed"):
        assert sample(text, f"jobpulse_jobs_{counter}_total", type="noop") == 1
    assert sample(text, "jobpulse_jobs_failed_total", type="noop") is None
    assert sample(text, "jobpulse_job_run_seconds_count", type="noop") == 1
    assert sample(text, "jobpulse_job_queue_wait_seconds_count", type="noop") == 1
    assert sample(text, "jobpulse_events_published_total", kind="COMPLETED") == 1


async def test_failures_retries_and_cancellations_are_counted(server: Server) -> None:
    """A failed attempt with attempts left counts a retry, the last one a failure; cancelJob counts a cancel."""
    job_id = await server.submit(ALICE, "noop")
    await server.service.fail_attempt(await server.start(job_id), "boom", retry_delay=0)
    await wait_until(lambda: _claimable(server, job_id), "the retry to be due")
    await server.service.fail_attempt(await server.start(job_id), "boom", retryable=False)
    other = await server.submit(ALICE, "noop")
    await server.data(ALICE, "mutation($id: ID!) { cancelJob(id: $id) { __typename } }", id=other)
    text = await scrape(server)
    assert sample(text, "jobpulse_jobs_retried_total", type="noop") == 1
    assert sample(text, "jobpulse_jobs_failed_total", type="noop") == 1
    assert sample(text, "jobpulse_jobs_cancelled_total", type="noop") == 1


async def _claimable(server: Server, job_id: str) -> bool:
    job = await server.stored(job_id)
    return job.run_at is None or job.run_at <= utcnow()


async def test_queue_depth_gauges_are_refreshed_on_scrape(server: Server) -> None:
    """Each scrape reads the queues: a waiting job shows in its type's queue-depth gauge."""
    before = await scrape(server)
    assert sample(before, "jobpulse_queue_depth", type="sleep") == 0
    assert sample(before, "jobpulse_dead_letter_depth", type="sleep") == 0
    await server.submit(ALICE, "sleep", {"seconds": 1})
    assert sample(await scrape(server), "jobpulse_queue_depth", type="sleep") == 1


async def test_open_subscriptions_are_gauged(server: Server) -> None:
    """The gauge counts subscriptions while they are open and drops when the socket closes."""
    async with server.ws(ADMIN) as ws:
        ws.subscribe("subscription { jobEvents { cursor } }")
        ws.subscribe('subscription { jobEvents(type: "noop") { cursor } }')
        await wait_until(lambda: _gauge_is(server, 2), "two open subscriptions")
    await wait_until(lambda: _gauge_is(server, 0), "no open subscriptions")


async def _gauge_is(server: Server, value: float) -> bool:
    return sample(await scrape(server), "jobpulse_subscriptions_open") == value


async def test_metrics_need_the_metrics_token_when_one_is_set(tmp_path: Path) -> None:
    """With JOBPULSE_METRICS_TOKEN set, /metrics answers 401 without that bearer token and 200 with it."""
    async with run_server(api_settings(tmp_path / "data", metrics_token="scrape-me")) as server:
        async with server.http() as client:
            missing = await client.get("/metrics")
            wrong = await client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
            right = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "jobpulse_subscriptions_open" in right.text


def test_each_app_has_its_own_registry() -> None:
    """Two JobMetrics never share samples: nothing is registered globally."""
    first, second = JobMetrics(process=False), JobMetrics(process=False)
    job = Job(id="j1", type="noop", owner="alice", payload={})
    first.observe(JobEvent.of(job, JobEventKind.CREATED))
    assert first.registry is not second.registry
    assert first.registry.get_sample_value("jobpulse_jobs_submitted_total", {"type": "noop"}) == 1
    assert second.registry.get_sample_value("jobpulse_jobs_submitted_total", {"type": "noop"}) is None
    assert isinstance(first.registry, CollectorRegistry)


def test_queue_wait_starts_at_run_at_for_a_delayed_job() -> None:
    """A delayed job's queue wait is measured from its runAt, not from when it was created."""
    metrics = JobMetrics(process=False)
    created = utcnow()
    job = Job(
        id="j2",
        type="noop",
        owner="alice",
        payload={},
        created_at=created,
        run_at=created + timedelta(seconds=60),
    )
    metrics.observe(JobEvent.of(job, JobEventKind.CREATED))
    started = replace(job, version=2, attempts=1, run_at=None, started_at=created + timedelta(seconds=61))
    metrics.observe(JobEvent.of(started, JobEventKind.STARTED))
    total = metrics.registry.get_sample_value("jobpulse_job_queue_wait_seconds_sum", {"type": "noop"})
    assert total == pytest.approx(1.0)
