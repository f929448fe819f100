"""``load_registry``: the built-in job types, those of every module in ``JOBPULSE_JOB_MODULES``, and
the external types ``JOBPULSE_EXTERNAL_TYPES`` declares."""

from __future__ import annotations

import importlib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from core.errors import ConfigurationError
from core.jobtypes import JobContext, JobType, JobTypeRegistry, PermanentError
from core.models import JSONValue
from core.settings import Settings
from workers.handlers import BUILTIN_JOB_TYPES

__all__ = ["ExternalPayload", "external_job_types", "load_registry", "module_job_types"]

#: a job type's name is part of its queue's name: SQS allows letters, digits, "-" and "_"
_TYPE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def module_job_types(name: str) -> list[JobType[Any]]:
    """The job types a module exposes as ``JOB_TYPES`` (a list) or ``JOB_TYPE`` (one)."""
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(f"{exc.name}.")):
            raise ConfigurationError(
                f"job module {name!r} (JOBPULSE_JOB_MODULES) was not found; is it installed and importable?"
            ) from exc
        raise ConfigurationError(f"job module {name!r} cannot be imported: {exc}") from exc
    except Exception as exc:
        message = f"job module {name!r} failed to import: {type(exc).__name__}: {exc}"
        raise ConfigurationError(message) from exc
    found: object = getattr(module, "JOB_TYPES", None)
    if found is None and hasattr(module, "JOB_TYPE"):
        found = [module.JOB_TYPE]
    if not isinstance(found, list | tuple) or not all(isinstance(t, JobType) for t in found):
        raise ConfigurationError(
            f"job module {name!r} must define JOB_TYPES (a list of JobType) or JOB_TYPE (a JobType)"
        )
    return list(found)


class ExternalPayload(BaseModel):
    """Any JSON object: the external processor checks its own payloads."""

    model_config = ConfigDict(extra="allow")


async def _run_elsewhere(ctx: JobContext, payload: ExternalPayload) -> JSONValue:
    # Never called: workers leave external types alone. Said plainly in case someone forces it.
    raise PermanentError(f"{ctx.job.type} jobs are run by external processors (claimJob), not by workers")


def external_job_types(declared: str) -> list[JobType[Any]]:
    """``name:description,…`` (``JOBPULSE_EXTERNAL_TYPES``) as external types taking any JSON object."""
    job_types: list[JobType[Any]] = []
    for entry in (part.strip() for part in declared.split(",")):
        if not entry:
            continue
        name, _, description = (piece.strip() for piece in entry.partition(":"))
        if not _TYPE_NAME.fullmatch(name):
            raise ConfigurationError(
                f"JOBPULSE_EXTERNAL_TYPES: {name!r} is not a job type name (letters, digits, '-', '_')"
            )
        description = description or f"Run by an external processor ({name})."
        job_types.append(JobType(name, description, ExternalPayload, _run_elsewhere, external=True))
    return job_types


def load_registry(settings: Settings) -> JobTypeRegistry:
    """Every job type this process knows: built-ins, each configured module's, declared external ones."""
    registry = JobTypeRegistry(list(BUILTIN_JOB_TYPES))
    for name in settings.job_module_names:
        for job_type in module_job_types(name):
            try:
                registry.register(job_type)
            except ValueError as exc:
                raise ConfigurationError(f"job module {name!r}: {exc}") from exc
    for job_type in external_job_types(settings.external_types):
        try:
            registry.register(job_type)
        except ValueError as exc:
            raise ConfigurationError(f"JOBPULSE_EXTERNAL_TYPES: {exc}") from exc
    return registry
