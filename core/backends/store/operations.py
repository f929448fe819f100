"""``operations_for(store)``: the ``OperationsStore`` that lives beside a job store.

Keyed on the job store so that every entry point (API, worker, Lambda) that has a ``JobService``
reaches the same data without new wiring: the operations tables sit in the store's database.
"""

from __future__ import annotations

import weakref

from core.operations import OperationsStore
from core.ports import JobStore

__all__ = ["operations_for"]

_BY_STORE: weakref.WeakKeyDictionary[JobStore, OperationsStore] = weakref.WeakKeyDictionary()


def operations_for(store: JobStore) -> OperationsStore:
    """The operations store in ``store``'s database (made once per job store)."""
    found = _BY_STORE.get(store)
    if found is not None:
        return found
    operations: OperationsStore
    from core.backends.store.sqlite import SqliteJobStore

    if isinstance(store, SqliteJobStore):
        from core.backends.store.operations_sqlite import SqliteOperationsStore

        operations = SqliteOperationsStore(store.db)
    else:
        from core.backends.store.mongo import MongoJobStore

        if not isinstance(store, MongoJobStore):
            raise TypeError(f"no operations store for {type(store).__name__}")
        from core.backends.store.operations_mongo import MongoOperationsStore

        operations = MongoOperationsStore(store.jobs.database)
    _BY_STORE[store] = operations
    return operations
