"""The ``Subscription`` root, over ``graphql-transport-ws``: ``jobUpdated`` and ``jobEvents``.

The resolvers return the streams' generators rather than being generators themselves: one
suspended generator (and no resolve info) per open subscription instead of two (fig. 7b).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

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
    def job_updated(self, info: Info, id: strawberry.ID) -> AsyncGenerator[JobNode, None]:
        context = info.context
        return job_updates(context.service, lambda: context.principal, str(id), JobNode.of)

    @described_subscription(
        "Live event feed, owner-scoped (admin: all). With `after`, first replays every "
        "stored event after that cursor, then goes live, with no gap and no duplicate."
    )
    def job_events(
        self,
        info: Info,
        job_id: strawberry.ID | None = None,
        type: str | None = None,
        after: str | None = None,
    ) -> AsyncGenerator[JobEventNode, None]:
        context = info.context
        return job_event_feed(
            context.service,
            lambda: context.principal,
            JobEventNode.of,
            job_id=str(job_id) if job_id is not None else None,
            type=type,
            after=after,
        )
