"""The GraphQL context: the service, the caller, and per-connection loaders."""

from __future__ import annotations

from asyncio import Future
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import AbstractCache, DataLoader

from api.auth import Authenticator, Identity
from core.errors import AuthError, UnauthenticatedError
from core.models import JobId, JSONObject, Principal, utcnow
from core.ports import JobStore
from core.service import JobService

__all__ = ["Context", "Info", "LruCache", "PayloadLoader", "payload_loader"]

PayloadLoader: TypeAlias = DataLoader[JobId, JSONObject]

#: payloads kept per connection; a websocket lives long, so its cache must stay bounded
PAYLOAD_CACHE_SIZE = 512


class LruCache(AbstractCache[JobId, JSONObject]):
    """A DataLoader cache that forgets the least recently used entries beyond ``maxsize``."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[JobId, Future[JSONObject]] = OrderedDict()

    def get(self, key: JobId) -> Future[JSONObject] | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def set(self, key: JobId, value: Future[JSONObject]) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)

    def delete(self, key: JobId) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


def payload_loader(store: JobStore) -> PayloadLoader:
    """Batches payload reads; event snapshots carry no payload, and it never changes once stored."""

    async def load(ids: list[JobId]) -> Sequence[JSONObject]:
        jobs = await store.get_many(ids)
        return [(jobs[i].payload or {}) if i in jobs else {} for i in ids]

    return DataLoader(load_fn=load, cache_map=LruCache(PAYLOAD_CACHE_SIZE))


@dataclass(eq=False)
class Context:
    """What every resolver gets: built per HTTP request, or once per websocket connection."""

    request: Request | WebSocket
    response: Response | WebSocket
    service: JobService
    authenticator: Authenticator
    identity: Identity | None = None
    auth_error: AuthError | None = None
    #: the ``connection_init`` payload, set by strawberry on websockets
    connection_params: dict[str, object] | None = field(default=None)
    _payloads: PayloadLoader | None = field(default=None, init=False, repr=False)

    @property
    def payloads(self) -> PayloadLoader:
        """The payload loader, made on first use: most requests never read a payload."""
        if self._payloads is None:
            self._payloads = payload_loader(self.service.store)
        return self._payloads

    def authenticate(self, authorization: str | None) -> None:
        """Record who the ``Authorization`` value proves, or why it proves no one."""
        try:
            self.identity = self.authenticator.authenticate(authorization)
            self.auth_error = None
        except AuthError as exc:
            self.identity = None
            self.auth_error = exc

    @property
    def principal(self) -> Principal:
        """The caller; raise ``UnauthenticatedError`` (or the recorded auth error) if there is none."""
        if self.identity is None:
            raise self.auth_error or UnauthenticatedError("authentication required")
        if self.identity.expired(utcnow()):
            raise UnauthenticatedError("token expired")
        return self.identity.principal


#: the ``info`` annotation of every resolver
Info: TypeAlias = strawberry.Info[Context, None]
