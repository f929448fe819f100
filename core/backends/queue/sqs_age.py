"""``SqsQueueAges``: an SQS queue's ``ApproximateAgeOfOldestMessage``, which only CloudWatch has.

SQS's own API counts messages (``GetQueueAttributes``) but does not age them; CloudWatch publishes
the age of each queue's oldest message once a minute (namespace ``AWS/SQS``). Reading it costs one
``GetMetricData`` request, so each queue's age is kept for ``CACHE_SECONDS`` (the metric's own
resolution). A CloudWatch that does not answer (ElasticMQ has none; a role without
``cloudwatch:GetMetricData``) is logged once and reads as 0 until it answers: queue depths, which
stats, metrics and burst workers rely on, never fail or wait long because of it.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from core.models import utcnow
from core.settings import Settings

__all__ = ["CACHE_SECONDS", "SqsQueueAges", "cloudwatch_endpoint"]

log = structlog.get_logger("jobpulse.sqs")

CACHE_SECONDS = 60.0
LOOKBACK = timedelta(minutes=5)


def cloudwatch_endpoint(settings: Settings) -> str | None:
    """Where to read the metric: the setting; else SQS's endpoint when it is not AWS's (moto,
    LocalStack serve both); else ``None``, AWS's CloudWatch for the region."""
    if settings.cloudwatch_endpoint_url:
        return settings.cloudwatch_endpoint_url
    sqs = settings.sqs_endpoint_url
    if sqs and not (urlsplit(sqs).hostname or "").endswith(".amazonaws.com"):
        return sqs
    return None


class SqsQueueAges:
    """Cached reads of ``AWS/SQS ApproximateAgeOfOldestMessage`` per queue name."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._cache: dict[str, tuple[float, float]] = {}  # queue name → (read at, age)
        self._failing = False

    async def age(self, queue_name: str) -> float:
        """Seconds the queue's oldest message has waited (the latest minute's maximum), or 0."""
        now = time.monotonic()
        cached = self._cache.get(queue_name)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        age = await self._read(queue_name)
        self._cache[queue_name] = (now, age)
        return age

    async def _read(self, queue_name: str) -> float:
        end = utcnow()
        query = {
            "Id": "age",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateAgeOfOldestMessage",
                    "Dimensions": [{"Name": "QueueName", "Value": queue_name}],
                },
                "Period": 60,
                "Stat": "Maximum",
            },
        }
        try:
            response = await self._client.get_metric_data(
                MetricDataQueries=[query],
                StartTime=end - LOOKBACK,
                EndTime=end,
                ScanBy="TimestampDescending",
            )
        except (ClientError, BotoCoreError, OSError, TimeoutError) as exc:
            if not self._failing:
                log.warning("SQS queue age not readable from CloudWatch; counting 0", error=str(exc))
            self._failing = True
            return 0.0
        self._failing = False
        results = response.get("MetricDataResults", [])
        values = results[0].get("Values", []) if results else []
        return float(values[0]) if values else 0.0
