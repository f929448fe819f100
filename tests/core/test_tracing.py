"""OpenTelemetry: the spans of one job, recorded by two processes, share one trace."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core.backends import open_backends
from core.jobtypes import JobTypeRegistry
from core.models import Principal
from core.service import JobService, SubmitRequest
from core.settings import Settings
from core.tracing import job_trace_ids, tracing_listener
from tests.support.jobtypes import JOB_TYPES
from tests.support.process import REPO
from tests.support.services import BACKENDS

ADMIN = Principal("root", "admin")


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "embedded":
        return {"JOBPULSE_DATA_DIR": str(tmp_path / "data")}
    distributed: dict[str, str] = request.getfixturevalue("distributed_env")
    return distributed


async def test_spans_of_one_job_in_two_processes_share_a_trace(env: dict[str, str]) -> None:
    """The submit span (this process) and the claim, run and finish spans (a worker process) share the job's trace id."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    values = {k.removeprefix("JOBPULSE_").lower(): v for k, v in env.items() if k.startswith("JOBPULSE_")}
    settings = Settings(**values)
    async with open_backends(settings) as backends:
        await backends.queue.ensure_queues(["noop"])
        service = JobService(
            backends.store, backends.queue, backends.bus, JobTypeRegistry(JOB_TYPES), settings
        )
        service.listeners.append(tracing_listener(provider))
        job = await service.submit(ADMIN, SubmitRequest("noop", {}))

        environment = {k: v for k, v in os.environ.items() if not k.startswith("JOBPULSE_")}
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.trace_worker",
            env={**environment, **env, "PYTHONPATH": str(REPO)}, cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(120):
            out, err = await worker.communicate()
        assert worker.returncode == 0, err.decode()
        theirs = [s for s in json.loads(out.decode().splitlines()[-1]) if s["job_id"] == job.id]

    [submit] = exporter.get_finished_spans()
    assert submit.name == "jobpulse.submit" and submit.context is not None
    assert sorted(s["name"] for s in theirs) == ["jobpulse.claim", "jobpulse.finish", "jobpulse.run"]
    trace_id = job_trace_ids(job.id)[0]
    assert {submit.context.trace_id, *(s["trace_id"] for s in theirs)} == {trace_id}
