"""``data_analysis``: summary statistics of a list of numbers (the ``statistics`` module)."""

from __future__ import annotations

import asyncio
import math
import statistics
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from core.jobtypes import JobContext, JobType, PermanentError
from core.models import JSONValue
from core.settings import Settings

__all__ = ["JOB_TYPE", "DataAnalysisPayload"]

MAX_VALUES = 1_000_000  # reachable only with JOBPULSE_MAX_PAYLOAD_BYTES raised; the description says so
#: up to this many values the statistics run on the event loop: a thread's hand-off and GIL
#: switches cost more than the arithmetic, and a Python thread would hold the GIL anyway
INLINE_MAX_VALUES = 100
DEFAULT_PAYLOAD_LIMIT = Settings.model_fields["max_payload_bytes"].default

Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class DataAnalysisPayload(BaseModel):
    """The numbers to summarise."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"data": [3, 1.5, 4, 1, 5.9]}]})

    data: list[Number] = Field(
        min_length=1,
        max_length=MAX_VALUES,
        description=f"1 to {MAX_VALUES:,} finite numbers (not strings, not booleans), within the "
        f"payload limit (JOBPULSE_MAX_PAYLOAD_BYTES, {DEFAULT_PAYLOAD_LIMIT // 1024} KiB by default: "
        f"about {DEFAULT_PAYLOAD_LIMIT // 7:,} numbers like 123.45); more needs a higher limit.",
        examples=[[3, 1.5, 4, 1, 5.9]],
    )


def _centre(data: list[float]) -> tuple[float, float]:
    return statistics.fmean(data), statistics.median(data)


def _spread(data: list[float]) -> tuple[float, float, float]:
    stdev = statistics.stdev(data) if len(data) > 1 else 0.0
    return stdev, min(data), max(data)


async def analyse(ctx: JobContext, payload: DataAnalysisPayload) -> JSONValue:
    """``{count, mean, median, stdev, min, max}``; ``stdev`` is the sample one (0 for one value)."""
    data = payload.data
    inline = len(data) <= INLINE_MAX_VALUES
    try:
        mean, median = _centre(data) if inline else await asyncio.to_thread(_centre, data)
        await ctx.progress(50, f"mean and median of {len(data)} values")
        stdev, low, high = _spread(data) if inline else await asyncio.to_thread(_spread, data)
    except (OverflowError, ValueError) as exc:
        raise PermanentError(f"the numbers are too large to analyse: {exc}") from None
    summary = {"count": len(data), "mean": mean, "median": median, "stdev": stdev, "min": low, "max": high}
    if not all(math.isfinite(v) for v in summary.values()):
        raise PermanentError("the numbers are too large to analyse: a statistic overflowed")
    await ctx.progress(95, "standard deviation, minimum and maximum")
    result: JSONValue = dict(summary)
    return result


JOB_TYPE = JobType(
    "data_analysis",
    "Summary statistics of a list of numbers: count, mean, median, sample stdev, min, max.",
    DataAnalysisPayload,
    analyse,
    max_attempts=3,
    timeout_seconds=120,
)
