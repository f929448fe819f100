"""The ``Subscription`` root, over ``graphql-transport-ws``: ``jobUpdated`` and ``jobEvents``."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry

from api.context import Info
from api.fields import described_subscription
from api.flows import FlowSubscriptions
from api.streams import job_event_feed, job_updates
from api.types import JobEventNode, JobNode

__all__ = ["Subscription"]


@strawberry.type
class Subscription(FlowSubscriptions):
    @described_subscription(
        "Emits the job as it is now, then every change in version order; "
        "completes after emitting a terminal status (COMPLETED, FAILED, CANCELLED)."
    )
    async def job_updated(self, info: Info, id: strawberry.ID) -> AsyncGenerator[JobNode, None]:
        context = info.context
        async with aclosing(job_updates(context.service, lambda: context.principal, str(id))) as updates:
            async for job in updates:
                yield JobNode.of(job)

    @described_subscription(
        "Live event feed, owner-scoped (admin: all). With `after`, first replays every "
        "stored event after that cursor, then goes live, with no gap and no duplicate."
    )
    async def job_events(
        self,
        info: Info,
        job_id: strawberry.ID | None = None,
        type: str | None = None,
        after: str | None = None,
    ) -> AsyncGenerator[JobEventNode, None]:
        context = info.context
        feed = job_event_feed(
            context.service,
            lambda: context.principal,
            job_id=str(job_id) if job_id is not None else None,
            type=type,
            after=after,
        )
        async with aclosing(feed) as events:
            async for event in events:
                yield JobEventNode.of(event)
