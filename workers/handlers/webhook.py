"""``webhook``: one HTTP request to a public URL, with the answer as the result.

Server-side request forgery is the risk: unless ``JOBPULSE_WEBHOOK_ALLOW_PRIVATE`` is set, every
address the host resolves to must be public, and the request goes to the checked address itself
(the original name still in ``Host`` and TLS SNI), so a second DNS answer cannot point it
elsewhere. Redirects are not followed, and proxies from the environment are not used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Literal

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, JsonValue

from core.jobtypes import JobContext, JobType, PermanentError, Retry
from core.models import JSONValue

__all__ = ["JOB_TYPE", "WebhookPayload", "check_destination"]

MAX_RESPONSE_BYTES = 1024 * 1024
MAX_RETRY_AFTER_SECONDS = 3600.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookPayload(BaseModel):
    """One HTTP request to make."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"url": "https://example.com/hooks/order", "method": "POST", "body": {"order": 42}}]
        }
    )

    url: HttpUrl = Field(
        description="An http(s) URL on a public address.", examples=["https://example.com/hooks/order"]
    )
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(
        default="POST", description="The HTTP method.", examples=["POST"]
    )
    body: JsonValue = Field(
        default=None,
        description="Sent as JSON; omitted when null.",
        examples=[{"order": 42, "status": "paid"}],
    )
    headers: dict[str, str] | None = Field(
        default=None, description="Extra request headers.", examples=[{"X-Signature": "abc123"}]
    )


def _refused(address: IPAddress) -> str | None:
    """Why ``address`` is not a public destination, or ``None`` if it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for flag in ("loopback", "private", "link_local", "reserved", "multicast", "unspecified"):
        if getattr(address, f"is_{flag}"):
            return flag.replace("_", "-")
    return None


async def check_destination(host: str, port: int, allow_private: bool) -> list[IPAddress]:
    """Resolve ``host``; refuse it (``PermanentError``) if any address is not public, unless allowed."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise Retry(f"cannot resolve {host}: {exc}") from None
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    if not addresses:
        raise Retry(f"{host} resolved to no address")
    if not allow_private:
        for address in addresses:
            reason = _refused(address)
            if reason is not None:
                raise PermanentError(
                    f"refusing to call {host}: it resolves to {address}, a {reason} address "
                    "(set JOBPULSE_WEBHOOK_ALLOW_PRIVATE=true to allow)"
                )
    return addresses


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return min(MAX_RETRY_AFTER_SECONDS, max(0.0, float(value)))
    except ValueError:
        return None  # an HTTP date, or nothing: use the usual backoff


async def _read_body(response: httpx.Response) -> tuple[JSONValue, bool]:
    """The response body, parsed as JSON when it is JSON, cut at ``MAX_RESPONSE_BYTES``."""
    chunks: list[bytes] = []
    size = 0
    truncated = False
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            truncated = True
            break
    raw = b"".join(chunks)[:MAX_RESPONSE_BYTES]
    if not truncated and raw:
        try:
            parsed: JSONValue = orjson.loads(raw)
            return parsed, False
        except orjson.JSONDecodeError:
            pass
    return raw.decode(response.encoding or "utf-8", errors="replace"), truncated


async def _request(
    client: httpx.AsyncClient, payload: WebhookPayload, url: httpx.URL, host: str, address: IPAddress
) -> tuple[httpx.Response, JSONValue, bool]:
    """One request to ``address``; the name stays in ``Host`` and in TLS (SNI, certificate check)."""
    headers = {**(payload.headers or {}), "Host": url.netloc.decode("ascii")}
    async with client.stream(
        payload.method,
        url.copy_with(host=str(address)),
        headers=headers,
        json=payload.body if payload.body is not None else None,
        extensions={"sni_hostname": host},
    ) as response:
        body, truncated = await _read_body(response)
    return response, body, truncated


async def call_webhook(ctx: JobContext, payload: WebhookPayload) -> JSONValue:
    """Make the request; 5xx and network errors are retried, 4xx fail the job."""
    settings = ctx.settings
    url = httpx.URL(str(payload.url))
    host = url.raw_host.decode("ascii")  # IDNA-encoded: what DNS and TLS see
    if url.scheme not in ("http", "https") or not host:
        raise PermanentError(f"only http and https URLs are allowed, got {url.scheme!r}")
    port = url.port or (443 if url.scheme == "https" else 80)
    addresses = await check_destination(host, port, settings.webhook_allow_private)
    where = f"{payload.method} {url.scheme}://{url.netloc.decode('ascii')}{url.path}"
    await ctx.progress(10, where)
    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for index, address in enumerate(addresses):
            try:
                response, body, truncated = await _request(client, payload, url, host, address)
                break
            except httpx.ConnectError as exc:
                if index + 1 < len(addresses):
                    continue  # the name has other (checked) addresses: try the next
                raise Retry(f"{where} failed: cannot connect: {exc}") from None
            except httpx.TimeoutException as exc:
                raise Retry(f"{where} timed out ({type(exc).__name__})") from None
            except httpx.TransportError as exc:
                raise Retry(f"{where} failed: {type(exc).__name__}: {exc}") from None
    status = response.status_code
    snippet = (body if isinstance(body, str) else orjson.dumps(body).decode())[:200]
    if status >= 500 or status == 429:
        raise Retry(f"HTTP {status} from {host}: {snippet}", delay=_retry_after(response))
    if status >= 400:
        raise PermanentError(f"HTTP {status} from {host}: {snippet}")
    await ctx.progress(95, f"HTTP {status}")
    result: dict[str, JSONValue] = {"status": status, "body": body}
    if truncated:
        result["truncated"] = True
    return result


JOB_TYPE = JobType(
    "webhook",
    "Calls an http(s) URL with a JSON body; returns the status and the (JSON or text) response.",
    WebhookPayload,
    call_webhook,
    max_attempts=5,
    timeout_seconds=120,
)
