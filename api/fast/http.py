"""jobpulse's own answer to the common ``POST /graphql``, in front of strawberry's HTTP view.

Strawberry's view costs about as much per request as executing a small operation: a request
adapter checked against runtime ``Protocol``s, content negotiation, its context and sub-response
objects, and Starlette's routing on the way there (bench/README.md, figures 1 and 2). Most requests
need none of it: an ``application/json`` POST of a single operation whose query text the schema has
already parsed, limited and validated (``CheckedDocuments``, ``api/fast/documents.py``).

For exactly those, this middleware reads the body, parses it with orjson, authenticates the
``Authorization`` header as the view does, runs the cached document through the schema's checked
execution and writes the same response the view would: same status, headers and JSON body (errors
coded and masked by the same functions). Everything else — a cache miss, another method or content
type, a batch, a body that is not a JSON object, fields of the wrong type, an ``operationName``
the document lacks, a subscription — goes on to the app (Starlette's routing, then strawberry's
view) with the body replayed untouched, so its answers and refusals stay exactly theirs.
"""

from __future__ import annotations

from typing import Any

import orjson
from graphql import OperationType as CoreOperationType
from graphql import get_operation_ast
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry import Schema
from strawberry.asgi import GraphQL
from strawberry.http import process_result
from strawberry.types import ExecutionResult

from api.auth import Authenticator
from api.context import Context
from api.errors import auth_error
from api.fast.documents import CheckedDocuments
from core.errors import UnauthenticatedError
from core.service import JobService

__all__ = ["GraphQLFastPath", "SubResponse", "fast_path_middleware"]

#: what a POST may run here; subscriptions (allowed over POST for streaming) keep the view's path
_FAST_KINDS = frozenset({CoreOperationType.QUERY, CoreOperationType.MUTATION})


def _headers(scope: Scope) -> tuple[bytes | None, bytes | None]:
    """The first ``Content-Type`` and ``Authorization`` values, as Starlette's ``Headers.get`` reads them."""
    content_type: bytes | None = None
    authorization: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            if content_type is None:
                content_type = value
        elif name == b"authorization" and authorization is None:
            authorization = value
    return content_type, authorization


def _is_json(content_type: bytes | None) -> bool:
    """``application/json``, with or without parameters (``charset``); anything else is the view's."""
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


class SubResponse(Response):
    """The view's sub-response (``GraphQL.get_sub_response``: no status, no headers, no body) where a
    resolver may set headers and a status; made without ``Response``'s header setup, then removal."""

    def __init__(self) -> None:  # everything Response.__init__ would set, set here
        self.status_code = None  # type: ignore[assignment]
        self.background = None
        self.body = b""
        self.raw_headers = []


def fast_path_middleware(
    view: GraphQL[Any, Any], schema: Schema, authenticator: Authenticator, path: str = "/graphql"
) -> list[Middleware]:
    """``GraphQLFastPath`` in front of ``view``, when the view answers as the fast path assumes: a
    schema with ``CheckedDocuments``, no HTTP streaming transports, no batching (both change what a
    JSON POST gets back). Otherwise nothing: the view answers every request."""
    if not isinstance(schema, CheckedDocuments):
        return []
    # The view's streaming transports (SSE, multipart) for an ``Accept`` header; a strawberry
    # without this private name is one the fast path was not tested on: no fast path then.
    streams = getattr(view, "_stream_transport_map", None)
    if streams is None or streams or schema.config.batching_config:
        return []
    return [Middleware(GraphQLFastPath, path=path, schema=schema, authenticator=authenticator)]


class GraphQLFastPath:
    """Answers cached single operations POSTed as JSON to ``path``; passes everything else on.

    ``schema`` must be the view's, ``authenticator`` the view's; neither the view's streaming
    transports nor batching may be enabled (the view would answer differently), which
    ``create_app`` guarantees.
    """

    def __init__(
        self, app: ASGIApp, *, path: str, schema: CheckedDocuments, authenticator: Authenticator
    ) -> None:
        self.app = app
        self.path = path
        self.schema = schema
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Behind a root path (a proxy's prefix), routing is Starlette's business: no fast path.
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != self.path
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        content_type, authorization = _headers(scope)
        if not _is_json(content_type):
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        body = b""
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break  # a disconnect: the view meets it as it always has
            body += message.get("body", b"")
            if not message.get("more_body", False):
                response = await self.answer(Request(scope, _replay(received, receive)), body, authorization)
                if response is not None:
                    await response(scope, receive, send)
                    return
                break
        await self.app(scope, _replay(received, receive), send)

    async def answer(self, request: Request, body: bytes, authorization: bytes | None) -> Response | None:
        """The view's response to ``request`` (whose ``body`` is read), or ``None`` for the view to answer.

        ``request`` can still read its body (a replay), as the view's can: resolvers see the same
        ``context.request``.
        """
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        query = data.get("query")
        variables = data.get("variables")
        extensions = data.get("extensions")
        operation_name = data.get("operationName")
        if (
            not isinstance(query, str)
            or not (variables is None or isinstance(variables, dict))
            or not (extensions is None or isinstance(extensions, dict))
            or not (operation_name is None or isinstance(operation_name, str))
        ):
            return None
        document = self.schema.checked_document(query)
        if document is None:
            return None
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation not in _FAST_KINDS:
            return None

        sub_response = SubResponse()
        service: JobService = request.app.state.service
        context = Context(
            request=request,
            response=sub_response,
            service=service,
            authenticator=self.authenticator,
        )
        context.authenticate(authorization.decode("latin-1") if authorization is not None else None)
        if context.auth_error is not None or context.identity is None:
            error = context.auth_error or UnauthenticatedError("authentication required")
            result = ExecutionResult(data=None, errors=[auth_error(error)])
        else:
            result = await self.schema.execute_checked(
                document, variables, context, None, operation_name, extensions
            )
        return _response(process_result(result), sub_response)


def _response(data: Any, sub_response: Response) -> Response:
    """As ``GraphQL.create_response``: JSON, 200 unless a resolver set a status, its headers added."""
    response = Response(orjson.dumps(data), media_type="application/json")
    if sub_response.raw_headers:
        response.raw_headers.extend(sub_response.raw_headers)
    if sub_response.background:
        response.background = sub_response.background
    if sub_response.status_code:
        response.status_code = sub_response.status_code
    return response


def _replay(received: list[Message], receive: Receive) -> Receive:
    """``receive`` with the messages already read given again first, in order."""
    pending = list(received)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
