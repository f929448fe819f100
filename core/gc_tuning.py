"""Cyclic-GC settings for long-running processes; called by the entry points only, never on import.

Why: a gen-2 collection walks every live object and pauses the event loop while it does, so under
load it is what the slowest requests wait on; and with many open subscriptions, collections
triggered by ordinary allocations take a large share of the loop. The measured effect is in
bench/README.md ("Across figures: Python's cyclic GC").

* ``gc.freeze()`` once the app is built moves the imported modules, the schema and the app's
  objects to a permanent generation the collector never walks again.
* A much higher gen-0 threshold (``GC_THRESHOLDS``) makes young collections far rarer; request
  and event garbage is mostly acyclic (freed by reference counting), so little piles up
  meanwhile, and full passes come correspondingly less often.
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
