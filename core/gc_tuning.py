"""Cyclic-GC settings for long-running processes; called by the entry points only, never on import.

Why (bench/README.md, "Across figures: Python's cyclic GC"): a gen-2 collection walks every live
object and pauses the event loop for 40–60 ms, about once a second under load — most of every
p99 measured. ``{ __typename }`` p99 52 → 18 ms (fig. 1) and ``jobs(first: 20)`` on 1,000,000 jobs
p99 26–45 → ~5 ms (fig. 8a) with ``gc.freeze()`` after start-up; with 5,000 subscriptions 31–37%
of the event loop went to collections triggered by ordinary allocations (fig. 6).

* ``gc.freeze()`` once the app is built moves the imported modules, the schema and the app's
  objects to a permanent generation the collector never walks again.
* A gen-0 threshold of 50,000 (default 700) makes young collections ~70× rarer; request and
  event garbage is mostly acyclic (freed by reference counting), so little piles up meanwhile,
  and each gen-2 pass now comes after 50 × 100 young ones instead of 10 × 10.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "tune_gc"]

GC_THRESHOLDS = (50_000, 50, 100)


def tune_gc() -> None:
    """Freeze what start-up built and raise the thresholds (call once the app/service is built)."""
    gc.collect()  # what start-up left as garbage goes now, not frozen forever
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
