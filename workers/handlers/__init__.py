"""The built-in job types, one module each. Adding one: a module with ``JOB_TYPE``, and a line here."""

from __future__ import annotations

from typing import Any

from core.jobtypes import JobType
from workers.handlers import data_analysis, image_resize, webhook

__all__ = ["BUILTIN_JOB_TYPES"]

BUILTIN_JOB_TYPES: list[JobType[Any]] = [
    image_resize.JOB_TYPE,
    data_analysis.JOB_TYPE,
    webhook.JOB_TYPE,
]
