"""A real jobpulse API server in the test's event loop, and real clients for it.

The server is uvicorn serving ``create_app`` on a free port, run as a task of the test's own loop,
so a test can reach ``app.state.service`` and play the worker (claim, progress, complete…)
while talking to the server over HTTP (httpx) and websockets (gql, graphql-transport-ws).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import uvicorn
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.websockets import WebsocketsTransport
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from api.app import BackgroundTask, SchedulerTask, create_app
from core.jobtypes import JobTypeRegistry
from core.models import Claim, Job
from core.service import JobService
from core.settings import Settings
from tests.support.jobtypes import JOB_TYPES

ADMIN, ALICE, BOB = "admin-token", "alice-token", "bob-token"
API_KEYS = f"{ADMIN}=root:admin,{ALICE}=alice:user,{BOB}=bob:user"
JWT_SECRET = "test-jwt-secret-of-at-least-32-bytes!!"
DEADLINE = 10.0
#: how long a server may take to start: its lifespan opens every backend, slow on a loaded machine
START_DEADLINE = 60.0

JOB_FIELDS = "id type status payload result error progress progressMessage attempts maxAttempts owner version"


@dataclass
class Server:
    """A running API server."""

    app: Starlette
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    @property
    def service(self) -> JobService:
        service: JobService = self.app.state.service
        return service

    def http(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=DEADLINE)

    async def graphql(self, token: str | None, query: str, **variables: Any) -> dict[str, Any]:
        """POST one operation; return the whole response body (``data`` and ``errors``)."""
        async with self.http(token) as client:
            response = await client.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, token: str | None, query: str, **variables: Any) -> dict[str, Any]:
        """POST one operation that must succeed; return its ``data``."""
        body = await self.graphql(token, query, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    @contextlib.asynccontextmanager
    async def ws(self, token: str) -> AsyncIterator[WsSession]:
        """A websocket connection authenticated with ``token`` (graphql-transport-ws, via gql)."""
        transport = WebsocketsTransport(
            url=self.ws_url,
            init_payload={"authorization": f"Bearer {token}"},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )
        async with Client(transport=transport, fetch_schema_from_transport=False) as session:
            ws = WsSession(session)
            try:
                yield ws
            finally:
                for subscription in ws.subscriptions:
                    subscription.task.cancel()
                await asyncio.gather(*(s.task for s in ws.subscriptions), return_exceptions=True)

    # -- playing the worker ----------------------------------------------------------------
    async def start(self, job_id: str, worker: str = "test-worker") -> Claim:
        """Claim a job as a worker would."""
        result = await self.service.claim(job_id, worker, 60)
        assert result.claim is not None, result
        return result.claim

    async def submit(self, token: str, type: str = "noop", payload: dict[str, Any] | None = None) -> str:
        data = await self.data(
            token,
            "mutation($input: SubmitJobInput!) { submitJob(input: $input) { ... on Job { id } } }",
            input={"type": type, "payload": payload if payload is not None else {}},
        )
        job_id: str = data["submitJob"]["id"]
        return job_id

    async def stored(self, job_id: str) -> Job:
        job = await self.service.store.get(job_id)
        assert job is not None
        return job


_END = object()


class Subscription:
    """One live subscription, started at once: ``await sub.next()`` for the next result.

    gql sends ``subscribe`` only when its generator is first iterated; a task pumps it from the
    start, so the server is subscribed before the test makes its changes.
    """

    def __init__(self, stream: AsyncIterator[dict[str, Any]]) -> None:
        self._results: asyncio.Queue[object] = asyncio.Queue()
        self.task = asyncio.create_task(self._pump(stream))

    async def _pump(self, stream: AsyncIterator[dict[str, Any]]) -> None:
        try:
            async for result in stream:
                await self._results.put(result)
        except Exception as exc:
            await self._results.put(exc)
        else:
            await self._results.put(_END)

    async def _get(self) -> object:
        item = await asyncio.wait_for(self._results.get(), DEADLINE)
        if isinstance(item, Exception):
            raise item
        return item

    async def next(self) -> dict[str, Any]:
        item = await self._get()
        assert item is not _END, "the subscription ended"
        assert isinstance(item, dict)
        return item

    async def take(self, count: int) -> list[dict[str, Any]]:
        return [await self.next() for _ in range(count)]

    async def ended(self) -> bool:
        """True if the subscription completes next (waits for that, up to the deadline)."""
        return await self._get() is _END


class WsSession:
    """A graphql-transport-ws connection: subscriptions and operations under one token."""

    def __init__(self, session: AsyncClientSession) -> None:
        self.session = session
        self.subscriptions: list[Subscription] = []

    def subscribe(self, query: str, **variables: Any) -> Subscription:
        stream = self.session.subscribe(GraphQLRequest(query, variable_values=variables))
        subscription = Subscription(stream)  # type: ignore[arg-type]
        self.subscriptions.append(subscription)
        return subscription

    async def execute(self, query: str, **variables: Any) -> dict[str, Any]:
        result = await self.session.execute(GraphQLRequest(query, variable_values=variables))
        assert isinstance(result, dict)
        return result


def make_jwt(subject: str, role: str = "user", *, expires_in: float = 3600, secret: str = JWT_SECRET) -> str:
    claims = {"sub": subject, "role": role, "exp": int(time.time() + expires_in)}
    return jwt.encode(claims, secret, algorithm="HS256")


def api_settings(data_dir: Any, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "api_keys": API_KEYS,
        "jwt_secret": JWT_SECRET,
        "max_payload_bytes": 4096,
        "max_request_bytes": 65_536,
        "shutdown_grace_seconds": 1,
    }
    values.update(overrides)
    return Settings(**values)


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, within: float = DEADLINE
) -> None:
    """Poll ``condition`` until it holds; fail after the deadline."""
    deadline = time.monotonic() + within
    while True:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def run_server(
    settings: Settings,
    *,
    background: Sequence[BackgroundTask] = (),
    extra_routes: Sequence[BaseRoute] = (),
    scheduler: SchedulerTask | None = None,
    fast_paths: bool = True,
) -> AsyncIterator[Server]:
    """Serve ``create_app(settings, …)`` on a free port until the block ends."""
    app = create_app(
        settings,
        JobTypeRegistry(list(JOB_TYPES)),
        background=background,
        extra_routes=extra_routes,
        scheduler=scheduler,
        fast_paths=fast_paths,
    )
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every response waits out the client's delayed ACK (~40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_until(lambda: server.started or task.done(), "the server to start", START_DEADLINE)
        if task.done():
            task.result()
            raise AssertionError("the server stopped while starting")
        yield Server(app, port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, DEADLINE)
        sock.close()
