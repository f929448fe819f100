"""The OpenAPI 3.1 document of the REST routes, its schemas generated from ``api.rest.models``."""

from __future__ import annotations

import functools
from typing import Any

from pydantic.json_schema import models_json_schema

from api.rest.errors import STATUS_BY_CODE
from api.rest.models import CountBody, ErrorBody, JobBody, JobPageBody, StatsBody, SubmitJobBody
from core.models import JobStatus

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"
_PREFIX = "/api/v1"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: str) -> dict[str, Any]:
    """The error responses for ``codes`` (several codes can share a status)."""
    by_status: dict[int, list[str]] = {}
    for code in ("UNAUTHENTICATED", *codes):
        by_status.setdefault(STATUS_BY_CODE[code], []).append(code)
    return {
        str(status): _json(_ref("ErrorBody"), " or ".join(names))
        for status, names in sorted(by_status.items())
    }


_JOB_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
    "description": "the job's id",
}


_FILTER = [
    {
        "name": "status",
        "in": "query",
        "schema": {"type": "string"},
        "description": f"comma-separated, any of {', '.join(JobStatus.__members__)}",
    },
    {"name": "type", "in": "query", "schema": {"type": "string"}},
    {"name": "owner", "in": "query", "schema": {"type": "string"}, "description": "admin only"},
]


def _bulk(operation: str, summary: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation,
            "summary": summary,
            "parameters": _FILTER,
            "responses": {"200": _json(_ref("CountBody"), "how many"), **_errors("VALIDATION")},
        }
    }


def _paths() -> dict[str, Any]:
    job = _json(_ref("JobBody"), "the job")
    return {
        f"{_PREFIX}/jobs": {
            "post": {
                "operationId": "submitJob",
                "summary": "Submit a job",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "same owner + key within 24 h returns the first job, no new one",
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("SubmitJobBody")}},
                },
                "responses": {
                    "202": {
                        **_json(
                            _ref("JobBody"), "accepted: the job, PENDING (or the one the key already made)"
                        ),
                        "headers": {
                            "Location": {"schema": {"type": "string"}, "description": "the job's URL"}
                        },
                    },
                    **_errors(
                        "BAD_REQUEST",
                        "PAYLOAD_TOO_LARGE",
                        "UNSUPPORTED_MEDIA_TYPE",
                        "VALIDATION",
                        "UNKNOWN_JOB_TYPE",
                        "RATE_LIMITED",
                    ),
                },
            },
            "get": {
                "operationId": "listJobs",
                "summary": "List jobs, newest first (your own; an admin's: everyone's)",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": f"comma-separated, any of {', '.join(JobStatus.__members__)}",
                    },
                    {"name": "type", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "owner",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "admin only",
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 0, "maximum": 500, "default": 20},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "a page's nextCursor",
                    },
                ],
                "responses": {"200": _json(_ref("JobPageBody"), "one page"), **_errors("VALIDATION")},
            },
        },
        f"{_PREFIX}/jobs/cancel": _bulk(
            "cancelJobs", "Cancel every job the query matches (yours; an admin's: anyone's); how many"
        ),
        f"{_PREFIX}/jobs/retry": _bulk(
            "retryJobs",
            "Retry the FAILED and CANCELLED jobs the query matches; how many went back to PENDING",
        ),
        f"{_PREFIX}/jobs/{{id}}": {
            "get": {
                "operationId": "getJob",
                "summary": "A job",
                "parameters": [_JOB_ID],
                "responses": {"200": job, **_errors("NOT_FOUND")},
            }
        },
        f"{_PREFIX}/jobs/{{id}}/cancel": {
            "post": {
                "operationId": "cancelJob",
                "summary": "Cancel a job (PENDING: never runs; PROCESSING: the handler is cancelled)",
                "parameters": [_JOB_ID],
                "responses": {"200": job, **_errors("NOT_FOUND", "INVALID_STATE")},
            }
        },
        f"{_PREFIX}/jobs/{{id}}/retry": {
            "post": {
                "operationId": "retryJob",
                "summary": "Retry a FAILED or CANCELLED job (back to PENDING, attempts reset)",
                "parameters": [_JOB_ID],
                "responses": {"200": job, **_errors("NOT_FOUND", "INVALID_STATE")},
            }
        },
        f"{_PREFIX}/stats": {
            "get": {
                "operationId": "stats",
                "summary": "Counts, run times and queue depths (admins only)",
                "responses": {"200": _json(_ref("StatsBody"), "the stats"), **_errors("FORBIDDEN")},
            }
        },
    }


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document (built once): the paths written in full, the models' JSON Schemas as components."""
    _, schemas = models_json_schema(
        [
            (SubmitJobBody, "validation"),
            (JobBody, "serialization"),
            (JobPageBody, "serialization"),
            (StatsBody, "serialization"),
            (CountBody, "serialization"),
            (ErrorBody, "serialization"),
        ],
        ref_template=_REF,
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jobpulse REST API",
            "version": "1",
            "description": "The seeds' REST shape over jobpulse's job service. Every route but this "
            "document and the docs page needs `Authorization: Bearer <token>`.",
        },
        "servers": [{"url": "/"}],
        "paths": _paths(),
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
