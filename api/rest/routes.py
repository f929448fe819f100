"""REST under ``/api/v1``: submit, get, list, cancel, retry (one job, or all a query matches) and
stats, over the same ``JobService``.

The same tokens as GraphQL (``Authorization: Bearer``), the same owner isolation (another owner's
job is ``NOT_FOUND``), the same refusals, answered as HTTP statuses with ``{"error": {...}}``
(``api.rest.errors``). Requests are validated by the pydantic models of ``api.rest.models``, which
are also the schemas of the OpenAPI document (``api.rest.openapi``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import orjson
import pydantic
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from api.auth import Authenticator
from api.pagination import job_cursor
from api.rest.docs import docs_routes
from api.rest.errors import RestError, error_response, validation_error
from api.rest.jobs import job_json
from api.rest.models import SubmitJobBody
from api.rest.openapi import openapi_document
from api.stats import JobStats
from core.errors import ForbiddenError, JobNotFoundError, UnauthenticatedError, UserFacingError
from core.models import JobStatus, Principal, utcnow
from core.ports import JobFilter
from core.service import JobService

__all__ = ["PREFIX", "rest_routes"]

PREFIX = "/api/v1"
DEFAULT_LIMIT = 20
#: a job id as ``core.submission`` makes them (a UUID); anything else is no job's id
_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_LIST_PARAMS = frozenset({"status", "type", "owner", "limit", "cursor"})
_LIST_ARGUMENTS = {"first": "limit", "after": "cursor"}

Handler = Callable[[Request], Awaitable[Response]]


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


def _refusals(handler: Handler) -> Handler:
    """``handler`` with every refusal answered as ``{"error": ...}`` and its status."""

    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            return error_response(exc)

    return answer


def _principal(request: Request) -> Principal:
    authenticator: Authenticator = request.app.state.authenticator
    identity = authenticator.authenticate(request.headers.get("authorization"))
    if identity.expired(utcnow()):
        raise UnauthenticatedError("token expired")
    return identity.principal


def _service(request: Request) -> JobService:
    service: JobService = request.app.state.service
    return service


def _job_id(request: Request) -> str:
    job_id: str = request.path_params["id"]
    if not _JOB_ID.match(job_id):
        raise JobNotFoundError(f"job {job_id} not found: not a job id", field="id")
    return job_id


async def _json_object(request: Request) -> dict[str, object]:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise RestError("UNSUPPORTED_MEDIA_TYPE", "the body must be JSON (Content-Type: application/json)")
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise RestError("BAD_REQUEST", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise RestError("BAD_REQUEST", "the body must be a JSON object")
    return data


async def submit_job(request: Request) -> Response:
    principal = _principal(request)
    data = await _json_object(request)
    try:
        body = SubmitJobBody.model_validate(data)
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from exc
    service = _service(request)
    await service.admit(principal)
    job = await service.submit(principal, body.to_request(request.headers.get("idempotency-key")))
    return JSONBody(
        await job_json(service, job), status_code=202, headers={"Location": f"{PREFIX}/jobs/{job.id}"}
    )


async def get_job(request: Request) -> Response:
    principal = _principal(request)
    job_id = _job_id(request)
    service = _service(request)
    job = await service.get(principal, job_id)
    if job is None:
        raise JobNotFoundError(f"job {job_id} not found", field="id")
    return JSONBody(await job_json(service, job))


def _list_filter(request: Request) -> tuple[JobFilter, int, str | None]:
    params = request.query_params
    unknown = sorted(set(params) - _LIST_PARAMS)
    if unknown:
        raise RestError("VALIDATION", f"unknown query parameter {unknown[0]!r}", unknown[0])
    statuses: set[JobStatus] = set()
    for value in params.getlist("status"):
        for name in filter(None, (part.strip().upper() for part in value.split(","))):
            if name not in JobStatus.__members__:
                raise RestError(
                    "VALIDATION", f"status must be one of {', '.join(JobStatus.__members__)}", "status"
                )
            statuses.add(JobStatus[name])
    limit_text = params.get("limit")
    try:
        limit = int(limit_text) if limit_text is not None else DEFAULT_LIMIT
    except ValueError:
        raise RestError("VALIDATION", "limit must be an integer", "limit") from None
    job_filter = JobFilter(
        statuses=frozenset(statuses) or None,
        type=params.get("type") or None,
        owner=params.get("owner") or None,
    )
    return job_filter, limit, params.get("cursor") or None


async def list_jobs(request: Request) -> Response:
    principal = _principal(request)
    job_filter, limit, cursor = _list_filter(request)
    service = _service(request)
    try:
        page = await service.list(principal, service.scope(principal, job_filter), limit, cursor)
    except UserFacingError as exc:
        # The service names its arguments as GraphQL does (``first``, ``after``); here they are these.
        exc.field = _LIST_ARGUMENTS.get(exc.field or "", exc.field)
        raise
    jobs = [await job_json(service, job) for job in page.jobs]
    return JSONBody(
        {
            "jobs": jobs,
            "nextCursor": job_cursor(page.jobs[-1]) if page.has_next_page and page.jobs else None,
            "hasNextPage": page.has_next_page,
        }
    )


async def cancel_job(request: Request) -> Response:
    principal = _principal(request)
    service = _service(request)
    return JSONBody(await job_json(service, await service.cancel(principal, _job_id(request))))


async def retry_job(request: Request) -> Response:
    principal = _principal(request)
    service = _service(request)
    return JSONBody(await job_json(service, await service.retry(principal, _job_id(request))))


def _bulk_filter(request: Request) -> JobFilter:
    """The list's query parameters (``status``, ``type``, ``owner``) as a filter; no ``limit``, ``cursor``."""
    for name in ("limit", "cursor"):
        if name in request.query_params:
            raise RestError("VALIDATION", f"unknown query parameter {name!r}", name)
    return _list_filter(request)[0]


async def cancel_jobs(request: Request) -> Response:
    principal = _principal(request)
    job_filter = _bulk_filter(request)
    return JSONBody({"count": await _service(request).cancel_matching(principal, job_filter)})


async def retry_jobs(request: Request) -> Response:
    principal = _principal(request)
    job_filter = _bulk_filter(request)
    return JSONBody({"count": await _service(request).retry_matching(principal, job_filter)})


async def stats(request: Request) -> Response:
    if not _principal(request).is_admin:
        raise ForbiddenError("stats are for admins only")
    service = _service(request)
    summary = JobStats.of(await service.stats(), service.registry.names)
    by_status = _counts(summary.by_status)
    return JSONBody(
        {
            "totalJobs": summary.total_jobs,
            "byStatus": by_status,
            "averageProcessingTime": summary.average_processing_time,
            "failureRate": summary.failure_rate,
            "queueDepth": summary.queue_depth,
            "deadLetterDepth": summary.dead_letter_depth,
            "byType": [
                {
                    "type": t.type,
                    "queueDepth": t.queue_depth,
                    "deadLetterDepth": t.dead_letter_depth,
                    "byStatus": _counts(t.by_status),
                }
                for t in summary.by_type
            ],
        }
    )


def _counts(counts: object) -> dict[str, int]:
    """A ``StatusCounts`` as ``StatusCountsBody``."""
    names = ("pending", "processing", "completed", "failed", "cancelled")
    return {name: int(getattr(counts, name)) for name in names}


async def openapi(request: Request) -> Response:
    return JSONBody(openapi_document(), headers={"Cache-Control": "no-cache"})


def _unmatched(routes: list[BaseRoute]) -> Handler:
    """The answer under ``/api/v1`` when no route matched: 405 (with ``Allow``) or 404, as JSON."""

    async def answer(request: Request) -> Response:
        path = request.url.path
        allowed = sorted(
            {m for r in routes if isinstance(r, Route) and r.path_regex.match(path) for m in r.methods or ()}
        )
        if allowed:
            message = f"{request.method} is not allowed here; use {', '.join(allowed)}"
            response = error_response(RestError("METHOD_NOT_ALLOWED", message))
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return error_response(RestError("NOT_FOUND", f"no route {path}"))

    return answer


def rest_routes() -> list[BaseRoute]:
    """The ``/api/v1`` routes, each declared here with its methods, then JSON 404s and 405s for the rest."""
    routes = [
        Route(f"{PREFIX}/jobs", _refusals(submit_job), methods=["POST"], name="rest_submit_job"),
        Route(f"{PREFIX}/jobs", _refusals(list_jobs), methods=["GET"], name="rest_list_jobs"),
        Route(f"{PREFIX}/jobs/cancel", _refusals(cancel_jobs), methods=["POST"], name="rest_cancel_jobs"),
        Route(f"{PREFIX}/jobs/retry", _refusals(retry_jobs), methods=["POST"], name="rest_retry_jobs"),
        Route(f"{PREFIX}/jobs/{{id}}", _refusals(get_job), methods=["GET"], name="rest_get_job"),
        Route(
            f"{PREFIX}/jobs/{{id}}/cancel", _refusals(cancel_job), methods=["POST"], name="rest_cancel_job"
        ),
        Route(f"{PREFIX}/jobs/{{id}}/retry", _refusals(retry_job), methods=["POST"], name="rest_retry_job"),
        Route(f"{PREFIX}/stats", _refusals(stats), methods=["GET"], name="rest_stats"),
        Route(f"{PREFIX}/openapi.json", openapi, methods=["GET"], name="rest_openapi"),
        *docs_routes(f"{PREFIX}/docs"),
    ]
    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return [
        *routes,
        Route(f"{PREFIX}/{{rest:path}}", _unmatched(routes), methods=methods, name="rest_unmatched"),
    ]
