"""OpenTelemetry traces (optional): one trace per job, from submit to finish, across processes.

Enabled when ``opentelemetry-api`` is installed and a tracer provider is set: entry points call
``configure_tracing`` which, with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, installs the SDK with the
OTLP/HTTP exporter (imported only then; the standard ``OTEL_*`` variables configure both).

Spans come from the events each process writes (a ``JobService`` listener, so the write path is
untouched): ``jobpulse.submit`` where a job is created, ``jobpulse.claim`` where a worker starts an
attempt, ``jobpulse.run`` (the attempt, from its start to its end) and ``jobpulse.finish`` where
it ends. Their trace is the job's: the trace id is the job id's 128 bits (a UUIDv7, unique and
never zero), and every span's parent is the job's root context derived from it. So the context
every process needs travels with every message already, as the job id: a retry, a redelivery, a
sweeper's resend or a Lambda invocation joins the same trace, with nothing added to the queue.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from core.models import JobEvent, JobEventKind

if TYPE_CHECKING:
    from core.service import JobService

__all__ = ["configure_tracing", "job_trace_ids", "run_tracing", "tracing_listener"]

log = structlog.get_logger("jobpulse.tracing")

_ENDING = {
    JobEventKind.COMPLETED: "COMPLETED",
    JobEventKind.FAILED: "FAILED",
    JobEventKind.RETRYING: "RETRYING",
    JobEventKind.CANCELLED: "CANCELLED",
}


def job_trace_ids(job_id: str) -> tuple[int, int]:
    """The job's trace id (its 128 bits) and its root span id (the low 64 bits, never zero)."""
    value = int(job_id.replace("-", ""), 16)
    return value, (value & 0xFFFF_FFFF_FFFF_FFFF) or 1


def configure_tracing() -> bool:
    """With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, export spans over OTLP/HTTP; True if configured."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed", error=str(exc))
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": "jobpulse"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000_000)


def tracing_listener(provider: Any = None) -> Any:
    """The listener that turns events into spans (of ``provider``, default the global one), or
    ``None`` without ``opentelemetry-api`` or a configured provider (spans would go nowhere)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    provider = provider if provider is not None else trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):
        return None
    tracer = provider.get_tracer("jobpulse")

    def context_of(job_id: str) -> Any:
        trace_id, span_id = job_trace_ids(job_id)
        sampled = trace.TraceFlags(trace.TraceFlags.SAMPLED)
        root = trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=sampled)
        return trace.set_span_in_context(trace.NonRecordingSpan(root))

    def span(name: str, event: JobEvent, start: datetime, attributes: dict[str, Any]) -> None:
        job = event.job
        base: dict[str, Any] = {
            "jobpulse.job_id": job.id,
            "jobpulse.job_type": job.type,
            "jobpulse.attempt": job.attempts,
        }
        started = tracer.start_span(
            name, context=context_of(job.id), start_time=_ns(start), attributes={**base, **attributes}
        )
        started.end(end_time=max(_ns(event.at), _ns(start)))

    def on_event(event: JobEvent) -> None:
        try:
            job = event.job
            if event.kind is JobEventKind.CREATED:
                span("jobpulse.submit", event, job.created_at, {"jobpulse.owner": job.owner})
            elif event.kind is JobEventKind.STARTED:
                span("jobpulse.claim", event, event.at, {"jobpulse.worker": job.lease_owner or ""})
            elif event.kind in _ENDING and (job.started_at is not None or job.is_terminal):
                # (a RETRYING with no start is a retryJob, which ends nothing)
                outcome = {"jobpulse.outcome": _ENDING[event.kind], "jobpulse.error": job.error or ""}
                if job.started_at is not None:
                    span("jobpulse.run", event, job.started_at, outcome)
                span("jobpulse.finish", event, event.at, outcome)
        except Exception:
            log.exception("span not recorded", job_id=event.job_id)

    return on_event


async def run_tracing(service: JobService, stop: asyncio.Event) -> None:
    """A background task: record this process's spans until ``stop`` (nothing without OpenTelemetry)."""
    listener = tracing_listener()
    if listener is None:
        return
    service.listeners.append(listener)
    try:
        await stop.wait()
    finally:
        with suppress(ValueError):
            service.listeners.remove(listener)
