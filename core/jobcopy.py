"""``copy_job`` (and ``slotted_copier`` for other such records): ``dataclasses.replace`` without its
per-call introspection.

``replace`` walks the dataclass's fields and calls the generated ``__init__`` with keywords on
every call; on the bulk submission path (each job copied for its event, and again with
``enqueued_at`` by the embedded store) and a schedule round (each schedule advanced) those copies
were a large share of the event loop's time. A frozen dataclass with slots and no
``__post_init__`` is made exactly as ``replace`` makes it by filling a new instance's slots
through their descriptors, with less work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter
from types import MemberDescriptorType
from typing import Any, TypeVar

from core.models import Job

__all__ = ["copy_job", "slotted_copier"]

R = TypeVar("R")


def slotted_copier(cls: type[R]) -> Callable[..., R]:
    """``copy(record, **changes)``, as ``dataclasses.replace``, for the slotted dataclass ``cls``."""
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    # What the copy relies on; a record that validates or derives anything in __init__ needs replace.
    assert not hasattr(cls, "__post_init__")
    assert all(isinstance(cls.__dict__[name], MemberDescriptorType) for name in names)
    read_all = attrgetter(*names)
    writers: dict[str, Callable[[R, Any], None]] = {name: cls.__dict__[name].__set__ for name in names}
    write_all = tuple(writers.values())

    def copy(record: R, **changes: Any) -> R:
        made: R = object.__new__(cls)
        for write, value in zip(write_all, read_all(record), strict=True):
            write(made, value)
        for name, value in changes.items():
            writer = writers.get(name)
            if writer is None:
                raise TypeError(f"{cls.__name__} has no field {name!r}")
            writer(made, value)
        return made

    return copy


#: ``dataclasses.replace(job, **changes)``: ``changes`` must name fields of ``Job``
copy_job: Callable[..., Job] = slotted_copier(Job)
