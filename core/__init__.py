"""jobpulse's domain and backends: jobs, the state machine, ports, the service, settings, errors.

``core`` imports neither ``api`` nor ``workers``.
"""

from core.errors import JobpulseError
from core.jobtypes import JobContext, JobType, JobTypeRegistry, PermanentError, Retry
from core.models import Job, JobEvent, JobEventKind, JobStatus, LogLevel, Principal
from core.service import JobService, SubmitRequest
from core.settings import Settings

__all__ = [
    "Job",
    "JobContext",
    "JobEvent",
    "JobEventKind",
    "JobService",
    "JobStatus",
    "JobType",
    "JobTypeRegistry",
    "JobpulseError",
    "LogLevel",
    "PermanentError",
    "Principal",
    "Retry",
    "Settings",
    "SubmitRequest",
]
