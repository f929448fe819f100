"""A second process for the tracing test: run the ``noop`` jobs, print the spans it recorded as JSON.

``python -m tests.support.trace_worker`` with the ``JOBPULSE_*`` environment of the backends.
"""

from __future__ import annotations

import asyncio
import json
import sys

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core.backends import open_backends
from core.jobtypes import JobTypeRegistry
from core.service import JobService
from core.settings import Settings
from core.tracing import tracing_listener
from tests.support.jobtypes import JOB_TYPES
from workers.runtime import Worker


async def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = Settings()
    async with open_backends(settings) as backends:
        service = JobService(
            backends.store, backends.queue, backends.bus, JobTypeRegistry(JOB_TYPES), settings
        )
        service.listeners.append(tracing_listener(provider))
        await Worker(service, types=["noop"], burst=True).run()
    spans = [
        {"name": span.name, "trace_id": span.context.trace_id, "job_id": span.attributes["jobpulse.job_id"]}
        for span in exporter.get_finished_spans()
        if span.context is not None and span.attributes is not None
    ]
    sys.stdout.write(json.dumps(spans) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
