"""The ``webhook`` built-in job type, against a local HTTP receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core.errors import ValidationError
from core.jobtypes import PermanentError, Retry
from core.models import JobStatus
from tests.workers.conftest import MakeService, drain, reload, submit
from workers.handlers.webhook import JOB_TYPE, MAX_RESPONSE_BYTES, call_webhook, check_destination


class Receiver(BaseHTTPRequestHandler):
    """Echoes JSON on ``/echo``; ``/text``, ``/unavailable``, ``/missing``, ``/huge`` answer as named."""

    received: list[dict[str, Any]]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = {"method": self.command, "path": self.path, "host": self.headers["Host"], "body": body}
        self.server.received.append(record)  # type: ignore[attr-defined]
        if self.path == "/echo":
            self._send(200, "application/json", json.dumps({**record, "body": body.decode()}).encode())
        elif self.path == "/text":
            self._send(200, "text/plain; charset=utf-8", "héllo".encode())
        elif self.path == "/unavailable":
            self.send_response(503)
            self.send_header("Retry-After", "7")
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"busy")
        elif self.path == "/missing":
            self._send(404, "text/plain", b"no such hook")
        elif self.path == "/huge":
            self._send(200, "text/plain", b"x" * (MAX_RESPONSE_BYTES + 100_000))

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def receiver() -> Iterator[ThreadingHTTPServer]:
    """A local HTTP server in a thread; ``receiver.received`` lists the requests it got."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(server: ThreadingHTTPServer, path: str) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}{path}"


async def test_webhook_posts_json_and_returns_the_answer(
    make_service: MakeService, receiver: ThreadingHTTPServer
) -> None:
    """With private addresses allowed, the body is POSTed as JSON and the JSON answer is the result."""
    service = await make_service(webhook_allow_private=True)
    job = await submit(service, "webhook", {"url": url(receiver, "/echo"), "body": {"order": 42}})
    await drain(service)
    done = await reload(service, job)
    assert done.status is JobStatus.COMPLETED
    assert isinstance(done.result, dict) and isinstance(done.result["body"], dict)
    assert done.result["status"] == 200
    host, port = receiver.server_address[:2]
    assert done.result["body"]["method"] == "POST"
    assert done.result["body"]["host"] == f"{host!s}:{port}"
    assert json.loads(str(done.result["body"]["body"])) == {"order": 42}


async def test_webhook_to_a_private_address_is_refused(
    make_service: MakeService, receiver: ThreadingHTTPServer
) -> None:
    """By default a loopback destination fails the job at once, and no request is made."""
    service = await make_service()
    job = await submit(service, "webhook", {"url": url(receiver, "/echo"), "body": {}})
    await drain(service)
    done = await reload(service, job)
    assert (done.status, done.attempts) == (JobStatus.FAILED, 1)
    assert done.error is not None and "loopback address" in done.error
    assert receiver.received == []  # type: ignore[attr-defined]


async def test_text_answer_is_returned_as_text(make_ctx: Any, receiver: ThreadingHTTPServer) -> None:
    """A non-JSON answer is the result's body as text, and GET sends no body."""
    payload = JOB_TYPE.parse({"url": url(receiver, "/text"), "method": "GET"})
    result = await call_webhook(make_ctx(webhook_allow_private=True), payload)
    assert result == {"status": 200, "body": "héllo"}
    assert receiver.received[0]["body"] == b""  # type: ignore[attr-defined]


async def test_server_error_is_retried(make_ctx: Any, receiver: ThreadingHTTPServer) -> None:
    """A 5xx answer raises ``Retry``, honouring ``Retry-After``."""
    payload = JOB_TYPE.parse({"url": url(receiver, "/unavailable")})
    with pytest.raises(Retry, match="HTTP 503") as raised:
        await call_webhook(make_ctx(webhook_allow_private=True), payload)
    assert raised.value.delay == 7


async def test_client_error_fails_permanently(make_ctx: Any, receiver: ThreadingHTTPServer) -> None:
    """A 4xx answer is a permanent failure quoting the answer."""
    payload = JOB_TYPE.parse({"url": url(receiver, "/missing"), "method": "DELETE"})
    with pytest.raises(PermanentError, match=r"HTTP 404 .*no such hook"):
        await call_webhook(make_ctx(webhook_allow_private=True), payload)


async def test_connection_error_is_retried(make_ctx: Any) -> None:
    """A refused connection raises ``Retry``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    closed_url = url(server, "/echo")
    server.server_close()
    with pytest.raises(Retry, match="failed"):
        await call_webhook(make_ctx(webhook_allow_private=True), JOB_TYPE.parse({"url": closed_url}))


async def test_huge_answer_is_cut(make_ctx: Any, receiver: ThreadingHTTPServer) -> None:
    """A body over the read limit is cut at it, and the result says so."""
    payload = JOB_TYPE.parse({"url": url(receiver, "/huge"), "method": "GET"})
    result = await call_webhook(make_ctx(webhook_allow_private=True), payload)
    assert isinstance(result, dict) and isinstance(result["body"], str)
    assert len(result["body"]) == MAX_RESPONSE_BYTES
    assert result["truncated"] is True


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.10",
        "169.254.169.254",
        "::1",
        "::ffff:127.0.0.1",
        "224.0.0.1",
        "0.0.0.0",
    ],
)
async def test_non_public_addresses_are_refused(host: str) -> None:
    """Loopback, private, link-local, multicast and unspecified addresses are refused."""
    with pytest.raises(PermanentError, match="refusing"):
        await check_destination(host, 80, allow_private=False)


async def test_names_are_checked_by_what_they_resolve_to() -> None:
    """A host name resolving to loopback is refused like the address itself."""
    with pytest.raises(PermanentError, match="localhost"):
        await check_destination("localhost", 80, allow_private=False)


async def test_public_addresses_are_allowed() -> None:
    """A public address passes the check."""
    assert [str(a) for a in await check_destination("93.184.215.14", 443, allow_private=False)] == [
        "93.184.215.14"
    ]


@pytest.mark.parametrize("bad_url", ["ftp://example.com/x", "file:///etc/passwd", "example.com", ""])
def test_only_http_urls_are_accepted(bad_url: str) -> None:
    """URLs that are not http(s) are refused at submission."""
    with pytest.raises(ValidationError, match=r"payload\.url"):
        JOB_TYPE.parse({"url": bad_url})


def test_unknown_methods_are_refused() -> None:
    """Only GET, POST, PUT, PATCH and DELETE are accepted."""
    with pytest.raises(ValidationError, match=r"payload\.method"):
        JOB_TYPE.parse({"url": "https://example.com", "method": "TRACE"})
