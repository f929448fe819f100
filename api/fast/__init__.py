"""Every GraphQL fast path, in one place, with one promise: byte-identical answers to the stock path.

A fast path is allowed where a bench figure needs it (bench/README.md). Each one here skips work
that strawberry or graphql-core would do and must give exactly what they give: the same status,
headers and JSON bytes, the same errors with the same codes, the same writes. Where it cannot be
sure, it hands the request to the stock path, which answers as it always did.

* ``documents`` — ``CheckedDocuments``: a query text that once parsed, passed the limits and
  validated on strawberry's full path runs graphql-core's ``execute`` on its kept document.
* ``http`` — ``GraphQLFastPath``: a cached single operation POSTed as JSON is answered in front
  of strawberry's view, its body read and written with orjson.
* ``resolvers`` — the submit mutations resolved from graphql-core's coerced arguments, without
  strawberry's argument conversion; they run the same ``api.mutations`` functions.
* ``live_render`` — ``SubscriptionExecutor``: subscription events whose selection is plain fields
  rendered from a plan compiled once, without graphql-core's executor per event.
* ``schema`` — ``FastSchema``: ``JobpulseSchema`` with the above put together.
* ``beside_multipart`` — ``StreamAwareFastPath``: ``GraphQLFastPath`` in front of a view that also
  streams multipart subscriptions (those requests go to the view).

They lean on private names: strawberry's ``Schema._execute_operation``, ``_process_errors``,
``_schema`` and its view's ``_stream_transport_map``, ``SchemaExtension._implements_resolve``;
graphql-core's ``Executor`` and ``collect_fields``. So they run only on the versions they were
tested on (``core.pins.TESTED``, which ``pyproject.toml`` pins): ``enabled()`` is what
``build_schema`` asks, and on any other version it warns once and builds the stock schema (and
``create_app`` puts no fast path in front of the view). The modules above are imported only when
``enabled()``, so a private name gone in another version never breaks an import.

The Redis bus's read of hiredis's buffer keeps the same promise under the same check; it lives
in ``core/backends/bus/hiredis_buffer.py`` because ``core`` imports no ``api``.

``tests/api/fast/`` is the differential harness: the same requests through the fast and the stock
path, answers compared (and the fallback, with a faked version).
"""

from __future__ import annotations

from core.pins import is_tested

__all__ = ["GRAPHQL_LIBRARIES", "enabled"]

#: the libraries whose private names the GraphQL fast paths use
GRAPHQL_LIBRARIES = ("strawberry-graphql", "graphql-core")


def enabled() -> bool:
    """Whether the installed strawberry and graphql-core are versions the fast paths were tested on."""
    return is_tested(*GRAPHQL_LIBRARIES)
