"""``load_registry``: the built-in job types plus those of every module in ``JOBPULSE_JOB_MODULES``."""

from __future__ import annotations

import importlib
from typing import Any

from core.errors import ConfigurationError
from core.jobtypes import JobType, JobTypeRegistry
from core.settings import Settings
from workers.handlers import BUILTIN_JOB_TYPES

__all__ = ["load_registry", "module_job_types"]


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


def load_registry(settings: Settings) -> JobTypeRegistry:
    """Every job type this process knows: the built-ins, then each configured module's."""
    registry = JobTypeRegistry(list(BUILTIN_JOB_TYPES))
    for name in settings.job_module_names:
        for job_type in module_job_types(name):
            try:
                registry.register(job_type)
            except ValueError as exc:
                raise ConfigurationError(f"job module {name!r}: {exc}") from exc
    return registry
