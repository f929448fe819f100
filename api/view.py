"""The GraphQL endpoint: strawberry's ASGI view with jobpulse's context, authentication and JSON rules.

HTTP: the ``Authorization`` header is checked before anything executes; a missing or wrong token
answers HTTP 200 with one error coded ``UNAUTHENTICATED`` (GraphQL over HTTP with
``application/json``), and nothing runs. Websockets: the token comes in ``connection_init``; a
wrong one closes the socket with 4401, a genuine one that may not use the API with 4403.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.unset import UnsetType

from api.auth import Authenticator
from api.context import Context
from api.errors import auth_error
from api.memory import MemoryReleaser
from core.errors import ForbiddenError, UnauthenticatedError
from core.service import JobService

__all__ = ["GraphQLView"]

_GRAPHIQL_PAGE = (Path(__file__).parent / "static" / "graphiql.html").read_text(encoding="utf-8")


class AuthenticatingWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """``graphql-transport-ws`` whose ``connection_init`` closes 4401 on a wrong token, and that
    tells the view's ``MemoryReleaser`` when the socket is done."""

    async def handle(self) -> None:
        memory = self.view.memory if isinstance(self.view, GraphQLView) else None
        if memory is not None:
            memory.opened()
        try:
            await super().handle()
        finally:
            if memory is not None:
                memory.closed()

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except UnauthenticatedError:
            await self.websocket.close(code=4401, reason="Unauthorized")


class GraphQLView(GraphQL[Context, None]):
    """``/graphql`` over HTTP and websockets (``graphql-transport-ws`` only)."""

    graphql_transport_ws_handler_class = AuthenticatingWSHandler

    def __init__(self, schema: BaseSchema, authenticator: Authenticator) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            max_subscriptions_per_connection=100,
        )
        self.authenticator = authenticator
        self.memory = MemoryReleaser()

    async def render_graphql_ide(self, request: Request) -> Response:
        """Our GraphiQL page: vendored (works offline) and with subscriptions that carry the token."""
        return HTMLResponse(_GRAPHIQL_PAGE, headers={"Cache-Control": "no-cache"})

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        service: JobService = request.app.state.service
        context = Context(
            request=request,
            response=response,
            service=service,
            authenticator=self.authenticator,
        )
        if isinstance(request, Request):
            context.authenticate(request.headers.get("authorization"))
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        authorization = params.get("authorization") or params.get("Authorization")
        context.authenticate(authorization if isinstance(authorization, str) else None)
        if isinstance(context.auth_error, ForbiddenError):
            raise ConnectionRejectionError()
        if context.auth_error is not None:
            raise context.auth_error  # AuthenticatingWSHandler closes with 4401
        return await super().on_ws_connect(context)

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        if context.auth_error is not None or context.identity is None:
            error = context.auth_error or UnauthenticatedError("authentication required")
            return ExecutionResult(data=None, errors=[auth_error(error)])
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        value = super().parse_json(data)
        if not isinstance(value, dict | list):
            raise HTTPException(400, "the request body must be a JSON object")
        return value

    def encode_json(self, data: object) -> str:
        # Text, not bytes: websocket clients expect text frames.
        return orjson.dumps(data).decode()
