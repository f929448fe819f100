"""``copy_job``: ``dataclasses.replace`` for a ``Job``, without its per-call introspection.

``replace`` walks the dataclass's fields and calls the generated ``__init__`` with keywords on
every call; on the bulk submission path (each job copied for its event, and again with
``enqueued_at`` by the embedded store) those copies were a large share of the event loop's time.
``Job`` is a frozen dataclass with slots and no ``__post_init__``, so filling a new instance's
slots through their descriptors makes exactly the object ``replace`` makes, with less work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter
from types import MemberDescriptorType
from typing import Any

from core.models import Job

__all__ = ["copy_job"]

_FIELDS = tuple(f.name for f in fields(Job))
_read_all = attrgetter(*_FIELDS)
_slot_writers: dict[str, Callable[[Job, Any], None]] = {name: Job.__dict__[name].__set__ for name in _FIELDS}
_WRITE_ALL = tuple(_slot_writers.values())

# What the copy relies on; a Job that validates or derives anything in __init__ needs replace.
assert not hasattr(Job, "__post_init__")
assert all(isinstance(Job.__dict__[name], MemberDescriptorType) for name in _FIELDS)


def copy_job(job: Job, **changes: Any) -> Job:
    """``dataclasses.replace(job, **changes)``: ``changes`` must name fields of ``Job``."""
    copy = object.__new__(Job)
    for write, value in zip(_WRITE_ALL, _read_all(job), strict=True):
        write(copy, value)
    for name, value in changes.items():
        writer = _slot_writers.get(name)
        if writer is None:
            raise TypeError(f"Job has no field {name!r}")
        writer(copy, value)
    return copy
