"""The ``data_analysis`` built-in job type."""

from __future__ import annotations

import math
from typing import Any

import pytest

from core.errors import PayloadTooLargeError, ValidationError
from core.jobtypes import PermanentError
from core.models import JobStatus
from core.service import JobService
from tests.workers.conftest import drain, reload, submit
from workers.handlers.data_analysis import JOB_TYPE, analyse


async def test_statistics_of_numbers(service: JobService) -> None:
    """Count, mean, median, sample stdev, min and max of the numbers are the result."""
    job = await submit(service, "data_analysis", {"data": [4, 1, 3, 2]})
    await drain(service)
    done = await reload(service, job)
    assert done.status is JobStatus.COMPLETED
    assert isinstance(done.result, dict)
    assert done.result["count"] == 4
    assert (done.result["mean"], done.result["median"]) == (2.5, 2.5)
    assert done.result["stdev"] == pytest.approx(1.2909944, rel=1e-6)
    assert (done.result["min"], done.result["max"]) == (1, 4)


async def test_one_value_has_zero_stdev(make_ctx: Any) -> None:
    """A single number has standard deviation 0 (not an error)."""
    result = await analyse(make_ctx(), JOB_TYPE.parse({"data": [7.5]}))
    assert result == {"count": 1, "mean": 7.5, "median": 7.5, "stdev": 0.0, "min": 7.5, "max": 7.5}


async def test_progress_is_reported(make_ctx: Any) -> None:
    """The analysis reports progress as it goes."""
    ctx = make_ctx()
    await analyse(ctx, JOB_TYPE.parse({"data": [1, 2, 3]}))
    assert [p for p, _ in ctx.reports] == [50, 95]


async def test_overflowing_numbers_fail_permanently(make_ctx: Any) -> None:
    """Numbers whose statistics overflow a float fail the job with a clear message."""
    with pytest.raises(PermanentError, match="too large"):
        await analyse(make_ctx(), JOB_TYPE.parse({"data": [1e308, 1e308]}))


@pytest.mark.parametrize("data", [[], ["1"], [True], [math.nan], [math.inf], "1,2,3", None])
def test_only_finite_numbers_are_accepted(data: Any) -> None:
    """Empty lists, strings, booleans and non-finite numbers are refused at submission."""
    with pytest.raises(ValidationError, match=r"payload\.data"):
        JOB_TYPE.parse({"data": data})


@pytest.mark.parametrize(("count", "accepted"), [(35_000, True), (40_000, False)])
async def test_the_schema_says_how_many_numbers_fit_the_payload_limit(
    service: JobService, count: int, accepted: bool
) -> None:
    """The described number of values that fit the default payload limit is accepted, a few thousand more refused."""
    description = JOB_TYPE.payload_schema()["properties"]["data"]["description"]  # type: ignore[index,call-overload]
    assert "JOBPULSE_MAX_PAYLOAD_BYTES" in description and "37,449" in description
    payload = {"data": [123.45] * count}
    if accepted:
        assert (await submit(service, "data_analysis", payload)).status is JobStatus.PENDING
    else:
        with pytest.raises(PayloadTooLargeError):
            await submit(service, "data_analysis", payload)

