"""``SchedulerMetrics``: the schedule loop's Prometheus metrics, in the app's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from core.schedules import ScheduleService, TickOutcome

__all__ = ["SchedulerMetrics"]

#: seconds; a tick is normally taken within milliseconds, a missed one seconds or hours late
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600)


class SchedulerMetrics:
    """Ticks fired, skipped (overlap), missed (catchUp off) and refused, and how late each was taken."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.ticks = Counter(
            "jobpulse_schedule_ticks",
            "Schedule ticks taken by this process, by outcome (fired, skipped, missed, refused).",
            ["outcome"],
            registry=registry,
        )
        self.lateness_seconds = Histogram(
            "jobpulse_schedule_lateness_seconds",
            "Seconds between a tick's time and this process taking it.",
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )

    def install(self, schedules: ScheduleService) -> None:
        """Count every tick ``schedules`` takes."""
        schedules.tick_listeners.append(self.observe)

    def observe(self, outcome: TickOutcome) -> None:
        self.ticks.labels(outcome.outcome).inc()
        self.lateness_seconds.observe(max(0.0, outcome.lateness_seconds))
